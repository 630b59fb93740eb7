//! The orchestrator shared by `flowtest run` and the canary: for one scenario, open the
//! mailbox, arm detection, send the probe, wait, fetch, trace, clean up, store the result.
//!
//! Everything that could stop flowtest from running at all (a missing secret, an unreadable CA
//! file) is resolved in [`prepare`] before any probe is sent, so a run never half-starts.
//! Not here: parsing (config), rendering (core::report), protocol details (edge).
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

use crate::config::{Config, Scenario, Sender};
use crate::core::diagnosis::{classify_smtp_reply, Finding, FindingCode};
use crate::core::fusion::{HeaderHop, MessageStatus, ProbeContext, ProbeTimeline};
use crate::core::outcome::{
    client_stages, CleanupReport, RunResult, SloReport, Status, Submission,
};
use crate::core::probe::{ProbeKey, ProbeMessage, ProbeTag};
use crate::core::runbook::Facts;
use crate::core::trace::{trace_message, TraceOptions};
use crate::core::trace::{Hop, StageMatcher};
use crate::edge::imap::{self, Armed, FetchError, Mailbox, WaitEnd, WaitNotes};
use crate::edge::logwatch::{recent_host_findings, LogWatch};
use crate::edge::smtp::{self, SendOutcome};
use crate::edge::store::Store;
use crate::edge::tls;

/// A scenario with everything it needs resolved: secrets read, CA files parsed.
pub struct Prepared {
    pub scenario: Scenario,
    smtp: smtp::Prepared,
    imap: imap::Prepared,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("scenario", &self.scenario.name)
            .finish_non_exhaustive()
    }
}

/// Resolve a scenario's secrets and CA files. The error is one line naming what is missing
/// (a variable's name or a file's path, never a value).
pub fn prepare(s: &Scenario) -> Result<Prepared, String> {
    let ctx = |m: String| format!("scenario {}: {m}", s.name);
    let recv_ca = match &s.receiver.ca_file {
        Some(p) => tls::read_ca(p).map_err(ctx)?,
        None => Vec::new(),
    };
    let imap = imap::Prepared {
        tls: tls::client_config(&recv_ca).map_err(ctx)?,
        password: s
            .receiver
            .password
            .resolve()
            .map_err(|e| ctx(format!("receiver password: {e}")))?,
    };
    let smtp = match &s.sender {
        Sender::Smtp(cfg) => {
            let ca_pem = match &cfg.ca_file {
                Some(p) => {
                    tls::read_ca(p).map_err(ctx)?;
                    Some(
                        std::fs::read(p)
                            .map_err(|e| ctx(format!("cannot read {}: {e}", p.display())))?,
                    )
                }
                None => None,
            };
            let password = match &cfg.auth {
                Some(a) => Some(
                    a.password
                        .resolve()
                        .map_err(|e| ctx(format!("sender password: {e}")))?,
                ),
                None => None,
            };
            smtp::Prepared { ca_pem, password }
        }
    };
    Ok(Prepared {
        scenario: s.clone(),
        smtp,
        imap,
    })
}

/// Live progress: what each running scenario is doing. Rendered by the CLI, ignored by tests.
#[derive(Default)]
pub struct Progress {
    state: Mutex<BTreeMap<String, (String, Instant)>>,
}

