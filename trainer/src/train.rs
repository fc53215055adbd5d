//! The training loop and the run folder it writes (contract: `config.toml`, `dataset.json`,
//! `metrics.jsonl`, `checkpoints/{best,last}.safetensors`, `checkpoints/last.state`,
//! `predictions/`, `confusion.json`, `log.txt`).
//!
//! Order of writes at the end of an epoch: checkpoints first, then the metrics line, then
//! the resume state; so a run killed at any moment resumes from an epoch whose weights,
//! metrics and optimizer state agree.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use segkit_labelme::dataset::{self, Dataset, MaskEncoding};
use serde_json::{json, Value};
use tch::{nn, Device, Kind, Tensor};

use crate::checkpoint;
use crate::config::{self, Config, DatasetFacts, Head};
use crate::data::{self, Sample};
use crate::error::{Result, TrainError};
use crate::infer::{self, Tiling};
use crate::loader::{self, EpochPlan};
use crate::loss::Loss;
use crate::metrics::{Accumulator, Summary};
use crate::model::Net;
use crate::optim::{lr_at, Optimizer};

/// What `train` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Dataset folder (ignored when resuming: the run's config names it).
    pub dataset: PathBuf,
    /// Run folder to write (or to resume).
    pub out: PathBuf,
    /// Partial config file.
    pub config_file: Option<PathBuf>,
    /// `key=value` overrides, applied after the file.
    pub set: Vec<String>,
    /// Epochs (overrides the config; when resuming, extends the run).
    pub epochs: Option<usize>,
    /// Stop after the last epoch that fits in this wall time.
    pub time_budget: Option<Duration>,
    /// Continue the run in `out` from its last finished epoch.
    pub resume: bool,
    /// Set by the caller (e.g. on Ctrl-C) to stop after the current step; the last finished
    /// epoch stays saved.
    pub stop: Option<Arc<AtomicBool>>,
    /// Stop cleanly after this many epochs of this invocation (what an interruption does;
    /// used to test resume).
    pub stop_after_epochs: Option<usize>,
}

impl TrainOptions {
    /// Train on `dataset` into `out` with every default.
    pub fn new(dataset: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        TrainOptions {
            dataset: dataset.into(),
            out: out.into(),
            ..Default::default()
        }
    }
}

/// Progress reported to the caller (the library never prints).
#[derive(Debug)]
pub enum Event<'a> {
    /// A line for the user; it is also in `log.txt`.
    Log(&'a str),
    /// An epoch starts.
    EpochStart {
        /// 1-based epoch.
        epoch: usize,
        /// Total epochs.
        epochs: usize,
        /// Batches this epoch.
        batches: usize,
    },
    /// A batch was trained on.
    Step {
        /// Batches done this epoch.
        batch: usize,
        /// Loss of the batch.
        loss: f64,
        /// Learning rate used.
        lr: f64,
    },
    /// Validation of an epoch starts.
    Validating {
        /// Val images.
        images: usize,
    },
    /// An epoch finished; `record` is its `metrics.jsonl` line.
    EpochEnd {
        /// The metrics line.
        record: &'a Value,
    },
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All epochs done.
    Finished,
    /// The time budget would be exceeded by another epoch.
    TimeBudget,
    /// No improvement for `val.patience` epochs.
    EarlyStopping,
    /// Stopped by the caller.
    Interrupted,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run folder.
    pub run: PathBuf,
    /// Last finished epoch.
    pub epochs_done: usize,
    /// Best epoch by the configured metric.
    pub best_epoch: Option<usize>,
    /// Its metric value.
    pub best_value: Option<f64>,
    /// Foreground mean Dice at the best epoch.
    pub best_dice_fg: Option<f64>,
    /// The metric name.
    pub metric: String,
    /// Why it ended.
    pub stop: StopReason,
}

/// Counters that resume needs besides weights and optimizer moments.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LoopState {
    epoch: usize,
    step: i64,
    best_epoch: Option<usize>,
    best_value: Option<f64>,
    best_dice_fg: Option<f64>,
    bad_epochs: usize,
    seconds: f64,
}

struct Log {
    file: std::fs::File,
}

