//! Image-only transforms: the mask is never touched. All work in u8, mostly through
//! 256-entry lookup tables.

use std::sync::OnceLock;

use rand::RngCore;

use crate::rng::SampleRng;
use crate::sample::Sample;

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Map every image byte through `lut`.
pub fn apply_lut(s: &mut Sample, lut: &[u8; 256]) {
    for v in s.image.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `v * alpha + beta`, saturated (albumentations' `RandomBrightnessContrast` with beta in pixel units).
pub fn brightness_contrast(s: &mut Sample, alpha: f32, beta: f32) {
    let lut: [u8; 256] = std::array::from_fn(|v| clamp_u8(v as f32 * alpha + beta));
    apply_lut(s, &lut);
}

/// The 16-bit fixed-point form of `v * alpha + beta` (see [`brightness_contrast_fast`]),
/// or `None` outside `0 <= alpha < 2`, `|beta| < 256`.
fn linear_params(alpha: f32, beta: f32) -> Option<Linear> {
    if !((0.0..2.0).contains(&alpha) && beta.abs() < 256.0) {
        return None;
    }
    // Largest shift k with alpha * 2^k * 255 within u16.
    let k = (0..=8u32)
        .rev()
        .find(|k| alpha * (1u32 << k) as f32 <= 257.0)
        .unwrap_or(0);
    Some(Linear {
        a: (alpha * (1u32 << k) as f32).round() as u16,
        b: (beta.abs() * (1u32 << k) as f32).round() as u16,
        add: beta >= 0.0,
        half: if k > 0 { 1u16 << (k - 1) } else { 0 },
        top: 255u16 << k,
        k,
    })
}

/// `v = clamp((v * a ± b + half) >> k)`.
#[derive(Clone, Copy)]
struct Linear {
    a: u16,
    b: u16,
    add: bool,
    half: u16,
    top: u16,
    k: u32,
}

/// `v * alpha + beta`, saturated, in place.
///
/// For `0 <= alpha < 2` this runs in 16-bit fixed point (alpha to 1/128 or finer, so at
/// most one level off the exact table), which the compiler vectorises; otherwise a table.
pub fn brightness_contrast_fast(s: &mut Sample, alpha: f32, beta: f32) {
    match linear_params(alpha, beta) {
        Some(l) => linear_u8(&mut s.image, l),
        None => brightness_contrast(s, alpha, beta),
    }
}

/// [`brightness_contrast_fast`] of a borrowed sample into a new one: one pass that reads
/// the source and writes the result, instead of a copy and then a pass over the copy.
pub(crate) fn brightness_contrast_from(src: &Sample, alpha: f32, beta: f32) -> Sample {
    let Some(l) = linear_params(alpha, beta) else {
        let mut s = src.pooled_clone();
        brightness_contrast(&mut s, alpha, beta);
        return s;
    };
    let mut image = crate::pool::take_empty(src.image.len());
    // Blocks that stay in L1, appended: the output is never zeroed first.
    let mut block = [0u8; 4096];
    for chunk in src.image.chunks(block.len()) {
        let out = &mut block[..chunk.len()];
        linear_u8_to(chunk, out, l);
        image.extend_from_slice(out);
    }
    let mut mask = crate::pool::take_empty(src.mask.len());
    mask.extend_from_slice(&src.mask);
    Sample {
        width: src.width,
        height: src.height,
        channels: src.channels,
        image,
        mask,
    }
}

/// [`linear_u8`] from `src` into `dst` (the same length).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn linear_u8_to(src: &[u8], dst: &mut [u8], l: Linear) {
    let Linear {
        a,
        b,
        add,
        half,
        top,
        k,
    } = l;
    if add {
        for (d, &v) in dst.iter_mut().zip(src) {
            let t = (v as u16 * a).saturating_add(b).saturating_add(half);
            *d = (t.min(top) >> k) as u8;
        }
    } else {
        for (d, &v) in dst.iter_mut().zip(src) {
            let t = (v as u16 * a).saturating_add(half).saturating_sub(b);
            *d = (t.min(top) >> k) as u8;
        }
    }
}

/// `v = clamp((v * a ± b + half) >> k)` in u16 lanes; cloned for AVX2 and AVX-512 and
/// picked at run time, since the default x86-64 target only has SSE2.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn linear_u8(buf: &mut [u8], l: Linear) {
    let Linear {
        a,
        b,
        add,
        half,
        top,
        k,
    } = l;
    if add {
        for v in buf.iter_mut() {
            let t = (*v as u16 * a).saturating_add(b).saturating_add(half);
            *v = (t.min(top) >> k) as u8;
        }
    } else {
        for v in buf.iter_mut() {
            let t = (*v as u16 * a).saturating_add(half).saturating_sub(b);
            *v = (t.min(top) >> k) as u8;
        }
    }
}

