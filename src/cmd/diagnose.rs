//! `flowtest diagnose`: reads server log files (streaming, any size), rebuilds each message's
//! fate with `core::fusion`, names failures with `core::diagnosis`, and prints human text or
//! JSON; optionally writes draft incident records. Owns argument resolution, the k-way merge
//! of sources by time, output streaming and incident file writing. Does not parse lines or
//! correlate (core does).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::cli::{DiagnoseArgs, TraceFormat};
use crate::core::diagnosis::{Finding, FindingCode};
use crate::core::fusion::{Correlator, Limits, MessageChain, SkewEstimate};
use crate::core::incident::{self, IncidentGroup};
use crate::core::logs::{
    parse_tz, BoundedLines, Focus, LineParser, LineRead, LogRecord, ParseContext, Parsed,
    SourceCounts,
};
use crate::core::runbook::{Facts, Runbook};
use crate::edge::logsource::seek_offset_for;
use crate::exit::Exit;

/// Longest line kept; longer ones are cut and counted (binary input must not grow memory).
pub const LINE_CAP: usize = 64 * 1024;
/// Message findings listed at the top level at most (the rest are counted).
const MAX_TOP_FINDINGS: usize = 1_000;
/// Incident drafts written at most per run (one per cause and host).
const MAX_INCIDENTS: usize = 50;
/// After `--until`, keep reading a source this much longer (logs are only roughly ordered),
/// then stop.
const UNTIL_SLACK_SECS: i64 = 600;

/// One log source to read.
pub struct Input {
    /// Host role (`ec2`, `dell`, ...).
    pub name: String,
    /// How to show the source in reports (its path).
    pub display: String,
    pub reader: Box<dyn BufRead>,
    /// Latest time the log can contain (file mtime); resolves year-less timestamps.
    pub reference: Option<DateTime<Utc>>,
    /// Bytes skipped at the start because they lie before `--since` (0 when read whole).
    pub skipped_bytes: u64,
}

/// Resolved options (validated before any input is read).
#[derive(Debug, Clone)]
pub struct Options {
    pub message_id: Option<String>,
    pub rcpt: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Explicit year for year-less formats (else each source's reference time decides).
    pub year: Option<i32>,
    /// Year used when there is neither `year` nor a reference.
    pub fallback_year: i32,
    pub tz: FixedOffset,
    pub format: TraceFormat,
    pub limits: Limits,
    /// With `--message-id` (and no `--rcpt`), skip lines that cannot concern the message before
    /// parsing them (see `core::logs::focus`). Same result, much faster on big files.
    pub prefilter: bool,
}

impl Options {
    fn filtered(&self) -> bool {
        self.message_id.is_some() || self.rcpt.is_some()
    }

    fn wants(&self, m: &MessageChain) -> bool {
        self.message_id
            .as_deref()
            .is_none_or(|id| m.has_message_id(id))
            && self.rcpt.as_deref().is_none_or(|r| m.mentions_rcpt(r))
    }
}

/// Per-source report line.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub path: String,
    #[serde(flatten)]
    pub counts: SourceCounts,
    /// Records outside `--since` / `--until`.
    pub out_of_window: u64,
    /// Reading stopped early because the log had passed `--until`.
    pub stopped_after_until: bool,
    /// Bytes not read at the start of the file because they lie before `--since`.
    pub skipped_bytes: u64,
}

/// What the run found (besides what it printed).
#[derive(Debug, Default)]
pub struct Summary {
    pub messages: u64,
    pub by_status: BTreeMap<&'static str, u64>,
    pub failed: u64,
    pub incidents: Vec<IncidentGroup>,
    pub sources: Vec<SourceReport>,
}

#[derive(Debug)]
pub enum AnalyzeError {
    Read { source: String, err: io::Error },
    Write(io::Error),
}

