//! One already-opened log stream of a diagnosis, as the merge reads it: bounded lines, parsed
//! (through the shared `--message-id` prefilter when there is one), kept when inside the window,
//! and counted for the per-source report. Does not open anything (the caller hands in a reader).

use std::io::BufRead;

use chrono::{DateTime, Utc};

use crate::logs::{
    BoundedLines, BoxedRecord, Focus, FocusScan, LineParser, LineRead, LogRecord, Parsed,
};

use super::merge::RecordSource;
use super::window::{Placement, Window};
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
    window: Window,
    scratch: Vec<LogRecord>,
    out_of_window: u64,
    stopped_after_until: bool,
    skipped_bytes: u64,
}

impl LogStream {
    pub(super) fn new(input: Input, opts: &Options) -> Self {
        let ctx = opts.context_for(&input.name, input.reference);
        LogStream {
            name: input.name,
            display: input.display,
            lines: if opts.focus().is_some() {
                Lines::Focused(FocusScan::new(input.reader, LINE_CAP))
            } else {
                Lines::Each(BoundedLines::new(input.reader, LINE_CAP))
            },
            parser: LineParser::new(ctx),
            window: opts.window(),
            scratch: Vec::new(),
            out_of_window: 0,
            stopped_after_until: false,
            skipped_bytes: input.skipped_bytes,
        }
    }

    /// Whether a record is kept (inside the window); notes when the log has gone past it.
    fn admit(&mut self, t: Option<DateTime<Utc>>) -> bool {
        match t.map(|t| self.window.place(t)) {
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

    /// The full scan's read: lines until one makes a record or the input ends (most lines make
    /// none, and a call per line costs more than the line). The record stays in the box it was
    /// made in.
    fn read_all(&mut self, out: &mut Vec<BoxedRecord>) -> Result<bool, AnalyzeError> {
        loop {
            let Lines::Each(lines) = &mut self.lines else {
                return Ok(false);
            };
            let line = lines.next_line().map_err(|err| AnalyzeError::Read {
                source: self.display.clone(),
                err,
            })?;
            match line {
                None => return Ok(false),
                Some(LineRead::Overlong(_)) => self.parser.note_overlong(),
                Some(l) => {
                    if let Parsed::Record(r) = self.parser.parse_read(&l) {
                        if self.admit(r.timestamp) {
                            out.push(r);
                        }
                        return Ok(!self.stopped_after_until);
                    }
                }
            }
        }
    }

    pub(super) fn report(&self) -> SourceReport {
        SourceReport {
            name: self.name.clone(),
            path: self.display.clone(),
            counts: self.parser.counts(),
            out_of_window: self.out_of_window,
            stopped_after_until: self.stopped_after_until,
            skipped_bytes: self.skipped_bytes,
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
        let read_error = |err| AnalyzeError::Read {
            source: self.display.clone(),
            err,
        };
        match (&mut self.lines, focus) {
            (Lines::Focused(scan), Some(f)) => {
                let more = scan
                    .next(&mut self.parser, f, &mut self.scratch)
                    .map_err(read_error)?;
                if !more {
                    return Ok(false);
                }
            }
            (Lines::Focused(_), None) => return Ok(false),
            (Lines::Each(_), None) => return self.read_all(out),
            (Lines::Each(lines), Some(f)) => match lines.next_line().map_err(read_error)? {
                None => return Ok(false),
                Some(LineRead::Overlong(_)) => self.parser.note_overlong(),
                Some(l) => self.parser.parse_focused(l.bytes(), f, &mut self.scratch),
            },
        }
        let mut recs = std::mem::take(&mut self.scratch);
        for rec in recs.drain(..) {
            if self.admit(rec.timestamp) {
                out.push(Box::new(rec));
            }
        }
        self.scratch = recs;
        Ok(!self.stopped_after_until)
    }

    fn recycle(&mut self, spent: &mut Vec<BoxedRecord>) {
        self.parser.recycle(spent);
    }
}
