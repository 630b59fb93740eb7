//! The mailbox watch: the one task that owns a logged-in session ([`super::shared`] hands it
//! out) and watches it for every probe armed with it. It looks when any armed probe asks (its
//! runner's window after acceptance, a save seen in the logs, its backstop; the requests of all
//! probes merge into one look) and when IDLE pushes news, hands each verified probe (or bounce
//! quoting one) to the probe it belongs to, serves cleanup's scans and deletions one at a time,
//! and re-issues IDLE before servers drop it (Gmail ends an IDLE after ~29 minutes).
//!
//! Commands are charged per probe, so `imap_commands` stays bounded by the probe's own schedule
//! whatever the number of probes sharing the session: a probe pays for the looks it asked for
//! (the DONE that ended IDLE for it, the NOOP, SELECTs and FETCHes of the look, the IDLE issued
//! again), a resuming probe for its catch-up look, and a found probe for fetching its message
//! and for the push-driven look that found it. Logging in, selecting, refreshing IDLE and
//! push-driven looks that found nobody's probe are the session's own and charged to no probe.
//! Not here: when to look (the runner decides), opening and sharing the session (`shared`).
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::roster::Roster;
use super::shared::Request;
use super::{bounded, fetch, fetch_whole, internal, uid_set};
use super::{Arrival, FetchError, Mailbox, ScannedCopy, SeenProbe};
use super::{WaitNotes, MAX_FETCH};
use crate::core::outcome::DetectedBy;
use crate::core::probe::{self, Installation, Verdict};
use crate::core::verdict::CopyAt;

/// Longest single IDLE: re-issued well before the 29 minutes of RFC 2177, after which servers
/// (Gmail) drop the session.
pub const IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);

/// A look at the mailbox the runner asks the armed watch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Look {
    /// The first watched folder, IDLE left off: another look follows within the window.
    Window,
    /// Every watched folder, then IDLE again where it is used.
    Full,
}

/// Looks requested of an armed watch. A request made while another is pending merges with it
/// (the fuller look is kept), so a slow server never builds a queue of looks.
#[derive(Clone, Default)]
pub struct LookRequests {
    inner: Arc<LookInner>,
}

#[derive(Default)]
struct LookInner {
    pending: Mutex<Option<Look>>,
    notify: Notify,
    /// Also woken on every request: the task watching for several probes' requests.
    watcher: Option<Arc<Notify>>,
}

impl LookRequests {
    /// Requests that also wake `watcher` (the shared session's watch).
    pub(super) fn waking(watcher: Arc<Notify>) -> LookRequests {
        LookRequests {
            inner: Arc::new(LookInner {
                watcher: Some(watcher),
                ..LookInner::default()
            }),
        }
    }

    pub fn request(&self, look: Look) {
        if let Ok(mut p) = self.inner.pending.lock() {
            *p = (*p).max(Some(look));
        }
        self.inner.notify.notify_one();
        if let Some(w) = &self.inner.watcher {
            w.notify_one();
        }
    }

    /// The pending look, if any, without waiting.
    pub fn take(&self) -> Option<Look> {
        self.inner.pending.lock().ok().and_then(|mut p| p.take())
    }

    /// The next requested look.
    pub async fn next(&self) -> Look {
        loop {
            if let Some(l) = self.take() {
                return l;
            }
            // A request made before this await left a permit: no wake-up is lost.
            self.inner.notify.notified().await;
        }
    }
}

/// What one armed probe shares with the watch: its look requests, the commands charged to
/// it and the warnings about it.
#[derive(Default)]
pub(super) struct Charges {
    pub(super) commands: AtomicU32,
    pub(super) warnings: Mutex<Vec<String>>,
}

impl Charges {
    pub(super) fn add(&self, n: u32) {
        self.commands.fetch_add(n, Ordering::Relaxed);
    }

    fn warn(&self, w: String) {
        if let Ok(mut v) = self.warnings.lock() {
            v.push(w);
        }
    }

    /// The notes of a finished wait.
    pub(super) fn notes(&self) -> WaitNotes {
        WaitNotes {
            warnings: self
                .warnings
                .lock()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default(),
            commands: self.commands.load(Ordering::Relaxed),
        }
    }
}

