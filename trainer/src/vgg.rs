//! `unet-vgg16`: a UNet whose encoder is torchvision's VGG16 `features` (13 3×3 convolutions
//! with ReLU, no BatchNorm), with the decoder of the unet-pytorch repo. Parameter names are
//! what PyTorch's `state_dict()` gives that repo's `Unet(backbone="vgg")`
//! (`vgg.features.0.weight`, `up_concat4.conv1.weight`, `final.bias`, …), so its published
//! VOC weights load as they are, and torchvision's ImageNet VGG16 weights load into the
//! encoder once `features.` is read as `vgg.features.` (see `weights`).
//!
//! Skips are taken after `features[:4]`, `[4:9]`, `[9:16]`, `[16:23]` and `[23:30]`; the
//! fifth max-pool (`features[30]`) is never applied. Each decoder block upsamples the deeper
//! map ×2 bilinearly with `align_corners = true` (PyTorch's `UpsamplingBilinear2d`),
//! concatenates `[skip, upsampled]` and applies two 3×3 convolutions with ReLU.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::config::ModelConfig;

/// Output channels of VGG16's convolutions, `None` = 2×2 max-pool, in `features` order:
/// layer `i` of this list is `features[i]` once each convolution is followed by its ReLU.
const FEATURES: [Option<i64>; 18] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

/// Prefix of the encoder's parameters (frozen by `freeze_encoder_epochs`).
pub const ENCODER_PREFIX: &str = "vgg.";

#[derive(Debug)]
enum Layer {
    /// A 3×3 convolution, followed by ReLU.
    Conv(nn::Conv2D),
    /// 2×2 max-pool, stride 2.
    Pool,
}

#[derive(Debug)]
struct Up {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
}

impl Up {
    fn new(p: nn::Path, cin: i64, cout: i64) -> Up {
        let cfg = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Up {
            conv1: nn::conv2d(&p / "conv1", cin, cout, 3, cfg),
            conv2: nn::conv2d(&p / "conv2", cout, cout, 3, cfg),
        }
    }

    fn forward(&self, skip: &Tensor, deep: &Tensor) -> Tensor {
        let (h, w) = (deep.size()[2], deep.size()[3]);
        let up = deep.upsample_bilinear2d([2 * h, 2 * w], true, None, None);
        let mut x = Tensor::cat(&[skip, &up], 1).apply(&self.conv1);
        let _ = x.relu_();
        let mut x = x.apply(&self.conv2);
        let _ = x.relu_();
        x
    }
}

/// UNet with a VGG16 encoder; inputs of any size are padded to a multiple of 16 and cropped back.
#[derive(Debug)]
pub struct VggUNet {
    /// `features[0..30]`: convolutions (each with its ReLU) and pools, in order.
    features: Vec<Layer>,
    /// `up_concat1` … `up_concat4`.
    up: Vec<Up>,
    final_: nn::Conv2D,
}

impl VggUNet {
    /// Build the network's parameters under `p` (use `vs.root()`).
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> VggUNet {
        let f = p / "vgg" / "features";
        let conv_cfg = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let mut features = Vec::new();
        // PyTorch's index of each layer in `features`: a convolution and its ReLU take two.
        let mut index = 0;
        let mut cin = 3;
        for layer in FEATURES.iter().take(FEATURES.len() - 1) {
            match layer {
                Some(cout) => {
                    features.push(Layer::Conv(nn::conv2d(&f / index, cin, *cout, 3, conv_cfg)));
                    cin = *cout;
                    index += 2;
                }
                None => {
                    features.push(Layer::Pool);
                    index += 1;
                }
            }
        }
        let up = [(192, 64), (384, 128), (768, 256), (1024, 512)]
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout))| Up::new(p / format!("up_concat{}", i + 1), cin, cout))
            .collect();
        let final_ = nn::conv2d(p / "final", 64, cfg.out_channels(), 1, Default::default());
        VggUNet {
            features,
            up,
            final_,
        }
    }

    /// Logits N×K×H×W for an input N×3×H×W of any size.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        crate::model::padded_to_multiple(x, 16, |x| self.forward_padded(x))
    }

    fn forward_padded(&self, x: &Tensor) -> Tensor {
        // The map before each pool is a skip: features[:4], [4:9], [9:16], [16:23], [23:30].
        let mut skips: Vec<Tensor> = Vec::with_capacity(5);
        let mut cur = x.shallow_clone();
        for layer in &self.features {
            cur = match layer {
                Layer::Conv(c) => {
                    let mut y = c.forward(&cur);
                    let _ = y.relu_();
                    y
                }
                Layer::Pool => {
                    let down = cur.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
                    skips.push(cur);
                    down
                }
            };
        }
        for (up, skip) in self.up.iter().zip(&skips).rev() {
            cur = up.forward(skip, &cur);
        }
        cur.apply(&self.final_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Head, Norm, Normalize, Upsample};

    fn cfg() -> ModelConfig {
        ModelConfig {
            arch: "unet-vgg16".into(),
            normalize: Normalize::None,
            pretrained: None,
            base: 32,
            depth: 4,
            up: Upsample::Bilinear,
            norm: Norm::Group,
            head: Head::Softmax,
            num_classes: 3,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    #[test]
    fn names_and_shapes_follow_unet_pytorch() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _net = VggUNet::new(&vs.root(), &cfg());
        let vars = vs.variables();
        // 13 convolutions + 8 decoder convolutions + head, weight and bias each.
        assert_eq!(vars.len(), 2 * (13 + 8 + 1));
        for (name, shape) in [
            ("vgg.features.0.weight", vec![64, 3, 3, 3]),
            ("vgg.features.28.bias", vec![512]),
            ("vgg.features.17.weight", vec![512, 256, 3, 3]),
            ("up_concat4.conv1.weight", vec![512, 1024, 3, 3]),
            ("up_concat1.conv2.weight", vec![64, 64, 3, 3]),
            ("final.weight", vec![3, 64, 1, 1]),
        ] {
            assert_eq!(vars[name].size(), shape, "{name}");
        }
    }

    #[test]
    fn any_input_size_gives_logits_of_that_size() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = VggUNet::new(&vs.root(), &cfg());
        let y = tch::no_grad(|| {
            net.forward(&Tensor::zeros(
                [1, 3, 37, 50],
                (tch::Kind::Float, tch::Device::Cpu),
            ))
        });
        assert_eq!(y.size(), vec![1, 3, 37, 50]);
    }
}
