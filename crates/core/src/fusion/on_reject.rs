//! Correlator handler for rejections (smtpd NOQUEUE rejects, cleanup/milter rejects of a queued
//! message): the finding on the rejecting host, and the join between a NOQUEUE reject and the
//! upstream delivery failure that quotes its reply, in whichever order the two logs arrive.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::diagnosis::{classify_smtp_reply, Finding, FindingCode};
use crate::logs::{LogRecord, Reject};

use super::chain::{
    clip, reply_text, senders_agree, within, ChainId, NoQueue, RcptReject, RcptStatus,
};
use super::correlator::Correlator;

/// Whether a delivery failure's reason quotes this rejection's reply ("host X said: 554 5.7.1
/// ..."): only then is the rejection the cause. Same recipient and sender within the window is
/// not enough: an earlier probe's rejection, or a failure of another kind (a lost connection)
/// at the same moment, would otherwise be taken for it.
/// The reply's code alone is not enough: a Dovecot LMTP's `451 4.2.0 ... Internal error` on
/// one host and another host's `451 4.3.0 <bob@corp.test>: Temporary lookup failure` to a later
/// client share a code and a recipient and nothing else.
fn quotes_reply(reason: &str, r: &Reject) -> bool {
    let head: String = r.reason.chars().take(24).collect();
    let says_head = head.is_empty() || reason.contains(&head);
    match (r.code, r.dsn.as_deref()) {
        // Postfix: "host X[ip] said: 554 5.7.1 <rcpt>: Relay access denied (in reply to ...)".
        (Some(code), Some(d)) => reason.contains(&format!("{code} {d}")) && says_head,
        (Some(code), None) => reason.contains(&format!("said: {code}")) && says_head,
        (None, _) => !head.is_empty() && says_head,
    }
}

/// What a reject's action did to the message: held it, discarded it, or refused it.
pub(super) fn action_code(r: &Reject) -> Option<FindingCode> {
    match r.action.as_str() {
        "hold" | "milter-hold" => Some(FindingCode::Held),
        "discard" | "milter-discard" => Some(FindingCode::Discarded),
        _ => None,
    }
}

/// The finding's text: who rejected (held, discarded) what, at which stage, with the reply.
fn reject_message(role: &str, r: &Reject, reply: &str) -> String {
    let verb = match action_code(r) {
        Some(FindingCode::Held) => "held",
        Some(FindingCode::Discarded) => "discarded",
        _ => "rejected",
    };
    let stage = if r.stage.is_empty() {
        "the message"
    } else {
        r.stage.as_str()
    };
    format!(
        "{role} {verb} {stage}{}{}{}: {}",
        r.from
            .as_deref()
            .map(|f| format!(" from <{f}>"))
            .unwrap_or_default(),
        r.to.as_deref()
            .map(|t| format!(" to <{t}>"))
            .unwrap_or_default(),
        r.client
            .as_deref()
            .map(|c| format!(" (client {c})"))
            .unwrap_or_default(),
        clip(reply, 300)
    )
}

/// A reject of a command that starts no message: postscreen's or smtpd's `CONNECT`, `EHLO` or
/// `HELO` (with `smtpd_delay_reject = no`), `VRFY`, `EXPN`, `ETRN`. No sender was given and
/// nothing was sent, so it is no message (a VRFY names an address, but only asks about it). A
/// DISCARD or HOLD at those stages applies to the mail the client then sends, so only a
/// reject is meant.
fn refuses_no_message(r: &Reject) -> bool {
    r.queue_id.is_none()
        && matches!(r.action.as_str(), "reject" | "milter-reject")
        && r.from.is_none()
        && matches!(
            r.stage.as_str(),
            "CONNECT" | "EHLO" | "HELO" | "VRFY" | "EXPN" | "ETRN"
        )
}

