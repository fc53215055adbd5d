//! Segmentation metrics from class-index masks: a confusion matrix (rows = truth) with IoU,
//! Dice, precision and recall per class, and the defect-level counts an inspector is judged
//! on (share of ground-truth components found, predicted components matching nothing).
//! Pixels whose truth is the ignore index count nowhere.

use std::collections::BTreeMap;

use serde::Serialize;

const IGNORE: u8 = segkit_labelme::dataset::IGNORE_INDEX;

/// Metrics accumulated over a set of images.
#[derive(Debug, Clone)]
pub struct Accumulator {
    /// `matrix[truth][pred]` pixel counts.
    pub matrix: Vec<Vec<u64>>,
    gt_defects: u64,
    found_defects: u64,
    false_defects: u64,
    images: u64,
}

/// A metrics record, as one line of `metrics.jsonl` minus the training fields.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Mean IoU over classes with any truth or prediction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miou: Option<f64>,
    /// Mean IoU over foreground classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miou_fg: Option<f64>,
    /// Share of non-ignored pixels classified right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_acc: Option<f64>,
    /// IoU per class id.
    pub iou: BTreeMap<String, f64>,
    /// Dice per class id.
    pub dice: BTreeMap<String, f64>,
    /// Precision per class id.
    pub precision: BTreeMap<String, f64>,
    /// Recall per class id.
    pub recall: BTreeMap<String, f64>,
    /// Share of ground-truth defects overlapped by the prediction with IoU ≥ 0.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defect_recall: Option<f64>,
    /// Predicted defects overlapping no ground truth, per image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_defects_per_image: Option<f64>,
}

impl Summary {
    /// Mean Dice over foreground classes that have a value.
    pub fn dice_fg(&self) -> Option<f64> {
        mean(
            self.dice
                .iter()
                .filter(|(k, _)| k.as_str() != "0")
                .map(|(_, v)| *v),
        )
    }
}

fn mean(it: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = it.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl Accumulator {
    /// An empty accumulator for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Accumulator {
            matrix: vec![vec![0; num_classes]; num_classes],
            gt_defects: 0,
            found_defects: 0,
            false_defects: 0,
            images: 0,
        }
    }

    /// Add one image: `truth` and `pred` are row-major masks of `width` columns.
    pub fn add(&mut self, truth: &[u8], pred: &[u8], width: usize) {
        let c = self.matrix.len();
        for (&t, &p) in truth.iter().zip(pred) {
            if t != IGNORE && (t as usize) < c && (p as usize) < c {
                self.matrix[t as usize][p as usize] += 1;
            }
        }
        let height = truth.len() / width.max(1);
        for class in 1..c as u8 {
            let (gt, found, false_pos) = defect_counts(truth, pred, width, height, class);
            self.gt_defects += gt;
            self.found_defects += found;
            self.false_defects += false_pos;
        }
        self.images += 1;
    }

    /// The metrics so far.
    pub fn summary(&self) -> Summary {
        let c = self.matrix.len();
        let mut s = Summary::default();
        let total: u64 = self.matrix.iter().flatten().sum();
        let correct: u64 = (0..c).map(|i| self.matrix[i][i]).sum();
        if total > 0 {
            s.pixel_acc = Some(correct as f64 / total as f64);
        }
        for k in 0..c {
            let tp = self.matrix[k][k] as f64;
            let fn_ = self.matrix[k].iter().sum::<u64>() as f64 - tp;
            let fp = (0..c).map(|t| self.matrix[t][k]).sum::<u64>() as f64 - tp;
            let key = k.to_string();
            if tp + fp + fn_ > 0.0 {
                s.iou.insert(key.clone(), tp / (tp + fp + fn_));
                s.dice.insert(key.clone(), 2.0 * tp / (2.0 * tp + fp + fn_));
            }
            if tp + fp > 0.0 {
                s.precision.insert(key.clone(), tp / (tp + fp));
            }
            if tp + fn_ > 0.0 {
                s.recall.insert(key, tp / (tp + fn_));
            }
        }
        s.miou = mean(s.iou.values().copied());
        s.miou_fg = mean(
            s.iou
                .iter()
                .filter(|(k, _)| k.as_str() != "0")
                .map(|(_, v)| *v),
        );
        if self.gt_defects > 0 {
            s.defect_recall = Some(self.found_defects as f64 / self.gt_defects as f64);
        }
        if self.images > 0 {
            s.false_defects_per_image = Some(self.false_defects as f64 / self.images as f64);
        }
        s
    }
}

