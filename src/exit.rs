//! Process exit codes: the contract scripts and CI jobs rely on.

/// flowtest's exit codes. Keep in sync with the README's "Exit codes" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything delivered within its SLO (or: the command did what was asked).
    Ok = 0,
    /// Degraded: delivered but slow, or delivered to a spam folder.
    Degraded = 1,
    /// Failed: lost, rejected, bounced, could not send, could not fetch.
    Failed = 2,
    /// flowtest itself could not run or could not decide: usage, configuration, missing secret,
    /// unreadable input, or a scenario that ended in `error` (an internal failure) or `interrupted`.
    Unusable = 3,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<crate::core::outcome::Severity> for Exit {
    fn from(s: crate::core::outcome::Severity) -> Self {
        use crate::core::outcome::Severity;
        match s {
            Severity::Ok => Exit::Ok,
            Severity::Degraded => Exit::Degraded,
            Severity::Failed => Exit::Failed,
            Severity::Unknown => Exit::Unusable,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
