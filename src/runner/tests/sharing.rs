//! Several probes of one run in one mailbox: one probe's cleanup, which sees every probe there,
//! leaves the others' messages to their own runs.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fakes::{Event, FakeSender, Reply};
use super::{scenario, Lab};
use crate::core::outcome::Status;
use crate::runner::{Prepared, Runner};

/// B's probe lands while B's run still waits for its submission's answer; A's probe arrives,
/// and A cleans up then, with B's probe in the mailbox and not yet detected. A removes only its
/// own; B finds its probe once it waits, and removes it itself.
#[tokio::test(start_paused = true)]
async fn a_cleanup_never_takes_another_runs_probe_before_it_was_detected() {
    let lab = Lab::delivered_after(50, "INBOX");
    let slow = Arc::new(FakeSender {
        mail: lab.mail.clone(),
        reply: Reply::AcceptLate(Duration::from_millis(400)),
        events: vec![Event::Deliver {
            after: Duration::from_millis(10),
            folder: "INBOX",
        }],
        sent: Mutex::new(Vec::new()),
    });
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

/// With one place among `max_concurrency`, the second scenario's probe is sent once the
/// first is judged, not after the first's (slow) cleanup; both are still cleaned up.
#[tokio::test(start_paused = true)]
async fn the_next_probe_goes_when_one_is_judged_not_after_its_cleanup() {
    let mut lab = Lab::delivered_after(50, "INBOX");
    lab.mail.world().scan_delay = Duration::from_secs(2);
    let mut config = super::config();
    config.max_concurrency = 1;
    lab.runner.config = Arc::new(config);
    let mut a = scenario();
    a.name = "a-first".into();
    let mut b = scenario();
    b.name = "b-second".into();
    let prepared = vec![
        Prepared::with_edges(a, lab.sender.clone(), Arc::new(lab.mail.clone())),
        Prepared::with_edges(b, lab.sender.clone(), Arc::new(lab.mail.clone())),
    ];
    let runner: Arc<Runner> = Arc::new(lab.runner);
    let results = runner.run_all(prepared).await;
    let (ra, rb) = (&results[0], &results[1]);
    assert_eq!(ra.status, Status::Delivered, "{ra:?}");
    assert_eq!(rb.status, Status::Delivered, "{rb:?}");
    let gap = rb.sent_at - ra.verdict_at;
    assert!(
        gap < chrono::TimeDelta::seconds(1),
        "B was sent {gap} after A's verdict: it waited for A's 2 s cleanup"
    );
    assert_eq!(
        (ra.cleanup.deleted, rb.cleanup.deleted),
        (1, 1),
        "{ra:?} {rb:?}"
    );
    assert!(lab.mail.world().msgs.is_empty(), "both probes removed");
}
