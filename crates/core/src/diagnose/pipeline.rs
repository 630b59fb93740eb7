//! How a diagnosis runs: on the caller's thread alone ([`one_thread`]), or as two stages on
//! their own threads so that a run uses both cores ([`run`]): the caller's thread reads, parses
//! and merges the sources; the other correlates the records, builds, counts and renders the
//! finished messages, and writes the report. Owns the hand-offs between them and how a
//! stage's failure stops the other. Does not parse, correlate or render anything itself
//! (`super::source`, `crate::fusion`, `super::report`).
//!
//! Parsing a line costs more than correlating it: with one log read whole, the reading stage
//! hands a whole block of lines instead of records whenever the correlating stage is about to
//! wait, and that stage parses it (`super::blocks`). How much each stage parses then follows
//! how fast each is; the 2 GB human-report run took 7-9 % less time (docs/BENCHMARKS.md).
//!
//! The stages' output is the same as one thread's: both feed the records in merge order
//! through the same [`Reporting`]. A read error ends the run after the records read before it
//! were correlated and what they finished was written, as a single thread would have.
//!
//! Two stages, not three: with the rendering on a third thread, three busy threads shared the
//! two cores, and the messages were freed by another thread than the one that made their text.
//! The report is written where it is rendered: the reading stage is the longer one, and the
//! writing (the kernel's copy of the report) was a few per cent of the run on it.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use crate::fusion::{Correlator, SWEEP_EVERY};
use crate::logs::{BoxedRecord, Focus, LogRecord};
use crate::runbook::Runbook;

use super::blocks::{Block, BlockParser, HandOff};
use super::merge::{Merge, RecordSource};
use super::report::Report;
use super::source::LogStream;
use super::{AnalyzeError, Options, SourceReport, Summary};

/// Records handed to the correlating stage at once.
const RECORD_BATCH: usize = 1024;
/// Records correlated between two looks for finished messages (so output streams): as often as
/// the correlator looks for done chains ([`SWEEP_EVERY`]), so a message is assembled and
/// rendered while what its chain is made of is still in the cache.
pub(super) const TAKE_FINISHED_EVERY: u64 = SWEEP_EVERY;
/// Hand-offs waiting between the stages at most: bounds the memory in flight.
const QUEUE: usize = 8;

/// What the correlating stage is handed.
enum ToCorrelate {
    Records(Vec<BoxedRecord>),
    /// Whole lines of the one log, to parse there (`super::blocks`).
    Block(Block),
    /// End of input: the sources' reports, for the report's end.
    End(Vec<SourceReport>),
}

/// Blocks of lines the reading stage took whole, and how many of them it handed over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Handed {
    blocks: u64,
    handed: u64,
}

/// What the correlating stage hands back to be reused where it was made.
enum Spent {
    Records(Vec<BoxedRecord>),
    Text(String),
}

/// The reading stage's end of the hand-over queue, which counts the hand-offs waiting in it.
struct Queue<'a> {
    tx: SyncSender<ToCorrelate>,
    waiting: &'a AtomicUsize,
}

impl Queue<'_> {
    /// Hand `m` over (waiting while the queue is full); `false` when the other stage stopped.
    fn send(&self, m: ToCorrelate) -> bool {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.tx.send(m).is_ok()
    }

    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Records correlated into the report: what both ways of running do with each record and at
/// the end of input, so that they write the same report.
struct Reporting<'a> {
    corr: Correlator,
    report: Report<'a>,
    pushed: u64,
}

impl<'a> Reporting<'a> {
    fn begin(
        corr: Correlator,
        out: &'a mut dyn Write,
        opts: &'a Options,
        runbook: &'a Runbook,
    ) -> io::Result<Self> {
        Ok(Reporting {
            corr,
            report: Report::begin(out, opts, runbook)?,
            pushed: 0,
        })
    }

