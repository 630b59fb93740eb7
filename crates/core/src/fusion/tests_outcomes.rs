//! Messages that end in neither delivery nor a failure of the mail system's: Postfix's
//! address-verification probes, a message refused whole for its size or for a while (a
//! milter's greylisting), one forwarded by local(8) to another address, and one a REDIRECT
//! action sent elsewhere; and one whose recipients fared differently.

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

#[test]
fn a_milters_temporary_reject_of_a_queued_message_is_a_refusal_with_its_status_code() {
    // A greylisting milter at end of message: cleanup drops the queue file and the client is
    // told to try again, as after a NOQUEUE 4xx. A 5.x.x reject of the same shape stays a
    // reject. Both keep their status code on the hop.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "2021-02-06T10:57:58+01:00 mail.server.com postfix/smtpd[59585]: D6DDA23B0F: client=unknown[99.88.77.66]\n\
         2021-02-06T10:57:58+01:00 mail.server.com postfix/cleanup[59586]: D6DDA23B0F: milter-reject: END-OF-MESSAGE from unknown[99.88.77.66]: 4.7.1 Greylisting in action, try again later; from=<user2@example.com> to=<some.dest@destdomain.com> proto=ESMTP helo=<host.sender.domain>\n\
         2021-02-06T10:58:30+01:00 mail.server.com postfix/smtpd[59585]: E6DDA23B0F: client=unknown[99.88.77.67]\n\
         2021-02-06T10:58:30+01:00 mail.server.com postfix/cleanup[59586]: E6DDA23B0F: milter-reject: END-OF-MESSAGE from unknown[99.88.77.67]: 5.7.1 black listed URL host sample.com; from=<x@example.com> to=<y@destdomain.com> proto=ESMTP helo=<h>",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 2);
    let (grey, black) = (&ms[0], &ms[1]);
    assert_eq!(grey.status, MessageStatus::Deferred, "{grey:#?}");
    assert_eq!(grey.hops[0].status, HopStatus::Refused);
    assert_eq!(grey.hops[0].dsn.as_deref(), Some("4.7.1"));
    assert_eq!(grey.findings[0].code, FindingCode::RateLimited);
    assert_eq!(black.status, MessageStatus::Rejected, "{black:#?}");
    assert_eq!(black.hops[0].status, HopStatus::Rejected);
    assert_eq!(black.hops[0].dsn.as_deref(), Some("5.7.1"));
}

#[test]
fn a_local_forward_links_to_the_queue_id_it_was_forwarded_as() {
    // local(8) resends a message to an alias's or .forward's address as a new queue file on
    // the same host: `status=sent (forwarded as QID)` names it.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Jul  6 07:12:57 mx postfix/pickup[3000]: 3mLQKH6hqhz7sWK: uid=0 from=<root>\n\
         Jul  6 07:12:57 mx postfix/cleanup[3001]: 3mLQKH6hqhz7sWK: message-id=<fw@mx.example>\n\
         Jul  6 07:12:58 mx postfix/qmgr[3002]: 3mLQKH6hqhz7sWK: from=<root@mx.example>, size=500, nrcpt=1 (queue active)\n\
         Jul  6 07:13:00 mx postfix/cleanup[3001]: 3mLQKK4rDdz7sVS: message-id=<fw@mx.example>\n\
         Jul  6 07:13:00 mx postfix/local[3013]: 3mLQKH6hqhz7sWK: to=<logspam@system.alerts>, relay=local, delay=3.1, delays=1.8/0.86/0/0.44, dsn=2.0.0, status=sent (forwarded as 3mLQKK4rDdz7sVS)\n\
         Jul  6 07:13:00 mx postfix/qmgr[3002]: 3mLQKH6hqhz7sWK: removed\n\
         Jul  6 07:13:00 mx postfix/qmgr[3002]: 3mLQKK4rDdz7sVS: from=<root@mx.example>, size=700, nrcpt=1 (queue active)\n\
         Jul  6 07:13:01 mx postfix/smtp[3020]: 3mLQKK4rDdz7sVS: to=<ops@elsewhere.example>, relay=mx.elsewhere.example[192.0.2.9]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1A2B3C4D5E)\n\
         Jul  6 07:13:01 mx postfix/qmgr[3002]: 3mLQKK4rDdz7sVS: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    let hops = &ms[0].hops;
    assert_eq!(hops.len(), 2, "{hops:#?}");
    assert_eq!(hops[0].next_queue_id.as_deref(), Some("3mLQKK4rDdz7sVS"));
    assert_eq!(hops[1].queue_id.as_deref(), Some("3mLQKK4rDdz7sVS"));
    assert_eq!(ms[0].status, MessageStatus::Delivered);
}

#[test]
fn a_redirect_action_is_noted_on_the_message_it_sent_elsewhere() {
    // An access table's REDIRECT at RCPT time: delivered, to another address than the one the
    // client gave; the note says which rule kind did it and where the message went.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  4 06:00:00 mx postfix/smtpd[12]: 4A1B2C3D4F: client=unknown[192.0.2.9]\n\
         Nov  4 06:00:00 mx postfix/smtpd[12]: 4A1B2C3D4F: redirect: RCPT from unknown[192.0.2.9]: <b@corp.test>: Recipient address triggers REDIRECT archive@corp.test; from=<a@x.example> to=<b@corp.test> proto=ESMTP helo=<x>\n\
         Nov  4 06:00:00 mx postfix/cleanup[11]: 4A1B2C3D4F: message-id=<r1@x.example>\n\
         Nov  4 06:00:00 mx postfix/qmgr[13]: 4A1B2C3D4F: from=<a@x.example>, size=300, nrcpt=1 (queue active)\n\
         Nov  4 06:00:01 mx postfix/local[15]: 4A1B2C3D4F: to=<archive@corp.test>, orig_to=<b@corp.test>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n\
         Nov  4 06:00:01 mx postfix/qmgr[13]: 4A1B2C3D4F: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0].status, MessageStatus::Delivered);
    assert!(ms[0].findings.is_empty(), "{:#?}", ms[0].findings);
    assert!(
        ms[0].notes.iter().any(|n| n.starts_with(
            "ec2 redirected the message to archive@corp.test (a REDIRECT action of an access table"
        )),
        "{:#?}",
        ms[0].notes
    );
}

