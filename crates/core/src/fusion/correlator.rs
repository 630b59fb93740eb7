//! The streaming correlator: its bounds (`Limits`), its indices, the dispatch of each parsed
//! record to the handler for its event kind (`on_*` modules), and when a chain is done and
//! emitted. Owns all bounded streaming state; "now" is the newest log timestamp seen. Does not
//! parse lines (`core::logs`) nor shape the output (`assemble`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use smallvec::SmallVec;

use crate::diagnosis::{Finding, FindingCode};
use crate::logs::{Event, EventText, LogRecord};

use super::assemble::{build_chain, take_chain};
use super::chain::{within, Chain, ChainId, Entry, LineBudget};
use super::links::Pending;
use super::model::{msgid_key, CorrelatorStats, MessageChain, Outcome, SkewEstimate};
use super::on_host::HostFinding;
use super::on_queue::Expiry;
use super::on_refused::RecentRefusal;
use super::quiet::{Chains, DueQueue};
use super::skew::SkewBounds;
use super::spare::Spare;
use super::superseded::Superseded;

/// Records observed between two looks for chains that are done. A done chain is emitted within
/// this many records of falling due, while its memory (written by its last line, its index
/// entries) is still in the CPU's cache: with a look every 4,096 records, emitting, assembling
/// and rendering a chain read memory left thousands of records earlier, and a full diagnosis
/// took about 40 % longer for the same instructions (`bench/diagnose_full.sh`, §20 of
/// docs/benchmarks/diagnose.md). A look costs a peek at the due queue when nothing fell due.
pub const SWEEP_EVERY: u64 = 128;

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
    /// Bytes of log lines kept by all open chains together. Past it, further lines are dropped
    /// (and counted) until chains are emitted: `max_lines` alone would let tens of thousands of
    /// open messages hold gigabytes.
    pub max_retained_line_bytes: usize,
    /// Quiet time after which a fully resolved chain is emitted.
    pub settle: TimeDelta,
    /// Quiet time after which a chain still waiting for another host's log is emitted.
    pub grace: TimeDelta,
    /// Quiet time after which a chain whose queue entries never closed is emitted.
    pub idle_timeout: TimeDelta,
    /// The same for an entry in Postfix's queue (the queue manager took it, or a delivery was
    /// deferred): Postfix retries it until `maximal_queue_lifetime` (5 days by default), and a
    /// log cut to its lines (`grep QID`) shows the next retry or the expiry days later.
    pub queue_lifetime: TimeDelta,
    /// Finished chains held until taken; older ones are dropped (and counted).
    pub max_finished: usize,
    /// Distinct host-level findings (code x host) kept.
    pub max_host_findings: usize,
    /// Window for joins by time (NOQUEUE rejects to bounces, Dovecot errors to LMTP failures).
    pub link_window: TimeDelta,
}

impl Limits {
    /// The shortest of the quiet times a chain may wait: no chain is done sooner.
    fn shortest_wait(&self) -> TimeDelta {
        self.settle
            .min(self.grace)
            .min(self.idle_timeout)
            .min(self.queue_lifetime)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_chains: 50_000,
            max_evidence: 12,
            max_lines: 48,
            max_line_bytes: 1_000,
            max_retained_line_bytes: 16 << 20,
            settle: TimeDelta::seconds(10),
            grace: TimeDelta::seconds(120),
            idle_timeout: TimeDelta::hours(6),
            queue_lifetime: TimeDelta::days(6),
            max_finished: 100_000,
            max_host_findings: 1_000,
            link_window: TimeDelta::seconds(30),
        }
    }
}

/// A delivery failure, kept a while so that a line logged after it (the next hop's reject,
/// Dovecot's error) can join its chain.
#[derive(Debug, Clone)]
pub(super) struct RecentFailure {
    pub host: Arc<str>,
    pub qid: EventText,
    /// Recipient, lower-cased.
    pub to: EventText,
    pub from: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub chain: ChainId,
    pub service: EventText,
    /// The delivery's reason text: a rejection joins it only if it quotes the rejection's reply.
    pub reason: String,
    /// The delivery agent's process (Postfix's `lmtp[PID]`): Dovecot names it as its LMTP
    /// client (`conn unix:pid=PID`).
    pub pid: Option<u32>,
}

