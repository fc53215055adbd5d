//! The run report: summary, curves, per-class table, confusion matrix, prediction grid and
//! the dataset the run trained on.

use std::path::Path;

use minijinja::Value;
use rayon::prelude::*;
use segkit_labelme::dataset::{read_index_png, voc_colormap, Dataset};
use serde_json::json;

use crate::charts::{self, hex, BarGroup, LineChart, Series, RUN_COLORS};
use crate::dataset_page::{manifest_section, shown_path};
use crate::error::Result;
use crate::i18n;
use crate::run::{flatten, Epoch, RunData};
use crate::scoring::{self, ImageScore, ERROR_COLORS};
use crate::thumbs;
use crate::{html, Options, Report};

/// Config keys (last dotted segment) shown in the summary; the rest is in "Full config".
const KEY_SETTINGS: &[&str] = &[
    "model",
    "arch",
    "architecture",
    "head",
    "base",
    "width",
    "depth",
    "norm",
    "loss",
    "losses",
    "class_weights",
    "optimizer",
    "optim",
    "name",
    "lr",
    "weight_decay",
    "momentum",
    "schedule",
    "scheduler",
    "warmup",
    "warmup_epochs",
    "epochs",
    "batch_size",
    "batch",
    "accumulate",
    "crop_size",
    "fg_crop_share",
    "augment",
    "seed",
    "device",
    "time_budget",
    "best_metric",
    "metric",
    "tile",
    "pretrained",
    "warmup_steps",
    "accum_steps",
    "threads",
    "up",
];

