//! Scales and ticks for the report's charts: a linear map from data to pixels, "nice" ticks
//! (1, 2 or 5 times a power of ten), and calendar ticks for day and time axes.
//! Not here: drawing (`svg`, `chart`).
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A closed interval of data values, `lo < hi` once built by [`Span::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub lo: f64,
    pub hi: f64,
}

impl Span {
    /// `[lo, hi]`, put in order; an empty span (one value, or no finite value) is widened to a
    /// unit around it so a single point still has somewhere to go.
    pub fn new(lo: f64, hi: f64) -> Span {
        let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => (lo.min(hi), lo.max(hi)),
            (true, false) => (lo, lo),
            (false, true) => (hi, hi),
            (false, false) => (0.0, 1.0),
        };
        if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
            return Span { lo, hi };
        }
        if lo == 0.0 {
            Span { lo: 0.0, hi: 1.0 }
        } else {
            let pad = lo.abs() * 0.1;
            Span {
                lo: lo - pad,
                hi: hi + pad,
            }
        }
    }

    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }
}

/// Maps a data span onto a pixel range (which may run backwards: a y axis grows upwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub domain: Span,
    pub from_px: f64,
    pub to_px: f64,
}

impl Linear {
    pub fn new(domain: Span, from_px: f64, to_px: f64) -> Linear {
        Linear {
            domain,
            from_px,
            to_px,
        }
    }

    pub fn map(&self, v: f64) -> f64 {
        let t = (v - self.domain.lo) / self.domain.width();
        self.from_px + t * (self.to_px - self.from_px)
    }

    /// `map`, held inside the pixel range: a value off the axis sits on its edge.
    pub fn map_clamped(&self, v: f64) -> f64 {
        let (a, b) = (self.from_px.min(self.to_px), self.from_px.max(self.to_px));
        self.map(v).clamp(a, b)
    }
}

/// The nice step (1, 2 or 5 times a power of ten) closest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw
    } else {
        1.0
    };
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Ticks at nice round values inside `span`, about `target` of them (fewer, even one, when the
/// span does not reach from one nice multiple to the next; [`nice_span`] widens a span so its
/// ends are ticks).
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub values: Vec<f64>,
    pub step: f64,
}

impl Ticks {
    pub fn within(span: Span, target: usize) -> Ticks {
        let step = nice_step(span.width() / target.max(1) as f64);
        let first = (span.lo / step - 1e-9).ceil() as i64;
        let last = (span.hi / step + 1e-9).floor() as i64;
        let values = (first..=last).map(|k| k as f64 * step).collect();
        Ticks { values, step }
    }

    /// Decimals a tick label needs for this step (0 for whole steps).
    pub fn decimals(&self) -> usize {
        if self.step >= 1.0 {
            0
        } else {
            (-self.step.log10().floor()) as usize
        }
    }
}

/// The span `[lo, hi]` widened outward to nice tick boundaries, with its ticks: an axis that
/// ends on a labelled value.
pub fn nice_span(span: Span, target: usize) -> (Span, Ticks) {
    let step = nice_step(span.width() / target.max(1) as f64);
    let lo = (span.lo / step + 1e-9).floor() * step;
    let hi = (span.hi / step - 1e-9).ceil() * step;
    let span = Span::new(lo, hi);
    (span, Ticks::within(span, target))
}

/// Steps a day axis may take between labels, in days.
const DAY_STEPS: [i64; 9] = [1, 2, 7, 14, 28, 56, 91, 182, 364];

/// The days to label on an axis of `days` days starting at `first`: at most `target` of them,
/// evenly spaced from the first.
pub fn day_ticks(first: NaiveDate, days: i64, target: usize) -> Vec<NaiveDate> {
    if days <= 0 {
        return Vec::new();
    }
    let target = target.max(1) as i64;
    let step = DAY_STEPS
        .iter()
        .copied()
        .find(|s| (days + s - 1) / s <= target)
        .unwrap_or(days);
    (0..days)
        .step_by(step as usize)
        .filter_map(|k| first.checked_add_signed(Duration::days(k)))
        .collect()
}

/// Steps a time axis may take between labels, in minutes.
const TIME_STEPS_MIN: [i64; 17] = [
    1,
    5,
    15,
    30,
    60,
    180,
    360,
    720,
    1440,
    2 * 1440,
    7 * 1440,
    14 * 1440,
    28 * 1440,
    56 * 1440,
    91 * 1440,
    182 * 1440,
    364 * 1440,
];

/// Instants to label on a time axis over `[from, to]`: at most `target`, on whole multiples of
/// the step since the Unix epoch (midnights UTC for steps of a day or more), with the step.
pub fn time_ticks(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    target: usize,
) -> (Vec<DateTime<Utc>>, Duration) {
    let total_min = (to - from).num_minutes().max(1);
    let target = target.max(1) as i64;
    let step_min = TIME_STEPS_MIN
        .iter()
        .copied()
        .find(|s| total_min / s < target)
        .unwrap_or(total_min);
    let step = step_min * 60;
    let (lo, hi) = (from.timestamp(), to.timestamp());
    let first = lo.div_euclid(step) * step + if lo.rem_euclid(step) == 0 { 0 } else { step };
    let ticks = (0..)
        .map(|k| first + k * step)
        .take_while(|t| *t <= hi)
        .filter_map(|t| DateTime::from_timestamp(t, 0))
        .collect();
    (ticks, Duration::minutes(step_min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_ordered_and_never_empty() {
        assert_eq!(Span::new(5.0, 1.0), Span { lo: 1.0, hi: 5.0 });
        assert_eq!(Span::new(0.0, 0.0), Span { lo: 0.0, hi: 1.0 });
        assert_eq!(
            Span::new(100.0, 100.0),
            Span {
                lo: 90.0,
                hi: 110.0
            }
        );
        assert_eq!(Span::new(f64::NAN, f64::NAN), Span { lo: 0.0, hi: 1.0 });
        assert_eq!(Span::new(3.0, f64::INFINITY), Span { lo: 2.7, hi: 3.3 });
    }

    #[test]
    fn linear_maps_ends_and_runs_backwards_for_a_y_axis() {
        let x = Linear::new(Span::new(0.0, 10.0), 50.0, 150.0);
        assert_eq!(x.map(0.0), 50.0);
        assert_eq!(x.map(10.0), 150.0);
        assert_eq!(x.map(2.5), 75.0);
        let y = Linear::new(Span::new(0.0, 100.0), 200.0, 0.0);
        assert_eq!(y.map(0.0), 200.0);
        assert_eq!(y.map(75.0), 50.0);
        assert_eq!(y.map_clamped(150.0), 0.0);
        assert_eq!(y.map_clamped(-5.0), 200.0);
    }

    #[test]
    fn ticks_fall_on_nice_values() {
        let t = Ticks::within(Span::new(0.0, 1000.0), 5);
        assert_eq!(t.step, 200.0);
        assert_eq!(t.values, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(t.decimals(), 0);
        let t = Ticks::within(Span::new(99.5, 100.0), 5);
        assert_eq!(t.step, 0.1);
        assert_eq!(t.values.len(), 6);
        assert!((t.values[0] - 99.5).abs() < 1e-9 && (t.values[5] - 100.0).abs() < 1e-9);
        assert_eq!(t.decimals(), 1);
        let t = Ticks::within(Span::new(3.0, 97.0), 4);
        assert_eq!(t.step, 50.0);
        assert_eq!(t.values, vec![50.0]);
    }

    #[test]
    fn nice_spans_end_on_ticks() {
        let (span, ticks) = nice_span(Span::new(0.0, 870.0), 5);
        assert_eq!(
            span,
            Span {
                lo: 0.0,
                hi: 1000.0
            }
        );
        assert_eq!(ticks.values.first(), Some(&0.0));
        assert_eq!(ticks.values.last(), Some(&1000.0));
        // A single value still gets an axis around it.
        let (span, ticks) = nice_span(Span::new(420.0, 420.0), 5);
        assert!(span.lo <= 420.0 && span.hi >= 420.0 && span.width() > 0.0);
        assert!(ticks.values.len() >= 2, "{ticks:?}");
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn day_ticks_thin_out_on_long_windows() {
        let first = date("2026-11-01");
        assert_eq!(day_ticks(first, 0, 8), Vec::<NaiveDate>::new());
        assert_eq!(day_ticks(first, 1, 8), vec![first]);
        assert_eq!(day_ticks(first, 7, 8).len(), 7);
        let month = day_ticks(first, 30, 8);
        assert_eq!(month.len(), 5, "{month:?}");
        assert_eq!(month[1], date("2026-11-08"));
        let year = day_ticks(first, 365, 8);
        assert!(year.len() <= 8 && year.len() >= 4, "{year:?}");
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn time_ticks_sit_on_round_instants() {
        let (ticks, step) = time_ticks(at("2026-11-01T00:00:00Z"), at("2026-11-08T00:00:00Z"), 8);
        assert_eq!(step, Duration::days(1));
        assert_eq!(ticks.len(), 8);
        assert_eq!(ticks[0], at("2026-11-01T00:00:00Z"));
        let (ticks, step) = time_ticks(at("2026-11-01T10:07:00Z"), at("2026-11-01T13:00:00Z"), 8);
        assert_eq!(step, Duration::minutes(30));
        assert_eq!(ticks[0], at("2026-11-01T10:30:00Z"));
        assert_eq!(ticks.last(), Some(&at("2026-11-01T13:00:00Z")));
        // An empty window still gets a step, and at most the one instant.
        let (ticks, _) = time_ticks(at("2026-11-01T10:00:00Z"), at("2026-11-01T10:00:00Z"), 8);
        assert!(ticks.len() <= 1);
    }
}