/// A problem line (Postfix warning, Dovecot error), kept a while so that a failure logged after
/// it can take it as its explanation.
#[derive(Debug, Clone)]
pub(super) struct RecentLine {
    pub host: Arc<str>,
    /// Recipient / user lower-cased (empty for host-wide lines).
    pub key: String,
    pub session: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub code: Option<FindingCode>,
    /// The process that logged it, when the line names one.
    pub pid: Option<u32>,
    /// A fatal or panic line: the likeliest cause among the lines that explain a failure.
    pub fatal: bool,
    /// The message-id the line names (Dovecot's `msgid=`), when it names one: it explains only
    /// that message's failure.
    pub msgid: Option<String>,
    /// The queue id a Postfix problem line names (`cleanup[1]: warning: 9BECF3F19D: ... map
    /// lookup problem`): it explains only that queue entry's failures.
    pub qid: Option<String>,
    /// The Postfix LMTP client a Dovecot line's session served (`lmtp-server: conn
    /// unix:pid=12136,...`, or an earlier line of its session): it explains only a failure
    /// that process logged.
    pub conn_pid: Option<u32>,
    pub raw: String,
}

/// The correlator's index maps: keys are short ids from the logs, looked up once or more per
/// record, so a fast non-cryptographic hash (seeded per map) pays for itself.
pub(super) type Index<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A queue entry an smtpd process announced with its `client=` line, the `seq`th such line.
#[derive(Debug, Clone)]
pub(super) struct RecentClient {
    pub host: Arc<str>,
    pub qid: EventText,
    pub seq: u64,
}

/// What an index holds at a key that can name several (the hosts a queue id is on, the chains
/// that rejected a recipient): nearly always one, kept inside the index's entry.
pub(super) type Few<T> = SmallVec<[T; 1]>;

/// An empty index.
fn index<K, V>() -> Index<K, V> {
    HashMap::with_hasher(foldhash::fast::RandomState::default())
}

/// Entries kept in each ring of recent lines.
const RECENT_CAP: usize = 256;

