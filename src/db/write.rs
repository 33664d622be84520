//! The write path: batches are validated when built, then committed through a queue where
//! one thread (the leader) writes every waiting batch, fsyncs once, and applies them all —
//! group commit. Readers never wait for the fsync: the state lock is taken only to apply.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use h3o::{LatLng, Resolution};

use super::bulk_apply::PreparedCollection;
use super::ops::{append_ops, LogOp, StoredRecord};
use super::sealed_slots::SealedSlots;
use super::update::CheckedUpdate;
use super::{Database, Durability, Inner};
use crate::crypto::{self, BlindIndexKey, FieldContext, Pii};
use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::index::OpPointer;
use crate::model::record::validate_new_id;
use crate::model::{validate_id, validate_name, FieldKind, Record, Schema, Update};

/// What a successful commit wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitReceipt {
    /// LSN of the first operation (equal to `next_lsn` for an empty batch).
    pub first_lsn: u64,
    /// One past the LSN of the last operation.
    pub next_lsn: u64,
    /// How many of the batch's upserts replaced a live record (updates, as against inserts):
    /// an id upserted again in the same batch counts again (each upsert replaced the one
    /// before), even if the batch deletes it later. An upsert replaces the whole record:
    /// fields it does not give, PII included, are no longer read; the old values stay in the
    /// log until a compaction ([`crate::Database::erase`] destroys PII at once).
    pub replaced: u64,
}

/// The records [`WriteBatch::upsert_many`] left out of the batch: each one's position in
/// the input and why. Derefs to a slice of `(position, error)`; empty when every record was
/// added.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// fn import(db: &geocrm::Database, records: Vec<geocrm::Record>) -> geocrm::Result<()> {
///     let mut batch = db.begin_write();
///     batch.upsert_many("c", records)?; // the refused records would be dropped unseen
///     batch.commit().map(drop)
/// }
/// ```
///
/// The same with the refused records looked at compiles (so the one above fails for the
/// lint alone):
///
/// ```
/// #![deny(unused_must_use)]
/// fn import(db: &geocrm::Database, records: Vec<geocrm::Record>) -> geocrm::Result<()> {
///     let mut batch = db.begin_write();
///     let refused = batch.upsert_many("c", records)?;
///     for (position, error) in refused.iter() {
///         eprintln!("record {position} left out: {error}");
///     }
///     batch.commit().map(drop)
/// }
/// ```
#[derive(Debug, Default)]
#[must_use = "these records were left out of the batch: check them before committing"]
pub struct Rejected(Vec<(usize, Error)>);

impl Rejected {
    /// The `(position, error)` pairs.
    #[must_use]
    pub fn into_vec(self) -> Vec<(usize, Error)> {
        self.0
    }
}

impl std::ops::Deref for Rejected {
    type Target = [(usize, Error)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl IntoIterator for Rejected {
    type Item = (usize, Error);
    type IntoIter = std::vec::IntoIter<(usize, Error)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A set of writes committed atomically: after a crash either all of them are there or none.
///
/// ```
/// use geocrm::{Database, LatLon, Options, Record, Schema, crypto::RawKey};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32])))?;
/// let mut batch = db.begin_write();
/// batch.create_collection("customers", Schema::crm().category("tier"))?;
/// batch.upsert("customers", Record::new("C-1", LatLon::new(48.85, 2.35)?).category("tier", "gold"))?;
/// batch.upsert("customers", Record::new("C-2", LatLon::new(45.76, 4.83)?).pii("name", "Ada"))?;
/// batch.delete("customers", "C-1")?;
/// let receipt = batch.commit()?; // durable when this returns
/// assert_eq!(receipt.next_lsn - receipt.first_lsn, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a batch is written only by `commit`"]
pub struct WriteBatch<'db> {
    db: &'db Database,
    ops: Vec<PendingOp>,
    /// Schemas of collections this batch touches (created here or read once from the state).
    schemas: HashMap<String, Arc<Schema>>,
}

#[derive(Debug)]
pub(crate) enum PendingOp {
    Create {
        name: String,
        schema: Schema,
    },
    Upsert {
        record: StoredRecord,
        pii: Vec<Option<Pii>>,
    },
    Delete {
        collection: String,
        id: String,
    },
    Erase {
        collection: String,
        id: String,
    },
    /// Resolved into an upsert of the record's latest version when the batch is written.
    Update {
        collection: String,
        id: String,
        changes: CheckedUpdate,
    },
}

/// How many operations are pending: never their records (ids, locations, attributes, blind
/// values of phones and e-mails).
impl std::fmt::Debug for WriteBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch").field("operations", &self.ops.len()).finish_non_exhaustive()
    }
}

impl<'db> WriteBatch<'db> {
    pub(crate) fn new(db: &'db Database) -> Self {
        WriteBatch { db, ops: Vec::new(), schemas: HashMap::new() }
    }

    /// Number of operations in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Creates a collection.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] for a bad name or schema, [`Error::CollectionExists`].
    pub fn create_collection(&mut self, name: &str, schema: Schema) -> Result<&mut Self> {
        validate_name(name)?;
        schema.validate()?;
        if self.schema_of(name).is_some() {
            return Err(Error::CollectionExists { name: name.to_owned() });
        }
        self.schemas.insert(name.to_owned(), Arc::new(schema.clone()));
        self.ops.push(PendingOp::Create { name: name.to_owned(), schema });
        Ok(self)
    }

