//! IMAP edge: open the receiver's mailbox, arm push detection (IDLE) on every watched folder
//! before the probe is sent, detect the probe by its tag, fetch it, find every message carrying
//! a genuine tag (with the UIDVALIDITY its UID was read under), and delete exactly the messages
//! the runner names, by UID, after re-selecting the folder and checking its UIDVALIDITY, with
//! `UID EXPUNGE` (UIDPLUS only) so nothing else that happens to be flagged `\Deleted` is ever
//! expunged.
//!
//! Messages are read with `BODY.PEEK` only: flowtest never changes a flag of a message that is
//! not its own verified probe. Every network step is bounded: up to the verdict by the probe's
//! deadline (and a per-command cap before that), afterwards by a short grace.
//! Not here: deciding what to delete (the runner does, from verified tags and the store);
//! opening the session (`connect`).
mod auth;
mod connect;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::Fetch;
use async_imap::Session;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

pub use connect::{login, login_as, ImapStream};

use crate::config::secret::Secret;
use crate::config::Receiver;
use crate::core::outcome::{AuthMechanism, DetectedBy};
use crate::core::probe::{self, Installation, ProbeTag, Verdict};
use crate::core::verdict::{CopyAt, CopyKind};
use crate::edge::bounded::Guarded;

/// Bound on each IMAP command (login, select, fetch, store), below the probe's deadline.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// After the verdict, how long the watch may take to end IDLE and hand its session back.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Re-issue IDLE well before the 29-minute limit of RFC 2177.
const IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);

/// While IDLE waits, look anyway this often: some servers (Gmail) withhold news during IDLE
/// until the client issues a command, so a push alone can miss a probe. Five poll intervals,
/// between 2 s and the IDLE refresh limit.
fn idle_backstop(poll: Duration) -> Duration {
    (poll * 5).clamp(Duration::from_secs(2), IDLE_REFRESH)
}
/// Largest message fetched whole (bounces are scanned for a quoted probe).
const MAX_FETCH: u32 = 4 * 1024 * 1024;

/// Sessions read through the guard, so a server cannot grow memory without bound.
type Guard = Guarded<ImapStream>;
type ImapSession = Session<Guard>;

/// Why the mailbox could not be read. `Auth` is what users would see as "password does not match".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    Connect(String),
    Tls(String),
    Auth(String),
    /// An OAuth 2 access token was refused (expired, revoked, wrong scope): the server's
    /// decoded error challenge says which. The provider's side, not a password.
    TokenRefused(String),
    Protocol(String),
    /// The server turned the session away (`* BYE` at greeting or at login): a service
    /// problem, not a credential problem.
    Refused(String),
    Timeout(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Connect(m) => write!(f, "IMAP connection failed: {m}"),
            FetchError::Tls(m) => write!(f, "IMAP TLS failed: {m}"),
            FetchError::Auth(m) => write!(f, "IMAP login failed: {m}"),
            FetchError::TokenRefused(m) => write!(f, "IMAP login failed, token refused: {m}"),
            FetchError::Protocol(m) => write!(f, "IMAP error: {m}"),
            FetchError::Refused(m) => write!(f, "IMAP server refused the session: {m}"),
            FetchError::Timeout(m) => write!(f, "IMAP timeout: {m}"),
        }
    }
}

fn proto(e: async_imap::error::Error) -> FetchError {
    FetchError::Protocol(server_text(&e))
}

/// The server's own words for a NO/BAD answer (async-imap's Display shows its Debug structure,
/// e.g. `no response: code: None, info: Some("[LIMIT] Maximum number of connections ...")`).
fn server_text(e: &async_imap::error::Error) -> String {
    let full = e.to_string();
    let kind = match e {
        async_imap::error::Error::Bad(_) => "BAD",
        async_imap::error::Error::No(_) => "NO",
        _ => return full,
    };
    if let Some(i) = full.find("Some(\"") {
        let rest = &full[i + "Some(\"".len()..];
        if let Some(end) = rest.find("\")") {
            return format!("{kind} {}", rest[..end].replace("\\\"", "\""));
        }
    }
    full
}

