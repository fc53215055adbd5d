//! The synthetic defect dataset: labelme annotations of textured parts with rendered
//! defects, shaped like the users' real problem (few images, large photos, tiny and
//! imbalanced defects, three views, some `__ignore__` regions).
//!
//! Every image gets its own random stream derived from `(seed, index)`, so the output is
//! byte-identical for a seed whatever the thread count. The defect is painted into the
//! image where its labelme shape is, with soft edges, so a model can learn it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::dataset::{atomic_write, DatasetError};

/// The default defect classes, each with the labelme shape it is drawn as.
pub const DEFAULT_CLASSES: [&str; 4] = ["scratch", "dent", "stain", "crack"];
/// Views a part is photographed from; each image is one, in its name and its `flags`.
pub const VIEWS: [&str; 3] = ["front", "back", "side"];

/// What the generator makes.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Number of annotated images.
    pub images: usize,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Defect class names; class k is drawn as the k-th kind (scratch, dent, stain, crack, …).
    pub classes: Vec<String>,
    /// Seed of everything random.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            images: 24,
            width: 1024,
            height: 1024,
            classes: DEFAULT_CLASSES.iter().map(|s| s.to_string()).collect(),
            seed: 0,
        }
    }
}

/// What the generator made.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    /// Annotation files written.
    pub images: usize,
    /// Images with at least one defect.
    pub with_defects: usize,
    /// Defect shapes per class name.
    pub shapes_per_class: BTreeMap<String, usize>,
    /// `__ignore__` shapes.
    pub ignore_shapes: usize,
    /// Share of all pixels covered by painted defects (approximate: the painted area).
    pub defect_share: f64,
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The parameters make no sense.
    #[error("{0}")]
    Parameter(String),
    /// Writing failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// JPEG encoding failed.
    #[error("{path}: cannot encode image: {message}")]
    Encode {
        /// The image file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
}

/// How a class is drawn, by its position in the class list.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Scratch,
    Dent,
    Stain,
    Crack,
}

const KINDS: [Kind; 4] = [Kind::Scratch, Kind::Dent, Kind::Stain, Kind::Crack];
/// Relative frequency of each kind: crack is the rare class, as in real inspection data.
const KIND_WEIGHT: [f64; 4] = [0.38, 0.28, 0.24, 0.10];

/// Write `config.images` labelme JSON files, their JPEG images and `labels.txt` into `out`.
/// `tick` is called once per finished image (for a progress bar).
pub fn generate(
    config: &SynthConfig,
    out: &Path,
    tick: &(dyn Fn() + Sync),
) -> Result<SynthSummary, SynthError> {
    if config.classes.is_empty() {
        return Err(SynthError::Parameter(
            "at least one defect class is needed".into(),
        ));
    }
    if config.width < 64 || config.height < 64 {
        return Err(SynthError::Parameter(format!(
            "image size {}x{} is too small: at least 64x64",
            config.width, config.height
        )));
    }
    if config.width > 20_000 || config.height > 20_000 {
        return Err(SynthError::Parameter(format!(
            "image size {}x{} is too large: at most 20000x20000",
            config.width, config.height
        )));
    }
    let plan = plan_defects(config);
    let results: Vec<Result<ImageStats, SynthError>> = (0..config.images)
        .into_par_iter()
        .map(|i| {
            let r = write_one(config, out, i, &plan[i]);
            tick();
            r
        })
        .collect();
    let mut summary = SynthSummary {
        images: config.images,
        ..Default::default()
    };
    let mut painted = 0u64;
    for r in results {
        let s = r?;
        painted += s.painted;
        summary.ignore_shapes += s.ignore_shapes;
        if !s.classes.is_empty() {
            summary.with_defects += 1;
        }
        for c in s.classes {
            *summary
                .shapes_per_class
                .entry(config.classes[c].clone())
                .or_insert(0) += 1;
        }
    }
    let total = config.images as f64 * config.width as f64 * config.height as f64;
    summary.defect_share = painted as f64 / total;
    let mut labels = String::from("__ignore__\n_background_\n");
    for c in &config.classes {
        labels.push_str(c);
        labels.push('\n');
    }
    atomic_write(&out.join("labels.txt"), labels.as_bytes())?;
    Ok(summary)
}