    /// Inserts or replaces a whole record (a move is an upsert with a new location).
    ///
    /// # Errors
    /// [`Error::UnknownCollection`]; [`Error::InvalidRecord`] for a bad id, an unknown field,
    /// a value of the wrong kind, a non-finite number, a field set twice, or a phone number
    /// or e-mail address that does not validate (the error names the record and field and
    /// gives a reason, never the value);
    /// [`Error::MissingKey`] when the record has PII and the database has no key.
    ///
    /// A bad id is empty, longer than 256 bytes, or holds a control character, a Unicode
    /// direction control, another invisible character (a zero-width space, a soft hyphen,
    /// …) or a line separator, or begins or ends with white space: it would look like
    /// another id. (A record an earlier version stored under such an id can still be read,
    /// updated with [`Self::update`], deleted and erased.)
    ///
    /// ```
    /// use geocrm::{Database, Error, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("customers", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// let at = LatLon::new(45.76, 4.83)?;
    /// for id in ["C-1 ", "C-\u{202E}1", "C-1\u{200B}"] {
    ///     let refused = batch.upsert("customers", Record::new(id, at));
    ///     assert!(matches!(refused, Err(Error::InvalidRecord { .. })), "{id:?}");
    /// }
    /// batch.upsert("customers", Record::new("C-1", at))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upsert(&mut self, collection: &str, record: Record) -> Result<&mut Self> {
        let schema =
            self.schema_of(collection).ok_or_else(|| Error::UnknownCollection { name: collection.into() })?;
        validate_new_id(record.id())?;
        let has_key = || self.db.inner.master.lock().is_some();
        self.ops.push(checked_upsert(collection, &schema, has_key, record)?);
        Ok(self)
    }

    /// [`Self::upsert`] with the id checked as versions before its rules for new ids did
    /// ([`crate::model::validate_id`] alone): how a repair rewrites the records of such
    /// ids, and how tests make the databases those versions could leave. Not part of the
    /// API.
    #[doc(hidden)]
    pub fn upsert_with_earlier_id_rules(&mut self, collection: &str, record: Record) -> Result<&mut Self> {
        let schema =
            self.schema_of(collection).ok_or_else(|| Error::UnknownCollection { name: collection.into() })?;
        let has_key = || self.db.inner.master.lock().is_some();
        self.ops.push(checked_upsert(collection, &schema, has_key, record)?);
        Ok(self)
    }

    /// Inserts or replaces many records of one collection, each checked and laid out as
    /// [`WriteBatch::upsert`] does, on every core for large inputs. Every good record is
    /// added in order; the bad ones are left out and their errors returned with their
    /// positions in `records` (commit or drop the batch accordingly).
    ///
    /// ```
    /// use geocrm::{Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("shops", Schema::new().number("sales"))?;
    /// let mut batch = db.begin_write();
    /// let records = vec![
    ///     Record::new("S-1", LatLon::new(45.76, 4.83)?).number("sales", 10.0),
    ///     Record::new("S-2", LatLon::new(45.75, 4.85)?).number("visits", 3.0), // no such field
    /// ];
    /// let rejected = batch.upsert_many("shops", records)?;
    /// assert_eq!(rejected.len(), 1);
    /// assert_eq!(rejected[0].0, 1);
    /// batch.commit()?;
    /// assert_eq!(db.read().collection("shops")?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownCollection`] (nothing is added). The records refused are not an
    /// error: they come back as [`Rejected`], which must be used (`upsert_many(..)?;` alone
    /// is a warning: it would commit the good records and drop the bad ones silently).
    pub fn upsert_many(&mut self, collection: &str, records: Vec<Record>) -> Result<Rejected> {
        let schema =
            self.schema_of(collection).ok_or_else(|| Error::UnknownCollection { name: collection.into() })?;
        let has_key = self.db.inner.master.lock().is_some();
        let checked = crate::parallel::map_owned(records, PARALLEL_CHECK_MIN, |record| {
            validate_new_id(record.id())?;
            checked_upsert(collection, &schema, || has_key, record)
        });
        let mut rejected = Vec::new();
        self.ops.reserve(checked.len());
        for (i, op) in checked.into_iter().enumerate() {
            match op {
                Ok(op) => self.ops.push(op),
                Err(e) => rejected.push((i, e)),
            }
        }
        Ok(Rejected(rejected))
    }

    /// Changes some fields of a stored record and keeps the others, its sealed PII included
    /// (see [`Update`]): a move, or new attributes, with no key and no PII read (setting a PII
    /// field needs the key, and opens no other). The record
    /// changed is its latest version when the batch commits, with this batch's earlier
    /// writes of it.
    ///
    /// ```
    /// use geocrm::{Database, Error, LatLon, Options, Record, Schema, Update};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("vans", Schema::new().number("load").category("driver"))?;
    /// let depot = LatLon::new(51.5, -0.12)?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("vans", Record::new("V-1", depot).number("load", 3.0).category("driver", "kim"))?;
    /// batch.update("vans", "V-1", Update::new().number("load", 5.0))?; // sees the upsert
    /// batch.commit()?;
    /// let mut batch = db.begin_write();
    /// batch.update("vans", "V-1", Update::new().location(LatLon::new(51.45, -0.97)?))?;
    /// batch.commit()?;
    /// let v1 = db.read().collection("vans")?.get("V-1")?.expect("there");
    /// assert_eq!((v1.numbers["load"], v1.categories["driver"].as_str()), (5.0, "kim"));
    ///
    /// // An update of an absent record fails the whole batch at commit.
    /// let mut batch = db.begin_write();
    /// batch.upsert("vans", Record::new("V-2", depot))?;
    /// batch.update("vans", "V-9", Update::new().number("load", 1.0))?;
    /// assert!(matches!(batch.commit(), Err(Error::NotFound { .. })));
    /// assert!(db.read().collection("vans")?.get("V-2")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownCollection`]; [`Error::InvalidRecord`] for a bad id, an unknown
    /// field, a value of the wrong kind, a non-finite number, a value over its size limit, a
    /// phone number or e-mail address that does not validate, or a field named twice;
    /// [`Error::MissingKey`] for a PII value without the database's key;
    /// [`Error::InvalidArgument`] for an update that changes nothing. At commit, nothing of
    /// the batch written: [`Error::NotFound`] when the record does not exist; [`Error::Io`]
    /// or [`Error::Corrupt`] when it cannot be read back from the log, or when the keystore
    /// lost the key of a record whose kept PII a new value joins.
    pub fn update(&mut self, collection: &str, id: &str, update: Update) -> Result<&mut Self> {
        let schema =
            self.schema_of(collection).ok_or_else(|| Error::UnknownCollection { name: collection.into() })?;
        validate_id(id)?;
        if update.is_empty() {
            return Err(Error::invalid_argument("update", format!("the update of {id:?} changes nothing")));
        }
        if !update.pii.is_empty() && self.db.inner.master.lock().is_none() {
            return Err(Error::MissingKey);
        }
        let changes = CheckedUpdate::new(&schema, id, update)?;
        self.ops.push(PendingOp::Update { collection: collection.to_owned(), id: id.to_owned(), changes });
        Ok(self)
    }

    /// Deletes a record (deleting an absent id is not an error).
    ///
    /// # Errors
    /// [`Error::UnknownCollection`], [`Error::InvalidRecord`] for a bad id.
    pub fn delete(&mut self, collection: &str, id: &str) -> Result<&mut Self> {
        if self.schema_of(collection).is_none() {
            return Err(Error::UnknownCollection { name: collection.into() });
        }
        validate_id(id)?;
        self.ops.push(PendingOp::Delete { collection: collection.to_owned(), id: id.to_owned() });
        Ok(self)
    }

    /// Writes the batch to the log; returns once it is as durable as the database's
    /// [`Durability`] promises, and visible to readers.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Poisoned`] when the log cannot be written; the database
    /// then refuses further writes until reopened. A batch whose commit failed that way may
    /// or may not be present after reopening; a batch whose commit succeeded always is.
    /// [`Error::Corrupt`] (nothing written) when the checkpoint file of a collection the
    /// batch touches has damaged id sections (found on their first use; the next open sets
    /// the file aside); [`Error::CollectionExists`]; [`Error::SnapshotHeld`] (nothing
    /// written) on a thread holding a snapshot of the database.
    pub fn commit(self) -> Result<CommitReceipt> {
        self.db.inner.refuse_write("commit")?;
        // The first check of a checkpoint's id sections reads them whole: here, not under the
        // writer lock, where the batch is then checked again (a bit test; see `write_batch`).
        for checkpoint in self.db.inner.touched_checkpoints(&self.ops) {
            let _ = checkpoint.check_id_sections();
        }
        let receipt = self.db.inner.commit(self.ops)?;
        if self.db.inner.checkpoint_due() {
            self.db.start_auto_checkpoint();
        }
        Ok(receipt)
    }

    /// Adds operations already checked against their collections' schemas (the CSV
    /// import's upserts, made with [`Slots::into_upsert`]).
    pub(crate) fn push_checked(&mut self, ops: impl IntoIterator<Item = PendingOp>) {
        self.ops.extend(ops);
    }

    /// Adds an already-validated operation (used by erasure).
    pub(crate) fn push(&mut self, op: PendingOp) {
        self.ops.push(op);
    }

    fn schema_of(&mut self, collection: &str) -> Option<Arc<Schema>> {
        if let Some(s) = self.schemas.get(collection) {
            return Some(s.clone());
        }
        let schema = self.db.inner.read_state().collections.get(collection).map(|c| c.schema.clone())?;
        self.schemas.insert(collection.to_owned(), schema.clone());
        Some(schema)
    }
}

