//! The server a delivery talked to, as Postfix's delivery status names it: `HOST[IP]` of
//! `connect to HOST[IP]:PORT: ...`, `host HOST[IP] said: ...`, `host HOST[IP] refused to talk
//! to me`, `conversation with HOST[IP] timed out`, `lost connection with HOST[IP]`, else of
//! the line's `relay=HOST[IP]:PORT`. A local socket (`host[private/dovecot-lmtp]`) is no
//! server on the network and gives none.

use super::FindingCode;

/// Where in a status text a server's `HOST[IP]` follows.
const MARKERS: &[&str] = &[
    "connect to ",
    "conversation with ",
    "lost connection with ",
    "host ",
];

impl FindingCode {
    /// A finding with this code is about the server its host talked to (the next hop or
    /// another server on the network), whose reply or silence it reports.
    pub fn about_peer(self) -> bool {
        matches!(
            self,
            FindingCode::NextHopTimeout
                | FindingCode::NextHopRefused
                | FindingCode::NextHopUnreachable
                | FindingCode::NextHopRelayDenied
                | FindingCode::TlsError
                | FindingCode::RateLimited
        )
    }
}

/// The server a delivery's status `reason` (else its `relay`) names, `HOST[IP]` as logged
/// (`[IP]` alone when the log gives no name).
pub fn delivery_peer(reason: &str, relay: Option<&str>) -> Option<String> {
    MARKERS
        .iter()
        .filter_map(|m| reason.find(m).map(|i| &reason[i + m.len()..]))
        .chain(relay)
        .find_map(host_and_ip)
}

/// `HOST[IP]` at the start of `s` (what follows, a port or words, is dropped), when the
/// brackets hold an address and the name has no space.
fn host_and_ip(s: &str) -> Option<String> {
    let (name, rest) = s.split_once('[')?;
    let (ip, _) = rest.split_once(']')?;
    let ip_ok = !ip.is_empty()
        && ip.len() <= 50
        && ip
            .trim_start_matches("ipv6:")
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b':'));
    let name_ok = name.len() <= 255 && !name.contains(char::is_whitespace);
    (ip_ok && name_ok).then(|| format!("{name}[{ip}]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_comes_from_the_status_text_then_the_relay() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "connect to alt1.gmail-smtp-in.l.google.com[142.250.1.27]:25: Connection timed out",
                None,
                Some("alt1.gmail-smtp-in.l.google.com[142.250.1.27]"),
            ),
            (
                "delivery temporarily suspended: connect to 100.64.0.2[100.64.0.2]:2525: Connection refused",
                Some("none"),
                Some("100.64.0.2[100.64.0.2]"),
            ),
            (
                "host mx.partner.example[203.0.113.50] said: 550 5.7.1 Unable to relay (in reply to RCPT TO command)",
                Some("mx.partner.example[203.0.113.50]:25"),
                Some("mx.partner.example[203.0.113.50]"),
            ),
            (
                "conversation with mx.example[2001:db8::25] timed out while receiving the initial server greeting",
                None,
                Some("mx.example[2001:db8::25]"),
            ),
            (
                "lost connection with [127.0.0.1] while receiving the initial server greeting",
                None,
                Some("[127.0.0.1]"),
            ),
            (
                "Cannot start TLS: handshake failure",
                Some("mx.example[192.0.2.1]:25"),
                Some("mx.example[192.0.2.1]"),
            ),
            (
                "host dell.corp.test[private/dovecot-lmtp] said: 452 4.2.2 Mailbox is full",
                Some("dell.corp.test[private/dovecot-lmtp]"),
                None,
            ),
            ("Host or domain name not found", Some("none"), None),
            ("connect to host: [unterminated", None, None),
        ];
        for (reason, relay, want) in cases {
            assert_eq!(
                delivery_peer(reason, *relay).as_deref(),
                *want,
                "{reason} {relay:?}"
            );
        }
    }
}
