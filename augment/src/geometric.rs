//! Exact geometric transforms (no resampling): flips, 90° rotations, transpose, crops, pads.
//! Image and mask go through the same index mapping, so they can never disagree.

use crate::pool;
use crate::sample::Sample;
use crate::warp::{border_index, Border, Fill};

/// Mirror left-right.
pub fn hflip(s: &Sample) -> Sample {
    let (w, c) = (s.width as usize, s.channels as usize);
    // Filled by appending (the output is never zeroed first), 192-256 bytes at a time so
    // that the Vec's length bookkeeping is a small share of the work.
    let mut image = pool::take_empty(s.image.len());
    let mut mask = pool::take_empty(s.mask.len());
    if w > 0 {
        for row in s.image.chunks_exact(w * c) {
            if c == 3 {
                mirror_row::<3>(row, &mut image);
            } else {
                mirror_row::<1>(row, &mut image);
            }
        }
        for row in s.mask.chunks_exact(w) {
            mirror_row::<1>(row, &mut mask);
        }
    }
    Sample {
        width: s.width,
        height: s.height,
        channels: s.channels,
        image,
        mask,
    }
}

/// Append `src`'s pixels (`C` bytes each, `C` = 1 or 3) to `dst` in reverse order.
///
/// Why blocks of 16 (RGB) or 64 (gray) pixels: a fixed permutation of a 48- or 64-byte
/// array is something LLVM turns into byte shuffles (`pshufb`, or `vpermb` with AVX-512
/// VBMI), whereas a pixel-by-pixel reverse copy of 3-byte pixels stays scalar. Four such
/// blocks are appended at once. The clones for AVX-512 VBMI, AVX2 and SSSE3 are picked at
/// run time (the default x86-64 target has no byte shuffle).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vbmi",
    "x86_64+avx2",
    "x86_64+ssse3"
))]
fn mirror_row<const C: usize>(src: &[u8], dst: &mut Vec<u8>) {
    let n = src.len() / C;
    let b = if C == 3 { 16 } else { 64 };
    let mut i = 0;
    let mut group = [0u8; 256];
    let gl = 4 * b * C;
    // Output pixels i..i+4b are source pixels n-i-4b..n-i, in reverse order.
    while i + 4 * b <= n {
        for (q, d) in group[..gl].chunks_exact_mut(b * C).enumerate() {
            let s0 = (n - i - (q + 1) * b) * C;
            if C == 3 {
                let a: &[u8; 48] = src[s0..s0 + 48].try_into().expect("48 bytes");
                let o: [u8; 48] = std::array::from_fn(|k| a[(15 - k / 3) * 3 + k % 3]);
                d.copy_from_slice(&o);
            } else {
                let a: &[u8; 64] = src[s0..s0 + 64].try_into().expect("64 bytes");
                let o: [u8; 64] = std::array::from_fn(|k| a[63 - k]);
                d.copy_from_slice(&o);
            }
        }
        dst.extend_from_slice(&group[..gl]);
        i += 4 * b;
    }
    // Rows whose width is not a multiple of 4 blocks: single blocks, then single pixels.
    while i + b <= n {
        let s0 = (n - i - b) * C;
        if C == 3 {
            let a: &[u8; 48] = src[s0..s0 + 48].try_into().expect("48 bytes");
            let o: [u8; 48] = std::array::from_fn(|k| a[(15 - k / 3) * 3 + k % 3]);
            dst.extend_from_slice(&o);
        } else {
            let a: &[u8; 64] = src[s0..s0 + 64].try_into().expect("64 bytes");
            let o: [u8; 64] = std::array::from_fn(|k| a[63 - k]);
            dst.extend_from_slice(&o);
        }
        i += b;
    }
    for px in src[..(n - i) * C].chunks_exact(C).rev() {
        dst.extend_from_slice(px);
    }
}

/// Mirror top-bottom.
pub fn vflip(s: &Sample) -> Sample {
    let (st, w) = (s.stride(), s.width as usize);
    let mut image = pool::take_empty(s.image.len());
    let mut mask = pool::take_empty(s.mask.len());
    if w > 0 {
        for row in s.image.chunks_exact(st).rev() {
            image.extend_from_slice(row);
        }
        for row in s.mask.chunks_exact(w).rev() {
            mask.extend_from_slice(row);
        }
    }
    Sample {
        width: s.width,
        height: s.height,
        channels: s.channels,
        image,
        mask,
    }
}

