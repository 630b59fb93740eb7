//! Behaviour tests of fusion as a whole: correlating log lines into chains, clock skew between
//! hosts, and fusing a probe's timeline (module-level tests live beside their modules).

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::diagnosis::FindingCode;
use crate::logs::{parse_line, ParseContext};

pub(super) fn feed(corr: &mut Correlator, role: &str, text: &str) {
    let ctx = ParseContext::new(role, 2025);
    for l in text.lines() {
        if let Some(r) = parse_line(l.as_bytes(), &ctx) {
            corr.push(r);
        }
    }
}

/// Two correlators fed the same two logs (role, text), one in each order: logs of different
/// hosts arrive in either order.
fn in_both_orders(a: (&str, &str), b: (&str, &str)) -> [Correlator; 2] {
    [[a, b], [b, a]].map(|logs| {
        let mut c = Correlator::new(Limits::default());
        for (role, text) in logs {
            feed(&mut c, role, text);
        }
        c
    })
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) const EC2: &str = "\
Nov  7 12:00:05 mx postfix/smtpd[1]: 1A1A1A1A1A: client=smtp.provider.test[198.18.2.2]
Nov  7 12:00:05 mx postfix/cleanup[2]: 1A1A1A1A1A: message-id=<p1@flowtest>
Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: from=<probe@provider.test>, size=1200, nrcpt=1 (queue active)
Nov  7 12:00:05 mx postfix/smtp[4]: 1A1A1A1A1A: to=<bob@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.1, delays=0.01/0/0.04/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2B2B2B2B2B)
Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: removed";
// Dell's clock runs 7 s ahead.
pub(super) const DELL: &str = "\
Nov  7 12:00:12 dell postfix/smtpd[1]: 2B2B2B2B2B: client=unknown[100.64.0.1]
Nov  7 12:00:12 dell postfix/cleanup[2]: 2B2B2B2B2B: message-id=<p1@flowtest>
Nov  7 12:00:12 dell postfix/qmgr[3]: 2B2B2B2B2B: from=<probe@provider.test>, size=1400, nrcpt=1 (queue active)
Nov  7 12:00:12 dell postfix/lmtp[4]: 2B2B2B2B2B: to=<bob@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.03, delays=0.01/0/0.01/0.01, dsn=2.0.0, status=sent (250 2.0.0 <bob@corp.test> c2tldzFza2V3MXNrZXcxcw Saved)
Nov  7 12:00:12 dell postfix/qmgr[3]: 2B2B2B2B2B: removed";

#[test]
fn links_hosts_in_either_order() {
    for c in in_both_orders(("ec2", EC2), ("dell", DELL)) {
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let hosts: Vec<&str> = ms[0].hops.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(hosts, ["ec2", "dell"]);
        assert_eq!(ms[0].status, MessageStatus::Delivered);
        assert!(ms[0].complete);
    }
}

#[test]
fn skewed_host_is_bounded_by_client_clock() {
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", EC2);
    feed(&mut c, "dell", DELL);
    let skew = c.skew();
    assert_eq!(skew.len(), 1);
    assert!(
        skew[0].significant && skew[0].min_ms >= 6000 && skew[0].max_ms <= 8200,
        "{skew:?}"
    );
    let ms = c.finish();
    let ctx = ProbeContext {
        message_id: "p1@flowtest".into(),
        mail_from: "probe@provider.test".into(),
        rcpt_to: vec!["bob@corp.test".into()],
        submitted_at: at("2025-11-07T12:00:04.900Z"),
        accepted_at: Some(at("2025-11-07T12:00:05.050Z")),
        detected_at: Some(at("2025-11-07T12:00:05.900Z")),
        ..ProbeContext::default()
    };
    let t = fuse_probe(&ctx, &ms, &[]);
    assert_eq!(t.status, MessageStatus::Delivered);
    assert_eq!(t.last_host.as_deref(), Some("dell"));
    let dell = t.skew.iter().find(|s| s.host == "dell").unwrap();
    assert!(
        dell.significant && (6000..=7000).contains(&dell.estimate_ms),
        "{dell:?}"
    );
    let ec2 = t.skew.iter().find(|s| s.host == "ec2").unwrap();
    assert!(!ec2.significant, "{ec2:?}");
    let e2e = 1000;
    for s in &t.stages {
        assert!(s.ms <= e2e, "impossible stage {s:?}");
    }
    let stage = |n: &str| t.stages.iter().find(|s| s.name == n).unwrap().ms;
    assert_eq!(stage("submit"), 150);
    // Hand-offs belong to the receiving host: ec2 = its own a+b (10 ms) less the 150 ms
    // submission the client already counts (so 0); dell = max(ec2's c+d 90 ms, its own
    // reception a 10 ms) + its b; dell's own hand-off to an unlogged LMTP server stands alone.
    assert_eq!(stage("ec2"), 0);
    assert_eq!(stage("dell"), 90);
    assert_eq!(stage("dell -> next hop"), 20);
    assert_eq!(stage("end_to_end"), 1000);
    assert!(t
        .notes
        .iter()
        .any(|n| n.contains("clock skew") && n.contains("dell")));
}

#[test]
fn a_rejection_joins_only_the_delivery_that_quotes_it() {
    // Regression (CI, run_faults): ec2 rejected one message at RCPT; seconds later dell's
    // LMTP delivery of ANOTHER message (same sender and recipient) failed for an unrelated
    // reason. They must not be merged: the delivery does not quote the rejection's reply.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  5 09:02:00 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <alice@corp.test>: Relay access denied; from=<sender@provider.test> to=<alice@corp.test> proto=ESMTP helo=<client>",
    );
    feed(
        &mut c,
        "dell",
        "Nov  5 09:02:05 dell postfix/lmtp[9]: 4AAAAAAAAA: to=<alice@corp.test>, relay=dell.corp.test[/run/lmtp], delay=0.1, delays=0.05/0/0.05/0, dsn=4.4.2, status=deferred (lost connection with dell.corp.test[/run/lmtp] while receiving the initial server greeting)",
    );
    let ms = c.finish();
    let rejected: Vec<_> = ms
        .iter()
        .filter(|m| m.status == MessageStatus::Rejected)
        .collect();
    assert_eq!(rejected.len(), 1, "{ms:#?}");
    assert!(rejected[0].hops.iter().all(|h| h.host == "ec2"), "{ms:#?}");
}

