//! The learning-rate range test (Smith 2017, as fastai's `lr_find`): train a fresh model for
//! a few hundred steps at most while the learning rate grows exponentially from `min_lr` to
//! `max_lr`, record the smoothed loss, stop when it diverges, and suggest the rate where the
//! smoothed loss falls fastest (steepest descent against log lr).
//!
//! The model, optimizer and loss are built exactly as `train` builds them from the same
//! config (file, `--set`), but in their own var store: nothing is saved and nothing of the
//! test carries over into a later `train`. The result goes to `lr_find.json` in a run folder
//! (`{"lr": [...], "loss": [...], "suggested_lr": x}`), which `segkit report` draws.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use segkit_labelme::dataset;
use serde::Serialize;
use tch::nn;

use crate::error::{Result, TrainError};
use crate::loader;
use crate::loss::Loss;
use crate::model::Net;
use crate::optim::Optimizer;
use crate::train::{self, TrainOptions};

/// What to test.
#[derive(Debug, Clone)]
pub struct LrFindOptions {
    /// Dataset, config file and `--set` overrides (as for `train`; `out`, `epochs`, time
    /// budget and resume are not used).
    pub train: TrainOptions,
    /// First learning rate.
    pub min_lr: f64,
    /// Last learning rate (the test usually stops earlier, on divergence).
    pub max_lr: f64,
    /// Optimizer steps from `min_lr` to `max_lr`.
    pub steps: usize,
    /// Weight of the past in the exponential moving average of the loss.
    pub smoothing: f64,
    /// Stop when the smoothed loss exceeds this multiple of its minimum.
    pub diverge: f64,
}

impl LrFindOptions {
    /// The usual range test on `dataset`: 1e-7 to 10 in 100 steps, smoothing 0.98, stop at 4×
    /// the best loss.
    pub fn new(dataset: impl Into<PathBuf>) -> Self {
        LrFindOptions {
            train: TrainOptions::new(dataset, PathBuf::new()),
            min_lr: 1e-7,
            max_lr: 10.0,
            steps: 100,
            smoothing: 0.98,
            diverge: 4.0,
        }
    }
}

/// Why the test stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LrFindStop {
    /// The smoothed loss exceeded `diverge` × its minimum, or became NaN/Inf.
    Diverged,
    /// All steps done (reached `max_lr`).
    MaxLr,
    /// Stopped by the caller.
    Interrupted,
}

/// The curve and the suggestion; serialized as `lr_find.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LrFindResult {
    /// Learning rate of each step.
    pub lr: Vec<f64>,
    /// Smoothed (bias-corrected moving average) loss after each step.
    pub loss: Vec<f64>,
    /// The loss of each step's batch.
    pub raw_loss: Vec<f64>,
    /// The suggested learning rate: steepest descent of the smoothed loss against log lr;
    /// `None` when the loss never fell.
    pub suggested_lr: Option<f64>,
    /// How `suggested_lr` was chosen.
    pub method: &'static str,
    /// Why the test stopped.
    pub stop: LrFindStop,
    /// Moving-average smoothing used.
    pub smoothing: f64,
}

/// Progress of the range test.
#[derive(Debug)]
pub enum LrFindEvent<'a> {
    /// A line for the user.
    Log(&'a str),
    /// A step was done.
    Step {
        /// Steps done.
        step: usize,
        /// Planned steps.
        steps: usize,
        /// Learning rate of the step.
        lr: f64,
        /// Smoothed loss.
        loss: f64,
    },
}

