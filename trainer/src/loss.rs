//! Losses on logits and class-index targets; the ignore index (255) never contributes.
//!
//! `ce` (weighted cross-entropy), `bce` (sigmoid head), `dice` and `tversky` (soft, per class
//! over the whole batch, background optional), `focal` (γ, per-class α), `lovasz`
//! (Lovász-softmax for a softmax head, Lovász hinge for a sigmoid head: a convex surrogate
//! of the IoU itself, Berman et al. 2018), and weighted sums written `ce+dice` or
//! `0.5*ce+lovasz`.

use tch::{Kind, Reduction, Tensor};

use crate::config::{Head, LossConfig};
use crate::error::{Result, TrainError};

/// Ignore index of the targets.
pub const IGNORE: i64 = segkit_labelme::dataset::IGNORE_INDEX as i64;

/// One loss term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// Cross-entropy (softmax head).
    Ce,
    /// Binary cross-entropy with logits (sigmoid head).
    Bce,
    /// Soft Dice.
    Dice,
    /// Focal loss.
    Focal,
    /// Tversky loss.
    Tversky,
    /// Lovász-softmax (softmax head) or Lovász hinge (sigmoid head).
    Lovasz,
}

/// Parse `ce+dice`, `0.5*ce+dice`, … into weighted terms.
pub fn parse_terms(spec: &str) -> Result<Vec<(f64, Term)>> {
    let mut out = Vec::new();
    for part in spec.split('+') {
        let part = part.trim();
        let (w, name) = match part.split_once('*') {
            Some((w, n)) => (
                w.trim().parse::<f64>().map_err(|_| {
                    TrainError::Config(format!("loss.name {spec:?}: {w:?} is not a number"))
                })?,
                n.trim(),
            ),
            None => (1.0, part),
        };
        let term = match name {
            "ce" => Term::Ce,
            "bce" => Term::Bce,
            "dice" => Term::Dice,
            "focal" => Term::Focal,
            "tversky" => Term::Tversky,
            "lovasz" => Term::Lovasz,
            _ => {
                return Err(TrainError::Config(format!(
                    "loss.name {spec:?}: unknown term {name:?}; use ce, bce, dice, focal, tversky, lovasz joined by +"
                )))
            }
        };
        out.push((w, term));
    }
    Ok(out)
}

/// A configured loss, ready to apply to batches.
#[derive(Debug)]
pub struct Loss {
    terms: Vec<(f64, Term)>,
    head: Head,
    num_classes: i64,
    weights: Tensor,
    alpha: Tensor,
    cfg: LossConfig,
}

impl Loss {
    /// The loss a resolved run config trains with (its loss, head, classes and class
    /// weights), on `device`.
    pub fn of_run(cfg: &crate::config::Config, device: tch::Device) -> Result<Loss> {
        Loss::new(
            &cfg.loss,
            cfg.model.head,
            cfg.model.num_classes,
            &cfg.class_weights(),
            device,
        )
    }

    /// The loss of `cfg` for `head` and `num_classes` classes with `weights`, on `device`.
    pub fn new(
        cfg: &LossConfig,
        head: Head,
        num_classes: usize,
        weights: &[f32],
        device: tch::Device,
    ) -> Result<Loss> {
        let weights_t = Tensor::from_slice(weights).to_device(device);
        let alpha = if cfg.focal_alpha.is_empty() {
            weights_t.shallow_clone()
        } else {
            Tensor::from_slice(&cfg.focal_alpha).to_device(device)
        };
        Ok(Loss {
            terms: parse_terms(&cfg.name)?,
            head,
            num_classes: num_classes as i64,
            weights: weights_t,
            alpha,
            cfg: cfg.clone(),
        })
    }

    /// Class probabilities N×C×H×W from logits (for a sigmoid head: [1-p, p]).
    pub fn probs(head: Head, logits: &Tensor) -> Tensor {
        match head {
            Head::Softmax => logits.softmax(1, Kind::Float),
            Head::Sigmoid => {
                let p = logits.sigmoid();
                Tensor::cat(&[&(1.0 - &p), &p], 1)
            }
        }
    }

