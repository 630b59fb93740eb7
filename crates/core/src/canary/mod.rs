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

use crate::outcome::{RunResult, SloReport, Status};

/// A result with only a scenario, a verdict and a latency, stamped 2026-11-29 06:00 UTC: the
/// fixture the canary's tests (here and in the daemon) build on.
pub fn bare_result(scenario: &str, status: Status, total_ms: Option<i64>) -> RunResult {
    let t = Utc
        .with_ymd_and_hms(2026, 11, 29, 6, 0, 0)
        .single()
        .unwrap_or_default();
    let slo = SloReport {
        target_ms: None,
        max_ms: None,
    };
    let mut r = crate::verdict::fresh_result(scenario, "0193-probe", t, slo, 60_000);
    r.status = status;
    r.total_ms = total_ms;
    r
}
