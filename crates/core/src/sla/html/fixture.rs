//! Small hand-made reports for the HTML report's unit tests: a week with a bad day, a day
//! without any delivery, hostile names, and the edge cases (no days, one day, no stages).
//! Not here: the large synthetic report the headless-browser check renders (tests/report_html.rs).
use chrono::{DateTime, NaiveDate, Utc};

use crate::diagnosis::FindingCode;
use crate::sla::model::{
    DayReport, Incident, IncidentFinding, Latency, ScenarioReport, SlaReport, StageLatency, Window,
};

/// Text a hostile scenario name, finding or hint could carry.
pub const HOSTILE: &str = "<script>alert(\"x\")</script>\"'&<img src=x onerror=alert(1)>";

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

pub fn date(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

pub fn lat(p50: u64, p95: u64) -> Latency {
    Latency {
        p50: Some(p50),
        p95: Some(p95),
        p99: Some(p95 + p95 / 10),
        max: Some(p95 * 2),
    }
}

/// A day of `probes` probes, `delivered` of them delivered, the rest lost.
pub fn day(d: &str, probes: u64, delivered: u64, lat: Option<Latency>) -> DayReport {
    let decided = probes;
    DayReport {
        date: date(d),
        probes,
        delivered,
        lost: probes - delivered,
        late: 0,
        failed: 0,
        availability_percent: (decided > 0).then(|| delivered as f64 * 100.0 / decided as f64),
        slo_percent: (decided > 0).then(|| delivered as f64 * 90.0 / decided as f64),
        latency_ms: lat.unwrap_or_default(),
    }
}

pub fn stage(name: &str, p50: u64) -> StageLatency {
    StageLatency {
        name: name.into(),
        samples: 100,
        p50_ms: Some(p50),
        p95_ms: Some(p50 * 3),
        p99_ms: Some(p50 * 5),
    }
}

pub fn incident(start: &str, end: Option<&str>, stage: Option<&str>, hint: &str) -> Incident {
    Incident {
        start: at(start),
        end: end.map(at),
        failed_probes: 12,
        statuses: vec!["lost".into()],
        stage: stage.map(Into::into),
        findings: vec![IncidentFinding {
            code: FindingCode::NextHopRefused,
            message: "connect to 100.64.0.2:2525: Connection refused".into(),
            hint: hint.into(),
            count: 12,
        }],
        availability_cost_percent: 0.12,
    }
}

/// A week of one scenario: a bad Wednesday, a Friday with no delivery at all, two incidents.
pub fn scenario(name: &str) -> ScenarioReport {
    let days = vec![
        day("2026-11-02", 1440, 1440, Some(lat(480, 900))),
        day("2026-11-03", 1440, 1439, Some(lat(510, 1100))),
        day("2026-11-04", 1440, 1300, Some(lat(700, 4200))),
        day("2026-11-05", 1440, 1440, Some(lat(470, 880))),
        day("2026-11-06", 60, 0, None),
        day("2026-11-07", 1440, 1440, Some(lat(490, 950))),
    ];
    ScenarioReport {
        scenario: name.into(),
        location: "eu-west".into(),
        probes: 7260,
        delivered: 7059,
        delivered_spam: 3,
        lost: 180,
        late: 11,
        failed: 10,
        interrupted: 2,
        errors: 1,
        pending: 0,
        availability_percent: Some(97.2),
        slo_percent: Some(95.1),
        latency_ms: lat(495, 1200),
        error_budget_left_percent: Some(-2700.0),
        stages: vec![
            stage("submit", 40),
            stage("ec2-mx", 10),
            stage("tailscale-relay", 60),
            stage("dovecot-lmtp", 5),
            stage("detect", 500),
            stage("end_to_end", 560),
        ],
        days,
        incidents: vec![
            incident(
                "2026-11-04T10:00:00Z",
                Some("2026-11-04T12:20:00Z"),
                Some("tailscale-relay"),
                "check the Tailscale link",
            ),
            incident("2026-11-06T23:00:00Z", None, None, "start Dovecot"),
        ],
    }
}

pub fn report(scenarios: Vec<ScenarioReport>) -> SlaReport {
    SlaReport {
        window: Window {
            from: at("2026-11-01T00:00:00Z"),
            to: at("2026-11-08T00:00:00Z"),
        },
        slo_target_percent: 99.9,
        percentile_method: "nearest-rank",
        time_zone: "UTC".into(),
        scenarios,
    }
}
