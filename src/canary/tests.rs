//! The daemon end to end in one process: real scheduler, HTTP endpoints on 127.0.0.1 and a
//! webhook receiver, with a fake prober whose world the test flips between failing and
//! delivering, and a loader the test can break to exercise reload.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::alerts::{self, Alerts, RetryPolicy};
use super::daemon::{self, Control, Shared};
use super::metrics::Metrics;
use super::prober::{Generation, Loader, Place, Prober};
use crate::clock::{self, SharedClock};
use crate::config::Config;
use crate::core::canary::bare_result;
use crate::core::diagnosis::{Finding, FindingCode};
use crate::core::outcome::{RunResult, Status};
use crate::runner::ports::BoxFuture;

/// A world that either delivers or loses every probe, after `delay`.
struct FakeProber {
    ok: Arc<AtomicBool>,
    delay: Duration,
    clock: SharedClock,
    running: AtomicUsize,
    max_running: Arc<AtomicUsize>,
    count: Arc<AtomicUsize>,
    /// Signalled by `interrupt`: a probe waiting then ends `interrupted`.
    stop: Arc<tokio::sync::Notify>,
    /// At each `close`: how many probes were still running.
    closes: Arc<Mutex<Vec<usize>>>,
}

impl Prober for FakeProber {
    fn probe<'a>(&'a self, scenario: &'a str, place: Place) -> BoxFuture<'a, Option<RunResult>> {
        Box::pin(async move {
            // A fake probe holds its place until its verdict.
            let _place = place;
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            let interrupted = tokio::select! {
                _ = tokio::time::sleep(self.delay) => false,
                _ = self.stop.notified() => true,
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            let n = self.count.fetch_add(1, Ordering::SeqCst);
            let status = if interrupted {
                Status::Interrupted
            } else if self.ok.load(Ordering::SeqCst) {
                Status::Delivered
            } else {
                Status::Lost
            };
            let mut r = bare_result(scenario, status, Some(150 + n as i64));
            if status == Status::Lost {
                let mut f =
                    Finding::new(FindingCode::NextHopTimeout, Some("ec2"), "dell timed out");
                f.hint = "check the VPN".into();
                r.findings.push(f);
            }
            r.probe_id = format!("probe-{n}");
            r.verdict_at = self.clock.now();
            Some(r)
        })
    }
    fn interrupt(&self) {
        self.stop.notify_waiters();
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        let running = self.running.load(Ordering::SeqCst);
        self.closes.lock().unwrap().push(running);
        Box::pin(async {})
    }
}

struct FakeLoader {
    config_path: std::path::PathBuf,
    broken: AtomicBool,
    /// The result store stops answering.
    store_down: AtomicBool,
    ok: Arc<AtomicBool>,
    delay: Duration,
    max_running: Arc<AtomicUsize>,
    count: Arc<AtomicUsize>,
    closes: Arc<Mutex<Vec<usize>>>,
}

impl Loader for FakeLoader {
    fn load(&self) -> Result<Generation, String> {
        if self.broken.load(Ordering::SeqCst) {
            return Err("flowtest.toml:3: max_concurrency: must be at least 1".into());
        }
        let config = Arc::new(Config::load(&self.config_path).map_err(|e| e.to_string())?);
        let webhooks = Arc::new(alerts::resolve(&config.canary.webhooks)?);
        Ok(Generation {
            prober: Arc::new(FakeProber {
                ok: Arc::clone(&self.ok),
                delay: self.delay,
                clock: clock::system(),
                running: AtomicUsize::new(0),
                max_running: Arc::clone(&self.max_running),
                count: Arc::clone(&self.count),
                stop: Arc::new(tokio::sync::Notify::new()),
                closes: Arc::clone(&self.closes),
            }),
            config,
            webhooks,
        })
    }
    fn stored_status(&self, scenario: &str) -> Option<String> {
        (scenario == "stored").then(|| "delivered".into())
    }
    fn check_store(&self) -> Result<(), String> {
        if self.store_down.load(Ordering::SeqCst) {
            return Err(
                "store postgresql://flowtest@db.test/flowtest unavailable: connection refused"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A webhook receiver: every JSON body posted to it.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

const SCENARIO: &str = r#"
name = "NAME"
SCHEDULE
[sender]
kind = "smtp"
host = "127.0.0.1"
port = 2525
tls = "starttls"
mail_from = "canary@example.test"
rcpt_to = "box@example.test"
[receiver]
host = "127.0.0.1"
port = 1993
tls = "tls"
username = "box@example.test"
password_env = "FLOWTEST_CANARY_TEST_UNUSED"
"#;

/// The machine's clocks, with a wall clock the test can step (NTP stepping back, say).
#[derive(Default)]
struct SteppedClock {
    wall_offset_secs: std::sync::atomic::AtomicI64,
}

impl clock::Clock for SteppedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        clock::now() + chrono::TimeDelta::seconds(self.wall_offset_secs.load(Ordering::SeqCst))
    }
    fn instant(&self) -> tokio::time::Instant {
        clock::instant()
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    clock: Arc<SteppedClock>,
    base: String,
    loader: Arc<FakeLoader>,
    control: mpsc::Sender<Control>,
    done: tokio::task::JoinHandle<Result<(), String>>,
    hooks: Arc<Mutex<Vec<Value>>>,
}

async fn start(names: &[&str], delay: Duration, extra: &str) -> Harness {
    start_on(names, "every = \"1s\"", delay, extra).await
}

async fn start_on(names: &[&str], schedule: &str, delay: Duration, extra: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (hook, hooks) = receiver().await;
    std::fs::write(dir.path().join("hook.url"), &hook).unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    for n in names {
        std::fs::write(
            dir.path().join(format!("scenarios/{n}.toml")),
            SCENARIO.replace("NAME", n).replace("SCHEDULE", schedule),
        )
        .unwrap();
    }
    let cfg = format!(
        "state_dir = \"state\"\n{extra}\n[probe]\ndomain = \"probe.example.test\"\nkey_env = \"UNUSED\"\n\
         [canary]\nlocation = \"test-loc\"\nfailures_before_alert = 2\ngrace = \"5s\"\n\
         incident_dir = \"incidents\"\n\
         [[canary.webhook]]\nformat = \"generic\"\nurl_file = \"hook.url\"\n\
         [[canary.webhook]]\nformat = \"slack\"\nurl_file = \"hook.url\"\n"
    );
    let path = dir.path().join("flowtest.toml");
    std::fs::write(&path, cfg).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let loader = Arc::new(FakeLoader {
        config_path: path,
        broken: AtomicBool::new(false),
        store_down: AtomicBool::new(false),
        ok: Arc::new(AtomicBool::new(false)),
        delay,
        max_running: Arc::new(AtomicUsize::new(0)),
        count: Arc::new(AtomicUsize::new(0)),
        closes: Arc::new(Mutex::new(Vec::new())),
    });
    let metrics = Arc::new(Metrics::new("test-loc"));
    let policy = RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
    };
    let (alerts, _task) = Alerts::start(Arc::clone(&metrics), policy);
    let stepped = Arc::new(SteppedClock::default());
    let shared = Arc::new(
        Shared::new(
            metrics,
            alerts,
            Arc::clone(&stepped) as SharedClock,
            "test-loc".into(),
            dir.path().join("state"),
        )
        .with_store_check(Duration::from_millis(20)),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let app = super::http::router(Arc::clone(&shared));
    tokio::spawn(async move { axum::serve(l, app).await });
    let (control, rx) = mpsc::channel(4);
    let done = tokio::spawn(daemon::run(
        shared,
        Arc::clone(&loader) as Arc<dyn Loader>,
        rx,
    ));
    Harness {
        _dir: dir,
        clock: stepped,
        base,
        loader,
        control,
        done,
        hooks,
    }
}

async fn get(url: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::get(url).await.expect("HTTP GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

impl Harness {
    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let (status, text) = get(&format!("{}/metrics", self.base)).await;
        assert_eq!(status, 200);
        super::metrics::tests::value(&text, name, labels)
    }

    /// Poll until `cond` holds on the metrics, for at most `secs`.
    async fn wait_for(&self, secs: u64, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = clock::instant() + Duration::from_secs(secs);
        loop {
            let (_, text) = get(&format!("{}/metrics", self.base)).await;
            if cond(&text) {
                return text;
            }
            assert!(
                clock::instant() < deadline,
                "timed out waiting for {what}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn alerts(&self) -> Vec<Value> {
        self.hooks.lock().unwrap().clone()
    }

    async fn stop(self) -> Result<(), String> {
        self.control.send(Control::Shutdown).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("the daemon stops within its grace period")
            .expect("the daemon task did not panic")
    }
}

fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    super::metrics::tests::value(text, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_world_alerts_once_each_way_and_serves_metrics_health_and_page() {
    let h = start(&["flip", "stored"], Duration::from_millis(20), "").await;
    // Present from start-up: 0 for a scenario without a verdict, the stored one otherwise.
    let up_flip = h.metric("flowtest_up", &[("scenario", "flip")]).await;
    assert!(matches!(up_flip, Some(v) if v == 0.0), "{up_flip:?}");
    assert_eq!(
        h.metric("flowtest_config_reload_success", &[]).await,
        Some(1.0)
    );
    // Failing world: the second consecutive failure alerts.
    h.wait_for(10, "three lost probes", |t| {
        count(
            t,
            "flowtest_probes_total",
            &[("scenario", "flip"), ("status", "lost")],
        ) >= 3.0
    })
    .await;
    h.loader.ok.store(true, Ordering::SeqCst);
    let text = h
        .wait_for(10, "two delivered probes", |t| {
            count(
                t,
                "flowtest_probes_total",
                &[("scenario", "flip"), ("status", "delivered")],
            ) >= 2.0
        })
        .await;
    assert_eq!(
        count(
            &text,
            "flowtest_up",
            &[("scenario", "flip"), ("location", "test-loc")]
        ),
        1.0
    );
    assert!(
        count(
            &text,
            "flowtest_delivery_seconds_count",
            &[("scenario", "flip")]
        ) >= 2.0
    );
    assert!(
        count(
            &text,
            "flowtest_last_success_timestamp_seconds",
            &[("scenario", "flip")]
        ) > 1.0e9
    );
    // Alerts arrive on their own task: give the last one a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flips: Vec<Value> = h
        .alerts()
        .into_iter()
        .filter(|a| {
            a["scenario"] == "flip" || a["text"].as_str().is_some_and(|t| t.contains(" flip "))
        })
        .collect();
    let generic: Vec<&Value> = flips
        .iter()
        .filter(|a| a.get("transition").is_some())
        .collect();
    let slack: Vec<&Value> = flips.iter().filter(|a| a.get("blocks").is_some()).collect();
    let transitions: Vec<&str> = generic
        .iter()
        .map(|a| a["transition"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, ["failing", "recovered"], "{flips:?}");
    assert_eq!(generic[0]["status"], "lost");
    assert_eq!(generic[0]["finding"], "next_hop_timeout");
    assert_eq!(generic[0]["hint"], "check the VPN");
    assert_eq!(generic[0]["failing_stage"], "ec2");
    let draft = generic[0]["incident_draft"]
        .as_str()
        .expect("an incident draft path");
    assert!(std::path::Path::new(draft).is_file(), "{draft}");
    assert_eq!(
        generic[1]["incident_draft"],
        Value::Null,
        "a recovery writes no draft"
    );
    assert_eq!(generic[0]["location"], "test-loc");
    assert!(generic[0]["consecutive_failures"].as_u64().unwrap() >= 2);
    assert_eq!(slack.len(), 2, "the Slack webhook got both too: {flips:?}");
    assert_eq!(
        count(&text, "flowtest_up", &[("scenario", "stored")]),
        1.0,
        "the stored scenario delivers too by now"
    );

    let (status, body) = get(&format!("{}/healthz", h.base)).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, page) = get(&format!("{}/", h.base)).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<h2>flip <span class=\"ok\">delivered</span></h2>"),
        "{page}"
    );
    assert!(page.contains("<svg "));
    h.stop().await.unwrap();
}

/// A result store that stops answering (PostgreSQL down) makes `/healthz` fail with the
/// store's own error, and healthy again once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_while_the_result_store_does_not_answer() {
    let h = start(&["steady"], Duration::from_millis(10), "").await;
    let health = || async { get(&format!("{}/healthz", h.base)).await };
    let until = |want: u16| async move {
        let deadline = clock::instant() + Duration::from_secs(5);
        loop {
            let (status, body) = health().await;
            if status == want {
                return body;
            }
            assert!(
                clock::instant() < deadline,
                "healthz stayed {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    until(200).await;
    h.loader.store_down.store(true, Ordering::SeqCst);
    let body = until(503).await;
    assert_eq!(
        body,
        "result store not answering: store postgresql://flowtest@db.test/flowtest unavailable: connection refused\n"
    );
    h.loader.store_down.store(false, Ordering::SeqCst);
    assert_eq!(until(200).await, "ok\n");
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_keeps_probing_with_the_old_configuration() {
    let h = start(&["steady"], Duration::from_millis(10), "").await;
    h.wait_for(5, "a first verdict", |t| {
        count(t, "flowtest_probes_total", &[("scenario", "steady")]) >= 1.0
    })
    .await;
    h.loader.broken.store(true, Ordering::SeqCst);
    h.control.send(Control::Reload).await.unwrap();
    let text = h
        .wait_for(5, "the refused reload", |t| {
            super::metrics::tests::value(t, "flowtest_config_reload_success", &[]) == Some(0.0)
        })
        .await;
    let before = count(&text, "flowtest_probes_total", &[("scenario", "steady")]);
    h.wait_for(5, "probing to go on", |t| {
        count(t, "flowtest_probes_total", &[("scenario", "steady")]) >= before + 2.0
    })
    .await;
    // A good configuration again: accepted.
    h.loader.broken.store(false, Ordering::SeqCst);
    h.control.send(Control::Reload).await.unwrap();
    h.wait_for(5, "the accepted reload", |t| {
        super::metrics::tests::value(t, "flowtest_config_reload_success", &[]) == Some(1.0)
    })
    .await;
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_outliving_its_tick_is_never_doubled_and_finishes_at_shutdown() {
    let h = start(
        &["slow"],
        Duration::from_millis(2500),
        "max_concurrency = 4",
    )
    .await;
    let text = h
        .wait_for(8, "skipped ticks", |t| {
            count(t, "flowtest_ticks_skipped_total", &[("scenario", "slow")]) >= 2.0
        })
        .await;
    assert!(count(&text, "flowtest_probes_in_flight", &[]) <= 1.0);
    assert_eq!(
        h.loader.max_running.load(Ordering::SeqCst),
        1,
        "never two probes of one scenario"
    );
    // Shut down while a probe waits: it finishes (within the 5 s grace) and is counted.
    let finished_before = h.loader.count.load(Ordering::SeqCst);
    let count_ref = Arc::clone(&h.loader.count);
    let closes = Arc::clone(&h.loader.closes);
    h.stop().await.unwrap();
    assert_eq!(
        count_ref.load(Ordering::SeqCst),
        finished_before + 1,
        "the in-flight probe finished"
    );
    assert_eq!(
        *closes.lock().unwrap(),
        vec![0],
        "the prober closed once, after its last probe (idle connections)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_across_scenarios() {
    let h = start(
        &["a", "b", "c"],
        Duration::from_millis(1200),
        "max_concurrency = 2",
    )
    .await;
    let count_ref = Arc::clone(&h.loader.count);
    h.wait_for(10, "five verdicts", |t| {
        count(t, "flowtest_probes_total", &[("status", "lost")]) >= 1.0
            && count_ref.load(Ordering::SeqCst) >= 5
    })
    .await;
    assert_eq!(
        h.loader.max_running.load(Ordering::SeqCst),
        2,
        "three scenarios due at once run two at a time"
    );
    // At shutdown only the running probes finish; one queued for a slot is not started.
    let at_stop = count_ref.load(Ordering::SeqCst);
    h.stop().await.unwrap();
    let finished_after = count_ref.load(Ordering::SeqCst) - at_stop;
    assert!(
        finished_after <= 2,
        "{finished_after} probes finished after the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_is_present_before_any_verdict_from_the_store_or_zero() {
    // Once a year: no probe fires during the test.
    let h = start_on(
        &["stored", "fresh"],
        "cron = \"0 0 1 1 *\"",
        Duration::ZERO,
        "",
    )
    .await;
    h.wait_for(5, "up for both scenarios", |t| {
        super::metrics::tests::value(t, "flowtest_up", &[("scenario", "fresh")]).is_some()
    })
    .await;
    assert_eq!(
        h.metric(
            "flowtest_up",
            &[("scenario", "stored"), ("location", "test-loc")]
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        h.metric("flowtest_up", &[("scenario", "fresh")]).await,
        Some(0.0)
    );
    assert_eq!(
        h.loader.count.load(Ordering::SeqCst),
        0,
        "a cron schedule waits for its time"
    );
    let (_, page) = get(&format!("{}/", h.base)).await;
    assert!(
        page.contains("<h2>fresh <span class=\"none\">no verdict yet</span></h2>"),
        "{page}"
    );
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_stepped_back_does_not_stall_a_periodic_scenario() {
    let h = start(&["steady"], Duration::from_millis(10), "").await;
    h.wait_for(5, "a first verdict", |t| {
        count(t, "flowtest_probes_total", &[("scenario", "steady")]) >= 1.0
    })
    .await;
    h.clock.wall_offset_secs.store(-3600, Ordering::SeqCst);
    let before = h.loader.count.load(Ordering::SeqCst);
    let count_ref = Arc::clone(&h.loader.count);
    h.wait_for(6, "probing on a 1 s period after the step", |_| {
        count_ref.load(Ordering::SeqCst) >= before + 3
    })
    .await;
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_outliving_the_grace_is_interrupted_not_aborted() {
    // Each probe would wait a minute; the grace is 5 s.
    let h = start(&["long"], Duration::from_secs(60), "").await;
    h.wait_for(8, "a probe in flight", |t| {
        count(t, "flowtest_probes_in_flight", &[]) >= 1.0
    })
    .await;
    let count_ref = Arc::clone(&h.loader.count);
    let t0 = crate::clock::std_instant();
    h.stop().await.unwrap();
    let took = t0.elapsed();
    assert_eq!(
        count_ref.load(Ordering::SeqCst),
        1,
        "the interrupted probe returned its verdict instead of being aborted"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(12),
        "interrupted after the grace, not before and not after the extra wait: {took:?}"
    );
}
