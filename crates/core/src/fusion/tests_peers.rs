//! A delivery failure about the server it talked to names that server (`peer`), and the
//! built-in runbook tells the ec2 role's next hop (the Tailscale link to dell) from another
//! server (an Internet MX a bounce goes to) by it.

use super::tests::feed;
use super::*;
use crate::diagnosis::{Finding, FindingCode};

/// The one finding of one ec2 message whose delivery ended with `status`.
fn ec2_finding(status: &str) -> Finding {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        &format!(
            "Nov  6 07:30:00 mx postfix/cleanup[1]: 1A2B3C4D5E: message-id=<t@x>\n\
             Nov  6 07:30:30 mx postfix/smtp[1]: 1A2B3C4D5E: {status}"
        ),
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0].findings.len(), 1, "{ms:#?}");
    ms[0].findings[0].clone()
}

#[test]
fn a_timeout_to_an_internet_mx_is_not_the_tailscale_link() {
    let f = ec2_finding(
        "to=<x@gmail.com>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred \
         (connect to alt1.gmail-smtp-in.l.google.com[142.250.1.27]:25: Connection timed out)",
    );
    assert_eq!(f.code, FindingCode::NextHopTimeout);
    assert_eq!(
        f.peer.as_deref(),
        Some("alt1.gmail-smtp-in.l.google.com[142.250.1.27]")
    );
    assert!(!f.hint.contains("Tailscale"), "{}", f.hint);
    assert!(f.hint.contains("port 25"), "{}", f.hint);
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(
        json["peer"],
        "alt1.gmail-smtp-in.l.google.com[142.250.1.27]"
    );
}

#[test]
fn a_timeout_to_dell_over_tailscale_keeps_the_tailscale_hint() {
    let f = ec2_finding(
        "to=<x@corp.test>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred \
         (connect to 100.64.0.2[100.64.0.2]:2525: Connection timed out)",
    );
    assert_eq!(f.code, FindingCode::NextHopTimeout);
    assert_eq!(f.peer.as_deref(), Some("100.64.0.2[100.64.0.2]"));
    assert!(f.hint.contains("Tailscale"), "{}", f.hint);
    let refused = ec2_finding(
        "to=<x@corp.test>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred \
         (connect to 100.64.0.2[100.64.0.2]:2525: Connection refused)",
    );
    assert_eq!(refused.code, FindingCode::NextHopRefused);
    assert!(refused.hint.contains("Dell"), "{}", refused.hint);
}

/// A finding not about a server on the network (a local mailbox behind an LMTP socket, a name
/// that did not resolve) names none, and its JSON has no `peer`.
#[test]
fn a_mailbox_or_dns_finding_names_no_peer() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "dell",
        "Nov  4 06:01:00 dell postfix/cleanup[5000]: 2B3C4D5E6F: message-id=<q1@y>\n\
         Nov  4 06:01:00 dell postfix/lmtp[5001]: 2B3C4D5E6F: to=<carol@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=5.2.2, status=bounced (host dell[private/dovecot-lmtp] said: 552 5.2.2 <carol@corp.test> Quota exceeded (mailbox for user is full) (in reply to end of DATA command))",
    );
    let ms = c.finish();
    assert_eq!(ms[0].findings[0].code, FindingCode::MailboxFull);
    assert_eq!(ms[0].findings[0].peer, None);
    let json = serde_json::to_value(&ms[0].findings[0]).unwrap();
    assert!(json.get("peer").is_none(), "{json}");
    let dns = ec2_finding(
        "to=<x@nowhere.test>, relay=none, delay=1, delays=0/0/1/0, dsn=5.4.4, status=bounced \
         (Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found)",
    );
    assert_eq!(dns.code, FindingCode::DnsError);
    assert_eq!(dns.peer, None);
}
