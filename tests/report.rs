//! `flowtest report` end to end on a synthetic week of history in a real result store
//! (tests/support/history.rs): every figure of the JSON output is checked against an
//! independent computation written here over the generator's plan (sort and index, group by
//! date, split at deliveries), not the report's code path; the human and Markdown renderings are
//! golden files under `fixtures/report/` (`FLOWTEST_BLESS=1` rewrites the ones that differ).
mod golden;
#[path = "support/history.rs"]
mod history;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use flowtest::core::outcome::Status;
use golden::{Case, Golden};
use history::Planned;
use serde_json::{json, Value};

/// A configuration whose state directory holds the synthetic history (in memory when /dev/shm
/// exists: the store syncs every result, which a disk makes slow for thousands of them).
struct Env {
    dir: tempfile::TempDir,
    plan: Vec<Planned>,
}

impl Env {
    fn new() -> Env {
        let dir = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let state = write_config(dir.path());
        let plan = history::plan();
        history::write(&state, &plan);
        Env { dir, plan }
    }

    fn report(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_flowtest"))
            .arg("--config")
            .arg(self.dir.path().join("flowtest.toml"))
            .arg("report")
            .args(args)
            .env_remove("FLOWTEST_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .expect("run flowtest report")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.report(&[args, &["--format", "json"]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        serde_json::from_slice(&out.stdout).expect("report JSON")
    }
}

/// `flowtest.toml` (and an empty scenarios directory) in `dir`; returns its state directory.
fn write_config(dir: &Path) -> PathBuf {
    let state = dir.join("state");
    std::fs::write(
        dir.join("flowtest.toml"),
        format!(
            "state_dir = {:?}\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_TEST_KEY\"\n",
            state.display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.join("scenarios")).unwrap();
    state
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---- The independent computation ----

fn delivered(p: &Planned) -> bool {
    p.status.is_some_and(Status::is_delivered)
}

fn decided(p: &Planned) -> bool {
    !matches!(p.status, None | Some(Status::Interrupted | Status::Error))
}

fn is_late(p: &Planned) -> bool {
    p.status == Some(Status::Lost) && p.late_after_ms.is_some()
}

/// Delivered to the inbox within the latency target, from the latency itself.
fn in_slo(p: &Planned) -> bool {
    p.status != Some(Status::DeliveredSpam)
        && delivered(p)
        && p.total_ms.unwrap() <= p.slo_target_ms
}

/// Nearest rank: sort, then the value at ceil(p * n / 100), 1-based.
fn pctl(values: &[u64], p: f64) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let mut v = values.to_vec();
    v.sort();
    let rank = ((p * v.len() as f64) / 100.0).ceil() as usize;
    json!(v[rank.max(1) - 1])
}

fn latency(values: &[u64]) -> Value {
    json!({"p50": pctl(values, 50.0), "p95": pctl(values, 95.0), "p99": pctl(values, 99.0),
           "max": values.iter().max()})
}

fn share(part: usize, whole: usize) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(part as f64 * 100.0 / whole as f64)
    }
}

fn count(ps: &[&Planned], f: impl Fn(&Planned) -> bool) -> usize {
    ps.iter().filter(|p| f(p)).count()
}

fn failed(p: &Planned) -> bool {
    matches!(
        p.status,
        Some(Status::Rejected | Status::Bounced | Status::SendFailed | Status::FetchFailed)
    )
}

fn latencies(ps: &[&Planned]) -> Vec<u64> {
    ps.iter()
        .filter(|p| delivered(p))
        .map(|p| p.total_ms.unwrap())
        .collect()
}

fn day_value(date: NaiveDate, ps: &[&Planned]) -> Value {
    let dec = count(ps, decided);
    json!({
        "date": date.to_string(), "probes": ps.len(), "delivered": count(ps, delivered),
        "lost": count(ps, |p| p.status == Some(Status::Lost) && !is_late(p)),
        "late": count(ps, is_late), "failed": count(ps, failed),
        "availability_percent": share(count(ps, delivered), dec),
        "slo_percent": share(count(ps, in_slo), dec),
        "latency_ms": latency(&latencies(ps)),
    })
}

fn label(p: &Planned) -> &'static str {
    if is_late(p) {
        "late"
    } else {
        p.status.unwrap().as_str()
    }
}

