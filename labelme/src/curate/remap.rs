//! `remap`: merge, drop and renumber classes, or collapse them to defect/background.
//!
//! Class ids stay dense (0..N-1) after every change, so that a model's output channels,
//! `class_names.txt` and the palette always agree. An object mask keeps its ids, except
//! where the class under an object pixel changes to background or ignore (a dropped class,
//! a `--value` to 0 or 255): there the object pixel becomes 0, so no object outlives its
//! class.

use std::path::Path;

use super::output::{
    derive, ext_of, read_mask, read_objects, Derived, ImageOut, Item, MaskOut, ObjectsOut,
};
use super::{usage, Result, Tick};
use crate::dataset::{ClassInfo, Dataset, DatasetError, Manifest, IGNORE_INDEX};

/// Where dropped classes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DropTo {
    /// Background (0).
    #[default]
    Background,
    /// Ignore (255).
    Ignore,
}

/// Options of [`remap`].
#[derive(Debug, Clone, Default)]
pub struct RemapOptions {
    /// Raw mask value changes applied first, before classes are looked at (e.g. `255 → 1` for
    /// binary masks stored as 0/255).
    pub values: Vec<(u8, u8)>,
    /// Merges: these class names become the class with that name (new or existing).
    pub maps: Vec<(Vec<String>, String)>,
    /// Classes to remove.
    pub drop: Vec<String>,
    /// Where removed classes go.
    pub drop_to: DropTo,
    /// Collapse every remaining foreground class into one class with this name.
    pub binary: Option<String>,
}

/// What [`remap`] did.
#[derive(Debug)]
pub struct RemapReport {
    /// The written dataset.
    pub derived: Derived,
    /// Classes of the new dataset.
    pub classes: Vec<ClassInfo>,
    /// For each old class, in id order: its name and what it became (a new class name,
    /// or `"ignore"`).
    pub mapping: Vec<(String, String)>,
}

/// The lookup table old value → new value, and the new class names.
fn plan(m: &Manifest, opts: &RemapOptions) -> Result<([Option<u8>; 256], Vec<String>)> {
    let old = m.class_names();
    let known = |n: &String, flag: &str| -> Result<()> {
        if old.iter().any(|o| o == n) {
            Ok(())
        } else {
            Err(usage(format!(
                "{flag} {n}: no such class; classes are {}",
                old.join(", ")
            )))
        }
    };
    for (froms, _) in &opts.maps {
        for f in froms {
            known(f, "--map")?;
        }
    }
    for d in &opts.drop {
        known(d, "--drop")?;
    }
    let mut names = vec![old
        .first()
        .cloned()
        .unwrap_or_else(|| "_background_".into())];
    let id_of = |n: &str, names: &mut Vec<String>| -> u8 {
        match names.iter().position(|x| x == n) {
            Some(i) => i as u8,
            None => {
                names.push(n.to_string());
                (names.len() - 1) as u8
            }
        }
    };
    let mut class_lut: [Option<u8>; 256] = [None; 256];
    class_lut[0] = Some(0);
    class_lut[IGNORE_INDEX as usize] = Some(IGNORE_INDEX);
    for (c, name) in old.iter().enumerate().skip(1) {
        let target = if opts.drop.contains(name) {
            match opts.drop_to {
                DropTo::Background => 0,
                DropTo::Ignore => IGNORE_INDEX,
            }
        } else if let Some(b) = &opts.binary {
            id_of(b, &mut names)
        } else if let Some((_, to)) = opts.maps.iter().find(|(f, _)| f.contains(name)) {
            id_of(to, &mut names)
        } else {
            id_of(name, &mut names)
        };
        if names.len() > 255 {
            return Err(usage(
                "more than 254 classes: masks are 8-bit with 255 = ignore",
            ));
        }
        class_lut[c] = Some(target);
    }
    if let Some(b) = &opts.binary {
        // values past the class list become the defect class too, so that
        // `--value 255=1 --binary` fixes a 0/255 mask dataset that lists background only
        let d = id_of(b, &mut names);
        for slot in class_lut
            .iter_mut()
            .take(IGNORE_INDEX as usize)
            .skip(old.len().max(1))
        {
            *slot = Some(d);
        }
    }
    // raw value changes first, then classes
    let mut lut: [Option<u8>; 256] = [None; 256];
    for (v, slot) in lut.iter_mut().enumerate() {
        let raw = opts
            .values
            .iter()
            .rev()
            .find(|(f, _)| *f as usize == v)
            .map_or(v as u8, |x| x.1);
        *slot = class_lut[raw as usize];
    }
    Ok((lut, names))
}

/// Old values whose object pixels are cleared (set to 0): those that become background or
/// ignore without having been it.
fn clears(lut: &[Option<u8>; 256]) -> [bool; 256] {
    let mut clear = [false; 256];
    for (v, c) in clear.iter_mut().enumerate() {
        *c = match lut[v] {
            Some(0) => v != 0,
            Some(IGNORE_INDEX) => v != IGNORE_INDEX as usize,
            _ => false,
        };
    }
    clear
}

