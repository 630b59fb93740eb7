use chrono::TimeZone;

use super::*;
use crate::diagnosis::Finding;
use crate::fixtures::bare_hop;
use crate::fusion::{Hop, MessageStatus};

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, h, m, 0).unwrap()
}

fn hop(host: &str, status: HopStatus, attempts: u32, arrived: DateTime<Utc>) -> Hop {
    Hop {
        queue_id: Some("ABC".into()),
        service: Some("smtp".into()),
        from: Some("s@provider.test".into()),
        to: vec!["alice@corp.test".into()],
        attempts,
        arrived_at: Some(arrived),
        ..bare_hop(host, status)
    }
}

fn chain(hops: Vec<Hop>, findings: Vec<Finding>) -> MessageChain {
    MessageChain {
        message_id: Some("<x@y>".into()),
        status: MessageStatus::Unknown,
        from: None,
        to: vec!["alice@corp.test".into()],
        hops,
        findings,
        notes: vec![],
        complete: false,
        lines: vec![],
        lines_dropped: 0,
        last_seen: None,
    }
}

fn evidence(now: DateTime<Utc>) -> RelayEvidence<'static> {
    RelayEvidence {
        from: "ec2",
        to: "dell",
        domain: "corp.test",
        window: TimeDelta::hours(1),
        now,
    }
}

#[test]
fn waiting_mail_fails_the_hop_with_the_deferral_and_the_runbook_fix() {
    let mut deferred = hop("ec2", HopStatus::Deferred, 2, t(7, 50));
    deferred.reason = Some("connect to 100.64.0.2[100.64.0.2]:2525: Connection refused".into());
    let f = Finding::new(FindingCode::NextHopRefused, Some("ec2"), "refused");
    let delivered = chain(vec![hop("ec2", HopStatus::Sent, 1, t(7, 40))], vec![]);
    let chains = [delivered, chain(vec![deferred], vec![f])];
    let j = relay(&evidence(t(7, 55)), &chains, Runbook::builtin());
    assert_eq!(j.status, Status::Fail, "{j:?}");
    assert!(
        j.detail
            .contains("1 message(s) for corp.test waiting on ec2 for dell"),
        "{}",
        j.detail
    );
    assert!(j.detail.contains("oldest queued 5 min ago"), "{}", j.detail);
    assert!(j.detail.contains("Connection refused"), "{}", j.detail);
    let expected = Runbook::builtin().hint(
        Subject {
            code: FindingCode::NextHopRefused,
            role: Some("ec2"),
            stage: None,
            peer: None,
        },
        &Facts {
            recipient: Some("postmaster@corp.test".into()),
        },
    );
    assert_eq!(j.hint.as_deref(), Some(expected.as_str()));
}

#[test]
fn deliveries_and_nothing_waiting_pass_and_nothing_is_unknown() {
    let sent_late = hop("ec2", HopStatus::Sent, 3, t(7, 0));
    let other_domain = {
        let mut c = chain(vec![hop("ec2", HopStatus::Deferred, 1, t(7, 0))], vec![]);
        c.to = vec!["x@elsewhere.test".into()];
        c.hops[0].to = vec!["x@elsewhere.test".into()];
        c
    };
    let j = relay(
        &evidence(t(7, 30)),
        &[chain(vec![sent_late], vec![]), other_domain.clone()],
        Runbook::builtin(),
    );
    assert_eq!(j.status, Status::Pass, "{j:?}");
    assert!(j.detail.contains("after 2 deferral(s)"), "{}", j.detail);

    // Mail in flight (queued a moment ago) is not waiting; with nothing else, no judgement.
    let fresh = hop("ec2", HopStatus::Queued, 0, t(7, 29));
    let j = relay(
        &evidence(t(7, 30)),
        &[chain(vec![fresh], vec![]), other_domain],
        Runbook::builtin(),
    );
    assert_eq!(j.status, Status::Unknown, "{j:?}");
    assert!(
        j.detail.starts_with("could not judge ec2 -> dell"),
        "{}",
        j.detail
    );
    assert_eq!(j.hint.as_deref(), Some(Hint::RelayNoEvidence.text()));
}

