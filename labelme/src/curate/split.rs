//! `split`: view tags and train/val (or k-fold) lists, written into the dataset in place.
//!
//! Splitting only adds split lists and `views` tags: images and masks are not touched, so
//! it is the one curation step that annotates a dataset instead of deriving a new one.
//! Images are split by *group* (their `source`, the photo they came from), so crops and
//! tiles of one photo never land on both sides, and stratified so that every class found in
//! at least two groups is in both train and val.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::output::{derive, ext_of, read_objects, Derived, ImageOut, Item, MaskOut, ObjectsOut};
use super::{usage, Result, Tick};
use crate::dataset::{
    write_manifest, write_split, Dataset, DatasetError, HistoryEntry, ImageEntry, IGNORE_INDEX,
};

/// Where view tags come from.
#[derive(Debug, Clone, Default)]
pub struct ViewRules {
    /// `(view, glob)`: an image gets the view when the glob matches its source file name
    /// (or its whole source path).
    pub globs: Vec<(String, String)>,
    /// A CSV file of `name,view` rows, `name` being a stem, a source file name or a source path.
    pub map_file: Option<PathBuf>,
    /// Take views from the labelme `flags` set to true, as convert keeps them in the
    /// manifest entry (`"flags": {"front": true}`).
    pub from_flags: bool,
}

impl ViewRules {
    /// Whether any rule is given (otherwise existing tags are kept).
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty() && self.map_file.is_none() && !self.from_flags
    }
}

/// Options of [`split`].
#[derive(Debug, Clone, Default)]
pub struct SplitOptions {
    /// How to tag views; empty keeps the existing tags.
    pub views: ViewRules,
    /// Share of images for validation (train.txt / val.txt / trainval.txt).
    pub val: Option<f64>,
    /// A view whose images are the validation set, the rest train (a fixed held-out set).
    pub val_view: Option<String>,
    /// Number of cross-validation folds (fold{k}_train.txt / fold{k}_val.txt).
    pub folds: Option<usize>,
    /// Seed of the shuffle.
    pub seed: u64,
}

/// What [`split`] wrote.
#[derive(Debug, Default)]
pub struct SplitReport {
    /// Images per view tag.
    pub views: BTreeMap<String, usize>,
    /// Images without any view tag (when views were tagged).
    pub untagged: usize,
    /// View-map rows that matched no image.
    pub unmatched_map_rows: Vec<String>,
    /// Groups (source photos) the images fall into.
    pub groups: usize,
    /// `(train, val)` image counts of the train/val split.
    pub train_val: Option<(usize, usize)>,
    /// `(train, val)` image counts per fold.
    pub folds: Vec<(usize, usize)>,
    /// Classes present in only one group, which therefore cannot be on both sides.
    pub single_group_classes: Vec<String>,
    /// Split lists written (names without `.txt`).
    pub lists: Vec<String>,
}

fn file_name(s: &str) -> &str {
    Path::new(s)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(s)
}

fn source_of(e: &ImageEntry) -> &str {
    if e.source.is_empty() {
        &e.file
    } else {
        &e.source
    }
}

