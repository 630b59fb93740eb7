//! The SMTP edge against scripted, misbehaving servers on loopback: every outcome is attributed
//! to the right step, and nothing hangs past its timeout.
use std::time::Duration;

use flowtest::config::secret::{Secret, SecretRef};
use flowtest::config::{Auth, AuthMechanism, SmtpSender, TlsMode};
use flowtest::core::outcome::SmtpPhase;
use flowtest::edge::smtp::{send, Prepared, SendOutcome};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A server that answers each command by the first script entry whose prefix matches.
async fn scripted(
    greeting: Option<&'static str>,
    script: Vec<(&'static str, &'static str)>,
) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        let Some(g) = greeting else {
            // Accept, then say nothing at all.
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        };
        w.write_all(g.as_bytes()).await.unwrap();
        let mut in_data = false;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    let reply = script
                        .iter()
                        .find(|(k, _)| *k == ".")
                        .map(|(_, v)| *v)
                        .unwrap_or("250 2.0.0 Ok: queued as ABC123\r\n");
                    w.write_all(reply.as_bytes()).await.unwrap();
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let reply = script
                .iter()
                .find(|(k, _)| upper.starts_with(k))
                .map(|(_, v)| *v)
                .unwrap_or("250 ok\r\n");
            if upper.starts_with("DATA") && reply.starts_with("354") {
                in_data = true;
            }
            if reply == "hang" {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            w.write_all(reply.as_bytes()).await.unwrap();
            if upper.starts_with("QUIT") {
                return;
            }
        }
    });
    port
}

fn sender(port: u16) -> SmtpSender {
    SmtpSender {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        ca_file: None,
        helo: Some("client.test".into()),
        mail_from: "probe@example.net".into(),
        rcpt_to: vec!["alice@example.org".into()],
        header_from: "probe@example.net".into(),
        header_to: "alice@example.org".into(),
        auth: None,
        command_timeout: Duration::from_secs(1),
    }
}

const EHLO: (&str, &str) = (
    "EHLO",
    "250-test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
);
const DATA: (&str, &str) = ("DATA", "354 go ahead\r\n");
const MSG: &[u8] = b"Subject: t\r\n\r\nbody\r\n";
const NO_TLS: Prepared = Prepared {
    ca_pem: None,
    password: None,
};

#[tokio::test]
async fn accepted_message_records_reply_and_queue_id() {
    let port = scripted(Some("220 test ESMTP\r\n"), vec![EHLO, DATA]).await;
    let out = send(&sender(port), &NO_TLS, MSG).await;
    let SendOutcome::Accepted(s) = out else {
        panic!("{out:?}")
    };
    assert_eq!(s.code, Some(250));
    assert_eq!(s.queue_id.as_deref(), Some("ABC123"));
    assert_eq!(s.phase, SmtpPhase::Message);
    assert!(s.accepted_at.unwrap() >= s.started_at);
}

#[tokio::test]
async fn relay_denied_at_rcpt_is_a_rejection() {
    let port = scripted(
        Some("220 test ESMTP\r\n"),
        vec![
            EHLO,
            (
                "RCPT",
                "554 5.7.1 <alice@example.org>: Relay access denied\r\n",
            ),
        ],
    )
    .await;
    let out = send(&sender(port), &NO_TLS, MSG).await;
    let SendOutcome::Rejected(s) = out else {
        panic!("{out:?}")
    };
    assert_eq!(s.code, Some(554));
    assert_eq!(s.enhanced.as_deref(), Some("5.7.1"));
    assert_eq!(s.phase, SmtpPhase::Rcpt);
    assert!(s.text.contains("Relay access denied"), "{}", s.text);
    assert_eq!(s.queue_id, None);
}

#[tokio::test]
async fn temporary_failure_after_data_is_a_rejection_with_4xx() {
    let port = scripted(
        Some("220 test ESMTP\r\n"),
        vec![
            EHLO,
            DATA,
            (".", "451 4.3.0 Error: queue file write error\r\n"),
        ],
    )
    .await;
    let SendOutcome::Rejected(s) = send(&sender(port), &NO_TLS, MSG).await else {
        panic!()
    };
    assert_eq!((s.code, s.phase), (Some(451), SmtpPhase::Message));
}

