//! Thumbnails embedded in the page: downscaled photos (JPEG), colour masks and error maps
//! (PNG), as `data:` URIs.
//!
//! Masks are downscaled by priority pooling, not nearest-neighbour sampling: a 3-pixel
//! scratch in a 2000×2000 photo must still show in a 224-pixel thumbnail, or the grid lies
//! about exactly what a defect inspector cares about.

use std::io::Cursor;

use base64::Engine;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{ImageEncoder, RgbImage};

/// Thumbnail size for an image of `w`×`h` whose longest side becomes at most `max` (never
/// upscaled).
pub fn fit(w: u32, h: u32, max: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max || long == 0 {
        return (w.max(1), h.max(1));
    }
    let s = max as f64 / long as f64;
    (
        ((w as f64 * s).round() as u32).max(1),
        ((h as f64 * s).round() as u32).max(1),
    )
}

/// Downscale a photo to `tw`×`th`.
pub fn photo(img: &RgbImage, tw: u32, th: u32) -> RgbImage {
    if img.dimensions() == (tw, th) {
        return img.clone();
    }
    // `thumbnail` averages whole source blocks: as sharp as a triangle filter at these
    // ratios and several times faster on 2000×2000 photos.
    image::imageops::thumbnail(img, tw, th)
}

/// Downscale an index image by keeping, in each block, the value with the highest `rank`
/// (the first such value on ties).
pub fn pool(data: &[u8], w: u32, h: u32, tw: u32, th: u32, rank: &[u8; 256]) -> Vec<u8> {
    if (w, h) == (tw, th) {
        return data.to_vec();
    }
    let (w, h, tw, th) = (w as usize, h as usize, tw as usize, th as usize);
    let span = |i: usize, n: usize, t: usize| {
        let a = i * n / t;
        let b = ((i + 1) * n / t).max(a + 1).min(n);
        (a, b)
    };
    let mut out = Vec::with_capacity(tw * th);
    for ty in 0..th {
        let (y0, y1) = span(ty, h, th);
        for tx in 0..tw {
            let (x0, x1) = span(tx, w, tw);
            let mut best = data[y0 * w + x0];
            for y in y0..y1 {
                for &v in &data[y * w + x0..y * w + x1] {
                    if rank[v as usize] > rank[best as usize] {
                        best = v;
                    }
                }
            }
            out.push(best);
        }
    }
    out
}

/// Ranks for class masks: any foreground class beats background, which beats ignore.
pub fn class_rank(ignore: u8) -> [u8; 256] {
    let mut r = [2u8; 256];
    r[0] = 1;
    r[ignore as usize] = 0;
    r
}

/// Ranks for error maps: misses first, then false alarms, wrong classes, hits.
pub fn error_rank() -> [u8; 256] {
    use crate::scoring::cat;
    let mut r = [0u8; 256];
    r[cat::FN as usize] = 6;
    r[cat::FP as usize] = 5;
    r[cat::WRONG as usize] = 4;
    r[cat::TP as usize] = 3;
    r[cat::BG as usize] = 2;
    r[cat::IGNORE as usize] = 1;
    r
}

/// Colour an index image with `palette` (missing entries grey).
pub fn colorize(idx: &[u8], w: u32, h: u32, palette: &[[u8; 3]]) -> RgbImage {
    let mut buf = Vec::with_capacity(idx.len() * 3);
    for &v in idx {
        buf.extend_from_slice(palette.get(v as usize).unwrap_or(&[128, 128, 128]));
    }
    RgbImage::from_raw(w, h, buf).expect("one colour per index")
}

/// Blend the colours of `idx` (skipping 0 and `ignore`) into `photo` with weight `alpha`.
pub fn overlay(
    photo: &RgbImage,
    idx: &[u8],
    palette: &[[u8; 3]],
    ignore: u8,
    alpha: f32,
) -> RgbImage {
    let mut out = photo.clone();
    for (px, &v) in out.pixels_mut().zip(idx) {
        if v == 0 || v == ignore {
            continue;
        }
        let c = palette.get(v as usize).unwrap_or(&[255, 255, 255]);
        for (dst, &src) in px.0.iter_mut().zip(c) {
            *dst = (*dst as f32 * (1.0 - alpha) + src as f32 * alpha).round() as u8;
        }
    }
    out
}

/// A JPEG `data:` URI (quality 82).
pub fn jpeg_uri(img: &RgbImage) -> String {
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(&mut Cursor::new(&mut buf), 82)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding an in-memory RGB image cannot fail");
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&buf)
    )
}

/// A PNG `data:` URI: masks stay crisp.
pub fn png_uri(img: &RgbImage) -> String {
    let mut buf = Vec::new();
    PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, PngFilter::Adaptive)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding an in-memory RGB image cannot fail");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&buf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(2000, 1000, 200), (200, 100));
        assert_eq!(fit(100, 50, 200), (100, 50));
        assert_eq!(fit(1, 5000, 100), (1, 100));
    }

    #[test]
    fn pooling_keeps_a_one_pixel_defect() {
        let mut data = vec![0u8; 100 * 100];
        data[57 * 100 + 33] = 3;
        let t = pool(&data, 100, 100, 10, 10, &class_rank(255));
        assert_eq!(t.iter().filter(|&&v| v == 3).count(), 1);
        assert_eq!(t[5 * 10 + 3], 3);
    }
}