#[test]
fn a_next_hops_relay_refusal_is_its_own_reject_when_its_log_is_read() {
    // ec2 relays to dell, which refuses to relay for the domain (missing from its domains).
    let ec2 = "Nov  5 09:02:00 mx postfix/smtpd[3]: 5B5B5B5B5B: client=smtp.provider.test[198.18.2.2]\n\
         Nov  5 09:02:00 mx postfix/qmgr[4]: 5B5B5B5B5B: from=<sender@provider.test>, size=900, nrcpt=1 (queue active)\n\
         Nov  5 09:02:01 mx postfix/smtp[5]: 5B5B5B5B5B: to=<sales@newdomain.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=1, delays=0.1/0/0.4/0.5, dsn=5.7.1, status=bounced (host 100.64.0.2[100.64.0.2] said: 554 5.7.1 <sales@newdomain.test>: Relay access denied (in reply to RCPT TO command))";
    let dell = "Nov  5 09:02:01 dell postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[100.64.0.1]: 554 5.7.1 <sales@newdomain.test>: Relay access denied; from=<sender@provider.test> to=<sales@newdomain.test> proto=ESMTP helo=<mx.corp.test>";
    // ec2's log alone: the next hop refused, which is not ec2's own relay_domains.
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", ec2);
    let ms = c.finish();
    // Each finding's code and host.
    let codes = |m: &MessageChain| -> Vec<(FindingCode, Option<String>)> {
        m.findings
            .iter()
            .map(|f| (f.code, f.host.clone()))
            .collect()
    };
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(
        codes(&ms[0]),
        [(FindingCode::NextHopRelayDenied, Some("ec2".to_owned()))]
    );
    // With dell's log, in either order: one finding, dell's own reject, where the fix is.
    for logs in [
        [("ec2", ec2), ("dell", dell)],
        [("dell", dell), ("ec2", ec2)],
    ] {
        let mut c = Correlator::new(Limits::default());
        for (role, text) in logs {
            feed(&mut c, role, text);
        }
        let ms = c.finish();
        let failed: Vec<_> = ms.iter().filter(|m| !m.findings.is_empty()).collect();
        assert_eq!(failed.len(), 1, "{ms:#?}");
        assert_eq!(
            codes(failed[0]),
            [(FindingCode::RelayAccessDenied, Some("dell".to_owned()))],
            "{ms:#?}"
        );
    }
}

#[test]
fn a_full_mailbox_refused_for_good_is_no_deferral() {
    // LMTP's 552 (quota_full_tempfail off, the default): Postfix bounced it, whatever order the
    // two lines come in; LDA's `rejected:` (the pipe says sent): Dovecot refused it for good.
    let lmtp = [
        "Nov  4 06:01:00 dell dovecot: lmtp(carol@corp.test)<4243><BbCdEfGhIjKlMnOpQrStUv>: msgid=<q1@y>: save failed to INBOX: Quota exceeded (mailbox for user is full)",
        "Nov  4 06:01:00 dell postfix/lmtp[5001]: 2B3C4D5E6F: to=<carol@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=5.2.2, status=bounced (host dell[private/dovecot-lmtp] said: 552 5.2.2 <carol@corp.test> Quota exceeded (mailbox for user is full) (in reply to end of DATA command))",
    ];
    let lda = "Nov  4 06:05:00 dell postfix/cleanup[5000]: 5E6F708192: message-id=<l1@y>\n\
         Nov  4 06:05:00 dell dovecot: lda(henry@corp.test)<6001><GbCdEfGhIjKlMnOpQrStUv>: msgid=<l1@y>: rejected: Quota exceeded (mailbox for user is full)\n\
         Nov  4 06:05:00 dell postfix/pipe[5003]: 5E6F708192: to=<henry@corp.test>, relay=dovecot, delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (delivered via dovecot service)";
    for order in [[0, 1], [1, 0]] {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            &format!(
                "Nov  4 06:01:00 dell postfix/cleanup[5000]: 2B3C4D5E6F: message-id=<q1@y>\n{}\n{}",
                lmtp[order[0]], lmtp[order[1]]
            ),
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        assert_eq!(ms[0].status, MessageStatus::Bounced, "{ms:#?}");
        assert_eq!(ms[0].findings[0].code, FindingCode::MailboxFull);
    }
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "dell", lda);
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0].status, MessageStatus::Rejected, "{ms:#?}");
    assert_eq!(ms[0].findings[0].code, FindingCode::MailboxFull);
}

#[test]
fn a_queue_id_given_to_a_new_message_starts_a_new_one() {
    // Short queue ids repeat on a busy server: after `removed`, a new `client=` (or pickup's
    // `uid=`) with the same id is another message.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Jun 15 10:00:00 mx postfix/smtpd[100]: 3B4C5D6E7F: client=a.example[192.0.2.1]\n\
         Jun 15 10:00:00 mx postfix/cleanup[101]: 3B4C5D6E7F: message-id=<first@a.example>\n\
         Jun 15 10:00:00 mx postfix/qmgr[102]: 3B4C5D6E7F: from=<a@a.example>, size=900, nrcpt=1 (queue active)\n\
         Jun 15 10:00:01 mx postfix/smtp[103]: 3B4C5D6E7F: to=<bob@partner.example>, relay=mx.partner.example[203.0.113.50]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.partner.example[203.0.113.50] said: 550 5.1.1 <bob@partner.example>: Recipient address rejected: User unknown (in reply to RCPT TO command))\n\
         Jun 15 10:00:01 mx postfix/qmgr[102]: 3B4C5D6E7F: removed\n\
         Jun 15 15:00:00 mx postfix/pickup[104]: 3B4C5D6E7F: uid=0 from=<root>\n\
         Jun 15 15:00:00 mx postfix/cleanup[101]: 3B4C5D6E7F: message-id=<second@mx.example>\n\
         Jun 15 15:00:00 mx postfix/qmgr[102]: 3B4C5D6E7F: from=<root@mx.example>, size=900, nrcpt=1 (queue active)\n\
         Jun 15 15:00:01 mx postfix/smtp[103]: 3B4C5D6E7F: to=<carol@other.example>, relay=mx.other.example[203.0.113.60]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ZZZ)\n\
         Jun 15 15:00:01 mx postfix/qmgr[102]: 3B4C5D6E7F: removed",
    );
    let ms = c.finish();
    let seen: Vec<_> = ms
        .iter()
        .map(|m| (m.message_id.as_deref(), m.status, m.to.len()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("<first@a.example>"), MessageStatus::Bounced, 1),
            (Some("<second@mx.example>"), MessageStatus::Delivered, 1)
        ],
        "{ms:#?}"
    );
}

