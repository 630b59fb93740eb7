//! When a scenario's probes fire: a fixed period (`every = "5m"`, seconds allowed) or a cron
//! expression, plus a bounded jitter so several canaries do not probe in lockstep. Pure: the
//! caller passes the times and the jitter seed. Not here: sleeping or spawning (the daemon).
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// How often a scenario runs.
#[derive(Clone)]
pub enum Schedule {
    /// Every `period`, counted from the canary's start.
    Every(Duration),
    /// At the times a cron expression names (5 or 6 fields; seconds first when 6).
    Cron(Box<croner::Cron>),
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "Every({d:?})"),
            Schedule::Cron(c) => write!(f, "Cron({:?})", c.pattern.to_string()),
        }
    }
}

/// The shortest period accepted: a probe a second is already more than any real path needs.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

impl Schedule {
    /// A fixed period, at least [`MIN_PERIOD`].
    pub fn every(period: Duration) -> Result<Schedule, String> {
        if period < MIN_PERIOD {
            return Err(format!(
                "{period:?} is shorter than the minimum of {MIN_PERIOD:?}"
            ));
        }
        Ok(Schedule::Every(period))
    }

    /// A cron expression: `*/5 * * * *`, or with a leading seconds field `*/10 * * * * *`.
    pub fn cron(expr: &str) -> Result<Schedule, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expr.trim())
            .map_err(|e| format!("{expr:?} is not a cron expression: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first planned time strictly after `after` (before jitter). `None` when a cron
    /// expression never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => Some(after + delta(*period)),
            Schedule::Cron(c) => c.find_next_occurrence(&after, false).ok(),
        }
    }

    /// The next planned time after `planned` that is not already past at `now`, and how many
    /// planned times were passed over (a probe still waiting, or a stalled host, made the
    /// scheduler late). Planned times stay on the original grid, so lateness does not drift.
    pub fn advance(&self, planned: DateTime<Utc>, now: DateTime<Utc>) -> Option<Next> {
        let mut at = self.next_after(planned)?;
        let mut skipped = 0u32;
        if at >= now {
            return Some(Next { at, skipped });
        }
        if let Schedule::Every(period) = self {
            // Jump straight to the grid point at or after `now` instead of stepping.
            let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1);
            let behind = (now - at).num_milliseconds();
            let steps = behind.div_euclid(period_ms) + i64::from(behind % period_ms != 0);
            at += TimeDelta::milliseconds(steps.saturating_mul(period_ms));
            skipped = u32::try_from(steps).unwrap_or(u32::MAX);
            return Some(Next { at, skipped });
        }
        while at < now {
            at = self.next_after(at)?;
            skipped = skipped.saturating_add(1);
        }
        Some(Next { at, skipped })
    }
}

/// A planned firing time and the planned times passed over to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub at: DateTime<Utc>,
    pub skipped: u32,
}

/// The jitter added to one firing: a value in `[0, max)` picked by `seed` (the daemon passes a
/// random number; tests pass fixed ones). Zero when `max` is zero.
pub fn jitter(max: Duration, seed: u64) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(seed % max_ms)
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s).unwrap()
    }

    #[test]
    fn every_counts_from_the_last_planned_time() {
        let s = Schedule::every(Duration::from_secs(300)).unwrap();
        assert_eq!(s.next_after(t(6, 0, 0)), Some(t(6, 5, 0)));
        let s = Schedule::every(Duration::from_secs(1)).unwrap();
        assert_eq!(s.next_after(t(6, 0, 0)), Some(t(6, 0, 1)));
    }

    #[test]
    fn periods_below_a_second_are_refused() {
        assert!(Schedule::every(Duration::from_millis(500)).is_err());
        assert!(Schedule::every(Duration::ZERO).is_err());
    }

    #[test]
    fn advance_skips_passed_ticks_and_stays_on_the_grid() {
        let s = Schedule::every(Duration::from_secs(60)).unwrap();
        // On time: nothing skipped.
        let n = s.advance(t(6, 0, 0), t(6, 0, 30)).unwrap();
        assert_eq!(
            n,
            Next {
                at: t(6, 1, 0),
                skipped: 0
            }
        );
        // A probe waited 2.5 periods: ticks at 6:01 and 6:02 passed, next is 6:03.
        let n = s.advance(t(6, 0, 0), t(6, 2, 30)).unwrap();
        assert_eq!(
            n,
            Next {
                at: t(6, 3, 0),
                skipped: 2
            }
        );
        // Exactly on a grid point: that point is still due.
        let n = s.advance(t(6, 0, 0), t(6, 2, 0)).unwrap();
        assert_eq!(
            n,
            Next {
                at: t(6, 2, 0),
                skipped: 1
            }
        );
    }

    #[test]
    fn cron_with_and_without_seconds() {
        let s = Schedule::cron("*/5 * * * *").unwrap();
        assert_eq!(s.next_after(t(6, 2, 10)), Some(t(6, 5, 0)));
        assert_eq!(
            s.next_after(t(6, 5, 0)),
            Some(t(6, 10, 0)),
            "strictly after"
        );
        let s = Schedule::cron("*/10 * * * * *").unwrap();
        assert_eq!(s.next_after(t(6, 0, 1)), Some(t(6, 0, 10)));
        let n = s.advance(t(6, 0, 0), t(6, 0, 35)).unwrap();
        assert_eq!(
            n,
            Next {
                at: t(6, 0, 40),
                skipped: 3
            }
        );
    }

    #[test]
    fn bad_cron_is_an_error_naming_the_expression() {
        let e = Schedule::cron("every tuesday").unwrap_err();
        assert!(e.contains("every tuesday"), "{e}");
        assert!(Schedule::cron("61 * * * *").is_err());
    }

    #[test]
    fn jitter_is_bounded_and_follows_the_seed() {
        let max = Duration::from_secs(10);
        for seed in [0, 1, 9_999, 10_000, u64::MAX] {
            assert!(jitter(max, seed) < max);
        }
        assert_eq!(jitter(max, 10_001), Duration::from_millis(1));
        assert_ne!(jitter(max, 1), jitter(max, 2));
        assert_eq!(jitter(Duration::ZERO, 12345), Duration::ZERO);
    }
}