    /// Correlate a record; every [`TAKE_FINISHED_EVERY`] records, report what finished.
    fn observe(&mut self, rec: &LogRecord) -> io::Result<()> {
        self.corr.observe(rec);
        self.pushed += 1;
        if self.pushed.is_multiple_of(TAKE_FINISHED_EVERY) {
            self.report_finished()?;
        }
        Ok(())
    }

    fn report_finished(&mut self) -> io::Result<()> {
        while let Some(mut m) = self.corr.next_finished() {
            self.report.message(&mut m)?;
            self.corr.recycle(m);
        }
        Ok(())
    }

    /// The end of input: every chain still open, then the report's end.
    fn end(mut self, sources: Vec<SourceReport>) -> io::Result<Summary> {
        // Drained in batches, each reported before the next is emitted: the chains still open
        // at the end are never all held as finished messages too.
        loop {
            self.report_finished()?;
            if self.corr.flush_open(TAKE_FINISHED_EVERY as usize) == 0 {
                break;
            }
        }
        let outcome = self.corr.finish_all();
        for mut m in outcome.messages {
            self.report.message(&mut m)?;
        }
        self.report.correlator_counts(&outcome.stats);
        self.report
            .end(outcome.host_findings, outcome.skew, sources)
    }
}

/// Run the stages over `merge` (reading with `focus`) into `corr`, writing the report to `out`
/// (from the correlating stage's thread).
pub(super) fn run(
    merge: Merge<LogStream>,
    focus: Option<Focus>,
    corr: Correlator,
    opts: &Options,
    runbook: &Runbook,
    out: &mut (dyn Write + Send),
) -> Result<Summary, AnalyzeError> {
    run_handing(merge, focus, corr, (opts, runbook), out, HandOff::WhenIdle).map(|(s, _)| s)
}

/// [`run`], handing blocks of one log's lines to the correlating stage as `hand_off` says.
fn run_handing(
    mut merge: Merge<LogStream>,
    mut focus: Option<Focus>,
    corr: Correlator,
    (opts, runbook): (&Options, &Runbook),
    out: &mut (dyn Write + Send),
    hand_off: HandOff,
) -> Result<(Summary, Handed), AnalyzeError> {
    let (to_corr, corr_rx) = mpsc::sync_channel::<ToCorrelate>(QUEUE);
    // What the correlating stage is done with goes back to be dropped (or its room reused)
    // where it was made: freeing on the allocating thread keeps its allocator's caches warm.
    // Unbounded, so the correlating stage never waits on this thread while this thread may
    // wait on it (no cycle of waits); it holds at most the hand-offs in flight.
    let (spent_tx, spent) = mpsc::channel::<Spent>();
    let waiting = AtomicUsize::new(0);
    // Blocks of lines are handed over only from one log read whole (`super::blocks`).
    let blocks = match (&focus, merge.only_source()) {
        (None, Some(src)) if src.shares_blocks() => Some(src.block_parser()),
        _ => None,
    };
    let sharing = blocks.is_some();
    thread::scope(|s| {
        let stage = Correlating {
            blocks,
            waiting: &waiting,
            spent: spent_tx,
        };
        let correlating = s.spawn(move || stage.run(corr, opts, runbook, corr_rx, out));
        let queue = Queue {
            tx: to_corr,
            waiting: &waiting,
        };
        let read = match merge.only_source().filter(|_| sharing) {
            Some(src) => feed_blocks(src, &queue, &spent, hand_off),
            None => feed(&mut merge, &mut focus, &queue, &spent).map(|()| Handed::default()),
        };
        let read = read.inspect(|_| {
            let sources = merge.into_sources().iter().map(LogStream::report).collect();
            // A failed send means the other stage stopped early: its join tells why.
            let _ = queue.send(ToCorrelate::End(sources));
        });
        // Without an end marker the other stage stops after what it was sent (a read error).
        drop(queue);
        let reported = correlating
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let handed = read?;
        // Without the end of input (which only a read error prevents) there is no summary.
        let summary = reported.map_err(AnalyzeError::Write)?.ok_or_else(|| {
            AnalyzeError::Write(io::Error::other("the report ended before its input"))
        })?;
        Ok((summary, handed))
    })
}

