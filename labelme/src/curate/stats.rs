//! `stats`: what is in a dataset, read from the mask files themselves (not the manifest), and
//! the classic traps that make a model learn nothing, each with the command that fixes it.
//!
//! Instances are counted as the manifest counts them: the objects of an image's object mask
//! (`SegmentationObject/<stem>.png`) when it has one, else 8-connected components per class.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::{components, Result, Tick};
use crate::dataset::{count_values, read_index_png, Dataset, ImageEntry, IGNORE_INDEX};
use crate::objects::{object_instances, object_mask_path};

/// Per-class figures over a set of images.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassStats {
    /// Class id.
    pub id: u32,
    /// Class name.
    pub name: String,
    /// Pixels of this class.
    pub pixels: u64,
    /// Share of all non-ignore pixels.
    pub pixel_share: f64,
    /// Images containing the class.
    pub images: usize,
    /// Instances: the objects of the object mask (`SegmentationObject/`) for an image that
    /// has one, else the 8-connected components of each class, as the manifest counts them;
    /// 0 for the background.
    pub instances: usize,
    /// Smallest instance area in pixels.
    pub area_min: Option<u64>,
    /// Median instance area (lower median).
    pub area_median: Option<u64>,
    /// 95th percentile of instance area (nearest rank).
    pub area_p95: Option<u64>,
    /// Largest instance area.
    pub area_max: Option<u64>,
}

/// Figures for the images of one view.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViewStats {
    /// Images tagged with the view.
    pub images: usize,
    /// Per-class figures over those images.
    pub classes: Vec<ClassStats>,
}

/// Suggested loss weights, one per class in id order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassWeights {
    /// Which images they were computed on (`train.txt` when the dataset has one).
    pub computed_on: String,
    /// Median-frequency balancing (Eigen & Fergus): median(f) / f_c, with f_c the class's
    /// pixels over the pixels of the images that contain it. 0 for absent classes.
    pub median_frequency: Vec<f64>,
    /// 1 / sqrt(pixel share), scaled to mean 1 over present classes. 0 for absent classes.
    pub inverse_sqrt: Vec<f64>,
}

/// One trap found in the data.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Warning {
    /// Short machine name (`binary_255`, `rgb_masks`, `out_of_range`, `rare_class`,
    /// `no_foreground`, `size_mismatch`).
    pub kind: String,
    /// What is wrong and why it matters.
    pub message: String,
    /// The command that fixes it.
    pub fix: String,
    /// The files concerned (at most 10 listed).
    pub files: Vec<String>,
}

/// Everything `stats` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsReport {
    /// The dataset folder.
    pub dataset: String,
    /// Images in the manifest.
    pub images: usize,
    /// Images whose mask could be read.
    pub images_read: usize,
    /// Ignore (255) pixels.
    pub ignore_pixels: u64,
    /// Per-class figures over all readable masks.
    pub classes: Vec<ClassStats>,
    /// Per-view figures.
    pub views: BTreeMap<String, ViewStats>,
    /// Suggested loss weights.
    pub weights: ClassWeights,
    /// Traps found.
    pub warnings: Vec<Warning>,
    /// Files that could not be read at all, with the reason, and object masks that could not
    /// be used (their image is counted by components instead).
    pub errors: Vec<String>,
}

/// What one image contributes.
#[derive(Debug, Default)]
struct Scan {
    values: BTreeMap<u32, u64>,
    areas: BTreeMap<u32, Vec<u64>>,
    rgb: bool,
    size_mismatch: Option<String>,
    error: Option<String>,
    /// The object mask could not be used (the image is still counted, by components).
    objects_error: Option<String>,
}

/// PNG colour type from the IHDR chunk (2 = RGB, 6 = RGBA, 4 = gray + alpha).
fn png_color_type(path: &Path) -> Option<u8> {
    let mut head = [0u8; 26];
    fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    (head[..8] == *b"\x89PNG\r\n\x1a\n" && head[12..16] == *b"IHDR").then_some(head[25])
}

