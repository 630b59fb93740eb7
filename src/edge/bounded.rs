//! A read guard for line-and-literal protocols (IMAP): it watches the bytes a server sends and
//! fails the stream, before anything is buffered above it, when a line grows past a cap, a
//! literal announces more than a cap, or a session sends more than a budget. The protocol
//! library above it (async-imap) buffers a whole response before parsing it, so without this
//! guard an endless line or a `{999999999}` literal grows memory without bound.
//!
//! Owns counting bytes; not parsing responses (the library) or deciding what a failure means
//! (`edge::imap`).
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Caps on what a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line outside literals.
    pub line: usize,
    /// Largest literal a server may announce.
    pub literal: u64,
    /// Most bytes in one session.
    pub session: u64,
}

impl Limits {
    /// IMAP: 64 KiB lines, 16 MiB literals (probes and bounces are far smaller), 64 MiB a session.
    pub const IMAP: Limits = Limits {
        line: 64 * 1024,
        literal: 16 * 1024 * 1024,
        session: 64 * 1024 * 1024,
    };
}

/// Where the scanner is in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a line: its length so far, and a literal size being read at its end (`{123}`).
    Line { len: usize, tail: Tail },
    /// Inside a literal: bytes left.
    Literal(u64),
}

/// The end of a line as far as it could announce a literal: `{digits}` or `{digits+}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    Other,
    Open,
    Digits(u64),
    /// Digits followed by `+` (LITERAL+ / non-synchronizing).
    Plus(u64),
    Closed(u64),
    ClosedCr(u64),
}

impl Tail {
    fn next(self, b: u8) -> Tail {
        match (self, b) {
            (_, b'{') => Tail::Open,
            (Tail::Open, b'0'..=b'9') => Tail::Digits(u64::from(b - b'0')),
            (Tail::Digits(n), b'0'..=b'9') => {
                Tail::Digits(n.saturating_mul(10).saturating_add(u64::from(b - b'0')))
            }
            (Tail::Digits(n), b'+') => Tail::Plus(n),
            (Tail::Digits(n) | Tail::Plus(n), b'}') => Tail::Closed(n),
            (Tail::Closed(n), b'\r') => Tail::ClosedCr(n),
            _ => Tail::Other,
        }
    }
}

/// Why the guard stopped a stream.
fn violation(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// The guard's accounting, separate from I/O so it can be tested on byte strings.
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    state: State,
    total: u64,
}

impl Scanner {
    pub fn new(limits: Limits) -> Self {
        Scanner {
            limits,
            state: State::Line {
                len: 0,
                tail: Tail::Other,
            },
            total: 0,
        }
    }

    /// Account for `bytes` received; an error says which cap was passed.
    pub fn feed(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.total = self.total.saturating_add(bytes.len() as u64);
        if self.total > self.limits.session {
            return Err(violation(format!(
                "the server sent more than {} bytes in one session",
                self.limits.session
            )));
        }
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Literal(left) => {
                    let take = left.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.state = if left == take {
                        State::Line {
                            len: 0,
                            tail: Tail::Other,
                        }
                    } else {
                        State::Literal(left - take)
                    };
                }
                State::Line { len, tail } => {
                    let b = bytes[i];
                    i += 1;
                    self.state = self.line_byte(len, tail, b)?;
                }
            }
        }
        Ok(())
    }

    fn line_byte(&self, len: usize, tail: Tail, b: u8) -> std::io::Result<State> {
        if b != b'\n' {
            if len + 1 > self.limits.line {
                return Err(violation(format!(
                    "the server sent a line longer than {} bytes",
                    self.limits.line
                )));
            }
            return Ok(State::Line {
                len: len + 1,
                tail: tail.next(b),
            });
        }
        let fresh = State::Line {
            len: 0,
            tail: Tail::Other,
        };
        match tail {
            Tail::Closed(n) | Tail::ClosedCr(n) if n > self.limits.literal => {
                Err(violation(format!(
                    "the server announced a {n}-byte literal (more than {})",
                    self.limits.literal
                )))
            }
            Tail::Closed(0) | Tail::ClosedCr(0) => Ok(fresh),
            Tail::Closed(n) | Tail::ClosedCr(n) => Ok(State::Literal(n)),
            _ => Ok(fresh),
        }
    }
}

/// A stream whose reads pass through a [`Scanner`]; writes pass unchanged.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    scanner: Scanner,
    failed: Option<String>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, limits: Limits) -> Self {
        Guarded {
            inner,
            scanner: Scanner::new(limits),
            failed: None,
        }
    }
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if let Some(why) = &me.failed {
            return Poll::Ready(Err(violation(why.clone())));
        }
        let before = buf.filled().len();
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(e) = me.scanner.feed(&buf.filled()[before..]) {
                    // Hand nothing of the offending read upward, and refuse all later reads.
                    buf.set_filled(before);
                    me.failed = Some(e.to_string());
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const SMALL: Limits = Limits {
        line: 16,
        literal: 32,
        session: 200,
    };

    #[test]
    fn literals_do_not_count_as_lines() {
        let mut s = Scanner::new(SMALL);
        // A 30-byte literal with no line end inside, then a short line.
        s.feed(b"* 1 FETCH {30}\r\n").unwrap();
        s.feed(&[b'x'; 30]).unwrap();
        s.feed(b")\r\n* OK\r\n").unwrap();
        // LITERAL+ form, split across reads.
        s.feed(b"* 2 FETCH {1").unwrap();
        s.feed(b"0+}\r\n0123456789\r\n").unwrap();
    }

    #[test]
    fn each_cap_is_enforced() {
        let long = Scanner::new(SMALL).feed(&[b'a'; 17]).unwrap_err();
        assert!(long.to_string().contains("longer than 16"), "{long}");
        let lit = Scanner::new(SMALL).feed(b"* 1 FETCH {33}\r\n").unwrap_err();
        assert!(lit.to_string().contains("33-byte literal"), "{lit}");
        let wide = Limits { line: 64, ..SMALL };
        let huge = Scanner::new(wide)
            .feed(b"* {99999999999999999999999}\r\n")
            .unwrap_err();
        assert!(huge.to_string().contains("literal"), "{huge}");
        let mut s = Scanner::new(SMALL);
        for _ in 0..30 {
            if s.feed(b"* OK x\r\n").is_err() {
                return;
            }
        }
        panic!("the session budget was never reached");
    }

    #[test]
    fn braces_inside_a_line_are_not_literals() {
        let mut s = Scanner::new(SMALL);
        s.feed(b"* OK {5} x\r\nabc\r\n").unwrap();
        assert_eq!(
            s.state,
            State::Line {
                len: 0,
                tail: Tail::Other
            }
        );
    }

    #[tokio::test]
    async fn guarded_stream_fails_and_stays_failed() {
        let data: &[u8] = &[b'z'; 100];
        let mut g = Guarded::new(data, SMALL);
        let mut buf = Vec::new();
        let e = g.read_to_end(&mut buf).await.unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        assert!(buf.len() <= SMALL.line, "nothing past the cap handed up");
        assert!(g.read(&mut [0u8; 4]).await.is_err());
    }
}
