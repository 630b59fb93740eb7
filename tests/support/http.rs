//! Plain HTTP for canary tests, with no client library: one GET (HTTP/1.0, so the answer is never
//! chunked and ends at EOF), reading one sample out of a Prometheus exposition, a webhook
//! receiver that keeps every body posted to it, and a bounded poll. Sockets are used in whatever
//! namespace they were made in (see `netns`). Not here: Prometheus's API (`prometheus`).
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A free loopback port in this process's namespace.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One GET of `path` (with its query string) on `addr`; (status, body). None when nothing
/// answers or the answer is not HTTP.
pub fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The value of the first sample of `name` whose labels include every `k="v"` in `labels`.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|kv| l.contains(kv))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Percent-encode a query-string value (PromQL has braces, quotes, spaces...).
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A webhook endpoint answering 200 to every POST; the bodies it got, in order.
pub struct Receiver {
    pub port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    /// Serve on `listener` (bound in the namespace the sender can reach) from a thread of its
    /// own, for the rest of the test.
    pub fn serve(listener: TcpListener) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                if let Some(b) = read_request_body(&mut c) {
                    sink.lock().unwrap().push(b);
                }
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Receiver { port, bodies }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// The bodies received so far, parsed as JSON (a body that is not JSON fails the test).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}")))
            .collect()
    }
}

/// The body of one request (as far as its Content-Length says), or None.
fn read_request_body(c: &mut TcpStream) -> Option<String> {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|h| {
                    let (k, v) = h.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some(body.to_string());
            }
        }
    }
}

/// Poll `probe` every 200 ms until it returns Ok (its value), for at most `secs`; then fail the
/// test naming `what` and the last thing `probe` reported (its Err).
pub fn wait_for<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = ::flowtest::clock::std_instant() + Duration::from_secs(secs);
    loop {
        let last = match probe() {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            ::flowtest::clock::std_instant() < deadline,
            "timed out after {secs} s waiting for {what}; last seen:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
