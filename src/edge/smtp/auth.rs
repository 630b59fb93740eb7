//! SASL for SMTP submission: PLAIN (preferred) or LOGIN for a password, XOAUTH2 for an OAuth 2
//! access token, as the server offers them after TLS. The secret is written to the socket and
//! nowhere else; replies are shown in the server's words (XOAUTH2's error challenge decoded).
use base64::Engine as _;

use super::wire::{Reply, Wire};
use super::{Conversation, SendOutcome};
use crate::config::secret::Secret;
use crate::config::AuthMechanism;
use crate::core::verdict::XOAUTH2_REFUSAL;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The mechanisms flowtest can use, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Login,
    XOAuth2,
}

fn choose(caps: &Reply, configured: AuthMechanism) -> Option<Mechanism> {
    let offered = caps.extension("AUTH")?;
    let has = |m: &str| {
        offered
            .split_whitespace()
            .any(|o| o.eq_ignore_ascii_case(m))
    };
    if configured == AuthMechanism::XOAuth2 {
        has("XOAUTH2").then_some(Mechanism::XOAuth2)
    } else if has("PLAIN") {
        Some(Mechanism::Plain)
    } else if has("LOGIN") {
        Some(Mechanism::Login)
    } else {
        None
    }
}

/// Authenticate with the configured user and secret, or end the conversation saying why not.
pub(super) async fn authenticate(
    wire: &mut Wire,
    conv: &Conversation,
    caps: &Reply,
    user: &str,
    configured: AuthMechanism,
    secret: Option<&Secret>,
) -> Result<(), SendOutcome> {
    let password = secret.map(|s| s.expose()).unwrap_or_default();
    match choose(caps, configured) {
        Some(Mechanism::Plain) => {
            let token = B64.encode(format!("\0{user}\0{password}"));
            conv.exchange(wire, &format!("AUTH PLAIN {token}")).await?;
        }
        Some(Mechanism::Login) => {
            conv.exchange(wire, "AUTH LOGIN").await?;
            conv.exchange(wire, &B64.encode(user)).await?;
            conv.exchange(wire, &B64.encode(password)).await?;
        }
        Some(Mechanism::XOAuth2) => {
            let token = B64.encode(format!("user={user}\x01auth=Bearer {password}\x01\x01"));
            let r = conv
                .exchange(wire, &format!("AUTH XOAUTH2 {token}"))
                .await?;
            if r.code == 334 {
                return Err(xoauth2_refused(wire, conv, &r).await);
            }
        }
        None => {
            let offered = caps.extension("AUTH").unwrap_or("none");
            return Err(conv.failed(
                format!("the server offers no usable AUTH mechanism (offered: {offered})"),
                None,
            ));
        }
    }
    Ok(())
}

/// The server's 334 challenge after XOAUTH2 is its error (base64 JSON, e.g. `{"status":"401",
/// "schemes":"Bearer","scope":"https://mail.google.com/"}`): decoded, answered with the empty
/// line SASL asks for, and shown with the final reply.
async fn xoauth2_refused(wire: &mut Wire, conv: &Conversation, challenge: &Reply) -> SendOutcome {
    let raw = challenge.text();
    let decoded = B64
        .decode(raw.trim())
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or(raw);
    let shown = crate::core::text::escape_control(&decoded).into_owned();
    let until = conv.step_deadline();
    let last = match wire.command("", until).await {
        Ok(()) => wire.reply(until).await.ok(),
        Err(_) => None,
    };
    match last {
        Some(r) => conv.failed(
            format!("{} ({XOAUTH2_REFUSAL} {shown})", r.text()),
            Some(r.code),
        ),
        None => conv.failed(format!("({XOAUTH2_REFUSAL} {shown})"), Some(334)),
    }
}
