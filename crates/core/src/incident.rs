//! Draft incident records in the operator's own template: file name
//! `<COMPONENT>_<ISSUE_TYPE>_<DATE>.md`, sections title / date / impact / severity / summary /
//! symptoms / root cause / resolution steps / prevention / related documents, filled from
//! findings for a person to complete. The template is fixed here; what goes into it (component,
//! issue type, impact, severity and the texts) comes from the runbook (`core::runbook`), chosen
//! by the finding's code and host role. Pure: renders text and names; writing files (without
//! overwriting) is the caller's job.

use chrono::{DateTime, NaiveDate, Utc};

use crate::diagnosis::{Finding, FindingCode};
use crate::runbook::{title_case, Facts, Runbook, Subject};

/// One incident: every occurrence of one cause (code) on one host, folded together.
#[derive(Debug, Clone)]
pub struct IncidentGroup {
    pub code: FindingCode,
    pub host: Option<String>,
    /// The first finding seen (its message and evidence stand for the group).
    pub example: Finding,
    pub occurrences: u64,
    /// Affected messages (bounded by the caller).
    pub message_ids: Vec<String>,
    pub messages_total: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

impl IncidentGroup {
    pub fn new(f: &Finding) -> Self {
        let mut g = IncidentGroup {
            code: f.code,
            host: f.host.clone(),
            example: f.clone(),
            occurrences: 0,
            message_ids: Vec::new(),
            messages_total: 0,
            first_seen: None,
            last_seen: None,
        };
        g.add(f, 20);
        g
    }

    /// Fold another finding of the same code and host in (keeping at most `max_ids` ids).
    pub fn add(&mut self, f: &Finding, max_ids: usize) {
        self.occurrences += f.count.max(1);
        if let Some(id) = &f.message_id {
            self.messages_total += 1;
            if self.message_ids.len() < max_ids && !self.message_ids.contains(id) {
                self.message_ids.push(id.clone());
            }
        }
        for t in [f.first_seen, f.last_seen].into_iter().flatten() {
            self.first_seen = Some(self.first_seen.map_or(t, |x| x.min(t)));
            self.last_seen = Some(self.last_seen.map_or(t, |x| x.max(t)));
        }
    }
}

/// A rendered draft: the file name without suffix and the Markdown body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentDraft {
    /// `<COMPONENT>_<ISSUE_TYPE>_<DATE>` (add `.md`, or `_2.md`... when taken).
    pub stem: String,
    pub body: String,
}

/// The file name for the n-th candidate (n = 0: `STEM.md`, then `STEM_2.md`, `STEM_3.md`...).
pub fn candidate_file_name(stem: &str, n: u32) -> String {
    if n == 0 {
        format!("{stem}.md")
    } else {
        format!("{stem}_{}.md", n + 1)
    }
}

