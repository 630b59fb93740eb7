//! Reconstructing messages' fates from server logs (`flowtest diagnose`): already-opened log
//! streams are windowed in time, merged in time order, correlated (`crate::fusion`), their
//! failures grouped into incidents (`crate::grouping`), and the report streamed as human text or
//! JSON. Does not open files, read clocks (the caller hands in readers, reference times and the
//! fallback year), parse lines (`crate::logs`) or write incident files.

mod blocks;
mod json;
pub mod merge;
mod pipeline;
mod render;
mod report;
mod source;
pub mod window;

use crate::runbook::Runbook;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use crate::fusion::{Correlator, Limits, MessageChain};
use crate::incident::IncidentGroup;
use crate::logs::{Focus, LogZone, ParseContext, SourceCounts};
use crate::outcome::Severity;

use merge::Merge;
use source::LogStream;
pub use window::{parse_time, Window, WindowError};

/// Longest line kept; longer ones are cut and counted (binary input must not grow memory).
pub const LINE_CAP: usize = 64 * 1024;

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// One log source to read.
pub struct Input {
    /// Host role (`ec2`, `dell`, ...).
    pub name: String,
    /// How to show the source in reports (its path).
    pub display: String,
    pub reader: Box<dyn BufRead + Send>,
    /// Latest time the log can contain (file mtime); resolves year-less timestamps.
    pub reference: Option<DateTime<Utc>>,
    /// Bytes skipped at the start because they lie before `since` (0 when read whole).
    pub skipped_bytes: u64,
    /// A line that names its host stands for that host rather than for `name` (a source given
    /// without a name: a central syslog server's file, or one host's, whose name its lines say).
    pub hosts_from_lines: bool,
}

/// What to look for and how to report it (validated before any input is read).
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
    pub tz: LogZone,
    pub format: Format,
    pub limits: Limits,
    /// With `message_id` (and no `rcpt`), skip lines that cannot concern the message before
    /// parsing them (see `crate::logs::focus`). Same result, much faster on big files.
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

    /// The window records must fall in.
    pub fn window(&self) -> Window {
        Window {
            since: self.since,
            until: self.until,
        }
    }

    /// How a source's lines are read: explicit `year`, else the source's reference time.
    pub fn context_for(&self, name: &str, reference: Option<DateTime<Utc>>) -> ParseContext {
        let (year, reference) = match (self.year, reference) {
            (Some(y), _) => (y, None),
            (None, Some(r)) => (r.year(), Some(r)),
            (None, None) => (self.fallback_year, None),
        };
        let mut ctx = ParseContext::new(name, year);
        ctx.tz = self.tz.clone();
        ctx.reference = reference;
        ctx
    }

    /// The prefilter shared by every source, when it applies.
    pub(crate) fn focus(&self) -> Option<Focus> {
        match (&self.message_id, &self.rcpt, self.prefilter) {
            (Some(id), None, true) => Some(Focus::message_ids(&[id])),
            _ => None,
        }
    }

    /// Correlator limits: unfiltered runs print no log lines, so none are kept (counted as
    /// dropped).
    fn correlator_limits(&self) -> Limits {
        let mut limits = self.limits;
        if !self.filtered() {
            limits.max_lines = 0;
        }
        limits
    }
}

/// Per-source report line.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub path: String,
    #[serde(flatten)]
    pub counts: SourceCounts,
    /// Records outside `since` / `until`.
    pub out_of_window: u64,
    /// Reading stopped early because the log had passed `until`.
    pub stopped_after_until: bool,
    /// Bytes not read at the start of the file because they lie before `since`.
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
    /// Log lines not kept because the open messages together held `max_retained_line_bytes`
    /// (each message also keeps at most `max_lines`; its own `lines_dropped` counts both).
    pub lines_dropped_over_cap: u64,
    /// SMTP transactions a client left before DATA (smtpd's `disconnect` counters): their
    /// queue entries held no message and are not listed.
    pub transactions_abandoned: u64,
    /// Queue ids seen only in their `removed` line: messages that began before the log (or
    /// the window), not listed.
    pub removed_only: u64,
    /// Host findings of an unfiltered run that are faults of the servers' own services
    /// ([`crate::diagnosis::FindingCode::is_server_fault`]).
    pub server_faults: u64,
}

