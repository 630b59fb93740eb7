//! Correlator handlers for a Postfix queue entry's life: smtpd's `client=`, pickup, cleanup's
//! `message-id=` (which joins chains of the same message), qmgr's `queue active`, `expired`
//! (whole message or one recipient, with its finding) and `removed`, bounce notifications (an
//! expired message's notice joins its chain) and per-attempt detail lines. Delivery attempts and
//! rejects have their own modules (`on_delivery`, `on_reject`).

use crate::diagnosis::{Finding, FindingCode};
use crate::logs::{EventText, ExpiredRcpt, LogRecord};

use super::chain::{clip, Attempt, ChainId, Entry, RcptStatus};
use super::correlator::{Correlator, RecentClient};
use super::links::client_is_local;
use super::model::msgid_key;

/// How a queue entry's retries ended: by the queue's lifetime or by an administrator, and
/// whether a non-delivery notification went back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expiry {
    pub returned_to_sender: bool,
    pub forced: bool,
}

/// `client=` lines remembered for the disconnect of their smtpd process.
const RECENT_CLIENTS: usize = 1024;

impl Correlator {
    /// Add `f` to chain `cid`, evidenced by `rec`'s line (then `more`) and seen at its time.
    pub(super) fn add_record_finding(
        &mut self,
        cid: ChainId,
        rec: &LogRecord,
        mut f: Finding,
        more: &[String],
    ) {
        let limits = self.limits;
        f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
        for e in more {
            f.add_evidence(e, limits.max_evidence);
        }
        f.seen(rec.timestamp);
        if let Some(ch) = self.chains.get_mut(&cid) {
            ch.add_finding(f, &limits, true, &mut self.line_budget);
        }
    }

    /// The common shape of a queue entry's line: find (or open) the entry, let `update` change
    /// it, and file the line with its chain. Returns the chain.
    pub(super) fn on_entry_line(
        &mut self,
        rec: &LogRecord,
        queue_id: &str,
        update: impl FnOnce(&mut Entry),
    ) -> ChainId {
        let cid = self.entry_chain(&rec.role, queue_id, rec.timestamp, rec.subsecond);
        self.update_entry(rec, cid, queue_id, update)
    }

    /// [`Correlator::on_entry_line`] for a new message's first line: a removed entry with the
    /// same queue id is another message's (`fresh_entry_chain`).
    fn on_first_line(
        &mut self,
        rec: &LogRecord,
        queue_id: &str,
        update: impl FnOnce(&mut Entry),
    ) -> ChainId {
        let cid = self.fresh_entry_chain(&rec.role, queue_id, rec.timestamp, rec.subsecond);
        self.update_entry(rec, cid, queue_id, update)
    }

    /// The line of entry (role, queue_id) in chain `cid`: `update` the entry, keep the line.
    fn update_entry(
        &mut self,
        rec: &LogRecord,
        cid: ChainId,
        queue_id: &str,
        update: impl FnOnce(&mut Entry),
    ) -> ChainId {
        let limits = self.limits;
        if let Some(ch) = self.chains.get_mut(&cid) {
            if let Some(e) = ch.entry_mut(&rec.role, queue_id) {
                update(e);
            }
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
            ch.touch(rec.timestamp);
        }
        cid
    }

    pub(super) fn on_client(&mut self, rec: &LogRecord, queue_id: &str, client: &str) {
        // smtpd runs one transaction at a time: its next one ends the last. That one never
        // reached DATA when nothing but its `client=` line was logged (cleanup logs
        // `message-id=`, `<>` if the header is missing, before DATA's reply): RSET, or a
        // session of a Postfix older than 3.0, whose `disconnect` counts no commands.
        if let Some(last) = rec
            .pid
            .and_then(|pid| self.take_transaction(&rec.role, pid))
        {
            if last != queue_id {
                self.drop_bare_transaction(&rec.role, &last, None);
            }
        }
        self.on_first_line(rec, queue_id, |e| {
            e.client = Some(client.into());
            if e.arrived.is_none() {
                e.arrived = rec.timestamp;
                e.subsecond = rec.subsecond;
            }
        });
        if client_is_local(client) {
            self.on_local_client(&rec.role, queue_id);
        }
        if let Some(pid) = rec.pid {
            self.note_smtpd_transaction(rec, pid, queue_id);
        }
    }

