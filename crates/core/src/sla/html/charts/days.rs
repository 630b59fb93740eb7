//! The two day-by-day charts: end-to-end latency (p50 and p95 lines with the band between them)
//! and availability against the objective's line.
//! Not here: the day axis they share (`charts`), stages and incidents.
use chrono::NaiveDate;

use super::{finish, frame_with_legend, DayAxis};
use crate::sla::html::chart::{self, Frame, LegendItem, Tick};
use crate::sla::html::format;
use crate::sla::html::scale::{nice_span, Linear, Span};
use crate::sla::html::svg::{Anchor, Label, Point, Rect, Svg};
use crate::sla::model::{DayReport, ScenarioReport};

const PLOT_HEIGHT: f64 = 170.0;
/// Below this slot width (pixels per day) the points are left out: the lines say it all.
const MIN_SLOT_FOR_POINTS: f64 = 7.0;

/// One day's latency percentiles, for a day some probe was delivered on.
#[derive(Debug, Clone, Copy)]
struct DayLatency {
    date: NaiveDate,
    p50: f64,
    p95: f64,
}

fn day_latencies(days: &[DayReport]) -> Vec<DayLatency> {
    let mut out: Vec<DayLatency> = days
        .iter()
        .filter_map(|d| {
            let p50 = d.latency_ms.p50?;
            let p95 = d.latency_ms.p95.unwrap_or(p50).max(p50);
            Some(DayLatency {
                date: d.date,
                p50: p50 as f64,
                p95: p95 as f64,
            })
        })
        .collect();
    out.sort_by_key(|d| d.date);
    out
}

