//! One `[[log_source]]` entry of flowtest.toml: where a host's server log comes from (a file, a
//! command, a docker container), checked before any I/O. Reading the source is the log-source
//! edge's job (`edge::logsource`); parsing lines is the core's.
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::core::logs::{LogZone, ParseContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSourceKind {
    File,
    Command,
    Docker,
}

/// A command as one shell string (`sh -c`) or an argument vector (no shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    Shell(String),
    Argv(Vec<String>),
}

/// One `[[log_source]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceConfig {
    /// Host role whose log this is (`ec2`, `dell`, `dovecot`, ...): names the stage.
    pub role: String,
    pub kind: LogSourceKind,
    /// `kind = "file"`: the log file (its rotated `<path>.1` is read too when needed).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `kind = "command"`: prints log lines; `{since}` / `{until}` (RFC 3339 UTC) and
    /// `{since_epoch}` / `{until_epoch}` are substituted.
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// `kind = "docker"`: the container name.
    #[serde(default)]
    pub container: Option<String>,
    /// Zone of timestamps that carry none (`UTC`, `+02:00`); default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Seconds a command / docker fetch may take (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl LogSourceConfig {
    /// Check the fields the kind needs (before any I/O).
    pub fn validate(&self) -> Result<(), String> {
        let bad = |msg: &str| Err(msg.to_owned());
        if self.role.trim().is_empty() {
            return bad("role is empty");
        }
        match self.kind {
            LogSourceKind::File if self.path.is_none() => return bad("kind = \"file\" needs path"),
            LogSourceKind::Command if self.command.is_none() => {
                return bad("kind = \"command\" needs command")
            }
            LogSourceKind::Docker if self.container.as_deref().is_none_or(str::is_empty) => {
                return bad("kind = \"docker\" needs container")
            }
            _ => {}
        }
        if let Some(CommandSpec::Argv(v)) = &self.command {
            if v.is_empty() {
                return bad("command is an empty list");
            }
        }
        if let Some(tz) = &self.timezone {
            if let Err(e) = LogZone::parse(tz) {
                return bad(&e);
            }
        }
        Ok(())
    }

    /// How to parse this source's lines. `now` resolves year-less timestamps (logs are not
    /// written in the future).
    pub fn parse_context(&self, now: DateTime<Utc>) -> Result<ParseContext, String> {
        let mut ctx = ParseContext::new(&self.role, now.year());
        if let Some(tz) = &self.timezone {
            ctx.tz = LogZone::parse(tz)?;
        }
        ctx.reference = Some(now);
        Ok(ctx)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.unwrap_or(30).max(1))
    }
}
