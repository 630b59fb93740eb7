//! Probe identity: the tag a probe carries, its HMAC signature, the probe message itself, and
//! the check that a message in a mailbox really is one of this installation's probes.
//!
//! The signature is what makes cleanup safe: flowtest deletes only messages whose tag verifies
//! under this installation's key, so a forged or foreign "probe" is never touched.
//! Not here: choosing ids or reading clocks (callers pass them in), sending, fetching.
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

pub const H_ID: &str = "X-Flowtest-Id";
pub const H_SCENARIO: &str = "X-Flowtest-Scenario";
pub const H_SENT_AT: &str = "X-Flowtest-Sent-At";
pub const H_SIGNATURE: &str = "X-Flowtest-Signature";
/// The header names, as an IMAP `HEADER.FIELDS` list.
pub const IMAP_FIELDS: &str =
    "X-Flowtest-Id X-Flowtest-Scenario X-Flowtest-Sent-At X-Flowtest-Signature";

const SIG_VERSION: &str = "v1";
/// Shortest key accepted: an HMAC key shorter than this is guessable.
pub const MIN_KEY_LEN: usize = 16;

/// This installation's probe key (HMAC-SHA256). Debug never shows it.
#[derive(Clone)]
pub struct ProbeKey(Vec<u8>);

impl std::fmt::Debug for ProbeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeKey([redacted])")
    }
}

impl ProbeKey {
    pub fn new(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the probe key must be at least {MIN_KEY_LEN} bytes"
            ));
        }
        Ok(ProbeKey(bytes.to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; new_from_slice cannot fail for Hmac.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }
}

/// What a probe carries: who it is, which scenario sent it, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTag {
    pub id: Uuid,
    pub scenario: String,
    /// Exactly as written in `X-Flowtest-Sent-At` (RFC 3339, nanoseconds, UTC).
    pub sent_at_text: String,
    pub sent_at: DateTime<Utc>,
}

impl ProbeTag {
    pub fn new(id: Uuid, scenario: &str, sent_at: DateTime<Utc>) -> Self {
        ProbeTag {
            id,
            scenario: scenario.to_string(),
            sent_at_text: sent_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            sent_at,
        }
    }

    fn mac_input(id: &str, scenario: &str, sent_at: &str) -> Vec<u8> {
        // NUL separators: no field can contain one (headers are single-line text), so the
        // input is unambiguous.
        [SIG_VERSION, id, scenario, sent_at].join("\0").into_bytes()
    }

    /// `v1=<hex HMAC-SHA256>` over the version, id, scenario and send time.
    pub fn signature(&self, key: &ProbeKey) -> String {
        let mut mac = key.mac();
        mac.update(&Self::mac_input(
            &self.id.to_string(),
            &self.scenario,
            &self.sent_at_text,
        ));
        format!("{SIG_VERSION}={}", hex::encode(mac.finalize().into_bytes()))
    }

    pub fn message_id(&self, domain: &str) -> String {
        format!("<{}@{}>", self.id, domain)
    }

    /// The four tag headers, in order.
    pub fn headers(&self, key: &ProbeKey) -> [(&'static str, String); 4] {
        [
            (H_ID, self.id.to_string()),
            (H_SCENARIO, self.scenario.clone()),
            (H_SENT_AT, self.sent_at_text.clone()),
            (H_SIGNATURE, self.signature(key)),
        ]
    }
}

/// Everything needed to write one probe message.
#[derive(Debug, Clone)]
pub struct ProbeMessage<'a> {
    pub tag: &'a ProbeTag,
    pub domain: &'a str,
    pub header_from: &'a str,
    pub header_to: &'a str,
    pub extra_headers: &'a [(String, String)],
}

impl ProbeMessage<'_> {
    /// The RFC 5322 message, CRLF line ends, 7-bit ASCII.
    pub fn render(&self, key: &ProbeKey) -> Vec<u8> {
        let t = self.tag;
        let mut m = String::with_capacity(1024);
        let mut h = |name: &str, value: &str| {
            m.push_str(name);
            m.push_str(": ");
            m.push_str(value);
            m.push_str("\r\n");
        };
        h("Date", &t.sent_at.to_rfc2822());
        h("From", self.header_from);
        h("To", self.header_to);
        h(
            "Subject",
            &format!("flowtest probe {} {}", t.scenario, t.id),
        );
        h("Message-ID", &t.message_id(self.domain));
        for (name, value) in t.headers(key) {
            h(name, &value);
        }
        for (name, value) in self.extra_headers {
            h(name, value);
        }
        h("Auto-Submitted", "auto-generated");
        h("MIME-Version", "1.0");
        h("Content-Type", "text/plain; charset=us-ascii");
        m.push_str("\r\n");
        m.push_str(&format!(
            "This is a synthetic mail-flow probe sent by flowtest (scenario {}).\r\n\
             It is removed automatically once measured; it carries no content.\r\n",
            t.scenario
        ));
        m.into_bytes()
    }
}

