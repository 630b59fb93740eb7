//! The mailbox watch, armed before the probe is sent: it looks for the probe when the runner
//! asks (its window after acceptance, a save seen in the logs, its backstop) and when IDLE
//! pushes news, counts every IMAP command it issues, and re-issues IDLE before servers drop it
//! (Gmail ends an IDLE after ~29 minutes). Not here: when to look (the runner decides), opening
//! the session (`Mailbox::open`).
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::{fetch, fetch_whole, step_until, within, Arrival, FetchError, Mailbox, SeenProbe};
use super::{WaitNotes, MAX_FETCH};
use crate::core::outcome::DetectedBy;
use crate::core::probe::{self, Installation, Verdict};

/// After the verdict, how long the watch may take to end IDLE and hand its session back.
const STOP_GRACE: Duration = Duration::from_secs(2);
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
    notify: tokio::sync::Notify,
}

impl LookRequests {
    pub fn request(&self, look: Look) {
        if let Ok(mut p) = self.inner.pending.lock() {
            *p = (*p).max(Some(look));
        }
        self.inner.notify.notify_one();
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

struct WatchCtx {
    key: Installation,
    want: Uuid,
    stop: watch::Receiver<bool>,
    found: mpsc::Sender<Arrival>,
    looks: LookRequests,
    idle: bool,
    /// Every step of the watch ends by then: the probe's deadline plus [`STOP_GRACE`].
    steps_end: Instant,
    commands: Arc<AtomicU32>,
}

impl WatchCtx {
    /// The end of the watch's next step.
    fn step_until(&self) -> Instant {
        step_until(self.steps_end)
    }

    fn count(&self, n: u32) {
        self.commands.fetch_add(n, Ordering::Relaxed);
    }
}

impl Mailbox {
    /// Arm detection and return once it is armed (IDLE accepted, or poll mode ready), by
    /// `deadline`, the probe's: the watch's own steps end by then plus [`STOP_GRACE`]. Send the
    /// probe only after this returns.
    pub async fn arm(
        self,
        key: Installation,
        want: Uuid,
        deadline: Instant,
    ) -> Result<Armed, FetchError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (found_tx, found_rx) = mpsc::channel::<Arrival>(4);
        let (armed_tx, armed_rx) = oneshot::channel();
        let looks = LookRequests::default();
        let commands = Arc::new(AtomicU32::new(0));
        let ctx = WatchCtx {
            key,
            want,
            stop: stop_rx,
            found: found_tx,
            looks: looks.clone(),
            idle: self.idle && self.can_idle,
            steps_end: deadline + STOP_GRACE,
            commands: Arc::clone(&commands),
        };
        let task = tokio::spawn(watch_mailbox(self, ctx, armed_tx));
        let armed = within("arming detection", step_until(deadline), async {
            armed_rx
                .await
                .unwrap_or_else(|_| Err(FetchError::Protocol("the IMAP watch ended".into())))
        })
        .await;
        match armed {
            Ok(()) => Ok(Armed {
                task,
                stop: stop_tx,
                found: found_rx,
                looks,
                commands,
            }),
            Err(e) => {
                task.abort();
                Err(e)
            }
        }
    }
}

/// Look at messages with UID >= uid_next in folder `i`; report ours when it is there. `asked`:
/// when the command whose answer brought the folder's news was sent (a look's NOOP); a SELECT
/// made here is that command.
async fn check_new(
    mb: &mut Mailbox,
    i: usize,
    ctx: &WatchCtx,
    by: DetectedBy,
    asked: Option<Instant>,
    notes: &mut WaitNotes,
) -> Result<bool, FetchError> {
    let mut asked = asked;
    if mb.selected != i {
        ctx.count(1);
        asked = Some(crate::clock::instant());
    }
    mb.select(i).await?;
    let detected_at = crate::clock::now();
    let detected_instant = crate::clock::instant();
    let name = mb.folders[i].name.clone();
    let configured_as = mb.folders[i].configured_as.clone();
    let start = mb.folders[i].uid_next;
    ctx.count(1);
    let fetched = fetch(
        &mut mb.session,
        &format!("{start}:*"),
        "(UID RFC822.SIZE BODY.PEEK[HEADER])",
    )
    .await?;
    let mut hit: Option<(u32, bool)> = None;
    let mut max_uid = start.saturating_sub(1);
    for m in &fetched {
        let Some(uid) = m.uid else { continue };
        // `N:*` returns the last message even when its UID is below N.
        if uid < start {
            continue;
        }
        max_uid = max_uid.max(uid);
        let Some(h) = m.header() else { continue };
        match ctx.key.verify(h) {
            Verdict::Valid(tag) if tag.id == ctx.want => hit = hit.or(Some((uid, false))),
            Verdict::Forged(why)
                if probe::header_value(h, probe::H_ID).as_deref()
                    == Some(&ctx.want.to_string()) =>
            {
                notes.warnings.push(format!(
                    "{name}: a message claims to be this probe but {why}; left untouched"
                ));
            }
            Verdict::NotAProbe if is_report(h) && m.size.unwrap_or(0) <= MAX_FETCH => {
                if let Some((raw, _)) = fetch_whole(&mut mb.session, uid, &ctx.commands).await? {
                    if ctx.key.quoted_probe(&raw).is_some_and(|t| t.id == ctx.want) {
                        hit = hit.or(Some((uid, true)));
                    }
                }
            }
            _ => {}
        }
    }
    mb.folders[i].uid_next = max_uid + 1;
    let Some((uid, bounce)) = hit else {
        return Ok(false);
    };
    let Some((raw, idate)) = fetch_whole(&mut mb.session, uid, &ctx.commands).await? else {
        notes.warnings.push(format!(
            "{name}: probe UID {uid} vanished or is too large to fetch"
        ));
        return Ok(false);
    };
    let tag = if bounce {
        ctx.key.quoted_probe(&raw)
    } else {
        ctx.key.verify(&raw).valid().cloned()
    };
    let Some(tag) = tag else { return Ok(false) };
    let arrival = Arrival {
        seen: SeenProbe {
            folder: name,
            uid,
            tag,
            internal_date: idate,
            bounce,
            configured_as,
        },
        detected_at,
        detected_instant,
        asked_instant: asked.unwrap_or(detected_instant),
        detected_by: by,
        raw,
    };
    let _ = ctx.found.send(arrival).await;
    Ok(true)
}

/// Look at every watched folder, the first (IDLE's) first and left selected.
async fn check_all(
    mb: &mut Mailbox,
    ctx: &WatchCtx,
    by: DetectedBy,
    asked: Option<Instant>,
    notes: &mut WaitNotes,
) -> Result<bool, FetchError> {
    for i in 0..mb.folders.len() {
        let asked = if i == 0 { asked } else { None };
        if check_new(mb, i, ctx, by, asked, notes).await? {
            return Ok(true);
        }
    }
    if mb.selected != 0 {
        ctx.count(1);
        mb.select(0).await?;
    }
    Ok(false)
}

/// NOOP on the selected folder: the server reports what arrived there since (EXISTS). True
/// when it (or an earlier command) reported new messages.
async fn noop_news(mb: &mut Mailbox, ctx: &WatchCtx) -> Result<bool, FetchError> {
    ctx.count(1);
    within("NOOP", ctx.step_until(), mb.session.noop()).await?;
    let mut news = false;
    while let Ok(r) = mb.session.unsolicited_responses.try_recv() {
        news |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    Ok(news)
}

/// One requested look. A window look costs one NOOP when nothing came; a full look re-reads
/// every folder whatever the NOOP said.
async fn look_now(
    mb: &mut Mailbox,
    ctx: &WatchCtx,
    look: Look,
    notes: &mut WaitNotes,
) -> Result<bool, FetchError> {
    if mb.selected != 0 {
        ctx.count(1);
        mb.select(0).await?;
    }
    let asked = Some(crate::clock::instant());
    let news = noop_news(mb, ctx).await?;
    match look {
        Look::Window if !news => Ok(false),
        Look::Window => check_new(mb, 0, ctx, DetectedBy::Poll, asked, notes).await,
        Look::Full => check_all(mb, ctx, DetectedBy::Poll, asked, notes).await,
    }
}

fn is_report(h: &[u8]) -> bool {
    probe::header_value(h, "Content-Type")
        .is_some_and(|v| v.to_ascii_lowercase().contains("multipart/report"))
}

/// What ended one IDLE.
enum Woke {
    /// The server pushed news.
    Push,
    Look(Look),
    Stop,
    /// [`IDLE_REFRESH`] passed: IDLE is issued again.
    Refresh,
}

/// One IDLE on the selected folder (the first), until news, a look request, a stop, or the
/// refresh limit. Reports "armed" once the server accepted it.
async fn idle_once(
    mut mb: Mailbox,
    ctx: &mut WatchCtx,
    armed: &mut Option<oneshot::Sender<Result<(), FetchError>>>,
) -> Result<(Mailbox, Woke), FetchError> {
    let mut handle = mb.session.idle();
    ctx.count(1);
    within("IDLE", ctx.step_until(), handle.init()).await?;
    if let Some(a) = armed.take() {
        let _ = a.send(Ok(()));
    }
    let mut woke = None;
    let resp = {
        let (wait, interrupt) = handle.wait_with_timeout(IDLE_REFRESH);
        let mut interrupt = Some(interrupt);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                r = &mut wait => break r,
                changed = ctx.stop.changed(), if interrupt.is_some() => {
                    if changed.is_err() || *ctx.stop.borrow() {
                        // Dropping the stop source ends the wait with ManualInterrupt.
                        woke = Some(Woke::Stop);
                        interrupt = None;
                    }
                }
                l = ctx.looks.next(), if interrupt.is_some() => {
                    woke = Some(Woke::Look(l));
                    interrupt = None;
                }
            }
        }
    };
    ctx.count(1);
    mb.session = within("DONE", ctx.step_until(), handle.done())
        .await
        .map_err(|e| FetchError::Protocol(format!("ending IDLE failed: {e}")))?;
    let woke = match resp {
        Ok(IdleResponse::NewData(_)) => {
            // The push wins; a look asked for meanwhile is still due.
            if let Some(Woke::Look(l)) = woke {
                ctx.looks.request(l);
            }
            Woke::Push
        }
        Ok(IdleResponse::Timeout) => Woke::Refresh,
        Ok(IdleResponse::ManualInterrupt) => woke.unwrap_or(Woke::Stop),
        Err(e) => return Err(FetchError::Protocol(format!("IDLE failed: {e}"))),
    };
    Ok((mb, woke))
}

