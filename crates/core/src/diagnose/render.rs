//! The diagnosis report's text: JSON (an object streamed as messages finish, then findings,
//! skew, sources and summary) and human (failed or matched messages, then host findings,
//! significant skew, one line per source and a summary line). Does not decide what is shown
//! (`super::report`). Every text taken from a log line has its control characters escaped in the
//! human report; JSON's encoder escapes them itself.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use crate::diagnosis::Finding;
use crate::fusion::{HopStatus, MessageChain, SkewEstimate};

use super::json::LastTime;
use super::{Options, SourceReport, Summary};
use crate::text::escape_control as esc;

/// What follows the messages.
pub(super) struct Tail<'a> {
    pub top_findings: &'a [Finding],
    pub host_findings: &'a [Finding],
    pub skew: &'a [SkewEstimate],
    pub sources: &'a [SourceReport],
    pub summary: &'a Summary,
    pub findings_by_code: &'a BTreeMap<&'static str, u64>,
    pub findings_truncated: u64,
}

pub(super) fn json_head(o: &mut dyn Write) -> io::Result<()> {
    o.write_all(b"{\"messages\": [")
}

/// One message of the list, appended to `pending` (the caller writes it out in large pieces:
/// a message is made of many small pieces, each a call through a writer otherwise, and a
/// piece larger than the writer's buffer goes past that buffer without a copy).
pub(super) fn json_message(
    pending: &mut Vec<u8>,
    m: &MessageChain,
    first: bool,
    last: &mut LastTime,
) -> io::Result<()> {
    pending.extend_from_slice(if first { b"\n  " } else { b",\n  " });
    super::json::message(pending, m, last)
}

#[derive(Serialize)]
struct JsonTail<'a> {
    findings: Vec<&'a Finding>,
    skew: &'a [SkewEstimate],
    sources: &'a [SourceReport],
    summary: JsonSummary<'a>,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    messages: u64,
    failed: u64,
    by_status: &'a BTreeMap<&'static str, u64>,
    findings_by_code: &'a BTreeMap<&'static str, u64>,
    findings_truncated: u64,
    /// Present only when lines were dropped, so reports of ordinary runs keep their shape.
    #[serde(skip_serializing_if = "is_zero")]
    lines_dropped_over_cap: u64,
    #[serde(skip_serializing_if = "is_zero")]
    transactions_abandoned: u64,
    #[serde(skip_serializing_if = "is_zero")]
    removed_only: u64,
    #[serde(skip_serializing_if = "is_zero")]
    server_faults: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Close the message list and write the other members, one per line.
pub(super) fn json_tail(o: &mut dyn Write, t: &Tail) -> io::Result<()> {
    let tail = JsonTail {
        findings: t.top_findings.iter().chain(t.host_findings).collect(),
        skew: t.skew,
        sources: t.sources,
        summary: JsonSummary {
            messages: t.summary.messages,
            failed: t.summary.failed,
            by_status: &t.summary.by_status,
            findings_by_code: t.findings_by_code,
            findings_truncated: t.findings_truncated,
            lines_dropped_over_cap: t.summary.lines_dropped_over_cap,
            transactions_abandoned: t.summary.transactions_abandoned,
            removed_only: t.summary.removed_only,
            server_faults: t.summary.server_faults,
        },
    };
    let v = serde_json::to_value(&tail).map_err(io::Error::other)?;
    o.write_all(b"\n]")?;
    if let serde_json::Value::Object(map) = v {
        for (k, v) in map {
            write!(o, ",\n\"{k}\": ")?;
            serde_json::to_writer(&mut *o, &v).map_err(io::Error::other)?;
        }
    }
    o.write_all(b"\n}\n")
}

pub(super) fn human_tail(o: &mut dyn Write, t: &Tail, opts: &Options) -> io::Result<()> {
    if t.summary.messages == 0 {
        match (&opts.message_id, &opts.rcpt) {
            (Some(id), _) => writeln!(o, "no log line mentions message-id {}", esc(id))?,
            (None, Some(r)) => writeln!(o, "no log line mentions recipient {}", esc(r))?,
            _ => {}
        }
    }
    if !t.host_findings.is_empty() {
        writeln!(o, "\nhost findings:")?;
        for f in t.host_findings {
            human_finding(o, f, "  ")?;
        }
    }
    for s in t.skew.iter().filter(|s| s.significant || s.conflicts > 0) {
        human_skew(o, s)?;
    }
    writeln!(o)?;
    for s in t.sources {
        human_source(o, s)?;
    }
    human_summary(o, t)
}

