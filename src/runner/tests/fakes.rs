//! In-memory edges for the runner's tests: a sender that delivers into a fake mailbox on a
//! script (in tokio's paused time), a mailbox that verifies tags like the real one (and, when
//! told, pushes news late like Dovecot, drops long IDLEs like Gmail, and counts the commands a
//! real watch would issue), scripted logs, and a store in a map.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::core::diagnosis::Finding;
use crate::core::fusion::{fuse_probe, Correlator, HeaderHop, Limits, ProbeContext, ProbeTimeline};
use crate::core::logs::{LineParser, ParseContext, Parsed};
use crate::core::outcome::{DetectedBy, RunResult, SmtpPhase, Submission};
use crate::core::probe::Verdict;
use crate::core::probe::{Installation, ProbeMessage, ProbeTag};
use crate::core::verdict::{CopyAt, CopyKind, RecordState, StoredProbe};
use crate::edge::imap::{Arrival, FetchError, ScannedCopy, SeenProbe, WaitEnd, WaitNotes};
use crate::edge::smtp::{SendOutcome, Submitted};
use crate::edge::store::{Claim, PendingRow, Removal, StoreError};
use crate::runner::ports::{
    ArmedWait, Arming, BoxFuture, Cancel, FinalResult, LogFeed, LogSources, Look as WatchLook,
    LookRequests, MailboxAccess, MailboxSession, Opening, ProbeSender, ResultStore, ResumePoints,
    Scanning, Waited,
};

/// One message in the fake mailbox.
#[derive(Debug, Clone)]
pub struct Msg {
    pub folder: String,
    pub uid: u32,
    pub raw: Vec<u8>,
    pub internal_date: Option<DateTime<Utc>>,
    /// A bounce quoting the probe rather than the probe itself.
    pub bounce: bool,
    /// When it was saved, on the monotonic clock.
    pub saved: Instant,
}

/// The server side of the fake mailbox.
pub struct World {
    pub folders: Vec<String>,
    pub msgs: Vec<Msg>,
    next_uid: u32,
    /// Bumped when every session is dropped (a server restart).
    generation: u32,
    /// Errors the next logins fail with, in order.
    pub open_errors: VecDeque<FetchError>,
    pub opens: u32,
    pub logouts: u32,
    pub idle: bool,
    /// Every folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// When set, UIDVALIDITY becomes this right after the next scan (a folder re-created
    /// between cleanup's scan and its deletion).
    pub uid_validity_after_scan: Option<u32>,
    /// Folders the session found by a configured special use: (server name, configured entry).
    pub special_use: Vec<(String, String)>,
    /// How long after a save IDLE reports it (Dovecot: about 500 ms); zero by default.
    pub push_delay: Duration,
    /// An IDLE left running this long drops the session (Gmail: about 29 minutes).
    pub idle_drop_after: Option<Duration>,
    /// A look that finds the probe is answered this long after it was asked (Dovecot holds a
    /// command that meets a delivery being saved); zero by default.
    pub found_answer_held: Duration,
    /// How long a cleanup's scan takes; zero by default.
    pub scan_delay: Duration,
    /// Bumped on every change, so waits wake up.
    changed: watch::Sender<u64>,
}

impl World {
    pub fn add(
        &mut self,
        folder: &str,
        raw: Vec<u8>,
        internal_date: Option<DateTime<Utc>>,
        bounce: bool,
    ) {
        self.msgs.push(Msg {
            folder: folder.into(),
            uid: self.next_uid,
            raw,
            internal_date,
            bounce,
            saved: crate::clock::instant(),
        });
        self.next_uid += 1;
        self.changed.send_modify(|v| *v += 1);
    }

    fn drop_sessions(&mut self, refused: usize) {
        self.generation += 1;
        for _ in 0..refused {
            self.open_errors
                .push_back(FetchError::Connect("connection refused".into()));
        }
        self.changed.send_modify(|v| *v += 1);
    }
}

/// What the fake mailbox server does after the probe is accepted.
#[derive(Debug, Clone)]
pub enum Event {
    /// The probe lands in a folder.
    Deliver {
        after: Duration,
        folder: &'static str,
    },
    /// A bounce quoting the probe lands in a folder.
    Bounce {
        after: Duration,
        folder: &'static str,
    },
    /// Every IMAP session drops; the next `refused` logins fail.
    DropSessions { after: Duration, refused: usize },
}

