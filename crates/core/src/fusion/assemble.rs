//! Output assembly: turns a chain's working state (`chain`) into the `MessageChain` that is
//! reported: hops in path order (queue entries along their `queued as` links, Dovecot's side
//! after the LMTP hand-off that reached it), the message's status from the hops where it ended,
//! envelope, findings and notes. Pure; does not change the correlator's state.

use std::sync::Arc;

use chrono::TimeDelta;

use crate::diagnosis::Finding;

use super::chain::{reply_text, Chain, DoveDelivery, Entry, NoQueue, RcptStatus};
use super::model::{Hop, HopStatus, MessageChain, MessageStatus};

/// A queue entry's status: a whole-message outcome first, else the worst recipient's.
fn entry_status(e: &Entry) -> HopStatus {
    if e.rejected.is_some() {
        return HopStatus::Rejected;
    }
    if e.refused.is_some() {
        return HopStatus::Refused;
    }
    if e.expired {
        return HopStatus::Expired;
    }
    let has = |s: RcptStatus| e.rcpts.iter().any(|r| r.status == s);
    if has(RcptStatus::Bounced) {
        HopStatus::Bounced
    } else if has(RcptStatus::Expired) {
        HopStatus::Expired
    } else if has(RcptStatus::Deferred) {
        HopStatus::Deferred
    } else if has(RcptStatus::Sent) {
        HopStatus::Sent
    } else if has(RcptStatus::Rejected) {
        HopStatus::Rejected
    } else if e.removed && e.rcpts.is_empty() {
        // Gone without a delivery line in these logs (deleted, or delivered before them).
        HopStatus::Removed
    } else if e.qmgr_seen || e.message_id.is_some() || has(RcptStatus::Pending) {
        HopStatus::Queued
    } else {
        HopStatus::Unknown
    }
}

fn entry_hop(e: &Entry) -> Hop {
    // The attempt that best describes the hop: the last one of the worst recipient that had
    // one (a recipient rejected at RCPT never had an attempt; the status still counts it).
    let main = e
        .rcpts
        .iter()
        .filter(|r| r.last.is_some())
        .max_by_key(|r| match r.status {
            RcptStatus::Bounced | RcptStatus::Expired => 4,
            RcptStatus::Deferred => 3,
            RcptStatus::Rejected => 2,
            RcptStatus::Sent => 1,
            RcptStatus::Pending => 0,
        })
        .and_then(|r| r.last.as_ref());
    let attempts = || e.rcpts.iter().filter_map(|r| r.last.as_ref());
    Hop {
        host: e.host.to_string(),
        queue_id: Some(e.qid.clone()),
        service: main.map(|a| a.service.clone()),
        status: entry_status(e),
        relay: main.and_then(|a| a.relay.clone()),
        delay_ms: attempts().filter_map(|a| a.delay_ms).max(),
        delays: main.and_then(|a| a.delays),
        dsn: main.and_then(|a| a.dsn.clone()),
        reason: e
            .rejected
            .clone()
            .or_else(|| e.refused.clone())
            .or_else(|| main.map(|a| a.reason.clone())),
        from: e.from.clone(),
        to: e.rcpts.iter().map(|r| r.to.clone()).collect(),
        client: e.client.clone(),
        next_queue_id: main.and_then(|a| a.queued_as.clone()),
        lmtp_session: main.and_then(|a| a.lmtp_session.clone()),
        mailbox: None,
        attempts: e.rcpts.iter().map(|r| r.attempts).max().unwrap_or(0),
        arrived_at: e.arrived,
        left_at: attempts().filter_map(|a| a.at).max(),
        whole_seconds: !e.subsecond,
    }
}

fn dovecot_hop(d: &DoveDelivery) -> Hop {
    Hop {
        host: d.host.to_string(),
        queue_id: None,
        service: Some("dovecot".into()),
        status: if d.saved {
            HopStatus::Saved
        } else {
            HopStatus::SaveFailed
        },
        relay: None,
        delay_ms: d.delivery_time_ms,
        delays: None,
        dsn: None,
        reason: None,
        from: None,
        to: d.user.iter().cloned().collect(),
        client: None,
        next_queue_id: None,
        lmtp_session: d.session.clone(),
        mailbox: d.mailbox.clone(),
        attempts: 1,
        // Dovecot logs when it is done; it started `delivery_time` before.
        arrived_at: match (d.at, d.delivery_time_ms) {
            (Some(t), Some(ms)) => {
                TimeDelta::try_milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
                    .and_then(|d| t.checked_sub_signed(d))
                    .or(Some(t))
            }
            (t, _) => t,
        },
        left_at: d.at,
        whole_seconds: !d.subsecond,
    }
}

