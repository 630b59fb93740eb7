//! `flowtest run` under every lab fault: the right status, finding code
//! and stage from the servers' own logs; permanent failures end the wait at once (fail-fast is
//! measured from the failing log line to the verdict); a deferred probe delivered after
//! `lab/heal` keeps its deferral finding.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent.
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use support::flowtest::{flowtest, lab_scenario, only, Cfg};
use support::{describe, lab};

/// Run one edited copy of a lab scenario; returns (exit code, the result, wall time).
fn run_scenario(file: &str, name: &str, extra: &[&str]) -> (Option<i32>, Value, Duration) {
    let lab = lab();
    let (n, t) = lab_scenario(file, name, |t| t);
    let cfg = Cfg::new(&[(&n, t)]);
    let mut args = vec!["run", name];
    args.extend_from_slice(extra);
    let started = flowtest::clock::std_instant();
    let (out, v) = flowtest(&lab, &cfg.path(), &args);
    let took = started.elapsed();
    (out.status.code(), only(&v).clone(), took)
}

fn finding<'a>(r: &'a Value, code: &str) -> &'a Value {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} finding in {r:#}"))
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn evidence(f: &Value) -> String {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A probe stuck on the MX: lost at the timeout, the deferral named at the MX's stage, with the
/// MX's own log line as evidence.
fn assert_stuck_at_mx(fault: &str, args: &[&str], timeout: &str, code: &str, reason: &str) {
    let lab = lab();
    let _f = lab.fault(fault, args);
    let (exit, r, _) = run_scenario(
        "lab-inbound.toml",
        &format!("f-{fault}"),
        &["--timeout", timeout],
    );
    assert_eq!(exit, Some(2), "{r:#}");
    assert_eq!(r["status"], "lost", "{r:#}");
    assert_eq!(r["log_status"], "deferred", "{r:#}");
    assert_eq!(r["last_hop"], "ec2-mx", "{r:#}");
    let f = finding(&r, code);
    assert_eq!(f["stage"], "ec2-mx", "{f:#}");
    assert_eq!(f["host"], "ec2", "{f:#}");
    assert!(evidence(f).contains(reason), "{f:#}");
    assert!(
        f["hint"].as_str().unwrap().len() > 20,
        "a fix is named: {f:#}"
    );
}

#[test]
fn dell_down_is_lost_at_the_mx_with_connection_refused() {
    assert_stuck_at_mx(
        "dell-down",
        &[],
        "4s",
        "next_hop_refused",
        "Connection refused",
    );
}

#[test]
fn vpn_down_is_lost_at_the_mx_with_network_unreachable() {
    assert_stuck_at_mx(
        "vpn-down",
        &[],
        "4s",
        "next_hop_unreachable",
        "Network is unreachable",
    );
}

#[test]
fn vpn_blackhole_is_lost_at_the_mx_with_connect_timeout() {
    // The lab's smtp_connect_timeout is 5 s: wait past it.
    assert_stuck_at_mx(
        "vpn-blackhole",
        &[],
        "9s",
        "next_hop_timeout",
        "Connection timed out",
    );
}

#[test]
fn relay_domain_missing_downstream_bounces_fast_with_the_fix() {
    // The provider accepts the probe; the MX refuses it; the provider bounces it. The logs show
    // that within a second: the run must not wait for its 60 s timeout.
    let lab = lab();
    let _f = lab.fault("relay-domain-missing", &[]);
    let (exit, r, took) = run_scenario(
        "lab-provider-inbound.toml",
        "f-relay-bounce",
        &["--timeout", "60s"],
    );
    assert_eq!(exit, Some(2), "{r:#}");
    assert_eq!(r["status"], "bounced", "{r:#}");
    assert!(
        r["submission"]["queue_id"].is_string(),
        "accepted by the provider first: {r:#}"
    );
    let f = finding(&r, "relay_access_denied");
    assert_eq!(f["stage"], "ec2-mx", "{f:#}");
    assert!(evidence(f).contains("Relay access denied"), "{f:#}");
    assert!(
        f["hint"].as_str().unwrap().contains("relay_domains"),
        "{f:#}"
    );
    assert!(
        took < Duration::from_secs(15),
        "fail-fast: took {took:?} of a 60 s timeout"
    );
    // From the failing log line (whole-second stamp) to the verdict.
    let lag = ts(&r["verdict_at"]) - ts(&f["first_seen"]);
    assert!(
        lag.num_milliseconds() < 3000,
        "verdict {lag} after the log line"
    );
}

#[test]
fn relay_domain_missing_at_submission_is_rejected_with_log_evidence() {
    let lab = lab();
    let _f = lab.fault("relay-domain-missing", &[]);
    let (exit, r, _) = run_scenario("lab-inbound.toml", "f-relay-direct", &[]);
    assert_eq!(exit, Some(2), "{r:#}");
    assert_eq!(r["status"], "rejected");
    let f = finding(&r, "relay_access_denied");
    let ev = evidence(f);
    assert!(ev.contains("554 5.7.1"), "{ev}");
    assert!(
        ev.contains("NOQUEUE: reject"),
        "the MX's own log line joins the reply: {ev}"
    );
}

#[test]
fn transport_unmapped_is_rejected_with_lookup_failure() {
    let lab = lab();
    let _f = lab.fault("transport-unmapped", &[]);
    let (exit, r, took) = run_scenario("lab-inbound.toml", "f-transport", &["--timeout", "60s"]);
    assert_eq!(exit, Some(2), "{r:#}");
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert_eq!(r["submission"]["code"], 451);
    let f = finding(&r, "lookup_failure");
    assert!(f["hint"].as_str().unwrap().contains("postmap"), "{f:#}");
    assert!(took < Duration::from_secs(15));
}

#[test]
fn dovecot_down_is_fetch_failed_and_nothing_is_sent() {
    let lab = lab();
    let _f = lab.fault("dovecot-down", &[]);
    let (exit, r, _) = run_scenario("lab-inbound.toml", "f-dovecot", &[]);
    assert_eq!(exit, Some(2), "{r:#}");
    assert_eq!(r["status"], "fetch_failed");
    assert!(r["submission"].is_null(), "{r:#}");
    assert!(
        r["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{r:#}"
    );
}

#[test]
fn mailstore_permission_is_named_from_dovecots_log() {
    // Depending on whether Dovecot can still open the mailbox for IMAP, the run either cannot
    // read it (fetch_failed) or sees delivery fail (lost): either way the logs name the cause.
    let lab = lab();
    let _f = lab.fault("mailstore-permission", &[]);
    let (exit, r, _) = run_scenario("lab-inbound.toml", "f-perm", &["--timeout", "5s"]);
    assert_eq!(exit, Some(2), "{r:#}");
    assert!(
        r["status"] == "fetch_failed" || r["status"] == "lost",
        "{r:#}"
    );
    let f = finding(&r, "mailbox_permission_denied");
    assert!(evidence(f).contains("Permission denied"), "{f:#}");
    assert!(f["hint"].as_str().unwrap().contains("5000"), "{f:#}");
}

#[test]
fn slow_dell_puts_the_delay_on_the_dell_stage_and_is_slow() {
    let lab = lab();
    let _f = lab.fault("slow-dell", &["3"]);
    let (n, t) = lab_scenario("lab-inbound.toml", "f-slow", |t| {
        t.replace("target = \"5s\"", "target = \"2s\"")
    });
    let cfg = Cfg::new(&[(&n, t)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["run", "f-slow", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = only(&v);
    assert_eq!(r["status"], "slow");
    let stage = |name: &str| {
        r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {r:#}"))
            .clone()
    };
    let relay = stage("tailscale-relay");
    assert_eq!(relay["source"], "log");
    assert!(relay["ms"].as_u64().unwrap() >= 2900, "{relay:#}");
    assert!(
        stage("ec2-mx")["ms"].as_u64().unwrap() < 1000,
        "the MX did not cause it: {r:#}"
    );
}

#[test]
fn deferred_probe_delivered_after_heal_keeps_its_deferral_finding() {
    let lab = lab();
    // The heal comes 4 s in: a generous SLO keeps the verdict on delivery, not speed.
    let (n, t) = lab_scenario("lab-inbound.toml", "f-heal", |t| {
        t.replace("target = \"5s\"", "target = \"50s\"")
            .replace("max = \"20s\"", "max = \"60s\"")
    });
    let cfg = Cfg::new(&[(&n, t)]);
    let path = cfg.path();
    let fault = lab.fault("dell-down", &[]);
    let run =
        std::thread::spawn(move || flowtest(&lab, &path, &["run", "f-heal", "--timeout", "60s"]));
    // The MX tries at once and defers; give it time to log that, then heal (flushes the queues).
    std::thread::sleep(Duration::from_secs(4));
    drop(fault);
    let (out, v) = run.join().unwrap();
    let r = only(&v);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["status"], "delivered", "{r:#}");
    assert_eq!(r["log_status"], "delivered", "{r:#}");
    let f = finding(r, "next_hop_refused");
    assert_eq!(f["stage"], "ec2-mx");
    assert!(evidence(f).contains("Connection refused"), "{f:#}");
}

#[test]
fn lost_imap_sessions_are_re_established_and_the_probe_still_found() {
    // Regression (CI): a Dovecot restart during the wait used to end it at once as `lost`.
    // slow-dell holds the probe 4 s at dell (under its 5 s SLO), long enough to kill the watching
    // sessions first.
    let lab = lab();
    let (n, t) = lab_scenario("lab-inbound.toml", "f-reconnect", |t| t);
    let cfg = Cfg::new(&[(&n, t)]);
    let path = cfg.path();
    let _f = lab.fault("slow-dell", &["4"]);
    let run = std::thread::spawn(move || {
        flowtest(&lab, &path, &["run", "f-reconnect", "--timeout", "30s"])
    });
    assert!(
        support::wait_for_dell_imap_sessions(1, Duration::from_secs(5)),
        "the run's IDLE session was opened"
    );
    assert!(
        support::kill_dell_imap_sessions() >= 1,
        "the run's IDLE session was there to kill"
    );
    let (out, v) = run.join().unwrap();
    let r = only(&v);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["status"], "delivered", "{r:#}");
    assert!(
        r["warnings"].to_string().contains("re-established"),
        "{r:#}"
    );
    assert_eq!(r["cleanup"]["deleted"], 1, "{r:#}");
}

/// After a failed login from the probe's address, Dovecot delays that address's next login
/// (its auth penalty, 2 s after one failure): the probe still delivers, and its result says
/// where the time went, the submission's AUTH step, and the likely cause.
#[test]
fn a_login_penalty_is_named_as_the_slow_submission_step() {
    let lab = lab();
    // Alone: the penalty would slow every other test's logins from the same address.
    let _g = lab.alone();
    let user = "probe@provider.test";
    let bad = lab.submit_with(
        &support::token("penalty"),
        "smtp.provider.test",
        user,
        "not-the-password",
        "alice@corp.test",
    );
    assert!(!bad.accepted(), "{}", bad.transcript);
    assert!(
        lab.dovecot_penalties("provider")
            .iter()
            .any(|(_, n)| *n > 0),
        "the failed login left no penalty"
    );
    let (code, r, _) = run_scenario("lab-provider-inbound.toml", "lab-provider-penalty", &[]);
    assert_eq!(code, Some(0), "{r:#}");
    let steps = r["submission"]["steps"].as_array().expect("steps");
    let auth = steps
        .iter()
        .find(|s| s["step"] == "auth")
        .expect("an AUTH step");
    assert!(auth["ms"].as_u64().unwrap() >= 1900, "{r:#}");
    let noted = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .any(|n| n.starts_with("the submission's AUTH step took") && n.contains("doveadm penalty"));
    assert!(noted, "{r:#}");
    let stage = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "submission")
        .unwrap();
    assert!(
        stage["detail"].as_str().unwrap().contains(", AUTH "),
        "{stage}"
    );
}
