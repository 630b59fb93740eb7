//! Messages that end in neither delivery nor a failure of the mail system's: Postfix's
//! address-verification probes, and a message refused whole for its size.

use super::tests::feed;
use super::*;
use crate::diagnosis::FindingCode;

#[test]
fn a_message_over_the_queue_file_size_limit_is_rejected_for_its_size() {
    // smtpd's only word when a message grows past message_size_limit during DATA (the
    // client was told `552 5.3.4 Error: message file too big`); no qmgr line follows.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Sep 17 06:29:55 mx postfix/smtpd[5151]: 3999BEB4021: client=unknown[192.0.2.44]\n\
         Sep 17 06:29:55 mx postfix/cleanup[5152]: 3999BEB4021: message-id=<big@example.org>\n\
         Sep 17 06:29:56 mx postfix/smtpd[5151]: warning: 3999BEB4021: queue file size limit exceeded\n\
         Sep 17 06:29:56 mx postfix/smtpd[5151]: disconnect from unknown[192.0.2.44] ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5",
    );
    let out = c.finish_all();
    assert_eq!(out.messages.len(), 1);
    let m = &out.messages[0];
    assert_eq!(m.status, MessageStatus::Rejected, "{m:#?}");
    assert_eq!(m.hops[0].status, HopStatus::Rejected);
    let codes: Vec<_> = m.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [FindingCode::MessageTooLarge]);
    assert!(m.findings[0].evidence[0].contains("queue file size limit exceeded"));
    // The message's own finding, not the host's.
    assert!(out.host_findings.is_empty(), "{:?}", out.host_findings);
}

#[test]
fn address_verification_probes_are_verified_not_delivered() {
    // Postfix's verify(8) probes: one answered deliverable, one undeliverable. Neither
    // delivered anything, and neither is a failure of the mail system.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  6 07:30:00 mx postfix/cleanup[1]: 4A4B4C4D4E: message-id=<20251106073000.4A4B4C4D4E@mx.example>\n\
         Nov  6 07:30:00 mx postfix/qmgr[3]: 4A4B4C4D4E: from=<double-bounce@mx.example>, size=240, nrcpt=1 (queue active)\n\
         Nov  6 07:30:00 mx postfix/smtp[2]: 4A4B4C4D4E: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.1, delays=0.02/0/0.05/0.03, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)\n\
         Nov  6 07:30:00 mx postfix/qmgr[3]: 4A4B4C4D4E: removed\n\
         Nov  6 07:30:02 mx postfix/cleanup[1]: 5A5B5C5D5E: message-id=<20251106073002.5A5B5C5D5E@mx.example>\n\
         Nov  6 07:30:02 mx postfix/qmgr[3]: 5A5B5C5D5E: from=<double-bounce@mx.example>, size=240, nrcpt=1 (queue active)\n\
         Nov  6 07:30:02 mx postfix/smtp[2]: 5A5B5C5D5E: to=<nobody@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.1, delays=0.02/0/0.05/0.03, dsn=5.1.1, status=undeliverable (host 100.64.0.2[100.64.0.2] said: 550 5.1.1 <nobody@corp.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))\n\
         Nov  6 07:30:02 mx postfix/qmgr[3]: 5A5B5C5D5E: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 2);
    for m in &ms {
        assert_eq!(m.status, MessageStatus::Verified, "{m:#?}");
        assert!(!m.status.is_failure());
        assert!(m.findings.is_empty(), "{:?}", m.findings);
        assert_eq!(m.hops[0].status, HopStatus::Verified);
    }
    // The answer is the hop's reply.
    assert_eq!(ms[0].hops[0].dsn.as_deref(), Some("2.1.5"));
    assert_eq!(ms[1].hops[0].dsn.as_deref(), Some("5.1.1"));
    assert!(ms[1].hops[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("User unknown"));
}
