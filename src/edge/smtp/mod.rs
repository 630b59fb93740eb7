//! SMTP submission of one probe, step by step (connect, STARTTLS, AUTH, MAIL, RCPT, DATA) so a
//! failure is attributed to the step that failed.
//!
//! Outcomes follow the probe vocabulary: a 4xx/5xx reply to the envelope or data is a rejection
//! (the server said no); a connection, TLS or AUTH failure means we could not send at all.
//!
//! The conversation is written here rather than on an SMTP library: a probe must survive hostile
//! peers (a reply line without end must not grow memory; one deadline must bound every step) and
//! be timed precisely (one write per command, TCP_NODELAY), which the libraries we tried do not
//! offer. The wire itself is `wire`; SASL mechanisms are `auth`.
mod auth;
pub mod wire;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::secret::Secret;
use crate::config::{SmtpSender, TlsMode};
use crate::core::outcome::{AuthMechanism, SmtpPhase, Submission};
use crate::core::reply;
use wire::{Reply, Wire, WireError};

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

/// The TLS configuration for a sender: the web PKI plus its own CA file, if any.
fn tls_config(
    cfg: &SmtpSender,
    ca_pem: &Option<Vec<u8>>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use crate::edge::tls;
    let extra = match (ca_pem, &cfg.ca_file) {
        (Some(pem), Some(path)) => tls::parse_ca(pem, path).map_err(|e| e.to_string())?,
        (Some(pem), None) => {
            tls::parse_ca(pem, std::path::Path::new("(sender CA)")).map_err(|e| e.to_string())?
        }
        (None, _) => Vec::new(),
    };
    tls::client_config(&extra).map_err(|e| e.to_string())
}

struct Conversation {
    started_at: DateTime<Utc>,
    phase: SmtpPhase,
    /// The whole submission must end by then.
    deadline: Instant,
    /// Each step must end by then too (the sender's command timeout).
    step_limit: Duration,
    /// The AUTH mechanism, once one was chosen.
    auth: Option<AuthMechanism>,
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
            auth_mechanism: self.auth,
        }
    }
    /// The end of the current step: the command timeout, capped by the submission's deadline.
    fn step_deadline(&self) -> Instant {
        (crate::clock::instant() + self.step_limit).min(self.deadline)
    }
    /// A negative reply at an envelope/data step is a rejection; elsewhere a failure.
    fn refused(&self, r: &Reply) -> SendOutcome {
        let envelope_step = matches!(
            self.phase,
            SmtpPhase::Mail | SmtpPhase::Rcpt | SmtpPhase::Data | SmtpPhase::Message
        );
        // A 4xx/5xx greeting (e.g. postscreen, "554 no SMTP service") is the server saying no.
        let greeting_refusal = self.phase == SmtpPhase::Connect;
        if envelope_step || greeting_refusal {
            SendOutcome::Rejected(self.record(Some(r.code), r.text(), None))
        } else {
            self.failed(r.text(), Some(r.code))
        }
    }
    fn wire_failed(&self, e: WireError) -> SendOutcome {
        self.failed(e.to_string(), None)
    }
    /// Send a command and read its reply; a reply outside 2xx/3xx ends the conversation.
    async fn exchange(&self, wire: &mut Wire, line: &str) -> Result<Reply, SendOutcome> {
        let until = self.step_deadline();
        wire.command(line, until)
            .await
            .map_err(|e| self.wire_failed(e))?;
        self.expect(wire, until).await
    }
    /// Read a reply; a reply outside 2xx/3xx ends the conversation.
    async fn expect(&self, wire: &mut Wire, until: Instant) -> Result<Reply, SendOutcome> {
        let r = wire.reply(until).await.map_err(|e| self.wire_failed(e))?;
        if r.is_positive() {
            Ok(r)
        } else {
            Err(self.refused(&r))
        }
    }
}

/// Send `message` as configured. Every step is bounded by the sender's command timeout.
pub async fn send(cfg: &SmtpSender, prepared: &Prepared, message: &[u8]) -> SendOutcome {
    // Without a probe deadline, the steps' own timeouts bound the conversation.
    let deadline = crate::clock::instant() + cfg.command_timeout.saturating_mul(8);
    send_until(cfg, prepared, message, deadline).await
}

