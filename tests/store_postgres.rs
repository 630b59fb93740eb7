//! The result store against a real PostgreSQL (a throwaway cluster each test starts, see
//! support/postgres.rs) and against SQLite: the same contract for both backends, locations,
//! the history scan, migrations run by two starts at once, a lost connection and a server that
//! is gone, and no password in any output. The last test runs the real `flowtest run` in the lab
//! as two canaries with different locations writing one PostgreSQL history (shared lab lock).
mod support;

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use flowtest::config::secret::SecretRef;
use flowtest::config::store::{PgTls, PostgresConfig};
use flowtest::core::diagnosis::FindingCode;
use flowtest::core::history::{HistoryFilter, HistoryRow};
use flowtest::core::outcome::Status;
use flowtest::core::verdict::{CopyAt, CopyKind, RecordState};
use flowtest::edge::store::{Claim, PendingRow, Store};
use support::postgres::{Cluster, PASSWORD};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()
}

fn sec(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// The cluster's password, in a file only the test reads.
fn password_file(dir: &Path) -> SecretRef {
    let f = dir.join("pg.pass");
    std::fs::write(&f, format!("{PASSWORD}\n")).unwrap();
    SecretRef::File(f)
}

fn pg_config(url: String, password: Option<SecretRef>) -> PostgresConfig {
    PostgresConfig {
        url,
        password,
        tls: PgTls::Disable,
        connect_timeout: Duration::from_secs(5),
    }
}

/// Opens stores of one backend: each call, a store on the same history at `location`.
type Open<'a> = &'a dyn Fn(&str) -> Store;

fn at(uid: u32) -> CopyAt {
    CopyAt {
        folder: "INBOX".into(),
        uid_validity: 11,
        uid,
    }
}

fn pending_then_result_then_late(open: Open) {
    let s = open("default");
    s.check().expect("a fresh store answers its health check");
    s.record_pending("p1", "lab-inbound", t0()).unwrap();
    assert_eq!(s.get("p1").unwrap().unwrap().status, "pending");
    s.record_result("p1", "lab-inbound", "lost", t0(), t0() + sec(5), None, "{}")
        .unwrap();
    let seen = t0() + sec(42);
    assert!(s.mark_late("p1", seen).unwrap());
    assert!(!s.mark_late("p1", seen).unwrap(), "marked once only");
    let row = s.get("p1").unwrap().unwrap();
    assert_eq!(row.status, "lost", "the original verdict stays");
    assert_eq!(row.late_total_ms, Some(42_000));
    assert_eq!(row.late_detected_at, Some(seen));
    s.record_result("p2", "x", "delivered", t0(), t0(), Some(10), "{}")
        .unwrap();
    assert!(!s.mark_late("p2", seen).unwrap(), "never a delivered probe");
    assert!(!s.mark_late("nope", seen).unwrap());
    // A probe the run was stopped before seeing arrives later: late too, the verdict kept.
    s.record_result("p4", "y", "interrupted", t0(), t0() + sec(5), None, "{}")
        .unwrap();
    assert!(s.mark_late("p4", seen).unwrap());
    let row = s.get("p4").unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.late_total_ms),
        ("interrupted", Some(42_000))
    );
    assert_eq!(s.last_status("x").unwrap().as_deref(), Some("delivered"));
    s.record_pending("p3", "x", t0() + sec(60)).unwrap();
    assert_eq!(s.last_status("x").unwrap().as_deref(), Some("delivered"));
    assert_eq!(s.last_status("none").unwrap(), None);
    // A pending row written again keeps what it has; a result replaces it once.
    s.record_pending("p2", "x", t0() + sec(99)).unwrap();
    assert_eq!(s.get("p2").unwrap().unwrap().status, "delivered");
}

