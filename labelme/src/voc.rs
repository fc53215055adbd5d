//! `segkit import-voc`: an existing VOC segmentation folder → a segkit dataset folder.
//!
//! The layout labelme2voc.py, the PASCAL VOC devkit and most training repositories share:
//! `JPEGImages/<stem>.jpg`, `SegmentationClass/<stem>.png` (P-mode or grayscale, pixel value
//! = class index, 255 = ignore), optionally `class_names.txt` (line k names class k) and
//! `ImageSets/Segmentation/<split>.txt`. Every mask becomes a dataset image with the same
//! indices; the split lists are kept (limited to the images imported); `dataset.json` gets
//! the per-class pixel counts and instances that every later command reads. Images are
//! copied as they are: VOC tools use the stored pixel grid, so no EXIF rotation is applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::convert::{ConvertError, ConvertSummary, LabelSpec, Problem, Tick};
use crate::dataset::{
    self, atomic_write, read_index_png, DatasetError, HistoryEntry, ImageEntry, Manifest,
    MaskEncoding, IGNORE_INDEX, IMAGES_DIR, MASKS_DIR, SPLITS_DIR,
};
use crate::index_png::encode_index_png;
use crate::labels::{LabelMap, UnknownPolicy};
use crate::runs::counts_and_instances;
use crate::source::image_size;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct VocOptions {
    /// The class list; `Collect` means the folder's `class_names.txt`.
    pub labels: LabelSpec,
    /// What mask values beyond the class list become (default: the file fails, naming them).
    pub unknown: UnknownPolicy,
    /// P-mode (VOC palette) or L-mode masks in the output.
    pub encoding: MaskEncoding,
    /// The command line, for the manifest's history.
    pub command: String,
}

/// Import the VOC folder `voc` into the dataset folder `out` (new or empty). A pair that
/// fails is listed in the summary's `errors`, the others are imported; images without a
/// mask (VOC has many) are left out and counted in one warning.
pub fn import_voc(
    voc: &Path,
    out: &Path,
    opts: &VocOptions,
    tick: Tick<'_>,
) -> Result<ConvertSummary, ConvertError> {
    let usage = |m: String| ConvertError::Usage(m);
    let (images_dir, masks_dir) = (voc.join(IMAGES_DIR), voc.join(MASKS_DIR));
    for d in [&images_dir, &masks_dir] {
        if !d.is_dir() {
            return Err(usage(format!(
                "{}: no such folder; a VOC folder has {IMAGES_DIR}/ and {MASKS_DIR}/",
                d.display()
            )));
        }
    }
    let names = class_names(voc, &opts.labels)?;
    if out.is_dir()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(usage(format!(
            "{}: output folder is not empty",
            out.display()
        )));
    }

    let images = files_by_stem(&images_dir, &["jpg", "jpeg", "png", "bmp", "tif", "tiff"])?;
    let masks = files_by_stem(&masks_dir, &["png"])?;
    let mut errors = Vec::new();
    let mut pairs = Vec::new();
    for (stem, mask) in &masks {
        match images.get(stem) {
            Some(image) => pairs.push((stem.clone(), image.clone(), mask.clone())),
            None => errors.push(Problem {
                file: mask.clone(),
                shape: None,
                message: format!("no image {stem}.* in {}", images_dir.display()),
            }),
        }
    }
    if pairs.is_empty() {
        return Err(usage(format!(
            "no mask in {} has an image of the same name in {}",
            masks_dir.display(),
            images_dir.display()
        )));
    }
    let splits = read_splits(voc)?;
    for (name, stems) in &splits {
        for stem in stems.iter().filter(|s| !masks.contains_key(*s)) {
            errors.push(Problem {
                file: voc.join(SPLITS_DIR).join(format!("{name}.txt")),
                shape: None,
                message: format!(
                    "{stem:?} is listed but has no mask in {}",
                    masks_dir.display()
                ),
            });
        }
    }

    let results: Vec<Result<ImageEntry, Problem>> = pairs
        .par_iter()
        .map(|(stem, image, mask)| {
            let r = import_pair(stem, image, mask, out, names.len(), opts);
            tick();
            r
        })
        .collect();
    let mut manifest = Manifest::new(&names);
    for r in results {
        match r {
            Ok(e) => manifest.images.push(e),
            Err(p) => errors.push(p),
        }
    }
    let mut warnings = Vec::new();
    let unmasked = images.keys().filter(|s| !masks.contains_key(*s)).count();
    if unmasked > 0 {
        warnings.push(Problem {
            file: images_dir.clone(),
            shape: None,
            message: format!("{unmasked} image(s) have no mask in {MASKS_DIR}/ and were left out"),
        });
    }
    manifest.images.sort_by(|a, b| a.stem.cmp(&b.stem));
    if !manifest.images.is_empty() {
        manifest
            .history
            .push(HistoryEntry::now(opts.command.clone()));
        let imported: Vec<String> = manifest.images.iter().map(|e| e.stem.clone()).collect();
        if !splits.contains_key("trainval") {
            dataset::write_split(out, "trainval", &imported)?;
        }
        for (name, stems) in &splits {
            // in the source's order, without the images that were not imported
            let kept: Vec<String> = stems
                .iter()
                .filter(|s| imported.binary_search(s).is_ok())
                .cloned()
                .collect();
            dataset::write_split(out, name, &kept)?;
        }
        dataset::write_manifest(out, &manifest)?;
    }
    Ok(ConvertSummary {
        out: out.to_path_buf(),
        converted: manifest.images.len(),
        classes: names,
        errors,
        warnings,
    })
}

