//! Paired image/mask augmentation with ignore-index padding, reproducible by seed.
#![deny(missing_docs)]