/// File stem of image `i`: `part007_side`.
pub fn stem(i: usize) -> String {
    format!("part{i:03}_{}", VIEWS[i % VIEWS.len()])
}

/// Which defect classes each image gets, decided up front for the whole set so that the
/// set-level properties hold: 10–20% of images defect-free, every class in at least two
/// images (when there are enough images), the last-listed kinds rare.
fn plan_defects(config: &SynthConfig) -> Vec<Vec<usize>> {
    let n = config.images;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5e6_c1a55);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let empty = if n >= 5 {
        ((n as f64) * 0.15).round() as usize
    } else {
        0
    };
    let mut plan = vec![Vec::new(); n];
    let k = config.classes.len();
    let weights: Vec<f64> = (0..k)
        .map(|c| KIND_WEIGHT[c % 4] / (1 + c / 4) as f64)
        .collect();
    let wsum: f64 = weights.iter().sum();
    let with: Vec<usize> = order[empty..].to_vec();
    for &img in &with {
        let count = 1 + (rng.gen::<f64>() * 2.2) as usize; // 1..=3 defects
        for _ in 0..count {
            let mut x = rng.gen::<f64>() * wsum;
            let mut cls = k - 1;
            for (c, w) in weights.iter().enumerate() {
                if x < *w {
                    cls = c;
                    break;
                }
                x -= w;
            }
            plan[img].push(cls);
        }
    }
    // Guarantee every class twice (a class seen once cannot be in both train and val).
    if with.len() >= 2 {
        for c in 0..k {
            let have = plan.iter().filter(|p| p.contains(&c)).count();
            for j in 0..2usize.saturating_sub(have) {
                let img = with[(c * 2 + j) % with.len()];
                if !plan[img].contains(&c) {
                    plan[img].push(c);
                }
            }
        }
    }
    plan
}

struct ImageStats {
    classes: Vec<usize>,
    ignore_shapes: usize,
    painted: u64,
}

