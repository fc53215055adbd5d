//! End-to-end tests of `segkit stats|filter|remap|split|crop` through the binary, on dataset
//! folders with real PNG/JPEG files; every check reads the written masks themselves.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::{run_err, run_ok, shared_data};
use segkit_labelme::dataset::{
    read_index_png, write_index_png, write_manifest, Dataset, ImageEntry, Manifest, MaskEncoding,
};
use serde_json::Value;

const CLASSES: [&str; 4] = ["_background_", "scratch", "dent", "crack"];

/// (stem, source, width, height, jpeg, rects (x, y, w, h, value))
type Spec = (
    &'static str,
    &'static str,
    u32,
    u32,
    bool,
    Vec<(u32, u32, u32, u32, u8)>,
);

fn specs() -> Vec<Spec> {
    vec![
        // 50 px scratch, 49 px dent, 200 px crack, 4 px speck, an ignore block
        (
            "p0_front",
            "p0_front.json",
            160,
            120,
            false,
            vec![
                (5, 5, 10, 5, 1),
                (30, 30, 7, 7, 2),
                (60, 40, 20, 10, 3),
                (100, 100, 2, 2, 1),
                (140, 0, 10, 10, 255),
            ],
        ),
        // touching scratch and dent stay two instances; 1 px scratch; 12 px crack
        (
            "p1_back",
            "p1_back.json",
            160,
            120,
            true,
            vec![
                (10, 60, 15, 10, 2),
                (80, 10, 1, 1, 1),
                (90, 90, 3, 4, 3),
                (120, 50, 10, 10, 1),
                (130, 50, 10, 10, 2),
            ],
        ),
        // two 25 px squares touching only at a corner: one 50 px instance under 8-connectivity
        (
            "p2_front",
            "p2_front.json",
            160,
            120,
            false,
            vec![
                (20, 20, 40, 3, 1),
                (100, 80, 5, 10, 2),
                (10, 80, 5, 5, 3),
                (15, 85, 5, 5, 3),
            ],
        ),
        (
            "p3_side",
            "p3_side.json",
            96,
            72,
            true,
            vec![(40, 30, 30, 20, 3), (5, 5, 3, 3, 2)],
        ),
        // two crops of one photo
        (
            "p4a_front",
            "p4_front.json",
            128,
            96,
            false,
            vec![(10, 10, 20, 20, 1), (70, 60, 6, 6, 2)],
        ),
        (
            "p4b_front",
            "p4_front.json",
            128,
            96,
            true,
            vec![(50, 20, 30, 8, 3)],
        ),
        (
            "p5_back",
            "p5_back.json",
            160,
            120,
            false,
            vec![(150, 110, 10, 10, 1), (0, 0, 12, 12, 2)],
        ),
        (
            "p6_side",
            "p6_side.json",
            160,
            120,
            true,
            vec![(70, 70, 9, 9, 3), (20, 90, 4, 4, 1)],
        ),
        // no foreground at all
        ("p7_front", "p7_front.json", 160, 120, false, vec![]),
    ]
}

fn pixel(stem: &str, x: u32, y: u32) -> [u8; 3] {
    let h = stem
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    let n = (x.wrapping_mul(73856093) ^ y.wrapping_mul(19349663) ^ h) % 40;
    [
        (x * 2 + n) as u8,
        (y * 2 + n) as u8,
        ((x + y) as u8).wrapping_add(h as u8),
    ]
}

fn mask_of(w: u32, h: u32, rects: &[(u32, u32, u32, u32, u8)]) -> Vec<u8> {
    let mut m = vec![0u8; (w * h) as usize];
    for &(x, y, rw, rh, v) in rects {
        for yy in y..y + rh {
            for xx in x..x + rw {
                m[(yy * w + xx) as usize] = v;
            }
        }
    }
    m
}

/// Write the test dataset with the dataset module (images as real PNG/JPEG files).
fn make_dataset(root: &Path) -> PathBuf {
    let mut man = Manifest::new(&CLASSES.map(String::from));
    for (stem, source, w, h, jpeg, rects) in specs() {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(pixel(stem, x, y)));
        let file = format!("JPEGImages/{stem}.{}", if jpeg { "jpg" } else { "png" });
        fs::create_dir_all(root.join("JPEGImages")).unwrap();
        img.save(root.join(&file)).unwrap();
        let mask = mask_of(w, h, &rects);
        write_index_png(
            &root.join(format!("SegmentationClass/{stem}.png")),
            w,
            h,
            &mask,
            MaskEncoding::Palette,
        )
        .unwrap();
        man.images.push(ImageEntry {
            stem: stem.into(),
            file,
            width: w,
            height: h,
            views: vec![],
            source: source.into(),
            class_pixels: segkit_labelme::dataset::count_values(&mask),
            instances: vec![],
            extra: Default::default(),
        });
    }
    write_manifest(root, &man).unwrap();
    root.to_path_buf()
}

