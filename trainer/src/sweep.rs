//! Sweeps: one training run per combination of a grid of settings, each in its own run
//! folder, and an index (`sweep.json`) that `segkit compare --sweep` reads.
//!
//! The index is rewritten atomically after every run, so a killed sweep keeps its finished
//! runs; running the same sweep again skips them and resumes a run that was cut short
//! (`train --resume`), so a sweep is restartable at any point.
//!
//! Index format (version 1): `{"format": "segkit-sweep", "version": 1, "dataset": ...,
//! "grid": {key: [values]}, "runs": [{"dir": "000-loss=ce", "settings": {key: value},
//! "best": {"epoch", "metric", "value", "dice_fg"}, "epochs_done", "stop"}], "failed":
//! [{"dir", "settings", "error"}]}`; `dir` is relative to the index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use segkit_labelme::dataset;
use serde_json::{json, Value};

use crate::error::{Result, TrainError};
use crate::train::{self, Event, StopReason, TrainOptions};

/// One axis of the grid: a config key and the values to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The key as the user wrote it (`loss`, `optim.lr`, …); names runs and the index.
    pub key: String,
    /// The config key it sets (`loss` → `loss.name`).
    pub config_key: String,
    /// Values, as TOML (bare words are strings).
    pub values: Vec<String>,
}

/// Short keys accepted in a grid for the config keys users sweep most.
const ALIASES: &[(&str, &str)] = &[
    ("loss", "loss.name"),
    ("optim", "optim.name"),
    ("lr", "optim.lr"),
    ("batch_size", "data.batch_size"),
    ("class_weights", "loss.class_weights"),
    ("schedule", "optim.schedule"),
];

/// Parse `key=v1,v2,…`; commas inside `[...]`, `{...}` or quotes do not split, so
/// `loss.class_weights=auto,[1,5]` is two values.
pub fn parse_axis(spec: &str) -> Result<Axis> {
    let bad = |why: &str| {
        TrainError::Config(format!(
            "--grid {spec:?}: {why}; write key=value1,value2 (e.g. --grid optim.lr=1e-3,1e-4)"
        ))
    };
    let (key, values) = spec.split_once('=').ok_or_else(|| bad("no '='"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(bad("empty key"));
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quote) = (0i32, None::<char>);
    for ch in values.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur.trim().to_string());
    if out.iter().any(String::is_empty) {
        return Err(bad("empty value"));
    }
    let config_key = ALIASES
        .iter()
        .find(|(a, _)| *a == key)
        .map_or(key, |(_, k)| k)
        .to_string();
    Ok(Axis {
        key: key.to_string(),
        config_key,
        values: out,
    })
}

/// One combination of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Combination {
    /// Run folder name inside the sweep folder, e.g. `000-loss=ce-optim.lr=1e-3`.
    pub name: String,
    /// (user key, value) per axis.
    pub settings: Vec<(String, String)>,
    /// `config.key=value` overrides for `train`.
    pub set: Vec<String>,
}

/// The cartesian product of the axes (the first axis varies slowest), with run names.
pub fn combinations(axes: &[Axis]) -> Vec<Combination> {
    let mut out = vec![Combination {
        name: String::new(),
        settings: vec![],
        set: vec![],
    }];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.settings.push((axis.key.clone(), v.clone()));
                    c.set.push(format!("{}={v}", axis.config_key));
                    c
                })
            })
            .collect();
    }
    for (i, c) in out.iter_mut().enumerate() {
        let mut name = format!("{i:03}");
        for (k, v) in &c.settings {
            name.push('-');
            name.push_str(&safe(&format!("{k}={v}")));
        }
        // Keep names short enough for every file system; the index keeps the full settings.
        if name.chars().count() > 120 {
            name = name.chars().take(120).collect();
        }
        c.name = name;
    }
    out
}

/// A file-name-safe rendering: letters, digits and `.=+-` kept, anything else `_`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || ".=+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What to sweep.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Dataset folder.
    pub dataset: PathBuf,
    /// Sweep folder: one run folder per combination and `sweep.json`.
    pub out: PathBuf,
    /// Partial config shared by every run.
    pub config_file: Option<PathBuf>,
    /// `key=value` overrides shared by every run (applied before the grid's).
    pub set: Vec<String>,
    /// The grid.
    pub grid: Vec<Axis>,
    /// Epochs of each run.
    pub epochs: Option<usize>,
    /// Time budget of each run.
    pub time_budget: Option<Duration>,
    /// Set by the caller (Ctrl-C) to stop after the current step of the current run.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Progress of a sweep.
