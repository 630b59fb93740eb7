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
pub const H_RCPT: &str = "X-Flowtest-Rcpt";
pub const H_SIGNATURE: &str = "X-Flowtest-Signature";
/// The header fields verification reads, as an IMAP `HEADER.FIELDS` list.
pub const IMAP_FIELDS: &str = "Message-ID X-Flowtest-Id X-Flowtest-Scenario X-Flowtest-Sent-At \
                               X-Flowtest-Rcpt X-Flowtest-Signature";

/// Version 2 binds the Message-ID, the recipients and the key id; version 1 bound neither, so a
/// v1 tag copied into any message verified. v1 tags are never trusted.
const SIG_VERSION: &str = "v2";
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

    /// A short public name for the key (8 hex digits of a hash of it), written into every tag so a
    /// probe signed with another key (another installation, a rotated key) is told apart at once.
    pub fn id(&self) -> String {
        use sha2::Digest;
        let digest = Sha256::new()
            .chain_update(b"flowtest key id\0")
            .chain_update(&self.0)
            .finalize();
        hex::encode(&digest[..4])
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; new_from_slice cannot fail for Hmac.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }
}

/// This installation's probe authority: its key and its probe domain, both bound into every tag.
#[derive(Debug, Clone)]
pub struct Installation {
    pub key: ProbeKey,
    /// Probe Message-IDs are `<uuid@domain>`.
    pub domain: String,
}

impl Installation {
    pub fn new(key: ProbeKey, domain: &str) -> Self {
        Installation {
            key,
            domain: domain.to_string(),
        }
    }
    /// [`verify`] under this installation.
    pub fn verify(&self, block: &[u8]) -> Verdict {
        verify(block, &self.key, &self.domain)
    }
    /// [`quoted_probe`] under this installation.
    pub fn quoted_probe(&self, message: &[u8]) -> Option<ProbeTag> {
        quoted_probe(message, &self.key, &self.domain)
    }
}

/// What a probe carries: who it is, which scenario sent it, when, to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTag {
    pub id: Uuid,
    pub scenario: String,
    /// Exactly as written in `X-Flowtest-Sent-At` (RFC 3339, nanoseconds, UTC).
    pub sent_at_text: String,
    pub sent_at: DateTime<Utc>,
    /// The envelope recipients, as written in `X-Flowtest-Rcpt` (comma-separated).
    pub rcpt: String,
}

/// The fields the signature covers, in order.
struct MacInput<'a> {
    key_id: &'a str,
    id: &'a str,
    scenario: &'a str,
    sent_at: &'a str,
    message_id: &'a str,
    rcpt: &'a str,
}

impl MacInput<'_> {
    fn bytes(&self) -> Vec<u8> {
        // NUL separators: no field can contain one (headers are single-line text), so the
        // input is unambiguous.
        [
            SIG_VERSION,
            self.key_id,
            self.id,
            self.scenario,
            self.sent_at,
            self.message_id,
            self.rcpt,
        ]
        .join("\0")
        .into_bytes()
    }
}

/// The Message-ID a probe with this id must carry.
pub fn implied_message_id(id: &Uuid, domain: &str) -> String {
    format!("<{id}@{domain}>")
}

impl ProbeTag {
    pub fn new(id: Uuid, scenario: &str, sent_at: DateTime<Utc>) -> Self {
        ProbeTag {
            id,
            scenario: scenario.to_string(),
            sent_at_text: sent_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            sent_at,
            rcpt: String::new(),
        }
    }

    /// The same tag, bound to these envelope recipients.
    pub fn to(mut self, recipients: &[String]) -> Self {
        self.rcpt = recipients.join(", ");
        self
    }

