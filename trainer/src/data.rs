//! Training data: splits from the dataset folder, images and masks decoded once into
//! memory, the up-front label check that explains classic mask mistakes, dataset facts for
//! the config defaults, and deterministic crop sampling (a share centred on foreground).

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use segkit_labelme::dataset::{self, Dataset, IGNORE_INDEX};

use crate::error::{Result, TrainError};

/// One image and its mask, decoded.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Stem in the dataset.
    pub stem: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGB, row-major, 3 bytes a pixel.
    pub rgb: Vec<u8>,
    /// Class indices, row-major (255 = ignore).
    pub mask: Vec<u8>,
    /// Pixel indices of foreground (class ≥ 1, not ignore), for foreground-centred crops.
    pub fg: Vec<u32>,
}

/// The train and val splits of a dataset.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Stems trained on.
    pub train: Vec<String>,
    /// Stems validated on.
    pub val: Vec<String>,
    /// How the split was obtained, for the log.
    pub origin: String,
}

/// Train/val stems: the named split files, the complement of one of them, or (with none) a
/// seeded random hold-out of `val_share` of the images.
pub fn splits(
    ds: &Dataset,
    train_name: &str,
    val_name: &str,
    val_share: f64,
    seed: u64,
) -> Result<Splits> {
    let all: Vec<String> = ds.manifest.images.iter().map(|e| e.stem.clone()).collect();
    let train = ds.split(train_name)?;
    let val = ds.split(val_name)?;
    let minus = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|s| !b.contains(s)).cloned().collect()
    };
    let s = match (train, val) {
        (Some(t), Some(v)) => Splits {
            train: t,
            val: v,
            origin: format!("splits {train_name}.txt and {val_name}.txt"),
        },
        (Some(t), None) => Splits {
            val: minus(&all, &t),
            train: t,
            origin: format!("{train_name}.txt; val = the other images"),
        },
        (None, Some(v)) => Splits {
            train: minus(&all, &v),
            val: v,
            origin: format!("{val_name}.txt; train = the other images"),
        },
        (None, None) => {
            let mut stems = all.clone();
            stems.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            let n_val = if stems.len() < 2 {
                0
            } else {
                ((stems.len() as f64 * val_share).round() as usize).clamp(1, stems.len() - 1)
            };
            let val = stems.split_off(stems.len() - n_val);
            Splits {
                train: stems,
                val,
                origin: format!(
                    "no split files: random {:.0}% hold-out with seed {seed}",
                    val_share * 100.0
                ),
            }
        }
    };
    let root = ds.root.join(dataset::SPLITS_DIR);
    if s.train.is_empty() {
        return Err(TrainError::Labels(format!(
            "{}: no training images ({}); list them in {train_name}.txt",
            root.display(),
            s.origin
        )));
    }
    if s.val.is_empty() {
        return Err(TrainError::Labels(format!(
            "{}: no validation images ({}): every run is judged on held-out images; make a split with `segkit split` or list stems in {val_name}.txt",
            root.display(),
            s.origin
        )));
    }
    ds.entries(&s.train)?;
    ds.entries(&s.val)?;
    Ok(s)
}

/// Decode the images and masks of `stems` (in parallel; order kept).
pub fn load(ds: &Dataset, stems: &[String]) -> Result<Vec<Sample>> {
    let entries = ds.entries(stems)?;
    entries
        .par_iter()
        .map(|e| {
            let img_path = ds.image_path(e);
            let img = dataset::read_rgb(&img_path)?;
            let mask_path = ds.mask_path(&e.stem);
            let mask = dataset::read_index_png(&mask_path).map_err(|err| {
                TrainError::Labels(format!(
                    "{err}\nLikely cause: the mask was saved as an RGB colour image (e.g. from a paint program or `Image.convert('RGB')`). \
                     Class masks hold one class index per pixel: re-export them with `segkit convert`, or save P/L-mode PNGs with values 0..N-1"
                ))
            })?;
            if (mask.width, mask.height) != img.dimensions() {
                return Err(TrainError::Labels(format!(
                    "{}: mask is {}×{} but its image {} is {}×{}; masks must match their image pixel for pixel",
                    mask_path.display(),
                    mask.width,
                    mask.height,
                    img_path.display(),
                    img.width(),
                    img.height()
                )));
            }
            let fg = mask.data.iter().enumerate().filter(|(_, &v)| v != 0 && v != IGNORE_INDEX).map(|(i, _)| i as u32).collect();
            Ok(Sample {
                stem: e.stem.clone(),
                width: img.width() as usize,
                height: img.height() as usize,
                rgb: img.into_raw(),
                mask: mask.data,
                fg,
            })
        })
        .collect()
}

