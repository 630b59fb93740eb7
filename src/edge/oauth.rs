//! OAuth 2 over SASL, shared by SMTP AUTH and IMAP AUTHENTICATE: the client's first message for
//! XOAUTH2 (Google's form) and OAUTHBEARER (RFC 7628), what to answer a server's error
//! challenge, and that challenge decoded for people (`{"status":"401","scope":"..."}`). The token
//! goes into the message and nowhere else. Not here: the protocols' own commands.
use base64::Engine as _;

use crate::config::AuthMechanism as Configured;
use crate::core::outcome::AuthMechanism;
use crate::core::verdict::{OAUTHBEARER_REFUSAL, XOAUTH2_REFUSAL};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The SASL mechanism an OAuth 2 configuration uses; None for a password.
pub fn mechanism(configured: Configured) -> Option<AuthMechanism> {
    match configured {
        Configured::Password => None,
        Configured::XOAuth2 => Some(AuthMechanism::XOAuth2),
        Configured::OAuthBearer => Some(AuthMechanism::OAuthBearer),
    }
}

/// The client's first message (not yet base64): `user=...^Aauth=Bearer ...^A^A` for XOAUTH2,
/// `n,a=<user>,^Aauth=Bearer ...^A^A` for OAUTHBEARER (`,` and `=` in the user escaped, RFC 5801).
pub fn initial_response(m: AuthMechanism, user: &str, token: &str) -> Vec<u8> {
    match m {
        AuthMechanism::OAuthBearer => {
            let user = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={user},\x01auth=Bearer {token}\x01\x01").into_bytes()
        }
        _ => format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes(),
    }
}

/// What a client answers a server's error challenge to end the exchange: nothing for XOAUTH2,
/// a lone `^A` for OAUTHBEARER (RFC 7628 3.2.3).
pub fn error_ack(m: AuthMechanism) -> &'static [u8] {
    match m {
        AuthMechanism::OAuthBearer => b"\x01",
        _ => b"",
    }
}

/// A server's error challenge (already base64-decoded) as one safe line, marked so the verdict
/// knows a token was refused: `XOAUTH2 error: {"status":"invalid_token"}`.
pub fn refusal(m: AuthMechanism, challenge: &[u8]) -> String {
    let marker = match m {
        AuthMechanism::OAuthBearer => OAUTHBEARER_REFUSAL,
        _ => XOAUTH2_REFUSAL,
    };
    let text = String::from_utf8_lossy(challenge);
    format!(
        "{marker} {}",
        crate::core::text::escape_control(text.trim())
    )
}

/// A base64 challenge as a server sent it (SMTP's 334 text), decoded; the raw text when it is
/// not base64.
pub fn decode_challenge(raw: &str) -> Vec<u8> {
    B64.decode(raw.trim())
        .unwrap_or_else(|_| raw.as_bytes().to_vec())
}

pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_responses_have_each_mechanisms_shape() {
        assert_eq!(
            initial_response(AuthMechanism::XOAuth2, "u@x.test", "tok"),
            b"user=u@x.test\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            initial_response(AuthMechanism::OAuthBearer, "a,b=c@x.test", "tok"),
            b"n,a=a=2Cb=3Dc@x.test,\x01auth=Bearer tok\x01\x01"
        );
    }

    #[test]
    fn an_error_challenge_is_shown_decoded_and_marked() {
        let c = decode_challenge("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=");
        assert_eq!(
            refusal(AuthMechanism::OAuthBearer, &c),
            r#"OAUTHBEARER error: {"status":"invalid_token"}"#
        );
        assert_eq!(
            refusal(AuthMechanism::XOAuth2, b"\x1b[31m{}"),
            "XOAUTH2 error: \\x1b[31m{}"
        );
        assert_eq!(decode_challenge("not base64!"), b"not base64!");
        assert_eq!(error_ack(AuthMechanism::OAuthBearer), b"\x01");
    }
}