impl Correlator {
    pub(super) fn on_reject(&mut self, rec: &LogRecord, r: &Reject) {
        let ts = rec.timestamp;
        let limits = self.limits;
        let code = action_code(r).unwrap_or_else(|| {
            classify_smtp_reply(r.code.unwrap_or(0), r.dsn.as_deref(), &r.reason)
        });
        let reply = reply_text(r);
        if refuses_no_message(r) {
            // Nothing was sent: a host finding, not a message. Its cause keeps its code
            // (postscreen's `too many connections` is a rate limit), but a VRFY's unknown or
            // foreign address is no recipient to create or domain to relay.
            let code = match code {
                FindingCode::RecipientUnknown | FindingCode::RelayAccessDenied => {
                    FindingCode::RejectedOther
                }
                c => c,
            };
            let msg = reject_message(&rec.role, r, &reply);
            self.client_finding(code, &rec.role, msg, rec);
            return;
        }
        let (code, explaining) =
            self.explaining_problems(&rec.role, ts, code, rec.pid, r.queue_id.as_deref());
        let mut f = Finding::new(code, Some(&rec.role), reject_message(&rec.role, r, &reply));
        f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
        for e in &explaining {
            f.add_evidence(e, limits.max_evidence);
        }
        f.seen(ts);
        match &r.queue_id {
            Some(q) => self.on_queued_reject(rec, r, q, &reply, f),
            None => self.on_noqueue_reject(rec, r, f),
        }
    }

    /// A reject of a message that has a queue id: one recipient (RCPT) or the whole message.
    fn on_queued_reject(&mut self, rec: &LogRecord, r: &Reject, q: &str, reply: &str, f: Finding) {
        let limits = self.limits;
        // A reject comes while its transaction is open: after the entry's queue file is gone,
        // the queue id was given to another message (as for `client=`).
        let cid = self.fresh_entry_chain(&rec.role, q, rec.timestamp, rec.subsecond);
        let Some(ch) = self.chains.get_mut(&cid) else {
            return;
        };
        if let Some(e) = ch.entry_mut(&rec.role, q) {
            // A HOLD holds the whole message, whichever stage triggered it (smtpd's `QID: hold:
            // RCPT from ...`, a milter's `milter-hold`): the client was told 250.
            let held = action_code(r) == Some(FindingCode::Held);
            if r.stage == "RCPT" && !held {
                if let Some(rc) = e.rcpt_mut(r.to.as_deref().unwrap_or_default()) {
                    rc.status = if r.is_temporary() {
                        RcptStatus::Refused
                    } else {
                        RcptStatus::Rejected
                    };
                    rc.rejected = Some(Box::new(RcptReject {
                        dsn: r.dsn.clone(),
                        reply: clip(reply, 300),
                    }));
                }
            } else {
                // The whole message: its recipient (cleanup names one) is the message's too.
                if let Some(to) = r.to.as_deref() {
                    e.rcpt_mut(to);
                }
                if held {
                    e.held = true;
                } else if r.is_temporary() {
                    // A milter's or cleanup's 4xx (greylisting): the queue file is dropped and
                    // the client tries again later, as after a NOQUEUE 4xx.
                    e.refused = Some(clip(reply, 300));
                    e.refusal_dsn = r.dsn.clone();
                } else {
                    e.rejected = Some(clip(reply, 300));
                    e.refusal_dsn = r.dsn.clone();
                }
            }
            if e.from.is_none() {
                e.from = r.from.clone();
            }
        }
        ch.add_line(&rec.raw, &limits, &mut self.line_budget);
        ch.touch(rec.timestamp);
        ch.add_finding(f, &limits, true, &mut self.line_budget);
    }

    /// A NOQUEUE reject: a chain of its own, joined with the upstream delivery failure that
    /// quotes it if that was logged first (else the failure finds it by `find_noqueue`).
    fn on_noqueue_reject(&mut self, rec: &LogRecord, r: &Reject, f: Finding) {
        let limits = self.limits;
        let ts = rec.timestamp;
        let mut cid = self.new_chain();
        if let Some(ch) = self.chains.get_mut(&cid) {
            ch.noqueue.push(NoQueue {
                host: rec.role.clone(),
                reject: r.clone(),
                at: ts,
            });
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
            ch.touch(ts);
            ch.add_finding(f, &limits, true, &mut self.line_budget);
        }
        let Some(to) = &r.to else {
            return;
        };
        let key = to.as_str().to_ascii_lowercase();
        if let Some(up) = self.upstream_failure_quoting(&rec.role, &key, ts, r) {
            // The reject's finding (cause side) absorbs the upstream bounce's.
            cid = self.merge(up, cid);
        }
        let v = self.noqueue_by_rcpt.entry(key).or_default();
        if !v.contains(&cid) {
            v.push(cid);
        }
    }

