//! The one k-way merge of log sources by time: each source is roughly ordered on its own, and
//! the oldest record at the head of any source goes next. Used by `flowtest diagnose` (streaming
//! files of any size) and by the live log watch of `flowtest run` (lines gathered in memory).
//! Does not parse lines or decide what a source keeps (the [`RecordSource`] does) and does not
//! correlate records (`crate::fusion`).

use std::collections::VecDeque;
use std::convert::Infallible;

use chrono::{DateTime, Utc};

use crate::logs::{BoxedRecord, LineParser, LogRecord, ParseContext, Parsed};

use super::window::{Placement, Window};

/// One log source as the merge reads it.
pub trait RecordSource {
    /// Why reading failed (naming the source).
    type Error;
    /// State every source reads with (a shared prefilter, say); `()` for none.
    type Shared;
    /// Read on (typically one line) and append what it yields to `out`, possibly nothing.
    /// `Ok(false)` once the source has nothing more; what was appended still counts. Records
    /// travel boxed: they are large, and the merge and its callers move them several times.
    fn read(
        &mut self,
        shared: &mut Self::Shared,
        out: &mut Vec<BoxedRecord>,
    ) -> Result<bool, Self::Error>;

    /// Take what it can reuse of records already merged and used (popped from `spent`).
    fn recycle(&mut self, spent: &mut Vec<BoxedRecord>) {
        let _ = spent;
    }
}

struct Lane<S> {
    source: S,
    pending: VecDeque<BoxedRecord>,
    scratch: Vec<BoxedRecord>,
    done: bool,
    /// The latest timestamp taken from this source: where its untimestamped records belong.
    last_ts: Option<DateTime<Utc>>,
}

impl<S: RecordSource> Lane<S> {
    /// Read until a record is pending or the source is done.
    fn fill(&mut self, shared: &mut S::Shared) -> Result<(), S::Error> {
        while self.pending.is_empty() && !self.done {
            let more = self.source.read(shared, &mut self.scratch)?;
            for rec in self.scratch.drain(..) {
                if let Some(t) = rec.timestamp {
                    self.last_ts = Some(t);
                }
                self.pending.push_back(rec);
            }
            self.done = !more;
        }
        Ok(())
    }

    /// The time the head record is ordered by.
    fn head_time(&self) -> Option<Option<DateTime<Utc>>> {
        let rec = self.pending.front()?;
        Some(rec.timestamp.or(self.last_ts))
    }
}

/// Records of several sources, oldest first. Ties go to the source listed first, so one
/// source's records keep their order when timestamps tie or are missing.
pub struct Merge<S> {
    lanes: Vec<Lane<S>>,
}

impl<S: RecordSource> Merge<S> {
    pub fn new(sources: Vec<S>) -> Self {
        let lanes = sources
            .into_iter()
            .map(|source| Lane {
                source,
                pending: VecDeque::new(),
                scratch: Vec::new(),
                done: false,
                last_ts: None,
            })
            .collect();
        Merge { lanes }
    }

    /// The next record in time order, `None` when every source is done.
    pub fn next_record(&mut self, shared: &mut S::Shared) -> Result<Option<BoxedRecord>, S::Error> {
        // One source (the usual diagnosis of one log): its records in its own order.
        if let [lane] = &mut self.lanes[..] {
            lane.fill(shared)?;
            return Ok(lane.pending.pop_front());
        }
        for lane in &mut self.lanes {
            lane.fill(shared)?;
        }
        let mut best: Option<(usize, Option<DateTime<Utc>>)> = None;
        for (i, lane) in self.lanes.iter().enumerate() {
            let Some(t) = lane.head_time() else { continue };
            if best.is_none_or(|(_, bt)| t < bt) {
                best = Some((i, t));
            }
        }
        Ok(best.and_then(|(i, _)| self.lanes[i].pending.pop_front()))
    }