    /// `v2 k=<key id> <hex HMAC-SHA256>` over the version, key id, probe id, scenario, send time,
    /// the Message-ID the probe must carry, and its recipients.
    pub fn signature(&self, key: &ProbeKey, domain: &str) -> String {
        let key_id = key.id();
        let mut mac = key.mac();
        mac.update(
            &MacInput {
                key_id: &key_id,
                id: &self.id.to_string(),
                scenario: &self.scenario,
                sent_at: &self.sent_at_text,
                message_id: &self.message_id(domain),
                rcpt: &self.rcpt,
            }
            .bytes(),
        );
        format!(
            "{SIG_VERSION} k={key_id} {}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    pub fn message_id(&self, domain: &str) -> String {
        implied_message_id(&self.id, domain)
    }

    /// The tag headers, in order.
    pub fn headers(&self, key: &ProbeKey, domain: &str) -> [(&'static str, String); 5] {
        [
            (H_ID, self.id.to_string()),
            (H_SCENARIO, self.scenario.clone()),
            (H_SENT_AT, self.sent_at_text.clone()),
            (H_RCPT, self.rcpt.clone()),
            (H_SIGNATURE, self.signature(key, domain)),
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
        for (name, value) in t.headers(key, self.domain) {
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
    /// A probe of this installation: its signature verifies and it carries the Message-ID its id
    /// implies.
    Valid(ProbeTag),
    /// A genuine tag on a message whose Message-ID is not the probe's: tag headers copied into
    /// another message. Never touched; reported as `probe_forged`.
    Transplanted(ProbeTag),
    /// Carries probe headers that do not verify (altered, incomplete, another installation's or
    /// a retired key, an old unbound v1 tag). Never touched.
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

/// Check a header block's probe tag against the key (constant-time compare) and the probe
/// domain. The block must hold the message's own `Message-ID`.
pub fn verify(block: &[u8], key: &ProbeKey, domain: &str) -> Verdict {
    verify_block(block, key, domain, MessageIdRule::Required)
}

/// Whether the checked block must carry the probe's Message-ID: a message's own header does;
/// a bounce's quoted headers may omit it (not every DSN quotes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageIdRule {
    Required,
    IfPresent,
}

/// The tag fields of a header block, as written.
struct TagFields {
    id: String,
    scenario: String,
    sent_at: String,
    rcpt: String,
    signature: String,
}

fn tag_fields(block: &[u8]) -> Result<Option<TagFields>, String> {
    let Some(id) = header_value(block, H_ID) else {
        return Ok(None);
    };
    match (
        header_value(block, H_SCENARIO),
        header_value(block, H_SENT_AT),
        header_value(block, H_RCPT),
        header_value(block, H_SIGNATURE),
    ) {
        (Some(scenario), Some(sent_at), Some(rcpt), Some(signature)) => Ok(Some(TagFields {
            id,
            scenario,
            sent_at,
            rcpt,
            signature,
        })),
        _ => Err("incomplete probe headers".into()),
    }
}

/// `v2 k=<key id> <hex>` -> (key id, signature bytes).
fn parse_signature(sig: &str) -> Result<(&str, Vec<u8>), String> {
    let mut parts = sig.split_whitespace();
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(SIG_VERSION), Some(k), Some(hexsig), None) => {
            let key_id = k.strip_prefix("k=").ok_or("signature has no key id")?;
            let bytes = hex::decode(hexsig).map_err(|_| "signature is not hex".to_string())?;
            Ok((key_id, bytes))
        }
        _ if sig.starts_with("v1=") => {
            Err("an unbound v1 tag (it does not bind the Message-ID): never trusted".into())
        }
        _ => Err("unknown signature format".into()),
    }
}

fn verify_block(block: &[u8], key: &ProbeKey, domain: &str, rule: MessageIdRule) -> Verdict {
    let f = match tag_fields(block) {
        Ok(Some(f)) => f,
        Ok(None) => return Verdict::NotAProbe,
        Err(why) => return Verdict::Forged(why),
    };
    let Ok(id) = Uuid::parse_str(&f.id) else {
        return Verdict::Forged("X-Flowtest-Id is not a UUID".into());
    };
    let (key_id, sig) = match parse_signature(&f.signature) {
        Ok(v) => v,
        Err(why) => return Verdict::Forged(why),
    };
    let ours = key.id();
    if key_id != ours {
        return Verdict::Forged(format!(
            "signed with another key (k={key_id}; this installation's is k={ours})"
        ));
    }
    let implied = implied_message_id(&id, domain);
    let mut mac = key.mac();
    mac.update(
        &MacInput {
            key_id: &ours,
            id: &f.id,
            scenario: &f.scenario,
            sent_at: &f.sent_at,
            message_id: &implied,
            rcpt: &f.rcpt,
        }
        .bytes(),
    );
    if mac.verify_slice(&sig).is_err() {
        return Verdict::Forged("signature does not verify under this installation's key".into());
    }
    let Ok(sent_at) = DateTime::parse_from_rfc3339(&f.sent_at) else {
        return Verdict::Forged("X-Flowtest-Sent-At is not RFC 3339".into());
    };
    let tag = ProbeTag {
        id,
        scenario: f.scenario,
        sent_at_text: f.sent_at,
        sent_at: sent_at.with_timezone(&Utc),
        rcpt: f.rcpt,
    };
    match (header_value(block, "Message-ID"), rule) {
        (Some(mid), _) if mid.trim() == implied => Verdict::Valid(tag),
        (None, MessageIdRule::IfPresent) => Verdict::Valid(tag),
        _ => Verdict::Transplanted(tag),
    }
}

/// A bounce (DSN) quotes the original headers in its body. Find a verified probe tag there.
/// Only the first 256 KiB are scanned: quoted headers sit near the top of a DSN.
pub fn quoted_probe(message: &[u8], key: &ProbeKey, domain: &str) -> Option<ProbeTag> {
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
            let quoted = &hay[block_start..];
            match verify_block(quoted, key, domain, MessageIdRule::IfPresent) {
                Verdict::Valid(tag) => return Some(tag),
                // Quoted beside another message's Message-ID: a copied tag, not our bounce.
                Verdict::Transplanted(_) => {}
                // Block boundaries in DSNs vary; also try from the tag line itself.
                _ => {
                    if let Verdict::Valid(tag) = verify_fields_from(&hay[at..], key, domain) {
                        return Some(tag);
                    }
                }
            }
        }
        start = at + needle.len();
    }
    None
}

/// Verify when the probe fields are the first lines of `block` but maybe not the whole header.
fn verify_fields_from(block: &[u8], key: &ProbeKey, domain: &str) -> Verdict {
    // Take up to 8 header lines from here; the tag headers are written together.
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
    verify_block(&block[..end], key, domain, MessageIdRule::IfPresent)
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

    const DOMAIN: &str = "probe.corp.test";

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
        .to(&["alice@corp.test".to_string()])
    }

