//! The canary's Prometheus metrics: one [`Metrics`] value with a method per event, rendered in
//! the OpenMetrics text format on `/metrics`. Label values come only from fixed sets: scenario
//! names from the configuration, statuses and finding codes from core's enums, stage names from
//! the trace engine; every series also carries the configured `location`.
//! Not here: serving HTTP (`http`) or deciding verdicts (the runner).
use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::core::outcome::RunResult;

/// Delivery and stage latency buckets, in seconds: 10 ms up to 10 minutes.
pub const BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabels {
    scenario: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    scenario: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    scenario: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    scenario: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// How one alert delivery to one webhook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOutcome {
    Sent,
    /// Every retry failed.
    Failed,
    /// The alert queue was full: alerting never holds up probing.
    Dropped,
}

impl AlertOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AlertOutcome::Sent => "sent",
            AlertOutcome::Failed => "failed",
            AlertOutcome::Dropped => "dropped",
        }
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric the canary exports.
pub struct Metrics {
    registry: Registry,
    probes: Family<StatusLabels, Counter>,
    delivery: Family<ScenarioLabels, Histogram, fn() -> Histogram>,
    stage: Family<StageLabels, Histogram, fn() -> Histogram>,
    last_success: Family<ScenarioLabels, Gauge<f64, AtomicU64>>,
    up: Family<ScenarioLabels, Gauge>,
    findings: Family<FindingLabels, Counter>,
    skipped: Family<ScenarioLabels, Counter>,
    in_flight: Gauge,
    reload_success: Gauge,
    alerts: Family<OutcomeLabels, Counter>,
}

impl Metrics {
    /// Metrics labelled with `location`.
    pub fn new(location: &str) -> Metrics {
        let mut registry = Registry::with_labels(
            [(Cow::Borrowed("location"), Cow::Owned(location.to_string()))].into_iter(),
        );
        let m = Metrics {
            probes: Family::default(),
            delivery: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            stage: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            last_success: Family::default(),
            up: Family::default(),
            findings: Family::default(),
            skipped: Family::default(),
            in_flight: Gauge::default(),
            reload_success: Gauge::default(),
            alerts: Family::default(),
            registry: Registry::default(),
        };
        // One row per metric: the field, its exposition name (counters get `_total` when
        // encoded) and its help text.
        macro_rules! register {
            ($($field:ident: $name:literal, $help:literal;)*) => {
                $(registry.register($name, $help, m.$field.clone());)*
            };
        }
        register! {
            probes: "flowtest_probes", "Probes finished, by verdict";
            delivery: "flowtest_delivery_seconds", "End-to-end delivery time of delivered probes";
            stage: "flowtest_stage_seconds", "Time spent in each stage of the mail path";
            last_success: "flowtest_last_success_timestamp_seconds",
                "When a probe of the scenario was last delivered (Unix time)";
            up: "flowtest_up", "1 when the scenario's latest verdict delivered the probe, else 0";
            findings: "flowtest_findings", "Findings diagnosed on probes, by code";
            skipped: "flowtest_ticks_skipped",
                "Scheduled probes not started because the previous one was still in flight or the scheduler was late";
            in_flight: "flowtest_probes_in_flight", "Probes sent and not yet judged";
            reload_success: "flowtest_config_reload_success",
                "1 when the last configuration (re)load succeeded, 0 when it was refused";
            alerts: "flowtest_alert_deliveries", "Alert webhook deliveries, by outcome";
        }
        Metrics { registry, ..m }
    }

    fn scenario(name: &str) -> ScenarioLabels {
        ScenarioLabels {
            scenario: name.to_string(),
        }
    }

    /// Make a configured scenario's `flowtest_up` present from the start: the last stored
    /// verdict's value, or 0 until its first verdict.
    pub fn scenario_configured(&self, name: &str, stored_up: Option<bool>) {
        let g = self.up.get_or_create(&Self::scenario(name));
        g.set(i64::from(stored_up.unwrap_or(false)));
    }

    /// A scenario left the configuration: its `up` series goes with it.
    pub fn scenario_removed(&self, name: &str) {
        self.up.remove(&Self::scenario(name));
    }

    /// One probe's verdict, with its stages and findings.
    pub fn verdict(&self, r: &RunResult, verdict_unix: f64) {
        let scenario = Self::scenario(&r.scenario);
        self.probes
            .get_or_create(&StatusLabels {
                scenario: r.scenario.clone(),
                status: r.status.as_str().to_string(),
            })
            .inc();
        let delivered = r.status.is_delivered();
        self.up.get_or_create(&scenario).set(i64::from(delivered));
        if delivered {
            self.last_success.get_or_create(&scenario).set(verdict_unix);
            if let Some(ms) = r.total_ms.filter(|ms| *ms >= 0) {
                self.delivery
                    .get_or_create(&scenario)
                    .observe(ms as f64 / 1000.0);
            }
        }
        for st in &r.stages {
            self.stage
                .get_or_create(&StageLabels {
                    scenario: r.scenario.clone(),
                    stage: st.name.clone(),
                })
                .observe(st.ms as f64 / 1000.0);
        }
        for f in &r.findings {
            self.findings
                .get_or_create(&FindingLabels {
                    scenario: r.scenario.clone(),
                    code: f.code.as_str().to_string(),
                })
                .inc();
        }
    }