#[test]
fn a_hold_at_rcpt_holds_the_whole_message() {
    // smtpd's HOLD action (a check_sender_access HOLD) and a milter's, at RCPT time: the client
    // was told 250 and the message sits in the hold queue; refused it is not.
    for line in [
        "Apr 29 02:00:15 mx postfix/smtpd[32667]: 5A1A2B3C4D: hold: RCPT from mail.example.net[192.0.2.30]: <news@example.net>: Sender address triggers HOLD action; from=<news@example.net> to=<bob@corp.test> proto=ESMTP helo=<mail.example.net>",
        "Apr 29 02:00:15 mx postfix/smtpd[32667]: 5A1A2B3C4D: milter-hold: RCPT from mail.example.net[192.0.2.30]: milter triggers HOLD action; from=<news@example.net> to=<bob@corp.test> proto=ESMTP helo=<mail.example.net>",
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            &format!(
                "Apr 29 02:00:15 mx postfix/smtpd[32667]: 5A1A2B3C4D: client=mail.example.net[192.0.2.30]\n{line}\n\
                 Apr 29 02:00:16 mx postfix/cleanup[32670]: 5A1A2B3C4D: message-id=<n2@example.net>"
            ),
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        assert_eq!(ms[0].status, MessageStatus::Held, "{line}\n{ms:#?}");
        assert_eq!(ms[0].hops[0].status, HopStatus::Held);
        assert_eq!(ms[0].findings[0].code, FindingCode::Held);
    }
}

#[test]
fn a_message_deleted_by_postsuper_says_so() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "May  6 08:00:00 mx postfix/qmgr[202]: 2B00000001: from=<a@example.net>, size=900, nrcpt=1 (queue active)\n\
         May  6 08:00:30 mx postfix/smtp[203]: 2B00000001: to=<ops@slow.example>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx.slow.example[198.51.100.50]:25: Connection timed out)\n\
         May  6 09:00:00 mx postfix/postsuper[204]: 2B00000001: removed\n\
         May  6 09:00:00 mx postfix/qmgr[202]: 2C00000002: from=<a@example.net>, size=900, nrcpt=1 (queue active)\n\
         May  6 09:00:01 mx postfix/smtp[203]: 2C00000002: to=<ops@fast.example>, relay=mx.fast.example[198.51.100.51]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n\
         May  6 09:00:01 mx postfix/qmgr[202]: 2C00000002: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 2, "{ms:#?}");
    let deleted = |m: &MessageChain| m.notes.iter().any(|n| n.contains("postsuper -d"));
    assert!(deleted(&ms[0]), "{:#?}", ms[0]);
    // qmgr's `removed` after a delivery is no deletion.
    assert!(!deleted(&ms[1]), "{:#?}", ms[1]);
}

#[test]
fn recipients_that_fared_differently_each_keep_their_outcome() {
    // One queue entry, two recipients at the same relay: one bounced (unknown user), one sent
    // and handed on. The hop is the bounced one's, its delay that attempt's; the sent one is
    // not lost, nor the queue id it was handed on as.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Oct  1 12:18:15 mx postfix/smtpd[1]: 72FEB28781: client=ext.example.org[198.51.100.7]\n\
         Oct  1 12:18:15 mx postfix/cleanup[2]: 72FEB28781: message-id=<mixed@ext.example.org>\n\
         Oct  1 12:18:15 mx postfix/qmgr[3]: 72FEB28781: from=<a@ext.example.org>, size=885, nrcpt=2 (queue active)\n\
         Oct  1 12:18:16 mx postfix/smtp[4]: 72FEB28781: to=<nobody@corp.test>, relay=100.64.0.2[100.64.0.2]:25, delay=1.3, delays=0.29/0.03/0.63/0.36, dsn=5.1.1, status=bounced (host 100.64.0.2[100.64.0.2] said: 550 5.1.1 <nobody@corp.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))\n\
         Oct  1 12:18:16 mx postfix/smtp[4]: 72FEB28781: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:25, delay=1.5, delays=0.29/0.03/0.63/0.56, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 43EC973143)\n\
         Oct  1 12:18:16 mx postfix/qmgr[3]: 72FEB28781: removed",
    );
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    let hop = &ms[0].hops[0];
    assert_eq!(hop.status, HopStatus::Bounced);
    assert_eq!(hop.dsn.as_deref(), Some("5.1.1"));
    assert_eq!(
        hop.delay_ms,
        Some(1300),
        "the delay of the attempt the delays are from"
    );
    assert_eq!(hop.delays.as_ref().map(|d| d.transmission_ms), Some(360));
    assert_eq!(hop.next_queue_id.as_deref(), Some("43EC973143"));
    let got: Vec<_> = hop
        .recipients
        .iter()
        .map(|r| (&*r.to, r.status, r.dsn.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("nobody@corp.test", HopStatus::Bounced, Some("5.1.1")),
            ("alice@corp.test", HopStatus::Sent, Some("2.0.0")),
        ]
    );
    assert_eq!(
        hop.recipients[1].reason.as_deref(),
        Some("250 2.0.0 Ok: queued as 43EC973143")
    );
}

