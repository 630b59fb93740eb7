//! Output assembly: turns a chain's working state (`chain`) into the `MessageChain` that is
//! reported: hops in path order (queue entries along their `queued as` links, Dovecot's side
//! after the LMTP hand-off that reached it), the message's status from the hops where it ended,
//! envelope, findings and notes. Pure; does not change the correlator's state.

use std::sync::Arc;

use chrono::TimeDelta;

use crate::diagnosis::{classify_text, Finding, FindingCode};
use crate::logs::EventText;

use super::chain::{clip, reply_text, Chain, DoveDelivery, Entry, NoQueue, RcptStatus};
use super::correlator::Limits;
use super::model::{Hop, HopStatus, MessageChain, MessageStatus, RcptOutcome};
use super::on_reject::action_code;
use super::spare::Spare;

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
    } else if e.held && !e.removed {
        // Not retried while held, whatever its last attempt said; deleted while held is Removed.
        HopStatus::Held
    } else if has(RcptStatus::Deferred) {
        HopStatus::Deferred
    } else if has(RcptStatus::Sent) {
        HopStatus::Sent
    } else if has(RcptStatus::Verified) {
        HopStatus::Verified
    } else if has(RcptStatus::Rejected) {
        HopStatus::Rejected
    } else if has(RcptStatus::Refused) {
        HopStatus::Refused
    } else if e.removed && e.rcpts.iter().all(|r| r.status == RcptStatus::Pending) {
        // Gone without a delivery line in these logs (deleted, or delivered before them).
        HopStatus::Removed
    } else if e.qmgr_seen || e.message_id.is_some() || has(RcptStatus::Pending) {
        HopStatus::Queued
    } else {
        HopStatus::Unknown
    }
}

/// The recipient whose last attempt best describes the hop: the worst one that had an attempt
/// (a recipient rejected at RCPT never had one; the status still counts it).
fn main_rcpt(e: &Entry) -> Option<usize> {
    e.rcpts
        .iter()
        .enumerate()
        .filter(|(_, r)| r.last.is_some())
        .max_by_key(|(_, r)| match r.status {
            RcptStatus::Bounced | RcptStatus::Expired => 4,
            RcptStatus::Deferred => 3,
            RcptStatus::Rejected | RcptStatus::Refused => 2,
            RcptStatus::Sent | RcptStatus::Verified => 1,
            RcptStatus::Pending => 0,
        })
        .map(|(i, _)| i)
}

/// A recipient's status as a hop's.
fn rcpt_hop_status(s: RcptStatus) -> HopStatus {
    match s {
        RcptStatus::Pending => HopStatus::Queued,
        RcptStatus::Sent => HopStatus::Sent,
        RcptStatus::Deferred => HopStatus::Deferred,
        RcptStatus::Bounced => HopStatus::Bounced,
        RcptStatus::Expired => HopStatus::Expired,
        RcptStatus::Rejected => HopStatus::Rejected,
        RcptStatus::Refused => HopStatus::Refused,
        RcptStatus::Verified => HopStatus::Verified,
    }
}

/// Each recipient's outcome, when not all recipients of `e` have the same status (a whole
/// message's refusal or rejection is every recipient's: none then).
fn rcpt_outcomes(e: &Entry) -> Vec<RcptOutcome> {
    let first = e.rcpts.first().map(|r| r.status);
    let mixed = e.rcpts.iter().any(|r| Some(r.status) != first);
    if !mixed || e.rejected.is_some() || e.refused.is_some() || e.expired {
        return Vec::new();
    }
    e.rcpts
        .iter()
        .map(|r| {
            let (dsn, reason) = match (&r.last, &r.rejected) {
                (Some(a), _) => (a.dsn.clone(), Some(a.reason.clone())),
                (None, Some(x)) => (x.dsn.clone(), Some(x.reply.clone())),
                (None, None) => (None, None),
            };
            RcptOutcome {
                to: r.to.clone(),
                status: rcpt_hop_status(r.status),
                dsn,
                reason,
            }
        })
        .collect()
}

/// The code and reply of the first recipient turned away at RCPT with the hop's status: the
/// hop's own, when no recipient of it had a delivery attempt.
fn rcpt_reply(e: &Entry, status: HopStatus) -> Option<(Option<EventText>, String)> {
    e.rcpts
        .iter()
        .filter(|r| rcpt_hop_status(r.status) == status)
        .find_map(|r| r.rejected.as_deref())
        .map(|x| (x.dsn.clone(), x.reply.clone()))
}

