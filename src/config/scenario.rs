//! Scenario files: one mail path each (who sends, where it must arrive, what path it should take).
//!
//! A scenario is a `*.toml` file in the scenarios directory. See `scenarios/README.md` for the
//! format. This module parses and validates; it never opens a connection or reads a secret.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::credential;
use super::secret::SecretRef;
pub use super::sendgrid::{check_base_url, SendGridSender, DEFAULT_SENDGRID_URL};
use super::validate::{self, MAX_AGE};
use super::{opt_duration, opt_wait, resolve_path, toml_error, ConfigError, Defaults};
use crate::core::canary::schedule::Schedule;
use crate::core::trace::StageMatcher;

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS; the upgrade is required, never optional.
    Starttls,
    /// TLS from the first byte (SMTPS 465, IMAPS 993).
    Tls,
    /// No TLS at all. Refused unless `allow_plaintext = true`.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    description: Option<String>,
    timeout: Option<Spanned<String>>,
    cleanup: Option<bool>,
    sweep_after: Option<Spanned<String>>,
    sender: RawSender,
    receiver: RawReceiver,
    #[serde(default)]
    slo: RawSlo,
    headers: Option<Spanned<toml::Table>>,
    #[serde(default)]
    path: Vec<Spanned<StageMatcher>>,
    /// The canary's schedule: a period or a cron expression.
    every: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
}

/// One struct for every sender kind (serde's tagged enums lose line numbers); fields that do
/// not belong to the chosen `kind` are refused in `parse`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    kind: Spanned<String>,
    host: Option<Spanned<String>>,
    port: Option<u16>,
    tls: Option<Spanned<TlsMode>>,
    #[serde(default)]
    allow_plaintext: bool,
    ca_file: Option<Spanned<String>>,
    helo: Option<Spanned<String>>,
    mail_from: Spanned<String>,
    rcpt_to: Spanned<OneOrMany>,
    header_from: Option<Spanned<String>>,
    header_to: Option<Spanned<String>>,
    auth: Option<RawAuth>,
    command_timeout: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    api_key_file: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: Spanned<String>,
    mechanism: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    token_command: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    host: Spanned<String>,
    port: Option<u16>,
    tls: Spanned<TlsMode>,
    #[serde(default)]
    allow_plaintext: bool,
    ca_file: Option<Spanned<String>>,
    username: Spanned<String>,
    mechanism: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    token_command: Option<Vec<String>>,
    folders: Option<Spanned<Vec<String>>>,
    junk_folders: Option<Spanned<Vec<String>>>,
    idle: Option<bool>,
    poll_interval: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    target: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
}

/// How SMTP AUTH or the IMAP login proves who we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// A password: SMTP by PLAIN (preferred) or LOGIN, as the server offers them; IMAP by LOGIN.
    Password,
    /// An OAuth 2 access token by XOAUTH2 (Gmail, Microsoft 365); refreshing it is the
    /// configured reference's business, never flowtest's.
    XOAuth2,
    /// An OAuth 2 access token by OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

impl AuthMechanism {
    /// Whether the secret is an OAuth 2 access token rather than a password.
    pub fn is_oauth(self) -> bool {
        matches!(self, AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer)
    }
}

/// Credentials for SMTP AUTH.
#[derive(Debug, Clone)]
pub struct Auth {
    pub username: String,
    /// The password, or the access token with [`AuthMechanism::XOAuth2`].
    pub password: SecretRef,
    pub mechanism: AuthMechanism,
}

#[derive(Debug, Clone)]
pub struct SmtpSender {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub helo: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub header_from: String,
    pub header_to: String,
    pub auth: Option<Auth>,
    /// Bound on each SMTP command (and the connection).
    pub command_timeout: Duration,
}

/// How a probe leaves: SMTP submission, or SendGrid's v3 mail-send API.
#[derive(Debug, Clone)]
pub enum Sender {
    Smtp(SmtpSender),
    SendGrid(SendGridSender),
}

impl Sender {
    /// The addresses every sender kind has.
    fn addresses(&self) -> SenderAddresses<'_> {
        match self {
            Sender::Smtp(s) => SenderAddresses {
                mail_from: &s.mail_from,
                rcpt_to: &s.rcpt_to,
                header_from: &s.header_from,
                header_to: &s.header_to,
            },
            Sender::SendGrid(s) => SenderAddresses {
                mail_from: &s.mail_from,
                rcpt_to: &s.rcpt_to,
                header_from: &s.header_from,
                header_to: &s.header_to,
            },
        }
    }
    pub fn recipients(&self) -> &[String] {
        self.addresses().rcpt_to
    }
    pub fn mail_from(&self) -> &str {
        self.addresses().mail_from
    }
    pub fn header_from(&self) -> &str {
        self.addresses().header_from
    }
    pub fn header_to(&self) -> &str {
        self.addresses().header_to
    }
}

struct SenderAddresses<'a> {
    mail_from: &'a str,
    rcpt_to: &'a [String],
    header_from: &'a str,
    header_to: &'a str,
}

