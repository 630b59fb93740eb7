//! Command-line surface: every subcommand and flag, parsed by clap. No I/O here.
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "flowtest",
    version,
    about = "End-to-end synthetic mail-flow tester",
    long_about = "Sends tagged probe messages through real mail paths, waits for them at their IMAP \
                  mailbox, rebuilds the path from Received headers and server logs, and reports \
                  end-to-end and per-hop latency. `flowtest NAME` is short for `flowtest run NAME`."
)]
pub struct Cli {
    /// Configuration file (else $FLOWTEST_CONFIG, else ./flowtest.toml).
    #[arg(long, global = true, env = "FLOWTEST_CONFIG")]
    pub config: Option<PathBuf>,

    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace. RUST_LOG, when set, decides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Errors only on stderr; for `run`, also no live progress line.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Format of diagnostics on stderr: text, or JSON lines (one object per event) for daemons.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild a message's path from its Received headers (file or stdin).
    Trace(TraceArgs),
    /// Send probes along scenarios and report delivery and per-stage latency.
    Run(RunArgs),
    /// List the configured scenarios.
    List(ListArgs),
    /// Validate the configuration and every scenario without sending anything.
    CheckConfig,
    /// Reconstruct messages' fates from server log files and name the failures.
    Diagnose(DiagnoseArgs),
    /// Check DNS, reachability, TLS, IMAP and the hops behind them, without sending mail.
    Doctor(DoctorArgs),
    /// Probe every scenario on its schedule; serve /metrics, /healthz and a status page.
    Canary(CanaryArgs),
    /// SLA report over the stored results: availability, SLO, latency percentiles, error
    /// budget, per stage, per day, worst incidents.
    Report(ReportArgs),
}

/// How diagnostics (`tracing` events) are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Message file (RFC 5322; headers alone suffice). `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Output: a table of the hops, or JSON (the path, each hop's delay and the warnings).
    #[arg(long, value_enum, default_value_t = TraceFormat::Human)]
    pub format: TraceFormat,
    /// Scenario whose expected path labels the hops with stage names.
    #[arg(long)]
    pub scenario: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Human,
    Json,
    Junit,
    Nagios,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario names to run.
    pub names: Vec<String>,
    /// Run every configured scenario (concurrently, bounded).
    #[arg(long)]
    pub all: bool,
    /// Output on stdout: text, JSON, a JUnit XML test report, or one Nagios plugin line.
    #[arg(long, value_enum, default_value_t = RunFormat::Human)]
    pub format: RunFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Override every scenario's timeout (e.g. `30s`, `2m`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Write a draft incident record for each failure into DIR.
    #[arg(long)]
    pub incident: Option<PathBuf>,
    /// No live progress line: set from the global `--quiet`.
    #[arg(skip)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output: a line per scenario, or JSON.
    #[arg(long, value_enum, default_value_t = TraceFormat::Human)]
    pub format: TraceFormat,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Log sources: `ROLE=PATH` (ROLE is the host role, e.g. ec2, dell) or a bare path.
    #[arg(required = true)]
    pub sources: Vec<String>,
    /// Only the message with this Message-ID (angle brackets optional); prints its log lines.
    #[arg(long)]
    pub message_id: Option<String>,
    /// Only messages to this recipient address (any case); prints their log lines.
    #[arg(long)]
    pub rcpt: Option<String>,
    /// Start of the window (RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// End of the window (same forms as `--since`).
    #[arg(long)]
    pub until: Option<String>,
    /// Year for log formats that have none (classic syslog); default: inferred from file times.
    #[arg(long)]
    pub year: Option<i32>,
    /// Time zone of timestamps that carry none (classic syslog, Dovecot's log): UTC, +02:00, or
    /// a zone name such as Europe/Berlin (its daylight-saving changes followed).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Output: failures in full and a summary, or JSON (every message, its hops and findings).
    #[arg(long, value_enum, default_value_t = TraceFormat::Human)]
    pub format: TraceFormat,
    /// Write a draft incident record for each failure into DIR.
    #[arg(long)]
    pub incident: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    Human,
    Json,
    Nagios,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Scenarios to check (default: every configured scenario).
    pub names: Vec<String>,
    /// Output: a checklist by scenario (the fix under each failed check), JSON, or one Nagios line.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Human)]
    pub format: DoctorFormat,
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Address for /metrics, /healthz and the status page (overrides `[canary] listen`).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Markdown,
    Json,
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window: this long back from now (e.g. `30d`, `12h`, `2w`). Default: 30 days.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Start of the window: YYYY-MM-DD (midnight in --tz), `YYYY-MM-DD HH:MM[:SS]` (in --tz) or
    /// RFC 3339. Without --to, the window ends now.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the window, exclusive: as --from, and a bare date includes that whole day.
    /// Without --from, the window starts 30 days earlier.
    #[arg(long)]
    pub to: Option<String>,
    /// Only these scenarios (repeatable; default: every scenario with stored results).
    #[arg(long = "scenario", value_name = "NAME", num_args = 1..)]
    pub scenarios: Vec<String>,
    /// Only these locations (repeatable).
    #[arg(long = "location", value_name = "L", num_args = 1..)]
    pub locations: Vec<String>,
    /// Availability objective in percent, what the error budget is measured against.
    #[arg(long, default_value_t = 99.9)]
    pub slo_target: f64,
    /// Time zone days are cut in and times shown in: UTC, a fixed offset such as +02:00, or a
    /// zone name such as Europe/Berlin (its daylight-saving changes followed).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Output: text, Markdown, JSON, or a self-contained HTML page.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Exit 1 when a scenario's availability is under --slo-target (its error budget overspent).
    #[arg(long)]
    pub fail_under: bool,
}

