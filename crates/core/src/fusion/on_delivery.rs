//! Correlator handler for a Postfix delivery attempt (`to=<..>, relay=.., status=..`): records
//! the attempt on its recipient, turns a failure into a finding (explained by nearby Dovecot and
//! host warning lines, joined with the next hop's NOQUEUE reject it quotes), and follows the
//! hand-off to the next host (`queued as`) or to Dovecot (LMTP session id). Rejects and
//! Dovecot's own lines have their modules (`on_reject`, `on_dovecot`).

use chrono::{DateTime, Utc};

use crate::diagnosis::{classify_delivery, classify_text, delivery_peer, Finding, FindingCode};
use crate::logs::{Delivery, DeliveryStatus, LogRecord};

use super::chain::{clip, generic, within, Attempt, ChainId, RcptStatus};
use super::correlator::{remember, Correlator, RecentFailure, RecentLine};
use super::links::Handoff;
use super::on_dovecot::same_client;

/// A failed delivery's classification and the lines that show it.
struct Failure {
    code: FindingCode,
    evidence: Vec<String>,
}

impl Correlator {
    pub(super) fn on_delivery(&mut self, rec: &LogRecord, d: &Delivery) {
        let (mut cid, failure, from) = self.record_attempt(rec, d);
        cid = self.join_lda_save(rec, d, cid);
        if let Some(failure) = failure {
            cid = self.on_delivery_failure(rec, d, cid, failure, from);
        }
        if d.status == DeliveryStatus::Sent {
            let verdict = filter_verdict(&d.reason);
            let discarded = verdict.is_some_and(|v| v.starts_with("DISCARD("));
            if d.service == "discard" || discarded || filter_discarded(&d.reason) {
                self.on_discarded(rec, d, cid);
            } else if verdict == Some("BOUNCE") {
                self.on_filter_bounced(rec, d, cid);
            }
        }
        if let Some(next) = d.queued_as.as_ref().filter(|n| **n != d.queue_id) {
            let handoff = Handoff::new(
                rec.role.clone(),
                rec.timestamp,
                rec.subsecond,
                d.delays,
                d.relay.as_deref(),
            );
            self.on_queued_as(cid, next, handoff);
        }
        if let Some(s) = &d.lmtp_session {
            self.join_lmtp_session(cid, s);
        }
    }

    /// File the line and the attempt with the recipient of its queue entry. Returns the chain,
    /// the failure (if the attempt failed; the entry's pending detail lines may name a generic
    /// failure more precisely and join its evidence) and, for a failure, the entry's sender.
    fn record_attempt(
        &mut self,
        rec: &LogRecord,
        d: &Delivery,
    ) -> (ChainId, Option<Failure>, Option<String>) {
        let ts = rec.timestamp;
        let limits = self.limits;
        let cid = self.entry_chain(&rec.role, &d.queue_id, ts, rec.subsecond);
        let mut failure =
            classify_delivery(d.status, d.dsn.as_deref(), &d.reason).map(|code| Failure {
                code,
                evidence: vec![clip(&rec.raw, limits.max_line_bytes)],
            });
        let mut from = None;
        let Some(ch) = self.chains.get_mut(&cid) else {
            return (cid, failure, from);
        };
        ch.add_line(&rec.raw, &limits, &mut self.line_budget);
        ch.touch(ts);
        let Some(e) = ch.entry_mut(&rec.role, &d.queue_id) else {
            return (cid, failure, from);
        };
        if failure.is_some() {
            // Only a failure is joined by sender.
            from = e.from.as_deref().map(String::from);
        }
        e.last_seen = ts.or(e.last_seen);
        if let Some(f) = &mut failure {
            for dc in e.details.iter().filter_map(|det| classify_text(det)) {
                if generic(f.code) {
                    f.code = dc;
                }
            }
            f.evidence.extend(e.details.drain(..));
        }
        let status = match d.status {
            DeliveryStatus::Sent => RcptStatus::Sent,
            DeliveryStatus::Verify => RcptStatus::Verified,
            DeliveryStatus::Deferred | DeliveryStatus::Other => RcptStatus::Deferred,
            DeliveryStatus::Bounced => RcptStatus::Bounced,
        };
        if let Some(r) = e.rcpt_mut(&d.to) {
            r.attempts += 1;
            r.status = status;
            r.last = Some(Attempt {
                service: d.service.clone(),
                relay: d.relay.clone(),
                delay_ms: d.delay_ms,
                delays: d.delays,
                dsn: d.dsn.clone(),
                reason: clip(&d.reason, limits.max_line_bytes),
                queued_as: d.queued_as.clone(),
                lmtp_session: d.lmtp_session.clone(),
                at: ts,
                subsecond: rec.subsecond,
            });
        }
        (cid, failure, from)
    }

