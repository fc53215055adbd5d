//! Properties of the transforms on real photos and masks (labelme's VOC example, a
//! unet-pytorch grayscale image): identities, image/mask agreement, ignore padding,
//! reproducibility.

use std::collections::BTreeSet;
use std::path::PathBuf;

use segkit_augment::{sample_rng, Pipeline, Sample};

fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    assert!(p.exists(), "reference data missing at {}", p.display());
    p
}

/// The labelme example photo (JPEG decode) and its VOC mask (values 0, 5, 15, 255).
fn voc(stem: &str) -> Sample {
    let root = shared().join("labelme-examples/semantic_segmentation");
    let img = image::open(root.join(format!("data_annotated/{stem}.jpg")))
        .unwrap()
        .to_rgb8();
    let mask = segkit_labelme::dataset::read_index_png(
        &root.join(format!("data_dataset_voc/SegmentationClass/{stem}.png")),
    )
    .unwrap();
    assert_eq!((mask.width, mask.height), img.dimensions());
    Sample::from_rgb(img, mask.data).unwrap()
}

/// A 512x512 grayscale EM image with its 0/255 label.
fn gray() -> Sample {
    let root = shared().join("unet-pytorch/Medical_Datasets");
    let img = image::open(root.join("Images/0.png")).unwrap().to_luma8();
    let mask = image::open(root.join("Labels/0.png")).unwrap().to_luma8();
    Sample::from_gray(img, mask.into_raw()).unwrap()
}

fn one(toml_body: &str) -> Pipeline {
    Pipeline::from_toml_str(&format!("[[transforms]]\n{toml_body}\np = 1.0\n")).unwrap()
}

fn values(m: &[u8]) -> BTreeSet<u8> {
    m.iter().copied().collect()
}

#[test]
fn flips_twice_and_four_quarter_turns_are_identities() {
    for s in [voc("2011_000003"), gray()] {
        let hf = one("name = \"HorizontalFlip\"");
        let vf = one("name = \"VerticalFlip\"");
        let tr = one("name = \"Transpose\"");
        for p in [&hf, &vf, &tr] {
            let once = p.apply(s.clone(), 0, 0, 0);
            assert_ne!(once, s, "a flip of a real photo changes it");
            assert_eq!(p.apply(once, 0, 0, 0), s);
        }
        let mut r = s.clone();
        for _ in 0..4 {
            r = segkit_augment::geometric::rot90(&r, 1);
        }
        assert_eq!(r, s);
        for k in 1..4 {
            let turned = segkit_augment::geometric::rot90(&s, k);
            assert_eq!(turned.width, if k % 2 == 1 { s.height } else { s.width });
            assert_eq!(segkit_augment::geometric::rot90(&turned, 4 - k), s);
        }
    }
}

#[test]
fn hflip_matches_pixel_mirror() {
    let s = voc("2011_000006");
    let out = one("name = \"HorizontalFlip\"").apply(s.clone(), 0, 0, 0);
    let w = s.width as usize;
    for (y, x) in [
        (0usize, 0usize),
        (10, 3),
        (s.height as usize - 1, w - 1),
        (77, 250),
    ] {
        let o = y * w + x;
        let m = y * w + (w - 1 - x);
        assert_eq!(out.mask[o], s.mask[m]);
        assert_eq!(out.image[o * 3..o * 3 + 3], s.image[m * 3..m * 3 + 3]);
    }
}

