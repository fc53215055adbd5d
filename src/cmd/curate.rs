//! `segkit stats|filter|remap|split|crop`: dataset curation (crate `segkit_labelme::curate`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use segkit_labelme::curate::{crop, filter, remap, split, stats, Derived};
use segkit_labelme::dataset::Dataset;

/// The command line as typed, for `history` (args with spaces or shell characters quoted).
fn command_line() -> String {
    let mut parts = vec!["segkit".to_string()];
    for a in std::env::args().skip(1) {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_alphanumeric() || "-_./=,:+@%".contains(c));
        parts.push(if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        });
    }
    parts.join(" ")
}

fn open(path: &PathBuf) -> anyhow::Result<Dataset> {
    Ok(Dataset::open(path)?)
}

/// `NAME=VALUE` pairs.
fn pair(s: &str) -> Result<(String, String), String> {
    let (a, b) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    Ok((a.trim().to_string(), b.trim().to_string()))
}

fn name_px(s: &str) -> Result<(String, u64), String> {
    let (a, b) = pair(s)?;
    Ok((
        a,
        b.parse()
            .map_err(|_| format!("{b:?} is not a pixel count"))?,
    ))
}

fn value_pair(s: &str) -> Result<(u8, u8), String> {
    let (a, b) = pair(s)?;
    let p = |x: &str| {
        x.parse::<u8>()
            .map_err(|_| format!("{x:?} is not a mask value 0..255"))
    };
    Ok((p(&a)?, p(&b)?))
}

fn merge(s: &str) -> Result<(Vec<String>, String), String> {
    let (a, b) = pair(s)?;
    let from: Vec<String> = a
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect();
    if from.is_empty() || b.is_empty() {
        return Err(format!("expected \"a,b=c\", got {s:?}"));
    }
    Ok((from, b))
}

/// Print skipped images and fail if there were any (the rest was written).
fn finish(d: &Derived, summary: String) -> anyhow::Result<()> {
    for e in &d.failed {
        eprintln!("skipped: {e}");
    }
    println!("{summary}");
    if !d.failed.is_empty() {
        bail!(
            "{} of {} images could not be processed (listed above); the others are in {}",
            d.failed.len(),
            d.images_in,
            d.out.display()
        );
    }
    Ok(())
}

/// Per-class pixel share, instance sizes, suggested class weights and data traps.
///
/// Reads every mask (not just the manifest): per class the share of pixels, images and
/// instances (the objects of SegmentationObject/ for an image that has one, else 8-connected
/// components) with area min/median/p95/max, the same per view,
/// suggested loss weights (median-frequency balancing and inverse square root of frequency,
/// computed on train.txt when it exists), and warnings for classic traps (0/255 binary masks,
/// RGB masks, values past the class list, classes with < 3 instances, images without
/// foreground, image/mask size mismatch), each with the command that fixes it.
///
/// Example:
///   segkit stats data/voc
///   segkit stats data/voc --json > stats.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct StatsArgs {
    /// Dataset folder (with dataset.json).
    pub dataset: PathBuf,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

fn area(a: Option<u64>) -> String {
    a.map_or("-".into(), |v| v.to_string())
}

fn print_classes(classes: &[stats::ClassStats], indent: &str) {
    let w = classes
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{indent}{:<w$} {:>12} {:>7} {:>6} {:>9}  instance area min/median/p95/max",
        "class", "pixels", "share", "images", "instances"
    );
    for c in classes {
        let pad = w - c.name.chars().count() + c.name.len();
        println!(
            "{indent}{:<pad$} {:>12} {:>6.2}% {:>6} {:>9}  {}/{}/{}/{}",
            c.name,
            c.pixels,
            c.pixel_share * 100.0,
            c.images,
            c.instances,
            area(c.area_min),
            area(c.area_median),
            area(c.area_p95),
            area(c.area_max)
        );
    }
}

fn weights_line(w: &[f64]) -> String {
    let v: Vec<String> = w.iter().map(|x| format!("{x}")).collect();
    format!("class_weights = [{}]", v.join(", "))
}

