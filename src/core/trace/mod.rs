//! Received-header trace engine (issue 3). TEMPORARY contract stub on main: replaced wholesale
//! by the trace branch at merge.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageMatcher {
    pub stage: String,
    pub by: Option<String>,
    pub from: Option<String>,
    pub from_ip: Option<String>,
    pub protocol: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

pub struct TraceOptions<'a> {
    pub now: DateTime<Utc>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub stages: &'a [StageMatcher],
}

#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub from: Option<String>,
    pub from_ip: Option<String>,
    pub by: Option<String>,
    pub protocol: Option<String>,
    pub id: Option<String>,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub delay_ms: Option<i64>,
    pub warnings: Vec<String>,
    pub stage: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub hops: Vec<Hop>,
    pub total_ms: Option<i64>,
    pub warnings: Vec<String>,
    pub missing_stages: Vec<String>,
}

#[derive(Debug)]
pub struct TraceError(pub String);

pub fn trace_message(_raw: &[u8], _opts: &TraceOptions) -> Result<Trace, TraceError> {
    Ok(Trace {
        hops: vec![],
        total_ms: None,
        warnings: vec![],
        missing_stages: vec![],
    })
}
