//! Privacy operations: right to erasure, master-key rotation, subject access export.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use std::collections::{BTreeMap, BTreeSet};

use super::checkpoint::INDEX_DIR;
use super::write::PendingOp;
use super::{Database, Inner, WriteBatch};
use crate::audit::{AuditAction, AuditEntry};
use crate::crypto::KeyProvider;
use crate::crypto::Pii;
use crate::error::{Error, Result};
use crate::model::validate_id;

/// Proof of an erasure, for the data controller's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErasureReceipt {
    /// Collection.
    pub collection: String,
    /// Record id.
    pub id: String,
    /// LSN of the erasure tombstone in the log; 0 when none was written — for an id with
    /// neither a live record nor a data key there is nothing a tombstone would do, and a
    /// mistyped id (an e-mail address typed where the id goes, say) is not written into
    /// the log.
    pub lsn: u64,
    /// When the erasure became durable, milliseconds since the Unix epoch.
    pub erased_at_unix_ms: u64,
    /// Whether a live record was found.
    pub existed: bool,
    /// What was removed from the live state and the index files: location, H3 cell,
    /// attributes, PII fields, the data key, the index files' copy. The log keeps the
    /// record's earlier versions — location, attributes and phone/e-mail blind values in
    /// the clear, PII as ciphertext no key opens — until [`Database::compact`] (PRIVACY.md).
    pub removed: Vec<String>,
    /// What the log still holds of the record until [`Database::compact`] rewrites it, so
    /// that a receipt read alone, as JSON say, does not pass for the end of it (from a
    /// hands-on review). Empty when no tombstone was written (no live record, no data key):
    /// the id of a record deleted before without PII may still have earlier versions in the
    /// log, which [`Database::export_subject`] lists and a compaction removes.
    pub until_compaction: Vec<String>,
    /// LSN of the checkpoint written without the record, when the index files held it.
    pub checkpoint_lsn: Option<u64>,
}

/// [`ErasureReceipt::until_compaction`] of an erasure that wrote a tombstone, for a record
/// whose versions may hold PII (`sealed`: it had a data key or PII fields) in a collection
/// with phone or e-mail fields (`blind`).
fn until_compaction(sealed: bool, blind: bool) -> Vec<String> {
    let mut kept = vec![
        "the record id, in the tombstone and the earlier versions".to_owned(),
        "the earlier versions' location, H3 cell and attributes, in the clear".to_owned(),
    ];
    if sealed && blind {
        kept.push("the earlier versions' blind values of phone numbers and e-mail addresses".to_owned());
    }
    if sealed {
        kept.push("the earlier versions' PII, as ciphertext no key opens any more".to_owned());
    }
    kept
}

/// Erasures allowed between compactions: the MANIFEST lists their key ids (at most 9 bytes
/// each) in one frame of at most 64 MiB; refused before any tombstone is written, so the
/// database stays openable and can be compacted.
const MAX_ERASED_BEFORE_COMPACTION: usize = 7_000_000;

/// Uncounts an erasure's ids from [`Inner::erasures_in_flight`](super::Inner) when dropped.
struct InFlight<'a>(&'a parking_lot::Mutex<usize>, usize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut n = self.0.lock();
        *n = n.saturating_sub(self.1);
    }
}

/// What [`Database::export_subject`] returns: everything stored about one customer, PII
/// decrypted, as JSON. Reads as the [`Value`] it wraps (`export["pii"]["phone"]`, or
/// [`Self::into_json`]) and serializes as it; its `Debug` output names the subject and
/// leaves everything else out, so a logged export leaks no PII.
#[derive(Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SubjectExport(Value);

impl SubjectExport {
    /// The JSON document.
    #[must_use]
    pub fn into_json(self) -> Value {
        self.0
    }
}

