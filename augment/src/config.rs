//! Pipeline files: TOML or JSON with albumentations' transform names and parameters,
//! checked strictly (an unknown name or parameter is an error that says where it is).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::elastic::Elastic;
use crate::error::{AugmentError, Result};
use crate::pipeline::{Node, Op, PadPosition, Pipeline, Range, Translate};
use crate::warp::{Border, Fill, Interp, Resample};

/// Transform names this crate understands, in the order the crate docs list them.
pub const TRANSFORMS: &[&str] = &[
    "HorizontalFlip",
    "VerticalFlip",
    "RandomRotate90",
    "Transpose",
    "Rotate",
    "Affine",
    "RandomScale",
    "RandomCrop",
    "RandomResizedCrop",
    "PadIfNeeded",
    "CropNonEmptyMaskIfExists",
    "ElasticTransform",
    "RandomBrightnessContrast",
    "RandomGamma",
    "HueSaturationValue",
    "ColorJitter",
    "GaussNoise",
    "GaussianBlur",
    "CLAHE",
    "ToGray",
    "Compose",
    "OneOf",
    "SomeOf",
];

/// Keys of albumentations exports that describe nothing segkit does differently.
const IGNORED: &[&str] = &[
    "__version__",
    "bbox_params",
    "keypoint_params",
    "additional_targets",
    "is_check_shapes",
    "strict",
    "seed",
    "save_applied_params",
    "rotate_method",
    "keypoint_remapping_method",
    "approximate",
    "noise_scale_factor",
    "area_for_downscale",
    "always_apply",
    "mask_interpolation",
    "ignore_channels",
];

pub(crate) fn parse_toml(text: &str, origin: &str) -> Result<Pipeline> {
    let v: toml::Value = toml::from_str(text).map_err(|e| AugmentError::Config {
        origin: origin.into(),
        message: format!("invalid TOML: {e}"),
    })?;
    let v = serde_json::to_value(v).map_err(|e| AugmentError::Config {
        origin: origin.into(),
        message: e.to_string(),
    })?;
    parse_value(v, origin)
}

pub(crate) fn parse_json(text: &str, origin: &str) -> Result<Pipeline> {
    let v: Value = serde_json::from_str(text).map_err(|e| AugmentError::Config {
        origin: origin.into(),
        message: format!("invalid JSON: {e}"),
    })?;
    parse_value(v, origin)
}

fn parse_value(v: Value, origin: &str) -> Result<Pipeline> {
    let err = |m: String| AugmentError::Config {
        origin: origin.into(),
        message: m,
    };
    let Value::Object(mut top) = v else {
        return Err(err("a pipeline is a table with a `transforms` list".into()));
    };
    // An albumentations export wraps the Compose in {"__version__", "transform": {...}}.
    let mut root = match top.remove("transform") {
        Some(Value::Object(t)) => t,
        Some(_) => return Err(err("`transform` must be a table".into())),
        None => top,
    };
    if class_name(&mut root).is_none() {
        root.insert("name".into(), Value::String("Compose".into()));
    }
    if !root.contains_key("p") {
        root.insert("p".into(), Value::from(1.0));
    }
    let node = parse_node(Value::Object(root), "pipeline", origin)?;
    Ok(Pipeline { root: node })
}

/// Take the transform's name from `name`, `__class_fullname__` or `__class_name__`.
fn class_name(m: &mut Map<String, Value>) -> Option<String> {
    for key in ["name", "__class_fullname__", "__class_name__"] {
        if let Some(Value::String(s)) = m.get(key) {
            let s = s.rsplit('.').next().unwrap_or(s).to_string();
            m.remove(key);
            m.insert("name".into(), Value::String(s.clone()));
            return Some(s);
        }
    }
    None
}

struct Params<'a> {
    origin: &'a str,
    at: String,
    map: Map<String, Value>,
    used: BTreeSet<String>,
}

