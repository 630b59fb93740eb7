//! The zone of a log's stamps that carry none (classic syslog, Dovecot's own log): a fixed
//! offset, or a named zone of the IANA database (`Europe/Berlin`) with its daylight-saving
//! changes. Owns reading the setting and turning a local wall time into UTC, including the
//! hour a clock set back shows twice (the fold). Does not parse stamps (`super::prefix`).
//!
//! In the fold each wall time names two instants. A log is read in order, so its first pass
//! through the fold is the earlier offset's and the second the later's: the parser keeps, per
//! log, the latest wall time it read in the fold, and a wall time more than [`STEP_BACK`]
//! before it starts the second pass. A log that starts inside the second pass, or whose
//! lines in the fold step back by less than that, is read at the earlier offset.
//! A wall time in a gap (the hour a clock set forward skips) is read at the offset before it.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::prefix::parse_tz;

/// How far a wall time in the fold must step back behind the latest one read in it to start
/// the second pass: more than the seconds by which a busy log's lines come out of order, less
/// than the hour of the fold.
const STEP_BACK: TimeDelta = TimeDelta::minutes(5);

/// The zone of stamps that carry none.
#[derive(Clone)]
pub enum LogZone {
    Fixed(FixedOffset),
    /// A named zone (its name as given, its rules), whose offset follows its daylight-saving
    /// changes.
    Named(Box<str>, TimeZone),
}

impl LogZone {
    pub const UTC: LogZone = LogZone::Fixed(FixedOffset::east_opt(0).expect("zero is valid"));

    /// Read a setting: `UTC`, a fixed offset (`+02:00`, `-0500`, `+2`) or an IANA zone name
    /// (`Europe/Berlin`).
    pub fn parse(s: &str) -> Result<LogZone, String> {
        if let Ok(fixed) = parse_tz(s) {
            return Ok(LogZone::Fixed(fixed));
        }
        let name = s.trim();
        let named = TimeZone::get(name).ok().filter(|_| !name.is_empty());
        named
            .map(|tz| LogZone::Named(name.into(), tz))
            .ok_or_else(|| {
                format!(
                    "time zone '{s}' is neither a fixed offset (UTC, +HH:MM, -HH:MM) nor a zone \
                 name of the IANA database (Europe/Berlin, America/New_York)"
                )
            })
    }

    /// Seconds east of UTC when the zone is a fixed offset.
    pub fn fixed_secs(&self) -> Option<i32> {
        match self {
            LogZone::Fixed(o) => Some(o.local_minus_utc()),
            LogZone::Named(..) => None,
        }
    }

    /// Seconds east of UTC at the instant `t`.
    pub fn offset_at_utc(&self, t: DateTime<Utc>) -> i32 {
        match self {
            LogZone::Fixed(o) => o.local_minus_utc(),
            LogZone::Named(_, tz) => jiff::Timestamp::from_second(t.timestamp())
                .map_or(0, |ts| tz.to_offset(ts).seconds()),
        }
    }

    /// The wall time `local` in UTC, with `fold` the log's place in a fold (see the module's
    /// comment). `ambiguous` says the time was in a fold: its answer depends on the lines
    /// before, so it must not be remembered for a later line with the same stamp.
    pub(crate) fn instant(&self, local: NaiveDateTime, fold: &mut Fold) -> Resolved {
        let tz = match self {
            LogZone::Fixed(o) => return Resolved::plain(local, o.local_minus_utc()),
            LogZone::Named(_, tz) => tz,
        };
        match offsets(tz, local) {
            // A year jiff cannot hold (past 9999) has no rules: read it in UTC.
            None => Resolved::plain(local, 0),
            Some(AmbiguousOffset::Unambiguous { offset }) => {
                Resolved::plain(local, offset.seconds())
            }
            Some(AmbiguousOffset::Gap { before, .. }) => Resolved::plain(local, before.seconds()),
            Some(AmbiguousOffset::Fold { before, after }) => {
                let offset = if fold.second_pass(local) {
                    after
                } else {
                    before
                };
                Resolved {
                    ts: shift(local, offset.seconds()),
                    ambiguous: true,
                }
            }
        }
    }

