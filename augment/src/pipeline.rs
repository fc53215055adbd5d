//! [`Pipeline`]: a tree of transforms with probabilities, applied to one sample with the
//! random stream of `(seed, epoch, index)`.

use std::borrow::Cow;
use std::path::Path;

use image::RgbImage;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::elastic::{elastic_maps, Elastic};
use crate::error::AugmentError;
use crate::error::Result;
use crate::geometric;
use crate::photometric as photo;
use crate::replay::{replay, Step, Trace};
use crate::rng::{sample_rng, SampleRng};
use crate::sample::Sample;
use crate::warp::{self, Border, Fill, Interp, Mat, Resample};
use segkit_labelme::dataset::DatasetError;
use segkit_labelme::dataset::IGNORE_INDEX;

/// A closed range `[lo, hi]` a parameter is drawn from, uniformly.
pub(crate) type Range = (f64, f64);

fn draw(rng: &mut SampleRng, r: Range) -> f64 {
    if r.1 > r.0 {
        rng.gen_range(r.0..=r.1)
    } else {
        r.0
    }
}

/// Where padding goes when a transform pads (albumentations' `position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PadPosition {
    Center,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
    Random,
}

/// One transform with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    HorizontalFlip,
    VerticalFlip,
    RandomRotate90,
    Transpose,
    Rotate {
        limit: Range,
        rs: Resample,
    },
    Affine {
        scale_x: Range,
        scale_y: Range,
        keep_ratio: bool,
        translate: Translate,
        rotate: Range,
        shear_x: Range,
        shear_y: Range,
        rs: Resample,
    },
    RandomScale {
        limit: Range,
        interp: Interp,
    },
    RandomCrop {
        height: usize,
        width: usize,
        position: PadPosition,
        border: Border,
        fill: Fill,
    },
    RandomResizedCrop {
        height: usize,
        width: usize,
        scale: Range,
        ratio: Range,
        interp: Interp,
    },
    PadIfNeeded {
        min_height: Option<usize>,
        min_width: Option<usize>,
        height_divisor: Option<usize>,
        width_divisor: Option<usize>,
        position: PadPosition,
        border: Border,
        fill: Fill,
    },
    CropNonEmptyMaskIfExists {
        height: usize,
        width: usize,
        ignore_values: Vec<u8>,
        fg_prob: f64,
    },
    ElasticTransform {
        e: Elastic,
        rs: Resample,
    },
    RandomBrightnessContrast {
        brightness: Range,
        contrast: Range,
        by_max: bool,
    },
    RandomGamma {
        limit: Range,
    },
    HueSaturationValue {
        hue: Range,
        sat: Range,
        val: Range,
    },
    ColorJitter {
        brightness: Range,
        contrast: Range,
        saturation: Range,
        hue: Range,
    },
    GaussNoise {
        std: Range,
        mean: Range,
        per_channel: bool,
    },
    GaussianBlur {
        ksize: (usize, usize),
        sigma: Range,
    },
    Clahe {
        clip: Range,
        grid: (usize, usize),
    },
    ToGray,
    Compose(Vec<Node>),
    OneOf(Vec<Node>),
    SomeOf {
        n: usize,
        replace: bool,
        nodes: Vec<Node>,
    },
}

/// Affine translation, as a fraction of the size or in pixels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Translate {
    Percent { x: Range, y: Range },
    Px { x: Range, y: Range },
}

/// A transform and the probability that it is applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub op: Op,
    pub p: f64,
}

/// A loaded augmentation pipeline; cheap to share between threads (`Send + Sync`).
///
/// See the crate documentation for the file format and [`Pipeline::apply`] for how
/// samples are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub(crate) root: Node,
}

