//! The in-memory state rebuilt from the log: collections, their category dictionaries and
//! tables. Replay applies operations one at a time ([`State::apply`]); a commit applies its
//! batch with [`State::apply_all`], which gives the same state, with long runs of upserts
//! taken in bulk ([`bulk_apply`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use h3o::CellIndex;

use super::bulk_apply::{self, run_key, runs_of, PreparedCollection, PreparedUpserts, PARALLEL_APPLY_MIN};
use super::ops::{LogOp, StoredRecord};
use crate::geo::LatLon;
use crate::index::{BaseRows, MemoryTable, OpPointer, TableView};
use crate::model::{validate_id, validate_name, Schema};
use crate::query::{CategoryCodes, MISSING_CODE};

/// Category value ↔ code dictionaries, one per category field. Codes are dense and only grow
/// between checkpoints; a new checkpoint's file keeps only the values its rows use, renumbered,
/// and becomes the collection's dictionary (the rows written since are renumbered with it).
#[derive(Debug, Default)]
pub(crate) struct CategoryDict {
    values: Vec<Vec<Arc<str>>>,
    codes: Vec<HashMap<Arc<str>, u32, ahash::RandomState>>,
}

impl CategoryDict {
    fn new(fields: usize) -> Self {
        CategoryDict { values: vec![Vec::new(); fields], codes: vec![HashMap::default(); fields] }
    }

    /// A dictionary holding `values` (by code, per field), as a checkpoint stores it.
    pub(crate) fn from_values(values: &[Vec<String>]) -> Self {
        let mut dict = CategoryDict::new(values.len());
        for (field, list) in values.iter().enumerate() {
            for v in list {
                dict.intern(field, v);
            }
        }
        dict
    }

    /// Every value by code, per field.
    pub(crate) fn to_values(&self) -> Vec<Vec<String>> {
        self.values.iter().map(|list| list.iter().map(|v| v.to_string()).collect()).collect()
    }

    pub(crate) fn intern(&mut self, field: usize, value: &str) -> u32 {
        let (Some(values), Some(codes)) = (self.values.get_mut(field), self.codes.get_mut(field)) else {
            return MISSING_CODE;
        };
        if let Some(&code) = codes.get(value) {
            return code;
        }
        let code = u32::try_from(values.len()).unwrap_or(MISSING_CODE);
        let value: Arc<str> = value.into();
        values.push(value.clone());
        codes.insert(value, code);
        code
    }

    /// The value of a code.
    pub(crate) fn value(&self, field: usize, code: u32) -> Option<&str> {
        self.values.get(field)?.get(code as usize).map(AsRef::as_ref)
    }
}

impl CategoryCodes for CategoryDict {
    fn code(&self, field: usize, value: &str) -> Option<u32> {
        self.codes.get(field)?.get(value).copied()
    }
}

/// One collection: its checkpoint rows (if any) and the in-memory table of later writes.
#[derive(Debug)]
pub(crate) struct CollectionState {
    pub schema: Arc<Schema>,
    pub dict: CategoryDict,
    /// Writes since the checkpoint.
    pub table: MemoryTable,
    /// The mapped checkpoint and the rows of it replaced or removed since.
    pub base: Option<BaseRows>,
}

impl CollectionState {
    /// A new collection: no rows yet, no checkpoint.
    pub(super) fn empty(schema: &Schema) -> Self {
        CollectionState {
            schema: Arc::new(schema.clone()),
            dict: CategoryDict::new(schema.category_fields().len()),
            table: MemoryTable::new(),
            base: None,
        }
    }

    /// The rows as queries see them.
    pub(crate) fn view(&self) -> TableView<'_> {
        TableView { tail: &self.table, base: self.base.as_ref() }
    }

    /// Hides the checkpoint's row for `id`, if it has one; `true` if it was visible until now.
    fn hide_base(&mut self, id: &str) -> bool {
        match &mut self.base {
            Some(base) => {
                base.checkpoint.find(id).is_some_and(|row| base.hidden.hide(row, base.checkpoint.len()))
            }
            None => false,
        }
    }
}

/// Operations on one collection in one commit from which applying rebuilds its tree in bulk.
const BULK_APPLY_MIN: usize = 4096;

