//! A latency-percentile chart as a standalone SVG: one line per measured
//! series (a server at one rate), percentiles on the x axis, milliseconds
//! on a logarithmic y axis, so a 5 ms and a 5 s line fit one picture.

use std::fmt::Write as _;

use crate::stats::Percentiles;

/// One line of the chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// The line's colour (any SVG colour).
    pub color: String,
    /// Whether the line is dashed (the peer's lines, in the report).
    pub dashed: bool,
    /// The latencies it plots.
    pub percentiles: Percentiles,
}

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 310.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// The chart of `series` under `title`, as an SVG document.
pub fn latency_svg(title: &str, series: &[Series]) -> String {
    let labels = ["p50", "p90", "p99", "p99.9", "max"];
    let values = |p: &Percentiles| [p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms];
    let all = series.iter().flat_map(|line| values(&line.percentiles));
    let (low, high) = all.fold((f64::MAX, f64::MIN), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    let (low, high) = if low > high { (1.0, 10.0) } else { (low, high) };
    // Whole decades around the data.
    let first_decade = low.max(0.01).log10().floor() as i32;
    let last_decade = (high.max(0.01).log10().ceil() as i32).max(first_decade + 1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |index: usize| LEFT + plot_w * index as f64 / (labels.len() - 1) as f64;
    let y = |ms: f64| {
        let decades = f64::from(last_decade - first_decade);
        let position =
            (ms.max(10f64.powi(first_decade)).log10() - f64::from(first_decade)) / decades;
        TOP + plot_h * (1.0 - position)
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    for decade in first_decade..=last_decade {
        let ms = 10f64.powi(decade);
        let at = y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            at + 4.0,
            milliseconds(ms)
        );
    }
    for (index, label) in labels.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            x(index),
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile of last-subscriber latency</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">ms (log scale)</text>"#,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    for (rank, line) in series.iter().enumerate() {
        let points: Vec<String> = values(&line.percentiles)
            .iter()
            .enumerate()
            .map(|(index, &ms)| format!("{:.1},{:.1}", x(index), y(ms)))
            .collect();
        let dash = if line.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let color = escape(&line.color);
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            points.join(" ")
        );
        for point in &points {
            let (px, py) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
        }
        let legend_y = TOP + 10.0 + 22.0 * rank as f64;
        let legend_x = LEFT + plot_w + 16.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
            legend_x + 24.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            legend_x + 30.0,
            legend_y + 4.0,
            escape(&line.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn milliseconds(ms: f64) -> String {
    match ms {
        ms if ms >= 1000.0 => format!("{} s", ms / 1000.0),
        ms if ms >= 1.0 => format!("{ms} ms"),
        ms => format!("{ms:.2} ms"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percentiles(base: f64) -> Percentiles {
        Percentiles {
            count: 100,
            p50_ms: base,
            p90_ms: base * 2.0,
            p99_ms: base * 4.0,
            p999_ms: base * 5.0,
            max_ms: base * 6.0,
        }
    }

    #[test]
    fn every_series_is_a_line_with_a_legend_on_a_log_axis() {
        let series = [
            Series {
                label: "ours <100/s>".into(),
                color: "#1f77b4".into(),
                dashed: false,
                percentiles: percentiles(2.0),
            },
            Series {
                label: "peer".into(),
                color: "#d62728".into(),
                dashed: true,
                percentiles: percentiles(3000.0),
            },
        ];
        let svg = latency_svg("fan-out & latency", &series);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 10);
        assert!(svg.contains("ours &lt;100/s&gt;"));
        assert!(svg.contains("fan-out &amp; latency"));
        assert!(svg.contains("stroke-dasharray"));
        // Decades from 1 ms (below 2 ms) to 100 s (above 18 s).
        for tick in [
            ">1 ms<", ">10 ms<", ">100 ms<", ">1 s<", ">10 s<", ">100 s<",
        ] {
            assert!(svg.contains(tick), "missing tick {tick}");
        }
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn a_higher_latency_is_drawn_higher() {
        let svg = latency_svg(
            "t",
            &[Series {
                label: "a".into(),
                color: "black".into(),
                dashed: false,
                percentiles: percentiles(1.0),
            }],
        );
        let ys: Vec<f64> = svg
            .lines()
            .filter(|line| line.starts_with("<circle"))
            .filter_map(|line| line.split("cy=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(ys.len(), 5);
        assert!(ys.windows(2).all(|pair| pair[1] < pair[0]), "{ys:?}");
    }
}