#[tokio::test]
async fn auth_failure_is_send_failed_at_auth() {
    let port = scripted(
        Some("220 test ESMTP\r\n"),
        vec![EHLO, ("AUTH", "535 5.7.8 Error: authentication failed\r\n")],
    )
    .await;
    let mut cfg = sender(port);
    cfg.auth = Some(Auth {
        username: "u".into(),
        password: SecretRef::Env("UNUSED".into()),
        mechanism: AuthMechanism::Password,
    });
    let prepared = Prepared {
        ca_pem: None,
        password: Some(Secret::new("pw".into())),
    };
    let SendOutcome::Failed(s) = send(&cfg, &prepared, MSG).await else {
        panic!()
    };
    assert_eq!((s.code, s.phase), (Some(535), SmtpPhase::Auth));
}

#[tokio::test]
async fn silent_server_times_out_instead_of_hanging() {
    let port = scripted(None, vec![]).await;
    let t = flowtest::clock::std_instant();
    let SendOutcome::Failed(s) = send(&sender(port), &NO_TLS, MSG).await else {
        panic!()
    };
    assert_eq!(s.phase, SmtpPhase::Connect);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "bounded by the 1 s command timeout"
    );
}

#[tokio::test]
async fn server_hanging_mid_conversation_times_out() {
    let port = scripted(Some("220 test ESMTP\r\n"), vec![EHLO, ("MAIL", "hang")]).await;
    let t = flowtest::clock::std_instant();
    let SendOutcome::Failed(s) = send(&sender(port), &NO_TLS, MSG).await else {
        panic!()
    };
    assert_eq!(s.phase, SmtpPhase::Mail);
    assert!(s.text.contains("no answer"), "{}", s.text);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn refused_connection_is_send_failed() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let SendOutcome::Failed(s) = send(&sender(port), &NO_TLS, MSG).await else {
        panic!()
    };
    assert_eq!((s.code, s.phase), (None, SmtpPhase::Connect));
}