/// The watch's state besides the session.
struct Watch {
    /// The session's members and their armed probes (read at each look).
    roster: Arc<Roster>,
    /// Woken by every armed probe's look request.
    wake: Arc<Notify>,
    /// IDLE is used (configured and offered).
    idle: bool,
    /// Within a window IDLE stays off: the next look is due in milliseconds.
    in_window: bool,
    /// Every command the session issued: a look's cost is the difference.
    issued: u32,
    /// Leave acknowledgements owed until the session is logged out.
    leaving: Vec<oneshot::Sender<()>>,
    /// Arrivals found by the current look, handed over once its commands are charged (a run
    /// reads its count as soon as its probe arrives).
    ready: Vec<(mpsc::Sender<Arrival>, Arrival)>,
    /// IDLE pushed news while a request ended it: looked at once the request is served.
    push_due: bool,
}

/// A probe (or a bounce quoting one) a look found, for the member it belongs to.
struct Hit {
    member: u64,
    uid: u32,
    bounce: bool,
    /// RFC822.SIZE as the look read it.
    size: Option<u32>,
}

/// A whole message and its INTERNALDATE.
type Whole = (Vec<u8>, Option<chrono::DateTime<chrono::Utc>>);

/// What ended one IDLE (or one wait without it).
enum Woke {
    /// The server pushed news.
    Push,
    /// An armed probe asked for a look.
    Looks,
    /// A request that needs the session.
    Request(Request),
    /// [`IDLE_REFRESH`] passed: IDLE is issued again.
    Refresh,
    /// A probe was armed while none was: IDLE starts where it is used.
    Armed,
}

/// How a handled request leaves the watch.
enum Then {
    Go,
    /// The last member left: log out.
    End,
}

/// Watch `mb` for every member until the last one leaves (logged out) or the session is lost
/// (every armed probe then sees its arrivals channel close).
pub(super) async fn run(
    mb: Mailbox,
    idle: bool,
    wake: Arc<Notify>,
    roster: Arc<Roster>,
    requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut w = Watch {
        roster,
        wake,
        idle,
        in_window: false,
        issued: 0,
        leaving: Vec::new(),
        ready: Vec::new(),
        push_due: false,
    };
    let lost = match w.serve(mb, requests).await {
        Ok(mb) => {
            tracing::debug!(commands = w.issued, "shared IMAP session logged out");
            mb.logout().await;
            None
        }
        Err(e) => Some(e),
    };
    // Nobody joins or arms any more; the armed probes' arrivals channels close with them.
    let armed = w.roster.close();
    if let Some(e) = lost {
        tracing::debug!(error = %e, "shared IMAP session lost");
        for a in &armed {
            a.want.charges.warn(e.to_string());
        }
    }
    drop(armed);
    for l in w.leaving.drain(..) {
        let _ = l.send(());
    }
}

impl Watch {
    async fn serve(
        &mut self,
        mut mb: Mailbox,
        mut requests: mpsc::UnboundedReceiver<Request>,
    ) -> Result<Mailbox, FetchError> {
        let mut due: VecDeque<Request> = VecDeque::new();
        loop {
            // Requests first, in order (joining and arming need none: the roster). A look
            // asked for meanwhile goes before a cleanup's request, which waits for no verdict.
            loop {
                while let Ok(r) = requests.try_recv() {
                    due.push_back(r);
                }
                let Some(r) = due.pop_front() else { break };
                let r = match r {
                    Request::Scan { key, reply } => {
                        self.look(&mut mb).await?;
                        self.scan_batch(&mut mb, &key, reply, &mut due).await;
                        continue;
                    }
                    Request::Delete { at, reply } => {
                        self.look(&mut mb).await?;
                        self.delete_batch(&mut mb, &at, reply, &mut due).await;
                        continue;
                    }
                    r => r,
                };
                if let Then::End = self.handle(&mut mb, r).await? {
                    return Ok(mb);
                }
            }
            if std::mem::take(&mut self.push_due) {
                self.push_look(&mut mb).await?;
            }
            // With no probe armed there is nothing to push: no IDLE until one is.
            let armed = self.roster.any_armed();
            let woke = if self.idle && !self.in_window && armed {
                let (m, woke) = self.idle_once(mb, &mut requests).await?;
                mb = m;
                woke
            } else {
                tokio::select! {
                    () = self.wake.notified() => Woke::Looks,
                    () = self.roster.armed_one.notified() => Woke::Armed,
                    r = requests.recv() => match r {
                        Some(r) => Woke::Request(r),
                        // Every handle is gone, the pool's too: nobody is left to serve.
                        None => return Ok(mb),
                    },
                }
            };
            match woke {
                Woke::Push => self.push_look(&mut mb).await?,
                Woke::Looks => self.look(&mut mb).await?,
                Woke::Request(r) => due.push_back(r),
                Woke::Refresh | Woke::Armed => {}
            }
        }
    }

