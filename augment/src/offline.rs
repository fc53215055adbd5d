//! Offline augmentation: a new dataset folder with the originals and `copies` augmented
//! versions of each selected image (`segkit augment DATASET OUT`).
//!
//! An image with an object mask (`SegmentationObject/<stem>.png`) gives copies with one,
//! moved by the same geometric draw as the class mask ([`Pipeline::apply_with_objects`]),
//! and their `instances` are its objects, as for every other derived dataset; copies of
//! images without one record the 8-connected components of their class mask.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageEncoder};
use rayon::prelude::*;
use segkit_labelme::curate::components;
use segkit_labelme::dataset::{
    self, atomic_write, atomic_write_with, count_values, write_index_png, write_manifest,
    write_split, Dataset, HistoryEntry, ImageEntry, MaskEncoding, Staging,
};
use segkit_labelme::objects::{object_instances, object_mask_path, write_object_mask};

use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::sample::Sample;
use segkit_labelme::dataset::DatasetError;

/// What to augment and how.
#[derive(Debug, Clone)]
pub struct AugmentOptions {
    /// Augmented copies per selected image.
    pub copies: usize,
    /// Seed; copy `k` of the image at manifest position `i` uses the stream `(seed, k, i)`.
    pub seed: u64,
    /// Split whose images are augmented; `None` = `train` when it exists, else all images.
    pub split: Option<String>,
    /// Also copy the original images (byte for byte) into the output.
    pub keep_originals: bool,
    /// The command line, for the manifest's history.
    pub command: String,
    /// The pipeline's text and file name (`augment.toml`), written beside the manifest.
    pub pipeline_file: (String, String),
}

/// What [`augment_dataset`] wrote.
#[derive(Debug, Clone)]
pub struct AugmentSummary {
    /// The output folder.
    pub out: PathBuf,
    /// Originals copied.
    pub originals: usize,
    /// Augmented images written.
    pub augmented: usize,
    /// Images that could not be augmented, with the reason (the others were written).
    pub failed: Vec<(String, String)>,
}

/// Suffix of augmented stems: `<stem>_aug<k>`.
pub fn augmented_stem(stem: &str, k: usize) -> String {
    format!("{stem}_aug{k}")
}

/// The stems [`augment_dataset`] augments: those of `split`, or of `train` when no split
/// is named and it exists, else every image.
pub fn selected_stems(src: &Dataset, split: Option<&str>) -> Result<Vec<String>> {
    Ok(match split {
        Some(name) => named_split(src, name)?,
        None => match src.split("train")? {
            Some(s) => s,
            None => src.manifest.images.iter().map(|e| e.stem.clone()).collect(),
        },
    })
}

/// The stems of split `name`; an error naming the split file when there is none.
pub(crate) fn named_split(src: &Dataset, name: &str) -> Result<Vec<String>> {
    let file = src
        .root
        .join(dataset::SPLITS_DIR)
        .join(format!("{name}.txt"));
    Ok(src
        .split(name)?
        .ok_or_else(|| DatasetError::invalid(file, format!("split {name:?} does not exist")))?)
}