/// Tag views on every image; returns unmatched map rows.
fn tag_views(ds: &mut Dataset, rules: &ViewRules) -> Result<Vec<String>> {
    let globs: Vec<(String, GlobMatcher)> = rules
        .globs
        .iter()
        .map(|(v, g)| {
            Glob::new(g)
                .map(|g| (v.clone(), g.compile_matcher()))
                .map_err(|e| usage(format!("--view {v}={g:?}: bad pattern: {e}")))
        })
        .collect::<Result<_>>()?;
    let mut map: Vec<(String, String, bool)> = Vec::new();
    if let Some(p) = &rules.map_file {
        let text = fs::read_to_string(p).map_err(|e| DatasetError::io(p, e))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, view)) = line.split_once(',') else {
                return Err(DatasetError::invalid(
                    p,
                    format!("line {}: expected `name,view`, got {line:?}", i + 1),
                )
                .into());
            };
            let (name, view) = (name.trim(), view.trim());
            if i == 0 && matches!(name, "stem" | "name" | "file" | "source") {
                continue; // header
            }
            map.push((name.to_string(), view.to_string(), false));
        }
    }
    for e in ds.manifest.images.iter_mut() {
        let src = source_of(e).to_string();
        let fname = file_name(&src).to_string();
        let mut views = BTreeSet::new();
        for (v, g) in &globs {
            if g.is_match(&fname) || g.is_match(&src) {
                views.insert(v.clone());
            }
        }
        for (name, v, used) in map.iter_mut() {
            if *name == e.stem || *name == fname || *name == src {
                views.insert(v.clone());
                *used = true;
            }
        }
        if rules.from_flags {
            if let Some(serde_json::Value::Object(flags)) = e.extra.get("flags") {
                for (k, val) in flags {
                    if val.as_bool() == Some(true) {
                        views.insert(k.clone());
                    }
                }
            }
        }
        e.views = views.into_iter().collect();
    }
    Ok(map
        .into_iter()
        .filter(|m| !m.2)
        .map(|m| format!("{},{}", m.0, m.1))
        .collect())
}

/// Images grouped by source photo, in first-appearance order.
struct Groups {
    members: Vec<Vec<usize>>,
    classes: Vec<BTreeSet<u32>>,
}

fn groups(images: &[ImageEntry]) -> Groups {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut g = Groups {
        members: Vec::new(),
        classes: Vec::new(),
    };
    for (i, e) in images.iter().enumerate() {
        let k = *index.entry(source_of(e)).or_insert_with(|| {
            g.members.push(Vec::new());
            g.classes.push(BTreeSet::new());
            g.members.len() - 1
        });
        g.members[k].push(i);
        for (&c, &n) in &e.class_pixels {
            if c != 0 && c != IGNORE_INDEX as u32 && n > 0 {
                g.classes[k].insert(c);
            }
        }
    }
    g
}

/// Pick validation groups: first one group for each class that is in ≥ 2 groups (rarest
/// classes first), then more groups in shuffled order while that brings val closer to the
/// target image count, never taking the last train group of a class that has ≥ 2 groups.
fn val_groups(g: &Groups, sizes: &[usize], val: f64, seed: u64) -> Vec<bool> {
    let n_groups = g.members.len();
    let total: usize = sizes.iter().sum();
    let mut order: Vec<usize> = (0..n_groups).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut class_groups: BTreeMap<u32, usize> = BTreeMap::new();
    for cs in &g.classes {
        for &c in cs {
            *class_groups.entry(c).or_default() += 1;
        }
    }
    let mut train_left = class_groups.clone();
    let mut in_val = vec![false; n_groups];
    let mut val_has: BTreeSet<u32> = BTreeSet::new();
    let mut val_images = 0usize;
    let target = if n_groups < 2 {
        0
    } else {
        ((val * total as f64).round() as usize).clamp(1, total - 1)
    };
    let can_move = |gi: usize, in_val: &[bool], train_left: &BTreeMap<u32, usize>| {
        !in_val[gi]
            && g.classes[gi]
                .iter()
                .all(|c| class_groups[c] < 2 || train_left[c] >= 2)
    };
    let take = |gi: usize,
                in_val: &mut [bool],
                train_left: &mut BTreeMap<u32, usize>,
                val_has: &mut BTreeSet<u32>,
                val_images: &mut usize| {
        in_val[gi] = true;
        *val_images += sizes[gi];
        for &c in &g.classes[gi] {
            *train_left.get_mut(&c).expect("counted") -= 1;
            val_has.insert(c);
        }
    };
    if target > 0 {
        let mut rare: Vec<(usize, u32)> = class_groups
            .iter()
            .filter(|(_, &n)| n >= 2)
            .map(|(&c, &n)| (n, c))
            .collect();
        rare.sort();
        for (_, c) in rare {
            if val_has.contains(&c) {
                continue;
            }
            // the smallest eligible group holding c, ties by shuffled order, keeps val close to target
            let pick = order
                .iter()
                .copied()
                .filter(|&gi| g.classes[gi].contains(&c) && can_move(gi, &in_val, &train_left))
                .min_by_key(|&gi| sizes[gi]);
            if let Some(gi) = pick {
                take(
                    gi,
                    &mut in_val,
                    &mut train_left,
                    &mut val_has,
                    &mut val_images,
                );
            }
        }
        for &gi in &order {
            if val_images >= target {
                break;
            }
            // take a group when it brings val closer to the target than it is now
            if 2 * val_images + sizes[gi] < 2 * target && can_move(gi, &in_val, &train_left) {
                take(
                    gi,
                    &mut in_val,
                    &mut train_left,
                    &mut val_has,
                    &mut val_images,
                );
            }
        }
    }
    in_val
}

