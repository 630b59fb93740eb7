//! SMTP submission of one probe, step by step (connect, STARTTLS, AUTH, MAIL, RCPT, DATA) so a
//! failure is attributed to the step that failed. Built on lettre's connection API.
//!
//! Outcomes follow the probe vocabulary: a 4xx/5xx reply to the envelope or data is a rejection
//! (the server said no); a connection, TLS or AUTH failure means we could not send at all.
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use crate::config::secret::Secret;
use crate::config::{SmtpSender, TlsMode};
use crate::core::outcome::{SmtpPhase, Submission};
use crate::core::reply;

/// How a submission ended.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// The server took the message (2xx after DATA).
    Accepted(Submission),
    /// The server answered 4xx/5xx to the envelope or the data.
    Rejected(Submission),
    /// Could not get as far as a server's verdict: connection, TLS, AUTH, protocol, timeout.
    Failed(Submission),
}

impl SendOutcome {
    pub fn submission(&self) -> &Submission {
        match self {
            SendOutcome::Accepted(s) | SendOutcome::Rejected(s) | SendOutcome::Failed(s) => s,
        }
    }
}

/// Everything resolved before sending: no file or secret is read inside the conversation.
pub struct Prepared {
    pub ca_pem: Option<Vec<u8>>,
    pub password: Option<Secret>,
}

fn tls_params(host: &str, ca_pem: &Option<Vec<u8>>) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(host.to_string());
    if let Some(pem) = ca_pem {
        let cert = Certificate::from_pem(pem).map_err(|e| format!("CA certificate: {e}"))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().map_err(|e| format!("TLS setup: {e}"))
}

fn code_of(e: &lettre::transport::smtp::Error) -> Option<u16> {
    e.status().and_then(|c| c.to_string().parse().ok())
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) if e.status().is_some() => s.to_string(),
        _ => e.to_string(),
    }
}

fn response_text(r: &Response) -> String {
    r.message().collect::<Vec<_>>().join(" ")
}

struct Conversation {
    started_at: DateTime<Utc>,
    phase: SmtpPhase,
}

impl Conversation {
    fn failed(&self, text: String, code: Option<u16>) -> SendOutcome {
        SendOutcome::Failed(self.record(code, text, None))
    }
    fn record(
        &self,
        code: Option<u16>,
        text: String,
        accepted_at: Option<DateTime<Utc>>,
    ) -> Submission {
        Submission {
            started_at: self.started_at,
            accepted_at,
            phase: self.phase,
            code,
            enhanced: reply::enhanced_code(&text),
            queue_id: if accepted_at.is_some() {
                reply::queue_id(&text)
            } else {
                None
            },
            text,
        }
    }
    /// A negative reply at an envelope/data step is a rejection; elsewhere a failure.
    fn outcome_of(&self, e: lettre::transport::smtp::Error) -> SendOutcome {
        let code = code_of(&e);
        let text = error_text(&e);
        let envelope_step = matches!(
            self.phase,
            SmtpPhase::Mail | SmtpPhase::Rcpt | SmtpPhase::Data | SmtpPhase::Message
        );
        // A 4xx/5xx greeting (e.g. postscreen, "554 no SMTP service") is the server saying no.
        let greeting_refusal = self.phase == SmtpPhase::Connect && code.is_some();
        if code.is_some() && (envelope_step || greeting_refusal) {
            SendOutcome::Rejected(self.record(code, text, None))
        } else {
            self.failed(text, code)
        }
    }
}

async fn step<T>(
    conv: &Conversation,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, SendOutcome> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(conv.outcome_of(e)),
        Err(_) => Err(conv.failed(format!("no answer within {} s", limit.as_secs_f64()), None)),
    }
}

/// Send `message` as configured. Every step is bounded by the sender's command timeout.
pub async fn send(cfg: &SmtpSender, prepared: &Prepared, message: &[u8]) -> SendOutcome {
    let mut conv = Conversation {
        started_at: crate::clock::now(),
        phase: SmtpPhase::Connect,
    };
    match send_inner(cfg, prepared, message, &mut conv).await {
        Ok(o) | Err(o) => o,
    }
}

async fn send_inner(
    cfg: &SmtpSender,
    prepared: &Prepared,
    message: &[u8],
    conv: &mut Conversation,
) -> Result<SendOutcome, SendOutcome> {
    let limit = cfg.command_timeout;
    let helo = match &cfg.helo {
        Some(h) => ClientId::Domain(h.clone()),
        None => ClientId::default(),
    };
    let mail_from: Option<Address> = if cfg.mail_from.is_empty() {
        None
    } else {
        Some(
            cfg.mail_from
                .parse()
                .map_err(|e| conv.failed(format!("bad sender address: {e}"), None))?,
        )
    };
    let rcpts: Vec<Address> = cfg
        .rcpt_to
        .iter()
        .map(|r| {
            r.parse::<Address>()
                .map_err(|e| conv.failed(format!("bad recipient {r}: {e}"), None))
        })
        .collect::<Result<_, _>>()?;
    let envelope = Envelope::new(mail_from.clone(), rcpts.clone())
        .map_err(|e| conv.failed(format!("bad envelope: {e}"), None))?;
    let tls = match cfg.tls {
        TlsMode::None => None,
        _ => Some(tls_params(&cfg.host, &prepared.ca_pem).map_err(|e| conv.failed(e, None))?),
    };
    let implicit = if cfg.tls == TlsMode::Tls {
        tls.clone()
    } else {
        None
    };

    // Connect, read the greeting, EHLO (and the TLS handshake first for implicit TLS).
    let mut conn = step(
        conv,
        limit,
        AsyncSmtpConnection::connect_tokio1(
            (cfg.host.as_str(), cfg.port),
            Some(limit),
            &helo,
            implicit,
            None,
        ),
    )
    .await?;

    if cfg.tls == TlsMode::Starttls {
        conv.phase = SmtpPhase::Starttls;
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(conv.failed(
                "the server does not offer STARTTLS (tls = \"starttls\" requires it)".into(),
                None,
            ));
        }
        let params = tls.clone().expect("tls parameters exist for starttls");
        step(conv, limit, conn.starttls(params, &helo)).await?;
    }

    if let Some(auth) = &cfg.auth {
        conv.phase = SmtpPhase::Auth;
        let pw = prepared
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        let creds = Credentials::new(auth.username.clone(), pw);
        step(
            conv,
            limit,
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds),
        )
        .await?;
    }

    conv.phase = SmtpPhase::Mail;
    step(conv, limit, conn.command(Mail::new(mail_from, vec![]))).await?;
    conv.phase = SmtpPhase::Rcpt;
    for r in rcpts {
        step(conv, limit, conn.command(Rcpt::new(r, vec![]))).await?;
    }
    conv.phase = SmtpPhase::Data;
    step(conv, limit, conn.command(Data)).await?;
    conv.phase = SmtpPhase::Message;
    let _ = &envelope;
    let resp = step(conv, limit, conn.message(message)).await?;
    let accepted_at = crate::clock::now();
    let text = response_text(&resp);
    let code = resp.code().to_string().parse().ok();
    // QUIT politely but never let it delay or change the verdict.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
    Ok(SendOutcome::Accepted(conv.record(
        code,
        text,
        Some(accepted_at),
    )))
}