/// An update's record that keeps sealed PII and gets new values sealed under `key_id`: each
/// slot takes its new envelope and blind value, else the kept ones.
///
/// # Errors
/// [`Error::InvalidArgument`] when the keystore's key for the record is not the one its kept
/// envelopes are sealed under (a key lost and replaced): one record's PII must be under one
/// key.
fn merge_kept(
    record: &mut StoredRecord,
    key_id: u64,
    new: &SealedSlots,
    blind: &[Option<[u8; 32]>],
) -> Result<()> {
    if record.key_id != Some(key_id) {
        return Err(Error::invalid_argument(
            "update",
            format!(
                "the PII of {:?} is sealed under a key the keystore no longer holds for it: upsert the whole record",
                record.id
            ),
        ));
    }
    let n = record.pii.len().max(new.len());
    let slots: Vec<Option<Vec<u8>>> =
        (0..n).map(|i| new.get(i).or_else(|| record.pii.get(i)).map(<[u8]>::to_vec)).collect();
    let blinds: Vec<Option<[u8; 32]>> = (0..n)
        .map(|i| blind.get(i).copied().flatten().or_else(|| record.blind.get(i).copied().flatten()))
        .collect();
    record.pii = SealedSlots::from(slots);
    record.blind = if blinds.iter().all(Option::is_none) { Vec::new() } else { blinds };
    Ok(())
}

/// Longest category value, in bytes. With at most 64 fields of each kind this bounds an
/// encoded record far below the 64 MiB frame and decode limits.
pub const MAX_CATEGORY_BYTES: usize = 4 << 10;
/// Longest PII value, in bytes (before sealing).
pub const MAX_PII_BYTES: usize = 64 << 10;

/// Why a value of `len` bytes is too long for a field of `kind`, or `None` when it fits
/// ([`MAX_CATEGORY_BYTES`], [`MAX_PII_BYTES`]; numbers have no length). Checked as a value is
/// placed in its [`Slots`], by the write path and the CSV import alike.
pub(super) fn over_size_limit(kind: FieldKind, len: usize) -> Option<String> {
    let (max, what) = match kind {
        FieldKind::Category => (MAX_CATEGORY_BYTES, "category"),
        FieldKind::Pii => (MAX_PII_BYTES, "PII"),
        FieldKind::Number => return None,
    };
    (len > max).then(|| format!("{what} values are limited to {max} bytes"))
}

pub(super) fn record_error(id: &str, field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidRecord { id: id.to_owned(), field: field.to_owned(), reason: reason.into() }
}

/// The raw H3 cell at resolution 15 of record `id`'s `location`.
///
/// # Errors
/// [`Error::InvalidRecord`] for a location H3 refuses (none that [`LatLon::new`] accepts).
pub(super) fn cell_of(id: &str, location: LatLon) -> Result<u64> {
    let cell = LatLng::new(location.lat(), location.lon())
        .map_err(|e| record_error(id, "location", e.to_string()))?
        .to_cell(Resolution::Fifteen);
    Ok(u64::from(cell))
}

/// Puts `value` into the slot of `field`, which must be a field of kind `want` set only once.
fn place<T>(
    schema: &Schema,
    id: &str,
    field: &str,
    want: FieldKind,
    slots: &mut [Option<T>],
    value: T,
) -> Result<()> {
    match schema.field(field) {
        None => Err(record_error(id, field, "no such field in the collection's schema")),
        Some((kind, _)) if kind != want => {
            // (The kinds by the `Record` setter that gives each: `.number`, `.category`, `.pii`.)
            let what = |k: FieldKind| match k {
                FieldKind::Number => "a number (Record::number)",
                FieldKind::Category => "a category (Record::category)",
                FieldKind::Pii => "PII (Record::pii)",
            };
            Err(record_error(
                id,
                field,
                format!("{} was given, but the field holds {}", what(want), what(kind)),
            ))
        }
        Some((_, i)) => match slots.get_mut(i) {
            Some(slot) if slot.is_none() => {
                *slot = Some(value);
                Ok(())
            }
            _ => Err(record_error(id, field, "set twice in one record")),
        },
    }
}

/// The pending upsert of a record checked against its collection's schema; PII needs the
/// database's key (`has_key` is asked only for records with PII).
fn checked_upsert(
    collection: &str,
    schema: &Schema,
    has_key: impl FnOnce() -> bool,
    record: Record,
) -> Result<PendingOp> {
    let (stored, pii) = to_stored(collection, schema, record)?;
    if pii.iter().any(Option::is_some) && !has_key() {
        return Err(Error::MissingKey);
    }
    Ok(PendingOp::Upsert { record: stored, pii })
}

/// Checks a record against a schema and lays its fields out in schema order.
fn to_stored(collection: &str, schema: &Schema, r: Record) -> Result<(StoredRecord, Vec<Option<Pii>>)> {
    // The record's values move into their slots (no copies of categories or PII).
    let Record { id, location, numbers: number_values, categories: category_values, pii: pii_values } = r;
    validate_id(&id)?;
    let mut slots = Slots::new(id, location, schema);
    for (field, v) in &number_values {
        slots.number(schema, field, *v)?;
    }
    for (field, v) in category_values {
        slots.category(schema, &field, v)?;
    }
    for (field, v) in pii_values {
        slots.pii(schema, &field, v)?;
    }
    slots.into_stored(collection)
}

/// A record's values in its collection's schema order, each checked as it is placed: what
/// [`WriteBatch::upsert`] makes of a [`Record`], and what the CSV import builds straight
/// from a row (no field names per record).
#[derive(Debug)]
pub(crate) struct Slots {
    id: String,
    location: LatLon,
    numbers: Vec<Option<f64>>,
    categories: Vec<Option<String>>,
    pii: Vec<Option<Pii>>,
}

impl Slots {
    /// Empty slots for `schema`. The id is not checked here: [`to_stored`] checks it first,
    /// [`Slots::into_upsert`] last.
    pub(crate) fn new(id: String, location: LatLon, schema: &Schema) -> Self {
        Slots {
            id,
            location,
            numbers: vec![None; schema.number_fields().len()],
            categories: vec![None; schema.category_fields().len()],
            pii: vec![None; schema.pii_fields().len()],
        }
    }

