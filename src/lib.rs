//! # geocrm
//!
//! An embedded spatial database engine for customer records.
#![deny(missing_docs, unsafe_code, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod codec;
pub mod error;
pub mod geo;
pub mod index;
pub mod io;

pub use error::{Error, Result};
pub use geo::LatLon;