impl std::fmt::Display for AnalyzeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyzeError::Read { source, err } => write!(f, "cannot read {source}: {err}"),
            AnalyzeError::Write(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

struct Src {
    name: String,
    display: String,
    lines: BoundedLines<Box<dyn BufRead>>,
    parser: LineParser,
    pending: std::collections::VecDeque<LogRecord>,
    scratch: Vec<LogRecord>,
    done: bool,
    last_ts: Option<DateTime<Utc>>,
    out_of_window: u64,
    stopped_after_until: bool,
    skipped_bytes: u64,
}

impl Src {
    /// Read until one record is pending or the input ends.
    fn fill(&mut self, opts: &Options, mut focus: Option<&mut Focus>) -> io::Result<()> {
        while self.pending.is_empty() && !self.done {
            match self.lines.next_line()? {
                None => {
                    self.done = true;
                    break;
                }
                Some(LineRead::Overlong(_)) => {
                    self.parser.note_overlong();
                    continue;
                }
                Some(LineRead::Line(l)) => match focus.as_deref_mut() {
                    Some(f) => self.parser.parse_focused(l, f, &mut self.scratch),
                    None => {
                        if let Parsed::Record(r) = self.parser.parse(l) {
                            self.scratch.push(*r);
                        }
                    }
                },
            }
            let recs = std::mem::take(&mut self.scratch);
            for rec in recs {
                self.admit(rec, opts);
            }
        }
        Ok(())
    }

    /// Keep a record if it is inside the window.
    fn admit(&mut self, rec: LogRecord, opts: &Options) {
        if let Some(t) = rec.timestamp {
            if opts.since.is_some_and(|s| t < s) {
                self.out_of_window += 1;
                return;
            }
            if let Some(u) = opts.until {
                if t > u {
                    self.out_of_window += 1;
                    if t > u + TimeDelta::seconds(UNTIL_SLACK_SECS) {
                        self.done = true;
                        self.stopped_after_until = true;
                    }
                    return;
                }
            }
            self.last_ts = Some(t);
        }
        self.pending.push_back(rec);
    }

    fn report(&self) -> SourceReport {
        SourceReport {
            name: self.name.clone(),
            path: self.display.clone(),
            counts: self.parser.counts().clone(),
            out_of_window: self.out_of_window,
            stopped_after_until: self.stopped_after_until,
            skipped_bytes: self.skipped_bytes,
        }
    }
}

/// Streams the report as it is produced.
struct Writer<'a> {
    out: &'a mut dyn Write,
    opts: &'a Options,
    /// Renders every finding's hint (the configured runbook, or the built-in one).
    runbook: &'a Runbook,
    facts: Facts,
    first_message: bool,
    summary: Summary,
    top_findings: Vec<Finding>,
    findings_truncated: u64,
    groups: BTreeMap<(FindingCode, Option<String>), IncidentGroup>,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Writer<'_> {
    fn begin(&mut self) -> io::Result<()> {
        if self.opts.format == TraceFormat::Json {
            self.out.write_all(b"{\"messages\": [")?;
        }
        Ok(())
    }

    fn group(&mut self, f: &Finding) {
        let key = (f.code, f.host.clone());
        if let Some(g) = self.groups.get_mut(&key) {
            g.add(f, 20);
        } else if self.groups.len() < MAX_INCIDENTS {
            self.groups.insert(key, IncidentGroup::new(f));
        }
    }

    fn message(&mut self, mut m: MessageChain) -> io::Result<()> {
        if !self.opts.wants(&m) {
            return Ok(());
        }
        self.runbook.apply(&mut m.findings, &self.facts);
        self.summary.messages += 1;
        *self.summary.by_status.entry(m.status.as_str()).or_insert(0) += 1;
        if m.status.is_failure() {
            self.summary.failed += 1;
        }
        for h in &m.hops {
            for t in [h.arrived_at, h.left_at].into_iter().flatten() {
                self.span = Some(match self.span {
                    None => (t, t),
                    Some((a, b)) => (a.min(t), b.max(t)),
                });
            }
        }
        for f in &m.findings {
            if self.top_findings.len() < MAX_TOP_FINDINGS {
                self.top_findings.push(f.clone());
            } else {
                self.findings_truncated += 1;
            }
        }
        if m.status.is_failure() {
            let fs = m.findings.clone();
            for f in fs.iter().filter(|f| f.code.is_failure()) {
                self.group(f);
            }
        }
        if !self.opts.filtered() {
            // Unfiltered runs can cover millions of messages: keep the output to the facts.
            m.lines.clear();
        }
        match self.opts.format {
            TraceFormat::Json => {
                self.out.write_all(if self.first_message {
                    b"\n  "
                } else {
                    b",\n  "
                })?;
                serde_json::to_writer(&mut *self.out, &m).map_err(io::Error::other)?;
            }
            TraceFormat::Human => {
                if self.opts.filtered() || !m.findings.is_empty() || m.status.is_failure() {
                    write_human_message(&mut *self.out, &m, self.opts.filtered())?;
                }
            }
        }
        self.first_message = false;
        Ok(())
    }

    fn end(
        mut self,
        host_findings: Vec<Finding>,
        skew: Vec<SkewEstimate>,
        sources: Vec<SourceReport>,
    ) -> io::Result<Summary> {
        // With a filter, only host findings around the matched messages are relevant.
        let mut host_findings: Vec<Finding> = host_findings
            .into_iter()
            .filter(|f| {
                if !self.opts.filtered() {
                    return true;
                }
                let Some((a, b)) = self.span else {
                    return false;
                };
                let (fa, fb) = (f.first_seen.unwrap_or(a), f.last_seen.unwrap_or(b));
                fa <= b + TimeDelta::seconds(60) && fb >= a - TimeDelta::seconds(60)
            })
            .collect();
        self.runbook.apply(&mut host_findings, &self.facts);
        for f in &host_findings {
            if f.code.is_failure() {
                self.group(f);
            }
        }
        let mut by_code: BTreeMap<&'static str, u64> = BTreeMap::new();
        for f in self.top_findings.iter().chain(host_findings.iter()) {
            *by_code.entry(f.code.as_str()).or_insert(0) += f.count.max(1);
        }
        match self.opts.format {
            TraceFormat::Json => {
                let findings: Vec<&Finding> = self
                    .top_findings
                    .iter()
                    .chain(host_findings.iter())
                    .collect();
                #[derive(Serialize)]
                struct Tail<'a> {
                    findings: Vec<&'a Finding>,
                    skew: &'a [SkewEstimate],
                    sources: &'a [SourceReport],
                    summary: TailSummary<'a>,
                }
                #[derive(Serialize)]
                struct TailSummary<'a> {
                    messages: u64,
                    failed: u64,
                    by_status: &'a BTreeMap<&'static str, u64>,
                    findings_by_code: &'a BTreeMap<&'static str, u64>,
                    findings_truncated: u64,
                }
                let tail = Tail {
                    findings,
                    skew: &skew,
                    sources: &sources,
                    summary: TailSummary {
                        messages: self.summary.messages,
                        failed: self.summary.failed,
                        by_status: &self.summary.by_status,
                        findings_by_code: &by_code,
                        findings_truncated: self.findings_truncated,
                    },
                };
                let v = serde_json::to_value(&tail).map_err(io::Error::other)?;
                self.out.write_all(b"\n]")?;
                if let serde_json::Value::Object(map) = v {
                    for (k, v) in map {
                        write!(self.out, ",\n\"{k}\": ")?;
                        serde_json::to_writer(&mut *self.out, &v).map_err(io::Error::other)?;
                    }
                }
                self.out.write_all(b"\n}\n")?;
            }
            TraceFormat::Human => {
                let o = &mut *self.out;
                if self.summary.messages == 0 {
                    match (&self.opts.message_id, &self.opts.rcpt) {
                        (Some(id), _) => writeln!(o, "no log line mentions message-id {id}")?,
                        (None, Some(r)) => writeln!(o, "no log line mentions recipient {r}")?,
                        _ => {}
                    }
                }
                if !host_findings.is_empty() {
                    writeln!(o, "\nhost findings:")?;
                    for f in &host_findings {
                        write_human_finding(o, f, "  ")?;
                    }
                }
                for s in skew.iter().filter(|s| s.significant || s.conflicts > 0) {
                    writeln!(
                        o,
                        "\nclock skew: {} vs {}: {:+.3}..{:+.3} s over {} hand-off(s){}",
                        s.host,
                        s.reference,
                        s.min_ms as f64 / 1000.0,
                        s.max_ms as f64 / 1000.0,
                        s.samples,
                        if s.conflicts > 0 {
                            format!(", {} contradicting", s.conflicts)
                        } else {
                            String::new()
                        }
                    )?;
                }
                writeln!(o)?;
                for s in &sources {
                    let fmts: Vec<String> = s
                        .counts
                        .formats
                        .iter()
                        .map(|(k, v)| format!("{} {v}", k.as_str()))
                        .collect();
                    writeln!(
                        o,
                        "source {} ({}): {} lines, {} parsed, {} unknown{}{} [{}]",
                        s.name,
                        s.path,
                        s.counts.lines,
                        s.counts.parsed,
                        s.counts.unknown,
                        if s.counts.invalid_utf8 > 0 {
                            format!(", {} not UTF-8", s.counts.invalid_utf8)
                        } else {
                            String::new()
                        },
                        if s.out_of_window > 0 {
                            format!(", {} outside the window", s.out_of_window)
                        } else {
                            String::new()
                        },
                        fmts.join(", ")
                    )?;
                }
                let st: Vec<String> = self
                    .summary
                    .by_status
                    .iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect();
                writeln!(
                    o,
                    "summary: {} message(s){}{}",
                    self.summary.messages,
                    if st.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", st.join(", "))
                    },
                    if self.findings_truncated > 0 {
                        format!(" ({} more findings not listed)", self.findings_truncated)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        self.out.flush()?;
        self.summary.sources = sources;
        self.summary.incidents = self.groups.into_values().collect();
        Ok(self.summary)
    }
}

fn fmt_ts(t: Option<DateTime<Utc>>, whole: bool) -> String {
    match t {
        Some(t) if whole => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => "-".into(),
    }
}

fn write_human_finding(o: &mut dyn Write, f: &Finding, indent: &str) -> io::Result<()> {
    writeln!(
        o,
        "{indent}finding {} at {}{}: {}",
        f.code,
        f.host.as_deref().unwrap_or("?"),
        if f.count > 1 {
            format!(" ({}x)", f.count)
        } else {
            String::new()
        },
        f.message
    )?;
    writeln!(o, "{indent}  fix: {}", f.hint)?;
    for e in &f.evidence {
        writeln!(o, "{indent}  | {e}")?;
    }
    Ok(())
}

fn write_human_message(o: &mut dyn Write, m: &MessageChain, with_lines: bool) -> io::Result<()> {
    writeln!(
        o,
        "{}  {}  from <{}> to <{}>",
        m.message_id.as_deref().unwrap_or("(no message-id)"),
        m.status.as_str().to_uppercase(),
        m.from.as_deref().unwrap_or(""),
        m.to.join(">, <")
    )?;
    for h in &m.hops {
        let delay = match (h.delay_ms, h.delays) {
            (Some(d), Some(ds)) => format!(
                "  delay {:.3} s ({}/{}/{}/{} ms)",
                d as f64 / 1000.0,
                ds.before_qmgr_ms,
                ds.in_qmgr_ms,
                ds.conn_setup_ms,
                ds.transmission_ms
            ),
            (Some(d), None) => format!("  {d} ms"),
            _ => String::new(),
        };
        writeln!(
            o,
            "  {:<10} {:<14} {:<10} {}{}{}{}  {}",
            h.host,
            h.queue_id
                .as_deref()
                .or(h.lmtp_session.as_deref())
                .unwrap_or("-"),
            h.status,
            h.relay
                .as_deref()
                .map(|r| format!("relay={r}"))
                .unwrap_or_default(),
            h.mailbox
                .as_deref()
                .map(|r| format!("mailbox={r}"))
                .unwrap_or_default(),
            h.next_queue_id
                .as_deref()
                .map(|n| format!(" -> {n}"))
                .unwrap_or_default(),
            delay,
            fmt_ts(h.left_at.or(h.arrived_at), h.whole_seconds)
        )?;
        if h.status != "sent" && h.status != "saved" {
            if let Some(r) = &h.reason {
                writeln!(o, "  {:<10} reason: {r}", "")?;
            }
        }
    }
    for f in &m.findings {
        write_human_finding(o, f, "  ")?;
    }
    for n in &m.notes {
        writeln!(o, "  note: {n}")?;
    }
    if with_lines {
        for l in &m.lines {
            writeln!(o, "  > {l}")?;
        }
        if m.lines_dropped > 0 {
            writeln!(o, "  > ... {} more line(s)", m.lines_dropped)?;
        }
    }
    writeln!(o)
}

/// Analyze `inputs`, streaming the report to `out`. Pure apart from reading the inputs and
/// writing `out` (used by the command and by the golden tests). Hints come from the built-in
/// runbook.
pub fn analyze(
    inputs: Vec<Input>,
    opts: &Options,
    out: &mut dyn Write,
) -> Result<Summary, AnalyzeError> {
    analyze_with(inputs, opts, Runbook::builtin(), out)
}

/// [`analyze`] with hints from `runbook`.
pub fn analyze_with(
    inputs: Vec<Input>,
    opts: &Options,
    runbook: &Runbook,
    out: &mut dyn Write,
) -> Result<Summary, AnalyzeError> {
    let mut srcs: Vec<Src> = inputs
        .into_iter()
        .map(|i| {
            let ctx = context_for(&i.name, i.reference, opts);
            Src {
                name: i.name,
                display: i.display,
                lines: BoundedLines::new(i.reader, LINE_CAP),
                parser: LineParser::new(ctx),
                pending: std::collections::VecDeque::new(),
                scratch: Vec::new(),
                done: false,
                last_ts: None,
                out_of_window: 0,
                stopped_after_until: false,
                skipped_bytes: i.skipped_bytes,
            }
        })
        .collect();
    let mut limits = opts.limits;
    if !opts.filtered() {
        // Unfiltered runs print no log lines: do not keep them (counted as dropped).
        limits.max_lines = 0;
    }
    let mut corr = Correlator::new(limits);
    let mut w = Writer {
        out,
        opts,
        runbook,
        facts: Facts {
            recipient: opts.rcpt.clone(),
        },
        first_message: true,
        summary: Summary::default(),
        top_findings: Vec::new(),
        findings_truncated: 0,
        groups: BTreeMap::new(),
        span: None,
    };
    w.begin().map_err(AnalyzeError::Write)?;
    let mut focus = match (&opts.message_id, &opts.rcpt, opts.prefilter) {
        (Some(id), None, true) => Some(Focus::message_ids(&[id])),
        _ => None,
    };
    let mut pushed: u64 = 0;
    loop {
        for s in srcs.iter_mut() {
            s.fill(opts, focus.as_mut())
                .map_err(|err| AnalyzeError::Read {
                    source: s.display.clone(),
                    err,
                })?;
        }
        // The oldest pending record goes first (k-way merge; sources are roughly ordered).
        let mut best: Option<(usize, Option<DateTime<Utc>>)> = None;
        for (i, s) in srcs.iter().enumerate() {
            let Some(r) = s.pending.front() else { continue };
            let t = r.timestamp.or(s.last_ts);
            let better = match best {
                None => true,
                Some((_, bt)) => t < bt,
            };
            if better {
                best = Some((i, t));
            }
        }
        let Some((i, _)) = best else { break };
        let Some(rec) = srcs[i].pending.pop_front() else {
            break;
        };
        corr.push(rec);
        pushed += 1;
        if pushed.is_multiple_of(1024) {
            for m in corr.take_finished() {
                w.message(m).map_err(AnalyzeError::Write)?;
            }
        }
    }
    for m in corr.take_finished() {
        w.message(m).map_err(AnalyzeError::Write)?;
    }
    let outcome = corr.finish_all();
    for m in outcome.messages {
        w.message(m).map_err(AnalyzeError::Write)?;
    }
    let sources = srcs.iter().map(Src::report).collect();
    w.end(outcome.host_findings, outcome.skew, sources)
        .map_err(AnalyzeError::Write)
}

/// How a source's lines are read: explicit `--year`, else the source's reference time.
fn context_for(name: &str, reference: Option<DateTime<Utc>>, opts: &Options) -> ParseContext {
    let (year, reference) = match (opts.year, reference) {
        (Some(y), _) => (y, None),
        (None, Some(r)) => (r.year(), Some(r)),
        (None, None) => (opts.fallback_year, None),
    };
    let mut ctx = ParseContext::new(name, year);
    ctx.tz = opts.tz;
    ctx.reference = reference;
    ctx
}

/// `--since` / `--until`: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(n) = d.and_hms_opt(0, 0, 0) {
            return Ok(n.and_utc());
        }
    }
    Err(format!(
        "'{s}' is not a time: use RFC 3339 (2025-11-04T18:12:34Z) or 'YYYY-MM-DD HH:MM:SS' (UTC)"
    ))
}

