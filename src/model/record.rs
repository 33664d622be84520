//! A customer record as the host writes it.

use crate::crypto::Pii;
use crate::error::{Error, Result};
use crate::geo::LatLon;

/// Longest record id, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// A record to upsert: a host-chosen id, a location, attributes and PII.
///
/// ```
/// use geocrm::{LatLon, Record};
/// let r = Record::new("C-000123", LatLon::new(52.52, 13.405)?)
///     .number("lifetime_value", 1830.0)
///     .category("tier", "gold")
///     .pii("name", "Ada Lovelace");
/// assert_eq!(r.id(), "C-000123");
/// // PII never shows in Debug output:
/// assert!(!format!("{r:?}").contains("Lovelace"));
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Record {
    pub(crate) id: String,
    pub(crate) location: LatLon,
    pub(crate) numbers: Vec<(String, f64)>,
    pub(crate) categories: Vec<(String, String)>,
    pub(crate) pii: Vec<(String, Pii)>,
}

impl Record {
    /// A record with an id and a location and no attributes.
    #[must_use]
    pub fn new(id: impl Into<String>, location: LatLon) -> Self {
        Record { id: id.into(), location, numbers: Vec::new(), categories: Vec::new(), pii: Vec::new() }
    }

    /// Sets a number attribute (must be finite; checked on upsert).
    #[must_use]
    pub fn number(mut self, field: impl Into<String>, value: f64) -> Self {
        self.numbers.push((field.into(), value));
        self
    }

    /// Sets a category attribute.
    #[must_use]
    pub fn category(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.categories.push((field.into(), value.into()));
        self
    }

    /// Sets a PII field; it is sealed before it reaches the log.
    #[must_use]
    pub fn pii(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.pii.push((field.into(), Pii::new(value)));
        self
    }

    /// The record id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The location.
    #[must_use]
    pub fn location(&self) -> LatLon {
        self.location
    }
}

/// Checks the id of a new record (an upsert's, a CSV import's): [`validate_id`]; no Unicode
/// direction control (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), which makes a
/// terminal show an id as another (from the CLI review); no other invisible character
/// (zero-width spaces, soft hyphens, byte-order marks, variation selectors, …:
/// [`crate::crypto::normalize::is_invisible`]; the zero-width non-joiner and joiner only
/// between two letters, where Persian and Indic spellings use them) and no line or paragraph
/// separator; and no
/// white space at either end — `"C-1\u{200B}"` or `" C-1"` would be a customer that looks
/// like `C-1`. Ids stored before these rules stay readable, and can be updated, deleted and
/// erased; an upsert refuses them as it refuses new ones (a repair rewrites them through a
/// path of its own).
///
/// # Errors
/// [`Error::InvalidRecord`] with field `id` (the id as given: its `Debug` form, which errors
/// show, escapes what a terminal would not show).
pub(crate) fn validate_new_id(id: &str) -> Result<()> {
    validate_id(id)?;
    let refuse = |reason: String| Error::InvalidRecord {
        id: id.chars().take(64).collect(),
        field: "id".into(),
        reason,
    };
    if id.starts_with(char::is_whitespace) || id.ends_with(char::is_whitespace) {
        return Err(refuse(
            "the id begins or ends with white space (it would look like the id without it)".into(),
        ));
    }
    let direction = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
    if id.chars().any(direction) {
        return Err(refuse(
            "the id contains a Unicode direction control (it would show as another id)".into(),
        ));
    }
    let chars: Vec<char> = id.chars().collect();
    // The zero-width non-joiner and joiner inside a word of a script that needs them (Persian,
    // the Indic scripts, where they follow a letter or a virama) are part of its spelling;
    // anywhere else, and between ASCII characters, they only hide.
    let joins = |i: usize| {
        let before = i.checked_sub(1).and_then(|j| chars.get(j)).is_some_and(|&c| {
            !c.is_ascii() && !c.is_whitespace() && !crate::crypto::normalize::is_invisible(c)
        });
        let after = chars.get(i + 1).is_some_and(|&c| !c.is_ascii() && c.is_alphabetic());
        before && after
    };
    let hidden = |&(i, &c): &(usize, &char)| {
        (crate::crypto::normalize::is_invisible(c) && !(matches!(c, '\u{200C}' | '\u{200D}') && joins(i)))
            || matches!(c, '\u{2028}' | '\u{2029}')
    };
    if let Some((_, &c)) = chars.iter().enumerate().find(hidden) {
        return Err(refuse(format!(
            "the id contains an invisible character, U+{:04X} (it would look like another id)",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Checks a record id: 1–256 bytes, no control characters.
///
/// # Errors
/// [`Error::InvalidRecord`] with field `id`.
pub fn validate_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "the id is empty"
    } else if id.len() > MAX_ID_LEN {
        "the id is longer than 256 bytes"
    } else if id.chars().any(char::is_control) {
        "the id contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidRecord { id: id.chars().take(64).collect(), field: "id".into(), reason: reason.into() })
}