#[test]
fn mx_sets_are_compared_without_case_or_root_dot() {
    let ans = Answer::Records(vec![Mx {
        preference: 10,
        exchange: "MX.corp.test.".into(),
    }]);
    let none = Answer::NoRecords;
    let j = mx("corp.test", &ans, &["mx.corp.test".into()], &none);
    assert_eq!(
        (j.status, j.detail.as_str()),
        (Status::Pass, "MX 10 mx.corp.test")
    );
    let j = mx("corp.test", &ans, &["mx2.corp.test".into()], &none);
    assert_eq!(j.status, Status::Fail);
    assert!(j.detail.contains("expected mx2.corp.test"), "{}", j.detail);
}

#[test]
fn no_mx_is_explained_as_the_fallback_and_nxdomain_as_absence() {
    let addrs = Answer::Records(vec!["198.18.3.2".to_owned()]);
    let j = mx("corp.test", &Answer::NoRecords, &[], &addrs);
    assert_eq!(j.status, Status::Warn);
    assert!(j.detail.contains("RFC 5321"), "{}", j.detail);
    let j = mx(
        "corp.test",
        &Answer::NoRecords,
        &["mx.corp.test".into()],
        &addrs,
    );
    assert_eq!(j.status, Status::Fail);
    let j = mx("corp.test", &Answer::NoRecords, &[], &Answer::NoRecords);
    assert_eq!(
        (j.status, j.hint.as_deref()),
        (Status::Fail, Some(Hint::NoMailHost.text()))
    );
    let j = mx("nope.test", &Answer::NxDomain, &[], &Answer::NxDomain);
    assert!(j.detail.contains("NXDOMAIN"), "{}", j.detail);
    let j = address("gone.test", &Answer::Failed("request timed out".into()));
    assert_eq!(
        (j.status, j.hint.as_deref()),
        (Status::Fail, Some(Hint::DnsQueryFailed.text()))
    );
}

fn seen(verdict: Verdict, not_after: DateTime<Utc>) -> TlsSeen {
    TlsSeen {
        host: "mx.corp.test".into(),
        protocol: Some("TLSv1.3".into()),
        subject: Some("CN=mx.corp.test".into()),
        names: vec!["mx.corp.test".into()],
        not_after: Some(not_after),
        verdict,
    }
}

#[test]
fn certificates_fail_when_refused_and_warn_before_expiry() {
    let now = t(7, 0);
    let rb = Runbook::builtin();
    let ok = tls(
        &seen(Verdict::Valid, now + TimeDelta::days(30)),
        now,
        14,
        rb,
    );
    assert_eq!(ok.status, Status::Pass);
    assert!(
        ok.detail.contains("TLSv1.3") && ok.detail.contains("(30 days)"),
        "{}",
        ok.detail
    );
    let soon = tls(&seen(Verdict::Valid, now + TimeDelta::days(5)), now, 14, rb);
    assert_eq!(
        (soon.status, soon.hint.as_deref()),
        (Status::Warn, Some(Hint::CertExpiring.text()))
    );
    let old = tls(
        &seen(Verdict::Expired, now - TimeDelta::days(3)),
        now,
        14,
        rb,
    );
    assert_eq!(old.status, Status::Fail);
    assert!(
        old.detail.starts_with("certificate expired 3 days ago"),
        "{}",
        old.detail
    );
    let wrong = tls(
        &seen(Verdict::WrongName, now + TimeDelta::days(30)),
        now,
        14,
        rb,
    );
    assert!(
        wrong
            .detail
            .starts_with("certificate is not valid for mx.corp.test"),
        "{}",
        wrong.detail
    );
    assert_eq!(wrong.hint.as_deref(), Some(Hint::CertWrongName.text()));
    let untrusted = tls(
        &seen(Verdict::Untrusted("UnknownIssuer".into()), now),
        now,
        14,
        rb,
    );
    assert!(untrusted.hint.unwrap().contains("certificate"));
}

