//! The steps of one run, in order: open the mailbox and arm detection, follow the logs, submit
//! the probe, then judge what came of it. Waiting (wait.rs), log fusion (logs.rs) and cleanup
//! (cleanup.rs) are steps of the same [`Run`] in their own files. Not here: what a status means
//! (core::verdict decides).
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::ports::{ArmedWait, LogFeed, MailboxSession, ResumePoints};
use super::{Prepared, Runner};
use crate::clock;
use crate::config::Scenario;
use crate::core::diagnosis::FindingCode;
use crate::core::fusion::ProbeContext;
use crate::core::outcome::{RunResult, SloReport, Submission};
use crate::core::probe::{ProbeMessage, ProbeTag};
use crate::core::trace::{trace_message, TraceOptions};
use crate::core::verdict::{
    add_host_findings, arrival_status, finding, fresh_result, missing_stages_finding,
    submission_verdict, ArrivalFacts, StatusDecision, SubmitFailure,
};
use crate::edge::imap::{Arrival, FetchError};
use crate::edge::smtp::{SendOutcome, Submitted};

/// How far back the logs are searched for why a mailbox could not be read.
const HOST_FINDINGS_LOOKBACK: Duration = Duration::from_secs(20);
/// Cleanup comes after the verdict, so it is not bounded by the probe's deadline; it gets this
/// long, logout included.
const CLEANUP_GRACE: Duration = Duration::from_secs(5);

/// The finding for a mailbox that could not be read. Only a `NO` to LOGIN is the credentials'
/// fault, unless Dovecot says the user holds too many connections already (the password was
/// accepted); a server that sends `BYE` or garbage has its own code, never `imap_auth_failed`.
fn mailbox_failure_code(e: &FetchError) -> FindingCode {
    match e {
        FetchError::Auth(m) if flowtest_core::logs::over_userip_limit(m) => {
            FindingCode::ImapConnectionLimit
        }
        FetchError::Auth(_) => FindingCode::ImapAuthFailed,
        FetchError::TokenRefused(_) => FindingCode::ProviderAuthFailed,
        FetchError::Tls(_) => FindingCode::TlsError,
        FetchError::Refused(_) | FetchError::Protocol(_) => FindingCode::ImapProtocolError,
        FetchError::Connect(_) | FetchError::Timeout(_) => FindingCode::ServiceError,
    }
}

/// One run in progress: the runner's shared parts, the scenario, and the result being built.
pub(super) struct Run<'r> {
    pub(super) runner: &'r Runner,
    pub(super) prepared: &'r Prepared,
    pub(super) id: Uuid,
    /// The probe's one deadline: the scenario's timeout (or `--timeout`) from the run's start.
    /// Every network step up to the verdict ends by then.
    pub(super) deadline: Instant,
    pub(super) result: RunResult,
    /// Submission start to the moment the probe was fetched (`total_ms` may end a little
    /// earlier: see `Arrival::arrived_instant`); None until it arrived.
    pub(super) detected_ms: Option<i64>,
}

/// Detection armed, with where a reconnection must resume looking.
pub(super) struct ArmedMailbox {
    pub(super) armed: Box<dyn ArmedWait>,
    pub(super) resume: ResumePoints,
    /// Whether the session pushes news (IDLE): the backstop's pace depends on it.
    pub(super) idle: bool,
}

/// The probe as submitted.
pub(super) struct Sent {
    pub(super) outcome: SendOutcome,
    /// Monotonic submission start: latencies are measured from it.
    pub(super) started: Instant,
    /// Monotonic end of the wait for arrival.
    pub(super) deadline: Instant,
    /// What fusion needs to find the probe in the logs.
    pub(super) probe: ProbeContext,
}

