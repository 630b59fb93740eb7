//! `flowtest doctor`: the operator's troubleshooting guide, automated. For each scenario it
//! looks at DNS (each recipient domain's MX set, every host's A/AAAA), the servers flowtest
//! talks to (TCP, SMTP banner and EHLO, TLS and the certificate, IMAP login, capabilities and
//! folders, the SendGrid API key) and the hops it cannot reach, judged from the server logs. It
//! sends no mail, and every check has its own timeout (`[doctor] check_timeout`).
//!
//! Owns the order of the checks and their I/O; what each observation means is
//! `core::doctor::judge`, the outputs `core::doctor::render`.
mod dns;
mod imap;
mod sendgrid;
mod smtp;
pub mod tls;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use crate::config::{Config, Scenario, Sender};
use crate::core::doctor::hints::Hint;
use crate::core::doctor::judge::{self, Answer, RelayEvidence};
use crate::core::doctor::{Check, Item, Judgement, Status};
use crate::core::fusion::MessageChain;
use crate::core::runbook::Runbook;
use crate::edge::logwatch::recent_messages;
use tls::Recorder;

/// What every check of one scenario shares.
pub(crate) struct Ctx<'a> {
    pub scenario: &'a str,
    pub timeout: Duration,
    pub warn_days: i64,
    pub runbook: &'a Runbook,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// The end of the step starting now: each check and each step in it has its own timeout.
    pub fn deadline(&self) -> Instant {
        crate::clock::instant() + self.timeout
    }
    pub fn check(&self, item: Item, target: &str, j: Judgement, ms: Option<u64>) -> Check {
        Check::new(self.scenario, item, target, j, ms)
    }
    /// An item not reached because an earlier one failed.
    pub fn skipped(&self, item: Item, target: &str, why: &str) -> Check {
        let j = Judgement {
            status: Status::Unknown,
            detail: format!("not checked: {why}"),
            hint: None,
        };
        self.check(item, target, j, None)
    }
    /// Run one check under the timeout; `None` when it ran out.
    async fn bounded<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.timeout, fut).await.ok()
    }
}

/// Milliseconds since `started`.
pub(crate) fn elapsed_ms(started: Instant) -> Option<u64> {
    u64::try_from(
        crate::clock::instant()
            .saturating_duration_since(started)
            .as_millis(),
    )
    .ok()
}

/// The items of one hop still to report, in order: each is reported once, and whatever an
/// earlier failure kept from being reached is reported as not checked.
pub(super) struct Pending<'c, 'o> {
    pub ctx: &'c Ctx<'c>,
    target: String,
    items: Vec<Item>,
    out: &'o mut Vec<Check>,
    pub recorder: Option<Recorder>,
}

impl<'c, 'o> Pending<'c, 'o> {
    pub fn new(ctx: &'c Ctx<'c>, target: &str, out: &'o mut Vec<Check>) -> Self {
        Pending {
            ctx,
            target: target.to_owned(),
            items: Vec::new(),
            out,
            recorder: None,
        }
    }
    pub fn expect(&mut self, items: &[Item]) {
        self.items.extend_from_slice(items);
    }
    pub fn report(&mut self, item: Item, j: Judgement, ms: Option<u64>) {
        self.items.retain(|i| *i != item);
        self.out.push(self.ctx.check(item, &self.target, j, ms));
    }
    pub fn skip_rest(&mut self, why: &str) {
        for item in std::mem::take(&mut self.items) {
            self.out.push(self.ctx.skipped(item, &self.target, why));
        }
    }
    /// The certificate's judgement when the verifier saw one; else the handshake's error.
    pub fn tls(&self, host: &str, err: Option<&str>) -> Judgement {
        let ctx = self.ctx;
        match (self.recorder.as_ref().and_then(|r| r.seen(host)), err) {
            (Some(seen), _) => judge::tls(&seen, ctx.now, ctx.warn_days, ctx.runbook),
            (None, Some(e)) => judge::tls_failed(e, ctx.runbook),
            (None, None) => judge::tls_failed("the server sent no certificate", ctx.runbook),
        }
    }
}

