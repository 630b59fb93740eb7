//! A record's program name: the usual Postfix and Dovecot names as static strings, any other
//! shared through the parser's interner. Does not parse the name out of a line (that is
//! `prefix`'s).

use std::sync::Arc;

use super::interner::{same_name, Interner};

/// A record's program (`postfix/smtpd`, `dovecot`, ...): one of the usual names as a static
/// string, any other shared. The usual names have no reference count: records are made on one
/// thread and read and dropped on others, and a count updated for each record was a cache line
/// the threads fought over (~90 % of the interner's time in a full diagnose went to it).
#[derive(Clone)]
pub enum ProgramName {
    Usual(&'static str),
    Other(Arc<str>),
}

/// Programs whose names records carry without a count: Postfix's daemons under its default
/// `syslog_name`, and Dovecot's. The most frequent first.
const USUAL_PROGRAMS: &[&str] = &[
    "postfix/smtpd",
    "postfix/qmgr",
    "postfix/postscreen",
    "postfix/cleanup",
    "postfix/smtp",
    "postfix/lmtp",
    "dovecot",
    "postfix/bounce",
    "postfix/pickup",
    "postfix/local",
    "postfix/virtual",
    "postfix/pipe",
    "postfix/error",
    "postfix/submission/smtpd",
    "postfix/smtps/smtpd",
    "postfix/dnsblog",
    "postfix/tlsproxy",
    "postfix/anvil",
    "postfix/master",
    "postfix/scache",
    "postfix/trivial-rewrite",
    "postfix/discard",
    "postfix/verify",
    "postfix/postdrop",
    "postfix/sendmail",
    "postfix/postqueue",
    "postfix/postsuper",
    "postfix/postfix-script",
    "postfix/tlsmgr",
    "postfix/proxymap",
    "postfix/flush",
    "postfix/showq",
    "postfix/defer",
    "postfix/trace",
    "postfix/postlogd",
    "imap",
    "lmtp",
    "pop3",
    "auth",
    "imap-login",
    "pop3-login",
];

impl ProgramName {
    /// The name of `b`: a usual one without a count, else shared through `interner`.
    pub(super) fn of(b: &[u8], interner: &mut Interner) -> Self {
        let usual = USUAL_PROGRAMS.iter().find(|p| same_name(p.as_bytes(), b));
        match usual {
            Some(p) => ProgramName::Usual(p),
            None => ProgramName::Other(interner.get(b)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ProgramName::Usual(s) => s,
            ProgramName::Other(s) => s,
        }
    }
}

impl std::ops::Deref for ProgramName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ProgramName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ProgramName {}

impl std::fmt::Debug for ProgramName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for ProgramName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{parse_line, ParseContext};

    /// The usual programs come without a count, the others through the interner; either way a
    /// record's program reads, compares and prints as its name.
    #[test]
    fn program_names_usual_and_other() {
        let mut i = Interner::default();
        let smtpd = ProgramName::of(b"postfix/smtpd", &mut i);
        assert!(matches!(smtpd, ProgramName::Usual("postfix/smtpd")));
        let custom = ProgramName::of(b"postfix-ec2/smtpd", &mut i);
        assert!(matches!(&custom, ProgramName::Other(s) if &**s == "postfix-ec2/smtpd"));
        assert_eq!(
            ProgramName::Other(Arc::from("postfix/smtpd")),
            smtpd,
            "equal by name, whatever the form"
        );
        assert_ne!(smtpd, custom);
        assert_eq!(
            format!("{smtpd:?} {custom}"),
            r#""postfix/smtpd" postfix-ec2/smtpd"#
        );
        assert_eq!(custom.rsplit('/').next(), Some("smtpd"));
        let mut seen = std::collections::HashSet::new();
        assert!(
            USUAL_PROGRAMS.iter().all(|p| seen.insert(p)),
            "listed twice"
        );
        let rec = parse_line(
            b"Nov  4 06:00:01 mx postfix/qmgr[7]: A705B99CDE: removed",
            &ParseContext::new("ec2", 2025),
        )
        .unwrap();
        assert!(matches!(rec.program, ProgramName::Usual("postfix/qmgr")));
    }
}
