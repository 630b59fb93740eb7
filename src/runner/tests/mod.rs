//! The runner end to end against fakes (tests/fakes.rs), in tokio's paused time with a test
//! clock: every status, a mid-wait reconnect, a late arrival, and cleanups that must not delete.
mod detection;
mod fakes;
mod sharing;
mod stopping;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use uuid::Uuid;

use super::logs::SETTLE;
use super::{Prepared, Progress, Runner};
use crate::clock::{self, SharedClock, TestClock};
use crate::config::secret::SecretRef;
use crate::config::{Config, Defaults, Receiver, Scenario, Sender, Slo, SmtpSender, TlsMode};
use crate::core::diagnosis::{Finding, FindingCode};
use crate::core::outcome::{RunResult, SmtpPhase, Status};
use crate::core::probe::{Installation, ProbeKey};
use crate::edge::imap::FetchError;
use fakes::{probe_raw, Event, FakeLogs, FakeMail, FakeSender, MemStore, Reply};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()
}

fn key() -> ProbeKey {
    ProbeKey::new(b"a test probe key of enough bytes!").unwrap()
}

fn installation() -> Installation {
    Installation::new(key(), "probe.test")
}

fn scenario() -> Scenario {
    Scenario {
        name: "fake-inbound".into(),
        description: String::new(),
        file: PathBuf::from("fake.toml"),
        sender: Sender::Smtp(SmtpSender {
            host: "mx.test".into(),
            port: 25,
            tls: TlsMode::None,
            ca_file: None,
            helo: None,
            mail_from: "probe@probe.test".into(),
            rcpt_to: vec!["user@example.test".into()],
            header_from: "probe@probe.test".into(),
            header_to: "user@example.test".into(),
            auth: None,
            command_timeout: Duration::from_secs(10),
        }),
        receiver: Receiver {
            host: "imap.test".into(),
            port: 143,
            tls: TlsMode::None,
            ca_file: None,
            username: "user".into(),
            password: SecretRef::Env("FAKE_PASSWORD".into()),
            mechanism: crate::config::AuthMechanism::Password,
            folders: vec!["INBOX".into(), "Junk".into()],
            junk_folders: vec!["Junk".into()],
            idle: true,
            poll_interval: Duration::from_secs(1),
        },
        timeout: Duration::from_secs(30),
        cleanup: true,
        sweep_after: Duration::from_secs(3600),
        slo: Slo {
            target: Some(Duration::from_secs(5)),
            max: Some(Duration::from_secs(20)),
        },
        headers: Vec::new(),
        path: Vec::new(),
        schedule: None,
    }
}

fn config() -> Config {
    Config {
        path: PathBuf::from("flowtest.toml"),
        probe_domain: "probe.test".into(),
        probe_key: SecretRef::Env("FAKE_KEY".into()),
        state_dir: PathBuf::from("state"),
        scenarios_dir: PathBuf::from("scenarios"),
        max_concurrency: 2,
        defaults: Defaults {
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            cleanup: true,
            sweep_after: Duration::from_secs(3600),
        },
        scenarios: Vec::new(),
        log_sources: Vec::new(),
        runbook: crate::core::runbook::Runbook::builtin().clone(),
        doctor: Default::default(),
        canary: Default::default(),
        store: Default::default(),
    }
}

/// One scenario's world: the runner, its fake mail system and store.
struct Lab {
    runner: Runner,
    mail: FakeMail,
    store: Arc<MemStore>,
    sender: Arc<FakeSender>,
    scenario: Scenario,
}

impl Lab {
    fn new(reply: Reply, events: Vec<Event>) -> Lab {
        let clock: SharedClock = Arc::new(TestClock::starting_at(t0()));
        let mail = FakeMail::new(installation(), Arc::clone(&clock), &["INBOX", "Junk"]);
        let store = Arc::new(MemStore::default());
        let runner = Runner::new(
            Arc::new(config()),
            key(),
            store.clone(),
            Arc::new(Progress::default()),
            None,
        )
        .with_clock(clock);
        let sender = Arc::new(FakeSender {
            mail: mail.clone(),
            reply,
            events,
            sent: Mutex::new(Vec::new()),
        });
        Lab {
            runner,
            mail,
            store,
            sender,
            scenario: scenario(),
        }
    }