#[test]
fn noqueue_reject_matches_probe_by_sender_recipient_time() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  5 09:02:00 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <info@newdomain.test>: Relay access denied; from=<probe@provider.test> to=<info@newdomain.test> proto=ESMTP helo=<flowtest>\n\
         Nov  5 09:02:30 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <info@newdomain.test>: Relay access denied; from=<other@provider.test> to=<info@newdomain.test> proto=ESMTP helo=<flowtest>",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 2);
    let ctx = ProbeContext {
        message_id: "<nope@flowtest>".into(),
        mail_from: "PROBE@provider.test".into(),
        rcpt_to: vec!["info@newdomain.test".into()],
        submitted_at: at("2025-11-05T09:01:59.950Z"),
        accepted_at: None,
        ..ProbeContext::default()
    };
    let t = fuse_probe(&ctx, &ms, &[]);
    assert_eq!(t.status, MessageStatus::Rejected);
    assert_eq!(t.findings.len(), 1);
    assert_eq!(t.findings[0].code, FindingCode::RelayAccessDenied);
    assert_eq!(t.findings[0].host.as_deref(), Some("ec2"));
    // Outside the window: nothing.
    let late = ProbeContext {
        submitted_at: at("2025-11-05T10:00:00Z"),
        ..ctx
    };
    let t = fuse_probe(&late, &ms, &[]);
    assert_eq!(t.status, MessageStatus::Unknown);
    assert!(t.notes.iter().any(|n| n.contains("no log line")));
    // Regression (CI, run_faults): an ACCEPTED probe with the same sender and recipient
    // must not take an earlier rejection for its own while its own lines are not logged yet.
    let accepted = ProbeContext {
        accepted_at: Some(late.submitted_at),
        submitted_at: ctx.submitted_at,
        ..late
    };
    let t = fuse_probe(&accepted, &ms, &[]);
    assert_eq!(t.status, MessageStatus::Unknown, "{t:?}");
    assert!(t.findings.is_empty());
}

#[test]
fn header_hops_fill_hosts_without_logs() {
    let ctx = ProbeContext {
        message_id: "x@y".into(),
        submitted_at: at("2025-11-07T12:00:00Z"),
        accepted_at: Some(at("2025-11-07T12:00:00.200Z")),
        detected_at: Some(at("2025-11-07T12:00:03Z")),
        ..ProbeContext::default()
    };
    let hops = [
        HeaderHop {
            by: Some("smtp.provider.test".into()),
            role: Some("provider".into()),
            timestamp: Some(at("2025-11-07T12:00:00Z")),
            stage: None,
        },
        HeaderHop {
            by: Some("mx.corp.test".into()),
            role: Some("ec2".into()),
            timestamp: Some(at("2025-11-07T12:00:01Z")),
            stage: None,
        },
        // A clock far ahead: the raw difference (1 h) is impossible and gets bounded.
        HeaderHop {
            by: Some("dell.corp.test".into()),
            role: Some("dell".into()),
            timestamp: Some(at("2025-11-07T13:00:01Z")),
            stage: None,
        },
    ];
    let t = fuse_probe(&ctx, &[], &hops);
    let ec2 = t.stages.iter().find(|s| s.name == "ec2 (header)").unwrap();
    assert_eq!(
        (ec2.ms, ec2.source, ec2.bounded),
        (1000, StageSource::Header, false)
    );
    let dell = t.stages.iter().find(|s| s.name == "dell (header)").unwrap();
    assert!(dell.bounded && dell.ms <= 3000, "{dell:?}");
}

#[test]
fn header_hops_without_a_role_are_named_by_their_stage_with_the_host_in_the_detail() {
    let ctx = ProbeContext {
        message_id: "x@y".into(),
        submitted_at: at("2025-11-04T18:12:38Z"),
        accepted_at: Some(at("2025-11-04T18:12:38.300Z")),
        detected_at: Some(at("2025-11-04T18:12:45Z")),
        ..ProbeContext::default()
    };
    let hop = |by: &str, stage: Option<&str>, t: &str| HeaderHop {
        by: Some(by.into()),
        role: None,
        timestamp: Some(at(t)),
        stage: stage.map(str::to_string),
    };
    let hops = [
        hop(
            "geopod-ismtpd-3",
            Some("sendgrid-api"),
            "2025-11-04T18:12:38Z",
        ),
        hop(
            "filterdrecv-7bd4646d8d-4qk7x",
            Some("sendgrid-filter"),
            "2025-11-04T18:12:39Z",
        ),
        hop("mx.corp.test", None, "2025-11-04T18:12:41Z"),
    ];
    let t = fuse_probe(&ctx, &[], &hops);
    let names: Vec<&str> = t.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "submit",
            "sendgrid-filter (header)",
            "mx.corp.test (header)",
            "end_to_end"
        ]
    );
    let filter = &t.stages[1];
    assert_eq!(filter.ms, 1000);
    assert_eq!(
        filter.detail.as_deref(),
        Some("by filterdrecv-7bd4646d8d-4qk7x: difference of whole-second Received timestamps (two clocks)")
    );
    assert_eq!(
        t.stages[2].detail.as_deref(),
        Some("difference of whole-second Received timestamps (two clocks)")
    );
}

