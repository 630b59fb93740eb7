//! `flowtest run --all` with several scenarios watching one mailbox: they share one IMAP session
//! (one login per mailbox, logged out once), each probe is still found, judged and removed by its
//! own run, and a shared session killed mid-wait is re-established for every probe on it.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent.
mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::flowtest::{lab_scenario, Cfg};
use support::{describe, lab, Lab};

const OPENED: &str = "shared IMAP session opened";
const LOGGED_OUT: &str = "shared IMAP session logged out";

/// `flowtest run --all` with debug diagnostics: its output and results.
fn run_all(lab: &Lab, cfg: &Cfg, extra: &[&str]) -> (Output, Vec<Value>) {
    let bin = env!("CARGO_BIN_EXE_flowtest");
    let path = cfg.path().display().to_string();
    let mut argv = vec![bin, "--config", &path, "-vv", "run", "--all"];
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&["--format", "json"]);
    let out = lab.run(&argv);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("flowtest printed no JSON ({e}): {}", describe(&out)));
    let results = v["results"].as_array().expect("results").clone();
    (out, results)
}

/// How many debug lines say `what` for this user.
fn said(out: &Output, what: &str, user: &str) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(what) && (what == LOGGED_OUT || l.contains(user)))
        .count()
}

/// Each of the two mailboxes' sessions was logged in to `times` times.
fn assert_opened_per_mailbox(out: &Output, times: usize) {
    for user in ["alice@corp.test", "postmaster@corp.test"] {
        assert_eq!(said(out, OPENED, user), times, "{user}: {}", describe(out));
    }
}

/// Copies of lab-inbound: `n` on alice's INBOX, one on postmaster's.
fn scenarios(prefix: &str, n: usize) -> Cfg {
    let inbox = |t: String| t.replace("folders = [\"INBOX\", \"Junk\"]", "folders = [\"INBOX\"]");
    let mut list: Vec<(String, String)> = (0..n)
        .map(|i| lab_scenario("lab-inbound.toml", &format!("{prefix}-alice-{i}"), inbox))
        .collect();
    list.push(lab_scenario(
        "lab-inbound.toml",
        &format!("{prefix}-postmaster"),
        |t| inbox(t).replace("alice@corp.test", "postmaster@corp.test"),
    ));
    let refs: Vec<(&str, String)> = list.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    Cfg::new(&refs)
}

fn assert_each_delivered_and_removed(results: &[Value], n: usize) {
    assert_eq!(results.len(), n);
    for r in results {
        assert_eq!(r["status"], "delivered", "{r:#}");
        assert_eq!(r["cleanup"]["deleted"], 1, "{r:#}");
        assert_eq!(
            r["cleanup"]["swept"], 0,
            "another run's probe was swept: {r:#}"
        );
        let commands = r["imap_commands"].as_u64().expect("imap_commands");
        assert!(commands <= 200, "commands stay bounded per probe: {r:#}");
    }
}

#[test]
fn probes_on_one_mailbox_share_one_session() {
    let lab = lab();
    let _g = lab.healthy();
    let cfg = scenarios("shared", 3);
    let (out, results) = run_all(&lab, &cfg, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_each_delivered_and_removed(&results, 4);
    assert_opened_per_mailbox(&out, 1);
    assert_eq!(said(&out, LOGGED_OUT, ""), 2, "{}", describe(&out));
}

#[test]
fn a_lost_shared_session_is_re_established_for_every_probe_on_it() {
    // slow-dell holds the probes 4 s at dell, long enough to kill the shared sessions first.
    let lab = lab();
    let _f = lab.fault("slow-dell", &["4"]);
    let cfg = scenarios("reshared", 2);
    let run = std::thread::spawn(move || {
        let (out, results) = run_all(&lab, &cfg, &["--timeout", "30s"]);
        (out, results)
    });
    assert!(
        support::wait_for_dell_imap_sessions(2, Duration::from_secs(5)),
        "the shared sessions were opened"
    );
    assert!(
        support::kill_dell_imap_sessions() >= 2,
        "the shared sessions were there to kill"
    );
    let (out, results) = run.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_each_delivered_and_removed(&results, 3);
    for r in &results {
        assert!(
            r["warnings"].to_string().contains("re-established"),
            "{r:#}"
        );
    }
    // Once before the loss and once after it, for both of alice's probes together.
    assert_opened_per_mailbox(&out, 2);
}
