//! When the runner looks for the probe: the window of quick looks after acceptance, the look a
//! save in the logs asks for, IDLE's push for the long tail, the backstop that re-issues IDLE
//! before Gmail drops it, and the bound on the commands all of it costs. Against the fake
//! mailbox in paused time, with Dovecot's 500 ms push delay where it matters.
use std::time::Duration;

use super::fakes::FakeLogs;
use super::Lab;
use crate::core::outcome::{DetectedBy, RunResult, Status};
use crate::runner::logs::WATCH_EVERY;
use crate::runner::wait::{backstop, window_gap, WINDOW_FIRST, WINDOW_LOOKS};

/// Dovecot reports a save to an IDLE session about this long after it.
const DOVECOT_PUSH: Duration = Duration::from_millis(500);

fn dovecot_like(deliver_ms: u64) -> Lab {
    let lab = Lab::delivered_after(deliver_ms, "INBOX");
    lab.mail.world().push_delay = DOVECOT_PUSH;
    lab
}

fn commands(r: &RunResult) -> u32 {
    r.imap_commands.expect("the wait reports its commands")
}

#[test]
fn window_gaps_grow_with_the_time_since_acceptance_and_the_window_is_short() {
    assert_eq!(window_gap(Duration::ZERO), WINDOW_FIRST);
    assert_eq!(window_gap(Duration::from_millis(40)), WINDOW_FIRST);
    assert_eq!(
        window_gap(Duration::from_millis(160)),
        Duration::from_millis(10)
    );
    let mut t = Duration::ZERO;
    for _ in 0..WINDOW_LOOKS {
        t += window_gap(t);
    }
    assert!(
        t > Duration::from_millis(400) && t < Duration::from_secs(1),
        "{t:?}"
    );
}

