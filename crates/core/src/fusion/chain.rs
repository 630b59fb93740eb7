//! The correlator's working state for one message while it is being correlated: its queue
//! entries on each host, Dovecot deliveries, NOQUEUE rejects, findings and lines, plus the small
//! text and time helpers the event handlers share. Does not index chains (`correlator`) nor
//! turn them into output (`assemble`).

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::diagnosis::{Finding, FindingCode};
use crate::logs::{Delays, EventText, Reject};

use super::correlator::Limits;

pub(super) type ChainId = u64;

/// Recipients kept per queue entry; more are counted in `rcpts_dropped`.
const MAX_RCPTS: usize = 64;
/// Findings kept per chain.
const MAX_FINDINGS: usize = 16;
/// Notes kept per chain.
const MAX_NOTES: usize = 8;
/// Per-attempt detail lines kept per queue entry (the last ones).
const MAX_DETAILS: usize = 4;

/// Whether `host` names the host `h`. The records of a source share its role's `Arc`, so the
/// usual answer is found by comparing addresses, without comparing the bytes.
pub(super) fn same_host(h: &Arc<str>, host: &str) -> bool {
    std::ptr::eq(h.as_ptr(), host.as_ptr()) && h.len() == host.len() || **h == *host
}

/// `s` cut to at most `max` bytes (on a character boundary), marked with `…` when cut.
pub(super) fn clip(s: &str, max: usize) -> String {
    match clip_end(s, max) {
        None => s.to_owned(),
        Some(end) => format!("{}…", &s[..end]),
    }
}

/// Where [`clip`] cuts `s` (`None`: it does not).
fn clip_end(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(end)
}

/// The length of [`clip`]'s text, without making it.
fn clipped_len(s: &str, max: usize) -> usize {
    clip_end(s, max).map_or(s.len(), |end| end + '…'.len_utf8())
}

/// Both times known and at most `w` apart. Without timestamps a time join cannot be checked, so
/// it is refused.
pub(super) fn within(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>, w: TimeDelta) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= w,
        _ => false,
    }
}

/// Two codes name one cause seen from its two sides: a delivery's `next_hop_relay_denied` is
/// the next hop's own `relay_access_denied` reject.
pub(super) fn same_cause(a: FindingCode, b: FindingCode) -> bool {
    use FindingCode::{NextHopRelayDenied, RelayAccessDenied};
    a == b
        || matches!(
            (a, b),
            (RelayAccessDenied, NextHopRelayDenied) | (NextHopRelayDenied, RelayAccessDenied)
        )
}

/// One occurrence seen twice: a failure of one delivery attempt logged by both its sides
/// (Postfix's deferral and Dovecot's failed save, Postfix's whole seconds against Dovecot's
/// microseconds) or by two lines of one process, within a second or so. A message's attempts
/// are minutes apart (the queue's back-off), so `count` stays the number of attempts.
fn same_moment(ex: &Finding, f: &Finding) -> bool {
    f.count <= 1
        && ex
            .last_seen
            .zip(f.first_seen)
            .is_some_and(|(a, b)| (a - b).num_milliseconds().abs() < 2_000)
}

/// A catch-all code that a more specific one (from a nearby line) may replace.
pub(super) fn generic(code: FindingCode) -> bool {
    matches!(
        code,
        FindingCode::DeferredOther | FindingCode::BouncedOther | FindingCode::RejectedOther
    )
}

/// Two envelope senders do not contradict each other (equal, or one is unknown).
pub(super) fn senders_agree(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    }
}

