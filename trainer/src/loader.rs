//! Background batch preparation: a producer thread cuts and augments the crops of each batch
//! (in parallel on its own small rayon pool) while the model trains on the previous one.
//! Every crop is seeded from (run seed, epoch, index), so batches are the same whatever the
//! thread timing; a bounded channel keeps at most a few batches in memory.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rayon::prelude::*;

use crate::data::{derive_seed, epoch_order, make_crop, Augment, CropSpec, Sample};

/// A batch ready to become tensors.
#[derive(Debug)]
pub struct Batch {
    /// N×3×S×S normalized images.
    pub images: Vec<f32>,
    /// N×S×S class indices.
    pub masks: Vec<i64>,
    /// Crops in the batch.
    pub n: usize,
    /// Non-ignored pixels in the batch.
    pub valid: usize,
}

/// What a loader needs for one epoch.
#[derive(Debug, Clone)]
pub struct EpochPlan {
    /// Run seed.
    pub seed: u64,
    /// Epoch number (1-based).
    pub epoch: u64,
    /// Crops this epoch.
    pub samples: usize,
    /// Crops per batch.
    pub batch: usize,
    /// Crop side.
    pub size: usize,
    /// Share of foreground-centred crops.
    pub fg_share: f64,
    /// Online augmentation.
    pub augment: Augment,
    /// Input normalization.
    pub mean: [f32; 3],
    /// Input normalization.
    pub std: [f32; 3],
    /// Threads preparing crops.
    pub workers: usize,
}

/// Start preparing the batches of `plan` from `train`; they arrive in order on the receiver.
pub fn spawn(train: Arc<Vec<Sample>>, plan: EpochPlan) -> Receiver<Batch> {
    let (tx, rx) = sync_channel(4);
    std::thread::spawn(move || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(plan.workers.max(1))
            .build()
            .expect("thread pool");
        let order = epoch_order(train.len(), plan.samples, plan.seed, plan.epoch);
        for (b, chunk) in order.chunks(plan.batch).enumerate() {
            let crops: Vec<_> = pool.install(|| {
                chunk
                    .par_iter()
                    .enumerate()
                    .map(|(j, &img)| {
                        let index = (b * plan.batch + j) as u64;
                        let spec = CropSpec {
                            size: plan.size,
                            fg_share: plan.fg_share,
                            augment: &plan.augment,
                            mean: plan.mean,
                            std: plan.std,
                        };
                        make_crop(
                            &train[img],
                            &spec,
                            derive_seed(plan.seed, plan.epoch, index),
                            plan.seed,
                            plan.epoch,
                            index,
                        )
                    })
                    .collect()
            });
            let n = crops.len();
            let mut images = Vec::with_capacity(n * 3 * plan.size * plan.size);
            let mut masks = Vec::with_capacity(n * plan.size * plan.size);
            for c in crops {
                images.extend_from_slice(&c.image);
                masks.extend_from_slice(&c.mask);
            }
            let valid = masks.iter().filter(|&&v| v != crate::loss::IGNORE).count();
            if tx
                .send(Batch {
                    images,
                    masks,
                    n,
                    valid,
                })
                .is_err()
            {
                return; // the trainer stopped early
            }
        }
    });
    rx
}