/// 8-connected components of one value each (independent of the crate's labelling).
fn components(m: &[u8], w: u32, h: u32) -> Vec<(u8, Vec<usize>)> {
    let (w, h) = (w as usize, h as usize);
    let mut seen = vec![false; m.len()];
    let mut out = Vec::new();
    for start in 0..m.len() {
        let v = m[start];
        if seen[start] || v == 0 || v == 255 {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        let mut px = Vec::new();
        while let Some(i) = stack.pop() {
            px.push(i);
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if !seen[j] && m[j] == v {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        px.sort();
        out.push((v, px));
    }
    out
}

fn mask(root: &Path, stem: &str) -> (Vec<u8>, u32, u32) {
    let m = read_index_png(&root.join(format!("SegmentationClass/{stem}.png"))).unwrap();
    (m.data, m.width, m.height)
}

fn manifest(root: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(root.join("dataset.json")).unwrap()).unwrap()
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(root)
        .into_iter()
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect()
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The manifest's class_pixels and instances agree with the mask files written.
fn check_manifest_matches_masks(root: &Path) {
    let ds = Dataset::open(root).unwrap();
    for e in &ds.manifest.images {
        let (m, w, h) = mask(root, &e.stem);
        assert_eq!((w, h), (e.width, e.height), "{}", e.stem);
        let img = image::open(root.join(&e.file)).unwrap();
        assert_eq!((img.width(), img.height()), (w, h), "{}", e.stem);
        assert_eq!(
            e.class_pixels,
            segkit_labelme::dataset::count_values(&m),
            "{}",
            e.stem
        );
        let mut got: Vec<(u32, u64)> = e.instances.iter().map(|i| (i.class, i.area)).collect();
        let mut want: Vec<(u32, u64)> = components(&m, w, h)
            .iter()
            .map(|(v, px)| (*v as u32, px.len() as u64))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", e.stem);
    }
}

#[test]
fn filter_removes_small_instances_and_keeps_the_rest_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    let before = snapshot(&src);
    let out = run_ok(
        t.path(),
        &[
            "filter",
            "in",
            "out",
            "--min-area",
            "50",
            "--per-class",
            "crack=13",
        ],
    );
    assert_eq!(snapshot(&src), before, "input modified");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("scratch: removed"), "{stdout}");
    let dst = t.path().join("out");
    let thresholds = [0usize, 50, 50, 13];
    let mut removed_some = false;
    for (stem, ..) in specs() {
        let (a, w, h) = mask(&src, stem);
        let (b, ..) = mask(&dst, stem);
        for (v, px) in components(&a, w, h) {
            if px.len() >= thresholds[v as usize] {
                assert!(
                    px.iter().all(|&i| b[i] == v),
                    "{stem}: kept instance changed"
                );
            } else {
                removed_some = true;
                assert!(
                    px.iter().all(|&i| b[i] == 0),
                    "{stem}: small instance not removed"
                );
            }
        }
        for (v, px) in components(&b, w, h) {
            assert!(
                px.len() >= thresholds[v as usize],
                "{stem}: {} px instance of {v} left",
                px.len()
            );
        }
        // pixels outside instances untouched (ignore stays ignore)
        for i in 0..a.len() {
            if a[i] == 0 || a[i] == 255 {
                assert_eq!(a[i], b[i]);
            }
        }
        // images copied byte for byte
        let f = fs::read_dir(src.join("JPEGImages")).unwrap();
        for e in f {
            let p = e.unwrap().path();
            assert_eq!(
                fs::read(&p).unwrap(),
                fs::read(dst.join("JPEGImages").join(p.file_name().unwrap())).unwrap()
            );
        }
    }
    assert!(removed_some);
    // the corner-touching pair is one 50 px crack under 8-connectivity: kept
    let (b, ..) = mask(&dst, "p2_front");
    assert_eq!(b[(80 * 160 + 10) as usize], 3);
    check_manifest_matches_masks(&dst);
    let m = manifest(&dst);
    let hist = m["history"].as_array().unwrap();
    assert!(hist.last().unwrap()["command"]
        .as_str()
        .unwrap()
        .starts_with("segkit filter in out --min-area 50"));

    // --action ignore turns them into 255; --drop-empty drops images left empty
    run_ok(
        t.path(),
        &[
            "filter",
            "in",
            "ign",
            "--min-area",
            "50",
            "--action",
            "ignore",
            "--drop-empty",
        ],
    );
    let ign = t.path().join("ign");
    let (a, w, h) = mask(&src, "p0_front");
    let (b, ..) = mask(&ign, "p0_front");
    for (_, px) in components(&a, w, h)
        .into_iter()
        .filter(|(_, px)| px.len() < 50)
    {
        assert!(px.iter().all(|&i| b[i] == 255));
    }
    let stems: Vec<String> = Dataset::open(&ign)
        .unwrap()
        .manifest
        .images
        .iter()
        .map(|e| e.stem.clone())
        .collect();
    assert!(
        !stems.contains(&"p7_front".to_string()),
        "empty image kept: {stems:?}"
    );
    // p3_side keeps its 600 px crack; p6_side has 81 + 16 px: the 81 px crack stays
    assert!(stems.contains(&"p3_side".to_string()));
    check_manifest_matches_masks(&ign);
}

#[test]
fn remap_merges_drops_and_renumbers() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    let before = snapshot(&src);
    run_ok(
        t.path(),
        &[
            "remap",
            "in",
            "lines",
            "--map",
            "scratch,crack=line_defect",
            "--drop",
            "dent",
        ],
    );
    run_ok(
        t.path(),
        &["remap", "in", "bin", "--binary", "--name", "defect"],
    );
    run_ok(
        t.path(),
        &[
            "remap",
            "in",
            "dign",
            "--drop",
            "scratch",
            "--drop-to",
            "ignore",
        ],
    );
    assert_eq!(snapshot(&src), before, "input modified");
    let names = |d: &str| fs::read_to_string(t.path().join(d).join("class_names.txt")).unwrap();
    assert_eq!(names("lines"), "_background_\nline_defect\n");
    assert_eq!(names("bin"), "_background_\ndefect\n");
    assert_eq!(names("dign"), "_background_\ndent\ncrack\n");
    for (stem, ..) in specs() {
        let (a, ..) = mask(&src, stem);
        let (l, ..) = mask(&t.path().join("lines"), stem);
        let (b, ..) = mask(&t.path().join("bin"), stem);
        let (d, ..) = mask(&t.path().join("dign"), stem);
        for i in 0..a.len() {
            let want_l = match a[i] {
                1 | 3 => 1,
                2 => 0,
                v => v,
            };
            let want_b = match a[i] {
                1..=3 => 1,
                v => v,
            };
            let want_d = match a[i] {
                1 => 255,
                2 => 1,
                3 => 2,
                v => v,
            };
            assert_eq!(
                (l[i], b[i], d[i]),
                (want_l, want_b, want_d),
                "{stem} pixel {i}"
            );
        }
    }
    for d in ["lines", "bin", "dign"] {
        check_manifest_matches_masks(&t.path().join(d));
    }
    let m = manifest(&t.path().join("lines"));
    assert_eq!(m["classes"][1]["color"], serde_json::json!([128, 0, 0]));
    let err = run_err(t.path(), &["remap", "in", "x", "--drop", "rust"]);
    assert!(err.contains("rust") && err.contains("scratch"), "{err}");
    assert!(!t.path().join("x").exists());
}

