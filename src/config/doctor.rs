//! `[doctor]` in flowtest.toml: what `flowtest doctor` checks against (the nameserver to ask, the
//! MX each recipient domain should have, when a certificate's expiry is a warning) and its
//! bounds (each check's timeout, how far back the logs are read). Not here: the checks
//! (`crate::doctor`).
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{opt_wait, ConfigError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDoctor {
    nameserver: Option<Spanned<String>>,
    check_timeout: Option<Spanned<String>>,
    log_window: Option<Spanned<String>>,
    cert_warn_days: Option<Spanned<i64>>,
    #[serde(default)]
    expected_mx: BTreeMap<String, Vec<String>>,
}

/// The validated `[doctor]` table (defaults when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorConfig {
    /// The DNS server to ask (port 53 unless given); `None`: the system's resolver.
    pub nameserver: Option<SocketAddr>,
    /// Bound on each check (a DNS query, a connect, a handshake, a login, an API request, a
    /// log fetch).
    pub check_timeout: Duration,
    /// How far back the logs are read to judge hops flowtest cannot reach.
    pub log_window: Duration,
    /// A certificate expiring in fewer days than this is a warning.
    pub cert_warn_days: i64,
    /// Recipient domain (lower case) -> the MX hosts it must have.
    pub expected_mx: BTreeMap<String, Vec<String>>,
}

impl Default for DoctorConfig {
    fn default() -> Self {
        DoctorConfig {
            nameserver: None,
            check_timeout: Duration::from_secs(10),
            log_window: Duration::from_secs(3600),
            cert_warn_days: 14,
            expected_mx: BTreeMap::new(),
        }
    }
}

impl DoctorConfig {
    pub(crate) fn from_raw(file: &Path, src: &str, raw: RawDoctor) -> Result<Self, ConfigError> {
        let mut c = DoctorConfig::default();
        if let Some(ns) = &raw.nameserver {
            c.nameserver = Some(parse_nameserver(ns.get_ref()).map_err(|m| {
                ConfigError::new(file, m).at(src, ns.span().start, "doctor.nameserver")
            })?);
        }
        let timeout = opt_wait(
            file,
            src,
            raw.check_timeout.as_ref(),
            "doctor.check_timeout",
        )?;
        c.check_timeout = timeout.unwrap_or(c.check_timeout);
        let window = opt_wait(file, src, raw.log_window.as_ref(), "doctor.log_window")?;
        c.log_window = window.unwrap_or(c.log_window);
        if let Some(d) = &raw.cert_warn_days {
            if !(0..=3650).contains(d.get_ref()) {
                return Err(
                    ConfigError::new(file, "must be between 0 and 3650 days").at(
                        src,
                        d.span().start,
                        "doctor.cert_warn_days",
                    ),
                );
            }
            c.cert_warn_days = *d.get_ref();
        }
        for (domain, hosts) in raw.expected_mx {
            if hosts.is_empty() || domain.trim().is_empty() {
                return Err(ConfigError::new(
                    file,
                    format!("{domain:?}: give the domain and at least one MX host"),
                )
                .field("doctor.expected_mx"));
            }
            c.expected_mx
                .insert(domain.trim().to_ascii_lowercase(), hosts);
        }
        Ok(c)
    }
}

/// `198.18.1.1`, `198.18.1.1:5353`, `[::1]:53`.
fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not an IP address or IP:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<DoctorConfig, ConfigError> {
        #[derive(Deserialize)]
        struct Top {
            #[serde(default)]
            doctor: RawDoctor,
        }
        let top: Top = toml::from_str(src)
            .map_err(|e| super::super::toml_error(Path::new("f.toml"), src, e))?;
        DoctorConfig::from_raw(Path::new("f.toml"), src, top.doctor)
    }

    #[test]
    fn defaults_and_every_key() {
        assert_eq!(load("").unwrap(), DoctorConfig::default());
        let c = load(
            "[doctor]\nnameserver = \"198.18.1.1\"\ncheck_timeout = \"3s\"\nlog_window = \"30m\"\n\
             cert_warn_days = 7\n[doctor.expected_mx]\n\"Corp.test\" = [\"mx.corp.test\"]\n",
        )
        .unwrap();
        assert_eq!(c.nameserver, Some("198.18.1.1:53".parse().unwrap()));
        assert_eq!(c.check_timeout, Duration::from_secs(3));
        assert_eq!(c.log_window, Duration::from_secs(1800));
        assert_eq!(c.cert_warn_days, 7);
        assert_eq!(c.expected_mx["corp.test"], vec!["mx.corp.test".to_owned()]);
        assert_eq!(
            load("[doctor]\nnameserver = \"[::1]:5353\"\n")
                .unwrap()
                .nameserver,
            Some("[::1]:5353".parse().unwrap())
        );
    }

    #[test]
    fn bad_values_name_the_line_and_field() {
        let e = load("[doctor]\nnameserver = \"dns.example\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("doctor.nameserver"))
        );
        let e = load("[doctor]\n\ncert_warn_days = -1\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("doctor.cert_warn_days"))
        );
        let e = load("[doctor]\nnope = 1\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        let e = load("[doctor.expected_mx]\n\"corp.test\" = []\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("doctor.expected_mx"));
    }
}
