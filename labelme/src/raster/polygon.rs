//! Pillow's scan-line polygon filler (`polygon_generic` in `Draw.c`), the polygons built on
//! it (filled polygons, wide lines) and filled rectangles.

use super::{round_down_f32, round_down_f64, round_up_f32, round_up_f64, Sink};

/// Pillow's `Edge`: integer end points, `f32` inverse slope.
#[derive(Debug, Clone, Copy)]
pub(super) struct Edge {
    x0: i32,
    y0: i32,
    xmin: i32,
    ymin: i32,
    xmax: i32,
    ymax: i32,
    dx: f32,
}

impl Edge {
    pub(super) fn new(x0: i32, y0: i32, x1: i32, y1: i32) -> Edge {
        let (xmin, xmax) = if x0 <= x1 { (x0, x1) } else { (x1, x0) };
        let (ymin, ymax) = if y0 <= y1 { (y0, y1) } else { (y1, y0) };
        // `(float)(x1 - x0) / (y1 - y0)`: an f32 division, as in C
        let dx = if y0 == y1 {
            0.0
        } else {
            (x1 - x0) as f32 / (y1 - y0) as f32
        };
        Edge {
            x0,
            y0,
            xmin,
            ymin,
            xmax,
            ymax,
            dx,
        }
    }

    /// x of this edge's line at row `y`, in Pillow's `f32` arithmetic.
    fn x_at(&self, y: i32) -> f32 {
        (y - self.y0) as f32 * self.dx + self.x0 as f32
    }
}

/// Fill the polygon with integer vertices `xy` (Pillow's `ImagingDrawPolygon` with `fill`).
pub fn polygon<S: Sink>(sink: &mut S, height: u32, xy: &[(i32, i32)]) {
    let count = xy.len();
    if count == 0 {
        return;
    }
    let mut e: Vec<Edge> = Vec::with_capacity(count);
    let mut i = 0;
    while i + 1 < count {
        let (x0, y0) = xy[i];
        let (x1, y1) = xy[i + 1];
        if y0 == y1 && i != 0 && y0 == xy[i - 1].1 {
            // a horizontal edge right after another one: Pillow extends the previous edge
            let prev_x = xy[i - 1].0;
            let last = e.last_mut().expect("an edge was added at i = 0");
            if x1 > x0 && x0 > prev_x {
                last.xmax = x1;
                i += 1;
                continue;
            } else if x1 < x0 && x0 < prev_x {
                last.xmin = x1;
                i += 1;
                continue;
            }
        }
        e.push(Edge::new(x0, y0, x1, y1));
        i += 1;
    }
    let last = xy[count - 1];
    if last != xy[0] {
        e.push(Edge::new(last.0, last.1, xy[0].0, xy[0].1));
    }
    polygon_generic(sink, height, &e);
}