/// Rotate by `k` quarter turns counter-clockwise (as `numpy.rot90(img, k)`).
pub fn rot90(s: &Sample, k: u32) -> Sample {
    let (w, h) = (s.width as isize, s.height as isize);
    // Output pixel (i = row, j = column) reads source pixel base + i*di + j*dj.
    match k % 4 {
        0 => s.clone(),
        1 => permute(s, h as usize, w as usize, w - 1, -1, w),
        2 => permute(s, w as usize, h as usize, h * w - 1, -w, -1),
        _ => permute(s, h as usize, w as usize, (h - 1) * w, 1, -w),
    }
}

/// Swap rows and columns.
pub fn transpose(s: &Sample) -> Sample {
    permute(
        s,
        s.height as usize,
        s.width as usize,
        0,
        1,
        s.width as isize,
    )
}

/// Output `ow`×`oh` where output (row i, column j) is source pixel `base + i*di + j*dj`.
/// Walks the output in tiles so that the column-order reads stay in cache.
fn permute(s: &Sample, ow: usize, oh: usize, base: isize, di: isize, dj: isize) -> Sample {
    fn run<const C: usize>(
        src: &[u8],
        dst: &mut [u8],
        ow: usize,
        oh: usize,
        (base, di, dj): (isize, isize, isize),
    ) {
        const T: usize = 32;
        for ti in (0..oh).step_by(T) {
            for tj in (0..ow).step_by(T) {
                for i in ti..(ti + T).min(oh) {
                    let row = &mut dst[i * ow * C..(i + 1) * ow * C];
                    let mut p = base + i as isize * di + tj as isize * dj;
                    for j in tj..(tj + T).min(ow) {
                        let o = p as usize * C;
                        row[j * C..j * C + C].copy_from_slice(&src[o..o + C]);
                        p += dj;
                    }
                }
            }
        }
    }
    let mut out = Sample::blank(ow, oh, s.channels);
    let m = (base, di, dj);
    match s.channels {
        3 => run::<3>(&s.image, &mut out.image, ow, oh, m),
        _ => run::<1>(&s.image, &mut out.image, ow, oh, m),
    }
    run::<1>(&s.mask, &mut out.mask, ow, oh, m);
    out
}

/// The `w`×`h` window at `(x, y)`; the window must lie inside the sample.
pub fn crop(s: &Sample, x: usize, y: usize, w: usize, h: usize) -> Sample {
    let c = s.channels as usize;
    let (sw, st) = (s.width as usize, s.stride());
    debug_assert!(x + w <= sw && y + h <= s.height as usize);
    let mut image = pool::take_empty(w * h * c);
    let mut mask = pool::take_empty(w * h);
    for r in y..y + h {
        image.extend_from_slice(&s.image[r * st + x * c..r * st + (x + w) * c]);
        mask.extend_from_slice(&s.mask[r * sw + x..r * sw + x + w]);
    }
    Sample {
        width: w as u32,
        height: h as u32,
        channels: s.channels,
        image,
        mask,
    }
}

/// Pad by the given margins; new pixels follow `border` (constant ones take `fill`).
pub fn pad(
    s: &Sample,
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
    border: Border,
    fill: Fill,
) -> Sample {
    let c = s.channels as usize;
    let (w, h) = (s.width as usize, s.height as usize);
    let (ow, oh) = (w + left + right, h + top + bottom);
    let mut out = Sample::blank(ow, oh, s.channels);
    if w == 0 || h == 0 {
        for px in out.image.chunks_exact_mut(c) {
            px.copy_from_slice(&fill.image[..c]);
        }
        out.mask.fill(fill.mask);
        return out;
    }
    let cols: Vec<Option<usize>> = (0..ow)
        .map(|j| border_index(j as i64 - left as i64, w as i64, border))
        .collect();
    for i in 0..oh {
        let src_row = border_index(i as i64 - top as i64, h as i64, border);
        let img = &mut out.image[i * ow * c..(i + 1) * ow * c];
        let msk = &mut out.mask[i * ow..(i + 1) * ow];
        match src_row {
            None => {
                for px in img.chunks_exact_mut(c) {
                    px.copy_from_slice(&fill.image[..c]);
                }
                msk.fill(fill.mask);
            }
            Some(r) => {
                for (j, col) in cols.iter().enumerate() {
                    match col {
                        Some(q) => {
                            let o = (r * w + q) * c;
                            img[j * c..j * c + c].copy_from_slice(&s.image[o..o + c]);
                            msk[j] = s.mask[r * w + q];
                        }
                        None => {
                            img[j * c..j * c + c].copy_from_slice(&fill.image[..c]);
                            msk[j] = fill.mask;
                        }
                    }
                }
            }
        }
    }
    out
}
