//! `torchscript:PATH` models: any network exported from Python with `torch.jit.script` or
//! `torch.jit.trace` (input N×3×H×W, output logits N×C×H×W — or a tuple/dict whose first
//! tensor or `"out"` entry is) trained by segkit's loop, losses and optimizers.
//!
//! The module's parameters are registered in the var store under their PyTorch names
//! (`encoder.0.weight`, not tch's `TrainableCModule` renaming to `encoder_0_weight`), so
//! checkpoints hold them as a `state_dict` would. Buffers (e.g. BatchNorm running
//! statistics) are not reachable through libtorch's C API as tch exposes it; so next to every
//! checkpoint the whole trained module is saved too (`best.pt` beside `best.safetensors`),
//! and `predict` loads that file, then the checkpoint's parameters into it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tch::{nn, CModule, IValue, Kind, Tensor};

use crate::config::ModelConfig;
use crate::error::{Result, TrainError};

/// A TorchScript model whose parameters live in a var store.
#[derive(Debug)]
pub struct ScriptNet {
    /// The module and the mode it is in (`Some(true)` = training), switched only on change.
    module: Mutex<(CModule, Option<bool>)>,
    /// Inputs are padded to a multiple of this.
    multiple: i64,
    /// The file it was read from.
    pub source: PathBuf,
}

fn first_tensor(v: IValue) -> Option<Tensor> {
    match v {
        IValue::Tensor(t) => Some(t),
        IValue::Tuple(items) | IValue::GenericList(items) => {
            items.into_iter().find_map(first_tensor)
        }
        IValue::TensorList(ts) => ts.into_iter().next(),
        IValue::GenericDict(entries) => {
            let mut fallback = None;
            for (k, v) in entries {
                if matches!(&k, IValue::String(s) if s == "out") {
                    return first_tensor(v);
                }
                if fallback.is_none() {
                    fallback = first_tensor(v);
                }
            }
            fallback
        }
        _ => None,
    }
}

impl ScriptNet {
    /// Load the TorchScript file `path` onto the var store's device and register its
    /// parameters under `p`; checks with a small input that it maps N×3×H×W to logits of
    /// `cfg.out_channels()` channels and the same size.
    pub fn load(path: &Path, p: &nn::Path, cfg: &ModelConfig) -> Result<ScriptNet> {
        let bad = |m: String| TrainError::checkpoint(path, m);
        let module = CModule::load_on_device(path, p.device()).map_err(|e| {
            bad(format!(
                "cannot load as a TorchScript model ({e}); export it in Python with \
                 torch.jit.script(model).save(path) or torch.jit.trace(model, example).save(path)"
            ))
        })?;
        let params = module
            .named_parameters()
            .map_err(|e| bad(format!("cannot list its parameters: {e}")))?;
        if params.is_empty() {
            return Err(bad("the model has no parameters to train".into()));
        }
        for (name, tensor) in params {
            let parts: Vec<&str> = name.split('.').collect();
            let (last, dirs) = parts.split_last().expect("split gives one part at least");
            let q = dirs.iter().fold(p.clone(), |q, d| q / *d);
            let trainable = tensor.requires_grad();
            let _ = q.add(last, tensor, trainable);
        }
        let net = ScriptNet {
            module: Mutex::new((module, None)),
            multiple: cfg.multiple(),
            source: path.to_path_buf(),
        };
        let side = 64.max(cfg.multiple());
        let x = Tensor::zeros([1, 3, side, side], (Kind::Float, p.device()));
        let y = tch::no_grad(|| net.try_forward(&x, false))
            .map_err(|e| bad(format!("forward of a 1×3×{side}×{side} input failed: {e}")))?;
        let want = vec![1, cfg.out_channels(), side, side];
        if y.size() != want {
            return Err(bad(format!(
                "a 1×3×{side}×{side} input gives logits of shape {:?}, but segkit needs {want:?} \
                 ({} channel(s) for this dataset's {:?} head, same height and width as the input)",
                y.size(),
                cfg.out_channels(),
                cfg.head
            )));
        }
        Ok(net)
    }

    fn try_forward(&self, x: &Tensor, train: bool) -> std::result::Result<Tensor, String> {
        let mut guard = self.module.lock().unwrap_or_else(|e| e.into_inner());
        let (module, mode) = &mut *guard;
        if *mode != Some(train) {
            let switched = if train {
                module.f_set_train()
            } else {
                module.f_set_eval()
            };
            switched.map_err(|e| e.to_string())?;
            *mode = Some(train);
        }
        let out = module
            .forward_is(&[IValue::Tensor(x.shallow_clone())])
            .map_err(|e| e.to_string())?;
        first_tensor(out).ok_or_else(|| "the model returned no tensor".to_string())
    }

    /// Logits for an input of any size: padded with zeros to a multiple of 2^`model.depth`
    /// and cropped back.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (h, w) = (x.size()[2], x.size()[3]);
        let m = self.multiple;
        let (ph, pw) = ((m - h % m) % m, (m - w % m) % m);
        let padded;
        let xin = if ph > 0 || pw > 0 {
            padded = x.constant_pad_nd([0, pw, 0, ph]);
            &padded
        } else {
            x
        };
        // Shape and device were checked at load time, so a failure here is a bug in the
        // model itself (e.g. a size it cannot take) and is reported as such.
        let out = self.try_forward(xin, train).unwrap_or_else(|e| {
            panic!(
                "TorchScript model {} failed on input {:?}: {e}",
                self.source.display(),
                xin.size()
            )
        });
        if ph > 0 || pw > 0 {
            out.narrow(2, 0, h).narrow(3, 0, w)
        } else {
            out
        }
    }

    /// Save the module with its current (trained) parameters and buffers to `path`,
    /// atomically (temporary file in the same folder, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = tempfile_in(dir, path)?;
        let guard = self.module.lock().unwrap_or_else(|e| e.into_inner());
        let saved = guard.0.save(&tmp);
        drop(guard);
        if let Err(e) = saved {
            let _ = std::fs::remove_file(&tmp);
            return Err(TrainError::checkpoint(path, format!("cannot save: {e}")));
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            TrainError::io(path, e)
        })
    }
}

/// A fresh temporary file name next to `path`.
fn tempfile_in(dir: &Path, path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    Ok(tmp)
}