#[test]
fn split_is_disjoint_grouped_stratified_and_seeded() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    let masks_before: BTreeMap<_, _> = snapshot(&src)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("dataset.json"))
        .collect();
    run_ok(t.path(), &["split", "in", "--val", "0.25", "--seed", "0"]);
    let sets = src.join("ImageSets/Segmentation");
    let train = lines(&sets.join("train.txt"));
    let val = lines(&sets.join("val.txt"));
    let ds = Dataset::open(&src).unwrap();
    let all: BTreeSet<String> = ds.manifest.images.iter().map(|e| e.stem.clone()).collect();
    let (ts, vs): (BTreeSet<_>, BTreeSet<_>) = (
        train.iter().cloned().collect(),
        val.iter().cloned().collect(),
    );
    assert!(ts.is_disjoint(&vs));
    assert_eq!(ts.union(&vs).cloned().collect::<BTreeSet<_>>(), all);
    assert!(!vs.is_empty() && vs.len() < all.len());
    let by_stem: BTreeMap<&str, &ImageEntry> = ds
        .manifest
        .images
        .iter()
        .map(|e| (e.stem.as_str(), e))
        .collect();
    // p4a/p4b share a source photo: same side
    assert_eq!(ts.contains("p4a_front"), ts.contains("p4b_front"));
    // every class in >= 2 photos is on both sides (checked from the masks)
    let classes_in = |set: &BTreeSet<String>| -> BTreeSet<u8> {
        set.iter()
            .flat_map(|s| mask(&src, s).0)
            .filter(|&v| v != 0 && v != 255)
            .collect()
    };
    assert_eq!(classes_in(&ts), [1, 2, 3].into());
    assert_eq!(classes_in(&vs), [1, 2, 3].into());
    let sources = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .map(|s| by_stem[s.as_str()].source.clone())
            .collect()
    };
    assert!(sources(&ts).is_disjoint(&sources(&vs)));
    // seeded: same seed, same bytes
    let first = fs::read(sets.join("val.txt")).unwrap();
    run_ok(t.path(), &["split", "in", "--val", "0.25", "--seed", "0"]);
    assert_eq!(fs::read(sets.join("val.txt")).unwrap(), first);
    // masks and images untouched
    let after: BTreeMap<_, _> = snapshot(&src)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("dataset.json") && !p.starts_with(&sets))
        .collect();
    assert_eq!(after, masks_before);
    assert_eq!(manifest(&src)["history"].as_array().unwrap().len(), 2);

    // folds: vals partition the images, groups never straddle
    run_ok(t.path(), &["split", "in", "--folds", "3", "--seed", "1"]);
    let mut seen = BTreeSet::new();
    for k in 0..3 {
        let v: BTreeSet<String> = lines(&sets.join(format!("fold{k}_val.txt")))
            .into_iter()
            .collect();
        let tr: BTreeSet<String> = lines(&sets.join(format!("fold{k}_train.txt")))
            .into_iter()
            .collect();
        assert!(v.is_disjoint(&tr) && v.union(&tr).count() == all.len());
        assert!(sources(&v).is_disjoint(&sources(&tr)));
        assert!(v.iter().all(|s| seen.insert(s.clone())));
    }
    assert_eq!(seen, all);
}