    /// Sets number field `field` (finite).
    pub(crate) fn number(&mut self, schema: &Schema, field: &str, v: f64) -> Result<()> {
        if !v.is_finite() {
            return Err(record_error(&self.id, field, "numbers must be finite"));
        }
        place(schema, &self.id, field, FieldKind::Number, &mut self.numbers, v)
    }

    /// Sets category field `field` (within the size limit).
    pub(crate) fn category(&mut self, schema: &Schema, field: &str, v: String) -> Result<()> {
        if let Some(reason) = over_size_limit(FieldKind::Category, v.len()) {
            return Err(record_error(&self.id, field, reason));
        }
        place(schema, &self.id, field, FieldKind::Category, &mut self.categories, v)
    }

    /// Sets PII field `field` (within the size limit; a phone number or e-mail address
    /// normalized, or refused when it does not validate).
    pub(crate) fn pii(&mut self, schema: &Schema, field: &str, v: Pii) -> Result<()> {
        if let Some(reason) = over_size_limit(FieldKind::Pii, v.expose().len()) {
            return Err(record_error(&self.id, field, reason));
        }
        let v = super::blind::normalize_pii(schema, &self.id, field, v)?;
        place(schema, &self.id, field, FieldKind::Pii, &mut self.pii, v)
    }

    /// The record to log (its PII still to be sealed) and its PII in schema order.
    fn into_stored(self, collection: &str) -> Result<(StoredRecord, Vec<Option<Pii>>)> {
        let Slots { id, location, numbers, categories, pii } = self;
        let cell = cell_of(&id, location)?;
        let stored = StoredRecord {
            collection: collection.to_owned(),
            id,
            lat: location.lat(),
            lon: location.lon(),
            cell,
            numbers,
            categories,
            key_id: None,
            pii: SealedSlots::default(),
            blind: Vec::new(),
        };
        Ok((stored, pii))
    }

    /// The pending upsert of these slots into `collection` (whose schema they were filled
    /// for): the id checked, and the location's H3 cell computed.
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] for a bad id, or a location H3 refuses (none that
    /// [`LatLon::new`] accepts).
    pub(crate) fn into_upsert(self, collection: &str) -> Result<PendingOp> {
        validate_id(&self.id)?;
        let (record, pii) = self.into_stored(collection)?;
        Ok(PendingOp::Upsert { record, pii })
    }
}

/// How many of the queued batches (in order) one round takes: all of them, except that a
/// round ends before a batch upserting a record an earlier batch of the round erases, and
/// before a batch updating a record an earlier batch of the round writes. An erasure
/// destroys the record's data key at the end of its round, and a re-insertion in the same
/// round would still be given that key and lose its PII with it. An update is resolved
/// against the record as applied, which the round's earlier batches are not yet. Everything
/// else shares the round (and its fsync and keystore rewrite).
fn round_end(waiting: &[Waiting]) -> usize {
    let is_update = |op: &PendingOp| matches!(op, PendingOp::Update { .. });
    // Ids written are gathered only when a later batch has an update (a round may hold an
    // import of a million upserts).
    let updates_later = waiting.iter().skip(1).any(|w| w.ops.iter().any(is_update));
    let mut erased: HashSet<(&str, &str)> = HashSet::new();
    let mut written: HashSet<(&str, &str)> = HashSet::new();
    for (i, w) in waiting.iter().enumerate() {
        // (Nothing to look up in an empty set: a batch of a million upserts is not hashed.)
        let conflicts = (!erased.is_empty() || !written.is_empty())
            && w.ops.iter().any(|op| match op {
                PendingOp::Upsert { record, .. } => {
                    !erased.is_empty() && erased.contains(&(record.collection.as_str(), record.id.as_str()))
                }
                PendingOp::Update { collection, id, .. } => {
                    !written.is_empty() && written.contains(&(collection.as_str(), id.as_str()))
                }
                _ => false,
            });
        if conflicts && i > 0 {
            return i;
        }
        for op in &w.ops {
            let target = match op {
                PendingOp::Erase { collection, id } => {
                    erased.insert((collection.as_str(), id.as_str()));
                    Some((collection.as_str(), id.as_str()))
                }
                PendingOp::Upsert { record, .. } => Some((record.collection.as_str(), record.id.as_str())),
                PendingOp::Delete { collection, id } | PendingOp::Update { collection, id, .. } => {
                    Some((collection.as_str(), id.as_str()))
                }
                PendingOp::Create { .. } => None,
            };
            if let Some(target) = target.filter(|_| updates_later) {
                written.insert(target);
            }
        }
    }
    waiting.len()
}

/// A batch waiting in the commit queue.
/// Armed while the leader runs a round: if the round panics (a bug), its batches get
/// `Poisoned` errors, the database is poisoned (what is applied in memory may be half a round;
/// the log holds it whole for the next open) and the next committer can lead, instead of every
/// waiting committer blocking forever.
struct RoundGuard<'a> {
    inner: &'a Inner,
    tickets: Vec<u64>,
    armed: bool,
}

impl Drop for RoundGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let reason = "a commit panicked while it was written or applied; reopen the database".to_owned();
        self.inner.writer.lock().poisoned.get_or_insert_with(|| reason.clone());
        let mut q = self.inner.queue.lock();
        for &ticket in &self.tickets {
            q.done.insert(ticket, Err(Error::Poisoned { reason: reason.clone() }));
        }
        q.leader = false;
        self.inner.queue_cv.notify_all();
    }
}

/// A batch written to the log (not synced yet), to be applied.
struct WrittenBatch {
    receipt: CommitReceipt,
    /// Shared with the thread building `prepare` until it is joined.
    ops: Arc<Vec<LogOp>>,
    /// Where each operation is in the log.
    pointers: Arc<Vec<OpPointer>>,
    /// A collection the batch creates, being built with the upserts into it.
    prepare: Option<std::thread::JoinHandle<Option<PreparedCollection>>>,
}

#[derive(Debug)]
pub(crate) struct Waiting {
    pub ticket: u64,
    pub ops: Vec<PendingOp>,
}

impl Inner {
    /// Its one caller, [`WriteBatch::commit`], has refused a thread holding a snapshot.
    fn commit(&self, ops: Vec<PendingOp>) -> Result<CommitReceipt> {
        let mut q = self.queue.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push(Waiting { ticket, ops });
        loop {
            if let Some(result) = q.done.remove(&ticket) {
                return result;
            }
            if q.leader {
                self.queue_cv.wait(&mut q);
                continue;
            }
            q.leader = true;
            if let Durability::GroupCommit { max_wait } = self.durability {
                let deadline = Instant::now() + max_wait;
                while Instant::now() < deadline {
                    if self.queue_cv.wait_until(&mut q, deadline).timed_out() {
                        break;
                    }
                }
            }
            let cut = round_end(&q.waiting);
            let round: Vec<Waiting> = q.waiting.drain(..cut).collect();
            drop(q);
            let mut guard =
                RoundGuard { inner: self, tickets: round.iter().map(|w| w.ticket).collect(), armed: true };
            let results = self.commit_round(round);
            guard.armed = false;
            drop(guard);
            q = self.queue.lock();
            q.done.extend(results);
            q.leader = false;
            self.queue_cv.notify_all();
        }
    }

