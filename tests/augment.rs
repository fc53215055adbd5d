//! End-to-end `segkit augment` on a dataset made of labelme's real VOC example (JPEG photos,
//! P-mode masks with 0, classes and 255).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{run_err, run_ok, shared_data};
use segkit_labelme::dataset::{self, Dataset, ImageEntry, Manifest};

/// A segkit dataset of the three labelme example photos: train = two, val = one.
fn make_dataset(root: &Path) -> PathBuf {
    let voc = shared_data().join("labelme-examples/semantic_segmentation/data_dataset_voc");
    let ds = root.join("voc");
    let names: Vec<String> = std::fs::read_to_string(voc.join("class_names.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut m = Manifest::new(&names);
    for stem in ["2011_000003", "2011_000006", "2011_000025"] {
        let jpg = std::fs::read(voc.join(format!("JPEGImages/{stem}.jpg"))).unwrap();
        dataset::atomic_write(&ds.join(format!("JPEGImages/{stem}.jpg")), &jpg).unwrap();
        let png = std::fs::read(voc.join(format!("SegmentationClass/{stem}.png"))).unwrap();
        dataset::atomic_write(&ds.join(format!("SegmentationClass/{stem}.png")), &png).unwrap();
        let mask =
            dataset::read_index_png(&ds.join(format!("SegmentationClass/{stem}.png"))).unwrap();
        m.images.push(ImageEntry {
            stem: stem.into(),
            file: format!("JPEGImages/{stem}.jpg"),
            width: mask.width,
            height: mask.height,
            views: vec![],
            source: format!("{stem}.json"),
            class_pixels: dataset::count_values(&mask.data),
            instances: vec![],
            extra: Default::default(),
        });
    }
    dataset::write_split(&ds, "train", &["2011_000003".into(), "2011_000025".into()]).unwrap();
    dataset::write_split(&ds, "val", &["2011_000006".into()]).unwrap();
    dataset::write_manifest(&ds, &m).unwrap();
    ds
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

const PIPELINE: &str = r#"
[[transforms]]
name = "HorizontalFlip"

[[transforms]]
name = "Rotate"
limit = 40
p = 1.0

[[transforms]]
name = "RandomBrightnessContrast"
"#;

#[test]
fn offline_augmentation_writes_a_dataset_with_copies_beside_their_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = make_dataset(tmp.path());
    std::fs::write(tmp.path().join("aug.toml"), PIPELINE).unwrap();
    let before = snapshot(&ds);
    let out = run_ok(
        tmp.path(),
        &[
            "augment",
            "voc",
            "aug",
            "--pipeline",
            "aug.toml",
            "--copies",
            "2",
            "--seed",
            "0",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wrote 4 augmented and 3 original images"),
        "{stdout}"
    );
    assert_eq!(snapshot(&ds), before, "the input dataset is never modified");

    let aug = Dataset::open(tmp.path().join("aug")).unwrap();
    let stems: Vec<&str> = aug
        .manifest
        .images
        .iter()
        .map(|e| e.stem.as_str())
        .collect();
    assert_eq!(
        stems,
        [
            "2011_000003",
            "2011_000003_aug0",
            "2011_000003_aug1",
            "2011_000006",
            "2011_000025",
            "2011_000025_aug0",
            "2011_000025_aug1"
        ]
    );
    assert_eq!(
        aug.split("train").unwrap().unwrap(),
        [
            "2011_000003",
            "2011_000003_aug0",
            "2011_000003_aug1",
            "2011_000025",
            "2011_000025_aug0",
            "2011_000025_aug1"
        ]
    );
    assert_eq!(
        aug.split("val").unwrap().unwrap(),
        ["2011_000006"],
        "val is not augmented"
    );
    let last = aug.manifest.history.last().unwrap();
    assert!(
        last.command.contains("augment") && last.command.contains("--copies 2"),
        "{last:?}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("aug/augment.toml")).unwrap(),
        PIPELINE
    );
    // Originals are byte copies.
    assert_eq!(
        std::fs::read(tmp.path().join("aug/JPEGImages/2011_000003.jpg")).unwrap(),
        before[Path::new("JPEGImages/2011_000003.jpg")]
    );
    for e in aug
        .manifest
        .images
        .iter()
        .filter(|e| e.stem.contains("_aug"))
    {
        let from = e.extra["augmented_from"].as_str().unwrap();
        let src_mask =
            dataset::read_index_png(&ds.join(format!("SegmentationClass/{from}.png"))).unwrap();
        let img = image::open(aug.image_path(e)).unwrap();
        let mask = dataset::read_index_png(&aug.mask_path(&e.stem)).unwrap();
        assert_eq!((img.width(), img.height()), (mask.width, mask.height));
        assert_eq!((e.width, e.height), (mask.width, mask.height));
        let allowed: BTreeSet<u8> = src_mask.data.iter().copied().chain([255]).collect();
        let got: BTreeSet<u8> = mask.data.iter().copied().collect();
        assert!(
            got.is_subset(&allowed),
            "{}: {got:?} not within {allowed:?}",
            e.stem
        );
        assert_eq!(e.class_pixels, dataset::count_values(&mask.data));
        assert!(
            e.class_pixels.get(&255).copied().unwrap_or(0)
                > src_mask.data.iter().filter(|&&v| v == 255).count() as u64,
            "{}: rotation padding is ignore",
            e.stem
        );
        assert!(tmp
            .path()
            .join(format!("aug/SegmentationClassVisualization/{}.jpg", e.stem))
            .exists());
    }
}

#[test]
fn same_seed_gives_the_same_bytes_with_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(tmp.path());
    std::fs::write(tmp.path().join("aug.toml"), PIPELINE).unwrap();
    let args = |out: &'static str, threads: &'static str| {
        vec![
            "augment",
            "voc",
            out,
            "--pipeline",
            "aug.toml",
            "--copies",
            "3",
            "--seed",
            "5",
            "--split",
            "val",
            "--threads",
            threads,
        ]
    };
    run_ok(tmp.path(), &args("a", "1"));
    run_ok(tmp.path(), &args("b", "3"));
    let (a, b) = (
        snapshot(&tmp.path().join("a")),
        snapshot(&tmp.path().join("b")),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        if k != Path::new("dataset.json") {
            assert!(
                v == &b[k],
                "{} differs between 1 and 3 threads",
                k.display()
            );
        }
    }
    let copies: Vec<&Vec<u8>> = a
        .iter()
        .filter(|(k, _)| k.starts_with("JPEGImages") && k.to_string_lossy().contains("_aug"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(copies.len(), 3);
    assert!(
        copies[0] != copies[1] && copies[1] != copies[2],
        "each copy is a new draw"
    );
    run_ok(
        tmp.path(),
        &[
            "augment",
            "voc",
            "c",
            "--pipeline",
            "aug.toml",
            "--copies",
            "3",
            "--seed",
            "6",
            "--split",
            "val",
        ],
    );
    let c = snapshot(&tmp.path().join("c"));
    let k = Path::new("JPEGImages/2011_000006_aug0.png");
    assert!(a[k] != c[k], "another seed draws anew");
}

#[test]
fn preview_writes_a_grid_png() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(tmp.path());
    std::fs::write(tmp.path().join("aug.toml"), PIPELINE).unwrap();
    let out = run_ok(
        tmp.path(),
        &[
            "augment",
            "voc",
            "--pipeline",
            "aug.toml",
            "--preview",
            "grid.png",
            "--samples",
            "6",
            "--tile",
            "100",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("grid.png"));
    let g = image::open(tmp.path().join("grid.png")).unwrap().to_rgb8();
    // 6 samples: 3 columns x 2 rows of 100 px tiles with 4 px gaps.
    assert_eq!(g.dimensions(), (3 * 104 + 4, 2 * 104 + 4));
    // The default pipeline also previews, and nothing else was written.
    run_ok(
        tmp.path(),
        &["augment", "voc", "--preview", "grid2.png", "--samples", "2"],
    );
    assert!(tmp.path().join("grid2.png").exists());
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    make_dataset(tmp.path());
    std::fs::write(
        tmp.path().join("typo.toml"),
        "[[transforms]]\nname = \"Rotate\"\nlimt = 30\n",
    )
    .unwrap();
    let err = run_err(
        tmp.path(),
        &["augment", "voc", "out", "--pipeline", "typo.toml"],
    );
    assert!(err.contains("typo.toml") && err.contains("limt"), "{err}");
    assert!(!tmp.path().join("out").exists());

    std::fs::create_dir_all(tmp.path().join("full")).unwrap();
    std::fs::write(tmp.path().join("full/x"), "x").unwrap();
    let err = run_err(tmp.path(), &["augment", "voc", "full"]);
    assert!(err.contains("not empty"), "{err}");

    let err = run_err(tmp.path(), &["augment", "nowhere", "out2"]);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn one_broken_image_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = make_dataset(tmp.path());
    std::fs::write(ds.join("JPEGImages/2011_000025.jpg"), b"not a jpeg").unwrap();
    let err = run_err(tmp.path(), &["augment", "voc", "out", "--copies", "1"]);
    assert!(err.contains("2011_000025"), "{err}");
    // The other train image was still augmented.
    assert!(tmp
        .path()
        .join("out/JPEGImages/2011_000003_aug0.png")
        .exists());
    assert!(!tmp
        .path()
        .join("out/JPEGImages/2011_000025_aug0.png")
        .exists());
}
