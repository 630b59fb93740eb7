//! The SLA report as terminal text: a summary table, then per scenario and location its
//! stages, days and worst incidents. Text from servers and configuration passes through
//! `escape_control`. Not here: the tables' contents (`sections`).
use std::fmt::Write as _;

use super::model::SlaReport;
use super::sections::{self, Table};
use crate::text::escape_control;

/// Columns aligned with two spaces between them.
pub fn table(t: &Table, indent: &str) -> String {
    let cells: Vec<Vec<String>> = std::iter::once(t.header.iter().map(|h| h.to_string()).collect())
        .chain(
            t.rows
                .iter()
                .map(|r| r.iter().map(|c| escape_control(c).into_owned()).collect()),
        )
        .collect();
    let mut widths = vec![0usize; t.header.len()];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::from(indent);
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if i < t.left {
                let _ = write!(line, "{c:<w$}");
            } else {
                let _ = write!(line, "{c:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render(report: &SlaReport) -> String {
    let mut out = String::from("flowtest SLA report\n");
    for line in sections::preamble(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    if report.scenarios.is_empty() {
        out.push_str("No stored results in the window.\n");
        return out;
    }
    out.push_str(&table(&sections::summary(report), ""));
    let off = sections::offset(report);
    for s in &report.scenarios {
        let _ = write!(
            out,
            "\n{} at {}\n",
            escape_control(&s.scenario),
            escape_control(&s.location)
        );
        let _ = writeln!(
            out,
            "  {} probes: {} delivered ({} to spam), {} lost, {} late, {} failed; apart: {} interrupted, {} error, {} pending",
            s.probes, s.delivered, s.delivered_spam, s.lost, s.late, s.failed, s.interrupted, s.errors, s.pending
        );
        if !s.stages.is_empty() {
            out.push_str("\n  Stages (delivered probes)\n");
            out.push_str(&table(&sections::stages(s), "  "));
        }
        let _ = write!(out, "\n  Days ({})\n", report.time_zone);
        out.push_str(&table(&sections::days(s), "  "));
        let _ = write!(out, "\n  {}\n", sections::incidents_title(s));
        if s.incidents.is_empty() {
            continue;
        }
        out.push_str(&table(&sections::incidents(s, off), "  "));
        for line in sections::finding_lines(s) {
            let _ = writeln!(out, "  #{} {}", line.incident, escape_control(&line.text));
            if let Some(fix) = &line.fix {
                let _ = writeln!(out, "     fix: {}", escape_control(fix));
            }
        }
    }
    out
}
