//! Draft incident records in the operator's own template (runbook.md): file name
//! `<COMPONENT>_<ISSUE_TYPE>_<DATE>.md`, sections title / date / impact / severity / summary /
//! symptoms / root cause / resolution steps / prevention / related documents, filled from
//! findings for a person to complete. Pure: renders text and names; writing files (without
//! overwriting) is the caller's job.

use chrono::{DateTime, NaiveDate, Utc};

use crate::diagnosis::{Finding, FindingCode};

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

/// The operator's component name for a finding (file name prefix, title).
pub fn component(code: FindingCode, f: &Finding) -> &'static str {
    match code {
        FindingCode::RelayAccessDenied
        | FindingCode::LookupFailure
        | FindingCode::RejectedOther
        | FindingCode::DeferredOther
        | FindingCode::BouncedOther
        | FindingCode::RateLimited
        | FindingCode::TlsError
        | FindingCode::UnexpectedPath => "POSTFIX",
        FindingCode::NextHopTimeout | FindingCode::NextHopUnreachable => "TAILSCALE",
        FindingCode::NextHopRefused => {
            if f.message.contains("lmtp") || f.message.contains("dovecot") {
                "DOVECOT"
            } else {
                "POSTFIX"
            }
        }
        FindingCode::RecipientUnknown
        | FindingCode::MailboxPermissionDenied
        | FindingCode::MailboxFull
        | FindingCode::AuthBackendError
        | FindingCode::ImapAuthFailed
        | FindingCode::SpamFolder => "DOVECOT",
        FindingCode::AuthFailed => {
            // The smtp client failing AUTH is the outbound relay (SendGrid).
            if f.message.contains("via smtp") || f.message.contains("; server ") {
                "SENDGRID"
            } else {
                "POSTFIX"
            }
        }
        FindingCode::DnsError => "DNS",
        FindingCode::ServiceError => {
            if f.message.contains("dovecot") {
                "DOVECOT"
            } else {
                "POSTFIX"
            }
        }
    }
}

/// The issue-type part of the file name.
pub fn issue_type(code: FindingCode) -> &'static str {
    match code {
        FindingCode::RelayAccessDenied => "RELAY_ACCESS_DENIED",
        FindingCode::LookupFailure => "TRANSPORT_LOOKUP_FAILURE",
        FindingCode::NextHopRefused => "CONNECTION_REFUSED",
        FindingCode::NextHopTimeout => "CONNECTION_TIMEOUT",
        FindingCode::NextHopUnreachable => "NETWORK_UNREACHABLE",
        FindingCode::RecipientUnknown => "UNKNOWN_RECIPIENT",
        FindingCode::MailboxPermissionDenied => "MAILSTORE_PERMISSIONS",
        FindingCode::MailboxFull => "MAILBOX_FULL",
        FindingCode::AuthFailed => "AUTH_FAILURE",
        FindingCode::AuthBackendError => "AUTH_FAILURE",
        FindingCode::TlsError => "TLS_FAILURE",
        FindingCode::DnsError => "RESOLUTION_FAILURE",
        FindingCode::RateLimited => "RATE_LIMITED",
        FindingCode::RejectedOther => "MAIL_REJECTED",
        FindingCode::DeferredOther => "DELIVERY_DEFERRED",
        FindingCode::BouncedOther => "DELIVERY_BOUNCED",
        FindingCode::SpamFolder => "SPAM_FOLDER",
        FindingCode::ImapAuthFailed => "LOGIN_FAILURE",
        FindingCode::UnexpectedPath => "UNEXPECTED_ROUTE",
        FindingCode::ServiceError => "SERVICE_ERROR",
    }
}

fn impact(code: FindingCode, component: &str) -> &'static str {
    match code {
        FindingCode::ImapAuthFailed => "Authentication (mail clients cannot log in)",
        FindingCode::AuthBackendError => {
            "Authentication (IMAP/POP3 logins and SMTP AUTH through Dovecot)"
        }
        FindingCode::AuthFailed if component == "SENDGRID" => {
            "Outbound mail (relay through SendGrid)"
        }
        FindingCode::AuthFailed => "Mail submission (SMTP AUTH)",
        FindingCode::SpamFolder => "Inbound mail lands in the spam folder",
        FindingCode::NextHopTimeout
        | FindingCode::NextHopUnreachable
        | FindingCode::NextHopRefused => {
            "Inbound mail (queued on the EC2 MX; nothing reaches the Dell host)"
        }
        _ => "Inbound mail",
    }
}

