//! Received-header date parsing: owns turning the date text of one Received header into an exact
//! UTC instant plus the precision it was written with. It does not find the date inside a header
//! (that is `fields.rs`) and never reads the clock.
//!
//! Why not mail-parser's date: it is silently wrong for fractional seconds, named zones, missing
//! seconds and two-digit years, and it accepts impossible dates (see the team's crates notes).
//!
//! Accepted forms (whitespace and comments, nested or not, may appear between any two tokens):
//! - RFC 5322 `[weekday[,]] day month year hour:minute[:second[.fraction]] zone`, including the
//!   obsolete forms: weekday without comma, full weekday and month names, 1-digit hour, a missing
//!   `:second`, 2-digit years (00-49 -> 20xx, 50-99 -> 19xx) and 3-digit years (+1900).
//! - Month before day, without the RFC comma: `Sat Apr 21 2018 03:01:04 +0000` and
//!   `Apr 21 2018 03:01:04 +0000` (also `Apr 21, 2018`).
//! - Fractional seconds to the nanosecond (more than 9 digits are truncated to 9).
//! - Other orders and separators real clients write: ctime's `Sat Mar 24 21:23:03 EDT 2007` (and
//!   `Fri Feb 07 10:18:12 2003 -0800`, the zone after the year), RFC 850's `19-Nov-82`, dotted
//!   times `13.47.26` (no fraction then).
//! - Zones: `+hhmm`/`-hhmm`, `+hh:mm`, an unsigned `hhmm` (read as `+hhmm`), JavaScript's
//!   `GMT+hhmm`, `UT`, `UTC`, `GMT`, `Z`, `EST/EDT`, `CST/CDT`, `MST/MDT`,
//!   `PST/PDT`, and the other military letters which RFC 5322 (4.3) says to read as `-0000`.
//!   Ambiguous names (`CET`, `IST`, `BST`, ...) alone are rejected: guessing would be silently
//!   wrong. A name after a numeric offset (`-0800 PST`, Go's `+0000 UTC`) is ignored: the number
//!   is the truth.
//! - Go's `time.Time.String()` form (SendGrid's filter hop): `2018-03-26 13:35:36.270951634 +0000
//!   UTC m=+266323.963383415`, and RFC 3339 (`2025-11-04T18:12:30.5Z`).
//!
//! Rejected (`None`): impossible calendar dates (31 Feb), hours > 23, minutes > 59, seconds > 60,
//! offsets beyond +-18:00, years before 1900, a missing zone, and any trailing text that is not a
//! comment. Second `60` (a leap second) is read the POSIX way, as the first second of the next
//! minute. A weekday that disagrees with the date is ignored (the date fields are authoritative).
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

/// Longest date text considered. Real dates with a comment are under 100 bytes; the cap keeps a
/// hostile header from costing more than a bounded scan.
const MAX_DATE_TEXT: usize = 4096;

/// How precisely a timestamp was written: the true instant lies in `[t, t + resolution)`,
/// because mail servers truncate (not round) the time they print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `hh:mm` with no seconds.
    Minute,
    /// `hh:mm:ss`.
    Second,
    /// `hh:mm:ss.f...` with this many fraction digits (1 to 9).
    Fraction(u8),
}

impl Precision {
    /// Width of the interval the written time stands for, in nanoseconds.
    pub fn resolution_ns(self) -> i128 {
        match self {
            Precision::Minute => 60_000_000_000,
            Precision::Second => 1_000_000_000,
            Precision::Fraction(d) => 10i128.pow(9u32.saturating_sub(u32::from(d.min(9)))),
        }
    }
}

/// A parsed Received date: the UTC instant, its written precision and the offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedDate {
    pub utc: DateTime<Utc>,
    pub precision: Precision,
    /// The written UTC offset in seconds (named zones resolved; `-0000` and military letters are 0).
    pub offset_seconds: i32,
}

