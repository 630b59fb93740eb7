//! One stored probe result as the history readers hand it out: the shape shared by every store
//! backend (SQLite, PostgreSQL) and everything that reads the history (the SLA report).
//! Not here: reading or writing a store (the edge), or what the figures mean (`sla`).
use chrono::{DateTime, Utc};

use crate::diagnosis::FindingCode;
use crate::outcome::Status;

/// What a history scan selects. Times are a half-open window `[from, to)` on `sent_at`; empty
/// lists select everything.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scenarios: Vec<String>,
    pub locations: Vec<String>,
}

/// One probe's stored result, reduced to what the history is read for.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub probe_id: String,
    pub scenario: String,
    /// Where the canary (or run) that sent it runs; `default` when none was configured.
    pub location: String,
    /// `None` while the row is still `pending` (its verdict not stored yet).
    pub status: Option<Status>,
    pub sent_at: DateTime<Utc>,
    /// Submission to detection, when the probe arrived within its timeout.
    pub total_ms: Option<u64>,
    /// The scenario's timeout when the probe was sent.
    pub timeout_ms: u64,
    /// The latency target (SLO) the scenario had when the probe was sent.
    pub slo_target_ms: Option<u64>,
    /// A `lost` probe that showed up later: when, and how long it took.
    pub late: Option<LateArrival>,
    pub stages: Vec<HistoryStage>,
    pub findings: Vec<HistoryFinding>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LateArrival {
    pub detected_at: DateTime<Utc>,
    pub total_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryStage {
    pub name: String,
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryFinding {
    pub code: FindingCode,
    /// The stage (host role) where the probe got stuck.
    pub stage: Option<String>,
    pub message: String,
    pub hint: String,
}