/// What a message in a mailbox is, as far as probes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A probe of this installation: its signature verifies.
    Valid(ProbeTag),
    /// Carries probe headers that do not verify (forged, foreign key, altered). Never touched.
    Forged(String),
    /// No probe headers at all.
    NotAProbe,
}

impl Verdict {
    pub fn valid(&self) -> Option<&ProbeTag> {
        match self {
            Verdict::Valid(t) => Some(t),
            _ => None,
        }
    }
}

/// Value of the first header named `name` in a header block (unfolded, trimmed).
/// Works on a full message or on an IMAP `HEADER.FIELDS` block; stops at the blank line.
pub fn header_value(block: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(block);
    let mut found: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(v) = found.as_mut() {
                if !v.is_empty() {
                    v.push(' ');
                }
                v.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim_end().eq_ignore_ascii_case(name) {
                found = Some(v.trim().to_string());
            }
        }
    }
    found
}

/// Check a header block's probe tag against the key (constant-time compare).
pub fn verify(block: &[u8], key: &ProbeKey) -> Verdict {
    let Some(id_text) = header_value(block, H_ID) else {
        return Verdict::NotAProbe;
    };
    let (Some(scenario), Some(sent_at_text), Some(sig)) = (
        header_value(block, H_SCENARIO),
        header_value(block, H_SENT_AT),
        header_value(block, H_SIGNATURE),
    ) else {
        return Verdict::Forged("incomplete probe headers".into());
    };
    let Ok(id) = Uuid::parse_str(&id_text) else {
        return Verdict::Forged("X-Flowtest-Id is not a UUID".into());
    };
    let Some(hexsig) = sig.strip_prefix("v1=") else {
        return Verdict::Forged("unknown signature version".into());
    };
    let Ok(sig_bytes) = hex::decode(hexsig) else {
        return Verdict::Forged("signature is not hex".into());
    };
    let mut mac = key.mac();
    mac.update(&ProbeTag::mac_input(&id_text, &scenario, &sent_at_text));
    if mac.verify_slice(&sig_bytes).is_err() {
        return Verdict::Forged("signature does not verify under this installation's key".into());
    }
    let Ok(sent_at) = DateTime::parse_from_rfc3339(&sent_at_text) else {
        return Verdict::Forged("X-Flowtest-Sent-At is not RFC 3339".into());
    };
    Verdict::Valid(ProbeTag {
        id,
        scenario,
        sent_at_text,
        sent_at: sent_at.with_timezone(&Utc),
    })
}

/// A bounce (DSN) quotes the original headers in its body. Find a verified probe tag there.
/// Only the first 256 KiB are scanned: quoted headers sit near the top of a DSN.
pub fn quoted_probe(message: &[u8], key: &ProbeKey) -> Option<ProbeTag> {
    let hay = &message[..message.len().min(256 * 1024)];
    let needle = H_ID.as_bytes();
    let mut start = 0;
    while let Some(pos) = find_ci(&hay[start..], needle) {
        let at = start + pos;
        // Must start a line: beginning of the block or right after '\n'.
        if at == 0 || hay[at - 1] == b'\n' {
            // The quoted header block runs from the previous blank line; scan from the
            // start of the enclosing header block so sibling fields are found.
            let block_start = hay[..at]
                .windows(2)
                .rposition(|w| w == b"\n\n")
                .map(|p| p + 2)
                .or_else(|| {
                    hay[..at]
                        .windows(4)
                        .rposition(|w| w == b"\r\n\r\n")
                        .map(|p| p + 4)
                })
                .unwrap_or(0);
            if let Verdict::Valid(tag) = verify(&hay[block_start..], key) {
                return Some(tag);
            }
            // Block boundaries in DSNs vary; also try from the tag line itself.
            if let Verdict::Valid(tag) = verify_fields_from(&hay[at..], key) {
                return Some(tag);
            }
        }
        start = at + needle.len();
    }
    None
}