    /// Writes, syncs and applies one round of batches. Called by the leader only.
    fn commit_round(&self, round: Vec<Waiting>) -> Vec<(u64, Result<CommitReceipt>)> {
        let mut w = self.writer.lock();
        let mut results = Vec::with_capacity(round.len());
        let mut written = Vec::new();
        let mut created_in_round = HashSet::new();
        for batch in round {
            if let Some(reason) = &w.poisoned {
                results.push((batch.ticket, Err(Error::Poisoned { reason: reason.clone() })));
                continue;
            }
            // Updates read their records back from the log: an error there (I/O included)
            // fails the batch, and writes nothing, so it does not poison the database.
            let ops = match self.resolve_updates(batch.ops) {
                Ok(ops) => ops,
                Err(e) => {
                    results.push((batch.ticket, Err(e)));
                    continue;
                }
            };
            match self.write_batch(&mut w, ops, &mut created_in_round) {
                Ok(batch_written) => written.push((batch.ticket, batch_written)),
                // Any error after which the log refuses appends poisons the database too
                // (an I/O error, or a body that failed while it was written).
                Err(e) if matches!(e, Error::Io { .. } | Error::Poisoned { .. }) || w.log.is_poisoned() => {
                    w.poisoned.get_or_insert_with(|| e.to_string());
                    results.push((batch.ticket, Err(e)));
                }
                Err(e) => results.push((batch.ticket, Err(e))),
            }
        }
        let synced = match (&w.poisoned, self.durability) {
            (Some(reason), _) => Err(Error::Poisoned { reason: reason.clone() }),
            (None, Durability::NoSyncBulkLoad) => Ok(()),
            (None, _) if written.is_empty() => Ok(()),
            (None, _) => w.log.sync(),
        };
        if let Err(e) = synced {
            w.poisoned.get_or_insert_with(|| e.to_string());
            let reason = e.to_string();
            // The first batch of the round gets the real error, the others are refused.
            let mut first = Some(e);
            for (ticket, ..) in written {
                let err = first.take().unwrap_or_else(|| Error::Poisoned { reason: reason.clone() });
                results.push((ticket, Err(err)));
            }
            return results;
        }
        if self.durability == Durability::NoSyncBulkLoad {
            // Applied below without a sync: a later failure must not cut them from the log.
            w.log.acknowledge_unsynced();
        }
        // The collections built while the batches were written, and their operations back.
        let written: Vec<_> = written
            .into_iter()
            .map(|(ticket, batch)| {
                // The batch is durable: a building thread that failed (it is only a faster way
                // to the same state) leaves the run to be applied as any other.
                let prepared = batch.prepare.and_then(|handle| handle.join().ok().flatten());
                let mut ops = Arc::try_unwrap(batch.ops).unwrap_or_else(|ops| (*ops).clone());
                free_sealed(&mut ops);
                (ticket, batch.receipt, ops, batch.pointers, prepared)
            })
            .collect();
        let mut state = self.state.write();
        let mut erased = Vec::new();
        let mut erasing = Vec::new();
        for (ticket, receipt, ops, pointers, prepared) in written {
            let erases = ops.iter().any(|op| matches!(op, LogOp::Erase { .. }));
            let replaced = state.apply_all(ops, &pointers, receipt.first_lsn, prepared);
            if erases || !state.erased_keys.is_empty() {
                erasing.push(ticket);
            }
            erased.append(&mut state.erased_keys);
            state.next_lsn = receipt.next_lsn;
            results.push((ticket, Ok(CommitReceipt { replaced, ..receipt })));
        }
        drop(state);
        if !erasing.is_empty() {
            // Once the tombstones are durable, destroy the keys. A failure here poisons the
            // database and fails the erasing batches (reopening finishes the erasure from the
            // tombstones); other batches of the round are durable and applied, so they stay Ok.
            // In bulk-load mode nothing was synced yet: an erasure returns with a durable
            // tombstone (what its receipt says), and the tombstones must be durable before a
            // key is destroyed, or a power loss would bring the record back without its key.
            // That sync failing cuts the whole round from the log (and what bulk rounds before
            // it wrote since the last sync): every batch of the round fails then.
            let tombstones_durable = match self.durability {
                Durability::NoSyncBulkLoad => w.log.sync(),
                _ => Ok(()),
            };
            let round_cut = tombstones_durable.is_err();
            let done = tombstones_durable.and_then(|()| {
                if erased.is_empty() {
                    Ok(())
                } else {
                    self.destroy_keys(&erased)
                }
            });
            if let Err(e) = done {
                w.poisoned.get_or_insert_with(|| e.to_string());
                let reason = e.to_string();
                // The first erasing batch gets the real error, the others `Poisoned`.
                let mut first = Some(e);
                for (ticket, result) in &mut results {
                    if erasing.contains(ticket) || (round_cut && result.is_ok()) {
                        let err = first.take().unwrap_or_else(|| Error::Poisoned { reason: reason.clone() });
                        *result = Err(err);
                    }
                }
            }
        }
        results
    }

    /// Removes the data keys of erased records from the keystore (one atomic rewrite), unless
    /// a later write gave the record a new key.
    pub(crate) fn destroy_keys(&self, erased: &[(String, String, u64)]) -> Result<()> {
        match self.keystore.write().as_mut() {
            Some(keystore) => super::keys::destroy_erased_keys(keystore, erased, |ids| {
                super::keys::record_erased_keys(&*self.fs, &self.dir, &mut self.manifest.lock(), ids)
            }),
            None => Ok(()),
        }
    }

