//! Credentials of a scenario's sender (`[sender.auth]`) and receiver: which mechanism proves who
//! flowtest is, and the reference its secret comes from: a password by `password_env` /
//! `password_file`, an OAuth 2 access token (`mechanism = "xoauth2"` or `"oauthbearer"`) by
//! `token_env` / `token_file` / `token_command`. Never a value. Not here: using them (the edges).
use toml::Spanned;

use super::scenario::{AuthMechanism, Source};
use super::secret::SecretRef;
use super::ConfigError;

/// The credential keys as written, moved out of the sender's or receiver's table.
pub(super) struct Raw {
    pub mechanism: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub token_command: Option<Vec<String>>,
}

/// The mechanism and its secret's reference; `table` names the keys' table in errors
/// (`sender.auth`, `receiver`), `offset` places an error without a key of its own.
pub(super) fn parse(
    at: &Source<'_>,
    a: Raw,
    table: &str,
    offset: usize,
) -> Result<(AuthMechanism, SecretRef), ConfigError> {
    let mechanism = match a.mechanism.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("password") => AuthMechanism::Password,
        Some("xoauth2") => AuthMechanism::XOAuth2,
        Some("oauthbearer") => AuthMechanism::OAuthBearer,
        Some(other) => {
            return Err(at.at(
                format!(
                "unknown mechanism {other:?} (known: \"password\", \"xoauth2\", \"oauthbearer\")"
            ),
                a.mechanism.as_ref().map_or(offset, |m| m.span().start),
                &format!("{table}.mechanism"),
            ))
        }
    };
    let has_password = a.password_env.is_some() || a.password_file.is_some();
    let has_token = a.token_env.is_some() || a.token_file.is_some() || a.token_command.is_some();
    let secret = match (mechanism.is_oauth(), has_password, has_token) {
        (false, _, false) => at.secret(
            a.password_env,
            a.password_file,
            &format!("{table}.password"),
        )?,
        (true, false, _) => match a.token_command {
            Some(argv) if a.token_env.is_none() && a.token_file.is_none() => {
                if argv.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err(ConfigError::new(at.file, "names no program")
                        .field(&format!("{table}.token_command")));
                }
                SecretRef::Command(argv)
            }
            Some(_) => {
                return Err(ConfigError::new(
                    at.file,
                    "set only one of token_env, token_file and token_command",
                )
                .field(table))
            }
            None => at.secret(a.token_env, a.token_file, &format!("{table}.token"))?,
        },
        _ => {
            return Err(ConfigError::new(
                at.file,
                "password_* goes with mechanism = \"password\", token_* with mechanism = \"xoauth2\" or \"oauthbearer\"",
            )
            .field(table))
        }
    };
    Ok((mechanism, secret))
}
