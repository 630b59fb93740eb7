//! The tables every text format of the SLA report shows (summary, stages, days, incidents), the
//! words that define its figures and the order they come in ([`walk`]), built once as plain
//! text; `render_human` and `render_markdown` only frame and escape them ([`Frame`]).
//! Not here: computing the figures.
use chrono::{DateTime, Utc};

use super::aggregate::MAX_INCIDENTS;
use super::model::{Latency, ScenarioReport, SlaReport};
use crate::logs::LogZone;
use crate::trace::render::human_ms;

/// A table of text cells; the first `left` columns are left-aligned, the rest right-aligned.
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub left: usize,
}

/// The time zone the report's days and times are shown in (UTC for a name this build does not
/// know: a report written elsewhere).
pub fn zone(report: &SlaReport) -> LogZone {
    LogZone::parse(&report.time_zone).unwrap_or(LogZone::UTC)
}

/// `t` in the report's time zone, to the second, without the zone (stated once per report),
/// but with its offset in the hour a clock set back shows twice, where the wall time alone
/// names two instants.
pub fn local_time(t: DateTime<Utc>, zone: &LogZone) -> String {
    let local = zone.local(t);
    let text = local.format("%Y-%m-%d %H:%M:%S");
    match chrono::FixedOffset::east_opt(zone.offset_at_utc(t)) {
        Some(o) if zone.is_ambiguous(local) => format!("{text} {o}"),
        _ => text.to_string(),
    }
}

/// A percentage to three decimals, rounded down so that 100.000 means no failure at all.
pub fn pct(p: Option<f64>) -> String {
    match p {
        // The epsilon keeps 99.9 (stored as 99.8999...) from showing as 99.899.
        Some(p) => format!("{:.3}", ((p * 1000.0) + 1e-6).floor() / 1000.0),
        None => "-".into(),
    }
}

pub fn budget(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{p:.1} %"))
}

pub fn ms(v: Option<u64>) -> String {
    v.map_or_else(
        || "-".into(),
        |v| human_ms(i64::try_from(v).unwrap_or(i64::MAX)),
    )
}

fn latency_cells(l: &Latency) -> [String; 4] {
    [ms(l.p50), ms(l.p95), ms(l.p99), ms(l.max)]
}

/// The header lines: window, target, zone and the definitions of the figures.
pub fn preamble(report: &SlaReport) -> Vec<String> {
    let zone = zone(report);
    vec![
        format!(
            "Window: {} to {} ({}, end excluded); days cut at midnight {}.",
            local_time(report.window.from, &zone),
            local_time(report.window.to, &zone),
            report.time_zone,
            report.time_zone
        ),
        format!(
            "Availability: probes delivered within their timeout (inbox or spam) / decided probes \
             (delivered, lost, late, failed); interrupted, error and pending probes are shown apart \
             and counted in neither direction. Target {} %.",
            report.slo_target_percent
        ),
        "SLO: probes delivered to the inbox within the scenario's latency target / decided probes."
            .into(),
        "Error budget: the failure share the target allows (100 - target); \"left\" is the share \
         of it not spent in the window (negative: overspent)."
            .into(),
        format!(
            "Latency percentiles: {}, exact over every stored value of delivered probes (no \
             interpolation, no sampling).",
            report.percentile_method
        ),
    ]
}

pub fn summary(report: &SlaReport) -> Table {
    let rows = report
        .scenarios
        .iter()
        .map(|s| {
            let mut row = vec![
                s.scenario.clone(),
                s.location.clone(),
                s.probes.to_string(),
                pct(s.availability_percent),
                pct(s.slo_percent),
                budget(s.error_budget_left_percent),
            ];
            row.extend(latency_cells(&s.latency_ms));
            row.extend(
                [
                    s.lost,
                    s.late,
                    s.failed,
                    s.delivered_spam,
                    s.interrupted,
                    s.errors,
                    s.pending,
                ]
                .map(|n| n.to_string()),
            );
            row
        })
        .collect();
    Table {
        header: vec![
            "scenario",
            "location",
            "probes",
            "avail %",
            "SLO %",
            "budget left",
            "p50",
            "p95",
            "p99",
            "max",
            "lost",
            "late",
            "failed",
            "spam",
            "intr",
            "err",
            "pend",
        ],
        rows,
        left: 2,
    }
}

pub fn stages(s: &ScenarioReport) -> Table {
    Table {
        header: vec!["stage", "samples", "p50", "p95", "p99"],
        rows: s
            .stages
            .iter()
            .map(|st| {
                vec![
                    st.name.clone(),
                    st.samples.to_string(),
                    ms(st.p50_ms),
                    ms(st.p95_ms),
                    ms(st.p99_ms),
                ]
            })
            .collect(),
        left: 1,
    }
}