/// Class names in id order: from `labels`, else the folder's `class_names.txt`.
fn class_names(voc: &Path, labels: &LabelSpec) -> Result<Vec<String>, ConvertError> {
    let map = match labels {
        LabelSpec::List(list) => LabelMap::from_list(list, UnknownPolicy::Error),
        LabelSpec::File(path) => LabelMap::from_file(path, UnknownPolicy::Error),
        LabelSpec::Collect => {
            let path = voc.join("class_names.txt");
            if !path.is_file() {
                return Err(ConvertError::Usage(format!(
                    "{}: not found; name the classes with --labels FILE or --labels _background_,a,b (names in id order)",
                    path.display()
                )));
            }
            LabelMap::from_file(&path, UnknownPolicy::Error)
        }
    };
    Ok(map.map_err(ConvertError::Usage)?.names().to_vec())
}

/// Files of `dir` with one of `exts` (lowercase), by stem; sorted.
fn files_by_stem(dir: &Path, exts: &[&str]) -> Result<BTreeMap<String, PathBuf>, ConvertError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))?;
    let mut m = BTreeMap::new();
    for entry in rd {
        let p = entry.map_err(|e| DatasetError::io(dir, e))?.path();
        let ext = p
            .extension()
            .map(|x| x.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if p.is_file() && exts.contains(&ext.as_str()) {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            // a.jpg and a.png: keep the first in name order, as a listing would show it
            m.entry(stem).or_insert(p);
        }
    }
    Ok(m)
}

/// `ImageSets/Segmentation/<name>.txt` lists: split name → stems in file order (the first
/// word of each line, so devkit lists with a second column read too).
fn read_splits(voc: &Path) -> Result<BTreeMap<String, Vec<String>>, ConvertError> {
    let dir = voc.join(SPLITS_DIR);
    let mut splits = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(splits);
    }
    for (name, path) in files_by_stem(&dir, &["txt"])? {
        let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
        let stems = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect();
        splits.insert(name, stems);
    }
    Ok(splits)
}

fn import_pair(
    stem: &str,
    image: &Path,
    mask: &Path,
    out: &Path,
    num_classes: usize,
    opts: &VocOptions,
) -> Result<ImageEntry, Problem> {
    let problem = |file: &Path, message: String| Problem {
        file: file.to_path_buf(),
        shape: None,
        message,
    };
    let bytes = std::fs::read(image).map_err(|e| problem(image, e.to_string()))?;
    let (format, w, h) = image_size(&bytes).map_err(|m| problem(image, m))?;
    let mut m = read_index_png(mask).map_err(|e| problem(mask, strip(&e, mask)))?;
    if (m.width, m.height) != (w, h) {
        return Err(problem(
            mask,
            format!(
                "mask is {}x{} but the image {} is {w}x{h}",
                m.width,
                m.height,
                image.display()
            ),
        ));
    }
    let known = |v: u8| (v as usize) < num_classes || v == IGNORE_INDEX;
    let mut hist = [0u64; 256];
    for &v in &m.data {
        hist[v as usize] += 1;
    }
    let unknown: Vec<String> = (0..=255u8)
        .filter(|&v| hist[v as usize] > 0 && !known(v))
        .map(|v| format!("{v} ({} px)", hist[v as usize]))
        .collect();
    if !unknown.is_empty() {
        let replace = match opts.unknown {
            UnknownPolicy::Error => {
                return Err(problem(
                    mask,
                    format!(
                        "values {} are not classes (there are {num_classes}: 0..={}, and {IGNORE_INDEX} = ignore); fix the class list or pass --unknown ignore|background",
                        unknown.join(", "),
                        num_classes - 1
                    ),
                ))
            }
            UnknownPolicy::Ignore => IGNORE_INDEX,
            UnknownPolicy::Background => 0,
        };
        for v in m.data.iter_mut().filter(|v| !known(**v)) {
            *v = replace;
        }
    }

    let io = |e: DatasetError| problem(image, e.to_string());
    let file = match format {
        image::ImageFormat::Jpeg => format!("{IMAGES_DIR}/{stem}.jpg"),
        _ => format!("{IMAGES_DIR}/{stem}.png"),
    };
    if matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        atomic_write(&out.join(&file), &bytes).map_err(io)?;
    } else {
        let rgb = image::load_from_memory_with_format(&bytes, format)
            .map_err(|e| problem(image, format!("cannot decode image: {e}")))?
            .into_rgb8();
        let mut png = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| problem(image, e.to_string()))?;
        atomic_write(&out.join(&file), &png).map_err(io)?;
    }
    let png = encode_index_png(w, h, &m.data, 0..h, opts.encoding)
        .map_err(|e| problem(mask, format!("encoding the mask: {e}")))?;
    atomic_write(&out.join(MASKS_DIR).join(format!("{stem}.png")), &png).map_err(io)?;
    let (class_pixels, instances) = counts_and_instances(&m.data, w, h);
    Ok(ImageEntry {
        stem: stem.to_string(),
        file,
        width: w,
        height: h,
        views: Vec::new(),
        source: format!(
            "{MASKS_DIR}/{}",
            mask.file_name().unwrap_or_default().to_string_lossy()
        ),
        class_pixels,
        instances,
        extra: serde_json::Map::new(),
    })
}

/// Dataset errors start with the path; the problem carries it already.
fn strip(e: &DatasetError, path: &Path) -> String {
    let m = e.to_string();
    let prefix = format!("{}: ", path.display());
    m.strip_prefix(&prefix).map(String::from).unwrap_or(m)
}
