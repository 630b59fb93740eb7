//! What the canary knows of each scenario between probes: its last verdict, recent latencies
//! (for the sparkline) and its alert state. Shared by the verdict handler and the status page.
//! Not here: the metrics (`metrics`) or the store (the runner writes it).
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::core::canary::alert_state::{AlertState, Transition};
use crate::core::canary::status_page::{self, ScenarioView};
use crate::core::outcome::RunResult;

/// Probes kept for the sparkline.
const HISTORY: usize = 60;

struct Entry {
    last: Option<RunResult>,
    stored_status: Option<String>,
    history: VecDeque<Option<u64>>,
    alert: AlertState,
}

/// Every configured scenario's state, by name.
#[derive(Default)]
pub struct Board {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make the board list exactly `names`: new ones start with the stored verdict (if any),
    /// kept ones keep their history and alert state, removed ones go.
    pub fn configure(&self, names: &[(String, Option<String>)], threshold: u32) {
        let mut e = self.lock();
        e.retain(|k, _| names.iter().any(|(n, _)| n == k));
        for (name, stored) in names {
            let entry = e.entry(name.clone()).or_insert_with(|| Entry {
                last: None,
                stored_status: stored.clone(),
                history: VecDeque::new(),
                alert: AlertState::new(threshold),
            });
            entry.alert.set_threshold(threshold);
        }
    }

    /// Record a verdict; the alert transition it causes, with the consecutive-failure count.
    pub fn record(&self, r: &RunResult) -> Option<(Transition, u32)> {
        let mut e = self.lock();
        let entry = e.get_mut(&r.scenario)?;
        let ok = r.status.is_delivered();
        if entry.history.len() == HISTORY {
            entry.history.pop_front();
        }
        let latency = r
            .total_ms
            .filter(|_| ok)
            .map(|ms| u64::try_from(ms).unwrap_or(0));
        entry.history.push_back(latency);
        let failures = entry.alert.consecutive_failures();
        let t = entry.alert.observe(ok);
        entry.last = Some(r.clone());
        // A recovery reports how many failures it ended.
        t.map(|t| (t, entry.alert.consecutive_failures().max(failures)))
    }

    /// The status page.
    pub fn page(&self, location: &str, generated_at: &str) -> String {
        let e = self.lock();
        let hist: Vec<(&String, Vec<Option<u64>>)> = e
            .iter()
            .map(|(k, v)| (k, v.history.iter().copied().collect()))
            .collect();
        let views: Vec<ScenarioView<'_>> = e
            .iter()
            .zip(&hist)
            .map(|((name, v), (_, h))| ScenarioView {
                name,
                last: v.last.as_ref(),
                stored_status: v.stored_status.as_deref(),
                history: h,
                health: v.alert.health(),
                consecutive_failures: v.alert.consecutive_failures(),
            })
            .collect();
        status_page::render(location, generated_at, &views)
    }
}
