//! `flowtest trace` (work in progress: lands with its issue).
use crate::exit::Exit;

pub fn run(_config: &Option<std::path::PathBuf>, _args: crate::cli::TraceArgs) -> Exit {
    eprintln!("flowtest: 'trace' is not implemented yet");
    Exit::Unusable
}
