//! Class pixel counts and instances (8-connected components per class) of a class mask,
//! computed on runs of equal values rather than per pixel.
//!
//! Defect masks are almost all background: skipping zero bytes eight at a time and
//! union-finding runs instead of pixels makes this a small fraction of a conversion. The
//! result is the same as the pixel labeller [`crate::curate::components::label`] (tested
//! below): 0 and 255 are never instances, components are listed in raster order of their
//! first pixel.

use std::collections::BTreeMap;

use crate::dataset::{Instance, IGNORE_INDEX};

/// A horizontal run of one nonzero value: pixels `x0..=x1` of row `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Row.
    pub y: u32,
    /// First column.
    pub x0: u32,
    /// Last column (inclusive).
    pub x1: u32,
    /// The mask value.
    pub value: u8,
}

impl Run {
    /// Pixels in the run.
    pub fn len(&self) -> u64 {
        (self.x1 - self.x0 + 1) as u64
    }

    /// Always false: a run has at least one pixel (here for clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Runs of equal nonzero values in a row, appended to `out`.
fn row_runs(row: &[u8], y: u32, out: &mut Vec<Run>) {
    let mut x = 0;
    let n = row.len();
    while x < n {
        // skip zeros a word at a time
        while x + 8 <= n && u64::from_ne_bytes(row[x..x + 8].try_into().expect("8 bytes")) == 0 {
            x += 8;
        }
        while x < n && row[x] == 0 {
            x += 1;
        }
        if x >= n {
            break;
        }
        let v = row[x];
        let start = x;
        while x < n && row[x] == v {
            x += 1;
        }
        out.push(Run {
            y,
            x0: start as u32,
            x1: (x - 1) as u32,
            value: v,
        });
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[parent[x as usize] as usize];
        parent[x as usize] = p;
        x = p;
    }
    x
}

/// The nonzero runs of a mask and the 8-connected components of equal values they form —
/// the one connected-component labeller behind instances ([`counts_and_instances`]) and the
/// defect metrics ([`crate::defects`]). Runs of the `ignore` value belong to no component.
/// Components are numbered densely in raster order of their first pixel.
#[derive(Debug, Clone)]
pub struct RunComponents {
    runs: Vec<Run>,
    /// `row_start[k]`: index of the first run of row `first_row + k`, plus one past the end.
    row_start: Vec<usize>,
    first_row: u32,
    /// Component of each run; [`RunComponents::NONE`] for ignore runs.
    comp: Vec<u32>,
    /// Value and pixel count of each component.
    value: Vec<u8>,
    area: Vec<u64>,
}

impl RunComponents {
    /// The component of an ignore run.
    pub const NONE: u32 = u32::MAX;

    /// Label a `width × height` mask, reading only `rows` (rows outside must be all 0).
    pub fn label(
        mask: &[u8],
        width: u32,
        height: u32,
        rows: std::ops::Range<u32>,
        ignore: u8,
    ) -> RunComponents {
        let w = width as usize;
        assert_eq!(mask.len(), w * height as usize, "mask buffer size");
        assert!(rows.start <= rows.end && rows.end <= height, "row range");
        let mut runs: Vec<Run> = Vec::new();
        let mut row_start: Vec<usize> = Vec::with_capacity(rows.len() + 1);
        for y in rows.clone() {
            row_start.push(runs.len());
            let y = y as usize;
            row_runs(&mask[y * w..(y + 1) * w], y as u32, &mut runs);
        }
        row_start.push(runs.len());

        // union-find over runs; the smaller index (earlier in raster order) stays the root
        let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
        for k in 1..rows.len() {
            let (prev, cur) = (
                row_start[k - 1]..row_start[k],
                row_start[k]..row_start[k + 1],
            );
            let mut j = prev.start;
            for i in cur {
                let r = runs[i];
                if r.value == ignore {
                    continue;
                }
                // runs above that touch [x0 - 1, x1 + 1]
                while j < prev.end && runs[j].x1 + 1 < r.x0 {
                    j += 1;
                }
                let mut k = j;
                while k < prev.end && runs[k].x0 <= r.x1 + 1 {
                    if runs[k].value == r.value {
                        let (a, b) = (find(&mut parent, i as u32), find(&mut parent, k as u32));
                        if a != b {
                            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                            parent[hi as usize] = lo;
                        }
                    }
                    k += 1;
                }
            }
        }
        let mut comp = vec![Self::NONE; runs.len()];
        let mut id_of_root: Vec<u32> = vec![Self::NONE; runs.len()];
        let (mut value, mut area) = (Vec::new(), Vec::new());
        for (i, r) in runs.iter().enumerate() {
            if r.value == ignore {
                continue;
            }
            let root = find(&mut parent, i as u32) as usize;
            if id_of_root[root] == Self::NONE {
                id_of_root[root] = value.len() as u32;
                value.push(r.value);
                area.push(0);
            }
            comp[i] = id_of_root[root];
            area[comp[i] as usize] += r.len();
        }
        RunComponents {
            runs,
            row_start,
            first_row: rows.start,
            comp,
            value,
            area,
        }
    }

