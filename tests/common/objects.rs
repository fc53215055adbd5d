//! Object-mask fixtures shared by the end-to-end tests: labelme's instance example converted
//! with `--instances`, and numpy's definition of the instances an object mask records.

use std::path::{Path, PathBuf};

/// `segkit convert --instances --no-viz` of labelme's instance_segmentation example (three
/// VOC photos whose touching people are separate objects) into `dir/name`.
pub fn convert_instance_example(dir: &Path, name: &str) -> PathBuf {
    let src = super::shared_data().join("labelme-examples/instance_segmentation");
    let out = dir.join(name);
    super::run_ok(
        dir,
        &[
            "convert",
            src.join("data_annotated").to_str().unwrap(),
            out.to_str().unwrap(),
            "--labels",
            src.join("labels.txt").to_str().unwrap(),
            "--instances",
            "--no-viz",
        ],
    );
    out
}

/// Python, independent of segkit: `majority(cls, m)`, the class under the pixels `m`
/// (background and ignore do not vote, ties go to the lower id; None when nothing votes), and
/// `objects(cls, obj)`, the instances an object mask records: for each id 1..254 present on
/// some class, that class, its pixel count and bounding box. Prepend it to a test's script.
pub const PY_OBJECTS: &str = r#"
import numpy as np

def majority(cls, m):
    votes = np.bincount(cls[m], minlength=256)[1:255]
    return None if votes.max() == 0 else int(votes.argmax()) + 1

def objects(cls, obj):
    inst = []
    for i in range(1, 255):
        m = obj == i
        if not m.any():
            continue
        c = majority(cls, m)
        if c is None:
            continue
        ys, xs = np.nonzero(m)
        inst.append({"class": c, "area": int(m.sum()),
                     "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                              int(ys.max() - ys.min() + 1)]})
    return inst
"#;
