//! The real `flowtest run` against misbehaving SMTP and IMAP servers on loopback: whatever the
//! peer does (silence, garbage, endless lines, huge literals, BYE), the run ends with a clear
//! status and finding within its timeout plus a few seconds, and its memory stays small.
#[path = "support/hostile.rs"]
mod hostile;

use std::time::Duration;

use hostile::{imap, run_watched, smtp, ImapScript, Setup, SmtpScript};
use serde_json::Value;

/// The `--timeout` every case runs with.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long past the timeout a run may take (cleanup grace, process start and exit).
const SLACK: Duration = Duration::from_secs(5);
/// Peak resident memory allowed to the flowtest process.
const MAX_RSS: u64 = 200 * 1024 * 1024;

/// What one run ended as.
struct Ended {
    result: Value,
    took: Duration,
}

/// Run the scenario against these servers and check what every case must hold: exit code 2 (the
/// mail path failed), one JSON result, in time, in bounded memory.
fn run_against(smtp_script: SmtpScript, imap_script: ImapScript) -> Ended {
    let setup = Setup::new(smtp(smtp_script), imap(imap_script));
    let w = run_watched(
        &setup.config(),
        &["run", "hostile", "--timeout", "5s", "--format", "json"],
        TIMEOUT + SLACK + Duration::from_secs(20),
    );
    let shown = format!(
        "{smtp_script:?}/{imap_script:?}: exit {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
        w.output.status.code(),
        w.took,
        String::from_utf8_lossy(&w.output.stdout),
        String::from_utf8_lossy(&w.output.stderr)
    );
    assert_eq!(w.output.status.code(), Some(2), "{shown}");
    assert!(w.took <= TIMEOUT + SLACK, "took too long: {shown}");
    assert!(
        w.peak_rss > 0 && w.peak_rss < MAX_RSS,
        "peak RSS {} bytes: {shown}",
        w.peak_rss
    );
    let stderr = String::from_utf8_lossy(&w.output.stderr);
    assert!(!stderr.contains("panicked"), "{shown}");
    assert!(
        !String::from_utf8_lossy(&w.output.stdout).contains(hostile::PASSWORD_ENV.1),
        "{shown}"
    );
    let v: Value = serde_json::from_slice(&w.output.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {shown}"));
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{shown}");
    Ended {
        result: results[0].clone(),
        took: w.took,
    }
}

fn first_code(r: &Value) -> &str {
    r["findings"][0]["code"].as_str().unwrap_or("")
}

/// The first finding's message must name `what`.
fn names(e: &Ended, what: &str) {
    let msg = e.result["findings"][0]["message"].as_str().unwrap_or("");
    assert!(msg.contains(what), "{what}: {:#}", e.result);
}

/// An SMTP case: the mailbox is fine, so the run gets to sending and must end `send_failed`.
fn smtp_case(script: SmtpScript) -> Ended {
    let e = run_against(script, ImapScript::Benign);
    let r = &e.result;
    assert_eq!(r["status"], "send_failed", "{script:?}: {r:#}");
    assert!(!r["findings"].as_array().unwrap().is_empty(), "{r:#}");
    assert_eq!(r["findings"][0]["stage"], "submission", "{r:#}");
    e
}

/// An IMAP case: the mailbox cannot be read; nothing is sent.
fn imap_case(script: ImapScript, code: &str) -> Ended {
    let e = run_against(SmtpScript::Accepts, script);
    let r = &e.result;
    assert_eq!(r["status"], "fetch_failed", "{script:?}: {r:#}");
    assert!(r["submission"].is_null(), "nothing sent: {r:#}");
    assert_eq!(first_code(r), code, "{script:?}: {r:#}");
    assert!(
        !r["findings"][0]["hint"].as_str().unwrap_or("").is_empty(),
        "{r:#}"
    );
    e
}

/// A hung peer costs the probe's timeout, not the 30 s per-command cap.
fn ended_at_the_deadline(e: &Ended) {
    assert!(
        e.took >= TIMEOUT - Duration::from_millis(500),
        "ended at {:?}, before the deadline: {:#}",
        e.took,
        e.result
    );
}

#[test]
fn the_benign_servers_carry_a_probe_to_the_wait() {
    // Nothing is delivered anywhere, so the probe is lost: the fake servers are sane enough
    // that the SMTP cases below fail on the SMTP side only.
    let e = run_against(SmtpScript::Accepts, ImapScript::Benign);
    assert_eq!(e.result["status"], "lost", "{:#}", e.result);
    assert_eq!(e.result["submission"]["code"], 250, "{:#}", e.result);
    assert!(e.result["cleanup"]["note"].is_null(), "{:#}", e.result);
    ended_at_the_deadline(&e);
}

#[test]
fn smtp_silent_after_connect() {
    let e = smtp_case(SmtpScript::SilentAfterConnect);
    ended_at_the_deadline(&e);
    assert!(e.result["submission"]["text"]
        .as_str()
        .unwrap_or("")
        .contains("no answer"));
}

#[test]
fn smtp_hangs_after_ehlo() {
    ended_at_the_deadline(&smtp_case(SmtpScript::HangsAfterEhlo));
}

#[test]
fn smtp_hangs_after_data() {
    let e = smtp_case(SmtpScript::HangsAfterData);
    ended_at_the_deadline(&e);
    assert_eq!(e.result["submission"]["phase"], "message", "{:#}", e.result);
}

#[test]
fn smtp_endless_reply_line() {
    let e = smtp_case(SmtpScript::EndlessReplyLine);
    let text = e.result["submission"]["text"].as_str().unwrap_or("");
    assert!(text.contains("line"), "{:#}", e.result);
}

#[test]
fn smtp_garbage_greeting() {
    smtp_case(SmtpScript::GarbageGreeting);
}

#[test]
fn imap_bye_at_greeting_is_not_an_auth_failure() {
    let e = imap_case(ImapScript::ByeAtGreeting, "imap_protocol_error");
    names(&e, "BYE");
}

#[test]
fn imap_garbage_greeting() {
    let e = imap_case(ImapScript::GarbageGreeting, "imap_protocol_error");
    names(&e, "not IMAP");
}

#[test]
fn imap_never_answers_select() {
    let e = imap_case(ImapScript::SilentSelect, "service_error");
    ended_at_the_deadline(&e);
    names(&e, "SELECT");
}

#[test]
fn imap_endless_line() {
    let e = imap_case(ImapScript::EndlessLine, "imap_protocol_error");
    names(&e, "line longer than");
}

#[test]
fn imap_huge_literal_announcement() {
    let e = imap_case(ImapScript::HugeLiteral, "imap_protocol_error");
    names(&e, "literal");
}

#[test]
fn imap_login_never_answered() {
    let e = imap_case(ImapScript::SilentLogin, "service_error");
    ended_at_the_deadline(&e);
    names(&e, "LOGIN");
}