    /// A cleanup's scan; every scan of the same installation waiting now gets the same one
    /// (the folders are read once).
    async fn scan_batch(
        &mut self,
        mb: &mut Mailbox,
        key: &Installation,
        reply: oneshot::Sender<(Vec<ScannedCopy>, Vec<String>)>,
        due: &mut VecDeque<Request>,
    ) {
        let mut replies = vec![reply];
        replies.extend(take_waiting(due, |r| match r {
            Request::Scan { key: k, reply } if same_installation(&k, key) => Ok(reply),
            other => Err(other),
        }));
        let scanned = mb.scan_probes(key).await;
        for r in replies {
            let _ = r.send(scanned.clone());
        }
    }

    /// A cleanup's deletion; those waiting now in the same folder, read under the same
    /// UIDVALIDITY, go in one STORE and one EXPUNGE (each names a verified copy).
    async fn delete_batch(
        &mut self,
        mb: &mut Mailbox,
        at: &CopyAt,
        reply: oneshot::Sender<Result<usize, FetchError>>,
        due: &mut VecDeque<Request>,
    ) {
        let mut batch = vec![(at.uid, reply)];
        batch.extend(take_waiting(due, |r| match r {
            Request::Delete { at: a, reply }
                if a.folder == at.folder && a.uid_validity == at.uid_validity =>
            {
                Ok((a.uid, reply))
            }
            other => Err(other),
        }));
        let uids: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
        let deleted = mb.delete(&at.folder, at.uid_validity, &uids).await;
        for (_, reply) in batch {
            let _ = reply.send(deleted.as_ref().map(|_| 1).map_err(Clone::clone));
        }
    }

    /// Serve a resuming probe's arming or the logout (scans and deletions are batched by the
    /// caller).
    async fn handle(&mut self, mb: &mut Mailbox, r: Request) -> Result<Then, FetchError> {
        match r {
            Request::Resume {
                member,
                armed,
                reply,
            } => {
                let resume = armed.want.resume.clone();
                let charges = Arc::clone(&armed.want.charges);
                if self.roster.arm(member, armed).is_err() {
                    // The session is ending: the dropped reply tells the member so.
                    return Ok(Then::Go);
                }
                // After a reconnection the probe may already be there: look from where this
                // probe's run started.
                let before = self.issued;
                self.check_all(mb, Some(&resume), DetectedBy::Poll, None)
                    .await?;
                charges.add(self.issued - before);
                self.deliver();
                let _ = reply.send(());
            }
            Request::LogOut { done } => {
                self.leaving.extend(done);
                return Ok(Then::End);
            }
            Request::Scan { .. } | Request::Delete { .. } => {}
        }
        Ok(Then::Go)
    }

    fn count(&mut self, n: u32) {
        self.issued += n;
    }

    /// The armed probes' pending look requests, merged into one look charged to each asker.
    async fn look(&mut self, mb: &mut Mailbox) -> Result<(), FetchError> {
        let mut askers = Vec::new();
        let mut look = None;
        for a in self.roster.lock().by_id.values().flatten() {
            if let Some(l) = a.want.looks.take() {
                askers.push(Arc::clone(&a.want.charges));
                look = look.max(Some(l));
            }
        }
        let Some(look) = look else { return Ok(()) };
        let before = self.issued;
        let was_idle = self.idle && !self.in_window;
        self.look_now(mb, look).await?;
        self.in_window = look == Look::Window;
        let again = self.idle && !self.in_window;
        let cost = self.issued - before + u32::from(was_idle) + u32::from(again);
        for a in askers {
            a.add(cost);
        }
        self.deliver();
        Ok(())
    }

    /// The look IDLE's news asked for, charged to the probes it found.
    async fn push_look(&mut self, mb: &mut Mailbox) -> Result<(), FetchError> {
        let before = self.issued;
        let found = self.check_new(mb, 0, None, DetectedBy::Idle, None).await?;
        // The DONE before and the IDLE after belong to this look too.
        let cost = self.issued - before + 1 + u32::from(self.idle);
        for a in found {
            a.add(cost);
        }
        self.deliver();
        Ok(())
    }

