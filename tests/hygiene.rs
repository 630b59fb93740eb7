//! Input and output hygiene end to end, with the real binary and no lab: hostile control
//! characters from messages and logs never reach a terminal raw (trace, diagnose, incident
//! drafts); configuration values that would reach a protocol are refused with file, line and
//! field, and a secret typed where a variable name belongs is not echoed; waits are bounded;
//! files named in the configuration are read with a cap; logs are read gzip-compressed, and a
//! file that is not a log is said to be one with exit 3.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Text a hostile peer could put in a header or a log line: a title-setting OSC ended by BEL, a
/// screen clear, a C1 CSI and a bare carriage return.
const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}31m\rX";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    c.env_remove("FLOWTEST_CONFIG").env_remove("RUST_LOG");
    c
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// No control character but the line break in `bytes` (tabs are layout too).
fn assert_no_raw_controls(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        panic!("raw U+{:04X} in {what}: {s:?}", c as u32);
    }
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn trace_escapes_hostile_received_fields() {
    let msg = format!(
        "Received: from evil{HOSTILE}.example (evil.example [192.0.2.7])\r\n\tby mx{HOSTILE}.example with ESMTP{HOSTILE} id 1;\r\n\tTue, 4 Nov 2025 18:12:31 +0000\r\n\
         Received: junk{HOSTILE} not a received header\r\n\
         Subject: x\r\n\r\nbody\r\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("hostile.eml");
    std::fs::write(&eml, &msg).unwrap();
    let trace = |format: &str| {
        bin()
            .arg("trace")
            .arg(&eml)
            .args(["--format", format])
            .output()
            .unwrap()
    };
    let o = trace("human");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_no_raw_controls("trace output", &o.stdout);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\\x1b]0;pwned\\x07"), "{out}");
    // JSON keeps the text as it is, escaped by the encoder.
    let o = trace("json");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains("\\u001b]0;pwned"), "{v}");
}

