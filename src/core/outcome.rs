//! The result of one probe: status vocabulary, submission record, stages. Pure data with the
//! JSON shape tools depend on (see README "JSON output").
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where in the SMTP conversation a submission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpPhase {
    Connect,
    Starttls,
    Auth,
    Mail,
    Rcpt,
    Data,
    Message,
}

/// What the sending server said about the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submission {
    pub started_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The last step reached (where a failure happened, or `message` when accepted).
    pub phase: SmtpPhase,
    /// The SMTP reply code (None when no reply was had, e.g. connection refused).
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    /// The reply text, or the error when there was no reply.
    pub text: String,
    pub queue_id: Option<String>,
}
