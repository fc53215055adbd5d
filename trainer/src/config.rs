//! The training configuration: what users write in TOML (every key optional), `--set
//! key=value` overrides, and the resolution of every missing value from the dataset.
//!
//! Resolution works on TOML tables: the defaults chosen for this dataset are serialized to a
//! table, the user's table is merged over it, and the result is parsed strictly (unknown keys
//! are errors, so a typo never silently falls back to a default). The resolved config is what
//! the run folder's `config.toml` holds, so a run can be repeated from it alone.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Everything a training run needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The dataset folder (absolute, or relative to the run folder).
    pub dataset: String,
    /// Seed of every random choice (crops, augmentation, weight init, split).
    pub seed: u64,
    /// CPU threads libtorch uses (results are reproducible for one thread count).
    pub threads: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Mixed precision (autocast) for the training forward pass on CUDA; ignored on CPU.
    #[serde(default)]
    pub amp: bool,
    /// Number of epochs (the learning-rate schedule spans them).
    pub epochs: usize,
    /// Epochs at the start during which the pretrained encoder (`vgg.*` of `unet-vgg16`,
    /// `encoder.*` of `unet`) is frozen, so a new decoder and head settle before the encoder's
    /// weights move (0 = never frozen).
    #[serde(default)]
    pub freeze_encoder_epochs: usize,
    /// The network.
    pub model: ModelConfig,
    /// The loss.
    pub loss: LossConfig,
    /// Optimizer and learning-rate schedule.
    pub optim: OptimConfig,
    /// Batches, crops and augmentation.
    pub data: DataConfig,
    /// Validation, best checkpoint and early stopping.
    pub val: ValConfig,
}

/// Upsampling in the UNet decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsample {
    /// Bilinear interpolation (no parameters).
    Bilinear,
    /// 2×2 transposed convolution with stride 2.
    Transposed,
}

/// Normalization layer after each convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// BatchNorm: fine for batches of 8 and more; unstable for 1–2.
    Batch,
    /// GroupNorm (8 groups): independent of the batch size.
    Group,
    /// InstanceNorm with affine parameters.
    Instance,
}

/// Output head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// One channel per class, softmax (any number of classes).
    Softmax,
    /// One channel, sigmoid: binary data only (background + one class).
    Sigmoid,
}

/// How input pixels are normalized before the network sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// `(x/255 - mean) / std` with the training images' own mean and std.
    #[default]
    Dataset,
    /// torchvision's ImageNet mean and std, what ImageNet-pretrained encoders saw.
    Imagenet,
    /// `x/255` only: pixels in [0, 1].
    None,
}

impl Normalize {
    /// The mean and std this normalization fixes (`None` for `dataset`).
    pub fn fixed(self) -> Option<([f32; 3], [f32; 3])> {
        match self {
            Normalize::Dataset => None,
            Normalize::Imagenet => Some(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])),
            Normalize::None => Some(([0.0; 3], [1.0; 3])),
        }
    }
}

/// The architecture named by [`ModelConfig::arch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch<'a> {
    /// The configurable UNet.
    UNet,
    /// UNet with a VGG16 encoder.
    UNetVgg16,
    /// A TorchScript model file.
    TorchScript(&'a str),
}

