//! IMAP edge: open the receiver's mailbox, arm push detection (IDLE) on every watched folder
//! before the probe is sent, detect the probe by its tag, fetch it, find every message carrying
//! a genuine tag (with the UIDVALIDITY its UID was read under), and delete exactly the messages
//! the runner names, by UID, after re-selecting the folder and checking its UIDVALIDITY, with
//! `UID EXPUNGE` (UIDPLUS only) so nothing else that happens to be flagged `\Deleted` is ever
//! expunged.
//!
//! Messages are read with `BODY.PEEK` only: flowtest never changes a flag of a message that is
//! not its own verified probe. Every network step is bounded by a timeout.
//! Not here: deciding what to delete (the runner does, from verified tags and the store).
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::Fetch;
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use crate::config::secret::Secret;
use crate::config::{Receiver, TlsMode};
use crate::core::outcome::DetectedBy;
use crate::core::probe::{self, Installation, ProbeTag, Verdict};
use crate::core::verdict::{CopyAt, CopyKind};
use crate::edge::bounded::{Guarded, Limits};

/// Bound on each IMAP command (login, select, fetch, store).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
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

/// A plain or TLS TCP stream, as async-imap wants one type.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Sessions read through the guard, so a server cannot grow memory without bound.
type Guard = Guarded<ImapStream>;
type ImapSession = Session<Guard>;

/// Why the mailbox could not be read. `Auth` is what users would see as "password does not match".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    Connect(String),
    Tls(String),
    Auth(String),
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

async fn bounded<T, E: Into<FetchError>>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FetchError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(FetchError::Timeout(format!(
            "{what}: no answer within {} s",
            COMMAND_TIMEOUT.as_secs()
        ))),
    }
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

/// Read one CRLF-terminated line from a not-yet-buffered stream (greeting / STARTTLS answer).
async fn read_line_raw(s: &mut TcpStream) -> Result<String, FetchError> {
    let mut line = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    while line.len() < 8192 {
        let n = s
            .read(&mut b)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        if n == 0 {
            return Err(FetchError::Connect("connection closed by server".into()));
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
        }
    }
    Err(FetchError::Protocol("line too long".into()))
}

async fn tls_wrap(tcp: TcpStream, host: &str, prep: &Prepared) -> Result<ImapStream, FetchError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| FetchError::Tls(format!("{host}: {e}")))?;
    let tls = TlsConnector::from(prep.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| FetchError::Tls(e.to_string()))?;
    Ok(ImapStream::Tls(Box::new(tls)))
}

/// A client on `stream` once the server's greeting has been read and is `OK` or `PREAUTH`.
async fn greeted(stream: ImapStream) -> Result<Client<Guard>, FetchError> {
    let mut c = Client::new(Guarded::new(stream, Limits::IMAP));
    let greeting = bounded("greeting", async {
        c.read_response().await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                FetchError::Protocol(format!("unreadable greeting: {}", safe(&e.to_string())))
            } else {
                FetchError::Connect(e.to_string())
            }
        })
    })
    .await?
    .ok_or_else(|| FetchError::Connect("connection closed before the greeting".into()))?;
    check_greeting(greeting.parsed())?;
    Ok(c)
}

/// Whether an I/O error is the peer going away rather than bad data.
fn is_disconnect(e: &async_imap::error::Error) -> bool {
    match e {
        async_imap::error::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData,
        async_imap::error::Error::ConnectionLost => true,
        _ => false,
    }
}

/// Untrusted server text, safe to show.
fn safe(s: &str) -> String {
    crate::core::text::escape_control(s).into_owned()
}

/// A greeting must be `* OK` or `* PREAUTH`; `* BYE` is the server turning us away.
fn check_greeting(r: &async_imap::imap_proto::Response<'_>) -> Result<(), FetchError> {
    use async_imap::imap_proto::{Response, Status};
    match r {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(FetchError::Refused(format!(
            "BYE {}",
            safe(outcome.information.as_deref().unwrap_or(""))
        ))),
        other => Err(FetchError::Protocol(format!(
            "unexpected greeting: {}",
            safe(&format!("{other:?}"))
        ))),
    }
}

