//! The segkit trainer plugin: train, evaluate and predict segmentation models (the UNet,
//! `unet-vgg16` with PyTorch-compatible weights, or any TorchScript model) on segkit dataset
//! folders with tch (libtorch).
//!
//! The only segkit crate that links libtorch. It reads a dataset folder (see the dataset
//! contract in `segkit_labelme::dataset`) and writes a run folder: resolved `config.toml`,
//! `metrics.jsonl`, safetensors checkpoints named like a PyTorch `state_dict`, val
//! predictions, a confusion matrix and a log. It never prints: progress goes to a callback.
//!
//! # Example
//!
//! ```no_run
//! use segkit_trainer::{train, TrainOptions};
//!
//! let mut opts = TrainOptions::new("data/defects", "runs/first");
//! opts.set.push("epochs=5".into());
//! let outcome = train(&opts, &mut |_event| {})?;
//! println!("best fg Dice {:?}", outcome.best_value);
//! # Ok::<(), segkit_trainer::TrainError>(())
//! ```
#![deny(missing_docs)]

pub mod apply;
pub mod checkpoint;
pub mod config;
pub mod data;
mod error;
pub mod infer;
pub mod loss;
pub mod lr_find;
pub mod metrics;
pub mod model;
mod pth;
pub mod script;
pub mod vgg;
pub mod weights;

pub use error::{Result, TrainError};
pub mod loader;
pub mod optim;
pub mod sweep;
pub mod train;

pub use train::{train, Event, Outcome, StopReason, TrainOptions};