impl std::ops::Deref for SubjectExport {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl std::fmt::Debug for SubjectExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectExport")
            .field("collection", &self.0["collection"])
            .field("id", &self.0["id"])
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Erases a record: a durable tombstone, removal from every index, and destruction of its
    /// data key, after which no key — including the master key — decrypts its PII. When the
    /// record (any version of it) is in the checkpoint's index files, a new checkpoint is
    /// written without it before this returns, so no index file holds its location, cell,
    /// id or attributes any more. The sealed PII stays in the log as unreadable ciphertext
    /// until compaction rewrites it. Erasing many records: [`Database::erase_many`] (one
    /// commit, at most one checkpoint).
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([4; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut b = db.begin_write();
    /// b.upsert("customers", Record::new("C-9", LatLon::new(1.0, 2.0)?).pii("name", "Eve"))?;
    /// b.commit()?;
    /// db.checkpoint()?; // C-9 is now in the memory-mapped index files
    /// let receipt = db.erase("customers", "C-9")?;
    /// assert!(receipt.existed && receipt.removed.contains(&"data key".to_string()));
    /// assert!(receipt.checkpoint_lsn.is_some(), "the index files were rewritten without it");
    /// assert!(db.read().collection("customers")?.get("C-9")?.is_none());
    /// // The log still holds its earlier versions until a compaction; the receipt says so.
    /// assert!(receipt.until_compaction.iter().any(|what| what.contains("location")));
    /// db.compact()?;
    /// // A mistyped id: nothing found, nothing written, nothing left behind.
    /// let nobody = db.erase("customers", "C-99")?;
    /// assert!(!nobody.existed && nobody.removed.is_empty() && nobody.until_compaction.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownCollection`], [`Error::InvalidRecord`] for a bad id, and write errors
    /// as for [`WriteBatch::commit`]. If the key cannot be destroyed after the tombstone is
    /// durable, the database is poisoned and reopening finishes the erasure. If the new
    /// checkpoint fails, the erasure itself (tombstone, key) stands and the error is
    /// returned: the next checkpoint removes the record from the index files.
    /// [`Error::Corrupt`], before anything is written, when a checkpoint file of any
    /// collection is damaged (every section is checked first): the next open sets it aside.
    /// [`Error::SnapshotHeld`] on a thread holding a snapshot.
    pub fn erase(&self, collection: &str, id: &str) -> Result<ErasureReceipt> {
        let mut receipts = self.erase_many(collection, &[id])?;
        receipts.pop().ok_or_else(|| Error::invalid_argument("id", "nothing was erased"))
    }

    /// Erases several records of one collection in one commit (one keystore rewrite) and at
    /// most one new checkpoint; one receipt per distinct id, in the order of first mention. See [`Database::erase`].
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([4; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut b = db.begin_write();
    /// for id in ["C-1", "C-2", "C-3"] {
    ///     b.upsert("customers", Record::new(id, LatLon::new(1.0, 2.0)?).pii("name", "Eve"))?;
    /// }
    /// b.commit()?;
    /// db.checkpoint()?;
    /// let receipts = db.erase_many("customers", &["C-1", "C-3", "C-404"])?;
    /// assert_eq!(receipts.iter().map(|r| r.existed).collect::<Vec<_>>(), [true, true, false]);
    /// assert_eq!(receipts[0].checkpoint_lsn, receipts[1].checkpoint_lsn); // one checkpoint
    /// assert_eq!(db.read().collection("customers")?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Database::erase`]; a bad id fails the whole call before anything is written;
    /// [`Error::InvalidArgument`] when the erasures since the last compaction would pass the
    /// cap the MANIFEST can list (compact first).
    pub fn erase_many(&self, collection: &str, ids: &[&str]) -> Result<Vec<ErasureReceipt>> {
        self.inner.refuse_write("erasure")?;
        for id in ids {
            validate_id(id)?;
        }
        // The same id twice would get two receipts both saying it existed.
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        let unique: Vec<&str> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let ids = &unique[..];
        self.inner.ensure_keystore_checked()?;
        {
            // Which records the checkpoint holds is decided by looking them up in it (a
            // damaged id section would hide one, leaving its location in the files), and the
            // checkpoint the erasure then writes reads the files it copies whole: damage
            // anywhere, found only after the tombstones, would leave the record in the files.
            // (Checked outside the state lock: the first check reads the files whole.)
            let bases: Vec<_> = self
                .inner
                .read_state()
                .collections
                .values()
                .filter_map(|c| c.base.as_ref().map(|b| std::sync::Arc::clone(&b.checkpoint)))
                .collect();
            for checkpoint in &bases {
                self.inner.check_checkpoint_whole(checkpoint)?;
            }
        }
        {
            // The keystore before the MANIFEST, never while holding it: an erasing commit
            // round holds the keystore's write lock while it takes the MANIFEST's.
            let no_keystore = self.inner.keystore.read().is_none();
            let manifest = self.inner.manifest.lock();
            if manifest.keystore && no_keystore {
                // Without it the tombstones would name no key, and the keys — still in the
                // backup to be restored — would never be destroyed.
                return Err(Error::corrupt(
                    self.inner.dir.join(crate::crypto::KEYSTORE_FILE),
                    0,
                    "the keystore is missing, though this database has had one: restore it from a \
                     backup before erasing",
                ));
            }
            // Concurrent erasures (they may share a commit round) count each other's ids until
            // their commits return, so together they cannot pass the cap either.
            let listed = manifest.erased_key_ids.as_ref().map_or(0, Vec::len);
            let mut in_flight = self.inner.erasures_in_flight.lock();
            if listed + *in_flight + ids.len() > MAX_ERASED_BEFORE_COMPACTION {
                return Err(Error::invalid_argument(
                    "ids",
                    format!("{listed} erasures since the last compaction: compact the database first"),
                ));
            }
            *in_flight += ids.len();
        }
        let in_flight_ids = InFlight(&self.inner.erasures_in_flight, ids.len());
        // A final keystore frame the open left out (damaged) holds no key a live record uses
        // (checked above), but may hold one of a record deleted before: that key would escape
        // the erasure (it is in no map) and could come back in a repair. After the checks
        // that refuse an erasure before anything is written.
        self.read().collection(collection)?;
        self.inner.drop_left_out_keystore_frame()?;
        let mut receipts = Vec::with_capacity(ids.len());
        // Whether the collection's records get blind values (of phone or e-mail fields).
        let blind;
        {
            let snap = self.read();
            let c = snap.collection(collection)?;
            blind = super::blind::has_blind_kinds(c.schema());
            for &id in ids {
                let mut removed = Vec::new();
                let existed = match c.get(id)? {
                    Some(view) => {
                        removed.extend(["location".to_owned(), "H3 cell".to_owned()]);
                        removed.extend(
                            view.numbers
                                .keys()
                                .chain(view.categories.keys())
                                .map(|k| format!("attribute {k}")),
                        );
                        removed.extend(view.pii.keys().map(|k| format!("PII field {k}")));
                        true
                    }
                    None => false,
                };
                receipts.push(ErasureReceipt {
                    collection: collection.to_owned(),
                    id: id.to_owned(),
                    lsn: 0,
                    erased_at_unix_ms: 0,
                    existed,
                    removed,
                    until_compaction: Vec::new(),
                    checkpoint_lsn: None,
                });
            }
        }
        {
            let keystore = self.inner.keystore.read();
            for r in &mut receipts {
                if keystore.as_ref().is_some_and(|k| k.contains(collection, &r.id)) {
                    r.removed.push("data key".to_owned());
                }
            }
        }
        // A tombstone for each live record and each record with a data key (deleted before).
        let tombstoned: Vec<bool> = receipts.iter().map(|r| r.existed || !r.removed.is_empty()).collect();
        for (r, _) in receipts.iter_mut().zip(&tombstoned).filter(|(_, &t)| t) {
            let sealed = r.removed.iter().any(|what| what == "data key" || what.starts_with("PII field"));
            r.until_compaction = until_compaction(sealed, blind);
        }
        let mut batch = WriteBatch::new(self);
        for (r, _) in receipts.iter().zip(&tombstoned).filter(|(_, &t)| t) {
            batch.push(PendingOp::Erase { collection: collection.to_owned(), id: r.id.clone() });
        }
        let first_lsn = if !batch.is_empty() {
            batch.commit()?.first_lsn
        } else {
            // As an erasing commit would in bulk-load mode: what was written before (a
            // deletion of one of these records, say) is durable when the receipt says so.
            if self.inner.durability == crate::Durability::NoSyncBulkLoad {
                self.sync()?;
            }
            0
        };
        drop(in_flight_ids); // the ids are in the MANIFEST's list now
        let erased_at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut lsns = first_lsn..;
        for (r, &t) in receipts.iter_mut().zip(&tombstoned) {
            r.lsn = if t { lsns.next().unwrap_or(0) } else { 0 };
            r.erased_at_unix_ms = erased_at_unix_ms;
        }
        // Which records any version of which (even a hidden one) is in the checkpoint's
        // files. Decided after the tombstones, with no checkpoint running: one whose
        // snapshot was taken before them has been published by now, and any later one
        // cannot hold them.
        let one_at_a_time = self.inner.checkpointing.lock();
        let in_files: Vec<bool> = {
            let state = self.inner.read_state();
            let base = state.collections.get(collection).and_then(|c| c.base.as_ref());
            ids.iter().map(|id| base.is_some_and(|b| b.checkpoint.find(id).is_some())).collect()
        };
        // A checkpoint the open rejected (damaged) is still on disk, named by the MANIFEST,
        // and may hold the records: only a new checkpoint replaces (and deletes) its files.
        let named_lsn = self.inner.manifest.lock().checkpoint.as_ref().map(|c| c.lsn);
        let in_use_lsn = self.inner.read_state().checkpoint_lsn;
        let rejected_files = named_lsn.is_some_and(|lsn| lsn != in_use_lsn);
        if in_files.contains(&true) || rejected_files {
            let report = self.inner.checkpoint_holding(&one_at_a_time, false)?;
            for (r, _) in receipts
                .iter_mut()
                .zip(&in_files)
                .filter(|(r, &in_files)| in_files || (rejected_files && r.existed))
            {
                r.removed.push("index files (rewritten by a new checkpoint)".to_owned());
                r.checkpoint_lsn = Some(report.lsn);
            }
        } else {
            // Files of a checkpoint that failed before its manifest (orphans, which could
            // hold the records) go now rather than at the next checkpoint.
            let named =
                self.inner.manifest.lock().checkpoint.as_ref().map(|c| c.files.clone()).unwrap_or_default();
            super::checkpoint::remove_unnamed_files(&*self.inner.fs, &self.inner.dir.join(INDEX_DIR), &named);
        }
        Ok(receipts)
    }

    /// Re-wraps every data key under a new master key (one atomic keystore rewrite, no log
    /// rewrite). Afterwards the old master key opens nothing in this database; keep no copy
    /// of it. A backup of the old keystore file still opens with the old key — destroy both.
    ///
    /// # Errors
    /// [`Error::MissingKey`] when the database was opened without a key;
    /// [`Error::InvalidArgument`] when the new key is the current one (for a passphrase: the
    /// same passphrase); errors of the new key provider; [`Error::Io`];
    /// [`Error::SnapshotHeld`] on a thread holding a snapshot.
    pub fn rotate_master_key(&self, new: &dyn KeyProvider) -> Result<()> {
        self.inner.refuse_write("key rotation")?;
        self.inner.ensure_keystore()?;
        let _writer = self.inner.writer.lock(); // no keys are added while rotating
        let mut master = self.inner.master.lock();
        let old = master.as_ref().ok_or(Error::MissingKey)?;
        // Derived once (a key file may be a pipe, read once; a passphrase costs an Argon2id
        // run), under the current KDF parameters, which the keystore keeps. The current
        // secret again would change nothing — and a caller told the old key opens nothing
        // any more could destroy the only one.
        let kdf = *self.inner.keystore.read().as_ref().ok_or(Error::MissingKey)?.kdf_params();
        let new_master = new.master_key(&kdf)?;
        new_master.refuse_placeholder()?;
        if new_master.bytes() == old.bytes() {
            return Err(Error::invalid_argument(
                "new key",
                "is the current master key: rotating to it changes nothing",
            ));
        }
        self.inner.keystore.write().as_mut().ok_or(Error::MissingKey)?.rotate(old, &new_master, kdf)?;
        *master = Some(new_master);
        Ok(())
    }

    /// Everything stored about a customer, as JSON (subject access): the live record —
    /// location, H3 cell, attributes, PII decrypted, its LSN — and `earlier_versions`, what
    /// the log still holds of it until a compaction: each version an update replaced (PII
    /// decrypted; `"pii_erased": true` once an erasure destroyed its data key, `"pii_lost":
    /// true` if the keystore lost it otherwise), deletions and erasures, oldest first; and
    /// `reads`, the audit entries naming the id (who read its PII, when, which fields). Reads
    /// the whole log (about a second per GB; commits go on meanwhile, checkpoints and
    /// compactions wait). Recorded in the audit log as one `export` entry naming every PII
    /// field returned (also when none is).
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([6; 32])))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// for phone in ["+44 20 7946 0001", "+44 20 7946 0002"] {
    ///     let mut b = db.begin_write();
    ///     b.upsert("customers", Record::new("C-1", LatLon::new(51.5, -0.1)?).pii("phone", phone))?;
    ///     b.commit()?;
    /// }
    /// let export = db.export_subject("customers", "C-1")?;
    /// assert_eq!(export["pii"]["phone"], "+442079460002");
    /// assert_eq!(export["earlier_versions"][0]["pii"]["phone"], "+442079460001");
    /// db.compact()?; // the earlier version leaves the disk
    /// assert_eq!(db.export_subject("customers", "C-1")?["earlier_versions"], serde_json::json!([]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::MissingKey`] without a key; [`Error::UnknownCollection`];
    /// [`Error::NotFound`] when neither the log nor the audit log holds anything of the id;
    /// [`Error::SnapshotHeld`]
    /// on a thread holding a snapshot; [`Error::Corrupt`] for damage in the log before the
    /// snapshot's end; decryption, audit and I/O errors.
    pub fn export_subject(&self, collection: &str, id: &str) -> Result<SubjectExport> {
        if !self.has_key() {
            return Err(Error::MissingKey);
        }
        self.inner.refuse_while_reading("subject export")?;
        // No compaction deletes the segments read below meanwhile.
        let _one_at_a_time = self.inner.checkpointing.lock();
        // The live record, under a snapshot dropped before the log is read (commits wait for
        // snapshots): the export is of the database as it was at that moment.
        let (live, revealed, before, schema, key) = {
            let snap = self.read();
            let c = snap.collection(collection)?;
            let live = c.get(id)?;
            let revealed = if live.is_some() { c.reveal_unaudited(id)? } else { BTreeMap::new() };
            let before = live.as_ref().map_or(snap.next_lsn(), |v| v.lsn);
            self.inner.ensure_keystore()?;
            let key =
                self.inner.keystore.read().as_ref().ok_or(Error::MissingKey)?.data_key(collection, id)?;
            (live, revealed, before, c.schema().clone(), key)
        };
        let mut fields: BTreeSet<String> = revealed.keys().cloned().collect();
        let subject = Subject { collection, id, schema: &schema, key: key.as_ref() };
        let earlier = self.earlier_versions(&subject, before, &mut fields)?;
        // Who read the subject's PII before (the audit log's entries naming the id).
        let reads: Vec<Value> = self
            .inner
            .audit
            .entries()?
            .into_iter()
            .filter(|e| e.collection == collection && e.ids.iter().any(|i| i == id))
            .map(|e| json!({"unix_ms": e.unix_ms, "actor": e.actor, "action": e.action, "fields": e.fields}))
            .collect();
        if live.is_none() && earlier.is_empty() && reads.is_empty() {
            // Nothing of it in the log, nor in the audit log. (After an erasure and a
            // compaction the audit log still names the id, and that is exported: it was
            // "not found" while the audit log held its reads, from the privacy review.)
            return Err(Error::NotFound { collection: collection.to_owned(), id: id.to_owned() });
        }
        // One `export` entry — even with no PII field: locations and attributes are
        // personal data too —, written before anything is returned.
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        self.inner.audit.record(AuditAction::Export, collection, &[id], &names)?;
        let mut out = json!({"collection": collection, "id": id, "live": live.is_some()});
        if let Some(view) = live {
            let pii: serde_json::Map<String, Value> =
                revealed.into_iter().map(|(k, v)| (k, Value::String(v.expose().to_owned()))).collect();
            out["location"] = location_json(view.location.lat(), view.location.lon());
            out["numbers"] = json!(view.numbers);
            out["categories"] = json!(view.categories);
            out["pii"] = Value::Object(pii);
            out["lsn"] = json!(view.lsn);
        }
        out["earlier_versions"] = Value::Array(earlier);
        out["reads"] = Value::Array(reads);
        Ok(SubjectExport(out))
    }

    /// What the log holds of the subject before LSN `before`, oldest first, as JSON; adds
    /// the PII fields decrypted to `fields`.
    fn earlier_versions(
        &self,
        subject: &Subject<'_>,
        before: u64,
        fields: &mut BTreeSet<String>,
    ) -> Result<Vec<Value>> {
        let log_dir = self.inner.dir.join(crate::log::LOG_DIR);
        let floor = self.inner.manifest.lock().log_floor;
        let start = (floor > 1).then_some(crate::log::LogStart { segment: floor, first_lsn: None });
        let mut out = Vec::new();
        // Every operation before `before` is in a complete transaction (the snapshot saw it
        // committed); the scan stops at the first transaction after, and what it finds wrong
        // beyond (a frame being appended, a segment being created) is not this export's.
        let mut reached = 0;
        let mut visit = |txn: crate::log::ReplayedTxn| -> Result<()> {
            if txn.first_lsn >= before {
                return Err(Error::invalid_argument("scan", "reached the snapshot's end"));
            }
            reached = super::read::for_each_txn_op(&log_dir, txn, |op, _, lsn| {
                if lsn < before {
                    out.extend(self.version_json(subject, op, lsn, fields)?);
                }
                Ok(())
            })?;
            Ok(())
        };
        match crate::log::scan(&*self.inner.fs, &log_dir, &self.inner.db_id, start, &mut visit) {
            Err(_) if reached >= before => Ok(out),
            Err(e) => Err(e),
            // Damage found since the open, before the snapshot's end: not a silent gap.
            Ok(scan) if reached < before => {
                let (file, offset) =
                    scan.report.truncated.map_or_else(|| (log_dir.clone(), 0), |t| (t.file, t.offset));
                Err(Error::corrupt(
                    file,
                    offset,
                    "the log ends before the operations the export's snapshot saw",
                ))
            }
            Ok(_) => Ok(out),
        }
    }

    /// `op` (at `lsn`) as an earlier version of the subject, if it is one of its.
    fn version_json(
        &self,
        subject: &Subject<'_>,
        op: super::ops::LogOp,
        lsn: u64,
        fields: &mut BTreeSet<String>,
    ) -> Result<Option<Value>> {
        use super::ops::LogOp;
        let ours = |collection: &str, of: &str| collection == subject.collection && of == subject.id;
        Ok(Some(match op {
            LogOp::Upsert(mut r) if ours(&r.collection, &r.id) => {
                let schema = subject.schema;
                // Named as the live record's are (`get`).
                use super::read::set_fields as set;
                let mut version = json!({
                    "lsn": lsn,
                    "op": "upsert",
                    "location": location_json(r.lat, r.lon),
                    "numbers": set(schema.number_fields(), std::mem::take(&mut r.numbers), |v| v),
                    "categories": set(schema.category_fields(), std::mem::take(&mut r.categories), |v| v),
                });
                let mut pii = serde_json::Map::new();
                if let Some(key_id) = r.key_id.filter(|_| r.pii.iter().any(|slot| slot.is_some())) {
                    match subject.key.filter(|(k, _)| *k == key_id) {
                        Some((_, data_key)) => {
                            let opened = super::read::open_sealed(
                                self.inner.db_id,
                                subject.collection,
                                schema,
                                &r,
                                (key_id, data_key),
                            )?;
                            for (field, value) in opened {
                                fields.insert(field.clone());
                                pii.insert(field, Value::String(value.expose().to_owned()));
                            }
                        }
                        // Its data key is gone: an erasure destroyed it — or, when the MANIFEST
                        // knows no erasure did, the keystore lost it (`repair` drops keys it
                        // cannot read): said as such, not as an erasure.
                        None if self.inner.manifest.lock().erased_key(key_id) == Some(false) => {
                            version["pii_lost"] = json!(true);
                        }
                        None => version["pii_erased"] = json!(true),
                    }
                }
                version["pii"] = Value::Object(pii);
                version
            }
            LogOp::Delete { collection, id: of } if ours(&collection, &of) => {
                json!({"lsn": lsn, "op": "delete"})
            }
            LogOp::Erase { collection, id: of, .. } if ours(&collection, &of) => {
                json!({"lsn": lsn, "op": "erase"})
            }
            _ => return Ok(None),
        }))
    }
}

/// Whose history [`Database::export_subject`] reads: a record id of a collection, with the
/// collection's schema and the record's data key (if the keystore holds one).
struct Subject<'a> {
    collection: &'a str,
    id: &'a str,
    schema: &'a crate::model::Schema,
    key: Option<&'a (u64, crate::crypto::DataKey)>,
}

/// A location as exported: latitude, longitude and its H3 cell at resolution 15.
fn location_json(lat: f64, lon: f64) -> Value {
    let cell = h3o::LatLng::new(lat, lon)
        .map(|ll| ll.to_cell(h3o::Resolution::Fifteen).to_string())
        .unwrap_or_default();
    json!({"lat": lat, "lon": lon, "h3_cell": cell})
}

impl Database {
    /// Every entry of the audit log of PII reads (`DIR/audit.log`), oldest first; empty when
    /// the database has never been opened with auditing on. Needs no key: entries hold
    /// actors, times, collections, ids and field names, never PII values.
    ///
    /// ```
    /// use geocrm::{audit::AuditAction, crypto::RawKey, Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([6; 32])).actor("alice"))?;
    /// db.create_collection("customers", Schema::crm())?;
    /// let mut b = db.begin_write();
    /// b.upsert("customers", Record::new("C-1", LatLon::new(1.0, 2.0)?).pii("name", "Ada"))?;
    /// b.commit()?;
    /// db.read().collection("customers")?.reveal("C-1")?;
    /// let entries = db.audit_entries()?;
    /// assert_eq!((entries[0].actor.as_str(), entries[0].action), ("alice", AuditAction::Reveal));
    /// assert_eq!((entries[0].ids.clone(), entries[0].fields.clone()), (vec!["C-1".to_owned()], vec!["name".to_owned()]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and offset of damage (a torn final frame is
    /// skipped); [`Error::UnsupportedVersion`]; [`Error::Io`].
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        self.inner.audit.entries()
    }

