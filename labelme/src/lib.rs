//! labelme annotations in, segmentation datasets out.
//!
//! This crate owns everything segkit does with plain files and no neural network:
//!
//! - [`dataset`]: the on-disk dataset folder contract (VOC layout plus `dataset.json`),
//!   with atomic writes and P-mode class-index PNGs; every other segkit crate reads and
//!   writes datasets through it.
//! - [`annotation`], [`source`], [`labels`]: labelme JSON of every schema generation, its
//!   image (embedded or beside it, EXIF-rotated) and the class list.
//! - [`raster`], [`rasterize`]: Pillow 13's drawing primitives and labelme's shape rules on
//!   top, pixel-identical to labelme 7.9.1 + Pillow 13.0.0.
//! - [`convert`], [`import`], [`voc`], [`runs`], [`objects`]: labelme folders, image/mask
//!   folder pairs and existing VOC folders into the dataset contract, with per-class pixel
//!   counts and instances (connected components, or the objects of an object mask);
//!   [`index_png`] writes their masks fast, [`viz`] the downscaled colour overlays people
//!   look at.
//! - [`defects`]: defect-level scoring of a prediction (found and false defects), shared by
//!   the trainer's metrics and the reports.
//! - [`curate`]: stats, filter, remap, split, crop and tile on datasets.
//! - [`synth`]: the synthetic defect dataset (labelme JSON + images) that the demo and the
//!   tests run on, deterministic by seed.
//!
//! # Example
//!
//! ```
//! use segkit_labelme::dataset::{read_index_png, write_index_png, MaskEncoding};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("mask.png");
//! let mask = vec![0u8, 1, 2, 255];
//! write_index_png(&path, 2, 2, &mask, MaskEncoding::Palette)?;
//! assert_eq!(read_index_png(&path)?.data, mask);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod annotation;
pub mod convert;
pub mod curate;
pub mod dataset;
pub mod defects;
pub mod import;
pub mod index_png;
pub mod labels;
pub mod objects;
mod pairs;
pub mod progress;
pub mod raster;
pub mod rasterize;
pub mod runs;
pub mod source;
pub mod synth;
pub mod viz;
pub mod voc;
