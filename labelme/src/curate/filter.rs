//! `filter`: remove label instances smaller than an area threshold.
//!
//! Tiny components are usually annotation slips (a stray click, a polygon edge) or defects too
//! small to learn; either way they teach the model noise. An instance is an 8-connected
//! component of one class, so removing one never changes any other instance. In an image
//! with an object mask the instances are its objects instead (see [`crate::objects`]): a
//! removed object's class pixels get the same replacement and its ids become 0.

use std::collections::BTreeMap;
use std::path::Path;

use super::output::{
    derive, ext_of, read_mask, read_objects, Derived, ImageOut, Item, MaskOut, ObjectsOut,
};
use super::{components, usage, Result, Tick};
use crate::dataset::{Dataset, IGNORE_INDEX};
use crate::objects::object_instances;

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
        let (w, h) = (e.width, e.height);
        let (removed, objects) = match read_objects(ds, e)? {
            None => (remove_components(&mut mask, w, h, &thresholds, fill), None),
            Some((_, mut ids)) => (
                remove_objects(&mut mask, &mut ids, w, h, &thresholds, fill),
                Some(ObjectsOut::Data(ids)),
            ),
        };
        if opts.drop_empty && !mask.iter().any(|&v| components::is_foreground(v)) {
            let p: PerImage = (removed, Some(e.stem.clone()));
            return Ok((Vec::new(), p));
        }
        let item = Item {
            entry: e.clone(),
            ext: ext_of(&e.file),
            image: ImageOut::Copy(ds.image_path(e)),
            mask: MaskOut::Data(mask),
            objects,
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

/// Remove the 8-connected components of `mask` below their class's threshold (their pixels
/// become `fill`); returns (class, area) of each removed one.
fn remove_components(
    mask: &mut [u8],
    width: u32,
    height: u32,
    thresholds: &[u64],
    fill: u8,
) -> Vec<(u32, u64)> {
    let labels = components::label(mask, width, height);
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
    removed
}

/// Remove the objects of `ids` whose area is below their class's threshold: their
/// foreground pixels in `mask` become `fill` (background and ignore under them stay), their
/// ids 0. Objects that are not instances (on background only) are left alone. Returns
/// (class, area) of each removed object.
fn remove_objects(
    mask: &mut [u8],
    ids: &mut [u8],
    width: u32,
    height: u32,
    thresholds: &[u64],
    fill: u8,
) -> Vec<(u32, u64)> {
    let found = object_instances(mask, ids, width, 0..height);
    let mut drop = [false; 256];
    let mut removed = Vec::new();
    for (inst, &id) in found.instances.iter().zip(&found.ids) {
        if inst.area < thresholds[inst.class as usize] {
            drop[id as usize] = true;
            removed.push((inst.class, inst.area));
        }
    }
    if !removed.is_empty() {
        for (c, o) in mask.iter_mut().zip(ids.iter_mut()) {
            if drop[*o as usize] {
                if components::is_foreground(*c) {
                    *c = fill;
                }
                *o = 0;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_go_whole_even_when_they_touch_a_large_one() {
        // objects 1 (3 px) and 2 (4 px) of class 1 touch: one component of 7 px, which
        // a threshold of 4 keeps; by objects, object 1 goes
        let mut mask = vec![1, 1, 1, 1, 0, 1, 1, 1, 0, 0];
        let mut ids = vec![1, 1, 2, 2, 0, 1, 2, 2, 0, 0];
        let mut thresholds = vec![4u64; 256];
        thresholds[0] = 0;
        let removed = remove_objects(&mut mask, &mut ids, 5, 2, &thresholds, IGNORE_INDEX);
        assert_eq!(removed, [(1, 3)]);
        assert_eq!(mask, [255, 255, 1, 1, 0, 255, 1, 1, 0, 0]);
        assert_eq!(ids, [0, 0, 2, 2, 0, 0, 2, 2, 0, 0]);

        let mut comps = vec![1, 1, 1, 1, 0, 1, 1, 1, 0, 0];
        assert!(remove_components(&mut comps, 5, 2, &thresholds, 0).is_empty());
    }

    #[test]
    fn a_removed_object_leaves_background_and_ignore_under_it_alone() {
        // object 3 lies on class 2 (2 px), background (1 px) and ignore (1 px): class 2 by
        // majority, area 4
        let mut mask = vec![2, 2, 0, 255, 2];
        let mut ids = vec![3, 3, 3, 3, 0];
        let mut thresholds = vec![0u64; 256];
        thresholds[2] = 5;
        let removed = remove_objects(&mut mask, &mut ids, 5, 1, &thresholds, 0);
        assert_eq!(removed, [(2, 4)]);
        // the class pixel outside every object is not an instance and stays
        assert_eq!(mask, [0, 0, 0, 255, 2]);
        assert_eq!(ids, [0, 0, 0, 0, 0]);
    }
}
