//! The canary's scheduler: one loop per scenario firing on its schedule, bounded concurrency,
//! never two probes of one scenario in flight (a tick that finds its previous probe still
//! waiting is skipped and counted), a verdict handler (log event, metrics, status board,
//! alerts), configuration reload that keeps the running configuration when the new one is
//! bad, and a shutdown that lets in-flight probes finish within a grace period.
//! Not here: signals and the listening socket (`cmd::canary`), HTTP routes (`http`).
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::alerts::Alerts;
use super::board::Board;
use super::metrics::Metrics;
use super::prober::{Generation, Loader};
use crate::clock::SharedClock;
use crate::core::canary::alert_state::Transition;
use crate::core::canary::payload::AlertEvent;
use crate::core::canary::schedule::{self, Schedule};
use crate::core::grouping::IncidentGroups;
use crate::core::outcome::RunResult;
use crate::core::runbook::Facts;
use crate::edge::incidents;

/// What the process asks of the daemon (signals in production, tests directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM/SIGINT: stop starting probes, let in-flight ones finish, exit.
    Shutdown,
}

/// The scheduler is considered stuck when its heartbeat is older than this.
const HEARTBEAT_STALE: Duration = Duration::from_secs(10);
/// How often the result store is asked whether it answers (for `/healthz`).
const STORE_CHECK: Duration = Duration::from_secs(15);

/// State shared by the scheduler, the probes and the HTTP handlers.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub board: Board,
    pub clock: SharedClock,
    pub location: String,
    alerts: Alerts,
    /// Where `/healthz` checks the store can be written.
    state_dir: PathBuf,
    /// Why the result store did not answer at its last check (`None`: it did).
    store_problem: Mutex<Option<String>>,
    store_check: Duration,
    in_flight: Mutex<HashMap<String, AbortHandle>>,
    finished: Notify,
    heartbeat: Mutex<Instant>,
    /// Set at shutdown: probes still queued for a concurrency slot are not started.
    stopping: AtomicBool,
}

impl Shared {
    pub fn new(
        metrics: Arc<Metrics>,
        alerts: Alerts,
        clock: SharedClock,
        location: String,
        state_dir: PathBuf,
    ) -> Shared {
        let heartbeat = Mutex::new(clock.instant());
        Shared {
            metrics,
            board: Board::default(),
            clock,
            location,
            alerts,
            state_dir,
            store_problem: Mutex::new(None),
            store_check: STORE_CHECK,
            in_flight: Mutex::new(HashMap::new()),
            finished: Notify::new(),
            heartbeat,
            stopping: AtomicBool::new(false),
        }
    }

    /// Record the outcome of a store check, logging only a change.
    fn set_store_problem(&self, problem: Option<String>) {
        let mut slot = self.store_problem.lock().unwrap_or_else(|p| p.into_inner());
        if *slot != problem {
            match &problem {
                Some(p) => tracing::error!(problem = %p, "the result store does not answer"),
                None if slot.is_some() => tracing::info!("the result store answers again"),
                None => {}
            }
        }
        *slot = problem;
    }

    /// Ask the result store whether it answers every `every` instead of every 15 s.
    pub fn with_store_check(mut self, every: Duration) -> Shared {
        self.store_check = every;
        self
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the canary is unhealthy, if it is: a stalled scheduler, an unwritable state
    /// directory (a SQLite store lives there), or a result store that did not answer its last
    /// check (PostgreSQL down, say).
    pub fn health_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let beat = *self.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        let age = self.clock.instant().saturating_duration_since(beat);
        if age > HEARTBEAT_STALE {
            problems.push(format!("scheduler stalled for {}s", age.as_secs()));
        }
        let probe = self.state_dir.join(".canary-health");
        if let Err(e) = std::fs::write(&probe, b"ok\n") {
            problems.push(format!(
                "state directory {} not writable: {}",
                self.state_dir.display(),
                e.kind()
            ));
        }
        if let Some(p) = &*self.store_problem.lock().unwrap_or_else(|p| p.into_inner()) {
            problems.push(format!("result store not answering: {p}"));
        }
        problems
    }

    /// Start a probe of `name` unless one is in flight; false when skipped.
    fn start_probe(self: &Arc<Self>, gen: &Arc<Active>, name: &str) -> bool {
        let mut running = self.in_flight();
        if running.contains_key(name) {
            return false;
        }
        let me = Arc::clone(self);
        let gen = Arc::clone(gen);
        let owned = name.to_string();
        // Spawned while the map is locked: the task's own removal cannot run before the insert.
        let task = tokio::spawn(async move {
            me.probe(&gen, &owned).await;
            me.in_flight().remove(&owned);
            me.finished.notify_waiters();
        });
        running.insert(name.to_string(), task.abort_handle());
        true
    }

