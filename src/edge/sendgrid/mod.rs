//! Submission of one probe through SendGrid's v3 API (`POST {base_url}/v3/mail/send`), every
//! answer turned into a [`SendOutcome`]: 202 is accepted (queued, not delivered: the accept time
//! and `X-Message-Id` are recorded), 429 and 5xx are retried within the probe's deadline, other
//! 4xx end at once. Deciding the status and finding is core's (`verdict::api_failure_code`).
//!
//! The API key is held as a [`Secret`] and only ever written into the `Authorization` header; no
//! error, log line or Debug print carries it. Not here: SMTP (SendGrid's SMTP relay is the
//! `smtp` sender with user `apikey`).
mod body;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

pub use body::{api_errors, describe_errors, mail_send_body, ApiError, PROBE_ID_ARG};

use crate::config::secret::Secret;
use crate::config::SendGridSender;
use crate::core::outcome::{AuthMechanism, SmtpPhase, Submission};
use crate::edge::smtp::SendOutcome;

/// Response bodies are read up to this much; the rest is dropped.
pub const BODY_CAP: usize = 64 * 1024;
/// Attempts per probe when SendGrid answers 429 or 5xx (or cannot be connected to).
pub const MAX_ATTEMPTS: u32 = 4;
/// The first pause before retrying a 5xx or a connection failure; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The pause after a 429 that names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Everything resolved before sending: the HTTP client (TLS set up) and the key.
pub struct Prepared {
    client: reqwest::Client,
    api_key: Secret,
    base_url: String,
    url: String,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// Build the client: the web PKI plus `extra_ca`, rustls with ring (handed in, so no process-wide
/// provider is needed), HTTP/1.1, no redirects (a redirect would carry the key elsewhere).
pub fn prepare(
    cfg: &SendGridSender,
    extra_ca: &[CertificateDer<'static>],
    api_key: Secret,
) -> Result<Prepared, String> {
    let tls = crate::edge::tls::client_config(extra_ca).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.request_timeout)
        .user_agent(concat!("flowtest/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    Ok(Prepared {
        client,
        api_key,
        base_url: cfg.base_url.clone(),
        url: format!("{}/v3/mail/send", cfg.base_url),
    })
}

/// One answer from the API (status, the headers we read, the capped body).
struct Answer {
    status: u16,
    reason: String,
    message_id: Option<String>,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// Why no answer was had.
enum NoAnswer {
    /// Nothing was sent (connect or TLS failure): safe to retry.
    Connect(String),
    /// The request may have reached SendGrid (timeout, broken connection): not retried, so a
    /// probe is never queued twice.
    Other(String),
}

/// Send `message`, every attempt bounded by the request timeout and all of them by `deadline`.
pub async fn send_until(
    cfg: &SendGridSender,
    prepared: &Prepared,
    message: &[u8],
    deadline: Instant,
) -> SendOutcome {
    let started_at = crate::clock::now();
    let body = mail_send_body(cfg, message);
    let record =
        |code: Option<u16>, text: String, accepted: Option<(DateTime<Utc>, Option<String>)>| {
            let (accepted_at, queue_id) = match accepted {
                Some((at, id)) => (Some(at), id),
                None => (None, None),
            };
            Submission {
                started_at,
                accepted_at,
                phase: SmtpPhase::HttpApi,
                code,
                enhanced: None,
                text,
                queue_id,
                // Every request carries the API key as a Bearer token.
                auth_mechanism: Some(AuthMechanism::HttpBearer),
                steps: Box::default(),
            }
        };
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let until = (crate::clock::instant() + cfg.request_timeout).min(deadline);
        let tries = if attempt > 1 {
            format!(" (attempt {attempt} of {MAX_ATTEMPTS})")
        } else {
            String::new()
        };
        let answer = match post(prepared, &body, until).await {
            Ok(a) => a,
            Err(NoAnswer::Connect(e)) => {
                if attempt < MAX_ATTEMPTS && pause(backoff, deadline).await {
                    tracing::debug!(error = %e, attempt, "SendGrid API: connect failed, retrying");
                    backoff *= 2;
                    continue;
                }
                return SendOutcome::Failed(record(None, format!("{e}{tries}"), None));
            }
            Err(NoAnswer::Other(e)) => {
                return SendOutcome::Failed(record(None, format!("{e}{tries}"), None))
            }
        };
        let code = Some(answer.status);
        match answer.status {
            200..=299 => {
                let at = crate::clock::now();
                let text = match &answer.message_id {
                    Some(id) => format!(
                        "{} (queued by SendGrid as {id}, not yet delivered)",
                        answer.reason
                    ),
                    None => format!(
                        "{} (queued by SendGrid; no X-Message-Id in the answer)",
                        answer.reason
                    ),
                };
                return SendOutcome::Accepted(record(code, text, Some((at, answer.message_id))));
            }
            429 | 500..=599 => {
                let wait = match answer.status {
                    429 => answer.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
                    _ => backoff,
                };
                if attempt < MAX_ATTEMPTS && pause(wait, deadline).await {
                    tracing::debug!(
                        status = answer.status,
                        attempt,
                        ?wait,
                        "SendGrid API: retrying"
                    );
                    backoff *= 2;
                    continue;
                }
                let why = if attempt < MAX_ATTEMPTS {
                    format!(
                        ", and waiting {} ms more would pass the probe's deadline",
                        wait.as_millis()
                    )
                } else {
                    String::new()
                };
                let text = format!("{}{}{tries}{why}", answer.reason, details(&answer.body));
                return SendOutcome::Failed(record(code, text, None));
            }
            401 | 403 => {
                let text = format!("{}{}", answer.reason, details(&answer.body));
                return SendOutcome::Failed(record(code, text, None));
            }
            _ => {
                let text = format!("{}{}", answer.reason, details(&answer.body));
                return SendOutcome::Rejected(record(code, text, None));
            }
        }
    }
}

/// Sleep `d` unless that would pass `deadline` (then return false at once).
async fn pause(d: Duration, deadline: Instant) -> bool {
    let wake = crate::clock::instant() + d;
    if wake >= deadline {
        return false;
    }
    tokio::time::sleep_until(wake).await;
    true
}

/// `: <SendGrid's errors field by field>`, or the start of a body that is not that shape.
fn details(body: &[u8]) -> String {
    let errors = api_errors(body);
    if !errors.is_empty() {
        return format!(": {}", describe_errors(&errors));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let short: String = text.chars().take(200).collect();
    format!(": {}", crate::core::text::escape_control(&short))
}

/// One POST, bounded by `until` from connect to the last body byte read.
async fn post(p: &Prepared, body: &serde_json::Value, until: Instant) -> Result<Answer, NoAnswer> {
    let json = serde_json::to_vec(body)
        .map_err(|e| NoAnswer::Other(format!("cannot encode the request: {e}")))?;
    let request = p
        .client
        .post(&p.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json);
    exchange(p, request, &p.url, until).await
}

/// What a GET answered: the status and the body up to [`BODY_CAP`].
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The status's reason phrase (`Unauthorized`).
    pub reason: String,
    pub body: Vec<u8>,
}

/// `GET {base_url}{path}` with the key (SendGrid's cheap authenticated calls, `/v3/scopes`),
/// bounded by `until` from connect to the last body byte read. The error names the URL, never
/// the key.
pub async fn get(p: &Prepared, path: &str, until: Instant) -> Result<Reply, String> {
    let url = format!("{}{path}", p.base_url);
    let request = p.client.get(&url);
    match exchange(p, request, &url, until).await {
        Ok(a) => Ok(Reply {
            status: a.status,
            reason: a.reason,
            body: a.body,
        }),
        Err(NoAnswer::Connect(e) | NoAnswer::Other(e)) => Err(e),
    }
}

/// Send `request` with the key and read the answer, all of it bounded by `until`.
async fn exchange(
    p: &Prepared,
    request: reqwest::RequestBuilder,
    url: &str,
    until: Instant,
) -> Result<Answer, NoAnswer> {
    let exchange = async {
        let resp = request
            .bearer_auth(p.api_key.expose())
            .send()
            .await
            .map_err(|e| {
                let text = error_chain(&e);
                if e.is_connect() {
                    NoAnswer::Connect(format!("cannot connect to {url}: {text}"))
                } else {
                    NoAnswer::Other(format!("request to {url} failed: {text}"))
                }
            })?;
        read_answer(resp).await
    };
    match tokio::time::timeout_at(until, exchange).await {
        Ok(r) => r,
        Err(_) => Err(NoAnswer::Other(format!(
            "no complete answer from {url} in time (the request timeout or the deadline)"
        ))),
    }
}

/// Status, the headers we use, and the body up to [`BODY_CAP`].
async fn read_answer(mut resp: reqwest::Response) -> Result<Answer, NoAnswer> {
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| crate::core::text::escape_control(s.trim()).into_owned())
    };
    let message_id = header("x-message-id").filter(|s| !s.is_empty());
    let retry_after = header("retry-after")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    while body.len() < BODY_CAP {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c[..c.len().min(BODY_CAP - body.len())]),
            Ok(None) => break,
            Err(e) => {
                return Err(NoAnswer::Other(format!(
                    "the answer ({status}) broke off: {}",
                    error_chain(&e)
                )))
            }
        }
    }
    Ok(Answer {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        message_id,
        retry_after,
        body,
    })
}

/// An error and its sources on one line (reqwest's own message alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}