/// Write a new dataset at `out` from `src`: the originals (unless told not to) plus
/// `opts.copies` augmented copies of each selected image, splits and a manifest whose
/// history gains this command. Each augmented copy is listed in every split that lists
/// its source. One unreadable image is reported in the summary; the rest are written.
/// Written into a hidden staging folder beside `out` that becomes `out` only when the
/// manifest is complete, so an interrupted run leaves no half-written dataset behind.
pub fn augment_dataset(
    src: &Dataset,
    out: &Path,
    pipeline: &Pipeline,
    opts: &AugmentOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<AugmentSummary> {
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(DatasetError::invalid(
            out.to_path_buf(),
            "output folder exists and is not empty; choose a new folder",
        )
        .into());
    }
    // Everything goes into a staging folder that becomes `out` when the manifest is written.
    let staging = Staging::beside(out)?;
    let root = staging.root();
    let m = &src.manifest;
    let selected = selected_stems(src, opts.split.as_deref())?;
    let entries = src.entries(&selected)?;
    let position: BTreeMap<&str, usize> = m
        .images
        .iter()
        .enumerate()
        .map(|(i, e)| (e.stem.as_str(), i))
        .collect();
    let existing: BTreeSet<&str> = m.images.iter().map(|e| e.stem.as_str()).collect();
    for e in &entries {
        for k in 0..opts.copies {
            let s = augmented_stem(&e.stem, k);
            if existing.contains(s.as_str()) {
                return Err(DatasetError::invalid(
                    src.root.join("dataset.json"),
                    format!(
                        "stem {s:?} already exists, so copy {k} of {:?} would overwrite it",
                        e.stem
                    ),
                )
                .into());
            }
        }
    }

    let results: Vec<(String, Result<Vec<ImageEntry>>)> = entries
        .par_iter()
        .map(|e| {
            let r = augment_one(
                src,
                root,
                pipeline,
                opts,
                e,
                position[e.stem.as_str()] as u64,
            );
            progress();
            (e.stem.clone(), r)
        })
        .collect();
    let mut new_entries = Vec::new();
    let mut failed = Vec::new();
    for (stem, r) in results {
        match r {
            Ok(v) => new_entries.extend(v),
            Err(err) => failed.push((stem, err.to_string())),
        }
    }
    let augmented = new_entries.len();

    let mut manifest = m.clone();
    manifest.images.clear();
    let mut originals = 0;
    if opts.keep_originals {
        for e in &m.images {
            copy_original(src, root, e)?;
            manifest.images.push(e.clone());
            originals += 1;
        }
    }
    // Splits: originals as they were, each copy beside its source.
    let by_source: BTreeMap<String, Vec<String>> =
        new_entries.iter().fold(BTreeMap::new(), |mut acc, e| {
            let from = e
                .extra
                .get("augmented_from")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            acc.entry(from)
                .or_insert_with(Vec::new)
                .push(e.stem.clone());
            acc
        });
    for name in split_names(&src.root)? {
        let stems = src.split(&name)?.unwrap_or_default();
        let mut list = Vec::new();
        for s in &stems {
            if opts.keep_originals {
                list.push(s.clone());
            }
            list.extend(by_source.get(s).into_iter().flatten().cloned());
        }
        write_split(root, &name, &list)?;
    }
    manifest.images.extend(new_entries);
    manifest.images.sort_by(|a, b| a.stem.cmp(&b.stem));
    manifest
        .history
        .push(HistoryEntry::now(opts.command.clone()));
    atomic_write(
        &root.join(&opts.pipeline_file.0),
        opts.pipeline_file.1.as_bytes(),
    )?;
    write_manifest(root, &manifest)?;
    staging.commit(out)?;
    Ok(AugmentSummary {
        out: out.to_path_buf(),
        originals,
        augmented,
        failed,
    })
}

fn split_names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(dataset::SPLITS_DIR);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| DatasetError::io(dir.clone(), e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            (p.extension().is_some_and(|x| x == "txt"))
                .then(|| p.file_stem()?.to_str().map(String::from))
                .flatten()
        })
        .collect();
    names.sort();
    Ok(names)
}

fn copy_original(src: &Dataset, out: &Path, e: &ImageEntry) -> Result<()> {
    let copy = |rel: &Path| -> Result<()> {
        let from = src.root.join(rel);
        if from.exists() {
            let bytes = std::fs::read(&from).map_err(|err| DatasetError::io(from.clone(), err))?;
            atomic_write(&out.join(rel), &bytes)?;
        }
        Ok(())
    };
    copy(Path::new(&e.file))?;
    copy(&Path::new(dataset::MASKS_DIR).join(format!("{}.png", e.stem)))?;
    copy(&Path::new(dataset::OBJECTS_DIR).join(format!("{}.png", e.stem)))?;
    copy(&Path::new(dataset::VIS_DIR).join(format!("{}.jpg", e.stem)))
}