/// Where a probe must arrive.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    /// The password, or the access token with an OAuth 2 [`AuthMechanism`].
    pub password: SecretRef,
    pub mechanism: AuthMechanism,
    /// Folders watched for the probe (INBOX first).
    pub folders: Vec<String>,
    /// Folders whose arrival means "delivered to spam".
    pub junk_folders: Vec<String>,
    /// Use IMAP IDLE when the server offers it; else poll.
    pub idle: bool,
    pub poll_interval: Duration,
}

/// Latency objectives for one scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slo {
    /// Delivered later than this is `slow` (and the p95 target in reports).
    pub target: Option<Duration>,
    /// Hard maximum: later than this is a miss in SLA reports.
    pub max: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub sender: Sender,
    pub receiver: Receiver,
    pub timeout: Duration,
    pub cleanup: bool,
    pub sweep_after: Duration,
    pub slo: Slo,
    /// Extra headers added to the probe (e.g. to steer a filter in a test).
    pub headers: Vec<(String, String)>,
    /// The expected path: ordered stage matchers for the trace engine.
    pub path: Vec<StageMatcher>,
    /// When the canary runs it (`None`: the canary's default period).
    pub schedule: Option<Schedule>,
}

const JUNK_NAMES: &[&str] = &[
    "special-use:junk",
    "junk",
    "spam",
    "[gmail]/spam",
    "junk e-mail",
    "junk email",
    "bulk mail",
];

/// Load every `*.toml` scenario in `dir`, sorted by name. Names must be unique; every role a
/// scenario's path names must be one of `roles` (the `[[log_source]]` roles).
pub fn load_dir(
    dir: &Path,
    defaults: &Defaults,
    roles: &[&str],
) -> Result<Vec<Scenario>, ConfigError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::new(dir, format!("cannot read scenarios directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    let mut out: Vec<Scenario> = Vec::with_capacity(files.len());
    for f in files {
        let src = std::fs::read_to_string(&f)
            .map_err(|e| ConfigError::new(&f, format!("cannot read scenario: {e}")))?;
        let s = parse(&f, &src, defaults, roles)?;
        if let Some(prev) = out.iter().find(|o| o.name == s.name) {
            let mut e = ConfigError::new(
                &f,
                format!(
                    "scenario name {:?} is already used by {}",
                    s.name,
                    prev.file.display()
                ),
            )
            .field("name");
            e.line = name_line(&src);
            return Err(e);
        }
        out.push(s);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The line of a scenario file's `name` key (the file has parsed once already).
fn name_line(src: &str) -> Option<usize> {
    #[derive(Deserialize)]
    struct NameOnly {
        name: Spanned<String>,
    }
    let n: NameOnly = toml::from_str(src).ok()?;
    Some(super::line_of(src, n.name.span().start))
}

pub(super) fn secret_ref(
    file: &Path,
    src: &str,
    base: &Path,
    env: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    field: &str,
) -> Result<SecretRef, ConfigError> {
    match (env, path) {
        (Some(e), None) => {
            let name = e.get_ref().trim();
            let field = format!("{field}_env");
            if name.is_empty() {
                return Err(ConfigError::new(file, "is empty").at(src, e.span().start, &field));
            }
            validate::env_name(name)
                .map_err(|m| ConfigError::new(file, m).at(src, e.span().start, &field))?;
            Ok(SecretRef::Env(name.to_string()))
        }
        (None, Some(p)) => Ok(SecretRef::File(resolve_path(
            file,
            src,
            base,
            &p,
            &format!("{field}_file"),
        )?)),
        (Some(e), Some(_)) => Err(ConfigError::new(
            file,
            format!("set only one of {field}_env and {field}_file"),
        )
        .at(src, e.span().start, field)),
        (None, None) => Err(ConfigError::new(
            file,
            format!(
                "missing {field}_env or {field}_file (secrets are never written in config files)"
            ),
        )
        .field(field)),
    }
}

fn check_tls(
    file: &Path,
    src: &str,
    tls: &Spanned<TlsMode>,
    allow_plaintext: bool,
    field: &str,
) -> Result<TlsMode, ConfigError> {
    if *tls.get_ref() == TlsMode::None && !allow_plaintext {
        return Err(ConfigError::new(
            file,
            "tls = \"none\" sends credentials and mail in clear text; set allow_plaintext = true to accept that",
        )
        .at(src, tls.span().start, field));
    }
    Ok(*tls.get_ref())
}

/// The scenario file being parsed: its path and text (errors name both, with line numbers) and
/// the directory its relative paths resolve against.
pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    src: &'a str,
    base: PathBuf,
}

impl Source<'_> {
    pub(super) fn at(&self, message: impl Into<String>, offset: usize, field: &str) -> ConfigError {
        ConfigError::new(self.file, message).at(self.src, offset, field)
    }

    /// A wait ([`super::MAX_WAIT`] at most).
    fn duration(
        &self,
        v: Option<&Spanned<String>>,
        field: &str,
    ) -> Result<Option<Duration>, ConfigError> {
        opt_wait(self.file, self.src, v, field)
    }

    /// A value written into a protocol command or a header: one line, no control characters.
    fn line(&self, v: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
        validate::no_controls(v.get_ref()).map_err(|m| self.at(m, v.span().start, field))?;
        Ok(v.get_ref().clone())
    }

    /// Like [`Source::line`], and not empty once trimmed (hosts, usernames).
    fn nonempty(&self, v: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
        let t = self.line(v, field)?.trim().to_string();
        if t.is_empty() {
            return Err(self.at("is empty", v.span().start, field));
        }
        Ok(t)
    }

    /// A bare address (`allow_null`: the empty null sender too).
    fn address(
        &self,
        v: &str,
        offset: usize,
        field: &str,
        allow_null: bool,
    ) -> Result<(), ConfigError> {
        validate::address(v, allow_null).map_err(|m| self.at(m, offset, field))
    }

    fn ca_file(
        &self,
        v: Option<Spanned<String>>,
        field: &str,
    ) -> Result<Option<PathBuf>, ConfigError> {
        v.map(|p| resolve_path(self.file, self.src, &self.base, &p, field))
            .transpose()
    }

    pub(super) fn secret(
        &self,
        env: Option<Spanned<String>>,
        path: Option<Spanned<String>>,
        field: &str,
    ) -> Result<SecretRef, ConfigError> {
        secret_ref(self.file, self.src, &self.base, env, path, field)
    }
}

/// Parse one scenario file's text. Checks run in a fixed order (name, sender, receiver, timing,
/// path, headers), so a file with several mistakes always reports the same first one.
pub fn parse(
    file: &Path,
    src: &str,
    defaults: &Defaults,
    roles: &[&str],
) -> Result<Scenario, ConfigError> {
    let raw: RawScenario = toml::from_str(src).map_err(|e| toml_error(file, src, e))?;
    let at = Source {
        file,
        src,
        base: file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let name = scenario_name(&at, &raw.name)?;
    let sender = parse_sender(&at, raw.sender)?;
    let receiver = parse_receiver(&at, raw.receiver, defaults)?;
    let timeout = at
        .duration(raw.timeout.as_ref(), "timeout")?
        .unwrap_or(defaults.timeout);
    let slo = parse_slo(&at, &raw.slo)?;
    let path = parse_path(&at, raw.path, roles)?;
    let headers = parse_headers(&at, raw.headers)?;
    let schedule =
        super::canary::scenario_schedule(file, src, raw.every.as_ref(), raw.cron.as_ref())?;
    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        file: file.to_path_buf(),
        sender,
        receiver,
        timeout,
        cleanup: raw.cleanup.unwrap_or(defaults.cleanup),
        sweep_after: opt_duration(file, src, raw.sweep_after.as_ref(), "sweep_after", MAX_AGE)?
            .unwrap_or(defaults.sweep_after),
        slo,
        headers,
        path,
        schedule,
    })
}

