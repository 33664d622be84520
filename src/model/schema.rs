//! A collection's declared fields.

use bincode::de::read::Reader;
use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
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

/// What a PII field holds. Phone and e-mail fields are validated and normalized when a
/// record is written ([`crate::crypto::normalize_phone`], [`crate::crypto::normalize_email`]),
/// stored normalized (sealed), and blind-indexed for equality lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiKind {
    /// Free text (name, address…): sealed as given.
    #[default]
    Text,
    /// A phone number, normalized to E.164.
    Phone,
    /// An e-mail address, trimmed and lowercased.
    Email,
}

impl PiiKind {
    /// The tag stored in the log (FORMAT.md §5.2).
    pub(crate) fn tag(self) -> u8 {
        match self {
            PiiKind::Text => 0,
            PiiKind::Phone => 1,
            PiiKind::Email => 2,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<PiiKind> {
        [PiiKind::Text, PiiKind::Phone, PiiKind::Email].into_iter().find(|k| k.tag() == tag)
    }
}

/// The fields of a collection, declared when it is created.
///
/// ```
/// use geocrm::{model::PiiKind, Schema};
/// let schema = Schema::crm().number("lifetime_value").category("tier").pii_phone("mobile");
/// assert_eq!(schema.pii_fields(), ["name", "phone", "email", "address", "mobile"]);
/// assert_eq!(schema.pii_kind("phone"), Some(PiiKind::Phone));
/// assert_eq!(schema.pii_kind("mobile"), Some(PiiKind::Phone));
/// assert_eq!(schema.pii_kind("name"), Some(PiiKind::Text));
/// assert!(schema.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Schema {
    pii: Vec<String>,
    numbers: Vec<String>,
    categories: Vec<String>,
    /// The kind of each PII field, parallel to `pii`.
    pii_kinds: Vec<PiiKind>,
}

impl Schema {
    /// A schema with no fields: id and location only.
    #[must_use]
    pub fn new() -> Self {
        Schema::default()
    }

    /// The CRM default: PII fields `name` (text), `phone` (a phone number, E.164),
    /// `email` (an e-mail address) and `address` (text).
    #[must_use]
    pub fn crm() -> Self {
        Schema::new().pii("name").pii_phone("phone").pii_email("email").pii("address")
    }

    /// Adds a free-text PII field (sealed as given).
    #[must_use]
    pub fn pii(self, name: impl Into<String>) -> Self {
        self.pii_of_kind(name, PiiKind::Text)
    }

    /// Adds a PII field holding a phone number: validated and normalized to E.164 on
    /// write, and blind-indexed (see [`crate::CollectionReader::find_by_phone`]).
    #[must_use]
    pub fn pii_phone(self, name: impl Into<String>) -> Self {
        self.pii_of_kind(name, PiiKind::Phone)
    }

    /// Adds a PII field holding an e-mail address: validated, trimmed and lowercased on
    /// write, and blind-indexed (see [`crate::CollectionReader::find_by_email`]).
    #[must_use]
    pub fn pii_email(self, name: impl Into<String>) -> Self {
        self.pii_of_kind(name, PiiKind::Email)
    }

    /// Adds a PII field of the given kind.
    #[must_use]
    pub fn pii_of_kind(mut self, name: impl Into<String>, kind: PiiKind) -> Self {
        self.pii.push(name.into());
        self.pii_kinds.push(kind);
        self
    }

    /// The kind of a PII field, or `None` when `name` is not a PII field.
    #[must_use]
    pub fn pii_kind(&self, name: &str) -> Option<PiiKind> {
        let i = self.pii.iter().position(|f| f == name)?;
        Some(self.pii_kind_at(i))
    }

    /// The kind of the PII field in slot `i` (text when out of range).
    #[must_use]
    pub fn pii_kind_at(&self, i: usize) -> PiiKind {
        self.pii_kinds.get(i).copied().unwrap_or_default()
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

// The encoding (FORMAT.md §5.2): the three name lists, then the PII kinds as one tag byte
// per PII field. Schemas written before kinds existed end after the lists (a schema is always
// the last value of its log operation); they decode with every PII field as text.
impl Encode for Schema {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.pii.encode(encoder)?;
        self.numbers.encode(encoder)?;
        self.categories.encode(encoder)?;
        let tags: Vec<u8> = (0..self.pii.len()).map(|i| self.pii_kind_at(i).tag()).collect();
        tags.encode(encoder)
    }
}

impl<C> Decode<C> for Schema {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let pii: Vec<String> = Decode::decode(decoder)?;
        let numbers = Decode::decode(decoder)?;
        let categories = Decode::decode(decoder)?;
        let pii_kinds = if decoder.reader().peek_read(1).is_some() {
            let tags: Vec<u8> = Decode::decode(decoder)?;
            if tags.len() != pii.len() {
                return Err(DecodeError::OtherString(format!(
                    "schema has {} PII fields but {} PII kinds",
                    pii.len(),
                    tags.len()
                )));
            }
            tags.into_iter()
                .map(|t| {
                    PiiKind::from_tag(t).ok_or_else(|| DecodeError::OtherString(format!("PII kind {t}")))
                })
                .collect::<Result<_, _>>()?
        } else {
            vec![PiiKind::Text; pii.len()]
        };
        Ok(Schema { pii, numbers, categories, pii_kinds })
    }
}
bincode::impl_borrow_decode!(Schema);

/// The names a record's own id and location go by, which no field may take.
pub(crate) const RECORD_NAMES: [&str; 3] = ["id", "lat", "lon"];

/// The longest collection or field name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 64;

/// Checks a collection or field name.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !ok_chars {
        return Err(Error::InvalidSchema {
            reason: format!("name {name:?} must be 1-64 characters of ASCII letters, digits and '_'"),
        });
    }
    if RECORD_NAMES.contains(&name) {
        return Err(Error::InvalidSchema { reason: format!("{name:?} is reserved for the record itself") });
    }
    Ok(())
}
