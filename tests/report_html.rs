//! The HTML SLA report in a real browser (Debian's headless Chromium): a synthetic month of three
//! scenarios, with a slow period, an outage, a day with no delivery, an incident still open at
//! the window's end and hostile text in names, findings and hints, renders with no console
//! message, no network request and no injected element; the screenshot and the page are kept in
//! `target/report-artifacts/` for CI to publish. The checks themselves are shown to catch a page
//! that does log and fetch.
mod support;

#[path = "support/chromium.rs"]
mod chromium;

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use flowtest::core::diagnosis::FindingCode;
use flowtest::core::sla::html;
use flowtest::core::sla::model::{
    DayReport, Incident, IncidentFinding, Latency, ScenarioReport, SlaReport, StageLatency, Window,
};

/// Text an attacker could get into a scenario file, a server reply or a runbook hint.
const HOSTILE: &str = "<script>alert(\"pwned\")</script>\"><img src=x onerror=alert(1)>";

/// Where CI picks the screenshot and the page up.
fn artifacts() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = target
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("report-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/report-artifacts");
    dir
}

fn start() -> DateTime<Utc> {
    "2026-10-01T00:00:00Z".parse().unwrap()
}

const DAYS: i64 = 30;
const PER_DAY: u64 = 1440;

/// One day's outcome as the generator decides it.
struct DayPlan {
    lost: u64,
    late: u64,
    failed: u64,
    /// p50 and p95 of the day's deliveries; none when nothing was delivered.
    p50: u64,
    p95: u64,
}

fn day_report(date: NaiveDate, plan: &DayPlan) -> DayReport {
    let bad = plan.lost + plan.late + plan.failed;
    let delivered = PER_DAY - bad;
    let latency = (delivered > 0).then_some(Latency {
        p50: Some(plan.p50),
        p95: Some(plan.p95),
        p99: Some(plan.p95 * 6 / 5),
        max: Some(plan.p95 * 2),
    });
    let slow = if plan.p95 > 4000 { PER_DAY / 20 } else { 0 };
    DayReport {
        date,
        probes: PER_DAY,
        delivered,
        lost: plan.lost,
        late: plan.late,
        failed: plan.failed,
        availability_percent: Some(delivered as f64 * 100.0 / PER_DAY as f64),
        slo_percent: Some(delivered.saturating_sub(slow) as f64 * 100.0 / PER_DAY as f64),
        latency_ms: latency.unwrap_or_default(),
    }
}

fn stage(name: &str, p50: u64, p95: u64) -> StageLatency {
    StageLatency {
        name: name.into(),
        samples: PER_DAY * DAYS as u64,
        p50_ms: Some(p50),
        p95_ms: Some(p95),
        p99_ms: Some(p95 * 3 / 2),
    }
}

fn incident(
    from_h: i64,
    hours: Option<i64>,
    stage: Option<&str>,
    finding: (FindingCode, &str, &str),
) -> Incident {
    let begin = start() + Duration::hours(from_h);
    let failed = hours.unwrap_or(24) as u64 * 60;
    Incident {
        start: begin,
        end: hours.map(|h| begin + Duration::hours(h)),
        failed_probes: failed,
        statuses: vec!["lost".into(), "rejected".into()],
        stage: stage.map(Into::into),
        findings: vec![IncidentFinding {
            code: finding.0,
            message: finding.1.into(),
            hint: finding.2.into(),
            count: failed,
        }],
        availability_cost_percent: failed as f64 * 100.0 / (PER_DAY * DAYS as u64) as f64,
    }
}

/// A month of one scenario: `plan(day)` decides each day; totals are summed from the days.
fn scenario(
    name: &str,
    location: &str,
    plan: impl Fn(i64) -> DayPlan,
    stages: Vec<StageLatency>,
    incidents: Vec<Incident>,
) -> ScenarioReport {
    let days: Vec<DayReport> = (0..DAYS)
        .map(|d| day_report((start() + Duration::days(d)).date_naive(), &plan(d)))
        .collect();
    let sum = |f: fn(&DayReport) -> u64| days.iter().map(f).sum::<u64>();
    let (probes, delivered) = (sum(|d| d.probes), sum(|d| d.delivered));
    let availability = delivered as f64 * 100.0 / probes as f64;
    ScenarioReport {
        scenario: name.into(),
        location: location.into(),
        probes: probes + 3,
        delivered,
        delivered_spam: 4,
        lost: sum(|d| d.lost),
        late: sum(|d| d.late),
        failed: sum(|d| d.failed),
        interrupted: 2,
        errors: 1,
        pending: 0,
        availability_percent: Some(availability),
        slo_percent: Some(availability - 0.4),
        latency_ms: Latency {
            p50: Some(520),
            p95: Some(1400),
            p99: Some(4800),
            max: Some(29_000),
        },
        error_budget_left_percent: Some(100.0 - (100.0 - availability) / 0.1 * 100.0),
        stages,
        days,
        incidents,
    }
}

/// A gentle daily wave of latency, so the lines are not flat.
fn wave(d: i64) -> u64 {
    [0, 30, 55, 40, 10, 25, 60][(d % 7) as usize]
}