/// Render one incident group with `runbook`'s texts. `date` is the incident's date (the first
/// evidence's day, so the draft does not depend on when it was written); `source` says which
/// command wrote it; `facts` fills the placeholders the finding cannot.
pub fn render(
    runbook: &Runbook,
    g: &IncidentGroup,
    date: NaiveDate,
    source: &str,
    facts: &Facts,
) -> IncidentDraft {
    let t = runbook.incident(Subject::of(&g.example), facts);
    let stem = format!(
        "{}_{}_{}",
        t.component,
        t.issue_type,
        date.format("%Y-%m-%d")
    );
    let mut b = String::new();
    b.push_str(&format!(
        "# [{}] [{}]\n\n",
        t.component_title,
        title_case(&t.issue_type)
    ));
    b.push_str(&format!("**Date:** {}\n", date.format("%Y-%m-%d")));
    b.push_str(&format!("**Impact:** {}\n", t.impact));
    b.push_str(&format!(
        "**Severity:** {} (draft: confirm)\n\n",
        t.severity.as_str()
    ));
    b.push_str("## Summary\n\n");
    b.push_str(&format!(
        "DRAFT written by `{source}` from the servers' own logs: complete and correct it.\n\n{}: {}",
        g.code.title(),
        crate::text::escape_control(&g.example.message)
    ));
    if let Some(h) = &g.host {
        b.push_str(&format!(" (host: {h})"));
    }
    b.push('.');
    match (g.first_seen, g.last_seen) {
        (Some(a), Some(z)) if a != z => b.push_str(&format!(
            " Seen {} times between {} and {} UTC.",
            g.occurrences,
            a.format("%Y-%m-%d %H:%M:%S"),
            z.format("%Y-%m-%d %H:%M:%S")
        )),
        (Some(a), _) => b.push_str(&format!(
            " Seen {} time(s) at {} UTC.",
            g.occurrences,
            a.format("%Y-%m-%d %H:%M:%S")
        )),
        _ => {}
    }
    b.push_str("\n\n## Symptoms\n\n");
    b.push_str(&format!("- {}\n", t.symptoms));
    if g.messages_total > 0 {
        b.push_str(&format!(
            "- Affected messages ({}): {}{}\n",
            g.messages_total,
            g.message_ids.join(", "),
            if (g.message_ids.len() as u64) < g.messages_total {
                ", ..."
            } else {
                ""
            }
        ));
    }
    b.push_str("- Evidence (server log lines):\n\n```\n");
    for e in &g.example.evidence {
        b.push_str(e);
        b.push('\n');
    }
    b.push_str("```\n\n## Root Cause\n\n");
    b.push_str(&format!(
        "Likely (flowtest finding `{}`): {}\n\nTo be confirmed by the person completing this record.\n\n",
        g.code.as_str(),
        t.root_cause
    ));
    b.push_str("## Resolution Steps\n\n");
    b.push_str(&format!("1. {}\n", t.hint));
    b.push_str("2. Verify: re-run the flowtest probe (`flowtest run <scenario>`) or `flowtest diagnose` on fresh logs and check that the finding is gone.\n");
    b.push_str("3. Record here what was actually done.\n\n");
    b.push_str("## Prevention\n\n");
    b.push_str(&format!("- {}\n\n", t.prevention));
    b.push_str("## Related Documents\n\n");
    b.push_str(&format!("- {}\n", t.related));
    // Messages, evidence and host names come from servers' logs: no control character of theirs
    // reaches the draft (its own line breaks stay).
    let body = crate::text::escape_control_lines(&b).into_owned();
    IncidentDraft { stem, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SITE: &str = r#"
[roles.gw]
name = "the gateway"
next_hop = "store"

[components]
MTA = "MTA"

[finding.relay_access_denied]
hint = "Add {domain} to relay_domains on {role}, postmap the transport map, then postfix reload."
component = "MTA"
issue_type = "RELAY_ACCESS_DENIED"
impact = "Inbound mail for {domain}"
severity = "high"
symptoms = "Senders get \"Relay access denied\" from {role}."
root_cause = "The domain is missing from relay_domains on {role}."
prevention = "Add domains in one change."
related = "Guide: \"Mail for one domain not received\""

[finding.auth_backend_error]
component = "IMAP"
issue_type = "AUTH_FAILURE"

[finding.next_hop_timeout]
component = "MTA"

[finding.next_hop_timeout.role.gw]
component = "VPN"
"#;

    fn runbook() -> Runbook {
        Runbook::parse(SITE).unwrap()
    }

    #[test]
    fn relay_draft_has_template_sections_and_name() {
        let mut f = Finding::new(
            FindingCode::RelayAccessDenied,
            Some("gw"),
            "gw rejected RCPT from <a@provider.test> to <bob@newdomain.test>: 554 5.7.1 Relay access denied",
        );
        f.evidence
            .push("Nov  4 18:12:34 mx postfix/smtpd[1]: NOQUEUE: reject: ...".into());
        f.seen(Some(Utc.with_ymd_and_hms(2025, 11, 4, 18, 12, 34).unwrap()));
        let g = IncidentGroup::new(&f);
        let facts = Facts {
            recipient: Some("bob@newdomain.test".into()),
        };
        let d = render(
            &runbook(),
            &g,
            NaiveDate::from_ymd_opt(2025, 11, 4).unwrap(),
            "flowtest diagnose",
            &facts,
        );
        assert_eq!(d.stem, "MTA_RELAY_ACCESS_DENIED_2025-11-04");
        for section in [
            "# [MTA] [Relay Access Denied]",
            "**Date:** 2025-11-04",
            "**Impact:** Inbound mail for newdomain.test\n",
            "**Severity:** High",
            "## Summary",
            "## Symptoms",
            "- Senders get \"Relay access denied\" from the gateway.",
            "## Root Cause",
            "missing from relay_domains on the gateway.",
            "## Resolution Steps",
            "1. Add newdomain.test to relay_domains on the gateway,",
            "## Prevention",
            "## Related Documents",
            "- Guide: \"Mail for one domain not received\"",
            "NOQUEUE: reject",
        ] {
            assert!(d.body.contains(section), "missing {section}:\n{}", d.body);
        }
        assert_eq!(
            candidate_file_name(&d.stem, 0),
            "MTA_RELAY_ACCESS_DENIED_2025-11-04.md"
        );
        assert_eq!(
            candidate_file_name(&d.stem, 1),
            "MTA_RELAY_ACCESS_DENIED_2025-11-04_2.md"
        );
    }

    #[test]
    fn component_comes_from_the_code_and_the_role() {
        let date = NaiveDate::from_ymd_opt(2025, 11, 6).unwrap();
        let stem = |code, role| {
            let f = Finding::new(code, role, "connect to x: Connection timed out via lmtp");
            render(
                &runbook(),
                &IncidentGroup::new(&f),
                date,
                "t",
                &Facts::default(),
            )
            .stem
        };
        assert_eq!(
            stem(FindingCode::AuthBackendError, Some("store")),
            "IMAP_AUTH_FAILURE_2025-11-06"
        );
        assert_eq!(
            stem(FindingCode::NextHopTimeout, Some("gw")),
            "VPN_NEXT_HOP_TIMEOUT_2025-11-06"
        );
        // The message text does not choose the component; the role does.
        assert_eq!(
            stem(FindingCode::NextHopTimeout, Some("store")),
            "MTA_NEXT_HOP_TIMEOUT_2025-11-06"
        );
        // Not in the runbook: a neutral component and the code as the issue type.
        assert_eq!(
            stem(FindingCode::DnsError, None),
            "MAIL_DNS_ERROR_2025-11-06"
        );
    }
}
