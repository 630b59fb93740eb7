//! `flowtest run [NAME...] [--all]` and the `flowtest NAME` shorthand: send probes, report.
use std::io::IsTerminal;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{RunArgs, RunFormat};
use crate::config::{parse_duration, Config, Scenario};
use crate::core::grouping::IncidentGroups;
use crate::core::outcome::severity_of;
use crate::core::probe::ProbeKey;
use crate::core::report;
use crate::core::runbook::Facts;
use crate::edge::incidents;
use crate::edge::store::Store;
use crate::exit::Exit;
use crate::runner::{prepare, Progress, Runner};

use super::{load_config, runtime, unusable};

/// The scenarios named on the command line (or all), in the order given. Unknown names are an
/// error listing the known ones.
pub fn select<'a>(
    config: &'a Config,
    names: &[String],
    all: bool,
) -> Result<Vec<&'a Scenario>, String> {
    if all {
        if !names.is_empty() {
            return Err("give scenario names or --all, not both".into());
        }
        if config.scenarios.is_empty() {
            return Err(format!(
                "no scenarios in {}",
                config.scenarios_dir.display()
            ));
        }
        return Ok(config.scenarios.iter().collect());
    }
    if names.is_empty() {
        return Err("name at least one scenario, or use --all (see `flowtest list`)".into());
    }
    let mut out = Vec::new();
    for n in names {
        match config.scenario(n) {
            Some(s) if !out.iter().any(|o: &&Scenario| o.name == s.name) => out.push(s),
            Some(_) => {}
            None => {
                let known: Vec<&str> = config.scenarios.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "unknown scenario {n:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// The probe key, from the configured environment variable or file.
pub fn probe_key(config: &Config) -> Result<ProbeKey, String> {
    let secret = config
        .probe_key
        .resolve()
        .map_err(|e| format!("probe key: {e}"))?;
    ProbeKey::new(secret.expose().as_bytes())
        .map_err(|e| format!("probe key {}: {e}", config.probe_key.describe()))
}

pub fn run(config: &Option<PathBuf>, args: RunArgs) -> Exit {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let timeout_override: Option<Duration> =
        match args.timeout.as_deref().map(parse_duration).transpose() {
            Ok(t) => t,
            Err(e) => return unusable(format!("--timeout: {e}")),
        };
    let selected = match select(&config, &args.names, args.all) {
        Ok(s) => s,
        Err(e) => return unusable(e),
    };
    let key = match probe_key(&config) {
        Ok(k) => k,
        Err(e) => return unusable(e),
    };
    let mut prepared = Vec::with_capacity(selected.len());
    for s in selected {
        match prepare(s) {
            Ok(p) => prepared.push(p),
            Err(e) => return unusable(e),
        }
    }
    let store = match Store::open(&config.state_dir) {
        Ok(s) => Arc::new(s),
        Err(e) => return unusable(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return e,
    };
    let progress = Arc::new(Progress::default());
    let runner = Arc::new(Runner::new(
        Arc::new(config),
        key,
        store,
        Arc::clone(&progress),
        timeout_override,
    ));
    let live = !args.quiet && std::io::stderr().is_terminal();
    let results = rt.block_on(async {
        let ticker = live.then(|| {
            let progress = Arc::clone(&progress);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let line = progress.line();
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[2K{}",
                        line.chars().take(160).collect::<String>()
                    );
                    let _ = err.flush();
                }
            })
        });
        let results = runner.run_all(prepared).await;
        if let Some(t) = ticker {
            t.abort();
            eprint!("\r\x1b[2K");
        }
        results
    });

    let text = match args.format {
        RunFormat::Human => report::human(&results),
        RunFormat::Json => report::json(&results),
        RunFormat::Junit => report::junit(&results),
        RunFormat::Nagios => report::nagios(&results),
    };
    if let Some(dir) = &args.incident {
        // One draft per cause (finding code and host) among the failed probes.
        let groups = IncidentGroups::from_results(&results).into_groups();
        // Drafts gather several scenarios: placeholders about one probe's recipient stay neutral.
        let facts = Facts::default();
        match incidents::write_drafts(dir, &groups, "flowtest run", &runner.config.runbook, &facts)
        {
            Ok(paths) => {
                for p in paths {
                    eprintln!("flowtest: incident draft written: {}", p.display());
                }
            }
            Err(e) => eprintln!(
                "flowtest: cannot write incident drafts into {}: {e}",
                dir.display()
            ),
        }
    }
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                // The results are stored; still show them rather than lose them.
                print!("{text}");
                return unusable(format!("cannot write {}: {e}", path.display()));
            }
        }
        None => print!("{text}"),
    }
    Exit::from(severity_of(&results))
}
