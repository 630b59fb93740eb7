//! The real edges behind the runner's traits: SMTP or SendGrid API submission, the IMAP mailbox, the followed
//! server logs and the result store (SQLite or PostgreSQL). Each adapter only forwards; the protocol work stays in
//! `edge`. Not here: any decision (the runner and core make them).
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use uuid::Uuid;

use super::blocking::blocking;
use super::logshare::LogShare;
use super::ports::{
    ArmedWait, Arming, BoxFuture, Cancel, FinalResult, LogFeed, LogSources, LookRequests,
    MailboxAccess, MailboxSession, Opening, ProbeSender, ResultStore, ResumePoints, Scanning,
    Waited,
};
use crate::config::{SendGridSender, SmtpSender};
use crate::core::diagnosis::Finding;
use crate::core::fusion::{HeaderHop, ProbeContext, ProbeTimeline};
use crate::core::outcome::{AuthMechanism, RunResult};
use crate::core::probe::Installation;
use crate::core::verdict::{CopyAt, StoredProbe};
use crate::edge::imap::{FetchError, Member, SharedArmed, SharedMailbox};
use crate::edge::logsource::LogSourceConfig;
use crate::edge::logwatch::{recent_host_findings, LogWatch};
use crate::edge::sendgrid;
use crate::edge::smtp::{self, SmtpPool, Submitted};
use crate::edge::store::{Claim, PendingRow, Removal, Store, StoreError};

/// SMTP submission as configured by a scenario, secrets resolved, on the connections it
/// shares with the run's other scenarios that submit to the same server the same way.
pub struct SmtpProbeSender {
    pub cfg: SmtpSender,
    pub prepared: smtp::Prepared,
    pub pool: Arc<SmtpPool>,
}

impl ProbeSender for SmtpProbeSender {
    fn send<'a>(&'a self, message: &'a [u8], deadline: Instant) -> BoxFuture<'a, Submitted> {
        Box::pin(smtp::send_pooled(
            &self.pool,
            &self.cfg,
            &self.prepared,
            message,
            deadline,
        ))
    }
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.pool.close())
    }
}

/// SendGrid's v3 API as configured by a scenario, client built and key resolved.
pub struct SendGridProbeSender {
    pub cfg: SendGridSender,
    pub prepared: sendgrid::Prepared,
}

impl ProbeSender for SendGridProbeSender {
    fn send<'a>(&'a self, message: &'a [u8], deadline: Instant) -> BoxFuture<'a, Submitted> {
        Box::pin(async move {
            let started = crate::clock::instant();
            let outcome = sendgrid::send_until(&self.cfg, &self.prepared, message, deadline).await;
            Submitted { outcome, started }
        })
    }
}

/// The receiver's IMAP account, password and TLS resolved: its one session is shared by every
/// probe of the run that watches the same mailbox (`edge::imap::shared`).
pub struct ImapAccount {
    pub shared: Arc<SharedMailbox>,
}

impl MailboxAccess for ImapAccount {
    fn open<'a>(&'a self, resume: &'a [(String, u32)], deadline: Instant) -> Opening<'a> {
        Box::pin(async move {
            let member = self.shared.open(resume, deadline).await?;
            Ok(Box::new(member) as Box<dyn MailboxSession>)
        })
    }
}

impl MailboxSession for Member {
    fn uses_idle(&self) -> bool {
        Member::uses_idle(self)
    }
    fn auth_mechanism(&self) -> Option<AuthMechanism> {
        Some(Member::auth_mechanism(self))
    }
    fn resume_points(&self) -> ResumePoints {
        self.starts()
    }
    fn arm(self: Box<Self>, key: Installation, want: Uuid, deadline: Instant) -> Arming {
        Box::pin(async move {
            let armed = Member::arm(*self, key, want, deadline).await?;
            Ok(Box::new(armed) as Box<dyn ArmedWait>)
        })
    }
    fn until_quiet(&self, by: Instant) -> BoxFuture<'_, ()> {
        Box::pin(Member::until_quiet(self, by))
    }
    fn scan_probes<'a>(&'a mut self, key: &'a Installation) -> Scanning<'a> {
        Box::pin(Member::scan_probes(self, key))
    }
    fn delete<'a>(&'a mut self, at: &'a CopyAt) -> BoxFuture<'a, Result<usize, FetchError>> {
        Box::pin(Member::delete(self, at))
    }
    fn logout(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(Member::logout(*self))
    }
}