    /// Hand the arrivals found over, now that their looks are charged.
    fn deliver(&mut self) {
        for (to, arrival) in self.ready.drain(..) {
            let _ = to.try_send(arrival);
        }
    }

    /// One look: a NOOP, then a FETCH of what is new in the first folder (a window look) or in
    /// every folder (a full look). The NOOP makes the server take in what was saved since its
    /// last command (Dovecot's FETCH alone shows it only from the next command on); its EXISTS
    /// is not waited for: with several probes' looks, cleanups and IDLEs on one session, an
    /// EXISTS can be answered to another command and never reach the NOOP.
    async fn look_now(&mut self, mb: &mut Mailbox, look: Look) -> Result<(), FetchError> {
        let asked = Some(crate::clock::instant());
        self.select(mb, 0).await?;
        self.count(1);
        bounded("NOOP", mb.session.noop()).await?;
        // What the server announced meanwhile is read by this look's FETCH.
        while mb.session.unsolicited_responses.try_recv().is_ok() {}
        match look {
            Look::Window => {
                self.check_new(mb, 0, None, DetectedBy::Poll, asked).await?;
            }
            Look::Full => self.check_all(mb, None, DetectedBy::Poll, asked).await?,
        }
        Ok(())
    }

    /// Look at every watched folder, the first (IDLE's) first and left selected; from `from`
    /// where it names a folder.
    async fn check_all(
        &mut self,
        mb: &mut Mailbox,
        from: Option<&[(String, u32)]>,
        by: DetectedBy,
        asked: Option<Instant>,
    ) -> Result<(), FetchError> {
        for i in 0..mb.folders.len() {
            let start = from.and_then(|f| {
                f.iter()
                    .find(|(n, _)| *n == mb.folders[i].name)
                    .map(|(_, u)| *u)
            });
            let asked = if i == 0 { asked } else { None };
            self.check_new(mb, i, start, by, asked).await?;
        }
        self.select(mb, 0).await
    }

    /// SELECT folder `i` unless it is the selected one, counting the command.
    async fn select(&mut self, mb: &mut Mailbox, i: usize) -> Result<(), FetchError> {
        if mb.selected != i {
            self.count(1);
            mb.select(i).await?;
        }
        Ok(())
    }

    /// Look at the messages of folder `i` from `from` (default: the first not looked at yet)
    /// and hand every armed probe found there (or its bounce) to its run. Returns the charges
    /// of the probes found. `asked`: when the command that made the server take in the
    /// folder's news was sent (a look's NOOP); else the SELECT or FETCH made here.
    async fn check_new(
        &mut self,
        mb: &mut Mailbox,
        i: usize,
        from: Option<u32>,
        by: DetectedBy,
        asked: Option<Instant>,
    ) -> Result<Vec<Arc<Charges>>, FetchError> {
        let asked_instant = asked.unwrap_or_else(crate::clock::instant);
        self.select(mb, i).await?;
        let name = mb.folders[i].name.clone();
        let start = from.map_or(mb.folders[i].uid_next, |f| f.min(mb.folders[i].uid_next));
        self.count(1);
        let fetched = fetch(
            &mut mb.session,
            &format!("{start}:*"),
            "(UID RFC822.SIZE BODY.PEEK[HEADER])",
        )
        .await?;
        let detected_at = crate::clock::now();
        let detected_instant = crate::clock::instant();
        let mut hits: Vec<Hit> = Vec::new();
        let mut max_uid = start.saturating_sub(1);
        for m in &fetched {
            let Some(uid) = m.uid else { continue };
            // `N:*` returns the last message even when its UID is below N.
            if uid < start {
                continue;
            }
            max_uid = max_uid.max(uid);
            let Some(h) = m.header() else { continue };
            if let Some(member) = self.claimed_by(h, &name) {
                hits.push(Hit {
                    member,
                    uid,
                    bounce: false,
                    size: m.size,
                });
            } else if is_report(h) && m.size.unwrap_or(0) <= MAX_FETCH {
                let counted = AtomicU32::new(0);
                let whole = fetch_whole(&mut mb.session, uid, &counted).await?;
                self.count(counted.into_inner());
                if let Some(member) = whole.and_then(|(raw, _)| self.quoted_by(&raw)) {
                    hits.push(Hit {
                        member,
                        uid,
                        bounce: true,
                        size: m.size,
                    });
                }
            }
        }
        let f = &mut mb.folders[i];
        f.uid_next = f.uid_next.max(max_uid + 1);
        let mut bodies = self.fetch_probes(mb, &hits).await?;
        let mut found = Vec::new();
        for Hit {
            member,
            uid,
            bounce,
            ..
        } in hits
        {
            let Some(charges) = self.charges_of(member) else {
                continue;
            };
            let whole = match bodies.remove(&uid) {
                Some(b) => Some(b),
                None if bounce => fetch_whole(&mut mb.session, uid, &charges.commands).await?,
                None => None,
            };
            let Some((raw, idate)) = whole else {
                charges.warn(format!(
                    "{name}: probe UID {uid} vanished or is too large to fetch"
                ));
                continue;
            };
            let mut members = self.roster.lock();
            // Disarmed meanwhile (its wait ended): not handed over.
            let Some(Some(armed)) = members.by_id.get_mut(&member) else {
                continue;
            };
            let key = &armed.want.key;
            let tag = if bounce {
                key.quoted_probe(&raw)
            } else {
                key.verify(&raw).valid().cloned()
            };
            let Some(tag) = tag.filter(|t| t.id == armed.want.id) else {
                continue;
            };
            let Some(to) = armed.found.take() else {
                continue;
            };
            let arrival = Arrival {
                seen: SeenProbe {
                    folder: name.clone(),
                    uid,
                    tag,
                    internal_date: idate,
                    bounce,
                    configured_as: mb.folders[i].configured_as.clone(),
                },
                detected_at,
                detected_instant,
                asked_instant,
                detected_by: by,
                raw,
            };
            self.ready.push((to, arrival));
            found.push(charges);
        }
        Ok(found)
    }

