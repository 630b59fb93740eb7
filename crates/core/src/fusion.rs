//! Timeline fusion (issue 5): joins parsed log records into per-message chains
//! (Message-ID -> queue id -> `queued as` -> next queue id -> LMTP session -> Dovecot's saved
//! line), attaches findings with their evidence, estimates clock skew between hosts, and fuses
//! a chain with a probe's own client times and Received hops into per-stage latencies.
//! Owns the bounded streaming state. Does not read files or clocks (callers push records and
//! the "now" is the newest log timestamp seen), and does not parse lines (`core::logs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::diagnosis::{
    classify_delivery, classify_dovecot_problem, classify_postfix_problem, classify_smtp_reply,
    classify_text, is_spam_mailbox, Finding, FindingCode,
};
use crate::logs::{AuthFailureKind, Delays, Delivery, DeliveryStatus, Event, LogRecord, Reject};

/// Bounds on the correlator's memory and its waiting times (in log time).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open chains kept at most; beyond it the least recently active are emitted as they are.
    pub max_open_chains: usize,
    /// Evidence lines per finding.
    pub max_evidence: usize,
    /// Log lines kept per message.
    pub max_lines: usize,
    /// Longest evidence / log line kept (longer ones are cut).
    pub max_line_bytes: usize,
    /// Quiet time after which a fully resolved chain is emitted.
    pub settle: TimeDelta,
    /// Quiet time after which a chain still waiting for another host's log is emitted.
    pub grace: TimeDelta,
    /// Quiet time after which a chain whose queue entries never closed is emitted.
    pub idle_timeout: TimeDelta,
    /// Finished chains held until taken; older ones are dropped (and counted).
    pub max_finished: usize,
    /// Distinct host-level findings (code x host) kept.
    pub max_host_findings: usize,
    /// Window for joins by time (NOQUEUE rejects to bounces, Dovecot errors to LMTP failures).
    pub link_window: TimeDelta,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_chains: 50_000,
            max_evidence: 12,
            max_lines: 48,
            max_line_bytes: 1_000,
            settle: TimeDelta::seconds(10),
            grace: TimeDelta::seconds(120),
            idle_timeout: TimeDelta::hours(6),
            max_finished: 100_000,
            max_host_findings: 1_000,
            link_window: TimeDelta::seconds(30),
        }
    }
}

/// Final state of a message as far as the logs show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Delivered,
    Deferred,
    Bounced,
    Rejected,
    Queued,
    Unknown,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Delivered => "delivered",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Queued => "queued",
            MessageStatus::Unknown => "unknown",
        }
    }

    /// The message did not get where it was going (as far as the logs show).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            MessageStatus::Deferred | MessageStatus::Bounced | MessageStatus::Rejected
        )
    }

    /// Severity order for "worst of": higher is worse.
    fn rank(self) -> u8 {
        match self {
            MessageStatus::Delivered => 0,
            MessageStatus::Unknown => 1,
            MessageStatus::Queued => 2,
            MessageStatus::Deferred => 3,
            MessageStatus::Rejected => 4,
            MessageStatus::Bounced => 5,
        }
    }
}

/// One host's part in a message's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// Host role of the log source (`ec2`, `dell`, `dovecot`, ...).
    pub host: String,
    pub queue_id: Option<String>,
    /// Postfix delivery agent of the last attempt (`smtp`, `lmtp`, ...) or `dovecot`.
    pub service: Option<String>,
    /// `sent`, `deferred`, `bounced`, `expired`, `rejected`, `queued`, `saved`, `save_failed`,
    /// `unknown`.
    pub status: String,
    pub relay: Option<String>,
    /// Postfix `delay=` of the last attempt (arrival on this host to end of that attempt), or
    /// Dovecot's `delivery_time`.
    pub delay_ms: Option<u64>,
    pub delays: Option<Delays>,
    pub dsn: Option<String>,
    pub reason: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub client: Option<String>,
    pub next_queue_id: Option<String>,
    pub lmtp_session: Option<String>,
    pub mailbox: Option<String>,
    pub attempts: u32,
    pub arrived_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
    /// The timestamps above are whole-second floors (the log had no fraction).
    pub whole_seconds: bool,
}

/// Everything the logs say about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageChain {
    pub message_id: Option<String>,
    pub status: MessageStatus,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub hops: Vec<Hop>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    /// All its queue entries closed normally (false: still open at end of input or evicted).
    pub complete: bool,
    /// The log lines (bounded; `lines_dropped` counts the rest).
    pub lines: Vec<String>,
    pub lines_dropped: u64,
}

impl MessageChain {
    /// All envelope recipients and original recipients seen, lower-cased.
    pub fn mentions_rcpt(&self, rcpt: &str) -> bool {
        let r = rcpt.trim().trim_matches(['<', '>']);
        self.to.iter().any(|t| t.eq_ignore_ascii_case(r))
            || self
                .hops
                .iter()
                .any(|h| h.to.iter().any(|t| t.eq_ignore_ascii_case(r)))
    }

    /// Same Message-ID (angle brackets optional on either side).
    pub fn has_message_id(&self, id: &str) -> bool {
        self.message_id
            .as_deref()
            .is_some_and(|m| msgid_key(m) == msgid_key(id))
    }
}

/// Estimated clock offset of `host` relative to `reference` (`host - reference`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkewEstimate {
    pub host: String,
    pub reference: String,
    pub min_ms: i64,
    pub max_ms: i64,
    pub samples: u64,
    /// Samples that contradicted the others (drifting clock or a wrong model); not intersected.
    pub conflicts: u64,
    /// Zero lies outside [min, max]: the clocks really disagree.
    pub significant: bool,
}

/// Everything the correlator knows at the end.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub messages: Vec<MessageChain>,
    pub host_findings: Vec<Finding>,
    pub skew: Vec<SkewEstimate>,
    pub stats: CorrelatorStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorrelatorStats {
    pub records: u64,
    pub chains_emitted: u64,
    /// Chains emitted early because `max_open_chains` was reached.
    pub chains_evicted: u64,
    /// Finished chains dropped because nobody took them and `max_finished` was reached.
    pub finished_dropped: u64,
    pub host_findings_dropped: u64,
}

// ---------------------------------------------------------------------------------------------
// Internal state

type ChainId = u64;

