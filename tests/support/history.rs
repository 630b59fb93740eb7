//! A synthetic probe history for report tests: a week of three scenarios (about 5,000 results)
//! with known outages, slow periods, late arrivals, spam placements and interrupted, error,
//! pending and failed probes, written into a real result store through `Store`'s API with real
//! `RunResult` JSON. The plan ([`plan`]) is kept so a test can compute every figure on its own.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use flowtest::core::diagnosis::FindingCode;
use flowtest::core::outcome::{SloReport, Stage, StageSource, Status};
use flowtest::core::verdict::{finding, fresh_result};
use flowtest::edge::store::Store;

/// One planned probe, with everything the report should make of it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub scenario: &'static str,
    pub probe_id: String,
    pub sent_at: DateTime<Utc>,
    /// `None`: only the pending row is written.
    pub status: Option<Status>,
    pub total_ms: Option<u64>,
    pub slo_target_ms: u64,
    pub timeout_ms: u64,
    pub stages: Vec<(&'static str, u64)>,
    /// (code, stage, message) of each finding.
    pub findings: Vec<(FindingCode, Option<&'static str>, &'static str)>,
    /// Marked late this long after sending.
    pub late_after_ms: Option<i64>,
}

/// The window every planned probe but a few border cases falls in: 2026-11-01 to 2026-11-08 UTC.
pub fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 8, 0, 0, 0).unwrap(),
    )
}

fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, h, m, 0).unwrap()
}

/// A small deterministic generator (64-bit LCG), so the plan is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

struct Shape {
    name: &'static str,
    every_min: i64,
    offset_min: i64,
    base_ms: u64,
    slo_target_ms: u64,
    timeout_ms: u64,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "alpha-inbound",
        every_min: 5,
        offset_min: 0,
        base_ms: 600,
        slo_target_ms: 2_000,
        timeout_ms: 60_000,
    },
    Shape {
        name: "beta-outbound",
        every_min: 5,
        offset_min: 2,
        base_ms: 1_200,
        slo_target_ms: 3_000,
        timeout_ms: 120_000,
    },
    Shape {
        name: "gamma-provider",
        every_min: 10,
        offset_min: 7,
        base_ms: 3_000,
        slo_target_ms: 8_000,
        timeout_ms: 300_000,
    },
];

const TIMEOUT_MSG: &str = "connect to 100.64.0.2[100.64.0.2]:2525: Connection timed out";

/// What happens to the probe of `shape` sent at `t` (the `n`-th of its scenario).
fn fate(shape: &Shape, n: u64, t: DateTime<Utc>, rng: &mut Lcg) -> Planned {
    let jitter = rng.next(shape.base_ms);
    let spike = if rng.next(50) == 0 {
        rng.next(4 * shape.base_ms)
    } else {
        0
    };
    let mut p = Planned {
        scenario: shape.name,
        probe_id: format!("{}-{n:05}", shape.name),
        sent_at: t,
        status: Some(Status::Delivered),
        total_ms: Some(shape.base_ms + jitter + spike),
        slo_target_ms: shape.slo_target_ms,
        timeout_ms: shape.timeout_ms,
        stages: Vec::new(),
        findings: Vec::new(),
        late_after_ms: None,
    };
    let fail = |p: &mut Planned, status, code, stage, msg| {
        p.status = Some(status);
        p.total_ms = None;
        p.findings.push((code, stage, msg));
    };
    match shape.name {
        "alpha-inbound" if t >= at(3, 4, 0) && t < at(3, 5, 0) && t != at(3, 4, 30) => {
            fail(
                &mut p,
                Status::Lost,
                FindingCode::NextHopTimeout,
                Some("ec2"),
                TIMEOUT_MSG,
            );
            if n.is_multiple_of(4) {
                p.late_after_ms = Some(7 * 60_000 + n as i64);
            }
        }
        "alpha-inbound" if t == at(3, 4, 30) || t == at(2, 8, 0) => {
            p.status = Some(Status::Interrupted)
        }
        "alpha-inbound" if t == at(4, 20, 0) => p.status = Some(Status::Error),
        "alpha-inbound" if t >= at(5, 10, 0) && t < at(5, 12, 0) => {
            p.total_ms = Some(2_500 + rng.next(1_500));
        }
        "alpha-inbound" if [at(6, 13, 0), at(6, 13, 5), at(6, 13, 10)].contains(&t) => fail(
            &mut p,
            Status::Rejected,
            FindingCode::RelayAccessDenied,
            Some("ec2"),
            "554 5.7.1 <flowtest@corp.test>: Relay access denied",
        ),
        "alpha-inbound" if t == at(7, 23, 55) => p.status = None,
        "beta-outbound" if n % 331 == 17 => fail(
            &mut p,
            Status::SendFailed,
            FindingCode::ProviderUnavailable,
            None,
            "SendGrid answered 503",
        ),
        "beta-outbound" if t >= at(2, 12, 0) && t <= at(2, 12, 10) => fail(
            &mut p,
            Status::FetchFailed,
            FindingCode::ImapAuthFailed,
            Some("dovecot"),
            "IMAP login refused: AUTHENTICATIONFAILED",
        ),
        "gamma-provider" if n == 500 => fail(
            &mut p,
            Status::Bounced,
            FindingCode::RecipientUnknown,
            Some("dell"),
            "550 5.1.1 <nobody@corp.test>: Recipient address rejected",
        ),
        _ => {}
    }
    let spam = n % 97 == 41 && p.status == Some(Status::Delivered);
    if spam {
        p.status = Some(Status::DeliveredSpam);
    }
    if let (Some(total), Some(Status::Delivered)) = (p.total_ms, p.status) {
        if total > shape.slo_target_ms {
            p.status = Some(Status::Slow);
        }
    }
    p.stages = stages(p.total_ms, n, p.status);
    p
}

