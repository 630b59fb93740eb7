//! Diagnostics from the real binary: `--log-format json` writes one JSON object per line on
//! stderr and nothing of it on stdout; without `-v` nothing below `warn` is shown; RUST_LOG, when
//! set, overrides the flags.
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn flowtest(args: &[&str], rust_log: Option<&str>) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    c.arg("--config")
        .arg(root.join("flowtest.example.toml"))
        .args(args)
        .env_remove("FLOWTEST_CONFIG");
    match rust_log {
        Some(v) => c.env("RUST_LOG", v),
        None => c.env_remove("RUST_LOG"),
    };
    c.output().expect("run flowtest")
}

fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn json_log_format_writes_json_lines_on_stderr() {
    let o = flowtest(&["--log-format", "json", "-v", "list"], None);
    assert_eq!(o.status.code(), Some(0), "{:?}", stderr_lines(&o));
    let lines = stderr_lines(&o);
    assert!(!lines.is_empty(), "-v logged nothing");
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("configuration loaded")),
        "{lines:?}"
    );
    // stdout is the command's output only: the scenario list.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("gmail-inbound"), "{out}");
    assert!(!out.contains("\"level\""), "{out}");
}

#[test]
fn verbosity_follows_the_flags_unless_rust_log_is_set() {
    let quiet = flowtest(&["list"], None);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stderr.is_empty(), "{:?}", stderr_lines(&quiet));

    let debug = flowtest(&["-vv", "list"], None);
    let lines = stderr_lines(&debug);
    assert!(lines.iter().any(|l| l.contains("DEBUG")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("INFO")), "{lines:?}");

    let info_only = flowtest(&["-vv", "list"], Some("flowtest=info"));
    let lines = stderr_lines(&info_only);
    assert!(lines.iter().any(|l| l.contains("INFO")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("DEBUG")), "{lines:?}");
}