/// How albumentations widens a single number into a range.
#[derive(Clone, Copy)]
enum Single {
    /// `x` → `(-x, x)`.
    Symmetric,
    /// `x` → `(x, x)`.
    Fixed,
    /// `x` → `(1, x)`.
    FromOne,
    /// `x` → `(0, x)`.
    FromZero,
    /// `x` → `(max(0, 1 - x), 1 + x)` (ColorJitter factors).
    AroundOne,
}

impl<'a> Params<'a> {
    fn err(&self, m: impl std::fmt::Display) -> AugmentError {
        AugmentError::Config {
            origin: self.origin.into(),
            message: format!("{}: {m}", self.at),
        }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.used.insert(key.into());
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
        }
    }

    fn f64(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("`{key}` must be a number, got {v}"))),
        }
    }

    fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(self.err(format!("`{key}` must be true or false, got {v}"))),
        }
    }

    fn opt_usize(&mut self, key: &str) -> Result<Option<usize>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(f as usize)),
                _ => Err(self.err(format!("`{key}` must be a whole number >= 0, got {v}"))),
            },
        }
    }

    fn usize_req(&mut self, key: &str) -> Result<usize> {
        match self.opt_usize(key)? {
            Some(0) => Err(self.err(format!("`{key}` must be at least 1"))),
            Some(n) => Ok(n),
            None => Err(self.err(format!("`{key}` is required"))),
        }
    }

    fn range(&mut self, key: &str, default: Range, single: Single) -> Result<Range> {
        let Some(v) = self.take(key) else {
            return Ok(default);
        };
        self.range_value(key, &v, single)
    }

    fn range_value(&self, key: &str, v: &Value, single: Single) -> Result<Range> {
        if let Some(x) = v.as_f64() {
            return Ok(match single {
                Single::Symmetric => (-x.abs(), x.abs()),
                Single::Fixed => (x, x),
                Single::FromOne => (1.0, x),
                Single::FromZero => (0.0, x),
                Single::AroundOne => ((1.0 - x).max(0.0), 1.0 + x),
            });
        }
        match v
            .as_array()
            .map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>())
        {
            Some(a) if a.len() == 2 && a.iter().all(Option::is_some) => {
                let (lo, hi) = (a[0].unwrap_or(0.0), a[1].unwrap_or(0.0));
                if lo > hi {
                    return Err(self.err(format!(
                        "`{key}` range [{lo}, {hi}] has its low end above its high end"
                    )));
                }
                Ok((lo, hi))
            }
            _ => Err(self.err(format!(
                "`{key}` must be a number or a [low, high] pair, got {v}"
            ))),
        }
    }

    /// A range per axis: a number/pair for both, or `{x = .., y = ..}` (albumentations' dicts).
    fn xy_range(
        &mut self,
        key: &str,
        default: Range,
        single: Single,
    ) -> Result<Option<(Range, Range)>> {
        let Some(v) = self.take(key) else {
            return Ok(Some((default, default)));
        };
        if let Value::Object(m) = &v {
            let axis = |a: &str| -> Result<Range> {
                match m.get(a) {
                    Some(x) => self.range_value(&format!("{key}.{a}"), x, single),
                    None => Ok(default),
                }
            };
            for k in m.keys() {
                if k != "x" && k != "y" {
                    return Err(self.err(format!("`{key}` has unknown axis {k:?} (use x and y)")));
                }
            }
            return Ok(Some((axis("x")?, axis("y")?)));
        }
        let r = self.range_value(key, &v, single)?;
        Ok(Some((r, r)))
    }

    fn border(&mut self, default: Border) -> Result<Border> {
        let Some(v) = self.take("border_mode") else {
            return Ok(default);
        };
        let b = match (&v, v.as_i64()) {
            (_, Some(0)) => Border::Constant,
            (_, Some(1)) => Border::Replicate,
            (_, Some(2)) => Border::Reflect,
            (_, Some(3)) => Border::Wrap,
            (_, Some(4)) => Border::Reflect101,
            (Value::String(s), _) => match s.to_ascii_lowercase().trim_start_matches("cv2.").trim_start_matches("border_") {
                "constant" => Border::Constant,
                "replicate" => Border::Replicate,
                "reflect" => Border::Reflect,
                "wrap" => Border::Wrap,
                "reflect_101" | "reflect101" | "default" => Border::Reflect101,
                _ => return Err(self.err(format!("unknown border_mode {s:?} (constant, replicate, reflect, reflect_101, wrap or 0..4)"))),
            },
            _ => return Err(self.err(format!("unknown border_mode {v} (constant, replicate, reflect, reflect_101, wrap or 0..4)"))),
        };
        Ok(b)
    }

    fn interp(&mut self) -> Result<Interp> {
        let Some(v) = self.take("interpolation") else {
            return Ok(Interp::Linear);
        };
        match (&v, v.as_i64()) {
            (_, Some(0)) => Ok(Interp::Nearest),
            (_, Some(1)) => Ok(Interp::Linear),
            (Value::String(s), _) if s.eq_ignore_ascii_case("nearest") => Ok(Interp::Nearest),
            (Value::String(s), _) if s.eq_ignore_ascii_case("linear") => Ok(Interp::Linear),
            _ => Err(self.err(format!(
                "interpolation {v} is not supported: use 0 (nearest) or 1 (linear)"
            ))),
        }
    }

    fn fill(&mut self) -> Result<Fill> {
        let px = |p: &Self, v: &Value, key: &str| -> Result<u8> {
            match v.as_f64() {
                Some(f) if (0.0..=255.0).contains(&f) => Ok(f.round() as u8),
                _ => Err(p.err(format!("`{key}` must be 0..255, got {v}"))),
            }
        };
        let image = match self.take("fill") {
            None => [0; 3],
            Some(Value::Array(a)) if a.len() == 1 || a.len() == 3 => {
                let vals: Vec<u8> = a
                    .iter()
                    .map(|v| px(self, v, "fill"))
                    .collect::<Result<_>>()?;
                if vals.len() == 1 {
                    [vals[0]; 3]
                } else {
                    [vals[0], vals[1], vals[2]]
                }
            }
            Some(v) => [px(self, &v, "fill")?; 3],
        };
        let mask = match self.take("fill_mask") {
            None => segkit_labelme::dataset::IGNORE_INDEX,
            Some(Value::Array(a)) if a.len() == 1 => px(self, &a[0], "fill_mask")?,
            Some(v) => px(self, &v, "fill_mask")?,
        };
        Ok(Fill { image, mask })
    }

    fn resample(&mut self) -> Result<Resample> {
        Ok(Resample {
            interp: self.interp()?,
            border: self.border(Border::Constant)?,
            fill: self.fill()?,
        })
    }

    fn position(&mut self, key: &str) -> Result<PadPosition> {
        let Some(v) = self.take(key) else {
            return Ok(PadPosition::Center);
        };
        Ok(match v.as_str() {
            Some("center") => PadPosition::Center,
            Some("top_left") => PadPosition::TopLeft,
            Some("top_right") => PadPosition::TopRight,
            Some("bottom_left") => PadPosition::BottomLeft,
            Some("bottom_right") => PadPosition::BottomRight,
            Some("random") => PadPosition::Random,
            _ => return Err(self.err(format!("`{key}` {v} is not one of center, top_left, top_right, bottom_left, bottom_right, random"))),
        })
    }

    /// A parameter segkit accepts only at one value (albumentations features it lacks).
    fn only(&mut self, key: &str, allowed: Value, why: &str) -> Result<()> {
        match self.take(key) {
            Some(v) if v != allowed && !(v.is_number() && v.as_f64() == allowed.as_f64()) => {
                Err(self.err(format!("`{key}` = {v} is not supported ({why})")))
            }
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<()> {
        let unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.used.contains(*k) && !IGNORED.contains(&k.as_str()))
            .collect();
        if let Some(k) = unknown.first() {
            let mut known: Vec<&String> = self
                .used
                .iter()
                .filter(|k| *k != "name" && *k != "transforms")
                .collect();
            known.sort();
            let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            return Err(self.err(format!(
                "unknown parameter `{k}` (known: {})",
                known.join(", ")
            )));
        }
        Ok(())
    }
}

