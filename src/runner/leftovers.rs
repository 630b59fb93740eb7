//! Rows left `pending` by a run that was killed (kill -9, a crash, a power cut): once past their
//! deadline and a grace, no run can still be waiting for them, so they are recorded `lost`. A
//! probe of theirs that shows up in a mailbox later is then marked late and deleted by the usual
//! cleanup (a `lost` row seen again). Not here: which probes cleanup deletes (core::verdict).
use std::time::Duration;

use super::ports::FinalResult;
use super::Runner;
use crate::clock;
use crate::core::outcome::{RunResult, SloReport};
use crate::core::verdict::fresh_result;
use crate::edge::store::PendingRow;

/// How long past its deadline a live run may still be working (fusing logs, cleaning up) before
/// its `pending` row is taken for one a killed run left. Misjudging a slow live run costs little:
/// its own result, stored later, replaces the `lost` one.
pub const STALE_GRACE: Duration = Duration::from_secs(15);

/// What a resolved row says.
pub const LEFT_PENDING: &str =
    "left pending by an interrupted run: its process stopped before storing a result";

impl Runner {
    /// Record `lost` every `pending` row past its scenario's timeout (the longer of the
    /// configured one and `--timeout`) plus [`STALE_GRACE`]. Returns the probe ids resolved.
    pub(crate) fn resolve_leftover_pending(&self) -> Vec<String> {
        let now = self.clock.now();
        let rows = match self.store.pending_before(now - STALE_GRACE) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pending rows left by earlier runs");
                return Vec::new();
            }
        };
        let mut resolved = Vec::new();
        for row in rows {
            let timeout = self.leftover_timeout(&row);
            if row.sent_at + timeout + STALE_GRACE >= now {
                continue;
            }
            let result = self.left_pending_result(&row, timeout, now);
            let json = serde_json::to_string(&result).unwrap_or_default();
            let done = FinalResult {
                result: &result,
                json: &json,
                finished_at: now,
            };
            match self.store.resolve_pending(&done) {
                Ok(true) => {
                    tracing::info!(probe_id = %row.probe_id, scenario = %row.scenario, "{LEFT_PENDING}: recorded lost");
                    resolved.push(row.probe_id);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, probe_id = %row.probe_id, "cannot resolve a pending row")
                }
            }
        }
        resolved
    }

    fn leftover_timeout(&self, row: &PendingRow) -> Duration {
        let configured = self
            .config
            .scenario(&row.scenario)
            .map_or(self.config.defaults.timeout, |s| s.timeout);
        configured.max(self.timeout_override.unwrap_or_default())
    }

    fn left_pending_result(
        &self,
        row: &PendingRow,
        timeout: Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> RunResult {
        let slo = self.config.scenario(&row.scenario).map_or(
            SloReport {
                target_ms: None,
                max_ms: None,
            },
            |s| SloReport {
                target_ms: s.slo.target.map(clock::millis),
                max_ms: s.slo.max.map(clock::millis),
            },
        );
        let mut r = fresh_result(
            &row.scenario,
            &row.probe_id,
            row.sent_at,
            slo,
            clock::millis(timeout),
        );
        // fresh_result's status is `lost`: not seen before its deadline.
        r.verdict_at = now;
        r.warnings.push(LEFT_PENDING.into());
        r
    }
}
