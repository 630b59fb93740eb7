//! `flowtest-lab-sendgrid`: the lab's stand-in for SendGrid's v3 API, so the `sendgrid` sender's
//! real code path is what the lab and the tests exercise. It checks the Bearer key against a key
//! file, validates the request the way SendGrid does (answering in SendGrid's error shape),
//! answers 202 with `X-Message-Id`, and then relays the message by SMTP (flowtest's own client)
//! to the lab MX with Received headers in SendGrid's shapes. `--behaviour` switches it to the
//! failures the tests need. Not here: anything of flowtest's probe logic.
//!
//! Prints `listening on ADDR` on stdout once it accepts connections (tests read the port).
mod api;
mod relay;
#[path = "../lab-common/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How the stand-in answers `POST /v3/mail/send` and `GET /v3/scopes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Behaviour {
    /// Like SendGrid: validate, 202 + X-Message-Id, relay.
    Normal,
    /// 401 for every request, whatever the key.
    Unauthorized,
    /// 429 with `Retry-After: 1` for the first request, then normal.
    RateLimitOnce,
    /// 500 for every request.
    ServerError,
    /// Normal, but the answer comes only after `--delay`.
    Slow,
    /// 400 with a field-by-field error list for every request.
    BadRequest,
    /// A valid key without the Mail Send scope: `/v3/scopes` lists others, mail/send is 403.
    NoMailSendScope,
    /// 403 for every request, whatever the key.
    Forbidden,
}

#[derive(Debug, Parser)]
#[command(
    name = "flowtest-lab-sendgrid",
    about = "The lab's SendGrid v3 API stand-in"
)]
pub struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8025")]
    pub listen: SocketAddr,
    /// The one API key accepted (a file holding it).
    #[arg(long)]
    pub key_file: PathBuf,
    #[arg(long, value_enum, default_value = "normal")]
    pub behaviour: Behaviour,
    /// How long `--behaviour slow` waits before answering.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub delay: Duration,
    /// The MX accepted mail is relayed to (`host:port`); without it mail is only logged.
    #[arg(long)]
    pub relay_to: Option<String>,
    /// A CA file to trust for the relay's STARTTLS.
    #[arg(long)]
    pub relay_ca: Option<PathBuf>,
    /// The name this stand-in's relay uses in EHLO.
    #[arg(long, default_value = "o1.sendgrid.test")]
    pub helo: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    serve::init_tracing();
    serve::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), String> {
    let key = std::fs::read_to_string(&args.key_file)
        .map_err(|e| format!("cannot read {}: {e}", args.key_file.display()))?
        .trim()
        .to_string();
    if key.is_empty() {
        return Err(format!("{} is empty", args.key_file.display()));
    }
    let relay = match &args.relay_to {
        Some(to) => Some(relay::Relay::new(to, args.relay_ca.as_deref(), &args.helo)?),
        None => None,
    };
    let state = Arc::new(api::State::new(key, args.behaviour, args.delay, relay));
    tracing::info!(behaviour = ?args.behaviour, "SendGrid API stand-in starting");
    serve::serve(args.listen, api::router(state), "SendGrid API stand-in").await
}
