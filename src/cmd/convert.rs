//! `segkit convert`: labelme JSON folder → dataset folder (class masks pixel-identical to
//! labelme 7.9.1 + Pillow 13.0.0).

use std::path::PathBuf;

use anyhow::bail;
use segkit_labelme::convert::{self, ConvertOptions, LabelSpec};
use segkit_labelme::dataset::MaskEncoding;
use segkit_labelme::labels::{Aliases, UnknownPolicy};

/// Convert labelme annotations into a VOC-style dataset folder.
///
/// Reads every labelme .json under INPUT (any labelme version, 3.x to 7.x; the image from
/// imageData or from imagePath, Windows paths included) and writes OUT: JPEGImages/ (the
/// source JPEG/PNG bytes, or a lossless PNG), SegmentationClass/ (8-bit masks, VOC palette,
/// 255 = __ignore__), SegmentationClassVisualization/, ImageSets/Segmentation/trainval.txt,
/// class_names.txt and dataset.json (per-image class pixel counts and defect instances).
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
    /// Skip SegmentationClassVisualization/ (faster).
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
    /// Refuse, listing every unknown label with its files.
    Error,
    /// Background (0).
    Background,
    /// Ignore (255).
    Ignore,
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
    let labels = match a.labels {
        None => LabelSpec::Collect,
        Some(s) if std::path::Path::new(&s).is_file() => LabelSpec::File(s.into()),
        Some(s) if s.contains(',') => LabelSpec::List(s.split(',').map(String::from).collect()),
        Some(s) => bail!(
            "--labels {s:?}: no such file (for an inline list, separate names with commas: _background_,cat,dog)"
        ),
    };
    let opts = ConvertOptions {
        labels,
        unknown: match a.unknown {
            Unknown::Error => UnknownPolicy::Error,
            Unknown::Background => UnknownPolicy::Background,
            Unknown::Ignore => UnknownPolicy::Ignore,
        },
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
    let bar = crate::progress::bar(total as u64, "converting");
    let summary = convert::convert(&a.input, &a.out, &opts, &|| bar.inc(1));
    bar.finish_and_clear();
    let summary = summary?;
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    for e in &summary.errors {
        eprintln!("error: {e}");
    }
    println!(
        "wrote {} masks ({} classes: {}) to {}{}",
        summary.converted,
        summary.classes.len(),
        summary.classes.join(", "),
        summary.out.display(),
        if summary.warnings.is_empty() {
            String::new()
        } else {
            format!("; {} shapes skipped", summary.warnings.len())
        }
    );
    if !summary.errors.is_empty() {
        bail!(
            "{} of {} annotation files failed (listed above); the others were converted",
            summary.errors.len(),
            summary.errors.len() + summary.converted
        );
    }
    Ok(())
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
    let bar = crate::progress::bar(0, "importing");
    let summary = import::import_masks(&a.images, &a.masks, &a.out, &mapping, &command, &|| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    let summary = summary?;
    for e in &summary.errors {
        eprintln!("error: {e}");
    }
    println!(
        "wrote {} masks ({} classes: {}) to {}",
        summary.converted,
        summary.classes.len(),
        summary.classes.join(", "),
        summary.out.display()
    );
    if !summary.errors.is_empty() {
        bail!(
            "{} pairs failed (listed above); the others were imported",
            summary.errors.len()
        );
    }
    Ok(())
}
