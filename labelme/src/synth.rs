//! Synthetic demo dataset (being written).
