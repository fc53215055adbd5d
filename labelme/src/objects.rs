//! Object masks (`SegmentationObject/`): one id per object, 0 = none, 255 = boundary or
//! ignore, as in PASCAL VOC and labelme2voc.py. A dataset with object masks records its
//! objects as the manifest's instances instead of the connected components of the class
//! mask: two touching people stay two, a person cut in two by a chair stays one.
//!
//! An object's class is the class under its pixels in the class mask. In masks made by one
//! tool the two always agree; where they do not, the object takes the majority class
//! (ignore and background pixels do not vote, ties go to the lower id) and is listed in
//! [`ObjectInstances::mixed`] so that the caller can warn.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::dataset::{
    atomic_write, DatasetError, Instance, MaskEncoding, IGNORE_INDEX, OBJECTS_DIR,
};
use crate::index_png::encode_index_png;

/// An object that lies on more than one value of the class mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixedObject {
    /// Its id in the object mask.
    pub id: u8,
    /// Pixel count per class value under it (ignore pixels left out).
    pub classes: BTreeMap<u32, u64>,
    /// The class it was recorded as; `None` when it lies on background only and was left out.
    pub class: Option<u32>,
}

/// The objects of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectInstances {
    /// One instance per object id present that lies on some class, in id order: the class,
    /// every pixel of the id, and their bounding box.
    pub instances: Vec<Instance>,
    /// The object id of each of `instances` (same order), for callers that edit the mask.
    pub ids: Vec<u8>,
    /// Objects on several class values (or on background only); see [`MixedObject`].
    pub mixed: Vec<MixedObject>,
}

/// Per-object tallies while scanning.
struct Tally {
    id: u8,
    hist: Box<[u64; 256]>,
    area: u64,
    /// x0, y0, x1, y1 (inclusive)
    extent: [u32; 4],
}

/// The instances recorded by the object mask `objects` over the class mask `class`, both
/// `width` wide and row-major; only `rows` are read (rows outside must be all 0 in
/// `objects`, as a converter knows which rows its shapes touched).
///
/// ```
/// use segkit_labelme::objects::object_instances;
/// // two touching objects of class 1; the second is partly on class 2
/// let class = [1, 1, 2, 0, 1, 1, 1, 0];
/// let objs = [1, 1, 2, 0, 2, 2, 2, 0];
/// let o = object_instances(&class, &objs, 4, 0..2);
/// assert_eq!(o.instances.len(), 2);
/// assert_eq!((o.instances[1].class, o.instances[1].area), (1, 4));
/// assert_eq!(o.instances[1].bbox, [0, 0, 3, 2]);
/// assert_eq!(o.mixed[0].id, 2);
/// assert_eq!(o.ids, [1, 2]);
/// ```
pub fn object_instances(
    class: &[u8],
    objects: &[u8],
    width: u32,
    rows: Range<u32>,
) -> ObjectInstances {
    assert_eq!(class.len(), objects.len(), "mask sizes");
    let w = width as usize;
    // slot[id] = index + 1 into `tallies`; 0 = not seen yet
    let mut slot = [0usize; 256];
    let mut tallies: Vec<Tally> = Vec::new();
    for y in rows {
        let start = y as usize * w;
        let (orow, crow) = (&objects[start..start + w], &class[start..start + w]);
        let mut x = 0;
        while x < w {
            // object masks are mostly zeros: skip them a word at a time
            if x + 8 <= w && u64::from_ne_bytes(orow[x..x + 8].try_into().expect("8")) == 0 {
                x += 8;
                continue;
            }
            let id = orow[x];
            if id == 0 || id == IGNORE_INDEX {
                x += 1;
                continue;
            }
            let run_start = x;
            while x < w && orow[x] == id {
                x += 1;
            }
            if slot[id as usize] == 0 {
                tallies.push(Tally {
                    id,
                    hist: Box::new([0; 256]),
                    area: 0,
                    extent: [u32::MAX, u32::MAX, 0, 0],
                });
                slot[id as usize] = tallies.len();
            }
            let t = &mut tallies[slot[id as usize] - 1];
            for &c in &crow[run_start..x] {
                t.hist[c as usize] += 1;
            }
            t.area += (x - run_start) as u64;
            let e = &mut t.extent;
            e[0] = e[0].min(run_start as u32);
            e[1] = e[1].min(y);
            e[2] = e[2].max(x as u32 - 1);
            e[3] = e[3].max(y);
        }
    }
    tallies.sort_by_key(|t| t.id);

    let mut out = ObjectInstances::default();
    for t in tallies {
        // the majority class; on a tie the lower id (max_by_key keeps the last maximum)
        let class = (1..IGNORE_INDEX as usize)
            .rev()
            .filter(|&c| t.hist[c] > 0)
            .max_by_key(|&c| t.hist[c])
            .map(|c| c as u32);
        let classes: BTreeMap<u32, u64> = (0..IGNORE_INDEX as usize)
            .filter(|&c| t.hist[c] > 0)
            .map(|c| (c as u32, t.hist[c]))
            .collect();
        if classes.len() > 1 || class.is_none() {
            out.mixed.push(MixedObject {
                id: t.id,
                classes,
                class,
            });
        }
        if let Some(class) = class {
            let e = t.extent;
            out.instances.push(Instance {
                class,
                area: t.area,
                bbox: [e[0], e[1], e[2] - e[0] + 1, e[3] - e[1] + 1],
            });
            out.ids.push(t.id);
        }
    }
    out
}

