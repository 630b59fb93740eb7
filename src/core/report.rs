//! Report rendering for `flowtest run`: human, JSON, JUnit XML, Nagios. Pure: results in, text
//! out. The JSON shape is a contract (README "JSON output"); the others follow their formats'
//! conventions (JUnit: one test case per scenario; Nagios: one status line with perfdata).
use std::fmt::Write as _;

use crate::core::outcome::{exit_of, RunResult, Status};
use crate::exit::Exit;

/// `{"results": [...]}`, pretty-printed.
pub fn json(results: &[RunResult]) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        results: &'a [RunResult],
    }
    let mut s = serde_json::to_string_pretty(&Doc { results })
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn secs(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

fn human_ms(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(m) if m.abs() < 1000 => format!("{m} ms"),
        Some(m) => format!("{:.2} s", m as f64 / 1000.0),
    }
}

fn verdict_word(s: Status) -> &'static str {
    match s {
        Status::Delivered => "DELIVERED",
        Status::Slow => "SLOW",
        Status::DeliveredSpam => "DELIVERED TO SPAM",
        Status::Lost => "LOST",
        Status::Rejected => "REJECTED",
        Status::Bounced => "BOUNCED",
        Status::SendFailed => "SEND FAILED",
        Status::FetchFailed => "FETCH FAILED",
    }
}

/// The human report: per scenario the verdict, total latency, stages, findings with their fix.
pub fn human(results: &[RunResult]) -> String {
    let mut o = String::new();
    for r in results {
        let _ = write!(o, "{:<24} {}", r.scenario, verdict_word(r.status));
        if let Some(t) = r.total_ms {
            let _ = write!(o, " in {}", human_ms(Some(t)));
        }
        if let Some(target) = r.slo.target_ms {
            let _ = write!(o, " (SLO {})", human_ms(Some(target as i64)));
        }
        o.push('\n');
        let _ = write!(o, "  probe {}", r.probe_id);
        if let Some(f) = &r.folder {
            let _ = write!(o, "  folder {f}");
        }
        if let Some(by) = r.detected_by {
            let _ = write!(
                o,
                "  seen by {}",
                if by == crate::core::outcome::DetectedBy::Idle {
                    "IDLE"
                } else {
                    "poll"
                }
            );
        }
        o.push('\n');
        if let Some(sub) = &r.submission {
            let reply = match sub.code {
                Some(c) => format!("{c} {}", sub.text),
                None => sub.text.clone(),
            };
            let _ = writeln!(o, "  submission: {}", truncate(&reply, 100));
        }
        if !r.stages.is_empty() {
            let _ = writeln!(o, "  {:<24} {:>10}  source", "stage", "latency");
            for st in &r.stages {
                let src = serde_json::to_value(st.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "  {:<24} {:>10}  {}",
                    truncate(&st.name, 24),
                    human_ms(st.ms),
                    src
                );
            }
        }
        if !r.missing_stages.is_empty() {
            let _ = writeln!(o, "  missing stages: {}", r.missing_stages.join(", "));
        }
        for f in &r.findings {
            let code = serde_json::to_value(f.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let at = f
                .stage
                .as_deref()
                .or(f.host.as_deref())
                .map(|s| format!(" at {s}"))
                .unwrap_or_default();
            let _ = writeln!(o, "  finding {code}{at}: {}", f.message);
            for e in f.evidence.iter().take(5) {
                let _ = writeln!(o, "    | {}", truncate(e, 110));
            }
            if !f.hint.is_empty() {
                let _ = writeln!(o, "    fix: {}", f.hint);
            }
        }
        if !r.cleanup.marked_late.is_empty() {
            let _ = writeln!(
                o,
                "  late: earlier lost probe(s) arrived after all: {}",
                r.cleanup.marked_late.join(", ")
            );
        }
        if let Some(n) = &r.cleanup.note {
            let _ = writeln!(o, "  cleanup: {n}");
        }
        for w in &r.warnings {
            let _ = writeln!(o, "  warning: {w}");
        }
        o.push('\n');
    }
    let counts = summary_counts(results);
    let _ = writeln!(o, "{} scenario(s): {}", results.len(), counts);
    o
}

fn summary_counts(results: &[RunResult]) -> String {
    let mut counts: Vec<(Status, usize)> = Vec::new();
    for r in results {
        match counts.iter_mut().find(|(s, _)| *s == r.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.status, 1)),
        }
    }
    counts.sort();
    counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one `<testcase>` per scenario; anything but `delivered` is a `<failure>` whose
