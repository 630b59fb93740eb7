//! Bounded line splitting over any `BufRead` the caller hands in. Owns the memory bound on a
//! single line (a binary file without newlines must not become one multi-gigabyte line); does
//! not open files (that is the edge's job).

use std::io::{self, BufRead};

/// One line as read: complete, or cut at the cap (the rest of it was skipped).
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead<'a> {
    Line(&'a [u8]),
    /// The line was longer than the cap; these are its first `cap` bytes.
    Overlong(&'a [u8]),
}

/// Splits a reader into lines of at most `cap` bytes, reusing one buffer.
pub struct BoundedLines<R> {
    inner: R,
    buf: Vec<u8>,
    cap: usize,
    /// Bytes of the reader's buffer handed out by the last call (consumed on the next one).
    pending_consume: usize,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(inner: R, cap: usize) -> Self {
        BoundedLines {
            inner,
            buf: Vec::with_capacity(cap.min(64 * 1024)),
            cap: cap.max(1),
            pending_consume: 0,
        }
    }

    /// The next line without its `\n`, or `None` at end of input. A final line without a
    /// newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<LineRead<'_>>> {
        if self.pending_consume > 0 {
            self.inner.consume(self.pending_consume);
            self.pending_consume = 0;
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
                    self.inner.consume(n);
                    break;
                }
                None => {
                    let n = chunk.len();
                    self.inner.consume(n);
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

    #[test]
    fn splits_and_caps() {
        let data = b"a\nbbbbbbbbbb\n\nlast".to_vec();
        let mut r = BoundedLines::new(io::BufReader::with_capacity(3, &data[..]), 4);
        assert_eq!(r.next_line().unwrap(), Some(LineRead::Line(b"a")));
        assert_eq!(r.next_line().unwrap(), Some(LineRead::Overlong(b"bbbb")));
        assert_eq!(r.next_line().unwrap(), Some(LineRead::Line(b"")));
        assert_eq!(r.next_line().unwrap(), Some(LineRead::Line(b"last")));
        assert_eq!(r.next_line().unwrap(), None);
    }
}
