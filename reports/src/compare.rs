//! `segkit compare`: runs side by side — the config fields that differ, key metrics with the
//! best highlighted, overlaid curves, per-class Dice, and the same val images per run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use minijinja::Value;
use rayon::prelude::*;
use serde_json::json;

use crate::charts::{self, hex, BarGroup, LineChart, Series, RUN_COLORS};
use crate::error::{ReportError, Result};
use crate::i18n;
use crate::run::{lower_is_better, Epoch, RunData};
use crate::run_page::{
    dice_bars, fmt_duration, fmt_epoch, legend, mask_palette, read_photo, read_pred,
};
use crate::scoring::{self, ImageScore};
use crate::thumbs;
use crate::{html, Options, Report};
use segkit_labelme::dataset::read_index_png;

/// Config keys that never name a run: where it was written or read from.
const NOT_A_SETTING: &[&str] = &["dataset", "out", "output", "run_dir", "resume"];

/// How many val images the side-by-side section shows.
const SIDE_BY_SIDE: usize = 6;

fn run_color(i: usize) -> [u8; 3] {
    RUN_COLORS[i % RUN_COLORS.len()]
}

/// Render a comparison of the run folders `dirs` (in that order).
pub fn compare_report(dirs: &[PathBuf], opts: &Options) -> Result<Report> {
    if dirs.is_empty() {
        return Err(ReportError::Usage(
            "compare needs at least one run folder".into(),
        ));
    }
    let runs: Vec<RunData> = dirs
        .iter()
        .map(|d| RunData::load(d))
        .collect::<Result<_>>()?;
    let t = i18n::strings(opts.lang);
    let mut notes: Vec<String> = Vec::new();
    for r in &runs {
        for n in &r.notes {
            notes.push(format!("{}: {n}", r.name));
        }
    }

    // Settings that differ.
    let maps: Vec<BTreeMap<&str, &str>> = runs
        .iter()
        .map(|r| {
            r.config_flat
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .collect();
    let mut keys: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &runs {
        for (k, _) in &r.config_flat {
            if seen.insert(k.as_str()) {
                keys.push(k.as_str());
            }
        }
    }
    let differing: Vec<&str> = keys
        .into_iter()
        .filter(|k| {
            let vals: BTreeSet<Option<&str>> = maps.iter().map(|m| m.get(k).copied()).collect();
            vals.len() > 1
        })
        .collect();
    let names = run_names(&runs, &maps, &differing);

    // Key metrics.
    struct Col {
        key: &'static str,
        label: String,
        digits: usize,
        values: Vec<Option<f64>>,
        lower_better: bool,
        highlight: bool,
    }
    let best: Vec<Option<&Epoch>> = runs
        .iter()
        .map(|r| r.best_epoch().map(|i| &r.epochs[i]))
        .collect();
    let at_best =
        |f: fn(&Epoch) -> Option<f64>| best.iter().map(|e| e.and_then(f)).collect::<Vec<_>>();
    let min_over = |f: fn(&Epoch) -> Option<f64>| {
        runs.iter()
            .map(|r| {
                r.epochs
                    .iter()
                    .filter_map(f)
                    .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
            })
            .collect::<Vec<_>>()
    };
    let cols = [
        Col {
            key: "dice_fg",
            label: t["fg_dice"].into(),
            digits: 3,
            values: at_best(Epoch::dice_fg),
            lower_better: false,
            highlight: true,
        },
        Col {
            key: "miou",
            label: t["miou"].into(),
            digits: 3,
            values: at_best(|e| e.miou),
            lower_better: false,
            highlight: true,
        },
        Col {
            key: "val_loss",
            label: t["min_val_loss"].into(),
            digits: 4,
            values: min_over(|e| e.val_loss),
            lower_better: true,
            highlight: true,
        },
        Col {
            key: "defect_recall",
            label: t["defect_recall"].into(),
            digits: 3,
            values: at_best(|e| e.defect_recall),
            lower_better: false,
            highlight: true,
        },
        Col {
            key: "false_defects_per_image",
            label: t["false_defects_img"].into(),
            digits: 2,
            values: at_best(|e| e.false_defects_per_image),
            lower_better: lower_is_better("false_defects_per_image"),
            highlight: true,
        },
    ];
    let best_of: Vec<Option<f64>> = cols
        .iter()
        .map(|c| best_value(&c.values, c.lower_better))
        .collect();
    let metric_heads: Vec<_> = cols
        .iter()
        .map(|c| json!({"key": c.key, "label": c.label}))
        .collect();
    let rows: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cells: Vec<_> = cols
                .iter()
                .zip(&best_of)
                .map(|(c, b)| {
                    let v = c.values[i];
                    let is_best = runs.len() > 1 && c.highlight && v.is_some() && v == *b;
                    json!({"key": c.key, "value": v, "digits": c.digits, "best": is_best})
                })
                .collect();
            json!({
                "name": names[i], "folder": r.name, "path": crate::dataset_page::shown_path(&r.root),
                "color": hex(run_color(i)),
                "settings": differing.iter().map(|k| maps[i].get(k).copied().unwrap_or("—")).collect::<Vec<_>>(),
                "metrics": cells,
                "best_epoch": best[i].map(|e| fmt_epoch(e.epoch)),
                "epochs": r.epochs.len(),
                "time": r.total_seconds().map(fmt_duration),
            })
        })
        .collect();

    // Overlaid curves, one colour per run.
    let curve = |id: &str,
                 title: &str,
                 f: fn(&Epoch) -> Option<f64>,
                 y_range: Option<(f64, f64)>|
     -> Result<Option<serde_json::Value>> {
        let series: Vec<Series> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: names[i].clone(),
                color: run_color(i),
                points: r
                    .epochs
                    .iter()
                    .filter_map(|e| f(e).map(|v| (e.epoch, v)))
                    .collect(),
                dashed: false,
            })
            .collect();
        let spec = LineChart {
            id: id.into(),
            x_desc: t["epoch"].into(),
            y_desc: title.into(),
            series,
            marker_x: None,
            y_range,
            log_x: false,
            sci_y: false,
        };
        Ok(charts::line_chart(&spec)?.map(
            |svg| json!({"id": id, "title": title, "svg": svg, "legend": legend(&spec.series)}),
        ))
    };
    let charts_out: Vec<serde_json::Value> = [
        curve("val_loss", t["val_loss"], |e| e.val_loss, None)?,
        curve("train_loss", t["train_loss"], |e| e.train_loss, None)?,
        curve("dice_fg", t["fg_dice"], Epoch::dice_fg, Some((0.0, 1.0)))?,
        curve("miou", t["miou"], |e| e.miou, Some((0.0, 1.0)))?,
    ]
    .into_iter()
    .flatten()
    .collect();

    // Per-class Dice at each run's best epoch.
    let class_names = runs
        .iter()
        .map(|r| r.class_names())
        .max_by_key(|n| n.len())
        .unwrap_or_default();
    let fg_names: Vec<String> = class_names.iter().skip(1).cloned().collect();
    let groups: Vec<BarGroup> = runs
        .iter()
        .enumerate()
        .map(|(i, _)| BarGroup {
            name: names[i].clone(),
            color: run_color(i),
            values: (1..class_names.len())
                .map(|k| best[i].and_then(|e| e.dice.get(&(k as u32)).copied()))
                .collect(),
        })
        .collect();
    let class_chart = dice_bars("dice_per_class", &fg_names, &groups)?.map(|svg| {
        json!({"id": "dice_per_class", "title": t["per_class_dice"], "svg": svg,
               "legend": groups.iter().map(|g| json!({"name": g.name, "color": hex(g.color), "bar": true})).collect::<Vec<_>>()})
    });
    let class_table: Vec<_> = (1..class_names.len())
        .map(|k| {
            let vals: Vec<Option<f64>> = best.iter().map(|e| e.and_then(|e| e.dice.get(&(k as u32)).copied())).collect();
            let top = best_value(&vals, false);
            json!({"name": class_names[k], "cells": vals.iter().map(|v| json!({"value": v, "best": runs.len() > 1 && v.is_some() && *v == top})).collect::<Vec<_>>()})
        })
        .collect();

    // The same val images, each run's prediction.
    let side = side_by_side(&runs, &names, opts, &mut notes);

    let title_names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ctx = json!({
        "lang": opts.lang.code(),
        "version": env!("CARGO_PKG_VERSION"),
        "title": format!("{} — {}", t["compare_report"], title_names.join(" · ")),
        "source": "",
        "t": t,
        "notes": notes,
        "differing": differing,
        "metric_heads": metric_heads,
        "rows": rows,
        "charts": charts_out,
        "class_chart": class_chart,
        "class_table": class_table,
        "run_names": names,
        "run_colors": (0..runs.len()).map(|i| hex(run_color(i))).collect::<Vec<_>>(),
        "side": side,
    });
    let html = html::render("compare.html", Value::from(minijinja::value::Serde(&ctx)))?;
    Ok(Report { html, notes })
}

