//! The stand-in's SMTP side: an accepted message written out with SendGrid's Received headers
//! (the API intake with milliseconds, the filter hop in Go's time format with no `;`) and handed
//! to the lab MX by flowtest's own SMTP client, STARTTLS required. Not here: HTTP.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use flowtest::config::{SmtpSender, TlsMode};
use flowtest::edge::smtp::{self, SendOutcome};

/// The lab account's id, as SendGrid writes it (base64) in the intake hop's `from`.
const ACCOUNT_ID: &str = "4242";
/// The intake and filter hosts' names, shaped like SendGrid's.
const INTAKE_HOST: &str = "geopod-ismtpd-5-0";
const FILTER_HOST: &str = "filter0001p1lab1";

/// A validated request.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    port: u16,
    helo: String,
    ca_file: Option<std::path::PathBuf>,
    ca_pem: Option<Vec<u8>>,
    started: std::time::Instant,
}

impl Relay {
    /// `to` is `host:port`; `ca` a CA file trusted for STARTTLS.
    pub fn new(to: &str, ca: Option<&Path>, helo: &str) -> Result<Relay, String> {
        let (host, port) = to
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("--relay-to {to:?}: give host:port"))?;
        let ca_pem = match ca {
            Some(p) => {
                let pem =
                    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                flowtest::edge::tls::parse_ca(&pem, p).map_err(|e| e.to_string())?;
                Some(pem)
            }
            None => None,
        };
        Ok(Relay {
            inner: Arc::new(Inner {
                host,
                port,
                helo: helo.to_string(),
                ca_file: ca.map(Path::to_path_buf),
                ca_pem,
                started: flowtest::clock::std_instant(),
            }),
        })
    }

    /// Relay `mail` in the background (SendGrid has answered 202 already).
    pub fn spawn(&self, mail: Mail, id: String, accepted_at: DateTime<Utc>) {
        let relay = self.clone();
        tokio::spawn(async move { relay.deliver(mail, &id, accepted_at).await });
    }

    async fn deliver(&self, mail: Mail, id: &str, accepted_at: DateTime<Utc>) {
        let r = &self.inner;
        let uptime = r.started.elapsed();
        let message = render(&mail, id, accepted_at, flowtest::clock::now(), uptime);
        let cfg = SmtpSender {
            host: r.host.clone(),
            port: r.port,
            tls: TlsMode::Starttls,
            ca_file: r.ca_file.clone(),
            helo: Some(r.helo.clone()),
            mail_from: mail.from.clone(),
            rcpt_to: mail.to.clone(),
            header_from: mail.from.clone(),
            header_to: mail.to.join(", "),
            auth: None,
            command_timeout: Duration::from_secs(10),
        };
        let prepared = smtp::Prepared {
            ca_pem: r.ca_pem.clone(),
            password: None,
        };
        let deadline = flowtest::clock::instant() + Duration::from_secs(30);
        match smtp::send_until(&cfg, &prepared, &message, deadline).await {
            SendOutcome::Accepted(s) => tracing::info!(%id, reply = %s.text, "relayed"),
            other => tracing::warn!(%id, reply = %other.submission().text, "relay failed"),
        }
    }
}

/// The message as SendGrid hands it on: its two Received hops first (newest on top), then the
/// headers it writes, then the request's own headers.
pub fn render(
    mail: &Mail,
    id: &str,
    accepted_at: DateTime<Utc>,
    relayed_at: DateTime<Utc>,
    uptime: Duration,
) -> Vec<u8> {
    let account = base64::engine::general_purpose::STANDARD_NO_PAD.encode(ACCOUNT_ID);
    let filter_id = format!(
        "{FILTER_HOST}-{}-{:X}-0",
        std::process::id(),
        relayed_at.timestamp()
    );
    let mut m = String::new();
    m.push_str(&format!(
        "Received: by {FILTER_HOST}.sendgrid.net with SMTP id {filter_id} {} m=+{}.{:09}\r\n",
        relayed_at.format("%Y-%m-%d %H:%M:%S%.9f +0000 UTC"),
        uptime.as_secs(),
        uptime.subsec_nanos()
    ));
    m.push_str(&format!(
        "Received: from {account} (unknown) by {INTAKE_HOST} (SG) with HTTP id {id} {}\r\n",
        accepted_at.format("%a, %d %b %Y %H:%M:%S%.3f +0000 (UTC)")
    ));
    let has = |name: &str| {
        mail.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("Date") {
        m.push_str(&format!("Date: {}\r\n", accepted_at.to_rfc2822()));
    }
    match &mail.from_name {
        Some(n) => m.push_str(&format!("From: \"{n}\" <{}>\r\n", mail.from)),
        None => m.push_str(&format!("From: {}\r\n", mail.from)),
    }
    m.push_str(&format!("To: {}\r\n", mail.to.join(", ")));
    m.push_str(&format!("Subject: {}\r\n", mail.subject));
    if !has("Message-ID") {
        m.push_str(&format!("Message-ID: <{id}@{INTAKE_HOST}>\r\n"));
    }
    for (n, v) in &mail.headers {
        m.push_str(&format!("{n}: {v}\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str(&mail.text.replace("\r\n", "\n").replace('\n', "\r\n"));
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_hops_have_sendgrids_shapes() {
        let mail = Mail {
            from: "s@provider.test".into(),
            from_name: None,
            to: vec!["a@corp.test".into()],
            subject: "s".into(),
            text: "b\r\n".into(),
            headers: vec![("Message-ID".into(), "<1@p>".into())],
        };
        let at: DateTime<Utc> = "2021-06-17T14:45:16.434Z".parse().unwrap();
        let later = at + chrono::Duration::milliseconds(1500);
        let m = String::from_utf8(render(&mail, "abc", at, later, Duration::from_millis(2500)))
            .unwrap();
        let lines: Vec<&str> = m.split("\r\n").collect();
        assert!(
            lines[0].starts_with(
                "Received: by filter0001p1lab1.sendgrid.net with SMTP id filter0001p1lab1-"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].ends_with(" 2021-06-17 14:45:17.934000000 +0000 UTC m=+2.500000000"),
            "{}",
            lines[0]
        );
        assert!(!lines[0].contains(';'));
        assert_eq!(lines[1], "Received: from NDI0Mg (unknown) by geopod-ismtpd-5-0 (SG) with HTTP id abc Thu, 17 Jun 2021 14:45:16.434 +0000 (UTC)");
        assert_eq!(m.matches("Message-ID").count(), 1);
    }
}
