//! `segkit synth`: write the synthetic labelme demo dataset.

use std::path::PathBuf;

use anyhow::{bail, Context};
use segkit_labelme::synth::{self, SynthConfig};

/// Generate a synthetic labelme dataset of textured parts with small defects.
///
/// Writes one labelme JSON per image (labelme 5.x schema, float coordinates; half embed
/// `imageData`, half only point to the image file), the JPEG images and `labels.txt`
/// (`__ignore__`, `_background_`, then the classes). Images are front, back or side views
/// (`part007_side.jpg`, and the labelme `flags`). Defects cover well under 1% of pixels,
/// crack is rare, about 15% of images have none, and a few glare regions are `__ignore__`.
/// The same seed gives byte-identical files.
///
/// Example:
///   segkit synth parts --images 24 --size 1024x1024 --seed 7
///   segkit synth parts2k --size 2000x2000 --classes 划痕,凹坑,污渍,裂纹
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output folder (must be new or empty unless --force).
    pub out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 24)]
    pub images: usize,
    /// Image size, WxH.
    #[arg(long, default_value = "1024x1024", value_parser = synth::parse_size)]
    pub size: (u32, u32),
    /// Defect class names, comma-separated; drawn in turn as scratch (line), dent (circle),
    /// stain (polygon), crack (thin polygon).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "scratch,dent,stain,crack"
    )]
    pub classes: Vec<String>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write into a non-empty folder.
    #[arg(long)]
    pub force: bool,
}

/// Run `segkit synth`.
pub fn run(a: Args) -> anyhow::Result<()> {
    super::ensure_empty_output(&a.out, a.force)?;
    let config = SynthConfig {
        images: a.images,
        width: a.size.0,
        height: a.size.1,
        classes: a.classes.iter().map(|c| c.trim().to_string()).collect(),
        seed: a.seed,
    };
    if config
        .classes
        .iter()
        .any(|c| c.is_empty() || c.starts_with('_'))
    {
        bail!("class names must be non-empty and must not start with '_' (reserved for _background_ and __ignore__)");
    }
    let bar = segkit_labelme::progress::bar(config.images as u64, "synth");
    let summary = synth::generate(&config, &a.out, &|| bar.inc(1))
        .with_context(|| format!("writing {}", a.out.display()))?;
    bar.finish_and_clear();
    let per_class: Vec<String> = summary
        .shapes_per_class
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "wrote {} labelme annotations ({}x{}, {} with defects: {}; {} ignore regions; defect share {:.3}%) to {}",
        summary.images,
        config.width,
        config.height,
        summary.with_defects,
        per_class.join(", "),
        summary.ignore_shapes,
        summary.defect_share * 100.0,
        a.out.display()
    );
    Ok(())
}
