//! End-to-end tests of `segkit convert` on the shared labelme examples, checked against the
//! labelme oracle (Pillow 13.0.0), the masks shipped with the examples, and the numbers in
//! ../shared/data/README.md.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{oracle_python, run_err, run_ok, segkit, shared_data};
use segkit_labelme_read::*;

/// Readers for what convert wrote (the library's own contract readers).
mod segkit_labelme_read {
    pub use segkit_labelme::dataset::{read_index_png, Dataset};
}

/// `segkit convert INPUT OUT EXTRA…` run in `dir`; must succeed.
fn convert_ok(dir: &Path, input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    run_ok(dir, &convert_args(input, out, extra))
}

/// `segkit convert INPUT OUT EXTRA…` run in `dir`; must fail; returns stderr.
fn convert_err(dir: &Path, input: &Path, out: &Path, extra: &[&str]) -> String {
    run_err(dir, &convert_args(input, out, extra))
}

fn convert_args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["convert", input.to_str().unwrap(), out.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

fn examples() -> PathBuf {
    shared_data().join("labelme-examples")
}

/// Run the oracle over `jsons` (one Python process); returns the folder of its PNGs.
fn oracle(labels: &Path, jsons: &[PathBuf], out: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/convert.py");
    let dir = out.join("oracle");
    let status = Command::new(oracle_python())
        .arg(script)
        .arg(labels)
        .arg(&dir)
        .args(jsons)
        .status()
        .expect("run the oracle");
    assert!(status.success(), "oracle failed");
    dir
}

fn mask(path: &Path) -> Vec<u8> {
    read_index_png(path).unwrap_or_else(|e| panic!("{e}")).data
}

fn diff_pixels(a: &[u8], b: &[u8], width: usize) -> Vec<(usize, usize)> {
    assert_eq!(a.len(), b.len());
    (0..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| (i % width, i / width))
        .collect()
}

fn jsons_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn semantic_examples_match_the_oracle_and_labelme2voc() {
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("semantic_segmentation");
    let out = tmp.path().join("voc");
    let labels = src.join("labels.txt");
    convert_ok(
        tmp.path(),
        &src.join("data_annotated"),
        &out,
        &["--labels", labels.to_str().unwrap()],
    );
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.images.len(), 3);
    let names = std::fs::read_to_string(out.join("class_names.txt")).unwrap();
    let shipped_names =
        std::fs::read_to_string(src.join("data_dataset_voc/class_names.txt")).unwrap();
    assert_eq!(names.trim(), shipped_names.trim());
    let jsons = jsons_in(&src.join("data_annotated"));
    let oracle_dir = oracle(&labels, &jsons, tmp.path());
    for e in &ds.manifest.images {
        let ours = mask(&ds.mask_path(&e.stem));
        let theirs = mask(&oracle_dir.join(format!("{}.png", e.stem)));
        assert_eq!(
            diff_pixels(&ours, &theirs, e.width as usize),
            [],
            "{} vs oracle",
            e.stem
        );
        // labelme2voc's shipped output (older Pillow): one known pixel in 2011_000006
        let shipped = mask(&src.join(format!("data_dataset_voc/SegmentationClass/{}.png", e.stem)));
        let expected: &[(usize, usize)] = if e.stem == "2011_000006" {
            &[(104, 290)]
        } else {
            &[]
        };
        assert_eq!(
            diff_pixels(&ours, &shipped, e.width as usize),
            expected,
            "{}",
            e.stem
        );
        // JPEG bytes copied, not re-encoded
        let copied = std::fs::read(ds.image_path(e)).unwrap();
        assert_eq!(
            copied,
            std::fs::read(src.join(format!("data_annotated/{}.jpg", e.stem))).unwrap()
        );
        assert!(out
            .join(format!("SegmentationClassVisualization/{}.jpg", e.stem))
            .is_file());
        assert_eq!(
            e.class_pixels.values().sum::<u64>(),
            e.width as u64 * e.height as u64
        );
    }
    assert!(
        ds.manifest
            .images
            .iter()
            .any(|e| e.class_pixels.contains_key(&255)),
        "__ignore__ regions"
    );
    let split = ds.split("trainval").unwrap().unwrap();
    assert_eq!(split, ["2011_000003", "2011_000006", "2011_000025"]);
    assert!(ds.manifest.history[0].command.contains("convert"));
}

