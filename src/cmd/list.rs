//! `flowtest list` (work in progress: lands with its issue).
use crate::exit::Exit;

pub fn run(_config: &Option<std::path::PathBuf>, _args: crate::cli::ListArgs) -> Exit {
    eprintln!("flowtest: 'list' is not implemented yet");
    Exit::Unusable
}
