//! # geocrm
//!
//! An embedded spatial database engine for customer records.
#![deny(missing_docs, unsafe_code, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod codec;
pub mod crypto;
pub mod error;
pub mod geo;
pub mod io;
pub mod log;

pub use error::{Error, Result};
pub use geo::LatLon;
