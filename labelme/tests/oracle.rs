//! Randomized pixel-exactness test: thousands of random labelme shapes (float coordinates,
//! self-intersecting and degenerate polygons, shapes partly or wholly outside the image,
//! tiny and huge circles, lines and bends at every angle, mask patches) rasterized by this
//! crate and by the labelme oracle (Pillow 13.0.0) in one Python process; every pixel must
//! agree.
//!
//! Needs `SEGKIT_PYTHON` (a Python with Pillow 13.0.0 + numpy), which `make test` sets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segkit_labelme::annotation::Annotation;
use segkit_labelme::dataset::read_index_png;
use segkit_labelme::rasterize::shape_spans;
use serde_json::{json, Value};

const LABELS: [&str; 10] = [
    "__ignore__",
    "_background_",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
];

fn python() -> PathBuf {
    let p = std::env::var_os("SEGKIT_PYTHON").map(PathBuf::from).expect(
        "SEGKIT_PYTHON is not set: run the tests with `make test` (it provisions Pillow 13.0.0)",
    );
    assert!(
        p.exists(),
        "SEGKIT_PYTHON={} does not exist: run `make provision`",
        p.display()
    );
    p
}

fn coord(rng: &mut ChaCha8Rng, size: u32) -> f64 {
    let s = size as f64;
    match rng.gen_range(0..10) {
        // integers and exact halves hit Pillow's rounding ties
        0 => rng.gen_range(-2..=size as i64 + 2) as f64,
        1 => rng.gen_range(-2..=size as i64 + 2) as f64 + 0.5,
        2 => rng.gen_range(-1.5 * s..2.5 * s),
        _ => rng.gen_range(-0.2 * s..1.2 * s),
    }
}