impl Pipeline {
    /// Parse a TOML pipeline.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        crate::config::parse_toml(text, "<string>")
    }

    /// Parse a JSON pipeline: segkit's own layout or an albumentations `A.to_dict` export.
    pub fn from_json_str(text: &str) -> Result<Self> {
        crate::config::parse_json(text, "<string>")
    }

    /// Load a pipeline file: `.json` is read as JSON, anything else as TOML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|e| DatasetError::io(path.to_path_buf(), e))?;
        let origin = path.display().to_string();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            crate::config::parse_json(&text, &origin)
        } else {
            crate::config::parse_toml(&text, &origin)
        }
    }

    /// The pipeline shipped for small defect datasets ([`crate::DEFAULT_DEFECTS_TOML`]).
    pub fn default_for_defects() -> Self {
        Self::from_toml_str(crate::DEFAULT_DEFECTS_TOML).expect("the shipped pipeline parses")
    }

    /// Augment `sample` with the random stream of sample `index` in `epoch` under `seed`.
    ///
    /// The result depends on nothing else: not on thread, call order or earlier calls.
    pub fn apply(&self, sample: Sample, seed: u64, epoch: u64, index: u64) -> Sample {
        let mut rng = sample_rng(seed, epoch, index);
        self.apply_with(sample, &mut rng)
    }

    /// Augment with a caller-provided stream (for callers that derive streams themselves).
    pub fn apply_with(&self, sample: Sample, rng: &mut SampleRng) -> Sample {
        run_node(&self.root, Cow::Owned(sample), rng, false, &mut ()).into_owned()
    }

    /// [`Pipeline::apply`] on a borrowed sample: the input is read, never copied first.
    pub fn apply_ref(&self, sample: &Sample, seed: u64, epoch: u64, index: u64) -> Sample {
        let mut rng = sample_rng(seed, epoch, index);
        run_node(&self.root, Cow::Borrowed(sample), &mut rng, false, &mut ()).into_owned()
    }

    /// [`Pipeline::apply`] for a sample that has an object mask (`objects`: one id a pixel,
    /// 0 = none, 255 = boundary/ignore, as `SegmentationObject/`). The sample comes out
    /// byte-identical to what [`Pipeline::apply`] gives; the ids go through exactly the same
    /// geometric steps as the class mask (nearest-neighbour, never blended), photometric
    /// transforms leave them alone, and a constant border fills them with 255 where the
    /// class mask is filled with 255 (ignore), else with 0 (no object). Other border modes
    /// (replicate, reflect, wrap) copy ids as they copy classes.
    ///
    /// ```
    /// use segkit_augment::{Pipeline, Sample};
    /// let p = Pipeline::from_toml_str("[[transforms]]\nname = \"HorizontalFlip\"\np = 1.0")?;
    /// let image = image::RgbImage::new(3, 1);
    /// let s = Sample::from_rgb(image, vec![0, 1, 1])?;
    /// let (out, ids) = p.apply_with_objects(s, &[0, 1, 2], 0, 0, 0)?;
    /// assert_eq!((out.mask, ids), (vec![1, 1, 0], vec![2, 1, 0]));
    /// # Ok::<(), segkit_augment::AugmentError>(())
    /// ```
    pub fn apply_with_objects(
        &self,
        sample: Sample,
        objects: &[u8],
        seed: u64,
        epoch: u64,
        index: u64,
    ) -> Result<(Sample, Vec<u8>)> {
        if objects.len() != sample.mask.len() {
            return Err(AugmentError::Shape(format!(
                "object mask has {} values but the image is {}x{} ({} pixels)",
                objects.len(),
                sample.width,
                sample.height,
                sample.mask.len()
            )));
        }
        let mut rng = sample_rng(seed, epoch, index);
        let (out, moved) = self.apply_traced(sample, objects.to_vec(), &mut rng);
        debug_assert_eq!(
            moved.image, out.mask,
            "the replay moved the class mask differently"
        );
        Ok((out, moved.mask))
    }

    /// The augmented sample, and the replay of its geometric steps on a one-channel sample
    /// of (class mask, `objects`) (see [`crate::replay`]); `objects` must be the mask's size.
    pub(crate) fn apply_traced(
        &self,
        sample: Sample,
        objects: Vec<u8>,
        rng: &mut SampleRng,
    ) -> (Sample, Sample) {
        let planes = Sample {
            image: sample.mask.clone(),
            mask: objects,
            channels: 1,
            ..sample
        };
        let mut steps: Vec<Step> = Vec::new();
        let out = run_node(&self.root, Cow::Owned(sample), rng, false, &mut steps).into_owned();
        (out, replay(&steps, planes))
    }

    /// [`Pipeline::apply`] for an RGB image and its `width * height` mask.
    pub fn apply_rgb(
        &self,
        image: &RgbImage,
        mask: &[u8],
        seed: u64,
        epoch: u64,
        index: u64,
    ) -> Result<(RgbImage, Vec<u8>)> {
        let s = Sample::from_rgb(image.clone(), mask.to_vec())?;
        Ok(self.apply(s, seed, epoch, index).into_rgb())
    }
}

