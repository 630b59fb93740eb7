use super::*;
use crate::sla::html::fixture::{self, day, incident, lat, HOSTILE};
use crate::sla::model::ScenarioReport;

fn week() -> (SlaReport, DayAxis) {
    let r = fixture::report(vec![fixture::scenario("inbound")]);
    let axis = DayAxis::of(&r);
    (r, axis)
}

fn bare(days: Vec<crate::sla::model::DayReport>) -> ScenarioReport {
    ScenarioReport {
        days,
        stages: Vec::new(),
        incidents: Vec::new(),
        ..fixture::scenario("bare")
    }
}

/// `svg` has a `<text>` of `class` reading `text`.
fn assert_text(svg: &str, class: &str, text: &str) {
    let end = svg
        .find(&format!(">{text}</text>"))
        .unwrap_or_else(|| panic!("no text {text:?}: {svg}"));
    let start = svg[..end].rfind("<text ").expect("a text element");
    assert!(
        svg[start..end].starts_with(&format!("<text class=\"{class}\"")),
        "{text:?} is not a {class}: {}",
        &svg[start..end]
    );
}

/// The chart has its title, both axis titles, and every one of `ticks` as a tick label.
fn assert_labelled(svg: &str, title: &str, axes: [&str; 2], ticks: &[&str]) {
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"), "{svg}");
    assert!(
        svg.contains(&format!("><title>{title}")),
        "no title {title:?}: {svg}"
    );
    for a in axes {
        assert_text(svg, "axis-title", a);
    }
    for t in ticks {
        assert_text(svg, "tick", t);
    }
}

#[test]
fn the_day_axis_spans_the_reported_days_else_the_window() {
    let (r, axis) = week();
    assert_eq!(axis.first, fixture::date("2026-11-02"));
    assert_eq!(axis.days, 6);
    let empty = fixture::report(vec![bare(Vec::new())]);
    let axis = DayAxis::of(&empty);
    assert_eq!(axis.first, fixture::date("2026-11-01"));
    assert_eq!(axis.days, 7, "{r:?}");
}

#[test]
fn latency_draws_the_band_lines_and_marks_a_day_without_delivery() {
    let (r, axis) = week();
    let svg = latency(&r.scenarios[0], &axis, "UTC");
    assert_labelled(
        &svg,
        "End-to-end latency per day, inbound at eu-west",
        ["end-to-end latency", "day (UTC)"],
        &["Nov 2", "Nov 7", "0 ms", "1 s", "5 s"],
    );
    // Nov 2-5 form one run (band and lines); Nov 7 stands alone after the day without delivery.
    assert_eq!(svg.matches("<polygon class=\"band\"").count(), 1, "{svg}");
    assert_eq!(svg.matches("<polyline class=\"line p50\"").count(), 1);
    assert_eq!(svg.matches("<rect class=\"band\"").count(), 1);
    assert_eq!(svg.matches("<rect class=\"nodelivery\"").count(), 1);
    assert!(
        svg.contains("2026-11-06: 60 probes, 0 delivered, 60 lost"),
        "{svg}"
    );
    assert!(svg.contains("latency p50 700 ms, p95 4.2 s"), "{svg}");
    assert!(!svg.contains("no probe was delivered"));
}

#[test]
fn latency_with_no_days_or_one_day_still_has_axes() {
    let (r, _) = week();
    let none = bare(Vec::new());
    let axis = DayAxis::of(&fixture::report(vec![none.clone()]));
    let svg = latency(&none, &axis, "UTC");
    assert_labelled(
        &svg,
        "End-to-end latency",
        ["end-to-end latency", "day (UTC)"],
        &["0 ms", "Nov 1"],
    );
    assert!(svg.contains("no probe was delivered: no latency to show"));
    assert!(!svg.contains("<polygon") && !svg.contains("<circle"));
    let one = bare(vec![day("2026-11-03", 10, 10, Some(lat(400, 400)))]);
    let axis = DayAxis::of(&fixture::report(vec![one.clone()]));
    let svg = latency(&one, &axis, "Europe/Paris");
    assert_labelled(
        &svg,
        "End-to-end latency",
        ["day (Europe/Paris)", "end-to-end latency"],
        &["Nov 3"],
    );
    assert!(!svg.contains("<polyline"), "{svg}");
    assert_eq!(svg.matches("<rect class=\"band\"").count(), 1);
    assert_eq!(svg.matches("<circle").count(), 2);
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{r:?}");
}