/// Assign groups to `k` folds: groups holding rare classes first, each to the fold that has
/// the fewest of its classes so far, then the fewest images.
fn fold_groups(g: &Groups, sizes: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let n_groups = g.members.len();
    let mut order: Vec<usize> = (0..n_groups).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut class_groups: BTreeMap<u32, usize> = BTreeMap::new();
    for cs in &g.classes {
        for &c in cs {
            *class_groups.entry(c).or_default() += 1;
        }
    }
    let rarity = |gi: usize| {
        g.classes[gi]
            .iter()
            .map(|c| class_groups[c])
            .min()
            .unwrap_or(usize::MAX)
    };
    let mut ranked: Vec<(usize, usize, usize)> = order
        .iter()
        .enumerate()
        .map(|(rank, &gi)| (rarity(gi), rank, gi))
        .collect();
    ranked.sort();
    let mut fold_of = vec![0usize; n_groups];
    let mut fold_class: Vec<BTreeMap<u32, usize>> = vec![BTreeMap::new(); k];
    let mut fold_images = vec![0usize; k];
    for (_, _, gi) in ranked {
        let f = (0..k)
            .min_by_key(|&f| {
                let overlap: usize = g.classes[gi]
                    .iter()
                    .map(|c| fold_class[f].get(c).copied().unwrap_or(0))
                    .sum();
                (overlap, fold_images[f], f)
            })
            .expect("k >= 1");
        fold_of[gi] = f;
        fold_images[f] += sizes[gi];
        for &c in &g.classes[gi] {
            *fold_class[f].entry(c).or_default() += 1;
        }
    }
    fold_of
}

fn stems_where(images: &[ImageEntry], g: &Groups, pick: impl Fn(usize) -> bool) -> Vec<String> {
    let mut v: Vec<String> = (0..g.members.len())
        .filter(|&gi| pick(gi))
        .flat_map(|gi| g.members[gi].iter().map(|&i| images[i].stem.clone()))
        .collect();
    v.sort();
    v
}

/// The train, val and trainval lists of groups chosen for validation by `in_val`.
fn push_train_val(
    images: &[ImageEntry],
    g: &Groups,
    in_val: &[bool],
    report: &mut SplitReport,
    lists: &mut Vec<(String, Vec<String>)>,
) {
    let train = stems_where(images, g, |gi| !in_val[gi]);
    let val = stems_where(images, g, |gi| in_val[gi]);
    let mut all: Vec<String> = images.iter().map(|e| e.stem.clone()).collect();
    all.sort();
    report.train_val = Some((train.len(), val.len()));
    lists.push(("train".into(), train));
    lists.push(("val".into(), val));
    lists.push(("trainval".into(), all));
}

