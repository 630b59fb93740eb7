//! The `sendgrid` sender against the lab's SendGrid API stand-in on 127.0.0.1 (no lab needed):
//! each answer gives the documented status and finding, retries stay within the probe's
//! deadline, and the API key never shows.
#[path = "support/sendgrid.rs"]
mod stand_in;

use std::time::Duration;

use flowtest::config::secret::{Secret, SecretRef};
use flowtest::config::SendGridSender;
use flowtest::core::diagnosis::FindingCode;
use flowtest::core::outcome::{AuthMechanism, SmtpPhase, Status};
use flowtest::core::verdict::{submission_verdict, SubmitFailure};
use flowtest::edge::sendgrid::{prepare, send_until};
use flowtest::edge::smtp::SendOutcome;
use stand_in::{stand_in, StandIn, KEY};

fn sender(base_url: String) -> SendGridSender {
    SendGridSender {
        base_url,
        api_key: SecretRef::Env("UNUSED".into()),
        ca_file: None,
        mail_from: "probe@provider.test".into(),
        rcpt_to: vec!["alice@corp.test".into()],
        header_from: "probe@provider.test".into(),
        header_to: "alice@corp.test".into(),
        request_timeout: Duration::from_secs(5),
    }
}

const MSG: &[u8] = b"Date: Thu, 17 Jun 2021 14:45:16 +0000\r\nFrom: probe@provider.test\r\nTo: alice@corp.test\r\nSubject: flowtest probe t 1\r\nMessage-ID: <1@probe.test>\r\nX-Flowtest-Id: 0192\r\n\r\nbody\r\n";

/// Send through `s` with the given key and probe deadline; the outcome and how long it took.
async fn send_with(s: &StandIn, key: &str, within: Duration) -> (SendOutcome, Duration) {
    let cfg = sender(format!("http://{}", s.addr));
    let prepared = prepare(&cfg, &[], Secret::new(key.into())).unwrap();
    let t0 = flowtest::clock::std_instant();
    let out = send_until(&cfg, &prepared, MSG, flowtest::clock::instant() + within).await;
    (out, t0.elapsed())
}

/// The status and finding code the runner decides for a submission that was not accepted.
fn judged(out: &SendOutcome) -> (Status, FindingCode, Vec<String>) {
    let how = match out {
        SendOutcome::Rejected(_) => SubmitFailure::Rejected,
        SendOutcome::Failed(_) => SubmitFailure::Failed,
        SendOutcome::Accepted(s) => panic!("accepted: {s:?}"),
    };
    let d = submission_verdict(how, out.submission());
    let f = d.finding.expect("a finding");
    assert!(!f.hint.is_empty(), "{:?} has a hint", f.code);
    (d.status, f.code, f.evidence)
}

fn assert_no_key(out: &SendOutcome) {
    let all = format!("{out:?}");
    assert!(!all.contains(KEY) && !all.contains("lab-test-key"), "{all}");
}

#[tokio::test]
async fn accepted_means_queued_with_the_message_id() {
    let s = stand_in("normal", &[]);
    let (out, _) = send_with(&s, KEY, Duration::from_secs(10)).await;
    let SendOutcome::Accepted(sub) = &out else {
        panic!("{out:?}")
    };
    assert_eq!(sub.code, Some(202));
    assert_eq!(sub.phase, SmtpPhase::HttpApi);
    assert_eq!(sub.auth_mechanism, Some(AuthMechanism::HttpBearer));
    assert!(sub.accepted_at.is_some());
    let id = sub.queue_id.as_deref().expect("X-Message-Id");
    assert_eq!(id.len(), 22, "{id}");
    assert!(
        sub.text.contains(id) && sub.text.contains("not yet delivered"),
        "{}",
        sub.text
    );
    assert_no_key(&out);
}

#[tokio::test]
async fn a_wrong_key_is_provider_auth_failed() {
    let s = stand_in("normal", &[]);
    let (out, _) = send_with(&s, "SG.wrong", Duration::from_secs(10)).await;
    let (status, code, evidence) = judged(&out);
    assert_eq!(
        (status, code),
        (Status::SendFailed, FindingCode::ProviderAuthFailed)
    );
    assert!(
        evidence[0].starts_with("401 Unauthorized: "),
        "{evidence:?}"
    );
    assert!(
        evidence[0].contains("invalid, expired, or revoked"),
        "{evidence:?}"
    );
    assert_no_key(&out);
}

