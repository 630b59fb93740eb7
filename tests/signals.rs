//! `flowtest run` stopped by SIGTERM or SIGINT against the lab: the probe in flight gets its
//! grace (and is cleaned up when it arrives), the scenario not yet started is `interrupted`
//! without sending, the results gathered are printed and stored, and the exit code is 3.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent. Injects `slow-mx`
//! (the MX answers RCPT 1 s late) so the first probe is being sent for a second, holding the
//! run's one place (`max_concurrency = 1`; a place is given back once a probe is sent): the
//! signal lands while the second scenario waits its turn, whatever the machine's load.
mod support;

use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::Value;
use support::flowtest::{lab_scenario, Cfg};
use support::{lab, run_with_timeout, COMMAND_TIMEOUT};

/// Polls the store until a probe is recorded `pending` (sent or being sent).
fn wait_for_pending(db: &std::path::Path) -> bool {
    for _ in 0..300 {
        if let Ok(c) = Connection::open(db) {
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM results WHERE status = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            if n > 0 {
                return true;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

fn stop_run_with(signal: &str) {
    let lab = lab();
    // Well within STOP_GRACE (2 s): the probe in flight is still accepted and arrives after
    // the signal.
    let _f = lab.fault("slow-mx", &["1"]);
    let scen = [
        lab_scenario("lab-inbound.toml", "sig-first", |t| t),
        lab_scenario("lab-inbound.toml", "sig-second", |t| t),
    ];
    let cfg = Cfg::new(
        &scen
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect::<Vec<_>>(),
    );
    // One scenario at a time: the second waits its turn while the first is being sent.
    let text = std::fs::read_to_string(cfg.path()).unwrap();
    let one = text.replace("max_concurrency = 4", "max_concurrency = 1");
    assert_ne!(
        one, text,
        "lab/flowtest.toml changed shape: update this test"
    );
    std::fs::write(cfg.path(), one).unwrap();
    let db = cfg.path().parent().unwrap().join("state/flowtest.db");

    let bin = env!("CARGO_BIN_EXE_flowtest");
    let config = cfg.path().display().to_string();
    let child = Command::new(lab.repo.join("lab/run"))
        .args([
            bin, "--config", &config, "run", "--all", "--format", "json", "--quiet",
        ])
        .env("FLOWTEST_LAB_DIR", &lab.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lab/run flowtest");
    assert!(
        wait_for_pending(&db),
        "the first probe was never recorded pending"
    );
    // lab/run execs into flowtest: the child's pid is flowtest's.
    let mut kill = Command::new("kill");
    kill.args([&format!("-{signal}"), &child.id().to_string()]);
    let sent = run_with_timeout(kill, b"", COMMAND_TIMEOUT);
    assert!(sent.status.success(), "kill -{signal} failed");
    let start = flowtest::clock::std_instant();
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert_eq!(
        out.status.code(),
        Some(3),
        "a stopped run is never OK\n{stderr}"
    );
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    assert!(
        stderr.contains(&format!("SIG{signal}: stopping")),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON printed ({e}): {stderr}"));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v:#}");
    let (first, second) = (&results[0], &results[1]);
    assert_eq!(first["scenario"], "sig-first");
    // The lab delivers well within the grace: the probe in flight is judged and cleaned up.
    assert_eq!(first["status"], "delivered", "{first:#}");
    assert_eq!(first["cleanup"]["deleted"], 1, "{first:#}");
    assert_eq!(second["scenario"], "sig-second");
    assert_eq!(second["status"], "interrupted", "{second:#}");
    assert!(second["submission"].is_null(), "nothing sent: {second:#}");

    let c = Connection::open(&db).unwrap();
    for r in results {
        let stored: String = c
            .query_row(
                "SELECT status FROM results WHERE probe_id = ?1",
                [r["probe_id"].as_str().unwrap()],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(Value::from(stored), r["status"]);
    }
    let pending: i64 = c
        .query_row(
            "SELECT count(*) FROM results WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 0);
}

#[test]
fn sigterm_lets_the_probe_in_flight_finish_and_sends_nothing_new() {
    stop_run_with("TERM");
}

#[test]
fn sigint_does_the_same() {
    stop_run_with("INT");
}