#[test]
fn open_chains_stay_bounded() {
    let limits = Limits {
        max_open_chains: 100,
        ..Limits::default()
    };
    let mut c = Correlator::new(limits);
    let ctx = ParseContext::new("ec2", 2025);
    let mut emitted: Vec<MessageChain> = Vec::new();
    for i in 0..5_000u32 {
        // Messages that never finish (no "removed"): only the cap can bound them.
        let l = format!("Nov  7 12:00:05 mx postfix/cleanup[2]: {i:010X}: message-id=<m{i}@x>");
        c.push(parse_line(l.as_bytes(), &ctx).unwrap());
        assert!(c.open_chains() <= 101);
        emitted.extend(c.take_finished());
    }
    assert!(c.stats().chains_evicted > 0);
    let rest = c.finish();
    assert_eq!(emitted.len() + rest.len(), 5_000);
    assert!(emitted
        .iter()
        .all(|m| !m.complete && m.notes.iter().any(|n| n.contains("open-message limit"))));
    assert!(rest
        .iter()
        .chain(emitted.iter())
        .all(|m| m.status == MessageStatus::Queued));
}

#[test]
fn deferred_then_delivered_keeps_the_deferral_finding() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  6 07:30:00 mx postfix/cleanup[1]: 3A4B5C6D7E: message-id=<d@x>\n\
         Nov  6 07:30:00 mx postfix/smtp[2]: 3A4B5C6D7E: to=<alice@corp.test>, relay=none, delay=0.03, delays=0.02/0/0.01/0, dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: No route to host)\n\
         Nov  6 07:31:00 mx postfix/smtp[2]: 3A4B5C6D7E: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=60, delays=60/0/0.04/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 6F7E8D9C0B)\n\
         Nov  6 07:31:00 mx postfix/qmgr[3]: 3A4B5C6D7E: removed",
    );
    let ms = c.finish();
    assert_eq!(ms[0].status, MessageStatus::Delivered);
    assert_eq!(ms[0].findings.len(), 1);
    assert_eq!(ms[0].findings[0].code, FindingCode::NextHopUnreachable);
    assert_eq!(ms[0].hops[0].attempts, 2);
}

#[test]
fn dovecot_error_upgrades_generic_lmtp_deferral_and_times_are_utc() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "dell",
        "Nov  6 10:20:00 dell postfix/cleanup[4]: 7A8B9C0D1E: message-id=<q@x>\n\
         Nov  6 10:20:00 dell postfix/lmtp[5]: 7A8B9C0D1E: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.05, delays=0.01/0/0.01/0.03, dsn=4.2.0, status=deferred (host dell[private/dovecot-lmtp] said: 451 4.2.0 <alice@corp.test> Internal error occurred. Refer to server log for more information. (in reply to end of DATA command))",
    );
    feed(
        &mut c,
        "dovecot",
        "2025-11-06T10:20:00.043977 lmtp(alice@corp.test)<512><S1>: Error: Mailbox INBOX: open(/var/mail/alice) failed: Permission denied (euid=5000)",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1);
    let f = &ms[0].findings[0];
    assert_eq!(f.code, FindingCode::MailboxPermissionDenied);
    assert_eq!(f.host.as_deref(), Some("dovecot"));
    assert_eq!(f.evidence.len(), 2);
    assert_eq!(
        f.first_seen,
        Some(Utc.with_ymd_and_hms(2025, 11, 6, 10, 20, 0).unwrap())
    );
}

// One test per family of log events the tests above leave out: what each kind of line does to
// the chains and host findings, through `Correlator::push`.

pub(super) fn finding(m: &MessageChain, code: FindingCode) -> &crate::diagnosis::Finding {
    m.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code:?} finding in {m:#?}"))
}

/// Each hop's host and status, in order.
fn host_path(m: &MessageChain) -> Vec<(&str, HopStatus)> {
    m.hops.iter().map(|h| (h.host.as_str(), h.status)).collect()
}

/// The message whose first hop is queue id `qid`.
fn by_first_qid<'a>(ms: &'a [MessageChain], qid: &str) -> &'a MessageChain {
    ms.iter()
        .find(|m| m.hops[0].queue_id.as_deref() == Some(qid))
        .unwrap_or_else(|| panic!("no {qid} in {ms:#?}"))
}

#[test]
fn queue_lifecycle_lines_shape_the_hop() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  7 12:00:00 mx postfix/pickup[1]: 1C1C1C1C1C: uid=0 from=<root>\n\
         Nov  7 12:00:00 mx postfix/cleanup[2]: 1C1C1C1C1C: message-id=<e@x>\n\
         Nov  7 12:00:00 mx postfix/qmgr[3]: 1C1C1C1C1C: from=<root@mx.test>, size=300, nrcpt=1 (queue active)\n\
         Nov 12 12:00:00 mx postfix/qmgr[3]: 1C1C1C1C1C: from=<root@mx.test>, status=expired, returned to sender\n\
         Nov 12 12:00:00 mx postfix/bounce[4]: 1C1C1C1C1C: sender non-delivery notification: 2D2D2D2D2D\n\
         Nov 12 12:00:00 mx postfix/qmgr[3]: 1C1C1C1C1C: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    let m = &ms[0];
    assert_eq!(m.hops.len(), 1);
    let h = &m.hops[0];
    assert_eq!(h.status, HopStatus::Expired);
    assert_eq!(h.client.as_deref(), Some("local pickup"));
    assert_eq!(h.from.as_deref(), Some("root@mx.test"));
    assert_eq!(m.status, MessageStatus::Bounced);
    assert!(m.complete);
    assert_eq!(m.lines.len(), 6, "every line of the entry is kept");
}

#[test]
fn a_queue_entry_without_delivery_lines_is_queued_or_removed() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  7 12:00:00 mx postfix/cleanup[2]: 2A2A2A2A2A: message-id=<q@x>\n\
         Nov  7 12:00:00 mx postfix/smtpd[1]: 3B3B3B3B3B: client=unknown[198.18.1.1]\n\
         Nov  7 12:00:01 mx postfix/qmgr[3]: 3B3B3B3B3B: removed",
    );
    let ms = c.finish();
    let status_of = |qid: &str| {
        let m = ms
            .iter()
            .find(|m| m.hops[0].queue_id.as_deref() == Some(qid))
            .unwrap();
        (m.hops[0].status, m.status)
    };
    assert_eq!(
        status_of("2A2A2A2A2A"),
        (HopStatus::Queued, MessageStatus::Queued)
    );
    assert_eq!(
        status_of("3B3B3B3B3B"),
        (HopStatus::Removed, MessageStatus::Unknown)
    );
}

