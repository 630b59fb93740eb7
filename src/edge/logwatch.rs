//! Live server-log evidence for one probe while `flowtest run` waits: every configured
//! `[[log_source]]` is followed from the moment before the probe is sent, and each line is
//! parsed and correlated once, as it arrives (core::fusion's streaming correlator); the probe's
//! fused timeline is assembled on demand from the chains that can be its own.
//!
//! File sources are followed like `tail -F` from their size just before sending, read on each
//! refresh (everything written before it, off the async threads); command and docker sources are re-fetched for the probe's window every few seconds, and only the lines
//! after those already taken are new. Parsing and fusion are the pure core's; this module only
//! gathers lines and hands them over.
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use crate::clock;
use crate::core::diagnose::merge::{Merge, ParsedLines, RecordSource};
use crate::core::diagnose::Window;
use crate::core::diagnosis::Finding;
use crate::core::fusion::{
    fuse_probe, Correlator, HeaderHop, Limits, MessageChain, MessageStatus, ProbeContext,
    ProbeTimeline,
};
use crate::core::logs::{LineParser, LogRecord, ParseContext, Parsed};
use crate::edge::follow::{self, FileFollower, FollowFrom};
use crate::edge::logsource::{fetch_window, LogSourceConfig, LogSourceKind};

/// Finished chains kept for the timeline (without their log lines, which it does not use); a
/// busy production log drops the oldest past this (counted).
const MAX_FINISHED: usize = 50_000;
/// Followed bytes taken in by one refresh at most (the rest waits for the next), read in
/// pieces of `FOLLOW_PIECE` so a backlog is never held whole.
const MAX_BYTES_PER_REFRESH: usize = 256 << 20;
const FOLLOW_PIECE: usize = 4 << 20;
/// How often command and docker sources are fetched again.
const REFETCH: Duration = Duration::from_secs(2);
/// How far before the send a fetched window starts (clock skew between hosts).
const WINDOW_SLACK_SECS: i64 = 30;

struct Source {
    cfg: LogSourceConfig,
    parser: LineParser,
    /// Parsed records not yet correlated (merged with the other sources' first).
    pending: VecDeque<LogRecord>,
    /// A followed file (out of its slot while a read runs on the blocking pool; gone if that
    /// read failed, and the source is then fetched as a window).
    follow: Option<FileFollower>,
    follow_buf: Vec<u8>,
    last_fetch: Option<Instant>,
    /// Lines of the fetched window already taken, and the last of them.
    fetched: usize,
    last_fetched: Option<Vec<u8>>,
    error: Option<String>,
}

impl Source {
    fn take(&mut self, line: &[u8]) {
        if let Parsed::Record(r) = self.parser.parse(line) {
            self.pending.push_back(*r);
        }
    }

    /// Take in what the followed file has gained since the last refresh: every line written
    /// before this call, up to `MAX_BYTES_PER_REFRESH`. The reads run on the blocking pool.
    async fn read_followed(&mut self) {
        let mut taken = 0;
        while taken < MAX_BYTES_PER_REFRESH {
            let Some(mut f) = self.follow.take() else {
                return;
            };
            let mut buf = std::mem::take(&mut self.follow_buf);
            let read = tokio::task::spawn_blocking(move || {
                let r = f.read_new(&mut buf, FOLLOW_PIECE);
                (f, buf, r)
            })
            .await;
            let Ok((f, buf, r)) = read else {
                self.error = Some(format!(
                    "log source {}: the file reader failed",
                    self.cfg.role
                ));
                return;
            };
            self.follow = Some(f);
            taken += buf.len();
            for l in follow::lines(&buf) {
                self.take(l);
            }
            // A backlog's big buffer is not kept for the quiet refreshes after it.
            self.follow_buf = if buf.capacity() > 1 << 20 {
                Vec::new()
            } else {
                buf
            };
            match r {
                Ok(true) => {}
                Ok(false) => {
                    self.error = None;
                    return;
                }
                Err(e) => {
                    let path = self.cfg.path.as_deref().unwrap_or(std::path::Path::new(""));
                    self.error = Some(format!(
                        "log source {}: cannot read {}: {e}",
                        self.cfg.role,
                        path.display()
                    ));
                    return;
                }
            }
        }
    }

    /// Take the lines of a re-fetched window that follow those taken from the last one (all
    /// of them when the last one taken is no longer there: the log was rotated).
    fn take_window(&mut self, lines: Vec<Vec<u8>>) {
        let start = match &self.last_fetched {
            None => 0,
            Some(last) if self.fetched <= lines.len() && lines[self.fetched - 1] == *last => {
                self.fetched
            }
            Some(last) => lines.iter().rposition(|l| l == last).map_or(0, |i| i + 1),
        };
        for l in &lines[start..] {
            self.take(l);
        }
        if let Some(last) = lines.last() {
            self.last_fetched = Some(last.clone());
            self.fetched = lines.len();
        }
    }
}