/// Render the report of the run folder `run_dir`.
pub fn run_report(run_dir: &Path, opts: &Options) -> Result<Report> {
    let run = RunData::load(run_dir)?;
    let t = i18n::strings(opts.lang);
    let mut notes = run.notes.clone();
    let names = run.class_names();
    let colors = run.class_colors();
    let best = run.best_epoch();
    let best_e = best.map(|i| &run.epochs[i]);

    let classes: Vec<_> = names
        .iter()
        .zip(&colors)
        .map(|(n, c)| json!({"name": n, "color": hex(*c)}))
        .collect();

    // Summary
    let metric_cards: Vec<_> = [
        ("dice_fg", t["fg_dice"], 3),
        ("miou", t["miou"], 3),
        ("val_loss", t["val_loss"], 4),
        ("pixel_acc", t["pixel_acc"], 4),
        ("defect_recall", t["defect_recall"], 3),
        ("false_defects_per_image", t["false_defects_img"], 2),
    ]
    .into_iter()
    .map(|(k, label, digits)| {
        json!({"key": k, "label": label, "value": best_e.and_then(|e| e.metric(k)), "digits": digits})
    })
    .collect();
    let model = ["model.name", "model.arch", "model", "arch", "model.type"]
        .iter()
        .find_map(|k| {
            run.config_flat
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        });
    let summary = json!({
        "dataset": run
            .dataset
            .as_ref()
            .map(|d| d.root.canonicalize().unwrap_or_else(|_| d.root.clone()).display().to_string())
            .or(run.dataset_ref.clone()),
        "model": model,
        "best_epoch": best_e.map(|e| fmt_epoch(e.epoch)),
        "epochs": run.epochs.len(),
        "best_metric": metric_label(run.best_metric(), &t),
        "metrics": metric_cards,
        "time": run.total_seconds().map(fmt_duration),
        "device": run.device(),
    });

    let defaults = opts
        .defaults
        .as_ref()
        .or(run.defaults.as_ref())
        .map(flatten);
    let config_rows: Vec<_> = run
        .config_flat
        .iter()
        .map(|(k, v)| {
            // a key the defaults do not list is unknown, not changed
            let d = defaults
                .as_ref()
                .and_then(|d| d.iter().find(|(dk, _)| dk == k).map(|(_, dv)| dv.clone()));
            let changed = d.as_deref().is_some_and(|dv| dv != v.as_str());
            let last = k.rsplit('.').next().unwrap_or(k);
            let key = KEY_SETTINGS.contains(&last) || changed;
            (key, json!({"key": k, "value": v, "changed": changed, "default": d.unwrap_or_else(|| "—".into())}))
        })
        .collect();
    let key_config: Vec<_> = config_rows
        .iter()
        .filter(|(k, _)| *k)
        .map(|(_, r)| r.clone())
        .collect();
    let full_config: Vec<_> = config_rows.into_iter().map(|(_, r)| r).collect();

    // Charts
    let charts = run_charts(&run, best_e.map(|e| e.epoch), &names, &colors, &t)?;

    // Per-class table and confusion matrix
    let val_share = run.confusion.as_ref().map(|c| {
        let rows: Vec<f64> = c.matrix.iter().map(|r| r.iter().sum()).collect();
        let total: f64 = rows.iter().sum();
        rows.into_iter()
            .map(|r| if total > 0.0 { r / total } else { 0.0 })
            .collect::<Vec<_>>()
    });
    let class_rows: Vec<_> = if best_e.is_some() || val_share.is_some() {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let get = |m: fn(&Epoch) -> &std::collections::BTreeMap<u32, f64>| {
                    best_e.and_then(|e| m(e).get(&(k as u32)).copied())
                };
                json!({
                    "name": n, "color": hex(colors[k]),
                    "iou": get(|e| &e.iou), "dice": get(|e| &e.dice),
                    "precision": get(|e| &e.precision), "recall": get(|e| &e.recall),
                    "share": val_share.as_ref().and_then(|s| s.get(k).copied()),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let confusion = run.confusion.as_ref().map(confusion_ctx);

    // Prediction grid
    let scored = score_predictions(&run, &mut notes);
    let mut grid_groups = Vec::new();
    let mut defects = Vec::new();
    if let Some(e) = best_e {
        if let Some(v) = e.defect_recall {
            defects.push(json!({"label": format!("{} ({})", t["defect_recall"], t["from_metrics"]), "value": format!("{:.1}%", v * 100.0)}));
        }
        if let Some(v) = e.false_defects_per_image {
            defects.push(json!({"label": format!("{} ({})", t["false_defects_img"], t["from_metrics"]), "value": format!("{v:.2}")}));
        }
    }
    if let Some((ds, scored)) = &scored {
        let gt: usize = scored.iter().map(|s| s.1.gt_defects).sum();
        let found: usize = scored.iter().map(|s| s.1.found_defects).sum();
        let fals: usize = scored.iter().map(|s| s.1.false_defects).sum();
        let dices: Vec<f64> = scored.iter().filter_map(|s| s.1.dice_fg).collect();
        defects.push(json!({"label": t["defects_total"], "value": format!("{found} / {gt}")}));
        defects.push(json!({"label": format!("{} ({})", t["false_defects_img"], t["from_predictions"]), "value": format!("{:.2}", fals as f64 / scored.len().max(1) as f64)}));
        if !dices.is_empty() {
            defects.push(json!({"label": t["mean_dice_images"], "value": format!("{:.3}", dices.iter().sum::<f64>() / dices.len() as f64)}));
        }
        let palette = mask_palette(&colors);
        let groups = select_for_grid(scored, opts);
        for (id, title_key, items) in groups {
            let rows: Vec<Result<serde_json::Value, String>> = items
                .par_iter()
                .map(|(stem, sc)| grid_row(ds, &run.root, stem, sc, &palette, opts.thumb_px))
                .collect();
            let mut ok = Vec::new();
            for r in rows {
                match r {
                    Ok(v) => ok.push(v),
                    Err(e) => notes.push(e),
                }
            }
            let title = if id == "all" {
                format!("{} ({})", t[title_key], scored.len())
            } else {
                format!(
                    "{} ({} {} {})",
                    t[title_key],
                    items.len(),
                    t["of_images"],
                    scored.len()
                )
            };
            grid_groups.push(json!({"id": id, "title": title, "rows": ok}));
        }
    }
    let error_legend: Vec<_> = [
        ("err_bg", scoring::cat::BG),
        ("err_tp", scoring::cat::TP),
        ("err_fp", scoring::cat::FP),
        ("err_fn", scoring::cat::FN),
        ("err_wrong", scoring::cat::WRONG),
        ("err_ignore", scoring::cat::IGNORE),
    ]
    .iter()
    .map(|(k, c)| json!({"name": t[k], "color": hex(ERROR_COLORS[*c as usize])}))
    .collect();

    let ds = run.manifest.as_ref().map(manifest_section);

    // Log: the tail is what explains a failed run.
    let (log, log_lines, log_cut, log_shown) = match &run.log {
        Some(l) => {
            let lines: Vec<&str> = l.lines().collect();
            let shown = lines.len().min(300);
            (
                Some(lines[lines.len() - shown..].join("\n")),
                lines.len(),
                shown < lines.len(),
                shown,
            )
        }
        None => (None, 0, false, 0),
    };

    let ctx = json!({
        "lang": opts.lang.code(),
        "version": env!("CARGO_PKG_VERSION"),
        "title": format!("{} — {}", t["run_report"], run.name),
        "source": run.root.display().to_string(),
        "t": t,
        "run": {"name": run.name, "path": shown_path(&run.root)},
        "notes": notes,
        "summary": summary,
        "classes": classes,
        "key_config": key_config,
        "full_config": full_config,
        "has_defaults": defaults.is_some(),
        "charts": charts,
        "best_epoch": best_e.map(|e| fmt_epoch(e.epoch)),
        "class_rows": class_rows,
        "confusion": confusion,
        "defects": defects,
        "grid_groups": grid_groups,
        "error_legend": error_legend,
        "ds": ds,
        "log": log, "log_lines": log_lines, "log_cut": log_cut, "log_shown": log_shown,
    });
    let html = html::render("run.html", Value::from(minijinja::value::Serde(&ctx)))?;
    Ok(Report { html, notes })
}

pub(crate) fn fmt_epoch(e: f64) -> String {
    if e.fract() == 0.0 {
        format!("{}", e as i64)
    } else {
        format!("{e}")
    }
}

pub(crate) fn fmt_duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

pub(crate) fn metric_label(metric: &str, t: &std::collections::BTreeMap<&str, &str>) -> String {
    match metric {
        "dice_fg" => t["fg_dice"].into(),
        "miou" => t["miou"].into(),
        "val_loss" => t["val_loss"].into(),
        "train_loss" => t["train_loss"].into(),
        "pixel_acc" => t["pixel_acc"].into(),
        "defect_recall" => t["defect_recall"].into(),
        "false_defects_per_image" => t["false_defects_img"].into(),
        other => other.into(),
    }
}

pub(crate) fn legend(series: &[Series]) -> Vec<serde_json::Value> {
    series
        .iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| json!({"name": s.name, "color": hex(s.color), "dashed": s.dashed}))
        .collect()
}

fn pts(epochs: &[Epoch], f: impl Fn(&Epoch) -> Option<f64>) -> Vec<(f64, f64)> {
    epochs
        .iter()
        .filter_map(|e| f(e).map(|v| (e.epoch, v)))
        .collect()
}

fn run_charts(
    run: &RunData,
    best_x: Option<f64>,
    names: &[String],
    colors: &[[u8; 3]],
    t: &std::collections::BTreeMap<&str, &str>,
) -> Result<Vec<serde_json::Value>> {
    let e = &run.epochs;
    let line = |id: &str, y_desc: &str, series: Vec<Series>, y_range, sci_y| LineChart {
        id: id.into(),
        x_desc: t["epoch"].into(),
        y_desc: y_desc.into(),
        series,
        marker_x: best_x,
        y_range,
        log_x: false,
        sci_y,
    };
    let fg: Vec<usize> = (1..names.len()).collect();
    let specs = vec![
        (
            "loss",
            t["loss"],
            line(
                "loss",
                t["loss"],
                vec![
                    Series {
                        name: t["train_loss"].into(),
                        color: RUN_COLORS[0],
                        points: pts(e, |x| x.train_loss),
                        dashed: true,
                    },
                    Series {
                        name: t["val_loss"].into(),
                        color: RUN_COLORS[1],
                        points: pts(e, |x| x.val_loss),
                        dashed: false,
                    },
                ],
                None,
                false,
            ),
        ),
        (
            "metrics",
            t["metrics"],
            line(
                "metrics",
                "",
                vec![
                    Series {
                        name: t["fg_dice"].into(),
                        color: RUN_COLORS[2],
                        points: pts(e, Epoch::dice_fg),
                        dashed: false,
                    },
                    Series {
                        name: t["miou"].into(),
                        color: RUN_COLORS[0],
                        points: pts(e, |x| x.miou),
                        dashed: false,
                    },
                    Series {
                        name: t["defect_recall"].into(),
                        color: RUN_COLORS[4],
                        points: pts(e, |x| x.defect_recall),
                        dashed: true,
                    },
                ],
                Some((0.0, 1.0)),
                false,
            ),
        ),
        (
            "dice_per_class",
            t["per_class_dice"],
            line(
                "dice_per_class",
                "Dice",
                fg.iter()
                    .map(|&k| Series {
                        name: names[k].clone(),
                        color: charts::visible_class_color(colors[k], k),
                        points: pts(e, |x| x.dice.get(&(k as u32)).copied()),
                        dashed: false,
                    })
                    .collect(),
                Some((0.0, 1.0)),
                false,
            ),
        ),
        (
            "lr",
            t["lr"],
            line(
                "lr",
                "lr",
                vec![Series {
                    name: "lr".into(),
                    color: RUN_COLORS[5],
                    points: pts(e, |x| x.lr),
                    dashed: false,
                }],
                None,
                true,
            ),
        ),
    ];
    let mut out = Vec::new();
    for (id, title, spec) in specs {
        if let Some(svg) = charts::line_chart(&spec)? {
            out.push(json!({"id": id, "title": title, "svg": svg, "legend": legend(&spec.series)}));
        }
    }
    if let Some(lf) = &run.lr_find {
        let spec = LineChart {
            id: "lr_find".into(),
            x_desc: "lr".into(),
            y_desc: t["loss"].into(),
            series: vec![Series {
                name: t["loss"].into(),
                color: RUN_COLORS[0],
                points: lf.points.clone(),
                dashed: false,
            }],
            marker_x: lf.suggested.filter(|s| *s > 0.0),
            y_range: None,
            log_x: true,
            sci_y: false,
        };
        if let Some(svg) = charts::line_chart(&spec)? {
            let caption = lf
                .suggested
                .map(|s| format!("{}: {s:.1e}", t["suggested_lr"]));
            out.push(json!({"id": "lr_find", "title": t["lr_find"], "svg": svg, "legend": [], "caption": caption}));
        }
    }
    Ok(out)
}

/// Per-class grouped bars (used by compare).
pub(crate) fn dice_bars(id: &str, names: &[String], groups: &[BarGroup]) -> Result<Option<String>> {
    charts::bar_chart(id, names, groups, "Dice", Some((0.0, 1.0)))
}

fn confusion_ctx(c: &crate::run::Confusion) -> serde_json::Value {
    let rows: Vec<_> = c
        .matrix
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let total: f64 = row.iter().sum();
            let cells: Vec<_> = row
                .iter()
                .enumerate()
                .map(|(j, &n)| {
                    let share = if total > 0.0 { n / total } else { 0.0 };
                    json!({"pred": c.classes[j], "count": fmt_count(n), "share": share, "alpha": (share * 100.0).round() / 100.0})
                })
                .collect();
            json!({"name": c.classes[i], "cells": cells, "total": fmt_count(total)})
        })
        .collect();
    json!({"classes": c.classes, "rows": rows})
}

