//! One log feed for the probes of a run that are in flight together: each probe follows the
//! same server logs, so one feed (one follower per source, each line parsed and correlated
//! once) serves them all instead of one per probe, which with many probes at once multiplies
//! the reading, parsing and correlating by their number. A probe joins the feed started
//! within [`JOIN_WITHIN`] while another probe still holds it; otherwise it starts a new one,
//! so a long-lived runner (the canary) never grows one feed's window without bound. Each
//! probe still asks the feed for its own timeline: fusion picks the probe's chains by its
//! Message-ID and queue id (a refused probe's rejection by sender, recipient and the time
//! nearest its submission), so the other probes' lines are never taken for its own.
//!
//! A refresh asked for while another probe's refresh runs waits for it; if that refresh (or
//! one after it) began after this one was asked, it took in every line written before then,
//! so the waiting probe's refresh is not run again. Many probes settling at once then share
//! one read instead of queueing one each.
//!
//! Not here: following, parsing or fusing the logs (edge::logwatch, core).
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::ports::{BoxFuture, LogFeed};
use crate::clock;
use crate::core::fusion::{HeaderHop, ProbeContext, ProbeTimeline};

/// A feed started this long ago or less is joined; an older one is left to its probes.
pub(super) const JOIN_WITHIN: Duration = Duration::from_secs(10);
/// A look while the probes wait (not forced) is served by a refresh begun this long before it:
/// with many probes looking every 100 ms, the feed is read a few times per look instead of
/// once per probe.
pub(super) const FRESH: Duration = Duration::from_millis(20);

type Inner = tokio::sync::Mutex<Fed>;

/// The shared feed, and when its last refreshes began.
struct Fed {
    feed: Box<dyn LogFeed>,
    /// When the last refresh began, and the last forced one.
    refreshed: Option<Instant>,
    forced: Option<Instant>,
    /// Lines the feed had taken in after its last refresh.
    taken: u64,
}

impl Fed {
    /// Refresh, unless a refresh of the kind asked (a forced one for `force`) began at or
    /// after `asked` (the lock is held for a whole refresh, so that one is done), or, for a
    /// look while the probes wait, at most [`FRESH`] before it.
    async fn refresh_since(&mut self, asked: Instant, force: bool) -> u64 {
        let (last, slack) = if force {
            (self.forced, Duration::ZERO)
        } else {
            (self.refreshed, FRESH)
        };
        if last.is_some_and(|t| t + slack >= asked) {
            return self.taken;
        }
        let begun = clock::instant();
        self.refreshed = Some(begun);
        if force {
            self.forced = Some(begun);
        }
        self.taken = self.feed.refresh(force).await;
        self.taken
    }
}

/// The feed being shared, while a probe holds it.
struct Current {
    feed: Weak<Inner>,
    started: Instant,
    is_empty: bool,
    /// The set-up warnings, handed to every probe that joins.
    warnings: Vec<String>,
}

/// Hands out handles to one shared feed (see the module's text).
#[derive(Default)]
pub(super) struct LogShare {
    current: Mutex<Option<Current>>,
}

impl LogShare {
    /// A handle to the current feed, or to a new one from `start` (with its set-up warnings).
    pub(super) fn follow(
        &self,
        now: Instant,
        start: impl FnOnce() -> (Box<dyn LogFeed>, Vec<String>),
    ) -> (Box<dyn LogFeed>, Vec<String>) {
        let Ok(mut current) = self.current.lock() else {
            // A panic elsewhere poisoned the lock: this probe gets a feed of its own.
            return start();
        };
        if let Some(c) = current.as_ref() {
            let young = now.saturating_duration_since(c.started) <= JOIN_WITHIN;
            if let Some(feed) = c.feed.upgrade().filter(|_| young) {
                let handle = SharedFeed {
                    feed,
                    is_empty: c.is_empty,
                };
                return (Box::new(handle), c.warnings.clone());
            }
        }
        let (feed, warnings) = start();
        let is_empty = feed.is_empty();
        let feed = Arc::new(tokio::sync::Mutex::new(Fed {
            feed,
            refreshed: None,
            forced: None,
            taken: 0,
        }));
        *current = Some(Current {
            feed: Arc::downgrade(&feed),
            started: now,
            is_empty,
            warnings: warnings.clone(),
        });
        (Box::new(SharedFeed { feed, is_empty }), warnings)
    }
}

/// One probe's handle to a shared feed; the feed stops when the last handle is dropped.
struct SharedFeed {
    feed: Arc<Inner>,
    is_empty: bool,
}