fn write_one(
    config: &SynthConfig,
    out: &Path,
    i: usize,
    classes: &[usize],
) -> Result<ImageStats, SynthError> {
    // One stream per image: the same bytes whatever the thread count or order.
    let mut rng = ChaCha8Rng::seed_from_u64(
        config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_add(1),
    );
    let (w, h) = (config.width, config.height);
    let view = VIEWS[i % VIEWS.len()];
    let mut canvas = surface(&mut rng, w, h, view);
    let scale = w.min(h) as f64 / 1024.0;
    let mut shapes = Vec::new();
    let mut painted = 0u64;
    for &c in classes {
        let kind = KINDS[c % KINDS.len()];
        let geom = defect_geometry(&mut rng, kind, w, h, scale);
        painted += paint(&mut canvas, &geom, kind, &mut rng);
        shapes.push(shape_json(&config.classes[c], &geom));
    }
    // A few regions the annotator could not decide on: glare, marked `__ignore__`.
    let mut ignore_shapes = 0;
    if rng.gen::<f64>() < 0.2 {
        let geom = blob(&mut rng, w, h, 30.0 * scale, 60.0 * scale);
        paint_glare(&mut canvas, &geom);
        shapes.push(shape_json("__ignore__", &geom));
        ignore_shapes += 1;
    }
    let name = stem(i);
    let img_name = format!("{name}.jpg");
    let img_path = out.join(&img_name);
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92);
    canvas
        .write_with_encoder(encoder)
        .map_err(|e| SynthError::Encode {
            path: img_path.clone(),
            message: e.to_string(),
        })?;
    atomic_write(&img_path, &jpeg)?;
    // Half the files embed the image, as labelme does by default; half only point to it.
    let image_data = if i % 2 == 0 {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&jpeg))
    } else {
        Value::Null
    };
    let flags: serde_json::Map<String, Value> = VIEWS
        .iter()
        .map(|v| (v.to_string(), Value::Bool(*v == view)))
        .collect();
    let doc = json!({
        "version": "5.5.0",
        "flags": flags,
        "shapes": shapes,
        "imagePath": img_name,
        "imageData": image_data,
        "imageHeight": h,
        "imageWidth": w,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("json serializes");
    text.push('\n');
    atomic_write(&out.join(format!("{name}.json")), text.as_bytes())?;
    Ok(ImageStats {
        classes: classes.to_vec(),
        ignore_shapes,
        painted,
    })
}

/// A labelme shape and the geometry the painter uses for it.
#[derive(Debug, Clone)]
enum Geometry {
    /// labelme `linestrip` / `line`: a polyline drawn 10 px wide.
    Polyline { points: Vec<[f64; 2]>, strip: bool },
    /// labelme `circle`: centre and a point on the rim.
    Circle {
        center: [f64; 2],
        radius: f64,
        rim: [f64; 2],
    },
    /// labelme `polygon`.
    Polygon { points: Vec<[f64; 2]> },
}

fn shape_json(label: &str, g: &Geometry) -> Value {
    let (kind, points): (&str, Vec<[f64; 2]>) = match g {
        Geometry::Polyline { points, strip } => {
            (if *strip { "linestrip" } else { "line" }, points.clone())
        }
        Geometry::Circle { center, rim, .. } => ("circle", vec![*center, *rim]),
        Geometry::Polygon { points } => ("polygon", points.clone()),
    };
    // labelme writes full floats; four decimals keep the files readable and exact to re-read.
    let pts: Vec<Value> = points
        .iter()
        .map(|p| json!([round4(p[0]), round4(p[1])]))
        .collect();
    json!({
        "label": label,
        "points": pts,
        "group_id": null,
        "description": "",
        "shape_type": kind,
        "flags": {},
        "mask": null,
    })
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn defect_geometry(rng: &mut ChaCha8Rng, kind: Kind, w: u32, h: u32, s: f64) -> Geometry {
    let margin = 40.0 * s;
    let at = |rng: &mut ChaCha8Rng| {
        [
            rng.gen_range(margin..w as f64 - margin),
            rng.gen_range(margin..h as f64 - margin),
        ]
    };
    match kind {
        Kind::Scratch => {
            let start = at(rng);
            let len = rng.gen_range(80.0..260.0) * s;
            let mut angle = rng.gen_range(0.0..std::f64::consts::TAU);
            let strip = rng.gen::<f64>() < 0.6;
            let segments = if strip { rng.gen_range(2..5) } else { 1 };
            let mut points = vec![start];
            for _ in 0..segments {
                angle += rng.gen_range(-0.35..0.35);
                let last = *points.last().expect("non-empty");
                let step = len / segments as f64;
                points.push(step_inside(last, &mut angle, step, margin, w, h));
            }
            Geometry::Polyline { points, strip }
        }
        Kind::Dent => {
            let center = at(rng);
            let radius = rng.gen_range(10.0..32.0) * s;
            let a = rng.gen_range(0.0..std::f64::consts::TAU);
            let rim = [center[0] + radius * a.cos(), center[1] + radius * a.sin()];
            Geometry::Circle {
                center,
                radius,
                rim,
            }
        }
        Kind::Stain => blob(rng, w, h, 18.0 * s, 55.0 * s),
        Kind::Crack => {
            // A thin jagged band: a random walk, offset 1.5–3 px to each side.
            let start = at(rng);
            let n = rng.gen_range(6..12);
            let step = rng.gen_range(12.0..24.0) * s;
            let mut angle = rng.gen_range(0.0..std::f64::consts::TAU);
            let mut spine = vec![start];
            for _ in 0..n {
                angle += rng.gen_range(-0.6..0.6);
                let last = *spine.last().expect("non-empty");
                spine.push(step_inside(last, &mut angle, step, margin, w, h));
            }
            let half = rng.gen_range(1.5..3.0) * s.max(1.0);
            let mut left = Vec::new();
            let mut right = Vec::new();
            for k in 0..spine.len() {
                let a = spine[k.saturating_sub(1)];
                let b = spine[(k + 1).min(spine.len() - 1)];
                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                let l = (dx * dx + dy * dy).sqrt().max(1e-9);
                let (nx, ny) = (-dy / l * half, dx / l * half);
                left.push(clamp_pt([spine[k][0] + nx, spine[k][1] + ny], w, h));
                right.push(clamp_pt([spine[k][0] - nx, spine[k][1] - ny], w, h));
            }
            right.reverse();
            left.extend(right);
            Geometry::Polygon { points: left }
        }
    }
}

/// An irregular star-shaped polygon of 8–16 vertices.
fn blob(rng: &mut ChaCha8Rng, w: u32, h: u32, rmin: f64, rmax: f64) -> Geometry {
    let r = rng.gen_range(rmin..rmax);
    let c = [
        rng.gen_range(r + 2.0..(w as f64 - r - 2.0).max(r + 3.0)),
        rng.gen_range(r + 2.0..(h as f64 - r - 2.0).max(r + 3.0)),
    ];
    let n = rng.gen_range(8..17);
    let phase = rng.gen_range(0.0..std::f64::consts::TAU);
    let points = (0..n)
        .map(|k| {
            let a = phase + k as f64 / n as f64 * std::f64::consts::TAU;
            let rr = r * rng.gen_range(0.65..1.15);
            clamp_pt([c[0] + rr * a.cos(), c[1] + rr * a.sin()], w, h)
        })
        .collect();
    Geometry::Polygon { points }
}

/// One step of a random walk that turns back at the margin instead of running along the
/// image border (a defect hugging the border is not what parts look like).
fn step_inside(
    from: [f64; 2],
    angle: &mut f64,
    step: f64,
    margin: f64,
    w: u32,
    h: u32,
) -> [f64; 2] {
    let inside = |p: [f64; 2]| {
        p[0] >= margin && p[1] >= margin && p[0] <= w as f64 - margin && p[1] <= h as f64 - margin
    };
    let next = |a: f64| [from[0] + step * a.cos(), from[1] + step * a.sin()];
    for turn in [
        0.0,
        std::f64::consts::PI,
        std::f64::consts::FRAC_PI_2,
        -std::f64::consts::FRAC_PI_2,
    ] {
        if inside(next(*angle + turn)) {
            *angle += turn;
            return next(*angle);
        }
    }
    clamp_pt(next(*angle), w, h)
}

fn clamp_pt(p: [f64; 2], w: u32, h: u32) -> [f64; 2] {
    [
        p[0].clamp(1.0, w as f64 - 2.0),
        p[1].clamp(1.0, h as f64 - 2.0),
    ]
}

/// A part's surface: brushed metal (front, back) or grained plastic (side), a lighting
/// gradient and sensor noise.
fn surface(rng: &mut ChaCha8Rng, w: u32, h: u32, view: &str) -> image::RgbImage {
    let base = match view {
        "front" => rng.gen_range(120.0..150.0),
        "back" => rng.gen_range(95.0..125.0),
        _ => rng.gen_range(140.0..170.0),
    };
    let brushed = view != "side";
    let tint = [rng.gen_range(0.95..1.05), 1.0, rng.gen_range(0.95..1.05)];
    let (gx, gy) = (rng.gen_range(-25.0..25.0), rng.gen_range(-25.0..25.0));
    // Low-frequency blotches: a coarse random grid, bilinearly interpolated.
    let cell = 128.0;
    let gw = (w as f64 / cell) as usize + 2;
    let gh = (h as f64 / cell) as usize + 2;
    let grid: Vec<f64> = (0..gw * gh).map(|_| rng.gen_range(-8.0..8.0)).collect();
    // Brushing: a per-row streak offset, smoothed along y a little.
    let rows: Vec<f64> = (0..h).map(|_| rng.gen_range(-6.0..6.0)).collect();
    let seed: u64 = rng.gen();
    let mut img = image::RgbImage::new(w, h);
    let row_len = w as usize * 3;
    img.par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(y, row)| {
            let y = y as u32;
            // Noise per row from its own stream, so the rows can be filled in parallel.
            let mut nrng = ChaCha8Rng::seed_from_u64(seed ^ (y as u64).wrapping_mul(0x2545_F491));
            let fy = y as f64 / cell;
            let (y0, ty) = (fy as usize, fy.fract());
            let streak = if brushed {
                0.5 * rows[y as usize]
                    + 0.25 * rows[y.saturating_sub(1) as usize]
                    + 0.25 * rows[((y + 1).min(h - 1)) as usize]
            } else {
                0.0
            };
            let light_y = gy * (y as f64 / h as f64 - 0.5);
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let fx = x as f64 / cell;
                let (x0, tx) = (fx as usize, fx.fract());
                let g = |xx: usize, yy: usize| grid[yy * gw + xx];
                let blot = (g(x0, y0) * (1.0 - tx) + g(x0 + 1, y0) * tx) * (1.0 - ty)
                    + (g(x0, y0 + 1) * (1.0 - tx) + g(x0 + 1, y0 + 1) * tx) * ty;
                let noise: f64 = nrng.gen_range(-7.0..7.0);
                let v = base + gx * (x as f64 / w as f64 - 0.5) + light_y + blot + streak + noise;
                for (c, t) in tint.iter().enumerate() {
                    px[c] = (v * t).clamp(0.0, 255.0) as u8;
                }
            }
        });
    img
}

