//! What the doctor's observations mean: a DNS answer, an EHLO reply, a certificate and the TLS
//! verifier's verdict, IMAP capabilities and folders, and a hop flowtest cannot reach judged from
//! the correlated server logs. Each function turns facts the edges gathered into a
//! [`Judgement`] with its fix. No I/O; `now` is passed in.
use chrono::{DateTime, TimeDelta, Utc};

use super::hints::Hint;
use super::{Judgement, Status};
use crate::diagnosis::FindingCode;
use crate::fusion::{HopStatus, MessageChain};
use crate::runbook::{Facts, Runbook, Subject};

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    pub exchange: String,
}

/// What a DNS query answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Records(Vec<T>),
    /// The name exists but has no record of that type.
    NoRecords,
    /// The name does not exist.
    NxDomain,
    /// No usable answer (timeout, SERVFAIL, refused...).
    Failed(String),
}

/// A host name compared without case and without the root dot.
fn host_key(h: &str) -> String {
    h.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A domain's MX set, against the expected exchangers when configured. `fallback` is the
/// domain's own A/AAAA answer, looked at only when it has no MX.
pub fn mx(
    domain: &str,
    answer: &Answer<Mx>,
    expected: &[String],
    fallback: &Answer<String>,
) -> Judgement {
    match answer {
        Answer::Records(records) => {
            let mut sorted = records.clone();
            sorted.sort_by(|a, b| {
                (a.preference, host_key(&a.exchange)).cmp(&(b.preference, host_key(&b.exchange)))
            });
            let shown = sorted
                .iter()
                .map(|m| format!("{} {}", m.preference, host_key(&m.exchange)))
                .collect::<Vec<_>>()
                .join(", ");
            let mut have: Vec<String> = sorted.iter().map(|m| host_key(&m.exchange)).collect();
            let mut want: Vec<String> = expected.iter().map(|h| host_key(h)).collect();
            have.sort();
            have.dedup();
            want.sort();
            want.dedup();
            if want.is_empty() || have == want {
                Judgement::pass(format!("MX {shown}"))
            } else {
                Judgement::with(
                    Status::Fail,
                    format!("MX {shown}; expected {}", want.join(", ")),
                    Hint::MxMismatch.text(),
                )
            }
        }
        Answer::NoRecords => {
            let status = if expected.is_empty() {
                Status::Warn
            } else {
                Status::Fail
            };
            match fallback {
                Answer::Records(addrs) if !addrs.is_empty() => Judgement::with(
                    status,
                    format!(
                        "{domain} has no MX record: senders fall back to its A/AAAA address ({}) as an implicit MX (RFC 5321 5.1)",
                        addrs.join(", ")
                    ),
                    Hint::MxMissingFallback.text(),
                ),
                _ => Judgement::with(
                    Status::Fail,
                    format!("{domain} has no MX record and no A/AAAA address: mail to it cannot be delivered"),
                    Hint::NoMailHost.text(),
                ),
            }
        }
        Answer::NxDomain => Judgement::with(
            Status::Fail,
            format!("{domain} does not exist in DNS (NXDOMAIN)"),
            Hint::NxDomain.text(),
        ),
        Answer::Failed(e) => Judgement::with(
            Status::Fail,
            format!("MX query for {domain} failed: {e}"),
            Hint::DnsQueryFailed.text(),
        ),
    }
}

/// A host's A/AAAA records.
pub fn address(host: &str, answer: &Answer<String>) -> Judgement {
    match answer {
        Answer::Records(a) if !a.is_empty() => Judgement::pass(a.join(", ")),
        Answer::Records(_) | Answer::NoRecords => Judgement::with(
            Status::Fail,
            format!("{host} has no A/AAAA record"),
            Hint::NoAddress.text(),
        ),
        Answer::NxDomain => Judgement::with(
            Status::Fail,
            format!("{host} does not exist in DNS (NXDOMAIN)"),
            Hint::NxDomain.text(),
        ),
        Answer::Failed(e) => Judgement::with(
            Status::Fail,
            format!("A/AAAA query for {host} failed: {e}"),
            Hint::DnsQueryFailed.text(),
        ),
    }
}

/// What the EHLO reply offered, and what the scenario needs of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ehlo {
    pub starttls: bool,
    /// `SIZE` and its limit, when offered.
    pub size: Option<String>,
    /// `AUTH` mechanisms, when offered.
    pub auth: Option<String>,
    /// The scenario connects with STARTTLS.
    pub needs_starttls: bool,
    /// The scenario authenticates (judged on the EHLO after TLS).
    pub needs_auth: bool,
}