    fn message() -> Vec<u8> {
        let t = tag();
        ProbeMessage {
            tag: &t,
            domain: DOMAIN,
            header_from: "probe@provider.test",
            header_to: "alice@corp.test",
            extra_headers: &[("X-Lab-Spam".into(), "yes".into())],
        }
        .render(&key())
    }

    fn text() -> String {
        String::from_utf8(message()).unwrap()
    }

    #[test]
    fn a_rendered_probe_verifies() {
        let m = message();
        let text = text();
        assert!(
            text.contains("Message-ID: <019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b@probe.corp.test>\r\n")
        );
        assert!(text.contains("X-Flowtest-Sent-At: 2026-11-28T06:00:00.123456789Z\r\n"));
        assert!(text.contains("X-Flowtest-Rcpt: alice@corp.test\r\n"));
        assert!(text.contains(&format!("X-Flowtest-Signature: v2 k={} ", key().id())));
        assert!(text.contains("X-Lab-Spam: yes\r\n"));
        assert_eq!(verify(&m, &key(), DOMAIN), Verdict::Valid(tag()));
    }

    #[test]
    fn forged_or_foreign_probes_do_not_verify() {
        let m = text();
        let other = ProbeKey::new(b"another-installation-key!!").unwrap();
        let Verdict::Forged(why) = verify(m.as_bytes(), &other, DOMAIN) else {
            panic!("a foreign key's probe verified")
        };
        assert!(why.contains("another key"), "{why}");
        for (from, to) in [
            // Same signature, different scenario / recipient / time: the tag was altered.
            (
                "X-Flowtest-Scenario: lab-inbound",
                "X-Flowtest-Scenario: lab-outbound",
            ),
            (
                "X-Flowtest-Rcpt: alice@corp.test",
                "X-Flowtest-Rcpt: bob@corp.test",
            ),
            ("06:00:00.123456789Z", "06:00:01.123456789Z"),
            ("X-Flowtest-Signature", "X-Other"),
            ("X-Flowtest-Rcpt", "X-Other"),
        ] {
            let altered = m.replace(from, to);
            assert!(
                matches!(
                    verify(altered.as_bytes(), &key(), DOMAIN),
                    Verdict::Forged(_)
                ),
                "{from} -> {to}"
            );
        }
        assert_eq!(
            verify(b"Subject: hi\r\n\r\nbody", &key(), DOMAIN),
            Verdict::NotAProbe
        );
        assert_eq!(verify(b"", &key(), DOMAIN), Verdict::NotAProbe);
    }