#[test]
fn split_views_and_only_write_a_sub_dataset() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    run_ok(
        t.path(),
        &[
            "split",
            "in",
            "--view",
            "front=*_front*",
            "--view",
            "back=*_back*",
            "--only",
            "front",
            "front",
        ],
    );
    let sets = src.join("ImageSets/Segmentation");
    assert_eq!(
        lines(&sets.join("front.txt")),
        ["p0_front", "p2_front", "p4a_front", "p4b_front", "p7_front"]
    );
    assert_eq!(lines(&sets.join("back.txt")), ["p1_back", "p5_back"]);
    let ds = Dataset::open(&src).unwrap();
    let side = ds
        .manifest
        .images
        .iter()
        .find(|e| e.stem == "p3_side")
        .unwrap();
    assert!(side.views.is_empty());
    let front = Dataset::open(t.path().join("front")).unwrap();
    let stems: Vec<&str> = front
        .manifest
        .images
        .iter()
        .map(|e| e.stem.as_str())
        .collect();
    assert_eq!(
        stems,
        ["p0_front", "p2_front", "p4a_front", "p4b_front", "p7_front"]
    );
    assert!(front.manifest.images.iter().all(|e| e.views == ["front"]));
    assert_eq!(
        mask(&t.path().join("front"), "p2_front"),
        mask(&src, "p2_front")
    );
    check_manifest_matches_masks(&t.path().join("front"));

    // a view map (stem or source file name) and labelme flags kept in the manifest
    fs::write(
        t.path().join("views.csv"),
        "stem,view\np3_side,side\np6_side.json,side\nnope,side\n",
    )
    .unwrap();
    let out = run_ok(t.path(), &["split", "in", "--view-map", "views.csv"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    assert_eq!(lines(&sets.join("side.txt")), ["p3_side", "p6_side"]);
    assert!(!sets.join("front.txt").exists(), "stale view list left");
    let r: Value =
        serde_json::from_slice(&run_ok(t.path(), &["stats", "in", "--json"]).stdout).unwrap();
    assert_eq!(r["views"]["side"]["images"], 2);
    // side views hold p3's 600 px crack + 9 px dent and p6's 81 px crack + 16 px scratch
    assert_eq!(r["views"]["side"]["classes"][3]["pixels"], 681);
    assert_eq!(r["views"]["side"]["classes"][3]["area_max"], 600);
    let mut m = manifest(&src);
    m["images"][0]["flags"] = serde_json::json!({"top": true, "blurry": false});
    fs::write(
        src.join("dataset.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    run_ok(t.path(), &["split", "in", "--view-from-flags"]);
    let ds = Dataset::open(&src).unwrap();
    assert_eq!(ds.manifest.images[0].views, ["top"]);
    assert!(ds.manifest.images[1..].iter().all(|e| e.views.is_empty()));
    assert_eq!(lines(&sets.join("top.txt")), ["p0_front"]);
    // the flags field survives the rewrite
    assert_eq!(manifest(&src)["images"][0]["flags"]["blurry"], false);
}

#[test]
fn val_view_is_a_fixed_held_out_set() {
    // the unet-pytorch EM set: images 24–29 are the held-out set of the issue's medical figure
    let t = tempfile::tempdir().unwrap();
    let med = shared_data().join("unet-pytorch/Medical_Datasets");
    let images = med.join("Images");
    let labels = med.join("Labels");
    run_ok(
        t.path(),
        &[
            "import-masks",
            images.to_str().unwrap(),
            labels.to_str().unwrap(),
            "em",
            "--values",
            "0=membrane,255=_background_",
        ],
    );
    let err = run_err(t.path(), &["split", "em", "--val-view", "heldout"]);
    assert!(
        err.contains("0 of 30") && err.contains("--view heldout"),
        "{err}"
    );
    run_ok(
        t.path(),
        &[
            "split",
            "em",
            "--view",
            "heldout=2[4-9].png",
            "--val-view",
            "heldout",
        ],
    );
    let sets = t.path().join("em/ImageSets/Segmentation");
    let want_val: Vec<String> = (24..30).map(|i| i.to_string()).collect();
    let mut want_train: Vec<String> = (0..24).map(|i| i.to_string()).collect();
    want_train.sort();
    assert_eq!(lines(&sets.join("val.txt")), want_val);
    assert_eq!(lines(&sets.join("train.txt")), want_train);
    assert_eq!(lines(&sets.join("trainval.txt")).len(), 30);
    let err = run_err(
        t.path(),
        &["split", "em", "--val", "0.2", "--val-view", "heldout"],
    );
    assert!(err.contains("--val-view"), "{err}");
}

#[test]
fn crops_contain_their_defects_and_pad_with_ignore() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    let before = snapshot(&src);
    run_ok(t.path(), &["split", "in", "--val", "0.25"]);
    let before_split = snapshot(&src);
    let _ = before;
    run_ok(
        t.path(),
        &[
            "crop",
            "in",
            "crops",
            "--around-defects",
            "--size",
            "64",
            "--context",
            "8",
            "--jitter",
            "6",
            "--merge-within",
            "4",
            "--seed",
            "3",
        ],
    );
    assert_eq!(snapshot(&src), before_split, "input modified");
    let dst = t.path().join("crops");
    let out = Dataset::open(&dst).unwrap();
    let src_ds = Dataset::open(&src).unwrap();
    let mut windows: BTreeMap<String, Vec<[u32; 4]>> = BTreeMap::new();
    for e in &out.manifest.images {
        let c = &e.extra["crop"];
        let parent = c["stem"].as_str().unwrap().to_string();
        let (x, y) = (
            c["x"].as_u64().unwrap() as u32,
            c["y"].as_u64().unwrap() as u32,
        );
        let pe = src_ds
            .manifest
            .images
            .iter()
            .find(|p| p.stem == parent)
            .unwrap();
        assert_eq!(e.source, pe.source);
        let (pm, pw, ph) = mask(&src, &parent);
        let (cm, cw, chh) = mask(&dst, &e.stem);
        assert!(cw >= 64 && chh >= 64);
        let pimg = image::open(src.join(&pe.file)).unwrap().to_rgb8();
        let cimg = image::open(dst.join(&e.file)).unwrap().to_rgb8();
        assert!(e.file.ends_with(".png"));
        for yy in 0..chh {
            for xx in 0..cw {
                let (sx, sy) = (x + xx, y + yy);
                let (cv, cp) = (cm[(yy * cw + xx) as usize], *cimg.get_pixel(xx, yy));
                if sx < pw && sy < ph {
                    assert_eq!(
                        cv,
                        pm[(sy * pw + sx) as usize],
                        "{} mask at {xx},{yy}",
                        e.stem
                    );
                    assert_eq!(cp, *pimg.get_pixel(sx, sy), "{} image at {xx},{yy}", e.stem);
                } else {
                    assert_eq!(cv, 255, "{} padding is not ignore", e.stem);
                    assert_eq!(cp.0, [0, 0, 0]);
                }
            }
        }
        windows.entry(parent).or_default().push([x, y, cw, chh]);
    }
    // every defect lies inside some crop of its photo
    for (stem, ..) in specs() {
        let (m, w, h) = mask(&src, stem);
        for (_, px) in components(&m, w, h) {
            let ok = windows.get(stem).is_some_and(|ws| {
                ws.iter().any(|&[x, y, cw, ch]| {
                    px.iter().all(|&i| {
                        let (px_, py) = ((i as u32) % w, (i as u32) / w);
                        px_ >= x && px_ < x + cw && py >= y && py < y + ch
                    })
                })
            });
            assert!(ok, "{stem}: a defect is in no crop");
        }
    }
    assert!(
        !windows.contains_key("p7_front"),
        "a crop of an image without defects"
    );
    // p3_side is 96x72 < 64? no: but a 64 window fits; crops of val images stay in val
    let val = lines(&dst.join("ImageSets/Segmentation/val.txt"));
    let src_val: BTreeSet<String> = lines(&src.join("ImageSets/Segmentation/val.txt"))
        .into_iter()
        .collect();
    for s in &val {
        let e = out.manifest.images.iter().find(|e| &e.stem == s).unwrap();
        assert!(src_val.contains(e.extra["crop"]["stem"].as_str().unwrap()));
    }
    check_manifest_matches_masks(&dst);
    // seeded: same seed, same bytes
    run_ok(
        t.path(),
        &[
            "crop",
            "in",
            "crops2",
            "--around-defects",
            "--size",
            "64",
            "--context",
            "8",
            "--jitter",
            "6",
            "--merge-within",
            "4",
            "--seed",
            "3",
        ],
    );
    let strip = |root: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(root)
            .into_iter()
            .filter(|(p, _)| !p.ends_with("dataset.json"))
            .map(|(p, b)| (p.strip_prefix(root).unwrap().to_path_buf(), b))
            .collect()
    };
    assert_eq!(strip(&dst), strip(&t.path().join("crops2")));
    // and the same with one thread
    let one = common::segkit()
        .current_dir(t.path())
        .env("RAYON_NUM_THREADS", "1")
        .args([
            "crop",
            "in",
            "crops1",
            "--around-defects",
            "--size",
            "64",
            "--context",
            "8",
        ])
        .args(["--jitter", "6", "--merge-within", "4", "--seed", "3"])
        .output()
        .unwrap();
    assert!(one.status.success());
    assert_eq!(strip(&dst), strip(&t.path().join("crops1")));
}

#[test]
fn tiles_cover_the_image_and_pad_small_ones() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    run_ok(
        t.path(),
        &[
            "crop",
            "in",
            "tiles",
            "--tile",
            "80",
            "--overlap",
            "0.25",
            "--keep-empty",
            "1",
        ],
    );
    let dst = t.path().join("tiles");
    let out = Dataset::open(&dst).unwrap();
    for (stem, _, w, h, ..) in specs() {
        let (pm, ..) = mask(&src, stem);
        let mut covered = vec![false; (w * h) as usize];
        for e in out
            .manifest
            .images
            .iter()
            .filter(|e| e.extra["crop"]["stem"] == stem)
        {
            let (x, y) = (
                e.extra["crop"]["x"].as_u64().unwrap() as u32,
                e.extra["crop"]["y"].as_u64().unwrap() as u32,
            );
            assert_eq!((e.width, e.height), (80, 80));
            let (cm, ..) = mask(&dst, &e.stem);
            for yy in 0..80 {
                for xx in 0..80 {
                    let (sx, sy) = (x + xx, y + yy);
                    let v = cm[(yy * 80 + xx) as usize];
                    if sx < w && sy < h {
                        covered[(sy * w + sx) as usize] = true;
                        assert_eq!(v, pm[(sy * w + sx) as usize]);
                    } else {
                        assert_eq!(v, 255);
                    }
                }
            }
        }
        assert!(
            covered.iter().all(|&c| c),
            "{stem}: tiles do not cover the image"
        );
    }
    check_manifest_matches_masks(&dst);

    // keep-empty 0: every tile with foreground, no background-only tile
    run_ok(
        t.path(),
        &[
            "crop",
            "in",
            "fg",
            "--tile",
            "80",
            "--overlap",
            "0.25",
            "--keep-empty",
            "0",
            "--format",
            "jpeg",
        ],
    );
    let fg = Dataset::open(t.path().join("fg")).unwrap();
    let n_all = out
        .manifest
        .images
        .iter()
        .filter(|e| e.class_pixels.keys().any(|&v| v != 0 && v != 255))
        .count();
    assert_eq!(fg.manifest.images.len(), n_all);
    assert!(fg.manifest.images.iter().all(|e| e.file.ends_with(".jpg")));
    assert!(fg
        .manifest
        .images
        .iter()
        .all(|e| e.class_pixels.keys().any(|&v| v != 0 && v != 255)));
    // an image smaller than the tile: one padded tile
    run_ok(
        t.path(),
        &["crop", "in", "big", "--tile", "200", "--keep-empty", "1"],
    );
    let big = Dataset::open(t.path().join("big")).unwrap();
    assert_eq!(big.manifest.images.len(), specs().len());
    let e = big
        .manifest
        .images
        .iter()
        .find(|e| e.stem.starts_with("p3_side"))
        .unwrap();
    let (m, ..) = mask(&t.path().join("big"), &e.stem);
    assert_eq!(m.iter().filter(|&&v| v == 255).count(), 200 * 200 - 96 * 72);
}