/// `s` resized to `side`² (image bilinear, mask nearest), for the naive whole-image recipe.
pub fn resized(s: &Sample, side: usize) -> Sample {
    use image::imageops::{resize, FilterType};
    let img = image::RgbImage::from_raw(s.width as u32, s.height as u32, s.rgb.clone())
        .expect("sample buffer");
    let mask = image::GrayImage::from_raw(s.width as u32, s.height as u32, s.mask.clone())
        .expect("sample buffer");
    let img = resize(&img, side as u32, side as u32, FilterType::Triangle).into_raw();
    let mask = resize(&mask, side as u32, side as u32, FilterType::Nearest).into_raw();
    let fg = mask
        .iter()
        .enumerate()
        .filter(|(_, &v)| v != 0 && v != IGNORE_INDEX)
        .map(|(i, _)| i as u32)
        .collect();
    Sample {
        stem: s.stem.clone(),
        width: side,
        height: side,
        rgb: img,
        mask,
        fg,
    }
}

/// Check every mask against `num_classes`; explain what is wrong and its likely cause.
pub fn check_labels(root: &Path, samples: &[&Sample], class_names: &[String]) -> Result<()> {
    let c = class_names.len();
    let mut hist = [0u64; 256];
    let mut bad_files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut files_with_255 = 0;
    for s in samples {
        let mut h = [0u64; 256];
        for &v in &s.mask {
            h[v as usize] += 1;
        }
        if h[255] > 0 {
            files_with_255 += 1;
        }
        let bad: Vec<u8> = (c..255).filter(|&v| h[v] > 0).map(|v| v as u8).collect();
        if !bad.is_empty() {
            bad_files.push((s.stem.clone(), bad));
        }
        for v in 0..256 {
            hist[v] += h[v];
        }
    }
    let fg: u64 = hist[1..c.min(255)].iter().sum();
    let classes = class_names.join(", ");
    let masks_dir = root.join(dataset::MASKS_DIR);
    if bad_files.is_empty() {
        if fg == 0 && files_with_255 > 0 {
            return Err(TrainError::Labels(format!(
                "{}: no mask has a single foreground pixel, but {files_with_255} of {} masks contain 255 ({} pixels).\n\
                 Likely cause: 0/255 binary masks (white = defect). In segkit, as in VOC, 255 means \"ignore\", so every defect pixel would be skipped and the model would learn all-background.\n\
                 Fix: store the defect as 1 (re-export with `segkit convert`, or map 255→1 in your masks).",
                masks_dir.display(),
                samples.len(),
                hist[255]
            )));
        }
        return Ok(());
    }
    let counts: BTreeMap<u8, u64> = (c..255)
        .filter(|&v| hist[v] > 0)
        .map(|v| (v as u8, hist[v]))
        .collect();
    let mut msg = format!(
        "{}: {} of {} masks have values outside 0..{} (the dataset has {c} classes: {classes}; 255 = ignore).\nPixel counts of the bad values: {}\nFirst files: {}",
        masks_dir.display(),
        bad_files.len(),
        samples.len(),
        c - 1,
        counts.iter().take(12).map(|(v, n)| format!("{v}: {n}")).collect::<Vec<_>>().join(", "),
        bad_files.iter().take(5).map(|(s, v)| format!("{s}.png ({})", v.iter().take(6).map(|x| x.to_string()).collect::<Vec<_>>().join(", "))).collect::<Vec<_>>().join("; "),
    );
    let values: Vec<u8> = counts.keys().copied().collect();
    let gray_of_voc: Vec<u8> = dataset::voc_colormap()[1..32]
        .iter()
        .map(|[r, g, b]| ((299 * *r as u32 + 587 * *g as u32 + 114 * *b as u32 + 500) / 1000) as u8)
        .collect();
    let distinct = values.len() + (0..c).filter(|&v| hist[v] > 0).count();
    let cause = if values.iter().all(|v| gray_of_voc.contains(v)) {
        "colour (RGB) masks converted to grayscale: the values are the gray levels of VOC palette colours, not class ids. Re-export the masks as P-mode PNGs (`segkit convert`) or map each colour to its class index"
    } else if distinct > 20 {
        "the masks are not class-index images: many different values look like a grayscale photo, an anti-aliased or JPEG-compressed mask. Save masks losslessly (PNG) with exact values 0..N-1"
    } else if values.iter().all(|&v| (v as usize) < c + 8) {
        "wrong number of classes: the masks use class ids the dataset does not list. Add the missing names to class_names.txt/dataset.json (num_classes) or remap those ids"
    } else if values.iter().all(|&v| v >= 128) {
        "binary masks stored as 0/255-like values (e.g. 0 and 254 from resizing or JPEG): store the defect as 1"
    } else {
        "masks written by a tool with a different class numbering: remap them to 0..N-1 (0 = background)"
    };
    msg.push_str("\nLikely cause: ");
    msg.push_str(cause);
    msg.push('.');
    Err(TrainError::Labels(msg))
}

