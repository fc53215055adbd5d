//! `segkit synth` (being written).

/// Placeholder.
#[derive(clap::Args)]
pub struct Args {}

/// Placeholder.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
