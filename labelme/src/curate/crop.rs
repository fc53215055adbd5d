//! `crop`: crops around defects and overlapping tiles.
//!
//! Resizing a 2000×2000 photo to a network's input size makes a 10-pixel scratch vanish;
//! cropping keeps defects at full resolution. Each source image is decoded once and its
//! crops encoded in parallel. Windows that run past the image are padded: image pixels with
//! 0, mask pixels with 255 (ignore), so a loss never learns from padding. Every crop records
//! its source stem and offset in `dataset.json` (`"crop": {"stem", "x", "y", ...}`, offsets
//! composed when cropping crops) so predictions can be stitched back, and keeps the `source`
//! of its photo so that `split` keeps all crops of one photo on one side.
//!
//! An image with an object mask has it cut with the same windows, ids kept and padded with
//! 255 like the class mask (ignore in both), so each crop's instances are the parts of the
//! objects inside it. Windows are placed by the class mask in both cases.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use image::{ImageEncoder, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::output::{
    derive, read_mask, read_objects, Derived, ImageOut, Item, MaskOut, ObjectsOut,
};
use super::{components, usage, Result, Tick};
use crate::dataset::{read_rgb, Dataset, DatasetError, ImageEntry, IGNORE_INDEX};

/// Windows around defects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefectCrop {
    /// Window side in pixels; grows for a defect larger than it.
    pub size: u32,
    /// Margin kept around the defect when it fits.
    pub context: u32,
    /// Random shift of the window (± pixels), seeded, never pushing the defect out.
    pub jitter: u32,
    /// Instances whose boxes are at most this far apart get one window.
    pub merge_within: u32,
}

/// How windows are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropMode {
    /// One window per defect (instances closer than `merge_within` share one).
    AroundDefects(DefectCrop),
    /// The whole image cut into overlapping tiles.
    Tiles {
        /// Tile side in pixels.
        tile: u32,
        /// Overlap between neighbouring tiles, 0 ≤ overlap < 1.
        overlap: f64,
        /// Share of background-only tiles kept (seeded); tiles with foreground are all kept.
        keep_empty: f64,
    },
}

/// How crop images are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageCodec {
    /// Lossless PNG (fast deflate): no quality loss, larger files.
    #[default]
    Png,
    /// JPEG at this quality, or `None` for the source's own quality (estimated from its
    /// quantisation tables; 95 when the source is not a JPEG).
    Jpeg(Option<u8>),
}

/// Options of [`crop`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropOptions {
    /// Defect crops or tiles.
    pub mode: CropMode,
    /// Crop image encoding.
    pub codec: ImageCodec,
    /// Seed of jitter and of the background tiles kept.
    pub seed: u64,
}

/// Per-image counts of [`crop`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CropCounts {
    /// Crops written.
    pub written: usize,
    /// Of those, crops that needed padding.
    pub padded: usize,
    /// Background-only tiles left out.
    pub empty_skipped: usize,
}

/// What [`crop`] did.
#[derive(Debug)]
pub struct CropReport {
    /// The written dataset.
    pub derived: Derived,
    /// Totals over all images.
    pub counts: CropCounts,
}

/// A crop window in source pixels; it may extend past the image (then padded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// FNV-1a: a stable hash of a stem, so per-image randomness does not depend on thread order.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Tile origins along one axis: from 0 by `stride`, the last one flush with the far edge.
pub fn tile_starts(len: u32, tile: u32, stride: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let mut v: Vec<u32> = (0..)
        .map(|i| i * stride)
        .take_while(|&x| x + tile < len)
        .collect();
    v.push(len - tile);
    v.dedup();
    v
}