#[test]
fn recipients_that_fared_alike_list_no_outcomes() {
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Oct  1 12:18:15 mx postfix/qmgr[3]: 72FEB28781: from=<a@ext.example.org>, size=885, nrcpt=2 (queue active)\n\
         Oct  1 12:18:16 mx postfix/smtp[4]: 72FEB28781: to=<bob@corp.test>, relay=100.64.0.2[100.64.0.2]:25, delay=1.3, delays=0.29/0.03/0.63/0.36, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 43EC973143)\n\
         Oct  1 12:18:16 mx postfix/smtp[4]: 72FEB28781: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:25, delay=1.5, delays=0.29/0.03/0.63/0.56, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 43EC973143)\n\
         Oct  1 12:18:16 mx postfix/qmgr[3]: 72FEB28781: removed",
    );
    let ms = c.finish();
    assert_eq!(ms[0].hops[0].status, HopStatus::Sent);
    assert!(ms[0].hops[0].recipients.is_empty(), "{ms:#?}");
}

#[test]
fn a_queued_message_says_what_its_last_attempt_was_told() {
    // Postfix logs a 4xx from one MX before it tries the next; the window ends before any
    // status line (SEKOIA-IO's intake test data has this line alone).
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Mar 14 11:18:40 mx postfix/cleanup[101]: 30D713F81F: message-id=<said-1@example.net>\n\
         Mar 14 11:18:40 mx postfix/qmgr[102]: 30D713F81F: from=<a@example.net>, size=900, nrcpt=1 (queue active)\n\
         Mar 14 11:18:49 mx postfix/smtp[106]: 30D713F81F: host mx.example.org[5.6.7.8] said: 450 4.1.1 <abuse@example.com>: Recipient address rejected: unverified address (in reply to RCPT TO command)",
    );
    let out = c.finish_all();
    let m = &out.messages[0];
    assert_eq!(m.status, MessageStatus::Queued, "{m:#?}");
    assert_eq!(
        m.hops[0].reason.as_deref(),
        Some("host mx.example.org[5.6.7.8] said: 450 4.1.1 <abuse@example.com>: Recipient address rejected: unverified address (in reply to RCPT TO command)")
    );
    // A delivery line after it reports on that attempt; the detail is its evidence, not its reason.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Mar 14 11:18:40 mx postfix/cleanup[101]: 30D713F81F: message-id=<said-2@example.net>\n\
         Mar 14 11:18:40 mx postfix/qmgr[102]: 30D713F81F: from=<a@example.net>, size=900, nrcpt=1 (queue active)\n\
         Mar 14 11:18:49 mx postfix/smtp[106]: 30D713F81F: host mx1.example.org[5.6.7.8] said: 450 4.7.1 try later (in reply to RCPT TO command)\n\
         Mar 14 11:18:50 mx postfix/smtp[106]: 30D713F81F: to=<abuse@example.com>, relay=mx2.example.org[5.6.7.9]:25, delay=10, delays=0/0/1/0, dsn=4.4.2, status=deferred (lost connection with mx2.example.org[5.6.7.9] while receiving the initial server greeting)",
    );
    let out = c.finish_all();
    let hop = &out.messages[0].hops[0];
    assert_eq!(
        hop.reason.as_deref(),
        Some("lost connection with mx2.example.org[5.6.7.9] while receiving the initial server greeting")
    );
}

#[test]
fn the_discard_transport_discards_what_it_says_it_sent() {
    // A transport map sent the domain to `discard:`; discard(8) logs `status=sent` (the
    // grok-patterns project's test line). Nobody gets the message.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Oct 26 18:13:40 mx postfix/qmgr[100]: 25F2E5E061: from=<a@example.net>, size=900, nrcpt=1 (queue active)\n\
         Oct 26 18:13:50 mx postfix/discard[19593]: 25F2E5E061: to=<tom@example.com>, relay=none, delay=0.1, delays=0.1/0/0/0, dsn=2.0.0, status=sent (test.example.com)",
    );
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Rejected, "{m:#?}");
    assert_eq!(m.hops[0].status, HopStatus::Rejected);
    let codes: Vec<_> = m.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [FindingCode::Discarded]);
    assert!(
        m.findings[0].message.contains("discard transport"),
        "{m:#?}"
    );
    // smtp's `status=sent` is no discard.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Oct 26 18:13:50 mx postfix/smtp[19593]: 25F2E5E061: to=<tom@example.com>, relay=mx.example.com[192.0.2.9]:25, delay=0.1, delays=0.1/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4A)",
    );
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Delivered, "{m:#?}");
    assert!(m.findings.is_empty());
}

#[test]
fn a_content_filter_that_discards_is_no_delivery() {
    // amavisd-new's reply for a blocked virus whose destiny is D_DISCARD (the ASO parser's
    // example line): it took the message and threw it away; no later hop exists.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  5 10:10:00 relay postfix/smtp[4010]: 56EE54317: to=<creans@cs.tcd.ie>, relay=127.0.0.1[127.0.0.1]:10024, delay=3, delays=0.1/0/0/2.9, dsn=2.7.0, status=sent (250 2.7.0 Ok, discarded, id=00218-04 - INFECTED: Eicar-Test-Signature)",
    );
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Rejected, "{m:#?}");
    assert_eq!(m.hops[0].status, HopStatus::Rejected);
    assert_eq!(m.findings.len(), 1, "{m:#?}");
    let f = &m.findings[0];
    assert_eq!(f.code, FindingCode::Discarded);
    assert!(f.message.contains("content filter at 127.0.0.1"), "{f:#?}");
    assert!(f.hint.contains("Ok, discarded"), "{f:#?}");
    // Its plain pass (`Ok, id=..., from MTA(...): 250 2.0.0 Ok: queued as X`) is a delivery.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  5 10:10:00 relay postfix/smtp[4010]: 66EE54317: to=<a@cs.tcd.ie>, relay=127.0.0.1[127.0.0.1]:10024, delay=3, delays=0.1/0/0/2.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 3B2C1D)",
    );
    let m = &c.finish()[0];
    assert_ne!(m.status, MessageStatus::Rejected, "{m:#?}");
    assert!(m.findings.is_empty(), "{m:#?}");
}

