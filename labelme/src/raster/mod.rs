//! Pixel-exact re-implementation of the Pillow 13.0.0 `ImageDraw` primitives labelme uses.
//!
//! labelme rasterizes its shapes with Pillow (`polygon`, `ellipse`, `rectangle`, wide `line`
//! with optional curved joints, which draw pie slices), and users' trained models have seen
//! exactly those pixels. Matching "roughly" is not enough: a one-pixel rim moves IoU on small
//! defects. So these functions follow the integer and float arithmetic of Pillow's
//! `libImaging/Draw.c` and `ImageDraw.py` step by step, including its `f32` intermediate
//! values, truncating coordinate casts and corner heuristics; the tests compare them pixel
//! for pixel with Pillow itself.
//!
//! Everything draws horizontal spans into a [`Sink`]; coordinates may lie outside the image
//! (spans are clipped by the sink).

mod ellipse;
mod polygon;
mod stroke;

pub use ellipse::{ellipse, pieslice};
pub use polygon::{polygon, rectangle, wide_line};
pub use stroke::line;

/// Receives the horizontal spans a primitive covers (both ends inclusive, not yet clipped).
pub trait Sink {
    /// Cover pixels `x0..=x1` of row `y`; nothing when `x0 > x1`.
    fn hline(&mut self, x0: i32, y: i32, x1: i32);
}

/// A `width × height` 8-bit buffer painted with one value, clipping spans to the image
/// (Pillow's `hline8`).
#[derive(Debug)]
pub struct Canvas<'a> {
    buf: &'a mut [u8],
    width: usize,
    height: usize,
    ink: u8,
}

impl<'a> Canvas<'a> {
    /// Paint `ink` into `buf`, a row-major `width × height` image.
    pub fn new(buf: &'a mut [u8], width: u32, height: u32, ink: u8) -> Self {
        assert_eq!(
            buf.len(),
            width as usize * height as usize,
            "canvas buffer size"
        );
        Canvas {
            buf,
            width: width as usize,
            height: height as usize,
            ink,
        }
    }
}

impl Sink for Canvas<'_> {
    fn hline(&mut self, x0: i32, y: i32, x1: i32) {
        if let Some((x0, y, x1)) = clip(x0, y, x1, self.width, self.height) {
            let row = y * self.width;
            self.buf[row + x0..=row + x1].fill(self.ink);
        }
    }
}

/// The clipped spans of one shape, to paint into several buffers (class and instance masks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    width: usize,
    height: usize,
    spans: Vec<(u32, u32, u32)>,
}

impl Spans {
    /// An empty span list for a `width × height` image.
    pub fn new(width: u32, height: u32) -> Self {
        Spans {
            width: width as usize,
            height: height as usize,
            spans: Vec::new(),
        }
    }

    /// Whether no pixel is covered.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Set every covered pixel of `buf` (row-major, the size given to [`Spans::new`]) to `value`.
    pub fn paint(&self, buf: &mut [u8], value: u8) {
        assert_eq!(buf.len(), self.width * self.height, "buffer size");
        for &(y, x0, x1) in &self.spans {
            let row = y as usize * self.width;
            buf[row + x0 as usize..=row + x1 as usize].fill(value);
        }
    }

    /// The clipped spans as `(y, x0, x1)`, ends inclusive, in drawing order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        self.spans.iter().copied()
    }
}

impl Sink for Spans {
    fn hline(&mut self, x0: i32, y: i32, x1: i32) {
        if let Some((x0, y, x1)) = clip(x0, y, x1, self.width, self.height) {
            self.spans.push((y as u32, x0 as u32, x1 as u32));
        }
    }
}

fn clip(x0: i32, y: i32, x1: i32, width: usize, height: usize) -> Option<(usize, usize, usize)> {
    if y < 0 || y as usize >= height || x1 < 0 || x0 > x1 || width == 0 {
        return None;
    }
    let x0 = x0.max(0) as usize;
    if x0 >= width {
        return None;
    }
    let x1 = (x1 as usize).min(width - 1);
    Some((x0, y as usize, x1))
}

/// C's `ROUND_UP` on a `float` argument: `f + 0.5F` is rounded to `f32` before the floor.
fn round_up_f32(f: f32) -> i32 {
    if f >= 0.0 {
        (f + 0.5).floor() as i32
    } else {
        -((f.abs() + 0.5).floor() as i32)
    }
}

/// C's `ROUND_DOWN` on a `float` argument.
fn round_down_f32(f: f32) -> i32 {
    if f >= 0.0 {
        (f - 0.5).ceil() as i32
    } else {
        -((f.abs() - 0.5).ceil() as i32)
    }
}

/// C's `ROUND_UP` on a `double` argument.
fn round_up_f64(f: f64) -> i32 {
    if f >= 0.0 {
        (f + 0.5).floor() as i32
    } else {
        -((f.abs() + 0.5).floor() as i32)
    }
}

/// C's `ROUND_DOWN` on a `double` argument.
fn round_down_f64(f: f64) -> i32 {
    if f >= 0.0 {
        (f - 0.5).ceil() as i32
    } else {
        -((f.abs() - 0.5).ceil() as i32)
    }
}

/// C's `(int)` cast of a coordinate (truncation toward zero), as Pillow's Python binding
/// applies to every float coordinate before drawing.
pub fn trunc(v: f64) -> i32 {
    v as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(w: u32, h: u32, f: impl FnOnce(&mut Canvas)) -> Vec<String> {
        let mut buf = vec![0u8; (w * h) as usize];
        f(&mut Canvas::new(&mut buf, w, h, 1));
        buf.chunks(w as usize)
            .map(|r| r.iter().map(|&v| if v == 1 { '#' } else { '.' }).collect())
            .collect()
    }

    #[test]
    fn rounding_follows_c_float_arithmetic() {
        assert_eq!(round_up_f32(2.5), 3);
        assert_eq!(round_up_f32(-2.5), -3);
        assert_eq!(round_down_f32(2.5), 2);
        assert_eq!(round_down_f32(-2.5), -2);
        // 0.49999997 + 0.5 rounds to 1.0 in f32 before the floor, as in C
        assert_eq!(round_up_f32(0.499_999_97), 1);
        assert_eq!(round_up_f64(0.499_999_97), 0);
        assert_eq!(trunc(-3.9), -3);
    }

    #[test]
    fn rectangle_fills_both_corners_inclusive() {
        let img = draw(5, 4, |c| rectangle(c, 4, 1, 1, 3, 2));
        assert_eq!(img, [".....", ".###.", ".###.", "....."]);
    }

    #[test]
    fn small_disc_is_pillows() {
        // d.ellipse([0, 0, 4, 4], fill=1) in Pillow 13
        let img = draw(5, 5, |c| ellipse(c, 0, 0, 4, 4));
        assert_eq!(img, [".###.", "#####", "#####", "#####", ".###."]);
    }

    #[test]
    fn triangle_uses_pillows_fill_rule() {
        // d.polygon([(0, 0), (4, 0), (0, 4)], fill=1) in Pillow 13
        let img = draw(5, 5, |c| polygon(c, 5, &[(0, 0), (4, 0), (0, 4)]));
        assert_eq!(img, ["#####", "####.", "###..", "##...", "#...."]);
    }

    #[test]
    fn spans_clip_to_the_image() {
        let mut s = Spans::new(4, 3);
        s.hline(-5, 1, 10);
        s.hline(2, 7, 3);
        s.hline(3, 0, 2);
        assert_eq!(s.iter().collect::<Vec<_>>(), [(1, 0, 3)]);
    }
}