impl Log {
    fn open(path: &Path) -> Result<Log> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        Ok(Log { file })
    }
    fn line(&mut self, text: &str, on: &mut dyn FnMut(Event)) {
        // The log is a convenience copy of what was reported; a failed write must not stop training.
        let _ = writeln!(self.file, "{text}");
        on(Event::Log(text));
    }
}

fn facts(
    ds: &Dataset,
    dataset_key: String,
    train: &[&Sample],
    train_stems: &[String],
) -> DatasetFacts {
    let (mean, std) = data::mean_std(train);
    DatasetFacts {
        dataset: dataset_key,
        class_names: ds.manifest.class_names(),
        n_train: train.len(),
        min_side: train
            .iter()
            .map(|s| s.width.min(s.height))
            .min()
            .unwrap_or(256),
        median_defect_side: data::median_defect_side(ds, train_stems),
        auto_weights: data::median_frequency_weights(train, ds.num_classes()),
        mean,
        std,
    }
}

/// The device of a config, checked to exist.
pub fn device(spec: &str) -> Result<Device> {
    let d = config::parse_device(spec)?;
    if let Device::Cuda(i) = d {
        if !tch::Cuda::is_available() || i >= tch::Cuda::device_count() as usize {
            return Err(TrainError::Config(format!(
                "device = {spec:?}: no such CUDA device here; use device = \"cpu\" or \"auto\""
            )));
        }
    }
    Ok(d)
}

