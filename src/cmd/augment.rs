//! `segkit augment`: offline augmentation into a new dataset, or a preview grid.

use std::path::PathBuf;

use anyhow::{bail, Context};
use segkit_augment::{
    augment_dataset, preview_grid, selected_stems, AugmentOptions, Pipeline, PreviewOptions,
};
use segkit_labelme::dataset::Dataset;

/// Augment a dataset offline (image and mask together), or preview a pipeline.
///
/// Writes a new dataset folder: the original images (byte for byte, unless
/// --no-originals) plus --copies augmented copies `<stem>_aug<k>` of each image of the
/// split (default: train when it exists, else all). Each copy is listed in every split
/// that lists its source; `dataset.json` records where it came from and the command in its
/// history, and the pipeline is saved beside it as `augment.toml`/`augment.json`.
/// Geometric transforms move the mask with the image (nearest-neighbour); padded pixels
/// get the ignore index 255. An image with an object mask (SegmentationObject/) gives copies
/// with one, moved by the same geometric draw (nearest neighbour; photometric transforms skip
/// it; constant padding 255 where the class mask's is 255, else 0); their instances are its
/// objects. Copy k of the image at manifest position i uses the random
/// stream (seed, k, i): the same seed gives the same bytes with any thread count.
///
/// Pipelines are TOML or JSON with albumentations' names and parameters (an
/// `A.save(...)` JSON export loads as is); without --pipeline the shipped default for
/// defect datasets is used (segkit_augment docs: flips, quarter turns, mild affine with
/// ignored padding, brightness/contrast, light noise or blur).
///
/// With --preview, writes a PNG grid of --samples augmented images with their masks
/// overlaid instead, showing what copies 0, 1, ... of each image would look like.
///
/// Example:
///   segkit augment data/voc data/voc-aug --pipeline aug.toml --copies 4 --seed 0
///   segkit augment data/voc --pipeline aug.toml --preview grid.png --samples 16
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset folder to read (never modified).
    pub dataset: PathBuf,
    /// New dataset folder to write (must be new or empty); not with --preview.
    pub out: Option<PathBuf>,
    /// Pipeline file: TOML, or JSON (.json) including albumentations exports.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Augmented copies per image.
    #[arg(long, default_value_t = 4)]
    pub copies: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Split whose images are augmented (default: train when it exists, else all images).
    #[arg(long)]
    pub split: Option<String>,
    /// Write only the augmented copies, not the originals.
    #[arg(long)]
    pub no_originals: bool,
    /// Write a PNG grid of augmented samples to this file instead of a dataset.
    #[arg(long, conflicts_with = "out")]
    pub preview: Option<PathBuf>,
    /// Number of samples in the preview grid.
    #[arg(long, default_value_t = 16)]
    pub samples: usize,
    /// Side of one preview tile, in pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: u32,
    /// Worker threads (default: all cores); the output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Run `segkit augment`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let (pipeline, pipeline_file) = match &a.pipeline {
        Some(p) => {
            let pipeline = Pipeline::from_file(p)?;
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let is_json = p
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let name = if is_json {
                "augment.json"
            } else {
                "augment.toml"
            };
            (pipeline, (name.to_string(), text))
        }
        None => (
            Pipeline::default_for_defects(),
            (
                "augment.toml".to_string(),
                segkit_augment::DEFAULT_DEFECTS_TOML.to_string(),
            ),
        ),
    };
    let ds = Dataset::open(&a.dataset)?;

    if let Some(grid) = &a.preview {
        let opts = PreviewOptions {
            samples: a.samples,
            seed: a.seed,
            tile: a.tile,
            split: a.split.clone(),
        };
        let (w, h) = preview_grid(&ds, &pipeline, &opts, grid)?;
        println!(
            "wrote a {w}x{h} preview of {} augmented samples to {}",
            a.samples,
            grid.display()
        );
        return Ok(());
    }
    let Some(out) = &a.out else {
        bail!("give an output folder (segkit augment DATASET OUT ...) or --preview grid.png");
    };
    if a.copies == 0 && a.no_originals {
        bail!("--copies 0 with --no-originals would write an empty dataset");
    }
    // "segkit augment ...", whatever path the binary was started by.
    let command = std::iter::once("segkit".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let opts = AugmentOptions {
        copies: a.copies,
        seed: a.seed,
        split: a.split.clone(),
        keep_originals: !a.no_originals,
        command,
        pipeline_file,
    };
    let threads = a.threads.unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let n = selected_stems(&ds, a.split.as_deref())?.len() as u64;
    let bar = segkit_labelme::progress::bar(n, "augmenting");
    let summary = pool.install(|| augment_dataset(&ds, out, &pipeline, &opts, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    for (stem, err) in &summary.failed {
        eprintln!("warning: {stem}: {err}");
    }
    println!(
        "wrote {} augmented and {} original images to {}",
        summary.augmented,
        summary.originals,
        out.display()
    );
    if !summary.failed.is_empty() {
        bail!(
            "{} image(s) could not be augmented (see the warnings above)",
            summary.failed.len()
        );
    }
    Ok(())
}
