//! The canary's acceptance against the real lab, with a fault: `flowtest canary` probes one
//! inbound scenario every 2 s while `dell-down` is injected and healed; a real Prometheus
//! (Debian's binary, its own config and data dir, 1 s scrapes) scrapes `/metrics`, and PromQL
//! through its HTTP API shows `flowtest_up` 0 during the fault and 1 after, the failure counter
//! rising and the `next_hop_refused` finding; a webhook receiver in the test gets exactly one
//! failing and one recovered alert. The canary, Prometheus and the receiver all live in the
//! lab's `internet` namespace (loopback there), so nothing is routed from the root namespace.
//!
//! Injects a fault: run it under the EXCLUSIVE lab lock, with `-o`
//! (`flock -o -x /tmp/flowtest-lab.lock cargo test --test canary_prometheus`): `lab/heal` restarts
//! the lab's DNS server, which would otherwise inherit the lock and hold it for good.
mod support;

use std::time::Duration;

use serde_json::Value;
use support::flowtest::{lab_scenario, Cfg};
use support::http::{wait_for, Receiver};
use support::lab;
use support::netns::{lab_free_port, lab_listener, LabProcess};
use support::prometheus::Prometheus;

const SCENARIO: &str = "prom-inbound";
const LOCATION: &str = "prom-lab";
/// Verdicts that count as failures in flowtest_probes_total.
const FAILING: &str = "lost|rejected|bounced|send_failed|fetch_failed|error";

fn now_unix() -> f64 {
    ::flowtest::clock::system().now().timestamp_millis() as f64 / 1000.0
}

/// A private configuration: one lab-inbound probe every 2 s with a 5 s timeout, alerting after
/// two failures to the webhook at `hook_url` (by file: it is a secret reference).
fn config(hook_url: &str) -> Cfg {
    let scenario = lab_scenario("lab-inbound.toml", SCENARIO, |t| {
        t.replacen(
            &format!("name = \"{SCENARIO}\""),
            &format!("name = \"{SCENARIO}\"\nevery = \"2s\"\ntimeout = \"5s\""),
            1,
        )
    });
    let cfg = Cfg::new(&[(SCENARIO, scenario.1)]);
    let hook = cfg.path().with_file_name("hook.url");
    std::fs::write(&hook, hook_url).unwrap();
    let mut text = std::fs::read_to_string(cfg.path()).unwrap();
    text.push_str(&format!(
        "\n[canary]\nlocation = \"{LOCATION}\"\nfailures_before_alert = 2\ngrace = \"10s\"\n\
         [[canary.webhook]]\nformat = \"generic\"\nurl_file = {:?}\n",
        hook.display().to_string()
    ));
    std::fs::write(cfg.path(), text).unwrap();
    cfg
}

/// The alerts received with the given transition.
fn alerts(hooks: &Receiver, transition: &str) -> Vec<Value> {
    hooks
        .json()
        .into_iter()
        .filter(|a| a["transition"] == transition)
        .collect()
}

fn wait_alert(hooks: &Receiver, transition: &str, secs: u64) -> Value {
    wait_for(secs, &format!("a {transition} alert"), || {
        alerts(hooks, transition)
            .into_iter()
            .next()
            .ok_or_else(|| format!("{:?}", hooks.bodies()))
    })
}

fn wait_up(prom: &Prometheus, canary: &LabProcess, want: f64, secs: u64) {
    let expr = format!("flowtest_up{{scenario=\"{SCENARIO}\",location=\"{LOCATION}\"}}");
    wait_for(
        secs,
        &format!("{expr} == {want} in Prometheus"),
        || match prom.value(&expr, None) {
            Ok(v) if v == want => Ok(()),
            other => Err(format!("{other:?}\ncanary log tail:\n{}", tail(canary))),
        },
    );
}