/// Incidents: the decided probes split at every delivered one; each non-empty run of failures
/// between deliveries is one, ending when the next delivered probe was sent.
fn incidents(ps: &[&Planned]) -> Vec<Value> {
    let dec: Vec<&Planned> = ps.iter().copied().filter(|p| decided(p)).collect();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, p) in dec.iter().enumerate() {
        match (delivered(p), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, dec.len()));
    }
    runs.sort_by_key(|&(s, e)| (std::cmp::Reverse(e - s), dec[s].sent_at));
    runs.truncate(10);
    runs.into_iter()
        .map(|(s, e)| {
            let run = &dec[s..e];
            let mut statuses: HashMap<&str, usize> = HashMap::new();
            let mut stages: BTreeMap<&str, usize> = BTreeMap::new();
            let mut codes: BTreeMap<String, (usize, String, String)> = BTreeMap::new();
            for p in run {
                *statuses.entry(label(p)).or_default() += 1;
                for (code, stage, msg) in &p.findings {
                    if let Some(st) = stage {
                        *stages.entry(st).or_default() += 1;
                    }
                    let hint =
                        flowtest::core::verdict::finding(*code, *stage, msg.to_string(), vec![])
                            .hint;
                    let key = serde_json::to_value(code)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string();
                    codes.entry(key).or_insert((0, msg.to_string(), hint)).0 += 1;
                }
            }
            let mut statuses: Vec<(&str, usize)> = statuses.into_iter().collect();
            statuses.sort_by_key(|&(s, n)| (std::cmp::Reverse(n), s));
            let top = stages.values().copied().max();
            let stage = stages
                .iter()
                .find(|(_, n)| Some(**n) == top)
                .map(|(s, _)| *s);
            let mut findings: Vec<Value> = codes
                .into_iter()
                .map(|(code, (n, message, hint))| {
                    json!({"code": code, "message": message, "hint": hint, "count": n})
                })
                .collect();
            findings.sort_by_key(|f| std::cmp::Reverse(f["count"].as_u64()));
            json!({
                "start": dec[s].sent_at, "end": dec.get(e).map(|p| p.sent_at),
                "failed_probes": run.len(),
                "statuses": statuses.iter().map(|(s, _)| s).collect::<Vec<_>>(),
                "stage": stage, "findings": findings,
                "availability_cost_percent": run.len() as f64 * 100.0 / dec.len() as f64,
            })
        })
        .collect()
}

fn stages(ps: &[&Planned]) -> Vec<Value> {
    let mut names: Vec<&str> = Vec::new();
    let mut values: HashMap<&str, Vec<u64>> = HashMap::new();
    for p in ps.iter().filter(|p| delivered(p)) {
        for (name, ms) in &p.stages {
            if !names.contains(name) {
                names.push(name);
            }
            values.entry(name).or_default().push(*ms);
        }
    }
    names
        .iter()
        .map(|n| {
            let v = &values[n];
            json!({"name": n, "samples": v.len(), "p50_ms": pctl(v, 50.0), "p95_ms": pctl(v, 95.0), "p99_ms": pctl(v, 99.0)})
        })
        .collect()
}

fn scenario_value(name: &str, ps: &[&Planned], target: f64, offset: FixedOffset) -> Value {
    let dec = count(ps, decided);
    let avail = share(count(ps, delivered), dec);
    let budget = avail
        .as_f64()
        .map(|a| 100.0 - (100.0 - a) / (100.0 - target) * 100.0);
    let mut by_day: BTreeMap<NaiveDate, Vec<&Planned>> = BTreeMap::new();
    for p in ps {
        by_day
            .entry(p.sent_at.with_timezone(&offset).date_naive())
            .or_default()
            .push(p);
    }
    json!({
        "scenario": name, "location": "default", "probes": ps.len(),
        "delivered": count(ps, delivered),
        "delivered_spam": count(ps, |p| p.status == Some(Status::DeliveredSpam)),
        "lost": count(ps, |p| p.status == Some(Status::Lost) && !is_late(p)),
        "late": count(ps, is_late), "failed": count(ps, failed),
        "interrupted": count(ps, |p| p.status == Some(Status::Interrupted)),
        "errors": count(ps, |p| p.status == Some(Status::Error)),
        "pending": count(ps, |p| p.status.is_none()),
        "availability_percent": avail,
        "slo_percent": share(count(ps, in_slo), dec),
        "latency_ms": latency(&latencies(ps)),
        "error_budget_left_percent": budget,
        "stages": stages(ps),
        "days": by_day.iter().map(|(d, ps)| day_value(*d, ps)).collect::<Vec<_>>(),
        "incidents": incidents(ps),
    })
}

struct Ask<'a> {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    target: f64,
    offset: FixedOffset,
    zone: &'a str,
    scenarios: &'a [&'a str],
}

fn expected(plan: &[Planned], ask: &Ask) -> Value {
    let mut by: BTreeMap<&str, Vec<&Planned>> = BTreeMap::new();
    for p in plan
        .iter()
        .filter(|p| p.sent_at >= ask.from && p.sent_at < ask.to)
    {
        if ask.scenarios.is_empty() || ask.scenarios.contains(&p.scenario) {
            by.entry(p.scenario).or_default().push(p);
        }
    }
    for ps in by.values_mut() {
        ps.sort_by_key(|p| p.sent_at);
    }
    json!({
        "window": {"from": ask.from, "to": ask.to},
        "slo_target_percent": ask.target,
        "percentile_method": "nearest-rank",
        "time_zone": ask.zone,
        "scenarios": by.iter().map(|(n, ps)| scenario_value(n, ps, ask.target, ask.offset)).collect::<Vec<_>>(),
    })
}

