//! `segkit augment` (placeholder until its issue lands; owned by the augment work).

/// Placeholder.
#[derive(clap::Args)]
pub struct Args {}

/// Placeholder.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("segkit augment is not built yet")
}
