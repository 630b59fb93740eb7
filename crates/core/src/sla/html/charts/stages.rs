//! Where the time goes: one horizontal bar per percentile (p50, p95, p99), stacked from the
//! stages' own percentiles in path order, with the measured end-to-end percentile marked on it.
//! A stacked sum of per-stage percentiles is not the end-to-end percentile (slow stages need
//! not coincide), which is why the measured one is drawn beside it.
//! Not here: the stage table (the page), the other charts.
use super::{finish, frame_with_legend};
use crate::sla::html::chart::{self, LegendItem, Tick};
use crate::sla::html::format;
use crate::sla::html::scale::{nice_span, Linear, Span};
use crate::sla::html::svg::{Rect, Svg};
use crate::sla::model::{ScenarioReport, StageLatency};

/// The stage that is the whole path, not a part of it: drawn as the measured mark, not stacked.
const END_TO_END: &str = "end_to_end";
/// How many distinct stage colours the page's style has (`s0` to `s7`).
const COLOURS: usize = 8;
const ROW_HEIGHT: f64 = 40.0;

/// One bar: a percentile's name, its value per stage, and the end-to-end figure.
struct Row {
    name: &'static str,
    stage_ms: fn(&StageLatency) -> Option<u64>,
    end_to_end: Option<u64>,
}

fn rows(s: &ScenarioReport) -> [Row; 3] {
    [
        Row {
            name: "p50",
            stage_ms: |st| st.p50_ms,
            end_to_end: s.latency_ms.p50,
        },
        Row {
            name: "p95",
            stage_ms: |st| st.p95_ms,
            end_to_end: s.latency_ms.p95,
        },
        Row {
            name: "p99",
            stage_ms: |st| st.p99_ms,
            end_to_end: s.latency_ms.p99,
        },
    ]
}

fn stage_class(i: usize) -> String {
    format!("s{}", i % COLOURS)
}

pub fn stages(s: &ScenarioReport) -> String {
    let parts: Vec<&StageLatency> = s.stages.iter().filter(|st| st.name != END_TO_END).collect();
    let mut items: Vec<LegendItem> = parts
        .iter()
        .enumerate()
        .map(|(i, st)| LegendItem {
            class: stage_class(i),
            text: if st.samples == 0 {
                format!("{} (no samples)", st.name)
            } else {
                st.name.clone()
            },
        })
        .collect();
    items.push(LegendItem {
        class: "e2e".into(),
        text: "end-to-end, measured".into(),
    });
    let frame = frame_with_legend(ROW_HEIGHT * 3.0, &items);
    let mut svg = Svg::new(
        frame.width,
        frame.height,
        &format!("Where the time goes, {} at {}", s.scenario, s.location),
        "Each stage's p50, p95 and p99 latency stacked in path order, with the measured end-to-end percentile marked.",
    );
    let rows = rows(s);
    let longest = rows
        .iter()
        .map(|r| {
            let stacked: u64 = parts.iter().filter_map(|st| (r.stage_ms)(st)).sum();
            stacked.max(r.end_to_end.unwrap_or(0))
        })
        .max()
        .unwrap_or(0);
    let (span, ticks) = nice_span(
        Span::new(0.0, if longest > 0 { longest as f64 } else { 1000.0 }),
        5,
    );
    let x = Linear::new(span, frame.left(), frame.right());
    let x_ticks: Vec<Tick> = ticks
        .values
        .iter()
        .map(|&v| Tick {
            px: x.map(v),
            label: format::ms(v),
        })
        .collect();
    let row_center = |i: usize| frame.top() + ROW_HEIGHT * (i as f64 + 0.5);
    let y_ticks: Vec<Tick> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Tick {
            px: row_center(i),
            label: r.name.into(),
        })
        .collect();
    chart::y_axis(&mut svg, &frame, &y_ticks, "percentile");
    chart::x_axis(&mut svg, &frame, &x_ticks, "latency, stacked by stage");
    for (i, row) in rows.iter().enumerate() {
        stacked_bar(&mut svg, row, &parts, &x, row_center(i));
    }
    if parts.iter().all(|st| st.samples == 0) {
        chart::note(&mut svg, &frame, "no stage was measured");
    }
    finish(svg, &frame, &items)
}

/// One percentile's bar: a segment per stage with a value, then the end-to-end mark.
fn stacked_bar(svg: &mut Svg, row: &Row, parts: &[&StageLatency], x: &Linear, center: f64) {
    let thickness = ROW_HEIGHT * 0.6;
    let mut at = 0u64;
    for (i, st) in parts.iter().enumerate() {
        let Some(ms) = (row.stage_ms)(st) else {
            continue;
        };
        let seg = Rect {
            x: x.map(at as f64),
            y: center - thickness / 2.0,
            width: x.map((at + ms) as f64) - x.map(at as f64),
            height: thickness,
        };
        let tip = format!(
            "{} {}: {} ({} samples)",
            st.name,
            row.name,
            format::ms(ms as f64),
            format::count(st.samples)
        );
        svg.rect(seg, &stage_class(i), Some(&tip));
        at += ms;
    }
    if let Some(e2e) = row.end_to_end {
        let mark = Rect {
            x: x.map(e2e as f64) - 1.5,
            y: center - ROW_HEIGHT * 0.45,
            width: 3.0,
            height: ROW_HEIGHT * 0.9,
        };
        let tip = format!(
            "end-to-end {} (measured): {}; the stages' {} add up to {}",
            row.name,
            format::ms(e2e as f64),
            row.name,
            format::ms(at as f64)
        );
        svg.rect(mark, "e2e", Some(&tip));
    }
}
