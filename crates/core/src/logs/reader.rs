//! Bounded line splitting over any `BufRead` the caller hands in. Owns the memory bound on a
//! single line (a binary file without newlines must not become one multi-gigabyte line), and
//! the check of the text as UTF-8 a block of whole lines at a time, so that the parser need not
//! check each line again; does not open files (that is the edge's job).

use std::io::{self, BufRead};

/// One line as read: complete, or cut at the cap (the rest of it was skipped).
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead<'a> {
    /// A complete line, not checked as UTF-8.
    Line(&'a [u8]),
    /// The line was longer than the cap; these are its first `cap` bytes.
    Overlong(&'a [u8]),
    /// A complete line, known to be valid UTF-8: its block of lines was checked at once.
    Text(&'a str),
}

impl<'a> LineRead<'a> {
    /// The line's bytes, whatever it was read as.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            LineRead::Line(b) | LineRead::Overlong(b) => b,
            LineRead::Text(t) => t.as_bytes(),
        }
    }
}

/// Bytes of whole lines checked as UTF-8 at once, at most: one check of a block costs less
/// than one per line, and the block is still in the CPU's cache when its lines are parsed.
const BLOCK: usize = 64 * 1024;

/// The whole lines at the start of `chunk` (those ending within its first [`BLOCK`] bytes)
/// that are valid UTF-8, as text; and how many bytes of lines follow them in the block from
/// the first invalid one on (to be read a line at a time).
fn text_block(chunk: &[u8]) -> (&str, usize) {
    let window = &chunk[..chunk.len().min(BLOCK)];
    let Some(end) = memchr::memrchr(b'\n', window).map(|i| i + 1) else {
        return ("", 0);
    };
    let lines = &window[..end];
    if let Ok(text) = simdutf8::basic::from_utf8(lines) {
        return (text, 0);
    }
    // std's check stops at the first invalid byte: the lines before it make the block.
    let bad = std::str::from_utf8(lines).map_or_else(|e| e.valid_up_to(), |_| end);
    let good = memchr::memrchr(b'\n', &lines[..bad]).map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&lines[..good]).unwrap_or_default();
    (text, end - text.len())
}

/// The lines of a block taken with [`BoundedLines::take_block`], as `next_line` would have
/// handed them out: each without its `\n`, cut at `cap` (and then `Overlong`).
pub fn block_lines(block: &str, cap: usize) -> BlockLines<'_> {
    BlockLines { rest: block, cap }
}

/// The iterator of [`block_lines`]. Lines are found with `memchr` (the standard library's
/// `split('\n')` took 4 % more of the reading thread's instructions).
pub struct BlockLines<'a> {
    rest: &'a str,
    cap: usize,
}

impl<'a> Iterator for BlockLines<'a> {
    type Item = LineRead<'a>;

    fn next(&mut self) -> Option<LineRead<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let len = memchr::memchr(b'\n', self.rest.as_bytes()).unwrap_or(self.rest.len());
        let line = &self.rest[..len];
        self.rest = self.rest.get(len + 1..).unwrap_or_default();
        Some(if len > self.cap {
            LineRead::Overlong(&line.as_bytes()[..self.cap])
        } else {
            LineRead::Text(line)
        })
    }
}

/// Splits a reader into lines of at most `cap` bytes, reusing its buffers.
pub struct BoundedLines<R> {
    inner: R,
    buf: Vec<u8>,
    cap: usize,
    /// Bytes of the reader's buffer handed out by the last call (consumed on the next one).
    pending_consume: usize,
    /// A block of whole lines checked as UTF-8 (copied out of the reader's buffer), handed out
    /// from `at` on.
    text: String,
    at: usize,
    /// Bytes to read a line at a time before a block is made again: the lines of the last block
    /// from its first invalid UTF-8 on.
    unchecked: usize,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(inner: R, cap: usize) -> Self {
        BoundedLines {
            inner,
            buf: Vec::with_capacity(cap.min(64 * 1024)),
            cap: cap.max(1),
            pending_consume: 0,
            text: String::new(),
            at: 0,
            unchecked: 0,
        }
    }

