//! One module per subcommand: glue from parsed arguments to core, edges and runner, plus the
//! process-wide diagnostics setup (`tracing` to stderr) that `main` runs once.
use std::io::IsTerminal;
use std::path::PathBuf;

use tracing_subscriber::EnvFilter;

use flowtest::cli::{Cli, Command, LogFormat};
use flowtest::config::Config;
use flowtest::exit::Exit;

pub mod canary;
pub mod check_config;
pub mod diagnose;
pub mod doctor;
pub mod list;
pub mod report;
pub mod run;
pub mod trace;

/// Run the parsed command and return its exit code. Errors are printed here, once, on stderr.
pub fn dispatch(cli: Cli) -> Exit {
    tracing::debug!(command = ?cli.command, "starting");
    match cli.command {
        Command::Trace(args) => trace::run(&cli.config, args),
        Command::Run(mut args) => {
            args.quiet = cli.quiet;
            run::run(&cli.config, args)
        }
        Command::List(args) => list::run(&cli.config, args),
        Command::CheckConfig => check_config::run(&cli.config),
        Command::Diagnose(args) => diagnose::run(&cli.config, args),
        Command::Doctor(args) => doctor::run(&cli.config, args),
        Command::Canary(args) => canary::run(&cli.config, args),
        Command::Report(args) => report::run(&cli.config, args),
    }
}

/// Print `flowtest: <message>` on stderr and return [`Exit::Unusable`].
pub fn unusable(message: impl std::fmt::Display) -> Exit {
    eprintln!("flowtest: {message}");
    Exit::Unusable
}

/// Load the configuration or say in one line why not.
pub fn load_config(explicit: &Option<PathBuf>) -> Result<Config, Exit> {
    let path = flowtest::config::locate(explicit);
    if explicit.is_none() && !path.exists() {
        return Err(unusable(
            "no configuration: pass --config FILE, set FLOWTEST_CONFIG, or create ./flowtest.toml",
        ));
    }
    let config = Config::load(&path).map_err(unusable)?;
    tracing::info!(
        path = %path.display(),
        scenarios = config.scenarios.len(),
        "configuration loaded"
    );
    Ok(config)
}

/// The filter used when RUST_LOG is unset: dependencies at `warn`, flowtest's own crates at the
/// level the flags ask for.
fn default_filter(verbose: u8, quiet: bool) -> String {
    let ours = match (quiet, verbose) {
        (true, _) => return "error".into(),
        (false, 0) => return "warn".into(),
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    format!("warn,flowtest={ours},flowtest_core={ours}")
}

/// Crates whose trace output echoes what they send (async-imap logs each command, LOGIN's password
/// and AUTHENTICATE's token included): off whatever RUST_LOG asks, since secrets never reach logs.
const SECRET_ECHOING_TARGETS: &[&str] = &["async_imap"];

fn silence_secret_echoes(mut filter: EnvFilter) -> EnvFilter {
    for target in SECRET_ECHOING_TARGETS {
        match format!("{target}=off").parse() {
            Ok(directive) => filter = filter.add_directive(directive),
            Err(e) => tracing::error!(%target, error = %e, "bad built-in log directive"),
        }
    }
    filter
}

/// Send `tracing` events to stderr, as text or JSON lines. RUST_LOG, when set, picks what is
/// shown; otherwise `-v`/`-q` do. Call once, before anything logs.
pub fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG={v:?} ignored: {e}")));
    let (filter, problem) = match from_env {
        Some(Ok(f)) => (f, None),
        Some(Err(problem)) => (
            EnvFilter::new(default_filter(verbose, quiet)),
            Some(problem),
        ),
        None => (EnvFilter::new(default_filter(verbose, quiet)), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(silence_secret_echoes(filter));
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    if installed.is_ok() {
        if let Some(problem) = problem {
            tracing::warn!("{problem}");
        }
    }
}

/// A tokio runtime for the async edges.
pub fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| unusable(format!("cannot start the async runtime: {e}")))
}
