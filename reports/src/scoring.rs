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
    let d = segkit_labelme::defects::count(gt, pred, width, height, ignore);
    let (gt_defects, found_defects, false_defects) =
        (d.truth as usize, d.found as usize, d.false_pred as usize);
    ImageScore {
        dice_fg,
        dice,
        gt_defects,
        found_defects,
        false_defects,
    }
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

    #[test]
    fn error_map_tells_fp_from_fn() {
        let m = error_map(&[0, 1, 1, 0, 2, 255], &[0, 1, 0, 1, 1, 1], 255);
        assert_eq!(
            m,
            vec![cat::BG, cat::TP, cat::FN, cat::FP, cat::WRONG, cat::IGNORE]
        );
    }
}