    /// The wall time `local` in UTC on its own, with no log around it: a time in a fold is its
    /// first pass (the earlier instant), one in a gap is read at the offset before it (so a
    /// midnight a clock skips is the instant the day begins).
    pub fn earliest(&self, local: NaiveDateTime) -> DateTime<Utc> {
        self.instant(local, &mut Fold::default()).ts
    }

    /// Whether the wall time `local` names two instants (the hour a clock set back shows
    /// twice).
    pub fn is_ambiguous(&self, local: NaiveDateTime) -> bool {
        match self {
            LogZone::Fixed(_) => false,
            LogZone::Named(_, tz) => {
                matches!(offsets(tz, local), Some(AmbiguousOffset::Fold { .. }))
            }
        }
    }

    /// When the instant `t` falls in a fold (either pass), an instant at or at most the fold's
    /// length before the start of its first pass: a log read from there meets the first pass
    /// before the second, so its parser tells them apart. `None` outside a fold.
    pub fn before_fold(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let LogZone::Named(_, tz) = self else {
            return None;
        };
        let local = self.local(t);
        match offsets(tz, local)? {
            AmbiguousOffset::Fold { before, after } => {
                let length = i64::from(before.seconds() - after.seconds());
                Some(self.earliest(local) - TimeDelta::seconds(length))
            }
            _ => None,
        }
    }

    /// The wall time and calendar date at the instant `t`.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        moved(t.naive_utc(), i64::from(self.offset_at_utc(t)))
    }

    /// The local dates (month, day) of `years` on which a clock is set back: the days whose
    /// lines may fall in a fold. None for a fixed offset.
    pub(crate) fn fold_days(&self, years: std::ops::RangeInclusive<i32>) -> Vec<(u32, u32)> {
        let LogZone::Named(_, tz) = self else {
            return Vec::new();
        };
        let mut days = Vec::new();
        for y in years {
            let mut d = NaiveDate::from_ymd_opt(y, 1, 1);
            while let Some(day) = d.filter(|d| d.year() == y) {
                if folds_on(tz, day) && !days.contains(&(day.month(), day.day())) {
                    days.push((day.month(), day.day()));
                }
                d = day.succ_opt();
            }
        }
        days
    }
}

/// Whether the offset of `tz` is smaller at the end of local day `d` than at its start (a
/// wall time shown twice read at its first offset at the start, its second at the end).
fn folds_on(tz: &TimeZone, d: NaiveDate) -> bool {
    let offset = |n: Option<NaiveDateTime>, at_end: bool| match offsets(tz, n?)? {
        AmbiguousOffset::Unambiguous { offset } => Some(offset.seconds()),
        AmbiguousOffset::Fold { before, after } => {
            Some(if at_end { after } else { before }.seconds())
        }
        AmbiguousOffset::Gap { .. } => None,
    };
    let start = offset(d.and_hms_opt(0, 0, 0), false);
    let end = offset(d.and_hms_opt(23, 59, 59), true);
    matches!((start, end), (Some(s), Some(e)) if e < s)
}

/// The offsets `tz` gives the wall time `local` (`None`: a year outside jiff's range).
fn offsets(tz: &TimeZone, local: NaiveDateTime) -> Option<AmbiguousOffset> {
    let small = |n: u32| i8::try_from(n).ok();
    let civil = jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        small(local.month())?,
        small(local.day())?,
        small(local.hour())?,
        small(local.minute())?,
        small(local.second())?,
        i32::try_from(local.nanosecond()).ok()?,
    )
    .ok()?;
    Some(tz.to_ambiguous_timestamp(civil).offset())
}