#[test]
fn an_attempt_detail_names_the_generic_failure_that_follows() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "dell",
        "Nov  7 13:00:00 dell postfix/cleanup[1304]: 6F6F6F6F6F: message-id=<o@corp.test>\n\
         Nov  7 13:00:00 dell postfix/smtp[1305]: 6F6F6F6F6F: SASL authentication failed; server 198.18.2.2[198.18.2.2] said: 535 5.7.8 Error: authentication failed\n\
         Nov  7 13:00:00 dell postfix/smtp[1305]: 6F6F6F6F6F: to=<someone@provider.test>, relay=198.18.2.2[198.18.2.2]:587, delay=0.2, delays=0.01/0/0.19/0, dsn=4.0.0, status=deferred (delivery temporarily suspended)",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0].status, MessageStatus::Deferred);
    let f = finding(&ms[0], FindingCode::AuthFailed);
    assert_eq!(f.host.as_deref(), Some("dell"));
    assert!(
        f.evidence.iter().any(|e| e.contains("said: 535")),
        "the detail line is evidence: {f:#?}"
    );
}

#[test]
fn a_postfix_warning_explains_a_later_failure_and_counts_for_the_host() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov 05 09:59:58 mx postfix/cleanup[3503]: 7E8F9A0B1C: message-id=<w@provider.test>\n\
         Nov 05 10:00:01 mx postfix/trivial-rewrite[3501]: warning: hash:/etc/postfix/transport is unavailable. open database /etc/postfix/transport.db: No such file or directory\n\
         Nov 05 10:00:02 mx postfix/error[3504]: 7E8F9A0B1C: to=<bob@corp.test>, relay=none, delay=4, delays=0.01/4/0/0, dsn=4.3.0, status=deferred (address resolver failure)",
    );
    let out = c.finish_all();
    assert_eq!(out.messages.len(), 1);
    let f = finding(&out.messages[0], FindingCode::LookupFailure);
    assert!(
        f.evidence.iter().any(|e| e.contains("transport.db")),
        "{f:#?}"
    );
    assert!(out
        .host_findings
        .iter()
        .any(|h| h.code == FindingCode::LookupFailure && h.host.as_deref() == Some("ec2")));
}

#[test]
fn host_level_lines_become_counted_host_findings() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "dell",
        "Nov  7 13:00:05 dell postfix/submission/smtpd[1306]: warning: unknown[198.18.3.1]: SASL PLAIN authentication failed: authentication failure\n\
         Nov  7 13:00:09 dell postfix/submission/smtpd[1306]: warning: unknown[198.18.3.1]: SASL LOGIN authentication failed: authentication failure",
    );
    feed(
        &mut c,
        "dovecot",
        "Nov 06 11:00:01 auth-worker(620): Error: sql(alice@corp.test,198.18.3.1,<Qk9Wc2Z6bGFiMQ>): Password query failed: Not connected to database\n\
         Nov 06 11:00:10 auth: passwd-file(bob@corp.test,198.18.3.1,<Zm9vYmFyYmF6MQ>): Password mismatch",
    );
    let out = c.finish_all();
    assert!(out.messages.is_empty(), "{:#?}", out.messages);
    let host = |code: FindingCode, host: &str| {
        out.host_findings
            .iter()
            .find(|f| f.code == code && f.host.as_deref() == Some(host))
            .unwrap_or_else(|| panic!("no {code:?} on {host}: {:#?}", out.host_findings))
    };
    let sasl = host(FindingCode::AuthFailed, "dell");
    assert_eq!((sasl.count, sasl.evidence.len()), (2, 2), "{sasl:#?}");
    host(FindingCode::AuthBackendError, "dovecot");
    host(FindingCode::ImapAuthFailed, "dovecot");
}

const LMTP_SPAM: &str = "\
Nov  6 12:00:00 dell postfix/cleanup[704]: 8B9C0D1E2F: message-id=<s@x>
Nov  6 12:00:00 dell postfix/lmtp[705]: 8B9C0D1E2F: to=<alice@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.06, delays=0.01/0/0.01/0.04, dsn=2.0.0, status=sent (250 2.0.0 <alice@corp.test> U3BhbVNwYW1TcGFtU3BhbQ Saved)
Nov  6 12:00:00 dell postfix/qmgr[690]: 8B9C0D1E2F: removed";
const DOVECOT_SPAM: &str = "\
2025-11-06T12:00:00.540911 lmtp(alice@corp.test)<712><U3BhbVNwYW1TcGFtU3BhbQ>: Info: sieve: msgid=<s@x>: stored mail into mailbox 'Junk'";

#[test]
fn dovecots_save_follows_the_lmtp_hand_off_in_either_order() {
    for c in in_both_orders(("dell", LMTP_SPAM), ("dovecot", DOVECOT_SPAM)) {
        let skew = c.skew();
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        let hops = host_path(m);
        assert_eq!(
            hops,
            [("dell", HopStatus::Sent), ("dovecot", HopStatus::Saved)]
        );
        assert_eq!(m.hops[1].mailbox.as_deref(), Some("Junk"));
        assert_eq!(m.status, MessageStatus::Delivered);
        assert_eq!(
            finding(m, FindingCode::SpamFolder).host.as_deref(),
            Some("dovecot")
        );
        assert_eq!(
            skew.iter()
                .map(|s| (s.host.as_str(), s.reference.as_str(), s.samples))
                .collect::<Vec<_>>(),
            [("dovecot", "dell", 1)],
            "the LMTP hand-off is sampled once"
        );
    }
}

