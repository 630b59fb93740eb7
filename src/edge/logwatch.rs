//! Live server-log evidence for one probe while `flowtest run` waits: every configured
//! `[[log_source]]` is followed from the moment before the probe is sent, its lines are kept
//! (bounded), and the probe's fused timeline (core::fusion) is rebuilt on demand from them.
//!
//! File sources are followed like `tail -F` from their size just before sending; command and
//! docker sources are re-fetched for the probe's window every few seconds. Parsing and fusion are
//! the pure core's; this module only gathers lines and hands them over.
use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::clock;
use crate::core::diagnose::merge::{Merge, ParsedLines};
use crate::core::diagnose::Window;
use crate::core::diagnosis::Finding;
use crate::core::fusion::{
    fuse_probe, Correlator, HeaderHop, Limits, MessageChain, ProbeContext, ProbeTimeline,
};
use crate::core::logs::ParseContext;
use crate::edge::logsource::{
    fetch_window, follow_file, FollowFrom, FollowHandle, LogSourceConfig, LogSourceKind,
};

/// Lines kept per source; a busy production log drops its oldest lines past this (counted).
const MAX_LINES_PER_SOURCE: usize = 200_000;
/// How often command and docker sources are fetched again.
const REFETCH: Duration = Duration::from_secs(2);
/// How far before the send a fetched window starts (clock skew between hosts).
const WINDOW_SLACK_SECS: i64 = 30;

struct Source {
    cfg: LogSourceConfig,
    ctx: ParseContext,
    lines: VecDeque<Vec<u8>>,
    dropped: u64,
    follow: Option<(FollowHandle, mpsc::Receiver<Vec<u8>>)>,
    last_fetch: Option<Instant>,
    error: Option<String>,
}

/// Log evidence being gathered for one probe.
pub struct LogWatch {
    sources: Vec<Source>,
    since: DateTime<Utc>,
}

impl LogWatch {
    /// Start following `sources` now (call right before sending). Sources that cannot be set up
    /// are reported as warnings and skipped: logs refine a result, they never block it.
    pub fn start(sources: &[LogSourceConfig]) -> (LogWatch, Vec<String>) {
        let now = clock::now();
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for (cfg, ctx) in usable(sources, now, &mut warnings) {
            let follow = match (&cfg.kind, &cfg.path) {
                (LogSourceKind::File, Some(path)) => {
                    let from = match std::fs::metadata(path) {
                        Ok(m) => FollowFrom::Offset(m.len()),
                        // Not there yet: whatever appears is new.
                        Err(_) => FollowFrom::Beginning,
                    };
                    Some(follow_file(path.clone(), from, Duration::from_millis(100)))
                }
                _ => None,
            };
            out.push(Source {
                cfg: cfg.clone(),
                ctx,
                lines: VecDeque::new(),
                dropped: 0,
                follow,
                last_fetch: None,
                error: None,
            });
        }
        (
            LogWatch {
                sources: out,
                since: now - TimeDelta::seconds(WINDOW_SLACK_SECS),
            },
            warnings,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Take in what the sources have produced since the last call.
    pub async fn refresh(&mut self, force_fetch: bool) {
        let since = self.since;
        for s in &mut self.sources {
            if let Some((_, rx)) = s.follow.as_mut() {
                while let Ok(line) = rx.try_recv() {
                    if s.lines.len() >= MAX_LINES_PER_SOURCE {
                        s.lines.pop_front();
                        s.dropped += 1;
                    }
                    s.lines.push_back(line);
                }
                continue;
            }
            let due = force_fetch || s.last_fetch.is_none_or(|t| t.elapsed() >= REFETCH);
            if !due {
                continue;
            }
            s.last_fetch = Some(clock::instant());
            let now = clock::now();
            match fetch_window(&s.cfg, since, now + TimeDelta::seconds(5), now).await {
                Ok(lines) => {
                    let skip = lines.len().saturating_sub(MAX_LINES_PER_SOURCE);
                    s.dropped = skip as u64;
                    s.lines = lines.into_iter().skip(skip).collect();
                    s.error = None;
                }
                Err(e) => s.error = Some(e.to_string()),
            }
        }
    }

    /// Problems reading the sources, for the result's warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for s in &self.sources {
            // The error names its source already.
            if let Some(e) = &s.error {
                w.push(e.clone());
            }
            if s.dropped > 0 {
                w.push(format!(
                    "log source {}: {} old lines dropped (busy log)",
                    s.cfg.role, s.dropped
                ));
            }
        }
        w
    }

    /// The probe's timeline from every line gathered so far (all sources merged in time order).
    pub fn timeline(&self, probe: &ProbeContext, header_hops: &[HeaderHop]) -> ProbeTimeline {
        let corr = correlate(
            self.sources.iter().map(|s| (s.ctx.clone(), s.lines.iter())),
            None,
        );
        fuse_probe(probe, &corr.finish(), header_hops)
    }
}

/// Parse every source's lines, merge them in time order (`core::diagnose::merge`: a source's
/// lines keep their order when timestamps tie or are missing) and correlate them. Records stamped
/// before `since` are left out.
fn correlate<'a, L: Iterator<Item = &'a Vec<u8>>>(
    sources: impl Iterator<Item = (ParseContext, L)>,
    since: Option<DateTime<Utc>>,
) -> Correlator {
    let window = Window { since, until: None };
    let lanes = sources
        .map(|(ctx, lines)| ParsedLines::new(ctx, lines, window))
        .collect();
    let mut corr = Correlator::new(Limits::default());
    for r in Merge::new(lanes) {
        corr.push(r);
    }
    corr
}

