//! `flowtest doctor` on `kind = "sendgrid"` scenarios against the SendGrid API stand-in on
//! 127.0.0.1 (no lab needed): the key check (`GET /v3/scopes`) passes a good key with
//! `mail.send`, fails a wrong key (401), a key without the scope and a forbidden one (403) with
//! their fixes, and is unknown when the API answers too slowly or a peer accepts and never
//! answers, each within the check timeout. The key never shows. The JSON and Nagios outputs
//! keep their contract.
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/sendgrid.rs"]
mod stand_in;
mod support;

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hostile::{imap, loopback_receiver, run_watched, ImapScript, Watched, KEY_ENV};
use serde_json::Value;
use stand_in::{stand_in, StandIn, KEY};

const WRONG_KEY: &str = "SG.wrong-key-for-the-doctor-test";
const CHECK_TIMEOUT_S: u64 = 2;

/// A peer that accepts connections and never says a word (nor closes them).
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    port
}

fn scenario(name: &str, base_url: &str, key_file: &Path, imap_port: u16) -> String {
    format!(
        r#"name = "{name}"
[sender]
kind = "sendgrid"
base_url = "{base_url}"
allow_plaintext = true
api_key_file = {key_file:?}
mail_from = "probe@provider.test"
rcpt_to = "alice@corp.test"
{}"#,
        loopback_receiver(imap_port, r#"["INBOX"]"#)
    )
}

/// The stand-ins and peers one run talks to; they stop when this is dropped.
struct Setup {
    dir: tempfile::TempDir,
    _stand_ins: Vec<StandIn>,
    _dns: UdpSocket,
}

/// One scenario per case, a DNS server that never answers (the DNS items are not what is
/// tested here; they end by the timeout) and the benign IMAP server.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("scenarios")).unwrap();
    let imap_port = imap(ImapScript::Benign);
    let mut stand_ins = Vec::new();
    let cases: [(&str, &str, &[&str], &str); 5] = [
        ("good", "normal", &[], KEY),
        ("wrong-key", "normal", &[], WRONG_KEY),
        ("no-scope", "no-mail-send-scope", &[], KEY),
        ("forbidden", "forbidden", &[], KEY),
        ("slow", "slow", &["--delay", "30s"], KEY),
    ];
    for (name, behaviour, extra, key) in cases {
        let s = stand_in(behaviour, extra);
        let text = scenario(name, &s.base_url(), &s.key_file(key), imap_port);
        std::fs::write(d.join(format!("scenarios/{name}.toml")), text).unwrap();
        stand_ins.push(s);
    }
    let hole = format!("http://127.0.0.1:{}", black_hole());
    let key_file = d.join("hole-key");
    std::fs::write(&key_file, KEY).unwrap();
    std::fs::write(
        d.join("scenarios/black-hole.toml"),
        scenario("black-hole", &hole, &key_file, imap_port),
    )
    .unwrap();
    let dns = UdpSocket::bind("127.0.0.1:0").unwrap();
    std::fs::write(
        d.join("flowtest.toml"),
        format!(
            "state_dir = {:?}\n[probe]\ndomain = \"probe.test\"\nkey_env = \"{}\"\n[doctor]\n\
             nameserver = \"{}\"\ncheck_timeout = \"{CHECK_TIMEOUT_S}s\"\n",
            d.join("state").display().to_string(),
            KEY_ENV.0,
            dns.local_addr().unwrap()
        ),
    )
    .unwrap();
    Setup {
        dir,
        _stand_ins: stand_ins,
        _dns: dns,
    }
}

fn doctor(s: &Setup, format: &str) -> Watched {
    let run = run_watched(
        &s.dir.path().join("flowtest.toml"),
        &["doctor", "--format", format],
        Duration::from_secs(90),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.output.stdout),
        String::from_utf8_lossy(&run.output.stderr)
    );
    for secret in [KEY, WRONG_KEY, "lab-test-key", "wrong-key-for"] {
        assert!(!all.contains(secret), "the key shows: {all}");
    }
    run
}

fn key_check<'a>(v: &'a Value, scenario: &str) -> &'a Value {
    support::doctor_check(v, scenario, "sendgrid-api-key")
}

