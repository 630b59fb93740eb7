//! Thin entry point: parse arguments, set up diagnostics once, run the command, map the outcome
//! to an exit code.
use std::io::IsTerminal;

use clap::Parser;
use flowtest::cli::Cli;

mod cmd;

/// mimalloc, not glibc's malloc: a full `diagnose` allocates and frees records and chains on
/// two threads, and glibc's arenas and consolidation took about a third of its CPU (measured
/// when it ran on three).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // The webhook client (reqwest without a bundled provider) needs the process-wide rustls
    // provider; installing it twice is harmless (the second call is refused).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = Cli::parse_from(flowtest::cli::with_shorthand(args.clone()));
    let format = flowtest::cli::log_format_for(&cli, &args, std::io::stderr().is_terminal());
    cmd::init_logging(cli.verbose, cli.quiet, format);
    cmd::dispatch(cli).into()
}