fn severity(code: FindingCode) -> &'static str {
    match code {
        FindingCode::NextHopTimeout
        | FindingCode::NextHopUnreachable
        | FindingCode::NextHopRefused
        | FindingCode::AuthBackendError
        | FindingCode::ServiceError
        | FindingCode::MailboxPermissionDenied => "Critical",
        FindingCode::RelayAccessDenied
        | FindingCode::LookupFailure
        | FindingCode::AuthFailed
        | FindingCode::ImapAuthFailed
        | FindingCode::TlsError
        | FindingCode::DnsError => "High",
        FindingCode::MailboxFull
        | FindingCode::RateLimited
        | FindingCode::RejectedOther
        | FindingCode::DeferredOther
        | FindingCode::BouncedOther
        | FindingCode::UnexpectedPath => "Medium",
        FindingCode::RecipientUnknown | FindingCode::SpamFolder => "Low",
    }
}

fn symptom(code: FindingCode) -> &'static str {
    match code {
        FindingCode::RelayAccessDenied => {
            "Mail for the domain is not received; sending works. Gmail and other senders get \
             \"554 5.7.1 Relay access denied\" rejections from the EC2 MX."
        }
        FindingCode::LookupFailure => {
            "Senders get \"451 4.3.0 Temporary lookup failure\"; mail already queued on the MX \
             is deferred with \"address resolver failure\"."
        }
        FindingCode::NextHopRefused => {
            "Inbound mail waits in the EC2 queue (mailq) with \"Connection refused\"."
        }
        FindingCode::NextHopTimeout => {
            "Inbound mail waits in the EC2 queue (mailq) with \"Connection timed out\"."
        }
        FindingCode::NextHopUnreachable => {
            "Inbound mail waits in the EC2 queue (mailq) with \"Network is unreachable\" / \
             \"No route to host\"."
        }
        FindingCode::RecipientUnknown => {
            "Mail to the address bounces with \"550 5.1.1 User doesn't exist\"; the sender \
             receives a non-delivery report."
        }
        FindingCode::MailboxPermissionDenied => {
            "Mail is deferred at LMTP delivery (\"Internal error occurred\") and Dovecot logs \
             \"Permission denied\" on the mail store; clients may fail to open mailboxes."
        }
        FindingCode::MailboxFull => "Mail to the user is deferred or bounced: quota exceeded.",
        FindingCode::AuthFailed => "SMTP AUTH fails (535): mail is not submitted or relayed.",
        FindingCode::AuthBackendError => {
            "Users cannot log in (clients report the password does not match); Dovecot's \
             auth-worker cannot query the user database."
        }
        FindingCode::TlsError => "TLS handshakes fail between the mail hosts or with clients.",
        FindingCode::DnsError => "Delivery fails with \"Host or domain name not found\".",
        FindingCode::RateLimited => "The receiving server throttles or refuses connections.",
        FindingCode::RejectedOther => "The server rejects the message (see the reply below).",
        FindingCode::DeferredOther => "Mail stays in the queue (deferred; see the reason below).",
        FindingCode::BouncedOther => "Mail bounces back to the sender (see the DSN below).",
        FindingCode::SpamFolder => "Mail arrives but is filed into the Junk/Spam folder.",
        FindingCode::ImapAuthFailed => {
            "Thunderbird/Outlook report that the password does not match; IMAP/POP3 logins fail."
        }
        FindingCode::UnexpectedPath => "Mail takes an unexpected route (loop or wrong relay).",
        FindingCode::ServiceError => "A mail daemon stops or refuses to start (fatal error).",
    }
}

