//! Less common layouts of a syslog line. These stamps are read only when a line starts with
//! neither a month name nor an ISO date (so the usual formats pay nothing for them):
//! - `journalctl -o short-full`: `Mon 2026-11-30 17:08:01 UTC host prog[pid]: msg`;
//! - `journalctl -o short-unix`: `1796058481.123456 host prog[pid]: msg` (seconds since 1970, UTC);
//! - a `tai64n` label (daemontools' `multilog`, s6-log, runit's `svlogd -tt`):
//!   `@4000000069...` then the line, often Dovecot's own log written to stderr;
//!
//! and, around the program of a line in any layout, what some syslog daemons add: BusyBox' (Alpine's)
//! `<facility>.<level>` before it, `host mail.info prog[pid]: msg`, and the message tag Solaris'
//! syslogd puts after it, `prog[pid]: [ID 197553 mail.info] msg`; and the severity word some
//! container images' rsyslog templates write where the host goes (boky/postfix:
//! `2023-12-30T21:20:26.617755+00:00 INFO    postfix/smtpd[481]: msg`).
//! Owns only these; the header around them is `prefix`'s.

use chrono::{DateTime, Utc};

use super::prefix::{self, LineFormat};
use super::ParseContext;

/// A stamp in one of these layouts: its time, whether it has sub-second digits, and where it ends
/// (the index of the space after it, or the line's end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct OtherStamp {
    pub format: LineFormat,
    pub ts: DateTime<Utc>,
    pub subsecond: bool,
    pub end: usize,
}

/// The line after its stamp without the severity an rsyslog template wrote in the host's place
/// (`%syslogseverity-text:::uppercase%`, padded with spaces), and so without a host; other
/// lines as they are. An uppercase severity is no host name a mail system's log shows.
pub(super) fn without_severity(rest: &[u8]) -> &[u8] {
    const LEVELS: [&[u8]; 9] = [
        b"EMERG", b"ALERT", b"CRIT", b"ERR", b"ERROR", b"WARNING", b"NOTICE", b"INFO", b"DEBUG",
    ];
    if !rest.first().is_some_and(u8::is_ascii_uppercase) {
        return rest;
    }
    match memchr::memchr(b' ', rest) {
        Some(sp) if LEVELS.contains(&&rest[..sp]) => rest[sp..].trim_ascii_start(),
        _ => rest,
    }
}

/// The stamp `b` starts with in one of these layouts, if any.
pub(super) fn stamp(b: &[u8], ctx: &ParseContext) -> Option<OtherStamp> {
    match b.first()? {
        b'@' => tai64n(b),
        c if c.is_ascii_digit() => short_unix(b),
        _ => short_full(b, ctx),
    }
}

/// Where the line's remainder starts after one of these stamps (no validation of the time):
/// the cheap look of the message-id focus.
pub(super) fn skip(b: &[u8]) -> Option<&[u8]> {
    let first = *b.first()?;
    let fields = match first {
        // A weekday, the date and the time, the zone.
        b'A'..=b'Z' if weekday(b) => 4,
        b'@' | b'0'..=b'9' => 1,
        _ => return None,
    };
    let mut rest = b;
    for _ in 0..fields {
        let sp = memchr::memchr(b' ', rest)?;
        rest = &rest[sp + 1..];
    }
    Some(rest)
}

const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

fn weekday(b: &[u8]) -> bool {
    b.len() > 4 && b[3] == b' ' && WEEKDAYS.iter().any(|d| b[..3] == d[..])
}

/// `Www YYYY-MM-DD HH:MM:SS[.frac] ZONE`. The zone is journalctl's abbreviation: UTC/GMT and the
/// unambiguous common ones are read; any other (`CST`, `IST`: several zones) leaves the source's
/// configured zone, as for a stamp without one.
fn short_full(b: &[u8], ctx: &ParseContext) -> Option<OtherStamp> {
    if !weekday(b) {
        return None;
    }
    let iso = prefix::parse_iso(&b[4..])?;
    if iso.has_zone() || b.get(4 + iso.end) != Some(&b' ') {
        return None;
    }
    let zone_start = 4 + iso.end + 1;
    let zone_len = b[zone_start..]
        .iter()
        .position(|&c| c == b' ')
        .unwrap_or(b.len() - zone_start);
    let zone = &b[zone_start..zone_start + zone_len];
    let zone_like = (1..=6).contains(&zone.len())
        && zone
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-');
    if !zone_like {
        return None;
    }
    let ts = match zone_offset(zone) {
        Some(offset) => iso.utc_at(offset),
        None => iso.utc_in(&ctx.tz),
    };
    Some(OtherStamp {
        format: LineFormat::JournalShortFull,
        ts,
        subsecond: iso.subsecond(),
        end: zone_start + zone_len,
    })
}

