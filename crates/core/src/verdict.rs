//! The pure decisions of one probe run: its status from what arrived (or did not), the finding a
//! failed submission gets, how the logs' timeline folds into the result, and what cleanup may
//! delete. Not here: any I/O or clock read (the runner gathers the facts and applies the answers),
//! nor log fusion itself (fusion.rs).
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::diagnosis::{classify_smtp_reply, classify_text, Finding, FindingCode};
use crate::fusion::{HeaderHop, HopStatus, MessageStatus, ProbeTimeline};
use crate::outcome::{
    AuthMechanism, CleanupReport, RunResult, SloReport, SmtpPhase, Status, Submission,
};
use crate::trace::{Hop, StageMatcher};

/// A run's result before anything is known: `lost` until shown otherwise, stamped `now`.
pub fn fresh_result(
    scenario: &str,
    probe_id: &str,
    now: DateTime<Utc>,
    slo: SloReport,
    timeout_ms: u64,
) -> RunResult {
    RunResult {
        scenario: scenario.to_string(),
        probe_id: probe_id.to_string(),
        status: Status::Lost,
        sent_at: now,
        accepted_at: None,
        detected_at: None,
        total_ms: None,
        delivered_ms: None,
        imap_commands: None,
        folder: None,
        detected_by: None,
        submission: None,
        imap_auth_mechanism: None,
        stages: Vec::new(),
        hops: Vec::new(),
        missing_stages: Vec::new(),
        findings: Vec::new(),
        log_status: None,
        last_hop: None,
        skew: Vec::new(),
        notes: Vec::new(),
        verdict_at: now,
        slo,
        timeout_ms,
        cleanup: CleanupReport::default(),
        warnings: Vec::new(),
    }
}

/// A finding with a stage and evidence, as the runner reports its own observations.
pub fn finding(
    code: FindingCode,
    stage: Option<&str>,
    message: String,
    evidence: Vec<String>,
) -> Finding {
    let mut f = Finding::new(code, None, message);
    f.stage = stage.map(str::to_string);
    f.evidence = evidence;
    f
}

/// What the mailbox showed of the probe.
#[derive(Debug, Clone, Copy)]
pub struct ArrivalFacts<'a> {
    /// The folder it was found in.
    pub folder: &'a str,
    /// A bounce quoting the probe arrived rather than the probe itself.
    pub bounce: bool,
    /// Submission start to detection, monotonic milliseconds.
    pub total_ms: Option<i64>,
}

/// A status and the finding that explains it (none for a plain delivery, a slow one, or a loss).
#[derive(Debug, Clone)]
pub struct StatusDecision {
    pub status: Status,
    pub finding: Option<Finding>,
}

/// The status of an accepted probe: bounced, filed as spam, slower than the SLO target,
/// delivered, or (nothing arrived) lost. A bounce wins over the folder; the folder over speed.
pub fn arrival_status(
    arrival: Option<&ArrivalFacts>,
    junk_folders: &[String],
    slo_target_ms: Option<u64>,
) -> StatusDecision {
    let Some(a) = arrival else {
        return StatusDecision {
            status: Status::Lost,
            finding: None,
        };
    };
    if a.bounce {
        return StatusDecision {
            status: Status::Bounced,
            finding: Some(finding(
                FindingCode::BouncedOther,
                None,
                format!("a bounce of the probe arrived in {}", a.folder),
                Vec::new(),
            )),
        };
    }
    if junk_folders.iter().any(|j| j == a.folder) {
        return StatusDecision {
            status: Status::DeliveredSpam,
            finding: Some(finding(
                FindingCode::SpamFolder,
                Some("mailbox"),
                format!("the probe was filed into {}", a.folder),
                Vec::new(),
            )),
        };
    }
    let slow = slo_target_ms.is_some_and(|t| a.total_ms.unwrap_or(0) > t as i64);
    StatusDecision {
        status: if slow {
            Status::Slow
        } else {
            Status::Delivered
        },
        finding: None,
    }
}

/// The finding for stages of the expected path the probe did not pass, if any.
pub fn missing_stages_finding(missing: &[String]) -> Option<Finding> {
    if missing.is_empty() {
        return None;
    }
    Some(finding(
        FindingCode::UnexpectedPath,
        None,
        format!(
            "the probe did not pass the expected stage(s): {}",
            missing.join(", ")
        ),
        Vec::new(),
    ))
}

/// The server's reply as one evidence line: `550 5.7.1 text`, or the error when there was none.
pub fn reply_line(s: &Submission) -> String {
    match s.code {
        Some(c) => format!("{c} {}", s.text),
        None => s.text.clone(),
    }
}

/// How a submission that did not end in acceptance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitFailure {
    /// The server answered 4xx/5xx to the envelope or the data.
    Rejected,
    /// No verdict from a server: connection, TLS, AUTH, protocol, timeout.
    Failed,
}

