//! Defect-level scoring of a predicted class mask against its ground truth — the contract's
//! `defect_recall` and `false_defects_per_image` — shared by the trainer (metrics.jsonl) and
//! the reports (per-image scores), so the two can never disagree.
//!
//! A defect is an 8-connected component of one foreground class (not 0, not the ignore
//! value). A ground-truth defect is *found* when the predicted components of its class that
//! touch it cover it with IoU ≥ [`DEFECT_IOU`]; a predicted defect is *false* when it touches
//! no ground truth of its class, unless it lies wholly on ignored pixels (neither right nor
//! wrong there).
//!
//! ```
//! use segkit_labelme::defects::count;
//! // 4×2: one true defect found, one false speck on the right
//! let truth = [1, 1, 0, 0,
//!              1, 1, 0, 0];
//! let pred  = [1, 1, 0, 0,
//!              0, 0, 0, 1];
//! let c = count(&truth, &pred, 4, 2, 255);
//! assert_eq!((c.truth, c.found, c.false_pred), (1, 1, 1));
//! ```

use std::collections::BTreeMap;

/// IoU a ground-truth defect needs with the prediction to count as found (the contract's 0.1).
pub const DEFECT_IOU: f64 = 0.1;

/// Defect counts of one image (or, summed, of a set of images).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefectCounts {
    /// Ground-truth defects.
    pub truth: u64,
    /// Ground-truth defects found by the prediction (IoU ≥ [`DEFECT_IOU`]).
    pub found: u64,
    /// Predicted defects touching no ground truth of their class.
    pub false_pred: u64,
}

impl std::ops::AddAssign for DefectCounts {
    fn add_assign(&mut self, o: DefectCounts) {
        self.truth += o.truth;
        self.found += o.found;
        self.false_pred += o.false_pred;
    }
}

/// A horizontal run of equal non-zero mask values: `[x0, x1)` on one row.
#[derive(Debug, Clone, Copy)]
struct Run {
    x0: u32,
    x1: u32,
    value: u8,
}

/// 8-connected components of equal non-zero values, labelled over runs rather than pixels:
/// defect masks are mostly background, so this touches each pixel once and allocates per
/// run (a per-pixel union-find over a 2000×2000 mask costs tens of megabytes per call).
struct Components {
    runs: Vec<Run>,
    /// Component of each run.
    comp: Vec<u32>,
    /// Index of the first run of each row, plus one past the end.
    row_start: Vec<usize>,
    /// Value and pixel count of each component.
    value: Vec<u8>,
    area: Vec<u64>,
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

impl Components {
    fn label(data: &[u8], width: u32, height: u32) -> Components {
        let w = width as usize;
        let mut runs = Vec::new();
        let mut row_start = Vec::with_capacity(height as usize + 1);
        for y in 0..height as usize {
            row_start.push(runs.len());
            let row = &data[y * w..(y + 1) * w];
            let mut x = 0;
            while x < w {
                let v = row[x];
                if v == 0 {
                    x += row[x..].iter().position(|&p| p != 0).unwrap_or(w - x);
                    continue;
                }
                let len = row[x..].iter().position(|&p| p != v).unwrap_or(w - x);
                runs.push(Run {
                    x0: x as u32,
                    x1: (x + len) as u32,
                    value: v,
                });
                x += len;
            }
        }
        row_start.push(runs.len());
        let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
        for y in 1..height as usize {
            let (prev, cur) = (
                row_start[y - 1]..row_start[y],
                row_start[y]..row_start[y + 1],
            );
            let mut j = prev.start;
            for i in cur {
                let r = runs[i];
                // runs of the previous row that touch r diagonally or directly
                while j < prev.end && runs[j].x1 < r.x0 {
                    j += 1;
                }
                let mut k = j;
                while k < prev.end && runs[k].x0 <= r.x1 {
                    if runs[k].value == r.value {
                        let (a, b) = (find(&mut parent, i as u32), find(&mut parent, k as u32));
                        if a != b {
                            parent[a.max(b) as usize] = a.min(b);
                        }
                    }
                    k += 1;
                }
            }
        }
        let mut comp = vec![0u32; runs.len()];
        let mut id_of_root: Vec<u32> = vec![u32::MAX; runs.len()];
        let (mut value, mut area) = (Vec::new(), Vec::new());
        for i in 0..runs.len() {
            let root = find(&mut parent, i as u32) as usize;
            if id_of_root[root] == u32::MAX {
                id_of_root[root] = value.len() as u32;
                value.push(runs[i].value);
                area.push(0);
            }
            let c = id_of_root[root];
            comp[i] = c;
            area[c as usize] += (runs[i].x1 - runs[i].x0) as u64;
        }
        Components {
            runs,
            comp,
            row_start,
            value,
            area,
        }
    }

