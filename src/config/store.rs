//! Where results are kept: the `[store]` table of `flowtest.toml`. Absent, results go to the
//! embedded SQLite database in `state_dir`; with `url = "postgres://user@host:port/database"`
//! they go to PostgreSQL, the history several canaries share. The password is a secret
//! reference (`password_env` / `password_file`), never part of the URL; TLS is verified unless
//! plaintext is asked for by name (`sslmode = "disable"`). Parsed and validated here; nothing
//! connects. Not here: the store itself (`edge::store`).
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::scenario::secret_ref;
use super::secret::SecretRef;
use super::{opt_wait, resolve_path, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    url: Spanned<String>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    sslmode: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
}

/// The configured result store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// `flowtest.db` in `state_dir`.
    #[default]
    Sqlite,
    Postgres(PostgresConfig),
}

/// How the PostgreSQL connection is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTls {
    /// `sslmode = "disable"`: plaintext, for a loopback or otherwise trusted network only.
    Disable,
    /// `sslmode = "verify-full"` (the default): TLS required, the certificate verified against
    /// the web PKI roots and `ca_file`, for the host name in the URL.
    VerifyFull { ca_file: Option<PathBuf> },
}

/// `[store]` with a PostgreSQL URL, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user@host[:port]/database`: a user, a host and a database, no password and no
    /// query parameters. Safe to show.
    pub url: String,
    /// `None`: the server authenticates without one (peer, trust, a client certificate).
    pub password: Option<SecretRef>,
    pub tls: PgTls,
    /// Bound on connecting (TCP, TLS, authentication); each statement is bounded too.
    pub connect_timeout: Duration,
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolve `[store]` (absent: SQLite). `base` is the configuration file's directory.
pub(crate) fn parse(
    file: &Path,
    src: &str,
    base: &Path,
    raw: Option<RawStore>,
) -> Result<StoreConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(StoreConfig::Sqlite);
    };
    let at = |m: String, v: &Spanned<String>, field: &str| {
        ConfigError::new(file, m).at(src, v.span().start, field)
    };
    let url = check_url(raw.url.get_ref()).map_err(|m| at(m, &raw.url, "store.url"))?;
    let password = match (&raw.password_env, &raw.password_file) {
        (None, None) => None,
        _ => Some(secret_ref(
            file,
            src,
            base,
            raw.password_env,
            raw.password_file,
            "store.password",
        )?),
    };
    let sslmode = raw
        .sslmode
        .as_ref()
        .map(|s| s.get_ref().trim())
        .unwrap_or("verify-full");
    let ca_file = raw
        .ca_file
        .as_ref()
        .map(|p| resolve_path(file, src, base, p, "store.ca_file"))
        .transpose()?;
    let tls = match (sslmode, ca_file) {
        ("verify-full", ca_file) => PgTls::VerifyFull { ca_file },
        ("disable", None) => PgTls::Disable,
        ("disable", Some(_)) => {
            return Err(
                ConfigError::new(file, "ca_file is for TLS, and sslmode is \"disable\"")
                    .field("store.ca_file"),
            )
        }
        (other, _) => {
            let m = format!(
                "{other:?}: use \"verify-full\" (TLS, the certificate verified; ca_file for a \
                 private CA) or \"disable\" (plaintext, loopback or a trusted network only); \
                 flowtest never skips verification"
            );
            let v = raw
                .sslmode
                .as_ref()
                .expect("a value other than the default");
            return Err(at(m, v, "store.sslmode"));
        }
    };
    let connect_timeout = opt_wait(
        file,
        src,
        raw.connect_timeout.as_ref(),
        "store.connect_timeout",
    )?
    .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    Ok(StoreConfig::Postgres(PostgresConfig {
        url,
        password,
        tls,
        connect_timeout,
    }))
}