/// The sample between transforms: borrowed until the first transform that applies.
type Cur<'a> = Cow<'a, Sample>;

fn run_node<'a, T: Trace>(
    node: &Node,
    s: Cur<'a>,
    rng: &mut SampleRng,
    force: bool,
    trace: &mut T,
) -> Cur<'a> {
    // Always draw, so that a transform's later draws do not shift with `force`.
    let hit = rng.gen::<f64>() < node.p;
    if !(hit || force) {
        return s;
    }
    run_op(&node.op, s, rng, trace)
}

/// `new` replaces `old`, whose buffers go back to the pool when they were ours.
fn replace<'a>(old: Cur<'a>, new: Sample) -> Cur<'a> {
    if let Cow::Owned(o) = old {
        o.recycle();
    }
    Cow::Owned(new)
}

/// The sample, owned (a pooled copy when it was borrowed), for in-place transforms.
fn owned(s: Cur<'_>) -> Sample {
    match s {
        Cow::Owned(o) => o,
        Cow::Borrowed(b) => b.pooled_clone(),
    }
}

/// Run one transform; its geometric steps go to `trace` (photometric ones change the
/// image only and are not recorded).
fn run_op<'a, T: Trace>(op: &Op, s: Cur<'a>, rng: &mut SampleRng, trace: &mut T) -> Cur<'a> {
    let (w, h) = (s.width as usize, s.height as usize);
    match op {
        Op::HorizontalFlip => {
            trace.record(|| Step::HFlip);
            let n = geometric::hflip(&s);
            replace(s, n)
        }
        Op::VerticalFlip => {
            trace.record(|| Step::VFlip);
            let n = geometric::vflip(&s);
            replace(s, n)
        }
        Op::RandomRotate90 => {
            let k = rng.gen_range(0..4);
            if k == 0 {
                return s;
            }
            trace.record(|| Step::Rot90(k));
            let n = geometric::rot90(&s, k);
            replace(s, n)
        }
        Op::Transpose => {
            trace.record(|| Step::Transpose);
            let n = geometric::transpose(&s);
            replace(s, n)
        }
        Op::Rotate { limit, rs } => {
            let m = rotation_about_centre(w, h, draw(rng, *limit), 1.0, 1.0, 0.0, 0.0, (0.0, 0.0));
            let n = warp_forward(&s, w, h, &m, *rs, trace);
            replace(s, n)
        }
        Op::Affine {
            scale_x,
            scale_y,
            keep_ratio,
            translate,
            rotate,
            shear_x,
            shear_y,
            rs,
        } => {
            let sx = draw(rng, *scale_x);
            let sy = if *keep_ratio { sx } else { draw(rng, *scale_y) };
            let t = match translate {
                Translate::Percent { x, y } => (draw(rng, *x) * w as f64, draw(rng, *y) * h as f64),
                Translate::Px { x, y } => (draw(rng, *x).round(), draw(rng, *y).round()),
            };
            let angle = draw(rng, *rotate);
            let (hx, hy) = (draw(rng, *shear_x), draw(rng, *shear_y));
            let m = rotation_about_centre(w, h, angle, sx, sy, hx, hy, t);
            let n = warp_forward(&s, w, h, &m, *rs, trace);
            replace(s, n)
        }
        Op::RandomScale { limit, interp } => {
            let f = 1.0 + draw(rng, *limit);
            let ow = ((w as f64 * f).round() as usize).max(1);
            let oh = ((h as f64 * f).round() as usize).max(1);
            let n = resize_region(&s, (0.0, 0.0, w as f64, h as f64), ow, oh, *interp, trace);
            replace(s, n)
        }
        Op::RandomCrop {
            height,
            width,
            position,
            border,
            fill,
        } => {
            let padded = pad_to(&s, *height, *width, *position, *border, *fill, rng, trace);
            let src = padded.as_ref().unwrap_or(&s);
            let x = rng.gen_range(0..=src.width as usize - width);
            let y = rng.gen_range(0..=src.height as usize - height);
            trace.record(|| Step::Crop {
                x,
                y,
                w: *width,
                h: *height,
            });
            let n = geometric::crop(src, x, y, *width, *height);
            if let Some(p) = padded {
                p.recycle();
            }
            replace(s, n)
        }
        Op::RandomResizedCrop {
            height,
            width,
            scale,
            ratio,
            interp,
        } => {
            let region = resized_crop_region(w, h, *scale, *ratio, rng);
            let n = resize_region(&s, region, *width, *height, *interp, trace);
            replace(s, n)
        }
        Op::PadIfNeeded {
            min_height,
            min_width,
            height_divisor,
            width_divisor,
            position,
            border,
            fill,
        } => {
            let th = target_size(h, *min_height, *height_divisor);
            let tw = target_size(w, *min_width, *width_divisor);
            match pad_to(&s, th, tw, *position, *border, *fill, rng, trace) {
                Some(n) => replace(s, n),
                None => s,
            }
        }
        Op::CropNonEmptyMaskIfExists {
            height,
            width,
            ignore_values,
            fg_prob,
        } => {
            let padded = pad_to(
                &s,
                *height,
                *width,
                PadPosition::Center,
                Border::Constant,
                Fill::default(),
                rng,
                trace,
            );
            let src = padded.as_ref().unwrap_or(&s);
            let (w, h) = (src.width as usize, src.height as usize);
            let is_fg = |v: u8| v != 0 && v != IGNORE_INDEX && !ignore_values.contains(&v);
            let count = src.mask.iter().filter(|&&v| is_fg(v)).count();
            let want_fg = rng.gen::<f64>() < *fg_prob;
            let (x, y) = if count > 0 && want_fg {
                let k = rng.gen_range(0..count);
                let at = src
                    .mask
                    .iter()
                    .enumerate()
                    .filter(|(_, &v)| is_fg(v))
                    .nth(k)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let (cx, cy) = (at % w, at / w);
                // A random window that contains the chosen foreground pixel.
                let x = cx.saturating_sub(rng.gen_range(0..*width)).min(w - width);
                let y = cy.saturating_sub(rng.gen_range(0..*height)).min(h - height);
                (x, y)
            } else {
                (rng.gen_range(0..=w - width), rng.gen_range(0..=h - height))
            };
            trace.record(|| Step::Crop {
                x,
                y,
                w: *width,
                h: *height,
            });
            let n = geometric::crop(src, x, y, *width, *height);
            if let Some(p) = padded {
                p.recycle();
            }
            replace(s, n)
        }
        Op::ElasticTransform { e, rs } => match elastic_maps(w, h, *e, rng) {
            Some((map_x, map_y)) => {
                let n = warp::remap(&s, &map_x, &map_y, w, *rs);
                trace.record(|| Step::Remap {
                    map_x,
                    map_y,
                    ow: w,
                    border: rs.border,
                    mask_fill: rs.fill.mask,
                });
                replace(s, n)
            }
            None => s,
        },
        Op::RandomBrightnessContrast {
            brightness,
            contrast,
            by_max,
        } => {
            let alpha = 1.0 + draw(rng, *contrast);
            let b = draw(rng, *brightness);
            let beta = if *by_max {
                b * 255.0
            } else {
                let n = s.image.len().max(1);
                b * s.image.iter().map(|&v| v as u64).sum::<u64>() as f64 / n as f64
            };
            match s {
                Cow::Borrowed(b) => Cow::Owned(photo::brightness_contrast_from(
                    b,
                    alpha as f32,
                    beta as f32,
                )),
                Cow::Owned(mut o) => {
                    photo::brightness_contrast_fast(&mut o, alpha as f32, beta as f32);
                    Cow::Owned(o)
                }
            }
        }
        Op::RandomGamma { limit } => {
            let mut s = owned(s);
            photo::gamma(&mut s, (draw(rng, *limit) / 100.0) as f32);
            Cow::Owned(s)
        }
        Op::HueSaturationValue { hue, sat, val } => {
            let (a, b, c) = (draw(rng, *hue), draw(rng, *sat), draw(rng, *val));
            let mut s = owned(s);
            photo::hue_saturation_value(&mut s, a as f32, b as f32, c as f32);
            Cow::Owned(s)
        }
        Op::ColorJitter {
            brightness,
            contrast,
            saturation,
            hue,
        } => {
            let (b, c) = (draw(rng, *brightness), draw(rng, *contrast));
            let (sa, hu) = (draw(rng, *saturation), draw(rng, *hue));
            let mut s = owned(s);
            photo::color_jitter(&mut s, b as f32, c as f32, sa as f32, hu as f32);
            Cow::Owned(s)
        }
        Op::GaussNoise {
            std,
            mean,
            per_channel,
        } => {
            let (sd, m) = (draw(rng, *std) * 255.0, draw(rng, *mean) * 255.0);
            let mut s = owned(s);
            photo::gauss_noise(&mut s, sd as f32, m as f32, *per_channel, rng);
            Cow::Owned(s)
        }
        Op::GaussianBlur { ksize, sigma } => {
            let (lo, hi) = *ksize;
            let k = if hi == 0 {
                0
            } else {
                let lo = lo.max(3) | 1;
                let choices: Vec<usize> = (lo..=hi.max(lo)).step_by(2).collect();
                *choices.choose(rng).unwrap_or(&lo)
            };
            let sg = draw(rng, *sigma);
            let mut s = owned(s);
            photo::gaussian_blur(&mut s, &photo::gaussian_kernel(k, sg));
            Cow::Owned(s)
        }
        Op::Clahe { clip, grid } => {
            let mut s = owned(s);
            photo::clahe(&mut s, draw(rng, *clip), *grid);
            Cow::Owned(s)
        }
        Op::ToGray => {
            let mut s = owned(s);
            photo::to_gray(&mut s);
            Cow::Owned(s)
        }
        Op::Compose(nodes) => nodes
            .iter()
            .fold(s, |s, n| run_node(n, s, rng, false, trace)),
        Op::OneOf(nodes) => {
            // Weighted by the children's own p, as albumentations does; the chosen one is forced.
            let total: f64 = nodes.iter().map(|n| n.p).sum();
            if nodes.is_empty() || total <= 0.0 {
                return s;
            }
            let mut u = rng.gen::<f64>() * total;
            let mut pick = nodes.len() - 1;
            for (i, n) in nodes.iter().enumerate() {
                if u < n.p {
                    pick = i;
                    break;
                }
                u -= n.p;
            }
            run_node(&nodes[pick], s, rng, true, trace)
        }
        Op::SomeOf { n, replace, nodes } => {
            // Chosen uniformly (albumentations ignores the children's p for the choice), then
            // each runs with its own p, in pipeline order.
            if nodes.is_empty() {
                return s;
            }
            let mut idx: Vec<usize> = if *replace {
                (0..*n).map(|_| rng.gen_range(0..nodes.len())).collect()
            } else {
                rand::seq::index::sample(rng, nodes.len(), (*n).min(nodes.len())).into_vec()
            };
            idx.sort_unstable();
            idx.iter()
                .fold(s, |s, &i| run_node(&nodes[i], s, rng, false, trace))
        }
    }
}