impl Progress {
    pub fn set(&self, scenario: &str, what: &str) {
        let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let started = m
            .get(scenario)
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        m.insert(scenario.to_string(), (what.to_string(), started));
    }
    pub fn done(&self, scenario: &str) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scenario);
    }
    /// One line: `lab-inbound: waiting for arrival (1.2 s) | ...`.
    pub fn line(&self) -> String {
        let m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|(k, (what, t))| format!("{k}: {what} ({:.1} s)", t.elapsed().as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// What every run shares.
pub struct Runner {
    pub config: Arc<Config>,
    pub key: ProbeKey,
    pub store: Arc<Store>,
    pub progress: Arc<Progress>,
    /// Overrides each scenario's timeout (`--timeout`).
    pub timeout_override: Option<Duration>,
}

fn finding(
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

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Runner {
    /// Run several scenarios, at most `max_concurrency` at once. Results keep the input order.
    pub async fn run_all(self: &Arc<Self>, prepared: Vec<Prepared>) -> Vec<RunResult> {
        let sem = Arc::new(tokio::sync::Semaphore::new(self.config.max_concurrency));
        let mut handles = Vec::new();
        for p in prepared {
            let me = Arc::clone(self);
            let sem = Arc::clone(&sem);
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok();
                me.run_one(&p).await
            }));
        }
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            match h.await {
                Ok(r) => out.push(r),
                // A panic in one scenario must not hide the others' results.
                Err(e) => eprintln!("flowtest: internal error in a scenario task: {e}"),
            }
        }
        out
    }

    /// One probe, start to finish. Never panics on server behaviour; always returns a result,
    /// and stores it.
    pub async fn run_one(&self, p: &Prepared) -> RunResult {
        let s = &p.scenario;
        let timeout = self.timeout_override.unwrap_or(s.timeout);
        let id = Uuid::now_v7();
        self.progress.set(&s.name, "logging in to the mailbox");
        let mut result = RunResult {
            scenario: s.name.clone(),
            probe_id: id.to_string(),
            status: Status::Lost,
            sent_at: Utc::now(),
            accepted_at: None,
            detected_at: None,
            total_ms: None,
            delivered_ms: None,
            folder: None,
            detected_by: None,
            submission: None,
            stages: Vec::new(),
            hops: Vec::new(),
            missing_stages: Vec::new(),
            findings: Vec::new(),
            log_status: None,
            last_hop: None,
            skew: Vec::new(),
            notes: Vec::new(),
            verdict_at: Utc::now(),
            slo: SloReport {
                target_ms: s.slo.target.map(ms),
                max_ms: s.slo.max.map(ms),
            },
            timeout_ms: ms(timeout),
            cleanup: CleanupReport::default(),
            warnings: Vec::new(),
        };

        // 1. The mailbox first: if users cannot read mail, there is no point sending.
        let mailbox = match Mailbox::open(&s.receiver, &p.imap).await {
            Ok(m) => m,
            Err(e) => {
                self.fetch_failed(&mut result, &e, &s.path).await;
                return self.finish(result);
            }
        };
        if s.receiver.idle && !mailbox.uses_idle() {
            result
                .warnings
                .push("the IMAP server does not offer IDLE: polling instead".into());
        }
        let starts = mailbox.starts();
        let armed = match mailbox.arm(self.key.clone(), id).await {
            Ok(a) => a,
            Err(e) => {
                self.fetch_failed(&mut result, &e, &s.path).await;
                return self.finish(result);
            }
        };

        // 2. Follow the server logs from this moment, then send.
        let (mut logs, log_warnings) = LogWatch::start(&self.config.log_sources);
        result.warnings.extend(log_warnings);
        let tag = ProbeTag::new(id, &s.name, Utc::now());
        result.sent_at = tag.sent_at;
        if let Err(e) = self
            .store
            .record_pending(&result.probe_id, &s.name, tag.sent_at)
        {
            result.warnings.push(e.to_string());
        }
        self.progress.set(&s.name, "sending");
        let outcome = match &s.sender {
            Sender::Smtp(cfg) => {
                let msg = ProbeMessage {
                    tag: &tag,
                    domain: &self.config.probe_domain,
                    header_from: &cfg.header_from,
                    header_to: &cfg.header_to,
                    extra_headers: &s.headers,
                }
                .render(&self.key);
                smtp::send(cfg, &p.smtp, &msg).await
            }
        };
        let sub: Submission = outcome.submission().clone();
        result.submission = Some(sub.clone());
        result.accepted_at = sub.accepted_at;
        let deadline = Instant::now() + timeout;
        let mut probe = ProbeContext {
            message_id: tag.message_id(&self.config.probe_domain),
            mail_from: s.sender.mail_from().to_string(),
            rcpt_to: s.sender.recipients().to_vec(),
            submitted_at: sub.started_at,
            accepted_at: sub.accepted_at,
            detected_at: None,
            submission_queue_id: sub.queue_id.clone(),
            expected_hosts: Vec::new(),
        };
        let (arrival, mut mailbox, notes) = match &outcome {
            SendOutcome::Accepted(_) => {
                self.progress.set(&s.name, "waiting for arrival");
                // While waiting, the logs may show the probe's fate first: a bounce or a reject
                // ends the wait at once; a deferral is shown live and the wait goes on.
                let fail_fast = watch_logs(&mut logs, &probe, &self.progress, &s.name);
                tokio::pin!(fail_fast);
                let mut armed = armed;
                let mut notes = WaitNotes::default();
                loop {
                    let (end, mb, n) = armed.wait(deadline, fail_fast.as_mut()).await;
                    notes.warnings.extend(n.warnings);
                    match end {
                        WaitEnd::Arrived(a) => break (Some(*a), mb, notes),
                        WaitEnd::Deadline | WaitEnd::Cancelled => break (None, mb, notes),
                        // A restarted Dovecot or a network blip is not a lost probe: log in
                        // again and keep looking from where this run started.
                        WaitEnd::SessionsLost => {
                            self.progress
                                .set(&s.name, "IMAP connection lost; reconnecting");
                            match self.reconnect(p, &starts, id, deadline, &mut notes).await {
                                Some(a) => {
                                    notes.warnings.push("the IMAP connection was lost while waiting and was re-established".into());
                                    armed = a;
                                    self.progress.set(&s.name, "waiting for arrival");
                                }
                                None => break (None, None, notes),
                            }
                        }
                    }
                }
            }
            SendOutcome::Rejected(_) | SendOutcome::Failed(_) => {
                let (_, mb, n) = armed.wait(Instant::now(), async {}).await;
                (None, mb, n)
            }
        };
        result.verdict_at = Utc::now();
        result.warnings.extend(notes.warnings);

        match &outcome {
            SendOutcome::Rejected(sub) => {
                result.status = Status::Rejected;
                let code =
                    classify_smtp_reply(sub.code.unwrap_or(0), sub.enhanced.as_deref(), &sub.text);
                result.findings.push(finding(
                    code,
                    Some("submission"),
                    format!(
                        "the sending server refused the probe at {:?}: {}",
                        sub.phase,
                        reply_line(sub)
                    ),
                    vec![reply_line(sub)],
                ));
            }
            SendOutcome::Failed(sub) => {
                result.status = Status::SendFailed;
                let code = match (sub.phase, sub.code) {
                    (crate::core::outcome::SmtpPhase::Auth, _) => FindingCode::AuthFailed,
                    (crate::core::outcome::SmtpPhase::Starttls, _) => FindingCode::TlsError,
                    (_, Some(c)) => classify_smtp_reply(c, sub.enhanced.as_deref(), &sub.text),
                    _ if sub.text.to_ascii_lowercase().contains("tls")
                        || sub.text.to_ascii_lowercase().contains("certificate") =>
                    {
                        FindingCode::TlsError
                    }
                    _ => FindingCode::NextHopRefused,
                };
                result.findings.push(finding(
                    code,
                    Some("submission"),
                    format!("could not submit the probe ({:?}): {}", sub.phase, sub.text),
                    vec![reply_line(sub)],
                ));
            }
            SendOutcome::Accepted(_) => {}
        }

        // 3. What arrived.
        if let Some(a) = &arrival {
            result.detected_at = Some(a.detected_at);
            result.detected_by = Some(a.detected_by);
            result.folder = Some(a.seen.folder.clone());
            result.total_ms = Some((a.detected_at - sub.started_at).num_milliseconds());
            match trace_message(
                &a.raw,
                &TraceOptions {
                    now: Utc::now(),
                    fetched_at: Some(a.detected_at),
                    stages: &s.path,
                },
            ) {
                Ok(t) => {
                    result.hops = t.hops;
                    result.missing_stages = t.missing_stages;
                    result.warnings.extend(t.warnings);
                }
                Err(e) => result.warnings.push(format!("trace: {e:?}")),
            }
            if !result.missing_stages.is_empty() {
                let missing = result.missing_stages.join(", ");
                result.findings.push(finding(
                    FindingCode::UnexpectedPath,
                    None,
                    format!("the probe did not pass the expected stage(s): {missing}"),
                    Vec::new(),
                ));
            }
            result.status = if a.seen.bounce {
                result.findings.push(finding(
                    FindingCode::BouncedOther,
                    None,
                    format!("a bounce of the probe arrived in {}", a.seen.folder),
                    Vec::new(),
                ));
                Status::Bounced
            } else if s.receiver.junk_folders.contains(&a.seen.folder) {
                result.findings.push(finding(
                    FindingCode::SpamFolder,
                    Some("mailbox"),
                    format!("the probe was filed into {}", a.seen.folder),
                    Vec::new(),
                ));
                Status::DeliveredSpam
            } else if s
                .slo
                .target
                .is_some_and(|t| result.total_ms.unwrap_or(0) > ms(t) as i64)
            {
                Status::Slow
            } else {
                Status::Delivered
            };
        } else if matches!(outcome, SendOutcome::Accepted(_)) {
            result.status = Status::Lost;
        }
        // 4. The server logs' account, fused with our clocks and the Received hops.
        probe.detected_at = result.detected_at;
        result.stages = client_stages(result.submission.as_ref(), &result.hops);
        if !logs.is_empty()
            && matches!(outcome, SendOutcome::Accepted(_) | SendOutcome::Rejected(_))
        {
            // Let the followers (100 ms polls) catch the last lines: a rejection is logged
            // just before the reply we already have.
            tokio::time::sleep(Duration::from_millis(300)).await;
            logs.refresh(true).await;
            result.warnings.extend(logs.warnings());
            let timeline = logs.timeline(&probe, &header_hops(&result.hops, &s.path));
            apply_timeline(&mut result, timeline, &s.path, arrival.is_some());
        }

        // 5. Cleanup: this run's probe, then left-overs of earlier runs.
        self.progress.set(&s.name, "cleaning up");
        match mailbox.as_mut() {
            Some(mb) => {
                self.cleanup(
                    s,
                    mb,
                    arrival.as_ref().map(|a| (&a.seen.folder, a.seen.uid)),
                    &mut result,
                )
                .await
            }
            None => {
                result.cleanup.note = Some("the IMAP session was lost; nothing cleaned".into());
            }
        }
        if let Some(mb) = mailbox {
            mb.logout().await;
        }
        self.finish(result)
    }

    /// Log in again after every session dropped, retrying with back-off until `deadline`.
    async fn reconnect(
        &self,
        p: &Prepared,
        starts: &[(String, u32)],
        id: Uuid,
        deadline: Instant,
        notes: &mut WaitNotes,
    ) -> Option<Armed> {
        let mut pause = Duration::from_millis(500);
        while Instant::now() + pause < deadline {
            tokio::time::sleep(pause).await;
            let attempt = match Mailbox::open_resuming(&p.scenario.receiver, &p.imap, starts).await
            {
                Ok(m) => m.arm(self.key.clone(), id).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(a) => return Some(a),
                Err(e) => {
                    if notes
                        .warnings
                        .last()
                        .is_none_or(|w| !w.contains(&e.to_string()))
                    {
                        notes
                            .warnings
                            .push(format!("reconnecting to the mailbox: {e}"));
                    }
                }
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        None
    }

    /// The mailbox could not be read. Say why, in the logs' words when they know more (a
    /// Dovecot "Permission denied" behind a SELECT failure, an auth backend error behind a login).
    async fn fetch_failed(&self, result: &mut RunResult, e: &FetchError, path: &[StageMatcher]) {
        result.status = Status::FetchFailed;
        result.verdict_at = Utc::now();
        let code = match e {
            FetchError::Auth(_) => FindingCode::ImapAuthFailed,
            FetchError::Tls(_) => FindingCode::TlsError,
            _ => FindingCode::ServiceError,
        };
        result.findings.push(finding(
            code,
            Some("mailbox"),
            e.to_string(),
            vec![e.to_string()],
        ));
        if self.config.log_sources.is_empty() {
            return;
        }
        let (found, warnings) =
            recent_host_findings(&self.config.log_sources, Duration::from_secs(20)).await;
        result.warnings.extend(warnings);
        for mut f in found {
            if f.code != code
                && f.code.is_failure()
                && !result.findings.iter().any(|x| x.code == f.code)
            {
                f.stage = f.host.as_deref().map(|h| stage_for_role(h, path));
                result.findings.push(f);
            }
        }
    }

    async fn cleanup(
        &self,
        s: &Scenario,
        mb: &mut Mailbox,
        own: Option<(&String, u32)>,
        result: &mut RunResult,
    ) {
        if !s.cleanup {
            result.cleanup.note = Some("cleanup is off for this scenario".into());
            return;
        }
        if let Some((folder, uid)) = own {
            match mb.delete(folder, &[uid]).await {
                Ok(n) => result.cleanup.deleted += n as u32,
                Err(e) => result.cleanup.note = Some(e.to_string()),
            }
        }
        let (seen, warnings) = mb.scan_probes(&self.key).await;
        result.warnings.extend(warnings);
        let now = Utc::now();
        let mut by_folder: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for p in seen {
            let pid = p.tag.id.to_string();
            if pid == result.probe_id {
                // Our own probe's bounce, or a duplicate delivery of it.
                by_folder.entry(p.folder).or_default().push(p.uid);
                continue;
            }
            let stored = self.store.get(&pid).ok().flatten();
            let seen_at = p.internal_date.unwrap_or(now);
            let delete = match stored.as_ref().map(|r| r.status.as_str()) {
                Some("lost") => {
                    if self.store.mark_late(&pid, seen_at).unwrap_or(false) {
                        result.cleanup.marked_late.push(pid.clone());
                    }
                    true
                }
                // Finished earlier but its cleanup did not happen: ours to remove.
                Some(st) if st != "pending" => true,
                // In flight (here or in another process) or unknown to this store: only
                // when it is old enough that no run can still be waiting for it.
                _ => (now - p.tag.sent_at)
                    .to_std()
                    .is_ok_and(|age| age > s.sweep_after),
            };
            if delete {
                by_folder.entry(p.folder).or_default().push(p.uid);
            }
        }
        for (folder, uids) in by_folder {
            match mb.delete(&folder, &uids).await {
                Ok(n) => result.cleanup.swept += n as u32,
                Err(e) => result.cleanup.note = Some(e.to_string()),
            }
        }
    }

    fn finish(&self, mut result: RunResult) -> RunResult {
        self.progress.done(&result.scenario);
        // The hints in the operator's runbook, about this scenario's recipient.
        let facts = Facts {
            recipient: self
                .config
                .scenario(&result.scenario)
                .and_then(|s| s.sender.recipients().first().cloned()),
        };
        self.config.runbook.apply(&mut result.findings, &facts);
        let json =
            serde_json::to_string(&result).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        let finished = Utc::now();
        if let Err(e) = self.store.record_result(
            &result.probe_id,
            &result.scenario,
            result.status.as_str(),
            result.sent_at,
            finished,
            result.total_ms,
            &json,
        ) {
            // The result is still reported; say loudly that it was not stored.
            eprintln!("flowtest: {e}");
        }
        result
    }
}

fn reply_line(s: &Submission) -> String {
    match s.code {
        Some(c) => format!("{c} {}", s.text),
        None => s.text.clone(),
    }
}

/// Poll the logs while the probe is in flight. Resolves (ending the wait) only when they show a
/// permanent failure; never resolves otherwise. Deferrals are shown in the progress line.
async fn watch_logs(
    logs: &mut LogWatch,
    probe: &ProbeContext,
    progress: &Progress,
    scenario: &str,
) {
    if logs.is_empty() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        logs.refresh(false).await;
        let t = logs.timeline(probe, &[]);
        match t.status {
            MessageStatus::Bounced | MessageStatus::Rejected => return,
            MessageStatus::Deferred => {
                let why = t
                    .findings
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                let at = t.last_host.unwrap_or_default();
                progress.set(scenario, &format!("deferred at {at}: {why}; still waiting"));
            }
            _ => {}
        }
    }
}

