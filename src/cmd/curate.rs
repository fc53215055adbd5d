//! `segkit stats|filter|remap|split|crop` (placeholder until the curation issue lands).

/// Placeholder.
#[derive(clap::Args)]
pub struct StatsArgs {}

/// Placeholder.
pub fn stats(_a: StatsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