fn root_cause(code: FindingCode) -> &'static str {
    match code {
        FindingCode::RelayAccessDenied => {
            "The domain is missing from relay_domains on the EC2 MX (and probably from \
             transport_maps), so the MX refuses to relay mail for it."
        }
        FindingCode::LookupFailure => {
            "A lookup table Postfix needs is unavailable, usually because transport.db was \
             never built with postmap after the transport file was edited."
        }
        FindingCode::NextHopRefused => {
            "The next hop is reachable but nothing accepts on its port: Dell's Postfix (2525) \
             or Dovecot's LMTP listener is down."
        }
        FindingCode::NextHopTimeout => {
            "Packets to the next hop get no answer: the Tailscale link or the Dell host is down."
        }
        FindingCode::NextHopUnreachable => {
            "There is no route to the next hop: the Tailscale interface is down on one end."
        }
        FindingCode::RecipientUnknown => "The mailbox does not exist in Dovecot's user database.",
        FindingCode::MailboxPermissionDenied => {
            "The mail store is not owned by uid/gid 5000 (e.g. 1000 after a copy or restore), \
             so Dovecot cannot write to it."
        }
        FindingCode::MailboxFull => "The user's quota is exhausted.",
        FindingCode::AuthFailed => {
            "Wrong SASL credentials (for outbound: the SendGrid account in \
             smtp_sasl_password_maps)."
        }
        FindingCode::AuthBackendError => {
            "Dovecot's SQL auth configuration has the wrong database credentials (the two \
             database passwords confused) or MariaDB is unreachable."
        }
        FindingCode::TlsError => "Certificate or TLS settings mismatch between the two ends.",
        FindingCode::DnsError => "The destination's DNS records or the local resolver fail.",
        FindingCode::RateLimited => "The receiver's rate limits were exceeded.",
        FindingCode::RejectedOther => "A restriction on the receiving server (see the reply).",
        FindingCode::DeferredOther => "A temporary failure (see the reason).",
        FindingCode::BouncedOther => "A permanent failure (see the DSN).",
        FindingCode::SpamFolder => {
            "The spam filter or a sieve rule classified the message as spam."
        }
        FindingCode::ImapAuthFailed => {
            "A wrong password or a missing/disabled user row; if every user fails, Dovecot's SQL \
             auth config or the mail store's uid/gid."
        }
        FindingCode::UnexpectedPath => {
            "A routing table (transport_maps, relay_domains, mydestination) sends mail elsewhere."
        }
        FindingCode::ServiceError => "A configuration error stops the daemon (see the fatal line).",
    }
}

fn prevention(code: FindingCode) -> &'static str {
    match code {
        FindingCode::RelayAccessDenied | FindingCode::LookupFailure => {
            "Add a new domain in one change: relay_domains, the transport_maps line, postmap, \
             postfix reload; then run a flowtest probe to the new domain before switching its MX."
        }
        FindingCode::NextHopRefused
        | FindingCode::NextHopTimeout
        | FindingCode::NextHopUnreachable => {
            "Monitor the EC2 -> Tailscale -> Dell path with a flowtest canary and alert on the \
             EC2 queue size; keep Tailscale and the Dell containers set to restart automatically."
        }
        FindingCode::MailboxPermissionDenied => {
            "Keep the mail store owned by 5000:5000 in backups/restores and in the compose file; \
             add a startup check of the ownership."
        }
        FindingCode::AuthBackendError | FindingCode::ImapAuthFailed => {
            "Keep the database credentials in one place; after changing them test a login \
             (doveadm auth test <user>) and run a flowtest IMAP probe."
        }
        _ => "Run flowtest probes after configuration changes and alert on their findings.",
    }
}

fn related(code: FindingCode) -> &'static str {
    match code {
        FindingCode::RelayAccessDenied | FindingCode::LookupFailure => {
            "Troubleshooting guide: \"Mail for one domain not received\"; \"Gmail-specific receive issue\""
        }
        FindingCode::NextHopRefused
        | FindingCode::NextHopTimeout
        | FindingCode::NextHopUnreachable => {
            "Troubleshooting guide: \"Inbound mail failure\" (EC2 MX -> Tailscale -> Dell LMTP); \
             \"Emergency: all inbound stopped\""
        }
        FindingCode::AuthBackendError | FindingCode::ImapAuthFailed => {
            "Troubleshooting guide: \"Mail client cannot log in\"; \"Dovecot authentication errors\""
        }
        FindingCode::AuthFailed => "Troubleshooting guide: \"SMTP send failure\"",
        FindingCode::MailboxPermissionDenied => {
            "Troubleshooting guide: \"Mail client cannot log in\" (mail store uid/gid)"
        }
        _ => "Troubleshooting guide: \"Inbound mail failure\"",
    }
}