    fn delivered_after(ms: u64, folder: &'static str) -> Lab {
        Lab::new(
            Reply::Accept,
            vec![Event::Deliver {
                after: Duration::from_millis(ms),
                folder,
            }],
        )
    }

    fn with_logs(mut self, logs: FakeLogs) -> Lab {
        self.runner = self.runner.with_logs(Arc::new(logs));
        self
    }

    async fn run(&self) -> RunResult {
        let p = Prepared::with_edges(
            self.scenario.clone(),
            self.sender.clone(),
            Arc::new(self.mail.clone()),
        );
        let r = self.runner.run_one(&p).await;
        assert_eq!(
            self.store.row(&r.probe_id).map(|row| row.status),
            Some(r.status.as_str().to_string()),
            "every result is stored"
        );
        assert_eq!(
            self.runner.progress.step(&r.scenario),
            None,
            "progress cleared"
        );
        r
    }

    fn remaining(&self) -> Vec<(String, u32)> {
        let w = self.mail.world();
        w.msgs.iter().map(|m| (m.folder.clone(), m.uid)).collect()
    }

    fn seed_probe(&self, folder: &str, id: Uuid, sent_at: DateTime<Utc>) {
        let raw = probe_raw(&installation(), id, sent_at);
        self.mail
            .world()
            .add(folder, raw, Some(sent_at + TimeDelta::seconds(90)), false);
    }
}

fn codes(r: &RunResult) -> Vec<FindingCode> {
    r.findings.iter().map(|f| f.code).collect()
}

#[tokio::test(start_paused = true)]
async fn delivered_in_time_with_latency_from_the_monotonic_clock() {
    let lab = Lab::delivered_after(1500, "INBOX");
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered, "{r:?}");
    assert_eq!(r.total_ms, Some(1500));
    assert_eq!(r.sent_at, t0());
    assert_eq!(r.detected_at, Some(t0() + TimeDelta::milliseconds(1500)));
    assert_eq!(r.folder.as_deref(), Some("INBOX"));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.stages[0].name, "submission");
    assert_eq!(r.timeout_ms, 30_000);
    assert_eq!(r.slo.target_ms, Some(5000));
    assert_eq!(r.cleanup.deleted, 1, "the own probe is removed");
    assert!(lab.remaining().is_empty());
    assert_eq!(lab.mail.world().logouts, 1);
    let sent = lab.sender.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    let text = String::from_utf8_lossy(&sent[0]);
    assert!(
        text.contains(&r.probe_id),
        "the probe is tagged with its id"
    );
}

#[tokio::test(start_paused = true)]
async fn later_than_the_slo_target_is_slow() {
    let r = Lab::delivered_after(6000, "INBOX").run().await;
    assert_eq!(r.status, Status::Slow);
    assert_eq!(r.total_ms, Some(6000));
}

#[tokio::test(start_paused = true)]
async fn filed_into_junk_is_delivered_spam() {
    let lab = Lab::delivered_after(800, "Junk");
    let r = lab.run().await;
    assert_eq!(r.status, Status::DeliveredSpam);
    assert_eq!(codes(&r), vec![FindingCode::SpamFolder]);
    assert_eq!(r.folder.as_deref(), Some("Junk"));
    assert_eq!(r.cleanup.deleted, 1);
}

#[tokio::test(start_paused = true)]
async fn nothing_by_the_deadline_is_lost() {
    let mut lab = Lab::new(Reply::Accept, Vec::new());
    lab.scenario.timeout = Duration::from_secs(10);
    let started = clock::instant();
    let r = lab.run().await;
    assert_eq!(r.status, Status::Lost);
    assert_eq!(
        clock::instant().duration_since(started),
        Duration::from_secs(10),
        "waited the timeout, no more"
    );
    assert_eq!(r.verdict_at - r.sent_at, TimeDelta::seconds(10));
    assert!(r.total_ms.is_none() && r.detected_at.is_none());
    assert_eq!(r.timeout_ms, 10_000);
}

