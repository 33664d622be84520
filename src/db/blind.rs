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

/// Whether a schema has a phone or e-mail field (whose values get blind values).
pub(crate) fn has_blind_kinds(schema: &Schema) -> bool {
    (0..schema.pii_fields().len()).any(|i| blind_label(schema.pii_kind_at(i)).is_some())
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
    /// A missing root key while live records store blind values is damage (the keystore
    /// lost it: a damaged last frame, or an older copy put back), not "no root yet": lookups
    /// would find nothing, and a new root would make values no later one matches.
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a master key or keystore; [`Error::Corrupt`] naming the
    /// keystore when it lost the root key; keystore and log read errors.
    ///
    /// `scope` limits the search for stored values to one collection (a lookup's: another's
    /// values do not change its answer); the writer's `None` searches them all.
    pub(crate) fn blind_key(&self, create: bool, scope: Option<&str>) -> Result<Option<BlindIndexKey>> {
        self.ensure_keystore()?;
        let existing = {
            let keystore = self.keystore.read();
            keystore.as_ref().ok_or(Error::MissingKey)?.data_key(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID)?
        };
        if existing.is_none() {
            self.check_blind_root_not_lost(scope)?;
        }
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

    /// Adds a new blind-index root key in place of a lost one (for `repair`, which then
    /// derives every stored blind value again under it): the check of
    /// [`Self::blind_key`] is skipped. Under the writer lock.
    pub(crate) fn replace_lost_blind_root(&self) -> Result<()> {
        self.ensure_keystore()?;
        let _writer = self.writer.lock();
        let mut keystore = self.keystore.write();
        let ks = keystore.as_mut().ok_or(Error::MissingKey)?;
        if ks.key_id(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID).is_none() {
            ks.add_keys(&[(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID)])?;
            ks.sync()?;
        }
        Ok(())
    }

    /// [`Error::Corrupt`] naming the keystore when it holds no blind-index root key while a
    /// live record (of collection `scope`, or any) stores blind values made with one.
    pub(crate) fn check_blind_root_not_lost(&self, scope: Option<&str>) -> Result<()> {
        let missing = self.keystore.read().as_ref().and_then(|ks| {
            ks.key_id(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID)
                .is_none()
                .then(|| ks.dropped_tail_at().unwrap_or(0))
        });
        let Some(offset) = missing else { return Ok(()) };
        match self.first_stored_blind_value(scope)? {
            None => Ok(()),
            Some((collection, id)) => Err(Error::corrupt(
                self.dir.join(crate::crypto::KEYSTORE_FILE),
                offset,
                format!(
                    "the keystore holds no blind-index root key, yet record {id:?} in {collection:?} stores \
                     phone or e-mail blind values made with one: it was lost (a damaged last frame, or an \
                     older copy of the file); lookups by phone or e-mail and the duplicates report cannot \
                     match those values. Restore the keystore from a copy that holds it, or run `geocrm \
                     repair` with the key to derive them again under a new root key"
                ),
            )),
        }
    }

    /// The first live record (collection, id) that stores a blind value, among those with a
    /// data key in the keystore in collections with a phone or e-mail field: O(n) log reads
    /// when there is none, in batches that stop at the first found. A record whose log frame cannot be read is skipped: reads of it report it, and it is
    /// no evidence about the keystore (it made `verify` call the keystore damaged).
    fn first_stored_blind_value(&self, scope: Option<&str>) -> Result<Option<(String, String)>> {
        // The state's lock before the keystore's, as everywhere.
        let state = self.read_state();
        for (name, c) in &state.collections {
            if scope.is_some_and(|only| only != name) {
                continue;
            }
            let schema = &c.schema;
            if !has_blind_kinds(schema) {
                continue;
            }
            let rows: Vec<(OpPointer, &str)> = {
                let keystore = self.keystore.read();
                let Some(keystore) = keystore.as_ref() else { return Ok(None) };
                c.view()
                    .rows()
                    .filter(|row| keystore.key_id(name, row.id()).is_some())
                    .map(|row| (row.pointer(), row.id()))
                    .collect()
            };
            let mut found = None;
            self.for_each_readable(name, &rows, |r| {
                if r.blind.iter().any(Option::is_some) {
                    found = Some(r.id.clone());
                }
                Ok(found.is_none())
            })?;
            if let Some(id) = found {
                return Ok(Some((name.clone(), id)));
            }
        }
        Ok(None)
    }

    /// `f` with the stored record of each of `rows` (pointer, id) of `collection` whose log
    /// frame can be read and holds that record, in batches of 4,096 (each frame read once per batch); until `f`
    /// returns `false`. A frame that cannot be read is skipped (the record's own reads, and
    /// `verify`'s segment line, report it): a batch that meets one is read again one record
    /// at a time, so `f` may see a record of that batch twice.
    fn for_each_readable(
        &self,
        collection: &str,
        rows: &[(OpPointer, &str)],
        mut f: impl FnMut(&StoredRecord) -> Result<bool>,
    ) -> Result<()> {
        let go_on = std::cell::Cell::new(true);
        // `f`'s own error (a key that fails authentication, say) is returned as it is, never
        // taken for a frame that cannot be read.
        let failed: std::cell::Cell<Option<Error>> = std::cell::Cell::new(None);
        let mut look = |_: OpPointer, id: &str, op: std::result::Result<LogOp, String>| {
            if let (true, Ok(LogOp::Upsert(r))) = (go_on.get(), op) {
                if r.id == id && r.collection == collection {
                    match f(&r) {
                        Ok(more) => go_on.set(more),
                        Err(e) => {
                            failed.set(Some(e));
                            go_on.set(false);
                        }
                    }
                }
            }
            Ok(())
        };
        for batch in rows.chunks(4096) {
            if !go_on.get() {
                break;
            }
            if let Err(e) = self.segments.for_each_op(batch.to_vec(), &mut look) {
                if !unreadable(&e) {
                    return Err(e);
                }
                for &item in batch {
                    if !go_on.get() {
                        break;
                    }
                    match self.segments.for_each_op(vec![item], &mut look) {
                        Err(e) if !unreadable(&e) => return Err(e),
                        _ => {}
                    }
                }
            }
        }
        failed.take().map_or(Ok(()), Err)
    }
}

impl CollectionReader<'_> {
    /// Ids of live records with this phone number in any phone field, by id. The number is
    /// normalized first, so `+1 (415) 555-2671` finds `+14155552671`. Scans every live
    /// record (O(n)); records written before blind indexes existed are not found. The
    /// lookup is recorded in the audit log ([`crate::audit::AuditAction::Find`]: the ids
    /// found, none too, and the fields searched; never the number).
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
        // Who looked up whom: the ids found (none, too, says who is not a customer) and the
        // fields searched, before the answer is returned (a lookup was not audited; from a
        // hands-on review).
        let mut fields: Vec<&str> = (0..schema.pii_fields().len())
            .filter(|&i| schema.pii_kind_at(i) == kind)
            .filter_map(|i| schema.pii_fields().get(i).map(String::as_str))
            .collect();
        fields.sort_unstable();
        let audited = |ids: Vec<String>| -> Result<Vec<String>> {
            let shown: Vec<&str> = ids.iter().map(String::as_str).collect();
            self.inner.audit.record(crate::audit::AuditAction::Find, self.name, &shown, &fields)?;
            Ok(ids)
        };
        let (Some(key), Some(label)) = (self.inner.blind_key(false, Some(self.name))?, blind_label(kind))
        else {
            return audited(Vec::new());
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
        audited(ids)
    }

    /// Ids of live records whose stored blind values are not those the keystore's root key
    /// gives their phone and e-mail values (decrypted here): values made under a lost root,
    /// which `repair` derives again — record by record, so a repair interrupted part-way
    /// leaves the rest to be found by the next one. Empty without a root key (no value can be
    /// checked), for records storing no blind value (written before blind indexes existed)
    /// and for records whose data key the keystore does not hold (other checks report them). O(n) log reads and one decryption per phone or e-mail value.
    ///
    /// # Errors
    /// [`Error::MissingKey`] without the master key; [`Error::Decrypt`] for a value that
    /// fails authentication; log read errors.
    pub(crate) fn stale_blind_values(&self) -> Result<Vec<String>> {
        let schema = self.schema();
        if !has_blind_kinds(schema) {
            return Ok(Vec::new());
        }
        self.inner.ensure_keystore()?;
        let root = {
            let keystore = self.inner.keystore.read();
            keystore.as_ref().ok_or(Error::MissingKey)?.data_key(BLIND_ROOT_COLLECTION, BLIND_ROOT_ID)?
        };
        let Some((_, root)) = root else { return Ok(Vec::new()) };
        let key = BlindIndexKey::from_root(&root, &self.inner.db_id);
        let mut stale = Vec::new();
        // Leniently: damage in the log or the checkpoint is not this check's to report (it
        // put the keystore's name on the segment's damage: from the second diff review).
        let rows: Vec<(OpPointer, &str)> =
            self.c.view().rows().map(|row| (row.pointer(), row.id())).collect();
        if self.intact(()).is_err() {
            return Ok(Vec::new());
        }
        self.inner.for_each_readable(self.name, &rows, |r| {
            // No blind value stored: written before blind indexes existed (lookups do not
            // find such records, as documented), not under another root.
            let Some(key_id) = r.key_id.filter(|_| r.blind.iter().any(Option::is_some)) else {
                return Ok(true);
            };
            let Some(data_key) = self.data_key_for(&r.id, key_id)? else { return Ok(true) };
            // Only the phone and e-mail values: those the blind values are made of.
            let mut opened = super::read::open_sealed_where(
                self.inner.db_id,
                self.name,
                schema,
                r,
                (key_id, &data_key),
                |i| blind_label(schema.pii_kind_at(i)).is_some(),
            )?;
            let values: Vec<Option<Pii>> = schema.pii_fields().iter().map(|f| opened.remove(f)).collect();
            if blind_slots(&key, schema, &values) != r.blind {
                stale.push(r.id.clone());
            }
            Ok(true)
        })?;
        stale.sort();
        stale.dedup();
        Ok(stale)
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
                // The collection too: the same id in another collection is not this record.
                LogOp::Upsert(r) if r.id == id && r.collection == self.name => f(&r),
                _ => Err(corrupt("the log operation an index points to is not this record".into())),
            }
        })
    }
}

/// A log frame that cannot be read back: damaged, or its segment gone.
fn unreadable(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. })
        || matches!(e, Error::Io { source, .. } if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof))
}

/// A lookup argument that does not normalize, without the value.
fn lookup_error(name: &'static str, e: &Error) -> Error {
    let reason = match e {
        Error::InvalidRecord { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    Error::invalid_argument(name, reason)
}