fn scan(ds: &Dataset, e: &ImageEntry) -> Scan {
    let path = ds.mask_path(&e.stem);
    let mut s = Scan::default();
    let mask = match read_index_png(&path) {
        Ok(m) => m,
        Err(err) => {
            if matches!(png_color_type(&path), Some(2 | 4 | 6)) {
                s.rgb = true;
            } else {
                s.error = Some(err.to_string());
            }
            return s;
        }
    };
    let img = ds.image_path(e);
    match image::image_dimensions(&img) {
        Ok((w, h)) if (w, h) != (mask.width, mask.height) => {
            s.size_mismatch = Some(format!(
                "{}: image {w}x{h}, mask {}x{}",
                e.stem, mask.width, mask.height
            ))
        }
        Ok(_) => {}
        Err(err) => s.error = Some(format!("{}: {err}", img.display())),
    }
    s.values = count_values(&mask.data);
    // An object mask names the objects (two touching people stay two), as the manifest
    // records them; without one, an instance is an 8-connected component of one class.
    let found = match read_objects(&ds.root, &e.stem, mask.width, mask.height) {
        Ok(Some(ids)) => object_instances(&mask.data, &ids, mask.width, 0..mask.height).instances,
        Ok(None) => components::instances(&mask.data, mask.width, mask.height),
        Err(err) => {
            s.objects_error = Some(format!(
                "{err} (counted 8-connected components of the class mask instead)"
            ));
            components::instances(&mask.data, mask.width, mask.height)
        }
    };
    for c in found {
        s.areas.entry(c.class).or_default().push(c.area);
    }
    s
}

/// The object mask of `stem` when the dataset has one, checked against the class mask's size.
fn read_objects(
    root: &Path,
    stem: &str,
    width: u32,
    height: u32,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let path = object_mask_path(root, stem);
    if !path.exists() {
        return Ok(None);
    }
    let m = read_index_png(&path).map_err(|e| e.to_string())?;
    if (m.width, m.height) != (width, height) {
        return Err(format!(
            "{}: object mask is {}x{} but the class mask is {width}x{height}",
            path.display(),
            m.width,
            m.height
        ));
    }
    Ok(Some(m.data))
}

fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[k - 1])
}

fn class_stats(ds: &Dataset, scans: &[&Scan]) -> Vec<ClassStats> {
    let n = ds.num_classes();
    let mut pixels = vec![0u64; n];
    let mut images = vec![0usize; n];
    let mut areas: Vec<Vec<u64>> = vec![Vec::new(); n];
    for s in scans {
        for (&v, &px) in &s.values {
            if (v as usize) < n {
                pixels[v as usize] += px;
                images[v as usize] += 1;
            }
        }
        for (&c, a) in &s.areas {
            if (c as usize) < n {
                areas[c as usize].extend(a);
            }
        }
    }
    let total: u64 = scans
        .iter()
        .flat_map(|s| s.values.iter())
        .filter(|(&v, _)| v != IGNORE_INDEX as u32)
        .map(|(_, &p)| p)
        .sum();
    ds.manifest
        .classes
        .iter()
        .map(|c| {
            let i = c.id as usize;
            let a = &mut areas[i];
            a.sort_unstable();
            ClassStats {
                id: c.id,
                name: c.name.clone(),
                pixels: pixels[i],
                pixel_share: if total > 0 {
                    pixels[i] as f64 / total as f64
                } else {
                    0.0
                },
                images: images[i],
                instances: a.len(),
                area_min: a.first().copied(),
                area_median: nearest_rank(a, 0.5),
                area_p95: nearest_rank(a, 0.95),
                area_max: a.last().copied(),
            }
        })
        .collect()
}