#[test]
fn a_failed_save_takes_its_cause_from_dovecots_error_line() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "dovecot",
        "2025-11-06T10:20:00.043977 lmtp(alice@corp.test)<512><Pq1Rs2Tu3Vw4Xy5Za6Bc7D>: Error: Mailbox INBOX: open(/var/mail/alice/dovecot.index.log) failed: Permission denied (euid=5000)\n\
         2025-11-06T10:20:00.044310 lmtp(alice@corp.test)<512><Pq1Rs2Tu3Vw4Xy5Za6Bc7D>: Error: msgid=<f@x>: save failed to INBOX: Internal error occurred. Refer to server log for more information.",
    );
    let out = c.finish_all();
    assert_eq!(out.messages.len(), 1, "{:#?}", out.messages);
    let m = &out.messages[0];
    assert_eq!(m.hops[0].status, HopStatus::SaveFailed);
    assert_eq!(m.status, MessageStatus::Deferred);
    let f = finding(m, FindingCode::MailboxPermissionDenied);
    assert!(
        f.evidence[0].contains("Permission denied"),
        "the cause leads: {f:#?}"
    );
    assert!(out
        .host_findings
        .iter()
        .any(|h| h.code == FindingCode::MailboxPermissionDenied));
}

const LMTP_BOUNCE: &str = "Nov 28 05:35:49 dell postfix/lmtp[22969]: 3BC65DC1A1: to=<nobody@corp.test>, relay=dell.corp.test[/run/lmtp], delay=0, delays=0/0/0/0, dsn=5.1.1, status=bounced (host dell.corp.test[/run/lmtp] said: 550 5.1.1 <nobody@corp.test> User doesn't exist: nobody@corp.test (in reply to RCPT TO command))";
const UNKNOWN_USER: &str =
    "2025-11-28T05:35:49.248453 auth: Info: passwd-file(nobody@corp.test): unknown user";

#[test]
fn a_recipient_lookup_failure_is_evidence_for_the_bounce_in_either_order() {
    for c in in_both_orders(("dell", LMTP_BOUNCE), ("dovecot", UNKNOWN_USER)) {
        let out = c.finish_all();
        assert_eq!(out.messages.len(), 1, "{:#?}", out.messages);
        let f = finding(&out.messages[0], FindingCode::RecipientUnknown);
        assert!(
            f.evidence.iter().any(|e| e.contains("unknown user")),
            "{f:#?}"
        );
        assert!(
            out.host_findings.is_empty(),
            "a delivery's lookup is not a login failure: {:#?}",
            out.host_findings
        );
    }
}

#[test]
fn rejects_of_a_queued_message_close_or_keep_the_entry() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  7 12:00:00 mx postfix/cleanup[2]: 1E1E1E1E1E: milter-reject: END-OF-MESSAGE from unknown[198.18.1.1]: 5.7.1 Spam detected; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>\n\
         Nov  7 12:00:00 mx postfix/cleanup[2]: 2F2F2F2F2F: hold: header Subject: offer from unknown[198.18.1.1]; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>: Held",
    );
    let ms = c.finish();
    let hop = |qid: &str| by_first_qid(&ms, qid);
    let rejected = hop("1E1E1E1E1E");
    assert_eq!(rejected.hops[0].status, HopStatus::Rejected);
    assert_eq!(rejected.status, MessageStatus::Rejected);
    assert!(rejected.complete, "a whole-message reject closes the entry");
    assert_eq!(rejected.from.as_deref(), Some("a@provider.test"));
    let held = hop("2F2F2F2F2F");
    assert_ne!(held.hops[0].status, HopStatus::Rejected, "{held:#?}");
    assert!(!held.complete, "a held message stays in the queue");
}

pub(super) const EXPIRING: &str = "\
Nov  7 08:00:00 mx postfix/smtpd[1]: 3C3C3C3C3C: client=smtp.provider.test[198.18.2.2]
Nov  7 08:00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: from=<a@provider.test>, size=900, nrcpt=2 (queue active)
Nov  7 08:00:30 mx postfix/smtp[4]: 3C3C3C3C3C: to=<ops@slow.example>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx.slow.example[192.0.2.50]:25: Connection timed out)
Nov  7 08:00:31 mx postfix/smtp[4]: 3C3C3C3C3C: to=<ok@fast.example>, relay=mx.fast.example[192.0.2.9]:25, delay=31, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
const NOTICE_ID: &str =
    "Nov  7 09:00:00 mx postfix/cleanup[2]: 4D4D4D4D4D: message-id=<bounce-4D@mx.corp.test>";
const EXPIRED_RCPT: &str = "\
Nov  7 09:00:00 mx postfix/error[5]: 3C3C3C3C3C: to=<ops@slow.example>, relay=none, delay=3600, delays=3600/0/0/0, dsn=4.4.7, status=expired, returned to sender (connect to mx.slow.example[192.0.2.50]:25: Connection timed out)
Nov  7 09:00:00 mx postfix/bounce[6]: 3C3C3C3C3C: sender non-delivery notification: 4D4D4D4D4D
Nov  7 09:00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: removed";

#[test]
fn an_expired_recipient_is_ranked_like_a_bounce_and_keeps_its_notice() {
    // The notice's cleanup line before the bounce line, and after it.
    for text in [
        format!("{EXPIRING}\n{NOTICE_ID}\n{EXPIRED_RCPT}"),
        format!("{EXPIRING}\n{EXPIRED_RCPT}\n{NOTICE_ID}"),
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", &text);
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "the notice is no message of its own: {ms:#?}");
        let m = &ms[0];
        assert_eq!(m.status, MessageStatus::Bounced);
        assert_eq!(
            m.message_id, None,
            "the notice's message-id is not the message's"
        );
        assert!(m.complete);
        assert_eq!(m.notes, ["ec2 notified the sender as queue id 4D4D4D4D4D"]);
        let hop = &m.hops[0];
        assert_eq!(m.hops.len(), 1, "{m:#?}");
        assert_eq!(hop.status, HopStatus::Expired);
        // The expired recipient's own line describes the hop.
        assert_eq!(hop.dsn.as_deref(), Some("4.4.7"));
        assert_eq!(hop.relay.as_deref(), Some("none"));
        assert_eq!(hop.delay_ms, Some(3_600_000));
        let f = finding(m, FindingCode::Expired);
        assert_eq!(
            f.message,
            "ec2: expired in queue, returned to sender: connect to mx.slow.example[192.0.2.50]:25: Connection timed out"
        );
        assert_eq!(f.host.as_deref(), Some("ec2"));
        finding(m, FindingCode::NextHopTimeout);
    }
}