// A collection built aside is swapped in during its bulk phase, which the end of `apply_all`
// finishes only for collections with at least `BULK_APPLY_MIN` operations.
const _: () = assert!(PARALLEL_APPLY_MIN >= BULK_APPLY_MIN);

/// Every collection, and the next log sequence number.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub collections: BTreeMap<String, CollectionState>,
    pub next_lsn: u64,
    /// LSN of the checkpoint the collections' base rows come from (0 without one).
    pub checkpoint_lsn: u64,
    /// Set during replay: new tables defer their tree to one bulk load.
    pub replaying: bool,
    /// Data keys named by erasure tombstones since the last drain: (collection, id, key id).
    /// The write path destroys them after the tombstone is durable; open finishes any an
    /// interruption left behind.
    pub erased_keys: Vec<(String, String, u64)>,
    /// Records erased by the tombstones replayed (with PII or not): (collection, id). Open
    /// finishes an erasure whose checkpoint never came if the checkpoint holds the record.
    pub replayed_erasures: Vec<(String, String)>,
    /// Set while a checkpoint is built from a snapshot taken at its LSN, outside the writer
    /// lock: the ids that later operations touched, which the new checkpoint must hide.
    pub building: Option<CheckpointJournal>,
}

/// The records written while a checkpoint is being built.
#[derive(Debug, Default)]
pub(crate) struct CheckpointJournal {
    /// Ids upserted, deleted or erased since the checkpoint's snapshot, per collection.
    pub touched: HashMap<String, Vec<Arc<str>>>,
}

impl CheckpointJournal {
    pub(super) fn touch(&mut self, collection: &str, id: &str) {
        match self.touched.get_mut(collection) {
            Some(ids) => ids.push(id.into()),
            None => {
                self.touched.insert(collection.to_owned(), vec![id.into()]);
            }
        }
    }
}

impl State {
    /// Removes every in-memory row whose data key `erased` says an erasure destroyed, as
    /// its tombstone would have, and returns them as `(collection, id)`. Keys are destroyed
    /// only once the tombstones are durable, and a record written after its erasure gets a
    /// new key: such a row's tombstone was in a final log frame that was damaged and cut.
    pub(crate) fn remove_rows_with_erased_keys(
        &mut self,
        erased: impl Fn(u64) -> bool,
    ) -> Vec<(String, String)> {
        let mut removed = Vec::new();
        for (name, c) in &mut self.collections {
            let ids: Vec<String> =
                c.table.rows().filter(|r| r.key_id.is_some_and(&erased)).map(|r| r.id.to_string()).collect();
            for id in ids {
                c.table.remove(&id);
                c.hide_base(&id);
                removed.push((name.clone(), id));
            }
        }
        removed
    }

