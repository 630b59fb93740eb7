//! The SendGrid API key a `kind = "sendgrid"` scenario sends with, as `doctor` sees it: one cheap
//! authenticated `GET /v3/scopes` against the scenario's base URL (through the sender's own
//! client, `edge::sendgrid`), bounded by the check timeout from connect to the last body byte.
//! Sends no mail; the key is only ever written into the request's `Authorization` header.
//! What the answer means is `core::doctor::judge::sendgrid_key`.
use serde::Deserialize;

use super::{elapsed_ms, Ctx};
use crate::config::SendGridSender;
use crate::core::doctor::judge::{self, KeyCheck};
use crate::core::doctor::{Check, Item};
use crate::edge::sendgrid::{self, api_errors, describe_errors};

/// SendGrid's read-only call that every valid key may make: it lists the key's own scopes.
pub const SCOPES_PATH: &str = "/v3/scopes";

/// The body of a 200 from `/v3/scopes`.
#[derive(Deserialize)]
struct Scopes {
    scopes: Vec<String>,
}

pub async fn check(ctx: &Ctx<'_>, cfg: &SendGridSender, out: &mut Vec<Check>) {
    let target = format!("{}{SCOPES_PATH}", cfg.base_url);
    let started = crate::clock::instant();
    let answer = ask(ctx, cfg).await;
    let ms = match answer {
        KeyCheck::NoKey(_) => None,
        _ => elapsed_ms(started),
    };
    out.push(ctx.check(
        Item::SendgridApiKey,
        &target,
        judge::sendgrid_key(&answer, ctx.runbook),
        ms,
    ));
}

async fn ask(ctx: &Ctx<'_>, cfg: &SendGridSender) -> KeyCheck {
    // The error names the variable, file or command, never a value.
    let key = match cfg.api_key.resolve() {
        Ok(k) => k,
        Err(e) => return KeyCheck::NoKey(e.to_string()),
    };
    let ca = match cfg.ca_file.as_deref().map(crate::edge::tls::read_ca) {
        Some(Ok(ca)) => ca,
        Some(Err(e)) => return KeyCheck::NoAnswer(e.to_string()),
        None => Vec::new(),
    };
    // The client's connect timeout is the check's, like the whole exchange's.
    let bounded = SendGridSender {
        request_timeout: ctx.timeout,
        ..cfg.clone()
    };
    let prepared = match sendgrid::prepare(&bounded, &ca, key) {
        Ok(p) => p,
        Err(e) => return KeyCheck::NoAnswer(e),
    };
    match sendgrid::get(&prepared, SCOPES_PATH, ctx.deadline()).await {
        Err(e) => KeyCheck::NoAnswer(e),
        Ok(r) if (200..300).contains(&r.status) => {
            match serde_json::from_slice::<Scopes>(&r.body) {
                Ok(s) => KeyCheck::Scopes(s.scopes),
                Err(_) => KeyCheck::Status {
                    code: r.status,
                    reason: r.reason,
                    said: "the answer is not a scopes list".into(),
                },
            }
        }
        Ok(r) => KeyCheck::Status {
            code: r.status,
            reason: r.reason,
            said: describe_errors(&api_errors(&r.body)),
        },
    }
}
