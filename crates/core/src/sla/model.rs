//! The SLA report's data: what every format (human, markdown, JSON, HTML) renders. Its JSON form
//! is a documented contract: fields may be added, the ones here are never renamed.
//! Not here: computing it (aggregation) or rendering it.
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::diagnosis::FindingCode;

/// The whole report: one window, one entry per (scenario, location).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaReport {
    pub window: Window,
    /// The availability objective the error budget is measured against, e.g. 99.9.
    pub slo_target_percent: f64,
    /// How percentiles are computed (`nearest-rank`), said in every format.
    pub percentile_method: &'static str,
    /// The time zone days are cut in (`UTC` unless asked otherwise).
    pub time_zone: String,
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// One scenario at one location over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub location: String,
    /// Every probe sent in the window, whatever became of it.
    pub probes: u64,
    /// Delivered within the timeout (to the inbox or a spam folder).
    pub delivered: u64,
    /// Of `delivered`, placed in a spam folder.
    pub delivered_spam: u64,
    /// Not delivered within the timeout and never seen since.
    pub lost: u64,
    /// Not delivered within the timeout, seen later (counted as failures for availability).
    pub late: u64,
    /// Refused, bounced, not sent, or the mailbox could not be read.
    pub failed: u64,
    /// Stopped before a verdict (`interrupted`): shown apart, counted in neither direction.
    pub interrupted: u64,
    /// flowtest failed inside (`error`): shown apart, counted in neither direction.
    pub errors: u64,
    /// Still `pending` (no verdict stored yet): shown apart.
    pub pending: u64,
    /// delivered / decided probes, in percent; `None` with no decided probe.
    pub availability_percent: Option<f64>,
    /// Delivered within the latency target / decided probes, in percent.
    pub slo_percent: Option<f64>,
    pub latency_ms: Latency,
    /// Share of the period's error budget (1 - target) left, in percent; negative when overspent.
    pub error_budget_left_percent: Option<f64>,
    pub stages: Vec<StageLatency>,
    pub days: Vec<DayReport>,
    pub incidents: Vec<Incident>,
}

/// Percentiles over the delivered probes' end-to-end latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLatency {
    pub name: String,
    /// How many probes measured this stage.
    pub samples: u64,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    pub date: NaiveDate,
    pub probes: u64,
    pub delivered: u64,
    pub lost: u64,
    pub late: u64,
    pub failed: u64,
    pub availability_percent: Option<f64>,
    pub slo_percent: Option<f64>,
    pub latency_ms: Latency,
}

/// A run of consecutive failed probes of one scenario at one location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub start: DateTime<Utc>,
    /// The first probe sent after it that succeeded; `None` while it lasts to the window's end.
    pub end: Option<DateTime<Utc>>,
    pub failed_probes: u64,
    /// The statuses seen (e.g. `lost`, `rejected`), most frequent first.
    pub statuses: Vec<String>,
    /// The stage where the probes stopped, when the findings name one.
    pub stage: Option<String>,
    pub findings: Vec<IncidentFinding>,
    /// Share of the window's decided probes this incident cost, in availability points.
    pub availability_cost_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentFinding {
    pub code: FindingCode,
    pub message: String,
    pub hint: String,
    pub count: u64,
}
