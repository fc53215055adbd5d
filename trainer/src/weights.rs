//! Weights from elsewhere: PyTorch state dicts (`.pth` as `torch.save(model.state_dict())`
//! writes them, or `.safetensors`) matched by name against a segkit model, with a report of
//! what matched, what is missing, what was unexpected and what had another shape. Used by
//! `model.pretrained` (partial loading at the start of a run) and `segkit import-weights`
//! (a state dict into a segkit checkpoint).
//!
//! Names are matched after two common renamings: the `module.` prefix that
//! `nn.DataParallel` adds is dropped, and torchvision's VGG16 (`features.0.weight`) is read
//! as the encoder of `unet-vgg16` (`vgg.features.0.weight`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::{nn, Tensor};

use crate::checkpoint;
use crate::config::{Arch, Head, ModelConfig, Norm, Normalize, Upsample};
use crate::error::{Result, TrainError};
use crate::model::Net;

/// Read a state dict: safetensors or a PyTorch `torch.save` zip, told apart by content.
pub fn read(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    read_with_metadata(path).map(|(t, _)| t)
}

/// [`read`], plus the safetensors metadata (empty for `.pth`).
pub fn read_with_metadata(
    path: &Path,
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
        let n = f.read(&mut head).map_err(|e| TrainError::io(path, e))?;
        if n < 4 {
            return Err(TrainError::checkpoint(path, "too short for a weights file"));
        }
    }
    if head == *b"PK\x03\x04" {
        crate::pth::read(path).map(|t| (t, HashMap::new()))
    } else if head[0] == 0x80 {
        // A pickle: PyTorch's legacy (pre-1.6) torch.save format.
        crate::pth::read_legacy(path).map(|t| (t, HashMap::new()))
    } else {
        checkpoint::load_tensors(path).map_err(|_| {
            TrainError::checkpoint(
                path,
                "neither a safetensors file nor a PyTorch torch.save archive",
            )
        })
    }
}

/// How the tensors of a file fit a model's variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Model variables found in the file with their shape (model names).
    pub matched: Vec<String>,
    /// Model variables the file lacks (they keep their initialization).
    pub missing: Vec<String>,
    /// File tensors the model has no variable for (file names).
    pub unexpected: Vec<String>,
    /// `(model name, shape in the file, shape in the model)` of same-named tensors that
    /// differ in shape (they keep their initialization).
    pub mismatched: Vec<(String, Vec<i64>, Vec<i64>)>,
    /// Name prefix of the model's output head (`final.` or `head.`), to explain a new head.
    pub head_prefix: String,
    /// Further remarks (e.g. a different input normalization).
    pub notes: Vec<String>,
}

impl Report {
    /// True when every shape mismatch is in the head (a new class count); false when the
    /// model's head is unknown (TorchScript).
    pub fn only_head_differs(&self) -> bool {
        !self.head_prefix.is_empty()
            && self
                .mismatched
                .iter()
                .all(|(n, _, _)| n.starts_with(&self.head_prefix))
    }

    /// The report as lines for people.
    pub fn lines(&self) -> Vec<String> {
        let list = |v: &[String]| {
            let mut s = v.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 6 {
                s.push_str(&format!(", … ({} more)", v.len() - 6));
            }
            s
        };
        let mut out = vec![format!(
            "{} matched, {} missing, {} unexpected, {} shape-mismatched",
            self.matched.len(),
            self.missing.len(),
            self.unexpected.len(),
            self.mismatched.len()
        )];
        if !self.missing.is_empty() {
            out.push(format!(
                "missing (keep their initialization): {}",
                list(&self.missing)
            ));
        }
        if !self.unexpected.is_empty() {
            out.push(format!("unexpected (ignored): {}", list(&self.unexpected)));
        }
        for (n, f, m) in self.mismatched.iter().take(6) {
            out.push(format!(
                "shape mismatch {n}: {f:?} in the file, {m:?} in the model (kept initialized)"
            ));
        }
        if !self.mismatched.is_empty() && self.only_head_differs() {
            out.push(format!(
                "only the head ({}*) differs: the file was trained for another class count, so a new head is initialized for this model's classes, as expected",
                self.head_prefix
            ));
        }
        out.extend(self.notes.iter().cloned());
        out
    }
}

