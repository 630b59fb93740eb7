//! `flowtest diagnose`: glue from the command line to the log analysis. Resolves the arguments
//! into `core::diagnose::Options` (before any input is read), opens the sources
//! (`edge::loginput`), streams the core's report to stdout, writes incident drafts
//! (`edge::incidents`) and maps the outcome to an exit code.

use std::io::{self, Write};
use std::path::PathBuf;

use chrono::Datelike;

use flowtest::cli::{DiagnoseArgs, TraceFormat};
use flowtest::clock;
use flowtest::core::diagnose::{
    analyze_with, parse_time, AnalyzeError, Format, Input, Options, Summary, Window, WindowError,
};
use flowtest::core::fusion::Limits;
use flowtest::core::logs::LogZone;
use flowtest::core::runbook::{Facts, Runbook};
use flowtest::edge::{incidents, loginput};
use flowtest::exit::Exit;

use super::unusable;

/// Output buffer: the report streams, but not line by line; written by the thread that renders
/// it in a full diagnosis.
const OUT_BUFFER: usize = 1 << 16;

pub fn run(config: &Option<PathBuf>, args: DiagnoseArgs) -> Exit {
    let runbook = match runbook(config) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => return unusable(e),
    };
    let inputs = match loginput::open_all(&args.sources, &opts) {
        Ok(i) => i,
        Err(e) => return unusable(e),
    };
    let summary = match report(inputs, &opts, &runbook) {
        Ok(Some(s)) => s,
        Ok(None) => return Exit::Ok,
        Err(e) => return unusable(e),
    };
    let not_logs = loginput::not_mail_logs(&summary.sources);
    if !not_logs.is_empty() {
        return unusable(not_logs.join("; "));
    }
    if let Some(dir) = &args.incident {
        let facts = Facts {
            recipient: opts.rcpt.clone(),
        };
        let source = "flowtest diagnose";
        match incidents::write_drafts(dir, &summary.incidents, source, &runbook, &facts) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("flowtest: wrote draft incident {}", p.display());
                }
            }
            Err(e) => {
                return unusable(format!(
                    "cannot write incident drafts into {}: {e}",
                    dir.display()
                ))
            }
        }
    }
    Exit::from(summary.severity())
}

/// The configured runbook when a configuration is named or `./flowtest.toml` exists, else the
/// built-in one (diagnose needs no configuration).
fn runbook(config: &Option<PathBuf>) -> Result<Runbook, Exit> {
    let path = flowtest::config::locate(config);
    if config.is_none() && !path.exists() {
        return Ok(Runbook::builtin().clone());
    }
    super::load_config(config).map(|c| c.runbook)
}

/// The analysis options, or the one-line reason the arguments are unusable.
fn options(args: &DiagnoseArgs) -> Result<Options, String> {
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| format!("--{flag}: {e}"))
    };
    let window = Window::new(time("since", &args.since)?, time("until", &args.until)?)
        .map_err(|WindowError::SinceAfterUntil| "--since is after --until".to_owned())?;
    let tz = LogZone::parse(&args.tz).map_err(|e| format!("--tz: {e}"))?;
    if let Some(y) = args.year.filter(|y| !(1970..=9999).contains(y)) {
        return Err(format!("--year {y} is out of range"));
    }
    Ok(Options {
        message_id: args.message_id.clone(),
        rcpt: args.rcpt.clone(),
        since: window.since,
        until: window.until,
        year: args.year,
        fallback_year: clock::now().year(),
        tz,
        format: match args.format {
            TraceFormat::Human => Format::Human,
            TraceFormat::Json => Format::Json,
        },
        limits: Limits::default(),
        prefilter: true,
    })
}

/// Standard output without its line buffering: the report is written in pieces of many lines,
/// and stdout's own writer would look for the last newline in each, write up to it and hold the
/// rest back (a copy and a second write per piece).
fn unbuffered_stdout() -> Box<dyn Write + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(io::stdout())
}

/// Stream the report to stdout. `None` when stdout was closed early (`| head`): not an error.
fn report(
    inputs: Vec<Input>,
    opts: &Options,
    runbook: &Runbook,
) -> Result<Option<Summary>, AnalyzeError> {
    // Not locked for the whole run: the report is written from another thread.
    let mut out = io::BufWriter::with_capacity(OUT_BUFFER, unbuffered_stdout());
    match analyze_with(inputs, opts, runbook, &mut out) {
        Ok(s) => Ok(Some(s)),
        Err(AnalyzeError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(None),
        Err(e @ AnalyzeError::Read { .. }) => {
            // What was reported before the failure is shown ahead of the error.
            let _ = out.flush();
            Err(e)
        }
        Err(e) => Err(e),
    }
}
