//! The introspection endpoint: `POST /introspect` with the token in a form body (RFC 7662, what
//! Dovecot's `introspection_mode = post` sends), `GET /introspect?token=...` (`get`), and
//! `GET /userinfo` with `Authorization: Bearer` (`auth`). Every answer is 200 with the RFC's JSON:
//! active with the user and scope, or `{"active":false}`. Tokens are never logged; a request is
//! logged with the user it resolved to, or "inactive". Not here: serving (lab-common/serve.rs).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

/// How long an issued token claims to live (`exp`), from the moment it is introspected.
const LIFETIME_SECS: i64 = 3600;

pub struct State {
    pub tokens: PathBuf,
    pub expired_flag: Option<PathBuf>,
    pub scope: String,
}

/// One issued token and the user it belongs to.
#[derive(Debug, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    pub user: String,
}

/// The tokens file: one `TOKEN USER` per line; blank lines and `#` comments are skipped, any
/// other line is an error naming its number (never its content: it holds a token).
pub fn read_tokens(path: &Path) -> Result<Vec<Issued>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_tokens(&text)
        .map_err(|line| format!("{}: line {line} is not `TOKEN USER`", path.display()))
}

fn parse_tokens(text: &str) -> Result<Vec<Issued>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(token), Some(user), None) => out.push(Issued {
                token: token.to_string(),
                user: user.to_string(),
            }),
            _ => return Err(i + 1),
        }
    }
    Ok(out)
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/introspect", post(by_form).get(by_query))
        .route("/userinfo", get(by_header))
        .with_state(state)
}

/// The `token` field of an `application/x-www-form-urlencoded` body or query string.
fn token_field(encoded: &[u8]) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

async fn by_form(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    answer(&state, token_field(&body))
}

async fn by_query(AxState(state): AxState<Arc<State>>, RawQuery(q): RawQuery) -> Response {
    answer(&state, q.and_then(|q| token_field(q.as_bytes())))
}

async fn by_header(AxState(state): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    answer(&state, token)
}

/// The user an active token belongs to; None when it is unknown, or every token is expired.
fn active_user(state: &State, token: &str) -> Result<Option<String>, String> {
    if state.expired_flag.as_deref().is_some_and(Path::exists) {
        return Ok(None);
    }
    Ok(read_tokens(&state.tokens)?
        .into_iter()
        .find(|i| i.token == token)
        .map(|i| i.user))
}

fn answer(state: &State, token: Option<String>) -> Response {
    let user = match token.as_deref().map(|t| active_user(state, t)) {
        Some(Ok(u)) => u,
        Some(Err(e)) => {
            tracing::error!("{e}");
            None
        }
        None => {
            tracing::info!("introspection without a token: inactive");
            None
        }
    };
    match user {
        Some(user) => {
            tracing::info!(%user, "introspection: active");
            let exp = flowtest::clock::now().timestamp() + LIFETIME_SECS;
            axum::Json(json!({
                "active": true,
                "username": user,
                "email": user,
                "scope": state.scope,
                "token_type": "Bearer",
                "client_id": "flowtest-lab",
                "exp": exp,
            }))
            .into_response()
        }
        None => {
            if token.is_some() {
                tracing::info!("introspection: inactive");
            }
            axum::Json(json!({ "active": false })).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lines_parse_and_a_bad_line_is_named_by_number() {
        let t = parse_tokens("# issued\n\nya29.a alice@corp.test\n  ya29.b probe@provider.test \n")
            .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].user, "probe@provider.test");
        assert_eq!(parse_tokens("ya29.a\n"), Err(1));
        assert_eq!(parse_tokens("ok u\nx y z\n"), Err(2));
    }

    #[test]
    fn the_token_is_read_from_a_form_or_query() {
        assert_eq!(
            token_field(b"token=ya29.x%2By&token_type_hint=access_token").as_deref(),
            Some("ya29.x+y")
        );
        assert_eq!(token_field(b"other=1"), None);
    }
}
