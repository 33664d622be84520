//! Validation at the door and blind indexes for phone and e-mail PII fields.
//!
//! Phone and e-mail fields ([`crate::model::PiiKind`]) are normalized when a record is
//! written; a bad value is refused naming the record and field, never the value. Their
//! blind values — HMAC-SHA256 of the normalized value under the blind-index key — are stored
//! beside the sealed PII in the log, so an equality lookup needs neither plaintext nor
//! decryption.
//!
//! The blind-index key is derived from a random **root key** stored in the keystore like a
//! data key (reserved entry: empty collection name, record id [`BLIND_ROOT_ID`]), created
//! by the first write that needs it. Master-key rotation re-wraps it with every other key,
//! so blind values stay valid across rotations; erasing records never touches it.
//!
//! Lookups scan every live record of the collection (O(n) log reads, one frame read per
//! log frame): fine for back-office lookups and dedup reports, not for a hot path. An
//! in-memory map from blind value to ids would make them O(1) once the checkpoint work
//! settles where rows live.

use super::ops::{LogOp, StoredRecord};
use super::read::CollectionReader;
use super::Inner;
use crate::crypto::{normalize_email, normalize_phone, BlindIndexKey, Pii};
use crate::error::{Error, Result};
use crate::index::OpPointer;
use crate::model::{PiiKind, Schema};

/// Collection name of the keystore entry holding the blind-index root key (no collection
/// can have an empty name).
pub(crate) const BLIND_ROOT_COLLECTION: &str = "";
/// Record id of the keystore entry holding the blind-index root key.
pub(crate) const BLIND_ROOT_ID: &str = "blind-index root";

/// The HMAC domain of a kind's blind values: all phone fields share one, all e-mail fields
/// another, so the same number in `phone` and `mobile` matches.
pub(crate) fn blind_label(kind: PiiKind) -> Option<&'static str> {
    match kind {
        PiiKind::Phone => Some("phone"),
        PiiKind::Email => Some("email"),
        PiiKind::Text => None,
    }
}

/// Normalizes the value of PII field `field` according to its kind. Errors name the record
/// and field and give a reason; they never contain the value.
pub(crate) fn normalize_pii(schema: &Schema, id: &str, field: &str, value: Pii) -> Result<Pii> {
    let normalized = match schema.pii_kind(field) {
        Some(PiiKind::Phone) => normalize_phone(value.expose()),
        Some(PiiKind::Email) => normalize_email(value.expose()),
        // Text, or not a PII field (reported by the caller's schema check).
        _ => return Ok(value),
    };
    normalized.map(Pii::new).map_err(|e| match e {
        Error::InvalidRecord { reason, .. } => {
            Error::InvalidRecord { id: id.to_owned(), field: field.to_owned(), reason }
        }
        other => other,
    })
}

/// Whether a record has a set phone or e-mail field.
pub(crate) fn has_blind_fields(schema: &Schema, pii: &[Option<Pii>]) -> bool {
    pii.iter().enumerate().any(|(i, v)| v.is_some() && blind_label(schema.pii_kind_at(i)).is_some())
}

/// The blind values of a record's (already normalized) PII, in schema order; empty when it
/// has no phone or e-mail value.
pub(crate) fn blind_slots(
    key: &BlindIndexKey,
    schema: &Schema,
    pii: &[Option<Pii>],
) -> Vec<Option<[u8; 32]>> {
    if !has_blind_fields(schema, pii) {
        return Vec::new();
    }
    pii.iter()
        .enumerate()
        .map(|(i, v)| Some(key.blind_value(blind_label(schema.pii_kind_at(i))?, v.as_ref()?.expose())))
        .collect()
}

impl Inner {
    /// The blind-index key: `None` when the keystore has no root key yet and `create` is
    /// false. With `create` (writer only, under the writer lock) a missing root key is
    /// added to the keystore and synced before anything uses it.
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a master key or keystore; keystore errors.
    pub(crate) fn blind_key(&self, create: bool) -> Result<Option<BlindIndexKey>> {
        self.ensure_keystore()?;
        let existing = {
            let keystore = self.keystore.read();
            keystore.as_ref().ok_or(Error::MissingKey)?.data_key(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID)?
        };
        let root = match existing {
            Some((_, root)) => root,
            None if !create => return Ok(None),
            None => {
                let issued = {
                    let mut keystore = self.keystore.write();
                    let ks = keystore.as_mut().ok_or(Error::MissingKey)?;
                    ks.add_keys(&[(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID)])?
                };
                self.keystore.read().as_ref().ok_or(Error::MissingKey)?.sync()?;
                issued.into_iter().next().ok_or(Error::MissingKey)?.1
            }
        };
        Ok(Some(BlindIndexKey::from_root(&root, &self.db_id)))
    }
}

