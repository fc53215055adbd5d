//! Checkpoints: safetensors files whose tensor names are the PyTorch `state_dict` names of
//! the same module, with the model config and class names in the safetensors metadata, so
//! `predict` needs nothing but the file (and Python reads it with `safetensors.torch`).
//! The resume state (`last.state`) is a safetensors file too: optimizer moments plus a JSON
//! record of the loop's counters.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{nn, Device, Kind, Tensor};

use crate::config::{Arch, ModelConfig, Norm};
use crate::error::{Result, TrainError};
use crate::model::Net;

/// `format` metadata value of a segkit checkpoint.
pub const FORMAT: &str = "segkit-checkpoint";

fn to_bytes(t: &Tensor) -> (Dtype, Vec<usize>, Vec<u8>) {
    let t = t.to_device(Device::Cpu).contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    match t.kind() {
        Kind::Int64 => {
            let v = Vec::<i64>::try_from(t.flatten(0, -1)).expect("i64 tensor");
            (
                Dtype::I64,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        }
        _ => {
            let v =
                Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).expect("f32 tensor");
            (
                Dtype::F32,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        }
    }
}

/// Write named tensors and metadata to `path` atomically.
pub fn save_tensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| {
            let (d, s, b) = to_bytes(t);
            (k.clone(), d, s, b)
        })
        .collect();
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(k, d, s, b)| {
            (
                k.clone(),
                TensorView::new(*d, s.clone(), b).expect("consistent view"),
            )
        })
        .collect();
    let bytes = safetensors::tensor::serialize(views, &Some(metadata))
        .map_err(|e| TrainError::checkpoint(path, format!("cannot serialize: {e:?}")))?;
    segkit_labelme::dataset::atomic_write(path, &bytes)?;
    Ok(())
}

/// Read all tensors and the metadata of a safetensors file.
pub fn load_tensors(path: &Path) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let bad = |e: safetensors::SafeTensorError| {
        TrainError::checkpoint(path, format!("not a safetensors file: {e:?}"))
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(&bytes).map_err(bad)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::I64 => Kind::Int64,
            Dtype::F64 => Kind::Double,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            d => {
                return Err(TrainError::checkpoint(
                    path,
                    format!("tensor {name}: unsupported dtype {d:?}"),
                ))
            }
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        out.insert(name, Tensor::from_data_size(view.data(), &shape, kind));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// The variables of a var store by name, sorted, plus PyTorch's `num_batches_tracked`
/// buffer for each BatchNorm so `load_state_dict(strict=True)` accepts the file.
pub fn state_dict(vs: &nn::VarStore, cfg: &ModelConfig, steps: i64) -> BTreeMap<String, Tensor> {
    let mut out: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    if cfg.norm == Norm::Batch {
        let bns: Vec<String> = out
            .keys()
            .filter_map(|k| k.strip_suffix(".running_mean").map(String::from))
            .collect();
        for p in bns {
            out.insert(format!("{p}.num_batches_tracked"), Tensor::from(steps));
        }
    }
    out
}

/// Save a model checkpoint with its config, class names and `extra` metadata.
pub fn save(
    path: &Path,
    vs: &nn::VarStore,
    cfg: &ModelConfig,
    steps: i64,
    extra: &[(&str, String)],
) -> Result<()> {
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("version".to_string(), "1".to_string());
    meta.insert(
        "model".to_string(),
        serde_json::to_string(cfg).expect("config serializes"),
    );
    meta.insert(
        "class_names".to_string(),
        serde_json::to_string(&cfg.class_names).expect("names serialize"),
    );
    for (k, v) in extra {
        meta.insert(k.to_string(), v.clone());
    }
    save_tensors(path, &state_dict(vs, cfg, steps), meta)
}

/// Save a checkpoint of `net` like [`save`]. A TorchScript model is also saved whole next
/// to it (`best.pt` beside `best.safetensors`: the module with its trained parameters and
/// buffers), and the metadata's `script` names that file; `script_source` is the file the
/// run started from.
pub fn save_model(
    path: &Path,
    vs: &nn::VarStore,
    net: &Net,
    cfg: &ModelConfig,
    steps: i64,
    extra: &[(&str, String)],
) -> Result<()> {
    let mut extra = extra.to_vec();
    if let Some(script) = net.script() {
        let sibling = path.with_extension("pt");
        script.save(&sibling)?;
        let name = sibling
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        extra.push(("script", name));
        extra.push((
            "script_source",
            script.source.to_string_lossy().into_owned(),
        ));
    }
    save(path, vs, cfg, steps, &extra)
}

/// The TorchScript file a checkpoint of a `torchscript:` model needs: the trained module
/// saved next to it (metadata `script`), else the file the run was trained from.
fn script_of(
    path: &Path,
    metadata: &HashMap<String, String>,
    original: &str,
) -> Result<std::path::PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let sibling = metadata.get("script").map(|s| dir.join(s));
    if let Some(s) = &sibling {
        if s.is_file() {
            return Ok(s.clone());
        }
    }
    let original = Path::new(original);
    if original.is_file() {
        return Ok(original.to_path_buf());
    }
    Err(TrainError::checkpoint(
        path,
        format!(
            "this checkpoint of a TorchScript model needs the model file: neither {} (saved with it) \
             nor {} (trained from) exists; copy the .pt file next to the checkpoint",
            sibling
                .map(|s| s.display().to_string())
                .unwrap_or_else(|| "a .pt file".into()),
            original.display()
        ),
    ))
}

