//! Integration tests, compiled into one binary.
#![allow(clippy::unwrap_used, missing_docs)]
mod packed;
