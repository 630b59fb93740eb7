//! Test support for tests that need the real mail lab (`lab/up`): finding the lab, running commands
//! inside its `internet` namespace with a timeout, locking it against faults, reading its logs and
//! secrets, sending with swaks and fetching with curl's IMAP client.
//!
//! It does not start or stop the lab (that is `lab/up` / `lab/test`) and it never skips: a test that
//! needs the lab panics with a clear message when the lab is absent.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

pub mod flowtest;
pub mod http;
pub mod netns;
pub mod postgres;
pub mod prometheus;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// How long any one command in the lab may take before the test kills it and fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

const NOT_UP: &str = "the mail lab is not up (run `lab/up`, or the README test command `lab/test`)";

/// The running lab: the repository it was started from and its run directory.
pub struct Lab {
    pub repo: PathBuf,
    pub dir: PathBuf,
}

/// Holds the lab lock; for a fault it also undoes the fault (runs `lab/heal`) when dropped, even when
/// the test panicked.
pub struct LabGuard {
    lab_repo: PathBuf,
    lab_dir: PathBuf,
    heal_on_drop: bool,
    _lock: File,
}

/// Finds the running lab. Panics (never skips) when it is not up.
pub fn lab() -> Lab {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = PathBuf::from(
        std::env::var("FLOWTEST_LAB_DIR").unwrap_or_else(|_| "/run/flowtest-lab".to_string()),
    );
    let up = dir.join("state/up").is_file() && Path::new("/run/netns/internet").exists();
    assert!(up, "{NOT_UP} (looked in {})", dir.display());
    Lab { repo, dir }
}

/// A marker unique to one test run, for subjects and message ids.
pub fn token(label: &str) -> String {
    format!("ft-{label}-{}", uuid::Uuid::now_v7().simple())
}

/// Runs a command with stdin, capturing its output; kills it and panics after `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    // Writer and readers on their own threads so a full pipe can never deadlock the wait below.
    let writer = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let start = ::flowtest::clock::std_instant();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{shown} did not finish within {timeout:?}; killed it");
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Everything a failed command said, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Result of one swaks transaction.
pub struct Sent {
    pub output: Output,
    /// The transcript (swaks prints the SMTP dialogue on stdout).
    pub transcript: String,
    /// The queue id from the final `250 ... queued as ID`, when the message was accepted.
    pub queue_id: Option<String>,
}

impl Sent {
    pub fn accepted(&self) -> bool {
        self.output.status.success() && self.queue_id.is_some()
    }
}

