//! `segkit report` and `segkit compare` (placeholder until the reports issue lands).

/// Report.
#[derive(clap::Args)]
pub struct ReportArgs {}
/// Compare.
#[derive(clap::Args)]
pub struct CompareArgs {}

/// Placeholder.
pub fn report(_a: ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
/// Placeholder.
pub fn compare(_a: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