/// type is the status.
pub fn junit(results: &[RunResult]) -> String {
    let failures = results
        .iter()
        .filter(|r| r.status != Status::Delivered)
        .count();
    let total_s: f64 = results
        .iter()
        .filter_map(|r| r.total_ms)
        .map(|m| m as f64 / 1000.0)
        .sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"flowtest\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{total_s:.3}\">",
        results.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"flowtest\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{total_s:.3}\">",
        results.len()
    );
    for r in results {
        let time = r.total_ms.map(secs).unwrap_or_else(|| "0".into());
        let _ = writeln!(
            o,
            "    <testcase classname=\"flowtest\" name=\"{}\" time=\"{time}\">",
            xml_escape(&r.scenario)
        );
        if r.status != Status::Delivered {
            let first = r.findings.first();
            let msg = first
                .map(|f| f.message.clone())
                .unwrap_or_else(|| r.status.as_str().to_string());
            let mut body = String::new();
            for f in &r.findings {
                let _ = writeln!(
                    body,
                    "{}: {}",
                    serde_json::to_string(&f.code)
                        .unwrap_or_default()
                        .trim_matches('"'),
                    f.message
                );
                for e in &f.evidence {
                    let _ = writeln!(body, "  {e}");
                }
                if !f.hint.is_empty() {
                    let _ = writeln!(body, "  fix: {}", f.hint);
                }
            }
            let _ = writeln!(
                o,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                r.status.as_str(),
                xml_escape(&msg),
                xml_escape(&body)
            );
        }
        let mut out = format!("probe {} status {}", r.probe_id, r.status.as_str());
        for st in &r.stages {
            let _ = write!(out, "\nstage {} {}", st.name, human_ms(st.ms));
        }
        let _ = writeln!(o, "      <system-out>{}</system-out>", xml_escape(&out));
        let _ = writeln!(o, "    </testcase>");
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

fn perf_label(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Nagios plugin output: `FLOWTEST OK - ... | total=0.512s;5;30 stage_submission=0.012s ...`.
/// With several scenarios each label is prefixed with the scenario name.
pub fn nagios(results: &[RunResult]) -> String {
    let exit = exit_of(results);
    let state = match exit {
        Exit::Ok => "OK",
        Exit::Degraded => "WARNING",
        Exit::Failed => "CRITICAL",
        Exit::Unusable => "UNKNOWN",
    };
    let text = results
        .iter()
        .map(|r| match r.total_ms {
            Some(t) => format!(
                "{} {} in {:.2}s",
                r.scenario,
                r.status.as_str(),
                t as f64 / 1000.0
            ),
            None => format!("{} {}", r.scenario, r.status.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let multi = results.len() > 1;
    let mut perf = Vec::new();
    for r in results {
        let prefix = if multi {
            format!("{}_", perf_label(&r.scenario))
        } else {
            String::new()
        };
        let warn = r.slo.target_ms.map(|m| secs(m as i64)).unwrap_or_default();
        let crit = r.slo.max_ms.unwrap_or(r.timeout_ms);
        match r.total_ms {
            Some(t) => perf.push(format!(
                "{prefix}total={}s;{warn};{}",
                secs(t),
                secs(crit as i64)
            )),
            None => perf.push(format!("{prefix}total=U;{warn};{}", secs(crit as i64))),
        }
        for st in &r.stages {
            if let Some(m) = st.ms {
                perf.push(format!(
                    "{prefix}stage_{}={}s",
                    perf_label(&st.name),
                    secs(m)
                ));
            }
        }
    }
    format!("FLOWTEST {state} - {text} | {}\n", perf.join(" "))
}
