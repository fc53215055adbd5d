//! Elastic deformation (albumentations' `ElasticTransform`): random displacement fields,
//! normalised to [-1, 1], smoothed by a Gaussian of `sigma`, scaled by `alpha`: the maps of a
//! [`crate::warp::remap`].
//!
//! The smoothing is three running-sum box blurs whose combined variance matches `sigma²`
//! (Wells, 1986): cost independent of `sigma`, where an exact kernel would be 6σ+1 taps.

use rand::Rng;

use crate::rng::SampleRng;

/// Elastic-transform parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elastic {
    /// Displacement scale in pixels.
    pub alpha: f32,
    /// Smoothness (Gaussian standard deviation) of the displacement field, pixels.
    pub sigma: f32,
    /// One field for both directions.
    pub same_dxdy: bool,
    /// Uniform noise in [-1, 1] instead of normalised Gaussian noise.
    pub uniform: bool,
}

/// The source coordinates (x map, y map) of a `w`×`h` elastic deformation drawn from `rng`;
/// `None` (and nothing drawn) for an empty image.
pub(crate) fn elastic_maps(
    w: usize,
    h: usize,
    e: Elastic,
    rng: &mut SampleRng,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let n = w * h;
    if n == 0 {
        return None;
    }
    let field = |rng: &mut SampleRng| -> Vec<f32> {
        let mut f: Vec<f32> = if e.uniform {
            (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
        } else {
            let mut f = vec![0f32; n];
            gaussian_fill(&mut f, rng);
            let m = f.iter().fold(0f32, |a, v| a.max(v.abs()));
            if m > 1e-6 {
                f.iter_mut().for_each(|v| *v /= m);
            }
            f
        };
        gaussian_smooth(&mut f, w, h, e.sigma);
        f.iter_mut().for_each(|v| *v *= e.alpha);
        f
    };
    let dx = field(rng);
    let dy = if e.same_dxdy { dx.clone() } else { field(rng) };
    let mut mx = dx;
    let mut my = dy;
    // Row by row, one plane at a time: loops without index arithmetic vectorise.
    for row in mx.chunks_exact_mut(w) {
        for (x, v) in row.iter_mut().enumerate() {
            *v += x as f32;
        }
    }
    for (y, row) in my.chunks_exact_mut(w).enumerate() {
        let y = y as f32;
        row.iter_mut().for_each(|v| *v += y);
    }
    Some((mx, my))
}

fn gaussian_fill(f: &mut [f32], rng: &mut SampleRng) {
    use rand::RngCore;
    let mut bits = vec![0u8; f.len() * 2];
    rng.fill_bytes(&mut bits);
    let t = crate::photometric::normal_table_pub();
    for (v, b) in f.iter_mut().zip(bits.chunks_exact(2)) {
        *v = t[u16::from_le_bytes([b[0], b[1]]) as usize];
    }
}

/// Box radii of three passes approximating a Gaussian of `sigma`.
fn box_radii(sigma: f32) -> [usize; 3] {
    let n = 3.0f32;
    let wi = (12.0 * sigma * sigma / n + 1.0).sqrt();
    let mut wl = wi.floor() as i64;
    if wl % 2 == 0 {
        wl -= 1;
    }
    let wl = wl.max(1);
    let wu = wl + 2;
    let m = ((12.0 * sigma * sigma - n * (wl * wl) as f32 - 4.0 * n * wl as f32 - 3.0 * n)
        / (-4.0 * wl as f32 - 4.0))
        .round() as i64;
    std::array::from_fn(|i| (if (i as i64) < m { wl } else { wu } as usize - 1) / 2)
}

/// In-place Gaussian smoothing (replicate border) by three box blurs per direction.
fn gaussian_smooth(f: &mut [f32], w: usize, h: usize, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let mut line = Vec::new();
    let mut out = vec![0f32; w];
    let mut tmp = vec![0f32; f.len()];
    for r in box_radii(sigma) {
        if r == 0 {
            continue;
        }
        for row in f.chunks_exact_mut(w) {
            box_line(row, &mut line, &mut out, r);
            row.copy_from_slice(&out);
        }
        box_columns(f, &mut tmp, w, h, r);
        f.copy_from_slice(&tmp);
    }
}

/// Mean over a `2r+1` window with replicated ends, by a running sum over a padded copy.
fn box_line(src: &[f32], padded: &mut Vec<f32>, out: &mut [f32], r: usize) {
    let n = src.len();
    padded.clear();
    padded.extend(std::iter::repeat_n(src[0], r));
    padded.extend_from_slice(src);
    padded.extend(std::iter::repeat_n(src[n - 1], r + 1));
    let inv = 1.0 / (2 * r + 1) as f32;
    let mut sum: f32 = padded[..2 * r + 1].iter().sum();
    for (i, o) in out.iter_mut().enumerate() {
        *o = sum * inv;
        sum += padded[i + 2 * r + 1] - padded[i];
    }
}

/// The vertical box blur, row by row: a running sum of whole rows, so every pass reads
/// memory in order (and vectorises) instead of striding down columns.
fn box_columns(src: &[f32], dst: &mut [f32], w: usize, h: usize, r: usize) {
    let inv = 1.0 / (2 * r + 1) as f32;
    let row = |y: i64| {
        let y = y.clamp(0, h as i64 - 1) as usize;
        &src[y * w..(y + 1) * w]
    };
    let mut sum = vec![0f32; w];
    for k in -(r as i64)..=(r as i64) {
        for (s, v) in sum.iter_mut().zip(row(k)) {
            *s += v;
        }
    }
    for (y, out) in dst.chunks_exact_mut(w).enumerate() {
        for (o, s) in out.iter_mut().zip(&sum) {
            *o = s * inv;
        }
        let (add, sub) = (row(y as i64 + r as i64 + 1), row(y as i64 - r as i64));
        for ((s, a), b) in sum.iter_mut().zip(add).zip(sub) {
            *s += a - b;
        }
    }
}