#[test]
fn a_content_filter_that_bounces_is_no_delivery() {
    // amavisd-new's reply for a banned attachment whose destiny is D_BOUNCE (Zentyal's
    // documented example): Postfix says `status=sent`, amavis sent the bounce itself.
    let line = |qid: &str, reply: &str| {
        format!(
            "Feb 18 11:31:30 arthas postfix/smtp[18723]: {qid}: to=<test.djoven@icecrown.es>, \
             relay=127.0.0.1[127.0.0.1]:10024, delay=0.29, delays=0.08/0.01/0/0.2, dsn=2.5.0, \
             status=sent ({reply})"
        )
    };
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        &line("79C12FEF59", "250 2.5.0 Ok, id=18438-02, BOUNCE"),
    );
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Bounced, "{m:#?}");
    assert_eq!(m.hops[0].status, HopStatus::Bounced);
    assert_eq!(m.findings.len(), 1, "{m:#?}");
    let f = &m.findings[0];
    assert_eq!(f.code, FindingCode::BouncedOther);
    assert!(f.message.contains("content filter at 127.0.0.1"), "{f:#?}");
    assert!(f.message.contains("returned it to the sender"), "{f:#?}");
    // With the bounce suppressed, nobody hears of it: a discard.
    let mut c = Correlator::new(Limits::default());
    let suppressed = "250 2.5.0 Ok, id=03164-18, DISCARD(bounce.suppressed)";
    feed(&mut c, "ec2", &line("79C12FEF5A", suppressed));
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Rejected, "{m:#?}");
    assert_eq!(m.findings[0].code, FindingCode::Discarded, "{m:#?}");
    // A pass that names its id is a delivery.
    let mut c = Correlator::new(Limits::default());
    let pass =
        "250 2.0.0 Ok, id=12345-01, from MTA([127.0.0.1]:10025): 250 2.0.0 Ok: queued as 3B2C1D";
    feed(&mut c, "ec2", &line("79C12FEF5B", pass));
    let m = &c.finish()[0];
    assert!(m.findings.is_empty(), "{m:#?}");
    assert_ne!(m.status, MessageStatus::Bounced, "{m:#?}");
}

#[test]
fn a_bounce_leads_the_finding_its_deferrals_began() {
    // A forum post's lines: deferred (MX lookup, try again), then bounced (5.4.4). One
    // `dns_error` counted twice, whose message says how the message ended; another
    // recipient's later bounce does not take over from the first.
    let line = |t: &str, to: &str, dsn: &str, status: &str, why: &str| {
        format!(
            "Aug 29 22:08:{t} (none) postfix/smtp[4613]: ACA87E14DE: \
             to=<{to}@smtp.oladeleodugbemi.net>, relay=none, delay=16426, \
             delays=16426/0.16/0/0, dsn={dsn}, status={status} (Host or domain name not found. \
             Name service error for name=smtp.oladeleodugbemi.net {why})\n"
        )
    };
    let mut c = Correlator::new(Limits::default());
    let log = line(
        "35",
        "glider",
        "4.4.3",
        "deferred",
        "type=MX: Host not found, try again",
    ) + &line(
        "39",
        "glider",
        "5.4.4",
        "bounced",
        "type=AAAA: Host not found",
    ) + &line("50", "kite", "5.4.4", "bounced", "type=A: Host not found");
    feed(&mut c, "ec2", &log);
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Bounced, "{m:#?}");
    assert_eq!(m.findings.len(), 1, "{m:#?}");
    let f = &m.findings[0];
    assert_eq!((f.code, f.count), (FindingCode::DnsError, 3), "{f:#?}");
    assert!(f.message.contains("<glider@"), "{f:#?}");
    assert!(f.message.contains(" bounced via smtp"), "{f:#?}");
    assert!(f.message.contains("type=AAAA"), "{f:#?}");
}

#[test]
fn a_next_hops_own_trouble_in_its_reply_is_named_at_that_server() {
    // cuttlefish's test line: the lookup failed on foo.bar.com, not here. The message still
    // waits here (its stage); the finding and its fix name the server that said it.
    for (reply, code, speaker) in [
        (
            "host foo.bar.com[1.2.3.4] said: 451 4.3.0 <b@x.example>: Temporary lookup failure (in reply to RCPT TO command)",
            FindingCode::LookupFailure,
            "foo.bar.com",
        ),
        (
            "host unknown[192.0.2.8] said: 452 4.3.1 Insufficient system storage (in reply to MAIL FROM command)",
            FindingCode::DiskFull,
            "192.0.2.8",
        ),
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            &format!("Apr  5 16:41:54 kedumba postfix/smtp[18733]: 39D9336AFA81: to=<foo@bar.com>, relay=foo.bar.com[1.2.3.4]:25, delay=5, delays=0.1/0.03/1.6/0.91, dsn=4.3.0, status=deferred ({reply})"),
        );
        let m = &c.finish()[0];
        assert_eq!(m.status, MessageStatus::Deferred);
        let f = &m.findings[0];
        assert_eq!(f.code, code, "{f:#?}");
        assert_eq!(f.host.as_deref(), Some(speaker), "{f:#?}");
        assert_eq!(f.stage.as_deref(), Some("ec2"), "{f:#?}");
        assert!(f.hint.contains(speaker), "{f:#?}");
    }
    // A remote server's words about its own configuration (the ASO rules' example), in the
    // greeting's refusal: that server's service error.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  5 10:41:00 relay postfix/smtp[4041]: 431844388: to=<matthew@sammon.info>, orig_to=<matthew.sammon@cs.tcd.ie>, relay=redir-mail-telehouse1.gandi.net[217.70.180.1], delay=390, status=deferred (host redir-mail-telehouse1.gandi.net[217.70.180.1] refused to talk to me: 450 Server configuration problem)",
    );
    let f = &c.finish()[0].findings[0];
    assert_eq!(f.code, FindingCode::ServiceError, "{f:#?}");
    assert_eq!(f.host.as_deref(), Some("redir-mail-telehouse1.gandi.net"));
    assert_eq!(f.stage.as_deref(), Some("ec2"));
    // This host's own failed lookup stays this host's.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Apr  5 16:41:54 mx postfix/smtp[18733]: 39D9336AFA81: to=<foo@bar.com>, relay=none, delay=5, delays=0.1/0.03/1.6/0.91, dsn=4.3.0, status=deferred (address resolver failure)",
    );
    let m = &c.finish()[0];
    assert_eq!(m.findings[0].code, FindingCode::LookupFailure);
    assert_eq!(m.findings[0].host.as_deref(), Some("ec2"));
}

