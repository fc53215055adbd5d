//! Errors of report rendering; every variant that concerns a file names it.

use std::path::PathBuf;

use segkit_labelme::dataset::DatasetError;

/// What went wrong while rendering a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file or folder is not what the contract says.
    #[error("{path}: {message}")]
    Invalid {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong, in words a user can act on.
        message: String,
    },
    /// Reading a dataset file failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
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
        ReportError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
