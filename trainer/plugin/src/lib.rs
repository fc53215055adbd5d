//! The trainer's commands as a plugin: `segkit train`, `eval`, `predict`, `lr-find`, `sweep`
//! and `import-weights`, built as a shared library (`libsegkit_trainer_plugin.so`) that the
//! `segkit` binary opens only when one of these commands runs.
//!
//! Why a plugin: libtorch is large. A binary linked against it spends about 0.25 s and
//! 116 MB at every start mapping and initialising it, before `main` — more than converting
//! a hundred 2000×2000 annotations takes. Keeping tch out of `segkit` itself lets every data
//! command start in milliseconds while training keeps one entry point for users.
//!
//! The interface is deliberately C-sized: the binary passes its whole `argv` to
//! [`segkit_trainer_plugin_main`], which parses it with the same clap definitions and returns
//! the exit status. Nothing Rust-specific crosses the boundary (each side has its own
//! standard library), so a plugin from another build is refused by
//! [`segkit_trainer_plugin_abi`] and the version check rather than misbehaving.
//!
//! # Example
//!
//! In-process, as the plugin's own tests do (the binary goes through the C entry point):
//!
//! ```
//! let status = segkit_trainer_plugin::run(["segkit", "train", "--help"]);
//! assert_eq!(status, 0);
//! ```
#![deny(missing_docs)]

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

pub mod sweep;
pub mod train;
pub mod weights;

/// Version of the entry points' signatures and meaning; the binary refuses a plugin that
/// reports another one.
pub const ABI_VERSION: u32 = 1;

/// The trainer's part of the `segkit` command line. The binary lists the same subcommands
/// with one-line descriptions and forwards their arguments here untouched.
#[derive(Parser)]
#[command(name = "segkit", bin_name = "segkit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(train::TrainArgs),
    Eval(train::EvalArgs),
    Predict(train::PredictArgs),
    LrFind(sweep::LrFindArgs),
    Sweep(sweep::SweepArgs),
    ImportWeights(weights::ImportArgs),
}

/// Parse `args` (`argv[0]` first, then the subcommand) and run the command; returns the
/// process exit status: 0 done, 1 failed (the error is printed once to stderr), 2 bad usage,
/// 130 stopped by Ctrl-C (after a clean stop and its summary line).
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version arrive here too, with exit code 0.
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Train(a) => train::train(a),
        Command::Eval(a) => train::eval(a),
        Command::Predict(a) => train::predict(a),
        Command::LrFind(a) => sweep::lr_find(a),
        Command::Sweep(a) => sweep::sweep(a),
        Command::ImportWeights(a) => weights::run(a),
    };
    match result {
        Ok(()) => 0,
        // The summary line already said what was kept and how to continue.
        Err(err) if err.is::<Interrupted>() => 130,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

/// A command stopped by Ctrl-C after writing what it finished: exit status 130 (the shell's
/// code for SIGINT), so `segkit train … && segkit report …` stops there too.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// The C entry points. `unsafe` is confined here: reading the `argv` the binary hands over.
#[allow(unsafe_code)]
mod entry {
    use std::ffi::{c_char, c_int, CStr, OsString};
    use std::os::unix::ffi::OsStringExt;

    /// [`super::ABI_VERSION`], for the binary to check before calling anything else.
    #[no_mangle]
    pub extern "C" fn segkit_trainer_plugin_abi() -> u32 {
        super::ABI_VERSION
    }

    /// The segkit version this plugin was built as (NUL-terminated, static).
    #[no_mangle]
    pub extern "C" fn segkit_trainer_plugin_version() -> *const c_char {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }

    /// Run a trainer command line and return its exit status.
    ///
    /// # Safety
    /// `argv` must point to `argc` valid NUL-terminated strings that outlive the call.
    #[no_mangle]
    pub unsafe extern "C" fn segkit_trainer_plugin_main(
        argc: c_int,
        argv: *const *const c_char,
    ) -> c_int {
        let args: Vec<OsString> = (0..argc.max(0) as usize)
            .map(|i| {
                // SAFETY: the caller guarantees `argc` valid C strings behind `argv`.
                let s = unsafe { CStr::from_ptr(*argv.add(i)) };
                OsString::from_vec(s.to_bytes().to_vec())
            })
            .collect();
        // A panic must not unwind into the binary's frames (another std, another ABI).
        let status = std::panic::catch_unwind(|| super::run(args)).unwrap_or(101);
        super::flush_std();
        status
    }
}

pub use entry::{
    segkit_trainer_plugin_abi, segkit_trainer_plugin_main, segkit_trainer_plugin_version,
};

/// This library's copy of the standard library never runs the exit-time flush of the
/// binary's `main`, so whatever it buffered is flushed before control goes back.
fn flush_std() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