#[test]
fn availability_marks_bad_days_and_the_objective() {
    let (r, axis) = week();
    let svg = availability(&r.scenarios[0], &axis, "UTC", 99.9);
    assert_labelled(
        &svg,
        "Availability per day, inbound at eu-west",
        ["availability", "day (UTC)"],
        &["Nov 2", "0 %", "100 %"],
    );
    assert!(svg.contains("<line class=\"target\""));
    assert!(svg.contains(">objective 99.90 %</text>"));
    // Nov 3 (99.93 %) meets 99.9; Nov 4 (90.28 %) and the all-failed Nov 6 (0 %) do not.
    assert_eq!(svg.matches("<rect class=\"ok\"").count(), 4, "{svg}");
    assert_eq!(svg.matches("<rect class=\"bad\"").count(), 2, "{svg}");
    assert!(svg.contains(
        "2026-11-06: 60 probes, 0 delivered, 60 lost, 0 late, 0 failed\navailability 0.00 %"
    ));
}

#[test]
fn availability_zooms_in_on_good_weeks_and_keeps_an_empty_one_readable() {
    let good = bare(vec![
        day("2026-11-02", 1000, 1000, None),
        day("2026-11-03", 1000, 998, None),
    ]);
    let axis = DayAxis::of(&fixture::report(vec![good.clone()]));
    let svg = availability(&good, &axis, "UTC", 99.9);
    assert!(
        svg.contains(">100.0 %</text>") || svg.contains(">100.00 %</text>"),
        "{svg}"
    );
    assert!(
        !svg.contains(">0 %</text>"),
        "the axis should not start at 0: {svg}"
    );
    assert_eq!(svg.matches("<rect class=\"bad\"").count(), 1);
    let undecided = bare(vec![day("2026-11-02", 0, 0, None)]);
    let svg = availability(&undecided, &axis, "UTC", 99.9);
    assert_eq!(svg.matches("<rect class=\"nodata\"").count(), 1, "{svg}");
    let none = bare(Vec::new());
    let svg = availability(&none, &axis, "UTC", 99.9);
    assert!(svg.contains("no probe in the window"));
    assert!(svg.contains("<line class=\"target\""));
}

#[test]
fn stages_stack_the_parts_and_mark_the_measured_end_to_end() {
    let (r, _) = week();
    let svg = stages(&r.scenarios[0]);
    assert_labelled(
        &svg,
        "Where the time goes, inbound at eu-west",
        ["percentile", "latency, stacked by stage"],
        &["p50", "p95", "p99", "0 ms"],
    );
    // Five stages, three percentiles; end_to_end is the mark, not a segment.
    let segments = (0..5)
        .map(|i| svg.matches(&format!("<rect class=\"s{i}\"")).count())
        .sum::<usize>();
    assert_eq!(segments, 15, "{svg}");
    assert!(!svg.contains("end_to_end p50"), "{svg}");
    assert_eq!(svg.matches("<rect class=\"e2e\"").count(), 3);
    assert!(svg.contains("tailscale-relay p95: 180 ms (100 samples)"));
    assert!(
        svg.contains("end-to-end p50 (measured): 495 ms; the stages&#39; p50 add up to 615 ms"),
        "{svg}"
    );
    let none = bare(Vec::new());
    let svg = stages(&none);
    assert!(svg.contains("no stage was measured"));
    assert_labelled(
        &svg,
        "Where the time goes",
        ["percentile", "latency, stacked by stage"],
        &["p50"],
    );
}