    pub fn tick_skipped(&self, scenario: &str, n: u32) {
        if n > 0 {
            self.skipped
                .get_or_create(&Self::scenario(scenario))
                .inc_by(u64::from(n));
        }
    }

    pub fn probe_started(&self) {
        self.in_flight.inc();
    }

    pub fn probe_finished(&self) {
        self.in_flight.dec();
    }

    pub fn config_reloaded(&self, ok: bool) {
        self.reload_success.set(i64::from(ok));
    }

    pub fn alert(&self, outcome: AlertOutcome) {
        self.alerts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// The exposition text (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::diagnosis::{Finding, FindingCode};
    use crate::core::outcome::{Stage, StageSource, Status};

    /// One exposition line: `name{labels} value`, labels sorted.
    pub(crate) struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    pub(crate) fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("a value");
                let (name, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let mut labels: Vec<(String, String)> = labels
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("k=v");
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                labels.sort();
                Sample {
                    name: name.to_string(),
                    labels,
                    value: value.parse().expect("a number"),
                }
            })
            .collect()
    }

    pub(crate) fn value(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        samples(text)
            .into_iter()
            .find(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.value)
    }

    fn result(status: Status, total_ms: Option<i64>) -> RunResult {
        crate::core::canary::bare_result("lab-inbound", status, total_ms)
    }

    #[test]
    fn exposition_has_every_series_with_location() {
        let m = Metrics::new("onprem");
        m.scenario_configured("lab-inbound", None);
        m.scenario_configured("gmail", Some(true));
        m.config_reloaded(true);
        let text = m.encode();
        assert_eq!(
            value(&text, "flowtest_up", &[("scenario", "lab-inbound")]),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "flowtest_up", &[("scenario", "gmail")]),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "flowtest_config_reload_success", &[]),
            Some(1.0)
        );
        assert_eq!(value(&text, "flowtest_probes_in_flight", &[]), Some(0.0));
        for s in samples(&text) {
            assert!(
                s.labels
                    .iter()
                    .any(|(k, v)| k == "location" && v == "onprem"),
                "{} {:?} lacks the location",
                s.name,
                s.labels
            );
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with EOF");
    }

    #[test]
    fn a_verdict_moves_counters_histograms_and_gauges() {
        let m = Metrics::new("x");
        let mut ok = result(Status::Delivered, Some(1500));
        ok.stages.push(Stage {
            name: "mx".into(),
            ms: 40,
            source: StageSource::Log,
            precision_ms: 1,
            bounded: false,
            detail: None,
        });
        m.verdict(&ok, 1_700_000_000.0);
        let mut lost = result(Status::Lost, None);
        lost.findings
            .push(Finding::new(FindingCode::NextHopTimeout, Some("ec2"), "t"));
        m.verdict(&lost, 1_700_000_060.0);
        m.tick_skipped("lab-inbound", 2);
        let text = m.encode();
        let s = [("scenario", "lab-inbound")];
        assert_eq!(value(&text, "flowtest_up", &s), Some(0.0));
        assert_eq!(
            value(
                &text,
                "flowtest_probes_total",
                &[("scenario", "lab-inbound"), ("status", "delivered")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "flowtest_probes_total", &[("status", "lost")]),
            Some(1.0)
        );
        assert_eq!(value(&text, "flowtest_delivery_seconds_sum", &s), Some(1.5));
        assert_eq!(
            value(&text, "flowtest_delivery_seconds_count", &s),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "flowtest_delivery_seconds_bucket", &[("le", "2.5")]),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "flowtest_delivery_seconds_bucket", &[("le", "1.0")]),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "flowtest_stage_seconds_count", &[("stage", "mx")]),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "flowtest_last_success_timestamp_seconds", &s),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            value(
                &text,
                "flowtest_findings_total",
                &[("code", "next_hop_timeout")]
            ),
            Some(1.0)
        );
        assert_eq!(value(&text, "flowtest_ticks_skipped_total", &s), Some(2.0));
    }

    #[test]
    fn removed_scenarios_lose_their_up_series() {
        let m = Metrics::new("x");
        m.scenario_configured("a", None);
        m.scenario_removed("a");
        assert_eq!(
            value(&m.encode(), "flowtest_up", &[("scenario", "a")]),
            None
        );
    }
}
