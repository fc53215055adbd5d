//! `segkit train`, `segkit eval`, `segkit predict`: the trainer plugin's commands.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use segkit_trainer::apply::{self, Format, PredictOptions};
use segkit_trainer::config::parse_duration;
use segkit_trainer::{checkpoint, train::device, Event, StopReason, TrainOptions};

/// Train a segmentation model on a segkit dataset and write a run folder.
///
/// Every setting has a default chosen from the dataset (crop size from image and defect
/// sizes, class weights by median frequency, input normalization from the images); the
/// resolved values are written to RUN/config.toml. The run folder holds metrics.jsonl (one
/// line an epoch), checkpoints/best.safetensors (best foreground mean Dice on the val split,
/// by sliding window at full resolution), checkpoints/last.safetensors + last.state (resume),
/// predictions/ for the val images, confusion.json and log.txt. Labels are checked before
/// training: 0/255 masks, RGB masks and wrong class counts are refused with the cause.
///
/// Example:
///   segkit train data/parts-voc --out runs/default
///   segkit train data/parts-voc --out runs/sigmoid --set model.head=sigmoid --time-budget 15m
///   segkit train data/parts-voc --out runs/small --config small.toml --set optim.lr=3e-4 --epochs 30
///   segkit train --resume runs/default --epochs 80
///   segkit train data/parts-voc --out runs/vgg --set model.arch=unet-vgg16 --set model.pretrained=voc.safetensors --freeze-encoder-epochs 5
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// Dataset folder (segkit/VOC layout with dataset.json); not needed with --resume.
    #[arg(required_unless_present = "resume")]
    pub dataset: Option<PathBuf>,
    /// Run folder to write.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Partial config (TOML); missing keys get dataset-derived defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. --set optim.lr=3e-4 --set model.norm=batch (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Number of epochs (with --resume: the new total).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after the last epoch that fits in this time, e.g. 15m, 1h30m, 900s.
    #[arg(long, value_parser = parse_budget)]
    pub time_budget: Option<Duration>,
    /// Keep the pretrained encoder (model.pretrained) frozen for the first N epochs, then
    /// train it too (config key freeze_encoder_epochs).
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub freeze_encoder_epochs: Option<usize>,
    /// Continue the run in this folder from its last finished epoch.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["out", "dataset"])]
    pub resume: Option<PathBuf>,
    /// Stop cleanly after this many epochs of this invocation (as an interruption would).
    #[arg(long, hide = true)]
    pub stop_after_epochs: Option<usize>,
}

/// clap's parser for durations such as 15m, 1h30m, 900s.
pub(crate) fn parse_budget(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// A flag set by the first Ctrl-C, so training stops cleanly after the current step with
/// `checkpoints/last.*` of the last finished epoch intact; a second Ctrl-C exits at once.
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after this step (Ctrl-C again to quit now)");
    });
    if let Err(e) = installed {
        eprintln!(
            "warning: no Ctrl-C handler ({e}); a killed run still resumes from its last epoch"
        );
    }
    flag
}

/// Run `segkit train`.
pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    let resume = a.resume.is_some();
    let out = a
        .resume
        .clone()
        .or(a.out.clone())
        .expect("clap requires --out or --resume");
    let opts = TrainOptions {
        dataset: a.dataset.clone().unwrap_or_default(),
        out: out.clone(),
        config_file: a.config.clone(),
        set: a
            .set
            .iter()
            .cloned()
            .chain(
                a.freeze_encoder_epochs
                    .map(|n| format!("freeze_encoder_epochs={n}")),
            )
            .collect(),
        epochs: a.epochs,
        time_budget: a.time_budget,
        resume,
        stop: Some(interrupt_flag()),
        stop_after_epochs: a.stop_after_epochs,
    };
    let quiet = std::env::var_os("CI").is_some();
    let mut bar: Option<ProgressBar> = None;
    let outcome = segkit_trainer::train(&opts, &mut |e| match e {
        Event::Log(line) => match &bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        },
        Event::EpochStart {
            epoch,
            epochs,
            batches,
        } => {
            let b =
                ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{epoch}/{epochs}"));
            if quiet {
                b.set_draw_target(ProgressDrawTarget::hidden());
            }
            bar = Some(b);
        }
        Event::Step { batch, loss, lr } => {
            if let Some(b) = &bar {
                b.set_position(batch as u64);
                b.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
            }
        }
        Event::Validating { images } => {
            if let Some(b) = &bar {
                b.set_message(format!("validating {images} images"));
            }
        }
        Event::EpochEnd { .. } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
    });
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let outcome = outcome.with_context(|| format!("training into {}", out.display()))?;
    let why = match outcome.stop {
        StopReason::Finished => String::new(),
        StopReason::TimeBudget => " (time budget reached)".into(),
        StopReason::EarlyStopping => " (early stopping)".into(),
        StopReason::Interrupted => format!(
            " (stopped after epoch {}; continue with --resume)",
            outcome.epochs_done
        ),
    };
    match (outcome.best_epoch, outcome.best_dice_fg) {
        (Some(e), Some(d)) => println!(
            "run written to {}; best epoch {e} fg Dice {d:.4}{why}",
            outcome.run.display()
        ),
        (Some(e), None) => println!(
            "run written to {}; best epoch {e} (no foreground in val){why}",
            outcome.run.display()
        ),
        _ => println!(
            "run written to {}; no epoch finished{why}",
            outcome.run.display()
        ),
    }
    if outcome.stop == StopReason::Interrupted {
        return Err(crate::Interrupted.into());
    }
    Ok(())
}