/// Median-frequency class weights (Eigen & Fergus): freq(c) = pixels of c / pixels of the
/// images containing c; weight = median(freq) / freq(c), clipped to [0.1, 10] so a tiny
/// class cannot swamp the loss. Classes absent from the data get 1.
pub fn median_frequency_weights(samples: &[&Sample], num_classes: usize) -> Vec<f32> {
    let mut pixels = vec![0u64; num_classes];
    let mut image_pixels = vec![0u64; num_classes];
    for s in samples {
        let mut h = vec![0u64; num_classes];
        let mut valid = 0u64;
        for &v in &s.mask {
            if (v as usize) < num_classes {
                h[v as usize] += 1;
                valid += 1;
            }
        }
        for k in 0..num_classes {
            if h[k] > 0 {
                pixels[k] += h[k];
                image_pixels[k] += valid;
            }
        }
    }
    let freq: Vec<f64> = (0..num_classes)
        .filter(|&k| pixels[k] > 0)
        .map(|k| pixels[k] as f64 / image_pixels[k] as f64)
        .collect();
    if freq.is_empty() {
        return vec![1.0; num_classes];
    }
    let mut sorted = freq.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    (0..num_classes)
        .map(|k| {
            if pixels[k] == 0 {
                1.0
            } else {
                (median / (pixels[k] as f64 / image_pixels[k] as f64)).clamp(0.1, 10.0) as f32
            }
        })
        .collect()
}

/// Per-channel mean and standard deviation of the images, in [0, 1].
pub fn mean_std(samples: &[&Sample]) -> ([f32; 3], [f32; 3]) {
    let mut sum = [0f64; 3];
    let mut sq = [0f64; 3];
    let mut n = 0f64;
    for s in samples {
        for px in s.rgb.chunks_exact(3) {
            for c in 0..3 {
                let v = px[c] as f64 / 255.0;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
        n += (s.rgb.len() / 3) as f64;
    }
    let mut mean = [0.5f32; 3];
    let mut std = [0.25f32; 3];
    if n > 0.0 {
        for c in 0..3 {
            let m = sum[c] / n;
            mean[c] = m as f32;
            std[c] = ((sq[c] / n - m * m).max(0.0).sqrt() as f32).max(1e-3);
        }
    }
    (mean, std)
}

/// Median size of the foreground instances in the manifest, as the square root of their
/// area: a long thin scratch needs the context of its width, not of its length.
pub fn median_defect_side(ds: &Dataset, stems: &[String]) -> Option<usize> {
    let mut sides: Vec<u32> = ds
        .entries(stems)
        .ok()?
        .iter()
        .flat_map(|e| {
            e.instances
                .iter()
                .filter(|i| i.class != 0)
                .map(|i| (i.area as f64).sqrt().ceil() as u32)
        })
        .collect();
    if sides.is_empty() {
        return None;
    }
    sides.sort_unstable();
    Some(sides[sides.len() / 2] as usize)
}

/// A seed for item `index` of `epoch` derived from the run seed (SplitMix64 mixing), so each
/// crop is reproducible on its own, whatever thread makes it.
pub fn derive_seed(seed: u64, epoch: u64, index: u64) -> u64 {
    let mut z = seed
        ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Which image each crop of an epoch comes from: passes over a fresh permutation each.
pub fn epoch_order(n_images: usize, samples: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut out = Vec::with_capacity(samples);
    let mut pass = 0u64;
    while out.len() < samples {
        let mut perm: Vec<usize> = (0..n_images).collect();
        perm.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            seed,
            epoch,
            u64::MAX - pass,
        )));
        out.extend(perm);
        pass += 1;
    }
    out.truncate(samples);
    out
}