pub(crate) fn fmt_count(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        let s = format!("{}", n as i64);
        // thousands separators: counts of pixels are long
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 && ch != '-' {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else {
        format!("{n:.1}")
    }
}

/// 256 display colours for mask values: class colours, then the VOC map (255 = ignore).
pub(crate) fn mask_palette(colors: &[[u8; 3]]) -> Vec<[u8; 3]> {
    let mut p = voc_colormap().to_vec();
    for (k, c) in colors.iter().enumerate().take(255) {
        p[k] = *c;
    }
    p
}

/// Score every prediction of `run` against its ground truth. `None` when there is nothing
/// to score (no predictions or no dataset folder); an unreadable image is a note.
pub(crate) fn score_predictions<'a>(
    run: &'a RunData,
    notes: &mut Vec<String>,
) -> Option<(&'a Dataset, Vec<(String, ImageScore)>)> {
    let ds = run.dataset.as_ref()?;
    if run.predictions.is_empty() {
        return None;
    }
    let results: Vec<Result<(String, ImageScore), String>> = run
        .predictions
        .par_iter()
        .map(|stem| {
            let (gt, pred) = read_pair(ds, &run.root, stem)?;
            let ignore = ds.manifest.ignore_index;
            Ok((
                stem.clone(),
                scoring::score(&gt.data, &pred.data, gt.width, gt.height, ignore),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok(x) => out.push(x),
            Err(e) => notes.push(e),
        }
    }
    Some((ds, out))
}

type Mask = segkit_labelme::dataset::IndexMask;

pub(crate) fn read_pair(ds: &Dataset, run_root: &Path, stem: &str) -> Result<(Mask, Mask), String> {
    let gt = read_index_png(&ds.mask_path(stem)).map_err(|e| format!("{e} (image skipped)"))?;
    let pred = read_pred(&gt, ds, run_root, stem)?;
    Ok((gt, pred))
}

/// Read `run_root`'s prediction for `stem` and check it has the size of its truth `gt`.
pub(crate) fn read_pred(
    gt: &Mask,
    ds: &Dataset,
    run_root: &Path,
    stem: &str,
) -> Result<Mask, String> {
    let pred_path = run_root.join("predictions").join(format!("{stem}.png"));
    let pred = read_index_png(&pred_path).map_err(|e| format!("{e} (image skipped)"))?;
    if (gt.width, gt.height) != (pred.width, pred.height) {
        return Err(format!(
            "{}: prediction is {}×{} but the ground truth {} is {}×{} (image skipped)",
            pred_path.display(),
            pred.width,
            pred.height,
            ds.mask_path(stem).display(),
            gt.width,
            gt.height
        ));
    }
    Ok(pred)
}

pub(crate) fn read_photo(ds: &Dataset, stem: &str) -> Result<image::RgbImage, String> {
    let path = match ds.manifest.images.iter().find(|e| e.stem == stem) {
        Some(e) => ds.image_path(e),
        None => ["jpg", "jpeg", "png"]
            .iter()
            .map(|x| ds.root.join("JPEGImages").join(format!("{stem}.{x}")))
            .find(|p| p.exists())
            .ok_or_else(|| {
                format!(
                    "{}: no image for {stem:?} in the dataset (image skipped)",
                    ds.root.display()
                )
            })?,
    };
    segkit_labelme::dataset::read_rgb(&path).map_err(|e| format!("{e} (image skipped)"))
}

type Group<'a> = (&'static str, &'static str, Vec<&'a (String, ImageScore)>);

fn select_for_grid<'a>(scored: &'a [(String, ImageScore)], opts: &Options) -> Vec<Group<'a>> {
    if scored.len() <= opts.grid_all_up_to {
        return vec![("all", "all_images", scored.iter().collect())];
    }
    let mut order: Vec<&(String, ImageScore)> = scored.iter().collect();
    order.sort_by(|a, b| {
        a.1.rank_dice()
            .total_cmp(&b.1.rank_dice())
            .then_with(|| a.0.cmp(&b.0))
    });
    let k = opts.best_worst_k.min(order.len() / 2).max(1);
    let worst = order[..k].to_vec();
    let mut best: Vec<_> = order[order.len() - k..].to_vec();
    best.reverse();
    vec![("worst", "worst_k", worst), ("best", "best_k", best)]
}

