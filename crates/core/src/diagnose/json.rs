//! The JSON text of one reported message, written directly: byte for byte what `serde_json`
//! writes for a [`MessageChain`] (compact, members in declaration order), with the member names
//! as literal bytes and a string copied at once when it holds nothing to escape. A full diagnosis
//! writes one per message, and serde's escaping scan of every name and value was a tenth of its
//! instructions; for a failed message's findings (hints, evidence lines), a fiftieth of the
//! correlating thread's. Strings that need escaping and years chrono writes with a sign go
//! through `serde_json` itself. Does not decide what is written (`super::report`).

use std::io;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnosis::Finding;
use crate::fusion::rfc3339;
use crate::fusion::{Hop, MessageChain};
use crate::logs::Delays;

/// Append `m` as `serde_json::to_writer` would.
/// `last`: the last timestamp written (by this call or an earlier one).
pub(super) fn message(out: &mut Vec<u8>, m: &MessageChain, last: &mut LastTime) -> io::Result<()> {
    out.extend_from_slice(b"{\"message_id\":");
    opt_str(out, m.message_id.as_deref())?;
    out.extend_from_slice(b",\"status\":");
    word(out, m.status.as_str());
    out.extend_from_slice(b",\"from\":");
    opt_str(out, m.from.as_deref())?;
    out.extend_from_slice(b",\"to\":");
    strs(out, &m.to)?;
    out.extend_from_slice(b",\"hops\":");
    array(out, &m.hops, |out, h| hop(out, h, last))?;
    out.extend_from_slice(b",\"findings\":");
    array(out, &m.findings, |out, f| finding(out, f, last))?;
    out.extend_from_slice(b",\"notes\":");
    strs(out, &m.notes)?;
    out.extend_from_slice(b",\"complete\":");
    bool_(out, m.complete);
    out.extend_from_slice(b",\"lines\":");
    strs(out, &m.lines)?;
    out.extend_from_slice(b",\"lines_dropped\":");
    num(out, m.lines_dropped);
    out.push(b'}');
    Ok(())
}