/// Parse the date part of a Received header (the text after the `;`, or Go's form).
/// Returns `None` for anything that is not a complete, valid date; never panics.
pub fn parse_received_date(s: &str) -> Option<ParsedDate> {
    if s.len() > MAX_DATE_TEXT {
        return None;
    }
    let clean = strip_comments(s)?;
    let mut c = Cursor {
        b: clean.as_bytes(),
        i: 0,
    };
    c.ws();
    let parsed = if c.looks_like_iso() {
        parse_iso(&mut c)?
    } else {
        parse_rfc5322(&mut c)?
    };
    c.ws();
    if c.i != c.b.len() {
        return None;
    }
    Some(parsed)
}

/// Replace every comment (RFC 5322 `ccontent`, nested, with quoted-pairs) by one space.
/// A stray `)` makes the text garbage; an unclosed `(` at the end is tolerated (truncated header).
fn strip_comments(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    let mut escaped = false;
    for ch in s.chars() {
        if depth > 0 {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '(' {
                depth = depth.saturating_add(1);
            } else if ch == ')' {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            continue;
        }
        match ch {
            '(' => depth = 1,
            ')' => return None,
            _ => out.push(ch),
        }
    }
    Some(out)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A run of ASCII digits whose length is within `min..=max`; returns (value, length).
    fn digits(&mut self, min: usize, max: usize) -> Option<(u32, usize)> {
        let start = self.i;
        let mut value = 0u32;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            if self.i - start >= max {
                return None;
            }
            // Saturating: long runs (Go's monotonic reading) are only skipped, never used.
            value = value.saturating_mul(10).saturating_add(u32::from(d - b'0'));
            self.i += 1;
        }
        let len = self.i - start;
        (len >= min).then_some((value, len))
    }

    /// A run of ASCII letters (possibly empty).
    fn alpha(&mut self) -> &'a str {
        let start = self.i;
        while matches!(self.peek(), Some(b'a'..=b'z' | b'A'..=b'Z')) {
            self.i += 1;
        }
        // The slice is ASCII letters only, so it is valid UTF-8.
        std::str::from_utf8(self.b.get(start..self.i).unwrap_or_default()).unwrap_or_default()
    }

    /// `YYYY-` at the cursor: the Go / RFC 3339 form.
    fn looks_like_iso(&self) -> bool {
        let rest = self.b.get(self.i..).unwrap_or_default();
        rest.len() >= 5 && rest[..4].iter().all(u8::is_ascii_digit) && rest[4] == b'-'
    }
}

/// Time of day: `h[h]:mm[:ss[.fraction]]`. Returns (hour, minute, second, nanos, precision).
fn parse_time(c: &mut Cursor) -> Option<(u32, u32, u32, u32, Precision)> {
    let (hour, _) = c.digits(1, 2)?;
    c.ws();
    // `13.47.26`: dots throughout (older clients), then no fraction.
    let sep = match c.peek()? {
        s @ (b':' | b'.') => s,
        _ => return None,
    };
    c.i += 1;
    c.ws();
    let (minute, _) = c.digits(2, 2)?;
    let save = c.i;
    c.ws();
    if !c.eat(sep) {
        c.i = save;
        return Some((hour, minute, 0, 0, Precision::Minute));
    }
    c.ws();
    let (second, _) = c.digits(2, 2)?;
    if sep == b'.' {
        return Some((hour, minute, second, 0, Precision::Second));
    }
    if c.peek() == Some(b'.') || c.peek() == Some(b',') {
        c.i += 1;
        let start = c.i;
        let mut nanos = 0u32;
        while let Some(d @ b'0'..=b'9') = c.peek() {
            if c.i - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            c.i += 1;
        }
        let len = c.i - start;
        if len == 0 {
            return None;
        }
        let kept = len.min(9);
        nanos *= 10u32.pow(9 - kept as u32);
        return Some((hour, minute, second, nanos, Precision::Fraction(kept as u8)));
    }
    Some((hour, minute, second, 0, Precision::Second))
}

