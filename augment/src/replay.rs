//! Object masks through a pipeline: the geometric steps a sample went through, recorded as
//! drawn, and replayed on its object mask (`SegmentationObject/`: an id per pixel, 0 = none,
//! 255 = boundary or ignore).
//!
//! Why a replay rather than a second plane in [`Sample`]: the hot loops of every transform
//! stay as they are for the samples that have no object mask (nearly all of them), and the
//! random stream is drawn once, by the same code, whether or not the sample has one: the
//! image and class mask come out byte-identical either way.
//!
//! The replay moves a one-channel sample whose "image" is the class mask and whose mask is
//! the object mask, both nearest-neighbour, so the class mask comes out of the replay too;
//! it must equal the class mask of the pipeline's own output (checked in debug builds and
//! by the tests), which is what guarantees that every object id lands on the class pixels
//! it came with.

use segkit_labelme::dataset::IGNORE_INDEX;

use crate::geometric;
use crate::sample::Sample;
use crate::warp::{self, Border, Fill, Interp, Mat, Resample};

/// One geometric step, with everything that was drawn for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    HFlip,
    VFlip,
    Rot90(u32),
    Transpose,
    /// [`warp::warp_affine`] into `ow`×`oh` with inverse matrix `inv`.
    Warp {
        ow: usize,
        oh: usize,
        inv: Mat,
        border: Border,
        mask_fill: u8,
    },
    /// [`warp::remap`] (elastic) by per-pixel source coordinates, `ow` wide.
    Remap {
        map_x: Vec<f32>,
        map_y: Vec<f32>,
        ow: usize,
        border: Border,
        mask_fill: u8,
    },
    /// [`geometric::pad`] by `[top, bottom, left, right]`.
    Pad {
        margins: [usize; 4],
        border: Border,
        mask_fill: u8,
    },
    /// [`geometric::crop`] of the `w`×`h` window at `(x, y)`.
    Crop {
        x: usize,
        y: usize,
        w: usize,
        h: usize,
    },
}

/// Where the pipeline reports its geometric steps. `()` records nothing and compiles to
/// nothing, so the plain [`crate::Pipeline::apply`] pays nothing for object masks.
pub(crate) trait Trace {
    /// Record the step `make` builds (not called when nothing is recorded).
    fn record(&mut self, make: impl FnOnce() -> Step);
}

impl Trace for () {
    #[inline(always)]
    fn record(&mut self, _: impl FnOnce() -> Step) {}
}

impl Trace for Vec<Step> {
    fn record(&mut self, make: impl FnOnce() -> Step) {
        self.push(make());
    }
}

/// What an object mask gets where the class mask gets the constant `mask_fill`: 255
/// (boundary/ignore, as `crop` pads object masks) where the class mask is ignored, else 0
/// (no object: padding that is background, or a class, has no object on it).
pub(crate) fn object_fill(mask_fill: u8) -> u8 {
    if mask_fill == IGNORE_INDEX {
        IGNORE_INDEX
    } else {
        0
    }
}

