//! The PostgreSQL backend: the history several canaries share. The same table as SQLite
//! (`results`, one row per probe, tagged with its location), with native types (`timestamptz`,
//! `bigint`). The schema is created or migrated at start inside one transaction that holds an
//! advisory lock, so canaries starting together migrate once; its version is kept in
//! `flowtest_schema`. Every operation is one statement (so one transaction), safe to repeat
//! after a lost connection (`pg_conn`). Not here: the rules shared with SQLite (`Store`), the
//! connection and its thread (`pg_conn`).
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::pg_conn::PgConn;
use super::{
    claim_sql, copy_at, release_sql, Backend, EachRow, Finished, Pending, PendingRow,
    RawHistoryRow, Removal, Resolution, StoreError, StoredResult, SCHEMA_VERSION,
};
use crate::config::store::PostgresConfig;
use crate::core::history::HistoryFilter;
use crate::core::verdict::{RecordState, StoredProbe};

/// The advisory lock migrations take: "flowtest" in ASCII.
const MIGRATION_LOCK: i64 = 0x666c_6f77_7465_7374;

/// Schema 3, the first PostgreSQL knows: SQLite's columns, location included.
const SCHEMA_3: &str = "
    CREATE TABLE IF NOT EXISTS results (
        probe_id TEXT PRIMARY KEY,
        scenario TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT 'default',
        status TEXT NOT NULL,
        sent_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        total_ms BIGINT,
        result_json TEXT,
        late_detected_at TIMESTAMPTZ,
        late_total_ms BIGINT,
        deleted_at TIMESTAMPTZ,
        deleted_folder TEXT,
        deleted_uidvalidity BIGINT,
        deleted_uid BIGINT,
        bounce_deleted_at TIMESTAMPTZ,
        bounce_deleted_folder TEXT,
        bounce_deleted_uidvalidity BIGINT,
        bounce_deleted_uid BIGINT
    );
    CREATE INDEX IF NOT EXISTS results_by_scenario ON results(scenario, sent_at);
    CREATE INDEX IF NOT EXISTS results_by_location ON results(scenario, location, sent_at);";

/// Rows a scan fetches per round trip.
const SCAN_BATCH: i32 = 500;

/// Statement parameters, owned so an operation can be sent to the connection thread and run
/// again on a new connection.
type Params = Arc<Vec<Box<dyn ToSql + Send + Sync>>>;

fn params(values: Vec<Box<dyn ToSql + Send + Sync>>) -> Params {
    Arc::new(values)
}

fn refs(p: &Params) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect()
}

pub(super) struct PgStore {
    conn: PgConn,
}

impl PgStore {
    /// Start the connection and bring the schema to the current version.
    pub(super) fn connect(cfg: &PostgresConfig) -> Result<PgStore, StoreError> {
        let conn = PgConn::start(cfg)?;
        let found = conn.call(|c| Box::pin(migrate(c)))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                store: conn.store().to_string(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(PgStore { conn })
    }

    /// Run one statement; the number of rows it changed.
    fn execute(&self, sql: String, p: Params) -> Result<u64, StoreError> {
        self.conn.call(move |c| {
            let (sql, p) = (sql.clone(), Arc::clone(&p));
            Box::pin(async move { c.execute(&sql, &refs(&p)).await })
        })
    }

    /// Run one query expecting at most one row.
    fn query_opt(&self, sql: &'static str, p: Params) -> Result<Option<Row>, StoreError> {
        self.conn.call(move |c| {
            let p = Arc::clone(&p);
            Box::pin(async move { c.query_opt(sql, &refs(&p)).await })
        })
    }

    fn query(&self, sql: &'static str, p: Params) -> Result<Vec<Row>, StoreError> {
        self.conn.call(move |c| {
            let p = Arc::clone(&p);
            Box::pin(async move { c.query(sql, &refs(&p)).await })
        })
    }

    /// A column read back as the store's error when its type is not the one expected.
    fn col<'r, T: tokio_postgres::types::FromSql<'r>>(
        &self,
        row: &'r Row,
        i: usize,
    ) -> Result<T, StoreError> {
        row.try_get(i).map_err(|source| StoreError::Postgres {
            store: self.conn.store().to_string(),
            source,
        })
    }
}

/// Create or migrate the schema under the advisory lock; the version found before.
async fn migrate(c: &mut Client) -> Result<i64, tokio_postgres::Error> {
    let t = c.transaction().await?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    t.batch_execute(
        "CREATE TABLE IF NOT EXISTS flowtest_schema (
            one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
            version INTEGER NOT NULL
        )",
    )
    .await?;
    let found = t
        .query_opt("SELECT version FROM flowtest_schema", &[])
        .await?
        .map(|r| i64::from(r.get::<_, i32>(0)))
        .unwrap_or(0);
    if found < SCHEMA_VERSION {
        t.batch_execute(SCHEMA_3).await?;
        let v = i32::try_from(SCHEMA_VERSION).unwrap_or(i32::MAX);
        t.execute(
            "INSERT INTO flowtest_schema (one, version) VALUES (TRUE, $1)
             ON CONFLICT (one) DO UPDATE SET version = excluded.version",
            &[&v],
        )
        .await?;
    }
    t.commit().await?;
    Ok(found)
}

