//! Several probes of one run in one mailbox: one probe's cleanup, which sees every probe there,
//! leaves the others' messages to their own runs; and what a place among `max_concurrency` is
//! held for (sending, not the wait for delivery).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::fakes::{Event, FakeMail, FakeSender, Reply};
use super::{scenario, Lab};
use crate::core::outcome::{RunResult, Status};
use crate::edge::smtp::Submitted;
use crate::runner::ports::{BoxFuture, ProbeSender};
use crate::runner::{Prepared, Runner};

/// A sender whose probe lands in INBOX 10 ms after it is sent, and whose submission is
/// answered only `ms` after it.
fn answered_late(lab: &Lab, ms: u64) -> Arc<FakeSender> {
    Arc::new(FakeSender {
        mail: lab.mail.clone(),
        reply: Reply::AcceptLate(Duration::from_millis(ms)),
        events: vec![Event::Deliver {
            after: Duration::from_millis(10),
            folder: "INBOX",
        }],
        sent: Mutex::new(Vec::new()),
    })
}

/// B's probe lands while B's run still waits for its submission's answer; A's probe arrives,
/// and A cleans up then, with B's probe in the mailbox and not yet detected. A removes only its
/// own; B finds its probe once it waits, and removes it itself.
#[tokio::test(start_paused = true)]
async fn a_cleanup_never_takes_another_runs_probe_before_it_was_detected() {
    let lab = Lab::delivered_after(50, "INBOX");
    let slow = answered_late(&lab, 400);
    let mut a = scenario();
    a.name = "a-fast".into();
    let mut b = scenario();
    b.name = "b-answered-late".into();
    let prepared = vec![
        Prepared::with_edges(a, lab.sender.clone(), Arc::new(lab.mail.clone())),
        Prepared::with_edges(b, slow.clone(), Arc::new(lab.mail.clone())),
    ];
    let runner: Arc<Runner> = Arc::new(lab.runner);
    let results = runner.run_all(prepared).await;
    let (ra, rb) = (&results[0], &results[1]);
    assert_eq!(ra.status, Status::Delivered, "{ra:?}");
    assert_eq!(rb.status, Status::Delivered, "{rb:?}");
    // A's verdict came while B's probe sat undetected in the mailbox.
    assert!(ra.verdict_at < rb.verdict_at, "{ra:?} {rb:?}");
    assert!(
        rb.total_ms.is_some_and(|t| t >= 400),
        "B found its probe only after its answer: {rb:?}"
    );
    assert_eq!(
        (ra.cleanup.deleted, ra.cleanup.swept, ra.cleanup.replayed),
        (1, 0, 0),
        "{ra:?}"
    );
    assert_eq!(rb.cleanup.deleted, 1, "{rb:?}");
    assert!(lab.mail.world().msgs.is_empty(), "both probes removed");
}

/// Scenarios "a-first" (sent by `a`) and "b-second" (by `b`) run with one place among
/// `max_concurrency`; both must be delivered. The results, and the mailbox to look at after.
async fn one_place_two_delivered(
    mut lab: Lab,
    a: Arc<FakeSender>,
    b: Arc<FakeSender>,
) -> (Vec<RunResult>, FakeMail) {
    let mut config = super::config();
    config.max_concurrency = 1;
    lab.runner.config = Arc::new(config);
    let prepared = [("a-first", a), ("b-second", b)]
        .into_iter()
        .map(|(name, sender)| {
            let mut s = scenario();
            s.name = name.into();
            Prepared::with_edges(s, sender, Arc::new(lab.mail.clone()))
        })
        .collect();
    let runner: Arc<Runner> = Arc::new(lab.runner);
    let results = runner.run_all(prepared).await;
    for r in &results {
        assert_eq!(r.status, Status::Delivered, "{r:?}");
    }
    (results, lab.mail)
}

/// With one place among `max_concurrency`, the second scenario's probe is sent once the first
/// is sent, not after the first's (slow) delivery nor its (slow) cleanup: a waiting probe holds
/// no connection of its own. Both are still judged and cleaned up.
#[tokio::test(start_paused = true)]
async fn the_next_probe_goes_once_one_is_sent_not_after_its_delivery() {
    let lab = Lab::delivered_after(3_000, "INBOX");
    lab.mail.world().scan_delay = Duration::from_secs(2);
    let (a, b) = (lab.sender.clone(), lab.sender.clone());
    let (results, mail) = one_place_two_delivered(lab, a, b).await;
    let (ra, rb) = (&results[0], &results[1]);
    let gap = rb.sent_at - ra.sent_at;
    assert!(
        gap < chrono::TimeDelta::seconds(1),
        "B was sent {gap} after A: it waited for A's 3 s delivery"
    );
    assert!(rb.sent_at < ra.verdict_at, "{ra:?} {rb:?}");
    assert_eq!(
        (ra.cleanup.deleted, rb.cleanup.deleted),
        (1, 1),
        "{ra:?} {rb:?}"
    );
    assert!(mail.world().msgs.is_empty(), "both probes removed");
}

