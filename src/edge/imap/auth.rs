//! Logging in to the mailbox: IMAP's LOGIN for a password, AUTHENTICATE XOAUTH2 or OAUTHBEARER
//! for an OAuth 2 access token (with the first message on the command line when the server
//! offers SASL-IR). A refused token's error continuation (base64 JSON) is decoded and shown as a
//! `TokenRefused` error. The secret goes to the server and nowhere else. Not here: connecting
//! (`connect`), what the session is used for (the parent module).
use async_imap::imap_proto::{Capability, Response, Status};
use async_imap::{Authenticator, Client};

use super::{safe, server_text, FetchError, Guard, ImapSession};
use crate::config::secret::Secret;
use crate::config::AuthMechanism as Configured;
use crate::core::outcome::AuthMechanism;
use crate::edge::oauth;

/// One OAuth 2 exchange: answers the server's continuations and keeps its error challenge.
struct OAuthExchange {
    mechanism: AuthMechanism,
    /// The first message, still to be sent (None once sent, or when SASL-IR carried it).
    first: Option<Vec<u8>>,
    /// The server's error challenge, decoded.
    error: Option<Vec<u8>>,
}

impl Authenticator for &mut OAuthExchange {
    type Response = Vec<u8>;
    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        // Without SASL-IR the server first asks with an empty continuation; anything after the
        // first message is the server's error.
        match self.first.take() {
            Some(first) if challenge.is_empty() => first,
            _ => {
                self.error = Some(challenge.to_vec());
                oauth::error_ack(self.mechanism).to_vec()
            }
        }
    }
}

/// Log in with the configured mechanism; the session and the mechanism that opened it.
pub(super) async fn log_in(
    mut client: Client<Guard>,
    configured: Configured,
    user: &str,
    secret: &Secret,
) -> Result<(ImapSession, AuthMechanism), FetchError> {
    let Some(m) = oauth::mechanism(configured) else {
        let s = client
            .login(user, secret.expose())
            .await
            .map_err(|(e, _)| login_error(e, "LOGIN"))?;
        return Ok((s, AuthMechanism::ImapLogin));
    };
    let caps = capabilities(&mut client).await?;
    let has = |c: &str| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
    if !has(&format!("AUTH={}", m.as_str())) {
        return Err(FetchError::Auth(format!(
            "the server does not offer AUTH={} (capabilities: {})",
            m.as_str(),
            safe(&caps.join(" "))
        )));
    }
    let first = oauth::initial_response(m, user, secret.expose());
    let mut exchange = OAuthExchange {
        mechanism: m,
        first: None,
        error: None,
    };
    let command = if has("SASL-IR") {
        format!("{} {}", m.as_str(), oauth::encode(&first))
    } else {
        exchange.first = Some(first);
        m.as_str().to_string()
    };
    match client.authenticate(command, &mut exchange).await {
        Ok(s) => Ok((s, m)),
        Err((e, _)) => Err(match exchange.error.take() {
            Some(challenge) => FetchError::TokenRefused(format!(
                "{} ({})",
                server_text(&e),
                oauth::refusal(m, &challenge)
            )),
            None => login_error(e, "AUTHENTICATE"),
        }),
    }
}

/// The server's capabilities before login (async-imap keeps neither the greeting's nor offers
/// CAPABILITY before login): the command is written on the stream itself, its answer read
/// through the client.
async fn capabilities(client: &mut Client<Guard>) -> Result<Vec<String>, FetchError> {
    use tokio::io::AsyncWriteExt as _;
    const TAG: &str = "ftcap";
    let stream = client.get_mut();
    stream
        .write_all(format!("{TAG} CAPABILITY\r\n").as_bytes())
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    stream
        .flush()
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let mut caps = Vec::new();
    loop {
        let r = client
            .read_response()
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?
            .ok_or_else(|| FetchError::Connect("connection closed at CAPABILITY".into()))?;
        match r.parsed() {
            Response::Capabilities(list) => caps.extend(list.iter().map(|c| match c {
                Capability::Imap4rev1 => "IMAP4rev1".to_string(),
                Capability::Auth(a) => format!("AUTH={a}"),
                Capability::Atom(a) => a.to_string(),
            })),
            Response::Done {
                tag,
                status,
                outcome,
            } if tag.0 == TAG => {
                return match status {
                    Status::Ok => Ok(caps),
                    _ => Err(FetchError::Protocol(format!(
                        "answer to CAPABILITY: {}",
                        safe(outcome.information.as_deref().unwrap_or(""))
                    ))),
                }
            }
            _ => {}
        }
    }
}

/// What a failed login means: only a `NO` is the credentials' fault.
fn login_error(e: async_imap::error::Error, command: &str) -> FetchError {
    match e {
        async_imap::error::Error::No(_) => FetchError::Auth(server_text(&e)),
        e if super::connect::is_disconnect(&e) => FetchError::Refused(format!(
            "the connection was closed at login ({})",
            safe(&e.to_string())
        )),
        e => FetchError::Protocol(format!("answer to {command}: {}", safe(&server_text(&e)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_sasl_ir_the_first_message_answers_the_empty_continuation() {
        let mut x = OAuthExchange {
            mechanism: AuthMechanism::XOAuth2,
            first: Some(b"user=u\x01auth=Bearer t\x01\x01".to_vec()),
            error: None,
        };
        let mut a = &mut x;
        assert_eq!(a.process(b""), b"user=u\x01auth=Bearer t\x01\x01");
        // The next continuation is the server's error: kept, and answered with nothing.
        assert_eq!(a.process(br#"{"status":"401"}"#), b"");
        assert_eq!(x.error.as_deref(), Some(&br#"{"status":"401"}"#[..]));
    }

    #[test]
    fn with_sasl_ir_any_continuation_is_the_error() {
        let mut x = OAuthExchange {
            mechanism: AuthMechanism::OAuthBearer,
            first: None,
            error: None,
        };
        let mut a = &mut x;
        assert_eq!(a.process(br#"{"status":"invalid_token"}"#), b"\x01");
        assert!(x.error.is_some());
    }
}