/// Why a submission could not happen at all: the phase where it stopped first, then the reply
/// code, then the error's words (a TLS or certificate problem), else the next hop refused.
pub fn send_failure_code(sub: &Submission) -> FindingCode {
    match (sub.phase, sub.code) {
        (SmtpPhase::HttpApi, code) => api_failure_code(code),
        // An OAuth 2 token, not a password, was refused: the mechanism says so, and so does the
        // SMTP edge's mark on the decoded error challenge. A provider's account refused at
        // AUTH whatever the password (SendGrid's `451 Authentication failed: Maximum credits
        // exceeded`) is the provider's too: its words say so.
        (SmtpPhase::Auth, _)
            if sub.auth_mechanism.is_some_and(AuthMechanism::is_oauth)
                || sub.text.contains(XOAUTH2_REFUSAL)
                || sub.text.contains(OAUTHBEARER_REFUSAL)
                || classify_text(&sub.text) == Some(FindingCode::ProviderAuthFailed) =>
        {
            FindingCode::ProviderAuthFailed
        }
        (SmtpPhase::Auth, _) => FindingCode::AuthFailed,
        (SmtpPhase::Starttls, _) => FindingCode::TlsError,
        (_, Some(c)) => classify_smtp_reply(c, sub.enhanced.as_deref(), &sub.text),
        _ => {
            let text = sub.text.to_ascii_lowercase();
            if text.contains("tls") || text.contains("certificate") {
                FindingCode::TlsError
            } else {
                FindingCode::NextHopRefused
            }
        }
    }
}

/// What the SMTP edge writes into a submission's text when a server refused an XOAUTH2 token.
pub const XOAUTH2_REFUSAL: &str = "XOAUTH2 error:";
/// The same for an OAUTHBEARER token.
pub const OAUTHBEARER_REFUSAL: &str = "OAUTHBEARER error:";

/// The finding for a mail-sending API's answer (an HTTP status; none: no answer at all, i.e. a
/// connection failure or a timeout).
pub fn api_failure_code(status: Option<u16>) -> FindingCode {
    match status {
        Some(401 | 403) => FindingCode::ProviderAuthFailed,
        Some(413) => FindingCode::MessageTooLarge,
        Some(429) => FindingCode::RateLimited,
        Some(400..=499) => FindingCode::ProviderRequestInvalid,
        _ => FindingCode::ProviderUnavailable,
    }
}

/// The status and finding of a submission that was not accepted.
pub fn submission_verdict(how: SubmitFailure, sub: &Submission) -> StatusDecision {
    let (status, code, message) = match how {
        SubmitFailure::Rejected if sub.phase == SmtpPhase::HttpApi => (
            Status::Rejected,
            api_failure_code(sub.code),
            format!("the sending API refused the probe: {}", reply_line(sub)),
        ),
        SubmitFailure::Rejected => (
            Status::Rejected,
            classify_smtp_reply(sub.code.unwrap_or(0), sub.enhanced.as_deref(), &sub.text),
            format!(
                "the sending server refused the probe at {:?}: {}",
                sub.phase,
                reply_line(sub)
            ),
        ),
        SubmitFailure::Failed => (
            Status::SendFailed,
            send_failure_code(sub),
            format!("could not submit the probe ({:?}): {}", sub.phase, sub.text),
        ),
    };
    StatusDecision {
        status,
        finding: Some(finding(
            code,
            Some("submission"),
            message,
            vec![reply_line(sub)],
        )),
    }
}

/// Add host-level findings from the logs to a mailbox failure's result: failures other than the
/// one already reported (`reported`), each once, named by the stage of its host.
pub fn add_host_findings(
    result: &mut RunResult,
    found: Vec<Finding>,
    reported: FindingCode,
    path: &[StageMatcher],
) {
    for mut f in found {
        if f.code != reported
            && f.code.is_failure()
            && !result.findings.iter().any(|x| x.code == f.code)
        {
            f.stage = f.host.as_deref().map(|h| stage_for_role(h, path));
            result.findings.push(f);
        }
    }
}

/// The Received hops as fusion wants them: oldest first, with the log role of their stage.
pub fn header_hops(hops: &[Hop], path: &[StageMatcher]) -> Vec<HeaderHop> {
    hops.iter()
        .map(|h| HeaderHop {
            by: h.by.clone(),
            role: h
                .stage
                .as_ref()
                .and_then(|st| path.iter().find(|m| &m.stage == st))
                .and_then(|m| m.role.clone()),
            timestamp: h.timestamp.as_ref().map(|t| t.utc),
            stage: h.stage.clone(),
        })
        .collect()
}

/// Stage name for a log role (`ec2` -> `ec2-mx` when a path stage says `role = "ec2"`).
pub fn stage_for_role(role: &str, path: &[StageMatcher]) -> String {
    path.iter()
        .find(|m| m.role.as_deref() == Some(role))
        .map(|m| m.stage.clone())
        .unwrap_or_else(|| role.to_string())
}