    fn row(&self, y: usize) -> std::ops::Range<usize> {
        self.row_start[y]..self.row_start[y + 1]
    }
}

/// Defect counts of `pred` against `truth` (both `width × height`, row-major class indices);
/// `ignore` is the ignore value of the truth.
pub fn count(truth: &[u8], pred: &[u8], width: u32, height: u32, ignore: u8) -> DefectCounts {
    assert_eq!(truth.len(), (width * height) as usize, "truth buffer size");
    assert_eq!(pred.len(), truth.len(), "prediction buffer size");
    let g = Components::label(truth, width, height);
    let p = Components::label(pred, width, height);
    // pixels of predicted component j on ground truth of its own class
    let mut p_hits = vec![0u64; p.value.len()];
    // pixels of predicted component j on the ignore region
    let mut p_ignored = vec![0u64; p.value.len()];
    // (gt component, pred component) → overlapping pixels (same class by construction)
    let mut overlap: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for y in 0..height as usize {
        let (gr, pr) = (g.row(y), p.row(y));
        let mut gi = gr.start;
        for pi in pr {
            let b = p.runs[pi];
            while gi < gr.end && g.runs[gi].x1 <= b.x0 {
                gi += 1;
            }
            let mut k = gi;
            while k < gr.end && g.runs[k].x0 < b.x1 {
                let a = g.runs[k];
                let n = (a.x1.min(b.x1) - a.x0.max(b.x0)) as u64;
                let pc = p.comp[pi];
                if a.value == b.value {
                    p_hits[pc as usize] += n;
                    *overlap.entry((g.comp[k], pc)).or_insert(0) += n;
                } else if a.value == ignore {
                    p_ignored[pc as usize] += n;
                }
                k += 1;
            }
        }
    }
    let is_defect = |c: u8| c != 0 && c != ignore;
    let mut touching: Vec<Vec<(u32, u64)>> = vec![Vec::new(); g.value.len()];
    for (&(gc, pc), &n) in &overlap {
        touching[gc as usize].push((pc, n));
    }
    let mut out = DefectCounts::default();
    for (gc, touch) in touching.iter().enumerate() {
        if !is_defect(g.value[gc]) {
            continue;
        }
        out.truth += 1;
        let inter: u64 = touch.iter().map(|(_, n)| n).sum();
        let pred_area: u64 = touch.iter().map(|(pc, _)| p.area[*pc as usize]).sum();
        let union = g.area[gc] + pred_area - inter;
        if inter > 0 && inter as f64 / union as f64 >= DEFECT_IOU {
            out.found += 1;
        }
    }
    out.false_pred = (0..p.value.len())
        .filter(|&c| is_defect(p.value[c]) && p_hits[c] == 0 && p_ignored[c] < p.area[c])
        .count() as u64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(truth: &[u8], pred: &[u8], width: u32, want: (u64, u64, u64)) {
        let c = count(truth, pred, width, truth.len() as u32 / width, 255);
        assert_eq!(
            (c.truth, c.found, c.false_pred),
            want,
            "truth {truth:?} pred {pred:?}"
        );
    }

    #[test]
    fn found_missed_and_false_defects() {
        check(&[1, 1, 0, 0], &[1, 1, 0, 0], 4, (1, 1, 0));
        check(&[1, 1, 0, 0], &[0, 0, 0, 1], 4, (1, 0, 1));
        // a prediction of another class on a defect neither finds it nor is excused
        check(&[1, 1, 0, 0], &[2, 2, 0, 0], 4, (1, 0, 1));
    }

    #[test]
    fn iou_threshold_is_inclusive() {
        // overlap 1 px of a 10 px union is IoU 0.1: found; of an 11 px union: not found
        let mut t = vec![1u8; 10];
        t.extend([0, 0]);
        let mut p = vec![0u8; 12];
        p[0] = 1;
        check(&t, &p, 12, (1, 1, 0));
        t[10] = 1;
        check(&t, &p, 12, (1, 0, 0));
    }

    #[test]
    fn components_are_8_connected() {
        // diagonal neighbours join; a U shape is one component; 4 components in all
        #[rustfmt::skip]
        let m = [
            1,0,0,1,
            0,1,0,1,
            0,0,0,0,
            1,1,0,1u8,
        ];
        check(&m, &[0; 16], 4, (4, 0, 0));
        #[rustfmt::skip]
        let u = [
            1,0,1,
            1,0,1,
            1,1,1u8,
        ];
        check(&u, &[0; 9], 3, (1, 0, 0));
    }

    #[test]
    fn predictions_on_ignore_are_neither_right_nor_wrong() {
        check(&[255, 0, 0, 0], &[1, 0, 0, 0], 4, (0, 0, 0));
        // partly on ignore, partly on background: false
        check(&[255, 0, 0, 0], &[1, 1, 0, 0], 4, (0, 0, 1));
    }

    /// Count 8-connected components per value by flood fill, the obvious way.
    fn flood_count(data: &[u8], w: usize, h: usize) -> usize {
        let mut seen = vec![false; data.len()];
        let mut n = 0;
        for start in 0..data.len() {
            if data[start] == 0 || seen[start] {
                continue;
            }
            n += 1;
            let mut stack = vec![start];
            seen[start] = true;
            while let Some(i) = stack.pop() {
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (nx, ny) = (x + dx, y + dy);
                        if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                            continue;
                        }
                        let j = ny as usize * w + nx as usize;
                        if !seen[j] && data[j] == data[start] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
        }
        n
    }

    #[test]
    fn run_labelling_matches_flood_fill() {
        // pseudo-random sparse masks with diagonal touches, U shapes and two classes
        let (w, h) = (23usize, 17usize);
        let mut state = 12345u64;
        for _ in 0..200 {
            let data: Vec<u8> = (0..w * h)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    match (state >> 33) % 10 {
                        0..=2 => 1,
                        3 => 2,
                        _ => 0,
                    }
                })
                .collect();
            let c = Components::label(&data, w as u32, h as u32);
            assert_eq!(c.value.len(), flood_count(&data, w, h));
            assert_eq!(
                c.area.iter().sum::<u64>(),
                data.iter().filter(|&&v| v != 0).count() as u64
            );
            // every component found exactly by a perfect prediction
            let d = count(&data, &data, w as u32, h as u32, 255);
            assert_eq!((d.found, d.false_pred), (d.truth, 0));
        }
    }
}
