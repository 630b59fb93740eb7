//! Reading the stored history for reports: a streaming, read-only scan of the SQLite result
//! store (`<state_dir>/flowtest.db`, see `store`), scenario by scenario in send order, each
//! row reduced to a [`HistoryRow`]. Window and scenario filters are index range scans; rows
//! are handed to a callback one at a time, never collected. A row that cannot be read is a
//! warning and is skipped (or kept without its details when only its JSON is damaged), never a
//! panic. Not here: writing the store (`store`) or what the figures mean (core `sla`).
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::Deserialize;

use crate::core::diagnosis::FindingCode;
use crate::core::history::{HistoryFilter, HistoryFinding, HistoryRow, HistoryStage, LateArrival};
use crate::core::outcome::Status;

/// The newest store schema whose `results` rows this reader understands (3 adds a `location`
/// column; until it is read, the location comes from the result JSON).
const READS_UP_TO_SCHEMA: i64 = 3;

/// Damaged rows named one by one before the rest are only counted.
const WARN_ROWS: u64 = 20;

/// The location of probes stored without one.
pub const DEFAULT_LOCATION: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no result store at {}: no probe has been stored yet (flowtest run and canary write it)", path.display())]
    Missing { path: PathBuf },
    #[error("result store {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "result store {}: written by a newer flowtest (schema {found}, this one reads up to {known})",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// Why a scan stopped: the store failed, or the row consumer did.
#[derive(Debug, thiserror::Error)]
pub enum ScanError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Store(#[from] HistoryError),
    #[error(transparent)]
    Consumer(E),
}

/// What a scan read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Rows handed to the consumer.
    pub rows: u64,
    /// Rows skipped because their status or send time could not be read.
    pub skipped: u64,
    /// Rows kept without stages, findings, timeout or SLO because their JSON was damaged.
    pub damaged: u64,
}

/// A read-only handle on the result store.
pub struct HistoryReader {
    path: PathBuf,
    conn: Connection,
}

/// The fields of a stored result's JSON the history needs; everything else is skipped.
#[derive(Debug, Default, Deserialize)]
struct StoredFields {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    stages: Vec<StoredStage>,
    #[serde(default)]
    findings: Vec<StoredFinding>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    slo: Option<StoredSlo>,
}

#[derive(Debug, Deserialize)]
struct StoredStage {
    name: String,
    ms: u64,
}

#[derive(Debug, Deserialize)]
struct StoredFinding {
    code: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    hint: String,
}

#[derive(Debug, Deserialize)]
struct StoredSlo {
    #[serde(default)]
    target_ms: Option<u64>,
}

/// Where the probe was sent from: the one place the location is read, so a store that keeps
/// it in a column of its own changes only this.
fn location_of(fields: &StoredFields) -> String {
    fields
        .location
        .clone()
        .unwrap_or_else(|| DEFAULT_LOCATION.to_owned())
}

const STATUSES: [Status; 10] = [
    Status::Delivered,
    Status::Slow,
    Status::DeliveredSpam,
    Status::Lost,
    Status::Rejected,
    Status::Bounced,
    Status::SendFailed,
    Status::FetchFailed,
    Status::Error,
    Status::Interrupted,
];

/// `None` for `pending`, `Some(status)` for a verdict; an unknown word is an error.
fn parse_status(s: &str) -> Result<Option<Status>, String> {
    if s == "pending" {
        return Ok(None);
    }
    STATUSES
        .into_iter()
        .find(|st| st.as_str() == s)
        .map(Some)
        .ok_or_else(|| format!("unknown status {s:?}"))
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The store's own timestamp format (`store::ts`): fixed width, so text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn finding(f: StoredFinding) -> Option<HistoryFinding> {
    let code = FindingCode::deserialize(StrDeserializer::<ValueError>::new(&f.code)).ok()?;
    Some(HistoryFinding {
        code,
        stage: f.stage,
        message: f.message,
        hint: f.hint,
    })
}

/// The columns of one `results` row, as stored.
struct RawRow {
    probe_id: String,
    scenario: String,
    status: String,
    sent_at: String,
    total_ms: Option<i64>,
    result_json: Option<String>,
    late_detected_at: Option<String>,
    late_total_ms: Option<i64>,
}

/// What became of one stored row.
enum Decoded {
    Row(Box<HistoryRow>),
    /// Kept, but its JSON could not be read: no stages, findings, timeout or SLO.
    Damaged(Box<HistoryRow>, String),
    Skipped(String),
}

fn decode(raw: RawRow) -> Decoded {
    let status = match parse_status(&raw.status) {
        Ok(s) => s,
        Err(e) => return Decoded::Skipped(e),
    };
    let Some(sent_at) = parse_ts(&raw.sent_at) else {
        return Decoded::Skipped(format!("unreadable send time {:?}", raw.sent_at));
    };
    let (fields, damage) = match raw.result_json.as_deref().map(serde_json::from_str) {
        None => (StoredFields::default(), None),
        Some(Ok(f)) => (f, None),
        Some(Err(e)) => (StoredFields::default(), Some(format!("result JSON: {e}"))),
    };
    let late = match (
        raw.late_detected_at.as_deref().and_then(parse_ts),
        raw.late_total_ms,
    ) {
        (Some(detected_at), Some(ms)) => Some(LateArrival {
            detected_at,
            total_ms: u64::try_from(ms).unwrap_or(0),
        }),
        _ => None,
    };
    let row = HistoryRow {
        probe_id: raw.probe_id,
        scenario: raw.scenario,
        location: location_of(&fields),
        status,
        sent_at,
        total_ms: raw.total_ms.and_then(|ms| u64::try_from(ms).ok()),
        timeout_ms: fields.timeout_ms.unwrap_or(0),
        slo_target_ms: fields.slo.and_then(|s| s.target_ms),
        late,
        stages: fields
            .stages
            .into_iter()
            .map(|s| HistoryStage {
                name: s.name,
                ms: s.ms,
            })
            .collect(),
        findings: fields.findings.into_iter().filter_map(finding).collect(),
    };
    match damage {
        None => Decoded::Row(Box::new(row)),
        Some(why) => Decoded::Damaged(Box::new(row), why),
    }
}

