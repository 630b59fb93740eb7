//! The canary's configuration: the `[canary]` table of `flowtest.toml` (where to listen, which
//! location this canary reports as, jitter, alerting, shutdown grace) and a scenario's own
//! schedule (`every` or `cron`). Parsed and validated here; webhook URLs stay secret references
//! until the alert sender resolves them. Not here: running anything (see `canary`).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::scenario::secret_ref;
use super::secret::SecretRef;
use super::{opt_wait, resolve_path, ConfigError};
use crate::core::canary::schedule::Schedule;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCanary {
    listen: Option<Spanned<String>>,
    location: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    failures_before_alert: Option<u32>,
    grace: Option<Spanned<String>>,
    incident_dir: Option<Spanned<String>>,
    #[serde(default, rename = "webhook")]
    webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    format: Spanned<String>,
    url_env: Option<Spanned<String>>,
    url_file: Option<Spanned<String>>,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The alert's fields as one JSON object.
    Generic,
    /// A Slack incoming-webhook message (`text` and blocks).
    Slack,
}

/// One alert destination. The URL (often carrying a token) is a secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// How logs name it: `webhook[N] (format)`, never the URL.
    pub name: String,
    pub format: PayloadFormat,
    pub url: SecretRef,
}

/// `[canary]` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryConfig {
    pub listen: SocketAddr,
    /// The `location` label on every metric and alert: where this canary runs.
    pub location: String,
    /// A scenario's period when it sets neither `every` nor `cron`.
    pub every: Duration,
    /// Each firing is delayed by a random amount below this.
    pub jitter: Duration,
    pub failures_before_alert: u32,
    /// How long in-flight probes may finish after SIGTERM/SIGINT.
    pub grace: Duration,
    /// Where an incident draft is written when a scenario starts failing.
    pub incident_dir: Option<PathBuf>,
    pub webhooks: Vec<Webhook>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9725";

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            listen: DEFAULT_LISTEN.parse().expect("a valid socket address"),
            location: "default".into(),
            every: Duration::from_secs(300),
            jitter: Duration::ZERO,
            failures_before_alert: 2,
            grace: Duration::from_secs(30),
            incident_dir: None,
            webhooks: Vec::new(),
        }
    }
}

/// Resolve `[canary]` (absent: the defaults). `base` is the configuration file's directory.
pub(crate) fn parse(
    file: &Path,
    src: &str,
    base: &Path,
    raw: Option<RawCanary>,
) -> Result<CanaryConfig, ConfigError> {
    let d = CanaryConfig::default();
    let Some(raw) = raw else { return Ok(d) };
    let listen = match &raw.listen {
        Some(l) => l.get_ref().trim().parse().map_err(|_| {
            ConfigError::new(file, format!("{:?} is not an address:port", l.get_ref())).at(
                src,
                l.span().start,
                "canary.listen",
            )
        })?,
        None => d.listen,
    };
    let location = match &raw.location {
        Some(l) => {
            let v = l.get_ref().trim();
            if !label_safe(v) {
                return Err(ConfigError::new(
                    file,
                    format!("{v:?}: use 1 to 64 letters, digits, '-', '_' or '.'"),
                )
                .at(src, l.span().start, "canary.location"));
            }
            v.to_string()
        }
        None => d.location,
    };
    let every = opt_wait(file, src, raw.every.as_ref(), "canary.every")?.unwrap_or(d.every);
    if let Err(m) = Schedule::every(every) {
        return Err(ConfigError::new(file, m).field("canary.every"));
    }
    let jitter = match &raw.jitter {
        Some(j) if j.get_ref().trim() == "0" => Duration::ZERO,
        j => opt_wait(file, src, j.as_ref(), "canary.jitter")?.unwrap_or(d.jitter),
    };
    let failures_before_alert = raw.failures_before_alert.unwrap_or(d.failures_before_alert);
    if failures_before_alert == 0 {
        return Err(
            ConfigError::new(file, "must be at least 1").field("canary.failures_before_alert")
        );
    }
    let grace = opt_wait(file, src, raw.grace.as_ref(), "canary.grace")?.unwrap_or(d.grace);
    let incident_dir = raw
        .incident_dir
        .as_ref()
        .map(|p| resolve_path(file, src, base, p, "canary.incident_dir"))
        .transpose()?;
    let webhooks = raw
        .webhooks
        .into_iter()
        .enumerate()
        .map(|(i, w)| webhook(file, src, base, i, w))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CanaryConfig {
        listen,
        location,
        every,
        jitter,
        failures_before_alert,
        grace,
        incident_dir,
        webhooks,
    })
}

fn webhook(
    file: &Path,
    src: &str,
    base: &Path,
    i: usize,
    w: RawWebhook,
) -> Result<Webhook, ConfigError> {
    let field = format!("canary.webhook[{i}]");
    let format =
        match w.format.get_ref().as_str() {
            "generic" => PayloadFormat::Generic,
            "slack" => PayloadFormat::Slack,
            other => {
                return Err(ConfigError::new(
                    file,
                    format!("{other:?}: use \"generic\" or \"slack\""),
                )
                .at(src, w.format.span().start, &format!("{field}.format")))
            }
        };
    let url = secret_ref(
        file,
        src,
        base,
        w.url_env,
        w.url_file,
        &format!("{field}.url"),
    )?;
    let name = format!("webhook[{i}] ({})", w.format.get_ref());
    Ok(Webhook { name, format, url })
}