/// Tag views and write split lists into `ds` in place; the manifest is rewritten only to
/// change `views` and append to `history`.
pub fn split(ds: &mut Dataset, opts: &SplitOptions, command: &str) -> Result<SplitReport> {
    if let Some(v) = opts.val {
        if !(0.0..1.0).contains(&v) || v == 0.0 {
            return Err(usage(format!(
                "--val {v}: must be between 0 and 1 (e.g. 0.2)"
            )));
        }
    }
    let mut report = SplitReport::default();
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    if !opts.views.is_empty() {
        let old_views: BTreeSet<String> = ds
            .manifest
            .images
            .iter()
            .flat_map(|e| e.views.iter().cloned())
            .collect();
        report.unmatched_map_rows = tag_views(ds, &opts.views)?;
        let new_views: BTreeSet<&String> =
            ds.manifest.images.iter().flat_map(|e| &e.views).collect();
        // views re-tagged away: their lists would contradict the tags
        for v in old_views.iter().filter(|v| !new_views.contains(v)) {
            let p = ds
                .root
                .join(crate::dataset::SPLITS_DIR)
                .join(format!("{v}.txt"));
            if p.exists() {
                fs::remove_file(&p).map_err(|e| DatasetError::io(&p, e))?;
            }
        }
        let mut per_view: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in &ds.manifest.images {
            if e.views.is_empty() {
                report.untagged += 1;
            }
            for v in &e.views {
                per_view.entry(v.clone()).or_default().push(e.stem.clone());
            }
        }
        for (v, stems) in per_view {
            if matches!(v.as_str(), "train" | "val" | "trainval") || v.starts_with("fold") {
                return Err(usage(format!(
                    "view name {v:?} would overwrite a train/val split list; choose another name"
                )));
            }
            report.views.insert(v.clone(), stems.len());
            lists.push((v, stems));
        }
    }
    let images = &ds.manifest.images;
    let g = groups(images);
    report.groups = g.members.len();
    let sizes: Vec<usize> = g.members.iter().map(Vec::len).collect();
    let mut class_groups: BTreeMap<u32, usize> = BTreeMap::new();
    for cs in &g.classes {
        for &c in cs {
            *class_groups.entry(c).or_default() += 1;
        }
    }
    report.single_group_classes = class_groups
        .iter()
        .filter(|(_, &n)| n < 2)
        .map(|(&c, _)| {
            ds.manifest
                .classes
                .get(c as usize)
                .map_or_else(|| c.to_string(), |x| x.name.clone())
        })
        .collect();
    if opts.val.is_some() && opts.val_view.is_some() {
        return Err(usage(
            "--val and --val-view both choose the validation images; give one",
        ));
    }
    // a fixed held-out set (e.g. a paper's test images): whole source photos tagged with
    // the view go to val, so crops of one photo still never straddle train and val
    let fixed_val = match &opts.val_view {
        Some(view) => {
            let in_val: Vec<bool> = g
                .members
                .iter()
                .map(|m| m.iter().any(|&i| images[i].views.iter().any(|v| v == view)))
                .collect();
            let n = in_val.iter().filter(|&&b| b).count();
            if n == 0 || n == g.members.len() {
                return Err(usage(format!(
                    "--val-view {view}: {} of {} source photos are tagged {view:?}; \
                     validation needs some but not all (tag them with --view {view}='GLOB')",
                    n,
                    g.members.len()
                )));
            }
            Some(in_val)
        }
        None => None,
    };
    if let Some(in_val) = fixed_val {
        push_train_val(images, &g, &in_val, &mut report, &mut lists);
    }
    if let Some(val) = opts.val {
        if g.members.len() < 2 {
            return Err(usage(format!(
                "{}: a train/val split needs at least 2 source photos, found {}",
                ds.root.display(),
                g.members.len()
            )));
        }
        let in_val = val_groups(&g, &sizes, val, opts.seed);
        push_train_val(images, &g, &in_val, &mut report, &mut lists);
    }
    if let Some(k) = opts.folds {
        if k < 2 || k > g.members.len() {
            return Err(usage(format!(
                "--folds {k}: needs 2 ≤ k ≤ number of source photos ({})",
                g.members.len()
            )));
        }
        let fold_of = fold_groups(&g, &sizes, k, opts.seed);
        for f in 0..k {
            let train = stems_where(images, &g, |gi| fold_of[gi] != f);
            let val = stems_where(images, &g, |gi| fold_of[gi] == f);
            report.folds.push((train.len(), val.len()));
            lists.push((format!("fold{f}_train"), train));
            lists.push((format!("fold{f}_val"), val));
        }
    }
    for (name, stems) in &lists {
        write_split(&ds.root, name, stems)?;
        report.lists.push(name.clone());
    }
    ds.manifest.history.push(HistoryEntry::now(command));
    write_manifest(&ds.root, &ds.manifest)?;
    Ok(report)
}

