//! The doctor's outputs: a checklist for people (a mark per item, the fix under each item that
//! did not pass), JSON (`{"checks": [...], "summary": {...}}`) and a Nagios plugin line. Text in
//! checks was escaped when they were built (`Check::new`).
use std::fmt::Write as _;

use serde::Serialize;

use super::{Check, Status, Summary};

/// The checklist, grouped by scenario in the order checked.
pub fn human(checks: &[Check]) -> String {
    let mut out = String::new();
    let item_w = checks
        .iter()
        .map(|c| c.item.as_str().len())
        .max()
        .unwrap_or(0);
    let target_w = checks
        .iter()
        .map(|c| c.target.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    let mut current: Option<&str> = None;
    for c in checks {
        if current != Some(c.scenario.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", c.scenario);
            current = Some(&c.scenario);
        }
        let ms = c.ms.map(|m| format!(" ({m} ms)")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {:<item_w$}  {:<target_w$}  {}{ms}",
            c.status.mark(),
            c.item.as_str(),
            c.target,
            c.detail,
        );
        if let Some(h) = c.hint.as_deref().filter(|_| c.status != Status::Pass) {
            let _ = writeln!(out, "         fix: {h}");
        }
    }
    let s = Summary::of(checks);
    if !checks.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "doctor: {} pass, {} warn, {} fail, {} unknown ({})",
        s.pass, s.warn, s.fail, s.unknown, s.state
    );
    out
}

#[derive(Serialize)]
struct Json<'a> {
    checks: &'a [Check],
    summary: Summary,
}

pub fn json(checks: &[Check]) -> String {
    let doc = Json {
        checks,
        summary: Summary::of(checks),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| {
        format!(
            "{{\"error\": {}}}",
            serde_json::Value::String(e.to_string())
        )
    });
    s.push('\n');
    s
}

/// `DOCTOR CRITICAL - 2 fail: scenario item target (detail); ... | pass=..;...`: the items that
/// did not pass, worst first, and counts as performance data.
pub fn nagios(checks: &[Check]) -> String {
    let s = Summary::of(checks);
    let mut bad: Vec<&Check> = checks.iter().filter(|c| c.status != Status::Pass).collect();
    bad.sort_by_key(|c| std::cmp::Reverse(rank(c.status)));
    let text = if bad.is_empty() {
        format!("{} items pass", s.total)
    } else {
        let items = bad
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {} ({})",
                    c.scenario,
                    c.item.as_str(),
                    c.target,
                    c.status.as_str(),
                    c.detail.replace('|', "/")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{} fail, {} warn, {} unknown: {items}",
            s.fail, s.warn, s.unknown
        )
    };
    format!(
        "DOCTOR {} - {text} | pass={};;;0;{} warn={} fail={} unknown={}\n",
        s.state, s.pass, s.total, s.warn, s.fail, s.unknown
    )
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Pass => 0,
        Status::Unknown => 1,
        Status::Warn => 2,
        Status::Fail => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{Item, Judgement};

    fn checks() -> Vec<Check> {
        vec![
            Check::new(
                "lab-inbound",
                Item::DnsMx,
                "corp.test",
                Judgement::pass("MX 10 mx.corp.test"),
                Some(3),
            ),
            Check::new(
                "lab-inbound",
                Item::Tls,
                "mx.corp.test:25",
                Judgement::with(
                    Status::Fail,
                    "certificate expired 3 days ago | x",
                    "Renew it.",
                ),
                Some(12),
            ),
            Check::new(
                "lab-outbound",
                Item::Relay,
                "dell -> provider",
                Judgement::with(Status::Unknown, "could not judge", "Run a probe."),
                None,
            ),
        ]
    }

    #[test]
    fn checklist_marks_each_item_and_names_the_fix_of_those_that_did_not_pass() {
        let h = human(&checks());
        assert!(
            h.starts_with("lab-inbound\n  [ ok ] dns-mx  corp.test"),
            "{h}"
        );
        assert!(
            h.contains("[FAIL] tls     mx.corp.test:25   certificate expired"),
            "{h}"
        );
        assert!(h.contains("\n         fix: Renew it.\n"), "{h}");
        assert!(h.contains("\nlab-outbound\n  [ ?? ] relay"), "{h}");
        assert!(
            h.ends_with("doctor: 1 pass, 0 warn, 1 fail, 1 unknown (CRITICAL)\n"),
            "{h}"
        );
    }

    #[test]
    fn json_has_checks_and_summary() {
        let v: serde_json::Value = serde_json::from_str(&json(&checks())).unwrap();
        let c = &v["checks"][1];
        assert_eq!(c["scenario"], "lab-inbound");
        assert_eq!(c["item"], "tls");
        assert_eq!(c["status"], "fail");
        assert_eq!(c["hint"], "Renew it.");
        assert_eq!(c["ms"], 12);
        assert!(v["checks"][0]["hint"].is_null());
        assert_eq!(v["summary"]["fail"], 1);
        assert_eq!(v["summary"]["state"], "CRITICAL");
    }

    #[test]
    fn nagios_lists_the_worst_first_and_keeps_the_pipe_for_perfdata() {
        let n = nagios(&checks());
        assert!(
            n.starts_with("DOCTOR CRITICAL - 1 fail, 0 warn, 1 unknown: lab-inbound tls"),
            "{n}"
        );
        assert_eq!(n.matches('|').count(), 1, "{n}");
        assert!(
            n.ends_with("| pass=1;;;0;3 warn=0 fail=1 unknown=1\n"),
            "{n}"
        );
        let ok = nagios(&checks()[..1]);
        assert_eq!(
            ok,
            "DOCTOR OK - 1 items pass | pass=1;;;0;1 warn=0 fail=0 unknown=0\n"
        );
    }
}
