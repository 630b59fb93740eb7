//! One logged-in session per mailbox, shared by every probe of a run that watches it (same
//! server, port, user, authentication and folders): servers cap sessions (Gmail: 15 per
//! account; Dovecot: 10 per user and address) and admit logins slowly (a Dovecot with its
//! defaults starts two processes per login). The first probe that opens the mailbox logs in
//! and starts the session's watch (`watch`); later ones join it; the last one to leave logs it
//! out. A session lost on the way ends every armed probe's wait as lost, and the next probe to
//! open the mailbox logs in again for all of them, each resuming from its own points.
//!
//! Joining, arming and leaving go through the session's roster (`roster`) at once; what needs
//! the session (a resuming probe's catch-up look, a cleanup's scan or deletion, the logout) is
//! asked of the watch, which serves it between looks, so a scan never interleaves with a look.
//! Not here: looking, dispatching and charging commands (`watch`), what to delete (the runner
//! decides).
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::roster::{Armed, Left, Roster};
use super::watch::{self, Charges, LookRequests, WaitEnd};
use super::{step_until, within, Arrival, FetchError, Mailbox, Prepared, ScannedCopy, WaitNotes};
use crate::config::Receiver;
use crate::core::outcome::AuthMechanism;
use crate::core::probe::Installation;
use crate::core::verdict::CopyAt;

/// What a member asks of the session's watch: what needs the session's commands (joining,
/// arming from scratch, disarming and leaving are done on the [`Roster`] at once).
pub(super) enum Request {
    /// Arm a probe of a session lost on the way: the watch looks from its resume points first
    /// (it may have arrived meanwhile); the reply comes once that look is done.
    Resume {
        member: u64,
        armed: Armed,
        reply: oneshot::Sender<()>,
    },
    Scan {
        key: Installation,
        reply: oneshot::Sender<(Vec<ScannedCopy>, Vec<String>)>,
    },
    Delete {
        at: CopyAt,
        reply: oneshot::Sender<Result<usize, FetchError>>,
    },
    /// The last member left: log out, then answer `done`.
    LogOut { done: Option<oneshot::Sender<()>> },
}

/// One probe being watched for.
pub(super) struct Want {
    pub(super) key: Installation,
    pub(super) id: Uuid,
    /// Where this probe's run started looking (empty: a first arming, nothing can have arrived
    /// yet); after a reconnection the watch looks from there at once.
    pub(super) resume: Vec<(String, u32)>,
    pub(super) looks: LookRequests,
    pub(super) charges: Arc<Charges>,
}

/// The live session's address and what every member is told of it.
#[derive(Clone)]
struct Live {
    requests: mpsc::UnboundedSender<Request>,
    roster: Arc<Roster>,
    /// Woken by every member's look request.
    wake: Arc<Notify>,
    facts: Facts,
}

#[derive(Clone)]
struct Facts {
    idle: bool,
    auth: AuthMechanism,
    /// Where "new" started when the session logged in, per folder.
    starts: Vec<(String, u32)>,
}

/// One mailbox's shared session: opened on demand, at most one at a time.
pub struct SharedMailbox {
    receiver: Receiver,
    prepared: Prepared,
    live: tokio::sync::Mutex<Option<Live>>,
}

impl SharedMailbox {
    pub fn new(receiver: Receiver, prepared: Prepared) -> SharedMailbox {
        SharedMailbox {
            receiver,
            prepared,
            live: tokio::sync::Mutex::new(None),
        }
    }

