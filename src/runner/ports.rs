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
use crate::core::verdict::{CopyAt, StoredProbe};
use crate::edge::imap::{FetchError, ScannedCopy, WaitEnd, WaitNotes};
pub use crate::edge::imap::{Look, LookRequests};
use crate::edge::smtp::Submitted;
use crate::edge::store::{Claim, PendingRow, Removal, StoreError};

/// A boxed future that may move between threads (runs are spawned on tokio).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The fail-fast future handed to a wait: it resolves when the logs show a permanent failure.
pub type Cancel<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>;

/// Where "new" starts in each watched folder, as a session reported it: handed back when a
/// lost session is re-opened, so the new one looks at everything since the probe was sent.
pub type ResumePoints = Vec<(String, u32)>;

/// A mailbox session being opened.
pub type Opening<'a> = BoxFuture<'a, Result<Box<dyn MailboxSession>, FetchError>>;

/// Detection being armed.
pub type Arming = BoxFuture<'static, Result<Box<dyn ArmedWait>, FetchError>>;

/// A scan of the watched folders: the copies found, and warnings.
pub type Scanning<'a> = BoxFuture<'a, (Vec<ScannedCopy>, Vec<String>)>;

/// Submits one rendered probe (SMTP or SendGrid's API).
pub trait ProbeSender: Send + Sync {
    /// Submit `message`; every step of the submission ends by `deadline` (the probe's). The
    /// answer says when the submission started: a sender may first wait for its turn on a
    /// connection shared with other probes, which is not the mail system's time.
    fn send<'a>(&'a self, message: &'a [u8], deadline: Instant) -> BoxFuture<'a, Submitted>;
    /// Close what the sender keeps open between probes (idle SMTP connections): the run is
    /// over. Sending again later opens anew.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The receiver's account: opens mailbox sessions.
pub trait MailboxAccess: Send + Sync {
    /// Log in and select the watched folders by `deadline`; "new" starts where `resume` says
    /// for the folders it names (empty: now).
    fn open<'a>(&'a self, resume: &'a [(String, u32)], deadline: Instant) -> Opening<'a>;
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
    fn arm(self: Box<Self>, key: Installation, want: Uuid, deadline: Instant) -> Arming;
    /// Wait, until `by` at most, for no other probe on this session to be waiting for its
    /// delivery (a session of its own: at once).
    fn until_quiet(&self, _by: Instant) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
    /// Every message carrying a genuine tag of this installation in the watched folders (probes,
    /// bounces quoting one, transplanted tags), with the UIDVALIDITY each UID was read under,
    /// and warnings.
    fn scan_probes<'a>(&'a mut self, key: &'a Installation) -> Scanning<'a>;
    /// Delete this copy (a verified probe's) from its folder, unless the folder's UIDVALIDITY is
    /// no longer the one its UID was read under; the count deleted.
    fn delete<'a>(&'a mut self, at: &'a CopyAt) -> BoxFuture<'a, Result<usize, FetchError>>;
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
    /// Take in new lines; `force` re-fetches windowed sources now. Returns how many lines the
    /// feed has taken in so far: while that number stays the same, so does every timeline.
    fn refresh(&mut self, force: bool) -> BoxFuture<'_, u64>;
    /// Problems reading the sources.
    fn warnings(&self) -> BoxFuture<'_, Vec<String>>;
    /// The probe's fused timeline from the lines gathered so far (a feed shared by several
    /// probes is waited for while another one refreshes it).
    fn timeline<'a>(
        &'a self,
        probe: &'a ProbeContext,
        header_hops: &'a [HeaderHop],
    ) -> BoxFuture<'a, ProbeTimeline>;
}

/// A final result as it is stored: the result, its serialized form, and when it was finished.
pub struct FinalResult<'a> {
    pub result: &'a RunResult,
    pub json: &'a str,
    pub finished_at: DateTime<Utc>,
}

/// Where results are kept.
pub trait ResultStore: Send + Sync {
    /// Record the probe of `result` (its id, scenario and send time) as pending.
    fn record_pending(&self, result: &RunResult) -> Result<(), StoreError>;
    /// Store the final result.
    fn record_result(&self, done: &FinalResult<'_>) -> Result<(), StoreError>;
    /// The probe's state and recorded removals, if this store holds it.
    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError>;
    /// Record this copy as the one removal of its kind, before deleting it.
    fn claim_deletion(&self, copy: Removal<'_>, when: DateTime<Utc>) -> Result<Claim, StoreError>;
    /// Undo a claim whose deletion did not happen.
    fn release_deletion(&self, copy: Removal<'_>) -> Result<(), StoreError>;
    /// A probe recorded `lost` was seen after all; true when it was marked now.
    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Rows still `pending` sent before `before` (left by a run that may have been killed).
    fn pending_before(&self, before: DateTime<Utc>) -> Result<Vec<PendingRow>, StoreError>;
    /// Store the result for a row that is still `pending`; false when it is not (any more).
    fn resolve_pending(&self, done: &FinalResult<'_>) -> Result<bool, StoreError>;
}