/// Run the range test.
pub fn lr_find(opts: &LrFindOptions, on: &mut dyn FnMut(LrFindEvent)) -> Result<LrFindResult> {
    if !(opts.min_lr > 0.0 && opts.max_lr > opts.min_lr && opts.max_lr.is_finite()) {
        return Err(TrainError::Config(format!(
            "lr-find: need 0 < min lr < max lr, got {} and {}",
            opts.min_lr, opts.max_lr
        )));
    }
    if opts.steps < 5 || !(0.0..1.0).contains(&opts.smoothing) || opts.diverge <= 1.0 {
        return Err(TrainError::Config(
            "lr-find: need at least 5 steps, smoothing in [0, 1) and a divergence factor > 1"
                .into(),
        ));
    }
    let prepared = train::prepare(&opts.train)?;
    let cfg = prepared.cfg;
    let device = train::device(&cfg.device)?;
    tch::set_num_threads(cfg.threads as i32);
    tch::manual_seed(cfg.seed as i64);
    on(LrFindEvent::Log(&format!(
        "lr range test on {} ({} train images): {:?} from {:.0e} to {:.0e} in at most {} steps, batch {} of {}² crops",
        prepared.ds.root.display(),
        prepared.train.len(),
        cfg.optim.name,
        opts.min_lr,
        opts.max_lr,
        opts.steps,
        cfg.data.batch_size,
        cfg.data.crop_size
    )));

    // The model as `train` starts it (fresh, or from `model.pretrained`), in a var store of
    // its own that is dropped at the end.
    let vs = nn::VarStore::new(device);
    let net = Net::new(&vs.root(), &cfg.model, None)?;
    net.prefer_channels_last(&vs);
    if let Some(report) = crate::weights::load_pretrained(&vs, &net, &cfg.model)? {
        for line in report.lines() {
            on(LrFindEvent::Log(&format!("pretrained: {line}")));
        }
    }
    let loss_fn = Loss::of_run(&cfg, device)?;
    let mut opt = Optimizer::new(&vs, &cfg.optim);
    let samples = Arc::new(train::training_samples(&cfg, prepared.train));
    let augment = crate::data::Augment::from_config(&cfg.data.augment)?;

    let ratio = opts.max_lr / opts.min_lr;
    let lr_of = |i: usize| opts.min_lr * ratio.powf(i as f64 / (opts.steps - 1) as f64);
    let mut out = LrFindResult {
        lr: Vec::new(),
        loss: Vec::new(),
        raw_loss: Vec::new(),
        suggested_lr: None,
        method: "steepest descent of the smoothed loss against log lr",
        stop: LrFindStop::MaxLr,
        smoothing: opts.smoothing,
    };
    let mut avg = 0.0;
    let mut best = f64::INFINITY;
    let mut epoch = 0;
    // Gradient accumulation as in training: one lr step spans `accum_steps` batches.
    let accum = cfg.optim.accum_steps.max(1);
    let (mut acc_loss, mut acc_n) = (0.0, 0usize);
    opt.zero_grad();
    'epochs: while out.lr.len() < opts.steps {
        epoch += 1;
        let rx = loader::spawn(samples.clone(), train::epoch_plan(&cfg, epoch, &augment));
        let mut any = false;
        for batch in rx.iter() {
            if out.lr.len() >= opts.steps {
                break 'epochs;
            }
            if opts
                .train
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
            {
                out.stop = LrFindStop::Interrupted;
                break 'epochs;
            }
            if batch.valid == 0 {
                continue;
            }
            any = true;
            let i = out.lr.len();
            let lr = lr_of(i);
            let loss = train::batch_loss(&net, &loss_fn, &batch, cfg.data.crop_size, device);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                out.stop = LrFindStop::Diverged;
                break 'epochs;
            }
            (loss / accum as f64).backward();
            acc_loss += value;
            acc_n += 1;
            if acc_n < accum {
                continue;
            }
            let value = acc_loss / acc_n as f64;
            (acc_loss, acc_n) = (0.0, 0);
            if cfg.optim.clip_grad_norm > 0.0 {
                opt.clip_grad_norm(cfg.optim.clip_grad_norm);
            }
            opt.step(lr);
            opt.zero_grad();
            avg = opts.smoothing * avg + (1.0 - opts.smoothing) * value;
            let smoothed = avg / (1.0 - opts.smoothing.powi(i as i32 + 1));
            out.lr.push(lr);
            out.raw_loss.push(value);
            out.loss.push(smoothed);
            on(LrFindEvent::Step {
                step: i + 1,
                steps: opts.steps,
                lr,
                loss: smoothed,
            });
            best = best.min(smoothed);
            if !smoothed.is_finite() || (i > 0 && smoothed > opts.diverge * best) {
                out.stop = LrFindStop::Diverged;
                break 'epochs;
            }
        }
        if !any {
            return Err(TrainError::Config(format!(
                "lr-find: no training crop of {} holds a labelled pixel",
                prepared.ds.root.display()
            )));
        }
    }
    out.suggested_lr = suggest(&out.lr, &out.loss);
    Ok(out)
}

/// The learning rate where the smoothed loss falls fastest against log lr, looked for before
/// the loss minimum (after it the loss is diverging) and away from the first steps (where
/// the moving average is still warming up); `None` when the loss never fell.
pub fn suggest(lr: &[f64], loss: &[f64]) -> Option<f64> {
    let n = lr.len().min(loss.len());
    if n < 3 {
        return None;
    }
    let min_at = (0..n)
        .min_by(|&a, &b| loss[a].total_cmp(&loss[b]))
        .expect("n ≥ 3");
    let skip = (n / 10).max(1);
    let mut best: Option<(usize, f64)> = None;
    for i in skip..min_at.min(n - 1) {
        // Central difference of loss against ln(lr), as numpy.gradient.
        let g = (loss[i + 1] - loss[i - 1]) / (lr[i + 1].ln() - lr[i - 1].ln());
        if g < 0.0 && best.is_none_or(|(_, b)| g < b) {
            best = Some((i, g));
        }
    }
    best.map(|(i, _)| lr[i])
}

/// Write `result` as `lr_find.json` in `dir` (created if needed), atomically; the path written.
pub fn write(dir: &Path, result: &LrFindResult) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let path = dir.join("lr_find.json");
    let mut text = serde_json::to_string_pretty(result).expect("result serializes");
    text.push('\n');
    dataset::atomic_write(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loss that falls slowly, then fast around 1e-3, then rises: the suggestion is where
    /// it falls fastest, not at the minimum.
    #[test]
    fn suggestion_is_the_steepest_descent_before_the_minimum() {
        let lr: Vec<f64> = (0..60)
            .map(|i| 1e-6 * 10f64.powf(i as f64 / 10.0))
            .collect();
        let loss: Vec<f64> = lr
            .iter()
            .map(|&l| {
                let x = l.log10();
                // Logistic drop centred at 1e-3, divergence above 1e-1.
                1.0 - 0.8 / (1.0 + (-(x + 3.0) * 4.0).exp())
                    + if x > -1.0 { (x + 1.0) * 5.0 } else { 0.0 }
            })
            .collect();
        let s = suggest(&lr, &loss).unwrap();
        assert!((s.log10() + 3.0).abs() <= 0.1, "suggested {s}");
        // A loss that only rises has no suggestion.
        let rising: Vec<f64> = (0..20).map(|i| i as f64).collect();
        assert_eq!(suggest(&lr[..20], &rising), None);
    }
}
