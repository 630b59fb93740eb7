//! The canary against the real lab through a kill -9 and a restart, then two SIGHUPs:
//! - killed while a probe is in flight (its row `pending` in the store), nothing recorded before
//!   is lost or changed, and the restarted canary resolves that row (recorded `lost`, its process
//!   having died) and, when the probe is found in the mailbox, marks it late and removes it: one
//!   row for the probe, reconciled, never a duplicate; no `pending` row is left at the end;
//! - SIGHUP with a broken configuration keeps probing with the running one
//!   (`flowtest_config_reload_success` 0, the log says why), SIGHUP with a fixed one reloads (1).
//!
//! The lab runs with `slow-dell 2` throughout: a probe then stays in flight two seconds after the
//! MX accepted it, so the kill lands before it is delivered (a healthy lab delivers, detects and
//! cleans up a probe within ~40 ms of the acceptance, and a kill that came later found the
//! probe's own cleanup done and nothing left to reconcile).
//!
//! Exclusive lab lock (the fault).
//! Tolerates other engineers' probes in the same mailbox (the store is this test's own).
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::flowtest::{lab_scenario, Cfg};
use support::http::{get, metric, wait_for};
use support::netns::{in_lab_ns, lab_free_port, LabProcess};
use support::{lab, Lab};

const SCENARIO: &str = "restart-inbound";
const USER: &str = "alice@corp.test";

/// One stored row: its status and whether a late arrival was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    status: String,
    late: bool,
}