    /// Remember that smtpd process `pid` announced `queue_id` (its last transaction was taken
    /// before). Only the latest [`RECENT_CLIENTS`] or so are kept: a session that ends without
    /// DATA does so within moments of its `client=` line (a callout's QUIT follows its RCPT at
    /// once), and a process that exited leaves its last one behind.
    fn note_smtpd_transaction(&mut self, rec: &LogRecord, pid: u32, queue_id: &str) {
        let seq = self.clients_noted;
        self.clients_noted += 1;
        if self.recent_clients.len() >= 2 * RECENT_CLIENTS {
            let oldest = seq.saturating_sub(RECENT_CLIENTS as u64);
            self.recent_clients.retain(|_, cs| {
                cs.retain(|c| c.seq >= oldest);
                !cs.is_empty()
            });
        }
        self.recent_clients
            .entry(pid)
            .or_default()
            .push(RecentClient {
                host: rec.role.clone(),
                qid: queue_id.into(),
                seq,
            });
    }

    /// smtpd's `disconnect` counted recipients and no DATA: the queue entry its `client=` line
    /// announced never held a message (Postfix removes it without a line). Left alone, it
    /// would be reported as a message of unknown fate; it is dropped and counted instead,
    /// unless something else was logged for it (a recipient's reject, a finding).
    pub(super) fn on_transaction_abandoned(&mut self, rec: &LogRecord, client: &str) {
        if let Some(qid) = rec
            .pid
            .and_then(|pid| self.take_transaction(&rec.role, pid))
        {
            self.drop_bare_transaction(&rec.role, &qid, Some(client));
        }
    }

    /// The queue id of the transaction smtpd process `pid` of `host` announced last, taken
    /// off the record.
    fn take_transaction(&mut self, host: &str, pid: u32) -> Option<EventText> {
        let cs = self.recent_clients.get_mut(&pid)?;
        let at = cs.iter().position(|c| *c.host == *host)?;
        let c = cs.swap_remove(at);
        if cs.is_empty() {
            self.recent_clients.remove(&pid);
        }
        Some(c.qid)
    }

    /// Drop and count (host, qid)'s chain when nothing but its `client=` line (from `client`,
    /// when given) was logged for it.
    fn drop_bare_transaction(&mut self, host: &str, qid: &str, client: Option<&str>) {
        let Some(cid) = self.find_entry(host, qid) else {
            return;
        };
        let bare = self
            .chains
            .get(&cid)
            .is_some_and(|ch| ch.only_announced(client));
        if bare && self.remove_chain(cid).is_some() {
            self.stats.transactions_abandoned += 1;
        }
    }

    pub(super) fn on_pickup(&mut self, rec: &LogRecord, queue_id: &str, from: &str) {
        self.on_first_line(rec, queue_id, |e| {
            e.from = Some(from.into());
            e.client = Some("local pickup".into());
        });
    }

    /// The message-id joins this entry's chain with any other chain of the same message.
    pub(super) fn on_message_id(&mut self, rec: &LogRecord, queue_id: &str, message_id: &str) {
        let mut notice = false;
        let update = |e: &mut Entry| {
            e.message_id = Some(message_id.into());
            notice = e.notice_of.is_some();
        };
        // cleanup names one Message-ID per entry, before the queue manager takes it: another
        // one after the entry's queue file is gone, or any one a second or more after an entry
        // that named none went, is a new message's under the reused queue id (a notification or
        // forwarded copy starts with this line; or its start is not in these logs).
        let mut cid = if self.gone_with_other_message_id(rec, queue_id, message_id) {
            self.on_first_line(rec, queue_id, update)
        } else {
            self.on_entry_line(rec, queue_id, update)
        };
        if notice {
            // A notification's own message-id is not the message's.
            return;
        }
        let key = msgid_key(message_id);
        if key.is_empty() {
            return;
        }
        match self.msgids.get(key).copied() {
            Some(other) if self.open_to_message_id(other) => {
                cid = self.merge(other, cid);
            }
            _ => {
                self.msgids.insert(key.into(), cid);
            }
        }
        self.bridge(key, cid);
        if let Some(ch) = self.chains.get_mut(&cid) {
            if ch.message_id.is_none() {
                ch.message_id = Some(message_id.into());
            }
        }
    }

