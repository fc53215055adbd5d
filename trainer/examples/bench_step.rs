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

mod common;

use common::arg;
use segkit_trainer::infer::{self, Tiling};
use segkit_trainer::model::Net;
use tch::{nn, Device, Kind, Tensor};

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
    let cfg = common::model_config(&arch_arg());
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), &cfg, None).expect("model");
    net.prefer_channels_last(&vs);
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
    let loss_fn = common::loss();
    let mut opt = common::optimizer(&vs);
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
