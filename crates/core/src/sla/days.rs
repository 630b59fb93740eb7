//! The daily breakdown: days cut at midnight in the report's time zone (a fixed offset, or a
//! named zone whose days around a daylight-saving change last 23 or 25 hours), one day's values
//! held at a time. Relies on probes arriving in send order, so a day ends when the
//! next probe falls on a later date. Not here: the whole-window figures (aggregation).
use chrono::{DateTime, NaiveDate, Utc};

use crate::logs::LogZone;

use super::budget::{Outcome, Tally};
use super::model::DayReport;
use super::percentile;

/// The calendar date of `t` in `zone`.
pub fn local_date(t: DateTime<Utc>, zone: &LogZone) -> NaiveDate {
    zone.local(t).date()
}

struct Day {
    date: NaiveDate,
    tally: Tally,
    latencies: Vec<u64>,
}

impl Day {
    fn report(mut self) -> DayReport {
        DayReport {
            date: self.date,
            probes: self.tally.probes,
            delivered: self.tally.delivered,
            lost: self.tally.lost,
            late: self.tally.late,
            failed: self.tally.failed,
            availability_percent: self.tally.availability_percent(),
            slo_percent: self.tally.slo_percent(),
            latency_ms: percentile::latency(&mut self.latencies),
        }
    }
}

/// Days of one scenario at one location, in order; only days with probes appear.
pub struct Days {
    zone: LogZone,
    current: Option<Day>,
    done: Vec<DayReport>,
}

impl Days {
    pub fn new(zone: LogZone) -> Days {
        Days {
            zone,
            current: None,
            done: Vec::new(),
        }
    }

    /// Count one probe; `latency_ms` is its end-to-end latency when delivered.
    pub fn add(&mut self, sent_at: DateTime<Utc>, outcome: Outcome, latency_ms: Option<u64>) {
        let date = local_date(sent_at, &self.zone);
        if self.current.as_ref().is_some_and(|d| d.date != date) {
            if let Some(day) = self.current.take() {
                self.done.push(day.report());
            }
        }
        let day = self.current.get_or_insert_with(|| Day {
            date,
            tally: Tally::default(),
            latencies: Vec::new(),
        });
        day.tally.add(outcome);
        day.latencies.extend(latency_ms);
    }

    pub fn finish(mut self) -> Vec<DayReport> {
        if let Some(day) = self.current.take() {
            self.done.push(day.report());
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_are_cut_at_local_midnight() {
        let plus2 = LogZone::parse("+02:00").unwrap();
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 1, h, 30, 0).unwrap();
        let ok = Outcome::Delivered {
            spam: false,
            in_slo: true,
        };
        let mut days = Days::new(plus2);
        days.add(t(20), ok, Some(100));
        days.add(t(21), Outcome::Lost, None); // 23:30 local: still Nov 1
        days.add(t(22), ok, Some(300)); // 00:30 local: Nov 2
        let out = days.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].date, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!((out[0].probes, out[0].lost), (2, 1));
        assert_eq!(out[0].availability_percent, Some(50.0));
        assert_eq!(out[1].date, NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
        assert_eq!(out[1].latency_ms.max, Some(300));
        assert_eq!(local_date(t(22), &LogZone::UTC), out[0].date);
    }

    /// In a named zone a day ends at its own midnight: 22:30 UTC is still the day in winter
    /// (23:30 CET) and already the next in summer (00:30 CEST); the day the clocks go back
    /// lasts 25 hours.
    #[test]
    fn a_named_zones_days_follow_its_daylight_saving() {
        let berlin = LogZone::parse("Europe/Berlin").unwrap();
        let at = |m, d, h, min| Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap();
        let date = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(local_date(at(1, 10, 22, 30), &berlin), date(1, 10));
        assert_eq!(local_date(at(7, 10, 22, 30), &berlin), date(7, 11));
        // 2026-10-25: CEST until 01:00 UTC, then CET. The day runs from 22:00 UTC on the 24th
        // to 23:00 UTC on the 25th.
        let mut days = Days::new(berlin);
        let ok = Outcome::Delivered {
            spam: false,
            in_slo: true,
        };
        for t in [
            at(10, 24, 21, 59),
            at(10, 24, 22, 0),
            at(10, 25, 22, 59),
            at(10, 25, 23, 0),
        ] {
            days.add(t, ok, Some(10));
        }
        let out = days.finish();
        let got: Vec<_> = out.iter().map(|d| (d.date, d.probes)).collect();
        assert_eq!(
            got,
            [(date(10, 24), 1), (date(10, 25), 2), (date(10, 26), 1)]
        );
    }
}
