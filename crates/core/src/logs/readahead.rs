//! Read-ahead for the focused scan: a second thread reads the stream into a few recycled,
//! cache-sized buffers and hands them over a channel, so that the kernel's copy of the next
//! chunk overlaps the search of this one, and both stay in the CPU cache. Owns the thread and
//! the buffer pool; does not look at the bytes (that is `focusscan`'s).
//!
//! Plain `read` calls, no memory map: a file cut short while it is read (log rotation by
//! `copytruncate`) simply ends early. The thread ends with the stream, on a read error (handed
//! over in order) or when the scanner is dropped (its channels close); it never waits on
//! anything else.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

/// Read chunks start at this alignment: the kernel's copy from the page cache into a buffer
/// whose start sits a few bytes past a page boundary runs several times slower on some CPUs
/// (measured: 128 KiB heap buffers, which the allocator places 16 bytes into a page).
const ALIGN: usize = 4096;

/// One chunk of the stream: `buf[start..end]`, read in full (only the last one is shorter).
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A chunk, or the error that ended the reading.
type Filled = io::Result<Chunk>;

/// The scanner's end of the read-ahead.
pub(crate) struct ReadAhead {
    filled: Receiver<Filled>,
    empty: SyncSender<Vec<u8>>,
    /// Set once the stream ended (or failed): nothing more comes.
    done: bool,
}

impl ReadAhead {
    /// Start reading `reader` in chunks of `chunk` bytes, with `buffers` buffers in all (the
    /// scanner may hold all but one of them; at least two more than it holds keep the reading
    /// ahead).
    pub(crate) fn start(
        mut reader: Box<dyn Read + Send>,
        chunk: usize,
        buffers: usize,
    ) -> io::Result<Self> {
        let buffers = buffers.max(2);
        let (filled_tx, filled) = mpsc::sync_channel::<Filled>(buffers);
        let (empty, empty_rx) = mpsc::sync_channel::<Vec<u8>>(buffers);
        for _ in 0..buffers {
            // Cannot fail: the channel holds `buffers` and its receiver is alive.
            let _ = empty.try_send(Vec::with_capacity(chunk));
        }
        thread::Builder::new()
            .name("log-read".into())
            .spawn(move || {
                // Each buffer comes back from the scanner; a closed channel means it is gone.
                while let Ok(buf) = empty_rx.recv() {
                    let got = fill(&mut *reader, buf, chunk.max(1));
                    let end = !matches!(got, Ok((_, true)));
                    let sent = match got {
                        Ok((c, _)) if c.start == c.end => break,
                        Ok((c, _)) => filled_tx.send(Ok(c)),
                        Err(e) => filled_tx.send(Err(e)),
                    };
                    if end || sent.is_err() {
                        break;
                    }
                }
            })?;
        Ok(ReadAhead {
            filled,
            empty,
            done: false,
        })
    }

    /// The next chunk; `None` at the end of the stream.
    pub(crate) fn next(&mut self) -> io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        match self.filled.recv() {
            Ok(Ok(buf)) => Ok(Some(buf)),
            Ok(Err(e)) => {
                self.done = true;
                Err(e)
            }
            // The thread ended: the stream is exhausted.
            Err(mpsc::RecvError) => {
                self.done = true;
                Ok(None)
            }
        }
    }

    /// Give a buffer back for reading into.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        // Fails only once the thread has ended, when the buffer is not needed any more.
        let _ = self.empty.try_send(buf);
    }
}

/// Read into `buf` (at a page-aligned start) until it holds `chunk` bytes or the stream ends;
/// also whether more may follow.
fn fill(reader: &mut dyn Read, mut buf: Vec<u8>, chunk: usize) -> io::Result<(Chunk, bool)> {
    // A recycled buffer is full-sized already: nothing to zero.
    if buf.len() < chunk + ALIGN {
        buf.resize(chunk + ALIGN, 0);
    }
    let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
    let want = start + chunk;
    let mut end = start;
    let more = loop {
        if end == want {
            break true;
        }
        match reader.read(&mut buf[end..want]) {
            Ok(0) => break false,
            Ok(k) => end += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    Ok((Chunk { buf, start, end }, more))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Yields its bytes, then an error.
    pub(crate) struct Failing(pub(crate) io::Cursor<Vec<u8>>);

    impl Read for Failing {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            match self.0.read(b)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn hands_over_the_stream_in_order_then_ends() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut ra = ReadAhead::start(Box::new(io::Cursor::new(data.clone())), 333, 3).unwrap();
        let mut got = Vec::new();
        while let Some(c) = ra.next().unwrap() {
            let b = &c.buf[c.start..c.end];
            assert!(b.len() == 333 || got.len() + b.len() == data.len());
            assert_eq!(b.as_ptr() as usize % ALIGN, 0);
            got.extend_from_slice(b);
            ra.recycle(c.buf);
        }
        assert_eq!(got, data);
        assert!(ra.next().unwrap().is_none(), "stays ended");
    }

    #[test]
    fn a_read_error_arrives_after_the_bytes_before_it() {
        let data = vec![b'x'; 1000];
        let mut ra = ReadAhead::start(Box::new(Failing(io::Cursor::new(data))), 300, 2).unwrap();
        let mut n = 0;
        let err = loop {
            match ra.next() {
                Ok(Some(c)) => {
                    n += c.end - c.start;
                    ra.recycle(c.buf);
                }
                Ok(None) => panic!("the error was lost"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 900, "the full chunks before the failing read");
        assert_eq!(err.to_string(), "disk on fire");
        assert!(ra.next().unwrap().is_none());
    }

    #[test]
    fn dropping_the_scanner_ends_the_thread_even_with_every_buffer_held() {
        let data = vec![b'y'; 1 << 16];
        let mut ra = ReadAhead::start(Box::new(io::Cursor::new(data)), 100, 2).unwrap();
        let held = (ra.next().unwrap(), ra.next().unwrap());
        assert!(held.0.is_some() && held.1.is_some());
        drop(ra); // the thread waits for a buffer: the closed channel ends it
    }
}