    /// The checkpoints of the collections `pending` writes to (not created by it).
    pub(crate) fn touched_checkpoints(&self, pending: &[PendingOp]) -> Vec<Arc<crate::index::Checkpoint>> {
        let state = self.read_state();
        // Without a checkpoint there is nothing to look for (each operation's collection name
        // is a read of its own: a fresh database's import has a million).
        if state.collections.values().all(|c| c.base.is_none()) {
            return Vec::new();
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut last: Option<&str> = None;
        let mut bases = Vec::new();
        for op in pending {
            let collection = match op {
                PendingOp::Upsert { record, .. } => record.collection.as_str(),
                PendingOp::Delete { collection, .. }
                | PendingOp::Erase { collection, .. }
                | PendingOp::Update { collection, .. } => collection,
                PendingOp::Create { .. } => continue,
            };
            if last == Some(collection) || !seen.insert(collection) {
                continue;
            }
            last = Some(collection);
            if let Some(base) = state.collections.get(collection).and_then(|c| c.base.as_ref()) {
                bases.push(Arc::clone(&base.checkpoint));
            }
        }
        bases
    }

    /// Checks the batch's creations, seals its PII and appends it to the log (no sync); the
    /// collections it creates join `created_in_round`.
    fn write_batch(
        &self,
        w: &mut super::Writer,
        pending: Vec<PendingOp>,
        created_in_round: &mut HashSet<String>,
    ) -> Result<WrittenBatch> {
        // A collection may be created once: check against the state, the round's earlier
        // batches (written, not applied yet) and the batch's own earlier operations — before
        // any key is issued for the batch.
        let mut created = HashSet::new();
        // Applying an upsert, delete or erasure hides the checkpoint row it replaces, found
        // through the id sections: if they are damaged (sections are checked on first use)
        // it would not be, so the batch is refused before it is logged. (`WriteBatch::commit`
        // ran the first, whole-section checks before the writer lock: these are bit tests.)
        for checkpoint in &self.touched_checkpoints(&pending) {
            self.check_checkpoint_ids(checkpoint)?;
        }
        {
            let state = self.read_state();
            for op in &pending {
                if let PendingOp::Create { name, .. } = op {
                    if state.collections.contains_key(name)
                        || created_in_round.contains(name)
                        || !created.insert(name.clone())
                    {
                        return Err(Error::CollectionExists { name: name.clone() });
                    }
                }
            }
        }
        let ops = self.seal_batch(pending)?;
        let first_lsn = w.log.next_lsn();
        if ops.is_empty() {
            return Ok(WrittenBatch {
                receipt: CommitReceipt { first_lsn, next_lsn: first_lsn, replaced: 0 },
                ops: Arc::new(Vec::new()),
                pointers: Arc::new(Vec::new()),
                prepare: None,
            });
        }
        // A collection the batch creates and fills is built while the batch is written (and
        // dropped, unseen, if that fails: its log positions never come).
        let ops = Arc::new(ops);
        let (send_pointers, pointers_sent) = std::sync::mpsc::channel();
        let prepare = PreparedCollection::spawn(&ops, first_lsn, pointers_sent);
        let (receipt, bodies) = append_ops(&mut w.log, &ops, "batch")?;
        created_in_round.extend(created);
        self.log_tail_bytes.fetch_add(receipt.bytes(), std::sync::atomic::Ordering::Relaxed);
        let mut pointers = Vec::with_capacity(ops.len());
        for (pos, body) in receipt.positions.iter().zip(&bodies) {
            for index in 0..body.count() {
                pointers.push(OpPointer { segment: pos.segment, offset: pos.offset, index });
            }
        }
        let pointers = Arc::new(pointers);
        if prepare.is_some() {
            // A failed send means the building thread is gone: its join says why.
            let _ = send_pointers.send(Arc::clone(&pointers));
        }
        // `replaced` is counted when the batch is applied.
        let receipt = CommitReceipt { first_lsn: receipt.first_lsn, next_lsn: receipt.next_lsn, replaced: 0 };
        Ok(WrittenBatch { receipt, ops, pointers, prepare })
    }

    /// Turns pending operations into log operations. Records with PII get their data key
    /// (created, appended to the keystore and synced before the log frame that uses it, for
    /// records that have none yet) and their fields sealed. A batch needing more keys than
    /// one keystore frame holds is pipelined: while the keys of one frame are issued (its
    /// planning, frame, key-map inserts and fsync are serial), the records of the frames
    /// before are sealed on the other cores.
    fn seal_batch(&self, pending: Vec<PendingOp>) -> Result<Vec<LogOp>> {
        // The log operations, and the records whose PII waits for a key, in batch order.
        let mut schemas: HashMap<String, Arc<Schema>> = HashMap::new();
        let mut waiting: Vec<Unkeyed> = Vec::new();
        let mut ops = Vec::with_capacity(pending.len());
        for op in pending {
            ops.push(match op {
                PendingOp::Create { name, schema } => {
                    schemas.insert(name.clone(), Arc::new(schema.clone()));
                    LogOp::CreateCollection { name, schema }
                }
                PendingOp::Delete { collection, id } => LogOp::Delete { collection, id },
                // Its key id is looked up once the batch's own keys are issued, below.
                PendingOp::Erase { collection, id } => LogOp::Erase { collection, id, key_id: None },
                PendingOp::Update { .. } => {
                    return Err(Error::invalid_argument(
                        "batch",
                        "an update was not resolved before sealing",
                    ));
                }
                PendingOp::Upsert { mut record, pii } => {
                    if pii.iter().all(Option::is_none) {
                        // An update's record keeps the PII it has, sealed under its key.
                        if record.key_id.is_none() {
                            record.pii = SealedSlots::unset(pii.len());
                        }
                    } else {
                        // `record.pii` is filled when sealed.
                        if !schemas.contains_key(&record.collection) {
                            let schema = self
                                .read_state()
                                .collections
                                .get(&record.collection)
                                .map(|c| c.schema.clone())
                                .ok_or_else(|| Error::UnknownCollection {
                                    name: record.collection.clone(),
                                })?;
                            schemas.insert(record.collection.clone(), schema);
                        }
                        let schema = schemas.get(&record.collection).cloned().unwrap_or_default();
                        waiting.push(Unkeyed { op: ops.len(), pii, schema });
                    }
                    LogOp::Upsert(record)
                }
            });
        }
        let erases = ops.iter().any(|op| matches!(op, LogOp::Erase { .. }));
        if !waiting.is_empty() || erases {
            self.ensure_keystore()?;
        }
        // An update's record keeps envelopes sealed under its key: the keystore must still hold
        // that key for it (checked before any key is issued; the merge checks again).
        for w in &waiting {
            let Some(LogOp::Upsert(r)) = ops.get(w.op) else { continue };
            if r.pii.any_set() {
                let held = self.keystore.read().as_ref().and_then(|k| k.key_id(&r.collection, &r.id));
                if held != r.key_id {
                    return Err(Error::corrupt(
                        self.dir.join(crate::crypto::KEYSTORE_FILE),
                        0,
                        format!("the keystore no longer holds the data key of record {:?}, whose PII is sealed under it", r.id),
                    ));
                }
            }
        }
        if !waiting.is_empty() {
            let blind = if waiting.iter().any(|w| super::blind::has_blind_fields(&w.schema, &w.pii)) {
                Some(self.blind_key(true, None)?.ok_or(Error::MissingKey)?)
            } else {
                None
            };
            let sealed = {
                let names = waiting
                    .iter()
                    .map(|w| match ops.get(w.op) {
                        Some(LogOp::Upsert(r)) => Ok((r.collection.as_str(), r.id.as_str())),
                        _ => Err(Error::invalid_argument("batch", "a record to seal is not an upsert")),
                    })
                    .collect::<Result<Vec<(&str, &str)>>>()?;
                self.reserve_keys(&names)?;
                if names.len() <= KEY_CHUNK || crate::parallel::threads() < 2 {
                    let keys = self.issue_keys(&names)?;
                    let jobs = keyed(waiting, keys)?;
                    crate::parallel::map_owned(jobs, PARALLEL_SEAL_MIN, |job| {
                        self.seal_job(&ops, job, blind.as_ref())
                    })
                } else {
                    self.seal_pipelined(&ops, &names, waiting, blind.as_ref())?
                }
            };
            for (index, key_id, pii, blind) in sealed {
                if let Some(LogOp::Upsert(record)) = ops.get_mut(index) {
                    if record.pii.any_set() {
                        merge_kept(record, key_id, &pii, &blind)?;
                    } else {
                        record.key_id = Some(key_id);
                        record.pii = pii;
                        record.blind = blind;
                    }
                }
            }
        }
        if erases {
            // Under the writer lock: no other batch can reuse these keys before they are
            // destroyed at the end of the round.
            let keystore = self.keystore.read();
            for op in &mut ops {
                if let LogOp::Erase { collection, id, key_id } = op {
                    *key_id = keystore.as_ref().and_then(|k| k.key_id(collection, id));
                }
            }
        }
        Ok(ops)
    }

    /// Makes room in the keystore's maps for the records of a large batch that have no key
    /// yet (an id repeated in the batch counts twice: at most the batch's size too much,
    /// never a map grown for updates).
    fn reserve_keys(&self, names: &[(&str, &str)]) -> Result<()> {
        if names.len() <= KEY_CHUNK {
            return Ok(());
        }
        let mut guard = self.keystore.write();
        let keystore = guard.as_mut().ok_or(Error::MissingKey)?;
        let mut per_collection: HashMap<&str, usize> = HashMap::new();
        for (collection, id) in names {
            if !keystore.contains(collection, id) {
                *per_collection.entry(collection).or_default() += 1;
            }
        }
        for (collection, n) in per_collection {
            keystore.reserve(collection, n);
        }
        Ok(())
    }

    /// The data keys of `names`, in order: existing ones, or new ones appended to the
    /// keystore one frame per [`KEY_CHUNK`] records, each frame synced before the next is
    /// written (so at most one keystore frame is ever unsynced, what makes its torn-tail rule
    /// sound) and before any log frame can use its keys.
    fn issue_keys(&self, names: &[(&str, &str)]) -> Result<Vec<(u64, crypto::DataKey)>> {
        let mut keys = Vec::with_capacity(names.len());
        for chunk in names.chunks(KEY_CHUNK) {
            let added = {
                let mut guard = self.keystore.write();
                let keystore = guard.as_mut().ok_or(Error::MissingKey)?;
                let before = keystore.len();
                keys.extend(keystore.add_keys(chunk)?);
                keystore.len() != before
            };
            if added {
                self.keystore.read().as_ref().ok_or(Error::MissingKey)?.sync()?;
            }
        }
        Ok(keys)
    }

    /// Issues the keys of `names` a keystore frame at a time on this thread while the other
    /// cores seal the records whose keys are already issued (in runs of [`SEAL_RUN`]); this
    /// thread seals too once every key is issued. The sealed records come back in no
    /// particular order (each names its operation). On an error the error is returned: the
    /// runs still queued are dropped unsealed (a run a worker already took may still be
    /// sealed, and is dropped), every plaintext with them (zeroized).
    fn seal_pipelined(
        &self,
        ops: &[LogOp],
        names: &[(&str, &str)],
        waiting: Vec<Unkeyed>,
        blind: Option<&BlindIndexKey>,
    ) -> Result<Vec<SealedRecord>> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (tx, rx) = std::sync::mpsc::channel::<Vec<SealJob>>();
        let rx = parking_lot::Mutex::new(rx);
        let failed = AtomicBool::new(false);
        let work = || {
            let mut out = Vec::new();
            loop {
                let run = rx.lock().recv();
                let Ok(run) = run else { return out };
                if !failed.load(Ordering::Relaxed) {
                    out.extend(run.into_iter().map(|job| self.seal_job(ops, job, blind)));
                }
            }
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..crate::parallel::threads()).map(|_| scope.spawn(work)).collect();
            let issued = (|| {
                let mut waiting = waiting.into_iter();
                for chunk in names.chunks(KEY_CHUNK) {
                    let keys = self.issue_keys(chunk)?;
                    let mut jobs = keyed(waiting.by_ref().take(chunk.len()).collect(), keys)?.into_iter();
                    loop {
                        let run: Vec<SealJob> = jobs.by_ref().take(SEAL_RUN).collect();
                        if run.is_empty() {
                            break;
                        }
                        tx.send(run)
                            .map_err(|_| Error::invalid_argument("batch", "the sealing workers stopped"))?;
                    }
                }
                Ok(())
            })();
            drop(tx);
            if issued.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            let mut sealed = work();
            for worker in workers {
                sealed.extend(worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            issued.map(|()| sealed)
        })
    }

