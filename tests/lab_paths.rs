//! Lab path tests: real messages through the real lab (swaks to send, curl IMAP to fetch), proving
//! each mail path the project cares about, plus the lab's own guarantees (network safety, lab/run).
//! Needs the lab up (`lab/up`, or `lab/test` which does everything); fails loudly when it is not.
mod support;

use std::process::Command;
use std::time::Duration;
use support::{lab, received_headers, token};

const DELIVERY: Duration = Duration::from_secs(30);

/// Each Received header (newest first) must contain every listed fragment of its hop.
fn assert_in_order(headers: &[String], expected: &[&[&str]]) {
    assert_eq!(
        headers.len(),
        expected.len(),
        "Received headers: {headers:#?}"
    );
    for (h, hop) in headers.iter().zip(expected) {
        for e in *hop {
            assert!(h.contains(e), "expected {e:?} in Received header {h:?}");
        }
    }
}

#[test]
fn internet_to_imap_through_ec2_tailscale_dell_has_three_received_headers() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("inbound");
    let sent = lab.send_inbound(&t, "alice@corp.test", &[]);
    assert!(sent.accepted(), "MX did not accept: {}", sent.transcript);
    let msg = lab
        .wait_for_message("alice@corp.test", "INBOX", &t, DELIVERY)
        .expect("message never reached alice's INBOX");
    let received = received_headers(&msg);
    assert_in_order(
        &received,
        &[
            &["from dell.corp.test by dell.corp.test with LMTP"],
            &[
                "from mx.corp.test (unknown [100.64.0.1])",
                "by dell.corp.test (Postfix) with ESMTP",
            ],
            &[
                "(unknown [198.18.1.1])",
                "by mx.corp.test (Postfix) with ESMTP",
            ],
        ],
    );
    // The hop between them went over the Tailscale link to dell's relay port.
    let ec2_qid = sent.queue_id.unwrap();
    let line = lab
        .wait_for_log(
            "ec2-postfix.log",
            &[&format!("{ec2_qid}: to=<alice@corp.test>"), "status=sent"],
            DELIVERY,
        )
        .expect("ec2 log has no status=sent line");
    assert!(line.contains("relay=100.64.0.2[100.64.0.2]:2525"), "{line}");
    // ec2's smtpd logs the client.
    assert!(lab
        .log("ec2-postfix.log")
        .contains(&format!("{ec2_qid}: client=unknown[198.18.1.1]")));
    // Dovecot logs the delivery with microseconds and delivery time, keyed by message id.
    let dovecot = lab
        .wait_for_log(
            "dell-dovecot.log",
            &[&format!("msgid=<{t}@flowtest.lab>"), "delivery_time="],
            DELIVERY,
        )
        .expect("dell-dovecot.log has no delivery line");
    let stamp = dovecot.split(' ').next().unwrap();
    assert_eq!(stamp.len(), "2026-01-01T00:00:00.000000".len(), "{dovecot}");
}

#[test]
fn provider_submission_reaches_corp_mailbox_through_mx() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("from-provider");
    let sent = lab.submit(
        &t,
        "smtp.provider.test",
        "probe@provider.test",
        "alice@corp.test",
    );
    assert!(
        sent.accepted(),
        "provider submission failed: {}",
        sent.transcript
    );
    // swaks marks the encrypted part of the dialogue with "~>" / "<~".
    assert!(sent.transcript.contains(" ~> EHLO"), "{}", sent.transcript);
    let msg = lab
        .wait_for_message("alice@corp.test", "INBOX", &t, DELIVERY)
        .expect("message from the provider never reached alice");
    assert_in_order(
        &received_headers(&msg),
        &[
            &["by dell.corp.test with LMTP"],
            &[
                "from mx.corp.test (unknown [100.64.0.1])",
                "by dell.corp.test (Postfix)",
            ],
            &[
                "from smtp.provider.test (smtp.provider.test [198.18.2.2])",
                "by mx.corp.test (Postfix)",
            ],
            &[
                "(unknown [198.18.2.1])",
                "by smtp.provider.test (Postfix) with ESMTPSA",
            ],
        ],
    );
}

