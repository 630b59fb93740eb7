//! `flowtest diagnose` end to end: the real binary on fixture logs in temp dirs. Exit codes
//! (0 no failure, 2 failed messages, 3 unreadable input / bad arguments), one-line errors,
//! JSON shape, filters, year inference from the file time, and incident drafts that never
//! overwrite.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtest"));
    c.env_remove("FLOWTEST_CONFIG");
    c
}

fn fx(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/logs")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    bin().arg("diagnose").args(args).output().unwrap()
}

fn src(role: &str, rel: &str) -> String {
    format!("{role}={}", fx(rel).display())
}

#[test]
fn delivered_logs_exit_zero_with_human_summary() {
    let o = run(&[
        "--year",
        "2025",
        &src("provider", "classic-syslog/delivered-3hop/provider.log"),
        &src("ec2", "classic-syslog/delivered-3hop/ec2.log"),
        &src("dell", "classic-syslog/delivered-3hop/dell.log"),
        &src("dovecot", "classic-syslog/delivered-3hop/dovecot.log"),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("summary: 2 message(s): 2 delivered"), "{out}");
    assert!(out.contains("source ec2 ("), "{out}");
    // The cron line is another program's, not a line flowtest failed to read.
    assert!(
        out.contains("16 lines, 15 parsed, 1 of other programs, 0 unknown"),
        "{out}"
    );
}

#[test]
fn relay_denied_exits_two_with_json_findings_and_hint() {
    let o = run(&[
        "--year",
        "2025",
        "--format",
        "json",
        &src("provider", "postfix-maillog/relay-denied/provider.log"),
        &src("ec2", "postfix-maillog/relay-denied/ec2.log"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    let msgs = v["messages"].as_array().unwrap();
    let statuses: Vec<&str> = msgs.iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["bounced", "delivered", "rejected"]);
    let f = &msgs[0]["findings"][0];
    assert_eq!(f["code"], "relay_access_denied");
    assert_eq!(f["host"], "ec2");
    assert_eq!(f["message_id"], "<ft-0195f3b0-11aa@flowtest.provider.test>");
    assert!(f["hint"].as_str().unwrap().contains("relay_domains"));
    assert_eq!(f["evidence"].as_array().unwrap().len(), 2);
    let hop = &msgs[0]["hops"][0];
    for k in [
        "host",
        "queue_id",
        "status",
        "relay",
        "delay_ms",
        "arrived_at",
        "left_at",
    ] {
        assert!(hop.get(k).is_some(), "hop lacks {k}: {hop}");
    }
    assert_eq!(v["summary"]["failed"], 2);
    assert!(v["findings"].as_array().unwrap().len() >= 2);
    assert_eq!(v["sources"][1]["name"], "ec2");
}

#[test]
fn unreadable_input_exits_three_with_one_line_error() {
    let o = run(&["ec2=/nonexistent/flowtest/ec2.log"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("flowtest: cannot read /nonexistent/flowtest/ec2.log"),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let o = run(&[dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
}

/// A short excerpt in a layout flowtest does not know is not "nothing failed": exit 3, naming
/// the source and quoting its first unread line (a tried password redacted, controls escaped).
/// A short log of Postfix lines in a known layout that flowtest does not read stays exit 0.
#[test]
fn a_short_excerpt_in_an_unknown_layout_exits_three_quoting_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let pasted = dir.path().join("pasted.txt");
    let lines =
        "[13/Mar 10:59] auth: passwd(bob): Password mismatch (given password: s3cret)\x1b[0m\n\
                 [13/Mar 10:59] postfix/smtp: 1A2B3C4D5E: to=<a@b.test>, status=sent\n\n";
    fs::write(&pasted, lines).unwrap();
    let o = run(&["--format", "json", &format!("mx={}", pasted.display())]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is not a mail log flowtest reads: none of its 3 lines"),
        "{err}"
    );
    assert!(err.contains("2 are in no log layout flowtest knows, the first: \"[13/Mar 10:59] auth: passwd(bob): Password mismatch (given password: <redacted>)"), "{err}");
    assert!(!err.contains("s3cret") && !err.contains('\x1b'), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let source = &report["sources"][0];
    assert_eq!(
        (source["no_layout"].as_u64(), source["unknown"].as_u64()),
        (Some(2), Some(3))
    );
    assert!(!source["no_layout_sample"]
        .as_str()
        .unwrap()
        .contains("s3cret"));

    let unread = dir.path().join("unread.log");
    let line = "Nov  4 06:00:00 mx postfix/smtpd[1]: a message flowtest does not read\n";
    fs::write(&unread, line.repeat(3)).unwrap();
    let o = run(&[&format!("mx={}", unread.display())]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 unknown ["),
        "{o:?}"
    );
}

#[test]
fn bad_arguments_exit_three_before_reading() {
    let log = fx("classic-syslog/delivered-3hop/ec2.log");
    let log = log.to_str().unwrap();
    for args in [
        vec!["--since", "yesterday", log],
        vec!["--until", "2025-13-01", log],
        vec!["--since", "2025-11-05", "--until", "2025-11-04", log],
        vec!["--tz", "Europe/Atlantis", log],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("flowtest: "), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn filters_and_window() {
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "--year".into(),
            "2025".into(),
            "--format".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        for (r, f) in [
            ("ec2", "ec2.log"),
            ("dell", "dell.log"),
            ("dovecot", "dovecot.log"),
        ] {
            a.push(src(r, &format!("classic-syslog/delivered-3hop/{f}")));
        }
        a
    };
    let json = |a: Vec<String>| -> serde_json::Value {
        let o = bin().arg("diagnose").args(&a).output().unwrap();
        assert_eq!(o.status.code(), Some(0));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v = json(args(&["--rcpt", "postmaster@corp.test"]));
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["message_id"], "<CAF=x9k2QnR@mail.provider.test>");
    // Filtered output carries the message's log lines.
    assert!(m[0]["lines"].as_array().unwrap().len() >= 10);

    let v = json(args(&["--until", "2025-11-04T18:12:35Z"]));
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    let skipped: u64 = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["out_of_window"].as_u64().unwrap())
        .sum();
    assert!(skipped > 0);

    let o = bin()
        .args(["diagnose", "--year", "2025", "--message-id", "<nope@x>"])
        .arg(fx("classic-syslog/delivered-3hop/ec2.log"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no log line mentions message-id <nope@x>"));
}

#[test]
fn year_comes_from_the_file_time_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ec2.log");
    fs::copy(fx("classic-syslog/delivered-3hop/ec2.log"), &p).unwrap();
    // Written early in January 2026: November lines belong to 2025.
    let jan = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_571_200); // 2026-01-05
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(jan)
        .unwrap();
    let o = bin()
        .args(["diagnose", "--format", "json"])
        .arg(&p)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sources"][0]["name"], "ec2");
    let t = v["messages"][0]["hops"][0]["arrived_at"].as_str().unwrap();
    assert!(t.starts_with("2025-11-04T18:12:30"), "{t}");
}

#[test]
fn incident_drafts_are_written_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let inc = dir.path().join("incidents");
    let args = [
        "--year".to_string(),
        "2025".into(),
        "--incident".into(),
        inc.display().to_string(),
        src("provider", "postfix-maillog/relay-denied/provider.log"),
        src("ec2", "postfix-maillog/relay-denied/ec2.log"),
    ];
    let o = bin().arg("diagnose").args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let first = inc.join("POSTFIX_RELAY_ACCESS_DENIED_2025-11-05.md");
    let body = fs::read_to_string(&first).unwrap();
    for s in [
        "# [Postfix] [Relay Access Denied]",
        "**Date:** 2025-11-05",
        "## Symptoms",
        "## Root Cause",
        "## Resolution Steps",
        "## Prevention",
        "## Related Documents",
        "NOQUEUE: reject: RCPT from smtp.provider.test",
        "<ft-0195f3b0-11aa@flowtest.provider.test>",
        "postmap",
    ] {
        assert!(body.contains(s), "missing {s:?} in\n{body}");
    }
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrote draft incident"));
    // A person edits the draft; a second run must not touch it.
    fs::write(&first, "edited by hand").unwrap();
    let o = bin().arg("diagnose").args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(fs::read_to_string(&first).unwrap(), "edited by hand");
    assert!(inc
        .join("POSTFIX_RELAY_ACCESS_DENIED_2025-11-05_2.md")
        .exists());
}

#[test]
fn dovecot_auth_errors_draft_the_runbook_incident() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["diagnose", "--year", "2025", "--incident"])
        .arg(dir.path())
        .arg(src("dell", "dovecot-log/auth-sql-error/dovecot.log"))
        .output()
        .unwrap();
    // No message failed, but Dovecot's auth backend is broken: a warning (1), not "all well".
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("finding auth_backend_error at dell (3x)"),
        "{out}"
    );
    assert!(
        out.contains("(1 host finding(s) about the servers' own services: see above)"),
        "{out}"
    );
    assert!(dir
        .path()
        .join("DOVECOT_AUTH_FAILURE_2025-11-06.md")
        .exists());
    assert!(dir
        .path()
        .join("DOVECOT_LOGIN_FAILURE_2025-11-06.md")
        .exists());
}

/// A central syslog server's file (every host's lines in one, by time), given without a name:
/// each line stands for the host it names, as when each host's log is given apart; given a
/// name, every line stands for that name.
#[test]
fn a_central_syslog_file_reads_as_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = ["provider", "ec2", "dell", "dovecot"]
        .iter()
        .flat_map(|f| {
            let text = fs::read_to_string(fx(&format!("classic-syslog/delivered-3hop/{f}.log")));
            text.unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    // One day: the stamp's text sorts as its time.
    lines.sort_by(|a, b| a[..15].cmp(&b[..15]));
    let central = dir.path().join("central.log");
    fs::write(&central, lines.join("\n") + "\n").unwrap();
    let hops = |args: &[&str]| {
        let o = run(&[&["--year", "2025", "--format", "json"], args].concat());
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let hops = m["hops"].as_array().unwrap().iter();
                let mut hops: Vec<String> = hops
                    .map(|h| format!("{}:{}:{}", h["host"], h["status"], h["queue_id"]))
                    .collect();
                // Each hand-off is followed to the next host's entry: no note that the queue
                // id it names is missing from the logs.
                hops.extend(m["notes"].as_array().unwrap().iter().map(|n| n.to_string()));
                hops
            })
            .collect::<Vec<_>>()
    };
    let by_host = hops(&[central.to_str().unwrap()]);
    assert_eq!(
        by_host[0],
        [
            r#""smtp":"sent":"4dJHx72Wm3z1Pq""#,
            r#""mx":"sent":"5C2E81A0F3""#,
            r#""dell":"sent":"8A1B3C4D5E""#,
            r#""dell":"saved":null"#,
        ]
    );
    // The same hops as the four logs given apart, each named after its host.
    let apart = hops(&[
        &src("smtp", "classic-syslog/delivered-3hop/provider.log"),
        &src("mx", "classic-syslog/delivered-3hop/ec2.log"),
        &src("dell", "classic-syslog/delivered-3hop/dell.log"),
        &src("dell", "classic-syslog/delivered-3hop/dovecot.log"),
    ]);
    assert_eq!(by_host, apart);
    // Named, the file is one stage; its hand-offs are not linked (a queue id reused on one
    // host is not told from one), but the hops are all there, with no note of a missing one.
    let named = hops(&[&format!("central={}", central.display())]);
    assert_eq!(named.len(), 2, "{named:?}");
    for (m, apart) in named.iter().zip(&apart) {
        assert_eq!(m.len(), apart.len(), "{named:?}");
        assert!(
            m.iter().all(|h| h.starts_with(r#""central":"#)),
            "{named:?}"
        );
    }
}

/// A recipient's own `status=expired, returned to sender` line gives no reason when no
/// deferral came before it: the hop prints no empty `reason:` line for it.
#[test]
fn an_expiry_without_a_reason_prints_no_empty_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mx.log");
    fs::write(
        &log,
        "Mar  3 08:10:00 mx postfix/qmgr[1]: 6C5D4E3F2A: from=<a@corp.test>, size=900, nrcpt=1 (queue active)\n\
         Mar  3 08:10:00 mx postfix/qmgr[1]: 6C5D4E3F2A: to=<d@gone.example>, relay=none, delay=432000, delays=432000/0/0/0, dsn=4.4.1, status=expired, returned to sender\n\
         Mar  3 08:10:00 mx postfix/qmgr[1]: 6C5D4E3F2A: removed\n",
    )
    .unwrap();
    let o = run(&["--year", "2025", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(" expired "), "{out}");
    assert!(
        !out.lines().any(|l| l.trim_end().ends_with("reason:")),
        "{out}"
    );
}

#[test]
fn each_recipient_of_a_mixed_hop_is_printed_with_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mx.log");
    fs::write(
        &log,
        "Oct  1 12:18:15 mx postfix/qmgr[3]: 72FEB28781: from=<a@ext.example.org>, size=885, nrcpt=2 (queue active)\n\
         Oct  1 12:18:16 mx postfix/smtp[4]: 72FEB28781: to=<nobody@corp.test>, relay=100.64.0.2[100.64.0.2]:25, delay=1.3, delays=0.29/0.03/0.63/0.36, dsn=5.1.1, status=bounced (host 100.64.0.2[100.64.0.2] said: 550 5.1.1 <nobody@corp.test>: User unknown (in reply to RCPT TO command))\n\
         Oct  1 12:18:16 mx postfix/smtp[4]: 72FEB28781: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:25, delay=1.5, delays=0.29/0.03/0.63/0.56, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 43EC973143)\n\
         Oct  1 12:18:16 mx postfix/qmgr[3]: 72FEB28781: removed\n",
    )
    .unwrap();
    let o = run(&["--year", "2025", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    // The bounced one's reason is the hop's, printed once above; the sent one's is its own.
    assert!(
        lines.contains(&"recipient <nobody@corp.test>: bounced (5.1.1)"),
        "{out}"
    );
    assert!(
        lines.contains(
            &"recipient <alice@corp.test>: sent (2.0.0) 250 2.0.0 Ok: queued as 43EC973143"
        ),
        "{out}"
    );
    assert_eq!(
        out.matches("User unknown").count(),
        3,
        "the hop's reason, the finding and its line: {out}"
    );
}

/// A Berlin log through the night its clock goes back (26 October 2025: wall 02:00-02:59 at
/// +02:00, then again at +01:00), one delivered message a second, its Message-ID naming the
/// UTC second it was logged in. 8 MB: `--since` enters it by a binary search.
fn berlin_fold_log(path: &Path) {
    use chrono::{TimeDelta, TimeZone, Utc};
    use std::io::Write;
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let start = Utc.with_ymd_and_hms(2025, 10, 25, 22, 0, 0).unwrap();
    let second_pass = Utc.with_ymd_and_hms(2025, 10, 26, 1, 0, 0).unwrap();
    for i in 0..5 * 3600 {
        let at = start + TimeDelta::seconds(i);
        let offset = if at < second_pass { 2 } else { 1 };
        let w = (at + TimeDelta::hours(offset)).format("%b %d %H:%M:%S");
        let (q, label) = (format!("{i:010X}"), at.format("%H%M%S"));
        for rest in [
            "client=a.example[192.0.2.1]".to_string(),
            format!("message-id=<{label}.{i}@x>"),
            "from=<a@x>, size=100, nrcpt=1 (queue active)".to_string(),
            "to=<b@y>, relay=y[192.0.2.2]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 ok)".to_string(),
            "removed".to_string(),
        ] {
            writeln!(f, "{w} mx postfix/qmgr[3]: {q}: {rest}").unwrap();
        }
    }
}

#[test]
fn since_in_the_second_pass_of_a_fold_finds_that_passs_messages() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mail.log");
    berlin_fold_log(&p);
    // 01:30 UTC is wall 02:30 in the second pass; 00:30 UTC the same wall time in the first.
    for (since, label) in [
        ("2025-10-26T01:30:00Z", "0130"),
        ("2025-10-26T00:30:00Z", "0030"),
    ] {
        let until = since.replace(":30:00Z", ":30:59Z");
        let o = bin()
            .args([
                "diagnose",
                "--format",
                "json",
                "--year",
                "2025",
                "--tz",
                "Europe/Berlin",
            ])
            .args(["--since", since, "--until", &until])
            .arg(format!("ec2={}", p.display()))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let ids: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["message_id"].as_str())
            .collect();
        assert_eq!(ids.len(), 60, "{since}: {ids:?}");
        assert!(
            ids.iter().all(|id| id.starts_with(&format!("<{label}"))),
            "{since}: {ids:?}"
        );
        assert!(
            v["sources"][0]["skipped_bytes"].as_u64().unwrap() > 0,
            "{since}: no seek"
        );
    }
}

/// Host findings of a client's doing (a wrong password) leave the exit code at 0: a real server's
/// log always holds some. A fault of the servers' own services makes it 1, but not in a run
/// filtered to one message, whose exit code tells that message's fate.
#[test]
fn only_the_servers_own_faults_make_the_exit_code_warn() {
    let dir = tempfile::tempdir().unwrap();
    let client_only = dir.path().join("client.log");
    fs::write(
        &client_only,
        "Nov 06 11:00:10 auth: passwd-file(bob@corp.test,198.18.3.1,<Zm9vYmFyYmF6MQ>): Password mismatch\n\
         Nov 06 11:00:12 imap-login: Info: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<bob@corp.test>, method=PLAIN, rip=198.18.3.1, lip=198.18.3.2, TLS, session=<Zm9vYmFyYmF6MQ>\n",
    )
    .unwrap();
    let o = bin()
        .args(["diagnose", "--year", "2025", "--format", "json"])
        .arg(format!("dell={}", client_only.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("imap_auth_failed"), "{out}");
    assert!(!out.contains("server_faults"), "{out}");
    assert_eq!(o.status.code(), Some(0), "{out}");

    let broken = src("dell", "dovecot-log/auth-sql-error/dovecot.log");
    let o = bin()
        .args(["diagnose", "--year", "2025", "--format", "json", &broken])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\"server_faults\":1"), "{out}");
    assert_eq!(o.status.code(), Some(1), "{out}");
    // A message delivered at dell while its auth backend was failing: filtered to it, the run
    // shows the host finding around it but exits by the message's fate.
    let postfix = dir.path().join("dell-postfix.log");
    fs::write(
        &postfix,
        "Nov 06 11:00:00 dell postfix/smtpd[100]: 4ABC123DEF: client=ec2[100.64.0.1]\n\
         Nov 06 11:00:00 dell postfix/cleanup[101]: 4ABC123DEF: message-id=<ok-1@provider.test>\n\
         Nov 06 11:00:00 dell postfix/qmgr[102]: 4ABC123DEF: from=<x@provider.test>, size=300, nrcpt=1 (queue active)\n\
         Nov 06 11:00:01 dell postfix/lmtp[103]: 4ABC123DEF: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.1, delays=0.01/0/0.05/0.04, dsn=2.0.0, status=sent (250 2.0.0 <alice@corp.test> Saved)\n\
         Nov 06 11:00:01 dell postfix/qmgr[102]: 4ABC123DEF: removed\n",
    )
    .unwrap();
    let postfix = format!("dell={}", postfix.display());
    let o = bin()
        .args(["diagnose", "--year", "2025", &postfix, &broken])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = bin()
        .args([
            "diagnose",
            "--year",
            "2025",
            "--message-id",
            "<ok-1@provider.test>",
        ])
        .args([&postfix, &broken])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(out.contains("delivered"), "{out}");
    assert!(out.contains("finding auth_backend_error at dell"), "{out}");
    assert_eq!(o.status.code(), Some(0), "{out}");
}

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
