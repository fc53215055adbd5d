//! The set-up both benchmark examples share, so that `bench_step` and `bench_epoch` time the
//! same model, loss and optimizer as `bench/train_torch.py`: UNet base 32, depth 4,
//! GroupNorm, bilinear, 2 classes; CE+Dice with class weights [0.5, 5]; AdamW lr 1e-3.

use segkit_trainer::config::{
    Head, LossConfig, ModelConfig, Norm, Normalize, OptimConfig, OptimKind, Schedule, Upsample,
    Weights,
};
use segkit_trainer::loss::Loss;
use segkit_trainer::optim::Optimizer;
use tch::{nn, Device};

/// The value after `--name` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmarked model of architecture `arch` (`unet` or `unet-vgg16`).
pub fn model_config(arch: &str) -> ModelConfig {
    ModelConfig {
        arch: arch.into(),
        normalize: Normalize::Dataset,
        pretrained: None,
        base: 32,
        depth: 4,
        up: Upsample::Bilinear,
        norm: Norm::Group,
        head: Head::Softmax,
        num_classes: 2,
        class_names: vec!["_background_".into(), "defect".into()],
        mean: [0.5; 3],
        std: [0.25; 3],
    }
}

/// CE+Dice with class weights [0.5, 5], on the CPU.
pub fn loss() -> Loss {
    let cfg = LossConfig {
        name: "ce+dice".into(),
        class_weights: Weights::List(vec![0.5, 5.0]),
        dice_background: false,
        smooth: 1.0,
        focal_gamma: 2.0,
        focal_alpha: vec![],
        tversky_alpha: 0.3,
        tversky_beta: 0.7,
    };
    Loss::new(&cfg, Head::Softmax, 2, &[0.5, 5.0], Device::Cpu).expect("loss")
}

/// AdamW, lr 1e-3, weight decay 1e-4, constant schedule, over the variables of `vs`.
pub fn optimizer(vs: &nn::VarStore) -> Optimizer {
    Optimizer::new(
        vs,
        &OptimConfig {
            name: OptimKind::Adamw,
            lr: 1e-3,
            weight_decay: 1e-4,
            betas: [0.9, 0.999],
            eps: 1e-8,
            momentum: 0.9,
            nesterov: false,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            step_epochs: 1,
            step_gamma: 0.1,
            poly_power: 0.9,
            min_lr: 0.0,
            accum_steps: 1,
            clip_grad_norm: 0.0,
        },
    )
}