/// `255 * (v / 255) ^ gamma`.
pub fn gamma(s: &mut Sample, gamma: f32) {
    let lut: [u8; 256] = std::array::from_fn(|v| clamp_u8(255.0 * (v as f32 / 255.0).powf(gamma)));
    apply_lut(s, &lut);
}

/// Shift hue (OpenCV 8-bit units: 180 = a full turn), saturation and value (0..255 units).
/// Gray images only get the value shift.
pub fn hue_saturation_value(s: &mut Sample, hue: f32, sat: f32, val: f32) {
    if s.channels == 1 {
        let lut: [u8; 256] = std::array::from_fn(|v| clamp_u8(v as f32 + val));
        apply_lut(s, &lut);
        return;
    }
    let sat_lut: [u8; 256] = std::array::from_fn(|v| clamp_u8(v as f32 + sat));
    let val_lut: [u8; 256] = std::array::from_fn(|v| clamp_u8(v as f32 + val));
    let hue_turns = hue / 180.0;
    for px in s.image.chunks_exact_mut(3) {
        let (r, g, b) = (px[0] as f32, px[1] as f32, px[2] as f32);
        let v = r.max(g).max(b);
        let mn = r.min(g).min(b);
        let d = v - mn;
        // Hue in turns (0..1), saturation and value in 0..255, as OpenCV's 8-bit HSV.
        let mut h = if d == 0.0 {
            0.0
        } else if v == r {
            (g - b) / (6.0 * d)
        } else if v == g {
            (b - r) / (6.0 * d) + 1.0 / 3.0
        } else {
            (r - g) / (6.0 * d) + 2.0 / 3.0
        };
        h = (h + hue_turns).rem_euclid(1.0);
        let sv = if v == 0.0 { 0 } else { clamp_u8(d * 255.0 / v) };
        let s2 = sat_lut[sv as usize] as f32 / 255.0;
        let v2 = val_lut[v as usize] as f32;
        let c = v2 * s2;
        let h6 = h * 6.0;
        let x = c * (1.0 - ((h6 % 2.0) - 1.0).abs());
        let (r1, g1, b1) = match h6 as u32 {
            0 => (c, x, 0.0),
            1 => (x, c, 0.0),
            2 => (0.0, c, x),
            3 => (0.0, x, c),
            4 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        let m = v2 - c;
        px[0] = clamp_u8(r1 + m);
        px[1] = clamp_u8(g1 + m);
        px[2] = clamp_u8(b1 + m);
    }
}

/// Inverse CDF of the standard normal at 65536 evenly spaced probabilities (tails end
/// near ±4.3σ). Looking noise up with 16 random bits is several times faster than a
/// ziggurat draw per byte, and indistinguishable for augmentation noise.
pub(crate) fn normal_table_pub() -> &'static [f32; 65536] {
    normal_table()
}

