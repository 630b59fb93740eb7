//! `lab-gmail-oauth` against the real lab: XOAUTH2 (and OAUTHBEARER) submission at the provider
//! and IMAP at the mailbox, both checked by Dovecot's oauth2 passdb against the lab's token
//! introspection stand-in (`lab/up` starts it); the result records how each side authenticated,
//! and an expired token (`lab/fault token-expired`) is `provider_auth_failed` with its hint on
//! either side, the server's decoded error shown. The tokens never appear in output.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent.
mod support;

use serde_json::Value;
use support::flowtest::{flowtest, hop_stages, lab_scenario, only, Cfg};
use support::{describe, lab, Lab};

fn token(lab: &Lab, user: &str) -> String {
    lab.password(&format!("oauth/{user}"))
}

/// Runs one edited copy of the shipped scenario; the exit status and the one result.
fn run(lab: &Lab, name: &str, edit: impl Fn(String) -> String) -> (std::process::Output, Value) {
    let (name, text) = lab_scenario("lab-gmail-oauth.toml", name, edit);
    let cfg = Cfg::new(&[(name.as_str(), text)]);
    let (out, v) = flowtest(lab, &cfg.path(), &["run", "--all"]);
    for user in ["probe@provider.test", "alice@corp.test"] {
        let t = token(lab, user);
        assert!(
            !describe(&out).contains(&t),
            "the token of {user} was printed"
        );
    }
    let r = only(&v).clone();
    (out, r)
}

/// The receiver logs in with its password instead (to reach the submission with a bad token).
fn password_receiver(text: String) -> String {
    let edited = text.replace(
        "mechanism = \"xoauth2\"\ntoken_file = \"${FLOWTEST_LAB_DIR}/secrets/oauth/alice@corp.test\"",
        "password_file = \"${FLOWTEST_LAB_DIR}/secrets/alice@corp.test\"",
    );
    assert_ne!(
        edited, text,
        "lab-gmail-oauth.toml changed shape: update this test"
    );
    edited
}

#[test]
fn gmail_oauth_delivers_with_xoauth2_on_both_sides_and_says_so() {
    let lab = lab();
    let _g = lab.healthy();
    let (out, r) = run(&lab, "lab-gmail-oauth", |t| t);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(r["status"], "delivered", "{r:#}");
    assert_eq!(r["submission"]["auth_mechanism"], "XOAUTH2", "{r:#}");
    assert_eq!(r["imap_auth_mechanism"], "XOAUTH2", "{r:#}");
    assert_eq!(
        hop_stages(&r),
        [
            "provider-submission",
            "ec2-mx",
            "tailscale-relay",
            "dovecot-lmtp"
        ],
        "{r:#}"
    );
    assert_eq!(r["missing_stages"].as_array().unwrap().len(), 0, "{r:#}");
    assert_eq!(r["cleanup"]["deleted"], 1, "own probe removed: {r:#}");
    // The servers saw OAuth 2, checked by the stand-in: not a password in disguise.
    let log = lab.log("dell-dovecot.log");
    assert!(
        log.contains("user=<alice@corp.test>, method=XOAUTH2"),
        "dell's Dovecot logged no XOAUTH2 login"
    );
    assert!(lab
        .log("oauth-introspection.log")
        .contains("introspection: active user=probe@provider.test"));
}

#[test]
fn oauthbearer_works_too_and_human_output_names_the_mechanisms() {
    let lab = lab();
    let _g = lab.healthy();
    let (out, r) = run(&lab, "lab-gmail-oauthbearer", |t| {
        t.replace("mechanism = \"xoauth2\"", "mechanism = \"oauthbearer\"")
    });
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(r["submission"]["auth_mechanism"], "OAUTHBEARER", "{r:#}");
    assert_eq!(r["imap_auth_mechanism"], "OAUTHBEARER", "{r:#}");
    // The same run's human report carries the line (a second probe, human format).
    let (name, text) = lab_scenario("lab-gmail-oauth.toml", "lab-gmail-oauth-human", |t| t);
    let cfg = Cfg::new(&[(name.as_str(), text)]);
    let bin = env!("CARGO_BIN_EXE_flowtest");
    let path = cfg.path().display().to_string();
    let out = lab.run(&[bin, "--config", &path, "run", "--all", "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("auth: submission XOAUTH2, mailbox XOAUTH2"),
        "{}",
        describe(&out)
    );
}

/// The run ended `status` with a provider_auth_failed finding at `stage` that shows the decoded
/// XOAUTH2 error challenge (Dovecot answers Google's way: `{"status":"401","schemes":"bearer",...}`)
/// and the runbook's hint.
fn assert_token_refused(r: &Value, status: &str, stage: &str) {
    assert_eq!(r["status"], status, "{r:#}");
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "provider_auth_failed")
        .unwrap_or_else(|| panic!("no provider_auth_failed finding: {r:#}"));
    assert_eq!(f["stage"], stage, "{r:#}");
    // The server's error challenge, decoded: Dovecot says which way the token failed.
    let said = format!("{} {}", f["message"], f["evidence"]);
    assert!(
        said.contains(r#"XOAUTH2 error: {\"status\":\"401\""#),
        "{r:#}"
    );
    // Only the token is blamed: the server's log of the same failed login adds no password
    // finding.
    let codes: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["code"])
        .collect();
    assert!(!codes.iter().any(|c| *c == "imap_auth_failed"), "{r:#}");
    assert!(
        f["hint"]
            .as_str()
            .is_some_and(|h| h.contains("token_command")),
        "{r:#}"
    );
}

#[test]
fn an_expired_token_is_provider_auth_failed_on_either_side() {
    let lab = lab();
    let fault = lab.fault("token-expired", &[]);
    // Each refusal leaves Dovecot a login penalty for the client's address: its next login
    // waits 2 s or more, an hour long, and a Dovecot reload keeps it.
    let penalised = |host: &str| {
        lab.dovecot_penalties(host)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>()
    };
    // The mailbox is logged in to first: its refused token ends the run before sending.
    let (out, r) = run(&lab, "lab-gmail-oauth-expired-imap", |t| t);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_token_refused(&r, "fetch_failed", "mailbox");
    assert!(r["submission"].is_null(), "nothing was sent: {r:#}");
    assert!(!penalised("dell").is_empty(), "no login penalty on dell");
    // With a password for the mailbox, the submission's token is the one refused.
    let (out, r) = run(&lab, "lab-gmail-oauth-expired-smtp", password_receiver);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_token_refused(&r, "send_failed", "submission");
    assert_eq!(r["submission"]["phase"], "auth", "{r:#}");
    assert_eq!(r["submission"]["auth_mechanism"], "XOAUTH2", "{r:#}");
    assert_eq!(r["imap_auth_mechanism"], "IMAP LOGIN", "{r:#}");
    assert!(
        !penalised("provider").is_empty(),
        "no login penalty on provider"
    );
    // Healing clears the penalties, so the tests after this one log in undelayed.
    drop(fault);
    assert_eq!(
        penalised("dell"),
        [],
        "dell kept a login penalty after heal"
    );
    assert_eq!(
        penalised("provider"),
        [],
        "provider kept a login penalty after heal"
    );
}