    /// discard(8) "delivered" the recipient: a transport map (or a content filter's reply)
    /// sent it to `discard:`, which drops it and logs `status=sent`. Or a content filter took it
    /// and threw it away (amavisd-new's `250 2.7.0 Ok, discarded, id=... - INFECTED: ...`).
    /// Nobody receives it: the recipient is discarded, as by an access table's DISCARD action,
    /// and a finding says so.
    fn on_discarded(&mut self, rec: &LogRecord, d: &Delivery, cid: ChainId) {
        let msg = if d.service == "discard" {
            format!(
                "{}: the discard transport dropped the message to <{}> ({}): a transport map or \
                 content filter routes it to discard:",
                rec.role,
                d.to,
                clip(&d.reason, 200)
            )
        } else {
            format!(
                "{}: the content filter at {} discarded the message to <{}> after accepting it \
                 ({})",
                rec.role,
                d.relay.as_deref().unwrap_or("?"),
                d.to,
                clip(&d.reason, 200)
            )
        };
        let outcome = (RcptStatus::Rejected, FindingCode::Discarded);
        self.sent_but_not_delivered(rec, d, cid, outcome, msg);
    }

    /// A content filter took the message, blocked it and returned it to its sender itself
    /// (amavisd-new's `250 2.5.0 Ok, id=18438-02, BOUNCE`): Postfix logs `status=sent`, but the
    /// recipient gets nothing and the sender a bounce.
    fn on_filter_bounced(&mut self, rec: &LogRecord, d: &Delivery, cid: ChainId) {
        let msg = format!(
            "{}: the content filter at {} blocked the message to <{}> and returned it to the \
             sender ({}): the filter's own log and quarantine name its verdict (a banned attachment, \
             a virus, spam)",
            rec.role,
            d.relay.as_deref().unwrap_or("?"),
            d.to,
            clip(&d.reason, 200)
        );
        let outcome = (RcptStatus::Bounced, FindingCode::BouncedOther);
        self.sent_but_not_delivered(rec, d, cid, outcome, msg);
    }

    /// A `status=sent` that delivered nothing: the recipient takes the status it really had,
    /// and the line is the evidence of a finding with `msg`.
    fn sent_but_not_delivered(
        &mut self,
        rec: &LogRecord,
        d: &Delivery,
        cid: ChainId,
        (status, code): (RcptStatus, FindingCode),
        msg: String,
    ) {
        let limits = self.limits;
        let Some(ch) = self.chains.get_mut(&cid) else {
            return;
        };
        if let Some(r) = ch
            .entry_mut(&rec.role, &d.queue_id)
            .and_then(|e| e.rcpt_mut(&d.to))
        {
            r.status = status;
        }
        let mut f = Finding::new(code, Some(&rec.role), msg);
        f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
        f.seen(rec.timestamp);
        ch.add_finding(f, &limits, false, &mut self.line_budget);
    }