#[test]
fn the_timeline_puts_incidents_in_their_stage_lanes_with_findings_and_hints() {
    let (r, _) = week();
    let svg = timeline(&r.scenarios[0], &r.window);
    assert_labelled(
        &svg,
        "Incidents, inbound at eu-west",
        ["stopped at", "time (UTC)"],
        &["tailscale…", "stage unk…", "Nov 1", "Nov 7"],
    );
    assert_eq!(svg.matches("<rect class=\"incident\"").count(), 1, "{svg}");
    assert_eq!(svg.matches("<rect class=\"ongoing\"").count(), 1);
    assert!(
        svg.contains("2026-11-04 10:00 UTC – 2026-11-04 12:20 UTC (2 h 20 min)"),
        "{svg}"
    );
    assert!(svg.contains("next_hop_refused ×12: connect to 100.64.0.2:2525: Connection refused\nhint: check the Tailscale link"));
    assert!(svg.contains("still failing at the window&#39;s end"));
    let quiet = bare(Vec::new());
    let svg = timeline(&quiet, &r.window);
    assert!(svg.contains("no incident in the window"));
    assert_labelled(
        &svg,
        "Incidents",
        ["stopped at", "time (UTC)"],
        &["none", "Nov 1"],
    );
    assert!(!svg.contains("<rect class=\"incident\"") && !svg.contains("<rect class=\"ongoing\""));
}

#[test]
fn hostile_names_findings_and_hints_stay_text() {
    let mut s = fixture::scenario(HOSTILE);
    s.location = HOSTILE.into();
    s.stages[0].name = HOSTILE.into();
    s.incidents = vec![incident(
        "2026-11-04T10:00:00Z",
        None,
        Some(HOSTILE),
        HOSTILE,
    )];
    s.incidents[0].findings[0].message = HOSTILE.into();
    let r = fixture::report(vec![s]);
    let axis = DayAxis::of(&r);
    let s = &r.scenarios[0];
    for svg in [
        latency(s, &axis, HOSTILE),
        availability(s, &axis, HOSTILE, 99.9),
        stages(s),
        timeline(s, &r.window),
    ] {
        assert!(!svg.contains("<script") && !svg.contains("<img"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&quot;&#39;&amp;"),
            "{svg}"
        );
    }
}

#[test]
fn a_short_window_is_labelled_in_hours() {
    let (mut r, _) = week();
    r.window.from = fixture::at("2026-11-04T09:00:00Z");
    r.window.to = fixture::at("2026-11-04T15:00:00Z");
    let svg = timeline(&r.scenarios[0], &r.window);
    assert_labelled(
        &svg,
        "Incidents",
        ["time of day (UTC)", "stopped at"],
        &["10:00", "12:00"],
    );
    // The ongoing incident starts after the window: drawn at its right edge, inside the plot.
    assert!(!svg.contains("x=\"-"), "{svg}");
}

#[test]
fn a_year_of_days_keeps_its_axis_readable() {
    let days: Vec<_> = (0..365)
        .map(|k| {
            let d = fixture::date("2026-01-01") + chrono::Duration::days(k);
            day(
                &d.to_string(),
                1440,
                1440 - (k as u64 % 5),
                Some(lat(400 + k as u64, 900)),
            )
        })
        .collect();
    let year = bare(days);
    let axis = DayAxis::of(&fixture::report(vec![year.clone()]));
    assert_eq!(axis.days, 365);
    let svg = latency(&year, &axis, "UTC");
    let ticks = svg.matches("<text class=\"tick\"").count();
    assert!((4..=7 + 6).contains(&ticks), "{ticks} ticks");
    // 365 days in 450 pixels: lines, no points.
    assert_eq!(svg.matches("<circle").count(), 0);
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert_eq!(svg.matches("<rect class=\"hit\"").count(), 365);
}
