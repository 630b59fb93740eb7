//! The SLA report as terminal text: a summary table, then per scenario and location its
//! stages, days and worst incidents. Text from servers and configuration passes through
//! `escape_control`. Not here: the tables' contents (`sections`).
use std::fmt::Write as _;

use super::model::SlaReport;
use super::sections::{self, FindingLine, Frame, Table};
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

struct Human(String);

impl Frame for Human {
    fn preamble(&mut self, lines: &[String]) {
        self.0.push_str("flowtest SLA report\n");
        for line in lines {
            let _ = writeln!(self.0, "{line}");
        }
        self.0.push('\n');
    }

    fn empty(&mut self) {
        self.0.push_str("No stored results in the window.\n");
    }

    fn summary(&mut self, t: &Table) {
        self.0.push_str(&table(t, ""));
    }

    fn scenario(&mut self, scenario: &str, location: &str, counts: &str) {
        let _ = write!(
            self.0,
            "\n{} at {}\n  {counts}\n",
            escape_control(scenario),
            escape_control(location)
        );
    }

    fn section(&mut self, title: &str, t: Option<&Table>) {
        let _ = write!(self.0, "\n  {title}\n");
        if let Some(t) = t {
            self.0.push_str(&table(t, "  "));
        }
    }

    fn findings(&mut self, lines: &[FindingLine]) {
        for line in lines {
            let _ = writeln!(
                self.0,
                "  #{} {}",
                line.incident,
                escape_control(&line.text)
            );
            if let Some(fix) = &line.fix {
                let _ = writeln!(self.0, "     fix: {}", escape_control(fix));
            }
        }
    }
}

pub fn render(report: &SlaReport) -> String {
    let mut out = Human(String::new());
    sections::walk(report, &mut out);
    out.0
}
