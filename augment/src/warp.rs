//! Inverse-mapping resampling: affine warps (rotate, scale, shear, resize) and per-pixel
//! maps (elastic), with the image interpolated and the mask always nearest-neighbour.
//!
//! Speed: the output is walked in 64×16 tiles (a rotated source stays in L1); each tile
//! row gets its source coordinates as 24.8 fixed-point integers from a per-row start plus
//! a precomputed multiple of the increment (one vector add and shift, no allocation);
//! pixels whose taps all lie inside the source take the fast path (for RGB: two 8-byte
//! loads hold the four taps, then a u16 blend of the whole segment that the compiler
//! vectorises, with AVX2/AVX-512 clones picked at run time; the segment buffers live
//! across the whole warp), and only the border band resolves taps through the border mode. Bilinear
//! weights have 8 fractional bits; RGB results are within one level of exact.

use crate::sample::Sample;

/// Sub-pixel bits of a source coordinate.
const FRAC: i32 = 8;
const ONE: i32 = 1 << FRAC;

/// How pixels outside the source are made up (OpenCV's border modes, as albumentations names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// A constant: the image fill value, and the mask fill value (255 = ignore by default).
    Constant,
    /// Repeat the edge pixel: `aaa|abcd|ddd`.
    Replicate,
    /// Mirror including the edge pixel: `cba|abcd|dcb`.
    Reflect,
    /// Mirror around the edge pixel: `dcb|abcd|cba` (OpenCV's default, `BORDER_REFLECT_101`).
    Reflect101,
    /// Wrap around: `bcd|abcd|abc`.
    Wrap,
}

/// How image pixels are resampled (masks are always nearest-neighbour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interp {
    /// The nearest source pixel.
    Nearest,
    /// Bilinear, 8-bit sub-pixel weights.
    Linear,
}

/// What constant borders are filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Image fill (gray images use the first value).
    pub image: [u8; 3],
    /// Mask fill; 255, the ignore index, unless chosen otherwise.
    pub mask: u8,
}

impl Default for Fill {
    fn default() -> Self {
        Fill {
            image: [0; 3],
            mask: segkit_labelme::dataset::IGNORE_INDEX,
        }
    }
}

/// Resample settings shared by every warp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resample {
    /// Image interpolation.
    pub interp: Interp,
    /// Border mode for image and mask.
    pub border: Border,
    /// Constant-border values.
    pub fill: Fill,
}

/// Index of coordinate `i` in `0..n` under `border`, or `None` for a constant border.
#[inline]
pub(crate) fn border_index(i: i64, n: i64, border: Border) -> Option<usize> {
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    if n == 1 {
        return if border == Border::Constant {
            None
        } else {
            Some(0)
        };
    }
    let r = match border {
        Border::Constant => return None,
        Border::Replicate => i.clamp(0, n - 1),
        Border::Wrap => i.rem_euclid(n),
        Border::Reflect => {
            let p = i.rem_euclid(2 * n);
            if p < n {
                p
            } else {
                2 * n - 1 - p
            }
        }
        Border::Reflect101 => {
            let p = i.rem_euclid(2 * n - 2);
            if p < n {
                p
            } else {
                2 * n - 2 - p
            }
        }
    };
    Some(r as usize)
}

/// A 2×3 affine matrix `[a, b, c, d, e, f]`: `x' = a x + b y + c`, `y' = d x + e y + f`.
pub type Mat = [f64; 6];

/// `m1 ∘ m2` (apply `m2` first).
pub fn compose(m1: &Mat, m2: &Mat) -> Mat {
    [
        m1[0] * m2[0] + m1[1] * m2[3],
        m1[0] * m2[1] + m1[1] * m2[4],
        m1[0] * m2[2] + m1[1] * m2[5] + m1[2],
        m1[3] * m2[0] + m1[4] * m2[3],
        m1[3] * m2[1] + m1[4] * m2[4],
        m1[3] * m2[2] + m1[4] * m2[5] + m1[5],
    ]
}

/// The inverse of an affine matrix, or `None` when it is singular.
pub fn invert(m: &Mat) -> Option<Mat> {
    let det = m[0] * m[4] - m[1] * m[3];
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    let (a, b, d, e) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
    Some([a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])])
}

