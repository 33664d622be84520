//! Queries: filters, nearest-k, area scans and aggregations.

mod aggregate;
mod cell_groups;
mod filter;
mod filter_parse;
mod spatial;

pub use aggregate::{Collector, FieldStats, Group, GroupBy, GroupKey, Groups, GroupsIter};
pub(crate) use cell_groups::all_by_cell;
pub use filter::{CategoryCodes, CompiledFilter, Filter, MISSING_CODE};
pub(crate) use spatial::nearest_in_checkpoint;
pub use spatial::{count, nearest, scan, Neighbor, NeighborRef, Scope};
