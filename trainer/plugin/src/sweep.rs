//! `segkit lr-find` and `segkit sweep`: finding a learning rate, and training one run per
//! combination of a grid of settings.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use segkit_trainer::lr_find::{self, LrFindEvent, LrFindOptions, LrFindStop};
use segkit_trainer::sweep::{self, SweepEvent, SweepOptions};
use segkit_trainer::{Event, TrainOptions};

/// Learning-rate range test: train a fresh model for a few steps while the learning rate
/// grows exponentially, and suggest one.
///
/// The model, loss, optimizer, crops and augmentation are exactly what `segkit train` would
/// use with the same --config/--set (the optimizer's own lr is ignored). The loss is smoothed
/// (moving average); the test stops when it diverges (4× its minimum). The suggested rate is
/// where the smoothed loss falls fastest against log lr (steepest descent, fastai's "steep"
/// rule). Nothing is saved besides RUN/lr_find.json ({"lr": [...], "loss": [...],
/// "suggested_lr": x}), which `segkit report RUN` draws; train into the same RUN afterwards
/// to keep curve and run together.
///
/// Example:
///   segkit lr-find data/parts-voc --out runs/default
///   segkit train data/parts-voc --out runs/default --set optim.lr=3e-4
///   segkit lr-find data/parts-voc --set model.head=sigmoid --steps 200 --max-lr 1
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct LrFindArgs {
    /// Dataset folder (segkit/VOC layout with dataset.json).
    pub dataset: PathBuf,
    /// Run folder to write lr_find.json into (created if needed; may hold a run already).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Partial config (TOML), as for `segkit train`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. --set loss.name=ce+dice (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Learning rate of the first step.
    #[arg(long, default_value_t = 1e-7)]
    pub min_lr: f64,
    /// Learning rate of the last step (the test usually stops before, on divergence).
    #[arg(long, default_value_t = 10.0)]
    pub max_lr: f64,
    /// Steps from --min-lr to --max-lr (at most).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
}

/// Run `segkit lr-find`.
pub fn lr_find(a: LrFindArgs) -> anyhow::Result<()> {
    let mut train = TrainOptions::new(&a.dataset, &a.out);
    train.config_file = a.config.clone();
    train.set = a.set.clone();
    train.stop = Some(crate::train::interrupt_flag());
    let opts = LrFindOptions {
        train,
        min_lr: a.min_lr,
        max_lr: a.max_lr,
        steps: a.steps,
        ..LrFindOptions::new(&a.dataset)
    };
    let bar = segkit_labelme::progress::bar(a.steps as u64, "lr-find");
    let result = lr_find::lr_find(&opts, &mut |e| match e {
        LrFindEvent::Log(line) => bar.suspend(|| eprintln!("{line}")),
        LrFindEvent::Step { step, lr, loss, .. } => {
            bar.set_position(step as u64);
            bar.set_message(format!("lr {lr:.1e} loss {loss:.3}"));
        }
    });
    bar.finish_and_clear();
    let result = result.with_context(|| format!("lr-find on {}", a.dataset.display()))?;
    let path = lr_find::write(&a.out, &result)?;
    let why = match result.stop {
        LrFindStop::Diverged => "loss diverged",
        LrFindStop::MaxLr => "reached --max-lr",
        LrFindStop::Interrupted => "interrupted",
    };
    match result.suggested_lr {
        Some(lr) => println!(
            "suggested lr {lr:.2e} ({} steps, {why}); curve written to {}",
            result.lr.len(),
            path.display()
        ),
        None => println!(
            "no suggestion: the loss never fell in {} steps ({why}); curve written to {}",
            result.lr.len(),
            path.display()
        ),
    }
    if result.stop == LrFindStop::Interrupted {
        return Err(crate::Interrupted.into());
    }
    Ok(())
}

