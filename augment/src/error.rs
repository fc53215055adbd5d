//! Errors of this crate; every variant names the file or pipeline it is about.

/// What went wrong while loading a pipeline or augmenting a sample or dataset.
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    /// A pipeline description (TOML/JSON) is malformed or names an unknown transform or parameter.
    #[error("{origin}: {message}")]
    Config {
        /// The pipeline file, or `<string>` for text given directly.
        origin: String,
        /// What is wrong, with the transform's position and name.
        message: String,
    },
    /// A sample's buffers do not match its size.
    #[error("invalid sample: {0}")]
    Shape(String),
    /// A file could not be read or written, or its content is not usable (an image that does
    /// not decode, a mask of another size, a missing split): the same error, naming the
    /// file, as the dataset crate's.
    #[error(transparent)]
    Dataset(#[from] segkit_labelme::dataset::DatasetError),
}

/// Result type of this crate.
pub type Result<T, E = AugmentError> = std::result::Result<T, E>;