    /// The next line without its `\n`, or `None` at end of input. A final line without a
    /// newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<LineRead<'_>>> {
        let handed_out = std::mem::take(&mut self.pending_consume);
        self.consume(handed_out);
        if let Some((start, len)) = self.next_in_block()? {
            let line = &self.text[start..start + len];
            return Ok(Some(if len > self.cap {
                LineRead::Overlong(&line.as_bytes()[..self.cap])
            } else {
                LineRead::Text(line)
            }));
        }
        // Fast path: the whole line is already in the reader's buffer; hand out a slice of it
        // (no copy) and consume it on the next call.
        let fast = match self.inner.fill_buf() {
            Ok([]) => return Ok(None),
            Ok(chunk) => match memchr::memchr(b'\n', chunk) {
                Some(i) if i <= self.cap => Some(i),
                _ => None,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => return Err(e),
        };
        if let Some(i) = fast {
            self.pending_consume = i + 1;
            let chunk = self.inner.fill_buf()?;
            return Ok(Some(LineRead::Line(&chunk[..i])));
        }
        self.read_spanning()
    }

    /// The next block of whole lines checked as UTF-8, moved into `into` (its text replaced),
    /// when the lines handed out so far ended one and the reader's buffer starts another:
    /// so that a block can be parsed elsewhere. `false` (and `into` emptied) when no block
    /// can be made here (invalid UTF-8 ahead, no whole line in the buffer, the end of input,
    /// or a block half handed out): read on with [`BoundedLines::next_line`]. A block's lines
    /// may be longer than the cap; whoever parses it cuts them as `next_line` would.
    pub fn take_block(&mut self, into: &mut String) -> io::Result<bool> {
        into.clear();
        let handed_out = std::mem::take(&mut self.pending_consume);
        self.consume(handed_out);
        if self.at != self.text.len() {
            return Ok(false);
        }
        Ok(self.fill_block(into)? > 0)
    }

