//! The runner's edges as small traits: a probe sender, a mailbox (account, session, armed
//! watch), a log feed and a result store. Real implementations are thin adapters over the edges
//! (`adapters.rs`); tests drive the runner with fakes. Not here: any protocol detail.
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use uuid::Uuid;

use crate::core::diagnosis::Finding;
use crate::core::fusion::{HeaderHop, ProbeContext, ProbeTimeline};
use crate::core::outcome::{AuthMechanism, RunResult};
use crate::core::probe::Installation;
use crate::core::verdict::{CopyAt, CopyKind, StoredProbe};
use crate::edge::imap::{FetchError, ScannedCopy, WaitEnd, WaitNotes};
pub use crate::edge::imap::{Look, LookRequests};
use crate::edge::smtp::SendOutcome;
use crate::edge::store::{Claim, PendingRow, StoreError};

/// A boxed future that may move between threads (runs are spawned on tokio).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The fail-fast future handed to a wait: it resolves when the logs show a permanent failure.
pub type Cancel<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>;

/// Where "new" starts in each watched folder, as a session reported it: handed back when a
/// lost session is re-opened, so the new one looks at everything since the probe was sent.
pub type ResumePoints = Vec<(String, u32)>;

/// Submits one rendered probe (SMTP today).
pub trait ProbeSender: Send + Sync {
    /// Submit `message`; every step of the submission ends by `deadline` (the probe's).
    fn send<'a>(&'a self, message: &'a [u8], deadline: Instant) -> BoxFuture<'a, SendOutcome>;
}

/// The receiver's account: opens mailbox sessions.
pub trait MailboxAccess: Send + Sync {
    /// Log in and select the watched folders by `deadline`; "new" starts where `resume` says
    /// for the folders it names (empty: now).
    fn open<'a>(
        &'a self,
        resume: &'a [(String, u32)],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Box<dyn MailboxSession>, FetchError>>;
}

/// One logged-in mailbox session.
pub trait MailboxSession: Send {
    /// Whether push detection (IDLE) will be used.
    fn uses_idle(&self) -> bool;
    /// How the session authenticated (None: not known, e.g. a fake).
    fn auth_mechanism(&self) -> Option<AuthMechanism> {
        None
    }
    fn resume_points(&self) -> ResumePoints;
    /// Arm detection of probe `want`; returns once armed (the probe may be sent then). The
    /// watch's steps are bounded by `deadline`, the probe's.
    fn arm(
        self: Box<Self>,
        key: Installation,
        want: Uuid,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<Box<dyn ArmedWait>, FetchError>>;
    /// Every message carrying a genuine tag of this installation in the watched folders (probes,
    /// bounces quoting one, transplanted tags), with the UIDVALIDITY each UID was read under,
    /// and warnings.
    fn scan_probes<'a>(
        &'a mut self,
        key: &'a Installation,
    ) -> BoxFuture<'a, (Vec<ScannedCopy>, Vec<String>)>;
    /// Delete these UIDs (verified probes only) from `folder`, unless its UIDVALIDITY is no
    /// longer `uid_validity`; the count deleted.
    fn delete<'a>(
        &'a mut self,
        folder: &'a str,
        uid_validity: u32,
        uids: &'a [u32],
    ) -> BoxFuture<'a, Result<usize, FetchError>>;
    fn logout(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Detection armed and running.
pub trait ArmedWait: Send {
    /// Wait until the probe arrives, `deadline` passes, `cancel` resolves, or every session is
    /// lost. The session comes back (for cleanup) when it survived.
    fn wait<'a>(self: Box<Self>, deadline: Instant, cancel: Cancel<'a>) -> BoxFuture<'a, Waited>;
    /// Where to ask this watch for a look now (the runner's window after acceptance, a save
    /// seen in the logs, the backstop); take it before `wait`.
    fn looks(&self) -> LookRequests;
}

/// How a wait ended, with the session when it survived.
pub struct Waited {
    pub end: WaitEnd,
    pub session: Option<Box<dyn MailboxSession>>,
    pub notes: WaitNotes,
}

/// The configured server logs.
pub trait LogSources: Send + Sync {
    /// No source configured: no log evidence at all.
    fn is_empty(&self) -> bool;
    /// Start following every source now (right before sending), with setup warnings.
    fn follow(&self) -> (Box<dyn LogFeed>, Vec<String>);
    /// Host-level findings logged in the last `lookback`, with warnings.
    fn recent_host_findings(
        &self,
        lookback: Duration,
    ) -> BoxFuture<'_, (Vec<Finding>, Vec<String>)>;
}

/// Log lines being gathered for one probe.
pub trait LogFeed: Send {
    fn is_empty(&self) -> bool;
    /// Take in new lines; `force` re-fetches windowed sources now.
    fn refresh(&mut self, force: bool) -> BoxFuture<'_, ()>;
    /// Problems reading the sources.
    fn warnings(&self) -> Vec<String>;
    /// The probe's fused timeline from the lines gathered so far.
    fn timeline(&self, probe: &ProbeContext, header_hops: &[HeaderHop]) -> ProbeTimeline;
}

/// Where results are kept.
pub trait ResultStore: Send + Sync {
    fn record_pending(
        &self,
        probe_id: &str,
        scenario: &str,
        sent_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Store the final result (`json` is its serialized form).
    fn record_result(
        &self,
        result: &RunResult,
        json: &str,
        finished_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The probe's state and recorded removals, if this store holds it.
    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError>;
    /// Record this copy as the one removal of its kind, before deleting it.
    fn claim_deletion(
        &self,
        probe_id: &str,
        kind: CopyKind,
        at: &CopyAt,
        when: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;
    /// Undo a claim whose deletion did not happen.
    fn release_deletion(
        &self,
        probe_id: &str,
        kind: CopyKind,
        at: &CopyAt,
    ) -> Result<(), StoreError>;
    /// A probe recorded `lost` was seen after all; true when it was marked now.
    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Rows still `pending` sent before `before` (left by a run that may have been killed).
    fn pending_before(&self, before: DateTime<Utc>) -> Result<Vec<PendingRow>, StoreError>;
    /// Store `result` for a row that is still `pending`; false when it is not (any more).
    fn resolve_pending(
        &self,
        result: &RunResult,
        json: &str,
        finished_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