    /// The receiver this session logs in to.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// Join the live session, or log in (by `deadline`) and start one. `resume` is where this
    /// member's run started looking (empty: now); a new session starts there.
    pub async fn open(
        &self,
        resume: &[(String, u32)],
        deadline: Instant,
    ) -> Result<Member, FetchError> {
        // Openers queue here while one logs in, then join its session: one login for all.
        // Joining takes no command, so the lock is held only for a moment otherwise.
        let mut live = within(
            "waiting for the shared IMAP session",
            step_until(deadline),
            async { Ok::<_, FetchError>(self.live.lock().await) },
        )
        .await?;
        if let Some(m) = live.as_ref().and_then(|l| join(l, resume)) {
            return Ok(m);
        }
        let mb = Mailbox::open_resuming(&self.receiver, &self.prepared, resume, deadline).await?;
        tracing::debug!(user = %self.receiver.username, host = %self.receiver.host, "shared IMAP session opened");
        let facts = Facts {
            idle: mb.uses_idle(),
            auth: mb.auth_mechanism(),
            starts: mb.starts(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let roster = Arc::new(Roster::default());
        let l = Live {
            requests: tx,
            roster: Arc::clone(&roster),
            wake: Arc::clone(&wake),
            facts,
        };
        // The creator joins before the watch runs: its roster is never empty until a leave.
        let m = join(&l, resume);
        tokio::spawn(watch::run(mb, l.facts.idle, wake, roster, rx));
        *live = Some(l);
        m.ok_or_else(|| FetchError::Protocol("the IMAP session ended at once".into()))
    }
}

/// Join a running session at once; `None` when it has ended.
fn join(live: &Live, resume: &[(String, u32)]) -> Option<Member> {
    let member = live.roster.join().ok()?;
    // Where this member's "new" starts: its own points, else the session's current ones
    // (a member sends its probe only after arming, so nothing of it can be below them).
    let starts = live
        .facts
        .starts
        .iter()
        .map(|(n, u)| match resume.iter().find(|(r, _)| r == n) {
            Some((_, r)) => (n.clone(), *r),
            None => (n.clone(), *u),
        })
        .collect();
    Some(Member {
        requests: live.requests.clone(),
        roster: Arc::clone(&live.roster),
        wake: Arc::clone(&live.wake),
        member,
        idle: live.facts.idle,
        auth: live.facts.auth,
        starts,
        resuming: !resume.is_empty(),
        left: false,
    })
}

/// One probe's membership in a shared session. Dropped without [`Member::logout`], it leaves
/// all the same.
pub struct Member {
    requests: mpsc::UnboundedSender<Request>,
    roster: Arc<Roster>,
    wake: Arc<Notify>,
    member: u64,
    idle: bool,
    auth: AuthMechanism,
    starts: Vec<(String, u32)>,
    /// Opened to resume an earlier session's watch: arming looks from `starts` at once.
    resuming: bool,
    left: bool,
}

fn lost() -> FetchError {
    FetchError::Protocol("the shared IMAP session was lost".into())
}

impl Member {
    pub fn uses_idle(&self) -> bool {
        self.idle
    }

    pub fn auth_mechanism(&self) -> AuthMechanism {
        self.auth
    }

    /// Where "new" starts for this member in each folder: handed back on a reconnection.
    pub fn starts(&self) -> Vec<(String, u32)> {
        self.starts.clone()
    }

    /// Arm detection of probe `want` and return once it is armed, by `deadline` (the probe's).
    /// Send the probe only after this returns. A fresh probe is armed at once; a resuming one
    /// once the watch has looked from its resume points.
    pub async fn arm(
        self,
        key: Installation,
        want: Uuid,
        deadline: Instant,
    ) -> Result<SharedArmed, FetchError> {
        let charges = Arc::new(Charges::default());
        let looks = LookRequests::waking(Arc::clone(&self.wake));
        let (found_tx, found) = mpsc::channel(1);
        let armed = Armed {
            want: Box::new(Want {
                key,
                id: want,
                resume: if self.resuming {
                    self.starts.clone()
                } else {
                    Vec::new()
                },
                looks: looks.clone(),
                charges: Arc::clone(&charges),
            }),
            found: Some(found_tx),
        };
        if self.resuming {
            let (reply, done) = oneshot::channel();
            self.requests
                .send(Request::Resume {
                    member: self.member,
                    armed,
                    reply,
                })
                .map_err(|_| lost())?;
            within("arming detection", step_until(deadline), async {
                done.await.map_err(|_| lost())
            })
            .await?;
        } else {
            self.roster.arm(self.member, armed).map_err(|_| lost())?;
        }
        Ok(SharedArmed {
            member: self,
            found,
            looks,
            charges,
        })
    }

    /// Wait, until `by` at most, for no probe on this session to be waiting for its delivery:
    /// a cleanup's scan and deletions then take no turn from another probe's looks.
    pub async fn until_quiet(&self, by: Instant) {
        self.roster.until_none_armed(by).await;
    }

    /// Every message carrying a genuine tag of this installation in the watched folders.
    pub async fn scan_probes(&self, key: &Installation) -> (Vec<ScannedCopy>, Vec<String>) {
        let (reply, got) = oneshot::channel();
        let asked = self.requests.send(Request::Scan {
            key: key.clone(),
            reply,
        });
        match asked {
            Ok(()) => got
                .await
                .unwrap_or_else(|_| (Vec::new(), vec![lost().to_string()])),
            Err(_) => (Vec::new(), vec![lost().to_string()]),
        }
    }

    /// Delete this copy (see [`Mailbox::delete`]: only when its folder's UIDVALIDITY is unchanged).
    pub async fn delete(&self, at: &CopyAt) -> Result<usize, FetchError> {
        let (reply, got) = oneshot::channel();
        self.requests
            .send(Request::Delete {
                at: at.clone(),
                reply,
            })
            .map_err(|_| lost())?;
        got.await.map_err(|_| lost())?
    }

    /// Leave the session; the last member's leaving logs it out (and waits for that, a few
    /// seconds at most).
    pub async fn logout(mut self) {
        self.left = true;
        if let Some(over) = self.leave(true) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), over).await;
        }
    }

    /// Take this member off the roster; the last one asks the watch to log out (the answer
    /// comes when it has, if `wait`).
    fn leave(&self, wait: bool) -> Option<oneshot::Receiver<()>> {
        if self.roster.leave(self.member) != Left::Last {
            return None;
        }
        let (done, over) = oneshot::channel();
        let done = wait.then_some(done);
        self.requests.send(Request::LogOut { done }).ok()?;
        wait.then_some(over)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.left {
            let _ = self.leave(false);
        }
    }
}