    /// The whole messages of the probes a look found (bounces aside, fetched on their own), in
    /// one FETCH: with many probes on one session, one command rather than two per probe. The
    /// sizes come from the look's own FETCH; a message over [`MAX_FETCH`] is not fetched.
    /// Each probe fetched is charged the command.
    async fn fetch_probes(
        &mut self,
        mb: &mut Mailbox,
        hits: &[Hit],
    ) -> Result<BTreeMap<u32, Whole>, FetchError> {
        let mut uids = Vec::new();
        for h in hits {
            if h.bounce || h.size.is_none_or(|s| s > MAX_FETCH) {
                continue;
            }
            if let Some(charges) = self.charges_of(h.member) {
                charges.add(1);
                uids.push(h.uid);
            }
        }
        if uids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let got = fetch(
            &mut mb.session,
            &uid_set(&uids),
            "(UID INTERNALDATE BODY.PEEK[])",
        )
        .await?;
        Ok(got
            .iter()
            .filter_map(|m| {
                let uid = m.uid.filter(|u| uids.contains(u))?;
                Some((uid, (m.body()?.to_vec(), internal(m))))
            })
            .collect())
    }

    /// The armed, not yet found probe whose genuine tag these headers carry. A tag that claims
    /// to be one of them and fails verification is a warning of that probe's.
    fn claimed_by(&self, h: &[u8], folder: &str) -> Option<u64> {
        let id: Uuid = probe::header_value(h, probe::H_ID)?.trim().parse().ok()?;
        let members = self.roster.lock();
        let (member, armed) = members
            .by_id
            .iter()
            .find_map(|(m, a)| a.as_ref().filter(|a| a.want.id == id).map(|a| (*m, a)))?;
        armed.found.as_ref()?;
        match armed.want.key.verify(h) {
            Verdict::Valid(tag) if tag.id == id => Some(member),
            Verdict::Forged(why) => {
                armed.want.charges.warn(format!(
                    "{folder}: a message claims to be this probe but {why}; left untouched"
                ));
                None
            }
            _ => None,
        }
    }

    /// The charges of `member`'s armed probe, if it is armed.
    fn charges_of(&self, member: u64) -> Option<Arc<Charges>> {
        let members = self.roster.lock();
        let armed = members.by_id.get(&member)?.as_ref()?;
        Some(Arc::clone(&armed.want.charges))
    }

    /// The armed, not yet found probe this bounce quotes.
    fn quoted_by(&self, raw: &[u8]) -> Option<u64> {
        self.roster.lock().by_id.iter().find_map(|(m, a)| {
            let a = a.as_ref().filter(|a| a.found.is_some())?;
            a.want
                .key
                .quoted_probe(raw)
                .is_some_and(|t| t.id == a.want.id)
                .then_some(*m)
        })
    }

