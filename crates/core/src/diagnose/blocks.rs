//! Blocks of one log's lines parsed on the correlating stage when it would otherwise wait for
//! records: the reading stage (whose parsing of a line costs about one and a half times what
//! the correlating stage spends on it, when the report is the human one) hands over a block of
//! whole lines instead of its records, so that both cores parse. Owns the block as it travels, when to
//! hand one over, and the correlating stage's parser of such blocks; does not read input
//! (`super::source`) or correlate (`crate::fusion`).
//!
//! The report stays what one thread writes: blocks travel in the same queue as the records
//! read before and after them, so they are correlated in the log's order; a block is handed
//! over only when its lines leave the year-rollover tracking where it stands (then both
//! parsers read them at the same years); and what the second parser counted is added to the
//! source's counts at the end.

use std::io;

use crate::logs::{block_lines, BoxedRecord, LineParser, LineRead, LogRecord, Parsed, Rollover};

use super::window::{Placement, Window};
use super::SourceReport;

/// Whole lines of the log, with the rollover state to parse them at.
pub(super) struct Block {
    pub(super) text: String,
    pub(super) at: Rollover,
}

/// When the reading stage hands a block over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HandOff {
    /// When fewer than [`HandOff::IDLE_BELOW`] hand-offs wait in the queue: the correlating
    /// stage is about to wait. How much each stage parses then follows how fast each is.
    WhenIdle,
    /// Every `n`th block (whatever the queue holds): for tests, which must see blocks on both
    /// sides whatever the timing.
    #[cfg(test)]
    Every(u64),
}

impl HandOff {
    const IDLE_BELOW: usize = 2;

    /// Whether block number `n` (from 1) goes over, with `queued` hand-offs waiting.
    pub(super) fn now(self, queued: usize, n: u64) -> bool {
        match self {
            HandOff::WhenIdle => {
                let _ = n;
                queued < Self::IDLE_BELOW
            }
            #[cfg(test)]
            HandOff::Every(k) => n.is_multiple_of(k.max(1)),
        }
    }
}

/// Which records a source keeps: those inside its window, counted when not.
#[derive(Debug, Clone)]
pub(super) struct Admission {
    window: Window,
    pub(super) out_of_window: u64,
    pub(super) stopped_after_until: bool,
}

impl Admission {
    pub(super) fn new(window: Window) -> Self {
        Admission {
            window,
            out_of_window: 0,
            stopped_after_until: false,
        }
    }

    /// The same window, nothing counted yet.
    pub(super) fn anew(&self) -> Self {
        Admission::new(self.window)
    }

    /// Whether the window has an end (past which a source stops being read).
    pub(super) fn has_end(&self) -> bool {
        self.window.until.is_some()
    }

    /// Whether a record is kept (inside the window); notes when the log has gone past it.
    pub(super) fn admit(&mut self, rec: &LogRecord) -> bool {
        match rec.timestamp.map(|t| self.window.place(t)) {
            None | Some(Placement::Inside) => true,
            Some(Placement::Outside) => {
                self.out_of_window += 1;
                false
            }
            Some(Placement::Beyond) => {
                self.out_of_window += 1;
                self.stopped_after_until = true;
                false
            }
        }
    }
}

/// A line as a parser reads it: a record, or nothing (an over-long line is counted).
pub(super) fn parse_line(parser: &mut LineParser, line: &LineRead<'_>) -> Option<BoxedRecord> {
    if let LineRead::Overlong(_) = line {
        parser.note_overlong();
        return None;
    }
    match parser.parse_read(line) {
        Parsed::Record(r) => Some(r),
        Parsed::Info | Parsed::Unknown => None,
    }
}

/// The correlating stage's parser of the blocks handed to it.
pub(super) struct BlockParser {
    parser: LineParser,
    admission: Admission,
    cap: usize,
    spent: Vec<BoxedRecord>,
}

impl BlockParser {
    pub(super) fn new(parser: LineParser, admission: Admission, cap: usize) -> Self {
        BlockParser {
            parser,
            admission,
            cap,
            spent: Vec::with_capacity(1),
        }
    }

    /// Parse `block`'s lines, each record kept by the window passed to `each` in order. A
    /// record's box is reused for the next.
    pub(super) fn parse(
        &mut self,
        block: &Block,
        mut each: impl FnMut(&LogRecord) -> io::Result<()>,
    ) -> io::Result<()> {
        self.parser.resume_at(block.at);
        for line in block_lines(&block.text, self.cap) {
            let Some(rec) = parse_line(&mut self.parser, &line) else {
                continue;
            };
            let kept = self.admission.admit(&rec);
            if kept {
                each(&rec)?;
            }
            self.spent.push(rec);
            self.parser.recycle(&mut self.spent);
        }
        Ok(())
    }

    /// Add what this parser counted to its source's report.
    pub(super) fn add_counts_to(&self, report: &mut SourceReport) {
        report.counts.add(&self.parser.counts());
        report.out_of_window += self.admission.out_of_window;
    }
}
