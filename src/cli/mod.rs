//! The command-line interface: arguments, commands, the demo and the bench.

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod privacy;
pub mod stress;