/// Verify when the probe fields are the first lines of `block` but maybe not the whole header.
fn verify_fields_from(block: &[u8], key: &ProbeKey) -> Verdict {
    // Take up to 8 header lines from here; the four tag headers are written together.
    let mut end = 0;
    let mut lines = 0;
    while end < block.len() && lines < 8 {
        match block[end..].iter().position(|b| *b == b'\n') {
            Some(p) => {
                end += p + 1;
                lines += 1;
            }
            None => end = block.len(),
        }
    }
    verify(&block[..end], key)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0].to_ascii_lowercase();
    let upper = needle[0].to_ascii_uppercase();
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let rest = &hay[i..hay.len() - needle.len() + 1];
        let next = memchr::memchr2(first, upper, rest)?;
        let j = i + next;
        if hay[j..j + needle.len()].eq_ignore_ascii_case(needle) {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key() -> ProbeKey {
        ProbeKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn tag() -> ProbeTag {
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 6, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        ProbeTag::new(
            Uuid::parse_str("019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b").unwrap(),
            "lab-inbound",
            t,
        )
    }

    fn message() -> Vec<u8> {
        let t = tag();
        ProbeMessage {
            tag: &t,
            domain: "probe.corp.test",
            header_from: "probe@provider.test",
            header_to: "alice@corp.test",
            extra_headers: &[("X-Lab-Spam".into(), "yes".into())],
        }
        .render(&key())
    }

    #[test]
    fn a_rendered_probe_verifies() {
        let m = message();
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(
            text.contains("Message-ID: <019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b@probe.corp.test>\r\n")
        );
        assert!(text.contains("X-Flowtest-Sent-At: 2026-11-28T06:00:00.123456789Z\r\n"));
        assert!(text.contains("X-Lab-Spam: yes\r\n"));
        assert_eq!(verify(&m, &key()), Verdict::Valid(tag()));
    }

    #[test]
    fn forged_or_foreign_probes_do_not_verify() {
        let m = String::from_utf8(message()).unwrap();
        let other = ProbeKey::new(b"another-installation-key!!").unwrap();
        assert!(matches!(verify(m.as_bytes(), &other), Verdict::Forged(_)));
        // Same signature, different scenario: the tag was altered.
        let altered = m.replace(
            "X-Flowtest-Scenario: lab-inbound",
            "X-Flowtest-Scenario: lab-outbound",
        );
        assert!(matches!(
            verify(altered.as_bytes(), &key()),
            Verdict::Forged(_)
        ));
        let truncated = m.replace("X-Flowtest-Signature", "X-Other");
        assert!(matches!(
            verify(truncated.as_bytes(), &key()),
            Verdict::Forged(_)
        ));
        assert_eq!(
            verify(b"Subject: hi\r\n\r\nbody", &key()),
            Verdict::NotAProbe
        );
        assert_eq!(verify(b"", &key()), Verdict::NotAProbe);
    }

    #[test]
    fn header_block_from_imap_fields_and_folding() {
        let t = tag();
        let sig = t.signature(&key());
        // IMAP HEADER.FIELDS returns the fields in any order, possibly folded.
        let block = format!(
            "X-Flowtest-Signature:\r\n {sig}\r\nx-flowtest-id: {}\r\nX-Flowtest-Scenario: lab-inbound\r\nX-Flowtest-Sent-At: {}\r\n\r\n",
            t.id, t.sent_at_text
        );
        assert_eq!(verify(block.as_bytes(), &key()), Verdict::Valid(t));
    }

    #[test]
    fn bounces_quoting_a_probe_are_recognised() {
        let orig = String::from_utf8(message()).unwrap();
        let dsn = format!(
            "From: MAILER-DAEMON@dell.corp.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n--b\r\n\
             Content-Type: text/rfc822-headers\r\n\r\nReceived: by mx.corp.test\r\n{}\r\n--b--\r\n",
            orig.split("\r\n\r\n").next().unwrap()
        );
        assert_eq!(quoted_probe(dsn.as_bytes(), &key()), Some(tag()));
        let forged = dsn.replace("lab-inbound", "lab-outbound");
        assert_eq!(quoted_probe(forged.as_bytes(), &key()), None);
        assert_eq!(quoted_probe(b"X-Flowtest-Id", &key()), None);
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", key()), "ProbeKey([redacted])");
        assert!(ProbeKey::new(b"short").is_err());
    }
}