/// Every subcommand's name: `flowtest NAME` is `flowtest run NAME` for any other NAME, so no
/// scenario may take one of these (config validation refuses it).
pub(crate) const SUBCOMMANDS: &[&str] = &[
    "trace",
    "run",
    "list",
    "check-config",
    "diagnose",
    "doctor",
    "canary",
    "report",
    "help",
];

/// Global flags whose value is the next argument.
const GLOBAL_WITH_VALUE: &[&str] = &["--config", "--log-format"];

/// A global flag written as one argument: `--config=X`, `--log-format=X`, `--verbose`,
/// `--quiet`, or a run of short `-v`/`-q` flags such as `-vv`.
fn is_global_flag(a: &str) -> bool {
    a.starts_with("--config=")
        || a.starts_with("--log-format=")
        || a == "--verbose"
        || a == "--quiet"
        || a.strip_prefix('-')
            .is_some_and(|f| !f.is_empty() && f.chars().all(|c| c == 'v' || c == 'q'))
}

impl Cli {
    /// Parse `std::env::args`, turning `flowtest NAME ...` into `flowtest run NAME ...`.
    pub fn parse_with_shorthand() -> Self {
        Self::parse_from(with_shorthand(std::env::args_os().collect()))
    }
}

/// The diagnostics format: as `--log-format` says when given; otherwise the canary writes JSON
/// lines whenever stderr is not a terminal (a daemon's log goes to a journal or a collector),
/// and every other command writes text.
pub fn log_format_for(cli: &Cli, args: &[std::ffi::OsString], stderr_terminal: bool) -> LogFormat {
    let given = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == "--log-format" || a.starts_with("--log-format=")
    });
    match cli.command {
        Command::Canary(_) if !given && !stderr_terminal => LogFormat::Json,
        _ => cli.log_format,
    }
}