/// The model description stored in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture: `unet`, `unet-vgg16` (VGG16 encoder, weight-compatible with
    /// torchvision and the unet-pytorch repo) or `torchscript:PATH` (a model scripted or
    /// traced in Python, input N×3×H×W → logits N×C×H×W).
    pub arch: String,
    /// Input normalization: `dataset` (mean/std of the training images), `imagenet`
    /// (torchvision's ImageNet mean/std) or `none` (pixels in [0, 1], what unet-pytorch's
    /// VGG weights expect); sets `mean` and `std`.
    #[serde(default)]
    pub normalize: Normalize,
    /// Weights to start from: a `.safetensors` file (e.g. from `segkit import-weights`) or a
    /// PyTorch `.pth` state dict; tensors whose name and shape fit are loaded, the rest keep
    /// their initialization, and the log says which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    /// Channels of the first level (doubled at each level down).
    pub base: i64,
    /// Number of down-sampling steps; inputs are padded to a multiple of 2^depth.
    pub depth: usize,
    /// Decoder upsampling.
    pub up: Upsample,
    /// Normalization layer.
    pub norm: Norm,
    /// Output head.
    pub head: Head,
    /// Number of classes including background.
    pub num_classes: usize,
    /// Class names, index = class id.
    pub class_names: Vec<String>,
    /// Per-channel mean of the input in [0, 1] (from the training images).
    pub mean: [f32; 3],
    /// Per-channel standard deviation of the input in [0, 1].
    pub std: [f32; 3],
}

impl ModelConfig {
    /// Channels of the network output: 1 for a sigmoid head, the class count otherwise.
    pub fn out_channels(&self) -> i64 {
        match self.head {
            Head::Sigmoid => 1,
            Head::Softmax => self.num_classes as i64,
        }
    }
    /// Inputs are padded to a multiple of this.
    pub fn multiple(&self) -> i64 {
        1 << self.depth
    }
    /// The architecture, parsed from `arch`.
    pub fn arch_kind(&self) -> Result<Arch<'_>> {
        match self.arch.as_str() {
            "unet" => Ok(Arch::UNet),
            "unet-vgg16" => Ok(Arch::UNetVgg16),
            a => match a.strip_prefix("torchscript:") {
                Some(p) if !p.is_empty() => Ok(Arch::TorchScript(p)),
                _ => Err(TrainError::Config(format!(
                    "model.arch = {a:?}: use \"unet\", \"unet-vgg16\" or \"torchscript:PATH\" (a model file from torch.jit.script/trace)"
                ))),
            },
        }
    }
}

/// Class weights as written by users: `"auto"`, `"none"` or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Weights {
    /// `auto` (median frequency from the dataset) or `none` (all ones).
    Named(String),
    /// One weight per class.
    List(Vec<f32>),
}

/// The loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Terms with optional weights: `ce`, `bce`, `dice`, `focal`, `tversky`, `lovasz`, e.g.
    /// `ce+dice` or `ce+0.5*lovasz`.
    pub name: String,
    /// Per-class weights for ce/bce/focal; resolved to a list.
    pub class_weights: Weights,
    /// Whether Dice and Tversky include the background class.
    pub dice_background: bool,
    /// Smoothing added to Dice/Tversky numerator and denominator.
    pub smooth: f64,
    /// Focal loss γ.
    pub focal_gamma: f64,
    /// Focal loss per-class α; empty = the class weights.
    pub focal_alpha: Vec<f32>,
    /// Tversky α (weight of false positives).
    pub tversky_alpha: f64,
    /// Tversky β (weight of false negatives).
    pub tversky_beta: f64,
}

/// Optimizer kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// Adam with L2 weight decay added to the gradient.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
    /// SGD with momentum (optionally Nesterov).
    Sgd,
}

/// Learning-rate schedule after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant learning rate.
    Constant,
    /// Multiply by `step_gamma` every `step_epochs` epochs.
    Step,
    /// Cosine from `lr` to `min_lr` over the run.
    Cosine,
    /// `(1 - t)^poly_power` decay over the run.
    Poly,
}

/// Optimizer and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Optimizer.
    pub name: OptimKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Adam β1, β2.
    pub betas: [f64; 2],
    /// Adam ε.
    pub eps: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// SGD Nesterov momentum.
    pub nesterov: bool,
    /// Schedule after warm-up.
    pub schedule: Schedule,
    /// Optimizer steps of linear warm-up from lr/100 to lr.
    pub warmup_steps: usize,
    /// `step` schedule: epochs between decays.
    pub step_epochs: usize,
    /// `step` schedule: decay factor.
    pub step_gamma: f64,
    /// `poly` schedule: power.
    pub poly_power: f64,
    /// Final learning rate of cosine/poly.
    pub min_lr: f64,
    /// Gradient accumulation: batches per optimizer step (effective batch = batch × this).
    pub accum_steps: usize,
    /// Clip the global gradient norm to this (0 = off).
    pub clip_grad_norm: f64,
}

