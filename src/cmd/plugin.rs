//! `segkit train`, `eval`, `predict`, `lr-find`, `sweep`, `import-weights`: run by the
//! trainer plugin (trainer/plugin, `libsegkit_trainer_plugin.so`), which this binary opens
//! only for these commands so that the data commands never load libtorch (0.25 s and
//! 116 MB at every start when linked). The plugin parses the arguments itself, with the
//! full help text; here they are passed through untouched.

use std::ffi::OsString;
#[cfg(feature = "train")]
use std::path::PathBuf;

/// The arguments of a trainer command, handed to the plugin as they are (so `--help` shows
/// the plugin's full help).
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Forward {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Environment variable naming the plugin file, for installs that keep it elsewhere.
#[cfg(feature = "train")]
pub const PLUGIN_ENV: &str = "SEGKIT_TRAINER_PLUGIN";

/// Run the current command line (`std::env::args_os()`) in the plugin; returns its exit status.
#[cfg(feature = "train")]
pub fn run() -> anyhow::Result<i32> {
    let path = locate()?;
    load::call(&path, std::env::args_os().collect())
}

/// Without the `train` feature there is no plugin to run.
#[cfg(not(feature = "train"))]
pub fn run() -> anyhow::Result<i32> {
    anyhow::bail!(
        "this segkit was built without the trainer (cargo feature `train`); \
         rebuild with `make build` or `cargo build --release`"
    )
}

/// Where the plugin is looked for, in order: `$SEGKIT_TRAINER_PLUGIN`; beside the binary (an
/// install); `deps/` beside it (where cargo leaves it in `target/<profile>/`); `../lib/segkit/`.
#[cfg(feature = "train")]
fn candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os(PLUGIN_ENV) {
        return vec![PathBuf::from(p)];
    }
    let name = format!(
        "{}segkit_trainer_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(PathBuf::from))
    else {
        return vec![PathBuf::from(name)];
    };
    vec![
        dir.join(&name),
        dir.join("deps").join(&name),
        dir.join("../lib/segkit").join(&name),
    ]
}

#[cfg(feature = "train")]
fn locate() -> anyhow::Result<PathBuf> {
    let tried = candidates();
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    anyhow::bail!(
        "the trainer plugin was not found (looked for {}); build it with `make build` or \
         `cargo build --release`, or set {PLUGIN_ENV} to its path",
        list.join(", ")
    )
}

/// Opening the library and calling its C entry points; `unsafe` is confined here.
#[cfg(feature = "train")]
#[allow(unsafe_code)]
mod load {
    use std::ffi::{c_char, c_int, CStr, CString, OsString};
    use std::os::unix::ffi::OsStringExt;
    use std::path::Path;

    use anyhow::{bail, Context};
    use libloading::{Library, Symbol};

    /// Must equal the plugin's `ABI_VERSION`.
    const ABI_VERSION: u32 = 1;

    type AbiFn = extern "C" fn() -> u32;
    type VersionFn = extern "C" fn() -> *const c_char;
    type MainFn = unsafe extern "C" fn(c_int, *const *const c_char) -> c_int;

    pub fn call(path: &Path, args: Vec<OsString>) -> anyhow::Result<i32> {
        // SAFETY: loading runs the plugin's (and libtorch's) initialisers; the file is the
        // plugin built with this binary, checked by ABI and version below before any call
        // with arguments.
        let lib = unsafe { Library::new(path) }.with_context(|| {
            format!(
                "cannot load the trainer plugin {} (it needs libtorch 2.13.0 where it was \
                 built; rebuild with `make build`)",
                path.display()
            )
        })?;
        // SAFETY: the symbols have exactly these signatures in trainer/plugin/src/lib.rs.
        let (abi, version, main) = unsafe {
            let abi: Symbol<AbiFn> = lib.get(b"segkit_trainer_plugin_abi\0")?;
            let version: Symbol<VersionFn> = lib.get(b"segkit_trainer_plugin_version\0")?;
            let main: Symbol<MainFn> = lib.get(b"segkit_trainer_plugin_main\0")?;
            (*abi, *version, *main)
        };
        if abi() != ABI_VERSION {
            bail!(
                "{} speaks plugin interface {}, this segkit {ABI_VERSION}: rebuild both",
                path.display(),
                abi()
            );
        }
        // SAFETY: a static NUL-terminated string.
        let theirs = unsafe { CStr::from_ptr(version()) }.to_string_lossy();
        if theirs != env!("CARGO_PKG_VERSION") {
            bail!(
                "{} is segkit {theirs}, this binary {}: rebuild both",
                path.display(),
                env!("CARGO_PKG_VERSION")
            );
        }
        let c_args: Vec<CString> = args
            .into_iter()
            .map(|a| CString::new(a.into_vec()))
            .collect::<Result<_, _>>()
            .context("an argument contains a NUL byte")?;
        let ptrs: Vec<*const c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: `ptrs` holds `len` valid C strings that live until the call returns.
        let status = unsafe { main(ptrs.len() as c_int, ptrs.as_ptr()) };
        // Never unloaded: libtorch does not support being unloaded, and the process ends next.
        std::mem::forget(lib);
        Ok(status)
    }
}