/// Seconds east of UTC of a zone abbreviation that names one offset only, or of `+hhmm`.
fn zone_offset(zone: &[u8]) -> Option<i32> {
    const H: i32 = 3600;
    let hours = match zone {
        b"UTC" | b"GMT" | b"Z" | b"UT" => 0,
        b"WET" => 0,
        b"BST" | b"CET" | b"WEST" | b"WAT" => H,
        b"CEST" | b"EET" | b"SAST" | b"CAT" => 2 * H,
        b"EEST" | b"MSK" | b"EAT" => 3 * H,
        b"JST" | b"KST" => 9 * H,
        b"AEST" => 10 * H,
        b"AEDT" => 11 * H,
        b"NZST" => 12 * H,
        b"NZDT" => 13 * H,
        b"HST" => -10 * H,
        b"AKST" => -9 * H,
        b"AKDT" | b"PST" => -8 * H,
        b"PDT" | b"MST" => -7 * H,
        b"MDT" => -6 * H,
        b"CDT" | b"EST" => -5 * H,
        b"EDT" => -4 * H,
        _ => return numeric_offset(zone),
    };
    Some(hours)
}

/// `+hhmm` / `-hh` (what `%Z` prints for a zone without an abbreviation).
fn numeric_offset(zone: &[u8]) -> Option<i32> {
    let (sign, digits) = match zone.split_first()? {
        (b'+', d) => (1, d),
        (b'-', d) => (-1, d),
        _ => return None,
    };
    if !matches!(digits.len(), 2 | 4) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |d: &[u8]| i32::from(d[0] - b'0') * 10 + i32::from(d[1] - b'0');
    let minutes = if digits.len() == 4 {
        n(&digits[2..])
    } else {
        0
    };
    let secs = n(digits) * 3600 + minutes * 60;
    (n(digits) <= 18 && minutes < 60).then_some(sign * secs)
}

/// `SSSSSSSSSS[.ffffff]`: at least nine digits of seconds (from 1973 on), so a line starting
/// with a short number is not read as a time.
fn short_unix(b: &[u8]) -> Option<OtherStamp> {
    let secs_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(9..=11).contains(&secs_len) {
        return None;
    }
    let secs: i64 = std::str::from_utf8(&b[..secs_len]).ok()?.parse().ok()?;
    let mut end = secs_len;
    let mut nanos = 0u32;
    let mut frac = 0usize;
    if b.get(end) == Some(&b'.') {
        end += 1;
        while let Some(c) = b.get(end).filter(|c| c.is_ascii_digit()) {
            if frac < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            frac += 1;
            end += 1;
        }
        if frac == 0 {
            return None;
        }
        nanos *= 10u32.pow(9usize.saturating_sub(frac) as u32);
    }
    if !matches!(b.get(end), None | Some(b' ')) {
        return None;
    }
    Some(OtherStamp {
        format: LineFormat::JournalShortUnix,
        ts: DateTime::from_timestamp(secs, nanos)?,
        subsecond: frac > 0,
        end,
    })
}

/// The TAI64 label of 1970-01-01 00:00:00 UTC as daemontools writes it (2^62 + 10: TAI was
/// 10 s ahead then; leap seconds since are not counted, as `tai64nlocal` does not).
const TAI64_EPOCH: u64 = (1 << 62) + 10;

