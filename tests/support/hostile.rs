//! Scripted mail servers on 127.0.0.1 for tests that run the real `flowtest` binary against
//! misbehaving peers: an SMTP server and a small IMAP server that behave sensibly except where
//! the case's script says otherwise, plus running the binary while watching its peak memory.
//!
//! The servers are plain threads on blocking sockets; a server that "hangs" reads until the
//! client goes away, so no thread outlives the run it serves by long. Not here: what a run
//! must end as (the tests assert that).
#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// How long a server thread waits on a silent client before giving up on it.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// What the SMTP server does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpScript {
    /// A well-behaved server that accepts the message.
    Accepts,
    /// Accepts the connection and never says a word.
    SilentAfterConnect,
    /// Greets, then never answers EHLO.
    HangsAfterEhlo,
    /// Answers DATA with 354, then never answers the message's end.
    HangsAfterData,
    /// Starts a reply to EHLO and never ends the line.
    EndlessReplyLine,
    /// Greets with something that is not SMTP.
    GarbageGreeting,
}

/// What the IMAP server does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapScript {
    /// A sensible server with an empty mailbox.
    Benign,
    /// `* BYE` instead of a greeting.
    ByeAtGreeting,
    /// A greeting that is not IMAP.
    GarbageGreeting,
    /// Never answers SELECT.
    SilentSelect,
    /// Answers SELECT with a line that never ends.
    EndlessLine,
    /// Answers SELECT by announcing a `{999999999}` literal and streaming it.
    HugeLiteral,
    /// Never answers LOGIN.
    SilentLogin,
}

/// Listen on an ephemeral loopback port; every connection is served by `serve` on its own thread.
fn listen(serve: impl Fn(TcpStream) + Send + Sync + Copy + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(IDLE_LIMIT));
            let _ = conn.set_write_timeout(Some(IDLE_LIMIT));
            thread::spawn(move || serve(conn));
        }
    });
    port
}

/// Read until the client goes away (or [`IDLE_LIMIT`]): a server that stopped talking.
fn hang(mut conn: impl Read) {
    let mut sink = [0u8; 4096];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

/// Send `head`, then the same filler for as long as the client takes it.
fn flood(mut conn: TcpStream, head: &[u8]) {
    let filler = vec![b'x'; 64 * 1024];
    if conn.write_all(head).is_err() {
        return;
    }
    while conn.write_all(&filler).is_ok() {}
}

/// A scripted SMTP server; returns its port.
pub fn smtp(script: SmtpScript) -> u16 {
    listen(move |conn| serve_smtp(conn, script))
}

fn serve_smtp(conn: TcpStream, script: SmtpScript) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    match script {
        SmtpScript::SilentAfterConnect => return hang(r),
        SmtpScript::GarbageGreeting => {
            let _ = w.write_all(b"\x00\xffHELLO? this is not smtp\r\n");
            return hang(r);
        }
        _ => {}
    }
    if w.write_all(b"220 hostile.test ESMTP\r\n").is_err() {
        return;
    }
    let mut in_data = false;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                if script == SmtpScript::HangsAfterData {
                    return hang(r);
                }
                let _ = w.write_all(b"250 2.0.0 Ok: queued as HOSTILE1\r\n");
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if script == SmtpScript::HangsAfterEhlo => return hang(r),
            "EHLO" if script == SmtpScript::EndlessReplyLine => {
                drop(r);
                return flood(w, b"250-hostile.test says ");
            }
            "EHLO" => b"250-hostile.test\r\n250 8BITMIME\r\n",
            "DATA" => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                let _ = w.write_all(b"221 bye\r\n");
                return;
            }
            _ => b"250 ok\r\n",
        };
        if w.write_all(reply).is_err() {
            return;
        }
    }
}

/// A scripted IMAP server with an empty INBOX; returns its port.
pub fn imap(script: ImapScript) -> u16 {
    listen(move |conn| serve_imap(conn, script))
}

const CAPS: &str = "IMAP4rev1 IDLE UIDPLUS";