/// The model name a file tensor name stands for, given the model's variable names.
fn model_name(file_name: &str, model: &HashMap<String, Tensor>) -> String {
    let n = file_name.strip_prefix("module.").unwrap_or(file_name);
    if !model.contains_key(n) && n.starts_with("features.") {
        let vgg = format!("vgg.{n}");
        if model.contains_key(&vgg) {
            return vgg;
        }
    }
    n.to_string()
}

/// Match `tensors` against the variables of `vs` by name and shape, and copy the ones that
/// fit into the model.
pub fn load_matching(vs: &nn::VarStore, net: &Net, tensors: &BTreeMap<String, Tensor>) -> Report {
    let vars = vs.variables();
    let mut report = Report {
        head_prefix: match net {
            Net::UNet(_) => "head.".into(),
            Net::Vgg16(_) => "final.".into(),
            Net::Script(_) => String::new(),
        },
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    tch::no_grad(|| {
        for (file_name, t) in tensors {
            let name = model_name(file_name, &vars);
            match vars.get(&name) {
                None => {
                    // PyTorch's BatchNorm step counter has no segkit twin; it carries no weights.
                    if !file_name.ends_with(".num_batches_tracked") {
                        report.unexpected.push(file_name.clone());
                    }
                }
                Some(var) if var.size() != t.size() => {
                    seen.insert(name.clone());
                    report.mismatched.push((name, t.size(), var.size()));
                }
                Some(var) => {
                    seen.insert(name.clone());
                    let mut v = var.shallow_clone();
                    v.copy_(&t.to_kind(var.kind()).to_device(var.device()));
                    report.matched.push(name);
                }
            }
        }
    });
    let mut missing: Vec<String> = vars
        .keys()
        .filter(|k| !seen.contains(*k))
        .cloned()
        .collect();
    missing.sort();
    report.missing = missing;
    report.matched.sort();
    report
}

/// Load `model.pretrained` (if set) into a freshly built model; errors when nothing fits.
pub fn load_pretrained(vs: &nn::VarStore, net: &Net, cfg: &ModelConfig) -> Result<Option<Report>> {
    let Some(p) = &cfg.pretrained else {
        return Ok(None);
    };
    let path = Path::new(p);
    let (tensors, metadata) = read_with_metadata(path)?;
    let mut report = load_matching(vs, net, &tensors);
    // Weights expect the inputs they were trained on: say so when this run feeds others.
    let theirs = metadata
        .get("model")
        .and_then(|m| serde_json::from_str::<ModelConfig>(m).ok());
    if let Some(theirs) = theirs {
        if theirs.mean != cfg.mean || theirs.std != cfg.std {
            report.notes.push(format!(
                "note: these weights saw inputs normalized with mean {:?} std {:?} (model.normalize = \"{}\"), this run uses mean {:?} std {:?}; set model.normalize to match unless that is intended",
                theirs.mean,
                theirs.std,
                format!("{:?}", theirs.normalize).to_lowercase(),
                cfg.mean,
                cfg.std
            ));
        }
    }
    if report.matched.is_empty() {
        return Err(TrainError::checkpoint(
            path,
            format!(
                "model.pretrained: none of its {} tensors fits {} (e.g. {}): is it a state dict of this architecture?",
                tensors.len(),
                cfg.arch,
                tensors.keys().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(Some(report))
}

/// The model an imported state dict is written as: `arch` with `classes` outputs, the
/// default layout (UNet base 32, depth 4, GroupNorm, bilinear), pixels in [0, 1] for
/// `unet-vgg16` (what unet-pytorch feeds its VGG) and ImageNet statistics otherwise.
pub fn import_config(
    arch: &str,
    classes: usize,
    class_names: Option<Vec<String>>,
) -> Result<ModelConfig> {
    let names = match class_names {
        Some(n) => n,
        None => std::iter::once("_background_".to_string())
            .chain((1..classes).map(|i| format!("class{i}")))
            .collect(),
    };
    if classes < 2 || names.len() != classes {
        return Err(TrainError::Config(format!(
            "--classes {classes}: need at least 2 (background and one class), and one name per class (got {})",
            names.len()
        )));
    }
    let normalize = if arch == "unet-vgg16" {
        Normalize::None
    } else {
        Normalize::Imagenet
    };
    let (mean, std) = normalize.fixed().expect("fixed normalization");
    let cfg = ModelConfig {
        arch: arch.to_string(),
        normalize,
        pretrained: None,
        base: 32,
        depth: 4,
        up: Upsample::Bilinear,
        norm: Norm::Group,
        head: Head::Softmax,
        num_classes: classes,
        class_names: names,
        mean,
        std,
    };
    match cfg.arch_kind()? {
        Arch::UNet | Arch::UNetVgg16 => Ok(cfg),
        Arch::TorchScript(_) => Err(TrainError::Config(
            "import-weights: a torchscript model carries its own weights; use --arch unet-vgg16 or unet".into(),
        )),
    }
}

/// Write the state dict `input` (`.pth` or `.safetensors`) as a segkit checkpoint `output`
/// of the model `cfg`: tensors that fit are copied, the rest are freshly initialized
/// (seed 0). Errors when nothing fits.
pub fn import(input: &Path, output: &Path, cfg: &ModelConfig) -> Result<Report> {
    let tensors = read(input)?;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = Net::new(&vs.root(), cfg, None)?;
    let report = load_matching(&vs, &net, &tensors);
    if report.matched.is_empty() {
        return Err(TrainError::checkpoint(
            input,
            format!(
                "none of its {} tensors fits {} (e.g. {}): is it a state dict of this architecture?",
                tensors.len(),
                cfg.arch,
                tensors.keys().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let source = std::fs::canonicalize(input)
        .unwrap_or_else(|_| input.to_path_buf())
        .to_string_lossy()
        .into_owned();
    checkpoint::save(
        output,
        &vs,
        cfg,
        0,
        &[
            ("imported_from", source),
            ("import_report", report.lines().join("\n")),
        ],
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F32: (tch::Kind, tch::Device) = (tch::Kind::Float, tch::Device::Cpu);

    /// A DataParallel-saved state dict of a 3-class UNet loaded into a 2-class one: names
    /// lose `module.`, the head is reported as a new head, strays as unexpected, and what
    /// matched is copied while the rest keeps its initialization.
    #[test]
    fn matching_report_and_partial_copy() {
        let mut cfg = import_config("unet", 2, None).unwrap();
        cfg.base = 8;
        cfg.depth = 2;
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = Net::new(&vs.root(), &cfg, None).unwrap();
        let vars = vs.variables();
        let before_head = vars["head.weight"].copy();
        let mut file = BTreeMap::new();
        for (name, t) in &vars {
            if name != "decoder.0.conv2.weight" {
                file.insert(format!("module.{name}"), t.ones_like() * 0.5);
            }
        }
        file.insert("module.head.weight".into(), Tensor::ones([3, 8, 1, 1], F32));
        file.insert("module.head.bias".into(), Tensor::ones([3], F32));
        file.insert("module.aux.weight".into(), Tensor::ones([1], F32));
        file.insert(
            "module.encoder.0.norm1.num_batches_tracked".into(),
            Tensor::from(3i64),
        );
        let r = load_matching(&vs, &net, &file);
        assert_eq!(r.matched.len(), vars.len() - 3);
        assert_eq!(r.missing, vec!["decoder.0.conv2.weight".to_string()]);
        assert_eq!(r.unexpected, vec!["module.aux.weight".to_string()]);
        assert_eq!(r.mismatched.len(), 2);
        assert!(r.only_head_differs());
        let text = r.lines().join("\n");
        assert!(text.starts_with(&format!(
            "{} matched, 1 missing, 1 unexpected, 2 shape-mismatched",
            vars.len() - 3
        )));
        assert!(text.contains("a new head is initialized"), "{text}");
        assert_eq!(
            vars["encoder.0.conv1.weight"]
                .mean(tch::Kind::Float)
                .double_value(&[]),
            0.5
        );
        assert_eq!(
            vars["head.weight"], before_head,
            "the mismatched head kept its init"
        );
    }
}