/// Replay `steps` on `s`: a one-channel sample whose image is the class mask the pipeline
/// started from and whose mask is the object mask. Everything is nearest-neighbour; the
/// class mask gets the fill the pipeline gave it, the object mask [`object_fill`] of it.
pub(crate) fn replay(steps: &[Step], mut s: Sample) -> Sample {
    debug_assert_eq!(s.channels, 1);
    let fill = |mask_fill: u8| Fill {
        image: [mask_fill; 3],
        mask: object_fill(mask_fill),
    };
    for step in steps {
        let next = match step {
            Step::HFlip => geometric::hflip(&s),
            Step::VFlip => geometric::vflip(&s),
            Step::Rot90(k) => geometric::rot90(&s, *k),
            Step::Transpose => geometric::transpose(&s),
            Step::Warp {
                ow,
                oh,
                inv,
                border,
                mask_fill,
            } => warp::warp_affine(
                &s,
                *ow,
                *oh,
                inv,
                Resample {
                    interp: Interp::Nearest,
                    border: *border,
                    fill: fill(*mask_fill),
                },
            ),
            Step::Remap {
                map_x,
                map_y,
                ow,
                border,
                mask_fill,
            } => warp::remap(
                &s,
                map_x,
                map_y,
                *ow,
                Resample {
                    interp: Interp::Nearest,
                    border: *border,
                    fill: fill(*mask_fill),
                },
            ),
            Step::Pad {
                margins: [t, b, l, r],
                border,
                mask_fill,
            } => geometric::pad(&s, *t, *b, *l, *r, *border, fill(*mask_fill)),
            Step::Crop { x, y, w, h } => geometric::crop(&s, *x, *y, *w, *h),
        };
        s.recycle();
        s = next;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sample_rng, Pipeline};
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    /// Every geometric transform, with constant (ignore and background fill), replicate,
    /// reflect and wrap borders, among photometric ones that must not touch the ids.
    const ALL_GEOMETRY: &str = r#"
        [[transforms]]
        name = "HorizontalFlip"
        [[transforms]]
        name = "VerticalFlip"
        [[transforms]]
        name = "RandomRotate90"
        [[transforms]]
        name = "Transpose"
        [[transforms]]
        name = "GaussNoise"
        p = 0.3
        [[transforms]]
        name = "OneOf"
        p = 0.9
        transforms = [
          { name = "Rotate", limit = 40, p = 1.0 },
          { name = "Rotate", limit = 40, border_mode = "reflect", p = 1.0 },
          { name = "Affine", rotate = [-20, 20], scale = [0.7, 1.3], shear = [-10, 10],
            translate_percent = [-0.2, 0.2], fill_mask = 0, p = 1.0 },
          { name = "Affine", rotate = [-20, 20], border_mode = "wrap", p = 1.0 },
          { name = "ElasticTransform", alpha = 20, sigma = 3, p = 1.0 },
          { name = "ElasticTransform", alpha = 20, sigma = 3, border_mode = "replicate",
            interpolation = 0, p = 1.0 },
          { name = "RandomScale", scale_limit = 0.4, p = 1.0 },
        ]
        [[transforms]]
        name = "PadIfNeeded"
        min_height = 40
        min_width = 36
        position = "random"
        p = 0.5
        [[transforms]]
        name = "PadIfNeeded"
        min_height = 44
        min_width = 44
        border_mode = "reflect_101"
        p = 0.3
        [[transforms]]
        name = "RandomBrightnessContrast"
        [[transforms]]
        name = "OneOf"
        transforms = [
          { name = "RandomCrop", height = 24, width = 30, p = 1.0 },
          { name = "CropNonEmptyMaskIfExists", height = 20, width = 20, p = 1.0 },
          { name = "RandomResizedCrop", size = [28, 26], p = 1.0 },
        ]
    "#;

    fn pairs(class: &[u8], ids: &[u8]) -> BTreeSet<(u8, u8)> {
        class.iter().copied().zip(ids.iter().copied()).collect()
    }

    #[test]
    fn ids_move_with_their_classes_and_the_sample_is_what_apply_gives() {
        let p = Pipeline::from_toml_str(ALL_GEOMETRY).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for i in 0..400u64 {
            let (w, h) = (rng.gen_range(1..48u32), rng.gen_range(1..48u32));
            let n = (w * h) as usize;
            let ch = if i % 3 == 0 { 1 } else { 3 };
            let image: Vec<u8> = (0..n * ch).map(|_| rng.gen()).collect();
            // blocks of objects, each on one class, with some boundary (255, 255) pixels
            let ids: Vec<u8> = (0..n)
                .map(
                    |j| match ((j % w as usize) / 6 + (j / w as usize) / 5) % 5 {
                        0 => 0,
                        4 if rng.gen_range(0..4) == 0 => 255,
                        k => k as u8,
                    },
                )
                .collect();
            let class: Vec<u8> = ids
                .iter()
                .map(|&o| match o {
                    0 => 0,
                    255 => 255,
                    o => o % 3 + 1,
                })
                .collect();
            let s = Sample::new(w, h, ch as u8, image, class.clone()).unwrap();
            let plain = p.apply(s.clone(), 9, 0, i);
            let (out, moved) = p.apply_traced(s, ids.clone(), &mut sample_rng(9, 0, i));
            assert_eq!(out, plain, "sample {i}");
            assert_eq!(
                moved.image, out.mask,
                "sample {i}: class mask moved differently"
            );
            assert_eq!((moved.width, moved.height), (out.width, out.height));
            let mut allowed = pairs(&class, &ids);
            allowed.extend([(255, 255), (0, 0)]);
            let got = pairs(&out.mask, &moved.mask);
            assert!(
                got.is_subset(&allowed),
                "sample {i}: {got:?} not in {allowed:?}"
            );
        }
    }

    #[test]
    fn object_masks_pad_with_ignore_only_where_the_class_mask_is_ignored() {
        assert_eq!(object_fill(255), 255);
        assert_eq!(object_fill(0), 0);
        assert_eq!(object_fill(3), 0);
    }

    #[test]
    fn a_pad_then_crop_replay_moves_both_planes_and_fills_each_its_own_way() {
        // class mask 1 2 / 3 4, objects 5 6 / 7 8; pad one pixel left with ignore, crop 2x1
        let s = Sample::new(2, 2, 1, vec![1, 2, 3, 4], vec![5, 6, 7, 8]).unwrap();
        let steps = [
            Step::Pad {
                margins: [0, 0, 1, 0],
                border: Border::Constant,
                mask_fill: 0,
            },
            Step::Crop {
                x: 0,
                y: 1,
                w: 2,
                h: 1,
            },
        ];
        let out = replay(&steps, s);
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.image, [0, 3]);
        assert_eq!(out.mask, [0, 7]);
    }
}
