//! The data model: collection schemas and records.

pub(crate) mod record;
mod schema;
mod update;

pub use record::{validate_id, Record, MAX_ID_LEN};
pub(crate) use schema::{validate_name, MAX_NAME_BYTES, RECORD_NAMES};
pub use schema::{FieldKind, PiiKind, Schema, MAX_FIELDS_PER_KIND};
pub use update::Update;
