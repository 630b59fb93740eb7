//! The roster of one shared session: its members and the probe each has armed. Joining,
//! arming a probe from scratch, disarming and leaving are done here at once, under a short
//! lock, whatever the session's watch is doing (a look's NOOP and FETCH, a cleanup's scan): a
//! probe is never kept waiting behind another probe's commands. The watch reads the roster at
//! each look, so a probe armed here is claimed by every look that reads its folders after
//! that, the invariant that lets the probe be sent as soon as it is armed.
//!
//! Not here: the session itself and everything that needs a command (the watch serves those:
//! a resuming probe's catch-up look, scans, deletions, the last member's logout).
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::shared::Want;
use super::Arrival;

/// A probe armed with the watch, until found or disarmed.
pub(super) struct Armed {
    pub(super) want: Box<Want>,
    /// Where the arrival goes; taken when it is sent, so a probe is handed over once.
    pub(super) found: Option<mpsc::Sender<Arrival>>,
}

/// The members of one session (see the module's text).
#[derive(Default)]
pub(super) struct Roster {
    inner: Mutex<Members>,
    /// Woken when a probe is armed: a watch with no probe armed waits without IDLE.
    pub(super) armed_one: Notify,
    /// Woken when the last armed probe is disarmed (see [`Roster::until_none_armed`]).
    none_armed: Notify,
}

/// Every member of the session; `Some` while its probe is armed.
#[derive(Default)]
pub(super) struct Members {
    pub(super) by_id: BTreeMap<u64, Option<Armed>>,
    next: u64,
    /// The session ended (its last member left, or it was lost): nobody joins or arms.
    closed: bool,
}

/// The session has ended: join another one.
#[derive(Debug)]
pub(super) struct Closed;

/// What a member's leaving leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Left {
    /// Other members remain: the session goes on.
    Others,
    /// It was the last member: the session is closed and must be logged out.
    Last,
    /// The session had already ended.
    Ended,
}

impl Roster {
    /// The members, for reading or changing them; never held across an await.
    pub(super) fn lock(&self) -> MutexGuard<'_, Members> {
        // A panic while holding the lock cannot leave the map half-changed (each change is
        // one insert or remove): the data is still sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new member's id, unless the session has ended.
    pub(super) fn join(&self) -> Result<u64, Closed> {
        let mut m = self.lock();
        if m.closed {
            return Err(Closed);
        }
        m.next += 1;
        let id = m.next;
        m.by_id.insert(id, None);
        Ok(id)
    }

    /// Arm `member`'s probe: from now on every look claims it.
    pub(super) fn arm(&self, member: u64, armed: Armed) -> Result<(), Closed> {
        {
            let mut m = self.lock();
            if m.closed {
                return Err(Closed);
            }
            m.by_id.insert(member, Some(armed));
        }
        self.armed_one.notify_one();
        Ok(())
    }

    /// Stop watching for `member`'s probe (its wait ended); it stays a member.
    pub(super) fn disarm(&self, member: u64) {
        if let Some(a) = self.lock().by_id.get_mut(&member) {
            *a = None;
        }
        self.tell_if_none_armed();
    }

    /// Take `member` off the roster; the last one closes it.
    pub(super) fn leave(&self, member: u64) -> Left {
        let mut m = self.lock();
        if m.closed {
            return Left::Ended;
        }
        m.by_id.remove(&member);
        let left = if m.by_id.is_empty() {
            m.closed = true;
            Left::Last
        } else {
            Left::Others
        };
        drop(m);
        self.tell_if_none_armed();
        left
    }

    /// Close the roster (the session was lost) and hand back the probes armed on it; their
    /// arrivals channels close when they are dropped.
    pub(super) fn close(&self) -> Vec<Armed> {
        let armed = {
            let mut m = self.lock();
            m.closed = true;
            std::mem::take(&mut m.by_id)
                .into_values()
                .flatten()
                .collect()
        };
        self.none_armed.notify_waiters();
        armed
    }

