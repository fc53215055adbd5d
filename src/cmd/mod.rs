//! One module per subcommand (or family of subcommands): its clap arguments, with an
//! example in the help text, and a `run` that calls the library crates and prints a
//! one-line summary of what was written where.

pub mod augment;
pub mod convert;
pub mod curate;
pub mod plugin;
pub mod report;
pub mod synth;

use std::path::Path;

/// Refuse to write into a folder that already holds files, unless `force`: mixing a new
/// dataset into an old one silently is how stale masks end up in training.
pub fn ensure_empty_output(out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() {
        if !out.is_dir() {
            anyhow::bail!("{} exists and is not a folder", out.display());
        }
        let non_empty = std::fs::read_dir(out)?.next().is_some();
        if non_empty && !force {
            anyhow::bail!(
                "{} is not empty: choose a new folder, or pass --force to write into it",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    Ok(())
}
