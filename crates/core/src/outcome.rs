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
    /// A mail-sending HTTP API request (SendGrid's v3 `mail/send`); `code` is the HTTP status.
    HttpApi,
}

/// How flowtest proved who it is to a server: the SASL mechanism, by its registered name in JSON
/// (`"XOAUTH2"`), or the sending API's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuthMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "LOGIN")]
    Login,
    /// Google's SASL form of an OAuth 2 bearer token (Gmail, Microsoft 365).
    #[serde(rename = "XOAUTH2")]
    XOAuth2,
    /// RFC 7628's SASL form of an OAuth 2 bearer token.
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
    /// IMAP's own LOGIN command (a password, outside SASL).
    #[serde(rename = "IMAP LOGIN")]
    ImapLogin,
    /// An HTTP API key sent as `Authorization: Bearer` (SendGrid's v3 API).
    #[serde(rename = "HTTP BEARER")]
    HttpBearer,
}

impl AuthMechanism {
    /// The name as servers and JSON write it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::XOAuth2 => "XOAUTH2",
            AuthMechanism::OAuthBearer => "OAUTHBEARER",
            AuthMechanism::ImapLogin => "IMAP LOGIN",
            AuthMechanism::HttpBearer => "HTTP BEARER",
        }
    }

    /// An OAuth 2 access token, not a password: a refusal is the token's (provider_auth_failed).
    pub fn is_oauth(self) -> bool {
        matches!(self, AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer)
    }
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
    /// How the submission authenticated (absent when it did not, e.g. an MX on port 25, or when
    /// it stopped before AUTH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_mechanism: Option<AuthMechanism>,
    /// How long each step of the SMTP conversation took (client clock), in order; empty for
    /// an HTTP API submission. (A boxed slice keeps a send's outcome small.)
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub steps: Box<[crate::submission_steps::StepTime]>,
}

/// How arrival was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    /// IMAP IDLE push.
    Idle,
    /// NOOP/fetch polling (server without IDLE, or IDLE turned off).
    Poll,
}

/// How bad an outcome is, worst last. Nagios' OK / WARNING / CRITICAL / UNKNOWN; the CLI's exit
/// codes follow the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Delivered within the SLO.
    Ok,
    /// Delivered, but slow or into a junk folder.
    Degraded,
    /// Not delivered.
    Failed,
    /// flowtest itself could not decide.
    Unknown,
}

impl Severity {
    /// Nagios' name for this state.
    pub fn nagios(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Degraded => "WARNING",
            Severity::Failed => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }
}

/// The probe's verdict. See README "Statuses and exit codes".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Delivered,
    Slow,
    DeliveredSpam,
    Lost,
    Rejected,
    Bounced,
    SendFailed,
    FetchFailed,
    /// flowtest failed inside (a panic, an internal error): the probe's fate is not known.
    Error,
    /// The run was stopped (SIGINT/SIGTERM) before the probe's fate was known.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Slow => "slow",
            Status::DeliveredSpam => "delivered_spam",
            Status::Lost => "lost",
            Status::Rejected => "rejected",
            Status::Bounced => "bounced",
            Status::SendFailed => "send_failed",
            Status::FetchFailed => "fetch_failed",
            Status::Error => "error",
            Status::Interrupted => "interrupted",
        }
    }

    /// How bad this verdict is, in Nagios' terms (the CLI maps it to an exit code). A run that
    /// failed inside or was stopped decided nothing about the mail path: UNKNOWN, never OK.
    pub fn severity(self) -> Severity {
        match self {
            Status::Delivered => Severity::Ok,
            Status::Slow | Status::DeliveredSpam => Severity::Degraded,
            Status::Error | Status::Interrupted => Severity::Unknown,
            _ => Severity::Failed,
        }
    }

    pub fn is_delivered(self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::Slow | Status::DeliveredSpam
        )
    }
}