impl Lab {
    /// Runs `argv` inside the `internet` namespace via `lab/run`, with a timeout.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.run_stdin(argv, b"")
    }

    pub fn run_stdin(&self, argv: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = Command::new(self.repo.join("lab/run"));
        cmd.args(argv).env("FLOWTEST_LAB_DIR", &self.dir);
        run_with_timeout(cmd, stdin, COMMAND_TIMEOUT)
    }

    fn lock(&self, exclusive: bool) -> File {
        let path = self.dir.join("state/lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open lab lock {}: {e}", path.display()));
        // Lab tests from every test binary (and nextest's processes) share one lock file: healthy
        // tests share it, a fault takes it alone.
        #[allow(clippy::incompatible_msrv)]
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
        file
    }

    /// Shared hold on a healthy lab: no fault is applied while the guard lives.
    pub fn healthy(&self) -> LabGuard {
        let lock = self.lock(false);
        if let Ok(faults) = std::fs::read_to_string(self.dir.join("state/faults")) {
            assert!(
                faults.trim().is_empty(),
                "the lab has a fault applied by someone else ({}); run `lab/heal`",
                faults.trim()
            );
        }
        LabGuard {
            lab_repo: self.repo.clone(),
            lab_dir: self.dir.clone(),
            heal_on_drop: false,
            _lock: lock,
        }
    }

    /// Exclusive hold without a fault, healed when the guard is dropped: for a test whose own
    /// actions would disturb the others' (a failed login slows every later login from its
    /// address), and which `lab/heal` undoes.
    pub fn alone(&self) -> LabGuard {
        LabGuard {
            lab_repo: self.repo.clone(),
            lab_dir: self.dir.clone(),
            heal_on_drop: true,
            _lock: self.lock(true),
        }
    }

    /// Exclusive hold; applies `lab/fault NAME ARGS` and heals when the guard is dropped.
    pub fn fault(&self, name: &str, args: &[&str]) -> LabGuard {
        let lock = self.lock(true);
        // Created before the fault is applied so a half-applied fault is healed too.
        let guard = LabGuard {
            lab_repo: self.repo.clone(),
            lab_dir: self.dir.clone(),
            heal_on_drop: true,
            _lock: lock,
        };
        let mut cmd = Command::new(self.repo.join("lab/fault"));
        cmd.arg(name).args(args).env("FLOWTEST_LAB_DIR", &self.dir);
        let out = run_with_timeout(cmd, b"", COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "lab/fault {name} {args:?} failed: {}",
            describe(&out)
        );
        guard
    }

    /// Contents of `$dir/logs/<file>` (empty when the file does not exist yet).
    pub fn log(&self, file: &str) -> String {
        match std::fs::read(self.dir.join("logs").join(file)) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("cannot read lab log {file}: {e}"),
        }
    }

    /// Polls a log until a line contains every needle; returns that line.
    pub fn wait_for_log(&self, file: &str, needles: &[&str], timeout: Duration) -> Option<String> {
        let start = ::flowtest::clock::std_instant();
        loop {
            let text = self.log(file);
            if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return Some(line.to_string());
            }
            if start.elapsed() > timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Postfix queue id of the message whose Message-ID contains `msgid` on one host's log.
    pub fn queue_id_for(&self, file: &str, msgid: &str, timeout: Duration) -> Option<String> {
        let needle = format!("message-id=<{msgid}");
        let line = self.wait_for_log(file, &[&needle], timeout)?;
        // "Mmm dd HH:MM:SS host postfix/cleanup[pid]: QUEUEID: message-id=<...>"
        line.split(": ").nth(1).map(|s| s.trim().to_string())
    }

    /// Dovecot's login penalties on one lab host (`doveadm penalty`): each address with its count.
    /// A count above 0 delays that address's next login by 2 s or more.
    pub fn dovecot_penalties(&self, host: &str) -> Vec<(String, u32)> {
        let conf = self.dir.join(host).join("dovecot/dovecot.conf");
        let mut cmd = Command::new("doveadm");
        cmd.arg("-c").arg(&conf).arg("penalty");
        let out = run_with_timeout(cmd, b"", COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "doveadm penalty on {host}: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.to_string(), f.next()?.parse().ok()?))
            })
            .collect()
    }

    /// The password generated at `lab/up` for a user.
    pub fn password(&self, user: &str) -> String {
        let path = self.dir.join("secrets").join(user);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("no lab secret for {user} ({}): {e}", path.display()))
            .trim()
            .to_string()
    }

    /// The IMAP server holding a user's mailbox (by domain).
    pub fn imap_host(user: &str) -> &'static str {
        if user.ends_with("@provider.test") {
            "imap.provider.test"
        } else {
            "imap.corp.test"
        }
    }

    /// Runs curl against a user's IMAP server (TLS on 993, verified against the lab CA), passing the
    /// credentials on stdin so they never appear in a process list.
    pub fn imap_curl(&self, user: &str, path: &str, extra: &[&str]) -> Output {
        let url = format!("imaps://{}/{}", Self::imap_host(user), path);
        let ca = self.dir.join("ca/ca.pem");
        let ca = ca.to_str().expect("lab dir is UTF-8");
        let config = format!("user = \"{user}:{}\"\n", self.password(user));
        let mut argv = vec![
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--cacert",
            ca,
            "--config",
            "-",
        ];
        argv.extend_from_slice(extra);
        argv.push(&url);
        self.run_stdin(&argv, config.as_bytes())
    }

    /// UIDs answered by `UID SEARCH <criteria>` in a folder; Err with curl's output on failure.
    pub fn imap_search(
        &self,
        user: &str,
        folder: &str,
        criteria: &str,
    ) -> Result<Vec<u32>, String> {
        let request = format!("UID SEARCH {criteria}");
        let out = self.imap_curl(user, folder, &["--request", &request]);
        if !out.status.success() {
            return Err(describe(&out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()))
            .collect())
    }

    /// Raw messages with the given UIDs, fetched in one curl run (one IMAP session).
    pub fn imap_fetch(
        &self,
        user: &str,
        folder: &str,
        uids: &[u32],
    ) -> Result<Vec<String>, String> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let host = Self::imap_host(user);
        let ca = self.dir.join("ca/ca.pem");
        let mut argv: Vec<String> = [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "60",
            "--cacert",
            ca.to_str().expect("UTF-8 path"),
            "--config",
            "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for uid in uids {
            argv.push(format!("imaps://{host}/{folder};UID={uid}"));
            argv.push("--output".into());
            argv.push(tmp.path().join(uid.to_string()).display().to_string());
        }
        let config = format!("user = \"{user}:{}\"\n", self.password(user));
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.run_stdin(&refs, config.as_bytes());
        if !out.status.success() {
            return Err(describe(&out));
        }
        uids.iter()
            .map(|uid| {
                std::fs::read(tmp.path().join(uid.to_string()))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| format!("UID {uid} not fetched: {e}"))
            })
            .collect()
    }

    /// The `FLAGS (...)` of each of these UIDs, in their order, from one `UID FETCH`.
    pub fn imap_flags(&self, user: &str, folder: &str, uids: &[u32]) -> Vec<String> {
        if uids.is_empty() {
            return Vec::new();
        }
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let request = format!("UID FETCH {} (UID FLAGS)", set.join(","));
        let out = self.imap_curl(user, folder, &["--request", &request]);
        assert!(out.status.success(), "{}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        uids.iter()
            .map(|uid| {
                let line = text
                    .lines()
                    .find(|l| l.contains(&format!("UID {uid} ")))
                    .unwrap_or_else(|| panic!("no FLAGS for UID {uid}: {text}"));
                line[line.find("FLAGS (").unwrap_or(0)..].to_string()
            })
            .collect()
    }

    /// All raw messages in a folder, fetched by curl's IMAP client in the internet namespace.
    pub fn imap_messages(&self, user: &str, folder: &str) -> Vec<String> {
        let uids = self
            .imap_search(user, folder, "ALL")
            .unwrap_or_else(|e| panic!("IMAP search for {user}/{folder} failed: {e}"));
        self.imap_fetch(user, folder, &uids)
            .unwrap_or_else(|e| panic!("IMAP fetch for {user}/{folder} failed: {e}"))
    }

    /// Polls a folder until a message containing `needle` arrives; returns it raw.
    pub fn wait_for_message(
        &self,
        user: &str,
        folder: &str,
        needle: &str,
        timeout: Duration,
    ) -> Option<String> {
        let start = ::flowtest::clock::std_instant();
        let criteria = format!("TEXT \"{needle}\"");
        loop {
            // Server-side search keeps each poll cheap however full the mailbox gets; the match is
            // then checked on the raw message.
            if let Ok(uids) = self.imap_search(user, folder, &criteria) {
                if let Ok(messages) = self.imap_fetch(user, folder, &uids) {
                    if let Some(m) = messages.into_iter().find(|m| m.contains(needle)) {
                        return Some(m);
                    }
                }
            }
            if start.elapsed() > timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs swaks in the internet namespace: `args` are swaks options (server, to, from, auth...).
    /// The Message-Id is `<token@flowtest.lab>` and the subject carries the token.
    pub fn swaks(&self, token: &str, args: &[&str]) -> Sent {
        let msgid = format!("Message-Id: <{token}@flowtest.lab>");
        let subject = format!("Subject: lab test {token}");
        let mut argv = vec![
            "swaks",
            "--hide-informational",
            "--timeout",
            "60",
            "--header",
            &msgid,
            "--header",
            &subject,
        ];
        argv.extend_from_slice(args);
        let output = self.run(&argv);
        let transcript = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        let queue_id = transcript
            .lines()
            .filter(|l| l.contains("queued as "))
            .filter_map(|l| l.rsplit("queued as ").next())
            .map(|s| s.trim().to_string())
            .next_back();
        Sent {
            output,
            transcript,
            queue_id,
        }
    }

    /// Sends from the internet to `to` through the MX (ec2) on port 25, no auth.
    pub fn send_inbound(&self, token: &str, to: &str, extra: &[&str]) -> Sent {
        let mut args = vec![
            "--server",
            "mx.corp.test",
            "--port",
            "25",
            "--from",
            "sender@internet.test",
            "--to",
            to,
        ];
        args.extend_from_slice(extra);
        self.swaks(token, &args)
    }

    /// Authenticated submission (STARTTLS verified against the lab CA, AUTH PLAIN) on port 587.
    pub fn submit(&self, token: &str, server: &str, user: &str, to: &str) -> Sent {
        self.submit_with(token, server, user, &self.password(user), to)
    }

    /// [`Lab::submit`] with the password given (a wrong one, for a failed login).
    pub fn submit_with(
        &self,
        token: &str,
        server: &str,
        user: &str,
        password: &str,
        to: &str,
    ) -> Sent {
        let ca = self.dir.join("ca/ca.pem").display().to_string();
        self.swaks(
            token,
            &[
                "--server",
                server,
                "--port",
                "587",
                "--tls",
                "--tls-verify",
                "--tls-ca-path",
                &ca,
                "--auth",
                "PLAIN",
                "--auth-user",
                user,
                "--auth-password",
                password,
                "--from",
                user,
                "--to",
                to,
            ],
        )
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if !self.heal_on_drop {
            return;
        }
        let mut cmd = Command::new(self.lab_repo.join("lab/heal"));
        cmd.env("FLOWTEST_LAB_DIR", &self.lab_dir);
        let out = run_with_timeout(cmd, b"", COMMAND_TIMEOUT);
        if !out.status.success() {
            let msg = format!("lab/heal failed: {}", describe(&out));
            if thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

/// Received headers of a raw message, unfolded, top (newest) first.
pub fn received_headers(raw: &str) -> Vec<String> {
    let head = raw
        .split("\r\n\r\n")
        .next()
        .unwrap_or(raw)
        .split("\n\n")
        .next()
        .unwrap_or(raw);
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if let Some(rest) = line.strip_prefix("Received:") {
            current = Some(rest.trim().to_string());
        }
    }
    if let Some(c) = current {
        out.push(c);
    }
    out
}

/// The one check of `flowtest doctor --format json` output `v` for this scenario and item
/// (panics, showing the output, unless there is exactly one).
pub fn doctor_check<'a>(
    v: &'a serde_json::Value,
    scenario: &str,
    item: &str,
) -> &'a serde_json::Value {
    let found: Vec<&serde_json::Value> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["scenario"] == scenario && c["item"] == item)
        .collect();
    assert_eq!(found.len(), 1, "{scenario} {item}: {v:#}");
    found[0]
}

/// Dell's Dovecot `imap` processes (only those in the lab's `dell` namespace): one per
/// logged-in IMAP session.
fn dell_imap_pids() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "pids", "dell"])
        .output()
        .expect("ip netns pids dell");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim() == "imap"
        })
        .map(str::to_string)
        .collect()
}

/// Wait (polling, at most `timeout`) until dell has at least `n` IMAP sessions, then a little
/// longer so their logins are over; whether they came. A run's sessions log in while its probes
/// are sent, later on a loaded machine than on a quiet one.
pub fn wait_for_dell_imap_sessions(n: usize, timeout: Duration) -> bool {
    let deadline = ::flowtest::clock::std_instant() + timeout;
    while dell_imap_pids().len() < n {
        if ::flowtest::clock::std_instant() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(200));
    true
}

/// Kill dell's Dovecot `imap` processes (only those in the lab's `dell` namespace): the IMAP
/// sessions a probe is watching on drop, as in a Dovecot restart. How many were killed.
pub fn kill_dell_imap_sessions() -> usize {
    dell_imap_pids()
        .iter()
        .filter(|pid| {
            Command::new("kill")
                .arg(pid.as_str())
                .status()
                .is_ok_and(|s| s.success())
        })
        .count()
}