/// The shared fake mail system: the sender delivers into it, the mailbox reads it.
#[derive(Clone)]
pub struct FakeMail {
    world: Arc<Mutex<World>>,
    key: Installation,
    clock: SharedClock,
}

impl FakeMail {
    pub fn new(key: Installation, clock: SharedClock, folders: &[&str]) -> FakeMail {
        let (changed, _) = watch::channel(0);
        FakeMail {
            world: Arc::new(Mutex::new(World {
                folders: folders.iter().map(|f| f.to_string()).collect(),
                msgs: Vec::new(),
                next_uid: 1,
                generation: 0,
                open_errors: VecDeque::new(),
                opens: 0,
                logouts: 0,
                idle: true,
                uid_validity: 7,
                uid_validity_after_scan: None,
                special_use: Vec::new(),
                push_delay: Duration::ZERO,
                found_answer_held: Duration::ZERO,
                scan_delay: Duration::ZERO,
                idle_drop_after: None,
                changed,
            })),
            key,
            clock,
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    fn run_events(&self, raw: Vec<u8>, events: Vec<Event>) {
        for ev in events {
            let me = self.clone();
            let raw = raw.clone();
            tokio::spawn(async move {
                let (after, action) = match ev {
                    Event::Deliver { after, folder } => (after, Ok((folder, false))),
                    Event::Bounce { after, folder } => (after, Ok((folder, true))),
                    Event::DropSessions { after, refused } => (after, Err(refused)),
                };
                tokio::time::sleep(after).await;
                let now = me.clock.now();
                let mut w = me.world();
                match action {
                    Ok((folder, bounce)) => w.add(folder, raw, Some(now), bounce),
                    Err(refused) => w.drop_sessions(refused),
                }
            });
        }
    }

    /// What a cleanup scan sees of a message: like the real mailbox, any genuine tag.
    fn scanned(&self, m: &Msg, uid_validity: u32) -> Option<ScannedCopy> {
        let (kind, tag) = match self.key.verify(&m.raw) {
            Verdict::Valid(t) if m.bounce => (CopyKind::Bounce, t),
            Verdict::Valid(t) => (CopyKind::Probe, t),
            Verdict::Transplanted(t) => (CopyKind::Transplanted, t),
            _ => return None,
        };
        Some(ScannedCopy {
            at: CopyAt {
                folder: m.folder.clone(),
                uid_validity,
                uid: m.uid,
            },
            kind,
            tag,
            internal_date: m.internal_date,
        })
    }

    fn seen(&self, m: &Msg) -> Option<SeenProbe> {
        let tag = self.key.verify(&m.raw).valid().cloned()?;
        Some(SeenProbe {
            folder: m.folder.clone(),
            uid: m.uid,
            tag,
            internal_date: m.internal_date,
            bounce: m.bounce,
            configured_as: None,
        })
    }
}

impl MailboxAccess for FakeMail {
    fn open<'a>(&'a self, resume: &'a [(String, u32)], _deadline: Instant) -> Opening<'a> {
        Box::pin(async move {
            let mut w = self.world();
            w.opens += 1;
            if let Some(e) = w.open_errors.pop_front() {
                return Err(e);
            }
            let starts = w
                .folders
                .iter()
                .map(|f| match resume.iter().find(|(n, _)| n == f) {
                    Some((_, u)) => (f.clone(), *u),
                    None => (f.clone(), w.next_uid),
                })
                .collect();
            let session = FakeSession {
                mail: self.clone(),
                starts,
                generation: w.generation,
                idle: w.idle,
            };
            Ok(Box::new(session) as Box<dyn MailboxSession>)
        })
    }
}

pub struct FakeSession {
    mail: FakeMail,
    starts: ResumePoints,
    generation: u32,
    idle: bool,
}

impl MailboxSession for FakeSession {
    fn uses_idle(&self) -> bool {
        self.idle
    }
    fn resume_points(&self) -> ResumePoints {
        self.starts.clone()
    }
    fn arm(self: Box<Self>, key: Installation, want: Uuid, _deadline: Instant) -> Arming {
        Box::pin(async move {
            let changed = self.mail.world().changed.subscribe();
            Ok(Box::new(FakeArmed {
                session: *self,
                key,
                want,
                changed,
                looks: LookRequests::default(),
            }) as Box<dyn ArmedWait>)
        })
    }
    fn scan_probes<'a>(&'a mut self, _key: &'a Installation) -> Scanning<'a> {
        Box::pin(async move {
            let delay = self.mail.world().scan_delay;
            tokio::time::sleep(delay).await;
            let mut w = self.mail.world();
            let v = w.uid_validity;
            let seen = w
                .msgs
                .iter()
                .filter_map(|m| self.mail.scanned(m, v))
                .collect();
            if let Some(next) = w.uid_validity_after_scan.take() {
                w.uid_validity = next;
            }
            (seen, Vec::new())
        })
    }
    fn delete<'a>(&'a mut self, at: &'a CopyAt) -> BoxFuture<'a, Result<usize, FetchError>> {
        Box::pin(async move {
            let mut w = self.mail.world();
            if w.uid_validity != at.uid_validity {
                return Err(FetchError::Protocol(format!(
                    "UIDVALIDITY of {} changed; nothing deleted",
                    at.folder
                )));
            }
            let before = w.msgs.len();
            w.msgs
                .retain(|m| !(m.folder == at.folder && m.uid == at.uid));
            Ok(before - w.msgs.len())
        })
    }
    fn logout(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.mail.world().logouts += 1;
        })
    }
}

