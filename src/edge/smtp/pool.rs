//! The connections to one submission server that the probes of a run share: at most
//! [`MAX_OPEN`] at once. A probe whose turn comes while they are all busy waits for the next
//! one to finish its transaction and takes its connection over (RSET first) instead of opening
//! another TLS session: with dozens of probes at once, the handshakes and the server processes
//! they start cost more than the transactions themselves. A connection that nobody waits for
//! is closed (QUIT) at once, so none is left idle between runs or at the end of one.
//!
//! Not here: the conversation (the parent module: what a reused connection may retry).
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::wire::Wire;
use crate::core::outcome::AuthMechanism;

/// Connections open at once to one submission server.
pub const MAX_OPEN: usize = 4;

/// An open session after EHLO (and STARTTLS, AUTH), between transactions.
pub(super) struct Connection {
    pub(super) wire: Wire,
    /// How it authenticated, if it did: every submission on it reports that.
    pub(super) auth: Option<AuthMechanism>,
    /// The server offered PIPELINING (RFC 2920): the envelope goes out in one write.
    pub(super) pipelining: bool,
}

/// The shared connections to one submission server (see the module's text).
pub struct SmtpPool {
    /// One per connection that may be open.
    permits: Semaphore,
    queue: Mutex<Queue>,
}

/// The probes waiting for a permit and the connections handed over to them.
#[derive(Default)]
struct Queue {
    waiting: usize,
    /// Never more than `waiting` (but for a waiter that gave up at its deadline).
    handed: Vec<Connection>,
}

impl Default for SmtpPool {
    fn default() -> Self {
        SmtpPool {
            permits: Semaphore::new(MAX_OPEN),
            queue: Mutex::new(Queue::default()),
        }
    }
}

/// A probe's turn to submit: one of the pool's places, and the connection handed over to it,
/// if one was.
pub(super) struct Turn<'p> {
    pool: &'p SmtpPool,
    _permit: SemaphorePermit<'p>,
    pub(super) handed: Option<Connection>,
}

impl SmtpPool {
    /// Wait for a turn, by `deadline`; `None` when it passed first.
    pub(super) async fn turn(&self, deadline: Instant) -> Option<Turn<'_>> {
        self.lock().waiting += 1;
        let permit = tokio::time::timeout_at(deadline, self.permits.acquire()).await;
        let handed = {
            let mut q = self.lock();
            q.waiting -= 1;
            q.handed.pop()
        };
        let permit = permit.ok()?.ok()?;
        Some(Turn {
            pool: self,
            _permit: permit,
            handed,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A count or a push cannot be left half done: the queue is sound after a panic.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Turn<'_> {
    /// Done with `conn` (its transaction over, the connection sound): hand it over to a probe
    /// waiting for its turn, or close it.
    pub(super) async fn finish(self, conn: Connection, quit_by: Instant) {
        {
            let mut q = self.pool.lock();
            // One connection for each waiting probe that has none yet.
            if q.handed.len() < q.waiting {
                q.handed.push(conn);
                return;
            }
        }
        let mut wire = conn.wire;
        if wire.command("QUIT", quit_by).await.is_ok() {
            let _ = wire.reply(quit_by).await;
        }
        wire.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn conn() -> Connection {
        let (ours, _theirs) = tokio::io::duplex(64);
        Connection {
            wire: Wire::over(Box::new(ours)),
            auth: None,
            pipelining: false,
        }
    }

    #[tokio::test]
    async fn a_finished_connection_goes_to_a_waiting_probe_and_is_closed_otherwise() {
        let pool = SmtpPool::default();
        let far = crate::clock::instant() + Duration::from_secs(5);
        let mut turns = Vec::new();
        for _ in 0..MAX_OPEN {
            let t = pool.turn(far).await.expect("a free place");
            assert!(t.handed.is_none(), "nothing to take over yet");
            turns.push(t);
        }
        let soon = crate::clock::instant() + Duration::from_millis(50);
        assert!(
            pool.turn(soon).await.is_none(),
            "all places busy until the deadline"
        );
        let waiter = pool.turn(far);
        tokio::pin!(waiter);
        // Let the waiter queue up, then finish one transaction.
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        turns.pop().expect("a turn").finish(conn(), far).await;
        let next = waiter.await.expect("the freed place");
        assert!(next.handed.is_some(), "the connection was handed over");
        // Nobody waits now: a finished connection is closed, not kept.
        next.finish(conn(), far).await;
        let later = pool.turn(far).await.expect("a free place");
        assert!(later.handed.is_none(), "no connection is kept idle");
    }
}
