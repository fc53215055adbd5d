//! The dataset report (`segkit report DATASET`) and the dataset section of a run report,
//! both from `dataset.json` (plus the masks, for sample overlays).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use minijinja::Value;
use rayon::prelude::*;
use segkit_labelme::dataset::{read_index_png, Dataset, Manifest, SPLITS_DIR};
use serde_json::json;

use crate::charts::{self, hex, visible_class_color, BarGroup};
use crate::error::Result;
use crate::i18n;
use crate::run_page::{fmt_count, mask_palette, read_photo};
use crate::thumbs;
use crate::{html, Options, Report};

/// Class pixel share, instances, views and history of a manifest, for the templates.
pub(crate) fn manifest_section(m: &Manifest) -> serde_json::Value {
    let totals = m.total_class_pixels();
    let labelled: u64 = totals
        .iter()
        .filter(|(k, _)| **k != m.ignore_index as u32)
        .map(|(_, v)| v)
        .sum();
    let mut instances = vec![0usize; m.classes.len()];
    let mut images_with = vec![0usize; m.classes.len()];
    for im in &m.images {
        for i in &im.instances {
            if let Some(n) = instances.get_mut(i.class as usize) {
                *n += 1;
            }
        }
        for (k, v) in &im.class_pixels {
            if *v > 0 {
                if let Some(n) = images_with.get_mut(*k as usize) {
                    *n += 1;
                }
            }
        }
    }
    let share = |k: usize| {
        if labelled == 0 {
            0.0
        } else {
            *totals.get(&(k as u32)).unwrap_or(&0) as f64 / labelled as f64
        }
    };
    // Foreground bars are scaled to the largest foreground class: next to a 99% background
    // they would all be invisible.
    let max_fg = (1..m.classes.len()).map(share).fold(0.0f64, f64::max);
    let class_rows: Vec<_> = m
        .classes
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let s = share(k);
            let bar = if k == 0 || max_fg == 0.0 { s * 100.0 } else { s / max_fg * 100.0 };
            json!({
                "name": c.name, "color": hex(c.color),
                "bar_color": if k == 0 { "#9aa3ad".to_string() } else { hex(visible_class_color(c.color, k)) },
                "pixels": fmt_count(*totals.get(&(k as u32)).unwrap_or(&0) as f64),
                "share": s, "bar": (bar * 10.0).round() / 10.0,
                "instances": instances[k], "images": images_with[k],
            })
        })
        .collect();
    let mut views: BTreeMap<String, usize> = BTreeMap::new();
    for im in &m.images {
        if im.views.is_empty() {
            continue;
        }
        for v in &im.views {
            *views.entry(v.clone()).or_insert(0) += 1;
        }
    }
    let views: Vec<_> = views
        .into_iter()
        .map(|(name, count)| json!({"name": name, "count": count}))
        .collect();
    json!({
        "images": m.images.len(),
        "instances": instances.iter().sum::<usize>(),
        "class_rows": class_rows,
        "views": views,
        "history": m.history,
    })
}

/// Instance-area bins (upper bounds, exclusive) for the size distribution.
const AREA_BINS: [u64; 8] = [16, 64, 256, 1024, 4096, 16384, 65536, u64::MAX];

fn short(n: u64) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{}k", n / 1024)
    } else {
        n.to_string()
    }
}