#[test]
fn instance_examples_reproduce_labelme2voc_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("instance_segmentation");
    let out = common::objects::convert_instance_example(tmp.path(), "voc");
    for stem in ["2011_000003", "2011_000006", "2011_000025"] {
        let ours = mask(&out.join(format!("SegmentationObject/{stem}.png")));
        let shipped = mask(&src.join(format!("data_dataset_voc/SegmentationObject/{stem}.png")));
        let diff = diff_pixels(&ours, &shipped, 500);
        if stem == "2011_000006" {
            // the older-Pillow pixel again: person (object 1) with Pillow 13, the oracle;
            // sofa (object 7) in the shipped masks
            assert_eq!(diff, [(104, 290)]);
            let i = 290 * 500 + 104;
            assert_eq!((ours[i], shipped[i]), (1, 7));
        } else {
            assert!(diff.is_empty(), "{stem}: {diff:?}");
        }
        assert!(!out
            .join(format!("SegmentationClassVisualization/{stem}.jpg"))
            .exists());
    }
}

#[test]
fn primitives_give_the_documented_class_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("primitives");
    let out = tmp.path().join("ds");
    let labels = "__ignore__,_background_,rectangle,circle,polygon,line,point,line_strip,octagon";
    convert_ok(tmp.path(), &src, &out, &["--labels", labels]);
    let ds = Dataset::open(&out).unwrap();
    let e = &ds.manifest.images[0];
    let counts: Vec<(u32, u64)> = e.class_pixels.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        counts,
        [
            (0, 196670),
            (1, 25857),
            (2, 8144),
            (3, 11085),
            (4, 514),
            (5, 97),
            (6, 2358),
            (7, 7275)
        ]
    );
    // and pixel for pixel against the oracle
    let labels_file = tmp.path().join("labels.txt");
    std::fs::write(&labels_file, labels.replace(',', "\n")).unwrap();
    let o = oracle(&labels_file, &[src.join("primitives.json")], tmp.path());
    let diffs = diff_pixels(
        &mask(&ds.mask_path("primitives")),
        &mask(&o.join("primitives.png")),
        560,
    );
    assert_eq!(diffs, []);
    // every class is one blob here, so one instance each, with its pixel count as area
    for inst in &e.instances {
        assert!(inst.area <= e.class_pixels[&inst.class]);
    }
    assert!(e.instances.iter().any(|i| i.class == 2 && i.area == 8144));
}

#[test]
fn unet_pytorch_cat_mask_is_reproduced_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = shared_data().join("unet-pytorch/datasets");
    let out = tmp.path().join("ds");
    convert_ok(
        tmp.path(),
        &data.join("before"),
        &out,
        &["--labels", "_background_,cat,dog"],
    );
    let ours = read_index_png(&out.join("SegmentationClass/1.png")).unwrap();
    let theirs = read_index_png(&data.join("SegmentationClass/1.png")).unwrap();
    assert_eq!((ours.width, ours.height), (theirs.width, theirs.height));
    assert_eq!(
        diff_pixels(&ours.data, &theirs.data, ours.width as usize),
        []
    );
    assert!(ours.data.contains(&1));
}