#[test]
fn a_whole_message_expiry_quotes_the_last_deferral() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        &format!(
            "{EXPIRING}\nNov  7 09:00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: from=<a@provider.test>, status=expired, returned to sender"
        ),
    );
    let ms = c.finish();
    assert_eq!(ms[0].hops[0].status, HopStatus::Expired);
    assert_eq!(ms[0].status, MessageStatus::Bounced);
    assert!(finding(&ms[0], FindingCode::Expired).message.ends_with(
        "returned to sender: connect to mx.slow.example[192.0.2.50]:25: Connection timed out"
    ));
}

#[test]
fn a_bounce_notice_stays_a_message_of_its_own() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  7 08:00:00 mx postfix/qmgr[3]: 5E5E5E5E5E: from=<a@provider.test>, size=900, nrcpt=1 (queue active)\n\
         Nov  7 08:00:01 mx postfix/smtp[4]: 5E5E5E5E5E: to=<x@far.example>, relay=mx.far.example[192.0.2.9]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.far.example[192.0.2.9] said: 550 5.1.1 User unknown (in reply to RCPT TO command))\n\
         Nov  7 08:00:01 mx postfix/cleanup[2]: 6F6F6F6F6F: message-id=<bounce-6F@mx.corp.test>\n\
         Nov  7 08:00:01 mx postfix/bounce[6]: 5E5E5E5E5E: sender non-delivery notification: 6F6F6F6F6F\n\
         Nov  7 08:00:01 mx postfix/qmgr[3]: 5E5E5E5E5E: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 2, "{ms:#?}");
    assert!(ms
        .iter()
        .any(|m| m.has_message_id("bounce-6F@mx.corp.test")));
}

const MX_DEFERS: &str = "\
Nov  7 11:20:04 mx postfix/smtpd[1]: 7A7A7A7A7A: client=out.sender.example[203.0.113.25]
Nov  7 11:20:04 mx postfix/cleanup[2]: 7A7A7A7A7A: message-id=<inv@sender.example>
Nov  7 11:20:04 mx postfix/qmgr[3]: 7A7A7A7A7A: from=<billing@sender.example>, size=3020, nrcpt=1 (queue active)
Nov  7 11:20:05 mx postfix/smtp[4]: 7A7A7A7A7A: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.4, delays=0.01/0/0.05/0.34, dsn=4.3.0, status=deferred (host 100.64.0.2[100.64.0.2] said: 451 4.3.0 Error: queue file write error (in reply to end of DATA command))";
const DELL_REFUSES: &str = "\
Nov  7 11:20:05 dell postfix/smtpd[1]: 8B8B8B8B8B: client=unknown[100.64.0.1]
Nov  7 11:20:05 dell postfix/cleanup[2]: warning: ldap:/etc/postfix/ldap-aliases.cf lookup error for \"alice@corp.test\"
Nov  7 11:20:05 dell postfix/cleanup[2]: warning: ldap:/etc/postfix/ldap-other.cf lookup error for \"bob@corp.test\"
Nov  7 11:20:05 dell postfix/cleanup[2]: warning: 8B8B8B8B8B: virtual_alias_maps map lookup problem for alice@corp.test -- message not accepted, try again later";

#[test]
fn a_map_lookup_refusal_joins_the_upstream_deferral_in_either_order() {
    for c in in_both_orders(("ec2", MX_DEFERS), ("dell", DELL_REFUSES)) {
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        let path = host_path(m);
        assert_eq!(
            path,
            [("ec2", HopStatus::Deferred), ("dell", HopStatus::Refused)]
        );
        assert_eq!(m.status, MessageStatus::Deferred);
        let f = finding(m, FindingCode::LookupFailure);
        assert_eq!(
            f.message,
            "dell: cleanup could not look up virtual_alias_maps for alice@corp.test: message not accepted, try again later"
        );
        assert_eq!(f.host.as_deref(), Some("dell"));
        // The lookup error about this key explains it; the one about another key does not.
        assert!(
            f.evidence.iter().any(|e| e.contains("ldap-aliases.cf")),
            "{f:#?}"
        );
        assert!(
            !f.evidence.iter().any(|e| e.contains("ldap-other.cf")),
            "{f:#?}"
        );
    }
}

#[test]
fn a_refusal_without_a_sender_log_is_still_refused_and_a_warning_alone_changes_nothing() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "dell",
        "Nov  7 11:20:09 dell postfix/smtpd[1]: 9C9C9C9C9C: client=unknown[100.64.0.1]\n\
         Nov  7 11:20:09 dell postfix/cleanup[2]: 9C9C9C9C9C: warning: header_checks map lookup problem -- message not accepted, try again later\n\
         Nov  7 11:20:10 dell postfix/smtpd[1]: 0D0D0D0D0D: client=unknown[100.64.0.1]\n\
         Nov  7 11:20:10 dell postfix/cleanup[2]: warning: 0D0D0D0D0D: smtp_generic_maps map lookup problem for x@corp.test",
    );
    let ms = c.finish();
    let by_qid = |q: &str| by_first_qid(&ms, q);
    let refused = by_qid("9C9C9C9C9C");
    assert_eq!(refused.hops[0].status, HopStatus::Refused);
    assert_eq!(refused.status, MessageStatus::Deferred);
    assert!(refused.complete);
    assert_eq!(
        finding(refused, FindingCode::LookupFailure).message,
        "dell: cleanup could not look up header_checks: message not accepted, try again later"
    );
    // No "message not accepted": the entry is not closed by it.
    let other = by_qid("0D0D0D0D0D");
    assert_ne!(other.hops[0].status, HopStatus::Refused);
    assert!(!other.complete);
}

