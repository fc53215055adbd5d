//! Reading a run folder (the contract's "Run folder"), tolerantly: a missing optional file or
//! metric field becomes a note on the page, never an error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use segkit_labelme::dataset::{Dataset, Manifest};
use serde_json::Value;

use crate::error::{ReportError, Result};

/// True when `path` looks like a run folder: it has `metrics.jsonl` or `config.toml`.
pub fn is_run_dir(path: &Path) -> bool {
    path.join("metrics.jsonl").is_file() || path.join("config.toml").is_file()
}

/// One line of `metrics.jsonl`. Every field is optional: the contract says missing values
/// are absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Epoch {
    /// Epoch number (the line number when the line has none).
    pub epoch: f64,
    /// Optimizer step.
    pub step: Option<f64>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Seconds the epoch took.
    pub seconds: Option<f64>,
    /// Mean training loss.
    pub train_loss: Option<f64>,
    /// Validation loss.
    pub val_loss: Option<f64>,
    /// Mean IoU over all classes.
    pub miou: Option<f64>,
    /// Mean IoU over foreground classes.
    pub miou_fg: Option<f64>,
    /// Pixel accuracy.
    pub pixel_acc: Option<f64>,
    /// IoU per class id.
    pub iou: BTreeMap<u32, f64>,
    /// Dice per class id.
    pub dice: BTreeMap<u32, f64>,
    /// Precision per class id.
    pub precision: BTreeMap<u32, f64>,
    /// Recall per class id.
    pub recall: BTreeMap<u32, f64>,
    /// Share of ground-truth defects found.
    pub defect_recall: Option<f64>,
    /// Predicted defects that overlap no ground truth, per image.
    pub false_defects_per_image: Option<f64>,
    /// A foreground Dice written directly by the trainer (`dice_fg`/`fg_dice`).
    pub dice_fg_field: Option<f64>,
}

impl Epoch {
    /// Foreground mean Dice: the mean of per-class Dice over classes other than 0, or the
    /// trainer's own `dice_fg` field when the per-class values are absent.
    pub fn dice_fg(&self) -> Option<f64> {
        let fg: Vec<f64> = self
            .dice
            .iter()
            .filter(|(k, _)| **k != 0)
            .map(|(_, v)| *v)
            .collect();
        if fg.is_empty() {
            self.dice_fg_field
        } else {
            Some(fg.iter().sum::<f64>() / fg.len() as f64)
        }
    }

    /// The value of a named metric (as named in `metrics.jsonl`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "miou" => self.miou,
            "miou_fg" => self.miou_fg,
            "pixel_acc" => self.pixel_acc,
            "dice_fg" | "fg_dice" | "dice" | "mean_dice_fg" => self.dice_fg(),
            "val_loss" => self.val_loss,
            "train_loss" => self.train_loss,
            "defect_recall" => self.defect_recall,
            "false_defects_per_image" => self.false_defects_per_image,
            _ => None,
        }
    }
}

/// `confusion.json`: rows are truth, columns prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    /// Class names of rows and columns.
    pub classes: Vec<String>,
    /// Pixel counts.
    pub matrix: Vec<Vec<f64>>,
}

/// `lr_find.json`: loss by learning rate, and the suggested rate.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFind {
    /// (lr, loss) points in the order tried.
    pub points: Vec<(f64, f64)>,
    /// The suggested learning rate, when written.
    pub suggested: Option<f64>,
}

/// Everything a report needs from one run folder.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run folder.
    pub root: PathBuf,
    /// The folder's name.
    pub name: String,
    /// `config.toml`, when present and valid.
    pub config: Option<toml::Table>,
    /// The config flattened to `dotted.key = value` pairs, in file order.
    pub config_flat: Vec<(String, String)>,
    /// The manifest: the run's `dataset.json` copy, else the dataset folder's.
    pub manifest: Option<Manifest>,
    /// The dataset folder named by the config, when it exists and opens.
    pub dataset: Option<Dataset>,
    /// The dataset folder as the config names it.
    pub dataset_ref: Option<String>,
    /// `metrics.jsonl` lines.
    pub epochs: Vec<Epoch>,
    /// `confusion.json`.
    pub confusion: Option<Confusion>,
    /// `lr_find.json`.
    pub lr_find: Option<LrFind>,
    /// `log.txt`.
    pub log: Option<String>,
    /// `defaults.toml`: the trainer's defaults for this dataset, when the trainer wrote them.
    pub defaults: Option<toml::Table>,
    /// Stems of `predictions/<stem>.png`, sorted.
    pub predictions: Vec<String>,
    /// What is missing or unreadable, for the page.
    pub notes: Vec<String>,
}