/// Train a model (or resume a run) and write the run folder.
pub fn train(opts: &TrainOptions, on: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let run = opts.out.clone();
    let (cfg, resume_state) = if opts.resume {
        prepare_resume(opts)?
    } else {
        (None, None)
    };
    // Fresh run: resolve the config from the dataset and the user's table.
    let mut defaults_toml: Option<String> = None;
    let mut size_schedule = false;
    let (mut cfg, ds, splits, train_samples, val_samples) = match cfg {
        Some(cfg) => {
            let ds_path = resolve_dataset_path(&run, &cfg.dataset);
            let ds = Dataset::open(&ds_path)?;
            let splits = data::splits(
                &ds,
                &cfg.data.train_split,
                &cfg.data.val_split,
                cfg.data.val_share,
                cfg.seed,
            )?;
            let t = data::load(&ds, &splits.train)?;
            let v = data::load(&ds, &splits.val)?;
            (cfg, ds, splits, t, v)
        }
        None => {
            if run.join("metrics.jsonl").exists() || run.join("config.toml").exists() {
                return Err(TrainError::Config(format!(
                    "{} already holds a run: continue it with `--resume {}` or write to another --out",
                    run.display(),
                    run.display()
                )));
            }
            let fresh = prepare(opts)?;
            defaults_toml = Some(fresh.defaults_toml);
            // A time budget without an epoch count: the schedule is sized after epoch 1.
            size_schedule = opts.time_budget.is_some() && !fresh.explicit_epochs;
            (fresh.cfg, fresh.ds, fresh.splits, fresh.train, fresh.val)
        }
    };
    if opts.resume {
        if let Some(e) = opts.epochs {
            cfg.epochs = e;
        }
    }
    let device = device(&cfg.device)?;
    // Mixed precision only where it helps (CUDA); on CPU the setting is a no-op, said once.
    let amp = cfg.amp && device.is_cuda();
    let amp_on_cpu = cfg.amp && !device.is_cuda();
    tch::set_num_threads(cfg.threads as i32);
    tch::manual_seed(cfg.seed as i64);

    std::fs::create_dir_all(run.join("checkpoints")).map_err(|e| TrainError::io(&run, e))?;
    if !opts.resume {
        dataset::atomic_write(&run.join("config.toml"), cfg.to_toml().as_bytes())?;
        if let Some(d) = &defaults_toml {
            dataset::atomic_write(&run.join("defaults.toml"), d.as_bytes())?;
        }
        let mut manifest = serde_json::to_string_pretty(&ds.manifest).expect("manifest serializes");
        manifest.push('\n');
        dataset::atomic_write(&run.join("dataset.json"), manifest.as_bytes())?;
    } else if opts.epochs.is_some() {
        dataset::atomic_write(&run.join("config.toml"), cfg.to_toml().as_bytes())?;
    }
    let mut log = Log::open(&run.join("log.txt"))?;
    if amp_on_cpu {
        log.line(
            "warning: amp = true has no effect on the CPU (mixed precision is CUDA only); training in float32",
            on,
        );
    }
    log.line(
        &format!(
            "{} {} on {} ({} train / {} val images, {}); {} classes; device {:?}, {} threads",
            if opts.resume { "resuming" } else { "training" },
            run.display(),
            ds.root.display(),
            train_samples.len(),
            val_samples.len(),
            splits.origin,
            cfg.model.num_classes,
            device,
            cfg.threads
        ),
        on,
    );
    log.line(
        &format!(
            "{} base {} depth {} ({:?} up, {:?} norm, {:?} head); loss {} with class weights {:?}; {:?} lr {} {:?}; crops {}² × {} a batch, {} an epoch",
            cfg.model.arch,
            cfg.model.base,
            cfg.model.depth,
            cfg.model.up,
            cfg.model.norm,
            cfg.model.head,
            cfg.loss.name,
            cfg.class_weights(),
            cfg.optim.name,
            cfg.optim.lr,
            cfg.optim.schedule,
            cfg.data.crop_size,
            cfg.data.batch_size,
            cfg.data.samples_per_epoch
        ),
        on,
    );

    let mut vs = nn::VarStore::new(device);
    // A resumed TorchScript model continues from its trained module (buffers included).
    let last_script = run.join("checkpoints/last.pt");
    let script = (resume_state.is_some() && last_script.is_file()).then_some(last_script.as_path());
    let net = Net::new(&vs.root(), &cfg.model, script)?;
    net.prefer_channels_last(&vs);
    if resume_state.is_none() {
        if let Some(report) = crate::weights::load_pretrained(&vs, &net, &cfg.model)? {
            for line in report.lines() {
                log.line(&format!("pretrained: {line}"), on);
            }
        }
    }
    let loss_fn = Loss::of_run(&cfg, device)?;
    let mut opt = Optimizer::new(&vs, &cfg.optim);
    let mut st = LoopState {
        epoch: 0,
        step: 0,
        best_epoch: None,
        best_value: None,
        best_dice_fg: None,
        bad_epochs: 0,
        seconds: 0.0,
    };
    if let Some(state_path) = resume_state {
        let (tensors, _) = checkpoint::load_tensors(&run.join("checkpoints/last.safetensors"))?;
        checkpoint::copy_into(&run.join("checkpoints/last.safetensors"), &mut vs, &tensors)?;
        let (opt_state, meta) = checkpoint::load_tensors(&state_path)?;
        st = serde_json::from_str(meta.get("loop").map(String::as_str).unwrap_or(""))
            .map_err(|e| TrainError::checkpoint(&state_path, format!("loop state: {e}")))?;
        let opt_state: BTreeMap<String, Tensor> = opt_state
            .into_iter()
            .map(|(k, v)| (k, v.to_device(device)))
            .collect();
        if !opt.restore(&opt_state, st.step) {
            return Err(TrainError::checkpoint(
                &state_path,
                "optimizer state does not fit the model",
            ));
        }
        truncate_metrics(&run.join("metrics.jsonl"), st.epoch)?;
        log.line(
            &format!("resumed after epoch {} (step {})", st.epoch, st.step),
            on,
        );
    }

    let batches_per_epoch = cfg.data.samples_per_epoch.div_ceil(cfg.data.batch_size);
    let steps_per_epoch = batches_per_epoch.div_ceil(cfg.optim.accum_steps);
    let mut total_steps = steps_per_epoch * cfg.epochs;
    let tiling = Tiling {
        tile: cfg.val.tile,
        overlap: cfg.val.overlap,
        gaussian: cfg.val.blend == "gaussian",
        batch: cfg.val.batch,
        resize: cfg.data.resize,
    };
    let train_arc = Arc::new(training_samples(&cfg, train_samples));
    let augment = data::Augment::from_config(&cfg.data.augment)?;
    // `seconds` in metrics.jsonl counts the whole run; the time budget only this invocation.
    let start = Instant::now() - Duration::from_secs_f64(st.seconds);
    let call_start = Instant::now();
    // Measured epoch costs of this call predict what still fits in a time budget.
    let mut clock = BudgetClock::default();
    let mut last_validated = true;
    let mut stop = StopReason::Finished;
    let mut epochs_this_call = 0;
    let size = cfg.data.crop_size;
    let metrics_path = run.join("metrics.jsonl");

    while st.epoch < cfg.epochs {
        if let (Some(b), true) = (opts.time_budget, size_schedule && epochs_this_call > 0) {
            // No epoch count was given: after epoch 1 the schedule is sized to the epochs that
            // fit, and shrunk when epochs run slower, so cosine/poly end on the last epoch.
            let fit = clock.epochs_fitting(b.saturating_sub(call_start.elapsed()), cfg.val.every);
            if fit == 0 && last_validated {
                stop = StopReason::TimeBudget;
                break;
            }
            let planned = if epochs_this_call == 1 {
                st.epoch + fit.max(1)
            } else {
                cfg.epochs.min(st.epoch + fit.max(1))
            };
            if planned != cfg.epochs || epochs_this_call == 1 {
                log.line(
                    &format!(
                        "time budget {:.0}s: {:.1}s an epoch so far, {fit} more fit after epoch {}; lr schedule sized for {planned} epochs (was {})",
                        b.as_secs_f64(),
                        clock.mean_train() + clock.val.unwrap_or(0.0) / cfg.val.every as f64,
                        st.epoch,
                        cfg.epochs
                    ),
                    on,
                );
                cfg.epochs = planned;
                total_steps = steps_per_epoch * cfg.epochs;
                dataset::atomic_write(&run.join("config.toml"), cfg.to_toml().as_bytes())?;
            }
        }
        if opts
            .stop_after_epochs
            .is_some_and(|n| epochs_this_call >= n)
        {
            stop = StopReason::Interrupted;
            break;
        }
        let epoch = st.epoch + 1;
        let epoch_start = Instant::now();
        // A pretrained encoder stays fixed while a new decoder and head settle.
        let frozen = epoch <= cfg.freeze_encoder_epochs;
        let changed = net.set_encoder_trainable(&vs, !frozen) > 0;
        if cfg.freeze_encoder_epochs > 0 && (changed || epoch == cfg.freeze_encoder_epochs + 1) {
            log.line(
                &format!(
                    "epoch {epoch}: encoder {}",
                    if frozen {
                        format!("frozen (until epoch {})", cfg.freeze_encoder_epochs)
                    } else {
                        "unfrozen".into()
                    }
                ),
                on,
            );
        }
        on(Event::EpochStart {
            epoch,
            epochs: cfg.epochs,
            batches: batches_per_epoch,
        });
        let rx = loader::spawn(train_arc.clone(), epoch_plan(&cfg, epoch, &augment));
        let mut loss_sum = 0.0;
        let mut loss_n = 0usize;
        let mut lr = lr_at(&cfg.optim, st.step as usize, total_steps, steps_per_epoch);
        opt.zero_grad();
        let mut interrupted = false;
        for (b, batch) in rx.iter().enumerate() {
            if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                interrupted = true;
                break;
            }
            if batch.valid == 0 {
                continue; // a crop of nothing but padding teaches nothing
            }
            let loss = tch::autocast(amp, || batch_loss(&net, &loss_fn, &batch, size, device));
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                let msg = format!(
                    "loss became {value} at epoch {epoch}, batch {} (lr {lr:.3e}); stopped. The last good weights are {} (epoch {}). \
                     Try a lower optim.lr, optim.clip_grad_norm = 1, or check the images for corrupt values",
                    b + 1,
                    run.join("checkpoints/last.safetensors").display(),
                    st.epoch
                );
                log.line(&msg, on);
                return Err(TrainError::Diverged(msg));
            }
            (loss / cfg.optim.accum_steps as f64).backward();
            loss_sum += value;
            loss_n += 1;
            if (b + 1) % cfg.optim.accum_steps == 0 || b + 1 == batches_per_epoch {
                lr = lr_at(&cfg.optim, st.step as usize, total_steps, steps_per_epoch);
                if cfg.optim.clip_grad_norm > 0.0 {
                    opt.clip_grad_norm(cfg.optim.clip_grad_norm);
                }
                opt.step(lr);
                opt.zero_grad();
                st.step += 1;
            }
            on(Event::Step {
                batch: b + 1,
                loss: value,
                lr,
            });
        }
        if interrupted {
            stop = StopReason::Interrupted;
            log.line(&format!("interrupted during epoch {epoch}; the run keeps epoch {} (resume with --resume)", st.epoch), on);
            break;
        }
        st.epoch = epoch;
        epochs_this_call += 1;

        // The last epoch is always validated: the one the schedule ends on, or the last one
        // that fits the time budget (when the schedule was sized, it ends there).
        let next_fits = size_schedule
            || match opts.time_budget {
                Some(b) => clock.next_fits(call_start.elapsed(), epoch_start.elapsed(), b),
                None => true,
            };
        let validated = epoch % cfg.val.every == 0 || epoch == cfg.epochs || !next_fits;
        let val = if validated {
            on(Event::Validating {
                images: val_samples.len(),
            });
            let t = Instant::now();
            let v = validate(&net, &cfg, &val_samples, tiling, device);
            clock.val = Some(t.elapsed().as_secs_f64());
            Some(v)
        } else {
            None
        };
        last_validated = validated;
        let summary = val.as_ref().map(|v| v.acc.summary());
        let val_loss = val.as_ref().and_then(|v| v.loss);
        let metric_value = summary
            .as_ref()
            .and_then(|s| metric_of(&cfg.val.metric, s, val_loss));
        let better = validated
            && match (metric_value, st.best_value) {
                (Some(v), Some(b)) => {
                    if cfg.val.metric == "val_loss" {
                        v < b
                    } else {
                        v > b
                    }
                }
                (Some(_), None) => true,
                _ => st.best_epoch.is_none(),
            };
        let extra = |e: usize| {
            vec![
                ("epoch", e.to_string()),
                ("tiling", json!({"tile": tiling.tile, "overlap": tiling.overlap, "blend": cfg.val.blend, "batch": tiling.batch, "resize": tiling.resize}).to_string()),
            ]
        };
        if let (true, Some(val), Some(summary)) = (better, &val, &summary) {
            st.best_epoch = Some(epoch);
            st.best_value = metric_value;
            st.best_dice_fg = summary.dice_fg();
            st.bad_epochs = 0;
            checkpoint::save_model(
                &run.join("checkpoints/best.safetensors"),
                &vs,
                &net,
                &cfg.model,
                st.step,
                &extra(epoch),
            )?;
            for (s, pred) in val_samples.iter().zip(&val.preds) {
                dataset::write_index_png(
                    &run.join("predictions").join(format!("{}.png", s.stem)),
                    s.width as u32,
                    s.height as u32,
                    pred,
                    MaskEncoding::Palette,
                )?;
            }
            let conf =
                json!({"classes": cfg.model.class_names, "matrix": val.acc.matrix, "epoch": epoch});
            dataset::atomic_write(
                &run.join("confusion.json"),
                format!("{:#}\n", conf).as_bytes(),
            )?;
        } else if validated {
            st.bad_epochs += 1;
        }
        checkpoint::save_model(
            &run.join("checkpoints/last.safetensors"),
            &vs,
            &net,
            &cfg.model,
            st.step,
            &extra(epoch),
        )?;
        let last_epoch_time = epoch_start.elapsed();
        clock.train.push(
            last_epoch_time.as_secs_f64()
                - if validated {
                    clock.val.unwrap_or(0.0)
                } else {
                    0.0
                },
        );
        st.seconds = start.elapsed().as_secs_f64();

        let mut record = json!({
            "epoch": epoch,
            "step": st.step,
            "lr": lr,
            "seconds": (st.seconds * 10.0).round() / 10.0,
        });
        let map = record.as_object_mut().expect("object");
        if loss_n > 0 {
            map.insert("train_loss".into(), json!(loss_sum / loss_n as f64));
        }
        if let Some(l) = val_loss {
            map.insert("val_loss".into(), json!(l));
        }
        // An epoch that was not validated carries train fields only.
        if let Some(summary) = &summary {
            if let Value::Object(m) = serde_json::to_value(summary).expect("summary serializes") {
                map.extend(m);
            }
        }
        append_line(&metrics_path, &record)?;
        let mut meta = HashMap::new();
        meta.insert(
            "loop".to_string(),
            serde_json::to_string(&st).expect("state serializes"),
        );
        checkpoint::save_tensors(&run.join("checkpoints/last.state"), &opt.state(), meta)?;
        on(Event::EpochEnd { record: &record });
        log.line(
            &format!(
                "epoch {epoch}/{}: train_loss {:.4} val_loss {} fg Dice {} mIoU {} defect_recall {} ({:.1}s){}",
                cfg.epochs,
                if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN },
                fmt_opt(val_loss),
                fmt_opt(summary.as_ref().and_then(|s| s.dice_fg())),
                fmt_opt(summary.as_ref().and_then(|s| s.miou)),
                fmt_opt(summary.as_ref().and_then(|s| s.defect_recall)),
                last_epoch_time.as_secs_f64(),
                if better {
                    " *best*"
                } else if !validated {
                    " (not validated)"
                } else {
                    ""
                }
            ),
            on,
        );
        if cfg.val.patience > 0 && st.bad_epochs >= cfg.val.patience {
            stop = StopReason::EarlyStopping;
            log.line(
                &format!(
                    "early stopping: no improvement of {} for {} epochs",
                    cfg.val.metric, cfg.val.patience
                ),
                on,
            );
            break;
        }
        if !next_fits && st.epoch < cfg.epochs {
            stop = StopReason::TimeBudget;
            break;
        }
    }
    if stop == StopReason::TimeBudget {
        log.line(&format!("time budget reached after epoch {}", st.epoch), on);
    }
    Ok(Outcome {
        run,
        epochs_done: st.epoch,
        best_epoch: st.best_epoch,
        best_value: st.best_value,
        best_dice_fg: st.best_dice_fg,
        metric: cfg.val.metric.clone(),
        stop,
    })
}

