//! The stand-in's HTTP side: `POST /v3/mail/send` (auth, SendGrid-shaped validation and errors,
//! 202 + `X-Message-Id`, the switchable failures) and `GET /v3/scopes` (a cheap authenticated
//! call). Accepted mail is handed to the relay. Not here: SMTP.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::relay::{Mail, Relay};
use crate::Behaviour;

/// SendGrid's own limit for one request.
const BODY_LIMIT: usize = 30 * 1024 * 1024;
const HELP: &str = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message";
/// Headers SendGrid does not take in `headers`.
const RESERVED: &[&str] = &[
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
];

pub struct State {
    key: String,
    behaviour: Behaviour,
    delay: Duration,
    relay: Option<Relay>,
    requests: AtomicU64,
}

impl State {
    pub fn new(key: String, behaviour: Behaviour, delay: Duration, relay: Option<Relay>) -> Self {
        State {
            key,
            behaviour,
            delay,
            relay,
            requests: AtomicU64::new(0),
        }
    }
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v3/mail/send", post(mail_send))
        .route("/v3/scopes", get(scopes))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// One entry of SendGrid's error list.
struct ApiError {
    field: Option<String>,
    message: String,
    help: Option<String>,
}

fn error(field: Option<&str>, message: impl Into<String>, anchor: Option<&str>) -> ApiError {
    ApiError {
        field: field.map(str::to_string),
        message: message.into(),
        help: anchor.map(|a| format!("{HELP}.{a}")),
    }
}

fn errors_response(status: StatusCode, errors: &[ApiError]) -> Response {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| json!({"field": e.field, "message": e.message, "help": e.help}))
        .collect();
    (status, axum::Json(json!({ "errors": list }))).into_response()
}

/// The answer SendGrid gives when the Bearer key is missing or wrong; None when it is right.
fn auth_refusal(state: &State, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Some(errors_response(
            StatusCode::UNAUTHORIZED,
            &[error(None, "authorization required", None)],
        )),
        Some(k) if k.trim() == state.key && state.behaviour != Behaviour::Unauthorized => None,
        Some(_) => Some(errors_response(
            StatusCode::UNAUTHORIZED,
            &[error(
                None,
                "The provided authorization grant is invalid, expired, or revoked",
                None,
            )],
        )),
    }
}

/// The 403 SendGrid gives a valid key that lacks the call's scope.
fn forbidden() -> Response {
    errors_response(
        StatusCode::FORBIDDEN,
        &[error(None, "access forbidden", None)],
    )
}

/// The key's scopes, as SendGrid lists them; `--behaviour slow` answers after `--delay` here too.
async fn scopes(AxState(state): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(r) = auth_refusal(&state, &headers) {
        return r;
    }
    let scopes: &[&str] = match state.behaviour {
        Behaviour::Forbidden => return forbidden(),
        Behaviour::NoMailSendScope => &["alerts.read", "stats.read", "user.profile.read"],
        Behaviour::Slow => {
            tokio::time::sleep(state.delay).await;
            &["mail.send", "user.profile.read"]
        }
        _ => &["mail.send", "user.profile.read"],
    };
    axum::Json(json!({ "scopes": scopes })).into_response()
}

async fn mail_send(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = state.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = auth_refusal(&state, &headers) {
        return r;
    }
    match state.behaviour {
        Behaviour::NoMailSendScope | Behaviour::Forbidden => return forbidden(),
        Behaviour::ServerError => {
            return errors_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &[error(
                    None,
                    "internal server error (lab: --behaviour server-error)",
                    None,
                )],
            )
        }
        Behaviour::RateLimitOnce if n == 0 => {
            let mut r = errors_response(
                StatusCode::TOO_MANY_REQUESTS,
                &[error(None, "too many requests", None)],
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return r;
        }
        Behaviour::BadRequest => {
            return errors_response(
                StatusCode::BAD_REQUEST,
                &[
                    error(
                        Some("from"),
                        "The from address does not match a verified Sender Identity.",
                        Some("from"),
                    ),
                    error(
                        Some("personalizations.0.to.0.email"),
                        "Does not contain a valid address.",
                        Some("personalizations.to"),
                    ),
                ],
            )
        }
        Behaviour::Slow => tokio::time::sleep(state.delay).await,
        _ => {}
    }
    let mail = match validate(&body) {
        Ok(m) => m,
        Err(errors) => return errors_response(StatusCode::BAD_REQUEST, &errors),
    };
    let id = message_id();
    tracing::info!(%id, to = ?mail.to, "accepted");
    if let Some(relay) = &state.relay {
        relay.spawn(mail, id.clone(), flowtest::clock::now());
    }
    let mut r = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-message-id", v);
    }
    r
}