impl RunData {
    /// Read the run folder at `root`. Fails only when `root` is not a run folder at all;
    /// every other problem becomes a note.
    pub fn load(root: &Path) -> Result<RunData> {
        if !root.is_dir() {
            return Err(ReportError::invalid(root, "run folder does not exist"));
        }
        if !is_run_dir(root) {
            return Err(ReportError::invalid(
                root,
                "not a run folder: it has neither metrics.jsonl nor config.toml",
            ));
        }
        let name = root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| root.display().to_string());
        let mut notes = Vec::new();

        let config = read_config(&root.join("config.toml"), &mut notes);
        let config_flat = config.as_ref().map(flatten).unwrap_or_default();
        let dataset_ref = config
            .as_ref()
            .and_then(|c| c.get("dataset"))
            .and_then(|v| v.as_str())
            .map(String::from);

        let dataset = match &dataset_ref {
            Some(d) => {
                let p = Path::new(d);
                let p = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    root.join(p)
                };
                match Dataset::open(&p) {
                    Ok(ds) => Some(ds),
                    Err(e) => {
                        notes.push(format!("dataset folder not available ({e}): images and ground truth are not shown"));
                        None
                    }
                }
            }
            None => {
                if config.is_some() {
                    notes.push(
                        "config.toml has no `dataset` key: images and ground truth are not shown"
                            .into(),
                    );
                }
                None
            }
        };

        let manifest_path = root.join("dataset.json");
        let manifest = if manifest_path.is_file() {
            match fs::read_to_string(&manifest_path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Manifest>(&t).map_err(|e| e.to_string()))
            {
                Ok(m) => Some(m),
                Err(e) => {
                    notes.push(format!("{}: unreadable ({e})", manifest_path.display()));
                    None
                }
            }
        } else {
            notes.push("dataset.json is missing from the run folder".into());
            None
        }
        .or_else(|| dataset.as_ref().map(|d| d.manifest.clone()));

        let class_names: Vec<String> = manifest
            .as_ref()
            .map(|m| m.class_names())
            .unwrap_or_default();
        let epochs = read_metrics(&root.join("metrics.jsonl"), &class_names, &mut notes);
        let confusion = read_confusion(&root.join("confusion.json"), &mut notes);
        let lr_find = read_lr_find(&root.join("lr_find.json"), &mut notes);
        let log = fs::read(root.join("log.txt"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if log.is_none() {
            notes.push("log.txt is missing".into());
        }
        let predictions = list_predictions(&root.join("predictions"), &mut notes);
        let defaults = fs::read_to_string(root.join("defaults.toml"))
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok());

        Ok(RunData {
            root: root.to_path_buf(),
            name,
            config,
            config_flat,
            manifest,
            dataset,
            dataset_ref,
            epochs,
            confusion,
            lr_find,
            log,
            defaults,
            predictions,
            notes,
        })
    }

    /// Class names: from the manifest, else from `confusion.json`, else `class k`.
    pub fn class_names(&self) -> Vec<String> {
        if let Some(m) = &self.manifest {
            return m.class_names();
        }
        if let Some(c) = &self.confusion {
            return c.classes.clone();
        }
        let n = self
            .epochs
            .iter()
            .flat_map(|e| e.dice.keys().chain(e.iou.keys()))
            .max()
            .map_or(0, |m| *m as usize + 1);
        (0..n).map(|k| format!("class {k}")).collect()
    }

    /// Class colours: from the manifest, else the VOC colour map.
    pub fn class_colors(&self) -> Vec<[u8; 3]> {
        let cmap = segkit_labelme::dataset::voc_colormap();
        let n = self.class_names().len();
        (0..n)
            .map(|k| {
                self.manifest
                    .as_ref()
                    .and_then(|m| m.classes.get(k))
                    .map_or(cmap[k % 256], |c| c.color)
            })
            .collect()
    }

    /// The metric that picks the best epoch: the config's `best_metric`/`monitor` when it
    /// names a metric we know, else foreground Dice, else mIoU, else val loss.
    pub fn best_metric(&self) -> &'static str {
        const KNOWN: [&str; 8] = [
            "dice_fg",
            "miou",
            "miou_fg",
            "pixel_acc",
            "val_loss",
            "defect_recall",
            "train_loss",
            "false_defects_per_image",
        ];
        for (k, v) in &self.config_flat {
            let last = k.rsplit('.').next().unwrap_or(k);
            if matches!(last, "best_metric" | "monitor" | "metric") {
                let v = v.trim_matches('"');
                let v = if matches!(v, "fg_dice" | "dice" | "mean_dice_fg") {
                    "dice_fg"
                } else {
                    v
                };
                if let Some(m) = KNOWN.iter().find(|m| **m == v) {
                    return m;
                }
            }
        }
        for m in ["dice_fg", "miou", "val_loss", "train_loss"] {
            if self.epochs.iter().any(|e| e.metric(m).is_some()) {
                return KNOWN.iter().find(|k| **k == m).expect("listed");
            }
        }
        "dice_fg"
    }

    /// Index into `epochs` of the best epoch by [`best_metric`](Self::best_metric).
    pub fn best_epoch(&self) -> Option<usize> {
        let metric = self.best_metric();
        let lower_better = lower_is_better(metric);
        let mut best: Option<(usize, f64)> = None;
        for (i, e) in self.epochs.iter().enumerate() {
            if let Some(v) = e.metric(metric).filter(|v| v.is_finite()) {
                let better = match best {
                    None => true,
                    Some((_, b)) => {
                        if lower_better {
                            v < b
                        } else {
                            v > b
                        }
                    }
                };
                if better {
                    best = Some((i, v));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// A flattened config value by its last key segment (e.g. `lr` finds `optim.lr`).
    pub fn config_value(&self, last: &str) -> Option<&str> {
        self.config_flat
            .iter()
            .find(|(k, _)| k == last || k.rsplit('.').next() == Some(last))
            .map(|(_, v)| v.as_str())
    }

    /// Total training time. segkit's trainer writes `seconds` as the time since the run
    /// started (strictly increasing): the last value is the total. Values that do not
    /// increase are read as per-epoch durations and summed.
    pub fn total_seconds(&self) -> Option<f64> {
        let s: Vec<f64> = self.epochs.iter().filter_map(|e| e.seconds).collect();
        if s.is_empty() {
            None
        } else if s.windows(2).all(|w| w[1] > w[0]) {
            s.last().copied()
        } else {
            Some(s.iter().sum())
        }
    }

    /// The device: the config's `device`, refined by a `device: …` line of `log.txt`.
    pub fn device(&self) -> Option<String> {
        if let Some(log) = &self.log {
            for line in log.lines() {
                let lower = line.to_ascii_lowercase();
                if let Some(pos) = lower.find("device") {
                    let rest = line[pos + "device".len()..].trim_start();
                    if let Some(rest) = rest.strip_prefix([':', '=']) {
                        let v = rest.trim().trim_matches('"');
                        if !v.is_empty() {
                            return Some(v.split_whitespace().next().unwrap_or(v).to_string());
                        }
                    }
                }
            }
        }
        self.config_value("device")
            .map(|v| v.trim_matches('"').to_string())
    }
}

/// Whether a smaller value of `metric` is better.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(
        metric,
        "val_loss" | "train_loss" | "false_defects_per_image"
    )
}

fn read_config(path: &Path, notes: &mut Vec<String>) -> Option<toml::Table> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => {
            notes.push("config.toml is missing".into());
            return None;
        }
    };
    match text.parse::<toml::Table>() {
        Ok(t) => Some(t),
        Err(e) => {
            notes.push(format!(
                "{}: invalid TOML ({})",
                path.display(),
                e.message()
            ));
            None
        }
    }
}

