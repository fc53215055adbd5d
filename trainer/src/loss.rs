//! Losses on logits and class-index targets; the ignore index (255) never contributes.
//!
//! `ce` (weighted cross-entropy), `bce` (sigmoid head), `dice` and `tversky` (soft, per class
//! over the whole batch, background optional), `focal` (γ, per-class α), and weighted sums
//! written `ce+dice` or `0.5*ce+dice`.

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
            _ => {
                return Err(TrainError::Config(format!(
                    "loss.name {spec:?}: unknown term {name:?}; use ce, bce, dice, focal, tversky joined by +"
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
        for name in ["ce", "dice", "focal", "tversky", "ce+dice"] {
            let l = Loss::new(&cfg(name), Head::Softmax, 2, &[1.0, 1.0], tch::Device::Cpu).unwrap();
            let (la, lb) = (
                l.forward(&a, &target()).double_value(&[]),
                l.forward(&b, &target()).double_value(&[]),
            );
            assert!((la - lb).abs() < 1e-6, "{name}: {la} vs {lb}");
        }
        let za = Tensor::from_slice(&[-3.0f32, 3.0, 3.0, 40.0]).view([1, 1, 2, 2]);
        let zb = Tensor::from_slice(&[-3.0f32, 3.0, 3.0, -40.0]).view([1, 1, 2, 2]);
        let l = Loss::new(
            &cfg("bce+dice"),
            Head::Sigmoid,
            2,
            &[1.0, 1.0],
            tch::Device::Cpu,
        )
        .unwrap();
        assert!(
            (l.forward(&za, &target()).double_value(&[])
                - l.forward(&zb, &target()).double_value(&[]))
            .abs()
                < 1e-6
        );
    }

    #[test]
    fn perfect_prediction_has_small_loss_and_wrong_has_large() {
        let good =
            Tensor::from_slice(&[9.0f32, -9.0, -9.0, 0.0, -9.0, 9.0, 9.0, 0.0]).view([1, 2, 2, 2]);
        let bad = -&good;
        for name in ["ce", "dice", "focal", "tversky"] {
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
        assert!(parse_terms("ce+lovasz")
            .unwrap_err()
            .to_string()
            .contains("unknown term \"lovasz\""));
    }
}
