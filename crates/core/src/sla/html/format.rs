//! How the HTML report writes figures: latencies, percentages, counts, days and instants.
//! The strings are plain text; escaping is the caller's (`svg::escape`).
//! Not here: the other formats' wording (the `sla` text renderers).
use chrono::{DateTime, NaiveDate, Utc};

use crate::sla::model::DayReport;

/// A latency: `420 ms` under a second, `1.5 s` under a minute, `2.5 min` beyond.
pub fn ms(v: f64) -> String {
    let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
    if v < 1000.0 {
        format!("{} ms", v.round())
    } else if v < 60_000.0 {
        format!("{} s", trimmed(v / 1000.0, 2))
    } else {
        format!("{} min", trimmed(v / 60_000.0, 1))
    }
}

/// An optional latency, `–` when there is none.
pub fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), |v| ms(v as f64))
}

/// A percentage with two decimals (`99.95 %`), `–` when there is none.
pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2} %"),
        _ => "–".into(),
    }
}

/// A tick label on a percent axis: as many decimals as the tick step needs.
pub fn pct_tick(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$} %")
}

/// `v` with at most `decimals` decimals, trailing zeros dropped.
fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A count with thousands separated by commas: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A day's probes, delivered, lost, late and failed counts, in that order.
pub fn day_counts(d: &DayReport) -> [String; 5] {
    [d.probes, d.delivered, d.lost, d.late, d.failed].map(count)
}

/// A day on an axis: `Nov 3`.
pub fn day_short(d: NaiveDate) -> String {
    d.format("%b %-d").to_string()
}

/// A day in a table or a tip: `2026-11-03`.
pub fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// An instant in a table or a tip: `2026-11-03 14:05 UTC`.
pub fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A length of time in words: `35 min`, `2 h 10 min`, `3 d 4 h`.
pub fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let min = (to - from).num_minutes().max(0);
    match min {
        m if m < 60 => format!("{m} min"),
        m if m < 24 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), (m / 60) % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_pick_their_unit() {
        assert_eq!(ms(0.0), "0 ms");
        assert_eq!(ms(420.4), "420 ms");
        assert_eq!(ms(999.0), "999 ms");
        assert_eq!(ms(1000.0), "1 s");
        assert_eq!(ms(1500.0), "1.5 s");
        assert_eq!(ms(12_345.0), "12.35 s");
        assert_eq!(ms(150_000.0), "2.5 min");
        assert_eq!(ms(f64::NAN), "0 ms");
        assert_eq!(opt_ms(None), "–");
        assert_eq!(opt_ms(Some(2000)), "2 s");
    }

    #[test]
    fn percentages_counts_and_times() {
        assert_eq!(pct(Some(99.953)), "99.95 %");
        assert_eq!(pct(Some(-250.0)), "-250.00 %");
        assert_eq!(pct(None), "–");
        assert_eq!(pct(Some(f64::NAN)), "–");
        assert_eq!(pct_tick(99.9, 1), "99.9 %");
        assert_eq!(pct_tick(50.0, 0), "50 %");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(10_512_345), "10,512,345");
        let d: NaiveDate = "2026-11-03".parse().unwrap();
        assert_eq!(day_short(d), "Nov 3");
        assert_eq!(day(d), "2026-11-03");
        let a: DateTime<Utc> = "2026-11-03T14:05:09Z".parse().unwrap();
        assert_eq!(instant(a), "2026-11-03 14:05 UTC");
        let b: DateTime<Utc> = "2026-11-03T16:15:00Z".parse().unwrap();
        assert_eq!(span(a, b), "2 h 9 min");
        assert_eq!(span(a, a), "0 min");
        assert_eq!(span(b, a), "0 min");
        let c: DateTime<Utc> = "2026-11-06T18:15:00Z".parse().unwrap();
        assert_eq!(span(a, c), "3 d 4 h");
    }
}