/// Flatten a TOML table into `a.b.c = value` pairs; values as TOML writes them (strings
/// without quotes).
pub fn flatten(table: &toml::Table) -> Vec<(String, String)> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => out.push((key, s.clone())),
                other => out.push((key, other.to_string())),
            }
        }
    }
    let mut out = Vec::new();
    walk("", table, &mut out);
    out
}

fn num(obj: &serde_json::Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

fn per_class(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    class_names: &[String],
) -> BTreeMap<u32, f64> {
    let mut out = BTreeMap::new();
    match obj.get(key) {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let id = k
                    .parse::<u32>()
                    .ok()
                    .or_else(|| class_names.iter().position(|n| n == k).map(|p| p as u32));
                if let (Some(id), Some(v)) = (id, v.as_f64().filter(|v| v.is_finite())) {
                    out.insert(id, v);
                }
            }
        }
        Some(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                if let Some(v) = v.as_f64().filter(|v| v.is_finite()) {
                    out.insert(i as u32, v);
                }
            }
        }
        _ => {}
    }
    out
}

/// Parse `metrics.jsonl`; a bad line becomes a note and is skipped.
pub fn parse_metrics(
    text: &str,
    class_names: &[String],
    path: &Path,
    notes: &mut Vec<String>,
) -> Vec<Epoch> {
    let mut epochs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let obj = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                notes.push(format!(
                    "{} line {}: not a JSON object, skipped",
                    path.display(),
                    i + 1
                ));
                continue;
            }
            Err(e) => {
                notes.push(format!(
                    "{} line {}: invalid JSON ({e}), skipped",
                    path.display(),
                    i + 1
                ));
                continue;
            }
        };
        epochs.push(Epoch {
            epoch: num(&obj, "epoch").unwrap_or(epochs.len() as f64 + 1.0),
            step: num(&obj, "step"),
            lr: num(&obj, "lr"),
            seconds: num(&obj, "seconds"),
            train_loss: num(&obj, "train_loss"),
            val_loss: num(&obj, "val_loss"),
            miou: num(&obj, "miou"),
            miou_fg: num(&obj, "miou_fg"),
            pixel_acc: num(&obj, "pixel_acc"),
            iou: per_class(&obj, "iou", class_names),
            dice: per_class(&obj, "dice", class_names),
            precision: per_class(&obj, "precision", class_names),
            recall: per_class(&obj, "recall", class_names),
            defect_recall: num(&obj, "defect_recall"),
            false_defects_per_image: num(&obj, "false_defects_per_image"),
            dice_fg_field: num(&obj, "dice_fg").or_else(|| num(&obj, "fg_dice")),
        });
    }
    epochs
}

