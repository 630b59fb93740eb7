//! `flowtest-lab-oauth`: the lab's stand-in for an OAuth 2 provider's token introspection
//! endpoint (RFC 7662), so Dovecot's `oauth2` passdb, and through it XOAUTH2 and OAUTHBEARER on
//! the lab's IMAP and SMTP submission, run against a real HTTP service. It knows the tokens the
//! lab issued (a file of `TOKEN USER` lines, read on every request), answers
//! `{"active":true,"username":...,"scope":...}` for them and `{"active":false}` for anything else,
//! and treats every token as expired while the `--expired-flag` file exists (the lab's
//! `token-expired` fault creates it). Not here: issuing or refreshing tokens, anything of
//! flowtest's probe logic.
//!
//! Prints `listening on ADDR` on stdout once it accepts connections (tests read the port).
mod introspect;
#[path = "../lab-common/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "flowtest-lab-oauth",
    about = "The lab's OAuth 2 token introspection stand-in"
)]
pub struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8026")]
    pub listen: SocketAddr,
    /// The tokens issued: one `TOKEN USER` per line (`#` starts a comment).
    #[arg(long)]
    pub tokens: PathBuf,
    /// While this file exists, every token is reported inactive (expired).
    #[arg(long)]
    pub expired_flag: Option<PathBuf>,
    /// The scope granted tokens carry (Gmail's).
    #[arg(long, default_value = "https://mail.google.com/")]
    pub scope: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    serve::init_tracing();
    serve::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), String> {
    // Read once up front so a missing or malformed file stops the stand-in at start.
    let issued = introspect::read_tokens(&args.tokens)?;
    tracing::info!(tokens = issued.len(), "tokens loaded");
    let state = Arc::new(introspect::State {
        tokens: args.tokens,
        expired_flag: args.expired_flag,
        scope: args.scope,
    });
    serve::serve(
        args.listen,
        introspect::router(state),
        "OAuth 2 introspection stand-in",
    )
    .await
}