fn grid_row(
    ds: &Dataset,
    run_root: &Path,
    stem: &str,
    sc: &ImageScore,
    palette: &[[u8; 3]],
    thumb_px: u32,
) -> Result<serde_json::Value, String> {
    let (gt, pred) = read_pair(ds, run_root, stem)?;
    let photo = read_photo(ds, stem)?;
    let (w, h) = (gt.width, gt.height);
    if photo.dimensions() != (w, h) {
        return Err(format!(
            "{stem}: image is {}×{} but its mask is {w}×{h} (image skipped)",
            photo.width(),
            photo.height()
        ));
    }
    let ignore = ds.manifest.ignore_index;
    let (tw, th) = thumbs::fit(w, h, thumb_px);
    let rank = thumbs::class_rank(ignore);
    let small = thumbs::photo(&photo, tw, th);
    let g = thumbs::pool(&gt.data, w, h, tw, th, &rank);
    let p = thumbs::pool(&pred.data, w, h, tw, th, &rank);
    let err = scoring::error_map(&gt.data, &pred.data, ignore);
    let err = thumbs::pool(&err, w, h, tw, th, &thumbs::error_rank());
    let class = match sc.dice_fg {
        Some(d) if d >= 0.7 => "good",
        Some(d) if d < 0.4 => "bad",
        _ => "",
    };
    Ok(json!({
        "stem": stem,
        "dice": sc.dice_fg,
        "class": class,
        "gt": sc.gt_defects, "found": sc.found_defects, "false": sc.false_defects,
        "image": thumbs::jpeg_uri(&small),
        "gt_mask": thumbs::png_uri(&thumbs::colorize(&g, tw, th, palette)),
        "pred_mask": thumbs::png_uri(&thumbs::colorize(&p, tw, th, palette)),
        "overlay": thumbs::jpeg_uri(&thumbs::overlay(&small, &p, palette, ignore, 0.5)),
        "errors": thumbs::png_uri(&thumbs::colorize(&err, tw, th, &ERROR_COLORS)),
    }))
}
