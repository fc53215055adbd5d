//! Self-contained HTML reports of segkit runs and datasets, and side-by-side comparisons of
//! runs.
//!
//! The reports read only the on-disk contracts (ARCHITECTURE.md): a run folder
//! (`config.toml`, `dataset.json`, `metrics.jsonl`, `predictions/`, `confusion.json`,
//! `log.txt`, optional `lr_find.json`) and a dataset folder. They never use trainer types, so
//! a run folder written by any tool that follows the contract renders. Missing optional files
//! and missing metric fields are tolerated: the page shows what exists and says what is
//! missing.
//!
//! Each page is one HTML file with inline CSS, inline SVG charts (drawn with plotters) and
//! base64 thumbnails (downscaled JPEG photos, PNG masks): it opens offline, references nothing
//! on the network and prints well. The HTML comes from minijinja templates with auto-escaping,
//! so class names, paths and config values always render as text.
//!
//! # Example
//!
//! [`run_report`] renders a run folder, [`dataset_report`] a dataset folder and
//! [`compare_report`] several runs; each returns a [`Report`] to write where wanted.
//!
//! ```
//! use segkit_labelme::dataset::{write_manifest, Manifest};
//! use segkit_reports::{dataset_report, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! write_manifest(dir.path(), &Manifest::new(&["_background_".into(), "scratch".into()]))?;
//! let report = dataset_report(dir.path(), &Options::default())?;
//! assert!(report.html.contains("scratch"));
//! assert!(!report.html.contains("https://"));
//! report.write(&dir.path().join("report.html"))?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod charts;
mod compare;
mod dataset_page;
mod error;
mod html;
mod i18n;
mod run;
mod run_page;
mod scoring;
mod sweep;
mod thumbs;

use std::path::{Path, PathBuf};

pub use compare::compare_report;
pub use dataset_page::dataset_report;
pub use error::{ReportError, Result};
pub use i18n::Lang;
pub use run::{is_run_dir, RunData};
pub use run_page::run_report;
pub use sweep::sweep_runs;

/// How a report is rendered.
#[derive(Debug, Clone)]
pub struct Options {
    /// Language of labels and headings.
    pub lang: Lang,
    /// Longest side of a thumbnail, in pixels.
    pub thumb_px: u32,
    /// Show every val image up to this many; above it, only the best and worst.
    pub grid_all_up_to: usize,
    /// How many best and how many worst images to show when there are many.
    pub best_worst_k: usize,
    /// Trainer defaults (the resolved config of a run with no settings), used to mark which
    /// config values of a run differ from them. When `None`, a run folder's optional
    /// `defaults.toml` is used; without either, no value is marked.
    pub defaults: Option<toml::Table>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lang: Lang::En,
            thumb_px: 224,
            grid_all_up_to: 12,
            best_worst_k: 6,
            defaults: None,
        }
    }
}

/// A rendered page.
#[derive(Debug, Clone)]
pub struct Report {
    /// The whole self-contained HTML document.
    pub html: String,
    /// What the page could not show and why (missing files or fields), as also said on the page.
    pub notes: Vec<String>,
}

impl Report {
    /// Write the page to `path` atomically (temp file and rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        segkit_labelme::dataset::atomic_write(path, self.html.as_bytes())?;
        Ok(())
    }
}

/// What a folder given to `segkit report` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A run folder.
    Run(PathBuf),
    /// A dataset folder.
    Dataset(PathBuf),
}

/// Tell a run folder (has `metrics.jsonl` or `config.toml`) from a dataset folder (has
/// `dataset.json` and `JPEGImages/` but no metrics).
pub fn detect(path: &Path) -> Result<Target> {
    if !path.is_dir() {
        return Err(ReportError::invalid(
            path,
            "not a folder (expected a run or dataset folder)",
        ));
    }
    if is_run_dir(path) {
        Ok(Target::Run(path.to_path_buf()))
    } else if path.join("dataset.json").is_file() {
        Ok(Target::Dataset(path.to_path_buf()))
    } else {
        Err(ReportError::invalid(
            path,
            "neither a run folder (no metrics.jsonl or config.toml) nor a dataset folder (no dataset.json)",
        ))
    }
}
