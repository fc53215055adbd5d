//! End-to-end: `segkit train`, `eval` and `predict` on a tiny synthetic dataset (64×64
//! squares drawn here and written as a real dataset folder), resume after a real kill, and
//! the explained refusal of classic label mistakes.
#![cfg(feature = "train")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{run_err, run_ok, segkit};
use segkit_labelme::dataset::{self, MaskEncoding};

fn write_dataset(root: &Path, n: usize) {
    common::squares::write_squares(root, n, 12345, 8);
}

fn train_args<'a>(ds: &'a str, run: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["train", ds, "--out", run];
    v.extend_from_slice(common::squares::TINY);
    v.extend_from_slice(&["--set", "optim.lr=0.01"]);
    v.extend_from_slice(extra);
    v
}

#[test]
fn train_eval_predict() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("ds"), 16);
    let out = run_ok(dir.path(), &train_args("ds", "run", &["--epochs", "10"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("run written to run; best epoch "),
        "{stdout}"
    );
    let dice: f64 = stdout.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(dice >= 0.8, "{stdout}");
    let lines = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 10);
    let log = std::fs::read_to_string(dir.path().join("run/log.txt")).unwrap();
    assert!(log.contains("epoch 10/10"), "{log}");

    // eval reproduces the best epoch's metrics from the checkpoint alone.
    let ckpt = "run/checkpoints/best.safetensors";
    let out = run_ok(
        dir.path(),
        &["eval", "--checkpoint", ckpt, "ds", "--device", "cpu"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 4);
    let eval_dice = report["dice"]["1"].as_f64().unwrap();
    assert!(
        (eval_dice - dice).abs() < 1e-3,
        "eval {eval_dice} vs train {dice}"
    );
    assert_eq!(report["confusion"]["matrix"].as_array().unwrap().len(), 2);

    // predict: every format, a folder input and a file of another size.
    let big = image::RgbImage::from_fn(150, 97, |x, y| {
        if (40..60).contains(&x) && (30..50).contains(&y) {
            image::Rgb([200, 200, 200])
        } else {
            image::Rgb([80, 80, 80])
        }
    });
    big.save(dir.path().join("odd.jpg")).unwrap();
    for (format, dirname) in [
        ("index", "p_index"),
        ("binary", "p_binary"),
        ("color", "p_color"),
        ("overlay", "p_overlay"),
    ] {
        let out = run_ok(
            dir.path(),
            &[
                "predict",
                "--checkpoint",
                ckpt,
                "ds/JPEGImages",
                "odd.jpg",
                "--out",
                dirname,
                "--format",
                format,
                "--device",
                "cpu",
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("wrote 17 masks to {dirname}")
        );
        let img = image::open(dir.path().join(dirname).join("odd.png")).unwrap();
        assert_eq!((img.width(), img.height()), (150, 97), "{format}");
    }
    let idx = dataset::read_index_png(&dir.path().join("p_index/img15.png")).unwrap();
    let truth =
        dataset::read_index_png(&dir.path().join("ds/SegmentationClass/img15.png")).unwrap();
    let agree = idx
        .data
        .iter()
        .zip(&truth.data)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        agree as f64 > 0.95 * 4096.0,
        "prediction matches the truth on {agree}/4096 pixels"
    );
    let bin = image::open(dir.path().join("p_binary/odd.png"))
        .unwrap()
        .to_luma8();
    assert!(bin.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));
    assert_eq!(
        bin.get_pixel(50, 40).0[0],
        255,
        "the bright square is foreground"
    );
    assert_eq!(bin.get_pixel(5, 5).0[0], 0);

    // --save-probs writes a C×H×W float32 .npy.
    run_ok(
        dir.path(),
        &[
            "predict",
            "--checkpoint",
            ckpt,
            "odd.jpg",
            "--out",
            "p_probs",
            "--save-probs",
            "--device",
            "cpu",
        ],
    );
    let npy = std::fs::read(dir.path().join("p_probs/odd.npy")).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY\x01\x00"));
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'shape': (2, 97, 150)") && header.contains("'<f4'"),
        "{header}"
    );
    assert_eq!(npy.len(), 10 + header_len + 4 * 2 * 97 * 150);

    // The checkpoint loads in PyTorch (safetensors + load_state_dict(strict=True)) and gives
    // the same probabilities; also with BatchNorm and transposed convolutions.
    torch_parity(dir.path(), ckpt, "p_probs64");
    run_ok(
        dir.path(),
        &train_args(
            "ds",
            "run_bn",
            &[
                "--epochs",
                "1",
                "--set",
                "model.norm=batch",
                "--set",
                "model.up=transposed",
            ],
        ),
    );
    torch_parity(
        dir.path(),
        "run_bn/checkpoints/last.safetensors",
        "p_probs_bn",
    );

    // A bad input is reported, the others still written, exit non-zero.
    std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
    let err = run_err(
        dir.path(),
        &[
            "predict",
            "--checkpoint",
            ckpt,
            "broken.png",
            "odd.jpg",
            "--out",
            "p_bad",
            "--device",
            "cpu",
        ],
    );
    assert!(
        err.contains("broken.png") && err.contains("1 of 2 images failed"),
        "{err}"
    );
    assert!(dir.path().join("p_bad/odd.png").exists());
}

