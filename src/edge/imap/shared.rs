//! One logged-in session per mailbox, shared by every probe of a run that watches it (same
//! server, port, user, authentication and folders): servers cap sessions (Gmail: 15 per
//! account; Dovecot: 10 per user and address) and admit logins slowly (a Dovecot with its
//! defaults starts two processes per login). The first probe that opens the mailbox logs in
//! and starts the session's watch (`watch`); later ones join it; the last one to leave logs it
//! out. A session lost on the way ends every armed probe's wait as lost, and the next probe to
//! open the mailbox logs in again for all of them, each resuming from its own points.
//!
//! A member's handles only send requests to the watch, which serves them one at a time, so a
//! cleanup's scan or deletion never interleaves with a look. Not here: looking, dispatching and
//! charging commands (`watch`), what to delete (the runner decides).
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::watch::{self, Charges, LookRequests, WaitEnd};
use super::{step_until, within, Arrival, FetchError, Mailbox, Prepared, ScannedCopy, WaitNotes};
use crate::config::Receiver;
use crate::core::outcome::AuthMechanism;
use crate::core::probe::Installation;
use crate::core::verdict::CopyAt;

/// What a member asks of the session's watch.
pub(super) enum Request {
    Join {
        reply: oneshot::Sender<Joined>,
    },
    /// Watch for this probe; the reply comes once detection is armed.
    Arm {
        member: u64,
        want: Box<Want>,
        found: mpsc::Sender<Arrival>,
        reply: oneshot::Sender<()>,
    },
    /// Stop watching for the member's probe (its wait ended).
    Disarm {
        member: u64,
    },
    Scan {
        key: Installation,
        reply: oneshot::Sender<(Vec<ScannedCopy>, Vec<String>)>,
    },
    Delete {
        at: CopyAt,
        reply: oneshot::Sender<Result<usize, FetchError>>,
    },
    /// The member is done; `done` is answered once its part is over (after the logout when
    /// it was the last).
    Leave {
        member: u64,
        done: Option<oneshot::Sender<()>>,
    },
}

/// A member's place in the session.
pub(super) struct Joined {
    pub(super) member: u64,
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
        // The lock is not held while joining: openers join together, each in one step of
        // the watch, not one after another.
        let lock = || {
            within(
                "waiting for the shared IMAP session",
                step_until(deadline),
                async { Ok::<_, FetchError>(self.live.lock().await) },
            )
        };
        let current = lock().await?.clone();
        if let Some(m) = try_join(current.as_ref(), resume, deadline).await {
            return Ok(m);
        }
        let mut live = lock().await?;
        // Another opener may have logged in meanwhile: join that one.
        let other = live.as_ref().filter(|l| {
            !current
                .as_ref()
                .is_some_and(|c| c.requests.same_channel(&l.requests))
        });
        if let Some(m) = try_join(other, resume, deadline).await {
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
        tokio::spawn(watch::run(mb, facts.idle, Arc::clone(&wake), rx));
        let l = Live {
            requests: tx,
            wake,
            facts,
        };
        let m = join(&l, resume).await;
        *live = Some(l);
        m.ok_or_else(|| FetchError::Protocol("the IMAP session ended at once".into()))
    }
}

/// Join `live` within the step's time; `None` when there is none, or it has ended or does
/// not answer in time (it is left to its members; a new one opens).
async fn try_join(
    live: Option<&Live>,
    resume: &[(String, u32)],
    deadline: Instant,
) -> Option<Member> {
    let l = live?;
    tokio::time::timeout_at(step_until(deadline), join(l, resume))
        .await
        .ok()
        .flatten()
}

/// Join a running session; `None` when it has ended.
async fn join(live: &Live, resume: &[(String, u32)]) -> Option<Member> {
    let (reply, joined) = oneshot::channel();
    live.requests.send(Request::Join { reply }).ok()?;
    let Joined { member } = joined.await.ok()?;
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
    /// Send the probe only after this returns.
    pub async fn arm(
        self,
        key: Installation,
        want: Uuid,
        deadline: Instant,
    ) -> Result<SharedArmed, FetchError> {
        let charges = Arc::new(Charges::default());
        let looks = LookRequests::waking(Arc::clone(&self.wake));
        let (found_tx, found) = mpsc::channel(1);
        let (reply, armed) = oneshot::channel();
        let w = Box::new(Want {
            key,
            id: want,
            resume: if self.resuming {
                self.starts.clone()
            } else {
                Vec::new()
            },
            looks: looks.clone(),
            charges: Arc::clone(&charges),
        });
        self.requests
            .send(Request::Arm {
                member: self.member,
                want: w,
                found: found_tx,
                reply,
            })
            .map_err(|_| lost())?;
        within("arming detection", step_until(deadline), async {
            armed.await.map_err(|_| lost())
        })
        .await?;
        Ok(SharedArmed {
            member: self,
            found,
            looks,
            charges,
        })
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

    /// Leave the session; the last member's leaving logs it out.
    pub async fn logout(mut self) {
        self.left = true;
        let (done, over) = oneshot::channel();
        let sent = self.requests.send(Request::Leave {
            member: self.member,
            done: Some(done),
        });
        if sent.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), over).await;
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.left {
            let _ = self.requests.send(Request::Leave {
                member: self.member,
                done: None,
            });
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
                let _ = self.member.requests.send(Request::Disarm {
                    member: self.member.member,
                });
                Some(self.member)
            }
        };
        (end, member, self.charges.notes())
    }
}
