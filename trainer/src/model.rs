//! The models: [`Net`] is what training, validation and prediction run — the UNet below,
//! `unet-vgg16` ([`crate::vgg`]) or a TorchScript model ([`crate::script`]), chosen by
//! `model.arch`. Parameter names mirror a PyTorch `state_dict` of the same module tree
//! (`encoder.0.conv1.weight`, `decoder.2.norm2.running_mean`, `head.bias`, …), so weights
//! move between segkit and Python by name (see `bench/train_torch.py` for the PyTorch twin).

use std::path::Path;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::config::{Arch, ModelConfig, Norm, Upsample};
use crate::error::Result;
use crate::script::ScriptNet;
use crate::vgg::VggUNet;

/// `t` (N×C×H×W) with the same shape and values laid out NHWC in memory, which libtorch
/// recognises as channels-last from the strides.
fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether channels-last is used (SEGKIT_CHANNELS_LAST=0 turns it off, to compare).
fn channels_last_on() -> bool {
    // read once: it is asked on every forward pass
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SEGKIT_CHANNELS_LAST").is_none_or(|v| v != "0"))
}

/// The input of a UNet/VGG forward pass: channels-last on the CPU, to match the parameters.
fn input_layout(x: &Tensor) -> Tensor {
    if x.dim() == 4 && x.device() == tch::Device::Cpu && channels_last_on() {
        channels_last(x)
    } else {
        x.shallow_clone()
    }
}

/// A segmentation network of any supported architecture.
#[derive(Debug)]
pub enum Net {
    /// The configurable UNet (`unet`).
    UNet(UNet),
    /// UNet with a VGG16 encoder (`unet-vgg16`).
    Vgg16(VggUNet),
    /// A TorchScript model (`torchscript:PATH`).
    Script(ScriptNet),
}

impl Net {
    /// Build the network of `cfg` with its parameters under `p` (use `vs.root()`). A
    /// TorchScript model is read from `script` when given (a trained copy saved next to a
    /// checkpoint), else from the path in `cfg.arch`.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, script: Option<&Path>) -> Result<Net> {
        Ok(match cfg.arch_kind()? {
            Arch::UNet => Net::UNet(UNet::new(p, cfg)),
            Arch::UNetVgg16 => Net::Vgg16(VggUNet::new(p, cfg)),
            Arch::TorchScript(path) => {
                Net::Script(ScriptNet::load(script.unwrap_or(Path::new(path)), p, cfg)?)
            }
        })
    }

    /// Logits N×K×H×W for an input N×3×H×W of any size (`train` selects training-mode
    /// normalization layers).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Net::UNet(n) => n.forward_t(&input_layout(x), train),
            Net::Vgg16(n) => n.forward(&input_layout(x)),
            Net::Script(n) => n.forward_t(x, train),
        }
    }

    /// On the CPU, store the 4-D parameters of `vs` channels-last (NHWC in memory, shapes and
    /// values unchanged), for the UNet and unet-vgg16. oneDNN's convolutions, GroupNorm and
    /// bilinear upsampling then run without converting layouts: a training step of the
    /// default UNet is ~9 % faster (the same holds in PyTorch 2.13). Call it before the
    /// optimizer is made; weights loaded later with `copy_` keep the layout, and checkpoints
    /// read tensors in logical order, so saved values are unchanged. Left alone on CUDA (unmeasured
    /// here) and for TorchScript models (their parameters belong to the module).
    pub fn prefer_channels_last(&self, vs: &nn::VarStore) {
        if matches!(self, Net::Script(_)) || vs.device() != tch::Device::Cpu || !channels_last_on()
        {
            return;
        }
        tch::no_grad(|| {
            for (_, mut v) in vs.variables() {
                if v.dim() == 4 {
                    let cl = channels_last(&v);
                    v.set_data(&cl);
                }
            }
        });
    }

    /// Name prefix of the encoder's parameters, if the architecture has a known encoder.
    pub fn encoder_prefix(&self) -> Option<&'static str> {
        match self {
            Net::UNet(_) => Some("encoder."),
            Net::Vgg16(_) => Some(crate::vgg::ENCODER_PREFIX),
            Net::Script(_) => None,
        }
    }

    /// The encoder's trainable parameters in `vs` (empty when the encoder is unknown).
    pub fn encoder_vars(&self, vs: &nn::VarStore) -> Vec<Tensor> {
        let Some(prefix) = self.encoder_prefix() else {
            return Vec::new();
        };
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(k, t)| k.starts_with(prefix) && t.is_floating_point())
            .filter(|(k, _)| !k.ends_with(".running_mean") && !k.ends_with(".running_var"))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.into_iter().map(|(_, t)| t).collect()
    }

    /// Freeze (`false`) or unfreeze the encoder; returns how many tensors changed state.
    /// Frozen tensors get no gradient, so the optimizer leaves them (and their moments) alone.
    pub fn set_encoder_trainable(&self, vs: &nn::VarStore, trainable: bool) -> usize {
        let mut changed = 0;
        for t in self.encoder_vars(vs) {
            if t.requires_grad() != trainable {
                let _ = t.set_requires_grad(trainable);
                changed += 1;
            }
        }
        changed
    }

    /// The TorchScript model, if this is one (its file is saved next to each checkpoint).
    pub fn script(&self) -> Option<&ScriptNet> {
        match self {
            Net::Script(s) => Some(s),
            _ => None,
        }
    }
}

