//! Dataset curation: stats, filter, remap, split, crop, tile (being written).
