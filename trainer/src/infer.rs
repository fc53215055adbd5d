//! Full-resolution inference by sliding window: overlapping tiles, blended with a Gaussian
//! (centre-weighted, hides tile seams) or uniform weight map. Any image size works: images
//! smaller than a tile go through whole, padded by the model.

use tch::{Device, Kind, Tensor};

use crate::config::{Head, ModelConfig};
use crate::model::Net;

/// How to tile an image.
#[derive(Debug, Clone, Copy)]
pub struct Tiling {
    /// Tile side.
    pub tile: usize,
    /// Overlap share between neighbours.
    pub overlap: f64,
    /// Gaussian (true) or uniform blending.
    pub gaussian: bool,
    /// Tiles per forward pass.
    pub batch: usize,
    /// Resize the whole image to this square side instead of tiling (0 = tile).
    pub resize: usize,
}

/// Tile start offsets along an axis of `len` pixels, evenly spread, first at 0 and last
/// touching the end.
pub fn positions(len: usize, tile: usize, overlap: f64) -> Vec<usize> {
    if len <= tile {
        return vec![0];
    }
    let stride = ((tile as f64) * (1.0 - overlap)).max(1.0);
    let n = ((len - tile) as f64 / stride).ceil() as usize + 1;
    (0..n)
        .map(|i| ((i * (len - tile)) as f64 / (n - 1) as f64).round() as usize)
        .collect()
}

/// The normalized 1×3×H×W input tensor of an RGB image.
pub fn image_tensor(
    rgb: &[u8],
    width: usize,
    height: usize,
    cfg: &ModelConfig,
    device: Device,
) -> Tensor {
    let t = Tensor::from_slice(rgb)
        .view([height as i64, width as i64, 3])
        .permute([2, 0, 1])
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0;
    let mean = Tensor::from_slice(&cfg.mean)
        .view([3, 1, 1])
        .to_device(device);
    let std = Tensor::from_slice(&cfg.std)
        .view([3, 1, 1])
        .to_device(device);
    ((t - mean) / std).unsqueeze(0)
}

fn weight_map(th: usize, tw: usize, gaussian: bool, device: Device) -> Tensor {
    if !gaussian {
        return Tensor::ones([th as i64, tw as i64], (Kind::Float, device));
    }
    // σ = tile/8 as in nnU-Net; floored so border pixels still count a little.
    let axis = |n: usize| -> Vec<f32> {
        let sigma = n as f64 / 8.0;
        let c = (n as f64 - 1.0) / 2.0;
        (0..n)
            .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp() as f32)
            .collect()
    };
    let gy = Tensor::from_slice(&axis(th)).view([th as i64, 1]);
    let gx = Tensor::from_slice(&axis(tw)).view([1, tw as i64]);
    let w = gy * gx;
    let max = w.max();
    (w / max).clamp_min(1e-3).to_device(device)
}

/// Head probabilities K×H×W (softmax over classes, or the sigmoid's one channel) of a whole
/// image, on the CPU.
pub fn probabilities(
    net: &Net,
    cfg: &ModelConfig,
    rgb: &[u8],
    width: usize,
    height: usize,
    tiling: Tiling,
    device: Device,
) -> Tensor {
    tch::no_grad(|| {
        let x = image_tensor(rgb, width, height, cfg, device);
        let to_probs = |logits: Tensor| match cfg.head {
            Head::Softmax => logits.softmax(1, Kind::Float),
            Head::Sigmoid => logits.sigmoid(),
        };
        if tiling.resize > 0 {
            let n = tiling.resize as i64;
            let small = x.upsample_bilinear2d([n, n], false, None, None);
            let p = to_probs(net.forward_t(&small, false));
            let full = p.upsample_bilinear2d([height as i64, width as i64], false, None, None);
            return full.squeeze_dim(0).to_device(Device::Cpu);
        }
        if width <= tiling.tile && height <= tiling.tile {
            return to_probs(net.forward_t(&x, false))
                .squeeze_dim(0)
                .to_device(Device::Cpu);
        }
        let (th, tw) = (tiling.tile.min(height), tiling.tile.min(width));
        let ys = positions(height, th, tiling.overlap);
        let xs = positions(width, tw, tiling.overlap);
        let k = cfg.out_channels();
        let sum = Tensor::zeros([k, height as i64, width as i64], (Kind::Float, device));
        let wsum = Tensor::zeros([height as i64, width as i64], (Kind::Float, device));
        let w = weight_map(th, tw, tiling.gaussian, device);
        let coords: Vec<(usize, usize)> = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
            .collect();
        for chunk in coords.chunks(tiling.batch.max(1)) {
            let tiles: Vec<Tensor> = chunk
                .iter()
                .map(|&(y, xx)| {
                    x.narrow(2, y as i64, th as i64)
                        .narrow(3, xx as i64, tw as i64)
                })
                .collect();
            let p = to_probs(net.forward_t(&Tensor::cat(&tiles, 0), false));
            for (i, &(y, xx)) in chunk.iter().enumerate() {
                let mut region = sum
                    .narrow(1, y as i64, th as i64)
                    .narrow(2, xx as i64, tw as i64);
                let _ = region.g_add_(&(p.get(i as i64) * &w));
                let mut wr = wsum
                    .narrow(0, y as i64, th as i64)
                    .narrow(1, xx as i64, tw as i64);
                let _ = wr.g_add_(&w);
            }
        }
        (sum / wsum).to_device(Device::Cpu)
    })
}

/// Class indices (H×W, row-major) from head probabilities K×H×W.
pub fn argmax(probs: &Tensor, head: Head) -> Vec<u8> {
    let idx = match head {
        Head::Softmax => probs.argmax(0, false),
        Head::Sigmoid => probs.squeeze_dim(0).gt(0.5).to_kind(Kind::Int64),
    };
    let idx = idx.to_kind(Kind::Uint8).contiguous();
    Vec::<u8>::try_from(idx.flatten(0, -1)).expect("u8 tensor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_positions_cover_the_axis() {
        assert_eq!(positions(100, 128, 0.25), vec![0]);
        assert_eq!(positions(256, 128, 0.0), vec![0, 128]);
        let p = positions(1000, 256, 0.25);
        assert_eq!(*p.first().unwrap(), 0);
        assert_eq!(*p.last().unwrap(), 1000 - 256);
        assert!(p.windows(2).all(|w| w[1] - w[0] <= 192), "{p:?}");
    }

    #[test]
    fn gaussian_weights_peak_in_the_centre() {
        let w = weight_map(9, 9, true, Device::Cpu);
        assert_eq!(w.double_value(&[4, 4]), 1.0);
        assert!(w.double_value(&[0, 0]) < 0.01);
    }
}