/// `NAME=PATH` or a bare path (its file stem names the source).
pub fn parse_source(s: &str) -> (String, PathBuf) {
    if let Some((name, path)) = s.split_once('=') {
        if !name.is_empty() && !name.contains('/') && !path.is_empty() {
            return (name.to_owned(), PathBuf::from(path));
        }
    }
    let p = PathBuf::from(s);
    let name = p
        .file_stem()
        .map(|x| x.to_string_lossy().into_owned())
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| "log".into());
    (name, p)
}

/// Open one source. With `--since`, a regular file is entered near that time (binary search on
/// its timestamps) instead of being read from the top.
fn open_input(name: String, path: &Path, opts: &Options) -> Result<Input, String> {
    if path == Path::new("-") {
        return Ok(Input {
            name,
            display: "-".into(),
            reader: Box::new(BufReader::with_capacity(1 << 20, io::stdin())),
            reference: Some(Utc::now()),
            skipped_bytes: 0,
        });
    }
    let mut f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("cannot read {}: is a directory", path.display()));
    }
    let reference = meta.modified().ok().map(DateTime::<Utc>::from);
    let mut skipped_bytes = 0;
    if let (Some(since), true) = (opts.since, meta.is_file()) {
        let ctx = context_for(&name, reference, opts);
        skipped_bytes = seek_offset_for(path, since, &ctx)
            .and_then(|off| f.seek(SeekFrom::Start(off)))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    Ok(Input {
        name,
        display: path.display().to_string(),
        reader: Box::new(BufReader::with_capacity(1 << 20, f)),
        reference,
        skipped_bytes,
    })
}

