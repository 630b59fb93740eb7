//! `flowtest doctor [SCENARIO...]`: check DNS, reachability, TLS, IMAP and the hops behind them
//! for the named scenarios (or all), print the checklist, exit as `run` does. Sends no mail.
use std::path::PathBuf;

use flowtest::cli::{DoctorArgs, DoctorFormat};
use flowtest::core::doctor::{render, Summary};
use flowtest::edge::doctor::examine;
use flowtest::exit::Exit;

use super::run::select;
use super::{load_config, runtime, unusable};

pub fn run(config: &Option<PathBuf>, args: DoctorArgs) -> Exit {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let all = args.names.is_empty();
    let selected = match select(&config, &args.names, all) {
        Ok(s) => s,
        Err(e) => return unusable(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return e,
    };
    let checks = rt.block_on(examine(&config, &selected));
    let text = match args.format {
        DoctorFormat::Human => render::human(&checks),
        DoctorFormat::Json => render::json(&checks),
        DoctorFormat::Nagios => render::nagios(&checks),
    };
    print!("{text}");
    Exit::from(Summary::of(&checks).severity())
}