/// The Received hops as fusion wants them: oldest first, with the log role of their stage.
fn header_hops(hops: &[Hop], path: &[StageMatcher]) -> Vec<HeaderHop> {
    hops.iter()
        .map(|h| HeaderHop {
            by: h.by.clone(),
            role: h
                .stage
                .as_ref()
                .and_then(|st| path.iter().find(|m| &m.stage == st))
                .and_then(|m| m.role.clone()),
            timestamp: h.timestamp.as_ref().map(|t| t.utc),
        })
        .collect()
}

/// Stage name for a log role (`ec2` -> `ec2-mx` when a path stage says `role = "ec2"`).
fn stage_for_role(role: &str, path: &[StageMatcher]) -> String {
    path.iter()
        .find(|m| m.role.as_deref() == Some(role))
        .map(|m| m.stage.clone())
        .unwrap_or_else(|| role.to_string())
}

/// Fold the logs' timeline into the result: log-derived stages replace header arithmetic where
/// the logs cover the probe; their findings (deferrals on the way included) join the result's;
/// a probe that did not arrive takes the logs' verdict (bounced, rejected) or names where it
/// was last seen.
fn apply_timeline(result: &mut RunResult, t: ProbeTimeline, path: &[StageMatcher], arrived: bool) {
    if t.hops.is_empty() {
        result.notes.extend(t.notes);
        return;
    }
    result.log_status = Some(t.status.as_str().to_string());
    result.last_hop = t.last_host.as_deref().map(|r| stage_for_role(r, path));
    result.stages = t
        .stages
        .into_iter()
        .map(|mut st| {
            st.name = match st.name.as_str() {
                "submit" => "submission".to_string(),
                n => stage_for_role(n, path),
            };
            st
        })
        .collect();
    // With the mailbox server's own "saved" line, fusion's `detect` stage runs from that save to
    // our detection: what remains of the total is the delivery itself.
    if t.hops.iter().any(|h| h.status == "saved") {
        if let (Some(total), Some(detect)) = (
            result.total_ms,
            result.stages.iter().find(|st| st.name == "detect"),
        ) {
            result.delivered_ms = Some(total - detect.ms as i64);
        }
    }
    result.skew = t.skew;
    result.notes.extend(t.notes);
    for mut f in t.findings {
        if let Some(h) = f.host.as_deref() {
            f.stage = Some(stage_for_role(h, path));
        }
        // The same cause seen at submission and in a log is one finding with both evidences.
        if let Some(existing) = result.findings.iter_mut().find(|e| e.code == f.code) {
            for line in f.evidence {
                existing.add_evidence(&line, 10);
            }
            if existing.host.is_none() {
                existing.host = f.host;
            }
            if existing.first_seen.is_none() {
                existing.first_seen = f.first_seen;
                existing.last_seen = f.last_seen;
            }
            continue;
        }
        result.findings.push(f);
    }
    if !arrived && result.status == Status::Lost {
        result.status = match t.status {
            MessageStatus::Bounced => Status::Bounced,
            MessageStatus::Rejected => Status::Rejected,
            _ => Status::Lost,
        };
    }
}
