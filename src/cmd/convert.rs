//! `segkit convert`: labelme JSON folder → dataset folder (class masks pixel-identical to
//! labelme 7.9.1 + Pillow 13.0.0).

use std::path::PathBuf;

use anyhow::bail;
use segkit_labelme::convert::{self, ConvertOptions, LabelSpec};
use segkit_labelme::dataset::MaskEncoding;
use segkit_labelme::labels::{Aliases, UnknownPolicy};
use segkit_labelme::voc::{self, VocOptions};

/// Convert labelme annotations into a VOC-style dataset folder.
///
/// Reads every labelme .json under INPUT (any labelme version, 3.x to 7.x; the image from
/// imageData or from imagePath, Windows paths included) and writes OUT: JPEGImages/ (the
/// source JPEG/PNG bytes, or a lossless PNG), SegmentationClass/ (8-bit masks, VOC palette,
/// 255 = __ignore__), SegmentationClassVisualization/ (JPEGs for people: the image with its
/// classes blended in, shrunk to at most 1024 px on the long side; masks stay full size),
/// ImageSets/Segmentation/trainval.txt, class_names.txt and dataset.json (per-image class
/// pixel counts and defect instances).
///
/// Masks are pixel-identical to labelme 7.9.1 with Pillow 13.0.0 for every shape type
/// (polygon, rectangle, circle, line, linestrip, point, mask, oriented_rectangle); later
/// shapes overwrite earlier ones. The image's EXIF orientation is applied before the mask is
/// drawn, because that is how labelme showed the image to the annotator.
///
/// Class ids are the same in every file: from --labels, or, without it, all labels found,
/// sorted, after _background_ (id 0). A bad file is reported (file, shape, reason) and the
/// others are still converted; the exit code is then non-zero.
///
/// Example:
///   segkit convert data_annotated/ voc/ --labels labels.txt
///   segkit convert before/ voc/ --labels _background_,cat,dog --no-viz
///   segkit convert scans/ ds/ --alias 划痕=scratch --unknown ignore --instances
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Folder of labelme .json files (searched recursively), or one .json file.
    pub input: PathBuf,
    /// Output dataset folder (must be new or empty unless --force).
    pub out: PathBuf,
    /// Class list: a labels.txt file (labelme2voc: __ignore__, _background_, then classes)
    /// or names in id order separated by commas (_background_ first; __ignore__ → 255).
    /// Without it: every label found, sorted.
    #[arg(long, value_name = "FILE|A,B,...")]
    pub labels: Option<String>,
    /// What labels missing from --labels become (default: an error listing them all).
    #[arg(long, value_enum, default_value_t = Unknown::Error)]
    pub unknown: Unknown,
    /// Merge a label spelling into another, e.g. --alias 划痕=scratch (repeatable).
    #[arg(long, value_name = "FROM=TO")]
    pub alias: Vec<String>,
    /// Mask encoding: p = palette PNG (VOC colours, as labelme), l = grayscale indices.
    #[arg(long, value_enum, default_value_t = Mode::P)]
    pub mode: Mode,
    /// Also write SegmentationObject/ instance masks (shapes sharing label and group_id are
    /// one object).
    #[arg(long)]
    pub instances: bool,
    /// Skip SegmentationClassVisualization/ (several times faster: decoding each photo for
    /// the overlay is most of the work).
    #[arg(long)]
    pub no_viz: bool,
    /// Stop at the first problem, including shapes that would be skipped.
    #[arg(long)]
    pub strict: bool,
    /// Write into a non-empty OUT, replacing the dataset in it.
    #[arg(long)]
    pub force: bool,
}

/// What unknown labels become.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Unknown {
    /// Refuse, naming every unknown label (import-voc: mask value) and its files.
    Error,
    /// Background (0).
    Background,
    /// Ignore (255).
    Ignore,
}

impl Unknown {
    fn policy(self) -> UnknownPolicy {
        match self {
            Unknown::Error => UnknownPolicy::Error,
            Unknown::Background => UnknownPolicy::Background,
            Unknown::Ignore => UnknownPolicy::Ignore,
        }
    }
}

