//! Using a checkpoint: `evaluate` a dataset split (metrics + confusion matrix) and `predict`
//! masks for image files or folders in the formats people look at (class index, binary,
//! colour, overlay) plus optional probability arrays (`.npy`, float32 K×H×W).

use std::path::{Path, PathBuf};

use segkit_labelme::dataset::{self, Dataset, MaskEncoding};
use serde_json::Value;
use tch::Device;

use crate::checkpoint::{self, Loaded};
use crate::data;
use crate::error::{Result, TrainError};
use crate::infer::{self, Tiling};
use crate::metrics::{Accumulator, Summary};
use crate::train::pixel_nll;

/// The tiling stored in a checkpoint (what validation used), or defaults.
pub fn tiling_of(loaded: &Loaded) -> Tiling {
    let v: Value = loaded
        .metadata
        .get("tiling")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let m = loaded.cfg.multiple() as usize;
    Tiling {
        tile: v["tile"].as_u64().map(|t| t as usize).unwrap_or(256.max(m)),
        overlap: v["overlap"].as_f64().unwrap_or(0.25),
        gaussian: v["blend"].as_str().unwrap_or("gaussian") == "gaussian",
        batch: v["batch"].as_u64().unwrap_or(2) as usize,
        resize: v["resize"].as_u64().unwrap_or(0) as usize,
    }
}

/// Metrics of a checkpoint on a dataset split.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// The split's images.
    pub images: usize,
    /// Pixel NLL of the predictions.
    pub val_loss: Option<f64>,
    /// The metrics.
    pub summary: Summary,
    /// Confusion matrix, rows = truth.
    pub matrix: Vec<Vec<u64>>,
    /// Class names.
    pub classes: Vec<String>,
}

impl EvalReport {
    /// As JSON: `{"images", "val_loss", <metrics…>, "confusion": {"classes", "matrix"}}`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({"images": self.images});
        let m = v.as_object_mut().expect("object");
        if let Some(l) = self.val_loss {
            m.insert("val_loss".into(), l.into());
        }
        if let Value::Object(s) = serde_json::to_value(&self.summary).expect("serializes") {
            m.extend(s);
        }
        m.insert(
            "confusion".into(),
            serde_json::json!({"classes": self.classes, "matrix": self.matrix}),
        );
        v
    }
}

/// Evaluate `ckpt` on split `split` of `dataset`.
pub fn evaluate(
    ckpt: &Path,
    dataset_dir: &Path,
    split: &str,
    device: Device,
) -> Result<EvalReport> {
    let loaded = checkpoint::load(ckpt, device)?;
    let ds = Dataset::open(dataset_dir)?;
    let names = ds.manifest.class_names();
    if names.len() != loaded.cfg.num_classes {
        return Err(TrainError::Config(format!(
            "{} has {} classes ({}) but the checkpoint was trained on {} ({})",
            dataset_dir.display(),
            names.len(),
            names.join(", "),
            loaded.cfg.num_classes,
            loaded.cfg.class_names.join(", ")
        )));
    }
    let stems = ds.split(split)?.ok_or_else(|| {
        TrainError::Config(format!(
            "{}: no split {split:?} (ImageSets/Segmentation/{split}.txt)",
            dataset_dir.display()
        ))
    })?;
    let samples = data::load(&ds, &stems)?;
    let refs: Vec<&data::Sample> = samples.iter().collect();
    data::check_labels(&ds.root, &refs, &names)?;
    let tiling = tiling_of(&loaded);
    let mut acc = Accumulator::new(loaded.cfg.num_classes);
    let mut nll = (0.0, 0.0);
    for s in &samples {
        let probs = infer::probabilities(
            &loaded.net,
            &loaded.cfg,
            &s.rgb,
            s.width,
            s.height,
            tiling,
            device,
        );
        let pred = infer::argmax(&probs, loaded.cfg.head);
        let (l, n) = pixel_nll(&probs, &s.mask, loaded.cfg.head);
        nll.0 += l;
        nll.1 += n;
        acc.add(&s.mask, &pred, s.width);
    }
    Ok(EvalReport {
        images: samples.len(),
        val_loss: (nll.1 > 0.0).then(|| nll.0 / nll.1),
        summary: acc.summary(),
        matrix: acc.matrix.clone(),
        classes: loaded.cfg.class_names.clone(),
    })
}

