//! The SQLite store's own cases: reopening, migrations from schemas 1 and 2, errors. The contract
//! both backends keep is in tests/store_postgres.rs, run against each.
use super::*;
use crate::core::verdict::RecordState;
use chrono::TimeZone;
use rusqlite::Connection;

#[test]
fn survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
    Store::open(dir.path())
        .unwrap()
        .record_result("p", "s", "delivered", t0, t0, Some(7), "{\"a\":1}")
        .unwrap();
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(
        again.get("p").unwrap().unwrap().result_json.as_deref(),
        Some("{\"a\":1}")
    );
}

fn at(uid: u32) -> CopyAt {
    CopyAt {
        folder: "INBOX".into(),
        uid_validity: 11,
        uid,
    }
}

#[test]
fn a_schema_1_database_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Connection::open(dir.path().join("flowtest.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE results (probe_id TEXT PRIMARY KEY, scenario TEXT NOT NULL,
               status TEXT NOT NULL, sent_at TEXT NOT NULL, finished_at TEXT, total_ms INTEGER,
               result_json TEXT, late_detected_at TEXT, late_total_ms INTEGER);
             INSERT INTO results (probe_id, scenario, status, sent_at)
               VALUES ('old', 's', 'lost', '2026-11-28T06:00:00Z');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let rec = s.probe_record("old").unwrap().unwrap();
    assert_eq!(rec.state, RecordState::Lost);
    assert_eq!(rec.probe_deleted, None);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
    assert_eq!(
        s.claim_deletion("old", CopyKind::Probe, &at(1), t0)
            .unwrap(),
        Claim::Claimed
    );
    drop(s);
    // Opening again (already migrated) is a no-op.
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(
        s.probe_record("old").unwrap().unwrap().probe_deleted,
        Some(at(1))
    );
}

/// A schema-2 database as the previous flowtest left it: one finished row, one pending.
const SCHEMA_2: &str = "
    CREATE TABLE results (probe_id TEXT PRIMARY KEY, scenario TEXT NOT NULL,
      status TEXT NOT NULL, sent_at TEXT NOT NULL, finished_at TEXT, total_ms INTEGER,
      result_json TEXT, late_detected_at TEXT, late_total_ms INTEGER,
      deleted_at TEXT, deleted_folder TEXT, deleted_uidvalidity INTEGER, deleted_uid INTEGER,
      bounce_deleted_at TEXT, bounce_deleted_folder TEXT, bounce_deleted_uidvalidity INTEGER,
      bounce_deleted_uid INTEGER);
    CREATE INDEX results_by_scenario ON results(scenario, sent_at);
    INSERT INTO results (probe_id, scenario, status, sent_at, finished_at, total_ms, result_json,
                         deleted_at, deleted_folder, deleted_uidvalidity, deleted_uid)
      VALUES ('done', 'lab-inbound', 'delivered', '2026-11-28T06:00:00.000000000Z',
              '2026-11-28T06:00:01.000000000Z', 555, '{\"timeout_ms\":30000}',
              '2026-11-28T06:00:01.000000000Z', 'INBOX', 11, 3);
    INSERT INTO results (probe_id, scenario, status, sent_at)
      VALUES ('open', 'lab-inbound', 'pending', '2026-11-28T06:01:00.000000000Z');
    PRAGMA user_version = 2;";

#[test]
fn a_schema_2_database_gets_locations_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join("flowtest.db"))
        .unwrap()
        .execute_batch(SCHEMA_2)
        .unwrap();
    let s = Store::open_sqlite(dir.path(), "onprem").unwrap();
    let done = s.get("done").unwrap().unwrap();
    assert_eq!(
        (done.status.as_str(), done.location.as_str(), done.total_ms),
        ("delivered", "default", Some(555))
    );
    assert_eq!(
        s.probe_record("done").unwrap().unwrap().probe_deleted,
        Some(at(3))
    );
    let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
    // Rows from before locations belong to `default`, not to this store's location.
    assert!(s
        .pending_before(t0 + chrono::Duration::hours(1))
        .unwrap()
        .is_empty());
    let default = Store::open(dir.path()).unwrap();
    assert_eq!(
        default
            .pending_before(t0 + chrono::Duration::hours(1))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        default.last_status("lab-inbound").unwrap().as_deref(),
        Some("delivered")
    );
    assert_eq!(s.last_status("lab-inbound").unwrap(), None);
    // New rows carry the store's location.
    s.record_pending("new", "lab-inbound", t0).unwrap();
    assert_eq!(s.get("new").unwrap().unwrap().location, "onprem");
    let version: i64 = Connection::open(dir.path().join("flowtest.db"))
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

#[test]
fn errors_name_the_file_and_keep_their_source() {
    use std::error::Error;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    drop(s);
    Connection::open(dir.path().join("flowtest.db"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let e = Store::open(dir.path()).err().expect("newer schema refused");
    let db = dir.path().join("flowtest.db");
    assert_eq!(
        e.to_string(),
        format!(
            "result store {}: written by a newer flowtest (schema 99, this one knows 3)",
            db.display()
        )
    );

    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let e = Store::open(&file).err().expect("a file is not a directory");
    assert!(
        e.to_string().contains("cannot create state directory"),
        "{e}"
    );
    assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
}

/// Processes started together on a fresh state directory (a deploy hook running several
/// scenarios at once) all open the store: none fails with "database is locked" while another
/// creates the file, turns WAL on or migrates.
#[test]
fn stores_opened_together_on_a_fresh_directory_all_open() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            let opened: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Store::open(dir.path()).map(|_| ())
                    })
                })
                .collect();
            for o in opened {
                let r = o.join().unwrap();
                assert!(r.is_ok(), "{}", r.unwrap_err());
            }
        });
    }
}
