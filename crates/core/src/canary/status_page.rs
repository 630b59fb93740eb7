//! The canary's status page: each scenario's last verdict, its stages, its findings with their
//! hints, and a latency sparkline. One self-contained HTML document (inline CSS and SVG, no
//! scripts, no external assets); every text from servers or config is escaped.
//! Not here: serving it (the daemon's HTTP edge) or keeping the history.
use std::fmt::Write as _;

use super::alert_state::Health;
use super::sparkline;
use crate::outcome::RunResult;

/// What the page shows of one scenario.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioView<'a> {
    pub name: &'a str,
    /// The last verdict this canary reached, if any since it started.
    pub last: Option<&'a RunResult>,
    /// The last verdict in the store when none was reached since start-up.
    pub stored_status: Option<&'a str>,
    /// Recent latencies, oldest first (`None`: a failed probe).
    pub history: &'a [Option<u64>],
    pub health: Health,
    pub consecutive_failures: u32,
}

/// The whole page. `generated_at` is shown as given (the caller formats the time).
pub fn render(location: &str, generated_at: &str, scenarios: &[ScenarioView<'_>]) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>flowtest canary: {loc}</title><style>{CSS}</style></head><body>\
         <h1>flowtest canary <small>{loc}</small></h1><p class=\"meta\">{at}</p>",
        loc = esc(location),
        at = esc(generated_at),
    );
    if scenarios.is_empty() {
        out.push_str("<p>No scenarios configured.</p>");
    }
    for s in scenarios {
        scenario(&mut out, s);
    }
    out.push_str("</body></html>\n");
    out
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
section{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.8em 0}\
h2{margin:.2em 0;font-size:1.1em}.ok{color:#276749}.bad{color:#c53030}.none{color:#718096}\
table{border-collapse:collapse}td{padding:0 .8em 0 0}.meta,small{color:#718096}\
li .hint{display:block;color:#4a5568}";

fn scenario(out: &mut String, s: &ScenarioView<'_>) {
    let (status, class) = match (s.last, s.stored_status) {
        (Some(r), _) => (
            r.status.as_str(),
            if r.status.is_delivered() { "ok" } else { "bad" },
        ),
        (None, Some(st)) => (st, "none"),
        (None, None) => ("no verdict yet", "none"),
    };
    let _ = write!(
        out,
        "<section><h2>{name} <span class=\"{class}\">{status}</span></h2>",
        name = esc(s.name),
        status = esc(status),
    );
    if s.health == Health::Failing {
        let _ = write!(
            out,
            "<p class=\"bad\">failing: {} consecutive failed probes</p>",
            s.consecutive_failures
        );
    }
    out.push_str(&sparkline::svg(s.history));
    if let Some(r) = s.last {
        last_result(out, r);
    }
    out.push_str("</section>");
}

fn last_result(out: &mut String, r: &RunResult) {
    let total = r
        .total_ms
        .map(|ms| format!("{ms} ms"))
        .unwrap_or_else(|| "-".into());
    let _ = write!(
        out,
        "<p class=\"meta\">probe {} at {}, end to end {}</p>",
        esc(&r.probe_id),
        r.verdict_at.format("%Y-%m-%d %H:%M:%S UTC"),
        esc(&total)
    );
    if !r.stages.is_empty() {
        out.push_str("<table>");
        for st in &r.stages {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{} ms</td></tr>",
                esc(&st.name),
                st.ms
            );
        }
        out.push_str("</table>");
    }
    if !r.findings.is_empty() {
        out.push_str("<ul>");
        for f in &r.findings {
            let _ = write!(
                out,
                "<li><code>{}</code> {}<span class=\"hint\">{}</span></li>",
                f.code.as_str(),
                esc(&f.message),
                esc(&f.hint)
            );
        }
        out.push_str("</ul>");
    }
}

/// HTML text and attribute escaping, with control characters made visible.
fn esc(s: &str) -> String {
    crate::text::escape_markup(&crate::text::escape_control(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::bare_result as result;
    use crate::diagnosis::{Finding, FindingCode};
    use crate::outcome::{Stage, StageSource, Status};

    /// Every opened element is closed in order (void elements aside): the page is well formed.
    fn assert_balanced(html: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let end = rest.find('>').expect("unclosed tag");
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            let self_closing = tag.ends_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if self_closing || name == "meta" {
                continue;
            }
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "in {html}");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn page_shows_verdict_stages_findings_and_sparkline() {
        let mut r = result("lab-inbound", Status::Lost, None);
        r.stages.push(Stage {
            name: "mx".into(),
            ms: 420,
            source: StageSource::Header,
            precision_ms: 1,
            bounded: false,
            detail: None,
        });
        let mut f = Finding::new(
            FindingCode::NextHopTimeout,
            Some("ec2"),
            "<script>x</script>",
        );
        f.hint = "check \"the\" VPN".into();
        r.findings.push(f);
        let ok = result("gmail", Status::Delivered, Some(900));
        let hist = [Some(800), None, Some(900)];
        let views = [
            ScenarioView {
                name: "lab-inbound",
                last: Some(&r),
                stored_status: None,
                history: &hist,
                health: Health::Failing,
                consecutive_failures: 3,
            },
            ScenarioView {
                name: "gmail",
                last: Some(&ok),
                stored_status: None,
                history: &[],
                health: Health::Ok,
                consecutive_failures: 0,
            },
            ScenarioView {
                name: "fresh",
                last: None,
                stored_status: Some("delivered"),
                history: &[],
                health: Health::Ok,
                consecutive_failures: 0,
            },
        ];
        let html = render("on<prem>", "2026-11-29 06:00:00 UTC", &views);
        assert_balanced(&html);
        assert!(html.contains("<span class=\"bad\">lost</span>"), "{html}");
        assert!(html.contains("<span class=\"ok\">delivered</span>"));
        assert!(html.contains("<span class=\"none\">delivered</span>"));
        assert!(html.contains("<td>mx</td><td>420 ms</td>"));
        assert!(html.contains("<code>next_hop_timeout</code> &lt;script&gt;"));
        assert!(html.contains("check &quot;the&quot; VPN"));
        assert!(html.contains("3 consecutive failed probes"));
        assert!(html.contains("on&lt;prem&gt;"));
        assert_eq!(html.matches("<svg ").count(), 3);
        assert!(!html.contains("<script"), "no scripts");
        for external in ["http:", "https:", "src=", "href=", "url("] {
            assert!(!html.contains(external), "external reference {external}");
        }
    }

    #[test]
    fn empty_configuration_renders() {
        let html = render("x", "now", &[]);
        assert_balanced(&html);
        assert!(html.contains("No scenarios configured."));
    }
}