/// A normalization layer, by kind.
#[derive(Debug)]
enum NormLayer {
    Batch(nn::BatchNorm),
    Group(nn::GroupNorm),
}

impl NormLayer {
    fn new(p: nn::Path, kind: Norm, ch: i64) -> Self {
        match kind {
            // tch initialises BatchNorm weights uniformly; PyTorch uses ones.
            Norm::Batch => NormLayer::Batch(nn::batch_norm2d(
                p,
                ch,
                nn::BatchNormConfig {
                    ws_init: nn::Init::Const(1.0),
                    ..Default::default()
                },
            )),
            Norm::Group => NormLayer::Group(nn::group_norm(p, 8, ch, Default::default())),
            // GroupNorm with one channel per group is InstanceNorm2d(affine=True): same maths,
            // same parameter names.
            Norm::Instance => NormLayer::Group(nn::group_norm(p, ch, ch, Default::default())),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            NormLayer::Batch(b) => b.forward_t(x, train),
            NormLayer::Group(g) => x.apply(g),
        }
    }
}

/// Two 3×3 convolutions, each followed by normalization and ReLU.
#[derive(Debug)]
struct DoubleConv {
    conv1: nn::Conv2D,
    norm1: NormLayer,
    conv2: nn::Conv2D,
    norm2: NormLayer,
}

impl DoubleConv {
    fn new(p: nn::Path, cin: i64, cout: i64, norm: Norm) -> Self {
        let cfg = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        DoubleConv {
            conv1: nn::conv2d(&p / "conv1", cin, cout, 3, cfg),
            norm1: NormLayer::new(&p / "norm1", norm, cout),
            conv2: nn::conv2d(&p / "conv2", cout, cout, 3, cfg),
            norm2: NormLayer::new(&p / "norm2", norm, cout),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.norm1.forward_t(&x.apply(&self.conv1), train).relu();
        self.norm2.forward_t(&x.apply(&self.conv2), train).relu()
    }
}

#[derive(Debug)]
struct UpBlock {
    up: Option<nn::ConvTranspose2D>,
    conv: DoubleConv,
}

/// UNet with configurable width, depth, upsampling and normalization.
#[derive(Debug)]
pub struct UNet {
    encoder: Vec<DoubleConv>,
    decoder: Vec<UpBlock>,
    head: nn::Conv2D,
    multiple: i64,
}

impl UNet {
    /// Build the network's parameters under `p` (use `vs.root()`).
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> UNet {
        let ch = |level: usize| cfg.base << level;
        let encoder: Vec<DoubleConv> = (0..=cfg.depth)
            .map(|i| {
                let cin = if i == 0 { 3 } else { ch(i - 1) };
                DoubleConv::new(p / "encoder" / i, cin, ch(i), cfg.norm)
            })
            .collect();
        let decoder = (0..cfg.depth)
            .map(|j| {
                let deep = ch(cfg.depth - j);
                let skip = ch(cfg.depth - j - 1);
                let q = p / "decoder" / j;
                let (up, cin) = match cfg.up {
                    Upsample::Bilinear => (None, deep + skip),
                    Upsample::Transposed => (
                        Some(nn::conv_transpose2d(
                            &q / "up",
                            deep,
                            skip,
                            2,
                            nn::ConvTransposeConfig {
                                stride: 2,
                                ..Default::default()
                            },
                        )),
                        2 * skip,
                    ),
                };
                UpBlock {
                    up,
                    conv: DoubleConv::new(q, cin, skip, cfg.norm),
                }
            })
            .collect();
        let head = nn::conv2d(p / "head", ch(0), cfg.out_channels(), 1, Default::default());
        UNet {
            encoder,
            decoder,
            head,
            multiple: cfg.multiple(),
        }
    }

    /// Logits N×K×H×W for an input N×3×H×W of any size: padded (zeros, i.e. the mean colour
    /// after normalization) to a multiple of 2^depth and cropped back.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        padded_to_multiple(x, self.multiple, |x| self.forward_padded(x, train))
    }

