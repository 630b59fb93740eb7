//! The canary's pure parts: when each scenario fires (`schedule`), when a scenario's health
//! changes enough to alert (`alert_state`), what an alert says (`payload`), and the status page
//! with its latency sparkline (`status_page`, `sparkline`). No clocks, no I/O: the daemon in the
//! `flowtest` package hands in times and results and does the sending and serving.
pub mod alert_state;
pub mod payload;
pub mod schedule;
pub mod sparkline;
pub mod status_page;

use chrono::{TimeZone, Utc};

use crate::outcome::{CleanupReport, RunResult, SloReport, Status};

/// A result with only a scenario, a verdict and a latency, stamped 2026-11-29 06:00 UTC: the
/// fixture the canary's tests (here and in the daemon) build on.
pub fn bare_result(scenario: &str, status: Status, total_ms: Option<i64>) -> RunResult {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 29, 6, 0, 0)
        .single()
        .unwrap_or_default();
    RunResult {
        scenario: scenario.into(),
        probe_id: "0193-probe".into(),
        status,
        sent_at: t,
        accepted_at: None,
        detected_at: None,
        total_ms,
        delivered_ms: None,
        folder: None,
        detected_by: None,
        submission: None,
        stages: Vec::new(),
        hops: Vec::new(),
        missing_stages: Vec::new(),
        findings: Vec::new(),
        log_status: None,
        last_hop: None,
        skew: Vec::new(),
        notes: Vec::new(),
        verdict_at: t,
        slo: SloReport {
            target_ms: None,
            max_ms: None,
        },
        timeout_ms: 60_000,
        cleanup: CleanupReport::default(),
        warnings: Vec::new(),
    }
}