/// A fresh run's inputs: the resolved config, the dataset, its splits and loaded samples.
pub struct Prepared {
    /// The resolved config (threads resolved to a count).
    pub cfg: Config,
    /// The dataset.
    pub ds: Dataset,
    /// Train and val stems.
    pub splits: data::Splits,
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples.
    pub val: Vec<Sample>,
    /// The defaults for this dataset with no user settings, as TOML.
    pub defaults_toml: String,
    /// Whether the user fixed the epoch count (option, file or `--set`).
    pub explicit_epochs: bool,
}

/// Resolve the config of a fresh run from `opts` (file, `--set`, `--epochs`) and the
/// dataset, load the samples and check the labels; nothing is written.
pub fn prepare(opts: &TrainOptions) -> Result<Prepared> {
    let mut user = match &opts.config_file {
        Some(p) => config::read_table(p)?,
        None => toml::Table::new(),
    };
    for s in &opts.set {
        config::apply_set(&mut user, s)?;
    }
    if let Some(e) = opts.epochs {
        config::apply_set(&mut user, &format!("epochs={e}"))?;
    }
    let explicit_epochs = config::peek::<usize>(&user, "epochs").is_some();
    let ds = Dataset::open(&opts.dataset)?;
    let seed = config::peek::<u64>(&user, "seed").unwrap_or(0);
    let splits = data::splits(
        &ds,
        &config::peek::<String>(&user, "data.train_split").unwrap_or_else(|| "train".into()),
        &config::peek::<String>(&user, "data.val_split").unwrap_or_else(|| "val".into()),
        config::peek::<f64>(&user, "data.val_share").unwrap_or(0.2),
        seed,
    )?;
    let t = data::load(&ds, &splits.train)?;
    let v = data::load(&ds, &splits.val)?;
    let all: Vec<&Sample> = t.iter().chain(v.iter()).collect();
    data::check_labels(&ds.root, &all, &ds.manifest.class_names())?;
    let key = std::fs::canonicalize(&opts.dataset)
        .unwrap_or_else(|_| opts.dataset.clone())
        .to_string_lossy()
        .into_owned();
    let train_refs: Vec<&Sample> = t.iter().collect();
    let f = facts(&ds, key, &train_refs, &splits.train);
    let mut cfg = Config::resolve(&f, &user)?;
    // What segkit would choose with no user settings: reports mark what was changed.
    let defaults_toml = Config::defaults(&f, &toml::Table::new()).to_toml();
    if cfg.threads == 0 {
        cfg.threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
    }
    Ok(Prepared {
        cfg,
        ds,
        splits,
        train: t,
        val: v,
        defaults_toml,
        explicit_epochs,
    })
}

