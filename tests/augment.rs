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
    let mut beside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["aug", "aug.toml", "voc"],
        "the staging folder became `aug`"
    );

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

// ---- object masks (SegmentationObject/) through augment ----

/// (class mask, object mask, width, height) of `stem` in dataset `root`; the object mask must
/// be a P-mode PNG, as VOC's.
fn planes(root: &Path, stem: &str) -> (Vec<u8>, Vec<u8>, u32, u32) {
    let c = dataset::read_index_png(&root.join(format!("SegmentationClass/{stem}.png"))).unwrap();
    let obj_path = root.join(format!("SegmentationObject/{stem}.png"));
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&obj_path).unwrap(),
    ));
    let info = decoder.read_info().unwrap();
    assert_eq!(
        info.info().color_type,
        png::ColorType::Indexed,
        "{}",
        obj_path.display()
    );
    let o = dataset::read_index_png(&obj_path).unwrap();
    assert_eq!((c.width, c.height), (o.width, o.height), "{stem}");
    (c.data, o.data, c.width, c.height)
}

/// The eight flips and quarter turns of a `w`×`h` plane: (plane, width, height).
fn dihedral(p: &[u8], w: u32, h: u32) -> Vec<(Vec<u8>, u32, u32)> {
    let (w, h) = (w as usize, h as usize);
    let mut out = Vec::new();
    for t in 0..2 {
        // t = 1: transposed first
        let (tw, th) = if t == 1 { (h, w) } else { (w, h) };
        let base: Vec<u8> = (0..tw * th)
            .map(|i| {
                let (x, y) = (i % tw, i / tw);
                if t == 1 {
                    p[x * w + y]
                } else {
                    p[y * w + x]
                }
            })
            .collect();
        for (fx, fy) in [(false, false), (true, false), (false, true), (true, true)] {
            let v = (0..tw * th)
                .map(|i| {
                    let (x, y) = (i % tw, i / tw);
                    let sx = if fx { tw - 1 - x } else { x };
                    let sy = if fy { th - 1 - y } else { y };
                    base[sy * tw + sx]
                })
                .collect();
            out.push((v, tw as u32, th as u32));
        }
    }
    out
}

/// The (class, object) pairs that occur in two planes.
fn pairs(class: &[u8], ids: &[u8]) -> BTreeSet<(u8, u8)> {
    class.iter().copied().zip(ids.iter().copied()).collect()
}

/// Augmented copies of `out` (stem, source stem).
fn copies(out: &Path) -> Vec<(String, String)> {
    Dataset::open(out)
        .unwrap()
        .manifest
        .images
        .iter()
        .filter_map(|e| {
            let from = e.extra.get("augmented_from")?.as_str()?.to_string();
            Some((e.stem.clone(), from))
        })
        .collect()
}

/// dataset.json's instances of every image are the objects of its written masks.
fn check_instances(out: &Path) {
    for e in Dataset::open(out).unwrap().manifest.images {
        let (c, o, w, h) = planes(out, &e.stem);
        let want = segkit_labelme::objects::object_instances(&c, &o, w, 0..h).instances;
        assert!(!want.is_empty(), "{}", e.stem);
        assert_eq!(e.instances, want, "{}", e.stem);
        assert_eq!(e.class_pixels, dataset::count_values(&c), "{}", e.stem);
    }
}

#[test]
fn flipped_copies_carry_their_object_masks_exactly() {
    let t = tempfile::tempdir().unwrap();
    let src = common::objects::convert_instance_example(t.path(), "voc");
    let before = snapshot(&src);
    let pipe = t.path().join("flips.toml");
    std::fs::write(
        &pipe,
        "[[transforms]]\nname = \"HorizontalFlip\"\n[[transforms]]\nname = \"VerticalFlip\"\n\
         [[transforms]]\nname = \"Transpose\"\n[[transforms]]\nname = \"RandomBrightnessContrast\"\n",
    )
    .unwrap();
    run_ok(
        t.path(),
        &[
            "augment",
            "voc",
            "aug",
            "--pipeline",
            pipe.to_str().unwrap(),
            "--copies",
            "6",
        ],
    );
    assert_eq!(snapshot(&src), before, "augment modified its input");
    let out = t.path().join("aug");
    let copies = copies(&out);
    assert_eq!(copies.len(), 18);
    let mut moves = BTreeSet::new();
    for (stem, from) in &copies {
        let (c0, o0, w0, h0) = planes(&src, from);
        let (c, o, w, h) = planes(&out, stem);
        // Both planes went through one and the same flip/transpose, exactly.
        let k = dihedral(&c0, w0, h0)
            .into_iter()
            .zip(dihedral(&o0, w0, h0))
            .position(|(cc, oo)| cc == (c.clone(), w, h) && oo == (o.clone(), w, h));
        let k = k.unwrap_or_else(|| panic!("{stem}: not a flip of {from} in both planes"));
        moves.insert(k);
        // ... so each object still lies on the classes it lay on.
        assert_eq!(pairs(&c, &o), pairs(&c0, &o0), "{stem}");
    }
    assert!(moves.len() >= 4, "the draws hardly vary: {moves:?}");
    check_instances(&out);
}

