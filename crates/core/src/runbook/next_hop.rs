//! The addresses a role's next hop is reached at (`[roles.<role>] next_hop_addresses`), and
//! whether the server a finding names (its `peer`, `HOST[IP]` as Postfix logs it) is one of
//! them. Owns the parsing of those addresses (CIDR networks, single IPs, host names) and the
//! match; the runbook decides what a mismatch means for its texts.

use std::net::IpAddr;

/// One entry of `next_hop_addresses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopAddress {
    /// A network (`100.64.0.0/10`); a single IP is a network of its full length. The address
    /// is kept with its host bits cleared.
    Net { addr: IpAddr, prefix: u8 },
    /// A host name, lower case, compared exactly.
    Name(String),
}

impl HopAddress {
    /// Parse `100.64.0.0/10`, `fd7a:115c:a1e0::/48`, `100.64.0.2`, `::1` or `dell.example`.
    /// The error says what is wrong with the value.
    pub fn parse(s: &str) -> Result<HopAddress, String> {
        let s = s.trim();
        if let Some((ip, prefix)) = s.split_once('/') {
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| format!("{s:?}: {ip:?} is not an IP address"))?;
            let max = max_prefix(addr);
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?;
            return Ok(HopAddress::Net {
                addr: masked(addr, prefix),
                prefix,
            });
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(HopAddress::Net {
                addr,
                prefix: max_prefix(addr),
            });
        }
        if is_host_name(s) {
            return Ok(HopAddress::Name(s.to_ascii_lowercase()));
        }
        Err(format!(
            "{s:?} is not a network (100.64.0.0/10), an IP address or a host name"
        ))
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match self {
            HopAddress::Net { addr, prefix } => {
                addr.is_ipv4() == ip.is_ipv4() && masked(ip, *prefix) == *addr
            }
            HopAddress::Name(_) => false,
        }
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            HopAddress::Name(n) => n.eq_ignore_ascii_case(name.trim_end_matches('.')),
            HopAddress::Net { .. } => false,
        }
    }
}

/// Whether `peer` (`HOST[IP]`, `HOST`, `IP`; an IP in brackets may carry Postfix's `ipv6:`)
/// is reached at one of `addresses`: its IP inside a network or equal to an address, or its
/// name equal to a name. Either part of `HOST[IP]` matching is enough.
pub fn peer_matches(addresses: &[HopAddress], peer: &str) -> bool {
    let (name, ip) = split_peer(peer);
    let ip = ip.or_else(|| name.and_then(parse_ip));
    addresses
        .iter()
        .any(|a| ip.is_some_and(|ip| a.matches_ip(ip)) || name.is_some_and(|n| a.matches_name(n)))
}

/// `HOST[IP]` -> the host name and the address; a bare value is a name or an address.
fn split_peer(peer: &str) -> (Option<&str>, Option<IpAddr>) {
    let peer = peer.trim();
    let Some((name, rest)) = peer.split_once('[') else {
        return match parse_ip(peer) {
            Some(ip) => (None, Some(ip)),
            None => (Some(peer).filter(|p| !p.is_empty()), None),
        };
    };
    let inside = rest.split_once(']').map_or(rest, |(i, _)| i);
    let name = Some(name).filter(|n| !n.is_empty() && *n != "unknown");
    (name, parse_ip(inside))
}

/// An address as a log writes it: IPv4, IPv6, `ipv6:`-prefixed; an IPv4-mapped IPv6 address
/// is its IPv4 one.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix("ipv6:")
        .or(s.strip_prefix("IPv6:"))
        .unwrap_or(s);
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// `addr` with the bits past `prefix` cleared.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, not all digits (that
/// would be a mistyped address), an optional final dot.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        })
        && !s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<HopAddress> {
        v.iter().map(|s| HopAddress::parse(s).unwrap()).collect()
    }

    #[test]
    fn networks_addresses_and_names_match_their_peers() {
        let a = list(&[
            "100.64.0.0/10",
            "192.0.2.7",
            "Dell.Example",
            "fd7a:115c:a1e0::/48",
        ]);
        for peer in [
            "100.64.0.2[100.64.0.2]",
            "100.127.255.255",
            "dell.tailnet[100.100.1.1]",
            "192.0.2.7",
            "unknown[192.0.2.7]",
            "dell.example[10.0.0.1]",
            "DELL.EXAMPLE.",
            "dell.example",
            "x[fd7a:115c:a1e0:ab12::1]",
            "x[ipv6:fd7a:115c:a1e0::2]",
            "x[::ffff:100.64.0.9]",
        ] {
            assert!(peer_matches(&a, peer), "{peer}");
        }
        for peer in [
            "alt1.gmail-smtp-in.l.google.com[142.250.1.27]",
            "100.128.0.1",
            "192.0.2.8[192.0.2.8]",
            "mail.dell.example[10.0.0.1]",
            "x[fd7a:115c:a1e1::1]",
            "x[2001:db8::1]",
            "",
            "[]",
        ] {
            assert!(!peer_matches(&a, peer), "{peer}");
        }
        // An IPv4 network never matches an IPv6 address of the same bits, nor the reverse.
        assert!(!peer_matches(&list(&["0.0.0.0/0"]), "x[2001:db8::1]"));
        assert!(!peer_matches(&list(&["::/0"]), "x[192.0.2.1]"));
        assert!(peer_matches(&list(&["0.0.0.0/0"]), "x[192.0.2.1]"));
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (bad, says) in [
            ("100.64.0.0/33", "0 to 32"),
            ("fd00::/129", "0 to 128"),
            ("100.64.0.0/x", "prefix length"),
            ("100.64.0/10", "not an IP address"),
            ("300.1.2.3", "not a network"),
            ("dell example", "not a network"),
            ("", "not a network"),
            ("-dell", "not a network"),
            ("dell..example", "not a network"),
        ] {
            let e = HopAddress::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(
            HopAddress::parse("100.64.1.2/10"),
            HopAddress::parse("100.64.0.0/10")
        );
        assert!(HopAddress::parse("dell_host.example.").is_ok());
    }
}
