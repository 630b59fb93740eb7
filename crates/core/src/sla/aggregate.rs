//! Streaming aggregation of the stored history into an [`SlaReport`]. Rows arrive grouped by
//! scenario and, within each (scenario, location), in send order (what a history reader's
//! `ORDER BY scenario, sent_at` or `ORDER BY scenario, location, sent_at` gives); only the
//! current scenario's values are held, so memory is bounded by the largest scenario's window,
//! never the whole history. Not here: reading the history (the edge) or rendering.
use chrono::{DateTime, Utc};

use super::budget::{error_budget_left_percent, Outcome, Tally};
use super::days::Days;
use super::incidents::Incidents;
use super::model::{ScenarioReport, SlaReport, StageLatency, Window};
use super::percentile;
use crate::history::HistoryRow;
use crate::logs::LogZone;

/// Incidents a report keeps per scenario and location.
pub const MAX_INCIDENTS: usize = 10;

/// What the report is asked for; the window is what the rows were selected by.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The availability objective, in percent (e.g. 99.9).
    pub slo_target_percent: f64,
    /// Days are cut at midnight in this zone, which the report names (`UTC`, `+02:00`,
    /// `Europe/Berlin`).
    pub zone: LogZone,
    /// Incidents kept per scenario and location, worst first.
    pub max_incidents: usize,
}

/// The rows did not come in the order the aggregation relies on: a reader's bug, reported
/// rather than turned into wrong figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    #[error("history out of order: scenario {next:?} after {previous:?}")]
    ScenarioOrder { previous: String, next: String },
    #[error("history out of order: {scenario} at {location}: probe sent {next} after one sent {previous}")]
    TimeOrder {
        scenario: String,
        location: String,
        previous: DateTime<Utc>,
        next: DateTime<Utc>,
    },
}

struct StageValues {
    name: String,
    values: Vec<u64>,
}

/// One scenario at one location while its rows stream by.
struct Group {
    location: String,
    last_sent: DateTime<Utc>,
    tally: Tally,
    latencies: Vec<u64>,
    stages: Vec<StageValues>,
    days: Days,
    incidents: Incidents,
}

impl Group {
    fn new(location: String, opts: &Options) -> Group {
        Group {
            location,
            last_sent: DateTime::<Utc>::MIN_UTC,
            tally: Tally::default(),
            latencies: Vec::new(),
            stages: Vec::new(),
            days: Days::new(opts.zone.clone()),
            incidents: Incidents::new(opts.max_incidents),
        }
    }

    fn add(&mut self, row: &HistoryRow) {
        let outcome = Outcome::of(row);
        self.tally.add(outcome);
        // Latency is measured on delivered probes only: a lost probe has none within its timeout.
        let latency = match outcome {
            Outcome::Delivered { .. } => row.total_ms,
            _ => None,
        };
        if latency.is_some() {
            self.latencies.extend(latency);
            for s in &row.stages {
                match self.stages.iter_mut().find(|k| k.name == s.name) {
                    Some(known) => known.values.push(s.ms),
                    None => self.stages.push(StageValues {
                        name: s.name.clone(),
                        values: vec![s.ms],
                    }),
                }
            }
        }
        self.days.add(row.sent_at, outcome, latency);
        self.incidents.add(row, outcome);
        self.last_sent = row.sent_at;
    }

    fn report(mut self, scenario: &str, opts: &Options) -> ScenarioReport {
        let t = self.tally;
        let availability = t.availability_percent();
        let stages = self
            .stages
            .into_iter()
            .map(|mut s| {
                let l = percentile::latency(&mut s.values);
                StageLatency {
                    name: s.name,
                    samples: s.values.len() as u64,
                    p50_ms: l.p50,
                    p95_ms: l.p95,
                    p99_ms: l.p99,
                }
            })
            .collect();
        ScenarioReport {
            scenario: scenario.to_owned(),
            location: self.location,
            probes: t.probes,
            delivered: t.delivered,
            delivered_spam: t.delivered_spam,
            lost: t.lost,
            late: t.late,
            failed: t.failed,
            interrupted: t.interrupted,
            errors: t.errors,
            pending: t.pending,
            availability_percent: availability,
            slo_percent: t.slo_percent(),
            latency_ms: percentile::latency(&mut self.latencies),
            error_budget_left_percent: error_budget_left_percent(
                availability,
                opts.slo_target_percent,
            ),
            stages,
            days: self.days.finish(),
            incidents: self.incidents.finish(t.decided()),
        }
    }
}

/// Builds the report from rows pushed one at a time.
pub struct Aggregator {
    opts: Options,
    scenario: Option<String>,
    /// The current scenario's locations (a handful), in order of first appearance.
    groups: Vec<Group>,
    done: Vec<ScenarioReport>,
}

impl Aggregator {
    pub fn new(opts: Options) -> Aggregator {
        Aggregator {
            opts,
            scenario: None,
            groups: Vec::new(),
            done: Vec::new(),
        }
    }

    pub fn push(&mut self, row: &HistoryRow) -> Result<(), AggregateError> {
        if self.scenario.as_deref() != Some(row.scenario.as_str()) {
            if let Some(previous) = &self.scenario {
                if row.scenario < *previous {
                    return Err(AggregateError::ScenarioOrder {
                        previous: previous.clone(),
                        next: row.scenario.clone(),
                    });
                }
            }
            self.close_scenario();
            self.scenario = Some(row.scenario.clone());
        }
        let index = match self.groups.iter().position(|g| g.location == row.location) {
            Some(i) => i,
            None => {
                self.groups
                    .push(Group::new(row.location.clone(), &self.opts));
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[index];
        if row.sent_at < group.last_sent {
            return Err(AggregateError::TimeOrder {
                scenario: row.scenario.clone(),
                location: row.location.clone(),
                previous: group.last_sent,
                next: row.sent_at,
            });
        }
        group.add(row);
        Ok(())
    }

    fn close_scenario(&mut self) {
        let Some(scenario) = self.scenario.take() else {
            return;
        };
        let mut groups = std::mem::take(&mut self.groups);
        groups.sort_by(|a, b| a.location.cmp(&b.location));
        for g in groups {
            self.done.push(g.report(&scenario, &self.opts));
        }
    }

    pub fn finish(mut self) -> SlaReport {
        self.close_scenario();
        SlaReport {
            window: Window {
                from: self.opts.from,
                to: self.opts.to,
            },
            slo_target_percent: self.opts.slo_target_percent,
            percentile_method: percentile::METHOD,
            time_zone: self.opts.zone.to_string(),
            scenarios: self.done,
        }
    }
}

/// The report over `rows` in one call.
pub fn aggregate<'a>(
    rows: impl IntoIterator<Item = &'a HistoryRow>,
    opts: Options,
) -> Result<SlaReport, AggregateError> {
    let mut agg = Aggregator::new(opts);
    for row in rows {
        agg.push(row)?;
    }
    Ok(agg.finish())
}

#[cfg(test)]
mod tests;