/// Message-id comparison key: without angle brackets and surrounding space.
pub fn msgid_key(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RcptStatus {
    Pending,
    Sent,
    Deferred,
    Bounced,
    Rejected,
}

#[derive(Debug, Clone)]
struct Attempt {
    service: String,
    relay: Option<String>,
    delay_ms: Option<u64>,
    delays: Option<Delays>,
    dsn: Option<String>,
    reason: String,
    queued_as: Option<String>,
    lmtp_session: Option<String>,
    at: Option<DateTime<Utc>>,
    subsecond: bool,
}

#[derive(Debug, Clone)]
struct Rcpt {
    to: String,
    status: RcptStatus,
    attempts: u32,
    last: Option<Attempt>,
}

#[derive(Debug, Clone)]
struct Entry {
    host: Arc<str>,
    qid: String,
    client: Option<String>,
    from: Option<String>,
    message_id: Option<String>,
    arrived: Option<DateTime<Utc>>,
    subsecond: bool,
    last_seen: Option<DateTime<Utc>>,
    removed: bool,
    expired: bool,
    /// Whole-message rejection (cleanup/milter/DATA) with its reason.
    rejected: Option<String>,
    qmgr_seen: bool,
    rcpts: Vec<Rcpt>,
    rcpts_dropped: u32,
    /// Per-attempt detail lines (`lost connection`, `SASL authentication failed`...), last few.
    details: VecDeque<String>,
    upstream: Option<(Arc<str>, String)>,
}

impl Entry {
    fn new(host: Arc<str>, qid: &str, ts: Option<DateTime<Utc>>, subsecond: bool) -> Self {
        Entry {
            host,
            qid: qid.to_owned(),
            client: None,
            from: None,
            message_id: None,
            arrived: ts,
            subsecond,
            last_seen: ts,
            removed: false,
            expired: false,
            rejected: None,
            qmgr_seen: false,
            rcpts: Vec::new(),
            rcpts_dropped: 0,
            details: VecDeque::new(),
            upstream: None,
        }
    }

    fn closed(&self) -> bool {
        self.removed || self.rejected.is_some()
    }

    fn sent_to(&self, next: &str) -> Option<&Attempt> {
        self.rcpts
            .iter()
            .filter_map(|r| r.last.as_ref())
            .find(|a| a.queued_as.as_deref() == Some(next))
    }
}

#[derive(Debug, Clone)]
struct DoveDelivery {
    host: Arc<str>,
    user: Option<String>,
    session: Option<String>,
    mailbox: Option<String>,
    saved: bool,
    delivery_time_ms: Option<u64>,
    at: Option<DateTime<Utc>>,
    subsecond: bool,
}

#[derive(Debug, Clone)]
struct NoQueue {
    host: Arc<str>,
    reject: Reject,
    at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct ChainFinding {
    f: Finding,
    /// Seen where the problem is (not as a symptom upstream).
    cause: bool,
}

#[derive(Debug, Clone)]
struct Chain {
    id: ChainId,
    message_id: Option<String>,
    entries: Vec<Entry>,
    dovecot: Vec<DoveDelivery>,
    noqueue: Vec<NoQueue>,
    findings: Vec<ChainFinding>,
    notes: Vec<String>,
    lines: Vec<String>,
    lines_dropped: u64,
    last_activity: Option<DateTime<Utc>>,
    /// `queued as` links not yet matched to a downstream entry.
    pending_links: u32,
    evicted: bool,
}

impl Chain {
    fn new(id: ChainId) -> Self {
        Chain {
            id,
            message_id: None,
            entries: Vec::new(),
            dovecot: Vec::new(),
            noqueue: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
            lines: Vec::new(),
            lines_dropped: 0,
            last_activity: None,
            pending_links: 0,
            evicted: false,
        }
    }

    fn entry_mut(&mut self, host: &str, qid: &str) -> Option<&mut Entry> {
        self.entries
            .iter_mut()
            .find(|e| e.qid == qid && &*e.host == host)
    }

    fn touch(&mut self, ts: Option<DateTime<Utc>>) {
        if let Some(t) = ts {
            self.last_activity = Some(self.last_activity.map_or(t, |l| l.max(t)));
        }
    }

    fn add_line(&mut self, raw: &str, limits: &Limits) {
        if self.lines.len() < limits.max_lines {
            self.lines.push(clip(raw, limits.max_line_bytes));
        } else {
            self.lines_dropped += 1;
        }
    }

    /// Add a finding, folding repeats. Same code and host: one finding, counted. A finding
    /// from the side that caused it (`cause`: the rejecting host, Dovecot's own line) absorbs
    /// the same code seen as a symptom elsewhere (the upstream bounce, Postfix's LMTP
    /// deferral), taking over its host, so each cause is reported once where it happened.
    fn add_finding(&mut self, mut f: Finding, limits: &Limits, cause: bool) {
        let pos = self
            .findings
            .iter()
            .position(|x| x.f.code == f.code && x.f.host == f.host)
            .or_else(|| {
                self.findings
                    .iter()
                    .position(|x| x.f.code == f.code && (cause || x.cause))
            });
        if let Some(i) = pos {
            let existing = &mut self.findings[i];
            if cause && !existing.cause {
                // The cause's own lines lead the evidence.
                existing.cause = true;
                existing.f.host = f.host.clone();
                existing.f.stage = f.stage.clone();
                std::mem::swap(&mut existing.f.message, &mut f.message);
                std::mem::swap(&mut existing.f.evidence, &mut f.evidence);
            }
            let ex = &mut existing.f;
            ex.count += f.count.max(1);
            for e in f.evidence.drain(..) {
                ex.add_evidence(&e, limits.max_evidence);
            }
            ex.seen(f.first_seen);
            ex.seen(f.last_seen);
            return;
        }
        if self.findings.len() < 16 {
            self.findings.push(ChainFinding { f, cause });
        }
    }

    fn awaiting_dovecot(&self) -> bool {
        self.entries.iter().any(|e| {
            e.rcpts.iter().any(|r| {
                r.last.as_ref().is_some_and(|a| {
                    a.lmtp_session.is_some()
                        && !self
                            .dovecot
                            .iter()
                            .any(|d| d.session.is_some() && d.session == a.lmtp_session)
                })
            })
        }) && self.dovecot.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Pending {
    up_host: Arc<str>,
    chain: ChainId,
    sent_at: Option<DateTime<Utc>>,
    sent_subsec: bool,
    window_ms: i64,
}

#[derive(Debug, Clone)]
struct RecentFailure {
    host: Arc<str>,
    to: String,
    from: Option<String>,
    at: Option<DateTime<Utc>>,
    chain: ChainId,
    service: String,
    /// The delivery's reason text: a rejection joins it only if it quotes the rejection's reply.
    reason: String,
}

/// Whether a delivery failure's reason quotes this rejection's reply ("host X said: 554 5.7.1
/// ..."): only then is the rejection the cause. Same recipient and sender within the window is
/// not enough: an earlier probe's rejection, or a failure of another kind (a lost connection)
/// at the same moment, would otherwise be taken for it.
fn quotes_reply(reason: &str, r: &Reject) -> bool {
    match (r.code, r.dsn.as_deref()) {
        // Postfix: "host X[ip] said: 554 5.7.1 <rcpt>: Relay access denied (in reply to ...)".
        (Some(code), dsn) => {
            reason.contains(&format!("said: {code}"))
                || dsn.is_some_and(|d| reason.contains(&format!("{code} {d}")))
        }
        (None, _) => {
            let head: String = r.reason.chars().take(24).collect();
            !head.is_empty() && reason.contains(&head)
        }
    }
}

#[derive(Debug, Clone)]
struct RecentLine {
    host: Arc<str>,
    key: String,
    session: Option<String>,
    at: Option<DateTime<Utc>>,
    code: Option<FindingCode>,
    raw: String,
}

#[derive(Debug, Clone, Copy)]
struct SkewAcc {
    lo: i64,
    hi: i64,
    samples: u64,
    conflicts: u64,
}

const RECENT_CAP: usize = 256;

/// Streaming correlator: push records (in roughly time order per source), take finished chains.
pub struct Correlator {
    limits: Limits,
    next_id: ChainId,
    chains: HashMap<ChainId, Chain>,
    qids: HashMap<String, Vec<(Arc<str>, ChainId)>>,
    msgids: HashMap<String, ChainId>,
    sessions: HashMap<String, ChainId>,
    pending_next: HashMap<String, Pending>,
    noqueue_by_rcpt: HashMap<String, Vec<ChainId>>,
    recent_failures: VecDeque<RecentFailure>,
    recent_dovecot: VecDeque<RecentLine>,
    recent_problems: VecDeque<RecentLine>,
    host_findings: BTreeMap<(FindingCode, String), Finding>,
    skew: BTreeMap<(String, String), SkewAcc>,
    finished: VecDeque<MessageChain>,
    stats: CorrelatorStats,
    now: Option<DateTime<Utc>>,
}

/// Connection setup plus transmission of a hand-off (the window in which the next hop saw the
/// message), in ms; saturating because the figures come from untrusted log text.
fn handoff_window_ms(d: Delays) -> i64 {
    i64::try_from(d.conn_setup_ms.saturating_add(d.transmission_ms))
        .unwrap_or(i64::MAX)
        .min(86_400_000)
}

fn within(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>, w: TimeDelta) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= w,
        // Without timestamps a time join cannot be checked; refuse it.
        _ => false,
    }
}

fn generic(code: FindingCode) -> bool {
    matches!(
        code,
        FindingCode::DeferredOther | FindingCode::BouncedOther | FindingCode::RejectedOther
    )
}

impl Correlator {
    pub fn new(limits: Limits) -> Self {
        Correlator {
            limits,
            next_id: 1,
            chains: HashMap::new(),
            qids: HashMap::new(),
            msgids: HashMap::new(),
            sessions: HashMap::new(),
            pending_next: HashMap::new(),
            noqueue_by_rcpt: HashMap::new(),
            recent_failures: VecDeque::new(),
            recent_dovecot: VecDeque::new(),
            recent_problems: VecDeque::new(),
            host_findings: BTreeMap::new(),
            skew: BTreeMap::new(),
            finished: VecDeque::new(),
            stats: CorrelatorStats::default(),
            now: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of chains still open (for memory checks and tests).
    pub fn open_chains(&self) -> usize {
        self.chains.len()
    }

    /// The newest log timestamp seen so far (the correlator's notion of "now").
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    fn new_chain(&mut self) -> ChainId {
        let id = self.next_id;
        self.next_id += 1;
        self.chains.insert(id, Chain::new(id));
        id
    }

    fn find_entry(&self, host: &str, qid: &str) -> Option<ChainId> {
        self.qids
            .get(qid)?
            .iter()
            .find(|(h, _)| &**h == host)
            .map(|(_, c)| *c)
    }

    /// The chain holding (host, qid), creating entry and chain on first sight.
    fn entry_chain(
        &mut self,
        host: &Arc<str>,
        qid: &str,
        ts: Option<DateTime<Utc>>,
        subsecond: bool,
    ) -> ChainId {
        if let Some(c) = self.find_entry(host, qid) {
            return c;
        }
        let cid = self.new_chain();
        if let Some(ch) = self.chains.get_mut(&cid) {
            ch.entries
                .push(Entry::new(host.clone(), qid, ts, subsecond));
            ch.touch(ts);
        }
        self.qids
            .entry(qid.to_owned())
            .or_default()
            .push((host.clone(), cid));
        // Someone upstream already said `queued as <qid>`?
        if let Some(p) = self.pending_next.get(qid) {
            if p.up_host != *host {
                let p = self.pending_next.remove(qid).expect("checked above");
                return self.link(p, host, qid, ts, subsecond, cid);
            }
        }
        cid
    }

    /// Join the upstream chain of `p` with the chain of the downstream entry (host, qid).
    fn link(
        &mut self,
        p: Pending,
        host: &Arc<str>,
        qid: &str,
        arrived: Option<DateTime<Utc>>,
        subsecond: bool,
        down_chain: ChainId,
    ) -> ChainId {
        let keep = self.merge(p.chain, down_chain);
        {
            let Some(ch) = self.chains.get_mut(&keep) else {
                return keep;
            };
            ch.pending_links = ch.pending_links.saturating_sub(1);
            let up_qid = ch
                .entries
                .iter()
                .find(|e| e.host == p.up_host && e.sent_to(qid).is_some())
                .map(|e| e.qid.clone());
            if let (Some(uq), Some(e)) = (up_qid, ch.entry_mut(host, qid)) {
                e.upstream = Some((p.up_host.clone(), uq));
            }
        }
        self.skew_sample(
            &p.up_host,
            host,
            p.sent_at,
            p.sent_subsec,
            arrived,
            subsecond,
            p.window_ms,
            keep,
        );
        keep
    }

    /// Record one hand-off's constraint on `down - up` clock offset.
    #[allow(clippy::too_many_arguments)]
    fn skew_sample(
        &mut self,
        up: &str,
        down: &str,
        sent_at: Option<DateTime<Utc>>,
        sent_subsec: bool,
        arrived: Option<DateTime<Utc>>,
        arr_subsec: bool,
        window_ms: i64,
        chain: ChainId,
    ) {
        let (Some(a), Some(b)) = (sent_at, arrived) else {
            return;
        };
        if up == down {
            return;
        }
        let res_a = if sent_subsec { 1 } else { 1000 };
        let res_b = if arr_subsec { 1 } else { 1000 };
        let d = (b - a).num_milliseconds();
        // Arrival happened during the upstream's connection+transmission window that ends at
        // its `sent` line: down - up in [d - res_a, d + res_b + window].
        let lo = d.saturating_sub(res_a);
        let hi = d
            .saturating_add(res_b)
            .saturating_add(window_ms.max(0))
            .saturating_add(10);
        let acc = self
            .skew
            .entry((down.to_owned(), up.to_owned()))
            .or_insert(SkewAcc {
                lo,
                hi,
                samples: 0,
                conflicts: 0,
            });
        if acc.samples == 0 {
            acc.lo = lo;
            acc.hi = hi;
        } else if lo > acc.hi || hi < acc.lo {
            acc.conflicts += 1;
        } else {
            acc.lo = acc.lo.max(lo);
            acc.hi = acc.hi.min(hi);
        }
        acc.samples += 1;
        if lo > 0 || hi < 0 {
            let note = if lo > 0 {
                format!(
                    "clock skew: {down}'s log time is {:.1}-{:.1} s ahead of {up}'s at this hand-off",
                    lo as f64 / 1000.0,
                    hi as f64 / 1000.0
                )
            } else {
                format!(
                    "clock skew: {down}'s log time is {:.1}-{:.1} s behind {up}'s at this hand-off",
                    -hi as f64 / 1000.0,
                    -lo as f64 / 1000.0
                )
            };
            if let Some(ch) = self.chains.get_mut(&chain) {
                if !ch.notes.contains(&note) && ch.notes.len() < 8 {
                    ch.notes.push(note);
                }
            }
        }
    }

    /// Merge chain `b` into `a` (the older id survives); returns the survivor.
    fn merge(&mut self, a: ChainId, b: ChainId) -> ChainId {
        if a == b {
            return a;
        }
        let (keep, gone) = if a < b { (a, b) } else { (b, a) };
        let Some(g) = self.chains.remove(&gone) else {
            return keep;
        };
        if !self.chains.contains_key(&keep) {
            // Survivor already emitted (should not happen): put the other back.
            self.chains.insert(gone, g);
            return gone;
        }
        // Re-point indices.
        for e in &g.entries {
            if let Some(v) = self.qids.get_mut(&e.qid) {
                for (h, c) in v.iter_mut() {
                    if *h == e.host && *c == gone {
                        *c = keep;
                    }
                }
            }
            for r in &e.rcpts {
                if let Some(a) = &r.last {
                    if let Some(s) = &a.lmtp_session {
                        if self.sessions.get(s) == Some(&gone) {
                            self.sessions.insert(s.clone(), keep);
                        }
                    }
                    if let Some(n) = &a.queued_as {
                        if let Some(p) = self.pending_next.get_mut(n) {
                            if p.chain == gone {
                                p.chain = keep;
                            }
                        }
                    }
                }
            }
        }
        for d in &g.dovecot {
            if let Some(s) = &d.session {
                if self.sessions.get(s) == Some(&gone) {
                    self.sessions.insert(s.clone(), keep);
                }
            }
        }
        for nq in &g.noqueue {
            if let Some(to) = &nq.reject.to {
                if let Some(v) = self.noqueue_by_rcpt.get_mut(&to.to_ascii_lowercase()) {
                    for c in v.iter_mut() {
                        if *c == gone {
                            *c = keep;
                        }
                    }
                }
            }
        }
        if let Some(m) = &g.message_id {
            if self.msgids.get(msgid_key(m)) == Some(&gone) {
                self.msgids.insert(msgid_key(m).to_owned(), keep);
            }
        }
        let limits = self.limits;
        let k = self.chains.get_mut(&keep).expect("checked above");
        if k.message_id.is_none() {
            k.message_id = g.message_id.clone();
        }
        for e in g.entries {
            if k.entries.len() < 32 {
                k.entries.push(e);
            }
        }
        k.dovecot.extend(g.dovecot.into_iter().take(64));
        k.noqueue.extend(g.noqueue.into_iter().take(16));
        for f in g.findings {
            k.add_finding(f.f, &limits, f.cause);
        }
        for n in g.notes {
            if !k.notes.contains(&n) && k.notes.len() < 8 {
                k.notes.push(n);
            }
        }
        for l in g.lines {
            if k.lines.len() < limits.max_lines {
                k.lines.push(l);
            } else {
                k.lines_dropped += 1;
            }
        }
        k.lines_dropped += g.lines_dropped;
        k.pending_links += g.pending_links;
        k.touch(g.last_activity);
        keep
    }

    fn host_finding(&mut self, code: FindingCode, host: &str, message: String, rec: &LogRecord) {
        let key = (code, host.to_owned());
        let max_ev = self.limits.max_evidence;
        let max_line = self.limits.max_line_bytes;
        if let Some(f) = self.host_findings.get_mut(&key) {
            f.count += 1;
            f.add_evidence(&clip(&rec.raw, max_line), max_ev);
            f.seen(rec.timestamp);
            return;
        }
        if self.host_findings.len() >= self.limits.max_host_findings {
            self.stats.host_findings_dropped += 1;
            return;
        }
        let mut f = Finding::new(code, Some(host), message);
        f.add_evidence(&clip(&rec.raw, max_line), max_ev);
        f.seen(rec.timestamp);
        self.host_findings.insert(key, f);
    }

    fn remember(ring: &mut VecDeque<RecentLine>, item: RecentLine) {
        if ring.len() >= RECENT_CAP {
            ring.pop_front();
        }
        ring.push_back(item);
    }

    /// Feed one parsed record.
    pub fn push(&mut self, rec: LogRecord) {
        self.stats.records += 1;
        if let Some(t) = rec.timestamp {
            self.now = Some(self.now.map_or(t, |n| n.max(t)));
        }
        let role = rec.role.clone();
        let ts = rec.timestamp;
        let sub = rec.subsecond;
        let limits = self.limits;
        match &rec.event {
            Event::Client {
                queue_id,
                client,
                sasl_username: _,
            } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        e.client = Some(client.clone());
                        if e.arrived.is_none() {
                            e.arrived = ts;
                            e.subsecond = sub;
                        }
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::Pickup { queue_id, from } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        e.from = Some(from.clone());
                        e.client = Some("local pickup".into());
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::MessageId {
                queue_id,
                message_id,
            } => {
                let mut cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        e.message_id = Some(message_id.clone());
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
                let key = msgid_key(message_id);
                if !key.is_empty() {
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
                            ch.message_id = Some(message_id.clone());
                        }
                    }
                }
            }
            Event::QueueActive { queue_id, from, .. } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        e.from = Some(from.clone());
                        e.qmgr_seen = true;
                        e.last_seen = ts.or(e.last_seen);
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::Delivery(d) => self.on_delivery(&rec, d),
            Event::Expired { queue_id, .. } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        e.expired = true;
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::Removed { queue_id } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        e.removed = true;
                        e.last_seen = ts.or(e.last_seen);
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::Reject(r) => self.on_reject(&rec, r),
            Event::Notification { queue_id, .. } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::AttemptDetail { queue_id, text } => {
                let cid = self.entry_chain(&role, queue_id, ts, sub);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, queue_id) {
                        if e.details.len() >= 4 {
                            e.details.pop_front();
                        }
                        let _ = text;
                        e.details.push_back(clip(&rec.raw, limits.max_line_bytes));
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                }
            }
            Event::SaslAuthFailed {
                client, mechanism, ..
            } => {
                let msg =
                    format!("{role}: SASL {mechanism} authentication failed for client {client}");
                self.host_finding(FindingCode::AuthFailed, &role, msg, &rec);
            }
            Event::Problem {
                severity,
                queue_id,
                text,
            } => {
                let code = classify_postfix_problem(*severity, text);
                if let Some(q) = queue_id {
                    if let Some(cid) = self.find_entry(&role, q) {
                        if let Some(ch) = self.chains.get_mut(&cid) {
                            ch.add_line(&rec.raw, &limits);
                        }
                    }
                }
                if let Some(c) = code {
                    let msg = format!("{role}: {}", clip(text, 300));
                    self.host_finding(c, &role, msg, &rec);
                }
                Self::remember(
                    &mut self.recent_problems,
                    RecentLine {
                        host: role.clone(),
                        key: String::new(),
                        session: None,
                        at: ts,
                        code,
                        raw: clip(&rec.raw, limits.max_line_bytes),
                    },
                );
            }
            Event::DovecotDelivery { .. } => self.on_dovecot_delivery(&rec),
            Event::DovecotProblem {
                service,
                user,
                session,
                severity,
                text,
            } => {
                let code = classify_dovecot_problem(*severity, text);
                let mut attached = false;
                if let Some(s) = session {
                    if let Some(&cid) = self.sessions.get(s) {
                        if let Some(ch) = self.chains.get_mut(&cid) {
                            ch.add_line(&rec.raw, &limits);
                            ch.touch(ts);
                            attached = true;
                        }
                    }
                }
                if service == "lmtp" || service == "lda" {
                    if let Some(u) = user {
                        let key = u.to_ascii_lowercase();
                        // An LMTP failure logged before this line? Attach to its message.
                        let hit = self
                            .recent_failures
                            .iter()
                            .rev()
                            .find(|f| {
                                f.to == key
                                    && f.service == "lmtp"
                                    && within(f.at, ts, limits.link_window)
                            })
                            .map(|f| f.chain);
                        if let Some(cid) = hit {
                            self.upgrade_with_dovecot(cid, code, &rec);
                            attached = true;
                        }
                        Self::remember(
                            &mut self.recent_dovecot,
                            RecentLine {
                                host: role.clone(),
                                key,
                                session: session.clone(),
                                at: ts,
                                code,
                                raw: clip(&rec.raw, limits.max_line_bytes),
                            },
                        );
                    }
                }
                if let (Some(c), false) = (code, attached) {
                    let who = user
                        .as_deref()
                        .map(|u| format!(" ({u})"))
                        .unwrap_or_default();
                    let msg = format!("{role}: Dovecot {service}{who}: {}", clip(text, 300));
                    self.host_finding(c, &role, msg, &rec);
                } else if let (Some(c), true) = (code, attached) {
                    // Still worth a host-level mention: the cause affects every message.
                    if matches!(
                        c,
                        FindingCode::MailboxPermissionDenied | FindingCode::AuthBackendError
                    ) {
                        let msg = format!("{role}: Dovecot {service}: {}", clip(text, 300));
                        self.host_finding(c, &role, msg, &rec);
                    }
                }
            }
            Event::Login {
                service,
                user,
                success,
                remote_ip,
                ..
            } => {
                if !success {
                    let msg = format!(
                        "{role}: {service} login failed for {} from {}",
                        user.as_deref().unwrap_or("?"),
                        remote_ip.as_deref().unwrap_or("?")
                    );
                    self.host_finding(FindingCode::ImapAuthFailed, &role, msg, &rec);
                }
            }
            Event::AuthFailure {
                user,
                kind,
                remote_ip: None,
                ..
            } => {
                // A lookup without a client address is Dovecot resolving an LMTP/LDA
                // recipient, not a login: evidence for the delivery's own finding.
                let code = match kind {
                    AuthFailureKind::UnknownUser => FindingCode::RecipientUnknown,
                    AuthFailureKind::PasswordMismatch => FindingCode::ImapAuthFailed,
                };
                if let Some(u) = user {
                    let key = u.to_ascii_lowercase();
                    let hit = self
                        .recent_failures
                        .iter()
                        .rev()
                        .find(|f| f.to == key && within(f.at, ts, limits.link_window))
                        .map(|f| f.chain);
                    if let Some(cid) = hit {
                        if let Some(ch) = self.chains.get_mut(&cid) {
                            ch.add_line(&rec.raw, &limits);
                            if let Some(x) = ch.findings.iter_mut().find(|x| x.f.code == code) {
                                x.f.add_evidence(
                                    &clip(&rec.raw, limits.max_line_bytes),
                                    limits.max_evidence,
                                );
                            }
                        }
                    }
                    Self::remember(
                        &mut self.recent_dovecot,
                        RecentLine {
                            host: role.clone(),
                            key,
                            session: None,
                            at: ts,
                            code: Some(code),
                            raw: clip(&rec.raw, limits.max_line_bytes),
                        },
                    );
                }
            }
            Event::AuthFailure { user, kind, .. } => {
                let what = match kind {
                    AuthFailureKind::PasswordMismatch => "password mismatch",
                    AuthFailureKind::UnknownUser => "unknown user",
                };
                let msg = format!(
                    "{role}: Dovecot auth {what} for {}",
                    user.as_deref().unwrap_or("?")
                );
                self.host_finding(FindingCode::ImapAuthFailed, &role, msg, &rec);
            }
            Event::AuthBackendError { text } => {
                let msg = format!("{role}: Dovecot auth backend error: {}", clip(text, 300));
                self.host_finding(FindingCode::AuthBackendError, &role, msg, &rec);
            }
            Event::Info => {}
        }
        if self.stats.records.is_multiple_of(4096)
            || self.chains.len() > self.limits.max_open_chains
        {
            self.sweep(false);
        }
    }

    fn on_delivery(&mut self, rec: &LogRecord, d: &Delivery) {
        let role = rec.role.clone();
        let ts = rec.timestamp;
        let limits = self.limits;
        let mut cid = self.entry_chain(&role, &d.queue_id, ts, rec.subsecond);
        let mut code = classify_delivery(d.status, &d.reason);
        let mut evidence = vec![clip(&rec.raw, limits.max_line_bytes)];
        let mut from = None;
        if let Some(ch) = self.chains.get_mut(&cid) {
            ch.add_line(&rec.raw, &limits);
            ch.touch(ts);
            if let Some(e) = ch.entry_mut(&role, &d.queue_id) {
                from = e.from.clone();
                e.last_seen = ts.or(e.last_seen);
                if code.is_some() {
                    for det in &e.details {
                        if let Some(dc) = classify_text(det) {
                            if code.is_some_and(generic) {
                                code = Some(dc);
                            }
                        }
                    }
                    evidence.extend(e.details.iter().cloned());
                    e.details.clear();
                }
                let attempt = Attempt {
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
                };
                let status = match d.status {
                    DeliveryStatus::Sent | DeliveryStatus::Verify => RcptStatus::Sent,
                    DeliveryStatus::Deferred => RcptStatus::Deferred,
                    DeliveryStatus::Bounced => RcptStatus::Bounced,
                    DeliveryStatus::Other => RcptStatus::Deferred,
                };
                match e.rcpts.iter().position(|r| r.to == d.to) {
                    Some(i) => {
                        let r = &mut e.rcpts[i];
                        r.attempts += 1;
                        r.status = status;
                        r.last = Some(attempt);
                    }
                    None if e.rcpts.len() < 64 => e.rcpts.push(Rcpt {
                        to: d.to.clone(),
                        status,
                        attempts: 1,
                        last: Some(attempt),
                    }),
                    None => e.rcpts_dropped += 1,
                }
            }
        }
        if let Some(mut c) = code {
            let to_key = d.to.to_ascii_lowercase();
            // Dovecot's own error line explains LMTP's generic "Internal error occurred".
            if d.service == "lmtp" || d.service == "lda" {
                for r in self.recent_dovecot.iter().rev() {
                    if r.key == to_key && within(r.at, ts, limits.link_window) {
                        if let (true, Some(dc)) = (generic(c), r.code) {
                            c = dc;
                        }
                        evidence.push(r.raw.clone());
                        break;
                    }
                }
            }
            // Host warnings that explain it (e.g. transport.db unavailable next to "address
            // resolver failure").
            let (c2, ev) = self.explaining_problems(&role, ts, c);
            c = c2;
            evidence.extend(ev);
            // The next hop's NOQUEUE reject of this very recipient: join it (its finding, from
            // the rejecting side, absorbs this one when the codes agree).
            if let Some(nq) = self.find_noqueue(&role, &to_key, from.as_deref(), ts, &d.reason) {
                cid = self.merge(cid, nq);
            }
            {
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
                let mut f = Finding::new(c, Some(&role), msg);
                for ev in &evidence {
                    f.add_evidence(ev, limits.max_evidence);
                }
                f.seen(ts);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    ch.add_finding(f, &limits, false);
                }
            }
            if self.recent_failures.len() >= RECENT_CAP {
                self.recent_failures.pop_front();
            }
            self.recent_failures.push_back(RecentFailure {
                host: role.clone(),
                to: to_key,
                from,
                at: ts,
                chain: cid,
                service: d.service.clone(),
                reason: clip(&d.reason, 300),
            });
        }
        if let Some(next) = &d.queued_as {
            self.on_queued_as(cid, &role, next, ts, rec.subsecond, d.delays);
        }
        if let Some(s) = &d.lmtp_session {
            match self.sessions.get(s).copied() {
                Some(other) if other != cid && self.chains.contains_key(&other) => {
                    if self.compatible(cid, other) {
                        let keep = self.merge(cid, other);
                        self.sample_dovecot(keep, s);
                    }
                }
                Some(_) => self.sample_dovecot(cid, s),
                None => {
                    self.sessions.insert(s.clone(), cid);
                }
            }
        }
    }

    /// Two chains may be joined by a session id only if their message-ids do not contradict.
    fn compatible(&self, a: ChainId, b: ChainId) -> bool {
        let ma = self.chains.get(&a).and_then(|c| c.message_id.as_deref());
        let mb = self.chains.get(&b).and_then(|c| c.message_id.as_deref());
        match (ma, mb) {
            (Some(x), Some(y)) => msgid_key(x) == msgid_key(y),
            _ => true,
        }
    }

    fn on_queued_as(
        &mut self,
        cid: ChainId,
        role: &Arc<str>,
        next: &str,
        ts: Option<DateTime<Utc>>,
        subsecond: bool,
        delays: Option<Delays>,
    ) {
        let window_ms = delays.map(handoff_window_ms).unwrap_or(0);
        let p = Pending {
            up_host: role.clone(),
            chain: cid,
            sent_at: ts,
            sent_subsec: subsecond,
            window_ms,
        };
        let down = self.qids.get(next).and_then(|v| {
            v.iter()
                .find(|(h, _)| h != role)
                .map(|(h, c)| (h.clone(), *c))
        });
        match down {
            Some((host, dcid)) => {
                let Some((arrived, sub, linked)) = self
                    .chains
                    .get(&dcid)
                    .and_then(|ch| ch.entries.iter().find(|e| e.host == host && e.qid == next))
                    .map(|e| (e.arrived, e.subsecond, e.upstream.is_some()))
                else {
                    return;
                };
                if linked {
                    // Another recipient of the same hand-off: already joined and sampled.
                    return;
                }
                if let Some(ch) = self.chains.get_mut(&cid) {
                    ch.pending_links += 1;
                }
                self.link(p, &host, next, arrived, sub, dcid);
            }
            None => {
                if self.pending_next.get(next).is_some_and(|x| x.chain == cid) {
                    return;
                }
                if let Some(ch) = self.chains.get_mut(&cid) {
                    ch.pending_links += 1;
                }
                self.pending_next.insert(next.to_owned(), p);
            }
        }
    }

    /// Skew sample between a Postfix LMTP hand-off and Dovecot's saved line in chain `cid`.
    fn sample_dovecot(&mut self, cid: ChainId, session: &str) {
        let Some(ch) = self.chains.get(&cid) else {
            return;
        };
        let up = ch.entries.iter().find_map(|e| {
            e.rcpts
                .iter()
                .filter_map(|r| r.last.as_ref())
                .find_map(|a| {
                    (a.lmtp_session.as_deref() == Some(session)).then(|| {
                        let w = a.delays.map(handoff_window_ms).unwrap_or(0);
                        (e.host.clone(), a.at, a.subsecond, w)
                    })
                })
        });
        let down = ch
            .dovecot
            .iter()
            .find(|d| d.session.as_deref() == Some(session))
            .map(|d| (d.host.clone(), d.at, d.subsecond));
        if let (Some((uh, ua, us, w)), Some((dh, da, ds))) = (up, down) {
            self.skew_sample(&uh, &dh, ua, us, da, ds, w, cid);
        }
    }

    fn find_noqueue(
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
                            && match (from, nq.reject.from.as_deref()) {
                                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                                _ => true,
                            }
                    })
            })
        })
    }

    fn on_reject(&mut self, rec: &LogRecord, r: &Reject) {
        let role = rec.role.clone();
        let ts = rec.timestamp;
        let limits = self.limits;
        let mut code = classify_smtp_reply(r.code.unwrap_or(0), r.dsn.as_deref(), &r.reason);
        let mut evidence = vec![clip(&rec.raw, limits.max_line_bytes)];
        let (c2, ev) = self.explaining_problems(&role, ts, code);
        code = c2;
        evidence.extend(ev);
        let reply = format!(
            "{}{}{}",
            r.code.map(|c| format!("{c} ")).unwrap_or_default(),
            r.dsn
                .as_deref()
                .map(|d| format!("{d} "))
                .unwrap_or_default(),
            r.reason
        );
        let msg = format!(
            "{role} rejected {}{}{}{}: {}",
            r.stage,
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
            clip(&reply, 300)
        );
        let mut f = Finding::new(code, Some(&role), msg);
        for e in &evidence {
            f.add_evidence(e, limits.max_evidence);
        }
        f.seen(ts);
        match &r.queue_id {
            Some(q) => {
                let cid = self.entry_chain(&role, q, ts, rec.subsecond);
                if let Some(ch) = self.chains.get_mut(&cid) {
                    if let Some(e) = ch.entry_mut(&role, q) {
                        if r.stage == "RCPT" {
                            let to = r.to.clone().unwrap_or_default();
                            match e.rcpts.iter().position(|x| x.to == to) {
                                Some(i) => e.rcpts[i].status = RcptStatus::Rejected,
                                None if e.rcpts.len() < 64 => e.rcpts.push(Rcpt {
                                    to,
                                    status: RcptStatus::Rejected,
                                    attempts: 0,
                                    last: None,
                                }),
                                None => e.rcpts_dropped += 1,
                            }
                        } else if r.action != "hold" {
                            e.rejected = Some(clip(&reply, 300));
                        }
                        if e.from.is_none() {
                            e.from = r.from.clone();
                        }
                    }
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                    ch.add_finding(f, &limits, true);
                }
            }
            None => {
                let mut cid = self.new_chain();
                if let Some(ch) = self.chains.get_mut(&cid) {
                    ch.noqueue.push(NoQueue {
                        host: role.clone(),
                        reject: r.clone(),
                        at: ts,
                    });
                    ch.add_line(&rec.raw, &limits);
                    ch.touch(ts);
                    ch.add_finding(f, &limits, true);
                }
                if let Some(to) = &r.to {
                    let key = to.to_ascii_lowercase();
                    // An upstream failure for this recipient logged before this line?
                    let hit = self
                        .recent_failures
                        .iter()
                        .rev()
                        .find(|x| {
                            x.to == key
                                && x.host != role
                                && within(x.at, ts, limits.link_window)
                                && quotes_reply(&x.reason, r)
                                && match (x.from.as_deref(), r.from.as_deref()) {
                                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                                    _ => true,
                                }
                        })
                        .map(|x| x.chain);
                    if let Some(up) = hit {
                        if self.chains.contains_key(&up) {
                            // The reject's finding (cause side) absorbs the upstream bounce's.
                            cid = self.merge(up, cid);
                        }
                    }
                    let v = self.noqueue_by_rcpt.entry(key).or_default();
                    if !v.contains(&cid) {
                        v.push(cid);
                    }
                }
            }
        }
    }

    /// Recent warning lines on `host` that explain a failure classified as `code` (up to
    /// three, oldest first); a generic code takes the warnings' specific one.
    fn explaining_problems(
        &self,
        host: &str,
        ts: Option<DateTime<Utc>>,
        code: FindingCode,
    ) -> (FindingCode, Vec<String>) {
        let mut code = code;
        let mut hits: Vec<String> = Vec::new();
        // The ring is in arrival order (roughly time order): stop once it is well older than
        // the window instead of walking all of it for every failure.
        let floor = ts.and_then(|t| t.checked_sub_signed(self.limits.link_window * 4));
        for p in self.recent_problems.iter().rev() {
            if let (Some(f), Some(a)) = (floor, p.at) {
                if a < f {
                    break;
                }
            }
            let Some(pc) = p.code else { continue };
            if &*p.host != host || !within(p.at, ts, self.limits.link_window) {
                continue;
            }
            if pc == code || generic(code) {
                code = pc;
                if !hits.contains(&p.raw) {
                    hits.push(p.raw.clone());
                }
                if hits.len() >= 3 {
                    break;
                }
            }
        }
        hits.reverse();
        (code, hits)
    }

    fn upgrade_with_dovecot(&mut self, cid: ChainId, code: Option<FindingCode>, rec: &LogRecord) {
        let limits = self.limits;
        let Some(ch) = self.chains.get_mut(&cid) else {
            return;
        };
        ch.add_line(&rec.raw, &limits);
        // The LMTP failure's generic finding gets the specific cause, the Dovecot line, and
        // Dovecot's host (where the cause is).
        if let Some(x) = ch
            .findings
            .iter_mut()
            .rev()
            .find(|x| generic(x.f.code) || Some(x.f.code) == code)
        {
            if let (true, Some(c)) = (generic(x.f.code), code) {
                x.f.code = c;
            }
            if code.is_some() {
                x.cause = true;
                x.f.host = Some(rec.role.to_string());
                x.f.stage = Some(rec.role.to_string());
                if let Event::DovecotProblem { user, text, .. } = &rec.event {
                    x.f.message = format!(
                        "{}: Dovecot could not deliver for {}: {}",
                        rec.role,
                        user.as_deref().unwrap_or("?"),
                        clip(text, 300)
                    );
                }
            }
            x.f.rehint();
            x.f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
            x.f.seen(rec.timestamp);
        }
    }

    fn on_dovecot_delivery(&mut self, rec: &LogRecord) {
        let Event::DovecotDelivery {
            user,
            session,
            message_id,
            mailbox,
            saved,
            delivery_time_ms,
            text,
        } = &rec.event
        else {
            return;
        };
        let role = rec.role.clone();
        let ts = rec.timestamp;
        let limits = self.limits;
        // A save failure's reason is often generic; Dovecot's error line just before it
        // (same session, or same user within the window) has the cause.
        let (recent_code, recent_raw) = if *saved {
            (None, None)
        } else {
            let user_key = user.as_deref().map(str::to_ascii_lowercase);
            self.recent_dovecot
                .iter()
                .rev()
                .find(|r| {
                    r.code.is_some()
                        && ((session.is_some() && r.session == *session)
                            || (user_key.as_deref() == Some(r.key.as_str())
                                && within(r.at, ts, limits.link_window)))
                })
                .map(|r| (r.code, Some(r.raw.clone())))
                .unwrap_or((None, None))
        };
        let by_msgid = message_id
            .as_deref()
            .map(msgid_key)
            .filter(|k| !k.is_empty())
            .and_then(|k| self.msgids.get(k).copied())
            .filter(|c| self.chains.contains_key(c));
        let by_session = session
            .as_deref()
            .and_then(|s| self.sessions.get(s).copied())
            .filter(|c| self.chains.contains_key(c));
        let mut cid = match (by_msgid, by_session) {
            (Some(a), Some(b)) if a != b && self.compatible(a, b) => self.merge(a, b),
            (Some(a), _) => a,
            (None, Some(b)) => b,
            _ => {
                let c = self.new_chain();
                if let Some(m) = message_id.as_deref() {
                    let k = msgid_key(m);
                    if !k.is_empty() {
                        self.msgids.insert(k.to_owned(), c);
                    }
                }
                c
            }
        };
        if by_msgid.is_none() && by_session.is_some() {
            // A session-joined chain with a different message-id must not absorb this line.
            let ok = match (
                message_id.as_deref(),
                self.chains.get(&cid).and_then(|c| c.message_id.as_deref()),
            ) {
                (Some(a), Some(b)) => msgid_key(a) == msgid_key(b),
                _ => true,
            };
            if !ok {
                cid = self.new_chain();
            }
        }
        if let Some(ch) = self.chains.get_mut(&cid) {
            if ch.message_id.is_none() {
                ch.message_id = message_id.clone();
            }
            if ch.dovecot.len() < 64 {
                ch.dovecot.push(DoveDelivery {
                    host: role.clone(),
                    user: user.clone(),
                    session: session.clone(),
                    mailbox: mailbox.clone(),
                    saved: *saved,
                    delivery_time_ms: *delivery_time_ms,
                    at: ts,
                    subsecond: rec.subsecond,
                });
            }
            ch.add_line(&rec.raw, &limits);
            ch.touch(ts);
            let who = user.as_deref().unwrap_or("?");
            let mb = mailbox.as_deref().unwrap_or("?");
            if !*saved {
                let c = classify_text(text)
                    .or(recent_code)
                    .unwrap_or(FindingCode::DeferredOther);
                let mut f = Finding::new(
                    c,
                    Some(&role),
                    format!(
                        "{role}: Dovecot could not save the message for {who} into {mb}: {}",
                        clip(text, 300)
                    ),
                );
                if let Some(r) = &recent_raw {
                    f.add_evidence(r, limits.max_evidence);
                }
                f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
                f.seen(ts);
                ch.add_finding(f, &limits, true);
            } else if is_spam_mailbox(mb) {
                let mut f = Finding::new(
                    FindingCode::SpamFolder,
                    Some(&role),
                    format!("{role}: Dovecot filed the message for {who} into {mb}"),
                );
                f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
                f.seen(ts);
                ch.add_finding(f, &limits, true);
            }
        }
        if let Some(s) = session {
            self.sessions.entry(s.clone()).or_insert(cid);
            self.sample_dovecot(cid, s);
        }
    }

    /// Emit chains that are done (or must go to respect the bounds).
    fn sweep(&mut self, flush_all: bool) {
        let now = self.now;
        let l = &self.limits;
        let quiet = |ch: &Chain| -> Option<TimeDelta> { Some(now? - ch.last_activity.or(now)?) };
        let mut done: Vec<ChainId> = self
            .chains
            .values()
            .filter(|ch| {
                if flush_all {
                    return true;
                }
                let Some(q) = quiet(ch) else {
                    return false;
                };
                if ch.entries.is_empty() {
                    // NOQUEUE rejects and Dovecot-only deliveries.
                    let wait = if ch.dovecot.is_empty() {
                        l.settle
                    } else {
                        l.grace
                    };
                    return q >= wait;
                }
                let closed = ch.entries.iter().all(Entry::closed);
                if closed {
                    let waiting = ch.pending_links > 0 || ch.awaiting_dovecot();
                    q >= if waiting { l.grace } else { l.settle }
                } else {
                    q >= l.idle_timeout
                }
            })
            .map(|ch| ch.id)
            .collect();
        let over = (self.chains.len() - done.len()).saturating_sub(self.limits.max_open_chains);
        if over > 0 {
            // Evict the least recently active down to 90% of the cap.
            let target = over + self.limits.max_open_chains / 10;
            let done_set: std::collections::HashSet<ChainId> = done.iter().copied().collect();
            let mut rest: Vec<(Option<DateTime<Utc>>, ChainId)> = self
                .chains
                .values()
                .filter(|c| !done_set.contains(&c.id))
                .map(|c| (c.last_activity, c.id))
                .collect();
            rest.sort();
            for (_, id) in rest.into_iter().take(target) {
                if let Some(ch) = self.chains.get_mut(&id) {
                    ch.evicted = true;
                }
                self.stats.chains_evicted += 1;
                done.push(id);
            }
        }
        done.sort_unstable();
        for id in done {
            self.emit(id);
        }
    }

    fn emit(&mut self, id: ChainId) {
        let Some(ch) = self.chains.remove(&id) else {
            return;
        };
        // Drop index entries pointing at this chain.
        for e in &ch.entries {
            if let Some(v) = self.qids.get_mut(&e.qid) {
                v.retain(|(_, c)| *c != id);
                if v.is_empty() {
                    self.qids.remove(&e.qid);
                }
            }
            for r in &e.rcpts {
                if let Some(a) = &r.last {
                    if let Some(s) = &a.lmtp_session {
                        if self.sessions.get(s) == Some(&id) {
                            self.sessions.remove(s);
                        }
                    }
                    if let Some(n) = &a.queued_as {
                        if self.pending_next.get(n).is_some_and(|p| p.chain == id) {
                            self.pending_next.remove(n);
                        }
                    }
                }
            }
        }
        for d in &ch.dovecot {
            if let Some(s) = &d.session {
                if self.sessions.get(s) == Some(&id) {
                    self.sessions.remove(s);
                }
            }
        }
        for nq in &ch.noqueue {
            if let Some(to) = &nq.reject.to {
                let k = to.to_ascii_lowercase();
                if let Some(v) = self.noqueue_by_rcpt.get_mut(&k) {
                    v.retain(|c| *c != id);
                    if v.is_empty() {
                        self.noqueue_by_rcpt.remove(&k);
                    }
                }
            }
        }
        if let Some(m) = &ch.message_id {
            if self.msgids.get(msgid_key(m)) == Some(&id) {
                self.msgids.remove(msgid_key(m));
            }
        }
        for e in &ch.entries {
            if let Some(m) = &e.message_id {
                if self.msgids.get(msgid_key(m)) == Some(&id) {
                    self.msgids.remove(msgid_key(m));
                }
            }
        }
        let mut ch = ch;
        // The chain is gone: move its lines out instead of copying them.
        let lines = std::mem::take(&mut ch.lines);
        let mut out = build_chain(&ch);
        out.lines = lines;
        self.stats.chains_emitted += 1;
        if self.finished.len() >= self.limits.max_finished {
            self.finished.pop_front();
            self.stats.finished_dropped += 1;
        }
        self.finished.push_back(out);
    }

    /// Chains finished so far (emptied by this call). Call regularly when streaming.
    pub fn take_finished(&mut self) -> Vec<MessageChain> {
        self.finished.drain(..).collect()
    }

    /// A snapshot of everything known: finished-but-not-taken chains, then open ones.
    pub fn messages(&self) -> Vec<MessageChain> {
        let mut out: Vec<MessageChain> = self.finished.iter().cloned().collect();
        let mut ids: Vec<&ChainId> = self.chains.keys().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(ch) = self.chains.get(id) {
                out.push(build_chain(ch));
            }
        }
        out
    }

    /// The chain(s) of one message-id, open or finished-but-not-taken (live use by the runner).
    pub fn message(&self, message_id: &str) -> Option<MessageChain> {
        let key = msgid_key(message_id);
        if let Some(ch) = self.msgids.get(key).and_then(|c| self.chains.get(c)) {
            return Some(build_chain(ch));
        }
        self.finished
            .iter()
            .rev()
            .find(|m| m.has_message_id(key))
            .cloned()
    }

    /// Host-level findings (warnings, auth failures...) aggregated per code and host.
    pub fn host_findings(&self) -> Vec<Finding> {
        self.host_findings.values().cloned().collect()
    }

    /// Clock offset estimates per host pair, from the hand-offs seen.
    pub fn skew(&self) -> Vec<SkewEstimate> {
        self.skew
            .iter()
            .map(|((host, reference), a)| SkewEstimate {
                host: host.clone(),
                reference: reference.clone(),
                min_ms: a.lo,
                max_ms: a.hi,
                samples: a.samples,
                conflicts: a.conflicts,
                significant: a.lo > 0 || a.hi < 0,
            })
            .collect()
    }

    /// End of input: emit everything still open and return all finished chains.
    pub fn finish(self) -> Vec<MessageChain> {
        self.finish_all().messages
    }

    /// End of input: all chains plus host findings, skew and counters.
    pub fn finish_all(mut self) -> Outcome {
        self.sweep(true);
        let host_findings = self.host_findings();
        let skew = self.skew();
        Outcome {
            messages: self.finished.drain(..).collect(),
            host_findings,
            skew,
            stats: self.stats.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output assembly

fn rcpt_hop_status(e: &Entry) -> &'static str {
    if e.rejected.is_some() {
        return "rejected";
    }
    if e.expired {
        return "expired";
    }
    let has = |s: RcptStatus| e.rcpts.iter().any(|r| r.status == s);
    if has(RcptStatus::Bounced) {
        "bounced"
    } else if has(RcptStatus::Deferred) {
        "deferred"
    } else if has(RcptStatus::Sent) {
        "sent"
    } else if has(RcptStatus::Rejected) {
        "rejected"
    } else if e.removed && e.rcpts.is_empty() {
        // Gone without a delivery line in these logs (deleted, or delivered before them).
        "removed"
    } else if e.qmgr_seen || e.message_id.is_some() || has(RcptStatus::Pending) {
        "queued"
    } else {
        "unknown"
    }
}

fn status_of_hop(s: &str) -> MessageStatus {
    match s {
        "sent" | "saved" => MessageStatus::Delivered,
        "deferred" | "save_failed" => MessageStatus::Deferred,
        "bounced" | "expired" => MessageStatus::Bounced,
        "rejected" => MessageStatus::Rejected,
        "queued" => MessageStatus::Queued,
        _ => MessageStatus::Unknown,
    }
}

fn entry_hop(e: &Entry) -> Hop {
    // The attempt that best describes the hop: the worst recipient's last one.
    let main = e
        .rcpts
        .iter()
        .max_by_key(|r| match r.status {
            RcptStatus::Bounced => 4,
            RcptStatus::Deferred => 3,
            RcptStatus::Rejected => 2,
            RcptStatus::Sent => 1,
            RcptStatus::Pending => 0,
        })
        .and_then(|r| r.last.as_ref());
    let left = e
        .rcpts
        .iter()
        .filter_map(|r| r.last.as_ref().and_then(|a| a.at))
        .max();
    Hop {
        host: e.host.to_string(),
        queue_id: Some(e.qid.clone()),
        service: main.map(|a| a.service.clone()),
        status: rcpt_hop_status(e).to_owned(),
        relay: main.and_then(|a| a.relay.clone()),
        delay_ms: e
            .rcpts
            .iter()
            .filter_map(|r| r.last.as_ref().and_then(|a| a.delay_ms))
            .max(),
        delays: main.and_then(|a| a.delays),
        dsn: main.and_then(|a| a.dsn.clone()),
        reason: e
            .rejected
            .clone()
            .or_else(|| main.map(|a| a.reason.clone())),
        from: e.from.clone(),
        to: e.rcpts.iter().map(|r| r.to.clone()).collect(),
        client: e.client.clone(),
        next_queue_id: main.and_then(|a| a.queued_as.clone()),
        lmtp_session: main.and_then(|a| a.lmtp_session.clone()),
        mailbox: None,
        attempts: e.rcpts.iter().map(|r| r.attempts).max().unwrap_or(0),
        arrived_at: e.arrived,
        left_at: left,
        whole_seconds: !e.subsecond,
    }
}

fn dovecot_hop(d: &DoveDelivery) -> Hop {
    Hop {
        host: d.host.to_string(),
        queue_id: None,
        service: Some("dovecot".into()),
        status: if d.saved { "saved" } else { "save_failed" }.to_owned(),
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
        status: "rejected".into(),
        relay: None,
        delay_ms: None,
        delays: None,
        dsn: r.dsn.clone(),
        reason: Some(format!(
            "{}{}{}",
            r.code.map(|c| format!("{c} ")).unwrap_or_default(),
            r.dsn
                .as_deref()
                .map(|d| format!("{d} "))
                .unwrap_or_default(),
            r.reason
        )),
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
fn ordered_entries(ch: &Chain) -> Vec<&Entry> {
    let in_chain = |h: &Arc<str>, q: &str| ch.entries.iter().any(|e| e.host == *h && e.qid == q);
    let mut roots: Vec<&Entry> = ch
        .entries
        .iter()
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
            .filter(|k| {
                k.upstream
                    .as_ref()
                    .is_some_and(|(h, q)| *h == e.host && *q == e.qid)
            })
            .collect();
        kids.sort_by_key(|k| k.arrived);
        stack.extend(kids.into_iter().rev());
    }
    out
}

fn build_chain(ch: &Chain) -> MessageChain {
    let entries = ordered_entries(ch);
    let mut hops: Vec<Hop> = Vec::new();
    let mut leaf_status: Vec<MessageStatus> = Vec::new();
    let mut notes = ch.notes.clone();
    let mut placed = vec![false; ch.dovecot.len()];
    // Dovecot deliveries in time order; per user only the latest decides the outcome (an
    // earlier failed save that was retried successfully is history, not a leaf).
    let mut dove_order: Vec<usize> = (0..ch.dovecot.len()).collect();
    dove_order.sort_by_key(|&i| ch.dovecot[i].at);
    let user_key = |d: &DoveDelivery| d.user.as_deref().map(str::to_ascii_lowercase);
    let is_latest = |i: usize| {
        let d = &ch.dovecot[i];
        !ch.dovecot
            .iter()
            .any(|o| user_key(o) == user_key(d) && o.at > d.at)
    };
    for e in &entries {
        let hop = entry_hop(e);
        let has_downstream = ch.entries.iter().any(|k| {
            k.upstream
                .as_ref()
                .is_some_and(|(h, q)| *h == e.host && *q == e.qid)
        });
        let st = hop.status.clone();
        let sessions: Vec<&str> = e
            .rcpts
            .iter()
            .filter_map(|r| r.last.as_ref()?.lmtp_session.as_deref())
            .collect();
        let lmtp_rcpts: Vec<String> = e
            .rcpts
            .iter()
            .filter(|r| r.last.as_ref().is_some_and(|a| a.service == "lmtp"))
            .map(|r| r.to.to_ascii_lowercase())
            .collect();
        let handed_to = hop.next_queue_id.clone();
        hops.push(hop);
        let mut has_dove = false;
        // Dovecot's side of this entry's LMTP hand-offs: by session id, else (a failed
        // attempt's reply carries none) by recipient.
        for &i in &dove_order {
            let d = &ch.dovecot[i];
            let by_session = d.session.as_deref().is_some_and(|s| sessions.contains(&s));
            let by_rcpt = user_key(d).is_some_and(|u| lmtp_rcpts.contains(&u));
            if !placed[i] && (by_session || by_rcpt) {
                placed[i] = true;
                has_dove = true;
                let h = dovecot_hop(d);
                if is_latest(i) {
                    leaf_status.push(status_of_hop(&h.status));
                }
                hops.push(h);
            }
        }
        if !has_downstream && !has_dove {
            leaf_status.push(status_of_hop(&st));
            if let (Some(n), "sent") = (handed_to, st.as_str()) {
                notes.push(format!(
                    "{} handed the message over as queue id {n}; no log given shows that queue id",
                    e.host
                ));
            }
        }
    }
    for &i in &dove_order {
        if !placed[i] {
            let h = dovecot_hop(&ch.dovecot[i]);
            if is_latest(i) {
                leaf_status.push(status_of_hop(&h.status));
            }
            hops.push(h);
        }
    }
    for n in &ch.noqueue {
        hops.push(noqueue_hop(n));
        leaf_status.push(MessageStatus::Rejected);
    }
    // A delivered copy and a Dovecot "saved" both count as delivered; the worst leaf decides.
    let status = leaf_status
        .iter()
        .copied()
        .max_by_key(|s| s.rank())
        .unwrap_or(MessageStatus::Unknown);
    let from = entries
        .first()
        .and_then(|e| e.from.clone())
        .or_else(|| ch.noqueue.first().and_then(|n| n.reject.from.clone()));
    let mut to: Vec<String> = Vec::new();
    if let Some(first) = entries.first() {
        for r in &first.rcpts {
            if !to.contains(&r.to) {
                to.push(r.to.clone());
            }
        }
    }
    for n in &ch.noqueue {
        if let Some(t) = &n.reject.to {
            if !to.contains(t) {
                to.push(t.clone());
            }
        }
    }
    if to.is_empty() {
        for d in &ch.dovecot {
            if let Some(u) = &d.user {
                if !to.contains(u) {
                    to.push(u.clone());
                }
            }
        }
    }
    let mut findings: Vec<Finding> = ch.findings.iter().map(|x| x.f.clone()).collect();
    for f in &mut findings {
        f.message_id = ch.message_id.clone();
    }
    findings.sort_by_key(|f| f.first_seen);
    if ch.evicted {
        notes.push("emitted before it finished: the open-message limit was reached".into());
    }
    MessageChain {
        message_id: ch.message_id.clone(),
        status,
        from,
        to,
        hops,
        findings,
        notes,
        // A reject or a Dovecot delivery is final; queue entries must all have closed.
        complete: !ch.evicted
            && ch.entries.iter().all(Entry::closed)
            && !(ch.entries.is_empty() && ch.noqueue.is_empty() && ch.dovecot.is_empty()),
        lines: ch.lines.clone(),
        lines_dropped: ch.lines_dropped,
    }
}

// ---------------------------------------------------------------------------------------------
// Probe fusion

/// What the client knows about a probe it sent (all times from the client's clock).
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub submitted_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub detected_at: Option<DateTime<Utc>>,
    /// Queue id from the submission server's `250 ... queued as X` reply.
    pub submission_queue_id: Option<String>,
    /// Host roles the message should pass, in order (empty: no path check).
    pub expected_hosts: Vec<String>,
}

/// A Received hop as the trace engine sees it (oldest first). `role` is the host role the
/// caller mapped the `by` host to, if any.
#[derive(Debug, Clone, Default)]
pub struct HeaderHop {
    pub by: Option<String>,
    pub role: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSource {
    /// One server's own clock (Postfix `delay=`, Dovecot `delivery_time`).
    Log,
    /// Received header timestamps (whole seconds, two different clocks).
    Header,
    /// The client's own clock, or a cross-clock figure bounded by it.
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub name: String,
    pub ms: u64,
    pub source: StageSource,
    /// Resolution of the figure (1 for millisecond logs, 1000 for whole-second timestamps).
    pub precision_ms: u64,
    /// The raw figure was impossible (negative, or longer than the client saw end to end) and
    /// was clamped to the client's bounds.
    pub bounded: bool,
    pub detail: Option<String>,
}

/// Clock offset of a host's log relative to the client (`host - client`), from the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSkew {
    pub host: String,
    pub min_ms: i64,
    pub max_ms: i64,
    /// The offset within [min, max] closest to zero: what stage arithmetic corrects by.
    pub estimate_ms: i64,
    pub significant: bool,
    /// The constraints contradicted each other (bounds are then those of the last event).
    pub inconsistent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeTimeline {
    pub message_id: String,
    pub status: MessageStatus,
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
    /// The last host whose log saw the message.
    pub last_host: Option<String>,
    pub skew: Vec<HostSkew>,
    pub notes: Vec<String>,
    /// The log chain(s) used (empty when no log mentions the probe).
    pub hops: Vec<Hop>,
}

fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_milliseconds()
}

/// Find the chains that belong to the probe: by Message-ID, by the submission queue id, or
/// (for rejections, which carry no Message-ID) by sender, recipient and time.
pub fn probe_chains<'a>(ctx: &ProbeContext, messages: &'a [MessageChain]) -> Vec<&'a MessageChain> {
    let mut out: Vec<&MessageChain> = messages
        .iter()
        .filter(|m| m.has_message_id(&ctx.message_id))
        .collect();
    if out.is_empty() {
        if let Some(q) = &ctx.submission_queue_id {
            out.extend(messages.iter().filter(|m| {
                m.hops
                    .iter()
                    .any(|h| h.queue_id.as_deref() == Some(q.as_str()))
            }));
        }
    }
    // NOQUEUE rejections carry no id: match them by sender, recipient and time, but only for a
    // probe whose submission was refused. An accepted probe has its Message-ID and queue id to
    // be found by; matching it by sender and recipient would take an earlier probe's rejection
    // (same addresses, minutes before) for its own.
    if out.is_empty() && ctx.accepted_at.is_none() {
        // Same sender and recipient within two minutes of the submission (wide enough for
        // modest clock skew; the closest one wins).
        let lo = ctx.submitted_at - TimeDelta::seconds(120);
        let hi = ctx.accepted_at.unwrap_or(ctx.submitted_at) + TimeDelta::seconds(120);
        let best = messages
            .iter()
            .filter(|m| m.message_id.is_none() && m.status == MessageStatus::Rejected)
            .filter(|m| {
                m.from
                    .as_deref()
                    .is_some_and(|f| f.eq_ignore_ascii_case(&ctx.mail_from))
                    && ctx.rcpt_to.iter().any(|r| m.mentions_rcpt(r))
            })
            .filter_map(|m| {
                let t = m.hops.first()?.arrived_at?;
                (t >= lo && t <= hi).then(|| ((t - ctx.submitted_at).num_milliseconds().abs(), m))
            })
            .min_by_key(|(d, _)| *d)
            .map(|(_, m)| m);
        out.extend(best);
    }
    out
}

