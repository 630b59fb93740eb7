//! The lab's SendGrid API stand-in (`flowtest-lab-sendgrid`) as a child process on 127.0.0.1,
//! for tests that need no lab: started with a behaviour and a key file, its port read from the
//! `listening on ADDR` line it prints, killed when dropped.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The one key the stand-in accepts.
pub const KEY: &str = "SG.lab-test-key-0123456789";

pub struct StandIn {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl StandIn {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// A file holding `key`, for `api_key_file`.
    pub fn key_file(&self, key: &str) -> PathBuf {
        let path = self.dir.path().join(format!("key-{}", key.len()));
        std::fs::write(&path, format!("{key}\n")).unwrap();
        path
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the stand-in with `--behaviour behaviour` and `extra` arguments.
pub fn stand_in(behaviour: &str, extra: &[&str]) -> StandIn {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowtest-lab-sendgrid"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--behaviour",
            behaviour,
            "--key-file",
        ])
        .arg(&key_file)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("stand-in said {line:?}"))
        .to_string();
    StandIn { child, addr, dir }
}
