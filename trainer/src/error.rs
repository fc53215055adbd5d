//! The trainer's error type: every variant says what is wrong, where, and how to fix it.

use std::path::PathBuf;

/// What went wrong while training, evaluating or predicting.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A dataset file is missing or does not follow the contract.
    #[error(transparent)]
    Dataset(#[from] segkit_labelme::dataset::DatasetError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration is invalid; the message names the key and the fix.
    #[error("config: {0}")]
    Config(String),
    /// Labels in the dataset do not fit the configured classes.
    #[error("{0}")]
    Labels(String),
    /// A checkpoint or resume state is unreadable or does not fit the model.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An input image could not be used.
    #[error("{path}: {message}")]
    Input {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Training diverged (NaN or infinite loss).
    #[error("{0}")]
    Diverged(String),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
    /// A checkpoint error on `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
