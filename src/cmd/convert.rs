//! `segkit convert` (placeholder until its issue lands; owned by the convert work).

/// Placeholder.
#[derive(clap::Args)]
pub struct Args {}

/// Placeholder.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("segkit convert is not built yet")
}