/// A training crop: normalized CHW float image and class-index mask (255 where padded).
#[derive(Debug, Clone)]
pub struct Crop {
    /// 3×S×S, normalized.
    pub image: Vec<f32>,
    /// S×S class indices.
    pub mask: Vec<i64>,
}

/// Online augmentation of training crops.
#[derive(Debug, Clone)]
pub enum Augment {
    /// None.
    None,
    /// Random h/v flips and transposition (all 8 right-angle symmetries), implemented here.
    Flips,
    /// A segkit-augment pipeline, seeded by (run seed, epoch, crop index).
    Pipeline(std::sync::Arc<segkit_augment::Pipeline>),
}

impl Augment {
    /// The augmentation named by `data.augment`: `none`, `flips`, `default` (segkit-augment's
    /// pipeline for defects) or a pipeline file (TOML, or JSON as albumentations exports it).
    pub fn from_config(spec: &str) -> Result<Augment> {
        Ok(match spec {
            "none" => Augment::None,
            "flips" => Augment::Flips,
            "default" => Augment::Pipeline(std::sync::Arc::new(segkit_augment::Pipeline::default_for_defects())),
            path => Augment::Pipeline(std::sync::Arc::new(segkit_augment::Pipeline::from_file(path).map_err(|e| {
                TrainError::Config(format!("data.augment = {path:?}: {e} (use none, flips, default or a pipeline file)"))
            })?)),
        })
    }
}

/// Where a crop comes from and how it is changed.
#[derive(Debug, Clone)]
pub struct CropSpec<'a> {
    /// Crop side.
    pub size: usize,
    /// Share of foreground-centred crops.
    pub fg_share: f64,
    /// Augmentation.
    pub augment: &'a Augment,
    /// Normalization mean.
    pub mean: [f32; 3],
    /// Normalization std.
    pub std: [f32; 3],
}

