//! A collection's declared fields.

use bincode::{Decode, Encode};
use serde::Serialize;

use crate::error::{Error, Result};

/// Most fields of one kind a collection may declare.
pub const MAX_FIELDS_PER_KIND: usize = 64;

/// What kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Personal data, sealed with authenticated encryption before it is written.
    Pii,
    /// A finite `f64` attribute (lifetime value, visits…), public and indexed.
    Number,
    /// A string attribute with few distinct values (tier, region…), public and indexed.
    Category,
}

/// The fields of a collection, declared when it is created.
///
/// ```
/// use geocrm::Schema;
/// let schema = Schema::crm().number("lifetime_value").category("tier");
/// assert_eq!(schema.pii_fields(), ["name", "phone", "email", "address"]);
/// assert!(schema.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode, Serialize)]
pub struct Schema {
    pii: Vec<String>,
    numbers: Vec<String>,
    categories: Vec<String>,
}

impl Schema {
    /// A schema with no fields: id and location only.
    #[must_use]
    pub fn new() -> Self {
        Schema::default()
    }

    /// The CRM default: PII fields `name`, `phone`, `email`, `address`.
    #[must_use]
    pub fn crm() -> Self {
        Schema::new().pii("name").pii("phone").pii("email").pii("address")
    }

    /// Adds a PII field.
    #[must_use]
    pub fn pii(mut self, name: impl Into<String>) -> Self {
        self.pii.push(name.into());
        self
    }

    /// Adds a number attribute.
    #[must_use]
    pub fn number(mut self, name: impl Into<String>) -> Self {
        self.numbers.push(name.into());
        self
    }

    /// Adds a category attribute.
    #[must_use]
    pub fn category(mut self, name: impl Into<String>) -> Self {
        self.categories.push(name.into());
        self
    }

    /// PII field names in declaration order.
    #[must_use]
    pub fn pii_fields(&self) -> &[String] {
        &self.pii
    }

    /// Number attribute names in declaration order.
    #[must_use]
    pub fn number_fields(&self) -> &[String] {
        &self.numbers
    }

    /// Category attribute names in declaration order.
    #[must_use]
    pub fn category_fields(&self) -> &[String] {
        &self.categories
    }

    /// The kind and position of a field.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<(FieldKind, usize)> {
        let find = |list: &[String]| list.iter().position(|f| f == name);
        find(&self.pii)
            .map(|i| (FieldKind::Pii, i))
            .or_else(|| find(&self.numbers).map(|i| (FieldKind::Number, i)))
            .or_else(|| find(&self.categories).map(|i| (FieldKind::Category, i)))
    }

    /// Checks names: 1–64 characters of `[A-Za-z0-9_]`, not `id`, `lat` or `lon`, unique
    /// across all kinds, at most [`MAX_FIELDS_PER_KIND`] of each kind.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (kind, list) in [("PII", &self.pii), ("number", &self.numbers), ("category", &self.categories)] {
            if list.len() > MAX_FIELDS_PER_KIND {
                return Err(Error::InvalidSchema {
                    reason: format!("{} {kind} fields; at most {MAX_FIELDS_PER_KIND}", list.len()),
                });
            }
            for name in list {
                validate_name(name)?;
                if !seen.insert(name.as_str()) {
                    return Err(Error::InvalidSchema { reason: format!("field {name:?} is declared twice") });
                }
            }
        }
        Ok(())
    }
}

/// Checks a collection or field name.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(Error::InvalidSchema {
            reason: format!("name {name:?} must be 1-64 characters of letters, digits and '_'"),
        });
    }
    if ["id", "lat", "lon"].contains(&name) {
        return Err(Error::InvalidSchema { reason: format!("{name:?} is reserved for the record itself") });
    }
    Ok(())
}
