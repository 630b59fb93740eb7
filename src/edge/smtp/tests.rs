//! Submissions sharing a pool against a scripted SMTP server on a loopback port: connections
//! handed over between probes, a stale one replaced, nothing sent twice; the envelope in one
//! write only to a server that offers PIPELINING.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

/// What the server does besides accepting every message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Accepts,
    /// Closes each connection right after accepting its first message.
    ClosesAfterOne,
    /// Takes a connection's second message, then closes without answering it.
    DropsTheSecond,
    /// Offers PIPELINING (RFC 2920).
    Pipelining,
    /// Offers PIPELINING and refuses the first RCPT it is sent (550).
    PipeliningRefusesFirstRcpt,
}

impl Script {
    fn pipelining(self) -> bool {
        matches!(
            self,
            Script::Pipelining | Script::PipeliningRefusesFirstRcpt
        )
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    messages: AtomicUsize,
    commands: Mutex<Vec<String>>,
    /// Commands that arrived with more of the client's bytes already behind them: sent
    /// without waiting for their reply.
    ahead: Mutex<Vec<String>>,
    rcpts_refused: AtomicUsize,
}

impl Seen {
    fn count(&self, verb: &str) -> usize {
        let c = self.commands.lock().expect("commands");
        c.iter().filter(|l| l.starts_with(verb)).count()
    }
}

async fn server(script: Script) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            s.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(conn, script, Arc::clone(&s)));
        }
    });
    (port, seen)
}

async fn serve(conn: tokio::net::TcpStream, script: Script, seen: Arc<Seen>) {
    let (r, mut w) = conn.into_split();
    let mut lines = BufReader::new(r).lines();
    let _ = w.write_all(b"220 test ESMTP\r\n").await;
    let mut taken = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        seen.commands.lock().expect("commands").push(verb.clone());
        if !lines.get_ref().buffer().is_empty() {
            seen.ahead.lock().expect("ahead").push(verb.clone());
        }
        let reply = match verb.as_str() {
            "DATA" => {
                if w.write_all(b"354 go on\r\n").await.is_err() {
                    return;
                }
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                }
                seen.messages.fetch_add(1, Ordering::SeqCst);
                taken += 1;
                if script == Script::DropsTheSecond && taken == 2 {
                    return;
                }
                let n = seen.messages.load(Ordering::SeqCst);
                let _ = w
                    .write_all(format!("250 2.0.0 Ok: queued as Q{n}\r\n").as_bytes())
                    .await;
                if script == Script::ClosesAfterOne {
                    return;
                }
                continue;
            }
            "QUIT" => {
                let _ = w.write_all(b"221 bye\r\n").await;
                return;
            }
            "EHLO" if script.pipelining() => "250-test\r\n250 PIPELINING\r\n".to_string(),
            "EHLO" => "250-test\r\n250 8BITMIME\r\n".to_string(),
            "RCPT"
                if script == Script::PipeliningRefusesFirstRcpt
                    && seen.rcpts_refused.fetch_add(1, Ordering::SeqCst) == 0 =>
            {
                "550 5.1.1 <alice@example.org>: Recipient address rejected\r\n".to_string()
            }
            _ => "250 ok\r\n".to_string(),
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A plaintext sender to the scripted server (loopback only).
fn sender(port: u16) -> SmtpSender {
    let (from, to) = (
        "probe@example.net".to_string(),
        "alice@example.org".to_string(),
    );
    SmtpSender {
        mail_from: from.clone(),
        rcpt_to: vec![to.clone()],
        header_from: from,
        header_to: to,
        helo: Some("client.test".into()),
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        ca_file: None,
        auth: None,
        command_timeout: Duration::from_secs(5),
    }
}

/// `n` submissions on one pool, all at once or one after another, then the end of the run;
/// their outcomes in order.
async fn submit_on_one_pool(port: u16, n: usize, at_once: bool) -> Vec<SendOutcome> {
    let pool = SmtpPool::default();
    let cfg = sender(port);
    let prepared = Prepared {
        ca_pem: None,
        password: None,
    };
    let deadline = crate::clock::instant() + Duration::from_secs(10);
    let send = || send_pooled(&pool, &cfg, &prepared, b"Subject: t\r\n\r\nx\r\n", deadline);
    let out = if at_once {
        futures::future::join_all((0..n).map(|_| send())).await
    } else {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(send().await);
        }
        out
    };
    // The end of a run: the connections kept for a next probe are closed.
    pool.close().await;
    out.into_iter().map(|s| s.outcome).collect()
}

async fn submit_together(port: u16, n: usize) -> Vec<SendOutcome> {
    submit_on_one_pool(port, n, true).await
}

fn accepted(o: &SendOutcome) -> bool {
    matches!(o, SendOutcome::Accepted(_))
}

