//! `flowtest check-config`: validate the configuration, every scenario, every secret reference
//! and CA file, and that the state directory is writable, without sending anything. Secret
//! values are read to prove they exist, never shown.
use std::path::{Path, PathBuf};

use flowtest::exit::Exit;
use flowtest::runner::prepare;

use super::{load_config, unusable};
use flowtest::config::probe_key;

pub fn run(config: &Option<PathBuf>) -> Exit {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut problems = Vec::new();
    if let Err(e) = probe_key(&config) {
        problems.push(e);
    }
    for s in &config.scenarios {
        if let Err(e) = prepare(s) {
            problems.push(e);
        }
    }
    match check_state_dir(&config.state_dir) {
        Ok(()) => println!("state_dir {}: writable", config.state_dir.display()),
        Err(e) => problems.push(format!("state_dir {}: {e}", config.state_dir.display())),
    }
    if let flowtest::config::store::StoreConfig::Postgres(pg) = &config.store {
        if let Some(Err(e)) = pg.password.as_ref().map(|p| p.resolve()) {
            problems.push(format!("store {}: password: {e}", pg.url));
        }
    }
    if let Err(e) = flowtest::canary::alerts::resolve(&config.canary.webhooks) {
        problems.push(format!("canary: {e}"));
    }
    if problems.is_empty() {
        println!(
            "{}: ok ({} scenario(s): {})",
            config.path.display(),
            config.scenarios.len(),
            config
                .scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Exit::Ok
    } else {
        for p in &problems {
            eprintln!("flowtest: {p}");
        }
        unusable(format!(
            "{} problem(s) in {}",
            problems.len(),
            config.path.display()
        ))
    }
}

/// Create the state directory when missing, then prove it takes a file: write a probe file and
/// remove it. A store that cannot be written would only fail after probes were sent.
fn check_state_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create it: {e}"))?;
    let probe = dir.join(format!(".flowtest-write-check-{}", std::process::id()));
    let written = std::fs::write(&probe, b"flowtest write check\n");
    let removed = std::fs::remove_file(&probe);
    written.map_err(|e| format!("not writable: {e}"))?;
    removed.map_err(|e| {
        format!(
            "cannot remove the write-check file {}: {e}",
            probe.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_created_and_probed() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("a/b");
        check_state_dir(&state).unwrap();
        assert!(state.is_dir());
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
        let file = d.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = check_state_dir(&file.join("sub")).unwrap_err();
        assert!(e.starts_with("cannot create it"), "{e}");
    }
}