/// What the correlating stage gave back, kept for reuse: a batch's room, block texts.
#[derive(Default)]
struct Returned {
    batch: Vec<BoxedRecord>,
    texts: Vec<String>,
}

impl Returned {
    /// Take what came back: records offered to `recycle` (for reuse by the parser), one
    /// emptied batch and a few texts kept, the rest dropped.
    fn collect(&mut self, spent: &Receiver<Spent>, recycle: &mut dyn FnMut(&mut Vec<BoxedRecord>)) {
        for s in spent.try_iter() {
            match s {
                Spent::Records(mut b) => {
                    recycle(&mut b);
                    b.clear();
                    if self.batch.capacity() == 0 {
                        self.batch = b;
                    }
                }
                Spent::Text(t) if self.texts.len() < QUEUE => self.texts.push(t),
                Spent::Text(_) => {}
            }
        }
    }

    /// An empty batch: one given back, else a new one.
    fn batch(&mut self) -> Vec<BoxedRecord> {
        let mut batch = std::mem::take(&mut self.batch);
        if batch.capacity() == 0 {
            batch.reserve_exact(RECORD_BATCH);
        }
        batch
    }

    fn text(&mut self) -> String {
        self.texts.pop().unwrap_or_default()
    }

    /// Hand `batch` over and put an empty one in its place; `false` when the other stage
    /// stopped (a write error, or a panic: its join reports it).
    fn send(
        &mut self,
        batch: &mut Vec<BoxedRecord>,
        queue: &Queue<'_>,
        spent: &Receiver<Spent>,
        src: &mut LogStream,
    ) -> bool {
        if !queue.send(ToCorrelate::Records(std::mem::take(batch))) {
            return false;
        }
        self.collect(spent, &mut |b| src.recycle(b));
        *batch = self.batch();
        true
    }
}

/// The same report on the caller's thread alone: for runs that correlate few records (a
/// message-id prefilter skips most lines), where another thread would only add memory. What
/// the stages reproduce byte for byte.
pub(super) fn one_thread(
    mut merge: Merge<LogStream>,
    mut focus: Option<Focus>,
    corr: Correlator,
    opts: &Options,
    runbook: &Runbook,
    out: &mut dyn Write,
) -> Result<Summary, AnalyzeError> {
    let mut reporting = Reporting::begin(corr, out, opts, runbook).map_err(AnalyzeError::Write)?;
    while let Some(rec) = merge.next_record(&mut focus)? {
        reporting.observe(&rec).map_err(AnalyzeError::Write)?;
    }
    let sources = merge.into_sources().iter().map(LogStream::report).collect();
    reporting.end(sources).map_err(AnalyzeError::Write)
}

/// Read, parse and merge the sources, handing the records on in batches.
fn feed(
    merge: &mut Merge<LogStream>,
    focus: &mut Option<Focus>,
    queue: &Queue<'_>,
    spent: &Receiver<Spent>,
) -> Result<(), AnalyzeError> {
    let mut returned = Returned::default();
    let mut batch = returned.batch();
    loop {
        let more = match merge.next_batch(focus, &mut batch, RECORD_BATCH) {
            Ok(more) => more,
            Err(e) => {
                // What was read before the error is still correlated and reported.
                queue.send(ToCorrelate::Records(batch));
                return Err(e);
            }
        };
        if !more {
            break;
        }
        let full = std::mem::take(&mut batch);
        if !queue.send(ToCorrelate::Records(full)) {
            // The other stage stopped (a write error, or a panic): its join reports it.
            return Ok(());
        }
        returned.collect(spent, &mut |b| merge.recycle(b));
        batch = returned.batch();
    }
    if !batch.is_empty() {
        queue.send(ToCorrelate::Records(batch));
    }
    Ok(())
}