/// `SegmentationObject/<stem>.png` under the dataset folder `root`.
pub fn object_mask_path(root: &Path, stem: &str) -> PathBuf {
    root.join(OBJECTS_DIR).join(format!("{stem}.png"))
}

/// Write `SegmentationObject/<stem>.png` under `root`: P mode with the VOC palette, the ids
/// as they are (rows outside `rows` must be all 0). `segkit convert --instances` and
/// `segkit import-voc` both write object masks this way.
pub fn write_object_mask(
    root: &Path,
    stem: &str,
    width: u32,
    height: u32,
    ids: &[u8],
    rows: Range<u32>,
) -> Result<(), DatasetError> {
    let path = object_mask_path(root, stem);
    let png = encode_index_png(width, height, ids, rows, MaskEncoding::Palette)
        .map_err(|e| DatasetError::io(&path, e))?;
    atomic_write(&path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The same thing pixel by pixel, the obvious way.
    fn reference(class: &[u8], objects: &[u8], w: usize) -> ObjectInstances {
        let mut out = ObjectInstances::default();
        for id in 1..255u8 {
            let px: Vec<usize> = (0..objects.len()).filter(|&i| objects[i] == id).collect();
            if px.is_empty() {
                continue;
            }
            let mut classes = BTreeMap::new();
            for &i in &px {
                if class[i] != 255 {
                    *classes.entry(class[i] as u32).or_insert(0u64) += 1;
                }
            }
            let mut best: Option<(u32, u64)> = None;
            for (&c, &n) in &classes {
                if c != 0 && best.is_none_or(|(_, bn)| n > bn) {
                    best = Some((c, n));
                }
            }
            let class_id = best.map(|b| b.0);
            if classes.len() > 1 || class_id.is_none() {
                out.mixed.push(MixedObject {
                    id,
                    classes: classes.clone(),
                    class: class_id,
                });
            }
            if let Some(c) = class_id {
                let xs = px.iter().map(|i| (i % w) as u32);
                let ys = px.iter().map(|i| (i / w) as u32);
                let (x0, x1) = (xs.clone().min().unwrap(), xs.max().unwrap());
                let (y0, y1) = (ys.clone().min().unwrap(), ys.max().unwrap());
                out.instances.push(Instance {
                    class: c,
                    area: px.len() as u64,
                    bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
                });
                out.ids.push(id);
            }
        }
        out
    }

    #[test]
    fn matches_the_pixel_by_pixel_reference_on_random_masks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..300 {
            let (w, h) = (rng.gen_range(1..30usize), rng.gen_range(1..30usize));
            let n_obj = rng.gen_range(1..6u8);
            // blobs of ids over class values that mostly agree with them
            let objects: Vec<u8> = (0..w * h)
                .map(|_| match rng.gen_range(0..10) {
                    0..=4 => 0,
                    5 => 255,
                    _ => rng.gen_range(1..=n_obj),
                })
                .collect();
            let class: Vec<u8> = objects
                .iter()
                .map(|&o| match (o, rng.gen_range(0..12)) {
                    (255, _) => 255,
                    (_, 0) => 0,
                    (_, 1) => 255,
                    (_, 2) => rng.gen_range(1..4),
                    (0, _) => 0,
                    (o, _) => o % 3 + 1,
                })
                .collect();
            let got = object_instances(&class, &objects, w as u32, 0..h as u32);
            assert_eq!(got, reference(&class, &objects, w), "{w}x{h}");
        }
    }

    #[test]
    fn ties_go_to_the_lower_class_and_background_only_objects_are_left_out() {
        // object 1: two pixels of class 2, two of class 1 (tie → 1); object 2: background
        let class = [2, 2, 1, 1, 0, 255];
        let objects = [1, 1, 1, 1, 2, 2];
        let o = object_instances(&class, &objects, 6, 0..1);
        assert_eq!(
            o.instances,
            [Instance {
                class: 1,
                area: 4,
                bbox: [0, 0, 4, 1]
            }]
        );
        assert_eq!(o.mixed.len(), 2);
        assert_eq!(o.mixed[0].class, Some(1));
        assert_eq!(o.mixed[1].class, None);
        assert_eq!(o.mixed[1].classes, BTreeMap::from([(0, 1)]));
    }

    #[test]
    fn rows_outside_the_range_are_not_read() {
        let (w, h) = (16u32, 5u32);
        let mut objects = vec![0u8; (w * h) as usize];
        let class = vec![3u8; (w * h) as usize];
        objects[(2 * w + 9) as usize..(2 * w + 14) as usize].fill(7);
        let full = object_instances(&class, &objects, w, 0..h);
        assert_eq!(full, object_instances(&class, &objects, w, 2..3));
        assert_eq!(
            full.instances,
            [Instance {
                class: 3,
                area: 5,
                bbox: [9, 2, 5, 1]
            }]
        );
    }
}
