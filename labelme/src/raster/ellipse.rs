//! Pillow's ellipse engine (`quarter_*`, `ellipse_*`, the clipping tree and `pie_init` in
//! `Draw.c`): filled ellipses and filled pie slices (the curved joints of labelme's
//! line strips).
//!
//! Pillow walks the ellipse on a grid of step 2 (so that half-pixel radii are exact) and
//! halves the coordinates when it draws; the C integer arithmetic, including its `int64`
//! products (which wrap for absurdly large ellipses, as they do in C), is kept as is.

use super::Sink;

/// One quarter of an ellipse of semi-axes `a`, `b` (grid units), walked by Bresenham.
#[derive(Debug, Clone, Copy, Default)]
struct Quarter {
    cx: i32,
    cy: i32,
    ex: i32,
    ey: i32,
    a2: i64,
    b2: i64,
    a2b2: i64,
    finished: bool,
}

impl Quarter {
    fn new(a: i32, b: i32) -> Quarter {
        if a < 0 || b < 0 {
            return Quarter {
                finished: true,
                ..Quarter::default()
            };
        }
        let a2 = a as i64 * a as i64;
        let b2 = b as i64 * b as i64;
        Quarter {
            cx: a,
            cy: b % 2,
            ex: a % 2,
            ey: b,
            a2,
            b2,
            a2b2: a2.wrapping_mul(b2),
            finished: false,
        }
    }

    fn delta(&self, x: i64, y: i64) -> i64 {
        self.a2
            .wrapping_mul(y)
            .wrapping_mul(y)
            .wrapping_add(self.b2.wrapping_mul(x).wrapping_mul(x))
            .wrapping_sub(self.a2b2)
            .wrapping_abs()
    }

    fn next(&mut self) -> Option<(i32, i32)> {
        if self.finished {
            return None;
        }
        let ret = (self.cx, self.cy);
        if self.cx == self.ex && self.cy == self.ey {
            self.finished = true;
        } else {
            let mut nx = self.cx;
            let mut ny = self.cy + 2;
            let mut ndelta = self.delta(nx as i64, ny as i64);
            if nx > 1 {
                let newdelta = self.delta(self.cx as i64 - 2, self.cy as i64 + 2);
                if ndelta > newdelta {
                    nx = self.cx - 2;
                    ny = self.cy + 2;
                    ndelta = newdelta;
                }
                let newdelta = self.delta(self.cx as i64 - 2, self.cy as i64);
                if ndelta > newdelta {
                    nx = self.cx - 2;
                    ny = self.cy;
                }
            }
            self.cx = nx;
            self.cy = ny;
        }
        Some(ret)
    }
}

/// Horizontal segments of an ellipse ring of thickness `w` (`ellipse_state`).
struct EllipseSegments {
    outer: Quarter,
    inner: Quarter,
    py: i32,
    pl: i32,
    pr: i32,
    buf: [(i32, i32, i32); 4],
    bufcnt: usize,
    finished: bool,
    leftmost: i32,
}

impl EllipseSegments {
    fn new(a: i32, b: i32, w: i32) -> Self {
        let mut s = EllipseSegments {
            outer: Quarter::new(a, b),
            inner: Quarter::default(),
            py: 0,
            pl: 0,
            pr: 0,
            buf: [(0, 0, 0); 4],
            bufcnt: 0,
            finished: false,
            leftmost: a % 2,
        };
        match s.outer.next() {
            Some((x, y)) if w >= 1 => {
                s.pr = x;
                s.py = y;
                s.inner = Quarter::new(a - 2 * (w - 1), b - 2 * (w - 1));
                s.pl = s.leftmost;
            }
            _ => s.finished = true,
        }
        s
    }
}

impl Iterator for EllipseSegments {
    /// `(x0, y, x1)` on the step-2 grid centred on the ellipse.
    type Item = (i32, i32, i32);