#[test]
fn dell_submission_goes_out_through_relayhost_to_provider_mailbox() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("outbound");
    let sent = lab.submit(
        &t,
        "smtp.corp.test",
        "alice@corp.test",
        "probe@provider.test",
    );
    assert!(
        sent.accepted(),
        "dell submission failed: {}",
        sent.transcript
    );
    let msg = lab
        .wait_for_message("probe@provider.test", "INBOX", &t, DELIVERY)
        .expect("outbound message never reached the provider mailbox");
    assert_in_order(
        &received_headers(&msg),
        &[
            &["by smtp.provider.test with LMTP"],
            &[
                "from dell.corp.test (dell.corp.test [198.18.3.2])",
                "by smtp.provider.test (Postfix) with ESMTPSA",
            ],
            &[
                "(unknown [198.18.3.1])",
                "by dell.corp.test (Postfix) with ESMTPSA",
            ],
        ],
    );
    // dell used the relayhost with verified TLS and SASL (the SendGrid stand-in account).
    let qid = sent.queue_id.unwrap();
    let line = lab
        .wait_for_log(
            "dell-postfix.log",
            &[&format!("{qid}: to=<probe@provider.test>"), "status=sent"],
            DELIVERY,
        )
        .expect("dell log has no status=sent line for the outbound message");
    assert!(line.contains("relay=198.18.2.2[198.18.2.2]:587"), "{line}");
    assert!(lab
        .log("dell-postfix.log")
        .contains("Verified TLS connection established to 198.18.2.2[198.18.2.2]:587"));
    assert!(lab.log("provider-postfix.log").contains(
        "client=dell.corp.test[198.18.3.2], sasl_method=PLAIN, sasl_username=probe@provider.test"
    ));
}

#[test]
fn second_hosted_domain_is_relayed_too() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("newdomain");
    let sent = lab.send_inbound(&t, "info@newdomain.test", &[]);
    assert!(sent.accepted(), "{}", sent.transcript);
    lab.wait_for_message("info@newdomain.test", "INBOX", &t, DELIVERY)
        .expect("newdomain.test message not delivered");
}

#[test]
fn mx_refuses_to_relay_other_domains_with_554() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("relay-denied");
    let sent = lab.send_inbound(&t, "someone@elsewhere.test", &[]);
    assert!(!sent.accepted());
    assert!(
        sent.transcript
            .contains("554 5.7.1 <someone@elsewhere.test>: Relay access denied"),
        "{}",
        sent.transcript
    );
    lab.wait_for_log(
        "ec2-postfix.log",
        &["NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <someone@elsewhere.test>: Relay access denied"],
        Duration::from_secs(5),
    )
    .expect("ec2 log has no NOQUEUE reject line");
}

#[test]
fn spam_marked_message_is_filed_into_junk_by_sieve() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("junk");
    let sent = lab.send_inbound(&t, "alice@corp.test", &["--header", "X-Lab-Spam: yes"]);
    assert!(sent.accepted(), "{}", sent.transcript);
    lab.wait_for_message("alice@corp.test", "Junk", &t, DELIVERY)
        .expect("spam-marked message not in Junk");
    let inbox = lab.imap_search("alice@corp.test", "INBOX", &format!("TEXT \"{t}\""));
    assert_eq!(inbox, Ok(vec![]), "spam-marked message also in INBOX");
}

#[test]
fn unknown_mailbox_bounces_with_550_5_1_1_to_the_sender() {
    let lab = lab();
    let _g = lab.healthy();
    let t = token("unknown-user");
    // The sender is the provider's mailbox, so the bounce travels the outbound path back to it.
    let sent = lab.send_inbound(&t, "nobody@corp.test", &["--from", "probe@provider.test"]);
    assert!(sent.accepted(), "{}", sent.transcript);
    lab.wait_for_log(
        "dell-postfix.log",
        &[
            "to=<nobody@corp.test>",
            "dsn=5.1.1, status=bounced",
            "User doesn't exist",
        ],
        DELIVERY,
    )
    .expect("dell did not bounce the unknown user");
    lab.wait_for_message("probe@provider.test", "INBOX", &t, DELIVERY)
        .expect("bounce never reached the sender");
}

#[test]
fn imap_tls_is_verified_against_the_lab_ca() {
    let lab = lab();
    let _g = lab.healthy();
    // With the lab CA: works on 993 (TLS) and on 143 with STARTTLS.
    let ok = lab.imap_curl("alice@corp.test", "", &[]);
    assert!(ok.status.success(), "{}", support::describe(&ok));
    let starttls = lab.run_stdin(
        &[
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            lab.dir.join("ca/ca.pem").to_str().unwrap(),
            "--config",
            "-",
            "imap://imap.corp.test/",
        ],
        format!(
            "user = \"alice@corp.test:{}\"\n",
            lab.password("alice@corp.test")
        )
        .as_bytes(),
    );
    assert!(
        starttls.status.success(),
        "{}",
        support::describe(&starttls)
    );
    // Without it (system trust store only), verification must fail: curl exit 60.
    let bad = lab.run(&["curl", "-sS", "--max-time", "10", "imaps://imap.corp.test/"]);
    assert_eq!(bad.status.code(), Some(60), "{}", support::describe(&bad));
}

