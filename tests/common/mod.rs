//! Shared by the end-to-end tests: run the built `segkit` binary in a temp dir.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

pub mod objects;
pub mod squares;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `segkit` binary cargo built for these tests.
pub fn segkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_segkit"))
}

/// Run segkit with `args` in `dir`; panic with its stderr when it fails.
pub fn run_ok(dir: &Path, args: &[&str]) -> Output {
    let out = segkit()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run segkit");
    assert!(
        out.status.success(),
        "segkit {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run segkit with `args` in `dir`, expecting failure; returns stderr.
pub fn run_err(dir: &Path, args: &[&str]) -> String {
    let out = segkit()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run segkit");
    assert!(
        !out.status.success(),
        "segkit {args:?} unexpectedly succeeded"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `../shared/data` of this checkout (the reference data shipped beside the repo).
pub fn shared_data() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(p.exists(), "reference data missing at {}", p.display());
    p
}

/// Python with Pillow 13.0.0 + numpy (+ torch), provisioned by the Makefile.
pub fn oracle_python() -> PathBuf {
    let p = std::env::var_os("SEGKIT_PYTHON")
        .map(PathBuf::from)
        .expect("SEGKIT_PYTHON is not set: run the tests with `make test`, which provisions it");
    assert!(
        p.exists(),
        "SEGKIT_PYTHON={} does not exist: run `make provision`",
        p.display()
    );
    p
}