impl Summary {
    /// Failed when any matched message failed; else degraded when a host finding shows a fault
    /// of the servers' own services (the mail that meets it next will fail); else ok.
    pub fn severity(&self) -> Severity {
        if self.failed > 0 {
            Severity::Failed
        } else if self.server_faults > 0 {
            Severity::Degraded
        } else {
            Severity::Ok
        }
    }
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

impl std::error::Error for AnalyzeError {}

/// Analyze `inputs`, streaming the report to `out`, with the built-in runbook's hints.
/// Deterministic given the inputs' bytes. A full run writes `out` from a thread of its own
/// (the one that renders the report), hence `Send`.
pub fn analyze(
    inputs: Vec<Input>,
    opts: &Options,
    out: &mut (dyn Write + Send),
) -> Result<Summary, AnalyzeError> {
    analyze_with(inputs, opts, Runbook::builtin(), out)
}

/// [`analyze`] with hints from `runbook`.
pub fn analyze_with(
    inputs: Vec<Input>,
    opts: &Options,
    runbook: &Runbook,
    out: &mut (dyn Write + Send),
) -> Result<Summary, AnalyzeError> {
    let (merge, focus, corr) = stages(inputs, opts);
    if focus.is_some() {
        return pipeline::one_thread(merge, focus, corr, opts, runbook, out);
    }
    pipeline::run(merge, focus, corr, opts, runbook, out)
}

/// The merge of `inputs`, the prefilter it reads with, and the correlator its records go to.
fn stages(inputs: Vec<Input>, opts: &Options) -> (Merge<LogStream>, Option<Focus>, Correlator) {
    let one_host = inputs.windows(2).all(|w| w[0].name == w[1].name);
    let streams: Vec<LogStream> = inputs
        .into_iter()
        .map(|i| LogStream::new(i, opts))
        .collect();
    let mut corr = Correlator::new(opts.correlator_limits());
    if !opts.filtered() {
        // The report shows no lines then (`Report::message`).
        corr = corr.without_lines();
    }
    if one_host {
        corr = corr.single_host();
    }
    if let (Some(id), None) = (&opts.message_id, &opts.rcpt) {
        corr = corr.only_message_id(id);
    }
    (Merge::new(streams), opts.focus(), corr)
}

#[cfg(test)]
impl Options {
    /// Tests' options: every message, year 2025, UTC, default limits.
    pub(crate) fn whole_2025(format: Format) -> Options {
        Options {
            message_id: None,
            rcpt: None,
            since: None,
            until: None,
            year: Some(2025),
            fallback_year: 2025,
            tz: LogZone::UTC,
            format,
            limits: Limits::default(),
            prefilter: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::FindingCode;

    /// One host's log, read from memory, with the file's time unknown.
    fn input(name: &str, log: impl Into<Vec<u8>>) -> Input {
        Input {
            name: name.into(),
            display: format!("{name}.log"),
            reader: Box::new(io::Cursor::new(log.into())),
            reference: None,
            skipped_bytes: 0,
            hosts_from_lines: false,
        }
    }

    /// `n` messages that stay deferred, all to `bob@corp.test`.
    fn open_log(n: u32) -> String {
        let mut s = String::new();
        for i in 0..n {
            let q = format!("{:010X}", 0x100_0000 + i);
            s.push_str(&format!(
                "Nov  7 12:00:05 mx postfix/cleanup[2]: {q}: message-id=<open{i}@x>\n\
                 Nov  7 12:00:06 mx postfix/smtp[4]: {q}: to=<bob@corp.test>, relay=none, delay=1, \
                 delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to mx.corp.test[192.0.2.1]:25: \
                 Connection timed out)\n"
            ));
        }
        s
    }

    fn run(format: Format, cap: usize) -> (Summary, String) {
        let opts = Options {
            rcpt: Some("bob@corp.test".into()),
            limits: Limits {
                max_retained_line_bytes: cap,
                ..Limits::default()
            },
            ..Options::whole_2025(format)
        };
        let input = input("ec2", open_log(500));
        let mut out = Vec::new();
        let s = analyze(vec![input], &opts, &mut out).unwrap();
        (s, String::from_utf8(out).unwrap())
    }

    /// More findings than the report lists: the count by code is of all of them.
    #[test]
    fn findings_are_counted_by_code_past_the_listed_ones() {
        let mut log = open_log(1_200);
        for i in 0..300 {
            log.push_str(&format!(
                "Nov  7 12:00:07 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from b.example\
                 [192.0.2.9]: 554 5.7.1 <c{i}@other.test>: Relay access denied; \
                 from=<d@x.test> to=<c{i}@other.test> proto=ESMTP helo=<b.example>\n"
            ));
        }
        let input = input("ec2", log);
        let mut out = Vec::new();
        analyze(vec![input], &Options::whole_2025(Format::Json), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let summary = &v["summary"];
        assert_eq!(
            summary["findings_by_code"],
            serde_json::json!({"next_hop_timeout": 1200, "relay_access_denied": 300}),
            "{summary}"
        );
        assert_eq!(summary["findings_truncated"], 500, "{summary}");
    }

    /// A message whose last attempt failed with no delivery line after it (a log cut there) is
    /// of unknown fate, and counted failed: the exit code must not say all is well, and its
    /// finding drafts an incident. A message still queued with no finding is not.
    #[test]
    fn a_message_whose_last_attempt_failed_counts_as_failed() {
        let log = "2017-07-31T19:31:10.155469+00:00 smtp postfix/smtp[537]: C9D798162B: Cannot \
                   start TLS: handshake failure\n\
                   2017-07-31T19:31:11+00:00 smtp postfix/qmgr[9]: D0E873A000: \
                   from=<a@b.test>, size=459, nrcpt=1 (queue active)\n";
        let mut out = Vec::new();
        let input = input("mx", log.to_owned());
        let s = analyze(vec![input], &Options::whole_2025(Format::Json), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["summary"]["by_status"],
            serde_json::json!({"queued": 1, "unknown": 1}),
            "{v}"
        );
        assert_eq!((s.failed, s.severity()), (1, Severity::Failed), "{v}");
        let drafts: Vec<_> = s
            .incidents
            .iter()
            .map(|g| (g.code, g.occurrences))
            .collect();
        assert_eq!(drafts, [(FindingCode::TlsError, 1)], "{v}");
    }

    #[test]
    fn lines_dropped_over_the_cap_are_reported_in_both_formats() {
        let (s, json) = run(Format::Json, 8 * 1024);
        assert_eq!(s.messages, 500);
        assert!(
            s.lines_dropped_over_cap > 500,
            "{}",
            s.lines_dropped_over_cap
        );
        assert!(json.contains(&format!(
            "\"lines_dropped_over_cap\":{}",
            s.lines_dropped_over_cap
        )));
        let (h, human) = run(Format::Human, 8 * 1024);
        assert_eq!(h.lines_dropped_over_cap, s.lines_dropped_over_cap);
        assert!(human.contains(&format!("({} log lines not kept", s.lines_dropped_over_cap)));
        // Under the default cap nothing is dropped and the summary keeps its usual shape.
        let (d, json) = run(Format::Json, Limits::default().max_retained_line_bytes);
        assert_eq!(d.lines_dropped_over_cap, 0);
        assert!(!json.contains("lines_dropped_over_cap"));
    }

    /// Callouts (MAIL, RCPT, QUIT) are counted in the summary, not listed as messages.
    #[test]
    fn transactions_left_before_data_are_counted_not_listed() {
        let mut log = String::new();
        for i in 0..3 {
            log.push_str(&format!(
                "Nov  7 12:00:0{i} mx postfix/smtpd[7{i}]: 1A2B3C4D5{i}: client=callout.example[192.0.2.{i}]\n\
                 Nov  7 12:00:0{i} mx postfix/smtpd[7{i}]: disconnect from callout.example[192.0.2.{i}] \
                 ehlo=1 mail=1 rcpt=1 quit=1 commands=4\n"
            ));
        }
        for format in [Format::Json, Format::Human] {
            let input = input("ec2", log.clone());
            let mut out = Vec::new();
            let s = analyze(vec![input], &Options::whole_2025(format), &mut out).unwrap();
            let out = String::from_utf8(out).unwrap();
            assert_eq!((s.messages, s.transactions_abandoned), (0, 3), "{out}");
            let said = match format {
                Format::Json => "\"transactions_abandoned\":3",
                Format::Human => "(3 SMTP transaction(s) left before DATA: no message, not listed)",
            };
            assert!(out.contains(said), "{out}");
        }
    }

    /// The JSON report of `logs` (role, text) focused on Message-ID `id`.
    fn focused(logs: &[(&str, &str)], id: &str, prefilter: bool) -> serde_json::Value {
        let opts = Options {
            message_id: Some(id.into()),
            prefilter,
            ..Options::whole_2025(Format::Json)
        };
        let inputs = logs.iter().map(|(role, log)| input(role, *log)).collect();
        let mut out = Vec::new();
        analyze(inputs, &opts, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    /// A queue id whose only line is `removed` ended a message that began before the log: it
    /// is counted, not listed as a message of unknown fate. One with any other line is listed.
    #[test]
    fn a_queue_id_seen_only_removed_is_counted_not_listed() {
        let log = "Nov  7 12:00:01 mx postfix/qmgr[3]: 1D3D829EC99: removed\n\
                   Nov  7 12:00:02 mx postfix/qmgr[3]: 2E4E4E4E4E: removed\n\
                   Nov  7 12:00:02 mx postfix/cleanup[2]: 3F5F5F5F5F: message-id=<m@x>\n\
                   Nov  7 12:00:03 mx postfix/qmgr[3]: 3F5F5F5F5F: removed\n";
        for format in [Format::Json, Format::Human] {
            let mut out = Vec::new();
            let s = analyze(
                vec![input("mx", log)],
                &Options::whole_2025(format),
                &mut out,
            )
            .unwrap();
            let out = String::from_utf8(out).unwrap();
            assert_eq!((s.messages, s.removed_only), (1, 2), "{out}");
            let said = match format {
                Format::Json => "\"removed_only\":2",
                Format::Human => "(2 queue id(s) seen only in their `removed` line",
            };
            assert!(out.contains(said), "{out}");
        }
    }

    /// Two hosts number their queues apart, so one queue id can name an entry on each. The
    /// prefilter learns it from the first host's line; the second host's `client=` line, read
    /// before the id was known, still comes with that host's `message-id=` line.
    #[test]
    fn a_queue_id_on_two_hosts_keeps_each_hosts_remembered_lines() {
        // The reject is a record of ec2's before the dell line: the sources are read in turn.
        let ec2 = "Dec 31 23:00:01 ec2 postfix/smtpd[100]: 4AB12C3D4E: client=a.example[203.0.113.9]\n\
                   Dec 31 23:00:02 ec2 postfix/smtpd[102]: NOQUEUE: reject: RCPT from b.example[192.0.2.7]: \
                   554 5.7.1 <x@y.example>: Relay access denied; from=<s@b.example> to=<x@y.example> \
                   proto=ESMTP helo=<b>\n\
                   Dec 31 23:00:09 ec2 postfix/cleanup[101]: 4AB12C3D4E: message-id=<m1@a.example>\n";
        let dell =
            "Dec 31 23:00:05 dell postfix/cleanup[7]: 4AB12C3D4E: message-id=<m1@a.example>\n";
        let report =
            |prefilter| focused(&[("ec2", ec2), ("dell", dell)], "<m1@a.example>", prefilter);
        let skipping = report(true);
        assert_eq!(
            skipping["messages"][0]["hops"][0]["client"], "a.example[203.0.113.9]",
            "{skipping}"
        );
        assert_eq!(skipping, report(false));
    }

    /// A queue id learned from one host's `message-id=` line is that host's: the other host's
    /// earlier entry under the same id (another message) stays out of a focused run, although
    /// dell's log, read a record ahead of the merge, names the id while ec2's is an hour
    /// behind (ec2's reject is a record it stops at).
    #[test]
    fn a_queue_id_learned_on_one_host_does_not_take_in_anothers_entry() {
        let ec2 = "Dec 31 23:00:02 ec2 postfix/cleanup[100]: 4AB12C3D4E: message-id=<m1@a.example>\n\
                   Dec 31 23:02:10 ec2 postfix/smtpd[103]: NOQUEUE: reject: RCPT from b.example[192.0.2.7]: \
                   554 5.7.1 <x@y.example>: Relay access denied; from=<s@b.example> to=<x@y.example> \
                   proto=ESMTP helo=<b>\n\
                   Dec 31 23:02:32 ec2 postfix/smtp[101]: 4AB12C3D4E: to=<bob@corp.test>, relay=none, \
                   delay=31, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to \
                   100.64.0.2[100.64.0.2]:2525: Connection refused)\n\
                   Jan  1 00:02:40 ec2 postfix/smtp[101]: 4AB12C3D4E: to=<bob@corp.test>, \
                   relay=100.64.0.2[100.64.0.2]:2525, delay=3600, delays=3599/0/0.5/0.5, dsn=2.0.0, \
                   status=sent (250 2.0.0 Ok: queued as 6D07EF7B77)\n\
                   Jan  1 00:03:08 ec2 postfix/qmgr[102]: 4AB12C3D4E: removed\n\
                   Jan  1 00:03:36 ec2 postfix/cleanup[100]: 4AB12C3D4E: message-id=<m2@a.example>\n";
        let dell = "Dec 31 23:02:02 dell dovecot: lmtp(bob@corp.test)<7><AbCd7>: \
                    msgid=<m0@a.example>: saved mail to INBOX\n\
                    Jan  1 00:12:28 dell postfix/cleanup[7]: 4AB12C3D4E: message-id=<m2@a.example>\n";
        let report = |prefilter: bool| {
            focused(&[("ec2", ec2), ("dell", dell)], "<m2@a.example>", prefilter)["messages"]
                .clone()
        };
        let skipping = report(true);
        assert_eq!(skipping[0]["findings"], serde_json::json!([]), "{skipping}");
        assert_eq!(skipping, report(false));
    }

    /// Whether a line joins a message is judged at the line's own time: in a log whose clock
    /// steps back, the latest time read before it depends on which lines were read (all of
    /// them, or the prefilter's few), and the message was split in one run and not the other.
    #[test]
    fn a_late_line_joins_by_its_own_time_not_the_latest_read() {
        let ec2 =
            "Dec 31 23:00:10 ec2 postfix/cleanup[1]: 1A1A1A1A1A: message-id=<other@a.example>\n";
        let dell = "Dec 31 23:00:19 dell dovecot: lmtp(bob@corp.test)<106><AbCd106>: \
                    msgid=<m1@a.example>: save failed to INBOX: Permission denied\n\
                    Dec 31 23:02:24 dell postfix/cleanup[102]: BE80C46D1F: message-id=<m2@a.example>\n\
                    Dec 31 23:01:56 dell postfix/cleanup[115]: 9FC1F7CD5B: message-id=<m1@a.example>\n";
        let report = |prefilter: bool| {
            focused(&[("ec2", ec2), ("dell", dell)], "<m1@a.example>", prefilter)["messages"]
                .clone()
        };
        let parsing = report(false);
        assert_eq!(parsing.as_array().map(Vec::len), Some(1), "{parsing}");
        assert_eq!(parsing, report(true));
    }

    /// A line that joins a message by its Message-ID at its own time joins it although a
    /// line of another host read before it, at a later time, found the message done: dell's
    /// clock steps back, so its message-id line is read after ec2's reject when all its lines
    /// are read, and before it when the prefilter skips the line of another message.
    #[test]
    fn a_late_line_joins_a_message_another_hosts_line_found_done() {
        let ec2 =
            "Dec 31 23:00:10 ec2 postfix/cleanup[1]: 1A1A1A1A1A: message-id=<other@a.example>\n\
                   Dec 31 23:02:23 ec2 dovecot: lmtp(bob@corp.test)<106><AbCd106>: \
                   msgid=<m1@a.example>: rejected: Quota exceeded (mailbox for user is full)\n";
        let dell = "Dec 31 23:00:19 dell dovecot: lmtp(bob@corp.test)<106><AbCd106>: \
                    msgid=<m1@a.example>: save failed to INBOX: Permission denied\n\
                    Dec 31 23:02:24 dell postfix/cleanup[102]: BE80C46D1F: message-id=<m2@a.example>\n\
                    Dec 31 23:01:56 dell postfix/cleanup[115]: 9FC1F7CD5B: message-id=<m1@a.example>\n";
        // The lines each message shows come in the order read, which the clock step changes.
        one_message_either_way(ec2, dell, "<m1@a.example>", |m| {
            let mut m = m.clone();
            if let Some(lines) = m["lines"].as_array_mut() {
                lines.sort_by_key(|l| l.to_string());
            }
            m
        });
    }

    /// A recipient reject under a queue id whose entry was removed belongs to the message that
    /// took the queue id next (short ids repeat on a busy server), not to the removed one: the
    /// prefilter, which never saw the first message's lines, replays the reject with the next
    /// message's `message-id=` line, and a full parse must give it to the same message.
    #[test]
    fn a_reject_after_its_queue_id_was_removed_is_the_next_messages() {
        let ec2 = "Dec 31 23:00:09 ec2 postfix/cleanup[100]: 4AB12C3D4E: message-id=<m1@a.example>\n\
                   Dec 31 23:00:11 ec2 postfix/qmgr[100]: 4AB12C3D4E: removed\n\
                   Dec 31 23:00:31 ec2 postfix/smtpd[106]: 4AB12C3D4E: reject: RCPT from \
                   x.example[203.0.113.7]: 451 4.3.0 <bob@corp.test>: Temporary lookup failure; \
                   from=<a@b.example> to=<bob@corp.test> proto=ESMTP helo=<h>\n\
                   Dec 31 23:02:39 ec2 postfix/cleanup[107]: 4AB12C3D4E: message-id=<m2@a.example>\n";
        let m = one_message_either_way(ec2, "", "<m2@a.example>", |m| {
            let codes = each(m, "findings", "code");
            serde_json::json!([m["status"], codes, m["lines"].as_array().map(Vec::len)])
        });
        // A 451 at RCPT: the client keeps the message for that recipient and tries again.
        assert_eq!(m, serde_json::json!(["deferred", ["lookup_failure"], 2]));
    }

    /// A message under queue id 4AB12C3D4E whose entry was removed, with a recipient's reject.
    const EARLIER_USE: &str = "\
        Dec 31 23:00:08 ec2 postfix/smtpd[108]: 4AB12C3D4E: client=a.example[203.0.113.9]\n\
        Dec 31 23:00:08 ec2 postfix/smtpd[108]: 4AB12C3D4E: reject: RCPT from \
        a.example[203.0.113.9]: 451 4.3.0 <bob@corp.test>: Temporary lookup failure; \
        from=<a@b.example> to=<bob@corp.test> proto=ESMTP helo=<h>\n\
        Dec 31 23:00:09 ec2 postfix/cleanup[100]: 4AB12C3D4E: message-id=<m1@a.example>\n\
        Dec 31 23:00:11 ec2 postfix/qmgr[100]: 4AB12C3D4E: removed\n";

    /// A queue id used again after its entry was removed starts anew at its `client=` line:
    /// the prefilter replays only the lines of the use its Message-ID names, not the earlier
    /// message's reject, which a full parse gives to that earlier message.
    #[test]
    fn a_reused_queue_id_replays_only_its_latest_use() {
        let ec2 = format!(
            "{EARLIER_USE}\
             Dec 31 23:00:31 ec2 postfix/smtpd[106]: 4AB12C3D4E: client=a.example[203.0.113.9]\n\
             Dec 31 23:00:32 ec2 postfix/cleanup[107]: 4AB12C3D4E: message-id=<m2@a.example>\n"
        );
        let m = one_message_either_way(&ec2, "", "<m2@a.example>", |m| {
            serde_json::json!([m["status"], m["findings"], m["lines"]])
        });
        assert_eq!(m[0], "queued");
        assert_eq!(m[1], serde_json::json!([]));
        assert_eq!(m[2].as_array().map(Vec::len), Some(2), "{m}");
    }

    /// Without a `client=` line of its own (its start cut from the log), a message under a
    /// reused queue id still takes none of the earlier message's lines: that message's
    /// `message-id=` and `removed` lines, which the prefilter remembers as markers, end them.
    #[test]
    fn an_earlier_messages_lines_stay_its_own_without_the_next_ones_start() {
        let ec2 = format!(
            "{EARLIER_USE}\
             Dec 31 23:04:05 ec2 postfix/cleanup[107]: 4AB12C3D4E: message-id=<m2@a.example>\n"
        );
        let m = one_message_either_way(&ec2, "", "<m2@a.example>", |m| {
            serde_json::json!([m["findings"], m["lines"].as_array().map(Vec::len)])
        });
        assert_eq!(m, serde_json::json!([[], 1]));
    }

    /// The lines the prefilter skips in a named zone's fold still move where the log stands
    /// in it: a message in the fold's second pass (02:10 CET, after 02:50 CEST) reads at
    /// +01:00 with the prefilter as without it, and in the full report.
    #[test]
    fn a_message_in_a_folds_second_pass_reads_the_same_focused_or_not() {
        let log = "Oct 26 02:50:00 mx postfix/cleanup[2]: 1A2B3C4D5F: message-id=<a@x>\n\
                   Oct 26 02:50:01 mx postfix/qmgr[3]: 1A2B3C4D5F: removed\n\
                   Oct 26 02:10:00 mx postfix/cleanup[2]: 2B3C4D5F6A: message-id=<b@x>\n\
                   Oct 26 02:10:01 mx postfix/smtp[4]: 2B3C4D5F6A: to=<bob@corp.test>, \
                   relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, status=deferred \
                   (connect to mx.corp.test[192.0.2.1]:25: Connection timed out)\n";
        let run = |message_id: Option<&str>, prefilter: bool| {
            let opts = Options {
                message_id: message_id.map(str::to_owned),
                prefilter,
                tz: LogZone::parse("Europe/Berlin").unwrap(),
                ..Options::whole_2025(Format::Json)
            };
            let mut out = Vec::new();
            analyze(vec![input("ec2", log)], &opts, &mut out).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let b = v["messages"]
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["message_id"] == "<b@x>").cloned());
            b.unwrap_or_else(|| panic!("{v}"))
        };
        let skipping = run(Some("<b@x>"), true);
        assert_eq!(skipping, run(Some("<b@x>"), false));
        // The full report lists no message's lines.
        let full = run(None, false);
        assert_eq!(
            (&skipping["hops"], &skipping["findings"]),
            (&full["hops"], &full["findings"])
        );
        assert_eq!(skipping["hops"][0]["left_at"], "2025-10-26T01:10:01Z");
    }

    /// Two queue entries of one message that arrived in the same second are ordered the same
    /// with the prefilter as without it: the prefilter reads an entry's `client=` line only
    /// when its `message-id=` line names it, after the other entry's lines, so the order
    /// their lines were read differs. Which entry leads decides which one Dovecot's save
    /// (matched by recipient only) follows, and so the message's status.
    #[test]
    fn two_entries_of_one_second_are_ordered_alike_focused_or_not() {
        let lmtp = |t: &str, q: &str, tail: &str| {
            format!(
                "Dec 31 {t} ec2 postfix/lmtp[9]: {q}: to=<bob@corp.test>, \
                 relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, \
                 delays=0.01/0/0.01/0.08, {tail}\n"
            )
        };
        let ec2 = format!(
            "Dec 31 23:00:01 ec2 postfix/smtpd[5]: 4AB12C3D4E: client=mail.sender.example[203.0.113.9]\n\
             Dec 31 23:00:01 ec2 postfix/cleanup[6]: 3YvRtX0bNmz9kLp: message-id=<m1@a.example>\n\
             Dec 31 23:00:05 ec2 postfix/cleanup[6]: 4AB12C3D4E: message-id=<m1@a.example>\n{}{}\
             Dec 31 23:00:49 ec2 dovecot: lmtp(bob@corp.test)<106><AbCd106>: sieve: \
             msgid=<m1@a.example>: stored mail into mailbox 'Junk'\n",
            lmtp(
                "23:00:25",
                "4AB12C3D4E",
                "dsn=4.3.0, status=deferred (host dell.corp.test[private/dovecot-lmtp] said: \
                 451 4.3.0 <bob@corp.test> Temporary internal error (in reply to end of DATA command))"
            ),
            lmtp(
                "23:00:29",
                "3YvRtX0bNmz9kLp",
                "dsn=2.0.0, status=sent (250 2.0.0 <bob@corp.test> AbCdEf Saved)"
            ),
        );
        let m = one_message_either_way(&ec2, "", "<m1@a.example>", |m| {
            serde_json::json!([m["status"], each(m, "hops", "queue_id")])
        });
        // By queue id, byte for byte.
        assert_eq!(
            m,
            serde_json::json!(["deferred", ["3YvRtX0bNmz9kLp", null, "4AB12C3D4E"]])
        );
    }

    /// Field `key` of each item of a message's list `list` (its findings' codes, say).
    fn each(m: &serde_json::Value, list: &str, key: &str) -> Vec<serde_json::Value> {
        let items = m[list].as_array().into_iter().flatten();
        items.map(|x| x[key].clone()).collect()
    }

    /// What `view` shows of the one message `id` in `ec2`'s and `dell`'s logs, with and
    /// without the prefilter, which must agree.
    fn one_message_either_way(
        ec2: &str,
        dell: &str,
        id: &str,
        view: fn(&serde_json::Value) -> serde_json::Value,
    ) -> serde_json::Value {
        let run = |prefilter: bool| {
            let v = focused(&[("ec2", ec2), ("dell", dell)], id, prefilter);
            let ms = v["messages"].as_array().cloned().unwrap_or_default();
            assert_eq!(ms.len(), 1, "{v}");
            view(&ms[0])
        };
        let skipping = run(true);
        assert_eq!(skipping, run(false));
        skipping
    }

    /// A Dovecot save and a later failure of the same recipient and session are judged by their
    /// own times, not by which is read first: dell's clock steps back, so its earlier save is
    /// read after ec2's later reject when all lines are read, and before it when the prefilter
    /// skips dell's lines of another message. Either way the reject came last.
    #[test]
    fn a_save_and_a_failure_are_ordered_by_their_own_times() {
        let ec2 =
            "Dec 31 23:00:22 ec2 postfix/cleanup[101]: D0E873A000: message-id=<m2@a.example>\n\
                   Dec 31 23:00:24 ec2 dovecot: lmtp(bob@corp.test)<107><AbCd107>: \
                   msgid=<m2@a.example>: rejected: Quota exceeded (mailbox for user is full)\n";
        let dell =
            "Dec 31 23:00:46 dell postfix/cleanup[100]: 4AB12C3D4E: message-id=<m1@a.example>\n\
                    Dec 31 23:00:04 dell dovecot: lmtp(bob@corp.test)<107><AbCd107>: sieve: \
                    msgid=<m2@a.example>: stored mail into mailbox 'Junk'\n";
        let m = one_message_either_way(ec2, dell, "<m2@a.example>", |m| {
            serde_json::json!([m["status"], m["hops"].as_array().map(Vec::len)])
        });
        assert_eq!(m, serde_json::json!(["rejected", 3]));
    }

    /// A save takes back every earlier failure of its recipient and session, each named by the
    /// host that logged it: read after the save (dell's clock steps back), dell's reject kept
    /// its finding in a full run, while the prefilter read it first and folded it into ec2's.
    #[test]
    fn a_save_takes_back_the_failures_of_every_host() {
        let ec2 =
            "Dec 31 23:00:07 ec2 postfix/cleanup[101]: D0E873A000: message-id=<m2@a.example>\n\
                   Dec 31 23:00:09 ec2 dovecot: lmtp(bob@corp.test)<107><AbCd107>: \
                   msgid=<m2@a.example>: rejected: Quota exceeded (mailbox for user is full)\n\
                   Dec 31 23:01:02 ec2 dovecot: lmtp(bob@corp.test)<107><AbCd107>: \
                   msgid=<m2@a.example>: saved mail to INBOX\n";
        let dell =
            "Dec 31 23:01:24 dell postfix/cleanup[100]: 4AB12C3D4E: message-id=<m1@a.example>\n\
                    Dec 31 23:00:42 dell dovecot: lmtp(bob@corp.test)<107><AbCd107>: \
                    msgid=<m2@a.example>: rejected: Quota exceeded (mailbox for user is full)\n";
        let m = one_message_either_way(ec2, dell, "<m2@a.example>", |m| {
            serde_json::json!([m["status"], m["findings"]])
        });
        assert_eq!(m, serde_json::json!(["queued", []]));
    }

    /// One failure seen on two hosts is led by its earlier sighting, not by the line read
    /// first: dell's clock steps back, so its earlier line is read after ec2's when all its
    /// lines are read, and before them when the prefilter skips the line of another message.
    #[test]
    fn a_failure_seen_on_two_hosts_is_led_by_its_earlier_sighting() {
        let full = |host: &str, t: &str, session: &str| {
            format!(
                "Dec 31 {t} {host} dovecot: lmtp(bob@corp.test)<107><{session}>: \
                 msgid=<m2@a.example>: rejected: Quota exceeded (mailbox for user is full)\n"
            )
        };
        let ec2 = format!(
            "Dec 31 23:00:12 ec2 postfix/cleanup[101]: D0E873A000: message-id=<m2@a.example>\n{}",
            full("ec2", "23:00:14", "AbCd1")
        );
        let dell = format!(
            "Dec 31 23:00:36 dell postfix/cleanup[7]: 4AB12C3D4E: message-id=<m1@a.example>\n{}",
            full("dell", "23:00:00", "XyZw2")
        );
        let report = |prefilter: bool| {
            focused(
                &[("ec2", &ec2), ("dell", &dell)],
                "<m2@a.example>",
                prefilter,
            )["messages"][0]["findings"]
                .clone()
        };
        let parsing = report(false);
        assert_eq!(parsing[0]["code"], "mailbox_full", "{parsing}");
        assert_eq!(parsing[0]["host"], "dell", "{parsing}");
        assert_eq!(parsing, report(true));
    }

    /// A message's findings seen in the same second are ordered by code and host, not by which
    /// log's line the merge took first: that depends on the log's order on the command line
    /// and, when a clock steps back, on whether the prefilter skipped another message's line.
    #[test]
    fn findings_of_one_second_keep_one_order() {
        let ec2 = "Dec 31 23:00:01 ec2 postfix/cleanup[1]: 1A1A1A1A1A: message-id=<other@a.example>\n\
                   Dec 31 23:00:00 ec2 postfix/cleanup[101]: D0E873A000: message-id=<m2@a.example>\n\
                   Dec 31 23:00:00 ec2 postfix/smtp[102]: D0E873A000: to=<bob@corp.test>, \
                   relay=100.64.0.2[100.64.0.2]:2525, delay=0.2, delays=0.1/0/0.05/0.05, dsn=4.3.0, \
                   status=deferred (host 100.64.0.2[100.64.0.2] said: 451 4.3.0 Temporary internal \
                   failure (in reply to end of DATA command))\n";
        let dell = "Dec 31 23:00:00 dell dovecot: lmtp(bob@corp.test)<106><AbCd106>: \
                    msgid=<m2@a.example>: save failed to INBOX: Permission denied\n";
        let codes = |logs: &[(&str, &str)], prefilter: bool| {
            let v = focused(logs, "<m2@a.example>", prefilter);
            let findings = v["messages"][0]["findings"].as_array().cloned();
            let codes: Vec<String> = findings
                .unwrap_or_default()
                .iter()
                .map(|f| format!("{}@{}", f["code"], f["host"]))
                .collect();
            codes
        };
        let want = codes(&[("ec2", ec2), ("dell", dell)], false);
        assert_eq!(want.len(), 2, "{want:?}");
        assert_eq!(want, codes(&[("ec2", ec2), ("dell", dell)], true));
        assert_eq!(want, codes(&[("dell", dell), ("ec2", ec2)], false));
        assert_eq!(want, codes(&[("dell", dell), ("ec2", ec2)], true));
    }

    /// Clients refusing Dovecot's certificate (its login processes' disconnects, logged at
    /// Info) are a host's TLS failure, with or without `--message-id`'s prefilter.
    #[test]
    fn clients_refusing_dovecots_certificate_are_a_tls_finding() {
        let log = "Jun  9 09:45:08 mx postfix/cleanup[2]: 1A2B3C4D5E: message-id=<m@x>\n\
                   Jun  9 09:45:55 mx dovecot: imap-login: Disconnected (no auth attempts): \
                   rip=192.0.2.7, lip=198.18.3.2, TLS handshaking: SSL_accept() failed: \
                   error:14094416:SSL routines:SSL3_READ_BYTES:sslv3 alert certificate unknown: \
                   SSL alert number 46\n";
        for prefilter in [false, true] {
            let v = focused(&[("mx", log)], "<m@x>", prefilter);
            assert_eq!(v["findings"][0]["code"], "tls_error", "{v}");
        }
    }

    /// Dovecot's LDA save, logged just before pipe's line for the same recipient, is that
    /// delivery's when no `message-id=` line joins them (a log that starts mid-message); a
    /// save of another recipient is not.
    #[test]
    fn an_lda_save_joins_the_pipe_delivery_of_its_recipient() {
        let log = |user: &str| {
            format!(
                "May  5 00:04:33 mail dovecot: lda({user}): msgid=<a1@x.example>: saved mail to INBOX\n\
                 May  5 00:04:33 mail postfix/pipe[24341]: E0D25336042: to=<client@host.com>, \
                 relay=dovecot, delay=0.11, delays=0.01/0.01/0/0.09, dsn=2.0.0, \
                 status=sent (delivered via dovecot service)\n"
            )
        };
        for (user, messages) in [("client@host.com", 1), ("other@host.com", 2)] {
            let mut out = Vec::new();
            let s = analyze(
                vec![input("mx", log(user))],
                &Options::whole_2025(Format::Json),
                &mut out,
            )
            .unwrap();
            let out = String::from_utf8(out).unwrap();
            assert_eq!(s.messages, messages, "{out}");
        }
    }

    /// A sender no line named is unknown, not the null sender `<>` of a bounce.
    #[test]
    fn the_human_report_tells_an_unknown_sender_from_the_null_one() {
        let mut log = open_log(1);
        log.push_str(
            "Nov  7 12:00:08 mx postfix/cleanup[2]: 2B2B2B2B2B: message-id=<dsn@x>\n\
             Nov  7 12:00:08 mx postfix/qmgr[3]: 2B2B2B2B2B: from=<>, size=2000, nrcpt=1 (queue active)\n\
             Nov  7 12:00:09 mx postfix/smtp[4]: 2B2B2B2B2B: to=<s@y.example>, relay=mx.y.example[192.0.2.9]:25, \
             delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced (host mx.y.example[192.0.2.9] said: \
             550 5.1.1 <s@y.example>: User unknown (in reply to RCPT TO command))\n",
        );
        let input = input("ec2", log);
        let mut out = Vec::new();
        analyze(vec![input], &Options::whole_2025(Format::Human), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("<open0@x>  DEFERRED  from (unknown) to <bob@corp.test>"),
            "{out}"
        );
        assert!(
            out.contains("<dsn@x>  BOUNCED  from <> to <s@y.example>"),
            "{out}"
        );
    }

    /// With `--message-id`, the host findings around the message: its latest line counts,
    /// not only its hops' arrivals (a hop still queued has left nowhere yet).
    #[test]
    fn host_findings_around_a_queued_message_reach_its_latest_line() {
        let log = "Nov  7 12:00:00 mx postfix/smtpd[1]: 1A2B3C4D5E: client=a.example[192.0.2.1]\n\
                   Nov  7 12:06:00 mx postfix/cleanup[2]: 1A2B3C4D5E: message-id=<slow@x>\n\
                   Nov  7 12:06:30 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): \
                   user=<bob@corp.test>, method=PLAIN, rip=192.0.2.9, lip=198.18.3.2, TLS, session=<abc>\n";
        let input = input("ec2", log);
        let opts = Options {
            message_id: Some("<slow@x>".into()),
            ..Options::whole_2025(Format::Json)
        };
        let mut out = Vec::new();
        analyze(vec![input], &opts, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("\"code\":\"imap_auth_failed\""), "{out}");
    }
}
