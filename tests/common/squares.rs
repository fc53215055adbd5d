//! A tiny dataset for the trainer's end-to-end tests: noisy 64×64 images with one bright
//! square each, written through the dataset contract (real PNGs, dataset.json, split lists).

use std::path::Path;

use segkit_labelme::dataset::{self, ImageEntry, Manifest, MaskEncoding};

/// `n` 64×64 noisy gray images, each with one bright square of class 1 (side `min_side` to
/// `min_side + 9`, size and place drawn from `seed`), written as a real dataset folder at
/// `root`; 3/4 train, 1/4 val.
pub fn write_squares(root: &Path, n: usize, seed: u64, min_side: usize) {
    let mut manifest = Manifest::new(&["_background_".to_string(), "defect".to_string()]);
    let mut state = seed;
    let mut rnd = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    std::fs::create_dir_all(root.join("JPEGImages")).unwrap();
    for i in 0..n {
        let stem = format!("img{i:02}");
        let (side, x0, y0) = (
            rnd(10) as usize + min_side,
            rnd(40) as usize + 2,
            rnd(40) as usize + 2,
        );
        let mut mask = vec![0u8; 64 * 64];
        let mut rgb = vec![0u8; 64 * 64 * 3];
        for y in 0..64 {
            for x in 0..64 {
                let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
                mask[y * 64 + x] = inside as u8;
                for c in 0..3 {
                    rgb[(y * 64 + x) * 3 + c] = if inside { 180 } else { 70 } + rnd(40) as u8;
                }
            }
        }
        let file = format!("JPEGImages/{stem}.png");
        image::RgbImage::from_raw(64, 64, rgb)
            .unwrap()
            .save(root.join(&file))
            .unwrap();
        dataset::write_index_png(
            &root.join(format!("SegmentationClass/{stem}.png")),
            64,
            64,
            &mask,
            MaskEncoding::Palette,
        )
        .unwrap();
        manifest.images.push(ImageEntry {
            stem,
            file,
            width: 64,
            height: 64,
            views: vec![],
            source: String::new(),
            class_pixels: dataset::count_values(&mask),
            instances: vec![],
            extra: Default::default(),
        });
    }
    dataset::write_manifest(root, &manifest).unwrap();
    let stems: Vec<String> = manifest.images.iter().map(|e| e.stem.clone()).collect();
    dataset::write_split(root, "train", &stems[..n * 3 / 4]).unwrap();
    dataset::write_split(root, "val", &stems[n * 3 / 4..]).unwrap();
}

/// Small, fast, single-threaded training settings for these datasets (no learning rate: each
/// test sets or tests its own).
pub const TINY: &[&str] = &[
    "--set",
    "threads=1",
    "--set",
    "device=cpu",
    "--set",
    "model.base=8",
    "--set",
    "model.depth=3",
    "--set",
    "data.batch_size=8",
    "--set",
    "data.samples_per_epoch=32",
    "--set",
    "val.tile=64",
];