/// Numeric offset `+hhmm`, `+hh:mm` or `+hh` (Go abbreviations like `+03`), in seconds.
fn parse_numeric_zone(c: &mut Cursor) -> Option<i32> {
    let sign = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.i += 1;
    let (v, len) = c.digits(2, 4)?;
    let (h, m) = match len {
        4 => (v / 100, v % 100),
        2 => {
            if c.eat(b':') {
                let (m, _) = c.digits(2, 2)?;
                (v, m)
            } else {
                (v, 0)
            }
        }
        _ => return None,
    };
    if h > 18 || m > 59 || (h == 18 && m > 0) {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

/// RFC 5322 and obsolete named zones, in seconds east of UTC.
fn named_zone(name: &str) -> Option<i32> {
    let upper = name.to_ascii_uppercase();
    let hours = match upper.as_str() {
        "UT" | "UTC" | "GMT" | "Z" => 0,
        "EST" => -5,
        "EDT" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        // RFC 5322 4.3: the other military zones were defined with the wrong sign in RFC 822 and
        // "SHOULD all be considered equivalent to -0000".
        m if m.len() == 1 && m != "J" => 0,
        _ => return None,
    };
    Some(hours * 3600)
}

/// The zone after the time: numeric (optionally followed by an informative abbreviation) or named.
fn parse_zone(c: &mut Cursor) -> Option<i32> {
    c.ws();
    if matches!(c.peek(), Some(b'+' | b'-')) {
        let offset = parse_numeric_zone(c)?;
        // An abbreviation after the number (`-0800 PST`, Go's `+0000 UTC` or `+0300 +03`) is
        // informative only; the number wins.
        let save = c.i;
        c.ws();
        if matches!(c.peek(), Some(b'a'..=b'z' | b'A'..=b'Z')) {
            let word = c.alpha();
            if word.len() > 6 {
                c.i = save;
            }
        } else if matches!(c.peek(), Some(b'+' | b'-')) && c.i > save {
            if parse_numeric_zone(c).is_none() {
                c.i = save;
            }
        } else {
            c.i = save;
        }
        return Some(offset);
    }
    // Four digits without a sign (`... 22:23:35 0200`, seen from real clients): `+hhmm`.
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let (v, len) = c.digits(4, 4)?;
        let (h, m) = (v / 100, v % 100);
        return (len == 4 && h < 18 && m < 60).then(|| (h * 3600 + m * 60) as i32);
    }
    let word = c.alpha();
    let named = named_zone(word)?;
    // JavaScript's `Date.toString()`: `GMT+0200 (Central European Summer Time)`: the offset
    // written after the name is the zone (four digits or `hh:mm`, never POSIX's inverted `+2`).
    if named == 0 && matches!(c.peek(), Some(b'+' | b'-')) {
        let start = c.i;
        let offset = parse_numeric_zone(c)?;
        return (c.i - start >= 5).then_some(offset);
    }
    Some(named)
}

fn weekday_name(w: &str) -> bool {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = w.to_ascii_lowercase();
    DAYS.iter()
        .any(|d| lower == *d || (lower.len() == 3 && d.starts_with(lower.as_str())))
}

fn month_number(w: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let lower = w.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| lower == *m || (lower.len() == 3 && m.starts_with(lower.as_str())))
        .map(|p| p as u32 + 1)
}