    fn forward_padded(&self, x: &Tensor, train: bool) -> Tensor {
        let mut skips = Vec::with_capacity(self.encoder.len());
        let mut cur = self.encoder[0].forward_t(x, train);
        for enc in &self.encoder[1..] {
            let down = cur.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            skips.push(cur);
            cur = enc.forward_t(&down, train);
        }
        for block in &self.decoder {
            let skip = skips.pop().expect("one skip per decoder block");
            let up = match &block.up {
                Some(t) => cur.apply(t),
                None => {
                    cur.upsample_bilinear2d([skip.size()[2], skip.size()[3]], false, None, None)
                }
            };
            cur = block.conv.forward_t(&Tensor::cat(&[&skip, &up], 1), train);
        }
        cur.apply(&self.head)
    }
}

/// `f` of `x` padded with zeros (the mean colour after normalization) at the bottom and right
/// to a multiple of `multiple` (what `multiple`-fold downsampling needs), cropped back to
/// `x`'s height and width.
pub(crate) fn padded_to_multiple(
    x: &Tensor,
    multiple: i64,
    f: impl FnOnce(&Tensor) -> Tensor,
) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let (ph, pw) = (
        (multiple - h % multiple) % multiple,
        (multiple - w % multiple) % multiple,
    );
    if ph == 0 && pw == 0 {
        return f(x);
    }
    f(&x.constant_pad_nd([0, pw, 0, ph]))
        .narrow(2, 0, h)
        .narrow(3, 0, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Head;

    fn cfg(up: Upsample, norm: Norm) -> ModelConfig {
        ModelConfig {
            arch: "unet".into(),
            normalize: crate::config::Normalize::Dataset,
            pretrained: None,
            base: 8,
            depth: 3,
            up,
            norm,
            head: Head::Softmax,
            num_classes: 3,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            mean: [0.5; 3],
            std: [0.25; 3],
        }
    }

    #[test]
    fn any_input_size_gives_logits_of_that_size() {
        for (up, norm) in [
            (Upsample::Bilinear, Norm::Group),
            (Upsample::Transposed, Norm::Batch),
            (Upsample::Bilinear, Norm::Instance),
        ] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let net = UNet::new(&vs.root(), &cfg(up, norm));
            let y = net.forward_t(
                &Tensor::zeros([2, 3, 42, 58], (tch::Kind::Float, tch::Device::Cpu)),
                true,
            );
            assert_eq!(y.size(), vec![2, 3, 42, 58], "{up:?} {norm:?}");
        }
    }

    /// Channels-last changes where values sit in memory, nothing else: the same logits (to
    /// float rounding of the other kernels), and a checkpoint with the same values.
    #[test]
    fn channels_last_keeps_logits_and_checkpoint_bytes() {
        for (up, norm) in [
            (Upsample::Bilinear, Norm::Group),
            (Upsample::Transposed, Norm::Batch),
        ] {
            tch::manual_seed(3);
            let c = cfg(up, norm);
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let net = Net::new(&vs.root(), &c, None).unwrap();
            let x = Tensor::rand([2, 3, 40, 36], (tch::Kind::Float, tch::Device::Cpu));
            let before = net.forward_t(&x, false);
            let dir = tempfile::tempdir().unwrap();
            let (a, b) = (
                dir.path().join("a.safetensors"),
                dir.path().join("b.safetensors"),
            );
            crate::checkpoint::save(&a, &vs, &c, 0, &[]).unwrap();
            net.prefer_channels_last(&vs);
            let w = vs.variables()["encoder.0.conv1.weight"].shallow_clone();
            assert_eq!(
                w.stride()[1],
                1,
                "{up:?} {norm:?}: weights not channels-last"
            );
            let after = net.forward_t(&x, false);
            let diff = (&before - &after).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "{up:?} {norm:?}: logits moved by {diff}");
            crate::checkpoint::save(&b, &vs, &c, 0, &[]).unwrap();
            // (the files' bytes may differ: safetensors writes metadata in hash-map order)
            let (ta, _) = crate::checkpoint::load_tensors(&a).unwrap();
            let (tb, _) = crate::checkpoint::load_tensors(&b).unwrap();
            assert_eq!(ta.len(), tb.len());
            for (k, t) in &ta {
                assert!(t.equal(&tb[k]), "{up:?} {norm:?}: {k} saved differently");
            }
        }
    }

    #[test]
    fn parameter_names_follow_pytorch_state_dict() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _net = UNet::new(&vs.root(), &cfg(Upsample::Transposed, Norm::Batch));
        let vars = vs.variables();
        for name in [
            "encoder.0.conv1.weight",
            "encoder.3.norm2.running_var",
            "decoder.0.up.weight",
            "decoder.2.conv2.weight",
            "head.bias",
        ] {
            assert!(
                vars.contains_key(name),
                "missing {name}; have {:?}",
                vars.keys().collect::<Vec<_>>()
            );
        }
        assert!(
            !vars.keys().any(|k| k.contains("__")),
            "no renamed duplicates"
        );
        // BatchNorm weights start at one, as in PyTorch.
        let w = &vars["encoder.0.norm1.weight"];
        assert_eq!(w.min().double_value(&[]), 1.0);
    }
}