    async fn probe(&self, gen: &Active, name: &str) {
        // Given back by the prober once the probe is sent: a probe waiting for its delivery
        // keeps no other scenario waiting.
        let Ok(place) = Arc::clone(&gen.limit).acquire_owned().await else {
            return;
        };
        if self.stopping.load(Ordering::SeqCst) {
            tracing::info!(scenario = name, "shutting down: queued probe not started");
            return;
        }
        let result = {
            let _counted = InFlight::new(&self.metrics);
            gen.gen.prober.probe(name, place).await
        };
        match result {
            Some(r) => self.verdict(gen, r),
            None => tracing::error!(scenario = name, "scenario unknown to the prober"),
        }
    }

    /// One verdict: a log event with its fields, the metrics, the board, and an alert when
    /// the scenario's state changed.
    fn verdict(&self, gen: &Active, r: RunResult) {
        let finding = r.findings.first();
        tracing::info!(
            scenario = %r.scenario,
            location = %self.location,
            status = r.status.as_str(),
            probe_id = %r.probe_id,
            total_ms = r.total_ms,
            stages = r.stages.len(),
            finding = finding.map(|f| f.code.as_str()),
            stage = finding.and_then(|f| f.stage.as_deref()),
            "probe verdict"
        );
        let unix = r.verdict_at.timestamp_millis() as f64 / 1000.0;
        self.metrics.verdict(&r, unix);
        let Some((transition, failures)) = self.board.record(&r) else {
            return;
        };
        let draft = match transition {
            Transition::Failing => self.write_draft(&gen.gen, &r),
            Transition::Recovered => None,
        };
        tracing::warn!(
            scenario = %r.scenario,
            transition = transition.as_str(),
            consecutive_failures = failures,
            "scenario state changed"
        );
        let event = AlertEvent::new(transition, &r, &self.location, failures, draft);
        self.alerts.send(event, Arc::clone(&gen.gen.webhooks));
    }

    fn write_draft(&self, gen: &Generation, r: &RunResult) -> Option<String> {
        let dir = gen.config.canary.incident_dir.as_ref()?;
        let groups = IncidentGroups::from_results(std::slice::from_ref(r)).into_groups();
        let facts = Facts {
            recipient: gen
                .config
                .scenario(&r.scenario)
                .and_then(|s| s.sender.recipients().first().cloned()),
        };
        match incidents::write_drafts(dir, &groups, "flowtest canary", &gen.config.runbook, &facts)
        {
            Ok(paths) => paths.first().map(|p| p.display().to_string()),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot write the incident draft");
                None
            }
        }
    }
}

/// Counts a probe in `flowtest_probes_in_flight` while it lives, even when it is aborted.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn new(m: &'a Metrics) -> Self {
        m.probe_started();
        InFlight(m)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.probe_finished();
    }
}

/// A generation being scheduled: its configuration and its concurrency limit.
struct Active {
    gen: Generation,
    limit: Arc<Semaphore>,
}

/// The running loops of one generation; dropping the sender stops them.
struct Loops {
    stop: watch::Sender<bool>,
    active: Arc<Active>,
}

/// Run until [`Control::Shutdown`] (or the control channel closes). The first load must
/// succeed; later reloads that fail keep the running configuration.
pub async fn run(
    shared: Arc<Shared>,
    loader: Arc<dyn Loader>,
    mut control: mpsc::Receiver<Control>,
) -> Result<(), String> {
    let first = loader.load()?;
    shared.metrics.config_reloaded(true);
    let store_watch = tokio::spawn(watch_store(Arc::clone(&shared), Arc::clone(&loader)));
    let mut loops = start(&shared, loader.as_ref(), first);
    let mut beat = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Reload) => match loader.load() {
                    Ok(gen) => {
                        let _ = loops.stop.send(true);
                        loops = start(&shared, loader.as_ref(), gen);
                        shared.metrics.config_reloaded(true);
                        tracing::info!(scenarios = loops.active.gen.config.scenarios.len(), "configuration reloaded");
                    }
                    Err(e) => {
                        shared.metrics.config_reloaded(false);
                        tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
                    }
                },
                Some(Control::Shutdown) | None => break,
            },
            _ = beat.tick() => {
                *shared.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = shared.clock.instant();
            }
        }
    }
    shared.stopping.store(true, Ordering::SeqCst);
    store_watch.abort();
    let _ = loops.stop.send(true);
    let gen = &loops.active.gen;
    drain(&shared, gen.config.canary.grace, gen.prober.as_ref()).await;
    gen.prober.close().await;
    Ok(())
}

