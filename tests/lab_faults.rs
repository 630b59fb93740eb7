//! Lab fault tests: each `lab/fault` reproduces one incident class of the operator's troubleshooting
//! guide. Every test asserts the specific symptom (the client's reply or the exact log line), then
//! that `lab/heal` brings delivery back (deferred mail included: heal flushes the queues).
//! Needs the lab up (`lab/up`, or `lab/test`); fails loudly when it is not.
mod support;

use std::time::Duration;
use support::{lab, token, Lab};

const DELIVERY: Duration = Duration::from_secs(30);
const SYMPTOM: Duration = Duration::from_secs(20);

/// Sends to alice through the MX, expects ec2 to accept it, returns ec2's queue id.
fn send_accepted(lab: &Lab, t: &str) -> String {
    let sent = lab.send_inbound(t, "alice@corp.test", &[]);
    assert!(sent.accepted(), "MX did not accept: {}", sent.transcript);
    sent.queue_id.unwrap()
}

fn delivered_to_alice(lab: &Lab, t: &str) {
    lab.wait_for_message("alice@corp.test", "INBOX", t, DELIVERY)
        .unwrap_or_else(|| panic!("message {t} was not delivered after lab/heal"));
}

/// ec2 defers the message with exactly `reason` (the deferral on the ec2 -> dell hop).
fn ec2_deferral(lab: &Lab, qid: &str, reason: &str) -> String {
    let to = format!("{qid}: to=<alice@corp.test>, relay=none");
    let status =
        format!("dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: {reason})");
    lab.wait_for_log("ec2-postfix.log", &[&to, &status], SYMPTOM)
        .unwrap_or_else(|| {
            panic!(
                "no ec2 deferral {status:?} for {qid}; ec2 log tail:\n{}",
                tail(&lab.log("ec2-postfix.log"))
            )
        })
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[test]
fn dell_down_defers_at_ec2_with_connection_refused_then_heal_delivers() {
    let lab = lab();
    let t = token("dell-down");
    {
        let _f = lab.fault("dell-down", &[]);
        let qid = send_accepted(&lab, &t);
        ec2_deferral(&lab, &qid, "Connection refused");
    }
    let _g = lab.healthy();
    delivered_to_alice(&lab, &t);
}

#[test]
fn vpn_down_defers_at_ec2_with_network_unreachable_then_heal_delivers() {
    let lab = lab();
    let t = token("vpn-down");
    {
        let _f = lab.fault("vpn-down", &[]);
        let qid = send_accepted(&lab, &t);
        ec2_deferral(&lab, &qid, "Network is unreachable");
    }
    let _g = lab.healthy();
    delivered_to_alice(&lab, &t);
}

#[test]
fn vpn_blackhole_defers_at_ec2_with_connect_timeout_then_heal_delivers() {
    let lab = lab();
    let t = token("vpn-blackhole");
    {
        let _f = lab.fault("vpn-blackhole", &[]);
        let qid = send_accepted(&lab, &t);
        let line = ec2_deferral(&lab, &qid, "Connection timed out");
        // smtp_connect_timeout is 5 s in the lab: the time went into connection setup (delays c).
        let c = delays(&line)[2];
        assert!((5.0..7.0).contains(&c), "{line}");
    }
    let _g = lab.healthy();
    delivered_to_alice(&lab, &t);
}

#[test]
fn relay_domain_missing_rejects_rcpt_with_554_relay_access_denied() {
    let lab = lab();
    let t = token("relay-missing");
    {
        let _f = lab.fault("relay-domain-missing", &[]);
        let sent = lab.send_inbound(&t, "alice@corp.test", &[]);
        assert!(!sent.accepted());
        assert!(
            sent.transcript
                .contains("554 5.7.1 <alice@corp.test>: Relay access denied"),
            "{}",
            sent.transcript
        );
        lab.wait_for_log(
            "ec2-postfix.log",
            &[
                "NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <alice@corp.test>: Relay access denied",
                "from=<sender@internet.test> to=<alice@corp.test>",
            ],
            SYMPTOM,
        )
        .expect("no NOQUEUE reject line in ec2's log");
        // Only corp.test was removed: the other hosted domain still gets in.
        let other = lab.send_inbound(&token("relay-missing-other"), "info@newdomain.test", &[]);
        assert!(other.accepted(), "{}", other.transcript);
    }
    let _g = lab.healthy();
    let again = lab.send_inbound(&t, "alice@corp.test", &[]);
    assert!(again.accepted(), "{}", again.transcript);
    delivered_to_alice(&lab, &t);
}

#[test]
fn transport_unmapped_answers_451_temporary_lookup_failure() {
    let lab = lab();
    let t = token("transport");
    {
        let _f = lab.fault("transport-unmapped", &[]);
        let sent = lab.send_inbound(&t, "alice@corp.test", &[]);
        assert!(!sent.accepted());
        assert!(
            sent.transcript
                .contains("451 4.3.0 <alice@corp.test>: Temporary lookup failure"),
            "{}",
            sent.transcript
        );
        lab.wait_for_log(
            "ec2-postfix.log",
            &[
                "transport-new is unavailable. open database",
                "transport-new.db: No such file or directory",
            ],
            SYMPTOM,
        )
        .expect("no 'map is unavailable' warning in ec2's log");
    }
    let _g = lab.healthy();
    let again = lab.send_inbound(&t, "alice@corp.test", &[]);
    assert!(again.accepted(), "{}", again.transcript);
    delivered_to_alice(&lab, &t);
}

/// dell's queue id for a message (found by its Message-ID in dell's cleanup line).
fn dell_qid(lab: &Lab, t: &str) -> String {
    lab.queue_id_for("dell-postfix.log", &format!("{t}@flowtest.lab"), SYMPTOM)
        .expect("message never reached dell's Postfix")
}

#[test]
fn dovecot_down_defers_lmtp_on_dell_then_heal_delivers() {
    let lab = lab();
    let t = token("dovecot-down");
    {
        let _f = lab.fault("dovecot-down", &[]);
        send_accepted(&lab, &t);
        let qid = dell_qid(&lab, &t);
        let lmtp = format!(
            "status=deferred (connect to dell.corp.test[{}/dell/run/lmtp]: Connection refused)",
            lab.dir.display()
        );
        lab.wait_for_log(
            "dell-postfix.log",
            &[&format!("{qid}: to=<alice@corp.test>"), &lmtp],
            SYMPTOM,
        )
        .unwrap_or_else(|| {
            panic!(
                "no LMTP deferral on dell:\n{}",
                tail(&lab.log("dell-postfix.log"))
            )
        });
        // IMAP is gone too: the client cannot connect (curl exit 7).
        let imap = lab.imap_curl("alice@corp.test", "", &[]);
        assert_eq!(imap.status.code(), Some(7), "{}", support::describe(&imap));
    }
    let _g = lab.healthy();
    delivered_to_alice(&lab, &t);
}

#[test]
fn mailstore_permission_makes_dovecot_fail_with_permission_denied() {
    let lab = lab();
    let t = token("mailstore");
    {
        let _f = lab.fault("mailstore-permission", &[]);
        send_accepted(&lab, &t);
        let qid = dell_qid(&lab, &t);
        lab.wait_for_log(
            "dell-dovecot.log",
            &[
                "lmtp(alice@corp.test)",
                "Error:",
                &format!("msgid=<{t}@flowtest.lab>"),
                "failed: Permission denied",
            ],
            SYMPTOM,
        )
        .unwrap_or_else(|| {
            panic!(
                "no Permission denied in dell-dovecot.log:\n{}",
                tail(&lab.log("dell-dovecot.log"))
            )
        });
        lab.wait_for_log(
            "dell-postfix.log",
            &[
                &format!("{qid}: to=<alice@corp.test>"),
                "dsn=4.2.0, status=deferred",
                "451 4.2.0 <alice@corp.test>",
            ],
            SYMPTOM,
        )
        .expect("dell's Postfix did not defer the message");
    }
    let _g = lab.healthy();
    delivered_to_alice(&lab, &t);
}

#[test]
fn imap_auth_broken_denies_login_with_password_mismatch() {
    let lab = lab();
    let t = token("imap-auth");
    {
        let _f = lab.fault("imap-auth-broken", &[]);
        let out = lab.imap_curl("alice@corp.test", "INBOX", &["--request", "UID SEARCH ALL"]);
        // curl: (67) Login denied.
        assert_eq!(out.status.code(), Some(67), "{}", support::describe(&out));
        lab.wait_for_log(
            "dell-dovecot.log",
            &[
                "auth: Info: passwd-file(alice@corp.test,198.18.3.1",
                "Password mismatch",
            ],
            SYMPTOM,
        )
        .expect("no password mismatch in dell-dovecot.log");
        lab.wait_for_log(
            "dell-dovecot.log",
            &[
                "imap-login: Info: Disconnected",
                "auth failed",
                "user=<alice@corp.test>",
            ],
            SYMPTOM,
        )
        .expect("no failed imap-login line in dell-dovecot.log");
        // Delivery itself is not affected: only logins are.
        send_accepted(&lab, &t);
        lab.wait_for_log(
            "dell-dovecot.log",
            &[
                &format!("msgid=<{t}@flowtest.lab>"),
                "stored mail into mailbox 'INBOX'",
            ],
            DELIVERY,
        )
        .expect("delivery failed while only IMAP auth was broken");
    }
    let _g = lab.healthy();
    delivered_to_alice(&lab, &t);
}

#[test]
fn imap_no_idle_stops_advertising_idle_and_heal_restores_it() {
    let lab = lab();
    let capability = |lab: &Lab| {
        let out = lab.imap_curl("alice@corp.test", "", &["--request", "CAPABILITY"]);
        assert!(out.status.success(), "{}", support::describe(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.starts_with("* CAPABILITY IMAP4rev1"), "{text}");
        text
    };
    {
        let _f = lab.fault("imap-no-idle", &[]);
        let caps = capability(&lab);
        assert!(!caps.split_whitespace().any(|c| c == "IDLE"), "{caps}");
    }
    let _g = lab.healthy();
    let caps = capability(&lab);
    assert!(caps.split_whitespace().any(|c| c == "IDLE"), "{caps}");
}

/// `delays=a/b/c/d` of a Postfix status line: before qmgr, in qmgr, connection setup, transmission.
fn delays(line: &str) -> Vec<f64> {
    let parts: Vec<f64> = line
        .split("delays=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no delays= in {line}"))
        .split('/')
        .map(|d| {
            d.parse()
                .unwrap_or_else(|_| panic!("bad delays= in {line}"))
        })
        .collect();
    assert_eq!(parts.len(), 4, "{line}");
    parts
}

/// The `d` (transmission) part of `delays=a/b/c/d`.
fn transmission_delay(line: &str) -> f64 {
    delays(line)[3]
}

#[test]
fn slow_dell_injects_latency_on_the_ec2_to_dell_hop() {
    let lab = lab();
    let t = token("slow-dell");
    {
        let _f = lab.fault("slow-dell", &["3"]);
        let qid = send_accepted(&lab, &t);
        let line = lab
            .wait_for_log(
                "ec2-postfix.log",
                &[
                    &format!("{qid}: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525"),
                    "status=sent",
                ],
                DELIVERY,
            )
            .expect("slow message not relayed by ec2");
        let d = transmission_delay(&line);
        assert!(
            (3.0..10.0).contains(&d),
            "expected ~3 s on the dell hop: {line}"
        );
        delivered_to_alice(&lab, &t);
    }
    let _g = lab.healthy();
    let t2 = token("slow-dell-healed");
    let qid = send_accepted(&lab, &t2);
    let line = lab
        .wait_for_log(
            "ec2-postfix.log",
            &[&format!("{qid}: to=<alice@corp.test>"), "status=sent"],
            DELIVERY,
        )
        .expect("message after heal not relayed");
    assert!(
        transmission_delay(&line) < 1.0,
        "latency still there after heal: {line}"
    );
    delivered_to_alice(&lab, &t2);
}

#[test]
fn slow_mx_delays_the_submission_then_heal_restores_it() {
    let lab = lab();
    let timed = |t: &str| {
        let start = flowtest::clock::std_instant();
        send_accepted(&lab, t);
        start.elapsed()
    };
    {
        let _f = lab.fault("slow-mx", &["2"]);
        let took = timed(&token("slow-mx"));
        assert!(
            (Duration::from_secs(2)..Duration::from_secs(10)).contains(&took),
            "expected ~2 s more at the MX: {took:?}"
        );
    }
    let _g = lab.healthy();
    let took = timed(&token("slow-mx-healed"));
    assert!(
        took < Duration::from_secs(1),
        "still slow after heal: {took:?}"
    );
}

#[test]
fn unknown_fault_name_fails_loudly() {
    let lab = lab();
    let out = std::process::Command::new(lab.repo.join("lab/fault"))
        .arg("no-such-fault")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown fault 'no-such-fault'"), "{err}");
}