/// The hop of entry `e`, whose status is `status`: its text is moved out of the entry, its
/// recipients into `to` (empty). Its delay is that of the attempt its reason is from; where
/// that attempt handed nothing on, the next queue id is another recipient's.
fn entry_hop(e: &mut Entry, status: HopStatus, mut to: Vec<EventText>) -> Hop {
    let recipients = rcpt_outcomes(e);
    let detail = last_detail(e);
    let attempts = || e.rcpts.iter().filter_map(|r| r.last.as_ref());
    let latest_delay = attempts().filter_map(|a| a.delay_ms).max();
    let left_at = attempts().filter_map(|a| a.at).max();
    let tries = e.rcpts.iter().map(|r| r.attempts).max().unwrap_or(0);
    let main = main_rcpt(e).and_then(|i| e.rcpts[i].last.take());
    let at_rcpt = match main {
        Some(_) => None,
        None => rcpt_reply(e, status),
    };
    let (rcpt_dsn, rcpt_reason) = at_rcpt.unzip();
    let delay_ms = main.as_ref().and_then(|a| a.delay_ms).or(latest_delay);
    to.extend(e.rcpts.iter_mut().map(|r| std::mem::take(&mut r.to)));
    let (service, relay, delays, dsn, reason, next_queue_id, lmtp_session) = match main {
        Some(a) => (
            Some(a.service),
            a.relay,
            a.delays,
            a.dsn,
            Some(a.reason),
            a.queued_as.or_else(|| {
                e.rcpts
                    .iter()
                    .find_map(|r| r.last.as_ref().and_then(|o| o.queued_as.clone()))
            }),
            a.lmtp_session,
        ),
        None => (None, None, None, None, None, None, None),
    };
    Hop {
        host: EventText::from(&*e.host),
        queue_id: Some(std::mem::take(&mut e.qid)),
        service,
        status,
        relay,
        delay_ms,
        delays,
        dsn: dsn.or_else(|| e.refusal_dsn.take()).or(rcpt_dsn.flatten()),
        reason: e
            .rejected
            .take()
            .or_else(|| e.refused.take())
            .or(reason)
            .or(rcpt_reason)
            .or(detail),
        from: e.from.take(),
        to,
        client: e.client.take(),
        next_queue_id,
        lmtp_session,
        mailbox: None,
        attempts: tries,
        arrived_at: e.arrived,
        left_at,
        whole_seconds: !e.subsecond,
        recipients,
    }
}

/// The last attempt's detail of an entry no delivery line has reported on yet (`host X said: 450
/// ...` before Postfix tries the next MX, `connect to X: Connection refused`): the text after the
/// queue id, so a message still queued says why.
fn last_detail(e: &Entry) -> Option<String> {
    let line = e.details.back()?;
    let marker = format!("{}: ", e.qid);
    let at = line.find(&marker)? + marker.len();
    line.get(at..).map(str::to_owned)
}

/// The hop of Dovecot's delivery `d`: its text is moved out of it.
fn dovecot_hop(d: &mut DoveDelivery) -> Hop {
    Hop {
        host: EventText::from(&*d.host),
        queue_id: None,
        service: Some("dovecot".into()),
        status: dovecot_status(d),
        relay: None,
        delay_ms: d.delivery_time_ms,
        delays: None,
        dsn: None,
        reason: None,
        from: None,
        to: d.user.take().into_iter().map(EventText::from).collect(),
        client: None,
        next_queue_id: None,
        lmtp_session: d.session.take().map(EventText::from),
        mailbox: d.mailbox.take().map(EventText::from),
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
        recipients: Vec::new(),
    }
}

fn dovecot_status(d: &DoveDelivery) -> HopStatus {
    if d.saved {
        HopStatus::Saved
    } else if d.discarded || d.rejected {
        // As a Postfix DISCARD or reject: refused for good, not a save to retry.
        HopStatus::Rejected
    } else {
        HopStatus::SaveFailed
    }
}

