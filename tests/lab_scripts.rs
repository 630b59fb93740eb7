//! Tests of the lab scripts' own logic that need no running lab: the network-safety overlap check,
//! template rendering (every template renders completely; a leftover placeholder is an error) and
//! the apt-source host parsing the safety check relies on.
use std::path::Path;
use std::process::Command;

/// Runs a bash snippet with lab/lib.sh sourced; returns (success, stdout, stderr).
fn lib(script: &str) -> (bool, String, String) {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; source '{repo}/lab/lib.sh'; {script}"
        ))
        .env("FLOWTEST_LAB_DIR", "/nonexistent/flowtest-lab")
        .output()
        .expect("bash runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cidr_overlap_detects_every_kind_of_overlap() {
    for (a, b) in [
        ("198.18.0.0/15", "198.18.3.0/24"),
        ("198.18.3.0/24", "198.18.0.0/15"),
        ("198.0.0.0/8", "198.18.0.0/15"),
        ("198.19.1.1", "198.18.0.0/15"),
        ("100.64.0.0/10", "100.127.255.255/32"),
        ("0.0.0.0/0", "100.64.0.0/10"),
    ] {
        let (ok, _, err) = lib(&format!("cidr_overlap {a} {b}"));
        assert!(ok, "{a} and {b} overlap: {err}");
    }
    for (a, b) in [
        ("192.0.2.0/24", "198.18.0.0/15"),
        ("198.20.0.0/16", "198.18.0.0/15"),
        ("100.128.0.0/9", "100.64.0.0/10"),
        ("100.63.255.255", "100.64.0.0/10"),
    ] {
        let (ok, _, _) = lib(&format!("cidr_overlap {a} {b}"));
        assert!(!ok, "{a} and {b} do not overlap");
    }
}

#[test]
fn lab_overlaps_covers_both_lab_ranges_only() {
    assert!(lib("lab_overlaps 198.18.1.2").0);
    assert!(lib("lab_overlaps 100.64.0.2/10").0);
    assert!(!lib("lab_overlaps 192.0.2.2/24").0);
    assert!(!lib("lab_overlaps 203.0.113.7").0);
}

#[test]
fn every_template_renders_without_leftover_placeholders() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/conf");
    let mut rendered = 0;
    for host in ["ec2", "dell", "provider"] {
        let mut files: Vec<_> = std::fs::read_dir(conf.join(host))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.extend(
            [
                "main.cf.in",
                "master.cf.in",
                "dovecot.conf.in",
                "dovecot-oauth2.conf.ext.in",
            ]
            .map(|f| conf.join("common").join(f)),
        );
        for src in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "in"))
        {
            let dst = tmp.path().join(format!("{host}-{}", rendered));
            let (ok, _, err) = lib(&format!(
                "render '{}' '{}' {host}",
                src.display(),
                dst.display()
            ));
            assert!(ok, "rendering {} for {host} failed: {err}", src.display());
            let text = std::fs::read_to_string(&dst).unwrap();
            assert!(!text.contains("@LAB_DIR@"), "{text}");
            assert!(
                !text.contains("@HOST@") && !text.contains("@FQDN@") && !text.contains("@DOMAIN@"),
                "{}",
                src.display()
            );
            rendered += 1;
        }
    }
    assert!(rendered >= 12, "only {rendered} templates rendered");
    // The rendered ec2 config routes the corp domains over Tailscale to dell's relay port.
    let ec2_transport = tmp.path().join("ec2-transport");
    let (ok, _, err) = lib(&format!(
        "render '{}' '{}' ec2",
        conf.join("ec2/transport.in").display(),
        ec2_transport.display()
    ));
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(ec2_transport).unwrap();
    assert!(
        text.contains("corp.test       smtp:[100.64.0.2]:2525"),
        "{text}"
    );
}

#[test]
fn render_refuses_an_unknown_placeholder() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("bad.in");
    std::fs::write(
        &src,
        "queue_directory = @LAB_DIR@/x\nmystery = @NOT_A_VAR@\n",
    )
    .unwrap();
    let dst = tmp.path().join("bad");
    let (ok, _, err) = lib(&format!(
        "render '{}' '{}' ec2",
        src.display(),
        dst.display()
    ));
    assert!(!ok, "render accepted an unknown placeholder");
    assert!(err.contains("unrendered placeholder"), "{err}");
    assert!(!dst.exists(), "a half-rendered file was left in place");
}

#[test]
fn unknown_host_and_fault_names_fail_loudly() {
    let (ok, _, err) = lib("host_fqdn nowhere");
    assert!(!ok);
    assert!(err.contains("unknown lab host 'nowhere'"), "{err}");
    let (ok, _, err) = lib("apply_fault bogus");
    assert!(!ok);
    assert!(err.contains("unknown fault 'bogus'"), "{err}");
    let (ok, _, err) = lib("apply_fault slow-dell notanumber");
    assert!(!ok);
    assert!(err.contains("slow-dell needs a delay in seconds"), "{err}");
}
