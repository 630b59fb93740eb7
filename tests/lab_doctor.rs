//! `flowtest doctor` on the lab: every item passes on the healthy lab, and each fault makes the
//! matching item fail with its reason: dell-down and vpn-down the relay behind the MX (from the
//! MX's deferrals of a probe sent for the purpose), cert-expired the MX's TLS item,
//! cert-wrong-name the IMAP server's TLS item, mx-missing corp.test's MX item. The SendGrid API
//! key item passes against the lab's stand-in with the lab's key and fails with a wrong one.
//!
//! Needs the lab (`lab/up`, with its DNS server); panics with a clear message when it is absent.
mod support;

use serde_json::Value;
use support::flowtest::{flowtest, lab_scenario, Cfg};
use support::{lab, Lab};

/// A private configuration with the lab's inbound scenario as `doc-inbound`.
fn cfg() -> Cfg {
    let (n, t) = lab_scenario("lab-inbound.toml", "doc-inbound", |t| t);
    Cfg::new(&[(&n, t)])
}

fn doctor(lab: &Lab, cfg: &Cfg) -> (Option<i32>, Value) {
    let (out, v) = flowtest(lab, &cfg.path(), &["doctor"]);
    (out.status.code(), v)
}

/// The one check of `item` on `target`.
fn item<'a>(v: &'a Value, item: &str, target: &str) -> &'a Value {
    let found: Vec<&Value> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["item"] == item && c["target"] == target)
        .collect();
    assert_eq!(found.len(), 1, "{item} {target}: {v:#}");
    found[0]
}

fn assert_fails(v: &Value, which: &str, target: &str, reason: &str) {
    let c = item(v, which, target);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["detail"].as_str().unwrap().contains(reason), "{c:#}");
    assert!(
        c["hint"].as_str().unwrap().len() > 20,
        "a fix is named: {c:#}"
    );
}

/// A probe through the MX, so the logs have mail on every hop (and, under a fault, mail waiting).
fn probe(lab: &Lab, cfg: &Cfg, timeout: &str) -> Value {
    let (_, v) = flowtest(
        lab,
        &cfg.path(),
        &["run", "doc-inbound", "--timeout", timeout],
    );
    v
}

#[test]
fn doctor_passes_every_item_on_the_healthy_lab() {
    let lab = lab();
    let _g = lab.healthy();
    let cfg = cfg();
    let r = probe(&lab, &cfg, "20s");
    assert_eq!(r["results"][0]["status"], "delivered", "{r:#}");
    let (code, v) = doctor(&lab, &cfg);
    let bad: Vec<&Value> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .collect();
    assert!(bad.is_empty(), "items that did not pass: {bad:#?}");
    for (i, t) in [
        ("dns-mx", "corp.test"),
        ("dns-address", "mx.corp.test"),
        ("tls", "mx.corp.test:25"),
        ("smtp-ehlo", "mx.corp.test:25"),
        ("tls", "imap.corp.test:993"),
        ("imap-folders", "imap.corp.test:993"),
        ("relay", "ec2 -> dell"),
        ("relay", "dell -> dovecot"),
    ] {
        assert_eq!(item(&v, i, t)["status"], "pass", "{i} {t}");
    }
    assert_eq!(v["summary"]["state"], "OK");
    assert_eq!(code, Some(0));
}

#[test]
fn each_fault_fails_its_item_with_the_reason() {
    let lab = lab();
    let cfg = cfg();
    for (fault, reason) in [
        ("dell-down", "Connection refused"),
        ("vpn-down", "unreachable"),
    ] {
        let _f = lab.fault(fault, &[]);
        let r = probe(&lab, &cfg, "4s");
        assert_eq!(r["results"][0]["status"], "lost", "{fault}: {r:#}");
        let (code, v) = doctor(&lab, &cfg);
        assert_fails(&v, "relay", "ec2 -> dell", "waiting on ec2 for dell");
        assert_fails(&v, "relay", "ec2 -> dell", reason);
        assert_eq!(code, Some(2), "{fault}: {v:#}");
    }
    {
        let _f = lab.fault("cert-expired", &[]);
        let (code, v) = doctor(&lab, &cfg);
        assert_fails(&v, "tls", "mx.corp.test:25", "certificate expired");
        assert_eq!(item(&v, "tls", "imap.corp.test:993")["status"], "pass");
        assert_eq!(code, Some(2));
    }
    {
        let _f = lab.fault("cert-wrong-name", &[]);
        let (_, v) = doctor(&lab, &cfg);
        assert_fails(
            &v,
            "tls",
            "imap.corp.test:993",
            "not valid for imap.corp.test",
        );
        assert_eq!(item(&v, "tls", "mx.corp.test:25")["status"], "pass");
    }
    {
        let _f = lab.fault("mx-missing", &[]);
        let (_, v) = doctor(&lab, &cfg);
        assert_fails(&v, "dns-mx", "corp.test", "no MX record");
        assert_eq!(item(&v, "dns-address", "mx.corp.test")["status"], "pass");
    }
    // Healed: the DNS item is back.
    let _g = lab.healthy();
    let (_, v) = doctor(&lab, &cfg);
    assert_eq!(item(&v, "dns-mx", "corp.test")["status"], "pass", "{v:#}");
}

#[test]
fn the_sendgrid_api_key_item_passes_with_the_labs_key_and_fails_with_a_wrong_one() {
    let lab = lab();
    let _g = lab.healthy();
    let wrong = tempfile::tempdir().unwrap();
    let wrong_key = wrong.path().join("key");
    std::fs::write(&wrong_key, "SG.not-the-lab-key-0123456789\n").unwrap();
    let (good, good_text) = lab_scenario("lab-sendgrid-inbound.toml", "doc-sendgrid", |t| t);
    let (bad, bad_text) = lab_scenario("lab-sendgrid-inbound.toml", "doc-sendgrid-wrong", |t| {
        let line = t
            .lines()
            .find(|l| l.starts_with("api_key_file"))
            .expect("the lab scenario reads its key from a file")
            .to_string();
        t.replace(
            &line,
            &format!("api_key_file = {:?}", wrong_key.display().to_string()),
        )
    });
    let cfg = Cfg::new(&[(&good, good_text), (&bad, bad_text)]);
    let (_, v) = doctor(&lab, &cfg);
    let key_item = |scenario: &str| support::doctor_check(&v, scenario, "sendgrid-api-key");
    let ok = key_item("doc-sendgrid");
    assert_eq!(ok["status"], "pass", "{ok:#}");
    assert!(
        ok["target"].as_str().unwrap().ends_with("/v3/scopes"),
        "{ok:#}"
    );
    let refused = key_item("doc-sendgrid-wrong");
    assert_eq!(refused["status"], "fail", "{refused:#}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("401 Unauthorized"),
        "{refused:#}"
    );
    assert!(
        !v.to_string().contains("not-the-lab-key"),
        "the key shows: {v:#}"
    );
}