    #[test]
    fn a_genuine_tag_on_another_message_is_transplanted_not_valid() {
        let m = text();
        let moved = m.replace(
            "Message-ID: <019ac9a4-6e3b-7c5e-9a1b-2c3d4e5f6a7b@probe.corp.test>",
            "Message-ID: <holiday-photos@friend.example>",
        );
        assert_eq!(
            verify(moved.as_bytes(), &key(), DOMAIN),
            Verdict::Transplanted(tag())
        );
        let no_mid = m.replace("Message-ID:", "X-Was-Message-ID:");
        assert_eq!(
            verify(no_mid.as_bytes(), &key(), DOMAIN),
            Verdict::Transplanted(tag())
        );
        // The domain is part of what is signed: another installation's domain does not verify.
        assert!(matches!(
            verify(m.as_bytes(), &key(), "other.test"),
            Verdict::Forged(_)
        ));
    }

    #[test]
    fn unbound_v1_tags_are_never_trusted() {
        let block = format!(
            "X-Flowtest-Id: {}\r\nX-Flowtest-Scenario: s\r\nX-Flowtest-Sent-At: x\r\n\
             X-Flowtest-Rcpt: a\r\nX-Flowtest-Signature: v1=00ff\r\n\r\n",
            tag().id
        );
        let Verdict::Forged(why) = verify(block.as_bytes(), &key(), DOMAIN) else {
            panic!()
        };
        assert!(why.contains("v1"), "{why}");
    }

    #[test]
    fn header_block_from_imap_fields_and_folding() {
        let t = tag();
        let sig = t.signature(&key(), DOMAIN);
        // IMAP HEADER.FIELDS returns the fields in any order, possibly folded.
        let block = format!(
            "X-Flowtest-Signature:\r\n {sig}\r\nx-flowtest-id: {}\r\nX-Flowtest-Scenario: lab-inbound\r\n\
             X-Flowtest-Sent-At: {}\r\nX-Flowtest-Rcpt: alice@corp.test\r\nMessage-Id: {}\r\n\r\n",
            t.id,
            t.sent_at_text,
            t.message_id(DOMAIN)
        );
        assert_eq!(verify(block.as_bytes(), &key(), DOMAIN), Verdict::Valid(t));
    }

    #[test]
    fn bounces_quoting_a_probe_are_recognised() {
        let orig = text();
        let dsn = format!(
            "From: MAILER-DAEMON@relay.corp.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n--b\r\n\
             Content-Type: text/rfc822-headers\r\n\r\nReceived: by mx.corp.test\r\n{}\r\n--b--\r\n",
            orig.split("\r\n\r\n").next().unwrap()
        );
        assert_eq!(quoted_probe(dsn.as_bytes(), &key(), DOMAIN), Some(tag()));
        // Quoted headers without the Message-ID still count; a wrong one does not.
        let no_mid = dsn.replace("Message-ID:", "X-Was:");
        assert_eq!(quoted_probe(no_mid.as_bytes(), &key(), DOMAIN), Some(tag()));
        let wrong_mid = dsn.replace("Message-ID: <", "Message-ID: <x");
        assert_eq!(quoted_probe(wrong_mid.as_bytes(), &key(), DOMAIN), None);
        let forged = dsn.replace("lab-inbound", "lab-outbound");
        assert_eq!(quoted_probe(forged.as_bytes(), &key(), DOMAIN), None);
        assert_eq!(quoted_probe(b"X-Flowtest-Id", &key(), DOMAIN), None);
    }

    #[test]
    fn debug_hides_the_key_and_its_id_is_stable() {
        assert_eq!(format!("{:?}", key()), "ProbeKey([redacted])");
        assert!(ProbeKey::new(b"short").is_err());
        assert_eq!(key().id(), key().id());
        assert_eq!(key().id().len(), 8);
        assert_ne!(
            key().id(),
            ProbeKey::new(b"another-installation-key!!").unwrap().id()
        );
    }
}
