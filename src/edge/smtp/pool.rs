//! The connections to one submission server that the probes of a run share: at most
//! [`MAX_OPEN`] at once. A probe whose turn comes while they are all busy waits for the next
//! one to finish its transaction and takes its connection over (RSET first) instead of opening
//! another TLS session: with dozens of probes at once, the handshakes and the server processes
//! they start cost more than the transactions themselves.
//!
//! A connection that nobody waits for is kept idle for [`LINGER`], as Postfix's own SMTP client
//! keeps one (`smtp_connection_cache_time_limit`, 2 s): the next probe of a run usually starts
//! within that and takes it over. It is then closed (QUIT); [`SmtpPool::close`] closes the idle
//! ones at once, at the end of a run, so none is left between runs. A connection whose server
//! refused the last transaction is not kept idle: Postfix counts a session's errors and, past
//! `smtpd_soft_error_limit`, slows every reply down.
//!
//! Not here: the conversation (the parent module: what a reused connection may retry).
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::wire::Wire;
use crate::core::outcome::AuthMechanism;

/// Connections open at once to one submission server.
pub const MAX_OPEN: usize = 4;

/// How long a connection nobody waits for is kept for the next probe (see the module's text).
pub const LINGER: Duration = Duration::from_secs(2);

/// How long a QUIT may take before the connection is closed without its reply.
const QUIT_WITHIN: Duration = Duration::from_secs(2);

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
    shared: Arc<Shared>,
}

/// What the pool's turns and its idle connections' timers share.
struct Shared {
    /// One per connection that may be open. A turn holds one; so does an idle connection.
    places: Semaphore,
    queue: Mutex<Queue>,
    linger: Duration,
}

/// The probes waiting for a place, the connections handed over to them, and the idle ones.
#[derive(Default)]
struct Queue {
    waiting: usize,
    /// Never more than `waiting` (but for a waiter that gave up at its deadline).
    handed: Vec<Connection>,
    /// Kept for the next probe, each with the number its timer knows it by; the newest last.
    idle: Vec<(u64, Connection)>,
    next_idle: u64,
}

impl Default for SmtpPool {
    fn default() -> Self {
        SmtpPool::lingering(LINGER)
    }
}

/// A probe's turn to submit: one of the pool's places, and the connection handed over to it,
/// if one was. The place is given back when the turn ends, unless an idle connection keeps it.
pub(super) struct Turn<'p> {
    pool: &'p SmtpPool,
    holds_place: bool,
    pub(super) handed: Option<Connection>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.holds_place {
            self.pool.shared.places.add_permits(1);
        }
    }
}

impl SmtpPool {
    /// A pool that keeps a connection nobody waits for idle for `linger` (zero: closes it at
    /// once, for a lone submission).
    pub fn lingering(linger: Duration) -> SmtpPool {
        SmtpPool {
            shared: Arc::new(Shared {
                places: Semaphore::new(MAX_OPEN),
                queue: Mutex::new(Queue::default()),
                linger,
            }),
        }
    }

    /// Wait for a turn, by `deadline`; `None` when it passed first. An idle connection is
    /// taken at once, with its place.
    pub(super) async fn turn(&self, deadline: Instant) -> Option<Turn<'_>> {
        {
            let mut q = self.shared.lock();
            if let Some((_, conn)) = q.idle.pop() {
                return Some(self.turn_with(Some(conn)));
            }
            q.waiting += 1;
        }
        // Counted out again however the wait ends: its deadline, or the probe dropped.
        let waiter = Waiter(&self.shared);
        let permit = tokio::time::timeout_at(deadline, self.shared.places.acquire()).await;
        let Ok(Ok(p)) = permit else { return None };
        std::mem::forget(waiter);
        // The place is the turn's now, given back by hand (see `Turn`'s drop).
        p.forget();
        let mut q = self.shared.lock();
        q.waiting -= 1;
        Some(self.turn_with(q.handed.pop()))
    }

    fn turn_with(&self, handed: Option<Connection>) -> Turn<'_> {
        Turn {
            pool: self,
            holds_place: true,
            handed,
        }
    }

    /// Close the idle connections now (QUIT), at the end of a run or of a canary: none is
    /// left open when flowtest is done.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut self.shared.lock().idle);
        let n = idle.len();
        futures::future::join_all(idle.into_iter().map(|(_, c)| quit(c))).await;
        self.shared.places.add_permits(n);
    }
}

