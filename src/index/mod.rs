//! Spatial and attribute indexes: the in-memory table for recent writes and the packed,
//! memory-mappable R-tree and H3 cell column for checkpoints.

pub mod checkpoint;
pub mod memory;
pub mod packed;
pub mod view;

pub use checkpoint::{Checkpoint, CheckpointMeta, CheckpointRow};
pub use memory::{MemoryTable, OpPointer, Row};
pub use view::{BaseRows, HiddenRows, RowRef, TableView};
