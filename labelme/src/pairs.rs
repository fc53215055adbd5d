//! What `import-masks` ([`crate::import`]) and `import-voc` ([`crate::voc`]) share: finding
//! files by stem, the output-folder check, copying an image into `JPEGImages/`, and turning
//! the per-pair results into the manifest, splits and summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::convert::{ConvertError, ConvertSummary, Problem};
use crate::dataset::{
    self, atomic_write, DatasetError, HistoryEntry, ImageEntry, Manifest, IMAGES_DIR,
};

/// Image file endings the importers read.
pub(crate) const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff"];

/// What importing one pair gave: its manifest entry and its warnings.
pub(crate) type Imported = Result<(ImageEntry, Vec<Problem>), Problem>;

/// Files of `dir` with one of `exts` (lowercase), by stem. When two share a stem (`a.jpg`,
/// `a.png`) the first in name order is kept, whatever order the file system lists them in.
pub(crate) fn files_by_stem(
    dir: &Path,
    exts: &[&str],
) -> Result<BTreeMap<String, PathBuf>, ConvertError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))? {
        let p = entry.map_err(|e| DatasetError::io(dir, e))?.path();
        let ext = p
            .extension()
            .map(|x| x.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if p.is_file() && exts.contains(&ext.as_str()) {
            paths.push(p);
        }
    }
    paths.sort();
    let mut m = BTreeMap::new();
    for p in paths {
        let stem = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        m.entry(stem).or_insert(p);
    }
    Ok(m)
}

/// The output folder must be new or empty (an import never replaces a dataset).
pub(crate) fn require_empty(out: &Path) -> Result<(), ConvertError> {
    if out.exists() && !out.is_dir() {
        return Err(ConvertError::Usage(format!(
            "{}: exists and is not a folder",
            out.display()
        )));
    }
    let non_empty = out.is_dir()
        && std::fs::read_dir(out)
            .map_err(|e| DatasetError::io(out, e))?
            .next()
            .is_some();
    if non_empty {
        return Err(ConvertError::Usage(format!(
            "{}: output folder is not empty",
            out.display()
        )));
    }
    Ok(())
}

/// Write the image `bytes` (of `format`) as `JPEGImages/<stem>.jpg|png` under `out` and
/// return that relative path: JPEG and PNG bytes as they are, other formats as an 8-bit
/// RGB PNG. Errors are messages about the source image.
pub(crate) fn copy_image(
    bytes: &[u8],
    format: image::ImageFormat,
    stem: &str,
    out: &Path,
) -> Result<String, String> {
    let file = match format {
        image::ImageFormat::Jpeg => format!("{IMAGES_DIR}/{stem}.jpg"),
        _ => format!("{IMAGES_DIR}/{stem}.png"),
    };
    let io = |e: DatasetError| e.to_string();
    if matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        atomic_write(&out.join(&file), bytes).map_err(io)?;
    } else {
        let rgb = image::load_from_memory_with_format(bytes, format)
            .map_err(|e| format!("cannot decode image: {e}"))?
            .into_rgb8();
        let mut png = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| e.to_string())?;
        atomic_write(&out.join(&file), &png).map_err(io)?;
    }
    Ok(file)
}

/// Gather the per-pair `results` into a dataset at `out`: entries in stem order, the
/// `splits` (in their own order, limited to the images imported, plus `trainval` = all
/// imported when they have none), `dataset.json` with `command` in its history. Nothing is
/// written when no pair was imported. Failed pairs join `errors`, warnings follow them.
pub(crate) fn finish_import(
    out: &Path,
    names: Vec<String>,
    results: Vec<Imported>,
    splits: &BTreeMap<String, Vec<String>>,
    command: &str,
    mut errors: Vec<Problem>,
    mut warnings: Vec<Problem>,
) -> Result<ConvertSummary, ConvertError> {
    let mut manifest = Manifest::new(&names);
    for r in results {
        match r {
            Ok((entry, w)) => {
                manifest.images.push(entry);
                warnings.extend(w);
            }
            Err(p) => errors.push(p),
        }
    }
    manifest.images.sort_by(|a, b| a.stem.cmp(&b.stem));
    if !manifest.images.is_empty() {
        manifest.history.push(HistoryEntry::now(command));
        let imported: Vec<String> = manifest.images.iter().map(|e| e.stem.clone()).collect();
        if !splits.contains_key("trainval") {
            dataset::write_split(out, "trainval", &imported)?;
        }
        for (name, stems) in splits {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_file_in_name_order_wins_a_shared_stem() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.png", "a.png", "a.jpg", "c.txt", "D.PNG"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let m = files_by_stem(dir.path(), &["png", "jpg"]).unwrap();
        let got: Vec<(&str, String)> = m
            .iter()
            .map(|(s, p)| (s.as_str(), p.file_name().unwrap().to_string_lossy().into()))
            .collect();
        assert_eq!(
            got,
            [
                ("D", "D.PNG".to_string()),
                ("a", "a.jpg".into()),
                ("b", "b.png".into())
            ]
        );
    }

    #[test]
    fn a_non_empty_or_non_folder_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(require_empty(&dir.path().join("new")).is_ok());
        assert!(require_empty(dir.path()).is_ok());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let e = require_empty(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
        let e = require_empty(&dir.path().join("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a folder"), "{e}");
    }
}
