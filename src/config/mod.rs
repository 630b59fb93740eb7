//! Configuration: `flowtest.toml` (shared settings) and one scenario file per mail path.
//!
//! Raw TOML is deserialized with unknown keys rejected, then resolved into one validated,
//! read-only [`Config`] before any I/O happens. Errors name the file, the line and the field.
//! Secrets stay references ([`secret::SecretRef`]) until the edge that needs them resolves them.
//! Not here: sending, fetching, logs (see `edge`), or what a scenario's result means (`core`).
pub mod canary;
mod credential;
pub mod doctor;
pub mod files;
pub mod logsource;
pub mod scenario;
pub mod secret;
pub mod sendgrid;
pub mod store;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::core::runbook::Runbook;
pub use doctor::DoctorConfig;
use logsource::LogSourceConfig;
pub use scenario::{Auth, AuthMechanism, Receiver, Scenario, Sender, Slo, SmtpSender, TlsMode};
use secret::SecretRef;
pub use sendgrid::SendGridSender;

/// A configuration error: which file, which line (when known), which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn new(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
        }
    }
    pub(crate) fn at(mut self, src: &str, offset: usize, field: &str) -> Self {
        self.line = Some(line_of(src, offset));
        self.field = Some(field.to_string());
        self
    }
    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }
}

/// 1-based line number of a byte offset (the runbook's errors count lines the same way).
pub(crate) use crate::core::runbook::line_of;

/// Turn a toml deserialization error into a ConfigError with file and line.
pub(crate) fn toml_error(file: &Path, src: &str, e: toml::de::Error) -> ConfigError {
    let mut err = ConfigError::new(file, e.message().trim().to_string());
    if let Some(span) = e.span() {
        err.line = Some(line_of(src, span.start));
    }
    err
}

/// Where the configuration file is: `--config`, then `$FLOWTEST_CONFIG` (both folded into
/// `explicit` by clap), then `./flowtest.toml`.
pub fn locate(explicit: &Option<PathBuf>) -> PathBuf {
    explicit
        .clone()
        .unwrap_or_else(|| PathBuf::from("flowtest.toml"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    probe: RawProbe,
    state_dir: Option<Spanned<String>>,
    scenarios_dir: Option<Spanned<String>>,
    max_concurrency: Option<usize>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default, rename = "log_source")]
    log_sources: Vec<toml::Table>,
    /// The operator's runbook (hints and incident texts), relative to this file.
    runbook: Option<Spanned<String>>,
    #[serde(default)]
    doctor: doctor::RawDoctor,
    /// `[canary]`: the scheduled canary's settings.
    canary: Option<canary::RawCanary>,
    /// `[store]`: PostgreSQL instead of the SQLite file in `state_dir`.
    store: Option<store::RawStore>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    /// Domain of probe Message-IDs (`<uuid@domain>`).
    domain: Spanned<String>,
    key_env: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
}

/// Defaults a scenario inherits unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub timeout: Option<Spanned<String>>,
    pub poll_interval: Option<Spanned<String>>,
    pub cleanup: Option<bool>,
    pub sweep_after: Option<Spanned<String>>,
}

/// Scenario defaults after parsing.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub cleanup: bool,
    /// A verified probe older than this is left over from a crashed run and may be swept.
    pub sweep_after: Duration,
}

/// The validated configuration. Built once, read-only afterwards.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub probe_domain: String,
    pub probe_key: SecretRef,
    pub state_dir: PathBuf,
    pub scenarios_dir: PathBuf,
    /// Probes being sent at once (by `run --all`, by the canary); a sent probe's wait for its
    /// delivery holds no place.
    pub max_concurrency: usize,
    pub defaults: Defaults,
    pub scenarios: Vec<Scenario>,
    /// `[[log_source]]`: server logs read while probes are in flight (and by `diagnose`).
    pub log_sources: Vec<LogSourceConfig>,
    /// `runbook = "..."`, else the built-in runbook (`runbook/default.toml`).
    pub runbook: Runbook,
    /// `[doctor]`: what `flowtest doctor` checks against.
    pub doctor: DoctorConfig,
    /// `[canary]`, or its defaults.
    pub canary: canary::CanaryConfig,
    /// `[store]`, or SQLite in `state_dir`.
    pub store: store::StoreConfig,
}