    /// The chain of a recent delivery failure on another host, to this recipient from the same
    /// sender within the window, whose reason quotes this reject's reply.
    fn upstream_failure_quoting(
        &self,
        host: &Arc<str>,
        to_key: &str,
        ts: Option<DateTime<Utc>>,
        r: &Reject,
    ) -> Option<ChainId> {
        self.failure_elsewhere(host, to_key, ts, |x| {
            quotes_reply(&x.reason, r) && senders_agree(x.from.as_deref(), r.from.as_deref())
        })
        .map(|x| x.chain)
        .filter(|c| self.chains.contains_key(c))
    }

    /// The NOQUEUE reject chain (on another host, within the window, same sender) whose reply
    /// a delivery failure to `to_key` quotes: the next hop refused what this host tried to
    /// deliver.
    pub(super) fn find_noqueue(
        &self,
        host: &str,
        to_key: &str,
        from: Option<&str>,
        ts: Option<DateTime<Utc>>,
        reason: &str,
    ) -> Option<ChainId> {
        let v = self.noqueue_by_rcpt.get(to_key)?;
        v.iter().rev().copied().find(|cid| {
            self.chains.get(cid).is_some_and(|ch| {
                ch.entries.is_empty()
                    && ch.noqueue.iter().any(|nq| {
                        &*nq.host != host
                            && within(nq.at, ts, self.limits.link_window)
                            && quotes_reply(reason, &nq.reject)
                            && senders_agree(from, nq.reject.from.as_deref())
                    })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnosis::FindingCode;
    use crate::fusion::tests::feed;
    use crate::fusion::{Correlator, HopStatus, Limits, MessageStatus};

    /// A later client's NOQUEUE reject on the MX (`451 4.3.0 ... Temporary lookup failure`) to
    /// the same sender and recipient is not the reply the next hop's LMTP failure quotes (`451
    /// 4.2.0 ... Internal error`): the delivered message stays delivered, the reject stays a
    /// message of its own. Seen in the lab with transport-unmapped after mailstore-permission.
    #[test]
    fn a_reject_sharing_only_the_reply_code_is_not_the_quoted_one() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Dec  5 22:38:58 mx postfix/smtpd[12549]: 34CF71802AE: client=unknown[198.18.1.1]\n\
             Dec  5 22:38:58 mx postfix/cleanup[12547]: 34CF71802AE: message-id=<u0176@internet.test>\n\
             Dec  5 22:38:58 mx postfix/qmgr[12056]: 34CF71802AE: from=<frank@internet.test>, size=415, nrcpt=1 (queue active)\n\
             Dec  5 22:38:58 mx postfix/smtp[15697]: 34CF71802AE: to=<bob@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 3570C1802E1)",
        );
        feed(
            &mut c,
            "dell",
            "Dec  5 22:38:58 dell postfix/smtpd[15696]: 3570C1802E1: client=unknown[100.64.0.1]\n\
             Dec  5 22:38:58 dell postfix/qmgr[11981]: 3570C1802E1: from=<frank@internet.test>, size=584, nrcpt=1 (queue active)\n\
             Dec  5 22:39:33 dell postfix/lmtp[12130]: 3570C1802E1: to=<bob@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=35, delays=35/0/0/0, dsn=4.2.0, status=deferred (host dell.corp.test[private/dovecot-lmtp] said: 451 4.2.0 <bob@corp.test> Internal error occurred. Refer to server log for more information. (in reply to end of DATA command))",
        );
        feed(
            &mut c,
            "ec2",
            "Dec  5 22:39:44 mx postfix/smtpd[24082]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 451 4.3.0 <bob@corp.test>: Temporary lookup failure; from=<frank@internet.test> to=<bob@corp.test> proto=ESMTP helo=<client.internet.test>",
        );
        feed(
            &mut c,
            "dell",
            "Dec  5 22:39:42 dell postfix/lmtp[23705]: 3570C1802E1: to=<bob@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=44, delays=44/0.03/0/0.02, dsn=2.0.0, status=sent (250 2.0.0 <bob@corp.test> +H93EK6SFGuhXAAAn00ZSw Saved)",
        );
        let out = c.finish_all();
        assert_eq!(out.messages.len(), 2, "{:#?}", out.messages);
        let m = out
            .messages
            .iter()
            .find(|m| m.message_id.is_some())
            .unwrap();
        assert_eq!(m.status, MessageStatus::Delivered, "{m:#?}");
        assert!(m
            .findings
            .iter()
            .all(|f| f.code != FindingCode::LookupFailure));
        let reject = out
            .messages
            .iter()
            .find(|m| m.message_id.is_none())
            .unwrap();
        assert_eq!(reject.findings[0].code, FindingCode::LookupFailure);
    }

    /// Rejects of commands that start no message (fail2ban's and postfix_exporter's test
    /// lines): no message is counted, and host findings of their causes name the clients; a
    /// DISCARD at CONNECT and a RCPT reject beside them stay messages.
    #[test]
    fn a_reject_before_any_message_is_the_hosts_not_a_message() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Aug 10 10:55:38 mx postfix/smtpd[2162]: NOQUEUE: reject: VRFY from 72-53-132-234.cpe.distributel.net[72.53.132.234]: 550 5.1.1 <root>: Recipient address rejected: User unknown in local recipient table; to=<root> proto=SMTP\n\
             Aug 10 10:55:39 mx postfix/smtpd[3462]: NOQUEUE: reject: EHLO from s271272.static.corbina.ru[78.107.251.238]: 504 5.5.2 <User>: Helo command rejected: need fully-qualified hostname; proto=SMTP helo=<User>\n\
             Aug 10 10:55:40 mx postfix/postscreen[12345]: NOQUEUE: reject: CONNECT from [123.45.67.89]:12345: too many connections\n\
             Aug 10 10:55:41 mx postfix/smtpd[3463]: NOQUEUE: discard: CONNECT from unknown[198.18.1.7]: <unknown[198.18.1.7]>: Client host triggers DISCARD action; proto=ESMTP helo=<x>\n\
             Aug 10 10:55:42 mx postfix/smtpd[3464]: NOQUEUE: reject: RCPT from unknown[198.18.1.8]: 554 5.7.1 <b@x.test>: Relay access denied; from=<a@example.org> to=<b@x.test> proto=ESMTP helo=<pc>",
        );
        let out = c.finish_all();
        let statuses: Vec<_> = out.messages.iter().map(|m| m.status).collect();
        assert_eq!(
            statuses,
            [MessageStatus::Rejected, MessageStatus::Rejected],
            "{:#?}",
            out.messages
        );
        let codes: Vec<_> = out.messages.iter().map(|m| m.findings[0].code).collect();
        assert_eq!(
            codes,
            [FindingCode::Discarded, FindingCode::RelayAccessDenied]
        );
        let f = out
            .host_findings
            .iter()
            .find(|f| f.code == FindingCode::RejectedOther)
            .expect("a host finding");
        assert_eq!(f.count, 2, "{f:#?}");
        assert!(
            f.message.starts_with("ec2 rejected VRFY to <root>"),
            "{f:#?}"
        );
        assert!(f.message.contains("and 1 other"), "{f:#?}");
        let codes: Vec<_> = out.host_findings.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [FindingCode::RateLimited, FindingCode::RejectedOther],
            "{:#?}",
            out.host_findings
        );
    }

    #[test]
    fn held_and_discarded_messages_are_named_as_such() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  7 12:00:00 mx postfix/cleanup[2]: 5A5A5A5A5A: hold: header Subject: offer from unknown[198.18.1.1]; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>: Held\n\
             Nov  7 12:00:01 mx postfix/cleanup[2]: 6B6B6B6B6B: milter-hold: END-OF-MESSAGE from unknown[198.18.1.1]: milter triggers HOLD action; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>\n\
             Nov  7 12:00:02 mx postfix/qmgr[3]: 7C7C7C7C7C: from=<a@provider.test>, size=900, nrcpt=1 (queue active)\n\
             Nov  7 12:00:03 mx postfix/postsuper[9]: 7C7C7C7C7C: placed on hold\n\
             Nov  7 12:00:04 mx postfix/cleanup[2]: 8D8D8D8D8D: milter-discard: END-OF-MESSAGE from unknown[198.18.1.1]: milter triggers DISCARD action; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>\n\
             Nov  7 12:00:05 mx postfix/cleanup[2]: 9E9E9E9E9E: discard: header Subject: offer from unknown[198.18.1.1]; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>: Dropped",
        );
        let ms = c.finish();
        for (qid, code, says) in [
            ("5A5A5A5A5A", FindingCode::Held, "ec2 held header"),
            ("6B6B6B6B6B", FindingCode::Held, "ec2 held END-OF-MESSAGE"),
            (
                "7C7C7C7C7C",
                FindingCode::Held,
                "ec2 held the message: placed on hold (postsuper -h)",
            ),
            (
                "8D8D8D8D8D",
                FindingCode::Discarded,
                "ec2 discarded END-OF-MESSAGE",
            ),
            ("9E9E9E9E9E", FindingCode::Discarded, "ec2 discarded header"),
        ] {
            let m = ms
                .iter()
                .find(|m| m.hops[0].queue_id.as_deref() == Some(qid))
                .unwrap();
            assert!(
                m.findings
                    .iter()
                    .find(|f| f.code == code)
                    .expect("its finding")
                    .message
                    .starts_with(says),
                "{m:#?}"
            );
            // A held message stays in the queue, held (a failure: it waits for someone); a
            // discarded one is gone.
            assert_eq!(m.complete, code == FindingCode::Discarded, "{qid}");
            let (hop, status) = match code {
                FindingCode::Held => (HopStatus::Held, MessageStatus::Held),
                _ => (HopStatus::Rejected, MessageStatus::Rejected),
            };
            assert_eq!((m.hops[0].status, m.status), (hop, status), "{qid}");
            assert!(m.status.is_failure());
            if qid != "7C7C7C7C7C" {
                assert_eq!(m.to, ["c@corp.test"], "{qid}");
            }
        }
    }

    /// A 4xx NOQUEUE reject is temporary (the client keeps the message and retries): refused
    /// and deferred; a 5xx one is rejected.
    #[test]
    fn a_temporary_reject_is_deferred_a_permanent_one_rejected() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  7 12:00:00 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.5]: 450 4.2.0 <b@corp.test>: Recipient address rejected: Greylisted; from=<a@x.example> to=<b@corp.test> proto=ESMTP helo=<x>\n\
             Nov  7 12:00:01 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.6]: 554 5.7.1 <c@corp.test>: Relay access denied; from=<a@x.example> to=<c@corp.test> proto=ESMTP helo=<x>",
        );
        let ms = c.finish();
        let of = |to: &str| {
            let m = ms.iter().find(|m| m.to.iter().any(|t| t == to)).unwrap();
            (m.hops[0].status, m.status, m.findings[0].code)
        };
        assert_eq!(
            of("b@corp.test"),
            (
                HopStatus::Refused,
                MessageStatus::Deferred,
                FindingCode::RateLimited
            )
        );
        assert_eq!(
            of("c@corp.test"),
            (
                HopStatus::Rejected,
                MessageStatus::Rejected,
                FindingCode::RelayAccessDenied
            )
        );
    }

    /// A RCPT reject logged with the transaction's queue id (an earlier RCPT was accepted) is
    /// read as the NOQUEUE one is: a 4xx refused and deferred, a 5xx rejected; the hop, with
    /// no delivery attempt, carries the reject's code and reply.
    #[test]
    fn a_queued_rcpt_reject_is_deferred_when_temporary_and_names_its_reply() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Dec 19 19:42:14 mx postfix/submission/smtpd[21]: D155CDC24C: client=unknown[192.0.2.5], sasl_method=LOGIN, sasl_username=u@corp.test\n\
             Dec 19 19:42:14 mx postfix/submission/smtpd[21]: D155CDC24C: reject: RCPT from unknown[192.0.2.5]: 450 4.7.1 <>: Sender address rejected: You are sending too many emails; from=<> to=<b@corp.test> proto=ESMTP helo=<x>\n\
             Feb  8 21:28:47 mx postfix/smtpd[36]: DE81A2E2DA: client=unknown[192.0.2.6]\n\
             Feb  8 21:28:47 mx postfix/smtpd[36]: DE81A2E2DA: reject: RCPT from unknown[192.0.2.6]: 550 5.1.1 <c@corp.test>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@x.example> to=<c@corp.test> proto=ESMTP helo=<x>",
        );
        let ms = c.finish();
        let of = |to: &str| {
            let m = ms.iter().find(|m| m.to.iter().any(|t| t == to)).unwrap();
            let h = &m.hops[0];
            (h.status, m.status, h.dsn.clone(), h.reason.clone())
        };
        let (hop, status, dsn, reason) = of("b@corp.test");
        assert_eq!((hop, status), (HopStatus::Refused, MessageStatus::Deferred));
        assert_eq!(dsn.as_deref(), Some("4.7.1"));
        assert!(reason.unwrap().starts_with("450 4.7.1 <>: Sender address"));
        let (hop, status, dsn, reason) = of("c@corp.test");
        assert_eq!(
            (hop, status),
            (HopStatus::Rejected, MessageStatus::Rejected)
        );
        assert_eq!(dsn.as_deref(), Some("5.1.1"));
        assert!(reason.unwrap().starts_with("550 5.1.1 <c@corp.test>"));
    }

    /// What becomes of a held message: released and sent, released and still waiting, deleted
    /// while held, and held after a deferral (no longer retried).
    #[test]
    fn a_held_message_is_held_until_released_or_deleted() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  7 12:00:00 mx postfix/cleanup[2]: 1A1A1A1A1A: hold: header Subject: a from unknown[198.18.1.1]; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>: Held