/// Forward matrix of: scale, shear (degrees), rotate (degrees, counter-clockwise as OpenCV)
/// about the image centre, then translate by `t` pixels.
#[allow(clippy::too_many_arguments)] // one argument per albumentations parameter
fn rotation_about_centre(
    w: usize,
    h: usize,
    angle: f64,
    sx: f64,
    sy: f64,
    shx: f64,
    shy: f64,
    t: (f64, f64),
) -> Mat {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sin, cos) = angle.to_radians().sin_cos();
    let to_origin: Mat = [1.0, 0.0, -cx, 0.0, 1.0, -cy];
    let scale: Mat = [sx, 0.0, 0.0, 0.0, sy, 0.0];
    let shear: Mat = [
        1.0,
        shx.to_radians().tan(),
        0.0,
        shy.to_radians().tan(),
        1.0,
        0.0,
    ];
    let rot: Mat = [cos, sin, 0.0, -sin, cos, 0.0];
    let back: Mat = [1.0, 0.0, cx + t.0, 0.0, 1.0, cy + t.1];
    let m = warp::compose(&shear, &warp::compose(&scale, &to_origin));
    warp::compose(&back, &warp::compose(&rot, &m))
}

/// Warp by a forward matrix; a degenerate matrix (zero scale) leaves the sample as it was.
fn warp_forward<T: Trace>(
    s: &Sample,
    ow: usize,
    oh: usize,
    fwd: &Mat,
    rs: Resample,
    trace: &mut T,
) -> Sample {
    match warp::invert(fwd) {
        Some(inv) => traced_warp(s, ow, oh, inv, rs, trace),
        None => s.clone(),
    }
}