/// Every row of the canary's store, by probe id (read-only; the canary may be writing).
fn rows(db: &Path) -> BTreeMap<String, Row> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    );
    let Ok(conn) = conn else {
        return BTreeMap::new();
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let Ok(mut st) =
        conn.prepare("SELECT probe_id, status, late_detected_at IS NOT NULL FROM results")
    else {
        return BTreeMap::new();
    };
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Row {
                status: r.get(1)?,
                late: r.get(2)?,
            },
        ))
    })
    .map(|it| it.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

fn canary(lab: &Lab, cfg: &Path, listen: &str, log: &Path) -> LabProcess {
    let cfg = cfg.display().to_string();
    LabProcess::start(
        lab,
        &[
            env!("CARGO_BIN_EXE_flowtest"),
            "--config",
            &cfg,
            "--log-format",
            "json",
            "-v",
            "canary",
            "--listen",
            listen,
        ],
        log,
    )
}

fn metrics(listen: &str) -> Result<String, String> {
    let addr = listen.to_string();
    match in_lab_ns(move || get(&addr, "/metrics")) {
        Some((200, text)) => Ok(text),
        other => Err(format!("{other:?}")),
    }
}

fn probes_total(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("flowtest_probes_total{"))
        .filter(|l| l.contains(&format!("scenario=\"{SCENARIO}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn reload_success(listen: &str, want: f64, secs: u64) -> String {
    wait_for(
        secs,
        &format!("flowtest_config_reload_success {want}"),
        || {
            let text = metrics(listen)?;
            match metric(&text, "flowtest_config_reload_success", &[]) {
                Some(v) if v == want => Ok(text),
                other => Err(format!("{other:?}")),
            }
        },
    )
}

/// Wait at most `secs` for `n` more verdicts of the scenario than it has now.
fn more_probes(listen: &str, n: f64, secs: u64) {
    let before = probes_total(&metrics(listen).unwrap_or_default());
    wait_for(secs, &format!("{n} more probes"), || {
        let now = probes_total(&metrics(listen)?);
        (now >= before + n).then_some(()).ok_or(format!("{now}"))
    });
}

/// Wait (bounded) for a probe in flight: its row `pending` and the MX has accepted it (so it
/// will arrive), with at least one verdict stored before it. Polled tightly (the fault keeps a
/// probe in flight two seconds). The probe id and every row at that moment.
fn in_flight_probe(lab: &Lab, db: &Path) -> (String, BTreeMap<String, Row>) {
    let deadline = ::flowtest::clock::std_instant() + Duration::from_secs(60);
    loop {
        let r = rows(db);
        let done = r.values().any(|row| row.status != "pending");
        let pending = r.iter().find(|(_, row)| row.status == "pending");
        if let (true, Some((id, _))) = (done, pending) {
            let accepted = format!("message-id=<{id}@");
            if lab.log("ec2-postfix.log").contains(&accepted) {
                return (id.clone(), r);
            }
        }
        assert!(
            ::flowtest::clock::std_instant() < deadline,
            "no probe in flight within 60 s: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_9_mid_probe_then_restart_loses_nothing_and_reconciles_the_probe_and_sighup_reloads() {
    let lab = lab();
    let _slow = lab.fault("slow-dell", &["2"]);
    let scenario = lab_scenario("lab-inbound.toml", SCENARIO, |t| {
        t.replacen(
            &format!("name = \"{SCENARIO}\""),
            &format!("name = \"{SCENARIO}\"\nevery = \"2s\"\ntimeout = \"5s\""),
            1,
        )
    });
    let cfg = Cfg::new(&[(SCENARIO, scenario.1)]);
    let good = std::fs::read_to_string(cfg.path()).unwrap()
        + "\n[canary]\nlocation = \"restart-lab\"\ngrace = \"10s\"\n";
    std::fs::write(cfg.path(), &good).unwrap();
    let db: PathBuf = cfg.path().with_file_name("state").join("flowtest.db");
    let listen = format!("127.0.0.1:{}", lab_free_port());

    // First run: kill -9 while a probe is in flight (after at least one verdict is stored).
    let mut first = canary(
        &lab,
        &cfg.path(),
        &listen,
        &cfg.path().with_file_name("first.log"),
    );
    let (in_flight, before) = in_flight_probe(&lab, &db);
    first.signal("-KILL");
    first.wait_exit(10).expect("kill -9 ends the canary");
    let after_kill = rows(&db);
    assert_eq!(
        after_kill.get(&in_flight).map(|r| r.status.as_str()),
        Some("pending"),
        "killed mid-probe: {after_kill:?}"
    );
    for (id, row) in before.iter().filter(|(_, r)| r.status != "pending") {
        assert_eq!(
            after_kill.get(id),
            Some(row),
            "stored before the kill: {id}"
        );
    }

    // Restart on the same store.
    let log = cfg.path().with_file_name("second.log");
    let mut second = canary(&lab, &cfg.path(), &listen, &log);
    reload_success(&listen, 1.0, 30);

    // A broken configuration on SIGHUP: refused, probing goes on with the running one.
    std::fs::write(
        cfg.path(),
        good.replace("max_concurrency = 4", "max_concurrency = 0"),
    )
    .unwrap();
    second.signal("-HUP");
    reload_success(&listen, 0.0, 20);
    more_probes(&listen, 2.0, 30);
    let said = second.output();
    assert!(
        said.lines()
            .any(|l| l.contains("configuration reload refused") && l.contains("max_concurrency")),
        "the log says why the reload was refused:\n{said}"
    );
    // Fixed: the next SIGHUP reloads.
    std::fs::write(cfg.path(), &good).unwrap();
    second.signal("-HUP");
    reload_success(&listen, 1.0, 20);
    more_probes(&listen, 1.0, 30);

    // The killed probe: resolved once past its timeout, then found late in the mailbox.
    let resolved = wait_for(
        90,
        "the killed probe's row resolved and marked late",
        || {
            let r = rows(&db);
            match r.get(&in_flight) {
                Some(row) if row.status == "lost" && row.late => Ok(row.clone()),
                other => Err(format!("{in_flight}: {other:?}")),
            }
        },
    );
    assert_eq!(resolved.status, "lost");

    second.signal("-TERM");
    let status = second
        .wait_exit(40)
        .expect("the canary stops after SIGTERM");
    assert!(status.success(), "exit {status:?}:\n{}", second.output());

    let end = rows(&db);
    let pending: Vec<&String> = end
        .iter()
        .filter(|(_, r)| r.status == "pending")
        .map(|(id, _)| id)
        .collect();
    assert!(pending.is_empty(), "stray pending rows: {pending:?}");
    for (id, row) in after_kill.iter().filter(|(id, _)| **id != in_flight) {
        let now = end.get(id).unwrap_or_else(|| panic!("row {id} lost"));
        assert_eq!(now.status, row.status, "{id} changed its verdict");
    }
    // Reconciled, not left behind: the late copy was removed from the mailbox.
    let left = lab
        .imap_search(USER, "INBOX", &format!("HEADER Message-ID \"{in_flight}\""))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        left.is_empty(),
        "probe {in_flight} still in the mailbox: {left:?}"
    );
}
