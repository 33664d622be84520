//! Spatial and attribute indexes: the in-memory table for recent writes and the packed,
//! memory-mappable R-tree and H3 cell column for checkpoints.

pub mod memory;
pub mod packed;

pub use memory::{MemoryTable, OpPointer, Row};