#[test]
fn ehlo_needs_what_the_scenario_uses() {
    let mut e = Ehlo {
        starttls: true,
        size: Some("10240000".into()),
        auth: None,
        needs_starttls: true,
        needs_auth: false,
    };
    let j = ehlo(&e);
    assert_eq!(
        (j.status, j.detail.as_str()),
        (Status::Pass, "STARTTLS, SIZE 10240000")
    );
    e.needs_auth = true;
    assert_eq!(ehlo(&e).hint.as_deref(), Some(Hint::NoAuth.text()));
    e.starttls = false;
    assert_eq!(ehlo(&e).hint.as_deref(), Some(Hint::NoStarttls.text()));
}

#[test]
fn imap_capabilities_and_folders() {
    let all = |_: &str| true;
    assert_eq!(imap_capabilities(all, true).status, Status::Pass);
    let no_idle = |c: &str| c != "IDLE";
    assert_eq!(imap_capabilities(no_idle, true).status, Status::Warn);
    assert_eq!(imap_capabilities(no_idle, false).status, Status::Pass);
    let j = folders(&["INBOX".into(), "Junk".into()], &["Junk".into()]);
    assert_eq!(j.status, Status::Fail);
    assert!(j.detail.starts_with("missing: Junk"), "{}", j.detail);
}

#[test]
fn durations_read_naturally() {
    assert_eq!(humanize(TimeDelta::seconds(40)), "40 s");
    assert_eq!(humanize(TimeDelta::minutes(3)), "3 min");
    assert_eq!(humanize(TimeDelta::hours(1)), "1 h");
    assert_eq!(humanize(TimeDelta::minutes(125)), "2 h 5 min");
}

#[test]
fn a_sendgrid_key_passes_only_when_accepted_with_mail_send() {
    let rb = Runbook::builtin();
    let scopes = |s: &[&str]| KeyCheck::Scopes(s.iter().map(|x| x.to_string()).collect());
    let ok = sendgrid_key(&scopes(&["alerts.read", "mail.send"]), rb);
    assert_eq!(ok.status, Status::Pass);
    assert_eq!(ok.detail, "key accepted; its 2 scope(s) include mail.send");
    assert!(ok.hint.is_none());

    let no_scope = sendgrid_key(&scopes(&["alerts.read"]), rb);
    assert_eq!(no_scope.status, Status::Fail);
    assert!(no_scope.detail.contains("lack mail.send"), "{no_scope:?}");
    assert!(no_scope.hint.unwrap().contains("Mail Send"));

    let status = |code, reason: &str, said: &str| KeyCheck::Status {
        code,
        reason: reason.into(),
        said: said.into(),
    };
    let refused = sendgrid_key(&status(401, "Unauthorized", "authorization required"), rb);
    assert_eq!(refused.status, Status::Fail);
    assert_eq!(
        refused.detail,
        "401 Unauthorized: authorization required (the key is wrong, revoked or expired)"
    );
    assert!(refused.hint.unwrap().contains("API Keys"));
    let forbidden = sendgrid_key(&status(403, "Forbidden", ""), rb);
    assert_eq!(forbidden.status, Status::Fail);
    assert!(forbidden.detail.starts_with("403 Forbidden (the key lacks"));

    for unjudged in [
        status(500, "Internal Server Error", ""),
        status(429, "Too Many Requests", ""),
        status(404, "Not Found", ""),
        KeyCheck::NoAnswer("no complete answer within 1.0 s".into()),
    ] {
        let j = sendgrid_key(&unjudged, rb);
        assert_eq!(j.status, Status::Unknown, "{unjudged:?}");
        assert!(j.detail.starts_with("could not judge the key"), "{j:?}");
        assert!(j.hint.is_some());
    }
    let no_key = sendgrid_key(&KeyCheck::NoKey("$SG_KEY is not set".into()), rb);
    assert_eq!(no_key.status, Status::Fail);
}
