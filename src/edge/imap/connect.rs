//! Opening an IMAP session: TCP connect, implicit TLS or STARTTLS, the greeting and LOGIN.
//! Every step ends by the caller's deadline (the probe's), and by the per-command cap before
//! that, so a server that accepts and then says nothing costs no more than the probe may wait.
//! Not here: what is done with the session (the parent module: folders, detection, cleanup).
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::Client;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{safe, step_until, within, FetchError, Guard, ImapSession, Prepared};
use crate::config::{Receiver, TlsMode};
use crate::core::outcome::AuthMechanism;
use crate::edge::bounded::{Guarded, Limits};
use crate::edge::tcp::{self, Tcp};

/// A plain or TLS TCP stream, as async-imap wants one type.
#[derive(Debug)]
pub enum ImapStream {
    Plain(Tcp),
    Tls(Box<TlsStream<Tcp>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Read one CRLF-terminated line from a not-yet-buffered stream (greeting / STARTTLS answer).
async fn read_line_raw(s: &mut Tcp) -> Result<String, FetchError> {
    let mut line = Vec::with_capacity(128);
    let mut b = [0u8; 1];
    while line.len() < 8192 {
        let n = s
            .read(&mut b)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        if n == 0 {
            return Err(FetchError::Connect("connection closed by server".into()));
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
        }
    }
    Err(FetchError::Protocol("line too long".into()))
}

async fn tls_wrap(tcp: Tcp, host: &str, prep: &Prepared) -> Result<ImapStream, FetchError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| FetchError::Tls(format!("{host}: {e}")))?;
    let tls = TlsConnector::from(prep.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| FetchError::Tls(e.to_string()))?;
    Ok(ImapStream::Tls(Box::new(tls)))
}

/// The stream as sessions use it: reads bounded, writes buffered until async-imap flushes (at
/// the end of every command).
fn guard<S: AsyncWrite>(stream: S) -> Guarded<BufWriter<S>> {
    Guarded::new(BufWriter::with_capacity(WRITE_BUFFER, stream), Limits::IMAP)
}

/// Room for any command flowtest writes (a longer one is written straight through).
const WRITE_BUFFER: usize = 8 * 1024;

/// A client on `stream` once the server's greeting has been read and is `OK` or `PREAUTH`.
async fn greeted(stream: ImapStream, deadline: Instant) -> Result<Client<Guard>, FetchError> {
    let mut c = Client::new(guard(stream));
    let greeting = within("greeting", step_until(deadline), async {
        c.read_response().await.map_err(|e| {
            if is_peer_gone(&e) {
                FetchError::Connect(e.to_string())
            } else {
                FetchError::Protocol(format!("unreadable greeting: {}", unreadable(&e)))
            }
        })
    })
    .await?
    .ok_or_else(|| FetchError::Connect("connection closed before the greeting".into()))?;
    check_greeting(greeting.parsed())?;
    Ok(c)
}

/// Whether an I/O error is the peer going away, rather than bytes that are not IMAP (a parse
/// failure, or a cap of the read guard).
fn is_peer_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::UnexpectedEof
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::NotConnected
    )
}

/// Whether a failed command is the peer going away rather than bad data.
pub(super) fn is_disconnect(e: &async_imap::error::Error) -> bool {
    match e {
        async_imap::error::Error::Io(io) => is_peer_gone(io),
        async_imap::error::Error::ConnectionLost => true,
        _ => false,
    }
}

/// What the server sent instead of IMAP, safe to show: async-imap's parse errors end with
/// `during parsing of "<the bytes>"`, before which come only the parser's internals.
fn unreadable(e: &std::io::Error) -> String {
    let text = e.to_string();
    let shown = match text.split_once(" during parsing of ") {
        Some((_, bytes)) => format!("not IMAP: {bytes}"),
        None => text,
    };
    safe(&shown.chars().take(200).collect::<String>())
}

/// A greeting must be `* OK` or `* PREAUTH`; `* BYE` is the server turning us away.
fn check_greeting(r: &async_imap::imap_proto::Response<'_>) -> Result<(), FetchError> {
    use async_imap::imap_proto::{Response, Status};
    match r {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(FetchError::Refused(format!(
            "BYE {}",
            safe(outcome.information.as_deref().unwrap_or(""))
        ))),
        other => Err(FetchError::Protocol(format!(
            "unexpected greeting: {}",
            safe(&format!("{other:?}"))
        ))),
    }
}

