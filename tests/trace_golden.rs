//! Golden-file tests for the Received trace engine: every `fixtures/received/<case>.eml` is traced
//! and its JSON compared with `<case>.json`. An optional `<case>.toml` sidecar gives the fetch
//! time (`fetched_at`) and the expected path (`[[path]]` stage matchers, the scenario format).
//! Every case also has `<case>.facts.toml`: what must hold whatever the rest of the output says
//! (hop count, total, warnings per hop, stages, the delivering host), checked before comparing and
//! while blessing, so a bless cannot accept an output that breaks them. See [`Facts`].
//!
//! The analysis time is fixed at 2027-01-01T00:00:00Z so `future_date` cases are deterministic
//! (and after the lab captures of 2026-11-28, which must not be flagged).
//! On a mismatch the actual output is written to `<case>.actual` and the test fails, printing a
//! short line diff. `FLOWTEST_BLESS=1 cargo test --test trace_golden` rewrites the expected files
//! of the cases whose output differs and prints each diff: read them before committing, a blessed
//! wrong answer is worse than a failing test. A case without `<case>.json` fails either way.
mod golden;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flowtest::core::trace::{trace_message, validate_path, StageMatcher, TraceOptions};
use golden::{fact_eq, Case, Golden};
use serde::Deserialize;
use serde_json::Value;

const MIN_CASES: usize = 30;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    fetched_at: Option<DateTime<Utc>>,
    #[serde(default)]
    path: Vec<StageMatcher>,
}

/// A case's must-hold facts (`<case>.facts.toml`). Hops are numbered from 0, the oldest (the
/// bottom-most `Received` header). Lists are compared exactly; a hop not named in `hop_warnings`
/// must have no warnings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Facts {
    hops: usize,
    /// Milliseconds, or `"none"` when fewer than two hops have a time.
    total_ms: Millis,
    /// The last hop's `by` host, or `"none"` when it has none.
    last_by: String,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    hop_warnings: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    missing_stages: Vec<String>,
    /// Each hop's stage label, `""` for an unlabelled hop; checked when given.
    stages: Option<Vec<String>>,
    /// Each hop's `delay_ms` (`"none"` for null); checked when given.
    delays_ms: Option<Vec<Millis>>,
    /// Each hop's `from_ip` (`""` for none); checked when given.
    from_ips: Option<Vec<String>>,
    /// Each hop's `id` (`""` for none); checked when given.
    ids: Option<Vec<String>>,
    /// Each hop's time, RFC 3339 UTC (`""` for none); checked when given.
    timestamps: Option<Vec<String>>,
}

/// A millisecond figure that may be absent, written as an integer or `"none"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Millis {
    Value(i64),
    Word(String),
}

impl Millis {
    fn expected(&self) -> Result<Option<i64>, String> {
        match self {
            Millis::Value(v) => Ok(Some(*v)),
            Millis::Word(w) if w == "none" => Ok(None),
            Millis::Word(w) => Err(format!("`{w}` is neither milliseconds nor \"none\"")),
        }
    }
}

fn facts_path(eml: &Path) -> PathBuf {
    eml.with_extension("facts.toml")
}

/// The facts `actual` (the trace JSON) violates; `Err` when the facts file is missing or invalid.
fn check_facts(path: &Path, actual: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no facts file {} ({e})", path.display()))?;
    let facts: Facts = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let trace: Value = serde_json::from_str(actual).map_err(|e| e.to_string())?;
    let hops = trace["hops"].as_array().cloned().unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut errors = Vec::new();
    fact_eq(&mut errors, "hops", facts.hops, hops.len());
    fact_eq(
        &mut errors,
        "total_ms",
        facts.total_ms.expected()?,
        trace["total_ms"].as_i64(),
    );
    let last_by = hops.last().and_then(|h| h["by"].as_str()).unwrap_or("none");
    fact_eq(&mut errors, "last_by", facts.last_by.as_str(), last_by);
    fact_eq(
        &mut errors,
        "warnings",
        facts.warnings,
        strings(&trace["warnings"]),
    );
    fact_eq(
        &mut errors,
        "missing_stages",
        facts.missing_stages,
        strings(&trace["missing_stages"]),
    );
    let mut hop_warnings = BTreeMap::new();
    for (i, hop) in hops.iter().enumerate() {
        let w = strings(&hop["warnings"]);
        if !w.is_empty() {
            hop_warnings.insert(i.to_string(), w);
        }
    }
    fact_eq(
        &mut errors,
        "hop_warnings",
        facts.hop_warnings,
        hop_warnings,
    );
    if let Some(stages) = facts.stages {
        let actual: Vec<String> = hops
            .iter()
            .map(|h| h["stage"].as_str().unwrap_or("").to_owned())
            .collect();
        fact_eq(&mut errors, "stages", stages, actual);
    }
    if let Some(delays) = facts.delays_ms {
        let expected = delays
            .iter()
            .map(Millis::expected)
            .collect::<Result<Vec<_>, _>>()?;
        let actual: Vec<Option<i64>> = hops.iter().map(|h| h["delay_ms"].as_i64()).collect();
        fact_eq(&mut errors, "delays_ms", expected, actual);
    }
    for (name, want, field) in [
        ("from_ips", facts.from_ips, "from_ip"),
        ("ids", facts.ids, "id"),
        ("timestamps", facts.timestamps, "timestamp"),
    ] {
        if let Some(want) = want {
            let actual: Vec<String> = hops
                .iter()
                .map(|h| h[field].as_str().unwrap_or("").to_owned())
                .collect();
            fact_eq(&mut errors, name, want, actual);
        }
    }
    Ok(errors)
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
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/received exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    cases.sort();

    let mut golden = Golden::from_env();
    for eml in &cases {
        let name = eml
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let actual = match run_case(eml) {
            Ok(a) => a,
            Err(e) => {
                golden.error(&name, &e);
                continue;
            }
        };
        let fact_errors = match check_facts(&facts_path(eml), &actual) {
            Ok(errors) => errors,
            Err(e) => vec![e],
        };
        golden.check(
            Case {
                name: &name,
                expected_path: eml.with_extension("json"),
                actual_path: eml.with_extension("actual"),
                actual,
                fact_errors,
            },
            |expected, actual| expected == actual,
        );
    }
    golden.finish(MIN_CASES);
}

/// Every expected JSON, sidecar and facts file must have a matching input, so a deleted input
/// cannot silently shrink the suite while its expectation lingers.
#[test]
fn every_expected_file_has_an_input() {
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures/received exists") {
        let p = entry.expect("dir entry").path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        let stem = [".facts.toml", ".json", ".toml"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix));
        if let Some(stem) = stem {
            assert!(
                p.with_file_name(format!("{stem}.eml")).exists(),
                "{} has no .eml input",
                p.display()
            );
        }
    }
}