pub struct FakeArmed {
    session: FakeSession,
    key: Installation,
    want: Uuid,
    changed: watch::Receiver<u64>,
    looks: LookRequests,
}

/// Commands a real watch issues (edge::imap::watch): a look's NOOP, a full look's FETCH per
/// folder and SELECTs, the FETCHes of a found probe, IDLE and DONE.
const NOOP: u32 = 1;
const FULL_LOOK: u32 = 4;
const FOUND: u32 = 3;

enum Look {
    /// The probe (saved when), or the session is gone, or nothing yet.
    Found(Box<Arrival>, Instant),
    Lost,
    Nothing,
}

impl FakeArmed {
    fn look(&self) -> Look {
        let mail = &self.session.mail;
        let w = mail.world();
        if w.generation != self.session.generation {
            return Look::Lost;
        }
        let start = |folder: &str| {
            self.session
                .starts
                .iter()
                .find(|(n, _)| n == folder)
                .map_or(1, |(_, u)| *u)
        };
        let hit = w.msgs.iter().find(|m| {
            m.uid >= start(&m.folder)
                && self
                    .key
                    .verify(&m.raw)
                    .valid()
                    .is_some_and(|t| t.id == self.want)
        });
        match hit.and_then(|m| mail.seen(m).map(|s| (s, m.raw.clone(), m.saved))) {
            Some((mut seen, raw, saved)) => Look::Found(
                Box::new(Arrival {
                    seen: {
                        seen.configured_as = w
                            .special_use
                            .iter()
                            .find(|(name, _)| *name == seen.folder)
                            .map(|(_, c)| c.clone());
                        seen
                    },
                    detected_at: mail.clock.now(),
                    detected_instant: mail.clock.instant(),
                    asked_instant: mail.clock.instant(),
                    detected_by: DetectedBy::Idle,
                    raw,
                }),
                saved,
            ),
            None => Look::Nothing,
        }
    }
}

impl ArmedWait for FakeArmed {
    fn wait<'a>(
        mut self: Box<Self>,
        deadline: Instant,
        mut cancel: Cancel<'a>,
    ) -> BoxFuture<'a, Waited> {
        Box::pin(async move {
            let (push_delay, idle_drop) = {
                let w = self.session.mail.world();
                (w.push_delay, w.idle_drop_after)
            };
            let uses_idle = self.session.idle;
            let mut in_window = false;
            let mut idle_since = crate::clock::instant();
            // Arming looks once at every folder, then IDLE starts.
            let mut commands = FULL_LOOK + u32::from(uses_idle);
            let mut first = true;
            let end = loop {
                self.changed.borrow_and_update();
                let idling = uses_idle && !in_window;
                let (found, push_at) = match self.look() {
                    Look::Lost => break WaitEnd::SessionsLost,
                    Look::Found(a, saved) => (Some(a), Some((saved + push_delay).max(idle_since))),
                    Look::Nothing => (None, None),
                };
                let push_at = push_at.filter(|_| idling);
                if let Some(mut a) = found.clone() {
                    if first {
                        a.detected_by = DetectedBy::Poll;
                        commands += FOUND;
                        break WaitEnd::Arrived(a);
                    }
                    if push_at.is_some_and(|t| t <= crate::clock::instant()) {
                        commands += 1 + FOUND;
                        break WaitEnd::Arrived(a);
                    }
                }
                first = false;
                let drop_at = idle_drop.filter(|_| idling).map(|d| idle_since + d);
                tokio::select! {
                    _ = self.changed.changed() => {}
                    _ = sleep_until_some(push_at) => {}
                    l = self.looks.next() => {
                        commands += u32::from(idling) + NOOP;
                        if let Look::Found(mut a, _) = self.look() {
                            commands += FOUND;
                            let asked = self.session.mail.clock.instant();
                            let held = self.session.mail.world().found_answer_held;
                            tokio::time::sleep(held).await;
                            a.detected_at = self.session.mail.clock.now();
                            a.detected_instant = self.session.mail.clock.instant();
                            a.asked_instant = asked;
                            a.detected_by = DetectedBy::Poll;
                            break WaitEnd::Arrived(a);
                        }
                        in_window = l == WatchLook::Window;
                        if l == WatchLook::Full {
                            commands += FULL_LOOK;
                        }
                        if uses_idle && !in_window {
                            commands += 1;
                            idle_since = crate::clock::instant();
                        }
                    }
                    _ = sleep_until_some(drop_at) => break WaitEnd::SessionsLost,
                    _ = tokio::time::sleep_until(deadline) => break WaitEnd::Deadline,
                    _ = cancel.as_mut() => break WaitEnd::Cancelled,
                }
            };
            let session = match end {
                WaitEnd::SessionsLost => None,
                _ => Some(Box::new(self.session) as Box<dyn MailboxSession>),
            };
            Waited {
                end,
                session,
                notes: WaitNotes {
                    warnings: Vec::new(),
                    commands,
                },
            }
        })
    }
    fn looks(&self) -> LookRequests {
        self.looks.clone()
    }
}