/// Ask the store whether it answers, now and every `store_check`, for `/healthz`. A check
/// still running when the next is due delays it (never two at once).
async fn watch_store(shared: Arc<Shared>, loader: Arc<dyn Loader>) {
    loop {
        let l = Arc::clone(&loader);
        let problem = match tokio::task::spawn_blocking(move || l.check_store()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(format!("the check failed: {e}")),
        };
        shared.set_store_problem(problem);
        tokio::time::sleep(shared.store_check).await;
    }
}

/// Start one loop per scenario of `gen`.
fn start(shared: &Arc<Shared>, loader: &dyn Loader, gen: Generation) -> Loops {
    let cfg = &gen.config;
    if cfg.canary.location != shared.location {
        tracing::warn!(
            location = %cfg.canary.location,
            "canary.location changed: it applies when the canary is restarted"
        );
    }
    let names: Vec<(String, Option<String>)> = cfg
        .scenarios
        .iter()
        .map(|s| (s.name.clone(), loader.stored_status(&s.name)))
        .collect();
    shared
        .board
        .configure(&names, cfg.canary.failures_before_alert);
    for (name, stored) in &names {
        let stored_up = stored
            .as_deref()
            .map(|s| matches!(s, "delivered" | "slow" | "delivered_spam"));
        shared.metrics.scenario_configured(name, stored_up);
    }
    let active = Arc::new(Active {
        limit: Arc::new(Semaphore::new(cfg.max_concurrency)),
        gen,
    });
    let (stop, _) = watch::channel(false);
    for s in &active.gen.config.scenarios {
        let schedule = s
            .schedule
            .clone()
            .unwrap_or(Schedule::Every(active.gen.config.canary.every));
        tokio::spawn(scenario_loop(
            Arc::clone(shared),
            Arc::clone(&active),
            s.name.clone(),
            schedule,
            stop.subscribe(),
        ));
    }
    Loops { stop, active }
}

/// Fire `name` on `schedule` until told to stop.
async fn scenario_loop(
    shared: Arc<Shared>,
    active: Arc<Active>,
    name: String,
    schedule: Schedule,
    mut stop: watch::Receiver<bool>,
) {
    let now = shared.clock.now();
    // A period starts with a probe right away; a cron expression waits for its first time.
    let first = match &schedule {
        Schedule::Every(_) => Some(now),
        Schedule::Cron(_) => schedule.next_after(now),
    };
    let Some(mut planned) = first else {
        tracing::warn!(scenario = %name, "the cron expression never fires");
        return;
    };
    let jitter_max = active.gen.config.canary.jitter;
    let seeds = std::collections::hash_map::RandomState::new();
    let mut n: u64 = 0;
    loop {
        let fire = planned + jitter_delta(schedule::jitter(jitter_max, seeds.hash_one(n)));
        let mut wait = (fire - shared.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if let Schedule::Every(period) = &schedule {
            // A wall clock stepped backwards must not stall a periodic scenario.
            wait = wait.min(*period + jitter_max);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if !shared.start_probe(&active, &name) {
            tracing::debug!(scenario = %name, "previous probe still in flight: tick skipped");
            shared.metrics.tick_skipped(&name, 1);
        }
        let Some(next) = schedule.advance(planned, shared.clock.now()) else {
            tracing::info!(scenario = %name, "schedule has no further times");
            return;
        };
        shared.metrics.tick_skipped(&name, next.skipped);
        planned = next.at;
        n = n.wrapping_add(1);
    }
}

fn jitter_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::zero())
}

/// After the grace period, how long interrupted probes get to record their verdict and clean up
/// (the runner's own stop grace plus its bounded cleanup) before they are aborted.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// Wait for in-flight probes up to `grace`; then interrupt them (they record `interrupted` and
/// clean up) and wait [`INTERRUPT_GRACE`] more; abort whatever is left (its row stays `pending`
/// until the next start resolves it).
async fn drain(shared: &Shared, grace: Duration, prober: &dyn super::prober::Prober) {
    let deadline = shared.clock.instant() + grace;
    if !wait_in_flight(shared, deadline).await {
        return;
    }
    prober.interrupt();
    let deadline = shared.clock.instant() + INTERRUPT_GRACE;
    if wait_in_flight(shared, deadline).await {
        for (name, task) in shared.in_flight().drain() {
            tracing::warn!(scenario = %name, "probe aborted at shutdown: its row stays pending");
            task.abort();
        }
    }
}

/// Wait until no probe is in flight (false) or `deadline` passes with some still running (true).
async fn wait_in_flight(shared: &Shared, deadline: tokio::time::Instant) -> bool {
    loop {
        let notified = shared.finished.notified();
        let left = shared.in_flight().len();
        if left == 0 {
            tracing::info!("canary stopped");
            return false;
        }
        tracing::info!(in_flight = left, "waiting for in-flight probes");
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => return true,
        }
    }
}
