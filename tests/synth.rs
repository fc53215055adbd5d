//! `segkit synth`: the demo dataset is deterministic, valid labelme, and shaped like the
//! users' data (tiny defects, empty images, views, ignore regions).

mod common;

use std::fs;
use std::path::Path;

use common::{oracle_python, run_err, run_ok};
use serde_json::Value;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn jsons(dir: &Path) -> Vec<(String, Value)> {
    files(dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".json"))
        .map(|(n, b)| (n, serde_json::from_slice(&b).expect("synth JSON parses")))
        .collect()
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    let t = tempfile::tempdir().unwrap();
    let args = ["--images", "6", "--size", "256x192"];
    run_ok(
        t.path(),
        &[&["synth", "a", "--seed", "3"][..], &args].concat(),
    );
    run_ok(
        t.path(),
        &[&["synth", "b", "--seed", "3"][..], &args].concat(),
    );
    run_ok(
        t.path(),
        &[&["synth", "c", "--seed", "4"][..], &args].concat(),
    );
    let (a, b, c) = (
        files(&t.path().join("a")),
        files(&t.path().join("b")),
        files(&t.path().join("c")),
    );
    assert_eq!(a.len(), 6 * 2 + 1, "6 JSON + 6 JPEG + labels.txt");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn every_file_is_valid_labelme_with_shapes_inside_the_image() {
    let t = tempfile::tempdir().unwrap();
    let out = run_ok(
        t.path(),
        &[
            "synth", "d", "--images", "20", "--size", "320x240", "--seed", "1",
        ],
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("wrote 20 labelme annotations"),
        "{summary}"
    );
    assert!(
        summary.trim_end().ends_with("to d"),
        "summary names the output: {summary}"
    );
    let dir = t.path().join("d");
    let labels = fs::read_to_string(dir.join("labels.txt")).unwrap();
    assert_eq!(
        labels,
        "__ignore__\n_background_\nscratch\ndent\nstain\ncrack\n"
    );
    let docs = jsons(&dir);
    assert_eq!(docs.len(), 20);
    let (mut embedded, mut empty, mut kinds) = (0, 0, std::collections::BTreeSet::new());
    for (name, doc) in &docs {
        let (w, h) = (
            doc["imageWidth"].as_f64().unwrap(),
            doc["imageHeight"].as_f64().unwrap(),
        );
        assert_eq!((w, h), (320.0, 240.0));
        let stem = name.trim_end_matches(".json");
        let view = stem.rsplit('_').next().unwrap();
        assert!(["front", "back", "side"].contains(&view), "{name}");
        assert_eq!(doc["flags"][view], Value::Bool(true), "{name}: view flag");
        assert_eq!(doc["imagePath"], Value::String(format!("{stem}.jpg")));
        // the image beside the JSON decodes at the declared size
        let img = image::open(dir.join(format!("{stem}.jpg"))).unwrap();
        assert_eq!((img.width(), img.height()), (320, 240));
        if doc["imageData"].is_string() {
            embedded += 1;
        }
        let shapes = doc["shapes"].as_array().unwrap();
        if shapes.iter().all(|s| s["label"] == "__ignore__") {
            empty += 1;
        }
        for s in shapes {
            kinds.insert(s["shape_type"].as_str().unwrap().to_string());
            for p in s["points"].as_array().unwrap() {
                let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
                assert!(
                    (0.0..w).contains(&x) && (0.0..h).contains(&y),
                    "{name}: point {x},{y} outside"
                );
            }
        }
    }
    assert_eq!(embedded, 10, "half the files embed imageData");
    assert!(
        (2..=4).contains(&empty),
        "10-20% of images defect-free, got {empty}/20"
    );
    for k in ["circle", "polygon"] {
        assert!(kinds.contains(k), "shape type {k} missing: {kinds:?}");
    }
    assert!(
        kinds.contains("linestrip") || kinds.contains("line"),
        "{kinds:?}"
    );
}

/// The defect share is measured with labelme's own rasterization (the oracle), not ours.
#[test]
fn defect_pixel_share_is_small_as_stated() {
    let t = tempfile::tempdir().unwrap();
    run_ok(
        t.path(),
        &[
            "synth", "e", "--images", "12", "--size", "512x512", "--seed", "7",
        ],
    );
    let dir = t.path().join("e");
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/labelme_oracle.py");
    let script = format!(
        r#"
import glob, json, runpy, sys, numpy as np
sys.argv = ["oracle"]
ns = runpy.run_path({oracle:?})
names = open({labels:?}).read().split()
values = {{n: (255 if i == 0 else i - 1) for i, n in enumerate(names)}}
fg = ign = total = 0
for f in sorted(glob.glob({glob:?})):
    cls = ns["rasterize"](json.load(open(f)), values)
    fg += int(((cls > 0) & (cls != 255)).sum()); ign += int((cls == 255).sum()); total += cls.size
print(fg / total, ign / total)
"#,
        oracle = oracle.to_str().unwrap(),
        labels = dir.join("labels.txt").to_str().unwrap(),
        glob = dir.join("*.json").to_str().unwrap(),
    );
    let out = std::process::Command::new(oracle_python())
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    let (fg, _ignore) = (it.next().unwrap(), it.next().unwrap());
    assert!(
        (0.0005..0.01).contains(&fg),
        "defect share {fg} not within 0.05%..1%"
    );
}

#[test]
fn non_ascii_classes_large_images_and_bad_arguments() {
    let t = tempfile::tempdir().unwrap();
    run_ok(
        t.path(),
        &[
            "synth",
            "zh",
            "--images",
            "2",
            "--size",
            "2000x2000",
            "--classes",
            "划痕,凹坑",
        ],
    );
    let labels = fs::read_to_string(t.path().join("zh/labels.txt")).unwrap();
    assert_eq!(labels, "__ignore__\n_background_\n划痕\n凹坑\n");
    let docs = jsons(&t.path().join("zh"));
    assert!(docs.iter().any(|(_, d)| d["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["label"] == "划痕")));
    // an existing non-empty folder is refused, naming it
    let err = run_err(t.path(), &["synth", "zh", "--images", "1"]);
    assert!(err.contains("zh") && err.contains("not empty"), "{err}");
    let err = run_err(t.path(), &["synth", "bad", "--size", "20x20"]);
    assert!(err.contains("too small"), "{err}");
    let err = run_err(t.path(), &["synth", "bad2", "--size", "big"]);
    assert!(err.contains("WxH"), "{err}");
}