#[test]
fn lab_run_keeps_stdin_stdout_exit_code_and_exports_the_lab_environment() {
    let lab = lab();
    let out = lab.run_stdin(
        &[
            "bash",
            "-c",
            "cat; echo; echo \"$FLOWTEST_LAB_DIR|$FLOWTEST_PROBE_KEY_FILE|$FLOWTEST_LAB_CA|$FLOWTEST_CONFIG\"; \
             echo \"${PATH%%:*}\"; getent hosts mx.corp.test; exit 7",
        ],
        b"from-stdin",
    );
    assert_eq!(out.status.code(), Some(7), "{}", support::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = lab.dir.display();
    let repo = lab.repo.display();
    assert!(text.starts_with("from-stdin\n"), "{text}");
    assert!(
        text.contains(&format!(
            "{dir}|{dir}/secrets/probe.key|{dir}/ca/ca.pem|{repo}/lab/flowtest.toml"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("{repo}/target/debug\n")), "{text}");
    assert!(text.contains("198.18.1.2      mx.corp.test"), "{text}");
    // The probe key is 32 random bytes, hex.
    let key = std::fs::read_to_string(lab.dir.join("secrets/probe.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(key.trim().chars().all(|c| c.is_ascii_hexdigit()));
}

fn ip4_to_u32(s: &str) -> Option<u32> {
    let parts: Vec<u8> = s
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (parts.len() == 4).then(|| u32::from_be_bytes([parts[0], parts[1], parts[2], parts[3]]))
}

/// Does `prefix` (a.b.c.d[/len]) share any address with the lab's 198.18.0.0/15 or 100.64.0.0/10?
fn overlaps_lab(prefix: &str) -> bool {
    let (addr, len) = match prefix.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().unwrap_or(32)),
        None => (prefix, 32),
    };
    let Some(a) = ip4_to_u32(addr) else {
        return false;
    };
    [("198.18.0.0", 15u32), ("100.64.0.0", 10)]
        .iter()
        .any(|(net, nlen)| {
            let l = len.min(*nlen);
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            (a & mask) == (ip4_to_u32(net).unwrap() & mask)
        })
}

#[test]
fn overlap_check_itself_works() {
    assert!(overlaps_lab("198.18.1.0/24"));
    assert!(overlaps_lab("198.19.255.255"));
    assert!(overlaps_lab("100.127.0.1/32"));
    assert!(overlaps_lab("198.0.0.0/8"));
    assert!(!overlaps_lab("192.0.2.0/24"));
    assert!(!overlaps_lab("100.128.0.0/9"));
    assert!(!overlaps_lab("198.20.0.0/16"));
}

#[test]
fn root_namespace_has_no_lab_address_route_or_link_while_the_lab_is_up() {
    let _lab = lab();
    let root = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("ip runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    for line in root(&["-4", "-o", "addr", "show"]).lines() {
        let addr = line.split_whitespace().nth(3).unwrap_or("");
        assert!(
            !overlaps_lab(addr),
            "root namespace has a lab address: {line}"
        );
    }
    for line in root(&["-4", "route", "show", "table", "all"]).lines() {
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or("");
        if matches!(
            first,
            "unicast"
                | "local"
                | "broadcast"
                | "multicast"
                | "anycast"
                | "unreachable"
                | "blackhole"
                | "prohibit"
                | "throw"
                | "nat"
        ) {
            first = words.next().unwrap_or("");
        }
        assert!(
            first == "default" || !overlaps_lab(first),
            "root namespace routes a lab prefix: {line}"
        );
    }
    // A lab address looked up from the root namespace must not resolve to a lab interface.
    let via = root(&["-4", "route", "get", "198.18.1.2"]);
    assert!(
        !via.contains("to-ec2")
            && !via.contains("tailscale0")
            && !via.contains("dev eth0 src 198.18"),
        "{via}"
    );
    for line in root(&["-o", "link", "show"]).lines() {
        let name = line.split(": ").nth(1).unwrap_or("");
        assert!(
            !name.starts_with("to-") && !name.starts_with("tailscale0"),
            "lab veth end in the root namespace: {line}"
        );
    }
}