/// A NOQUEUE reject's hop status: a 4xx reply is temporary, the client keeps the message and
/// tries again (greylisting, a failed lookup), as after cleanup's temporary refusal.
fn noqueue_status(n: &NoQueue) -> HopStatus {
    // smtpd's `NOQUEUE: hold: RCPT from ...` (before the queue file exists): the message that
    // follows is kept on hold, not refused.
    if action_code(&n.reject) == Some(FindingCode::Held) {
        HopStatus::Held
    } else if n.reject.is_temporary() {
        HopStatus::Refused
    } else {
        HopStatus::Rejected
    }
}

/// The hop of NOQUEUE reject `n`: its text is moved out of it.
fn noqueue_hop(n: &mut NoQueue) -> Hop {
    let reason = reply_text(&n.reject);
    let status = noqueue_status(n);
    let r = &mut n.reject;
    Hop {
        host: EventText::from(&*n.host),
        queue_id: None,
        service: None,
        status,
        relay: None,
        delay_ms: None,
        delays: None,
        dsn: r.dsn.take(),
        reason: Some(reason),
        from: r.from.take(),
        to: r.to.take().into_iter().collect(),
        client: r.client.take(),
        next_queue_id: None,
        lmtp_session: None,
        mailbox: None,
        attempts: 1,
        arrived_at: n.at,
        left_at: n.at,
        whole_seconds: true,
        recipients: Vec::new(),
    }
}

/// Order entries along their links: roots (no upstream inside the chain) by arrival, each
/// followed by its downstream entries. Robust to clock skew, unlike sorting by time.
/// Notifications about the message are not part of its path. Indices into `ch.entries`, in
/// `out`; `stack` is working room (both are emptied first).
fn ordered_entries(ch: &Chain, stack: &mut Vec<usize>, out: &mut Vec<usize>) {
    let entries = &ch.entries;
    let in_chain = |h: &Arc<str>, q: &str| entries.iter().any(|e| e.host == *h && e.qid == q);
    stack.clear();
    out.clear();
    stack.extend(
        (0..entries.len())
            .filter(|&i| entries[i].notice_of.is_none())
            .filter(|&i| {
                entries[i]
                    .upstream
                    .as_ref()
                    .is_none_or(|(h, q)| !in_chain(h, q))
            }),
    );
    // Roots that arrived in the same (whole) second: one that hands the message on to another
    // entry of the chain first (the MX's, before the copy a Sieve redirect on the last host
    // submitted again, which hands on nothing), then by queue id, whatever the hosts are
    // called. Postfix's queue ids start with the queue file's microsecond (short ids, in hex)
    // or its time (long ids), so on one host that is the order the entries were made; and
    // unlike the order their first lines were read, a `--message-id` run, which reads an
    // entry's `client=` line only once its `message-id=` line names it, sees the same.
    let hands_on = |i: usize| entries.iter().any(|k| entries[i].feeds(k));
    let root_key = |i: usize| (entries[i].arrived, !hands_on(i), entries[i].qid.as_str(), i);
    // The stack of entries to visit, the next on top: the roots by arrival, then each entry's
    // downstream entries by arrival, stacked in place (no list per entry).
    stack.sort_by_key(|&i| root_key(i));
    stack.reverse();
    while let Some(i) = stack.pop() {
        if out.contains(&i) {
            continue;
        }
        out.push(i);
        let e = &entries[i];
        let kids = stack.len();
        stack.extend(
            (0..entries.len()).filter(|&k| entries[k].notice_of.is_none() && e.feeds(&entries[k])),
        );
        stack[kids..].sort_by_key(|&k| entries[k].arrived);
        stack[kids..].reverse();
    }
}

/// `down` is a temporary refusal that its sender (now `up_status`) got past on a later try.
fn refusal_overtaken(down: &Entry, up_status: HopStatus) -> bool {
    down.refused.is_some() && up_status == HopStatus::Sent
}

/// Where a hop comes from: an index into the chain's entries (with the entry's status),
/// Dovecot deliveries or NOQUEUE rejects.
#[derive(Debug, Clone, Copy)]
pub(super) enum HopOf {
    Entry(usize, HopStatus),
    Dovecot(usize),
    NoQueue(usize),
}