/// Run `segkit stats`.
pub fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let ds = open(&a.dataset)?;
    let pb = segkit_labelme::progress::bar(ds.manifest.images.len() as u64, "reading");
    let r = stats::stats(&ds, &|| pb.inc(1))?;
    pb.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let total: u64 = r.classes.iter().map(|c| c.pixels).sum::<u64>() + r.ignore_pixels;
    println!(
        "{}: {} images ({} read), {} classes, ignore {:.2}% of pixels",
        r.dataset,
        r.images,
        r.images_read,
        r.classes.len(),
        if total > 0 {
            r.ignore_pixels as f64 * 100.0 / total as f64
        } else {
            0.0
        }
    );
    print_classes(&r.classes, "");
    for (v, s) in &r.views {
        println!("\nview {v}: {} images", s.images);
        print_classes(&s.classes, "  ");
    }
    println!(
        "\nsuggested class weights (on {}), paste under [loss] in the training config:",
        r.weights.computed_on
    );
    println!(
        "  median-frequency: {}",
        weights_line(&r.weights.median_frequency)
    );
    println!(
        "  inverse-sqrt:     {}",
        weights_line(&r.weights.inverse_sqrt)
    );
    if !r.warnings.is_empty() {
        println!("\nwarnings:");
        for w in &r.warnings {
            println!("  ! {}: {}", w.kind, w.message);
            for f in &w.files {
                println!("      {f}");
            }
            println!("    fix: {}", w.fix);
        }
    }
    for e in &r.errors {
        eprintln!("problem: {e}");
    }
    println!(
        "\nstats of {} images: {} classes, {} warnings, {} file problems",
        r.images_read,
        r.classes.len(),
        r.warnings.len(),
        r.errors.len()
    );
    Ok(())
}

/// What removed pixels become.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Action {
    /// Background (0).
    Background,
    /// Ignore (255): the loss skips them.
    Ignore,
}

/// Remove label instances smaller than an area threshold; writes a new dataset.
///
/// An instance is an 8-connected component of one class; in an image with an object mask
/// (SegmentationObject/), one object. Instances below --min-area pixels
/// (or the --per-class threshold) become background, or ignore (255) with --action ignore;
/// every other instance is left exactly as it was. --drop-empty leaves out images with no
/// foreground left. Prints what was removed per class.
///
/// Example:
///   segkit filter data/voc data/voc-min50 --min-area 50 --per-class scratch=20
///   segkit filter data/voc data/voc-clean --min-area 30 --action ignore --drop-empty
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct FilterArgs {
    /// Dataset folder to read (never modified).
    pub dataset: PathBuf,
    /// Folder to write (must not exist or be empty).
    pub out: PathBuf,
    /// Instances with fewer pixels than this are removed.
    #[arg(long, default_value_t = 0, value_name = "PX")]
    pub min_area: u64,
    /// Per-class threshold, NAME=PX (repeatable), overriding --min-area.
    #[arg(long, value_name = "NAME=PX", value_parser = name_px)]
    pub per_class: Vec<(String, u64)>,
    /// What removed instances become.
    #[arg(long, value_enum, default_value = "background")]
    pub action: Action,
    /// Leave out images with no foreground left.
    #[arg(long)]
    pub drop_empty: bool,
}

/// Run `segkit filter`.
pub fn run_filter(a: FilterArgs) -> anyhow::Result<()> {
    let ds = open(&a.dataset)?;
    let opts = filter::FilterOptions {
        min_area: a.min_area,
        per_class: a.per_class,
        action: match a.action {
            Action::Background => filter::FilterAction::Background,
            Action::Ignore => filter::FilterAction::Ignore,
        },
        drop_empty: a.drop_empty,
    };
    let pb = segkit_labelme::progress::bar(ds.manifest.images.len() as u64, "filtering");
    let r = filter::filter(&ds, &a.out, &opts, &command_line(), &|| pb.inc(1))?;
    pb.finish_and_clear();
    for (c, rm) in &r.removed {
        let name = ds
            .manifest
            .classes
            .get(*c as usize)
            .map_or(c.to_string(), |x| x.name.clone());
        println!(
            "{name}: removed {} instances ({} px)",
            rm.instances, rm.pixels
        );
    }
    if !r.dropped.is_empty() {
        println!("dropped {} images left without foreground", r.dropped.len());
    }
    let n: u64 = r.removed.values().map(|x| x.instances).sum();
    finish(
        &r.derived,
        format!(
            "removed {n} instances; wrote {} masks to {}",
            r.derived.images_out,
            r.derived.out.display()
        ),
    )
}