fn weights(ds: &Dataset, scans: &[&Scan], computed_on: String) -> ClassWeights {
    let n = ds.num_classes();
    let mut pixels = vec![0u64; n];
    let mut present_px = vec![0u64; n];
    for s in scans {
        let img_total: u64 = s
            .values
            .iter()
            .filter(|(&v, _)| v != IGNORE_INDEX as u32)
            .map(|(_, &p)| p)
            .sum();
        for (&v, &px) in &s.values {
            if (v as usize) < n && px > 0 {
                pixels[v as usize] += px;
                present_px[v as usize] += img_total;
            }
        }
    }
    let total: u64 = pixels.iter().sum();
    let freq: Vec<Option<f64>> = (0..n)
        .map(|c| (pixels[c] > 0).then(|| pixels[c] as f64 / present_px[c] as f64))
        .collect();
    let mut fs: Vec<f64> = freq.iter().flatten().copied().collect();
    fs.sort_by(f64::total_cmp);
    let median = if fs.is_empty() {
        1.0
    } else if fs.len() % 2 == 1 {
        fs[fs.len() / 2]
    } else {
        (fs[fs.len() / 2 - 1] + fs[fs.len() / 2]) / 2.0
    };
    let round = |x: f64| (x * 1e4).round() / 1e4;
    let median_frequency = freq
        .iter()
        .map(|f| f.map_or(0.0, |f| round(median / f)))
        .collect();
    let inv: Vec<Option<f64>> = (0..n)
        .map(|c| (pixels[c] > 0).then(|| 1.0 / (pixels[c] as f64 / total as f64).sqrt()))
        .collect();
    let present: Vec<f64> = inv.iter().flatten().copied().collect();
    let mean = if present.is_empty() {
        1.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    };
    let inverse_sqrt = inv
        .iter()
        .map(|w| w.map_or(0.0, |w| round(w / mean)))
        .collect();
    ClassWeights {
        computed_on,
        median_frequency,
        inverse_sqrt,
    }
}

fn listed(files: impl IntoIterator<Item = String>) -> Vec<String> {
    files.into_iter().take(10).collect()
}