fn hop(out: &mut Vec<u8>, h: &Hop, last: &mut LastTime) -> io::Result<()> {
    out.extend_from_slice(b"{\"host\":");
    str_(out, &h.host)?;
    out.extend_from_slice(b",\"queue_id\":");
    opt_str(out, h.queue_id.as_deref())?;
    out.extend_from_slice(b",\"service\":");
    opt_str(out, h.service.as_deref())?;
    out.extend_from_slice(b",\"status\":");
    word(out, h.status.as_str());
    out.extend_from_slice(b",\"relay\":");
    opt_str(out, h.relay.as_deref())?;
    out.extend_from_slice(b",\"delay_ms\":");
    match h.delay_ms {
        Some(n) => num(out, n),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"delays\":");
    match &h.delays {
        Some(d) => delays(out, d)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"dsn\":");
    opt_str(out, h.dsn.as_deref())?;
    out.extend_from_slice(b",\"reason\":");
    opt_str(out, h.reason.as_deref())?;
    out.extend_from_slice(b",\"from\":");
    opt_str(out, h.from.as_deref())?;
    out.extend_from_slice(b",\"to\":");
    strs(out, &h.to)?;
    out.extend_from_slice(b",\"client\":");
    opt_str(out, h.client.as_deref())?;
    out.extend_from_slice(b",\"next_queue_id\":");
    opt_str(out, h.next_queue_id.as_deref())?;
    out.extend_from_slice(b",\"lmtp_session\":");
    opt_str(out, h.lmtp_session.as_deref())?;
    out.extend_from_slice(b",\"mailbox\":");
    opt_str(out, h.mailbox.as_deref())?;
    out.extend_from_slice(b",\"attempts\":");
    num(out, h.attempts.into());
    out.extend_from_slice(b",\"arrived_at\":");
    last.write(out, &h.arrived_at)?;
    // Mostly the same second: `last` copies its text rather than making it again.
    out.extend_from_slice(b",\"left_at\":");
    last.write(out, &h.left_at)?;
    out.extend_from_slice(b",\"whole_seconds\":");
    bool_(out, h.whole_seconds);
    if !h.recipients.is_empty() {
        out.extend_from_slice(b",\"recipients\":[");
        for (i, r) in h.recipients.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"to\":");
            str_(out, &r.to)?;
            out.extend_from_slice(b",\"status\":");
            word(out, r.status.as_str());
            out.extend_from_slice(b",\"dsn\":");
            opt_str(out, r.dsn.as_deref())?;
            out.extend_from_slice(b",\"reason\":");
            opt_str(out, r.reason.as_deref())?;
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

/// A finding of a failed message, members in `Finding`'s declaration order.
fn finding(out: &mut Vec<u8>, f: &Finding, last: &mut LastTime) -> io::Result<()> {
    out.extend_from_slice(b"{\"code\":");
    word(out, f.code.as_str());
    out.extend_from_slice(b",\"stage\":");
    opt_str(out, f.stage.as_deref())?;
    out.extend_from_slice(b",\"host\":");
    opt_str(out, f.host.as_deref())?;
    out.extend_from_slice(b",\"message_id\":");
    opt_str(out, f.message_id.as_deref())?;
    out.extend_from_slice(b",\"message\":");
    str_(out, &f.message)?;
    out.extend_from_slice(b",\"evidence\":");
    strs(out, &f.evidence)?;
    out.extend_from_slice(b",\"hint\":");
    str_(out, &f.hint)?;
    out.extend_from_slice(b",\"count\":");
    num(out, f.count);
    out.extend_from_slice(b",\"first_seen\":");
    last.write(out, &f.first_seen)?;
    out.extend_from_slice(b",\"last_seen\":");
    last.write(out, &f.last_seen)?;
    out.push(b'}');
    Ok(())
}

fn delays(out: &mut Vec<u8>, d: &Delays) -> io::Result<()> {
    out.extend_from_slice(b"{\"before_qmgr_ms\":");
    num(out, d.before_qmgr_ms);
    out.extend_from_slice(b",\"in_qmgr_ms\":");
    num(out, d.in_qmgr_ms);
    out.extend_from_slice(b",\"conn_setup_ms\":");
    num(out, d.conn_setup_ms);
    out.extend_from_slice(b",\"transmission_ms\":");
    num(out, d.transmission_ms);
    out.push(b'}');
    Ok(())
}

/// Whatever else, as `serde_json` writes it.
fn serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::other)
}

