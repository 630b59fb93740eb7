//! The SLA report as one self-contained HTML page: no script, no external font, style or image
//! (a Content-Security-Policy says so to the browser too), inline CSS with a print layout, and
//! per scenario and location the summary tables and four inline SVG charts (latency per day,
//! where the time goes, availability per day against the objective, incident timeline).
//! Not here: computing the report (`sla`'s aggregation), writing the file (the CLI).
//!
//! The charts are drawn by the small SVG writer in [`svg`] and the scales in [`scale`], not by
//! a plotting crate: plotters' SVG backend cannot attach a `<title>` to a shape (the hover tips
//! that name an incident's findings and hints) and lays text out through a font backend, which
//! means font files or system font libraries for what is, here, bars, lines and labels that the
//! browser lays out itself. The writer escapes every string it is handed, so untrusted names,
//! findings and hints reach the page as text only.
mod chart;
mod charts;
mod format;
pub mod scale;
pub mod svg;
mod tables;

#[cfg(test)]
pub(crate) mod fixture;

use std::fmt::Write as _;

use charts::DayAxis;
use svg::escape;

use crate::sla::model::{ScenarioReport, SlaReport};

const STYLE: &str = include_str!("style.css");

/// What the page lets the browser do: inline styles and nothing else (no script, no fetch).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// The whole page.
pub fn render(report: &SlaReport) -> String {
    let mut out = String::with_capacity(32 * 1024 * (report.scenarios.len() + 1));
    head(&mut out, report);
    let axis = DayAxis::of(report);
    if report.scenarios.is_empty() {
        out.push_str("<p class=\"meta\">No probe was recorded in this window.</p>");
    } else {
        tables::overview(&mut out, report);
    }
    for (i, s) in report.scenarios.iter().enumerate() {
        section(&mut out, report, &axis, i, s);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn head(out: &mut String, r: &SlaReport) {
    let window = format!(
        "{} – {}",
        format::instant(r.window.from),
        format::instant(r.window.to)
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Mail-flow SLA report, {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        escape(CONTENT_SECURITY_POLICY),
        escape(&window)
    );
    let _ = write!(
        out,
        "<h1>Mail-flow SLA report</h1>\n<p class=\"meta\"><b>{}</b> · availability objective <b>{}</b> · \
         days cut in <b>{}</b> · percentiles: <b>{}</b> over the stored values · \
         availability counts delivered probes among the decided ones (interrupted, error and pending runs apart)</p>\n",
        escape(&window),
        escape(&format::pct(Some(r.slo_target_percent))),
        escape(&r.time_zone),
        escape(r.percentile_method)
    );
}

/// One figure: a visible caption over a chart.
fn figure(out: &mut String, caption: &str, svg: &str) {
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption>{svg}</figure>",
        escape(caption)
    );
}

fn section(out: &mut String, r: &SlaReport, axis: &DayAxis, i: usize, s: &ScenarioReport) {
    let _ = write!(
        out,
        "<section class=\"scenario\" id=\"s{i}\">\n<h2>{} <span class=\"loc\">at {}</span></h2>\n",
        escape(&s.scenario),
        escape(&s.location)
    );
    tables::summary(out, r, s);
    out.push_str("<div class=\"charts\">");
    figure(
        out,
        "Latency per day (p50–p95)",
        &charts::latency(s, axis, &r.time_zone),
    );
    figure(
        out,
        "Availability per day against the objective",
        &charts::availability(s, axis, &r.time_zone, r.slo_target_percent),
    );
    figure(out, "Where the time goes", &charts::stages(s));
    figure(out, "Incident timeline", &charts::timeline(s, &r.window));
    out.push_str("</div>\n<h3>Stages</h3>");
    tables::stages(out, s);
    out.push_str("<h3>Worst incidents</h3>");
    tables::incidents(out, s);
    tables::days(out, r, s);
    out.push_str("\n</section>\n");
}

#[cfg(test)]
mod tests;