fn read_metrics(path: &Path, class_names: &[String], notes: &mut Vec<String>) -> Vec<Epoch> {
    match fs::read(path) {
        Ok(bytes) => {
            let epochs = parse_metrics(&String::from_utf8_lossy(&bytes), class_names, path, notes);
            if epochs.is_empty() {
                notes.push("metrics.jsonl has no epochs yet".into());
            }
            epochs
        }
        Err(_) => {
            notes.push("metrics.jsonl is missing: no curves or metrics".into());
            Vec::new()
        }
    }
}

fn read_confusion(path: &Path, notes: &mut Vec<String>) -> Option<Confusion> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => {
            notes.push("confusion.json is missing: no confusion matrix".into());
            return None;
        }
    };
    let parsed = serde_json::from_str::<Value>(&text)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            let matrix: Vec<Vec<f64>> = v
                .get("matrix")
                .and_then(Value::as_array)
                .ok_or("no \"matrix\" array")?
                .iter()
                .map(|row| {
                    row.as_array()
                        .ok_or("a matrix row is not an array")?
                        .iter()
                        .map(|x| x.as_f64().ok_or("a matrix cell is not a number"))
                        .collect::<Result<Vec<f64>, _>>()
                })
                .collect::<Result<_, _>>()?;
            let n = matrix.len();
            if matrix.iter().any(|r| r.len() != n) {
                return Err(format!("matrix is not square ({n} rows)"));
            }
            let classes: Vec<String> = v
                .get("classes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|c| c.as_str().map_or_else(|| c.to_string(), String::from))
                        .collect()
                })
                .unwrap_or_else(|| (0..n).map(|k| format!("class {k}")).collect());
            if classes.len() != n {
                return Err(format!(
                    "{} class names for a {n}×{n} matrix",
                    classes.len()
                ));
            }
            Ok(Confusion { classes, matrix })
        });
    match parsed {
        Ok(c) => Some(c),
        Err(e) => {
            notes.push(format!(
                "{}: {e}; confusion matrix not shown",
                path.display()
            ));
            None
        }
    }
}

/// Parse `lr_find.json`. Accepted shapes: `{"lr": [...], "loss": [...]}` (also `lrs`/`losses`)
/// or `{"points": [{"lr": x, "loss": y}, ...]}`, each with an optional `suggested_lr`
/// (also `suggested`, `suggestion`).
pub fn parse_lr_find(v: &Value) -> Option<LrFind> {
    let arr = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(Value::as_array))
    };
    let mut points = Vec::new();
    if let (Some(lrs), Some(losses)) = (arr(&["lr", "lrs"]), arr(&["loss", "losses"])) {
        for (l, y) in lrs.iter().zip(losses) {
            if let (Some(l), Some(y)) = (l.as_f64(), y.as_f64()) {
                points.push((l, y));
            }
        }
    } else if let Some(pts) = arr(&["points", "curve"]) {
        for p in pts {
            if let (Some(l), Some(y)) = (
                p.get("lr").and_then(Value::as_f64),
                p.get("loss").and_then(Value::as_f64),
            ) {
                points.push((l, y));
            }
        }
    }
    points.retain(|(l, y)| *l > 0.0 && l.is_finite() && y.is_finite());
    let suggested = ["suggested_lr", "suggested", "suggestion"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_f64));
    (!points.is_empty()).then_some(LrFind { points, suggested })
}

fn read_lr_find(path: &Path, notes: &mut Vec<String>) -> Option<LrFind> {
    let text = fs::read_to_string(path).ok()?;
    match serde_json::from_str::<Value>(&text)
        .ok()
        .as_ref()
        .and_then(parse_lr_find)
    {
        Some(l) => Some(l),
        None => {
            notes.push(format!(
                "{}: no lr/loss points found, lr-find curve not shown",
                path.display()
            ));
            None
        }
    }
}

fn list_predictions(dir: &Path, notes: &mut Vec<String>) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        notes.push("predictions/ is missing: no prediction grid".into());
        return Vec::new();
    };
    let mut stems: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.starts_with('.'))
        .collect();
    stems.sort();
    stems
}
