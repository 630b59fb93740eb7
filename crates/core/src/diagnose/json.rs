//! The JSON text of one reported message, written directly: byte for byte what `serde_json`
//! writes for a [`MessageChain`] (compact, members in declaration order), with the member names
//! as literal bytes and a string copied at once when it holds nothing to escape. A full diagnosis
//! writes one per message, and serde's escaping scan of every name and value was a tenth of its
//! instructions. Findings (failed messages only), strings that need escaping and years chrono
//! writes with a sign go through `serde_json` itself. Does not decide what is written
//! (`super::report`).

use std::io;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnosis::Finding;
use crate::fusion::rfc3339;
use crate::fusion::{Hop, MessageChain};
use crate::logs::Delays;

/// One member's value, as the reported types hold it.
enum Value<'a> {
    Str(&'a str),
    OptStr(Option<&'a str>),
    Strs(&'a [String]),
    Bool(bool),
    Num(u64),
    OptNum(Option<u64>),
    Time(&'a Option<DateTime<Utc>>),
    Delays(Option<&'a Delays>),
    Hops(&'a [Hop]),
    Findings(&'a [Finding]),
}

/// Append `m` as `serde_json::to_writer` would.
pub(super) fn message(out: &mut Vec<u8>, m: &MessageChain) -> io::Result<()> {
    use Value::*;
    object(
        out,
        &[
            ("message_id", OptStr(m.message_id.as_deref())),
            ("status", Str(m.status.as_str())),
            ("from", OptStr(m.from.as_deref())),
            ("to", Strs(&m.to)),
            ("hops", Hops(&m.hops)),
            ("findings", Findings(&m.findings)),
            ("notes", Strs(&m.notes)),
            ("complete", Bool(m.complete)),
            ("lines", Strs(&m.lines)),
            ("lines_dropped", Num(m.lines_dropped)),
        ],
    )
}

fn hop(out: &mut Vec<u8>, h: &Hop) -> io::Result<()> {
    use Value::*;
    object(
        out,
        &[
            ("host", Str(&h.host)),
            ("queue_id", OptStr(h.queue_id.as_deref())),
            ("service", OptStr(h.service.as_deref())),
            ("status", Str(h.status.as_str())),
            ("relay", OptStr(h.relay.as_deref())),
            ("delay_ms", OptNum(h.delay_ms)),
            ("delays", Delays(h.delays.as_ref())),
            ("dsn", OptStr(h.dsn.as_deref())),
            ("reason", OptStr(h.reason.as_deref())),
            ("from", OptStr(h.from.as_deref())),
            ("to", Strs(&h.to)),
            ("client", OptStr(h.client.as_deref())),
            ("next_queue_id", OptStr(h.next_queue_id.as_deref())),
            ("lmtp_session", OptStr(h.lmtp_session.as_deref())),
            ("mailbox", OptStr(h.mailbox.as_deref())),
            ("attempts", Num(u64::from(h.attempts))),
            ("arrived_at", Time(&h.arrived_at)),
            ("left_at", Time(&h.left_at)),
            ("whole_seconds", Bool(h.whole_seconds)),
        ],
    )
}

/// An object of `members`, in their order. Member names are plain identifiers (nothing to
/// escape).
fn object(out: &mut Vec<u8>, members: &[(&str, Value)]) -> io::Result<()> {
    out.push(b'{');
    for (i, (name, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        value(out, v)?;
    }
    out.push(b'}');
    Ok(())
}

fn value(out: &mut Vec<u8>, v: &Value) -> io::Result<()> {
    match v {
        Value::Str(s) => str_(out, s),
        Value::OptStr(Some(s)) => str_(out, s),
        Value::OptStr(None) => null(out),
        Value::Strs(list) => array(out, list, |out, s| str_(out, s)),
        Value::Bool(b) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            Ok(())
        }
        Value::Num(n) => serde(out, n),
        Value::OptNum(n) => serde(out, n),
        Value::Time(t) => serde(out, &rfc3339::Opt(t)),
        Value::Delays(None) => null(out),
        Value::Delays(Some(d)) => object(
            out,
            &[
                ("before_qmgr_ms", Value::Num(d.before_qmgr_ms)),
                ("in_qmgr_ms", Value::Num(d.in_qmgr_ms)),
                ("conn_setup_ms", Value::Num(d.conn_setup_ms)),
                ("transmission_ms", Value::Num(d.transmission_ms)),
            ],
        ),
        Value::Hops(hops) => array(out, hops, hop),
        Value::Findings(f) => serde(out, f),
    }
}

fn array<T>(
    out: &mut Vec<u8>,
    items: &[T],
    each: impl Fn(&mut Vec<u8>, &T) -> io::Result<()>,
) -> io::Result<()> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item)?;
    }
    out.push(b']');
    Ok(())
}

/// Whatever else, as `serde_json` writes it.
fn serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::other)
}

fn null(out: &mut Vec<u8>) -> io::Result<()> {
    out.extend_from_slice(b"null");
    Ok(())
}

/// A string: copied between quotes when no byte needs escaping (no quote, backslash or control
/// character; everything else `serde_json` writes as it is), else escaped by `serde_json`.
fn str_(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // No early exit: the whole fold vectorizes, which beats stopping at the first hit on the
    // short strings a message has.
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if !plain {
        return serde(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::FindingCode;
    use crate::fusion::{HopStatus, MessageStatus};
    use chrono::{NaiveDate, TimeZone};

    fn hop(n: u64) -> Hop {
        let t = Utc.with_ymd_and_hms(2025, 11, 4, 6, 0, 0).unwrap()
            + chrono::TimeDelta::nanoseconds(n as i64 * 1_234_000);
        Hop {
            host: "ec2".into(),
            queue_id: Some(format!("4dJHx{n}")),
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
        let far = NaiveDate::from_ymd_opt(12345, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        let mut odd = hop(3);
        odd.arrived_at = Some(far);
        odd.status = HopStatus::SaveFailed;
        vec![
            MessageChain {
                message_id: None,
                status: MessageStatus::Rejected,
                from: Some("info78@corp.example".into()),
                to: vec![],
                hops: vec![],
                findings: vec![finding],
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
                hops: vec![hop(0), hop(1), hop(2), odd],
                findings: vec![],
                notes: vec![],
                complete: false,
                lines: vec!["raw \u{1b}[31m line".into()],
                lines_dropped: 0,
            },
        ]
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
