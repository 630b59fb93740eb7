//! The binary's behaviour on bad input: one clear line on stderr and the documented exit code
//! (3 = flowtest could not run, 2 = the mail path failed), never a panic, never a secret shown.
use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "s3cret-value-that-must-never-be-printed";
const KEY: &str = "0123456789abcdef0123456789abcdef";

fn flowtest(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    c.arg("--config").arg(config).args(args);
    c.env_remove("FLOWTEST_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run flowtest")
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config dir with one scenario whose servers are closed loopback ports.
fn setup(scenario_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("flowtest.toml"),
        format!(
            "state_dir = {:?}\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_TEST_KEY\"\n",
            state.display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    let port = closed_port();
    std::fs::write(
        dir.path().join("scenarios/loop.toml"),
        format!(
            r#"name = "loop"
timeout = "2s"
[sender]
kind = "smtp"
host = "127.0.0.1"
port = {port}
tls = "none"
allow_plaintext = true
mail_from = "a@b.test"
rcpt_to = "c@d.test"
[receiver]
host = "127.0.0.1"
port = {port}
tls = "none"
allow_plaintext = true
username = "c@d.test"
password_env = "FT_TEST_PW"
{scenario_extra}
"#
        ),
    )
    .unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_clear_line(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("flowtest: "), "{err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains(SECRET) && !String::from_utf8_lossy(&o.stdout).contains(SECRET));
}

#[test]
fn unknown_scenario_lists_the_known_ones() {
    let d = setup("");
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["run", "nope"],
        &[("FT_TEST_KEY", KEY), ("FT_TEST_PW", SECRET)],
    );
    assert_one_clear_line(&o, 3, "unknown scenario \"nope\" (known: loop)");
    // The shorthand behaves the same.
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["nope"],
        &[("FT_TEST_KEY", KEY), ("FT_TEST_PW", SECRET)],
    );
    assert_one_clear_line(&o, 3, "unknown scenario");
}

#[test]
fn unknown_key_names_file_line_and_field() {
    let d = setup("colour = \"blue\"");
    let o = flowtest(&d.path().join("flowtest.toml"), &["check-config"], &[]);
    assert_one_clear_line(&o, 3, "loop.toml:18: unknown field `colour`");
}

#[test]
fn missing_secret_variable_is_named_without_value() {
    let d = setup("");
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["run", "loop"],
        &[("FT_TEST_KEY", KEY)],
    );
    assert_one_clear_line(&o, 3, "environment variable FT_TEST_PW is not set");
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["run", "loop"],
        &[("FT_TEST_PW", SECRET)],
    );
    assert_one_clear_line(&o, 3, "FT_TEST_KEY");
}

#[test]
fn unreadable_ca_file_is_a_config_error() {
    let d = setup("ca_file = \"/nonexistent/ca.pem\"");
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["run", "loop"],
        &[("FT_TEST_KEY", KEY), ("FT_TEST_PW", SECRET)],
    );
    assert_one_clear_line(&o, 3, "cannot read CA file /nonexistent/ca.pem");
    let garbage = d.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let d2 = setup(&format!("ca_file = {:?}", garbage.display().to_string()));
    let o = flowtest(
        &d2.path().join("flowtest.toml"),
        &["run", "loop"],
        &[("FT_TEST_KEY", KEY), ("FT_TEST_PW", SECRET)],
    );
    assert_one_clear_line(&o, 3, "holds no certificate");
}

#[test]
fn unreachable_mailbox_is_fetch_failed_exit_2() {
    let d = setup("");
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["run", "loop", "--format", "json"],
        &[("FT_TEST_KEY", KEY), ("FT_TEST_PW", SECRET)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["status"], "fetch_failed");
    assert!(
        r["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{r}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains(SECRET));
    // The result was stored even though nothing was delivered.
    assert!(d.path().join("state/flowtest.db").exists());
}

#[test]
fn no_configuration_at_all() {
    let o = Command::new(env!("CARGO_BIN_EXE_flowtest"))
        .args(["run", "--all"])
        .env_remove("FLOWTEST_CONFIG")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_one_clear_line(&o, 3, "no configuration");
}

#[test]
fn bad_timeout_flag_and_missing_names() {
    let d = setup("");
    let env = [("FT_TEST_KEY", KEY), ("FT_TEST_PW", SECRET)];
    let o = flowtest(
        &d.path().join("flowtest.toml"),
        &["run", "loop", "--timeout", "later"],
        &env,
    );
    assert_one_clear_line(&o, 3, "--timeout");
    let o = flowtest(&d.path().join("flowtest.toml"), &["run"], &env);
    assert_one_clear_line(&o, 3, "--all");
}

#[test]
fn shipped_example_configuration_passes_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = [
        ("FLOWTEST_PROBE_KEY", KEY),
        ("FLOWTEST_GMAIL_APP_PASSWORD", SECRET),
        ("FLOWTEST_IMAP_PASSWORD", SECRET),
        ("FLOWTEST_SENDGRID_API_KEY", SECRET),
    ];
    // The example as shipped, but with its state directory (which check-config creates and
    // writes to) in a temporary directory rather than /var/lib.
    let state = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(root.join("flowtest.example.toml")).unwrap();
    let local = example
        .replace(
            "state_dir = \"/var/lib/flowtest\"",
            &format!(
                "state_dir = {:?}",
                state.path().join("state").display().to_string()
            ),
        )
        .replace(
            "scenarios_dir = \"scenarios\"",
            &format!(
                "scenarios_dir = {:?}",
                root.join("scenarios").display().to_string()
            ),
        );
    assert_ne!(local, example);
    let cfg = state.path().join("flowtest.toml");
    std::fs::write(&cfg, local).unwrap();
    let o = flowtest(&cfg, &["check-config"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("writable"), "{out}");
    assert!(state.path().join("state").is_dir());
    for name in [
        "gmail-inbound",
        "sendgrid-inbound",
        "sendgrid-api-inbound",
        "outbound-sendgrid",
    ] {
        assert!(out.contains(name), "{out}");
    }
    assert!(!out.contains(SECRET));
}
