//! Findings vocabulary and diagnosis rules (issue 5). TEMPORARY contract stub on main: replaced
//! wholesale by the logs branch at merge.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    RelayAccessDenied,
    LookupFailure,
    NextHopRefused,
    NextHopTimeout,
    NextHopUnreachable,
    RecipientUnknown,
    MailboxPermissionDenied,
    MailboxFull,
    AuthFailed,
    AuthBackendError,
    TlsError,
    DnsError,
    RateLimited,
    RejectedOther,
    DeferredOther,
    BouncedOther,
    SpamFolder,
    ImapAuthFailed,
    UnexpectedPath,
}

impl FindingCode {
    pub fn hint(self) -> &'static str {
        ""
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: FindingCode,
    pub stage: Option<String>,
    pub host: Option<String>,
    pub message_id: Option<String>,
    pub message: String,
    pub evidence: Vec<String>,
    pub hint: String,
}

pub fn classify_smtp_reply(_code: u16, _enhanced: Option<&str>, _text: &str) -> FindingCode {
    FindingCode::RejectedOther
}
