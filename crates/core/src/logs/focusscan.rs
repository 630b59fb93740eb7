//! The `--message-id` scan over a read buffer: the buffer is searched for the focus's byte
//! strings (the Message-IDs, learned `QID: `s and sessions, the always-kept markers; one
//! aho-corasick searcher, leftmost-first so that its SIMD prefilter runs) before any per-line
//! work, so the lines in between are only counted. A remembered `client=`/`uid=`/`reject:`
//! line of a queue id that turns out to matter is found by looking back in the buffer (a
//! bounded window) instead of being copied aside on every line. Owns the buffer and the
//! look-back bookkeeping; the decisions are `focus`'s and the parsing `LineParser`'s, so the
//! result (records and counts) is the line-at-a-time prefilter's.
//!
//! A line without a hit is only counted as filtered when its prefix reads as a Postfix or
//! Dovecot line (every other line goes through the full decision: the parser counts it as
//! unknown, as before). A run of lines with the same `Mmm` stamp and `host postfix/` head is
//! recognized from a few byte comparisons.

use std::io::{self, Read};

use aho_corasick::{AhoCorasick, MatchKind};

use super::focus::{Decision, Focus};
use super::prefix::{program_name, quick_program_msg, MONTHS};
use super::scan::{self, split_once};
use super::{strip_eol, LineParser, LogRecord, Parsed};

/// Bytes read at a time: small enough that what was read is still in the CPU cache when it is
/// searched.
const CHUNK: usize = 1 << 20;
/// Bytes read into the buffer before it slides down to the look-back window (large against
/// `LOOKBACK`, so that little is moved).
const SLIDE_EVERY: usize = 16 << 20;
/// Bytes before the unread part kept for looking back (remembered lines of a queue id).
const LOOKBACK: usize = 2 << 20;
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

/// A reader scanned for one focus, one record-bearing line at a time.
pub struct FocusScan<R> {
    reader: R,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// End of the bytes in `buf`.
    filled: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
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
    lookback: usize,
    slide_every: usize,
    /// Lines still to classify one by one (see [`SNIFF_LINES`]).
    sniff_left: u64,
}

