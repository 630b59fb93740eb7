//! RFC 5424 syslog lines, `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG`
//! (rsyslog's `RSYSLOG_SyslogProtocol23Format`, syslog-ng's `syslog-protocol`, most log
//! shippers), and the `<PRI>` that a relay or a capture of the wire can leave before an
//! RFC 3164 line. Owns the splitting of those fields; the timestamp, an RFC 3339 stamp, is read
//! by `prefix` like any other.

/// Highest syslog priority: facility 23 (local7) * 8 + severity 7.
const MAX_PRI: u32 = 191;

/// The line after a leading syslog priority (`<0>` to `<191>`), and whether it had one.
pub(crate) fn strip_pri(line: &[u8]) -> (&[u8], bool) {
    if line.first() != Some(&b'<') {
        return (line, false);
    }
    let digits = line[1..]
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || line.get(1 + digits) != Some(&b'>') {
        return (line, false);
    }
    let pri = line[1..1 + digits]
        .iter()
        .fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    if pri > MAX_PRI {
        return (line, false);
    }
    (&line[digits + 2..], true)
}

/// The fields of an RFC 5424 line (its `<PRI>` stripped) that flowtest reads, borrowed from the
/// line. A nil value (`-`) is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub stamp: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub app: Option<&'a [u8]>,
    pub procid: Option<&'a [u8]>,
    /// The message, without the byte-order mark RFC 5424 allows before UTF-8 text.
    pub msg: &'a [u8],
}

/// The fields of `b`, an RFC 5424 line after its `<PRI>`, if it is one (version 1, the five
/// header fields, well-formed structured data).
pub(crate) fn fields(b: &[u8]) -> Option<Fields<'_>> {
    let rest = b.strip_prefix(b"1 ")?;
    let (stamp, rest) = token(rest)?;
    let (host, rest) = token(rest)?;
    let (app, rest) = token(rest)?;
    let (procid, rest) = token(rest)?;
    let (_msgid, rest) = token(rest)?;
    let sd = structured_data_len(rest)?;
    let msg = match &rest[sd..] {
        [] => &[][..],
        [b' ', msg @ ..] => msg,
        _ => return None,
    };
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    Some(Fields {
        stamp: nil(stamp),
        host: nil(host),
        app: nil(app),
        procid: nil(procid),
        msg,
    })
}

/// A header field and what follows its space: a field is never empty.
fn token(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = memchr::memchr(b' ', b)?;
    (sp > 0).then(|| (&b[..sp], &b[sp + 1..]))
}

fn nil(field: &[u8]) -> Option<&[u8]> {
    (field != b"-").then_some(field)
}

/// Length of the STRUCTURED-DATA field at the start of `b`: `-`, or one or more
/// `[id name="value" ...]` elements, where a value may hold `\"`, `\\` and `\]`.
fn structured_data_len(b: &[u8]) -> Option<usize> {
    if b.first() == Some(&b'-') {
        return Some(1);
    }
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            match *b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    (i > 0).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_priority_is_stripped_only_when_it_is_one() {
        assert_eq!(strip_pri(b"<22>Nov  4 x"), (&b"Nov  4 x"[..], true));
        assert_eq!(strip_pri(b"<0>1 -"), (&b"1 -"[..], true));
        assert_eq!(strip_pri(b"<191>x"), (&b"x"[..], true));
        for line in [
            &b"<192>x"[..],
            b"<>x",
            b"<1234>x",
            b"<2a>x",
            b"<22 x",
            b"<22",
            b"Nov  4 x",
            b"",
        ] {
            assert_eq!(strip_pri(line), (line, false), "{:?}", line.escape_ascii());
        }
    }

    #[test]
    fn the_header_fields_and_the_message() {
        let f = fields(b"1 2025-11-04T06:00:01.5+00:00 mx postfix/smtp 1237 - - 2A3B: removed")
            .unwrap();
        assert_eq!(f.stamp, Some(&b"2025-11-04T06:00:01.5+00:00"[..]));
        assert_eq!(f.host, Some(&b"mx"[..]));
        assert_eq!(f.app, Some(&b"postfix/smtp"[..]));
        assert_eq!(f.procid, Some(&b"1237"[..]));
        assert_eq!(f.msg, b"2A3B: removed");
        let f = fields(b"1 - - - - - -").unwrap();
        assert_eq!((f.stamp, f.host, f.app, f.procid), (None, None, None, None));
        assert_eq!(f.msg, b"");
        // The byte-order mark before UTF-8 text is not part of the message.
        let f = fields(b"1 - mx dovecot 9 - - \xEF\xBB\xBFlmtp(a): Info: x").unwrap();
        assert_eq!(f.msg, b"lmtp(a): Info: x");
    }

    #[test]
    fn structured_data_with_escapes_is_skipped_whole() {
        let line = br#"1 - mx app 1 ID47 [a@1 k="v \"q\" \] \\"][b x="]"] msg [not sd]"#;
        assert_eq!(fields(line).unwrap().msg, b"msg [not sd]");
        let f = fields(br#"1 - mx app 1 - [timeQuality tzKnown="1"]"#).unwrap();
        assert_eq!(f.msg, b"");
    }

    #[test]
    fn malformed_lines_are_not_rfc_5424() {
        for line in [
            &b"2 - mx app 1 - - m"[..],
            b"1 - mx app 1 -",
            b"1  mx app 1 - - m",
            b"1 - mx app 1 - x m",
            b"1 - mx app 1 - [a k=\"v] m",
            b"1 - mx app 1 - [a k=\"v\\",
            b"1 - mx app 1 - [a]m",
            b"1 - mx app 1 - -m",
            b"Nov  4 06:00:01 mx postfix/smtp[1]: m",
        ] {
            assert_eq!(fields(line), None, "{:?}", line.escape_ascii());
        }
    }
}