/// Every difference between two JSON values, by path; numbers equal within 1e-9, times
/// compared as instants.
fn diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for k in w.keys().chain(g.keys()) {
                if !(w.contains_key(k) && g.contains_key(k)) {
                    out.push(format!("{path}.{k}: present on one side only"));
                }
            }
            for (k, v) in w {
                if let Some(gv) = g.get(k) {
                    diff(&format!("{path}.{k}"), v, gv, out);
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                out.push(format!(
                    "{path}: {} items expected, {} got",
                    w.len(),
                    g.len()
                ));
            }
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), a, b, out);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            if (a - b).abs() > 1e-9 * a.abs().max(1.0) {
                out.push(format!("{path}: expected {a}, got {b}"));
            }
        }
        (Value::String(a), Value::String(b)) => {
            let t = |s: &str| DateTime::parse_from_rfc3339(s).ok();
            let same = match (t(a), t(b)) {
                (Some(x), Some(y)) => x == y,
                _ => a == b,
            };
            if !same {
                out.push(format!("{path}: expected {a:?}, got {b:?}"));
            }
        }
        _ if want == got => {}
        _ => out.push(format!("{path}: expected {want}, got {got}")),
    }
}

fn assert_matches(want: &Value, got: &Value) {
    let mut out = Vec::new();
    diff("", want, got, &mut out);
    assert!(
        out.is_empty(),
        "{} differences:\n{}",
        out.len(),
        out[..out.len().min(40)].join("\n")
    );
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report")
}

