//! Where an SMTP submission's time went, step by step (connect and greeting, STARTTLS, AUTH,
//! the envelope, DATA, the message until the server's reply), and what a step that took
//! seconds usually means on a Postfix + Dovecot system. Pure: the SMTP client measures the
//! steps (`edge::smtp`); this module only names and explains them.

use serde::Serialize;

use crate::outcome::{SmtpPhase, Submission};

/// One step of a submission and how long it took (client clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepTime {
    pub step: SmtpPhase,
    pub ms: u64,
}

/// A step is worth explaining from this long on, when it is also most of the submission.
pub const SLOW_STEP_MS: u64 = 1000;

/// Add `ms` to the last step when it is `step` (several RCPTs are one envelope step), else
/// start a new one.
pub fn add_step(steps: &mut Vec<StepTime>, step: SmtpPhase, ms: u64) {
    let step = match step {
        SmtpPhase::Rcpt => SmtpPhase::Mail,
        s => s,
    };
    match steps.last_mut() {
        Some(last) if last.step == step => last.ms += ms,
        _ => steps.push(StepTime { step, ms }),
    }
}

/// The step's name as the report writes it.
pub fn step_name(step: SmtpPhase) -> &'static str {
    match step {
        SmtpPhase::Connect => "connect and greeting",
        SmtpPhase::Starttls => "STARTTLS",
        SmtpPhase::Auth => "AUTH",
        SmtpPhase::Mail | SmtpPhase::Rcpt => "envelope",
        SmtpPhase::Data => "DATA",
        SmtpPhase::Message => "message",
        SmtpPhase::HttpApi => "API request",
    }
}

/// `connect and greeting 3 ms, AUTH 4201 ms, ...`: every step, in order.
pub fn summary(steps: &[StepTime]) -> String {
    steps
        .iter()
        .map(|s| format!("{} {} ms", step_name(s.step), s.ms))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `submission` stage's detail: what it measures, and its steps when they were measured.
pub fn stage_detail(sub: &Submission) -> String {
    let what = "SMTP submission until the server accepted (client clock)";
    if sub.steps.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {}", summary(&sub.steps))
    }
}

/// Why this step can take seconds, and where to look.
fn why(step: SmtpPhase) -> &'static str {
    match step {
        SmtpPhase::Connect => {
            "the server greets late when its reverse DNS lookup of the client times out, when \
             postscreen's greet pause holds new clients, or when smtpd has no free process \
             (default_process_limit)"
        }
        SmtpPhase::Starttls => {
            "a slow TLS handshake points at the server's CPU or at a network path that drops \
             large packets (MTU)"
        }
        SmtpPhase::Auth => {
            "after failed logins from an address, Dovecot delays that address's next logins by \
             2 s up to 15 s for an hour (its auth penalty: doveadm penalty lists it; a success \
             resets it), else the password backend (SQL, LDAP, an OAuth introspection) answers \
             slowly"
        }
        SmtpPhase::Mail | SmtpPhase::Rcpt => {
            "recipient checks are slow: reject_unverified_recipient probing the next hop, a \
             policy service, or DNS blocklist lookups"
        }
        SmtpPhase::Data => "the server answered DATA late: a milter or a before-queue filter",
        SmtpPhase::Message => {
            "the server took that long to accept the message once sent: a milter or a \
             before-queue content filter (amavis, rspamd, a virus scanner) scanning it, or a \
             slow queue disk"
        }
        SmtpPhase::HttpApi => "the sending API answered slowly",
    }
}

/// A note when one step took seconds and most of the submission: which, how long, and what
/// usually causes it. `None` for a quick submission or one whose time is spread out.
pub fn slow_step_note(sub: &Submission) -> Option<String> {
    let total: u64 = sub.steps.iter().map(|s| s.ms).sum();
    let slowest = sub.steps.iter().max_by_key(|s| s.ms)?;
    if slowest.ms < SLOW_STEP_MS || slowest.ms * 2 < total {
        return None;
    }
    Some(format!(
        "the submission's {} step took {} ms of its {} ms: {}",
        step_name(slowest.step),
        slowest.ms,
        total,
        why(slowest.step)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(steps: &[(SmtpPhase, u64)]) -> Submission {
        let mut s = Vec::new();
        for &(step, ms) in steps {
            add_step(&mut s, step, ms);
        }
        Submission {
            started_at: chrono::DateTime::UNIX_EPOCH,
            accepted_at: None,
            phase: SmtpPhase::Message,
            code: Some(250),
            enhanced: None,
            text: String::new(),
            queue_id: None,
            auth_mechanism: None,
            steps: s.into_boxed_slice(),
        }
    }

    #[test]
    fn recipients_are_one_envelope_step_and_the_summary_keeps_the_order() {
        let s = sub(&[
            (SmtpPhase::Connect, 3),
            (SmtpPhase::Auth, 4),
            (SmtpPhase::Mail, 1),
            (SmtpPhase::Rcpt, 1),
            (SmtpPhase::Rcpt, 2),
            (SmtpPhase::Data, 0),
            (SmtpPhase::Message, 60),
        ]);
        assert_eq!(
            summary(&s.steps),
            "connect and greeting 3 ms, AUTH 4 ms, envelope 4 ms, DATA 0 ms, message 60 ms"
        );
    }

    #[test]
    fn a_step_of_seconds_that_is_most_of_the_submission_is_explained() {
        let slow_auth = sub(&[
            (SmtpPhase::Connect, 3),
            (SmtpPhase::Starttls, 12),
            (SmtpPhase::Auth, 4201),
            (SmtpPhase::Message, 60),
        ]);
        let note = slow_step_note(&slow_auth).expect("a note");
        assert!(
            note.starts_with("the submission's AUTH step took 4201 ms of its 4276 ms"),
            "{note}"
        );
        assert!(note.contains("doveadm penalty"), "{note}");
        let slow_filter = sub(&[(SmtpPhase::Connect, 5), (SmtpPhase::Message, 2500)]);
        assert!(slow_step_note(&slow_filter)
            .unwrap()
            .contains("content filter"));
        // Quick, or slow but spread over the steps: nothing to single out.
        assert_eq!(slow_step_note(&sub(&[(SmtpPhase::Auth, 999)])), None);
        let spread = sub(&[
            (SmtpPhase::Connect, 1100),
            (SmtpPhase::Auth, 1000),
            (SmtpPhase::Message, 1000),
        ]);
        assert_eq!(slow_step_note(&spread), None);
        assert_eq!(slow_step_note(&sub(&[])), None);
    }
}