fn bin_label(i: usize) -> String {
    if AREA_BINS[i] == u64::MAX {
        format!("≥{}", short(AREA_BINS[i - 1]))
    } else {
        format!("<{}", short(AREA_BINS[i]))
    }
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    // nearest-rank quantile: a real instance size, not an interpolation
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The traps that `dataset.json` alone reveals.
fn manifest_warnings(m: &Manifest, inst_count: &[usize]) -> Vec<String> {
    let names = m.class_names();
    let n_classes = names.len();
    let mut warnings = Vec::new();
    let ignore = m.ignore_index as u32;
    for (k, name) in names.iter().enumerate().skip(1) {
        if inst_count[k] < 3 {
            warnings.push(format!(
                "class {name:?} has only {} instance(s): too few to learn or validate; merge it (`segkit remap`) or label more",
                inst_count[k]
            ));
        }
    }
    let stray: BTreeSet<u32> = m
        .images
        .iter()
        .flat_map(|im| im.class_pixels.keys().copied())
        .filter(|k| *k as usize >= n_classes && *k != ignore)
        .collect();
    if !stray.is_empty() {
        warnings.push(format!(
            "mask values {stray:?} are neither a class (0..{}) nor the ignore value {ignore}: check class_names.txt or `segkit remap`",
            n_classes.saturating_sub(1)
        ));
    }
    let empty = m
        .images
        .iter()
        .filter(|im| {
            !im.class_pixels
                .iter()
                .any(|(k, v)| *k != 0 && *k != ignore && *v > 0)
        })
        .count();
    if empty > 0 {
        warnings.push(format!(
            "{empty} image(s) have no foreground: check they are not unlabelled"
        ));
    }
    warnings
}

/// Render the report of the dataset folder `dir`.
pub fn dataset_report(dir: &Path, opts: &Options) -> Result<Report> {
    let ds = Dataset::open(dir)?;
    let m = &ds.manifest;
    let t = i18n::strings(opts.lang);
    let mut notes: Vec<String> = Vec::new();
    let n_classes = m.classes.len();
    let names = m.class_names();
    let colors: Vec<[u8; 3]> = m.classes.iter().map(|c| c.color).collect();

    let mut inst_count = vec![0usize; n_classes];
    let mut areas: Vec<Vec<u64>> = vec![Vec::new(); n_classes];
    for im in &m.images {
        for i in &im.instances {
            if let Some(a) = areas.get_mut(i.class as usize) {
                a.push(i.area);
                inst_count[i.class as usize] += 1;
            }
        }
    }

    // Warnings and suggested class weights: `segkit stats` reads every mask and finds the
    // classic traps (0/255 masks, RGB masks, out-of-range values, rare classes, empty images,
    // size mismatches). If it cannot run, the traps the manifest alone reveals are listed.
    let (warnings, weights) = match segkit_labelme::curate::stats::stats(&ds, &|| {}) {
        Ok(st) => {
            notes.extend(st.errors.iter().cloned());
            let warnings: Vec<_> = st
                .warnings
                .iter()
                .map(|w| json!({"message": w.message, "fix": w.fix, "files": w.files}))
                .collect();
            let weights: Vec<_> = names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    json!({"name": n, "color": hex(colors[k]),
                           "median_frequency": st.weights.median_frequency.get(k),
                           "inverse_sqrt": st.weights.inverse_sqrt.get(k)})
                })
                .collect();
            (
                warnings,
                Some(json!({"on": st.weights.computed_on, "rows": weights})),
            )
        }
        Err(e) => {
            notes.push(format!(
                "segkit stats could not run ({e}): warnings from dataset.json only"
            ));
            let w = manifest_warnings(m, &inst_count)
                .into_iter()
                .map(|message| json!({"message": message, "fix": "", "files": []}))
                .collect();
            (w, None)
        }
    };

    // Size distribution chart and table.
    let size_groups: Vec<BarGroup> = (1..n_classes)
        .filter(|&k| !areas[k].is_empty())
        .map(|k| {
            let mut counts = [0usize; AREA_BINS.len()];
            for &a in &areas[k] {
                let b = AREA_BINS
                    .iter()
                    .position(|&ub| a < ub)
                    .unwrap_or(AREA_BINS.len() - 1);
                counts[b] += 1;
            }
            BarGroup {
                name: names[k].clone(),
                color: visible_class_color(colors[k], k),
                values: counts.iter().map(|&c| Some(c as f64)).collect(),
            }
        })
        .collect();
    let bin_labels: Vec<String> = (0..AREA_BINS.len()).map(bin_label).collect();
    let size_chart = charts::bar_chart("sizes", &bin_labels, &size_groups, t["instances"], None)?.map(|svg| {
        json!({"id": "sizes", "title": t["size_dist"], "svg": svg,
               "legend": size_groups.iter().map(|g| json!({"name": g.name, "color": hex(g.color), "bar": true})).collect::<Vec<_>>()})
    });
    // One row per class, then (with two or more views) one per class and view: a defect
    // type that is small on side views and large on front views needs another crop size.
    let size_row = |name: String, color: &str, areas: &[u64]| {
        let mut a = areas.to_vec();
        a.sort_unstable();
        let q = |x: f64| (!a.is_empty()).then(|| fmt_count(quantile(&a, x) as f64));
        json!({"name": name, "color": color, "count": a.len(),
               "min": a.first().map(|v| fmt_count(*v as f64)), "median": q(0.5), "p95": q(0.95),
               "max": a.last().map(|v| fmt_count(*v as f64))})
    };
    let mut view_areas: BTreeMap<&str, Vec<Vec<u64>>> = BTreeMap::new();
    for im in &m.images {
        for v in &im.views {
            let per_class = view_areas
                .entry(v.as_str())
                .or_insert_with(|| vec![Vec::new(); n_classes]);
            for i in &im.instances {
                if let Some(a) = per_class.get_mut(i.class as usize) {
                    a.push(i.area);
                }
            }
        }
    }
    let mut size_rows = Vec::new();
    for k in 1..n_classes {
        let color = hex(colors[k]);
        size_rows.push(size_row(names[k].clone(), &color, &areas[k]));
        if view_areas.len() >= 2 {
            for (v, per_class) in &view_areas {
                let mut row = size_row(format!("{} · {v}", names[k]), &color, &per_class[k]);
                row["view"] = json!(v);
                size_rows.push(row);
            }
        }
    }

    // Instances per view and class.
    let mut view_counts: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for im in &m.images {
        let keys: Vec<String> = if im.views.is_empty() {
            vec![String::new()]
        } else {
            im.views.clone()
        };
        for v in keys {
            let e = view_counts
                .entry(v)
                .or_insert_with(|| (0, vec![0; n_classes]));
            e.0 += 1;
            for i in &im.instances {
                if let Some(c) = e.1.get_mut(i.class as usize) {
                    *c += 1;
                }
            }
        }
    }
    let per_view: Vec<_> = view_counts
        .iter()
        .map(|(v, (imgs, counts))| {
            json!({"name": if v.is_empty() { t["no_view"].to_string() } else { v.clone() },
                   "images": imgs, "counts": counts[1.min(n_classes)..].to_vec()})
        })
        .collect();

    // Image sizes.
    let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for im in &m.images {
        *sizes.entry((im.width, im.height)).or_insert(0) += 1;
    }
    let mut sizes: Vec<_> = sizes.into_iter().collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let image_sizes: Vec<_> = sizes
        .iter()
        .map(|((w, h), n)| json!({"size": format!("{w} × {h}"), "count": n}))
        .collect();

    // Splits.
    let mut splits = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join(SPLITS_DIR)) {
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".txt"))
                    .map(String::from)
            })
            .collect();
        names.sort();
        for n in names {
            if let Ok(Some(stems)) = ds.split(&n) {
                splits.push(json!({"name": n, "count": stems.len()}));
            }
        }
    }

    // Samples per class: the images with the most pixels of the class.
    const PER_CLASS: usize = 4;
    // (class, [(stem, pixels of the class, instances of the class)])
    type Picks = Vec<(usize, Vec<(String, u64, usize)>)>;
    let mut picks: Picks = Vec::new();
    for k in 1..n_classes {
        let mut with: Vec<(String, u64, usize)> = m
            .images
            .iter()
            .filter_map(|im| {
                let px = *im.class_pixels.get(&(k as u32)).unwrap_or(&0);
                let inst = im
                    .instances
                    .iter()
                    .filter(|i| i.class as usize == k)
                    .count();
                (px > 0).then(|| (im.stem.clone(), px, inst))
            })
            .collect();
        with.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        with.truncate(PER_CLASS);
        picks.push((k, with));
    }
    let needed: BTreeSet<String> = picks
        .iter()
        .flat_map(|(_, v)| v.iter().map(|x| x.0.clone()))
        .collect();
    let palette = mask_palette(&colors);
    let thumbs_by_stem: BTreeMap<String, Result<String, String>> = needed
        .into_par_iter()
        .map(|stem| {
            let r = sample_thumb(&ds, &stem, &palette, opts.thumb_px);
            (stem, r)
        })
        .collect();
    for r in thumbs_by_stem.values() {
        if let Err(e) = r {
            notes.push(e.clone());
        }
    }
    let samples: Vec<_> = picks
        .iter()
        .map(|(k, items)| {
            let items: Vec<_> = items
                .iter()
                .filter_map(|(stem, px, inst)| {
                    let uri = thumbs_by_stem.get(stem)?.as_ref().ok()?;
                    Some(json!({"stem": stem, "uri": uri, "pixels": fmt_count(*px as f64), "instances": inst}))
                })
                .collect();
            json!({"name": names[*k], "color": hex(colors[*k]), "items": items})
        })
        .collect();

    let ctx = json!({
        "lang": opts.lang.code(),
        "version": env!("CARGO_PKG_VERSION"),
        "title": format!("{} — {}", t["dataset_report"], dir_name(dir)),
        "source": dir.display().to_string(),
        "t": t,
        "name": dir_name(dir),
        "path": shown_path(dir),
        "notes": notes,
        "warnings": warnings,
        "weights": weights,
        "ds": manifest_section(m),
        "fg_classes": (1..n_classes).map(|k| json!({"name": names[k], "color": hex(colors[k])})).collect::<Vec<_>>(),
        "size_chart": size_chart,
        "size_rows": size_rows,
        "per_view": per_view,
        "image_sizes": image_sizes,
        "splits": splits,
        "samples": samples,
    });
    let html = html::render("dataset.html", Value::from(minijinja::value::Serde(&ctx)))?;
    Ok(Report { html, notes })
}

