//! The SMTP wire: one client connection with bounded reads. Every reply line is capped before it
//! is buffered (a peer that never sends a line end cannot grow memory), every read and write is
//! bounded by a deadline, and each command goes out in one write on a socket that neither holds
//! it (Nagle) nor delays the ACKs that would let the server answer (`edge::tcp`).
//!
//! Owns bytes on the socket and reply framing; not the order of the conversation or what a reply
//! means (`edge::smtp`).
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use crate::edge::tcp;

/// Longest reply line accepted (RFC 5321 allows 512 octets; servers' EHLO lines stay far below).
pub const MAX_LINE: usize = 8 * 1024;
/// Most lines in one multi-line reply.
pub const MAX_REPLY_LINES: usize = 200;

/// A byte stream the conversation runs over: plain TCP, or TLS on top of it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What went wrong on the wire. The conversation decides what it means for the probe.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("no answer within {0:.1} s")]
    Timeout(f64),
    #[error("connection failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connection lost: {0}")]
    Io(#[source] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
}

/// One SMTP reply: its code and its text lines (without the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// The text lines joined by a space, as shown to people.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
    /// Whether an EHLO reply lists `keyword` (case-insensitive) as an extension.
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.extension(keyword).is_some()
    }
    /// The parameters of an EHLO extension line (`AUTH PLAIN LOGIN` -> `PLAIN LOGIN`).
    pub fn extension(&self, keyword: &str) -> Option<&str> {
        self.lines.iter().skip(1).find_map(|l| {
            let (k, rest) = l.split_once(' ').unwrap_or((l.as_str(), ""));
            k.eq_ignore_ascii_case(keyword).then_some(rest)
        })
    }
}

/// A connection with a bounded reader.
pub struct Wire {
    io: BufReader<Box<dyn Io>>,
}

/// The time left until `deadline`, failing when none is.
fn left(deadline: Instant) -> Result<Duration, WireError> {
    let d = deadline.saturating_duration_since(crate::clock::instant());
    if d.is_zero() {
        Err(WireError::Timeout(0.0))
    } else {
        Ok(d)
    }
}

async fn bounded<T>(
    deadline: Instant,
    fut: impl std::future::Future<Output = Result<T, WireError>>,
) -> Result<T, WireError> {
    let limit = left(deadline)?;
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(WireError::Timeout(limit.as_secs_f64())),
    }
}

impl Wire {
    /// Connect over TCP (Nagle off, replies acknowledged at once: `edge::tcp`), before
    /// `deadline`.
    pub async fn connect(host: &str, port: u16, deadline: Instant) -> Result<Wire, WireError> {
        let tcp = bounded(deadline, async {
            tcp::connect(host, port).await.map_err(WireError::Connect)
        })
        .await?;
        Ok(Wire::over(Box::new(tcp)))
    }

    /// A wire over any stream (tests, or a stream set up elsewhere).
    pub fn over(io: Box<dyn Io>) -> Wire {
        Wire {
            io: BufReader::with_capacity(MAX_LINE, io),
        }
    }

    /// Upgrade to TLS (after a 220 to STARTTLS, or at once for implicit TLS). Fails if the server
    /// already sent bytes past the point of upgrade: they would be read as if protected by TLS
    /// (the STARTTLS command-injection class of bugs).
    pub async fn into_tls(
        self,
        config: Arc<rustls::ClientConfig>,
        host: &str,
        deadline: Instant,
    ) -> Result<Wire, WireError> {
        if !self.io.buffer().is_empty() {
            return Err(WireError::Protocol(
                "the server sent data before the TLS handshake (refusing: possible injection)"
                    .into(),
            ));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| WireError::Protocol(format!("{host:?} is not a valid TLS name: {e}")))?;
        let inner = self.io.into_inner();
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = bounded(deadline, async {
            connector.connect(name, inner).await.map_err(WireError::Tls)
        })
        .await?;
        Ok(Wire::over(Box::new(tls)))
    }

    /// Send one command line (CRLF added) in a single write.
    pub async fn command(&mut self, line: &str, deadline: Instant) -> Result<(), WireError> {
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
        self.write_all(&buf, deadline).await
    }

    /// Write raw bytes and flush, before `deadline`.
    pub async fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), WireError> {
        let io = self.io.get_mut();
        bounded(deadline, async {
            io.write_all(bytes).await.map_err(WireError::Io)?;
            io.flush().await.map_err(WireError::Io)
        })
        .await
    }

    /// Read one complete reply (all its lines), before `deadline`.
    pub async fn reply(&mut self, deadline: Instant) -> Result<Reply, WireError> {
        let io = &mut self.io;
        bounded(deadline, read_reply(io)).await
    }

    /// Shut the connection down (best effort; for QUIT paths).
    pub async fn shutdown(mut self) {
        let _ = self.io.get_mut().shutdown().await;
    }
}

