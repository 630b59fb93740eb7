//! Thin entry point: parse arguments, set up diagnostics once, run the command, map the outcome
//! to an exit code.
use flowtest::cli::Cli;

fn main() -> std::process::ExitCode {
    // The webhook client (reqwest without a bundled provider) needs the process-wide rustls
    // provider; installing it twice is harmless (the second call is refused).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse_with_shorthand();
    flowtest::cmd::init_logging(cli.verbose, cli.quiet, cli.log_format);
    flowtest::cmd::dispatch(cli).into()
}