fn pt(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Value {
    json!([coord(rng, w), coord(rng, h)])
}

fn polygon_points(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Vec<Value> {
    match rng.gen_range(0..6) {
        // random vertices: usually self-intersecting
        0 | 1 => (0..rng.gen_range(3..12)).map(|_| pt(rng, w, h)).collect(),
        // star-shaped around a centre, with many vertices
        2 => {
            let (cx, cy) = (coord(rng, w), coord(rng, h));
            let n = rng.gen_range(3..60);
            let r0 = rng.gen_range(0.5..(w.max(h) as f64));
            (0..n)
                .map(|i| {
                    let t = i as f64 / n as f64 * std::f64::consts::TAU;
                    let r = r0 * rng.gen_range(0.3..1.0);
                    json!([cx + r * t.cos(), cy + r * t.sin()])
                })
                .collect()
        }
        // axis-aligned staircase: runs of horizontal edges
        3 => {
            let mut x = coord(rng, w).round();
            let mut y = coord(rng, h).round();
            let mut v = vec![json!([x, y])];
            for _ in 0..rng.gen_range(2..10) {
                if rng.gen_bool(0.5) {
                    x += rng.gen_range(-8..=8) as f64;
                } else {
                    y += rng.gen_range(-8..=8) as f64;
                }
                v.push(json!([x, y]));
            }
            v
        }
        // degenerate: collinear or repeated points
        4 => {
            let (a, b) = (
                (coord(rng, w), coord(rng, h)),
                (coord(rng, w), coord(rng, h)),
            );
            (0..rng.gen_range(3..6))
                .map(|_| {
                    let t = if rng.gen_bool(0.3) {
                        0.0
                    } else {
                        rng.gen_range(-0.5..1.5)
                    };
                    json!([a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)])
                })
                .collect()
        }
        // tiny polygon within a couple of pixels
        _ => {
            let (x, y) = (coord(rng, w), coord(rng, h));
            (0..rng.gen_range(3..7))
                .map(|_| json!([x + rng.gen_range(-2.0..2.0), y + rng.gen_range(-2.0..2.0)]))
                .collect()
        }
    }
}

fn polyline_points(rng: &mut ChaCha8Rng, w: u32, h: u32, n: usize) -> Vec<Value> {
    let mut p = (coord(rng, w), coord(rng, h));
    let mut v = vec![json!([p.0, p.1])];
    let mut angle: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
    for _ in 1..n {
        match rng.gen_range(0..5) {
            0 => angle = rng.gen_range(0.0..std::f64::consts::TAU),
            1 => {}                                 // straight on
            2 => angle += rng.gen_range(-3.0..3.0), // any bend
            3 => angle = (rng.gen_range(0..8) as f64) * std::f64::consts::FRAC_PI_4, // octants
            _ => angle += std::f64::consts::PI,     // turn back
        }
        let len = if rng.gen_bool(0.1) {
            0.0
        } else {
            rng.gen_range(0.5..(w.max(h) as f64) * 0.6)
        };
        p = (p.0 + len * angle.cos(), p.1 + len * angle.sin());
        if rng.gen_bool(0.3) {
            p = (p.0.round(), p.1.round());
        }
        v.push(json!([p.0, p.1]));
    }
    v
}

fn mask_shape(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Value {
    let (pw, ph) = (rng.gen_range(1..40u32), rng.gen_range(1..40u32));
    let fill = rng.gen_range(0.1..0.9);
    let patch = image::GrayImage::from_fn(pw, ph, |_, _| {
        image::Luma([if rng.gen_bool(fill) { 255 } else { 0 }])
    });
    let mut png = Vec::new();
    patch
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode patch");
    // the oracle (like labelme) needs the corner inside the image; .5 tests numpy's rounding
    let x = rng.gen_range(0..w) as f64
        + if rng.gen_bool(0.5) {
            0.5
        } else {
            rng.gen_range(-0.49..0.49)
        };
    let y = rng.gen_range(0..h) as f64
        + if rng.gen_bool(0.5) {
            0.5
        } else {
            rng.gen_range(-0.49..0.49)
        };
    let (x, y) = (x.clamp(0.0, w as f64 - 0.51), y.clamp(0.0, h as f64 - 0.51));
    json!({
        "label": "", "shape_type": "mask",
        "points": [[x, y], [x + pw as f64 - 1.0, y + ph as f64 - 1.0]],
        "mask": base64::engine::general_purpose::STANDARD.encode(png),
    })
}

fn random_shape(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Value {
    let (kind, points) = match rng.gen_range(0..20) {
        0..=5 => ("polygon", polygon_points(rng, w, h)),
        6 | 7 => ("rectangle", vec![pt(rng, w, h), pt(rng, w, h)]),
        8..=10 => {
            let c = (coord(rng, w), coord(rng, h));
            let r = match rng.gen_range(0..4) {
                0 => rng.gen_range(0.0..2.0),
                1 => rng.gen_range(0.0..5.0 * w.max(h) as f64),
                _ => rng.gen_range(0.0..w.max(h) as f64 / 2.0),
            };
            let t: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            (
                "circle",
                vec![
                    json!([c.0, c.1]),
                    json!([c.0 + r * t.cos(), c.1 + r * t.sin()]),
                ],
            )
        }
        11 | 12 => {
            let n = if rng.gen_bool(0.8) {
                2
            } else {
                rng.gen_range(3..6)
            };
            ("line", polyline_points(rng, w, h, n))
        }
        13..=15 => {
            let n = rng.gen_range(2..9);
            ("linestrip", polyline_points(rng, w, h, n))
        }
        16 => ("point", vec![pt(rng, w, h)]),
        17 => {
            let (cx, cy) = (coord(rng, w), coord(rng, h));
            let (a, b) = (rng.gen_range(0.0..w as f64), rng.gen_range(0.0..h as f64));
            let t: f64 = rng.gen_range(0.0..std::f64::consts::PI);
            let (c, s) = (t.cos(), t.sin());
            let corners = [(-a, -b), (a, -b), (a, b), (-a, b)]
                .iter()
                .map(|&(x, y)| json!([cx + x * c - y * s, cy + x * s + y * c]))
                .collect();
            ("oriented_rectangle", corners)
        }
        _ => return mask_shape(rng, w, h),
    };
    json!({"label": "", "points": points, "group_id": null, "shape_type": kind, "flags": {}})
}

fn random_annotation(rng: &mut ChaCha8Rng) -> Value {
    let (w, h) = if rng.gen_bool(0.1) {
        (rng.gen_range(200..700), rng.gen_range(200..700))
    } else if rng.gen_bool(0.05) {
        (rng.gen_range(1..4), rng.gen_range(1..4))
    } else {
        (rng.gen_range(8..120), rng.gen_range(8..120))
    };
    let n = rng.gen_range(1..=4);
    let shapes: Vec<Value> = (0..n)
        .map(|_| {
            let mut s = random_shape(rng, w, h);
            s["label"] = json!(
                LABELS[if rng.gen_bool(0.1) {
                    0
                } else {
                    rng.gen_range(2..LABELS.len())
                }]
            );
            s
        })
        .collect();
    json!({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "none.png",
           "imageData": null, "imageHeight": h, "imageWidth": w})
}

fn value_of(label: &str) -> u8 {
    match LABELS
        .iter()
        .position(|l| *l == label)
        .expect("known label")
    {
        0 => 255,
        i => (i - 1) as u8,
    }
}

fn rasterize(path: &Path) -> (u32, u32, Vec<u8>) {
    let ann = Annotation::read(path).expect("parse");
    let (w, h) = (ann.image_width.unwrap(), ann.image_height.unwrap());
    let mut buf = vec![0u8; (w * h) as usize];
    for shape in &ann.shapes {
        shape_spans(shape, w, h)
            .expect("drawable")
            .paint(&mut buf, value_of(&shape.label));
    }
    (w, h, buf)
}

/// Write `anns` as `dir/NNNN.json`, run the oracle over them, compare every pixel.
fn check_against_oracle(dir: &Path, anns: &[Value]) {
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, LABELS.join("\n")).unwrap();
    let json_dir = dir.join("json");
    std::fs::create_dir_all(&json_dir).unwrap();
    for (i, a) in anns.iter().enumerate() {
        std::fs::write(
            json_dir.join(format!("{i:05}.json")),
            serde_json::to_vec(a).unwrap(),
        )
        .unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/convert.py");
    let out_dir = dir.join("oracle");
    let out = Command::new(python())
        .arg(&script)
        .arg(&labels)
        .arg(&out_dir)
        .arg(&json_dir)
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "oracle failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut report = String::new();
    let mut bad = 0;
    for (i, ann) in anns.iter().enumerate() {
        let path = json_dir.join(format!("{i:05}.json"));
        let (w, h, ours) = rasterize(&path);
        let theirs = read_index_png(&out_dir.join(format!("{i:05}.png"))).unwrap();
        assert_eq!((theirs.width, theirs.height), (w, h));
        let diffs: Vec<usize> = (0..ours.len())
            .filter(|&k| ours[k] != theirs.data[k])
            .collect();
        if !diffs.is_empty() {
            bad += 1;
            if bad <= 5 {
                let k = diffs[0];
                let _ = writeln!(
                    report,
                    "{}: {} pixels differ, first at x={} y={} (ours {}, oracle {})\n{}",
                    path.display(),
                    diffs.len(),
                    k % w as usize,
                    k / w as usize,
                    ours[k],
                    theirs.data[k],
                    serde_json::to_string(&ann["shapes"]).unwrap()
                );
            }
        }
    }
    if bad > 0 {
        let keep = dir.to_path_buf();
        std::mem::forget(keep);
        panic!(
            "{bad} of {} annotations differ from the oracle:\n{report}",
            anns.len()
        );
    }
}

#[test]
fn random_shapes_match_pillow_pixel_for_pixel() {
    // SEGKIT_ORACLE_CASES / SEGKIT_ORACLE_SEED widen the search by hand; the defaults keep
    // the test to a few seconds.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(env("SEGKIT_ORACLE_SEED", 20261130));
    let n = env("SEGKIT_ORACLE_CASES", 1500) as usize;
    let anns: Vec<Value> = (0..n).map(|_| random_annotation(&mut rng)).collect();
    let shapes: usize = anns
        .iter()
        .map(|a| a["shapes"].as_array().unwrap().len())
        .sum();
    assert!(shapes >= 3000, "only {shapes} shapes");
    let dir = tempfile::tempdir().unwrap();
    check_against_oracle(dir.path(), &anns);
}
