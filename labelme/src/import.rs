//! `segkit import-masks`: image/mask folder pairs (such as unet-pytorch's
//! `Medical_Datasets/Images` + `Labels`) → a dataset folder, so that every later step sees
//! one format.
//!
//! Masks are paired with images by file stem. Their pixel values become classes through an
//! explicit value table (`0=membrane,255=_background_`) or a threshold (`>= t` is the
//! foreground class, `--invert` for dark foregrounds).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::convert::{ConvertError, Problem, Tick};
use crate::dataset::{self, write_index_png, ImageEntry, MaskEncoding, MASKS_DIR};
use crate::labels::BACKGROUND;
use crate::pairs::{copy_image, files_by_stem, finish_import, require_empty, Imported, IMAGE_EXTS};
use crate::runs::counts_and_instances;

/// How mask values become classes.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueMapping {
    /// Each listed value is a class (by name); other values are errors.
    Table(Vec<(u8, String)>),
    /// Values `>= threshold` (or `<` with `invert`) are class `name`, the rest background.
    Threshold {
        /// The cut.
        threshold: u8,
        /// Foreground is the dark side.
        invert: bool,
        /// Foreground class name.
        name: String,
    },
}

impl ValueMapping {
    /// Parse `0=membrane,255=_background_`.
    pub fn parse_table(s: &str) -> Result<ValueMapping, String> {
        let mut table = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (v, name) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not VALUE=CLASS"))?;
            let v: u8 = v
                .trim()
                .parse()
                .map_err(|_| format!("{v:?} is not a value 0..255"))?;
            table.push((v, name.trim().to_string()));
        }
        if table.is_empty() {
            return Err("no VALUE=CLASS pairs".into());
        }
        Ok(ValueMapping::Table(table))
    }

    /// Class names in id order and the class id of every pixel value (None = not allowed).
    fn lut(&self) -> (Vec<String>, [Option<u8>; 256]) {
        let mut names = vec![BACKGROUND.to_string()];
        let mut lut = [None; 256];
        match self {
            ValueMapping::Table(table) => {
                for (v, name) in table {
                    let id = match names.iter().position(|n| n == name) {
                        Some(i) => i,
                        None if name == "__ignore__" => 255,
                        None => {
                            names.push(name.clone());
                            names.len() - 1
                        }
                    };
                    lut[*v as usize] = Some(id as u8);
                }
            }
            ValueMapping::Threshold {
                threshold,
                invert,
                name,
            } => {
                names.push(name.clone());
                for (v, slot) in lut.iter_mut().enumerate() {
                    let fg = (v as u8 >= *threshold) != *invert;
                    *slot = Some(fg as u8);
                }
            }
        }
        (names, lut)
    }
}

/// Import image/mask pairs from `images` and `masks` into the dataset folder `out` (new or
/// empty). Returns the summary; a pair that fails is listed in its `errors`.
pub fn import_masks(
    images: &Path,
    masks: &Path,
    out: &Path,
    mapping: &ValueMapping,
    command: &str,
    tick: Tick<'_>,
) -> Result<crate::convert::ConvertSummary, ConvertError> {
    let imgs = files_by_stem(images, IMAGE_EXTS)?;
    let msks = files_by_stem(masks, IMAGE_EXTS)?;
    require_empty(out)?;
    let mut errors = Vec::new();
    for (stem, p) in &imgs {
        if !msks.contains_key(stem) {
            errors.push(Problem {
                file: p.clone(),
                shape: None,
                message: "no mask with this name".into(),
            });
        }
    }
    let pairs: Vec<(&String, &PathBuf, &PathBuf)> = imgs
        .iter()
        .filter_map(|(s, i)| msks.get(s).map(|m| (s, i, m)))
        .collect();
    if pairs.is_empty() {
        return Err(ConvertError::Usage(format!(
            "no image in {} has a mask of the same name in {}",
            images.display(),
            masks.display()
        )));
    }
    let (names, lut) = mapping.lut();
    let results: Vec<Imported> = pairs
        .par_iter()
        .map(|(stem, img, msk)| {
            let r = import_one(stem, img, msk, out, &lut).map(|e| (e, Vec::new()));
            tick();
            r
        })
        .collect();
    finish_import(
        out,
        names,
        results,
        &BTreeMap::new(),
        command,
        errors,
        Vec::new(),
    )
}

fn import_one(
    stem: &str,
    img: &Path,
    msk: &Path,
    out: &Path,
    lut: &[Option<u8>; 256],
) -> Result<ImageEntry, Problem> {
    let problem = |file: &Path, message: String| Problem {
        file: file.to_path_buf(),
        shape: None,
        message,
    };
    let bytes = std::fs::read(img).map_err(|e| problem(img, e.to_string()))?;
    let fmt = image::guess_format(&bytes).map_err(|e| problem(img, e.to_string()))?;
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(&bytes), fmt)
        .into_dimensions()
        .map_err(|e| problem(img, format!("cannot read image: {e}")))?;
    let mask = image::open(msk).map_err(|e| problem(msk, format!("cannot read mask: {e}")))?;
    if mask.color().has_color() {
        return Err(problem(
            msk,
            "mask is a colour image; expected a grayscale or palette mask".into(),
        ));
    }
    let gray = mask.to_luma8();
    if gray.dimensions() != (w, h) {
        let (mw, mh) = gray.dimensions();
        return Err(problem(
            msk,
            format!(
                "mask is {mw}x{mh} but the image {} is {w}x{h}",
                img.display()
            ),
        ));
    }
    let mut class = Vec::with_capacity(gray.len());
    for &v in gray.as_raw() {
        match lut[v as usize] {
            Some(c) => class.push(c),
            None => return Err(problem(msk, format!("pixel value {v} is not in --values"))),
        }
    }
    let file = copy_image(&bytes, fmt, stem, out).map_err(|m| problem(img, m))?;
    let io = |e: dataset::DatasetError| problem(img, e.to_string());
    write_index_png(
        &out.join(MASKS_DIR).join(format!("{stem}.png")),
        w,
        h,
        &class,
        MaskEncoding::Palette,
    )
    .map_err(io)?;
    let (class_pixels, instances) = counts_and_instances(&class, w, h);
    Ok(ImageEntry {
        stem: stem.to_string(),
        file,
        width: w,
        height: h,
        views: Vec::new(),
        source: msk
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        class_pixels,
        instances,
        extra: serde_json::Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_tables_and_thresholds() {
        let m = ValueMapping::parse_table("0=membrane,255=_background_").unwrap();
        let (names, lut) = m.lut();
        assert_eq!(names, ["_background_", "membrane"]);
        assert_eq!((lut[0], lut[255], lut[7]), (Some(1), Some(0), None));
        assert!(ValueMapping::parse_table("x=a").is_err());
        let t = ValueMapping::Threshold {
            threshold: 128,
            invert: true,
            name: "membrane".into(),
        };
        let (_, lut) = t.lut();
        assert_eq!(
            (lut[0], lut[127], lut[128], lut[255]),
            (Some(1), Some(1), Some(0), Some(0))
        );
    }
}
