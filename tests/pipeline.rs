//! The data pipeline end to end on synth data: synth → convert → split by labelme flags →
//! stats, checking what each stage hands the next through the dataset folder.

mod common;

use std::fs;

use common::run_ok;
use serde_json::Value;

#[test]
fn views_from_labelme_flags_survive_convert_and_split() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    run_ok(
        d,
        &[
            "synth", "lm", "--images", "9", "--size", "256x256", "--seed", "2",
        ],
    );
    run_ok(
        d,
        &[
            "convert",
            "lm",
            "ds",
            "--labels",
            "lm/labels.txt",
            "--no-viz",
        ],
    );
    run_ok(
        d,
        &[
            "split",
            "ds",
            "--view-from-flags",
            "--val",
            "0.34",
            "--seed",
            "0",
        ],
    );
    let manifest: Value =
        serde_json::from_slice(&fs::read(d.join("ds/dataset.json")).unwrap()).unwrap();
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(images.len(), 9);
    for im in images {
        let stem = im["stem"].as_str().unwrap();
        let view = stem.rsplit('_').next().unwrap();
        assert_eq!(
            im["views"],
            serde_json::json!([view]),
            "{stem}: view from its labelme flags"
        );
        assert_eq!(
            im["flags"][view],
            Value::Bool(true),
            "{stem}: flags kept in the manifest"
        );
    }
    let split = |n: &str| -> Vec<String> {
        fs::read_to_string(d.join("ds/ImageSets/Segmentation").join(format!("{n}.txt")))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let (train, val) = (split("train"), split("val"));
    assert_eq!(train.len() + val.len(), 9);
    assert!(
        train.iter().all(|s| !val.contains(s)),
        "train and val overlap"
    );
    assert_eq!(split("front").len(), 3, "view split list");
    let out = run_ok(d, &["stats", "ds", "--json"]);
    let stats: Value = serde_json::from_slice(&out.stdout).expect("stats --json is JSON");
    assert!(stats.to_string().contains("scratch"), "{stats}");
}
