//! `flowtest canary` as a process: scenarios on `every = "1s"` against closed loopback ports
//! (every probe fails fast), /metrics and /healthz scraped over HTTP on 127.0.0.1, a webhook
//! receiver in the test, SIGHUP with a broken configuration (kept running, reload metric 0),
//! and SIGTERM ending it cleanly. The webhook URL carries a token that must never be logged.
mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::http::{free_port, get, metric, Receiver};

const TOKEN: &str = "T0KEN-must-never-be-logged";

fn write_config(dir: &Path, broken: bool) {
    let text = if broken {
        "state_dir = \"state\"\nmax_concurrency = 0\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_KEY\"\n"
            .to_string()
    } else {
        "state_dir = \"state\"\nmax_concurrency = 2\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_KEY\"\n\
         [canary]\nlocation = \"ci\"\nfailures_before_alert = 2\ngrace = \"5s\"\n\
         [[canary.webhook]]\nformat = \"generic\"\nurl_env = \"FT_HOOK\"\n"
            .to_string()
    };
    std::fs::write(dir.join("flowtest.toml"), text).unwrap();
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), false);
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    let closed = free_port();
    for name in ["alpha", "beta"] {
        std::fs::write(
            dir.path().join(format!("scenarios/{name}.toml")),
            format!(
                "name = \"{name}\"\nevery = \"1s\"\ntimeout = \"2s\"\n\
                 [sender]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {closed}\ntls = \"none\"\n\
                 allow_plaintext = true\nmail_from = \"a@b.test\"\nrcpt_to = \"c@d.test\"\n\
                 [receiver]\nhost = \"127.0.0.1\"\nport = {closed}\ntls = \"none\"\nallow_plaintext = true\n\
                 username = \"c@d.test\"\npassword_env = \"FT_PW\"\n"
            ),
        )
        .unwrap();
    }
    dir
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Poll /metrics until `cond` holds (at most `secs`).
fn wait_metrics(addr: &str, secs: u64, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = flowtest::clock::std_instant() + Duration::from_secs(secs);
    loop {
        if let Some((200, text)) = get(addr, "/metrics") {
            if cond(&text) {
                return text;
            }
            assert!(
                flowtest::clock::std_instant() < deadline,
                "timed out waiting for {what}:\n{text}"
            );
        } else {
            assert!(
                flowtest::clock::std_instant() < deadline,
                "timed out waiting for {what}: no /metrics"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn canary_probes_alerts_survives_a_bad_reload_and_stops_on_sigterm() {
    let dir = setup();
    let hooks = Receiver::serve(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowtest"))
        .arg("--config")
        .arg(dir.path().join("flowtest.toml"))
        .args(["--log-format", "json", "-v", "canary", "--listen", &addr])
        .env_remove("FLOWTEST_CONFIG")
        .env_remove("RUST_LOG")
        .env("FT_KEY", "0123456789abcdef0123456789abcdef")
        .env("FT_PW", "pw")
        .env(
            "FT_HOOK",
            format!("http://127.0.0.1:{}/hook/{TOKEN}", hooks.port),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowtest canary");

    // Every scenario is present from start-up; both fail (nothing listens) and alert once.
    let text = wait_metrics(&addr, 20, "two failed probes of each scenario", |t| {
        ["alpha", "beta"].iter().all(|s| {
            metric(
                t,
                "flowtest_probes_total",
                &[&format!("scenario=\"{s}\""), "status=\"fetch_failed\""],
            )
            .is_some_and(|v| v >= 2.0)
        })
    });
    for s in ["alpha", "beta"] {
        let labels = [format!("scenario=\"{s}\""), "location=\"ci\"".to_string()];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert_eq!(metric(&text, "flowtest_up", &labels), Some(0.0), "{text}");
    }
    assert_eq!(
        metric(&text, "flowtest_config_reload_success", &[]),
        Some(1.0)
    );
    let (status, body) = get(&addr, "/healthz").expect("healthz answers");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, page) = get(&addr, "/").expect("status page");
    assert_eq!(status, 200);
    assert!(
        page.contains("alpha") && page.contains("fetch_failed"),
        "{page}"
    );

    // A broken configuration on SIGHUP: refused, the old one keeps probing.
    write_config(dir.path(), true);
    signal(&child, "-HUP");
    let text = wait_metrics(&addr, 10, "the refused reload", |t| {
        metric(t, "flowtest_config_reload_success", &[]) == Some(0.0)
    });
    let before = metric(&text, "flowtest_probes_total", &["scenario=\"alpha\""]).unwrap();
    wait_metrics(&addr, 10, "probing to go on", |t| {
        metric(t, "flowtest_probes_total", &["scenario=\"alpha\""])
            .is_some_and(|v| v >= before + 1.0)
    });

    signal(&child, "-TERM");
    let deadline = flowtest::clock::std_instant() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            flowtest::clock::std_instant() < deadline,
            "canary did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}; stderr:\n{err}");
    assert!(
        !err.contains(TOKEN),
        "the webhook token leaked into the log"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("configuration reload refused"), "{err}");
    assert!(err.contains("max_concurrency"), "the log says why: {err}");
    let verdict = err
        .lines()
        .find(|l| l.contains("\"probe verdict\""))
        .expect("a verdict event");
    let v: serde_json::Value = serde_json::from_str(verdict).unwrap();
    assert_eq!(v["fields"]["status"], "fetch_failed", "{verdict}");
    assert_eq!(v["fields"]["location"], "ci");

    // Exactly one failing alert per scenario; no recovery (the world never healed).
    let got = hooks.bodies();
    let mut alerts: Vec<(String, String)> = got
        .iter()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            (
                v["scenario"].as_str().unwrap().to_string(),
                v["transition"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [
            ("alpha".to_string(), "failing".to_string()),
            ("beta".to_string(), "failing".to_string())
        ],
        "{got:?}"
    );
}

#[test]
fn check_config_reads_webhook_references_without_showing_them() {
    let dir = setup();
    let run = |hook: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
        c.arg("--config")
            .arg(dir.path().join("flowtest.toml"))
            .arg("check-config")
            .env_remove("FLOWTEST_CONFIG")
            .env_remove("FT_HOOK")
            .env("FT_KEY", "0123456789abcdef0123456789abcdef")
            .env("FT_PW", "pw");
        if let Some(h) = hook {
            c.env("FT_HOOK", h);
        }
        c.output().unwrap()
    };
    let o = run(None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("webhook[0] (generic)") && err.contains("FT_HOOK"),
        "{err}"
    );
    let o = run(Some(&format!("not a url {TOKEN}")));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("not a valid URL") && !err.contains(TOKEN),
        "{err}"
    );
    let o = run(Some(&format!("https://hooks.example.test/{TOKEN}")));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains(TOKEN));
}