#[test]
fn a_refusal_the_sender_got_past_on_retry_does_not_decide_the_status() {
    let retry = "\
Nov  7 11:30:05 mx postfix/smtp[4]: 7A7A7A7A7A: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=600, delays=599/0/0.05/0.34, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1E1E1E1E1E)
Nov  7 11:30:05 mx postfix/qmgr[3]: 7A7A7A7A7A: removed";
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", MX_DEFERS);
    feed(&mut c, "dell", DELL_REFUSES);
    feed(&mut c, "ec2", retry);
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0].hops[1].status, HopStatus::Refused);
    // The retry's hand-off is not in these logs: the ec2 hop (sent) is where it ended.
    assert_eq!(ms[0].status, MessageStatus::Delivered, "{ms:#?}");
}

const FILTERED: &str = "\
Nov  7 14:30:00 mx postfix/smtpd[1]: 9E9E9E9E9E: client=out.sender.example[203.0.113.25]
Nov  7 14:30:00 mx postfix/qmgr[3]: 9E9E9E9E9E: from=<an@sender.example>, size=8810, nrcpt=1 (queue active)
Nov  7 14:30:01 mx postfix/smtpd[7]: 2C2C2C2C2C: client=localhost[127.0.0.1]
Nov  7 14:30:01 mx postfix/qmgr[3]: 2C2C2C2C2C: from=<an@sender.example>, size=9320, nrcpt=1 (queue active)
Nov  7 14:30:01 mx postfix/smtp[4]: 9E9E9E9E9E: to=<alice@corp.test>, relay=RELAY, delay=1.2, delays=0.01/0/0/1.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2C2C2C2C2C)
Nov  7 14:30:01 mx postfix/qmgr[3]: 9E9E9E9E9E: removed
Nov  7 14:30:01 mx postfix/smtp[8]: 2C2C2C2C2C: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.08, delays=0.01/0/0.03/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4B4B4B4B4B)
Nov  7 14:30:01 mx postfix/qmgr[3]: 2C2C2C2C2C: removed";

#[test]
fn a_content_filter_reinjection_is_one_message_without_a_skew_sample() {
    // No message-id lines: only the `queued as` link can join the two entries.
    for relay in [
        "127.0.0.1[127.0.0.1]:10024",
        "localhost[::1]:25",
        "amavis[172.18.0.5]:10024",
        // A relay that is none of these: the localhost client of the next entry decides.
        "filter.corp.test[10.1.1.1]:2500",
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", &FILTERED.replace("RELAY", relay));
        assert!(c.skew().is_empty(), "same clock: {:?}", c.skew());
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{relay}: {ms:#?}");
        let qids: Vec<_> = ms[0].hops.iter().map(|h| h.queue_id.as_deref()).collect();
        assert_eq!(qids, [Some("9E9E9E9E9E"), Some("2C2C2C2C2C")], "{relay}");
        assert!(ms[0].complete);
    }
}

#[test]
fn a_same_host_queue_id_is_not_linked_through_a_remote_relay() {
    // The next entry's client is not local and the relay is remote: a coincidence of ids.
    let text = FILTERED
        .replace("RELAY", "filter.corp.test[10.1.1.1]:2500")
        .replace("client=localhost[127.0.0.1]", "client=unknown[10.1.1.1]");
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", &text);
    assert_eq!(c.finish().len(), 2);
}

#[test]
fn local_relays_and_clients_are_recognized() {
    use super::links::{client_is_local, relay_is_local};
    for r in [
        "127.0.0.1[127.0.0.1]:10024",
        "[127.0.0.1]:10025",
        "localhost[::1]:25",
        "x[ipv6:::1]:25",
        "amavis[172.18.0.5]:10024",
        "amavis[172.18.0.5]:10025",
        "local",
    ] {
        assert!(relay_is_local(r), "{r}");
    }
    for r in [
        "none",
        "100.64.0.2[100.64.0.2]:2525",
        "dell[private/dovecot-lmtp]",
        "mx[192.0.2.1]:25",
        "[127.0.0.1",
        "x[192.0.2.1]:100245",
    ] {
        assert!(!relay_is_local(r), "{r}");
    }
    assert!(client_is_local("localhost[127.0.0.1]"));
    assert!(client_is_local("localhost[::1]"));
    assert!(client_is_local("h[IPv6:0:0:0:0:0:0:0:1]"));
    assert!(client_is_local("h[127.255.0.9]"));
    for c in [
        "unknown[100.64.0.1]",
        "h[::ffff:127.0.0.1]",
        "h[0127.0.0.1]",
        "h[128.0.0.1]",
        "h[127.0.0]",
        "h[ipv6:2001:db8::1]",
    ] {
        assert!(!client_is_local(c), "{c}");
    }
}

#[test]
fn a_recipient_rejected_at_rcpt_leaves_the_hop_its_delivery_fields() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  7 10:15:01 mx postfix/smtpd[1]: 3B3B3B3B3B: client=out.sender.example[203.0.113.25]\n\
         Nov  7 10:15:01 mx postfix/smtpd[1]: 3B3B3B3B3B: reject: RCPT from out.sender.example[203.0.113.25]: 550 5.1.1 <nobody@corp.test>: Recipient address rejected: User unknown in virtual mailbox table; from=<news@sender.example> to=<nobody@corp.test> proto=ESMTP helo=<x>\n\
         Nov  7 10:15:02 mx postfix/qmgr[3]: 3B3B3B3B3B: from=<news@sender.example>, size=5120, nrcpt=1 (queue active)\n\
         Nov  7 10:15:02 mx postfix/smtp[4]: 3B3B3B3B3B: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.31, delays=0.2/0/0.05/0.06, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 7E7E7E7E7E)\n\
         Nov  7 10:15:02 mx postfix/qmgr[3]: 3B3B3B3B3B: removed",
    );
    let ms = c.finish();
    let hop = &ms[0].hops[0];
    assert_eq!(hop.status, HopStatus::Sent);
    assert_eq!(hop.relay.as_deref(), Some("100.64.0.2[100.64.0.2]:2525"));
    assert_eq!(hop.dsn.as_deref(), Some("2.0.0"));
    assert_eq!(hop.next_queue_id.as_deref(), Some("7E7E7E7E7E"));
    assert_eq!(hop.service.as_deref(), Some("smtp"));
    assert!(hop.delays.is_some());
    assert_eq!(hop.to, ["nobody@corp.test", "alice@corp.test"]);
    finding(&ms[0], FindingCode::RecipientUnknown);
}