impl Config {
    /// Read and validate the configuration and every scenario file. No network, no secrets read.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read configuration: {e}")))?;
        Self::from_str(path, &src)
    }

    pub fn from_str(path: &Path, src: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(src).map_err(|e| toml_error(path, src, e))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };

        let domain = raw.probe.domain.get_ref().trim().to_string();
        let domain_at = raw.probe.domain.span().start;
        validate::no_controls(&domain)
            .map_err(|m| ConfigError::new(path, m).at(src, domain_at, "probe.domain"))?;
        if domain.is_empty() || domain.contains(['@', ' ', '<', '>']) {
            return Err(ConfigError::new(path, "must be a bare domain name").at(
                src,
                domain_at,
                "probe.domain",
            ));
        }
        let probe_key = match (raw.probe.key_env, raw.probe.key_file) {
            (Some(env), None) => {
                validate::env_name(env.get_ref()).map_err(|m| {
                    ConfigError::new(path, m).at(src, env.span().start, "probe.key_env")
                })?;
                SecretRef::Env(env.into_inner())
            }
            (None, Some(file)) => {
                SecretRef::File(resolve_path(path, src, &base, &file, "probe.key_file")?)
            }
            _ => {
                return Err(
                    ConfigError::new(path, "set exactly one of key_env or key_file").field("probe"),
                )
            }
        };
        let state_dir = match &raw.state_dir {
            Some(s) => resolve_path(path, src, &base, s, "state_dir")?,
            None => default_state_dir(),
        };
        let scenarios_dir = match &raw.scenarios_dir {
            Some(s) => resolve_path(path, src, &base, s, "scenarios_dir")?,
            None => base.join("scenarios"),
        };
        let max_concurrency = raw.max_concurrency.unwrap_or(4);
        if max_concurrency == 0 {
            return Err(ConfigError::new(path, "must be at least 1").field("max_concurrency"));
        }
        let d = &raw.defaults;
        let defaults = Defaults {
            timeout: opt_wait(path, src, d.timeout.as_ref(), "defaults.timeout")?
                .unwrap_or(Duration::from_secs(120)),
            poll_interval: opt_wait(
                path,
                src,
                d.poll_interval.as_ref(),
                "defaults.poll_interval",
            )?
            .unwrap_or(Duration::from_secs(2)),
            cleanup: d.cleanup.unwrap_or(true),
            sweep_after: opt_duration(
                path,
                src,
                d.sweep_after.as_ref(),
                "defaults.sweep_after",
                MAX_AGE,
            )?
            .unwrap_or(Duration::from_secs(6 * 3600)),
        };
        let log_sources = raw
            .log_sources
            .into_iter()
            .enumerate()
            .map(|(i, t)| log_source(path, &base, i, t))
            .collect::<Result<Vec<_>, _>>()?;
        let roles: Vec<&str> = log_sources.iter().map(|l| l.role.as_str()).collect();
        let scenarios = scenario::load_dir(&scenarios_dir, &defaults, &roles)?;
        scenario::check_sweep_after(&scenarios, |m| {
            let e = ConfigError::new(path, m);
            match &d.sweep_after {
                Some(v) => e.at(src, v.span().start, "defaults.sweep_after"),
                None => e.field("defaults.sweep_after"),
            }
        })?;
        let runbook = match &raw.runbook {
            Some(r) => load_runbook(&resolve_path(path, src, &base, r, "runbook")?)?,
            None => Runbook::builtin().clone(),
        };
        let doctor = DoctorConfig::from_raw(path, src, raw.doctor)?;
        let canary = canary::parse(path, src, &base, raw.canary)?;
        let store = store::parse(path, src, &base, raw.store)?;
        Ok(Config {
            path: path.to_path_buf(),
            probe_domain: domain,
            probe_key,
            state_dir,
            scenarios_dir,
            max_concurrency,
            defaults,
            scenarios,
            log_sources,
            runbook,
            doctor,
            canary,
            store,
        })
    }

    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// One `[[log_source]]` table: `${VAR}` in `path` expanded and made relative to the config file,