/// Evaluate a checkpoint on a dataset split: metrics JSON (with the confusion matrix) on
/// stdout, or in --out.
///
/// Prediction is at full resolution by sliding window with the tiling the checkpoint was
/// validated with. Metrics follow metrics.jsonl: miou, miou_fg, pixel_acc, per-class
/// iou/dice/precision/recall, defect_recall, false_defects_per_image.
///
/// Example:
///   segkit eval --checkpoint runs/default/checkpoints/best.safetensors data/parts-voc
///   segkit eval --checkpoint best.safetensors data/parts-voc --split test --out test-metrics.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct EvalArgs {
    /// Checkpoint (.safetensors written by segkit train).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset folder.
    pub dataset: PathBuf,
    /// Split to evaluate (ImageSets/Segmentation/<split>.txt).
    #[arg(long, default_value = "val")]
    pub split: String,
    /// Write the JSON here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Run `segkit eval`.
pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let dev = device(&a.device)?;
    let report = apply::evaluate(&a.checkpoint, &a.dataset, &a.split, dev)?;
    let text = format!("{:#}\n", report.to_json());
    match &a.out {
        Some(p) => segkit_labelme::dataset::atomic_write(p, text.as_bytes())?,
        None => print!("{text}"),
    }
    let d = report
        .summary
        .dice_fg()
        .map(|d| format!("{d:.4}"))
        .unwrap_or_else(|| "-".into());
    let m = report
        .summary
        .miou
        .map(|d| format!("{d:.4}"))
        .unwrap_or_else(|| "-".into());
    eprintln!(
        "evaluated {} {} images: fg Dice {d}, mIoU {m}{}",
        report.images,
        a.split,
        a.out
            .as_ref()
            .map(|p| format!("; wrote {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// Output formats of `segkit predict`.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum FormatArg {
    /// P-mode PNG of class indices (VOC palette), like the dataset masks.
    Index,
    /// Black/white PNG: foreground white.
    Binary,
    /// RGB PNG in the class colours.
    Color,
    /// The image blended with the class colours (--alpha).
    Overlay,
}

/// Predict masks for images or folders of images with a checkpoint (any image size).
///
/// Folders are walked recursively; outputs keep the relative path, as <name>.png.
/// The checkpoint alone rebuilds its model (unet, unet-vgg16); a torchscript: model also
/// needs the .pt file train saved beside it (best.pt next to best.safetensors).
/// Prediction is at full resolution by sliding window. One unreadable image is reported and
/// skipped; the exit code is non-zero if any failed.
///
/// Example:
///   segkit predict --checkpoint runs/default/checkpoints/best.safetensors photos/ --out masks/
///   segkit predict --checkpoint best.safetensors a.jpg b.jpg --out vis/ --format overlay --alpha 0.4
///   segkit predict --checkpoint best.safetensors photos/ --out probs/ --save-probs
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct PredictArgs {
    /// Checkpoint (.safetensors written by segkit train).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Image files or folders.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Mask format.
    #[arg(long, value_enum, default_value = "index")]
    pub format: FormatArg,
    /// Opacity of the class colours in overlay format.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f32,
    /// Also write <name>.npy: float32 softmax (or sigmoid) probabilities, C×H×W.
    #[arg(long)]
    pub save_probs: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Run `segkit predict`.
pub fn predict(a: PredictArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&a.alpha) {
        bail!("--alpha {} must be between 0 and 1", a.alpha);
    }
    let dev = device(&a.device)?;
    let loaded = checkpoint::load(&a.checkpoint, dev)?;
    let inputs = apply::collect_inputs(&a.inputs)?;
    if inputs.is_empty() {
        bail!("no images (jpg, png, bmp, tif, webp) in {:?}", a.inputs);
    }
    let opts = PredictOptions {
        out: a.out.clone(),
        format: match a.format {
            FormatArg::Index => Format::Index,
            FormatArg::Binary => Format::Binary,
            FormatArg::Color => Format::Color,
            FormatArg::Overlay => Format::Overlay,
        },
        alpha: a.alpha,
        save_probs: a.save_probs,
    };
    let bar = segkit_labelme::progress::bar(inputs.len() as u64, "predicting");
    let results = apply::predict(&loaded, &inputs, &opts, dev, &mut |p| {
        if let Err(e) = &p.result {
            bar.suspend(|| eprintln!("error: {}: {e:#}", p.input.display()));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let ok = results.iter().filter(|r| r.result.is_ok()).count();
    println!("wrote {ok} masks to {}", a.out.display());
    if ok < results.len() {
        bail!(
            "{} of {} images failed (see above)",
            results.len() - ok,
            results.len()
        );
    }
    Ok(())
}
