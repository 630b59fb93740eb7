//! Well-known provider hops named without a scenario: Gmail's and SendGrid's own Received
//! shapes get a fixed stage name when the scenario's `[[path]]` left the hop unlabelled, so a
//! trace (and the per-stage table built from it) names them the same on every message even
//! though their hosts change (`by 2002:a05:...`, `by filterdrecv-7bd4646d8d-4qk7x`). Owns the
//! recognition rules; the scenario's own matchers (`stages`) always win, and a built-in name is
//! never given when the scenario has a stage of that name (it would contradict that stage being
//! reported missing).
//!
//! Recognized, on the hop's `by` host and `with` protocol:
//! - `gmail-api`: `by gmailapi.google.com` (Gmail API sends, `with HTTPREST`).
//! - `gmail-submission`: `by smtp.gmail.com` / `smtp-relay.gmail.com` (authenticated
//!   submission, `with ESMTPSA`).
//! - `gmail-internal`: `by 2002:aXX:...` with `SMTP`: Gmail's internal hops, stamped with
//!   6to4 addresses of its 10.0.0.0/8 network.
//! - `gmail-out`: `by mail-*.google.com` (the outbound relay that hands mail to other domains).
//! - `gmail-mx`: `by mx.google.com` (Gmail's inbound MX).
//! - `sendgrid-api` / `sendgrid-smtp`: `by *ismtpd*` (SendGrid's intake, `(SG) with HTTP` for
//!   the v3 API, `with ESMTP` for the SMTP relay).
//! - `sendgrid-filter`: `by filter*.sendgrid.net` or `by filterdrecv-*` (the filter hop,
//!   written in Go's time format with no `;`).
//!
//! ARC headers (RFC 8617) are the other evidence a provider leaves: each set's `ARC-Seal` names
//! the sealer (`d=google.com`) and when it sealed (`t=`, Unix seconds), its
//! `ARC-Authentication-Results` what that hop found (`spf=pass dkim=pass`). Each of Gmail's sets
//! (sealed by google.com, or results recorded by mx.google.com) becomes one `gmail-arc: ...` note;
//! other sealers' sets are not noted.
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use chrono::DateTime;

use super::stages::{glob_match, StageMatcher};
use super::Hop;

/// The built-in stage name of a hop Gmail or SendGrid wrote, if it is one of theirs.
pub fn provider_stage(hop: &Hop) -> Option<&'static str> {
    let by = hop.by.as_deref()?.trim_end_matches('.');
    let protocol = hop.protocol.as_deref().unwrap_or("");
    let by_is = |glob: &str| glob_match(glob, by);
    if by_is("gmailapi.google.com") {
        Some("gmail-api")
    } else if by_is("smtp.gmail.com") || by_is("smtp-relay.gmail.com") {
        Some("gmail-submission")
    } else if gmail_internal(by) && protocol.eq_ignore_ascii_case("SMTP") {
        Some("gmail-internal")
    } else if by_is("mail-*.google.com") {
        Some("gmail-out")
    } else if by_is("mx.google.com") || by_is("mx.gmail.com") {
        Some("gmail-mx")
    } else if by_is("*ismtpd*") {
        Some(if glob_match("HTTP*", protocol) {
            "sendgrid-api"
        } else {
            "sendgrid-smtp"
        })
    } else if by_is("filter*.sendgrid.net") || by_is("filterdrecv-*") {
        Some("sendgrid-filter")
    } else {
        None
    }
}

/// Gmail stamps its internal hops with 6to4 addresses of 10.0.0.0/8: `2002:a05:7010:...`.
fn gmail_internal(by: &str) -> bool {
    by.parse::<Ipv6Addr>()
        .is_ok_and(|ip| ip.segments()[0] == 0x2002 && ip.segments()[1] >> 8 == 0x0a)
}

/// Give `hop` its built-in provider name when the scenario left it unlabelled and has no stage
/// of that name.
pub(crate) fn name_unlabelled(hop: &mut Hop, path: &[StageMatcher]) {
    if hop.stage.is_some() {
        return;
    }
    if let Some(name) = provider_stage(hop) {
        if !path
            .iter()
            .any(|m| m.stage.trim().eq_ignore_ascii_case(name))
        {
            hop.stage = Some(name.to_string());
        }
    }
}

