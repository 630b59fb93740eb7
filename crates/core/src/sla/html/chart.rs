//! What every chart of the report shares: the plot area inside its margins, labelled axes with
//! tick marks and grid lines, a legend, and the note a chart shows when it has nothing to plot.
//! Not here: the charts themselves (`charts`), the SVG syntax (`svg`).
use super::svg::{Anchor, Label, Point, Rect, Svg};

/// A chart's size and its plot area (the margins hold the axes and their labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub plot: Rect,
}

impl Frame {
    /// A chart `width` wide around a plot `plot_height` high, with `left` for the y axis's
    /// labels and `bottom` for the x axis's (and a legend).
    pub fn new(width: f64, plot_height: f64, left: f64, bottom: f64) -> Frame {
        let (top, right) = (14.0, 18.0);
        let plot_height = plot_height.max(1.0);
        Frame {
            width,
            height: top + plot_height + bottom,
            plot: Rect {
                x: left,
                y: top,
                width: (width - left - right).max(1.0),
                height: plot_height,
            },
        }
    }

    pub fn left(&self) -> f64 {
        self.plot.x
    }

    pub fn right(&self) -> f64 {
        self.plot.x + self.plot.width
    }

    pub fn top(&self) -> f64 {
        self.plot.y
    }

    pub fn bottom(&self) -> f64 {
        self.plot.y + self.plot.height
    }
}

/// A labelled position on an axis, in pixels along it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub px: f64,
    pub label: String,
}

const TICK_LEN: f64 = 5.0;

/// The x axis along the plot's bottom: its line, tick marks and labels, and `title` centred
/// below them (a legend may follow from [`LEGEND_BELOW`] under the plot).
pub fn x_axis(svg: &mut Svg, frame: &Frame, ticks: &[Tick], title: &str) {
    let y = frame.bottom();
    svg.line(
        Point { x: frame.left(), y },
        Point {
            x: frame.right(),
            y,
        },
        "axis",
    );
    for t in ticks {
        svg.line(
            Point { x: t.px, y },
            Point {
                x: t.px,
                y: y + TICK_LEN,
            },
            "axis",
        );
        let at = Point {
            x: t.px,
            y: y + TICK_LEN + 12.0,
        };
        svg.text(label(at, Anchor::Middle, "tick"), &t.label);
    }
    let at = Point {
        x: frame.left() + frame.plot.width / 2.0,
        y: y + X_TITLE_BELOW,
    };
    svg.text(label(at, Anchor::Middle, "axis-title"), title);
}

/// How far below the plot the x axis's title sits, and where a legend under it may start.
const X_TITLE_BELOW: f64 = 36.0;
pub const LEGEND_BELOW: f64 = 46.0;

/// The y axis along the plot's left: its line, tick marks, labels and a light grid line across
/// the plot at each tick, and `title` written upwards along the chart's left edge.
pub fn y_axis(svg: &mut Svg, frame: &Frame, ticks: &[Tick], title: &str) {
    let x = frame.left();
    for t in ticks {
        svg.line(
            Point { x, y: t.px },
            Point {
                x: frame.right(),
                y: t.px,
            },
            "grid",
        );
        svg.line(
            Point {
                x: x - TICK_LEN,
                y: t.px,
            },
            Point { x, y: t.px },
            "axis",
        );
        let at = Point {
            x: x - TICK_LEN - 3.0,
            y: t.px + 4.0,
        };
        svg.text(label(at, Anchor::End, "tick"), &t.label);
    }
    svg.line(
        Point { x, y: frame.top() },
        Point {
            x,
            y: frame.bottom(),
        },
        "axis",
    );
    let at = Point {
        x: 13.0,
        y: frame.top() + frame.plot.height / 2.0,
    };
    svg.text(
        Label {
            vertical: true,
            ..label(at, Anchor::Middle, "axis-title")
        },
        title,
    );
}

fn label(at: Point, anchor: Anchor, class: &str) -> Label<'_> {
    Label {
        at,
        anchor,
        class,
        vertical: false,
    }
}

/// One legend entry: a swatch in `class`'s colour and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendItem {
    pub class: String,
    pub text: String,
}

/// Legend entries are cut to this many characters (the full text is in the hover tip).
const LEGEND_CHARS: usize = 22;
/// A legend line's height, and a rough width per character of its 11 px text.
const LEGEND_LINE: f64 = 16.0;
const CHAR_WIDTH: f64 = 6.2;

