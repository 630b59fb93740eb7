//! A role's `next_hop_addresses`: a finding whose peer is none of them takes the other roles'
//! texts; without the addresses, or without a peer, the role's texts stand as before.

use super::*;

const SITE: &str = r#"
[roles.mx]
name = "the gateway"
next_hop = "store"
next_hop_addresses = ["100.64.0.0/10", "192.0.2.7", "Store.Example", "fd7a:115c:a1e0::/48"]

[roles.store]
name = "the mail store"

[finding.next_hop_timeout]
hint = "Check the VPN to {next_hop}."
component = "VPN"

[finding.next_hop_timeout.role.mx]
impact = "Inbound mail on {role}"

[finding.next_hop_timeout.other_roles]
hint = "Check the network path from {role} to the server."

[finding.tls_error]
hint = "Check the VPN's certificates."
"#;

fn subject(code: FindingCode, role: &'static str, peer: Option<&'static str>) -> Subject<'static> {
    Subject {
        code,
        role: Some(role),
        stage: Some(role),
        peer,
    }
}

fn hint(rb: &Runbook, role: &'static str, peer: Option<&'static str>) -> String {
    rb.hint(
        subject(FindingCode::NextHopTimeout, role, peer),
        &Facts::default(),
    )
}

const OWN: &str = "Check the VPN to the mail store.";
const OTHER: &str = "Check the network path from the gateway to the server.";

#[test]
fn the_next_hop_by_network_address_or_name_keeps_the_roles_texts() {
    let rb = Runbook::parse(SITE).unwrap();
    for peer in [
        "100.64.0.2[100.64.0.2]",
        "dell.tailnet[100.100.0.9]",
        "192.0.2.7",
        "unknown[192.0.2.7]",
        "store.example[10.9.9.9]",
        "STORE.EXAMPLE",
        "store[fd7a:115c:a1e0::2]",
    ] {
        assert_eq!(hint(&rb, "mx", Some(peer)), OWN, "{peer}");
        let t = rb.incident(
            subject(FindingCode::NextHopTimeout, "mx", Some(peer)),
            &Facts::default(),
        );
        assert_eq!(t.impact, "Inbound mail on the gateway", "{peer}");
    }
}

/// Another server (an Internet MX a bounce goes to) takes the other roles' texts, also over
/// the role's own table, then the code's where the other roles' table has none.
#[test]
fn another_server_takes_the_other_roles_texts() {
    let rb = Runbook::parse(SITE).unwrap();
    for peer in [
        "alt1.gmail-smtp-in.l.google.com[142.250.1.27]",
        "192.0.2.8[192.0.2.8]",
        "mx.store.example",
        "x[2001:db8::1]",
    ] {
        assert_eq!(hint(&rb, "mx", Some(peer)), OTHER, "{peer}");
        let t = rb.incident(
            subject(FindingCode::NextHopTimeout, "mx", Some(peer)),
            &Facts::default(),
        );
        assert_eq!(t.impact, "Mail flow", "{peer}");
        assert_eq!(t.component, "VPN", "{peer}");
    }
    // No other roles' table for the code: the code's texts.
    let s = subject(
        FindingCode::TlsError,
        "mx",
        Some("mx.example[198.51.100.1]"),
    );
    assert_eq!(
        rb.hint(s, &Facts::default()),
        "Check the VPN's certificates."
    );
}

#[test]
fn without_addresses_or_without_a_peer_nothing_changes() {
    let rb = Runbook::parse(SITE).unwrap();
    assert_eq!(hint(&rb, "mx", None), OWN);
    assert_eq!(
        hint(&rb, "store", Some("mx.example[198.51.100.1]")),
        "Check the VPN to the next hop."
    );
    assert_eq!(
        hint(&rb, "edge", Some("100.64.0.2[100.64.0.2]")),
        "Check the network path from edge to the server."
    );
    let empty = SITE.replace(
        r#"next_hop_addresses = ["100.64.0.0/10", "192.0.2.7", "Store.Example", "fd7a:115c:a1e0::/48"]"#,
        "next_hop_addresses = []",
    );
    let rb = Runbook::parse(&empty).unwrap();
    assert_eq!(hint(&rb, "mx", Some("mx.example[198.51.100.1]")), OWN);
}

/// The cache tells a peer off the next hop from one on it.
#[test]
fn cached_hints_follow_the_peer() {
    let rb = Runbook::parse(SITE).unwrap();
    let facts = Facts::default();
    let mut cache = HintCache::default();
    for _ in 0..2 {
        for peer in [
            None,
            Some("100.64.0.2[100.64.0.2]"),
            Some("mx.example[198.51.100.1]"),
        ] {
            let mut f = Finding::new(FindingCode::NextHopTimeout, Some("mx"), "m");
            f.peer = peer.map(str::to_owned);
            let want = rb.hint(Subject::of(&f), &facts);
            let mut batch = [f];
            rb.apply_cached(&mut batch, &facts, &mut cache);
            assert_eq!(batch[0].hint, want, "{peer:?}");
        }
    }
    assert_eq!(cache.kept.len(), 2);
}

#[test]
fn a_bad_address_is_an_error_naming_the_line_the_key_and_the_value() {
    for (value, says) in [
        ("\"100.64.0.0/33\"", "the prefix length must be 0 to 32"),
        ("\"100.64.0/10\"", "is not an IP address"),
        ("\"dell host\"", "\"dell host\" is not a network"),
        ("\"300.1.2.3\"", "\"300.1.2.3\" is not a network"),
    ] {
        let src = format!(
            "[roles.mx]\nname = \"a\"\nnext_hop_addresses = [\n  \"100.64.0.1\",\n  {value},\n]\n"
        );
        let e = Runbook::parse(&src).unwrap_err();
        assert_eq!(e.line, Some(5), "{value}: {e}");
        assert_eq!(e.key.as_deref(), Some("roles.mx.next_hop_addresses"), "{e}");
        assert!(e.to_string().contains(says), "{value}: {e}");
    }
    let e = Runbook::parse("[roles.mx]\nnext_hop_addresses = \"100.64.0.0/10\"\n").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}