#[test]
fn embedded_image_data_and_collected_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("tutorial/apc2016_obj3.json");
    // copy the JSON alone: the image must come from imageData
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(&src, input.join("apc2016_obj3.json")).unwrap();
    let out = tmp.path().join("ds");
    convert_ok(tmp.path(), &input, &out, &["--mode", "l"]);
    let ds = Dataset::open(&out).unwrap();
    let names = ds.manifest.class_names();
    assert_eq!(names[0], "_background_");
    let mut sorted = names[1..].to_vec();
    sorted.sort();
    assert_eq!(names[1..], sorted[..], "collected labels are sorted");
    let labels_file = tmp.path().join("labels.txt");
    std::fs::write(&labels_file, format!("__ignore__\n{}\n", names.join("\n"))).unwrap();
    let o = oracle(&labels_file, &[input.join("apc2016_obj3.json")], tmp.path());
    let e = &ds.manifest.images[0];
    let ours = mask(&ds.mask_path("apc2016_obj3"));
    assert_eq!(
        diff_pixels(&ours, &mask(&o.join("apc2016_obj3.png")), e.width as usize),
        []
    );
    // --mode l writes a grayscale PNG
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(ds.mask_path("apc2016_obj3")).unwrap(),
    ));
    assert_eq!(
        dec.read_info().unwrap().info().color_type,
        png::ColorType::Grayscale
    );
    assert!(ds.image_path(e).is_file());
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn small_png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb([90, 120, 150]))
        .save(path)
        .unwrap();
}

fn ann(image_path: &str, w: u32, h: u32, shapes: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
                       "imageData": null, "imageHeight": h, "imageWidth": w})
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("imgs")).unwrap();
    small_png(&input.join("imgs/a.png"), 20, 10);
    let square = serde_json::json!([{"label": "划痕", "points": [[2, 2], [8, 2], [8, 6], [2, 6]], "shape_type": "polygon"}]);
    // Windows separators in imagePath; UTF-8 file names and labels
    write_json(
        &input.join("好.json"),
        &ann("imgs\\a.png", 20, 10, square.clone()),
    );
    // wrong size: error naming both sizes
    write_json(
        &input.join("wrong_size.json"),
        &ann("imgs/a.png", 30, 10, square.clone()),
    );
    // unknown shape type: error naming the shape
    write_json(
        &input.join("weird.json"),
        &ann(
            "imgs/a.png",
            20,
            10,
            serde_json::json!([{"label": "划痕", "points": [[1, 1], [5, 5]], "shape_type": "spline"}]),
        ),
    );
    // too few points: skipped with a warning, the file converts
    write_json(
        &input.join("short.json"),
        &ann(
            "imgs/a.png",
            20,
            10,
            serde_json::json!([{"label": "划痕", "points": [[1, 1], [5, 5]]}]),
        ),
    );
    std::fs::write(input.join("broken.json"), "{ not json").unwrap();
    let before = std::fs::read(input.join("好.json")).unwrap();

    let out = tmp.path().join("ds");
    let o = segkit()
        .current_dir(tmp.path())
        .args([
            "convert",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--alias",
            "划痕=scratch",
            "--no-viz",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("wrong_size.json") && stderr.contains("30x10") && stderr.contains("20x10"),
        "{stderr}"
    );
    assert!(
        stderr.contains("weird.json: shape 0") && stderr.contains("spline"),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.json") && stderr.contains("not valid JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains("short.json: shape 0") && stderr.contains("warning"),
        "{stderr}"
    );
    assert!(stderr.contains("3 of 5"), "{stderr}");
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.class_names(), ["_background_", "scratch"]);
    let stems: Vec<&str> = ds.manifest.images.iter().map(|e| e.stem.as_str()).collect();
    assert_eq!(stems, ["short", "好"]);
    let m = mask(&ds.mask_path("好"));
    assert_eq!(m.iter().filter(|&&v| v == 1).count(), 7 * 5);
    assert_eq!(ds.manifest.images[1].instances.len(), 1);
    assert_eq!(
        std::fs::read(input.join("好.json")).unwrap(),
        before,
        "input untouched"
    );

    // the output is not empty now: refused without --force, replaced with it
    let err = convert_err(tmp.path(), &input.join("好.json"), &out, &[]);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    convert_ok(
        tmp.path(),
        &input.join("好.json"),
        &out,
        &["--force", "--alias", "划痕=scratch"],
    );
    assert_eq!(Dataset::open(&out).unwrap().manifest.images.len(), 1);
    assert!(
        !out.join("SegmentationClass/short.png").exists(),
        "--force replaces the old dataset"
    );

    // --strict stops at the first problem
    let err = convert_err(
        tmp.path(),
        &input,
        &tmp.path().join("s"),
        &["--strict", "--alias", "划痕=scratch"],
    );
    assert!(err.contains("--strict"), "{err}");
}