#[test]
fn the_backstop_reissues_idle_before_gmail_drops_it() {
    let gmail_cut = Duration::from_secs(29 * 60);
    assert!(backstop(Duration::from_secs(3600), true) < gmail_cut);
    assert_eq!(
        backstop(Duration::from_millis(100), true),
        Duration::from_secs(2)
    );
    assert_eq!(
        backstop(Duration::from_secs(2), true),
        Duration::from_secs(10)
    );
    assert_eq!(
        backstop(Duration::from_secs(2), false),
        Duration::from_secs(2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_save_inside_the_window_is_seen_within_one_gap_not_after_idles_delay() {
    for deliver in [60, 300] {
        let r = dovecot_like(deliver).run().await;
        assert_eq!(r.status, Status::Delivered, "{r:?}");
        assert_eq!(r.detected_by, Some(DetectedBy::Poll));
        let total = r.total_ms.unwrap();
        let gap = window_gap(Duration::from_millis(deliver)).as_millis() as i64;
        assert!(
            total >= deliver as i64 && total <= deliver as i64 + gap,
            "delivered at {deliver} ms, seen at {total} ms (gap {gap} ms)"
        );
        // One NOOP per empty look, and a few commands around them.
        assert!(commands(&r) <= WINDOW_LOOKS, "{}", commands(&r));
    }
    let r = dovecot_like(60).run().await;
    assert!(
        commands(&r) <= 25,
        "a save 60 ms after acceptance costs ~12 looks: {}",
        commands(&r)
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_held_while_the_server_saves_counts_from_the_middle_of_the_look() {
    let deliver = 60;
    let held = Duration::from_millis(30);
    let lab = dovecot_like(deliver);
    lab.mail.world().found_answer_held = held;
    let r = lab.run().await;
    assert_eq!(r.detected_by, Some(DetectedBy::Poll), "{r:?}");
    let sent = r.submission.as_ref().unwrap().started_at;
    let seen = (r.detected_at.unwrap() - sent).num_milliseconds();
    assert!(
        seen >= deliver as i64 + 30,
        "the answer came {seen} ms after sending"
    );
    let total = r.total_ms.unwrap();
    let gap = window_gap(Duration::from_millis(deliver)).as_millis() as i64;
    assert!(
        total >= deliver as i64 && total <= deliver as i64 + gap + 15,
        "saved at {deliver} ms, look held 30 ms: total {total} ms"
    );
    // A server slow for longer is not credited beyond its usual hold after a save.
    let lab = dovecot_like(deliver);
    lab.mail.world().found_answer_held = Duration::from_millis(900);
    let r = lab.run().await;
    let total = r.total_ms.unwrap();
    assert!(
        total >= deliver as i64 + 900 - 15,
        "saved at {deliver} ms, look held 900 ms: total {total} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_window_idle_reports_the_save_with_dovecots_delay() {
    let r = dovecot_like(2000).run().await;
    assert_eq!(r.detected_by, Some(DetectedBy::Idle));
    assert_eq!(r.total_ms, Some(2500), "the fake pushes 500 ms late");
}

#[tokio::test(start_paused = true)]
async fn a_save_in_the_logs_asks_the_mailbox_at_once() {
    // The save falls between two looks at the logs (every WATCH_EVERY), never on one: at the
    // same instant, which of the two timers fires first is not defined.
    let saved = 1950;
    assert_ne!(saved % WATCH_EVERY.as_millis(), 0);
    let lab = dovecot_like(saved as u64).with_logs(FakeLogs {
        saved_after: Some(Duration::from_millis(saved as u64)),
        ..FakeLogs::default()
    });
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered, "{r:?}");
    assert_eq!(
        r.detected_by,
        Some(DetectedBy::Poll),
        "the log's look, not IDLE"
    );
    let total = r.total_ms.unwrap() as u128;
    assert!(
        (saved..=saved + WATCH_EVERY.as_millis()).contains(&total),
        "seen {total} ms after sending: within one look at the logs of the save at {saved} ms"
    );
}

#[tokio::test(start_paused = true)]
async fn the_commands_per_probe_are_bounded_by_the_window_and_the_backstop() {
    let lost = |secs| async move {
        let mut lab = Lab::new(super::Reply::Accept, Vec::new());
        lab.scenario.timeout = Duration::from_secs(secs);
        let r = lab.run().await;
        assert_eq!(r.status, Status::Lost);
        commands(&r)
    };
    let short = lost(30).await;
    let long = lost(60).await;
    assert!(short >= WINDOW_LOOKS, "the window ran: {short}");
    // Per backstop (every 5 s here): DONE, NOOP, a FETCH per folder and SELECTs, IDLE.
    let per_backstop = 7;
    assert!(
        short <= WINDOW_LOOKS + 12 + per_backstop * 6,
        "30 s cost {short} commands"
    );
    assert!(
        long - short <= per_backstop * 6,
        "30 s more cost {} commands: only the backstop's",
        long - short
    );
}

#[tokio::test(start_paused = true)]
async fn idle_is_reissued_before_a_gmail_like_server_drops_it() {
    let seventy_minutes = 70 * 60 * 1000;
    let gmail = |drop_after_min: u64| {
        let mut lab = Lab::delivered_after(seventy_minutes, "INBOX");
        lab.scenario.timeout = Duration::from_secs(2 * 3600);
        lab.scenario.slo.target = None;
        lab.scenario.receiver.poll_interval = Duration::from_secs(3600);
        lab.mail.world().idle_drop_after = Some(Duration::from_secs(drop_after_min * 60));
        lab
    };
    let lab = gmail(29);
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered, "{r:?}");
    assert_eq!(r.total_ms, Some(seventy_minutes as i64));
    assert_eq!(lab.mail.world().opens, 1, "never dropped: {:?}", r.warnings);
    assert!(
        !r.warnings.iter().any(|w| w.contains("IMAP")),
        "{:?}",
        r.warnings
    );
    // The fake does drop an IDLE older than its limit: one shorter than the backstop bites.
    let lab = gmail(10);
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered, "{r:?}");
    assert!(lab.mail.world().opens > 1);
    assert!(
        r.warnings.iter().any(|w| w.contains("re-established")),
        "{:?}",
        r.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn a_folder_found_by_its_special_use_is_junk_when_its_entry_is() {
    let mut lab = Lab::delivered_after(800, "[Gmail]/Spam");
    let entry = "special-use:junk".to_string();
    lab.scenario.receiver.folders = vec!["INBOX".into(), entry.clone()];
    lab.scenario.receiver.junk_folders = vec![entry.clone()];
    {
        let mut w = lab.mail.world();
        w.folders = vec!["INBOX".into(), "[Gmail]/Spam".into()];
        w.special_use = vec![("[Gmail]/Spam".into(), entry)];
    }
    let r = lab.run().await;
    assert_eq!(r.status, Status::DeliveredSpam, "{r:?}");
    assert_eq!(
        r.folder.as_deref(),
        Some("[Gmail]/Spam"),
        "the server's name"
    );
    assert_eq!(r.cleanup.deleted, 1);
}