/// Sleep until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The sending server's answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Accept,
    Reject {
        phase: SmtpPhase,
        code: u16,
        text: &'static str,
    },
    Fail {
        phase: SmtpPhase,
        text: &'static str,
    },
    /// Never answers: the submission fails when its deadline comes, as the real one does.
    Silent,
    /// Accepts, but the answer comes this long after the message went on its way (a slow
    /// end of session): the probe can land before its run starts waiting for it.
    AcceptLate(Duration),
}

/// A sender that answers as told and, when it accepts, runs the mail system's events.
pub struct FakeSender {
    pub mail: FakeMail,
    pub reply: Reply,
    pub events: Vec<Event>,
    pub sent: Mutex<Vec<Vec<u8>>>,
}

impl ProbeSender for FakeSender {
    fn send<'a>(&'a self, message: &'a [u8], deadline: Instant) -> BoxFuture<'a, Submitted> {
        Box::pin(async move {
            let started = self.mail.clock.instant();
            let outcome = self.answer(message, deadline).await;
            Submitted { outcome, started }
        })
    }
}

impl FakeSender {
    async fn answer(&self, message: &[u8], deadline: Instant) -> SendOutcome {
        {
            self.sent.lock().unwrap().push(message.to_vec());
            let now = self.mail.clock.now();
            let sub = |phase, code: Option<u16>, text: &str, accepted| Submission {
                started_at: now,
                accepted_at: accepted,
                phase,
                code,
                enhanced: crate::core::reply::enhanced_code(text),
                text: text.to_string(),
                queue_id: None,
                auth_mechanism: None,
                steps: Box::default(),
            };
            match &self.reply {
                Reply::Accept | Reply::AcceptLate(_) => {
                    self.mail.run_events(message.to_vec(), self.events.clone());
                    if let Reply::AcceptLate(after) = self.reply {
                        tokio::time::sleep(after).await;
                    }
                    SendOutcome::Accepted(sub(
                        SmtpPhase::Message,
                        Some(250),
                        "2.0.0 Ok: queued as ABC",
                        Some(now),
                    ))
                }
                Reply::Reject { phase, code, text } => {
                    SendOutcome::Rejected(sub(*phase, Some(*code), text, None))
                }
                Reply::Fail { phase, text } => SendOutcome::Failed(sub(*phase, None, text, None)),
                Reply::Silent => {
                    tokio::time::sleep_until(deadline).await;
                    SendOutcome::Failed(sub(SmtpPhase::Connect, None, "no answer", None))
                }
            }
        }
    }
}

/// A probe message of some run, as the mailbox would hold it.
pub fn probe_raw(inst: &Installation, id: Uuid, sent_at: DateTime<Utc>) -> Vec<u8> {
    let tag = ProbeTag::new(id, "other-run", sent_at).to(&["user@example.test".to_string()]);
    ProbeMessage {
        tag: &tag,
        domain: &inst.domain,
        header_from: "probe@probe.test",
        header_to: "user@example.test",
        extra_headers: &[],
    }
    .render(&inst.key)
}

