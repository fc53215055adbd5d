//! Writing a derived dataset: every file goes into a hidden staging folder beside `OUT`,
//! which is renamed to `OUT` only when the manifest is complete, so a killed run never
//! leaves a dataset that looks finished but is not.
//!
//! An image that has an object mask (`SegmentationObject/<stem>.png`) keeps one in every
//! image derived from it, and the derived image's instances are its objects
//! ([`crate::objects`]); without one they are the connected components of the class mask.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{usage, Result, Tick};
use crate::dataset::{
    count_values, write_index_png, write_manifest, write_split, ClassInfo, Dataset, DatasetError,
    HistoryEntry, ImageEntry, Manifest, MaskEncoding, Staging, IMAGES_DIR, MASKS_DIR, OBJECTS_DIR,
    SPLITS_DIR,
};
use crate::objects::{object_instances, object_mask_path, write_object_mask};

/// Image content of one output image.
pub(crate) enum ImageOut {
    /// Copy this file byte for byte (keeps the source codec and quality).
    Copy(PathBuf),
    /// Write these already-encoded bytes.
    Bytes(Vec<u8>),
}

/// Mask content of one output image.
pub(crate) enum MaskOut {
    /// Copy this mask file byte for byte (still read, to check it and recompute
    /// `class_pixels`/`instances`, so a stale manifest is not carried over).
    Copy(PathBuf),
    /// Write these indices (P-mode PNG) and recompute `class_pixels`/`instances` from them.
    Data(Vec<u8>),
}

/// Object mask of one output image (see [`crate::objects`]).
pub(crate) enum ObjectsOut {
    /// Copy this object mask file byte for byte; `ids` are its pixels, already read and
    /// checked against the image size (see [`read_objects`]).
    Copy { src: PathBuf, ids: Vec<u8> },
    /// Write these ids (P-mode PNG).
    Data(Vec<u8>),
}

/// One image of the output dataset.
pub(crate) struct Item {
    /// Entry to write; `file`, `class_pixels` and `instances` are filled in on write.
    pub entry: ImageEntry,
    /// Image file extension without dot.
    pub ext: String,
    pub image: ImageOut,
    pub mask: MaskOut,
    /// The object mask, when the input image has one; then `instances` are its objects.
    pub objects: Option<ObjectsOut>,
}

/// What a derived dataset got.
#[derive(Debug)]
pub struct Derived {
    /// The dataset folder written.
    pub out: PathBuf,
    /// Images read.
    pub images_in: usize,
    /// Images written.
    pub images_out: usize,
    /// Images that could not be processed, each error naming its file; the rest were written.
    pub failed: Vec<DatasetError>,
}

/// Extension of `file`, lowercased, or `png` when it has none.
pub(crate) fn ext_of(file: &str) -> String {
    Path::new(file)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_else(|| "png".into())
}

/// Refuse output folders that would clobber something: the input itself or a non-empty folder.
pub(crate) fn check_out(input: &Path, out: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), out.canonicalize()) {
        if a == b {
            return Err(usage(format!(
                "{}: output folder is the input dataset; inputs are never modified, choose another OUT",
                out.display()
            )));
        }
    }
    if out.exists() {
        let empty = fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(usage(format!(
                "{}: already exists and is not an empty folder; choose another OUT or remove it",
                out.display()
            )));
        }
    }
    Ok(())
}

/// Write the files of `item` under `root`, pushing each path to `written` before it is
/// written, so that the caller can remove them if a later step fails.
fn write_item(
    root: &Path,
    item: Item,
    written: &mut Vec<PathBuf>,
) -> Result<ImageEntry, DatasetError> {
    let Item {
        mut entry,
        ext,
        image,
        mask,
        objects,
    } = item;
    entry.file = format!("{IMAGES_DIR}/{}.{ext}", entry.stem);
    let img_path = root.join(&entry.file);
    written.push(img_path.clone());
    match image {
        ImageOut::Copy(src) => {
            fs::copy(&src, &img_path).map_err(|e| DatasetError::io(&src, e))?;
        }
        ImageOut::Bytes(b) => {
            fs::write(&img_path, b).map_err(|e| DatasetError::io(&img_path, e))?
        }
    }
    let mask_path = root.join(MASKS_DIR).join(format!("{}.png", entry.stem));
    written.push(mask_path.clone());
    let (class, w, h, mask_src) = match mask {
        MaskOut::Copy(src) => {
            let m = crate::dataset::read_index_png(&src)?;
            fs::copy(&src, &mask_path).map_err(|e| DatasetError::io(&src, e))?;
            (m.data, m.width, m.height, src)
        }
        MaskOut::Data(data) => {
            write_index_png(
                &mask_path,
                entry.width,
                entry.height,
                &data,
                MaskEncoding::Palette,
            )?;
            (data, entry.width, entry.height, mask_path)
        }
    };
    let Some(objects) = objects else {
        // One run-length pass gives both (the labeller `convert` uses).
        (entry.class_pixels, entry.instances) = crate::runs::counts_and_instances(&class, w, h);
        return Ok(entry);
    };
    let obj_path = object_mask_path(root, &entry.stem);
    let (ids, src) = match objects {
        ObjectsOut::Copy { src, ids } => (ids, Some(src)),
        ObjectsOut::Data(ids) => (ids, None),
    };
    if ids.len() != class.len() {
        let shown = src.as_deref().unwrap_or(&obj_path);
        return Err(DatasetError::invalid(
            shown,
            format!(
                "object mask has {} pixels but the class mask {} is {w}x{h}",
                ids.len(),
                mask_src.display()
            ),
        ));
    }
    fs::create_dir_all(root.join(OBJECTS_DIR))
        .map_err(|e| DatasetError::io(root.join(OBJECTS_DIR), e))?;
    written.push(obj_path.clone());
    match src {
        Some(src) => {
            fs::copy(&src, &obj_path).map_err(|e| DatasetError::io(&src, e))?;
        }
        None => write_object_mask(root, &entry.stem, w, h, &ids, 0..h)?,
    }
    entry.class_pixels = count_values(&class);
    entry.instances = object_instances(&class, &ids, w, 0..h).instances;
    Ok(entry)
}