fn noqueue_hop(n: &NoQueue) -> Hop {
    let r = &n.reject;
    Hop {
        host: n.host.to_string(),
        queue_id: None,
        service: None,
        status: HopStatus::Rejected,
        relay: None,
        delay_ms: None,
        delays: None,
        dsn: r.dsn.clone(),
        reason: Some(reply_text(r)),
        from: r.from.clone(),
        to: r.to.iter().cloned().collect(),
        client: r.client.clone(),
        next_queue_id: None,
        lmtp_session: None,
        mailbox: None,
        attempts: 1,
        arrived_at: n.at,
        left_at: n.at,
        whole_seconds: true,
    }
}

/// Order entries along their links: roots (no upstream inside the chain) by arrival, each
/// followed by its downstream entries. Robust to clock skew, unlike sorting by time.
/// Notifications about the message are not part of its path.
fn ordered_entries(ch: &Chain) -> Vec<&Entry> {
    let in_chain = |h: &Arc<str>, q: &str| ch.entries.iter().any(|e| e.host == *h && e.qid == q);
    let mut roots: Vec<&Entry> = ch
        .entries
        .iter()
        .filter(|e| e.notice_of.is_none())
        .filter(|e| e.upstream.as_ref().is_none_or(|(h, q)| !in_chain(h, q)))
        .collect();
    roots.sort_by_key(|e| (e.arrived, e.host.clone(), e.qid.clone()));
    let mut out: Vec<&Entry> = Vec::with_capacity(ch.entries.len());
    let mut stack: Vec<&Entry> = roots.into_iter().rev().collect();
    while let Some(e) = stack.pop() {
        if out.iter().any(|x| std::ptr::eq(*x, e)) {
            continue;
        }
        out.push(e);
        let mut kids: Vec<&Entry> = ch
            .entries
            .iter()
            .filter(|k| k.notice_of.is_none() && e.feeds(k))
            .collect();
        kids.sort_by_key(|k| k.arrived);
        stack.extend(kids.into_iter().rev());
    }
    out
}

/// `down` is a temporary refusal that its sender (now `up_status`) got past on a later try.
fn refusal_overtaken(down: &Entry, up_status: HopStatus) -> bool {
    down.refused.is_some() && up_status == HopStatus::Sent
}

/// Walks a chain's entries in path order, placing Dovecot's deliveries after the entry that
/// handed the message to Dovecot, and collects the status of every hop where the message ended
/// (a leaf: no downstream entry, no Dovecot delivery after it).
struct Walk<'a> {
    ch: &'a Chain,
    /// Dovecot deliveries (indices into `ch.dovecot`) in time order.
    dove_order: Vec<usize>,
    placed: Vec<bool>,
    hops: Vec<Hop>,
    leaves: Vec<MessageStatus>,
    notes: Vec<String>,
}

impl<'a> Walk<'a> {
    fn new(ch: &'a Chain) -> Self {
        let mut dove_order: Vec<usize> = (0..ch.dovecot.len()).collect();
        dove_order.sort_by_key(|&i| ch.dovecot[i].at);
        Walk {
            ch,
            dove_order,
            placed: vec![false; ch.dovecot.len()],
            // Every hop there can be, at once: a hop is large, and growing the list by
            // doubling would allocate several times its size.
            hops: Vec::with_capacity(ch.entries.len() + ch.dovecot.len() + ch.noqueue.len()),
            leaves: Vec::new(),
            notes: ch.notes.clone(),
        }
    }

    /// Per user only the latest Dovecot delivery decides the outcome (an earlier failed save
    /// that was retried successfully is history, not a leaf).
    fn is_latest(&self, i: usize) -> bool {
        let d = &self.ch.dovecot[i];
        !self
            .ch
            .dovecot
            .iter()
            .any(|o| o.user_key() == d.user_key() && o.at > d.at)
    }

    fn push_dovecot(&mut self, i: usize) {
        self.placed[i] = true;
        let h = dovecot_hop(&self.ch.dovecot[i]);
        if self.is_latest(i) {
            self.leaves.push(h.status.message_status());
        }
        self.hops.push(h);
    }

    /// One queue entry's hop, followed by Dovecot's side of its LMTP hand-offs.
    fn entry(&mut self, e: &Entry) {
        let ch = self.ch;
        let hop = entry_hop(e);
        let status = hop.status;
        let at = self.hops.len();
        self.hops.push(hop);
        let has_dove = !self.dove_order.is_empty() && self.place_dovecot_after(e);
        for n in ch
            .entries
            .iter()
            .filter(|n| n.notice_of.as_deref() == Some(&e.qid))
        {
            if n.host == e.host {
                self.notes.push(format!(
                    "{} notified the sender as queue id {}",
                    e.host, n.qid
                ));
            }
        }
        let has_downstream = ch
            .entries
            .iter()
            .any(|k| k.notice_of.is_none() && e.feeds(k) && !refusal_overtaken(k, status));
        if has_downstream || has_dove || self.refusal_retried(e, status) {
            return;
        }
        self.leaves.push(status.message_status());
        if status == HopStatus::Sent {
            if let Some(n) = &self.hops[at].next_queue_id {
                let note = format!(
                    "{} handed the message over as queue id {n}; no log given shows that queue id",
                    e.host
                );
                self.notes.push(note);
            }
        }
    }