fn pending_rows_are_listed_and_resolved_once(open: Open) {
    let s = open("default");
    s.record_pending("old", "a", t0()).unwrap();
    s.record_pending("young", "b", t0() + sec(60)).unwrap();
    s.record_pending("done", "a", t0()).unwrap();
    s.record_result("done", "a", "delivered", t0(), t0() + sec(1), Some(5), "{}")
        .unwrap();
    assert_eq!(
        s.pending_before(t0() + sec(30)).unwrap(),
        vec![PendingRow {
            probe_id: "old".into(),
            scenario: "a".into(),
            sent_at: t0()
        }]
    );
    assert_eq!(s.pending_before(t0() + sec(61)).unwrap().len(), 2);
    assert!(s
        .resolve_pending("old", "lost", t0() + sec(90), "{\"x\":1}")
        .unwrap());
    assert!(!s
        .resolve_pending("old", "lost", t0() + sec(91), "{}")
        .unwrap());
    assert!(
        !s.resolve_pending("done", "lost", t0() + sec(91), "{}")
            .unwrap(),
        "a stored result wins"
    );
    let row = s.get("old").unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.sent_at), ("lost", t0()));
    assert_eq!(row.result_json.as_deref(), Some("{\"x\":1}"));
    assert!(s.mark_late("old", t0() + sec(120)).unwrap());
    assert_eq!(s.pending_before(t0() + sec(61)).unwrap().len(), 1);
}

fn a_removal_is_claimed_once_per_kind(open: Open) {
    let s = open("default");
    let claim = |id: &str, kind, uid| s.claim_deletion(id, kind, &at(uid), t0()).unwrap();
    assert_eq!(claim("p", CopyKind::Probe, 3), Claim::NoRecord);
    s.record_pending("p", "lab-inbound", t0()).unwrap();
    assert_eq!(claim("p", CopyKind::Probe, 3), Claim::Claimed);
    // Another canary sharing the history sees the claim too.
    let other = open("elsewhere");
    assert_eq!(
        other
            .claim_deletion("p", CopyKind::Probe, &at(3), t0())
            .unwrap(),
        Claim::SameCopy
    );
    assert_eq!(claim("p", CopyKind::Probe, 4), Claim::OtherCopy(at(3)));
    assert_eq!(claim("p", CopyKind::Bounce, 9), Claim::Claimed);
    s.record_result("p", "lab-inbound", "delivered", t0(), t0(), Some(5), "{}")
        .unwrap();
    let rec = s.probe_record("p").unwrap().unwrap();
    assert_eq!(rec.state, RecordState::Finished);
    assert_eq!(
        (rec.probe_deleted, rec.bounce_deleted),
        (Some(at(3)), Some(at(9)))
    );
    s.release_deletion("p", CopyKind::Probe, &at(4)).unwrap();
    assert_eq!(
        s.probe_record("p").unwrap().unwrap().probe_deleted,
        Some(at(3))
    );
    s.release_deletion("p", CopyKind::Probe, &at(3)).unwrap();
    let rec = s.probe_record("p").unwrap().unwrap();
    assert_eq!((rec.probe_deleted, rec.bounce_deleted), (None, Some(at(9))));
    assert_eq!(s.probe_record("nope").unwrap(), None);
}

/// A stored result as the runner serializes it, cut to what the history reads (and a bit more).
fn result_json(timeout_ms: u64, stage_ms: u64, finding: Option<&str>) -> String {
    let findings = match finding {
        Some(code) => format!(
            r#"[{{"code":"{code}","stage":"ec2-mx","host":"ec2","message":"refused","evidence":[],"hint":"start it","count":1}}]"#
        ),
        None => "[]".into(),
    };
    format!(
        r#"{{"scenario":"s","stages":[{{"name":"submission","ms":{stage_ms},"source":"client","precision_ms":1,"bounded":false}}],"findings":{findings},"timeout_ms":{timeout_ms},"slo":{{"target_ms":5000,"max_ms":null}},"warnings":[]}}"#
    )
}

fn scan_all(
    s: &Store,
    filter: &HistoryFilter,
) -> (Vec<HistoryRow>, flowtest::edge::store::ScanSummary) {
    let mut rows = Vec::new();
    let summary = s
        .scan(filter, &mut |r| {
            rows.push(r);
            ControlFlow::Continue(())
        })
        .unwrap();
    (rows, summary)
}

fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> HistoryFilter {
    HistoryFilter {
        from,
        to,
        scenarios: Vec::new(),
        locations: Vec::new(),
    }
}