/// The watch loop: IDLE on the first folder (when used and no window look is due) until our
/// probe shows up or we are told to stop; looks when the runner asks. Returns the mailbox (its
/// session reusable for cleanup) unless the session was lost.
async fn watch_mailbox(
    mut mb: Mailbox,
    mut ctx: WatchCtx,
    armed: oneshot::Sender<Result<(), FetchError>>,
) -> (Option<Mailbox>, WaitNotes) {
    let mut notes = WaitNotes::default();
    let mut armed = Some(armed);
    // Look once before waiting: after a reconnection the probe may already be there.
    let first = within(
        "looking for the probe",
        ctx.step_until(),
        check_all(&mut mb, &ctx, DetectedBy::Poll, None, &mut notes),
    )
    .await;
    match first {
        Ok(true) => {
            if let Some(a) = armed.take() {
                let _ = a.send(Ok(()));
            }
            return (Some(mb), notes);
        }
        Ok(false) => {}
        Err(e) => {
            if let Some(a) = armed.take() {
                let _ = a.send(Err(e));
            }
            return (None, notes);
        }
    }
    // Within the runner's window IDLE stays off: the next look is due in milliseconds.
    let mut in_window = false;
    loop {
        if *ctx.stop.borrow() {
            return (Some(mb), notes);
        }
        let look = if ctx.idle && !in_window {
            let woke = match idle_once(mb, &mut ctx, &mut armed).await {
                Ok((m, woke)) => {
                    mb = m;
                    woke
                }
                Err(e) => {
                    match armed.take() {
                        Some(a) => {
                            let _ = a.send(Err(e));
                        }
                        None => notes.warnings.push(e.to_string()),
                    }
                    return (None, notes);
                }
            };
            match woke {
                // After a push (and DONE) the folder is up to date: no NOOP needed.
                Woke::Push => None,
                Woke::Look(l) => Some(l),
                Woke::Refresh => continue,
                Woke::Stop => return (Some(mb), notes),
            }
        } else {
            if let Some(a) = armed.take() {
                let _ = a.send(Ok(()));
            }
            tokio::select! {
                l = ctx.looks.next() => Some(l),
                changed = ctx.stop.changed() => {
                    if changed.is_err() {
                        // The runner is gone: nobody will read a result.
                        return (Some(mb), notes);
                    }
                    continue;
                }
            }
        };
        in_window = look == Some(Look::Window);
        let look_result = within("looking for the probe", ctx.step_until(), async {
            match look {
                Some(l) => look_now(&mut mb, &ctx, l, &mut notes).await,
                None => check_new(&mut mb, 0, &ctx, DetectedBy::Idle, None, &mut notes).await,
            }
        })
        .await;
        match look_result {
            Ok(true) => return (Some(mb), notes),
            Ok(false) => {}
            Err(e) => {
                notes.warnings.push(e.to_string());
                return (None, notes);
            }
        }
    }
}

