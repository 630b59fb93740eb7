//! `flowtest report`: the SLA report over the stored results. Resolves the window (now from
//! `clock`), streams the history reader's rows through the core aggregation, renders the asked
//! format and picks the exit code. Not here: the figures (core `sla`) or reading the store
//! (`edge::store`'s history scan, the same for SQLite and PostgreSQL).
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use flowtest::cli::{ReportArgs, ReportFormat};
use flowtest::config::parse_duration_up_to;
use flowtest::config::store::StoreConfig;
use flowtest::config::Config;
use flowtest::core::history::HistoryFilter;
use flowtest::core::logs::LogZone;
use flowtest::core::sla::aggregate::{Aggregator, Options, MAX_INCIDENTS};
use flowtest::core::sla::model::SlaReport;
use flowtest::core::sla::{html, render_human, render_markdown, window};
use flowtest::edge::store::Store;
use flowtest::exit::Exit;

use super::{load_config, unusable};

/// The longest `--since` (ten years): anything longer is a typo.
const MAX_SINCE: Duration = Duration::from_secs(10 * 366 * 86_400);

/// The aggregation's options from the arguments, or what is wrong with them.
fn options(args: &ReportArgs, now: chrono::DateTime<chrono::Utc>) -> Result<Options, String> {
    let zone = LogZone::parse(&args.tz).map_err(|e| format!("--tz: {e}"))?;
    if !(args.slo_target > 0.0 && args.slo_target < 100.0) {
        return Err(format!(
            "--slo-target {}: give a percentage above 0 and below 100 (e.g. 99.9)",
            args.slo_target
        ));
    }
    let since = args
        .since
        .as_deref()
        .map(|s| parse_duration_up_to(s, MAX_SINCE).map_err(|e| format!("--since: {e}")))
        .transpose()?
        .map(|d| chrono::Duration::from_std(d).map_err(|e| format!("--since: {e}")))
        .transpose()?;
    let (from, to) = window::resolve(since, args.from.as_deref(), args.to.as_deref(), now, &zone)?;
    Ok(Options {
        from,
        to,
        slo_target_percent: args.slo_target,
        zone,
        max_incidents: MAX_INCIDENTS,
    })
}

fn render(report: &SlaReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Human => render_human::render(report),
        ReportFormat::Markdown => render_markdown::render(report),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
            s.push('\n');
            s
        }
        ReportFormat::Html => html::render(report),
    }
}

pub fn run(config: &Option<PathBuf>, args: ReportArgs) -> Exit {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let opts = match options(&args, flowtest::clock::now()) {
        Ok(o) => o,
        Err(e) => return unusable(e),
    };
    let filter = HistoryFilter {
        from: opts.from,
        to: opts.to,
        scenarios: args.scenarios.clone(),
        locations: args.locations.clone(),
    };
    let store = match open_history(&config) {
        Ok(s) => s,
        Err(e) => return unusable(e),
    };
    let mut agg = Aggregator::new(opts);
    let mut refused = None;
    let scanned = store.scan(&filter, &mut |row| match agg.push(&row) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            refused = Some(e);
            ControlFlow::Break(())
        }
    });
    let summary = match (scanned, refused) {
        (Err(e), _) => return unusable(e),
        (Ok(_), Some(e)) => return unusable(e),
        (Ok(s), None) => s,
    };
    let report = agg.finish();
    tracing::info!(
        rows = summary.rows,
        skipped = summary.skipped,
        "history read from {}",
        store.describe()
    );
    for warning in &summary.warnings {
        tracing::warn!("{warning}");
    }
    for name in &args.scenarios {
        if !report.scenarios.iter().any(|s| &s.scenario == name) {
            tracing::warn!("no stored results for scenario {name:?} in the window");
        }
    }
    let text = render(&report, args.format);
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                return unusable(format!("cannot write {}: {e}", path.display()));
            }
        }
        None => print!("{text}"),
    }
    let missed = report.scenarios.iter().any(|s| {
        s.availability_percent
            .is_some_and(|a| a < report.slo_target_percent)
    });
    if args.fail_under && missed {
        Exit::Degraded
    } else {
        Exit::Ok
    }
}

/// The configured store, for reading. A report never creates an SQLite store: a missing file
/// means nothing was recorded there, which is said rather than reported as an empty history.
fn open_history(config: &Config) -> Result<Store, String> {
    if let StoreConfig::Sqlite = config.store {
        let path = config.state_dir.join("flowtest.db");
        if !path.is_file() {
            return Err(format!(
                "no result store at {}: no probe has been stored yet (flowtest run and canary write it)",
                path.display()
            ));
        }
    }
    Store::from_config(config).map_err(|e| e.to_string())
}
