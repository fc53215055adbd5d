//! The dataset folder contract (ARCHITECTURE.md, "Dataset folder"): VOC layout plus a
//! `dataset.json` manifest.
//!
//! Every segkit command that reads or writes a dataset goes through this module, so the
//! layout lives in one place. Writes are atomic (temp file in the same folder, then rename):
//! a killed command never leaves a truncated mask or manifest behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The value that marks pixels every loss and metric skips.
pub const IGNORE_INDEX: u8 = 255;
/// `format` field of `dataset.json`.
pub const FORMAT: &str = "segkit-dataset";
/// Version of the dataset contract this crate writes and reads.
pub const VERSION: u32 = 1;

/// Folder of images inside a dataset.
pub const IMAGES_DIR: &str = "JPEGImages";
/// Folder of class-index masks inside a dataset.
pub const MASKS_DIR: &str = "SegmentationClass";
/// Folder of instance-index masks inside a dataset.
pub const OBJECTS_DIR: &str = "SegmentationObject";
/// Folder of human-viewable overlays inside a dataset.
pub const VIS_DIR: &str = "SegmentationClassVisualization";
/// Folder of split lists inside a dataset.
pub const SPLITS_DIR: &str = "ImageSets/Segmentation";

/// What went wrong with a dataset file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file's content is not what the contract says.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words a user can act on.
        message: String,
    },
}

impl DatasetError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::Io {
            path: path.into(),
            source,
        }
    }
    /// A content error on `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DatasetError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result type of this module.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// One class of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Index in the mask (0 = background).
    pub id: u32,
    /// Display name; UTF-8, kept as the annotator wrote it.
    pub name: String,
    /// RGB colour in masks and overlays (the VOC colour map unless chosen otherwise).
    pub color: [u8; 3],
}

/// One defect or object: an 8-connected component of one class, or, where the dataset has
/// object masks (`convert --instances`, `import-voc` with `SegmentationObject/`), one object id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Class id.
    pub class: u32,
    /// Pixel count.
    pub area: u64,
    /// `[x, y, w, h]` in pixels.
    pub bbox: [u32; 4],
}

/// One image of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// Unique name without extension, shared by image, mask and split lists.
    pub stem: String,
    /// Image path relative to the dataset folder.
    pub file: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// View tags such as `front`; empty when none.
    #[serde(default)]
    pub views: Vec<String>,
    /// Where the image came from (annotation path, relative), for reports and split grouping.
    #[serde(default)]
    pub source: String,
    /// Pixel count per mask value (255 = ignore).
    #[serde(default)]
    pub class_pixels: BTreeMap<u32, u64>,
    /// The image's defects or objects (see [`Instance`]).
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Fields written by newer versions or other tools, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One step in how a dataset was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The command line, as typed.
    pub command: String,
    /// segkit version that ran it.
    pub version: String,
    /// RFC 3339 UTC time.
    pub at: String,
}

impl HistoryEntry {
    /// A history entry for `command` run now by this segkit version.
    pub fn now(command: impl Into<String>) -> Self {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        HistoryEntry {
            command: command.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            at,
        }
    }
}

/// The `dataset.json` manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Contract version, [`VERSION`].
    pub version: u32,
    /// Mask value that losses and metrics skip.
    pub ignore_index: u8,
    /// Classes in id order, background first.
    pub classes: Vec<ClassInfo>,
    /// Images in stem order.
    pub images: Vec<ImageEntry>,
    /// Commands that made this dataset, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Manifest {
    /// An empty manifest for these class names (line 0 is the background), VOC colours.
    pub fn new(class_names: &[String]) -> Self {
        let cmap = voc_colormap();
        let classes = class_names
            .iter()
            .enumerate()
            .map(|(i, n)| ClassInfo {
                id: i as u32,
                name: n.clone(),
                color: cmap[i % 256],
            })
            .collect();
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            ignore_index: IGNORE_INDEX,
            classes,
            images: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Class names in id order.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// Pixel totals per mask value over all images.
    pub fn total_class_pixels(&self) -> BTreeMap<u32, u64> {
        let mut t = BTreeMap::new();
        for im in &self.images {
            for (k, v) in &im.class_pixels {
                *t.entry(*k).or_insert(0) += v;
            }
        }
        t
    }
}