/// Warp `src` into an `out_w`×`out_h` sample; `inv` maps output pixel centres to source
/// coordinates (the inverse of the geometric transform).
pub fn warp_affine(src: &Sample, out_w: usize, out_h: usize, inv: &Mat, rs: Resample) -> Sample {
    let mut out = Sample::blank(out_w, out_h, src.channels);
    let c = src.channels as usize;
    // Output tiles of TW x TH: a rotated source row is read across many rows, so walking the
    // output tile by tile keeps the source pixels a tile needs in L1 (as OpenCV's warpAffine).
    const TH: usize = 16;
    let mut xs = [0i32; TW];
    let mut ys = [0i32; TW];
    // 32 fractional bits in i64 keep the accumulated increments exact to far below a pixel.
    const S: f64 = (1u64 << 32) as f64;
    let to_fixed = |v: f64| (v * S).clamp(-9.0e18, 9.0e18) as i64;
    let (dx, dy) = (to_fixed(inv[0]), to_fixed(inv[3]));
    // Pixel j of a segment sits j increments from the segment's start (wrapping, exactly
    // as adding the increment j times), so the coordinates are one vector add and shift.
    let steps_x: [i64; TW] = std::array::from_fn(|j| (j as i64).wrapping_mul(dx));
    let steps_y: [i64; TW] = std::array::from_fn(|j| (j as i64).wrapping_mul(dy));
    let mut scratch = Scratch::default();
    for ty in (0..out_h).step_by(TH) {
        for tx in (0..out_w).step_by(TW) {
            let tw = TW.min(out_w - tx);
            for y in ty..(ty + TH).min(out_h) {
                let ax = to_fixed(inv[0] * tx as f64 + inv[1] * y as f64 + inv[2]);
                let ay = to_fixed(inv[3] * tx as f64 + inv[4] * y as f64 + inv[5]);
                coords(ax, &steps_x, &mut xs);
                coords(ay, &steps_y, &mut ys);
                let o = y * out_w + tx;
                sample_row(
                    src,
                    &xs[..tw],
                    &ys[..tw],
                    &mut out.image[o * c..(o + tw) * c],
                    &mut out.mask[o..o + tw],
                    rs,
                    &mut scratch,
                );
            }
        }
    }
    out
}

/// Output tile width of [`warp_affine`]: one segment of source coordinates.
const TW: usize = SEG;

/// `out[j]` = the 24.8 fixed-point coordinate of segment pixel `j`, from the 32.32 start
/// and per-pixel steps (saturated far outside the source).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn coords(start: i64, steps: &[i64; TW], out: &mut [i32; TW]) {
    for (o, &s) in out.iter_mut().zip(steps) {
        *o = sat(start.wrapping_add(s) >> (32 - FRAC));
    }
}

/// Resample `src` at per-pixel source coordinates (`map_x[i], map_y[i]` for output pixel
/// `i`, row-major, output the size of the maps: `out_w` wide).
pub fn remap(src: &Sample, map_x: &[f32], map_y: &[f32], out_w: usize, rs: Resample) -> Sample {
    let out_h = map_x.len() / out_w.max(1);
    let mut out = Sample::blank(out_w, out_h, src.channels);
    let mut xs = vec![0i32; out_w];
    let mut ys = vec![0i32; out_w];
    let mut scratch = Scratch::default();
    let stride = out_w * src.channels as usize;
    for (y, (img_row, mask_row)) in out
        .image
        .chunks_exact_mut(stride.max(1))
        .zip(out.mask.chunks_exact_mut(out_w.max(1)))
        .enumerate()
    {
        let mx = &map_x[y * out_w..(y + 1) * out_w];
        let my = &map_y[y * out_w..(y + 1) * out_w];
        for i in 0..out_w {
            xs[i] = (mx[i] * ONE as f32).floor() as i32;
            ys[i] = (my[i] * ONE as f32).floor() as i32;
        }
        sample_row(src, &xs, &ys, img_row, mask_row, rs, &mut scratch);
    }
    out
}

#[inline]
fn sat(v: i64) -> i32 {
    v.clamp(i32::MIN as i64 / 2, i32::MAX as i64 / 2) as i32
}

fn sample_row(
    src: &Sample,
    xs: &[i32],
    ys: &[i32],
    img_row: &mut [u8],
    mask_row: &mut [u8],
    rs: Resample,
    scratch: &mut Scratch,
) {
    match (src.channels, rs.interp) {
        (3, Interp::Linear) => row::<3, true>(src, xs, ys, img_row, mask_row, rs, scratch),
        (1, Interp::Linear) => row::<1, true>(src, xs, ys, img_row, mask_row, rs, scratch),
        (3, Interp::Nearest) => row::<3, false>(src, xs, ys, img_row, mask_row, rs, scratch),
        _ => row::<1, false>(src, xs, ys, img_row, mask_row, rs, scratch),
    }
}

/// Per-segment buffers of [`linear_rgb_row`], made once per warp: zeroing them for every
/// 64-pixel segment cost more than a tenth of a rotation.
struct Scratch {
    taps: [[u8; 4 * SEG]; 4],
    wx: [u16; 4 * SEG],
    wy: [u16; 4 * SEG],
    inside: [bool; SEG],
    blended: [u8; 4 * SEG],
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            taps: [[0; 4 * SEG]; 4],
            wx: [0; 4 * SEG],
            wy: [0; 4 * SEG],
            inside: [false; SEG],
            blended: [0; 4 * SEG],
        }
    }
}