#[test]
fn diagnose_and_its_drafts_escape_hostile_log_text() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(fixture(
        "fixtures/logs/postfix-maillog/relay-denied/ec2.log",
    ))
    .unwrap();
    let hostile = src.replace(
        "Relay access denied",
        &format!("Relay access denied{HOSTILE}"),
    );
    assert_ne!(hostile, src);
    let log = dir.path().join("ec2.log");
    std::fs::write(&log, hostile).unwrap();
    let inc = dir.path().join("incidents");
    let o = bin()
        .args(["diagnose", "--year", "2025", "--incident"])
        .arg(&inc)
        .arg(format!("ec2={}", log.display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_no_raw_controls("diagnose output", &o.stdout);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\\x1b[2J"),
        "{}",
        text(&o)
    );
    let drafts: Vec<PathBuf> = std::fs::read_dir(&inc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!drafts.is_empty());
    for d in drafts {
        let body = std::fs::read(&d).unwrap();
        assert_no_raw_controls(&d.display().to_string(), &body);
        assert!(String::from_utf8_lossy(&body).contains("\\u{9b}31m"));
    }
}

/// A configuration directory with one scenario (`scenario` is its whole text).
fn config(scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flowtest.toml"),
        format!(
            "state_dir = {:?}\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_HYGIENE_KEY\"\n",
            dir.path().join("state").display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(dir.path().join("scenarios/a.toml"), scenario).unwrap();
    dir
}

const SCENARIO: &str = r#"name = "a"
timeout = "2s"
[sender]
kind = "smtp"
host = "127.0.0.1"
port = 9
tls = "none"
allow_plaintext = true
mail_from = "a@b.test"
rcpt_to = "c@d.test"
[receiver]
host = "127.0.0.1"
port = 9
tls = "none"
allow_plaintext = true
username = "c@d.test"
password_env = "FT_HYGIENE_PW"
"#;

fn flowtest(dir: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--config")
        .arg(dir.join("flowtest.toml"))
        .args(args)
        .env("FT_HYGIENE_KEY", "0123456789abcdef0123456789abcdef")
        .env("FT_HYGIENE_PW", "pw-for-the-hygiene-tests")
        .output()
        .unwrap()
}

fn assert_config_error(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{}", text(o));
    assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert_no_raw_controls("the error", &o.stderr);
}

#[test]
fn protocol_fields_addresses_and_env_names_are_checked_at_load() {
    let d = config(&SCENARIO.replace("host = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nallow_plaintext = true\nmail_from", "host = \"127.0.0.1\"\nport = 9\nhelo = \"me\\r\\nMAIL FROM:<x@y>\"\ntls = \"none\"\nallow_plaintext = true\nmail_from"));
    assert_config_error(
        &flowtest(d.path(), &["check-config"]),
        "a.toml:7: sender.helo",
    );
    let d = config(&SCENARIO.replace("rcpt_to = \"c@d.test\"", "rcpt_to = \"Carol <c@d.test>\""));
    assert_config_error(
        &flowtest(d.path(), &["check-config"]),
        "a.toml:10: sender.rcpt_to",
    );
    let d = config(&SCENARIO.replace("username = \"c@d.test\"", "username = \"c\\u001b[2J\""));
    assert_config_error(
        &flowtest(d.path(), &["check-config"]),
        "a.toml:16: receiver.username",
    );
    // Someone typed the password itself where the variable's name belongs.
    let typed = "Hunter2-is-my-password!";
    let d = config(&SCENARIO.replace("\"FT_HYGIENE_PW\"", &format!("{typed:?}")));
    let o = flowtest(d.path(), &["check-config"]);
    assert_config_error(&o, "a.toml:17: receiver.password_env");
    assert!(!text(&o).contains(typed), "{}", text(&o));
}

#[test]
fn duplicate_names_and_unknown_roles_name_file_line_and_field() {
    let d = config(SCENARIO);
    std::fs::write(d.path().join("scenarios/b.toml"), format!("\n\n{SCENARIO}")).unwrap();
    assert_config_error(
        &flowtest(d.path(), &["check-config"]),
        "b.toml:3: name: scenario name \"a\" is already used by",
    );
    let d = config(&format!(
        "{SCENARIO}[[path]]\nstage = \"mx\"\nby = \"mx.test\"\nrole = \"ec2\"\n"
    ));
    assert_config_error(
        &flowtest(d.path(), &["check-config"]),
        "a.toml:18: path.role",
    );
}

#[test]
fn waits_are_bounded_at_load_and_on_the_command_line() {
    let d = config(SCENARIO);
    let o = flowtest(
        d.path(),
        &["run", "a", "--timeout", "18446744073709551615s"],
    );
    assert_config_error(&o, "--timeout");
    let o = flowtest(d.path(), &["run", "a", "--timeout", "25h"]);
    assert_config_error(&o, "maximum");
    let d = config(&SCENARIO.replace("timeout = \"2s\"", "timeout = \"2d\""));
    assert_config_error(&flowtest(d.path(), &["check-config"]), "a.toml:2: timeout");
}

#[test]
fn files_named_in_config_are_read_with_a_cap() {
    for field in ["receiver.ca_file", "password_file"] {
        let scenario = match field {
            "receiver.ca_file" => SCENARIO.replace(
                "username = \"c@d.test\"",
                "ca_file = \"/dev/zero\"\nusername = \"c@d.test\"",
            ),
            _ => SCENARIO.replace(
                "password_env = \"FT_HYGIENE_PW\"",
                "password_file = \"/dev/zero\"",
            ),
        };
        let d = config(&scenario);
        let start = flowtest::clock::instant();
        let o = flowtest(d.path(), &["check-config"]);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{field}: read /dev/zero for long"
        );
        assert_config_error(&o, "/dev/zero");
        assert_config_error(&o, "larger than 1048576 bytes");
    }
}

#[test]
fn check_config_proves_the_state_dir_writable() {
    let d = config(SCENARIO);
    let o = flowtest(d.path(), &["check-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("writable"),
        "{}",
        text(&o)
    );
    assert!(d.path().join("state").is_dir());
    // A state_dir that cannot be a directory is a problem, found before anything is sent.
    std::fs::write(d.path().join("blocker"), "x").unwrap();
    let toml = std::fs::read_to_string(d.path().join("flowtest.toml")).unwrap();
    let state = d.path().join("state").display().to_string();
    let blocked = d.path().join("blocker/state").display().to_string();
    std::fs::write(
        d.path().join("flowtest.toml"),
        toml.replace(&state, &blocked),
    )
    .unwrap();
    assert_config_error(&flowtest(d.path(), &["check-config"]), "state_dir");
}

#[test]
fn diagnose_reads_gzip_and_refuses_what_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture("fixtures/logs/postfix-maillog/relay-denied/ec2.log");
    let gz = dir.path().join("ec2.log.2.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let diagnose = |p: &Path| {
        bin()
            .args(["diagnose", "--year", "2025", "--format", "json"])
            .arg(format!("ec2={}", p.display()))
            .output()
            .unwrap()
    };
    let a = diagnose(&plain);
    let b = diagnose(&gz);
    assert_eq!(a.status.code(), Some(2), "{}", text(&a));
    assert_eq!(b.status.code(), Some(2), "{}", text(&b));
    let messages = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["messages"].clone()
    };
    assert_eq!(messages(&a), messages(&b));

    let exe = Path::new(env!("CARGO_BIN_EXE_flowtest"));
    let o = bin()
        .arg("diagnose")
        .arg(format!("x={}", exe.display()))
        .output()
        .unwrap();
    assert_config_error(&o, "is not a log file: it holds binary data");
    assert!(o.stdout.is_empty(), "{}", text(&o));

    let prose = dir.path().join("notes.txt");
    std::fs::write(&prose, "a line of prose, not a mail log\n".repeat(50)).unwrap();
    let o = bin()
        .arg("diagnose")
        .arg(format!("x={}", prose.display()))
        .output()
        .unwrap();
    assert_config_error(&o, "is not a mail log flowtest reads: none of its 50 lines");
    assert_config_error(
        &o,
        "50 are in no log layout flowtest knows, the first: \"a line of",
    );
}