/// then checked by the log-source edge's own validation.
fn log_source(
    file: &Path,
    base: &Path,
    i: usize,
    mut t: toml::Table,
) -> Result<LogSourceConfig, ConfigError> {
    let field = format!("log_source[{i}]");
    if let Some(toml::Value::String(p)) = t.get("path") {
        let expanded =
            expand_env(p).map_err(|m| ConfigError::new(file, m).field(&format!("{field}.path")))?;
        let pb = PathBuf::from(expanded);
        let pb = if pb.is_absolute() { pb } else { base.join(pb) };
        t.insert("path".into(), toml::Value::String(pb.display().to_string()));
    }
    let cfg: LogSourceConfig = toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| {
            ConfigError::new(file, e.message().trim().to_string()).field(&field)
        })?;
    cfg.validate()
        .map_err(|msg| ConfigError::new(file, msg).field(&field))?;
    Ok(cfg)
}

/// A runbook larger than this is refused (the default is about 15 KiB).
const MAX_RUNBOOK_BYTES: u64 = files::MAX_CONFIG_FILE_BYTES;

/// Read and validate a runbook file; errors name that file, the line and the key.
pub fn load_runbook(file: &Path) -> Result<Runbook, ConfigError> {
    let read = || -> std::io::Result<String> {
        String::from_utf8(files::read_capped(file, MAX_RUNBOOK_BYTES)?)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
    };
    let src = read().map_err(|e| ConfigError::new(file, format!("cannot read runbook: {e}")))?;
    Runbook::parse(&src).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: e.line,
        field: e.key,
        message: e.message,
    })
}

fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(x).join("flowtest");
    }
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h).join(".local/state/flowtest"),
        _ => PathBuf::from("/var/lib/flowtest"),
    }
}

/// Expand `${VAR}` in a path-valued field and make it relative to `base`.
pub(crate) fn resolve_path(
    file: &Path,
    src: &str,
    base: &Path,
    value: &Spanned<String>,
    field: &str,
) -> Result<PathBuf, ConfigError> {
    let expanded = expand_env(value.get_ref())
        .map_err(|m| ConfigError::new(file, m).at(src, value.span().start, field))?;
    if expanded.is_empty() {
        return Err(ConfigError::new(file, "is empty").at(src, value.span().start, field));
    }
    let p = PathBuf::from(expanded);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

/// `${NAME}` expansion. An unset variable is an error that names it.
pub(crate) fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated ${{ in {s:?}"));
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable name {name:?}"));
        }
        match std::env::var(name) {
            Ok(v) => out.push_str(&v),
            Err(_) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An optional duration field, at most `max` ([`MAX_WAIT`] for waits, [`MAX_AGE`] for ages).
pub(crate) fn opt_duration(
    file: &Path,
    src: &str,
    v: Option<&Spanned<String>>,
    field: &str,
    max: Duration,
) -> Result<Option<Duration>, ConfigError> {
    v.map(|s| {
        parse_duration_up_to(s.get_ref(), max)
            .map_err(|m| ConfigError::new(file, m).at(src, s.span().start, field))
    })
    .transpose()
}

/// An optional wait field: [`opt_duration`] up to [`MAX_WAIT`].
pub(crate) fn opt_wait(
    file: &Path,
    src: &str,
    v: Option<&Spanned<String>>,
    field: &str,
) -> Result<Option<Duration>, ConfigError> {
    opt_duration(file, src, v, field, MAX_WAIT)
}

pub use validate::{MAX_AGE, MAX_WAIT};

/// A wait (`--timeout`, a scenario's timeout): `500ms`, `30s`, `2m`, `1h 30m` (humantime
/// syntax), greater than zero (every wait must be bounded by something real) and at most
/// [`MAX_WAIT`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_up_to(s, MAX_WAIT)
}

/// A duration in humantime syntax, greater than zero and at most `max`.
pub fn parse_duration_up_to(s: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("{s:?} is not a duration ({e}); write e.g. \"30s\", \"2m\", \"500ms\"")
    })?;
    if d.is_zero() {
        return Err(format!("{s:?}: a duration must be greater than zero"));
    }
    validate::at_most(s, d, max)
}