/// An opened dataset folder.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder.
    pub root: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl Dataset {
    /// Open the dataset at `root` and check its manifest against the contract.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let path = root.join("dataset.json");
        if !path.exists() {
            return Err(DatasetError::invalid(
                &root,
                "not a segkit dataset: dataset.json is missing (make one with `segkit convert`)",
            ));
        }
        let text = fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| DatasetError::invalid(&path, format!("invalid manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(DatasetError::invalid(
                &path,
                format!("format is {:?}, expected {FORMAT:?}", manifest.format),
            ));
        }
        if manifest.version > VERSION {
            return Err(DatasetError::invalid(
                &path,
                format!(
                    "dataset version {} is newer than this segkit understands ({VERSION})",
                    manifest.version
                ),
            ));
        }
        for (i, c) in manifest.classes.iter().enumerate() {
            if c.id as usize != i {
                return Err(DatasetError::invalid(
                    &path,
                    format!(
                        "class {:?} has id {} at position {i}: ids must be 0..N-1 in order",
                        c.name, c.id
                    ),
                ));
            }
        }
        Ok(Dataset { root, manifest })
    }

    /// Absolute path of an image entry's image.
    pub fn image_path(&self, entry: &ImageEntry) -> PathBuf {
        self.root.join(&entry.file)
    }

    /// Absolute path of an image entry's class mask.
    pub fn mask_path(&self, stem: &str) -> PathBuf {
        self.root.join(MASKS_DIR).join(format!("{stem}.png"))
    }

    /// Number of classes (including background).
    pub fn num_classes(&self) -> usize {
        self.manifest.classes.len()
    }

    /// Stems listed in `ImageSets/Segmentation/<name>.txt`, or `None` when that split does not exist.
    pub fn split(&self, name: &str) -> Result<Option<Vec<String>>> {
        let path = self.root.join(SPLITS_DIR).join(format!("{name}.txt"));
        if !path.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
        Ok(Some(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        ))
    }

    /// Entries whose stem is in `stems`, in the order of `stems`; unknown stems are an error.
    pub fn entries<'a>(&'a self, stems: &[String]) -> Result<Vec<&'a ImageEntry>> {
        let by_stem: BTreeMap<&str, &ImageEntry> = self
            .manifest
            .images
            .iter()
            .map(|e| (e.stem.as_str(), e))
            .collect();
        stems
            .iter()
            .map(|s| {
                by_stem.get(s.as_str()).copied().ok_or_else(|| {
                    DatasetError::invalid(
                        self.root.join("dataset.json"),
                        format!("split lists {s:?}, which is not in the manifest"),
                    )
                })
            })
            .collect()
    }
}

/// Write `manifest` and `class_names.txt` into `root` atomically.
pub fn write_manifest(root: &Path, manifest: &Manifest) -> Result<()> {
    let mut json = serde_json::to_string_pretty(manifest).expect("manifest serializes");
    json.push('\n');
    atomic_write(&root.join("dataset.json"), json.as_bytes())?;
    let mut names = String::new();
    for c in &manifest.classes {
        names.push_str(&c.name);
        names.push('\n');
    }
    atomic_write(&root.join("class_names.txt"), names.as_bytes())
}

/// Write a split list (`ImageSets/Segmentation/<name>.txt`), one stem a line.
pub fn write_split(root: &Path, name: &str, stems: &[String]) -> Result<()> {
    let mut text = String::new();
    for s in stems {
        text.push_str(s);
        text.push('\n');
    }
    atomic_write(
        &root.join(SPLITS_DIR).join(format!("{name}.txt")),
        text.as_bytes(),
    )
}

/// Write `bytes` to `path` through a temp file in the same folder and a rename, creating
/// parent folders; a reader never sees a half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |w| w.write_all(bytes))
}

/// Like [`atomic_write`], with the content produced by `fill` into a buffered writer.
pub fn atomic_write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".segkit-").suffix(".tmp");
    // tempfile creates 0600 files; outputs are ordinary files others may read.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let tmp = builder
        .tempfile_in(dir)
        .map_err(|e| DatasetError::io(dir, e))?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| DatasetError::io(path, e))?;
    }
    tmp.persist(path)
        .map_err(|e| DatasetError::io(path, e.error))?;
    Ok(())
}

/// The PASCAL VOC colour map, as labelme and the VOC devkit build it (bit-interleaved).
pub fn voc_colormap() -> [[u8; 3]; 256] {
    let mut cmap = [[0u8; 3]; 256];
    for (i, entry) in cmap.iter_mut().enumerate() {
        let (mut c, mut r, mut g, mut b) = (i, 0u8, 0u8, 0u8);
        for j in 0..8 {
            r |= ((c & 1) as u8) << (7 - j);
            g |= (((c >> 1) & 1) as u8) << (7 - j);
            b |= (((c >> 2) & 1) as u8) << (7 - j);
            c >>= 3;
        }
        *entry = [r, g, b];
    }
    cmap
}

