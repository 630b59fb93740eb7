//! Clock-skew estimation: bounds on the offset between two clocks, narrowed one timed event at a
//! time. One estimator serves both users: the correlator (a host's log clock against the host
//! that handed it the message) and probe fusion (a host's log clock against the client's).
//! Does not decide which events to sample; the correlator and `probe` do.

use chrono::{DateTime, Utc};

/// A log timestamp and its resolution: the event happened in `[at, at + res_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub at: DateTime<Utc>,
    /// 1 for millisecond (or finer) logs, 1000 for whole-second ones.
    pub res_ms: i64,
}

impl Stamp {
    /// A log time, floored to the second unless `subsecond`; `None` without a time.
    pub fn of(at: Option<DateTime<Utc>>, subsecond: bool) -> Option<Stamp> {
        Some(Stamp {
            at: at?,
            res_ms: if subsecond { 1 } else { 1000 },
        })
    }
}

/// An interval of clock offsets (`clock - reference`) one event allows, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub min_ms: i64,
    pub max_ms: i64,
}

/// Stand-in for "no bound on this side"; far from i64's ends so arithmetic on it cannot wrap.
const OPEN_MIN: i64 = i64::MIN / 4;
const OPEN_MAX: i64 = i64::MAX / 4;

impl OffsetRange {
    /// Zero lies outside the range: the two clocks really disagree.
    pub fn excludes_zero(&self) -> bool {
        self.min_ms > 0 || self.max_ms < 0
    }

    /// One hand-off between two logs: `sent` is the upstream's line for the hand-off, which
    /// ends the connect + transmit window (`window_ms`) during which the downstream logged its
    /// `arrived` line. Allows `down - up` in [d - res(sent), d + res(arrived) + window], where d
    /// is the raw difference, plus 10 ms for the rounding of the window's own figures.
    pub fn handoff(sent: Stamp, arrived: Stamp, window_ms: i64) -> OffsetRange {
        let d = (arrived.at - sent.at).num_milliseconds();
        OffsetRange {
            min_ms: d.saturating_sub(sent.res_ms),
            max_ms: d
                .saturating_add(arrived.res_ms)
                .saturating_add(window_ms.max(0))
                .saturating_add(10),
        }
    }

    /// One log event against a reference clock: the log said `logged`, and the event really
    /// happened no earlier than `after` and no later than `before` on the reference clock
    /// (either side may be unknown).
    pub fn event(
        logged: Stamp,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> OffsetRange {
        let ms = |from: DateTime<Utc>| (logged.at - from).num_milliseconds();
        OffsetRange {
            min_ms: before.map_or(OPEN_MIN, ms),
            max_ms: after.map_or(OPEN_MAX, |a| ms(a) + logged.res_ms),
        }
    }
}

/// What to do with a sample that contradicts the bounds so far (empty intersection).
///
/// The two users of the estimator need different answers, because their samples mean different
/// things. The correlator sees many hand-offs between two hosts over hours of logs: the bounds
/// so far are the evidence of every earlier sample, so one contradicting sample (a drifting
/// clock, a late log line) is counted and set aside. Probe fusion constrains a host with the
/// few events of one message, in path order, and corrects the `detect` stage by the estimate at
/// the host's last event; after a contradiction the bounds are those of that latest event so
/// the correction matches the figure it is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Keep the bounds so far; count the sample as a conflict.
    KeepEarlier,
    /// Restart from the contradicting sample; count it as a conflict.
    TakeLatest,
}

/// Running bounds on one clock's offset against a reference, from the samples seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkewBounds {
    pub min_ms: i64,
    pub max_ms: i64,
    pub samples: u64,
    /// Samples that contradicted the bounds of the ones before them.
    pub conflicts: u64,
}

impl Default for SkewBounds {
    fn default() -> Self {
        SkewBounds {
            min_ms: OPEN_MIN,
            max_ms: OPEN_MAX,
            samples: 0,
            conflicts: 0,
        }
    }
}

impl SkewBounds {
    /// Narrow the bounds by one sample (intersect), or resolve a contradiction by `on_conflict`.
    pub fn add(&mut self, sample: OffsetRange, on_conflict: OnConflict) {
        let min_ms = self.min_ms.max(sample.min_ms);
        let max_ms = self.max_ms.min(sample.max_ms);
        self.samples += 1;
        if min_ms <= max_ms {
            self.min_ms = min_ms;
            self.max_ms = max_ms;
            return;
        }
        self.conflicts += 1;
        if on_conflict == OnConflict::TakeLatest {
            self.min_ms = sample.min_ms;
            self.max_ms = sample.max_ms;
        }
    }

    pub fn range(&self) -> OffsetRange {
        OffsetRange {
            min_ms: self.min_ms,
            max_ms: self.max_ms,
        }
    }

    /// Zero lies outside the bounds: the clocks really disagree.
    pub fn significant(&self) -> bool {
        self.range().excludes_zero()
    }

    /// The offset within the bounds closest to zero (zero when they include it): the smallest
    /// correction the evidence demands.
    pub fn estimate_ms(&self) -> i64 {
        if self.min_ms > 0 {
            self.min_ms
        } else if self.max_ms < 0 {
            self.max_ms
        } else {
            0
        }
    }
}

