//! journald's JSON export (`journalctl -o json`, and `json-seq`'s and `json-sse`'s framing of
//! the same object): one entry a line, turned into the `journalctl -o short-iso-precise` line
//! it stands for (in UTC), which the rest of the parser reads and evidence shows. Owns which fields make that line; does not
//! parse the line itself (`prefix`, `postfix`, `dovecot`).
//!
//! An entry's fields are strings, except that a value which is not valid UTF-8 (or holds
//! control characters) comes as an array of its bytes, and a field given more than once as an
//! array of its values.

use std::borrow::Cow;
use std::fmt::{self, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::prefix;

/// The fields a line is made of; every other field is skipped unread.
#[derive(Deserialize)]
struct Entry<'a> {
    /// When the program logged it (microseconds since the epoch), when the journal knows.
    #[serde(rename = "_SOURCE_REALTIME_TIMESTAMP", borrow)]
    source_time: Option<Field<'a>>,
    /// When the journal received it: what `journalctl` shows without the above.
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    time: Option<Field<'a>>,
    #[serde(rename = "_HOSTNAME", borrow)]
    host: Option<Field<'a>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow)]
    ident: Option<Field<'a>>,
    #[serde(rename = "_COMM", borrow)]
    comm: Option<Field<'a>>,
    #[serde(rename = "SYSLOG_PID", borrow)]
    syslog_pid: Option<Field<'a>>,
    #[serde(rename = "_PID", borrow)]
    pid: Option<Field<'a>>,
    #[serde(rename = "MESSAGE", borrow)]
    message: Option<Field<'a>>,
}

/// One field's value as the export writes it, borrowed from the line when it holds no escape
/// (a journal has millions of entries: no value is built for what is not needed).
#[derive(Debug, PartialEq)]
enum Field<'a> {
    Text(Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// A value that is not valid UTF-8: its bytes (`None`: an element was no byte).
    Bytes(Option<Vec<u8>>),
    /// A field given more than once: its values.
    Many(Vec<Field<'a>>),
    /// `null`, a boolean, an object.
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(std::marker::PhantomData))
    }
}

struct FieldVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
    type Value = Field<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a journal field")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Field::Float(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Field<'a>>()? {
            items.push(item);
        }
        // An array of numbers is a value's bytes; anything else, repeated values.
        let numeric =
            |f: &Field<'_>| matches!(f, Field::Unsigned(_) | Field::Signed(_) | Field::Float(_));
        if items.first().is_some_and(numeric) {
            let bytes = items
                .iter()
                .map(|b| match b {
                    Field::Unsigned(n) => u8::try_from(*n).ok(),
                    _ => None,
                })
                .collect();
            return Ok(Field::Bytes(bytes));
        }
        Ok(Field::Many(items))
    }
}

/// The object of a line, without `json-seq`'s record separator or `json-sse`'s `data: `;
/// `None` when the line holds no object (the test is one byte for most lines).
fn object(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_prefix(b"\x1e").unwrap_or(line);
    let line = line.strip_prefix(b"data: ").unwrap_or(line);
    (line.first() == Some(&b'{')).then_some(line)
}

/// The `short-iso-precise` line of a journal entry
/// (`2025-11-04T18:12:34.123456+00:00 host prog[pid]: message`), or `None` when the line is no
/// journal entry with a time and a message.
pub(crate) fn syslog_line(line: &[u8]) -> Option<String> {
    match std::str::from_utf8(line) {
        Ok(text) => syslog_line_of_text(text),
        Err(_) => entry_line(serde_json::from_slice(object(line)?).ok()?),
    }
}

/// [`syslog_line`] of a line known to be valid UTF-8: its strings are not checked again (the
/// reader checked the line with its block).
pub(crate) fn syslog_line_of_text(line: &str) -> Option<String> {
    let obj = object(line.as_bytes())?;
    // The framings stripped are ASCII: the object starts on a character boundary.
    let obj = line.get(line.len() - obj.len()..)?;
    entry_line(serde_json::from_str(obj).ok()?)
}

/// The line an entry stands for.
fn entry_line(e: Entry<'_>) -> Option<String> {
    // As journalctl does: the program's own time when it is a time, else the journal's.
    let micros = micros(e.source_time.as_ref()).or_else(|| micros(e.time.as_ref()))?;
    let message = text(e.message.as_ref())?;
    let host = text(e.host.as_ref());
    let ident = text(e.ident.as_ref()).or_else(|| text(e.comm.as_ref()));
    let pid = text(e.syslog_pid.as_ref()).or_else(|| text(e.pid.as_ref()));
    let at = DateTime::from_timestamp_micros(micros)?;
    let mut out = String::with_capacity(message.len() + 80);
    stamp(&mut out, at);
    if let Some(line) = inner_line(&message) {
        // A program that writes whole log lines to its output (Postfix with `maillog_file =
        // /dev/stdout` in a container): its own host and program, the journal's time.
        push_one_line(&mut out, line);
        return Some(out);
    }
    let _ = write!(out, " {}", word(host.as_deref().unwrap_or("localhost")));
    if let Some(ident) = ident {
        out.push(' ');
        out.push_str(&word(&ident));
        match pid.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            Some(p) => {
                let _ = write!(out, "[{p}]:");
            }
            None => out.push(':'),
        }
    }
    push_one_line(&mut out, &message);
    Some(out)
}