/// Write drafts into `dir`, never overwriting: `NAME.md`, else `NAME_2.md`, ... Returns paths.
pub fn write_incidents(
    dir: &Path,
    groups: &[IncidentGroup],
    source: &str,
    runbook: &Runbook,
    facts: &Facts,
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for g in groups {
        let date = g
            .first_seen
            .map(|t| t.date_naive())
            .unwrap_or_else(|| Utc::now().date_naive());
        let d = incident::render(runbook, g, date, source, facts);
        let mut n = 0;
        loop {
            let p = dir.join(incident::candidate_file_name(&d.stem, n));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
            {
                Ok(mut f) => {
                    f.write_all(d.body.as_bytes())?;
                    written.push(p);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 999 => n += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(written)
}

/// The configured runbook when a configuration is named or `./flowtest.toml` exists, else the
/// built-in one (diagnose needs no configuration).
fn runbook(config: &Option<PathBuf>) -> Result<Runbook, Exit> {
    let path = crate::config::locate(config);
    if config.is_none() && !path.exists() {
        return Ok(Runbook::builtin().clone());
    }
    super::load_config(config).map(|c| c.runbook)
}

pub fn run(config: &Option<PathBuf>, args: DiagnoseArgs) -> Exit {
    // Resolve and validate everything before reading any input.
    let runbook = match runbook(config) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let since = match args.since.as_deref().map(parse_time).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flowtest: --since: {e}");
            return Exit::Unusable;
        }
    };
    let until = match args.until.as_deref().map(parse_time).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flowtest: --until: {e}");
            return Exit::Unusable;
        }
    };
    if let (Some(a), Some(b)) = (since, until) {
        if a > b {
            eprintln!("flowtest: --since is after --until");
            return Exit::Unusable;
        }
    }
    let tz = match parse_tz(&args.tz) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flowtest: --tz: {e}");
            return Exit::Unusable;
        }
    };
    if let Some(y) = args.year {
        if !(1970..=9999).contains(&y) {
            eprintln!("flowtest: --year {y} is out of range");
            return Exit::Unusable;
        }
    }
    let opts = Options {
        message_id: args.message_id.clone(),
        rcpt: args.rcpt.clone(),
        since,
        until,
        year: args.year,
        fallback_year: Utc::now().year(),
        tz,
        format: args.format,
        limits: Limits::default(),
        prefilter: true,
    };
    let mut inputs = Vec::new();
    for s in &args.sources {
        let (name, path) = parse_source(s);
        match open_input(name, &path, &opts) {
            Ok(i) => inputs.push(i),
            Err(e) => {
                eprintln!("flowtest: {e}");
                return Exit::Unusable;
            }
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let summary = match analyze_with(inputs, &opts, &runbook, &mut out) {
        Ok(s) => s,
        Err(AnalyzeError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Exit::Ok;
        }
        Err(e @ AnalyzeError::Read { .. }) => {
            let _ = out.flush();
            eprintln!("flowtest: {e}");
            return Exit::Unusable;
        }
        Err(e) => {
            eprintln!("flowtest: {e}");
            return Exit::Unusable;
        }
    };
    drop(out);
    if let Some(dir) = &args.incident {
        let facts = Facts {
            recipient: opts.rcpt.clone(),
        };
        match write_incidents(
            dir,
            &summary.incidents,
            "flowtest diagnose",
            &runbook,
            &facts,
        ) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("flowtest: wrote draft incident {}", p.display());
                }
            }
            Err(e) => {
                eprintln!(
                    "flowtest: cannot write incident drafts into {}: {e}",
                    dir.display()
                );
                return Exit::Unusable;
            }
        }
    }
    if summary.failed > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sources() {
        assert_eq!(
            parse_time("2025-11-04 18:12:34").unwrap().to_rfc3339(),
            "2025-11-04T18:12:34+00:00"
        );
        assert_eq!(
            parse_time("2025-11-04T19:12:34+01:00")
                .unwrap()
                .to_rfc3339(),
            "2025-11-04T18:12:34+00:00"
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(
            parse_source("ec2=/var/log/a=b.log"),
            ("ec2".into(), PathBuf::from("/var/log/a=b.log"))
        );
        assert_eq!(
            parse_source("/var/log/dell-postfix.log"),
            (
                "dell-postfix".into(),
                PathBuf::from("/var/log/dell-postfix.log")
            )
        );
        assert_eq!(
            parse_source("./x=y/z.log"),
            ("z".into(), PathBuf::from("./x=y/z.log"))
        );
    }
}