/// Detection armed and running; the probe may now be sent.
pub struct Armed {
    task: tokio::task::JoinHandle<(Option<Mailbox>, WaitNotes)>,
    stop: watch::Sender<bool>,
    found: mpsc::Receiver<Arrival>,
    looks: LookRequests,
    commands: Arc<AtomicU32>,
}

impl Armed {
    /// Where to ask the watch for a look.
    pub fn looks(&self) -> LookRequests {
        self.looks.clone()
    }

    /// Wait for the probe until `deadline`, or until `cancel` resolves (fail-fast from logs).
    /// Returns the mailbox (for cleanup) when the session survived; the watch gets
    /// [`STOP_GRACE`] to hand it back. The notes carry the commands the watch issued.
    pub async fn wait(
        mut self,
        deadline: Instant,
        cancel: impl std::future::Future<Output = ()>,
    ) -> (WaitEnd, Option<Mailbox>, WaitNotes) {
        tokio::pin!(cancel);
        let end = tokio::select! {
            a = self.found.recv() => match a {
                Some(a) => WaitEnd::Arrived(Box::new(a)),
                // A watch step that ran into the deadline ends the watch too: that is the
                // deadline, not a lost session to reconnect.
                None if crate::clock::instant() >= deadline => WaitEnd::Deadline,
                // The watch ended without finding it: the session is gone.
                None => WaitEnd::SessionsLost,
            },
            _ = tokio::time::sleep_until(deadline) => WaitEnd::Deadline,
            _ = &mut cancel => WaitEnd::Cancelled,
        };
        let _ = self.stop.send(true);
        let (mb, mut notes) = match tokio::time::timeout(STOP_GRACE, &mut self.task).await {
            Ok(Ok((mb, notes))) => (mb, notes),
            _ => {
                self.task.abort();
                let notes = WaitNotes {
                    warnings: vec!["the IMAP watch did not stop in time".into()],
                    commands: 0,
                };
                (None, notes)
            }
        };
        notes.commands = self.commands.load(Ordering::Relaxed);
        (end, mb, notes)
    }
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
}
