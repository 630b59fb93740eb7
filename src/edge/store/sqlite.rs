//! The SQLite backend: one file in the state directory. WAL mode and a busy timeout let a
//! canary and a one-shot run share the file; times are kept as fixed-width RFC 3339 text
//! (nanoseconds, `Z`), so text order is time order. Not here: the rules shared with PostgreSQL
//! (`Store`), reading stored results as history rows (`history`).
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::{
    claim_sql, copy_at, release_sql, Backend, EachRow, Finished, Pending, PendingRow,
    RawHistoryRow, Removal, Resolution, StoreError, StoredResult, SCHEMA_VERSION,
};
use crate::core::history::HistoryFilter;
use crate::core::verdict::{RecordState, StoredProbe};

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

/// Schema 3: the location of the canary (or run) that wrote each row. Rows written before it
/// came from a single, unnamed location: `default`.
const MIGRATE_TO_3: &str = "
    ALTER TABLE results ADD COLUMN location TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX IF NOT EXISTS results_by_location ON results(scenario, location, sent_at);
    PRAGMA user_version = 3;";

/// Verdicts a later arrival is recorded against (`late`): the run saw no arrival.
const UNRESOLVED: [&str; 2] = ["lost", "interrupted"];

pub(super) struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// How long a statement waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether SQLite said another connection holds the lock it needs.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Turn WAL on (the file keeps it). The switch needs the file to itself, and when another
/// process is opening the same new file SQLite reports its lock at once instead of waiting in
/// the busy handler: several runs started together on a fresh state directory failed with
/// "database is locked". So the switch is tried again within [`BUSY_TIMEOUT`].
fn wal_on(conn: &Connection) -> rusqlite::Result<()> {
    let until = crate::clock::std_instant() + BUSY_TIMEOUT;
    loop {
        let mode =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0));
        match mode {
            Err(e) if is_busy(&e) && crate::clock::std_instant() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other.map(|_| ()),
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) `<dir>/flowtest.db`, migrating it to the current schema.
    pub(super) fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
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
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        wal_on(&conn).map_err(err)?;
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
                store: path.display().to_string(),
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
            CREATE INDEX IF NOT EXISTS results_by_scenario ON results(scenario, sent_at);",
        )
        .map_err(err)?;
        if version < 2 {
            tx.execute_batch(MIGRATE_TO_2).map_err(err)?;
        }
        if version < 3 {
            tx.execute_batch(MIGRATE_TO_3).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn path(&self) -> &Path {
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

    /// Run one statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.conn().execute(sql, params).map_err(|e| self.err(e))
    }
}