/// Fold the logs' timeline into the result: log-derived stages replace header arithmetic where
/// the logs cover the probe; their findings (deferrals on the way included) join the result's;
/// a probe that did not arrive takes the logs' verdict (bounced, rejected) or names where it
/// was last seen. `detected_ms`: submission start to the moment flowtest fetched the probe
/// (where fusion's `detect` stage ends; `total_ms` may end a little before it); None when the
/// probe did not arrive.
pub fn apply_timeline(
    result: &mut RunResult,
    t: ProbeTimeline,
    path: &[StageMatcher],
    detected_ms: Option<i64>,
) {
    let arrived = detected_ms.is_some();
    if t.hops.is_empty() {
        result.notes.extend(t.notes);
        return;
    }
    result.log_status = Some(t.status.as_str().to_string());
    result.last_hop = t.last_host.as_deref().map(|r| stage_for_role(r, path));
    let submission = result
        .submission
        .as_ref()
        .map(crate::submission_steps::stage_detail);
    result.stages = t
        .stages
        .into_iter()
        .map(|mut st| {
            st.name = match st.name.as_str() {
                "submit" => {
                    st.detail = submission.clone().or(st.detail);
                    "submission".to_string()
                }
                n => stage_for_role(n, path),
            };
            st
        })
        .collect();
    // With the mailbox server's own "saved" line, fusion's `detect` stage runs from that save to
    // our detection: what remains of the time to detection is the delivery itself.
    if t.hops.iter().any(|h| h.status == HopStatus::Saved) {
        if let (Some(total), Some(detect)) = (
            detected_ms,
            result.stages.iter().find(|st| st.name == "detect"),
        ) {
            let delivered = total - detect.ms as i64;
            result.delivered_ms = Some(delivered);
            // The save is the earliest the probe can have reached the mailbox: `total_ms`, an
            // estimate from the look that showed it, never ends before it.
            result.total_ms = result.total_ms.map(|t| t.max(delivered));
        }
    }
    result.skew = t.skew;
    result.notes.extend(t.notes);
    for f in t.findings {
        merge_finding(result, f, path);
    }
    if !arrived && result.status == Status::Lost {
        result.status = match t.status {
            MessageStatus::Bounced => Status::Bounced,
            MessageStatus::Rejected => Status::Rejected,
            _ => Status::Lost,
        };
    }
}

/// The same cause seen at submission and in a log is one finding with both evidences.
fn merge_finding(result: &mut RunResult, mut f: Finding, path: &[StageMatcher]) {
    if let Some(h) = f.host.as_deref() {
        f.stage = Some(stage_for_role(h, path));
    }
    let Some(existing) = result.findings.iter_mut().find(|e| e.code == f.code) else {
        result.findings.push(f);
        return;
    };
    for line in f.evidence {
        existing.add_evidence(&line, 10);
    }
    if existing.host.is_none() {
        existing.host = f.host;
        existing.peer = f.peer;
    }
    if existing.first_seen.is_none() {
        existing.first_seen = f.first_seen;
        existing.last_seen = f.last_seen;
    }
}

/// What the result store knows of a probe seen in the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Recorded before sending; its run has not stored a result (still running, or crashed).
    Pending,
    /// Its run saw no arrival: reported `lost`, or `interrupted` by a stop before it arrived.
    /// A copy found later is a late arrival.
    Lost,
    /// Any other final result.
    Finished,
}

impl RecordState {
    /// From the store's status column (`pending`, or a [`Status`] name).
    pub fn from_status(status: &str) -> RecordState {
        match status {
            "pending" => RecordState::Pending,
            s if s == Status::Lost.as_str() || s == Status::Interrupted.as_str() => {
                RecordState::Lost
            }
            _ => RecordState::Finished,
        }
    }
}

/// Where one message sits: its folder, the folder's UIDVALIDITY when the UID was read, its UID.
/// The three together name one message for as long as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CopyAt {
    pub folder: String,
    pub uid_validity: u32,
    pub uid: u32,
}

impl std::fmt::Display for CopyAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} UID {} (UIDVALIDITY {})",
            self.folder, self.uid, self.uid_validity
        )
    }
}

/// What a message carrying a genuine tag of this installation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyKind {
    /// The probe itself: its tag verifies and its Message-ID is the one the probe id implies.
    Probe,
    /// A bounce (DSN) whose quoted headers carry the probe's verified tag.
    Bounce,
    /// A genuine tag on a message whose Message-ID is not the probe's: copied into other mail.
    Transplanted,
}

/// One message seen for a probe id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCopy {
    pub kind: CopyKind,
    pub at: CopyAt,
}

/// What the store holds of one probe, for cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProbe {
    pub state: RecordState,
    /// Where the probe itself was deleted from, once (none: never deleted).
    pub probe_deleted: Option<CopyAt>,
    /// Where its bounce was deleted from, once.
    pub bounce_deleted: Option<CopyAt>,
}

impl StoredProbe {
    /// The recorded removal of this kind of copy, if any.
    pub fn deleted(&self, kind: CopyKind) -> Option<&CopyAt> {
        match kind {
            CopyKind::Probe => self.probe_deleted.as_ref(),
            CopyKind::Bounce => self.bounce_deleted.as_ref(),
            CopyKind::Transplanted => None,
        }
    }
}

/// Why a copy may be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// This run's own probe, or its bounce.
    Own,
    /// Reported `lost` by an earlier run: mark it late in the store, then delete it.
    MarkLate,
    /// Its run finished (or reported it lost, for a bounce) and did not remove it.
    Finished,
}