/// The end of one step: the per-command cap, or `deadline` when that comes first.
fn step_until(deadline: Instant) -> Instant {
    (crate::clock::instant() + COMMAND_TIMEOUT).min(deadline)
}

/// Run one step, failing with `Timeout` when it has not ended by `until`.
async fn within<T, E: Into<FetchError>>(
    what: &str,
    until: Instant,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FetchError> {
    let allowed = until.saturating_duration_since(crate::clock::instant());
    match tokio::time::timeout_at(until, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(FetchError::Timeout(format!(
            "{what}: no answer within {:.1} s",
            allowed.as_secs_f64()
        ))),
    }
}

/// Run one command under the per-command cap alone (steps after the verdict, whose whole is
/// bounded by the caller).
async fn bounded<T, E: Into<FetchError>>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FetchError> {
    within(what, crate::clock::instant() + COMMAND_TIMEOUT, fut).await
}

impl From<async_imap::error::Error> for FetchError {
    fn from(e: async_imap::error::Error) -> Self {
        proto(e)
    }
}

/// Resolved before any connection: TLS config and password.
#[derive(Clone)]
pub struct Prepared {
    pub tls: Arc<rustls::ClientConfig>,
    pub password: Secret,
}

/// Untrusted server text, safe to show.
fn safe(s: &str) -> String {
    crate::core::text::escape_control(s).into_owned()
}

/// A verified probe seen in a folder.
#[derive(Debug, Clone)]
pub struct SeenProbe {
    pub folder: String,
    pub uid: u32,
    pub tag: ProbeTag,
    pub internal_date: Option<DateTime<Utc>>,
    /// True when this message is a bounce quoting the probe rather than the probe itself.
    pub bounce: bool,
}

/// One watched folder and the first UID that is "new" for this run.
struct FolderState {
    name: String,
    uid_next: u32,
}

/// The receiver's mailbox: ONE session for every watched folder (servers limit connections per
/// user: Dovecot allows 10 per user and address by default, shared with the user's own clients).
/// IDLE watches the first folder (INBOX); the others are looked at every few poll intervals,
/// which is when IDLE's backstop look happens anyway.
pub struct Mailbox {
    session: ImapSession,
    /// How the session authenticated.
    auth_mechanism: AuthMechanism,
    folders: Vec<FolderState>,
    /// Index of the folder currently SELECTed.
    selected: usize,
    can_idle: bool,
    can_uidplus: bool,
    idle: bool,
    poll: Duration,
}

/// The probe (or its bounce) was found.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub seen: SeenProbe,
    pub detected_at: DateTime<Utc>,
    /// The same moment on the monotonic clock: latencies are measured from it.
    pub detected_instant: Instant,
    pub detected_by: DetectedBy,
    /// The whole message as fetched (`BODY.PEEK[]`).
    pub raw: Vec<u8>,
}

/// What else the wait noticed (forged tags, protocol trouble); reported as warnings.
#[derive(Debug, Default, Clone)]
pub struct WaitNotes {
    pub warnings: Vec<String>,
}

impl Mailbox {
    /// Log in and select every watched folder by `deadline`; remember where "new" starts.
    pub async fn open(
        r: &Receiver,
        prep: &Prepared,
        deadline: Instant,
    ) -> Result<Mailbox, FetchError> {
        Self::open_resuming(r, prep, &[], deadline).await
    }

    /// Where "new" starts in each folder: kept by the runner so that a reconnection after a
    /// lost session still looks at everything that arrived since the probe was sent.
    pub fn starts(&self) -> Vec<(String, u32)> {
        self.folders
            .iter()
            .map(|f| (f.name.clone(), f.uid_next))
            .collect()
    }

