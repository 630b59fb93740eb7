//! The SLA report as Markdown for tickets and postmortems: the same tables as the terminal
//! text, as pipe tables under headings. Cell text is escaped so that a server's reply cannot
//! break a table or inject markup. Not here: the tables' contents (`sections`).
use std::fmt::Write as _;

use super::model::SlaReport;
use super::sections::{self, Table};
use crate::text::escape_control;

/// `s` safe inside a table cell or list item: controls escaped, one line, no pipes or tags.
fn cell(s: &str) -> String {
    escape_control(s)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "\\`")
}

pub fn table(t: &Table) -> String {
    let mut out = format!("| {} |\n|", t.header.join(" | "));
    for i in 0..t.header.len() {
        out.push_str(if i < t.left { "---|" } else { "---:|" });
    }
    out.push('\n');
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

pub fn render(report: &SlaReport) -> String {
    let mut out = String::from("# flowtest SLA report\n\n");
    for line in sections::preamble(report) {
        let _ = writeln!(out, "- {line}");
    }
    out.push('\n');
    if report.scenarios.is_empty() {
        out.push_str("No stored results in the window.\n");
        return out;
    }
    out.push_str(&table(&sections::summary(report)));
    let off = sections::offset(report);
    for s in &report.scenarios {
        let _ = write!(
            out,
            "\n## {} at {}\n\n",
            cell(&s.scenario),
            cell(&s.location)
        );
        let _ = writeln!(
            out,
            "{} probes: {} delivered ({} to spam), {} lost, {} late, {} failed; apart: {} interrupted, {} error, {} pending.",
            s.probes, s.delivered, s.delivered_spam, s.lost, s.late, s.failed, s.interrupted, s.errors, s.pending
        );
        if !s.stages.is_empty() {
            out.push_str("\n### Stages (delivered probes)\n\n");
            out.push_str(&table(&sections::stages(s)));
        }
        let _ = write!(out, "\n### Days ({})\n\n", report.time_zone);
        out.push_str(&table(&sections::days(s)));
        let _ = write!(out, "\n### {}\n\n", sections::incidents_title(s));
        if s.incidents.is_empty() {
            continue;
        }
        out.push_str(&table(&sections::incidents(s, off)));
        out.push('\n');
        for line in sections::finding_lines(s) {
            let _ = write!(out, "- #{} {}", line.incident, cell(&line.text));
            match &line.fix {
                Some(fix) => {
                    let _ = writeln!(out, "  \n  fix: {}", cell(fix));
                }
                None => out.push('\n'),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(
            super::cell("a|b <script> `x`"),
            "a\\|b &lt;script&gt; \\`x\\`"
        );
        // Shown as `l1\x0al2`: the escape's own backslash is escaped for Markdown.
        assert_eq!(super::cell("l1\nl2"), "l1\\\\x0al2");
    }
}
