//! `flowtest run [NAME...] [--all]` and the `flowtest NAME` shorthand: send probes, report.
use std::io::IsTerminal;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use flowtest::cli::{RunArgs, RunFormat};
use flowtest::config::{parse_duration, probe_key, Config, Scenario};
use flowtest::core::grouping::IncidentGroups;
use flowtest::core::outcome::{severity_of, Severity};
use flowtest::core::report;
use flowtest::core::runbook::Facts;
use flowtest::edge::incidents;
use flowtest::edge::store::Store;
use flowtest::exit::Exit;
use flowtest::runner::{prepare_all, Progress, Runner, Stop, STOP_GRACE};

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
    // Scenarios watching the same mailbox share one IMAP session.
    let prepared = match prepare_all(selected) {
        Ok(p) => p,
        Err(e) => return unusable(e),
    };
    let store = match Store::from_config(&config) {
        Ok(s) => Arc::new(s),
        Err(e) => return unusable(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return e,
    };
    let progress = Arc::new(Progress::default());
    let stop = Stop::default();
    let runner = Arc::new(
        Runner::new(
            Arc::new(config),
            key,
            store,
            Arc::clone(&progress),
            timeout_override,
        )
        .with_stop(stop.clone()),
    );
    let live = !args.quiet && std::io::stderr().is_terminal();
    let results = rt.block_on(async {
        let signals = tokio::spawn(stop_on_signal(stop.clone()));
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
        // Every result is stored before run_all returns it: what is printed below is on record.
        let results = runner.run_all(prepared).await;
        signals.abort();
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
    // A stopped run checked less than it was asked to: never OK, even if what ran delivered.
    let severity = match stop.requested() {
        true => Severity::Unknown,
        false => severity_of(&results),
    };
    Exit::from(severity)
}

/// On SIGINT or SIGTERM, ask the run to stop (in-flight probes get [`STOP_GRACE`], then the
/// results gathered are printed); on a second one, quit at once.
async fn stop_on_signal(stop: Stop) {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            None
        }
    };
    let first = next_signal(&mut term).await;
    eprintln!(
        "\nflowtest: {first}: stopping; probes in flight get {} s, then the results are printed \
         (again to quit at once)",
        STOP_GRACE.as_secs()
    );
    stop.request();
    let again = next_signal(&mut term).await;
    eprintln!("flowtest: {again} again: quitting now; finished results are in the store");
    std::process::exit(Exit::Unusable.code().into());
}

/// The next SIGINT or SIGTERM, by name. A signal that cannot be listened for never comes.
async fn next_signal(term: &mut Option<Signal>) -> &'static str {
    let sigterm = async {
        let got = match term {
            Some(t) => t.recv().await.is_some(),
            None => false,
        };
        if !got {
            std::future::pending::<()>().await;
        }
    };
    let sigint = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = sigint => "SIGINT",
        () = sigterm => "SIGTERM",
    }
}
