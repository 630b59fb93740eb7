//! The runbook end to end: the compiled-in default speaks the operator's words for the lab's
//! roles (ec2, dell, dovecot), and a runbook named in flowtest.toml replaces it for
//! `diagnose` (hints and incident drafts) and is validated by `check-config` with errors that
//! name the file, the line and the key.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flowtest::config::Config;
use flowtest::core::diagnosis::{Finding, FindingCode};
use flowtest::core::runbook::{Facts, Runbook, Subject};

fn fx(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/logs")
        .join(rel)
}

fn flowtest(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    c.env_remove("FLOWTEST_CONFIG")
        .env("FT_RUNBOOK_TEST_KEY", "0123456789abcdef0123456789abcdef");
    c.args(args).output().expect("run flowtest")
}

fn on(code: FindingCode, role: &str) -> Finding {
    Finding::new(code, Some(role), "x")
}

#[test]
fn default_runbook_keeps_the_operators_words_for_the_lab_roles() {
    let hint = |code, role| on(code, role).hint;
    assert!(hint(FindingCode::RelayAccessDenied, "ec2").starts_with(
        "Add the domain to relay_domains on the EC2 MX (postconf -e 'relay_domains = \
         <existing domains> <new domain>'), add its transport_maps line"
    ));
    assert_eq!(
        hint(FindingCode::NextHopTimeout, "ec2"),
        "The next hop does not answer: check the Tailscale link (tailscale status, tailscale \
         ping between EC2 and the Dell host) and that the Dell host and its Postfix are up, \
         then postqueue -f on the EC2 MX."
    );
    assert!(hint(FindingCode::AuthFailed, "dell").contains("check SendGrid's SASL credentials"));
    assert!(hint(FindingCode::MailboxPermissionDenied, "dovecot").contains("5000"));
    assert!(hint(FindingCode::AuthBackendError, "dovecot").contains("SQL"));
    // The same code stands for an auth socket refused by its mode: the hint says where that
    // is fixed, not only the database's credentials.
    assert!(hint(FindingCode::AuthBackendError, "dovecot").contains("unix_listener"));
    // A bounced message is not in the queue that postqueue -f flushes.
    assert!(hint(FindingCode::MailboxFull, "dovecot").contains("bounced (5.2.2)"));
    assert!(hint(FindingCode::LookupFailure, "ec2").contains("postmap"));

    // The recipient from the configuration names the domain to add.
    let f = on(FindingCode::RelayAccessDenied, "ec2");
    let facts = Facts {
        recipient: Some("bob@newdomain.test".into()),
    };
    assert!(Runbook::builtin()
        .hint(Subject::of(&f), &facts)
        .starts_with("Add newdomain.test to relay_domains on the EC2 MX"));

    // Components follow the code and the role where the finding was seen.
    let component = |code, role| {
        Runbook::builtin()
            .incident(Subject::of(&on(code, role)), &Facts::default())
            .component
    };
    assert_eq!(component(FindingCode::NextHopRefused, "ec2"), "POSTFIX");
    assert_eq!(component(FindingCode::NextHopRefused, "dell"), "DOVECOT");
    assert_eq!(component(FindingCode::NextHopTimeout, "ec2"), "TAILSCALE");
    assert_eq!(component(FindingCode::AuthFailed, "dell"), "SENDGRID");
    assert_eq!(component(FindingCode::AuthFailed, "ec2"), "POSTFIX");
    assert_eq!(component(FindingCode::AuthBackendError, "dell"), "DOVECOT");
    assert_eq!(component(FindingCode::ServiceError, "dovecot"), "DOVECOT");
    assert_eq!(component(FindingCode::ServiceError, "ec2"), "POSTFIX");
    let t = Runbook::builtin().incident(
        Subject::of(&on(FindingCode::AuthFailed, "dell")),
        &Facts::default(),
    );
    assert_eq!(t.component_title, "SendGrid");
    assert_eq!(t.impact, "Outbound mail (relay through SendGrid)");
}