/// Where dropped classes go.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DropTo {
    /// Background (0).
    Background,
    /// Ignore (255).
    Ignore,
}

/// Merge, drop and renumber classes, or make masks binary; writes a new dataset.
///
/// Class ids are renumbered densely (0..N-1) after the change; class_names.txt and the VOC
/// palette follow. --value changes raw mask values first (e.g. 255=1 for binary masks saved
/// as 0/255, which every trainer reads as "ignore"). Object masks keep their ids; object
/// pixels whose class becomes background or ignore get 0.
///
/// Example:
///   segkit remap data/voc data/voc-lines --map "scratch,crack=line_defect" --drop dent
///   segkit remap data/voc data/voc-binary --binary --name defect
///   segkit remap data/raw data/fixed --value 255=1
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct RemapArgs {
    /// Dataset folder to read (never modified).
    pub dataset: PathBuf,
    /// Folder to write (must not exist or be empty).
    pub out: PathBuf,
    /// Merge classes: "a,b=c" makes a and b into c (new or existing name). Repeatable.
    #[arg(long, value_name = "A,B=C", value_parser = merge)]
    pub map: Vec<(Vec<String>, String)>,
    /// Remove a class (to background unless --drop-to ignore). Repeatable.
    #[arg(long, value_name = "CLASS")]
    pub drop: Vec<String>,
    /// Where dropped classes go.
    #[arg(long, value_enum, default_value = "background")]
    pub drop_to: DropTo,
    /// Every foreground class becomes one class (see --name).
    #[arg(long)]
    pub binary: bool,
    /// Name of the --binary class.
    #[arg(long, default_value = "defect", requires = "binary")]
    pub name: String,
    /// Change a raw mask value before anything else, FROM=TO (repeatable).
    #[arg(long, value_name = "FROM=TO", value_parser = value_pair)]
    pub value: Vec<(u8, u8)>,
}

/// Run `segkit remap`.
pub fn run_remap(a: RemapArgs) -> anyhow::Result<()> {
    let ds = open(&a.dataset)?;
    let opts = remap::RemapOptions {
        values: a.value,
        maps: a.map,
        drop: a.drop,
        drop_to: match a.drop_to {
            DropTo::Background => remap::DropTo::Background,
            DropTo::Ignore => remap::DropTo::Ignore,
        },
        binary: a.binary.then_some(a.name),
    };
    let pb = segkit_labelme::progress::bar(ds.manifest.images.len() as u64, "remapping");
    let r = remap::remap(&ds, &a.out, &opts, &command_line(), &|| pb.inc(1))?;
    pb.finish_and_clear();
    for (from, to) in &r.mapping {
        println!("{from} -> {to}");
    }
    let names: Vec<&str> = r.classes.iter().map(|c| c.name.as_str()).collect();
    finish(
        &r.derived,
        format!(
            "wrote {} masks with {} classes ({}) to {}",
            r.derived.images_out,
            names.len(),
            names.join(", "),
            r.derived.out.display()
        ),
    )
}