impl<R: Read> FocusScan<R> {
    pub fn new(reader: R, cap: usize) -> Self {
        FocusScan {
            reader,
            buf: Vec::new(),
            pos: 0,
            filled: 0,
            base: 0,
            eof: false,
            cap: cap.max(1),
            skipping: false,
            searcher: None,
            tracked: Vec::new(),
            fast_month: [0; 3],
            fast_head: Vec::new(),
            chunk: CHUNK,
            lookback: LOOKBACK,
            slide_every: SLIDE_EVERY,
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
        self.note_learned(focus);
        loop {
            if !self.fill()? {
                return Ok(false);
            }
            if self.skipping {
                self.skip_overlong_rest();
                continue;
            }
            let end = self.complete_end();
            if end == self.pos {
                // No newline within the cap: an over-long line.
                parser.note_overlong();
                self.pos = self.filled;
                self.skipping = true;
                continue;
            }
            if self.scan(parser, focus, out, end) {
                return Ok(true);
            }
        }
    }

    /// Scan `buf[pos..end]` (whole lines); true when a line yielded records (`pos` is then
    /// past it).
    fn scan(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
        end: usize,
    ) -> bool {
        while self.pos < end {
            self.refresh_searcher(focus);
            let ac = &self.searcher.as_ref().expect("refreshed").1;
            let hit = ac.find(&self.buf[self.pos..end]);
            let (stop, hit_line) = match hit {
                Some(m) => {
                    let at = self.pos + m.start();
                    let start = memchr::memrchr(b'\n', &self.buf[self.pos..at])
                        .map_or(self.pos, |i| self.pos + i + 1);
                    (start, true)
                }
                None => (end, false),
            };
            if self.skim(parser, focus, out, stop) {
                return true;
            }
            if hit_line {
                let (line, next) = self.line_at(self.pos, end);
                let at = self.pos;
                self.pos = next;
                if self.line(parser, focus, out, line, at) {
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
        stop: usize,
    ) -> bool {
        while self.pos < stop {
            if self.sniff_left == 0 {
                let n = count_lines(&self.buf[self.pos..stop]);
                parser.counts.lines += n;
                parser.counts.filtered += n;
                self.pos = stop;
                return false;
            }
            self.sniff_left -= 1;
            let (line, next) = self.line_at(self.pos, stop);
            let (s, e) = line;
            if e - s <= self.cap && self.fast_postfix(&self.buf[s..e]) {
                parser.counts.lines += 1;
                parser.counts.filtered += 1;
                self.pos = next;
                continue;
            }
            let at = self.pos;
            self.pos = next;
            if self.line(parser, focus, out, line, at) {
                return true;
            }
        }
        false
    }

    /// One line through the focus's decision (as `LineParser::parse_focused` does, with the
    /// look-back instead of its ring). True when it yielded records.
    fn line(
        &mut self,
        parser: &mut LineParser,
        focus: &mut Focus,
        out: &mut Vec<LogRecord>,
        (s, e): (usize, usize),
        at: usize,
    ) -> bool {
        if e - s > self.cap {
            parser.note_overlong();
            return false;
        }
        let before = out.len();
        let buf = std::mem::take(&mut self.buf);
        let line = strip_eol(&buf[s..e]);
        let decision = match quick_program_msg(line) {
            Some((program, msg)) => {
                self.learn_head(line, program);
                focus.decide(program, msg)
            }
            None => Decision::Full,
        };
        let offset = self.base + at as u64;
        match decision {
            Decision::Skip | Decision::Remember(_) => {
                parser.counts.lines += 1;
                parser.counts.filtered += 1;
            }
            Decision::FullWithReplay(q) => {
                for (rs, re) in self.remembered(&buf, q, at) {
                    // Counted as read and filtered when it came; now it is parsed.
                    parser.counts.filtered = parser.counts.filtered.saturating_sub(1);
                    parser.counts.lines = parser.counts.lines.saturating_sub(1);
                    parse_into(parser, focus, out, &buf[rs..re]);
                }
                self.track(q).replayed_to = offset;
                parse_into(parser, focus, out, line);
            }
            Decision::Full => parse_into(parser, focus, out, line),
        }
        self.buf = buf;
        self.note_learned(focus);
        out.len() > before
    }

    /// The lines before `at` (inside the look-back window) that the focus remembered for `q`
    /// and has not replayed yet, oldest first.
    fn remembered(&self, buf: &[u8], q: &[u8], at: usize) -> Vec<(usize, usize)> {
        let (lo, hi) = match self.tracked.iter().find(|t| t.qid == q) {
            Some(t) => (t.replayed_to, t.learned_at),
            None => (0, u64::MAX),
        };
        let mut found = Vec::new();
        let mut pat = q.to_vec();
        pat.extend_from_slice(b": ");
        let mut from = 0;
        let hay = &buf[..at];
        while let Some(i) = memchr::memmem::find(&hay[from..], &pat) {
            let hit = from + i;
            from = hit + pat.len();
            let s = memchr::memrchr(b'\n', &hay[..hit]).map_or(0, |n| n + 1);
            if s == 0 && self.base > 0 {
                continue; // cut by the window
            }
            let e = memchr::memchr(b'\n', &hay[hit..]).map_or(at, |n| hit + n);
            let offset = self.base + s as u64;
            if offset < lo || offset >= hi || e - s > self.cap {
                continue;
            }
            // Before the focus learned `q` (and after the last replay), a Postfix line of this
            // shape was remembered.
            let remembered = quick_program_msg(strip_eol(&hay[s..e])).is_some_and(|(p, msg)| {
                memchr::memchr(b'/', program_name(p)).is_some() && remember_shape(msg, q)
            });
            if remembered && found.last().is_none_or(|&(ls, _)| ls != s) {
                found.push((s, e));
            }
        }
        found
    }

    /// Start tracking the queue ids the focus learned since the last look.
    fn note_learned(&mut self, focus: &Focus) {
        if self
            .searcher
            .as_ref()
            .is_some_and(|(g, _)| *g == focus.generation())
        {
            return;
        }
        let now = self.base + self.pos as u64;
        for q in focus.qids() {
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
        if !MONTHS.iter().any(|m| line[..3] == m[..]) {
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
        let stamp_like = MONTHS
            .iter()
            .any(|m| head.starts_with(&m[..]) && head.get(3) == Some(&b' '))
            || (head.len() > 4 && head[..4].iter().all(u8::is_ascii_digit) && head[4] == b'-');
        if stamp_like {
            return;
        }
        self.fast_month.copy_from_slice(&line[..3]);
        if self.fast_head != head {
            self.fast_head = head.to_vec();
        }
    }

    /// The line starting at `s` (before `limit`): its bounds without the newline, and where the
    /// next one starts.
    fn line_at(&self, s: usize, limit: usize) -> ((usize, usize), usize) {
        match memchr::memchr(b'\n', &self.buf[s..limit]) {
            Some(i) => ((s, s + i), s + i + 1),
            None => ((s, limit), limit),
        }
    }

    /// End of the last complete line in the unread part (all of it at end of input).
    fn complete_end(&self) -> usize {
        if self.eof {
            return self.filled;
        }
        memchr::memrchr(b'\n', &self.buf[self.pos..self.filled])
            .map_or(self.pos, |i| self.pos + i + 1)
    }

    /// Skip to the end of an over-long line.
    fn skip_overlong_rest(&mut self) {
        match memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
            Some(i) => {
                self.pos += i + 1;
                self.skipping = false;
            }
            None => self.pos = self.filled,
        }
    }

    /// Make sure the unread bytes hold a complete line, or one already over the cap, keeping
    /// the look-back window before them. False at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            let unread = &self.buf[self.pos..self.filled];
            let ready =
                self.eof || unread.len() > self.cap || memchr::memchr(b'\n', unread).is_some();
            if !unread.is_empty() && ready {
                return Ok(true);
            }
            if self.eof {
                return Ok(false);
            }
            self.read_chunk()?;
        }
    }

    /// Read up to one chunk more, first sliding the buffer down to the look-back window when
    /// the read part has grown past it by `slide_every`.
    fn read_chunk(&mut self) -> io::Result<()> {
        let keep_from = self.pos.saturating_sub(self.lookback);
        if keep_from > 0 && (keep_from >= self.slide_every || self.chunk >= self.slide_every) {
            self.buf.copy_within(keep_from..self.filled, 0);
            self.base += keep_from as u64;
            self.pos -= keep_from;
            self.filled -= keep_from;
        }
        let want = self.filled + self.chunk;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.filled < want {
            let n = match self.reader.read(&mut self.buf[self.filled..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                break;
            }
            self.filled += n;
        }
        Ok(())
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
    head == q
        && scan::is_queue_id(head)
        && [&b"client="[..], b"uid=", b"reject: "]
            .iter()
            .any(|p| rest.starts_with(p))
}

fn parse_into(parser: &mut LineParser, focus: &mut Focus, out: &mut Vec<LogRecord>, line: &[u8]) {
    if let Parsed::Record(r) = parser.parse(line) {
        focus.learn(&r);
        out.push(*r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ParseContext;

    /// A log mixing what the focus keeps, skips and remembers, from Postfix, Dovecot and
    /// others, with an over-long line, CRLF endings and garbage.
    fn log() -> Vec<u8> {
        let mut s = String::new();
        for i in 0..60u32 {
            let q = format!("{:010X}", 0xA000_0000u32 + i);
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
                    crate::logs::LineRead::Line(l) => {
                        want_p.parse_focused(l, &mut want_f, &mut want)
                    }
                    crate::logs::LineRead::Overlong(_) => want_p.note_overlong(),
                }
            }
            // Tiny chunks and window: lines cross reads, and the look-back is short but holds
            // the client= line of the message-id's queue id.
            let sizes = [
                (CHUNK, LOOKBACK, SLIDE_EVERY),
                (97, 4000, 300),
                (1000, 2000, 1000),
            ];
            for (chunk, lookback, slide_every) in sizes {
                // Every line classified, some, or none: the records stay the same.
                for sniff in [SNIFF_LINES, 7, 0] {
                    let mut p = LineParser::new(ctx.clone());
                    let mut f = Focus::message_ids(&[id]);
                    let mut scan = FocusScan::new(&data[..], 200);
                    (scan.chunk, scan.lookback) = (chunk, lookback);
                    (scan.slide_every, scan.sniff_left) = (slide_every, sniff);
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
                        assert_eq!(c.filtered + c.unknown, w.filtered + w.unknown, "{case}");
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
}