/// `[weekday[,]] day month year time zone`, or `[weekday[,]] month day[,] year time zone`.
fn parse_rfc5322(c: &mut Cursor) -> Option<ParsedDate> {
    let mut word = c.alpha();
    if !word.is_empty() && weekday_name(word) {
        c.ws();
        c.eat(b',');
        c.ws();
        word = c.alpha();
    }
    // Month first (`Apr 21 2018`, as JavaScript's `Date.toString()` and some MTAs write it) or
    // day first.
    let (day, month) = if !word.is_empty() {
        let month = month_number(word)?;
        c.ws();
        let (day, _) = c.digits(1, 2)?;
        c.ws();
        if looks_like_time(c) {
            return ctime_rest(c, day, month);
        }
        c.eat(b',');
        (day, month)
    } else {
        let (day, _) = c.digits(1, 2)?;
        // RFC 850's `19-Nov-82`: a dash on both sides of the month, or neither.
        if c.eat(b'-') {
            let month = month_number(c.alpha())?;
            if !c.eat(b'-') {
                return None;
            }
            (day, month)
        } else {
            c.ws();
            (day, month_number(c.alpha())?)
        }
    };
    c.ws();
    let (y, ylen) = c.digits(2, 4)?;
    let year = match ylen {
        // RFC 5322 4.3 obs-year.
        2 if y < 50 => 2000 + y,
        2 => 1900 + y,
        3 => 1900 + y,
        _ => y,
    };
    c.ws();
    let (hour, minute, second, nanos, precision) = parse_time(c)?;
    let offset = parse_zone(c)?;
    build(
        year, month, day, hour, minute, second, nanos, precision, offset,
    )
}

/// `h[h]:` at the cursor: a time where a year was expected.
fn looks_like_time(c: &Cursor) -> bool {
    let rest = c.b.get(c.i..).unwrap_or_default();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=2).contains(&digits) && rest.get(digits) == Some(&b':')
}

/// ctime's and date(1)'s order after `month day`: `21:23:03 EDT 2007`, or `21:23:03 2007 -0400`.
/// The zone is required, as everywhere.
fn ctime_rest(c: &mut Cursor, day: u32, month: u32) -> Option<ParsedDate> {
    let (hour, minute, second, nanos, precision) = parse_time(c)?;
    // The zone before the year (`Fri Sep 14 14:36:56 EDT 2018`) or after it (`Fri Feb 07
    // 10:18:12 2003 -0800`, as some gateways write it).
    let save = c.i;
    let zone_first = parse_zone(c).and_then(|offset| {
        c.ws();
        c.digits(4, 4).map(|(year, _)| (year, offset))
    });
    let (year, offset) = match zone_first {
        Some(x) => x,
        None => {
            c.i = save;
            c.ws();
            let (year, _) = c.digits(4, 4)?;
            (year, parse_zone(c)?)
        }
    };
    build(
        year, month, day, hour, minute, second, nanos, precision, offset,
    )
}

/// Go's `time.Time.String()` and RFC 3339: `YYYY-MM-DD[T ]hh:mm[:ss[.f]] zone [abbr] [m=+x.y]`.
fn parse_iso(c: &mut Cursor) -> Option<ParsedDate> {
    let (year, _) = c.digits(4, 4)?;
    if !c.eat(b'-') {
        return None;
    }
    let (month, _) = c.digits(2, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    let (day, _) = c.digits(2, 2)?;
    if !(c.eat(b'T') || c.eat(b't')) {
        let save = c.i;
        c.ws();
        if c.i == save {
            return None;
        }
    }
    let (hour, minute, second, nanos, precision) = parse_time(c)?;
    let offset = if c.eat(b'Z') || c.eat(b'z') {
        0
    } else {
        parse_zone(c)?
    };
    // Go's monotonic clock reading: `m=+266323.963383415` (or `m=-...`); meaningless here.
    let save = c.i;
    c.ws();
    if c.peek() == Some(b'm') && c.b.get(c.i + 1) == Some(&b'=') {
        c.i += 2;
        if !(c.eat(b'+') || c.eat(b'-')) {
            return None;
        }
        c.digits(1, 20)?;
        if c.eat(b'.') {
            c.digits(1, 20)?;
        }
    } else {
        c.i = save;
    }
    build(
        year, month, day, hour, minute, second, nanos, precision, offset,
    )
}

#[allow(clippy::too_many_arguments)]
fn build(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    precision: Precision,
    offset_seconds: i32,
) -> Option<ParsedDate> {
    if !(1900..=9999).contains(&year) || second > 60 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    // Second 60 (leap second): the instant one second after :59, as POSIX time reads it.
    let leap = second == 60;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)?;
    let mut local = date.and_time(time);
    if leap {
        local = local.checked_add_signed(TimeDelta::seconds(1))?;
    }
    let utc = local.checked_sub_signed(TimeDelta::seconds(i64::from(offset_seconds)))?;
    Some(ParsedDate {
        utc: DateTime::from_naive_utc_and_offset(utc, Utc),
        precision,
        offset_seconds,
    })
}