/// A scenario's own schedule: `every = "30s"` or `cron = "*/5 * * * *"`, not both.
pub(crate) fn scenario_schedule(
    file: &Path,
    src: &str,
    every: Option<&Spanned<String>>,
    cron: Option<&Spanned<String>>,
) -> Result<Option<Schedule>, ConfigError> {
    match (every, cron) {
        (Some(_), Some(c)) => Err(
            ConfigError::new(file, "set either every or cron, not both").at(
                src,
                c.span().start,
                "cron",
            ),
        ),
        (Some(e), None) => {
            let d = opt_wait(file, src, Some(e), "every")?.unwrap_or_default();
            Schedule::every(d)
                .map(Some)
                .map_err(|m| ConfigError::new(file, m).at(src, e.span().start, "every"))
        }
        (None, Some(c)) => Schedule::cron(c.get_ref())
            .map(Some)
            .map_err(|m| ConfigError::new(file, m).at(src, c.span().start, "cron")),
        (None, None) => Ok(None),
    }
}

/// Safe as a Prometheus label value and in a file name.
fn label_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        canary: RawCanary,
    }

    fn parse_str(src: &str) -> Result<CanaryConfig, ConfigError> {
        let raw = toml::from_str::<Wrap>(src).map(|w| w.canary);
        crate::config::parse_as_etc_file(src, raw, parse)
    }

    #[test]
    fn full_table() {
        let c = parse_str(
            "[canary]\nlisten = \"0.0.0.0:9100\"\nlocation = \"onprem-1\"\nevery = \"1m\"\n\
             jitter = \"5s\"\nfailures_before_alert = 3\ngrace = \"10s\"\nincident_dir = \"inc\"\n\
             [[canary.webhook]]\nformat = \"slack\"\nurl_env = \"SLACK_URL\"\n\
             [[canary.webhook]]\nformat = \"generic\"\nurl_file = \"hook.url\"\n",
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9100".parse().unwrap());
        assert_eq!(c.location, "onprem-1");
        assert_eq!(c.every, Duration::from_secs(60));
        assert_eq!(c.jitter, Duration::from_secs(5));
        assert_eq!(c.failures_before_alert, 3);
        assert_eq!(c.grace, Duration::from_secs(10));
        assert_eq!(c.incident_dir, Some(PathBuf::from("/etc/flowtest/inc")));
        assert_eq!(c.webhooks[0].format, PayloadFormat::Slack);
        assert_eq!(c.webhooks[0].url, SecretRef::Env("SLACK_URL".into()));
        assert_eq!(
            c.webhooks[1].url,
            SecretRef::File("/etc/flowtest/hook.url".into())
        );
        assert_eq!(c.webhooks[1].name, "webhook[1] (generic)");
    }

    #[test]
    fn defaults_and_errors() {
        let d = parse(Path::new("f"), "", Path::new("."), None).unwrap();
        assert_eq!(d, CanaryConfig::default());
        for (src, field) in [
            ("[canary]\nlisten = \"nowhere\"", "canary.listen"),
            ("[canary]\nlocation = \"a b\"", "canary.location"),
            (
                "[canary]\nfailures_before_alert = 0",
                "canary.failures_before_alert",
            ),
            ("[canary]\nevery = \"500ms\"", "canary.every"),
            (
                "[canary]\n[[canary.webhook]]\nformat = \"teams\"\nurl_env = \"X\"",
                "canary.webhook[0].format",
            ),
        ] {
            let e = parse_str(src).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{src}: {e}");
        }
        let e = parse_str("[canary]\n[[canary.webhook]]\nformat = \"slack\"").unwrap_err();
        assert!(e.to_string().contains("canary.webhook[0].url"), "{e}");
    }

    #[test]
    fn scenario_schedules() {
        let sp = |s: &str| Spanned::new(0..1, s.to_string());
        let f = Path::new("s.toml");
        assert!(scenario_schedule(f, "x", None, None).unwrap().is_none());
        assert!(matches!(
            scenario_schedule(f, "x", Some(&sp("1s")), None).unwrap(),
            Some(Schedule::Every(d)) if d == Duration::from_secs(1)
        ));
        assert!(matches!(
            scenario_schedule(f, "x", None, Some(&sp("*/5 * * * *"))).unwrap(),
            Some(Schedule::Cron(_))
        ));
        for (every, cron) in [
            (Some(sp("1s")), Some(sp("* * * * *"))),
            (Some(sp("100ms")), None),
            (None, Some(sp("not cron"))),
        ] {
            assert!(scenario_schedule(f, "x", every.as_ref(), cron.as_ref()).is_err());
        }
    }
}