async fn connect(r: &Receiver, prep: &Prepared) -> Result<Client<Guard>, FetchError> {
    let tcp = bounded("connect", async {
        TcpStream::connect((r.host.as_str(), r.port))
            .await
            .map_err(|e| FetchError::Connect(format!("{}:{}: {e}", r.host, r.port)))
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    match r.tls {
        TlsMode::Tls => {
            greeted(bounded("TLS handshake", tls_wrap(tcp, &r.host, prep)).await?).await
        }
        TlsMode::None => greeted(ImapStream::Plain(tcp)).await,
        TlsMode::Starttls => {
            let mut tcp = tcp;
            bounded("STARTTLS", async {
                let greeting = read_line_raw(&mut tcp).await?;
                if greeting.starts_with("* BYE") {
                    return Err(FetchError::Refused(safe(&greeting)));
                }
                if !greeting.starts_with("* OK") {
                    return Err(FetchError::Connect(format!(
                        "unexpected greeting: {greeting}"
                    )));
                }
                tcp.write_all(b"ft0 STARTTLS\r\n")
                    .await
                    .map_err(|e| FetchError::Connect(e.to_string()))?;
                loop {
                    let l = read_line_raw(&mut tcp).await?;
                    if let Some(rest) = l.strip_prefix("ft0 ") {
                        if rest.starts_with("OK") {
                            return Ok(());
                        }
                        return Err(FetchError::Tls(format!("STARTTLS refused: {rest}")));
                    }
                }
            })
            .await?;
            let s = bounded("TLS handshake", tls_wrap(tcp, &r.host, prep)).await?;
            Ok(Client::new(Guarded::new(s, Limits::IMAP)))
        }
    }
}

/// Connect and log in. A `NO` to LOGIN is an authentication failure, except a server's
/// connection limit (`[LIMIT]`, Dovecot's mail_max_userip_connections): that is retried a few
/// times with back-off, since sessions of other runs or clients end all the time.
pub async fn login(r: &Receiver, prep: &Prepared) -> Result<ImapSession, FetchError> {
    let mut pause = Duration::from_secs(1);
    for _ in 0..3 {
        match login_once(r, prep).await {
            Err(FetchError::Auth(m)) if is_limit(&m) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    login_once(r, prep).await
}

fn is_limit(text: &str) -> bool {
    text.contains("[LIMIT]")
        || text
            .to_ascii_lowercase()
            .contains("maximum number of connections")
}

async fn login_once(r: &Receiver, prep: &Prepared) -> Result<ImapSession, FetchError> {
    let client = connect(r, prep).await?;
    match tokio::time::timeout(
        COMMAND_TIMEOUT,
        client.login(&r.username, prep.password.expose()),
    )
    .await
    {
        Err(_) => Err(FetchError::Timeout("login: no answer".into())),
        Ok(Ok(s)) => Ok(s),
        Ok(Err((e, _))) => Err(login_error(e)),
    }
}

/// What a failed LOGIN means: only a `NO` is the credentials' fault.
fn login_error(e: async_imap::error::Error) -> FetchError {
    match e {
        async_imap::error::Error::No(_) => FetchError::Auth(server_text(&e)),
        e if is_disconnect(&e) => FetchError::Refused(format!(
            "the connection was closed at login ({})",
            safe(&e.to_string())
        )),
        e => FetchError::Protocol(format!("answer to LOGIN: {}", safe(&server_text(&e)))),
    }
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
    /// Log in and select every watched folder; remember where "new" starts.
    pub async fn open(r: &Receiver, prep: &Prepared) -> Result<Mailbox, FetchError> {
        Self::open_resuming(r, prep, &[]).await
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
    ) -> Result<Mailbox, FetchError> {
        let mut session = login(r, prep).await?;
        let caps = bounded("CAPABILITY", session.capabilities()).await?;
        let can_idle = caps.has_str("IDLE");
        let can_uidplus = caps.has_str("UIDPLUS");
        let mut folders = Vec::with_capacity(r.folders.len());
        // Select each in turn (proves it exists and gives UIDNEXT); the first stays selected.
        for name in r.folders.iter().rev() {
            let mb = bounded("SELECT", session.select(name)).await?;
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
            folders,
            selected: 0,
            can_idle,
            can_uidplus,
            idle: r.idle,
            poll: r.poll_interval,
        })
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

    /// Arm detection and return once it is armed (IDLE accepted, or poll mode ready). Send the
    /// probe only after this returns.
    pub async fn arm(self, key: Installation, want: Uuid) -> Result<Armed, FetchError> {
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
        };
        let task = tokio::spawn(watch_mailbox(self, ctx, armed_tx));
        match tokio::time::timeout(COMMAND_TIMEOUT, armed_rx).await {
            Ok(Ok(Ok(()))) => Ok(Armed {
                task,
                stop: stop_tx,
                found: found_rx,
            }),
            Ok(Ok(Err(e))) => {
                let _ = stop_tx.send(true);
                Err(e)
            }
            Ok(Err(_)) | Err(_) => {
                let _ = stop_tx.send(true);
                Err(FetchError::Timeout("arming IDLE".into()))
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
    match check_all(&mut mb, &ctx, DetectedBy::Poll, &mut notes).await {
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
            if let Err(e) = bounded("IDLE", handle.init()).await {
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
            mb.session = match bounded("DONE", handle.done()).await {
                Ok(s) => s,
                Err(e) => {
                    notes.warnings.push(format!("ending IDLE failed: {e}"));
                    return (None, notes);
                }
            };
            match resp {
                // A push concerns the IDLE folder: look there first, as a push.
                Ok(IdleResponse::NewData(_)) => {
                    match check_new(&mut mb, 0, &ctx, DetectedBy::Idle, &mut notes).await {
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
            if let Err(e) = bounded("NOOP", mb.session.noop()).await {
                notes.warnings.push(e.to_string());
                return (None, notes);
            }
            DetectedBy::Poll
        };
        match check_all(&mut mb, &ctx, by, &mut notes).await {
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
    /// Returns the mailbox (for cleanup) when the session survived.
    pub async fn wait(
        mut self,
        deadline: Instant,
        cancel: impl std::future::Future<Output = ()>,
    ) -> (WaitEnd, Option<Mailbox>, WaitNotes) {
        let remaining = deadline.saturating_duration_since(crate::clock::instant());
        tokio::pin!(cancel);
        let end = tokio::select! {
            a = self.found.recv() => match a {
                Some(a) => WaitEnd::Arrived(Box::new(a)),
                // The watch ended without finding it: the session is gone.
                None => WaitEnd::SessionsLost,
            },
            _ = tokio::time::sleep(remaining) => WaitEnd::Deadline,
            _ = &mut cancel => WaitEnd::Cancelled,
        };
        let _ = self.stop.send(true);
        match tokio::time::timeout(COMMAND_TIMEOUT, self.task).await {
            Ok(Ok((mb, notes))) => (end, mb, notes),
            _ => (
                end,
                None,
                WaitNotes {
                    warnings: vec!["the IMAP watch did not stop in time".into()],
                },
            ),
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
    fn connection_limits_are_recognised() {
        assert!(is_limit(
            "NO [LIMIT] Maximum number of connections from user+IP exceeded"
        ));
        assert!(!is_limit(
            "NO [AUTHENTICATIONFAILED] Authentication failed."
        ));
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
