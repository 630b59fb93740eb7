//! Failures whose cause another line names: an administrator's `postsuper -e` (Postfix 3.5's
//! `status=force-expired`), a daemon's fatal error that other processes' warnings follow, and
//! Dovecot's error lines for two messages to one user in the same second; and warnings that are
//! no cause of a failure logged after them.

use super::tests::{feed, finding, EXPIRING};
use super::*;
use crate::diagnosis::FindingCode;

#[test]
fn an_expiry_forced_by_an_administrator_says_so() {
    // Postfix 3.5+'s `postsuper -e`: `status=force-expired` on the sender's line (the form
    // postfix_exporter's tests show) and on a recipient's.
    for line in [
        "Nov  7 09:00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: from=<a@provider.test>, status=force-expired, returned to sender",
        "Nov  7 09:00:00 mx postfix/qmgr[3]: 3C3C3C3C3C: to=<ops@slow.example>, relay=none, delay=600, delays=600/0/0/0, dsn=4.7.0, status=force-expired, returned to sender (message is administratively expired)",
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", &format!("{EXPIRING}\n{line}"));
        let ms = c.finish();
        assert_eq!(ms[0].hops[0].status, HopStatus::Expired, "{line}");
        assert_eq!(ms[0].status, MessageStatus::Bounced, "{line}");
        let f = finding(&ms[0], FindingCode::Expired);
        assert!(
            f.message
                .starts_with("ec2: expired by an administrator (postsuper -e), returned to sender"),
            "{}",
            f.message
        );
    }
}

#[test]
fn a_daemon_s_fatal_error_stays_in_the_evidence_past_the_warnings_about_it() {
    // lmtp(8) dies on its configuration; the queue manager and master then warn about it, and
    // the message is deferred. The fatal line says what to fix: it must not be crowded out.
    let log = "\
Nov  4 06:00:00 dell postfix/smtpd[100]: ABCDEF1234: client=ec2[100.64.0.1]
Nov  4 06:00:00 dell postfix/qmgr[102]: ABCDEF1234: from=<a@example.org>, size=1200, nrcpt=1 (queue active)
Nov  4 06:00:00 dell postfix/lmtp[103]: fatal: valid hostname or network address required in server description: private/dovecot-lmtp
Nov  4 06:00:01 dell postfix/qmgr[102]: warning: private/lmtp socket: malformed response
Nov  4 06:00:01 dell postfix/qmgr[102]: warning: transport lmtp failure -- see a previous warning/fatal/panic logfile record for the problem description
Nov  4 06:00:01 dell postfix/master[1]: warning: process /usr/lib/postfix/sbin/lmtp pid 103 exit status 1
Nov  4 06:00:01 dell postfix/error[104]: ABCDEF1234: to=<alice@corp.test>, relay=none, delay=1, delays=0/1/0/0, dsn=4.3.0, status=deferred (unknown mail transport error)";
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "dell", log);
    let ms = c.finish();
    let f = finding(&ms[0], FindingCode::ServiceError);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("fatal: valid hostname")),
        "{f:#?}"
    );
    // The newest of the warnings are kept beside it, oldest first after the failure's own line.
    let explaining: Vec<&str> = f.evidence.iter().skip(1).map(String::as_str).collect();
    assert_eq!(explaining.len(), 3, "{f:#?}");
    assert!(explaining[0].contains("fatal:"), "{explaining:#?}");
    assert!(
        explaining[1].contains("transport lmtp failure"),
        "{explaining:#?}"
    );
    assert!(explaining[2].contains("exit status 1"), "{explaining:#?}");
}

