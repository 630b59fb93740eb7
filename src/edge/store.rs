//! The result store: an embedded SQLite database in the state directory.
//!
//! Every measured result is kept: a row is written as `pending` before the probe is sent (so a
//! crash still leaves a trace), then replaced by the final result in one transaction. WAL mode
//! and a busy timeout let a canary and a one-shot run share the file. A probe reported `lost`
//! that shows up later is marked late, never rewritten: the original verdict stays on record.
//! Cleanup claims each probe's removal (and its bounce's) here before deleting, once, with the
//! folder, UIDVALIDITY and UID: a later copy is then known to be a replay.
//! Not here: what a result means (core) or which probes to delete (runner).
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::core::verdict::{CopyAt, CopyKind, RecordState, StoredProbe};

const SCHEMA_VERSION: i64 = 2;

/// Schema 2: where and when each probe (and its bounce) was deleted, once. Added columns only,
/// so a schema-1 database keeps its rows and an older flowtest is refused by the version check.
const MIGRATE_TO_2: &str = "
    ALTER TABLE results ADD COLUMN deleted_at TEXT;
    ALTER TABLE results ADD COLUMN deleted_folder TEXT;
    ALTER TABLE results ADD COLUMN deleted_uidvalidity INTEGER;
    ALTER TABLE results ADD COLUMN deleted_uid INTEGER;
    ALTER TABLE results ADD COLUMN bounce_deleted_at TEXT;
    ALTER TABLE results ADD COLUMN bounce_deleted_folder TEXT;
    ALTER TABLE results ADD COLUMN bounce_deleted_uidvalidity INTEGER;
    ALTER TABLE results ADD COLUMN bounce_deleted_uid INTEGER;
    PRAGMA user_version = 2;";

/// Why the result store failed. Each names the database file and keeps the underlying error
/// as its source.
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
    #[error(
        "result store {}: written by a newer flowtest (schema {found}, this one knows {known})",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
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
    pub status: String,
    pub sent_at: DateTime<Utc>,
    pub total_ms: Option<i64>,
    pub result_json: Option<String>,
    pub late_detected_at: Option<DateTime<Utc>>,
    pub late_total_ms: Option<i64>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

