//! Stored rows read back as history: the stored result (`result_json`) parsed with a light view
//! of it (stages, findings, timeout, SLO) into the core's [`HistoryRow`]. A row that cannot be
//! read becomes a warning, never an error that ends the scan. Not here: selecting rows (each
//! backend's `scan`), or what the history means (`core::sla`).
use serde::de::IntoDeserializer;
use serde::Deserialize;

use super::RawHistoryRow;
use crate::core::diagnosis::FindingCode;
use crate::core::history::{HistoryFinding, HistoryRow, HistoryStage, LateArrival};
use crate::core::outcome::Status;

/// At most this many warnings are kept; the rest are only counted.
const MAX_WARNINGS: usize = 20;

/// What a history scan read besides its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Rows handed to the callback.
    pub rows: u64,
    /// Rows left out because they could not be read.
    pub skipped: u64,
    /// Why, for the first few skipped rows (each names its probe id).
    pub warnings: Vec<String>,
}

impl ScanSummary {
    pub(super) fn skip(&mut self, warning: String) {
        self.skipped += 1;
        if self.warnings.len() < MAX_WARNINGS {
            tracing::warn!(%warning, "history row skipped");
            self.warnings.push(warning);
        }
    }
}

/// The part of a stored result the history needs.
#[derive(Deserialize)]
struct StoredView {
    #[serde(default)]
    stages: Vec<StageView>,
    #[serde(default)]
    findings: Vec<FindingView>,
    timeout_ms: u64,
    #[serde(default)]
    slo: SloView,
}

#[derive(Deserialize)]
struct StageView {
    name: String,
    ms: u64,
}

#[derive(Deserialize)]
struct FindingView {
    code: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize, Default)]
struct SloView {
    #[serde(default)]
    target_ms: Option<u64>,
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

/// A stored status: `None` for `pending`, an error for a word this flowtest does not know.
fn status(text: &str) -> Result<Option<Status>, String> {
    if text == "pending" {
        return Ok(None);
    }
    STATUSES
        .into_iter()
        .find(|s| s.as_str() == text)
        .map(Some)
        .ok_or_else(|| format!("unknown status {text:?}"))
}

fn finding_code(text: &str) -> Option<FindingCode> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        text.into_deserializer();
    FindingCode::deserialize(de).ok()
}

fn non_negative(v: Option<i64>, what: &str) -> Result<Option<u64>, String> {
    v.map(|n| u64::try_from(n).map_err(|_| format!("negative {what} {n}")))
        .transpose()
}

/// One stored row as a history row; the error (a warning) names the probe and what is wrong.
pub(super) fn to_history_row(raw: RawHistoryRow) -> Result<HistoryRow, String> {
    let id = raw.probe_id.clone();
    let bad = |why: String| format!("history row {id}: {why}");
    let status = status(&raw.status).map_err(bad)?;
    let sent_at = raw
        .sent_at
        .ok_or_else(|| bad("unreadable sent_at".into()))?;
    let total_ms = non_negative(raw.total_ms, "total_ms").map_err(bad)?;
    let late = match (raw.late_detected_at, raw.late_total_ms) {
        (Some(detected_at), Some(ms)) => Some(LateArrival {
            detected_at,
            total_ms: non_negative(Some(ms), "late_total_ms")
                .map_err(bad)?
                .unwrap_or_default(),
        }),
        _ => None,
    };
    let view = match (&status, raw.result_json.as_deref()) {
        (None, _) => None,
        (Some(_), None) => return Err(bad("a verdict without its stored result".into())),
        (Some(_), Some(json)) => Some(
            serde_json::from_str::<StoredView>(json)
                .map_err(|e| bad(format!("stored result unreadable: {e}")))?,
        ),
    };
    let mut row = HistoryRow {
        probe_id: raw.probe_id,
        scenario: raw.scenario,
        location: raw.location,
        status,
        sent_at,
        total_ms,
        timeout_ms: 0,
        slo_target_ms: None,
        late,
        stages: Vec::new(),
        findings: Vec::new(),
    };
    if let Some(v) = view {
        row.timeout_ms = v.timeout_ms;
        row.slo_target_ms = v.slo.target_ms;
        row.stages = v
            .stages
            .into_iter()
            .map(|s| HistoryStage {
                name: s.name,
                ms: s.ms,
            })
            .collect();
        for f in v.findings {
            // A code from a newer flowtest: the row still counts, the finding is left out.
            let Some(code) = finding_code(&f.code) else {
                tracing::warn!(probe_id = %row.probe_id, code = %f.code, "unknown finding code in history");
                continue;
            };
            row.findings.push(HistoryFinding {
                code,
                stage: f.stage,
                message: f.message,
                hint: f.hint,
            });
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn raw(status: &str, json: Option<&str>) -> RawHistoryRow {
        RawHistoryRow {
            probe_id: "p".into(),
            scenario: "s".into(),
            location: "here".into(),
            status: status.into(),
            sent_at: Some(Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()),
            total_ms: Some(1200),
            result_json: json.map(str::to_owned),
            late_detected_at: None,
            late_total_ms: None,
        }
    }

    #[test]
    fn a_stored_result_becomes_a_history_row() {
        let json = r#"{"stages":[{"name":"submission","ms":48,"source":"client"}],
            "findings":[{"code":"next_hop_refused","stage":"ec2-mx","message":"m","hint":"h"},
                        {"code":"from_the_future","message":"x","hint":"y"}],
            "timeout_ms":30000,"slo":{"target_ms":5000,"max_ms":null},"extra":1}"#;
        let row = to_history_row(raw("lost", Some(json))).unwrap();
        assert_eq!(row.status, Some(Status::Lost));
        assert_eq!(row.location, "here");
        assert_eq!(row.timeout_ms, 30_000);
        assert_eq!(row.slo_target_ms, Some(5000));
        assert_eq!(
            row.stages,
            vec![HistoryStage {
                name: "submission".into(),
                ms: 48
            }]
        );
        assert_eq!(row.findings.len(), 1, "the unknown code is left out");
        assert_eq!(row.findings[0].code, FindingCode::NextHopRefused);
        assert_eq!(row.findings[0].stage.as_deref(), Some("ec2-mx"));
    }

    #[test]
    fn pending_rows_have_no_verdict_and_bad_rows_are_warnings() {
        let row = to_history_row(raw("pending", None)).unwrap();
        assert_eq!((row.status, row.timeout_ms), (None, 0));
        for (status, json, why) in [
            ("delivered", Some("{not json"), "stored result unreadable"),
            ("delivered", Some("{}"), "timeout_ms"),
            ("delivered", None, "without its stored result"),
            ("teleported", Some("{}"), "unknown status"),
        ] {
            let e = to_history_row(raw(status, json)).unwrap_err();
            assert!(e.starts_with("history row p: ") && e.contains(why), "{e}");
        }
        let mut r = raw("delivered", Some(r#"{"timeout_ms":1}"#));
        r.total_ms = Some(-5);
        assert!(to_history_row(r).unwrap_err().contains("negative total_ms"));
    }

    #[test]
    fn warnings_are_capped_but_counted() {
        let mut s = ScanSummary::default();
        for i in 0..(MAX_WARNINGS + 5) {
            s.skip(format!("w{i}"));
        }
        assert_eq!(s.skipped, (MAX_WARNINGS + 5) as u64);
        assert_eq!(s.warnings.len(), MAX_WARNINGS);
    }
}
