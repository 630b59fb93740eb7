use chrono::TimeZone;

use super::*;
use crate::edge::store::Store;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()
}

fn filter(scenarios: &[&str], locations: &[&str]) -> HistoryFilter {
    HistoryFilter {
        from: t0(),
        to: t0() + chrono::Duration::hours(1),
        scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
        locations: locations.iter().map(|s| s.to_string()).collect(),
    }
}

fn collect(reader: &HistoryReader, f: &HistoryFilter) -> (Vec<HistoryRow>, ScanStats) {
    let mut rows = Vec::new();
    let stats = reader
        .scan(f, |r| {
            rows.push(r.clone());
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    (rows, stats)
}

const JSON: &str = r#"{"location":"eu","timeout_ms":5000,"slo":{"target_ms":1000,"max_ms":null},
  "stages":[{"name":"submission","ms":12,"source":"client"},{"name":"ec2-mx","ms":30}],
  "findings":[{"code":"next_hop_timeout","stage":"ec2","message":"m","hint":"h","evidence":[]},
              {"code":"from_a_newer_flowtest","message":"x","hint":""}],
  "hops":[{"by":"x"}]}"#;

#[test]
fn rows_come_by_scenario_in_send_order_with_their_details() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let min = chrono::Duration::minutes;
    s.record_result("b1", "b", "lost", t0() + min(2), t0() + min(3), None, JSON)
        .unwrap();
    s.mark_late("b1", t0() + min(9)).unwrap();
    s.record_result(
        "a2",
        "a",
        "delivered",
        t0() + min(5),
        t0() + min(5),
        Some(40),
        "{}",
    )
    .unwrap();
    s.record_result(
        "a1",
        "a",
        "slow",
        t0() + min(1),
        t0() + min(1),
        Some(1500),
        JSON,
    )
    .unwrap();
    s.record_pending("a3", "a", t0() + min(7)).unwrap();
    // Outside the window (its end is exclusive).
    s.record_result("a0", "a", "delivered", t0() + min(60), t0(), Some(1), "{}")
        .unwrap();
    let reader = HistoryReader::open(dir.path()).unwrap();
    assert_eq!(reader.scenarios(&filter(&[], &[])).unwrap(), vec!["a", "b"]);
    let (rows, stats) = collect(&reader, &filter(&[], &[]));
    let ids: Vec<&str> = rows.iter().map(|r| r.probe_id.as_str()).collect();
    assert_eq!(ids, vec!["a1", "a2", "a3", "b1"]);
    assert_eq!(
        stats,
        ScanStats {
            rows: 4,
            skipped: 0,
            damaged: 0
        }
    );
    let a1 = &rows[0];
    assert_eq!(a1.status, Some(Status::Slow));
    assert_eq!((a1.location.as_str(), a1.total_ms), ("eu", Some(1500)));
    assert_eq!((a1.timeout_ms, a1.slo_target_ms), (5000, Some(1000)));
    assert_eq!(a1.stages.len(), 2);
    assert_eq!(a1.findings.len(), 1, "an unknown finding code is left out");
    assert_eq!(a1.findings[0].code, FindingCode::NextHopTimeout);
    assert_eq!(rows[1].location, DEFAULT_LOCATION);
    assert_eq!(rows[2].status, None, "pending");
    assert_eq!(rows[3].late.map(|l| l.total_ms), Some(7 * 60_000));

    let (rows, _) = collect(&reader, &filter(&["b", "zz"], &[]));
    assert_eq!(rows.len(), 1);
    let (rows, _) = collect(&reader, &filter(&[], &["eu"]));
    let ids: Vec<&str> = rows.iter().map(|r| r.probe_id.as_str()).collect();
    assert_eq!(ids, vec!["a1", "b1"]);
}

#[test]
fn damaged_rows_are_warnings_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.record_result("j", "a", "delivered", t0(), t0(), Some(5), "{not json")
        .unwrap();
    s.record_result(
        "k",
        "a",
        "delivered",
        t0(),
        t0(),
        Some(5),
        r#"{"stages":"x"}"#,
    )
    .unwrap();
    s.record_result("s", "a", "exploded", t0(), t0(), None, "{}")
        .unwrap();
    drop(s);
    let c = Connection::open(dir.path().join("flowtest.db")).unwrap();
    c.execute(
        "INSERT INTO results (probe_id, scenario, status, sent_at) VALUES ('t', 'a', 'lost', '2026-11-28T06:00:00.5+25:00')",
        [],
    )
    .unwrap();
    let reader = HistoryReader::open(dir.path()).unwrap();
    let (rows, stats) = collect(&reader, &filter(&[], &[]));
    assert_eq!(
        stats,
        ScanStats {
            rows: 2,
            skipped: 2,
            damaged: 2
        }
    );
    assert!(rows
        .iter()
        .all(|r| r.stages.is_empty() && r.total_ms == Some(5)));
}

#[test]
fn a_consumer_error_stops_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.record_result("a", "a", "delivered", t0(), t0(), Some(5), "{}")
        .unwrap();
    s.record_result("b", "a", "delivered", t0(), t0(), Some(5), "{}")
        .unwrap();
    let reader = HistoryReader::open(dir.path()).unwrap();
    let mut seen = 0;
    let e = reader
        .scan(&filter(&[], &[]), |_| {
            seen += 1;
            Err(std::io::Error::other("full"))
        })
        .unwrap_err();
    assert!(matches!(e, ScanError::Consumer(_)));
    assert_eq!(seen, 1);
}

#[test]
fn missing_and_newer_stores_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = HistoryReader::open(dir.path()).err().unwrap();
    assert!(
        e.to_string().contains("no probe has been stored yet"),
        "{e}"
    );
    drop(Store::open(dir.path()).unwrap());
    let c = Connection::open(dir.path().join("flowtest.db")).unwrap();
    c.execute_batch("PRAGMA user_version = 9;").unwrap();
    let e = HistoryReader::open(dir.path()).err().unwrap();
    assert!(
        e.to_string().contains("schema 9, this one reads up to 3"),
        "{e}"
    );
}

#[test]
fn queries_are_index_range_scans_without_a_sort() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let c = Connection::open(dir.path().join("flowtest.db")).unwrap();
    for sql in [SCENARIO_ROWS, NEXT_SCENARIO] {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(
                params!["a", "b", "c"][..sql.matches('?').count()].as_ref(),
                |r| r.get::<_, String>(3),
            )
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("; ");
        assert!(
            plan.contains("USING") && plan.contains("INDEX results_by_scenario"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