/// One store, several reports: building the history is the slow part.
#[test]
fn report_figures_match_an_independent_computation() {
    let env = Env::new();
    let (from, to) = history::window();
    let utc0 = FixedOffset::east_opt(0).unwrap();
    // The whole week (a bare --to date includes its day); every scenario.
    let got = env.json(&["--from", "2026-11-01", "--to", "2026-11-07"]);
    let ask = Ask {
        from,
        to,
        target: 99.9,
        offset: utc0,
        zone: "UTC",
        scenarios: &[],
    };
    let want = expected(&env.plan, &ask);
    assert_matches(&want, &got);

    // What the plan put in, seen in the report: the facts the figures above rest on.
    let alpha = &got["scenarios"][0];
    assert_eq!(alpha["scenario"], "alpha-inbound");
    assert_eq!(alpha["incidents"][0]["start"], "2026-11-03T04:00:00Z");
    assert_eq!(
        alpha["incidents"][0]["findings"][0]["code"],
        "next_hop_timeout"
    );
    assert_eq!(alpha["incidents"][0]["stage"], "ec2");
    assert_eq!(alpha["incidents"][0]["statuses"], json!(["lost", "late"]));
    assert!(alpha["late"].as_u64().unwrap() >= 3, "{}", alpha["late"]);
    assert_eq!(
        (
            alpha["interrupted"].as_u64(),
            alpha["errors"].as_u64(),
            alpha["pending"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert!(alpha["delivered_spam"].as_u64().unwrap() > 10);
    assert!(
        alpha["error_budget_left_percent"].as_f64().unwrap() < 0.0,
        "the outage overspent it"
    );
    assert_eq!(got["scenarios"].as_array().unwrap().len(), 3);

    // Another zone cuts other days and another window; another target, one scenario.
    let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
    let days = ["--from", "2026-11-02", "--to", "2026-11-05", "--tz"];
    let more = [
        "+02:00",
        "--slo-target",
        "99.5",
        "--scenario",
        "alpha-inbound",
        "gamma-provider",
    ];
    let got = env.json(&[&days[..], &more].concat());
    let ask = Ask {
        from: utc("2026-11-01T22:00:00Z"),
        to: utc("2026-11-05T22:00:00Z"),
        target: 99.5,
        offset: plus2,
        zone: "+02:00",
        scenarios: &["alpha-inbound", "gamma-provider"],
    };
    assert_matches(&expected(&env.plan, &ask), &got);
    assert_eq!(got["scenarios"][0]["days"][0]["date"], "2026-11-02");

    // A named zone: Berlin keeps CET (+01:00) all that week, and the report names the zone.
    let got = env.json(&[&days[..], &["Europe/Berlin"]].concat());
    let ask = Ask {
        from: utc("2026-11-01T23:00:00Z"),
        to: utc("2026-11-05T23:00:00Z"),
        target: 99.9,
        offset: FixedOffset::east_opt(3600).unwrap(),
        zone: "Europe/Berlin",
        scenarios: &[],
    };
    assert_matches(&expected(&env.plan, &ask), &got);

    // Exact times in the window; a location no probe has leaves the report empty.
    let got = env.json(&[
        "--from",
        "2026-11-03T04:10:00Z",
        "--to",
        "2026-11-03T04:40:00Z",
    ]);
    let ask = Ask {
        from: utc("2026-11-03T04:10:00Z"),
        to: utc("2026-11-03T04:40:00Z"),
        target: 99.9,
        offset: utc0,
        zone: "UTC",
        scenarios: &[],
    };
    assert_matches(&expected(&env.plan, &ask), &got);
    let got = env.json(&["--from", "2026-11-01", "--location", "mars"]);
    assert_eq!(got["scenarios"], json!([]));

    renderings_match_their_golden_files(&env);
    exit_codes_and_errors(&env);
}

fn renderings_match_their_golden_files(env: &Env) {
    let mut golden = Golden::from_env();
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    for (format, file) in [("human", "week.txt"), ("markdown", "week.md")] {
        let out = env.report(&[
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-07",
            "--format",
            format,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let actual = String::from_utf8(out.stdout).unwrap();
        let mut fact_errors = Vec::new();
        for must in [
            "nearest-rank",
            "alpha-inbound",
            "2026-11-03 04:00:00",
            "next_hop_timeout x",
            "Connection timed out",
            "Target 99.9 %",
            "2026-11-07",
        ] {
            if !actual.contains(must) {
                fact_errors.push(format!("{format} output lacks {must:?}"));
            }
        }
        golden.check(
            Case {
                name: file,
                expected_path: dir.join(file),
                actual_path: dir.join(format!("{file}.actual")),
                actual,
                fact_errors,
            },
            |a, b| a == b,
        );
    }
    golden.finish(2);
}

fn exit_codes_and_errors(env: &Env) {
    let week = ["--from", "2026-11-01", "--to", "2026-11-07"];
    // Under the target with --fail-under: 1; a target met by every scenario: 0.
    let out = env.report(&[&week[..], &["--fail-under", "--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let out = env.report(&[&week[..], &["--fail-under", "--slo-target", "50"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // --output writes the file, html is one page holding the figures.
    let file = env.dir.path().join("r.html");
    let out = env.report(
        &[
            &week[..],
            &["--format", "html", "--output", file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("alpha-inbound"),
        "{page}"
    );

    // Relative windows run against the real clock: the window is 30 days back from now.
    let got = env.json(&["--since", "30d"]);
    let (f, t) = (
        got["window"]["from"].as_str().unwrap(),
        got["window"]["to"].as_str().unwrap(),
    );
    assert_eq!(utc(t) - utc(f), chrono::Duration::days(30));

    for (args, says) in [
        (&["--tz", "Europe/Atlantis"][..], "nor a zone name"),
        (&["--slo-target", "100"][..], "--slo-target 100"),
        (&["--from", "someday"][..], "'someday' is not a date"),
        (
            &["--from", "2026-11-05", "--to", "2026-11-01"][..],
            "the window is empty",
        ),
        (&["--since", "forever"][..], "--since"),
    ] {
        let out = env.report(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn a_missing_store_is_named_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let state = write_config(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_flowtest"))
        .arg("--config")
        .arg(dir.path().join("flowtest.toml"))
        .arg("report")
        .env_remove("FLOWTEST_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no probe has been stored yet"));
    assert!(!state.join("flowtest.db").exists());
}

#[test]
fn the_comparison_notices_every_kind_of_difference() {
    let want = json!({"a": 1, "t": "2026-11-01T00:00:00Z", "l": [1.5, 2], "o": {"x": null}});
    let same = json!({"a": 1.0, "t": "2026-11-01T00:00:00.000Z", "l": [1.5, 2], "o": {"x": null}});
    let mut out = Vec::new();
    diff("", &want, &same, &mut out);
    assert!(out.is_empty(), "{out:?}");
    for changed in [
        json!({"a": 2, "t": "2026-11-01T00:00:00Z", "l": [1.5, 2], "o": {"x": null}}),
        json!({"a": 1, "t": "2026-11-01T00:00:01Z", "l": [1.5, 2], "o": {"x": null}}),
        json!({"a": 1, "t": "2026-11-01T00:00:00Z", "l": [1.5], "o": {"x": null}}),
        json!({"a": 1, "t": "2026-11-01T00:00:00Z", "l": [1.5, 2], "o": {"x": 0}}),
        json!({"a": 1, "t": "2026-11-01T00:00:00Z", "l": [1.5, 2], "o": {"y": null}}),
    ] {
        let mut out = Vec::new();
        diff("", &want, &changed, &mut out);
        assert!(!out.is_empty(), "{changed}");
    }
}
