//! Times one training epoch including data loading and augmentation: every train image of
//! DATASET once as a 256² crop (flips), batch 2, UNet base 32 depth 4 GroupNorm, CE+Dice,
//! AdamW; crops prepared by the background loader. The same work as
//! `bench/train_torch.py epoch` with a PyTorch DataLoader. Prints `{"epoch_s": …}`.
//!
//! Usage: bench_epoch DATASET [--threads N] [--workers N]

use std::sync::Arc;

use segkit_labelme::dataset::Dataset;
use segkit_trainer::config::{
    Head, LossConfig, ModelConfig, Norm, OptimConfig, OptimKind, Schedule, Upsample, Weights,
};
use segkit_trainer::data::{self, Augment};
use segkit_trainer::loader::{self, EpochPlan};
use segkit_trainer::loss::Loss;
use segkit_trainer::model::UNet;
use segkit_trainer::optim::Optimizer;
use tch::{nn, Device, Tensor};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ds_path = std::env::args()
        .nth(1)
        .ok_or("usage: bench_epoch DATASET [--threads N] [--workers N]")?;
    let threads = arg("--threads", 2);
    let workers = arg("--workers", 2);
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let t0 = std::time::Instant::now();
    let ds = Dataset::open(&ds_path)?;
    let stems = ds.split("train")?.ok_or("no train split")?;
    let train = Arc::new(data::load(&ds, &stems)?);
    let cfg = ModelConfig {
        arch: "unet".into(),
        normalize: segkit_trainer::config::Normalize::Dataset,
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
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), &cfg);
    let loss_cfg = LossConfig {
        name: "ce+dice".into(),
        class_weights: Weights::List(vec![0.5, 5.0]),
        dice_background: false,
        smooth: 1.0,
        focal_gamma: 2.0,
        focal_alpha: vec![],
        tversky_alpha: 0.3,
        tversky_beta: 0.7,
    };
    let loss_fn = Loss::new(&loss_cfg, Head::Softmax, 2, &[0.5, 5.0], Device::Cpu)?;
    let mut opt = Optimizer::new(
        &vs,
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
    );
    let plan = EpochPlan {
        seed: 0,
        epoch: 1,
        samples: train.len(),
        batch: 2,
        size: 256,
        fg_share: 0.0,
        augment: Augment::Flips,
        mean: cfg.mean,
        std: cfg.std,
        workers,
    };
    for b in loader::spawn(train.clone(), plan).iter() {
        let x = Tensor::from_slice(&b.images).view([b.n as i64, 3, 256, 256]);
        let y = Tensor::from_slice(&b.masks).view([b.n as i64, 256, 256]);
        opt.zero_grad();
        let loss = loss_fn.forward(&net.forward_t(&x, true), &y);
        loss.backward();
        opt.step(1e-3);
        let _ = loss.double_value(&[]);
    }
    println!(
        "{{\"epoch_s\": {}, \"images\": {}, \"threads\": {threads}}}",
        t0.elapsed().as_secs_f64(),
        train.len()
    );
    Ok(())
}