/// Every check of every scenario given, in order. The log window is fetched once.
pub async fn examine(config: &Config, scenarios: &[&Scenario]) -> Vec<Check> {
    let d = &config.doctor;
    let mut out = Vec::new();
    let resolver = dns::resolver(d.nameserver, d.check_timeout);
    let needs_logs = scenarios.iter().any(|s| !relay_pairs(s).is_empty());
    let logs = if needs_logs {
        let fetch = recent_messages(&config.log_sources, d.log_window);
        // Each source's fetch has its own timeout; this bounds them together.
        let limit = d.check_timeout.max(Duration::from_secs(1)) * 2;
        tokio::time::timeout(limit, fetch)
            .await
            .map_err(|_| format!("reading the logs took longer than {} s", limit.as_secs()))
    } else {
        Ok((Vec::new(), Vec::new()))
    };
    for s in scenarios {
        let ctx = Ctx {
            scenario: &s.name,
            timeout: d.check_timeout,
            warn_days: d.cert_warn_days,
            runbook: &config.runbook,
            now: crate::clock::now(),
        };
        match &resolver {
            Ok(r) => dns_checks(&ctx, config, s, r, &mut out).await,
            Err(e) => {
                let j = Judgement::with(Status::Fail, e.clone(), Hint::DnsQueryFailed.text());
                out.push(ctx.check(Item::DnsMx, "resolver", j, None));
            }
        }
        match &s.sender {
            Sender::Smtp(smtp) => {
                let ca = read_ca(
                    &ctx,
                    smtp.ca_file.as_deref(),
                    &format!("{}:{}", smtp.host, smtp.port),
                    &mut out,
                );
                if let Some(ca) = ca {
                    smtp::check(&ctx, smtp, &ca, &mut out).await;
                }
            }
            // The API sender has no SMTP hop of ours to look at: its key is what can be checked.
            Sender::SendGrid(sg) => sendgrid::check(&ctx, sg, &mut out).await,
        }
        let r = &s.receiver;
        if let Some(ca) = read_ca(
            &ctx,
            r.ca_file.as_deref(),
            &format!("{}:{}", r.host, r.port),
            &mut out,
        ) {
            imap::check(&ctx, r, &ca, &mut out).await;
        }
        relay_checks(&ctx, config, s, &logs, &mut out);
    }
    out
}

/// A scenario's CA file, parsed; a file that cannot be read fails the TLS item naming it.
fn read_ca(
    ctx: &Ctx<'_>,
    path: Option<&std::path::Path>,
    target: &str,
    out: &mut Vec<Check>,
) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
    match path.map(crate::edge::tls::read_ca).transpose() {
        Ok(ca) => Some(ca.unwrap_or_default()),
        Err(e) => {
            out.push(ctx.check(
                Item::Tls,
                target,
                judge::tls_failed(&e.to_string(), ctx.runbook),
                None,
            ));
            None
        }
    }
}

/// The recipient domains of a scenario, lower case, each once.
fn recipient_domains(s: &Scenario) -> Vec<String> {
    let mut out: Vec<String> = s
        .sender
        .recipients()
        .iter()
        .filter_map(|r| {
            r.rsplit_once('@')
                .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        })
        .collect();
    out.dedup();
    out.sort();
    out.dedup();
    out
}

/// The hosts a scenario talks to, each once.
fn hosts(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    match &s.sender {
        Sender::Smtp(smtp) => out.push(smtp.host.to_ascii_lowercase()),
        // The API's host (an address literal is skipped when resolving).
        Sender::SendGrid(sg) => out.extend(reqwest::Url::parse(&sg.base_url).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        })),
    }
    let imap = s.receiver.host.to_ascii_lowercase();
    if !out.contains(&imap) {
        out.push(imap);
    }
    out
}

