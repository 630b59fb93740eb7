//! The runner when things stop short: a scenario whose task panics, a run asked to stop
//! (before sending, and with a probe in flight), and rows left `pending` by a killed run.
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use uuid::Uuid;

use super::fakes::{Event, Reply};
use super::{scenario, t0, Lab};
use crate::core::outcome::{RunResult, Status};
use crate::edge::smtp::Submitted;
use crate::runner::leftovers::{LEFT_PENDING, STALE_GRACE};
use crate::runner::ports::{BoxFuture, ProbeSender};
use crate::runner::{Prepared, Runner, Stop};

/// A sender with a bug: it panics mid-submission.
struct PanickingSender;

impl ProbeSender for PanickingSender {
    fn send<'a>(&'a self, _: &'a [u8], _: tokio::time::Instant) -> BoxFuture<'a, Submitted> {
        Box::pin(async { panic!("sender bug: index out of range") })
    }
}

fn prepared(lab: &Lab, name: &str, sender: Arc<dyn ProbeSender>) -> Prepared {
    let mut s = scenario();
    s.name = name.into();
    Prepared::with_edges(s, sender, Arc::new(lab.mail.clone()))
}

fn warned(r: &RunResult, needle: &str) -> bool {
    r.warnings.iter().any(|w| w.contains(needle))
}

#[tokio::test(start_paused = true)]
async fn a_panicking_scenario_is_an_error_result_in_its_place_and_stored() {
    let lab = Lab::delivered_after(300, "INBOX");
    let store = Arc::clone(&lab.store);
    let sender = lab.sender.clone();
    let prepared = vec![
        prepared(&lab, "a-buggy", Arc::new(PanickingSender)),
        prepared(&lab, "b-fine", sender),
    ];
    let runner = Arc::new(lab.runner);
    let results = runner.run_all(prepared).await;
    let names: Vec<_> = results.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        vec!["a-buggy", "b-fine"],
        "one result each, in order"
    );
    let bad = &results[0];
    assert_eq!(bad.status, Status::Error);
    assert!(
        warned(
            bad,
            "internal error: the scenario's task panicked: sender bug: index out of range"
        ),
        "{:?}",
        bad.warnings
    );
    assert_eq!(results[1].status, Status::Delivered);
    // The pending row the panicking task left is resolved to its error result.
    let row = store.row(&bad.probe_id).expect("stored");
    assert_eq!(row.status, "error");
    assert!(store
        .rows
        .lock()
        .unwrap()
        .values()
        .all(|r| r.status != "pending"));
    assert_eq!(runner.progress.step("a-buggy"), None, "progress cleared");
}

fn stoppable(lab: Lab) -> (Arc<Runner>, Stop, Prepared) {
    let stop = Stop::default();
    let p = Prepared::with_edges(
        lab.scenario.clone(),
        lab.sender.clone(),
        Arc::new(lab.mail.clone()),
    );
    (Arc::new(lab.runner.with_stop(stop.clone())), stop, p)
}

#[tokio::test(start_paused = true)]
async fn stopped_before_its_turn_nothing_is_sent() {
    let lab = Lab::delivered_after(300, "INBOX");
    let (sender, store) = (lab.sender.clone(), Arc::clone(&lab.store));
    let (runner, stop, p) = stoppable(lab);
    stop.request();
    let r = runner.run_all(vec![p]).await;
    assert_eq!(r[0].status, Status::Interrupted);
    assert!(
        warned(&r[0], "before this probe was sent"),
        "{:?}",
        r[0].warnings
    );
    assert!(sender.sent.lock().unwrap().is_empty(), "nothing sent");
    assert_eq!(store.row(&r[0].probe_id).unwrap().status, "interrupted");
}

#[tokio::test(start_paused = true)]
async fn stopped_in_flight_a_probe_gets_the_grace_then_is_interrupted() {
    // Arrives 10 s after sending; the stop comes at 1 s: the grace (2 s) runs out first.
    let lab = Lab::delivered_after(10_000, "INBOX");
    let store = Arc::clone(&lab.store);
    let (runner, stop, p) = stoppable(lab);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.request();
    });
    let started = crate::clock::instant();
    let r = runner.run_all(vec![p]).await;
    stopper.await.unwrap();
    assert_eq!(r[0].status, Status::Interrupted, "{:?}", r[0]);
    assert!(
        warned(&r[0], "while this probe was in flight"),
        "{:?}",
        r[0].warnings
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(store.row(&r[0].probe_id).unwrap().status, "interrupted");
}

#[tokio::test(start_paused = true)]
async fn stopped_in_flight_a_probe_arriving_within_the_grace_is_judged_and_cleaned() {
    let lab = Lab::delivered_after(2_500, "INBOX");
    let mail = lab.mail.clone();
    let (runner, stop, p) = stoppable(lab);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.request();
    });
    let r = runner.run_all(vec![p]).await;
    stopper.await.unwrap();
    assert_eq!(r[0].status, Status::Delivered, "{:?}", r[0]);
    assert_eq!(r[0].cleanup.deleted, 1, "its own probe is still deleted");
    assert!(mail.world().msgs.is_empty());
}

#[tokio::test(start_paused = true)]
async fn rows_left_pending_by_a_killed_run_become_lost_then_late_when_seen() {
    let lab = Lab::new(
        Reply::Accept,
        vec![Event::Deliver {
            after: Duration::from_millis(300),
            folder: "INBOX",
        }],
    );
    // The scenario's timeout is 30 s: a row older than 30 s + the grace is stale.
    let stale_gap = TimeDelta::seconds(30) + TimeDelta::from_std(STALE_GRACE).unwrap();
    let seen = Uuid::now_v7();
    let seen_sent = t0() - stale_gap - TimeDelta::seconds(5);
    lab.store.put(&seen.to_string(), "pending", seen_sent);
    lab.seed_probe("INBOX", seen, seen_sent);
    let unseen = Uuid::now_v7();
    lab.store
        .put(&unseen.to_string(), "pending", t0() - TimeDelta::hours(1));
    // Still within its deadline and grace: perhaps another run is waiting for it.
    let young = Uuid::now_v7();
    let young_sent = t0() - stale_gap + TimeDelta::seconds(5);
    lab.store.put(&young.to_string(), "pending", young_sent);
    lab.seed_probe("Junk", young, young_sent);

    let store = Arc::clone(&lab.store);
    let p = prepared(&lab, "fake-inbound", lab.sender.clone());
    let mail = lab.mail.clone();
    let runner = Arc::new(lab.runner);
    let r = runner.run_all(vec![p]).await;
    assert_eq!(r[0].status, Status::Delivered);
    assert_eq!(store.row(&unseen.to_string()).unwrap().status, "lost");
    let row = store.row(&seen.to_string()).unwrap();
    assert_eq!(row.status, "lost", "the left-over is lost...");
    assert!(row.late_seen_at.is_some(), "...and late, seen now");
    assert_eq!(r[0].cleanup.marked_late, vec![seen.to_string()]);
    assert_eq!(store.row(&young.to_string()).unwrap().status, "pending");
    let left: Vec<String> = mail.world().msgs.iter().map(|m| m.folder.clone()).collect();
    assert_eq!(left, vec!["Junk".to_string()], "only the young probe stays");
    // The resolved rows say why.
    let resolved = runner.resolve_leftover_pending();
    assert!(resolved.is_empty(), "resolved once: {resolved:?}");
    assert!(LEFT_PENDING.contains("left pending by an interrupted run"));
}