    /// [`Self::audit_entries`] of a log that may be damaged: the entries before the first
    /// damage, oldest first, and the damage ([`Error::Corrupt`] naming the file and offset),
    /// if any — so the intact record of who read what can be read before `geocrm repair`
    /// cuts the log there.
    ///
    /// ```
    /// use geocrm::{Database, Options};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// let (entries, damage) = db.audit_entries_before_damage()?;
    /// assert!(entries.is_empty() && damage.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`]; [`Error::Io`].
    pub fn audit_entries_before_damage(&self) -> Result<(Vec<AuditEntry>, Option<Error>)> {
        self.inner.audit.entries_before_damage()
    }
}

impl Inner {
    /// Records a reveal of `fields` of record `id` (nothing when no field was revealed).
    pub(crate) fn audit_reveal(
        &self,
        collection: &str,
        id: &str,
        fields: &BTreeMap<String, Pii>,
    ) -> Result<()> {
        if fields.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        self.audit.record(AuditAction::Reveal, collection, &[id], &names)
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_ERASED_BEFORE_COMPACTION;
    use crate::crypto::RawKey;
    use crate::model::Schema;
    use crate::{Database, Error, LatLon, Options, Record};

    /// A keyed database with records `ids` (with PII) in collection `c`.
    fn keyed_with(ids: &[&str]) -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([3; 32]))).unwrap();
        db.create_collection("c", Schema::crm()).unwrap();
        let mut batch = db.begin_write();
        for id in ids {
            batch.upsert("c", Record::new(*id, LatLon::new(1.0, 1.0).unwrap()).pii("name", "N")).unwrap();
        }
        batch.commit().unwrap();
        (dir, db)
    }

    #[test]
    fn an_export_tells_a_key_the_keystore_lost_from_an_erased_one() {
        // A version whose key is gone is "pii_erased" only when an erasure destroyed it; a
        // key the keystore lost (repair drops keys it cannot read) is "pii_lost" (it was
        // reported as erased; found by a reviewing helper).
        let (_dir, db) = keyed_with(&["a", "b"]);
        let mut batch = db.begin_write();
        batch.delete("c", "a").unwrap();
        batch.commit().unwrap();
        db.erase("c", "b").unwrap();
        db.inner.keystore.write().as_mut().unwrap().remove_keys(&[("c", "a")]).unwrap();
        let a = db.export_subject("c", "a").unwrap();
        assert_eq!(
            (&a["earlier_versions"][0]["pii_lost"], &a["live"]),
            (&true.into(), &false.into()),
            "{}",
            *a
        );
        assert!(a["earlier_versions"][0].get("pii_erased").is_none(), "{}", *a);
        let b = db.export_subject("c", "b").unwrap();
        assert_eq!(b["earlier_versions"][0]["pii_erased"], true, "{}", *b);
        assert!(b["earlier_versions"][0].get("pii_lost").is_none(), "{}", *b);
    }

    #[test]
    fn erasures_in_flight_count_against_the_cap_until_their_commit_returns() {
        let (_dir, db) = keyed_with(&["a", "b", "c"]);
        // Another erasure's ids, checked but not committed yet, leave room for one more.
        *db.inner.erasures_in_flight.lock() = MAX_ERASED_BEFORE_COMPACTION - 1;
        let refused = db.erase_many("c", &["a", "b"]);
        assert!(matches!(refused, Err(Error::InvalidArgument { name: "ids", .. })), "{refused:?}");
        assert_eq!(*db.inner.erasures_in_flight.lock(), MAX_ERASED_BEFORE_COMPACTION - 1);
        db.erase("c", "a").unwrap();
        // Counted while it ran, uncounted once its commit returned (now listed instead).
        assert_eq!(*db.inner.erasures_in_flight.lock(), MAX_ERASED_BEFORE_COMPACTION - 1);
        assert_eq!(db.inner.manifest.lock().erased_key_ids.as_ref().map(Vec::len), Some(1));
        // The listed id counts too.
        assert!(db.erase("c", "b").is_err());
        *db.inner.erasures_in_flight.lock() = 0;
        db.erase("c", "b").unwrap();
        assert_eq!(db.read().collection("c").unwrap().len(), 1);
    }

    #[test]
    fn an_erasure_never_holds_the_manifest_while_it_waits_for_the_keystore() {
        // An erasing commit round holds the keystore's write lock and then takes the
        // MANIFEST's: an erasure holding the MANIFEST while it waited for the keystore
        // deadlocked with it (found by a reviewing helper).
        let (_dir, db) = keyed_with(&["a"]);
        let keystore = db.inner.keystore.write();
        std::thread::scope(|s| {
            let erasing = s.spawn(|| db.erase("c", "a"));
            std::thread::sleep(std::time::Duration::from_millis(300)); // it waits by now
            let free = db.inner.manifest.try_lock_for(std::time::Duration::from_secs(1)).is_some();
            drop(keystore);
            assert!(free, "the erasure held the MANIFEST while waiting for the keystore");
            erasing.join().unwrap().unwrap();
        });
        assert!(db.read().collection("c").unwrap().is_empty());
    }
}
