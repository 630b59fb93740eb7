//! `flowtest run` (work in progress: lands with its issue).
use crate::exit::Exit;

pub fn run(_config: &Option<std::path::PathBuf>, _args: crate::cli::RunArgs) -> Exit {
    eprintln!("flowtest: 'run' is not implemented yet");
    Exit::Unusable
}