/// Pixels a row segment is processed in (the warp's tile width).
const SEG: usize = 64;

/// One output row: image (`C` channels, bilinear when `LINEAR`, else nearest) and mask
/// (nearest) from the same source coordinates.
///
/// Bilinear RGB goes in three steps so that the arithmetic vectorises: gather each pixel's
/// four taps as 4-byte words (two 8-byte loads, one per tap row), blend all
/// lanes of the segment at once in u16, then store three bytes per pixel.
fn row<const C: usize, const LINEAR: bool>(
    src: &Sample,
    xs: &[i32],
    ys: &[i32],
    out: &mut [u8],
    mask_out: &mut [u8],
    rs: Resample,
    scratch: &mut Scratch,
) {
    if LINEAR && C == 3 && xs.len() <= SEG {
        return linear_rgb_row(src, xs, ys, out, mask_out, rs, scratch);
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let stride = w * C;
    let img = &src.image[..];
    let mask = &src.mask[..];
    // All four taps (ix..=ix+1, iy..=iy+1) are inside when ix < w-1 and iy < h-1; the
    // nearest pixel is then inside too. Everything else takes the border path.
    let (wl, hl) = (w.saturating_sub(1) as u32, h.saturating_sub(1) as u32);
    for (((o, m), &x), &y) in out
        .chunks_exact_mut(C)
        .zip(mask_out.iter_mut())
        .zip(xs)
        .zip(ys)
    {
        let (ix, iy) = (x >> FRAC, y >> FRAC);
        let (fx, fy) = (x & (ONE - 1), y & (ONE - 1));
        if (ix as u32) < wl && (iy as u32) < hl {
            let off = iy as usize * stride + ix as usize * C;
            if LINEAR {
                let r0 = &img[off..off + 2 * C];
                let r1 = &img[off + stride..off + stride + 2 * C];
                for c in 0..C {
                    // Two lerps in 8-bit fixed point: exact, and 3 multiplies a channel.
                    let (a, b) = (r0[c] as i32, r0[c + C] as i32);
                    let top = (a << FRAC) + (b - a) * fx;
                    let (a, b) = (r1[c] as i32, r1[c + C] as i32);
                    let bot = (a << FRAC) + (b - a) * fx;
                    let v = (top << FRAC) + (bot - top) * fy;
                    o[c] = ((v + (1 << 15)) >> 16) as u8;
                }
            }
            // Nearest: round half up, i.e. step to the next pixel when the fraction >= 1/2.
            let nx = ix as usize + (fx >> (FRAC - 1)) as usize;
            let ny = iy as usize + (fy >> (FRAC - 1)) as usize;
            if !LINEAR {
                let no = ny * stride + nx * C;
                o.copy_from_slice(&img[no..no + C]);
            }
            *m = mask[ny * w + nx];
        } else {
            border_pixel::<C, LINEAR>(src, x, y, o, m, rs);
        }
    }
}

/// Bilinear RGB for up to [`SEG`] pixels (see [`row`]).
fn linear_rgb_row(
    src: &Sample,
    xs: &[i32],
    ys: &[i32],
    out: &mut [u8],
    mask_out: &mut [u8],
    rs: Resample,
    scratch: &mut Scratch,
) {
    let (w, h) = (src.width as usize, src.height as usize);
    let stride = w * 3;
    let img = &src.image[..];
    let (wl, hl) = (w.saturating_sub(1) as u32, h.saturating_sub(1) as u32);
    let n = xs.len().min(SEG);
    let (xs, ys) = (&xs[..n], &ys[..n]);
    // Lanes of pixels that are not inside keep stale values; their blend is never used.
    let Scratch {
        taps,
        wx,
        wy,
        inside,
        blended,
    } = scratch;
    let [t0, t1, t2, t3] = taps;
    for j in 0..n {
        let (x, y) = (xs[j], ys[j]);
        let (ix, iy) = (x >> FRAC, y >> FRAC);
        let (fx, fy) = ((x & (ONE - 1)) as u16, (y & (ONE - 1)) as u16);
        let off = (iy as usize)
            .wrapping_mul(stride)
            .wrapping_add(ix as usize * 3);
        // Two 8-byte loads, one a tap row, hold all four taps. The second reads two bytes
        // past its last tap, which keeps the image's very last interior pixel (and only
        // that one) on the border path, as before.
        let ok = (ix as u32) < wl && (iy as u32) < hl && off + stride + 8 <= img.len();
        inside[j] = ok;
        if ok {
            let r0 = u64::from_le_bytes(img[off..off + 8].try_into().expect("8 bytes"));
            let r1 = u64::from_le_bytes(
                img[off + stride..off + stride + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            t0[4 * j..4 * j + 4].copy_from_slice(&(r0 as u32).to_le_bytes());
            t1[4 * j..4 * j + 4].copy_from_slice(&((r0 >> 24) as u32).to_le_bytes());
            t2[4 * j..4 * j + 4].copy_from_slice(&(r1 as u32).to_le_bytes());
            t3[4 * j..4 * j + 4].copy_from_slice(&((r1 >> 24) as u32).to_le_bytes());
            wx[4 * j..4 * j + 4].copy_from_slice(&[fx; 4]);
            wy[4 * j..4 * j + 4].copy_from_slice(&[fy; 4]);
            let nx = ix as usize + (fx >> (FRAC - 1)) as usize;
            let ny = iy as usize + (fy >> (FRAC - 1)) as usize;
            mask_out[j] = src.mask[ny * w + nx];
        }
    }
    blend(taps, wx, wy, &mut blended[..4 * n]);
    for (j, o) in out.chunks_exact_mut(3).enumerate().take(n) {
        if inside[j] {
            o.copy_from_slice(&blended[4 * j..4 * j + 3]);
        } else {
            border_pixel::<3, true>(src, xs[j], ys[j], o, &mut mask_out[j], rs);
        }
    }
}

/// The bilinear blend of every lane: two 8-bit lerps in u16 (within one level of exact).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn blend(taps: &[[u8; 4 * SEG]; 4], wx: &[u16; 4 * SEG], wy: &[u16; 4 * SEG], out: &mut [u8]) {
    let n = out.len();
    let (t0, t1, t2, t3) = (&taps[0][..n], &taps[1][..n], &taps[2][..n], &taps[3][..n]);
    let (wx, wy) = (&wx[..n], &wy[..n]);
    for i in 0..n {
        let (fx, fy) = (wx[i], wy[i]);
        let top = (t0[i] as u16 * (256 - fx) + t1[i] as u16 * fx + 128) >> 8;
        let bot = (t2[i] as u16 * (256 - fx) + t3[i] as u16 * fx + 128) >> 8;
        out[i] = ((top * (256 - fy) + bot * fy + 128) >> 8) as u8;
    }
}

/// One output pixel whose taps reach outside the source: each tap goes through the border mode.
#[inline(never)]
fn border_pixel<const C: usize, const LINEAR: bool>(
    src: &Sample,
    x: i32,
    y: i32,
    o: &mut [u8],
    m: &mut u8,
    rs: Resample,
) {
    let (w, h) = (src.width as i64, src.height as i64);
    let (ix, iy) = ((x >> FRAC) as i64, (y >> FRAC) as i64);
    if rs.border == Border::Constant && (ix < -1 || iy < -1 || ix >= w || iy >= h) {
        // Wholly outside (the common case in padded corners): no tap reaches the source.
        o.copy_from_slice(&rs.fill.image[..C]);
        *m = rs.fill.mask;
        return;
    }
    let stride = src.width as usize * C;
    let img = &src.image[..];
    let nx = ((x + ONE / 2) >> FRAC) as i64;
    let ny = ((y + ONE / 2) >> FRAC) as i64;
    let near = match (
        border_index(nx, w, rs.border),
        border_index(ny, h, rs.border),
    ) {
        (Some(qx), Some(qy)) => Some((qy, qx)),
        _ => None,
    };
    *m = match near {
        Some((qy, qx)) => src.mask[qy * src.width as usize + qx],
        None => rs.fill.mask,
    };
    if !LINEAR {
        match near {
            Some((qy, qx)) => {
                o.copy_from_slice(&img[qy * stride + qx * C..qy * stride + qx * C + C])
            }
            None => o.copy_from_slice(&rs.fill.image[..C]),
        }
        return;
    }
    let (fx, fy) = ((x & (ONE - 1)) as u32, (y & (ONE - 1)) as u32);
    let cx = [
        border_index(ix, w, rs.border),
        border_index(ix + 1, w, rs.border),
    ];
    let cy = [
        border_index(iy, h, rs.border),
        border_index(iy + 1, h, rs.border),
    ];
    let tap = |ty: usize, tx: usize, c: usize| -> u32 {
        match (cy[ty], cx[tx]) {
            (Some(r), Some(q)) => img[r * stride + q * C + c] as u32,
            _ => rs.fill.image[c] as u32,
        }
    };
    let (w00, w01, w10, w11) = (
        (256 - fx) * (256 - fy),
        fx * (256 - fy),
        (256 - fx) * fy,
        fx * fy,
    );
    for (c, oc) in o.iter_mut().enumerate() {
        let v = tap(0, 0, c) * w00 + tap(0, 1, c) * w01 + tap(1, 0, c) * w10 + tap(1, 1, c) * w11;
        *oc = ((v + (1 << 15)) >> 16) as u8;
    }
}
