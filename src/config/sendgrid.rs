//! The `kind = "sendgrid"` sender's settings: SendGrid's v3 mail-send API, its base URL and the
//! API key's reference. Parsing lives with the other sender kinds in `scenario`; the request
//! itself is `edge::sendgrid`. Not here: any secret value or connection.
use std::path::PathBuf;
use std::time::Duration;

use super::secret::SecretRef;

/// SendGrid's own API endpoint.
pub const DEFAULT_SENDGRID_URL: &str = "https://api.sendgrid.com";

/// A probe sent through `POST {base_url}/v3/mail/send`.
#[derive(Debug, Clone)]
pub struct SendGridSender {
    /// Scheme and host (and port), no trailing slash.
    pub base_url: String,
    /// The API key (a Bearer token), by reference.
    pub api_key: SecretRef,
    /// An extra CA to trust for the API's certificate.
    pub ca_file: Option<PathBuf>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub header_from: String,
    pub header_to: String,
    /// Bound on connecting and on each request (never past the probe's deadline).
    pub request_timeout: Duration,
}

/// A base URL as configured, checked: `https://host[:port]` (or `http://` with
/// `allow_plaintext`, which sends the API key in clear text), no path, query or credentials.
pub fn check_base_url(raw: &str, allow_plaintext: bool) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?}: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_plaintext => {}
        "http" => {
            return Err(
                "http:// sends the API key in clear text; use https or set allow_plaintext = true"
                    .into(),
            )
        }
        other => return Err(format!("{other}:// is not http or https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the URL; use api_key_env or api_key_file".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{raw:?}: give only scheme, host and port (the path /v3/mail/send is added)"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            check_base_url("https://api.sendgrid.com/", false).unwrap(),
            "https://api.sendgrid.com"
        );
        assert_eq!(
            check_base_url("http://127.0.0.1:8025", true).unwrap(),
            "http://127.0.0.1:8025"
        );
        let e = check_base_url("http://127.0.0.1:8025", false).unwrap_err();
        assert!(e.contains("allow_plaintext"), "{e}");
        assert!(check_base_url("ftp://x", true).is_err());
        assert!(check_base_url("https://u:p@x", false)
            .unwrap_err()
            .contains("credentials"));
        assert!(check_base_url("https://x/v3/mail/send", false).is_err());
        assert!(check_base_url("not a url", false).is_err());
    }
}