/// `--labels FILE` or `--labels a,b,c`; none: the command's default.
fn label_spec(labels: Option<String>) -> anyhow::Result<LabelSpec> {
    Ok(match labels {
        None => LabelSpec::Collect,
        Some(s) if std::path::Path::new(&s).is_file() => LabelSpec::File(s.into()),
        Some(s) if s.contains(',') => LabelSpec::List(s.split(',').map(String::from).collect()),
        Some(s) => bail!(
            "--labels {s:?}: no such file (for an inline list, separate names with commas: _background_,cat,dog)"
        ),
    })
}

/// Mask encoding.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Palette PNG with the VOC colour map.
    P,
    /// 8-bit grayscale PNG of class indices.
    L,
}

/// Run `segkit convert`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let opts = ConvertOptions {
        labels: label_spec(a.labels)?,
        unknown: a.unknown.policy(),
        aliases: Aliases::parse(&a.alias).map_err(anyhow::Error::msg)?,
        encoding: match a.mode {
            Mode::P => MaskEncoding::Palette,
            Mode::L => MaskEncoding::Gray,
        },
        instances: a.instances,
        visualization: !a.no_viz,
        strict: a.strict,
        force: a.force,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let total = convert::find_annotations(&a.input, &a.out)
        .map(|f| f.len())
        .unwrap_or(0);
    let bar = segkit_labelme::progress::bar(total as u64, "converting");
    let summary = convert::convert(&a.input, &a.out, &opts, &|| bar.inc(1));
    bar.finish_and_clear();
    let summary = summary?;
    let skipped = match summary.warnings.len() {
        0 => String::new(),
        n => format!("; {n} shapes skipped"),
    };
    let failed = format!(
        "{} of {} annotation files failed (listed above); the others were converted",
        summary.errors.len(),
        summary.errors.len() + summary.converted
    );
    finish(&summary, &skipped, &failed)
}

/// Import image/mask folder pairs (masks as grayscale values) into a dataset folder.
///
/// Pairs IMAGES/<name>.* with MASKS/<name>.* and maps mask values to classes, either with
/// an explicit table (--values) or a threshold (--threshold, --invert for a dark class).
/// Writes the same dataset folder as `segkit convert` (P-mode masks, dataset.json).
///
/// Example:
///   segkit import-masks Medical_Datasets/Images Medical_Datasets/Labels ds --values 0=membrane,255=_background_
///   segkit import-masks Images Labels ds --threshold 128 --invert --class membrane
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// Folder of images.
    pub images: PathBuf,
    /// Folder of masks with the same file names (extensions may differ).
    pub masks: PathBuf,
    /// Output dataset folder (new or empty).
    pub out: PathBuf,
    /// Value table VALUE=CLASS,...; _background_ is class 0, __ignore__ is 255.
    #[arg(long, conflicts_with = "threshold")]
    pub values: Option<String>,
    /// Pixels >= this value are the class (below it with --invert).
    #[arg(long)]
    pub threshold: Option<u8>,
    /// With --threshold: the class is the dark side.
    #[arg(long, requires = "threshold")]
    pub invert: bool,
    /// With --threshold: the class name.
    #[arg(long, default_value = "foreground")]
    pub class: String,
}

