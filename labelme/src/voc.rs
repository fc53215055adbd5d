//! `segkit import-voc`: an existing VOC segmentation folder → a segkit dataset folder.
//!
//! The layout labelme2voc.py, the PASCAL VOC devkit and most training repositories share:
//! `JPEGImages/<stem>.jpg`, `SegmentationClass/<stem>.png` (P-mode or grayscale, pixel value
//! = class index, 255 = ignore), optionally `SegmentationObject/<stem>.png` (object ids,
//! 0 = none, 255 = boundary), `class_names.txt` (line k names class k) and
//! `ImageSets/Segmentation/<split>.txt`. Every mask becomes a dataset image with the same
//! indices; the split lists are kept (limited to the images imported); `dataset.json` gets
//! the per-class pixel counts and instances that every later command reads. An image with
//! an object mask keeps it (same ids) and its instances are its objects (see
//! [`crate::objects`]); one without has the connected components of its class mask. Images
//! are copied as they are: VOC tools use the stored pixel grid, so no EXIF rotation is
//! applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::convert::{ConvertError, ConvertSummary, LabelSpec, Problem, Tick};
use crate::dataset::{
    atomic_write, read_index_png, DatasetError, ImageEntry, IndexMask, MaskEncoding, IGNORE_INDEX,
    IMAGES_DIR, MASKS_DIR, OBJECTS_DIR, SPLITS_DIR,
};
use crate::index_png::encode_index_png;
use crate::labels::{LabelMap, UnknownPolicy};
use crate::objects::{object_instances, write_object_mask};
use crate::pairs::{copy_image, files_by_stem, finish_import, require_empty, Imported, IMAGE_EXTS};
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

/// The files of one image: its image, class mask and, when the folder has one, object mask.
struct Pair {
    stem: String,
    image: PathBuf,
    mask: PathBuf,
    objects: Option<PathBuf>,
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
    require_empty(out)?;