/// Read one line of at most [`MAX_LINE`] bytes; the line end is stripped.
pub async fn read_line_capped<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, WireError> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await.map_err(WireError::Io)?;
        if buf.is_empty() {
            return Err(WireError::Closed);
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE + 2 {
            return Err(WireError::Protocol(format!(
                "a reply line longer than {MAX_LINE} bytes"
            )));
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// Read a (possibly multi-line) reply: `250-first`, ..., `250 last`.
async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Reply, WireError> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let raw = read_line_capped(r).await?;
        let (c, more, text) = parse_reply_line(&raw)?;
        if code.is_some_and(|prev| prev != c) {
            return Err(WireError::Protocol(format!(
                "reply code changed inside one reply ({} then {c})",
                code.unwrap_or(0)
            )));
        }
        code = Some(c);
        lines.push(text);
        if !more {
            return Ok(Reply { code: c, lines });
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(WireError::Protocol(format!(
                "a reply of more than {MAX_REPLY_LINES} lines"
            )));
        }
    }
}

/// `250-text` -> (250, true, "text"); `250 text` / `250` -> (250, false, "text").
fn parse_reply_line(raw: &[u8]) -> Result<(u16, bool, String), WireError> {
    let shown = || crate::core::text::escape_control(&String::from_utf8_lossy(raw)).into_owned();
    let digits = raw.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let Some(d) = digits else {
        return Err(WireError::Protocol(format!(
            "not an SMTP reply: {:?}",
            shown()
        )));
    };
    let code = u16::from(d[0] - b'0') * 100 + u16::from(d[1] - b'0') * 10 + u16::from(d[2] - b'0');
    if !(200..600).contains(&code) {
        return Err(WireError::Protocol(format!(
            "reply code {code} out of range"
        )));
    }
    let (more, text) = match raw.get(3) {
        None => (false, &raw[3..]),
        Some(b'-') => (true, &raw[4..]),
        Some(b' ') => (false, &raw[4..]),
        Some(_) => {
            return Err(WireError::Protocol(format!(
                "not an SMTP reply: {:?}",
                shown()
            )))
        }
    };
    Ok((code, more, String::from_utf8_lossy(text).into_owned()))
}

/// The DATA payload: dot-stuffed, CRLF line ends, ending in `CRLF.CRLF`.
pub fn data_payload(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reply_of(bytes: &'static [u8]) -> Result<Reply, WireError> {
        let mut r = BufReader::new(bytes);
        read_reply(&mut r).await
    }

    #[tokio::test]
    async fn multi_line_replies_and_extensions() {
        let r = reply_of(b"250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.extension("auth"), Some("PLAIN LOGIN"));
        assert!(r.has_extension("STARTTLS"));
        assert!(
            !r.has_extension("mx.test"),
            "the greeting line is no extension"
        );
        let bare = reply_of(b"354\r\n").await.unwrap();
        assert_eq!((bare.code, bare.text()), (354, String::new()));
    }

    #[tokio::test]
    async fn endless_line_is_refused_at_the_cap() {
        let long: &'static [u8] = Box::leak(vec![b'2'; MAX_LINE * 4].into_boxed_slice());
        let e = reply_of(long).await.unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }

    #[tokio::test]
    async fn garbage_and_mixed_codes_are_protocol_errors() {
        for bad in [
            &b"hello there\r\n"[..],
            b"250-a\r\n550 b\r\n",
            b"999 x\r\n",
            b"25\r\n",
            b"250x\r\n",
        ] {
            let r = BufReader::new(bad);
            let mut r = r;
            assert!(
                matches!(read_reply(&mut r).await, Err(WireError::Protocol(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            reply_of(b"250-more").await,
            Err(WireError::Closed)
        ));
    }

    #[tokio::test]
    async fn escape_sequences_in_garbage_are_not_echoed_raw() {
        let e = reply_of(b"\x1b]0;pwned\x07\r\n").await.unwrap_err();
        assert!(!e.to_string().contains('\x1b'), "{e}");
    }

    #[test]
    fn data_payload_stuffs_dots_and_normalises_line_ends() {
        assert_eq!(data_payload(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(data_payload(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(data_payload(b""), b"\r\n.\r\n");
    }
}
