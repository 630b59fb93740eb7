//! One already-opened log stream of a diagnosis, as the merge reads it: bounded lines, parsed
//! (through the shared `--message-id` prefilter when there is one), kept when inside the window,
//! and counted for the per-source report. Does not open anything (the caller hands in a reader).

use std::io::BufRead;

use crate::logs::{
    block_lines, BoundedLines, BoxedRecord, Focus, FocusScan, LineParser, LineRead, LogRecord,
    Rollover,
};

use super::blocks::{parse_line, Admission, BlockParser};
use super::merge::RecordSource;
use super::{AnalyzeError, Input, Options, SourceReport, LINE_CAP};

/// How a stream's input is read: line by line, or (with a message-id focus) searched a buffer
/// at a time.
enum Lines {
    Each(BoundedLines<Box<dyn BufRead + Send>>),
    Focused(FocusScan),
}

pub(super) struct LogStream {
    name: String,
    display: String,
    lines: Lines,
    parser: LineParser,
    admission: Admission,
    scratch: Vec<LogRecord>,
    skipped_bytes: u64,
}

impl LogStream {
    pub(super) fn new(input: Input, opts: &Options) -> Self {
        let mut ctx = opts.context_for(&input.name, input.reference);
        ctx.hosts_from_lines = input.hosts_from_lines;
        LogStream {
            name: input.name,
            display: input.display,
            lines: if opts.focus().is_some() {
                Lines::Focused(FocusScan::new(input.reader, LINE_CAP))
            } else {
                Lines::Each(BoundedLines::new(input.reader, LINE_CAP))
            },
            parser: LineParser::new(ctx),
            admission: Admission::new(opts.window()),
            scratch: Vec::new(),
            skipped_bytes: input.skipped_bytes,
        }
    }

    /// The full scan's read: lines until one makes a record the window keeps, or the input
    /// ends (most lines make none, and a call per line costs more than the line). The record
    /// stays in the box it was made in.
    fn read_all(&mut self, out: &mut Vec<BoxedRecord>) -> Result<bool, AnalyzeError> {
        let before = out.len();
        loop {
            let more = self.read_line(out)?;
            if !more || out.len() > before {
                return Ok(more);
            }
        }
    }

    /// Whether this stream's whole lines can be parsed a block at a time elsewhere too: a full
    /// scan (no message-id focus) that reads to the end (no `--until` to stop after).
    pub(super) fn shares_blocks(&self) -> bool {
        matches!(self.lines, Lines::Each(_)) && !self.admission.has_end()
    }

    /// A parser of this stream's blocks for the correlating stage.
    pub(super) fn block_parser(&self) -> BlockParser {
        BlockParser::new(
            LineParser::new(self.parser.context().clone()),
            self.admission.anew(),
            LINE_CAP,
        )
    }

    /// The next block of whole lines into `into` (see [`BoundedLines::take_block`]); `false`
    /// when the next line is to be read on its own ([`LogStream::read_line`]).
    pub(super) fn take_block(&mut self, into: &mut String) -> Result<bool, AnalyzeError> {
        let Lines::Each(lines) = &mut self.lines else {
            return Ok(false);
        };
        lines.take_block(into).map_err(read_error(&self.display))
    }

    /// The rollover state another parser reads `block` at, when its lines leave this
    /// stream's tracking where it stands (see [`LineParser::keeps_rollover`]).
    pub(super) fn hand_over_at(&self, block: &str) -> Option<Rollover> {
        self.parser
            .keeps_rollover(block)
            .then(|| self.parser.rollover_state())
    }

    /// Parse a block taken with [`LogStream::take_block`] here, its kept records into `out`.
    pub(super) fn parse_block(&mut self, block: &str, out: &mut Vec<BoxedRecord>) {
        for line in block_lines(block, LINE_CAP) {
            keep_line(&mut self.parser, &mut self.admission, &line, out);
        }
    }

    /// One line (whatever it makes), its record into `out`; `false` at the end of input.
    pub(super) fn read_line(&mut self, out: &mut Vec<BoxedRecord>) -> Result<bool, AnalyzeError> {
        let Lines::Each(lines) = &mut self.lines else {
            return Ok(false);
        };
        let line = lines.next_line().map_err(read_error(&self.display))?;
        let Some(line) = line else {
            return Ok(false);
        };
        keep_line(&mut self.parser, &mut self.admission, &line, out);
        Ok(!self.admission.stopped_after_until)
    }

    pub(super) fn report(&self) -> SourceReport {
        SourceReport {
            name: self.name.clone(),
            path: self.display.clone(),
            counts: self.parser.counts(),
            out_of_window: self.admission.out_of_window,
            stopped_after_until: self.admission.stopped_after_until,
            skipped_bytes: self.skipped_bytes,
        }
    }
}

/// A read error, naming the source it came from.
fn read_error(display: &str) -> impl Fn(std::io::Error) -> AnalyzeError + '_ {
    move |err| AnalyzeError::Read {
        source: display.to_owned(),
        err,
    }
}

/// A line's record into `out`, when it makes one that the window keeps.
fn keep_line(
    parser: &mut LineParser,
    admission: &mut Admission,
    line: &LineRead<'_>,
    out: &mut Vec<BoxedRecord>,
) {
    if let Some(r) = parse_line(parser, line) {
        if admission.admit(&r) {
            out.push(r);
        }
    }
}

impl RecordSource for LogStream {
    type Error = AnalyzeError;
    type Shared = Option<Focus>;

    fn read(
        &mut self,
        focus: &mut Option<Focus>,
        out: &mut Vec<BoxedRecord>,
    ) -> Result<bool, AnalyzeError> {
        match (&mut self.lines, focus) {
            (Lines::Focused(scan), Some(f)) => {
                let more = scan
                    .next(&mut self.parser, f, &mut self.scratch)
                    .map_err(read_error(&self.display))?;
                if !more {
                    return Ok(false);
                }
            }
            (Lines::Focused(_), None) => return Ok(false),
            (Lines::Each(_), None) => return self.read_all(out),
            (Lines::Each(lines), Some(f)) => {
                match lines.next_line().map_err(read_error(&self.display))? {
                    None => return Ok(false),
                    Some(LineRead::Overlong(_)) => self.parser.note_overlong(),
                    Some(l) => self.parser.parse_focused(l.bytes(), f, &mut self.scratch),
                }
            }
        }
        let mut recs = std::mem::take(&mut self.scratch);
        for rec in recs.drain(..) {
            if self.admission.admit(&rec) {
                out.push(Box::new(rec));
            }
        }
        self.scratch = recs;
        Ok(!self.admission.stopped_after_until)
    }

    fn recycle(&mut self, spent: &mut Vec<BoxedRecord>) {
        self.parser.recycle(spent);
    }
}