    fn next(&mut self) -> Option<(i32, i32, i32)> {
        if self.bufcnt == 0 {
            if self.finished {
                return None;
            }
            let y = self.py;
            let mut l = self.pl;
            let r = self.pr;
            let mut got = None;
            while let Some((cx, cy)) = self.outer.next() {
                got = Some((cx, cy));
                if cy > y {
                    break;
                }
            }
            match got {
                Some((cx, cy)) if cy > y => {
                    self.pr = cx;
                    self.py = cy;
                }
                _ => self.finished = true,
            }
            let mut inner_next = None;
            while let Some((cx, cy)) = self.inner.next() {
                inner_next = Some(cx);
                if cy > y {
                    break;
                }
                l = cx;
                inner_next = None;
            }
            self.pl = inner_next.unwrap_or(self.leftmost);

            if (l > 0 || l < r) && y > 0 {
                self.push((if l == 0 { 2 } else { l }, y, r));
            }
            if y > 0 {
                self.push((-r, y, -l));
            }
            if l > 0 || l < r {
                self.push((if l == 0 { 2 } else { l }, -y, r));
            }
            self.push((-r, -y, -l));
        }
        self.bufcnt -= 1;
        let (x0, y, x1) = self.buf[self.bufcnt];
        Some((x0, y, x1))
    }
}

impl EllipseSegments {
    fn push(&mut self, seg: (i32, i32, i32)) {
        self.buf[self.bufcnt] = seg;
        self.bufcnt += 1;
    }
}