/// A number, as `serde_json` writes it (with the same `itoa`), without its serializer.
fn num(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn bool_(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A string: copied between quotes when no byte needs escaping (no quote, backslash or control
/// character; everything else `serde_json` writes as it is), else escaped by `serde_json`.
fn str_(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    if !plain(s.as_bytes()) {
        return serde(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// A word of the report's own vocabulary (a status, a finding's code: lower-case letters and
/// underscores), written without a look for bytes to escape.
fn word(out: &mut Vec<u8>, w: &'static str) {
    debug_assert!(plain(w.as_bytes()), "{w:?}");
    out.push(b'"');
    out.extend_from_slice(w.as_bytes());
    out.push(b'"');
}

/// A byte JSON escapes: a quote, a backslash or a control character.
fn escaped(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// No byte needs escaping. A message's strings are a few dozen bytes, and a byte at a time
/// was a sixth of the rendering: a string of 16 bytes or more is looked at in blocks of 16
/// without stopping inside one (the compiler makes vector compares of them), ending with its
/// last 16 (overlapping the last whole block); one of 8 to 15 bytes as two words, its first 8
/// and its last 8; a shorter one a byte at a time.
fn plain(s: &[u8]) -> bool {
    #[inline(always)]
    fn any_escaped(block: &[u8; 16]) -> bool {
        block.iter().fold(false, |any, &b| any | escaped(b))
    }
    if let Some(last) = s.last_chunk::<16>() {
        let (blocks, _) = s.as_chunks::<16>();
        return blocks.iter().all(|b| !any_escaped(b)) && !any_escaped(last);
    }
    match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        (Some(first), Some(last)) => plain_word(*first) && plain_word(*last),
        _ => s.iter().all(|&b| !escaped(b)),
    }
}

/// No byte of `w` needs escaping: none below 0x20, none a quote, none a backslash. Each test
/// is exact for the word as a whole (a borrow can only mark a byte above one that matched).
#[inline(always)]
fn plain_word(w: [u8; 8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let w = u64::from_le_bytes(w);
    // A byte below `n` (for `n` up to 0x80).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let zero = |x: u64| below(x, 1);
    (below(w, 0x20) | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) == 0
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => str_(out, s),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

fn strs(out: &mut Vec<u8>, list: &[impl AsRef<str>]) -> io::Result<()> {
    array(out, list, |out, s| str_(out, s.as_ref()))
}

/// `items` between brackets, each written by `one`, separated by commas.
fn array<T>(
    out: &mut Vec<u8>,
    items: &[T],
    mut one: impl FnMut(&mut Vec<u8>, &T) -> io::Result<()>,
) -> io::Result<()> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        one(out, item)?;
    }
    out.push(b']');
    Ok(())
}

/// The last timestamp written and its text. The hops of messages logged in the same second
/// (most of them, at a few dozen messages a second with whole-second stamps) copy it.
#[derive(Debug, Clone, Default)]
pub(super) struct LastTime {
    at: Option<DateTime<Utc>>,
    text: [u8; rfc3339::MAX],
    len: usize,
}

impl LastTime {
    /// A timestamp's text needs no escaping (digits and separators): it is written between
    /// quotes at once, rather than through a serializer's escaping scan.
    fn write(&mut self, out: &mut Vec<u8>, t: &Option<DateTime<Utc>>) -> io::Result<()> {
        let Some(at) = t else {
            out.extend_from_slice(b"null");
            return Ok(());
        };
        if self.at != Some(*at) {
            let mut buf = [0u8; rfc3339::MAX];
            let Some(n) = rfc3339::write(at, &mut buf) else {
                return serde_json::to_writer(&mut *out, &rfc3339::Opt(t))
                    .map_err(io::Error::other);
            };
            (self.at, self.text, self.len) = (Some(*at), buf, n);
        }
        out.push(b'"');
        out.extend_from_slice(&self.text[..self.len]);
        out.push(b'"');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Finding, FindingCode};
    use crate::fusion::{HopStatus, MessageStatus, RcptOutcome};
    use chrono::{NaiveDate, TimeZone};

    fn hop(n: u64) -> Hop {
        let t = Utc.with_ymd_and_hms(2025, 11, 4, 6, 0, 0).unwrap()
            + chrono::TimeDelta::nanoseconds(n as i64 * 1_234_000);
        Hop {
            host: "ec2".into(),
            queue_id: Some(format!("4dJHx{n}").into()),
            service: n.is_multiple_of(2).then(|| "smtp".into()),
            status: HopStatus::Sent,
            relay: Some("100.64.0.2[100.64.0.2]:2525".into()),
            delay_ms: Some(n * 7),
            delays: (!n.is_multiple_of(3)).then_some(Delays {
                before_qmgr_ms: n,
                in_qmgr_ms: 0,
                conn_setup_ms: u64::MAX,
                transmission_ms: 5,
            }),
            dsn: Some("2.0.0".into()),
            reason: Some("250 2.0.0 Ok: queued as \"6D07\" \\ tab\there \u{7f} é ✓ \u{1}".into()),
            from: None,
            to: vec!["dave@corp.test".into(), "line\nbreak".into()],
            client: Some("smtp2.example[198.18.0.127]".into()),
            next_queue_id: None,
            lmtp_session: Some("</>".into()),
            mailbox: None,
            attempts: n as u32,
            arrived_at: Some(t),
            left_at: (!n.is_multiple_of(2)).then_some(t),
            whole_seconds: n.is_multiple_of(2),
            recipients: if n % 4 == 1 {
                vec![
                    RcptOutcome {
                        to: "dave@corp.test".into(),
                        status: HopStatus::Bounced,
                        dsn: Some("5.1.1".into()),
                        reason: Some("550 \"no\" such\tuser".into()),
                    },
                    RcptOutcome {
                        to: "line\nbreak".into(),
                        status: HopStatus::Queued,
                        dsn: None,
                        reason: None,
                    },
                ]
            } else {
                Vec::new()
            },
        }
    }

    fn messages() -> Vec<MessageChain> {
        let mut finding = Finding::new(FindingCode::RelayAccessDenied, Some("ec2"), "denied \"x\"");
        finding.evidence = vec!["Nov  4 06:00:00 mx postfix/smtpd[1]: reject".into()];
        finding.first_seen = Some(Utc.with_ymd_and_hms(2025, 11, 4, 6, 0, 0).unwrap());
        // No stage or host, a message-id, evidence that needs escaping, both times, a count.
        let mut other = Finding::new(FindingCode::SaslServerUnavailable, None, "plain");
        other.message_id = Some("<a\\b@x>".into());
        other.evidence = vec!["tab\there".into(), "é ✓ \u{7f}".into(), String::new()];
        other.hint = "postconf -e 'relay_domains = \"a b\"'".into();
        other.count = u64::MAX;
        other.first_seen = finding.first_seen;
        other.last_seen = Some(
            Utc.with_ymd_and_hms(2025, 11, 4, 6, 0, 0).unwrap()
                + chrono::TimeDelta::microseconds(1),
        );
        let far = NaiveDate::from_ymd_opt(12345, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        let mut odd = hop(3);
        odd.arrived_at = Some(far);
        odd.status = HopStatus::SaveFailed;
        odd.delay_ms = None;
        odd.attempts = u32::MAX;
        // Neither time known: `null` for both.
        let mut timeless = hop(5);
        timeless.arrived_at = None;
        timeless.left_at = None;
        vec![
            MessageChain {
                message_id: None,
                status: MessageStatus::Rejected,
                from: Some("info78@corp.example".into()),
                to: vec![],
                hops: vec![],
                findings: vec![finding, other],
                notes: vec!["a \u{0} note".into()],
                complete: true,
                lines: vec![],
                lines_dropped: 1,
                last_seen: None,
            },
            MessageChain {
                message_id: Some("<8a9aa648a7dd.25b41@lists.example.net>".into()),
                status: MessageStatus::Delivered,
                from: None,
                to: vec!["dave@corp.test".into()],
                hops: vec![hop(0), hop(1), hop(2), odd, timeless],
                findings: vec![],
                notes: vec![],
                complete: false,
                lines: vec!["raw \u{1b}[31m line".into()],
                lines_dropped: u64::MAX,
                // Not in the report.
                last_seen: hop(2).left_at,
            },
        ]
    }

    #[test]
    fn plain_is_what_a_byte_at_a_time_says() {
        let byte_ok = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
        for len in 0..40 {
            for at in 0..len {
                for bad in [
                    0u8, 0x1f, 0x20, b'"', b'\\', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff,
                ] {
                    let mut s = vec![b'a'; len];
                    s[at] = bad;
                    assert_eq!(plain(&s), byte_ok(bad), "{len} {at} {bad:#x}");
                    // Neighbours that sit right above and below the limits.
                    s.iter_mut().filter(|b| **b == b'a').for_each(|b| *b = 0x21);
                    assert_eq!(plain(&s), byte_ok(bad), "{len} {at} {bad:#x}");
                }
            }
            assert!(plain(&vec![0x80u8 | 0x5c; len]));
        }
    }

    #[test]
    fn every_code_is_a_word_serde_would_write_as_it_is() {
        for c in FindingCode::ALL {
            let mut got = Vec::new();
            word(&mut got, c.as_str());
            assert_eq!(got, serde_json::to_vec(c.as_str()).unwrap());
        }
    }

    /// Words of every byte value next to every other, and mixed words at every length.
    #[test]
    fn plain_words_are_exact() {
        let byte_ok = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let w = [b'a', a, b, 0x80, b'z', b, a, 0xff];
                assert_eq!(plain(&w), byte_ok(a) && byte_ok(b), "{a:#x} {b:#x}");
            }
        }
        // A small generator (xorshift): strings of 0 to 63 bytes drawn mostly from above 0x1f.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (x >> (i % 8 * 8)) as u8 ^ (i as u8).wrapping_mul(31);
                    if x.rotate_left(i as u32).is_multiple_of(29) {
                        b
                    } else {
                        b | 0x20
                    }
                })
                .collect();
            assert_eq!(plain(&s), s.iter().all(|&b| byte_ok(b)), "{s:?}");
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        // One memo of the last timestamp across the messages, as a report has.
        let mut last = LastTime::default();
        for m in messages().iter().chain(&messages()) {
            let mut got = Vec::new();
            message(&mut got, m, &mut last).unwrap();
            let want = serde_json::to_vec(m).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }
}
