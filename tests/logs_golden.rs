//! Golden tests for `flowtest diagnose`'s analysis: every directory under `fixtures/logs/`
//! that holds `*.log` files and an `expected.json` is a case (lab captures under
//! `fixtures/logs/lab/<case>/` are picked up the same way, no code needed). Each `.log` file is
//! one source named by its file stem, unless `case.json` maps it. `case.json` may also set
//! `year`, `tz`, `message_id`, `rcpt`, `since`, `until`.
//!
//! Every case also has a `facts.toml`: what must hold whatever the rest of the output says (the
//! finding codes, each message's status, hop path and findings), checked before comparing and
//! while blessing, so a bless cannot accept an output that breaks them. See [`Facts`].
//!
//! On a mismatch the output is written to `expected.json.actual` beside it and the test fails,
//! printing a short line diff. `FLOWTEST_BLESS=1 cargo test --test logs_golden` rewrites
//! `expected.json` of the cases whose output differs and prints each diff. A case directory
//! without `expected.json` fails either way (review `expected.json.actual` and rename it).
mod golden;

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use flowtest::core::diagnose::{analyze, parse_time, Format, Input, Options};
use flowtest::core::fusion::Limits;
use flowtest::core::logs::LogZone;
use golden::{fact_eq, Case, Golden};
use serde::Deserialize;
use serde_json::Value;

/// At least this many cases must run (guards against a loader that silently finds nothing).
const MIN_CASES: usize = 15;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/logs")
}

fn case_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    if entries
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "log"))
    {
        out.push(dir.to_path_buf());
    }
    for p in entries {
        if p.is_dir() {
            case_dirs(&p, out);
        }
    }
}

fn run_case(dir: &Path) -> Value {
    run_case_with(dir, None, true)
}

/// Run a case; `message_id` overrides the case's own filter.
fn run_case_with(dir: &Path, message_id: Option<&str>, prefilter: bool) -> Value {
    let case: Value = fs::read_to_string(dir.join("case.json"))
        .map(|s| serde_json::from_str(&s).expect("case.json is JSON"))
        .unwrap_or(Value::Null);
    let get = |k: &str| case.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let inputs = logs
        .iter()
        .map(|p| {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let name = case
                .get("sources")
                .and_then(|s| s.get(&file))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned());
            Input {
                name,
                display: file,
                reader: Box::new(BufReader::new(fs::File::open(p).unwrap())),
                reference: None,
                skipped_bytes: 0,
                hosts_from_lines: false,
            }
        })
        .collect();
    let opts = Options {
        message_id: message_id.map(str::to_owned).or_else(|| get("message_id")),
        rcpt: get("rcpt"),
        since: get("since").map(|s| parse_time(&s).unwrap()),
        until: get("until").map(|s| parse_time(&s).unwrap()),
        year: Some(case.get("year").and_then(Value::as_i64).unwrap_or(2025) as i32),
        fallback_year: 2025,
        tz: LogZone::parse(&get("tz").unwrap_or_else(|| "UTC".into())).unwrap(),
        format: Format::Json,
        limits: Limits::default(),
        prefilter,
    };
    let mut out = Vec::new();
    analyze(inputs, &opts, &mut out).expect("analysis runs");
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{}: output is not JSON ({e}):\n{}",
            dir.display(),
            String::from_utf8_lossy(&out)
        )
    })
}