/// A filled ellipse in the box `x0..=x1`, `y0..=y1` (Pillow's `ellipseNew` with `fill`);
/// nothing when the box is inverted or a single point.
pub fn ellipse<S: Sink>(sink: &mut S, x0: i32, y0: i32, x1: i32, y1: i32) {
    let a = x1 - x0;
    let b = y1 - y0;
    if a < 0 || b < 0 {
        return;
    }
    for (sx0, sy, sx1) in EllipseSegments::new(a, b, a + b) {
        sink.hline(x0 + (sx0 + a) / 2, y0 + (sy + b) / 2, x0 + (sx1 + a) / 2);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    And(usize, usize),
    Or(usize, usize),
    /// Half-plane `a·x + b·y + c >= 0`.
    Clip(f64, f64, f64),
}

/// Clip a horizontal segment by the tree at `root`: a sorted list of `(x, +1 | -1)` events
/// (`clip_tree_do_clip`).
fn clip(nodes: &[Node], root: usize, x0: i32, y: i32, x1: i32) -> Vec<(i32, i8)> {
    match nodes[root] {
        Node::Clip(a, b, c) => {
            let eps = 1e-9;
            let (mut x0, mut x1) = (x0, x1);
            let y = y as f64;
            if a.abs() < eps {
                if b * y + c < -eps {
                    x0 = 1;
                    x1 = 0;
                }
            } else {
                let ix = -(b * y + c) / a;
                if a * x0 as f64 + b * y + c < eps {
                    x0 = (x0 as f64).max(ix).round() as i32;
                }
                if a * x1 as f64 + b * y + c < eps {
                    x1 = (x1 as f64).min(ix).round() as i32;
                }
            }
            if x0 <= x1 {
                vec![(x0, 1), (x1, -1)]
            } else {
                Vec::new()
            }
        }
        Node::And(l, r) | Node::Or(l, r) => {
            let is_or = matches!(nodes[root], Node::Or(..));
            let l1 = clip(nodes, l, x0, y, x1);
            let l2 = clip(nodes, r, x0, y, x1);
            let (mut i1, mut i2) = (0, 0);
            let (mut k1, mut k2) = (0i32, 0i32);
            let mut out: Vec<(i32, i8)> = Vec::new();
            while i1 < l1.len() || i2 < l2.len() {
                let take_first = i2 == l2.len()
                    || (i1 < l1.len()
                        && (l1[i1].0 < l2[i2].0 || (l1[i1].0 == l2[i2].0 && l1[i1].1 > l2[i2].1)));
                let t = if take_first {
                    k1 += l1[i1].1 as i32;
                    i1 += 1;
                    l1[i1 - 1]
                } else {
                    k2 += l2[i2].1 as i32;
                    i2 += 1;
                    l2[i2 - 1]
                };
                let tail = out.last().map(|e| e.1);
                let keep = if is_or {
                    (t.1 == 1 && tail.is_none_or(|ty| ty == -1))
                        || (t.1 == -1 && k1 == 0 && k2 == 0)
                } else {
                    (t.1 == 1 && tail.is_none_or(|ty| ty == -1) && k1 > 0 && k2 > 0)
                        || (t.1 == -1 && tail == Some(1) && (k1 == 0 || k2 == 0))
                };
                if keep {
                    out.push(t);
                }
            }
            out
        }
    }
}

/// Pillow's `normalize_angles`: `0 <= start < 360`, `start <= end <= start + 360`, in the
/// same mix of `float` storage and `double` arithmetic as the C code.
fn normalize_angles(al: f32, ar: f32) -> (f32, f32) {
    if ar - al >= 360.0 {
        return (0.0, 360.0);
    }
    let al_d = al as f64;
    let al_in = if al < 0.0 {
        360.0 - (-al_d % 360.0)
    } else {
        al_d
    };
    let al = (al_in % 360.0) as f32;
    // `al - ar` and `ar - al` are float subtractions in C, promoted afterwards
    let diff = if ar < al {
        360.0 - ((al - ar) as f64 % 360.0)
    } else {
        (ar - al) as f64
    };
    let ar = (al as f64 + diff % 360.0) as f32;
    (al, ar)
}

/// A filled pie slice of the ellipse in the box `x0..=x1`, `y0..=y1` from angle `start` to
/// `end` (degrees clockwise from 3 o'clock), as Pillow's `ImagingDrawPieslice` with `fill`.
/// The angles are `f32` because Pillow's binding parses them as C `float`.
#[allow(clippy::too_many_arguments)] // mirrors Pillow's signature, one argument per C one
pub fn pieslice<S: Sink>(sink: &mut S, x0: i32, y0: i32, x1: i32, y1: i32, start: f32, end: f32) {
    let (start, end) = normalize_angles(start, end);
    if start + 360.0 == end {
        ellipse(sink, x0, y0, x1, y1);
        return;
    }
    if start == end {
        return;
    }
    let a = x1 - x0;
    let b = y1 - y0;
    if a < 0 || b < 0 {
        return;
    }
    let segments = EllipseSegments::new(a, b, x1 + y1 - x0 - y0);
    let (al, ar) = (start as f64, end as f64);
    let xl = a as f64 * (al * std::f64::consts::PI / 180.0).cos();
    let xr = a as f64 * (ar * std::f64::consts::PI / 180.0).cos();
    let yl = b as f64 * (al * std::f64::consts::PI / 180.0).sin();
    let yr = b as f64 * (ar * std::f64::consts::PI / 180.0).sin();
    let mut nodes = vec![Node::Clip(-yl, xl, 0.0), Node::Clip(yr, -xr, 0.0)];
    nodes.push(if end - start < 180.0 {
        Node::And(0, 1)
    } else {
        Node::Or(0, 1)
    });
    let mut root = 2;
    if end - start < 90.0 {
        // Pillow: "add one more semiplane to avoid spikes"
        nodes.push(Node::Clip((xl + xr) / 2.0, (yl + yr) / 2.0, 0.0));
        nodes.push(Node::And(2, 3));
        root = 4;
    }
    for (sx0, sy, sx1) in segments {
        let events = clip(&nodes, root, sx0, sy, sx1);
        for pair in events.chunks_exact(2) {
            sink.hline(
                x0 + (pair[0].0 + a) / 2,
                y0 + (sy + b) / 2,
                x0 + (pair[1].0 + a) / 2,
            );
        }
    }
}