/// The place is held while the probe is being sent: with one place, the second scenario is
/// sent only once the first's submission has its answer.
#[tokio::test(start_paused = true)]
async fn one_place_holds_the_next_probe_until_the_submission_is_answered() {
    let lab = Lab::delivered_after(50, "INBOX");
    let (a, b) = (answered_late(&lab, 700), lab.sender.clone());
    let (results, _) = one_place_two_delivered(lab, a, b).await;
    let (ra, rb) = (&results[0], &results[1]);
    let gap = rb.sent_at - ra.sent_at;
    assert!(
        gap >= chrono::TimeDelta::milliseconds(700),
        "B was sent {gap} after A, before A's answer came at 700 ms"
    );
}

/// The VPN down: every probe is accepted and none arrives. With one place, four scenarios take
/// one timeout, not four: each waits for its delivery without holding the place.
#[tokio::test(start_paused = true)]
async fn stuck_probes_cost_one_timeout_not_one_per_place() {
    let mut lab = Lab::new(Reply::Accept, Vec::new());
    let mut config = super::config();
    config.max_concurrency = 1;
    lab.runner.config = Arc::new(config);
    let prepared = (0..4)
        .map(|i| {
            let mut s = scenario();
            s.name = format!("stuck-{i}");
            s.timeout = Duration::from_secs(10);
            Prepared::with_edges(s, lab.sender.clone(), Arc::new(lab.mail.clone()))
        })
        .collect();
    let runner: Arc<Runner> = Arc::new(lab.runner);
    let started = crate::clock::instant();
    let results = runner.run_all(prepared).await;
    assert!(
        results.iter().all(|r| r.status == Status::Lost),
        "{results:?}"
    );
    let took = crate::clock::instant().duration_since(started);
    assert!(
        took < Duration::from_secs(12),
        "four stuck probes took {took:?}: they waited one after another"
    );
}

/// The canary's way in: a probe run in a place gives it back once sent, long before its
/// verdict, so another scenario's probe can start meanwhile.
#[tokio::test(start_paused = true)]
async fn a_placed_probe_gives_its_place_back_once_sent() {
    let lab = Lab::delivered_after(3_000, "INBOX");
    let places = Arc::new(tokio::sync::Semaphore::new(1));
    let place = Arc::clone(&places).acquire_owned().await.unwrap();
    let p = Prepared::with_edges(scenario(), lab.sender.clone(), Arc::new(lab.mail.clone()));
    let runner = Arc::new(lab.runner);
    let probe = tokio::spawn(async move { runner.run_one_placed(&p, place).await });
    let _next = places.acquire().await.unwrap();
    assert!(
        !probe.is_finished(),
        "the place came back only with the verdict"
    );
    let r = probe.await.unwrap();
    assert_eq!(r.status, Status::Delivered, "{r:?}");
}

/// A sender that notes, at each close it is asked for, how many of its submissions had ended.
struct Closing {
    inner: Arc<FakeSender>,
    ended: AtomicUsize,
    closed_after: Mutex<Vec<usize>>,
}

impl ProbeSender for Closing {
    fn send<'a>(&'a self, message: &'a [u8], deadline: Instant) -> BoxFuture<'a, Submitted> {
        Box::pin(async move {
            let s = self.inner.send(message, deadline).await;
            self.ended.fetch_add(1, Ordering::SeqCst);
            s
        })
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let ended = self.ended.load(Ordering::SeqCst);
            self.closed_after.lock().expect("closes").push(ended);
        })
    }
}

/// What a run's senders keep open for its next probe (idle SMTP connections) is closed when
/// the run ends, after its last submission, not before.
#[tokio::test(start_paused = true)]
async fn a_run_closes_its_senders_after_its_last_submission() {
    let lab = Lab::delivered_after(50, "INBOX");
    let sender = Arc::new(Closing {
        inner: lab.sender.clone(),
        ended: AtomicUsize::new(0),
        closed_after: Mutex::new(Vec::new()),
    });
    let prepared = (0..3)
        .map(|i| {
            let mut s = scenario();
            s.name = format!("shared-{i}");
            let as_sender: Arc<dyn ProbeSender> = sender.clone();
            Prepared::with_edges(s, as_sender, Arc::new(lab.mail.clone()))
        })
        .collect();
    let runner: Arc<Runner> = Arc::new(lab.runner);
    let results = runner.run_all(prepared).await;
    assert!(results.iter().all(|r| r.status == Status::Delivered));
    let closed_after = sender.closed_after.lock().expect("closes").clone();
    assert!(!closed_after.is_empty(), "never closed");
    assert!(closed_after.iter().all(|&n| n == 3), "{closed_after:?}");
}