pub fn ehlo(e: &Ehlo) -> Judgement {
    let mut seen = Vec::new();
    if e.starttls {
        seen.push("STARTTLS".to_owned());
    }
    match &e.size {
        Some(s) if !s.is_empty() => seen.push(format!("SIZE {s}")),
        Some(_) => seen.push("SIZE".to_owned()),
        None => {}
    }
    if let Some(a) = &e.auth {
        seen.push(format!("AUTH {a}"));
    }
    let shown = if seen.is_empty() {
        "no STARTTLS, SIZE or AUTH".to_owned()
    } else {
        seen.join(", ")
    };
    if e.needs_starttls && !e.starttls {
        return Judgement::with(
            Status::Fail,
            format!("{shown}: STARTTLS is not offered"),
            Hint::NoStarttls.text(),
        );
    }
    if e.needs_auth && e.auth.is_none() {
        return Judgement::with(
            Status::Fail,
            format!("{shown}: AUTH is not offered"),
            Hint::NoAuth.text(),
        );
    }
    Judgement::pass(shown)
}

/// The TLS verifier's verdict on the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Expired,
    NotYetValid,
    WrongName,
    /// Not trusted for another reason (unknown issuer, bad signature...): the verifier's words.
    Untrusted(String),
}

/// What was seen of a TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSeen {
    /// The host name the certificate was checked against.
    pub host: String,
    /// `TLSv1.3`, `TLSv1.2`; unknown when the handshake did not finish.
    pub protocol: Option<String>,
    pub subject: Option<String>,
    pub names: Vec<String>,
    pub not_after: Option<DateTime<Utc>>,
    pub verdict: Verdict,
}

/// The runbook's fix for a finding code, with no host, stage or facts to fill in.
fn runbook_fix(runbook: &Runbook, code: FindingCode) -> String {
    runbook.hint(
        Subject {
            code,
            role: None,
            stage: None,
            peer: None,
        },
        &Facts::default(),
    )
}

/// A certificate and handshake: a failure when the verifier refused it (expired, wrong name,
/// untrusted chain), a warning when it expires within `warn_days`.
pub fn tls(t: &TlsSeen, now: DateTime<Utc>, warn_days: i64, runbook: &Runbook) -> Judgement {
    let mut facts = Vec::new();
    if let Some(p) = &t.protocol {
        facts.push(p.clone());
    }
    if let Some(s) = &t.subject {
        facts.push(format!("subject {s}"));
    }
    if !t.names.is_empty() {
        facts.push(format!("names {}", t.names.join(" ")));
    }
    let days = t.not_after.map(|na| (na - now).num_days());
    if let (Some(na), Some(d)) = (t.not_after, days) {
        facts.push(format!("expires {} ({d} days)", na.format("%Y-%m-%d")));
    }
    let seen = facts.join(", ");
    let runbook_hint = || runbook_fix(runbook, FindingCode::TlsError);
    match &t.verdict {
        Verdict::Expired => {
            let ago = days
                .map(|d| format!(" {} days ago", -d))
                .unwrap_or_default();
            Judgement::with(
                Status::Fail,
                format!("certificate expired{ago}: {seen}"),
                Hint::CertExpired.text(),
            )
        }
        Verdict::NotYetValid => Judgement::with(
            Status::Fail,
            format!("certificate not valid yet: {seen}"),
            Hint::CertExpired.text(),
        ),
        Verdict::WrongName => Judgement::with(
            Status::Fail,
            format!("certificate is not valid for {}: {seen}", t.host),
            Hint::CertWrongName.text(),
        ),
        Verdict::Untrusted(why) => Judgement::with(
            Status::Fail,
            format!("certificate chain not trusted ({why}): {seen}"),
            runbook_hint(),
        ),
        Verdict::Valid => match days {
            Some(d) if d < warn_days => Judgement::with(
                Status::Warn,
                format!("certificate expires in {d} days (warning under {warn_days}): {seen}"),
                Hint::CertExpiring.text(),
            ),
            _ => Judgement::pass(format!("chain valid, {seen}")),
        },
    }
}

/// A TLS handshake that failed before a certificate was seen.
pub fn tls_failed(why: &str, runbook: &Runbook) -> Judgement {
    let hint = runbook_fix(runbook, FindingCode::TlsError);
    Judgement::with(Status::Fail, format!("TLS handshake failed: {why}"), hint)
}