    let images = files_by_stem(&images_dir, IMAGE_EXTS)?;
    let masks = files_by_stem(&masks_dir, &["png"])?;
    let objects_dir = voc.join(OBJECTS_DIR);
    let objects = if objects_dir.is_dir() {
        Some(files_by_stem(&objects_dir, &["png"])?)
    } else {
        None
    };
    let mut errors = Vec::new();
    let mut pairs = Vec::new();
    for (stem, mask) in &masks {
        match images.get(stem) {
            Some(image) => pairs.push(Pair {
                stem: stem.clone(),
                image: image.clone(),
                mask: mask.clone(),
                objects: objects.as_ref().and_then(|o| o.get(stem)).cloned(),
            }),
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

    let results: Vec<Imported> = pairs
        .par_iter()
        .map(|pair| {
            let r = import_pair(pair, out, &names, opts);
            tick();
            r
        })
        .collect();
    let mut warnings = Vec::new();
    let unmasked = images.keys().filter(|s| !masks.contains_key(*s)).count();
    if unmasked > 0 {
        warnings.push(Problem {
            file: images_dir.clone(),
            shape: None,
            message: format!("{unmasked} image(s) have no mask in {MASKS_DIR}/ and were left out"),
        });
    }
    if let Some(objects) = &objects {
        let without = pairs.iter().filter(|p| p.objects.is_none()).count();
        if without > 0 {
            warnings.push(Problem {
                file: objects_dir.clone(),
                shape: None,
                message: format!(
                    "{without} image(s) have no object mask here; their instances are the connected components of their class mask"
                ),
            });
        }
        let orphans = objects.keys().filter(|s| !masks.contains_key(*s)).count();
        if orphans > 0 {
            warnings.push(Problem {
                file: objects_dir.clone(),
                shape: None,
                message: format!(
                    "{orphans} object mask(s) have no class mask in {MASKS_DIR}/ and were left out"
                ),
            });
        }
    }
    finish_import(
        out,
        names,
        results,
        &splits,
        &opts.command,
        errors,
        warnings,
    )
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

/// Import one image with its class mask (and object mask): everything is read and checked
/// before anything is written.
fn import_pair(pair: &Pair, out: &Path, names: &[String], opts: &VocOptions) -> Imported {
    let problem = |file: &Path, message: String| Problem {
        file: file.to_path_buf(),
        shape: None,
        message,
    };
    let Pair {
        stem,
        image,
        mask,
        objects,
    } = pair;
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
    let hist =
        replace_unknown(&mut m, names.len(), opts.unknown).map_err(|msg| problem(mask, msg))?;
    let objects = match objects {
        Some(path) => {
            let o = read_index_png(path).map_err(|e| problem(path, strip(&e, path)))?;
            if (o.width, o.height) != (w, h) {
                return Err(problem(
                    path,
                    format!(
                        "object mask is {}x{} but the class mask {} is {w}x{h}",
                        o.width,
                        o.height,
                        mask.display()
                    ),
                ));
            }
            Some((path, o))
        }
        None => None,
    };

    let io = |file: &Path, e: DatasetError| problem(file, e.to_string());
    let file = copy_image(&bytes, format, stem, out).map_err(|m| problem(image, m))?;
    let png = encode_index_png(w, h, &m.data, 0..h, opts.encoding)
        .map_err(|e| problem(mask, format!("encoding the mask: {e}")))?;
    atomic_write(&out.join(MASKS_DIR).join(format!("{stem}.png")), &png)
        .map_err(|e| io(mask, e))?;
    let mut warnings = Vec::new();
    let (class_pixels, instances) = match &objects {
        None => counts_and_instances(&m.data, w, h),
        Some((path, o)) => {
            write_object_mask(out, stem, w, h, &o.data, 0..h).map_err(|e| io(path, e))?;
            let found = object_instances(&m.data, &o.data, w, 0..h);
            let name = |c: u32| {
                names
                    .get(c as usize)
                    .cloned()
                    .unwrap_or_else(|| c.to_string())
            };
            for mixed in &found.mixed {
                let on: Vec<String> = mixed
                    .classes
                    .iter()
                    .map(|(&c, n)| format!("{} ({n} px)", name(c)))
                    .collect();
                let verdict = match mixed.class {
                    Some(c) => format!("recorded as {} (the majority)", name(c)),
                    None => "left out of the instances".into(),
                };
                warnings.push(problem(
                    path,
                    format!(
                        "object {} lies on {} in the class mask; {verdict}",
                        mixed.id,
                        on.join(", ")
                    ),
                ));
            }
            let counts = (0..256)
                .filter(|&v| hist[v] > 0)
                .map(|v| (v as u32, hist[v]))
                .collect();
            (counts, found.instances)
        }
    };
    let entry = ImageEntry {
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
    };
    Ok((entry, warnings))
}

/// Mask values that are no class (there are `num_classes`, and 255 = ignore) become what
/// `policy` says, or are the file's error naming each value and its pixel count. Returns
/// the pixel count of every value of the mask as it now is.
fn replace_unknown(
    m: &mut IndexMask,
    num_classes: usize,
    policy: UnknownPolicy,
) -> Result<[u64; 256], String> {
    let known = |v: u8| (v as usize) < num_classes || v == IGNORE_INDEX;
    let mut hist = histogram(&m.data);
    let unknown: Vec<String> = (0..=255u8)
        .filter(|&v| hist[v as usize] > 0 && !known(v))
        .map(|v| format!("{v} ({} px)", hist[v as usize]))
        .collect();
    if unknown.is_empty() {
        return Ok(hist);
    }
    let replace = match policy {
        UnknownPolicy::Error => {
            return Err(format!(
                "values {} are not classes (there are {num_classes}: 0..={}, and {IGNORE_INDEX} = ignore); fix the class list or pass --unknown ignore|background",
                unknown.join(", "),
                num_classes - 1
            ))
        }
        UnknownPolicy::Ignore => IGNORE_INDEX,
        UnknownPolicy::Background => 0,
    };
    for v in m.data.iter_mut().filter(|v| !known(**v)) {
        *v = replace;
    }
    for v in (0..=255u8).filter(|&v| !known(v)) {
        hist[replace as usize] += std::mem::take(&mut hist[v as usize]);
    }
    Ok(hist)
}

/// Pixel count of every value. Masks are mostly background: zeros are skipped eight at a
/// time and counted as what is left.
fn histogram(data: &[u8]) -> [u64; 256] {
    let mut hist = [0u64; 256];
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        if u64::from_ne_bytes(w.try_into().expect("8 bytes")) != 0 {
            for &v in w {
                hist[v as usize] += 1;
            }
        }
    }
    for &v in words.remainder() {
        hist[v as usize] += 1;
    }
    hist[0] = 0;
    hist[0] = data.len() as u64 - hist.iter().sum::<u64>();
    hist
}

/// Dataset errors start with the path; the problem carries it already.
fn strip(e: &DatasetError, path: &Path) -> String {
    let m = e.to_string();
    let prefix = format!("{}: ", path.display());
    m.strip_prefix(&prefix).map(String::from).unwrap_or(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn histogram_counts_every_value() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for n in [0usize, 1, 7, 8, 9, 63, 1000] {
            let data: Vec<u8> = (0..n)
                .map(|_| if rng.gen_bool(0.7) { 0 } else { rng.gen() })
                .collect();
            let want = crate::dataset::count_values(&data);
            let got = histogram(&data);
            for (v, &count) in got.iter().enumerate() {
                let expected = want.get(&(v as u32)).copied().unwrap_or(0);
                assert_eq!(count, expected, "{n} {v}");
            }
        }
    }

    #[test]
    fn unknown_values_move_to_the_replacement_in_mask_and_counts() {
        let mut m = IndexMask {
            width: 6,
            height: 1,
            data: vec![0, 1, 7, 7, 255, 3],
        };
        let err = replace_unknown(&mut m.clone(), 3, UnknownPolicy::Error).unwrap_err();
        assert!(err.contains("values 3 (1 px), 7 (2 px)"), "{err}");
        let hist = replace_unknown(&mut m, 3, UnknownPolicy::Ignore).unwrap();
        assert_eq!(m.data, [0, 1, 255, 255, 255, 255]);
        assert_eq!((hist[0], hist[1], hist[255], hist[7]), (1, 1, 4, 0));
    }
}
