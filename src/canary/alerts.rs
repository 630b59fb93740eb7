//! Alert delivery: state changes go into a bounded queue that one task drains, posting each to
//! every configured webhook with bounded retries and backoff. Probing never waits on a webhook:
//! a full queue drops the alert (counted and logged). Webhook URLs are secrets: logs name a
//! webhook by its index and format, and HTTP errors are stripped of their URL.
//! Not here: when to alert (`core::canary::alert_state`) or what an alert says (`payload`).
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::metrics::{AlertOutcome, Metrics};
use crate::config::canary::{PayloadFormat, Webhook};
use crate::config::secret::Secret;
use crate::core::canary::payload::AlertEvent;

/// A webhook with its URL read.
#[derive(Debug, Clone)]
pub struct ResolvedWebhook {
    pub name: String,
    pub format: PayloadFormat,
    pub url: Secret,
}

/// Read every webhook's URL; the error names the webhook and the reference, never a value.
pub fn resolve(webhooks: &[Webhook]) -> Result<Vec<ResolvedWebhook>, String> {
    webhooks
        .iter()
        .map(|w| {
            let url = w.url.resolve().map_err(|e| format!("{}: {e}", w.name))?;
            reqwest::Url::parse(url.expose())
                .map_err(|_| format!("{}: the URL it references is not a valid URL", w.name))?;
            Ok(ResolvedWebhook {
                name: w.name.clone(),
                format: w.format,
                url,
            })
        })
        .collect()
}

/// How hard to try one delivery.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each further one.
    pub first_backoff: Duration,
    /// One request's own time limit.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Alerts waiting for delivery at most; past this they are dropped.
const QUEUE: usize = 64;

struct Job {
    event: AlertEvent,
    webhooks: Arc<Vec<ResolvedWebhook>>,
}

/// The probing side's handle: queue an alert without waiting.
#[derive(Clone)]
pub struct Alerts {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl Alerts {
    /// Start the delivery task. It ends when every handle is dropped and the queue is drained.
    pub fn start(
        metrics: Arc<Metrics>,
        policy: RetryPolicy,
    ) -> (Alerts, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(deliver_all(rx, Arc::clone(&metrics), policy));
        (Alerts { tx, metrics }, task)
    }

    /// Queue `event` for every webhook in `webhooks`. Never blocks.
    pub fn send(&self, event: AlertEvent, webhooks: Arc<Vec<ResolvedWebhook>>) {
        if webhooks.is_empty() {
            return;
        }
        let n = webhooks.len();
        let scenario = event.scenario.clone();
        if self.tx.try_send(Job { event, webhooks }).is_err() {
            tracing::error!(scenario, "alert queue full or closed: alert dropped");
            for _ in 0..n {
                self.metrics.alert(AlertOutcome::Dropped);
            }
        }
    }
}

async fn deliver_all(mut rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>, policy: RetryPolicy) {
    // reqwest is built without a TLS provider of its own: make sure the process has one (main
    // installs it first thing; this covers library users such as tests).
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = match reqwest::Client::builder()
        .timeout(policy.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "cannot build the webhook client: alerts disabled");
            while rx.recv().await.is_some() {
                metrics.alert(AlertOutcome::Failed);
            }
            return;
        }
    };
    while let Some(job) = rx.recv().await {
        for w in job.webhooks.iter() {
            let body = match w.format {
                PayloadFormat::Generic => job.event.generic(),
                PayloadFormat::Slack => job.event.slack(),
            };
            let outcome = deliver(&client, w, &body, policy).await;
            metrics.alert(outcome);
            if outcome == AlertOutcome::Sent {
                tracing::info!(webhook = %w.name, scenario = %job.event.scenario, transition = job.event.transition, "alert sent");
            }
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    w: &ResolvedWebhook,
    body: &serde_json::Value,
    policy: RetryPolicy,
) -> AlertOutcome {
    let bytes = body.to_string();
    let mut backoff = policy.first_backoff;
    for attempt in 1..=policy.attempts.max(1) {
        let sent = client
            .post(w.url.expose())
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await;
        let problem = match sent {
            Ok(resp) if resp.status().is_success() => return AlertOutcome::Sent,
            // A 4xx other than 429 will not get better by retrying.
            Ok(resp) if resp.status().is_client_error() && resp.status().as_u16() != 429 => {
                tracing::error!(webhook = %w.name, status = resp.status().as_u16(), "webhook refused the alert");
                return AlertOutcome::Failed;
            }
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) => e.without_url().to_string(),
        };
        tracing::warn!(webhook = %w.name, attempt, error = %problem, "alert delivery failed");
        if attempt < policy.attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    tracing::error!(webhook = %w.name, attempts = policy.attempts, "alert not delivered");
    AlertOutcome::Failed
}
