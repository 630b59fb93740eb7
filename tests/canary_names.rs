//! `flowtest NAME` runs the scenario NAME unless NAME is a subcommand, so a scenario named like
//! one (`canary`, `doctor`, ...) could never be run that way: configuration validation refuses
//! it with a message saying so. The names are taken from the CLI's own definition, so a
//! subcommand added later is covered too.
use std::process::Command;

use clap::CommandFactory;

fn scenario(name: &str) -> String {
    format!(
        "name = \"{name}\"\n[sender]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\n\
         allow_plaintext = true\nmail_from = \"a@b.test\"\nrcpt_to = \"c@d.test\"\n\
         [receiver]\nhost = \"127.0.0.1\"\nport = 1143\ntls = \"none\"\nallow_plaintext = true\n\
         username = \"c@d.test\"\npassword_env = \"FT_PW\"\n"
    )
}

/// `flowtest check-config` on a configuration whose one scenario is `name`: (exit, stderr).
fn check(name: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flowtest.toml"),
        "state_dir = \"state\"\n[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_KEY\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(dir.path().join("scenarios/s.toml"), scenario(name)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowtest"))
        .arg("--config")
        .arg(dir.path().join("flowtest.toml"))
        .arg("check-config")
        .env_remove("FLOWTEST_CONFIG")
        .env("FT_KEY", "0123456789abcdef0123456789abcdef")
        .env("FT_PW", "pw")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_scenario_named_like_any_subcommand_is_refused_clearly() {
    let mut names: Vec<String> = flowtest::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names.push("help".into()); // clap's own
    assert!(names.iter().any(|n| n == "canary"), "{names:?}");
    for name in &names {
        let (code, err) = check(name);
        assert_eq!(code, Some(3), "{name}: {err}");
        assert!(
            err.contains(&format!("\"{name}\" is a subcommand's name"))
                && err.contains(&format!("`flowtest {name}` runs the subcommand"))
                && err.contains("s.toml")
                && err.contains("name"),
            "{name}: {err}"
        );
    }
}

#[test]
fn names_near_a_subcommand_are_fine() {
    let (code, err) = check("canary-inbound");
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check("bad name");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("use letters, digits"), "{err}");
}