/// A folder as the page shows it: absolute when it can be resolved, so the reader knows
/// which copy of a dataset or run the page describes.
pub(crate) fn shown_path(dir: &Path) -> String {
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

pub(crate) fn dir_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

fn sample_thumb(
    ds: &Dataset,
    stem: &str,
    palette: &[[u8; 3]],
    thumb_px: u32,
) -> Result<String, String> {
    let photo = read_photo(ds, stem)?;
    let mask = read_index_png(&ds.mask_path(stem)).map_err(|e| format!("{e} (sample skipped)"))?;
    if photo.dimensions() != (mask.width, mask.height) {
        return Err(format!(
            "{}: mask is {}×{} but the image is {}×{} (sample skipped)",
            ds.mask_path(stem).display(),
            mask.width,
            mask.height,
            photo.width(),
            photo.height()
        ));
    }
    let (tw, th) = thumbs::fit(mask.width, mask.height, thumb_px);
    let small = thumbs::photo(&photo, tw, th);
    let ignore = ds.manifest.ignore_index;
    let idx = thumbs::pool(
        &mask.data,
        mask.width,
        mask.height,
        tw,
        th,
        &thumbs::class_rank(ignore),
    );
    Ok(thumbs::jpeg_uri(&thumbs::overlay(
        &small, &idx, palette, ignore, 0.55,
    )))
}