/// Signed distance from `p` to the shape as labelme fills it (negative inside).
fn signed_distance(g: &Geometry, p: [f64; 2]) -> f64 {
    match g {
        Geometry::Polyline { points, .. } => {
            let d = points
                .windows(2)
                .map(|s| seg_dist(p, s[0], s[1]))
                .fold(f64::MAX, f64::min);
            d - 5.0 // labelme draws lines 10 px wide
        }
        Geometry::Circle { center, radius, .. } => {
            ((p[0] - center[0]).powi(2) + (p[1] - center[1]).powi(2)).sqrt() - radius
        }
        Geometry::Polygon { points } => {
            let n = points.len();
            let mut d = f64::MAX;
            let mut inside = false;
            for k in 0..n {
                let (a, b) = (points[k], points[(k + 1) % n]);
                d = d.min(seg_dist(p, a, b));
                if (a[1] > p[1]) != (b[1] > p[1])
                    && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
                {
                    inside = !inside;
                }
            }
            if inside {
                -d
            } else {
                d
            }
        }
    }
}

fn seg_dist(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = dx * dx + dy * dy;
    let t = if l2 == 0.0 {
        0.0
    } else {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2).clamp(0.0, 1.0)
    };
    ((p[0] - a[0] - t * dx).powi(2) + (p[1] - a[1] - t * dy).powi(2)).sqrt()
}