    /// One IDLE on the selected folder (the first), until news, a look request, a request
    /// that needs the session, or the refresh limit. Requests that need no command are served
    /// meanwhile.
    async fn idle_once(
        &mut self,
        mut mb: Mailbox,
        requests: &mut mpsc::UnboundedReceiver<Request>,
    ) -> Result<(Mailbox, Woke), FetchError> {
        let mut handle = mb.session.idle();
        self.count(1);
        bounded("IDLE", handle.init()).await?;
        let mut woke = None;
        let resp = {
            let (wait, interrupt) = handle.wait_with_timeout(IDLE_REFRESH);
            let mut interrupt = Some(interrupt);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    r = &mut wait => break r,
                    () = self.wake.notified(), if interrupt.is_some() => {
                        woke = Some(Woke::Looks);
                        // Dropping the stop source ends the wait with ManualInterrupt.
                        interrupt = None;
                    }
                    r = requests.recv(), if interrupt.is_some() => {
                        woke = r.map(Woke::Request);
                        interrupt = None;
                    }
                }
            }
        };
        self.count(1);
        mb.session = bounded("DONE", handle.done())
            .await
            .map_err(|e| FetchError::Protocol(format!("ending IDLE failed: {e}")))?;
        let woke = match resp {
            Ok(IdleResponse::NewData(_)) => {
                match woke {
                    // The push wins; a look asked for meanwhile is still due.
                    Some(Woke::Looks) => self.wake.notify_one(),
                    // A request must not be lost: it is served first, then the push's look.
                    Some(Woke::Request(r)) => {
                        self.push_due = true;
                        return Ok((mb, Woke::Request(r)));
                    }
                    _ => {}
                }
                Woke::Push
            }
            Ok(IdleResponse::Timeout) => Woke::Refresh,
            Ok(IdleResponse::ManualInterrupt) => woke.unwrap_or(Woke::Refresh),
            Err(e) => return Err(FetchError::Protocol(format!("IDLE failed: {e}"))),
        };
        Ok((mb, woke))
    }
}

/// Take out of `due` the requests `pick` accepts, keeping the others in order.
fn take_waiting<T>(
    due: &mut VecDeque<Request>,
    mut pick: impl FnMut(Request) -> Result<T, Request>,
) -> Vec<T> {
    let mut taken = Vec::new();
    let mut rest = VecDeque::with_capacity(due.len());
    for r in due.drain(..) {
        match pick(r) {
            Ok(t) => taken.push(t),
            Err(r) => rest.push_back(r),
        }
    }
    *due = rest;
    taken
}

/// Whether two installations sign and verify alike (one run's probes all share one).
fn same_installation(a: &Installation, b: &Installation) -> bool {
    a.domain == b.domain && a.key.id() == b.key.id()
}

fn is_report(h: &[u8]) -> bool {
    probe::header_value(h, "Content-Type")
        .is_some_and(|v| v.to_ascii_lowercase().contains("multipart/report"))
}

/// Why a wait ended.
#[derive(Debug)]
pub enum WaitEnd {
    Arrived(Box<Arrival>),
    Deadline,
    /// The caller's cancel future resolved (the logs showed a permanent failure).
    Cancelled,
    /// Every IMAP session dropped (server restart, network): reconnect and wait on.
    SessionsLost,
}

/// A wait's end from the arrivals channel: closed before the deadline means the session is gone.
pub(super) fn ended(a: Option<Arrival>, deadline: Instant) -> WaitEnd {
    match a {
        Some(a) => WaitEnd::Arrived(Box::new(a)),
        // A watch step that ran into the deadline ends the watch too: that is the deadline,
        // not a lost session to reconnect.
        None if crate::clock::instant() >= deadline => WaitEnd::Deadline,
        None => WaitEnd::SessionsLost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_merge_and_the_fuller_look_wins() {
        let looks = LookRequests::default();
        looks.request(Look::Window);
        looks.request(Look::Full);
        looks.request(Look::Window);
        assert_eq!(looks.next().await, Look::Full);
        assert_eq!(looks.take(), None, "merged into one");
        looks.request(Look::Window);
        assert_eq!(looks.next().await, Look::Window);
    }

    #[tokio::test]
    async fn a_request_wakes_the_shared_watch() {
        let wake = Arc::new(Notify::new());
        let looks = LookRequests::waking(Arc::clone(&wake));
        looks.request(Look::Window);
        tokio::time::timeout(Duration::from_secs(1), wake.notified())
            .await
            .expect("woken");
        assert_eq!(looks.take(), Some(Look::Window));
    }
}
