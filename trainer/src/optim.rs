//! Optimizers (Adam, AdamW, SGD with momentum/Nesterov) and learning-rate schedules with
//! linear warm-up. Written on tensors rather than with `tch::nn::Optimizer` because resume
//! must restore the moments exactly, and tch's optimizer does not expose its state.

use std::collections::BTreeMap;

use tch::{nn, Tensor};

use crate::config::{OptimConfig, OptimKind, Schedule};

/// The learning rate at optimizer step `step` (0-based) of `total` steps, with
/// `steps_per_epoch` steps an epoch.
pub fn lr_at(cfg: &OptimConfig, step: usize, total: usize, steps_per_epoch: usize) -> f64 {
    if step < cfg.warmup_steps {
        // Linear from lr/100 so the first steps of a fresh network do not blow up.
        let t = (step + 1) as f64 / cfg.warmup_steps as f64;
        return cfg.lr * (0.01 + 0.99 * t);
    }
    let after = (step - cfg.warmup_steps) as f64;
    let span = total.saturating_sub(cfg.warmup_steps).max(1) as f64;
    let t = (after / span).min(1.0);
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Step => {
            let k = step / (cfg.step_epochs.max(1) * steps_per_epoch.max(1));
            cfg.lr * cfg.step_gamma.powi(k as i32)
        }
        Schedule::Cosine => {
            cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
        Schedule::Poly => cfg.min_lr + (cfg.lr - cfg.min_lr) * (1.0 - t).powf(cfg.poly_power),
    }
}

/// An optimizer over the trainable variables of a var store, in name order.
#[derive(Debug)]
pub struct Optimizer {
    cfg: OptimConfig,
    params: Vec<(String, Tensor)>,
    /// First moment (Adam) or momentum buffer (SGD), by parameter name.
    m: Vec<Tensor>,
    /// Second moment (Adam).
    v: Vec<Tensor>,
    /// Updates each parameter has had (steps where its gradient was defined). Adam's bias
    /// correction must count these, not the optimizer's steps: an encoder unfrozen after
    /// hundreds of steps starts with zero moments, and correcting them with the global count
    /// would move it by several times the learning rate (PyTorch counts per parameter too).
    t: Vec<i64>,
    /// Optimizer steps taken.
    pub steps: i64,
}

impl Optimizer {
    /// An optimizer for the trainable variables of `vs`.
    pub fn new(vs: &nn::VarStore, cfg: &OptimConfig) -> Optimizer {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let t = vec![0; params.len()];
        Optimizer {
            cfg: cfg.clone(),
            params,
            m,
            v,
            t,
            steps: 0,
        }
    }