/// Batches, crops and augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Split trained on (`ImageSets/Segmentation/<name>.txt`).
    pub train_split: String,
    /// Split validated on.
    pub val_split: String,
    /// Share of images held out for validation when the dataset has no split files.
    pub val_share: f64,
    /// Side of the square training crops (a multiple of 2^depth).
    pub crop_size: usize,
    /// Resize every image (and mask) to this square side before training and prediction,
    /// then predictions back to full size: the "naive" recipe, shown for comparison.
    /// 0 = off (train on crops at full resolution).
    pub resize: usize,
    /// Crops per batch.
    pub batch_size: usize,
    /// Crops per epoch.
    pub samples_per_epoch: usize,
    /// Share of crops centred on a foreground pixel (small defects are never starved).
    pub fg_crop_share: f64,
    /// Background threads preparing batches.
    pub workers: usize,
    /// Online augmentation: `default` (segkit-augment's pipeline for defects: flips, right
    /// angles, mild affine, brightness/contrast, light noise/blur), `flips` (the 8
    /// right-angle symmetries only), `none`, or a pipeline file (TOML or albumentations JSON).
    pub augment: String,
}

/// Validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValConfig {
    /// Sliding-window tile side.
    pub tile: usize,
    /// Overlap between neighbouring tiles (share of the tile, 0 ≤ overlap < 1).
    pub overlap: f64,
    /// Blending of overlapping tiles: `gaussian` or `linear` (uniform average).
    pub blend: String,
    /// Tiles per forward pass.
    pub batch: usize,
    /// Metric choosing the best checkpoint: `dice_fg`, `miou`, `miou_fg`, `pixel_acc`,
    /// `defect_recall`, or `val_loss` (lower is better).
    pub metric: String,
    /// Stop after this many validated epochs without improvement (0 = never).
    pub patience: usize,
    /// Validate every N epochs (and always after the last): full-resolution validation can
    /// dwarf a short epoch. Only validated epochs can become the best checkpoint.
    #[serde(default = "one")]
    pub every: usize,
}

fn one() -> usize {
    1
}

/// What the dataset says about itself, for the defaults.
#[derive(Debug, Clone)]
pub struct DatasetFacts {
    /// The dataset folder as it should be written to config.toml.
    pub dataset: String,
    /// Class names.
    pub class_names: Vec<String>,
    /// Training images.
    pub n_train: usize,
    /// Smallest image side among training images.
    pub min_side: usize,
    /// Median defect size (square root of the instance area), if any.
    pub median_defect_side: Option<usize>,
    /// Class weights by median frequency.
    pub auto_weights: Vec<f32>,
    /// Input mean per channel.
    pub mean: [f32; 3],
    /// Input standard deviation per channel.
    pub std: [f32; 3],
}

/// Read a config file into a table (the user's partial config).
pub fn read_table(path: &std::path::Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    toml::from_str(&text).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
}

/// Apply a `key=value` override (dotted keys, TOML values; bare words are strings).
pub fn apply_set(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (key, value) = assignment.split_once('=').ok_or_else(|| {
        TrainError::Config(format!(
            "--set {assignment:?}: expected key=value, e.g. optim.lr=3e-4"
        ))
    })?;
    let key = key.trim();
    let value = value.trim();
    let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(value.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(TrainError::Config(format!(
            "--set {assignment:?}: empty key part"
        )));
    }
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| {
            TrainError::Config(format!("--set {assignment:?}: {p} is not a table"))
        })?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), parsed);
    Ok(())
}

