//! A grid of augmented samples with their masks overlaid, to see what a pipeline does
//! before training on it (`segkit augment DATASET --preview grid.png`).

use std::path::Path;

use image::{Rgb, RgbImage};
use segkit_labelme::dataset::{self, atomic_write_with, Dataset};

use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::sample::Sample;
use segkit_labelme::dataset::DatasetError;

/// What the preview shows.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// Number of tiles.
    pub samples: usize,
    /// Seed; tile `j` shows image `j mod n` with the stream `(seed, j / n, position)`,
    /// exactly what offline copy `j / n` of that image gets.
    pub seed: u64,
    /// Tile side in pixels.
    pub tile: u32,
    /// Split to draw images from; `None` = all images.
    pub split: Option<String>,
}

/// The image with mask classes blended in at half strength (background left as is;
/// ignore pixels in the VOC colour of 255, a pale beige).
pub fn overlay(s: &Sample, cmap: &[[u8; 3]; 256]) -> RgbImage {
    let mut img = s.rgb_image();
    for (px, &m) in img.pixels_mut().zip(&s.mask) {
        if m != 0 {
            let c = cmap[m as usize];
            for (v, &k) in px.0.iter_mut().zip(&c) {
                *v = ((*v as u16 + k as u16) / 2) as u8;
            }
        }
    }
    img
}

/// Render `opts.samples` augmented samples of `src` into one PNG at `out`; returns its size.
pub fn preview_grid(
    src: &Dataset,
    pipeline: &Pipeline,
    opts: &PreviewOptions,
    out: &Path,
) -> Result<(u32, u32)> {
    let stems: Vec<String> = match &opts.split {
        Some(name) => crate::offline::named_split(src, name)?,
        None => src.manifest.images.iter().map(|e| e.stem.clone()).collect(),
    };
    if stems.is_empty() || opts.samples == 0 {
        return Err(DatasetError::invalid(src.root.clone(), "no images to preview").into());
    }
    let entries = src.entries(&stems)?;
    let position: std::collections::BTreeMap<&str, usize> = src
        .manifest
        .images
        .iter()
        .enumerate()
        .map(|(i, e)| (e.stem.as_str(), i))
        .collect();
    let cols = (opts.samples as f64).sqrt().ceil() as u32;
    let rows = (opts.samples as u32).div_ceil(cols);
    let (t, gap) = (opts.tile.max(16), 4u32);
    let (gw, gh) = (cols * (t + gap) + gap, rows * (t + gap) + gap);
    let mut grid = RgbImage::from_pixel(gw, gh, Rgb([32, 32, 32]));
    let cmap = dataset::voc_colormap();
    let mut cache: Vec<Option<Sample>> = vec![None; entries.len()];
    for j in 0..opts.samples {
        let n = entries.len();
        let e = entries[j % n];
        if cache[j % n].is_none() {
            cache[j % n] = Some(crate::offline::load_sample(src, e)?);
        }
        let s = cache[j % n]
            .clone()
            .unwrap_or_else(|| Sample::blank(1, 1, 3));
        let a = pipeline.apply(
            s,
            opts.seed,
            (j / n) as u64,
            position[e.stem.as_str()] as u64,
        );
        let vis = overlay(&a, &cmap);
        // Fit the tile, keep the aspect ratio, nearest sampling (this is a look, not data).
        let f = (t as f64 / a.width.max(1) as f64).min(t as f64 / a.height.max(1) as f64);
        let (tw, th) = (
            ((a.width as f64 * f) as u32).max(1),
            ((a.height as f64 * f) as u32).max(1),
        );
        let (ox, oy) = (
            gap + (j as u32 % cols) * (t + gap) + (t - tw) / 2,
            gap + (j as u32 / cols) * (t + gap) + (t - th) / 2,
        );
        for y in 0..th {
            for x in 0..tw {
                let sx = ((x as f64 + 0.5) / f) as u32;
                let sy = ((y as f64 + 0.5) / f) as u32;
                let p = *vis.get_pixel(sx.min(a.width - 1), sy.min(a.height - 1));
                grid.put_pixel(ox + x, oy + y, p);
            }
        }
    }
    atomic_write_with(out, |w| {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(w)
            .write_image(grid.as_raw(), gw, gh, image::ExtendedColorType::Rgb8)
            .map_err(std::io::Error::other)
    })?;
    Ok((gw, gh))
}