/// A rejection's reply as the client saw it: `554 5.7.1 <x@y>: Relay access denied`.
pub(super) fn reply_text(r: &Reject) -> String {
    format!(
        "{}{}{}",
        r.code.map(|c| format!("{c} ")).unwrap_or_default(),
        r.dsn
            .as_deref()
            .map(|d| format!("{d} "))
            .unwrap_or_default(),
        r.reason
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RcptStatus {
    Pending,
    Sent,
    Deferred,
    Bounced,
    /// Given up after the maximal queue lifetime (a per-recipient `status=expired`).
    Expired,
    Rejected,
    /// Refused at RCPT with a 4xx: the client keeps the message for this recipient and tries
    /// again in another transaction.
    Refused,
    /// An address-verification probe's answer (`status=deliverable` or `undeliverable`):
    /// the recipient was asked about, nothing was delivered.
    Verified,
}

/// One delivery attempt to one recipient (the last one is kept).
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub service: EventText,
    pub relay: Option<EventText>,
    pub delay_ms: Option<u64>,
    pub delays: Option<Delays>,
    pub dsn: Option<EventText>,
    pub reason: String,
    pub queued_as: Option<EventText>,
    pub lmtp_session: Option<EventText>,
    pub at: Option<DateTime<Utc>>,
    pub subsecond: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Rcpt {
    pub to: EventText,
    pub status: RcptStatus,
    pub attempts: u32,
    pub last: Option<Attempt>,
    /// The reply and its status code when smtpd rejected this recipient at RCPT (boxed: rare).
    pub rejected: Option<Box<RcptReject>>,
}

/// smtpd's reject of one recipient of a queued message.
#[derive(Debug, Clone)]
pub(super) struct RcptReject {
    pub dsn: Option<EventText>,
    pub reply: String,
}

/// One queue entry (a queue id on one host).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub host: Arc<str>,
    pub qid: EventText,
    pub client: Option<EventText>,
    pub from: Option<EventText>,
    pub message_id: Option<EventText>,
    pub arrived: Option<DateTime<Utc>>,
    pub subsecond: bool,
    pub last_seen: Option<DateTime<Utc>>,
    pub removed: bool,
    pub expired: bool,
    /// On hold (a HOLD rule, a milter's HOLD, `postsuper -h`) and not released since: the
    /// queue manager will not send it until someone does.
    pub held: bool,
    /// Whole-message rejection (cleanup/milter/DATA) with its reason.
    pub rejected: Option<String>,
    /// Refused with a temporary error before it was queued (cleanup could not look up a map):
    /// the client keeps the message and retries. What went wrong.
    pub refused: Option<String>,
    /// The status code of a whole-message reject or refusal (a milter's `4.7.1`), when no
    /// delivery attempt gives the hop one.
    pub refusal_dsn: Option<EventText>,
    /// This entry is a notification (bounce, delay) this host generated about another entry
    /// of the chain: that entry's queue id. Not a hop of the message.
    pub notice_of: Option<String>,
    pub qmgr_seen: bool,
    pub rcpts: Vec<Rcpt>,
    pub rcpts_dropped: u32,
    /// Per-attempt detail lines (`lost connection`, `SASL authentication failed`...), last few.
    pub details: VecDeque<String>,
    /// The entry on another host that handed this one over: (host, queue id).
    pub upstream: Option<(Arc<str>, String)>,
}

impl Entry {
    pub fn new(host: Arc<str>, qid: &str, ts: Option<DateTime<Utc>>, subsecond: bool) -> Self {
        Entry {
            host,
            qid: qid.into(),
            client: None,
            from: None,
            message_id: None,
            arrived: ts,
            subsecond,
            last_seen: ts,
            removed: false,
            held: false,
            expired: false,
            rejected: None,
            refusal_dsn: None,
            refused: None,
            notice_of: None,
            qmgr_seen: false,
            rcpts: Vec::new(),
            rcpts_dropped: 0,
            details: VecDeque::new(),
            upstream: None,
        }
    }

    /// The queue file is gone (removed after delivery, or refused whole before it was
    /// queued): the queue id may be given to another message.
    pub fn gone(&self) -> bool {
        self.removed || self.rejected.is_some() || self.refused.is_some()
    }

    /// In Postfix's queue: the queue manager took it, or a delivery to one of its recipients
    /// was deferred (retried until the queue lifetime ends).
    pub fn in_queue(&self) -> bool {
        self.qmgr_seen || self.rcpts.iter().any(|r| r.status == RcptStatus::Deferred)
    }

    /// The message's part in this entry is over. A notification's own fate does not keep the
    /// message open.
    pub fn closed(&self) -> bool {
        self.removed
            || self.rejected.is_some()
            || self.refused.is_some()
            || self.notice_of.is_some()
    }

    /// The last attempt that handed the message over as queue id `next`.
    pub fn sent_to(&self, next: &str) -> Option<&Attempt> {
        self.rcpts
            .iter()
            .filter_map(|r| r.last.as_ref())
            .find(|a| a.queued_as.as_deref() == Some(next))
    }

    /// The recipient `to`, added (pending, no attempt yet) on first sight; `None` (and counted)
    /// once the entry holds its maximum of recipients.
    pub fn rcpt_mut(&mut self, to: &str) -> Option<&mut Rcpt> {
        match self.rcpts.iter().position(|r| r.to == to) {
            Some(i) => Some(&mut self.rcpts[i]),
            None if self.rcpts.len() < MAX_RCPTS => {
                // Most entries have one recipient: room for exactly one first.
                self.rcpts.reserve_exact(1);
                self.rcpts.push(Rcpt {
                    to: to.into(),
                    status: RcptStatus::Pending,
                    attempts: 0,
                    last: None,
                    rejected: None,
                });
                self.rcpts.last_mut()
            }
            None => {
                self.rcpts_dropped += 1;
                None
            }
        }
    }

    /// Keep a per-attempt detail line (only the last few) for the next delivery's finding.
    pub fn add_detail(&mut self, line: String) {
        if self.details.len() >= MAX_DETAILS {
            self.details.pop_front();
        }
        self.details.push_back(line);
    }

    /// The LMTP session ids of this entry's recipients' last attempts.
    pub fn lmtp_sessions(&self) -> impl Iterator<Item = &str> {
        self.rcpts
            .iter()
            .filter_map(|r| r.last.as_ref()?.lmtp_session.as_deref())
    }

    /// Whether `k` is a downstream entry this one handed over to.
    pub fn feeds(&self, k: &Entry) -> bool {
        k.upstream
            .as_ref()
            .is_some_and(|(h, q)| *h == self.host && *q == self.qid)
    }
}

/// Dovecot's delivery line for the message (saved or not).
#[derive(Debug, Clone)]
pub(super) struct DoveDelivery {
    pub host: Arc<str>,
    pub user: Option<String>,
    pub session: Option<String>,
    pub mailbox: Option<String>,
    pub saved: bool,
    /// The recipient's Sieve script discarded it (not saved, and not to be retried).
    pub discarded: bool,
    /// LDA refused it for good (`rejected: Quota exceeded`): the sender gets a rejection, no
    /// retry follows.
    pub rejected: bool,
    pub delivery_time_ms: Option<u64>,
    pub at: Option<DateTime<Utc>>,
    pub subsecond: bool,
    /// A failure's own finding as first made (the chain's finding of its code may be another
    /// failure's, this one folded in): folded again when a save takes back the failure that
    /// led the finding it was folded into while this one stands.
    pub finding: Option<Box<Finding>>,
}

impl DoveDelivery {
    /// The recipient lower-cased, for matching by user.
    pub fn user_key(&self) -> Option<String> {
        self.user.as_deref().map(str::to_ascii_lowercase)
    }
}

/// A rejection before a queue id was assigned.
#[derive(Debug, Clone)]
pub(super) struct NoQueue {
    pub host: Arc<str>,
    pub reject: Reject,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(super) struct ChainFinding {
    pub f: Finding,
    /// Seen where the problem is (not as a symptom upstream).
    pub cause: bool,
    /// Its message is a bounce's: how the message ended, which no later attempt replaces.
    pub bounce_leads: bool,
}

/// The bytes of log lines held by all open chains, and the lines refused for lack of room.
#[derive(Debug, Clone, Default)]
pub(super) struct LineBudget {
    pub bytes: usize,
    pub dropped: u64,
    /// Lines are counted and charged as if kept, but not kept: for a report that shows none.
    pub count_only: bool,
}

impl LineBudget {
    /// An emitted chain's lines leave the correlator with it.
    pub fn release(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// Everything gathered so far about one message.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    pub id: ChainId,
    pub message_id: Option<EventText>,
    pub entries: Vec<Entry>,
    pub dovecot: Vec<DoveDelivery>,
    pub noqueue: Vec<NoQueue>,
    pub findings: Vec<ChainFinding>,
    pub notes: Vec<String>,
    pub lines: Vec<String>,
    /// Lines taken: those in `lines`, or with [`LineBudget::count_only`] those counted.
    pub lines_taken: usize,
    pub lines_dropped: u64,
    /// Bytes of `lines`, charged to the correlator's [`LineBudget`] until the chain is emitted.
    pub line_bytes: usize,
    pub last_activity: Option<DateTime<Utc>>,
    /// `queued as` links not yet matched to a downstream entry.
    pub pending_links: u32,
    pub evicted: bool,
    /// Handed out for change since the correlator last asked when it is due.
    pub changed: bool,
    /// When it falls due (quiet long enough to be done), as of its last change.
    pub due: Option<DateTime<Utc>>,
}

/// Queue entries kept per chain after merges.
const MAX_ENTRIES: usize = 32;
/// Dovecot deliveries kept per chain.
pub(super) const MAX_DOVECOT: usize = 64;
/// NOQUEUE rejects taken over from a merged chain.
const MAX_NOQUEUE_MERGED: usize = 16;

impl Chain {
    /// The one queue entry of a chain that says nothing else: no Message-ID, sender,
    /// recipient, Dovecot line, reject or finding (what it does say is the caller's to check).
    fn bare_entry(&self) -> Option<&Entry> {
        let [e] = self.entries.as_slice() else {
            return None;
        };
        let bare = self.message_id.is_none()
            && self.dovecot.is_empty()
            && self.noqueue.is_empty()
            && self.findings.is_empty()
            && e.message_id.is_none()
            && e.from.is_none()
            && e.rcpts.is_empty()
            && !e.qmgr_seen
            && e.upstream.is_none();
        bare.then_some(e)
    }

    /// Nothing but one queue entry's `client=` line (from `client`, when given): no
    /// Message-ID, sender, recipient, reject, Dovecot line or finding.
    pub fn only_announced(&self, client: Option<&str>) -> bool {
        self.bare_entry().is_some_and(|e| {
            e.client.is_some() && (client.is_none() || e.client.as_deref() == client) && !e.closed()
        })
    }

    /// Nothing but one queue entry's `removed` line: the end of a message whose other lines
    /// lie before the log (or the window). Not a message it can say anything of.
    pub fn only_removed(&self) -> bool {
        self.notes.is_empty()
            && self.bare_entry().is_some_and(|e| {
                e.removed
                    && e.client.is_none()
                    && e.rejected.is_none()
                    && e.refused.is_none()
                    && e.notice_of.is_none()
                    && !e.expired
                    && !e.held
                    && e.details.is_empty()
            })
    }

    pub fn new(id: ChainId) -> Self {
        Chain {
            id,
            message_id: None,
            entries: Vec::new(),
            dovecot: Vec::new(),
            noqueue: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
            lines: Vec::new(),
            lines_taken: 0,
            lines_dropped: 0,
            line_bytes: 0,
            last_activity: None,
            pending_links: 0,
            evicted: false,
            changed: false,
            due: None,
        }
    }

    pub fn entry(&self, host: &str, qid: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.qid == qid && same_host(&e.host, host))
    }

    pub fn entry_mut(&mut self, host: &str, qid: &str) -> Option<&mut Entry> {
        self.entries
            .iter_mut()
            .find(|e| e.qid == qid && same_host(&e.host, host))
    }

    pub fn touch(&mut self, ts: Option<DateTime<Utc>>) {
        if let Some(t) = ts {
            self.last_activity = Some(self.last_activity.map_or(t, |l| l.max(t)));
        }
    }

    /// Keep a log line unless this chain has `max_lines` or all open chains together have
    /// `max_retained_line_bytes`; a line not kept is counted.
    pub fn add_line(&mut self, raw: &str, limits: &Limits, budget: &mut LineBudget) {
        if self.lines_taken >= limits.max_lines {
            self.lines_dropped += 1;
            return;
        }
        let len = clipped_len(raw, limits.max_line_bytes);
        if budget.bytes.saturating_add(len) > limits.max_retained_line_bytes {
            self.lines_dropped += 1;
            budget.dropped += 1;
            return;
        }
        budget.bytes += len;
        self.line_bytes += len;
        self.lines_taken += 1;
        if !budget.count_only {
            self.lines.push(clip(raw, limits.max_line_bytes));
        }
    }

    /// Add a note once (bounded).
    pub fn add_note(&mut self, note: String) {
        if !self.notes.contains(&note) && self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        }
    }

    /// Add a finding, folding repeats. Same code and host: one finding, counted. A finding
    /// from the side that caused it (`cause`: the rejecting host, Dovecot's own line) absorbs
    /// the same code seen as a symptom elsewhere (the upstream bounce, Postfix's LMTP
    /// deferral), taking over its host, so each cause is reported once where it happened.
    /// [`Chain::fold_finding`], with the evidence lines it adds charged to the shared budget. When
    /// the open chains already hold `max_retained_line_bytes`, the finding is still recorded (code,
    /// count, times) but its new evidence lines are dropped and counted.
    pub fn add_finding(
        &mut self,
        mut f: Finding,
        limits: &Limits,
        cause: bool,
        budget: &mut LineBudget,
    ) {
        if budget.bytes >= limits.max_retained_line_bytes {
            budget.dropped += f.evidence.len() as u64;
            f.evidence.clear();
        }
        let before = self.evidence_bytes();
        self.fold_finding(f, limits, cause);
        let added = self.evidence_bytes().saturating_sub(before);
        budget.bytes += added;
        self.line_bytes += added;
    }

    /// A bounce's finding, already added (code, host, message): the symptom finding it folded
    /// into on its host takes its message, unless a bounce leads it already. An earlier
    /// deferral's "try again" is not how the message ended.
    pub fn lead_with_bounce(&mut self, code: FindingCode, host: Option<&str>, message: String) {
        let led = self
            .findings
            .iter_mut()
            .find(|x| !x.cause && x.f.code == code && x.f.host.as_deref() == host);
        if let Some(x) = led.filter(|x| !x.bounce_leads) {
            x.f.message = message;
            x.bounce_leads = true;
        }
    }

    fn evidence_bytes(&self) -> usize {
        self.findings
            .iter()
            .flat_map(|x| &x.f.evidence)
            .map(String::len)
            .sum()
    }

    pub(super) fn fold_finding(&mut self, mut f: Finding, limits: &Limits, cause: bool) {
        let Some(i) = self.fold_target(&f, cause) else {
            if self.findings.len() < MAX_FINDINGS {
                self.findings.push(ChainFinding {
                    f,
                    cause,
                    bounce_leads: false,
                });
            }
            return;
        };
        let existing = &mut self.findings[i];
        // Between two sightings of one standing (both causes, or both symptoms) on two hosts,
        // the earlier leads, not the one read first: a log whose clock steps back is merged
        // in another order when fewer of its lines are read (the prefilter's run). Seen at the
        // same moment, the host named first leads, whichever line was read first.
        let earlier = cause == existing.cause
            && existing.f.host != f.host
            && f.first_seen.is_some_and(|a| {
                existing.f.first_seen.is_none_or(|b| {
                    a < b || (a == b && f.host.as_deref() < existing.f.host.as_deref())
                })
            });
        if (cause && !existing.cause) || earlier {
            // The cause's own lines lead the evidence.
            existing.cause = cause;
            existing.f.code = f.code;
            existing.f.host = f.host.clone();
            existing.f.peer = f.peer.clone();
            existing.f.stage = f.stage.clone();
            std::mem::swap(&mut existing.f.message, &mut f.message);
            std::mem::swap(&mut existing.f.evidence, &mut f.evidence);
        }
        let ex = &mut existing.f;
        if !same_moment(ex, &f) {
            ex.count += f.count.max(1);
        }
        for e in f.evidence.drain(..) {
            ex.add_evidence(&e, limits.max_evidence);
        }
        ex.seen(f.first_seen);
        ex.seen(f.last_seen);
    }

    /// The finding that `f` (from the side that caused it when `cause`) folds into: the one of
    /// its code and host, else the first of the same cause that either side caused.
    pub(super) fn fold_target(&self, f: &Finding, cause: bool) -> Option<usize> {
        self.findings
            .iter()
            .position(|x| x.f.code == f.code && x.f.host == f.host)
            .or_else(|| {
                self.findings
                    .iter()
                    .position(|x| same_cause(x.f.code, f.code) && (cause || x.cause))
            })
    }

    /// Finding `i` took another code or host: one with the same ones already there takes it
    /// over (a second attempt's generic failure that Dovecot's line then named is the first
    /// attempt's cause again, counted once more).
    pub fn refold_finding(&mut self, i: usize, limits: &Limits) {
        let Some(x) = self.findings.get(i) else {
            return;
        };
        let twin = self
            .findings
            .iter()
            .enumerate()
            .any(|(j, y)| j != i && y.f.code == x.f.code && y.f.host == x.f.host);
        if twin {
            let x = self.findings.remove(i);
            self.fold_finding(x.f, limits, x.cause);
        }
    }

    /// An LMTP hand-off was logged but Dovecot's side of it not yet.
    pub fn awaiting_dovecot(&self) -> bool {
        self.entries.iter().any(|e| {
            e.rcpts.iter().any(|r| {
                r.last.as_ref().is_some_and(|a| {
                    a.lmtp_session.is_some()
                        && !self.dovecot.iter().any(|d| {
                            d.session.is_some() && d.session.as_deref() == a.lmtp_session.as_deref()
                        })
                })
            })
        }) && self.dovecot.is_empty()
    }

    /// Take over everything of chain `g` (merged into this one), within the bounds.
    pub fn absorb(&mut self, g: Chain, limits: &Limits) {
        if self.message_id.is_none() {
            self.message_id = g.message_id;
        }
        // Grown by what comes, not by doubling: an entry is large, and an allocation past the
        // allocator's small sizes is far slower.
        let room = MAX_ENTRIES.saturating_sub(self.entries.len());
        self.entries.reserve_exact(g.entries.len().min(room));
        for e in g.entries {
            if self.entries.len() < MAX_ENTRIES {
                self.entries.push(e);
            }
        }
        self.dovecot.extend(g.dovecot.into_iter().take(MAX_DOVECOT));
        self.noqueue
            .extend(g.noqueue.into_iter().take(MAX_NOQUEUE_MERGED));
        for f in g.findings {
            // Already charged: `g.line_bytes` comes along below.
            self.fold_finding(f.f, limits, f.cause);
        }
        for n in g.notes {
            self.add_note(n);
        }
        // `g`'s lines (or, counting only, its count of them) as far as there is room.
        let room = limits.max_lines.saturating_sub(self.lines_taken);
        let taken = g.lines_taken.min(room);
        self.lines.extend(g.lines.into_iter().take(taken));
        self.lines_taken += taken;
        self.lines_dropped += (g.lines_taken - taken) as u64;
        self.lines_dropped += g.lines_dropped;
        // Lines dropped here stay charged until this chain is emitted: the budget over-counts a
        // little rather than ever under-counting.
        self.line_bytes += g.line_bytes;
        self.pending_links += g.pending_links;
        self.touch(g.last_activity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_the_same_by_address_or_by_name() {
        let ec2: Arc<str> = Arc::from("ec2");
        assert!(same_host(&ec2, &ec2));
        assert!(same_host(&ec2, &String::from("ec2")));
        assert!(!same_host(&ec2, "dell"));
        // Same start, shorter: a prefix is not the host.
        assert!(!same_host(&ec2, &ec2[..2]));
        assert!(!same_host(&ec2, ""));
    }
}
