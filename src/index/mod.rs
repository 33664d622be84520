//! Spatial and attribute indexes: the in-memory table for recent writes, the packed,
//! memory-mappable R-tree and H3 cell column for checkpoints, and the standalone H3 cell
//! index file.

pub mod checkpoint;
pub mod h3;
pub mod memory;
pub mod packed;
mod sealed_header;
pub mod view;

pub use checkpoint::{Checkpoint, CheckpointMeta, CheckpointRow};
pub use memory::{MemoryTable, OpPointer, Row};
pub use view::{BaseRows, HiddenRows, RowRef, TableView};
