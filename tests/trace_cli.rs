//! `flowtest trace` end to end: runs the real binary on fixture files, stdin and bad inputs, and
//! checks exit codes, stderr and the JSON contract.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    // Keep the user's config out of it: trace needs none.
    c.env_remove("FLOWTEST_CONFIG").env("COLUMNS", "80");
    c
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/received")
        .join(name)
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowtest");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait flowtest")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_from_file_follows_the_contract() {
    let o = bin()
        .args(["trace", "--format", "json"])
        .arg(fixture("sendgrid-api-go-time.eml"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let hops = v["hops"].as_array().expect("hops array");
    assert_eq!(hops.len(), 4);
    assert_eq!(hops[0]["by"], "geopod-ismtpd-3");
    assert_eq!(hops[1]["timestamp"], "2025-11-04T18:12:38.520394051Z");
    assert_eq!(hops[1]["delay_ms"], 182);
    assert_eq!(v["total_ms"], 662);
    assert!(v["warnings"].as_array().is_some());
    assert!(v["missing_stages"].as_array().is_some());
}

#[test]
fn human_from_stdin_dash_and_no_argument() {
    let raw = std::fs::read(fixture("clock-skew.eml")).expect("fixture");
    for args in [&["trace", "-"][..], &["trace"][..]] {
        let o = run_with_stdin(args, &raw);
        assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
        let out = String::from_utf8(o.stdout).expect("utf-8");
        assert!(
            out.starts_with("Received path: 3 hops, 3 with a time"),
            "{out}"
        );
        assert!(out.contains("! clock_skew: stamped 4m 09s before"), "{out}");
        for line in out.lines() {
            assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
        }
    }
}

#[test]
fn missing_file_exits_3_with_one_line() {
    let o = bin()
        .args(["trace", "/nonexistent/dir/message.eml"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(
        e.starts_with("flowtest: cannot open /nonexistent/dir/message.eml"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn empty_and_headerless_input_exit_3() {
    for (input, want) in [
        (&b""[..], "the input is empty"),
        (&b"\r\n\r\n"[..], "the input is empty"),
        (
            &b"just some prose without any header\n"[..],
            "no message headers found",
        ),
        (
            &b"\n\nbody after a blank line\n"[..],
            "no message headers found",
        ),
    ] {
        let o = run_with_stdin(&["trace", "--format", "json"], input);
        assert_eq!(o.status.code(), Some(3), "input {input:?}");
        assert!(o.stdout.is_empty());
        let e = stderr(&o);
        assert_eq!(
            e.trim_end(),
            format!("flowtest: stdin: {want}"),
            "input {input:?}"
        );
    }
}

#[test]
fn directory_is_unreadable_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = bin().arg("trace").arg(dir.path()).output().expect("run");
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(e.starts_with("flowtest: cannot read"), "{e}");
    assert_eq!(e.lines().count(), 1);
}

#[test]
fn message_without_received_headers_is_read_fine() {
    let o = bin()
        .args(["trace", "--format", "json"])
        .arg(fixture("no-received-headers.eml"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["hops"], serde_json::json!([]));
    assert_eq!(v["warnings"], serde_json::json!(["no_received_headers"]));
    assert!(v["total_ms"].is_null());
}

#[test]
fn input_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.eml");
    let f = std::fs::File::create(&big).expect("create");
    // A sparse file: 64 MiB + 1 byte without writing them.
    f.set_len(64 * 1024 * 1024 + 1).expect("set_len");
    let o = bin().arg("trace").arg(&big).output().expect("run");
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(e.contains("is larger than 64 MiB"), "{e}");
}
