//! Stage naming: owns the scenario's expected-path matchers (`[[path]]` tables), their validation,
//! and labelling traced hops with stage names. It does not load scenario files (the config module
//! embeds `Vec<StageMatcher>`) and does not touch timestamps.
//!
//! # Matching algorithm
//! Hops are visited oldest first; stages are kept in their configured order with a cursor `next`
//! (initially 0). For each hop, the stages `next..` are tried in order and the first one whose
//! conditions *all* hold labels the hop; the cursor then moves just past that stage. So:
//! - each stage labels at most one hop, and labels are monotonic: a hop can never receive a stage
//!   that comes before one already assigned (an out-of-order hop stays unlabelled);
//! - a hop that matches nothing after the cursor keeps `stage: null` (e.g. a second hop by the
//!   same host, such as an amavis re-injection on the MX, after the MX stage was used);
//! - matching is greedy: stages skipped over by a later match can no longer be matched;
//! - required stages (`optional = false`) never matched are reported as missing, in path order;
//! - a hop left unlabelled that Gmail or SendGrid wrote then takes its built-in name
//!   (`gmail-mx`, `sendgrid-filter`...; see `providers`), unless the path has a stage of that name.
//!
//! # Conditions
//! Every given condition must hold; an absent one always holds; a condition on a field the hop
//! lacks (e.g. `from_ip` on a hop without a client IP) does not hold.
//! - `by`: case-insensitive glob (`*` matches any run of characters, dots included) on the by-host.
//! - `from`: the same glob on the from-host as written, the HELO name, or the reverse-DNS name;
//!   any of them may match (Postfix writes HELO first, Exim writes the reverse name first).
//! - `from_ip`: an address or CIDR block, v4 or v6, on the client IP (IPv4-mapped v6 addresses
//!   are compared as IPv4).
//! - `protocol`: the glob on the `with` protocol as written (`ESMTP*` matches `ESMTPS`, `esmtpsa`).
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Hop;

/// One expected stage of a scenario's path (`[[path]]` in a scenario file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageMatcher {
    /// Unique stage name, e.g. `ec2-mx`.
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ip: Option<IpRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// An optional stage is never reported as missing.
    #[serde(default)]
    pub optional: bool,
    /// The host role of this stage's server log (`role` of a `[[log_source]]` in flowtest.toml):
    /// log-derived latency for that host is reported under this stage's name. Not a condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl StageMatcher {
    /// A matcher must be named and have at least one condition; globs must not be empty.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.stage.trim();
        if name.is_empty() {
            return Err("path stage has an empty `stage` name".into());
        }
        if self.by.is_none()
            && self.from.is_none()
            && self.from_ip.is_none()
            && self.protocol.is_none()
        {
            return Err(format!(
                "path stage `{name}` has no condition: give at least one of by, from, from_ip, protocol"
            ));
        }
        if self.role.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(format!("path stage `{name}`: `role` is empty"));
        }
        for (field, glob) in [
            ("by", &self.by),
            ("from", &self.from),
            ("protocol", &self.protocol),
        ] {
            if glob.as_deref().is_some_and(|g| g.trim().is_empty()) {
                return Err(format!("path stage `{name}`: `{field}` is empty"));
            }
        }
        Ok(())
    }

    /// Whether every condition of this matcher holds for `hop`.
    pub fn matches(&self, hop: &Hop) -> bool {
        let glob_on = |pattern: &Option<String>, value: Option<&str>| match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| glob_match(p, v)),
        };
        let from_ok = match &self.from {
            None => true,
            Some(p) => [&hop.from, &hop.helo, &hop.from_rdns]
                .into_iter()
                .flatten()
                .any(|v| glob_match(p, v.trim_start_matches('[').trim_end_matches(']'))),
        };
        let ip_ok = match &self.from_ip {
            None => true,
            Some(range) => hop
                .from_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| range.contains(ip)),
        };
        glob_on(&self.by, hop.by.as_deref())
            && from_ok
            && ip_ok
            && glob_on(&self.protocol, hop.protocol.as_deref())
    }
}

