//! `segkit report` and `segkit compare`: self-contained HTML pages of runs, datasets and
//! comparisons (the `segkit-reports` crate does the work).

use std::path::PathBuf;

use anyhow::Context;
use segkit_reports::{Lang, Options, Target};

/// Write a self-contained HTML report of a run folder or a dataset folder.
///
/// A run folder (it has metrics.jsonl or config.toml) gets the training report: summary,
/// loss/lr/metric curves with the best epoch marked, per-class table, confusion matrix,
/// prediction grid (image | ground truth | prediction | overlay | error map) and the dataset
/// it trained on. A dataset folder gets the dataset report: class pixel share, instance
/// counts and sizes per class and view, image sizes, samples per class, warnings. The page
/// has no external references: it opens offline and can be mailed as one file.
///
/// Example:
///   segkit report runs/default                  # writes runs/default/report.html
///   segkit report runs/default --lang zh --out 报告.html
///   segkit report data/voc --out dataset.html
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// Run folder or dataset folder.
    pub path: PathBuf,
    /// Output file [default: RUN/report.html for a run, <dataset name>-report.html for a dataset].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Language of labels and headings: en or zh.
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    pub lang: Lang,
    /// Longest side of each thumbnail, in pixels.
    #[arg(long, default_value_t = 224)]
    pub thumb: u32,
    /// Prediction grid: all val images when there are at most 2×K, else the K worst and K best by Dice.
    #[arg(long, default_value_t = 6, value_name = "K")]
    pub best_worst: usize,
}

/// Compare runs side by side in one HTML page.
///
/// Rows are runs; columns are the config fields that differ between them, then the key
/// metrics with the best in each column highlighted. Curves are overlaid on shared axes (one
/// colour per run), per-class Dice is shown as grouped bars, and the same val images are
/// shown as predicted by each run. Runs are named by their differing settings
/// (e.g. `lr=0.0001 loss=ce+dice`).
///
/// Example:
///   segkit compare runs/naive runs/default --out compare.html
///   segkit compare --sweep sweeps/lr/sweep.json --out sweep.html
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct CompareArgs {
    /// Run folders, in the order to show them.
    pub runs: Vec<PathBuf>,
    /// A sweep index (sweep.json, a text file of run folders, or a folder of runs); its runs
    /// are compared after any given directly.
    #[arg(long, value_name = "INDEX")]
    pub sweep: Option<PathBuf>,
    /// Output file.
    #[arg(long, short, default_value = "compare.html")]
    pub out: PathBuf,
    /// Language of labels and headings: en or zh.
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    pub lang: Lang,
    /// Longest side of each thumbnail, in pixels.
    #[arg(long, default_value_t = 224)]
    pub thumb: u32,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    s.parse()
}

fn size_kb(html: &str) -> String {
    format!("{:.0} KB", html.len() as f64 / 1024.0)
}

/// `segkit report`.
pub fn report(a: ReportArgs) -> anyhow::Result<()> {
    let opts = Options {
        lang: a.lang,
        thumb_px: a.thumb.max(16),
        best_worst_k: a.best_worst.max(1),
        grid_all_up_to: 2 * a.best_worst.max(1),
        ..Options::default()
    };
    let (report, out, what) = match segkit_reports::detect(&a.path)? {
        Target::Run(dir) => {
            let r = segkit_reports::run_report(&dir, &opts)
                .with_context(|| format!("reporting run {}", dir.display()))?;
            (r, a.out.unwrap_or_else(|| dir.join("report.html")), "run")
        }
        Target::Dataset(dir) => {
            let r = segkit_reports::dataset_report(&dir, &opts)
                .with_context(|| format!("reporting dataset {}", dir.display()))?;
            let name = dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "dataset".into());
            (
                r,
                a.out
                    .unwrap_or_else(|| PathBuf::from(format!("{name}-report.html"))),
                "dataset",
            )
        }
    };
    report.write(&out)?;
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    println!(
        "wrote {what} report of {} to {} ({})",
        a.path.display(),
        out.display(),
        size_kb(&report.html)
    );
    Ok(())
}

/// `segkit compare`.
pub fn compare(a: CompareArgs) -> anyhow::Result<()> {
    let mut runs = a.runs.clone();
    if let Some(index) = &a.sweep {
        runs.extend(segkit_reports::sweep_runs(index)?);
    }
    if runs.is_empty() {
        anyhow::bail!("no runs to compare: give run folders or --sweep INDEX");
    }
    let opts = Options {
        lang: a.lang,
        thumb_px: a.thumb.max(16),
        ..Options::default()
    };
    let report = segkit_reports::compare_report(&runs, &opts)?;
    report.write(&a.out)?;
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    println!(
        "wrote comparison of {} runs to {} ({})",
        runs.len(),
        a.out.display(),
        size_kb(&report.html)
    );
    Ok(())
}
