//! Report rendering for `flowtest run`: human, JSON, JUnit XML, Nagios. Pure: results in, text
//! out. The JSON shape is a contract (README "JSON output"); the others follow their formats'
//! conventions (JUnit: one test case per scenario; Nagios: one status line with perfdata).
//! Text from servers, logs and mailboxes passes through [`esc`] in every format but JSON (whose
//! encoder escapes controls itself), and JUnit's XML stays well-formed whatever it holds.
use std::fmt::Write as _;

use crate::outcome::{severity_of, RunResult, Severity, StageSource, Status};
use crate::text::escape_control as esc;

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
        Status::Error => "ERROR",
        Status::Interrupted => "INTERRUPTED",
    }
}

/// The human report: per scenario the verdict, total latency, stages, findings with their fix.
pub fn human(results: &[RunResult]) -> String {
    let mut o = String::new();
    for r in results {
        let _ = write!(o, "{:<24} {}", esc(&r.scenario), verdict_word(r.status));
        if let Some(t) = r.total_ms {
            let _ = write!(o, " in {}", human_ms(Some(t)));
            if let Some(d) = r.delivered_ms {
                let _ = write!(o, " (saved after {})", human_ms(Some(d)));
            }
        }
        if let Some(target) = r.slo.target_ms {
            let _ = write!(o, " (SLO {})", human_ms(Some(target as i64)));
        }
        o.push('\n');
        let _ = write!(o, "  probe {}", esc(&r.probe_id));
        if let Some(f) = &r.folder {
            let _ = write!(o, "  folder {}", esc(f));
        }
        if let Some(by) = r.detected_by {
            let _ = write!(
                o,
                "  seen by {}",
                if by == crate::outcome::DetectedBy::Idle {
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
            let _ = writeln!(o, "  submission: {}", truncate(&esc(&reply), 100));
        }
        if let Some(line) = auth_line(r) {
            let _ = writeln!(o, "  {line}");
        }
        if !r.stages.is_empty() {
            let _ = writeln!(o, "  {:<24} {:>10}  source", "stage", "latency");
            for st in &r.stages {
                let src = match st.source {
                    StageSource::Client => "client",
                    StageSource::Header => "header",
                    StageSource::Log => "log",
                };
                // Say how coarse a figure is when it is coarse; flag figures bounded by our clock.
                let res = match st.precision_ms {
                    0..=1 => String::new(),
                    p if p < 1000 => format!(" ({p} ms res.)"),
                    p => format!(" ({} s res.)", p / 1000),
                };
                let bounded = if st.bounded { ", bounded" } else { "" };
                let _ = writeln!(
                    o,
                    "  {:<24} {:>10}  {src}{res}{bounded}",
                    truncate(&esc(&st.name), 24),
                    human_ms(Some(st.ms as i64))
                );
            }
        }
        if let Some(h) = &r.last_hop {
            if !r.status.is_delivered() {
                let log = r.log_status.as_deref().unwrap_or("unknown");
                let _ = writeln!(o, "  last seen at: {} (logs: {})", esc(h), esc(log));
            }
        }
        if !r.missing_stages.is_empty() {
            let _ = writeln!(o, "  missing stages: {}", esc(&r.missing_stages.join(", ")));
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
                .map(|s| format!(" at {}", esc(s)))
                .unwrap_or_default();
            let _ = writeln!(o, "  finding {code}{at}: {}", esc(&f.message));
            for e in f.evidence.iter().take(5) {
                let _ = writeln!(o, "    | {}", truncate(&esc(e), 110));
            }
            if !f.hint.is_empty() {
                let _ = writeln!(o, "    fix: {}", esc(&f.hint));
            }
        }
        if !r.cleanup.marked_late.is_empty() {
            let _ = writeln!(
                o,
                "  late: earlier lost probe(s) arrived after all: {}",
                esc(&r.cleanup.marked_late.join(", "))
            );
        }
        if let Some(n) = &r.cleanup.note {
            let _ = writeln!(o, "  cleanup: {}", esc(n));
        }
        for w in &r.warnings {
            let _ = writeln!(o, "  warning: {}", esc(w));
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

/// How each side authenticated, when either did: `auth: submission XOAUTH2, mailbox XOAUTH2`.
fn auth_line(r: &RunResult) -> Option<String> {
    let sub = r.submission.as_ref().and_then(|s| s.auth_mechanism);
    let parts: Vec<String> = [("submission", sub), ("mailbox", r.imap_auth_mechanism)]
        .iter()
        .filter_map(|(side, m)| m.map(|m| format!("{side} {}", m.as_str())))
        .collect();
    (!parts.is_empty()).then(|| format!("auth: {}", parts.join(", ")))
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

/// Text for an XML attribute or element. Controls are shown as `\x1b`-style escapes (a CI page
/// renders them as terminal text too); anything XML 1.0 still forbids (C0 but tab and newline,
/// U+FFFE, U+FFFF) becomes U+FFFD. Newlines are kept: the callers escape untrusted fields before
/// joining them, so the newlines left are the report's own line breaks.
fn xml_escape(s: &str) -> String {
    let s = crate::text::escape_control_lines(s);
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' => o.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// JUnit's element for a result that is not `delivered`: a run that could not decide (`error`,
/// `interrupted`) is an `<error>`, any verdict on the mail path a `<failure>`.
fn junit_element(s: Status) -> &'static str {
    if s.severity() == Severity::Unknown {
        "error"
    } else {
        "failure"
    }
}

/// JUnit XML: one `<testcase>` per scenario; anything but `delivered` is a `<failure>` (or an
/// `<error>` when flowtest could not decide) whose type is the status.
pub fn junit(results: &[RunResult]) -> String {
    let not_ok = |el: &str| {
        results
            .iter()
            .filter(|r| r.status != Status::Delivered && junit_element(r.status) == el)
            .count()
    };
    let (failures, errors) = (not_ok("failure"), not_ok("error"));
    let total_s: f64 = results
        .iter()
        .filter_map(|r| r.total_ms)
        .map(|m| m as f64 / 1000.0)
        .sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"flowtest\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{total_s:.3}\">",
        results.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"flowtest\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{total_s:.3}\">",
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
            let el = junit_element(r.status);
            let first = r.findings.first();
            // Without a finding, what the run itself said (an internal error names what failed).
            let msg = first
                .map(|f| esc(&f.message).into_owned())
                .or_else(|| {
                    (el == "error")
                        .then(|| r.warnings.first().map(|w| esc(w).into_owned()))
                        .flatten()
                })
                .unwrap_or_else(|| r.status.as_str().to_string());
            let mut body = String::new();
            for f in &r.findings {
                let _ = writeln!(
                    body,
                    "{}: {}",
                    serde_json::to_string(&f.code)
                        .unwrap_or_default()
                        .trim_matches('"'),
                    esc(&f.message)
                );
                for e in &f.evidence {
                    let _ = writeln!(body, "  {}", esc(e));
                }
                if !f.hint.is_empty() {
                    let _ = writeln!(body, "  fix: {}", esc(&f.hint));
                }
            }
            let _ = writeln!(
                o,
                "      <{el} type=\"{}\" message=\"{}\">{}</{el}>",
                r.status.as_str(),
                xml_escape(&msg),
                xml_escape(&body)
            );
        }
        let mut out = format!("probe {} status {}", esc(&r.probe_id), r.status.as_str());
        for st in &r.stages {
            let _ = write!(
                out,
                "\nstage {} {}",
                esc(&st.name),
                human_ms(Some(st.ms as i64))
            );
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

/// Text in the Nagios status line: controls escaped, and `|` (which starts perfdata) replaced.
fn nagios_text(s: &str) -> String {
    esc(s).replace('|', "/")
}

/// Nagios plugin output: `FLOWTEST OK - ... | total=0.512s;5;30 stage_submission=0.012s ...`.
/// With several scenarios each label is prefixed with the scenario name.
pub fn nagios(results: &[RunResult]) -> String {
    let state = severity_of(results).nagios();
    let text = results
        .iter()
        .map(|r| match r.total_ms {
            Some(t) => format!(
                "{} {} in {:.2}s",
                nagios_text(&r.scenario),
                r.status.as_str(),
                t as f64 / 1000.0
            ),
            None => format!("{} {}", nagios_text(&r.scenario), r.status.as_str()),
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
            perf.push(format!(
                "{prefix}stage_{}={}s",
                perf_label(&st.name),
                secs(st.ms as i64)
            ));
        }
    }
    format!("FLOWTEST {state} - {text} | {}\n", perf.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Finding, FindingCode};
    use crate::outcome::{CleanupReport, SloReport, SmtpPhase, Stage, StageSource, Submission};
    use chrono::{TimeZone, Utc};

    fn result(name: &str, status: Status, total: Option<i64>) -> RunResult {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        RunResult {
            scenario: name.into(),
            probe_id: "019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b".into(),
            status,
            sent_at: t0,
            accepted_at: Some(t0),
            detected_at: total.map(|t| t0 + chrono::Duration::milliseconds(t)),
            total_ms: total,
            delivered_ms: None,
            imap_commands: None,
            folder: total.map(|_| "INBOX".into()),
            detected_by: None,
            submission: Some(Submission {
                started_at: t0,
                accepted_at: Some(t0),
                phase: SmtpPhase::Message,
                code: Some(250),
                enhanced: Some("2.0.0".into()),
                text: "2.0.0 Ok: queued as ABC".into(),
                queue_id: Some("ABC".into()),
                auth_mechanism: None,
                steps: Box::default(),
            }),
            imap_auth_mechanism: None,
            stages: vec![Stage {
                name: "submission".into(),
                ms: 12,
                source: StageSource::Client,
                precision_ms: 1,
                bounded: false,
                detail: None,
            }],
            hops: vec![],
            missing_stages: vec![],
            findings: vec![],
            log_status: None,
            last_hop: None,
            skew: vec![],
            notes: vec![],
            verdict_at: t0,
            slo: SloReport {
                target_ms: Some(5000),
                max_ms: Some(20000),
            },
            timeout_ms: 30000,
            cleanup: CleanupReport::default(),
            warnings: vec![],
        }
    }

    #[test]
    fn json_has_the_contract_keys() {
        let v: serde_json::Value =
            serde_json::from_str(&json(&[result("a", Status::Delivered, Some(640))])).unwrap();
        let r = &v["results"][0];
        for k in [
            "scenario",
            "probe_id",
            "status",
            "sent_at",
            "accepted_at",
            "detected_at",
            "total_ms",
            "folder",
            "submission",
            "stages",
            "hops",
            "findings",
        ] {
            assert!(r.get(k).is_some(), "missing {k}");
        }
        assert_eq!(r["status"], "delivered");
        assert_eq!(r["submission"]["queue_id"], "ABC");
        assert_eq!(r["submission"]["code"], 250);
        assert_eq!(r["stages"][0]["source"], "client");
    }

    #[test]
    fn nagios_line_and_perfdata() {
        let one = nagios(&[result("lab-inbound", Status::Delivered, Some(640))]);
        assert_eq!(
            one,
            "FLOWTEST OK - lab-inbound delivered in 0.64s | total=0.640s;5.000;20.000 stage_submission=0.012s\n"
        );
        let two = nagios(&[
            result("a", Status::Delivered, Some(640)),
            result("b", Status::Lost, None),
        ]);
        assert!(
            two.starts_with("FLOWTEST CRITICAL - a delivered in 0.64s, b lost | "),
            "{two}"
        );
        assert!(
            two.contains("a_total=0.640s;5.000;20.000") && two.contains("b_total=U;5.000;20.000"),
            "{two}"
        );
        let slow = nagios(&[result("a", Status::Slow, Some(9000))]);
        assert!(slow.starts_with("FLOWTEST WARNING"), "{slow}");
    }

    #[test]
    fn junit_escapes_and_marks_failures() {
        let mut bad = result("x<&>\"", Status::Rejected, None);
        let mut f = Finding::new(
            FindingCode::RelayAccessDenied,
            None,
            "554 5.7.1 <c@d>: Relay access denied",
        );
        f.stage = Some("submission".into());
        f.evidence = vec!["554 5.7.1 <c@d>: Relay access denied\u{1}".into()];
        bad.findings.push(f);
        let x = junit(&[result("ok", Status::Delivered, Some(10)), bad]);
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(x.contains("name=\"x&lt;&amp;&gt;&quot;\""), "{x}");
        assert!(x.contains("<failure type=\"rejected\" message=\"554 5.7.1 &lt;c@d&gt;: Relay access denied\">"), "{x}");
        assert!(!x.contains('\u{1}'));
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("</testcase>").count(), 2);
    }

    #[test]
    fn human_report_names_verdict_stages_and_fix() {
        let mut r = result("lab-inbound", Status::Lost, None);
        let mut f = Finding::new(FindingCode::NextHopRefused, Some("ec2"), "deferred on ec2");
        f.stage = Some("tailscale-relay".into());
        f.evidence = vec![
            "status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: Connection refused)".into(),
        ];
        f.hint = "check the Dell host".into();
        r.findings.push(f);
        let h = human(&[r]);
        assert!(
            h.starts_with("lab-inbound              LOST (SLO 5.00 s)\n"),
            "{h}"
        );
        assert!(
            h.contains("finding next_hop_refused at tailscale-relay: deferred on ec2"),
            "{h}"
        );
        assert!(h.contains("    fix: check the Dell host"), "{h}");
        assert!(
            h.contains("\n  submission                    12 ms  client\n"),
            "{h}"
        );
        assert!(h.ends_with("1 scenario(s): 1 lost\n"), "{h}");
    }

    #[test]
    fn error_and_interrupted_render_as_unknown_in_every_format() {
        let mut err = result("a", Status::Error, None);
        err.warnings
            .push("internal error: the scenario's task panicked: boom".into());
        let stopped = result("b", Status::Interrupted, None);
        let both = [
            result("ok", Status::Delivered, Some(10)),
            err,
            stopped,
            result("c", Status::Lost, None),
        ];
        let h = human(&both);
        assert!(h.contains("\na                        ERROR (SLO"), "{h}");
        assert!(
            h.contains("\nb                        INTERRUPTED (SLO"),
            "{h}"
        );
        assert!(
            h.contains("  warning: internal error: the scenario's task panicked: boom"),
            "{h}"
        );
        assert!(
            h.ends_with("4 scenario(s): 1 delivered, 1 lost, 1 error, 1 interrupted\n"),
            "{h}"
        );

        let v: serde_json::Value = serde_json::from_str(&json(&both)).unwrap();
        assert_eq!(v["results"][1]["status"], "error");
        assert_eq!(v["results"][2]["status"], "interrupted");

        let x = junit(&both);
        assert!(x.contains("tests=\"4\" failures=\"1\" errors=\"2\""), "{x}");
        assert!(
            x.contains("<error type=\"error\" message=\"internal error: the scenario&apos;s task panicked: boom\">"),
            "{x}"
        );
        assert!(
            x.contains("<error type=\"interrupted\" message=\"interrupted\">"),
            "{x}"
        );
        assert!(x.contains("<failure type=\"lost\""), "{x}");
        assert_eq!(x.matches("<error ").count(), x.matches("</error>").count());

        let n = nagios(&both);
        assert!(
            n.starts_with(
                "FLOWTEST UNKNOWN - ok delivered in 0.01s, a error, b interrupted, c lost | "
            ),
            "{n}"
        );
        let n = nagios(&[result("b", Status::Interrupted, None)]);
        assert!(n.starts_with("FLOWTEST UNKNOWN - b interrupted | "), "{n}");
    }

    /// Text a hostile server or log could hand us: a title-setting OSC, a screen clear, a C1
    /// CSI, a bare CR and a line break.
    const HOSTILE: &str = "x\x1b]0;pwned\x07y\x1b[2J\u{9b}31mz\rw\nv\u{1}";

    fn hostile_result() -> RunResult {
        let mut r = result("lab-inbound", Status::Rejected, None);
        r.folder = Some(format!("INBOX{HOSTILE}"));
        if let Some(sub) = r.submission.as_mut() {
            sub.text = format!("554 {HOSTILE}");
        }
        r.last_hop = Some(HOSTILE.into());
        r.warnings = vec![HOSTILE.into()];
        let mut f = Finding::new(FindingCode::RelayAccessDenied, Some(HOSTILE), HOSTILE);
        f.evidence = vec![HOSTILE.into()];
        f.hint = HOSTILE.into();
        r.findings.push(f);
        r
    }

    /// Only the report's own line breaks are raw control characters.
    fn assert_no_raw_controls(out: &str) {
        for c in out.chars() {
            assert!(
                c == '\n' || !(c.is_control() || ('\u{80}'..='\u{9f}').contains(&c)),
                "raw U+{:04X} in {out:?}",
                c as u32
            );
        }
    }

    #[test]
    fn untrusted_text_is_escaped_in_every_human_format() {
        let r = hostile_result();
        let h = human(std::slice::from_ref(&r));
        assert_no_raw_controls(&h);
        assert!(
            h.contains("x\\x1b]0;pwned\\x07y\\x1b[2J\\u{9b}31mz\\x0dw\\x0av"),
            "{h}"
        );
        let n = nagios(std::slice::from_ref(&r));
        assert_no_raw_controls(&n);
        assert_eq!(n.matches('\n').count(), 1, "{n}");
        let j = junit(std::slice::from_ref(&r));
        assert_no_raw_controls(&j);
        assert!(!j.contains("\u{fffd}"), "escaped before XML sees it: {j}");
        // Well-formed enough for any parser: every '&' starts one of the five entities.
        for (i, _) in j.match_indices('&') {
            let rest = &j[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "{rest}"
            );
        }
        let v: serde_json::Value = serde_json::from_str(&json(&[r])).unwrap();
        assert_eq!(v["results"][0]["warnings"][0], HOSTILE);
    }
}