/// The training samples as the loader sees them: resized for the `data.resize` recipe.
pub(crate) fn training_samples(cfg: &Config, samples: Vec<Sample>) -> Vec<Sample> {
    if cfg.data.resize > 0 {
        samples
            .iter()
            .map(|s| data::resized(s, cfg.data.resize))
            .collect()
    } else {
        samples
    }
}

/// What the loader prepares for `epoch` (1-based) of a run with `cfg`.
pub(crate) fn epoch_plan(cfg: &Config, epoch: usize, augment: &data::Augment) -> EpochPlan {
    EpochPlan {
        seed: cfg.seed,
        epoch: epoch as u64,
        samples: cfg.data.samples_per_epoch,
        batch: cfg.data.batch_size,
        size: cfg.data.crop_size,
        fg_share: cfg.data.fg_crop_share,
        augment: augment.clone(),
        mean: cfg.model.mean,
        std: cfg.model.std,
        workers: cfg.data.workers,
    }
}

/// The training loss of one batch (forward in training mode; backward is the caller's).
pub(crate) fn batch_loss(
    net: &Net,
    loss_fn: &Loss,
    batch: &loader::Batch,
    size: usize,
    device: Device,
) -> Tensor {
    let (n, s) = (batch.n as i64, size as i64);
    let x = Tensor::from_slice(&batch.images)
        .view([n, 3, s, s])
        .to_device(device);
    let y = Tensor::from_slice(&batch.masks)
        .view([n, s, s])
        .to_device(device);
    loss_fn.forward(&net.forward_t(&x, true), &y)
}

