//! The RFC 3339 text of the report's UTC timestamps (hops, findings), byte for byte what
//! chrono's own `Serialize` writes (seconds, then milli-, micro- or nanoseconds only when there
//! are any, then `Z`), but built in a small buffer and handed over as one string: chrono writes
//! it a character at a time through a formatter, which a full diagnosis does for every hop.
//! Does not parse timestamps, and leaves years outside 0..=9999 to chrono itself.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Longest text written here: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub(crate) const MAX: usize = 30;

/// `n` (below 100) as two digits.
fn two(buf: &mut [u8; MAX], at: usize, n: u32) {
    buf[at] = b'0' + (n / 10) as u8;
    buf[at + 1] = b'0' + (n % 10) as u8;
}

/// `n` as exactly `width` digits, zero-padded (`n` has at most `width` digits).
fn digits(buf: &mut [u8; MAX], at: usize, mut n: u32, width: usize) {
    for i in (at..at + width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The text into `buf`, its length; `None` for a year chrono writes with a sign.
pub(crate) fn write(t: &DateTime<Utc>, buf: &mut [u8; MAX]) -> Option<usize> {
    // Each accessor of a `DateTime` works out its local time anew: once is enough.
    let naive = t.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    digits(buf, 0, year, 4);
    buf[4] = b'-';
    two(buf, 5, date.month());
    buf[7] = b'-';
    two(buf, 8, date.day());
    buf[10] = b'T';
    let mut sec = time.second();
    let mut nano = time.nanosecond();
    // A leap second: chrono carries it in the nanoseconds and writes second 60.
    if nano >= 1_000_000_000 {
        sec += 1;
        nano -= 1_000_000_000;
    }
    two(buf, 11, time.hour());
    buf[13] = b':';
    two(buf, 14, time.minute());
    buf[16] = b':';
    two(buf, 17, sec);
    let mut n = 19;
    if nano != 0 {
        buf[n] = b'.';
        n += 1;
        let (value, width) = if nano.is_multiple_of(1_000_000) {
            (nano / 1_000_000, 3)
        } else if nano.is_multiple_of(1_000) {
            (nano / 1_000, 6)
        } else {
            (nano, 9)
        };
        digits(buf, n, value, width);
        n += width;
    }
    buf[n] = b'Z';
    Some(n + 1)
}

/// `serialize_with` for an optional UTC timestamp: what `Option<DateTime<Utc>>` serializes to.
pub(crate) fn serialize_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let Some(t) = t else {
        return s.serialize_none();
    };
    let mut buf = [0u8; MAX];
    match write(t, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(n) => s.serialize_some(std::str::from_utf8(&buf[..n]).unwrap_or_default()),
        None => s.serialize_some(t),
    }
}

/// An optional timestamp serialized as [`serialize_opt`] does (for writers that are not derived).
pub(crate) struct Opt<'a>(pub &'a Option<DateTime<Utc>>);

impl Serialize for Opt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_opt(self.0, s)
    }
}

/// Its own text, for comparing with chrono's.
#[cfg(test)]
fn text(t: &DateTime<Utc>) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    serialize_opt(&Some(*t), &mut ser).expect("serializes");
    String::from_utf8(out).expect("utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn chrono_text(t: &DateTime<Utc>) -> String {
        serde_json::to_string(t).unwrap()
    }

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc.with_ymd_and_hms(2025, 11, 4, 6, 0, 0).unwrap();
        let nanos = [
            0,
            1,
            7,
            999,
            1_000,
            120_000,
            999_000,
            1_000_000,
            5_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            999_999_999,
        ];
        for &n in &nanos {
            for t in [
                base + chrono::TimeDelta::nanoseconds(n),
                Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
                Utc.with_ymd_and_hms(2024, 2, 29, 13, 7, 9).unwrap()
                    + chrono::TimeDelta::nanoseconds(n),
            ] {
                assert_eq!(text(&t), chrono_text(&t), "{t:?}");
            }
        }
    }

    #[test]
    fn a_leap_second_and_years_chrono_signs() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let far = NaiveDate::from_ymd_opt(12345, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        let before = NaiveDate::from_ymd_opt(-44, 3, 15)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        for t in [leap, far, before] {
            assert_eq!(text(&t), chrono_text(&t), "{t:?}");
        }
        assert_eq!(text(&leap), "\"2016-12-31T23:59:60.500Z\"");
        let mut none = Vec::new();
        serialize_opt(&None, &mut serde_json::Serializer::new(&mut none)).unwrap();
        assert_eq!(none, b"null");
    }
}
