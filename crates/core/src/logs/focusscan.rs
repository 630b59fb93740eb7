//! The `--message-id` scan over read chunks: each chunk is searched for the focus's byte
//! strings (the Message-IDs, learned `QID: `s and sessions, the always-kept markers; one
//! aho-corasick searcher, leftmost-first so that its SIMD prefilter runs) before any per-line
//! work, so the lines in between are only counted. The chunks come from a read-ahead thread
//! (`readahead`), are cache-sized and recycled; a line cut by a chunk's end is stitched once
//! into a line of its own. A remembered `client=`/`uid=`/`reject:` line of a queue id that
//! turns out to matter is found by looking back over the last chunks (a bounded window)
//! instead of being copied aside on every line. Owns the chunks, the stitching and the
//! look-back bookkeeping; the decisions are `focus`'s and the parsing `LineParser`'s, so the
//! result (records and counts) is the line-at-a-time prefilter's.
//!
//! A line without a hit is only counted as filtered when its prefix reads as a Postfix or
//! Dovecot line (every other line goes through the full decision: the parser counts it as
//! unknown, as before). A run of lines with the same `Mmm` stamp and `host postfix/` head is
//! recognized from a few byte comparisons.

use std::collections::VecDeque;
use std::io::{self, Read};

use aho_corasick::{AhoCorasick, MatchKind};

use super::focus::{Decision, Focus};
use super::prefix::{month_number, program_name, quick_program_msg};
use super::readahead::{Chunk, ReadAhead};
use super::scan::{self, split_once};
use super::{strip_eol, LineParser, LogRecord, Parsed};

/// Bytes read at a time: small enough that a chunk is still in the CPU cache when it is
/// searched (the kernel copies into a recycled buffer, not into fresh memory).
const CHUNK: usize = 64 << 10;
/// Chunks kept behind the one being scanned for looking back (remembered lines of a queue id):
/// 2 MiB.
const LOOKBACK_CHUNKS: usize = 32;
/// Chunks read ahead of the scan.
const AHEAD: usize = 3;
/// Queue ids whose look-back state is kept.
const MAX_TRACKED: usize = 4096;
/// Lines at the start of a stream classified one by one (so that a file that is not a log
/// shows its unknown lines); after them, lines without a hit are only counted.
const SNIFF_LINES: u64 = 1000;

/// Look-back state of one queue id in this stream.
#[derive(Debug)]
struct Tracked {
    qid: Vec<u8>,
    /// Stream offset from which the focus knew the queue id (its lines were parsed in full
    /// from there on, so they were never remembered).
    learned_at: u64,
    /// Stream offset up to which its remembered lines were replayed.
    replayed_to: u64,
}

/// Whole lines of the stream: the complete lines of one read chunk, or one line stitched from
/// the ends of two or more.
#[derive(Debug)]
struct Segment {
    /// Stream offset of `buf[start]`.
    offset: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `buf` is a read chunk (goes back to the read-ahead when it leaves the look-back).
    chunk: bool,
}

impl Segment {
    /// One line of its own (stitched, or the last one without a newline) at `offset`.
    fn line(offset: u64, line: Vec<u8>) -> Self {
        Segment {
            offset,
            end: line.len(),
            buf: line,
            start: 0,
            chunk: false,
        }
    }
}

/// Where the stream's bytes come from: the reader until the first look, then its read-ahead.
enum Source {
    Reader(Box<dyn Read + Send>),
    Ahead(ReadAhead),
    Gone,
}

/// A reader scanned for one focus, one record-bearing line at a time.
pub struct FocusScan {
    source: Source,
    /// The look-back segments, then the one being scanned (`cur`), then those not scanned yet.
    segments: VecDeque<Segment>,
    cur: usize,
    /// Position in `segments[cur]`.
    pos: usize,
    /// Read chunks among `segments`.
    chunks_held: usize,
    /// The start of a line whose end has not been read yet, and its stream offset.
    carry: Vec<u8>,
    carry_offset: u64,
    /// Stream offset of the next chunk.
    read_offset: u64,
    /// Longest line parsed; longer ones are counted as over-long.
    cap: usize,
    /// Inside an over-long line whose rest is being skipped.
    skipping: bool,
    searcher: Option<(u64, AhoCorasick)>,
    tracked: Vec<Tracked>,
    /// The `Mmm` stamp and `host program/` head of the last Postfix line checked in full.
    fast_month: [u8; 3],
    fast_head: Vec<u8>,
    chunk: usize,
    lookback_chunks: usize,
    /// Lines still to classify one by one (see [`SNIFF_LINES`]).
    sniff_left: u64,
}