fn locations_and_the_history_scan(open: Open) {
    let cloud = open("cloud");
    let onprem = open("onprem");
    // Written out of order, across two locations and two scenarios.
    cloud
        .record_result(
            "c2",
            "b",
            "delivered",
            t0() + sec(20),
            t0() + sec(21),
            Some(900),
            &result_json(30_000, 40, None),
        )
        .unwrap();
    onprem
        .record_result(
            "o1",
            "b",
            "lost",
            t0() + sec(5),
            t0() + sec(35),
            None,
            &result_json(30_000, 41, Some("next_hop_refused")),
        )
        .unwrap();
    cloud
        .record_result(
            "c1",
            "b",
            "slow",
            t0() + sec(10),
            t0() + sec(16),
            Some(6000),
            &result_json(30_000, 42, None),
        )
        .unwrap();
    cloud.record_pending("c3", "a", t0() + sec(1)).unwrap();
    onprem
        .record_result(
            "bad",
            "a",
            "delivered",
            t0() + sec(2),
            t0() + sec(3),
            Some(1),
            "{not json",
        )
        .unwrap();
    cloud
        .record_result(
            "outside",
            "a",
            "delivered",
            t0() - sec(1),
            t0(),
            Some(1),
            &result_json(1, 1, None),
        )
        .unwrap();
    assert!(onprem.mark_late("o1", t0() + sec(65)).unwrap());

    assert_eq!(cloud.get("c1").unwrap().unwrap().location, "cloud");
    assert_eq!(onprem.get("o1").unwrap().unwrap().location, "onprem");
    // Each location resolves its own pending rows and shows its own last verdict.
    assert_eq!(cloud.pending_before(t0() + sec(99)).unwrap().len(), 1);
    assert!(onprem.pending_before(t0() + sec(99)).unwrap().is_empty());
    assert_eq!(
        cloud.last_status("b").unwrap().as_deref(),
        Some("delivered")
    );
    assert_eq!(onprem.last_status("b").unwrap().as_deref(), Some("lost"));

    let (rows, summary) = scan_all(&onprem, &window(t0(), t0() + sec(60)));
    let order: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.scenario.as_str(),
                r.location.as_str(),
                r.probe_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![("a", "cloud", "c3"), ("b", "cloud", "c1"), ("b", "cloud", "c2"), ("b", "onprem", "o1")],
        "every location, in (scenario, location, sent_at) order; the bad row and the one before the window left out"
    );
    assert_eq!((summary.rows, summary.skipped), (4, 1));
    assert!(
        summary.warnings[0].contains("bad"),
        "{:?}",
        summary.warnings
    );
    assert_eq!((rows[0].status, rows[0].timeout_ms), (None, 0), "pending");
    let c1 = &rows[1];
    assert_eq!(c1.status, Some(Status::Slow));
    assert_eq!(
        (c1.total_ms, c1.timeout_ms, c1.slo_target_ms),
        (Some(6000), 30_000, Some(5000))
    );
    assert_eq!(c1.sent_at, t0() + sec(10));
    assert_eq!(
        (c1.stages[0].name.as_str(), c1.stages[0].ms),
        ("submission", 42)
    );
    let o1 = &rows[3];
    assert_eq!(o1.findings[0].code, FindingCode::NextHopRefused);
    assert_eq!(o1.findings[0].stage.as_deref(), Some("ec2-mx"));
    assert_eq!(o1.findings[0].hint, "start it");
    let late = o1.late.expect("marked late");
    assert_eq!((late.detected_at, late.total_ms), (t0() + sec(65), 60_000));

    // Filters: by location, by scenario, and a stop after the first row.
    let mut f = window(t0() - sec(10), t0() + sec(60));
    f.locations = vec!["cloud".into()];
    f.scenarios = vec!["a".into()];
    let ids: Vec<String> = scan_all(&cloud, &f)
        .0
        .into_iter()
        .map(|r| r.probe_id)
        .collect();
    assert_eq!(ids, ["outside", "c3"]);
    let mut seen = 0;
    let summary = cloud
        .scan(&window(t0(), t0() + sec(60)), &mut |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!((seen, summary.rows), (1, 1));
    // The store still answers after a scan stopped early.
    assert_eq!(cloud.get("c2").unwrap().unwrap().total_ms, Some(900));
}

