//! The server logs during and after the wait: fail fast when they show a permanent failure,
//! then fold their account of the probe into the result. Not here: following or parsing the
//! logs (edge::logwatch, core::logs) or the fusion itself (core::fusion, core::verdict).
use std::time::Duration;

use tokio::time::Instant;

use super::ports::{LogFeed, Look, LookRequests};
use super::progress::Progress;
use super::steps::{Run, Sent};
use crate::core::fusion::{HopStatus, MessageStatus, ProbeContext, ProbeTimeline};
use crate::core::outcome::client_stages;
use crate::core::verdict::{apply_timeline, header_hops};
use crate::edge::smtp::SendOutcome;

/// How often the logs are looked at while the probe is in flight: a failure the logs show
/// ends the wait at most this long after it was written (plus the time to read it). A look
/// whose refresh took in no new line skips the probe's timeline, which cannot have changed:
/// with many probes at once, that work is what a short pace would cost.
pub(super) const WATCH_EVERY: Duration = Duration::from_millis(100);
/// Time for the followers (100 ms polls) to catch the last lines before the final look: a
/// rejection is logged just before the reply we already have.
pub(super) const SETTLE: Duration = Duration::from_millis(300);

/// Whether the mailbox server's log says the probe was saved (Dovecot's own line, or Postfix's
/// LMTP hand-off that Dovecot acknowledged).
fn saved(t: &ProbeTimeline) -> bool {
    t.hops.iter().any(|h| {
        h.status == HopStatus::Saved
            || (h.status == HopStatus::Sent && h.service.as_deref() == Some("lmtp"))
    })
}

/// Poll the logs while the probe is in flight. Resolves (ending the wait) only when they show a
/// permanent failure; never resolves otherwise. Deferrals are shown in the progress line; the
/// first sign that the probe was saved asks the mailbox for a full look at once.
pub(super) async fn watch_logs(
    logs: &mut dyn LogFeed,
    probe: &ProbeContext,
    progress: &Progress,
    scenario: &str,
    looks: &LookRequests,
) {
    if logs.is_empty() {
        return std::future::pending().await;
    }
    let mut asked = false;
    let mut seen = None;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let taken = logs.refresh(false).await;
        if seen == Some(taken) {
            continue;
        }
        seen = Some(taken);
        let t = logs.timeline(probe, &[]).await;
        if !asked && saved(&t) {
            looks.request(Look::Full);
            asked = true;
        }
        match t.status {
            MessageStatus::Bounced | MessageStatus::Rejected => return,
            MessageStatus::Deferred | MessageStatus::Held => {
                let why = t
                    .findings
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                let at = t.last_host.unwrap_or_default();
                let what = t.status.as_str();
                progress.set(scenario, &format!("{what} at {at}: {why}; still waiting"));
            }
            _ => {}
        }
    }
}

impl Run<'_> {
    /// The stages from the client's own clocks and the Received hops, then the server logs'
    /// account fused over them (when logs are configured and the probe reached a server).
    /// The logs are read once [`SETTLE`] has passed since `judged`.
    pub(super) async fn fuse_logs(
        &mut self,
        logs: &mut dyn LogFeed,
        sent: &mut Sent,
        judged: Instant,
    ) {
        sent.probe.detected_at = self.result.detected_at;
        self.result.stages = client_stages(self.result.submission.as_ref(), &self.result.hops);
        let reached_a_server = matches!(
            sent.outcome,
            SendOutcome::Accepted(_) | SendOutcome::Rejected(_)
        );
        if logs.is_empty() || !reached_a_server {
            return;
        }
        tokio::time::sleep_until(judged + SETTLE).await;
        logs.refresh(true).await;
        self.result.warnings.extend(logs.warnings().await);
        let path = &self.prepared.scenario.path;
        let hops = header_hops(&self.result.hops, path);
        let timeline = logs.timeline(&sent.probe, &hops).await;
        apply_timeline(&mut self.result, timeline, path, self.detected_ms);
    }
}
