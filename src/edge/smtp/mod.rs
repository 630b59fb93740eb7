//! SMTP submission of one probe, step by step (connect, STARTTLS, AUTH, MAIL, RCPT, DATA) so a
//! failure is attributed to the step that failed. The probes of a run share a few connections
//! to each submission server (`pool`): a probe's transaction may run on a connection another
//! probe opened, and its submission then starts at RSET rather than at connect.
//!
//! Outcomes follow the probe vocabulary: a 4xx/5xx reply to the envelope or data is a rejection
//! (the server said no); a connection, TLS or AUTH failure means we could not send at all.
//!
//! The conversation is written here rather than on an SMTP library: a probe must survive hostile
//! peers (a reply line without end must not grow memory; one deadline must bound every step) and
//! be timed precisely (one write per command, TCP_NODELAY), which the libraries we tried do not
//! offer. To a server that offers PIPELINING (RFC 2920) the envelope (RSET, MAIL, RCPT) leaves in
//! one write, which saves a round trip per command; DATA always waits for the envelope's replies.
//! The wire itself is `wire`; SASL mechanisms are `auth`.
mod auth;
mod pool;
pub mod wire;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::secret::Secret;
use crate::config::{SmtpSender, TlsMode};
use crate::core::outcome::{AuthMechanism, SmtpPhase, Submission};
use crate::core::reply;
use crate::core::submission_steps::{add_step, StepTime};
use pool::Connection;
pub use pool::{SmtpPool, MAX_OPEN};
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

/// Whole milliseconds from `a` to `b`, rounded.
fn elapsed_ms(a: Instant, b: Instant) -> u64 {
    let us = b.saturating_duration_since(a).as_micros();
    u64::try_from((us + 500) / 1000).unwrap_or(u64::MAX)
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
    /// The steps done so far and their times; the current one (`phase`) began at `step_began`.
    steps: Vec<StepTime>,
    step_began: Instant,
}

