//! Correlator handlers for a Postfix queue entry's life: smtpd's `client=`, pickup, cleanup's
//! `message-id=` (which joins chains of the same message), qmgr's `queue active`, `expired`
//! and `removed`, bounce notifications and per-attempt detail lines. Delivery attempts and
//! rejects have their own modules (`on_delivery`, `on_reject`).

use crate::logs::LogRecord;

use super::chain::{clip, ChainId, Entry};
use super::correlator::Correlator;
use super::model::msgid_key;

impl Correlator {
    /// The common shape of a queue entry's line: find (or open) the entry, let `update` change
    /// it, and file the line with its chain. Returns the chain.
    fn on_entry_line(
        &mut self,
        rec: &LogRecord,
        queue_id: &str,
        update: impl FnOnce(&mut Entry),
    ) -> ChainId {
        let cid = self.entry_chain(&rec.role, queue_id, rec.timestamp, rec.subsecond);
        let limits = self.limits;
        if let Some(ch) = self.chains.get_mut(&cid) {
            if let Some(e) = ch.entry_mut(&rec.role, queue_id) {
                update(e);
            }
            ch.add_line(&rec.raw, &limits);
            ch.touch(rec.timestamp);
        }
        cid
    }

    pub(super) fn on_client(&mut self, rec: &LogRecord, queue_id: &str, client: &str) {
        self.on_entry_line(rec, queue_id, |e| {
            e.client = Some(client.to_owned());
            if e.arrived.is_none() {
                e.arrived = rec.timestamp;
                e.subsecond = rec.subsecond;
            }
        });
    }

    pub(super) fn on_pickup(&mut self, rec: &LogRecord, queue_id: &str, from: &str) {
        self.on_entry_line(rec, queue_id, |e| {
            e.from = Some(from.to_owned());
            e.client = Some("local pickup".into());
        });
    }

    /// The message-id joins this entry's chain with any other chain of the same message.
    pub(super) fn on_message_id(&mut self, rec: &LogRecord, queue_id: &str, message_id: &str) {
        let mut cid = self.on_entry_line(rec, queue_id, |e| {
            e.message_id = Some(message_id.to_owned());
        });
        let key = msgid_key(message_id);
        if key.is_empty() {
            return;
        }
        match self.msgids.get(key).copied() {
            Some(other) if self.chains.contains_key(&other) => {
                cid = self.merge(other, cid);
            }
            _ => {
                self.msgids.insert(key.to_owned(), cid);
            }
        }
        if let Some(ch) = self.chains.get_mut(&cid) {
            if ch.message_id.is_none() {
                ch.message_id = Some(message_id.to_owned());
            }
        }
    }

    pub(super) fn on_queue_active(&mut self, rec: &LogRecord, queue_id: &str, from: &str) {
        self.on_entry_line(rec, queue_id, |e| {
            e.from = Some(from.to_owned());
            e.qmgr_seen = true;
            e.last_seen = rec.timestamp.or(e.last_seen);
        });
    }

    pub(super) fn on_expired(&mut self, rec: &LogRecord, queue_id: &str) {
        self.on_entry_line(rec, queue_id, |e| e.expired = true);
    }

    pub(super) fn on_removed(&mut self, rec: &LogRecord, queue_id: &str) {
        self.on_entry_line(rec, queue_id, |e| {
            e.removed = true;
            e.last_seen = rec.timestamp.or(e.last_seen);
        });
    }

    /// A bounce/delay notification: only the line is kept with the message.
    pub(super) fn on_notification(&mut self, rec: &LogRecord, queue_id: &str) {
        self.on_entry_line(rec, queue_id, |_| {});
    }

    /// A per-attempt detail (`lost connection ...`): kept for the delivery line that follows,
    /// whose finding it may explain.
    pub(super) fn on_attempt_detail(&mut self, rec: &LogRecord, queue_id: &str) {
        let line = clip(&rec.raw, self.limits.max_line_bytes);
        self.on_entry_line(rec, queue_id, |e| e.add_detail(line));
    }
}