impl<'r> Run<'r> {
    pub(super) fn new(runner: &'r Runner, prepared: &'r Prepared, id: Uuid) -> Run<'r> {
        let s = &prepared.scenario;
        let timeout = runner.timeout_override.unwrap_or(s.timeout);
        let result = fresh_result(
            &s.name,
            &id.to_string(),
            runner.clock.now(),
            SloReport {
                target_ms: s.slo.target.map(clock::millis),
                max_ms: s.slo.max.map(clock::millis),
            },
            clock::millis(timeout),
        );
        Run {
            runner,
            prepared,
            id,
            deadline: runner.clock.instant() + timeout,
            result,
            detected_ms: None,
        }
    }

    pub(super) fn scenario(&self) -> &'r Scenario {
        &self.prepared.scenario
    }

    pub(super) fn progress(&self, what: &str) {
        self.runner.progress.set(&self.scenario().name, what);
    }

    /// Log in and arm detection before anything is sent. `None` when the mailbox cannot be read:
    /// the result then says why (`fetch_failed`).
    pub(super) async fn open_and_arm(&mut self) -> Option<ArmedMailbox> {
        self.progress("logging in to the mailbox");
        let session = match self.prepared.mailbox.open(&[], self.deadline).await {
            Ok(m) => m,
            Err(e) => return self.fetch_failed(&e).await,
        };
        self.result.imap_auth_mechanism = session.auth_mechanism();
        if self.scenario().receiver.idle && !session.uses_idle() {
            self.result
                .warnings
                .push("the IMAP server does not offer IDLE: polling instead".into());
        }
        let resume = session.resume_points();
        let idle = session.uses_idle();
        match session
            .arm(self.runner.installation.clone(), self.id, self.deadline)
            .await
        {
            Ok(armed) => Some(ArmedMailbox {
                armed,
                resume,
                idle,
            }),
            Err(e) => self.fetch_failed(&e).await,
        }
    }

    /// Start following the server logs (right before sending).
    pub(super) fn follow_logs(&mut self) -> Box<dyn LogFeed> {
        let (logs, warnings) = self.runner.logs.follow();
        self.result.warnings.extend(warnings);
        logs
    }

    /// Tag, record as pending, render and submit the probe.
    pub(super) async fn submit(&mut self) -> Sent {
        let s = self.scenario();
        let domain = &self.runner.installation.domain;
        let tag =
            ProbeTag::new(self.id, &s.name, self.runner.clock.now()).to(s.sender.recipients());
        self.result.sent_at = tag.sent_at;
        if let Err(e) = self.runner.store.record_pending(&self.result) {
            self.result.warnings.push(e.to_string());
        }
        self.progress("sending");
        let message = ProbeMessage {
            tag: &tag,
            domain,
            header_from: s.sender.header_from(),
            header_to: s.sender.header_to(),
            extra_headers: &s.headers,
        }
        .render(&self.runner.installation.key);
        // The submission (and `total_ms`) starts with the conversation, not with a wait for
        // a connection shared with the run's other probes.
        let Submitted { outcome, started } =
            self.prepared.sender.send(&message, self.deadline).await;
        let sub: Submission = outcome.submission().clone();
        if let Some(note) = crate::core::submission_steps::slow_step_note(&sub) {
            self.result.notes.push(note);
        }
        self.result.submission = Some(sub.clone());
        self.result.accepted_at = sub.accepted_at;
        Sent {
            deadline: self.deadline,
            started,
            probe: ProbeContext {
                message_id: tag.message_id(domain),
                mail_from: s.sender.mail_from().to_string(),
                rcpt_to: s.sender.recipients().to_vec(),
                submitted_at: sub.started_at,
                accepted_at: sub.accepted_at,
                detected_at: None,
                submission_queue_id: sub.queue_id.clone(),
                expected_hosts: Vec::new(),
            },
            outcome,
        }
    }

    /// Clean up within [`CLEANUP_GRACE`]; past it the session is dropped and the note says so.
    pub(super) async fn clean_up_bounded(
        &mut self,
        session: Option<Box<dyn MailboxSession>>,
        own: Option<&Arrival>,
    ) {
        let cleaned = tokio::time::timeout(CLEANUP_GRACE, self.clean_up(session, own)).await;
        if cleaned.is_err() {
            self.result.cleanup.note = Some(format!(
                "cleanup did not finish within {} s and was abandoned",
                CLEANUP_GRACE.as_secs()
            ));
        }
    }

    /// The status from the submission's outcome and what arrived.
    pub(super) fn judge(&mut self, sent: &Sent, arrival: Option<&Arrival>) {
        match &sent.outcome {
            SendOutcome::Rejected(sub) => {
                self.apply(submission_verdict(SubmitFailure::Rejected, sub));
            }
            SendOutcome::Failed(sub) => {
                self.apply(submission_verdict(SubmitFailure::Failed, sub));
            }
            SendOutcome::Accepted(_) => match arrival {
                Some(a) => self.record_arrival(a, sent.started),
                None => self.apply(arrival_status(None, &[], None)),
            },
        }
    }

    fn apply(&mut self, d: StatusDecision) {
        self.result.status = d.status;
        self.result.findings.extend(d.finding);
    }

    /// Detection facts, the Received trace, and the status they decide.
    fn record_arrival(&mut self, a: &Arrival, started: Instant) {
        let s = self.scenario();
        let r = &mut self.result;
        r.detected_at = Some(a.detected_at);
        r.detected_by = Some(a.detected_by);
        r.folder = Some(a.seen.folder.clone());
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        r.total_ms = Some(ms(a.arrived_instant().saturating_duration_since(started)));
        self.detected_ms = Some(ms(a.detected_instant.saturating_duration_since(started)));
        let options = TraceOptions {
            now: self.runner.clock.now(),
            fetched_at: Some(a.detected_at),
            stages: &s.path,
        };
        match trace_message(&a.raw, &options) {
            Ok(t) => {
                r.hops = t.hops;
                r.missing_stages = t.missing_stages;
                r.warnings.extend(t.warnings);
            }
            Err(e) => r.warnings.push(format!("trace: {e:?}")),
        }
        r.findings.extend(missing_stages_finding(&r.missing_stages));
        let facts = ArrivalFacts {
            folder: &a.seen.folder,
            bounce: a.seen.bounce,
            total_ms: r.total_ms,
        };
        // A folder found by its special use is junk when its configured entry is.
        let junk_by_use = a
            .seen
            .configured_as
            .as_ref()
            .filter(|c| s.receiver.junk_folders.contains(c))
            .map(|_| vec![a.seen.folder.clone()]);
        let d = arrival_status(
            Some(&facts),
            junk_by_use.as_deref().unwrap_or(&s.receiver.junk_folders),
            s.slo.target.map(clock::millis),
        );
        self.apply(d);
    }

    /// The mailbox could not be read. Say why, in the logs' words when they know more (a
    /// Dovecot "Permission denied" behind a SELECT failure, an auth backend error behind a
    /// login). Always `None`: nothing is armed.
    async fn fetch_failed<T>(&mut self, e: &FetchError) -> Option<T> {
        let r = &mut self.result;
        r.status = crate::core::outcome::Status::FetchFailed;
        r.verdict_at = self.runner.clock.now();
        let code = mailbox_failure_code(e);
        r.findings.push(finding(
            code,
            Some("mailbox"),
            e.to_string(),
            vec![e.to_string()],
        ));
        if self.runner.logs.is_empty() {
            return None;
        }
        let (mut found, warnings) = self
            .runner
            .logs
            .recent_host_findings(HOST_FINDINGS_LOOKBACK)
            .await;
        // A refused token is also a failed login in the server's log: the same cause, not a
        // password problem besides.
        if code == FindingCode::ProviderAuthFailed {
            found.retain(|f| f.code != FindingCode::ImapAuthFailed);
        }
        let r = &mut self.result;
        r.warnings.extend(warnings);
        add_host_findings(r, found, code, &self.prepared.scenario.path);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `NO` to LOGIN is the password's fault, but not Dovecot's refusal over the user's
    /// connections (`[UNAVAILABLE]`, the password accepted).
    #[test]
    fn a_login_refused_over_the_connection_limit_is_not_a_wrong_password() {
        let over = "[UNAVAILABLE] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)";
        assert_eq!(
            mailbox_failure_code(&FetchError::Auth(over.into())),
            FindingCode::ImapConnectionLimit
        );
        assert_eq!(
            mailbox_failure_code(&FetchError::Auth(
                "[AUTHENTICATIONFAILED] Authentication failed.".into()
            )),
            FindingCode::ImapAuthFailed
        );
    }
}
