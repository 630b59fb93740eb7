//! The report page's tables: the overview of every scenario, each scenario's summary (availability
//! against the objective, error budget, counts with interrupted/error/pending runs apart,
//! latency percentiles), its stages, its worst incidents and its days.
//! Not here: the charts, the page's frame (`html`).
use std::fmt::Write as _;

use super::format;
use super::svg::escape;
use crate::sla::model::{Incident, ScenarioReport, SlaReport};

/// A table cell's class for an availability against the objective.
fn availability_class(v: Option<f64>, target: f64) -> &'static str {
    match v {
        Some(v) if v >= target => "ok",
        Some(_) => "bad",
        None => "",
    }
}

/// A table cell's class for the error budget left: spent is bad, under half left a warning.
fn budget_class(v: Option<f64>) -> &'static str {
    match v {
        Some(v) if v < 0.0 => "bad",
        Some(v) if v < 50.0 => "warn",
        Some(_) => "ok",
        None => "",
    }
}

/// Every scenario on one line each, linking to its section.
pub fn overview(out: &mut String, r: &SlaReport) {
    out.push_str(
        "<table class=\"wide overview\"><thead><tr><th>scenario</th><th>location</th>\
         <th class=\"n\">probes</th><th class=\"n\">availability</th><th class=\"n\">error budget left</th>\
         <th class=\"n\">within latency target</th><th class=\"n\">p95</th><th class=\"n\">incidents</th></tr></thead><tbody>",
    );
    for (i, s) in r.scenarios.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td><a href=\"#s{i}\">{}</a></td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n {}\">{}</td><td class=\"n {}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&s.scenario),
            escape(&s.location),
            format::count(s.probes),
            availability_class(s.availability_percent, r.slo_target_percent),
            format::pct(s.availability_percent),
            budget_class(s.error_budget_left_percent),
            format::pct(s.error_budget_left_percent),
            format::pct(s.slo_percent),
            format::opt_ms(s.latency_ms.p95),
            s.incidents.len()
        );
    }
    out.push_str("</tbody></table>");
}

/// Rows of a two-column table: a heading and a value, with an optional class on the value.
struct Kv<'a> {
    key: &'a str,
    value: String,
    class: &'a str,
}

fn kv_table(out: &mut String, caption: &str, rows: &[Kv<'_>], class: &str) {
    let _ = write!(
        out,
        "<table class=\"{class}\"><tbody><tr><th colspan=\"2\">{}</th></tr>",
        escape(caption)
    );
    for row in rows {
        let _ = write!(
            out,
            "<tr><th>{}</th><td class=\"n {}\">{}</td></tr>",
            escape(row.key),
            row.class,
            escape(&row.value)
        );
    }
    out.push_str("</tbody></table>");
}

fn kv<'a>(key: &'a str, value: String) -> Kv<'a> {
    Kv {
        key,
        value,
        class: "",
    }
}

/// The three summary tables: the objective, the probes' fates (the undecided apart), latency.
pub fn summary(out: &mut String, r: &SlaReport, s: &ScenarioReport) {
    out.push_str("<div class=\"summary\"><div>");
    let objective = [
        Kv {
            key: "availability",
            value: format::pct(s.availability_percent),
            class: availability_class(s.availability_percent, r.slo_target_percent),
        },
        kv("objective", format::pct(Some(r.slo_target_percent))),
        Kv {
            key: "error budget left",
            value: format::pct(s.error_budget_left_percent),
            class: budget_class(s.error_budget_left_percent),
        },
        kv("within latency target", format::pct(s.slo_percent)),
    ];
    kv_table(out, "objective", &objective, "");
    out.push_str("</div><div>");
    let fates = [
        kv("probes sent", format::count(s.probes)),
        kv("delivered", format::count(s.delivered)),
        kv("of which to spam", format::count(s.delivered_spam)),
        kv("late (arrived after the timeout)", format::count(s.late)),
        kv("lost (never arrived)", format::count(s.lost)),
        kv(
            "failed (refused, bounced, not sent, unreadable)",
            format::count(s.failed),
        ),
    ];
    kv_table(out, "probes", &fates, "");
    let apart = [
        kv("interrupted", format::count(s.interrupted)),
        kv("flowtest errors", format::count(s.errors)),
        kv("pending", format::count(s.pending)),
    ];
    kv_table(
        out,
        "not decided: counted in neither direction",
        &apart,
        "apart",
    );
    out.push_str("</div><div>");
    let l = s.latency_ms;
    let latency = [
        kv("p50", format::opt_ms(l.p50)),
        kv("p95", format::opt_ms(l.p95)),
        kv("p99", format::opt_ms(l.p99)),
        kv("max", format::opt_ms(l.max)),
    ];
    kv_table(out, "end-to-end latency of delivered probes", &latency, "");
    let _ = write!(
        out,
        "<p class=\"meta\">percentiles: {} over the stored values</p></div></div>",
        escape(r.percentile_method)
    );
}