    /// Checks that an operation is well-formed against the current state. Replay turns a
    /// failure into [`crate::Error::Corrupt`]; the write path never produces one.
    pub(crate) fn check(&self, op: &LogOp) -> Result<(), String> {
        match op {
            LogOp::CreateCollection { name, schema } => {
                validate_name(name).map_err(|e| e.to_string())?;
                schema.validate().map_err(|e| e.to_string())?;
                if self.collections.contains_key(name) {
                    return Err(format!("collection {name:?} created twice"));
                }
            }
            LogOp::EnsureCollection { name, schema } => {
                validate_name(name).map_err(|e| e.to_string())?;
                schema.validate().map_err(|e| e.to_string())?;
                if self.collections.get(name).is_some_and(|c| *c.schema != *schema) {
                    return Err(format!("collection {name:?} restated with a different schema"));
                }
            }
            LogOp::Upsert(r) => self.check_record(r)?,
            LogOp::Delete { collection, id } | LogOp::Erase { collection, id, .. } => {
                if !self.collections.contains_key(collection) {
                    return Err(format!("delete in unknown collection {collection:?}"));
                }
                validate_id(id).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    fn check_record(&self, r: &StoredRecord) -> Result<(), String> {
        let c = self
            .collections
            .get(&r.collection)
            .ok_or_else(|| format!("unknown collection {:?}", r.collection))?;
        validate_id(&r.id).map_err(|e| e.to_string())?;
        LatLon::new(r.lat, r.lon).map_err(|e| e.to_string())?;
        let cell = CellIndex::try_from(r.cell).map_err(|e| format!("record {:?}: bad H3 cell: {e}", r.id))?;
        if cell.resolution() != h3o::Resolution::Fifteen {
            return Err(format!("record {:?}: H3 cell is not at resolution 15", r.id));
        }
        let s = &c.schema;
        if r.numbers.len() != s.number_fields().len()
            || r.categories.len() != s.category_fields().len()
            || r.pii.len() != s.pii_fields().len()
        {
            return Err(format!("record {:?} does not match its collection's schema", r.id));
        }
        if r.numbers.iter().flatten().any(|v| !v.is_finite()) {
            return Err(format!("record {:?} has a non-finite number", r.id));
        }
        if r.pii.any_set() && r.key_id.is_none() {
            return Err(format!("record {:?} has sealed PII but no key id", r.id));
        }
        Ok(())
    }

    /// Applies a committed transaction's operations, starting at `first_lsn` (`pointers[i]`
    /// is where `ops[i]` is in the log). Large batches rebuild the affected trees with one
    /// bulk load instead of one insert per record, and free their applied operations on
    /// another thread. `prepared` is a collection the batch creates, built with the run of
    /// upserts after its creation while the batch was written: it takes the place of the
    /// collection the creation makes, and the run is not applied again. Long runs of upserts
    /// into an existing collection have their rows built on every core. The state is the one
    /// [`State::apply`] of each operation in turn gives. Returns how many of the upserts
    /// replaced a live record (see [`crate::CommitReceipt::replaced`]).
    pub(crate) fn apply_all(
        &mut self,
        ops: Vec<LogOp>,
        pointers: &[OpPointer],
        first_lsn: u64,
        mut prepared: Option<PreparedCollection>,
    ) -> u64 {
        debug_assert_eq!(ops.len(), pointers.len(), "one log position per operation");
        // Counted a run of operations on one collection at a time (an import's million are
        // one run): hashing every operation's collection name was 2 % of a bulk apply.
        let runs = runs_of(&ops);
        let mut per_collection: HashMap<&str, usize> = HashMap::new();
        for run in &runs {
            if let Some((_, name)) = ops.get(run.start).and_then(run_key) {
                *per_collection.entry(name).or_default() += run.len();
            }
        }
        let bulk: Vec<(String, usize)> = per_collection
            .into_iter()
            .filter(|(name, n)| {
                // A collection created by this very transaction (an import) starts empty.
                let len = self.collections.get(*name).map_or(0, |c| c.table.len());
                *n >= BULK_APPLY_MIN.max(len / 8)
            })
            .map(|(name, n)| (name.to_owned(), n))
            .collect();
        // An empty table (an import's) gets room for every row at once: growing the slab and
        // the id map step by step copied them over and over. A table with rows does not: its
        // batch may update or delete them.
        let begin_bulk = |c: &mut CollectionState, n: usize| {
            c.table.begin_bulk();
            if c.table.is_empty() {
                c.table.reserve(n);
            }
        };
        for (name, n) in &bulk {
            if let Some(c) = self.collections.get_mut(name) {
                begin_bulk(c, *n);
            }
        }
        // The operations drive the zip: polling the LSN range past the last operation would
        // overflow when the log's LSN space ends exactly there.
        let mut replaced = 0;
        // The prepared collection's run, once the collection took its place, and how many of
        // its upserts replaced another.
        let mut prepared_run: Option<(std::ops::Range<usize>, u64)> = None;
        for run in runs {
            let (Some(run_ops), Some(run_pointers)) = (ops.get(run.clone()), pointers.get(run.clone()))
            else {
                continue;
            };
            let run_lsn = first_lsn + run.start as u64;
            if let Some((_, n)) = prepared_run.as_ref().filter(|(r, _)| *r == run) {
                replaced += n;
                for op in run_ops {
                    self.journal(op);
                }
                continue;
            }
            if let Some((true, name)) = run_ops.first().and_then(run_key) {
                if run.len() >= PARALLEL_APPLY_MIN && self.collections.contains_key(name) {
                    replaced += self.apply_upserts(name, run_ops, run_pointers, run_lsn);
                    continue;
                }
            }
            for (((i, op), pointer), lsn) in run_ops.iter().enumerate().zip(run_pointers).zip(run_lsn..) {
                replaced += u64::from(self.apply(op, *pointer, lsn));
                if let LogOp::CreateCollection { name, .. } | LogOp::EnsureCollection { name, .. } = op {
                    if prepared.as_ref().is_some_and(|p| p.create_at == run.start + i) {
                        // Just created (a batch never creates an existing collection), so
                        // empty: the prepared one is what applying its run would make of it.
                        if let (Some(p), Some(c)) = (prepared.take(), self.collections.get_mut(name)) {
                            if c.table.is_empty() && c.base.is_none() {
                                *c = p.collection;
                                prepared_run = Some((p.run, p.replaced));
                                continue;
                            }
                        }
                    }
                    if let Some((_, n)) = bulk.iter().find(|(b, _)| b == name) {
                        if let Some(c) = self.collections.get_mut(name) {
                            begin_bulk(c, *n);
                        }
                    }
                }
            }
        }
        for (name, _) in &bulk {
            if let Some(c) = self.collections.get_mut(name) {
                c.table.finish_bulk();
            }
        }
        // Freed after the loop, whole: handing each operation to a freeing thread as it was
        // applied moved every one of them (about 200 bytes each) into chunks. Without that
        // (and the zip into pairs before it), a 1M-row import took 3.84 s instead of 4.34 s
        // with the same peak memory (BENCHMARKS.md, thirty-fifth part).
        if ops.len() >= BULK_APPLY_MIN {
            crate::parallel::drop_in_background(ops);
        }
        replaced
    }

    /// Applies a long run of upserts into the existing collection `name` as [`State::apply`]
    /// of each in turn would, their rows built on every core first (see [`bulk_apply`]).
    fn apply_upserts(&mut self, name: &str, ops: &[LogOp], pointers: &[OpPointer], first_lsn: u64) -> u64 {
        let Some(c) = self.collections.get(name) else { return 0 };
        let fields = c.schema.category_fields().len();
        let checkpoint = c.base.as_ref().map(|b| &*b.checkpoint);
        let parts = PreparedUpserts::parts(ops, Some(pointers), first_lsn, fields, checkpoint);
        let Some(c) = self.collections.get_mut(name) else { return 0 };
        bulk_apply::insert_prepared(c, self.building.as_mut(), name, ops, parts)
    }

    /// Records the id an operation touches while a checkpoint is being built.
    fn journal(&mut self, op: &LogOp) {
        if let Some(journal) = &mut self.building {
            if let LogOp::Upsert(StoredRecord { collection, id, .. })
            | LogOp::Delete { collection, id }
            | LogOp::Erase { collection, id, .. } = op
            {
                journal.touch(collection, id);
            }
        }
    }

    /// Applies a checked operation; `true` for an upsert that replaced a live record.
    pub(crate) fn apply(&mut self, op: &LogOp, pointer: OpPointer, lsn: u64) -> bool {
        self.journal(op);
        match op {
            LogOp::EnsureCollection { name, .. } if self.collections.contains_key(name) => {}
            LogOp::CreateCollection { name, schema } | LogOp::EnsureCollection { name, schema } => {
                let mut c = CollectionState::empty(schema);
                if self.replaying {
                    c.table.begin_bulk();
                }
                self.collections.insert(name.clone(), c);
            }
            LogOp::Upsert(r) => {
                let Some(c) = self.collections.get_mut(&r.collection) else { return false };
                let Some(row) = bulk_apply::row_of(r, pointer, lsn, |i, v| c.dict.intern(i, v)) else {
                    return false;
                };
                let in_base = c.hide_base(&r.id);
                let in_table = c.table.upsert(row);
                return in_base || in_table.is_some();
            }
            LogOp::Delete { collection, id } => {
                if let Some(c) = self.collections.get_mut(collection) {
                    c.table.remove(id);
                    c.hide_base(id);
                }
            }
            LogOp::Erase { collection, id, key_id } => {
                if let Some(c) = self.collections.get_mut(collection) {
                    c.table.remove(id);
                    c.hide_base(id);
                }
                if let Some(key_id) = key_id {
                    self.erased_keys.push((collection.clone(), id.clone(), *key_id));
                }
                if self.replaying {
                    self.replayed_erasures.push((collection.clone(), id.clone()));
                }
            }
        }
        false
    }
}