/// Train one run per combination of a grid of settings, and write an index for
/// `segkit compare --sweep`.
///
/// Each --grid KEY=V1,V2,… adds an axis; every combination gets its own run folder in OUT,
/// named by its index and settings (e.g. 000-loss=ce-optim.lr=1e-3). Keys are config keys
/// as for --set; `loss`, `optim`, `lr`, `batch_size`, `class_weights` and `schedule` are
/// short for loss.name, optim.name, optim.lr, data.batch_size, loss.class_weights and
/// optim.schedule. Commas inside [...] do not split (class_weights=auto,[1,5]).
/// OUT/sweep.json lists the finished runs with their settings and best metric; it is
/// rewritten after every run, so a killed sweep keeps what it finished, and running the
/// same command again skips finished runs and resumes the one that was cut short.
/// --epochs and --time-budget apply to each run. A failing run is reported and the others
/// still run.
///
/// Example:
///   segkit sweep data/parts-voc --out sweeps/lr --grid loss=ce,ce+dice --grid optim.lr=1e-3,1e-4 --epochs 20
///   segkit sweep data/parts-voc --out sweeps/bs --grid batch_size=2,4,8 --time-budget 10m
///   segkit compare --sweep sweeps/lr/sweep.json --out sweeps/lr/compare.html
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct SweepArgs {
    /// Dataset folder (segkit/VOC layout with dataset.json).
    pub dataset: PathBuf,
    /// Sweep folder: one run folder per combination, and sweep.json.
    #[arg(long)]
    pub out: PathBuf,
    /// An axis of the grid: KEY=V1,V2,… (repeatable).
    #[arg(long = "grid", value_name = "KEY=V1,V2", required = true)]
    pub grid: Vec<String>,
    /// Partial config (TOML) shared by every run.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key for every run (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Epochs of each run.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Time budget of each run, e.g. 5m (with no --epochs, each run's schedule is sized to it).
    #[arg(long, value_parser = crate::train::parse_budget)]
    pub time_budget: Option<Duration>,
}

/// Run `segkit sweep`.
pub fn sweep(a: SweepArgs) -> anyhow::Result<()> {
    let grid = a
        .grid
        .iter()
        .map(|g| sweep::parse_axis(g))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = SweepOptions {
        dataset: a.dataset.clone(),
        out: a.out.clone(),
        config_file: a.config.clone(),
        set: a.set.clone(),
        grid,
        epochs: a.epochs,
        time_budget: a.time_budget,
        stop: Some(crate::train::interrupt_flag()),
    };
    let mut bar: Option<ProgressBar> = None;
    let mut current = String::new();
    let outcome = sweep::sweep(&opts, &mut |e| match e {
        SweepEvent::Skipped { index, name } => {
            eprintln!("[{}] {name}: already finished, skipped", index + 1)
        }
        SweepEvent::RunStart {
            index,
            total,
            name,
            resumed,
        } => {
            current = format!("[{}/{total}] {name}", index + 1);
            eprintln!(
                "{current}: {}",
                if resumed {
                    "resuming an unfinished run"
                } else {
                    "training"
                }
            );
        }
        SweepEvent::Train(Event::EpochStart {
            epoch,
            epochs,
            batches,
        }) => {
            let b =
                segkit_labelme::progress::bar(batches as u64, &format!("epoch {epoch}/{epochs}"));
            bar = Some(b);
        }
        SweepEvent::Train(Event::Step { batch, .. }) => {
            if let Some(b) = &bar {
                b.set_position(batch as u64);
            }
        }
        SweepEvent::Train(Event::EpochEnd { .. }) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
        SweepEvent::Train(Event::Log(_) | Event::Validating { .. }) => {}
        SweepEvent::RunEnd { entry, error, .. } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            match error {
                Some(err) => eprintln!("{current}: failed: {err}"),
                None => eprintln!(
                    "{current}: best epoch {} {} {}",
                    entry["best"]["epoch"],
                    entry["best"]["metric"].as_str().unwrap_or("-"),
                    entry["best"]["value"]
                        .as_f64()
                        .map_or("-".into(), |v| format!("{v:.4}"))
                ),
            }
        }
    });
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let outcome = outcome.with_context(|| format!("sweep into {}", a.out.display()))?;
    let best = outcome
        .best
        .as_ref()
        .map(|(n, m, v)| format!("; best {n} ({m} {v:.4})"))
        .unwrap_or_default();
    println!(
        "sweep: {} runs finished ({} skipped as done), {} failed, index {}{best}{}",
        outcome.done,
        outcome.skipped,
        outcome.failed.len(),
        outcome.index.display(),
        if outcome.interrupted {
            "; interrupted: run the same command to continue"
        } else {
            ""
        }
    );
    if !outcome.failed.is_empty() {
        anyhow::bail!(
            "{} of the sweep's runs failed: {}",
            outcome.failed.len(),
            outcome
                .failed
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if outcome.interrupted {
        return Err(crate::Interrupted.into());
    }
    Ok(())
}