/// Names of the split lists of a dataset (`ImageSets/Segmentation/*.txt`), sorted.
pub(crate) fn split_names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(SPLITS_DIR);
    let mut names = Vec::new();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd {
            let e = e.map_err(|e| DatasetError::io(&dir, e))?;
            let p = e.path();
            if p.extension().is_some_and(|x| x == "txt") {
                if let Some(s) = p.file_stem() {
                    names.push(s.to_string_lossy().into_owned());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Run `f` on every image of `ds` in parallel and write what it returns as a new dataset at
/// `out` with `classes`. Split lists carry over: an output image is in every list its input
/// image was in. Images `f` fails on are reported in [`Derived::failed`], the others written;
/// what `f` reports comes back per successfully processed input image, in manifest order.
pub(crate) fn derive<T: Send>(
    ds: &Dataset,
    out: &Path,
    classes: Vec<ClassInfo>,
    command: &str,
    tick: Tick,
    f: impl Fn(&ImageEntry) -> Result<(Vec<Item>, T), DatasetError> + Sync,
) -> Result<(Derived, Vec<T>)> {
    check_out(&ds.root, out)?;
    let staging = Staging::beside(out)?;
    let root = staging.root();
    for d in [IMAGES_DIR, MASKS_DIR, SPLITS_DIR] {
        fs::create_dir_all(root.join(d)).map_err(|e| DatasetError::io(root.join(d), e))?;
    }

    let results: Vec<Result<(Vec<ImageEntry>, T), DatasetError>> = ds
        .manifest
        .images
        .par_iter()
        .map(|e| {
            let mut written = Vec::new();
            let r = f(e).and_then(|(items, t)| {
                let entries = items
                    .into_iter()
                    .map(|it| write_item(root, it, &mut written))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((entries, t))
            });
            if r.is_err() {
                // a failed image leaves none of its files in the output
                for p in &written {
                    let _ = fs::remove_file(p);
                }
            }
            tick();
            r
        })
        .collect();

    let mut images = Vec::new();
    let mut per_image = Vec::new();
    let mut failed = Vec::new();
    let mut derived_from: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (e, r) in ds.manifest.images.iter().zip(results) {
        match r {
            Ok((entries, t)) => {
                derived_from.insert(&e.stem, entries.iter().map(|x| x.stem.clone()).collect());
                images.extend(entries);
                per_image.push(t);
            }
            Err(err) => failed.push(err),
        }
    }
    images.sort_by(|a, b| a.stem.cmp(&b.stem));
    if let Some(w) = images.windows(2).find(|w| w[0].stem == w[1].stem) {
        return Err(usage(format!(
            "two output images would both be named {:?}; rename one of the inputs",
            w[0].stem
        )));
    }

    for name in split_names(&ds.root)? {
        let stems = ds.split(&name)?.unwrap_or_default();
        let mapped: Vec<String> = stems
            .iter()
            .filter_map(|s| derived_from.get(s.as_str()))
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        write_split(root, &name, &mapped)?;
    }

    let mut history = ds.manifest.history.clone();
    history.push(HistoryEntry::now(command));
    let images_out = images.len();
    let manifest = Manifest {
        classes,
        images,
        history,
        ..ds.manifest.clone()
    };
    write_manifest(root, &manifest)?;

    // check_out made sure `out` is missing or an empty folder
    staging.commit(out)?;
    let derived = Derived {
        out: out.to_path_buf(),
        images_in: ds.manifest.images.len(),
        images_out,
        failed,
    };
    Ok((derived, per_image))
}

/// Read the mask of `entry` and check it matches the entry's size.
pub(crate) fn read_mask(ds: &Dataset, entry: &ImageEntry) -> Result<Vec<u8>, DatasetError> {
    let path = ds.mask_path(&entry.stem);
    let m = crate::dataset::read_index_png(&path)?;
    if (m.width, m.height) != (entry.width, entry.height) {
        return Err(DatasetError::invalid(
            &path,
            format!(
                "mask is {}x{} but its image is {}x{} in dataset.json; re-export the mask at image size",
                m.width, m.height, entry.width, entry.height
            ),
        ));
    }
    Ok(m.data)
}

/// Read the object mask of `entry` when the dataset has one (`SegmentationObject/<stem>.png`)
/// and check it matches the entry's size. Returns its path and ids.
pub(crate) fn read_objects(
    ds: &Dataset,
    entry: &ImageEntry,
) -> Result<Option<(PathBuf, Vec<u8>)>, DatasetError> {
    let path = object_mask_path(&ds.root, &entry.stem);
    match fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DatasetError::io(&path, e)),
        Ok(_) => {}
    }
    let m = crate::dataset::read_index_png(&path)?;
    if (m.width, m.height) != (entry.width, entry.height) {
        return Err(DatasetError::invalid(
            &path,
            format!(
                "object mask is {}x{} but its image is {}x{} in dataset.json; re-export it at image size or remove it",
                m.width, m.height, entry.width, entry.height
            ),
        ));
    }
    Ok(Some((path, m.data)))
}
