//! The report's four charts, each an inline SVG with a title, axis titles and tick labels:
//! latency over the days (p50-p95 band), where the time goes (stacked stage percentiles),
//! availability per day against the objective, and the incident timeline.
//! Not here: the page around them (`html`), axes and legends (`chart`).
mod days;
mod incidents;
mod stages;

pub use days::{availability, latency};
pub use incidents::timeline;
pub use stages::stages;

use chrono::{Duration, NaiveDate};

use super::chart::{self, Frame, LegendItem, Tick, LEGEND_BELOW};
use super::format;
use super::scale::{day_ticks, Linear, Span};
use super::svg::{Point, Svg};
use crate::sla::model::SlaReport;

/// Every chart's width in SVG units (the page scales it to its column).
pub const WIDTH: f64 = 560.0;
/// Room on the left for the y axis's tick labels and title.
const LEFT: f64 = 90.0;
/// Room under the plot for the x axis's ticks and title, without a legend.
const BOTTOM: f64 = 46.0;
/// The most tick labels an x axis carries.
const X_TICKS: usize = 7;

/// Where a chart's legend may reach on the right.
const LEGEND_RIGHT: f64 = WIDTH - 18.0;

/// A chart's frame around a plot `plot_height` high, with room under it for `legend`.
fn frame_with_legend(plot_height: f64, legend: &[LegendItem]) -> Frame {
    let lines = chart::legend_lines(legend, LEFT, LEGEND_RIGHT) as f64;
    Frame::new(WIDTH, plot_height, LEFT, BOTTOM + 16.0 * lines + 4.0)
}

/// The chart with its legend under the x axis's title.
fn finish(mut svg: Svg, frame: &Frame, legend: &[LegendItem]) -> String {
    let origin = Point {
        x: LEFT,
        y: frame.bottom() + LEGEND_BELOW,
    };
    chart::legend(&mut svg, origin, LEGEND_RIGHT, legend);
    svg.finish()
}

/// The days the day charts share, so every scenario's charts line up: from the first day any
/// scenario reports to the last, else the window's days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayAxis {
    pub first: NaiveDate,
    /// How many days, at least one.
    pub days: i64,
}

impl DayAxis {
    pub fn of(report: &SlaReport) -> DayAxis {
        let dates = report
            .scenarios
            .iter()
            .flat_map(|s| s.days.iter().map(|d| d.date));
        let (first, last) = match (dates.clone().min(), dates.max()) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                let w = &report.window;
                let last = (w.to - Duration::nanoseconds(1)).date_naive();
                let first = w.from.date_naive();
                (first, last.max(first))
            }
        };
        DayAxis {
            first,
            days: (last - first).num_days() + 1,
        }
    }

    /// Days from the first to `d`.
    fn index(&self, d: NaiveDate) -> f64 {
        (d - self.first).num_days() as f64
    }

    /// The x scale over the plot: one slot per day.
    fn scale(&self, frame: &Frame) -> Linear {
        Linear::new(
            Span::new(0.0, self.days as f64),
            frame.left(),
            frame.right(),
        )
    }

    /// The middle of `d`'s slot.
    fn center(&self, x: &Linear, d: NaiveDate) -> f64 {
        x.map(self.index(d) + 0.5)
    }

    /// A day slot's width in pixels.
    fn slot(&self, x: &Linear) -> f64 {
        x.map(1.0) - x.map(0.0)
    }

    fn ticks(&self, x: &Linear) -> Vec<Tick> {
        day_ticks(self.first, self.days, X_TICKS)
            .into_iter()
            .map(|d| Tick {
                px: self.center(x, d),
                label: format::day_short(d),
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
