//! SASL for SMTP submission: PLAIN (preferred) or LOGIN, as the server offers them after TLS.
//! The secret is written to the socket and nowhere else; replies are shown in the server's words.
use base64::Engine as _;

use super::wire::{Reply, Wire};
use super::{Conversation, SendOutcome};
use crate::config::secret::Secret;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The mechanisms flowtest can use, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Login,
}

fn choose(caps: &Reply) -> Option<Mechanism> {
    let offered = caps.extension("AUTH")?;
    let has = |m: &str| {
        offered
            .split_whitespace()
            .any(|o| o.eq_ignore_ascii_case(m))
    };
    if has("PLAIN") {
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
    secret: Option<&Secret>,
) -> Result<(), SendOutcome> {
    let password = secret.map(|s| s.expose()).unwrap_or_default();
    match choose(caps) {
        Some(Mechanism::Plain) => {
            let token = B64.encode(format!("\0{user}\0{password}"));
            conv.exchange(wire, &format!("AUTH PLAIN {token}")).await?;
        }
        Some(Mechanism::Login) => {
            conv.exchange(wire, "AUTH LOGIN").await?;
            conv.exchange(wire, &B64.encode(user)).await?;
            conv.exchange(wire, &B64.encode(password)).await?;
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