/// Validate a whole path: every matcher, and stage names unique (case-insensitive).
pub fn validate_path(path: &[StageMatcher]) -> Result<(), String> {
    for (i, m) in path.iter().enumerate() {
        m.validate()?;
        if path[..i]
            .iter()
            .any(|o| o.stage.trim().eq_ignore_ascii_case(m.stage.trim()))
        {
            return Err(format!("path stage `{}` is named twice", m.stage.trim()));
        }
    }
    Ok(())
}

/// Label `hops` (oldest first) with stage names; return the required stages never matched.
/// See the module documentation for the algorithm.
pub fn assign_stages(hops: &mut [Hop], stages: &[StageMatcher]) -> Vec<String> {
    let mut walk = StageWalk::new(stages);
    for hop in hops.iter_mut() {
        hop.stage = walk.step(hop).map(|j| stages[j].stage.clone());
    }
    walk.missing()
}

/// [`assign_stages`] one hop at a time, oldest first: each hop takes the first matcher at or
/// after the one after the last match. Lets a trace label hops it does not hold all at once.
pub(crate) struct StageWalk<'a> {
    stages: &'a [StageMatcher],
    used: Vec<bool>,
    next: usize,
}

impl<'a> StageWalk<'a> {
    pub(crate) fn new(stages: &'a [StageMatcher]) -> Self {
        StageWalk {
            stages,
            used: vec![false; stages.len()],
            next: 0,
        }
    }

    /// The index of the matcher this hop takes, if any.
    pub(crate) fn step(&mut self, hop: &Hop) -> Option<usize> {
        let j = (self.next..self.stages.len()).find(|&j| self.stages[j].matches(hop))?;
        self.used[j] = true;
        self.next = j + 1;
        Some(j)
    }

    /// The required stages no hop took.
    pub(crate) fn missing(self) -> Vec<String> {
        self.stages
            .iter()
            .zip(self.used)
            .filter(|(m, used)| !used && !m.optional)
            .map(|(m, _)| m.stage.clone())
            .collect()
    }
}

/// Case-insensitive glob where `*` matches any run of characters (dots included). Iterative with
/// one backtrack point, so O(len(pattern) * len(text)) at worst and no recursion.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