    /// Like [`Mailbox::open`], but "new" starts where `starts` says for the folders it names.
    pub async fn open_resuming(
        r: &Receiver,
        prep: &Prepared,
        starts: &[(String, u32)],
        deadline: Instant,
    ) -> Result<Mailbox, FetchError> {
        let (mut session, auth_mechanism) = login_as(r, prep, deadline).await?;
        let caps = within("CAPABILITY", step_until(deadline), session.capabilities()).await?;
        let can_idle = caps.has_str("IDLE");
        let can_uidplus = caps.has_str("UIDPLUS");
        let mut folders = Vec::with_capacity(r.folders.len());
        // Select each in turn (proves it exists and gives UIDNEXT); the first stays selected.
        for name in r.folders.iter().rev() {
            let mb = within("SELECT", step_until(deadline), session.select(name)).await?;
            let uid_next = match starts.iter().find(|(n, _)| n == name) {
                Some((_, u)) => *u,
                None => mb.uid_next.unwrap_or(1),
            };
            folders.push(FolderState {
                name: name.clone(),
                uid_next,
            });
        }
        folders.reverse();
        Ok(Mailbox {
            session,
            auth_mechanism,
            folders,
            selected: 0,
            can_idle,
            can_uidplus,
            idle: r.idle,
            poll: r.poll_interval,
        })
    }

    /// How the session authenticated.
    pub fn auth_mechanism(&self) -> AuthMechanism {
        self.auth_mechanism
    }

    /// Whether push detection will be used.
    pub fn uses_idle(&self) -> bool {
        self.idle && self.can_idle
    }