    /// Whether (host, queue_id)'s entry is gone and named a Message-ID other than `message_id`,
    /// or named none and went before the second of `rec` (a line of the same second may have
    /// been written out of order).
    fn gone_with_other_message_id(
        &self,
        rec: &LogRecord,
        queue_id: &str,
        message_id: &str,
    ) -> bool {
        let host = &*rec.role;
        let Some(cid) = self.find_entry(host, queue_id) else {
            return false;
        };
        let went_before = |e: &Entry| matches!((e.last_seen, rec.timestamp), (Some(a), Some(b)) if a.timestamp() < b.timestamp());
        self.chains
            .get(&cid)
            .and_then(|ch| ch.entry(host, queue_id))
            .is_some_and(|e| {
                e.gone()
                    && match e.message_id.as_deref() {
                        Some(m) => m != message_id,
                        None => went_before(e),
                    }
            })
    }

    pub(super) fn on_queue_active(&mut self, rec: &LogRecord, queue_id: &str, from: &str) {
        self.on_entry_line(rec, queue_id, |e| {
            e.from = Some(from.into());
            e.qmgr_seen = true;
            e.last_seen = rec.timestamp.or(e.last_seen);
        });
    }

    /// Postfix gave up on the message (qmgr's whole-message line) or on one recipient (a
    /// per-recipient line, which carries that recipient's last relay, dsn and reason).
    pub(super) fn on_expired(
        &mut self,
        rec: &LogRecord,
        queue_id: &str,
        from: &str,
        rcpt: Option<&ExpiredRcpt>,
        how: Expiry,
    ) {
        let limits = self.limits;
        let mut last_reason = String::new();
        let cid = self.on_entry_line(rec, queue_id, |e| {
            // The sender, when the queue manager's earlier line is not in these logs (rotated
            // out: a message expires days after it arrived).
            if e.from.is_none() && !from.is_empty() {
                e.from = Some(from.into());
            }
            match rcpt {
                Some(x) => record_expired_rcpt(e, x, rec, limits.max_line_bytes),
                None => e.expired = true,
            }
            last_reason = last_reason_of(e);
        });
        // Its own code rather than the last deferral's: the deferral's finding (already on the
        // chain, with that cause's fix) says why delivery failed; this one says that retrying
        // has stopped and the sender must resend, which is what an operator acts on first.
        let what = match (how.forced, how.returned_to_sender) {
            (false, true) => "expired in queue, returned to sender",
            (false, false) => "expired in queue",
            (true, true) => "expired by an administrator (postsuper -e), returned to sender",
            (true, false) => "expired by an administrator (postsuper -e)",
        };
        let msg = if last_reason.is_empty() {
            format!("{}: {what}", rec.role)
        } else {
            format!("{}: {what}: {}", rec.role, clip(&last_reason, 300))
        };
        let f = Finding::new(FindingCode::Expired, Some(&rec.role), msg);
        self.add_record_finding(cid, rec, f, &[]);
    }

    pub(super) fn on_removed(&mut self, rec: &LogRecord, queue_id: &str) {
        let mut waiting = false;
        let cid = self.on_entry_line(rec, queue_id, |e| {
            waiting = e
                .rcpts
                .iter()
                .any(|r| matches!(r.status, RcptStatus::Deferred | RcptStatus::Pending))
                || e.held;
            e.removed = true;
            e.last_seen = rec.timestamp.or(e.last_seen);
        });
        // `postsuper -d`: an administrator deleted it from the queue; no retry and no bounce
        // follow.
        if waiting && rec.program.as_str().ends_with("/postsuper") {
            if let Some(ch) = self.chains.get_mut(&cid) {
                ch.add_note(format!(
                    "{}: deleted from the queue by postsuper (postsuper -d) before it was delivered; no retry or bounce follows",
                    rec.role
                ));
            }
        }
    }

    /// `postsuper -H`: the message is no longer held; the queue manager may send it again.
    pub(super) fn on_released(&mut self, rec: &LogRecord, queue_id: &str) {
        self.on_entry_line(rec, queue_id, |e| {
            e.held = false;
            e.last_seen = rec.timestamp.or(e.last_seen);
        });
    }