/// Two messages for one user, deferred by LMTP in the same second, each for its own reason
/// (the lab's Sieve redirect failing, as Dovecot 2.3 logged it): each failure takes the Dovecot
/// line that names its message-id, or a line of that line's LMTP session, whichever log is
/// read first; none takes the other message's.
#[test]
fn dovecot_lines_explain_only_the_message_they_name() {
    let dovecot = "2025-12-04T09:45:28.446436 lmtp(alice@corp.test)<30260><FcziGLiLEms0dgAAn00ZSw>: Error: sieve: msgid=<redir-yes@provider.test>: redirect action: failed to redirect message to <bob@elsewhere.example>: Sendmail program returned error (temporary failure) delivery_time=10ms\n\
         2025-12-04T09:45:28.446436 lmtp(alice@corp.test)<30260><FcziGLiLEms0dgAAn00ZSw>: Error: sieve: Execution of script /x/lab-spam.sieve was aborted due to temporary failure\n\
         2025-12-04T09:45:28.455712 lmtp(alice@corp.test)<30260><4CWeGriLEms0dgAAn00ZSw>: Error: sieve: msgid=<redir-keep@provider.test>: redirect action: failed to redirect message to <bob@elsewhere.example>: Mailbox quota exceeded\n\
         2025-12-04T09:45:28.456061 lmtp(alice@corp.test)<30260><4CWeGriLEms0dgAAn00ZSw>: Error: sieve: Execution of script /x/lab-spam.sieve was aborted due to temporary failure";
    let postfix = "Dec 04 09:45:28 dell postfix/cleanup[30258]: 5F7BFDC495: message-id=<redir-yes@provider.test>\n\
         Dec 04 09:45:28 dell postfix/qmgr[29857]: 5F7BFDC495: from=<someone@provider.test>, size=606, nrcpt=1 (queue active)\n\
         Dec 04 09:45:28 dell postfix/cleanup[30258]: 68521DC497: message-id=<redir-keep@provider.test>\n\
         Dec 04 09:45:28 dell postfix/qmgr[29857]: 68521DC497: from=<someone@provider.test>, size=609, nrcpt=1 (queue active)\n\
         Dec 04 09:45:28 dell postfix/lmtp[30259]: 5F7BFDC495: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.06, delays=0.01/0.01/0.02/0.03, dsn=4.2.0, status=deferred (host dell[private/dovecot-lmtp] said: 451 4.2.0 <alice@corp.test> Execution of Sieve filters was aborted due to temporary failure (in reply to end of DATA command))\n\
         Dec 04 09:45:28 dell postfix/lmtp[30264]: 68521DC497: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.03, delays=0/0.01/0.01/0.01, dsn=4.2.0, status=deferred (host dell[private/dovecot-lmtp] said: 451 4.2.0 <alice@corp.test> Execution of Sieve filters was aborted due to temporary failure (in reply to end of DATA command))";
    for dovecot_first in [false, true] {
        let mut c = Correlator::new(Limits::default());
        let logs = [("dell", postfix), ("dell-dovecot", dovecot)];
        for (role, text) in if dovecot_first {
            [logs[1], logs[0]]
        } else {
            logs
        } {
            feed(&mut c, role, text);
        }
        let ms = c.finish();
        assert_eq!(ms.len(), 2, "{ms:#?}");
        for (id, own_session, code) in [
            (
                "<redir-yes@provider.test>",
                "FcziGLiLEms0dgAAn00ZSw",
                FindingCode::ServiceError,
            ),
            (
                "<redir-keep@provider.test>",
                "4CWeGriLEms0dgAAn00ZSw",
                FindingCode::MailboxFull,
            ),
        ] {
            let m = ms
                .iter()
                .find(|m| m.message_id.as_deref() == Some(id))
                .unwrap();
            let f = &m.findings[0];
            assert_eq!(f.code, code, "dovecot first: {dovecot_first}: {f:#?}");
            let dovecot_evidence: Vec<&String> =
                f.evidence.iter().filter(|e| e.contains("lmtp(")).collect();
            assert!(!dovecot_evidence.is_empty(), "{f:#?}");
            assert!(
                dovecot_evidence.iter().all(|e| e.contains(own_session)),
                "dovecot first: {dovecot_first}: {id} took another message's line: {f:#?}"
            );
        }
    }
}

#[test]
fn a_local_warning_does_not_rename_a_failure_the_remote_side_caused() {
    // fail2ban's and the exporters' real lines: cleanup refused another message for a failed
    // map lookup, and smtpd warned of a missing table; then a delivery to Yahoo was deferred by
    // Yahoo or the network. Neither warning is why: the code stays generic, no postmap hint.
    for lines in [
        "Oct 26 18:13:50 mx postfix/cleanup[1111]: warning: 9BECF3F19D: sender_canonical_maps map lookup problem for sender@example.com -- message not accepted, try again later\n\
         Oct 26 18:13:51 mx postfix/error[2222]: 2DC5552A34: to=<user@yahoo.com>, relay=none, delay=63495, delays=63350/144/0/0, dsn=4.4.2, status=deferred (delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO)",
        "Oct 26 18:13:50 mx postfix/smtpd[1111]: warning: hash:/etc/postfix/virtual is unavailable. open database /etc/postfix/virtual.db: No such file or directory\n\
         Oct 26 18:13:55 mx postfix/smtp[2222]: 2DC5552A34: to=<user@yahoo.com>, relay=mta7.am0.yahoodns.net[98.136.216.22]:25, delay=5, delays=1/0/2/2, dsn=4.0.0, status=deferred (host mta7.am0.yahoodns.net[98.136.216.22] said: 421 4.7.0 [TSS04] Messages from 192.0.2.4 temporarily deferred (in reply to MAIL FROM command))",
    ] {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", lines);
        let out = c.finish_all();
        let m = out
            .messages
            .iter()
            .find(|m| m.hops.iter().any(|h| h.queue_id.as_deref() == Some("2DC5552A34")))
            .unwrap_or_else(|| panic!("{:#?}", out.messages));
        let codes: Vec<_> = m.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [FindingCode::DeferredOther], "{lines}");
        assert!(
            m.findings[0].evidence.iter().all(|e| !e.contains("warning:")),
            "{:#?}",
            m.findings[0]
        );
    }
}

#[test]
fn a_warning_naming_a_queue_id_explains_only_that_entry() {
    // cleanup's warning for 9BECF3F19D is no cause of 2DC5552A34's local failure.
    let mut c = Correlator::new(Limits::default());
    feed(
        &mut c,
        "ec2",
        "Oct 26 18:13:50 mx postfix/cleanup[1111]: warning: 9BECF3F19D: sender_canonical_maps map lookup problem for sender@example.com -- message not accepted, try again later\n\
         Oct 26 18:13:51 mx postfix/local[2222]: 2DC5552A34: to=<bob@mx.example>, relay=local, delay=1, delays=0/0/0/1, dsn=4.3.0, status=deferred (temporary failure)",
    );
    let out = c.finish_all();
    let m = out
        .messages
        .iter()
        .find(|m| {
            m.hops
                .iter()
                .any(|h| h.queue_id.as_deref() == Some("2DC5552A34"))
        })
        .unwrap_or_else(|| panic!("{:#?}", out.messages));
    let codes: Vec<_> = m.findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [FindingCode::DeferredOther]);
}