#[test]
fn a_reinjection_logged_after_its_queued_as_still_links() {
    // Two instances logging to separate files: the sending one's file is read first.
    let text = FILTERED.replace("RELAY", "filter.corp.test[10.1.1.1]:2500");
    let (second, first): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.contains("2C2C2C2C2C:"));
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", &first.join("\n"));
    feed(&mut c, "ec2", &second.join("\n"));
    assert!(c.skew().is_empty(), "{:?}", c.skew());
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    let qids: Vec<_> = ms[0].hops.iter().map(|h| h.queue_id.as_deref()).collect();
    assert_eq!(qids, [Some("9E9E9E9E9E"), Some("2C2C2C2C2C")]);
}

/// Open messages, each with client, message-id, qmgr and `deferrals` deferred attempts.
fn open_message_lines(i: u32, deferrals: u32) -> Vec<String> {
    let q = format!("{:010X}", 0x100_0000 + i);
    let mut v = vec![
        format!("Nov  7 12:00:05 mx postfix/smtpd[1]: {q}: client=s{i}.example.org[203.0.113.9]"),
        format!("Nov  7 12:00:05 mx postfix/cleanup[2]: {q}: message-id=<open{i}@x>"),
        format!("Nov  7 12:00:05 mx postfix/qmgr[3]: {q}: from=<s{i}@example.org>, size=900, nrcpt=1 (queue active)"),
    ];
    for r in 0..deferrals {
        v.push(format!(
            "Nov  7 12:00:{:02} mx postfix/smtp[4]: {q}: to=<bob@corp.test>, relay=mx.corp.test[192.0.2.1]:25, delay={r}, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.corp.test[192.0.2.1]:25: Connection timed out)",
            6 + r
        ));
    }
    v
}

#[test]
fn retained_lines_and_evidence_stay_under_the_global_cap() {
    let cap = 64 * 1024;
    let limits = Limits {
        max_retained_line_bytes: cap,
        ..Limits::default()
    };
    let mut c = Correlator::new(limits);
    let ctx = ParseContext::new("ec2", 2025);
    let n = 3_000;
    for i in 0..n {
        for l in open_message_lines(i, 4) {
            c.push(parse_line(l.as_bytes(), &ctx).unwrap());
            // A finding's evidence may take the last line that fits, never more than one.
            assert!(c.retained_line_bytes() <= cap + limits.max_line_bytes);
        }
    }
    // Every message stays open: without the global cap they would hold ~7 lines of ~200 bytes
    // each, some 4 MB here.
    assert_eq!(c.open_chains(), n as usize);
    assert!(
        c.lines_dropped_over_cap() > 10_000,
        "{}",
        c.lines_dropped_over_cap()
    );
    let out = c.finish_all();
    assert_eq!(
        out.stats.lines_dropped_over_cap,
        out.messages.iter().map(|m| m.lines_dropped).sum::<u64>()
            + evidence_dropped(&out.messages, 4)
    );
    // The earliest messages kept their lines; the per-message count says what each lost.
    assert_eq!(out.messages[0].lines.len(), 7);
    assert!(out
        .messages
        .iter()
        .any(|m| m.lines.is_empty() && m.lines_dropped == 7));
}

/// Evidence lines missing from the messages' findings, against `per_message` expected each.
fn evidence_dropped(messages: &[MessageChain], per_message: u64) -> u64 {
    messages
        .iter()
        .map(|m| {
            per_message
                - m.findings
                    .iter()
                    .map(|f| f.evidence.len() as u64)
                    .sum::<u64>()
        })
        .sum()
}

#[test]
fn flushing_open_chains_in_batches_matches_the_end_of_input() {
    let ctx = ParseContext::new("ec2", 2025);
    let fill = |c: &mut Correlator| {
        for i in 0..50 {
            for l in open_message_lines(i, 2) {
                c.push(parse_line(l.as_bytes(), &ctx).unwrap());
            }
        }
    };
    let mut whole = Correlator::new(Limits::default());
    fill(&mut whole);
    let whole = whole.finish();
    let mut batched = Correlator::new(Limits::default());
    fill(&mut batched);
    let mut got = Vec::new();
    while batched.flush_open(7) > 0 {
        got.extend(batched.take_finished());
    }
    assert_eq!(batched.open_chains(), 0);
    assert_eq!(got, whole);
}

/// One standing seen on two hosts at the same moment (the same failure in both hosts' logs,
/// whole seconds): which host leads the finding does not hang on which log was read first,
/// which the prefilter's skipped lines change.
#[test]
fn a_finding_seen_on_two_hosts_at_once_is_led_by_the_same_host_in_either_order() {
    let line = |role: &str| {
        format!(
            "Dec 31 23:00:00 {role} dovecot: lmtp(bob@corp.test)<107><AbCd107>: \
             msgid=<m2@a.example>: rejected: Quota exceeded (mailbox for user is full)"
        )
    };
    let (ec2, dell) = (line("ec2"), line("dell"));
    let leaders = in_both_orders(("ec2", &ec2), ("dell", &dell)).map(|c| {
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        finding(&ms[0], FindingCode::MailboxFull).host.clone()
    });
    assert_eq!(leaders[0], leaders[1]);
    assert_eq!(leaders[0].as_deref(), Some("dell"));
}
