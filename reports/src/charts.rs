//! Charts as inline SVG, drawn with plotters' SVG backend.
//!
//! plotters is built without a font backend: its SVG backend writes `<text>` elements that
//! the browser lays out, so no system font library is needed to build and class names in
//! any script stay text. Legends and titles are HTML around the SVG (see the templates),
//! where long and non-Latin names wrap properly.

use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;

use crate::error::{ReportError, Result};

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Line colour.
    pub color: [u8; 3],
    /// (x, y) points; need not be sorted.
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (e.g. train loss beside val loss).
    pub dashed: bool,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Name for error messages.
    pub id: String,
    /// Axis captions.
    pub x_desc: String,
    /// Axis captions.
    pub y_desc: String,
    /// The lines.
    pub series: Vec<Series>,
    /// A vertical marker (the best epoch).
    pub marker_x: Option<f64>,
    /// Fixed y range; computed from the data when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic x axis (lr-find).
    pub log_x: bool,
    /// Format y labels in scientific notation (learning rates).
    pub sci_y: bool,
}

/// Size of every chart, in SVG user units; the page scales it to its column.
pub const SIZE: (u32, u32) = (640, 300);

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

fn err(id: &str) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Chart {
        chart: id.to_string(),
        message,
    }
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || v.abs() < 0.01 {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Make plotters' SVG embeddable inline: drop the namespace URL (inline SVG in HTML needs
/// none, and the page must reference no URL at all), and let CSS size it.
fn finish(svg: String) -> String {
    let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    let svg = svg.replacen(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "", 1);
    svg.replacen(
        "<svg ",
        "<svg class=\"chart\" role=\"img\" preserveAspectRatio=\"xMidYMid meet\" ",
        1,
    )
}

fn y_extent(series: &[Series]) -> (f64, f64) {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let lo = if lo >= 0.0 { 0.0 } else { lo * 1.05 };
    let hi = if hi <= lo { lo + 1.0 } else { hi * 1.05 };
    (lo, hi)
}

/// Draw a line chart; `None` when no series has a point.
pub fn line_chart(c: &LineChart) -> Result<Option<String>> {
    if c.series.iter().all(|s| s.points.is_empty()) {
        return Ok(None);
    }
    let xs = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if x1 <= x0 {
        if c.log_x {
            x0 /= 2.0;
            x1 *= 2.0;
        } else {
            x0 -= 1.0;
            x1 += 1.0;
        }
    }
    let (y0, y1) = c.y_range.unwrap_or_else(|| y_extent(&c.series));
    let mut svg = String::new();
    {
        let e = err(&c.id);
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let builder = |root| {
            let mut b = ChartBuilder::on(root);
            b.margin(12)
                .margin_right(22)
                .x_label_area_size(48)
                .y_label_area_size(76);
            b
        };
        let y_fmt = |v: &f64| {
            if c.sci_y && *v != 0.0 {
                format!("{v:.0e}")
            } else {
                fmt_num(*v)
            }
        };
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(c.x_desc.as_str())
                    .y_desc(c.y_desc.as_str())
                    .label_style(("sans-serif", 19).into_font().color(&RGBColor(60, 60, 60)))
                    .axis_desc_style(("sans-serif", 19))
                    .light_line_style(RGBColor(238, 238, 238))
                    .bold_line_style(RGBColor(220, 220, 220))
                    .y_label_formatter(&y_fmt)
                    .x_label_formatter(&|v| fmt_num(*v))
                    .x_labels(8)
                    .y_labels(6)
                    .draw()
                    .map_err(|x| e(x.to_string()))?;
                if let Some(mx) = c.marker_x {
                    chart
                        .draw_series(DashedLineSeries::new(
                            vec![(mx, y0), (mx, y1)],
                            5,
                            4,
                            RGBColor(90, 90, 90).stroke_width(1),
                        ))
                        .map_err(|x| e(x.to_string()))?;
                }
                for s in &c.series {
                    let mut pts = s.points.clone();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let style = rgb(s.color).stroke_width(2);
                    if s.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                            .map_err(|x| e(x.to_string()))?;
                    } else {
                        chart
                            .draw_series(LineSeries::new(pts.clone(), style))
                            .map_err(|x| e(x.to_string()))?;
                    }
                    if pts.len() <= 60 || pts.len() == 1 {
                        chart
                            .draw_series(
                                pts.iter()
                                    .map(|p| Circle::new(*p, 2, rgb(s.color).filled())),
                            )
                            .map_err(|x| e(x.to_string()))?;
                    }
                    if let Some(mx) = c.marker_x {
                        if let Some(p) = pts.iter().find(|p| p.0 == mx) {
                            chart
                                .draw_series(std::iter::once(Circle::new(
                                    *p,
                                    5,
                                    rgb(s.color).stroke_width(2),
                                )))
                                .map_err(|x| e(x.to_string()))?;
                        }
                    }
                }
            }};
        }
        if c.log_x {
            body!(builder(&root)
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(|x| e(x.to_string()))?);
        } else {
            body!(builder(&root)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|x| e(x.to_string()))?);
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(Some(finish(svg)))
}