pub use crate::fusion::{HostSkew, Stage, StageSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SloReport {
    pub target_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

/// What cleanup did. Only verified probes (and bounces quoting one) are ever deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// This run's own probe (and its bounce) removed.
    pub deleted: u32,
    /// Left-over probes of earlier runs removed.
    pub swept: u32,
    /// Probe ids recorded `lost` earlier and seen now: marked late in the store.
    pub marked_late: Vec<String>,
    /// Further copies of a probe already removed once, left in place (`probe_replayed`).
    #[serde(skip_serializing_if = "is_zero")]
    pub replayed: u32,
    /// Genuine tags on messages whose Message-ID is not the probe's, left in place
    /// (`probe_forged`).
    #[serde(skip_serializing_if = "is_zero")]
    pub forged: u32,
    /// Why cleanup did not (fully) happen, if it did not.
    pub note: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One probe's full result: the JSON contract of `flowtest run --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub scenario: String,
    pub probe_id: String,
    pub status: Status,
    pub sent_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub detected_at: Option<DateTime<Utc>>,
    /// Submission start to detection in the mailbox, flowtest's own clock.
    pub total_ms: Option<i64>,
    /// Submission start to the mailbox server's own "saved" log line (skew-corrected): delivery
    /// without the client's notification delay (Dovecot's IDLE waits 500 ms). Null without logs.
    pub delivered_ms: Option<i64>,
    pub folder: Option<String>,
    pub detected_by: Option<DetectedBy>,
    /// IMAP commands the mailbox watch issued for this probe, from arming to the verdict
    /// (looks, IDLE and DONE; not the login and SELECTs before arming). Absent when no watch ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imap_commands: Option<u32>,
    pub submission: Option<Submission>,
    /// How the mailbox session authenticated (absent when no login succeeded or was tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imap_auth_mechanism: Option<AuthMechanism>,
    pub stages: Vec<Stage>,
    pub hops: Vec<crate::trace::Hop>,
    pub missing_stages: Vec<String>,
    pub findings: Vec<crate::diagnosis::Finding>,
    /// What the server logs say became of the probe (`delivered`, `deferred`, `bounced`,
    /// `rejected`, `queued`, `unknown`); null when no log source is configured.
    pub log_status: Option<String>,
    /// The last stage (or host role) whose log saw the probe: where a lost probe stopped.
    pub last_hop: Option<String>,
    /// Per-host clock offsets estimated from the logs against flowtest's clock.
    pub skew: Vec<HostSkew>,
    /// Remarks from fusing the evidence (skew corrections, bounded figures).
    pub notes: Vec<String>,
    /// When flowtest reached its verdict (with `findings[].first_seen`: how fast it failed).
    pub verdict_at: DateTime<Utc>,
    pub slo: SloReport,
    pub timeout_ms: u64,
    pub cleanup: CleanupReport,
    pub warnings: Vec<String>,
}

/// Per-stage latencies from what the client alone knows: its own submission timing and the
/// hops that carry a stage name (Received arithmetic: whole seconds, two clocks, so negative
/// figures are bounded to zero and flagged). Used when no server log covers the probe.
pub fn client_stages(sub: Option<&Submission>, hops: &[crate::trace::Hop]) -> Vec<Stage> {
    let mut out = Vec::new();
    if let Some(s) = sub {
        if let Some(acc) = s.accepted_at {
            out.push(Stage {
                name: "submission".into(),
                ms: (acc - s.started_at).num_milliseconds().max(0) as u64,
                source: StageSource::Client,
                precision_ms: 1,
                bounded: false,
                detail: Some(crate::submission_steps::stage_detail(s)),
            });
        }
    }
    for h in hops {
        if let (Some(name), Some(ms)) = (&h.stage, h.delay_ms) {
            out.push(Stage {
                name: name.clone(),
                ms: ms.max(0) as u64,
                source: StageSource::Header,
                precision_ms: 1000,
                bounded: ms < 0,
                detail: Some(
                    "difference of Received timestamps (whole seconds, two clocks)".into(),
                ),
            });
        }
    }
    out
}

/// Severity of a set of results: the worst one.
pub fn severity_of(results: &[RunResult]) -> Severity {
    results
        .iter()
        .map(|r| r.status.severity())
        .max()
        .unwrap_or(Severity::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_failed_inside_or_was_stopped_is_unknown_never_ok() {
        assert_eq!(Status::Error.as_str(), "error");
        assert_eq!(Status::Interrupted.as_str(), "interrupted");
        for s in [Status::Error, Status::Interrupted] {
            assert_eq!(s.severity(), Severity::Unknown);
            assert_eq!(s.severity().nagios(), "UNKNOWN");
            assert!(!s.is_delivered());
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(Status::Lost.severity(), Severity::Failed);
    }
}