#[derive(Debug)]
pub enum SweepEvent<'a> {
    /// A run starts (`index` is 0-based), or continues a run cut short (`resumed`).
    RunStart {
        /// 0-based index in the grid.
        index: usize,
        /// Runs in the grid.
        total: usize,
        /// Its folder name.
        name: &'a str,
        /// Whether it continues an unfinished run folder.
        resumed: bool,
    },
    /// A run was already finished by an earlier invocation.
    Skipped {
        /// 0-based index.
        index: usize,
        /// Its folder name.
        name: &'a str,
    },
    /// Progress of the current run.
    Train(Event<'a>),
    /// A run ended; `error` when it failed.
    RunEnd {
        /// Its folder name.
        name: &'a str,
        /// Its index entry (best epoch and metric).
        entry: &'a Value,
        /// The failure, if any.
        error: Option<&'a str>,
    },
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// The index written.
    pub index: PathBuf,
    /// Runs finished (now or earlier).
    pub done: usize,
    /// Runs skipped because an earlier invocation finished them.
    pub skipped: usize,
    /// Runs that failed, with their errors.
    pub failed: Vec<(String, String)>,
    /// Whether the sweep was interrupted.
    pub interrupted: bool,
    /// The best run by its own best metric (name, metric, value).
    pub best: Option<(String, String, f64)>,
}

/// Run every combination of `opts.grid` not already finished, rewriting the index after each.
pub fn sweep(opts: &SweepOptions, on: &mut dyn FnMut(SweepEvent)) -> Result<SweepOutcome> {
    if opts.grid.is_empty() {
        return Err(TrainError::Config(
            "sweep: give at least one --grid key=v1,v2".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &opts.grid {
        if !seen.insert(a.config_key.as_str()) {
            return Err(TrainError::Config(format!(
                "sweep: {} appears twice in the grid",
                a.config_key
            )));
        }
    }
    let combos = combinations(&opts.grid);
    std::fs::create_dir_all(&opts.out).map_err(|e| TrainError::io(&opts.out, e))?;
    let index_path = opts.out.join("sweep.json");
    let previous = read_index(&index_path)?;
    let dataset_key = std::fs::canonicalize(&opts.dataset)
        .unwrap_or_else(|_| opts.dataset.clone())
        .to_string_lossy()
        .into_owned();
    let grid: serde_json::Map<String, Value> = opts
        .grid
        .iter()
        .map(|a| (a.key.clone(), json!(a.values)))
        .collect();
    let mut runs: Vec<Value> = Vec::new();
    let mut failed: Vec<(String, String, Value)> = Vec::new();
    let mut outcome = SweepOutcome {
        index: index_path.clone(),
        done: 0,
        skipped: 0,
        failed: vec![],
        interrupted: false,
        best: None,
    };
    for (i, c) in combos.iter().enumerate() {
        let settings: serde_json::Map<String, Value> = c
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let dir = opts.out.join(&c.name);
        if let Some(entry) = previous.get(&c.name).filter(|_| finished(&dir)) {
            on(SweepEvent::Skipped {
                index: i,
                name: &c.name,
            });
            runs.push(entry.clone());
            outcome.done += 1;
            outcome.skipped += 1;
            continue;
        }
        // A folder with a config but not in the index: a run cut short, continue it.
        let resume = dir.join("config.toml").is_file();
        on(SweepEvent::RunStart {
            index: i,
            total: combos.len(),
            name: &c.name,
            resumed: resume,
        });
        let topts = TrainOptions {
            dataset: opts.dataset.clone(),
            out: dir.clone(),
            config_file: if resume {
                None
            } else {
                opts.config_file.clone()
            },
            set: if resume {
                vec![]
            } else {
                opts.set.iter().chain(&c.set).cloned().collect()
            },
            epochs: opts.epochs,
            time_budget: opts.time_budget,
            resume,
            stop: opts.stop.clone(),
            stop_after_epochs: None,
        };
        let result = train::train(&topts, &mut |e| on(SweepEvent::Train(e)));
        match result {
            Ok(o) if o.stop == StopReason::Interrupted => {
                outcome.interrupted = true;
                break;
            }
            Ok(o) => {
                let mut best = json!({"metric": o.metric});
                if let Some(e) = o.best_epoch {
                    best["epoch"] = json!(e);
                }
                if let Some(v) = o.best_value {
                    best["value"] = json!(v);
                }
                if let Some(d) = o.best_dice_fg {
                    best["dice_fg"] = json!(d);
                }
                let entry = json!({
                    "dir": c.name,
                    "settings": settings,
                    "best": best,
                    "epochs_done": o.epochs_done,
                    "stop": stop_name(o.stop),
                });
                on(SweepEvent::RunEnd {
                    name: &c.name,
                    entry: &entry,
                    error: None,
                });
                runs.push(entry);
                outcome.done += 1;
            }
            Err(e) => {
                let msg = e.to_string();
                let entry = json!({"dir": c.name, "settings": settings, "error": msg});
                on(SweepEvent::RunEnd {
                    name: &c.name,
                    entry: &entry,
                    error: Some(&msg),
                });
                failed.push((c.name.clone(), msg, entry));
            }
        }
        write_index(&index_path, &dataset_key, &grid, &runs, &failed)?;
        if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            outcome.interrupted = true;
            break;
        }
    }
    write_index(&index_path, &dataset_key, &grid, &runs, &failed)?;
    outcome.failed = failed.into_iter().map(|(n, m, _)| (n, m)).collect();
    outcome.best = best_run(&runs);
    Ok(outcome)
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::Finished => "finished",
        StopReason::TimeBudget => "time_budget",
        StopReason::EarlyStopping => "early_stopping",
        StopReason::Interrupted => "interrupted",
    }
}

/// A run folder whose run ended (it has metrics and a last checkpoint).
fn finished(dir: &Path) -> bool {
    dir.join("metrics.jsonl").is_file() && dir.join("checkpoints/last.safetensors").is_file()
}

/// The finished runs of an earlier index, by folder name; a missing index is empty.
fn read_index(path: &Path) -> Result<BTreeMap<String, Value>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        TrainError::Config(format!(
            "{}: not a sweep index ({e}); move it away to start a new sweep here",
            path.display()
        ))
    })?;
    Ok(v.get("runs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r.get("dir")?.as_str()?.to_string(), r.clone())))
        .collect())
}