/// Run `segkit import-masks`.
pub fn import_masks(a: ImportArgs) -> anyhow::Result<()> {
    use segkit_labelme::import::{self, ValueMapping};
    let mapping = match (a.values, a.threshold) {
        (Some(v), _) => ValueMapping::parse_table(&v).map_err(anyhow::Error::msg)?,
        (None, Some(t)) => ValueMapping::Threshold {
            threshold: t,
            invert: a.invert,
            name: a.class,
        },
        (None, None) => bail!("give --values VALUE=CLASS,... or --threshold T"),
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let bar = segkit_labelme::progress::bar(0, "importing");
    let summary = import::import_masks(&a.images, &a.masks, &a.out, &mapping, &command, &|| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    let summary = summary?;
    let failed = format!(
        "{} pairs failed (listed above); the others were imported",
        summary.errors.len()
    );
    finish(&summary, "", &failed)
}

/// Import an existing VOC segmentation folder (P- or L-mode masks) into a dataset folder.
///
/// VOCDIR is laid out as labelme2voc.py, the PASCAL VOC devkit and most training
/// repositories write it: JPEGImages/<name>.jpg and SegmentationClass/<name>.png, whose
/// pixel values are class indices (palette or grayscale PNG; 255 = ignore). Class names come
/// from VOCDIR/class_names.txt (line k = class k) or --labels. The lists in
/// ImageSets/Segmentation/ (train.txt, val.txt, trainval.txt, ...) are kept as the dataset's
/// splits; without trainval.txt, every imported image is in trainval. Images are copied as
/// they are (no EXIF rotation: VOC tools read the stored pixels); images without a mask are
/// left out. A mask value that is no class makes that file fail, naming the values, unless
/// --unknown says what they become.
///
/// Object masks (SegmentationObject/<name>.png: object id per pixel, 0 = none, 255 =
/// boundary, as labelme2voc.py and VOC write them) are kept with the same ids, and that
/// image's instances in dataset.json are its objects: class, pixel count and box of each
/// id. An object's class is the class under it in SegmentationClass; an object over
/// several classes takes the majority one, with a warning naming file and object. An
/// object mask of another size than its class mask makes that image fail. Images without
/// an object mask get the connected components of their class mask as instances.
///
/// This is its own command rather than an option of import-masks: a VOC folder brings its
/// class indices, names and splits with it, while import-masks maps arbitrary gray values
/// of loose image/mask folders to classes.
///
/// Example:
///   segkit import-voc data_dataset_voc/ ds
///   segkit import-voc VOCdevkit/VOC2012 voc12 --labels voc_classes.txt --unknown ignore
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ImportVocArgs {
    /// The VOC folder (with JPEGImages/ and SegmentationClass/, optionally SegmentationObject/).
    #[arg(value_name = "VOCDIR")]
    pub voc: PathBuf,
    /// Output dataset folder (must be new or empty).
    pub out: PathBuf,
    /// Class names in id order, if VOCDIR has no class_names.txt: a file (one a line; a
    /// labelme2voc labels.txt works) or names separated by commas (_background_ first).
    #[arg(long, value_name = "FILE|A,B,...")]
    pub labels: Option<String>,
    /// What mask values beyond the class list become (default: that file fails).
    #[arg(long, value_enum, default_value_t = Unknown::Error)]
    pub unknown: Unknown,
    /// Mask encoding of the output: p = palette PNG (VOC colours), l = grayscale indices.
    #[arg(long, value_enum, default_value_t = Mode::P)]
    pub mode: Mode,
}

/// Run `segkit import-voc`.
pub fn import_voc(a: ImportVocArgs) -> anyhow::Result<()> {
    let opts = VocOptions {
        labels: label_spec(a.labels)?,
        unknown: a.unknown.policy(),
        encoding: match a.mode {
            Mode::P => MaskEncoding::Palette,
            Mode::L => MaskEncoding::Gray,
        },
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let bar = segkit_labelme::progress::bar(0, "importing");
    let summary = voc::import_voc(&a.voc, &a.out, &opts, &|| bar.inc(1));
    bar.finish_and_clear();
    let summary = summary?;
    let failed = format!(
        "{} problem(s) (listed above); the other images were imported",
        summary.errors.len()
    );
    finish(&summary, "", &failed)
}

/// The end of every import: warnings and per-file errors on stderr, the one-line summary
/// (`extra` appended), and a non-zero exit with `failed` when any file failed.
fn finish(summary: &convert::ConvertSummary, extra: &str, failed: &str) -> anyhow::Result<()> {
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    for e in &summary.errors {
        eprintln!("error: {e}");
    }
    println!(
        "wrote {} masks ({} classes: {}) to {}{extra}",
        summary.converted,
        summary.classes.len(),
        summary.classes.join(", "),
        summary.out.display()
    );
    if !summary.errors.is_empty() {
        bail!("{failed}");
    }
    Ok(())
}
