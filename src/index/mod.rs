//! Spatial and attribute indexes.

pub mod memory;

pub use memory::{MemoryTable, OpPointer, Row};