#[test]
fn an_attempt_the_logs_end_after_still_says_why() {
    // blog.jj5.net's content-filter hand-off and an ASO example line: per-attempt lines with
    // no delivery line after them in the logs given.
    for (lines, code) in [
        (
            "Feb  1 03:52:19 sixsigma postfix/smtp[8555]: SSL_connect error to 127.0.0.1[127.0.0.1]:10025: -1\n\
             Feb  1 03:52:19 sixsigma postfix/smtp[8555]: B97C42542CE: Cannot start TLS: handshake failure",
            FindingCode::TlsError,
        ),
        (
            "Nov  5 10:30:00 relay postfix/smtp[4030]: 80C05439E: host ASPMX.L.GOOGLE.COM[66.249.93.27] said: 450-4.2.1 The Gmail user you are trying to contact is receiving 450-4.2.1 mail at a rate that prevents additional messages from 450-4.2.1 being delivered. (in reply to RCPT TO command)",
            FindingCode::RateLimited,
        ),
        (
            "Nov  5 10:30:00 relay postfix/smtp[4030]: 80C05439F: lost connection with mx.example.net[192.0.2.4] while sending RCPT TO",
            FindingCode::DeferredOther,
        ),
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", lines);
        let m = &c.finish()[0];
        assert_eq!(m.findings.len(), 1, "{m:#?}");
        let f = &m.findings[0];
        assert_eq!(f.code, code, "{f:#?}");
        assert!(f.message.contains("no delivery line follows"), "{f:#?}");
        assert_eq!(f.evidence.len(), 1, "{f:#?}");
    }
    // The next server took it: the delivery line's outcome, no finding for the attempt before.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  5 10:30:00 relay postfix/smtp[4030]: 80C05439E: host a.mx.example[192.0.2.4] said: 421 4.7.0 try again later (in reply to MAIL FROM command)\n\
         Nov  5 10:30:01 relay postfix/smtp[4030]: 80C05439E: to=<u@example.org>, relay=b.mx.example[192.0.2.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9A)",
    );
    let m = &c.finish()[0];
    assert_eq!(m.status, MessageStatus::Delivered, "{m:#?}");
    assert!(m.findings.is_empty(), "{m:#?}");
}

#[test]
fn a_tls_failure_shows_its_agents_tls_warnings() {
    // ubuntuforums' 2007 thread: the CA file was missing; the smtp process said so just before.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Feb  5 12:08:05 borg postfix/qmgr[18463]: 85D37281B7: from=<r@borg.example>, size=599, nrcpt=1 (queue active)\n\
         Feb  5 12:08:06 borg postfix/smtpd[777]: warning: TLS library problem: error:0A000126:SSL routines::unexpected eof while reading\n\
         Feb  5 12:08:06 borg postfix/smtp[20250]: warning: TLS library problem: 20250:error:14090086:SSL routines:SSL3_GET_SERVER_CERTIFICATE:certificate verify failed:s3_clnt.c:894:\n\
         Feb  5 12:08:06 borg postfix/smtp[20250]: 85D37281B7: to=<r@gmail.example>, relay=smtp.gmail.example[192.0.2.9]:587, delay=3634, delays=3633/0.04/0.37/0, dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)",
    );
    let m = &c.finish()[0];
    let f = &m.findings[0];
    assert_eq!(f.code, FindingCode::TlsError);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("certificate verify failed")),
        "{f:#?}"
    );
    // Another process's (a server's scanner) is not the agent's.
    assert!(
        !f.evidence.iter().any(|e| e.contains("smtpd[777]")),
        "{f:#?}"
    );
}