    /// Dovecot's deliveries of the LMTP hand-offs of `e`, placed after it: by session id, else
    /// (a failed attempt's reply carries none) by recipient. Whether there was any.
    fn place_dovecot_after(&mut self, e: &Entry) -> bool {
        let ch = self.ch;
        let sessions: Vec<&str> = e.lmtp_sessions().collect();
        let lmtp_rcpts: Vec<String> = e
            .rcpts
            .iter()
            .filter(|r| r.last.as_ref().is_some_and(|a| a.service == "lmtp"))
            .map(|r| r.to.to_ascii_lowercase())
            .collect();
        let mut has_dove = false;
        for k in 0..self.dove_order.len() {
            let i = self.dove_order[k];
            let d = &ch.dovecot[i];
            let by_session = d.session.as_deref().is_some_and(|s| sessions.contains(&s));
            let by_rcpt = d.user_key().is_some_and(|u| lmtp_rcpts.contains(&u));
            if !self.placed[i] && (by_session || by_rcpt) {
                has_dove = true;
                self.push_dovecot(i);
            }
        }
        has_dove
    }

    /// A temporary refusal whose sender's latest attempt went through is history, not where
    /// the message ended.
    fn refusal_retried(&self, e: &Entry, status: HopStatus) -> bool {
        status == HopStatus::Refused
            && e.upstream.as_ref().is_some_and(|(h, q)| {
                self.ch
                    .entries
                    .iter()
                    .find(|u| u.host == *h && u.qid == *q)
                    .is_some_and(|u| refusal_overtaken(e, entry_status(u)))
            })
    }

    /// Dovecot deliveries no entry led to, then NOQUEUE rejects: each a hop of its own.
    fn rest(&mut self) {
        for k in 0..self.dove_order.len() {
            let i = self.dove_order[k];
            if !self.placed[i] {
                self.push_dovecot(i);
            }
        }
        for n in &self.ch.noqueue {
            self.hops.push(noqueue_hop(n));
            self.leaves.push(MessageStatus::Rejected);
        }
    }
}

/// Envelope recipients: the first entry's, the rejected ones, else Dovecot's users.
fn recipients(ch: &Chain, first: Option<&Entry>) -> Vec<String> {
    fn push_unique(to: &mut Vec<String>, t: &String) {
        if !to.contains(t) {
            to.push(t.clone());
        }
    }
    let mut to: Vec<String> = Vec::new();
    let envelope = first
        .into_iter()
        .flat_map(|e| e.rcpts.iter().map(|r| &r.to));
    let rejected = ch.noqueue.iter().filter_map(|n| n.reject.to.as_ref());
    for t in envelope.chain(rejected) {
        push_unique(&mut to, t);
    }
    if to.is_empty() {
        for u in ch.dovecot.iter().filter_map(|d| d.user.as_ref()) {
            push_unique(&mut to, u);
        }
    }
    to
}

/// The chain's findings, tagged with its message-id, in the order they were first seen.
fn findings(ch: &Chain) -> Vec<Finding> {
    let mut findings: Vec<Finding> = ch.findings.iter().map(|x| x.f.clone()).collect();
    for f in &mut findings {
        f.message_id = ch.message_id.clone();
    }
    findings.sort_by_key(|f| f.first_seen);
    findings
}

pub(super) fn build_chain(ch: &Chain) -> MessageChain {
    let entries = ordered_entries(ch);
    let mut walk = Walk::new(ch);
    for e in &entries {
        walk.entry(e);
    }
    walk.rest();
    // A delivered copy and a Dovecot "saved" both count as delivered; the worst leaf decides.
    let status = walk
        .leaves
        .iter()
        .copied()
        .max_by_key(|s| s.rank())
        .unwrap_or(MessageStatus::Unknown);
    let from = entries
        .first()
        .and_then(|e| e.from.clone())
        .or_else(|| ch.noqueue.first().and_then(|n| n.reject.from.clone()));
    let mut notes = walk.notes;
    if ch.evicted {
        notes.push("emitted before it finished: the open-message limit was reached".into());
    }
    MessageChain {
        message_id: ch.message_id.clone(),
        status,
        from,
        to: recipients(ch, entries.first().copied()),
        hops: walk.hops,
        findings: findings(ch),
        notes,
        // A reject or a Dovecot delivery is final; queue entries must all have closed.
        complete: !ch.evicted
            && ch.entries.iter().all(Entry::closed)
            && !(ch.entries.is_empty() && ch.noqueue.is_empty() && ch.dovecot.is_empty()),
        lines: ch.lines.clone(),
        lines_dropped: ch.lines_dropped,
    }
}
