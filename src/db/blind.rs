//! Validation at the door for phone and e-mail PII fields.
//!
//! Phone and e-mail fields ([`crate::model::PiiKind`]) are normalized when a record is
//! written; a bad value is refused naming the record and field, never the value.

use crate::crypto::{normalize_email, normalize_phone, Pii};
use crate::error::{Error, Result};
use crate::model::{PiiKind, Schema};

/// Normalizes the value of PII field `field` according to its kind. Errors name the record
/// and field and give a reason; they never contain the value.
pub(crate) fn normalize_pii(schema: &Schema, id: &str, field: &str, value: &Pii) -> Result<Pii> {
    let normalized = match schema.pii_kind(field) {
        Some(PiiKind::Phone) => normalize_phone(value.expose()),
        Some(PiiKind::Email) => normalize_email(value.expose()),
        // Text, or not a PII field (reported by the caller's schema check).
        _ => return Ok(value.clone()),
    };
    normalized.map(Pii::new).map_err(|e| match e {
        Error::InvalidRecord { reason, .. } => {
            Error::InvalidRecord { id: id.to_owned(), field: field.to_owned(), reason }
        }
        other => other,
    })
}
