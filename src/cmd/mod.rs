//! One module per subcommand (or family of subcommands): its clap arguments, with an
//! example in the help text, and a `run` that calls the library crates and prints a
//! one-line summary of what was written where.

pub mod augment;
pub mod convert;
pub mod curate;
pub mod report;
pub mod synth;
#[cfg(feature = "train")]
pub mod train;