/// Where a scenario file sets `sweep_after`, if it does.
#[derive(Deserialize)]
struct SweepSpot {
    #[serde(default)]
    sweep_after: Option<Spanned<String>>,
}

/// Every scenario's `sweep_after` must be longer than the longest timeout of any scenario: a
/// probe younger than that may still be awaited by its run. The error names the scenario file
/// and line that set it, or (when inherited) what `inherited` builds for `defaults.sweep_after`.
pub fn check_sweep_after(
    scenarios: &[Scenario],
    inherited: impl Fn(String) -> ConfigError,
) -> Result<(), ConfigError> {
    let Some(longest) = scenarios.iter().max_by_key(|s| s.timeout) else {
        return Ok(());
    };
    for s in scenarios {
        if s.sweep_after > longest.timeout {
            continue;
        }
        let message = format!(
            "sweep_after ({:?}) must be longer than the longest scenario timeout ({:?}, scenario {})",
            s.sweep_after, longest.timeout, longest.name
        );
        let src = std::fs::read_to_string(&s.file).unwrap_or_default();
        let spot = toml::from_str::<SweepSpot>(&src)
            .ok()
            .and_then(|w| w.sweep_after);
        return Err(match spot {
            Some(v) => ConfigError::new(&s.file, message).at(&src, v.span().start, "sweep_after"),
            None => inherited(message),
        });
    }
    Ok(())
}

/// The expected path: validated by the trace engine, and every `role` one of `roles`.
fn parse_path(
    at: &Source<'_>,
    raw: Vec<Spanned<StageMatcher>>,
    roles: &[&str],
) -> Result<Vec<StageMatcher>, ConfigError> {
    let path: Vec<StageMatcher> = raw.iter().map(|m| m.get_ref().clone()).collect();
    crate::core::trace::validate_path(&path)
        .map_err(|m| ConfigError::new(at.file, m).field("path"))?;
    for m in &raw {
        if let Some(r) = m.get_ref().role.as_deref() {
            if !roles.contains(&r) {
                return Err(at.at(
                    format!(
                        "stage {:?} names role {r:?}, but no [[log_source]] has that role",
                        m.get_ref().stage
                    ),
                    m.span().start,
                    "path.role",
                ));
            }
        }
    }
    Ok(path)
}

