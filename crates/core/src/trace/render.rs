//! Human rendering of a [`Trace`]: owns the terminal table (one line per hop with time, delay, a
//! bar proportional to the delay, protocol and stage; then the route `from [ip] -> by`; warnings
//! spelled out). It does not decide anything: every number comes from the trace.
//!
//! Layout for an 80-column terminal (the route wraps before `->` rather than cutting host names;
//! only a single name longer than the line is cut, with `…`):
//! ```text
//!   #  time (UTC)       delay  bar                   with
//!      -- 2025-11-04 --
//!   0  18:12:31             -                        ESMTPSA
//!        client.example.org [198.51.100.10] -> mail.example.org
//!   1  18:12:32.812    1.81 s  ████████████████████  ESMTPS  stage gmail-mx
//!        mail.example.org [192.0.2.25] -> mx.google.com
//! ```
//! Times are UTC with at most millisecond digits (the JSON keeps all of them); a date line is
//! printed before the first timed hop and whenever the date changes. Every field taken from the
//! message (hosts, protocol, the raw header) has its control characters escaped before layout.
use std::fmt::Write as _;

use super::{Hop, HopWarning, Precision, Trace};
use crate::text::escape_control as esc;

const MIN_WIDTH: usize = 60;
const INDENT: &str = "       ";

/// Render the trace as a table for a terminal `width` columns wide (at least 60 is used).
pub fn render_human(t: &Trace, width: usize) -> String {
    let width = width.max(MIN_WIDTH);
    let cells = if width >= 80 { 20 } else { 10 };
    let line_w = width - INDENT.len();
    let mut out = String::new();

    let timed = t.hops.iter().filter(|h| h.timestamp.is_some()).count();
    let _ = write!(
        out,
        "Received path: {} hop{}, {} with a time",
        t.hops.len(),
        if t.hops.len() == 1 { "" } else { "s" },
        timed
    );
    match t.total_ms {
        Some(ms) => {
            let _ = writeln!(out, ", total {}", human_ms(ms));
        }
        None => out.push('\n'),
    }
    if let Some(c) = t.created_at {
        let mut line = format!(
            "Date header {} UTC (writer's clock)",
            c.utc.format("%Y-%m-%d %H:%M:%S")
        );
        if let Some(ms) = t.delivered_after_ms {
            let _ = write!(line, ", delivered after {}", human_ms(ms));
        }
        wrap(&mut out, "", &line, width);
    }
    if t.hops.is_empty() {
        out.push_str("no Received headers: nothing to trace\n");
    } else {
        let _ = writeln!(
            out,
            "  #  {:<12}  {:>8}  {:<cells$}  with",
            "time (UTC)", "delay", "bar"
        );
    }

    let max_delay = t
        .hops
        .iter()
        .filter_map(|h| h.delay_ms)
        .filter(|d| *d > 0)
        .max()
        .unwrap_or(0);
    let mut last_date: Option<String> = None;
    for (i, hop) in t.hops.iter().enumerate() {
        if let Some(ts) = hop.timestamp {
            let day = ts.utc.format("%Y-%m-%d").to_string();
            if last_date.as_deref() != Some(day.as_str()) {
                let _ = writeln!(out, "     -- {day} --");
                last_date = Some(day);
            }
        }
        let time = match hop.timestamp {
            Some(ts) => {
                let mut s = ts.utc.format("%H:%M").to_string();
                match ts.precision {
                    Precision::Minute => {}
                    Precision::Second => s.push_str(&ts.utc.format(":%S").to_string()),
                    Precision::Fraction(d) => {
                        let frac =
                            format!("{:09}", ts.utc.timestamp_subsec_nanos().min(999_999_999));
                        s.push_str(&ts.utc.format(":%S.").to_string());
                        s.push_str(frac.get(..usize::from(d.clamp(1, 3))).unwrap_or_default());
                    }
                }
                s
            }
            None => "no date".into(),
        };
        let delay = hop.delay_ms.map_or_else(|| "-".to_string(), human_ms);
        let bar = bar(hop.delay_ms, max_delay, cells);
        let mut tail = esc(hop.protocol.as_deref().unwrap_or("-")).into_owned();
        if let Some(stage) = &hop.stage {
            let _ = write!(tail, "  stage {}", esc(stage));
        }
        let head = format!("{i:>3}  {time:<12}  {delay:>8}  {bar}  ");
        let tail = fit(&tail, width.saturating_sub(head.chars().count()).max(8));
        let _ = writeln!(out, "{head}{tail}");

        let mut from = esc(hop.from.as_deref().unwrap_or("-")).into_owned();
        if let Some(ip) = &hop.from_ip {
            if hop.from.as_deref().map(|f| f.trim_matches(['[', ']'])) != Some(ip.as_str()) {
                let _ = write!(from, " [{}]", esc(ip));
            }
        }
        let by = format!("-> {}", esc(hop.by.as_deref().unwrap_or("-")));
        if hop.from.is_none() && hop.by.is_none() {
            // Nothing to route (qmail's `(qmail 123 invoked from network)`, junk): show the text.
            let _ = writeln!(out, "{INDENT}{}", fit(&esc(&hop.raw), line_w));
        } else if from.chars().count() + 1 + by.chars().count() <= line_w {
            let _ = writeln!(out, "{INDENT}{from} {by}");
        } else {
            let _ = writeln!(out, "{INDENT}{}", fit(&from, line_w));
            let _ = writeln!(out, "{INDENT}  {}", fit(&by, line_w - 2));
        }

        for w in &hop.warnings {
            let text = warning_text(*w, hop);
            let _ = writeln!(out, "{INDENT}! {}", fit(&text, line_w - 2));
        }
    }

    if !t.missing_stages.is_empty() {
        let _ = writeln!(out, "missing stages: {}", esc(&t.missing_stages.join(", ")));
    }
    for w in &t.warnings {
        if w != "no_received_headers" {
            let _ = writeln!(out, "warning: {}", esc(w));
        }
    }
    for n in &t.notes {
        wrap(&mut out, "note: ", &esc(n), width);
    }
    out
}