/// The value at a dotted key of a user table, if present and of the right type.
pub fn peek<T: serde::de::DeserializeOwned>(table: &toml::Table, key: &str) -> Option<T> {
    let mut cur = table;
    let parts: Vec<&str> = key.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = cur.get(*p)?.as_table()?;
    }
    cur.get(parts[parts.len() - 1])?.clone().try_into().ok()
}

fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn round_down(x: usize, m: usize) -> usize {
    (x / m * m).max(m)
}

fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

impl Config {
    /// Resolve every setting: the user's table over defaults chosen from `facts`.
    pub fn resolve(facts: &DatasetFacts, user: &toml::Table) -> Result<Config> {
        let defaults = Config::defaults(facts, user);
        let mut table = toml::Table::try_from(&defaults).expect("config serializes");
        merge(&mut table, user);
        let mut cfg: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(e.message().to_string()))?;
        cfg.resolve_weights(facts)?;
        cfg.resolve_model_files(user)?;
        if !["none", "flips", "default"].contains(&cfg.data.augment.as_str()) {
            // A pipeline file: absolute, so a resumed run finds it from anywhere.
            if let Ok(p) = std::fs::canonicalize(&cfg.data.augment) {
                cfg.data.augment = p.to_string_lossy().into_owned();
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The defaults for this dataset, given the user's choices of head, optimizer, depth and crop.
    pub fn defaults(facts: &DatasetFacts, user: &toml::Table) -> Config {
        let c = facts.class_names.len();
        let head = peek::<Head>(user, "model.head").unwrap_or(Head::Softmax);
        let optim = peek::<OptimKind>(user, "optim.name").unwrap_or(OptimKind::Adamw);
        let depth = peek::<usize>(user, "model.depth").unwrap_or(4);
        let epochs = peek::<usize>(user, "epochs").unwrap_or(50);
        let arch = peek::<String>(user, "model.arch").unwrap_or_else(|| "unet".into());
        // unet-pytorch's VGG weights were trained on pixels in [0, 1]; everything else
        // normalizes with the dataset's own statistics.
        let normalize =
            peek::<Normalize>(user, "model.normalize").unwrap_or(if arch == "unet-vgg16" {
                Normalize::None
            } else {
                Normalize::Dataset
            });
        let (mean, std) = normalize.fixed().unwrap_or((facts.mean, facts.std));
        let m = 1usize << depth;
        // Crops: big enough for a defect and its surroundings (4× its size), at least 128
        // and at most 256 px so a CPU step stays short; never larger than the images.
        let want = facts
            .median_defect_side
            .map(|s| round_up(4 * s, 32))
            .unwrap_or(256)
            .clamp(128, 256);
        let resize = peek::<usize>(user, "data.resize").unwrap_or(0);
        let crop = peek::<usize>(user, "data.crop_size").unwrap_or_else(|| {
            if resize > 0 {
                resize
            } else {
                round_down(want.min(facts.min_side), m)
            }
        });
        // About as many pixels per batch as 8 crops of 128², never fewer than 2 crops.
        let batch = ((8 * 128 * 128) / (crop * crop)).clamp(2, 16);
        let batch = peek::<usize>(user, "data.batch_size").unwrap_or(batch);
        // Large photos hold many crops: take up to 4 per image an epoch, so an epoch's
        // training is not dwarfed by its full-resolution validation.
        let per_image = ((facts.min_side * facts.min_side) / (crop * crop).max(1)).clamp(1, 4);
        let samples = (facts.n_train * per_image).max(8 * batch).max(1);
        let spe = peek::<usize>(user, "data.samples_per_epoch").unwrap_or(samples);
        let steps_per_epoch = spe.div_ceil(batch).max(1);
        Config {
            dataset: facts.dataset.clone(),
            seed: 0,
            threads: 0,
            device: "auto".into(),
            amp: false,
            epochs,
            freeze_encoder_epochs: 0,
            model: ModelConfig {
                arch,
                normalize,
                pretrained: None,
                base: 32,
                depth,
                up: Upsample::Bilinear,
                norm: Norm::Group,
                head,
                num_classes: c,
                class_names: facts.class_names.clone(),
                mean,
                std,
            },
            loss: LossConfig {
                name: match head {
                    Head::Softmax => "ce+dice".into(),
                    Head::Sigmoid => "bce+dice".into(),
                },
                class_weights: Weights::Named("auto".into()),
                dice_background: false,
                smooth: 1.0,
                focal_gamma: 2.0,
                focal_alpha: vec![],
                tversky_alpha: 0.3,
                tversky_beta: 0.7,
            },
            optim: OptimConfig {
                name: optim,
                lr: if optim == OptimKind::Sgd { 0.01 } else { 1e-3 },
                weight_decay: 1e-4,
                betas: [0.9, 0.999],
                eps: 1e-8,
                momentum: 0.9,
                nesterov: true,
                schedule: Schedule::Cosine,
                warmup_steps: steps_per_epoch.min(100),
                step_epochs: (epochs / 3).max(1),
                step_gamma: 0.1,
                poly_power: 0.9,
                min_lr: 0.0,
                accum_steps: 1,
                clip_grad_norm: 0.0,
            },
            data: DataConfig {
                train_split: "train".into(),
                val_split: "val".into(),
                val_share: 0.2,
                crop_size: crop,
                resize,
                batch_size: batch,
                samples_per_epoch: spe,
                fg_crop_share: 0.5,
                workers: 2,
                augment: "default".into(),
            },
            val: ValConfig {
                tile: round_up(crop.max(256), m),
                overlap: 0.25,
                blend: "gaussian".into(),
                batch: 2,
                metric: "dice_fg".into(),
                patience: 0,
                every: 1,
            },
        }
    }

    /// Model files (a TorchScript model, pretrained weights) become absolute paths, so a
    /// resumed run finds them from anywhere; a fixed normalization sets mean and std.
    fn resolve_model_files(&mut self, user: &toml::Table) -> Result<()> {
        let absolute = |p: &str, key: &str| -> Result<String> {
            std::fs::canonicalize(p)
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| TrainError::Config(format!("{key}: {p}: {e}")))
        };
        if let Arch::TorchScript(p) = self.model.arch_kind()? {
            self.model.arch = format!("torchscript:{}", absolute(p, "model.arch")?);
        }
        if let Some(p) = &self.model.pretrained {
            self.model.pretrained = Some(absolute(p, "model.pretrained")?);
        }
        if let Some((mean, std)) = self.model.normalize.fixed() {
            if peek::<toml::Value>(user, "model.mean").is_some()
                || peek::<toml::Value>(user, "model.std").is_some()
            {
                return Err(TrainError::Config(format!(
                    "model.mean/model.std are set, but model.normalize = \"{}\" fixes them: set model.normalize = \"dataset\" to use your own",
                    format!("{:?}", self.model.normalize).to_lowercase()
                )));
            }
            self.model.mean = mean;
            self.model.std = std;
        }
        Ok(())
    }

    fn resolve_weights(&mut self, facts: &DatasetFacts) -> Result<()> {
        let c = self.model.num_classes;
        let list = match &self.loss.class_weights {
            Weights::Named(n) if n == "auto" => facts.auto_weights.clone(),
            Weights::Named(n) if n == "none" => vec![1.0; c],
            Weights::Named(n) => {
                return Err(TrainError::Config(format!(
                    "loss.class_weights = {n:?}: use \"auto\", \"none\" or a list of {c} numbers"
                )))
            }
            Weights::List(l) => l.clone(),
        };
        self.loss.class_weights = Weights::List(list);
        Ok(())
    }

    /// The resolved class weights (after [`Config::resolve`]).
    pub fn class_weights(&self) -> Vec<f32> {
        match &self.loss.class_weights {
            Weights::List(l) => l.clone(),
            Weights::Named(_) => vec![1.0; self.model.num_classes],
        }
    }

    /// Check the values that can be checked without the data; messages name the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        let c = self.model.num_classes;
        let m = self.model.multiple() as usize;
        let arch = self.model.arch_kind()?;
        if arch == Arch::UNetVgg16 && self.model.depth != 4 {
            return bad(format!(
                "model.depth = {}: unet-vgg16 always pools 4 times; leave model.depth at 4",
                self.model.depth
            ));
        }
        if self.freeze_encoder_epochs > 0 && matches!(arch, Arch::TorchScript(_)) {
            return bad("freeze_encoder_epochs: segkit does not know which part of a torchscript model is its encoder; use it with unet-vgg16 or unet".into());
        }
        if c < 2 {
            return bad(format!(
                "model.num_classes = {c}: a segmentation needs background and at least one class"
            ));
        }
        if self.model.class_names.len() != c {
            return bad(format!(
                "model.class_names has {} names but num_classes = {c}",
                self.model.class_names.len()
            ));
        }
        if self.model.head == Head::Sigmoid && c != 2 {
            return bad(format!(
                "model.head = \"sigmoid\" gives one output channel, which fits background + one class, \
                 but the dataset has {c} classes: use model.head = \"softmax\""
            ));
        }
        if self.model.base < 1 || self.model.depth > 7 {
            return bad("model.base must be ≥ 1 and model.depth ≤ 7".into());
        }
        if self.model.norm == Norm::Group && self.model.base % 8 != 0 {
            return bad(format!(
                "model.norm = \"group\" uses 8 groups: model.base ({}) must be a multiple of 8",
                self.model.base
            ));
        }
        let terms = crate::loss::parse_terms(&self.loss.name)?;
        for (_, t) in &terms {
            use crate::loss::Term;
            match (t, self.model.head) {
                (Term::Ce, Head::Sigmoid) => {
                    return bad("loss \"ce\" needs a softmax head (one channel per class); with model.head = \"sigmoid\" use \"bce\" (e.g. loss.name = \"bce+dice\")".into())
                }
                (Term::Bce, Head::Softmax) => {
                    return bad(format!("loss \"bce\" needs a sigmoid head (one output channel), but model.head = \"softmax\" gives {c}: use \"ce\" (e.g. loss.name = \"ce+dice\") or set model.head = \"sigmoid\""))
                }
                _ => {}
            }
        }
        let w = self.class_weights();
        if w.len() != c || w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return bad(format!(
                "loss.class_weights: need {c} non-negative numbers (one per class), got {w:?}"
            ));
        }
        if !self.loss.focal_alpha.is_empty() && self.loss.focal_alpha.len() != c {
            return bad(format!(
                "loss.focal_alpha: need {c} numbers or an empty list"
            ));
        }
        if self.data.resize % m != 0 {
            return bad(format!(
                "data.resize = {} must be 0 (off) or a multiple of 2^depth = {m}",
                self.data.resize
            ));
        }
        if self.data.crop_size == 0 || self.data.crop_size % m != 0 {
            return bad(format!(
                "data.crop_size = {} must be a positive multiple of 2^depth = {m}",
                self.data.crop_size
            ));
        }
        if self.val.tile == 0 || self.val.tile % m != 0 {
            return bad(format!(
                "val.tile = {} must be a positive multiple of 2^depth = {m}",
                self.val.tile
            ));
        }
        if !(0.0..0.95).contains(&self.val.overlap) {
            return bad(format!(
                "val.overlap = {} must be in [0, 0.95)",
                self.val.overlap
            ));
        }
        if !["gaussian", "linear"].contains(&self.val.blend.as_str()) {
            return bad(format!(
                "val.blend = {:?}: use \"gaussian\" or \"linear\"",
                self.val.blend
            ));
        }
        if ![
            "dice_fg",
            "miou",
            "miou_fg",
            "pixel_acc",
            "defect_recall",
            "val_loss",
        ]
        .contains(&self.val.metric.as_str())
        {
            return bad(format!("val.metric = {:?}: use dice_fg, miou, miou_fg, pixel_acc, defect_recall or val_loss", self.val.metric));
        }
        if self.data.batch_size == 0
            || self.val.batch == 0
            || self.optim.accum_steps == 0
            || self.epochs == 0
        {
            return bad(
                "data.batch_size, val.batch, optim.accum_steps and epochs must be ≥ 1".into(),
            );
        }
        if self.val.every == 0 {
            return bad("val.every must be ≥ 1 (validate every N epochs)".into());
        }
        if self.data.samples_per_epoch == 0 {
            return bad("data.samples_per_epoch must be ≥ 1".into());
        }
        if !(0.0..=1.0).contains(&self.data.fg_crop_share) {
            return bad("data.fg_crop_share must be in [0, 1]".into());
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return bad(format!("optim.lr = {} must be positive", self.optim.lr));
        }
        crate::data::Augment::from_config(&self.data.augment)?;
        parse_device(&self.device)?;
        Ok(())
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serializes")
    }

    /// Parse a resolved config (a run's `config.toml`).
    pub fn from_toml(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| TrainError::Config(e.to_string()))
    }
}