/// `@` and 24 hex digits: 16 of TAI64 seconds and 8 of nanoseconds.
fn tai64n(b: &[u8]) -> Option<OtherStamp> {
    let hex = b.get(1..25)?;
    if !matches!(b.get(25), None | Some(b' ')) {
        return None;
    }
    // Checked first: only then is every byte one character, so the text splits anywhere.
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let text = std::str::from_utf8(hex).ok()?;
    let label = u64::from_str_radix(&text[..16], 16).ok()?;
    let nanos = u32::from_str_radix(&text[16..], 16).ok()?;
    if nanos >= 1_000_000_000 {
        return None;
    }
    let secs = i64::try_from(label.checked_sub(TAI64_EPOCH)?).ok()?;
    Some(OtherStamp {
        format: LineFormat::Tai64n,
        ts: DateTime::from_timestamp(secs, nanos)?,
        subsecond: true,
        end: 25,
    })
}

const FACILITIES: [&[u8]; 16] = [
    b"kern",
    b"user",
    b"mail",
    b"daemon",
    b"auth",
    b"syslog",
    b"lpr",
    b"news",
    b"uucp",
    b"cron",
    b"authpriv",
    b"ftp",
    b"ntp",
    b"security",
    b"console",
    b"clock",
];
const LEVELS: [&[u8]; 11] = [
    b"emerg", b"panic", b"alert", b"crit", b"err", b"error", b"warning", b"warn", b"notice",
    b"info", b"debug",
];

/// The program token after the `<facility>.<level> ` BusyBox' syslogd (Alpine's, by default)
/// writes between the host and the program: `mx mail.info postfix/smtpd[301]: msg`. Only tried
/// for a token that is not a program as it stands.
pub(super) fn without_priority(token: &[u8]) -> Option<&[u8]> {
    let sp = memchr::memchr(b' ', token)?;
    is_priority(&token[..sp]).then_some(&token[sp + 1..])
}

/// `mail.info`, `local7.warn`: a syslog facility and level by name.
fn is_priority(token: &[u8]) -> bool {
    let Some(dot) = memchr::memchr(b'.', token) else {
        return false;
    };
    let (facility, level) = (&token[..dot], &token[dot + 1..]);
    let local = facility.len() == 6
        && facility.starts_with(b"local")
        && (b'0'..=b'7').contains(&facility[5]);
    (local || FACILITIES.contains(&facility)) && LEVELS.contains(&level)
}

/// The rest of a line after the `<facility>.<level> ` FreeBSD's `syslogd -vv` writes before the
/// host (`<mail.info> mx postfix/smtpd[301]: msg`); `r` itself when it has none. Only called
/// for a remainder that starts with `<`.
pub(super) fn without_bsd_priority(r: &[u8]) -> &[u8] {
    let close = match memchr::memchr(b'>', r) {
        Some(c) if c < 24 && r.get(c + 1) == Some(&b' ') => c,
        _ => return r,
    };
    if is_priority(&r[1..close]) {
        &r[close + 2..]
    } else {
        r
    }
}

/// `msg` without the `[ID <number> <facility>.<level>] ` tag Solaris' syslogd puts before it.
/// Called for every line: the look at the first byte is inlined, the rest is not.
#[inline(always)]
pub(super) fn without_solaris_id(msg: &[u8]) -> &[u8] {
    if msg.first() == Some(&b'[') {
        strip_solaris_id(msg)
    } else {
        msg
    }
}