/// A name usable on the command line: letters, digits, '-', '_', and not a subcommand (`flowtest
/// NAME` runs a scenario, so a scenario named like a subcommand could never be run that way).
fn scenario_name(at: &Source<'_>, raw: &Spanned<String>) -> Result<String, ConfigError> {
    let name = raw.get_ref().trim().to_string();
    let chars_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !chars_ok {
        return Err(at.at(
            format!("{name:?}: use letters, digits, '-' and '_'"),
            raw.span().start,
            "name",
        ));
    }
    if crate::cli::SUBCOMMANDS.contains(&name.as_str()) {
        return Err(at.at(
            format!(
                "{name:?} is a subcommand's name: `flowtest {name}` runs the subcommand, never \
                 this scenario; rename it (e.g. \"{name}-probe\")"
            ),
            raw.span().start,
            "name",
        ));
    }
    Ok(name)
}

fn parse_sender(at: &Source<'_>, s: RawSender) -> Result<Sender, ConfigError> {
    match s.kind.get_ref().as_str() {
        "smtp" => parse_smtp_sender(at, s).map(Sender::Smtp),
        "sendgrid" => parse_sendgrid_sender(at, s).map(Sender::SendGrid),
        other => Err(at.at(
            format!("unknown sender kind {other:?} (known: \"smtp\", \"sendgrid\")"),
            s.kind.span().start,
            "sender.kind",
        )),
    }
}

fn parse_smtp_sender(at: &Source<'_>, s: RawSender) -> Result<SmtpSender, ConfigError> {
    let file = at.file;
    let kind_at = s.kind.span().start;
    refuse_foreign_keys(at, &s)?;
    let addr = addresses(at, &s)?;
    let Some(tls_raw) = s.tls else {
        return Err(at.at("missing field `tls`", kind_at, "sender.tls"));
    };
    let Some(host_raw) = s.host else {
        return Err(at.at("missing field `host`", kind_at, "sender.host"));
    };
    let tls = check_tls(file, at.src, &tls_raw, s.allow_plaintext, "sender.tls")?;
    let host = at.nonempty(&host_raw, "sender.host")?;
    let helo = s.helo.map(|h| at.line(&h, "sender.helo")).transpose()?;
    let auth = smtp_auth(at, s.auth, tls, tls_raw.span().start)?;
    Ok(SmtpSender {
        port: s.port.unwrap_or(match tls {
            TlsMode::Tls => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        }),
        host,
        tls,
        ca_file: at.ca_file(s.ca_file, "sender.ca_file")?,
        helo,
        mail_from: addr.mail_from,
        rcpt_to: addr.rcpt_to,
        header_from: addr.header_from,
        header_to: addr.header_to,
        auth,
        command_timeout: command_timeout(at, s.command_timeout.as_ref())?,
    })
}

/// `sender.command_timeout`, 30 s when not set.
fn command_timeout(at: &Source<'_>, v: Option<&Spanned<String>>) -> Result<Duration, ConfigError> {
    Ok(at
        .duration(v, "sender.command_timeout")?
        .unwrap_or(Duration::from_secs(30)))
}

/// A sender's envelope and the header addresses the probe is written with.
struct Addresses {
    mail_from: String,
    rcpt_to: Vec<String>,
    header_from: String,
    header_to: String,
}

/// The envelope checked ([`envelope`]); the headers default to it.
fn addresses(at: &Source<'_>, s: &RawSender) -> Result<Addresses, ConfigError> {
    let mail_from = envelope_sender(at, &s.mail_from)?;
    let rcpt_to = envelope(at, s.rcpt_to.clone())?;
    let header_from = match &s.header_from {
        Some(h) => at.line(h, "sender.header_from")?,
        None => mail_from.clone(),
    };
    let header_to = match &s.header_to {
        Some(h) => at.line(h, "sender.header_to")?,
        None => rcpt_to.join(", "),
    };
    Ok(Addresses {
        mail_from,
        rcpt_to,
        header_from,
        header_to,
    })
}

/// Refuse a sender key that belongs to another kind than the one chosen.
fn refuse_foreign_keys(at: &Source<'_>, s: &RawSender) -> Result<(), ConfigError> {
    let kind = s.kind.get_ref().as_str();
    // Each kind-specific key: its name, whether it is set, the kind it belongs to.
    let keys = [
        ("host", s.host.is_some(), "smtp"),
        ("port", s.port.is_some(), "smtp"),
        ("tls", s.tls.is_some(), "smtp"),
        ("helo", s.helo.is_some(), "smtp"),
        ("auth", s.auth.is_some(), "smtp"),
        ("base_url", s.base_url.is_some(), "sendgrid"),
        ("api_key_env", s.api_key_env.is_some(), "sendgrid"),
        ("api_key_file", s.api_key_file.is_some(), "sendgrid"),
    ];
    match keys.iter().find(|(_, set, owner)| *set && *owner != kind) {
        Some((name, _, _)) => Err(at.at(
            format!("{name} does not apply to kind = {kind:?}"),
            s.kind.span().start,
            &format!("sender.{name}"),
        )),
        None => Ok(()),
    }
}

