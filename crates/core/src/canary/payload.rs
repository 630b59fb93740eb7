//! What an alert says: one [`AlertEvent`] built from a verdict, rendered as a generic JSON
//! payload or as a Slack-compatible message (`text` plus blocks). Pure; the daemon posts them.
//! Not here: when to alert (`alert_state`) or delivery and retries (the daemon).
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::alert_state::Transition;
use crate::outcome::RunResult;
use crate::text::escape_control;

/// One state change of one scenario, with what explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub scenario: String,
    pub location: String,
    pub transition: &'static str,
    /// The verdict that caused the change (`delivered`, `lost`, ...).
    pub status: &'static str,
    pub probe_id: String,
    pub at: String,
    pub consecutive_failures: u32,
    /// The stage where the probe got stuck, when known.
    pub failing_stage: Option<String>,
    /// The first finding's code, message and runbook hint.
    pub finding: Option<String>,
    pub finding_message: Option<String>,
    pub hint: Option<String>,
    pub total_ms: Option<i64>,
    /// Where an incident draft was written for this failure.
    pub incident_draft: Option<String>,
}

impl AlertEvent {
    /// The event for `transition`, caused by `result`.
    pub fn new(
        transition: Transition,
        result: &RunResult,
        location: &str,
        consecutive_failures: u32,
        incident_draft: Option<String>,
    ) -> AlertEvent {
        let finding = result.findings.first();
        let failing_stage = finding
            .and_then(|f| f.stage.clone())
            .or_else(|| result.last_hop.clone())
            .filter(|_| transition == Transition::Failing);
        AlertEvent {
            scenario: result.scenario.clone(),
            location: location.to_string(),
            transition: transition.as_str(),
            status: result.status.as_str(),
            probe_id: result.probe_id.clone(),
            at: stamp(result.verdict_at),
            consecutive_failures,
            failing_stage,
            finding: finding.map(|f| f.code.as_str().to_string()),
            finding_message: finding.map(|f| f.message.clone()),
            hint: finding.map(|f| f.hint.clone()).filter(|h| !h.is_empty()),
            total_ms: result.total_ms,
            incident_draft,
        }
    }

    /// The generic payload: the event's fields as one JSON object.
    pub fn generic(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A Slack incoming-webhook message: a one-line `text` (what notifications show) and a
    /// section block with the details.
    pub fn slack(&self) -> Value {
        let icon = if self.transition == "failing" {
            ":red_circle:"
        } else {
            ":large_green_circle:"
        };
        let headline = format!(
            "{icon} flowtest {}: {} at {} ({})",
            self.transition,
            slack_escape(&self.scenario),
            slack_escape(&self.location),
            self.status
        );
        let mut lines = vec![format!("*probe* `{}` at {}", self.probe_id, self.at)];
        if let Some(s) = &self.failing_stage {
            lines.push(format!("*stage* {}", slack_escape(s)));
        }
        if let (Some(code), Some(msg)) = (&self.finding, &self.finding_message) {
            lines.push(format!("*finding* `{code}`: {}", slack_escape(msg)));
        }
        if let Some(h) = &self.hint {
            lines.push(format!("*fix* {}", slack_escape(h)));
        }
        if let Some(p) = &self.incident_draft {
            lines.push(format!("*incident draft* `{}`", slack_escape(p)));
        }
        json!({
            "text": headline,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
                {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}
            ]
        })
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Slack's three control characters in mrkdwn, plus terminal controls from server text.
fn slack_escape(s: &str) -> String {
    escape_control(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::bare_result as result;
    use crate::diagnosis::{Finding, FindingCode};
    use crate::outcome::Status;

    fn lost_with_finding() -> RunResult {
        let mut r = result("lab-inbound", Status::Lost, None);
        let mut f = Finding::new(
            FindingCode::NextHopTimeout,
            Some("ec2"),
            "dell <b> timed out",
        );
        f.hint = "check the VPN".into();
        r.findings.push(f);
        r
    }

    #[test]
    fn generic_payload_carries_the_explanation() {
        let e = AlertEvent::new(
            Transition::Failing,
            &lost_with_finding(),
            "onprem",
            3,
            Some("/var/lib/flowtest/incidents/x.md".into()),
        );
        let v = e.generic();
        assert_eq!(v["transition"], "failing");
        assert_eq!(v["status"], "lost");
        assert_eq!(v["scenario"], "lab-inbound");
        assert_eq!(v["location"], "onprem");
        assert_eq!(v["failing_stage"], "ec2");
        assert_eq!(v["finding"], "next_hop_timeout");
        assert_eq!(v["hint"], "check the VPN");
        assert_eq!(v["consecutive_failures"], 3);
        assert_eq!(v["incident_draft"], "/var/lib/flowtest/incidents/x.md");
        assert_eq!(v["at"], "2026-11-29T06:00:00Z");
    }

    #[test]
    fn recovery_names_no_failing_stage() {
        let e = AlertEvent::new(Transition::Recovered, &lost_with_finding(), "x", 0, None);
        assert_eq!(e.generic()["failing_stage"], Value::Null);
        assert_eq!(e.generic()["transition"], "recovered");
    }

    #[test]
    fn slack_payload_has_text_and_escaped_blocks() {
        let e = AlertEvent::new(Transition::Failing, &lost_with_finding(), "onprem", 2, None);
        let v = e.slack();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.contains("failing") && text.contains("lab-inbound"),
            "{text}"
        );
        let details = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(details.contains("`next_hop_timeout`"), "{details}");
        assert!(details.contains("dell &lt;b&gt; timed out"), "{details}");
        assert!(details.contains("*fix* check the VPN"), "{details}");
        assert_eq!(v["blocks"].as_array().unwrap().len(), 2);
    }
}