    /// Whether any probe is armed.
    pub(super) fn any_armed(&self) -> bool {
        self.lock().by_id.values().any(Option::is_some)
    }

    fn tell_if_none_armed(&self) {
        if !self.any_armed() {
            self.none_armed.notify_waiters();
        }
    }

    /// Wait until no probe is armed (every wait on the session has ended), or until `by`.
    pub(super) async fn until_none_armed(&self, by: Instant) {
        loop {
            let woken = self.none_armed.notified();
            tokio::pin!(woken);
            // Registered before the check: a disarming in between still wakes it.
            woken.as_mut().enable();
            if !self.any_armed() || tokio::time::timeout_at(by, woken).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::probe::{Installation, ProbeKey};
    use crate::edge::imap::watch::{Charges, LookRequests};

    fn armed() -> (Armed, mpsc::Receiver<Arrival>) {
        let (found, rx) = mpsc::channel(1);
        let want = Box::new(Want {
            key: Installation::new(ProbeKey::new(&[7; 32]).expect("key"), "probe.test"),
            id: uuid::Uuid::nil(),
            resume: Vec::new(),
            looks: LookRequests::default(),
            charges: Arc::new(Charges::default()),
        });
        (
            Armed {
                want,
                found: Some(found),
            },
            rx,
        )
    }

    #[test]
    fn the_last_member_to_leave_closes_the_roster() {
        let r = Roster::default();
        let a = r.join().expect("open");
        let b = r.join().expect("open");
        assert_ne!(a, b, "every member has its own id");
        assert_eq!(r.leave(a), Left::Others);
        assert_eq!(r.leave(b), Left::Last);
        assert!(r.join().is_err(), "a closed session is not joined");
        assert_eq!(r.leave(b), Left::Ended);
    }

    #[tokio::test]
    async fn arming_wakes_the_watch_and_a_lost_session_drops_every_armed_probe() {
        let r = Roster::default();
        let m = r.join().expect("open");
        assert!(!r.any_armed());
        let (a, mut arrivals) = armed();
        r.arm(m, a).expect("open");
        assert!(r.any_armed());
        tokio::time::timeout(std::time::Duration::from_secs(1), r.armed_one.notified())
            .await
            .expect("the watch is woken");
        assert_eq!(r.close().len(), 1);
        assert!(
            arrivals.recv().await.is_none(),
            "the probe's wait sees the loss"
        );
        let (again, _) = armed();
        assert!(
            r.arm(m, again).is_err(),
            "nothing is armed on a lost session"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_quiet_ends_with_the_last_armed_probe_or_at_its_bound() {
        let r = Arc::new(Roster::default());
        let (m, other) = (r.join().expect("open"), r.join().expect("open"));
        let (a, _rx) = armed();
        r.arm(m, a).expect("open");
        let start = crate::clock::instant();
        let far = start + std::time::Duration::from_secs(5);
        let waiter = tokio::spawn({
            let r = Arc::clone(&r);
            async move { r.until_none_armed(far).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "a probe is still armed");
        r.disarm(m);
        waiter.await.expect("the wait ends");
        assert_eq!(start.elapsed(), std::time::Duration::from_millis(200));
        let (b, _rx) = armed();
        r.arm(other, b).expect("open");
        let soon = crate::clock::instant() + std::time::Duration::from_millis(300);
        r.until_none_armed(soon).await;
        assert_eq!(crate::clock::instant(), soon, "bounded by its time");
    }

    #[test]
    fn a_disarmed_member_stays_a_member() {
        let r = Roster::default();
        let m = r.join().expect("open");
        let other = r.join().expect("open");
        let (a, _rx) = armed();
        r.arm(m, a).expect("open");
        r.disarm(m);
        assert!(!r.any_armed());
        assert_eq!(r.leave(other), Left::Others, "m is still on the roster");
    }
}