    /// The scalar loss of `logits` (N×K×H×W) against `target` (N×H×W, int64, 255 = ignore).
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Tensor {
        let valid = target.ne(IGNORE);
        let clean = target.where_scalarother(&valid, 0);
        let validf = valid.to_kind(Kind::Float);
        let mut total: Option<Tensor> = None;
        let mut probs: Option<Tensor> = None;
        for &(w, term) in &self.terms {
            let value = match term {
                Term::Ce => logits.cross_entropy_loss(
                    target,
                    Some(&self.weights),
                    Reduction::Mean,
                    IGNORE,
                    0.0,
                ),
                Term::Bce => {
                    let pixel_w = self
                        .weights
                        .index_select(0, &clean.flatten(0, -1))
                        .view_as(&validf)
                        * &validf;
                    let z = logits.squeeze_dim(1);
                    let l = z.binary_cross_entropy_with_logits::<Tensor>(
                        &clean.to_kind(Kind::Float),
                        Some(pixel_w.shallow_clone()),
                        None,
                        Reduction::Sum,
                    );
                    l / pixel_w.sum(Kind::Float).clamp_min(1e-6)
                }
                Term::Lovasz => match self.head {
                    Head::Softmax => {
                        let p = probs.get_or_insert_with(|| Self::probs(self.head, logits));
                        lovasz_softmax(p, &clean, &valid)
                    }
                    Head::Sigmoid => lovasz_hinge(&logits.squeeze_dim(1), &clean, &valid),
                },
                Term::Dice | Term::Tversky | Term::Focal => {
                    let p = probs.get_or_insert_with(|| Self::probs(self.head, logits));
                    match term {
                        Term::Focal => self.focal(p, &clean, &validf),
                        _ => self.overlap(term, p, &clean, &validf),
                    }
                }
            };
            let value = value * w;
            total = Some(match total {
                Some(t) => t + value,
                None => value,
            });
        }
        total.expect("at least one term")
    }

    /// Dice or Tversky, per class over the batch, averaged over the chosen classes.
    fn overlap(&self, term: Term, p: &Tensor, clean: &Tensor, validf: &Tensor) -> Tensor {
        let v = validf.unsqueeze(1);
        let g = clean
            .one_hot(self.num_classes)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            * &v;
        let p = p * &v;
        let dims: &[i64] = &[0, 2, 3];
        let tp = (&p * &g).sum_dim_intlist(dims, false, Kind::Float);
        let s = self.cfg.smooth;
        let score = match term {
            Term::Dice => {
                let denom = p.sum_dim_intlist(dims, false, Kind::Float)
                    + g.sum_dim_intlist(dims, false, Kind::Float);
                (2.0 * &tp + s) / (denom + s)
            }
            _ => {
                let fp = p.sum_dim_intlist(dims, false, Kind::Float) - &tp;
                let fn_ = g.sum_dim_intlist(dims, false, Kind::Float) - &tp;
                (&tp + s) / (&tp + fp * self.cfg.tversky_alpha + fn_ * self.cfg.tversky_beta + s)
            }
        };
        let score = if self.cfg.dice_background {
            score
        } else {
            score.narrow(0, 1, self.num_classes - 1)
        };
        1.0 - score.mean(Kind::Float)
    }

    fn focal(&self, p: &Tensor, clean: &Tensor, validf: &Tensor) -> Tensor {
        let pt = p
            .gather(1, &clean.unsqueeze(1), false)
            .squeeze_dim(1)
            .clamp(1e-7, 1.0);
        let a = self
            .alpha
            .index_select(0, &clean.flatten(0, -1))
            .view_as(validf);
        let one_minus: Tensor = 1.0 - &pt;
        let l = -(a * one_minus.pow_tensor_scalar(self.cfg.focal_gamma) * pt.log()) * validf;
        l.sum(Kind::Float) / validf.sum(Kind::Float).clamp_min(1.0)
    }
}