#[tokio::test]
async fn probes_beyond_the_pools_connections_take_them_over_and_every_one_is_closed() {
    let (port, seen) = server(Script::Accepts).await;
    let out = submit_together(port, MAX_OPEN + 3).await;
    assert!(out.iter().all(accepted), "{out:?}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), MAX_OPEN);
    assert_eq!(seen.messages.load(Ordering::SeqCst), MAX_OPEN + 3);
    assert_eq!(seen.count("RSET"), 3, "one RSET per connection taken over");
    assert_eq!(
        seen.count("EHLO"),
        MAX_OPEN,
        "no new session for a taken-over one"
    );
    assert_eq!(
        seen.count("QUIT"),
        MAX_OPEN,
        "every connection is closed politely"
    );
}

#[tokio::test]
async fn a_connection_that_went_stale_is_replaced_by_a_fresh_one() {
    let (port, seen) = server(Script::ClosesAfterOne).await;
    let out = submit_together(port, MAX_OPEN + 1).await;
    assert!(out.iter().all(accepted), "{out:?}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), MAX_OPEN + 1);
    assert_eq!(seen.messages.load(Ordering::SeqCst), MAX_OPEN + 1);
}

#[tokio::test]
async fn nothing_is_sent_again_once_data_went_out() {
    let (port, seen) = server(Script::DropsTheSecond).await;
    let out = submit_together(port, MAX_OPEN + 1).await;
    let failed: Vec<_> = out.iter().filter(|o| !accepted(o)).collect();
    assert_eq!(failed.len(), 1, "{out:?}");
    assert!(
        matches!(failed[0], SendOutcome::Failed(s) if s.phase == SmtpPhase::Message),
        "{failed:?}"
    );
    assert_eq!(
        seen.messages.load(Ordering::SeqCst),
        MAX_OPEN + 1,
        "the message whose answer was lost is not sent again"
    );
    assert_eq!(seen.connections.load(Ordering::SeqCst), MAX_OPEN);
}

#[tokio::test]
async fn the_envelope_goes_out_in_one_write_only_to_a_server_offering_pipelining() {
    let (port, seen) = server(Script::Accepts).await;
    let out = submit_together(port, MAX_OPEN + 2).await;
    assert!(out.iter().all(accepted), "{out:?}");
    let ahead = seen.ahead.lock().expect("ahead").clone();
    assert!(ahead.is_empty(), "sent before its reply came: {ahead:?}");

    let (port, seen) = server(Script::Pipelining).await;
    let out = submit_together(port, MAX_OPEN + 2).await;
    assert!(out.iter().all(accepted), "{out:?}");
    assert_eq!(seen.messages.load(Ordering::SeqCst), MAX_OPEN + 2);
    let ahead = seen.ahead.lock().expect("ahead").clone();
    let count = |verb: &str| ahead.iter().filter(|v| *v == verb).count();
    assert_eq!(count("MAIL"), MAX_OPEN + 2, "MAIL with its RCPT: {ahead:?}");
    assert_eq!(
        count("RSET"),
        2,
        "RSET with the envelope it resets for: {ahead:?}"
    );
    assert_eq!(
        count("RCPT") + count("DATA"),
        0,
        "DATA waits for the envelope: {ahead:?}"
    );
}

#[tokio::test]
async fn a_recipient_refused_in_a_pipelined_envelope_is_the_verdict_and_no_data_follows() {
    let (port, seen) = server(Script::PipeliningRefusesFirstRcpt).await;
    let out = submit_together(port, 1).await;
    assert!(
        matches!(&out[0], SendOutcome::Rejected(s) if s.phase == SmtpPhase::Rcpt && s.code == Some(550)),
        "{out:?}"
    );
    assert_eq!(seen.count("DATA"), 0);
    assert_eq!(seen.messages.load(Ordering::SeqCst), 0);
    // The session stayed in step: the next probe's message goes through.
    let out = submit_together(port, 1).await;
    assert!(accepted(&out[0]), "{out:?}");
    assert_eq!(seen.messages.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn probes_one_after_another_share_the_connection_kept_between_them() {
    let (port, seen) = server(Script::Accepts).await;
    let out = submit_on_one_pool(port, 3, false).await;
    assert!(out.iter().all(accepted), "{out:?}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(seen.count("EHLO"), 1, "one session");
    assert_eq!(seen.count("RSET"), 2, "each later probe resets it");
    assert_eq!(seen.count("QUIT"), 1, "closed politely at the run's end");
}

#[tokio::test]
async fn a_connection_whose_transaction_was_refused_is_not_kept() {
    let (port, seen) = server(Script::PipeliningRefusesFirstRcpt).await;
    let out = submit_on_one_pool(port, 2, false).await;
    assert!(matches!(&out[0], SendOutcome::Rejected(_)), "{out:?}");
    assert!(accepted(&out[1]), "{out:?}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    assert_eq!(seen.count("QUIT"), 2, "the refused one closed at once");
}

/// A fresh connection's steps start with its connect; a taken-over one has only its
/// transaction (no connect, TLS or AUTH of its own); both in the conversation's order.
#[tokio::test]
async fn each_submission_records_its_own_steps_in_order() {
    use crate::core::submission_steps::StepTime;
    let (port, _seen) = server(Script::Accepts).await;
    let out = submit_together(port, MAX_OPEN + 1).await;
    let steps = |o: &SendOutcome| -> Vec<SmtpPhase> {
        o.submission()
            .steps
            .iter()
            .map(|s: &StepTime| s.step)
            .collect()
    };
    let fresh = vec![
        SmtpPhase::Connect,
        SmtpPhase::Mail,
        SmtpPhase::Data,
        SmtpPhase::Message,
    ];
    let taken_over = vec![SmtpPhase::Mail, SmtpPhase::Data, SmtpPhase::Message];
    let all: Vec<Vec<SmtpPhase>> = out.iter().map(steps).collect();
    assert_eq!(
        all.iter().filter(|s| **s == fresh).count(),
        MAX_OPEN,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|s| **s == taken_over).count(),
        1,
        "{all:?}"
    );
}