#[tokio::test]
async fn a_401_or_a_key_without_mail_send_403_is_provider_auth_failed_at_once() {
    for (behaviour, answer) in [
        ("unauthorized", "401 Unauthorized: "),
        ("no-mail-send-scope", "403 Forbidden: access forbidden"),
    ] {
        let s = stand_in(behaviour, &[]);
        let (out, took) = send_with(&s, KEY, Duration::from_secs(10)).await;
        let (status, code, evidence) = judged(&out);
        assert_eq!(
            (status, code),
            (Status::SendFailed, FindingCode::ProviderAuthFailed)
        );
        assert!(evidence[0].starts_with(answer), "{evidence:?}");
        assert!(took < Duration::from_secs(2), "no retry: {took:?}");
        assert_no_key(&out);
    }
}

#[tokio::test]
async fn a_400_is_rejected_with_the_errors_field_by_field() {
    let s = stand_in("bad-request", &[]);
    let (out, _) = send_with(&s, KEY, Duration::from_secs(10)).await;
    let (status, code, evidence) = judged(&out);
    assert_eq!(
        (status, code),
        (Status::Rejected, FindingCode::ProviderRequestInvalid)
    );
    let line = &evidence[0];
    assert!(
        line.starts_with(
            "400 Bad Request: [from] The from address does not match a verified Sender Identity."
        ),
        "{line}"
    );
    assert!(
        line.contains(
            "; [personalizations.0.to.0.email] Does not contain a valid address. (help: http"
        ),
        "{line}"
    );
}

#[tokio::test]
async fn a_429_is_waited_out_then_accepted() {
    let s = stand_in("rate-limit-once", &[]);
    let (out, took) = send_with(&s, KEY, Duration::from_secs(10)).await;
    let SendOutcome::Accepted(sub) = &out else {
        panic!("{out:?}")
    };
    assert!(sub.queue_id.is_some());
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After: 1 honoured: {took:?}"
    );
}

#[tokio::test]
async fn a_429_whose_wait_passes_the_deadline_is_rate_limited() {
    let s = stand_in("rate-limit-once", &[]);
    let (out, took) = send_with(&s, KEY, Duration::from_millis(600)).await;
    let (status, code, evidence) = judged(&out);
    assert_eq!(
        (status, code),
        (Status::SendFailed, FindingCode::RateLimited)
    );
    assert!(
        evidence[0].starts_with("429 Too Many Requests: too many requests"),
        "{evidence:?}"
    );
    assert!(evidence[0].contains("deadline"), "{evidence:?}");
    assert!(took < Duration::from_millis(600), "{took:?}");
}

#[tokio::test]
async fn a_500_is_retried_then_given_up() {
    let s = stand_in("server-error", &[]);
    let (out, took) = send_with(&s, KEY, Duration::from_secs(10)).await;
    let (status, code, evidence) = judged(&out);
    assert_eq!(
        (status, code),
        (Status::SendFailed, FindingCode::ProviderUnavailable)
    );
    assert!(
        evidence[0].starts_with("500 Internal Server Error: internal server error"),
        "{evidence:?}"
    );
    assert!(evidence[0].contains("attempt 4 of 4"), "{evidence:?}");
    // Backoff 250 + 500 + 1000 ms between the four attempts.
    assert!(
        took >= Duration::from_millis(1700) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_ends_at_the_probe_deadline() {
    let s = stand_in("slow", &["--delay", "20s"]);
    let (out, took) = send_with(&s, KEY, Duration::from_secs(1)).await;
    let (status, code, evidence) = judged(&out);
    assert_eq!(
        (status, code),
        (Status::SendFailed, FindingCode::ProviderUnavailable)
    );
    assert!(out.submission().code.is_none());
    assert!(evidence[0].contains("no complete answer"), "{evidence:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn nobody_listening_is_provider_unavailable_within_the_deadline() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = sender(format!("http://127.0.0.1:{port}"));
    let prepared = prepare(&cfg, &[], Secret::new(KEY.into())).unwrap();
    let t0 = flowtest::clock::std_instant();
    let out = send_until(
        &cfg,
        &prepared,
        MSG,
        flowtest::clock::instant() + Duration::from_secs(3),
    )
    .await;
    let (status, code, evidence) = judged(&out);
    assert_eq!(
        (status, code),
        (Status::SendFailed, FindingCode::ProviderUnavailable)
    );
    assert!(evidence[0].contains("cannot connect"), "{evidence:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(!format!("{prepared:?}").contains(KEY));
}
