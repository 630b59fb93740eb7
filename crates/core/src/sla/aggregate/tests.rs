use chrono::{TimeZone, Utc};

use super::*;
use crate::history::{HistoryStage, LateArrival};
use crate::outcome::Status;

fn opts() -> Options {
    Options {
        from: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap(),
        slo_target_percent: 99.0,
        zone: LogZone::UTC,
        max_incidents: 10,
    }
}

fn row(scenario: &str, location: &str, hour: u32, status: Option<Status>, ms: u64) -> HistoryRow {
    let delivered = status.is_some_and(Status::is_delivered);
    HistoryRow {
        probe_id: format!("{scenario}-{location}-{hour}"),
        scenario: scenario.into(),
        location: location.into(),
        status,
        sent_at: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
            + chrono::Duration::hours(hour.into()),
        total_ms: delivered.then_some(ms),
        timeout_ms: 5000,
        slo_target_ms: Some(1000),
        late: None,
        stages: if delivered {
            vec![
                HistoryStage {
                    name: "submission".into(),
                    ms: ms / 4,
                },
                HistoryStage {
                    name: "relay".into(),
                    ms: ms / 2,
                },
            ]
        } else {
            vec![]
        },
        findings: vec![],
    }
}

#[test]
fn interleaved_locations_are_reported_apart_in_order() {
    let d = Some(Status::Delivered);
    let rows = vec![
        row("a", "west", 0, d, 100),
        row("a", "east", 1, d, 200),
        row("a", "west", 2, Some(Status::Lost), 0),
        row("a", "east", 3, Some(Status::Slow), 2000),
        row("b", "default", 0, Some(Status::Interrupted), 0),
        row("b", "default", 30, None, 0),
    ];
    let r = aggregate(&rows, opts()).unwrap();
    let keys: Vec<(&str, &str)> = r
        .scenarios
        .iter()
        .map(|s| (s.scenario.as_str(), s.location.as_str()))
        .collect();
    assert_eq!(keys, vec![("a", "east"), ("a", "west"), ("b", "default")]);
    let east = &r.scenarios[0];
    assert_eq!((east.probes, east.delivered), (2, 2));
    assert_eq!(east.availability_percent, Some(100.0));
    assert_eq!(east.slo_percent, Some(50.0));
    assert_eq!(east.latency_ms.p50, Some(200));
    assert_eq!(east.latency_ms.max, Some(2000));
    assert_eq!(east.stages[0].name, "submission");
    assert_eq!(
        (east.stages[1].samples, east.stages[1].p99_ms),
        (2, Some(1000))
    );
    let west = &r.scenarios[1];
    assert_eq!(west.availability_percent, Some(50.0));
    assert_eq!(west.error_budget_left_percent, Some(100.0 - 50.0 * 100.0));
    assert_eq!(west.incidents.len(), 1);
    let b = &r.scenarios[2];
    assert_eq!((b.probes, b.interrupted, b.pending), (2, 1, 1));
    assert_eq!(b.availability_percent, None, "nothing decided");
    assert_eq!(b.error_budget_left_percent, None);
    assert_eq!(b.days.len(), 2, "two days with probes");
    assert_eq!(r.percentile_method, "nearest-rank");
}

#[test]
fn late_arrivals_count_as_failures_apart_from_lost() {
    let mut late = row("a", "x", 1, Some(Status::Lost), 0);
    late.late = Some(LateArrival {
        detected_at: late.sent_at + chrono::Duration::minutes(9),
        total_ms: 540_000,
    });
    let rows = vec![
        row("a", "x", 0, Some(Status::Delivered), 10),
        late,
        row("a", "x", 2, Some(Status::Lost), 0),
        row("a", "x", 3, Some(Status::DeliveredSpam), 30),
    ];
    let r = aggregate(&rows, opts()).unwrap();
    let s = &r.scenarios[0];
    assert_eq!(
        (s.lost, s.late, s.delivered, s.delivered_spam),
        (1, 1, 2, 1)
    );
    assert_eq!(s.availability_percent, Some(50.0));
    assert_eq!(s.slo_percent, Some(25.0));
    assert_eq!(
        s.latency_ms.max,
        Some(30),
        "a late arrival is no delivery latency"
    );
    assert_eq!(s.incidents[0].statuses, vec!["late", "lost"]);
}

#[test]
fn out_of_order_rows_are_an_error_not_wrong_figures() {
    let d = Some(Status::Delivered);
    let e = aggregate(&[row("b", "x", 0, d, 1), row("a", "x", 1, d, 1)], opts()).unwrap_err();
    assert!(matches!(e, AggregateError::ScenarioOrder { .. }), "{e}");
    let e = aggregate(&[row("a", "x", 5, d, 1), row("a", "x", 1, d, 1)], opts()).unwrap_err();
    assert!(e.to_string().contains("out of order"), "{e}");
    // The same hour at another location is fine.
    assert!(aggregate(&[row("a", "x", 5, d, 1), row("a", "y", 1, d, 1)], opts()).is_ok());
}
