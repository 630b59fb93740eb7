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
pub(super) fn message(out: &mut Vec<u8>, m: &MessageChain) -> io::Result<()> {
    out.extend_from_slice(b"{\"message_id\":");
    opt_str(out, m.message_id.as_deref())?;
    out.extend_from_slice(b",\"status\":");
    str_(out, m.status.as_str())?;
    out.extend_from_slice(b",\"from\":");
    opt_str(out, m.from.as_deref())?;
    out.extend_from_slice(b",\"to\":");
    strs(out, &m.to)?;
    out.extend_from_slice(b",\"hops\":");
    array(out, &m.hops, hop)?;
    out.extend_from_slice(b",\"findings\":");
    array(out, &m.findings, finding)?;
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

fn hop(out: &mut Vec<u8>, h: &Hop) -> io::Result<()> {
    out.extend_from_slice(b"{\"host\":");
    str_(out, &h.host)?;
    out.extend_from_slice(b",\"queue_id\":");
    opt_str(out, h.queue_id.as_deref())?;
    out.extend_from_slice(b",\"service\":");
    opt_str(out, h.service.as_deref())?;
    out.extend_from_slice(b",\"status\":");
    str_(out, h.status.as_str())?;
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
    let start = out.len();
    time(out, &h.arrived_at)?;
    let arrived = start..out.len();
    out.extend_from_slice(b",\"left_at\":");
    if h.left_at == h.arrived_at {
        // Mostly the same second: its text is copied rather than made again.
        out.extend_from_within(arrived);
    } else {
        time(out, &h.left_at)?;
    }
    out.extend_from_slice(b",\"whole_seconds\":");
    bool_(out, h.whole_seconds);
    out.push(b'}');
    Ok(())
}

/// A finding of a failed message, members in `Finding`'s declaration order.
fn finding(out: &mut Vec<u8>, f: &Finding) -> io::Result<()> {
    out.extend_from_slice(b"{\"code\":");
    str_(out, f.code.as_str())?;
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
    time(out, &f.first_seen)?;
    out.extend_from_slice(b",\"last_seen\":");
    time(out, &f.last_seen)?;
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

/// A byte JSON escapes: a quote, a backslash or a control character.
fn escaped(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// No byte needs escaping. Looked at in blocks of 16 without stopping inside one, which the
/// compiler turns into vector compares: a message's strings are a few dozen bytes, and a byte
/// at a time was a sixth of the rendering. A string of 16 bytes or more ends with its last 16
/// (overlapping the last whole block); a shorter one is padded with spaces to a block (a loop
/// over its bytes cost more than the copy).
fn plain(s: &[u8]) -> bool {
    fn any_escaped(block: &[u8; 16]) -> bool {
        block.iter().fold(false, |any, &b| any | escaped(b))
    }
    match s.last_chunk::<16>() {
        None => {
            let mut block = [b' '; 16];
            block[..s.len()].copy_from_slice(s);
            !any_escaped(&block)
        }
        Some(last) => {
            let (blocks, _) = s.as_chunks::<16>();
            blocks.iter().all(|b| !any_escaped(b)) && !any_escaped(last)
        }
    }
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

/// A timestamp's text needs no escaping (digits and separators): it is written between quotes
/// at once, rather than through a serializer's escaping scan.
fn time(out: &mut Vec<u8>, t: &Option<DateTime<Utc>>) -> io::Result<()> {
    let Some(at) = t else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    let mut buf = [0u8; rfc3339::MAX];
    match rfc3339::write(at, &mut buf) {
        Some(n) => {
            out.push(b'"');
            out.extend_from_slice(&buf[..n]);
            out.push(b'"');
            Ok(())
        }
        None => serde_json::to_writer(&mut *out, &rfc3339::Opt(t)).map_err(io::Error::other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Finding, FindingCode};
    use crate::fusion::{HopStatus, MessageStatus};
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
        // Neither time known: the `null` written for one is copied for the other.
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
    fn writes_what_serde_json_writes() {
        for m in messages() {
            let mut got = Vec::new();
            message(&mut got, &m).unwrap();
            let want = serde_json::to_vec(&m).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }
}