/// Walks a chain's entries in path order, placing Dovecot's deliveries after the entry that
/// handed the message to Dovecot, and keeps the worst status of the hops where the message
/// ended (a leaf: no downstream entry, no Dovecot delivery after it). It only reads the chain: the
/// hops are made after it, by moving their text out of the chain.
struct Walk<'a> {
    ch: &'a Chain,
    /// Dovecot deliveries (indices into `ch.dovecot`) in time order.
    dove_order: Vec<usize>,
    placed: Vec<bool>,
    hops: Vec<HopOf>,
    /// The worst status of a hop where the message ended, so far.
    worst: Option<MessageStatus>,
    notes: Vec<String>,
}

impl<'a> Walk<'a> {
    /// `hops`: an empty list to fill.
    fn new(ch: &'a Chain, notes: Vec<String>, mut hops: Vec<HopOf>) -> Self {
        let mut dove_order: Vec<usize> = (0..ch.dovecot.len()).collect();
        dove_order.sort_by_key(|&i| ch.dovecot[i].at);
        hops.clear();
        hops.reserve(ch.entries.len() + ch.dovecot.len() + ch.noqueue.len());
        Walk {
            ch,
            dove_order,
            placed: vec![false; ch.dovecot.len()],
            hops,
            worst: None,
            notes,
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

    /// The message ended at a hop of this status. A delivered copy and a Dovecot "saved" both
    /// count as delivered; the worst leaf decides.
    fn leaf(&mut self, status: MessageStatus) {
        if self.worst.is_none_or(|w| status.rank() >= w.rank()) {
            self.worst = Some(status);
        }
    }

    fn push_dovecot(&mut self, i: usize) {
        self.placed[i] = true;
        if self.is_latest(i) {
            let status = dovecot_status(&self.ch.dovecot[i]);
            self.leaf(status.message_status());
        }
        self.hops.push(HopOf::Dovecot(i));
    }

    /// One queue entry's hop, followed by Dovecot's side of its LMTP hand-offs.
    fn entry(&mut self, i: usize) {
        let ch = self.ch;
        let e = &ch.entries[i];
        let status = entry_status(e);
        self.hops.push(HopOf::Entry(i, status));
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
        if has_dove && matches!(status, HopStatus::Bounced | HopStatus::Expired) {
            // Postfix's own final word (LMTP's 552 for a full mailbox): Dovecot's failed save
            // after it is no deferral.
            self.leaf(status.message_status());
        }
        if has_downstream || has_dove || self.refusal_retried(e, status) {
            return;
        }
        self.leaf(status.message_status());
        if status == HopStatus::Sent {
            let next = main_rcpt(e).and_then(|r| e.rcpts[r].last.as_ref()?.queued_as.as_ref());
            // The message's chain may hold that queue id's entry without a link to it (one
            // source named for several hosts): then a log does show it.
            let shown = |n: &str| ch.entries.iter().any(|k| k.qid == n);
            if let Some(n) = next.filter(|n| !shown(n)) {
                // Joined rather than formatted: most relayed messages get this note.
                self.notes.push(
                    [
                        &*e.host,
                        " handed the message over as queue id ",
                        n,
                        "; no log given shows that queue id",
                    ]
                    .concat(),
                );
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
            .map(|r| r.to.as_str().to_ascii_lowercase())
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
        for n in 0..self.ch.noqueue.len() {
            self.hops.push(HopOf::NoQueue(n));
            self.leaf(noqueue_status(&self.ch.noqueue[n]).message_status());
        }
    }
}

/// Envelope recipients: the first entry's, the rejected ones, else Dovecot's users.
fn recipients(ch: &Chain, first: Option<&Entry>, mut to: Vec<EventText>) -> Vec<EventText> {
    fn push_unique(to: &mut Vec<EventText>, t: &str) {
        if !to.iter().any(|x| x == t) {
            to.push(t.into());
        }
    }
    let envelope = first
        .into_iter()
        .flat_map(|e| e.rcpts.iter().map(|r| r.to.as_str()));
    let rejected = ch.noqueue.iter().filter_map(|n| n.reject.to.as_deref());
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

/// The message's envelope sender: its first hop's; where the logs begin after that hop's
/// queue manager named it (the MX's entry seen only from its delivery line on), the next hop's
/// that names one (a relay passes the sender on); else a reject's.
fn sender(ch: &Chain, entries: &[usize]) -> Option<EventText> {
    entries
        .iter()
        .find_map(|&i| ch.entries[i].from.as_deref())
        .or_else(|| ch.noqueue.first().and_then(|n| n.reject.from.as_deref()))
        .map(EventText::from)
}

/// An entry whose last attempt failed with no delivery line after it in these logs (they end
/// there, or cut the entry's other lines off): what that attempt said is its finding, so a
/// message the logs leave waiting still says why (`Cannot start TLS: handshake failure`, a
/// server's `450 4.2.1` rate limit). None once a delivery line reported on a recipient: that
/// line's finding already took the detail as evidence.
fn unreported_attempts(ch: &Chain, sources: &[HopOf], out: &mut Vec<Finding>) {
    for h in sources {
        let HopOf::Entry(i, HopStatus::Queued | HopStatus::Unknown) = *h else {
            continue;
        };
        let e = &ch.entries[i];
        if e.rcpts.iter().any(|r| r.last.is_some()) {
            continue;
        }
        let (Some(detail), Some(line)) = (last_detail(e), e.details.back()) else {
            continue;
        };
        let code = classify_text(&detail).unwrap_or(FindingCode::DeferredOther);
        let msg = format!(
            "{}: the last delivery attempt of {} failed, and no delivery line follows it in \
             these logs: {}",
            e.host,
            e.qid,
            clip(&detail, 300)
        );
        let mut f = Finding::new(code, Some(&e.host), msg);
        f.evidence.push(line.clone());
        f.seen(e.last_seen);
        out.push(f);
    }
}

/// The chain's findings, tagged with its message-id, in the order they were first seen;
/// those of one instant by code and host, not by which log's line the merge read first.
fn chain_findings(ch: &mut Chain, mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.extend(ch.findings.drain(..).map(|x| x.f));
    for f in &mut findings {
        f.message_id = ch.message_id.as_deref().map(String::from);
    }
    findings.sort_by(|a, b| (a.first_seen, a.code, &a.host).cmp(&(b.first_seen, b.code, &b.host)));
    findings
}

/// The message a chain tells, leaving the chain behind.
pub(super) fn build_chain(ch: &Chain, limits: &Limits) -> MessageChain {
    take_chain(ch.clone(), &mut Spare::default(), limits)
}

/// The message a chain tells, its text moved out of the chain rather than copied, its lists
/// those `spare` has room in.
pub(super) fn take_chain(mut ch: Chain, spare: &mut Spare, limits: &Limits) -> MessageChain {
    let ch = &mut ch;
    super::on_dovecot::kept_after_failing(ch, limits);
    let mut entries = std::mem::take(&mut spare.order);
    ordered_entries(ch, &mut spare.stack, &mut entries);
    let mut notes = spare.notes();
    notes.append(&mut ch.notes);
    let mut walk = Walk::new(ch, notes, std::mem::take(&mut spare.walk));
    for &i in &entries {
        walk.entry(i);
    }
    walk.rest();
    let Walk {
        hops: mut sources,
        worst,
        mut notes,
        ..
    } = walk;
    let status = worst.unwrap_or(MessageStatus::Unknown);
    let first = entries.first().map(|&i| &ch.entries[i]);
    let from = sender(ch, &entries);
    let to = recipients(ch, first, spare.list());
    if ch.evicted {
        notes.push("emitted before it finished: the open-message limit was reached".into());
    }
    // A reject or a Dovecot delivery is final; queue entries must all have closed.
    let complete = !ch.evicted
        && ch.entries.iter().all(Entry::closed)
        && !(ch.entries.is_empty() && ch.noqueue.is_empty() && ch.dovecot.is_empty());
    let mut findings = spare.findings();
    unreported_attempts(ch, &sources, &mut findings);
    let mut hops = spare.hops();
    hops.extend(sources.drain(..).map(|h| match h {
        HopOf::Entry(i, status) => entry_hop(&mut ch.entries[i], status, spare.list()),
        HopOf::Dovecot(i) => dovecot_hop(&mut ch.dovecot[i]),
        HopOf::NoQueue(i) => noqueue_hop(&mut ch.noqueue[i]),
    }));
    spare.walk = sources;
    spare.order = entries;
    let findings = chain_findings(ch, findings);
    MessageChain {
        findings,
        message_id: ch.message_id.take(),
        status,
        from,
        to,
        hops,
        notes,
        complete,
        lines: std::mem::take(&mut ch.lines),
        lines_dropped: ch.lines_dropped,
        last_seen: ch.last_activity,
    }
}