#[test]
fn a_transaction_left_before_data_is_no_message() {
    // A sender-verification callout (MAIL, RCPT, QUIT) and a client that gave up after a
    // rejected recipient: smtpd announced queue files that Postfix removed without a line.
    // Beside them: a message the same smtpd process took in its next session, a session whose
    // reject names its queue id, and a `client=` whose process's disconnect is not in the log.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Dec  5 22:34:29 mx postfix/smtpd[14187]: 7D15E1801DF: client=unknown[198.18.1.1]\n\
         Dec  5 22:34:29 mx postfix/smtpd[14187]: disconnect from unknown[198.18.1.1] ehlo=1 mail=1 rcpt=1 quit=1 commands=4\n\
         Dec  5 22:34:30 mx postfix/smtpd[14187]: 8E26F2912E0: client=mail.sender.example[203.0.113.9]\n\
         Dec  5 22:34:30 mx postfix/cleanup[14190]: 8E26F2912E0: message-id=<kept@sender.example>\n\
         Dec  5 22:34:30 mx postfix/qmgr[100]: 8E26F2912E0: from=<a@sender.example>, size=900, nrcpt=1 (queue active)\n\
         Dec  5 22:34:30 mx postfix/smtpd[14187]: disconnect from mail.sender.example[203.0.113.9] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n\
         Dec  5 22:34:31 mx postfix/smtp[14191]: 8E26F2912E0: to=<bob@partner.example>, relay=mx.partner.example[203.0.113.50]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ZZZ)\n\
         Dec  5 22:34:31 mx postfix/qmgr[100]: 8E26F2912E0: removed\n\
         Dec  5 22:34:32 mx postfix/smtpd[14187]: disconnect from unknown[198.18.1.2] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4\n\
         Dec  5 22:34:33 mx postfix/smtpd[14200]: 9F37A3A23F1: client=unknown[198.18.1.3]\n\
         Dec  5 22:34:33 mx postfix/smtpd[14200]: 9F37A3A23F1: reject: RCPT from unknown[198.18.1.3]: 550 5.1.1 <nobody@corp.test>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@b.example> to=<nobody@corp.test> proto=ESMTP helo=<h>\n\
         Dec  5 22:34:33 mx postfix/smtpd[14200]: disconnect from unknown[198.18.1.3] ehlo=1 mail=1 rcpt=1/2 quit=1 commands=4/5\n\
         Dec  5 22:34:34 mx postfix/smtpd[14201]: A048B4B3402: client=unknown[198.18.1.4]\n\
         Dec  5 22:34:34 mx postfix/smtpd[14202]: disconnect from unknown[198.18.1.4] ehlo=1 mail=1 rcpt=1 quit=1 commands=4\n\
         Dec  5 22:34:35 mx postfix/smtpd[14187]: B159C5C4513: client=unknown[198.18.1.1]\n\
         Dec  5 22:34:35 mx postfix/smtpd[14187]: disconnect from unknown[198.18.1.1] ehlo=1 mail=1 rcpt=1 commands=3",
    );
    let out = c.finish_all();
    let seen: Vec<_> = out
        .messages
        .iter()
        .map(|m| (m.hops[0].queue_id.as_deref(), m.status))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("8E26F2912E0"), MessageStatus::Delivered),
            (Some("9F37A3A23F1"), MessageStatus::Rejected),
            (Some("A048B4B3402"), MessageStatus::Unknown),
        ],
        "{:#?}",
        out.messages
    );
    assert_eq!(out.stats.transactions_abandoned, 2);
}

/// A chain already done (quiet past its wait) takes no more lines, whether or not a sweep has
/// come by since: a Message-ID seen again minutes after Dovecot's line of a message that had
/// no Postfix line is another delivery. Fed alone, as a `--message-id` run reads it, and with
/// a thousand other lines between, as a full run does.
#[test]
fn a_done_chain_takes_no_line_whether_or_not_a_sweep_came_by() {
    let first = "Dec 31 23:00:19 dell dovecot: lmtp(bob@corp.test)<106><AbCd106>: msgid=<m1@sender.example>: save failed to INBOX: Permission denied\n";
    let later =
        "Dec 31 23:05:01 dell postfix/cleanup[106]: D0E873A000: message-id=<m1@sender.example>\n";
    let mut other = String::new();
    for i in 0..5_000 {
        other += &format!(
            "Dec 31 23:0{}:{:02} dell postfix/cleanup[7]: {:010X}: message-id=<o{i}@x>\n",
            1 + i / 1_250,
            (i / 25) % 50,
            0x1000_0000 + i
        );
    }
    let mut seen = Vec::new();
    for between in [String::new(), other] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "dell", &format!("{first}{between}{later}"));
        let ms = c.finish();
        let m1: Vec<_> = ms
            .iter()
            .filter(|m| m.message_id.as_deref() == Some("<m1@sender.example>"))
            .map(|m| (m.status, m.hops.len()))
            .collect();
        seen.push(m1);
    }
    assert_eq!(seen[0].len(), 2, "{:?}", seen[0]);
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn a_queue_id_refused_whole_can_name_the_next_message() {
    // A milter refused 4AB12C3D4E whole (cleanup dropped the queue file); the short id was then
    // given to another message twice: one a client sent (`client=`), one whose first line is
    // cleanup's (a bounce's notification). Three messages, each with its own lines.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Dec 31 23:00:01 mx postfix/smtpd[100]: 4AB12C3D4E: client=a.example[203.0.113.9]\n\
         Dec 31 23:00:02 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m1@a.example>\n\
         Dec 31 23:00:03 mx postfix/cleanup[101]: 4AB12C3D4E: milter-reject: END-OF-MESSAGE from a.example[203.0.113.9]: 5.7.1 Spam; from=<s@a.example> to=<bob@corp.test> proto=ESMTP helo=<a.example>\n\
         Dec 31 23:00:05 mx postfix/smtpd[100]: 4AB12C3D4E: client=b.example[203.0.113.10]\n\
         Dec 31 23:00:05 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m2@b.example>\n\
         Dec 31 23:00:05 mx postfix/cleanup[101]: 4AB12C3D4E: milter-reject: END-OF-MESSAGE from b.example[203.0.113.10]: 4.7.1 Try again later; from=<s@b.example> to=<bob@corp.test> proto=ESMTP helo=<b.example>\n\
         Dec 31 23:00:09 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m3@mx.example>\n\
         Dec 31 23:00:09 mx postfix/qmgr[3]: 4AB12C3D4E: from=<>, size=2000, nrcpt=1 (queue active)\n\
         Dec 31 23:00:09 mx postfix/smtp[102]: 4AB12C3D4E: to=<s@c.example>, relay=c.example[198.51.100.3]:25, delay=0.2, delays=0.01/0/0.1/0.09, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n\
         Dec 31 23:00:09 mx postfix/qmgr[3]: 4AB12C3D4E: removed",
    );
    let ms = c.finish();
    let by_id = |id: &str| {
        let m = ms.iter().find(|m| m.message_id.as_deref() == Some(id));
        m.unwrap_or_else(|| panic!("no {id} in {ms:#?}"))
    };
    assert_eq!(ms.len(), 3, "{ms:#?}");
    assert_eq!(by_id("<m1@a.example>").status, MessageStatus::Rejected);
    assert_eq!(by_id("<m2@b.example>").status, MessageStatus::Deferred);
    let m3 = by_id("<m3@mx.example>");
    assert_eq!(m3.status, MessageStatus::Delivered, "{m3:#?}");
    assert!(m3.findings.is_empty(), "{:?}", m3.findings);
    for m in &ms {
        let id = m.message_id.as_deref().unwrap_or_default();
        let own = m.lines.iter().filter(|l| l.contains(id)).count();
        assert_eq!(own, 1, "{id}: {:#?}", m.lines);
    }
}

