//! The result store: every probe result, kept in SQLite (embedded in the state directory, the
//! default) or PostgreSQL (one history several canaries share), and read back as history.
//!
//! Both backends keep the same schema and the same rules: a row is written as `pending` before
//! the probe is sent (so a crash still leaves a trace), then replaced by the final result in one
//! transaction. A probe reported `lost` that shows up later is marked late, never rewritten: the
//! original verdict stays on record. Cleanup claims each probe's removal (and its bounce's) here
//! before deleting, once, with the folder, UIDVALIDITY and UID: a later copy is then known to be a
//! replay. Every row carries the location of the canary (or run) that wrote it; a store writes
//! its own location, and reads its own location's pending rows and last verdict.
//! Not here: what a result means (core), which probes to delete (runner), or which backend the
//! configuration asks for (`config::store`).
mod history;
mod pg_conn;
mod postgres;
mod sqlite;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::store::{PostgresConfig, StoreConfig};
use crate::config::Config;
use crate::core::history::{HistoryFilter, HistoryRow};
use crate::core::verdict::{CopyAt, CopyKind, StoredProbe};
pub use history::ScanSummary;

/// The schema both backends are at: 3 added each row's location.
const SCHEMA_VERSION: i64 = 3;

/// The location rows get when none is configured.
pub const DEFAULT_LOCATION: &str = "default";

/// Why the result store failed. Each names the store (the SQLite file, or the PostgreSQL URL,
/// which never carries a password) and keeps the underlying error as its source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("result store {}: cannot create state directory: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("result store {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("result store {store}: written by a newer flowtest (schema {found}, this one knows {known})")]
    NewerSchema {
        store: String,
        found: i64,
        known: i64,
    },
    #[error("result store {store}: {}", postgres_message(source))]
    Postgres {
        store: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("result store {store}: password: {source}")]
    Password {
        store: String,
        #[source]
        source: crate::config::secret::SecretError,
    },
    #[error("result store {store}: TLS: {source}")]
    Tls {
        store: String,
        #[source]
        source: crate::edge::tls::TlsError,
    },
    /// The store did not answer in time, or its connection thread is gone.
    #[error("result store {store}: {reason}")]
    Unavailable { store: String, reason: String },
}

/// A PostgreSQL error in one line: the server's own message when it sent one (the client's
/// Display says only "db error" then), else the client's with its causes (a TLS handshake
/// failure says why only in its source).
fn postgres_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// A row still `pending`: its run has stored no result (still running, or killed).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    pub probe_id: String,
    pub scenario: String,
    pub sent_at: DateTime<Utc>,
}

/// One stored row, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub probe_id: String,
    pub scenario: String,
    pub location: String,
    pub status: String,
    pub sent_at: DateTime<Utc>,
    pub total_ms: Option<i64>,
    pub result_json: Option<String>,
    pub late_detected_at: Option<DateTime<Utc>>,
    pub late_total_ms: Option<i64>,
}

/// A final result to store.
struct Finished<'a> {
    probe_id: &'a str,
    scenario: &'a str,
    location: &'a str,
    status: &'a str,
    sent_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    total_ms: Option<i64>,
    result_json: &'a str,
}

/// A probe about to be sent, as its pending row records it.
struct Pending<'a> {
    probe_id: &'a str,
    scenario: &'a str,
    location: &'a str,
    sent_at: DateTime<Utc>,
}

/// The final result given to a row still `pending`.
struct Resolution<'a> {
    probe_id: &'a str,
    status: &'a str,
    finished_at: DateTime<Utc>,
    result_json: &'a str,
}

/// One copy of a probe whose removal is claimed or released: the probe, what the copy is, and
/// where it was.
#[derive(Debug, Clone, Copy)]
pub struct Removal<'a> {
    pub probe_id: &'a str,
    pub kind: CopyKind,
    pub at: &'a CopyAt,
}

/// A row as a history scan reads it, before its stored result is parsed (`history`).
struct RawHistoryRow {
    probe_id: String,
    scenario: String,
    location: String,
    status: String,
    /// `None` when the stored text is not a time (SQLite keeps text).
    sent_at: Option<DateTime<Utc>>,
    total_ms: Option<i64>,
    result_json: Option<String>,
    late_detected_at: Option<DateTime<Utc>>,
    late_total_ms: Option<i64>,
}

/// What a backend's scan hands each row to; `Break` ends the scan.
type EachRow<'a> = &'a mut dyn FnMut(RawHistoryRow) -> ControlFlow<()>;