/// Title case of an issue type: `RELAY_ACCESS_DENIED` -> `Relay Access Denied`.
fn title_case(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
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

/// Render one incident group. `date` is the incident's date (the first evidence's day, so the
/// draft does not depend on when it was written); `source` says which command wrote it.
pub fn render(g: &IncidentGroup, date: NaiveDate, source: &str) -> IncidentDraft {
    let comp = component(g.code, &g.example);
    let issue = issue_type(g.code);
    let stem = format!("{comp}_{issue}_{}", date.format("%Y-%m-%d"));
    let comp_title = match comp {
        "SENDGRID" => "SendGrid".to_owned(),
        "DNS" => "DNS".to_owned(),
        c => title_case(c),
    };
    let mut b = String::new();
    b.push_str(&format!("# [{comp_title}] [{}]\n\n", title_case(issue)));
    b.push_str(&format!("**Date:** {}\n", date.format("%Y-%m-%d")));
    b.push_str(&format!("**Impact:** {}\n", impact(g.code, comp)));
    b.push_str(&format!(
        "**Severity:** {} (draft: confirm)\n\n",
        severity(g.code)
    ));
    b.push_str("## Summary\n\n");
    b.push_str(&format!(
        "DRAFT written by `{source}` from the servers' own logs: complete and correct it.\n\n{}: {}",
        g.code.title(),
        g.example.message
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
    b.push_str(&format!("- {}\n", symptom(g.code)));
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
        root_cause(g.code)
    ));
    b.push_str("## Resolution Steps\n\n");
    b.push_str(&format!("1. {}\n", g.code.hint()));
    b.push_str("2. Verify: re-run the flowtest probe (`flowtest run <scenario>`) or `flowtest diagnose` on fresh logs and check that the finding is gone.\n");
    b.push_str("3. Record here what was actually done.\n\n");
    b.push_str("## Prevention\n\n");
    b.push_str(&format!("- {}\n\n", prevention(g.code)));
    b.push_str("## Related Documents\n\n");
    b.push_str(&format!("- {}\n", related(g.code)));
    IncidentDraft { stem, body: b }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn relay_draft_has_template_sections_and_name() {
        let mut f = Finding::new(
            FindingCode::RelayAccessDenied,
            Some("ec2"),
            "ec2 rejected RCPT from <a@provider.test> to <bob@newdomain.test>: 554 5.7.1 Relay access denied",
        );
        f.evidence
            .push("Nov  4 18:12:34 mx postfix/smtpd[1]: NOQUEUE: reject: ...".into());
        f.seen(Some(Utc.with_ymd_and_hms(2025, 11, 4, 18, 12, 34).unwrap()));
        let g = IncidentGroup::new(&f);
        let d = render(
            &g,
            NaiveDate::from_ymd_opt(2025, 11, 4).unwrap(),
            "flowtest diagnose",
        );
        assert_eq!(d.stem, "POSTFIX_RELAY_ACCESS_DENIED_2025-11-04");
        for section in [
            "# [Postfix] [Relay Access Denied]",
            "**Date:** 2025-11-04",
            "**Impact:**",
            "**Severity:** High",
            "## Summary",
            "## Symptoms",
            "## Root Cause",
            "## Resolution Steps",
            "## Prevention",
            "## Related Documents",
            "relay_domains",
            "NOQUEUE: reject",
        ] {
            assert!(d.body.contains(section), "missing {section}:\n{}", d.body);
        }
        assert_eq!(
            candidate_file_name(&d.stem, 0),
            "POSTFIX_RELAY_ACCESS_DENIED_2025-11-04.md"
        );
        assert_eq!(
            candidate_file_name(&d.stem, 1),
            "POSTFIX_RELAY_ACCESS_DENIED_2025-11-04_2.md"
        );
    }

    #[test]
    fn components() {
        let f = Finding::new(FindingCode::AuthBackendError, Some("dell"), "x");
        assert_eq!(
            render(
                &IncidentGroup::new(&f),
                NaiveDate::from_ymd_opt(2025, 11, 6).unwrap(),
                "t"
            )
            .stem,
            "DOVECOT_AUTH_FAILURE_2025-11-06"
        );
        let f = Finding::new(FindingCode::NextHopTimeout, Some("ec2"), "x");
        assert_eq!(component(f.code, &f), "TAILSCALE");
    }
}