#[test]
fn a_transaction_its_process_left_for_the_next_is_no_message() {
    // One session: MAIL, RCPT (4B12C3D4E5 announced), RSET, then a whole message; and a
    // process of a Postfix before 3.0 (no counters on `disconnect`) whose next session starts
    // a transaction. A transaction that reached DATA stays, with or without a Message-ID.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Dec 31 23:00:01 mx postfix/smtpd[100]: 4B12C3D4E5: client=a.example[203.0.113.9]\n\
         Dec 31 23:00:02 mx postfix/smtpd[100]: 4C12C3D4E5: client=a.example[203.0.113.9]\n\
         Dec 31 23:00:02 mx postfix/cleanup[101]: 4C12C3D4E5: message-id=<m1@a.example>\n\
         Dec 31 23:00:02 mx postfix/qmgr[3]: 4C12C3D4E5: from=<s@a.example>, size=900, nrcpt=1 (queue active)\n\
         Dec 31 23:00:03 mx postfix/smtpd[100]: 4D12C3D4E5: client=a.example[203.0.113.9]\n\
         Dec 31 23:00:03 mx postfix/cleanup[101]: 4D12C3D4E5: message-id=<>\n\
         Dec 31 23:00:03 mx postfix/smtpd[100]: disconnect from a.example[203.0.113.9] ehlo=1 mail=3 rcpt=3 data=2 rset=1 quit=1 commands=11\n\
         Dec 31 23:00:04 mx postfix/smtpd[200]: 4E12C3D4E5: client=b.example[203.0.113.10]\n\
         Dec 31 23:00:04 mx postfix/smtpd[200]: disconnect from b.example[203.0.113.10]\n\
         Dec 31 23:00:05 mx postfix/smtpd[200]: 4F12C3D4E5: client=c.example[203.0.113.11]\n\
         Dec 31 23:00:06 mx postfix/cleanup[101]: 4F12C3D4E5: message-id=<m2@c.example>",
    );
    let out = c.finish_all();
    let qids: Vec<_> = out
        .messages
        .iter()
        .flat_map(|m| m.hops.iter().filter_map(|h| h.queue_id.as_deref()))
        .collect();
    assert_eq!(qids.len(), 3, "{:#?}", out.messages);
    for q in ["4C12C3D4E5", "4D12C3D4E5", "4F12C3D4E5"] {
        assert!(qids.contains(&q), "{q} not in {qids:?}");
    }
    assert_eq!(out.stats.transactions_abandoned, 2);
}

/// 5,000 other messages' `message-id=` lines, one every 20 s from `day` at 04:00:00 (Dec):
/// enough records for sweeps to come by, and log time for chains to fall due.
fn other_messages(day: u32) -> String {
    let mut s = String::new();
    for i in 0..5_000u32 {
        let t = 4 * 3_600 + 20 * i;
        let (d, h, m, sec) = (day + t / 86_400, t / 3_600 % 24, t / 60 % 60, t % 60);
        s += &format!(
            "Dec {d} {h:02}:{m:02}:{sec:02} mx postfix/cleanup[7]: {:010X}: message-id=<o{i}@x>\n",
            0x1000_0000 + i
        );
    }
    s
}

#[test]
fn an_entry_in_the_queue_stays_one_message_across_days() {
    // Deferred twice, then expired 34 h later (a log cut to the queue id's lines, or a
    // deferred queue retried slowly): one message, bounced, whether or not sweeps came by.
    let retries = "Dec 27 02:38:54 mx postfix/qmgr[22753]: C93CEB08A046: from=<ina@somedomain.com>, size=1844, nrcpt=1 (queue active)\n\
         Dec 27 02:39:24 mx postfix/smtp[15816]: C93CEB08A046: to=<order@arobor.ru>, relay=none, delay=307136, delays=307106/0.02/30/0, dsn=4.4.1, status=deferred (connect to arobor.ru[178.210.73.19]:25: Connection timed out)\n\
         Dec 27 03:49:24 mx postfix/smtp[15816]: C93CEB08A046: to=<order@arobor.ru>, relay=none, delay=311336, delays=311306/0.02/30/0, dsn=4.4.1, status=deferred (connect to arobor.ru[178.210.73.19]:25: Connection timed out)\n";
    let end = "Dec 28 13:39:28 mx postfix/qmgr[22753]: C93CEB08A046: from=<ina@somedomain.com>, status=expired, returned to sender\n\
         Dec 28 13:39:28 mx postfix/qmgr[22753]: C93CEB08A046: removed\n";
    for between in [String::new(), other_messages(27)] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", &format!("{retries}{between}{end}"));
        let ms = c.finish();
        let it: Vec<_> = ms
            .iter()
            .filter(|m| {
                m.hops
                    .iter()
                    .any(|h| h.queue_id.as_deref() == Some("C93CEB08A046"))
            })
            .collect();
        assert_eq!(it.len(), 1, "{it:#?}");
        assert_eq!(it[0].status, MessageStatus::Bounced, "{:#?}", it[0]);
        assert!(it[0].mentions_rcpt("order@arobor.ru"));
    }
}

#[test]
fn a_message_begun_before_the_log_takes_its_sender_from_a_later_hop() {
    // The MX's log begins after its queue manager named the sender: only the relay's
    // delivery line is left. The next hop received the message with its sender.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Nov  7 12:00:05 mx postfix/smtp[4]: 1A1A1A1A1A: to=<bob@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.1, delays=0.01/0/0.04/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2B2B2B2B2B)\n\
         Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: removed",
    );
    feed(&mut c, "dell", super::tests::DELL);
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    let m = &ms[0];
    let hosts: Vec<&str> = m.hops.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(hosts, ["ec2", "dell"]);
    assert_eq!(m.from.as_deref(), Some("probe@provider.test"), "{m:#?}");
    assert_eq!(m.to, ["bob@corp.test"]);
}
