//! Self-contained HTML reports of segkit runs and datasets.
#![deny(missing_docs)]