/// The chain note for one hand-off whose sample alone shows `down`'s clock off `up`'s.
pub fn handoff_note(down: &str, up: &str, r: OffsetRange) -> Option<String> {
    let s = |ms: i64| ms as f64 / 1000.0;
    if r.min_ms > 0 {
        Some(format!(
            "clock skew: {down}'s log time is {:.1}-{:.1} s ahead of {up}'s at this hand-off",
            s(r.min_ms),
            s(r.max_ms)
        ))
    } else if r.max_ms < 0 {
        Some(format!(
            "clock skew: {down}'s log time is {:.1}-{:.1} s behind {up}'s at this hand-off",
            s(-r.max_ms),
            s(-r.min_ms)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn range(min_ms: i64, max_ms: i64) -> OffsetRange {
        OffsetRange { min_ms, max_ms }
    }

    #[test]
    fn first_sample_sets_the_bounds_and_later_ones_narrow_them() {
        for policy in [OnConflict::KeepEarlier, OnConflict::TakeLatest] {
            let mut b = SkewBounds::default();
            b.add(range(6_000, 8_000), policy);
            assert_eq!((b.min_ms, b.max_ms), (6_000, 8_000));
            b.add(range(7_000, 9_000), policy);
            assert_eq!(
                (b.min_ms, b.max_ms, b.samples, b.conflicts),
                (7_000, 8_000, 2, 0)
            );
            assert!(b.significant());
            assert_eq!(b.estimate_ms(), 7_000);
        }
    }

    #[test]
    fn a_contradicting_sample_is_counted_and_resolved_by_the_policy() {
        let mut keep = SkewBounds::default();
        let mut take = SkewBounds::default();
        for s in [range(100, 200), range(500, 600)] {
            keep.add(s, OnConflict::KeepEarlier);
            take.add(s, OnConflict::TakeLatest);
        }
        assert_eq!((keep.min_ms, keep.max_ms, keep.conflicts), (100, 200, 1));
        assert_eq!((take.min_ms, take.max_ms, take.conflicts), (500, 600, 1));
        assert_eq!((keep.samples, take.samples), (2, 2));
    }

    #[test]
    fn an_inverted_first_sample_is_a_conflict() {
        // The reference times themselves disagree (e.g. "before" earlier than "after").
        let mut b = SkewBounds::default();
        b.add(range(50, -50), OnConflict::TakeLatest);
        assert_eq!((b.min_ms, b.max_ms, b.conflicts), (50, -50, 1));
    }

    #[test]
    fn estimate_is_the_offset_closest_to_zero() {
        let at = |min_ms, max_ms| SkewBounds {
            min_ms,
            max_ms,
            ..SkewBounds::default()
        };
        assert_eq!(at(-300, 400).estimate_ms(), 0);
        assert!(!at(-300, 400).significant());
        assert_eq!(at(-900, -300).estimate_ms(), -300);
        assert_eq!(at(250, 900).estimate_ms(), 250);
        assert!(at(-900, -300).significant());
    }

    #[test]
    fn handoff_range_allows_resolution_and_the_sending_window() {
        let sent = Stamp::of(Some(t("2025-11-07T12:00:05Z")), false).unwrap();
        let arrived = Stamp::of(Some(t("2025-11-07T12:00:12Z")), false).unwrap();
        let r = OffsetRange::handoff(sent, arrived, 90);
        // 7 s apart, both whole seconds: [7000 - 1000, 7000 + 1000 + 90 + 10].
        assert_eq!(r, range(6_000, 8_100));
        let fine = Stamp::of(Some(t("2025-11-07T12:00:05.500Z")), true).unwrap();
        assert_eq!(
            OffsetRange::handoff(fine, fine, -5),
            range(-1, 11),
            "a negative window counts as none"
        );
        assert_eq!(Stamp::of(None, true), None);
    }

    #[test]
    fn event_range_is_open_on_an_unknown_side() {
        let logged = Stamp::of(Some(t("2025-11-07T12:00:10.000Z")), true).unwrap();
        let after = t("2025-11-07T12:00:03Z");
        let before = t("2025-11-07T12:00:04Z");
        assert_eq!(
            OffsetRange::event(logged, Some(after), Some(before)),
            range(6_000, 7_001)
        );
        let open = OffsetRange::event(logged, Some(after), None);
        assert_eq!(open.max_ms, 7_001);
        // Without a `before` time the lower side is open: intersecting takes the other
        // sample's lower bound.
        let mut b = SkewBounds::default();
        b.add(open, OnConflict::TakeLatest);
        b.add(range(6_500, 9_000), OnConflict::TakeLatest);
        assert_eq!((b.min_ms, b.max_ms, b.conflicts), (6_500, 7_001, 0));
    }

    #[test]
    fn notes_name_the_direction_of_a_significant_hand_off() {
        let ahead = handoff_note("dell", "ec2", range(6_000, 8_100)).unwrap();
        assert!(ahead.contains("6.0-8.1 s ahead of ec2's"), "{ahead}");
        let behind = handoff_note("dell", "ec2", range(-3_000, -1_500)).unwrap();
        assert!(behind.contains("1.5-3.0 s behind ec2's"), "{behind}");
        assert_eq!(handoff_note("dell", "ec2", range(-10, 20)), None);
    }
}