impl CollectionReader<'_> {
    /// Ids of live records with this phone number in any phone field, by id. The number is
    /// normalized first, so `+1 (415) 555-2671` finds `+14155552671`. Scans every live
    /// record (O(n)); records written before blind indexes existed are not found.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([5; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut b = db.begin_write();
    /// b.upsert("customers", Record::new("C-1", LatLon::new(1.0, 2.0)?).pii("phone", "+44 20 7946 0958"))?;
    /// b.commit()?;
    /// let snap = db.read();
    /// assert_eq!(snap.collection("customers")?.find_by_phone("+442079460958")?, ["C-1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a key; [`Error::InvalidArgument`] for a number that is
    /// not valid E.164 (the message does not repeat it), or a collection without a phone
    /// field; log read errors.
    pub fn find_by_phone(&self, phone: &str) -> Result<Vec<String>> {
        let normalized = normalize_phone(phone).map_err(|e| lookup_error("phone", &e))?;
        self.find_blind(PiiKind::Phone, &Pii::new(normalized))
    }

    /// Ids of live records with this e-mail address (trimmed, lowercased) in any e-mail
    /// field, by id. Scans every live record (O(n)), like [`Self::find_by_phone`].
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a key; [`Error::InvalidArgument`] for an invalid
    /// address (not repeated in the message), or a collection without an e-mail field; log
    /// read errors.
    pub fn find_by_email(&self, email: &str) -> Result<Vec<String>> {
        let normalized = normalize_email(email).map_err(|e| lookup_error("email", &e))?;
        self.find_blind(PiiKind::Email, &Pii::new(normalized))
    }

    fn find_blind(&self, kind: PiiKind, normalized: &Pii) -> Result<Vec<String>> {
        if self.inner.master.lock().is_none() {
            return Err(Error::MissingKey);
        }
        let schema = self.schema();
        if !(0..schema.pii_fields().len()).any(|i| schema.pii_kind_at(i) == kind) {
            // An empty answer would read as "no such customer".
            let (name, what) = if kind == PiiKind::Phone { ("phone", "phone") } else { ("email", "e-mail") };
            return Err(Error::invalid_argument(
                name,
                format!("collection {:?} has no {what} field to search", self.name),
            ));
        }
        let (Some(key), Some(label)) = (self.inner.blind_key(false)?, blind_label(kind)) else {
            return Ok(Vec::new());
        };
        let wanted = key.blind_value(label, normalized.expose());
        let mut ids = Vec::new();
        self.for_each_live(|r| {
            let hit = r
                .blind
                .iter()
                .enumerate()
                .any(|(i, b)| b.as_ref() == Some(&wanted) && schema.pii_kind_at(i) == kind);
            if hit {
                ids.push(r.id.clone());
            }
            Ok(())
        })?;
        ids.sort();
        Ok(ids)
    }

    /// Calls `f` with every live record as stored in the log, reading each log frame once.
    /// The one place the blind-index and duplicate scans read rows: O(n).
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(&StoredRecord) -> Result<()>) -> Result<()> {
        let rows: Vec<(OpPointer, &str)> =
            self.c.view().rows().map(|row| (row.pointer(), row.id())).collect();
        self.intact(())?;
        self.inner.segments.for_each_op(rows, |pointer, id, op| {
            let corrupt = |reason: String| {
                Error::corrupt(self.inner.segments.path(pointer.segment), pointer.offset, reason)
            };
            match op.map_err(corrupt)? {
                LogOp::Upsert(r) if r.id == id => f(&r),
                _ => Err(corrupt("the log operation an index points to is not this record".into())),
            }
        })
    }
}

/// A lookup argument that does not normalize, without the value.
fn lookup_error(name: &'static str, e: &Error) -> Error {
    let reason = match e {
        Error::InvalidRecord { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    Error::invalid_argument(name, reason)
}