/// Many rows come through in order however many batches they take.
fn a_long_history_streams(open: Open) {
    let s = open("bulk");
    let json = result_json(1000, 1, None);
    for i in 0..1_200 {
        s.record_result(
            &format!("p{i:05}"),
            "bulk",
            "delivered",
            t0() + sec(i),
            t0() + sec(i),
            Some(i),
            &json,
        )
        .unwrap();
    }
    let mut last: Option<DateTime<Utc>> = None;
    let mut n = 0;
    let summary = s
        .scan(&window(t0(), t0() + sec(10_000)), &mut |r| {
            assert!(last.is_none_or(|l| l < r.sent_at), "ordered by sent_at");
            last = Some(r.sent_at);
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!((n, summary.rows, summary.skipped), (1_200, 1_200, 0));
}

/// The contract every backend keeps, each part on a fresh history.
fn contract(fresh: &dyn Fn() -> Box<dyn Fn(&str) -> Store>) {
    pending_then_result_then_late(&*fresh());
    pending_rows_are_listed_and_resolved_once(&*fresh());
    a_removal_is_claimed_once_per_kind(&*fresh());
    locations_and_the_history_scan(&*fresh());
    a_long_history_streams(&*fresh());
}

#[test]
fn sqlite_keeps_the_store_contract() {
    let root = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    contract(&|| {
        n.set(n.get() + 1);
        let dir = root.path().join(format!("h{}", n.get()));
        Box::new(move |location: &str| Store::open_sqlite(&dir, location).unwrap())
    });
}

#[test]
fn postgres_keeps_the_store_contract() {
    let pg = Cluster::start();
    let secrets = tempfile::tempdir().unwrap();
    let password = password_file(secrets.path());
    let n = std::cell::Cell::new(0);
    contract(&|| {
        n.set(n.get() + 1);
        let db = format!("contract{}", n.get());
        pg.create_db(&db);
        let cfg = pg_config(pg.tcp_url(&db), Some(password.clone()));
        Box::new(move |location: &str| Store::connect_postgres(&cfg, location).unwrap())
    });
    // What is stored is what PostgreSQL holds, location and all.
    let rows = pg.psql("contract4", "SELECT probe_id || ' ' || location FROM results WHERE probe_id IN ('c1', 'o1') ORDER BY probe_id");
    assert_eq!(rows, "c1 cloud\no1 onprem");
    assert_eq!(
        pg.psql("contract4", "SELECT version FROM flowtest_schema"),
        "3"
    );
}

#[test]
fn concurrent_starts_migrate_once_and_a_newer_schema_is_refused() {
    let pg = Cluster::start();
    pg.create_db("race");
    let secrets = tempfile::tempdir().unwrap();
    let cfg = pg_config(pg.socket_url("race"), Some(password_file(secrets.path())));
    // Eight stores, each its own connection (its own server session), start at once on an empty
    // database: the advisory lock lets one create the schema; the others find it.
    let stores: Vec<Store> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let cfg = cfg.clone();
                s.spawn(move || Store::connect_postgres(&cfg, &format!("loc{i}")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    for (i, s) in stores.iter().enumerate() {
        s.record_pending(&format!("p{i}"), "race", t0()).unwrap();
    }
    assert_eq!(
        pg.psql("race", "SELECT count(DISTINCT location) FROM results"),
        "8"
    );
    assert_eq!(pg.psql("race", "SELECT count(*) FROM flowtest_schema"), "1");
    pg.psql("race", "UPDATE flowtest_schema SET version = 99");
    let e = Store::connect_postgres(&cfg, "x")
        .err()
        .expect("newer schema refused");
    assert!(
        e.to_string()
            .ends_with("written by a newer flowtest (schema 99, this one knows 3)"),
        "{e}"
    );
}

#[test]
fn a_lost_connection_is_replaced_and_a_gone_server_is_an_error_not_a_hang() {
    let pg = Cluster::start();
    pg.create_db("flaky");
    let secrets = tempfile::tempdir().unwrap();
    let cfg = pg_config(pg.tcp_url("flaky"), Some(password_file(secrets.path())));
    let s = Store::connect_postgres(&cfg, "here").unwrap();
    s.record_pending("before", "s", t0()).unwrap();
    assert!(
        pg.kill_sessions("flaky") >= 1,
        "the store's session was there"
    );
    // The next write finds its connection dead, reconnects and succeeds.
    s.record_result(
        "before",
        "s",
        "delivered",
        t0(),
        t0() + sec(1),
        Some(3),
        "{}",
    )
    .unwrap();
    assert_eq!(s.get("before").unwrap().unwrap().status, "delivered");

    s.check()
        .expect("the store answers the canary's health check");

    pg.stop();
    let e = s
        .record_pending("during", "s", t0())
        .expect_err("nothing to write to");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("result store {}: ", cfg.url)),
        "{text}"
    );
    let e = s
        .check()
        .expect_err("a stopped server fails the health check");
    assert!(
        e.to_string()
            .starts_with(&format!("result store {}: ", cfg.url)),
        "{e}"
    );
    pg.restart();
    s.check().expect("answers again once the server is back");
    s.record_pending("after", "s", t0()).unwrap();
    assert_eq!(s.get("after").unwrap().unwrap().location, "here");
    assert!(s.get("during").unwrap().is_none());
}

#[test]
fn passwords_stay_out_of_errors_and_debug_output() {
    let pg = Cluster::start();
    pg.create_db("secret");
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "not-the-password-5d1c\n").unwrap();
    let cfg = pg_config(pg.tcp_url("secret"), Some(SecretRef::File(wrong)));
    let e = Store::connect_postgres(&cfg, "x")
        .err()
        .expect("wrong password refused");
    for shown in [e.to_string(), format!("{e:?}"), format!("{cfg:?}")] {
        assert!(!shown.contains("not-the-password-5d1c"), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    // Without any password the server refuses too, and says so.
    let e = Store::connect_postgres(&pg_config(pg.tcp_url("secret"), None), "x")
        .err()
        .expect("a password is required");
    assert!(e.to_string().contains(&pg.tcp_url("secret")), "{e}");
    // verify-full never falls back to plaintext: this server has no TLS.
    let mut tls = pg_config(pg.tcp_url("secret"), Some(password_file(dir.path())));
    tls.tls = PgTls::VerifyFull { ca_file: None };
    let e = Store::connect_postgres(&tls, "x")
        .err()
        .expect("no TLS, no connection");
    assert!(e.to_string().to_lowercase().contains("tls"), "{e}");
}

#[test]
fn verify_full_connects_over_verified_tls_only() {
    let pg = Cluster::start();
    pg.create_db("tls");
    let ca = pg.require_tls();
    let dir = tempfile::tempdir().unwrap();
    let password = Some(password_file(dir.path()));
    let mut cfg = pg_config(pg.tcp_url("tls"), password.clone());
    // Plaintext is refused now (the server takes TCP over TLS only).
    let e = Store::connect_postgres(&cfg, "x")
        .err()
        .expect("hostssl only");
    assert!(e.to_string().contains("no pg_hba.conf entry"), "{e}");
    // Verified against the private CA, for the IP address in the URL and for a host name.
    cfg.tls = PgTls::VerifyFull {
        ca_file: Some(ca.clone()),
    };
    let s = Store::connect_postgres(&cfg, "secure").unwrap();
    s.record_pending("p", "tls", t0()).unwrap();
    assert_eq!(s.get("p").unwrap().unwrap().location, "secure");
    let mut by_name = cfg.clone();
    by_name.url = format!("postgres://flowtest@localhost:{}/tls", pg.port);
    assert!(Store::connect_postgres(&by_name, "secure").is_ok());
    // Without the CA, the web PKI roots do not vouch for this server: refused, not downgraded.
    cfg.tls = PgTls::VerifyFull { ca_file: None };
    let e = Store::connect_postgres(&cfg, "x")
        .err()
        .expect("unknown issuer");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

/// A configuration without the lab: one scenario whose mailbox is a closed loopback port (so a
/// run ends `fetch_failed` at once, nothing sent), written by canary `location` to `url`.
fn closed_port_config(dir: &Path, location: &str, url: &str, password: &Path) {
    let port = support::postgres::free_port();
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    std::fs::write(
        dir.join("flowtest.toml"),
        format!(
            "state_dir = \"state\"\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_KEY\"\n\
             [canary]\nlocation = {location:?}\n\
             [store]\nurl = {url:?}\npassword_file = {:?}\nsslmode = \"disable\"\n",
            password.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("scenarios/closed.toml"),
        format!(
            "name = \"closed\"\ntimeout = \"5s\"\n\
             [sender]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             allow_plaintext = true\nmail_from = \"a@b.test\"\nrcpt_to = \"c@d.test\"\n\
             [receiver]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nallow_plaintext = true\n\
             username = \"c@d.test\"\npassword_env = \"FT_PW\"\n"
        ),
    )
    .unwrap();
}

/// The real `flowtest run`, twice at once with two configurations (locations `east` and `west`)
/// pointed at one PostgreSQL history: each verdict is stored under its location, as printed.
#[test]
fn two_flowtest_runs_write_one_history_with_their_locations() {
    let pg = Cluster::start();
    pg.create_db("runs");
    let dir = tempfile::tempdir().unwrap();
    let SecretRef::File(pass) = password_file(dir.path()) else {
        unreachable!()
    };
    let url = pg.tcp_url("runs");
    let printed: Vec<(String, serde_json::Value)> = std::thread::scope(|s| {
        let runs: Vec<_> = ["east", "west"]
            .into_iter()
            .map(|location| {
                let cfg_dir = dir.path().join(location);
                closed_port_config(&cfg_dir, location, &url, &pass);
                s.spawn(move || {
                    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flowtest"));
                    cmd.arg("--config")
                        .arg(cfg_dir.join("flowtest.toml"))
                        .args(["run", "closed", "--format", "json", "--quiet"])
                        .env("FT_KEY", "0123456789abcdef0123456789abcdef")
                        .env("FT_PW", "pw");
                    let out = support::run_with_timeout(cmd, b"", Duration::from_secs(60));
                    assert_eq!(out.status.code(), Some(2), "{}", support::describe(&out));
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    (location.to_string(), support::flowtest::only(&v).clone())
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let reader =
        Store::connect_postgres(&pg_config(url, Some(SecretRef::File(pass))), "reader").unwrap();
    let far = chrono::Duration::days(3650);
    let (rows, summary) = scan_all(&reader, &window(t0() - far, t0() + far));
    assert_eq!((summary.rows, summary.skipped), (2, 0), "{summary:?}");
    for ((location, result), row) in printed.iter().zip(&rows) {
        assert_eq!(&row.location, location, "{rows:?}");
        assert_eq!(row.probe_id, result["probe_id"].as_str().unwrap());
        assert_eq!(row.status, Some(Status::FetchFailed));
        assert_eq!(result["status"], "fetch_failed");
        assert_eq!(row.timeout_ms, 5_000);
        let sent: DateTime<Utc> = result["sent_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(row.sent_at.timestamp_micros(), sent.timestamp_micros());
        let codes: Vec<String> = result["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect();
        let stored: Vec<String> = row.findings.iter().map(|f| f.code.to_string()).collect();
        assert_eq!(stored, codes);
    }
    assert_eq!(
        pg.psql(
            "runs",
            "SELECT string_agg(location || ':' || status, ',' ORDER BY location) FROM results"
        ),
        "east:fetch_failed,west:fetch_failed"
    );

    // `flowtest report` reads the same PostgreSQL history: one row per location, as stored.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flowtest"));
    cmd.arg("--config")
        .arg(dir.path().join("east/flowtest.toml"))
        .args(["report", "--since", "1d", "--format", "json"])
        .env("FT_KEY", "0123456789abcdef0123456789abcdef");
    let out = support::run_with_timeout(cmd, b"", Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", support::describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(&str, &str, u64, u64)> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["scenario"].as_str().unwrap(),
                r["location"].as_str().unwrap(),
                r["probes"].as_u64().unwrap(),
                r["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![("closed", "east", 1, 1), ("closed", "west", 1, 1)],
        "{report:#}"
    );
}

/// A lab configuration (one scenario, its own state directory) whose canary `location` writes to
/// the PostgreSQL history at `url`.
fn lab_config(location: &str, url: &str, password: &Path) -> support::flowtest::Cfg {
    use support::flowtest::{lab_scenario, Cfg};
    let (name, text) = lab_scenario("lab-inbound.toml", "lab-inbound", |t| t);
    let cfg = Cfg::new(&[(name.as_str(), text)]);
    let mut text = std::fs::read_to_string(cfg.path()).unwrap();
    text.push_str(&format!(
        "\n[canary]\nlocation = {location:?}\n\n[store]\nurl = {url:?}\npassword_file = {:?}\nsslmode = \"disable\"\n",
        password.display().to_string()
    ));
    std::fs::write(cfg.path(), text).unwrap();
    cfg
}

/// Needs the lab (`lab/up`; shared lock): `flowtest run` as two canaries, `cloud` and `onprem`,
/// at once against one PostgreSQL history (over its Unix socket, reachable from the lab's
/// namespace); each stored row matches what its run printed.
#[test]
fn two_canaries_write_one_postgres_history() {
    let lab = support::lab();
    let _g = lab.healthy();
    let pg = Cluster::start();
    pg.create_db("shared");
    let secrets = tempfile::tempdir().unwrap();
    let SecretRef::File(pass) = password_file(secrets.path()) else {
        unreachable!()
    };
    let url = pg.socket_url("shared");
    let configs = [
        ("cloud", lab_config("cloud", &url, &pass)),
        ("onprem", lab_config("onprem", &url, &pass)),
    ];
    let printed: Vec<(&str, serde_json::Value)> = std::thread::scope(|s| {
        let runs: Vec<_> = configs
            .iter()
            .map(|(location, cfg)| {
                let lab = &lab;
                s.spawn(move || {
                    let (out, v) =
                        support::flowtest::flowtest(lab, &cfg.path(), &["run", "lab-inbound"]);
                    assert_eq!(out.status.code(), Some(0), "{}", support::describe(&out));
                    (*location, support::flowtest::only(&v).clone())
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let store = Store::connect_postgres(
        &pg_config(pg.tcp_url("shared"), Some(SecretRef::File(pass.clone()))),
        "reader",
    )
    .unwrap();
    let (rows, summary) = scan_all(
        &store,
        &window(
            t0() - chrono::Duration::days(3650),
            t0() + chrono::Duration::days(3650),
        ),
    );
    assert_eq!((summary.rows, summary.skipped), (2, 0), "{summary:?}");
    for ((location, result), row) in printed.iter().zip(&rows) {
        assert_eq!(row.location, *location, "ordered by location: {rows:?}");
        assert_eq!(row.probe_id, result["probe_id"].as_str().unwrap());
        assert_eq!(row.scenario, "lab-inbound");
        assert_eq!(row.status, Some(Status::Delivered));
        assert_eq!(row.total_ms, result["total_ms"].as_u64());
        assert_eq!(row.timeout_ms, result["timeout_ms"].as_u64().unwrap());
        let sent: DateTime<Utc> = result["sent_at"].as_str().unwrap().parse().unwrap();
        // PostgreSQL keeps microseconds.
        assert_eq!(row.sent_at.timestamp_micros(), sent.timestamp_micros());
        let stages: Vec<(String, u64)> = result["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["ms"].as_u64().unwrap(),
                )
            })
            .collect();
        let stored: Vec<(String, u64)> =
            row.stages.iter().map(|s| (s.name.clone(), s.ms)).collect();
        assert_eq!(stored, stages);
    }
    assert_eq!(
        pg.psql(
            "shared",
            "SELECT string_agg(location || ':' || status, ',' ORDER BY location) FROM results"
        ),
        "cloud:delivered,onprem:delivered"
    );
}