/// Push onto a bounded ring, dropping the oldest.
pub(super) fn remember<T>(ring: &mut VecDeque<T>, item: T) {
    if ring.len() >= RECENT_CAP {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// smtpd's SASL failure for a client, by the process that logged it.
#[derive(Debug, Clone)]
pub(super) struct RecentSasl {
    pub host: Arc<str>,
    pub pid: Option<u32>,
    pub client: String,
    pub at: Option<DateTime<Utc>>,
}

/// Remove `key` from `index` if its value is `ours`. Removed first and put back when it is
/// not: one look-up in the usual case, where an emitted chain's keys are its own.
fn unlink<V>(index: &mut Index<EventText, V>, key: &str, ours: impl Fn(&V) -> bool) {
    if let Some((k, v)) = index.remove_entry(key) {
        if !ours(&v) {
            index.insert(k, v);
        }
    }
}

/// Drop the items `ours` from the list at `key`, and the key with its list once it is empty;
/// one look-up in the usual case, as [`unlink`].
pub(super) fn drop_from_list<K, T>(
    index: &mut Index<K, Few<T>>,
    key: &str,
    ours: impl Fn(&T) -> bool,
) where
    K: std::hash::Hash + Eq + std::borrow::Borrow<str>,
{
    if let Some((k, mut v)) = index.remove_entry(key) {
        v.retain(|x| !ours(x));
        if !v.is_empty() {
            index.insert(k, v);
        }
    }
}

/// Whether a chain's queue entries or rejections name `sender` (the envelope sender its built
/// message can show).
fn names_sender(ch: &Chain, sender: &str) -> bool {
    let is = |f: Option<&str>| f.is_some_and(|f| f.eq_ignore_ascii_case(sender));
    ch.entries.iter().any(|e| is(e.from.as_deref()))
        || ch.noqueue.iter().any(|n| is(n.reject.from.as_deref()))
}

/// Streaming correlator: push records (in roughly time order per source), take finished chains.
pub struct Correlator {
    pub(super) limits: Limits,
    pub(super) next_id: ChainId,
    pub(super) chains: Chains,
    pub(super) qids: Index<EventText, Few<(Arc<str>, ChainId)>>,
    pub(super) msgids: Index<EventText, ChainId>,
    pub(super) sessions: Index<EventText, ChainId>,
    pub(super) pending_next: Index<EventText, Pending>,
    pub(super) noqueue_by_rcpt: Index<String, Few<ChainId>>,
    pub(super) recent_failures: VecDeque<RecentFailure>,
    pub(super) recent_dovecot: VecDeque<RecentLine>,
    /// LDA saves waiting for pipe's line of their recipient (`on_lda`).
    pub(super) lda_saves: VecDeque<super::on_lda::LdaSave>,
    pub(super) recent_problems: VecDeque<RecentLine>,
    /// smtpd's SASL failures: an `auth=0/N` at the session's end that they explain is not
    /// counted again.
    pub(super) recent_sasl: VecDeque<RecentSasl>,
    pub(super) recent_refusals: VecDeque<RecentRefusal>,
    /// By smtpd process id: the queue entry each process announced last (its `client=`
    /// line), for the process's `disconnect` that says no DATA came or its next transaction.
    pub(super) recent_clients: Index<u32, Few<RecentClient>>,
    /// `client=` lines noted so far.
    pub(super) clients_noted: u64,
    pub(super) host_findings: BTreeMap<(FindingCode, String), HostFinding>,
    /// Clock offset of a host (first) against the host that handed it messages (second).
    pub(super) skew: BTreeMap<(String, String), SkewBounds>,
    /// Chains that are done, not yet built into their messages.
    finished: VecDeque<Chain>,
    /// Done chains held until the next chain of their Message-ID is emitted (`superseded`).
    pub(super) superseded: Superseded,
    /// The lists of reported messages ([`Correlator::recycle`]), for the next ones built.
    spare: Spare,
    /// The open chains by due time: what a sweep looks at.
    due: DueQueue,
    pub(super) line_budget: LineBudget,
    pub(super) stats: CorrelatorStats,
    /// The latest time read.
    now: Option<DateTime<Utc>>,
    /// The time of the record being read (`now` when it has none).
    at: Option<DateTime<Utc>>,
    /// `at`, and the shortest wait before it: a chain active after that is open at `at`
    /// (worked out once per time read, as a time's arithmetic costs more than a comparison).
    recent: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When set, only chains of this Message-ID (comparison key) are built when done; the
    /// others are dropped unbuilt (counted in `chains_skipped`).
    pub(super) only_message_id: Option<String>,
    /// Every record comes from one host (see [`Correlator::single_host`]).
    pub(super) single_host: bool,
}

impl Correlator {
    pub fn new(limits: Limits) -> Self {
        Correlator {
            limits,
            next_id: 1,
            chains: Chains::default(),
            qids: index(),
            msgids: index(),
            sessions: index(),
            pending_next: index(),
            noqueue_by_rcpt: index(),
            recent_failures: VecDeque::new(),
            recent_dovecot: VecDeque::new(),
            lda_saves: VecDeque::new(),
            recent_problems: VecDeque::new(),
            recent_sasl: VecDeque::new(),
            recent_refusals: VecDeque::new(),
            recent_clients: Index::default(),
            clients_noted: 0,
            host_findings: BTreeMap::new(),
            skew: BTreeMap::new(),
            finished: VecDeque::new(),
            superseded: Superseded::default(),
            spare: Spare::default(),
            due: DueQueue::default(),
            line_budget: LineBudget::default(),
            stats: CorrelatorStats::default(),
            now: None,
            at: None,
            recent: None,
            only_message_id: None,
            single_host: false,
        }
    }

    /// Build only the chains of `message_id` when they are done (a `--message-id` run): the
    /// others are still correlated (they may merge into it) but dropped unbuilt.
    pub fn only_message_id(mut self, message_id: &str) -> Self {
        self.only_message_id = Some(msgid_key(message_id).to_string());
        self
    }

    /// Every record comes from one host. Then:
    /// - a message handed to another host (not to a local content filter) is not kept open
    ///   for the grace time waiting for that host's lines: none will come. It is done after
    ///   the settle time, as a message with nothing left to wait for. (Should the hand-off
    ///   still join an entry of this host, a re-injection by a localhost client, it does so
    ///   while the chain is open.) The same for an LMTP hand-off without Dovecot's line, and
    ///   Dovecot's line without Postfix's: the other side is logged at the same moment, or
    ///   not in this log at all;
    /// - a NOQUEUE reject joins only another host's delivery failure, so with
    ///   [`Correlator::only_message_id`] it can never reach the asked message: it builds no
    ///   chain (it still counts as a record and moves the clock, so chains are done and swept
    ///   exactly when they would be).
    pub fn single_host(mut self) -> Self {
        self.single_host = true;
        self
    }

    /// Keep no log lines with the chains (messages come without them): for a report that shows
    /// none. They are still counted and charged to `max_retained_line_bytes` as if kept, so
    /// every count (`lines_dropped`, lines dropped over the cap) is what it would be.
    pub fn without_lines(mut self) -> Self {
        self.line_budget.count_only = true;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of chains still open (for memory checks and tests).
    pub fn open_chains(&self) -> usize {
        self.chains.len()
    }

    /// Bytes of log lines the open chains hold together (at most `max_retained_line_bytes`).
    pub fn retained_line_bytes(&self) -> usize {
        self.line_budget.bytes
    }

    /// Log lines dropped so far because `max_retained_line_bytes` was reached.
    pub fn lines_dropped_over_cap(&self) -> u64 {
        self.line_budget.dropped
    }

    /// The newest log timestamp seen so far (the correlator's notion of "now").
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    /// The latest remembered delivery failure on a host other than `host`, to `to_key`, within
    /// the link window of `ts`, that `also` accepts: what a line on the next hop explains.
    pub(super) fn failure_elsewhere(
        &self,
        host: &str,
        to_key: &str,
        ts: Option<DateTime<Utc>>,
        also: impl Fn(&RecentFailure) -> bool,
    ) -> Option<&RecentFailure> {
        self.recent_failures.iter().rev().find(|x| {
            x.to == to_key
                && &*x.host != host
                && within(x.at, ts, self.limits.link_window)
                && also(x)
        })
    }

    /// Feed one parsed record.
    pub fn push(&mut self, rec: LogRecord) {
        self.observe(&rec);
    }

    /// Feed one parsed record the caller keeps: what a chain keeps of it is copied, so the
    /// record can be dropped elsewhere (a pipeline drops it on the thread that made it).
    pub fn observe(&mut self, rec: &LogRecord) {
        self.stats.records += 1;
        if let Some(t) = rec.timestamp {
            self.now = Some(self.now.map_or(t, |n| n.max(t)));
        }
        self.at = rec.timestamp.or(self.now);
        match &rec.event {
            Event::Client {
                queue_id, client, ..
            } => self.on_client(rec, queue_id, client),
            Event::Pickup { queue_id, from } => self.on_pickup(rec, queue_id, from),
            Event::MessageId {
                queue_id,
                message_id,
            } => self.on_message_id(rec, queue_id, message_id),
            Event::QueueActive { queue_id, from, .. } => self.on_queue_active(rec, queue_id, from),
            Event::Delivery(d) => self.on_delivery(rec, d),
            Event::Expired {
                queue_id,
                from,
                rcpt,
                returned_to_sender,
                forced,
            } => self.on_expired(
                rec,
                queue_id,
                from,
                rcpt.as_deref(),
                Expiry {
                    returned_to_sender: *returned_to_sender,
                    forced: *forced,
                },
            ),
            Event::Removed { queue_id } => self.on_removed(rec, queue_id),
            Event::Released { queue_id } => self.on_released(rec, queue_id),
            Event::Reject(r)
                if r.queue_id.is_none() && self.single_host && self.only_message_id.is_some() => {}
            Event::Reject(r) => self.on_reject(rec, r),
            Event::Notification {
                queue_id,
                notice_queue_id,
                ..
            } => self.on_notification(rec, queue_id, notice_queue_id),
            Event::AttemptDetail { queue_id, .. } => self.on_attempt_detail(rec, queue_id),
            Event::Redirected { queue_id, to } => self.on_redirected(rec, queue_id, to),
            Event::SaslAuthFailed {
                client,
                mechanism,
                reason,
            } => self.on_sasl_auth_failed(rec, client, mechanism, reason),
            Event::AuthNeverSucceeded { client, attempts } => {
                self.on_auth_never_succeeded(rec, client, *attempts)
            }
            Event::TransactionAbandoned { client } => self.on_transaction_abandoned(rec, client),
            Event::Problem {
                severity,
                queue_id,
                text,
            } => self.on_postfix_problem(rec, *severity, queue_id.as_deref(), text),
            Event::DovecotDelivery(d) => self.on_dovecot_delivery(rec, d),
            Event::DovecotProblem(p) => self.on_dovecot_problem(rec, p),
            Event::Login(l) if !l.success => self.on_login_failed(
                rec,
                &l.service,
                l.user.as_deref(),
                l.remote_ip.as_deref(),
                &l.text,
            ),
            // A successful login, and lines that carry nothing to correlate.
            Event::Login(_) | Event::Info => {}
            Event::AuthFailure {
                user,
                kind,
                remote_ip: None,
                ..
            } => self.on_recipient_lookup_failed(rec, user.as_deref(), *kind),
            Event::AuthFailure {
                user,
                kind,
                remote_ip,
                ..
            } => self.on_auth_failed(rec, user.as_deref(), *kind, remote_ip.as_deref()),
            Event::AuthBackendError { text } => self.on_auth_backend_error(rec, text),
        }
        if self.stats.records.is_multiple_of(SWEEP_EVERY)
            || self.chains.len() > self.limits.max_open_chains
        {
            self.sweep(false);
        }
    }

    /// How long the chain must be quiet to be done: resolved chains settle quickly, chains
    /// waiting for another host's log get the grace time, queue entries never closed the idle
    /// timeout. With one host's log ([`Correlator::single_host`]) Postfix's and Dovecot's sides
    /// of an LMTP hand-off are not waited for either: both are logged within the same moment
    /// (Dovecot's save before the reply Postfix logs), so the other side, when it is in the log
    /// at all, comes well within the settle time.
    fn wait(l: &Limits, single_host: bool, ch: &Chain) -> TimeDelta {
        if ch.entries.is_empty() {
            // NOQUEUE rejects and Dovecot-only deliveries.
            return if ch.dovecot.is_empty() || single_host {
                l.settle
            } else {
                l.grace
            };
        }
        if !ch.entries.iter().all(Entry::closed) {
            let in_queue = ch.entries.iter().any(|e| !e.closed() && e.in_queue());
            return if in_queue {
                l.queue_lifetime
            } else {
                l.idle_timeout
            };
        }
        let waiting = ch.pending_links > 0 || (!single_host && ch.awaiting_dovecot());
        if waiting {
            l.grace
        } else {
            l.settle
        }
    }

    /// Whether chain `id` is open to a new line: there, and not yet done at the line's own
    /// time. One that is done but not yet swept is emitted now, as the next sweep would: what
    /// joins it must not hang on how many records came between (a sweep runs every few
    /// thousand, and a `--message-id` run reads far fewer), nor, in a log whose clock steps
    /// back, on the latest time read before it (which the lines a prefilter skips change).
    pub(super) fn still_open(&mut self, id: ChainId) -> bool {
        self.open_else(id, Self::emit)
    }

    /// [`Correlator::still_open`] for a line joining chain `id` by its Message-ID: a chain done
    /// at the line's own time is held as superseded instead of emitted (the line goes to
    /// another chain of that Message-ID, which a later-read line of an earlier time can bring
    /// it back into: see `superseded`).
    pub(super) fn open_to_message_id(&mut self, id: ChainId) -> bool {
        self.open_else(id, Self::supersede)
    }

    /// Whether chain `id` is there and not done at the line's own time; a done one goes to
    /// `done` (emitted or held).
    fn open_else(&mut self, id: ChainId, done: fn(&mut Self, ChainId)) -> bool {
        let recent = self.recent_since();
        let Some(ch) = self.chains.get(&id) else {
            return false;
        };
        // Most lines come within seconds of their chain's last: open, whatever its wait.
        if recent.is_some_and(|r| ch.last_activity.is_some_and(|l| l > r)) {
            return true;
        }
        if self.is_done(ch, self.at) {
            done(self, id);
            return false;
        }
        true
    }

    /// The shortest wait before the record's time: a chain active since is not done.
    fn recent_since(&mut self) -> Option<DateTime<Utc>> {
        let at = self.at?;
        match self.recent {
            Some((t, since)) if t == at => Some(since),
            _ => {
                let since = at.checked_sub_signed(self.limits.shortest_wait())?;
                self.recent = Some((at, since));
                Some(since)
            }
        }
    }

    /// The time of the record being read (the latest read when it has none).
    pub(super) fn at(&self) -> Option<DateTime<Utc>> {
        self.at
    }

    /// The chain is quiet long enough at `now` to be done.
    fn is_done(&self, ch: &Chain, now: Option<DateTime<Utc>>) -> bool {
        Self::done_at(&self.limits, self.single_host, ch, now)
    }

    /// [`Correlator::is_done`] of a correlator with these limits and [`Correlator::single_host`].
    pub(super) fn done_at(
        l: &Limits,
        single_host: bool,
        ch: &Chain,
        now: Option<DateTime<Utc>>,
    ) -> bool {
        let Some(now) = now else {
            return false;
        };
        now - ch.last_activity.unwrap_or(now) >= Self::wait(l, single_host, ch)
    }

    /// Emit chains that are done (or must go to respect the bounds).
    fn sweep(&mut self, flush_all: bool) {
        let mut done: Vec<ChainId> = if flush_all {
            self.chains.keys().copied().collect()
        } else {
            self.done_chains()
        };
        let over = (self.chains.len() - done.len()).saturating_sub(self.limits.max_open_chains);
        if over > 0 {
            self.evict(over, &mut done);
        }
        done.sort_unstable();
        for id in done {
            self.emit(id);
        }
    }

    /// The open chains that are done: those due by now, looked at again (a due time is that of
    /// the chain's state at its last change).
    fn done_chains(&mut self) -> Vec<ChainId> {
        let Some(now) = self.now else {
            return Vec::new();
        };
        let (limits, single_host) = (self.limits, self.single_host);
        let mut ids = self.due.due(&mut self.chains, now, |ch| {
            ch.last_activity?
                .checked_add_signed(Self::wait(&limits, single_host, ch))
        });
        ids.sort_unstable();
        ids.dedup();
        let (done, not): (Vec<ChainId>, Vec<ChainId>) = ids.into_iter().partition(|id| {
            self.chains
                .get(id)
                .is_some_and(|ch| self.is_done(ch, self.now))
        });
        // Untimed chains not done yet (and, never expected, a due chain that is not done: it
        // did not change since its due time was set): queued anew.
        for id in not {
            self.chains.get_mut(&id);
        }
        done
    }

    /// Mark the least recently active open chains (not already `done`) for emission: `over`
    /// of them plus a tenth of the cap, so that eviction does not run on every record.
    fn evict(&mut self, over: usize, done: &mut Vec<ChainId>) {
        let target = over + self.limits.max_open_chains / 10;
        let mut done_set: HashSet<ChainId, _> =
            HashSet::with_hasher(foldhash::fast::RandomState::default());
        done_set.extend(done.iter().copied());
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

    fn emit(&mut self, id: ChainId) {
        let Some(ch) = self.remove_chain(id) else {
            return;
        };
        if !self.superseded.is_empty() {
            if let Some(key) = ch.message_id.as_deref().map(msgid_key) {
                for held in self.release_superseded(key) {
                    self.finish_chain(held);
                }
            }
        }
        self.finish_chain(ch);
    }

    /// A chain out of the open (or held) ones: counted, dropped or queued to be built.
    fn finish_chain(&mut self, ch: Chain) {
        if ch.only_removed() {
            self.stats.removed_only += 1;
            return;
        }
        if let Some(want) = &self.only_message_id {
            if ch
                .message_id
                .as_deref()
                .is_none_or(|m| msgid_key(m) != want)
            {
                self.stats.chains_skipped += 1;
                return;
            }
        }
        self.stats.chains_emitted += 1;
        if self.finished.len() >= self.limits.max_finished {
            self.finished.pop_front();
            self.stats.finished_dropped += 1;
        }
        self.finished.push_back(ch);
    }

    /// Take chain `id` out of the open chains, its index entries and its lines' charge.
    pub(super) fn remove_chain(&mut self, id: ChainId) -> Option<Chain> {
        let ch = self.chains.remove(&id)?;
        self.unindex(&ch);
        self.line_budget.release(ch.line_bytes);
        Some(ch)
    }

    /// Drop the index entries pointing at chain `ch` (being emitted).
    fn unindex(&mut self, ch: &Chain) {
        let id = ch.id;
        let sessions = &mut self.sessions;
        let mut drop_session = |s: &str| unlink(sessions, s, |c| *c == id);
        for e in &ch.entries {
            drop_from_list(&mut self.qids, &e.qid, |(_, c)| *c == id);
            for a in e.rcpts.iter().filter_map(|r| r.last.as_ref()) {
                if let Some(s) = &a.lmtp_session {
                    drop_session(s);
                }
                if let Some(n) = &a.queued_as {
                    unlink(&mut self.pending_next, n, |p| p.chain == id);
                }
            }
        }
        for s in ch.dovecot.iter().filter_map(|d| d.session.as_ref()) {
            drop_session(s);
        }
        for to in ch.noqueue.iter().filter_map(|nq| nq.reject.to.as_ref()) {
            let k = to.to_ascii_lowercase();
            drop_from_list(&mut self.noqueue_by_rcpt, &k, |c| *c == id);
        }
        let msgids = ch
            .message_id
            .as_deref()
            .into_iter()
            .chain(ch.entries.iter().filter_map(|e| e.message_id.as_deref()));
        let mut last: Option<&str> = None;
        for m in msgids {
            let key = msgid_key(m);
            // Entries of one message repeat its id: one look-up each is enough.
            if last == Some(key) {
                continue;
            }
            last = Some(key);
            unlink(&mut self.msgids, key, |c| *c == id);
        }
    }

    /// Chains finished so far (emptied by this call). Call regularly when streaming.
    pub fn take_finished(&mut self) -> Vec<MessageChain> {
        let (spare, limits) = (&mut self.spare, &self.limits);
        self.finished
            .drain(..)
            .map(|ch| take_chain(ch, spare, limits))
            .collect()
    }

    /// The oldest finished chain not taken yet: [`Correlator::take_finished`] one at a time,
    /// without gathering them into a new list first.
    pub fn next_finished(&mut self) -> Option<MessageChain> {
        let ch = self.finished.pop_front()?;
        Some(take_chain(ch, &mut self.spare, &self.limits))
    }

    /// Hand back a message taken from this correlator once it is reported: the next message
    /// built reuses its lists' room (a full diagnosis builds one every few records).
    pub fn recycle(&mut self, m: MessageChain) {
        self.spare.keep(m);
    }

    /// A snapshot of everything known: finished-but-not-taken chains, held superseded ones, then
    /// open ones.
    pub fn messages(&self) -> Vec<MessageChain> {
        let mut out: Vec<MessageChain> = self
            .finished
            .iter()
            .map(|c| build_chain(c, &self.limits))
            .collect();
        out.extend(self.superseded.iter().map(|c| build_chain(c, &self.limits)));
        let mut ids: Vec<&ChainId> = self.chains.keys().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(ch) = self.chains.get(id) {
                out.push(build_chain(ch, &self.limits));
            }
        }
        out
    }

    /// The chain(s) of one message-id, open or finished-but-not-taken (live use by the runner).
    pub fn message(&self, message_id: &str) -> Option<MessageChain> {
        let key = msgid_key(message_id);
        if let Some(ch) = self.msgids.get(key).and_then(|c| self.chains.get(c)) {
            return Some(build_chain(ch, &self.limits));
        }
        self.finished
            .iter()
            .rev()
            .find(|ch| {
                ch.message_id
                    .as_deref()
                    .is_some_and(|m| msgid_key(m) == msgid_key(key))
            })
            .map(|c| build_chain(c, &self.limits))
    }

    /// The open chains a probe can be found in (`fusion::probe_chains` picks among them), oldest
    /// first; only these are built: those naming its Message-ID or its submission queue id,
    /// and, with `rejected_sender` (a probe whose submission was refused), those without any
    /// Message-ID that name that sender (its rejection is found by sender and recipient).
    pub fn probe_candidates(
        &self,
        message_id: &str,
        queue_id: Option<&str>,
        rejected_sender: Option<&str>,
    ) -> Vec<MessageChain> {
        let key = msgid_key(message_id);
        let mut ids: Vec<ChainId> = self
            .chains
            .values()
            .filter(|ch| {
                let mut ids = ch
                    .message_id
                    .as_deref()
                    .into_iter()
                    .chain(ch.entries.iter().filter_map(|e| e.message_id.as_deref()))
                    .peekable();
                let none = ids.peek().is_none();
                ids.any(|m| msgid_key(m) == key)
                    || (none && rejected_sender.is_some_and(|s| names_sender(ch, s)))
                    || queue_id.is_some_and(|q| ch.entries.iter().any(|e| e.qid == q))
            })
            .map(|ch| ch.id)
            .collect();
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| self.chains.get(id))
            .map(|c| build_chain(c, &self.limits))
            .collect()
    }

    /// Host-level findings (warnings, auth failures...) aggregated per code and host.
    pub fn host_findings(&self) -> Vec<Finding> {
        self.host_findings
            .values()
            .map(HostFinding::finding)
            .collect()
    }

    /// Clock offset estimates per host pair, from the hand-offs seen.
    pub fn skew(&self) -> Vec<SkewEstimate> {
        self.skew
            .iter()
            .map(|((host, reference), b)| SkewEstimate {
                host: host.clone(),
                reference: reference.clone(),
                min_ms: b.min_ms,
                max_ms: b.max_ms,
                samples: b.samples,
                conflicts: b.conflicts,
                significant: b.significant(),
            })
            .collect()
    }

    /// Emit up to `max` open chains, oldest (lowest id) first, as the end of input would: lets a
    /// caller drain the open chains in batches instead of holding every finished chain at once.
    /// Returns how many were emitted.
    pub fn flush_open(&mut self, max: usize) -> usize {
        let mut ids: Vec<ChainId> = self.chains.keys().copied().collect();
        ids.sort_unstable();
        ids.truncate(max);
        for &id in &ids {
            self.emit(id);
        }
        ids.len()
    }

    /// End of input: emit everything still open and return all finished chains.
    pub fn finish(self) -> Vec<MessageChain> {
        self.finish_all().messages
    }

    /// End of input: all chains plus host findings, skew and counters.
    pub fn finish_all(mut self) -> Outcome {
        self.sweep(true);
        for held in self.release_all_superseded() {
            self.finish_chain(held);
        }
        let host_findings = self.host_findings();
        let skew = self.skew();
        Outcome {
            messages: self.take_finished(),
            host_findings,
            skew,
            stats: CorrelatorStats {
                lines_dropped_over_cap: self.line_budget.dropped,
                ..self.stats.clone()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::tests::feed;

    /// `n` messages handed from `mx` to `dell` (some deferred first, every third left open),
    /// with a few lines more than a chain keeps.
    fn two_hosts(n: u32) -> (String, String) {
        let (mut mx, mut dell) = (String::new(), String::new());
        for i in 0..n {
            let (q, d) = (
                format!("{:010X}", 0x300_0000 + i),
                format!("{:010X}", 0x400_0000 + i),
            );
            let t = format!("Nov  7 12:{:02}:{:02}", i / 60 % 60, i % 60);
            mx.push_str(&format!(
                "{t} mx postfix/smtpd[1]: {q}: client=s{i}.example.org[203.0.113.9]\n\
                 {t} mx postfix/cleanup[2]: {q}: message-id=<two{i}@x>\n\
                 {t} mx postfix/qmgr[3]: {q}: from=<s{i}@example.org>, size=900, nrcpt=1 (queue active)\n"
            ));
            for _ in 0..i % 4 {
                mx.push_str(&format!(
                    "{t} mx postfix/smtp[4]: {q}: to=<bob@corp.test>, relay=dell[192.0.2.1]:25, delay=1, \
                     delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to dell[192.0.2.1]:25: \
                     Connection timed out)\n"
                ));
            }
            if i % 3 == 0 {
                continue;
            }
            mx.push_str(&format!(
                "{t} mx postfix/smtp[4]: {q}: to=<bob@corp.test>, relay=dell[192.0.2.1]:25, delay=1, \
                 delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {d})\n\
                 {t} mx postfix/qmgr[3]: {q}: removed\n"
            ));
            dell.push_str(&format!(
                "{t} dell postfix/smtpd[1]: {d}: client=mx[192.0.2.7]\n\
                 {t} dell postfix/cleanup[2]: {d}: message-id=<two{i}@x>\n\
                 {t} dell postfix/qmgr[3]: {d}: removed\n"
            ));
        }
        (mx, dell)
    }

    #[test]
    fn without_lines_only_the_lines_are_missing() {
        let limits = Limits {
            max_lines: 6,
            max_retained_line_bytes: 40_000,
            ..Limits::default()
        };
        let (mx, dell) = two_hosts(600);
        let run = |c: Correlator| {
            let mut c = c;
            feed(&mut c, "mx", &mx);
            feed(&mut c, "dell", &dell);
            c.finish_all()
        };
        let mut kept = run(Correlator::new(limits));
        let counted = run(Correlator::new(limits).without_lines());
        assert!(kept.stats.lines_dropped_over_cap > 100, "{:?}", kept.stats);
        assert!(kept
            .messages
            .iter()
            .any(|m| m.lines.len() == 6 && m.lines_dropped > 0));
        assert!(counted.messages.iter().all(|m| m.lines.is_empty()));
        for m in &mut kept.messages {
            m.lines.clear();
        }
        assert_eq!(counted.messages, kept.messages);
        assert_eq!(counted.stats, kept.stats);
    }
}