/// Copy `tensors` into the variables of `vs`; every variable must be present with its shape.
pub fn copy_into(
    path: &Path,
    vs: &mut nn::VarStore,
    tensors: &BTreeMap<String, Tensor>,
) -> Result<()> {
    let vars = vs.variables();
    let mut problems = Vec::new();
    tch::no_grad(|| {
        for (name, var) in &vars {
            match tensors.get(name) {
                None => problems.push(format!("missing {name}")),
                Some(t) if t.size() != var.size() => problems.push(format!(
                    "{name}: shape {:?} in the file, {:?} in the model",
                    t.size(),
                    var.size()
                )),
                Some(t) => {
                    let mut v = var.shallow_clone();
                    v.copy_(&t.to_kind(var.kind()));
                }
            }
        }
    });
    let unexpected: Vec<&String> = tensors
        .keys()
        .filter(|k| !vars.contains_key(*k) && !k.ends_with(".num_batches_tracked"))
        .collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "unexpected {}",
            unexpected
                .iter()
                .take(5)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(TrainError::checkpoint(
            path,
            format!("does not fit the model: {}", problems.join("; ")),
        ));
    }
    Ok(())
}

/// A model loaded from a checkpoint.
#[derive(Debug)]
pub struct Loaded {
    /// The variables.
    pub vs: nn::VarStore,
    /// The network.
    pub net: Net,
    /// Its config (from the metadata).
    pub cfg: ModelConfig,
    /// All metadata.
    pub metadata: HashMap<String, String>,
}

/// Load a checkpoint written by [`save`] onto `device`.
pub fn load(path: &Path, device: Device) -> Result<Loaded> {
    let (tensors, metadata) = load_tensors(path)?;
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(TrainError::checkpoint(
            path,
            "no segkit model metadata (format/model): not a segkit checkpoint; a plain PyTorch state dict needs its model config",
        ));
    }
    let cfg: ModelConfig =
        serde_json::from_str(metadata.get("model").map(String::as_str).unwrap_or(""))
            .map_err(|e| TrainError::checkpoint(path, format!("model metadata: {e}")))?;
    let script = match cfg.arch_kind()? {
        Arch::TorchScript(original) => Some(script_of(path, &metadata, original)?),
        _ => None,
    };
    let mut vs = nn::VarStore::new(device);
    let net = Net::new(&vs.root(), &cfg, script.as_deref())?;
    net.prefer_channels_last(&vs);
    copy_into(path, &mut vs, &tensors)?;
    Ok(Loaded {
        vs,
        net,
        cfg,
        metadata,
    })
}
