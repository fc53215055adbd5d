//! Throughput of segkit pipelines on one image, for `bench/augment.sh`.
//!
//! Usage: `bench IMAGE MASK ITERS PIPELINE.toml...`; prints per pipeline (name = file stem)
//! `name single parallel` in images/s, both through `Pipeline::apply_ref` (the input is
//! read, a new output made: what albumentations' `transform(image=, mask=)` does), the
//! second over all cores with rayon. (Owned inputs cloned before the clock would be cold
//! in cache, unlike the one hot input albumentations is timed on.)
//!
//! Needs any RGB image and an 8-bit mask of the same size.

use std::time::Instant;

use rayon::prelude::*;
use segkit_augment::{Pipeline, Sample};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: bench IMAGE MASK ITERS PIPELINE.toml...".into());
    }
    let image = image::open(&args[1])?.to_rgb8();
    let mask = segkit_labelme::dataset::read_index_png(std::path::Path::new(&args[2]))?;
    let sample = Sample::from_rgb(image, mask.data)?;
    let iters: usize = args[3].parse()?;
    for file in &args[4..] {
        let name = std::path::Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?");
        let pipeline = Pipeline::from_file(file)?;
        // Warm-up (tables, allocator, the per-thread buffer pool).
        for i in 0..iters.div_ceil(10) {
            std::hint::black_box(pipeline.apply(sample.clone(), 1, 0, i as u64));
        }
        let t = Instant::now();
        for i in 0..iters {
            std::hint::black_box(pipeline.apply_ref(&sample, 0, 0, i as u64));
        }
        let borrowed = iters as f64 / t.elapsed().as_secs_f64();
        let n = iters * rayon::current_num_threads();
        let t = Instant::now();
        (0..n).into_par_iter().for_each(|i| {
            std::hint::black_box(pipeline.apply_ref(&sample, 0, 0, i as u64));
        });
        let par = n as f64 / t.elapsed().as_secs_f64();
        println!("{name} {borrowed:.1} {par:.1}");
    }
    Ok(())
}