/// Measured epoch costs of one `train` call, to predict what still fits in a time budget.
#[derive(Debug, Default)]
struct BudgetClock {
    /// Seconds of each finished epoch without its validation.
    train: Vec<f64>,
    /// Seconds of the last validation.
    val: Option<f64>,
}

impl BudgetClock {
    fn mean_train(&self) -> f64 {
        if self.train.is_empty() {
            0.0
        } else {
            self.train.iter().sum::<f64>() / self.train.len() as f64
        }
    }

    /// Whether another epoch fits after this one (`elapsed` into the call, its training took
    /// `train_now`), counting a validation for each: the next one may be the last.
    fn next_fits(&self, elapsed: Duration, train_now: Duration, budget: Duration) -> bool {
        let n = self.train.len() as f64;
        let t = (self.train.iter().sum::<f64>() + train_now.as_secs_f64()) / (n + 1.0);
        let v = self.val.unwrap_or(0.0);
        elapsed.as_secs_f64() + t + 2.0 * v <= budget.as_secs_f64()
    }

    /// How many more epochs fit in `remaining`, validating every `every` and after the last.
    fn epochs_fitting(&self, remaining: Duration, every: usize) -> usize {
        let (t, v, r) = (
            self.mean_train(),
            self.val.unwrap_or(0.0),
            remaining.as_secs_f64(),
        );
        let every = every.max(1);
        let cost = |j: usize| j as f64 * t + ((j / every) as f64 + 1.0).min(j as f64) * v;
        let mut j = (r / (t + v / every as f64).max(1e-6)).floor().min(1e6) as usize;
        while j > 0 && cost(j) > r {
            j -= 1;
        }
        j
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

fn metric_of(name: &str, s: &Summary, val_loss: Option<f64>) -> Option<f64> {
    match name {
        "dice_fg" => s.dice_fg(),
        "miou" => s.miou,
        "miou_fg" => s.miou_fg,
        "pixel_acc" => s.pixel_acc,
        "defect_recall" => s.defect_recall,
        _ => val_loss,
    }
}

/// The dataset path of a run config: absolute, or relative to the run folder.
pub fn resolve_dataset_path(run: &Path, dataset: &str) -> PathBuf {
    let p = Path::new(dataset);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        run.join(p)
    }
}

fn prepare_resume(opts: &TrainOptions) -> Result<(Option<Config>, Option<PathBuf>)> {
    let run = &opts.out;
    let cfg_path = run.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| TrainError::io(&cfg_path, e))?;
    let cfg = Config::from_toml(&text)
        .map_err(|e| TrainError::Config(format!("{}: {e}", cfg_path.display())))?;
    let state = run.join("checkpoints/last.state");
    if !state.exists() || !run.join("checkpoints/last.safetensors").exists() {
        // Killed before its first epoch finished: start over from the same config.
        return Ok((Some(cfg), None));
    }
    if !opts.set.is_empty() || opts.config_file.is_some() {
        return Err(TrainError::Config("--resume continues a run with its own config.toml; --set/--config do not apply (only --epochs)".into()));
    }
    Ok((Some(cfg), Some(state)))
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect())
}

