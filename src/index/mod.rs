//! Spatial indexes.

pub mod packed;