/// Resize the region `(x, y, w, h)` of `s` to `ow`×`oh` (pixel-area convention of OpenCV's
/// `resize`, edges replicated).
fn resize_region<T: Trace>(
    s: &Sample,
    (x, y, w, h): (f64, f64, f64, f64),
    ow: usize,
    oh: usize,
    interp: Interp,
    trace: &mut T,
) -> Sample {
    let (fx, fy) = (w / ow as f64, h / oh as f64);
    let inv: Mat = [fx, 0.0, x + 0.5 * fx - 0.5, 0.0, fy, y + 0.5 * fy - 0.5];
    let rs = Resample {
        interp,
        border: Border::Replicate,
        fill: Fill::default(),
    };
    traced_warp(s, ow, oh, inv, rs, trace)
}

/// `warp::warp_affine` by the inverse map `inv`, recorded in `trace` for the object mask.
fn traced_warp<T: Trace>(
    s: &Sample,
    ow: usize,
    oh: usize,
    inv: Mat,
    rs: Resample,
    trace: &mut T,
) -> Sample {
    trace.record(|| Step::Warp {
        ow,
        oh,
        inv,
        border: rs.border,
        mask_fill: rs.fill.mask,
    });
    warp::warp_affine(s, ow, oh, &inv, rs)
}

