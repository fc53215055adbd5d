//! `filter`: remove label instances smaller than an area threshold.
//!
//! Tiny components are usually annotation slips (a stray click, a polygon edge) or defects too
//! small to learn; either way they teach the model noise. An instance is an 8-connected
//! component of one class, so removing one never changes any other instance.

use std::collections::BTreeMap;
use std::path::Path;

use super::output::{derive, ext_of, read_mask, Derived, ImageOut, Item, MaskOut};
use super::{components, usage, Result, Tick};
use crate::dataset::{Dataset, IGNORE_INDEX};

/// What removed instances become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterAction {
    /// Background (0): the model learns "no defect here".
    #[default]
    Background,
    /// Ignore (255): the loss skips those pixels.
    Ignore,
}

/// Options of [`filter`].
#[derive(Debug, Clone, Default)]
pub struct FilterOptions {
    /// Instances with fewer pixels than this are removed.
    pub min_area: u64,
    /// Per-class thresholds overriding `min_area`, by class name.
    pub per_class: Vec<(String, u64)>,
    /// What removed pixels become.
    pub action: FilterAction,
    /// Leave out images with no foreground left.
    pub drop_empty: bool,
}

/// Removed instances of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Instances removed.
    pub instances: u64,
    /// Pixels they covered.
    pub pixels: u64,
}

/// What [`filter`] did.
#[derive(Debug)]
pub struct FilterReport {
    /// The written dataset.
    pub derived: Derived,
    /// Removed instances per class id.
    pub removed: BTreeMap<u32, Removed>,
    /// Stems left out by `drop_empty`.
    pub dropped: Vec<String>,
}

/// Write a copy of `ds` to `out` without the instances smaller than the thresholds.
pub fn filter(
    ds: &Dataset,
    out: &Path,
    opts: &FilterOptions,
    command: &str,
    tick: Tick,
) -> Result<FilterReport> {
    let mut thresholds = vec![opts.min_area; 256];
    for (name, px) in &opts.per_class {
        let c = ds
            .manifest
            .classes
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| {
                usage(format!(
                    "--per-class {name}={px}: no class {name:?} in {}; classes are {}",
                    ds.root.display(),
                    ds.manifest.class_names().join(", ")
                ))
            })?;
        thresholds[c.id as usize] = *px;
    }
    let fill = match opts.action {
        FilterAction::Background => 0,
        FilterAction::Ignore => IGNORE_INDEX,
    };
    type PerImage = (Vec<(u32, u64)>, Option<String>);
    let (derived, per_image) = derive(ds, out, ds.manifest.classes.clone(), command, tick, |e| {
        let mut mask = read_mask(ds, e)?;
        let labels = components::label(&mask, e.width, e.height);
        let remove: Vec<bool> = labels
            .components
            .iter()
            .map(|c| c.area < thresholds[c.class as usize])
            .collect();
        let removed: Vec<(u32, u64)> = labels
            .components
            .iter()
            .zip(&remove)
            .filter(|(_, &r)| r)
            .map(|(c, _)| (c.class, c.area))
            .collect();
        if !removed.is_empty() {
            for (v, &l) in mask.iter_mut().zip(&labels.labels) {
                if l != 0 && remove[l as usize - 1] {
                    *v = fill;
                }
            }
        }
        if opts.drop_empty && !mask.iter().any(|&v| components::is_foreground(v)) {
            let p: PerImage = (removed, Some(e.stem.clone()));
            return Ok((Vec::new(), p));
        }
        let item = Item {
            entry: e.clone(),
            ext: ext_of(&e.file),
            image: ImageOut::Copy(ds.image_path(e)),
            mask: MaskOut::Data(mask),
        };
        Ok((vec![item], (removed, None)))
    })?;
    let mut removed: BTreeMap<u32, Removed> = BTreeMap::new();
    let mut dropped = Vec::new();
    for (rm, d) in per_image {
        for (class, area) in rm {
            let r = removed.entry(class).or_default();
            r.instances += 1;
            r.pixels += area;
        }
        dropped.extend(d);
    }
    Ok(FilterReport {
        derived,
        removed,
        dropped,
    })
}
