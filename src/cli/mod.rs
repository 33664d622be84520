//! The command-line interface: arguments, commands, the demo and the bench.

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod privacy;
pub mod stress;

/// The most synthetic customers `demo` and `bench` generate (about 3 GB of memory for the
/// bench at this size); more was a capacity-overflow panic or an aborted allocation.
pub const MAX_SYNTHETIC_RECORDS: usize = 20_000_000;