    /// A bounce/delay notification: the line is kept with the message. The notice of an
    /// expired message (same host) joins its chain as a notice, not as a hop or a message of
    /// its own: it is how the expiry reached the sender. The notice of a bounced delivery stays
    /// a message of its own, whose way back to the sender is reported like any message's.
    pub(super) fn on_notification(&mut self, rec: &LogRecord, queue_id: &str, notice_qid: &str) {
        let mut expired = false;
        let cid = self.on_entry_line(rec, queue_id, |e| {
            expired = e.expired || e.rcpts.iter().any(|r| r.status == RcptStatus::Expired);
        });
        if !expired || notice_qid == queue_id {
            return;
        }
        let host = &rec.role;
        let Some(ncid) = self.find_entry(host, notice_qid) else {
            // Not seen yet: open it in this chain, so that its lines find the message.
            if let Some(ch) = self.chains.get_mut(&cid) {
                let mut n = Entry::new(host.clone(), notice_qid, rec.timestamp, rec.subsecond);
                n.notice_of = Some(queue_id.to_owned());
                ch.entries.push(n);
            }
            self.qids
                .entry(notice_qid.into())
                .or_default()
                .push((host.clone(), cid));
            return;
        };
        // Only a chain that is nothing but the notification is taken over.
        let lone = self
            .chains
            .get(&ncid)
            .is_some_and(|c| c.entries.len() == 1 && c.dovecot.is_empty() && c.noqueue.is_empty());
        if ncid == cid || !lone {
            return;
        }
        let message_id = self.chains.get(&cid).and_then(|c| c.message_id.clone());
        let keep = self.merge(cid, ncid);
        if let Some(ch) = self.chains.get_mut(&keep) {
            // The notification's message-id is its own, not the message's.
            ch.message_id = message_id;
            if let Some(n) = ch.entry_mut(host, notice_qid) {
                n.notice_of = Some(queue_id.to_owned());
            }
        }
    }

    /// A per-attempt detail (`lost connection ...`): kept for the delivery line that follows,
    /// whose finding it may explain.
    pub(super) fn on_attempt_detail(&mut self, rec: &LogRecord, queue_id: &str) {
        let line = clip(&rec.raw, self.limits.max_line_bytes);
        self.on_entry_line(rec, queue_id, |e| e.add_detail(line));
    }

    /// A REDIRECT action: the message's recipients do not get it, `to` does; said in a note
    /// (a rule the operator wrote, not a failure, but why a probe never reaches its mailbox).
    pub(super) fn on_redirected(&mut self, rec: &LogRecord, queue_id: &str, to: &str) {
        let cid = self.on_entry_line(rec, queue_id, |_| {});
        if let Some(ch) = self.chains.get_mut(&cid) {
            ch.add_note(format!(
                "{} redirected the message to {} (a REDIRECT action of an access table, \
                 header_checks, body_checks or milter_header_checks): it goes there instead of to its \
                 recipients",
                rec.role,
                clip(to, 200)
            ));
        }
    }
}

/// A per-recipient expiry: the recipient's status, and its last relay, dsn and reason as the
/// attempt that describes it.
fn record_expired_rcpt(e: &mut Entry, x: &ExpiredRcpt, rec: &LogRecord, max_line: usize) {
    let service = rec.program.rsplit('/').next().unwrap_or_default().into();
    let Some(r) = e.rcpt_mut(&x.to) else {
        return;
    };
    r.status = RcptStatus::Expired;
    let prev = r.last.take();
    let reason = if x.reason.is_empty() {
        prev.as_ref().map(|a| a.reason.clone()).unwrap_or_default()
    } else {
        clip(&x.reason, max_line)
    };
    r.last = Some(Attempt {
        service,
        relay: x.relay.clone(),
        delay_ms: x.delay_ms,
        delays: prev.as_ref().and_then(|a| a.delays),
        dsn: x.dsn.clone(),
        reason,
        queued_as: None,
        lmtp_session: None,
        at: rec.timestamp,
        subsecond: rec.subsecond,
    });
}

/// The reason of the entry's latest failed attempt (the last deferral, for a message that
/// expired).
fn last_reason_of(e: &Entry) -> String {
    e.rcpts
        .iter()
        .filter(|r| r.status != RcptStatus::Sent)
        .filter_map(|r| r.last.as_ref())
        .filter(|a| !a.reason.is_empty())
        .max_by_key(|a| a.at)
        .map(|a| a.reason.clone())
        .unwrap_or_default()
}