/// Server logs: from `bounce_after` on, the sending host's Postfix log shows the probe bounced
/// (real log lines, parsed and fused by the core like any log's).
/// From `saved_after` on, Dovecot's log shows the probe stored into INBOX.
#[derive(Default)]
pub struct FakeLogs {
    pub bounce_after: Option<Duration>,
    pub saved_after: Option<Duration>,
    pub host_findings: Vec<Finding>,
    /// Timelines asked of its feeds, all together.
    pub timelines: Arc<AtomicU32>,
}

struct FakeFeed {
    started: Instant,
    bounce_after: Option<Duration>,
    saved_after: Option<Duration>,
    timelines: Arc<AtomicU32>,
}

impl LogSources for FakeLogs {
    fn is_empty(&self) -> bool {
        false
    }
    fn follow(&self) -> (Box<dyn LogFeed>, Vec<String>) {
        let feed = FakeFeed {
            started: crate::clock::instant(),
            bounce_after: self.bounce_after,
            saved_after: self.saved_after,
            timelines: Arc::clone(&self.timelines),
        };
        (Box::new(feed), Vec::new())
    }
    fn recent_host_findings(&self, _: Duration) -> BoxFuture<'_, (Vec<Finding>, Vec<String>)> {
        Box::pin(async move { (self.host_findings.clone(), vec!["a log warning".into()]) })
    }
}

impl FakeFeed {
    /// Dovecot's lines written so far.
    fn dovecot_lines(&self, probe: &ProbeContext) -> Vec<String> {
        let elapsed = crate::clock::instant().saturating_duration_since(self.started);
        if self.saved_after.is_none_or(|after| elapsed < after) {
            return Vec::new();
        }
        let at = probe.submitted_at.format("%Y-%m-%dT%H:%M:%S%.6f");
        vec![format!(
            "{at} lmtp(user@example.test)<7><m9btLEHrC2uaQAAAn00ZSw>: Info: sieve: msgid={}: \
             stored mail into mailbox 'INBOX' delivery_time=3ms",
            probe.message_id
        )]
    }

    /// The log lines written so far.
    fn lines(&self, probe: &ProbeContext) -> Vec<String> {
        let elapsed = crate::clock::instant().saturating_duration_since(self.started);
        if self.bounce_after.is_none_or(|after| elapsed < after) {
            return Vec::new();
        }
        let at = probe.submitted_at.format("%b %e %H:%M:%S");
        let rcpt = probe.rcpt_to.first().map_or("", String::as_str);
        vec![
            format!("{at} mx postfix/smtpd[1]: 3B514DC192: client=unknown[198.18.1.1]"),
            format!("{at} mx postfix/cleanup[2]: 3B514DC192: message-id={}", probe.message_id),
            format!(
                "{at} mx postfix/qmgr[3]: 3B514DC192: from=<{}>, size=481, nrcpt=1 (queue active)",
                probe.mail_from
            ),
            format!(
                "{at} mx postfix/smtp[4]: 3B514DC192: to=<{rcpt}>, relay=198.18.2.2[198.18.2.2]:25, \
                 delay=0.2, delays=0/0/0/0.2, dsn=5.1.1, status=bounced (host 198.18.2.2[198.18.2.2] \
                 said: 550 5.1.1 <{rcpt}> User unknown (in reply to RCPT TO command))"
            ),
            format!("{at} mx postfix/qmgr[3]: 3B514DC192: removed"),
        ]
    }
}

impl LogFeed for FakeFeed {
    fn is_empty(&self) -> bool {
        false
    }
    /// Lines out so far: each group (the bounce's, Dovecot's save) counts as one.
    fn refresh(&mut self, _force: bool) -> BoxFuture<'_, u64> {
        let elapsed = crate::clock::instant().saturating_duration_since(self.started);
        let out = [self.bounce_after, self.saved_after]
            .into_iter()
            .flatten()
            .filter(|&after| elapsed >= after)
            .count() as u64;
        Box::pin(async move { out })
    }
    fn warnings(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async { Vec::new() })
    }
    fn timeline<'a>(
        &'a self,
        probe: &'a ProbeContext,
        header_hops: &'a [HeaderHop],
    ) -> BoxFuture<'a, ProbeTimeline> {
        self.timelines.fetch_add(1, Ordering::Relaxed);
        let mut corr = Correlator::new(Limits::default());
        for (role, lines) in [
            ("ec2", self.lines(probe)),
            ("dovecot", self.dovecot_lines(probe)),
        ] {
            let mut parser = LineParser::new(ParseContext::new(role, 2026));
            for line in lines {
                if let Parsed::Record(r) = parser.parse(line.as_bytes()) {
                    corr.push(*r);
                }
            }
        }
        let t = fuse_probe(probe, &corr.finish(), header_hops);
        Box::pin(async move { t })
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub status: String,
    pub sent_at: DateTime<Utc>,
    pub late_seen_at: Option<DateTime<Utc>>,
    pub probe_deleted: Option<CopyAt>,
    pub bounce_deleted: Option<CopyAt>,
}