fn parse_node(v: Value, at: &str, origin: &str) -> Result<Node> {
    let Value::Object(mut map) = v else {
        return Err(AugmentError::Config {
            origin: origin.into(),
            message: format!("{at}: a transform is a table with a `name`"),
        });
    };
    let Some(name) = class_name(&mut map) else {
        return Err(AugmentError::Config {
            origin: origin.into(),
            message: format!(
                "{at}: transform has no `name` (one of: {})",
                TRANSFORMS.join(", ")
            ),
        });
    };
    let mut p = Params {
        origin,
        at: format!("{at} ({name})"),
        map,
        used: BTreeSet::new(),
    };
    p.used.insert("name".into());
    let default_p = match name.as_str() {
        "RandomCrop"
        | "RandomResizedCrop"
        | "PadIfNeeded"
        | "CropNonEmptyMaskIfExists"
        | "Compose"
        | "SomeOf" => 1.0,
        _ => 0.5,
    };
    let prob = p.f64("p", default_p)?;
    if !(0.0..=1.0).contains(&prob) {
        return Err(p.err(format!("`p` must be within 0..1, got {prob}")));
    }
    let children = |p: &mut Params| -> Result<Vec<Node>> {
        match p.take("transforms") {
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_node(v, &format!("{}.transforms[{i}]", p.at), origin))
                .collect(),
            None => Ok(Vec::new()),
            Some(v) => Err(p.err(format!("`transforms` must be a list, got {v}"))),
        }
    };
    let op = match name.as_str() {
        "HorizontalFlip" => Op::HorizontalFlip,
        "VerticalFlip" => Op::VerticalFlip,
        "RandomRotate90" => Op::RandomRotate90,
        "Transpose" => Op::Transpose,
        "Rotate" => {
            p.only(
                "crop_border",
                Value::Bool(false),
                "the output keeps the input size",
            )?;
            Op::Rotate {
                limit: p.range("limit", (-90.0, 90.0), Single::Symmetric)?,
                rs: p.resample()?,
            }
        }
        "Affine" => {
            p.only(
                "fit_output",
                Value::Bool(false),
                "the output keeps the input size",
            )?;
            p.only(
                "balanced_scale",
                Value::Bool(false),
                "scale is drawn uniformly",
            )?;
            let (scale_x, scale_y) = p
                .xy_range("scale", (1.0, 1.0), Single::Fixed)?
                .unwrap_or(((1.0, 1.0), (1.0, 1.0)));
            let tp = if p.map.get("translate_percent").is_some_and(|v| !v.is_null()) {
                p.xy_range("translate_percent", (0.0, 0.0), Single::Fixed)?
            } else {
                None
            };
            let tx = if p.map.get("translate_px").is_some_and(|v| !v.is_null()) {
                p.xy_range("translate_px", (0.0, 0.0), Single::Fixed)?
            } else {
                p.used.insert("translate_px".into());
                None
            };
            p.used.insert("translate_percent".into());
            let translate = match (tp, tx) {
                (Some(_), Some(_)) => {
                    return Err(p.err("give translate_percent or translate_px, not both"))
                }
                (Some((x, y)), None) => Translate::Percent { x, y },
                (None, Some((x, y))) => Translate::Px { x, y },
                (None, None) => Translate::Px {
                    x: (0.0, 0.0),
                    y: (0.0, 0.0),
                },
            };
            let (shear_x, shear_y) = p
                .xy_range("shear", (0.0, 0.0), Single::Fixed)?
                .unwrap_or(((0.0, 0.0), (0.0, 0.0)));
            Op::Affine {
                scale_x,
                scale_y,
                keep_ratio: p.bool("keep_ratio", false)?,
                translate,
                rotate: p.range("rotate", (0.0, 0.0), Single::Fixed)?,
                shear_x,
                shear_y,
                rs: p.resample()?,
            }
        }
        "RandomScale" => {
            let limit = p.range("scale_limit", (-0.1, 0.1), Single::Symmetric)?;
            if limit.0 <= -1.0 {
                return Err(p.err("`scale_limit` must stay above -1 (a scale of zero or less)"));
            }
            Op::RandomScale {
                limit,
                interp: p.interp()?,
            }
        }
        "RandomCrop" => {
            p.bool("pad_if_needed", true)?;
            Op::RandomCrop {
                height: p.usize_req("height")?,
                width: p.usize_req("width")?,
                position: p.position("pad_position")?,
                border: p.border(Border::Constant)?,
                fill: p.fill()?,
            }
        }
        "RandomResizedCrop" => {
            let (height, width) = match p.take("size") {
                Some(Value::Array(a))
                    if a.len() == 2 && a.iter().all(|v| v.as_u64().is_some_and(|n| n > 0)) =>
                {
                    (
                        a[0].as_u64().unwrap_or(1) as usize,
                        a[1].as_u64().unwrap_or(1) as usize,
                    )
                }
                Some(v) => return Err(p.err(format!("`size` must be [height, width], got {v}"))),
                None => (p.usize_req("height")?, p.usize_req("width")?),
            };
            let scale = p.range("scale", (0.08, 1.0), Single::FromZero)?;
            let ratio = p.range("ratio", (0.75, 4.0 / 3.0), Single::Fixed)?;
            if scale.0 <= 0.0 || ratio.0 <= 0.0 {
                return Err(p.err("`scale` and `ratio` must be positive"));
            }
            Op::RandomResizedCrop {
                height,
                width,
                scale,
                ratio,
                interp: p.interp()?,
            }
        }
        "PadIfNeeded" => {
            let mh = if p.map.contains_key("min_height") {
                p.opt_usize("min_height")?
            } else {
                Some(1024)
            };
            let mw = if p.map.contains_key("min_width") {
                p.opt_usize("min_width")?
            } else {
                Some(1024)
            };
            Op::PadIfNeeded {
                min_height: mh,
                min_width: mw,
                height_divisor: p.opt_usize("pad_height_divisor")?,
                width_divisor: p.opt_usize("pad_width_divisor")?,
                position: p.position("position")?,
                border: p.border(Border::Constant)?,
                fill: p.fill()?,
            }
        }
        "CropNonEmptyMaskIfExists" => {
            let ignore_values = match p.take("ignore_values") {
                None => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_u64()
                            .filter(|&n| n < 256)
                            .map(|n| n as u8)
                            .ok_or_else(|| p.err("`ignore_values` must be mask values 0..255"))
                    })
                    .collect::<Result<_>>()?,
                Some(v) => return Err(p.err(format!("`ignore_values` must be a list, got {v}"))),
            };
            let fg_prob = p.f64("fg_prob", 1.0)?;
            Op::CropNonEmptyMaskIfExists {
                height: p.usize_req("height")?,
                width: p.usize_req("width")?,
                ignore_values,
                fg_prob,
            }
        }
        "ElasticTransform" => {
            let alpha = p.f64("alpha", 1.0)? as f32;
            let sigma = p.f64("sigma", 50.0)? as f32;
            let same_dxdy = p.bool("same_dxdy", false)?;
            let uniform = match p.take("noise_distribution") {
                None => false,
                Some(v) if v == "gaussian" => false,
                Some(v) if v == "uniform" => true,
                Some(v) => {
                    return Err(p.err(format!(
                        "`noise_distribution` must be \"gaussian\" or \"uniform\", got {v}"
                    )))
                }
            };
            Op::ElasticTransform {
                e: Elastic {
                    alpha,
                    sigma,
                    same_dxdy,
                    uniform,
                },
                rs: p.resample()?,
            }
        }
        "RandomBrightnessContrast" => {
            p.only(
                "ensure_safe_range",
                Value::Bool(false),
                "values saturate at 0 and 255",
            )?;
            Op::RandomBrightnessContrast {
                brightness: p.range("brightness_limit", (-0.2, 0.2), Single::Symmetric)?,
                contrast: p.range("contrast_limit", (-0.2, 0.2), Single::Symmetric)?,
                by_max: p.bool("brightness_by_max", true)?,
            }
        }
        "RandomGamma" => Op::RandomGamma {
            limit: p.range("gamma_limit", (80.0, 120.0), Single::FromOne)?,
        },
        "HueSaturationValue" => Op::HueSaturationValue {
            hue: p.range("hue_shift_limit", (-20.0, 20.0), Single::Symmetric)?,
            sat: p.range("sat_shift_limit", (-30.0, 30.0), Single::Symmetric)?,
            val: p.range("val_shift_limit", (-20.0, 20.0), Single::Symmetric)?,
        },
        "ColorJitter" => Op::ColorJitter {
            brightness: p.range("brightness", (0.8, 1.2), Single::AroundOne)?,
            contrast: p.range("contrast", (0.8, 1.2), Single::AroundOne)?,
            saturation: p.range("saturation", (0.8, 1.2), Single::AroundOne)?,
            hue: p.range("hue", (-0.5, 0.5), Single::Symmetric)?,
        },
        "GaussNoise" => Op::GaussNoise {
            std: p.range("std_range", (0.2, 0.44), Single::Fixed)?,
            mean: p.range("mean_range", (0.0, 0.0), Single::Fixed)?,
            per_channel: p.bool("per_channel", true)?,
        },
        "GaussianBlur" => {
            let k = p.range("blur_limit", (0.0, 0.0), Single::FromZero)?;
            let sigma = p.range("sigma_limit", (0.5, 3.0), Single::FromZero)?;
            Op::GaussianBlur {
                ksize: (k.0.max(0.0) as usize, k.1.max(0.0) as usize),
                sigma,
            }
        }
        "CLAHE" => {
            let clip = p.range("clip_limit", (1.0, 4.0), Single::FromOne)?;
            let grid = match p.take("tile_grid_size") {
                None => (8, 8),
                Some(Value::Array(a))
                    if a.len() == 2 && a.iter().all(|v| v.as_u64().is_some_and(|n| n > 0)) =>
                {
                    (
                        a[0].as_u64().unwrap_or(8) as usize,
                        a[1].as_u64().unwrap_or(8) as usize,
                    )
                }
                Some(v) => {
                    return Err(p.err(format!(
                        "`tile_grid_size` must be [rows, cols] >= 1, got {v}"
                    )))
                }
            };
            // albumentations' tile_grid_size is OpenCV's (columns, rows).
            Op::Clahe { clip, grid }
        }
        "ToGray" => {
            p.only(
                "num_output_channels",
                Value::from(3),
                "the image keeps its channel count",
            )?;
            p.only(
                "method",
                Value::String("weighted_average".into()),
                "gray is the ITU-R 601 luma",
            )?;
            Op::ToGray
        }
        "Compose" => Op::Compose(children(&mut p)?),
        "OneOf" => Op::OneOf(children(&mut p)?),
        "SomeOf" => {
            let n = p.opt_usize("n")?.unwrap_or(1);
            let replace = p.bool("replace", false)?;
            Op::SomeOf {
                n,
                replace,
                nodes: children(&mut p)?,
            }
        }
        other => {
            return Err(p.err(format!(
                "unknown transform {other:?} (known: {})",
                TRANSFORMS.join(", ")
            )));
        }
    };
    p.finish()?;
    Ok(Node { op, p: prob })
}
