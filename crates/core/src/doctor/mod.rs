//! `flowtest doctor`'s model: one [`Check`] per item looked at (a DNS record, a TCP connect, an
//! SMTP banner, a TLS handshake, an IMAP login, a relay judged from the logs), its status and the
//! fix, plus the summary and the severity that picks the exit code. Pure: the judging of what the
//! edges saw lives in `judge`, the outputs in `render`, the fixes' wording in `hints`; nothing
//! here touches the network or reads a clock.
pub mod hints;
pub mod judge;
pub mod render;

use serde::Serialize;

use crate::outcome::Severity;
use crate::text::escape_control;

/// How one item fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Could not be judged (not reached because an earlier item failed, or no evidence).
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }

    /// The checklist's mark.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "[ ok ]",
            Status::Warn => "[warn]",
            Status::Fail => "[FAIL]",
            Status::Unknown => "[ ?? ]",
        }
    }
}

/// What was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Item {
    /// A recipient domain's MX set.
    DnsMx,
    /// A host's A/AAAA records.
    DnsAddress,
    /// A TCP connect to a server flowtest talks to.
    Tcp,
    /// The SMTP greeting.
    SmtpBanner,
    /// The EHLO capabilities.
    SmtpEhlo,
    /// The TLS handshake and the server's certificate.
    Tls,
    ImapLogin,
    ImapCapabilities,
    /// The watched folders exist.
    ImapFolders,
    /// A hop flowtest cannot reach, judged from the sending side's log.
    Relay,
    /// The SendGrid API key: accepted, and allowed to send mail (`mail.send`).
    SendgridApiKey,
}

impl Item {
    pub fn as_str(self) -> &'static str {
        match self {
            Item::DnsMx => "dns-mx",
            Item::DnsAddress => "dns-address",
            Item::Tcp => "tcp",
            Item::SmtpBanner => "smtp-banner",
            Item::SmtpEhlo => "smtp-ehlo",
            Item::Tls => "tls",
            Item::ImapLogin => "imap-login",
            Item::ImapCapabilities => "imap-capabilities",
            Item::ImapFolders => "imap-folders",
            Item::Relay => "relay",
            Item::SendgridApiKey => "sendgrid-api-key",
        }
    }
}

/// A judgement before it is attached to a scenario and a target: status, what was seen, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub status: Status,
    pub detail: String,
    /// The fix; `None` when the item passed.
    pub hint: Option<String>,
}

impl Judgement {
    pub fn pass(detail: impl Into<String>) -> Self {
        Judgement {
            status: Status::Pass,
            detail: detail.into(),
            hint: None,
        }
    }
    pub fn with(status: Status, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Judgement {
            status,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
}

/// One checked item. Text that came from a peer (banners, certificate names, log lines) is
/// escaped when the check is built, so every output shows it safely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub scenario: String,
    pub item: Item,
    /// What was checked: a domain, a host, `host:port`, `role -> role`.
    pub target: String,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
    /// How long the check took, when it talked to something.
    pub ms: Option<u64>,
}

impl Check {
    pub fn new(scenario: &str, item: Item, target: &str, j: Judgement, ms: Option<u64>) -> Self {
        Check {
            scenario: scenario.to_owned(),
            item,
            target: escape_control(target).into_owned(),
            status: j.status,
            detail: escape_control(&j.detail).into_owned(),
            hint: j.hint.map(|h| escape_control(&h).into_owned()),
            ms,
        }
    }
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub unknown: usize,
    pub total: usize,
    /// Nagios' word for the whole (`OK`, `WARNING`, `CRITICAL`, `UNKNOWN`).
    pub state: &'static str,
}

impl Summary {
    pub fn of(checks: &[Check]) -> Summary {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let mut s = Summary {
            pass: count(Status::Pass),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            unknown: count(Status::Unknown),
            total: checks.len(),
            state: "",
        };
        s.state = s.severity().nagios();
        s
    }

    /// Any failure is a failure; a warning or an item that could not be judged is a warning
    /// (the system was not shown healthy); no checks at all means nothing was decided.
    pub fn severity(&self) -> Severity {
        if self.total == 0 {
            Severity::Unknown
        } else if self.fail > 0 {
            Severity::Failed
        } else if self.warn > 0 || self.unknown > 0 {
            Severity::Degraded
        } else {
            Severity::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status) -> Check {
        Check::new(
            "s",
            Item::Tcp,
            "mx:25",
            Judgement {
                status,
                detail: "d".into(),
                hint: None,
            },
            Some(1),
        )
    }

    #[test]
    fn severity_follows_the_worst_item() {
        assert_eq!(Summary::of(&[]).severity(), Severity::Unknown);
        assert_eq!(Summary::of(&[check(Status::Pass)]).severity(), Severity::Ok);
        let s = Summary::of(&[check(Status::Pass), check(Status::Unknown)]);
        assert_eq!((s.severity(), s.state), (Severity::Degraded, "WARNING"));
        let s = Summary::of(&[check(Status::Warn), check(Status::Fail)]);
        assert_eq!(
            (s.severity(), s.fail, s.warn, s.total),
            (Severity::Failed, 1, 1, 2)
        );
    }

    #[test]
    fn peer_text_is_escaped_when_the_check_is_built() {
        let c = Check::new(
            "s",
            Item::SmtpBanner,
            "mx\x1b[2J:25",
            Judgement::with(Status::Fail, "220 \x1b]0;pwned\x07", "fix \u{9b}it"),
            None,
        );
        for t in [&c.target, &c.detail, c.hint.as_ref().unwrap()] {
            assert!(!t.chars().any(|ch| ch.is_control()), "{t:?}");
        }
    }
}