/// An IP address or CIDR block, v4 or v6 (`198.18.0.0/15`, `2001:db8::/32`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the block. IPv4-mapped IPv6 addresses are compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid from_ip `{s}`: expected an IP address or CIDR block such as 198.18.0.0/15"
            )
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(IpRange { addr, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(from: &str, ip: &str, by: &str, proto: &str) -> Hop {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Hop {
            from: opt(from),
            from_ip: opt(ip),
            by: opt(by),
            protocol: opt(proto),
            ..Hop::default()
        }
    }

    fn stage(name: &str) -> StageMatcher {
        StageMatcher {
            stage: name.into(),
            by: None,
            from: None,
            from_ip: None,
            protocol: None,
            optional: false,
            role: None,
        }
    }

    fn by(name: &str, glob: &str) -> StageMatcher {
        StageMatcher {
            by: Some(glob.into()),
            ..stage(name)
        }
    }

    fn labels(hops: &[Hop]) -> Vec<Option<&str>> {
        hops.iter().map(|h| h.stage.as_deref()).collect()
    }

    #[test]
    fn glob() {
        assert!(glob_match("*.google.com", "mx.google.com"));
        assert!(glob_match("*.google.com", "A.B.GOOGLE.COM"));
        assert!(!glob_match("*.google.com", "google.com"));
        assert!(glob_match("mx.corp.test", "MX.corp.test"));
        assert!(!glob_match("mx.corp.test", "mx.corp.test.evil"));
        assert!(glob_match("ESMTP*", "esmtpsa"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("**", "x"));
        assert!(!glob_match("", "x"));
        // Pathological pattern stays fast (bounded backtracking).
        let text = "a".repeat(2000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(50)), &text));
    }

    #[test]
    fn ip_ranges() {
        let r: IpRange = "198.18.0.0/15".parse().unwrap();
        assert!(r.contains("198.18.1.2".parse().unwrap()));
        assert!(r.contains("198.19.255.255".parse().unwrap()));
        assert!(!r.contains("198.20.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:198.18.3.2".parse().unwrap()));
        assert!(!r.contains("2001:db8::1".parse().unwrap()));
        let r6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(r6.contains("2001:db8:1::25".parse().unwrap()));
        assert!(!r6.contains("2001:db9::1".parse().unwrap()));
        let one: IpRange = "100.64.0.1".parse().unwrap();
        assert!(one.contains("100.64.0.1".parse().unwrap()));
        assert!(!one.contains("100.64.0.2".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in [
            "",
            "198.18.0.0/33",
            "2001:db8::/129",
            "mx.corp.test",
            "1.2.3.4/x",
            "1.2.3/8",
        ] {
            let e = bad.parse::<IpRange>().unwrap_err();
            assert!(e.contains("invalid from_ip"), "{bad}: {e}");
        }
        assert_eq!(r.to_string(), "198.18.0.0/15");
    }

    #[test]
    fn validate_requires_a_condition_and_unique_names() {
        let e = stage("ec2-mx").validate().unwrap_err();
        assert!(e.contains("ec2-mx") && e.contains("no condition"), "{e}");
        assert!(stage("").validate().is_err());
        let empty_glob = StageMatcher {
            by: Some(" ".into()),
            ..stage("x")
        };
        assert!(empty_glob.validate().unwrap_err().contains("`by` is empty"));
        assert!(by("a", "mx.corp.test").validate().is_ok());
        let e = validate_path(&[by("a", "x"), by("A", "y")]).unwrap_err();
        assert!(e.contains("named twice"), "{e}");
        assert!(validate_path(&[by("a", "x"), by("b", "y")]).is_ok());
    }

    #[test]
    fn toml_shape_and_unknown_fields() {
        #[derive(Deserialize)]
        struct Scenario {
            path: Vec<StageMatcher>,
        }
        let s: Scenario = toml::from_str(
            r#"
            [[path]]
            stage = "provider-out"
            by = "smtp.provider.test"
            [[path]]
            stage = "ec2-mx"
            by = "mx.corp.test"
            from = "*.provider.test"
            from_ip = "198.18.0.0/15"
            protocol = "ESMTP*"
            [[path]]
            stage = "dell-lmtp"
            protocol = "LMTP"
            optional = true
            "#,
        )
        .unwrap();
        assert_eq!(s.path.len(), 3);
        assert_eq!(s.path[1].from_ip, Some("198.18.0.0/15".parse().unwrap()));
        assert!(s.path[2].optional && !s.path[0].optional);
        assert!(validate_path(&s.path).is_ok());

        let unknown = toml::from_str::<Scenario>("[[path]]\nstage = \"x\"\nhost = \"y\"\n");
        assert!(unknown.err().unwrap().to_string().contains("unknown field"));
        let bad_ip = toml::from_str::<Scenario>("[[path]]\nstage = \"x\"\nfrom_ip = \"nope\"\n");
        assert!(bad_ip
            .err()
            .unwrap()
            .to_string()
            .contains("invalid from_ip"));
    }

    #[test]
    fn in_order_path_labels_every_hop() {
        let mut hops = vec![
            hop(
                "client.provider.test",
                "198.18.2.10",
                "smtp.provider.test",
                "ESMTPSA",
            ),
            hop("smtp.provider.test", "198.18.2.2", "mx.corp.test", "ESMTPS"),
            hop("mx.corp.test", "100.64.0.1", "dell.corp.test", "ESMTP"),
            hop("dell.corp.test", "", "dell.corp.test", "LMTP"),
        ];
        let path = vec![
            by("provider-submission", "smtp.provider.test"),
            StageMatcher {
                from_ip: Some("198.18.0.0/15".parse().unwrap()),
                ..by("ec2-mx", "mx.corp.test")
            },
            StageMatcher {
                from_ip: Some("100.64.0.0/10".parse().unwrap()),
                ..by("dell-relay", "dell.corp.test")
            },
            StageMatcher {
                protocol: Some("lmtp".into()),
                ..stage("dell-lmtp")
            },
        ];
        let missing = assign_stages(&mut hops, &path);
        assert_eq!(
            labels(&hops),
            vec![
                Some("provider-submission"),
                Some("ec2-mx"),
                Some("dell-relay"),
                Some("dell-lmtp")
            ]
        );
        assert!(missing.is_empty());
    }

    #[test]
    fn repeated_host_gets_one_stage_only() {
        // Postfix + amavis re-injection: two hops by the MX; only the first is the MX stage.
        let mut hops = vec![
            hop("smtp.provider.test", "198.18.2.2", "mx.corp.test", "ESMTPS"),
            hop("localhost", "127.0.0.1", "mx.corp.test", "ESMTP"),
            hop("mx.corp.test", "100.64.0.1", "dell.corp.test", "ESMTP"),
        ];
        let path = vec![by("ec2-mx", "mx.corp.test"), by("dell", "dell.corp.test")];
        let missing = assign_stages(&mut hops, &path);
        assert_eq!(labels(&hops), vec![Some("ec2-mx"), None, Some("dell")]);
        assert!(missing.is_empty());
    }

    #[test]
    fn out_of_order_hop_is_not_labelled_backwards() {
        // The dell hop appears before the MX hop: once `dell` is assigned, `ec2-mx` (earlier in
        // the path) can no longer be, and is reported missing.
        let mut hops = vec![
            hop("a", "", "dell.corp.test", "ESMTP"),
            hop("b", "", "mx.corp.test", "ESMTP"),
        ];
        let path = vec![by("ec2-mx", "mx.corp.test"), by("dell", "dell.corp.test")];
        let missing = assign_stages(&mut hops, &path);
        assert_eq!(labels(&hops), vec![Some("dell"), None]);
        assert_eq!(missing, vec!["ec2-mx".to_string()]);
    }

    #[test]
    fn missing_required_and_optional_stages() {
        let mut hops = vec![hop("a", "", "mx.corp.test", "ESMTP")];
        let path = vec![
            StageMatcher {
                optional: true,
                ..by("provider", "smtp.provider.test")
            },
            by("ec2-mx", "mx.corp.test"),
            by("dell", "dell.corp.test"),
        ];
        let missing = assign_stages(&mut hops, &path);
        assert_eq!(labels(&hops), vec![Some("ec2-mx")]);
        assert_eq!(missing, vec!["dell".to_string()]);
        // No hops at all: every required stage is missing.
        assert_eq!(assign_stages(&mut [], &path), vec!["ec2-mx", "dell"]);
    }

    #[test]
    fn from_matches_helo_or_rdns_and_missing_fields_fail() {
        let mut h = hop("[192.0.2.7]", "192.0.2.7", "mx.example.com", "esmtp");
        h.helo = Some("client.provider.test".into());
        let m = StageMatcher {
            from: Some("*.provider.test".into()),
            ..stage("s")
        };
        assert!(m.matches(&h));
        let lit = StageMatcher {
            from: Some("192.0.2.7".into()),
            ..stage("s")
        };
        assert!(lit.matches(&h));
        let ip = StageMatcher {
            from_ip: Some("192.0.2.0/24".parse().unwrap()),
            ..stage("s")
        };
        assert!(ip.matches(&h));
        h.from_ip = None;
        assert!(
            !ip.matches(&h),
            "a condition on a missing field must not hold"
        );
        let proto = StageMatcher {
            protocol: Some("ESMTP".into()),
            ..stage("s")
        };
        assert!(proto.matches(&h), "protocol glob is case-insensitive");
        h.protocol = None;
        assert!(!proto.matches(&h));
    }

    #[test]
    fn greedy_wildcard_stage_takes_first_matching_hop() {
        let mut hops = vec![
            hop("a", "", "mx.corp.test", "ESMTP"),
            hop("b", "", "dell.corp.test", "ESMTP"),
        ];
        let path = vec![by("corp", "*.corp.test"), by("dell", "dell.corp.test")];
        assert!(assign_stages(&mut hops, &path).is_empty());
        assert_eq!(labels(&hops), vec![Some("corp"), Some("dell")]);
    }
}
