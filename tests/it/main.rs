//! Integration tests, compiled into one binary.
#![allow(clippy::unwrap_used, missing_docs)]

mod brute;
mod crash;
mod crypto;
mod db;
mod geo;
mod kill9;
mod log;
mod model;
mod privacy;
mod queries;
