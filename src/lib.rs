//! # geocrm
//!
//! An embedded spatial database engine for customer records: an append-only, checksummed
//! log as the source of truth; exact great-circle queries (nearest-k, radius, bounding box,
//! polygons with holes) with attribute filters; aggregations grouped by H3 cell or category;
//! PII sealed with XChaCha20-Poly1305 under per-record keys, never stored in plaintext.
//!
//! ```
//! use geocrm::{crypto::RawKey, Database, Filter, LatLon, Options, Record, Schema};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])))?;
//! db.create_collection("customers", Schema::crm().number("ltv").category("tier"))?;
//!
//! let mut batch = db.begin_write();
//! batch.upsert("customers", Record::new("C-000123", LatLon::new(48.8566, 2.3522)?)
//!     .number("ltv", 1830.0).category("tier", "gold").pii("name", "Ada Lovelace"))?;
//! batch.commit()?; // fsynced when it returns
//!
//! let snap = db.read();
//! let customers = snap.collection("customers")?;
//! let near = customers.nearest(LatLon::new(48.86, 2.34)?, 10, &Filter::parse("tier = 'gold'")?)?;
//! assert_eq!(near[0].id, "C-000123");
//! assert_eq!(customers.reveal("C-000123")?["name"].expose(), "Ada Lovelace");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Module map: [`db`] (open, write, read), [`log`] (segments, frames, recovery), [`index`]
//! (in-memory tree), [`query`] (filters, nearest, scans, aggregations), [`geo`] (coordinates,
//! distance, boxes, polygons, GeoJSON), [`crypto`] (keys, envelopes, keystore), [`audit`]
//! (the audit log of PII reads), [`io`] (the file-system seam), [`codec`] (frames, bincode),
//! [`import`] (CSV), [`dataset`] (synthetic data). What is protected and what is not:
//! `PRIVACY.md`.
#![deny(missing_docs, unsafe_code, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod codec;
pub mod crypto;
pub mod dataset;
pub mod db;
pub mod error;
pub mod geo;
pub mod import;
pub mod index;
pub mod io;
pub mod log;
pub mod model;
pub mod query;

mod parallel;
mod radix;

pub use db::{
    CollectionReader, CommitReceipt, Database, DuplicateGroup, DuplicateReason, Durability, Options,
    Rejected, Snapshot, WriteBatch,
};
pub use error::{Error, Result};
pub use geo::LatLon;
pub use model::{Record, Schema, Update};
pub use query::Filter;

/// The `h3o` crate geocrm computes H3 cells with, so that a caller can name the
/// [`h3o::CellIndex`] of a [`query::GroupKey::Cell`] (its parent, boundary or centre)
/// without depending on the same version itself.
///
/// ```
/// use geocrm::query::{GroupBy, GroupKey, Scope};
/// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path(), Options::new())?;
/// db.create_collection("c", Schema::new())?;
/// let mut batch = db.begin_write();
/// batch.upsert("c", Record::new("a", LatLon::new(48.85, 2.35)?))?;
/// batch.commit()?;
/// let groups = db.read().collection("c")?.aggregate(Scope::All, &GroupBy::H3(6), &[], &Filter::All)?;
/// let GroupKey::Cell(cell) = groups.get(0).unwrap().key else { unreachable!() };
/// let centre = geocrm::h3o::LatLng::from(cell);
/// assert_eq!(cell.resolution(), geocrm::h3o::Resolution::Six);
/// assert!((centre.lat() - 48.85).abs() < 0.1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use h3o;
