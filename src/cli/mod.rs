//! The command-line interface: arguments, commands and the demo.

pub mod args;
pub mod commands;
pub mod demo;
pub mod privacy;
pub mod stress;