/// SendGrid's v3 API: the key by reference, the base URL (https unless `allow_plaintext`).
fn parse_sendgrid_sender(at: &Source<'_>, s: RawSender) -> Result<SendGridSender, ConfigError> {
    refuse_foreign_keys(at, &s)?;
    let base_url = match &s.base_url {
        Some(u) => check_base_url(u.get_ref(), s.allow_plaintext)
            .map_err(|m| at.at(m, u.span().start, "sender.base_url"))?,
        None => DEFAULT_SENDGRID_URL.to_string(),
    };
    let addr = addresses(at, &s)?;
    Ok(SendGridSender {
        base_url,
        api_key: at.secret(s.api_key_env, s.api_key_file, "sender.api_key")?,
        ca_file: at.ca_file(s.ca_file, "sender.ca_file")?,
        mail_from: addr.mail_from,
        rcpt_to: addr.rcpt_to,
        header_from: addr.header_from,
        header_to: addr.header_to,
        request_timeout: command_timeout(at, s.command_timeout.as_ref())?,
    })
}

/// The envelope sender: a bare address, or empty for the null sender.
fn envelope_sender(at: &Source<'_>, mail_from: &Spanned<String>) -> Result<String, ConfigError> {
    let a = mail_from.get_ref().trim();
    at.address(a, mail_from.span().start, "sender.mail_from", true)?;
    Ok(a.to_string())
}

/// The recipients: at least one, each a bare address.
fn envelope(at: &Source<'_>, rcpt_to: Spanned<OneOrMany>) -> Result<Vec<String>, ConfigError> {
    let offset = rcpt_to.span().start;
    let rcpt_to: Vec<String> = match rcpt_to.into_inner() {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(v) => v,
    };
    if rcpt_to.is_empty() {
        return Err(at.at("needs at least one recipient", offset, "sender.rcpt_to"));
    }
    rcpt_to
        .into_iter()
        .map(|r| {
            let r = r.trim().to_string();
            at.address(&r, offset, "sender.rcpt_to", false)?;
            Ok(r)
        })
        .collect()
}

/// SMTP AUTH credentials, refused over a plaintext connection (`tls_offset`: the `tls` key).
fn smtp_auth(
    at: &Source<'_>,
    auth: Option<RawAuth>,
    tls: TlsMode,
    tls_offset: usize,
) -> Result<Option<Auth>, ConfigError> {
    let Some(a) = auth else { return Ok(None) };
    let (mechanism, password) = credential::parse(
        at,
        credential::Raw {
            mechanism: a.mechanism,
            password_env: a.password_env,
            password_file: a.password_file,
            token_env: a.token_env,
            token_file: a.token_file,
            token_command: a.token_command,
        },
        "sender.auth",
        tls_offset,
    )?;
    let auth = Auth {
        password,
        username: at.line(&a.username, "sender.auth.username")?,
        mechanism,
    };
    if tls == TlsMode::None {
        return Err(at.at(
            "AUTH over a plaintext connection is refused; use starttls or tls",
            tls_offset,
            "sender.tls",
        ));
    }
    Ok(Some(auth))
}

fn parse_receiver(
    at: &Source<'_>,
    r: RawReceiver,
    defaults: &Defaults,
) -> Result<Receiver, ConfigError> {
    let file = at.file;
    let tls = check_tls(file, at.src, &r.tls, r.allow_plaintext, "receiver.tls")?;
    let folders = match r.folders {
        None => vec!["INBOX".to_string()],
        Some(f) => {
            let offset = f.span().start;
            let f = f.into_inner();
            if f.is_empty() || f.iter().any(|f| f.trim().is_empty()) {
                return Err(at.at(
                    "list at least one non-empty folder",
                    offset,
                    "receiver.folders",
                ));
            }
            folder_names(at, f, offset, "receiver.folders")?
        }
    };
    let junk_folders = junk_folders(at, r.junk_folders, &folders)?;
    let (mechanism, password) = credential::parse(
        at,
        credential::Raw {
            mechanism: r.mechanism,
            password_env: r.password_env,
            password_file: r.password_file,
            token_env: r.token_env,
            token_file: r.token_file,
            token_command: r.token_command,
        },
        "receiver",
        r.tls.span().start,
    )?;
    Ok(Receiver {
        port: r
            .port
            .unwrap_or(if tls == TlsMode::Tls { 993 } else { 143 }),
        host: at.nonempty(&r.host, "receiver.host")?,
        tls,
        ca_file: at.ca_file(r.ca_file, "receiver.ca_file")?,
        password,
        mechanism,
        username: at.nonempty(&r.username, "receiver.username")?,
        folders,
        junk_folders,
        idle: r.idle.unwrap_or(true),
        poll_interval: at
            .duration(r.poll_interval.as_ref(), "receiver.poll_interval")?
            .unwrap_or(defaults.poll_interval),
    })
}

/// Mailbox names go into IMAP commands: no control characters.
fn folder_names(
    at: &Source<'_>,
    names: Vec<String>,
    offset: usize,
    field: &str,
) -> Result<Vec<String>, ConfigError> {
    for f in &names {
        validate::no_controls(f).map_err(|m| at.at(m, offset, field))?;
    }
    Ok(names)
}

