//! The daily breakdown: days cut at midnight in the report's time zone (a fixed offset), one
//! day's values held at a time. Relies on probes arriving in send order, so a day ends when the
//! next probe falls on a later date. Not here: the whole-window figures (aggregation).
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use super::budget::{Outcome, Tally};
use super::model::DayReport;
use super::percentile;

/// The calendar date of `t` at `offset`.
pub fn local_date(t: DateTime<Utc>, offset: FixedOffset) -> NaiveDate {
    t.with_timezone(&offset).date_naive()
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
    offset: FixedOffset,
    current: Option<Day>,
    done: Vec<DayReport>,
}

impl Days {
    pub fn new(offset: FixedOffset) -> Days {
        Days {
            offset,
            current: None,
            done: Vec::new(),
        }
    }

    /// Count one probe; `latency_ms` is its end-to-end latency when delivered.
    pub fn add(&mut self, sent_at: DateTime<Utc>, outcome: Outcome, latency_ms: Option<u64>) {
        let date = local_date(sent_at, self.offset);
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
        let plus2 = FixedOffset::east_opt(7200).unwrap();
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
        let utc = FixedOffset::east_opt(0).unwrap();
        assert_eq!(local_date(t(22), utc), out[0].date);
    }
}
