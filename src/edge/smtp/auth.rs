//! SASL for SMTP submission: PLAIN (preferred) or LOGIN for a password, XOAUTH2 or OAUTHBEARER
//! for an OAuth 2 access token, as the server offers them after TLS. The secret is written to
//! the socket and nowhere else; replies are shown in the server's words (an OAuth error
//! challenge decoded). The mechanism used is recorded in the submission.
use base64::Engine as _;

use super::wire::{Reply, Wire};
use super::{Conversation, SendOutcome};
use crate::config::secret::Secret;
use crate::config::AuthMechanism as Configured;
use crate::core::outcome::AuthMechanism;
use crate::edge::oauth;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn choose(caps: &Reply, configured: Configured) -> Option<AuthMechanism> {
    let offered = caps.extension("AUTH")?;
    let has = |m: &str| {
        offered
            .split_whitespace()
            .any(|o| o.eq_ignore_ascii_case(m))
    };
    match oauth::mechanism(configured) {
        Some(m) => has(m.as_str()).then_some(m),
        None if has("PLAIN") => Some(AuthMechanism::Plain),
        None if has("LOGIN") => Some(AuthMechanism::Login),
        None => None,
    }
}

/// Authenticate with the configured user and secret, or end the conversation saying why not.
pub(super) async fn authenticate(
    wire: &mut Wire,
    conv: &mut Conversation,
    caps: &Reply,
    user: &str,
    configured: Configured,
    secret: Option<&Secret>,
) -> Result<(), SendOutcome> {
    let password = secret.map(|s| s.expose()).unwrap_or_default();
    let Some(m) = choose(caps, configured) else {
        let offered = caps.extension("AUTH").unwrap_or("none");
        return Err(conv.failed(
            format!("the server offers no usable AUTH mechanism (offered: {offered})"),
            None,
        ));
    };
    conv.auth = Some(m);
    match m {
        AuthMechanism::Plain => {
            let token = B64.encode(format!("\0{user}\0{password}"));
            conv.exchange(wire, &format!("AUTH PLAIN {token}")).await?;
        }
        AuthMechanism::Login => {
            conv.exchange(wire, "AUTH LOGIN").await?;
            conv.exchange(wire, &B64.encode(user)).await?;
            conv.exchange(wire, &B64.encode(password)).await?;
        }
        AuthMechanism::XOAuth2 | AuthMechanism::OAuthBearer => {
            let first = oauth::encode(&oauth::initial_response(m, user, password));
            let r = conv
                .exchange(wire, &format!("AUTH {} {first}", m.as_str()))
                .await?;
            if r.code == 334 {
                return Err(oauth_refused(wire, conv, m, &r).await);
            }
        }
        // `choose` never picks IMAP's own command or an HTTP key; said plainly, not a panic.
        AuthMechanism::ImapLogin | AuthMechanism::HttpBearer => {
            return Err(conv.failed(format!("{} is no SMTP mechanism", m.as_str()), None))
        }
    }
    Ok(())
}

/// The server's 334 challenge after an OAuth 2 mechanism is its error (base64 JSON, e.g.
/// `{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`): decoded, answered
/// the way the mechanism asks, and shown with the final reply.
async fn oauth_refused(
    wire: &mut Wire,
    conv: &Conversation,
    m: AuthMechanism,
    challenge: &Reply,
) -> SendOutcome {
    let shown = oauth::refusal(m, &oauth::decode_challenge(&challenge.text()));
    let until = conv.step_deadline();
    let last = match wire
        .command(&oauth::encode(oauth::error_ack(m)), until)
        .await
    {
        Ok(()) => wire.reply(until).await.ok(),
        Err(_) => None,
    };
    match last {
        Some(r) => conv.failed(format!("{} ({shown})", r.text()), Some(r.code)),
        None => conv.failed(format!("({shown})"), Some(334)),
    }
}
