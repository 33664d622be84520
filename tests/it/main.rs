//! Integration tests, compiled into one binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod brute;
mod cli;
mod crypto;
mod db;
mod geo;
mod import;
mod log;
mod model;
mod queries;