    fn seal_job(&self, ops: &[LogOp], job: SealJob, blind: Option<&BlindIndexKey>) -> SealedRecord {
        let (key_id, data_key) = &job.key;
        let Some(LogOp::Upsert(record)) = ops.get(job.op) else {
            return (job.op, *key_id, SealedSlots::default(), Vec::new());
        };
        let bytes = job.pii.iter().flatten().map(|v| crypto::ENVELOPE_OVERHEAD + v.expose().len()).sum();
        let mut sealed = SealedSlots::with_capacity(job.pii.len(), bytes);
        for (value, field) in job.pii.iter().zip(job.schema.pii_fields()) {
            match value {
                Some(v) => {
                    let ctx = FieldContext {
                        db_id: self.db_id,
                        collection: &record.collection,
                        record_id: &record.id,
                        field,
                        key_id: *key_id,
                    };
                    sealed.push_with(|out| crypto::seal_into(data_key, &ctx, v.expose(), out));
                }
                None => sealed.push_unset(),
            }
        }
        let blind = blind.map_or_else(Vec::new, |key| super::blind::blind_slots(key, &job.schema, &job.pii));
        (job.op, *key_id, sealed, blind)
    }
}

/// Frees a large batch's sealed envelopes and blind values, which are in the log now and
/// not kept in memory, on every core and before the state's write lock (freeing millions of
/// envelopes one by one inside the lock was a third of a 1M-record PII import's apply).
fn free_sealed(ops: &mut [LogOp]) {
    if ops.len() < PARALLEL_FREE_MIN {
        return;
    }
    let sealed: Vec<_> = ops
        .iter_mut()
        .filter_map(|op| match op {
            LogOp::Upsert(r) if r.key_id.is_some() => {
                Some((std::mem::take(&mut r.pii), std::mem::take(&mut r.blind)))
            }
            _ => None,
        })
        .collect();
    crate::parallel::map_owned(sealed, PARALLEL_FREE_MIN, drop);
}

/// Batches with at least this many operations free their sealed fields on every core.
const PARALLEL_FREE_MIN: usize = 4096;

/// A sealed record: operation index, key id, envelopes and blind values in schema order.
type SealedRecord = (usize, u64, SealedSlots, Vec<Option<[u8; 32]>>);

/// One record's PII waiting for its data key.
struct Unkeyed {
    op: usize,
    pii: Vec<Option<Pii>>,
    schema: Arc<Schema>,
}

/// Pairs records waiting for a key with their issued keys, in order.
fn keyed(waiting: Vec<Unkeyed>, keys: Vec<(u64, crypto::DataKey)>) -> Result<Vec<SealJob>> {
    if waiting.len() != keys.len() {
        return Err(Error::MissingKey);
    }
    Ok(waiting
        .into_iter()
        .zip(keys)
        .map(|(w, key)| SealJob { op: w.op, pii: w.pii, key, schema: w.schema })
        .collect())
}

/// Records sealed per hand-over in a pipelined batch (small enough that the cores finish
/// together, large enough that the hand-over costs nothing).
const SEAL_RUN: usize = 4096;

