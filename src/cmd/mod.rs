//! One module per subcommand: glue from parsed arguments to core, edges and runner.
use crate::cli::{Cli, Command};
use crate::exit::Exit;

pub mod check_config;
pub mod diagnose;
pub mod list;
pub mod run;
pub mod trace;

/// Run the parsed command and return its exit code. Errors are printed here, once, on stderr.
pub fn dispatch(cli: Cli) -> Exit {
    match cli.command {
        Command::Trace(args) => trace::run(&cli.config, args),
        Command::Run(args) => run::run(&cli.config, args),
        Command::List(args) => list::run(&cli.config, args),
        Command::CheckConfig => check_config::run(&cli.config),
        Command::Diagnose(args) => diagnose::run(&cli.config, args),
    }
}
