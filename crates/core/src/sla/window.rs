//! The report's window from the command line's words: `--since DURATION` back from now, or
//! `--from`/`--to` as dates (whole days in the report's time zone) or times. Now is handed in.
//! Not here: parsing durations (the command line) or selecting rows (the history readers).
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The window when nothing is asked: the last 30 days.
pub const DEFAULT_SINCE_DAYS: i64 = 30;

/// A bound as written: a bare date, or a time.
enum Bound {
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

fn parse_bound(s: &str, offset: FixedOffset) -> Result<Bound, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(Bound::Time(d.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return local(n, offset).map(Bound::Time);
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map(Bound::Date)
        .map_err(|_| {
            format!(
                "'{s}' is not a date or time: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' (in --tz) \
                 or RFC 3339"
            )
        })
}

fn local(n: NaiveDateTime, offset: FixedOffset) -> Result<DateTime<Utc>, String> {
    offset
        .from_local_datetime(&n)
        .single()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| format!("{n} is out of range"))
}

fn midnight(d: NaiveDate, offset: FixedOffset) -> Result<DateTime<Utc>, String> {
    local(d.and_time(chrono::NaiveTime::MIN), offset)
}

/// The half-open window `[from, to)`. `--to DATE` includes that whole day; a missing `--to` is
/// now; a missing `--from` is [`DEFAULT_SINCE_DAYS`] before the end.
pub fn resolve(
    since: Option<Duration>,
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    if let Some(since) = since {
        if from.is_some() || to.is_some() {
            return Err("--since cannot be combined with --from or --to".into());
        }
        return Ok((now - since, now));
    }
    let end = match to.map(|s| parse_bound(s, offset)).transpose()? {
        None => now,
        Some(Bound::Time(t)) => t,
        Some(Bound::Date(d)) => midnight(d.succ_opt().ok_or("date out of range")?, offset)?,
    };
    let start = match from.map(|s| parse_bound(s, offset)).transpose()? {
        None => end - Duration::days(DEFAULT_SINCE_DAYS),
        Some(Bound::Time(t)) => t,
        Some(Bound::Date(d)) => midnight(d, offset)?,
    };
    if start >= end {
        return Err(format!("the window is empty: {start} is not before {end}"));
    }
    Ok((start, end))
}

/// How the report names a fixed offset: `UTC` for zero, else `+02:00`.
pub fn zone_name(offset: FixedOffset) -> String {
    if offset.local_minus_utc() == 0 {
        "UTC".into()
    } else {
        offset.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn dates_are_whole_days_in_the_zone() {
        let now = utc("2026-11-29T09:00:00Z");
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        let (f, t) = resolve(None, Some("2026-11-01"), Some("2026-11-02"), now, plus2).unwrap();
        assert_eq!(f, utc("2026-10-31T22:00:00Z"));
        assert_eq!(t, utc("2026-11-02T22:00:00Z"));
        let z = FixedOffset::east_opt(0).unwrap();
        let (f, t) = resolve(None, Some("2026-11-01 12:30"), None, now, z).unwrap();
        assert_eq!((f, t), (utc("2026-11-01T12:30:00Z"), now));
        let (f, t) = resolve(Some(Duration::days(7)), None, None, now, z).unwrap();
        assert_eq!((f, t), (utc("2026-11-22T09:00:00Z"), now));
        let (f, _) = resolve(None, None, Some("2026-11-10T00:00:00Z"), now, z).unwrap();
        assert_eq!(f, utc("2026-10-11T00:00:00Z"));
    }

    #[test]
    fn bad_windows_are_named() {
        let now = utc("2026-11-29T09:00:00Z");
        let z = FixedOffset::east_opt(0).unwrap();
        let e = resolve(None, Some("yesterday"), None, now, z).unwrap_err();
        assert!(e.contains("'yesterday' is not a date"), "{e}");
        let e = resolve(None, Some("2026-11-05"), Some("2026-11-04"), now, z).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        assert!(resolve(Some(Duration::days(1)), Some("2026-11-05"), None, now, z).is_err());
        assert_eq!(zone_name(z), "UTC");
        assert_eq!(zone_name(FixedOffset::west_opt(5400).unwrap()), "-01:30");
    }
}
