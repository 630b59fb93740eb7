//! `flowtest run` killed with SIGKILL at random (seeded) moments against the lab: after every kill
//! the result store is intact and holds every result the process had printed, with the status it
//! printed; then one normal run records the rows the killed runs left `pending` as `lost` (and
//! late when their probe is in the mailbox).
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent. Injects no fault.
mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use support::flowtest::{flowtest, lab_scenario, Cfg};
use support::{describe, lab};

const KILLS: usize = 15;
const SEED: u64 = 0x5eed_f10e_7e57;
/// The scenario timeout the killed runs use, and the grace after it before a row left pending
/// is taken for a killed run's (the runner's STALE_GRACE).
const TIMEOUT: Duration = Duration::from_secs(3);
const STALE_GRACE: Duration = Duration::from_secs(15);

/// xorshift64: reproducible kill moments without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// (probe id, status) of every result in a JSON report, even one cut short by the kill: the
/// pretty-printed report puts each result's `status` on the line after its `probe_id`.
fn printed_results(text: &str) -> Vec<(String, String)> {
    let value = |line: &str, key: &str| {
        let rest = line.trim().strip_prefix(&format!("\"{key}\": \""))?;
        Some(rest.split('"').next()?.to_string())
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| Some((value(w[0], "probe_id")?, value(w[1], "status")?)))
        .collect()
}

fn status_in_store(db: &Connection, probe_id: &str) -> Option<String> {
    db.query_row(
        "SELECT status FROM results WHERE probe_id = ?1",
        [probe_id],
        |r| r.get(0),
    )
    .ok()
}

/// Rows in the store (0 before it exists).
fn row_count(db_path: &Path) -> u64 {
    if !db_path.exists() {
        return 0;
    }
    Connection::open(db_path)
        .and_then(|db| db.query_row("SELECT count(*) FROM results", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Wait until the store holds more than `before` rows (a probe recorded as sent), at most `max`.
fn wait_for_more_rows(db_path: &Path, before: u64, max: Duration) {
    let mut waited = Duration::ZERO;
    while row_count(db_path) <= before && waited < max {
        thread::sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
}

fn integrity(db_path: &Path) -> String {
    let db = Connection::open(db_path).unwrap();
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn killed_runs_leave_an_intact_store_with_everything_they_printed() {
    let lab = lab();
    let _g = lab.healthy();
    let edit = |t: String| {
        t.replace(
            "[sender]",
            &format!("timeout = \"{}s\"\n\n[sender]", TIMEOUT.as_secs()),
        )
    };
    let scen = [
        lab_scenario("lab-inbound.toml", "kill-inbound", edit),
        lab_scenario("lab-provider-inbound.toml", "kill-provider", edit),
    ];
    let cfg = Cfg::new(
        &scen
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect::<Vec<_>>(),
    );
    let db_path = cfg.path().parent().unwrap().join("state/flowtest.db");
    let out_dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_flowtest");
    let config = cfg.path().display().to_string();
    let mut rng = Rng(SEED);
    let mut printed_total = 0;
    for i in 0..KILLS {
        let rows_before = row_count(&db_path);
        let out_path = out_dir.path().join(format!("run-{i}.json"));
        let mut child = Command::new(lab.repo.join("lab/run"))
            .args([
                bin, "--config", &config, "run", "--all", "--format", "json", "--quiet",
            ])
            .env("FLOWTEST_LAB_DIR", &lab.dir)
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lab/run flowtest");
        // lab/run execs into flowtest: the child's pid is flowtest's once it runs. Every other
        // kill lands at a random moment of the run; the others a moment after its first probe
        // was recorded as sent, so that some probes are surely in flight or not yet cleaned up
        // when the process dies (the next run must find them late).
        if i % 2 == 0 {
            thread::sleep(Duration::from_millis(100 + rng.below(2500)));
        } else {
            wait_for_more_rows(&db_path, rows_before, Duration::from_secs(10));
            thread::sleep(Duration::from_millis(20 + rng.below(100)));
        }
        let _ = child.kill();
        let _ = child.wait();

        if db_path.exists() {
            assert_eq!(integrity(&db_path), "ok", "after kill {i}");
        }
        let text = std::fs::read_to_string(&out_path).unwrap();
        let printed = printed_results(&text);
        if printed.is_empty() {
            continue;
        }
        let db = Connection::open(&db_path).unwrap();
        for (probe_id, status) in &printed {
            assert_eq!(
                status_in_store(&db, probe_id).as_deref(),
                Some(status.as_str()),
                "kill {i}: printed {probe_id} {status} but the store differs\n{text}"
            );
        }
        printed_total += printed.len();
    }
    eprintln!("{KILLS} kills; {printed_total} printed results checked against the store");

    let db = Connection::open(&db_path).unwrap();
    let pending: Vec<String> = {
        let mut st = db
            .prepare("SELECT probe_id FROM results WHERE status = 'pending'")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        !pending.is_empty(),
        "no kill landed while a probe was in flight"
    );

    // Past every left-over's deadline and grace, one normal run resolves them.
    thread::sleep(TIMEOUT + STALE_GRACE + Duration::from_secs(1));
    let (out, v) = flowtest(&lab, &cfg.path(), &["run", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = v["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["status"] == "delivered"), "{v:#}");
    let marked_late: Vec<String> = results
        .iter()
        .flat_map(|r| r["cleanup"]["marked_late"].as_array().unwrap().clone())
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    for id in &pending {
        let (status, json, late): (String, String, Option<String>) = db
            .query_row(
                "SELECT status, result_json, late_detected_at FROM results WHERE probe_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(status, "lost", "{id}");
        assert!(
            json.contains("left pending by an interrupted run"),
            "{json}"
        );
        // Seen in the mailbox by this run: late; not seen (killed before it was sent): lost only.
        assert_eq!(late.is_some(), marked_late.contains(id), "{id}");
    }
    assert!(!marked_late.is_empty(), "no left-over probe was found late");
    assert_eq!(integrity(&db_path), "ok");
}
