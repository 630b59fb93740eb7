//! The SLA report as Markdown for tickets and postmortems: the same tables as the terminal
//! text, as pipe tables under headings. Cell text is escaped so that a server's reply cannot
//! break a table or inject markup. Not here: the tables' contents (`sections`).
use std::fmt::Write as _;

use super::model::SlaReport;
use super::sections::{self, FindingLine, Frame, Table};
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

struct Markdown(String);

impl Frame for Markdown {
    fn preamble(&mut self, lines: &[String]) {
        self.0.push_str("# flowtest SLA report\n\n");
        for line in lines {
            let _ = writeln!(self.0, "- {line}");
        }
        self.0.push('\n');
    }

    fn empty(&mut self) {
        self.0.push_str("No stored results in the window.\n");
    }

    fn summary(&mut self, t: &Table) {
        self.0.push_str(&table(t));
    }

    fn scenario(&mut self, scenario: &str, location: &str, counts: &str) {
        let _ = write!(
            self.0,
            "\n## {} at {}\n\n{counts}\n",
            cell(scenario),
            cell(location)
        );
    }

    fn section(&mut self, title: &str, t: Option<&Table>) {
        let _ = write!(self.0, "\n### {title}\n\n");
        if let Some(t) = t {
            self.0.push_str(&table(t));
        }
    }

    fn findings(&mut self, lines: &[FindingLine]) {
        self.0.push('\n');
        for line in lines {
            let _ = write!(self.0, "- #{} {}", line.incident, cell(&line.text));
            match &line.fix {
                Some(fix) => {
                    let _ = writeln!(self.0, "  \n  fix: {}", cell(fix));
                }
                None => self.0.push('\n'),
            }
        }
    }
}

pub fn render(report: &SlaReport) -> String {
    let mut out = Markdown(String::new());
    sections::walk(report, &mut out);
    out.0
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