/// Tag views and write train/val or k-fold split lists, in place.
///
/// Views: --view NAME='GLOB' matches the glob against each image's source file name (or
/// source path); --view-map CSV takes `name,view` rows (name = stem, source file name or
/// source path); --view-from-flags takes labelme flags set to true. Images get `views` tags
/// in dataset.json and ImageSets/Segmentation/<view>.txt. --only VIEW OUT then writes the
/// images of one view as a new dataset.
///
/// Train/val: --val 0.2 writes train.txt, val.txt and trainval.txt (--val-view VIEW instead
/// takes the images tagged VIEW as a fixed validation set); --folds K writes
/// fold{k}_train.txt / fold{k}_val.txt. Splits are stratified (every class present in at
/// least two source photos is in both train and val) and grouped by source photo, so crops
/// and tiles of one photo never straddle train and val. Deterministic by --seed. Only split
/// lists and view tags are written; images and masks are untouched.
///
/// Example:
///   segkit split data/voc --val 0.2 --seed 0
///   segkit split data/voc --view front='*_front*' --view back='*_back*' --only front data/front
///   segkit split data/voc --folds 5
///   segkit split data/em --view heldout='2[4-9].png' --val-view heldout
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct SplitArgs {
    /// Dataset folder (split lists and view tags are written into it).
    pub dataset: PathBuf,
    /// Share of images for validation.
    #[arg(long, value_name = "FRACTION")]
    pub val: Option<f64>,
    /// Validate on the images tagged VIEW (e.g. by --view VIEW='GLOB'), train on the rest.
    #[arg(long, value_name = "VIEW", conflicts_with = "val")]
    pub val_view: Option<String>,
    /// Number of cross-validation folds.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// View tag by glob on the source file name, NAME='GLOB' (repeatable).
    #[arg(long, value_name = "NAME=GLOB", value_parser = pair)]
    pub view: Vec<(String, String)>,
    /// CSV of `name,view` rows.
    #[arg(long, value_name = "CSV")]
    pub view_map: Option<PathBuf>,
    /// Views from labelme flags that are true.
    #[arg(long)]
    pub view_from_flags: bool,
    /// Also write the images of VIEW as a new dataset at OUT.
    #[arg(long, num_args = 2, value_names = ["VIEW", "OUT"])]
    pub only: Vec<String>,
}

/// Run `segkit split`.
pub fn run_split(a: SplitArgs) -> anyhow::Result<()> {
    let mut ds = open(&a.dataset)?;
    let opts = split::SplitOptions {
        views: split::ViewRules {
            globs: a.view,
            map_file: a.view_map,
            from_flags: a.view_from_flags,
        },
        val: a.val,
        val_view: a.val_view,
        folds: a.folds,
        seed: a.seed,
    };
    let splits = opts.val.is_some() || opts.val_view.is_some() || opts.folds.is_some();
    if opts.views.is_empty() && !splits && a.only.is_empty() {
        bail!("nothing to do: give --val, --val-view, --folds, --view/--view-map/--view-from-flags or --only");
    }
    let cmd = command_line();
    if !opts.views.is_empty() || splits {
        let r = split::split(&mut ds, &opts, &cmd)?;
        for (v, n) in &r.views {
            println!("view {v}: {n} images");
        }
        if !r.views.is_empty() || r.untagged > 0 {
            println!("untagged: {} images", r.untagged);
        }
        for row in &r.unmatched_map_rows {
            eprintln!("view map row matched no image: {row}");
        }
        if !r.single_group_classes.is_empty() {
            eprintln!(
                "warning: class(es) {} occur in one source photo only, so they cannot be in both train and val",
                r.single_group_classes.join(", ")
            );
        }
        for (k, (t, v)) in r.folds.iter().enumerate() {
            println!("fold{k}: {t} train, {v} val");
        }
        let tv = r
            .train_val
            .map(|(t, v)| format!(": {t} train, {v} val"))
            .unwrap_or_default();
        println!(
            "wrote {} split lists to {} ({} source photos{tv})",
            r.lists.len(),
            ds.root.join(segkit_labelme::dataset::SPLITS_DIR).display(),
            r.groups
        );
    }
    if let [view, out] = a.only.as_slice() {
        let pb = segkit_labelme::progress::bar(ds.manifest.images.len() as u64, "copying");
        let d = split::only(&ds, view, out.as_ref(), &cmd, &|| pb.inc(1))?;
        pb.finish_and_clear();
        finish(
            &d,
            format!(
                "wrote {} images of view {view} to {}",
                d.images_out,
                d.out.display()
            ),
        )?;
    }
    Ok(())
}

/// Crop image encoding.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Lossless PNG.
    Png,
    /// JPEG at --jpeg-quality (default: the source's own quality).
    Jpeg,
}