/// Detection armed and running; the probe may now be sent.
pub struct SharedArmed {
    member: Member,
    found: mpsc::Receiver<Arrival>,
    looks: LookRequests,
    charges: Arc<Charges>,
}

impl SharedArmed {
    /// Where to ask the watch for a look (merged with the other members' requests).
    pub fn looks(&self) -> LookRequests {
        self.looks.clone()
    }

    /// Wait for the probe until `deadline`, or until `cancel` resolves (fail-fast from logs).
    /// Returns the membership (for cleanup) when the session survived, and the notes: the
    /// commands charged to this probe and the warnings about it.
    pub async fn wait(
        mut self,
        deadline: Instant,
        cancel: impl std::future::Future<Output = ()>,
    ) -> (WaitEnd, Option<Member>, WaitNotes) {
        tokio::pin!(cancel);
        let end = tokio::select! {
            a = self.found.recv() => watch::ended(a, deadline),
            _ = tokio::time::sleep_until(deadline) => WaitEnd::Deadline,
            _ = &mut cancel => WaitEnd::Cancelled,
        };
        let member = match end {
            WaitEnd::SessionsLost => None,
            _ => {
                self.member.roster.disarm(self.member.member);
                Some(self.member)
            }
        };
        (end, member, self.charges.notes())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::secret::{Secret, SecretRef};
    use crate::config::TlsMode;
    use crate::core::probe::ProbeKey;
    use crate::edge::imap::Look;

    /// A small IMAP server on a loopback port with an empty INBOX that answers every NOOP only
    /// once `gate` is notified; `noop` is notified when a NOOP comes in.
    async fn slow_noop_server(gate: Arc<Notify>, noop: Arc<Notify>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let (r, mut w) = conn.into_split();
            let mut lines = BufReader::new(r).lines();
            let _ = w
                .write_all(b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] ready\r\n")
                .await;
            while let Ok(Some(line)) = lines.next_line().await {
                let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
                let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
                let reply = match verb.as_str() {
                    "CAPABILITY" => {
                        format!("* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n{tag} OK done\r\n")
                    }
                    "SELECT" | "EXAMINE" => format!(
                        "* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 1] ok\r\n\
                         {tag} OK [READ-WRITE] done\r\n"
                    ),
                    "NOOP" => {
                        noop.notify_one();
                        gate.notified().await;
                        format!("{tag} OK done\r\n")
                    }
                    "IDLE" => {
                        let _ = w.write_all(b"+ idling\r\n").await;
                        let _ = lines.next_line().await;
                        format!("{tag} OK idle done\r\n")
                    }
                    "LOGOUT" => format!("* BYE bye\r\n{tag} OK done\r\n"),
                    _ => format!("{tag} OK done\r\n"),
                };
                if w.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        port
    }

    fn mailbox(port: u16) -> SharedMailbox {
        let receiver = Receiver {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            ca_file: None,
            username: "probe".into(),
            password: SecretRef::Env("FLOWTEST_TEST_UNUSED".into()),
            mechanism: crate::config::AuthMechanism::Password,
            folders: vec!["INBOX".into()],
            junk_folders: Vec::new(),
            idle: true,
            poll_interval: Duration::from_secs(1),
        };
        let prepared = Prepared {
            tls: crate::edge::tls::client_config(&[]).expect("TLS config"),
            password: Secret::new("pw".into()),
        };
        SharedMailbox::new(receiver, prepared)
    }

    #[tokio::test]
    async fn a_probe_joins_and_arms_while_the_watch_waits_on_another_probes_look() {
        let (gate, noop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let shared = mailbox(slow_noop_server(Arc::clone(&gate), Arc::clone(&noop)).await);
        let key = Installation::new(ProbeKey::new(&[7; 32]).expect("key"), "probe.test");
        let deadline = crate::clock::instant() + Duration::from_secs(20);
        let first = shared.open(&[], deadline).await.expect("logs in");
        let first = first
            .arm(key.clone(), Uuid::now_v7(), deadline)
            .await
            .expect("armed");
        first.looks().request(Look::Window);
        // The watch is now inside the first probe's look, waiting on the server's NOOP.
        tokio::time::timeout(Duration::from_secs(5), noop.notified())
            .await
            .expect("the look's NOOP reached the server");
        let second = tokio::time::timeout(Duration::from_secs(1), async {
            let m = shared.open(&[], deadline).await?;
            m.arm(key.clone(), Uuid::now_v7(), deadline).await
        })
        .await;
        let second = second
            .expect("joining and arming do not wait for the watch's command")
            .expect("armed");
        gate.notify_one();
        let at_once = std::future::ready(());
        let (end, member, _) = second.wait(crate::clock::instant(), at_once).await;
        assert!(
            matches!(end, WaitEnd::Cancelled | WaitEnd::Deadline),
            "{end:?}"
        );
        drop(member);
        drop(first);
    }
}
