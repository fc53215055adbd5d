//! End-to-end: models beyond the default UNet. `segkit import-weights` of a PyTorch `.pth`
//! and a `.safetensors` made in Python (same predictions from both, the key report, a new
//! head for another class count, torchvision's VGG16 layout); `unet-vgg16` trained from
//! those weights with the encoder frozen for an epoch, then unfrozen on resume; and a
//! `torch.jit.script` model trained to a Dice threshold, predicted from its checkpoint alone.
//! Weights are made by `bench/vgg_torch.py` in the provisioned venv (SEGKIT_PYTHON).
#![cfg(feature = "train")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{oracle_python, run_err, run_ok};
use segkit_labelme::dataset;

fn python() -> Option<PathBuf> {
    if std::env::var_os("SEGKIT_PYTHON").is_none() {
        eprintln!(
            "skipped: SEGKIT_PYTHON is not set (make test sets it to the provisioned torch venv)"
        );
        return None;
    }
    Some(oracle_python())
}

fn vgg_torch(py: &Path, dir: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/vgg_torch.py");
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vgg_torch.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_dataset(root: &Path, n: usize) {
    common::squares::write_squares(root, n, 777, 10);
}

/// The raw bytes and the metadata of one tensor of a safetensors file, read by hand (8-byte
/// header length, JSON header, data).
fn tensor_bytes(path: &Path, name: &str) -> (Vec<u8>, serde_json::Value) {
    let raw = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&raw[8..8 + n]).unwrap();
    let off = &header[name]["data_offsets"];
    let (a, b) = (
        off[0].as_u64().unwrap() as usize,
        off[1].as_u64().unwrap() as usize,
    );
    (
        raw[8 + n + a..8 + n + b].to_vec(),
        header["__metadata__"].clone(),
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn import_weights_then_train_vgg16_with_frozen_encoder() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    vgg_torch(&py, d, &["make-weights", "w", "--classes", "3"]);
    image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    })
    .save(d.join("img.png"))
    .unwrap();

    // The same state dict as .pth and as .safetensors: a full match, same predictions.
    let mut probs = Vec::new();
    for (input, out) in [
        ("w/weights.pth", "from_pth.safetensors"),
        ("w/weights_legacy.pth", "from_legacy.safetensors"),
        ("w/weights.safetensors", "from_st.safetensors"),
    ] {
        let o = run_ok(
            d,
            &[
                "import-weights",
                "--arch",
                "unet-vgg16",
                "--classes",
                "3",
                input,
                out,
            ],
        );
        let text = stdout(&o);
        assert!(
            text.starts_with("44 matched, 0 missing, 0 unexpected, 0 shape-mismatched\n"),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with(&format!(
                "wrote {out} (unet-vgg16, 3 classes; 44 of 44 tensors from {input})"
            )),
            "{text}"
        );
        let (_, meta) = tensor_bytes(&d.join(out), "final.bias");
        let model: serde_json::Value =
            serde_json::from_str(meta["model"].as_str().unwrap()).unwrap();
        assert_eq!(model["arch"], "unet-vgg16");
        assert_eq!(model["normalize"], "none");
        let pdir = format!("probs_{out}");
        run_ok(
            d,
            &[
                "predict",
                "--checkpoint",
                out,
                "img.png",
                "--out",
                &pdir,
                "--save-probs",
                "--device",
                "cpu",
            ],
        );
        probs.push(std::fs::read(d.join(&pdir).join("img.npy")).unwrap());
    }
    assert_eq!(
        probs[0], probs[1],
        "the zip and the pre-1.6 .pth format give the same model"
    );
    assert_eq!(probs[0], probs[2], "so does .safetensors");

    // Another class count: everything but the head loads, and the report says why.
    let o = run_ok(
        d,
        &[
            "import-weights",
            "--arch",
            "unet-vgg16",
            "--classes",
            "2",
            "w/weights.pth",
            "voc2.safetensors",
        ],
    );
    let text = stdout(&o);
    assert!(
        text.contains("42 matched, 0 missing, 0 unexpected, 2 shape-mismatched"),
        "{text}"
    );
    assert!(
        text.contains(
            "shape mismatch final.weight: [3, 64, 1, 1] in the file, [2, 64, 1, 1] in the model"
        ),
        "{text}"
    );
    assert!(text.contains("a new head is initialized"), "{text}");

    // torchvision's VGG16 layout fills the encoder; its classifier is reported unexpected.
    let o = run_ok(
        d,
        &[
            "import-weights",
            "--arch",
            "unet-vgg16",
            "--classes",
            "2",
            "w/torchvision_vgg16.pth",
            "tv.safetensors",
        ],
    );
    let text = stdout(&o);
    assert!(
        text.contains("26 matched, 18 missing, 2 unexpected, 0 shape-mismatched"),
        "{text}"
    );
    assert!(
        text.contains("unexpected (ignored): classifier.0.bias, classifier.0.weight"),
        "{text}"
    );

    // Not a weights file: refused, naming it.
    std::fs::write(d.join("notes.pth"), "not weights").unwrap();
    let err = run_err(
        d,
        &[
            "import-weights",
            "--arch",
            "unet-vgg16",
            "--classes",
            "2",
            "notes.pth",
            "x.safetensors",
        ],
    );
    assert!(
        err.contains("notes.pth") && err.contains("neither a safetensors file nor a PyTorch"),
        "{err}"
    );
    assert!(!d.join("x.safetensors").exists());

    // Train from the 3-class weights on 2-class data, encoder frozen in epoch 1.
    write_dataset(&d.join("ds"), 8);
    let tiny = [
        "--set",
        "threads=2",
        "--set",
        "device=cpu",
        "--set",
        "model.arch=unet-vgg16",
        "--set",
        "model.pretrained=from_pth.safetensors",
        "--set",
        "data.batch_size=2",
        "--set",
        "data.samples_per_epoch=4",
        "--set",
        "val.tile=64",
    ];
    let mut args = vec!["train", "ds", "--out", "run", "--epochs", "1"];
    args.extend_from_slice(&tiny);
    args.extend_from_slice(&["--freeze-encoder-epochs", "1"]);
    run_ok(d, &args);
    let log = std::fs::read_to_string(d.join("run/log.txt")).unwrap();
    assert!(
        log.contains("pretrained: 42 matched, 0 missing, 0 unexpected, 2 shape-mismatched"),
        "{log}"
    );
    assert!(log.contains("a new head is initialized"), "{log}");
    assert!(
        log.contains("epoch 1: encoder frozen (until epoch 1)"),
        "{log}"
    );
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(config.contains("freeze_encoder_epochs = 1"), "{config}");
    assert!(config.contains("normalize = \"none\""), "{config}");

    let enc = "vgg.features.0.weight";
    let (pre, _) = tensor_bytes(&d.join("from_pth.safetensors"), enc);
    let (after1, meta) = tensor_bytes(&d.join("run/checkpoints/last.safetensors"), enc);
    assert_eq!(pre, after1, "the frozen encoder did not move");
    let dec = "up_concat1.conv1.weight";
    assert_ne!(
        tensor_bytes(&d.join("from_pth.safetensors"), dec).0,
        tensor_bytes(&d.join("run/checkpoints/last.safetensors"), dec).0,
        "the decoder trained"
    );
    assert!(meta["model"].as_str().unwrap().contains("\"unet-vgg16\""));

    // Resume for a second epoch: the encoder is unfrozen and moves.
    run_ok(d, &["train", "--resume", "run", "--epochs", "2"]);
    let log = std::fs::read_to_string(d.join("run/log.txt")).unwrap();
    assert!(log.contains("epoch 2: encoder unfrozen"), "{log}");
    let (after2, _) = tensor_bytes(&d.join("run/checkpoints/last.safetensors"), enc);
    assert_ne!(pre, after2, "the encoder trained after unfreezing");

    // predict rebuilds unet-vgg16 from the checkpoint alone.
    let o = run_ok(
        d,
        &[
            "predict",
            "--checkpoint",
            "run/checkpoints/last.safetensors",
            "ds/JPEGImages/img07.png",
            "--out",
            "pred",
            "--device",
            "cpu",
        ],
    );
    assert_eq!(stdout(&o).trim(), "wrote 1 masks to pred");
    let o = run_ok(
        d,
        &[
            "eval",
            "--checkpoint",
            "run/checkpoints/best.safetensors",
            "ds",
            "--device",
            "cpu",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["images"], 2);
    let metrics = std::fs::read_to_string(d.join("run/metrics.jsonl")).unwrap();
    let best = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["dice"]["1"].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max);
    let dice = report["dice"]["1"].as_f64().unwrap();
    assert!(
        (dice - best).abs() < 1e-3,
        "eval {dice} vs best epoch {best}"
    );
}