/// The reading stage over one log read whole: a block of whole lines at a time, each parsed
/// here or handed over (as `hand_off` says, when its lines allow it), and the lines no block
/// holds (after invalid UTF-8, across the reader's buffer) one at a time.
fn feed_blocks(
    src: &mut LogStream,
    queue: &Queue<'_>,
    spent: &Receiver<Spent>,
    hand_off: HandOff,
) -> Result<Handed, AnalyzeError> {
    let mut returned = Returned::default();
    let mut batch = returned.batch();
    let mut text = String::new();
    let mut n = Handed::default();
    loop {
        let taken = match src.take_block(&mut text) {
            Ok(taken) => taken,
            Err(e) => {
                queue.send(ToCorrelate::Records(batch));
                return Err(e);
            }
        };
        if taken {
            n.blocks += 1;
            let at = hand_off
                .now(queue.waiting(), n.blocks)
                .then(|| src.hand_over_at(&text))
                .flatten();
            if let Some(at) = at {
                // The records read before the block go first: the order stays the log's.
                if !batch.is_empty() && !returned.send(&mut batch, queue, spent, src) {
                    return Ok(n);
                }
                returned.collect(spent, &mut |b| src.recycle(b));
                let text = std::mem::replace(&mut text, returned.text());
                if !queue.send(ToCorrelate::Block(Block { text, at })) {
                    return Ok(n);
                }
                n.handed += 1;
                continue;
            }
            src.parse_block(&text, &mut batch);
        } else {
            match src.read_line(&mut batch) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    queue.send(ToCorrelate::Records(batch));
                    return Err(e);
                }
            }
        }
        if batch.len() >= RECORD_BATCH && !returned.send(&mut batch, queue, spent, src) {
            return Ok(n);
        }
    }
    if !batch.is_empty() {
        queue.send(ToCorrelate::Records(batch));
    }
    Ok(n)
}

/// The correlating stage: what it needs besides the correlator and the report.
struct Correlating<'a> {
    /// The parser of the blocks handed over, when some may be.
    blocks: Option<BlockParser>,
    waiting: &'a AtomicUsize,
    spent: Sender<Spent>,
}

