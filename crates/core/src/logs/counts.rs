//! What a log source's parser counted of its lines: read, recognized, passed over, not
//! understood, by layout. Reported for every source so that skipped input is never silent.

use serde::Serialize;

use super::LineFormat;

/// Per-source counters, reported so that skipped input is never silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceCounts {
    /// Lines read (including unknown and over-long ones).
    pub lines: u64,
    /// Lines recognized (a known format and a known Postfix / Dovecot message).
    pub parsed: u64,
    /// Lines skipped because they were not understood: no known layout, or a Postfix or
    /// Dovecot message flowtest does not read.
    pub unknown: u64,
    /// Of the `unknown` lines, those in no log layout flowtest knows (blank lines aside): a
    /// source with nothing parsed and some of these was most likely not read at all.
    pub no_layout: u64,
    /// The first of those lines (cut to [`SAMPLE_CHARS`] characters, a tried password
    /// redacted), to show what the unread layout looks like.
    pub no_layout_sample: Option<String>,
    /// Lines in a known layout from a program other than Postfix and Dovecot (a milter such as
    /// opendkim, a content filter such as amavis, cron): passed over, and not counted unknown,
    /// so that `unknown` shows what flowtest missed of the mail servers' own lines.
    pub other_programs: u64,
    /// Lines that were not valid UTF-8 (still parsed, lossily). Lines skipped by a
    /// [`Focus`] are not checked.
    pub invalid_utf8: u64,
    /// Lines longer than the reader's cap (cut there; counted as unknown).
    pub overlong: u64,
    /// Lines skipped unparsed by a message-id [`Focus`] (they cannot concern the message).
    /// `lines = parsed + other_programs + unknown + filtered`.
    pub filtered: u64,
    /// Recognized lines by layout.
    pub formats: std::collections::BTreeMap<LineFormat, u64>,
}

/// How much of a line in no known layout is kept as its source's sample.
pub const SAMPLE_CHARS: usize = 160;

/// journalctl's own notes between entries (`-- No entries --`, `-- Boot 3f2a... --`,
/// `-- Journal begins at ... --`): a layout known to be no log line.
fn is_journal_note(line: &[u8]) -> bool {
    let line = line.trim_ascii_end();
    line.len() > 5 && line.starts_with(b"-- ") && line.ends_with(b" --")
}

impl SourceCounts {
    /// Count an unknown line that is in no known layout, keeping the first as the sample.
    pub fn note_no_layout(&mut self, line: &[u8]) {
        self.unknown += 1;
        if line.iter().all(u8::is_ascii_whitespace) || is_journal_note(line) {
            return;
        }
        self.no_layout += 1;
        if self.no_layout_sample.is_none() {
            let mut cut: String = String::from_utf8_lossy(line)
                .chars()
                .take(SAMPLE_CHARS)
                .collect();
            super::dovecot::redact_password(&mut cut);
            self.no_layout_sample = Some(cut);
        }
    }

    /// Add what another parser of the same source counted.
    pub fn add(&mut self, other: &SourceCounts) {
        // Taken apart whole: a counter added to the struct must be added here too.
        let SourceCounts {
            lines,
            parsed,
            unknown,
            no_layout,
            no_layout_sample,
            other_programs,
            invalid_utf8,
            overlong,
            filtered,
            formats,
        } = other;
        self.lines += lines;
        self.parsed += parsed;
        self.unknown += unknown;
        self.no_layout += no_layout;
        if self.no_layout_sample.is_none() {
            self.no_layout_sample.clone_from(no_layout_sample);
        }
        self.other_programs += other_programs;
        self.invalid_utf8 += invalid_utf8;
        self.overlong += overlong;
        self.filtered += filtered;
        for (f, n) in formats {
            *self.formats.entry(*f).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_no_layout_keep_the_first_as_a_sample_across_parsers() {
        let mut first = SourceCounts::default();
        first.note_no_layout(b" \t");
        assert_eq!(
            (
                first.unknown,
                first.no_layout,
                first.no_layout_sample.as_deref()
            ),
            (1, 0, None)
        );
        let mut second = SourceCounts::default();
        let long = format!("x{}", "y".repeat(400));
        second.note_no_layout(long.as_bytes());
        second.note_no_layout(b"later");
        first.add(&second);
        let sample = first.no_layout_sample.clone().unwrap();
        assert_eq!(
            (first.unknown, first.no_layout, sample.chars().count()),
            (3, 2, SAMPLE_CHARS)
        );
        first.note_no_layout(b"(given password: hunter2)");
        first.add(&SourceCounts {
            no_layout_sample: Some("another".into()),
            ..SourceCounts::default()
        });
        assert_eq!(first.no_layout_sample.as_deref(), Some(sample.as_str()));
        first.note_no_layout(b"-- No entries --\r");
        assert_eq!((first.unknown, first.no_layout), (5, 3));
        let mut redacted = SourceCounts::default();
        redacted.note_no_layout("é (given password: hunter2)".as_bytes());
        assert_eq!(
            redacted.no_layout_sample.as_deref(),
            Some("é (given password: <redacted>)")
        );
    }
}