/// Skew of `host` from one event: the log said `t_log` (floored to `res_ms`), and the event
/// really happened within [lo, hi] of the client clock.
fn constrain(
    acc: &mut BTreeMap<String, (i64, i64, bool)>,
    host: &str,
    t_log: DateTime<Utc>,
    res_ms: i64,
    lo: Option<DateTime<Utc>>,
    hi: Option<DateTime<Utc>>,
) {
    let min = hi.map_or(i64::MIN / 4, |h| ms_between(h, t_log));
    let max = lo.map_or(i64::MAX / 4, |l| ms_between(l, t_log) + res_ms);
    let e = acc
        .entry(host.to_owned())
        .or_insert((i64::MIN / 4, i64::MAX / 4, false));
    let (nlo, nhi) = (e.0.max(min), e.1.min(max));
    if nlo > nhi {
        e.2 = true;
        e.0 = min;
        e.1 = max;
    } else {
        e.0 = nlo;
        e.1 = nhi;
    }
}

/// Fuse a probe's client times with the log chains and Received hops into stages.
pub fn fuse_probe(
    ctx: &ProbeContext,
    messages: &[MessageChain],
    header_hops: &[HeaderHop],
) -> ProbeTimeline {
    let chains = probe_chains(ctx, messages);
    let mut hops: Vec<Hop> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut status = MessageStatus::Unknown;
    for (i, c) in chains.iter().enumerate() {
        hops.extend(c.hops.iter().cloned());
        findings.extend(c.findings.iter().cloned());
        notes.extend(c.notes.iter().cloned());
        status = if i == 0 || c.status.rank() > status.rank() {
            c.status
        } else {
            status
        };
    }
    // Only the probe's own recipients' hops matter for a multi-recipient chain.
    let e2e = ctx.detected_at.map(|d| ms_between(ctx.submitted_at, d));
    let mut stages: Vec<Stage> = Vec::new();
    if let Some(acc) = ctx.accepted_at {
        stages.push(Stage {
            name: "submit".into(),
            ms: ms_between(ctx.submitted_at, acc).max(0) as u64,
            source: StageSource::Client,
            precision_ms: 1,
            bounded: false,
            detail: Some("SMTP submission until the server accepted (client clock)".into()),
        });
    }

    // Per-host skew against the client's clock.
    let mut acc: BTreeMap<String, (i64, i64, bool)> = BTreeMap::new();
    let upper = if status == MessageStatus::Delivered {
        ctx.detected_at
    } else {
        None
    };
    for (i, h) in hops.iter().enumerate() {
        let res = if h.whole_seconds { 1000 } else { 1 };
        if let Some(t) = h.arrived_at {
            // The first hop received the probe from the client: between send and accept.
            let hi = if i == 0 {
                ctx.accepted_at.or(upper)
            } else {
                upper
            };
            constrain(&mut acc, &h.host, t, res, Some(ctx.submitted_at), hi);
        }
        if let Some(t) = h.left_at {
            let lo = if h.status == "saved" {
                ctx.accepted_at.or(Some(ctx.submitted_at))
            } else {
                Some(ctx.submitted_at)
            };
            constrain(&mut acc, &h.host, t, res, lo, upper);
        }
    }
    let skew: Vec<HostSkew> = acc
        .iter()
        .map(|(host, (lo, hi, bad))| {
            let est = if *lo > 0 {
                *lo
            } else if *hi < 0 {
                *hi
            } else {
                0
            };
            HostSkew {
                host: host.clone(),
                min_ms: *lo,
                max_ms: *hi,
                estimate_ms: est,
                significant: *lo > 0 || *hi < 0,
                inconsistent: *bad,
            }
        })
        .collect();
    for s in &skew {
        if s.significant {
            notes.push(format!(
                "clock skew: {}'s log clock is about {:+.3} s off the client's; cross-host figures are corrected and bounded by the client's times",
                s.host,
                s.estimate_ms as f64 / 1000.0
            ));
        }
    }
    let est = |host: &str| {
        skew.iter()
            .find(|s| s.host == host)
            .map_or(0, |s| s.estimate_ms)
    };

    // Log stages, one per host, NOT overlapping: a hand-off belongs to the host that receives.
    // Postfix's `delays=a/b/c/d` splits each hop: a+b is time spent on that host before it
    // starts talking to the next one; c+d (connect, transmit until the next host's 250) is the
    // next host taking the message, so it counts for the next host's stage. An injected delay
    // in dell's smtpd therefore shows on dell, not on the MX that waited for it. Dovecot's stage
    // is the LMTP hand-off that carried the probe to it (its own delivery_time is inside that).
    // Every term comes from one host's own clock.
    let precision_of = |ms: u64| -> u64 {
        // Postfix prints delays with two significant digits (0.52, 1.2, 31).
        if ms < 1000 {
            10
        } else if ms < 10_000 {
            100
        } else {
            1000
        }
    };
    let mut covered: Vec<String> = Vec::new();
    // The client-measured submission, owed once to the first host's reception.
    let mut submit_ms: Option<u64> = ctx
        .accepted_at
        .map(|a| ms_between(ctx.submitted_at, a).max(0) as u64);
    // (ms, precision, from host) of the hand-off in progress, owed to the next host.
    let mut carry: Option<(u64, u64, String)> = None;
    let cap = e2e.map(|e| e.max(0) as u64);
    let push_log_stage =
        |stages: &mut Vec<Stage>, name: String, ms: u64, precision: u64, detail: String| {
            let mut v = ms;
            let mut bounded = false;
            if let Some(c) = cap {
                // Allow Postfix's rounding before calling a figure impossible.
                if v > c + c / 20 + 10 {
                    v = c;
                    bounded = true;
                }
            }
            stages.push(Stage {
                name,
                ms: v,
                source: StageSource::Log,
                precision_ms: precision,
                bounded,
                detail: Some(detail),
            });
        };
    for h in &hops {
        if !covered.contains(&h.host) {
            covered.push(h.host.clone());
        }
        if h.status == "rejected" {
            continue;
        }
        let is_dove = h.queue_id.is_none() && (h.status == "saved" || h.status == "save_failed");
        let incoming = carry.take();
        if is_dove {
            let (ms, precision, detail) = match (&incoming, h.delay_ms) {
                (Some((c, p, from)), _) => (
                    *c,
                    *p,
                    format!("LMTP hand-off from {from} (connect + transmit); Dovecot's own delivery_time {} ms is inside it", h.delay_ms.unwrap_or(0)),
                ),
                (None, Some(d)) => (d, 1, "Dovecot LMTP delivery_time".to_owned()),
                (None, None) => continue,
            };
            push_log_stage(&mut stages, h.host.clone(), ms, precision, detail);
            continue;
        }
        match h.delays {
            Some(d) => {
                // This host's `a` starts when the SMTP session from the previous host starts, so
                // it covers the same reception as the previous host's c+d (two clocks, one
                // interval): take the larger of the two, then add this host's queue-manager wait.
                let (ms, precision, detail) = match &incoming {
                    Some((c, p, from)) => (
                        (*c).max(d.before_qmgr_ms) + d.in_qmgr_ms,
                        precision_of(d.before_qmgr_ms).max(*p),
                        format!(
                            "hand-off from {from} (its connect + transmit {c} ms; reception here {} ms, the larger counts) + in queue manager {} ms",
                            d.before_qmgr_ms, d.in_qmgr_ms
                        ),
                    ),
                    // The first host's `a` includes receiving the probe from the client, which
                    // the client's own `submission` stage already counts: leave it out here.
                    None => match submit_ms.take() {
                        Some(sub) => (
                            (d.before_qmgr_ms + d.in_qmgr_ms).saturating_sub(sub),
                            precision_of(d.before_qmgr_ms + d.in_qmgr_ms),
                            format!(
                                "before queue manager {} ms + in queue manager {} ms, less the {sub} ms submission the client measured",
                                d.before_qmgr_ms, d.in_qmgr_ms
                            ),
                        ),
                        None => (
                            d.before_qmgr_ms + d.in_qmgr_ms,
                            precision_of(d.before_qmgr_ms + d.in_qmgr_ms),
                            format!("before queue manager {} ms + in queue manager {} ms", d.before_qmgr_ms, d.in_qmgr_ms),
                        ),
                    },
                };
                push_log_stage(&mut stages, h.host.clone(), ms, precision, detail);
                let out = d.conn_setup_ms + d.transmission_ms;
                carry = Some((out, precision_of(out), h.host.clone()));
            }
            None => {
                if let Some(ms) = h.delay_ms {
                    push_log_stage(
                        &mut stages,
                        h.host.clone(),
                        ms,
                        precision_of(ms),
                        "Postfix delay= (no breakdown)".into(),
                    );
                }
            }
        }
    }
    if let Some((ms, precision, from)) = carry {
        // Handed off to a host without a log source, or not handed off at all (deferred).
        push_log_stage(
            &mut stages,
            format!("{from} -> next hop"),
            ms,
            precision,
            format!("{from}'s connect + transmit to the next hop (no log of the receiving side)"),
        );
    }

    // Header stages for hosts without logs.
    let mut prev: Option<DateTime<Utc>> = None;
    for hh in header_hops {
        let name = hh
            .role
            .clone()
            .or_else(|| hh.by.clone())
            .unwrap_or_else(|| "?".into());
        if let (Some(p), Some(t)) = (prev, hh.timestamp) {
            if !covered.contains(&name) {
                let raw = ms_between(p, t);
                let cap = e2e.unwrap_or(i64::MAX).max(0);
                let v = raw.clamp(0, cap);
                stages.push(Stage {
                    name: format!("{name} (header)"),
                    ms: v as u64,
                    source: StageSource::Header,
                    precision_ms: 1000,
                    bounded: v != raw,
                    detail: Some(
                        "difference of whole-second Received timestamps (two clocks)".into(),
                    ),
                });
                if v != raw {
                    notes.push(format!("Received timestamps of {name} disagree with the client's clock ({raw} ms); bounded"));
                }
            }
        }
        if hh.timestamp.is_some() {
            prev = hh.timestamp;
        }
    }

    // From the last log event to detection by the client: cross-clock, skew-corrected, bounded.
    if let Some(det) = ctx.detected_at {
        let last = hops
            .iter()
            .rev()
            .find(|h| h.status == "saved")
            .or_else(|| hops.iter().rev().find(|h| h.left_at.is_some()));
        if let Some(h) = last {
            if let Some(t) = h.left_at {
                let corrected = TimeDelta::try_milliseconds(est(&h.host))
                    .and_then(|d| t.checked_sub_signed(d))
                    .unwrap_or(t);
                let raw = ms_between(corrected, det);
                let floor_ms = ctx.accepted_at.map_or(0, |a| ms_between(a, det).max(0));
                let v = raw.clamp(0, floor_ms.max(0));
                stages.push(Stage {
                    name: "detect".into(),
                    ms: v as u64,
                    source: StageSource::Client,
                    precision_ms: if h.whole_seconds { 1000 } else { 1 },
                    bounded: v != raw,
                    detail: Some(format!(
                        "{}'s last log event until the client saw the message",
                        h.host
                    )),
                });
            }
        }
        if let Some(e) = e2e {
            stages.push(Stage {
                name: "end_to_end".into(),
                ms: e.max(0) as u64,
                source: StageSource::Client,
                precision_ms: 1,
                bounded: e < 0,
                detail: Some("submission start until detection (client clock)".into()),
            });
        }
    }

    // Path check.
    if !ctx.expected_hosts.is_empty() {
        let unexpected: Vec<&String> = covered
            .iter()
            .filter(|h| !ctx.expected_hosts.contains(h))
            .collect();
        if !unexpected.is_empty() {
            let mut f = Finding::new(
                FindingCode::UnexpectedPath,
                unexpected.first().map(|s| s.as_str()),
                format!(
                    "expected path {}, logs show {}",
                    ctx.expected_hosts.join(" -> "),
                    covered.join(" -> ")
                ),
            );
            f.message_id = Some(ctx.message_id.clone());
            findings.push(f);
        }
    }
    if chains.is_empty() {
        notes.push("no log line mentions this probe".into());
    }
    ProbeTimeline {
        message_id: ctx.message_id.clone(),
        status,
        stages,
        findings,
        last_host: hops.last().map(|h| h.host.clone()),
        skew,
        notes,
        hops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{parse_line, ParseContext};
    use chrono::TimeZone;

    fn feed(corr: &mut Correlator, role: &str, text: &str) {
        let ctx = ParseContext::new(role, 2025);
        for l in text.lines() {
            if let Some(r) = parse_line(l.as_bytes(), &ctx) {
                corr.push(r);
            }
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const EC2: &str = "\
Nov  7 12:00:05 mx postfix/smtpd[1]: 1A1A1A1A1A: client=smtp.provider.test[198.18.2.2]
Nov  7 12:00:05 mx postfix/cleanup[2]: 1A1A1A1A1A: message-id=<p1@flowtest>
Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: from=<probe@provider.test>, size=1200, nrcpt=1 (queue active)
Nov  7 12:00:05 mx postfix/smtp[4]: 1A1A1A1A1A: to=<bob@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.1, delays=0.01/0/0.04/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2B2B2B2B2B)
Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: removed";
    // Dell's clock runs 7 s ahead.
    const DELL: &str = "\
Nov  7 12:00:12 dell postfix/smtpd[1]: 2B2B2B2B2B: client=unknown[100.64.0.1]
Nov  7 12:00:12 dell postfix/cleanup[2]: 2B2B2B2B2B: message-id=<p1@flowtest>
Nov  7 12:00:12 dell postfix/qmgr[3]: 2B2B2B2B2B: from=<probe@provider.test>, size=1400, nrcpt=1 (queue active)
Nov  7 12:00:12 dell postfix/lmtp[4]: 2B2B2B2B2B: to=<bob@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.03, delays=0.01/0/0.01/0.01, dsn=2.0.0, status=sent (250 2.0.0 <bob@corp.test> c2tldzFza2V3MXNrZXcxcw Saved)
Nov  7 12:00:12 dell postfix/qmgr[3]: 2B2B2B2B2B: removed";

    #[test]
    fn links_hosts_in_either_order() {
        for ec2_first in [true, false] {
            let mut c = Correlator::new(Limits::default());
            if ec2_first {
                feed(&mut c, "ec2", EC2);
                feed(&mut c, "dell", DELL);
            } else {
                feed(&mut c, "dell", DELL);
                feed(&mut c, "ec2", EC2);
            }
            let ms = c.finish();
            assert_eq!(ms.len(), 1, "{ms:#?}");
            let hosts: Vec<&str> = ms[0].hops.iter().map(|h| h.host.as_str()).collect();
            assert_eq!(hosts, ["ec2", "dell"]);
            assert_eq!(ms[0].status, MessageStatus::Delivered);
            assert!(ms[0].complete);
        }
    }

    #[test]
    fn skewed_host_is_bounded_by_client_clock() {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", EC2);
        feed(&mut c, "dell", DELL);
        let skew = c.skew();
        assert_eq!(skew.len(), 1);
        assert!(
            skew[0].significant && skew[0].min_ms >= 6000 && skew[0].max_ms <= 8200,
            "{skew:?}"
        );
        let ms = c.finish();
        let ctx = ProbeContext {
            message_id: "p1@flowtest".into(),
            mail_from: "probe@provider.test".into(),
            rcpt_to: vec!["bob@corp.test".into()],
            submitted_at: at("2025-11-07T12:00:04.900Z"),
            accepted_at: Some(at("2025-11-07T12:00:05.050Z")),
            detected_at: Some(at("2025-11-07T12:00:05.900Z")),
            ..ProbeContext::default()
        };
        let t = fuse_probe(&ctx, &ms, &[]);
        assert_eq!(t.status, MessageStatus::Delivered);
        assert_eq!(t.last_host.as_deref(), Some("dell"));
        let dell = t.skew.iter().find(|s| s.host == "dell").unwrap();
        assert!(
            dell.significant && (6000..=7000).contains(&dell.estimate_ms),
            "{dell:?}"
        );
        let ec2 = t.skew.iter().find(|s| s.host == "ec2").unwrap();
        assert!(!ec2.significant, "{ec2:?}");
        let e2e = 1000;
        for s in &t.stages {
            assert!(s.ms <= e2e, "impossible stage {s:?}");
        }
        let stage = |n: &str| t.stages.iter().find(|s| s.name == n).unwrap().ms;
        assert_eq!(stage("submit"), 150);
        // Hand-offs belong to the receiving host: ec2 = its own a+b (10 ms) less the 150 ms
        // submission the client already counts (so 0); dell = max(ec2's c+d 90 ms, its own
        // reception a 10 ms) + its b; dell's own hand-off to an unlogged LMTP server stands alone.
        assert_eq!(stage("ec2"), 0);
        assert_eq!(stage("dell"), 90);
        assert_eq!(stage("dell -> next hop"), 20);
        assert_eq!(stage("end_to_end"), 1000);
        assert!(t
            .notes
            .iter()
            .any(|n| n.contains("clock skew") && n.contains("dell")));
    }

    #[test]
    fn a_rejection_joins_only_the_delivery_that_quotes_it() {
        // Regression (CI, run_faults): ec2 rejected one message at RCPT; seconds later dell's
        // LMTP delivery of ANOTHER message (same sender and recipient) failed for an unrelated
        // reason. They must not be merged: the delivery does not quote the rejection's reply.
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  5 09:02:00 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <alice@corp.test>: Relay access denied; from=<sender@provider.test> to=<alice@corp.test> proto=ESMTP helo=<client>",
        );
        feed(
            &mut c,
            "dell",
            "Nov  5 09:02:05 dell postfix/lmtp[9]: 4AAAAAAAAA: to=<alice@corp.test>, relay=dell.corp.test[/run/lmtp], delay=0.1, delays=0.05/0/0.05/0, dsn=4.4.2, status=deferred (lost connection with dell.corp.test[/run/lmtp] while receiving the initial server greeting)",
        );
        let ms = c.finish();
        let rejected: Vec<_> = ms
            .iter()
            .filter(|m| m.status == MessageStatus::Rejected)
            .collect();
        assert_eq!(rejected.len(), 1, "{ms:#?}");
        assert!(rejected[0].hops.iter().all(|h| h.host == "ec2"), "{ms:#?}");
    }

    #[test]
    fn noqueue_reject_matches_probe_by_sender_recipient_time() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  5 09:02:00 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <info@newdomain.test>: Relay access denied; from=<probe@provider.test> to=<info@newdomain.test> proto=ESMTP helo=<flowtest>\n\
             Nov  5 09:02:30 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <info@newdomain.test>: Relay access denied; from=<other@provider.test> to=<info@newdomain.test> proto=ESMTP helo=<flowtest>",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 2);
        let ctx = ProbeContext {
            message_id: "<nope@flowtest>".into(),
            mail_from: "PROBE@provider.test".into(),
            rcpt_to: vec!["info@newdomain.test".into()],
            submitted_at: at("2025-11-05T09:01:59.950Z"),
            accepted_at: None,
            ..ProbeContext::default()
        };
        let t = fuse_probe(&ctx, &ms, &[]);
        assert_eq!(t.status, MessageStatus::Rejected);
        assert_eq!(t.findings.len(), 1);
        assert_eq!(t.findings[0].code, FindingCode::RelayAccessDenied);
        assert_eq!(t.findings[0].host.as_deref(), Some("ec2"));
        // Outside the window: nothing.
        let late = ProbeContext {
            submitted_at: at("2025-11-05T10:00:00Z"),
            ..ctx
        };
        let t = fuse_probe(&late, &ms, &[]);
        assert_eq!(t.status, MessageStatus::Unknown);
        assert!(t.notes.iter().any(|n| n.contains("no log line")));
        // Regression (CI, run_faults): an ACCEPTED probe with the same sender and recipient
        // must not take an earlier rejection for its own while its own lines are not logged yet.
        let accepted = ProbeContext {
            accepted_at: Some(late.submitted_at),
            submitted_at: ctx.submitted_at,
            ..late
        };
        let t = fuse_probe(&accepted, &ms, &[]);
        assert_eq!(t.status, MessageStatus::Unknown, "{t:?}");
        assert!(t.findings.is_empty());
    }

    #[test]
    fn header_hops_fill_hosts_without_logs() {
        let ctx = ProbeContext {
            message_id: "x@y".into(),
            submitted_at: at("2025-11-07T12:00:00Z"),
            accepted_at: Some(at("2025-11-07T12:00:00.200Z")),
            detected_at: Some(at("2025-11-07T12:00:03Z")),
            ..ProbeContext::default()
        };
        let hops = [
            HeaderHop {
                by: Some("smtp.provider.test".into()),
                role: Some("provider".into()),
                timestamp: Some(at("2025-11-07T12:00:00Z")),
            },
            HeaderHop {
                by: Some("mx.corp.test".into()),
                role: Some("ec2".into()),
                timestamp: Some(at("2025-11-07T12:00:01Z")),
            },
            // A clock far ahead: the raw difference (1 h) is impossible and gets bounded.
            HeaderHop {
                by: Some("dell.corp.test".into()),
                role: Some("dell".into()),
                timestamp: Some(at("2025-11-07T13:00:01Z")),
            },
        ];
        let t = fuse_probe(&ctx, &[], &hops);
        let ec2 = t.stages.iter().find(|s| s.name == "ec2 (header)").unwrap();
        assert_eq!(
            (ec2.ms, ec2.source, ec2.bounded),
            (1000, StageSource::Header, false)
        );
        let dell = t.stages.iter().find(|s| s.name == "dell (header)").unwrap();
        assert!(dell.bounded && dell.ms <= 3000, "{dell:?}");
    }

    #[test]
    fn open_chains_stay_bounded() {
        let limits = Limits {
            max_open_chains: 100,
            ..Limits::default()
        };
        let mut c = Correlator::new(limits);
        let ctx = ParseContext::new("ec2", 2025);
        let mut emitted: Vec<MessageChain> = Vec::new();
        for i in 0..5_000u32 {
            // Messages that never finish (no "removed"): only the cap can bound them.
            let l = format!("Nov  7 12:00:05 mx postfix/cleanup[2]: {i:010X}: message-id=<m{i}@x>");
            c.push(parse_line(l.as_bytes(), &ctx).unwrap());
            assert!(c.open_chains() <= 101);
            emitted.extend(c.take_finished());
        }
        assert!(c.stats().chains_evicted > 0);
        let rest = c.finish();
        assert_eq!(emitted.len() + rest.len(), 5_000);
        assert!(emitted
            .iter()
            .all(|m| !m.complete && m.notes.iter().any(|n| n.contains("open-message limit"))));
        assert!(rest
            .iter()
            .chain(emitted.iter())
            .all(|m| m.status == MessageStatus::Queued));
    }

    #[test]
    fn deferred_then_delivered_keeps_the_deferral_finding() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  6 07:30:00 mx postfix/cleanup[1]: 3A4B5C6D7E: message-id=<d@x>\n\
             Nov  6 07:30:00 mx postfix/smtp[2]: 3A4B5C6D7E: to=<alice@corp.test>, relay=none, delay=0.03, delays=0.02/0/0.01/0, dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: No route to host)\n\
             Nov  6 07:31:00 mx postfix/smtp[2]: 3A4B5C6D7E: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=60, delays=60/0/0.04/0.04, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 6F7E8D9C0B)\n\
             Nov  6 07:31:00 mx postfix/qmgr[3]: 3A4B5C6D7E: removed",
        );
        let ms = c.finish();
        assert_eq!(ms[0].status, MessageStatus::Delivered);
        assert_eq!(ms[0].findings.len(), 1);
        assert_eq!(ms[0].findings[0].code, FindingCode::NextHopUnreachable);
        assert_eq!(ms[0].hops[0].attempts, 2);
    }

    #[test]
    fn dovecot_error_upgrades_generic_lmtp_deferral_and_times_are_utc() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  6 10:20:00 dell postfix/cleanup[4]: 7A8B9C0D1E: message-id=<q@x>\n\
             Nov  6 10:20:00 dell postfix/lmtp[5]: 7A8B9C0D1E: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.05, delays=0.01/0/0.01/0.03, dsn=4.2.0, status=deferred (host dell[private/dovecot-lmtp] said: 451 4.2.0 <alice@corp.test> Internal error occurred. Refer to server log for more information. (in reply to end of DATA command))",
        );
        feed(
            &mut c,
            "dovecot",
            "2025-11-06T10:20:00.043977 lmtp(alice@corp.test)<512><S1>: Error: Mailbox INBOX: open(/var/mail/alice) failed: Permission denied (euid=5000)",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1);
        let f = &ms[0].findings[0];
        assert_eq!(f.code, FindingCode::MailboxPermissionDenied);
        assert_eq!(f.host.as_deref(), Some("dovecot"));
        assert_eq!(f.evidence.len(), 2);
        assert_eq!(
            f.first_seen,
            Some(Utc.with_ymd_and_hms(2025, 11, 6, 10, 20, 0).unwrap())
        );
    }
}