#[tokio::test(start_paused = true)]
async fn a_refused_submission_is_rejected_without_waiting() {
    let lab = Lab::new(
        Reply::Reject {
            phase: SmtpPhase::Rcpt,
            code: 554,
            text: "5.7.1 <user@example.test>: Relay access denied",
        },
        Vec::new(),
    );
    let started = clock::instant();
    let r = lab.run().await;
    assert_eq!(r.status, Status::Rejected);
    assert_eq!(codes(&r), vec![FindingCode::RelayAccessDenied]);
    assert_eq!(r.findings[0].stage.as_deref(), Some("submission"));
    assert!(clock::instant().duration_since(started) < Duration::from_secs(1));
    assert!(r.accepted_at.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_failed_connection_is_send_failed() {
    let lab = Lab::new(
        Reply::Fail {
            phase: SmtpPhase::Connect,
            text: "mx.test:25: Connection refused",
        },
        Vec::new(),
    );
    let r = lab.run().await;
    assert_eq!(r.status, Status::SendFailed);
    assert_eq!(codes(&r), vec![FindingCode::NextHopRefused]);
    assert_eq!(
        r.findings[0].evidence,
        vec!["mx.test:25: Connection refused"]
    );
    assert_eq!(lab.mail.world().logouts, 1, "the session is still closed");
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_mailbox_is_fetch_failed_and_nothing_is_sent() {
    let lab = Lab::new(Reply::Accept, Vec::new()).with_logs(FakeLogs {
        bounce_after: None,
        saved_after: None,
        host_findings: vec![
            Finding::new(FindingCode::ImapAuthFailed, Some("dovecot"), "same cause"),
            Finding::new(
                FindingCode::MailboxPermissionDenied,
                Some("dovecot"),
                "perm",
            ),
        ],
        ..FakeLogs::default()
    });
    lab.mail
        .world()
        .open_errors
        .push_back(FetchError::Auth("NO [AUTHENTICATIONFAILED]".into()));
    let r = lab.run().await;
    assert_eq!(r.status, Status::FetchFailed);
    assert_eq!(
        codes(&r),
        vec![
            FindingCode::ImapAuthFailed,
            FindingCode::MailboxPermissionDenied
        ],
        "the logs' other cause joins"
    );
    assert_eq!(r.warnings, vec!["a log warning"]);
    assert!(lab.sender.sent.lock().unwrap().is_empty(), "no probe sent");
}

#[tokio::test(start_paused = true)]
async fn a_silent_sending_server_ends_at_the_probes_deadline() {
    let mut lab = Lab::new(Reply::Silent, Vec::new());
    lab.scenario.timeout = Duration::from_secs(7);
    let started = clock::instant();
    let r = lab.run().await;
    assert_eq!(r.status, Status::SendFailed, "{r:?}");
    assert_eq!(
        clock::instant().duration_since(started),
        Duration::from_secs(7),
        "the submission got the probe's deadline, not its own"
    );
    assert_eq!(lab.mail.world().logouts, 1, "cleanup still ran");
}

#[tokio::test(start_paused = true)]
async fn a_mailbox_that_refuses_or_speaks_garbage_is_not_an_auth_failure() {
    for (e, code) in [
        (
            FetchError::Refused("BYE shutting down".into()),
            FindingCode::ImapProtocolError,
        ),
        (
            FetchError::Protocol("unreadable greeting".into()),
            FindingCode::ImapProtocolError,
        ),
        (
            FetchError::Timeout("SELECT: no answer within 5.0 s".into()),
            FindingCode::ServiceError,
        ),
        (
            FetchError::Auth("NO [AUTHENTICATIONFAILED]".into()),
            FindingCode::ImapAuthFailed,
        ),
    ] {
        let lab = Lab::new(Reply::Accept, Vec::new());
        lab.mail.world().open_errors.push_back(e.clone());
        let r = lab.run().await;
        assert_eq!(r.status, Status::FetchFailed);
        assert_eq!(codes(&r), vec![code], "{e}");
        assert!(!r.findings[0].hint.is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_bounce_in_the_mailbox_is_bounced_and_removed() {
    let lab = Lab::new(
        Reply::Accept,
        vec![Event::Bounce {
            after: Duration::from_millis(700),
            folder: "INBOX",
        }],
    );
    let r = lab.run().await;
    assert_eq!(r.status, Status::Bounced);
    assert_eq!(codes(&r), vec![FindingCode::BouncedOther]);
    assert_eq!(r.cleanup.deleted, 1);
    assert!(lab.remaining().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_bounce_in_the_logs_ends_the_wait_early() {
    let lab = Lab::new(Reply::Accept, Vec::new()).with_logs(FakeLogs {
        bounce_after: Some(Duration::from_secs(2)),
        ..FakeLogs::default()
    });
    let started = clock::instant();
    let r = lab.run().await;
    assert_eq!(r.status, Status::Bounced);
    assert_eq!(r.log_status.as_deref(), Some("bounced"));
    assert_eq!(r.last_hop.as_deref(), Some("ec2"));
    assert_eq!(
        codes(&r),
        vec![FindingCode::RecipientUnknown],
        "the log finding joins"
    );
    assert_eq!(r.findings[0].stage.as_deref(), Some("ec2"));
    assert!(
        clock::instant().duration_since(started) < Duration::from_secs(3),
        "fail fast, not the 30 s timeout: {:?}",
        clock::instant().duration_since(started)
    );
}

#[tokio::test(start_paused = true)]
async fn the_watch_sees_a_failure_in_the_logs_within_150_ms_of_its_line() {
    // Off the watch's grid of looks, so that a look does not happen to come just after it.
    let written = Duration::from_millis(2_013);
    let lab = Lab::new(Reply::Accept, Vec::new()).with_logs(FakeLogs {
        bounce_after: Some(written),
        ..FakeLogs::default()
    });
    let started = clock::instant();
    let r = lab.run().await;
    assert_eq!(r.log_status.as_deref(), Some("bounced"));
    // The run ends SETTLE after the look that saw the bounce (nothing else takes time here).
    let seen = clock::instant().duration_since(started) - SETTLE;
    assert!(
        seen >= written,
        "seen at {seen:?}, before the line at {written:?}"
    );
    assert!(
        seen - written <= Duration::from_millis(150),
        "the line was written at {written:?}, the watch saw it at {seen:?}: the issue's 300 ms \
         from line to verdict needs the look within half of it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_look_that_takes_in_no_new_line_skips_the_timeline() {
    let logs = FakeLogs::default();
    let timelines = Arc::clone(&logs.timelines);
    let lab = Lab::delivered_after(2_000, "INBOX").with_logs(logs);
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered);
    // About 20 looks in 2 s took in nothing: one timeline while waiting, one for the result.
    assert_eq!(timelines.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn a_lost_session_is_reopened_and_the_probe_still_found() {
    // The first login again fails (server still restarting); the second works.
    let mut lab = Lab::new(
        Reply::Accept,
        vec![
            Event::DropSessions {
                after: Duration::from_millis(1000),
                refused: 1,
            },
            // Lands while no session is open: the new session must look from the old start.
            Event::Deliver {
                after: Duration::from_millis(1200),
                folder: "INBOX",
            },
        ],
    );
    lab.scenario.slo.target = None;
    let r = lab.run().await;
    // Lost at 1.0 s; retries at 1.5 s (fails) and 2.5 s (works, finds it at once).
    assert_eq!(r.status, Status::Delivered, "{r:?}");
    assert_eq!(r.total_ms, Some(2500));
    assert_eq!(lab.mail.world().opens, 3);
    assert!(
        r.warnings
            .iter()
            .any(|w| w == "reconnecting to the mailbox: IMAP connection failed: connection refused"),
        "{:?}",
        r.warnings
    );
    assert!(r.warnings.iter().any(|w| w.contains("re-established")));
    assert_eq!(r.cleanup.deleted, 1);
}

#[tokio::test(start_paused = true)]
async fn sessions_that_never_come_back_leave_the_probe_lost_and_nothing_cleaned() {
    let mut lab = Lab::new(
        Reply::Accept,
        vec![Event::DropSessions {
            after: Duration::from_millis(100),
            refused: 10,
        }],
    );
    lab.scenario.timeout = Duration::from_secs(5);
    let started = clock::instant();
    let r = lab.run().await;
    assert_eq!(r.status, Status::Lost);
    assert!(
        clock::instant().duration_since(started) <= Duration::from_secs(5),
        "bounded by the deadline"
    );
    assert_eq!(
        r.cleanup.note.as_deref(),
        Some("the IMAP session was lost; nothing cleaned")
    );
    let reconnecting = r
        .warnings
        .iter()
        .filter(|w| w.contains("reconnecting"))
        .count();
    assert_eq!(
        reconnecting, 1,
        "the same failure is one warning: {:?}",
        r.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_stored_lost_is_marked_late_and_removed() {
    let lab = Lab::delivered_after(500, "INBOX");
    let old = Uuid::now_v7();
    let old_sent = t0() - TimeDelta::minutes(10);
    lab.store.put(&old.to_string(), "lost", old_sent);
    lab.seed_probe("Junk", old, old_sent);
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered);
    assert_eq!(r.cleanup.marked_late, vec![old.to_string()]);
    assert_eq!(r.cleanup.swept, 1);
    assert_eq!(r.cleanup.deleted, 1);
    let row = lab.store.row(&old.to_string()).unwrap();
    assert_eq!(row.status, "lost", "the verdict stays");
    assert_eq!(row.late_seen_at, Some(old_sent + TimeDelta::seconds(90)));
    assert!(lab.remaining().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cleanup_leaves_probes_in_flight_and_mail_that_is_not_a_verified_probe() {
    let lab = Lab::delivered_after(500, "INBOX");
    // Another run's probe, sent 5 minutes ago, still awaited (sweep_after is an hour).
    let in_flight = Uuid::now_v7();
    let young = t0() - TimeDelta::minutes(5);
    lab.store.put(&in_flight.to_string(), "pending", young);
    lab.seed_probe("INBOX", in_flight, young);
    // A probe signed with another key (another installation, or forged).
    let foreign = Installation::new(
        ProbeKey::new(b"somebody else's key, long enough").unwrap(),
        "probe.test",
    );
    let forged = probe_raw(&foreign, Uuid::now_v7(), t0() - TimeDelta::hours(5));
    lab.mail.world().add("INBOX", forged, None, false);
    // A user's own mail.
    let plain = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n".to_vec();
    lab.mail.world().add("INBOX", plain, None, false);
    // Unknown to this store and two hours old: not a probe this store saw sent, left.
    lab.seed_probe("Junk", Uuid::now_v7(), t0() - TimeDelta::hours(2));
    // Recorded pending two days ago: never swept, only reported stale.
    let stale = Uuid::now_v7();
    lab.store
        .put(&stale.to_string(), "pending", t0() - TimeDelta::days(2));
    lab.seed_probe("Junk", stale, t0() - TimeDelta::days(2));
    // Its run finished without removing it: swept.
    let finished = Uuid::now_v7();
    lab.store.put(
        &finished.to_string(),
        "delivered",
        t0() - TimeDelta::hours(2),
    );
    lab.seed_probe("Junk", finished, t0() - TimeDelta::hours(2));
    let kept: Vec<_> = lab.remaining()[..5].to_vec();

    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered);
    assert_eq!(r.cleanup.deleted, 1);
    assert_eq!(r.cleanup.swept, 1, "only the finished probe");
    assert!(r.cleanup.marked_late.is_empty());
    assert_eq!(lab.remaining(), kept);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains(&stale.to_string()) && w.contains("still recorded pending")),
        "{:?}",
        r.warnings
    );
    assert_eq!((r.cleanup.replayed, r.cleanup.forged), (0, 0));
}

/// The message a run's probe was delivered as, from what the sender submitted.
fn submitted(lab: &Lab) -> Vec<u8> {
    lab.sender.sent.lock().unwrap()[0].clone()
}

#[tokio::test(start_paused = true)]
async fn a_replayed_copy_of_a_removed_probe_is_left_and_reported() {
    let lab = Lab::delivered_after(500, "INBOX");
    let first = lab.run().await;
    assert_eq!(first.cleanup.deleted, 1);
    let row = lab.store.row(&first.probe_id).unwrap();
    assert_eq!(
        row.probe_deleted
            .as_ref()
            .map(|at| (at.folder.as_str(), at.uid_validity)),
        Some(("INBOX", 7)),
        "the removal is recorded with its folder and UIDVALIDITY"
    );
    // Somebody appends the very same probe again, twice, into two folders.
    let raw = submitted(&lab);
    lab.mail.world().add("Junk", raw.clone(), None, false);
    lab.mail.world().add("INBOX", raw, None, false);
    let replays = lab.remaining();

    let r = lab.run().await;
    assert_eq!(r.cleanup.deleted, 1, "the new run's own probe");
    assert_eq!(r.cleanup.swept, 0);
    assert_eq!(r.cleanup.replayed, 2);
    assert_eq!(lab.remaining(), replays, "replays are left in place");
    let notes: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.starts_with("probe_replayed: "))
        .collect();
    assert_eq!(notes.len(), 2, "{:?}", r.warnings);
    assert!(notes[0].contains(&first.probe_id) && notes[0].contains("UID"));
}

#[tokio::test(start_paused = true)]
async fn a_genuine_tag_on_another_message_is_forged_and_left() {
    let lab = Lab::delivered_after(500, "INBOX");
    let first = lab.run().await;
    // The first probe's tag headers, moved onto a user's message with its own Message-ID.
    let text = String::from_utf8(submitted(&lab)).unwrap();
    let moved = text.replace(
        &format!("Message-ID: <{}@probe.test>", first.probe_id),
        "Message-ID: <holiday@friend.example>",
    );
    assert_ne!(moved, text);
    lab.mail
        .world()
        .add("INBOX", moved.into_bytes(), None, false);
    let planted = lab.remaining();

    let r = lab.run().await;
    assert_eq!(r.cleanup.deleted, 1);
    assert_eq!(r.cleanup.forged, 1);
    assert_eq!(r.cleanup.replayed, 0);
    assert_eq!(lab.remaining(), planted);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("probe_forged: INBOX UID ") && w.contains(&first.probe_id)),
        "{:?}",
        r.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn of_two_copies_delivered_at_once_the_lowest_uid_is_removed() {
    let lab = Lab::new(
        Reply::Accept,
        vec![
            Event::Deliver {
                after: Duration::from_millis(400),
                folder: "Junk",
            },
            Event::Deliver {
                after: Duration::from_millis(400),
                folder: "INBOX",
            },
        ],
    );
    let r = lab.run().await;
    assert_eq!(r.cleanup.deleted, 1);
    assert_eq!(r.cleanup.replayed, 1);
    let left = lab.remaining();
    assert_eq!(left.len(), 1);
    let row = lab.store.row(&r.probe_id).unwrap();
    let removed = row.probe_deleted.unwrap();
    assert!(removed.uid < left[0].1, "{removed:?} vs {left:?}");
}

#[tokio::test(start_paused = true)]
async fn a_changed_uidvalidity_deletes_nothing_and_says_why() {
    let lab = Lab::delivered_after(500, "INBOX");
    let finished = Uuid::now_v7();
    lab.store.put(
        &finished.to_string(),
        "delivered",
        t0() - TimeDelta::hours(1),
    );
    lab.seed_probe("Junk", finished, t0() - TimeDelta::hours(1));
    lab.mail.world().uid_validity_after_scan = Some(8);
    let r = lab.run().await;
    assert_eq!((r.cleanup.deleted, r.cleanup.swept), (0, 0));
    assert_eq!(lab.remaining().len(), 2, "nothing deleted");
    let note = r.cleanup.note.as_deref().unwrap_or_default();
    assert!(note.contains("UIDVALIDITY"), "{note}");
    // The claims were given back: the next run (UIDVALIDITY now stable) removes both.
    assert_eq!(
        lab.store.row(&finished.to_string()).unwrap().probe_deleted,
        None
    );
    let next = lab.run().await;
    assert_eq!(next.cleanup.swept, 2, "{:?}", next.cleanup);
    assert!(lab.remaining().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cleanup_off_deletes_nothing() {
    let mut lab = Lab::delivered_after(500, "INBOX");
    lab.scenario.cleanup = false;
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered);
    assert_eq!(
        r.cleanup.note.as_deref(),
        Some("cleanup is off for this scenario")
    );
    assert_eq!(lab.remaining().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_without_idle_is_a_warning() {
    let lab = Lab::delivered_after(500, "INBOX");
    lab.mail.world().idle = false;
    let r = lab.run().await;
    assert_eq!(r.status, Status::Delivered);
    assert_eq!(
        r.warnings[0],
        "the IMAP server does not offer IDLE: polling instead"
    );
    let lab = Lab::delivered_after(500, "INBOX");
    let r = lab.run().await;
    assert!(
        !r.warnings.iter().any(|w| w.contains("IDLE")),
        "{:?}",
        r.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn run_all_keeps_the_input_order() {
    let lab = Lab::delivered_after(300, "INBOX");
    let runner = Arc::new(lab.runner);
    let mut prepared = Vec::new();
    for name in ["b-second", "a-first"] {
        let mut s = scenario();
        s.name = name.into();
        prepared.push(Prepared::with_edges(
            s,
            lab.sender.clone(),
            Arc::new(lab.mail.clone()),
        ));
    }
    let results = runner.run_all(prepared).await;
    let names: Vec<_> = results.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(names, vec!["b-second", "a-first"]);
    assert!(results.iter().all(|r| r.status == Status::Delivered));
}

// Several worker threads: tasks are then scheduled in no set order, which is how a later
// scenario used to overtake an earlier one (and how CI's signal test caught it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_at_a_time_scenarios_are_sent_in_the_listed_order() {
    let lab = Lab::delivered_after(300, "INBOX");
    let mut one = config();
    one.max_concurrency = 1;
    let runner = Arc::new(Runner {
        config: Arc::new(one),
        ..lab.runner
    });
    let names = ["s0", "s1", "s2", "s3", "s4", "s5"];
    let prepared = names
        .iter()
        .map(|name| {
            let mut s = scenario();
            s.name = (*name).into();
            Prepared::with_edges(s, lab.sender.clone(), Arc::new(lab.mail.clone()))
        })
        .collect();
    let results = runner.run_all(prepared).await;
    assert!(results.iter().all(|r| r.status == Status::Delivered));
    let sent: Vec<String> = lab
        .sender
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            let line = text
                .lines()
                .find(|l| l.starts_with("X-Flowtest-Scenario:"))
                .expect("the probe names its scenario")
                .to_string();
            line["X-Flowtest-Scenario:".len()..].trim().to_string()
        })
        .collect();
    assert_eq!(sent, names);
}

/// With one scenario at a time, the next starts while the previous one's logs settle: its
/// place is given back once it holds no connection (once it is sent).
#[tokio::test(start_paused = true)]
async fn the_next_scenario_does_not_wait_for_the_logs_to_settle() {
    let logs = || FakeLogs {
        bounce_after: None,
        saved_after: Some(Duration::from_millis(250)),
        ..FakeLogs::default()
    };
    let elapsed_for = |n: usize| async move {
        let lab = Lab::delivered_after(300, "INBOX").with_logs(logs());
        let mut one = config();
        one.max_concurrency = 1;
        let runner = Arc::new(Runner {
            config: Arc::new(one),
            ..lab.runner
        });
        let prepared = (0..n)
            .map(|i| {
                let mut s = scenario();
                s.name = format!("s{i}");
                Prepared::with_edges(s, lab.sender.clone(), Arc::new(lab.mail.clone()))
            })
            .collect();
        let start = clock::instant();
        let results = runner.run_all(prepared).await;
        assert!(results.iter().all(|r| r.status == Status::Delivered));
        clock::instant().duration_since(start)
    };
    let one = elapsed_for(1).await;
    let two = elapsed_for(2).await;
    // Held through the settle (300 ms), two would take twice one.
    assert!(
        two + Duration::from_millis(250) <= one * 2,
        "one {one:?}, two {two:?}"
    );
}