/// Parse `auto|cpu|cuda|cuda:N`.
pub fn parse_device(s: &str) -> Result<tch::Device> {
    match s {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => Ok(tch::Device::Cuda(0)),
        _ => match s
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => Ok(tch::Device::Cuda(i)),
            None => Err(TrainError::Config(format!(
                "device = {s:?}: use auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Parse a duration like `15m`, `90s`, `1h30m`, `2h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let err = || TrainError::Config(format!("time budget {s:?}: use e.g. 90s, 15m, 1h30m"));
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return if secs >= 0.0 {
            Ok(std::time::Duration::from_secs_f64(secs))
        } else {
            Err(err())
        };
    }
    let mut total = 0.0;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let n: f64 = num.parse().map_err(|_| err())?;
        num.clear();
        total += n * match ch {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => return Err(err()),
        };
    }
    if !num.is_empty() {
        return Err(err());
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> DatasetFacts {
        DatasetFacts {
            dataset: "/data/ds".into(),
            class_names: vec!["_background_".into(), "scratch".into()],
            n_train: 10,
            min_side: 64,
            median_defect_side: Some(10),
            auto_weights: vec![0.5, 4.0],
            mean: [0.5; 3],
            std: [0.25; 3],
        }
    }

    #[test]
    fn defaults_resolve_from_dataset_and_round_trip() {
        let cfg = Config::resolve(&facts(), &toml::Table::new()).unwrap();
        assert_eq!(
            cfg.data.crop_size, 64,
            "never larger than the smallest image"
        );
        assert_eq!(cfg.loss.class_weights, Weights::List(vec![0.5, 4.0]));
        assert_eq!(cfg.model.num_classes, 2);
        let back = Config::from_toml(&cfg.to_toml()).unwrap();
        assert_eq!(back, cfg);
        assert!(cfg.to_toml().starts_with("dataset = \"/data/ds\""));
    }

    #[test]
    fn set_overrides_and_dependent_defaults() {
        let mut t = toml::Table::new();
        apply_set(&mut t, "model.head=sigmoid").unwrap();
        apply_set(&mut t, "optim.lr=3e-4").unwrap();
        apply_set(&mut t, "loss.class_weights=[1, 2]").unwrap();
        let cfg = Config::resolve(&facts(), &t).unwrap();
        assert_eq!(cfg.model.head, Head::Sigmoid);
        assert_eq!(cfg.loss.name, "bce+dice", "loss default follows the head");
        assert_eq!(cfg.optim.lr, 3e-4);
        assert_eq!(cfg.class_weights(), vec![1.0, 2.0]);
    }

    #[test]
    fn mistakes_name_the_fix() {
        let check = |set: &str, want: &str| {
            let mut t = toml::Table::new();
            apply_set(&mut t, set).unwrap();
            let err = Config::resolve(&facts(), &t).unwrap_err().to_string();
            assert!(err.contains(want), "{set}: {err}");
        };
        check("loss.name=bce", "set model.head = \"sigmoid\"");
        check("model.hed=softmax", "unknown field `hed`");
        check("data.crop_size=50", "multiple of 2^depth");
        check("loss.class_weights=[1]", "need 2 non-negative numbers");
        check("device=gpu", "use auto, cpu, cuda or cuda:N");
        check(
            "data.augment=nonexistent.toml",
            "use none, flips, default or a pipeline file",
        );
        let mut t = toml::Table::new();
        apply_set(&mut t, "model.head=sigmoid").unwrap();
        apply_set(&mut t, "loss.name=ce").unwrap();
        let err = Config::resolve(&facts(), &t).unwrap_err().to_string();
        assert!(err.contains("use \"bce\""), "{err}");
    }

    #[test]
    fn architectures_and_normalization() {
        let resolve = |sets: &[&str]| {
            let mut t = toml::Table::new();
            for s in sets {
                apply_set(&mut t, s).unwrap();
            }
            Config::resolve(&facts(), &t)
        };
        let unet = resolve(&[]).unwrap();
        assert_eq!(unet.model.normalize, Normalize::Dataset);
        assert_eq!(unet.model.mean, [0.5; 3], "the dataset's statistics");
        let vgg = resolve(&["model.arch=unet-vgg16"]).unwrap();
        assert_eq!(vgg.model.normalize, Normalize::None);
        assert_eq!((vgg.model.mean, vgg.model.std), ([0.0; 3], [1.0; 3]));
        let imagenet = resolve(&["model.arch=unet-vgg16", "model.normalize=imagenet"]).unwrap();
        assert_eq!(imagenet.model.std, [0.229, 0.224, 0.225]);
        let back = Config::from_toml(&imagenet.to_toml()).unwrap();
        assert_eq!(back, imagenet);

        let err = |sets: &[&str]| resolve(sets).unwrap_err().to_string();
        assert!(err(&["model.arch=resnet"]).contains("torchscript:PATH"));
        assert!(err(&["model.arch=unet-vgg16", "model.depth=3"]).contains("leave model.depth at 4"));
        assert!(
            err(&["model.normalize=imagenet", "model.mean=[0.1, 0.1, 0.1]"])
                .contains("set model.normalize = \"dataset\"")
        );
        let missing = err(&["model.arch=torchscript:/no/such/model.pt"]);
        assert!(missing.contains("/no/such/model.pt"), "{missing}");
        assert!(
            err(&["model.pretrained=/no/such/w.safetensors"]).contains("/no/such/w.safetensors")
        );

        // Paths become absolute, so a resumed run finds them from anywhere.
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.pt");
        std::fs::write(&model, b"x").unwrap();
        let rel = pathdiff(&model);
        let cfg = resolve(&[&format!("model.arch=torchscript:{rel}")]);
        // The file is not a real TorchScript model, but resolution only checks the path.
        let cfg = cfg.unwrap();
        assert_eq!(
            cfg.model.arch,
            format!(
                "torchscript:{}",
                std::fs::canonicalize(&model).unwrap().display()
            )
        );
        assert!(err(&[
            &format!("model.arch=torchscript:{rel}"),
            "freeze_encoder_epochs=2"
        ])
        .contains("freeze_encoder_epochs"));
    }

    /// `path` relative to the current directory when possible (else as it is).
    fn pathdiff(path: &std::path::Path) -> String {
        let cwd = std::env::current_dir().unwrap();
        let up = cwd.components().count() - 1;
        let mut s = "../".repeat(up);
        s.push_str(path.to_str().unwrap().trim_start_matches('/'));
        s
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert!(parse_duration("15 minutes").is_err());
    }
}
