//! Thin entry point: parse arguments, run the command, map the outcome to an exit code.
use flowtest::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_with_shorthand();
    flowtest::cmd::dispatch(cli).into()
}