/// How a class-index mask is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskEncoding {
    /// 8-bit palette PNG with the VOC colour map (what labelme writes; looks coloured in viewers).
    #[default]
    Palette,
    /// 8-bit grayscale PNG holding the indices (what some training repos expect).
    Gray,
}

/// A decoded class-index mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexMask {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major indices, `width * height` bytes.
    pub data: Vec<u8>,
}

/// Write a class-index mask as a P-mode (VOC palette) or L-mode PNG, atomically.
pub fn write_index_png(
    path: &Path,
    width: u32,
    height: u32,
    data: &[u8],
    encoding: MaskEncoding,
) -> Result<()> {
    assert_eq!(
        data.len(),
        width as usize * height as usize,
        "mask buffer size"
    );
    atomic_write_with(path, |w| {
        let mut enc = png::Encoder::new(w, width, height);
        enc.set_depth(png::BitDepth::Eight);
        match encoding {
            MaskEncoding::Palette => {
                enc.set_color(png::ColorType::Indexed);
                let pal: Vec<u8> = voc_colormap().iter().flatten().copied().collect();
                enc.set_palette(pal);
            }
            MaskEncoding::Gray => enc.set_color(png::ColorType::Grayscale),
        }
        // Masks are mostly runs of one value: fast compression is nearly as small and much quicker.
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(data)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}

/// Read a class-index mask: the raw indices of a P-mode PNG (not its colours) or the values
/// of an 8-bit gray PNG. RGB masks and 16-bit masks are refused with the reason, since
/// guessing their classes is how training data silently goes wrong.
pub fn read_index_png(path: &Path) -> Result<IndexMask> {
    let file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    // Keep palette indices as they are: expanding them would give colours, not classes.
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| DatasetError::invalid(path, format!("not a readable PNG: {e}")))?;
    let info = reader.info();
    let (width, height, color, depth) = (info.width, info.height, info.color_type, info.bit_depth);
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| DatasetError::invalid(path, format!("corrupt PNG: {e}")))?;
    buf.truncate(frame.buffer_size());
    let n = width as usize * height as usize;
    let data = match (color, depth) {
        (png::ColorType::Indexed | png::ColorType::Grayscale, png::BitDepth::Eight) => buf,
        (png::ColorType::Indexed | png::ColorType::Grayscale, png::BitDepth::One
            | png::BitDepth::Two
            | png::BitDepth::Four) => unpack_bits(&buf, width, height, depth as u8),
        (png::ColorType::Grayscale, png::BitDepth::Sixteen) => {
            return Err(DatasetError::invalid(
                path,
                "16-bit gray mask: class masks must be 8-bit indices (convert with `segkit convert` or save as 8-bit)",
            ))
        }
        (c, _) => {
            return Err(DatasetError::invalid(
                path,
                format!("mask is {c:?}, not a class-index PNG: an RGB/colour mask stores colours, not class ids; save it as P or L mode with values 0..N-1"),
            ))
        }
    };
    if data.len() != n {
        return Err(DatasetError::invalid(
            path,
            "mask data size does not match its header",
        ));
    }
    Ok(IndexMask {
        width,
        height,
        data,
    })
}

fn unpack_bits(buf: &[u8], width: u32, height: u32, bits: u8) -> Vec<u8> {
    let stride = (width as usize * bits as usize).div_ceil(8);
    let per_byte = 8 / bits as usize;
    let mask = (1u16 << bits) as u8 - 1;
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height as usize {
        let row = &buf[y * stride..(y + 1) * stride];
        for x in 0..width as usize {
            let byte = row[x / per_byte];
            let shift = 8 - bits as usize * (x % per_byte + 1);
            out.push((byte >> shift) & mask);
        }
    }
    out
}

/// Read any supported image (JPEG, PNG, BMP, TIFF; gray, RGB, RGBA, 16-bit, palette) as 8-bit RGB.
pub fn read_rgb(path: &Path) -> Result<image::RgbImage> {
    let img = image::ImageReader::open(path)
        .map_err(|e| DatasetError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DatasetError::io(path, e))?
        .decode()
        .map_err(|e| DatasetError::invalid(path, format!("cannot decode image: {e}")))?;
    Ok(img.to_rgb8())
}

/// Pixel count per mask value.
pub fn count_values(mask: &[u8]) -> BTreeMap<u32, u64> {
    let mut hist = [0u64; 256];
    for &v in mask {
        hist[v as usize] += 1;
    }
    hist.iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(v, &n)| (v as u32, n))
        .collect()
}