impl Row {
    /// The recorded removal of this kind of copy (a transplanted copy shares the probe's).
    fn deleted_mut(&mut self, kind: CopyKind) -> &mut Option<CopyAt> {
        match kind {
            CopyKind::Bounce => &mut self.bounce_deleted,
            _ => &mut self.probe_deleted,
        }
    }
}

/// The result store in a map.
#[derive(Default)]
pub struct MemStore {
    pub rows: Mutex<BTreeMap<String, Row>>,
}

impl MemStore {
    /// Insert or update a row's status, keeping what it recorded of removals.
    pub fn put(&self, id: &str, status: &str, sent_at: DateTime<Utc>) {
        let mut rows = self.rows.lock().unwrap();
        let row = rows.entry(id.into()).or_insert(Row {
            scenario: "fake-inbound".into(),
            status: String::new(),
            sent_at,
            late_seen_at: None,
            probe_deleted: None,
            bounce_deleted: None,
        });
        row.status = status.into();
        row.sent_at = sent_at;
    }
    pub fn row(&self, id: &str) -> Option<Row> {
        self.rows.lock().unwrap().get(id).cloned()
    }
}

impl ResultStore for MemStore {
    fn record_pending(&self, result: &RunResult) -> Result<(), StoreError> {
        self.put(&result.probe_id, "pending", result.sent_at);
        if let Some(r) = self.rows.lock().unwrap().get_mut(&result.probe_id) {
            r.scenario = result.scenario.clone();
        }
        Ok(())
    }
    fn record_result(&self, done: &FinalResult<'_>) -> Result<(), StoreError> {
        let result = done.result;
        assert!(
            done.json.contains(&result.probe_id),
            "the stored JSON is the result's"
        );
        self.put(&result.probe_id, result.status.as_str(), result.sent_at);
        Ok(())
    }
    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError> {
        Ok(self.row(probe_id).map(|r| StoredProbe {
            state: RecordState::from_status(&r.status),
            probe_deleted: r.probe_deleted,
            bounce_deleted: r.bounce_deleted,
        }))
    }
    fn claim_deletion(&self, copy: Removal<'_>, _: DateTime<Utc>) -> Result<Claim, StoreError> {
        let Removal { probe_id, kind, at } = copy;
        let mut rows = self.rows.lock().unwrap();
        let Some(r) = rows.get_mut(probe_id) else {
            return Ok(Claim::NoRecord);
        };
        let slot = r.deleted_mut(kind);
        Ok(match slot {
            None => {
                *slot = Some(at.clone());
                Claim::Claimed
            }
            Some(done) if done == at => Claim::SameCopy,
            Some(done) => Claim::OtherCopy(done.clone()),
        })
    }
    fn release_deletion(&self, copy: Removal<'_>) -> Result<(), StoreError> {
        let Removal { probe_id, kind, at } = copy;
        let mut rows = self.rows.lock().unwrap();
        if let Some(r) = rows.get_mut(probe_id) {
            let slot = r.deleted_mut(kind);
            if slot.as_ref() == Some(at) {
                *slot = None;
            }
        }
        Ok(())
    }
    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(probe_id) {
            Some(r) if r.status == "lost" && r.late_seen_at.is_none() => {
                r.late_seen_at = Some(seen_at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    fn pending_before(&self, before: DateTime<Utc>) -> Result<Vec<PendingRow>, StoreError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|(_, r)| r.status == "pending" && r.sent_at < before)
            .map(|(id, r)| PendingRow {
                probe_id: id.clone(),
                scenario: r.scenario.clone(),
                sent_at: r.sent_at,
            })
            .collect())
    }
    fn resolve_pending(&self, done: &FinalResult<'_>) -> Result<bool, StoreError> {
        let result = done.result;
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(&result.probe_id) {
            Some(r) if r.status == "pending" => {
                r.status = result.status.as_str().into();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
