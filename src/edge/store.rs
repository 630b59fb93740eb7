//! The result store: an embedded SQLite database in the state directory.
//!
//! Every measured result is kept: a row is written as `pending` before the probe is sent (so a
//! crash still leaves a trace), then replaced by the final result in one transaction. WAL mode
//! and a busy timeout let a canary and a one-shot run share the file. A probe reported `lost`
//! that shows up later is marked late, never rewritten: the original verdict stays on record.
//! Not here: what a result means (core) or which probes to delete (runner).
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA_VERSION: i64 = 1;

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
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(
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
            CREATE INDEX IF NOT EXISTS results_by_scenario ON results(scenario, sent_at);
            PRAGMA user_version = 1;",
        )
        .map_err(err)?;
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
                "result store {}: written by a newer flowtest (schema 99, this one knows 1)",
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
