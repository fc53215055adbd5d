//! Errors of report rendering; every variant that concerns a file names it.

use std::path::PathBuf;

use segkit_labelme::dataset::DatasetError;

/// What went wrong while rendering a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written, or is not what the contract says (the file
    /// error type shared by every segkit crate).
    #[error(transparent)]
    File(#[from] DatasetError),
    /// A template failed to render (a bug in this crate, not in the input).
    #[error("rendering the {template} page: {message}")]
    Template {
        /// Which page.
        template: String,
        /// minijinja's message.
        message: String,
    },
    /// A chart failed to draw.
    #[error("drawing the chart {chart:?}: {message}")]
    Chart {
        /// Which chart.
        chart: String,
        /// plotters' message.
        message: String,
    },
    /// Nothing to compare.
    #[error("{0}")]
    Usage(String),
}

impl ReportError {
    /// A content error on `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DatasetError::invalid(path, message).into()
    }
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::io(path, source).into()
    }
}

/// Result type of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