/// Stages summing to the total for a delivered probe; a failed one passed submission only.
fn stages(total: Option<u64>, n: u64, status: Option<Status>) -> Vec<(&'static str, u64)> {
    let submission = 20 + n % 30;
    let Some(total) = total else {
        return match status {
            Some(Status::Lost) => vec![("submission", submission)],
            _ => Vec::new(),
        };
    };
    let mx = total / 10;
    let relay = total / 5;
    let lmtp = total / 20;
    let detect = total.saturating_sub(submission + mx + relay + lmtp);
    vec![
        ("submission", submission),
        ("ec2-mx", mx),
        ("tailscale-relay", relay),
        ("dovecot-lmtp", lmtp),
        ("detect", detect),
    ]
}

/// The whole planned history, in no particular order, with a few probes just outside the window.
pub fn plan() -> Vec<Planned> {
    let (from, to) = window();
    let mut rng = Lcg(0x5eed);
    let mut out = Vec::new();
    for shape in &SHAPES {
        let mut t = from + Duration::minutes(shape.offset_min);
        let mut n = 0u64;
        while t < to {
            out.push(fate(shape, n, t, &mut rng));
            t += Duration::minutes(shape.every_min);
            n += 1;
        }
    }
    // Border cases: the window is [from, to).
    for (i, t) in [from - Duration::milliseconds(1), to]
        .into_iter()
        .enumerate()
    {
        let mut p = fate(&SHAPES[1], 90_000 + i as u64, t, &mut rng);
        p.status = Some(Status::Lost);
        p.total_ms = None;
        out.push(p);
    }
    out
}

fn result_json(p: &Planned) -> String {
    let slo = SloReport {
        target_ms: Some(p.slo_target_ms),
        max_ms: Some(p.timeout_ms / 2),
    };
    let mut r = fresh_result(p.scenario, &p.probe_id, p.sent_at, slo, p.timeout_ms);
    r.status = p.status.unwrap_or(Status::Lost);
    r.total_ms = p.total_ms.map(|ms| ms as i64);
    r.detected_at = p
        .total_ms
        .map(|ms| p.sent_at + Duration::milliseconds(ms as i64));
    r.verdict_at = r
        .detected_at
        .unwrap_or(p.sent_at + Duration::milliseconds(p.timeout_ms as i64));
    r.folder = p.total_ms.map(|_| {
        if r.status == Status::DeliveredSpam {
            "Junk"
        } else {
            "INBOX"
        }
        .to_string()
    });
    r.stages = p
        .stages
        .iter()
        .map(|(name, ms)| Stage {
            name: name.to_string(),
            ms: *ms,
            source: if *name == "submission" || *name == "detect" {
                StageSource::Client
            } else {
                StageSource::Log
            },
            precision_ms: 1,
            bounded: false,
            detail: None,
        })
        .collect();
    r.findings = p
        .findings
        .iter()
        .map(|(code, stage, msg)| finding(*code, *stage, msg.to_string(), vec![]))
        .collect();
    serde_json::to_string(&r).expect("a result serializes")
}

/// Write the planned history into the result store in `state_dir`, as runs would: a pending
/// row first, then the result, then a late mark for a lost probe seen later.
pub fn write(state_dir: &Path, planned: &[Planned]) {
    let store = Store::open(state_dir).expect("open the result store");
    for p in planned {
        store
            .record_pending(&p.probe_id, p.scenario, p.sent_at)
            .expect("record pending");
        let Some(status) = p.status else { continue };
        let finished =
            p.sent_at + Duration::milliseconds(p.total_ms.unwrap_or(p.timeout_ms) as i64);
        store
            .record_result(
                &p.probe_id,
                p.scenario,
                status.as_str(),
                p.sent_at,
                finished,
                p.total_ms.map(|ms| ms as i64),
                &result_json(p),
            )
            .expect("record result");
        if let Some(after) = p.late_after_ms {
            let seen = p.sent_at + Duration::milliseconds(after);
            assert!(store.mark_late(&p.probe_id, seen).expect("mark late"));
        }
    }
}