/// Pillow's `polygon_generic` for 8-bit images: horizontal edges drawn as lines, the rest
/// scanned row by row with its "consistent polygon" and "discontiguous corner" rules.
pub(super) fn polygon_generic<S: Sink>(sink: &mut S, height: u32, e: &[Edge]) {
    if e.is_empty() {
        return;
    }
    let ysize = height as i32;
    let mut ymin = ysize - 1;
    let mut ymax = 0;
    let mut table: Vec<&Edge> = Vec::with_capacity(e.len());
    for edge in e {
        ymin = ymin.min(edge.ymin);
        ymax = ymax.max(edge.ymax);
        if edge.ymin == edge.ymax {
            sink.hline(edge.xmin, edge.ymin, edge.xmax);
            continue;
        }
        table.push(edge);
    }
    ymin = ymin.max(0);
    ymax = ymax.min(ysize);
    if table.is_empty() {
        return;
    }

    // Edges active on the current row, in table order (the corner rule looks at earlier
    // edges in that order, so the order is part of the result). Edges enter by ymin.
    let mut order: Vec<usize> = (0..table.len()).collect();
    order.sort_by_key(|&k| table[k].ymin);
    let mut next = 0;
    let mut active: Vec<usize> = Vec::new();
    let mut xx: Vec<f32> = Vec::with_capacity(table.len() * 2);

    let mut y = ymin;
    while y <= ymax {
        active.retain(|&k| table[k].ymax >= y);
        let mut added = false;
        while next < order.len() && table[order[next]].ymin <= y {
            if table[order[next]].ymax >= y {
                active.push(order[next]);
                added = true;
            }
            next += 1;
        }
        if added {
            active.sort_unstable();
        }
        xx.clear();
        for (ai, &i) in active.iter().enumerate() {
            let current = table[i];
            let x = current.x_at(y);
            xx.push(x);
            if y == current.ymax && y < ymax {
                // Pillow: "Needed to draw consistent polygons"
                xx.push(x);
            } else if (y == current.ymin || y == current.ymax) && current.dx != 0.0 {
                // Pillow: "Connect discontiguous corners", against earlier edges only
                for &k in &active[..ai] {
                    let other = table[k];
                    if (y != other.ymin && y != other.ymax) || other.dx == 0.0 {
                        continue;
                    }
                    let last = *xx.last().expect("pushed above");
                    if last.round() != other.x_at(y).round() {
                        continue;
                    }
                    let offset = if y == current.ymax { -1 } else { 1 };
                    let adj = current.x_at(y + offset);
                    if y + offset >= other.ymin && y + offset <= other.ymax {
                        let adj_other = other.x_at(y + offset);
                        let slot = xx.last_mut().expect("pushed above");
                        if last > adj + 1.0 && last > adj_other + 1.0 {
                            *slot = adj.max(adj_other).round() + 1.0;
                        } else if last < adj - 1.0 && last < adj_other - 1.0 {
                            *slot = adj.min(adj_other).round() - 1.0;
                        }
                        break;
                    }
                }
            }
        }
        xx.sort_unstable_by(|a, b| a.partial_cmp(b).expect("edge x is finite"));
        for pair in xx.chunks_exact(2) {
            sink.hline(round_up_f32(pair[0]), y, round_down_f32(pair[1]));
        }
        y += 1;
    }
}

/// A line `width` pixels wide between integer points (Pillow's `ImagingDrawWideLine`).
pub fn wide_line<S: Sink>(
    sink: &mut S,
    height: u32,
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
    width: i32,
) {
    let dx = x1 - x0;
    let dy = y1 - y0;
    if dx == 0 && dy == 0 {
        sink.hline(x0, y0, x0);
        return;
    }
    let big_hypotenuse = (dx as f64).hypot(dy as f64);
    let small_hypotenuse = (width - 1) as f64 / 2.0;
    let ratio_max = round_up_f64(small_hypotenuse) as f64 / big_hypotenuse;
    let ratio_min = round_down_f64(small_hypotenuse) as f64 / big_hypotenuse;
    let dxmin = round_down_f64(ratio_min * dy as f64);
    let dxmax = round_down_f64(ratio_max * dy as f64);
    let dymin = round_down_f64(ratio_min * dx as f64);
    let dymax = round_down_f64(ratio_max * dx as f64);
    let v = [
        (x0 - dxmin, y0 + dymax),
        (x1 - dxmin, y1 + dymax),
        (x1 + dxmax, y1 - dymin),
        (x0 + dxmax, y0 - dymin),
    ];
    let e = [
        Edge::new(v[0].0, v[0].1, v[1].0, v[1].1),
        Edge::new(v[1].0, v[1].1, v[2].0, v[2].1),
        Edge::new(v[2].0, v[2].1, v[3].0, v[3].1),
        Edge::new(v[3].0, v[3].1, v[0].0, v[0].1),
    ];
    polygon_generic(sink, height, &e);
}

/// A filled rectangle, both corners inclusive (Pillow's `ImagingDrawRectangle` with `fill`).
pub fn rectangle<S: Sink>(sink: &mut S, height: u32, x0: i32, y0: i32, x1: i32, y1: i32) {
    let ysize = height as i32;
    let (mut y0, mut y1) = if y0 > y1 { (y1, y0) } else { (y0, y1) };
    if y0 < 0 {
        y0 = 0;
    } else if y0 >= ysize {
        return;
    }
    if y1 < 0 {
        return;
    } else if y1 > ysize {
        y1 = ysize;
    }
    for y in y0..=y1 {
        sink.hline(x0, y, x1);
    }
}