/// Append a JSON line by rewriting the file atomically (it is small): a kill never leaves
/// half a line.
fn append_line(path: &Path, record: &Value) -> Result<()> {
    let mut lines = read_lines(path)?;
    lines.push(record.to_string());
    dataset::atomic_write(path, (lines.join("\n") + "\n").as_bytes())?;
    Ok(())
}

/// Drop metrics lines of epochs after `epoch` (written before a kill, never checkpointed).
fn truncate_metrics(path: &Path, epoch: usize) -> Result<()> {
    let lines: Vec<String> = read_lines(path)?
        .into_iter()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["epoch"].as_u64())
                .is_some_and(|e| e as usize <= epoch)
        })
        .collect();
    let text = if lines.is_empty() {
        String::new()
    } else {
        lines.join("\n") + "\n"
    };
    dataset::atomic_write(path, text.as_bytes())?;
    Ok(())
}

/// Results of validating on full images.
pub struct Validation {
    /// Accumulated metrics.
    pub acc: Accumulator,
    /// Mean pixel negative log-likelihood of the blended probabilities.
    pub loss: Option<f64>,
    /// Predicted class masks, one per image.
    pub preds: Vec<Vec<u8>>,
}

/// Predict each sample at full resolution (sliding window) and score it.
pub fn validate(
    net: &Net,
    cfg: &Config,
    samples: &[Sample],
    tiling: Tiling,
    device: Device,
) -> Validation {
    let mut acc = Accumulator::new(cfg.model.num_classes);
    let mut nll = 0.0;
    let mut count = 0.0;
    let mut preds = Vec::with_capacity(samples.len());
    for s in samples {
        let probs =
            infer::probabilities(net, &cfg.model, &s.rgb, s.width, s.height, tiling, device);
        let pred = infer::argmax(&probs, cfg.model.head);
        let (l, n) = pixel_nll(&probs, &s.mask, cfg.model.head);
        nll += l;
        count += n;
        acc.add(&s.mask, &pred, s.width);
        preds.push(pred);
    }
    Validation {
        acc,
        loss: (count > 0.0).then(|| nll / count),
        preds,
    }
}

/// Sum of -ln p(true class) over non-ignored pixels, and their count.
pub fn pixel_nll(probs: &Tensor, mask: &[u8], head: Head) -> (f64, f64) {
    let (h, w) = (probs.size()[1], probs.size()[2]);
    let target = Tensor::from_slice(mask).view([h, w]).to_kind(Kind::Int64);
    let valid = target.ne(crate::loss::IGNORE);
    let clean = target.where_scalarother(&valid, 0);
    let p = match head {
        Head::Softmax => probs.gather(0, &clean.unsqueeze(0), false).squeeze_dim(0),
        Head::Sigmoid => {
            let p1 = probs.squeeze_dim(0);
            let t = clean.to_kind(Kind::Float);
            &p1 * &t + (1.0 - &p1) * (1.0 - &t)
        }
    };
    let validf = valid.to_kind(Kind::Float);
    let l = (-(p.clamp_min(1e-7).log()) * &validf)
        .sum(Kind::Double)
        .double_value(&[]);
    (l, validf.sum(Kind::Double).double_value(&[]))
}