/// What each backend does; [`Store`] adds the location and the rules shared by both.
trait Backend: Send + Sync {
    fn describe(&self) -> String;
    fn record_pending(&self, row: &Pending<'_>) -> Result<(), StoreError>;
    fn record_result(&self, row: &Finished<'_>) -> Result<(), StoreError>;
    fn get(&self, probe_id: &str) -> Result<Option<StoredResult>, StoreError>;
    fn last_status(&self, scenario: &str, location: &str) -> Result<Option<String>, StoreError>;
    /// Read the results table once (bounded like every other call): the store answers.
    fn check(&self) -> Result<(), StoreError>;
    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError>;
    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError>;
    /// Record the removal if none of this kind is recorded yet; true when recorded now.
    fn try_claim(&self, copy: Removal<'_>, when: DateTime<Utc>) -> Result<bool, StoreError>;
    fn release_deletion(&self, copy: Removal<'_>) -> Result<(), StoreError>;
    fn pending_before(
        &self,
        location: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<PendingRow>, StoreError>;
    fn resolve_pending(&self, row: &Resolution<'_>) -> Result<bool, StoreError>;
    fn scan(&self, filter: &HistoryFilter, each: EachRow<'_>) -> Result<(), StoreError>;
}

/// The result store of one canary (or run): a backend and the location it writes.
pub struct Store {
    backend: Box<dyn Backend>,
    location: String,
    /// The SQLite file, when that is the backend.
    path: Option<PathBuf>,
}

impl Store {
    /// Open (creating if needed) the SQLite store `<dir>/flowtest.db`, writing the default
    /// location.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_sqlite(dir, DEFAULT_LOCATION)
    }

    /// Open (creating if needed) the SQLite store `<dir>/flowtest.db`, writing `location`.
    pub fn open_sqlite(dir: &Path, location: &str) -> Result<Store, StoreError> {
        let s = sqlite::SqliteStore::open(dir)?;
        let path = Some(s.path().to_path_buf());
        Ok(Store {
            backend: Box::new(s),
            location: location.to_string(),
            path,
        })
    }

    /// Connect to PostgreSQL (migrating its schema if needed), writing `location`.
    pub fn connect_postgres(cfg: &PostgresConfig, location: &str) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Box::new(postgres::PgStore::connect(cfg)?),
            location: location.to_string(),
            path: None,
        })
    }

    /// The store a configuration names (`[store]`, else SQLite in `state_dir`), writing the
    /// configured `[canary] location`.
    pub fn from_config(config: &Config) -> Result<Store, StoreError> {
        let location = &config.canary.location;
        match &config.store {
            StoreConfig::Sqlite => Store::open_sqlite(&config.state_dir, location),
            StoreConfig::Postgres(pg) => Store::connect_postgres(pg, location),
        }
    }

    /// Whether `config` names this very store and location (a reload that changes either keeps
    /// the store it has until a restart).
    pub fn serves(&self, config: &Config) -> bool {
        let same_store = match (&config.store, &self.path) {
            (StoreConfig::Sqlite, Some(p)) => *p == config.state_dir.join("flowtest.db"),
            (StoreConfig::Postgres(pg), None) => pg.url == self.describe(),
            _ => false,
        };
        same_store && config.canary.location == self.location
    }

    /// The SQLite file, when the store is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The store as errors and logs name it: the file, or the URL (never with a password).
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// The location this store writes.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Record that a probe is about to be sent.
    pub fn record_pending(
        &self,
        probe_id: &str,
        scenario: &str,
        sent_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.backend.record_pending(&Pending {
            probe_id,
            scenario,
            location: &self.location,
            sent_at,
        })
    }

    /// Store the final result (one transaction), replacing its pending row.
    #[allow(clippy::too_many_arguments)]
    pub fn record_result(
        &self,
        probe_id: &str,
        scenario: &str,
        status: &str,
        sent_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        total_ms: Option<i64>,
        result_json: &str,
    ) -> Result<(), StoreError> {
        self.backend.record_result(&Finished {
            probe_id,
            scenario,
            location: &self.location,
            status,
            sent_at,
            finished_at,
            total_ms,
            result_json,
        })
    }

    pub fn get(&self, probe_id: &str) -> Result<Option<StoredResult>, StoreError> {
        self.backend.get(probe_id)
    }

    /// The latest final verdict (not `pending`) this location stored for a scenario: what the
    /// canary shows until its own first verdict.
    pub fn last_status(&self, scenario: &str) -> Result<Option<String>, StoreError> {
        self.backend.last_status(scenario, &self.location)
    }

    /// Whether the store answers now (the canary's `/healthz`); the error names the store.
    pub fn check(&self) -> Result<(), StoreError> {
        self.backend.check()
    }

    /// A probe recorded as `lost` was seen after all: note when, keep the verdict.
    /// Returns true when the row was updated (it was lost and not yet marked late).
    pub fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.backend.mark_late(probe_id, seen_at)
    }

    /// What cleanup needs to know of a probe: its state and its recorded removals.
    pub fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError> {
        self.backend.probe_record(probe_id)
    }

    /// Record, before deleting it, that this copy is the one removal of its kind for the probe.
    /// Atomic across processes (and across canaries sharing a PostgreSQL history): of two runs
    /// claiming at once, one claims and the other learns which copy was claimed.
    pub fn claim_deletion(
        &self,
        probe_id: &str,
        kind: CopyKind,
        at: &CopyAt,
        when: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        if self
            .backend
            .try_claim(Removal { probe_id, kind, at }, when)?
        {
            return Ok(Claim::Claimed);
        }
        let Some(rec) = self.backend.probe_record(probe_id)? else {
            return Ok(Claim::NoRecord);
        };
        Ok(match rec.deleted(kind) {
            Some(done) if done == at => Claim::SameCopy,
            Some(done) => Claim::OtherCopy(done.clone()),
            // Not reachable unless the row changed in between; not ours to delete then.
            None => Claim::NoRecord,
        })
    }

    /// Undo a claim whose deletion did not happen (the server refused, UIDVALIDITY changed).
    pub fn release_deletion(
        &self,
        probe_id: &str,
        kind: CopyKind,
        at: &CopyAt,
    ) -> Result<(), StoreError> {
        self.backend
            .release_deletion(Removal { probe_id, kind, at })
    }

    /// This location's rows still `pending` whose probe was sent before `before`, oldest first:
    /// candidates left by a run that was killed (the caller decides which are past their
    /// deadline). Another location's in-flight probes are its own canary's to resolve.
    pub fn pending_before(&self, before: DateTime<Utc>) -> Result<Vec<PendingRow>, StoreError> {
        self.backend.pending_before(&self.location, before)
    }

    /// Give a row still `pending` its final result (one statement, so one transaction). False
    /// when the row is no longer pending: its own run stored a result meanwhile, which wins.
    pub fn resolve_pending(
        &self,
        probe_id: &str,
        status: &str,
        finished_at: DateTime<Utc>,
        result_json: &str,
    ) -> Result<bool, StoreError> {
        self.backend.resolve_pending(&Resolution {
            probe_id,
            status,
            finished_at,
            result_json,
        })
    }

    /// The history: every row `filter` selects (all locations unless it names some), handed to
    /// `each` one at a time in (scenario, location, sent_at) order, so memory stays bounded
    /// whatever the history's size. `each` returns `ControlFlow::Break(())` to stop early.
    /// A row whose stored result cannot be read is skipped and named in the summary's warnings;
    /// a `pending` row has no stored result and comes with `status: None`, `timeout_ms: 0`.
    /// `each` must not call this store: the scan holds it (SQLite's connection, PostgreSQL's
    /// connection thread) until it ends.
    pub fn scan(
        &self,
        filter: &HistoryFilter,
        each: &mut dyn FnMut(HistoryRow) -> ControlFlow<()>,
    ) -> Result<ScanSummary, StoreError> {
        let mut summary = ScanSummary::default();
        self.backend
            .scan(filter, &mut |raw| match history::to_history_row(raw) {
                Ok(row) => {
                    summary.rows += 1;
                    each(row)
                }
                Err(warning) => {
                    summary.skip(warning);
                    ControlFlow::Continue(())
                }
            })?;
        Ok(summary)
    }
}

/// The outcome of [`Store::claim_deletion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This copy is now recorded as the removal: delete it.
    Claimed,
    /// This very copy was claimed before (another run at the same moment, or a removal that
    /// did not complete): deleting it again is harmless.
    SameCopy,
    /// Another copy was removed already: this one is a replay.
    OtherCopy(CopyAt),
    /// The store has no row for this probe.
    NoRecord,
}

/// The `deleted_at, folder, uidvalidity, uid` columns of a kind of copy.
fn deletion_columns(kind: CopyKind) -> [&'static str; 4] {
    match kind {
        CopyKind::Bounce => [
            "bounce_deleted_at",
            "bounce_deleted_folder",
            "bounce_deleted_uidvalidity",
            "bounce_deleted_uid",
        ],
        // Transplanted copies are never deleted; the probe's columns keep the match total.
        CopyKind::Probe | CopyKind::Transplanted => [
            "deleted_at",
            "deleted_folder",
            "deleted_uidvalidity",
            "deleted_uid",
        ],
    }
}

/// The statement recording the removal of a copy of `kind` unless one is recorded: parameters
/// 1 to 5 are the probe id, when, folder, UIDVALIDITY and UID, each written `{mark}N`.
fn claim_sql(kind: CopyKind, mark: char) -> String {
    let [c0, c1, c2, c3] = deletion_columns(kind);
    format!(
        "UPDATE results SET {c0} = {mark}2, {c1} = {mark}3, {c2} = {mark}4, {c3} = {mark}5
         WHERE probe_id = {mark}1 AND {c0} IS NULL"
    )
}

/// The statement undoing a recorded removal of this very copy: parameters 1 to 4 are the probe
/// id, folder, UIDVALIDITY and UID, each written `{mark}N`.
fn release_sql(kind: CopyKind, mark: char) -> String {
    let [c0, c1, c2, c3] = deletion_columns(kind);
    format!(
        "UPDATE results SET {c0} = NULL, {c1} = NULL, {c2} = NULL, {c3} = NULL
         WHERE probe_id = {mark}1 AND {c1} = {mark}2 AND {c2} = {mark}3 AND {c3} = {mark}4"
    )
}

fn copy_at(folder: Option<String>, uid_validity: Option<u32>, uid: Option<u32>) -> Option<CopyAt> {
    Some(CopyAt {
        folder: folder?,
        uid_validity: uid_validity?,
        uid: uid?,
    })
}

#[cfg(test)]
mod tests;
