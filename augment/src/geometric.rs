//! Exact geometric transforms (no resampling): flips, 90° rotations, transpose, crops, pads.
//! Image and mask go through the same index mapping, so they can never disagree.

use crate::pool;
use crate::sample::Sample;
use crate::warp::{border_index, Border, Fill};

/// Mirror left-right.
pub fn hflip(s: &Sample) -> Sample {
    let (w, c) = (s.width as usize, s.channels as usize);
    let mut image = pool::take_empty(s.image.len());
    let mut mask = pool::take_empty(s.mask.len());
    if w > 0 {
        for row in s.image.chunks_exact(w * c) {
            let start = image.len();
            image.resize(start + row.len(), 0);
            if c == 3 {
                mirror_rgb_row(row, &mut image[start..]);
            } else {
                image[start..].copy_from_slice(row);
                image[start..].reverse();
            }
        }
        for row in s.mask.chunks_exact(w) {
            let start = mask.len();
            mask.extend_from_slice(row);
            mask[start..].reverse();
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

/// `dst` = `src` with its 3-byte pixels in reverse order.
///
/// Five pixels at a time through a `u128`: a byte swap reverses the 15 bytes (pixel order
/// and channel order), then a delta swap puts each pixel's R and B back. Each 16-byte store
/// writes one byte too many, which the next group overwrites; the last pixels go one by one.
fn mirror_rgb_row(src: &[u8], dst: &mut [u8]) {
    // Bytes 0, 3, 6, 9, 12: the first channel of each of the five pixels.
    const M: u128 = 0xFF | 0xFF << 24 | 0xFF << 48 | 0xFF << 72 | 0xFF << 96;
    let n = src.len() / 3;
    let mut i = 0; // output pixel
                   // Output pixels i..i+5 are source pixels n-i-5..n-i; the 16-byte load starts one byte
                   // before them, so it needs n-i-5 >= 1, and the store needs room for 16 bytes.
    while i + 6 <= n {
        let s0 = (n - i - 5) * 3 - 1;
        let x = u128::from_le_bytes(src[s0..s0 + 16].try_into().expect("16 bytes"));
        // After the swap, byte k holds source byte s0+15-k: pixel bytes are 0..15 reversed.
        let x = x.swap_bytes();
        let t = (x ^ (x >> 16)) & M;
        let y = x ^ t ^ (t << 16);
        dst[i * 3..i * 3 + 16].copy_from_slice(&y.to_le_bytes());
        i += 5;
    }
    for (d, s) in dst[i * 3..]
        .chunks_exact_mut(3)
        .zip(src[..(n - i) * 3].chunks_exact(3).rev())
    {
        d.copy_from_slice(s);
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