impl Backend for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn record_pending(&self, r: &Pending<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR IGNORE INTO results (probe_id, scenario, location, status, sent_at)
             VALUES (?1, ?2, ?3, 'pending', ?4)",
            params![r.probe_id, r.scenario, r.location, ts(r.sent_at)],
        )
        .map(|_| ())
    }

    fn record_result(&self, r: &Finished<'_>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO results (probe_id, scenario, location, status, sent_at, finished_at, total_ms, result_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(probe_id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
               total_ms = excluded.total_ms, result_json = excluded.result_json",
            params![
                r.probe_id,
                r.scenario,
                r.location,
                r.status,
                ts(r.sent_at),
                ts(r.finished_at),
                r.total_ms,
                r.result_json
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn get(&self, probe_id: &str) -> Result<Option<StoredResult>, StoreError> {
        self.conn()
            .query_row(
                "SELECT probe_id, scenario, location, status, sent_at, total_ms, result_json,
                        late_detected_at, late_total_ms
                 FROM results WHERE probe_id = ?1",
                params![probe_id],
                |r| {
                    Ok(StoredResult {
                        probe_id: r.get(0)?,
                        scenario: r.get(1)?,
                        location: r.get(2)?,
                        status: r.get(3)?,
                        sent_at: parse_ts(&r.get::<_, String>(4)?).unwrap_or_default(),
                        total_ms: r.get(5)?,
                        result_json: r.get(6)?,
                        late_detected_at: r
                            .get::<_, Option<String>>(7)?
                            .as_deref()
                            .and_then(parse_ts),
                        late_total_ms: r.get(8)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn last_status(&self, scenario: &str, location: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT status FROM results
                 WHERE scenario = ?1 AND location = ?2 AND status != 'pending'
                 ORDER BY sent_at DESC LIMIT 1",
                params![scenario, location],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn check(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("SELECT 1 FROM results LIMIT 1", [], |_| Ok(()))
            .optional()
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(row) = self.get(probe_id)? else {
            return Ok(false);
        };
        if !UNRESOLVED.contains(&row.status.as_str()) || row.late_detected_at.is_some() {
            return Ok(false);
        }
        let late_ms = (seen_at - row.sent_at).num_milliseconds();
        let n = self.execute(
            "UPDATE results SET late_detected_at = ?2, late_total_ms = ?3
             WHERE probe_id = ?1 AND status IN ('lost', 'interrupted') AND late_detected_at IS NULL",
            params![probe_id, ts(seen_at), late_ms],
        )?;
        Ok(n == 1)
    }

    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError> {
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

    fn try_claim(&self, copy: Removal<'_>, when: DateTime<Utc>) -> Result<bool, StoreError> {
        let Removal { probe_id, kind, at } = copy;
        let n = self.execute(
            &claim_sql(kind, '?'),
            params![probe_id, ts(when), at.folder, at.uid_validity, at.uid],
        )?;
        Ok(n == 1)
    }

    fn release_deletion(&self, copy: Removal<'_>) -> Result<(), StoreError> {
        let Removal { probe_id, kind, at } = copy;
        self.execute(
            &release_sql(kind, '?'),
            params![probe_id, at.folder, at.uid_validity, at.uid],
        )
        .map(|_| ())
    }

    fn pending_before(
        &self,
        location: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<PendingRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT probe_id, scenario, sent_at FROM results
                 WHERE status = 'pending' AND location = ?1 ORDER BY sent_at",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([location], |r| {
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

    fn resolve_pending(&self, r: &Resolution<'_>) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE results SET status = ?2, finished_at = ?3, result_json = ?4
             WHERE probe_id = ?1 AND status = 'pending'",
            params![r.probe_id, r.status, ts(r.finished_at), r.result_json],
        )?;
        Ok(n == 1)
    }

    fn scan(&self, filter: &HistoryFilter, each: EachRow<'_>) -> Result<(), StoreError> {
        let mut sql = String::from(
            "SELECT probe_id, scenario, location, status, sent_at, total_ms, result_json,
                    late_detected_at, late_total_ms
             FROM results WHERE sent_at >= ?1 AND sent_at < ?2",
        );
        let mut args = vec![ts(filter.from), ts(filter.to)];
        for (column, values) in [
            ("scenario", &filter.scenarios),
            ("location", &filter.locations),
        ] {
            if !values.is_empty() {
                let first = args.len() + 1;
                let marks: Vec<String> = (first..first + values.len())
                    .map(|i| format!("?{i}"))
                    .collect();
                sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
                args.extend(values.iter().cloned());
            }
        }
        sql.push_str(" ORDER BY scenario, location, sent_at");
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params_from_iter(args.iter()))
            .map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let text_ts = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                Ok(r.get::<_, Option<String>>(i)?.as_deref().and_then(parse_ts))
            };
            let raw = RawHistoryRow {
                probe_id: r.get(0).map_err(|e| self.err(e))?,
                scenario: r.get(1).map_err(|e| self.err(e))?,
                location: r.get(2).map_err(|e| self.err(e))?,
                status: r.get(3).map_err(|e| self.err(e))?,
                sent_at: text_ts(4).map_err(|e| self.err(e))?,
                total_ms: r.get(5).map_err(|e| self.err(e))?,
                result_json: r.get(6).map_err(|e| self.err(e))?,
                late_detected_at: text_ts(7).map_err(|e| self.err(e))?,
                late_total_ms: r.get(8).map_err(|e| self.err(e))?,
            };
            if each(raw).is_break() {
                break;
            }
        }
        Ok(())
    }
}
