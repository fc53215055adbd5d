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
        let d = segkit_labelme::defects::count(truth, pred, width as u32, height as u32, IGNORE);
        self.gt_defects += d.truth;
        self.found_defects += d.found;
        self.false_defects += d.false_pred;
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

#[cfg(test)]
mod tests {
    use super::*;

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