/// One ARC header's value as written.
pub(crate) struct ArcHeader<'a> {
    /// `ARC-Seal`; else `ARC-Authentication-Results`.
    pub seal: bool,
    pub text: &'a str,
}

/// RFC 8617 allows instances 1 to 50; anything past that is not read.
const MAX_ARC_INSTANCE: u32 = 50;

/// What one ARC set (one instance `i=`) says.
#[derive(Default)]
struct ArcSet {
    sealer: Option<String>,
    sealed_at: Option<String>,
    chain: Option<String>,
    authserv: Option<String>,
    results: Vec<String>,
}

/// `tag=value` pairs of a seal (`;`-separated, whitespace folded away).
fn tags(text: &str) -> BTreeMap<String, String> {
    text.split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            let v: String = v.split_whitespace().collect();
            (k.trim().to_ascii_lowercase(), v)
        })
        .collect()
}

/// The instance number `i=N` that opens every ARC header.
fn instance(text: &str) -> Option<u32> {
    let first = text.split(';').next()?.trim();
    let n = first.strip_prefix("i=")?.trim().parse::<u32>().ok()?;
    (1..=MAX_ARC_INSTANCE).contains(&n).then_some(n)
}

/// One note per Gmail ARC set, oldest instance first: when it was sealed and what it recorded.
/// Headers without a readable instance are skipped.
pub(crate) fn arc_notes(headers: &[ArcHeader<'_>]) -> Vec<String> {
    let mut sets: BTreeMap<u32, ArcSet> = BTreeMap::new();
    for h in headers {
        let Some(i) = instance(h.text) else { continue };
        let set = sets.entry(i).or_default();
        if h.seal {
            let t = tags(h.text);
            set.sealer = t.get("d").map(|d| d.to_ascii_lowercase());
            set.chain = t.get("cv").cloned();
            set.sealed_at = t
                .get("t")
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        } else {
            let mut parts = h.text.split(';').skip(1).map(str::trim);
            set.authserv = parts
                .next()
                .and_then(|a| a.split_whitespace().next())
                .map(str::to_ascii_lowercase);
            set.results = parts
                .filter_map(|p| p.split_whitespace().next())
                .filter(|r| r.contains('=') && !r.starts_with('('))
                .map(str::to_string)
                .collect();
        }
    }
    sets.into_iter()
        .filter(|(_, s)| s.is_gmail())
        .map(|(i, s)| describe(i, &s))
        .collect()
}

impl ArcSet {
    fn is_gmail(&self) -> bool {
        self.sealer.as_deref() == Some("google.com")
            || self.authserv.as_deref() == Some("mx.google.com")
    }
}

fn describe(i: u32, s: &ArcSet) -> String {
    let mut out = format!("gmail-arc: ARC set i={i}");
    if let Some(d) = &s.sealer {
        out.push_str(&format!(" sealed by {d}"));
    }
    if let Some(at) = &s.sealed_at {
        out.push_str(&format!(" at {at}"));
    }
    if let Some(cv) = &s.chain {
        out.push_str(&format!(" (cv={cv})"));
    }
    if let Some(a) = &s.authserv {
        out.push_str(&format!("; {a}"));
        if !s.results.is_empty() {
            out.push_str(&format!(": {}", s.results.join(" ")));
        }
    }
    crate::text::escape_control(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(by: &str, protocol: &str) -> Hop {
        Hop {
            by: Some(by.into()),
            protocol: (!protocol.is_empty()).then(|| protocol.into()),
            ..Hop::default()
        }
    }

    #[test]
    fn gmail_and_sendgrid_hops_are_recognized_by_their_shapes() {
        for (by, protocol, want) in [
            ("gmailapi.google.com", "HTTPREST", Some("gmail-api")),
            ("smtp.gmail.com", "ESMTPSA", Some("gmail-submission")),
            ("smtp-relay.gmail.com", "ESMTPS", Some("gmail-submission")),
            (
                "2002:a05:7010:8a0c:b0:3c1:7d2e:98f4",
                "SMTP",
                Some("gmail-internal"),
            ),
            (
                "2002:a17:907:7e8e:b0:b70:c2d1:8e10",
                "SMTP",
                Some("gmail-internal"),
            ),
            ("mail-wr1-f41.google.com", "SMTP", Some("gmail-out")),
            ("mx.google.com", "ESMTPS", Some("gmail-mx")),
            ("geopod-ismtpd-3", "HTTP", Some("sendgrid-api")),
            ("geopod-ismtpd-canary-0", "ESMTP", Some("sendgrid-smtp")),
            (
                "ismtpd0006p1las1.sendgrid.net",
                "ESMTP",
                Some("sendgrid-smtp"),
            ),
            (
                "filterdrecv-7bd4646d8d-4qk7x",
                "SMTP",
                Some("sendgrid-filter"),
            ),
            (
                "filter0225p1las1.sendgrid.net",
                "SMTP",
                Some("sendgrid-filter"),
            ),
            // Look-alikes stay unnamed: another 6to4 network, an internal hop written with
            // ESMTP, Yahoo's private address, an ordinary host.
            ("2002:c000:204::1", "SMTP", None),
            ("2002:a05:7010:8a0c:b0:3c1:7d2e:98f4", "ESMTPS", None),
            ("10.197.33.76", "SMTPs", None),
            ("mx.corp.test", "ESMTPS", None),
            ("filter.corp.test", "SMTP", None),
        ] {
            assert_eq!(provider_stage(&hop(by, protocol)), want, "{by} {protocol}");
        }
        assert_eq!(provider_stage(&Hop::default()), None);
    }

    #[test]
    fn the_scenarios_names_win() {
        let path = [StageMatcher {
            stage: "sendgrid-filter".into(),
            by: Some("nothing.test".into()),
            from: None,
            from_ip: None,
            protocol: None,
            optional: false,
            role: None,
        }];
        // Labelled by the scenario: kept.
        let mut labelled = hop("geopod-ismtpd-3", "HTTP");
        labelled.stage = Some("sendgrid".into());
        name_unlabelled(&mut labelled, &path);
        assert_eq!(labelled.stage.as_deref(), Some("sendgrid"));
        // Unlabelled: the built-in name.
        let mut intake = hop("geopod-ismtpd-3", "HTTP");
        name_unlabelled(&mut intake, &path);
        assert_eq!(intake.stage.as_deref(), Some("sendgrid-api"));
        // The scenario has a stage of that name (reported missing): not given.
        let mut filter = hop("filterdrecv-7bd4646d8d-4qk7x", "SMTP");
        name_unlabelled(&mut filter, &path);
        assert_eq!(filter.stage, None);
    }

    #[test]
    fn gmails_arc_sets_become_one_note_each() {
        let notes = arc_notes(&[
            ArcHeader {
                seal: true,
                text: " i=2; a=rsa-sha256; t=1762281067; cv=pass;\r\n        d=google.com; s=arc-20240605;\r\n        b=Zm9v",
            },
            ArcHeader {
                seal: false,
                text: " i=2; mx.google.com;\r\n       dkim=pass header.i=@example.org header.s=s1;\r\n       spf=pass (google.com: domain of a@example.org designates 192.0.2.25 as permitted sender) smtp.mailfrom=a@example.org;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.org",
            },
            ArcHeader {
                seal: true,
                text: " i=1; a=rsa-sha256; s=arcselector10001; d=microsoft.com; cv=none; b=YmFy",
            },
            // Not a readable instance: skipped.
            ArcHeader {
                seal: true,
                text: " i=99; d=evil.test; t=1",
            },
        ]);
        // Microsoft's set (i=1) is not Gmail's: not noted.
        assert_eq!(
            notes,
            [
                "gmail-arc: ARC set i=2 sealed by google.com at 2025-11-04T18:31:07Z (cv=pass); mx.google.com: dkim=pass spf=pass dmarc=pass",
            ]
        );
        assert!(arc_notes(&[]).is_empty());
    }
}