\
             Nov  7 12:00:00 mx postfix/cleanup[2]: 2B2B2B2B2B: hold: header Subject: b from unknown[198.18.1.1]; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>: Held
\
             Nov  7 12:00:00 mx postfix/cleanup[2]: 3C3C3C3C3C: hold: header Subject: c from unknown[198.18.1.1]; from=<a@provider.test> to=<c@corp.test> proto=ESMTP helo=<x>: Held
\
             Nov  7 12:00:01 mx postfix/qmgr[3]: 4D4D4D4D4D: from=<a@provider.test>, size=900, nrcpt=1 (queue active)
\
             Nov  7 12:00:01 mx postfix/smtp[4]: 4D4D4D4D4D: to=<c@corp.test>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: Connection refused)
\
             Nov  7 12:00:05 mx postfix/postsuper[9]: 1A1A1A1A1A: released from hold
\
             Nov  7 12:00:05 mx postfix/postsuper[9]: 2B2B2B2B2B: released from hold
\
             Nov  7 12:00:05 mx postfix/postsuper[9]: 3C3C3C3C3C: removed
\
             Nov  7 12:00:05 mx postfix/postsuper[9]: 4D4D4D4D4D: placed on hold
\
             Nov  7 12:00:06 mx postfix/qmgr[3]: 1A1A1A1A1A: from=<a@provider.test>, size=900, nrcpt=1 (queue active)
\
             Nov  7 12:00:06 mx postfix/smtp[4]: 1A1A1A1A1A: to=<c@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=6, delays=5/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5E5E5E5E5E)
\
             Nov  7 12:00:06 mx postfix/qmgr[3]: 1A1A1A1A1A: removed",
        );
        let ms = c.finish();
        for (qid, hop, status) in [
            ("1A1A1A1A1A", HopStatus::Sent, MessageStatus::Delivered),
            ("2B2B2B2B2B", HopStatus::Queued, MessageStatus::Queued),
            ("3C3C3C3C3C", HopStatus::Removed, MessageStatus::Unknown),
            ("4D4D4D4D4D", HopStatus::Held, MessageStatus::Held),
        ] {
            let m = ms
                .iter()
                .find(|m| m.hops[0].queue_id.as_deref() == Some(qid))
                .unwrap();
            assert_eq!((m.hops[0].status, m.status), (hop, status), "{qid}: {m:#?}");
        }
    }
}