/// Runs of consecutive days: a line is not drawn across a day without deliveries.
fn runs(points: &[DayLatency]) -> Vec<&[DayLatency]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || (points[i].date - points[i - 1].date).num_days() != 1 {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// What a day's hover tip says about its probes.
fn day_tip(d: &DayReport) -> String {
    let [probes, delivered, lost, late, failed] = format::day_counts(d);
    let mut tip = format!(
        "{}: {probes} probes, {delivered} delivered, {lost} lost, {late} late, {failed} failed",
        format::day(d.date)
    );
    tip.push_str(&format!(
        "\navailability {}, within the latency target {}",
        format::pct(d.availability_percent),
        format::pct(d.slo_percent)
    ));
    let l = d.latency_ms;
    if l.p50.is_some() {
        tip.push_str(&format!(
            "\nlatency p50 {}, p95 {}, p99 {}, max {}",
            format::opt_ms(l.p50),
            format::opt_ms(l.p95),
            format::opt_ms(l.p99),
            format::opt_ms(l.max)
        ));
    }
    tip
}

fn y_ticks(y: &Linear, values: &[f64], label: impl Fn(f64) -> String) -> Vec<Tick> {
    values
        .iter()
        .map(|&v| Tick {
            px: y.map(v),
            label: label(v),
        })
        .collect()
}

fn legend_item(class: &str, text: &str) -> LegendItem {
    LegendItem {
        class: class.into(),
        text: text.into(),
    }
}

/// End-to-end latency per day: the p50-p95 band, both lines, and a mark at the bottom of each
/// day that had probes but no delivery.
pub fn latency(s: &ScenarioReport, axis: &DayAxis, tz: &str) -> String {
    let items = [
        legend_item("band", "p50–p95"),
        legend_item("p50", "p50"),
        legend_item("p95", "p95"),
        legend_item("nodelivery", "no delivery that day"),
    ];
    let frame = frame_with_legend(PLOT_HEIGHT, &items);
    let points = day_latencies(&s.days);
    let mut svg = Svg::new(
        frame.width,
        frame.height,
        &format!(
            "End-to-end latency per day, {} at {}",
            s.scenario, s.location
        ),
        "Daily p50 and p95 of the delivered probes' end-to-end latency; the band spans p50 to p95.",
    );
    let max = points.iter().map(|p| p.p95).fold(0.0, f64::max);
    let (span, ticks) = nice_span(Span::new(0.0, if max > 0.0 { max } else { 1000.0 }), 5);
    let y = Linear::new(span, frame.bottom(), frame.top());
    let x = axis.scale(&frame);
    chart::y_axis(
        &mut svg,
        &frame,
        &y_ticks(&y, &ticks.values, format::ms),
        "end-to-end latency",
    );
    chart::x_axis(&mut svg, &frame, &axis.ticks(&x), &format!("day ({tz})"));
    let slot = axis.slot(&x);
    for run in runs(&points) {
        latency_run(&mut svg, run, axis, &x, &y, slot);
    }
    for d in s
        .days
        .iter()
        .filter(|d| d.probes > 0 && d.latency_ms.p50.is_none())
    {
        let w = (slot * 0.6).max(2.0);
        let mark = Rect {
            x: axis.center(&x, d.date) - w / 2.0,
            y: frame.bottom() - 5.0,
            width: w,
            height: 5.0,
        };
        // The day's column (below) carries its tip.
        svg.rect(mark, "nodelivery", None);
    }
    day_hover(&mut svg, &s.days, axis, &x, &frame);
    if points.is_empty() {
        chart::note(
            &mut svg,
            &frame,
            "no probe was delivered: no latency to show",
        );
    }
    finish(svg, &frame, &items)
}

/// One run of consecutive days: the band and the two lines, or for a lone day a short bar
/// from p50 to p95; points on both when the days are wide enough.
fn latency_run(
    svg: &mut Svg,
    run: &[DayLatency],
    axis: &DayAxis,
    x: &Linear,
    y: &Linear,
    slot: f64,
) {
    let line = |value: fn(&DayLatency) -> f64| -> Vec<Point> {
        run.iter()
            .map(|d| Point {
                x: axis.center(x, d.date),
                y: y.map(value(d)),
            })
            .collect()
    };
    let (p95, p50) = (line(|d| d.p95), line(|d| d.p50));
    if let [one] = run {
        let w = (slot * 0.4).clamp(3.0, 24.0);
        let bar = Rect {
            x: p95[0].x - w / 2.0,
            y: y.map(one.p95),
            width: w,
            height: y.map(one.p50) - y.map(one.p95),
        };
        svg.rect(bar, "band", None);
    } else {
        let band: Vec<Point> = p95.iter().chain(p50.iter().rev()).copied().collect();
        svg.polygon(&band, "band", None);
        svg.polyline(&p95, "line p95");
        svg.polyline(&p50, "line p50");
    }
    if slot >= MIN_SLOT_FOR_POINTS || run.len() == 1 {
        for p in p95.iter().chain(&p50) {
            svg.circle(*p, 2.5, "dot", None);
        }
    }
}

/// An invisible column over each day carrying the day's figures as its hover tip.
fn day_hover(svg: &mut Svg, days: &[DayReport], axis: &DayAxis, x: &Linear, frame: &Frame) {
    let slot = axis.slot(x);
    for d in days {
        let col = Rect {
            x: axis.center(x, d.date) - slot / 2.0,
            y: frame.top(),
            width: slot,
            height: frame.plot.height,
        };
        svg.rect(col, "hit", Some(&day_tip(d)));
    }
}

/// The objective as a dashed line across the plot, named at its right end.
fn objective_line(svg: &mut Svg, frame: &Frame, y: &Linear, target: f64) {
    let ty = y.map_clamped(target);
    let from = Point {
        x: frame.left(),
        y: ty,
    };
    let to = Point {
        x: frame.right(),
        y: ty,
    };
    svg.line(from, to, "target");
    let label = Label {
        at: Point {
            x: frame.right() - 2.0,
            y: ty - 4.0,
        },
        anchor: Anchor::End,
        class: "target-label",
        vertical: false,
    };
    svg.text(label, &format!("objective {}", format::pct(Some(target))));
}

/// The availability axis: down to a little under the lowest day (or the objective), so that
/// 99.5 % and 99.9 % look different, and never below 0.
fn availability_span(days: &[DayReport], target: f64) -> Span {
    let lowest = days
        .iter()
        .filter_map(|d| d.availability_percent)
        .fold(target.clamp(0.0, 100.0), f64::min);
    let pad = ((100.0 - lowest) * 0.25).max(0.05);
    Span::new((lowest - pad).max(0.0), 100.0)
}

/// Availability per day as bars (red below the objective), the objective as a dashed line, and
/// a grey mark for a day without a decided probe.
pub fn availability(s: &ScenarioReport, axis: &DayAxis, tz: &str, target: f64) -> String {
    let items = [
        legend_item("ok", "meets the objective"),
        legend_item("bad", "below the objective"),
        legend_item(
            "target",
            &format!("objective {}", format::pct(Some(target))),
        ),
    ];
    let frame = frame_with_legend(PLOT_HEIGHT, &items);
    let mut svg = Svg::new(
        frame.width,
        frame.height,
        &format!("Availability per day, {} at {}", s.scenario, s.location),
        "Share of each day's decided probes delivered within the timeout, against the availability objective.",
    );
    let (span, ticks) = nice_span(availability_span(&s.days, target), 5);
    let span = Span::new(span.lo.max(0.0), span.hi.min(100.0));
    let y = Linear::new(span, frame.bottom(), frame.top());
    let x = axis.scale(&frame);
    let decimals = ticks.decimals();
    let tick_values: Vec<f64> = ticks
        .values
        .iter()
        .copied()
        .filter(|v| (0.0..=100.0).contains(v))
        .collect();
    chart::y_axis(
        &mut svg,
        &frame,
        &y_ticks(&y, &tick_values, |v| format::pct_tick(v, decimals)),
        "availability",
    );
    chart::x_axis(&mut svg, &frame, &axis.ticks(&x), &format!("day ({tz})"));
    let w = (axis.slot(&x) * 0.7).max(1.0);
    for d in &s.days {
        let left = axis.center(&x, d.date) - w / 2.0;
        let tip = day_tip(d);
        match d.availability_percent {
            Some(a) => {
                let top = y.map_clamped(a).min(frame.bottom() - 2.0);
                let bar = Rect {
                    x: left,
                    y: top,
                    width: w,
                    height: frame.bottom() - top,
                };
                svg.rect(bar, if a >= target { "ok" } else { "bad" }, Some(&tip));
            }
            None => {
                let mark = Rect {
                    x: left,
                    y: frame.bottom() - 4.0,
                    width: w,
                    height: 4.0,
                };
                svg.rect(mark, "nodata", Some(&tip));
            }
        }
    }
    objective_line(&mut svg, &frame, &y, target);
    if s.days.is_empty() {
        chart::note(&mut svg, &frame, "no probe in the window");
    }
    finish(svg, &frame, &items)
}