    /// Clear the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// Scale gradients so their global norm is at most `max` (no-op for max ≤ 0); returns
    /// the norm before clipping.
    pub fn clip_grad_norm(&mut self, max: f64) -> f64 {
        tch::no_grad(|| {
            let norms: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| p.grad())
                .filter(|g| g.defined())
                .map(|g| g.norm().square())
                .collect();
            if norms.is_empty() {
                return 0.0;
            }
            let total = Tensor::stack(&norms, 0)
                .sum(tch::Kind::Float)
                .sqrt()
                .double_value(&[]);
            if max > 0.0 && total > max {
                let scale = max / (total + 1e-6);
                for (_, p) in &self.params {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(scale);
                    }
                }
            }
            total
        })
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let c = &self.cfg;
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                self.t[i] += 1;
                let t = self.t[i] as f64;
                let mut p = p.shallow_clone();
                let g = if c.weight_decay > 0.0 && c.name != OptimKind::Adamw {
                    &g + &p * c.weight_decay
                } else {
                    g
                };
                match c.name {
                    OptimKind::Adam | OptimKind::Adamw => {
                        if c.name == OptimKind::Adamw && c.weight_decay > 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                        }
                        let [b1, b2] = c.betas;
                        let _ = self.m[i].g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                        let _ = self.v[i].g_mul_scalar_(b2).addcmul_(&g, &(&g * (1.0 - b2)));
                        let bc1 = 1.0 - b1.powf(t);
                        let bc2 = 1.0 - b2.powf(t);
                        let denom = self.v[i].sqrt() / bc2.sqrt() + c.eps;
                        let _ = p.addcdiv_(&(&self.m[i] * (-lr / bc1)), &denom);
                    }
                    OptimKind::Sgd => {
                        let update = if c.momentum > 0.0 {
                            let buf = &mut self.m[i];
                            if self.t[i] == 1 {
                                buf.copy_(&g);
                            } else {
                                let _ = buf.g_mul_scalar_(c.momentum).g_add_(&g);
                            }
                            if c.nesterov {
                                &g + &*buf * c.momentum
                            } else {
                                buf.shallow_clone()
                            }
                        } else {
                            g
                        };
                        let _ = p.g_add_(&(update * -lr));
                    }
                }
            }
        });
    }

    /// The optimizer's state tensors by name (`m.<param>`, `v.<param>`, `t.<param>` the
    /// parameter's update count), for resume.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].shallow_clone());
            out.insert(format!("v.{name}"), self.v[i].shallow_clone());
            out.insert(format!("t.{name}"), Tensor::from(self.t[i]));
        }
        out
    }

    /// Restore state saved by [`Optimizer::state`]; false when a tensor is missing or its
    /// shape differs.
    pub fn restore(&mut self, state: &BTreeMap<String, Tensor>, steps: i64) -> bool {
        for (i, (name, _)) in self.params.iter().enumerate() {
            match (
                state.get(&format!("m.{name}")),
                state.get(&format!("v.{name}")),
            ) {
                (Some(m), Some(v))
                    if m.size() == self.m[i].size() && v.size() == self.v[i].size() =>
                {
                    self.m[i].copy_(m);
                    self.v[i].copy_(v);
                }
                _ => return false,
            }
            // resume states written before per-parameter counts: every parameter had them all
            self.t[i] = state
                .get(&format!("t.{name}"))
                .map_or(steps, |t| t.int64_value(&[]));
        }
        self.steps = steps;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: OptimKind, schedule: Schedule) -> OptimConfig {
        OptimConfig {
            name,
            lr: 0.1,
            weight_decay: 0.0,
            betas: [0.9, 0.999],
            eps: 1e-8,
            momentum: 0.9,
            nesterov: false,
            schedule,
            warmup_steps: 0,
            step_epochs: 2,
            step_gamma: 0.1,
            poly_power: 0.9,
            min_lr: 0.0,
            accum_steps: 1,
            clip_grad_norm: 0.0,
        }
    }

    #[test]
    fn schedules() {
        let c = cfg(OptimKind::Adam, Schedule::Cosine);
        assert_eq!(lr_at(&c, 0, 100, 10), 0.1);
        assert!((lr_at(&c, 50, 100, 10) - 0.05).abs() < 1e-12);
        let s = cfg(OptimKind::Adam, Schedule::Step);
        assert!((lr_at(&s, 25, 100, 10) - 0.01).abs() < 1e-12);
        let mut w = cfg(OptimKind::Adam, Schedule::Constant);
        w.warmup_steps = 10;
        assert!(lr_at(&w, 0, 100, 10) < 0.02);
        assert_eq!(lr_at(&w, 10, 100, 10), 0.1);
        assert_eq!(
            lr_at(&cfg(OptimKind::Sgd, Schedule::Poly), 100, 100, 10),
            0.0
        );
    }

    /// Each optimizer minimises a quadratic; Adam's first step moves each weight by lr.
    #[test]
    fn optimizers_descend() {
        for kind in [OptimKind::Adam, OptimKind::Adamw, OptimKind::Sgd] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let w = vs.root().var("w", &[3], nn::Init::Const(1.0));
            let mut opt = Optimizer::new(&vs, &cfg(kind, Schedule::Constant));
            for step in 0..200 {
                opt.zero_grad();
                let loss = (&w * &w).sum(tch::Kind::Float);
                loss.backward();
                opt.step(if kind == OptimKind::Sgd { 0.1 } else { 0.05 });
                if step == 0 && kind != OptimKind::Sgd {
                    assert!((w.double_value(&[0]) - 0.95).abs() < 1e-5);
                }
            }
            assert!(w.abs().max().double_value(&[]) < 0.05, "{kind:?}: {w}");
        }
    }

    /// A parameter frozen for 100 steps and then unfrozen gets Adam's first-step size (lr),
    /// not a bias correction meant for step 101; the counts survive state() → restore().
    #[test]
    fn adam_counts_updates_per_parameter() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let a = vs.root().var("a", &[1], nn::Init::Const(1.0));
        let mut b = vs.root().var("b", &[1], nn::Init::Const(1.0));
        let mut opt = Optimizer::new(&vs, &cfg(OptimKind::Adam, Schedule::Constant));
        let _ = b.requires_grad_(false);
        for _ in 0..100 {
            opt.zero_grad();
            (&a * &a).sum(tch::Kind::Float).backward();
            opt.step(0.01);
        }
        let _ = b.requires_grad_(true);
        let before = b.double_value(&[0]);
        opt.zero_grad();
        (&a * &a + &b * &b).sum(tch::Kind::Float).backward();
        opt.step(0.01);
        let moved = before - b.double_value(&[0]);
        assert!(
            (moved - 0.01).abs() < 1e-6,
            "first update of b moved it by {moved}"
        );
        let state = opt.state();
        let mut again = Optimizer::new(&vs, &cfg(OptimKind::Adam, Schedule::Constant));
        assert!(again.restore(&state, opt.steps));
        assert_eq!(again.t, vec![101, 1]);
    }
}
