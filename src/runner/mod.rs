//! The orchestrator shared by `flowtest run` and the canary: for one scenario, open the
//! mailbox, arm detection, send the probe, wait, fetch, trace, clean up, store the result.
//!
//! The runner only sequences: what the facts mean is decided in `core::verdict`, and every edge
//! (sender, mailbox, logs, store, clock) is reached through the small traits of [`ports`], so the
//! whole sequence runs in tests against fakes. Not here: parsing (config), rendering
//! (core::report), protocol details (edge).
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{self, SharedClock};
use crate::config::Config;
use crate::core::outcome::RunResult;
use crate::core::probe::{Installation, ProbeKey};
use crate::core::runbook::Facts;

mod adapters;
mod cleanup;
mod logs;
pub mod ports;
mod prepare;
mod progress;
mod steps;
mod wait;

pub use adapters::{ConfiguredLogs, ImapAccount, SmtpProbeSender};
pub use prepare::{prepare, Prepared};
pub use progress::Progress;

use ports::{LogSources, ResultStore};
use steps::Run;

/// What every run shares.
pub struct Runner {
    pub config: Arc<Config>,
    /// The probe key and domain every tag is signed and verified with.
    pub installation: Installation,
    pub store: Arc<dyn ResultStore>,
    pub progress: Arc<Progress>,
    /// Overrides each scenario's timeout (`--timeout`).
    pub timeout_override: Option<Duration>,
    pub clock: SharedClock,
    pub logs: Arc<dyn LogSources>,
}

impl Runner {
    /// A runner on the machine's clocks, following the configuration's log sources.
    pub fn new(
        config: Arc<Config>,
        key: ProbeKey,
        store: Arc<dyn ResultStore>,
        progress: Arc<Progress>,
        timeout_override: Option<Duration>,
    ) -> Runner {
        let logs = Arc::new(ConfiguredLogs {
            sources: config.log_sources.clone(),
        });
        let installation = Installation::new(key, &config.probe_domain);
        Runner {
            config,
            installation,
            store,
            progress,
            timeout_override,
            clock: clock::system(),
            logs,
        }
    }

    pub fn with_clock(self, clock: SharedClock) -> Runner {
        Runner { clock, ..self }
    }

    pub fn with_logs(self, logs: Arc<dyn LogSources>) -> Runner {
        Runner { logs, ..self }
    }

    /// Run several scenarios, at most `max_concurrency` at once. Results keep the input order.
    pub async fn run_all(self: &Arc<Self>, prepared: Vec<Prepared>) -> Vec<RunResult> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.config.max_concurrency));
        let mut handles = Vec::new();
        for p in prepared {
            let me = Arc::clone(self);
            let sem = Arc::clone(&sem);
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                me.run_one(&p).await
            }));
        }
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            match h.await {
                Ok(r) => out.push(r),
                // A panic in one scenario must not hide the others' results.
                Err(e) => tracing::error!(error = %e, "internal error in a scenario task"),
            }
        }
        out
    }

    /// One probe, start to finish. Never panics on server behaviour; always returns a result,
    /// and stores it.
    pub async fn run_one(&self, p: &Prepared) -> RunResult {
        let mut run = Run::new(self, p);
        // The mailbox first: if users cannot read mail, there is no point sending.
        let Some(armed) = run.open_and_arm().await else {
            return self.finish(run.result);
        };
        // Follow the server logs from this moment, then send.
        let mut logs = run.follow_logs();
        let mut sent = run.submit().await;
        let waited = run.await_arrival(&sent, armed, logs.as_mut()).await;
        run.judge(&sent, waited.arrival.as_ref());
        run.fuse_logs(logs.as_mut(), &mut sent, waited.arrival.is_some())
            .await;
        run.clean_up(waited.session, waited.arrival.as_ref()).await;
        self.finish(run.result)
    }

    /// Store the result and take the scenario off the progress line.
    fn finish(&self, mut result: RunResult) -> RunResult {
        self.progress.done(&result.scenario);
        // The hints in the operator's runbook, about this scenario's recipient.
        let facts = Facts {
            recipient: self
                .config
                .scenario(&result.scenario)
                .and_then(|s| s.sender.recipients().first().cloned()),
        };
        self.config.runbook.apply(&mut result.findings, &facts);
        let json =
            serde_json::to_string(&result).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        if let Err(e) = self.store.record_result(&result, &json, self.clock.now()) {
            // The result is still reported; say loudly that it was not stored.
            tracing::error!(error = %e, probe_id = %result.probe_id, "result not stored");
        }
        result
    }
}

#[cfg(test)]
mod tests;