/// Every text of every finding, rendered for a lab role, a role the runbook does not know and
/// no role at all (placeholders then read as their neutral phrase, "the relay"), reads as
/// English: no word doubled where a text's own article meets a placeholder's ("the the relay").
#[test]
fn default_runbook_texts_never_double_a_word() {
    let doubled = |text: &str| {
        let words: Vec<String> = text
            .split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .collect();
        words
            .windows(2)
            .find(|w| !w[0].is_empty() && w[0] == w[1])
            .map(|w| w[0].clone())
    };
    for code in FindingCode::ALL {
        for role in [
            Some("ec2"),
            Some("dell"),
            Some("dovecot"),
            Some("mx9"),
            None,
        ] {
            let f = Finding::new(code, role, "x");
            let t = Runbook::builtin().incident(Subject::of(&f), &Facts::default());
            for (field, text) in [
                ("hint", &t.hint),
                ("impact", &t.impact),
                ("symptoms", &t.symptoms),
                ("root_cause", &t.root_cause),
                ("prevention", &t.prevention),
                ("related", &t.related),
            ] {
                assert_eq!(doubled(text), None, "{code:?} at {role:?}, {field}: {text}");
            }
            assert_eq!(doubled(&f.hint), None, "{code:?} at {role:?}: {}", f.hint);
        }
    }
}

/// A host the default runbook does not describe (another name, another system's log read by
/// its own host names) gets generic advice: no text names the operator's deployment (its
/// VPN, its hosts, its database, its mail store's uid), and only the provider's own findings
/// (the SendGrid API a probe was sent through) name SendGrid. The lab's roles keep the words.
#[test]
fn default_runbook_names_the_deployment_only_for_its_own_roles() {
    let deployment = [
        "Tailscale",
        "Dell",
        "EC2",
        "MariaDB",
        "5000",
        "docker compose",
    ];
    for code in FindingCode::ALL {
        let provider =
            code.as_str().starts_with("provider_") || code.as_str() == "message_too_large";
        let f = Finding::new(code, Some("mail.example.net"), "x");
        let t = Runbook::builtin().incident(Subject::of(&f), &Facts::default());
        for text in [
            &f.hint,
            &t.impact,
            &t.symptoms,
            &t.root_cause,
            &t.prevention,
            &t.related,
        ] {
            let named = deployment.iter().find(|w| text.contains(*w));
            assert_eq!(named, None, "{code:?}: {text}");
            if !provider {
                assert!(!text.contains("SendGrid"), "{code:?}: {text}");
            }
        }
        assert!(t.component_title != "Tailscale", "{code:?}");
    }
    let on = |code, role| Finding::new(code, Some(role), "x").hint;
    assert!(on(FindingCode::NextHopTimeout, "ec2").contains("Tailscale"));
    // ec2's own log about another server than dell (an Internet MX a bounce goes to) gets the
    // generic words too (ec2 is still named by its name); a peer over Tailscale keeps them.
    let peer = |code, peer: &str| {
        let mut f = Finding::new(code, Some("ec2"), "x");
        f.peer = Some(peer.to_owned());
        Runbook::builtin().hint(Subject::of(&f), &Facts::default())
    };
    for code in [
        FindingCode::NextHopTimeout,
        FindingCode::NextHopRefused,
        FindingCode::NextHopUnreachable,
    ] {
        let h = peer(code, "alt1.gmail-smtp-in.l.google.com[142.250.1.27]");
        let named = ["Tailscale", "Dell", "MariaDB", "docker compose"]
            .iter()
            .find(|w| h.contains(*w));
        assert_eq!(named, None, "{code:?}: {h}");
        let h = peer(code, "100.64.0.2[100.64.0.2]");
        assert!(
            h.contains("Tailscale") || h.contains("Dell"),
            "{code:?}: {h}"
        );
    }
    assert!(on(FindingCode::NextHopTimeout, "mail").contains("firewall"));
    assert!(on(FindingCode::RecipientUnknown, "dell").contains("MariaDB"));
    assert!(on(FindingCode::RecipientUnknown, "mail").contains("virtual_mailbox_maps"));
}

/// A config dir with no scenarios; `runbook` is written beside flowtest.toml when given.
fn setup(runbook: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("scenarios")).unwrap();
    let mut cfg = format!(
        "state_dir = {:?}\n",
        dir.path().join("state").display().to_string()
    );
    if let Some(rb) = runbook {
        fs::create_dir(dir.path().join("site")).unwrap();
        fs::write(dir.path().join("site/runbook.toml"), rb).unwrap();
        cfg.push_str("runbook = \"site/runbook.toml\"\n");
    }
    cfg.push_str("[probe]\ndomain = \"probe.test\"\nkey_env = \"FT_RUNBOOK_TEST_KEY\"\n");
    fs::write(dir.path().join("flowtest.toml"), cfg).unwrap();
    dir
}

const SITE: &str = r#"
[roles.ec2]
name = "the gateway"

[components]
GATEWAY = "Gateway"

[finding.relay_access_denied]
hint = "Ask the mail team to relay the domain on {role} (seen at {stage})."
component = "GATEWAY"
issue_type = "RELAY_REFUSED"
"#;

