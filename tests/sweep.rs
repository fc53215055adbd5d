//! End-to-end: `segkit lr-find` suggests a learning rate from which a tiny run converges (and
//! leaves nothing behind that changes a later run), and `segkit sweep` of 2×2 settings
//! survives a kill, skips finished runs when re-run, and writes four runs and an index that
//! `segkit compare --sweep` renders. Data: 64×64 noisy images with one bright square each,
//! written here as a real dataset folder.
#![cfg(feature = "train")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{run_ok, segkit};
use serde_json::Value;

fn write_dataset(root: &Path, n: usize) {
    common::squares::write_squares(root, n, 777, 8);
}

fn with_tiny(mut v: Vec<&str>) -> Vec<&str> {
    v.extend_from_slice(common::squares::TINY);
    v
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

#[test]
fn lr_find_suggests_a_rate_that_trains() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_dataset(&d.join("ds"), 16);
    let out = run_ok(d, &with_tiny(vec!["lr-find", "ds", "--out", "run"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("suggested lr ") && stdout.contains("run/lr_find.json"),
        "{stdout}"
    );
    let lf = json(&d.join("run/lr_find.json"));
    let lr: Vec<f64> = lf["lr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let loss: Vec<f64> = lf["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(lr.len(), loss.len());
    assert!(lr.len() >= 20 && lr.len() <= 100, "{} steps", lr.len());
    assert!(lr.windows(2).all(|w| w[1] > w[0]), "lr grows every step");
    assert!(loss.iter().all(|l| l.is_finite()));
    let suggested = lf["suggested_lr"].as_f64().unwrap();
    assert!(
        suggested > lr[0] && suggested < *lr.last().unwrap(),
        "{suggested}"
    );
    // Nothing but the curve was written: the folder is not a run yet, and a run can go there.
    let names: Vec<String> = std::fs::read_dir(d.join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["lr_find.json"]);

    // A tiny run at the suggested rate converges.
    let lr_set = format!("optim.lr={suggested}");
    let train = |run: &str| {
        let out = run_ok(
            d,
            &with_tiny(vec![
                "train", "ds", "--out", run, "--epochs", "8", "--set", &lr_set,
            ]),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = train("run");
    let dice: f64 = stdout.trim().rsplit(' ').next().unwrap().parse().unwrap();
    eprintln!("lr-find suggested {suggested:.3e}; 8 epochs at it: fg Dice {dice}");
    assert!(dice >= 0.8, "at lr {suggested}: {stdout}");
    // The range test leaks nothing into the run: the same run in a fresh folder has the
    // same losses, epoch by epoch.
    train("fresh");
    assert_eq!(train_losses(&d.join("run")), train_losses(&d.join("fresh")));
    // `segkit report` draws the curve.
    run_ok(d, &["report", "run", "--out", "run.html"]);
    let html = std::fs::read_to_string(d.join("run.html")).unwrap();
    assert!(
        html.contains("data-chart=\"lr_find\""),
        "report has no lr-find chart"
    );

    // Bad ranges are refused with the reason.
    let err = common::run_err(
        d,
        &with_tiny(vec!["lr-find", "ds", "--min-lr", "1", "--max-lr", "0.1"]),
    );
    assert!(err.contains("min lr < max lr"), "{err}");
}

fn index_runs(path: &Path) -> Vec<String> {
    json(path)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dir"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sweep_survives_a_kill_skips_finished_runs_and_feeds_compare() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_dataset(&d.join("ds"), 12);
    let args = with_tiny(vec![
        "sweep",
        "ds",
        "--out",
        "sw",
        "--grid",
        "loss=ce,ce+dice",
        "--grid",
        "optim.lr=0.01,0.003",
        "--epochs",
        "2",
    ]);
    let names = [
        "000-loss=ce-optim.lr=0.01",
        "001-loss=ce-optim.lr=0.003",
        "002-loss=ce+dice-optim.lr=0.01",
        "003-loss=ce+dice-optim.lr=0.003",
    ];
    // Kill the sweep once its index lists a finished run.
    let mut child = segkit()
        .current_dir(d)
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let index = d.join("sw/sweep.json");
    let start = Instant::now();
    while !index.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no run finished in 3 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = index_runs(&index);
    assert!(!kept.is_empty() && kept.len() < 4, "{kept:?}");
    assert_eq!(kept[0], names[0]);
    let first_metrics = std::fs::read(d.join("sw").join(names[0]).join("metrics.jsonl")).unwrap();

    // The same command again: finished runs are skipped, the rest run.
    let out = run_ok(d, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("already finished, skipped").count(),
        kept.len(),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "sweep: 4 runs finished ({} skipped as done), 0 failed",
            kept.len()
        )),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(d.join("sw").join(names[0]).join("metrics.jsonl")).unwrap(),
        first_metrics,
        "a skipped run is not touched"
    );
    let v = json(&index);
    assert_eq!(index_runs(&index), names);
    for (r, name) in v["runs"].as_array().unwrap().iter().zip(names) {
        let run = d.join("sw").join(name);
        assert_eq!(train_losses(&run).len(), 2, "{name}");
        let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
        let (loss, lr) = (
            r["settings"]["loss"].as_str().unwrap(),
            r["settings"]["optim.lr"].as_str().unwrap(),
        );
        assert!(cfg.contains(&format!("name = \"{loss}\"")), "{name}: {cfg}");
        assert!(cfg.contains(&format!("lr = {lr}\n")), "{name}: {cfg}");
        assert_eq!(r["best"]["metric"], "dice_fg");
        assert!(r["best"]["value"].as_f64().is_some(), "{r}");
    }

    // compare renders the sweep: one row per run, named by the settings that differ.
    let out = run_ok(
        d,
        &["compare", "--sweep", "sw/sweep.json", "--out", "cmp.html"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cmp.html"));
    let html = std::fs::read_to_string(d.join("cmp.html")).unwrap();
    for needle in ["ce+dice", "0.003", "0.01"] {
        assert!(html.contains(needle), "compare page lacks {needle}");
    }

    // A grid typo names the flag's format.
    let err = common::run_err(d, &["sweep", "ds", "--out", "sw2", "--grid", "optim.lr"]);
    assert!(err.contains("key=value1,value2"), "{err}");
}
