//! What the lab's HTTP stand-ins share: their stderr log set-up, and binding, announcing and
//! serving an axum router. Included by each stand-in with `#[path]`; not a binary of its own.
//! Not here: any stand-in's behaviour.
use std::net::SocketAddr;

/// Log to stderr, at `info` unless RUST_LOG says otherwise.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// A stand-in's end: success, or its error logged and a failure exit status.
pub fn exit(r: Result<(), String>) -> std::process::ExitCode {
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Listen on `addr`, print `listening on ADDR` on stdout once connections are accepted (tests
/// read the port from it; port 0 picks a free one), then serve `router` until it fails.
pub async fn serve(addr: SocketAddr, router: axum::Router, what: &str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {bound}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tracing::info!(addr = %bound, "{what} up");
    axum::serve(listener, router)
        .await
        .map_err(|e| format!("server failed: {e}"))
}
