//! Golden tests for `flowtest diagnose`'s analysis: every directory under `fixtures/logs/`
//! that holds `*.log` files and an `expected.json` is a case (lab captures under
//! `fixtures/logs/lab/<case>/` are picked up the same way, no code needed). Each `.log` file is
//! one source named by its file stem, unless `case.json` maps it. `case.json` may also set
//! `year`, `tz`, `message_id`, `rcpt`, `since`, `until`.
//!
//! `FLOWTEST_BLESS=1 cargo test --test logs_golden` rewrites `expected.json` (for every case
//! directory with `.log` files); on a mismatch the output is written to
//! `expected.json.actual` beside it.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use flowtest::core::diagnose::{analyze, parse_time, Format, Input, Options};
use flowtest::core::fusion::Limits;
use flowtest::core::logs::parse_tz;
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
        tz: parse_tz(&get("tz").unwrap_or_else(|| "UTC".into())).unwrap(),
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

#[test]
fn golden_cases() {
    let bless = std::env::var_os("FLOWTEST_BLESS").is_some_and(|v| v == "1");
    let mut dirs = Vec::new();
    case_dirs(&fixtures(), &mut dirs);
    let mut ran = 0;
    let mut failed = Vec::new();
    for dir in &dirs {
        let expected_path = dir.join("expected.json");
        if !expected_path.exists() && !bless {
            // A lab capture still waiting for its verified expected.json.
            eprintln!("skipping {} (no expected.json yet)", dir.display());
            continue;
        }
        let actual = run_case(dir);
        let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        ran += 1;
        if bless {
            fs::write(&expected_path, &pretty).unwrap();
            continue;
        }
        let expected: Value =
            serde_json::from_str(&fs::read_to_string(&expected_path).unwrap()).unwrap();
        let actual_path = dir.join("expected.json.actual");
        if expected != actual {
            fs::write(&actual_path, &pretty).unwrap();
            failed.push(dir.display().to_string());
        } else if actual_path.exists() {
            let _ = fs::remove_file(&actual_path);
        }
    }
    assert!(
        failed.is_empty(),
        "golden mismatch (see expected.json.actual beside each): {failed:#?}"
    );
    assert!(
        ran >= MIN_CASES,
        "only {ran} golden cases ran (expected at least {MIN_CASES})"
    );
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
