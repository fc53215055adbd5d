//! Times a UNet training step (forward + CE+Dice loss + backward + AdamW) at batch
//! 2×3×256×256, base 32, depth 4, GroupNorm, bilinear: the same work as
//! `bench/train_torch.py step`. Needs no data. Prints `{"median_step_s": …, "threads": …}`.
//!
//! With `--infer N`: instead, sliding-window inference (tile 256, overlap 0.25, Gaussian
//! blending, 2 tiles a pass) of N random 2000×2000 images; prints `{"images_per_s": …}`.
//!
//! With `--arch unet-vgg16`: the same step for the VGG16-encoder UNet (`bench/train_vgg.sh`).
//!
//! Usage: bench_step [--threads N] [--steps N] [--infer N] [--arch unet|unet-vgg16]

use segkit_trainer::config::{
    Head, LossConfig, ModelConfig, Norm, OptimConfig, OptimKind, Schedule, Upsample, Weights,
};
use segkit_trainer::infer::{self, Tiling};
use segkit_trainer::loss::Loss;
use segkit_trainer::model::Net;
use segkit_trainer::optim::Optimizer;
use tch::{nn, Device, Kind, Tensor};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arch_arg() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--arch")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "unet".into())
}

fn main() {
    let threads = arg("--threads", 2);
    let steps = arg("--steps", 10);
    let (batch, size) = (arg("--batch", 2) as i64, arg("--size", 256) as i64);
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let cfg = ModelConfig {
        arch: arch_arg(),
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
    let net = Net::new(&vs.root(), &cfg, None).expect("model");
    let infer_images = arg("--infer", 0);
    if infer_images > 0 {
        let tiling = Tiling {
            tile: 256,
            overlap: 0.25,
            gaussian: true,
            batch: 2,
            resize: 0,
        };
        let rgb: Vec<u8> = (0..2000 * 2000 * 3)
            .map(|i: usize| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        let t = std::time::Instant::now();
        for _ in 0..infer_images {
            let p = infer::probabilities(&net, &cfg, &rgb, 2000, 2000, tiling, Device::Cpu);
            let _ = infer::argmax(&p, cfg.head);
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{{\"images_per_s\": {}, \"threads\": {threads}}}",
            infer_images as f64 / s
        );
        return;
    }
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
    let loss_fn = Loss::new(&loss_cfg, Head::Softmax, 2, &[0.5, 5.0], Device::Cpu).expect("loss");
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
    let x = Tensor::randn([batch, 3, size, size], (Kind::Float, Device::Cpu));
    let y = Tensor::rand([batch, size, size], (Kind::Float, Device::Cpu))
        .gt(0.9)
        .to_kind(Kind::Int64);
    let mut times = Vec::new();
    for i in 0..steps + 2 {
        let t = std::time::Instant::now();
        opt.zero_grad();
        let loss = loss_fn.forward(&net.forward_t(&x, true), &y);
        loss.backward();
        opt.step(1e-3);
        let _ = loss.double_value(&[]);
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"median_step_s\": {}, \"threads\": {threads}}}",
        times[times.len() / 2]
    );
}
