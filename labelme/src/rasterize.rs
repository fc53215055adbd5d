//! labelme's `shape_to_mask`: which pixels each shape type covers, drawn with the
//! Pillow-exact primitives of [`crate::raster`].

use base64::Engine;

use crate::annotation::{Shape, ShapeKind};
use crate::raster::{self, trunc, Sink, Spans};

/// labelme draws `line` and `linestrip` shapes this wide.
pub const LINE_WIDTH: i32 = 10;
/// labelme draws a `point` as a disc of this radius.
pub const POINT_RADIUS: f64 = 5.0;

/// Why one shape could not be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    /// Fewer points than the shape type needs; labelme would refuse it. The shape is skipped.
    #[error("{kind} shape has {got} point(s), needs at least {need}; skipped")]
    TooFewPoints {
        /// The shape type.
        kind: String,
        /// Points in the file.
        got: usize,
        /// Points needed.
        need: usize,
    },
    /// A `shape_type` labelme does not have.
    #[error("unknown shape_type {0:?} (expected polygon, rectangle, circle, line, linestrip, point, mask or oriented_rectangle)")]
    UnknownType(String),
    /// A coordinate that is not a finite number of reasonable size.
    #[error("coordinate {0} is out of range")]
    BadCoordinate(f64),
    /// A `mask` shape whose patch is missing or not a decodable image.
    #[error("mask patch: {0}")]
    BadMask(String),
}

impl ShapeError {
    /// Whether the shape is merely skipped (a warning) rather than making the file fail.
    pub fn is_skip(&self) -> bool {
        matches!(self, ShapeError::TooFewPoints { .. })
    }
}

/// Largest coordinate magnitude accepted: beyond it C's `(int)` cast in Pillow is undefined.
const MAX_COORD: f64 = 16_777_216.0;

/// The pixels `shape` covers on a `width × height` image, exactly as labelme 7.9.1 with
/// Pillow 13.0.0 rasterizes it.
pub fn shape_spans(shape: &Shape, width: u32, height: u32) -> Result<Spans, ShapeError> {
    let kind = shape
        .kind()
        .ok_or_else(|| ShapeError::UnknownType(shape.shape_type.clone().unwrap_or_default()))?;
    let pts = &shape.points;
    if pts.len() < kind.min_points() {
        return Err(ShapeError::TooFewPoints {
            kind: shape.shape_type.clone().unwrap_or_else(|| "polygon".into()),
            got: pts.len(),
            need: kind.min_points(),
        });
    }
    if let Some(&bad) = pts
        .iter()
        .flatten()
        .find(|v| !v.is_finite() || v.abs() > MAX_COORD)
    {
        return Err(ShapeError::BadCoordinate(bad));
    }
    let mut spans = Spans::new(width, height);
    let p = |i: usize| (pts[i][0], pts[i][1]);
    match kind {
        ShapeKind::Polygon | ShapeKind::OrientedRectangle => {
            let xy: Vec<(i32, i32)> = pts.iter().map(|q| (trunc(q[0]), trunc(q[1]))).collect();
            raster::polygon(&mut spans, height, &xy);
        }
        ShapeKind::Rectangle => {
            let ((x0, y0), (x1, y1)) = (p(0), p(1));
            raster::rectangle(
                &mut spans,
                height,
                trunc(x0.min(x1)),
                trunc(y0.min(y1)),
                trunc(x0.max(x1)),
                trunc(y0.max(y1)),
            );
        }
        ShapeKind::Circle => {
            let ((cx, cy), (px, py)) = (p(0), p(1));
            let r = ((cx - px).powi(2) + (cy - py).powi(2)).sqrt();
            disc(&mut spans, cx, cy, r);
        }
        ShapeKind::Point => {
            let (cx, cy) = p(0);
            disc(&mut spans, cx, cy, POINT_RADIUS);
        }
        ShapeKind::Line | ShapeKind::LineStrip => {
            let xy: Vec<(f64, f64)> = pts.iter().map(|q| (q[0], q[1])).collect();
            raster::line(
                &mut spans,
                height,
                &xy,
                LINE_WIDTH,
                kind == ShapeKind::LineStrip,
            );
        }
        ShapeKind::Mask => mask_patch(&mut spans, shape, width, height)?,
    }
    Ok(spans)
}

/// `ImageDraw.ellipse([cx - r, cy - r, cx + r, cy + r])`.
fn disc(spans: &mut Spans, cx: f64, cy: f64, r: f64) {
    raster::ellipse(
        spans,
        trunc(cx - r),
        trunc(cy - r),
        trunc(cx + r),
        trunc(cy + r),
    );
}

/// A `mask` shape: the patch's nonzero pixels, its top-left corner at the first point
/// rounded half to even (numpy's `round`), clipped to the image.
fn mask_patch(spans: &mut Spans, shape: &Shape, width: u32, height: u32) -> Result<(), ShapeError> {
    let b64 = shape
        .mask
        .as_deref()
        .ok_or_else(|| ShapeError::BadMask("no \"mask\" data".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ShapeError::BadMask(format!("not base64: {e}")))?;
    let patch = image::load_from_memory(&bytes)
        .map_err(|e| ShapeError::BadMask(format!("not a readable image: {e}")))?;
    let on: Vec<bool> = match &patch {
        image::DynamicImage::ImageLuma8(_) | image::DynamicImage::ImageLumaA8(_) => {
            patch.to_luma8().pixels().map(|q| q.0[0] != 0).collect()
        }
        image::DynamicImage::ImageLuma16(_) | image::DynamicImage::ImageLumaA16(_) => {
            patch.to_luma16().pixels().map(|q| q.0[0] != 0).collect()
        }
        _ => patch.to_rgb8().pixels().map(|q| q.0 != [0, 0, 0]).collect(),
    };
    let (pw, ph) = (patch.width() as i64, patch.height() as i64);
    let x1 = shape.points[0][0].round_ties_even() as i64;
    let y1 = shape.points[0][1].round_ties_even() as i64;
    for py in 0..ph {
        let y = y1 + py;
        if y < 0 || y >= height as i64 {
            continue;
        }
        let row = &on[(py * pw) as usize..((py + 1) * pw) as usize];
        let mut px = 0;
        while px < pw {
            if !row[px as usize] {
                px += 1;
                continue;
            }
            let start = px;
            while px < pw && row[px as usize] {
                px += 1;
            }
            let (a, b) = (x1 + start, x1 + px - 1);
            if b >= 0 && a < width as i64 {
                spans.hline(a.max(0) as i32, y as i32, b.min(width as i64 - 1) as i32);
            }
        }
    }
    Ok(())
}