#[test]
fn unknown_labels_are_listed_with_their_files() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    small_png(&input.join("a.png"), 12, 12);
    let shape = |l: &str| serde_json::json!([{"label": l, "points": [[2, 2], [9, 9]], "shape_type": "rectangle"}]);
    write_json(&input.join("a.json"), &ann("a.png", 12, 12, shape("dent")));
    write_json(&input.join("b.json"), &ann("a.png", 12, 12, shape("crack")));
    write_json(
        &input.join("c.json"),
        &ann("a.png", 12, 12, shape("scratch")),
    );
    let out = tmp.path().join("ds");
    let err = convert_err(
        tmp.path(),
        &input,
        &out,
        &["--labels", "_background_,scratch"],
    );
    assert!(
        err.contains("\"crack\" in b.json") && err.contains("\"dent\" in a.json"),
        "{err}"
    );
    // nothing is left of the files that were fine: the folder is as before the run
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    convert_ok(
        tmp.path(),
        &input,
        &out,
        &["--labels", "_background_,scratch", "--unknown", "ignore"],
    );
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(mask(&ds.mask_path("a"))[2 * 12 + 2], 255);
    assert_eq!(mask(&ds.mask_path("c"))[2 * 12 + 2], 1);
}

#[test]
fn import_masks_reads_unet_pytorch_medical_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let med = shared_data().join("unet-pytorch/Medical_Datasets");
    let out = tmp.path().join("ds");
    run_ok(
        tmp.path(),
        &[
            "import-masks",
            med.join("Images").to_str().unwrap(),
            med.join("Labels").to_str().unwrap(),
            out.to_str().unwrap(),
            "--values",
            "0=membrane,255=_background_",
        ],
    );
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.class_names(), ["_background_", "membrane"]);
    assert_eq!(ds.manifest.images.len(), 30);
    let t = ds.manifest.total_class_pixels();
    let share = t[&1] as f64 / (t[&0] + t[&1]) as f64;
    assert!(
        (0.15..0.30).contains(&share),
        "membrane share {share} (README: about 22%)"
    );
    // the threshold form gives the same masks
    let out2 = tmp.path().join("ds2");
    run_ok(
        tmp.path(),
        &[
            "import-masks",
            med.join("Images").to_str().unwrap(),
            med.join("Labels").to_str().unwrap(),
            out2.to_str().unwrap(),
            "--threshold",
            "128",
            "--invert",
            "--class",
            "membrane",
        ],
    );
    let e = &ds.manifest.images[0];
    assert_eq!(
        mask(&ds.mask_path(&e.stem)),
        mask(&out2.join(format!("SegmentationClass/{}.png", e.stem)))
    );
    let err = run_err(
        tmp.path(),
        &[
            "import-masks",
            med.join("Images").to_str().unwrap(),
            med.join("Labels").to_str().unwrap(),
            tmp.path().join("ds3").to_str().unwrap(),
            "--values",
            "0=membrane",
        ],
    );
    assert!(err.contains("pixel value 255 is not in --values"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn import_voc_keeps_labelme2voc_masks_splits_and_reports_foreign_values() {
    use segkit_labelme::dataset::{count_values, write_index_png, MaskEncoding};
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("semantic_segmentation/data_dataset_voc");

    // labelme's own VOC output, as it is: same indices, same image bytes, right counts
    let out = tmp.path().join("ds");
    let stdout = run_ok(
        tmp.path(),
        &["import-voc", src.to_str().unwrap(), out.to_str().unwrap()],
    )
    .stdout;
    assert!(String::from_utf8_lossy(&stdout).contains("wrote 3 masks (21 classes"));
    let ds = Dataset::open(&out).unwrap();
    let names = std::fs::read_to_string(src.join("class_names.txt")).unwrap();
    assert_eq!(ds.manifest.class_names(), names.lines().collect::<Vec<_>>());
    assert_eq!(ds.manifest.images.len(), 3);
    let mut ignored = 0;
    for e in &ds.manifest.images {
        let want = mask(&src.join(format!("SegmentationClass/{}.png", e.stem)));
        assert!(mask(&ds.mask_path(&e.stem)) == want, "{}", e.stem);
        assert_eq!(e.class_pixels, count_values(&want), "{}", e.stem);
        assert!(!e.instances.is_empty(), "{}", e.stem);
        ignored += e.class_pixels.get(&255).copied().unwrap_or(0);
        let image = std::fs::read(src.join(format!("JPEGImages/{}.jpg", e.stem))).unwrap();
        assert!(std::fs::read(ds.image_path(e)).unwrap() == image);
    }
    assert!(ignored > 0, "the examples have __ignore__ regions");
    assert_eq!(ds.split("trainval").unwrap().unwrap().len(), 3);

    // a copy with split lists and a mask holding a value that is no class (40)
    let voc = tmp.path().join("voc");
    for d in ["JPEGImages", "SegmentationClass"] {
        copy_dir(&src.join(d), &voc.join(d));
    }
    std::fs::copy(src.join("class_names.txt"), voc.join("class_names.txt")).unwrap();
    let sets = voc.join("ImageSets/Segmentation");
    std::fs::create_dir_all(&sets).unwrap();
    std::fs::write(sets.join("train.txt"), "2011_000003\n2011_000025\n").unwrap();
    std::fs::write(sets.join("val.txt"), "2011_000006\n").unwrap();
    let bad = voc.join("SegmentationClass/2011_000025.png");
    let mut m = read_index_png(&bad).unwrap();
    let n_bad = 37;
    m.data[..n_bad].fill(40);
    write_index_png(&bad, m.width, m.height, &m.data, MaskEncoding::Gray).unwrap();

    let out2 = tmp.path().join("ds2");
    let err = run_err(
        tmp.path(),
        &["import-voc", voc.to_str().unwrap(), out2.to_str().unwrap()],
    );
    assert!(
        err.contains("2011_000025.png") && err.contains(&format!("values 40 ({n_bad} px)")),
        "{err}"
    );
    let ds2 = Dataset::open(&out2).unwrap();
    assert_eq!(ds2.manifest.images.len(), 2);
    assert_eq!(ds2.split("train").unwrap().unwrap(), ["2011_000003"]);
    assert_eq!(ds2.split("val").unwrap().unwrap(), ["2011_000006"]);

    let out3 = tmp.path().join("ds3");
    run_ok(
        tmp.path(),
        &[
            "import-voc",
            voc.to_str().unwrap(),
            out3.to_str().unwrap(),
            "--unknown",
            "ignore",
            "--mode",
            "l",
        ],
    );
    let got = mask(&out3.join("SegmentationClass/2011_000025.png"));
    let mut want = m.data.clone();
    want[..n_bad].fill(255);
    assert!(got == want);
    let ds3 = Dataset::open(&out3).unwrap();
    assert_eq!(ds3.split("train").unwrap().unwrap().len(), 2);
}

/// The instances a VOC object mask records, computed by Pillow + numpy (independent of
/// segkit): for each object id 1..254 present, the majority class under it (ignore and
/// background do not vote, ties to the lower id), its pixel count and bounding box; with
/// the object mask's PIL mode. One entry per `(class mask, object mask)` pair.
fn numpy_objects(pairs: &[(PathBuf, PathBuf)]) -> Vec<serde_json::Value> {
    const SCRIPT: &str = r#"
import json, sys
from PIL import Image
args, out = sys.argv[1:], []
for cls_path, obj_path in zip(args[::2], args[1::2]):
    obj_img = Image.open(obj_path)
    cls, obj = np.array(Image.open(cls_path)), np.array(obj_img)
    out.append({"mode": obj_img.mode, "instances": objects(cls, obj)})
print(json.dumps(out))
"#;
    let mut cmd = Command::new(oracle_python());
    cmd.arg("-c")
        .arg(format!("{}{SCRIPT}", common::objects::PY_OBJECTS));
    for (c, o) in pairs {
        cmd.arg(c).arg(o);
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The manifest's instances of one image as JSON, for comparing with [`numpy_objects`].
fn instances_json(ds: &Dataset, stem: &str) -> serde_json::Value {
    let e = ds.manifest.images.iter().find(|e| e.stem == stem).unwrap();
    serde_json::to_value(&e.instances).unwrap()
}

/// `import-voc` of `voc` into `dir/name`, checked: class and object masks keep their
/// indices, object masks are P mode, and each image's instances are the objects
/// [`numpy_objects`] finds. Returns the dataset and numpy's objects.
fn import_voc_objects(
    dir: &Path,
    voc: &Path,
    name: &str,
    stems: &[&str],
) -> (Dataset, Vec<serde_json::Value>) {
    let out = dir.join(name);
    run_ok(
        dir,
        &["import-voc", voc.to_str().unwrap(), out.to_str().unwrap()],
    );
    let layer = |root: &Path, layer: &str, stem: &str| root.join(format!("{layer}/{stem}.png"));
    let pairs: Vec<(PathBuf, PathBuf)> = stems
        .iter()
        .map(|s| {
            (
                layer(&out, "SegmentationClass", s),
                layer(&out, "SegmentationObject", s),
            )
        })
        .collect();
    let want = numpy_objects(&pairs);
    let ds = Dataset::open(&out).unwrap();
    for (stem, want) in stems.iter().zip(&want) {
        for l in ["SegmentationClass", "SegmentationObject"] {
            assert!(
                mask(&layer(&out, l, stem)) == mask(&layer(voc, l, stem)),
                "{l}/{stem}"
            );
        }
        assert_eq!(want["mode"], "P", "{stem}");
        assert_eq!(instances_json(&ds, stem), want["instances"], "{stem}");
    }
    (ds, want)
}

#[test]
fn import_voc_takes_labelme2voc_objects_as_instances() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = examples().join("instance_segmentation/data_dataset_voc");
    let stems = ["2011_000003", "2011_000006", "2011_000025"];

    // labelme2voc's output as shipped: its object masks, and its objects as instances
    let (_, want) = import_voc_objects(tmp.path(), &voc, "ds", &stems);
    // 2011_000006: four people, three of them touching (one blob of the class mask), are
    // four instances
    let people = want[1]["instances"].as_array().unwrap();
    assert_eq!(people.iter().filter(|i| i["class"] == 15).count(), 4);

    // `convert --instances` of the annotations they came from draws the same objects with
    // the same ids, but for one pixel where the shipped masks' older Pillow differs from the
    // oracle (see instance_examples_reproduce_labelme2voc_objects); so importing convert's
    // own VOC output gives the sound instances, and its class pixel counts
    let conv = common::objects::convert_instance_example(tmp.path(), "voc");
    let (round, _) = import_voc_objects(tmp.path(), &conv, "round", &stems);
    let conv = Dataset::open(&conv).unwrap();
    for (a, b) in conv.manifest.images.iter().zip(&round.manifest.images) {
        assert_eq!((&a.stem, &a.class_pixels), (&b.stem, &b.class_pixels));
        // and `convert --instances` records the same objects as instances
        assert_eq!(a.instances, b.instances, "{}", a.stem);
    }
}

#[test]
fn import_voc_reports_a_wrong_sized_object_mask_and_mixed_objects() {
    use segkit_labelme::dataset::{write_index_png, MaskEncoding};
    let tmp = tempfile::tempdir().unwrap();
    let src = examples().join("instance_segmentation/data_dataset_voc");
    let voc = tmp.path().join("voc");
    for d in ["JPEGImages", "SegmentationClass", "SegmentationObject"] {
        copy_dir(&src.join(d), &voc.join(d));
    }
    std::fs::copy(src.join("class_names.txt"), voc.join("class_names.txt")).unwrap();
    // 2011_000025: an object mask of another size than its class mask (500x375)
    let broken = voc.join("SegmentationObject/2011_000025.png");
    write_index_png(
        &broken,
        320,
        240,
        &vec![1; 320 * 240],
        MaskEncoding::Palette,
    )
    .unwrap();
    // 2011_000003: no object mask, so components of its class mask
    std::fs::remove_file(voc.join("SegmentationObject/2011_000003.png")).unwrap();
    // 2011_000006: the small person (object 5) relabelled as the chair (object 4), so that
    // object 4 lies on two classes: chair by majority, and a warning
    let mixed = voc.join("SegmentationObject/2011_000006.png");
    let mut m = read_index_png(&mixed).unwrap();
    let moved = m.data.iter().filter(|&&v| v == 5).count();
    assert!(moved > 0);
    for v in m.data.iter_mut().filter(|v| **v == 5) {
        *v = 4;
    }
    write_index_png(&mixed, m.width, m.height, &m.data, MaskEncoding::Palette).unwrap();

    let out = tmp.path().join("ds");
    let err = run_err(
        tmp.path(),
        &["import-voc", voc.to_str().unwrap(), out.to_str().unwrap()],
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error:") && l.contains(broken.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no error naming {}:\n{err}", broken.display()));
    assert!(
        line.contains("320x240") && line.contains("500x375"),
        "{line}"
    );
    let warning = err
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains(mixed.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no warning naming {}:\n{err}", mixed.display()));
    assert!(
        warning.contains("object 4")
            && warning.contains(&format!("person ({moved} px)"))
            && warning.contains("recorded as chair"),
        "{warning}"
    );
    assert!(err.contains("1 image(s) have no object mask"), "{err}");

    // the other two were imported; nothing of the broken one was written
    let ds = Dataset::open(&out).unwrap();
    let got: Vec<&str> = ds.manifest.images.iter().map(|e| e.stem.as_str()).collect();
    assert_eq!(got, ["2011_000003", "2011_000006"]);
    for dir in ["JPEGImages", "SegmentationClass", "SegmentationObject"] {
        let left: Vec<_> = std::fs::read_dir(out.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("2011_000025"))
            .collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    assert!(!out.join("SegmentationObject/2011_000003.png").exists());
    let want = numpy_objects(&[(voc.join("SegmentationClass/2011_000006.png"), mixed.clone())]);
    assert_eq!(instances_json(&ds, "2011_000006"), want[0]["instances"]);
    // without an object mask: the components of its class mask, where the person drawn as
    // two polygons (one object in the shipped object mask) is two instances
    let class = read_index_png(&voc.join("SegmentationClass/2011_000003.png")).unwrap();
    let (_, comps) =
        segkit_labelme::runs::counts_and_instances(&class.data, class.width, class.height);
    let e = &ds.manifest.images[0];
    assert_eq!(e.instances, comps);
    let objects = numpy_objects(&[(
        voc.join("SegmentationClass/2011_000003.png"),
        src.join("SegmentationObject/2011_000003.png"),
    )]);
    assert_ne!(
        serde_json::to_value(&e.instances).unwrap(),
        objects[0]["instances"]
    );
}
