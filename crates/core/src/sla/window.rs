//! The report's window from the command line's words: `--since DURATION` back from now, or
//! `--from`/`--to` as dates (whole days in the report's time zone) or times. Now is handed in.
//! Not here: parsing durations (the command line) or selecting rows (the history readers).
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use crate::logs::LogZone;

/// The window when nothing is asked: the last 30 days.
pub const DEFAULT_SINCE_DAYS: i64 = 30;

/// A bound as written: a bare date, or a time.
enum Bound {
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

fn parse_bound(s: &str, zone: &LogZone) -> Result<Bound, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(Bound::Time(d.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Bound::Time(zone.earliest(n)));
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

/// Where day `d` begins in `zone` (where a clock skips midnight, the instant the day begins).
fn midnight(d: NaiveDate, zone: &LogZone) -> DateTime<Utc> {
    zone.earliest(d.and_time(chrono::NaiveTime::MIN))
}

/// The half-open window `[from, to)`. `--to DATE` includes that whole day; a missing `--to` is
/// now; a missing `--from` is [`DEFAULT_SINCE_DAYS`] before the end.
pub fn resolve(
    since: Option<Duration>,
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
    zone: &LogZone,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    if let Some(since) = since {
        if from.is_some() || to.is_some() {
            return Err("--since cannot be combined with --from or --to".into());
        }
        return Ok((now - since, now));
    }
    let end = match to.map(|s| parse_bound(s, zone)).transpose()? {
        None => now,
        Some(Bound::Time(t)) => t,
        Some(Bound::Date(d)) => midnight(d.succ_opt().ok_or("date out of range")?, zone),
    };
    let start = match from.map(|s| parse_bound(s, zone)).transpose()? {
        None => end - Duration::days(DEFAULT_SINCE_DAYS),
        Some(Bound::Time(t)) => t,
        Some(Bound::Date(d)) => midnight(d, zone),
    };
    if start >= end {
        return Err(format!("the window is empty: {start} is not before {end}"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn fixed(secs: i32) -> LogZone {
        FixedOffset::east_opt(secs).unwrap().into()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn dates_are_whole_days_in_the_zone() {
        let now = utc("2026-11-29T09:00:00Z");
        let plus2 = fixed(7200);
        let (f, t) = resolve(None, Some("2026-11-01"), Some("2026-11-02"), now, &plus2).unwrap();
        assert_eq!(f, utc("2026-10-31T22:00:00Z"));
        assert_eq!(t, utc("2026-11-02T22:00:00Z"));
        let z = LogZone::UTC;
        let (f, t) = resolve(None, Some("2026-11-01 12:30"), None, now, &z).unwrap();
        assert_eq!((f, t), (utc("2026-11-01T12:30:00Z"), now));
        let (f, t) = resolve(Some(Duration::days(7)), None, None, now, &z).unwrap();
        assert_eq!((f, t), (utc("2026-11-22T09:00:00Z"), now));
        let (f, _) = resolve(None, None, Some("2026-11-10T00:00:00Z"), now, &z).unwrap();
        assert_eq!(f, utc("2026-10-11T00:00:00Z"));
    }

    /// In a named zone, whole days begin at the midnight of their own offset: `--from` the day
    /// the clocks go back (CEST) `--to` that day (ending at midnight CET) is 25 hours.
    #[test]
    fn a_named_zones_dates_are_its_own_midnights() {
        let now = utc("2026-11-29T09:00:00Z");
        let berlin = LogZone::parse("Europe/Berlin").unwrap();
        let day = resolve(None, Some("2026-10-25"), Some("2026-10-25"), now, &berlin).unwrap();
        assert_eq!(
            day,
            (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
        );
        // A wall time in the fold is its first pass; one in the gap is read before it.
        let (f, _) = resolve(None, Some("2026-10-25 02:30"), None, now, &berlin).unwrap();
        assert_eq!(f, utc("2026-10-25T00:30:00Z"));
        let (f, _) = resolve(None, Some("2026-03-29 02:30"), None, now, &berlin).unwrap();
        assert_eq!(f, utc("2026-03-29T01:30:00Z"));
        // Chile sets its clocks forward at midnight: the day begins at 01:00 local.
        let santiago = LogZone::parse("America/Santiago").unwrap();
        let (f, _) = resolve(None, Some("2026-09-06"), None, now, &santiago).unwrap();
        assert_eq!(f, utc("2026-09-06T04:00:00Z"));
    }

    /// Times at chrono's ends are held there, not overflowed.
    #[test]
    fn a_window_at_the_end_of_time_does_not_panic() {
        let now = utc("2026-11-29T09:00:00Z");
        let r = resolve(
            None,
            Some("+262142-12-31 23:59"),
            None,
            now,
            &fixed(-5 * 3600),
        );
        assert!(r.unwrap_err().contains("empty"));
        let late = DateTime::<Utc>::MAX_UTC;
        assert_eq!(fixed(14 * 3600).local(late), NaiveDateTime::MAX);
        assert_eq!(
            fixed(-3600).local(DateTime::<Utc>::MIN_UTC),
            NaiveDateTime::MIN
        );
    }

    #[test]
    fn bad_windows_are_named() {
        let now = utc("2026-11-29T09:00:00Z");
        let z = LogZone::UTC;
        let e = resolve(None, Some("yesterday"), None, now, &z).unwrap_err();
        assert!(e.contains("'yesterday' is not a date"), "{e}");
        let e = resolve(None, Some("2026-11-05"), Some("2026-11-04"), now, &z).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        assert!(resolve(Some(Duration::days(1)), Some("2026-11-05"), None, now, &z).is_err());
        assert_eq!(z.to_string(), "UTC");
        assert_eq!(fixed(-5400).to_string(), "-01:30");
    }
}