fn bbox(g: &Geometry, pad: f64, w: u32, h: u32) -> (u32, u32, u32, u32) {
    let pts: Vec<[f64; 2]> = match g {
        Geometry::Polyline { points, .. } | Geometry::Polygon { points } => points.clone(),
        Geometry::Circle { center, radius, .. } => vec![
            [center[0] - radius, center[1] - radius],
            [center[0] + radius, center[1] + radius],
        ],
    };
    let pad = pad + 6.0;
    let x0 = pts.iter().map(|p| p[0]).fold(f64::MAX, f64::min) - pad;
    let y0 = pts.iter().map(|p| p[1]).fold(f64::MAX, f64::min) - pad;
    let x1 = pts.iter().map(|p| p[0]).fold(f64::MIN, f64::max) + pad;
    let y1 = pts.iter().map(|p| p[1]).fold(f64::MIN, f64::max) + pad;
    let c = |v: f64, m: u32| v.clamp(0.0, (m - 1) as f64) as u32;
    (c(x0, w), c(y0, h), c(x1, w), c(y1, h))
}

/// Paint a defect with soft edges; returns the number of pixels inside the shape.
fn paint(img: &mut image::RgbImage, g: &Geometry, kind: Kind, rng: &mut ChaCha8Rng) -> u64 {
    let (w, h) = img.dimensions();
    let soft = 1.5;
    // Visible but not trivial: defects differ from the surface by 25–60 grey levels.
    let (delta, colour): (f64, [f64; 3]) = match kind {
        Kind::Scratch => (rng.gen_range(35.0..60.0), [1.0, 1.0, 1.0]),
        Kind::Dent => (-rng.gen_range(30.0..50.0), [1.0, 1.0, 1.0]),
        Kind::Stain => (-rng.gen_range(25.0..45.0), [0.7, 1.0, 1.5]),
        Kind::Crack => (-rng.gen_range(45.0..70.0), [1.0, 1.0, 1.0]),
    };
    let (x0, y0, x1, y1) = bbox(g, soft * 3.0, w, h);
    let mut inside = 0;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let d = signed_distance(g, [x as f64, y as f64]);
            if d <= 0.0 {
                inside += 1;
            }
            let alpha = (0.5 - d / (2.0 * soft)).clamp(0.0, 1.0);
            if alpha == 0.0 {
                continue;
            }
            // A dent is shaded: darker on one side, like a real depression under side light.
            let shade = match (kind, g) {
                (Kind::Dent, Geometry::Circle { center, radius, .. }) => {
                    1.0 + 0.6 * ((x as f64 - center[0]) + (y as f64 - center[1])) / (2.0 * radius)
                }
                _ => 1.0,
            };
            let px = img.get_pixel_mut(x, y);
            for (v, tint) in px.0.iter_mut().zip(colour) {
                *v = (*v as f64 + alpha * delta * shade * tint).clamp(0.0, 255.0) as u8;
            }
        }
    }
    inside
}