/// The junk folders as given (each must be watched), else the watched folders with a junk name.
fn junk_folders(
    at: &Source<'_>,
    given: Option<Spanned<Vec<String>>>,
    folders: &[String],
) -> Result<Vec<String>, ConfigError> {
    match given {
        Some(j) => {
            let offset = j.span().start;
            let j = folder_names(at, j.into_inner(), offset, "receiver.junk_folders")?;
            if let Some(bad) = j.iter().find(|f| !folders.contains(f)) {
                return Err(at.at(
                    format!("{bad:?} is not one of receiver.folders"),
                    offset,
                    "receiver.junk_folders",
                ));
            }
            Ok(j)
        }
        None => Ok(folders
            .iter()
            .filter(|f| JUNK_NAMES.contains(&f.to_ascii_lowercase().as_str()))
            .cloned()
            .collect()),
    }
}

fn parse_slo(at: &Source<'_>, raw: &RawSlo) -> Result<Slo, ConfigError> {
    let slo = Slo {
        target: at.duration(raw.target.as_ref(), "slo.target")?,
        max: at.duration(raw.max.as_ref(), "slo.max")?,
    };
    if let (Some(t), Some(m)) = (slo.target, slo.max) {
        if t > m {
            return Err(ConfigError::new(at.file, "slo.target is above slo.max").field("slo"));
        }
    }
    Ok(slo)
}

