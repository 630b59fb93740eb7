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
mod roster;
mod shared;
mod special_use;
mod watch;

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_imap::types::Fetch;
use async_imap::Session;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tokio::time::Instant;

pub use connect::{login, login_as, ImapStream};
pub use shared::{Member, SharedArmed, SharedMailbox};
pub use watch::{Look, LookRequests, WaitEnd, IDLE_REFRESH};

use crate::config::secret::Secret;
use crate::config::Receiver;
use crate::core::outcome::{AuthMechanism, DetectedBy};
use crate::core::probe::{Installation, ProbeTag, Verdict};
use crate::core::verdict::{CopyAt, CopyKind};
use crate::edge::bounded::Guarded;
use tokio::io::BufWriter;

/// Bound on each IMAP command (login, select, fetch, store), below the probe's deadline.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message fetched whole (bounces are scanned for a quoted probe).
const MAX_FETCH: u32 = 4 * 1024 * 1024;

/// Sessions read through the guard, so a server cannot grow memory without bound, and write
/// through a buffer that async-imap flushes after each command: a command leaves in one write
/// (one TLS record, one TCP segment) instead of one per piece (tag, space, command, CRLF).
type Guard = Guarded<BufWriter<ImapStream>>;
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
    /// The folder's configured entry when the server's name differs (`special-use:junk`).
    pub configured_as: Option<String>,
}

/// One watched folder and the first UID that is "new" for this run.
struct FolderState {
    /// The server's name.
    name: String,
    /// The configured entry, when the server's name differs (`special-use:junk`).
    configured_as: Option<String>,
    uid_next: u32,
}

/// The server's names for the configured folders: LIST (one command) only when an entry names
/// a folder by its special use, or on Gmail (`special_use`).
async fn folder_names(
    session: &mut ImapSession,
    r: &Receiver,
    gmail: bool,
    deadline: Instant,
) -> Result<Vec<String>, FetchError> {
    if !special_use::needs_list(&r.folders, gmail) {
        return Ok(r.folders.clone());
    }
    let listed = within("LIST", step_until(deadline), async {
        let names = session.list(Some(""), Some("*")).await?;
        names.try_collect::<Vec<_>>().await
    })
    .await?;
    let listed: Vec<special_use::Listed> = listed
        .iter()
        .map(|n| special_use::Listed {
            name: n.name().to_string(),
            uses: n
                .attributes()
                .iter()
                .filter_map(special_use::Use::of)
                .collect(),
        })
        .collect();
    special_use::resolve(&r.folders, &listed, gmail).map_err(|e| FetchError::Protocol(safe(&e)))
}

/// The receiver's mailbox: ONE session for every watched folder (servers limit connections per
/// user: Dovecot allows 10 per user and address by default, shared with the user's own clients).
/// IDLE watches the first folder (INBOX); the others are looked at when the runner asks for a
/// full look (its backstop, or a save seen in the logs).
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
}

/// The probe (or its bounce) was found.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub seen: SeenProbe,
    pub detected_at: DateTime<Utc>,
    /// The same moment on the monotonic clock.
    pub detected_instant: Instant,
    /// When the command whose answer showed the probe was sent (a look's SELECT or FETCH of
    /// what is new, also after an IDLE push). The probe was saved before the answer,
    /// and into it after this moment or before: Dovecot holds a command that meets a delivery
    /// being saved into the folder until ~15-20 ms after the save, so an answer can come well
    /// after the save while a look's own round trip is otherwise well under a millisecond.
    pub asked_instant: Instant,
    pub detected_by: DetectedBy,
    /// The whole message as fetched (`BODY.PEEK[]`).
    pub raw: Vec<u8>,
}

/// The most a held answer moves the arrival back from the answer: about Dovecot's hold after a
/// save. A longer hold (a server slow for another reason) is not taken as delivery time saved,
/// so a latency is never reported much shorter than it may have been.
const HELD_ANSWER_CREDIT: Duration = Duration::from_millis(15);

impl Arrival {
    /// When the probe is taken to have reached the folder: the middle of the command that showed
    /// it (see [`Arrival::asked_instant`]), but never more than [`HELD_ANSWER_CREDIT`] before
    /// the answer, so a held-up answer does not count as delivery time.
    pub fn arrived_instant(&self) -> Instant {
        let flight = self
            .detected_instant
            .saturating_duration_since(self.asked_instant);
        self.detected_instant - (flight / 2).min(HELD_ANSWER_CREDIT)
    }
}

/// What else the wait noticed (forged tags, protocol trouble); reported as warnings.
#[derive(Debug, Default, Clone)]
pub struct WaitNotes {
    pub warnings: Vec<String>,
    /// IMAP commands the watch issued (DONE included), for the result's `imap_commands`.
    pub commands: u32,
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
        let names = folder_names(&mut session, r, caps.has_str("X-GM-EXT-1"), deadline).await?;
        let mut folders = Vec::with_capacity(r.folders.len());
        // Select each in turn (proves it exists and gives UIDNEXT); the first stays selected.
        for (name, configured) in names.iter().zip(&r.folders).rev() {
            let mb = within("SELECT", step_until(deadline), session.select(name)).await?;
            let uid_next = match starts.iter().find(|(n, _)| n == name) {
                Some((_, u)) => *u,
                None => mb.uid_next.unwrap_or(1),
            };
            folders.push(FolderState {
                name: name.clone(),
                configured_as: (name != configured).then(|| configured.clone()),
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
        // Cleanup's commands are not the watch's: not counted.
        if let Some((raw, idate)) = fetch_whole(session, uid, &AtomicU32::new(0)).await? {
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
/// `commands` counts the IMAP commands issued.
async fn fetch_whole(
    session: &mut ImapSession,
    uid: u32,
    commands: &AtomicU32,
) -> Result<Option<(Vec<u8>, Option<DateTime<Utc>>)>, FetchError> {
    commands.fetch_add(1, Ordering::Relaxed);
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
    commands.fetch_add(1, Ordering::Relaxed);
    let got = fetch(session, &uid.to_string(), "(UID INTERNALDATE BODY.PEEK[])").await?;
    Ok(got
        .iter()
        .find(|m| m.uid == Some(uid))
        .and_then(|m| m.body().map(|b| (b.to_vec(), internal(m)))))
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
    fn uid_sets() {
        assert_eq!(uid_set(&[3, 7, 9]), "3,7,9");
    }
}