/// One record's PII waiting to be sealed.
struct SealJob {
    op: usize,
    pii: Vec<Option<Pii>>,
    key: (u64, crate::crypto::DataKey),
    schema: Arc<Schema>,
}

/// Batches with at least this many records to seal use every core.
const PARALLEL_SEAL_MIN: usize = 2048;

/// `upsert_many` inputs of at least this many records are checked on every core.
const PARALLEL_CHECK_MIN: usize = 4096;

/// Records per keystore frame when a batch creates many data keys (keeps frames far below
/// the 64 MiB limit).
const KEY_CHUNK: usize = 65_536;

#[cfg(test)]
mod tests {
    use crate::crypto::RawKey;
    use crate::model::Schema;
    use crate::{Database, LatLon, Options, Record};

    fn records(n: usize, name: &str) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let at = LatLon::new((i % 1000) as f64 * 0.01, (i / 1000) as f64 * 0.01).unwrap();
                Record::new(format!("C{i}"), at).pii("name", format!("{name} {i}"))
            })
            .collect()
    }

    /// A batch issuing more keys than one keystore frame reserves room for its new keys
    /// only: updating every record of a large collection does not grow the key map.
    #[test]
    fn a_large_update_of_records_with_keys_does_not_grow_the_key_map() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([4; 32])).audit(false)).unwrap();
        db.create_collection("c", Schema::new().pii("name")).unwrap();
        let n = super::KEY_CHUNK + 1_000;
        let capacity = || db.inner.keystore.read().as_ref().unwrap().capacity("c");
        let write = |name: &str| {
            let mut b = db.begin_write();
            assert!(b.upsert_many("c", records(n, name)).unwrap().is_empty());
            b.commit().unwrap();
        };
        write("First");
        let before = capacity();
        assert!(before >= n, "room for the new keys");
        write("Second");
        assert_eq!(capacity(), before, "an update must not reserve room for keys it reuses");
        let snap = db.read();
        assert_eq!(snap.collection("c").unwrap().reveal("C7").unwrap()["name"].expose(), "Second 7");
    }

    /// A round takes every queued batch but ends before one re-inserting a record an earlier
    /// batch of the round erased, or updating one an earlier batch of the round wrote
    /// (upserted, updated, deleted or erased) — in that collection: the same id elsewhere, or
    /// a write in the same batch, does not end it.
    #[test]
    fn a_round_ends_before_an_update_of_a_record_the_round_wrote() {
        use super::{round_end, CheckedUpdate, PendingOp, Waiting};
        let at = LatLon::new(1.0, 2.0).unwrap();
        let upsert = |c: &str, id: &str| {
            super::checked_upsert(c, &Schema::new(), || true, Record::new(id, at)).unwrap()
        };
        let update = |c: &str, id: &str| PendingOp::Update {
            collection: c.into(),
            id: id.into(),
            changes: CheckedUpdate::default(),
        };
        let delete = |c: &str, id: &str| PendingOp::Delete { collection: c.into(), id: id.into() };
        let erase = |c: &str, id: &str| PendingOp::Erase { collection: c.into(), id: id.into() };
        let round = |batches: Vec<Vec<PendingOp>>| {
            let waiting: Vec<Waiting> =
                batches.into_iter().enumerate().map(|(i, ops)| Waiting { ticket: i as u64, ops }).collect();
            round_end(&waiting)
        };
        assert_eq!(round(vec![vec![upsert("c", "a"), update("c", "a")], vec![update("c", "b")]]), 2);
        assert_eq!(round(vec![vec![upsert("c", "a")], vec![update("d", "a")], vec![update("c", "b")]]), 3);
        for write in [upsert("c", "a"), update("c", "a"), delete("c", "a"), erase("c", "a")] {
            assert_eq!(round(vec![vec![upsert("c", "x")], vec![write], vec![update("c", "a")], vec![]]), 2);
        }
        assert_eq!(round(vec![vec![update("c", "a")], vec![update("c", "a")]]), 1);
        assert_eq!(round(vec![vec![erase("c", "a")], vec![upsert("c", "a")]]), 1);
        assert_eq!(round(vec![vec![erase("c", "a")], vec![delete("c", "a"), upsert("c", "b")]]), 2);
    }

    /// Ids that would look like others (white space at an end, a direction control, another
    /// invisible character, a line separator) are refused by `upsert` and `upsert_many`,
    /// each reported with the id as given; a record an earlier version stored under such an
    /// id (made here through the earlier rules' path) can still be read, updated and
    /// deleted, in the tail and in a checkpoint, but not upserted.
    #[test]
    fn ids_that_look_like_others_are_refused_for_upserts() {
        use crate::model::Update;
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), Options::new()).unwrap();
        db.create_collection("c", Schema::new().number("v")).unwrap();
        let at = LatLon::new(1.0, 2.0).unwrap();
        let held = [" old", "old\u{a0}", "o\u{202E}ld", "\u{2066}old", "o\u{200B}ld"];
        let mut b = db.begin_write();
        for id in held {
            b.upsert_with_earlier_id_rules("c", Record::new(id, at)).unwrap();
        }
        b.commit().unwrap();
        let refused = |b: &mut super::WriteBatch<'_>, id: &str| {
            let e = b.upsert("c", Record::new(id, at)).err().unwrap_or_else(|| panic!("{id:?} accepted"));
            assert!(
                matches!(&e, crate::Error::InvalidRecord { id: given, field, .. } if field == "id" && given == id),
                "{id:?}: {e}"
            );
        };
        let new_ids = [
            " new",
            "new ",
            "new\u{a0}",
            "\u{3000}new",
            "n\u{200F}ew",
            "new\u{061C}",
            "new\u{200B}",
            "n\u{FEFF}ew",
            "\u{200D}new",
            "ne\u{AD}w",
            "ne\u{2060}w",
            "new\u{FE0F}",
            "n\u{2028}ew",
            "n\u{E0001}ew",
            "C\u{200D}D",
            "\u{200C}می",
            "می\u{200C}",
        ];
        for checkpointed in [false, true] {
            let mut b = db.begin_write();
            for id in held.iter().chain(&new_ids) {
                refused(&mut b, id);
            }
            let many = [
                " old",
                "fine",
                "old\u{a0}",
                "ne\u{202A}w",
                "new",
                "a b",
                "עמיל-1",
                "می\u{200C}خواهم",
                "क्\u{200D}ष",
            ]
            .map(|id| Record::new(id, at));
            let rejected = b.upsert_many("c", many.to_vec()).unwrap().into_vec();
            assert_eq!(
                rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
                [0, 2, 3],
                "checkpointed {checkpointed}"
            );
            for id in held {
                b.update("c", id, Update::new().number("v", 1.0)).unwrap();
            }
            b.commit().unwrap();
            let snap = db.read();
            let c = snap.collection("c").unwrap();
            assert!(held.iter().all(|id| c.get(id).unwrap().unwrap().numbers["v"] == 1.0));
            drop(snap);
            if !checkpointed {
                db.checkpoint().unwrap();
            }
        }
        let mut b = db.begin_write();
        b.delete("c", " old").unwrap();
        b.commit().unwrap();
        assert_eq!(db.read().collection("c").unwrap().len(), held.len() - 1 + 6);
    }
}
