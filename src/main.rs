//! `segkit`: the command-line front of the segkit crates.
//!
//! This file is glue: it parses arguments (clap derive; the doc comments are the help
//! text), hands each subcommand to its module under `cmd/`, prints an error once and maps
//! it to an exit code. The work itself lives in the library crates.

mod cmd;
mod progress;

use clap::{Parser, Subcommand};

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
    #[cfg(feature = "train")]
    Train(cmd::train::TrainArgs),
    #[cfg(feature = "train")]
    Eval(cmd::train::EvalArgs),
    #[cfg(feature = "train")]
    Predict(cmd::train::PredictArgs),
    #[cfg(feature = "train")]
    LrFind(cmd::sweep::LrFindArgs),
    #[cfg(feature = "train")]
    Sweep(cmd::sweep::SweepArgs),
    #[cfg(feature = "train")]
    ImportWeights(cmd::weights::ImportArgs),
    Report(cmd::report::ReportArgs),
    Compare(cmd::report::CompareArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
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
        #[cfg(feature = "train")]
        Command::Train(a) => cmd::train::train(a),
        #[cfg(feature = "train")]
        Command::Eval(a) => cmd::train::eval(a),
        #[cfg(feature = "train")]
        Command::Predict(a) => cmd::train::predict(a),
        #[cfg(feature = "train")]
        Command::LrFind(a) => cmd::sweep::lr_find(a),
        #[cfg(feature = "train")]
        Command::Sweep(a) => cmd::sweep::sweep(a),
        #[cfg(feature = "train")]
        Command::ImportWeights(a) => cmd::weights::run(a),
        Command::Report(a) => cmd::report::report(a),
        Command::Compare(a) => cmd::report::compare(a),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
