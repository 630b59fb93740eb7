//! `flowtest canary` against the real lab, without faults: every lab scenario on a 3 s period
//! for a bounded time, /metrics and /healthz scraped inside the lab's namespace, then SIGTERM.
//! Tolerates other engineers' probes in the same mailboxes (probes are matched by their ids).
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent.
mod support;

use support::flowtest::{lab_scenario, Cfg};
use support::{describe, lab, Lab};

/// Delivered probes of `scenario` in the exposition text.
fn delivered(metrics: &str, scenario: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("flowtest_probes_total{")
                && l.contains(&format!("scenario=\"{scenario}\""))
                && l.contains("status=\"delivered\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Run the canary on `cfg` in the lab for `secs` seconds, scrape /healthz and /metrics inside
/// the lab's namespace, stop it with SIGTERM (it must exit 0), and return what was scraped.
fn run_canary(lab: &Lab, cfg: &Cfg, secs: u32) -> String {
    let port = 20_000 + std::process::id() % 40_000;
    let script = format!(
        "{bin} --config {cfg} --log-format json -v canary --listen 127.0.0.1:{port} 2>/dev/null & pid=$!; \
         sleep {secs}; echo '--- healthz'; curl -s -w '%{{http_code}}\\n' http://127.0.0.1:{port}/healthz; \
         echo '--- metrics'; curl -s http://127.0.0.1:{port}/metrics; \
         kill -TERM $pid; wait $pid; echo \"--- exit $?\"",
        bin = env!("CARGO_BIN_EXE_flowtest"),
        cfg = cfg.path().display(),
    );
    let out = lab.run(&["bash", "-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("--- exit 0"), "{}", describe(&out));
    stdout
}

#[test]
fn canary_probes_every_lab_scenario_and_exports_metrics() {
    let lab = lab();
    let _healthy = lab.healthy();
    let files = [
        "lab-inbound.toml",
        "lab-outbound.toml",
        "lab-provider-inbound.toml",
    ];
    let scenarios: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let name = format!("canary-{}", f.trim_end_matches(".toml"));
            lab_scenario(f, &name, |t| {
                t.replacen(
                    &format!("name = \"{name}\""),
                    &format!("name = \"{name}\"\nevery = \"3s\""),
                    1,
                )
            })
        })
        .collect();
    let refs: Vec<(&str, String)> = scenarios
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    let cfg = Cfg::new(&refs);
    let mut text = std::fs::read_to_string(cfg.path()).unwrap();
    text.push_str("\n[canary]\nlocation = \"lab-test\"\ngrace = \"30s\"\n");
    std::fs::write(cfg.path(), text).unwrap();
    let stdout = run_canary(&lab, &cfg, 15);
    assert!(stdout.contains("ok\n200"), "healthz: {stdout}");
    for (name, _) in &scenarios {
        assert!(
            delivered(&stdout, name) >= 2.0,
            "{name}: at least two delivered probes in 15 s on a 3 s period\n{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "flowtest_up{{location=\"lab-test\",scenario=\"{name}\"}} 1"
            )),
            "{name} up: {stdout}"
        );
    }
    assert!(stdout.contains("flowtest_stage_seconds_count{"), "{stdout}");
}

/// The VPN down with one place among `max_concurrency`: the inbound probe waits for its
/// timeout, and the outbound scenario (dell -> relayhost -> provider, no VPN on its path) is
/// still probed on its period meanwhile, since a probe waiting for its delivery holds no place.
/// (When the wait held the place, the outbound probes waited for the inbound one's 8 s: at
/// most two in 10 s.)
#[test]
fn an_outage_on_one_path_does_not_hold_back_the_others() {
    let lab = lab();
    let _down = lab.fault("vpn-down", &[]);
    // Top-level scenario keys, put before the first table.
    let keys = |lines: &'static str| {
        move |t: String| t.replacen("\n[sender]", &format!("\n{lines}\n[sender]"), 1)
    };
    let inbound = lab_scenario(
        "lab-inbound.toml",
        "outage-inbound",
        keys("every = \"2s\"\ntimeout = \"8s\""),
    );
    let outbound = lab_scenario(
        "lab-outbound.toml",
        "outage-outbound",
        keys("every = \"2s\""),
    );
    let cfg = Cfg::new(&[
        (inbound.0.as_str(), inbound.1.clone()),
        (outbound.0.as_str(), outbound.1.clone()),
    ]);
    let text = std::fs::read_to_string(cfg.path()).unwrap();
    let one = text.replace("max_concurrency = 4", "max_concurrency = 1");
    assert_ne!(
        one, text,
        "lab/flowtest.toml changed shape: update this test"
    );
    std::fs::write(
        cfg.path(),
        format!("{one}\n[canary]\nlocation = \"lab-test\"\ngrace = \"1s\"\n"),
    )
    .unwrap();
    let stdout = run_canary(&lab, &cfg, 10);
    assert_eq!(
        delivered(&stdout, "outage-inbound"),
        0.0,
        "the VPN is down: {stdout}"
    );
    let out_delivered = delivered(&stdout, "outage-outbound");
    assert!(
        out_delivered >= 3.0,
        "outbound delivered {out_delivered} times in 10 s on a 2 s period while inbound waited\n{stdout}"
    );
}