/// Merge boxes (`[x0, y0, x1, y1)`) whose gap is at most `d` on both axes, until none do.
fn merge_boxes(mut boxes: Vec<[u32; 4]>, d: u32) -> Vec<[u32; 4]> {
    let near = |a: &[u32; 4], b: &[u32; 4]| {
        let gx = a[0].max(b[0]).saturating_sub(a[2].min(b[2]));
        let gy = a[1].max(b[1]).saturating_sub(a[3].min(b[3]));
        gx <= d && gy <= d
    };
    let mut changed = true;
    while changed {
        changed = false;
        let mut i = 0;
        while i < boxes.len() {
            let mut j = i + 1;
            while j < boxes.len() {
                if near(&boxes[i], &boxes[j]) {
                    let b = boxes.swap_remove(j);
                    let a = &mut boxes[i];
                    *a = [
                        a[0].min(b[0]),
                        a[1].min(b[1]),
                        a[2].max(b[2]),
                        a[3].max(b[3]),
                    ];
                    changed = true;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
    }
    boxes.sort_by_key(|b| (b[1], b[0], b[3], b[2]));
    boxes
}

/// Window origin on one axis for a defect spanning `[b0, b1)` in an image of length `len`.
fn place(b0: u32, b1: u32, len: u32, size: u32, context: u32, jitter: i64) -> (u32, u32) {
    let blen = b1 - b0;
    let s = size.max(blen);
    let c = context.min((s - blen) / 2) as i64;
    let (b0, b1, s) = (b0 as i64, b1 as i64, s as i64);
    let lo = b1 + c - s;
    let hi = b0 - c;
    let centred = b0 + (b1 - b0) / 2 - s / 2;
    let mut x = (centred + jitter).clamp(lo, hi);
    if len as i64 >= s {
        x = x.clamp(0, len as i64 - s);
    } else {
        x = 0;
    }
    (x as u32, s as u32)
}

/// Windows around the defects of a mask.
pub fn defect_windows(
    mask: &[u8],
    width: u32,
    height: u32,
    p: DefectCrop,
    rng: &mut impl Rng,
) -> Vec<Window> {
    let boxes = components::instances(mask, width, height)
        .into_iter()
        .map(|c| {
            [
                c.bbox[0],
                c.bbox[1],
                c.bbox[0] + c.bbox[2],
                c.bbox[1] + c.bbox[3],
            ]
        })
        .collect();
    let mut out: Vec<Window> = merge_boxes(boxes, p.merge_within)
        .into_iter()
        .map(|b| {
            let j = p.jitter as i64;
            let (jx, jy) = if j > 0 {
                (rng.gen_range(-j..=j), rng.gen_range(-j..=j))
            } else {
                (0, 0)
            };
            let (x, w) = place(b[0], b[2], width, p.size, p.context, jx);
            let (y, h) = place(b[1], b[3], height, p.size, p.context, jy);
            Window { x, y, w, h }
        })
        .collect();
    out.dedup();
    out
}

/// Cut `win` out of `mask` (class or object mask), padding with 255 past the edges.
fn cut_mask(mask: &[u8], width: u32, height: u32, win: Window) -> Vec<u8> {
    let mut out = vec![IGNORE_INDEX; win.w as usize * win.h as usize];
    let cw = (width.saturating_sub(win.x)).min(win.w) as usize;
    let ch = (height.saturating_sub(win.y)).min(win.h) as usize;
    for r in 0..ch {
        let src = (win.y as usize + r) * width as usize + win.x as usize;
        out[r * win.w as usize..r * win.w as usize + cw].copy_from_slice(&mask[src..src + cw]);
    }
    out
}

/// Cut `win` out of `img`, padding with black past the edges.
fn cut_image(img: &RgbImage, win: Window) -> RgbImage {
    let (width, height) = img.dimensions();
    let mut out = RgbImage::new(win.w, win.h);
    let cw = (width.saturating_sub(win.x)).min(win.w) as usize * 3;
    let ch = (height.saturating_sub(win.y)).min(win.h) as usize;
    let (src, dst) = (img.as_raw(), &mut *out);
    let (ss, ds) = (width as usize * 3, win.w as usize * 3);
    for r in 0..ch {
        let s = (win.y as usize + r) * ss + win.x as usize * 3;
        dst[r * ds..r * ds + cw].copy_from_slice(&src[s..s + cw]);
    }
    out
}

/// Estimate the IJG quality (1..=100) a JPEG was saved with, from its luminance table: the
/// table's sum over the standard table's sum gives libjpeg's scale factor, which maps back
/// to the quality setting.
pub fn jpeg_quality(bytes: &[u8]) -> Option<u8> {
    const STD: [u32; 64] = [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
        56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
        104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xDB {
            let seg = bytes.get(i + 4..i + 2 + len)?;
            let (pq_tq, rest) = seg.split_first()?;
            // table 0 is luminance in every encoder we know; other tables are skipped
            if pq_tq & 0x0F == 0 {
                let sum: u32 = if pq_tq >> 4 == 0 {
                    rest.get(..64)?.iter().map(|&v| v as u32).sum()
                } else {
                    rest.get(..128)?
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                        .sum()
                };
                let scale = 100.0 * sum as f64 / STD.iter().sum::<u32>() as f64;
                let q = if scale <= 100.0 {
                    (200.0 - scale) / 2.0
                } else {
                    5000.0 / scale
                };
                return Some(q.round().clamp(1.0, 100.0) as u8);
            }
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + len;
    }
    None
}

fn encode(
    img: &RgbImage,
    codec: ImageCodec,
    source_quality: Option<u8>,
) -> image::ImageResult<(Vec<u8>, &'static str)> {
    let mut buf = Cursor::new(Vec::new());
    let (w, h) = img.dimensions();
    let ext = match codec {
        ImageCodec::Png => {
            image::codecs::png::PngEncoder::new_with_quality(
                &mut buf,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)?;
            "png"
        }
        ImageCodec::Jpeg(q) => {
            let q = q.or(source_quality).unwrap_or(95);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, q).write_image(
                img.as_raw(),
                w,
                h,
                image::ExtendedColorType::Rgb8,
            )?;
            "jpg"
        }
    };
    Ok((buf.into_inner(), ext))
}

/// A uniform number in [0, 1) from the seed, stem and tile position (splitmix64).
fn tile_draw(seed: u64, stem: &str, x: u32, y: u32) -> f64 {
    let mut z = seed
        ^ stable_hash(stem)
        ^ ((x as u64) << 32 | y as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn check_mode(mode: &CropMode) -> Result<()> {
    match *mode {
        CropMode::AroundDefects(DefectCrop { size: 0, .. }) => Err(usage("--size must be > 0")),
        CropMode::Tiles { tile: 0, .. } => Err(usage("--tile must be > 0")),
        CropMode::Tiles { overlap, .. } if !(0.0..1.0).contains(&overlap) => Err(usage(format!(
            "--overlap {overlap}: must be in [0, 1), e.g. 0.25"
        ))),
        CropMode::Tiles { keep_empty, .. } if !(0.0..=1.0).contains(&keep_empty) => Err(usage(
            format!("--keep-empty {keep_empty}: must be in [0, 1]"),
        )),
        _ => Ok(()),
    }
}

fn crop_one(
    ds: &Dataset,
    e: &ImageEntry,
    opts: &CropOptions,
) -> Result<(Vec<Item>, CropCounts), DatasetError> {
    let mask = read_mask(ds, e)?;
    let objects = read_objects(ds, e)?.map(|(_, ids)| ids);
    let (width, height) = (e.width, e.height);
    let mut counts = CropCounts::default();
    let windows: Vec<Window> = match opts.mode {
        CropMode::AroundDefects(p) => {
            let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ stable_hash(&e.stem));
            defect_windows(&mask, width, height, p, &mut rng)
        }
        CropMode::Tiles {
            tile,
            overlap,
            keep_empty,
        } => {
            let stride = ((tile as f64 * (1.0 - overlap)).round() as u32).max(1);
            let mut v = Vec::new();
            for y in tile_starts(height, tile, stride) {
                for x in tile_starts(width, tile, stride) {
                    let win = Window {
                        x,
                        y,
                        w: tile,
                        h: tile,
                    };
                    let has_fg = (y..(y + tile).min(height)).any(|r| {
                        let s = (r * width + x) as usize;
                        let n = (tile.min(width - x)) as usize;
                        mask[s..s + n].iter().any(|&v| components::is_foreground(v))
                    });
                    if has_fg || tile_draw(opts.seed, &e.stem, x, y) < keep_empty {
                        v.push(win);
                    } else {
                        counts.empty_skipped += 1;
                    }
                }
            }
            v
        }
    };
    if windows.is_empty() {
        return Ok((Vec::new(), counts));
    }
    let path = ds.image_path(e);
    let img = read_rgb(&path)?;
    if img.dimensions() != (width, height) {
        return Err(DatasetError::invalid(
            &path,
            format!(
                "image is {}x{} but its mask and dataset.json say {width}x{height}",
                img.width(),
                img.height()
            ),
        ));
    }
    let source_quality = match opts.codec {
        ImageCodec::Jpeg(None) => fs::read(&path).ok().and_then(|b| jpeg_quality(&b)),
        _ => None,
    };
    let nominal = match opts.mode {
        CropMode::AroundDefects(p) => p.size,
        CropMode::Tiles { tile, .. } => tile,
    };
    // offsets compose when cropping a crop, so "crop" always points at the original photo
    let (root_stem, ox, oy) = match e.extra.get("crop") {
        Some(c) => (
            c.get("stem")
                .and_then(|s| s.as_str())
                .unwrap_or(&e.stem)
                .to_string(),
            c.get("x").and_then(|v| v.as_u64()).unwrap_or(0),
            c.get("y").and_then(|v| v.as_u64()).unwrap_or(0),
        ),
        None => (e.stem.clone(), 0, 0),
    };
    let source = if e.source.is_empty() {
        e.file.clone()
    } else {
        e.source.clone()
    };
    let items: Vec<Item> = windows
        .par_iter()
        .map(|&win| {
            let m = cut_mask(&mask, width, height, win);
            let tile = cut_image(&img, win);
            let (bytes, ext) = encode(&tile, opts.codec, source_quality).map_err(|err| {
                DatasetError::invalid(&path, format!("cannot encode crop: {err}"))
            })?;
            let mut stem = format!("{}_x{}_y{}", e.stem, win.x, win.y);
            if (win.w, win.h) != (nominal, nominal) {
                stem.push_str(&format!("_{}x{}", win.w, win.h));
            }
            let mut extra = e.extra.clone();
            extra.insert(
                "crop".into(),
                serde_json::json!({
                    "stem": root_stem, "x": ox + win.x as u64, "y": oy + win.y as u64,
                    "width": win.w, "height": win.h,
                }),
            );
            let entry = ImageEntry {
                stem,
                file: String::new(),
                width: win.w,
                height: win.h,
                views: e.views.clone(),
                source: source.clone(),
                class_pixels: Default::default(),
                instances: Vec::new(),
                extra,
            };
            Ok(Item {
                entry,
                ext: ext.into(),
                image: ImageOut::Bytes(bytes),
                mask: MaskOut::Data(m),
                objects: objects
                    .as_ref()
                    .map(|o| ObjectsOut::Data(cut_mask(o, width, height, win))),
            })
        })
        .collect::<Result<_, DatasetError>>()?;
    counts.written = items.len();
    counts.padded = windows
        .iter()
        .filter(|w| w.x + w.w > width || w.y + w.h > height)
        .count();
    Ok((items, counts))
}

/// Write the crops or tiles of every image of `ds` as a new dataset at `out`.
pub fn crop(
    ds: &Dataset,
    out: &Path,
    opts: &CropOptions,
    command: &str,
    tick: Tick,
) -> Result<CropReport> {
    check_mode(&opts.mode)?;
    let (derived, per_image) = derive(ds, out, ds.manifest.classes.clone(), command, tick, |e| {
        crop_one(ds, e, opts)
    })?;
    let mut counts = CropCounts::default();
    for c in per_image {
        counts.written += c.written;
        counts.padded += c.padded;
        counts.empty_skipped += c.empty_skipped;
    }
    Ok(CropReport { derived, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_axis_and_end_flush() {
        assert_eq!(tile_starts(2000, 512, 384), vec![0, 384, 768, 1152, 1488]);
        assert_eq!(tile_starts(512, 512, 384), vec![0]);
        assert_eq!(tile_starts(300, 512, 384), vec![0]);
        assert_eq!(tile_starts(513, 512, 512), vec![0, 1]);
    }

    #[test]
    fn nearby_boxes_merge_transitively() {
        let b = merge_boxes(
            vec![
                [0, 0, 10, 10],
                [40, 0, 50, 10],
                [20, 0, 30, 10],
                [200, 200, 210, 210],
            ],
            10,
        );
        assert_eq!(b, vec![[0, 0, 50, 10], [200, 200, 210, 210]]);
    }

    #[test]
    fn placement_keeps_the_defect_and_context_inside() {
        for j in [-1000, -32, 0, 32, 1000] {
            let (x, s) = place(100, 140, 1000, 128, 16, j);
            assert_eq!(s, 128);
            assert!(x + 16 <= 100 && 140 + 16 <= x + s, "j={j} x={x}");
        }
        // near the edge: clamped inside the image, defect still inside
        let (x, _) = place(990, 1000, 1000, 128, 16, 0);
        assert_eq!(x, 872);
        // larger than the window: the window grows
        assert_eq!(place(10, 300, 1000, 128, 16, 0), (10, 290));
        // image smaller than the window: origin 0, padded later
        assert_eq!(place(10, 20, 50, 128, 16, 5), (0, 128));
    }

    #[test]
    fn quality_estimate_matches_encoder_setting() {
        let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 7]));
        for q in [50u8, 75, 90, 95] {
            let (bytes, _) = encode(&img, ImageCodec::Jpeg(Some(q)), None).unwrap();
            let est = jpeg_quality(&bytes).unwrap();
            assert!((est as i32 - q as i32).abs() <= 1, "q={q} est={est}");
        }
    }
}
