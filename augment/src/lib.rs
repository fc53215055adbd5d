//! Paired image/mask augmentation with ignore-index padding, reproducible by seed.
//!
//! Every geometric transform moves the image and its class mask identically; masks are
//! always resampled nearest-neighbour, so they never get a value that was not in the input
//! except the fill value, which defaults to the ignore index 255: pixels a rotation or a
//! crop padded are skipped by the loss instead of being taught as background.
//! Photometric transforms change the image only. Images are 8-bit gray or RGB of any size.
//!
//! # API (what the trainer calls)
//!
//! - [`Pipeline::from_toml_str`], [`Pipeline::from_json_str`], [`Pipeline::from_file`],
//!   [`Pipeline::default_for_defects`]: load a pipeline.
//! - [`Pipeline::apply`]`(sample, seed, epoch, index) -> Sample`: augment one [`Sample`]
//!   (image bytes + mask, built with [`Sample::from_rgb`] / [`Sample::from_gray`]).
//!   [`Pipeline::apply_rgb`] takes an `&RgbImage` and `&[u8]` mask and returns both;
//!   [`Pipeline::apply_ref`] reads a borrowed `&Sample` and returns a new one.
//! - The random stream of sample `index` in `epoch` is [`sample_rng`]`(seed, epoch, index)`:
//!   the same triple gives the same bytes whatever the thread count or batch order.
//!   `Pipeline` is `Send + Sync`; share one `&Pipeline` across rayon workers.
//! - [`Pipeline::apply_with_objects`]: the same, for a sample with an object mask
//!   (`SegmentationObject/`): the ids follow the class mask's geometric draw exactly.
//! - [`augment_dataset`] and [`preview_grid`]: the offline `segkit augment` command.
//!
//! # Example
//!
//! ```
//! use segkit_augment::{Pipeline, Sample};
//!
//! let pipeline = Pipeline::from_toml_str(r#"
//!     [[transforms]]
//!     name = "Rotate"
//!     limit = 30
//!     p = 1.0
//! "#)?;
//! let image = image::RgbImage::from_pixel(64, 48, image::Rgb([200, 100, 50]));
//! let mask = vec![1u8; 64 * 48];
//! let out = pipeline.apply(Sample::from_rgb(image, mask)?, 0, 0, 7);
//! assert_eq!((out.width, out.height), (64, 48));
//! // Rotated corners are padded: 255 (ignore) in the mask, never a made-up class.
//! assert!(out.mask.iter().all(|&v| v == 1 || v == 255));
//! assert!(out.mask.contains(&255));
//! # Ok::<(), segkit_augment::AugmentError>(())
//! ```
//!
//! # Pipeline files
//!
//! TOML (or JSON of the same shape): a `transforms` list of tables, each with `name`, an
//! optional `p` and the transform's parameters, named and meant as in albumentations 2.0:
//!
//! ```toml
//! [[transforms]]
//! name = "HorizontalFlip"
//! p = 0.5
//!
//! [[transforms]]
//! name = "Rotate"
//! limit = 45            # degrees: a number x means [-x, x]
//! border_mode = "constant"
//! fill_mask = 255       # the default here (albumentations defaults to 0)
//!
//! [[transforms]]
//! name = "OneOf"
//! p = 0.3
//! transforms = [
//!   { name = "GaussNoise", std_range = [0.01, 0.04] },
//!   { name = "GaussianBlur", blur_limit = [3, 5] },
//! ]
//! ```
//!
//! A JSON export of albumentations (`A.to_dict(transform)`, `A.save(transform, path)`) loads
//! as it is: `__class_fullname__` is read as `name` and keys that change nothing here
//! (`bbox_params`, `rotate_method`, `mask_interpolation`, ...) are skipped. Unknown
//! transforms or parameters are errors that name the place, never silently ignored.
//! `border_mode` takes OpenCV's numbers (0 constant, 1 replicate, 2 reflect, 3 wrap,
//! 4 reflect_101) or those names; `interpolation` 0 (nearest) or 1 (linear); `fill` a
//! number or `[r, g, b]`.
//!
//! # Mapping from albumentations
//!
//! | name | parameters (defaults as albumentations 2.0.8) | notes |
//! |---|---|---|
//! | `HorizontalFlip`, `VerticalFlip`, `Transpose` | `p` = 0.5 | exact |
//! | `RandomRotate90` | `p` = 0.5 | k ∈ {0,1,2,3} quarter turns counter-clockwise, as `np.rot90` |
//! | `Rotate` | `limit` (±90), `interpolation`, `border_mode` (constant), `fill`, `fill_mask` | `fill_mask` defaults to **255**; `crop_border` must be false |
//! | `Affine` | `scale`, `translate_percent`, `translate_px`, `rotate`, `shear` (numbers are fixed values, pairs are ranges, `{x, y}` tables per axis), `keep_ratio`, `interpolation`, `border_mode`, `fill`, `fill_mask` | `fill_mask` 255; `fit_output` must be false |
//! | `RandomScale` | `scale_limit` (±0.1: factor 1 + U), `interpolation` | output size changes |
//! | `RandomCrop` | `height`, `width`, `pad_position`, `border_mode`, `fill`, `fill_mask` | always pads a smaller image (albumentations needs `pad_if_needed`) |
//! | `RandomResizedCrop` | `size` = [h, w] (or `height`, `width`), `scale` (0.08, 1), `ratio` (3/4, 4/3), `interpolation` | torchvision's region search |
//! | `PadIfNeeded` | `min_height`, `min_width` (1024), `pad_height_divisor`, `pad_width_divisor`, `position`, `border_mode`, `fill`, `fill_mask` | `fill_mask` 255 |
//! | `CropNonEmptyMaskIfExists` | `height`, `width`, `ignore_values`; segkit's `fg_prob` (1.0) | the window holds a random foreground pixel with probability `fg_prob`; 0 and 255 are never foreground |
//! | `ElasticTransform` | `alpha` (1), `sigma` (50), `same_dxdy`, `noise_distribution`, `interpolation`, `border_mode`, `fill`, `fill_mask` | Gaussian smoothing by three box blurs (same σ) |
//! | `RandomBrightnessContrast` | `brightness_limit`, `contrast_limit` (±0.2), `brightness_by_max` | `v·(1+c) + b·255` |
//! | `RandomGamma` | `gamma_limit` (80, 120) | `255·(v/255)^(g/100)` |
//! | `HueSaturationValue` | `hue_shift_limit` (±20), `sat_shift_limit` (±30), `val_shift_limit` (±20) | OpenCV 8-bit units (hue 180 = a turn) |
//! | `ColorJitter` | `brightness`, `contrast`, `saturation` (0.8, 1.2), `hue` (±0.5) | applied in that fixed order |
//! | `GaussNoise` | `std_range` (0.2, 0.44), `mean_range`, `per_channel` | fractions of 255; noise by 16-bit inverse-CDF lookup |
//! | `GaussianBlur` | `blur_limit` (0 = from σ), `sigma_limit` (0.5, 3) | reflect-101 borders |
//! | `CLAHE` | `clip_limit` (1, 4), `tile_grid_size` (8, 8) | RGB: on luma, channels shifted by its change (albumentations: LAB L) |
//! | `ToGray` | `p` | ITU-R 601 luma in all channels |
//! | `Compose`, `OneOf`, `SomeOf` | `transforms`, `p` (1, 0.5, 1), `n`, `replace` | `OneOf` picks by the children's `p`; `SomeOf` uniformly, then each child's `p` |
//!
//! # The default pipeline
//!
//! [`DEFAULT_DEFECTS_TOML`] (`augment/pipelines/defects.toml`): flips, quarter turns, a mild
//! affine (±15°, 0.9–1.1 scale, ±5 % shift; padding ignored), brightness/contrast ±0.2, and
//! now and then light noise or blur.
#![deny(missing_docs)]

mod config;
mod elastic;
mod error;
pub mod geometric;
mod offline;
pub mod photometric;
mod pipeline;
mod pool;
mod preview;
mod replay;
mod rng;
mod sample;
pub mod warp;

pub use config::TRANSFORMS;
pub use elastic::Elastic;
pub use error::{AugmentError, Result};
pub use offline::{
    augment_dataset, augmented_stem, selected_stems, AugmentOptions, AugmentSummary,
};
pub use pipeline::Pipeline;
pub use preview::{preview_grid, PreviewOptions};
pub use rng::{sample_rng, SampleRng};
pub use sample::Sample;

/// The shipped pipeline for small defect datasets, as TOML (see the crate docs).
pub const DEFAULT_DEFECTS_TOML: &str = include_str!("../pipelines/defects.toml");

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn pipeline_is_send_and_sync() {
        assert_send_sync::<super::Pipeline>();
        assert_send_sync::<super::Sample>();
    }
}
