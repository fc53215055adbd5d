//! The segkit trainer plugin: train, evaluate and predict segmentation models with tch.
//!
//! The only segkit crate that links libtorch.
#![deny(missing_docs)]