/// `text` after `lead`, wrapped at spaces to `width` columns; continuation lines are indented
/// under the text, and a single word longer than the line is cut.
fn wrap(out: &mut String, lead: &str, text: &str, width: usize) {
    let indent = " ".repeat(lead.len());
    let room = width.saturating_sub(lead.len()).max(8);
    let mut line = String::new();
    let mut first = true;
    let mut flush = |line: &mut String, first: &mut bool| {
        let head = if *first { lead } else { &indent };
        let _ = writeln!(out, "{head}{}", fit(line, room));
        line.clear();
        *first = false;
    };
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            flush(&mut line, &mut first);
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        flush(&mut line, &mut first);
    }
}

fn warning_text(w: HopWarning, hop: &Hop) -> String {
    match w {
        HopWarning::Malformed => {
            format!(
                "malformed: not a Received header we can read: {}",
                esc(&hop.raw)
            )
        }
        HopWarning::AmbiguousClient => {
            "ambiguous_client: more than one client could be meant; none is taken".into()
        }
        HopWarning::NoDate => "no_date: the header has no date".into(),
        HopWarning::UnreadableDate => {
            "unreadable_date: the text after the ';' is not a date flowtest reads".into()
        }
        HopWarning::ClockSkew => format!(
            "clock_skew: stamped {} before the previous dated hop",
            human_ms(hop.delay_ms.unwrap_or(0).saturating_abs())
        ),
        HopWarning::FutureDate => {
            "future_date: stamped after the time the message was fetched or analysed".into()
        }
    }
}

/// A compact duration of at most 8 characters: `520 ms`, `1.25 s`, `12.5 s`, `2m 03s`, `1h 02m`,
/// `3d 04h`, `123d`, `72.1y`, with a leading `-` when negative.
pub fn human_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    const DAY: u64 = 86_400_000;
    let body = if a < 1_000 {
        format!("{a} ms")
    } else if a < 10_000 {
        format!("{:.2} s", a as f64 / 1000.0)
    } else if a < 60_000 {
        format!("{:.1} s", a as f64 / 1000.0)
    } else if a < 3_600_000 {
        format!("{}m {:02}s", a / 60_000, (a / 1000) % 60)
    } else if a < DAY {
        format!("{}h {:02}m", a / 3_600_000, (a / 60_000) % 60)
    } else if a < 10 * DAY {
        format!("{}d {:02}h", a / DAY, (a / 3_600_000) % 24)
    } else if a < 365 * DAY {
        format!("{}d", a / DAY)
    } else if a < 10_000 * 365 * DAY {
        format!("{:.1}y", a as f64 / (365.25 * DAY as f64))
    } else {
        ">9999y".to_string()
    };
    format!("{sign}{body}")
}