/// Crops around defects, or overlapping tiles; writes a new dataset.
///
/// --around-defects: one --size window per defect (instances within --merge-within pixels
/// share one), the defect and --context pixels around it inside, shifted by up to --jitter
/// (seeded), clamped inside the image; a defect larger than the window gets a larger window.
/// --tile: the whole image cut into --tile squares overlapping by --overlap, the last row and
/// column flush with the image edge; every tile with foreground is kept and a seeded
/// --keep-empty share of background-only tiles.
/// Images smaller than the window are padded: black in the image, 255 (ignore) in the class
/// and object masks.
/// Each crop records its photo's stem and its offset in dataset.json ("crop") and keeps the
/// photo's `source`, so `split` keeps all crops of one photo on one side.
/// Crops are written as lossless PNG unless --format jpeg.
///
/// Example:
///   segkit crop data/voc data/voc-crops --around-defects --size 512 --context 64 --jitter 32
///   segkit crop data/voc data/voc-tiles --tile 512 --overlap 0.25 --keep-empty 0.1
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["around_defects", "tile"])))]
pub struct CropArgs {
    /// Dataset folder to read (never modified).
    pub dataset: PathBuf,
    /// Folder to write (must not exist or be empty).
    pub out: PathBuf,
    /// One crop per defect.
    #[arg(long)]
    pub around_defects: bool,
    /// Crop window side in pixels (--around-defects).
    #[arg(long, default_value_t = 512, value_name = "PX")]
    pub size: u32,
    /// Margin kept around each defect (--around-defects).
    #[arg(long, default_value_t = 64, value_name = "PX")]
    pub context: u32,
    /// Random shift of each window, ± pixels (--around-defects).
    #[arg(long, default_value_t = 0, value_name = "PX")]
    pub jitter: u32,
    /// Defects closer than this share one crop (--around-defects).
    #[arg(long, default_value_t = 32, value_name = "PX")]
    pub merge_within: u32,
    /// Cut the whole image into tiles of this side.
    #[arg(long, value_name = "PX")]
    pub tile: Option<u32>,
    /// Overlap between neighbouring tiles (0 ≤ overlap < 1).
    #[arg(long, default_value_t = 0.25)]
    pub overlap: f64,
    /// Share of background-only tiles kept.
    #[arg(long, default_value_t = 0.1, value_name = "FRACTION")]
    pub keep_empty: f64,
    /// Crop image format.
    #[arg(long, value_enum, default_value = "png")]
    pub format: Format,
    /// JPEG quality with --format jpeg (default: the source's own, or 95).
    #[arg(long, value_name = "1-100", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: Option<u8>,
    /// Seed of jitter and of the background tiles kept.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Run `segkit crop`.
pub fn run_crop(a: CropArgs) -> anyhow::Result<()> {
    let ds = open(&a.dataset)?;
    let mode = match a.tile {
        Some(tile) => crop::CropMode::Tiles {
            tile,
            overlap: a.overlap,
            keep_empty: a.keep_empty,
        },
        None => crop::CropMode::AroundDefects(crop::DefectCrop {
            size: a.size,
            context: a.context,
            jitter: a.jitter,
            merge_within: a.merge_within,
        }),
    };
    let codec = match a.format {
        Format::Png => crop::ImageCodec::Png,
        Format::Jpeg => crop::ImageCodec::Jpeg(a.jpeg_quality),
    };
    let opts = crop::CropOptions {
        mode,
        codec,
        seed: a.seed,
    };
    let pb = segkit_labelme::progress::bar(ds.manifest.images.len() as u64, "cropping");
    let r = crop::crop(&ds, &a.out, &opts, &command_line(), &|| pb.inc(1))
        .with_context(|| format!("cropping {}", a.dataset.display()))?;
    pb.finish_and_clear();
    let c = r.counts;
    let n_in = r.derived.images_in - r.derived.failed.len();
    let out = r.derived.out.display();
    let summary = if a.tile.is_some() {
        format!(
            "wrote {} tiles ({} padded, {} background-only tiles left out) from {n_in} images to {out}",
            c.written, c.padded, c.empty_skipped
        )
    } else {
        format!(
            "wrote {} defect crops ({} padded) from {n_in} images to {out}",
            c.written, c.padded
        )
    };
    finish(&r.derived, summary)
}