async fn connect(
    r: &Receiver,
    prep: &Prepared,
    deadline: Instant,
) -> Result<Client<Guard>, FetchError> {
    let tcp = within("connect", step_until(deadline), async {
        tcp::connect(&r.host, r.port)
            .await
            .map_err(|e| FetchError::Connect(format!("{}:{}: {e}", r.host, r.port)))
    })
    .await?;
    match r.tls {
        TlsMode::Tls => {
            let s = within(
                "TLS handshake",
                step_until(deadline),
                tls_wrap(tcp, &r.host, prep),
            )
            .await?;
            greeted(s, deadline).await
        }
        TlsMode::None => greeted(ImapStream::Plain(tcp), deadline).await,
        TlsMode::Starttls => {
            let mut tcp = tcp;
            within("STARTTLS", step_until(deadline), async {
                let greeting = read_line_raw(&mut tcp).await?;
                if greeting.starts_with("* BYE") {
                    return Err(FetchError::Refused(safe(&greeting)));
                }
                if !greeting.starts_with("* OK") {
                    return Err(FetchError::Protocol(format!(
                        "unexpected greeting: {}",
                        safe(&greeting)
                    )));
                }
                tcp.write_all(b"ft0 STARTTLS\r\n")
                    .await
                    .map_err(|e| FetchError::Connect(e.to_string()))?;
                loop {
                    let l = read_line_raw(&mut tcp).await?;
                    if let Some(rest) = l.strip_prefix("ft0 ") {
                        if rest.starts_with("OK") {
                            return Ok(());
                        }
                        return Err(FetchError::Tls(format!("STARTTLS refused: {}", safe(rest))));
                    }
                }
            })
            .await?;
            let s = within(
                "TLS handshake",
                step_until(deadline),
                tls_wrap(tcp, &r.host, prep),
            )
            .await?;
            Ok(Client::new(guard(s)))
        }
    }
}

/// Connect and log in. A `NO` to LOGIN is an authentication failure, except a server's
/// connection limit (`[LIMIT]`, Dovecot's mail_max_userip_connections): that is retried a few
/// times with back-off, since sessions of other runs or clients end all the time, but never
/// past `deadline`.
pub async fn login(
    r: &Receiver,
    prep: &Prepared,
    deadline: Instant,
) -> Result<ImapSession, FetchError> {
    login_as(r, prep, deadline).await.map(|(s, _)| s)
}

/// [`login`], also saying how the session authenticated.
pub async fn login_as(
    r: &Receiver,
    prep: &Prepared,
    deadline: Instant,
) -> Result<(ImapSession, AuthMechanism), FetchError> {
    let mut pause = Duration::from_secs(1);
    for _ in 0..3 {
        match login_once(r, prep, deadline).await {
            Err(FetchError::Auth(m))
                if is_limit(&m) && crate::clock::instant() + pause < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    login_once(r, prep, deadline).await
}

fn is_limit(text: &str) -> bool {
    text.contains("[LIMIT]")
        || text
            .to_ascii_lowercase()
            .contains("maximum number of connections")
}

async fn login_once(
    r: &Receiver,
    prep: &Prepared,
    deadline: Instant,
) -> Result<(ImapSession, AuthMechanism), FetchError> {
    let client = connect(r, prep, deadline).await?;
    let what = match r.mechanism {
        crate::config::AuthMechanism::Password => "LOGIN",
        _ => "AUTHENTICATE",
    };
    within(
        what,
        step_until(deadline),
        super::auth::log_in(client, r.mechanism, &r.username, &prep.password),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::DuplexStream;

    /// A stream that counts the writes reaching it.
    #[derive(Debug)]
    struct Counting {
        inner: DuplexStream,
        writes: Arc<AtomicUsize>,
    }

    impl AsyncRead for Counting {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn a_command_leaves_in_one_write() {
        let (ours, mut server) = tokio::io::duplex(4096);
        let writes = Arc::new(AtomicUsize::new(0));
        let answer = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"\r\n") {
                let n = server.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before a whole command");
                got.extend_from_slice(&buf[..n]);
            }
            let tag = got.split(|b| *b == b' ').next().unwrap().to_vec();
            server.write_all(&tag).await.unwrap();
            server.write_all(b" OK logged in\r\n").await.unwrap();
            (got, server)
        });
        let stream = Counting {
            inner: ours,
            writes: Arc::clone(&writes),
        };
        let session = Client::new(guard(stream)).login("probe", "pw").await;
        assert!(session.is_ok(), "login failed");
        let (got, _server) = answer.await.unwrap();
        assert!(got.windows(5).any(|w| w == b"LOGIN"), "{got:?}");
        assert_eq!(writes.load(Ordering::SeqCst), 1, "one command, one write");
    }

    #[test]
    fn parse_failures_are_bad_data_and_shown_without_parser_internals() {
        let e = std::io::Error::other(
            "Error(Error { input: [22, 3], code: TakeWhile1 }) during parsing of \"\\u{16} SSH\"",
        );
        assert!(!is_peer_gone(&e));
        let shown = unreadable(&e);
        assert!(shown.starts_with("not IMAP: "), "{shown}");
        assert!(!shown.contains("TakeWhile1"), "{shown}");
        let gone = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_peer_gone(&gone));
        let capped = std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long");
        assert!(!is_peer_gone(&capped));
        assert_eq!(unreadable(&capped), "line too long");
    }

    #[test]
    fn connection_limits_are_recognised() {
        assert!(is_limit(
            "NO [LIMIT] Maximum number of connections from user+IP exceeded"
        ));
        assert!(!is_limit(
            "NO [AUTHENTICATIONFAILED] Authentication failed."
        ));
    }
}
