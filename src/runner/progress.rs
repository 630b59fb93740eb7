//! Live progress: what each running scenario is doing, for the CLI's status line. Not here: how
//! the line is drawn (cmd/run.rs).
use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::clock;

/// One scenario's current step and when its run started.
struct Step {
    what: String,
    started: Instant,
}

/// What each running scenario is doing. Rendered by the CLI, ignored by tests.
#[derive(Default)]
pub struct Progress {
    state: Mutex<BTreeMap<String, Step>>,
}

impl Progress {
    pub fn set(&self, scenario: &str, what: &str) {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let started = m
            .get(scenario)
            .map(|s| s.started)
            .unwrap_or_else(clock::instant);
        m.insert(
            scenario.to_string(),
            Step {
                what: what.to_string(),
                started,
            },
        );
    }

    pub fn done(&self, scenario: &str) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scenario);
    }

    /// The current step of one scenario, if it is running.
    pub fn step(&self, scenario: &str) -> Option<String> {
        let m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        m.get(scenario).map(|s| s.what.clone())
    }

    /// One line: `lab-inbound: waiting for arrival (1.2 s) | ...`.
    pub fn line(&self) -> String {
        let now = clock::instant();
        let m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|(k, s)| {
                let secs = now.saturating_duration_since(s.started).as_secs_f64();
                format!("{k}: {} ({secs:.1} s)", s.what)
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_line_shows_each_step_with_time_since_the_run_started() {
        let p = Progress::default();
        p.set("b", "logging in");
        tokio::time::advance(Duration::from_millis(1200)).await;
        p.set("b", "waiting for arrival");
        p.set("a", "sending");
        assert_eq!(
            p.line(),
            "a: sending (0.0 s) | b: waiting for arrival (1.2 s)"
        );
        p.done("b");
        assert_eq!(p.step("b"), None);
        assert_eq!(p.step("a").as_deref(), Some("sending"));
    }
}
