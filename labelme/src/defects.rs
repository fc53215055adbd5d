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

use crate::runs::RunComponents;

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

/// Defect counts of `pred` against `truth` (both `width × height`, row-major class indices);
/// `ignore` is the ignore value of the truth.
pub fn count(truth: &[u8], pred: &[u8], width: u32, height: u32, ignore: u8) -> DefectCounts {
    assert_eq!(truth.len(), (width * height) as usize, "truth buffer size");
    assert_eq!(pred.len(), truth.len(), "prediction buffer size");
    let g = RunComponents::label(truth, width, height, 0..height, ignore);
    let p = RunComponents::label(pred, width, height, 0..height, ignore);
    // pixels of predicted component j on ground truth of its own class
    let mut p_hits = vec![0u64; p.len()];
    // pixels of predicted component j on the ignore region
    let mut p_ignored = vec![0u64; p.len()];
    // (gt component, pred component) → overlapping pixels (same class by construction)
    let mut overlap: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for y in 0..height {
        let (gr, pr) = (g.row(y), p.row(y));
        let mut gi = gr.start;
        for pi in pr {
            let (b, pc) = (p.runs()[pi], p.comp(pi));
            if pc == RunComponents::NONE {
                continue;
            }
            while gi < gr.end && g.runs()[gi].x1 < b.x0 {
                gi += 1;
            }
            let mut k = gi;
            while k < gr.end && g.runs()[k].x0 <= b.x1 {
                let a = g.runs()[k];
                let n = (a.x1.min(b.x1) - a.x0.max(b.x0) + 1) as u64;
                if a.value == b.value {
                    p_hits[pc as usize] += n;
                    *overlap.entry((g.comp(k), pc)).or_insert(0) += n;
                } else if a.value == ignore {
                    p_ignored[pc as usize] += n;
                }
                k += 1;
            }
        }
    }
    let is_defect = |c: u8| c != 0 && c != ignore;
    let mut touching: Vec<Vec<(u32, u64)>> = vec![Vec::new(); g.len()];
    for (&(gc, pc), &n) in &overlap {
        touching[gc as usize].push((pc, n));
    }
    let mut out = DefectCounts::default();
    for (gc, touch) in touching.iter().enumerate() {
        let gc = gc as u32;
        if !is_defect(g.value(gc)) {
            continue;
        }
        out.truth += 1;
        let inter: u64 = touch.iter().map(|(_, n)| n).sum();
        let pred_area: u64 = touch.iter().map(|(pc, _)| p.area(*pc)).sum();
        let union = g.area(gc) + pred_area - inter;
        if inter > 0 && inter as f64 / union as f64 >= DEFECT_IOU {
            out.found += 1;
        }
    }
    out.false_pred = (0..p.len() as u32)
        .filter(|&c| {
            is_defect(p.value(c)) && p_hits[c as usize] == 0 && p_ignored[c as usize] < p.area(c)
        })
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
            let c = RunComponents::label(&data, w as u32, h as u32, 0..h as u32, 255);
            assert_eq!(c.len(), flood_count(&data, w, h));
            assert_eq!(
                (0..c.len() as u32).map(|k| c.area(k)).sum::<u64>(),
                data.iter().filter(|&&v| v != 0).count() as u64
            );
            // every component found exactly by a perfect prediction
            let d = count(&data, &data, w as u32, h as u32, 255);
            assert_eq!((d.found, d.false_pred), (d.truth, 0));
        }
    }
}