fn text<'a>(c: &'a Value, field: &str) -> &'a str {
    c[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {c:#}"))
}

#[test]
fn the_sendgrid_key_check_passes_fails_and_times_out_as_documented() {
    let s = setup();
    let run = doctor(&s, "json");
    let v: Value = serde_json::from_slice(&run.output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&run.output.stdout)));

    let good = key_check(&v, "good");
    assert_eq!(good["status"], "pass", "{good:#}");
    assert_eq!(
        text(good, "detail"),
        "key accepted; its 2 scope(s) include mail.send"
    );
    assert!(good["hint"].is_null() && good["ms"].is_u64(), "{good:#}");
    assert!(text(good, "target").ends_with("/v3/scopes"), "{good:#}");

    let wrong = key_check(&v, "wrong-key");
    assert_eq!(wrong["status"], "fail", "{wrong:#}");
    assert!(
        text(wrong, "detail").starts_with("401 Unauthorized: The provided authorization grant"),
        "{wrong:#}"
    );
    assert!(text(wrong, "hint").contains("API Keys"), "{wrong:#}");

    let no_scope = key_check(&v, "no-scope");
    assert_eq!(no_scope["status"], "fail", "{no_scope:#}");
    assert!(
        text(no_scope, "detail").contains("3 scope(s) lack mail.send"),
        "{no_scope:#}"
    );
    assert!(text(no_scope, "hint").contains("Mail Send"), "{no_scope:#}");

    let forbidden = key_check(&v, "forbidden");
    assert_eq!(forbidden["status"], "fail", "{forbidden:#}");
    assert!(
        text(forbidden, "detail").starts_with("403 Forbidden: access forbidden"),
        "{forbidden:#}"
    );

    // Too slow, and a peer that never answers: unknown, each ended by its own timeout.
    for name in ["slow", "black-hole"] {
        let c = key_check(&v, name);
        assert_eq!(c["status"], "unknown", "{c:#}");
        assert!(text(c, "detail").contains("no complete answer"), "{c:#}");
        let ms = c["ms"].as_u64().expect("ms");
        assert!(
            (CHECK_TIMEOUT_S * 1000 - 100..CHECK_TIMEOUT_S * 1000 + 1500).contains(&ms),
            "{name} ended by the check timeout: {ms} ms"
        );
        assert!(text(c, "hint").contains("status.sendgrid.com"), "{c:#}");
    }
    assert_eq!(v["summary"]["state"], "CRITICAL");
    assert_eq!(run.output.status.code(), Some(2), "a failed item exits 2");
}

/// The JSON contract: `{"checks": [{scenario, item, target, status, detail, hint, ms}],
/// "summary": {pass, warn, fail, unknown, total, state}}`, nothing more or less, and the Nagios
/// line for the same checks.
#[test]
fn json_and_nagios_outputs_keep_their_contract() {
    let s = setup();
    let run = doctor(&s, "json");
    let v: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(top, ["checks", "summary"]);
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 6 * 3, "{v:#}");
    for c in checks {
        let mut keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["detail", "hint", "item", "ms", "scenario", "status", "target"],
            "{c:#}"
        );
        for k in ["scenario", "item", "target", "detail"] {
            assert!(c[k].as_str().is_some_and(|t| !t.is_empty()), "{k}: {c:#}");
        }
        let status = text(c, "status");
        assert!(
            ["pass", "warn", "fail", "unknown"].contains(&status),
            "{c:#}"
        );
        // Every failed item names its fix; a passing one has none.
        if status == "fail" {
            assert!(c["hint"].as_str().is_some_and(|h| h.len() > 20), "{c:#}");
        }
        if status == "pass" {
            assert!(c["hint"].is_null(), "{c:#}");
        }
        assert!(c["ms"].is_null() || c["ms"].is_u64(), "{c:#}");
    }
    let count = |st: &str| checks.iter().filter(|c| c["status"] == st).count() as u64;
    let sum = &v["summary"];
    let mut keys: Vec<&String> = sum.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["fail", "pass", "state", "total", "unknown", "warn"]);
    for st in ["pass", "warn", "fail", "unknown"] {
        assert_eq!(sum[st].as_u64(), Some(count(st)), "{st}: {sum}");
    }
    assert_eq!(sum["total"].as_u64(), Some(checks.len() as u64));
    assert_eq!(sum["state"], "CRITICAL");

    let n = doctor(&s, "nagios");
    assert_eq!(n.output.status.code(), Some(2));
    let line = String::from_utf8(n.output.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("DOCTOR CRITICAL - "), "{line}");
    assert!(
        line.contains("wrong-key sendgrid-api-key http://127.0.0.1:"),
        "{line}"
    );
    let (text, perf) = line.trim_end().split_once(" | ").expect("perfdata");
    assert!(!text.contains('|') && !perf.contains('|'), "{line}");
    assert_eq!(
        perf,
        format!(
            "pass={};;;0;{} warn={} fail={} unknown={}",
            count("pass"),
            checks.len(),
            count("warn"),
            count("fail"),
            count("unknown")
        )
    );
    // The failures come before the unknowns (worst first).
    let first_unknown = text.find(" unknown (").expect("an unknown item");
    let last_fail = text.rfind(" fail (").expect("a failed item");
    assert!(last_fail < first_unknown, "{line}");
}
