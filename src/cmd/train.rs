//! `segkit train`, `eval`, `predict` (placeholder until the trainer issue lands).

/// Train a model.
#[derive(clap::Args)]
pub struct TrainArgs {}
/// Evaluate a checkpoint.
#[derive(clap::Args)]
pub struct EvalArgs {}
/// Predict masks.
#[derive(clap::Args)]
pub struct PredictArgs {}

/// Placeholder.
pub fn train(_a: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
/// Placeholder.
pub fn eval(_a: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
/// Placeholder.
pub fn predict(_a: PredictArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
