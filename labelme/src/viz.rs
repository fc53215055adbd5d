//! `SegmentationClassVisualization/`: the photo with its classes blended in, for people to
//! look at (training never reads it).
//!
//! It is written at most [`VIZ_MAX_SIDE`] pixels on the long side: a 2000×2000 photo is
//! shrunk by an integer factor to 1000×1000, which is what fits a screen anyway, and
//! re-encoding a full-size JPEG was most of a conversion's time. A shrunk pixel takes the
//! most specific class under it (a defect class over background and ignore), so a
//! one-pixel scratch still shows in full colour. Masks stay full resolution.

use std::path::Path;

use image::RgbImage;

use crate::dataset::{atomic_write, voc_colormap, DatasetError, IGNORE_INDEX};

/// The longest side of a visualization, in pixels.
pub const VIZ_MAX_SIDE: u32 = 1024;

/// JPEG quality of the visualization.
pub const VIZ_QUALITY: u8 = 90;

/// The integer factor that brings `width × height` to at most [`VIZ_MAX_SIDE`] a side.
pub fn shrink_factor(width: u32, height: u32) -> u32 {
    width.max(height).div_ceil(VIZ_MAX_SIDE).max(1)
}

/// The visualization of `img` with class mask `class` (same size, row-major): shrunk by
/// [`shrink_factor`] (block means), each pixel with a class other than background
/// half-blended with the class's VOC colour.
pub fn visualization(img: &RgbImage, class: &[u8]) -> RgbImage {
    let (w, h) = img.dimensions();
    assert_eq!(class.len(), w as usize * h as usize, "mask size");
    let k = shrink_factor(w, h) as usize;
    let (w, h) = (w as usize, h as usize);
    let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
    let cmap = voc_colormap();
    let src = img.as_raw();
    let mut out = vec![0u8; ow * oh * 3];
    // per input column sums over the k rows of a block (a loop the compiler vectorises),
    // then per block sums once per output row
    let mut cols = vec![0u32; w * 3];
    let mut sums = vec![0u32; ow * 3];
    let mut classes = vec![0u8; ow];
    for oy in 0..oh {
        let rows = oy * k..((oy + 1) * k).min(h);
        let count_y = rows.len() as u32;
        cols.fill(0);
        classes.fill(0);
        for y in rows {
            let row = &src[y * w * 3..(y + 1) * w * 3];
            for (acc, &v) in cols.iter_mut().zip(row) {
                *acc += v as u32;
            }
            // most rows of a defect photo hold no class at all
            let crow = &class[y * w..(y + 1) * w];
            if crow.iter().fold(0, |acc, &c| acc | c) != 0 {
                for (slot, block) in classes.iter_mut().zip(crow.chunks(k)) {
                    for &c in block {
                        if c != 0 {
                            *slot = most_specific(*slot, c);
                        }
                    }
                }
            }
        }
        for (s, block) in sums.chunks_exact_mut(3).zip(cols.chunks(3 * k)) {
            s.fill(0);
            for px in block.chunks_exact(3) {
                s[0] += px[0];
                s[1] += px[1];
                s[2] += px[2];
            }
        }
        let orow = &mut out[oy * ow * 3..(oy + 1) * ow * 3];
        // a float reciprocal per block: three integer divisions per pixel were a third of
        // the time
        let full_inv = 1.0 / (count_y * k as u32) as f32;
        let blocks = orow
            .chunks_exact_mut(3)
            .zip(classes.iter().zip(sums.chunks_exact(3)));
        for (o, (px, (&c, s))) in blocks.enumerate() {
            let inv = match (o + 1) * k <= w {
                true => full_inv,
                false => 1.0 / (count_y * (w - o * k) as u32) as f32,
            };
            let colour = &cmap[c as usize];
            for ((p, &sum), &col) in px.iter_mut().zip(s).zip(colour) {
                let mean = (sum as f32 * inv + 0.5) as u32;
                *p = match c {
                    0 => mean as u8,
                    // half of the class colour, rounding up
                    _ => (mean + col as u32).div_ceil(2) as u8,
                };
            }
        }
    }
    RgbImage::from_raw(ow as u32, oh as u32, out).expect("buffer size")
}

/// Of two classes under one shrunk pixel, the one to show: any class over background and
/// ignore, ignore over background, the larger id between two classes (deterministic).
fn most_specific(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        0 => 0u16,
        IGNORE_INDEX => 1,
        c => 2 + c as u16,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Write the visualization as a JPEG ([`VIZ_QUALITY`]), atomically.
pub fn write_visualization(path: &Path, img: &RgbImage, class: &[u8]) -> Result<(), DatasetError> {
    let viz = visualization(img, class);
    let mut jpg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpg, VIZ_QUALITY)
        .encode(
            viz.as_raw(),
            viz.width() as u16,
            viz.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| DatasetError::invalid(path, format!("encoding the visualization: {e}")))?;
    atomic_write(path, &jpg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_keep_their_size_and_blend_as_labelme_colours() {
        let img = RgbImage::from_fn(4, 3, |x, y| {
            image::Rgb([(x * 50) as u8, (y * 80) as u8, 10])
        });
        let mut class = vec![0u8; 12];
        class[5] = 1; // (1, 1)
        class[11] = 255; // (3, 2)
        let v = visualization(&img, &class);
        assert_eq!(v.dimensions(), (4, 3));
        assert_eq!(v.get_pixel(0, 0), img.get_pixel(0, 0));
        // class 1 is (128, 0, 0) in the VOC palette: (50 + 128) / 2, (80 + 0) / 2, (10 + 0) / 2 up
        assert_eq!(v.get_pixel(1, 1).0, [89, 40, 5]);
        // ignore (224, 224, 192)
        assert_eq!(
            v.get_pixel(3, 2).0,
            [187, 192, 101] // (150 + 224) / 2, (160 + 224) / 2, (10 + 192) / 2, rounded up
        );
    }

    #[test]
    fn large_images_shrink_and_thin_defects_stay_visible() {
        let (w, h) = (2050u32, 1000u32);
        assert_eq!(shrink_factor(w, h), 3);
        let img = RgbImage::from_pixel(w, h, image::Rgb([100, 100, 100]));
        let mut class = vec![0u8; (w * h) as usize];
        // a one-pixel vertical scratch at x = 301 and an ignore region around it
        for y in 0..h {
            class[(y * w + 300) as usize] = 255;
            class[(y * w + 301) as usize] = 2;
        }
        let v = visualization(&img, &class);
        assert_eq!(v.dimensions(), (684, 334)); // ceil(2050 / 3), ceil(1000 / 3)
                                                // class 2 is (0, 128, 0): the block holding x = 300..303 shows it, its neighbours not
        assert_eq!(v.get_pixel(100, 10).0, [50, 114, 50]);
        assert_eq!(v.get_pixel(99, 10).0, [100, 100, 100]);
        assert_eq!(v.get_pixel(683, 333).0, [100, 100, 100]);
    }

    #[test]
    fn written_jpeg_decodes_at_the_shrunk_size() {
        let dir = tempfile::tempdir().unwrap();
        let img = RgbImage::from_fn(1500, 600, |x, _| image::Rgb([(x % 256) as u8, 0, 0]));
        let class = vec![1u8; 1500 * 600];
        let p = dir.path().join("v.jpg");
        write_visualization(&p, &img, &class).unwrap();
        let back = image::open(&p).unwrap();
        assert_eq!((back.width(), back.height()), (750, 300));
    }
}
