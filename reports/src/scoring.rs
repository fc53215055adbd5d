//! Per-image comparison of a predicted class mask with the ground truth: per-class Dice,
//! defect-level matches (the contract's definition) and the error map.

use std::collections::BTreeMap;

/// Error-map category of a pixel.
pub mod cat {
    /// Background, correctly predicted.
    pub const BG: u8 = 0;
    /// Foreground, correct class.
    pub const TP: u8 = 1;
    /// Predicted foreground where the truth is background.
    pub const FP: u8 = 2;
    /// Predicted background where the truth is foreground.
    pub const FN: u8 = 3;
    /// Foreground predicted as another foreground class.
    pub const WRONG: u8 = 4;
    /// Ignore pixel of the ground truth.
    pub const IGNORE: u8 = 5;
}

/// How one prediction scores against its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageScore {
    /// Mean Dice over foreground classes present in truth or prediction; `None` when both are
    /// empty (nothing to find, nothing found).
    pub dice_fg: Option<f64>,
    /// Dice per foreground class present in truth or prediction.
    pub dice: BTreeMap<u32, f64>,
    /// Ground-truth defects (8-connected components per class).
    pub gt_defects: usize,
    /// Ground-truth defects overlapped by the prediction with IoU ≥ 0.1.
    pub found_defects: usize,
    /// Predicted defects that overlap no ground truth of their class.
    pub false_defects: usize,
}

impl ImageScore {
    /// The Dice used to rank images: an empty-and-empty image counts as perfect.
    pub fn rank_dice(&self) -> f64 {
        self.dice_fg.unwrap_or(1.0)
    }
}

/// IoU a ground-truth defect needs with the prediction to count as found (the contract's 0.1).
pub const DEFECT_IOU: f64 = 0.1;

/// Score `pred` against `gt` (same size, row-major class indices); `ignore` pixels of the
/// truth are skipped.
pub fn score(gt: &[u8], pred: &[u8], width: u32, height: u32, ignore: u8) -> ImageScore {
    debug_assert_eq!(gt.len(), pred.len());
    // tp/fp/fn per class value, skipping ignore pixels of the truth.
    let mut tp = [0u64; 256];
    let mut fp = [0u64; 256];
    let mut fneg = [0u64; 256];
    for (&g, &p) in gt.iter().zip(pred) {
        if g == ignore {
            continue;
        }
        if g == p {
            tp[g as usize] += 1;
        } else {
            fp[p as usize] += 1;
            fneg[g as usize] += 1;
        }
    }
    let mut dice = BTreeMap::new();
    for k in 1..256usize {
        if k == ignore as usize {
            continue;
        }
        let denom = 2 * tp[k] + fp[k] + fneg[k];
        if denom > 0 {
            dice.insert(k as u32, 2.0 * tp[k] as f64 / denom as f64);
        }
    }
    let dice_fg = (!dice.is_empty()).then(|| dice.values().sum::<f64>() / dice.len() as f64);
    let (gt_defects, found_defects, false_defects) = defects(gt, pred, width, height, ignore);
    ImageScore {
        dice_fg,
        dice,
        gt_defects,
        found_defects,
        false_defects,
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
                    // skip background quickly
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

/// Defect-level counts: (ground-truth defects, of them found, false predicted defects).
fn defects(gt: &[u8], pred: &[u8], width: u32, height: u32, ignore: u8) -> (usize, usize, usize) {
    let g = Components::label(gt, width, height);
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
    let mut total = 0;
    let mut found = 0;
    for (gc, touch) in touching.iter().enumerate() {
        if !is_defect(g.value[gc]) {
            continue;
        }
        total += 1;
        let inter: u64 = touch.iter().map(|(_, n)| n).sum();
        let pred_area: u64 = touch.iter().map(|(pc, _)| p.area[*pc as usize]).sum();
        let union = g.area[gc] + pred_area - inter;
        if union > 0 && inter as f64 / union as f64 >= DEFECT_IOU {
            found += 1;
        }
    }
    // a predicted defect that lies wholly on ignore pixels is neither right nor wrong
    let false_defects = (0..p.value.len())
        .filter(|&c| is_defect(p.value[c]) && p_hits[c] == 0 && p_ignored[c] < p.area[c])
        .count();
    (total, found, false_defects)
}

/// The error map: one [`cat`] value per pixel.
pub fn error_map(gt: &[u8], pred: &[u8], ignore: u8) -> Vec<u8> {
    gt.iter()
        .zip(pred)
        .map(|(&g, &p)| {
            if g == ignore {
                cat::IGNORE
            } else if g == p {
                if g == 0 {
                    cat::BG
                } else {
                    cat::TP
                }
            } else if g == 0 {
                cat::FP
            } else if p == 0 || p == ignore {
                cat::FN
            } else {
                cat::WRONG
            }
        })
        .collect()
}

/// Colours of the error-map categories (indexed by [`cat`] value).
pub const ERROR_COLORS: [[u8; 3]; 6] = [
    [24, 24, 24],    // background correct: near black
    [235, 235, 235], // foreground correct: white
    [230, 40, 40],   // false positive: red
    [30, 120, 255],  // false negative: blue
    [255, 190, 0],   // wrong class: amber
    [110, 110, 110], // ignore: grey
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_and_defects_on_a_tiny_mask() {
        // 6×4: truth has two defects of class 1 and one of class 2; the prediction finds the
        // first class-1 defect exactly, misses the class-2 one, and adds one false defect.
        #[rustfmt::skip]
        let gt = [
            1,1,0,0,0,2,
            1,1,0,0,0,2,
            0,0,0,0,0,0,
            0,0,0,1,0,0u8,
        ];
        #[rustfmt::skip]
        let pred = [
            1,1,0,0,0,0,
            1,1,0,0,0,0,
            0,0,0,0,0,0,
            1,0,0,0,0,0u8,
        ];
        let s = score(&gt, &pred, 6, 4, 255);
        assert_eq!(s.gt_defects, 3);
        assert_eq!(s.found_defects, 1);
        assert_eq!(s.false_defects, 1);
        // class 1: tp 4, fp 1, fn 1 → 8/10; class 2: tp 0 → 0
        assert!((s.dice[&1] - 0.8).abs() < 1e-12);
        assert_eq!(s.dice[&2], 0.0);
        assert!((s.dice_fg.unwrap() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn empty_truth_and_prediction_has_no_dice() {
        let s = score(&[0, 0, 255, 0], &[0, 0, 1, 0], 2, 2, 255);
        assert_eq!(s.dice_fg, None);
        assert_eq!(s.rank_dice(), 1.0);
        // a prediction only on ignore pixels is not a false defect
        assert_eq!(s.false_defects, 0);
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
        }
    }

    #[test]
    fn error_map_tells_fp_from_fn() {
        let m = error_map(&[0, 1, 1, 0, 2, 255], &[0, 1, 0, 1, 1, 1], 255);
        assert_eq!(
            m,
            vec![cat::BG, cat::TP, cat::FN, cat::FP, cat::WRONG, cat::IGNORE]
        );
    }
}