/// Glare: a bright, soft, ambiguous patch (what annotators mark `__ignore__`).
fn paint_glare(img: &mut image::RgbImage, g: &Geometry) {
    let (w, h) = img.dimensions();
    let (x0, y0, x1, y1) = bbox(g, 8.0, w, h);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let d = signed_distance(g, [x as f64, y as f64]);
            let alpha = (0.5 - d / 16.0).clamp(0.0, 1.0) * 0.8;
            let px = img.get_pixel_mut(x, y);
            for v in px.0.iter_mut() {
                *v = (*v as f64 * (1.0 - alpha) + 250.0 * alpha) as u8;
            }
        }
    }
}

/// Parse `WxH` (e.g. `1024x1024`).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size {s:?} is not WxH, e.g. 1024x1024"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("size {s:?} is not WxH, e.g. 1024x1024"))
    };
    Ok((p(w)?, p(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_has_empty_images_and_every_class_twice() {
        let cfg = SynthConfig::default();
        let plan = plan_defects(&cfg);
        let empty = plan.iter().filter(|p| p.is_empty()).count();
        assert!((cfg.images as f64 * 0.1..=cfg.images as f64 * 0.2).contains(&(empty as f64)));
        for c in 0..cfg.classes.len() {
            assert!(
                plan.iter().filter(|p| p.contains(&c)).count() >= 2,
                "class {c}"
            );
        }
    }

    #[test]
    fn signed_distance_is_negative_inside() {
        let sq = Geometry::Polygon {
            points: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
        };
        assert!(signed_distance(&sq, [5.0, 5.0]) < 0.0);
        assert!((signed_distance(&sq, [15.0, 5.0]) - 5.0).abs() < 1e-9);
        let c = Geometry::Circle {
            center: [0.0, 0.0],
            radius: 3.0,
            rim: [3.0, 0.0],
        };
        assert!((signed_distance(&c, [0.0, 5.0]) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn parse_size_accepts_wxh_only() {
        assert_eq!(parse_size("2000x1500"), Ok((2000, 1500)));
        assert!(parse_size("2000").is_err());
        assert!(parse_size("ax3").is_err());
    }
}