/// Paint a 3x3 marker (a colour absent from the photo, and mask value 200) and check that
/// after a transform the marker's image pixels and mask pixels are the same set.
#[test]
fn marker_lands_at_the_same_place_in_image_and_mask() {
    let mut s = voc("2011_000003");
    let colour = [1u8, 254, 3];
    assert!(
        s.image.chunks_exact(3).all(|p| p != colour),
        "marker colour must be absent"
    );
    let w = s.width as usize;
    let (mx, my) = (180usize, 120usize);
    for y in my..my + 3 {
        for x in mx..mx + 3 {
            s.image[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&colour);
            s.mask[y * w + x] = 200;
        }
    }
    let transforms = [
        "name = \"HorizontalFlip\"",
        "name = \"VerticalFlip\"",
        "name = \"Transpose\"",
        "name = \"RandomRotate90\"",
        "name = \"Rotate\"\nlimit = 45\ninterpolation = 0",
        "name = \"Rotate\"\nlimit = 45\ninterpolation = 0\nborder_mode = \"reflect_101\"",
        "name = \"Affine\"\nscale = [0.7, 1.3]\nrotate = [-30, 30]\nshear = [-10, 10]\ntranslate_percent = [-0.1, 0.1]\ninterpolation = 0",
        "name = \"RandomScale\"\nscale_limit = 0.3\ninterpolation = 0",
        "name = \"RandomCrop\"\nheight = 200\nwidth = 300",
        "name = \"RandomResizedCrop\"\nsize = [128, 128]\nscale = [0.3, 1.0]\ninterpolation = 0",
        "name = \"PadIfNeeded\"\nmin_height = 400\nmin_width = 600\nposition = \"random\"\nborder_mode = \"reflect\"",
        "name = \"CropNonEmptyMaskIfExists\"\nheight = 64\nwidth = 64\nignore_values = [5, 15]",
        "name = \"ElasticTransform\"\nalpha = 40\nsigma = 5\ninterpolation = 0",
    ];
    for t in transforms {
        let p = one(t);
        let mut seen_marker = 0;
        for i in 0..12 {
            let out = p.apply(s.clone(), 3, 0, i);
            let c = out.channels as usize;
            assert_eq!(out.image.len(), out.mask.len() * c);
            let in_image: Vec<usize> = (0..out.mask.len())
                .filter(|&k| out.image[k * c..k * c + c] == colour)
                .collect();
            let in_mask: Vec<usize> = (0..out.mask.len())
                .filter(|&k| out.mask[k] == 200)
                .collect();
            assert_eq!(
                in_image, in_mask,
                "{t} (sample {i}): marker differs between image and mask"
            );
            seen_marker += usize::from(!in_mask.is_empty());
        }
        assert!(
            seen_marker > 0,
            "{t}: the marker never survived, the test shows nothing"
        );
    }
}

#[test]
fn masks_only_get_input_values_or_the_fill() {
    for s in [voc("2011_000025"), gray()] {
        let allowed: BTreeSet<u8> = values(&s.mask).into_iter().chain([255]).collect();
        for t in [
            "name = \"Rotate\"\nlimit = 180",
            "name = \"Affine\"\nscale = [0.5, 1.5]\nrotate = [-45, 45]\nshear = [-20, 20]",
            "name = \"RandomScale\"\nscale_limit = 0.5",
            "name = \"RandomResizedCrop\"\nsize = [100, 150]",
            "name = \"ElasticTransform\"\nalpha = 60\nsigma = 4",
            "name = \"RandomCrop\"\nheight = 600\nwidth = 600",
        ] {
            let p = one(t);
            for i in 0..6 {
                let out = p.apply(s.clone(), 0, 1, i);
                let got = values(&out.mask);
                assert!(
                    got.is_subset(&allowed),
                    "{t}: mask values {got:?} not within {allowed:?}"
                );
            }
        }
        // The shipped pipeline, on many draws.
        let p = Pipeline::default_for_defects();
        for i in 0..20 {
            let got = values(&p.apply(s.clone(), 9, 0, i).mask);
            assert!(got.is_subset(&allowed), "default pipeline: {got:?}");
        }
    }
}

/// Where a rotation by `deg` about the centre takes output pixel (x, y) from, computed here
/// independently in f64 (OpenCV's convention: positive = counter-clockwise on screen).
fn source_of(x: f64, y: f64, w: usize, h: usize, deg: f64) -> (f64, f64) {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (s, c) = deg.to_radians().sin_cos();
    let (dx, dy) = (x - cx, y - cy);
    (c * dx - s * dy + cx, s * dx + c * dy + cy)
}