/// Why a copy is left in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// Its run is still going (recorded `pending`): never touched, whatever its age.
    InFlight,
    /// Recorded `pending` for longer than `sweep_after`: its run probably crashed. Still left
    /// (a pending probe is never swept), but worth a note.
    Stale,
    /// Not in this installation's store: not a probe this store saw sent.
    NotInStore,
    /// A further copy of a probe that is (or was) removed once already: `probe_replayed`.
    Replayed,
    /// A genuine tag on a message whose Message-ID is not the probe's: `probe_forged`.
    Forged,
}

/// What cleanup does with one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupAction {
    Delete(DeleteReason),
    Leave(LeaveReason),
}

impl CleanupAction {
    pub fn deletes(self) -> bool {
        matches!(self, CleanupAction::Delete(_))
    }
}

/// The run doing the cleanup.
#[derive(Debug, Clone, Copy)]
pub struct CleanupPolicy<'a> {
    pub own_probe_id: &'a str,
    pub now: DateTime<Utc>,
    /// A probe still `pending` after this long is reported stale (and still left alone).
    pub sweep_after: Duration,
}

/// Decide, for every message seen carrying probe `probe_id`'s tag (sent at `sent_at`), whether
/// it may be deleted. The answer has one action per copy, in the order given.
///
/// A copy is deleted only when it is the probe itself or its bounce (never a transplanted tag),
/// the probe is this run's or the store holds it as finished or lost, and it is the first
/// removal of that kind of copy: of several copies present at once the lowest UID is taken; once
/// a removal is recorded, only that very copy (same folder, UIDVALIDITY and UID: a removal that
/// did not complete) may be deleted again, and every other copy is a replay.
pub fn cleanup_plan(
    probe_id: &str,
    sent_at: DateTime<Utc>,
    copies: &[SeenCopy],
    stored: Option<&StoredProbe>,
    policy: &CleanupPolicy,
) -> Vec<CleanupAction> {
    let mut out = vec![CleanupAction::Leave(LeaveReason::Forged); copies.len()];
    for kind in [CopyKind::Probe, CopyKind::Bounce] {
        let of_kind: Vec<usize> = (0..copies.len())
            .filter(|&i| copies[i].kind == kind)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let reason = match removable(probe_id, sent_at, kind, stored, policy) {
            Ok(reason) => reason,
            Err(why) => {
                for i in of_kind {
                    out[i] = CleanupAction::Leave(why);
                }
                continue;
            }
        };
        let chosen = match stored.and_then(|s| s.deleted(kind)) {
            Some(done) => of_kind.iter().copied().find(|&i| copies[i].at == *done),
            None => of_kind
                .iter()
                .copied()
                .min_by(|&a, &b| first_copy_order(&copies[a].at, &copies[b].at)),
        };
        for i in of_kind {
            out[i] = if Some(i) == chosen {
                CleanupAction::Delete(reason)
            } else {
                CleanupAction::Leave(LeaveReason::Replayed)
            };
        }
    }
    out
}

/// Lowest UID first; the folder name only breaks ties, so the choice is the same in every run.
fn first_copy_order(a: &CopyAt, b: &CopyAt) -> std::cmp::Ordering {
    (a.uid, &a.folder, a.uid_validity).cmp(&(b.uid, &b.folder, b.uid_validity))
}