impl LogFeed for SharedFeed {
    fn is_empty(&self) -> bool {
        self.is_empty
    }
    fn refresh(&mut self, force: bool) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            let asked = clock::instant();
            self.feed.lock().await.refresh_since(asked, force).await
        })
    }
    fn warnings(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move { self.feed.lock().await.feed.warnings().await })
    }
    fn timeline<'a>(
        &'a self,
        probe: &'a ProbeContext,
        header_hops: &'a [HeaderHop],
    ) -> BoxFuture<'a, ProbeTimeline> {
        Box::pin(async move {
            let fed = self.feed.lock().await;
            fed.feed.timeline(probe, header_hops).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::MutexGuard;

    use super::*;
    use crate::core::fusion::{fuse_probe, MessageStatus};

    /// How long a [`Noting`] refresh takes: longer than [`FRESH`], so that a look can come
    /// while one runs and yet too late for it.
    const TAKES: Duration = Duration::from_millis(30);

    /// A feed whose refreshes take [`TAKES`], noting each one's `force` (in a list shared by
    /// every handle to it).
    struct Noting {
        runs: Arc<Mutex<Vec<bool>>>,
    }

    impl LogFeed for Noting {
        fn is_empty(&self) -> bool {
            false
        }
        fn refresh(&mut self, force: bool) -> BoxFuture<'_, u64> {
            let mut runs = self.runs.lock().unwrap();
            runs.push(force);
            // Each refresh takes in one more line.
            let taken = runs.len() as u64;
            Box::pin(async move {
                tokio::time::sleep(TAKES).await;
                taken
            })
        }
        fn warnings(&self) -> BoxFuture<'_, Vec<String>> {
            let n = self.runs.lock().unwrap().len();
            Box::pin(async move { vec![format!("{n} refreshes")] })
        }
        fn timeline<'a>(
            &'a self,
            probe: &'a ProbeContext,
            header_hops: &'a [HeaderHop],
        ) -> BoxFuture<'a, ProbeTimeline> {
            Box::pin(async move { fuse_probe(probe, &[], header_hops) })
        }
    }

    /// A share whose `start` counts the feeds started.
    struct Fixture {
        share: LogShare,
        started: AtomicU32,
        runs: Arc<Mutex<Vec<bool>>>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                share: LogShare::default(),
                started: AtomicU32::new(0),
                runs: Arc::default(),
            }
        }

        fn follow(&self) -> Box<dyn LogFeed> {
            let (feed, warnings) = self.share.follow(crate::clock::instant(), || {
                self.started.fetch_add(1, Ordering::Relaxed);
                let feed = Noting {
                    runs: Arc::clone(&self.runs),
                };
                (Box::new(feed) as Box<dyn LogFeed>, vec!["set-up".into()])
            });
            assert_eq!(warnings, ["set-up"], "every probe gets the set-up warnings");
            feed
        }

        fn started(&self) -> u32 {
            self.started.load(Ordering::Relaxed)
        }

        /// The refreshes run so far, each with its `force`.
        fn runs(&self) -> MutexGuard<'_, Vec<bool>> {
            self.runs.lock().unwrap()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probes_in_flight_together_share_one_feed() {
        let f = Fixture::new();
        let mut a = f.follow();
        let mut b = f.follow();
        assert_eq!(f.started(), 1, "one feed for both");
        a.refresh(false).await;
        b.refresh(true).await;
        // Both handles reach the same feed: it saw both refreshes.
        assert_eq!(a.warnings().await, ["2 refreshes"]);
        assert!(!b.is_empty());
        let probe = ProbeContext {
            message_id: "<p@probe.test>".into(),
            mail_from: "a@probe.test".into(),
            rcpt_to: vec!["u@example.test".into()],
            submitted_at: chrono::DateTime::UNIX_EPOCH,
            accepted_at: None,
            detected_at: None,
            submission_queue_id: None,
            expected_hosts: Vec::new(),
        };
        assert_eq!(b.timeline(&probe, &[]).await.status, MessageStatus::Unknown);
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_no_probe_holds_is_not_joined() {
        let f = Fixture::new();
        drop(f.follow());
        let _b = f.follow();
        assert_eq!(f.started(), 2, "the first feed ended with its last probe");
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_feed_is_left_to_its_probes() {
        let f = Fixture::new();
        let _a = f.follow();
        tokio::time::advance(JOIN_WITHIN + Duration::from_millis(1)).await;
        let _b = f.follow();
        assert_eq!(
            f.started(),
            2,
            "a probe after JOIN_WITHIN starts its own feed"
        );
        let _c = f.follow();
        assert_eq!(f.started(), 2, "and the next one joins that");
    }

    #[tokio::test(start_paused = true)]
    async fn probes_waiting_on_a_refresh_share_the_next_one() {
        assert!(TAKES > FRESH);
        let f = Fixture::new();
        let mut feeds: Vec<Box<dyn LogFeed>> = (0..4).map(|_| f.follow()).collect();
        let [a, b, c, d] = &mut feeds[..] else {
            unreachable!("four feeds")
        };
        let ms = Duration::from_millis;
        // `a` refreshes from 0 to 30 ms; `b` and `c` ask at 25 ms, while it runs: it began
        // more than FRESH before they asked, so one more refresh runs (30 to 60 ms) and serves
        // both.
        tokio::join!(a.refresh(false), async {
            tokio::time::sleep(ms(25)).await;
            tokio::join!(b.refresh(false), c.refresh(false));
        });
        assert_eq!(*f.runs(), [false, false]);
        // A look asked within FRESH of a refresh's start is served by it.
        tokio::join!(a.refresh(false), async {
            tokio::time::sleep(ms(1)).await;
            b.refresh(false).await;
        });
        assert_eq!(*f.runs(), [false, false, false]);
        // A forced refresh is not served by plain ones, even those begun after it was asked.
        tokio::join!(a.refresh(false), async {
            tokio::time::sleep(ms(25)).await;
            tokio::join!(b.refresh(false), d.refresh(true));
        });
        assert_eq!(*f.runs(), [false, false, false, false, false, true]);
        // A forced refresh serves plain ones waiting on it.
        tokio::join!(a.refresh(true), async {
            tokio::time::sleep(ms(25)).await;
            tokio::join!(d.refresh(true), b.refresh(false), c.refresh(false));
        });
        assert_eq!(
            *f.runs(),
            [false, false, false, false, false, true, true, true]
        );
    }
}