#[test]
fn rotation_pads_with_255_exactly_outside_the_source() {
    let mut s = voc("2011_000003");
    for v in s.mask.iter_mut() {
        if *v == 255 {
            *v = 0;
        }
    }
    let (w, h) = (s.width as usize, s.height as usize);
    for deg in [10.0f64, 37.0, -45.0, 90.0, 133.0] {
        let p = one(&format!(
            "name = \"Rotate\"\nlimit = [{deg}, {deg}]\ninterpolation = 0\nfill = [7, 8, 9]"
        ));
        let out = p.apply(s.clone(), 0, 0, 0);
        let mut checked = 0;
        let mut padded = 0;
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = source_of(x as f64, y as f64, w, h, deg);
                // Skip pixels whose nearest source sits on a rounding boundary.
                let near_half = |v: f64| (v - v.floor() - 0.5).abs() < 0.02;
                if near_half(sx) || near_half(sy) {
                    continue;
                }
                let (nx, ny) = (sx.round(), sy.round());
                let outside = nx < 0.0 || ny < 0.0 || nx >= w as f64 || ny >= h as f64;
                let k = y * w + x;
                assert_eq!(
                    out.mask[k] == 255,
                    outside,
                    "deg {deg} at ({x},{y}): source ({sx:.2},{sy:.2})"
                );
                if outside {
                    assert_eq!(out.image[k * 3..k * 3 + 3], [7, 8, 9]);
                    padded += 1;
                } else {
                    let o = (ny as usize * w + nx as usize) * 3;
                    assert_eq!(
                        out.image[k * 3..k * 3 + 3],
                        s.image[o..o + 3],
                        "deg {deg} at ({x},{y})"
                    );
                    assert_eq!(out.mask[k], s.mask[ny as usize * w + nx as usize]);
                }
                checked += 1;
            }
        }
        assert!(
            padded > 1000 && checked > w * h * 9 / 10,
            "deg {deg}: {padded} padded, {checked} checked"
        );
    }
}

#[test]
fn same_seed_same_bytes_and_epochs_differ() {
    let s = voc("2011_000006");
    let p = Pipeline::from_toml_str(
        r#"
        [[transforms]]
        name = "Rotate"
        limit = 45
        p = 1.0
        [[transforms]]
        name = "GaussNoise"
        std_range = [0.02, 0.05]
        p = 1.0
        "#,
    )
    .unwrap();
    let a = p.apply(s.clone(), 42, 3, 5);
    let b = p.apply_ref(&s, 42, 3, 5);
    assert_eq!(
        a, b,
        "same (seed, epoch, index) gives the same bytes, owned or borrowed"
    );
    assert_ne!(a, p.apply(s.clone(), 42, 4, 5), "another epoch draws anew");
    assert_ne!(a, p.apply(s.clone(), 43, 3, 5), "another seed draws anew");
    assert_ne!(a, p.apply(s.clone(), 42, 3, 6), "another index draws anew");
    use rand::Rng;
    let x: u64 = sample_rng(1, 2, 3).gen();
    assert_eq!(x, sample_rng(1, 2, 3).gen::<u64>());
}

#[test]
fn results_do_not_depend_on_thread_count_or_order() {
    use rayon::prelude::*;
    let s = voc("2011_000025");
    let p = Pipeline::default_for_defects();
    let run = |threads: usize, reverse: bool| -> Vec<Sample> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut idx: Vec<u64> = (0..16).collect();
        if reverse {
            idx.reverse();
        }
        let mut out: Vec<(u64, Sample)> = pool.install(|| {
            idx.par_iter()
                .map(|&i| (i, p.apply_ref(&s, 7, 2, i)))
                .collect()
        });
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, s)| s).collect()
    };
    let one_thread = run(1, false);
    assert_eq!(one_thread, run(4, true));
    let distinct: BTreeSet<Vec<u8>> = one_thread.iter().map(|s| s.image.clone()).collect();
    assert!(distinct.len() > 8, "the default pipeline varies its output");
}