#[test]
fn torchscript_model_trains_and_predicts_from_its_checkpoint() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_dataset(&d.join("ds"), 16);
    vgg_torch(&py, d, &["script-tiny", "tiny.pt", "--classes", "2"]);
    let o = run_ok(
        d,
        &[
            "train",
            "ds",
            "--out",
            "run",
            "--epochs",
            "8",
            "--set",
            "model.arch=torchscript:tiny.pt",
            "--set",
            "threads=1",
            "--set",
            "device=cpu",
            "--set",
            "data.batch_size=8",
            "--set",
            "data.samples_per_epoch=32",
            "--set",
            "optim.lr=0.01",
            "--set",
            "val.tile=64",
        ],
    );
    let text = stdout(&o);
    let dice: f64 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(dice >= 0.8, "{text}");
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    let abs = std::fs::canonicalize(d.join("tiny.pt")).unwrap();
    assert!(
        config.contains(&format!("arch = \"torchscript:{}\"", abs.display())),
        "{config}"
    );
    // The checkpoint holds the trained parameters under their PyTorch names, and the
    // trained module is saved beside it.
    let (_, meta) = tensor_bytes(&d.join("run/checkpoints/best.safetensors"), "head.weight");
    assert_eq!(meta["script"], "best.pt");
    assert!(d.join("run/checkpoints/best.pt").is_file());
    assert!(d.join("run/checkpoints/last.pt").is_file());

    // predict needs only the checkpoint (and its .pt beside it), not the original script.
    std::fs::remove_file(d.join("tiny.pt")).unwrap();
    run_ok(
        d,
        &[
            "predict",
            "--checkpoint",
            "run/checkpoints/best.safetensors",
            "ds/JPEGImages",
            "--out",
            "pred",
            "--device",
            "cpu",
        ],
    );
    let mut agree = 0;
    for i in 12..16 {
        let p = dataset::read_index_png(&d.join(format!("pred/img{i:02}.png"))).unwrap();
        let t = dataset::read_index_png(&d.join(format!("ds/SegmentationClass/img{i:02}.png")))
            .unwrap();
        agree += p.data.iter().zip(&t.data).filter(|(a, b)| a == b).count();
    }
    assert!(
        agree as f64 > 0.95 * 4.0 * 4096.0,
        "{agree} of 16384 val pixels right"
    );

    // Without the .pt beside it either, the error names both files.
    std::fs::remove_file(d.join("run/checkpoints/best.pt")).unwrap();
    let err = run_err(
        d,
        &[
            "predict",
            "--checkpoint",
            "run/checkpoints/best.safetensors",
            "ds/JPEGImages/img00.png",
            "--out",
            "pred2",
        ],
    );
    assert!(err.contains("best.pt") && err.contains("tiny.pt"), "{err}");

    // A script whose output does not fit the dataset is refused before training.
    vgg_torch(&py, d, &["script-tiny", "three.pt", "--classes", "3"]);
    let err = run_err(
        d,
        &[
            "train",
            "ds",
            "--out",
            "run3",
            "--set",
            "model.arch=torchscript:three.pt",
            "--set",
            "device=cpu",
        ],
    );
    assert!(
        err.contains("three.pt")
            && err.contains("[1, 3, 64, 64]")
            && err.contains("[1, 2, 64, 64]"),
        "{err}"
    );
}