#[test]
fn stats_reports_classes_weights_and_traps() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    let out = run_ok(t.path(), &["stats", "in", "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    // recompute from the masks
    let mut px = [0u64; 4];
    let mut inst = [0usize; 4];
    let mut areas: Vec<Vec<u64>> = vec![vec![]; 4];
    for (stem, _, w, h, ..) in specs() {
        let (m, ..) = mask(&src, stem);
        for v in &m {
            if (*v as usize) < 4 {
                px[*v as usize] += 1;
            }
        }
        for (v, p) in components(&m, w, h) {
            inst[v as usize] += 1;
            areas[v as usize].push(p.len() as u64);
        }
    }
    let total: u64 = px.iter().sum();
    for c in 0..4 {
        let rc = &r["classes"][c];
        assert_eq!(rc["pixels"].as_u64().unwrap(), px[c]);
        assert_eq!(rc["instances"].as_u64().unwrap() as usize, inst[c]);
        assert!((rc["pixel_share"].as_f64().unwrap() - px[c] as f64 / total as f64).abs() < 1e-9);
        if c > 0 {
            assert_eq!(rc["area_min"].as_u64(), areas[c].iter().min().copied());
            assert_eq!(rc["area_max"].as_u64(), areas[c].iter().max().copied());
        }
    }
    // rarer classes weigh more
    let mf: Vec<f64> = r["weights"]["median_frequency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let is: Vec<f64> = r["weights"]["inverse_sqrt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(mf.len(), 4);
    assert!(mf[0] < mf[1] && is[0] < is[1], "{mf:?} {is:?}");
    let kinds: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["no_foreground"], "{r:#}");
    assert!(r["warnings"][0]["fix"]
        .as_str()
        .unwrap()
        .contains("--drop-empty"));
    let text = run_ok(t.path(), &["stats", "in"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("class_weights = [") && text.contains("scratch"),
        "{text}"
    );
}

#[test]
fn stats_flags_binary_255_masks_and_the_fix_works() {
    // real 0/255 masks from unet-pytorch's medical dataset
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("med");
    let data = shared_data().join("unet-pytorch/Medical_Datasets");
    let mut man = Manifest::new(&["_background_".into(), "membrane".into()]);
    for i in 0..4 {
        let img = data.join(format!("Images/{i}.png"));
        fs::create_dir_all(root.join("JPEGImages")).unwrap();
        fs::create_dir_all(root.join("SegmentationClass")).unwrap();
        fs::copy(&img, root.join(format!("JPEGImages/{i}.png"))).unwrap();
        let lab = image::open(data.join(format!("Labels/{i}.png")))
            .unwrap()
            .to_luma8();
        lab.save(root.join(format!("SegmentationClass/{i}.png")))
            .unwrap();
        man.images.push(ImageEntry {
            stem: i.to_string(),
            file: format!("JPEGImages/{i}.png"),
            width: lab.width(),
            height: lab.height(),
            views: vec![],
            source: format!("{i}.png"),
            class_pixels: Default::default(),
            instances: vec![],
            extra: Default::default(),
        });
    }
    // one RGB mask and one size mismatch, in a second copy
    write_manifest(&root, &man).unwrap();
    let out = run_ok(t.path(), &["stats", "med", "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "binary_255")
        .expect("binary_255 warning");
    let fix = w["fix"].as_str().unwrap();
    assert_eq!(fix, "segkit remap med OUT --value 255=1");
    let args: Vec<&str> = fix
        .split(' ')
        .skip(1)
        .map(|a| if a == "OUT" { "fixed" } else { a })
        .collect();
    run_ok(t.path(), &args);
    let r2: Value =
        serde_json::from_slice(&run_ok(t.path(), &["stats", "fixed", "--json"]).stdout).unwrap();
    assert!(
        r2["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["kind"] != "binary_255"),
        "{r2:#}"
    );
    assert!(r2["classes"][1]["pixels"].as_u64().unwrap() > 0);
    assert_eq!(r2["ignore_pixels"].as_u64().unwrap(), 0);

    // RGB masks and size mismatches are named, with a fix
    image::RgbImage::new(512, 512)
        .save(root.join("SegmentationClass/1.png"))
        .unwrap();
    image::GrayImage::new(500, 512)
        .save(root.join("SegmentationClass/2.png"))
        .unwrap();
    let r3: Value =
        serde_json::from_slice(&run_ok(t.path(), &["stats", "med", "--json"]).stdout).unwrap();
    let find = |k: &str| {
        r3["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == k)
            .cloned()
    };
    let rgb = find("rgb_masks").expect("rgb warning");
    assert_eq!(rgb["files"], serde_json::json!(["SegmentationClass/1.png"]));
    let mm = find("size_mismatch").expect("size mismatch warning");
    assert!(mm["files"][0].as_str().unwrap().contains("500x512"), "{mm}");
}

#[test]
fn bad_files_are_named_and_do_not_stop_the_others() {
    let t = tempfile::tempdir().unwrap();
    let src = make_dataset(&t.path().join("in"));
    fs::write(src.join("SegmentationClass/p1_back.png"), b"not a png").unwrap();
    let err = run_err(t.path(), &["filter", "in", "out", "--min-area", "10"]);
    assert!(err.contains("p1_back.png"), "{err}");
    let out = Dataset::open(t.path().join("out")).unwrap();
    assert_eq!(out.manifest.images.len(), specs().len() - 1);
    // OUT that is not empty is refused, and left alone
    let err = run_err(t.path(), &["remap", "in", "out", "--binary"]);
    assert!(
        err.contains("out") && err.contains("not an empty folder"),
        "{err}"
    );
    assert_eq!(
        Dataset::open(t.path().join("out"))
            .unwrap()
            .manifest
            .images
            .len(),
        specs().len() - 1
    );
    // no staging folder left behind
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".segkit"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- object masks (SegmentationObject/) through filter, remap, crop and split --only ----

/// What each derived image should be, computed by numpy + Pillow from the input masks, the
/// way a user would write it; `cases` are JSON objects with `cls`, `obj` (input class and
/// object mask), `op` (`filter`: `min_area`, `per_class` {class id: px}, `fill`; `remap`:
/// `lut` (new value per old value); `crop`: `x`, `y`, `w`, `h`), `got_obj` (the derived
/// object mask, for its mode) and `out` (a path prefix: the expected masks are written to
/// `out.cls` and `out.obj` as raw bytes). Returns, per case, the instances of the expected
/// masks (one per object id on some class: majority class, ties to the lower id) and the
/// derived object mask's PIL mode.
fn numpy_expect(cases: &[Value]) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
import numpy as np
from PIL import Image

out = []
for case in json.load(open(sys.argv[1])):
    cls = np.array(Image.open(case["cls"]))
    obj = np.array(Image.open(case["obj"]))
    op = case["op"]
    if op == "filter":
        removed = []
        for i in range(1, 255):
            m = obj == i
            c = majority(cls, m) if m.any() else None
            if c is None:
                continue
            if m.sum() < case["per_class"].get(str(c), case["min_area"]):
                removed.append(m)
        for m in removed:
            cls[m & (cls != 0) & (cls != 255)] = case["fill"]
            obj[m] = 0
    elif op == "remap":
        lut = np.array(case["lut"], dtype=np.int64)
        new = lut[cls]
        assert (new >= 0).all()
        obj[((new == 0) & (cls != 0)) | ((new == 255) & (cls != 255))] = 0
        cls = new.astype(np.uint8)
    elif op == "crop":
        x, y, w, h = case["x"], case["y"], case["w"], case["h"]
        def cut(a):
            c = np.full((h, w), 255, dtype=np.uint8)
            part = a[y:y + h, x:x + w]
            c[:part.shape[0], :part.shape[1]] = part
            return c
        cls, obj = cut(cls), cut(obj)
    elif op != "copy":
        raise SystemExit("unknown op " + op)
    open(case["out"] + ".cls", "wb").write(np.ascontiguousarray(cls, dtype=np.uint8).tobytes())
    open(case["out"] + ".obj", "wb").write(np.ascontiguousarray(obj, dtype=np.uint8).tobytes())
    out.append({"instances": objects(cls, obj), "mode": Image.open(case["got_obj"]).mode})
print(json.dumps(out))
"#;
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("cases.json");
    fs::write(&job, serde_json::to_vec(cases).unwrap()).unwrap();
    let out = std::process::Command::new(common::oracle_python())
        .arg("-c")
        .arg(format!("{}{SCRIPT}", common::objects::PY_OBJECTS))
        .arg(&job)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Check every image of the derived dataset `out` against numpy: `case(entry)` names the
/// input image (stem) and the operation. Class and object masks must equal numpy's, the
/// object masks be P mode, `instances` be numpy's objects and `class_pixels` the class
/// mask's counts. Returns the expected object masks by output stem.
fn check_objects_against_numpy(
    src: &Path,
    out: &Path,
    case: impl Fn(&ImageEntry) -> (String, Value),
) -> BTreeMap<String, Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Dataset::open(out).unwrap();
    assert!(!ds.manifest.images.is_empty(), "{}", out.display());
    let layer = |root: &Path, l: &str, stem: &str| root.join(format!("{l}/{stem}.png"));
    let cases: Vec<Value> = ds
        .manifest
        .images
        .iter()
        .map(|e| {
            let (from, mut c) = case(e);
            c["cls"] = layer(src, "SegmentationClass", &from)
                .to_str()
                .unwrap()
                .into();
            c["obj"] = layer(src, "SegmentationObject", &from)
                .to_str()
                .unwrap()
                .into();
            c["got_obj"] = layer(out, "SegmentationObject", &e.stem)
                .to_str()
                .unwrap()
                .into();
            c["out"] = tmp.path().join(&e.stem).to_str().unwrap().into();
            c
        })
        .collect();
    let want = numpy_expect(&cases);
    let mut objects = BTreeMap::new();
    for (e, want) in ds.manifest.images.iter().zip(&want) {
        let cls = read_index_png(&layer(out, "SegmentationClass", &e.stem)).unwrap();
        let obj = read_index_png(&layer(out, "SegmentationObject", &e.stem)).unwrap();
        let want_cls = fs::read(tmp.path().join(format!("{}.cls", e.stem))).unwrap();
        let want_obj = fs::read(tmp.path().join(format!("{}.obj", e.stem))).unwrap();
        assert_eq!((obj.width, obj.height), (e.width, e.height), "{}", e.stem);
        assert!(cls.data == want_cls, "{}: class mask differs", e.stem);
        assert!(obj.data == want_obj, "{}: object mask differs", e.stem);
        assert_eq!(want["mode"], "P", "{}", e.stem);
        assert_eq!(
            serde_json::to_value(&e.instances).unwrap(),
            want["instances"],
            "{}",
            e.stem
        );
        assert_eq!(
            e.class_pixels,
            segkit_labelme::dataset::count_values(&cls.data),
            "{}",
            e.stem
        );
        objects.insert(e.stem.clone(), want_obj);
    }
    objects
}

/// Object ids present in a mask (1..=254).
fn ids_in(mask: &[u8]) -> BTreeSet<u8> {
    mask.iter()
        .copied()
        .filter(|&v| v != 0 && v != 255)
        .collect()
}

#[test]
fn object_masks_survive_filter_remap_crop_and_only() {
    let t = tempfile::tempdir().unwrap();
    let src = common::objects::convert_instance_example(t.path(), "voc");
    let before = snapshot(&src);
    let input = Dataset::open(&src).unwrap();
    let class_id = |name: &str| {
        input
            .manifest
            .classes
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .id
    };
    let (person, bottle, bus) = (class_id("person"), class_id("bottle"), class_id("bus"));
    let obj_of = |root: &Path, stem: &str| {
        read_index_png(&root.join(format!("SegmentationObject/{stem}.png")))
            .unwrap()
            .data
    };

    // filter: objects below 1000 px (the bottle, the small person), persons below 12000 px
    // (two of the three touching people: one component of the class mask, which a
    // component filter would keep whole) and buses below 20000 px become ignore
    run_ok(
        t.path(),
        &[
            "filter",
            "voc",
            "filtered",
            "--min-area",
            "1000",
            "--per-class",
            "person=12000",
            "--per-class",
            "bus=20000",
            "--action",
            "ignore",
        ],
    );
    let per_class = serde_json::json!({ person.to_string(): 12000, bus.to_string(): 20000 });
    let filtered = t.path().join("filtered");
    check_objects_against_numpy(&src, &filtered, |e| {
        let op = serde_json::json!({"op": "filter", "min_area": 1000, "per_class": per_class,
                                    "fill": 255});
        (e.stem.clone(), op)
    });
    let out = Dataset::open(&filtered).unwrap();
    let kinds = |ds: &Dataset, stem: &str| -> Vec<(u32, u64)> {
        let e = ds.manifest.images.iter().find(|e| e.stem == stem).unwrap();
        e.instances.iter().map(|i| (i.class, i.area)).collect()
    };
    // 2011_000006: of the four people only the 14691 px one is left, and its class pixels
    assert_eq!(
        kinds(&out, "2011_000006")
            .iter()
            .filter(|i| i.0 == person)
            .count(),
        1
    );
    assert_eq!(
        kinds(&input, "2011_000006").len() - 3,
        kinds(&out, "2011_000006").len()
    );
    assert!(kinds(&input, "2011_000003").iter().any(|i| i.0 == bottle));
    assert!(!kinds(&out, "2011_000003").iter().any(|i| i.0 == bottle));
    let buses = |ds: &Dataset| -> Vec<(u32, u64)> {
        let k = kinds(ds, "2011_000025");
        k.into_iter().filter(|i| i.0 == bus).collect()
    };
    assert_eq!(buses(&input).len(), 2);
    assert_eq!(buses(&out), [(bus, 102450)]);
    assert_eq!(
        ids_in(&obj_of(&src, "2011_000006")).len() - 3,
        ids_in(&obj_of(&filtered, "2011_000006")).len()
    );

    // remap: chair and sofa merged into seat (their ids kept), person dropped (its object
    // pixels cleared)
    run_ok(
        t.path(),
        &[
            "remap",
            "voc",
            "remapped",
            "--map",
            "chair,sofa=seat",
            "--drop",
            "person",
        ],
    );
    let remapped = t.path().join("remapped");
    let new_names = Dataset::open(&remapped).unwrap().manifest.class_names();
    let want_names: Vec<String> = input
        .manifest
        .class_names()
        .into_iter()
        .filter(|n| n != "person" && n != "sofa")
        .map(|n| if n == "chair" { "seat".into() } else { n })
        .collect();
    assert_eq!(new_names, want_names);
    let mut lut = vec![-1i64; 256];
    lut[255] = 255;
    for c in &input.manifest.classes {
        let to = match c.name.as_str() {
            "person" => "_background_",
            "chair" | "sofa" => "seat",
            n => n,
        };
        lut[c.id as usize] = new_names.iter().position(|n| n == to).unwrap() as i64;
    }
    check_objects_against_numpy(&src, &remapped, |e| {
        (
            e.stem.clone(),
            serde_json::json!({"op": "remap", "lut": lut}),
        )
    });
    let seat = new_names.iter().position(|n| n == "seat").unwrap() as u32;
    let re = Dataset::open(&remapped).unwrap();
    assert_eq!(
        kinds(&re, "2011_000006"),
        [(seat, 44403), (seat, 14001)],
        "the chair and the sofa, as seats, and no person"
    );

    // crops around defects and tiles (400 px tiles of 500x375/338 photos: padded rows)
    let crop_case = |e: &ImageEntry| {
        let c = &e.extra["crop"];
        let op = serde_json::json!({"op": "crop", "x": c["x"], "y": c["y"],
                                    "w": c["width"], "h": c["height"]});
        (c["stem"].as_str().unwrap().to_string(), op)
    };
    for (name, args) in [
        ("defects", vec!["--around-defects", "--size", "128"]),
        ("tiles", vec!["--tile", "400", "--overlap", "0.25"]),
    ] {
        let mut a = vec!["crop", "voc", name];
        a.extend(args);
        run_ok(t.path(), &a);
        let objects = check_objects_against_numpy(&src, &t.path().join(name), crop_case);
        // every crop has objects, and padding is ignore in the object mask too
        assert!(objects.values().all(|o| !ids_in(o).is_empty()), "{name}");
        if name == "tiles" {
            let padded = Dataset::open(t.path().join(name)).unwrap();
            let e = padded
                .manifest
                .images
                .iter()
                .find(|e| e.stem == "2011_000006_x0_y0")
                .expect("a padded tile");
            let o = &objects[&e.stem];
            assert!(o[375 * 400..].iter().all(|&v| v == 255));
        }
    }

    // split --only: object masks copied as they are
    run_ok(
        t.path(),
        &[
            "split",
            "voc",
            "--view",
            "a=2011_00000*",
            "--only",
            "a",
            "only",
        ],
    );
    let only = t.path().join("only");
    check_objects_against_numpy(&src, &only, |e| {
        (e.stem.clone(), serde_json::json!({"op": "copy"}))
    });
    for stem in ["2011_000003", "2011_000006"] {
        let name = format!("SegmentationObject/{stem}.png");
        assert!(fs::read(src.join(&name)).unwrap() == fs::read(only.join(&name)).unwrap());
    }
    assert!(!only.join("SegmentationObject/2011_000025.png").exists());

    // inputs never modified (split only tags views and writes lists in place)
    let after = snapshot(&src);
    for (p, bytes) in &before {
        if !p.ends_with("dataset.json") {
            assert!(after.get(p) == Some(bytes), "{} modified", p.display());
        }
    }
}

#[test]
fn a_wrong_sized_object_mask_fails_its_image_only() {
    let t = tempfile::tempdir().unwrap();
    let src = common::objects::convert_instance_example(t.path(), "voc");
    // 2011_000025: an object mask of another size than its image (500x375)
    let broken = src.join("SegmentationObject/2011_000025.png");
    write_index_png(
        &broken,
        320,
        240,
        &vec![1; 320 * 240],
        MaskEncoding::Palette,
    )
    .unwrap();
    // 2011_000003: no object mask, so today's output: components of its class mask
    fs::remove_file(src.join("SegmentationObject/2011_000003.png")).unwrap();
    run_ok(t.path(), &["split", "voc", "--view", "all=*"]);

    let runs: [&[&str]; 4] = [
        &["filter", "voc", "filtered", "--min-area", "1000"],
        &["remap", "voc", "remapped", "--drop", "chair"],
        &["crop", "voc", "tiles", "--tile", "256"],
        &["split", "voc", "--only", "all", "only"],
    ];
    for args in runs {
        let name = if args[0] == "split" { args[4] } else { args[2] };
        let err = run_err(t.path(), args);
        let line = err
            .lines()
            .find(|l| l.contains("SegmentationObject/2011_000025.png"))
            .unwrap_or_else(|| panic!("{args:?}: no line naming {}:\n{err}", broken.display()));
        assert!(
            line.contains("320x240") && line.contains("500x375"),
            "{args:?}: {line}"
        );
        let out = t.path().join(name);
        let ds = Dataset::open(&out).unwrap();
        let stems: BTreeSet<String> = ds
            .manifest
            .images
            .iter()
            .map(|e| e.stem.split("_x").next().unwrap().to_string())
            .collect();
        assert_eq!(
            stems,
            BTreeSet::from(["2011_000003".to_string(), "2011_000006".to_string()]),
            "{args:?}"
        );
        // nothing of the failed image was written
        for f in walk(&out) {
            assert!(
                !f.to_string_lossy().contains("2011_000025"),
                "{}",
                f.display()
            );
        }
        for e in &ds.manifest.images {
            let obj = out.join(format!("SegmentationObject/{}.png", e.stem));
            if e.stem.starts_with("2011_000003") {
                assert!(!obj.exists(), "{}", obj.display());
                let (m, w, h) = mask(&out, &e.stem);
                let mut got: Vec<(u32, u64)> =
                    e.instances.iter().map(|i| (i.class, i.area)).collect();
                let mut want: Vec<(u32, u64)> = components(&m, w, h)
                    .iter()
                    .map(|(v, px)| (*v as u32, px.len() as u64))
                    .collect();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{args:?} {}", e.stem);
            } else {
                assert!(obj.exists(), "{}", obj.display());
            }
        }
    }
}

// ---- stats on datasets with object masks ----

/// (instances, area_min, area_median, area_max) of one class.
type InstanceSummary = (u64, Option<u64>, Option<u64>, Option<u64>);

/// `stats --json` of `root`: the instance summary per class id, and the whole report.
fn stats_instances(dir: &Path, root: &Path) -> (Vec<InstanceSummary>, Value) {
    let out = run_ok(dir, &["stats", root.to_str().unwrap(), "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let per_class = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["instances"].as_u64().unwrap(),
                c["area_min"].as_u64(),
                c["area_median"].as_u64(),
                c["area_max"].as_u64(),
            )
        })
        .collect();
    (per_class, r)
}

/// (count, min, lower median, max) of `areas`.
fn summary(mut areas: Vec<u64>) -> InstanceSummary {
    areas.sort();
    let median = (!areas.is_empty()).then(|| areas[areas.len().div_ceil(2) - 1]);
    (
        areas.len() as u64,
        areas.first().copied(),
        median,
        areas.last().copied(),
    )
}

#[test]
fn stats_counts_objects_where_an_image_has_an_object_mask() {
    let t = tempfile::tempdir().unwrap();
    let src = common::objects::convert_instance_example(t.path(), "voc");
    let ds = Dataset::open(&src).unwrap();
    let id = |name: &str| {
        ds.manifest
            .classes
            .iter()
            .position(|c| c.name == name)
            .unwrap()
    };
    let (person, sofa, bus) = (id("person"), id("sofa"), id("bus"));

    // The three people of 2011_000006 touch: one connected component, three objects.
    let (m, w, h) = mask(&src, "2011_000006");
    let big_person_components = components(&m, w, h)
        .into_iter()
        .filter(|(v, px)| *v as usize == person && px.len() > 5000)
        .count();
    assert_eq!(big_person_components, 1);
    let e6 = ds
        .manifest
        .images
        .iter()
        .find(|e| e.stem == "2011_000006")
        .unwrap();
    let big_person_objects = e6
        .instances
        .iter()
        .filter(|i| i.class as usize == person && i.area > 5000)
        .count();
    assert_eq!(big_person_objects, 3);

    // stats counts exactly what dataset.json records, class by class, areas included.
    let (got, _) = stats_instances(t.path(), &src);
    assert_eq!(got.len(), ds.num_classes());
    for (c, got) in got.iter().enumerate() {
        let areas: Vec<u64> = ds
            .manifest
            .images
            .iter()
            .flat_map(|e| &e.instances)
            .filter(|i| i.class as usize == c)
            .map(|i| i.area)
            .collect();
        let want = if c == 0 {
            (0, None, None, None)
        } else {
            summary(areas)
        };
        assert_eq!(*got, want, "class {}", ds.manifest.classes[c].name);
    }
    // ... which is not what components would give: the two buses of 2011_000025 touch, the
    // sofa of 2011_000006 is cut in four pieces by the people in front of it.
    assert_eq!((got[bus].0, got[sofa].0), (2, 1));
    let comps = |root: &Path, stem: &str, class: usize| {
        let (m, w, h) = mask(root, stem);
        components(&m, w, h)
            .into_iter()
            .filter(|(v, _)| *v as usize == class)
            .map(|(_, px)| px.len() as u64)
            .collect::<Vec<_>>()
    };
    assert_eq!(comps(&src, "2011_000025", bus).len(), 1);
    assert_eq!(comps(&src, "2011_000006", sofa).len(), 4);

    // An image without an object mask is counted by components, the others by objects; a
    // broken object mask is reported by name and its image counted by components.
    let mixed = t.path().join("mixed");
    fs::create_dir(&mixed).unwrap();
    for p in walk(&src) {
        let rel = p.strip_prefix(&src).unwrap();
        fs::create_dir_all(mixed.join(rel).parent().unwrap()).unwrap();
        fs::copy(&p, mixed.join(rel)).unwrap();
    }
    fs::remove_file(mixed.join("SegmentationObject/2011_000025.png")).unwrap();
    fs::write(
        mixed.join("SegmentationObject/2011_000003.png"),
        b"not a png",
    )
    .unwrap();
    let before = snapshot(&mixed);
    let (got, r) = stats_instances(t.path(), &mixed);
    assert_eq!(snapshot(&mixed), before, "stats modified its input");
    let errors: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("SegmentationObject/2011_000003.png"),
        "{errors:?}"
    );
    assert_eq!(r["images_read"], 3);
    for (c, got) in got.iter().enumerate().skip(1) {
        let mut areas = comps(&mixed, "2011_000025", c);
        areas.extend(comps(&mixed, "2011_000003", c));
        areas.extend(
            e6.instances
                .iter()
                .filter(|i| i.class as usize == c)
                .map(|i| i.area),
        );
        assert_eq!(
            *got,
            summary(areas),
            "class {}",
            ds.manifest.classes[c].name
        );
    }
}