    /// A new block of whole, checked lines appended to `into` and consumed from the reader;
    /// its length, 0 when none can be made here (invalid UTF-8 ahead, no whole line in the
    /// reader's buffer, the end of input).
    fn fill_block(&mut self, into: &mut String) -> io::Result<usize> {
        if self.unchecked > 0 {
            return Ok(0);
        }
        let chunk = match self.inner.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        };
        let (text, unchecked) = text_block(chunk);
        let n = text.len();
        into.push_str(text);
        self.inner.consume(n);
        self.unchecked = unchecked;
        Ok(n)
    }

    /// Consume `n` bytes of the reader's buffer.
    fn consume(&mut self, n: usize) {
        if n > 0 {
            self.inner.consume(n);
            self.unchecked = self.unchecked.saturating_sub(n);
        }
    }

    /// Where the next line of the checked block lies in `text`, making a new block first when
    /// the last one is spent. `None` when no block can be made here (invalid UTF-8 ahead, or no
    /// whole line in the reader's buffer): the caller reads a line on its own.
    fn next_in_block(&mut self) -> io::Result<Option<(usize, usize)>> {
        if self.at == self.text.len() {
            let mut text = std::mem::take(&mut self.text);
            text.clear();
            self.at = 0;
            let made = self.fill_block(&mut text);
            self.text = text;
            if made? == 0 {
                return Ok(None);
            }
        }
        let start = self.at;
        // The block holds whole lines: this one ends within it.
        let rest = &self.text.as_bytes()[start..];
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.at += len + 1;
        Ok(Some((start, len)))
    }

    /// A line that does not end in the reader's buffer (or is over the cap), copied piece by
    /// piece up to the cap and skipped beyond it.
    fn read_spanning(&mut self) -> io::Result<Option<LineRead<'_>>> {
        self.buf.clear();
        let mut overlong = false;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, Some(i + 1)),
                None => (chunk.len(), None),
            };
            let room = self.cap.saturating_sub(self.buf.len());
            if take > room {
                overlong = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            match done {
                Some(n) => {
                    self.consume(n);
                    break;
                }
                None => {
                    let n = chunk.len();
                    self.consume(n);
                }
            }
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(if overlong {
            LineRead::Overlong(&self.buf)
        } else {
            LineRead::Line(&self.buf)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `data` as read with a reader buffer of `buffer` bytes and a cap of `cap`:
    /// its kind (`L`ine, `O`verlong, `T`ext) and bytes.
    fn read_all(data: &[u8], buffer: usize, cap: usize) -> Vec<(char, Vec<u8>)> {
        let mut r = BoundedLines::new(io::BufReader::with_capacity(buffer, data), cap);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            let kind = match l {
                LineRead::Line(_) => 'L',
                LineRead::Overlong(_) => 'O',
                LineRead::Text(_) => 'T',
            };
            out.push((kind, l.bytes().to_vec()));
        }
        out
    }

    /// What splitting on `\n` gives: each line's first `cap` bytes, and whether it was longer.
    fn expected(data: &[u8], cap: usize) -> Vec<(bool, Vec<u8>)> {
        let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|l| (l.len() > cap, l[..l.len().min(cap)].to_vec()))
            .collect()
    }

    #[test]
    fn splits_and_caps() {
        let data = b"a\nbbbbbbbbbb\n\nlast";
        let got = read_all(data, 3, 4);
        let bytes: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bytes, [&b"a"[..], b"bbbb", b"", b"last"]);
        assert_eq!(got[1].0, 'O');
        assert_eq!(
            got[3].0, 'L',
            "a last line without a newline is read on its own"
        );
    }

    #[test]
    fn whole_lines_come_checked_in_blocks() {
        let data = "Nov  4 06:00:00 mx postfix/smtpd[1]: connect from é\n".repeat(3000);
        let got = read_all(data.as_bytes(), 1 << 20, 64 * 1024);
        assert_eq!(got.len(), 3000);
        assert!(
            got.iter().all(|(k, _)| *k == 'T'),
            "every line was in a block"
        );
        let want = expected(data.as_bytes(), 64 * 1024);
        assert!(got.iter().zip(&want).all(|(g, w)| g.1 == w.1));
    }

    /// Every line of `data` read as a full diagnose's reading stage reads it: a block whenever
    /// one can be taken (its lines split by [`block_lines`]), else a line. With the number of
    /// blocks taken.
    fn read_by_blocks(data: &[u8], buffer: usize, cap: usize) -> (Vec<(bool, Vec<u8>)>, usize) {
        let mut r = BoundedLines::new(io::BufReader::with_capacity(buffer, data), cap);
        let (mut out, mut blocks, mut block) = (Vec::new(), 0, String::new());
        loop {
            if r.take_block(&mut block).unwrap() {
                blocks += 1;
                for l in block_lines(&block, cap) {
                    out.push((matches!(l, LineRead::Overlong(_)), l.bytes().to_vec()));
                }
                continue;
            }
            assert!(block.is_empty());
            let Some(l) = r.next_line().unwrap() else {
                break;
            };
            out.push((matches!(l, LineRead::Overlong(_)), l.bytes().to_vec()));
        }
        (out, blocks)
    }

    #[test]
    fn lines_taken_as_blocks_or_one_by_one_are_every_line_once() {
        let mut data = Vec::new();
        for n in 0..3000usize {
            let mut line = vec![b'a' + (n % 26) as u8; (n * 37) % 300];
            if n % 500 == 7 {
                line.push(0xff);
            }
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        data.extend_from_slice(b"tail without a newline");
        for buffer in [1, 100, 4096, 1 << 20] {
            for cap in [5, 200, 64 * 1024] {
                let (got, blocks) = read_by_blocks(&data, buffer, cap);
                assert_eq!(got, expected(&data, cap), "buffer {buffer} cap {cap}");
                if buffer >= 4096 {
                    assert!(blocks > 3, "buffer {buffer} cap {cap}: {blocks} blocks");
                }
            }
        }
    }

    #[test]
    fn invalid_utf8_lines_are_never_text_and_every_line_is_read_once() {
        // Lines of every length around the buffer and the block, some invalid (a lone
        // continuation byte, a cut two-byte character), read with several buffer sizes.
        let mut data = Vec::new();
        for n in 0..400usize {
            let mut line = vec![b'a' + (n % 26) as u8; (n * 37) % 300];
            match n % 7 {
                0 => line.push(0x80),
                3 => line.extend_from_slice("é".as_bytes()),
                5 => line.insert(0, 0xc3),
                _ => {}
            }
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        data.extend_from_slice(b"tail \xff");
        for buffer in [1, 7, 64, 4096, 1 << 20] {
            for cap in [5, 100, 64 * 1024] {
                let got = read_all(&data, buffer, cap);
                let want = expected(&data, cap);
                assert_eq!(got.len(), want.len(), "buffer {buffer} cap {cap}");
                for (g, (over, w)) in got.iter().zip(&want) {
                    assert_eq!(&g.1, w, "buffer {buffer} cap {cap}");
                    assert_eq!(g.0 == 'O', *over, "buffer {buffer} cap {cap}");
                    if g.0 == 'T' {
                        assert!(std::str::from_utf8(&g.1).is_ok());
                    }
                }
            }
        }
    }

    #[test]
    fn a_block_stops_before_its_first_invalid_line() {
        let mut data = b"one\ntwo\n".to_vec();
        data.extend_from_slice(b"bad \xff\nthree\n");
        let got = read_all(&data, 1 << 10, 100);
        let kinds: String = got.iter().map(|(k, _)| *k).collect();
        // The block before the bad line is text; the bad line and the rest of its block are
        // read one by one (the parser checks each).
        assert_eq!(kinds, "TTLL");
    }
}
