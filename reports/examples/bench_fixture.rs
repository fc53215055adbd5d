//! Writes a benchmark-sized dataset and run folder: N val images of W×H (JPEG photos, P-mode
//! masks with a few defects each), a run with E epochs of metrics, predictions and a
//! confusion matrix — what `bench/report.sh` times `segkit report` and `compare` on.
//!
//! Usage: `bench_fixture OUT_DIR [N=30] [W=1024] [H=768] [EPOCHS=50]`

use std::fs;
use std::path::Path;

use segkit_labelme::dataset::{
    count_values, write_index_png, write_manifest, write_split, ImageEntry, Instance, Manifest,
    MaskEncoding,
};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as u32
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let out = Path::new(
        a.first()
            .ok_or("usage: bench_fixture OUT_DIR [N] [W] [H] [EPOCHS]")?,
    );
    let arg = |i: usize, d: u32| a.get(i).map_or(Ok(d), |s| s.parse::<u32>());
    let (n, w, h, epochs) = (
        arg(1, 30)? as usize,
        arg(2, 1024)?,
        arg(3, 768)?,
        arg(4, 50)?,
    );
    let ds = out.join("ds");
    let names: Vec<String> = ["_background_", "scratch", "dent", "stain"]
        .map(String::from)
        .to_vec();
    let mut m = Manifest::new(&names);
    let mut rng = Lcg(7);
    let runs = [out.join("runs/a"), out.join("runs/b")];
    for r in &runs {
        fs::create_dir_all(r.join("predictions"))?;
    }
    let mut confusion = vec![vec![0u64; 4]; 4];
    for i in 0..n {
        let stem = format!("photo_{i:03}");
        let mut gt = vec![0u8; (w * h) as usize];
        let mut instances = Vec::new();
        for _ in 0..1 + rng.next(4) {
            let c = 1 + rng.next(3) as u8;
            let (dw, dh) = (4 + rng.next(w / 8), 3 + rng.next(h / 10));
            let (x, y) = (rng.next(w - dw), rng.next(h - dh));
            for yy in y..y + dh {
                gt[(yy * w + x) as usize..(yy * w + x + dw) as usize].fill(c);
            }
            instances.push(Instance {
                class: c as u32,
                area: (dw * dh) as u64,
                bbox: [x, y, dw, dh],
            });
        }
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let v = gt[(y * w + x) as usize];
            let b = ((x / 7 + y / 5) % 80 + 70) as u8;
            if v == 0 {
                image::Rgb([b, b, b])
            } else {
                image::Rgb([200, 60 * v, 40])
            }
        });
        fs::create_dir_all(ds.join("JPEGImages"))?;
        img.save(ds.join("JPEGImages").join(format!("{stem}.jpg")))?;
        write_index_png(
            &ds.join("SegmentationClass").join(format!("{stem}.png")),
            w,
            h,
            &gt,
            MaskEncoding::Palette,
        )?;
        for (ri, r) in runs.iter().enumerate() {
            // each run shifts the truth by a different amount: imperfect, different predictions
            let shift = (3 + ri as u32 * 5 + rng.next(6)) as usize;
            let mut pred = vec![0u8; gt.len()];
            for row in 0..h as usize {
                let s = &gt[row * w as usize..(row + 1) * w as usize];
                pred[row * w as usize + shift..(row + 1) * w as usize]
                    .copy_from_slice(&s[..w as usize - shift]);
            }
            if ri == 0 {
                for (g, p) in gt.iter().zip(&pred) {
                    confusion[*g as usize][*p as usize] += 1;
                }
            }
            write_index_png(
                &r.join("predictions").join(format!("{stem}.png")),
                w,
                h,
                &pred,
                MaskEncoding::Palette,
            )?;
        }
        m.images.push(ImageEntry {
            stem: stem.clone(),
            file: format!("JPEGImages/{stem}.jpg"),
            width: w,
            height: h,
            views: vec![["front", "side", "top"][i % 3].to_string()],
            source: format!("raw/{stem}.json"),
            class_pixels: count_values(&gt),
            instances,
            extra: Default::default(),
        });
    }
    m.history.push(segkit_labelme::dataset::HistoryEntry {
        command: "segkit convert raw/ ds/".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        at: "2026-01-01T00:00:00Z".into(),
    });
    write_manifest(&ds, &m)?;
    let stems: Vec<String> = m.images.iter().map(|e| e.stem.clone()).collect();
    write_split(&ds, "val", &stems)?;
    for (ri, r) in runs.iter().enumerate() {
        let lr = [1e-4, 3e-4][ri];
        fs::write(
            r.join("config.toml"),
            format!("dataset = \"../../ds\"\nepochs = {epochs}\n\n[optim]\nlr = {lr:e}\n"),
        )?;
        fs::write(r.join("dataset.json"), serde_json::to_string_pretty(&m)?)?;
        let mut lines = String::new();
        for e in 1..=epochs {
            let p = e as f64 / epochs as f64;
            let d = |k: f64| (p * (0.6 + 0.1 * k + 0.05 * ri as f64)).min(0.99);
            lines.push_str(&serde_json::json!({
                "epoch": e, "lr": lr * (1.0 - p * 0.9), "seconds": 30.0, "train_loss": 1.0 - 0.8 * p, "val_loss": 1.1 - 0.7 * p,
                "miou": d(1.0), "dice": {"0": 0.99, "1": d(0.0), "2": d(1.0), "3": d(2.0)},
                "iou": {"0": 0.98, "1": d(0.0) * 0.8, "2": d(1.0) * 0.8, "3": d(2.0) * 0.8},
                "defect_recall": d(1.5), "false_defects_per_image": 2.0 * (1.0 - p)
            }).to_string());
            lines.push('\n');
        }
        fs::write(r.join("metrics.jsonl"), lines)?;
        fs::write(
            r.join("confusion.json"),
            serde_json::json!({"classes": names, "matrix": confusion}).to_string(),
        )?;
        fs::write(r.join("log.txt"), "device: cpu\n")?;
    }
    println!(
        "wrote {n} images of {w}×{h} and 2 runs of {epochs} epochs under {}",
        out.display()
    );
    Ok(())
}