fn uid(v: u32) -> i64 {
    i64::from(v)
}

fn to_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

impl Backend for PgStore {
    fn describe(&self) -> String {
        self.conn.store().to_string()
    }

    fn record_pending(&self, r: &Pending<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO results (probe_id, scenario, location, status, sent_at)
             VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (probe_id) DO NOTHING"
                .into(),
            params(vec![
                Box::new(r.probe_id.to_string()),
                Box::new(r.scenario.to_string()),
                Box::new(r.location.to_string()),
                Box::new(r.sent_at),
            ]),
        )
        .map(|_| ())
    }

    fn record_result(&self, r: &Finished<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO results (probe_id, scenario, location, status, sent_at, finished_at, total_ms, result_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (probe_id) DO UPDATE SET status = excluded.status,
               finished_at = excluded.finished_at, total_ms = excluded.total_ms,
               result_json = excluded.result_json"
                .into(),
            params(vec![
                Box::new(r.probe_id.to_string()),
                Box::new(r.scenario.to_string()),
                Box::new(r.location.to_string()),
                Box::new(r.status.to_string()),
                Box::new(r.sent_at),
                Box::new(r.finished_at),
                Box::new(r.total_ms),
                Box::new(r.result_json.to_string()),
            ]),
        )
        .map(|_| ())
    }

    fn get(&self, probe_id: &str) -> Result<Option<StoredResult>, StoreError> {
        let row = self.query_opt(
            "SELECT probe_id, scenario, location, status, sent_at, total_ms, result_json,
                    late_detected_at, late_total_ms
             FROM results WHERE probe_id = $1",
            params(vec![Box::new(probe_id.to_string())]),
        )?;
        row.map(|r| {
            Ok(StoredResult {
                probe_id: self.col(&r, 0)?,
                scenario: self.col(&r, 1)?,
                location: self.col(&r, 2)?,
                status: self.col(&r, 3)?,
                sent_at: self.col(&r, 4)?,
                total_ms: self.col(&r, 5)?,
                result_json: self.col(&r, 6)?,
                late_detected_at: self.col(&r, 7)?,
                late_total_ms: self.col(&r, 8)?,
            })
        })
        .transpose()
    }

    fn last_status(&self, scenario: &str, location: &str) -> Result<Option<String>, StoreError> {
        let row = self.query_opt(
            "SELECT status FROM results
             WHERE scenario = $1 AND location = $2 AND status <> 'pending'
             ORDER BY sent_at DESC LIMIT 1",
            params(vec![
                Box::new(scenario.to_string()),
                Box::new(location.to_string()),
            ]),
        )?;
        row.map(|r| self.col(&r, 0)).transpose()
    }

    fn check(&self) -> Result<(), StoreError> {
        self.query_opt("SELECT 1 FROM results LIMIT 1", params(vec![]))
            .map(|_| ())
    }

    fn mark_late(&self, probe_id: &str, seen_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE results SET late_detected_at = $2,
               late_total_ms = floor(EXTRACT(EPOCH FROM ($2 - sent_at)) * 1000)::BIGINT
             WHERE probe_id = $1 AND status IN ('lost', 'interrupted') AND late_detected_at IS NULL"
                .into(),
            params(vec![Box::new(probe_id.to_string()), Box::new(seen_at)]),
        )?;
        Ok(n == 1)
    }

    fn probe_record(&self, probe_id: &str) -> Result<Option<StoredProbe>, StoreError> {
        let row = self.query_opt(
            "SELECT status, deleted_folder, deleted_uidvalidity, deleted_uid,
                    bounce_deleted_folder, bounce_deleted_uidvalidity, bounce_deleted_uid
             FROM results WHERE probe_id = $1",
            params(vec![Box::new(probe_id.to_string())]),
        )?;
        row.map(|r| {
            Ok(StoredProbe {
                state: RecordState::from_status(&self.col::<String>(&r, 0)?),
                probe_deleted: copy_at(
                    self.col(&r, 1)?,
                    to_u32(self.col(&r, 2)?),
                    to_u32(self.col(&r, 3)?),
                ),
                bounce_deleted: copy_at(
                    self.col(&r, 4)?,
                    to_u32(self.col(&r, 5)?),
                    to_u32(self.col(&r, 6)?),
                ),
            })
        })
        .transpose()
    }

    fn try_claim(&self, copy: Removal<'_>, when: DateTime<Utc>) -> Result<bool, StoreError> {
        let Removal { probe_id, kind, at } = copy;
        let n = self.execute(
            claim_sql(kind, '$'),
            params(vec![
                Box::new(probe_id.to_string()),
                Box::new(when),
                Box::new(at.folder.clone()),
                Box::new(uid(at.uid_validity)),
                Box::new(uid(at.uid)),
            ]),
        )?;
        Ok(n == 1)
    }

    fn release_deletion(&self, copy: Removal<'_>) -> Result<(), StoreError> {
        let Removal { probe_id, kind, at } = copy;
        self.execute(
            release_sql(kind, '$'),
            params(vec![
                Box::new(probe_id.to_string()),
                Box::new(at.folder.clone()),
                Box::new(uid(at.uid_validity)),
                Box::new(uid(at.uid)),
            ]),
        )
        .map(|_| ())
    }

    fn pending_before(
        &self,
        location: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<PendingRow>, StoreError> {
        let rows = self.query(
            "SELECT probe_id, scenario, sent_at FROM results
             WHERE status = 'pending' AND location = $1 AND sent_at < $2 ORDER BY sent_at",
            params(vec![Box::new(location.to_string()), Box::new(before)]),
        )?;
        rows.iter()
            .map(|r| {
                Ok(PendingRow {
                    probe_id: self.col(r, 0)?,
                    scenario: self.col(r, 1)?,
                    sent_at: self.col(r, 2)?,
                })
            })
            .collect()
    }

    fn resolve_pending(&self, r: &Resolution<'_>) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE results SET status = $2, finished_at = $3, result_json = $4
             WHERE probe_id = $1 AND status = 'pending'"
                .into(),
            params(vec![
                Box::new(r.probe_id.to_string()),
                Box::new(r.status.to_string()),
                Box::new(r.finished_at),
                Box::new(r.result_json.to_string()),
            ]),
        )?;
        Ok(n == 1)
    }

    fn scan(&self, filter: &HistoryFilter, each: EachRow<'_>) -> Result<(), StoreError> {
        let filter = filter.clone();
        self.conn.stream(
            move |c, out| {
                Box::pin(async move {
                    // A portal inside a read-only transaction: the rows come in batches, so
                    // memory stays bounded however long the window.
                    let t = c.build_transaction().read_only(true).start().await?;
                    let stmt = t
                        .prepare(
                            "SELECT probe_id, scenario, location, status, sent_at, total_ms,
                                    result_json, late_detected_at, late_total_ms
                             FROM results WHERE sent_at >= $1 AND sent_at < $2
                               AND (cardinality($3::TEXT[]) = 0 OR scenario = ANY($3))
                               AND (cardinality($4::TEXT[]) = 0 OR location = ANY($4))
                             ORDER BY scenario, location, sent_at",
                        )
                        .await?;
                    let portal = t
                        .bind(
                            &stmt,
                            &[
                                &filter.from,
                                &filter.to,
                                &filter.scenarios,
                                &filter.locations,
                            ],
                        )
                        .await?;
                    loop {
                        let rows = t.query_portal(&portal, SCAN_BATCH).await?;
                        if rows.is_empty() {
                            break;
                        }
                        for r in &rows {
                            // The consumer stopped (or went away): end the scan.
                            if out.send(raw_row(r)?).is_err() {
                                return Ok(());
                            }
                        }
                    }
                    t.commit().await
                })
            },
            each,
        )
    }
}

fn raw_row(r: &Row) -> Result<RawHistoryRow, tokio_postgres::Error> {
    Ok(RawHistoryRow {
        probe_id: r.try_get(0)?,
        scenario: r.try_get(1)?,
        location: r.try_get(2)?,
        status: r.try_get(3)?,
        sent_at: Some(r.try_get(4)?),
        total_ms: r.try_get(5)?,
        result_json: r.try_get(6)?,
        late_detected_at: r.try_get(7)?,
        late_total_ms: r.try_get(8)?,
    })
}
