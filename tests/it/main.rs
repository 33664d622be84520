//! Integration tests, compiled into one binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod bad_input;
mod bench;
mod brute;
mod checkpoint;
mod cli;
mod concurrency;
mod crash;
mod crypto;
mod db;
mod geo;
mod golden;
mod h3_index;
mod hooked_fs;
mod import;
mod kill9;
mod log;
mod model;
mod packed;
mod privacy;
mod privacy_ext;
mod queries;
mod read_only;
mod recovery_faults;
mod repair;