impl ArmedWait for SharedArmed {
    fn wait<'a>(self: Box<Self>, deadline: Instant, cancel: Cancel<'a>) -> BoxFuture<'a, Waited> {
        Box::pin(async move {
            let (end, member, notes) = SharedArmed::wait(*self, deadline, cancel).await;
            Waited {
                end,
                session: member.map(|m| Box::new(m) as Box<dyn MailboxSession>),
                notes,
            }
        })
    }
    fn looks(&self) -> LookRequests {
        SharedArmed::looks(self)
    }
}

/// The `[[log_source]]`s of the configuration, followed by one feed for the probes in flight
/// together (`logshare`).
pub struct ConfiguredLogs {
    sources: Vec<LogSourceConfig>,
    share: LogShare,
}

impl ConfiguredLogs {
    pub fn new(sources: Vec<LogSourceConfig>) -> ConfiguredLogs {
        ConfiguredLogs {
            sources,
            share: LogShare::default(),
        }
    }
}

impl LogSources for ConfiguredLogs {
    fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
    fn follow(&self) -> (Box<dyn LogFeed>, Vec<String>) {
        self.share.follow(crate::clock::instant(), || {
            let (watch, warnings) = LogWatch::start(&self.sources);
            (Box::new(watch) as Box<dyn LogFeed>, warnings)
        })
    }
    fn recent_host_findings(
        &self,
        lookback: Duration,
    ) -> BoxFuture<'_, (Vec<Finding>, Vec<String>)> {
        Box::pin(recent_host_findings(&self.sources, lookback))
    }
}

impl LogFeed for LogWatch {
    fn is_empty(&self) -> bool {
        LogWatch::is_empty(self)
    }
    fn refresh(&mut self, force: bool) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            LogWatch::refresh(self, force).await;
            self.lines_parsed()
        })
    }
    fn warnings(&self) -> BoxFuture<'_, Vec<String>> {
        let w = LogWatch::warnings(self);
        Box::pin(async move { w })
    }
    fn timeline<'a>(
        &'a self,
        probe: &'a ProbeContext,
        header_hops: &'a [HeaderHop],
    ) -> BoxFuture<'a, ProbeTimeline> {
        let t = LogWatch::timeline(self, probe, header_hops);
        Box::pin(async move { t })
    }
}

impl ResultStore for Store {
    fn record_pending(&self, result: &RunResult) -> Result<(), StoreError> {
        blocking(|| Store::record_pending(self, &result.probe_id, &result.scenario, result.sent_at))
    }
    fn record_result(&self, done: &FinalResult<'_>) -> Result<(), StoreError> {
        let result = done.result;
        blocking(|| {
            Store::record_result(
                self,
                &result.probe_id,
                &result.scenario,
                result.status.as_str(),
                result.sent_at,
                done.finished_at,
                result.total_ms,
                done.json,
            )
        })
    }
    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError> {
        blocking(|| Store::probe_record(self, probe_id))
    }
    fn claim_deletion(&self, copy: Removal<'_>, when: DateTime<Utc>) -> Result<Claim, StoreError> {
        blocking(|| Store::claim_deletion(self, copy.probe_id, copy.kind, copy.at, when))
    }
    fn release_deletion(&self, copy: Removal<'_>) -> Result<(), StoreError> {
        blocking(|| Store::release_deletion(self, copy.probe_id, copy.kind, copy.at))
    }
    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError> {
        blocking(|| Store::mark_late(self, probe_id, seen_at))
    }
    fn pending_before(&self, before: DateTime<Utc>) -> Result<Vec<PendingRow>, StoreError> {
        blocking(|| Store::pending_before(self, before))
    }
    fn resolve_pending(&self, done: &FinalResult<'_>) -> Result<bool, StoreError> {
        let (id, status) = (&done.result.probe_id, done.result.status.as_str());
        blocking(|| Store::resolve_pending(self, id, status, done.finished_at, done.json))
    }
}