impl FocusScan {
    pub fn new(reader: Box<dyn Read + Send>, cap: usize) -> Self {
        FocusScan {
            source: Source::Reader(reader),
            segments: VecDeque::new(),
            cur: 0,
            pos: 0,
            chunks_held: 0,
            carry: Vec::new(),
            carry_offset: 0,
            read_offset: 0,
            cap: cap.max(1),
            skipping: false,
            searcher: None,
            tracked: Vec::new(),
            fast_month: [0; 3],
            fast_head: Vec::new(),
            chunk: CHUNK,
            lookback_chunks: LOOKBACK_CHUNKS,
            sniff_left: SNIFF_LINES,
        }
    }

    /// Scan on until a line yields records (appended to `out`) or the input ends. `Ok(false)`
    /// once the input is exhausted (what was appended still counts).
    pub fn next(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
    ) -> io::Result<bool> {
        self.note_learned(focus, &parser.ctx.role);
        loop {
            if self
                .segments
                .get(self.cur)
                .is_some_and(|s| self.pos < s.end)
            {
                if self.scan(parser, focus, out) {
                    return Ok(true);
                }
                continue;
            }
            if self.cur < self.segments.len() {
                self.cur += 1;
                if let Some(s) = self.segments.get(self.cur) {
                    self.pos = s.start;
                }
                continue;
            }
            if !self.read_segments(parser)? {
                return Ok(false);
            }
        }
    }

