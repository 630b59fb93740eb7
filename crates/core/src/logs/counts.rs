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

impl SourceCounts {
    /// Add what another parser of the same source counted.
    pub fn add(&mut self, other: &SourceCounts) {
        // Taken apart whole: a counter added to the struct must be added here too.
        let SourceCounts {
            lines,
            parsed,
            unknown,
            other_programs,
            invalid_utf8,
            overlong,
            filtered,
            formats,
        } = other;
        self.lines += lines;
        self.parsed += parsed;
        self.unknown += unknown;
        self.other_programs += other_programs;
        self.invalid_utf8 += invalid_utf8;
        self.overlong += overlong;
        self.filtered += filtered;
        for (f, n) in formats {
            *self.formats.entry(*f).or_default() += n;
        }
    }
}