fn normal_table() -> &'static [f32; 65536] {
    static TABLE: OnceLock<Box<[f32; 65536]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0f32; 65536]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = inverse_normal_cdf((i as f64 + 0.5) / 65536.0) as f32;
        }
        t
    })
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771012e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549671010466755,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Add Gaussian noise of `std` and `mean` (pixel units); one draw per byte when
/// `per_channel`, else one per pixel shared by its channels.
pub fn gauss_noise(s: &mut Sample, std: f32, mean: f32, per_channel: bool, rng: &mut SampleRng) {
    let table = normal_table();
    let c = s.channels as usize;
    const BLOCK: usize = 4096;
    let mut bits = vec![0u8; BLOCK * 2];
    let mut idx = vec![0u16; BLOCK];
    let mut noise = vec![0f32; BLOCK];
    let chunk = if per_channel { BLOCK } else { BLOCK * c };
    for block in s.image.chunks_mut(chunk) {
        let draws = if per_channel {
            block.len()
        } else {
            block.len() / c
        };
        rng.fill_bytes(&mut bits[..draws * 2]);
        for (i, b) in idx.iter_mut().zip(bits.chunks_exact(2)) {
            *i = u16::from_le_bytes([b[0], b[1]]);
        }
        if per_channel {
            // The table lookups as plain loads (a hardware gather is slower on common x86
            // cores), then the arithmetic, which vectorises.
            for (n, &i) in noise.iter_mut().zip(&idx[..draws]) {
                *n = table[i as usize];
            }
            add_noise(block, &noise[..draws], std, mean);
        } else {
            for (px, &i) in block.chunks_exact_mut(c).zip(&idx[..draws]) {
                let n = mean + std * table[i as usize];
                for v in px {
                    *v = (*v as f32 + n).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}

/// `v += mean + std * noise[i]`, saturated; cloned for AVX2/AVX-512 (8-16 lanes).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2+fma"))]
fn add_noise(block: &mut [u8], noise: &[f32], std: f32, mean: f32) {
    // `+ 0.5` then truncation rounds like `round()` on the clamped range, and vectorises.
    let bias = mean + 0.5;
    for (v, &n) in block.iter_mut().zip(noise) {
        *v = (*v as f32 + bias + std * n).clamp(0.0, 255.0) as u8;
    }
}

/// A normalised 1-D Gaussian kernel in 14-bit fixed point. `ksize` 0 derives the size from
/// `sigma` and `sigma` 0 derives it from the size, as OpenCV's `GaussianBlur` does for u8.
pub fn gaussian_kernel(ksize: usize, sigma: f64) -> Vec<u32> {
    let ksize = if ksize == 0 {
        ((sigma * 6.0 + 1.0).round() as usize) | 1
    } else {
        ksize | 1
    };
    let sigma = if sigma <= 0.0 {
        0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8
    } else {
        sigma
    };
    let r = (ksize / 2) as f64;
    let k: Vec<f64> = (0..ksize)
        .map(|i| (-((i as f64 - r).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    let mut q: Vec<u32> = k
        .iter()
        .map(|v| (v / sum * 16384.0).round() as u32)
        .collect();
    // Put the rounding remainder on the centre tap so the weights sum to exactly 1.0.
    let total: u32 = q.iter().sum();
    let mid = ksize / 2;
    q[mid] = (q[mid] as i64 + 16384 - total as i64).max(0) as u32;
    q
}

/// Separable Gaussian blur with reflect-101 borders (OpenCV's default).
///
/// Both passes accumulate whole rows (`acc += row * weight`, one tap at a time) so that
/// the inner loops run along contiguous memory and vectorise; sums are exact integers, so
/// the order of the taps does not change a byte.
pub fn gaussian_blur(s: &mut Sample, kernel: &[u32]) {
    let (w, h, c) = (s.width as usize, s.height as usize, s.channels as usize);
    if w == 0 || h == 0 || kernel.len() <= 1 {
        return;
    }
    let r = kernel.len() / 2;
    let st = w * c;
    let mut tmp = crate::pool::take(s.image.len());
    let mut acc = vec![0u32; st];
    // Horizontal: pad each row by reflection once, then tap t reads the padded row shifted
    // by t pixels.
    let mut padded = vec![0u8; (w + 2 * r) * c];
    let map = |j: usize| {
        crate::warp::border_index(
            j as i64 - r as i64,
            w as i64,
            crate::warp::Border::Reflect101,
        )
        .unwrap_or(0)
    };
    for (src, dst) in s.image.chunks_exact(st).zip(tmp.chunks_exact_mut(st)) {
        for j in 0..r {
            let q = map(j);
            padded[j * c..j * c + c].copy_from_slice(&src[q * c..q * c + c]);
        }
        padded[r * c..r * c + st].copy_from_slice(src);
        for j in r + w..w + 2 * r {
            let q = map(j);
            padded[j * c..j * c + c].copy_from_slice(&src[q * c..q * c + c]);
        }
        acc.fill(1 << 13);
        for (t, &k) in kernel.iter().enumerate() {
            mul_add_row(&mut acc, &padded[t * c..t * c + st], k);
        }
        finish_row(&acc, dst);
    }
    // Vertical: the same on whole rows of the horizontal result.
    for y in 0..h {
        acc.fill(1 << 13);
        for (t, &k) in kernel.iter().enumerate() {
            let sy = crate::warp::border_index(
                y as i64 + t as i64 - r as i64,
                h as i64,
                crate::warp::Border::Reflect101,
            )
            .unwrap_or(0);
            mul_add_row(&mut acc, &tmp[sy * st..(sy + 1) * st], k);
        }
        finish_row(&acc, &mut s.image[y * st..(y + 1) * st]);
    }
    crate::pool::give(tmp);
}

/// `acc[i] += row[i] * k` (cloned for AVX2/AVX-512: SSE2 has no 32-bit multiply).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2", "x86_64+sse4.1"))]
fn mul_add_row(acc: &mut [u32], row: &[u8], k: u32) {
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += v as u32 * k;
    }
}

/// `dst[i] = acc[i] >> 14`, saturated (14-bit kernel weights).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn finish_row(acc: &[u32], dst: &mut [u8]) {
    for (d, &a) in dst.iter_mut().zip(acc) {
        *d = (a >> 14).min(255) as u8;
    }
}

/// Contrast-limited adaptive histogram equalisation on an 8-bit plane (OpenCV's algorithm:
/// per-tile clipped histograms, remapped with bilinear interpolation between tiles).
fn clahe_plane(plane: &mut [u8], w: usize, h: usize, clip: f64, grid: (usize, usize)) {
    let (gx, gy) = (grid.0.clamp(1, w.max(1)), grid.1.clamp(1, h.max(1)));
    let (tw, th) = (w.div_ceil(gx), h.div_ceil(gy));
    let mut luts = vec![[0u8; 256]; gx * gy];
    for ty in 0..gy {
        for tx in 0..gx {
            let (x0, y0) = (tx * tw, ty * th);
            let (x1, y1) = ((x0 + tw).min(w), (y0 + th).min(h));
            let mut hist = [0u32; 256];
            for y in y0..y1 {
                for &v in &plane[y * w + x0..y * w + x1] {
                    hist[v as usize] += 1;
                }
            }
            let area = ((x1.saturating_sub(x0)) * (y1.saturating_sub(y0))).max(1) as u32;
            let limit = ((clip * area as f64 / 256.0) as u32).max(1);
            let mut excess = 0;
            for b in hist.iter_mut() {
                if *b > limit {
                    excess += *b - limit;
                    *b = limit;
                }
            }
            let (add, rem) = (excess / 256, excess % 256);
            for (i, b) in hist.iter_mut().enumerate() {
                *b += add + u32::from((i as u32) < rem);
            }
            let scale = 255.0 / area as f64;
            let mut cum = 0u32;
            let lut = &mut luts[ty * gx + tx];
            for (i, b) in hist.iter().enumerate() {
                cum += b;
                lut[i] = clamp_u8((cum as f64 * scale) as f32);
            }
        }
    }
    for y in 0..h {
        let fy = (y as f32 + 0.5) / th as f32 - 0.5;
        let ty0 = fy.floor().max(0.0) as usize;
        let ty1 = (ty0 + 1).min(gy - 1);
        let wy = (fy - ty0 as f32).clamp(0.0, 1.0);
        for x in 0..w {
            let fx = (x as f32 + 0.5) / tw as f32 - 0.5;
            let tx0 = fx.floor().max(0.0) as usize;
            let tx1 = (tx0 + 1).min(gx - 1);
            let wx = (fx - tx0 as f32).clamp(0.0, 1.0);
            let v = plane[y * w + x] as usize;
            let a =
                luts[ty0 * gx + tx0][v] as f32 * (1.0 - wx) + luts[ty0 * gx + tx1][v] as f32 * wx;
            let b =
                luts[ty1 * gx + tx0][v] as f32 * (1.0 - wx) + luts[ty1 * gx + tx1][v] as f32 * wx;
            plane[y * w + x] = clamp_u8(a * (1.0 - wy) + b * wy);
        }
    }
}

/// CLAHE. Gray images are equalised directly; RGB images through their luma, each channel
/// shifted by the luma change (albumentations equalises LAB's L; luma keeps this in u8).
pub fn clahe(s: &mut Sample, clip: f64, grid: (usize, usize)) {
    let (w, h) = (s.width as usize, s.height as usize);
    if s.channels == 1 {
        clahe_plane(&mut s.image, w, h, clip, grid);
        return;
    }
    let luma: Vec<u8> = s.image.chunks_exact(3).map(luma).collect();
    let mut eq = luma.clone();
    clahe_plane(&mut eq, w, h, clip, grid);
    for ((px, &y0), &y1) in s.image.chunks_exact_mut(3).zip(&luma).zip(&eq) {
        let d = y1 as i16 - y0 as i16;
        for v in px {
            *v = (*v as i16 + d).clamp(0, 255) as u8;
        }
    }
}

fn luma(px: &[u8]) -> u8 {
    // ITU-R 601 weights in 16-bit fixed point, as OpenCV's RGB2GRAY.
    ((px[0] as u32 * 19595 + px[1] as u32 * 38470 + px[2] as u32 * 7471 + 32768) >> 16) as u8
}

/// Replace each RGB pixel by its luma in all three channels (gray images are unchanged).
pub fn to_gray(s: &mut Sample) {
    if s.channels == 3 {
        for px in s.image.chunks_exact_mut(3) {
            let y = luma(px);
            px.fill(y);
        }
    }
}

/// torchvision-style colour jitter in a fixed order: brightness factor, contrast factor
/// (blend with the mean luma), saturation factor (blend with per-pixel luma), hue shift
/// (fraction of a turn).
pub fn color_jitter(s: &mut Sample, brightness: f32, contrast: f32, saturation: f32, hue: f32) {
    brightness_contrast(s, brightness, 0.0);
    let n = (s.width as usize * s.height as usize).max(1);
    let mean = if s.channels == 3 {
        s.image.chunks_exact(3).map(|p| luma(p) as u64).sum::<u64>() as f32 / n as f32
    } else {
        s.image.iter().map(|&v| v as u64).sum::<u64>() as f32 / n as f32
    };
    brightness_contrast(s, contrast, (1.0 - contrast) * mean);
    if s.channels == 3 {
        for px in s.image.chunks_exact_mut(3) {
            let y = luma(px) as f32;
            for v in px {
                *v = clamp_u8(y + (*v as f32 - y) * saturation);
            }
        }
        if hue != 0.0 {
            hue_saturation_value(s, hue * 180.0, 0.0, 0.0);
        }
    }
}