/// `text` when `n` is above zero, else nothing.
fn if_any(n: u64, text: impl FnOnce() -> String) -> String {
    if n > 0 {
        text()
    } else {
        String::new()
    }
}

fn human_skew(o: &mut dyn Write, s: &SkewEstimate) -> io::Result<()> {
    writeln!(
        o,
        "\nclock skew: {} vs {}: {:+.3}..{:+.3} s over {} hand-off(s){}",
        esc(&s.host),
        esc(&s.reference),
        s.min_ms as f64 / 1000.0,
        s.max_ms as f64 / 1000.0,
        s.samples,
        if_any(s.conflicts, || format!(", {} contradicting", s.conflicts))
    )
}

fn human_source(o: &mut dyn Write, s: &SourceReport) -> io::Result<()> {
    let fmts: Vec<String> = s
        .counts
        .formats
        .iter()
        .map(|(k, v)| format!("{} {v}", k.as_str()))
        .collect();
    writeln!(
        o,
        "source {} ({}): {} lines, {} parsed, {}{} unknown{}{}{} [{}]",
        esc(&s.name),
        esc(&s.path),
        s.counts.lines,
        s.counts.parsed,
        if_any(s.counts.other_programs, || format!(
            "{} of other programs, ",
            s.counts.other_programs
        )),
        s.counts.unknown,
        if_any(s.counts.no_layout, || format!(
            " ({} in no known layout)",
            s.counts.no_layout
        )),
        if_any(s.counts.invalid_utf8, || format!(
            ", {} not UTF-8",
            s.counts.invalid_utf8
        )),
        if_any(s.out_of_window, || format!(
            ", {} outside the window",
            s.out_of_window
        )),
        fmts.join(", ")
    )
}

fn human_summary(o: &mut dyn Write, t: &Tail) -> io::Result<()> {
    let st: Vec<String> = t
        .summary
        .by_status
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    writeln!(
        o,
        "summary: {} message(s){}{}{}{}{}{}",
        t.summary.messages,
        if st.is_empty() {
            String::new()
        } else {
            format!(": {}", st.join(", "))
        },
        if_any(t.findings_truncated, || format!(
            " ({} more findings not listed)",
            t.findings_truncated
        )),
        if_any(t.summary.lines_dropped_over_cap, || format!(
            " ({} log lines not kept: the open messages held the line memory cap)",
            t.summary.lines_dropped_over_cap
        )),
        if_any(t.summary.transactions_abandoned, || format!(
            " ({} SMTP transaction(s) left before DATA: no message, not listed)",
            t.summary.transactions_abandoned
        )),
        if_any(t.summary.removed_only, || format!(
            " ({} queue id(s) seen only in their `removed` line: begun before the log, not listed)",
            t.summary.removed_only
        )),
        if_any(t.summary.server_faults, || format!(
            " ({} host finding(s) about the servers' own services: see above)",
            t.summary.server_faults
        ))
    )
}

/// A hop's time as `%Y-%m-%d %H:%M:%S`, with `%.3f` when the log gave more than whole seconds.
/// Written from the time's fields: chrono's `format` reads its pattern again for every hop.
fn fmt_ts(t: Option<DateTime<Utc>>, whole: bool) -> String {
    use std::fmt::Write as _;
    let Some(t) = t else {
        return "-".into();
    };
    if !(0..=9999).contains(&t.year()) {
        // A year chrono writes with a sign.
        let pattern = if whole {
            "%Y-%m-%d %H:%M:%S"
        } else {
            "%Y-%m-%d %H:%M:%S%.3f"
        };
        return t.format(pattern).to_string();
    }
    // A leap second is second 59 with a nanosecond count past a billion, written as second 60.
    let nanos = t.nanosecond();
    let mut out = String::with_capacity(23);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second() + u32::from(nanos >= 1_000_000_000)
    );
    if !whole {
        let _ = write!(out, ".{:03}", nanos % 1_000_000_000 / 1_000_000);
    }
    out
}

fn human_finding(o: &mut dyn Write, f: &Finding, indent: &str) -> io::Result<()> {
    writeln!(
        o,
        "{indent}finding {} at {}{}: {}",
        f.code,
        esc(f.host.as_deref().unwrap_or("?")),
        if f.count > 1 {
            format!(" ({}x)", f.count)
        } else {
            String::new()
        },
        esc(&f.message)
    )?;
    writeln!(o, "{indent}  fix: {}", esc(&f.hint))?;
    for e in &f.evidence {
        writeln!(o, "{indent}  | {}", esc(e))?;
    }
    Ok(())
}