impl Conversation {
    fn new(deadline: Instant, step_limit: Duration) -> Self {
        Conversation {
            started_at: crate::clock::now(),
            phase: SmtpPhase::Connect,
            deadline,
            step_limit,
            auth: None,
            steps: Vec::new(),
            step_began: crate::clock::instant(),
        }
    }
    /// The current step is over; `phase` begins.
    fn enter(&mut self, phase: SmtpPhase) {
        let now = crate::clock::instant();
        add_step(
            &mut self.steps,
            self.phase,
            elapsed_ms(self.step_began, now),
        );
        self.phase = phase;
        self.step_began = now;
    }
    /// The steps done, the current one until now.
    fn steps_until_now(&self) -> Vec<StepTime> {
        let mut steps = self.steps.clone();
        let ms = elapsed_ms(self.step_began, crate::clock::instant());
        add_step(&mut steps, self.phase, ms);
        steps
    }
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
            steps: self.steps_until_now().into_boxed_slice(),
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

/// Send `message` on a connection of its own, closed after it, every step bounded by the
/// command timeout and the whole by `deadline`.
pub async fn send_until(
    cfg: &SmtpSender,
    prepared: &Prepared,
    message: &[u8],
    deadline: Instant,
) -> SendOutcome {
    let lone = SmtpPool::lingering(Duration::ZERO);
    send_pooled(&lone, cfg, prepared, message, deadline)
        .await
        .outcome
}

/// A submission, and when its conversation started.
pub struct Submitted {
    pub outcome: SendOutcome,
    /// The start of the conversation, after the wait for a turn in the pool (that wait is
    /// the client's own, not the server's): the start of the `submission` stage.
    pub started: Instant,
}

/// Send `message` on one of `pool`'s connections (see [`SmtpPool`]): a fresh one, or one
/// handed over by the probe that submitted before it (RSET first). A handed-over connection
/// that fails before DATA is sent is replaced by a fresh one and the transaction starts
/// again; after DATA nothing is retried (the server may have taken the message).
pub async fn send_pooled(
    pool: &SmtpPool,
    cfg: &SmtpSender,
    prepared: &Prepared,
    message: &[u8],
    deadline: Instant,
) -> Submitted {
    let turn = pool.turn(deadline).await;
    let started = crate::clock::instant();
    let mut conv = Conversation::new(deadline, cfg.command_timeout);
    let Some(mut turn) = turn else {
        let text = "no connection to the submission server was free before the deadline";
        return Submitted {
            outcome: conv.failed(text.into(), None),
            started,
        };
    };
    if let Some(c) = turn.handed.take() {
        match take_over(c, cfg, message, &mut conv).await {
            Some(ended) => return ended.finish(turn, started).await,
            // Gone stale: a fresh connection, the conversation from its start.
            None => {
                conv.enter(SmtpPhase::Connect);
                conv.auth = None;
            }
        }
    }
    let ended = match establish(cfg, prepared, &mut conv).await {
        // Without RSET the transaction cannot find the connection stale (no `None`).
        Ok(c) => match transact(c, cfg, message, &mut conv, false).await {
            Some(ended) => ended,
            None => Ended {
                outcome: conv.failed("the new connection was found stale".into(), None),
                conn: None,
                before_data: true,
            },
        },
        Err(outcome) => Ended {
            outcome,
            conn: None,
            before_data: false,
        },
    };
    ended.finish(turn, started).await
}

/// How a transaction ended: the outcome, the connection while it is still sound (after the
/// server's acceptance or refusal), and whether it broke before DATA was sent.
struct Ended {
    outcome: SendOutcome,
    conn: Option<Connection>,
    before_data: bool,
}

impl Ended {
    async fn finish(self, turn: pool::Turn<'_>, started: Instant) -> Submitted {
        if let Some(c) = self.conn {
            // The verdict is taken: the connection's end (QUIT, or kept) cannot change it.
            let keep = matches!(self.outcome, SendOutcome::Accepted(_));
            turn.finish(c, keep).await;
        }
        Submitted {
            outcome: self.outcome,
            started,
        }
    }
}

/// The transaction on a handed-over connection, RSET first; `None` when the connection
/// proved stale before DATA was sent (a reply that says it is closing included).
async fn take_over(
    c: Connection,
    cfg: &SmtpSender,
    message: &[u8],
    conv: &mut Conversation,
) -> Option<Ended> {
    conv.auth = c.auth;
    // No connect, TLS or AUTH on a connection already open: its time is the envelope's.
    conv.phase = SmtpPhase::Mail;
    let ended = transact(c, cfg, message, conv, true).await?;
    (!ended.before_data).then_some(ended)
}

/// Why an envelope command did not get a positive reply.
enum Stop {
    /// The server refused: the connection can carry another transaction.
    Refused(Box<SendOutcome>),
    /// The connection failed, or the server is closing it (421).
    Broken(Box<SendOutcome>),
}

/// One command of the transaction and its reply.
async fn step(conv: &Conversation, wire: &mut Wire, line: &str) -> Result<Reply, Stop> {
    let until = conv.step_deadline();
    let r = match wire.command(line, until).await {
        Ok(()) => wire.reply(until).await,
        Err(e) => Err(e),
    };
    judge_reply(conv, r)
}

/// A transaction reply (or the wire's failure to bring one) as the conversation goes on from it.
fn judge_reply(conv: &Conversation, r: Result<Reply, WireError>) -> Result<Reply, Stop> {
    match r {
        Ok(r) if r.is_positive() => Ok(r),
        Ok(r) if r.code == 421 => Err(Stop::Broken(Box::new(conv.refused(&r)))),
        Ok(r) => Err(Stop::Refused(Box::new(conv.refused(&r)))),
        Err(e) => Err(Stop::Broken(Box::new(conv.wire_failed(e)))),
    }
}

/// The commands of an envelope: RSET on a handed-over connection (`None` as its phase), MAIL,
/// then every RCPT.
fn envelope_commands(cfg: &SmtpSender, reset: bool) -> Vec<(Option<SmtpPhase>, String)> {
    let mut cmds = Vec::with_capacity(cfg.rcpt_to.len() + 2);
    if reset {
        cmds.push((None, "RSET".to_string()));
    }
    cmds.push((
        Some(SmtpPhase::Mail),
        format!("MAIL FROM:<{}>", cfg.mail_from),
    ));
    for r in &cfg.rcpt_to {
        cmds.push((Some(SmtpPhase::Rcpt), format!("RCPT TO:<{r}>")));
    }
    cmds
}

/// Why the envelope did not go through.
enum EnvelopeStop {
    /// RSET on a handed-over connection failed: the connection is stale.
    Stale,
    Stop(Stop),
}

/// Send the envelope and judge its replies in order; the first refusal decides. With
/// PIPELINING (RFC 2920) the commands leave in one write and every reply is still read (a
/// refused MAIL or RCPT leaves the session in step for the next transaction); DATA stays out
/// of the group, so a refused recipient never leaves the server waiting for a message.
async fn envelope(
    c: &mut Connection,
    cfg: &SmtpSender,
    conv: &mut Conversation,
    reset: bool,
) -> Result<(), EnvelopeStop> {
    let cmds = envelope_commands(cfg, reset);
    if c.pipelining {
        let mut batch = String::new();
        for (_, line) in &cmds {
            batch.push_str(line);
            batch.push_str("\r\n");
        }
        let until = conv.step_deadline();
        if let Err(e) = c.wire.write_all(batch.as_bytes(), until).await {
            return Err(if reset {
                EnvelopeStop::Stale
            } else {
                EnvelopeStop::Stop(Stop::Broken(Box::new(conv.wire_failed(e))))
            });
        }
    }
    let mut first_refusal = None;
    for (phase, line) in &cmds {
        let until = conv.step_deadline();
        let reply = if c.pipelining {
            c.wire.reply(until).await
        } else {
            match c.wire.command(line, until).await {
                Ok(()) => c.wire.reply(until).await,
                Err(e) => Err(e),
            }
        };
        let Some(phase) = *phase else {
            if !reply.is_ok_and(|r| r.is_positive()) {
                return Err(EnvelopeStop::Stale);
            }
            continue;
        };
        // The RCPTs after MAIL add to one envelope step (`add_step`).
        conv.enter(phase);
        match judge_reply(conv, reply) {
            Ok(_) => {}
            Err(Stop::Refused(o)) if c.pipelining => {
                first_refusal.get_or_insert(o);
            }
            Err(s) => return Err(EnvelopeStop::Stop(first_refusal.map_or(s, Stop::Refused))),
        }
    }
    match first_refusal {
        Some(o) => Err(EnvelopeStop::Stop(Stop::Refused(o))),
        None => Ok(()),
    }
}

/// MAIL, RCPT (after RSET when `reset`), DATA and the message on an open session; `None`
/// when RSET showed the connection stale.
async fn transact(
    mut c: Connection,
    cfg: &SmtpSender,
    message: &[u8],
    conv: &mut Conversation,
    reset: bool,
) -> Option<Ended> {
    let stopped = |stop: Stop, c: Connection, before_data: bool| match stop {
        Stop::Refused(outcome) => Ended {
            outcome: *outcome,
            conn: Some(c),
            before_data: false,
        },
        Stop::Broken(outcome) => Ended {
            outcome: *outcome,
            conn: None,
            before_data,
        },
    };
    conv.enter(SmtpPhase::Mail);
    match envelope(&mut c, cfg, conv, reset).await {
        Ok(()) => {}
        Err(EnvelopeStop::Stale) => return None,
        Err(EnvelopeStop::Stop(s)) => return Some(stopped(s, c, true)),
    }
    conv.enter(SmtpPhase::Data);
    if let Err(s) = step(conv, &mut c.wire, "DATA").await {
        return Some(stopped(s, c, false));
    }
    conv.enter(SmtpPhase::Message);
    let until = conv.step_deadline();
    let sent = c.wire.write_all(&wire::data_payload(message), until).await;
    let reply = match sent {
        Ok(()) => c.wire.reply(until).await,
        Err(e) => Err(e),
    };
    let r = match judge_reply(conv, reply) {
        Ok(r) => r,
        Err(s) => return Some(stopped(s, c, false)),
    };
    let accepted = conv.record(Some(r.code), r.text(), Some(crate::clock::now()));
    Some(Ended {
        outcome: SendOutcome::Accepted(accepted),
        conn: Some(c),
        before_data: false,
    })
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

/// Connect, STARTTLS (or implicit TLS), EHLO and AUTH as configured: a session ready for
/// its first transaction.
async fn establish(
    cfg: &SmtpSender,
    prepared: &Prepared,
    conv: &mut Conversation,
) -> Result<Connection, SendOutcome> {
    let tls = match cfg.tls {
        TlsMode::None => None,
        _ => Some(tls_config(cfg, &prepared.ca_pem).map_err(|e| conv.failed(e, None))?),
    };
    let (mut wire, mut caps) = open(cfg, tls.as_ref(), conv).await?;

    if let (TlsMode::Starttls, Some(t)) = (cfg.tls, &tls) {
        conv.enter(SmtpPhase::Starttls);
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
        conv.enter(SmtpPhase::Auth);
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
    Ok(Connection {
        wire,
        auth: conv.auth,
        pipelining: caps.has_extension("PIPELINING"),
    })
}

#[cfg(test)]
mod tests;