    /// A failed attempt: explain it, join the next hop's reject it quotes, add its finding and
    /// remember it for lines logged after it. Returns the (possibly merged) chain.
    fn on_delivery_failure(
        &mut self,
        rec: &LogRecord,
        d: &Delivery,
        mut cid: ChainId,
        mut failure: Failure,
        from: Option<String>,
    ) -> ChainId {
        let role = &rec.role;
        let ts = rec.timestamp;
        let limits = self.limits;
        let to_key = d.to.to_ascii_lowercase();
        // Dovecot's own error line explains LMTP's generic "Internal error occurred".
        if d.service == "lmtp" || d.service == "lda" {
            self.explain_by_dovecot(cid, &to_key, (ts, rec.pid), &mut failure);
        }
        if d.service == "lmtp" && generic(failure.code) {
            if let Some(crash) = self.lmtp_crash_near(role, ts) {
                failure.code = FindingCode::ServiceError;
                failure.evidence.push(crash);
            }
        }
        // Host warnings that explain it (e.g. transport.db unavailable next to "address
        // resolver failure"). Any process's warning when the failure is a local one: the
        // delivery agent's failure follows another's (trivial-rewrite's failed transport lookup,
        // then the agent's "address resolver failure"). A failure the remote side or the
        // network caused is explained only by the agent's own warnings (a TLS library problem).
        let pid = if remote_cause(&d.reason) {
            rec.pid
        } else {
            None
        };
        let quoted = failure.code;
        let (code, ev) = self.explaining_problems(role, ts, failure.code, pid, Some(&d.queue_id));
        failure.code = code;
        failure.evidence.extend(ev);
        if code == FindingCode::TlsError {
            let tls = self.agent_tls_lines(role, ts, rec.pid);
            failure.evidence.extend(tls);
        }
        // The next hop's NOQUEUE reject of this very recipient: join it (its finding, from the
        // rejecting side, absorbs this one when the codes agree).
        if let Some(nq) = self.find_noqueue(role, &to_key, from.as_deref(), ts, &d.reason) {
            cid = self.merge(cid, nq);
        }
        // The next hop's cleanup refused it (a failed map lookup) and it says so.
        cid = self.join_quoted_refusal(role, &d.queue_id, &to_key, ts, &d.reason, cid);
        let what = match d.status {
            DeliveryStatus::Bounced => "bounced",
            _ => "deferred",
        };
        let msg = format!(
            "{role}: delivery to <{}> {what} via {} (relay={}): {}",
            d.to,
            d.service,
            d.relay.as_deref().unwrap_or("none"),
            clip(&d.reason, 300)
        );
        let mut f = Finding::new(failure.code, Some(role), msg);
        // The server it talked to, for a finding about that server: the runbook's texts for
        // the role's next hop are wrong for another one (an Internet MX a bounce goes to).
        if code.about_peer() {
            f.peer = delivery_peer(&d.reason, d.relay.as_deref());
            if f.peer.is_some() {
                f.rehint();
            }
        }
        // The next hop's own trouble in its reply (`host X said: 451 4.3.0 ... Temporary lookup
        // failure`, `452 4.3.1 Insufficient system storage`, `refused to talk to me: 450 Server
        // configuration problem`) is that server's, not this host's: the message still waits
        // here (its stage), the fix is on the server that said it.
        let theirs = matches!(
            code,
            FindingCode::LookupFailure | FindingCode::DiskFull | FindingCode::ServiceError
        );
        if code == quoted && theirs {
            if let Some(speaker) = reply_speaker(&d.reason) {
                f.host = Some(speaker.to_owned());
                f.rehint();
            }
        }
        for ev in &failure.evidence {
            f.add_evidence(ev, limits.max_evidence);
        }
        f.seen(ts);
        if let Some(ch) = self.chains.get_mut(&cid) {
            let bounce = (d.status == DeliveryStatus::Bounced)
                .then(|| (f.code, f.host.clone(), f.message.clone()));
            ch.add_finding(f, &limits, false, &mut self.line_budget);
            if let Some((code, host, message)) = bounce {
                ch.lead_with_bounce(code, host.as_deref(), message);
            }
        }
        remember(
            &mut self.recent_failures,
            RecentFailure {
                host: role.clone(),
                qid: d.queue_id.clone(),
                to: to_key,
                from,
                at: ts,
                chain: cid,
                service: d.service.clone(),
                reason: clip(&d.reason, 300),
                pid: rec.pid,
            },
        );
        cid
    }