/// Rows of one scenario in a window, in send order. `sent_at` is compared as text (the store's
/// fixed-width format) so the `(scenario, sent_at)` index serves both the range and the order;
/// the window is widened by a second here and applied exactly on the parsed time.
const SCENARIO_ROWS: &str = "SELECT probe_id, scenario, status, sent_at, total_ms, result_json,
        late_detected_at, late_total_ms
     FROM results WHERE scenario = ?1 AND sent_at >= ?2 AND sent_at < ?3 ORDER BY sent_at";

/// The first scenario name after ?1: one index seek per scenario, however many rows each has.
const NEXT_SCENARIO: &str = "SELECT MIN(scenario) FROM results WHERE scenario > ?1";

impl HistoryReader {
    /// Open `<state_dir>/flowtest.db` read-only; the report never writes or creates it.
    pub fn open(state_dir: &Path) -> Result<HistoryReader, HistoryError> {
        let path = state_dir.join("flowtest.db");
        if !path.is_file() {
            return Err(HistoryError::Missing { path });
        }
        let err = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > READS_UP_TO_SCHEMA {
            return Err(HistoryError::NewerSchema {
                path,
                found: version,
                known: READS_UP_TO_SCHEMA,
            });
        }
        Ok(HistoryReader { path, conn })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Every scenario with stored rows, in name order (the filter's own list when it has one).
    pub fn scenarios(&self, filter: &HistoryFilter) -> Result<Vec<String>, HistoryError> {
        if !filter.scenarios.is_empty() {
            let mut names = filter.scenarios.clone();
            names.sort();
            names.dedup();
            return Ok(names);
        }
        let mut stmt = self.conn.prepare(NEXT_SCENARIO).map_err(|e| self.err(e))?;
        let mut names = Vec::new();
        let mut after = String::new();
        while let Some(next) = stmt
            .query_row(params![after], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map_err(|e| self.err(e))?
            .flatten()
        {
            names.push(next.clone());
            after = next;
        }
        Ok(names)
    }

    /// Hand every row the filter selects to `each`, grouped by scenario (in name order) and in
    /// send order within it. Stops at the first error `each` returns.
    pub fn scan<E: std::error::Error + 'static>(
        &self,
        filter: &HistoryFilter,
        mut each: impl FnMut(&HistoryRow) -> Result<(), E>,
    ) -> Result<ScanStats, ScanError<E>> {
        let mut stats = ScanStats::default();
        let slack = chrono::Duration::seconds(1);
        let (from, to) = (ts(filter.from - slack), ts(filter.to + slack));
        let mut stmt = self.conn.prepare(SCENARIO_ROWS).map_err(|e| self.err(e))?;
        for scenario in self.scenarios(filter)? {
            let mut rows = stmt
                .query(params![scenario, from, to])
                .map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let raw = RawRow {
                    probe_id: r.get(0).map_err(|e| self.err(e))?,
                    scenario: r.get(1).map_err(|e| self.err(e))?,
                    status: r.get(2).map_err(|e| self.err(e))?,
                    sent_at: r.get(3).map_err(|e| self.err(e))?,
                    total_ms: r.get(4).map_err(|e| self.err(e))?,
                    result_json: r.get(5).map_err(|e| self.err(e))?,
                    late_detected_at: r.get(6).map_err(|e| self.err(e))?,
                    late_total_ms: r.get(7).map_err(|e| self.err(e))?,
                };
                let Some(row) = self.keep(raw, &mut stats) else {
                    continue;
                };
                let selected = row.sent_at >= filter.from
                    && row.sent_at < filter.to
                    && (filter.locations.is_empty() || filter.locations.contains(&row.location));
                if selected {
                    stats.rows += 1;
                    each(&row).map_err(ScanError::Consumer)?;
                }
            }
        }
        if stats.skipped + stats.damaged > WARN_ROWS {
            tracing::warn!(
                skipped = stats.skipped,
                damaged = stats.damaged,
                "result store {}: {} unreadable rows in all (only the first {WARN_ROWS} named)",
                self.path.display(),
                stats.skipped + stats.damaged
            );
        }
        Ok(stats)
    }

    /// The row to hand out, if any; counts and names (up to a bound) what could not be read.
    fn keep(&self, raw: RawRow, stats: &mut ScanStats) -> Option<HistoryRow> {
        let probe_id = raw.probe_id.clone();
        let (row, problem) = match decode(raw) {
            Decoded::Row(row) => return Some(*row),
            Decoded::Damaged(row, why) => {
                stats.damaged += 1;
                (
                    Some(*row),
                    format!("{why}; counted without its stages and findings"),
                )
            }
            Decoded::Skipped(why) => {
                stats.skipped += 1;
                (None, format!("{why}; row skipped"))
            }
        };
        if stats.skipped + stats.damaged <= WARN_ROWS {
            tracing::warn!(%probe_id, "result store {}: {problem}", self.path.display());
        }
        row
    }
}

#[cfg(test)]
mod tests;