#[tokio::test]
async fn greeting_refusal_is_a_rejection() {
    let port = scripted(Some("554 5.7.1 no SMTP service for you\r\n"), vec![]).await;
    let SendOutcome::Rejected(s) = send(&sender(port), &NO_TLS, MSG).await else {
        panic!()
    };
    assert_eq!((s.code, s.phase), (Some(554), SmtpPhase::Connect));
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails_clearly() {
    let port = scripted(Some("220 test ESMTP\r\n"), vec![EHLO]).await;
    let mut cfg = sender(port);
    cfg.tls = TlsMode::Starttls;
    let SendOutcome::Failed(s) = send(&cfg, &NO_TLS, MSG).await else {
        panic!()
    };
    assert_eq!(s.phase, SmtpPhase::Starttls);
    assert!(s.text.contains("STARTTLS"), "{}", s.text);
}

const EHLO_OAUTH: (&str, &str) = (
    "EHLO",
    "250-test\r\n250-AUTH LOGIN PLAIN XOAUTH2 OAUTHBEARER\r\n250 8BITMIME\r\n",
);

fn xoauth2(port: u16) -> (flowtest::config::SmtpSender, Prepared) {
    let mut cfg = sender(port);
    cfg.auth = Some(Auth {
        username: "probe@gmail.test".into(),
        password: SecretRef::Env("UNUSED".into()),
        mechanism: AuthMechanism::XOAuth2,
    });
    let prepared = Prepared {
        ca_pem: None,
        password: Some(Secret::new("ya29.token".into())),
    };
    (cfg, prepared)
}

#[tokio::test]
async fn xoauth2_sends_the_token_in_its_sasl_form() {
    // The scripted server compares upper-cased lines: the expected line is upper-cased too.
    let port = scripted(
        Some("220 test ESMTP\r\n"),
        vec![
            EHLO_OAUTH,
            (
                "AUTH XOAUTH2 DXNLCJ1WCM9IZUBNBWFPBC50ZXN0AWF1DGG9QMVHCMVYIHLHMJKUDG9RZW4BAQ==",
                "235 2.7.0 Accepted\r\n",
            ),
            ("AUTH", "535 5.7.8 not the expected XOAUTH2 line\r\n"),
            DATA,
        ],
    )
    .await;
    let (cfg, prepared) = xoauth2(port);
    let out = send(&cfg, &prepared, MSG).await;
    assert!(matches!(out, SendOutcome::Accepted(_)), "{out:?}");
}

#[tokio::test]
async fn xoauth2_error_challenge_is_decoded_and_shown() {
    let port = scripted(
        Some("220 test ESMTP\r\n"),
        vec![
            EHLO_OAUTH,
            ("AUTH XOAUTH2", "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n"),
            ("\r\n", "535 5.7.8 Username and Password not accepted\r\n"),
        ],
    )
    .await;
    let (cfg, prepared) = xoauth2(port);
    let SendOutcome::Failed(s) = send(&cfg, &prepared, MSG).await else {
        panic!()
    };
    assert_eq!((s.code, s.phase), (Some(535), SmtpPhase::Auth));
    assert!(
        s.text.contains("Username and Password not accepted"),
        "{}",
        s.text
    );
    assert!(
        s.text
            .contains(r#"XOAUTH2 error: {"status":"401","schemes":"Bearer""#),
        "{}",
        s.text
    );
    assert!(!s.text.contains("ya29"), "{}", s.text);
    assert_provider_auth_failed(&s);
}

/// A refused token is the provider's finding, never a password's.
fn assert_provider_auth_failed(s: &flowtest::core::outcome::Submission) {
    let d = flowtest::core::verdict::submission_verdict(
        flowtest::core::verdict::SubmitFailure::Failed,
        s,
    );
    assert_eq!(
        d.finding.unwrap().code,
        flowtest::core::diagnosis::FindingCode::ProviderAuthFailed
    );
}

#[tokio::test]
async fn oauthbearer_refusal_is_acknowledged_decoded_and_recorded() {
    let port = scripted(
        Some("220 test ESMTP\r\n"),
        vec![
            EHLO_OAUTH,
            // Base64 of `n,a=probe@gmail.test,^Aauth=Bearer ya29.token^A^A`, upper-cased.
            (
                "AUTH OAUTHBEARER BIXHPXBYB2JLQGDTYWLSLNRLC3QSAWF1DGG9QMVHCMVYIHLHMJKUDG9RZW4BAQ==",
                "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n",
            ),
            // RFC 7628: the client answers an error challenge with a lone ^A.
            ("AQ==", "535 5.7.8 Error: authentication failed\r\n"),
        ],
    )
    .await;
    let (mut cfg, prepared) = xoauth2(port);
    if let Some(a) = cfg.auth.as_mut() {
        a.mechanism = AuthMechanism::OAuthBearer;
    }
    let SendOutcome::Failed(s) = send(&cfg, &prepared, MSG).await else {
        panic!()
    };
    assert_eq!((s.code, s.phase), (Some(535), SmtpPhase::Auth));
    assert!(
        s.text
            .contains(r#"OAUTHBEARER error: {"status":"invalid_token"}"#),
        "{}",
        s.text
    );
    assert_eq!(
        s.auth_mechanism,
        Some(flowtest::core::outcome::AuthMechanism::OAuthBearer)
    );
    assert!(!s.text.contains("ya29"), "{}", s.text);
    assert_provider_auth_failed(&s);
}

#[tokio::test]
async fn xoauth2_needs_the_server_to_offer_it() {
    let port = scripted(Some("220 test ESMTP\r\n"), vec![EHLO]).await;
    let (cfg, prepared) = xoauth2(port);
    let SendOutcome::Failed(s) = send(&cfg, &prepared, MSG).await else {
        panic!()
    };
    assert_eq!(s.phase, SmtpPhase::Auth);
    assert!(s.text.contains("offered: PLAIN LOGIN"), "{}", s.text);
}
