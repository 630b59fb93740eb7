use super::fixture::{self, incident, HOSTILE};
use super::*;

/// Every element opened is closed, in order; void elements (`meta`) and `/>` stand alone. Text
/// holds no raw `<` (it would be escaped), so every `<` starts a tag.
fn assert_well_nested(html: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html.strip_prefix("<!DOCTYPE html>").expect("doctype");
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("a tag is closed");
        let tag = &rest[..end];
        if let Some(closing) = tag.strip_prefix('/') {
            let top = open
                .pop()
                .unwrap_or_else(|| panic!("</{closing}> closes nothing"));
            assert_eq!(top, closing, "</{closing}> closes <{top}>");
        } else if !tag.ends_with('/') {
            let element = tag.split([' ', '\n']).next().unwrap_or(tag);
            if element != "meta" {
                open.push(element);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "left open: {open:?}");
}

/// No reference the browser would fetch: no URL scheme, no `src`, no stylesheet link or import.
fn assert_self_contained(html: &str) {
    for bad in [
        "http://", "https://", "//cdn", " src=", "<link", "<script", "@import", "url(", "<img",
        "<iframe", "<object", "<embed",
    ] {
        assert!(!html.contains(bad), "the page contains {bad:?}");
    }
}

#[test]
fn the_page_has_every_chart_with_its_title_and_axes() {
    let r = fixture::report(vec![
        fixture::scenario("inbound"),
        fixture::scenario("outbound"),
    ]);
    let html = render(&r);
    assert_well_nested(&html);
    assert_self_contained(&html);
    for title in [
        "End-to-end latency per day, outbound at eu-west",
        "Availability per day, inbound at eu-west",
        "Where the time goes, outbound at eu-west",
        "Incidents, inbound at eu-west",
    ] {
        assert!(
            html.contains(&format!("<title>{title}</title>")),
            "no chart {title:?}"
        );
    }
    for axis in [
        "end-to-end latency",
        "day (UTC)",
        "availability",
        "percentile",
        "latency, stacked by stage",
        "stopped at",
        "time (UTC)",
    ] {
        assert!(
            html.contains(&format!(">{axis}</text>")),
            "no axis {axis:?}"
        );
    }
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 8);
    assert_eq!(html.matches("class=\"axis-title\"").count(), 16);
    assert_eq!(html.matches("<section class=\"scenario\"").count(), 2);
    assert!(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;\">"));
    assert!(html.contains("@media print"));
}

#[test]
fn the_summary_shows_the_objective_the_undecided_apart_and_the_method() {
    let r = fixture::report(vec![fixture::scenario("inbound")]);
    let html = render(&r);
    assert!(html.contains("percentiles: <b>nearest-rank</b> over the stored values"));
    assert!(
        html.contains("<th>availability</th><td class=\"n bad\">97.20 %</td>"),
        "{html}"
    );
    assert!(html.contains("<th>objective</th><td class=\"n \">99.90 %</td>"));
    assert!(html.contains("<th>error budget left</th><td class=\"n bad\">-2700.00 %</td>"));
    assert!(html.contains("<th>late (arrived after the timeout)</th><td class=\"n \">11</td>"));
    assert!(html.contains("<th>lost (never arrived)</th><td class=\"n \">180</td>"));
    assert!(html.contains("not decided: counted in neither direction"));
    assert!(html.contains("<th>interrupted</th><td class=\"n \">2</td>"));
    assert!(html.contains("<th>flowtest errors</th><td class=\"n \">1</td>"));
    assert!(html.contains("<th>p95</th><td class=\"n \">1.2 s</td>"));
    assert!(
        html.contains("<td>tailscale-relay</td><td class=\"n\">100</td><td class=\"n\">60 ms</td>")
    );
    assert!(html.contains("<span class=\"hint\">hint: check the Tailscale link</span>"));
    assert!(html.contains(
        "<td>2026-11-06</td><td class=\"n\">60</td><td class=\"n\">0</td><td class=\"n\">60</td>"
    ));
    assert!(html.contains("<a href=\"#s0\">inbound</a>"));
}

#[test]
fn untrusted_text_cannot_inject_markup_or_references() {
    let hostile_link = format!("{HOSTILE} see https://evil.example/x.js");
    let mut s = fixture::scenario(HOSTILE);
    s.location = HOSTILE.into();
    s.stages[1].name = HOSTILE.into();
    s.incidents = vec![incident(
        "2026-11-04T10:00:00Z",
        None,
        Some(HOSTILE),
        &hostile_link,
    )];
    s.incidents[0].findings[0].message = HOSTILE.into();
    s.incidents[0].statuses = vec![HOSTILE.into()];
    let mut r = fixture::report(vec![s]);
    r.time_zone = HOSTILE.into();
    let html = render(&r);
    assert_well_nested(&html);
    assert!(!html.contains("<script") && !html.contains("<img"));
    assert!(html.contains(
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&quot;&#39;&amp;&lt;img src=x"
    ));
    // The URL is there as text (a hint may name a page to read), never as something to load.
    let escaped_url = "see https://evil.example/x.js";
    let outside_text = html.replace(escaped_url, "");
    assert_self_contained(&outside_text.replace(" src=x", ""));
    assert!(html.contains(escaped_url));
}

#[test]
fn an_empty_report_is_still_a_page() {
    let html = render(&fixture::report(Vec::new()));
    assert_well_nested(&html);
    assert_self_contained(&html);
    assert!(html.contains("No probe was recorded in this window."));
    assert!(!html.contains("<svg"));
    assert!(html.contains("2026-11-01 00:00 UTC – 2026-11-08 00:00 UTC"));
}