/// A case's must-hold facts (`facts.toml`). Lists are compared exactly and in output order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Facts {
    /// The codes of the report's findings.
    findings: Vec<String>,
    /// Hosts whose clock skew is significant.
    #[serde(default)]
    skewed_hosts: Vec<String>,
    /// Every reconstructed message, in output order.
    #[serde(default, rename = "message")]
    messages: Vec<MessageFacts>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageFacts {
    /// The Message-ID; absent when the logs never showed one.
    id: Option<String>,
    status: String,
    complete: bool,
    /// `host:status` for each hop, in order.
    hops: Vec<String>,
    /// The codes of this message's findings.
    #[serde(default)]
    findings: Vec<String>,
    /// How many notes the message carries; checked when given.
    notes: Option<usize>,
    /// Host -> the least `delay_ms` its hop must show.
    #[serde(default)]
    min_delay_ms: BTreeMap<String, i64>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x[key].as_str().unwrap_or("null").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The facts `actual` violates; `Err` when the facts file is missing or invalid.
fn check_facts(dir: &Path, actual: &Value) -> Result<Vec<String>, String> {
    let path = dir.join("facts.toml");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("no facts file {} ({e})", path.display()))?;
    let facts: Facts = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut errors = Vec::new();
    fact_eq(
        &mut errors,
        "findings",
        facts.findings,
        strings(&actual["findings"], "code"),
    );
    let skewed: Vec<String> = actual["skew"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["significant"].as_bool() == Some(true))
                .filter_map(|s| s["host"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    fact_eq(&mut errors, "skewed_hosts", facts.skewed_hosts, skewed);
    let messages = actual["messages"].as_array().cloned().unwrap_or_default();
    fact_eq(
        &mut errors,
        "message count",
        facts.messages.len(),
        messages.len(),
    );
    for (i, (want, got)) in facts.messages.iter().zip(&messages).enumerate() {
        check_message(&mut errors, &format!("message {i}"), want, got);
    }
    Ok(errors)
}

fn check_message(errors: &mut Vec<String>, at: &str, want: &MessageFacts, got: &Value) {
    fact_eq(
        errors,
        &format!("{at} id"),
        want.id.as_deref(),
        got["message_id"].as_str(),
    );
    fact_eq(
        errors,
        &format!("{at} status"),
        Some(want.status.as_str()),
        got["status"].as_str(),
    );
    fact_eq(
        errors,
        &format!("{at} complete"),
        Some(want.complete),
        got["complete"].as_bool(),
    );
    let hops = got["hops"].as_array().cloned().unwrap_or_default();
    let path: Vec<String> = hops
        .iter()
        .map(|h| {
            let field = |k: &str| h[k].as_str().unwrap_or("null").to_owned();
            format!("{}:{}", field("host"), field("status"))
        })
        .collect();
    fact_eq(errors, &format!("{at} hops"), &want.hops, &path);
    fact_eq(
        errors,
        &format!("{at} findings"),
        want.findings.clone(),
        strings(&got["findings"], "code"),
    );
    if let Some(n) = want.notes {
        let notes = got["notes"].as_array().map_or(0, Vec::len);
        fact_eq(errors, &format!("{at} notes"), n, notes);
    }
    for (host, min) in &want.min_delay_ms {
        let delay = hops
            .iter()
            .find(|h| h["host"].as_str() == Some(host))
            .and_then(|h| h["delay_ms"].as_i64());
        if delay.is_none_or(|d| d < *min) {
            errors.push(format!(
                "{at}: {host}'s hop delay_ms is {delay:?}, expected at least {min}"
            ));
        }
    }
}

#[test]
fn golden_cases() {
    let mut dirs = Vec::new();
    case_dirs(&fixtures(), &mut dirs);
    let root = fixtures();
    let mut golden = Golden::from_env();
    for dir in &dirs {
        let name = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
        let actual = run_case(dir);
        let fact_errors = match check_facts(dir, &actual) {
            Ok(errors) => errors,
            Err(e) => vec![e],
        };
        golden.check(
            Case {
                name: &name,
                expected_path: dir.join("expected.json"),
                actual_path: dir.join("expected.json.actual"),
                actual: serde_json::to_string_pretty(&actual).unwrap() + "\n",
                fact_errors,
            },
            |expected, actual| {
                serde_json::from_str::<Value>(expected).ok()
                    == serde_json::from_str::<Value>(actual).ok()
            },
        );
    }
    golden.finish(MIN_CASES);
}

/// The `--message-id` prefilter skips lines before parsing them; for every message of every
/// case it must give the same message and findings as the full parse.
#[test]
fn prefilter_gives_the_same_answer_as_full_parse() {
    let mut dirs = Vec::new();
    case_dirs(&fixtures(), &mut dirs);
    let mut compared = 0;
    for dir in &dirs {
        let all = run_case_with(dir, None, false);
        let ids: Vec<String> = all["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["message_id"].as_str().map(str::to_owned))
            .collect();
        for id in ids {
            let full = run_case_with(dir, Some(&id), false);
            let fast = run_case_with(dir, Some(&id), true);
            assert_eq!(
                full["messages"],
                fast["messages"],
                "{}: message {id} differs with the prefilter",
                dir.display()
            );
            assert_eq!(
                full["findings"],
                fast["findings"],
                "{}: {id}",
                dir.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} messages compared");
}