/// The IMAP capabilities flowtest relies on: IDLE (push detection; else polling) and UIDPLUS
/// (expunging only its own probes) are warnings when missing; SPECIAL-USE and CONDSTORE are
/// reported.
pub fn imap_capabilities(has: impl Fn(&str) -> bool, wants_idle: bool) -> Judgement {
    let names = ["IDLE", "UIDPLUS", "SPECIAL-USE", "CONDSTORE"];
    let shown = names
        .iter()
        .map(|n| format!("{n} {}", if has(n) { "yes" } else { "no" }))
        .collect::<Vec<_>>()
        .join(", ");
    if wants_idle && !has("IDLE") {
        return Judgement::with(Status::Warn, shown, Hint::NoIdle.text());
    }
    if !has("UIDPLUS") {
        return Judgement::with(Status::Warn, shown, Hint::NoUidplus.text());
    }
    Judgement::pass(shown)
}

/// The watched folders against those that exist.
pub fn folders(watched: &[String], missing: &[String]) -> Judgement {
    if missing.is_empty() {
        Judgement::pass(format!("{} exist", watched.join(", ")))
    } else {
        Judgement::with(
            Status::Fail,
            format!(
                "missing: {} (watched: {})",
                missing.join(", "),
                watched.join(", ")
            ),
            Hint::FolderMissing.text(),
        )
    }
}

/// A failed IMAP login: a `NO` is the credentials' (runbook `imap_auth_failed`); anything else
/// is the session's.
pub fn imap_login_failed(why: &str, credentials: bool, runbook: &Runbook) -> Judgement {
    let hint = if credentials {
        runbook_fix(runbook, FindingCode::ImapAuthFailed)
    } else {
        Hint::ImapSession.text().to_owned()
    };
    Judgement::with(Status::Fail, why.to_owned(), hint)
}

/// The hop from `from` (a log role) to `to`, for mail to `domain`, judged from the messages the
/// logs showed in the window ending at `now`.
pub struct RelayEvidence<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub domain: &'a str,
    pub window: TimeDelta,
    pub now: DateTime<Utc>,
}

/// Queued this long without a delivery attempt counts as waiting (younger is mail in flight).
const QUEUED_WAITING: TimeDelta = TimeDelta::seconds(120);

/// Waiting mail (deferred on `from`, or queued there past a short grace) fails the hop, with the
/// last deferral's reason and the runbook fix for its finding; recent deliveries and nothing
/// waiting pass it; neither is `unknown`.
pub fn relay(e: &RelayEvidence<'_>, chains: &[MessageChain], runbook: &Runbook) -> Judgement {
    let suffix = format!("@{}", e.domain.to_ascii_lowercase());
    let for_domain = |m: &&MessageChain| {
        m.to.iter()
            .chain(m.hops.iter().flat_map(|h| h.to.iter()))
            .any(|t| {
                t.trim_matches(['<', '>'])
                    .to_ascii_lowercase()
                    .ends_with(&suffix)
            })
    };
    let mut delivered = 0usize;
    let mut deferrals = 0u32;
    let mut waiting: Vec<(&MessageChain, Option<DateTime<Utc>>)> = Vec::new();
    let mut last_reason: Option<(DateTime<Utc>, String)> = None;
    for m in chains.iter().filter(for_domain) {
        for h in m.hops.iter().filter(|h| h.host == e.from) {
            let deferred_here = h.status == HopStatus::Deferred;
            // A hop's attempts before its last one were deferrals; a deferred hop's last one too.
            deferrals += match h.status {
                HopStatus::Deferred => h.attempts.max(1),
                _ => h.attempts.saturating_sub(1),
            };
            match h.status {
                HopStatus::Sent => delivered += 1,
                HopStatus::Deferred => waiting.push((m, h.arrived_at)),
                HopStatus::Queued if h.arrived_at.is_some_and(|a| e.now - a >= QUEUED_WAITING) => {
                    waiting.push((m, h.arrived_at))
                }
                _ => {}
            }
            if deferred_here {
                if let Some(r) = &h.reason {
                    let at = h.left_at.or(h.arrived_at).unwrap_or(e.now);
                    if last_reason.as_ref().is_none_or(|(t, _)| at >= *t) {
                        last_reason = Some((at, r.clone()));
                    }
                }
            }
        }
    }
    let hop = format!("{} -> {}", e.from, e.to);
    let window = humanize(e.window);
    if let Some(oldest) = waiting.iter().filter_map(|(_, a)| *a).min() {
        let age = humanize(e.now - oldest);
        let reason = last_reason
            .map(|(_, r)| format!("; last deferral: {r}"))
            .unwrap_or_default();
        let found = waiting
            .iter()
            .flat_map(|(m, _)| m.findings.iter())
            .find(|f| f.host.as_deref() == Some(e.from));
        let code = found.map_or(FindingCode::DeferredOther, |f| f.code);
        let hint = runbook.hint(
            Subject {
                code,
                role: Some(e.from),
                stage: None,
                peer: found.and_then(|f| f.peer.as_deref()),
            },
            &Facts {
                recipient: Some(format!("postmaster@{}", e.domain)),
            },
        );
        return Judgement::with(
            Status::Fail,
            format!(
                "{} message(s) for {} waiting on {} for {}; oldest queued {} ago ({}){reason}",
                waiting.len(),
                e.domain,
                e.from,
                e.to,
                age,
                oldest.format("%Y-%m-%d %H:%M:%SZ"),
            ),
            hint,
        );
    }
    if delivered > 0 {
        let after = if deferrals > 0 {
            format!(" (after {deferrals} deferral(s), since recovered)")
        } else {
            String::new()
        };
        return Judgement::pass(format!(
            "{delivered} message(s) for {} passed {hop} in the last {window}{after}; none waiting",
            e.domain
        ));
    }
    Judgement::with(
        Status::Unknown,
        format!(
            "could not judge {hop}: no mail for {} passed {} in the last {window} and none is waiting",
            e.domain, e.from
        ),
        Hint::RelayNoEvidence.text(),
    )
}