#[inline(never)]
fn strip_solaris_id(msg: &[u8]) -> &[u8] {
    if !msg.starts_with(b"[ID ") {
        return msg;
    }
    let Some(close) = msg.iter().take(64).position(|&c| c == b']') else {
        return msg;
    };
    let inner = &msg[4..close];
    let Some((number, priority)) = inner
        .iter()
        .position(|&c| c == b' ')
        .map(|i| inner.split_at(i))
    else {
        return msg;
    };
    let priority = &priority[1..];
    let tag = !number.is_empty()
        && number.iter().all(u8::is_ascii_digit)
        && priority.contains(&b'.')
        && priority
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.');
    match msg.get(close + 1) {
        Some(b' ') if tag => &msg[close + 2..],
        None if tag => &msg[close + 1..],
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, TimeZone};

    use super::super::prefix::{parse_header, quick_program_msg, Header};
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext::new("ec2", 2025)
    }

    fn parse(line: &str) -> Header<'_> {
        parse_header(line.as_bytes(), &ctx(), 0).unwrap_or_else(|| panic!("not read: {line}"))
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The focus's cheap look reads the same program and message as the full parse.
    fn quick_agrees(line: &str) {
        let h = parse(line);
        let (program, msg) = quick_program_msg(line.as_bytes()).expect("quick look");
        assert_eq!((program, msg), (h.program, h.msg), "{line}");
    }

    #[test]
    fn journalctl_short_full_with_its_zone() {
        let l = "Sun 2025-11-30 17:08:01 UTC mx postfix/smtpd[301]: connect from x[1.2.3.4]";
        let h = parse(l);
        assert_eq!(h.format, LineFormat::JournalShortFull);
        assert_eq!(h.ts, Some(utc("2025-11-30T17:08:01Z")));
        assert!(!h.subsecond);
        assert_eq!(h.host, Some(&b"mx"[..]));
        assert_eq!((h.program, h.pid), (&b"postfix/smtpd"[..], Some(301)));
        assert_eq!(h.msg, b"connect from x[1.2.3.4]");
        quick_agrees(l);

        let cet = parse("Sun 2025-11-30 17:08:01 CET mx postfix/qmgr[9]: ABC: removed");
        assert_eq!(cet.ts, Some(utc("2025-11-30T16:08:01Z")));
        let edt = parse("Mon 2025-06-02 08:00:00.250 EDT mx postfix/qmgr[9]: ABC: removed");
        assert_eq!(edt.ts, Some(utc("2025-06-02T12:00:00.250Z")));
        assert!(edt.subsecond);
        let num = parse("Mon 2025-06-02 08:00:00 +0530 mx postfix/qmgr[9]: ABC: removed");
        assert_eq!(num.ts, Some(utc("2025-06-02T02:30:00Z")));
    }

    /// An abbreviation several zones share is read in the source's configured zone.
    #[test]
    fn an_ambiguous_zone_is_the_sources() {
        let mut c = ctx();
        c.tz = FixedOffset::east_opt(8 * 3600).unwrap().into();
        let l = b"Mon 2025-06-02 08:00:00 CST mx postfix/qmgr[9]: ABC: removed";
        let h = parse_header(l, &c, 0).unwrap();
        assert_eq!(h.ts, Some(utc("2025-06-02T00:00:00Z")));
        assert_eq!(h.host, Some(&b"mx"[..]));
    }

    #[test]
    fn journalctl_short_unix() {
        let l = "1764522481.123456 mx postfix/cleanup[304]: 0B1C2D3E4F: message-id=<a@b>";
        let h = parse(l);
        assert_eq!(h.format, LineFormat::JournalShortUnix);
        assert_eq!(
            h.ts,
            Some(Utc.timestamp_opt(1764522481, 123_456_000).unwrap())
        );
        assert!(h.subsecond);
        assert_eq!((h.host, h.pid), (Some(&b"mx"[..]), Some(304)));
        assert_eq!(h.msg, b"0B1C2D3E4F: message-id=<a@b>");
        quick_agrees(l);
        let whole = parse("1764522481 mx postfix/qmgr[9]: ABC: removed");
        assert_eq!(whole.ts, Some(Utc.timestamp_opt(1764522481, 0).unwrap()));
        assert!(!whole.subsecond);
    }

    /// A label written by daemontools' `tai64n` for a known time, before Dovecot's own line.
    #[test]
    fn a_tai64n_label_before_dovecots_own_line() {
        let secs: u64 = 1_764_522_481;
        let label = format!("@{:016x}{:08x}", TAI64_EPOCH + secs, 250_000_000u32);
        let l = format!("{label} lmtp(alice@corp.test)<77><s3ss>: Info: saved mail to INBOX");
        let h = parse(&l);
        assert_eq!(h.format, LineFormat::Tai64n);
        assert_eq!(
            h.ts,
            Some(Utc.timestamp_opt(secs as i64, 250_000_000).unwrap())
        );
        assert_eq!(h.host, None);
        assert_eq!(h.name, b"lmtp");
        assert_eq!(h.msg, b"Info: saved mail to INBOX");
        quick_agrees(&l);
    }

    #[test]
    fn the_solaris_message_tag_is_not_part_of_the_message() {
        let l = "Nov 30 17:08:01 mx postfix/smtpd[301]: [ID 197553 mail.info] connect from x";
        let h = parse(l);
        assert_eq!(h.format, LineFormat::ClassicSyslog);
        assert_eq!(h.msg, b"connect from x");
        quick_agrees(l);
        for kept in [
            "[ID abc mail.info] x",
            "[ID 1 mailinfo] x",
            "[ID 1 mail.info]x",
            "[ID ] x",
            "[1.2.3.4] x",
        ] {
            assert_eq!(without_solaris_id(kept.as_bytes()), kept.as_bytes());
        }
        assert_eq!(without_solaris_id(b"[ID 7 mail.err]"), b"");
    }

    #[test]
    fn busyboxs_facility_and_level_before_the_program() {
        let l = "Nov 30 17:08:01 mx mail.info postfix/smtpd[301]: connect from x[1.2.3.4]";
        let h = parse(l);
        assert_eq!(h.format, LineFormat::ClassicSyslog);
        assert_eq!(h.host, Some(&b"mx"[..]));
        assert_eq!((h.program, h.pid), (&b"postfix/smtpd"[..], Some(301)));
        assert_eq!(h.msg, b"connect from x[1.2.3.4]");
        quick_agrees(l);
        let local = parse("2025-11-30T17:08:01+00:00 mx local7.warn dovecot: imap-login: x");
        assert_eq!(local.name, b"dovecot");
        for token in [
            "mail.nope postfix/smtpd[1]",
            "local8.info postfix/smtpd[1]",
            "mailinfo postfix/smtpd[1]",
            "mail.info",
            ".info postfix/smtpd[1]",
        ] {
            assert_eq!(without_priority(token.as_bytes()), None, "{token}");
        }
        let c = ctx();
        let odd = b"Nov 30 17:08:01 mx some words here: not a program";
        assert!(parse_header(odd, &c, 0).is_none());
    }

    /// FreeBSD's `syslogd -vv` names the facility and level before the host.
    #[test]
    fn bsds_facility_and_level_before_the_host() {
        let l = "Jul  1 20:08:06 <mail.info> mailhost postfix/smtpd[4711]: connect from x[1.2.3.4]";
        let h = parse(l);
        assert_eq!(h.host, Some(&b"mailhost"[..]));
        assert_eq!((h.program, h.pid), (&b"postfix/smtpd"[..], Some(4711)));
        assert_eq!(h.msg, b"connect from x[1.2.3.4]");
        quick_agrees(l);
        for kept in ["<mail.nope> mx", "<mail.info>mx", "<mailinfo> mx", "<x"] {
            assert_eq!(without_bsd_priority(kept.as_bytes()), kept.as_bytes());
        }
    }

    /// Lines that only look like these layouts are not read as them.
    #[test]
    fn near_misses_are_not_stamps() {
        let c = ctx();
        for line in [
            "Mon 2025-06-02 08:00:00",
            "Mon 2025-06-02 08:00:00 mx.example.com: x",
            "Mon 2025-06-02T08:00:00Z UTC mx postfix/qmgr[9]: ABC: removed",
            "Mon 2025-13-02 08:00:00 UTC mx postfix/qmgr[9]: ABC: removed",
            "Mox 2025-06-02 08:00:00 UTC mx postfix/qmgr[9]: ABC: removed",
            "12345 mx postfix/qmgr[9]: ABC: removed",
            "1764522481x mx postfix/qmgr[9]: ABC: removed",
            "1764522481. mx postfix/qmgr[9]: ABC: removed",
            "@4000000069xx0000000000000 x",
            "@400000006923a8f13b9aca00 x",
            "@3fffffffffffffff00000000 x",
            // A character of two bytes across the 16th: no panic, no stamp.
            "@400000006923a8féb9aca00 x",
            "@4000000069é3a8f13b9aca00 x",
        ] {
            assert_eq!(stamp(line.as_bytes(), &c), None, "{line}");
        }
        assert_eq!(numeric_offset(b"+2400"), None);
        assert_eq!(numeric_offset(b"-0130"), Some(-5400));
    }
}