/// A probe waiting for a place, counted in `Queue::waiting` until it is dropped (or forgotten
/// once it has its place).
struct Waiter<'a>(&'a Shared);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        q.waiting -= 1;
        // A connection handed over to this probe as it gave up has no place: close it.
        if q.handed.len() > q.waiting {
            if let Some(c) = q.handed.pop() {
                tokio::spawn(quit(c));
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A count or a push cannot be left half done: the queue is sound after a panic.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Turn<'_> {
    /// Done with `conn` (its transaction over, the connection sound): hand it over to a probe
    /// waiting for its turn, or keep it idle for the next one if `keep` (the server took the
    /// message), or close it.
    pub(super) async fn finish(mut self, conn: Connection, keep: bool) {
        let pool = self.pool;
        {
            let mut q = pool.shared.lock();
            // One connection for each waiting probe that has none yet.
            if q.handed.len() < q.waiting {
                q.handed.push(conn);
                return;
            }
            if keep && !pool.shared.linger.is_zero() {
                let id = q.next_idle;
                q.next_idle += 1;
                q.idle.push((id, conn));
                // The idle connection keeps the place until it is taken or closed.
                self.holds_place = false;
                tokio::spawn(expire(Arc::clone(&pool.shared), id));
                return;
            }
        }
        quit(conn).await;
    }
}

/// Close idle connection `id` once it has lingered, unless a probe took it (or `close` did).
async fn expire(shared: Arc<Shared>, id: u64) {
    tokio::time::sleep(shared.linger).await;
    let conn = {
        let mut q = shared.lock();
        let at = q.idle.iter().position(|(i, _)| *i == id);
        at.map(|at| q.idle.remove(at).1)
    };
    if let Some(c) = conn {
        quit(c).await;
        shared.places.add_permits(1);
    }
}

/// QUIT politely, within [`QUIT_WITHIN`], then close.
async fn quit(conn: Connection) {
    let by = crate::clock::instant() + QUIT_WITHIN;
    let mut wire = conn.wire;
    if wire.command("QUIT", by).await.is_ok() {
        let _ = wire.reply(by).await;
    }
    wire.shutdown().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;

    use super::*;

    /// A connection, and the server's side of it answering a QUIT: true once it has.
    fn conn() -> (Connection, JoinHandle<bool>) {
        let (ours, theirs) = tokio::io::duplex(64);
        let c = Connection {
            wire: Wire::over(Box::new(ours)),
            auth: None,
            pipelining: false,
        };
        (c, tokio::spawn(answer_quit(theirs)))
    }

    async fn answer_quit(mut theirs: DuplexStream) -> bool {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"QUIT\r\n") {
            match theirs.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        theirs.write_all(b"221 bye\r\n").await.is_ok()
    }

    fn far() -> Instant {
        crate::clock::instant() + Duration::from_secs(60)
    }

    /// Whether every one of the pool's places is free: as many turns as there are places,
    /// none of them on a kept connection.
    async fn all_places_free(pool: &SmtpPool) -> bool {
        let mut turns = Vec::new();
        for _ in 0..MAX_OPEN {
            let soon = crate::clock::instant() + Duration::from_millis(10);
            match pool.turn(soon).await {
                Some(t) if t.handed.is_none() => turns.push(t),
                _ => return false,
            }
        }
        true
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_connection_goes_to_a_waiting_probe() {
        let pool = SmtpPool::default();
        let mut turns = Vec::new();
        for _ in 0..MAX_OPEN {
            let t = pool.turn(far()).await.expect("a free place");
            assert!(t.handed.is_none(), "nothing to take over yet");
            turns.push(t);
        }
        let soon = crate::clock::instant() + Duration::from_millis(50);
        assert!(
            pool.turn(soon).await.is_none(),
            "all places busy until the deadline"
        );
        let waiter = pool.turn(far());
        tokio::pin!(waiter);
        // Let the waiter queue up, then finish one transaction.
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        let (c, quit) = conn();
        turns.pop().expect("a turn").finish(c, true).await;
        let next = waiter.await.expect("the freed place");
        assert!(next.handed.is_some(), "the connection was handed over");
        drop((next, turns));
        quit.abort();
    }

    /// A probe dropped while it waits for a place (its task aborted) is no longer counted: the
    /// next finished connection is kept idle and closed with the run, not handed to nobody.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_is_not_counted() {
        let pool = SmtpPool::default();
        let mut turns = Vec::new();
        for _ in 0..MAX_OPEN {
            turns.push(pool.turn(far()).await.expect("a free place"));
        }
        {
            let waiter = pool.turn(far());
            tokio::pin!(waiter);
            assert!(futures::poll!(waiter.as_mut()).is_pending());
        }
        let (c, quit) = conn();
        turns.pop().expect("a turn").finish(c, true).await;
        pool.close().await;
        let closed = tokio::time::timeout(Duration::from_millis(100), quit).await;
        assert!(matches!(closed, Ok(Ok(true))), "left open: {closed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_nobody_waits_for_is_kept_for_the_next_probe_with_its_place() {
        let pool = SmtpPool::default();
        let (c, quit) = conn();
        pool.turn(far())
            .await
            .expect("a place")
            .finish(c, true)
            .await;
        let mut turns = vec![pool.turn(far()).await.expect("a place")];
        assert!(
            turns[0].handed.is_some(),
            "the idle connection is taken over"
        );
        for _ in 1..MAX_OPEN {
            let t = pool.turn(far()).await.expect("a free place");
            assert!(t.handed.is_none(), "a new connection");
            turns.push(t);
        }
        let soon = crate::clock::instant() + Duration::from_millis(50);
        assert!(
            pool.turn(soon).await.is_none(),
            "the kept connection's place came with it: no more than MAX_OPEN"
        );
        drop(turns);
        quit.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_the_linger() {
        let pool = SmtpPool::default();
        let (c, quit) = conn();
        let kept_at = crate::clock::instant();
        pool.turn(far())
            .await
            .expect("a place")
            .finish(c, true)
            .await;
        assert!(quit.await.expect("the server side"), "closed with QUIT");
        let closed_after = crate::clock::instant() - kept_at;
        assert!(
            closed_after >= LINGER,
            "closed after {closed_after:?}, not kept {LINGER:?}"
        );
        tokio::task::yield_now().await;
        assert!(all_places_free(&pool).await, "its place is given back");
    }

    #[tokio::test(start_paused = true)]
    async fn close_ends_the_idle_connections_at_once() {
        let pool = SmtpPool::default();
        let (a, quit_a) = conn();
        let (b, quit_b) = conn();
        let ta = pool.turn(far()).await.expect("a place");
        let tb = pool.turn(far()).await.expect("a place");
        ta.finish(a, true).await;
        tb.finish(b, true).await;
        let started = crate::clock::instant();
        pool.close().await;
        assert!(quit_a.await.expect("a") && quit_b.await.expect("b"));
        assert!(
            crate::clock::instant() - started < LINGER,
            "not after the linger"
        );
        assert!(all_places_free(&pool).await, "their places are given back");
    }

    /// Whether a connection finished on `pool` (`keep`: its transaction was accepted) is
    /// closed with QUIT at once, its place given back.
    async fn closed_at_once(pool: SmtpPool, keep: bool) -> bool {
        let (c, quit) = conn();
        let started = crate::clock::instant();
        pool.turn(far())
            .await
            .expect("a place")
            .finish(c, keep)
            .await;
        let quit = quit.await.expect("the server side");
        quit && crate::clock::instant() - started < LINGER && all_places_free(&pool).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_transactions_connection_is_closed_not_kept() {
        assert!(closed_at_once(SmtpPool::default(), false).await);
        assert!(!closed_at_once(SmtpPool::default(), true).await, "kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pool_without_linger_closes_a_connection_at_once() {
        assert!(closed_at_once(SmtpPool::lingering(Duration::ZERO), true).await);
    }
}
