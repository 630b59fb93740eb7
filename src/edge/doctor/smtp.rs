//! The SMTP hop a scenario submits to, as `doctor` sees it: TCP connect time, the banner, the
//! EHLO capabilities (again after STARTTLS, where AUTH is offered) and the TLS handshake, over
//! the probe's own bounded wire (`edge::smtp::wire`). Sends no mail: the conversation ends with
//! QUIT after EHLO.
use rustls::pki_types::CertificateDer;

use super::tls::Recorder;
use super::{elapsed_ms, Ctx, Pending};
use crate::config::{SmtpSender, TlsMode};
use crate::core::doctor::hints::Hint;
use crate::core::doctor::judge::{self, Ehlo};
use crate::core::doctor::Judgement;
use crate::core::doctor::{Check, Item, Status};
use crate::edge::smtp::wire::{Reply, Wire};

/// Check the sender's server. `extra_ca` is the scenario's CA file, parsed.
pub async fn check(
    ctx: &Ctx<'_>,
    s: &SmtpSender,
    extra_ca: &[CertificateDer<'static>],
    out: &mut Vec<Check>,
) {
    let target = format!("{}:{}", s.host, s.port);
    let mut todo = Pending::new(ctx, &target, out);
    todo.expect(&[Item::Tcp, Item::SmtpBanner, Item::SmtpEhlo]);
    if s.tls != TlsMode::None {
        todo.expect(&[Item::Tls]);
    }
    let Some(mut wire) = open(&mut todo, s, extra_ca).await else {
        return;
    };
    let helo = s.helo.clone().unwrap_or_else(|| "localhost".into());
    let started = crate::clock::instant();
    let first = match exchange(ctx, &mut wire, &format!("EHLO {helo}")).await {
        Ok(r) => r,
        Err(why) => {
            let j = Judgement::with(
                Status::Fail,
                format!("EHLO: {why}"),
                Hint::BannerRefused.text(),
            );
            todo.report(Item::SmtpEhlo, j, elapsed_ms(started));
            return todo.skip_rest("EHLO failed");
        }
    };
    let mut ehlo_ms = elapsed_ms(started);
    let mut caps = first.clone();
    if s.tls == TlsMode::Starttls && first.has_extension("STARTTLS") {
        let started = crate::clock::instant();
        let upgraded = match exchange(ctx, &mut wire, "STARTTLS").await {
            Ok(_) => match todo.recorder.as_ref() {
                Some(rec) => wire
                    .into_tls(rec.config.clone(), &s.host, ctx.deadline())
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("no TLS configuration".to_owned()),
            },
            Err(why) => Err(format!("STARTTLS refused: {why}")),
        };
        let j = todo.tls(&s.host, upgraded.as_ref().err().map(String::as_str));
        todo.report(Item::Tls, j, elapsed_ms(started));
        let Ok(mut tls_wire) = upgraded else {
            // AUTH is offered only after TLS: judge what was offered before it.
            let facts = Ehlo {
                needs_auth: false,
                ..ehlo_facts(&first, s)
            };
            todo.report(Item::SmtpEhlo, judge::ehlo(&facts), ehlo_ms);
            return;
        };
        let started = crate::clock::instant();
        if let Ok(r) = exchange(ctx, &mut tls_wire, &format!("EHLO {helo}")).await {
            caps = r;
            ehlo_ms = elapsed_ms(started);
        }
        wire = tls_wire;
    }
    let mut facts = ehlo_facts(&caps, s);
    facts.starttls = first.has_extension("STARTTLS");
    todo.report(Item::SmtpEhlo, judge::ehlo(&facts), ehlo_ms);
    todo.skip_rest("STARTTLS not offered");
    // QUIT politely; its answer changes nothing.
    let _ = exchange(ctx, &mut wire, "QUIT").await;
    wire.shutdown().await;
}

/// Connect (timed), the TLS handshake first for implicit TLS, and the banner. `None` when the
/// conversation cannot go on (the items not reached are reported as such).
async fn open(
    todo: &mut Pending<'_, '_>,
    s: &SmtpSender,
    extra_ca: &[CertificateDer<'static>],
) -> Option<Wire> {
    let ctx = todo.ctx;
    let started = crate::clock::instant();
    let mut wire = match Wire::connect(&s.host, s.port, ctx.deadline()).await {
        Ok(w) => {
            todo.report(Item::Tcp, Judgement::pass("connected"), elapsed_ms(started));
            w
        }
        Err(e) => {
            let j = Judgement::with(Status::Fail, e.to_string(), Hint::Unreachable.text());
            todo.report(Item::Tcp, j, elapsed_ms(started));
            todo.skip_rest("TCP connect failed");
            return None;
        }
    };
    if s.tls != TlsMode::None {
        match Recorder::new(extra_ca) {
            Ok(r) => todo.recorder = Some(r),
            Err(e) => {
                todo.report(
                    Item::Tls,
                    judge::tls_failed(&e.to_string(), ctx.runbook),
                    None,
                );
                todo.skip_rest("no TLS configuration");
                return None;
            }
        }
    }
    if s.tls == TlsMode::Tls {
        let config = todo.recorder.as_ref().map(|r| r.config.clone())?;
        let started = crate::clock::instant();
        let r = wire.into_tls(config, &s.host, ctx.deadline()).await;
        let j = todo.tls(
            &s.host,
            r.as_ref().err().map(ToString::to_string).as_deref(),
        );
        todo.report(Item::Tls, j, elapsed_ms(started));
        match r {
            Ok(w) => wire = w,
            Err(_) => {
                todo.skip_rest("TLS handshake failed");
                return None;
            }
        }
    }
    let started = crate::clock::instant();
    let j = match wire.reply(ctx.deadline()).await {
        Ok(r) if r.code == 220 => Judgement::pass(format!("{} {}", r.code, r.text())),
        Ok(r) => Judgement::with(
            Status::Fail,
            format!("{} {}", r.code, r.text()),
            Hint::BannerRefused.text(),
        ),
        Err(e) => Judgement::with(Status::Fail, e.to_string(), Hint::BannerRefused.text()),
    };
    let greeted = j.status == Status::Pass;
    todo.report(Item::SmtpBanner, j, elapsed_ms(started));
    if !greeted {
        todo.skip_rest("no greeting");
        return None;
    }
    Some(wire)
}

fn ehlo_facts(r: &Reply, s: &SmtpSender) -> Ehlo {
    Ehlo {
        starttls: r.has_extension("STARTTLS"),
        size: r.extension("SIZE").map(str::to_owned),
        auth: r.extension("AUTH").map(str::to_owned),
        needs_starttls: s.tls == TlsMode::Starttls,
        needs_auth: s.auth.is_some(),
    }
}

/// One command and its reply; a negative reply is an error showing it.
async fn exchange(ctx: &Ctx<'_>, wire: &mut Wire, line: &str) -> Result<Reply, String> {
    let until = ctx.deadline();
    wire.command(line, until).await.map_err(|e| e.to_string())?;
    let r = wire.reply(until).await.map_err(|e| e.to_string())?;
    if r.is_positive() {
        Ok(r)
    } else {
        Err(format!("{} {}", r.code, r.text()))
    }
}