    /// Records in time order appended to `out` until it holds `max` (or a little more: one read
    /// can yield several). `Ok(false)` once every source is done; what was appended still
    /// counts. One source's records are read straight into `out`, without passing through its
    /// lane: a full diagnosis of one log hands on every record of it.
    pub fn next_batch(
        &mut self,
        shared: &mut S::Shared,
        out: &mut Vec<BoxedRecord>,
        max: usize,
    ) -> Result<bool, S::Error> {
        if let [lane] = &mut self.lanes[..] {
            out.extend(lane.pending.drain(..));
            while out.len() < max && !lane.done {
                lane.done = !lane.source.read(shared, out)?;
            }
            return Ok(!lane.done);
        }
        while out.len() < max {
            match self.next_record(shared)? {
                Some(rec) => out.push(rec),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Records the caller is done with, offered to each source in turn for reuse; what none
    /// takes is left in `spent`.
    pub fn recycle(&mut self, spent: &mut Vec<BoxedRecord>) {
        for lane in &mut self.lanes {
            if spent.is_empty() {
                break;
            }
            lane.source.recycle(spent);
        }
    }

    /// The one source, when there is only one and nothing of it is pending here: read
    /// straight from it, it yields what the merge would (its records in its own order).
    pub fn only_source(&mut self) -> Option<&mut S> {
        match &mut self.lanes[..] {
            [lane] if lane.pending.is_empty() => Some(&mut lane.source),
            _ => None,
        }
    }

    /// The sources, in the order given (for their counts once the merge is over).
    pub fn into_sources(self) -> Vec<S> {
        self.lanes.into_iter().map(|l| l.source).collect()
    }
}

impl<S: RecordSource<Error = Infallible, Shared = ()>> Iterator for Merge<S> {
    type Item = LogRecord;

    fn next(&mut self) -> Option<LogRecord> {
        match self.next_record(&mut ()) {
            Ok(r) => r.map(|b| *b),
            Err(never) => match never {},
        }
    }
}

/// Lines already in memory, parsed one by one; records stamped outside `window` are left out.
pub struct ParsedLines<I> {
    lines: I,
    parser: LineParser,
    window: Window,
}

impl<I> ParsedLines<I> {
    pub fn new(ctx: ParseContext, lines: I, window: Window) -> Self {
        ParsedLines {
            lines,
            parser: LineParser::new(ctx),
            window,
        }
    }
}

impl<I, L> RecordSource for ParsedLines<I>
where
    I: Iterator<Item = L>,
    L: AsRef<[u8]>,
{
    type Error = Infallible;
    type Shared = ();

    fn read(&mut self, _: &mut (), out: &mut Vec<BoxedRecord>) -> Result<bool, Infallible> {
        let Some(line) = self.lines.next() else {
            return Ok(false);
        };
        if let Parsed::Record(r) = self.parser.parse(line.as_ref()) {
            if r.timestamp
                .is_none_or(|t| self.window.place(t) == Placement::Inside)
            {
                out.push(r);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(sources: &[(&str, &[&str])], window: Window) -> Vec<String> {
        let lanes: Vec<_> = sources
            .iter()
            .map(|(role, lines)| {
                ParsedLines::new(ParseContext::new(role, 2025), lines.iter(), window)
            })
            .collect();
        Merge::new(lanes)
            .map(|r| format!("{} {}", r.role, r.raw))
            .collect()
    }

    const A: &[&str] = &[
        "Nov  4 18:12:30 mx postfix/qmgr[1]: 4ABC00000: removed",
        "Nov  4 18:12:32 mx postfix/qmgr[1]: 4ABD00000: removed",
        "Nov  4 18:12:34 mx postfix/qmgr[1]: 4ABE00000: removed",
    ];
    const B: &[&str] = &[
        "Nov  4 18:12:31 dell postfix/qmgr[1]: 5ABC00000: removed",
        "Nov  4 18:12:32 dell postfix/qmgr[1]: 5ABD00000: removed",
        "Nov  4 18:12:33 dell postfix/qmgr[1]: 5ABE00000: removed",
    ];

    /// A source whose lines are out of time order.
    const LATE_FIRST: &[&str] = &[
        "Nov  4 18:12:35 mx postfix/qmgr[1]: 4ABF00000: removed",
        "Nov  4 18:12:30 mx postfix/qmgr[1]: 4ABC00000: removed",
    ];

    #[test]
    fn oldest_head_first_and_ties_to_the_first_source() {
        let got = merged(&[("ec2", A), ("dell", B)], Window::default());
        let order: Vec<&str> = got
            .iter()
            .map(|l| l.split_whitespace().nth(6).unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "4ABC00000:",
                "5ABC00000:",
                "4ABD00000:",
                "5ABD00000:",
                "5ABE00000:",
                "4ABE00000:"
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn window_leaves_records_out() {
        let since = DateTime::parse_from_rfc3339("2025-11-04T18:12:32Z")
            .unwrap()
            .with_timezone(&Utc);
        let got = merged(
            &[("ec2", A), ("dell", B)],
            Window {
                since: Some(since),
                until: None,
            },
        );
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].contains("4ABD00000"), "{got:#?}");
    }

    #[test]
    fn a_source_out_of_order_keeps_its_own_order() {
        let got = merged(&[("ec2", LATE_FIRST), ("dell", B)], Window::default());
        let pos = |q: &str| got.iter().position(|l| l.contains(q)).unwrap();
        assert!(pos("4ABF00000") < pos("4ABC00000"), "{got:#?}");
        assert!(pos("5ABE00000") < pos("4ABF00000"), "{got:#?}");
    }

    /// The records of `sources` as batches of at most `max` (plus what one read adds) make
    /// them, one line each.
    fn batched(sources: &[(&str, &[&str])], max: usize) -> Vec<String> {
        let lanes: Vec<_> = sources
            .iter()
            .map(|(role, lines)| {
                ParsedLines::new(
                    ParseContext::new(role, 2025),
                    lines.iter(),
                    Window::default(),
                )
            })
            .collect();
        let mut merge = Merge::new(lanes);
        let (mut got, mut batch) = (Vec::new(), Vec::new());
        loop {
            let more = merge.next_batch(&mut (), &mut batch, max).unwrap();
            assert!(
                batch.len() <= max || !more,
                "a batch of {} for {max}",
                batch.len()
            );
            assert!(
                !more || batch.len() >= max,
                "more records after a short batch"
            );
            got.extend(batch.drain(..).map(|r| format!("{} {}", r.role, r.raw)));
            if !more {
                return got;
            }
        }
    }

    #[test]
    fn batches_hold_the_merged_records_in_order() {
        let garbage: &[&str] = &["not a log line", "", "Nov  4 18:12:36 mx kernel: noise"];
        let one: Vec<&str> = A.iter().chain(garbage).chain(B).copied().collect();
        let cases: [&[(&str, &[&str])]; 4] = [
            &[("ec2", &one)],
            &[("ec2", A), ("dell", B)],
            &[("ec2", LATE_FIRST), ("dell", B), ("other", garbage)],
            &[("ec2", garbage)],
        ];
        for sources in cases {
            let want = merged(sources, Window::default());
            for max in [1, 2, 3, 64] {
                assert_eq!(batched(sources, max), want, "max {max}");
            }
        }
    }
}
