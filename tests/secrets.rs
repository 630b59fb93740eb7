//! No secret ever leaves flowtest: against the lab, every output format of `run` (with incident
//! drafts and trace-level logs), `check-config` and `list` are searched, with the SQLite store,
//! for every secret value the lab holds (IMAP passwords, the relay's SMTP password, the probe
//! key). A failed login with a wrong password must not echo that password either.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent. Injects no fault.
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::flowtest::{lab_scenario, Cfg};
use support::{describe, lab, run_with_timeout, Lab, COMMAND_TIMEOUT};

/// Every secret value the lab generated (`secrets/**`: one password and one OAuth 2 token per user,
/// the relay's SMTP password, the probe key), trimmed as flowtest reads them.
fn lab_secrets(lab: &Lab) -> Vec<(String, String)> {
    let dir = lab.dir.join("secrets");
    assert!(dir.is_dir(), "no lab secrets in {}", dir.display());
    let mut out = Vec::new();
    // Recursively: the OAuth 2 access tokens live in `secrets/oauth/<user>`.
    for p in files_under(&dir) {
        let v = std::fs::read_to_string(&p).unwrap().trim().to_string();
        assert!(v.len() >= 16, "{} is too short to search for", p.display());
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), v));
    }
    assert!(
        out.len() >= 3,
        "expected the lab's secrets in {}",
        dir.display()
    );
    out
}

/// Runs flowtest in the lab with extra environment variables.
fn flowtest_env(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(lab.repo.join("lab/run"));
    cmd.arg(env!("CARGO_BIN_EXE_flowtest"))
        .args(args)
        .env("FLOWTEST_LAB_DIR", &lab.dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, b"", COMMAND_TIMEOUT)
}

/// Every file under `dir`, recursively (the store, its WAL, incident drafts).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Panics naming the place and the secret's owner (never the value) when any secret is in
/// `haystack`.
fn assert_clean(place: &str, haystack: &[u8], secrets: &[(String, String)]) {
    for (owner, value) in secrets {
        let found = haystack.windows(value.len()).any(|w| w == value.as_bytes());
        assert!(!found, "the secret of {owner} appears in {place}");
    }
}

/// `flowtest --config CFG -vvv run TARGET --format F --incident INC` in every format, with `env`.
fn run_every_format(
    lab: &Lab,
    cfg: &Path,
    target: &str,
    incidents: &Path,
    env: &[(&str, &str)],
) -> Vec<(String, Output)> {
    let cfg = cfg.display().to_string();
    let inc = incidents.display().to_string();
    ["human", "json", "junit", "nagios"]
        .iter()
        .map(|format| {
            let args = [
                "--config",
                &cfg,
                "-vvv",
                "run",
                target,
                "--format",
                format,
                "--incident",
                &inc,
            ];
            (
                format!("run --format {format}"),
                flowtest_env(lab, &args, env),
            )
        })
        .collect()
}

#[test]
fn no_output_log_draft_or_store_holds_a_secret() {
    let lab = lab();
    let _g = lab.healthy();
    let secrets = lab_secrets(&lab);
    // The search finds a secret where there is one.
    let planted = format!("x{}y", secrets[0].1).into_bytes();
    assert!(std::panic::catch_unwind(|| assert_clean("planted", &planted, &secrets)).is_err());
    let cfg = Cfg::shipped();
    let cfg_path = cfg.path().display().to_string();
    let incidents = tempfile::tempdir().unwrap();
    let mut outputs = run_every_format(&lab, &cfg.path(), "--all", incidents.path(), &[]);
    // Every crate's trace output too (async-imap echoes the commands it sends, LOGIN and
    // AUTHENTICATE included, unless flowtest silences it).
    let traced = flowtest_env(
        &lab,
        &["--config", &cfg_path, "run", "--all"],
        &[("RUST_LOG", "trace")],
    );
    assert!(
        String::from_utf8_lossy(&traced.stderr).contains("TRACE"),
        "RUST_LOG=trace logged nothing"
    );
    outputs.push(("run with RUST_LOG=trace".into(), traced));
    for (what, out) in &outputs {
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{what}: {}",
            describe(out)
        );
        assert!(!out.stdout.is_empty(), "{what} printed nothing");
    }
    for cmd in [
        &["check-config"][..],
        &["list"],
        &["list", "--format", "json"],
    ] {
        let mut args = vec!["--config", cfg_path.as_str(), "-vvv"];
        args.extend_from_slice(cmd);
        let out = flowtest_env(&lab, &args, &[]);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}: {}", describe(&out));
        outputs.push((cmd.join(" "), out));
    }
    // -vvv really turned verbose logging on, so the search below covers the diagnostics too.
    let stderr_all: Vec<u8> = outputs.iter().flat_map(|(_, o)| o.stderr.clone()).collect();
    assert!(
        String::from_utf8_lossy(&stderr_all).contains("DEBUG"),
        "no verbose logs on stderr"
    );
    for (what, out) in &outputs {
        assert_clean(&format!("{what} stdout"), &out.stdout, &secrets);
        assert_clean(&format!("{what} stderr"), &out.stderr, &secrets);
    }
    let state = cfg.path().parent().unwrap().join("state");
    let stored = files_under(&state);
    assert!(!stored.is_empty(), "no store in {}", state.display());
    for f in stored.iter().chain(files_under(incidents.path()).iter()) {
        assert_clean(
            &f.display().to_string(),
            &std::fs::read(f).unwrap(),
            &secrets,
        );
    }
}

#[test]
fn a_wrong_password_is_never_echoed() {
    let lab = lab();
    let _g = lab.healthy();
    let mut secrets = lab_secrets(&lab);
    let wrong = format!("wrong-{}", uuid::Uuid::now_v7().simple());
    secrets.push(("the wrong password".into(), wrong.clone()));
    let (name, text) = lab_scenario("lab-inbound.toml", "wrong-pw", |t| {
        let edited = t.replace(
            "password_file = \"${FLOWTEST_LAB_DIR}/secrets/alice@corp.test\"",
            "password_env = \"FT_SECRETS_TEST_WRONG_PW\"",
        );
        assert_ne!(
            edited, t,
            "lab-inbound.toml changed shape: update this test"
        );
        edited
    });
    let cfg = Cfg::new(&[(name.as_str(), text)]);
    let incidents = tempfile::tempdir().unwrap();
    let env = [("FT_SECRETS_TEST_WRONG_PW", wrong.as_str())];
    for (what, out) in run_every_format(&lab, &cfg.path(), "wrong-pw", incidents.path(), &env) {
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: a failed login is fetch_failed: {}",
            describe(&out)
        );
        assert_clean(&format!("{what} stdout"), &out.stdout, &secrets);
        assert_clean(&format!("{what} stderr"), &out.stderr, &secrets);
    }
    let state = cfg.path().parent().unwrap().join("state");
    for f in files_under(&state)
        .iter()
        .chain(files_under(incidents.path()).iter())
    {
        assert_clean(
            &f.display().to_string(),
            &std::fs::read(f).unwrap(),
            &secrets,
        );
    }
}