pub fn stages(out: &mut String, s: &ScenarioReport) {
    if s.stages.is_empty() {
        out.push_str("<p class=\"meta\">No stage was measured.</p>");
        return;
    }
    out.push_str(
        "<table class=\"wide\"><thead><tr><th>stage</th><th class=\"n\">samples</th>\
         <th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th></tr></thead><tbody>",
    );
    for st in &s.stages {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&st.name),
            format::count(st.samples),
            format::opt_ms(st.p50_ms),
            format::opt_ms(st.p95_ms),
            format::opt_ms(st.p99_ms)
        );
    }
    out.push_str("</tbody></table>");
}

fn incident_row(out: &mut String, i: &Incident) {
    let (end, lasted) = match i.end {
        Some(e) => (format::instant(e), format::span(i.start, e)),
        None => ("ongoing at the window's end".into(), "–".into()),
    };
    let _ = write!(
        out,
        "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><ul class=\"findings\">",
        escape(&format::instant(i.start)),
        escape(&end),
        escape(&lasted),
        format::count(i.failed_probes),
        escape(&i.statuses.join(", ")),
        escape(i.stage.as_deref().unwrap_or("–")),
        format::pct(Some(i.availability_cost_percent))
    );
    for f in &i.findings {
        let _ = write!(
            out,
            "<li><code>{}</code> ×{} {}<span class=\"hint\">hint: {}</span></li>",
            escape(f.code.as_str()),
            format::count(f.count),
            escape(&f.message),
            escape(&f.hint)
        );
    }
    out.push_str("</ul></td></tr>");
}

pub fn incidents(out: &mut String, s: &ScenarioReport) {
    if s.incidents.is_empty() {
        out.push_str("<p class=\"meta\">No incident in the window.</p>");
        return;
    }
    out.push_str(
        "<table class=\"wide\"><thead><tr><th>start</th><th>end</th><th class=\"n\">lasted</th>\
         <th class=\"n\">failed probes</th><th>statuses</th><th>stopped at</th><th class=\"n\">availability cost</th>\
         <th>findings and hints</th></tr></thead><tbody>",
    );
    for i in &s.incidents {
        incident_row(out, i);
    }
    out.push_str("</tbody></table>");
}

pub fn days(out: &mut String, r: &SlaReport, s: &ScenarioReport) {
    if s.days.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<details><summary>Daily figures ({} days, cut in {})</summary><table class=\"wide\"><thead><tr>\
         <th>day</th><th class=\"n\">probes</th><th class=\"n\">delivered</th><th class=\"n\">lost</th><th class=\"n\">late</th>\
         <th class=\"n\">failed</th><th class=\"n\">availability</th><th class=\"n\">within latency target</th>\
         <th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th><th class=\"n\">max</th></tr></thead><tbody>",
        s.days.len(),
        escape(&r.time_zone)
    );
    for d in &s.days {
        let l = d.latency_ms;
        out.push_str("<tr><td>");
        out.push_str(&format::day(d.date));
        for n in format::day_counts(d) {
            let _ = write!(out, "</td><td class=\"n\">{n}");
        }
        let _ = write!(
            out,
            "</td><td class=\"n {}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            availability_class(d.availability_percent, r.slo_target_percent),
            format::pct(d.availability_percent),
            format::pct(d.slo_percent),
            format::opt_ms(l.p50),
            format::opt_ms(l.p95),
            format::opt_ms(l.p99),
            format::opt_ms(l.max)
        );
    }
    out.push_str("</tbody></table></details>");
}
