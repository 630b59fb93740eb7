//! `flowtest check-config`: validate the configuration, every scenario, every secret reference
//! and CA file, without sending anything. Secret values are read to prove they exist, never shown.
use std::path::PathBuf;

use crate::exit::Exit;
use crate::runner::prepare;

use super::run::probe_key;
use super::{load_config, unusable};

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
    if let Err(e) = crate::canary::alerts::resolve(&config.canary.webhooks) {
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
