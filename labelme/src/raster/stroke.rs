//! `ImageDraw.line`: a polyline of wide segments, with `joint="curve"` pie slices and gap
//! fillers at the bends (the logic lives in Pillow's Python code, reproduced here in the
//! same `f64` arithmetic before its coordinates are truncated).

use super::{pieslice, trunc, wide_line, Sink};

/// Python's float `%`: the result takes the sign of the divisor.
fn py_mod(x: f64, m: f64) -> f64 {
    let r = x % m;
    if r != 0.0 {
        if (m < 0.0) != (r < 0.0) {
            r + m
        } else {
            r
        }
    } else {
        0.0f64.copysign(m)
    }
}

fn degrees(rad: f64) -> f64 {
    rad * (180.0 / std::f64::consts::PI)
}

fn radians(deg: f64) -> f64 {
    deg * (std::f64::consts::PI / 180.0)
}

/// `ImageDraw.line(points, width=width, joint=...)` with float points: each segment as a
/// wide line on truncated coordinates, and with `curve` (and `width > 4`) a pie slice at
/// every bend, plus 3-pixel gap fillers when `width > 8`.
pub fn line<S: Sink>(sink: &mut S, height: u32, points: &[(f64, f64)], width: i32, curve: bool) {
    if width == 0 {
        return;
    }
    if width == 1 {
        // labelme never draws 1-pixel lines; Pillow uses Bresenham there
        thin_line(sink, points);
        return;
    }
    for seg in points.windows(2) {
        let (p, q) = (seg[0], seg[1]);
        wide_line(
            sink,
            height,
            trunc(p.0),
            trunc(p.1),
            trunc(q.0),
            trunc(q.1),
            width,
        );
    }
    if !(curve && width > 4) {
        return;
    }
    let w = width as f64;
    for i in 1..points.len().saturating_sub(1) {
        let point = points[i];
        let angle = |start: (f64, f64), end: (f64, f64)| {
            py_mod(degrees((end.0 - start.0).atan2(start.1 - end.1)), 360.0)
        };
        let angles = [angle(points[i - 1], point), angle(point, points[i + 1])];
        if angles[0] == angles[1] {
            // a straight line: no joint
            continue;
        }
        let coord_at_angle = |coord: (f64, f64), angle: f64| {
            let angle = angle - 90.0;
            let distance = w / 2.0 - 1.0;
            let step = |p: f64, p_d: f64| p + if p_d > 0.0 { p_d.floor() } else { p_d.ceil() };
            (
                step(coord.0, distance * radians(angle).cos()),
                step(coord.1, distance * radians(angle).sin()),
            )
        };
        let flipped = (angles[1] > angles[0] && angles[1] - 180.0 > angles[0])
            || (angles[1] < angles[0] && angles[1] + 180.0 > angles[0]);
        let (c0x, c0y) = (point.0 - w / 2.0 + 1.0, point.1 - w / 2.0 + 1.0);
        let (c1x, c1y) = (point.0 + w / 2.0 - 1.0, point.1 + w / 2.0 - 1.0);
        let (start, end) = if flipped {
            (angles[1] + 90.0, angles[0] + 90.0)
        } else {
            (angles[0] - 90.0, angles[1] - 90.0)
        };
        // Pillow's binding parses the angles as C floats
        pieslice(
            sink,
            trunc(c0x),
            trunc(c0y),
            trunc(c1x),
            trunc(c1y),
            (start - 90.0) as f32,
            (end - 90.0) as f32,
        );
        if width > 8 {
            // Pillow: "Cover potential gaps between the line and the joint"
            let side = if flipped { 90.0 } else { -90.0 };
            let gap = [
                coord_at_angle(point, angles[0] + side),
                point,
                coord_at_angle(point, angles[1] + side),
            ];
            for seg in gap.windows(2) {
                let (p, q) = (seg[0], seg[1]);
                wide_line(
                    sink,
                    height,
                    trunc(p.0),
                    trunc(p.1),
                    trunc(q.0),
                    trunc(q.1),
                    3,
                );
            }
        }
    }
}

/// Pillow's 1-pixel `draw_lines`: Bresenham segments, each without its last point, then the
/// last point. Only for completeness; labelme's lines are 10 wide.
fn thin_line<S: Sink>(sink: &mut S, points: &[(f64, f64)]) {
    for seg in points.windows(2) {
        bresenham(
            sink,
            trunc(seg[0].0),
            trunc(seg[0].1),
            trunc(seg[1].0),
            trunc(seg[1].1),
        );
    }
    if points.len() >= 2 {
        let last = points[points.len() - 1];
        sink.hline(trunc(last.0), trunc(last.1), trunc(last.0));
    }
}

/// Pillow's `line()` in `Draw.c`.
fn bresenham<S: Sink>(sink: &mut S, mut x0: i32, mut y0: i32, x1: i32, y1: i32) {
    let mut dy = y1 - y0;
    let ys;
    if dy < 0 {
        dy = -dy;
        ys = -1;
    } else if dy == 0 {
        if x1 > x0 {
            sink.hline(x0, y0, x1 - 1);
        } else if x0 > x1 {
            sink.hline(x1 + 1, y0, x0);
        }
        return;
    } else {
        ys = 1;
    }
    let mut dx = x1 - x0;
    let xs = if dx < 0 {
        dx = -dx;
        -1
    } else {
        1
    };
    if dx == 0 {
        for _ in 0..dy {
            sink.hline(x0, y0, x0);
            y0 += ys;
        }
    } else if dx > dy {
        let n = dx;
        dy += dy;
        let mut e = dy - dx;
        dx += dx;
        for _ in 0..n {
            sink.hline(x0, y0, x0);
            if e >= 0 {
                y0 += ys;
                e -= dx;
            }
            e += dy;
            x0 += xs;
        }
    } else {
        let n = dy;
        dx += dx;
        let mut e = dx - dy;
        dy += dy;
        for _ in 0..n {
            sink.hline(x0, y0, x0);
            if e >= 0 {
                x0 += xs;
                e -= dy;
            }
            e += dx;
            y0 += ys;
        }
    }
}