/// 22 characters of URL-safe base64, like SendGrid's message ids.
fn message_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::now_v7().as_bytes())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().filter(|s| !s.trim().is_empty())
}

fn valid_email(s: &str) -> bool {
    let mut parts = s.rsplitn(2, '@');
    let domain = parts.next().unwrap_or("");
    let local = parts.next().unwrap_or("");
    !local.is_empty() && domain.contains('.') && !s.contains([' ', '<', '>', '\r', '\n'])
}

/// The request checked field by field, as SendGrid does; every problem is listed.
fn validate(body: &[u8]) -> Result<Mail, Vec<ApiError>> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Err(vec![error(None, "Bad Request", None)]);
    };
    let mut errs = Vec::new();
    let mut to = Vec::new();
    match v.get("personalizations").and_then(Value::as_array) {
        Some(ps) if !ps.is_empty() => {
            for (i, p) in ps.iter().enumerate() {
                let list = p
                    .get("to")
                    .and_then(Value::as_array)
                    .filter(|l| !l.is_empty());
                let Some(list) = list else {
                    errs.push(error(Some(&format!("personalizations.{i}.to")), "The to array is required for all personalization objects, and must have at least one email object with a valid email address.", Some("personalizations.to")));
                    continue;
                };
                for (j, t) in list.iter().enumerate() {
                    match str_at(t, &["email"]) {
                        Some(e) if valid_email(e) => to.push(e.to_string()),
                        _ => errs.push(error(
                            Some(&format!("personalizations.{i}.to.{j}.email")),
                            "Does not contain a valid address.",
                            Some("personalizations.to"),
                        )),
                    }
                }
            }
        }
        _ => errs.push(error(
            Some("personalizations"),
            "The personalizations field is required and must have at least one personalization.",
            Some("personalizations"),
        )),
    }
    let from = str_at(&v, &["from", "email"]).filter(|e| valid_email(e));
    if from.is_none() {
        errs.push(error(Some("from.email"), "The from object must be provided for every email send. It is an object that requires an email parameter, but may also contain a name parameter.", Some("from")));
    }
    let subject = str_at(&v, &["subject"]);
    if subject.is_none() {
        errs.push(error(Some("subject"), "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.", Some("subject")));
    }
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let text = content.and_then(|c| c.get("value")).and_then(Value::as_str);
    if text.is_none() {
        errs.push(error(Some("content"), "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.", Some("content")));
    }
    let mut headers = Vec::new();
    if let Some(h) = v.get("headers") {
        match h.as_object() {
            Some(map) => {
                for (name, value) in map {
                    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
                        errs.push(error(Some("headers"), format!("The {name} header is reserved and cannot be set in headers; use the request's own field for it."), Some("headers")));
                    } else if let Some(s) = value.as_str().filter(|s| !s.contains(['\r', '\n'])) {
                        headers.push((name.clone(), s.to_string()));
                    } else {
                        errs.push(error(Some(&format!("headers.{name}")), "Invalid type. Expected: string, given: something else (or a line break).", Some("headers")));
                    }
                }
            }
            None => errs.push(error(
                Some("headers"),
                "Invalid type. Expected: object.",
                Some("headers"),
            )),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Mail {
        from: from.unwrap_or_default().to_string(),
        from_name: str_at(&v, &["from", "name"]).map(str::to_string),
        to,
        subject: subject.unwrap_or_default().to_string(),
        text: text.unwrap_or_default().to_string(),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_lists_every_problem_field_by_field() {
        let errs = validate(
            br#"{"personalizations":[{"to":[{"email":"nope"}]}],"headers":{"Subject":"x"}}"#,
        )
        .err()
        .unwrap();
        let fields: Vec<_> = errs
            .iter()
            .map(|e| e.field.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            fields,
            [
                "personalizations.0.to.0.email",
                "from.email",
                "subject",
                "content",
                "headers"
            ]
        );
        let ok = validate(br#"{"personalizations":[{"to":[{"email":"a@corp.test"}]}],"from":{"email":"s@provider.test"},"subject":"s","content":[{"type":"text/plain","value":"b"}],"headers":{"X-Flowtest-Id":"1"}}"#).ok().unwrap();
        assert_eq!(ok.to, ["a@corp.test"]);
        assert_eq!(ok.headers, [("X-Flowtest-Id".to_string(), "1".to_string())]);
    }
}