/// The local date (month, day) a line's stamp names, read without parsing it: a classic
/// stamp's (`Oct 26`, `Oct  6`, `Oct 06`) or an ISO one's (`2025-10-26`), after a priority.
pub(crate) fn local_date(line: &[u8]) -> Option<(u32, u32)> {
    let b = super::rfc5424::strip_pri(line).0;
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| u32::from(c - b'0'))
    };
    if let Some(m) = super::prefix::month_number(b) {
        let day = match (b.get(4)?, digit(5)) {
            (b' ', Some(d)) => d,
            (_, Some(d)) => digit(4)? * 10 + d,
            (_, None) => digit(4)?,
        };
        return Some((m, day));
    }
    let year = (0..4).all(|i| digit(i).is_some()) && b.get(4) == Some(&b'-');
    let date = year && b.get(7) == Some(&b'-');
    date.then(|| Some((digit(5)? * 10 + digit(6)?, digit(8)? * 10 + digit(9)?)))
        .flatten()
}

/// `local` at `offset_secs` east of UTC.
fn shift(local: NaiveDateTime, offset_secs: i32) -> DateTime<Utc> {
    moved(local, -i64::from(offset_secs)).and_utc()
}

/// `n` moved by `secs`, held at chrono's ends of time rather than past them.
fn moved(n: NaiveDateTime, secs: i64) -> NaiveDateTime {
    let held = if secs > 0 {
        NaiveDateTime::MAX
    } else {
        NaiveDateTime::MIN
    };
    n.checked_add_signed(TimeDelta::seconds(secs))
        .unwrap_or(held)
}

/// A wall time resolved to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub ts: DateTime<Utc>,
    /// It lay in a fold (its answer depends on the lines before it).
    pub ambiguous: bool,
}

impl Resolved {
    fn plain(local: NaiveDateTime, offset_secs: i32) -> Self {
        Resolved {
            ts: shift(local, offset_secs),
            ambiguous: false,
        }
    }
}

/// Where one log stands in a fold: the local day of the fold, the latest wall time read in it,
/// and whether its second pass began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fold {
    day: Option<NaiveDate>,
    latest: Option<NaiveDateTime>,
    second: bool,
}

impl Fold {
    /// Whether `local`, a wall time in a fold, is read in its second pass.
    fn second_pass(&mut self, local: NaiveDateTime) -> bool {
        if self.day != Some(local.date()) {
            *self = Fold {
                day: Some(local.date()),
                ..Fold::default()
            };
        }
        if !self.second {
            match self.latest {
                Some(l) if local + STEP_BACK < l => self.second = true,
                _ => self.latest = Some(self.latest.map_or(local, |l| l.max(local))),
            }
        }
        self.second
    }
}

/// Two zones are the same when they are the same offset, or have the same name.
impl PartialEq for LogZone {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LogZone::Fixed(a), LogZone::Fixed(b)) => a == b,
            (LogZone::Named(a, _), LogZone::Named(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Eq for LogZone {}

impl From<FixedOffset> for LogZone {
    fn from(o: FixedOffset) -> Self {
        LogZone::Fixed(o)
    }
}

impl fmt::Display for LogZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogZone::Fixed(o) if o.local_minus_utc() == 0 => f.write_str("UTC"),
            LogZone::Fixed(o) => write!(f, "{o}"),
            LogZone::Named(name, _) => f.write_str(name),
        }
    }
}

