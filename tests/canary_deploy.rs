//! deploy/ stays in step with the canary: every flowtest metric the Prometheus rules and the
//! Grafana dashboard query is one the canary exports (or a recording rule defines), the
//! dashboard is valid JSON, and the systemd units keep their hardening.
use std::collections::BTreeSet;
use std::path::PathBuf;

use flowtest::canary::metrics::Metrics;
use flowtest::core::canary::bare_result;
use flowtest::core::diagnosis::{Finding, FindingCode};
use flowtest::core::outcome::{Stage, StageSource, Status};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Every `flowtest_...` / `flowtest:...` name in a text.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("flowtest") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if name.starts_with("flowtest_") || name.starts_with("flowtest:") {
            out.insert(name.to_string());
        }
        rest = &tail[end.max(1)..];
    }
    out
}

/// The series the canary exports once every kind of event happened.
fn exported() -> BTreeSet<String> {
    let m = Metrics::new("x");
    m.scenario_configured("s", None);
    let mut r = bare_result("s", Status::Delivered, Some(10));
    r.stages.push(Stage {
        name: "mx".into(),
        ms: 1,
        source: StageSource::Log,
        precision_ms: 1,
        bounded: false,
        detail: None,
    });
    r.findings
        .push(Finding::new(FindingCode::NextHopTimeout, None, "x"));
    m.verdict(&r, 1.0);
    m.tick_skipped("s", 1);
    m.alert(flowtest::canary::metrics::AlertOutcome::Sent);
    m.config_reloaded(true);
    m.encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_owned))
        .collect()
}

#[test]
fn rules_and_dashboard_query_only_exported_or_recorded_metrics() {
    let rules = read("deploy/prometheus/flowtest-rules.yml");
    let dashboard = read("deploy/grafana/flowtest-canary.json");
    let _: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    let exported = exported();
    assert!(exported.contains("flowtest_up") && exported.contains("flowtest_probes_total"));
    let recorded: BTreeSet<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(str::to_owned)
        .collect();
    assert!(recorded.len() >= 5, "{recorded:?}");
    for (file, text) in [("rules", &rules), ("dashboard", &dashboard)] {
        for n in names(text) {
            assert!(
                exported.contains(&n) || recorded.contains(&n),
                "{file} uses {n}, which the canary does not export"
            );
        }
    }
    for alert in [
        "FlowtestProbeFailing",
        "FlowtestNoRecentSuccess",
        "FlowtestCanaryDown",
        "FlowtestCanaryAbsent",
        "FlowtestConfigReloadFailed",
    ] {
        assert!(rules.contains(&format!("- alert: {alert}")), "{alert}");
    }
}

#[test]
fn systemd_units_are_hardened() {
    for unit in [
        "deploy/systemd/flowtest-canary.service",
        "deploy/systemd/flowtest-run.service",
    ] {
        let text = read(unit);
        for key in [
            "DynamicUser=yes",
            "StateDirectory=flowtest",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=\n",
        ] {
            assert!(text.contains(key), "{unit} lacks {key:?}");
        }
    }
    let canary = read("deploy/systemd/flowtest-canary.service");
    assert!(canary.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(canary.contains(" canary\n"), "the service runs the canary");
    let timer = read("deploy/systemd/flowtest-run.timer");
    assert!(timer.contains("OnCalendar="));
}