/// How many lines `items` take when laid out from `left` to `right`.
pub fn legend_lines(items: &[LegendItem], left: f64, right: f64) -> usize {
    legend_layout(items, left, right)
        .last()
        .map_or(0, |p| ((p.y / LEGEND_LINE) as usize) + 1)
}

/// Each item's offset from the legend's origin, wrapping at `right`.
fn legend_layout(items: &[LegendItem], left: f64, right: f64) -> Vec<Point> {
    let mut at = Point { x: 0.0, y: 0.0 };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let w =
            16.0 + shortened(&item.text, LEGEND_CHARS).chars().count() as f64 * CHAR_WIDTH + 14.0;
        if at.x > 0.0 && left + at.x + w > right {
            at = Point {
                x: 0.0,
                y: at.y + LEGEND_LINE,
            };
        }
        out.push(at);
        at.x += w;
    }
    out
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
pub fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The legend, from `origin` (its first line's top left), wrapping before `right`.
pub fn legend(svg: &mut Svg, origin: Point, right: f64, items: &[LegendItem]) {
    for (item, off) in items.iter().zip(legend_layout(items, origin.x, right)) {
        let (x, y) = (origin.x + off.x, origin.y + off.y);
        let swatch = Rect {
            x,
            y: y + 2.0,
            width: 11.0,
            height: 11.0,
        };
        svg.rect(swatch, &format!("swatch {}", item.class), Some(&item.text));
        let at = Point {
            x: x + 16.0,
            y: y + 11.5,
        };
        svg.text(
            label(at, Anchor::Start, "legend"),
            &shortened(&item.text, LEGEND_CHARS),
        );
    }
}

/// A line of text in the middle of the plot, for a chart with nothing to draw.
pub fn note(svg: &mut Svg, frame: &Frame, text: &str) {
    let at = Point {
        x: frame.left() + frame.plot.width / 2.0,
        y: frame.top() + frame.plot.height / 2.0,
    };
    svg.text(label(at, Anchor::Middle, "note"), text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> LegendItem {
        LegendItem {
            class: "s0".into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_frame_keeps_its_margins() {
        let f = Frame::new(560.0, 200.0, 64.0, 44.0);
        assert_eq!((f.left(), f.top()), (64.0, 14.0));
        assert_eq!((f.right(), f.bottom()), (542.0, 214.0));
        assert_eq!(f.height, 258.0);
        // Margins wider than the chart leave a plot of at least a pixel, never a negative one.
        let f = Frame::new(10.0, -5.0, 64.0, 44.0);
        assert!(f.plot.width >= 1.0 && f.plot.height >= 1.0);
    }

    #[test]
    fn axes_write_ticks_and_titles() {
        let f = Frame::new(300.0, 150.0, 50.0, 40.0);
        let mut svg = Svg::new(300.0, 200.0, "t", "d");
        let ticks = [
            Tick {
                px: 60.0,
                label: "Nov 1".into(),
            },
            Tick {
                px: 120.0,
                label: "Nov <2>".into(),
            },
        ];
        x_axis(&mut svg, &f, &ticks, "day (UTC)");
        y_axis(&mut svg, &f, &ticks, "latency");
        let s = svg.finish();
        assert_eq!(s.matches("class=\"tick\"").count(), 4, "{s}");
        assert!(s.contains(">Nov &lt;2&gt;</text>"));
        assert!(s.contains(">day (UTC)</text>"));
        assert!(s.contains("transform=\"rotate(-90"), "{s}");
        assert!(s.contains(">latency</text>"));
        assert_eq!(s.matches("class=\"grid\"").count(), 2);
    }

    #[test]
    fn legends_wrap_and_shorten_long_names() {
        let items: Vec<LegendItem> = (0..6).map(|i| item(&format!("stage-{i}"))).collect();
        assert_eq!(legend_lines(&items, 0.0, 1000.0), 1);
        assert!(legend_lines(&items, 0.0, 200.0) >= 3);
        assert_eq!(legend_lines(&[], 0.0, 200.0), 0);
        let long = "x".repeat(80);
        let mut svg = Svg::new(300.0, 100.0, "t", "d");
        legend(&mut svg, Point { x: 0.0, y: 0.0 }, 300.0, &[item(&long)]);
        let s = svg.finish();
        assert!(s.contains(&format!("<title>{long}</title>")), "{s}");
        assert!(s.contains(&format!(">{}…</text>", "x".repeat(LEGEND_CHARS - 1))));
    }
}