impl fmt::Debug for LogZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LineParser, ParseContext, Parsed};
    use super::*;

    fn berlin() -> LogZone {
        LogZone::parse("Europe/Berlin").unwrap()
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_setting_is_a_fixed_offset_or_a_zone_name() {
        assert_eq!(LogZone::parse("+02:00").unwrap().fixed_secs(), Some(7200));
        assert_eq!(LogZone::parse("utc").unwrap(), LogZone::UTC);
        assert_eq!(berlin().to_string(), "Europe/Berlin");
        assert_eq!(berlin().fixed_secs(), None);
        let e = LogZone::parse("Mars/Olympus_Mons").unwrap_err();
        assert!(
            e.contains("'Mars/Olympus_Mons'") && e.contains("+HH:MM"),
            "{e}"
        );
        assert!(e.contains("Europe/Berlin"), "{e}");
    }

    /// Berlin sets its clocks back from 03:00 CEST to 02:00 CET on 26 October 2025: a log
    /// read in order shows 02:00-02:59 twice, first at +02:00, then at +01:00.
    #[test]
    fn a_fold_is_read_first_at_the_earlier_offset_then_at_the_later() {
        let z = berlin();
        let mut fold = Fold::default();
        let mut at = |s: &str| z.instant(local(s), &mut fold);
        assert_eq!(at("2025-10-26 01:59:00").ts, utc("2025-10-25T23:59:00Z"));
        assert!(!at("2025-10-26 01:59:00").ambiguous);
        let first = at("2025-10-26 02:30:00");
        assert_eq!(
            (first.ts, first.ambiguous),
            (utc("2025-10-26T00:30:00Z"), true)
        );
        // Lines a few seconds out of order stay in the first pass.
        assert_eq!(at("2025-10-26 02:59:59").ts, utc("2025-10-26T00:59:59Z"));
        assert_eq!(at("2025-10-26 02:59:30").ts, utc("2025-10-26T00:59:30Z"));
        // The clock set back: the second pass.
        assert_eq!(at("2025-10-26 02:00:00").ts, utc("2025-10-26T01:00:00Z"));
        assert_eq!(at("2025-10-26 02:30:00").ts, utc("2025-10-26T01:30:00Z"));
        assert_eq!(at("2025-10-26 03:00:00").ts, utc("2025-10-26T02:00:00Z"));
        // The next year's fold starts in its first pass again.
        assert_eq!(at("2026-10-25 02:30:00").ts, utc("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn a_wall_time_in_a_gap_is_read_at_the_offset_before_it() {
        // 30 March 2025: Berlin's clocks go from 02:00 CET to 03:00 CEST.
        let z = berlin();
        let mut fold = Fold::default();
        let r = z.instant(local("2025-03-30 02:30:00"), &mut fold);
        assert_eq!((r.ts, r.ambiguous), (utc("2025-03-30T01:30:00Z"), false));
        let r = z.instant(local("2025-03-30 03:00:00"), &mut fold);
        assert_eq!(r.ts, utc("2025-03-30T01:00:00Z"));
        let r = z.instant(local("2025-07-01 12:00:00"), &mut fold);
        assert_eq!(r.ts, utc("2025-07-01T10:00:00Z"));
    }

    #[test]
    fn before_a_fold_is_at_most_its_length_before_its_first_pass() {
        // Berlin, 26 October 2025: wall 02:00-02:59 at +02:00 (00:00-00:59 UTC), then again at
        // +01:00 (01:00-01:59 UTC).
        let z = berlin();
        for t in [
            "2025-10-26T00:00:00Z",
            "2025-10-26T00:30:00Z",
            "2025-10-26T01:59:59Z",
        ] {
            let b = z.before_fold(utc(t)).unwrap();
            assert!(b <= utc("2025-10-26T00:00:00Z"), "{t}: {b}");
            assert!(b >= utc("2025-10-25T23:00:00Z"), "{t}: {b}");
        }
        for t in [
            "2025-10-25T23:59:59Z",
            "2025-10-26T02:00:00Z",
            "2025-07-01T01:30:00Z",
        ] {
            assert_eq!(z.before_fold(utc(t)), None, "{t}");
        }
        assert_eq!(LogZone::UTC.before_fold(utc("2025-10-26T01:30:00Z")), None);
        // Lord Howe sets its clock back by half an hour (+11:00 to +10:30, 6 April 2025 at
        // 02:00): wall 01:30-01:59 twice, first at 14:30-14:59 UTC on the 5th.
        let lh = LogZone::parse("Australia/Lord_Howe").unwrap();
        let b = lh.before_fold(utc("2025-04-05T15:10:00Z")).unwrap();
        assert!(b <= utc("2025-04-05T14:30:00Z"), "{b}");
        assert!(b >= utc("2025-04-05T14:00:00Z"), "{b}");
    }

    #[test]
    fn the_days_a_zone_sets_its_clock_back() {
        assert_eq!(berlin().fold_days(2025..=2025), vec![(10, 26)]);
        let ny = LogZone::parse("America/New_York").unwrap();
        assert_eq!(ny.fold_days(2025..=2026), vec![(11, 2), (11, 1)]);
        // The southern hemisphere sets its clock back in April.
        let sydney = LogZone::parse("Australia/Sydney").unwrap();
        assert_eq!(sydney.fold_days(2025..=2025), vec![(4, 6)]);
        assert!(LogZone::parse("Asia/Tokyo")
            .unwrap()
            .fold_days(2025..=2025)
            .is_empty());
        assert!(LogZone::parse("+02:00")
            .unwrap()
            .fold_days(2025..=2025)
            .is_empty());
    }

    fn times(parser: &mut LineParser, lines: &[&str]) -> Vec<String> {
        lines
            .iter()
            .map(|l| match parser.parse(l.as_bytes()) {
                Parsed::Record(r) => r.timestamp.map(|t| t.to_rfc3339()).unwrap_or_default(),
                _ => String::from("-"),
            })
            .collect()
    }

    /// The same line in both passes (same bytes, so a header or stamp the parser remembered
    /// would answer it) is read at each pass's offset: a time in a fold is never remembered.
    #[test]
    fn the_parser_reads_a_logs_fold_in_order_whatever_it_remembers() {
        let mut ctx = ParseContext::new("dell", 2025);
        ctx.tz = berlin();
        let mut p = LineParser::new(ctx);
        let line = "Oct 26 02:30:00 dell postfix/qmgr[9]: 4AB12C3D4E: removed";
        // The same stamp again: its time is the stamp remembered from the line before.
        let same_stamp = "Oct 26 02:30:00 dell postfix/cleanup[8]: 4AB12C3D4E: message-id=<a@x>";
        let got = times(
            &mut p,
            &[
                line,
                same_stamp,
                "Oct 26 02:59:10 dell postfix/qmgr[9]: 5BC23D4E5F: removed",
                line,
                line,
                same_stamp,
                "Oct 26 03:00:00 dell postfix/qmgr[9]: 5BC23D4E5F: removed",
            ],
        );
        assert_eq!(
            got,
            [
                "2025-10-26T00:30:00+00:00",
                "2025-10-26T00:30:00+00:00",
                "2025-10-26T00:59:10+00:00",
                "2025-10-26T01:30:00+00:00",
                "2025-10-26T01:30:00+00:00",
                "2025-10-26T01:30:00+00:00",
                "2025-10-26T02:00:00+00:00",
            ]
        );
    }

    /// Lines stamped on a fold day are not handed to another parser (which would not know
    /// where the log stands in the fold); other days' lines and fixed offsets are.
    #[test]
    fn a_block_with_a_fold_days_line_stays_with_its_parser() {
        let mut ctx = ParseContext::new("dell", 2025);
        ctx.reference = Some(utc("2025-12-01T00:00:00Z"));
        let fixed = LineParser::new(ctx.clone());
        ctx.tz = berlin();
        let named = LineParser::new(ctx);
        let other_day = "Oct 25 02:30:00 dell postfix/qmgr[9]: 4AB12C3D4E: removed\n";
        let fold_day = "Oct 25 23:59:00 dell postfix/qmgr[9]: 4AB12C3D4E: removed\n\
                        Oct 26 00:00:01 dell postfix/qmgr[9]: 4AB12C3D4E: removed\n";
        let iso = "2025-10-26T02:30:00 dell postfix/qmgr[9]: 4AB12C3D4E: removed\n";
        assert!(named.keeps_rollover(other_day));
        assert!(!named.keeps_rollover(fold_day));
        assert!(!named.keeps_rollover(iso));
        assert!(fixed.keeps_rollover(fold_day) && fixed.keeps_rollover(iso));
    }

    #[test]
    fn a_lines_local_date_is_read_without_parsing_it() {
        assert_eq!(local_date(b"Oct 26 02:30:00 x"), Some((10, 26)));
        assert_eq!(local_date(b"Oct  6 02:30:00 x"), Some((10, 6)));
        assert_eq!(local_date(b"Oct 06 02:30:00 x"), Some((10, 6)));
        assert_eq!(local_date(b"<22>Oct 26 02:30:00 x"), Some((10, 26)));
        assert_eq!(local_date(b"2025-10-26T02:30:00 x"), Some((10, 26)));
        assert_eq!(local_date(b"lmtp(1): x"), None);
        assert_eq!(local_date(b"2025-1"), None);
    }
}