/// Gradient of the Lovász extension of the Jaccard loss at ground truth sorted by
/// decreasing error (`gt_sorted`, P×K of 0/1 floats, one column per class): entry i is
/// Δ(first i+1 errors) − Δ(first i), with Δ(A) = 1 − |gt∖A| / |gt ∪ A|.
fn lovasz_grad(gt_sorted: &Tensor) -> Tensor {
    let gts = gt_sorted.sum_dim_intlist(0, true, Kind::Float);
    let intersection = &gts - gt_sorted.cumsum(0, Kind::Float);
    let misses: Tensor = 1.0 - gt_sorted;
    let union = &gts + misses.cumsum(0, Kind::Float);
    let jaccard: Tensor = 1.0 - intersection / union;
    let p = jaccard.size()[0];
    if p > 1 {
        let diff = jaccard.narrow(0, 1, p - 1) - jaccard.narrow(0, 0, p - 1);
        Tensor::cat(&[jaccard.narrow(0, 0, 1), diff], 0)
    } else {
        jaccard
    }
}

/// Lovász-softmax over the valid pixels of the batch (one image set, as the reference
/// `per_image=False`), averaged over the classes present in the target.
fn lovasz_softmax(probs: &Tensor, clean: &Tensor, valid: &Tensor) -> Tensor {
    let c = probs.size()[1];
    let idx = valid.flatten(0, -1).nonzero().squeeze_dim(1);
    if idx.size()[0] == 0 {
        return probs.sum(Kind::Float) * 0.0;
    }
    // P×C probabilities and one-hot truth of the valid pixels.
    let p = probs
        .permute([0, 2, 3, 1])
        .reshape([-1, c])
        .index_select(0, &idx);
    let fg = clean
        .flatten(0, -1)
        .index_select(0, &idx)
        .one_hot(c)
        .to_kind(Kind::Float);
    let errors = (&fg - &p).abs();
    // All classes at once: sort each column by decreasing error.
    let (sorted, perm) = errors.sort(0, true);
    let gt_sorted = fg.gather(0, &perm, false);
    let per_class = (sorted * lovasz_grad(&gt_sorted)).sum_dim_intlist(0, false, Kind::Float);
    // Classes absent from the target have no IoU to optimise (the reference's "present").
    let present = fg
        .sum_dim_intlist(0, false, Kind::Float)
        .gt(0.0)
        .to_kind(Kind::Float);
    (per_class * &present).sum(Kind::Float) / present.sum(Kind::Float).clamp_min(1.0)
}