/// 8-connected components of `mask[i] == class`: a label per pixel (0 = not in a
/// component) and the number of components. Two passes with union-find.
pub fn components(mask: &[u8], width: usize, height: usize, class: u8) -> (Vec<u32>, u32) {
    let mut labels = vec![0u32; mask.len()];
    let mut parent: Vec<u32> = vec![0];
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if mask[i] != class {
                continue;
            }
            let mut best = 0u32;
            let mut neigh = [0u32; 4];
            if x > 0 {
                neigh[0] = labels[i - 1];
            }
            if y > 0 {
                neigh[1] = labels[i - width];
                if x > 0 {
                    neigh[2] = labels[i - width - 1];
                }
                if x + 1 < width {
                    neigh[3] = labels[i - width + 1];
                }
            }
            for &n in &neigh {
                if n != 0 {
                    let r = find(&mut parent, n);
                    if best == 0 {
                        best = r;
                    } else if r != best {
                        let (lo, hi) = (best.min(r), best.max(r));
                        parent[hi as usize] = lo;
                        best = lo;
                    }
                }
            }
            if best == 0 {
                best = parent.len() as u32;
                parent.push(best);
            }
            labels[i] = best;
        }
    }
    let mut remap = vec![0u32; parent.len()];
    let mut n = 0;
    for l in 1..parent.len() as u32 {
        let r = find(&mut parent, l);
        if remap[r as usize] == 0 {
            n += 1;
            remap[r as usize] = n;
        }
        remap[l as usize] = remap[r as usize];
    }
    for l in &mut labels {
        *l = remap[*l as usize];
    }
    (labels, n)
}

/// For one class: (ground-truth components, of them found with IoU ≥ 0.1, predicted
/// components touching no ground truth). A truth component's IoU is taken against the union
/// of the predicted components that touch it. Ignored truth pixels are outside both.
fn defect_counts(
    truth: &[u8],
    pred: &[u8],
    width: usize,
    height: usize,
    class: u8,
) -> (u64, u64, u64) {
    if !truth.contains(&class) && !pred.contains(&class) {
        return (0, 0, 0);
    }
    let pred_masked: Vec<u8> = pred
        .iter()
        .zip(truth)
        .map(|(&p, &t)| if t == IGNORE { 0 } else { p })
        .collect();
    let (gl, gn) = components(truth, width, height, class);
    let (pl, pn) = components(&pred_masked, width, height, class);
    let mut p_area = vec![0u64; pn as usize + 1];
    for &l in &pl {
        p_area[l as usize] += 1;
    }
    let mut g_area = vec![0u64; gn as usize + 1];
    // (gt, pred) overlap counts; sparse since components rarely touch many others.
    let mut overlap: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    let mut pred_hits = vec![false; pn as usize + 1];
    for (&g, &p) in gl.iter().zip(&pl) {
        g_area[g as usize] += 1;
        if g != 0 && p != 0 {
            *overlap.entry((g, p)).or_default() += 1;
            pred_hits[p as usize] = true;
        }
    }
    let mut found = 0;
    for g in 1..=gn {
        let touching: Vec<(u32, u64)> = overlap
            .range((g, 0)..=(g, u32::MAX))
            .map(|(&(_, p), &n)| (p, n))
            .collect();
        let inter: u64 = touching.iter().map(|(_, n)| n).sum();
        let pred_area: u64 = touching.iter().map(|(p, _)| p_area[*p as usize]).sum();
        let union = g_area[g as usize] + pred_area - inter;
        if inter > 0 && inter as f64 / union as f64 >= 0.1 {
            found += 1;
        }
    }
    let false_pos = (1..=pn).filter(|&p| !pred_hits[p as usize]).count() as u64;
    (gn as u64, found, false_pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(truth: &[u8], pred: &[u8], width: usize, want: (u64, u64, u64)) {
        assert_eq!(
            defect_counts(truth, pred, width, truth.len() / width, 1),
            want,
            "truth {truth:?} pred {pred:?}"
        );
    }

    #[test]
    fn components_are_8_connected() {
        let m = [
            1, 0, 0, 1, //
            0, 1, 0, 1, //
            0, 0, 0, 0, //
            1, 1, 0, 1,
        ];
        let (l, n) = components(&m, 4, 4, 1);
        assert_eq!(n, 4);
        assert_eq!(l[0], l[5], "diagonal neighbours join");
        assert_eq!(l[3], l[7]);
        assert_ne!(l[12], l[15]);
    }

    #[test]
    fn u_shape_merges_into_one_component() {
        let m = [
            1, 0, 1, //
            1, 0, 1, //
            1, 1, 1,
        ];
        assert_eq!(components(&m, 3, 3, 1).1, 1);
    }

    #[test]
    fn defect_counts_cases() {
        check(&[1, 1, 0, 0], &[1, 1, 0, 0], 4, (1, 1, 0));
        check(&[1, 1, 0, 0], &[0, 0, 0, 1], 4, (1, 0, 1));
        // Overlap 1 px of a 10 px union is IoU 0.1: found.
        check(
            &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            12,
            (1, 1, 0),
        );
        check(
            &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            12,
            (1, 0, 0),
        );
        // Predictions on ignored pixels are not false defects.
        check(&[255, 0, 0, 0], &[1, 0, 0, 0], 4, (0, 0, 0));
    }

    #[test]
    fn confusion_metrics() {
        let mut acc = Accumulator::new(2);
        acc.add(&[0, 0, 1, 1, 255], &[0, 1, 1, 1, 1], 5);
        let s = acc.summary();
        assert_eq!(acc.matrix, vec![vec![1, 1], vec![0, 2]]);
        assert_eq!(s.iou["1"], 2.0 / 3.0);
        assert_eq!(s.dice["1"], 0.8);
        assert_eq!(s.precision["1"], 2.0 / 3.0);
        assert_eq!(s.recall["1"], 1.0);
        assert_eq!(s.pixel_acc, Some(0.75));
        assert_eq!(s.dice_fg(), Some(0.8));
        assert_eq!(s.defect_recall, Some(1.0));
    }
}