/// One group of bars (one run, or one class) in a grouped bar chart.
#[derive(Debug, Clone)]
pub struct BarGroup {
    /// Legend name.
    pub name: String,
    /// Bar colour.
    pub color: [u8; 3],
    /// One value per category; `None` draws nothing.
    pub values: Vec<Option<f64>>,
}

/// Draw a grouped bar chart: categories along x, one bar per group in each.
pub fn bar_chart(
    id: &str,
    categories: &[String],
    groups: &[BarGroup],
    y_desc: &str,
    y_range: Option<(f64, f64)>,
) -> Result<Option<String>> {
    let n = categories.len();
    if n == 0 || groups.iter().all(|g| g.values.iter().all(Option::is_none)) {
        return Ok(None);
    }
    let (y0, y1) = y_range.unwrap_or_else(|| {
        let hi = groups
            .iter()
            .flat_map(|g| g.values.iter().flatten())
            .fold(0.0f64, |a, b| a.max(*b));
        (0.0, if hi > 0.0 { hi * 1.08 } else { 1.0 })
    });
    // Labels stay horizontal (rotated text laid out without font metrics lands badly) and
    // are shortened to fit their category; the HTML table beside the chart has them whole.
    let max_chars = (52 / n).clamp(3, 16);
    let mut svg = String::new();
    {
        let e = err(id);
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        // Integer x units (100 per category): plotters formats integer key points, and the
        // bars of a group sit at fixed offsets inside their category.
        const U: i32 = 100;
        let keys: Vec<i32> = (0..n as i32).map(|i| i * U + U / 2).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d((0..n as i32 * U).with_key_points(keys), y0..y1)
            .map_err(|x| e(x.to_string()))?;
        let label = |v: &i32| {
            let i = (v - U / 2) / U;
            if (v - U / 2) % U == 0 && i >= 0 && (i as usize) < n {
                let s = &categories[i as usize];
                if s.chars().count() > max_chars {
                    format!("{}…", s.chars().take(max_chars - 1).collect::<String>())
                } else {
                    s.clone()
                }
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .label_style(("sans-serif", 19).into_font().color(&RGBColor(60, 60, 60)))
            .axis_desc_style(("sans-serif", 19))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(220, 220, 220))
            .x_label_formatter(&label)
            .y_label_formatter(&|v| fmt_num(*v))
            .y_labels(6)
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let g = groups.len() as i32;
        let width = (U * 8 / 10 / g).max(1);
        for (gi, group) in groups.iter().enumerate() {
            let bars = group.values.iter().enumerate().filter_map(|(ci, v)| {
                let v = (*v)?;
                let left = ci as i32 * U + U / 10 + gi as i32 * width;
                let gap = (width / 10).max(if width > 2 { 1 } else { 0 });
                Some(Rectangle::new(
                    [(left + gap, y0), (left + width - gap, v.clamp(y0, y1))],
                    rgb(group.color).filled(),
                ))
            });
            chart.draw_series(bars).map_err(|x| e(x.to_string()))?;
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(Some(finish(svg)))
}

/// A qualitative palette for runs (Tableau 10), distinguishable in print.
pub const RUN_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// A colour for class `k` that is visible on white: the class colour unless it is (near)
/// black or white, else a palette colour.
pub fn visible_class_color(color: [u8; 3], k: usize) -> [u8; 3] {
    let sum: u32 = color.iter().map(|&c| c as u32).sum();
    if !(90..=690).contains(&sum) {
        RUN_COLORS[k % RUN_COLORS.len()]
    } else {
        color
    }
}

/// `#rrggbb`.
pub fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}