/// Lovász hinge of a sigmoid head's logits (N×H×W) over the valid pixels of the batch.
fn lovasz_hinge(z: &Tensor, clean: &Tensor, valid: &Tensor) -> Tensor {
    let idx = valid.flatten(0, -1).nonzero().squeeze_dim(1);
    if idx.size()[0] == 0 {
        return z.sum(Kind::Float) * 0.0;
    }
    let z = z.flatten(0, -1).index_select(0, &idx);
    let y = clean
        .flatten(0, -1)
        .index_select(0, &idx)
        .to_kind(Kind::Float);
    let signs = 2.0 * &y - 1.0;
    let errors: Tensor = 1.0 - z * signs;
    let (sorted, perm) = errors.sort(0, true);
    let gt_sorted = y.index_select(0, &perm).unsqueeze(1);
    let grad = lovasz_grad(&gt_sorted).squeeze_dim(1);
    (sorted.relu() * grad).sum(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str) -> LossConfig {
        LossConfig {
            name: name.into(),
            class_weights: crate::config::Weights::List(vec![1.0, 1.0]),
            dice_background: false,
            smooth: 1.0,
            focal_gamma: 2.0,
            focal_alpha: vec![],
            tversky_alpha: 0.5,
            tversky_beta: 0.5,
        }
    }

    fn target() -> Tensor {
        Tensor::from_slice(&[0i64, 1, 1, 255]).view([1, 2, 2])
    }

    #[test]
    fn ignored_pixels_change_nothing() {
        // Logits for the ignored pixel (index 3) differ wildly between a and b.
        let a = Tensor::from_slice(&[2.0f32, -1.0, -1.0, 50.0, -2.0, 1.0, 1.0, -50.0])
            .view([1, 2, 2, 2]);
        let b =
            Tensor::from_slice(&[2.0f32, -1.0, -1.0, -9.0, -2.0, 1.0, 1.0, 9.0]).view([1, 2, 2, 2]);
        for name in ["ce", "dice", "focal", "tversky", "lovasz", "ce+dice"] {
            let l = Loss::new(&cfg(name), Head::Softmax, 2, &[1.0, 1.0], tch::Device::Cpu).unwrap();
            let (la, lb) = (
                l.forward(&a, &target()).double_value(&[]),
                l.forward(&b, &target()).double_value(&[]),
            );
            assert!((la - lb).abs() < 1e-6, "{name}: {la} vs {lb}");
        }
        let za = Tensor::from_slice(&[-3.0f32, 3.0, 3.0, 40.0]).view([1, 1, 2, 2]);
        let zb = Tensor::from_slice(&[-3.0f32, 3.0, 3.0, -40.0]).view([1, 1, 2, 2]);
        for name in ["bce+dice", "lovasz"] {
            let l = Loss::new(&cfg(name), Head::Sigmoid, 2, &[1.0, 1.0], tch::Device::Cpu).unwrap();
            assert!(
                (l.forward(&za, &target()).double_value(&[])
                    - l.forward(&zb, &target()).double_value(&[]))
                .abs()
                    < 1e-6,
                "{name}"
            );
        }
    }

    #[test]
    fn perfect_prediction_has_small_loss_and_wrong_has_large() {
        let good =
            Tensor::from_slice(&[9.0f32, -9.0, -9.0, 0.0, -9.0, 9.0, 9.0, 0.0]).view([1, 2, 2, 2]);
        let bad = -&good;
        for name in ["ce", "dice", "focal", "tversky", "lovasz"] {
            let l = Loss::new(&cfg(name), Head::Softmax, 2, &[1.0, 1.0], tch::Device::Cpu).unwrap();
            let (g, b) = (
                l.forward(&good, &target()).double_value(&[]),
                l.forward(&bad, &target()).double_value(&[]),
            );
            assert!(g < 0.01 && b > 0.3, "{name}: good {g}, bad {b}");
        }
        // Cross-entropy of a known case: -ln(softmax) averaged over the 3 valid pixels.
        let l = Loss::new(&cfg("ce"), Head::Softmax, 2, &[1.0, 1.0], tch::Device::Cpu).unwrap();
        let z = Tensor::zeros([1, 2, 2, 2], (Kind::Float, tch::Device::Cpu));
        assert!((l.forward(&z, &target()).double_value(&[]) - std::f64::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn weighted_sums_parse() {
        assert_eq!(
            parse_terms("0.5*ce + dice").unwrap(),
            vec![(0.5, Term::Ce), (1.0, Term::Dice)]
        );
        assert_eq!(
            parse_terms("ce+0.5*lovasz").unwrap(),
            vec![(1.0, Term::Ce), (0.5, Term::Lovasz)]
        );
        assert!(parse_terms("ce+iou")
            .unwrap_err()
            .to_string()
            .contains("unknown term \"iou\""));
    }

    /// The Jaccard loss Δ(A) = 1 − |gt∖A| / |gt ∪ A| of a set A of mispredicted pixels.
    fn jaccard_loss(gt: &[bool], a: &[bool]) -> f64 {
        let kept = gt.iter().zip(a).filter(|(g, a)| **g && !**a).count() as f64;
        let union = gt.iter().zip(a).filter(|(g, a)| **g || **a).count() as f64;
        if union == 0.0 {
            0.0
        } else {
            1.0 - kept / union
        }
    }

    /// The Lovász extension of Δ at errors `m` ≥ 0, by its integral form
    /// ∫₀^∞ Δ({i : mᵢ > t}) dt (no sorting of pixels, so independent of the implementation).
    fn lovasz_extension(gt: &[bool], m: &[f64]) -> f64 {
        let mut levels: Vec<f64> = m.iter().copied().filter(|v| *v > 0.0).collect();
        levels.sort_by(|a, b| a.partial_cmp(b).unwrap());
        levels.dedup();
        let mut prev = 0.0;
        let mut total = 0.0;
        for u in levels {
            let set: Vec<bool> = m.iter().map(|v| *v >= u).collect();
            total += (u - prev) * jaccard_loss(gt, &set);
            prev = u;
        }
        total
    }

    /// Lovász-softmax and Lovász hinge agree with the definition on a small case with an
    /// ignored pixel and an absent class; with hard predictions Lovász-softmax is the mean
    /// of 1 − IoU over the classes present.
    #[test]
    fn lovasz_matches_direct_computation() {
        // 1×3×2×3 logits (3 classes, 6 pixels); the target has no class 2 and one ignore.
        let logits: Vec<f32> = vec![
            2.0, -1.0, 0.5, 0.1, 1.5, -0.3, // class 0
            -0.5, 1.0, 0.2, 0.4, -1.2, 2.2, // class 1
            0.3, 0.0, -0.7, 0.9, 0.1, 0.6, // class 2
        ];
        let target = [0i64, 1, 1, 0, 255, 1];
        let t = Tensor::from_slice(&target).view([1, 2, 3]);
        let mut c = cfg("lovasz");
        c.class_weights = crate::config::Weights::List(vec![1.0; 3]);
        let l = Loss::new(&c, Head::Softmax, 3, &[1.0; 3], tch::Device::Cpu).unwrap();
        let got = l
            .forward(&Tensor::from_slice(&logits).view([1, 3, 2, 3]), &t)
            .double_value(&[]);
        let valid: Vec<usize> = (0..6).filter(|&i| target[i] != 255).collect();
        let mut want = 0.0;
        let mut present = 0;
        for k in 0..3i64 {
            let gt: Vec<bool> = valid.iter().map(|&i| target[i] == k).collect();
            if !gt.contains(&true) {
                continue;
            }
            present += 1;
            let m: Vec<f64> = valid
                .iter()
                .map(|&i| {
                    let z: Vec<f64> = (0..3).map(|c| logits[c * 6 + i] as f64).collect();
                    let sum: f64 = z.iter().map(|v| v.exp()).sum();
                    let p = z[k as usize].exp() / sum;
                    ((target[i] == k) as u8 as f64 - p).abs()
                })
                .collect();
            want += lovasz_extension(&gt, &m);
        }
        want /= present as f64;
        assert_eq!(present, 2);
        assert!((got - want).abs() < 1e-5, "lovasz-softmax {got} vs {want}");

        // Hard predictions: pixel 2 says class 0 (truth 1), pixel 3 says class 1 (truth 0).
        let pred = [0usize, 1, 0, 1, 2, 1];
        let hard: Vec<f32> = (0..3)
            .flat_map(|k| pred.iter().map(move |&p| if p == k { 30.0 } else { -30.0 }))
            .collect();
        let got = l
            .forward(&Tensor::from_slice(&hard).view([1, 3, 2, 3]), &t)
            .double_value(&[]);
        // class 0: truth {0,3}, pred {0,2} → IoU 1/3; class 1: truth {1,2,5}, pred {1,3,5} → 2/4.
        let want = ((1.0 - 1.0 / 3.0) + (1.0 - 0.5)) / 2.0;
        assert!(
            (got - want).abs() < 1e-5,
            "hard lovasz {got} vs 1-IoU {want}"
        );

        // Lovász hinge on a sigmoid head: errors are max(0, 1 − z·sign).
        let z = [1.5f32, -0.5, 0.2, -2.0, 3.0, 0.7];
        let y = [1i64, 0, 1, 0, 255, 0];
        let l = Loss::new(
            &cfg("lovasz"),
            Head::Sigmoid,
            2,
            &[1.0, 1.0],
            tch::Device::Cpu,
        )
        .unwrap();
        let got = l
            .forward(
                &Tensor::from_slice(&z).view([1, 1, 2, 3]),
                &Tensor::from_slice(&y).view([1, 2, 3]),
            )
            .double_value(&[]);
        let valid: Vec<usize> = (0..6).filter(|&i| y[i] != 255).collect();
        let gt: Vec<bool> = valid.iter().map(|&i| y[i] == 1).collect();
        let m: Vec<f64> = valid
            .iter()
            .map(|&i| {
                let s = if y[i] == 1 { 1.0 } else { -1.0 };
                (1.0 - z[i] as f64 * s).max(0.0)
            })
            .collect();
        let want = lovasz_extension(&gt, &m);
        assert!((got - want).abs() < 1e-5, "lovasz hinge {got} vs {want}");
    }
}