/// Read every mask of `ds` and report per-class figures, suggested weights and traps.
pub fn stats(ds: &Dataset, tick: Tick) -> Result<StatsReport> {
    let images = &ds.manifest.images;
    let scans: Vec<Scan> = images
        .par_iter()
        .map(|e| {
            let s = scan(ds, e);
            tick();
            s
        })
        .collect();
    let ok: Vec<(&ImageEntry, &Scan)> = images
        .iter()
        .zip(&scans)
        .filter(|(_, s)| !s.rgb && s.error.is_none())
        .collect();
    let all: Vec<&Scan> = ok.iter().map(|(_, s)| *s).collect();
    let classes = class_stats(ds, &all);

    let mut views: BTreeMap<String, ViewStats> = BTreeMap::new();
    let view_names: BTreeSet<&String> = images.iter().flat_map(|e| &e.views).collect();
    for v in view_names {
        let sub: Vec<&Scan> = ok
            .iter()
            .filter(|(e, _)| e.views.contains(v))
            .map(|(_, s)| *s)
            .collect();
        views.insert(
            v.clone(),
            ViewStats {
                images: sub.len(),
                classes: class_stats(ds, &sub),
            },
        );
    }

    let train: Option<BTreeSet<String>> = ds.split("train")?.map(|v| v.into_iter().collect());
    let (wscans, computed_on): (Vec<&Scan>, String) = match &train {
        Some(t) => (
            ok.iter()
                .filter(|(e, _)| t.contains(&e.stem))
                .map(|(_, s)| *s)
                .collect(),
            "train.txt".into(),
        ),
        None => (all.clone(), "all images".into()),
    };
    let weights = weights(ds, &wscans, computed_on);

    let d = ds.root.display().to_string();
    let n = ds.num_classes();
    let mask_name = |e: &ImageEntry| format!("SegmentationClass/{}.png", e.stem);
    let mut warnings = Vec::new();
    let values: BTreeSet<u32> = all.iter().flat_map(|s| s.values.keys().copied()).collect();
    if values.contains(&(IGNORE_INDEX as u32)) && values.iter().all(|&v| v == 0 || v == 255) {
        warnings.push(Warning {
            kind: "binary_255".into(),
            message: "masks hold only 0 and 255: a binary mask stored as 255 is read as \
                      'ignore', so the model never sees a defect pixel"
                .into(),
            fix: if n >= 2 {
                format!("segkit remap {d} OUT --value 255=1")
            } else {
                format!("segkit remap {d} OUT --value 255=1 --binary --name defect")
            },
            files: listed(
                ok.iter()
                    .filter(|(_, s)| s.values.contains_key(&255))
                    .map(|(e, _)| mask_name(e)),
            ),
        });
    }
    let rgb: Vec<String> = images
        .iter()
        .zip(&scans)
        .filter(|(_, s)| s.rgb)
        .map(|(e, _)| mask_name(e))
        .collect();
    if !rgb.is_empty() {
        warnings.push(Warning {
            kind: "rgb_masks".into(),
            message: format!(
                "{} mask(s) are RGB colour images, not class indices: a trainer reading them \
                 gets colours, not classes",
                rgb.len()
            ),
            fix: "segkit convert LABELME_DIR OUT   (re-export the masks as class indices from the labelme JSON)".into(),
            files: listed(rgb),
        });
    }
    let bad: BTreeSet<u32> = values
        .iter()
        .copied()
        .filter(|&v| v as usize >= n && v != 255)
        .collect();
    if !bad.is_empty() {
        let list: Vec<String> = bad.iter().map(u32::to_string).collect();
        warnings.push(Warning {
            kind: "out_of_range".into(),
            message: format!(
                "mask values {} are not classes (the dataset has {n}: 0..{}) and not 255; \
                 a trainer crashes or learns garbage on them",
                list.join(", "),
                n.saturating_sub(1)
            ),
            fix: format!(
                "segkit remap {d} OUT {}",
                bad.iter()
                    .map(|v| format!("--value {v}=255"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            files: listed(
                ok.iter()
                    .filter(|(_, s)| s.values.keys().any(|v| bad.contains(v)))
                    .map(|(e, _)| mask_name(e)),
            ),
        });
    }
    for c in classes.iter().skip(1) {
        if c.instances < 3 {
            warnings.push(Warning {
                kind: "rare_class".into(),
                message: format!(
                    "class {:?} has {} instance(s): too few to learn or to validate on",
                    c.name, c.instances
                ),
                fix: format!(
                    "segkit remap {d} OUT --drop {:?}   (or --map \"{}=OTHER\")",
                    c.name, c.name
                ),
                files: Vec::new(),
            });
        }
    }
    let empty: Vec<String> = ok
        .iter()
        .filter(|(_, s)| !s.values.keys().any(|&v| v != 0 && v != IGNORE_INDEX as u32))
        .map(|(e, _)| mask_name(e))
        .collect();
    if !empty.is_empty() {
        warnings.push(Warning {
            kind: "no_foreground".into(),
            message: format!(
                "{} image(s) have no foreground pixel (fine as negatives in moderation, a \
                 problem when they dominate)",
                empty.len()
            ),
            fix: format!("segkit filter {d} OUT --drop-empty"),
            files: listed(empty),
        });
    }
    let mism: Vec<String> = scans
        .iter()
        .filter_map(|s| s.size_mismatch.clone())
        .collect();
    if !mism.is_empty() {
        warnings.push(Warning {
            kind: "size_mismatch".into(),
            message: format!(
                "{} mask(s) differ in size from their image: labels no longer sit on their pixels",
                mism.len()
            ),
            fix: "segkit convert LABELME_DIR OUT   (re-export masks at image size)".into(),
            files: listed(mism),
        });
    }
    let ignore_pixels = all.iter().filter_map(|s| s.values.get(&255)).sum();
    Ok(StatsReport {
        dataset: d,
        images: images.len(),
        images_read: ok.len(),
        ignore_pixels,
        classes,
        views,
        weights,
        warnings,
        errors: scans
            .iter()
            .flat_map(|s| [s.error.clone(), s.objects_error.clone()])
            .flatten()
            .collect(),
    })
}
