//! Thin entry point: parse arguments, set up diagnostics once, run the command, map the outcome
//! to an exit code.
use flowtest::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_with_shorthand();
    flowtest::cmd::init_logging(cli.verbose, cli.quiet, cli.log_format);
    flowtest::cmd::dispatch(cli).into()
}