/// The probe key, from the configured environment variable or file.
pub fn probe_key(config: &Config) -> Result<crate::core::probe::ProbeKey, String> {
    let secret = config
        .probe_key
        .resolve()
        .map_err(|e| format!("probe key: {e}"))?;
    crate::core::probe::ProbeKey::new(secret.expose().as_bytes())
        .map_err(|e| format!("probe key {}: {e}", config.probe_key.describe()))
}

/// A table's parser run on a test's text as if it were `/etc/flowtest/flowtest.toml`; `raw` is
/// the table as deserialized from `src`.
#[cfg(test)]
fn parse_as_etc_file<R, T>(
    src: &str,
    raw: Result<R, toml::de::Error>,
    parse: fn(&Path, &str, &Path, Option<R>) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let raw = raw.map_err(|e| ConfigError::new(Path::new("f"), e.to_string()))?;
    parse(
        Path::new("/etc/flowtest/flowtest.toml"),
        src,
        Path::new("/etc/flowtest"),
        Some(raw),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("18446744073709551615s").is_err());
        assert!(parse_duration("25h").unwrap_err().contains("maximum"));
        assert_eq!(
            parse_duration_up_to("7d", MAX_AGE).unwrap(),
            Duration::from_secs(7 * 86400)
        );
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("FLOWTEST_TEST_EXPAND", "/x/y");
        assert_eq!(
            expand_env("${FLOWTEST_TEST_EXPAND}/ca.pem").unwrap(),
            "/x/y/ca.pem"
        );
        assert_eq!(expand_env("plain").unwrap(), "plain");
        assert!(expand_env("${FLOWTEST_TEST_UNSET_XYZ}")
            .unwrap_err()
            .contains("FLOWTEST_TEST_UNSET_XYZ"));
        assert!(expand_env("${oops").is_err());
    }

    /// A configuration directory with one scenario of `timeout` and `extra` lines, and
    /// `defaults` lines in flowtest.toml.
    fn sweep_config(defaults: &str, extra: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("flowtest.toml");
        std::fs::write(
            &cfg,
            format!(
                "[probe]\ndomain = \"probe.test\"\nkey_env = \"K\"\n\n[defaults]\n{defaults}\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        std::fs::write(
            dir.path().join("scenarios/a.toml"),
            format!(
                "name = \"a\"\ntimeout = \"10m\"\n{extra}\n[sender]\nkind = \"smtp\"\nhost = \"h\"\ntls = \"starttls\"\n\
                 mail_from = \"a@b.test\"\nrcpt_to = \"c@d.test\"\n[receiver]\nhost = \"h\"\ntls = \"tls\"\n\
                 username = \"u\"\npassword_env = \"P\"\n"
            ),
        )
        .unwrap();
        Config::load(&cfg)
    }

    #[test]
    fn sweep_after_must_exceed_every_timeout() {
        if let Err(e) = sweep_config("", "") {
            panic!("6 h by default: {e}");
        }
        let e = sweep_config("sweep_after = \"5m\"", "").unwrap_err();
        assert!(e.file.ends_with("flowtest.toml"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(e.field.as_deref(), Some("defaults.sweep_after"));
        assert!(
            e.message
                .contains("longest scenario timeout (600s, scenario a)"),
            "{e}"
        );
        let e = sweep_config("", "sweep_after = \"10m\"").unwrap_err();
        assert!(e.file.ends_with("scenarios/a.toml"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.field.as_deref(), Some("sweep_after"));
        assert!(sweep_config("sweep_after = \"11m\"", "").is_ok());
    }

    #[test]
    fn line_numbers() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
