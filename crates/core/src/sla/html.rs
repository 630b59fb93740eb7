//! Placeholder HTML form of the SLA report: the JSON report in a `<pre>`, in one self-contained
//! page. The html renderer's module (charts, tables) replaces this file at merge; only
//! `render(&SlaReport) -> String` is relied on by the command line.
use super::model::SlaReport;

/// A self-contained HTML page holding the report's JSON.
pub fn render(report: &SlaReport) -> String {
    let json = serde_json::to_string_pretty(report).unwrap_or_default();
    let escaped = json
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>flowtest SLA report</title></head>\n<body>\n<pre>{escaped}</pre>\n</body></html>\n"
    )
}
