//! Incidents: runs of consecutive failed probes of one scenario at one location, with the
//! statuses and findings seen and the availability they cost, worst first. A delivered probe
//! ends a run; interrupted, error and pending probes neither end nor extend one. Only the worst
//! few are kept while scanning, so memory does not grow with the number of incidents.
//! Not here: deciding what a failure is (budget) or the whole-window figures.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::budget::{percent, Outcome};
use super::model::{Incident, IncidentFinding};
use crate::history::HistoryRow;

struct Run {
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    failed: u64,
    statuses: BTreeMap<&'static str, u64>,
    stages: BTreeMap<String, u64>,
    findings: Vec<IncidentFinding>,
}

impl Run {
    fn new(start: DateTime<Utc>) -> Run {
        Run {
            start,
            end: None,
            failed: 0,
            statuses: BTreeMap::new(),
            stages: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    fn add(&mut self, row: &HistoryRow, outcome: Outcome) {
        self.failed += 1;
        *self.statuses.entry(outcome.label(row.status)).or_default() += 1;
        for f in &row.findings {
            if let Some(stage) = &f.stage {
                *self.stages.entry(stage.clone()).or_default() += 1;
            }
            match self.findings.iter_mut().find(|k| k.code == f.code) {
                Some(known) => known.count += 1,
                None => self.findings.push(IncidentFinding {
                    code: f.code,
                    message: f.message.clone(),
                    hint: f.hint.clone(),
                    count: 1,
                }),
            }
        }
    }

    fn incident(self, decided: u64) -> Incident {
        let mut statuses: Vec<(&str, u64)> = self.statuses.into_iter().collect();
        statuses.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let stage = most_frequent(self.stages);
        let mut findings = self.findings;
        findings.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
        Incident {
            start: self.start,
            end: self.end,
            failed_probes: self.failed,
            statuses: statuses.into_iter().map(|(s, _)| s.to_owned()).collect(),
            stage,
            findings,
            availability_cost_percent: percent(self.failed, decided).unwrap_or(0.0),
        }
    }
}

/// The key with the highest count; the first in order among equals.
fn most_frequent(counts: BTreeMap<String, u64>) -> Option<String> {
    let mut best: Option<(String, u64)> = None;
    for (k, n) in counts {
        if best.as_ref().is_none_or(|(_, m)| n > *m) {
            best = Some((k, n));
        }
    }
    best.map(|(k, _)| k)
}

/// Worst first: most failed probes, then the earlier start.
fn rank(runs: &mut Vec<Run>, cap: usize) {
    runs.sort_by(|a, b| b.failed.cmp(&a.failed).then(a.start.cmp(&b.start)));
    runs.truncate(cap);
}

/// The incidents of one scenario at one location, fed probe by probe in send order.
pub struct Incidents {
    cap: usize,
    open: Option<Run>,
    closed: Vec<Run>,
}

impl Incidents {
    /// Keeps the `cap` worst incidents.
    pub fn new(cap: usize) -> Incidents {
        Incidents {
            cap,
            open: None,
            closed: Vec::new(),
        }
    }

    pub fn add(&mut self, row: &HistoryRow, outcome: Outcome) {
        if outcome.is_failure() {
            self.open
                .get_or_insert_with(|| Run::new(row.sent_at))
                .add(row, outcome);
        } else if let Outcome::Delivered { .. } = outcome {
            if let Some(mut run) = self.open.take() {
                run.end = Some(row.sent_at);
                self.closed.push(run);
                // The ranking is a total order, so pruning early keeps exactly the final worst.
                if self.closed.len() >= 2 * self.cap.max(8) {
                    rank(&mut self.closed, self.cap);
                }
            }
        }
    }

    /// The worst incidents, worst first; `decided` is the window's decided probes (what an
    /// incident's availability cost is a share of).
    pub fn finish(mut self, decided: u64) -> Vec<Incident> {
        self.closed.extend(self.open.take());
        rank(&mut self.closed, self.cap);
        self.closed
            .into_iter()
            .map(|r| r.incident(decided))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::FindingCode;
    use crate::history::HistoryFinding;
    use crate::outcome::Status;
    use chrono::TimeZone;

    fn row(min: u32, status: Status, finding: Option<FindingCode>) -> HistoryRow {
        HistoryRow {
            probe_id: format!("p{min}"),
            scenario: "s".into(),
            location: "default".into(),
            status: Some(status),
            sent_at: Utc.with_ymd_and_hms(2026, 11, 1, 0, min, 0).unwrap(),
            total_ms: None,
            timeout_ms: 5000,
            slo_target_ms: None,
            late: None,
            stages: vec![],
            findings: finding
                .map(|code| HistoryFinding {
                    code,
                    stage: Some("ec2".into()),
                    message: "m".into(),
                    hint: "h".into(),
                })
                .into_iter()
                .collect(),
        }
    }

    fn feed(inc: &mut Incidents, rows: &[HistoryRow]) {
        for r in rows {
            inc.add(r, Outcome::of(r));
        }
    }

    #[test]
    fn runs_of_failures_worst_first_and_capped() {
        let mut inc = Incidents::new(2);
        let t = Some(FindingCode::NextHopTimeout);
        feed(
            &mut inc,
            &[
                row(0, Status::Lost, t),
                row(1, Status::Delivered, None),
                row(2, Status::Rejected, None),
                row(3, Status::Interrupted, None), // neither ends nor extends the run
                row(4, Status::Lost, t),
                row(5, Status::Lost, t),
                row(6, Status::Slow, None),
                row(7, Status::Bounced, None),
            ],
        );
        let out = inc.finish(8);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].failed_probes, 3);
        assert_eq!(out[0].start.format("%M").to_string(), "02");
        assert_eq!(
            out[0].end.map(|e| e.format("%M").to_string()),
            Some("06".into())
        );
        assert_eq!(out[0].statuses, vec!["lost", "rejected"]);
        assert_eq!(out[0].stage.as_deref(), Some("ec2"));
        assert_eq!(out[0].findings[0].count, 2);
        assert!((out[0].availability_cost_percent - 37.5).abs() < 1e-9);
        // Tie on one failed probe: the earlier one; the open run at the end has no end.
        assert_eq!(out[1].start.format("%M").to_string(), "00");
        let mut inc = Incidents::new(5);
        feed(&mut inc, &[row(7, Status::Bounced, None)]);
        assert_eq!(inc.finish(1)[0].end, None);
    }

    #[test]
    fn pruning_keeps_the_worst() {
        let mut inc = Incidents::new(1);
        let mut rows = Vec::new();
        for i in 0..40u32 {
            rows.push(row(
                i,
                if i == 31 || i == 32 {
                    Status::Lost
                } else {
                    Status::Delivered
                },
                None,
            ));
        }
        for i in 0..40u32 {
            if i % 2 == 0 && i != 30 && i != 32 {
                rows[i as usize] = row(i, Status::Lost, None);
            }
        }
        feed(&mut inc, &rows);
        let out = inc.finish(40);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].failed_probes, 2, "{out:?}");
    }
}