#[test]
fn photometric_transforms_leave_the_mask_alone() {
    let s = voc("2011_000003");
    for t in [
        "name = \"RandomBrightnessContrast\"",
        "name = \"RandomGamma\"",
        "name = \"HueSaturationValue\"",
        "name = \"ColorJitter\"",
        "name = \"GaussNoise\"",
        "name = \"GaussianBlur\"",
        "name = \"CLAHE\"",
        "name = \"ToGray\"",
    ] {
        let out = one(t).apply(s.clone(), 0, 0, 1);
        assert_eq!(out.mask, s.mask, "{t}");
        assert_ne!(out.image, s.image, "{t} changed nothing");
        assert_eq!(
            (out.width, out.height, out.channels),
            (s.width, s.height, 3)
        );
    }
    let g = gray();
    for t in [
        "name = \"CLAHE\"",
        "name = \"GaussianBlur\"",
        "name = \"GaussNoise\"",
    ] {
        let out = one(t).apply(g.clone(), 0, 0, 1);
        assert_eq!(out.mask, g.mask);
        assert_eq!(out.channels, 1);
        assert_ne!(out.image, g.image, "{t}");
    }
}

#[test]
fn brightness_contrast_is_within_one_level_of_the_formula() {
    let s = voc("2011_000006");
    let p = one("name = \"RandomBrightnessContrast\"\nbrightness_limit = [0.1, 0.1]\ncontrast_limit = [0.3, 0.3]");
    let out = p.apply(s.clone(), 0, 0, 0);
    for (&o, &i) in out.image.iter().zip(&s.image) {
        let want = (i as f64 * 1.3 + 25.5).round().clamp(0.0, 255.0);
        assert!((o as f64 - want).abs() <= 1.0, "{i} -> {o}, want {want}");
    }
}

#[test]
fn albumentations_export_loads_and_runs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/albumentations-2.0.8-export.json");
    let p = Pipeline::from_file(&path).unwrap();
    let s = voc("2011_000003");
    for i in 0..8 {
        let out = p.apply(s.clone(), 0, 0, i);
        assert_eq!(
            (out.width, out.height),
            (256, 256),
            "RandomCrop 256 ends the pipeline's geometry"
        );
    }
}

#[test]
fn config_errors_name_the_place() {
    let e = Pipeline::from_toml_str("[[transforms]]\nname = \"Rotate\"\nlimt = 30\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Rotate") && e.contains("limt") && e.contains("limit"),
        "{e}"
    );
    let e = Pipeline::from_toml_str("[[transforms]]\nname = \"Rotat\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown transform") && e.contains("Rotat"),
        "{e}"
    );
    let e = Pipeline::from_toml_str("[[transforms]]\nname = \"OneOf\"\ntransforms = [{ name = \"GaussNoise\", std_range = [0.5, 0.1] }]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("transforms[0]") && e.contains("std_range"),
        "{e}"
    );
    let e = Pipeline::from_toml_str("[[transforms]]\nname = \"Rotate\"\ninterpolation = 2\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("interpolation"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "transforms = 3").unwrap();
    let e = Pipeline::from_file(&f).unwrap_err().to_string();
    assert!(e.contains("bad.toml"), "{e}");
}

#[test]
fn bad_sample_buffers_are_refused() {
    let img = image::RgbImage::new(4, 3);
    let e = Sample::from_rgb(img, vec![0; 11]).unwrap_err().to_string();
    assert!(e.contains("11") && e.contains("4x3"), "{e}");
    assert!(Sample::new(2, 2, 2, vec![0; 8], vec![0; 4]).is_err());
}

#[test]
fn tiny_and_odd_sizes_work() {
    let p = Pipeline::from_toml_str(
        r#"
        [[transforms]]
        name = "Affine"
        rotate = [-30, 30]
        p = 1.0
        [[transforms]]
        name = "RandomCrop"
        height = 3
        width = 5
        [[transforms]]
        name = "ElasticTransform"
        alpha = 3
        sigma = 2
        p = 1.0
        [[transforms]]
        name = "GaussianBlur"
        p = 1.0
        [[transforms]]
        name = "CLAHE"
        p = 1.0
        "#,
    )
    .unwrap();
    for (w, h) in [(1u32, 1u32), (1, 7), (2, 2), (3, 1)] {
        let s = Sample::new(
            w,
            h,
            3,
            vec![100; (w * h * 3) as usize],
            vec![1; (w * h) as usize],
        )
        .unwrap();
        let out = p.apply(s, 0, 0, 0);
        assert_eq!((out.width, out.height), (5, 3));
        assert!(out.mask.iter().all(|&v| v == 1 || v == 255));
    }
}
