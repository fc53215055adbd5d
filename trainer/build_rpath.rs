// Shared by trainer/build.rs and trainer/plugin/build.rs (through `include!`).
//
// torch-sys links libtorch but sets no rpath for the binaries of the crates above it, so
// `target/release/segkit` would need LD_LIBRARY_PATH. Each package whose binaries link tch
// emits the rpath itself, finding libtorch the way torch-sys does: `$LIBTORCH/lib`, or the
// `lib` folder of the torch package of the Python on PATH when LIBTORCH_USE_PYTORCH is set.

fn libtorch_lib_dir() -> Result<std::path::PathBuf, String> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    if let Some(root) = std::env::var_os("LIBTORCH") {
        return Ok(std::path::PathBuf::from(root).join("lib"));
    }
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python".into());
        let out = std::process::Command::new(&python)
            .args([
                "-c",
                "import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{python} -c 'import torch'` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let version = lines.next().unwrap_or_default().trim().to_string();
        if !version.starts_with("2.13.0") {
            return Err(format!("tch 0.26 needs PyTorch 2.13.0, but {python} has torch {version}"));
        }
        return Ok(std::path::PathBuf::from(lines.next().unwrap_or_default().trim()));
    }
    Err("neither LIBTORCH nor LIBTORCH_USE_PYTORCH is set".into())
}

fn emit_libtorch_rpath() {
    match libtorch_lib_dir() {
        Ok(dir) => println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display()),
        Err(why) => panic!(
            "\n\nsegkit's trainer needs libtorch 2.13.0: {why}.\n\
             Fix: run `make build` (it provisions PyTorch 2.13.0 in $SEGKIT_TORCH_VENV and builds), \
             or set LIBTORCH to a libtorch 2.13.0 folder, \
             or build without the trainer: `cargo build --no-default-features`.\n\n"
        ),
    }
}