/// Extra probe headers: printable names without ':', string values without control characters,
/// and nothing in the `X-Flowtest-*` namespace flowtest itself writes.
fn parse_headers(
    at: &Source<'_>,
    raw: Option<Spanned<toml::Table>>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let offset = raw.span().start;
    let mut headers = Vec::new();
    for (k, v) in raw.into_inner() {
        let valid_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        match v.as_str() {
            Some(v)
                if valid_name
                    && validate::no_controls(v).is_ok()
                    && !k.to_ascii_lowercase().starts_with("x-flowtest-") =>
            {
                headers.push((k, v.to_string()))
            }
            _ => {
                return Err(at.at(
                    format!(
                        "header {:?}: names are printable ASCII without ':', values strings without control characters, and X-Flowtest-* is reserved",
                        crate::core::text::escape_control(&k)
                    ),
                    offset,
                    "headers",
                ))
            }
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            cleanup: true,
            sweep_after: Duration::from_secs(3600),
        }
    }

    const GOOD: &str = r#"
name = "lab-inbound"
description = "internet -> ec2 -> dell"
timeout = "20s"

[sender]
kind = "smtp"
host = "mx.corp.test"
port = 25
tls = "starttls"
ca_file = "/tmp/ca.pem"
mail_from = "probe@provider.test"
rcpt_to = "alice@corp.test"

[receiver]
host = "imap.corp.test"
tls = "tls"
username = "alice@corp.test"
password_env = "ALICE_PW"
folders = ["INBOX", "Junk"]

[slo]
target = "5s"
max = "30s"
"#;

    fn parse_str(s: &str) -> Result<Scenario, ConfigError> {
        parse(
            Path::new("/etc/flowtest/scenarios/x.toml"),
            s,
            &defaults(),
            &["ec2", "dell"],
        )
    }

    #[test]
    fn parses_a_full_scenario() {
        let s = parse_str(GOOD).unwrap();
        assert_eq!(s.name, "lab-inbound");
        assert_eq!(s.timeout, Duration::from_secs(20));
        assert_eq!(s.receiver.port, 993);
        assert_eq!(s.receiver.junk_folders, vec!["Junk".to_string()]);
        assert_eq!(s.receiver.poll_interval, Duration::from_secs(1));
        assert_eq!(s.slo.target, Some(Duration::from_secs(5)));
        let Sender::Smtp(smtp) = &s.sender else {
            panic!("an smtp sender")
        };
        assert_eq!(smtp.rcpt_to, vec!["alice@corp.test".to_string()]);
        assert_eq!(smtp.header_from, "probe@provider.test");
        assert_eq!(s.receiver.password, SecretRef::Env("ALICE_PW".into()));
    }

    #[test]
    fn unknown_key_names_field_and_line() {
        let src = GOOD.replace("port = 25", "port = 25\nhots = \"x\"");
        let e = parse_str(&src).unwrap_err();
        assert!(e.message.contains("unknown field `hots`"), "{e}");
        assert_eq!(e.line, Some(10), "{e}");
    }

    #[test]
    fn plaintext_needs_opt_in() {
        let src = GOOD.replace("tls = \"starttls\"", "tls = \"none\"");
        let e = parse_str(&src).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.tls"));
        assert!(e.message.contains("allow_plaintext"));
        assert_eq!(e.line, Some(10));
        let ok = src.replace("tls = \"none\"", "tls = \"none\"\nallow_plaintext = true");
        parse_str(&ok).unwrap();
    }

    #[test]
    fn secrets_must_be_references() {
        let src = GOOD.replace("password_env = \"ALICE_PW\"", "password = \"hunter2\"");
        let e = parse_str(&src).unwrap_err();
        assert!(e.message.contains("unknown field `password`"), "{e}");
        let src = GOOD.replace("password_env = \"ALICE_PW\"\n", "");
        let e = parse_str(&src).unwrap_err();
        assert!(e.message.contains("never written in config files"), "{e}");
    }

    #[test]
    fn expected_path_is_parsed_and_validated() {
        let with_path = format!("{GOOD}\n[[path]]\nstage = \"ec2-mx\"\nby = \"mx.corp.test\"\n");
        let s = parse_str(&with_path).unwrap();
        assert_eq!(s.path.len(), 1);
        assert_eq!(s.path[0].stage, "ec2-mx");
        let e = parse_str(&format!("{GOOD}\n[[path]]\nstage = \"nothing\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("path"), "{e}");
        let e = parse_str(&format!(
            "{GOOD}\n[[path]]\nstage = \"x\"\nby = \"a\"\nhost = \"b\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("unknown field `host`"), "{e}");
    }

    #[test]
    fn bad_values_are_clear() {
        let e = parse_str(&GOOD.replace("\"20s\"", "\"soon\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("timeout"));
        let e = parse_str(&GOOD.replace("name = \"lab-inbound\"", "name = \"run\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e =
            parse_str(&GOOD.replace("\"alice@corp.test\"\n\n", "\"alice corp\"\n\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.rcpt_to"));
        let e = parse_str(&GOOD.replace("kind = \"smtp\"", "kind = \"pigeon\"")).unwrap_err();
        assert!(e.message.contains("pigeon"), "{e}");
        let e = parse_str(&format!("{GOOD}\n[headers]\nX-Flowtest-Id = \"forged\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("headers"));
    }

    /// [`GOOD`] with a SendGrid API sender instead of its SMTP one.
    fn sendgrid() -> String {
        let (head, rest) = GOOD.split_once("[sender]").unwrap();
        let (_, tail) = rest.split_once("[receiver]").unwrap();
        format!("{head}[sender]\nkind = \"sendgrid\"\napi_key_env = \"SG_KEY\"\nmail_from = \"probe@provider.test\"\nrcpt_to = \"alice@corp.test\"\n\n[receiver]{tail}")
    }

    #[test]
    fn parses_a_sendgrid_sender() {
        let s = parse_str(&sendgrid()).unwrap();
        let Sender::SendGrid(sg) = &s.sender else {
            panic!("a sendgrid sender")
        };
        assert_eq!(sg.base_url, "https://api.sendgrid.com");
        assert_eq!(sg.api_key, SecretRef::Env("SG_KEY".into()));
        assert_eq!(s.sender.header_from(), "probe@provider.test");
        assert_eq!(s.sender.recipients(), ["alice@corp.test".to_string()]);
        let lab = sendgrid().replace(
            "kind = \"sendgrid\"",
            "kind = \"sendgrid\"\nbase_url = \"http://127.0.0.1:8025/\"\nallow_plaintext = true",
        );
        let Sender::SendGrid(sg) = parse_str(&lab).unwrap().sender else {
            panic!("a sendgrid sender")
        };
        assert_eq!(sg.base_url, "http://127.0.0.1:8025");
    }

    #[test]
    fn sendgrid_sender_refuses_what_does_not_apply() {
        let plain = sendgrid().replace(
            "kind = \"sendgrid\"",
            "kind = \"sendgrid\"\nbase_url = \"http://127.0.0.1:8025\"",
        );
        let e = parse_str(&plain).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.base_url"), "{e}");
        assert!(e.message.contains("allow_plaintext"), "{e}");
        let e = parse_str(
            &sendgrid().replace("kind = \"sendgrid\"", "kind = \"sendgrid\"\nhost = \"x\""),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.host"), "{e}");
        let e = parse_str(&sendgrid().replace("api_key_env = \"SG_KEY\"\n", "")).unwrap_err();
        assert!(
            e.message.contains("api_key_env or sender.api_key_file")
                || e.message.contains("never written"),
            "{e}"
        );
        let e = parse_str(&GOOD.replace("kind = \"smtp\"", "kind = \"smtp\"\napi_key_env = \"K\""))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.api_key_env"), "{e}");
        let e = parse_str(&GOOD.replace("tls = \"starttls\"\n", "")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.tls"), "{e}");
    }

    #[test]
    fn xoauth2_takes_a_token_reference() {
        let auth = "[sender.auth]\nusername = \"probe@provider.test\"\nmechanism = \"xoauth2\"\ntoken_file = \"/run/token\"\n\n[receiver]";
        let s = parse_str(&GOOD.replace("[receiver]", auth)).unwrap();
        let Sender::Smtp(smtp) = &s.sender else {
            panic!("an smtp sender")
        };
        let a = smtp.auth.as_ref().unwrap();
        assert_eq!(a.mechanism, AuthMechanism::XOAuth2);
        assert_eq!(a.password, SecretRef::File("/run/token".into()));
        let mixed = auth.replace("token_file", "password_file");
        let e = parse_str(&GOOD.replace("[receiver]", &mixed)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.auth"), "{e}");
        let cmd = auth.replace(
            "token_file = \"/run/token\"",
            "token_command = [\"oauth2l\", \"fetch\"]",
        );
        let s = parse_str(&GOOD.replace("[receiver]", &cmd)).unwrap();
        let Sender::Smtp(smtp) = &s.sender else {
            panic!("an smtp sender")
        };
        let argv = vec!["oauth2l".to_string(), "fetch".to_string()];
        assert_eq!(
            smtp.auth.as_ref().unwrap().password,
            SecretRef::Command(argv)
        );
        let unknown = auth.replace("\"xoauth2\"", "\"cram-md5\"");
        let e = parse_str(&GOOD.replace("[receiver]", &unknown)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.auth.mechanism"), "{e}");
    }

    #[test]
    fn the_receiver_logs_in_with_a_password_or_an_oauth_token() {
        let s = parse_str(GOOD).unwrap();
        assert_eq!(s.receiver.mechanism, AuthMechanism::Password);
        let oauth = GOOD.replace(
            "password_env = \"ALICE_PW\"",
            "mechanism = \"oauthbearer\"\ntoken_command = [\"gcloud\", \"auth\", \"print-access-token\"]",
        );
        let s = parse_str(&oauth).unwrap();
        assert_eq!(s.receiver.mechanism, AuthMechanism::OAuthBearer);
        assert!(matches!(s.receiver.password, SecretRef::Command(ref a) if a[0] == "gcloud"));
        // A password with an OAuth mechanism, or a token without one, is refused by name.
        let mixed = GOOD.replace("password_env", "mechanism = \"xoauth2\"\npassword_env");
        let e = parse_str(&mixed).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("receiver"), "{e}");
        let token_only = GOOD.replace("password_env", "token_env");
        let e = parse_str(&token_only).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("receiver"), "{e}");
        let none = GOOD.replace("password_env = \"ALICE_PW\"", "mechanism = \"xoauth2\"");
        let e = parse_str(&none).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("receiver.token"), "{e}");
    }

    #[test]
    fn protocol_values_refuse_control_characters_with_line_and_field() {
        for (from, to, field, line) in [
            (
                "host = \"mx.corp.test\"",
                "host = \"mx.corp.test\\r\\nQUIT\"",
                "sender.host",
                8,
            ),
            (
                "port = 25",
                "port = 25\nhelo = \"me\\u0000\"",
                "sender.helo",
                10,
            ),
            (
                "mail_from = \"probe@provider.test\"",
                "mail_from = \"p@x\\r\\nRCPT TO:<v@y>\"",
                "sender.mail_from",
                12,
            ),
            (
                "rcpt_to = \"alice@corp.test\"",
                "rcpt_to = [\"alice@corp.test\", \"b@c\\u001b[2J\"]",
                "sender.rcpt_to",
                13,
            ),
            (
                "rcpt_to = \"alice@corp.test\"",
                "rcpt_to = \"alice@corp.test\"\nheader_to = \"a\\nBcc: x@y\"",
                "sender.header_to",
                14,
            ),
            (
                "username = \"alice@corp.test\"",
                "username = \"alice\\u007f\"",
                "receiver.username",
                18,
            ),
            (
                "folders = [\"INBOX\", \"Junk\"]",
                "folders = [\"INBOX\\r\\nA1 LOGOUT\"]",
                "receiver.folders",
                20,
            ),
        ] {
            let src = GOOD.replace(from, to);
            assert_ne!(src, GOOD, "{from}");
            let e = parse_str(&src).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
            assert!(!e.to_string().chars().any(char::is_control), "{e:?}");
        }
        let e = parse_str(&format!("{GOOD}\n[headers]\nX-Test = \"a\\rb\"\n")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("headers"));
        assert!(e.line.is_some());
    }

    #[test]
    fn addresses_and_env_names_are_checked_without_echoing_secrets() {
        let e = parse_str(&GOOD.replace("\"probe@provider.test\"", "\"<probe@provider.test>\""))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.mail_from"));
        assert_eq!(e.line, Some(12));
        let e = parse_str(&GOOD.replace("rcpt_to = \"alice@corp.test\"", "rcpt_to = \"\""))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("sender.rcpt_to"));
        let e = parse_str(&GOOD.replace("\"ALICE_PW\"", "\"Tr0ub4dor&3\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("receiver.password_env"));
        assert_eq!(e.line, Some(19));
        assert!(!format!("{e}{e:?}").contains("Tr0ub4dor"), "{e}");
    }

    #[test]
    fn timeouts_are_bounded_and_roles_must_exist() {
        let e = parse_str(&GOOD.replace("\"20s\"", "\"18446744073709551615s\"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("timeout"));
        let e = parse_str(&GOOD.replace("\"20s\"", "\"25h\"")).unwrap_err();
        assert!(e.message.contains("maximum"), "{e}");
        assert_eq!(e.line, Some(4));
        let with_role =
            format!("{GOOD}\n[[path]]\nstage = \"mx\"\nby = \"mx.corp.test\"\nrole = \"nope\"\n");
        let e = parse_str(&with_role).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("path.role"));
        assert_eq!(e.line, Some(26), "{e}");
        parse_str(&with_role.replace("\"nope\"", "\"ec2\"")).unwrap();
    }
}
