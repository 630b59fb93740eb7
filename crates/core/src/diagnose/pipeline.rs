//! How a diagnosis runs: on the caller's thread alone ([`one_thread`]), or as two stages on
//! their own threads so that a run uses both cores ([`run`]): the caller's thread reads, parses
//! and merges the sources; the other correlates the records, builds, counts and renders the
//! finished messages, and writes the report. Owns the hand-offs between them and how a
//! stage's failure stops the other. Does not parse, correlate or render anything itself
//! (`super::source`, `crate::fusion`, `super::report`).
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
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use crate::fusion::{Correlator, SWEEP_EVERY};
use crate::logs::{BoxedRecord, Focus, LogRecord};
use crate::runbook::Runbook;

use super::merge::Merge;
use super::report::Report;
use super::source::LogStream;
use super::{AnalyzeError, Options, SourceReport, Summary};

/// Records handed to the correlating stage at once.
const RECORD_BATCH: usize = 1024;
/// Records correlated between two looks for finished messages (so output streams): as often as
/// the correlator looks for done chains ([`SWEEP_EVERY`]), so a message is assembled and
/// rendered while what its chain is made of is still in the cache.
pub(super) const TAKE_FINISHED_EVERY: u64 = SWEEP_EVERY;
/// Batches waiting between the stages at most: bounds the memory in flight.
const QUEUE: usize = 8;

/// What the correlating stage is handed.
enum ToCorrelate {
    Records(Vec<BoxedRecord>),
    /// End of input: the sources' reports, for the report's end.
    End(Vec<SourceReport>),
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
        self.report
            .lines_dropped_over_cap(outcome.stats.lines_dropped_over_cap);
        self.report
            .end(outcome.host_findings, outcome.skew, sources)
    }
}

/// Run the stages over `merge` (reading with `focus`) into `corr`, writing the report to `out`
/// (from the correlating stage's thread).
pub(super) fn run(
    mut merge: Merge<LogStream>,
    mut focus: Option<Focus>,
    corr: Correlator,
    opts: &Options,
    runbook: &Runbook,
    out: &mut (dyn Write + Send),
) -> Result<Summary, AnalyzeError> {
    let (to_corr, corr_rx) = mpsc::sync_channel::<ToCorrelate>(QUEUE);
    // Record batches the correlating stage is done with go back to be dropped (and their room
    // reused) where they were made: freeing on the allocating thread keeps its allocator's
    // caches warm. Unbounded, so the correlating stage never waits on this thread while this
    // thread may wait on it (no cycle of waits); it holds at most the batches in flight.
    let (spent_tx, spent) = mpsc::channel::<Vec<BoxedRecord>>();
    thread::scope(|s| {
        let correlating = s.spawn(move || correlate(corr, opts, runbook, corr_rx, spent_tx, out));
        let read = feed(&mut merge, &mut focus, &to_corr, &spent);
        let read = read.map(|()| {
            let sources = merge.into_sources().iter().map(LogStream::report).collect();
            // A failed send means the other stage stopped early: its join tells why.
            let _ = to_corr.send(ToCorrelate::End(sources));
        });
        // Without an end marker the other stage stops after what it was sent (a read error).
        drop(to_corr);
        let reported = correlating
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        read?;
        // Without the end of input (which only a read error prevents) there is no summary.
        reported.map_err(AnalyzeError::Write)?.ok_or_else(|| {
            AnalyzeError::Write(io::Error::other("the report ended before its input"))
        })
    })
}

/// An empty batch: a spent one emptied (its records offered to `merge` for reuse, the other
/// batches dropped), else a new one.
fn empty_batch(
    spent: &Receiver<Vec<BoxedRecord>>,
    merge: &mut Merge<LogStream>,
) -> Vec<BoxedRecord> {
    let mut batch = Vec::new();
    for mut b in spent.try_iter() {
        merge.recycle(&mut b);
        b.clear();
        if batch.capacity() == 0 {
            batch = b;
        }
    }
    if batch.capacity() == 0 {
        batch.reserve_exact(RECORD_BATCH);
    }
    batch
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
    to_corr: &SyncSender<ToCorrelate>,
    spent: &Receiver<Vec<BoxedRecord>>,
) -> Result<(), AnalyzeError> {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        let more = match merge.next_batch(focus, &mut batch, RECORD_BATCH) {
            Ok(more) => more,
            Err(e) => {
                // What was read before the error is still correlated and reported.
                let _ = to_corr.send(ToCorrelate::Records(batch));
                return Err(e);
            }
        };
        if !more {
            break;
        }
        let full = std::mem::take(&mut batch);
        if to_corr.send(ToCorrelate::Records(full)).is_err() {
            // The other stage stopped (a write error, or a panic): its join reports it.
            return Ok(());
        }
        batch = empty_batch(spent, merge);
    }
    if !batch.is_empty() {
        let _ = to_corr.send(ToCorrelate::Records(batch));
    }
    Ok(())
}

/// The correlating stage: the records into the report, written to `out`. `None` when the
/// input ended before its end (a read error); what was reported until then is flushed.
fn correlate(
    corr: Correlator,
    opts: &Options,
    runbook: &Runbook,
    records: Receiver<ToCorrelate>,
    spent: Sender<Vec<BoxedRecord>>,
    out: &mut (dyn Write + Send),
) -> io::Result<Option<Summary>> {
    let mut reporting = Reporting::begin(corr, &mut *out, opts, runbook)?;
    let sources = loop {
        match records.recv() {
            Ok(ToCorrelate::Records(batch)) => {
                for rec in &batch {
                    reporting.observe(rec)?;
                }
                // Gone only when the reading thread is: then the batch is dropped here.
                let _ = spent.send(batch);
            }
            Ok(ToCorrelate::End(sources)) => break sources,
            Err(_) => {
                drop(reporting);
                out.flush()?;
                return Ok(None);
            }
        }
    };
    let summary = reporting.end(sources)?;
    out.flush()?;
    Ok(Some(summary))
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
        for room in [0, 100_000] {
            let mut out = ClosesAfter { room };
            let err = staged(two_sources(), &opts(Format::Json), &mut out).unwrap_err();
            assert!(
                matches!(&err, AnalyzeError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe),
                "{err}"
            );
        }
    }
}
