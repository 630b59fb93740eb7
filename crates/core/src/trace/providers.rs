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
use std::net::Ipv6Addr;

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
}