    async fn select(&mut self, i: usize) -> Result<(), FetchError> {
        if self.selected != i {
            let name = self.folders[i].name.clone();
            bounded("SELECT", self.session.select(&name)).await?;
            self.selected = i;
        }
        Ok(())
    }

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
        let (found_tx, found_rx) = tokio::sync::mpsc::channel::<Arrival>(4);
        let (armed_tx, armed_rx) = tokio::sync::oneshot::channel();
        let ctx = WatchCtx {
            key,
            want,
            stop: stop_rx,
            found: found_tx,
            poll: self.poll,
            idle: self.idle && self.can_idle,
            steps_end: deadline + STOP_GRACE,
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
            }),
            Err(e) => {
                task.abort();
                Err(e)
            }
        }
    }

    /// Every message carrying a genuine tag of this installation in the watched folders: the
    /// probes, the bounces quoting one, and tags transplanted into other messages, each with
    /// the folder's UIDVALIDITY as read right then. Uses `SEARCH HEADER` to find candidates,
    /// then verifies each tag from its own headers.
    pub async fn scan_probes(&mut self, key: &Installation) -> (Vec<ScannedCopy>, Vec<String>) {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for i in 0..self.folders.len() {
            let name = self.folders[i].name.clone();
            let scanned = match self.reselect(i).await {
                Ok(uid_validity) => scan_folder(&mut self.session, &name, uid_validity, key).await,
                Err(e) => Err(e),
            };
            match scanned {
                Ok(mut v) => out.append(&mut v),
                Err(e) => warnings.push(format!("scanning {name}: {e}")),
            }
        }
        (out, warnings)
    }

    /// SELECT folder `i` afresh (even when it is selected) and return its UIDVALIDITY.
    async fn reselect(&mut self, i: usize) -> Result<u32, FetchError> {
        let name = self.folders[i].name.clone();
        let mb = bounded("SELECT", self.session.select(&name)).await?;
        self.selected = i;
        mb.uid_validity.ok_or_else(|| {
            FetchError::Protocol(format!(
                "{name}: the server sent no UIDVALIDITY; its probes are left in place"
            ))
        })
    }

    /// Delete these UIDs from `folder`, read under `uid_validity`. Only ever called with
    /// verified probes (or bounces that quote one). The folder is selected afresh and its
    /// UIDVALIDITY compared first: when it changed, the UIDs may name other messages now, and
    /// nothing is deleted. Requires UIDPLUS so that only these UIDs are expunged.
    pub async fn delete(
        &mut self,
        folder: &str,
        uid_validity: u32,
        uids: &[u32],
    ) -> Result<usize, FetchError> {
        if uids.is_empty() {
            return Ok(0);
        }
        let Some(i) = self.folders.iter().position(|f| f.name == folder) else {
            return Err(FetchError::Protocol(format!(
                "folder {folder} is not watched"
            )));
        };
        if !self.can_uidplus {
            return Err(FetchError::Protocol(
                "server lacks UIDPLUS: probes left in place rather than risk expunging other mail"
                    .into(),
            ));
        }
        let now_validity = self.reselect(i).await?;
        if now_validity != uid_validity {
            return Err(FetchError::Protocol(format!(
                "UIDVALIDITY of {folder} changed ({uid_validity} when scanned, {now_validity} \
                 now): its UIDs may name other messages, nothing deleted"
            )));
        }
        let set = uid_set(uids);
        let session = &mut self.session;
        bounded("UID STORE", async {
            let s = session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await?;
            s.try_collect::<Vec<_>>().await
        })
        .await?;
        // The EXPUNGE responses may include messages other sessions removed meanwhile, so the
        // count is what we asked for, once the server said OK.
        bounded("UID EXPUNGE", async {
            let s = session.uid_expunge(&set).await?;
            s.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(uids.len())
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.session.logout()).await;
    }
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A message carrying a genuine tag of this installation, where it was seen.
#[derive(Debug, Clone)]
pub struct ScannedCopy {
    pub at: CopyAt,
    pub kind: CopyKind,
    pub tag: ProbeTag,
    pub internal_date: Option<DateTime<Utc>>,
}

async fn scan_folder(
    session: &mut ImapSession,
    folder: &str,
    uid_validity: u32,
    key: &Installation,
) -> Result<Vec<ScannedCopy>, FetchError> {
    let at = |uid| CopyAt {
        folder: folder.to_string(),
        uid_validity,
        uid,
    };
    let mut uids: Vec<u32> = bounded(
        "UID SEARCH",
        session.uid_search("HEADER X-Flowtest-Id \"\""),
    )
    .await?
    .into_iter()
    .collect();
    let bounces: Vec<u32> = bounded(
        "UID SEARCH",
        session.uid_search("HEADER Content-Type \"multipart/report\" BODY \"X-Flowtest-Id\""),
    )
    .await
    .map(|s| s.into_iter().collect())
    .unwrap_or_default();
    uids.sort_unstable();
    let mut out = Vec::new();
    if !uids.is_empty() {
        let fetched = fetch(
            session,
            &uid_set(&uids),
            "(UID INTERNALDATE BODY.PEEK[HEADER])",
        )
        .await?;
        for m in fetched {
            let (Some(uid), Some(h)) = (m.uid, m.header()) else {
                continue;
            };
            let (kind, tag) = match key.verify(h) {
                Verdict::Valid(tag) => (CopyKind::Probe, tag),
                Verdict::Transplanted(tag) => (CopyKind::Transplanted, tag),
                Verdict::Forged(_) | Verdict::NotAProbe => continue,
            };
            out.push(ScannedCopy {
                at: at(uid),
                kind,
                tag,
                internal_date: internal(&m),
            });
        }
    }
    for uid in bounces {
        if uids.contains(&uid) {
            continue;
        }
        if let Some((raw, idate)) = fetch_whole(session, uid).await? {
            if let Some(tag) = key.quoted_probe(&raw) {
                out.push(ScannedCopy {
                    at: at(uid),
                    kind: CopyKind::Bounce,
                    tag,
                    internal_date: idate,
                });
            }
        }
    }
    Ok(out)
}

fn internal(m: &Fetch) -> Option<DateTime<Utc>> {
    m.internal_date().map(|d| d.with_timezone(&Utc))
}

async fn fetch(
    session: &mut ImapSession,
    set: &str,
    query: &str,
) -> Result<Vec<Fetch>, FetchError> {
    bounded("UID FETCH", async {
        let s = session.uid_fetch(set, query).await?;
        s.try_collect::<Vec<_>>().await
    })
    .await
}

/// The whole message by UID (size-capped), with its INTERNALDATE.
async fn fetch_whole(
    session: &mut ImapSession,
    uid: u32,
) -> Result<Option<(Vec<u8>, Option<DateTime<Utc>>)>, FetchError> {
    let sizes = fetch(session, &uid.to_string(), "(UID RFC822.SIZE)").await?;
    let Some(size) = sizes
        .iter()
        .find(|m| m.uid == Some(uid))
        .and_then(|m| m.size)
    else {
        return Ok(None);
    };
    if size > MAX_FETCH {
        return Ok(None);
    }
    let got = fetch(session, &uid.to_string(), "(UID INTERNALDATE BODY.PEEK[])").await?;
    Ok(got
        .iter()
        .find(|m| m.uid == Some(uid))
        .and_then(|m| m.body().map(|b| (b.to_vec(), internal(m)))))
}

struct WatchCtx {
    key: Installation,
    want: Uuid,
    stop: watch::Receiver<bool>,
    found: tokio::sync::mpsc::Sender<Arrival>,
    poll: Duration,
    idle: bool,
    /// Every step of the watch ends by then: the probe's deadline plus [`STOP_GRACE`].
    steps_end: Instant,
}

impl WatchCtx {
    /// The end of the watch's next step.
    fn step_until(&self) -> Instant {
        step_until(self.steps_end)
    }
}

/// Look at messages with UID >= uid_next in folder `i`; report ours when it is there.
async fn check_new(
    mb: &mut Mailbox,
    i: usize,
    ctx: &WatchCtx,
    by: DetectedBy,
    notes: &mut WaitNotes,
) -> Result<bool, FetchError> {
    mb.select(i).await?;
    let detected_at = crate::clock::now();
    let detected_instant = crate::clock::instant();
    let name = mb.folders[i].name.clone();
    let start = mb.folders[i].uid_next;
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
                if let Some((raw, _)) = fetch_whole(&mut mb.session, uid).await? {
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
    let Some((raw, idate)) = fetch_whole(&mut mb.session, uid).await? else {
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
        },
        detected_at,
        detected_instant,
        detected_by: by,
        raw,
    };
    let _ = ctx.found.send(arrival).await;
    Ok(true)
}

/// Look at every watched folder (the IDLE one last, so it stays selected).
async fn check_all(
    mb: &mut Mailbox,
    ctx: &WatchCtx,
    by: DetectedBy,
    notes: &mut WaitNotes,
) -> Result<bool, FetchError> {
    for i in (0..mb.folders.len()).rev() {
        if check_new(mb, i, ctx, by, notes).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_report(h: &[u8]) -> bool {
    probe::header_value(h, "Content-Type")
        .is_some_and(|v| v.to_ascii_lowercase().contains("multipart/report"))
}

/// The watch loop: IDLE on the first folder (or poll) until our probe shows up or we are told
/// to stop; every few poll intervals, a look at every folder. Returns the mailbox (its session
/// reusable for cleanup) unless the session was lost.
async fn watch_mailbox(
    mut mb: Mailbox,
    mut ctx: WatchCtx,
    armed: tokio::sync::oneshot::Sender<Result<(), FetchError>>,
) -> (Option<Mailbox>, WaitNotes) {
    let mut notes = WaitNotes::default();
    let mut armed = Some(armed);
    // Look once before waiting: after a reconnection the probe may already be there.
    let first = within(
        "looking for the probe",
        ctx.step_until(),
        check_all(&mut mb, &ctx, DetectedBy::Poll, &mut notes),
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
    loop {
        if *ctx.stop.borrow() {
            return (Some(mb), notes);
        }
        let by = if ctx.idle {
            let mut handle = mb.session.idle();
            if let Err(e) = within("IDLE", ctx.step_until(), handle.init()).await {
                if let Some(a) = armed.take() {
                    let _ = a.send(Err(e));
                }
                return (None, notes);
            }
            if let Some(a) = armed.take() {
                let _ = a.send(Ok(()));
            }
            let resp = {
                let (wait, interrupt) = handle.wait_with_timeout(idle_backstop(ctx.poll));
                let mut interrupt = Some(interrupt);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        r = &mut wait => break r,
                        changed = ctx.stop.changed(), if interrupt.is_some() => {
                            if changed.is_err() || *ctx.stop.borrow() {
                                // Dropping the stop source ends the wait with ManualInterrupt.
                                interrupt = None;
                            }
                        }
                    }
                }
            };
            mb.session = match within("DONE", ctx.step_until(), handle.done()).await {
                Ok(s) => s,
                Err(e) => {
                    notes.warnings.push(format!("ending IDLE failed: {e}"));
                    return (None, notes);
                }
            };
            match resp {
                // A push concerns the IDLE folder: look there first, as a push.
                Ok(IdleResponse::NewData(_)) => {
                    let look = within(
                        "looking for the probe",
                        ctx.step_until(),
                        check_new(&mut mb, 0, &ctx, DetectedBy::Idle, &mut notes),
                    )
                    .await;
                    match look {
                        Ok(true) => return (Some(mb), notes),
                        Ok(false) => continue,
                        Err(e) => {
                            notes.warnings.push(e.to_string());
                            return (None, notes);
                        }
                    }
                }
                // The backstop: a look at every folder.
                Ok(IdleResponse::Timeout) => DetectedBy::Poll,
                Ok(IdleResponse::ManualInterrupt) => return (Some(mb), notes),
                Err(e) => {
                    notes.warnings.push(format!("IDLE failed: {e}"));
                    return (None, notes);
                }
            }
        } else {
            if let Some(a) = armed.take() {
                let _ = a.send(Ok(()));
            }
            tokio::select! {
                _ = tokio::time::sleep(ctx.poll) => {}
                changed = ctx.stop.changed() => {
                    if changed.is_err() {
                        // The runner is gone: nobody will read a result.
                        return (Some(mb), notes);
                    }
                    continue;
                }
            }
            if let Err(e) = within("NOOP", ctx.step_until(), mb.session.noop()).await {
                notes.warnings.push(e.to_string());
                return (None, notes);
            }
            DetectedBy::Poll
        };
        let look = within(
            "looking for the probe",
            ctx.step_until(),
            check_all(&mut mb, &ctx, by, &mut notes),
        )
        .await;
        match look {
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
    found: tokio::sync::mpsc::Receiver<Arrival>,
}

impl Armed {
    /// Wait for the probe until `deadline`, or until `cancel` resolves (fail-fast from logs).
    /// Returns the mailbox (for cleanup) when the session survived; the watch gets
    /// [`STOP_GRACE`] to hand it back.
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
        match tokio::time::timeout(STOP_GRACE, &mut self.task).await {
            Ok(Ok((mb, notes))) => (end, mb, notes),
            _ => {
                self.task.abort();
                let notes = WaitNotes {
                    warnings: vec!["the IMAP watch did not stop in time".into()],
                };
                (end, None, notes)
            }
        }
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

    #[test]
    fn server_words_are_extracted_from_no_and_bad() {
        let e = async_imap::error::Error::No(
            "code: None, info: Some(\"[LIMIT] Maximum number of connections from user+IP exceeded\")".into(),
        );
        assert_eq!(
            server_text(&e),
            "NO [LIMIT] Maximum number of connections from user+IP exceeded"
        );
        let e = async_imap::error::Error::Bad("nothing structured".into());
        assert!(server_text(&e).contains("nothing structured"));
    }

    #[test]
    fn uid_sets_and_backstop() {
        assert_eq!(uid_set(&[3, 7, 9]), "3,7,9");
        assert_eq!(
            idle_backstop(Duration::from_millis(100)),
            Duration::from_secs(2)
        );
        assert_eq!(
            idle_backstop(Duration::from_secs(2)),
            Duration::from_secs(10)
        );
        assert_eq!(idle_backstop(Duration::from_secs(3600)), IDLE_REFRESH);
    }
}
