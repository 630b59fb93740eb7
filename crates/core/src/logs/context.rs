//! What the parser needs to know about a source that its lines do not say: the stage it stands
//! for, the year and zone of stamps without them, and whether its lines name their own hosts.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::LogZone;

/// What the parser needs to know about a source that its lines do not say.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// Host role of the source (`ec2`, `dell`, `dovecot`, ...): names the stage and keys queue ids
    /// (of a line that names its host, that host instead, with `hosts_from_lines`).
    pub role: Arc<str>,
    /// Year for year-less formats when no `reference` is given.
    pub year: i32,
    /// Zone of timestamps that carry none (classic syslog, Dovecot's own log).
    pub tz: LogZone,
    /// A time the log cannot be later than (file mtime, or now for a live command). When set,
    /// year-less dates more than two days after it are taken to be from the previous year.
    pub reference: Option<DateTime<Utc>>,
    /// A line that names its host (syslog layouts) stands for that host, not for `role`: a
    /// central syslog server's file holds the lines of many hosts, each its own stage.
    pub hosts_from_lines: bool,
}

impl ParseContext {
    pub fn new(role: &str, year: i32) -> Self {
        ParseContext {
            role: Arc::from(role),
            year,
            tz: LogZone::UTC,
            reference: None,
            hosts_from_lines: false,
        }
    }
}