/// `at` as `short-iso-precise` writes it in UTC: `2025-11-04T18:12:34.123456+00:00`.
fn stamp(out: &mut String, at: DateTime<Utc>) {
    let Ok(year) = u32::try_from(at.year()) else {
        let _ = write!(out, "{}", at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"));
        return;
    };
    if year > 9999 {
        let _ = write!(out, "{}", at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"));
        return;
    }
    // Digits by hand: the formatting machinery was a sixth of reading an entry.
    let mut b = *b"0000-00-00T00:00:00.000000+00:00";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, at.month());
    put(8, 2, at.day());
    put(11, 2, at.hour());
    put(14, 2, at.minute());
    put(17, 2, at.second());
    put(20, 6, at.timestamp_subsec_micros().min(999_999));
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// A space, then `text` as one line: a multi-line message's lines are joined.
fn push_one_line(out: &mut String, text: &str) {
    out.push(' ');
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
        // Nearly every message: one line already.
        out.push_str(text);
        return;
    }
    out.extend(text.chars().map(|c| match c {
        '\n' | '\r' => ' ',
        c => c,
    }));
}

/// What follows a message's own classic stamp (`Nov 04 18:12:34 ` or `Nov  4 18:12:34 `,
/// as postlogd and syslog write it) when it has one and a `host program: ` after it.
fn inner_line(message: &str) -> Option<&str> {
    let end = prefix::classic_stamp_end(message.as_bytes())?;
    let rest = message.get(end + 1..)?;
    // `host program[pid]: `: two words, the second ending in `:`.
    let mut words = rest.splitn(3, ' ');
    let (_, program) = (words.next()?, words.next()?);
    (program.len() > 1 && program.ends_with(':')).then_some(rest)
}

/// A time field's microseconds since the epoch: a positive number, as a string (what
/// journalctl writes) or a JSON number.
fn micros(v: Option<&Field<'_>>) -> Option<i64> {
    let n = match v? {
        Field::Unsigned(n) => i64::try_from(*n).ok()?,
        Field::Signed(n) => *n,
        Field::Float(_) => return None,
        v => text(Some(v))?.trim().parse().ok()?,
    };
    (n > 0).then_some(n)
}

/// A field's text: a string; an array of bytes (lossily decoded); of several values, the
/// first that is one.
fn text<'f>(v: Option<&'f Field<'_>>) -> Option<Cow<'f, str>> {
    match v? {
        Field::Text(s) => Some(Cow::Borrowed(s.as_ref())),
        Field::Unsigned(n) => Some(Cow::Owned(n.to_string())),
        Field::Signed(n) => Some(Cow::Owned(n.to_string())),
        Field::Float(n) => Some(Cow::Owned(serde_json::Number::from_f64(*n)?.to_string())),
        Field::Bytes(bytes) => Some(Cow::Owned(
            String::from_utf8_lossy(bytes.as_deref()?).into_owned(),
        )),
        Field::Many(items) => items.iter().find_map(|v| text(Some(v))),
        Field::Other => None,
    }
}

/// A host or program name as one word of the line (a space would split it).
fn word(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        Cow::Borrowed("-")
    } else if s.contains(char::is_whitespace) {
        Cow::Owned(s.replace(char::is_whitespace, "_"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as `journalctl -o json` prints it (fields as systemd 252 writes them).
    const SMTPD: &str = r#"{"__CURSOR":"s=5d1c;i=1a2b","__REALTIME_TIMESTAMP":"1762279954123456","__MONOTONIC_TIMESTAMP":"5123456789","_BOOT_ID":"0f1e","SYSLOG_FACILITY":"2","_UID":"0","_GID":"0","_MACHINE_ID":"9a8b","_HOSTNAME":"mx","_TRANSPORT":"syslog","PRIORITY":"6","SYSLOG_IDENTIFIER":"postfix/smtpd","SYSLOG_PID":"4007","_PID":"4007","_COMM":"smtpd","_EXE":"/usr/lib/postfix/sbin/smtpd","_SYSTEMD_UNIT":"postfix@-.service","SYSLOG_TIMESTAMP":"Nov  4 18:12:34 ","MESSAGE":"D0E873A000: client=unknown[192.0.2.1]"}"#;

    #[test]
    fn an_entry_is_its_syslog_line() {
        assert_eq!(
            syslog_line(SMTPD.as_bytes()).as_deref(),
            Some(
                "2025-11-04T18:12:34.123456+00:00 mx postfix/smtpd[4007]: \
                 D0E873A000: client=unknown[192.0.2.1]"
            )
        );
    }

    #[test]
    fn the_sources_time_comes_first_and_framings_are_read() {
        let with_source = SMTPD.replace(
            r#""_COMM""#,
            r#""_SOURCE_REALTIME_TIMESTAMP":"1762279954000001","_COMM""#,
        );
        for line in [
            with_source.clone(),
            format!("\x1e{with_source}"),
            format!("data: {with_source}"),
        ] {
            let got = syslog_line(line.as_bytes()).unwrap();
            assert!(
                got.starts_with("2025-11-04T18:12:34.000001+00:00 mx "),
                "{got}"
            );
        }
    }

    #[test]
    fn byte_arrays_repeats_and_missing_fields() {
        // MESSAGE as bytes (not UTF-8, a newline), the identifier given twice, no _HOSTNAME,
        // no pid.
        let line = r#"{"__REALTIME_TIMESTAMP":"1500000","SYSLOG_IDENTIFIER":["dovecot","x"],"MESSAGE":[108,109,116,112,58,32,255,10,111,107]}"#;
        assert_eq!(
            syslog_line(line.as_bytes()).as_deref(),
            Some("1970-01-01T00:00:01.500000+00:00 localhost dovecot: lmtp: \u{fffd} ok")
        );
        // _COMM stands in for the identifier; `_PID` for `SYSLOG_PID`.
        let line = r#"{"__REALTIME_TIMESTAMP":"1000000","_HOSTNAME":"my host","_COMM":"master","_PID":"12","MESSAGE":"daemon started"}"#;
        assert_eq!(
            syslog_line(line.as_bytes()).as_deref(),
            Some("1970-01-01T00:00:01.000000+00:00 my_host master[12]: daemon started")
        );
    }

    #[test]
    fn a_source_time_that_is_no_time_falls_back_and_numbers_are_read() {
        for source in [
            r#""""#,
            r#""abc""#,
            r#""0""#,
            r#""18446744073709551615""#,
            "null",
        ] {
            let line = format!(
                r#"{{"_SOURCE_REALTIME_TIMESTAMP":{source},"__REALTIME_TIMESTAMP":"1762279954123456","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","MESSAGE":"x"}}"#
            );
            let got = syslog_line(line.as_bytes()).unwrap();
            assert!(
                got.starts_with("2025-11-04T18:12:34.123456+00:00 mx "),
                "{source}: {got}"
            );
        }
        // Numbers where strings are usual; a repeated MESSAGE whose first value is null.
        let line = r#"{"__REALTIME_TIMESTAMP":1762279954123456,"_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","SYSLOG_PID":1201,"MESSAGE":[null,"D0E873A000: removed"]}"#;
        assert_eq!(
            syslog_line(line.as_bytes()).as_deref(),
            Some("2025-11-04T18:12:34.123456+00:00 mx postfix/qmgr[1201]: D0E873A000: removed")
        );
    }

    #[test]
    fn a_whole_log_line_in_the_message_keeps_its_host_and_program() {
        // Postfix in a container logging to stdout, the container's output in the journal.
        for inner in [
            "Nov 04 18:12:34 mail postfix/smtpd[123]: connect from unknown[192.0.2.1]",
            "Nov  4 18:12:34 mail postfix/smtpd[123]: connect from unknown[192.0.2.1]",
        ] {
            let line = format!(
                r#"{{"__REALTIME_TIMESTAMP":"1762279954123456","_HOSTNAME":"docker1","SYSLOG_IDENTIFIER":"mailserver","CONTAINER_NAME":"mailserver","MESSAGE":"{inner}"}}"#
            );
            assert_eq!(
                syslog_line(line.as_bytes()).as_deref(),
                Some(
                    "2025-11-04T18:12:34.123456+00:00 mail postfix/smtpd[123]: \
                     connect from unknown[192.0.2.1]"
                )
            );
        }
        // A message that only starts like a date stays the program's message.
        for message in [
            "Nov 04 18:12:34 backup done",
            "Nov 04 18:12:34 x y z",
            "Nov 4 x",
        ] {
            let line = format!(
                r#"{{"__REALTIME_TIMESTAMP":"1762279954123456","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"cron","MESSAGE":"{message}"}}"#
            );
            let got = syslog_line(line.as_bytes()).unwrap();
            assert_eq!(
                got,
                format!("2025-11-04T18:12:34.123456+00:00 mx cron: {message}")
            );
        }
    }

    #[test]
    fn what_is_no_entry_is_none() {
        for line in [
            "",
            "{",
            "{}",
            "[1,2]",
            r#"{"MESSAGE":"no time"}"#,
            r#"{"__REALTIME_TIMESTAMP":"soon","MESSAGE":"x"}"#,
            r#"{"__REALTIME_TIMESTAMP":"-1500000","MESSAGE":"before 1970"}"#,
            r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":null}"#,
            r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[300]}"#,
            r#"{"__REALTIME_TIMESTAMP":"9223372036854775807","MESSAGE":"past chrono's range"}"#,
            "Nov  4 18:12:34 mx postfix/smtpd[1]: {json-looking text}",
        ] {
            assert_eq!(syslog_line(line.as_bytes()), None, "{line}");
        }
    }
}