fn synthetic() -> SlaReport {
    let path = |slow: u64| {
        vec![
            stage("submit", 45, 90),
            stage("ec2-mx", 10, 30),
            stage("tailscale-relay", 20 + slow, 60 + slow * 3),
            stage("dovecot-lmtp", 5, 20),
            stage("detect", 500, 510),
            stage("end_to_end", 600 + slow, 1400),
        ]
    };
    let gmail = scenario(
        "gmail-inbound",
        "eu-west",
        |d| DayPlan {
            lost: if d == 16 { 180 } else { u64::from(d % 9 == 0) },
            late: if d == 16 { 12 } else { 0 },
            failed: 0,
            p50: 480 + wave(d) + if (9..12).contains(&d) { 900 } else { 0 },
            p95: 950 + wave(d) * 3 + if (9..12).contains(&d) { 5200 } else { 0 },
        },
        path(120),
        vec![incident(
            16 * 24 + 9,
            Some(3),
            Some("tailscale-relay"),
            (
                FindingCode::NextHopRefused,
                "connect to 100.64.0.2[100.64.0.2]:2525: Connection refused",
                "check the Tailscale link and that Postfix listens on the on-prem host",
            ),
        )],
    );
    let sendgrid = scenario(
        "sendgrid-inbound",
        "eu-west",
        |d| DayPlan {
            lost: u64::from(d % 11 == 3),
            late: 0,
            failed: if d == 5 { 20 } else { 0 },
            p50: 1900 + wave(d) * 4,
            p95: 3400 + wave(d) * 10,
        },
        vec![
            stage("sendgrid-api", 300, 900),
            stage("sendgrid-delivery", 1100, 2200),
            stage("ec2-mx", 12, 40),
            stage("tailscale-relay", 25, 70),
            stage("dovecot-lmtp", 6, 20),
            stage("detect", 500, 510),
        ],
        vec![incident(
            5 * 24 + 14,
            Some(1),
            Some("sendgrid-api"),
            (
                FindingCode::RateLimited,
                "429 Too Many Requests",
                "lower the canary's rate or raise the SendGrid plan's limit",
            ),
        )],
    );
    let lab = scenario(
        &format!("lab-inbound {HOSTILE}"),
        HOSTILE,
        |d| DayPlan {
            lost: match d {
                22 => PER_DAY,
                29 => 500,
                _ => 0,
            },
            late: 0,
            failed: 0,
            p50: 550 + wave(d),
            p95: 700 + wave(d) * 2,
        },
        path(0),
        vec![
            incident(
                22 * 24,
                Some(24),
                Some(HOSTILE),
                (FindingCode::ServiceError, HOSTILE, HOSTILE),
            ),
            incident(
                29 * 24 + 16,
                None,
                None,
                (
                    FindingCode::ServiceError,
                    "dovecot: lmtp: Fatal: service(lmtp) died",
                    &format!("start Dovecot; see https://doc.dovecot.org/ {HOSTILE}"),
                ),
            ),
        ],
    );
    SlaReport {
        window: Window {
            from: start(),
            to: start() + Duration::days(DAYS),
        },
        slo_target_percent: 99.9,
        percentile_method: "nearest-rank",
        time_zone: "UTC".into(),
        scenarios: vec![gmail, sendgrid, lab],
    }
}

/// The synthetic report rendered and written where CI keeps it.
fn page() -> PathBuf {
    let path = artifacts().join("report.html");
    std::fs::write(&path, html::render(&synthetic())).expect("write report.html");
    path
}

#[test]
fn the_report_opens_in_chromium_without_console_messages_or_requests() {
    let page = page();
    let shot = artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let visit = chromium::visit(&page, &shot);
    assert!(
        visit.console.is_empty(),
        "console messages: {:#?}",
        visit.console
    );
    assert!(
        visit.page_requests.is_empty(),
        "the page made network requests: {:#?}",
        visit.page_requests
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let dimension = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((dimension(16), dimension(20)), (1280, 2000));
    // A blank page compresses to a few kilobytes; tables and charts do not.
    assert!(
        png.len() > 60_000,
        "screenshot suspiciously small: {} bytes",
        png.len()
    );
}

#[test]
fn the_browser_finds_the_charts_and_no_injected_element() {
    let dom = chromium::dom(&page());
    assert_eq!(dom.matches("<svg").count(), 12, "four charts per scenario");
    assert_eq!(dom.matches("<section class=\"scenario\"").count(), 3);
    for title in [
        "<title>End-to-end latency per day, gmail-inbound at eu-west</title>",
        "<title>Availability per day, sendgrid-inbound at eu-west</title>",
        "<title>Where the time goes, gmail-inbound at eu-west</title>",
        "<title>Incidents, gmail-inbound at eu-west</title>",
    ] {
        assert!(dom.contains(title), "no {title}");
    }
    assert!(!dom.contains("<script"), "a script element was injected");
    assert!(!dom.contains("<img"), "an img element was injected");
    assert!(dom.contains("lab-inbound &lt;script&gt;alert(\"pwned\")&lt;/script&gt;"));
    assert!(dom.contains("hint: check the Tailscale link"));
}

#[test]
fn the_checks_catch_a_page_that_logs_and_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><title>bad</title></head><body><p>bad</p>\
         <img src=\"https://example.com/pixel.png\"><script>console.error(\"boom\")</script></body></html>",
    )
    .unwrap();
    let visit = chromium::visit(&page, &dir.path().join("bad.png"));
    assert!(
        visit.console.iter().any(|l| l.contains("\"boom\"")),
        "console.error not seen: {visit:#?}"
    );
    assert_eq!(
        visit.page_requests,
        vec!["https://example.com/pixel.png".to_string()],
        "{visit:#?}"
    );
    // The browser's own traffic (update checks and the like) is told apart, never the page's.
    assert!(
        !visit
            .browser_requests
            .iter()
            .any(|u| u.contains("example.com")),
        "{visit:#?}"
    );
}
