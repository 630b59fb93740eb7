//! Golden-file tests for the Received trace engine: every `fixtures/received/<case>.eml` is traced
//! and its JSON compared with `<case>.json`. An optional `<case>.toml` sidecar gives the fetch
//! time (`fetched_at`) and the expected path (`[[path]]` stage matchers, the scenario format).
//!
//! The analysis time is fixed at 2027-01-01T00:00:00Z so `future_date` cases are deterministic
//! (and after the lab captures of 2026-11-28, which must not be flagged).
//! On a mismatch the actual output is written to `<case>.actual` and the test fails.
//! `FLOWTEST_BLESS=1 cargo test --test trace_golden` rewrites the expected files: read every diff
//! before committing, a blessed wrong answer is worse than a failing test.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flowtest::core::trace::{trace_message, validate_path, StageMatcher, TraceOptions};
use serde::Deserialize;

const MIN_CASES: usize = 30;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    fetched_at: Option<DateTime<Utc>>,
    #[serde(default)]
    path: Vec<StageMatcher>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/received")
}

fn analysis_time() -> DateTime<Utc> {
    "2027-01-01T00:00:00Z".parse().expect("fixed time")
}

/// Trace one case and return its pretty JSON (with a trailing newline).
fn run_case(eml: &Path) -> Result<String, String> {
    let raw = std::fs::read(eml).map_err(|e| format!("read {}: {e}", eml.display()))?;
    let sidecar_path = eml.with_extension("toml");
    let sidecar: Sidecar = if sidecar_path.exists() {
        let text = std::fs::read_to_string(&sidecar_path).map_err(|e| e.to_string())?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", sidecar_path.display()))?
    } else {
        Sidecar::default()
    };
    validate_path(&sidecar.path).map_err(|e| format!("{}: {e}", sidecar_path.display()))?;
    let opts = TraceOptions {
        now: analysis_time(),
        fetched_at: sidecar.fetched_at,
        stages: &sidecar.path,
    };
    let trace = trace_message(&raw, &opts).map_err(|e| format!("trace failed: {e}"))?;
    let mut json = serde_json::to_string_pretty(&trace).map_err(|e| e.to_string())?;
    json.push('\n');
    Ok(json)
}

#[test]
fn golden_received_traces() {
    let bless = std::env::var("FLOWTEST_BLESS").is_ok_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/received exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    cases.sort();

    let mut failures = Vec::new();
    let mut ran = 0;
    for eml in &cases {
        let name = eml
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let expected_path = eml.with_extension("json");
        let actual_path = eml.with_extension("actual");
        let actual = match run_case(eml) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        ran += 1;
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expected");
            let _ = std::fs::remove_file(&actual_path);
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {
                let _ = std::fs::remove_file(&actual_path);
            }
            Ok(_) => {
                std::fs::write(&actual_path, &actual).expect("write actual");
                failures.push(format!(
                    "{name}: output differs; compare {} with {}",
                    expected_path.display(),
                    actual_path.display()
                ));
            }
            Err(e) => {
                std::fs::write(&actual_path, &actual).expect("write actual");
                failures.push(format!(
                    "{name}: no expected file ({e}); see {}",
                    actual_path.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden failures:\n{}",
        failures.join("\n")
    );
    assert!(
        ran >= MIN_CASES,
        "only {ran} golden cases ran (expected at least {MIN_CASES})"
    );
}

/// Every expected JSON must have a matching input, so a deleted input cannot silently shrink the
/// suite while its expectation lingers.
#[test]
fn every_expected_file_has_an_input() {
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures/received exists") {
        let p = entry.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "json" || x == "toml") {
            assert!(
                p.with_extension("eml").exists(),
                "{} has no .eml input",
                p.display()
            );
        }
    }
}