/// Send `message`, every step bounded by the command timeout and the whole by `deadline`.
pub async fn send_until(
    cfg: &SmtpSender,
    prepared: &Prepared,
    message: &[u8],
    deadline: Instant,
) -> SendOutcome {
    let mut conv = Conversation {
        started_at: crate::clock::now(),
        phase: SmtpPhase::Connect,
        deadline,
        step_limit: cfg.command_timeout,
        auth: None,
    };
    match converse(cfg, prepared, message, &mut conv).await {
        Ok(o) | Err(o) => o,
    }
}

/// Connect, read the greeting, EHLO; with implicit TLS the handshake comes first.
async fn open(
    cfg: &SmtpSender,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    conv: &Conversation,
) -> Result<(Wire, Reply), SendOutcome> {
    let until = conv.step_deadline();
    let mut wire = Wire::connect(&cfg.host, cfg.port, until)
        .await
        .map_err(|e| conv.wire_failed(e))?;
    if let (TlsMode::Tls, Some(t)) = (cfg.tls, tls) {
        wire = wire
            .into_tls(t.clone(), &cfg.host, until)
            .await
            .map_err(|e| conv.wire_failed(e))?;
    }
    conv.expect(&mut wire, until).await?;
    let ehlo = ehlo(&mut wire, cfg, conv).await?;
    Ok((wire, ehlo))
}

fn helo_name(cfg: &SmtpSender) -> String {
    cfg.helo
        .clone()
        .or_else(hostname_of_machine)
        .unwrap_or_else(|| "localhost".into())
}

/// This machine's host name, when it has a usable one.
fn hostname_of_machine() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    ok.then(|| name.to_string())
}

async fn ehlo(
    wire: &mut Wire,
    cfg: &SmtpSender,
    conv: &Conversation,
) -> Result<Reply, SendOutcome> {
    conv.exchange(wire, &format!("EHLO {}", helo_name(cfg)))
        .await
}

async fn converse(
    cfg: &SmtpSender,
    prepared: &Prepared,
    message: &[u8],
    conv: &mut Conversation,
) -> Result<SendOutcome, SendOutcome> {
    let tls = match cfg.tls {
        TlsMode::None => None,
        _ => Some(tls_config(cfg, &prepared.ca_pem).map_err(|e| conv.failed(e, None))?),
    };
    let (mut wire, mut caps) = open(cfg, tls.as_ref(), conv).await?;

    if let (TlsMode::Starttls, Some(t)) = (cfg.tls, &tls) {
        conv.phase = SmtpPhase::Starttls;
        if !caps.has_extension("STARTTLS") {
            return Err(conv.failed(
                "the server does not offer STARTTLS (tls = \"starttls\" requires it)".into(),
                None,
            ));
        }
        conv.exchange(&mut wire, "STARTTLS").await?;
        wire = wire
            .into_tls(t.clone(), &cfg.host, conv.step_deadline())
            .await
            .map_err(|e| conv.wire_failed(e))?;
        caps = ehlo(&mut wire, cfg, conv).await?;
    }

    if let Some(a) = &cfg.auth {
        conv.phase = SmtpPhase::Auth;
        auth::authenticate(
            &mut wire,
            &mut *conv,
            &caps,
            &a.username,
            a.mechanism,
            prepared.password.as_ref(),
        )
        .await?;
    }

    conv.phase = SmtpPhase::Mail;
    conv.exchange(&mut wire, &format!("MAIL FROM:<{}>", cfg.mail_from))
        .await?;
    conv.phase = SmtpPhase::Rcpt;
    for r in &cfg.rcpt_to {
        conv.exchange(&mut wire, &format!("RCPT TO:<{r}>")).await?;
    }
    conv.phase = SmtpPhase::Data;
    conv.exchange(&mut wire, "DATA").await?;
    conv.phase = SmtpPhase::Message;
    let until = conv.step_deadline();
    wire.write_all(&wire::data_payload(message), until)
        .await
        .map_err(|e| conv.wire_failed(e))?;
    let resp = conv.expect(&mut wire, until).await?;
    let accepted_at = crate::clock::now();
    // QUIT politely but never let it delay or change the verdict.
    let quit_by = crate::clock::instant() + Duration::from_secs(2);
    if wire.command("QUIT", quit_by).await.is_ok() {
        let _ = wire.reply(quit_by).await;
    }
    wire.shutdown().await;
    Ok(SendOutcome::Accepted(conv.record(
        Some(resp.code),
        resp.text(),
        Some(accepted_at),
    )))
}