fn write_index(
    path: &Path,
    dataset_key: &str,
    grid: &serde_json::Map<String, Value>,
    runs: &[Value],
    failed: &[(String, String, Value)],
) -> Result<()> {
    let v = json!({
        "format": "segkit-sweep",
        "version": 1,
        "dataset": dataset_key,
        "grid": grid,
        "runs": runs,
        "failed": failed.iter().map(|f| &f.2).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&v).expect("index serializes");
    text.push('\n');
    dataset::atomic_write(path, text.as_bytes())?;
    Ok(())
}

/// The run with the best value of its own best metric (`val_loss` lower, others higher).
fn best_run(runs: &[Value]) -> Option<(String, String, f64)> {
    let mut best: Option<(String, String, f64)> = None;
    for r in runs {
        let (Some(dir), Some(metric), Some(v)) = (
            r["dir"].as_str(),
            r["best"]["metric"].as_str(),
            r["best"]["value"].as_f64(),
        ) else {
            continue;
        };
        let lower = metric == "val_loss";
        let better = best
            .as_ref()
            .is_none_or(|(_, _, b)| if lower { v < *b } else { v > *b });
        if better {
            best = Some((dir.to_string(), metric.to_string(), v));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_parsing_and_names() {
        let a = parse_axis("loss=ce,ce+dice").unwrap();
        assert_eq!(a.config_key, "loss.name");
        assert_eq!(a.values, vec!["ce", "ce+dice"]);
        let b = parse_axis("optim.lr = 1e-3, 1e-4").unwrap();
        assert_eq!((b.key.as_str(), b.values.len()), ("optim.lr", 2));
        let w = parse_axis("class_weights=auto,[1, 5],\"none\"").unwrap();
        assert_eq!(w.values, vec!["auto", "[1, 5]", "\"none\""]);
        assert_eq!(w.config_key, "loss.class_weights");
        for bad in ["optim.lr", "=1,2", "optim.lr=1e-3,", "a..b=1"] {
            let e = parse_axis(bad).unwrap_err().to_string();
            assert!(
                e.contains("--grid") && e.contains("key=value1,value2"),
                "{bad}: {e}"
            );
        }
        let combos = combinations(&[a, b, w]);
        assert_eq!(combos.len(), 12);
        assert_eq!(
            combos[0].name,
            "000-loss=ce-optim.lr=1e-3-class_weights=auto"
        );
        assert_eq!(
            combos[2].name,
            "002-loss=ce-optim.lr=1e-3-class_weights=_none_"
        );
        assert_eq!(
            combos[4].set,
            vec!["loss.name=ce", "optim.lr=1e-4", "loss.class_weights=[1, 5]"]
        );
        assert_eq!(combos[11].settings[0], ("loss".into(), "ce+dice".into()));
        assert_eq!(
            combos[1].name,
            "001-loss=ce-optim.lr=1e-3-class_weights=_1__5_"
        );
    }

    #[test]
    fn best_run_respects_the_metric_direction() {
        let runs = vec![
            json!({"dir": "a", "best": {"metric": "dice_fg", "value": 0.5}}),
            json!({"dir": "b", "best": {"metric": "dice_fg", "value": 0.7}}),
            json!({"dir": "c", "best": {"metric": "dice_fg"}}),
        ];
        assert_eq!(best_run(&runs).unwrap().0, "b");
        let runs = vec![
            json!({"dir": "a", "best": {"metric": "val_loss", "value": 0.5}}),
            json!({"dir": "b", "best": {"metric": "val_loss", "value": 0.7}}),
        ];
        assert_eq!(best_run(&runs).unwrap().0, "a");
    }
}