#[test]
fn configured_runbook_replaces_the_default_in_diagnose() {
    let dir = setup(Some(SITE));
    let cfg = dir.path().join("flowtest.toml");
    let config = Config::load(&cfg).unwrap();
    assert!(config.runbook.describes(FindingCode::RelayAccessDenied));
    assert!(!config.runbook.describes(FindingCode::DnsError));

    let inc = dir.path().join("incidents");
    let src = format!(
        "ec2={}",
        fx("postfix-maillog/relay-denied/ec2.log").display()
    );
    let o = flowtest(&[
        "--config",
        cfg.to_str().unwrap(),
        "diagnose",
        "--year",
        "2025",
        "--format",
        "json",
        "--incident",
        inc.to_str().unwrap(),
        &src,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let hints: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["hint"].as_str().unwrap())
        .collect();
    assert!(!hints.is_empty());
    for h in hints {
        assert_eq!(
            h,
            "Ask the mail team to relay the domain on the gateway (seen at ec2)."
        );
    }
    let draft = fs::read_to_string(inc.join("GATEWAY_RELAY_REFUSED_2025-11-05.md")).expect("draft");
    assert!(draft.starts_with("# [Gateway] [Relay Refused]"), "{draft}");
    assert!(!draft.contains("EC2") && !draft.contains("Dell"), "{draft}");
}

#[test]
fn check_config_names_the_runbook_file_line_and_key() {
    let dir = setup(Some(
        "[finding.dns_error]\nhint = \"x\"\nseverity = \"high\"\ncolour = \"red\"\n",
    ));
    let cfg = dir.path().join("flowtest.toml");
    let o = flowtest(&["--config", cfg.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("site/runbook.toml:4:"), "{err}");
    assert!(err.contains("colour"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let dir = setup(Some("[finding.dns_error]\nhint = \"fix {dns_server}\"\n"));
    let cfg = dir.path().join("flowtest.toml");
    let o = flowtest(&["--config", cfg.to_str().unwrap(), "check-config"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("runbook.toml:2: finding.dns_error.hint: unknown placeholder {dns_server}"),
        "{err}"
    );

    // A runbook that does not exist is named too.
    let dir = setup(None);
    let cfg = dir.path().join("flowtest.toml");
    let src = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("runbook = \"missing.toml\"\n{src}")).unwrap();
    let e = Config::load(&cfg).unwrap_err().to_string();
    assert!(
        e.contains("missing.toml") && e.contains("cannot read runbook"),
        "{e}"
    );

    // A valid one passes, and without `runbook` the built-in one is used.
    let dir = setup(Some(SITE));
    let o = flowtest(&[
        "--config",
        dir.path().join("flowtest.toml").to_str().unwrap(),
        "check-config",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let config = Config::load(&setup(None).path().join("flowtest.toml")).unwrap();
    assert_eq!(&config.runbook, Runbook::builtin());
}

#[test]
fn an_oversized_runbook_is_refused() {
    let big = format!("# {}\n", "x".repeat(2 << 20));
    let dir = setup(Some(&big));
    let e = Config::load(&dir.path().join("flowtest.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("runbook.toml") && e.contains("larger than"),
        "{e}"
    );
}

/// The README's example runbook parses and renders as it says.
#[test]
fn readme_example_runbook_is_valid() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```toml\n# runbook.toml\n")
        .expect("example in README")
        + 8;
    let len = readme[start..].find("```").unwrap();
    let rb = Runbook::parse(&readme[start..start + len]).unwrap();
    let f = Finding::new(FindingCode::NextHopTimeout, Some("mx"), "x");
    assert_eq!(
        rb.hint(Subject::of(&f), &Facts::default()),
        "Check the VPN between the gateway and store, then postqueue -f on the gateway."
    );
    let f = Finding::new(FindingCode::NextHopTimeout, Some("store"), "x");
    assert_eq!(
        rb.incident(Subject::of(&f), &Facts::default()).component,
        "STORE"
    );
    // A peer that is not where mx's next hop is reached takes the other roles' hint.
    let mut f = Finding::new(FindingCode::NextHopTimeout, Some("mx"), "x");
    f.peer = Some("mx.example[192.0.2.1]".into());
    assert_eq!(
        rb.hint(Subject::of(&f), &Facts::default()),
        "Check the network path from the gateway to the next server, then postqueue -f on the gateway."
    );
    f.peer = Some("store.example".into());
    assert!(rb.hint(Subject::of(&f), &Facts::default()).contains("VPN"));
}
