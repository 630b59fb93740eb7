//! A small SVG writer for the HTML report's charts: elements with escaped text and attributes,
//! coordinates printed compactly, and hover tips as SVG `<title>` children.
//! Not here: scales and ticks (`scale`), axes and legends (`chart`), what is drawn (`charts`).
use std::fmt::Write as _;

/// Text or an attribute value made safe for HTML and SVG alike. Control characters are shown as
/// `\x1b`-style escapes; the five markup characters become entities, so a name such as
/// `<script>` or `"` in a scenario, finding or hint can never open a tag or close an attribute.
pub fn escape(s: &str) -> String {
    crate::text::escape_markup(&crate::text::escape_control_lines(s))
}

/// A coordinate or length: at most two decimals, trailing zeros dropped, never `-0`, and a
/// non-finite value (a division by an empty range upstream) drawn at 0 rather than breaking
/// the document.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let r = (v * 100.0).round() / 100.0;
    let s = format!("{r:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Where a text's anchor point sits on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// One piece of text: where, how anchored, its CSS class, and whether it reads bottom to top
/// (a vertical axis label).
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    pub at: Point,
    pub anchor: Anchor,
    pub class: &'a str,
    pub vertical: bool,
}

/// An SVG document being written, for inline use in an HTML page (whose parser gives `<svg>` its
/// namespace, so no `xmlns` URL appears). Every chart opens with a `<title>` (its accessible name)
/// and a `<desc>`; styling is by CSS class, from the page.
pub struct Svg {
    out: String,
}

impl Svg {
    pub fn new(width: f64, height: f64, title: &str, desc: &str) -> Svg {
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {} {}\" \
             width=\"{}\" height=\"{}\" preserveAspectRatio=\"xMidYMid meet\"><title>{}</title><desc>{}</desc>",
            num(width),
            num(height),
            num(width),
            num(height),
            escape(title),
            escape(desc)
        );
        Svg { out }
    }

    /// The element's closing, with `tip` as its hover title when there is one.
    fn close(&mut self, element: &str, tip: Option<&str>) {
        match tip {
            Some(t) => {
                let _ = write!(self.out, "><title>{}</title></{element}>", escape(t));
            }
            None => self.out.push_str("/>"),
        }
    }

    pub fn rect(&mut self, r: Rect, class: &str, tip: Option<&str>) {
        let _ = write!(
            self.out,
            "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"",
            escape(class),
            num(r.x),
            num(r.y),
            num(r.width.max(0.0)),
            num(r.height.max(0.0))
        );
        self.close("rect", tip);
    }

    pub fn line(&mut self, from: Point, to: Point, class: &str) {
        let _ = write!(
            self.out,
            "<line class=\"{}\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
            escape(class),
            num(from.x),
            num(from.y),
            num(to.x),
            num(to.y)
        );
    }

    pub fn circle(&mut self, c: Point, r: f64, class: &str, tip: Option<&str>) {
        let _ = write!(
            self.out,
            "<circle class=\"{}\" cx=\"{}\" cy=\"{}\" r=\"{}\"",
            escape(class),
            num(c.x),
            num(c.y),
            num(r.max(0.0))
        );
        self.close("circle", tip);
    }

    /// An open line through `points`; nothing for fewer than two.
    pub fn polyline(&mut self, points: &[Point], class: &str) {
        if points.len() < 2 {
            return;
        }
        let _ = write!(
            self.out,
            "<polyline class=\"{}\" points=\"{}\"/>",
            escape(class),
            point_list(points)
        );
    }

    /// A closed, filled shape; nothing for fewer than three points.
    pub fn polygon(&mut self, points: &[Point], class: &str, tip: Option<&str>) {
        if points.len() < 3 {
            return;
        }
        let _ = write!(
            self.out,
            "<polygon class=\"{}\" points=\"{}\"",
            escape(class),
            point_list(points)
        );
        self.close("polygon", tip);
    }

    pub fn text(&mut self, label: Label<'_>, s: &str) {
        let _ = write!(
            self.out,
            "<text class=\"{}\" x=\"{}\" y=\"{}\" text-anchor=\"{}\"",
            escape(label.class),
            num(label.at.x),
            num(label.at.y),
            label.anchor.as_str()
        );
        if label.vertical {
            let _ = write!(
                self.out,
                " transform=\"rotate(-90 {} {})\"",
                num(label.at.x),
                num(label.at.y)
            );
        }
        let _ = write!(self.out, ">{}</text>", escape(s));
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

fn point_list(points: &[Point]) -> String {
    let mut s = String::with_capacity(points.len() * 12);
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{},{}", num(p.x), num(p.y));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain-name_1"), "plain-name_1");
        let shown = escape("a\x1b[2Jb");
        assert!(!shown.contains('\x1b'), "{shown:?}");
        assert!(shown.contains("\\x1b"), "{shown:?}");
    }

    #[test]
    fn numbers_are_compact_and_finite() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(1.0 / 3.0), "0.33");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(-7.456), "-7.46");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(f64::INFINITY), "0");
        assert_eq!(num(1e6), "1000000");
    }

    #[test]
    fn a_document_has_its_title_and_escapes_everything_it_is_given() {
        let mut svg = Svg::new(100.0, 50.0, "t <b>", "d \"q\"");
        svg.rect(
            Rect {
                x: 1.0,
                y: 2.0,
                width: -3.0,
                height: 4.0,
            },
            "bar",
            Some("tip <script>"),
        );
        let label = Label {
            at: Point { x: 5.0, y: 6.0 },
            anchor: Anchor::End,
            class: "axis-label",
            vertical: true,
        };
        svg.text(label, "ms \"<i>\"");
        let s = svg.finish();
        assert!(s.starts_with("<svg class=\"chart\" role=\"img\""), "{s}");
        assert!(s.contains("<title>t &lt;b&gt;</title><desc>d &quot;q&quot;</desc>"));
        assert!(s.contains(
            "<rect class=\"bar\" x=\"1\" y=\"2\" width=\"0\" height=\"4\"><title>tip &lt;script&gt;</title></rect>"
        ));
        assert!(s.contains(
            "text-anchor=\"end\" transform=\"rotate(-90 5 6)\">ms &quot;&lt;i&gt;&quot;</text>"
        ));
        assert!(s.ends_with("</svg>"));
        assert!(!s.contains("<script") && !s.contains("<i>"));
    }

    #[test]
    fn too_few_points_draw_nothing() {
        let mut svg = Svg::new(10.0, 10.0, "t", "d");
        let p = Point { x: 1.0, y: 1.0 };
        svg.polyline(&[], "l");
        svg.polyline(&[p], "l");
        svg.polygon(&[p, p], "a", None);
        let s = svg.finish();
        assert!(!s.contains("<polyline") && !s.contains("<polygon"), "{s}");
        let mut svg = Svg::new(10.0, 10.0, "t", "d");
        svg.polyline(
            &[
                p,
                Point {
                    x: 2.5,
                    y: f64::NAN,
                },
            ],
            "l",
        );
        assert!(svg.finish().contains("points=\"1,1 2.5,0\""));
    }
}
