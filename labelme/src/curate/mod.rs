//! Dataset curation: each operation reads a dataset folder and writes a new one (or, for
//! [`split`], annotates one in place), recomputing `class_pixels` and `instances` from the
//! masks it writes and appending to `history`. Object masks (`SegmentationObject/`) go
//! along: an image that has one keeps one, consistent with its class mask, and its
//! instances are its objects ([`crate::objects`]).
//!
//! - [`stats`]: per-class pixel share, instance sizes, class weights, trap warnings.
//! - [`filter`]: remove instances smaller than an area threshold.
//! - [`remap`]: merge, drop and renumber classes; binary defect/background.
//! - [`split`]: view tags and train/val (or k-fold) lists, stratified, grouped by source photo.
//! - [`crop`]: crops around defects and overlapping tiles, padded with ignore.
//!
//! Work runs on rayon over images; results are gathered in manifest order, and every random
//! choice is seeded per image, so output bytes depend on the seed and the data only.
//!
//! # Example
//!
//! ```
//! use segkit_labelme::curate::components::instances;
//! // two scratch pixels touching at a corner are one defect; the dent next to them is another
//! let mask = [1, 0, 2,
//!             0, 1, 2];
//! let found = instances(&mask, 3, 2);
//! assert_eq!(found.len(), 2);
//! assert_eq!((found[0].class, found[0].area, found[0].bbox), (1, 2, [0, 0, 2, 2]));
//! ```

pub mod components;
pub mod crop;
pub mod filter;
mod output;
pub mod remap;
pub mod split;
pub mod stats;

pub use output::Derived;

use crate::dataset::DatasetError;

/// What went wrong in a curation step.
#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    /// A dataset file could not be read or written, or is not what the contract says.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The options do not fit this dataset (unknown class name, bad pattern, ...).
    #[error("{0}")]
    Usage(String),
}

/// Result type of this module.
pub type Result<T, E = CurateError> = std::result::Result<T, E>;

/// Called once per finished image, from worker threads (drives a progress bar).
pub type Tick<'a> = &'a (dyn Fn() + Sync);

fn usage(msg: impl Into<String>) -> CurateError {
    CurateError::Usage(msg.into())
}