/// A PostgreSQL URL without a password; the error never repeats the URL (it may hold one).
fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Err(
            "use a PostgreSQL URL: postgres://user@host:port/database (leave [store] out for \
             the SQLite store in state_dir)"
                .into(),
        );
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.contains(':') {
            return Err(
                "the URL holds a password: remove it and set password_env or \
                 password_file (secrets are never written in config files)"
                    .into(),
            );
        }
    }
    if url.contains('?') {
        return Err(
            "query parameters are not taken: set sslmode, ca_file and connect_timeout in \
             [store]"
                .into(),
        );
    }
    let parsed: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if parsed.get_password().is_some() {
        return Err("the URL holds a password: set password_env or password_file".into());
    }
    if parsed.get_user().is_none_or(str::is_empty) {
        return Err("name the user: postgres://user@host:port/database".into());
    }
    if parsed.get_hosts().is_empty() {
        return Err("name the host: postgres://user@host:port/database".into());
    }
    if parsed.get_dbname().is_none_or(str::is_empty) {
        return Err("name the database: postgres://user@host:port/database".into());
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        store: RawStore,
    }

    fn parse_str(src: &str) -> Result<StoreConfig, ConfigError> {
        let raw = toml::from_str::<Wrap>(src).map(|w| w.store);
        crate::config::parse_as_etc_file(src, raw, parse)
    }

    #[test]
    fn absent_is_sqlite_and_a_full_table_is_postgres() {
        assert_eq!(
            parse(Path::new("f"), "", Path::new("."), None).unwrap(),
            StoreConfig::Sqlite
        );
        let c = parse_str(
            "[store]\nurl = \"postgres://flowtest@db.example:5433/history\"\n\
             password_file = \"pg.pass\"\nca_file = \"pg-ca.pem\"\nconnect_timeout = \"3s\"\n",
        )
        .unwrap();
        assert_eq!(
            c,
            StoreConfig::Postgres(PostgresConfig {
                url: "postgres://flowtest@db.example:5433/history".into(),
                password: Some(SecretRef::File("/etc/flowtest/pg.pass".into())),
                tls: PgTls::VerifyFull {
                    ca_file: Some("/etc/flowtest/pg-ca.pem".into())
                },
                connect_timeout: Duration::from_secs(3),
            })
        );
        let c = parse_str(
            "[store]\nurl = \"postgresql://u@127.0.0.1/h\"\npassword_env = \"PGPASSWORD\"\n\
             sslmode = \"disable\"\n",
        )
        .unwrap();
        let StoreConfig::Postgres(pg) = c else {
            panic!("postgres")
        };
        assert_eq!(pg.tls, PgTls::Disable);
        assert_eq!(pg.password, Some(SecretRef::Env("PGPASSWORD".into())));
        assert_eq!(pg.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn bad_tables_name_the_field_and_never_repeat_a_password() {
        for (body, field, says) in [
            ("url = \"mysql://u@h/d\"", "store.url", "PostgreSQL URL"),
            (
                "url = \"postgres://u:hunter2@h/d\"",
                "store.url",
                "holds a password",
            ),
            (
                "url = \"postgres://u:@h/d\"",
                "store.url",
                "holds a password",
            ),
            ("url = \"postgres://h/d\"", "store.url", "name the user"),
            ("url = \"postgres://u@h\"", "store.url", "name the database"),
            (
                "url = \"postgres://u@h/d?sslmode=disable\"",
                "store.url",
                "query",
            ),
            (
                "url = \"postgres://u@h:99999/d\"",
                "store.url",
                "not a PostgreSQL URL",
            ),
            (
                "url = \"postgres://u@h/d\"\nsslmode = \"require\"",
                "store.sslmode",
                "never skips verification",
            ),
            (
                "url = \"postgres://u@h/d\"\nsslmode = \"disable\"\nca_file = \"x\"",
                "store.ca_file",
                "ca_file is for TLS",
            ),
            (
                "url = \"postgres://u@h/d\"\npassword_env = \"A\"\npassword_file = \"b\"",
                "store.password",
                "only one",
            ),
            (
                "url = \"postgres://u@h/d\"\npassword_env = \"not a name\"",
                "store.password_env",
                "",
            ),
        ] {
            let e = parse_str(&format!("[store]\n{body}\n")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{body}: {e}");
            assert!(e.message.contains(says), "{body}: {e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let e = parse_str("[store]\nurl = \"postgres://u@h/d\"\npassword = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