    /// The latest Dovecot error for this recipient within the window (one that names no other
    /// message than chain `cid`'s, and names a cause when one does) joins the evidence, and
    /// names a generic failure.
    /// `at` is the failure's time and its delivery agent's process: a Dovecot line that names
    /// another LMTP client served another delivery.
    fn explain_by_dovecot(
        &self,
        cid: ChainId,
        to_key: &str,
        at: (Option<DateTime<Utc>>, Option<u32>),
        failure: &mut Failure,
    ) {
        let (ts, agent) = at;
        let ours = |r: &&RecentLine| {
            r.key == to_key
                && within(r.at, ts, self.client_window(r.conn_pid))
                && self.chain_is_msgid(cid, r.msgid.as_deref())
                && same_client(r.conn_pid, agent)
        };
        // The line that names a cause, else the latest (a session's closing words, such as
        // Sieve's `Execution of script ... was aborted`, follow the line with the cause).
        let mut lines = self.recent_dovecot.iter().rev().filter(ours);
        let hit = lines
            .clone()
            .find(|r| r.code.is_some())
            .or_else(|| lines.next());
        if let Some(r) = hit {
            if let (true, Some(dc)) = (generic(failure.code), r.code) {
                failure.code = dc;
            }
            failure.evidence.push(r.raw.clone());
        }
    }

    /// An LMTP hand-off's session id joins the chain with Dovecot's line of the same session
    /// (when their message-ids agree, and that chain is still open at the line's time, as the
    /// Dovecot lines' own joins ask: `still_open`) and samples the skew between the two.
    fn join_lmtp_session(&mut self, cid: ChainId, session: &str) {
        match self.sessions.get(session).copied() {
            Some(other) if other != cid && self.still_open(other) => {
                if self.compatible(cid, other) {
                    let keep = self.merge(cid, other);
                    self.sample_dovecot(keep, session);
                }
            }
            Some(_) => self.sample_dovecot(cid, session),
            None => {
                self.sessions.insert(session.into(), cid);
            }
        }
    }
}

/// A content filter's reply that it accepted the message and threw it away: amavisd-new's
/// `250 2.7.0 Ok, discarded, id=03491-01 - spam` (a blocked virus or spam whose destiny is
/// D_DISCARD). Looked for near the reply's start only: every delivered line asks.
fn filter_discarded(reason: &str) -> bool {
    let head = &reason.as_bytes()[..reason.len().min(40)];
    head.first() == Some(&b'2')
        && head
            .windows(13)
            .any(|w| w.eq_ignore_ascii_case(b"ok, discarded"))
}

/// The verdict after amavisd-new's `2xx X.X.X Ok, id=ID, ` in its replies for a message it
/// blocked, whose `Ok` is no delivery: `BOUNCE` (D_BOUNCE: `250 2.5.0 Ok, id=18438-02,
/// BOUNCE`, the filter bounced it to the sender itself) or `DISCARD(bounce.suppressed)` (the
/// bounce not sent). A plain pass (`250 2.0.0 Ok, id=..., from MTA(...): 250 2.0.0 Ok: queued
/// as X`) has none. Every delivered line asks: its end rules nearly all out at once.
fn filter_verdict(reason: &str) -> Option<&str> {
    let reason = reason.trim_ascii_end();
    if !(reason.ends_with(", BOUNCE") || reason.ends_with(')')) || !reason.starts_with('2') {
        return None;
    }
    let at = reason.find(" Ok, id=")?;
    let (_, verdict) = reason[at + 8..].split_once(", ")?;
    let word = verdict.split_once('(').map_or(verdict, |(w, _)| w);
    (!word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase())).then_some(verdict)
}

/// The server whose reply a delivery's reason quotes: `mx.example` of Postfix's `host
/// mx.example[192.0.2.1] said: ...` or `... refused to talk to me: ...` (its address when it has
/// no name).
fn reply_speaker(reason: &str) -> Option<&str> {
    let end = reason
        .find(" said: ")
        .or_else(|| reason.find(" refused to talk to me: "))?;
    let before = &reason[..end];
    let host = &before[before.rfind("host ")? + 5..];
    let (name, rest) = host.split_once('[')?;
    let name = match name {
        "" | "unknown" => rest.split_once(']')?.0,
        n => n,
    };
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

/// A delivery failure the next hop or the network caused, as Postfix words it: a reply, a lost
/// or refused connection, a timeout. No local table's warning is why it happened.
fn remote_cause(reason: &str) -> bool {
    [
        " said: ",
        "lost connection with ",
        "conversation with ",
        "connect to ",
        "refused to talk to me",
    ]
    .iter()
    .any(|m| reason.contains(m))
}
