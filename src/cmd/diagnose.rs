//! `flowtest diagnose` (work in progress: lands with its issue).
use crate::exit::Exit;

pub fn run(_config: &Option<std::path::PathBuf>, _args: crate::cli::DiagnoseArgs) -> Exit {
    eprintln!("flowtest: 'diagnose' is not implemented yet");
    Exit::Unusable
}
