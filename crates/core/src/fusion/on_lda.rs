//! Dovecot's LDA run by Postfix's pipe transport (`dovecot unix - n n - - pipe ...
//! dovecot-lda`): its save line (`lda(user): msgid=<x>: saved mail to INBOX`, no LMTP session)
//! is logged just before pipe's `status=sent` line for the same recipient. With the entry's
//! `message-id=` line in the log both join its message by Message-ID; without it (a log that
//! starts mid-message) they are joined here, by recipient and time. Does not parse or classify.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use crate::logs::{Delivery, DeliveryStatus, LogRecord};

use super::chain::{ChainId, DoveDelivery};
use super::correlator::Correlator;

/// LDA saves kept for the pipe line that follows.
const LDA_SAVES: usize = 64;
/// How far apart the save and pipe's line may be (pipe logs once the LDA has exited).
const LDA_WINDOW: TimeDelta = TimeDelta::seconds(2);

/// One LDA save (a Dovecot line without an LMTP session) and the message it joined.
#[derive(Debug, Clone)]
pub(super) struct LdaSave {
    user: String,
    at: DateTime<Utc>,
    chain: ChainId,
}

impl Correlator {
    /// Keep a save without an LMTP session (the LDA's) for pipe's line of its recipient.
    pub(super) fn note_lda_save(&mut self, d: &DoveDelivery, cid: ChainId) {
        if d.session.is_some() || !d.saved {
            return;
        }
        let (Some(user), Some(at)) = (d.user_key(), d.at) else {
            return;
        };
        if self.lda_saves.len() >= LDA_SAVES {
            self.lda_saves.pop_front();
        }
        self.lda_saves.push_back(LdaSave {
            user,
            at,
            chain: cid,
        });
    }

    /// pipe's delivery of entry chain `cid`: the LDA save of its recipient just before it (the
    /// earliest not yet taken) joins the message, unless it already has or names another
    /// Message-ID. Returns the chain the delivery is in.
    pub(super) fn join_lda_save(&mut self, rec: &LogRecord, d: &Delivery, cid: ChainId) -> ChainId {
        if d.service.as_str() != "pipe" || d.status != DeliveryStatus::Sent {
            return cid;
        }
        let Some(ts) = rec.timestamp else {
            return cid;
        };
        let Some(i) = find_save(&self.lda_saves, &d.to, ts) else {
            return cid;
        };
        let Some(save) = self.lda_saves.remove(i) else {
            return cid;
        };
        let lda_only = self
            .chains
            .get(&save.chain)
            .is_some_and(|c| c.entries.is_empty());
        if save.chain == cid || !lda_only || !self.compatible(save.chain, cid) {
            return cid;
        }
        self.merge(cid, save.chain)
    }
}

/// The earliest save for recipient `to` (its address, or its local part as Dovecot 1.x's
/// `deliver(user)` names it) within [`LDA_WINDOW`] of `ts`.
fn find_save(saves: &VecDeque<LdaSave>, to: &str, ts: DateTime<Utc>) -> Option<usize> {
    let to = to.to_ascii_lowercase();
    let local = to.split('@').next().unwrap_or(&to);
    saves
        .iter()
        .position(|s| (s.user == to || s.user == local) && (ts - s.at).abs() <= LDA_WINDOW)
}