/// The best of `values` (highest, or lowest when `lower_better`); `None` when fewer than two
/// distinct values exist, since a column where every run ties has no best worth pointing at.
fn best_value(values: &[Option<f64>], lower_better: bool) -> Option<f64> {
    let distinct: BTreeSet<u64> = values.iter().flatten().map(|v| v.to_bits()).collect();
    if distinct.len() < 2 {
        return None;
    }
    let vals = values.iter().flatten().copied();
    if lower_better {
        vals.reduce(f64::min)
    } else {
        vals.reduce(f64::max)
    }
}

/// Names from the differing settings (`lr=1e-4 loss=ce+dice`), else the folder name.
fn run_names(runs: &[RunData], maps: &[BTreeMap<&str, &str>], differing: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = maps
        .iter()
        .map(|m| {
            differing
                .iter()
                .filter(|k| !NOT_A_SETTING.contains(&k.rsplit('.').next().unwrap_or(k)))
                .filter_map(|k| {
                    m.get(k)
                        .map(|v| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for n in &names {
        *count.entry(n.clone()).or_insert(0) += 1;
    }
    for (i, n) in names.iter_mut().enumerate() {
        if n.is_empty() {
            *n = runs[i].name.clone();
        } else if count[n.as_str()] > 1 {
            *n = format!("{n} ({})", runs[i].name);
        }
    }
    names
}

fn side_by_side(
    runs: &[RunData],
    names: &[String],
    opts: &Options,
    notes: &mut Vec<String>,
) -> Option<serde_json::Value> {
    let ds = runs[0].dataset.as_ref()?;
    // Score each val image once for all runs: the ground truth is decoded once per image,
    // not once per run.
    let common: Vec<&String> = runs[0]
        .predictions
        .iter()
        .filter(|s| runs.iter().all(|r| r.predictions.binary_search(s).is_ok()))
        .collect();
    let ignore = ds.manifest.ignore_index;
    let results: Vec<Result<Vec<ImageScore>, String>> = common
        .par_iter()
        .map(|stem| {
            let gt =
                read_index_png(&ds.mask_path(stem)).map_err(|e| format!("{e} (image skipped)"))?;
            runs.iter()
                .map(|r| {
                    let pred = read_pred(&gt, ds, &r.root, stem)
                        .map_err(|e| format!("{}: {e}", r.name))?;
                    Ok(scoring::score(
                        &gt.data, &pred.data, gt.width, gt.height, ignore,
                    ))
                })
                .collect()
        })
        .collect();
    let mut scored: BTreeMap<&String, Vec<ImageScore>> = BTreeMap::new();
    for (stem, r) in common.iter().zip(results) {
        match r {
            Ok(v) => {
                scored.insert(stem, v);
            }
            Err(e) => notes.push(e),
        }
    }
    let common: Vec<&String> = scored.keys().copied().collect();
    if common.is_empty() {
        return None;
    }
    // The images where the runs disagree most tell the most about the difference.
    let mut by_spread: Vec<(f64, &String)> = common
        .iter()
        .map(|s| {
            let d: Vec<f64> = scored[s].iter().map(ImageScore::rank_dice).collect();
            let spread = d.iter().cloned().fold(f64::MIN, f64::max)
                - d.iter().cloned().fold(f64::MAX, f64::min);
            (spread, *s)
        })
        .collect();
    by_spread.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    by_spread.truncate(SIDE_BY_SIDE);
    let palette = mask_palette(&runs[0].class_colors());
    let rows: Vec<Result<serde_json::Value, String>> = by_spread
        .par_iter()
        .map(|(_, stem)| {
            let photo = read_photo(ds, stem)?;
            let gt = read_index_png(&ds.mask_path(stem)).map_err(|e| format!("{e} (image skipped)"))?;
            let (w, h) = (gt.width, gt.height);
            if photo.dimensions() != (w, h) {
                return Err(format!("{stem}: image and mask sizes differ (image skipped)"));
            }
            let (tw, th) = thumbs::fit(w, h, opts.thumb_px);
            let rank = thumbs::class_rank(ignore);
            let small = thumbs::photo(&photo, tw, th);
            let g = thumbs::pool(&gt.data, w, h, tw, th, &rank);
            let mut cells = Vec::new();
            for (i, r) in runs.iter().enumerate() {
                let pred = read_pred(&gt, ds, &r.root, stem).map_err(|e| format!("{}: {e}", r.name))?;
                let p = thumbs::pool(&pred.data, w, h, tw, th, &rank);
                let sc = &scored[stem][i];
                cells.push(json!({"run": names[i], "dice": sc.dice_fg, "found": sc.found_defects, "gt": sc.gt_defects, "false": sc.false_defects,
                                  "uri": thumbs::jpeg_uri(&thumbs::overlay(&small, &p, &palette, ignore, 0.5))}));
            }
            Ok(json!({
                "stem": stem,
                "image": thumbs::jpeg_uri(&small),
                "gt": thumbs::jpeg_uri(&thumbs::overlay(&small, &g, &palette, ignore, 0.5)),
                "cells": cells,
            }))
        })
        .collect();
    let mut ok = Vec::new();
    for r in rows {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => notes.push(e),
        }
    }
    Some(json!({"cols": runs.len() + 2, "rows": ok, "total": common.len()}))
}