/// A dataset folder being written: a hidden staging folder beside the output that becomes
/// the output only in [`Staging::commit`], once everything (the manifest last) is written.
/// A killed run leaves at most a hidden `.segkit-staging-*` folder, never an output that
/// looks finished; dropping a `Staging` without committing removes it.
pub struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// Start writing the dataset that will become `out` (its parent is created).
    pub fn beside(out: &Path) -> Result<Staging> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| DatasetError::io(&parent, e))?;
        let dir = tempfile::Builder::new()
            .prefix(".segkit-staging-")
            .tempdir_in(&parent)
            .map_err(|e| DatasetError::io(&parent, e))?;
        Ok(Staging { dir })
    }

    /// The folder to write into.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Turn the staged folder into `out`, which must not exist or be an empty folder.
    pub fn commit(self, out: &Path) -> Result<()> {
        if out.exists() {
            fs::remove_dir(out).map_err(|e| DatasetError::io(out, e))?;
        }
        let kept = self.dir.keep();
        fs::rename(&kept, out).map_err(|e| {
            let _ = fs::remove_dir_all(&kept);
            DatasetError::io(out, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_colormap_matches_labelme() {
        let c = voc_colormap();
        assert_eq!(c[0], [0, 0, 0]);
        assert_eq!(c[1], [128, 0, 0]);
        assert_eq!(c[2], [0, 128, 0]);
        assert_eq!(c[3], [128, 128, 0]);
        assert_eq!(c[15], [192, 128, 128]);
        assert_eq!(c[255], [224, 224, 192]);
    }

    #[test]
    fn masks_round_trip_in_both_encodings() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..35u32).map(|i| [0, 1, 7, 255][i as usize % 4]).collect();
        for enc in [MaskEncoding::Palette, MaskEncoding::Gray] {
            let p = dir.path().join(format!("{enc:?}.png"));
            write_index_png(&p, 7, 5, &data, enc).unwrap();
            let m = read_index_png(&p).unwrap();
            assert_eq!((m.width, m.height), (7, 5));
            assert_eq!(m.data, data);
        }
        // no temp files left behind
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn rgb_mask_is_refused_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rgb.png");
        image::RgbImage::new(4, 4).save(&p).unwrap();
        let err = read_index_png(&p).unwrap_err().to_string();
        assert!(err.contains("rgb.png") && err.contains("colour"), "{err}");
    }

    #[test]
    fn manifest_round_trips_and_keeps_unknown_fields() {
        let mut m = Manifest::new(&["_background_".into(), "划痕".into()]);
        let mut extra = serde_json::Map::new();
        extra.insert("future".into(), serde_json::json!(1));
        m.images.push(ImageEntry {
            stem: "a".into(),
            file: "JPEGImages/a.jpg".into(),
            width: 2,
            height: 1,
            views: vec!["front".into()],
            source: "a.json".into(),
            class_pixels: [(0, 1), (1, 1)].into_iter().collect(),
            instances: vec![Instance {
                class: 1,
                area: 1,
                bbox: [1, 0, 1, 1],
            }],
            extra,
        });
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), &m).unwrap();
        let d = Dataset::open(dir.path()).unwrap();
        assert_eq!(d.manifest, m);
        let names = fs::read_to_string(dir.path().join("class_names.txt")).unwrap();
        assert_eq!(names, "_background_\n划痕\n");
    }

    #[test]
    fn staging_becomes_the_output_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/out");
        let leftovers = || {
            fs::read_dir(dir.path().join("sub"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let dropped = Staging::beside(&out).unwrap();
        atomic_write(&dropped.root().join("a/b.txt"), b"x").unwrap();
        drop(dropped); // a run that failed before its manifest
        assert!(!out.exists() && leftovers().is_empty(), "{:?}", leftovers());

        fs::create_dir_all(&out).unwrap(); // an empty output folder is fine
        let staged = Staging::beside(&out).unwrap();
        atomic_write(&staged.root().join("a/b.txt"), b"x").unwrap();
        staged.commit(&out).unwrap();
        assert_eq!(fs::read(out.join("a/b.txt")).unwrap(), b"x");
        assert_eq!(leftovers(), ["out"]);

        let again = Staging::beside(&out).unwrap(); // a full one is never replaced
        assert!(again.commit(&out).is_err());
        assert_eq!(fs::read(out.join("a/b.txt")).unwrap(), b"x");
        assert_eq!(
            leftovers(),
            ["out"],
            "a refused commit leaves nothing behind"
        );
    }
}