/// Cut a `size`×`size` crop from `s`: with probability `fg_share` centred (with jitter) on a
/// random foreground pixel, otherwise anywhere. Images smaller than the crop are padded with
/// their mean colour and the ignore index. Then the online augmentation, then normalization.
/// `seed` picks the crop; (`run_seed`, `epoch`, `index`) the augmentation.
pub fn make_crop(
    s: &Sample,
    spec: &CropSpec,
    seed: u64,
    run_seed: u64,
    epoch: u64,
    index: u64,
) -> Crop {
    let size = spec.size;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pick = |rng: &mut ChaCha8Rng, len: usize, centre: Option<usize>| -> isize {
        if len <= size {
            // Small side: place the image at a random offset inside the padded crop.
            return -(rng.gen_range(0..=size - len) as isize);
        }
        let max = (len - size) as isize;
        match centre {
            Some(c) => {
                let jitter = rng.gen_range(-(size as isize) / 4..=(size as isize) / 4);
                (c as isize - size as isize / 2 + jitter).clamp(0, max)
            }
            None => rng.gen_range(0..=max),
        }
    };
    let centre = if !s.fg.is_empty() && rng.gen::<f64>() < spec.fg_share {
        let p = s.fg[rng.gen_range(0..s.fg.len())] as usize;
        Some((p % s.width, p / s.width))
    } else {
        None
    };
    let x0 = pick(&mut rng, s.width, centre.map(|c| c.0));
    let y0 = pick(&mut rng, s.height, centre.map(|c| c.1));
    let fill: [u8; 3] = std::array::from_fn(|c| (spec.mean[c] * 255.0).round() as u8);
    let mut rgb: Vec<u8> = fill.iter().copied().cycle().take(3 * size * size).collect();
    let mut mask = vec![IGNORE_INDEX; size * size];
    for y in 0..size {
        let sy = y0 + y as isize;
        if sy < 0 || sy >= s.height as isize {
            continue;
        }
        for x in 0..size {
            let sx = x0 + x as isize;
            if sx < 0 || sx >= s.width as isize {
                continue;
            }
            let si = sy as usize * s.width + sx as usize;
            let di = y * size + x;
            mask[di] = s.mask[si];
            rgb[3 * di..3 * di + 3].copy_from_slice(&s.rgb[3 * si..3 * si + 3]);
        }
    }
    match spec.augment {
        Augment::None => {}
        Augment::Flips => flips(&mut rgb, &mut mask, size, &mut rng),
        Augment::Pipeline(p) => {
            let sample = segkit_augment::Sample::new(size as u32, size as u32, 3, rgb, mask)
                .expect("crop buffers agree");
            let out = p.apply(sample, run_seed, epoch, index);
            (rgb, mask) = fit(out, size, fill);
        }
    }
    let plane = size * size;
    let mut image = vec![0f32; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            image[c * plane + i] = (rgb[3 * i + c] as f32 / 255.0 - spec.mean[c]) / spec.std[c];
        }
    }
    Crop {
        image,
        mask: mask.into_iter().map(i64::from).collect(),
    }
}

/// Centre-crop or pad (fill colour, ignore index) an augmented sample back to `size`² (a
/// pipeline may scale or crop), as RGB.
fn fit(s: segkit_augment::Sample, size: usize, fill: [u8; 3]) -> (Vec<u8>, Vec<u8>) {
    let (w, h, ch) = (s.width as usize, s.height as usize, s.channels as usize);
    if w == size && h == size && ch == 3 {
        return (s.image, s.mask);
    }
    let mut rgb: Vec<u8> = fill.iter().copied().cycle().take(3 * size * size).collect();
    let mut mask = vec![IGNORE_INDEX; size * size];
    let (ox, oy) = (w as isize - size as isize, h as isize - size as isize);
    for y in 0..size {
        let sy = y as isize + oy / 2;
        if sy < 0 || sy >= h as isize {
            continue;
        }
        for x in 0..size {
            let sx = x as isize + ox / 2;
            if sx < 0 || sx >= w as isize {
                continue;
            }
            let si = sy as usize * w + sx as usize;
            let di = y * size + x;
            mask[di] = s.mask[si];
            for c in 0..3 {
                rgb[3 * di + c] = s.image[ch * si + if ch == 3 { c } else { 0 }];
            }
        }
    }
    (rgb, mask)
}

