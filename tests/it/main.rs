//! Integration tests, compiled into one binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod bench;
mod brute;
mod cli;
mod crash;
mod crypto;
mod db;
mod geo;
mod import;
mod kill9;
mod log;
mod model;
mod packed;
mod privacy;
mod queries;