/// Output format of `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// P-mode PNG of class indices (VOC palette).
    Index,
    /// Black/white PNG, foreground (any class but 0) white.
    Binary,
    /// RGB PNG in the palette colours.
    Color,
    /// The image blended with the class colours.
    Overlay,
}

/// What `predict` should write.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Mask format.
    pub format: Format,
    /// Overlay opacity of the class colours.
    pub alpha: f32,
    /// Also write `<stem>.npy` probabilities.
    pub save_probs: bool,
}

/// One input's outcome.
#[derive(Debug)]
pub struct Predicted {
    /// The input image.
    pub input: PathBuf,
    /// The mask written, or why not.
    pub result: Result<PathBuf>,
}

const IMAGE_EXTS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// The images named by `inputs`: files as given, folders walked (recursively, sorted), with
/// the relative path each output should get.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| TrainError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, base, out)?;
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
            {
                let rel = p.strip_prefix(base).unwrap_or(&p).with_extension("png");
                out.push((p.clone(), rel));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            walk(i, i, &mut out)?;
        } else if i.exists() {
            let name = i
                .file_stem()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("image"));
            out.push((i.clone(), name.with_extension("png")));
        } else {
            return Err(TrainError::Input {
                path: i.clone(),
                message: "no such file or folder".into(),
            });
        }
    }
    Ok(out)
}

/// Predict every input with a loaded model; one failure does not stop the others.
/// `on_done` is called after each image.
pub fn predict(
    loaded: &Loaded,
    inputs: &[(PathBuf, PathBuf)],
    opts: &PredictOptions,
    device: Device,
    on_done: &mut dyn FnMut(&Predicted),
) -> Vec<Predicted> {
    let tiling = tiling_of(loaded);
    let mut results = Vec::new();
    for (input, rel) in inputs {
        let result = predict_one(loaded, input, &opts.out.join(rel), opts, tiling, device);
        let p = Predicted {
            input: input.clone(),
            result,
        };
        on_done(&p);
        results.push(p);
    }
    results
}

fn predict_one(
    loaded: &Loaded,
    input: &Path,
    out: &Path,
    opts: &PredictOptions,
    tiling: Tiling,
    device: Device,
) -> Result<PathBuf> {
    let img = dataset::read_rgb(input)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let probs = infer::probabilities(&loaded.net, &loaded.cfg, img.as_raw(), w, h, tiling, device);
    let pred = infer::argmax(&probs, loaded.cfg.head);
    let cmap = dataset::voc_colormap();
    match opts.format {
        Format::Index => {
            dataset::write_index_png(out, w as u32, h as u32, &pred, MaskEncoding::Palette)?
        }
        Format::Binary => {
            let data: Vec<u8> = pred.iter().map(|&c| if c == 0 { 0 } else { 255 }).collect();
            dataset::write_index_png(out, w as u32, h as u32, &data, MaskEncoding::Gray)?
        }
        Format::Color | Format::Overlay => {
            let mut rgb = img.into_raw();
            for (i, &c) in pred.iter().enumerate() {
                let col = cmap[c as usize];
                for k in 0..3 {
                    let px = &mut rgb[3 * i + k];
                    *px = match opts.format {
                        Format::Color => col[k],
                        _ if c == 0 => *px,
                        _ => ((1.0 - opts.alpha) * *px as f32 + opts.alpha * col[k] as f32).round()
                            as u8,
                    };
                }
            }
            write_rgb_png(out, w as u32, h as u32, &rgb)?
        }
    }
    if opts.save_probs {
        write_npy(&out.with_extension("npy"), &probs)?;
    }
    Ok(out.to_path_buf())
}

fn write_rgb_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    dataset::atomic_write_with(path, |wr| {
        let mut enc = png::Encoder::new(wr, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })?;
    Ok(())
}

/// Write a float32 tensor as a NumPy `.npy` file (version 1.0, C order, little endian).
pub fn write_npy(path: &Path, t: &tch::Tensor) -> Result<()> {
    let shape: Vec<String> = t.size().iter().map(|d| d.to_string()).collect();
    let shape = if shape.len() == 1 {
        format!("({},)", shape[0])
    } else {
        format!("({})", shape.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let values = Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).contiguous().flatten(0, -1))
        .expect("f32 tensor");
    dataset::atomic_write_with(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00")?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for v in values {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })?;
    Ok(())
}