/// What checking a SendGrid API key (`GET /v3/scopes`) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// The key could not be read from its reference (the reason names the reference only).
    NoKey(String),
    /// 2xx with the key's scopes.
    Scopes(Vec<String>),
    /// Any other answer: the status, its reason phrase, and what the body said (SendGrid's
    /// errors field by field, or why the body was not the scopes list).
    Status {
        code: u16,
        reason: String,
        said: String,
    },
    /// No answer: connect failure, TLS failure, or no complete answer within the timeout.
    NoAnswer(String),
}

/// The scope a key needs to send mail.
pub const MAIL_SEND_SCOPE: &str = "mail.send";

/// A SendGrid API key: passes when SendGrid accepts it and it may send mail; fails when it is
/// refused (401/403, the runbook's `provider_auth_failed`) or lacks `mail.send`; unknown when
/// SendGrid could not be asked or its answer does not say (5xx, 429, a timeout).
pub fn sendgrid_key(check: &KeyCheck, runbook: &Runbook) -> Judgement {
    let finding = |code| runbook_fix(runbook, code);
    match check {
        KeyCheck::NoKey(why) => Judgement::with(
            Status::Fail,
            format!("no API key to check: {why}"),
            finding(FindingCode::ProviderAuthFailed),
        ),
        KeyCheck::Scopes(scopes) if scopes.iter().any(|s| s == MAIL_SEND_SCOPE) => {
            Judgement::pass(format!(
                "key accepted; its {} scope(s) include {MAIL_SEND_SCOPE}",
                scopes.len()
            ))
        }
        KeyCheck::Scopes(scopes) => Judgement::with(
            Status::Fail,
            format!(
                "key accepted, but its {} scope(s) lack {MAIL_SEND_SCOPE}: it cannot send mail",
                scopes.len()
            ),
            Hint::SendGridNoMailSend.text(),
        ),
        KeyCheck::Status { code, reason, said } => {
            let mut seen = format!("{code} {reason}").trim_end().to_string();
            if !said.is_empty() {
                seen = format!("{seen}: {said}");
            }
            match code {
                401 => Judgement::with(
                    Status::Fail,
                    format!("{seen} (the key is wrong, revoked or expired)"),
                    finding(FindingCode::ProviderAuthFailed),
                ),
                403 => Judgement::with(
                    Status::Fail,
                    format!("{seen} (the key lacks a scope this call needs)"),
                    finding(FindingCode::ProviderAuthFailed),
                ),
                429 | 500..=599 => Judgement::with(
                    Status::Unknown,
                    format!("could not judge the key: {seen}"),
                    finding(FindingCode::ProviderUnavailable),
                ),
                _ => Judgement::with(
                    Status::Unknown,
                    format!("could not judge the key: {seen}"),
                    Hint::SendGridKeyUnjudged.text(),
                ),
            }
        }
        KeyCheck::NoAnswer(why) => Judgement::with(
            Status::Unknown,
            format!("could not judge the key: {why}"),
            finding(FindingCode::ProviderUnavailable),
        ),
    }
}

/// `3 min`, `2 h 5 min`, `40 s`.
fn humanize(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ if s % 3600 / 60 == 0 => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests;