/// Local online augmentation: random horizontal/vertical flip and transposition of a square
/// crop (the 8 right-angle symmetries), the same transform on image and mask.
fn flips(rgb: &mut [u8], mask: &mut [u8], size: usize, rng: &mut ChaCha8Rng) {
    let (hflip, vflip, transpose) = (rng.gen::<bool>(), rng.gen::<bool>(), rng.gen::<bool>());
    if !hflip && !vflip && !transpose {
        return;
    }
    let src_of = |y: usize, x: usize| -> usize {
        let (mut sy, mut sx) = if transpose { (x, y) } else { (y, x) };
        if vflip {
            sy = size - 1 - sy;
        }
        if hflip {
            sx = size - 1 - sx;
        }
        sy * size + sx
    };
    let old_mask = mask.to_vec();
    let old_rgb = rgb.to_vec();
    for y in 0..size {
        for x in 0..size {
            let (d, s) = (y * size + x, src_of(y, x));
            mask[d] = old_mask[s];
            rgb[3 * d..3 * d + 3].copy_from_slice(&old_rgb[3 * s..3 * s + 3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(w: usize, h: usize, mask: Vec<u8>) -> Sample {
        let fg = mask
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0 && v != 255)
            .map(|(i, _)| i as u32)
            .collect();
        Sample {
            stem: "s".into(),
            width: w,
            height: h,
            rgb: (0..w * h * 3).map(|i| (i % 251) as u8).collect(),
            mask,
            fg,
        }
    }

    #[test]
    fn crops_are_reproducible_and_keep_image_and_mask_aligned() {
        let mut mask = vec![0u8; 40 * 30];
        mask[15 * 40 + 33] = 1;
        let s = sample(40, 30, mask);
        for augment in [Augment::Flips, Augment::from_config("default").unwrap()] {
            let spec = CropSpec {
                size: 16,
                fg_share: 1.0,
                augment: &augment,
                mean: [0.0; 3],
                std: [1.0; 3],
            };
            let a = make_crop(&s, &spec, 7, 1, 2, 3);
            let b = make_crop(&s, &spec, 7, 1, 2, 3);
            assert_eq!(a.mask, b.mask);
            assert_eq!(a.image, b.image);
            assert_eq!((a.image.len(), a.mask.len()), (3 * 256, 256));
        }
        // fg_share = 1 and one fg pixel: the crop always contains it (flips keep it).
        let spec = CropSpec {
            size: 16,
            fg_share: 1.0,
            augment: &Augment::Flips,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        for seed in 0..50 {
            let c = make_crop(&s, &spec, seed, 0, 0, seed);
            assert_eq!(c.mask.iter().filter(|&&v| v == 1).count(), 1, "seed {seed}");
        }
    }

    #[test]
    fn small_images_are_padded_with_ignore() {
        let s = sample(10, 12, vec![1u8; 120]);
        let spec = CropSpec {
            size: 16,
            fg_share: 0.0,
            augment: &Augment::None,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let c = make_crop(&s, &spec, 1, 0, 0, 0);
        assert_eq!(c.mask.iter().filter(|&&v| v == 1).count(), 120);
        assert_eq!(c.mask.iter().filter(|&&v| v == 255).count(), 256 - 120);
    }

    #[test]
    fn median_frequency() {
        // Image 1: 90 bg, 10 fg; image 2: 100 bg. freq bg = 190/200, fg = 10/100.
        let mut m1 = vec![0u8; 100];
        m1[..10].fill(1);
        let (a, b) = (sample(10, 10, m1), sample(10, 10, vec![0u8; 100]));
        let w = median_frequency_weights(&[&a, &b], 2);
        let median = (0.95 + 0.1) / 2.0;
        assert!((w[0] as f64 - median / 0.95).abs() < 1e-6);
        assert!((w[1] as f64 - median / 0.1).abs() < 1e-5);
    }

    #[test]
    fn label_mistakes_are_explained() {
        let root = Path::new("/ds");
        let names = vec!["_background_".to_string(), "defect".to_string()];
        let binary255 = sample(4, 1, vec![0, 255, 255, 0]);
        let e = check_labels(root, &[&binary255], &names)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0/255 binary masks"), "{e}");
        let gray_rgb = sample(4, 1, vec![0, 38, 75, 0]);
        let e = check_labels(root, &[&gray_rgb], &names)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("converted to grayscale") && e.contains("38: 1"),
            "{e}"
        );
        let extra_class = sample(4, 1, vec![0, 1, 2, 3]);
        let e = check_labels(root, &[&extra_class], &names)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wrong number of classes") && e.contains("outside 0..1"),
            "{e}"
        );
        assert!(check_labels(root, &[&sample(4, 1, vec![0, 1, 255, 0])], &names).is_ok());
    }

    #[test]
    fn epoch_order_covers_every_image() {
        let o = epoch_order(5, 12, 3, 0);
        assert_eq!(o.len(), 12);
        let mut first: Vec<usize> = o[..5].to_vec();
        first.sort();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        assert_eq!(o, epoch_order(5, 12, 3, 0));
        assert_ne!(o, epoch_order(5, 12, 3, 1));
    }
}