/// Load a dataset image and its mask as a [`Sample`] (gray images stay gray).
pub(crate) fn load_sample(src: &Dataset, e: &ImageEntry) -> Result<Sample> {
    let path = src.image_path(e);
    let img = image::ImageReader::open(&path)
        .map_err(|err| DatasetError::io(path.clone(), err))?
        .with_guessed_format()
        .map_err(|err| DatasetError::io(path.clone(), err))?
        .decode()
        .map_err(|err| {
            DatasetError::invalid(path.clone(), format!("cannot decode image: {err}"))
        })?;
    let mask_path = src.mask_path(&e.stem);
    let mask = dataset::read_index_png(&mask_path)?;
    if (mask.width, mask.height) != (img.width(), img.height()) {
        return Err(DatasetError::invalid(
            mask_path,
            format!(
                "mask is {}x{} but its image is {}x{}",
                mask.width,
                mask.height,
                img.width(),
                img.height()
            ),
        )
        .into());
    }
    let gray = matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageLumaA16(_)
    );
    if gray {
        Sample::from_gray(img.to_luma8(), mask.data)
    } else {
        Sample::from_rgb(img.to_rgb8(), mask.data)
    }
}

/// The object mask of `e` when the dataset has one, checked against the image size.
fn load_objects(src: &Dataset, e: &ImageEntry, width: u32, height: u32) -> Result<Option<Vec<u8>>> {
    let path = object_mask_path(&src.root, &e.stem);
    match std::fs::metadata(&path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(DatasetError::io(path, err).into()),
        Ok(_) => {}
    }
    let m = dataset::read_index_png(&path)?;
    if (m.width, m.height) != (width, height) {
        return Err(DatasetError::invalid(
            path,
            format!(
                "object mask is {}x{} but its image is {width}x{height}",
                m.width, m.height
            ),
        )
        .into());
    }
    Ok(Some(m.data))
}

fn augment_one(
    src: &Dataset,
    out: &Path,
    pipeline: &Pipeline,
    opts: &AugmentOptions,
    e: &ImageEntry,
    index: u64,
) -> Result<Vec<ImageEntry>> {
    let sample = load_sample(src, e)?;
    let objects = load_objects(src, e, sample.width, sample.height)?;
    let cmap = dataset::voc_colormap();
    let mut written = Vec::new();
    for k in 0..opts.copies {
        let (a, ids) = match &objects {
            None => (
                pipeline.apply(sample.clone(), opts.seed, k as u64, index),
                None,
            ),
            Some(o) => {
                let (a, ids) =
                    pipeline.apply_with_objects(sample.clone(), o, opts.seed, k as u64, index)?;
                (a, Some(ids))
            }
        };
        let stem = augmented_stem(&e.stem, k);
        let file = format!("{}/{stem}.png", dataset::IMAGES_DIR);
        let color = if a.channels == 3 {
            image::ExtendedColorType::Rgb8
        } else {
            image::ExtendedColorType::L8
        };
        let img_path = out.join(&file);
        atomic_write_with(&img_path, |w| {
            image::codecs::png::PngEncoder::new(w)
                .write_image(&a.image, a.width, a.height, color)
                .map_err(std::io::Error::other)
        })?;
        write_index_png(
            &out.join(dataset::MASKS_DIR).join(format!("{stem}.png")),
            a.width,
            a.height,
            &a.mask,
            MaskEncoding::Palette,
        )?;
        let vis = crate::preview::overlay(&a, &cmap);
        atomic_write_with(
            &out.join(dataset::VIS_DIR).join(format!("{stem}.jpg")),
            |w| {
                image::codecs::jpeg::JpegEncoder::new_with_quality(w, 90)
                    .encode_image(&vis)
                    .map_err(std::io::Error::other)
            },
        )?;
        let instances = match &ids {
            Some(ids) => {
                write_object_mask(out, &stem, a.width, a.height, ids, 0..a.height)?;
                object_instances(&a.mask, ids, a.width, 0..a.height).instances
            }
            None => components::instances(&a.mask, a.width, a.height),
        };
        let mut extra = serde_json::Map::new();
        extra.insert("augmented_from".into(), e.stem.clone().into());
        extra.insert("augment_copy".into(), k.into());
        extra.insert("augment_seed".into(), opts.seed.into());
        written.push(ImageEntry {
            stem,
            file,
            width: a.width,
            height: a.height,
            views: e.views.clone(),
            source: e.source.clone(),
            class_pixels: count_values(&a.mask),
            instances,
            extra,
        });
    }
    Ok(written)
}