/// Write a copy of `ds` to `out` with classes merged, dropped and renumbered.
pub fn remap(
    ds: &Dataset,
    out: &Path,
    opts: &RemapOptions,
    command: &str,
    tick: Tick,
) -> Result<RemapReport> {
    let (lut, names) = plan(&ds.manifest, opts)?;
    let classes = Manifest::new(&names).classes;
    let mapping = ds
        .manifest
        .classes
        .iter()
        .map(|c| {
            let to = match lut[c.id as usize] {
                Some(IGNORE_INDEX) => "ignore".to_string(),
                Some(t) => names[t as usize].clone(),
                None => "?".into(),
            };
            (c.name.clone(), to)
        })
        .collect();
    let clear = clears(&lut);
    let n = ds.num_classes();
    let (derived, _) = derive(ds, out, classes.clone(), command, tick, |e| {
        let mut mask = read_mask(ds, e)?;
        let mut objects = read_objects(ds, e)?.map(|(_, ids)| ids);
        let mut bad = [false; 256];
        match objects.as_mut() {
            None => {
                for v in mask.iter_mut() {
                    match lut[*v as usize] {
                        Some(t) => *v = t,
                        None => bad[*v as usize] = true,
                    }
                }
            }
            Some(ids) => {
                for (v, o) in mask.iter_mut().zip(ids.iter_mut()) {
                    if clear[*v as usize] {
                        *o = 0;
                    }
                    match lut[*v as usize] {
                        Some(t) => *v = t,
                        None => bad[*v as usize] = true,
                    }
                }
            }
        }
        if let Some(v) = bad.iter().position(|&b| b) {
            return Err(DatasetError::invalid(
                ds.mask_path(&e.stem),
                format!(
                    "mask value {v} is not a class (the dataset has {n} classes, 0..{}) nor 255; \
                     map it with `--value {v}=255` (ignore) or `--value {v}=<class id>`",
                    n.saturating_sub(1)
                ),
            ));
        }
        let item = Item {
            entry: e.clone(),
            ext: ext_of(&e.file),
            image: ImageOut::Copy(ds.image_path(e)),
            mask: MaskOut::Data(mask),
            objects: objects.map(ObjectsOut::Data),
        };
        Ok((vec![item], ()))
    })?;
    Ok(RemapReport {
        derived,
        classes,
        mapping,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Manifest {
        Manifest::new(&[
            "_background_".into(),
            "scratch".into(),
            "dent".into(),
            "crack".into(),
        ])
    }

    #[test]
    fn merge_and_drop_renumber_densely() {
        let o = RemapOptions {
            maps: vec![(vec!["scratch".into(), "crack".into()], "line".into())],
            drop: vec!["dent".into()],
            ..Default::default()
        };
        let (lut, names) = plan(&m(), &o).unwrap();
        assert_eq!(names, ["_background_", "line"]);
        assert_eq!(&lut[..4], &[Some(0), Some(1), Some(0), Some(1)]);
        assert_eq!(lut[4], None);
        assert_eq!(lut[255], Some(255));
    }

    #[test]
    fn value_map_runs_before_classes() {
        let o = RemapOptions {
            values: vec![(255, 1)],
            binary: Some("defect".into()),
            ..Default::default()
        };
        let (lut, names) = plan(&m(), &o).unwrap();
        assert_eq!(names, ["_background_", "defect"]);
        assert_eq!(lut[255], Some(1));
        assert_eq!(lut[3], Some(1));
    }

    #[test]
    fn binary_fixes_background_only_datasets() {
        let m = Manifest::new(&["_background_".into()]);
        let o = RemapOptions {
            values: vec![(255, 1)],
            binary: Some("defect".into()),
            ..Default::default()
        };
        let (lut, names) = plan(&m, &o).unwrap();
        assert_eq!(names, ["_background_", "defect"]);
        assert_eq!((lut[0], lut[255]), (Some(0), Some(1)));
    }

    #[test]
    fn objects_are_cleared_where_their_class_turns_background_or_ignore() {
        let o = RemapOptions {
            values: vec![(255, 0)],
            drop: vec!["dent".into()],
            drop_to: DropTo::Ignore,
            maps: vec![(vec!["crack".into()], "scratch".into())],
            ..Default::default()
        };
        let (lut, _) = plan(&m(), &o).unwrap();
        let clear = clears(&lut);
        // background stays background, scratch and crack stay classes: kept;
        // dent → ignore and ignore → background: cleared
        assert_eq!(&clear[..4], &[false, false, true, false]);
        assert!(clear[255]);
        let (lut, _) = plan(&m(), &RemapOptions::default()).unwrap();
        assert!(!clears(&lut).iter().any(|&c| c));
    }

    #[test]
    fn unknown_class_is_named() {
        let o = RemapOptions {
            drop: vec!["rust".into()],
            ..Default::default()
        };
        let e = plan(&m(), &o).unwrap_err().to_string();
        assert!(e.contains("rust") && e.contains("scratch"), "{e}");
    }
}
