//! `flowtest check-config` (work in progress: lands with its issue).
use crate::exit::Exit;

pub fn run(_config: &Option<std::path::PathBuf>) -> Exit {
    eprintln!("flowtest: 'check-config' is not implemented yet");
    Exit::Unusable
}