/// A source's parsed records as the merge reads them.
struct Pending<'a>(&'a mut VecDeque<LogRecord>);

impl RecordSource for Pending<'_> {
    type Error = Infallible;
    type Shared = ();

    fn read(&mut self, _: &mut (), out: &mut Vec<Box<LogRecord>>) -> Result<bool, Infallible> {
        out.extend(self.0.pop_front().map(Box::new));
        Ok(!self.0.is_empty())
    }
}

/// Log evidence being gathered for one probe.
pub struct LogWatch {
    sources: Vec<Source>,
    since: DateTime<Utc>,
    corr: Correlator,
    finished: VecDeque<MessageChain>,
    finished_dropped: u64,
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
                    Some(FileFollower::new(path.clone(), from))
                }
                _ => None,
            };
            out.push(Source {
                cfg: cfg.clone(),
                parser: LineParser::new(ctx),
                pending: VecDeque::new(),
                follow,
                follow_buf: Vec::new(),
                last_fetch: None,
                fetched: 0,
                last_fetched: None,
                error: None,
            });
        }
        (
            LogWatch {
                sources: out,
                since: now - TimeDelta::seconds(WINDOW_SLACK_SECS),
                corr: Correlator::new(Limits::default()),
                finished: VecDeque::new(),
                finished_dropped: 0,
            },
            warnings,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Take in what the sources have produced since the last call: only the new lines are
    /// parsed and correlated.
    pub async fn refresh(&mut self, force_fetch: bool) {
        let since = self.since;
        for s in &mut self.sources {
            if s.follow.is_some() {
                s.read_followed().await;
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
                    s.take_window(lines);
                    s.error = None;
                }
                Err(e) => s.error = Some(e.to_string()),
            }
        }
        self.correlate_pending();
    }

    /// Correlate the records taken since the last call, all sources merged in time order.
    fn correlate_pending(&mut self) {
        let lanes = self
            .sources
            .iter_mut()
            .map(|s| Pending(&mut s.pending))
            .collect();
        for r in Merge::new(lanes) {
            self.corr.push(r);
        }
        for mut m in self.corr.take_finished() {
            m.lines = Vec::new();
            if self.finished.len() >= MAX_FINISHED {
                self.finished.pop_front();
                self.finished_dropped += 1;
            }
            self.finished.push_back(m);
        }
    }

    /// Lines parsed so far, all sources together (each line is parsed once).
    pub fn lines_parsed(&self) -> u64 {
        self.sources.iter().map(|s| s.parser.lines()).sum()
    }

    /// Problems reading the sources, for the result's warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for s in &self.sources {
            // The error names its source already.
            if let Some(e) = &s.error {
                w.push(e.clone());
            }
        }
        if self.finished_dropped > 0 {
            w.push(format!(
                "log sources: {} finished messages dropped (busy log)",
                self.finished_dropped
            ));
        }
        w
    }

    /// The probe's timeline from everything correlated so far: the finished chains that can be
    /// its own and the open ones (`Correlator::probe_candidates`), in the order the whole set
    /// would list them.
    pub fn timeline(&self, probe: &ProbeContext, header_hops: &[HeaderHop]) -> ProbeTimeline {
        let unidentified = probe.accepted_at.is_none();
        let qid = probe.submission_queue_id.as_deref();
        let mut chains: Vec<MessageChain> = self
            .finished
            .iter()
            .filter(|m| {
                m.has_message_id(&probe.message_id)
                    || (unidentified
                        && m.message_id.is_none()
                        && m.status == MessageStatus::Rejected)
                    || qid.is_some_and(|q| m.hops.iter().any(|h| h.queue_id.as_deref() == Some(q)))
            })
            .cloned()
            .collect();
        chains.extend(self.corr.probe_candidates(
            &probe.message_id,
            qid,
            unidentified.then_some(&*probe.mail_from),
        ));
        fuse_probe(probe, &chains, header_hops)
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

    /// A watch over one in-memory source (lines handed in by the test).
    fn memory_watch() -> LogWatch {
        let mut cfg = source(LogSourceKind::Command);
        cfg.command = Some(CommandSpec::Argv(vec!["true".into()]));
        let (mut watch, warnings) = LogWatch::start(&[cfg]);
        assert!(warnings.is_empty(), "{warnings:#?}");
        watch.sources[0].parser = LineParser::new(ParseContext::new("ec2", 2025));
        watch
    }

    const PROBE_LINES: [&str; 7] = [
        "Nov  4 18:12:30 mx postfix/smtpd[1]: 4ABC00000: client=p[192.0.2.1]",
        "Nov  4 18:12:30 mx postfix/cleanup[2]: 4ABC00000: message-id=<probe-1@flowtest.test>",
        "Nov  4 18:12:30 mx postfix/qmgr[3]: 4ABC00000: from=<ft@provider.test>, size=900, nrcpt=1 (queue active)",
        "Nov  4 18:12:31 mx postfix/smtp[4]: 4ABC00000: to=<bob@corp.test>, relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to dell[100.64.0.2]:25: Connection refused)",
        "Nov  4 18:12:40 mx postfix/smtp[4]: 4ABC00000: to=<bob@corp.test>, relay=dell[100.64.0.2]:25, delay=10, delays=9/0/0.5/0.5, dsn=5.1.1, status=bounced (host dell[100.64.0.2] said: 550 5.1.1 <bob@corp.test>: User unknown (in reply to RCPT TO command))",
        "Nov  4 18:12:40 mx postfix/bounce[5]: 4ABC00000: sender non-delivery notification: 4ABD00000",
        "Nov  4 18:12:40 mx postfix/qmgr[3]: 4ABC00000: removed",
    ];

    fn probe() -> ProbeContext {
        ProbeContext {
            message_id: "<probe-1@flowtest.test>".into(),
            mail_from: "ft@provider.test".into(),
            rcpt_to: vec!["bob@corp.test".into()],
            submitted_at: DateTime::parse_from_rfc3339("2025-11-04T18:12:30Z")
                .unwrap()
                .with_timezone(&Utc),
            ..ProbeContext::default()
        }
    }

    /// Each line is parsed once however often the timeline is asked for, and the timeline is
    /// the one a full re-correlation of every line gives.
    #[test]
    fn work_follows_new_lines_only() {
        let mut watch = memory_watch();
        let (first, second) = PROBE_LINES.split_at(4);
        for l in first {
            watch.sources[0].take(l.as_bytes());
        }
        watch.correlate_pending();
        assert_eq!(watch.lines_parsed(), 4);
        for _ in 0..3 {
            assert_eq!(
                watch.timeline(&probe(), &[]).status,
                MessageStatus::Deferred
            );
        }
        assert_eq!(watch.lines_parsed(), 4);
        for l in second {
            watch.sources[0].take(l.as_bytes());
        }
        watch.correlate_pending();
        assert_eq!(watch.lines_parsed(), 7);
        assert_eq!(watch.corr.stats().records, 7);
        let live = watch.timeline(&probe(), &[]);
        assert_eq!(live.status, MessageStatus::Bounced);
        let all: Vec<Vec<u8>> = PROBE_LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
        let full = correlate(
            [(ParseContext::new("ec2", 2025), all.iter())].into_iter(),
            None,
        );
        let whole = fuse_probe(&probe(), &full.finish(), &[]);
        assert_eq!(format!("{live:?}"), format!("{whole:?}"));
    }

    /// One refresh takes every line the followed file gained before it, however many: the
    /// verdict never waits for a backlog to trickle in over several refreshes.
    #[tokio::test]
    async fn a_refresh_takes_every_line_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        std::fs::write(
            &path,
            "Nov  4 18:00:00 mx postfix/qmgr[3]: 1ABC00000: removed\n",
        )
        .unwrap();
        let mut cfg = source(LogSourceKind::File);
        cfg.path = Some(path.clone());
        cfg.timezone = Some("+00:00".into());
        let (mut watch, warnings) = LogWatch::start(&[cfg]);
        assert!(warnings.is_empty(), "{warnings:#?}");
        watch.sources[0].parser = LineParser::new(ParseContext::new("ec2", 2025));
        let mut body = String::new();
        for i in 0..20_000u32 {
            body.push_str(&format!(
                "Nov  4 18:10:00 mx postfix/smtp[4]: {:010X}: to=<u{i}@corp.test>, relay=dell[100.64.0.2]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n",
                0x1000_0000 + i
            ));
        }
        for l in PROBE_LINES {
            body.push_str(l);
            body.push('\n');
        }
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(body.as_bytes()).unwrap();
        watch.refresh(false).await;
        assert_eq!(watch.lines_parsed(), 20_000 + PROBE_LINES.len() as u64);
        assert_eq!(watch.timeline(&probe(), &[]).status, MessageStatus::Bounced);
        assert!(watch.warnings().is_empty(), "{:#?}", watch.warnings());
    }

    /// A re-fetched window hands over only the lines after those already taken.
    #[test]
    fn a_refetched_window_yields_only_its_new_lines() {
        let mut watch = memory_watch();
        let lines: Vec<Vec<u8>> = PROBE_LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
        watch.sources[0].take_window(lines[..3].to_vec());
        assert_eq!(watch.lines_parsed(), 3);
        watch.sources[0].take_window(lines[..3].to_vec());
        assert_eq!(watch.lines_parsed(), 3);
        watch.sources[0].take_window(lines[..5].to_vec());
        assert_eq!(watch.lines_parsed(), 5);
        // Rotated: the window now starts after the last line taken.
        watch.sources[0].take_window(lines[4..].to_vec());
        assert_eq!(watch.lines_parsed(), 7);
        watch.correlate_pending();
        assert_eq!(watch.corr.stats().records, 7);
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
