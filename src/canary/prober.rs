//! How the canary runs one probe and loads its configuration: [`Prober`] and [`Loader`], with
//! real implementations over the one orchestrator (`runner::Runner::run_one`) and
//! `Config::load`. The daemon only sees these traits, so its scheduling, reload and shutdown run
//! in tests against fakes. Not here: scheduling (`daemon`).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::alerts::{self, ResolvedWebhook};
use crate::config::Config;
use crate::core::outcome::RunResult;
use crate::edge::store::Store;
use crate::runner::ports::BoxFuture;
use crate::runner::{prepare_all, Prepared, Progress, Runner, Stop};

/// A probe's place among `max_concurrency`.
pub type Place = tokio::sync::OwnedSemaphorePermit;

/// Runs one probe of a named scenario to its verdict.
pub trait Prober: Send + Sync {
    /// `None` when the scenario is not known to this prober. `place` is given back (dropped)
    /// once the probe holds no connection of its own: the real prober's, once it is sent.
    fn probe<'a>(&'a self, scenario: &'a str, place: Place) -> BoxFuture<'a, Option<RunResult>>;
    /// Ask probes in flight to end now: each is judged if it can be within the runner's short
    /// grace, else recorded `interrupted`; own delivered probes are still cleaned up.
    fn interrupt(&self) {}
    /// Close what is kept open between probes (idle SMTP connections): the canary stops.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// One loaded configuration with everything resolved: what the scheduler runs until the next
/// reload.
pub struct Generation {
    pub config: Arc<Config>,
    pub prober: Arc<dyn Prober>,
    pub webhooks: Arc<Vec<ResolvedWebhook>>,
}

/// Loads (and reloads) the configuration.
pub trait Loader: Send + Sync {
    /// Read, validate and resolve the configuration; the error says why in one line.
    fn load(&self) -> Result<Generation, String>;
    /// The latest verdict stored for a scenario, if any.
    fn stored_status(&self, scenario: &str) -> Option<String>;
    /// Whether the result store answers now; the error names the store. Blocking (bounded by
    /// the store's own timeouts): the daemon calls it off the async threads.
    fn check_store(&self) -> Result<(), String>;
}

/// The real prober: the shared runner with every scenario prepared, those that watch one
/// mailbox sharing its session and those that submit to one server its connections (as in
/// `flowtest run --all`), so a probe waiting for its delivery holds no place and an outage that
/// keeps some probes waiting does not stop the others. Before each probe it resolves the rows a
/// killed run left `pending` (as `flowtest run` does before its probes).
pub struct RunnerProber {
    runner: Arc<Runner>,
    prepared: HashMap<String, Prepared>,
    stop: Stop,
}

impl RunnerProber {
    /// Resolve the probe key and every scenario's secrets and CA files now, so a bad
    /// configuration is refused before it replaces a running one.
    pub fn new(config: Arc<Config>, store: Arc<Store>) -> Result<RunnerProber, String> {
        let key = crate::config::probe_key(&config)?;
        let prepared = prepare_all(&config.scenarios)?;
        let prepared = config
            .scenarios
            .iter()
            .map(|s| s.name.clone())
            .zip(prepared)
            .collect();
        let stop = Stop::default();
        let runner = Arc::new(
            Runner::new(config, key, store, Arc::new(Progress::default()), None)
                .with_stop(stop.clone()),
        );
        Ok(RunnerProber {
            runner,
            prepared,
            stop,
        })
    }
}

impl Prober for RunnerProber {
    fn probe<'a>(&'a self, scenario: &'a str, place: Place) -> BoxFuture<'a, Option<RunResult>> {
        Box::pin(async move {
            let p = self.prepared.get(scenario)?;
            // Rows a killed canary left `pending` are recorded `lost` once past their deadline,
            // so this probe's cleanup can then mark their late copies and remove them (a
            // `pending` probe is never touched).
            self.runner.resolve_leftover_pending();
            Some(self.runner.run_one_placed(p, place).await)
        })
    }
    fn interrupt(&self) {
        self.stop.request();
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for p in self.prepared.values() {
                p.close().await;
            }
        })
    }
}

/// Loads `flowtest.toml` from a path, sharing one result store across reloads.
pub struct ConfigLoader {
    pub path: PathBuf,
    pub store: Arc<Store>,
}

impl Loader for ConfigLoader {
    fn load(&self) -> Result<Generation, String> {
        let config = Arc::new(Config::load(&self.path).map_err(|e| e.to_string())?);
        if !self.store.serves(&config) {
            tracing::warn!(
                store = %self.store.describe(),
                location = %self.store.location(),
                "state_dir, [store] or the location changed: the canary keeps its store until it is restarted"
            );
        }
        let webhooks = Arc::new(alerts::resolve(&config.canary.webhooks)?);
        let prober = Arc::new(RunnerProber::new(
            Arc::clone(&config),
            Arc::clone(&self.store),
        )?);
        Ok(Generation {
            config,
            prober,
            webhooks,
        })
    }

    fn check_store(&self) -> Result<(), String> {
        self.store.check().map_err(|e| e.to_string())
    }

    fn stored_status(&self, scenario: &str) -> Option<String> {
        match self.store.last_status(scenario) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, scenario, "cannot read the last stored verdict");
                None
            }
        }
    }
}