async fn dns_checks(
    ctx: &Ctx<'_>,
    config: &Config,
    s: &Scenario,
    r: &hickory_resolver::TokioResolver,
    out: &mut Vec<Check>,
) {
    let late = format!("no answer within {:.1} s", ctx.timeout.as_secs_f64());
    let timed_out = || Answer::Failed(late.clone());
    let timed_out_mx = || Answer::Failed(late.clone());
    // The hosts to resolve: the servers the scenario talks to, then each MX exchanger.
    let mut targets = hosts(s);
    for domain in recipient_domains(s) {
        let started = crate::clock::instant();
        let answer = ctx
            .bounded(dns::mx(r, &domain))
            .await
            .unwrap_or_else(timed_out_mx);
        let fallback = match answer {
            Answer::NoRecords => ctx
                .bounded(dns::addresses(r, &domain))
                .await
                .unwrap_or_else(timed_out),
            _ => Answer::NoRecords,
        };
        let expected = config
            .doctor
            .expected_mx
            .get(&domain)
            .cloned()
            .unwrap_or_default();
        let j = judge::mx(&domain, &answer, &expected, &fallback);
        out.push(ctx.check(Item::DnsMx, &domain, j, elapsed_ms(started)));
        if let Answer::Records(mx) = &answer {
            for m in mx {
                let h = m.exchange.trim_end_matches('.').to_ascii_lowercase();
                if !h.is_empty() && !targets.contains(&h) {
                    targets.push(h);
                }
            }
        }
    }
    for host in targets {
        if host.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        let started = crate::clock::instant();
        let answer = ctx
            .bounded(dns::addresses(r, &host))
            .await
            .unwrap_or_else(timed_out);
        out.push(ctx.check(
            Item::DnsAddress,
            &host,
            judge::address(&host, &answer),
            elapsed_ms(started),
        ));
    }
}

/// Consecutive log roles along the scenario's path (`ec2` then `dell`...): the hand-offs whose
/// sending side's log can show whether mail gets through.
fn relay_pairs(s: &Scenario) -> Vec<(String, String)> {
    let mut roles: Vec<&str> = s.path.iter().filter_map(|m| m.role.as_deref()).collect();
    roles.dedup();
    roles
        .windows(2)
        .map(|w| (w[0].to_owned(), w[1].to_owned()))
        .collect()
}

type Logs = Result<(Vec<MessageChain>, Vec<String>), String>;

fn relay_checks(ctx: &Ctx<'_>, config: &Config, s: &Scenario, logs: &Logs, out: &mut Vec<Check>) {
    let window = TimeDelta::from_std(config.doctor.log_window).unwrap_or(TimeDelta::hours(1));
    for (from, to) in relay_pairs(s) {
        let target = format!("{from} -> {to}");
        let (chains, warnings) = match logs {
            Ok(l) => l,
            Err(e) => {
                out.push(ctx.check(
                    Item::Relay,
                    &target,
                    Judgement::with(Status::Unknown, e.clone(), Hint::LogsUnreadable.text()),
                    None,
                ));
                continue;
            }
        };
        let prefix = format!("log source {from}:");
        if let Some(w) = warnings.iter().find(|w| w.starts_with(&prefix)) {
            let j = Judgement::with(
                Status::Unknown,
                format!("could not judge {target}: {w}"),
                Hint::LogsUnreadable.text(),
            );
            out.push(ctx.check(Item::Relay, &target, j, None));
            continue;
        }
        for domain in recipient_domains(s) {
            let e = RelayEvidence {
                from: &from,
                to: &to,
                domain: &domain,
                window,
                now: ctx.now,
            };
            out.push(ctx.check(
                Item::Relay,
                &target,
                judge::relay(&e, chains, ctx.runbook),
                None,
            ));
        }
    }
}
