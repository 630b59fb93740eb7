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
mod blocking;
mod cleanup;
pub(crate) mod leftovers;
mod logs;
mod logshare;
pub mod ports;
mod prepare;
mod progress;
mod steps;
mod stop;
mod wait;

pub use adapters::{ConfiguredLogs, ImapAccount, SmtpProbeSender};
pub use prepare::{prepare, prepare_all, Prepared};
pub use progress::Progress;
pub use stop::{Stop, STOP_GRACE};

use crate::core::outcome::Status;
use crate::edge::smtp::SendOutcome;
use ports::{FinalResult, LogSources, ResultStore};
use steps::Run;
use uuid::Uuid;

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
    /// Set when the run is asked to stop: nothing new is sent, probes in flight get a grace.
    pub stop: Stop,
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
        let logs = Arc::new(ConfiguredLogs::new(config.log_sources.clone()));
        let installation = Installation::new(key, &config.probe_domain);
        Runner {
            config,
            installation,
            store,
            progress,
            timeout_override,
            clock: clock::system(),
            logs,
            stop: Stop::default(),
        }
    }

    pub fn with_clock(self, clock: SharedClock) -> Runner {
        Runner { clock, ..self }
    }

    pub fn with_logs(self, logs: Arc<dyn LogSources>) -> Runner {
        Runner { logs, ..self }
    }

    pub fn with_stop(self, stop: Stop) -> Runner {
        Runner { stop, ..self }
    }

    /// Run several scenarios, started in the input order, at most `max_concurrency` of them
    /// being sent at once (see [`Runner::run_probe`]). Results keep that order, one per
    /// scenario: a scenario whose task panicked gets an `error` result. Rows left `pending` by
    /// killed runs are resolved first.
    pub async fn run_all(self: &Arc<Self>, prepared: Vec<Prepared>) -> Vec<RunResult> {
        self.resolve_leftover_pending();
        let sem = Arc::new(tokio::sync::Semaphore::new(self.config.max_concurrency));
        let mut tasks = Vec::new();
        for p in prepared {
            let me = Arc::clone(self);
            // The permit is taken here, not in the task: tasks are scheduled in no set order,
            // and a scenario must not overtake the one listed before it.
            let permit = Arc::clone(&sem).acquire_owned().await.ok();
            let p = Arc::new(p);
            let id = Uuid::now_v7();
            let handle = tokio::spawn({
                let p = Arc::clone(&p);
                async move { me.run_probe(&p, id, permit).await }
            });
            tasks.push((p, id, handle));
        }
        let mut out = Vec::with_capacity(tasks.len());
        let mut done = Vec::with_capacity(tasks.len());
        for (p, id, handle) in tasks {
            // A panic in one scenario must not hide the others' results, nor pass for no result.
            let r = match handle.await {
                Ok(r) => r,
                Err(e) => self.internal_error(&p, id, e),
            };
            out.push(r);
            done.push(p);
        }
        // The run is over: no connection is kept for a next probe.
        for p in done {
            p.close().await;
        }
        out
    }

    /// The `error` result of a scenario whose task did not return one, stored over the
    /// `pending` row it may have left.
    fn internal_error(&self, p: &Prepared, id: Uuid, e: tokio::task::JoinError) -> RunResult {
        let what = if e.is_panic() {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            format!("the scenario's task panicked: {msg}")
        } else {
            format!("the scenario's task did not finish: {e}")
        };
        tracing::error!(scenario = %p.scenario.name, probe_id = %id, "internal error: {what}");
        let mut result = Run::new(self, p, id).result;
        result.status = Status::Error;
        result.warnings.push(format!("internal error: {what}"));
        self.finish(result)
    }

    /// One probe, start to finish. Never panics on server behaviour; always returns a result,
    /// and stores it.
    pub async fn run_one(&self, p: &Prepared) -> RunResult {
        self.run_probe(p, Uuid::now_v7(), None).await
    }

    /// [`Runner::run_one`] in `place` (among `max_concurrency`), given back once the probe is
    /// sent (see [`Runner::run_probe`]).
    pub async fn run_one_placed(
        &self,
        p: &Prepared,
        place: tokio::sync::OwnedSemaphorePermit,
    ) -> RunResult {
        self.run_probe(p, Uuid::now_v7(), Some(place)).await
    }

    /// `permit` (a place among `max_concurrency`) is given back once the probe is sent (or
    /// could not be): from then on it holds no connection of its own (the mailbox's session
    /// is shared by the run's probes, the submission connections are the pool's), so neither
    /// its wait for delivery, nor its cleanup, nor the logs settling keeps another scenario
    /// waiting. A run whose probes are stuck (the VPN down) then takes one timeout, not one
    /// per `max_concurrency` scenarios. The logs settle while the cleanup runs.
    async fn run_probe(
        &self,
        p: &Prepared,
        id: Uuid,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> RunResult {
        let mut run = Run::new(self, p, id);
        // Stopped before this scenario's turn: nothing is sent.
        if self.stop.requested() {
            return self.finish(interrupted(run.result, NOT_SENT));
        }
        // The mailbox first: if users cannot read mail, there is no point sending.
        let step =
            |what: &str| tracing::debug!(scenario = %p.scenario.name, probe_id = %id, "{what}");
        step("started");
        let Some(armed) = run.open_and_arm().await else {
            return self.finish(run.result);
        };
        step("armed");
        if self.stop.requested() {
            // Nothing sent, nothing to clean: dropping the watch closes its session.
            drop(armed);
            return self.finish(interrupted(run.result, NOT_SENT));
        }
        // Follow the server logs from this moment, then send.
        let mut logs = run.follow_logs();
        let mut sent = run.submit().await;
        drop(permit);
        step("submitted");
        let waited = run.await_arrival(&sent, armed, logs.as_mut()).await;
        run.judge(&sent, waited.arrival.as_ref());
        let judged = self.clock.instant();
        step("judged");
        run.clean_up_bounded(waited.session, waited.arrival.as_ref())
            .await;
        step("cleaned up");
        run.fuse_logs(logs.as_mut(), &mut sent, judged).await;
        step("logs fused");
        // Stopped while waiting: not lost, unknown (the logs may still have decided it).
        let cut_short = self.stop.requested() && self.clock.instant() < sent.deadline;
        if cut_short
            && run.result.status == Status::Lost
            && matches!(sent.outcome, SendOutcome::Accepted(_))
        {
            run.result = interrupted(run.result, IN_FLIGHT);
        }
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
        let done = FinalResult {
            result: &result,
            json: &json,
            finished_at: self.clock.now(),
        };
        if let Err(e) = self.store.record_result(&done) {
            // The result is still reported; say loudly, and in the result, that it was not stored.
            tracing::error!(error = %e, probe_id = %result.probe_id, "result not stored");
            result
                .warnings
                .push(format!("this result was not stored: {e}"));
        }
        result
    }
}

/// Why an `interrupted` result has no verdict.
const NOT_SENT: &str = "the run was stopped before this probe was sent; nothing was sent";
const IN_FLIGHT: &str =
    "the run was stopped while this probe was in flight; it had not arrived within the grace";

fn interrupted(mut result: RunResult, why: &str) -> RunResult {
    result.status = Status::Interrupted;
    result.warnings.push(why.to_string());
    result
}

#[cfg(test)]
mod tests;