fn serve_imap(conn: TcpStream, script: ImapScript) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    let greeting: &[u8] = match script {
        ImapScript::ByeAtGreeting => b"* BYE [UNAVAILABLE] server shutting down\r\n",
        ImapScript::GarbageGreeting => b"\x16\x03\x01 SSH-2.0-not-imap\r\n",
        _ => b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] hostile ready\r\n",
    };
    if w.write_all(greeting).is_err()
        || matches!(
            script,
            ImapScript::ByeAtGreeting | ImapScript::GarbageGreeting
        )
    {
        return hang(r);
    }
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (tag, command) = line.trim_end().split_once(' ').unwrap_or(("*", ""));
        let tag = tag.to_string();
        let command = command.to_ascii_uppercase();
        let mut words = command.split(' ');
        let verb = match words.next().unwrap_or("") {
            "UID" => format!("UID {}", words.next().unwrap_or("")),
            v => v.to_string(),
        };
        let reply = match verb.as_str() {
            "LOGIN" if script == ImapScript::SilentLogin => return hang(r),
            "SELECT" | "EXAMINE" => match script {
                ImapScript::SilentSelect => return hang(r),
                ImapScript::EndlessLine => {
                    drop(r);
                    return flood(w, b"* OK [ALERT] ");
                }
                ImapScript::HugeLiteral => {
                    drop(r);
                    return flood(w, b"* 1 FETCH (UID 1 BODY[] {999999999}\r\n");
                }
                _ => format!(
                    "* FLAGS (\\Seen \\Deleted)\r\n* 0 EXISTS\r\n* 0 RECENT\r\n\
                     * OK [UIDVALIDITY 1] ok\r\n* OK [UIDNEXT 1] ok\r\n\
                     {tag} OK [READ-WRITE] {verb} done\r\n"
                ),
            },
            "CAPABILITY" => format!("* CAPABILITY {CAPS}\r\n{tag} OK done\r\n"),
            "LOGIN" => format!("{tag} OK [CAPABILITY {CAPS}] logged in\r\n"),
            "IDLE" => {
                if w.write_all(b"+ idling\r\n").is_err() {
                    return;
                }
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                format!("{tag} OK IDLE done\r\n")
            }
            "UID SEARCH" => format!("* SEARCH\r\n{tag} OK done\r\n"),
            "LOGOUT" => {
                let _ = w.write_all(format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} OK done\r\n"),
        };
        if w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A configuration directory: flowtest.toml and one scenario `hostile` whose sender and receiver
/// are the given loopback ports, both in plain text.
pub struct Setup {
    dir: tempfile::TempDir,
}

pub const KEY_ENV: (&str, &str) = ("FT_HOSTILE_KEY", "0123456789abcdef0123456789abcdef");
pub const PASSWORD_ENV: (&str, &str) = ("FT_HOSTILE_PW", "hostile-test-password");

/// A scenario's `[receiver]` table for the scripted IMAP server on `imap_port` (plain IMAP on
/// loopback, the password from [`PASSWORD_ENV`]), watching `folders` (a TOML list).
pub fn loopback_receiver(imap_port: u16, folders: &str) -> String {
    format!(
        "[receiver]\nhost = \"127.0.0.1\"\nport = {imap_port}\ntls = \"none\"\nallow_plaintext = true\n\
         username = \"user@example.test\"\npassword_env = \"{}\"\nfolders = {folders}\n",
        PASSWORD_ENV.0
    )
}

impl Setup {
    pub fn new(smtp_port: u16, imap_port: u16) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        let config = format!(
            "state_dir = {:?}\n[probe]\ndomain = \"probe.test\"\nkey_env = \"{}\"\n",
            state.display().to_string(),
            KEY_ENV.0
        );
        std::fs::write(dir.path().join("flowtest.toml"), config).expect("write config");
        std::fs::create_dir(dir.path().join("scenarios")).expect("scenarios dir");
        // The scenario's own timeout is long: `--timeout` must cap it and the sender's 30 s
        // command timeout.
        let scenario = format!(
            r#"name = "hostile"
timeout = "120s"
[sender]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
allow_plaintext = true
helo = "client.test"
mail_from = "probe@probe.test"
rcpt_to = "user@example.test"
command_timeout = "30s"
[receiver]
host = "127.0.0.1"
port = {imap_port}
tls = "none"
allow_plaintext = true
username = "user@example.test"
password_env = "{}"
poll_interval = "500ms"
"#,
            PASSWORD_ENV.0
        );
        std::fs::write(dir.path().join("scenarios/hostile.toml"), scenario)
            .expect("write scenario");
        Setup { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("flowtest.toml")
    }
}

/// A finished run of the binary: its output, how long it took, and its peak resident memory.
pub struct Watched {
    pub output: Output,
    pub took: Duration,
    /// The last `VmHWM` read from /proc while it ran, in bytes.
    pub peak_rss: u64,
}

/// The peak resident set (`VmHWM`) of a process, in bytes, while /proc still shows it.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Run `flowtest --config <config> <args>`, polling its peak memory until it exits; kill it and
/// panic after `limit`. Its output goes to files beside the configuration, so no pipe can fill.
pub fn run_watched(config: &Path, args: &[&str], limit: Duration) -> Watched {
    let dir = config.parent().expect("the configuration's directory");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    cmd.arg("--config").arg(config).args(args);
    cmd.env_remove("FLOWTEST_CONFIG");
    cmd.env(KEY_ENV.0, KEY_ENV.1)
        .env(PASSWORD_ENV.0, PASSWORD_ENV.1);
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let start = flowtest::clock::std_instant();
    let mut child = cmd.spawn().expect("start flowtest");
    let mut peak = 0;
    let status = loop {
        if let Some(p) = peak_rss(child.id()) {
            peak = p;
        }
        match child.try_wait().expect("wait for flowtest") {
            Some(status) => break status,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("flowtest {args:?} did not finish within {limit:?}; killed it");
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    Watched {
        took: start.elapsed(),
        output: Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        },
        peak_rss: peak,
    }
}
