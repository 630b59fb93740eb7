//! A latency sparkline as an inline SVG: one point per recent probe, failures marked in red at
//! the bottom. Self-contained markup (no scripts, no external references) for the status page.
//! Not here: which probes are recent (the daemon keeps the history).
use std::fmt::Write as _;

/// Width and height of the drawing, in SVG user units.
const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 40.0;
const PAD: f64 = 3.0;

/// The sparkline for `points` (oldest first): `Some(ms)` a delivered probe's latency, `None` a
/// failed one. An empty history draws an empty frame.
pub fn svg(points: &[Option<u64>]) -> String {
    let mut out = format!(
        "<svg class=\"spark\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"latency of the last {} probes\">",
        points.len()
    );
    let max = points.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let step = if points.len() > 1 {
        (WIDTH - 2.0 * PAD) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| PAD + step * i as f64;
    let y = |ms: u64| HEIGHT - PAD - (HEIGHT - 2.0 * PAD) * (ms as f64 / max);
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|ms| format!("{:.1},{:.1}", x(i), y(ms))))
        .collect();
    if !line.is_empty() {
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"1.5\" points=\"{}\"/>",
            line.join(" ")
        );
    }
    for (i, p) in points.iter().enumerate() {
        if p.is_none() {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#c53030\"/>",
                x(i),
                HEIGHT - PAD
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_line_for_latencies_and_dots_for_failures() {
        let s = svg(&[Some(100), Some(400), None, Some(200)]);
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>"), "{s}");
        let points = s
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 3, "{points}");
        // The slowest probe is at the top (smallest y), the failure a red dot at the bottom.
        assert!(points.contains(&format!("{:.1}", PAD)), "{points}");
        assert_eq!(s.matches("<circle").count(), 1);
    }

    #[test]
    fn empty_and_all_failed_histories_are_still_valid_svg() {
        for pts in [vec![], vec![None, None]] {
            let s = svg(&pts);
            assert!(!s.contains("<polyline"));
            assert_eq!(s.matches("<circle").count(), pts.len());
            assert!(s.ends_with("</svg>"));
        }
    }
}