pub(super) fn human_message(
    o: &mut dyn Write,
    m: &MessageChain,
    with_lines: bool,
) -> io::Result<()> {
    // A sender or recipients no line named (the log starts after them) are unknown: `<>` is
    // the null sender of a bounce.
    let from = m
        .from
        .as_deref()
        .map_or("(unknown)".into(), |f| format!("<{f}>"));
    let to = match m.to.as_slice() {
        [] => "(unknown)".into(),
        to => format!("<{}>", to.join(">, <")),
    };
    writeln!(
        o,
        "{}  {}  from {} to {}",
        esc(m.message_id.as_deref().unwrap_or("(no message-id)")),
        m.status.as_str().to_uppercase(),
        esc(&from),
        esc(&to)
    )?;
    for h in &m.hops {
        human_hop(o, h)?;
    }
    for f in &m.findings {
        human_finding(o, f, "  ")?;
    }
    for n in &m.notes {
        writeln!(o, "  note: {}", esc(n))?;
    }
    if with_lines {
        for l in &m.lines {
            writeln!(o, "  > {}", esc(l))?;
        }
        if m.lines_dropped > 0 {
            writeln!(o, "  > ... {} more line(s)", m.lines_dropped)?;
        }
    }
    writeln!(o)
}

fn human_hop(o: &mut dyn Write, h: &crate::fusion::Hop) -> io::Result<()> {
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
        esc(&h.host),
        esc(h
            .queue_id
            .as_deref()
            .or(h.lmtp_session.as_deref())
            .unwrap_or("-")),
        h.status,
        h.relay
            .as_deref()
            .map(|r| format!("relay={}", esc(r)))
            .unwrap_or_default(),
        h.mailbox
            .as_deref()
            .map(|r| format!("mailbox={}", esc(r)))
            .unwrap_or_default(),
        h.next_queue_id
            .as_deref()
            .map(|n| format!(" -> {}", esc(n)))
            .unwrap_or_default(),
        delay,
        fmt_ts(h.left_at.or(h.arrived_at), h.whole_seconds)
    )?;
    if h.status != HopStatus::Sent && h.status != HopStatus::Saved {
        // `status=expired, returned to sender` may give no reason: no empty line for it.
        if let Some(r) = h.reason.as_deref().filter(|r| !r.is_empty()) {
            writeln!(o, "  {:<10} reason: {}", "", esc(r))?;
        }
    }
    for r in &h.recipients {
        write!(o, "  {:<10} recipient <{}>: {}", "", esc(&r.to), r.status)?;
        if let Some(d) = r.dsn.as_deref() {
            write!(o, " ({})", esc(d))?;
        }
        // The worst recipient's reason is the hop's, written above.
        match r.reason.as_deref().filter(|t| !t.is_empty()) {
            Some(t) if Some(t) != h.reason.as_deref() => writeln!(o, " {}", esc(t))?,
            _ => writeln!(o)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    /// The hop time written from its fields is chrono's `format` of the same pattern.
    #[test]
    fn hop_times_are_written_as_chrono_writes_them() {
        let day = |y, mo, d| NaiveDate::from_ymd_opt(y, mo, d).unwrap();
        let times = [
            day(2026, 11, 4).and_hms_milli_opt(6, 0, 0, 0).unwrap(),
            day(2026, 1, 9)
                .and_hms_micro_opt(23, 59, 7, 123_456)
                .unwrap(),
            day(2016, 12, 31)
                .and_hms_milli_opt(23, 59, 59, 1_500)
                .unwrap(), // leap second
            day(99, 2, 3).and_hms_opt(4, 5, 6).unwrap(),
            day(12345, 6, 7).and_hms_opt(8, 9, 10).unwrap(),
            day(-44, 3, 15)
                .and_hms_nano_opt(12, 0, 0, 999_999_999)
                .unwrap(),
        ];
        for naive in times {
            let t = Utc.from_utc_datetime(&naive);
            let whole = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let frac = t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
            assert_eq!(fmt_ts(Some(t), true), whole, "{naive:?}");
            assert_eq!(fmt_ts(Some(t), false), frac, "{naive:?}");
        }
        assert_eq!(fmt_ts(None, true), "-");
    }
}