/// A bar of `cells` cells, in eighths, proportional to `delay / max`; blank for none or <= 0.
fn bar(delay: Option<i64>, max: i64, cells: usize) -> String {
    const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let mut s = String::new();
    let eighths = match delay {
        Some(d) if d > 0 && max > 0 => {
            let e = (d as f64 / max as f64 * (cells * 8) as f64).round() as usize;
            e.clamp(1, cells * 8)
        }
        _ => 0,
    };
    for _ in 0..eighths / 8 {
        s.push('█');
    }
    if eighths % 8 != 0 {
        s.push(PARTIAL[eighths % 8]);
    }
    let used = s.chars().count();
    s.extend(std::iter::repeat_n(' ', cells - used));
    s
}

/// Cut `s` to `w` characters, ending with `…` when cut.
fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::super::{trace_message, Timestamp, TraceOptions};
    use super::*;

    fn sample() -> Trace {
        let raw = "Received: from mail.example.org (mail.example.org. [192.0.2.25])\n\
            \tby mx.google.com with ESMTPS id 6a1803df08f44-88d3b9e1c2fsi1234567d6.312.2025.11.04.10.12.32\n\
            \tfor <jane.doe@gmail.com>; Tue, 04 Nov 2025 10:12:32 -0800 (PST)\n\
            Received: from client.example.org (client.example.org [198.51.100.10])\n\
            \tby mail.example.org (Postfix) with ESMTPSA id 4d1Hk83C2Wz9sWL;\n\
            \tTue,  4 Nov 2025 18:12:31.190 +0000 (UTC)\n\
            Received: from x by mail.example.org; garbage\n\
            Received: from y by z with SMTP; Tue, 4 Nov 2025 18:20:00 +0000\n\n";
        trace_message(
            raw.as_bytes(),
            &TraceOptions {
                now: "2026-11-28T00:00:00Z".parse().unwrap(),
                fetched_at: None,
                stages: &[],
            },
        )
        .unwrap()
    }

    #[test]
    fn fits_80_columns_and_shows_everything() {
        let t = sample();
        let s = render_human(&t, 80);
        for line in s.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
        assert!(s.contains("4 hops, 3 with a time"), "{s}");
        assert!(s.contains("mx.google.com"));
        assert!(
            s.contains("mail.example.org [192.0.2.25] -> mx.google.com"),
            "{s}"
        );
        assert!(s.contains("18:12:31.190"));
        assert!(s.contains("no date"));
        assert!(s.contains("! unreadable_date: the text after"), "{s}");
        assert!(s.contains("! clock_skew: stamped 7m 28s before"), "{s}");
        assert!(s.contains("-- 2025-11-04 --"));
        assert!(s.contains("\n       x -> mail.example.org\n"), "{s}");
        // A hop with neither from nor by shows its text instead of `- -> -`.
        let mut t = sample();
        t.hops[1].from = None;
        t.hops[1].by = None;
        let s = render_human(&t, 80);
        assert!(
            s.contains("\n       from x by mail.example.org; garbage\n"),
            "{s}"
        );
        assert!(!s.contains("- -> -"), "{s}");
        assert!(
            s.contains("██████████"),
            "the longest delay fills the bar:\n{s}"
        );
    }

    #[test]
    fn narrow_width_is_clamped_and_long_names_are_cut() {
        let mut t = sample();
        t.hops[0].by = Some("x".repeat(200));
        t.hops[1].stage = Some("a-stage-name".into());
        let s = render_human(&t, 10);
        for line in s.lines() {
            assert!(line.chars().count() <= MIN_WIDTH, "too wide: {line:?}");
        }
        assert!(s.contains('…'));
        // At 80 columns the stage fits beside the protocol, and a long route wraps before `->`
        // instead of cutting host names.
        let mut t = sample();
        t.hops[1].stage = Some("a-stage-name".into());
        t.hops[1].from = Some("a-rather-long-host-name.namprd04.prod.outlook.example".into());
        t.hops[1].by = Some("another-long-host-name.outlook.office365.example".into());
        let s = render_human(&t, 80);
        assert!(
            s.contains("\n         -> another-long-host-name.outlook.office365.example\n"),
            "{s}"
        );
        assert!(s.contains("  -  stage a-stage-name\n"), "{s}");
    }

    #[test]
    fn durations() {
        assert_eq!(human_ms(0), "0 ms");
        assert_eq!(human_ms(-520), "-520 ms");
        assert_eq!(human_ms(1_250), "1.25 s");
        assert_eq!(human_ms(12_500), "12.5 s");
        assert_eq!(human_ms(123_000), "2m 03s");
        assert_eq!(human_ms(3_720_000), "1h 02m");
        assert_eq!(human_ms(3 * 86_400_000 + 4 * 3_600_000), "3d 04h");
        assert_eq!(human_ms(123 * 86_400_000), "123d");
        assert_eq!(human_ms(-2_275_074_000_000), "-72.1y");
        assert_eq!(human_ms(i64::MIN), "->9999y");
        for ms in [
            0,
            999,
            -999,
            9_999,
            59_999,
            -3_599_999,
            86_399_999,
            3_650_000_000_000,
            -i64::MAX,
        ] {
            assert!(human_ms(ms).chars().count() <= 8, "{ms}: {}", human_ms(ms));
        }
    }

    #[test]
    fn bars() {
        assert_eq!(bar(None, 100, 10), " ".repeat(10));
        assert_eq!(bar(Some(-5), 100, 10), " ".repeat(10));
        assert_eq!(bar(Some(100), 100, 10), "█".repeat(10));
        assert_eq!(
            bar(Some(50), 100, 10),
            format!("{}{}", "█".repeat(5), " ".repeat(5))
        );
        assert_eq!(bar(Some(1), 1_000_000, 20).chars().next(), Some('▏'));
        assert_eq!(bar(Some(1), 1_000_000, 20).chars().count(), 20);
    }

    #[test]
    fn notes_wrap_within_the_width() {
        let t = Trace {
            hops: vec![],
            total_ms: None,
            created_at: None,
            delivered_after_ms: None,
            warnings: vec![],
            missing_stages: vec![],
            notes: vec!["gmail-arc: ARC set i=1 sealed by google.com at 2025-11-04T18:31:07Z (cv=none); mx.google.com: dkim=pass spf=pass dmarc=pass".into()],
        };
        let s = render_human(&t, 80);
        let notes: Vec<&str> = s.lines().skip_while(|l| !l.starts_with("note: ")).collect();
        assert_eq!(
            notes,
            [
                "note: gmail-arc: ARC set i=1 sealed by google.com at 2025-11-04T18:31:07Z",
                "      (cv=none); mx.google.com: dkim=pass spf=pass dmarc=pass",
            ],
            "{s}"
        );
    }

    #[test]
    fn the_date_header_line_says_whose_clock_it_is() {
        let mut t = sample();
        t.created_at = Some(Timestamp {
            utc: "2025-11-04T18:12:29Z".parse().unwrap(),
            precision: Precision::Second,
        });
        t.delivered_after_ms = Some(3250);
        let s = render_human(&t, 80);
        let line = s.lines().nth(1).unwrap_or_default();
        assert_eq!(
            line, "Date header 2025-11-04 18:12:29 UTC (writer's clock), delivered after 3.25 s",
            "{s}"
        );
        assert!(!render_human(&sample(), 80).contains("Date header"));
    }

    #[test]
    fn empty_trace() {
        let t = Trace {
            hops: vec![],
            total_ms: None,
            created_at: None,
            delivered_after_ms: None,
            warnings: vec!["no_received_headers".into()],
            missing_stages: vec!["ec2-mx".into()],
            notes: vec![],
        };
        let s = render_human(&t, 80);
        assert!(s.contains("0 hops"));
        assert!(s.contains("no Received headers"));
        assert!(s.contains("missing stages: ec2-mx"));
    }
}