pub fn days(s: &ScenarioReport) -> Table {
    Table {
        header: vec![
            "date", "probes", "avail %", "SLO %", "lost", "late", "failed", "p50", "p95", "p99",
            "max",
        ],
        rows: s
            .days
            .iter()
            .map(|d| {
                let mut row = vec![
                    d.date.to_string(),
                    d.probes.to_string(),
                    pct(d.availability_percent),
                    pct(d.slo_percent),
                    d.lost.to_string(),
                    d.late.to_string(),
                    d.failed.to_string(),
                ];
                row.extend(latency_cells(&d.latency_ms));
                row
            })
            .collect(),
        left: 1,
    }
}

pub fn incidents(s: &ScenarioReport, zone: &LogZone) -> Table {
    Table {
        header: vec!["#", "start", "end", "statuses", "stage", "probes", "cost %"],
        rows: s
            .incidents
            .iter()
            .enumerate()
            .map(|(i, inc)| {
                vec![
                    (i + 1).to_string(),
                    local_time(inc.start, zone),
                    inc.end
                        .map_or_else(|| "ongoing".into(), |e| local_time(e, zone)),
                    inc.statuses.join(", "),
                    inc.stage.clone().unwrap_or_else(|| "-".into()),
                    inc.failed_probes.to_string(),
                    format!("{:.3}", inc.availability_cost_percent),
                ]
            })
            .collect(),
        left: 5,
    }
}

/// One finding of an incident as shown: `code xN: message`, and its fix unless an earlier
/// incident of the same scenario showed the same code's fix already.
pub struct FindingLine {
    pub incident: usize,
    pub text: String,
    pub fix: Option<String>,
}

pub fn finding_lines(s: &ScenarioReport) -> Vec<FindingLine> {
    let mut shown = Vec::new();
    let mut out = Vec::new();
    for (i, inc) in s.incidents.iter().enumerate() {
        for f in &inc.findings {
            let code = serde_json::to_value(f.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let fix = (!shown.contains(&f.code)).then(|| f.hint.clone());
            shown.push(f.code);
            out.push(FindingLine {
                incident: i + 1,
                text: format!("{code} x{}: {}", f.count, f.message),
                fix,
            });
        }
    }
    out
}

/// The incident section's title, naming the cap.
pub fn incidents_title(s: &ScenarioReport) -> String {
    if s.incidents.is_empty() {
        "No incidents: no failed probe in the window.".into()
    } else {
        format!(
            "Worst incidents (runs of consecutive failed probes; at most {MAX_INCIDENTS}, most failed \
             probes first)"
        )
    }
}

/// How one text format lays out the report's parts; every text given is raw (the frame escapes).
pub trait Frame {
    fn preamble(&mut self, lines: &[String]);
    /// The window has no stored result.
    fn empty(&mut self);
    fn summary(&mut self, table: &Table);
    /// A scenario at a location begins: its title and its probe counts.
    fn scenario(&mut self, scenario: &str, location: &str, counts: &str);
    /// A titled part of a scenario, with its table when it has one.
    fn section(&mut self, title: &str, table: Option<&Table>);
    fn findings(&mut self, lines: &[FindingLine]);
}

/// The report's parts, in order, through `frame`.
pub fn walk(report: &SlaReport, frame: &mut impl Frame) {
    frame.preamble(&preamble(report));
    if report.scenarios.is_empty() {
        frame.empty();
        return;
    }
    frame.summary(&summary(report));
    let zone = zone(report);
    for s in &report.scenarios {
        let counts = format!(
            "{} probes: {} delivered ({} to spam), {} lost, {} late, {} failed; apart: {} \
             interrupted, {} error, {} pending.",
            s.probes,
            s.delivered,
            s.delivered_spam,
            s.lost,
            s.late,
            s.failed,
            s.interrupted,
            s.errors,
            s.pending
        );
        frame.scenario(&s.scenario, &s.location, &counts);
        if !s.stages.is_empty() {
            frame.section("Stages (delivered probes)", Some(&stages(s)));
        }
        frame.section(&format!("Days ({})", report.time_zone), Some(&days(s)));
        if s.incidents.is_empty() {
            frame.section(&incidents_title(s), None);
            continue;
        }
        frame.section(&incidents_title(s), Some(&incidents(s, &zone)));
        frame.findings(&finding_lines(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a named zone a time carries its offset only where the wall time alone names two
    /// instants: 02:30 on the day Berlin's clocks go back, once in summer time, once in winter.
    #[test]
    fn a_time_in_the_repeated_hour_says_its_offset() {
        let berlin = LogZone::parse("Europe/Berlin").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let shown = |s| local_time(at(s), &berlin);
        assert_eq!(shown("2026-10-25T00:30:00Z"), "2026-10-25 02:30:00 +02:00");
        assert_eq!(shown("2026-10-25T01:30:00Z"), "2026-10-25 02:30:00 +01:00");
        assert_eq!(shown("2026-10-25T02:30:00Z"), "2026-10-25 03:30:00");
        assert_eq!(shown("2026-07-01T10:00:00Z"), "2026-07-01 12:00:00");
        let plus2 = LogZone::parse("+02:00").unwrap();
        assert_eq!(
            local_time(at("2026-10-25T00:30:00Z"), &plus2),
            "2026-10-25 02:30:00"
        );
    }
}