    /// All runs, in raster order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Indices (into [`RunComponents::runs`]) of the runs of row `y`.
    pub fn row(&self, y: u32) -> std::ops::Range<usize> {
        match y.checked_sub(self.first_row) {
            Some(k) if (k as usize) + 1 < self.row_start.len() => {
                self.row_start[k as usize]..self.row_start[k as usize + 1]
            }
            _ => 0..0,
        }
    }

    /// The component of run `i`, or [`RunComponents::NONE`] for an ignore run.
    pub fn comp(&self, i: usize) -> u32 {
        self.comp[i]
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether there are no components.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The mask value of component `c`.
    pub fn value(&self, c: u32) -> u8 {
        self.value[c as usize]
    }

    /// The pixel count of component `c`.
    pub fn area(&self, c: u32) -> u64 {
        self.area[c as usize]
    }
}

/// Pixel count per value and the instances of a `width × height` class mask.
pub fn counts_and_instances(
    mask: &[u8],
    width: u32,
    height: u32,
) -> (BTreeMap<u32, u64>, Vec<Instance>) {
    counts_and_instances_in_rows(mask, width, height, 0..height)
}

/// [`counts_and_instances`] of a mask whose rows outside `rows` are known to be all
/// background (0), reading only `rows`: a converter knows which rows its shapes touched.
pub fn counts_and_instances_in_rows(
    mask: &[u8],
    width: u32,
    height: u32,
    rows: std::ops::Range<u32>,
) -> (BTreeMap<u32, u64>, Vec<Instance>) {
    let rc = RunComponents::label(mask, width, height, rows, IGNORE_INDEX);
    let mut hist = [0u64; 256];
    for r in rc.runs() {
        hist[r.value as usize] += r.len();
    }
    hist[0] = mask.len() as u64 - hist.iter().sum::<u64>();
    let counts = hist
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(v, &n)| (v as u32, n))
        .collect();

    let mut extent: Vec<[u32; 4]> = vec![[u32::MAX, u32::MAX, 0, 0]; rc.len()]; // x0, y0, x1, y1
    for (i, r) in rc.runs().iter().enumerate() {
        let c = rc.comp(i);
        if c == RunComponents::NONE {
            continue;
        }
        let e = &mut extent[c as usize];
        e[0] = e[0].min(r.x0);
        e[1] = e[1].min(r.y);
        e[2] = e[2].max(r.x1);
        e[3] = e[3].max(r.y);
    }
    let instances = extent
        .iter()
        .enumerate()
        .map(|(c, e)| Instance {
            class: rc.value(c as u32) as u32,
            area: rc.area(c as u32),
            bbox: [e[0], e[1], e[2] - e[0] + 1, e[3] - e[1] + 1],
        })
        .collect();
    (counts, instances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn diagonal_touch_is_one_instance_and_classes_split() {
        #[rustfmt::skip]
        let m = [
            1, 0, 0, 2,
            0, 1, 0, 2,
            0, 0, 3, 255,
        ];
        let (counts, inst) = counts_and_instances(&m, 4, 3);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [(0, 6), (1, 2), (2, 2), (3, 1), (255, 1)]
        );
        assert_eq!(
            inst,
            [
                Instance {
                    class: 1,
                    area: 2,
                    bbox: [0, 0, 2, 2]
                },
                Instance {
                    class: 2,
                    area: 2,
                    bbox: [3, 0, 1, 2]
                },
                Instance {
                    class: 3,
                    area: 1,
                    bbox: [2, 2, 1, 1]
                },
            ]
        );
    }

    #[test]
    fn same_result_as_the_pixel_labeller_on_random_masks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..300 {
            let (w, h) = (rng.gen_range(1..40u32), rng.gen_range(1..40u32));
            let p = rng.gen_range(0.05..0.9);
            let m: Vec<u8> = (0..w * h)
                .map(|_| {
                    if rng.gen_bool(p) {
                        [1, 2, 3, 255][rng.gen_range(0..4)]
                    } else {
                        0
                    }
                })
                .collect();
            let (counts, inst) = counts_and_instances(&m, w, h);
            assert_eq!(inst, crate::curate::components::label(&m, w, h).components);
            assert_eq!(counts, crate::dataset::count_values(&m));
            // the same when told which rows hold anything, with empty rows around them
            let pad = rng.gen_range(0..5u32);
            let mut padded = vec![0u8; (w * pad) as usize];
            padded.extend_from_slice(&m);
            padded.resize(padded.len() + (w * pad) as usize, 0);
            let (c2, i2) = counts_and_instances_in_rows(&padded, w, h + 2 * pad, pad..pad + h);
            let shifted: Vec<Instance> = inst
                .iter()
                .map(|i| Instance {
                    bbox: [i.bbox[0], i.bbox[1] + pad, i.bbox[2], i.bbox[3]],
                    ..i.clone()
                })
                .collect();
            assert_eq!(i2, shifted);
            assert_eq!(c2, crate::dataset::count_values(&padded));
        }
    }
}