impl Correlating<'_> {
    /// The records (and blocks) into the report, written to `out`. `None` when the input
    /// ended before its end (a read error); what was reported until then is flushed.
    fn run(
        mut self,
        corr: Correlator,
        opts: &Options,
        runbook: &Runbook,
        records: Receiver<ToCorrelate>,
        out: &mut (dyn Write + Send),
    ) -> io::Result<Option<Summary>> {
        let mut reporting = Reporting::begin(corr, &mut *out, opts, runbook)?;
        let mut sources = loop {
            let Ok(m) = records.recv() else {
                drop(reporting);
                out.flush()?;
                return Ok(None);
            };
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            match m {
                ToCorrelate::Records(batch) => {
                    for rec in &batch {
                        reporting.observe(rec)?;
                    }
                    // Gone only when the reading thread is: then the batch is dropped here.
                    let _ = self.spent.send(Spent::Records(batch));
                }
                ToCorrelate::Block(block) => {
                    let Some(parser) = self.blocks.as_mut() else {
                        return Err(io::Error::other("a block of lines came without its parser"));
                    };
                    parser.parse(&block, |rec| reporting.observe(rec))?;
                    let _ = self.spent.send(Spent::Text(block.text));
                }
                ToCorrelate::End(sources) => break sources,
            }
        };
        if let (Some(parser), Some(first)) = (&self.blocks, sources.first_mut()) {
            parser.add_counts_to(first);
        }
        let summary = reporting.end(sources)?;
        out.flush()?;
        Ok(Some(summary))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor, Read};

    use super::super::{stages, Format, Input};
    use super::*;

    /// `n` messages over an hour and more: most delivered, every seventh deferred for good
    /// (open until the end), every fifth followed by a NOQUEUE reject; so chains finish in
    /// every record batch and across batches.
    fn log(n: u32, host: &str) -> Vec<u8> {
        let mut s = String::new();
        for i in 0..n {
            let q = format!("{:010X}", 0x200_0000 + i);
            let t = |d: u32| {
                let t = i * 2 + d;
                format!(
                    "Nov  7 {:02}:{:02}:{:02}",
                    10 + t / 3600,
                    t / 60 % 60,
                    t % 60
                )
            };
            let (a, b) = (t(0), t(1));
            s.push_str(&format!(
                "{a} {host} postfix/smtpd[1]: {q}: client=a.example[192.0.2.5]\n\
                 {a} {host} postfix/cleanup[2]: {q}: message-id=<m{i}@{host}>\n\
                 {a} {host} postfix/qmgr[3]: {q}: from=<a{i}@x.test>, size=100, nrcpt=1 (queue active)\n"
            ));
            if i % 7 == 3 {
                s.push_str(&format!(
                    "{b} {host} postfix/smtp[4]: {q}: to=<bob@corp.test>, relay=none, delay=1, \
                     delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to mx.corp.test\
                     [192.0.2.1]:25: Connection timed out)\n"
                ));
            } else {
                s.push_str(&format!(
                    "{b} {host} postfix/smtp[4]: {q}: to=<bob@corp.test>, relay=mx.corp.test\
                     [192.0.2.1]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent \
                     (250 2.0.0 Ok)\n{b} {host} postfix/qmgr[3]: {q}: removed\n"
                ));
            }
            if i % 5 == 0 {
                s.push_str(&format!(
                    "{b} {host} postfix/smtpd[1]: NOQUEUE: reject: RCPT from b.example\
                     [192.0.2.9]: 554 5.7.1 <c{i}@other.test>: Relay access denied; \
                     from=<d@x.test> to=<c{i}@other.test> proto=ESMTP helo=<b.example>\n"
                ));
            }
        }
        s.into_bytes()
    }

    fn opts(format: Format) -> Options {
        Options::whole_2025(format)
    }

    fn input(name: &str, reader: Box<dyn std::io::BufRead + Send>) -> Input {
        Input {
            name: name.into(),
            display: format!("{name}.log"),
            reader,
            reference: None,
            skipped_bytes: 0,
            hosts_from_lines: false,
        }
    }

    /// The report as [`one_thread`] writes it (`None`), or the error it stops with.
    fn serial(inputs: Vec<Input>, opts: &Options, out: &mut Vec<u8>) -> Option<AnalyzeError> {
        let (merge, focus, corr) = stages(inputs, opts);
        one_thread(merge, focus, corr, opts, Runbook::builtin(), out).err()
    }

    /// The report as the stages write it.
    fn staged(
        inputs: Vec<Input>,
        opts: &Options,
        out: &mut (dyn Write + Send),
    ) -> Result<Summary, AnalyzeError> {
        let (merge, focus, corr) = stages(inputs, opts);
        run(merge, focus, corr, opts, Runbook::builtin(), out)
    }

    fn two_sources() -> Vec<Input> {
        vec![
            input("ec2", Box::new(Cursor::new(log(3000, "mx")))),
            input("dell", Box::new(Cursor::new(log(1000, "dell")))),
        ]
    }

    #[test]
    fn the_stages_write_what_one_thread_writes() {
        for format in [Format::Json, Format::Human] {
            let opts = opts(format);
            let mut want = Vec::new();
            assert!(serial(two_sources(), &opts, &mut want).is_none());
            let mut got = Vec::new();
            let summary = staged(two_sources(), &opts, &mut got).unwrap();
            assert_eq!(summary.messages, 4000 + 800, "{format:?}");
            assert!(summary.failed > 500, "{}", summary.failed);
            assert!(
                got == want,
                "{format:?}: {} bytes vs {} one thread writes",
                got.len(),
                want.len()
            );
        }
    }

    /// `log(n)` stamped across a new year (its first half on Dec 31, the rest on Jan 1, no
    /// year in the stamps), with lines no block holds as text (invalid UTF-8: the rest of their
    /// 64 KiB is read a line at a time) and lines that wrap another (a journal entry, whose
    /// stamp is inside it), each every 1,500 lines.
    fn new_year_log(n: u32) -> Vec<u8> {
        let text = String::from_utf8(log(n, "mx")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let half = lines.len() / 2;
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let day = if i < half { "Dec 31" } else { "Jan  1" };
            out.extend_from_slice(line.replacen("Nov  7", day, 1).as_bytes());
            out.push(b'\n');
            if i % 1500 == 500 {
                out.extend_from_slice(day.as_bytes());
                out.extend_from_slice(
                    b" 10:00:01 mx postfix/smtpd[1]: connect from \xffbad[192.0.2.7]\n",
                );
            }
            if i % 1500 == 1000 {
                out.extend_from_slice(
                    br#"{"__REALTIME_TIMESTAMP":"1767175200000000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/smtpd","SYSLOG_PID":"1","SYSLOG_TIMESTAMP":"Dec 31 10:00:00 ","MESSAGE":"disconnect from a.example[192.0.2.5]"}"#,
                );
                out.push(b'\n');
            }
        }
        out
    }

    /// The report [`one_thread`] writes of one log.
    fn serial_one_log(data: &[u8], opts: &Options) -> Vec<u8> {
        let mut want = Vec::new();
        let one = vec![input("ec2", Box::new(Cursor::new(data.to_vec())))];
        assert!(serial(one, opts, &mut want).is_none());
        want
    }

    /// The report the stages write of one log read through a buffer of `buffer` bytes (`None`:
    /// the whole log at once), handing blocks over as `hand_off` says.
    fn staged_one_log(
        data: &[u8],
        buffer: Option<usize>,
        opts: &Options,
        hand_off: HandOff,
    ) -> (Vec<u8>, Handed) {
        let reader: Box<dyn std::io::BufRead + Send> = match buffer {
            Some(n) => Box::new(BufReader::with_capacity(n, Cursor::new(data.to_vec()))),
            None => Box::new(Cursor::new(data.to_vec())),
        };
        let (merge, focus, corr) = stages(vec![input("ec2", reader)], opts);
        let mut out = Vec::new();
        let (_, handed) = run_handing(
            merge,
            focus,
            corr,
            (opts, Runbook::builtin()),
            &mut out,
            hand_off,
        )
        .unwrap();
        (out, handed)
    }

    #[test]
    fn blocks_parsed_on_either_stage_make_what_one_thread_writes() {
        let data = new_year_log(1500);
        let since = chrono::DateTime::parse_from_rfc3339("2025-12-31T10:30:00Z").unwrap();
        let cases = [
            (None, HandOff::Every(1), None),
            (None, HandOff::Every(2), None),
            (Some(4096), HandOff::Every(1), None),
            (None, HandOff::Every(3), Some(since.to_utc())),
        ];
        for (buffer, hand_off, since) in cases {
            for format in [Format::Json, Format::Human] {
                let mut opts = opts(format);
                opts.since = since;
                let want = serial_one_log(&data, &opts);
                let (got, handed) = staged_one_log(&data, buffer, &opts, hand_off);
                let case = format!("{format:?} {buffer:?} {hand_off:?} {since:?}: {handed:?}");
                // Both stages parsed blocks: some were handed over, and some (the first, the
                // one where the year turns, those with wrapped lines) were not.
                assert!(handed.handed >= 2, "{case}");
                assert!(handed.handed < handed.blocks, "{case}");
                assert!(got == want, "{case}: {} bytes vs {}", got.len(), want.len());
            }
        }
    }

    /// Messages of three lines in Berlin's time (no zone in the stamps): `q` on 25 October
    /// 2025; on the 26th one at 02:59 before the clocks went back (CEST), then `q` from 02:00
    /// after (CET, the same wall times again); `q` on the 27th. Only the parser that reads the
    /// one message before knows that the lines after it are in the second pass.
    fn fold_log(q: u32) -> Vec<u8> {
        let mut s = String::new();
        let parts = [
            ("Oct 25", 10 * 3600, q),
            ("Oct 26", 2 * 3600 + 59 * 60, 1),
            ("Oct 26", 2 * 3600, q),
            ("Oct 27", 10 * 3600, q),
        ];
        let mut i = 0;
        for (day, from, n) in parts {
            for k in 0..n {
                let t = from + k * 3600 / n;
                let stamp = format!("{day} {:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
                let id = format!("{:010X}", 0x300_0000 + i);
                i += 1;
                s.push_str(&format!(
                    "{stamp} mx postfix/cleanup[2]: {id}: message-id=<f{i}@mx>\n\
                     {stamp} mx postfix/smtp[4]: {id}: to=<bob@corp.test>, relay=mx.corp.test\
                     [192.0.2.1]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent \
                     (250 2.0.0 Ok)\n{stamp} mx postfix/qmgr[3]: {id}: removed\n"
                ));
            }
        }
        s.into_bytes()
    }

    /// A block stamped on the day a named zone sets its clock back is parsed where the lines
    /// before it were: both passes of the fold read at their own offsets, as one thread
    /// reads them, with blocks of the other days parsed on either stage.
    #[test]
    fn blocks_around_a_named_zones_fold_make_what_one_thread_writes() {
        let data = fold_log(1200);
        for hand_off in [HandOff::Every(1), HandOff::Every(2)] {
            let mut opts = opts(Format::Json);
            opts.tz = crate::logs::LogZone::parse("Europe/Berlin").unwrap();
            let want = serial_one_log(&data, &opts);
            let text = String::from_utf8_lossy(&want);
            // 02:59 on the 26th, first at +02:00, then at +01:00.
            assert!(text.contains("\"2025-10-26T00:59:00Z\""), "{hand_off:?}");
            assert!(text.contains("\"2025-10-26T01:59:57Z\""), "{hand_off:?}");
            let (got, handed) = staged_one_log(&data, None, &opts, hand_off);
            assert!(handed.handed >= 2, "{hand_off:?}: {handed:?}");
            assert!(
                got == want,
                "{hand_off:?}: {} bytes vs {}",
                got.len(),
                want.len()
            );
        }
    }

    /// A log over four months around a new year (no year in its stamps) with a straggler of
    /// the month before now and then, as a log whose writers' clocks or queues lag shows.
    fn months_log(messages: u32) -> Vec<u8> {
        const MONTHS: [&str; 4] = ["Nov", "Dec", "Jan", "Feb"];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut s = String::new();
        for i in 0..messages {
            let now = (i * 4 / messages) as usize;
            let m = if now > 0 && next() % 1500 == 0 {
                now - 1
            } else {
                now
            };
            let (mon, day, q) = (MONTHS[m], 1 + i % 28, format!("{:010X}", 0x300_0000 + i));
            let t = format!("{mon} {day:2} 10:{:02}:{:02}", i / 60 % 60, i % 60);
            s.push_str(&format!(
                "{t} mx postfix/qmgr[3]: {q}: from=<a{i}@x.test>, size=100, nrcpt=1 (queue active)\n\
                 {t} mx postfix/smtp[4]: {q}: to=<b@y.test>, relay=y.test[192.0.2.1]:25, delay=1, \
                 delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n\
                 {t} mx postfix/qmgr[3]: {q}: removed\n"
            ));
        }
        s.into_bytes()
    }

    #[test]
    fn blocks_keep_the_years_of_a_log_whose_months_step_back() {
        let data = months_log(6000);
        let opts = opts(Format::Json);
        let want = serial_one_log(&data, &opts);
        // The years are in the report: a block read at the wrong year would change it.
        let text = String::from_utf8_lossy(&want);
        assert!(text.contains("2025-11-") && text.contains("2026-02-"));
        for hand_off in [HandOff::Every(1), HandOff::Every(2)] {
            let (got, handed) = staged_one_log(&data, None, &opts, hand_off);
            assert!(handed.handed >= 2, "{hand_off:?}: {handed:?}");
            assert!(handed.handed < handed.blocks, "{hand_off:?}: {handed:?}");
            assert!(
                got == want,
                "{hand_off:?}: {} bytes vs {}",
                got.len(),
                want.len()
            );
        }
    }

    /// `log` as `grep` prints it from several rotated files, some with `-n` and as context
    /// lines (`grep -H -n -C1 ID /var/log/mail.log*`).
    fn as_grep_output(log: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in log.split_inclusive(|&b| b == b'\n').enumerate() {
            let prefix = match i % 4 {
                0 => "/var/log/mail.log:".to_string(),
                1 => format!("/var/log/mail.log.1:{}:", i + 1),
                2 => format!("mail.log-20260101-{}-", i + 1),
                _ => format!("{}-", i + 1),
            };
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(line);
        }
        out
    }

    #[test]
    fn grep_output_of_a_log_reads_as_the_log() {
        let data = months_log(3000);
        let grepped = as_grep_output(&data);
        for format in [Format::Json, Format::Human] {
            let opts = opts(format);
            let want = serial_one_log(&data, &opts);
            assert!(
                serial_one_log(&grepped, &opts) == want,
                "{format:?}, one thread"
            );
            // Blocks whose months hide behind a prefix stay on the reading stage.
            for hand_off in [HandOff::Every(1), HandOff::WhenIdle] {
                let (got, handed) = staged_one_log(&grepped, None, &opts, hand_off);
                assert!(got == want, "{format:?} {hand_off:?}: {handed:?}");
            }
        }
    }

    #[test]
    fn the_stages_balancing_by_themselves_write_what_one_thread_writes() {
        let data = new_year_log(1500);
        let opts = opts(Format::Json);
        let want = serial_one_log(&data, &opts);
        let (got, handed) = staged_one_log(&data, None, &opts, HandOff::WhenIdle);
        assert!(handed.blocks > 10, "{handed:?}");
        assert!(got == want, "{} bytes vs {}", got.len(), want.len());
    }

    /// Yields its bytes in small reads, then fails.
    struct FailsAfter {
        data: Cursor<Vec<u8>>,
    }

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(4096);
            match self.data.read(&mut buf[..n])? {
                0 => Err(io::Error::other("disk gone")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_read_error_reports_what_one_thread_reports_before_it() {
        let failing = || {
            let data = Cursor::new(log(3000, "mx")[..600_000].to_vec());
            vec![input("ec2", Box::new(BufReader::new(FailsAfter { data })))]
        };
        let opts = opts(Format::Json);
        let mut want = Vec::new();
        assert!(matches!(
            serial(failing(), &opts, &mut want),
            Some(AnalyzeError::Read { .. })
        ));
        let mut got = Vec::new();
        let err = staged(failing(), &opts, &mut got).unwrap_err();
        assert!(
            matches!(&err, AnalyzeError::Read { source, .. } if source == "ec2.log"),
            "{err}"
        );
        assert!(want.len() > 10_000, "{}", want.len());
        assert!(got == want, "{} bytes vs {}", got.len(), want.len());
    }

    /// Takes `room` bytes, then fails as a closed pipe does.
    struct ClosesAfter {
        room: usize,
    }

    impl Write for ClosesAfter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room < b.len() {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.room -= b.len();
            Ok(b.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_stops_every_stage_and_is_returned() {
        // Two sources (records only), and one log read whole (blocks handed over too).
        let one_log = || vec![input("ec2", Box::new(Cursor::new(new_year_log(1500))))];
        for inputs in [two_sources as fn() -> Vec<Input>, one_log] {
            for room in [0, 100_000] {
                let mut out = ClosesAfter { room };
                let err = staged(inputs(), &opts(Format::Json), &mut out).unwrap_err();
                assert!(
                    matches!(&err, AnalyzeError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe),
                    "{err}"
                );
            }
        }
    }
}