/// Write the images tagged `view` as a new dataset at `out` (images, masks and object masks
/// copied as they are; split lists carried over, restricted to those images).
pub fn only(ds: &Dataset, view: &str, out: &Path, command: &str, tick: Tick) -> Result<Derived> {
    if !ds
        .manifest
        .images
        .iter()
        .any(|e| e.views.iter().any(|v| v == view))
    {
        return Err(usage(format!(
            "no image of {} has view {view:?}; tag views first with `segkit split {} --view {view}='*{view}*'`",
            ds.root.display(),
            ds.root.display()
        )));
    }
    let (derived, _) = derive(ds, out, ds.manifest.classes.clone(), command, tick, |e| {
        if !e.views.iter().any(|v| v == view) {
            return Ok((Vec::new(), ()));
        }
        let mask = ds.mask_path(&e.stem);
        let item = Item {
            entry: e.clone(),
            ext: ext_of(&e.file),
            image: ImageOut::Copy(ds.image_path(e)),
            mask: MaskOut::Copy(mask),
            objects: read_objects(ds, e)?.map(|(src, ids)| ObjectsOut::Copy { src, ids }),
        };
        Ok((vec![item], ()))
    })?;
    Ok(derived)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(classes: &[&[u32]]) -> Groups {
        Groups {
            members: (0..classes.len()).map(|i| vec![i]).collect(),
            classes: classes
                .iter()
                .map(|c| c.iter().copied().collect())
                .collect(),
        }
    }

    #[test]
    fn val_lands_closest_to_target_with_big_groups() {
        let one: &[u32] = &[1];
        let gr = g(&[one; 8]);
        let in_val = val_groups(&gr, &[3; 8], 0.2, 0);
        // target round(0.2 * 24) = 5: 6 is closer than 3
        assert_eq!(in_val.iter().filter(|&&v| v).count(), 2);
    }

    #[test]
    fn every_class_in_two_groups_is_on_both_sides() {
        for seed in 0..20 {
            let gr = g(&[&[1], &[1, 2], &[2, 3], &[3], &[4], &[], &[], &[]]);
            let in_val = val_groups(&gr, &[1; 8], 0.1, seed);
            for c in 1..=3 {
                let holders: Vec<bool> = (0..8)
                    .filter(|&i| gr.classes[i].contains(&c))
                    .map(|i| in_val[i])
                    .collect();
                assert!(
                    holders.contains(&true) && holders.contains(&false),
                    "seed {seed} class {c}"
                );
            }
        }
    }

    #[test]
    fn folds_partition_groups_and_spread_classes() {
        let gr = g(&[&[1], &[1], &[1], &[2], &[2], &[2], &[], &[], &[]]);
        let f = fold_groups(&gr, &[1; 9], 3, 5);
        for k in 0..3 {
            assert_eq!(f.iter().filter(|&&x| x == k).count(), 3);
            for c in [1, 2] {
                assert_eq!(
                    (0..9)
                        .filter(|&i| f[i] == k && gr.classes[i].contains(&c))
                        .count(),
                    1
                );
            }
        }
    }
}
