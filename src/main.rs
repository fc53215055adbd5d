//! `segkit`: the command-line front of the segkit crates.
//!
//! This file is glue: it parses arguments (clap derive; the doc comments are the help
//! text), hands each subcommand to its module under `cmd/`, prints an error once and maps
//! it to an exit code. The work itself lives in the library crates.

mod cmd;

use clap::{Parser, Subcommand};

// Why not the system allocator: see the mimalloc line in Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Segment defects and structures in small image datasets.
///
/// labelme JSON → pixel-exact VOC masks → curation → augmentation → UNet training →
/// HTML reports, in one binary. Run `segkit <command> --help` for an example of each.
#[derive(Parser)]
#[command(
    name = "segkit",
    version,
    about,
    long_about,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Synth(cmd::synth::Args),
    Convert(cmd::convert::Args),
    ImportMasks(cmd::convert::ImportArgs),
    ImportVoc(cmd::convert::ImportVocArgs),
    Stats(cmd::curate::StatsArgs),
    Filter(cmd::curate::FilterArgs),
    Remap(cmd::curate::RemapArgs),
    Split(cmd::curate::SplitArgs),
    Crop(cmd::curate::CropArgs),
    Augment(cmd::augment::Args),
    /// Train a segmentation model on a dataset and write a run folder.
    ///
    /// Runs in the trainer plugin; `segkit train --help` shows its options and examples.
    #[command(verbatim_doc_comment)]
    Train(cmd::plugin::Forward),
    /// Evaluate a checkpoint on a dataset split.
    ///
    /// Runs in the trainer plugin; `segkit eval --help` shows its options and examples.
    #[command(verbatim_doc_comment)]
    Eval(cmd::plugin::Forward),
    /// Predict masks for images with a checkpoint, at full resolution.
    ///
    /// Runs in the trainer plugin; `segkit predict --help` shows its options and examples.
    #[command(verbatim_doc_comment)]
    Predict(cmd::plugin::Forward),
    /// Find a learning rate: a short run with a rising rate.
    ///
    /// Runs in the trainer plugin; `segkit lr-find --help` shows its options and examples.
    #[command(verbatim_doc_comment)]
    LrFind(cmd::plugin::Forward),
    /// Train one run per combination of a grid of settings.
    ///
    /// Runs in the trainer plugin; `segkit sweep --help` shows its options and examples.
    #[command(verbatim_doc_comment)]
    Sweep(cmd::plugin::Forward),
    /// Import a PyTorch state dict as a segkit checkpoint.
    ///
    /// Runs in the trainer plugin; `segkit import-weights --help` shows its options and examples.
    #[command(verbatim_doc_comment)]
    ImportWeights(cmd::plugin::Forward),
    Report(cmd::report::ReportArgs),
    Compare(cmd::report::CompareArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        // The plugin re-parses the whole command line and prints its own errors.
        Command::Train(_)
        | Command::Eval(_)
        | Command::Predict(_)
        | Command::LrFind(_)
        | Command::Sweep(_)
        | Command::ImportWeights(_) => match cmd::plugin::run() {
            Ok(status) => std::process::exit(status),
            Err(e) => Err(e),
        },
        Command::Synth(a) => cmd::synth::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::ImportMasks(a) => cmd::convert::import_masks(a),
        Command::ImportVoc(a) => cmd::convert::import_voc(a),
        Command::Stats(a) => cmd::curate::stats(a),
        Command::Filter(a) => cmd::curate::run_filter(a),
        Command::Remap(a) => cmd::curate::run_remap(a),
        Command::Split(a) => cmd::curate::run_split(a),
        Command::Crop(a) => cmd::curate::run_crop(a),
        Command::Augment(a) => cmd::augment::run(a),
        Command::Report(a) => cmd::report::report(a),
        Command::Compare(a) => cmd::report::compare(a),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