/// RFC 3339 in UTC with `Z`, printing exactly the fraction digits that were written (none for
/// `Second`/`Minute` precision). Minute precision prints `:00` seconds.
pub fn format_rfc3339(utc: &DateTime<Utc>, precision: Precision) -> String {
    let mut s = utc.format("%Y-%m-%dT%H:%M:%S").to_string();
    if let Precision::Fraction(d) = precision {
        let d = usize::from(d.clamp(1, 9));
        let nanos = format!("{:09}", utc.timestamp_subsec_nanos().min(999_999_999));
        s.push('.');
        s.push_str(nanos.get(..d).unwrap_or_default());
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(s: &str) -> String {
        let p = parse_received_date(s).unwrap_or_else(|| panic!("should parse: {s:?}"));
        format_rfc3339(&p.utc, p.precision)
    }

    fn none(s: &str) {
        assert_eq!(parse_received_date(s), None, "should reject {s:?}");
    }

    #[test]
    fn rfc5322_plain_and_with_comment() {
        assert_eq!(
            rfc("Tue, 04 Nov 2025 18:12:30 +0000"),
            "2025-11-04T18:12:30Z"
        );
        assert_eq!(
            rfc("Tue,  4 Nov 2025 18:12:31 +0000 (UTC)"),
            "2025-11-04T18:12:31Z"
        );
        assert_eq!(
            rfc("Tue, 4 Nov 2025 10:12:33 -0800 (PST)"),
            "2025-11-04T18:12:33Z"
        );
        assert_eq!(
            rfc(" \r\n\tTue, 4 Nov\r\n 2025 18:12:29 +0530 "),
            "2025-11-04T12:42:29Z"
        );
        // Comments anywhere, nested, with quoted-pairs.
        assert_eq!(
            rfc("(a) Tue, (b (c) \\) ) 4 Nov 2025 18:12:30 (d) +0000 (GMT Standard Time)"),
            "2025-11-04T18:12:30Z"
        );
    }

    #[test]
    fn no_weekday_and_obsolete_weekday_forms() {
        // qmail writes no weekday.
        assert_eq!(rfc("4 Nov 2025 18:12:34 -0000"), "2025-11-04T18:12:34Z");
        assert_eq!(
            rfc("Tuesday, 4 November 2025 18:12:34 +0000"),
            "2025-11-04T18:12:34Z"
        );
        assert_eq!(rfc("Tue 4 Nov 2025 18:12:34 +0000"), "2025-11-04T18:12:34Z");
        assert_eq!(rfc("tue, 4 nov 2025 8:02:34 +0000"), "2025-11-04T08:02:34Z");
        // A wrong weekday is ignored: the date fields are authoritative.
        assert_eq!(
            rfc("Fri, 4 Nov 2025 18:12:34 +0000"),
            "2025-11-04T18:12:34Z"
        );
        none("Xyz, 4 Nov 2025 18:12:34 +0000");
    }

    #[test]
    fn month_before_day_without_comma() {
        assert_eq!(
            rfc("Sat Apr 21 2018 03:01:04 +0000"),
            "2018-04-21T03:01:04Z"
        );
        assert_eq!(rfc("Apr 21 2018 03:01:04 +0000"), "2018-04-21T03:01:04Z");
        assert_eq!(
            rfc("Sat, Apr 21, 2018 03:01:04 -0200 (BRST)"),
            "2018-04-21T05:01:04Z"
        );
        assert_eq!(rfc("apr 1 18 03:01 +0000"), "2018-04-01T03:01:00Z");
        // The same rules as the day-first form: a real month, a real day, a zone.
        none("Apr 31 2018 03:01:04 +0000");
        none("Sat Foo 21 2018 03:01:04 +0000");
        none("Apr 2018 03:01:04 +0000");
        none("Apr 21 2018 03:01:04");
        none("Sat Apr 21 2018");
    }

    /// Forms other projects' date tests read and real clients write (MimeKit, mime4j, CPython,
    /// JavaMail): an unsigned zone, JavaScript's `GMT+hhmm`, dotted times, RFC 850's dashes,
    /// ctime's order. Each still needs a zone.
    #[test]
    fn other_real_world_forms() {
        assert_eq!(
            rfc("Tue, 17 Jul 2012 22:23:35.882 0000"),
            "2012-07-17T22:23:35.882Z"
        );
        assert_eq!(
            rfc("Tue, 12 Jun 2012 19:22:28 0200"),
            "2012-06-12T17:22:28Z"
        );
        assert_eq!(
            rfc("Sat Apr 21 2018 03:01:04 GMT+0200 (Central European Summer Time)"),
            "2018-04-21T01:01:04Z"
        );
        assert_eq!(
            rfc("Sat Apr 21 2018 03:01:04 GMT-03:30"),
            "2018-04-21T06:31:04Z"
        );
        assert_eq!(rfc("5 Feb 2003 13.47.26 -0800"), "2003-02-05T21:47:26Z");
        assert_eq!(
            rfc("Fri Feb 07 10:18:12 2003 -0800"),
            "2003-02-07T18:18:12Z"
        );
        assert_eq!(rfc("Wed, 3 Apr 2002 14.58 +0800"), "2002-04-03T06:58:00Z");
        assert_eq!(
            rfc("Friday, 19-Nov-82 16:14:55 EST"),
            "1982-11-19T21:14:55Z"
        );
        assert_eq!(rfc("1-Jan-2015 00:00 +0000"), "2015-01-01T00:00:00Z");
        assert_eq!(rfc("Sat Mar 24 21:23:03 EDT 2007"), "2007-03-25T01:23:03Z");
        for bad in [
            "Sat Apr 21 2018 03:01:04 GMT+2",
            "Tue, 12 Jun 2012 19:22:28 2400",
            "Tue, 12 Jun 2012 19:22:28 020",
            "12.34.56.78+0800",
            "5 Feb 2003 13.47:26 -0800",
            "5 Feb 2003 13.47.26.5 -0800",
            "1-Jan 2015 00:00 +0000",
            "Nov--82 16:14:55 EST",
            "Sat Mar 24 21:23:03 2007",
        ] {
            none(bad);
        }
    }

    #[test]
    fn fractional_seconds_keep_nanoseconds_and_precision() {
        // The mail-parser trap: the fraction must not swallow the zone.
        let p = parse_received_date("Tue, 04 Nov 2025 18:12:30.123456789 +0000 (UTC)").unwrap();
        assert_eq!(p.utc.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(p.precision, Precision::Fraction(9));
        assert_eq!(
            format_rfc3339(&p.utc, p.precision),
            "2025-11-04T18:12:30.123456789Z"
        );
        // SendGrid API intake, milliseconds; trailing zeros as written are kept.
        assert_eq!(
            rfc("Thu, 17 Jun 2021 14:45:16.430 +0000 (UTC)"),
            "2021-06-17T14:45:16.430Z"
        );
        assert_eq!(
            rfc("Thu, 17 Jun 2021 14:45:16.4 -0100"),
            "2021-06-17T15:45:16.4Z"
        );
        // More than 9 digits: truncated to nanoseconds.
        assert_eq!(
            rfc("Thu, 17 Jun 2021 14:45:16.1234567891234 +0000"),
            "2021-06-17T14:45:16.123456789Z"
        );
        none("Thu, 17 Jun 2021 14:45:16. +0000");
    }

    #[test]
    fn named_zones() {
        let cases = [
            ("UT", "18:12:30"),
            ("UTC", "18:12:30"),
            ("GMT", "18:12:30"),
            ("Z", "18:12:30"),
            ("EST", "23:12:30"),
            ("EDT", "22:12:30"),
            ("CST", "00:12:30"),
            ("CDT", "23:12:30"),
            ("MST", "01:12:30"),
            ("MDT", "00:12:30"),
            ("PST", "02:12:30"),
            ("PDT", "01:12:30"),
            ("pst", "02:12:30"),
            // Military letters other than Z: RFC 5322 says read as -0000.
            ("A", "18:12:30"),
        ];
        for (zone, want) in cases {
            let got = rfc(&format!("Tue, 4 Nov 2025 18:12:30 {zone}"));
            assert!(got.ends_with(&format!("{want}Z")), "{zone}: {got}");
        }
        // The EST trap: 5 hours, not UTC.
        assert_eq!(rfc("Tue, 4 Nov 2025 13:12:30 EST"), "2025-11-04T18:12:30Z");
        // Ambiguous or unknown names are rejected, not guessed.
        none("Tue, 4 Nov 2025 18:12:30 CET");
        none("Tue, 4 Nov 2025 18:12:30 IST");
        none("Tue, 4 Nov 2025 18:12:30 J");
        // A missing zone is rejected.
        none("Tue, 4 Nov 2025 18:12:30");
        // Abbreviation after a numeric offset: the number wins.
        assert_eq!(
            rfc("Tue, 4 Nov 2025 10:12:30 -0800 PST"),
            "2025-11-04T18:12:30Z"
        );
        assert_eq!(
            rfc("Tue, 4 Nov 2025 19:12:30 +01:00"),
            "2025-11-04T18:12:30Z"
        );
    }

    #[test]
    fn numeric_zone_bounds() {
        assert_eq!(
            rfc("Tue, 4 Nov 2025 18:12:30 +1800"),
            "2025-11-04T00:12:30Z"
        );
        none("Tue, 4 Nov 2025 18:12:30 +1801");
        none("Tue, 4 Nov 2025 18:12:30 +2500");
        none("Tue, 4 Nov 2025 18:12:30 +0060");
        none("Tue, 4 Nov 2025 18:12:30 +000");
        none("Tue, 4 Nov 2025 18:12:30 +00000");
    }

    #[test]
    fn missing_seconds() {
        let p = parse_received_date("Tue, 4 Nov 2025 18:12 +0100").unwrap();
        assert_eq!(p.precision, Precision::Minute);
        assert_eq!(format_rfc3339(&p.utc, p.precision), "2025-11-04T17:12:00Z");
        assert_eq!(p.offset_seconds, 3600);
    }

    #[test]
    fn two_and_three_digit_years() {
        assert_eq!(rfc("Tue, 4 Nov 25 18:12:30 +0000"), "2025-11-04T18:12:30Z");
        assert_eq!(rfc("4 Nov 00 18:12:30 +0000"), "2000-11-04T18:12:30Z");
        assert_eq!(rfc("4 Nov 49 18:12:30 +0000"), "2049-11-04T18:12:30Z");
        assert_eq!(rfc("4 Nov 50 18:12:30 +0000"), "1950-11-04T18:12:30Z");
        assert_eq!(rfc("Thu, 4 Nov 99 18:12:30 +0000"), "1999-11-04T18:12:30Z");
        assert_eq!(rfc("4 Nov 125 18:12:30 +0000"), "2025-11-04T18:12:30Z");
        none("4 Nov 1899 18:12:30 +0000");
        none("4 Nov 5 18:12:30 +0000");
        none("4 Nov 20255 18:12:30 +0000");
    }

    #[test]
    fn impossible_dates_and_times_are_rejected() {
        none("Tue, 31 Feb 2025 18:12:30 +0000");
        none("29 Feb 2025 18:12:30 +0000");
        assert_eq!(rfc("29 Feb 2024 18:12:30 +0000"), "2024-02-29T18:12:30Z");
        none("31 Apr 2025 18:12:30 +0000");
        none("0 Nov 2025 18:12:30 +0000");
        none("4 Nov 2025 24:12:30 +0000");
        none("4 Nov 2025 18:60:30 +0000");
        none("4 Nov 2025 18:12:61 +0000");
        none("4 Foo 2025 18:12:30 +0000");
        none("4 Nov 2025 18:1:30 +0000");
    }

    #[test]
    fn leap_second_is_the_next_minute() {
        assert_eq!(rfc("31 Dec 2016 23:59:60 +0000"), "2017-01-01T00:00:00Z");
    }

    #[test]
    fn year_2099_is_a_date_not_an_error() {
        // Future dates parse; the trace flags them (future_date), the parser does not judge.
        assert_eq!(rfc("1 Jan 2099 00:00:00 +0000"), "2099-01-01T00:00:00Z");
    }

    #[test]
    fn go_time_string_sendgrid() {
        let p = parse_received_date("2018-03-26 13:35:36.270951634 +0000 UTC m=+266323.963383415")
            .unwrap();
        assert_eq!(
            format_rfc3339(&p.utc, p.precision),
            "2018-03-26T13:35:36.270951634Z"
        );
        assert_eq!(
            rfc("2018-03-26 13:35:36.270951634 +0000 UTC"),
            "2018-03-26T13:35:36.270951634Z"
        );
        assert_eq!(
            rfc("2018-03-26 06:35:36.27 -0700 PDT m=-0.5"),
            "2018-03-26T13:35:36.27Z"
        );
        // Go prints a numeric pseudo-abbreviation for zones without a name.
        assert_eq!(rfc("2018-03-26 16:35:36 +0300 +03"), "2018-03-26T13:35:36Z");
        none("2018-03-26 13:35:36.270951634 +0000 UTC m=");
        none("2018-03-26 13:35:36.270951634");
        none("2018-02-30 13:35:36 +0000 UTC");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc("2025-11-04T18:12:30Z"), "2025-11-04T18:12:30Z");
        assert_eq!(rfc("2025-11-04T18:12:30.5Z"), "2025-11-04T18:12:30.5Z");
        assert_eq!(
            rfc("2025-11-04T19:12:30.250+01:00"),
            "2025-11-04T18:12:30.250Z"
        );
    }

    #[test]
    fn garbage_and_trailing_text_are_rejected() {
        for s in [
            "",
            "   ",
            "Tuesday the fourth of never",
            "Tue, 4 Nov 2025 18:12:30 +0000 trailing",
            "Tue, 4 Nov 2025 18:12:30 +0000)",
            "Tue, 4 Nov 2025",
            "18:12:30 +0000",
            "Tue, 4 Nov 2025 18:12:30 +0000; Tue",
            "\u{0}\u{ff}",
        ] {
            none(s);
        }
        // An unclosed comment at the very end is tolerated (truncated header).
        assert_eq!(
            rfc("Tue, 4 Nov 2025 18:12:30 +0000 (UT"),
            "2025-11-04T18:12:30Z"
        );
        // Bounded input.
        none(&format!(
            "Tue, 4 Nov 2025 18:12:30 +0000 ({})",
            "x".repeat(5000)
        ));
    }

    #[test]
    fn resolution() {
        assert_eq!(Precision::Minute.resolution_ns(), 60_000_000_000);
        assert_eq!(Precision::Second.resolution_ns(), 1_000_000_000);
        assert_eq!(Precision::Fraction(3).resolution_ns(), 1_000_000);
        assert_eq!(Precision::Fraction(9).resolution_ns(), 1);
    }
}