fn tail(p: &LabProcess) -> String {
    let out = p.output();
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Failed probes of the scenario as Prometheus saw them at `at` (0 when no such series yet).
fn failures(prom: &Prometheus, at: Option<f64>) -> f64 {
    let expr = format!(
        "sum(flowtest_probes_total{{scenario=\"{SCENARIO}\",status=~\"{FAILING}\"}}) or vector(0)"
    );
    prom.value(&expr, at).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn prometheus_sees_dell_down_and_its_recovery_and_one_alert_each_way() {
    let lab = lab();
    let hooks = Receiver::serve(lab_listener());
    let cfg = config(&format!("http://127.0.0.1:{}/hook/canary", hooks.port));
    let listen = format!("127.0.0.1:{}", lab_free_port());
    let prom = Prometheus::start(&lab, &listen);
    let log = cfg.path().with_file_name("canary.log");
    let cfg_path = cfg.path().display().to_string();
    let mut canary = LabProcess::start(
        &lab,
        &[
            env!("CARGO_BIN_EXE_flowtest"),
            "--config",
            &cfg_path,
            "--log-format",
            "json",
            "-v",
            "canary",
            "--listen",
            &listen,
        ],
        &log,
    );

    // Healthy first: Prometheus has scraped a delivered verdict, and no failure.
    wait_up(&prom, &canary, 1.0, 60);
    let healthy_at = now_unix();
    assert_eq!(failures(&prom, Some(healthy_at)), 0.0, "{}", tail(&canary));

    let fault = lab.fault("dell-down", &[]);
    let fault_at = now_unix();
    wait_up(&prom, &canary, 0.0, 60);
    let failing = wait_alert(&hooks, "failing", 30);
    drop(fault); // lab/heal: dell's Postfix back, queues flushed
    let healed_at = now_unix();
    wait_up(&prom, &canary, 1.0, 90);
    let recovered = wait_alert(&hooks, "recovered", 30);
    // A few more healthy probes: none of them may alert again.
    std::thread::sleep(Duration::from_secs(5));

    // PromQL while the canary still runs (a stopped target's series go stale).
    let end = now_unix();
    let up = prom
        .range(
            &format!("flowtest_up{{scenario=\"{SCENARIO}\"}}"),
            fault_at,
            end,
            Duration::from_secs(1),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        up.iter()
            .any(|(t, v)| *v == 0.0 && *t >= fault_at && *t <= healed_at + 1.0),
        "flowtest_up was never 0 during the fault: {up:?}"
    );
    assert_eq!(
        up.last().map(|p| p.1),
        Some(1.0),
        "up after the heal: {up:?}"
    );
    let failed = failures(&prom, None);
    assert!(
        failed >= 2.0,
        "the failure counter rose from 0 to {failed} (two failures raise the alert)"
    );
    let findings = prom
        .query(
            &format!(
                "flowtest_findings_total{{scenario=\"{SCENARIO}\",code=\"next_hop_refused\"}}"
            ),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        findings
            .iter()
            .any(|s| s.value >= 1.0 && s.labels["location"] == LOCATION),
        "next_hop_refused finding in Prometheus: {findings:?}"
    );

    canary.signal("-TERM");
    let status = canary
        .wait_exit(40)
        .expect("the canary stops after SIGTERM");
    assert!(status.success(), "exit {status:?}:\n{}", tail(&canary));

    // Exactly one alert each way, the failing one naming the stage and the finding.
    let all = hooks.json();
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(alerts(&hooks, "failing").len(), 1, "{all:#?}");
    assert_eq!(alerts(&hooks, "recovered").len(), 1, "{all:#?}");
    assert_eq!(failing["scenario"], SCENARIO);
    assert_eq!(failing["location"], LOCATION);
    assert_eq!(failing["status"], "lost", "{failing:#}");
    assert_eq!(failing["failing_stage"], "ec2-mx", "{failing:#}");
    assert_eq!(failing["finding"], "next_hop_refused", "{failing:#}");
    assert!(
        failing["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{failing:#}"
    );
    assert!(failing["consecutive_failures"].as_u64() >= Some(2));
    assert_eq!(recovered["status"], "delivered", "{recovered:#}");
    assert!(recovered["failing_stage"].is_null(), "{recovered:#}");

    report_shows_the_outage(&lab, &cfg_path);
}

/// `flowtest report` over the history this canary wrote: the outage is an incident with its
/// finding and hint, and the availability it cost is what its failed probes weigh.
fn report_shows_the_outage(lab: &support::Lab, cfg_path: &str) {
    // Through lab/run, which gives the configuration its secrets' environment.
    let out = std::process::Command::new(lab.repo.join("lab/run"))
        .args([
            env!("CARGO_BIN_EXE_flowtest"),
            "--config",
            cfg_path,
            "report",
            "--since",
            "1h",
            "--format",
            "json",
        ])
        .env("FLOWTEST_LAB_DIR", &lab.dir)
        .output()
        .expect("run flowtest report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let rows = report["scenarios"].as_array().expect("scenarios");
    let row = rows
        .iter()
        .find(|r| r["scenario"] == SCENARIO)
        .unwrap_or_else(|| panic!("{SCENARIO} in the report: {report:#}"));
    assert_eq!(row["location"], LOCATION, "{row:#}");
    let failed = row["lost"].as_u64().unwrap()
        + row["late"].as_u64().unwrap()
        + row["failed"].as_u64().unwrap();
    assert!(failed >= 2, "the outage's failed probes: {row:#}");
    let availability = row["availability_percent"].as_f64().unwrap();
    assert!(availability < 100.0, "{row:#}");
    let incident = row["incidents"]
        .as_array()
        .and_then(|i| i.first())
        .unwrap_or_else(|| panic!("no incident: {row:#}"));
    let codes: Vec<&str> = incident["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"next_hop_refused"), "{incident:#}");
    assert!(
        incident["findings"][0]["hint"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{incident:#}"
    );
    // What the incident cost: its failed probes over the decided ones.
    let decided = row["delivered"].as_u64().unwrap() + failed;
    let cost = incident["availability_cost_percent"].as_f64().unwrap();
    let expected = incident["failed_probes"].as_f64().unwrap() * 100.0 / decided as f64;
    assert!(
        cost > 0.0 && (cost - expected).abs() < 0.01,
        "cost {cost} vs {expected}: {incident:#}"
    );
}