fn torch_parity(dir: &Path, ckpt: &str, out: &str) {
    run_ok(
        dir,
        &[
            "predict",
            "--checkpoint",
            ckpt,
            "ds/JPEGImages/img15.png",
            "--out",
            out,
            "--save-probs",
            "--device",
            "cpu",
        ],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/train_torch.py");
    let res = std::process::Command::new(common::oracle_python())
        .current_dir(dir)
        .arg(&script)
        .args([
            "check",
            ckpt,
            "ds/JPEGImages/img15.png",
            &format!("{out}/img15.npy"),
        ])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([2, 64, 64]));
    let diff = v["max_abs_diff"].as_f64().unwrap();
    assert!(
        diff < 1e-4,
        "{ckpt}: PyTorch and segkit probabilities differ by {diff}"
    );
}

/// Kill -9 mid-run, then `--resume` continues after the last finished epoch.
#[test]
fn resume_after_kill() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("ds"), 8);
    let mut child = segkit()
        .current_dir(dir.path())
        .args(train_args("ds", "run", &["--epochs", "200"]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let metrics = dir.path().join("run/metrics.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&metrics)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epoch finished in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = std::fs::read_to_string(&metrics).unwrap().lines().count();
    let out = run_ok(
        dir.path(),
        &[
            "train",
            "--resume",
            "run",
            "--epochs",
            &(done + 2).to_string(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("run written to run"));
    let text = std::fs::read_to_string(&metrics).unwrap();
    let epochs: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let want: Vec<u64> = (1..=(done as u64 + 2)).collect();
    assert_eq!(epochs, want, "epochs continue without gap or repeat");
    let log = std::fs::read_to_string(dir.path().join("run/log.txt")).unwrap();
    assert!(log.contains("resumed after epoch"), "{log}");
}

#[test]
fn label_mistakes_and_config_errors_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    write_dataset(&ds, 8);
    // Two classes declared, masks hold 0/1/2: wrong num_classes.
    let p = ds.join("SegmentationClass/img03.png");
    let mut m = dataset::read_index_png(&p).unwrap();
    m.data[0] = 2;
    dataset::write_index_png(&p, 64, 64, &m.data, MaskEncoding::Palette).unwrap();
    let err = run_err(dir.path(), &train_args("ds", "r1", &[]));
    assert!(
        err.contains("values outside 0..1")
            && err.contains("img03.png")
            && err.contains("wrong number of classes"),
        "{err}"
    );
    // An RGB mask.
    image::RgbImage::new(64, 64).save(&p).unwrap();
    let err = run_err(dir.path(), &train_args("ds", "r2", &[]));
    assert!(err.contains("img03.png") && err.contains("RGB"), "{err}");
    write_dataset(&ds, 8);
    // Head/loss mismatch names the fix; unknown keys are not silently ignored.
    let err = run_err(
        dir.path(),
        &train_args(
            "ds",
            "r3",
            &["--set", "model.head=sigmoid", "--set", "loss.name=ce"],
        ),
    );
    assert!(err.contains("use \"bce\""), "{err}");
    let err = run_err(
        dir.path(),
        &train_args("ds", "r4", &["--set", "optim.learning_rate=1e-3"]),
    );
    assert!(err.contains("learning_rate"), "{err}");
    // Help carries an example.
    for cmd in ["train", "eval", "predict"] {
        let out = run_ok(dir.path(), &[cmd, "--help"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example:"),
            "{cmd}"
        );
    }
}
