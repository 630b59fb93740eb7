//! The incident timeline: the report's window as the x axis, one lane per stage where probes
//! stopped, and a bar per incident whose hover tip names its findings and hints.
//! Not here: the incident table (the page), the other charts.
use chrono::{DateTime, Utc};

use super::{finish, frame_with_legend, X_TICKS};
use crate::sla::html::chart::{self, LegendItem, Tick};
use crate::sla::html::format;
use crate::sla::html::scale::{time_ticks, Linear, Span};
use crate::sla::html::svg::{Rect, Svg};
use crate::sla::model::{Incident, ScenarioReport, Window};

const LANE_HEIGHT: f64 = 28.0;
const BAR_HEIGHT: f64 = 17.0;
/// The plot is at least this high, so the y axis's title fits beside one lane.
const MIN_PLOT_HEIGHT: f64 = 84.0;
/// The narrowest an incident is drawn, so a one-probe outage on a month's axis still shows.
const MIN_WIDTH: f64 = 3.0;
/// The lane of incidents whose findings name no stage.
const NO_STAGE: &str = "stage unknown";
/// Lane labels are cut to this many characters (the tip has the full name).
const LANE_CHARS: usize = 10;

fn lane_of(i: &Incident) -> &str {
    i.stage.as_deref().unwrap_or(NO_STAGE)
}

/// The lanes in order of first appearance; one labelled `none` when there is no incident, so
/// the y axis still says what it would hold.
fn lanes(incidents: &[Incident]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for i in incidents {
        if !out.contains(&lane_of(i)) {
            out.push(lane_of(i));
        }
    }
    if out.is_empty() {
        out.push("none");
    }
    out
}

/// An incident's hover tip: when, how many probes, where, what it cost, and each finding with
/// its hint.
pub fn incident_tip(i: &Incident) -> String {
    let end = match i.end {
        Some(e) => format!("{} ({})", format::instant(e), format::span(i.start, e)),
        None => "still failing at the window's end".into(),
    };
    let mut tip = format!(
        "{} – {}\n{} failed probes ({}), stopped at {}\navailability cost {}",
        format::instant(i.start),
        end,
        format::count(i.failed_probes),
        i.statuses.join(", "),
        lane_of(i),
        format::pct(Some(i.availability_cost_percent))
    );
    for f in &i.findings {
        tip.push_str(&format!(
            "\n{} ×{}: {}\nhint: {}",
            f.code.as_str(),
            format::count(f.count),
            f.message,
            f.hint
        ));
    }
    tip
}

fn x_ticks(window: &Window, x: &Linear) -> Vec<Tick> {
    let (ticks, step) = time_ticks(window.from, window.to, X_TICKS);
    let daily = step.num_days() >= 1;
    ticks
        .into_iter()
        .map(|t| Tick {
            px: x.map(t.timestamp() as f64),
            label: if daily {
                format::day_short(t.date_naive())
            } else {
                t.format("%H:%M").to_string()
            },
        })
        .collect()
}

pub fn timeline(s: &ScenarioReport, window: &Window) -> String {
    let lanes = lanes(&s.incidents);
    let items = [
        LegendItem {
            class: "incident".into(),
            text: "incident (ended)".into(),
        },
        LegendItem {
            class: "ongoing".into(),
            text: "ongoing at window end".into(),
        },
    ];
    let plot_height = (LANE_HEIGHT * lanes.len() as f64).max(MIN_PLOT_HEIGHT);
    let frame = frame_with_legend(plot_height, &items);
    let mut svg = Svg::new(
        frame.width,
        frame.height,
        &format!("Incidents, {} at {}", s.scenario, s.location),
        "Each run of consecutive failed probes over the window, in the lane of the stage where they stopped.",
    );
    let x = Linear::new(
        Span::new(window.from.timestamp() as f64, window.to.timestamp() as f64),
        frame.left(),
        frame.right(),
    );
    let lane = frame.plot.height / lanes.len().max(1) as f64;
    let lane_center = |k: usize| frame.top() + lane * (k as f64 + 0.5);
    let y_ticks: Vec<Tick> = lanes
        .iter()
        .enumerate()
        .map(|(k, name)| Tick {
            px: lane_center(k),
            label: chart::shortened(name, LANE_CHARS),
        })
        .collect();
    chart::y_axis(&mut svg, &frame, &y_ticks, "stopped at");
    let tz_title = if window_days(window) >= 1 {
        "time (UTC)"
    } else {
        "time of day (UTC)"
    };
    chart::x_axis(&mut svg, &frame, &x_ticks(window, &x), tz_title);
    for i in &s.incidents {
        let k = lanes.iter().position(|l| *l == lane_of(i)).unwrap_or(0);
        incident_bar(&mut svg, i, window, &x, lane_center(k));
    }
    if s.incidents.is_empty() {
        chart::note(&mut svg, &frame, "no incident in the window");
    }
    finish(svg, &frame, &items)
}

fn window_days(w: &Window) -> i64 {
    (w.to - w.from).num_days()
}

fn incident_bar(svg: &mut Svg, i: &Incident, window: &Window, x: &Linear, center: f64) {
    let clamp = |t: DateTime<Utc>| x.map_clamped(t.timestamp() as f64);
    let from = clamp(i.start);
    let to = clamp(i.end.unwrap_or(window.to));
    let width = (to - from).max(MIN_WIDTH);
    // A bar at the axis's right end grows leftwards, so it stays inside the plot.
    let left = from.min(x.to_px - width);
    let bar = Rect {
        x: left,
        y: center - BAR_HEIGHT / 2.0,
        width,
        height: BAR_HEIGHT,
    };
    let class = if i.end.is_some() {
        "incident"
    } else {
        "ongoing"
    };
    svg.rect(bar, class, Some(&incident_tip(i)));
}
