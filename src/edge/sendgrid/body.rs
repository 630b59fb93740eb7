//! The JSON body of a v3 `mail/send` request, built from the rendered probe message, and the
//! error list SendGrid answers with. Not here: HTTP, retries or any secret.
use serde_json::{json, Map, Value};

use crate::config::SendGridSender;
use crate::core::probe::H_ID;

/// The `custom_args` key that carries the probe id (shown in SendGrid's activity feed and events).
pub const PROBE_ID_ARG: &str = "flowtest_probe_id";

/// Headers SendGrid refuses in `headers` (400 "reserved"), or writes itself from the request's
/// own fields; the probe's values for these travel in `from`, `subject`, `content` instead.
const RESERVED: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "received",
    "dkim-signature",
    "x-sg-id",
    "x-sg-eid",
    "date",
];

/// One header of the rendered message, unfolded.
struct Header {
    name: String,
    value: String,
}

/// Split a rendered message into its unfolded headers and its body.
fn split(message: &[u8]) -> (Vec<Header>, String) {
    let text = String::from_utf8_lossy(message);
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => (&text[..], ""),
    };
    let mut headers: Vec<Header> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(h) = headers.last_mut() {
                h.value.push(' ');
                h.value.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push(Header {
                name: n.trim().to_string(),
                value: v.trim().to_string(),
            });
        }
    }
    (headers, body.to_string())
}

/// `Name <addr>` or a bare address, as SendGrid's `{"email", "name"}`.
fn address(text: &str) -> Value {
    match (text.rfind('<'), text.rfind('>')) {
        (Some(l), Some(r)) if l < r => {
            let name = text[..l].trim().trim_matches('"');
            let email = text[l + 1..r].trim();
            if name.is_empty() {
                json!({ "email": email })
            } else {
                json!({ "email": email, "name": name })
            }
        }
        _ => json!({ "email": text.trim() }),
    }
}

/// The request body for `message` (a probe rendered with CRLF line ends): the envelope from the
/// sender's configuration, the probe's own headers in `headers` (its tag headers and Message-ID
/// included; reserved names travel in their own fields), and the probe id in `custom_args`.
pub fn mail_send_body(cfg: &SendGridSender, message: &[u8]) -> Value {
    let (headers, body) = split(message);
    let mut extra = Map::new();
    let mut subject = String::new();
    let mut probe_id = None;
    for h in headers {
        let lower = h.name.to_ascii_lowercase();
        if lower == "subject" {
            subject = h.value;
        } else if !RESERVED.contains(&lower.as_str()) {
            if h.name.eq_ignore_ascii_case(H_ID) {
                probe_id = Some(h.value.clone());
            }
            extra.insert(h.name, Value::String(h.value));
        }
    }
    let to: Vec<Value> = cfg.rcpt_to.iter().map(|r| json!({ "email": r })).collect();
    let mut v = json!({
        "personalizations": [{ "to": to }],
        "from": address(&cfg.header_from),
        "subject": subject,
        "content": [{ "type": "text/plain", "value": body }],
        "headers": extra,
        // Probes are measured, not marketed: no link rewriting or open pixel in them.
        "tracking_settings": {
            "click_tracking": { "enable": false },
            "open_tracking": { "enable": false },
        },
    });
    if let Some(id) = probe_id {
        v["custom_args"] = json!({ PROBE_ID_ARG: id });
    }
    v
}

/// One entry of SendGrid's `{"errors": [{"message", "field", "help"}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub message: String,
    pub field: Option<String>,
    pub help: Option<String>,
}

/// SendGrid's error list from a response body; empty when the body is not that shape.
pub fn api_errors(body: &[u8]) -> Vec<ApiError> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    v.get("errors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| ApiError {
                    message: text(e, "message").unwrap_or_else(|| "(no message)".into()),
                    field: text(e, "field"),
                    help: text(e, "help"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The errors field by field on one line: `[from.email] message (help: url); ...`, control
/// characters escaped (the text comes from the network).
pub fn describe_errors(errors: &[ApiError]) -> String {
    let one = |e: &ApiError| {
        let mut s = String::new();
        if let Some(f) = &e.field {
            s.push_str(&format!("[{f}] "));
        }
        s.push_str(&e.message);
        if let Some(h) = &e.help {
            s.push_str(&format!(" (help: {h})"));
        }
        crate::core::text::escape_control(&s).into_owned()
    };
    errors.iter().map(one).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::SecretRef;

    fn cfg() -> SendGridSender {
        SendGridSender {
            base_url: "https://api.sendgrid.com".into(),
            api_key: SecretRef::Env("K".into()),
            ca_file: None,
            mail_from: "probe@example.net".into(),
            rcpt_to: vec!["a@example.org".into(), "b@example.org".into()],
            header_from: "Flowtest <probe@example.net>".into(),
            header_to: "a@example.org".into(),
            request_timeout: std::time::Duration::from_secs(5),
        }
    }

    #[test]
    fn the_tag_survives_and_reserved_headers_move_to_fields() {
        let msg = b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nFrom: x\r\nTo: y\r\nSubject: flowtest probe s 1\r\nMessage-ID: <1@p>\r\nX-Flowtest-Id: 0192\r\nX-Flowtest-Signature: v1=ab\r\n  cd\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        let v = mail_send_body(&cfg(), msg);
        assert_eq!(v["subject"], "flowtest probe s 1");
        assert_eq!(
            v["from"],
            json!({"email": "probe@example.net", "name": "Flowtest"})
        );
        assert_eq!(v["personalizations"][0]["to"][1]["email"], "b@example.org");
        assert_eq!(v["content"][0]["value"], "body\r\n");
        let h = v["headers"].as_object().unwrap();
        assert_eq!(h["X-Flowtest-Id"], "0192");
        assert_eq!(h["X-Flowtest-Signature"], "v1=ab cd");
        assert_eq!(h["Message-ID"], "<1@p>");
        for reserved in ["From", "To", "Subject", "Content-Type", "Date"] {
            assert!(!h.contains_key(reserved), "{reserved} in headers");
        }
        assert_eq!(v["custom_args"][PROBE_ID_ARG], "0192");
    }

    #[test]
    fn error_lists_are_read_field_by_field() {
        let body = br#"{"errors":[{"message":"The from address does not match","field":"from","help":"http://x/h"},{"message":"bad\nline","field":null,"help":null}]}"#;
        let errs = api_errors(body);
        assert_eq!(errs.len(), 2);
        assert_eq!(
            describe_errors(&errs),
            "[from] The from address does not match (help: http://x/h); bad\\x0aline"
        );
        assert!(api_errors(b"<html>").is_empty());
    }
}