impl Store {
    /// Open (creating if needed) `<dir>/flowtest.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("flowtest.db");
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // FULL, not NORMAL: with WAL, NORMAL may lose the last commits on a power cut (the WAL is
        // not synced at each commit). A result is printed only after it is stored, so a printed
        // result must survive; one fsync per probe result costs nothing next to a mail round trip.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let mut conn = conn;
        // One process migrates; another opening the file at the same time waits, then sees the
        // new version.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS results (
                probe_id TEXT PRIMARY KEY,
                scenario TEXT NOT NULL,
                status TEXT NOT NULL,
                sent_at TEXT NOT NULL,
                finished_at TEXT,
                total_ms INTEGER,
                result_json TEXT,
                late_detected_at TEXT,
                late_total_ms INTEGER
            );
            CREATE INDEX IF NOT EXISTS results_by_scenario ON results(scenario, sent_at);            ",
        )
        .map_err(err)?;
        if version < 2 {
            tx.execute_batch(MIGRATE_TO_2).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Store {
            path,
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions), so a
        // poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record that a probe is about to be sent.
    pub fn record_pending(
        &self,
        probe_id: &str,
        scenario: &str,
        sent_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO results (probe_id, scenario, status, sent_at) VALUES (?1, ?2, 'pending', ?3)",
                params![probe_id, scenario, ts(sent_at)],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Store the final result (one transaction).
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
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO results (probe_id, scenario, status, sent_at, finished_at, total_ms, result_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(probe_id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
               total_ms = excluded.total_ms, result_json = excluded.result_json",
            params![probe_id, scenario, status, ts(sent_at), ts(finished_at), total_ms, result_json],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn get(&self, probe_id: &str) -> Result<Option<StoredResult>, StoreError> {
        self.conn()
            .query_row(
                "SELECT probe_id, scenario, status, sent_at, total_ms, result_json, late_detected_at, late_total_ms
                 FROM results WHERE probe_id = ?1",
                params![probe_id],
                |r| {
                    Ok(StoredResult {
                        probe_id: r.get(0)?,
                        scenario: r.get(1)?,
                        status: r.get(2)?,
                        sent_at: parse_ts(&r.get::<_, String>(3)?).unwrap_or_default(),
                        total_ms: r.get(4)?,
                        result_json: r.get(5)?,
                        late_detected_at: r.get::<_, Option<String>>(6)?.as_deref().and_then(parse_ts),
                        late_total_ms: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The latest final verdict (not `pending`) stored for a scenario: what the canary shows
    /// until its own first verdict.
    pub fn last_status(&self, scenario: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT status FROM results WHERE scenario = ?1 AND status != 'pending'
                 ORDER BY sent_at DESC LIMIT 1",
                params![scenario],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A probe recorded as `lost` was seen after all: note when, keep the verdict.
    /// Returns true when the row was updated (it was lost and not yet marked late).
    pub fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(row) = self.get(probe_id)? else {
            return Ok(false);
        };
        if row.status != "lost" || row.late_detected_at.is_some() {
            return Ok(false);
        }
        let late_ms = (seen_at - row.sent_at).num_milliseconds();
        let n = self
            .conn()
            .execute(
                "UPDATE results SET late_detected_at = ?2, late_total_ms = ?3
                 WHERE probe_id = ?1 AND status = 'lost' AND late_detected_at IS NULL",
                params![probe_id, ts(seen_at), late_ms],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// What cleanup needs to know of a probe: its state and its recorded removals.
    pub fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError> {
        self.conn()
            .query_row(
                "SELECT status, deleted_folder, deleted_uidvalidity, deleted_uid,
                        bounce_deleted_folder, bounce_deleted_uidvalidity, bounce_deleted_uid
                 FROM results WHERE probe_id = ?1",
                params![probe_id],
                |r| {
                    Ok(StoredProbe {
                        state: RecordState::from_status(&r.get::<_, String>(0)?),
                        probe_deleted: copy_at(r.get(1)?, r.get(2)?, r.get(3)?),
                        bounce_deleted: copy_at(r.get(4)?, r.get(5)?, r.get(6)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Record, before deleting it, that this copy is the one removal of its kind for the probe.
    /// Atomic across processes: of two runs claiming at once, one claims and the other learns
    /// which copy was claimed.
    pub fn claim_deletion(
        &self,
        probe_id: &str,
        kind: CopyKind,
        at: &CopyAt,
        when: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let cols = deletion_columns(kind);
        let n = self
            .conn()
            .execute(
                &format!(
                    "UPDATE results SET {} = ?2, {} = ?3, {} = ?4, {} = ?5
                     WHERE probe_id = ?1 AND {} IS NULL",
                    cols[0], cols[1], cols[2], cols[3], cols[0]
                ),
                params![probe_id, ts(when), at.folder, at.uid_validity, at.uid],
            )
            .map_err(|e| self.err(e))?;
        if n == 1 {
            return Ok(Claim::Claimed);
        }
        let Some(rec) = self.probe_record(probe_id)? else {
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
        let cols = deletion_columns(kind);
        self.conn()
            .execute(
                &format!(
                    "UPDATE results SET {c0} = NULL, {c1} = NULL, {c2} = NULL, {c3} = NULL
                     WHERE probe_id = ?1 AND {c1} = ?2 AND {c2} = ?3 AND {c3} = ?4",
                    c0 = cols[0],
                    c1 = cols[1],
                    c2 = cols[2],
                    c3 = cols[3]
                ),
                params![probe_id, at.folder, at.uid_validity, at.uid],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
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

fn copy_at(folder: Option<String>, uid_validity: Option<u32>, uid: Option<u32>) -> Option<CopyAt> {
    Some(CopyAt {
        folder: folder?,
        uid_validity: uid_validity?,
        uid: uid?,
    })
}

impl Store {
    /// The rows still `pending` whose probe was sent before `before`, oldest first: candidates
    /// left by a run that was killed (the caller decides which are past their deadline).
    pub fn pending_before(&self, before: DateTime<Utc>) -> Result<Vec<PendingRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT probe_id, scenario, sent_at FROM results
                 WHERE status = 'pending' ORDER BY sent_at",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (probe_id, scenario, sent_at) = row.map_err(|e| self.err(e))?;
            // Timestamps are compared parsed: text order breaks across time zones and precisions.
            match parse_ts(&sent_at) {
                Some(sent_at) if sent_at < before => out.push(PendingRow {
                    probe_id,
                    scenario,
                    sent_at,
                }),
                Some(_) => {}
                None => {
                    tracing::warn!(%probe_id, %sent_at, "pending row with an unreadable send time")
                }
            }
        }
        Ok(out)
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
        let n = self
            .conn()
            .execute(
                "UPDATE results SET status = ?2, finished_at = ?3, result_json = ?4
                 WHERE probe_id = ?1 AND status = 'pending'",
                params![probe_id, status, ts(finished_at), result_json],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn pending_then_result_then_late() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        s.record_pending("p1", "lab-inbound", t0).unwrap();
        assert_eq!(s.get("p1").unwrap().unwrap().status, "pending");
        s.record_result(
            "p1",
            "lab-inbound",
            "lost",
            t0,
            t0 + chrono::Duration::seconds(5),
            None,
            "{}",
        )
        .unwrap();
        let seen = t0 + chrono::Duration::seconds(42);
        assert!(s.mark_late("p1", seen).unwrap());
        assert!(!s.mark_late("p1", seen).unwrap(), "marked once only");
        let row = s.get("p1").unwrap().unwrap();
        assert_eq!(row.status, "lost", "the original verdict stays");
        assert_eq!(row.late_total_ms, Some(42_000));
        assert_eq!(row.late_detected_at, Some(seen));
        // Delivered probes are never marked late; unknown ids are ignored.
        s.record_result("p2", "x", "delivered", t0, t0, Some(10), "{}")
            .unwrap();
        assert!(!s.mark_late("p2", seen).unwrap());
        assert!(!s.mark_late("nope", seen).unwrap());
        assert_eq!(s.last_status("x").unwrap().as_deref(), Some("delivered"));
        s.record_pending("p3", "x", t0 + chrono::Duration::seconds(60))
            .unwrap();
        assert_eq!(
            s.last_status("x").unwrap().as_deref(),
            Some("delivered"),
            "pending skipped"
        );
        assert_eq!(s.last_status("none").unwrap(), None);
    }

    #[test]
    fn pending_rows_are_listed_and_resolved_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        let sec = chrono::Duration::seconds;
        s.record_pending("old", "a", t0).unwrap();
        s.record_pending("young", "b", t0 + sec(60)).unwrap();
        s.record_pending("done", "a", t0).unwrap();
        s.record_result("done", "a", "delivered", t0, t0 + sec(1), Some(5), "{}")
            .unwrap();
        let listed = s.pending_before(t0 + sec(30)).unwrap();
        assert_eq!(
            listed,
            vec![PendingRow {
                probe_id: "old".into(),
                scenario: "a".into(),
                sent_at: t0
            }]
        );
        assert_eq!(s.pending_before(t0 + sec(61)).unwrap().len(), 2);

        assert!(s
            .resolve_pending("old", "lost", t0 + sec(90), "{\"x\":1}")
            .unwrap());
        assert!(
            !s.resolve_pending("old", "lost", t0 + sec(91), "{}")
                .unwrap(),
            "once"
        );
        assert!(
            !s.resolve_pending("done", "lost", t0 + sec(91), "{}")
                .unwrap(),
            "a stored result wins"
        );
        let row = s.get("old").unwrap().unwrap();
        assert_eq!(row.status, "lost");
        assert_eq!(row.sent_at, t0);
        assert_eq!(row.result_json.as_deref(), Some("{\"x\":1}"));
        assert_eq!(s.get("done").unwrap().unwrap().status, "delivered");
        // Resolved to lost, a late arrival is then marked as for any lost probe.
        assert!(s.mark_late("old", t0 + sec(120)).unwrap());
        assert_eq!(s.pending_before(t0 + sec(61)).unwrap().len(), 1);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        Store::open(dir.path())
            .unwrap()
            .record_result("p", "s", "delivered", t0, t0, Some(7), "{\"a\":1}")
            .unwrap();
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(
            again.get("p").unwrap().unwrap().result_json.as_deref(),
            Some("{\"a\":1}")
        );
    }

    fn at(uid: u32) -> CopyAt {
        CopyAt {
            folder: "INBOX".into(),
            uid_validity: 11,
            uid,
        }
    }

    #[test]
    fn a_removal_is_claimed_once_per_kind_and_can_be_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        assert_eq!(
            s.claim_deletion("p", CopyKind::Probe, &at(3), t0).unwrap(),
            Claim::NoRecord
        );
        s.record_pending("p", "lab-inbound", t0).unwrap();
        assert_eq!(
            s.claim_deletion("p", CopyKind::Probe, &at(3), t0).unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            s.claim_deletion("p", CopyKind::Probe, &at(3), t0).unwrap(),
            Claim::SameCopy
        );
        assert_eq!(
            s.claim_deletion("p", CopyKind::Probe, &at(4), t0).unwrap(),
            Claim::OtherCopy(at(3))
        );
        // The bounce is removed once too, independently of the probe.
        assert_eq!(
            s.claim_deletion("p", CopyKind::Bounce, &at(9), t0).unwrap(),
            Claim::Claimed
        );
        // The final result keeps the recorded removals.
        s.record_result("p", "lab-inbound", "delivered", t0, t0, Some(5), "{}")
            .unwrap();
        let rec = s.probe_record("p").unwrap().unwrap();
        assert_eq!(rec.state, RecordState::Finished);
        assert_eq!(rec.probe_deleted, Some(at(3)));
        assert_eq!(rec.bounce_deleted, Some(at(9)));
        // Giving back another copy's claim changes nothing; the claimed copy's clears it.
        s.release_deletion("p", CopyKind::Probe, &at(4)).unwrap();
        assert_eq!(
            s.probe_record("p").unwrap().unwrap().probe_deleted,
            Some(at(3))
        );
        s.release_deletion("p", CopyKind::Probe, &at(3)).unwrap();
        let rec = s.probe_record("p").unwrap().unwrap();
        assert_eq!((rec.probe_deleted, rec.bounce_deleted), (None, Some(at(9))));
        assert_eq!(s.probe_record("nope").unwrap(), None);
    }

    #[test]
    fn a_schema_1_database_is_migrated_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join("flowtest.db")).unwrap();
            c.execute_batch(
                "CREATE TABLE results (probe_id TEXT PRIMARY KEY, scenario TEXT NOT NULL,
                   status TEXT NOT NULL, sent_at TEXT NOT NULL, finished_at TEXT, total_ms INTEGER,
                   result_json TEXT, late_detected_at TEXT, late_total_ms INTEGER);
                 INSERT INTO results (probe_id, scenario, status, sent_at)
                   VALUES ('old', 's', 'lost', '2026-11-28T06:00:00Z');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let rec = s.probe_record("old").unwrap().unwrap();
        assert_eq!(rec.state, RecordState::Lost);
        assert_eq!(rec.probe_deleted, None);
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap();
        assert_eq!(
            s.claim_deletion("old", CopyKind::Probe, &at(1), t0)
                .unwrap(),
            Claim::Claimed
        );
        drop(s);
        // Opening again (already migrated) is a no-op.
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.probe_record("old").unwrap().unwrap().probe_deleted,
            Some(at(1))
        );
    }

    #[test]
    fn errors_name_the_file_and_keep_their_source() {
        use std::error::Error;
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.conn().execute_batch("PRAGMA user_version = 99;").unwrap();
        drop(s);
        let e = Store::open(dir.path()).err().expect("newer schema refused");
        let db = dir.path().join("flowtest.db");
        assert_eq!(
            e.to_string(),
            format!(
                "result store {}: written by a newer flowtest (schema 99, this one knows 2)",
                db.display()
            )
        );

        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let e = Store::open(&file).err().expect("a file is not a directory");
        assert!(
            e.to_string().contains("cannot create state directory"),
            "{e}"
        );
        assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
    }
}
