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
use crate::core::outcome::{
    client_stages, CleanupReport, RunResult, SloReport, Status, Submission,
};
use crate::core::probe::{ProbeKey, ProbeMessage, ProbeTag};
use crate::core::trace::{trace_message, TraceOptions};
use crate::edge::imap::{self, FetchError, Mailbox};
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
            folder: None,
            detected_by: None,
            submission: None,
            stages: Vec::new(),
            hops: Vec::new(),
            missing_stages: Vec::new(),
            findings: Vec::new(),
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
                self.fetch_failed(&mut result, &e);
                return self.finish(result);
            }
        };
        if s.receiver.idle && !mailbox.uses_idle() {
            result
                .warnings
                .push("the IMAP server does not offer IDLE: polling instead".into());
        }
        let armed = match mailbox.arm(self.key.clone(), id).await {
            Ok(a) => a,
            Err(e) => {
                self.fetch_failed(&mut result, &e);
                return self.finish(result);
            }
        };

        // 2. Send.
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
        let (arrival, mut mailbox, notes) = match &outcome {
            SendOutcome::Accepted(_) => {
                self.progress.set(&s.name, "waiting for arrival");
                armed.wait(deadline, std::future::pending::<()>()).await
            }
            SendOutcome::Rejected(_) | SendOutcome::Failed(_) => {
                armed.wait(Instant::now(), async {}).await
            }
        };
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
        result.stages = client_stages(result.submission.as_ref(), &result.hops);

        // 4. Cleanup: this run's probe, then left-overs of earlier runs.
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

    fn fetch_failed(&self, result: &mut RunResult, e: &FetchError) {
        result.status = Status::FetchFailed;
        let code = match e {
            FetchError::Auth(_) => FindingCode::ImapAuthFailed,
            FetchError::Tls(_) => FindingCode::TlsError,
            _ => FindingCode::NextHopRefused,
        };
        result.findings.push(finding(
            code,
            Some("mailbox"),
            e.to_string(),
            vec![e.to_string()],
        ));
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

    fn finish(&self, result: RunResult) -> RunResult {
        self.progress.done(&result.scenario);
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
