//! `flowtest run` against the real lab: every lab scenario delivered with
//! its stages in order; Junk filing; lost then late; fail-fast rejection; IMAP auth failure;
//! IDLE versus poll; concurrent runs; and cleanup that never touches anything but verified probes.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent.
mod support;

use std::time::Duration;

use serde_json::Value;
use support::flowtest::{flowtest, lab_scenario, only, Cfg};
use support::{describe, lab, Lab};

fn stage_names(r: &Value) -> Vec<String> {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_lab_scenario_is_delivered_with_its_stages_in_order() {
    let lab = lab();
    let _g = lab.healthy();
    // The shipped configuration, exactly as `lab/run flowtest run --all` uses it (own state dir).
    let cfg = Cfg::shipped();
    let (out, v) = flowtest(&lab, &cfg.path(), &["run", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let expect: &[(&str, &[&str])] = &[
        (
            "lab-inbound",
            &["submission", "ec2-mx", "tailscale-relay", "dovecot-lmtp"],
        ),
        (
            "lab-outbound",
            &["submission", "dell-submission", "sendgrid-relay"],
        ),
        (
            "lab-provider-inbound",
            &[
                "submission",
                "provider-submission",
                "ec2-mx",
                "tailscale-relay",
                "dovecot-lmtp",
            ],
        ),
    ];
    for (name, stages) in expect {
        let r = results
            .iter()
            .find(|r| r["scenario"] == *name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(r["status"], "delivered", "{r:#}");
        let total = r["total_ms"].as_i64().unwrap();
        assert!(total > 0 && total < 20_000, "{name}: total {total}");
        // The mailbox server's own save line bounds delivery below detection.
        let delivered = r["delivered_ms"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: no delivered_ms: {r:#}"));
        assert!(
            delivered > 0 && delivered <= total,
            "{name}: delivered {delivered} of total {total}"
        );
        assert_eq!(r["log_status"], "delivered", "{r:#}");
        let got = stage_names(r);
        assert!(
            got.len() >= stages.len()
                && got[..stages.len()]
                    == stages.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..],
            "{name}: stages {got:?}, expected {stages:?} first"
        );
        assert_eq!(r["missing_stages"].as_array().unwrap().len(), 0, "{r:#}");
        assert!(r["submission"]["queue_id"].is_string(), "{r:#}");
        assert_eq!(r["cleanup"]["deleted"], 1, "own probe removed: {r:#}");
    }
    // Three hops for the inbound path (ec2, dell, LMTP) at least.
    let inbound = results
        .iter()
        .find(|r| r["scenario"] == "lab-inbound")
        .unwrap();
    assert!(
        inbound["hops"].as_array().unwrap().len() >= 3,
        "{inbound:#}"
    );
}

#[test]
fn junk_filing_is_delivered_spam_exit_1() {
    let lab = lab();
    let _g = lab.healthy();
    let (n, t) = lab_scenario("lab-inbound.toml", "spam-probe", |t| {
        t.replace("[slo]", "[headers]\nX-Lab-Spam = \"yes\"\n\n[slo]")
    });
    let cfg = Cfg::new(&[(&n, t)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["spam-probe"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = only(&v);
    assert_eq!(r["status"], "delivered_spam");
    assert_eq!(r["folder"], "Junk");
    assert_eq!(r["findings"][0]["code"], "spam_folder");
}

#[test]
fn idle_detects_arrival_and_polling_works_when_idle_is_off() {
    let lab = lab();
    let _g = lab.healthy();
    let (n1, t1) = lab_scenario("lab-inbound.toml", "idle-probe", |t| t);
    let (n2, t2) = lab_scenario("lab-inbound.toml", "poll-probe", |t| {
        t.replace(
            "folders = [\"INBOX\", \"Junk\"]",
            "folders = [\"INBOX\", \"Junk\"]\nidle = false\npoll_interval = \"200ms\"",
        )
    });
    let cfg = Cfg::new(&[(&n1, t1), (&n2, t2)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["idle-probe"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Right after acceptance flowtest looks itself (Dovecot's push comes ~500 ms after the
    // save): a lab delivery is seen by those looks ("poll"), a later one by IDLE; either way
    // with a bounded number of commands.
    let r = only(&v);
    assert!(
        r["detected_by"] == "poll" || r["detected_by"] == "idle",
        "{r:#}"
    );
    let commands = r["imap_commands"].as_u64().unwrap_or(0);
    assert!((1..=80).contains(&commands), "{r:#}");
    let (out, v) = flowtest(&lab, &cfg.path(), &["poll-probe"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(only(&v)["detected_by"], "poll");
}

#[test]
fn server_without_idle_falls_back_to_polling() {
    let lab = lab();
    let _g = lab.fault("imap-no-idle", &[]);
    let (n, t) = lab_scenario("lab-inbound.toml", "noidle", |t| t);
    let cfg = Cfg::new(&[(&n, t)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["noidle"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = only(&v);
    assert_eq!(r["detected_by"], "poll");
    assert!(
        r["warnings"].to_string().contains("does not offer IDLE"),
        "{r:#}"
    );
}

#[test]
fn relay_domain_missing_is_rejected_without_waiting() {
    let lab = lab();
    let _g = lab.fault("relay-domain-missing", &[]);
    let (n, t) = lab_scenario("lab-inbound.toml", "relay", |t| t);
    let cfg = Cfg::new(&[(&n, t)]);
    let started = flowtest::clock::std_instant();
    let (out, v) = flowtest(&lab, &cfg.path(), &["relay", "--timeout", "60s"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let r = only(&v);
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["submission"]["code"], 554);
    assert!(
        r["submission"]["text"]
            .as_str()
            .unwrap()
            .contains("Relay access denied"),
        "{r:#}"
    );
    assert_eq!(r["findings"][0]["code"], "relay_access_denied");
    assert!(
        took < Duration::from_secs(15),
        "a rejection must not wait for the 60 s timeout: {took:?}"
    );
}

#[test]
fn imap_auth_broken_is_fetch_failed() {
    let lab = lab();
    let _g = lab.fault("imap-auth-broken", &[]);
    let (n, t) = lab_scenario("lab-inbound.toml", "authbroken", |t| t);
    let cfg = Cfg::new(&[(&n, t)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["authbroken"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let r = only(&v);
    assert_eq!(r["status"], "fetch_failed");
    assert_eq!(r["findings"][0]["code"], "imap_auth_failed");
    assert!(
        r["submission"].is_null(),
        "nothing is sent when the mailbox cannot be read"
    );
}

#[test]
fn dell_down_is_lost_then_recorded_late_after_heal() {
    let lab = lab();
    let (n, t) = lab_scenario("lab-inbound.toml", "lostlate", |t| t);
    let cfg = Cfg::new(&[(&n, t)]);
    let lost_id;
    {
        let _g = lab.fault("dell-down", &[]);
        let (out, v) = flowtest(&lab, &cfg.path(), &["lostlate", "--timeout", "4s"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let r = only(&v);
        assert_eq!(r["status"], "lost", "{r:#}");
        assert!(
            r["submission"]["queue_id"].is_string(),
            "accepted by ec2: {r:#}"
        );
        lost_id = r["probe_id"].as_str().unwrap().to_string();
    } // heal: dell back, queues flushed, the deferred probe is delivered.
    let _g = lab.healthy();
    let deadline = flowtest::clock::std_instant() + Duration::from_secs(60);
    loop {
        let (out, v) = flowtest(&lab, &cfg.path(), &["lostlate"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let late = only(&v)["cleanup"]["marked_late"]
            .as_array()
            .unwrap()
            .clone();
        if late.iter().any(|x| x == lost_id.as_str()) {
            break;
        }
        assert!(
            flowtest::clock::std_instant() < deadline,
            "the lost probe {lost_id} was never recorded late"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn concurrent_runs_on_one_mailbox_keep_their_own_probes() {
    let lab = lab();
    let _g = lab.healthy();
    // INBOX only: one IMAP connection per run, so three runs stay well inside Dovecot's
    // per-user connection limit (mail_max_userip_connections = 10) while other tests run too.
    let (n, t) = lab_scenario("lab-inbound.toml", "concurrent", |t| {
        t.replace("folders = [\"INBOX\", \"Junk\"]", "folders = [\"INBOX\"]")
    });
    let cfg = Cfg::new(&[(&n, t)]);
    let path = cfg.path();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || flowtest(&lab_handle(), &path, &["concurrent"]))
        })
        .collect();
    let mut ids = Vec::new();
    for h in handles {
        let (out, v) = h.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let r = only(&v);
        assert_eq!(r["status"], "delivered", "{r:#}");
        assert_eq!(r["cleanup"]["deleted"], 1, "{r:#}");
        ids.push(r["probe_id"].as_str().unwrap().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

fn lab_handle() -> Lab {
    lab()
}

/// (UID, FLAGS, raw content) of every INBOX message whose subject holds `marker`. FLAGS are read
/// before the content: curl's fetch sets \Seen, so callers fetch once before the first snapshot.
fn snapshot(lab: &Lab, marker: &str) -> Vec<(u32, String, String)> {
    let user = "alice@corp.test";
    let mut uids = lab
        .imap_search(user, "INBOX", &format!("SUBJECT \"{marker}\""))
        .unwrap();
    uids.sort_unstable();
    let flags = lab.imap_flags(user, "INBOX", &uids);
    let contents = lab.imap_fetch(user, "INBOX", &uids).unwrap();
    uids.iter()
        .zip(flags.into_iter().zip(contents))
        .map(|(uid, (flags, c))| (*uid, flags, c))
        .collect()
}

#[test]
fn cleanup_never_touches_ordinary_mail_or_forged_probes() {
    let lab = lab();
    let _g = lab.healthy();
    let marker = support::token("keep");
    // An ordinary message and a forged probe (right headers, wrong signature) from the internet.
    let forged_headers = format!(
        "X-Flowtest-Id: 019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b\nX-Flowtest-Scenario: cleanup\n\
         X-Flowtest-Sent-At: 2020-01-01T00:00:00.000000000Z\nX-Flowtest-Signature: v1={}",
        "ab".repeat(32)
    );
    for (subject, extra) in [
        (format!("{marker} ordinary"), String::new()),
        (format!("{marker} forged"), forged_headers),
    ] {
        let subject_header = format!("Subject: {subject}");
        let mut argv: Vec<&str> = vec![
            "swaks",
            "--silent",
            "2",
            "--server",
            "mx.corp.test",
            "--from",
            "someone@provider.test",
            "--to",
            "alice@corp.test",
            "--header",
            &subject_header,
        ];
        for h in extra.lines() {
            argv.push("--add-header");
            argv.push(h);
        }
        let out = lab.run(&argv);
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert!(lab
        .wait_for_message(
            "alice@corp.test",
            "INBOX",
            &format!("{marker} forged"),
            Duration::from_secs(20)
        )
        .is_some());
    assert!(lab
        .wait_for_message(
            "alice@corp.test",
            "INBOX",
            &format!("{marker} ordinary"),
            Duration::from_secs(20)
        )
        .is_some());
    // Flag the ordinary one, so a changed flag would show.
    let uids = lab
        .imap_search(
            "alice@corp.test",
            "INBOX",
            &format!("SUBJECT \"{marker} ordinary\""),
        )
        .unwrap();
    assert_eq!(uids.len(), 1);
    let flag = lab.imap_curl(
        "alice@corp.test",
        "INBOX",
        &[
            "--request",
            &format!("UID STORE {} +FLAGS (\\Flagged)", uids[0]),
        ],
    );
    assert!(flag.status.success(), "{}", describe(&flag));
    let _settle_seen = snapshot(&lab, &marker);
    let before = snapshot(&lab, &marker);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        before.iter().any(|m| m.1.contains("\\Flagged")),
        "{before:?}"
    );

    // Runs that clean up: a finished run's left-over is theirs to remove; the forged one never.
    let (n, t) = lab_scenario("lab-inbound.toml", "cleanup", |t| t);
    // A run with cleanup off leaves its (verified) probe behind, as a crashed run would.
    let (n2, t2) = lab_scenario("lab-inbound.toml", "leftover", |t| {
        t.replacen("\n[sender]", "\ncleanup = false\n\n[sender]", 1)
    });
    let cfg = Cfg::new(&[(&n, t), (&n2, t2)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["leftover"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(only(&v)["cleanup"]["deleted"], 0);
    let leftover = lab
        .imap_search(
            "alice@corp.test",
            "INBOX",
            "SUBJECT \"flowtest probe leftover \"",
        )
        .unwrap();
    assert_eq!(leftover.len(), 1, "the leftover probe is there");
    let mut swept = 0;
    for _ in 0..4 {
        let (out, v) = flowtest(&lab, &cfg.path(), &["cleanup"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(only(&v)["cleanup"]["deleted"], 1);
        swept += only(&v)["cleanup"]["swept"].as_u64().unwrap();
    }
    assert!(swept >= 1, "the verified leftover probe was swept");
    let leftover = lab
        .imap_search(
            "alice@corp.test",
            "INBOX",
            "SUBJECT \"flowtest probe leftover \"",
        )
        .unwrap();
    assert!(
        leftover.is_empty(),
        "leftover probe still there: {leftover:?}"
    );
    let after = snapshot(&lab, &marker);
    assert_eq!(
        before, after,
        "ordinary mail and the forged probe are untouched: content, flags, folder"
    );
    // No real probe of this scenario is left behind.
    let left = lab
        .imap_search(
            "alice@corp.test",
            "INBOX",
            "SUBJECT \"flowtest probe cleanup \"",
        )
        .unwrap();
    assert!(
        left.is_empty(),
        "real probes of this scenario left behind: UIDs {left:?}"
    );
}
