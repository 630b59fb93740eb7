//! `flowtest trace [FILE|-]`: owns reading the message (file or stdin, size-capped), reading the
//! clock once, and printing the trace as a table or JSON. The tracing itself is
//! `core::trace`. `--scenario NAME` labels hops with that scenario's expected stages.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flowtest::cli::{TraceArgs, TraceFormat};
use flowtest::core::trace::{render_human, trace_lazy, trace_message, TraceOptions};
use flowtest::exit::Exit;

/// Largest message read. A message with attachments is rarely above 50 MiB; anything larger is
/// refused rather than read into memory without bound.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Terminal width for the table: `$COLUMNS` when it is a sane number, else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| (20..=1000).contains(w))
        .unwrap_or(80)
}

/// Read at most `MAX_INPUT_BYTES` (+1 to detect overflow) from `r`.
fn read_capped(r: impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    r.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{what} is larger than {} MiB; pass the headers only",
            MAX_INPUT_BYTES / (1024 * 1024)
        ));
    }
    Ok(buf)
}

fn read_input(file: Option<&Path>) -> Result<(Vec<u8>, String), String> {
    match file {
        None => Ok((
            read_capped(std::io::stdin().lock(), "stdin")?,
            "stdin".into(),
        )),
        Some(p) if p.as_os_str() == "-" => Ok((
            read_capped(std::io::stdin().lock(), "stdin")?,
            "stdin".into(),
        )),
        Some(p) => {
            let what = p.display().to_string();
            let f = std::fs::File::open(p).map_err(|e| format!("cannot open {what}: {e}"))?;
            Ok((read_capped(f, &what)?, what))
        }
    }
}

pub fn run(config: &Option<PathBuf>, args: TraceArgs) -> Exit {
    // The expected path comes from a scenario only when one is named: plain `trace` needs no
    // configuration at all.
    let stages = match &args.scenario {
        None => Vec::new(),
        Some(name) => {
            let cfg = match super::load_config(config) {
                Ok(c) => c,
                Err(e) => return e,
            };
            match cfg.scenario(name) {
                Some(s) => s.path.clone(),
                None => return super::unusable(format!("unknown scenario {name:?}")),
            }
        }
    };
    let (raw, what) = match read_input(args.file.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flowtest: {e}");
            return Exit::Unusable;
        }
    };
    let opts = TraceOptions {
        now: flowtest::clock::now(),
        fetched_at: None,
        stages: &stages,
    };
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match args.format {
        // Streamed: the trace holds a few bytes per hop and rebuilds each hop as it is written,
        // so peak memory stays near the input's size.
        TraceFormat::Json => trace_lazy(&raw, &opts).map(|trace| {
            serde_json::to_writer_pretty(&mut stdout, &trace)
                .map_err(std::io::Error::from)
                .and_then(|()| stdout.write_all(b"\n"))
        }),
        TraceFormat::Human => trace_message(&raw, &opts)
            .map(|trace| stdout.write_all(render_human(&trace, terminal_width()).as_bytes())),
    };
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            eprintln!("flowtest: {what}: {e}");
            return Exit::Unusable;
        }
    };
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Ok,
        // `flowtest trace msg | head`: the reader left; the trace itself succeeded.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("flowtest: cannot write the trace: {e}");
            Exit::Unusable
        }
    }
}