/// Insert `run` before the first positional argument when it is not a known subcommand.
pub fn with_shorthand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if GLOBAL_WITH_VALUE.contains(&a.as_ref()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            // Global flags (--config=X, -v, -q, --log-format=json): keep scanning past them;
            // anything else (--help, --version, a typo) is for clap to judge.
            if is_global_flag(&a) {
                i += 1;
                continue;
            }
            return args;
        }
        if !SUBCOMMANDS.contains(&a.as_ref()) {
            args.insert(i, "run".into());
        }
        return args;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<std::ffi::OsString> {
        s.iter().map(Into::into).collect()
    }

    #[test]
    fn shorthand_inserts_run() {
        assert_eq!(
            with_shorthand(v(&["flowtest", "gmail-inbound"])),
            v(&["flowtest", "run", "gmail-inbound"])
        );
        assert_eq!(
            with_shorthand(v(&[
                "flowtest",
                "--config",
                "x.toml",
                "lab-inbound",
                "--format",
                "json"
            ])),
            v(&[
                "flowtest",
                "--config",
                "x.toml",
                "run",
                "lab-inbound",
                "--format",
                "json"
            ])
        );
    }

    #[test]
    fn shorthand_skips_global_flags() {
        assert_eq!(
            with_shorthand(v(&[
                "flowtest",
                "-vv",
                "--log-format",
                "json",
                "lab-inbound"
            ])),
            v(&[
                "flowtest",
                "-vv",
                "--log-format",
                "json",
                "run",
                "lab-inbound"
            ])
        );
        assert_eq!(
            with_shorthand(v(&["flowtest", "-q", "--log-format=text", "lab-inbound"])),
            v(&["flowtest", "-q", "--log-format=text", "run", "lab-inbound"])
        );
        let cli = Cli::parse_from(with_shorthand(v(&[
            "flowtest", "-vv", "x", "--format", "json",
        ])));
        assert_eq!(cli.verbose, 2);
        assert!(matches!(cli.command, Command::Run(_)));
        let cli = Cli::parse_from(v(&["flowtest", "run", "x", "-q"]));
        assert!(cli.quiet);
        assert!(Cli::try_parse_from(v(&["flowtest", "-v", "-q", "list"])).is_err());
    }

    #[test]
    fn shorthand_leaves_subcommands_and_flags() {
        for args in [
            v(&["flowtest", "trace", "-"]),
            v(&["flowtest", "--help"]),
            v(&["flowtest", "check-config"]),
            v(&["flowtest", "doctor", "lab-inbound"]),
            v(&["flowtest"]),
        ] {
            assert_eq!(with_shorthand(args.clone()), args);
        }
    }

    #[test]
    fn the_canary_logs_json_lines_off_a_terminal_unless_told_otherwise() {
        let format = |args: &[&str], terminal: bool| {
            let args = v(args);
            log_format_for(
                &Cli::parse_from(with_shorthand(args.clone())),
                &args,
                terminal,
            )
        };
        assert_eq!(format(&["flowtest", "canary"], false), LogFormat::Json);
        assert_eq!(format(&["flowtest", "canary"], true), LogFormat::Text);
        assert_eq!(
            format(&["flowtest", "--log-format", "text", "canary"], false),
            LogFormat::Text
        );
        assert_eq!(
            format(&["flowtest", "--log-format=json", "canary"], true),
            LogFormat::Json
        );
        assert_eq!(format(&["flowtest", "list"], false), LogFormat::Text);
    }

    #[test]
    fn report_takes_lists_and_one_kind_of_window() {
        let args = v(&[
            "flowtest",
            "report",
            "--scenario",
            "a",
            "b",
            "--location",
            "x",
            "--since",
            "7d",
            "--format",
            "markdown",
        ]);
        assert_eq!(with_shorthand(args.clone()), args, "report is a subcommand");
        let Command::Report(r) = Cli::parse_from(args).command else {
            panic!("not the report command");
        };
        assert_eq!(r.scenarios, ["a", "b"]);
        assert_eq!(r.locations, ["x"]);
        assert_eq!(r.format, ReportFormat::Markdown);
        assert_eq!(
            (r.slo_target, r.tz.as_str(), r.fail_under),
            (99.9, "UTC", false)
        );
        let both = v(&[
            "flowtest",
            "report",
            "--since",
            "1d",
            "--from",
            "2026-11-01",
        ]);
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_says_what_it_is() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let mut silent = Vec::new();
        for cmd in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    silent.push(format!("{} {id}", cmd.get_name()));
                }
            }
        }
        assert!(
            silent.is_empty(),
            "arguments without a help text: {silent:?}"
        );
    }
}