#[test]
fn warped_copies_keep_ids_on_their_classes_and_pad_them_as_ignore() {
    let t = tempfile::tempdir().unwrap();
    let src = common::objects::convert_instance_example(t.path(), "voc");
    let pipe = t.path().join("warps.toml");
    std::fs::write(
        &pipe,
        r#"
[[transforms]]
name = "RandomRotate90"
[[transforms]]
name = "Affine"
p = 1.0
rotate = [-30, 30]
scale = [0.7, 1.2]
shear = [-8, 8]
[[transforms]]
name = "ElasticTransform"
alpha = 40
sigma = 6
p = 0.5
[[transforms]]
name = "PadIfNeeded"
min_height = 520
min_width = 520
position = "random"
[[transforms]]
name = "RandomCrop"
height = 400
width = 420
[[transforms]]
name = "GaussNoise"
"#,
    )
    .unwrap();
    run_ok(
        t.path(),
        &[
            "augment",
            "voc",
            "aug",
            "--pipeline",
            pipe.to_str().unwrap(),
            "--copies",
            "4",
        ],
    );
    let out = t.path().join("aug");
    let mut padded = 0;
    for (stem, from) in copies(&out) {
        let (c0, o0, ..) = planes(&src, &from);
        let (c, o, w, h) = planes(&out, &stem);
        assert_eq!((w, h), (420, 400), "{stem}");
        // nearest neighbour: every (class, id) pair was in the source, or is padding,
        // which is ignore in both
        let mut allowed = pairs(&c0, &o0);
        allowed.insert((255, 255));
        let got = pairs(&c, &o);
        assert!(
            got.is_subset(&allowed),
            "{stem}: {:?}",
            got.difference(&allowed)
        );
        // ids only where the class mask is foreground or ignore
        for (&cv, &ov) in c.iter().zip(&o) {
            assert!(
                ov == 0 || ov == 255 || cv != 0,
                "{stem}: id {ov} on background"
            );
        }
        padded += c
            .iter()
            .zip(&o)
            .filter(|&(&cv, &ov)| (cv, ov) == (255, 255))
            .count();
    }
    assert!(
        padded > 0,
        "no copy was padded; the test pipeline is too gentle"
    );
    check_instances(&out);
}

#[test]
fn images_without_object_masks_augment_as_before() {
    // The same dataset with and without SegmentationObject/: the same images and class
    // masks byte for byte (one random stream, drawn the same way), and copies of images
    // without an object mask record connected components, not objects.
    let t = tempfile::tempdir().unwrap();
    common::objects::convert_instance_example(t.path(), "with");
    let without = common::objects::convert_instance_example(t.path(), "without");
    std::fs::remove_dir_all(without.join("SegmentationObject")).unwrap();
    for name in ["with", "without"] {
        run_ok(
            t.path(),
            &[
                "augment",
                name,
                &format!("{name}-aug"),
                "--copies",
                "3",
                "--seed",
                "4",
            ],
        );
    }
    let a = snapshot(&t.path().join("with-aug"));
    let b = snapshot(&t.path().join("without-aug"));
    let same = |p: &PathBuf| {
        p.starts_with("JPEGImages")
            || p.starts_with("SegmentationClass")
            || p.starts_with("SegmentationClassVisualization")
    };
    let pa: BTreeMap<_, _> = a.iter().filter(|(p, _)| same(p)).collect();
    let pb: BTreeMap<_, _> = b.iter().filter(|(p, _)| same(p)).collect();
    // 3 originals + 9 copies, each an image and a class mask; 9 overlays (copies only)
    assert_eq!(pa.len(), 12 + 12 + 9);
    assert_eq!(pa, pb);
    assert_eq!(
        a.keys()
            .filter(|p| p.starts_with("SegmentationObject"))
            .count(),
        12
    );
    assert!(!b.keys().any(|p| p.starts_with("SegmentationObject")));
    let out = t.path().join("without-aug");
    for e in Dataset::open(&out).unwrap().manifest.images {
        if e.extra.contains_key("augmented_from") {
            let c = dataset::read_index_png(&out.join(format!("SegmentationClass/{}.png", e.stem)))
                .unwrap();
            assert_eq!(
                e.instances,
                segkit_labelme::curate::components::instances(&c.data, c.width, c.height),
                "{}",
                e.stem
            );
        }
    }
}
