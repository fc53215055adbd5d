//! Times one training epoch including data loading and augmentation: every train image of
//! DATASET once as a 256² crop (flips), batch 2, UNet base 32 depth 4 GroupNorm, CE+Dice,
//! AdamW; crops prepared by the background loader. The same work as
//! `bench/train_torch.py epoch` with a PyTorch DataLoader. Prints `{"epoch_s": …}`.
//!
//! Usage: bench_epoch DATASET [--threads N] [--workers N]

mod common;

use std::sync::Arc;

use common::arg;
use segkit_labelme::dataset::Dataset;
use segkit_trainer::data::{self, Augment};
use segkit_trainer::loader::{self, EpochPlan};
use segkit_trainer::model::Net;
use tch::{nn, Device, Tensor};

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
    let cfg = common::model_config("unet");
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), &cfg, None)?;
    net.prefer_channels_last(&vs);
    let loss_fn = common::loss();
    let mut opt = common::optimizer(&vs);
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