    /// Read the next chunk into segments after the scanned ones (the complete lines, and the
    /// line stitched across the previous chunk's end), dropping look-back beyond the window.
    /// False at the end of input.
    fn read_segments(&mut self, parser: &mut LineParser) -> io::Result<bool> {
        loop {
            let Some(Chunk {
                buf,
                start: first,
                end: last,
            }) = self.next_chunk()?
            else {
                return Ok(self.last_line(parser));
            };
            // Stream offset of `buf[i]`.
            let base = self.read_offset;
            let offset = |i: usize| base + (i - first) as u64;
            self.read_offset += (last - first) as u64;
            let mut start = first;
            if self.skipping || !self.carry.is_empty() {
                let Some(nl) = memchr::memchr(b'\n', &buf[first..last]) else {
                    self.carry_on(parser, &buf[first..last]);
                    self.recycle(buf);
                    continue;
                };
                start = first + nl + 1;
                if !std::mem::take(&mut self.skipping) {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&buf[first..start]);
                    self.push_segment(Segment::line(self.carry_offset, line));
                }
            }
            let end = memchr::memrchr(b'\n', &buf[start..last]).map_or(start, |i| start + i + 1);
            self.carry_offset = offset(end);
            self.carry_on(parser, &buf[end..last]);
            if end > start {
                self.push_segment(Segment {
                    offset: offset(start),
                    buf,
                    start,
                    end,
                    chunk: true,
                });
                self.chunks_held += 1;
                self.drop_behind();
            } else {
                self.recycle(buf);
            }
            return Ok(true);
        }
    }

    /// At the end of input: the last line, when it has no newline, as a segment of its own.
    fn last_line(&mut self, parser: &mut LineParser) -> bool {
        if std::mem::take(&mut self.skipping) || self.carry.is_empty() {
            return false;
        }
        let line = std::mem::take(&mut self.carry);
        if line.len() > self.cap {
            parser.note_overlong();
            return false;
        }
        self.push_segment(Segment::line(self.carry_offset, line));
        true
    }

    /// Keep `part` (a line's start without its newline) for the next chunk; a line that grows
    /// past the cap is counted as over-long and its rest skipped.
    fn carry_on(&mut self, parser: &mut LineParser, part: &[u8]) {
        if self.skipping || part.is_empty() {
            return;
        }
        if self.carry.len() + part.len() > self.cap {
            parser.note_overlong();
            self.carry.clear();
            self.skipping = true;
            return;
        }
        self.carry.extend_from_slice(part);
    }

    fn push_segment(&mut self, s: Segment) {
        if self.cur >= self.segments.len() {
            self.pos = s.start;
        }
        self.segments.push_back(s);
    }

    /// Give back the chunks that fell out of the look-back window.
    fn drop_behind(&mut self) {
        while self.chunks_held > self.lookback_chunks + 1 && self.cur > 0 {
            let Some(s) = self.segments.pop_front() else {
                break;
            };
            self.cur -= 1;
            if s.chunk {
                self.chunks_held -= 1;
                self.recycle(s.buf);
            }
        }
    }

    fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if let Source::Reader(_) = self.source {
            let Source::Reader(r) = std::mem::replace(&mut self.source, Source::Gone) else {
                unreachable!("matched above");
            };
            let buffers = self.lookback_chunks + AHEAD + 2;
            self.source = Source::Ahead(ReadAhead::start(r, self.chunk, buffers)?);
        }
        match &mut self.source {
            Source::Ahead(a) => a.next(),
            Source::Reader(_) | Source::Gone => Ok(None),
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        match &mut self.source {
            Source::Ahead(a) => a.recycle(buf),
            Source::Reader(_) | Source::Gone => {}
        }
    }

    /// Scan the current segment from `pos`; true when a line yielded records (`pos` is then
    /// past it).
    fn scan(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
    ) -> bool {
        let mut seg = std::mem::take(&mut self.segments[self.cur].buf);
        let end = self.segments[self.cur].end;
        let yielded = self.scan_in(parser, focus, out, &seg, end);
        std::mem::swap(&mut self.segments[self.cur].buf, &mut seg);
        yielded
    }

    fn scan_in(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
        buf: &[u8],
        end: usize,
    ) -> bool {
        while self.pos < end {
            self.refresh_searcher(focus);
            let ac = &self.searcher.as_ref().expect("refreshed").1;
            let hit = ac.find(&buf[self.pos..end]);
            let (stop, hit_line) = match hit {
                Some(m) => {
                    let at = self.pos + m.start();
                    let start = memchr::memrchr(b'\n', &buf[self.pos..at])
                        .map_or(self.pos, |i| self.pos + i + 1);
                    (start, true)
                }
                None => (end, false),
            };
            if self.skim(parser, focus, out, buf, stop) {
                return true;
            }
            if hit_line {
                let (line, next) = line_at(buf, self.pos, end);
                let at = self.pos;
                self.pos = next;
                if self.line(parser, focus, out, buf, line, at) {
                    return true;
                }
            }
        }
        false
    }

    /// Count the lines of `buf[pos..stop]` (none holds a hit). The first [`SNIFF_LINES`] of the
    /// stream are classified: filtered when their prefix reads as Postfix, else decided in full
    /// (a file that is not a log shows as unknown lines). Later ones are only counted, as
    /// filtered: without a hit they cannot concern the focus. True when a line yielded records.
    fn skim(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
        buf: &[u8],
        stop: usize,
    ) -> bool {
        while self.pos < stop {
            if self.sniff_left == 0 {
                let span = &buf[self.pos..stop];
                let n = count_lines(span);
                parser.counts.lines += n;
                parser.counts.filtered += n;
                // The span's first and last lines stand for its months (the rollover).
                parser.observe_month(span);
                if let Some(i) = memchr::memrchr(b'\n', strip_eol(span)) {
                    parser.observe_month(&span[i + 1..]);
                }
                self.pos = stop;
                return false;
            }
            self.sniff_left -= 1;
            let (line, next) = line_at(buf, self.pos, stop);
            let (s, e) = line;
            if e - s <= self.cap && self.fast_postfix(&buf[s..e]) {
                parser.counts.lines += 1;
                parser.counts.filtered += 1;
                parser.observe_month(&buf[s..e]);
                self.pos = next;
                continue;
            }
            let at = self.pos;
            self.pos = next;
            if self.line(parser, focus, out, buf, line, at) {
                return true;
            }
        }
        false
    }

    /// One line of the current segment (`buf`) through the focus's decision (as
    /// `LineParser::parse_focused` does, with the look-back instead of its ring). True when it
    /// yielded records.
    fn line(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
        buf: &[u8],
        (s, e): (usize, usize),
        at: usize,
    ) -> bool {
        if e - s > self.cap {
            parser.note_overlong();
            return false;
        }
        let before = out.len();
        let line = strip_eol(&buf[s..e]);
        let decision = match quick_program_msg(line) {
            Some((program, msg)) => {
                self.learn_head(line, program);
                focus.decide(&parser.ctx.role, program, msg)
            }
            None => Decision::Full,
        };
        let offset = self.offset_in_current(at);
        match decision {
            Decision::Skip | Decision::Remember(_) => {
                parser.counts.lines += 1;
                parser.counts.filtered += 1;
                parser.observe_month(line);
            }
            Decision::FullWithReplay(q) => {
                for old in self.remembered(buf, q, at) {
                    // Counted as read and filtered when it came; now it is parsed.
                    parser.counts.filtered = parser.counts.filtered.saturating_sub(1);
                    parser.counts.lines = parser.counts.lines.saturating_sub(1);
                    parse_into(parser, focus, out, &old);
                }
                self.track(q).replayed_to = offset;
                parse_into(parser, focus, out, line);
            }
            Decision::Full => parse_into(parser, focus, out, line),
        }
        self.note_learned(focus, &parser.ctx.role);
        out.len() > before
    }

    /// Stream offset of `pos`-like index `i` in the current segment.
    fn offset_in_current(&self, i: usize) -> u64 {
        let s = &self.segments[self.cur];
        s.offset + (i - s.start) as u64
    }

    /// The lines before `at` in the current segment (`cur`) and in the look-back segments that
    /// the focus remembered for `q` and has not replayed yet, of `q`'s latest use, oldest first.
    fn remembered(&self, cur: &[u8], q: &[u8], at: usize) -> Vec<Vec<u8>> {
        let (lo, hi) = match self.tracked.iter().find(|t| t.qid == q) {
            Some(t) => (t.replayed_to, t.learned_at),
            None => (0, u64::MAX),
        };
        let pat = [q, b": "].concat();
        let here = &self.segments[self.cur];
        let behind = self
            .segments
            .iter()
            .take(self.cur)
            .map(|s| (s.offset, &s.buf[s.start..s.end]));
        let mut found = Vec::new();
        for (base, hay) in behind.chain([(here.offset, &cur[here.start..at])]) {
            let mut from = 0;
            while let Some(i) = memchr::memmem::find(&hay[from..], &pat) {
                let hit = from + i;
                let s = memchr::memrchr(b'\n', &hay[..hit]).map_or(0, |n| n + 1);
                let e = memchr::memchr(b'\n', &hay[hit..]).map_or(hay.len(), |n| hit + n);
                from = e;
                let offset = base + s as u64;
                if offset < lo || offset >= hi || e - s > self.cap {
                    continue;
                }
                // Before the focus learned `q` (and after the last replay), a Postfix line of
                // this shape was remembered.
                let line = strip_eol(&hay[s..e]);
                let remembered = quick_program_msg(line).is_some_and(|(p, msg)| {
                    memchr::memchr(b'/', program_name(p)).is_some() && remember_shape(msg, q)
                });
                if remembered {
                    found.push(line.to_vec());
                }
            }
        }
        super::focus::latest_use(found, q)
    }

    /// Start tracking the queue ids the focus learned for this stream (`scope`) since the
    /// last look.
    fn note_learned(&mut self, focus: &Focus, scope: &str) {
        if self
            .searcher
            .as_ref()
            .is_some_and(|(g, _)| *g == focus.generation())
        {
            return;
        }
        let now = self.segments.get(self.cur).map_or(self.carry_offset, |s| {
            s.offset + (self.pos - s.start) as u64
        });
        for q in focus.qids(scope) {
            match self.tracked.iter_mut().find(|t| t.qid == q) {
                Some(t) => t.learned_at = t.learned_at.min(now),
                None => self.push_tracked(Tracked {
                    qid: q.to_vec(),
                    learned_at: now,
                    replayed_to: 0,
                }),
            }
        }
        self.searcher = None;
    }

    fn track(&mut self, q: &[u8]) -> &mut Tracked {
        let i = match self.tracked.iter().position(|t| t.qid == q) {
            Some(i) => i,
            None => {
                self.push_tracked(Tracked {
                    qid: q.to_vec(),
                    learned_at: u64::MAX,
                    replayed_to: 0,
                });
                self.tracked.len() - 1
            }
        };
        &mut self.tracked[i]
    }

    fn push_tracked(&mut self, t: Tracked) {
        if self.tracked.len() >= MAX_TRACKED {
            self.tracked.remove(0);
        }
        self.tracked.push(t);
    }

    fn refresh_searcher(&mut self, focus: &Focus) {
        let g = focus.generation();
        if self.searcher.as_ref().is_none_or(|(sg, _)| *sg != g) {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(focus.patterns())
                .expect("a few short literal patterns always build");
            self.searcher = Some((g, ac));
        }
    }

    /// Whether `line` has the stamp month and `host postfix/` head of the last Postfix line
    /// checked in full, with a valid program token: then `quick_program_msg` reads it as that
    /// Postfix program and, holding no searched string, the focus skips (or remembers) it.
    fn fast_postfix(&self, line: &[u8]) -> bool {
        let h = &self.fast_head;
        if h.is_empty() || line.len() <= 16 + h.len() {
            return false;
        }
        if line[..3] != self.fast_month || line[3] != b' ' || line[15] != b' ' {
            return false;
        }
        if !line[16..].starts_with(h) {
            return false;
        }
        // The program token runs to the first `: ` without a space (quick_program_msg's rule).
        let rest = &line[16 + h.len()..];
        let limit = rest.len().min(200 - h.len().min(200));
        for i in 0..limit {
            match rest[i] {
                b' ' => return false,
                b':' if rest.get(i + 1) == Some(&b' ') => return true,
                _ => {}
            }
        }
        false
    }

    /// Remember the head of a classic-syslog Postfix line `quick_program_msg` accepted, for
    /// [`FocusScan::fast_postfix`].
    fn learn_head(&mut self, line: &[u8], program: &[u8]) {
        let name = program_name(program);
        let Some(slash) = memchr::memchr(b'/', name) else {
            return;
        };
        if line.len() <= 16 || line[3] != b' ' || line[15] != b' ' || line[16] == b' ' {
            return;
        }
        if month_number(line).is_none() {
            return;
        }
        // `program` is a slice of `line`: the head runs from the host to the slash.
        let start = program.as_ptr() as usize - line.as_ptr() as usize;
        let head = &line[16..start + slash + 1];
        if memchr::memchr(b' ', head).is_none_or(|sp| sp + 1 != start - 16) {
            return;
        }
        if head
            .iter()
            .any(|&c| c == b':' || c == b'[' || c == b'(' || c == b'<')
        {
            return;
        }
        // A host that reads as a second stamp (docker --timestamps) changes the reading.
        let stamp_like = (month_number(head).is_some() && head.get(3) == Some(&b' '))
            || (head.len() > 4 && head[..4].iter().all(u8::is_ascii_digit) && head[4] == b'-');
        if stamp_like {
            return;
        }
        self.fast_month.copy_from_slice(&line[..3]);
        if self.fast_head != head {
            self.fast_head = head.to_vec();
        }
    }
}