/// The sources whose parse context can be set up, with it; the others become warnings naming
/// their source (logs refine a result, they never block it).
fn usable<'a>(
    sources: &'a [LogSourceConfig],
    now: DateTime<Utc>,
    warnings: &mut Vec<String>,
) -> Vec<(&'a LogSourceConfig, ParseContext)> {
    let mut out = Vec::new();
    for cfg in sources {
        match cfg.parse_context(now) {
            Ok(ctx) => out.push((cfg, ctx)),
            Err(e) => warnings.push(format!("log source {}: {e}", cfg.role)),
        }
    }
    out
}

/// Host-level findings (daemon errors, auth failures, permission problems) the sources logged
/// in the last `lookback`: why a mailbox could not be read when nothing was sent.
pub async fn recent_host_findings(
    sources: &[LogSourceConfig],
    lookback: Duration,
) -> (Vec<Finding>, Vec<String>) {
    let (corr, warnings) = recent(sources, lookback).await;
    (corr.host_findings(), warnings)
}

/// Every message the sources logged in the last `lookback`, correlated across hosts (open
/// ones included: mail still waiting in a queue), with the sources that could not be read as
/// warnings naming them.
pub async fn recent_messages(
    sources: &[LogSourceConfig],
    lookback: Duration,
) -> (Vec<MessageChain>, Vec<String>) {
    let (corr, warnings) = recent(sources, lookback).await;
    (corr.finish(), warnings)
}

/// Fetch the last `lookback` of every source and correlate it.
async fn recent(sources: &[LogSourceConfig], lookback: Duration) -> (Correlator, Vec<String>) {
    let now = clock::now();
    let since = now - TimeDelta::from_std(lookback).unwrap_or(TimeDelta::seconds(30));
    let mut fetched = Vec::new();
    let mut warnings = Vec::new();
    for (cfg, ctx) in usable(sources, now, &mut warnings) {
        match fetch_window(cfg, since, now + TimeDelta::seconds(1), now).await {
            Ok(lines) => fetched.push((ctx, lines)),
            // The error names its source already.
            Err(e) => warnings.push(e.to_string()),
        }
    }
    let corr = correlate(
        fetched
            .iter()
            .map(|(ctx, lines)| (ctx.clone(), lines.iter())),
        Some(since),
    );
    (corr, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::logsource::CommandSpec;

    fn source(kind: LogSourceKind) -> LogSourceConfig {
        LogSourceConfig {
            role: "ec2".into(),
            kind,
            path: None,
            command: None,
            container: None,
            timezone: None,
            timeout_secs: Some(5),
        }
    }

    /// One warning, naming its source exactly once ("log source ec2: ...").
    fn assert_named_once(warnings: &[String]) {
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        let w = &warnings[0];
        assert!(w.starts_with("log source ec2: "), "{w}");
        assert_eq!(w.matches("log source ec2").count(), 1, "{w}");
    }

    #[tokio::test]
    async fn a_failing_command_source_is_named_once() {
        let mut cfg = source(LogSourceKind::Command);
        cfg.command = Some(CommandSpec::Argv(vec![
            "sh".into(),
            "-c".into(),
            "echo broken >&2; exit 3".into(),
        ]));
        let (mut watch, warnings) = LogWatch::start(&[cfg]);
        assert!(warnings.is_empty(), "{warnings:#?}");
        watch.refresh(true).await;
        let warnings = watch.warnings();
        assert_named_once(&warnings);
        assert!(warnings[0].contains("broken"), "{warnings:#?}");
    }

    #[tokio::test]
    async fn an_unreadable_file_source_is_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = source(LogSourceKind::File);
        cfg.path = Some(dir.path().join("missing.log"));
        let (findings, warnings) = recent_host_findings(&[cfg], Duration::from_secs(30)).await;
        assert!(findings.is_empty());
        assert_named_once(&warnings);
        assert!(warnings[0].contains("missing.log"), "{warnings:#?}");
    }

    #[tokio::test]
    async fn a_source_with_a_bad_time_zone_is_named_once() {
        let mut cfg = source(LogSourceKind::Command);
        cfg.command = Some(CommandSpec::Argv(vec!["true".into()]));
        cfg.timezone = Some("Mars/Olympus".into());
        let (watch, warnings) = LogWatch::start(std::slice::from_ref(&cfg));
        assert!(watch.is_empty());
        assert_named_once(&warnings);
        let (_, warnings) = recent_host_findings(&[cfg], Duration::from_secs(30)).await;
        assert_named_once(&warnings);
    }

    #[test]
    fn records_before_since_are_left_out() {
        let ec2: Vec<Vec<u8>> = vec![
            b"Nov  4 18:12:30 mx postfix/qmgr[1]: 4ABC00000: removed".to_vec(),
            b"Nov  4 18:12:33 mx postfix/qmgr[1]: 4ABE00000: removed".to_vec(),
        ];
        let dell: Vec<Vec<u8>> =
            vec![b"Nov  4 18:12:31 dell postfix/qmgr[1]: 5ABC00000: removed".to_vec()];
        let since = DateTime::parse_from_rfc3339("2025-11-04T18:12:31Z")
            .unwrap()
            .with_timezone(&Utc);
        let corr = correlate(
            [
                (ParseContext::new("ec2", 2025), ec2.iter()),
                (ParseContext::new("dell", 2025), dell.iter()),
            ]
            .into_iter(),
            Some(since),
        );
        assert_eq!(corr.stats().records, 2);
        assert_eq!(
            corr.now(),
            DateTime::parse_from_rfc3339("2025-11-04T18:12:33Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
    }
}
