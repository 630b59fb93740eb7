//! The request to stop a run (SIGINT/SIGTERM in `flowtest run`): shared by the command that
//! hears the signal and every scenario in flight. Not here: listening for signals (cmd/run.rs)
//! or what a stopped scenario reports (the runner).
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How long probes already in flight may still arrive after a stop was requested.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// A stop request, cloned into everything that must notice it. Holds its own sender, so waiting
/// on one that is never requested simply never ends.
#[derive(Clone)]
pub struct Stop {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Stop {
    /// Ask every holder to stop (idempotent).
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    pub fn requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves `grace` after a stop is requested; never, when none is.
    pub async fn after(&self, grace: Duration) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        if rx.wait_for(|stopped| *stopped).await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn resolves_a_grace_after_the_request_and_never_without_one() {
        let stop = Stop::default();
        assert!(!stop.requested());
        let never = tokio::time::timeout(Duration::from_secs(3600), stop.after(STOP_GRACE));
        assert!(never.await.is_err(), "no request, no stop");

        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let start = crate::clock::instant();
                stop.after(STOP_GRACE).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.request();
        stop.request();
        assert!(stop.requested());
        let waited = waiter.await.unwrap();
        assert_eq!(waited, Duration::from_secs(5) + STOP_GRACE);
    }
}