/// The line starting at `s` in `buf` (before `limit`): its bounds without the newline, and
/// where the next one starts.
fn line_at(buf: &[u8], s: usize, limit: usize) -> ((usize, usize), usize) {
    match memchr::memchr(b'\n', &buf[s..limit]) {
        Some(i) => ((s, s + i), s + i + 1),
        None => ((s, limit), limit),
    }
}

/// Lines in `b`: its newlines, plus a last line without one.
fn count_lines(b: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', b).count() as u64;
    newlines + u64::from(b.last().is_some_and(|&c| c != b'\n'))
}

/// Whether a Postfix message reads as a line the focus remembers for `q`.
fn remember_shape(msg: &[u8], q: &[u8]) -> bool {
    let Some((head, _)) = split_once(&msg[..msg.len().min(24)], b": ") else {
        return false;
    };
    let rest = &msg[head.len() + 2..];
    head == q && scan::is_queue_id(head) && super::focus::remembered(rest)
}

fn parse_into(parser: &mut LineParser, focus: &mut Focus, out: &mut Vec<LogRecord>, line: &[u8]) {
    if let Parsed::Record(r) = parser.parse(line) {
        focus.learn(&parser.ctx.role, &r);
        out.push(*r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ParseContext;

    /// A log mixing what the focus keeps, skips and remembers, from Postfix, Dovecot and
    /// others, with an over-long line, CRLF endings, garbage, and queue ids used again after
    /// their entry was removed (each message's remembered lines are its own use's).
    fn log() -> Vec<u8> {
        let mut s = String::new();
        for i in 0..60u32 {
            let q = format!("{:010X}", 0xA000_0000u32 + i % 20);
            let n = format!("{:010X}", 0xB000_0000u32 + i);
            let ts = format!("Nov  4 18:{:02}:{:02}", i / 60, i % 60);
            let mid = format!("<m{}@x.test>", i % 7);
            s += &format!("{ts} mx postfix/postscreen[9]: CONNECT from [192.0.2.{i}]:4000 to [198.51.100.1]:25\n");
            s += &format!("{ts} mx postfix/smtpd[12]: {q}: client=c{i}[192.0.2.{i}]\n");
            if i % 5 == 0 {
                s += &format!("{ts} mx postfix/smtpd[12]: {q}: reject: RCPT from c[192.0.2.1]: 550 5.1.1 <z@corp.test>: no; from=<a@b> to=<z@corp.test> proto=ESMTP helo=<c>\n");
            }
            s += &format!("{ts} mx sshd[4]: Accepted publickey for root\n");
            s += &format!("{ts} mx postfix/cleanup[13]: {q}: message-id={mid}\r\n");
            s += &format!(
                "{ts} mx postfix/qmgr[14]: {q}: from=<a@b>, size=100, nrcpt=1 (queue active)\n"
            );
            if i % 9 == 0 {
                s += &format!(
                    "{ts} mx postfix/smtpd[12]: warning: {q}: hostname c does not resolve\n"
                );
            }
            if i % 11 == 0 {
                s += &format!("{ts} mx postfix/smtpd[12]: NOQUEUE: reject: RCPT from c[192.0.2.2]: 554 5.7.1 <r@o.test>: Relay access denied; from=<a@b> to=<r@o.test> proto=ESMTP helo=<c>\n");
                s += &"x".repeat(300);
                s += "\n";
            }
            s += &format!("{ts} mx postfix/smtpd[20]: {n}: client=localhost[127.0.0.1]\n");
            s += &format!("{ts} mx postfix/smtp[15]: {q}: to=<u{i}@corp.test>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {n})\n");
            s += &format!("{ts} mx postfix/cleanup[13]: {n}: message-id={mid}\n");
            s += &format!(
                "{ts} mx dovecot: lmtp(u{i})<7><S{i}xyz>: msgid={mid}: saved mail to INBOX\n"
            );
            s += &format!("{ts} mx postfix/lmtp[16]: {n}: to=<u{i}@corp.test>, relay=mx[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <u{i}@corp.test> S{i}xyz Saved)\n");
            s += &format!("{ts} mx dovecot: imap-login: Login: user=<u{i}>, method=PLAIN\n");
            s += "garbage without a prefix\n";
            s += &format!("{ts} mx postfix/qmgr[14]: {q}: removed\n");
        }
        s += "Nov  4 19:00:00 mx postfix/qmgr[14]: AAAAAAAAAA: removed";
        s.into_bytes()
    }

    #[test]
    fn gives_the_line_at_a_time_prefilter_records_and_counts() {
        let data = log();
        for id in ["m0@x.test", "<m3@x.test>", "m6@x.test", "absent@x.test"] {
            let ctx = ParseContext::new("ec2", 2025);
            let mut want_p = LineParser::new(ctx.clone());
            let mut want_f = Focus::message_ids(&[id]);
            let mut want = Vec::new();
            let mut lines = crate::logs::BoundedLines::new(&data[..], 200);
            while let Some(l) = lines.next_line().unwrap() {
                match l {
                    crate::logs::LineRead::Overlong(_) => want_p.note_overlong(),
                    l => want_p.parse_focused(l.bytes(), &mut want_f, &mut want),
                }
            }
            // Tiny chunks and window: lines cross reads, and the look-back is short but holds
            // the client= line of the message-id's queue id.
            let sizes = [(CHUNK, LOOKBACK_CHUNKS), (97, 40), (1000, 2), (4096, 1)];
            for (chunk, lookback_chunks) in sizes {
                // Every line classified, some, or none: the records stay the same.
                for sniff in [SNIFF_LINES, 7, 0] {
                    let mut p = LineParser::new(ctx.clone());
                    let mut f = Focus::message_ids(&[id]);
                    let mut scan = FocusScan::new(Box::new(io::Cursor::new(data.clone())), 200);
                    (scan.chunk, scan.lookback_chunks) = (chunk, lookback_chunks);
                    scan.sniff_left = sniff;
                    let mut got = Vec::new();
                    while scan.next(&mut p, &mut f, &mut got).unwrap() {}
                    let raw = |v: &[LogRecord]| v.iter().map(|r| r.raw.clone()).collect::<Vec<_>>();
                    let case = format!("{id} chunk {chunk} sniff {sniff}");
                    assert_eq!(raw(&got), raw(&want), "{case}");
                    assert_eq!(got, want, "{case}");
                    let (c, w) = (p.counts(), want_p.counts());
                    if sniff == SNIFF_LINES {
                        assert_eq!(c, w, "{case}");
                    } else {
                        // Unclassified lines count as filtered instead of unknown.
                        assert_eq!((c.lines, c.parsed), (w.lines, w.parsed), "{case}");
                        let not_parsed = |c: &crate::logs::SourceCounts| {
                            c.filtered + c.unknown + c.other_programs
                        };
                        assert_eq!(not_parsed(&c), not_parsed(&w), "{case}");
                    }
                }
            }
            assert!(want_p.counts().filtered > 0);
            if id != "absent@x.test" {
                assert!(
                    want.iter()
                        .any(|r| matches!(r.event, crate::logs::Event::Client { .. })),
                    "{id}"
                );
            }
        }
    }

    /// The records of a focused scan of `data` read `chunk` bytes at a time with
    /// `lookback_chunks` chunks kept behind, all lines past the sniff (only counted), and the
    /// parser's counts.
    fn scan_all(
        data: &[u8],
        id: &str,
        chunk: usize,
        lookback_chunks: usize,
    ) -> (Vec<LogRecord>, crate::logs::SourceCounts) {
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        let mut f = Focus::message_ids(&[id]);
        let mut scan = FocusScan::new(Box::new(io::Cursor::new(data.to_vec())), 200);
        (scan.chunk, scan.lookback_chunks, scan.sniff_left) = (chunk, lookback_chunks, 0);
        let mut got = Vec::new();
        while scan.next(&mut p, &mut f, &mut got).unwrap() {}
        (got, p.counts())
    }

    fn filler(n: usize) -> String {
        (0..n)
            .map(|i| {
                format!("Nov  4 18:00:00 mx postfix/smtpd[12]: connect from c{i}[192.0.2.1]\n")
            })
            .collect()
    }

    /// With a year given (no reference time), a log that crosses a new year: the skipped
    /// December lines still move the rollover, so the message's January lines get the year a
    /// full parse gives them, on the line-at-a-time path and the scan's (spans counted whole).
    #[test]
    fn skipped_lines_still_turn_the_year() {
        let mut s: String = (0..300)
            .map(|i| {
                format!(
                    "Dec 31 23:59:{:02} mx postfix/smtpd[12]: connect from c{i}[192.0.2.1]\n",
                    i % 60
                )
            })
            .collect();
        s += "Jan  1 00:00:01 mx postfix/cleanup[13]: 4AB12C3D4E: message-id=<yr@x>\n";
        s += "Jan  1 00:00:03 mx postfix/qmgr[14]: 4AB12C3D4E: removed\n";
        let data = s.into_bytes();
        let full: Vec<_> = {
            let mut p = LineParser::new(ParseContext::new("ec2", 2025));
            data.split(|&c| c == b'\n')
                .filter_map(|l| match p.parse(l) {
                    Parsed::Record(r) if r.raw.contains("4AB12C3D4E") => Some(r.timestamp),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(full[0].map(|t| chrono::Datelike::year(&t)), Some(2026));
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        let mut f = Focus::message_ids(&["yr@x"]);
        let mut one = Vec::new();
        for l in data.split(|&c| c == b'\n') {
            p.parse_focused(l, &mut f, &mut one);
        }
        let one: Vec<_> = one.iter().map(|r| r.timestamp).collect();
        assert_eq!(one, full, "line at a time");
        let (scanned, _) = scan_all(&data, "yr@x", 4096, 4);
        let scanned: Vec<_> = scanned.iter().map(|r| r.timestamp).collect();
        assert_eq!(scanned, full, "scan");
    }

    #[test]
    fn lines_logged_before_the_message_id_are_found_chunks_back() {
        // client= and a recipient reject, then ~6 KB of other lines, then the Message-ID: with
        // 256-byte chunks they lie many chunks back.
        let mut s = String::new();
        s += "Nov  4 18:00:00 mx postfix/smtpd[12]: 1A2B3C4D5E: client=c[192.0.2.7]\n";
        s += "Nov  4 18:00:00 mx postfix/smtpd[12]: 1A2B3C4D5E: reject: RCPT from c[192.0.2.7]: 550 5.1.1 <z@corp.test>: no; from=<a@b> to=<z@corp.test> proto=ESMTP helo=<c>\n";
        s += &filler(80);
        s += "Nov  4 18:00:01 mx postfix/cleanup[13]: 1A2B3C4D5E: message-id=<late@x.test>\n";
        s += "Nov  4 18:00:01 mx postfix/qmgr[14]: 1A2B3C4D5E: removed\n";
        let data = s.into_bytes();
        let kinds = |v: &[LogRecord]| {
            v.iter()
                .map(|r| r.raw.split(": ").nth(2).unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        };
        let (got, counts) = scan_all(&data, "late@x.test", 256, 40);
        assert_eq!(
            kinds(&got),
            [
                "client=c[192.0.2.7]",
                "reject",
                "message-id=<late@x.test>",
                "removed"
            ]
        );
        assert_eq!(counts.lines, 84);
        assert_eq!(counts.parsed, 4);
        // Once the window no longer reaches back that far, they are not found (it is bounded).
        let (short, _) = scan_all(&data, "late@x.test", 256, 2);
        assert_eq!(kinds(&short), ["message-id=<late@x.test>", "removed"]);
    }

    #[test]
    fn a_needle_or_line_cut_by_a_read_is_found_whole() {
        let head = filler(3);
        let line = "Nov  4 18:00:01 mx postfix/cleanup[13]: 1A2B3C4D5E: message-id=<cut@x.test>\n";
        let data = format!("{head}{line}{}", filler(2)).into_bytes();
        let needle_at = head.len() + line.find("cut@").unwrap();
        // Reads that end inside the Message-ID (and, for 1 byte, everywhere).
        for chunk in [needle_at + 2, needle_at + 5, head.len() + 3, 1, 7] {
            let (got, counts) = scan_all(&data, "cut@x.test", chunk, 4);
            assert_eq!(got.len(), 1, "chunk {chunk}");
            assert_eq!(got[0].raw, line.trim_end(), "chunk {chunk}");
            assert_eq!((counts.lines, counts.filtered), (6, 5), "chunk {chunk}");
        }
    }

    #[test]
    fn a_read_error_mid_scan_ends_it_with_that_error() {
        use crate::logs::readahead::tests::Failing;
        let data = log();
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        let mut f = Focus::message_ids(&["m1@x.test"]);
        let mut scan = FocusScan::new(Box::new(Failing(io::Cursor::new(data))), 200);
        scan.chunk = 1000;
        let mut got = Vec::new();
        let err = loop {
            match scan.next(&mut p, &mut f, &mut got) {
                Ok(true) => {}
                Ok(false) => panic!("the error was lost"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.to_string(), "disk on fire");
        assert!(
            !got.is_empty(),
            "records before the failing read were returned"
        );
    }
}
