//! The trainer plugin: `segkit` loads libtorch only for the trainer's commands, passes
//! their exit status through, and says clearly when the plugin is missing or broken.
mod common;

use std::process::Output;

/// Run segkit with glibc's loader tracing on: every library it maps, at start or through
/// dlopen, is named on stderr.
fn traced(args: &[&str]) -> Output {
    common::segkit()
        .args(args)
        .env("LD_DEBUG", "libs")
        .output()
        .expect("run segkit")
}

fn loads_libtorch(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("libtorch_cpu.so")
}

#[test]
fn only_trainer_commands_load_libtorch() {
    let synth = traced(&["synth", "--help"]);
    assert!(synth.status.success());
    assert!(
        !loads_libtorch(&synth),
        "a data command mapped libtorch:\n{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let train = traced(&["train", "--help"]);
    assert!(train.status.success());
    assert!(
        loads_libtorch(&train),
        "`segkit train` did not load libtorch through the plugin (is LD_DEBUG traced here?)"
    );
    let help = String::from_utf8_lossy(&train.stdout);
    assert!(help.contains("Usage: segkit train"), "{help}");
}

#[test]
fn plugin_exit_status_and_errors_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let bad_flag = common::segkit()
        .current_dir(dir.path())
        .args(["train", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(bad_flag.status.code(), Some(2), "usage errors exit 2");
    assert!(String::from_utf8_lossy(&bad_flag.stderr).contains("--no-such-flag"));

    let missing = common::segkit()
        .current_dir(dir.path())
        .args(["train", "nowhere", "--out", "run"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("error:") && err.contains("nowhere"), "{err}");
    assert!(
        !dir.path().join("run").exists(),
        "a failed start left a run folder"
    );
}

#[test]
fn missing_or_broken_plugin_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent/libsegkit_trainer_plugin.so");
    let out = common::segkit()
        .args(["train", "--help"])
        .env("SEGKIT_TRAINER_PLUGIN", &absent)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&absent.display().to_string()) && err.contains("make build"),
        "{err}"
    );

    let broken = dir.path().join("libsegkit_trainer_plugin.so");
    std::fs::write(&broken, "not a shared library").unwrap();
    let out = common::segkit()
        .args(["train", "--help"])
        .env("SEGKIT_TRAINER_PLUGIN", &broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot load the trainer plugin")
            && err.contains(&broken.display().to_string()),
        "{err}"
    );

    // Data commands do not need the plugin at all.
    let synth = common::segkit()
        .args(["synth", "--help"])
        .env("SEGKIT_TRAINER_PLUGIN", &absent)
        .output()
        .unwrap();
    assert!(synth.status.success());
}

/// Ctrl-C reaches the handler the plugin installs: training stops after the current step,
/// says how to continue, exits with 130 (as scripts expect of Ctrl-C) keeping the last
/// finished epoch's checkpoint, and
/// `--resume` carries on from it.
#[test]
fn ctrl_c_stops_training_cleanly_inside_the_plugin() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    common::squares::write_squares(&dir.path().join("ds"), 8, 7, 8);
    let mut args = vec!["train", "ds", "--out", "run", "--epochs", "500"];
    args.extend_from_slice(common::squares::TINY);
    let child = common::segkit()
        .current_dir(dir.path())
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.path().join("run/metrics.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epoch in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(130) && stdout.contains("continue with --resume"),
        "status {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let done = std::fs::read_to_string(&metrics).unwrap().lines().count();
    assert!(done < 500, "the interrupt was ignored");
    assert!(dir
        .path()
        .join("run/checkpoints/last.safetensors")
        .is_file());
    let more = (done + 1).to_string();
    common::run_ok(dir.path(), &["train", "--resume", "run", "--epochs", &more]);
    let after = std::fs::read_to_string(&metrics).unwrap().lines().count();
    assert_eq!(after, done + 1);
}

/// `make install` puts the binary in PREFIX/bin and the plugin in PREFIX/lib/segkit; a
/// symlinked binary (~/.local/bin/segkit → target/release/segkit) finds the plugin of the
/// file it points to.
#[test]
fn installed_and_symlinked_binaries_find_the_plugin() {
    let built = std::path::PathBuf::from(env!("CARGO_BIN_EXE_segkit"));
    let plugin = built
        .parent()
        .unwrap()
        .join("deps")
        .join("libsegkit_trainer_plugin.so");
    assert!(
        plugin.is_file(),
        "cargo left no plugin at {}",
        plugin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(prefix.join("lib/segkit")).unwrap();
    std::fs::copy(&built, prefix.join("bin/segkit")).unwrap();
    std::os::unix::fs::symlink(
        &plugin,
        prefix.join("lib/segkit/libsegkit_trainer_plugin.so"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("links")).unwrap();
    std::os::unix::fs::symlink(&built, dir.path().join("links/segkit")).unwrap();
    for exe in [prefix.join("bin/segkit"), dir.path().join("links/segkit")] {
        let out = std::process::Command::new(&exe)
            .args(["sweep", "--help"])
            .env_remove("SEGKIT_TRAINER_PLUGIN")
            .output()
            .unwrap();
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("Usage: segkit sweep"),
            "{}: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without the plugin next to it, the installed binary says where it looked.
    std::fs::remove_file(prefix.join("lib/segkit/libsegkit_trainer_plugin.so")).unwrap();
    let out = std::process::Command::new(prefix.join("bin/segkit"))
        .args(["sweep", "--help"])
        .env_remove("SEGKIT_TRAINER_PLUGIN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("lib/segkit"), "{err}");
}
