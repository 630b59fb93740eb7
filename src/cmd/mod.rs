//! One module per subcommand: glue from parsed arguments to core, edges and runner.
use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::config::Config;
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

/// Print `flowtest: <message>` on stderr and return [`Exit::Unusable`].
pub fn unusable(message: impl std::fmt::Display) -> Exit {
    eprintln!("flowtest: {message}");
    Exit::Unusable
}

/// Load the configuration or say in one line why not.
pub fn load_config(explicit: &Option<PathBuf>) -> Result<Config, Exit> {
    let path = crate::config::locate(explicit);
    if explicit.is_none() && !path.exists() {
        return Err(unusable(
            "no configuration: pass --config FILE, set FLOWTEST_CONFIG, or create ./flowtest.toml",
        ));
    }
    Config::load(&path).map_err(unusable)
}

/// A tokio runtime for the async edges.
pub fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| unusable(format!("cannot start the async runtime: {e}")))
}