/// torchvision's `RandomResizedCrop` region search: ten tries, then a centre crop.
fn resized_crop_region(
    w: usize,
    h: usize,
    scale: Range,
    ratio: Range,
    rng: &mut SampleRng,
) -> (f64, f64, f64, f64) {
    let area = (w * h) as f64;
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * draw(rng, scale);
        let r = draw(rng, (lr0, lr1)).exp();
        let cw = (target * r).sqrt().round() as usize;
        let ch = (target / r).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let x = rng.gen_range(0..=w - cw);
            let y = rng.gen_range(0..=h - ch);
            return (x as f64, y as f64, cw as f64, ch as f64);
        }
    }
    let in_ratio = w as f64 / h.max(1) as f64;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w as f64, (w as f64 / ratio.0).round())
    } else if in_ratio > ratio.1 {
        ((h as f64 * ratio.1).round(), h as f64)
    } else {
        (w as f64, h as f64)
    };
    (
        ((w as f64 - cw) / 2.0).floor(),
        ((h as f64 - ch) / 2.0).floor(),
        cw,
        ch,
    )
}

fn target_size(n: usize, min: Option<usize>, divisor: Option<usize>) -> usize {
    match (min, divisor) {
        (_, Some(d)) if d > 0 => n.div_ceil(d) * d,
        (Some(m), _) => n.max(m),
        _ => n,
    }
}

/// `s` padded to at least `th`×`tw`, or `None` when it is that large already.
#[allow(clippy::too_many_arguments)] // one argument per albumentations parameter
fn pad_to<T: Trace>(
    s: &Sample,
    th: usize,
    tw: usize,
    pos: PadPosition,
    border: Border,
    fill: Fill,
    rng: &mut SampleRng,
    trace: &mut T,
) -> Option<Sample> {
    let (w, h) = (s.width as usize, s.height as usize);
    let (ph, pw) = (th.saturating_sub(h), tw.saturating_sub(w));
    if ph == 0 && pw == 0 {
        return None;
    }
    let (top, left) = match pos {
        PadPosition::Center => (ph / 2, pw / 2),
        PadPosition::TopLeft => (0, 0),
        PadPosition::TopRight => (0, pw),
        PadPosition::BottomLeft => (ph, 0),
        PadPosition::BottomRight => (ph, pw),
        PadPosition::Random => (rng.gen_range(0..=ph), rng.gen_range(0..=pw)),
    };
    trace.record(|| Step::Pad {
        margins: [top, ph - top, left, pw - left],
        border,
        mask_fill: fill.mask,
    });
    Some(geometric::pad(
        s,
        top,
        ph - top,
        left,
        pw - left,
        border,
        fill,
    ))
}