/// Whether copies of this kind may be removed at all, and why.
fn removable(
    probe_id: &str,
    sent_at: DateTime<Utc>,
    kind: CopyKind,
    stored: Option<&StoredProbe>,
    policy: &CleanupPolicy,
) -> Result<DeleteReason, LeaveReason> {
    if probe_id == policy.own_probe_id {
        return Ok(DeleteReason::Own);
    }
    let Some(stored) = stored else {
        return Err(LeaveReason::NotInStore);
    };
    match (stored.state, kind) {
        (RecordState::Pending, _) => {
            let stale = (policy.now - sent_at)
                .to_std()
                .is_ok_and(|age| age > policy.sweep_after);
            Err(if stale {
                LeaveReason::Stale
            } else {
                LeaveReason::InFlight
            })
        }
        (RecordState::Lost, CopyKind::Probe) => Ok(DeleteReason::MarkLate),
        (RecordState::Lost | RecordState::Finished, _) => Ok(DeleteReason::Finished),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::bare_hop;
    use crate::fusion::{Hop as LogHop, Stage, StageSource};
    use chrono::{TimeDelta, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()
    }

    fn result() -> RunResult {
        fresh_result(
            "lab-inbound",
            "own",
            t0(),
            SloReport {
                target_ms: Some(5000),
                max_ms: None,
            },
            30_000,
        )
    }

    fn sub(phase: SmtpPhase, code: Option<u16>, text: &str) -> Submission {
        Submission {
            started_at: t0(),
            accepted_at: None,
            phase,
            code,
            enhanced: None,
            text: text.into(),
            queue_id: None,
            auth_mechanism: None,
            steps: Box::default(),
        }
    }

    fn matcher(stage: &str, role: &str) -> StageMatcher {
        StageMatcher {
            stage: stage.into(),
            by: Some("*".into()),
            from: None,
            from_ip: None,
            protocol: None,
            optional: false,
            role: Some(role.into()),
        }
    }

    fn stage(name: &str, ms: u64) -> Stage {
        Stage {
            name: name.into(),
            ms,
            source: StageSource::Log,
            precision_ms: 1,
            bounded: false,
            detail: None,
        }
    }

    fn timeline(status: MessageStatus, hops: Vec<LogHop>) -> ProbeTimeline {
        ProbeTimeline {
            message_id: "<x@probe>".into(),
            status,
            stages: Vec::new(),
            findings: Vec::new(),
            last_host: None,
            skew: Vec::new(),
            notes: vec!["a note".into()],
            hops,
        }
    }

    #[test]
    fn total_ms_never_ends_before_the_logged_save() {
        let mut r = result();
        r.total_ms = Some(100);
        let mut t = timeline(
            MessageStatus::Delivered,
            vec![bare_hop("dovecot", HopStatus::Saved)],
        );
        t.stages = vec![stage("detect", 5)];
        // Saved at 110 ms, fetched at 115 ms; the look's estimate said 100 ms.
        apply_timeline(&mut r, t, &[], Some(115));
        assert_eq!(r.delivered_ms, Some(110));
        assert_eq!(r.total_ms, Some(110));
    }

    #[test]
    fn arrival_decides_delivered_slow_spam_bounced_lost() {
        let junk = vec!["Junk".to_string()];
        let at = |folder, bounce, total| ArrivalFacts {
            folder,
            bounce,
            total_ms: Some(total),
        };
        let d = arrival_status(Some(&at("INBOX", false, 5000)), &junk, Some(5000));
        assert_eq!(d.status, Status::Delivered, "the target itself is not slow");
        assert!(d.finding.is_none());
        let d = arrival_status(Some(&at("INBOX", false, 5001)), &junk, Some(5000));
        assert_eq!(d.status, Status::Slow);
        assert_eq!(
            arrival_status(Some(&at("INBOX", false, 99_999)), &junk, None).status,
            Status::Delivered,
            "no target, never slow"
        );
        let d = arrival_status(Some(&at("Junk", false, 9000)), &junk, Some(5000));
        assert_eq!(
            d.status,
            Status::DeliveredSpam,
            "the folder wins over speed"
        );
        let f = d.finding.unwrap();
        assert_eq!(f.code, FindingCode::SpamFolder);
        assert_eq!(f.stage.as_deref(), Some("mailbox"));
        let d = arrival_status(Some(&at("Junk", true, 10)), &junk, Some(5000));
        assert_eq!(d.status, Status::Bounced, "a bounce wins over the folder");
        assert_eq!(d.finding.unwrap().code, FindingCode::BouncedOther);
        let d = arrival_status(None, &junk, Some(5000));
        assert_eq!(d.status, Status::Lost);
        assert!(d.finding.is_none());
    }

    #[test]
    fn failed_submissions_are_classified_by_phase_code_then_words() {
        let c = |phase, code, text| send_failure_code(&sub(phase, code, text));
        assert_eq!(
            c(SmtpPhase::Auth, Some(535), "bad credentials"),
            FindingCode::AuthFailed
        );
        assert_eq!(
            c(SmtpPhase::Starttls, None, "handshake"),
            FindingCode::TlsError
        );
        assert_eq!(
            c(
                SmtpPhase::Connect,
                None,
                "invalid peer Certificate: UnknownIssuer"
            ),
            FindingCode::TlsError
        );
        assert_eq!(
            c(SmtpPhase::Connect, None, "connection refused"),
            FindingCode::NextHopRefused
        );
        assert_eq!(
            c(SmtpPhase::Connect, Some(421), "too many connections"),
            classify_smtp_reply(421, None, "too many connections")
        );
    }

    #[test]
    fn submission_verdicts_carry_the_reply_as_evidence() {
        let s = sub(SmtpPhase::Rcpt, Some(554), "5.7.1 Relay access denied");
        let d = submission_verdict(SubmitFailure::Rejected, &s);
        assert_eq!(d.status, Status::Rejected);
        let f = d.finding.unwrap();
        assert_eq!(f.code, FindingCode::RelayAccessDenied);
        assert_eq!(f.stage.as_deref(), Some("submission"));
        assert_eq!(f.evidence, vec!["554 5.7.1 Relay access denied"]);
        assert!(f.message.contains("Rcpt"), "{}", f.message);
        let s = sub(SmtpPhase::Connect, None, "connection refused");
        let d = submission_verdict(SubmitFailure::Failed, &s);
        assert_eq!(d.status, Status::SendFailed);
        assert_eq!(d.finding.unwrap().evidence, vec!["connection refused"]);
    }

    #[test]
    fn api_answers_have_their_own_findings() {
        let api = |code: Option<u16>| sub(SmtpPhase::HttpApi, code, "x");
        let cases = [
            (
                SubmitFailure::Failed,
                Some(401),
                Status::SendFailed,
                FindingCode::ProviderAuthFailed,
            ),
            (
                SubmitFailure::Failed,
                Some(403),
                Status::SendFailed,
                FindingCode::ProviderAuthFailed,
            ),
            (
                SubmitFailure::Failed,
                Some(429),
                Status::SendFailed,
                FindingCode::RateLimited,
            ),
            (
                SubmitFailure::Failed,
                Some(503),
                Status::SendFailed,
                FindingCode::ProviderUnavailable,
            ),
            (
                SubmitFailure::Failed,
                None,
                Status::SendFailed,
                FindingCode::ProviderUnavailable,
            ),
            (
                SubmitFailure::Rejected,
                Some(400),
                Status::Rejected,
                FindingCode::ProviderRequestInvalid,
            ),
            (
                SubmitFailure::Rejected,
                Some(413),
                Status::Rejected,
                FindingCode::MessageTooLarge,
            ),
        ];
        for (how, code, status, finding) in cases {
            let d = submission_verdict(how, &api(code));
            assert_eq!(d.status, status, "{code:?}");
            let f = d.finding.unwrap();
            assert_eq!(f.code, finding, "{code:?}");
            assert!(!f.hint.is_empty());
        }
    }

    #[test]
    fn a_refused_oauth_token_is_provider_auth_failed() {
        let text = format!("5.7.8 Username and Password not accepted ({XOAUTH2_REFUSAL} {{}})");
        let s = sub(SmtpPhase::Auth, Some(535), &text);
        let d = submission_verdict(SubmitFailure::Failed, &s);
        assert_eq!(d.finding.unwrap().code, FindingCode::ProviderAuthFailed);
        let s = sub(
            SmtpPhase::Auth,
            Some(535),
            "5.7.8 Error: authentication failed",
        );
        let d = submission_verdict(SubmitFailure::Failed, &s);
        assert_eq!(d.finding.unwrap().code, FindingCode::AuthFailed);
    }

    #[test]
    fn a_provider_account_out_of_credits_is_the_providers_not_the_password() {
        // SendGrid's relay answers AUTH so when the plan's credits are spent.
        let s = sub(
            SmtpPhase::Auth,
            Some(451),
            "Authentication failed: Maximum credits exceeded",
        );
        assert_eq!(send_failure_code(&s), FindingCode::ProviderAuthFailed);
        // Its API says the same with a 401.
        let mut s = sub(
            SmtpPhase::HttpApi,
            Some(401),
            "Unauthorized: Maximum credits exceeded",
        );
        assert_eq!(send_failure_code(&s), FindingCode::ProviderAuthFailed);
        // A wrong password stays the relay's credentials.
        s = sub(
            SmtpPhase::Auth,
            Some(535),
            "Authentication failed: Bad username / password",
        );
        assert_eq!(send_failure_code(&s), FindingCode::AuthFailed);
    }

    #[test]
    fn missing_stages_are_one_finding() {
        assert!(missing_stages_finding(&[]).is_none());
        let f = missing_stages_finding(&["a".into(), "b".into()]).unwrap();
        assert_eq!(f.code, FindingCode::UnexpectedPath);
        assert!(f.message.ends_with("a, b"), "{}", f.message);
    }

    #[test]
    fn host_findings_join_once_named_by_stage() {
        let path = [matcher("dovecot-store", "dovecot")];
        let mut r = result();
        r.findings.push(finding(
            FindingCode::ImapAuthFailed,
            Some("mailbox"),
            "login".into(),
            vec![],
        ));
        let found = vec![
            Finding::new(FindingCode::ImapAuthFailed, Some("dovecot"), "same cause"),
            Finding::new(FindingCode::SpamFolder, Some("dovecot"), "not a failure"),
            Finding::new(
                FindingCode::MailboxPermissionDenied,
                Some("dovecot"),
                "perm",
            ),
            Finding::new(
                FindingCode::MailboxPermissionDenied,
                Some("dovecot"),
                "again",
            ),
        ];
        add_host_findings(&mut r, found, FindingCode::ImapAuthFailed, &path);
        let codes: Vec<_> = r.findings.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            vec![
                FindingCode::ImapAuthFailed,
                FindingCode::MailboxPermissionDenied
            ]
        );
        assert_eq!(r.findings[1].stage.as_deref(), Some("dovecot-store"));
    }

    #[test]
    fn timeline_renames_stages_and_merges_findings() {
        let path = [matcher("ec2-mx", "ec2")];
        let mut r = result();
        r.total_ms = Some(2000);
        r.findings.push(finding(
            FindingCode::RelayAccessDenied,
            Some("submission"),
            "refused".into(),
            vec!["554 relay".into()],
        ));
        let mut t = timeline(
            MessageStatus::Delivered,
            vec![
                bare_hop("ec2", HopStatus::Sent),
                bare_hop("dovecot", HopStatus::Saved),
            ],
        );
        t.last_host = Some("ec2".into());
        t.stages = vec![stage("submit", 5), stage("ec2", 700), stage("detect", 500)];
        let mut logged = Finding::new(FindingCode::RelayAccessDenied, Some("ec2"), "log");
        logged.evidence = vec!["postfix: relay denied".into(), "554 relay".into()];
        logged.first_seen = Some(t0());
        t.findings = vec![
            logged,
            Finding::new(FindingCode::LookupFailure, Some("ec2"), "deferred"),
        ];
        // Fetched 10 ms after the moment total_ms ends (a held answer): the detect stage runs
        // to the fetch, so the delivery figure is counted from there.
        let detected = r.total_ms.map(|t| t + 10);
        apply_timeline(&mut r, t, &path, detected);
        let names: Vec<_> = r.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["submission", "ec2-mx", "detect"]);
        assert_eq!(
            r.delivered_ms,
            Some(1510),
            "time to detection minus the detect stage"
        );
        assert_eq!(r.log_status.as_deref(), Some("delivered"));
        assert_eq!(r.last_hop.as_deref(), Some("ec2-mx"));
        assert_eq!(r.findings.len(), 2, "the same code merges");
        let merged = &r.findings[0];
        assert_eq!(merged.evidence, vec!["554 relay", "postfix: relay denied"]);
        assert_eq!(merged.host.as_deref(), Some("ec2"));
        assert_eq!(merged.first_seen, Some(t0()));
        assert_eq!(r.findings[1].stage.as_deref(), Some("ec2-mx"));
        assert_eq!(r.notes, vec!["a note"]);
        assert_eq!(
            r.status,
            Status::Lost,
            "an arrived probe's status is not the logs'"
        );
    }

    #[test]
    fn timeline_decides_for_a_probe_that_did_not_arrive() {
        for (logs, want) in [
            (MessageStatus::Bounced, Status::Bounced),
            (MessageStatus::Rejected, Status::Rejected),
            (MessageStatus::Deferred, Status::Lost),
        ] {
            let mut r = result();
            apply_timeline(
                &mut r,
                timeline(logs, vec![bare_hop("ec2", HopStatus::Queued)]),
                &[],
                None,
            );
            assert_eq!(r.status, want);
            assert!(
                r.delivered_ms.is_none(),
                "no saved line, no delivery figure"
            );
        }
        // Without log hops only the notes are taken.
        let mut r = result();
        r.stages = vec![stage("submission", 3)];
        apply_timeline(&mut r, timeline(MessageStatus::Bounced, vec![]), &[], None);
        assert_eq!(r.status, Status::Lost);
        assert_eq!(r.stages.len(), 1);
        assert!(r.log_status.is_none());
        assert_eq!(r.notes, vec!["a note"]);
    }

    #[test]
    fn header_hops_carry_the_role_of_their_stage() {
        let path = [matcher("ec2-mx", "ec2")];
        let hop = |stage: Option<&str>| Hop {
            from: None,
            from_ip: None,
            by: Some("mx.example".into()),
            protocol: None,
            id: None,
            for_: None,
            timestamp: None,
            delay_ms: None,
            warnings: Vec::new(),
            stage: stage.map(str::to_string),
            helo: None,
            from_rdns: None,
            tls: None,
            tls_cipher: None,
            raw: String::new(),
        };
        let h = header_hops(&[hop(Some("ec2-mx")), hop(Some("other")), hop(None)], &path);
        let roles: Vec<_> = h.iter().map(|h| h.role.as_deref()).collect();
        assert_eq!(roles, vec![Some("ec2"), None, None]);
        assert_eq!(h[0].by.as_deref(), Some("mx.example"));
        assert_eq!(stage_for_role("dell", &path), "dell");
    }

    fn policy() -> CleanupPolicy<'static> {
        CleanupPolicy {
            own_probe_id: "own",
            now: t0(),
            sweep_after: Duration::from_secs(3600),
        }
    }

    fn at(folder: &str, uid: u32) -> CopyAt {
        CopyAt {
            folder: folder.into(),
            uid_validity: 7,
            uid,
        }
    }

    fn copy(kind: CopyKind, folder: &str, uid: u32) -> SeenCopy {
        SeenCopy {
            kind,
            at: at(folder, uid),
        }
    }

    fn stored(state: RecordState) -> StoredProbe {
        StoredProbe {
            state,
            probe_deleted: None,
            bounce_deleted: None,
        }
    }

    use CleanupAction::{Delete, Leave};

    #[test]
    fn cleanup_deletes_own_finished_and_lost_probes_once() {
        let young = t0() - TimeDelta::minutes(5);
        let one = [copy(CopyKind::Probe, "INBOX", 4)];
        let plan =
            |id: &str, st: Option<&StoredProbe>| cleanup_plan(id, young, &one, st, &policy());
        // The own probe needs no stored row.
        assert_eq!(plan("own", None), vec![Delete(DeleteReason::Own)]);
        assert_eq!(
            plan("x", Some(&stored(RecordState::Lost))),
            vec![Delete(DeleteReason::MarkLate)]
        );
        assert_eq!(
            plan("x", Some(&stored(RecordState::Finished))),
            vec![Delete(DeleteReason::Finished)]
        );
        // A bounce of a lost probe is removed, without marking anything late.
        let bounce = [copy(CopyKind::Bounce, "INBOX", 9)];
        assert_eq!(
            cleanup_plan(
                "x",
                young,
                &bounce,
                Some(&stored(RecordState::Lost)),
                &policy()
            ),
            vec![Delete(DeleteReason::Finished)]
        );
        assert!(Delete(DeleteReason::Own).deletes());
        assert!(!Leave(LeaveReason::Replayed).deletes());
    }

    #[test]
    fn cleanup_never_touches_probes_in_flight_or_unknown_to_the_store() {
        let copies = [
            copy(CopyKind::Probe, "INBOX", 4),
            copy(CopyKind::Probe, "Junk", 2),
            copy(CopyKind::Bounce, "INBOX", 5),
        ];
        let plan = |sent, st: Option<&StoredProbe>| cleanup_plan("x", sent, &copies, st, &policy());
        let young = t0() - TimeDelta::minutes(5);
        let ancient = t0() - TimeDelta::days(30);
        assert_eq!(
            plan(young, Some(&stored(RecordState::Pending))),
            vec![Leave(LeaveReason::InFlight); 3]
        );
        // Pending is never swept, however old: it is only reported stale.
        assert_eq!(
            plan(ancient, Some(&stored(RecordState::Pending))),
            vec![Leave(LeaveReason::Stale); 3]
        );
        // A tag stamped in the future (skewed sender clock) is not stale.
        assert_eq!(
            plan(
                t0() + TimeDelta::hours(5),
                Some(&stored(RecordState::Pending))
            ),
            vec![Leave(LeaveReason::InFlight); 3]
        );
        assert_eq!(plan(ancient, None), vec![Leave(LeaveReason::NotInStore); 3]);
    }

    #[test]
    fn transplanted_tags_are_forged_even_for_the_own_probe() {
        let copies = [
            copy(CopyKind::Transplanted, "INBOX", 1),
            copy(CopyKind::Probe, "INBOX", 3),
        ];
        assert_eq!(
            cleanup_plan("own", t0(), &copies, None, &policy()),
            vec![Leave(LeaveReason::Forged), Delete(DeleteReason::Own)]
        );
        let finished = stored(RecordState::Finished);
        assert_eq!(
            cleanup_plan("x", t0(), &copies[..1], Some(&finished), &policy()),
            vec![Leave(LeaveReason::Forged)]
        );
    }

    #[test]
    fn of_two_copies_at_once_the_lowest_uid_goes_and_the_other_is_replayed() {
        let copies = [
            copy(CopyKind::Probe, "INBOX", 12),
            copy(CopyKind::Probe, "Junk", 3),
            copy(CopyKind::Probe, "Archive", 12),
        ];
        let finished = stored(RecordState::Finished);
        assert_eq!(
            cleanup_plan("x", t0(), &copies, Some(&finished), &policy()),
            vec![
                Leave(LeaveReason::Replayed),
                Delete(DeleteReason::Finished),
                Leave(LeaveReason::Replayed)
            ]
        );
        // Same UID in two folders: the folder name breaks the tie, the same way every time.
        assert_eq!(
            cleanup_plan(
                "own",
                t0(),
                &[copies[0].clone(), copies[2].clone()],
                None,
                &policy()
            ),
            vec![Leave(LeaveReason::Replayed), Delete(DeleteReason::Own)]
        );
    }

    #[test]
    fn a_copy_after_a_recorded_removal_is_replayed_unless_it_is_that_very_message() {
        let mut done = stored(RecordState::Finished);
        done.probe_deleted = Some(at("INBOX", 4));
        let again = [copy(CopyKind::Probe, "INBOX", 9)];
        assert_eq!(
            cleanup_plan("x", t0(), &again, Some(&done), &policy()),
            vec![Leave(LeaveReason::Replayed)]
        );
        // The recorded copy itself (its removal did not complete): removed again, and only it.
        let same = [
            copy(CopyKind::Probe, "INBOX", 9),
            copy(CopyKind::Probe, "INBOX", 4),
        ];
        assert_eq!(
            cleanup_plan("x", t0(), &same, Some(&done), &policy()),
            vec![Leave(LeaveReason::Replayed), Delete(DeleteReason::Finished)]
        );
        // Same folder and UID under another UIDVALIDITY is another message.
        let renumbered = [SeenCopy {
            kind: CopyKind::Probe,
            at: CopyAt {
                uid_validity: 8,
                ..at("INBOX", 4)
            },
        }];
        assert_eq!(
            cleanup_plan("x", t0(), &renumbered, Some(&done), &policy()),
            vec![Leave(LeaveReason::Replayed)]
        );
        // The own probe's replay is a replay too.
        assert_eq!(
            cleanup_plan("own", t0(), &again, Some(&done), &policy()),
            vec![Leave(LeaveReason::Replayed)]
        );
        // The probe's removal says nothing about its bounce's: each is removed once.
        let bounce = [copy(CopyKind::Bounce, "INBOX", 20)];
        assert_eq!(
            cleanup_plan("x", t0(), &bounce, Some(&done), &policy()),
            vec![Delete(DeleteReason::Finished)]
        );
        done.bounce_deleted = Some(at("INBOX", 15));
        assert_eq!(
            cleanup_plan("x", t0(), &bounce, Some(&done), &policy()),
            vec![Leave(LeaveReason::Replayed)]
        );
        assert_eq!(done.deleted(CopyKind::Transplanted), None);
        assert_eq!(at("INBOX", 4).to_string(), "INBOX UID 4 (UIDVALIDITY 7)");
    }

    #[test]
    fn stored_statuses_map_to_record_states() {
        assert_eq!(RecordState::from_status("pending"), RecordState::Pending);
        assert_eq!(RecordState::from_status("lost"), RecordState::Lost);
        assert_eq!(RecordState::from_status("interrupted"), RecordState::Lost);
        assert_eq!(RecordState::from_status("delivered"), RecordState::Finished);
        assert_eq!(RecordState::from_status("bounced"), RecordState::Finished);
    }
}
