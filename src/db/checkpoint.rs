//! Checkpoints and compaction: writing every live row into immutable, memory-mapped index
//! files named by the manifest, so that opening replays only the log written since.
//!
//! One runs at a time. A checkpoint holds the writer lock only for step 1 and steps 3–5:
//! commits go on while it sorts and writes the files, and readers wait only for the moment
//! the new files are swapped in. Compaction holds the writer lock throughout. Steps of a
//! checkpoint, each crash-safe:
//!
//! 1. sync the keystore, take the snapshot — a copy of each memory table's rows, and the
//!    mapped checkpoint with a copy of its hidden-row bitset; a collection whose live rows
//!    nothing changed since (empty memory table, no hidden rows) only has its file named
//!    again, with that file's LSN —, then roll the log to a fresh
//!    segment `S` whose first LSN `L` is the checkpoint's LSN (the old segments are synced
//!    and sealed); from here until step 4 the state journals the ids that commits touch;
//! 2. without the writer lock: add the old checkpoint's visible rows, sort everything in
//!    `packing_order` and publish one file per collection not kept in `DIR/index/` (temp
//!    file, fsync, rename, directory fsync);
//! 3. under the writer lock again: publish a new `MANIFEST` naming the files, `L` and `S`
//!    the same way — the commit point: a crash before it leaves the old manifest (the new
//!    files are orphans, removed later), after it the new one (opening replays from `S`,
//!    which holds every commit made during step 2);
//! 4. map the files and swap them in: the in-memory table keeps only rows written at or
//!    after `L`, and the new files' rows of the journalled ids are hidden;
//! 5. delete files the manifest no longer names.
//!
//! Compaction first rolls the log to a segment `F`, re-writes every live record's operation
//! (and an `EnsureCollection` per collection) from the old segments into `F` and after,
//! syncs, writes the files with the rows pointing at their new copies, drops from the
//! keystore the data keys of records no longer live (deleted), publishes `log_floor = F` in
//! the manifest, and finally deletes the segments below `F` (best effort: leftovers below
//! the floor are ignored, and removed by the next writable open or compaction). The re-written operations
//! are ordinary upserts of identical records, so a crash at any step replays to the same
//! state, with or without them.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use parking_lot::MutexGuard;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::manifest::{CheckpointFile, CheckpointRecord, Manifest};
use super::ops::{append_ops, LogOp};
use super::state::{CategoryDict, CheckpointJournal, CollectionState, State};
use super::{Inner, Writer};
use crate::crypto::Keystore;
use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::index::checkpoint::{self, Checkpoint, CheckpointMeta, CheckpointRow, RowSource, Verify};
use crate::index::{BaseRows, HiddenRows, MemoryTable, OpPointer, TableView};
use crate::io::FileSystem;
use crate::log::LogStart;

/// Directory of checkpoint files inside the database directory.
pub const INDEX_DIR: &str = "index";

/// Operations re-written per transaction by compaction.
const COMPACT_CHUNK: usize = 8192;

/// What a checkpoint (or a compaction) did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// Every operation below this LSN is in the checkpoint.
    pub lsn: u64,
    /// Replay starts at this log segment.
    pub segment: u64,
    /// Live rows written, all collections whose files were written (not those of `kept`).
    pub rows: u64,
    /// Bytes of checkpoint files written.
    pub bytes: u64,
    /// File names in `DIR/index/`, one per collection.
    pub files: Vec<String>,
    /// Of `files`, those of collections nothing changed since the last checkpoint: kept as
    /// they were, not written again.
    pub kept: Vec<String>,
    /// Whether nothing had changed since the last checkpoint (nothing was written).
    pub unchanged: bool,
    /// Compaction only: log segments deleted.
    pub segments_removed: u64,
    /// Compaction only: why removing the old segments below the new log floor failed (the
    /// compaction is published all the same; the next writable open or compaction deletes
    /// what is left, which until then holds the superseded and deleted records it held).
    pub segments_not_removed: Option<String>,
    /// Wall time, milliseconds.
    pub elapsed_ms: f64,
}

/// One collection's live rows, gathered for a checkpoint (flat, to keep allocations few).
struct Gathered {
    meta: CheckpointMeta,
    ids: String,
    id_ends: Vec<usize>,
    locations: Vec<LatLon>,
    cells: Vec<u64>,
    pointers: Vec<OpPointer>,
    numbers: Vec<f64>,
    categories: Vec<u32>,
    /// The rows sorted by (cell, row), when merged from the last checkpoint's cell order
    /// instead of sorted.
    by_cell: Option<Vec<u32>>,
}

impl RowSource for Gathered {
    fn len(&self) -> usize {
        self.id_ends.len()
    }

    fn row(&self, i: usize) -> CheckpointRow<'_> {
        let (f, k) = (self.meta.schema.number_fields().len(), self.meta.schema.category_fields().len());
        CheckpointRow {
            id: self.id(i),
            location: self.locations.get(i).copied().unwrap_or(LatLon::ORIGIN),
            cell: self.cells.get(i).copied().unwrap_or(0),
            pointer: self.pointers.get(i).copied().unwrap_or(OpPointer { segment: 0, offset: 0, index: 0 }),
            numbers: self.numbers.get(i * f..(i + 1) * f).unwrap_or_default(),
            categories: self.categories.get(i * k..(i + 1) * k).unwrap_or_default(),
        }
    }

    fn in_packing_order(&self) -> bool {
        true
    }

    fn sorted_by_cell(&self) -> Option<&[u32]> {
        self.by_cell.as_deref()
    }

    fn fits_schema(&self, numbers: usize, categories: usize) -> bool {
        let n = self.len();
        [self.locations.len(), self.cells.len(), self.pointers.len()].iter().all(|&len| len == n)
            && numbers.checked_mul(n) == Some(self.numbers.len())
            && categories.checked_mul(n) == Some(self.categories.len())
    }

    fn id_at(&self, i: usize) -> &str {
        self.id(i)
    }

    fn location_at(&self, i: usize) -> LatLon {
        self.locations.get(i).copied().unwrap_or(LatLon::ORIGIN)
    }

    fn cell_at(&self, i: usize) -> u64 {
        self.cells.get(i).copied().unwrap_or(0)
    }

    fn pointer_at(&self, i: usize) -> OpPointer {
        self.pointers.get(i).copied().unwrap_or(OpPointer { segment: 0, offset: 0, index: 0 })
    }

    fn number_at(&self, i: usize, field: usize) -> f64 {
        row_major(&self.numbers, self.meta.schema.number_fields().len(), i, field).unwrap_or(f64::NAN)
    }

    fn category_at(&self, i: usize, field: usize) -> u32 {
        row_major(&self.categories, self.meta.schema.category_fields().len(), i, field).unwrap_or(u32::MAX)
    }
}

/// Value `field` of row `i` in `values` holding `width` values per row.
fn row_major<T: Copy>(values: &[T], width: usize, i: usize, field: usize) -> Option<T> {
    let at = i.checked_mul(width)?.checked_add(field)?;
    values.get(at).copied().filter(|_| field < width)
}

/// Why the last automatic checkpoint failed, and when the next one may be tried.
#[derive(Debug)]
pub(crate) struct AutoCheckpointError {
    pub(crate) reason: String,
    /// Not before this LSN …
    pub(crate) retry_lsn: u64,
    /// … or this many log bytes since the checkpoint.
    pub(crate) retry_tail_bytes: u64,
}

/// Ends the checkpoint journal when dropped (on success `install` has already ended it).
struct EndJournal<'a>(&'a parking_lot::RwLock<State>);

impl Drop for EndJournal<'_> {
    fn drop(&mut self) {
        self.0.write().building = None;
    }
}

/// What a checkpoint takes of one collection under the writer lock: the memory table's rows
/// copied (bounded by the automatic checkpoints), the mapped checkpoint shared.
struct CollectionSnapshot {
    /// The memory table's rows, flat.
    gathered: Gathered,
    /// The last checkpoint and a copy of its hidden rows; its visible rows are added
    /// outside the lock.
    base: Option<BaseRows>,
}

/// The last checkpoint's file of a collection whose live rows no operation has changed
/// since (nothing in its memory table, none of the file's rows hidden): the new checkpoint
/// names that file again instead of writing its rows anew. Operations that changed nothing
/// in the end (a record added and deleted again) are not replayed from the new checkpoint
/// on, and need not be. The category dictionary may have grown meanwhile (by such a record):
/// no row of the file uses the new codes, and the file's dictionary is a prefix of it.
fn unchanged_file(
    record: Option<&CheckpointRecord>,
    c: &CollectionState,
    name: &str,
) -> Option<CheckpointFile> {
    let base = c.base.as_ref()?;
    let file = record?.files.iter().find(|f| f.collection == name)?;
    let same_file = base.checkpoint.path().file_name().is_some_and(|n| *n == *file.name)
        && base.checkpoint.lsn() == file.lsn;
    // (Schemas never change: checked all the same, as the file's rows are laid out by it.)
    let unchanged =
        c.table.is_empty() && base.hidden.is_empty() && *c.schema == base.checkpoint.meta().schema;
    (same_file && unchanged).then(|| file.clone())
}

impl CollectionSnapshot {
    fn of(name: &str, c: &CollectionState) -> Self {
        let meta = CheckpointMeta {
            collection: name.to_owned(),
            schema: (*c.schema).clone(),
            dictionary: c.dict.to_values(),
        };
        let base_rows = c.base.as_ref().map_or(0, |b| b.checkpoint.len() - b.hidden.len());
        let mut gathered = Gathered::with_capacity(meta, c.table.len() + base_rows);
        gathered.extend(TableView { tail: &c.table, base: None });
        CollectionSnapshot { gathered, base: c.base.clone() }
    }

    /// Every live row: the copied memory rows and the checkpoint's visible rows.
    fn into_gathered(self) -> Gathered {
        let mut gathered = self.gathered;
        if let Some(base) = &self.base {
            let tail = gathered.len();
            gathered.extend_base(base);
            gathered.by_cell = Some(gathered.merged_cell_order(tail, base));
        }
        gathered
    }
}

impl Gathered {
    fn with_capacity(meta: CheckpointMeta, n: usize) -> Gathered {
        let (f, k) = (meta.schema.number_fields().len(), meta.schema.category_fields().len());
        Gathered {
            meta,
            ids: String::with_capacity(n * 12),
            id_ends: Vec::with_capacity(n),
            locations: Vec::with_capacity(n),
            cells: Vec::with_capacity(n),
            pointers: Vec::with_capacity(n),
            numbers: Vec::with_capacity(n * f),
            categories: Vec::with_capacity(n * k),
            by_cell: None,
        }
    }

    fn extend(&mut self, view: TableView<'_>) {
        let (f, k) = (self.meta.schema.number_fields().len(), self.meta.schema.category_fields().len());
        for r in view.rows() {
            self.ids.push_str(r.id());
            self.id_ends.push(self.ids.len());
            self.locations.push(r.location());
            self.cells.push(r.cell());
            self.pointers.push(r.pointer());
            self.numbers.extend((0..f).map(|i| r.number(i)));
            self.categories.extend((0..k).map(|i| r.category(i)));
        }
    }

    /// Appends the checkpoint's visible rows, read column by column from the mapping (each
    /// section looked up once, not once per value).
    fn extend_base(&mut self, base: &BaseRows) {
        let (f, k) = (self.meta.schema.number_fields().len(), self.meta.schema.category_fields().len());
        let c = base.checkpoint.columns();
        for r in (0..base.checkpoint.len() as u32).filter(|&r| base.visible(r)) {
            self.ids.push_str(c.id(r));
            self.id_ends.push(self.ids.len());
            self.locations.push(c.location(r));
            self.cells.push(c.cell(r));
            self.pointers.push(c.pointer(r));
            self.numbers.extend((0..f).map(|i| c.number(i, r)));
            self.categories.extend((0..k).map(|i| c.category(i, r)));
        }
    }

    /// The rows sorted by (cell, row), the first `tail` of them the memory table's and the
    /// rest `base`'s visible rows: `base`'s cell order (already sorted) merged with the
    /// memory rows' (sorted here), instead of sorting every row again. `build_parts` checks
    /// it before it uses it.
    fn merged_cell_order(&self, tail: usize, base: &BaseRows) -> Vec<u32> {
        let c = &base.checkpoint;
        // The gathered row of each checkpoint row; u32::MAX for a hidden one.
        let mut next = u32::try_from(tail).unwrap_or(u32::MAX);
        let gathered_row: Vec<u32> = (0..c.len() as u32)
            .map(|r| {
                if base.visible(r) {
                    next = next.saturating_add(1);
                    next - 1
                } else {
                    u32::MAX
                }
            })
            .collect();
        let from_base: Vec<u32> = c
            .cell_order()
            .as_chunks::<4>()
            .0
            .iter()
            .filter_map(|b| gathered_row.get(u32::from_le_bytes(*b) as usize).copied())
            .filter(|&g| g != u32::MAX)
            .collect();
        let mut from_tail: Vec<(u64, u32)> = self.cells.iter().take(tail).copied().zip(0u32..).collect();
        crate::radix::sort_by_key(&mut from_tail);
        let from_tail: Vec<u32> = from_tail.into_iter().map(|(_, i)| i).collect();
        let key = |r: u32| (self.cells.get(r as usize).copied().unwrap_or(u64::MAX), r);
        merge(&from_tail, &from_base, |a, b| key(a) < key(b))
    }

    /// Leaves out of the dictionary the category values no gathered row uses (a deleted or
    /// erased record's, or one an update replaced), renumbering the codes densely in their
    /// old order: a dictionary only grows in memory, and written whole it kept an erased
    /// record's values in every later checkpoint file. Opening, and publishing the file,
    /// take the file's dictionary as the collection's.
    fn without_unused_categories(mut self) -> Gathered {
        let k = self.meta.schema.category_fields().len();
        for (field, values) in self.meta.dictionary.iter_mut().enumerate().take(k) {
            let mut used = vec![false; values.len()];
            for code in self.categories.iter().skip(field).step_by(k) {
                if let Some(u) = used.get_mut(*code as usize) {
                    *u = true;
                }
            }
            if used.iter().all(|&u| u) {
                continue;
            }
            let mut renumbered = vec![u32::MAX; values.len()];
            let mut next = 0u32;
            for (new, &u) in renumbered.iter_mut().zip(&used) {
                if u {
                    *new = next;
                    next += 1;
                }
            }
            for code in self.categories.iter_mut().skip(field).step_by(k) {
                if let Some(&new) = renumbered.get(*code as usize) {
                    *code = new;
                }
            }
            let mut kept = used.iter();
            values.retain(|_| kept.next().copied().unwrap_or(false));
        }
        self
    }

    /// Permutes every column into the checkpoint's row order, one tight gather per column
    /// (much cheaper than building the file by random access to whole rows).
    fn into_packing_order(self) -> Gathered {
        let order = crate::index::packed::packing_order(&self.locations);
        fn gather<T: Copy>(v: &[T], order: &[u32], stride: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(v.len());
            for &i in order {
                let i = i as usize * stride;
                out.extend_from_slice(v.get(i..i + stride).unwrap_or_default());
            }
            out
        }
        let (f, k) = (self.meta.schema.number_fields().len(), self.meta.schema.category_fields().len());
        let this = &self;
        // The ids and locations on a thread of their own, the other columns on this one.
        let ((ids, id_ends, locations), (cells, by_cell, pointers, numbers, categories)) =
            std::thread::scope(|scope| {
                let first = scope.spawn(|| {
                    let mut ids = String::with_capacity(this.ids.len());
                    let mut id_ends = Vec::with_capacity(this.id_ends.len());
                    for &i in &order {
                        ids.push_str(this.id(i as usize));
                        id_ends.push(ids.len());
                    }
                    (ids, id_ends, gather(&this.locations, &order, 1))
                });
                let cells = gather(&this.cells, &order, 1);
                let by_cell = this.by_cell.as_ref().map(|by_cell| {
                    let mut file_row = vec![u32::MAX; order.len()];
                    for (k, &g) in order.iter().enumerate() {
                        if let Some(slot) = file_row.get_mut(g as usize) {
                            *slot = k as u32;
                        }
                    }
                    let mut by_cell: Vec<u32> = by_cell
                        .iter()
                        .map(|&g| file_row.get(g as usize).copied().unwrap_or(u32::MAX))
                        .collect();
                    // The rows of one cell were in gathered order: put them in file order.
                    let cell = |k: u32| cells.get(k as usize).copied();
                    for run in by_cell.chunk_by_mut(|&a, &b| cell(a) == cell(b)) {
                        run.sort_unstable();
                    }
                    by_cell
                });
                let rest = (
                    cells,
                    by_cell,
                    gather(&this.pointers, &order, 1),
                    gather(&this.numbers, &order, f),
                    gather(&this.categories, &order, k),
                );
                (first.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), rest)
            });
        Gathered { locations, cells, by_cell, pointers, numbers, categories, ids, id_ends, meta: self.meta }
    }

    fn id(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.id_ends.get(i - 1).copied().unwrap_or(0) };
        self.ids.get(start..self.id_ends.get(i).copied().unwrap_or(start)).unwrap_or_default()
    }
}

/// Merges two sequences each sorted by `less` into one.
fn merge(a: &[u32], b: &[u32], less: impl Fn(u32, u32) -> bool) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().copied().peekable(), b.iter().copied().peekable());
    while let (Some(&x), Some(&y)) = (a.peek(), b.peek()) {
        if less(y, x) {
            out.push(y);
            b.next();
        } else {
            out.push(x);
            a.next();
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `f` on the writer's log; an I/O failure poisons the database.
fn logged<T>(w: &mut Writer, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
    let result = f(w);
    // Any error after which the log refuses appends (an I/O error, or a body that failed
    // while it was written) poisons the database.
    if let Err(e) = &result {
        if matches!(e, Error::Io { .. } | Error::Poisoned { .. }) || w.log.is_poisoned() {
            w.poisoned.get_or_insert_with(|| e.to_string());
        }
    }
    result
}

impl super::Database {
    /// Starts an automatic checkpoint unless one is running: on its own thread, or on this
    /// one (`Options::background_checkpoints(false)`, or when no thread can be started).
    pub(crate) fn start_auto_checkpoint(&self) {
        let mut slot = self.inner.auto_checkpoint.lock();
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Some(finished) = slot.take() {
            let _ = finished.join();
        }
        if self.inner.background_checkpoints {
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("geocrm-checkpoint".into())
                .spawn(move || inner.auto_checkpoint());
            if let Ok(handle) = spawned {
                *slot = Some(handle);
                return;
            }
        }
        drop(slot);
        self.inner.auto_checkpoint();
    }
}

/// What a compaction hands its publication: the new log floor and the erased key ids that
/// copied records still use.
struct Compacted {
    floor: u64,
    erased_key_ids: Vec<u64>,
}

impl Inner {
    /// Writes a checkpoint (and with `compact`, first re-writes the log keeping only live
    /// records). See the module documentation for the steps.
    pub(crate) fn checkpoint(&self, compact: bool) -> Result<CheckpointReport> {
        self.refuse_write(if compact { "compaction" } else { "checkpoint" })?;
        if compact {
            // A compaction ends by rewriting the keystore: a left-out final frame holding a
            // live record's key is refused first, not dropped for good.
            self.ensure_keystore_checked()?;
        }
        let one_at_a_time = self.checkpointing.lock();
        self.checkpoint_holding(&one_at_a_time, compact)
    }

    /// [`Inner::checkpoint`] for a caller that holds `checkpointing` already.
    pub(crate) fn checkpoint_holding(
        &self,
        _one_at_a_time: &MutexGuard<'_, ()>,
        compact: bool,
    ) -> Result<CheckpointReport> {
        let started = Instant::now();
        let mut w = self.writer.lock();
        if let Some(reason) = &w.poisoned {
            return Err(Error::Poisoned { reason: reason.clone() });
        }
        // Records in the checkpoint must have durable data keys (NoSyncBulkLoad defers it).
        logged(&mut w, |_| self.keystore.read().as_ref().map_or(Ok(()), Keystore::sync))?;
        let (current_lsn, checkpoint_lsn) = {
            let state = self.read_state();
            (state.next_lsn, state.checkpoint_lsn)
        };
        // Damage already found refuses the checkpoint, even one with nothing new to write,
        // before the log is rolled (damage not yet found is, below, when the files whose
        // rows are copied are read whole; a kept file is not read, and its damage is found
        // when used, or by `verify`).
        {
            let state = self.read_state();
            for base in state.collections.values().filter_map(|c| c.base.as_ref()) {
                self.checkpoint_damage(&base.checkpoint)?;
            }
        }
        if let (false, Some(record)) = (compact, &self.manifest.lock().checkpoint) {
            if current_lsn == checkpoint_lsn {
                return Ok(CheckpointReport {
                    lsn: record.lsn,
                    segment: record.segment,
                    rows: 0,
                    bytes: 0,
                    files: record.files.iter().map(|f| f.name.clone()).collect(),
                    kept: record.files.iter().map(|f| f.name.clone()).collect(),
                    unchanged: true,
                    segments_removed: 0,
                    segments_not_removed: None,
                    elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
                });
            }
        }
        // The snapshot: under the writer lock no commit can slip between it and `lsn`. It
        // copies only the memory tables' rows (bounded by the automatic checkpoints) and
        // shares the mapped checkpoint, whose rows are gathered after the lock is released.
        // Collections nothing changed since the last checkpoint keep their files (not when
        // compacting: the log is rewritten, and every row's pointer with it).
        let (snapshot, kept): (Vec<CollectionSnapshot>, Vec<(usize, CheckpointFile)>) = {
            let state = self.read_state();
            let manifest = self.manifest.lock();
            let record = manifest.checkpoint.as_ref().filter(|_| !compact);
            let mut kept = Vec::new();
            let mut snapshot = Vec::new();
            for (i, (name, c)) in state.collections.iter().enumerate() {
                match unchanged_file(record, c, name) {
                    Some(file) => kept.push((i, file)),
                    None => snapshot.push(CollectionSnapshot::of(name, c)),
                }
            }
            (snapshot, kept)
        };
        if compact {
            check_bases(self, &snapshot)?;
            // A checkpoint whose id order is wrong (written wrong, or damaged and opened
            // without checksums) hides superseded rows badly; copied, they would live for good.
            for s in &snapshot {
                if let Some(base) = &s.base {
                    base.checkpoint.check_id_order()?;
                }
            }
        }
        let (lsn, segment, files, rows, bytes, segments_removed, segments_not_removed) = if compact {
            // Compaction re-writes the log: commits wait for all of it.
            let mut gathered: Vec<Gathered> = snapshot
                .into_iter()
                .map(|s| s.into_gathered().into_packing_order().without_unused_categories())
                .collect();
            let first = logged(&mut w, |w| w.log.roll())?;
            let still_used = self.rewrite_live(&mut w, &mut gathered)?;
            logged(&mut w, |w| w.log.sync())?;
            let segment = logged(&mut w, |w| w.log.roll())?;
            let lsn = w.log.next_lsn();
            let tail_at_roll = self.log_tail_bytes.load(Relaxed);
            let (files, rows, bytes) = self.write_files(lsn, &gathered, &kept)?;
            drop(gathered);
            let before = w.log.segment_paths().map_or(0, |p| p.len());
            let compacted = Compacted { floor: first, erased_key_ids: still_used };
            // Before the MANIFEST names the new log: after it, a crash (or a failed removal
            // of the old segments) left the keys for good, and nothing drops them at open
            // (from the checkpoint review). Dropped first, they go with a compaction that then
            // fails too: they belong to records deleted in every state the log can reopen to.
            self.drop_keys_of_records_gone()?;
            self.install(&mut w, lsn, segment, Some(compacted), &files, tail_at_roll)?;
            // Best effort, as at open: the compaction is published and durable; leftovers
            // below the floor are ignored and removed by the next writable open or compaction
            // (a failure poisoned the database, refusing writes until reopened).
            // `segments_not_removed` says why.
            let not_removed = w.log.remove_segments_below(first).err().map(|e| e.to_string());
            let segments_removed = before.saturating_sub(w.log.segment_paths().map_or(0, |p| p.len())) as u64;
            self.segments.forget_below(first);
            (lsn, segment, files, rows, bytes, segments_removed, not_removed)
        } else {
            let segment = logged(&mut w, |w| w.log.roll())?;
            let lsn = w.log.next_lsn();
            let tail_at_roll = self.log_tail_bytes.load(Relaxed);
            // Sorting, building and writing the files runs without the writer lock: commits
            // go on, and the journal notes which ids they touch so the new files hide them.
            self.state.write().building = Some(CheckpointJournal::default());
            // Whatever happens from here (an error, even a panic), the journal ends with it.
            let _journal = EndJournal(&self.state);
            drop(w);
            let bases: Vec<Arc<Checkpoint>> =
                snapshot.iter().filter_map(|s| s.base.as_ref().map(|b| Arc::clone(&b.checkpoint))).collect();
            let built = (|| {
                check_bases(self, &snapshot)?;
                let gathered: Vec<Gathered> = snapshot
                    .into_iter()
                    .map(|s| s.into_gathered().into_packing_order().without_unused_categories())
                    .collect();
                let (files, rows, bytes) = self.write_files(lsn, &gathered, &kept)?;
                drop(gathered);
                let mut w = self.writer.lock();
                if let Some(reason) = &w.poisoned {
                    return Err(Error::Poisoned { reason: reason.clone() });
                }
                // `verify` (under the writer lock) may have found a file damaged while the
                // rows were gathered from it: then the new files hold them, and must not be
                // published (they stay as orphans, removed later).
                for base in &bases {
                    self.checkpoint_damage(base)?;
                }
                self.install(&mut w, lsn, segment, None, &files, tail_at_roll)?;
                Ok((files, rows, bytes))
            })();
            let (files, rows, bytes) = built?;
            (lsn, segment, files, rows, bytes, 0, None)
        };
        Ok(CheckpointReport {
            lsn,
            segment,
            rows,
            bytes,
            kept: files.iter().filter(|f| f.lsn != lsn).map(|f| f.name.clone()).collect(),
            files: files.into_iter().map(|f| f.name).collect(),
            unchanged: false,
            segments_removed,
            segments_not_removed,
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Builds and publishes one checkpoint file per collection of `gathered` (step 2);
    /// returns every collection's file, and the rows and bytes written.
    ///
    /// The collections' files in the order of the state's collections: those of `kept`
    /// (their position in that order, and the file) named again, one written for each of
    /// `gathered`, named `{lsn:016}-{position:04}.ckpt`.
    fn write_files(
        &self,
        lsn: u64,
        gathered: &[Gathered],
        kept: &[(usize, CheckpointFile)],
    ) -> Result<(Vec<CheckpointFile>, u64, u64)> {
        let fs = &*self.fs;
        let index_dir = self.dir.join(INDEX_DIR);
        if !fs.exists(&index_dir)? {
            fs.create_dir_all(&index_dir)?;
            fs.sync_dir(&self.dir)?;
        }
        let mut files = Vec::with_capacity(gathered.len() + kept.len());
        let (mut rows, mut bytes) = (0u64, 0u64);
        let mut kept = kept.iter().peekable();
        for g in gathered {
            while let Some((_, file)) = kept.next_if(|(i, _)| *i == files.len()) {
                files.push(file.clone());
            }
            let file = checkpoint::build_parts(lsn, &g.meta, g)?;
            let name = format!("{lsn:016}-{:04}.ckpt", files.len());
            crate::io::write_atomic_parts(fs, &index_dir, &name, &mut file.slices())?;
            rows += g.len() as u64;
            bytes += file.len() as u64;
            files.push(CheckpointFile { collection: g.meta.collection.clone(), name, lsn });
        }
        files.extend(kept.map(|(_, file)| file.clone()));
        Ok((files, rows, bytes))
    }

    /// Steps 3 to 5, under the writer lock: publishes the manifest (the commit point), maps
    /// the files and swaps them in, keeping in memory only what was written after `lsn` and
    /// hiding the new files' rows of the ids the journal names; then deletes old files.
    fn install(
        &self,
        writer: &mut Writer,
        lsn: u64,
        segment: u64,
        compacted: Option<Compacted>,
        files: &[CheckpointFile],
        tail_at_roll: u64,
    ) -> Result<()> {
        let fs = &*self.fs;
        let index_dir = self.dir.join(INDEX_DIR);
        let old = self.manifest.lock().clone();
        let record = CheckpointRecord { lsn, segment, created_unix_ms: now_ms(), files: files.to_vec() };
        // After a compaction only the erased key ids that copied records still use are kept
        // (normally none: erased records are not copied) — and they are tracked from now on,
        // whatever the version that wrote the old manifest.
        let (log_floor, erased_key_ids) = match compacted {
            Some(c) => (c.floor, Some(c.erased_key_ids)),
            None => (old.log_floor, old.erased_key_ids.clone()),
        };
        let manifest = Manifest { checkpoint: Some(record), log_floor, erased_key_ids, ..old };
        if let Err(e) = manifest.store(fs, &self.dir) {
            // It may have failed after its rename (the directory fsync): the new manifest may
            // or may not be the database's now, and going on with the old one in memory
            // could rewrite files the new one names. Only a reopen knows.
            writer
                .poisoned
                .get_or_insert_with(|| format!("the MANIFEST may or may not have been replaced: {e}"));
            return Err(e);
        }
        *self.manifest.lock() = manifest;
        // Committed. Map the new files. If that fails, the state no longer matches the
        // manifest (after a compaction its pointers even name removed segments): poison, and
        // the next open starts from the new files.
        // The kept files (of an earlier LSN) are mapped already, and their collections'
        // state stays as it is: every change to them since the snapshot came after `lsn`.
        let written: Vec<&CheckpointFile> = files.iter().filter(|f| f.lsn == lsn).collect();
        let mut bases = Vec::with_capacity(written.len());
        for CheckpointFile { collection, name, .. } in written.iter().copied() {
            let path = index_dir.join(name);
            let mapped = fs.map(&path).and_then(|m| Checkpoint::open(m, &path, Verify::StructureOnly));
            match mapped {
                Ok(checkpoint) => bases.push((collection.clone(), checkpoint)),
                Err(e) => {
                    let reason = format!("a published checkpoint could not be mapped: {e}");
                    writer.poisoned.get_or_insert(reason);
                    return Err(e);
                }
            }
        }
        // Prepared under a read lock (the writer lock keeps the state still): the rows
        // written since `lsn`, and the new files' rows they (or deletions) replace.
        let mut swaps = Vec::with_capacity(bases.len());
        {
            let state = self.read_state();
            let journal = state.building.as_ref();
            for (collection, checkpoint) in bases {
                let Some(c) = state.collections.get(&collection) else { continue };
                let mut hidden = HiddenRows::default();
                let ids = journal.and_then(|j| j.touched.get(&collection)).map_or(&[][..], Vec::as_slice);
                for id in ids {
                    if let Some(row) = checkpoint.find(id) {
                        hidden.hide(row, checkpoint.len());
                    }
                }
                // The file's dictionary is the collection's from now on (it left out the values
                // no row used); the rows written since are renumbered into it.
                let mut dict = CategoryDict::from_values(&checkpoint.meta().dictionary);
                let newer = rows_since(&c.table, lsn, &c.dict, &mut dict);
                swaps.push((collection, BaseRows { checkpoint: Arc::new(checkpoint), hidden }, newer, dict));
            }
        }
        let mut replaced = Vec::with_capacity(swaps.len());
        {
            let mut state = self.state.write();
            for (collection, base, newer, dict) in swaps {
                if let Some(c) = state.collections.get_mut(&collection) {
                    c.dict = dict;
                    replaced.push((c.base.replace(base), std::mem::replace(&mut c.table, newer)));
                }
            }
            state.building = None;
            state.checkpoint_lsn = lsn;
            // Only what was appended since the roll is left for opening to replay.
            let since = self.log_tail_bytes.load(Relaxed).saturating_sub(tail_at_roll);
            self.log_tail_bytes.store(since, Relaxed);
            // Compaction appended copies: the log is ahead of the last commit.
            state.next_lsn = state.next_lsn.max(lsn);
        }
        // Freeing a large in-memory table takes a while: not under the lock, and not on the
        // committing thread.
        crate::parallel::drop_in_background(replaced);
        remove_unnamed_files(fs, &index_dir, files);
        // A file published under the name of a damaged one it replaces (same LSN: nothing
        // was written since the damaged file's checkpoint) is not damaged.
        for CheckpointFile { name, .. } in written {
            let marker = damage_marker(&index_dir.join(name));
            if fs.exists(&marker).unwrap_or(true) {
                let _ = fs.remove_file(&marker);
            }
        }
        Ok(())
    }

    /// For a compaction, before it is published (the writer lock held): removes from the
    /// keystore the data keys of records no longer live — deleted since the previous
    /// compaction, not erased (never the blind index's root key). Kept, such a key (with the
    /// record's id, in the clear) let anyone holding the master key and an old copy of the log
    /// decrypt the deleted record's PII. Their ids are not listed as erased: no record of the
    /// compacted log uses them.
    fn drop_keys_of_records_gone(&self) -> Result<()> {
        self.ensure_keystore()?;
        // Keys of a final frame the open left out (damaged) are in no map to drop from (the
        // compaction ran `ensure_keystore_checked` first).
        self.drop_left_out_keystore_frame()?;
        let gone: Vec<(String, String)> = {
            let state = self.read_state();
            let keystore = self.keystore.read();
            let Some(keystore) = keystore.as_ref() else { return Ok(()) };
            keystore
                .records()
                // The blind index's root key (collection "") belongs to no record: without it,
                // every blind value already stored would match nothing.
                .filter(|(c, _)| *c != super::blind::BLIND_ROOT_COLLECTION)
                .filter(|(c, id)| state.collections.get(*c).is_none_or(|col| col.view().get(id).is_none()))
                .map(|(c, id)| (c.to_owned(), id.to_owned()))
                .collect()
        };
        if gone.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(&str, &str)> = gone.iter().map(|(c, id)| (c.as_str(), id.as_str())).collect();
        self.keystore.write().as_mut().map_or(Ok(0), |k| k.remove_keys(&pairs)).map(drop)
    }

    /// Compaction's first half: appends a copy of every live record's operation (read from
    /// the old segments in log order) and updates `gathered`'s pointers to the copies.
    /// Returns the erased key ids (per the MANIFEST) that copied records still use — a
    /// record whose erasure's tombstone was lost, which `repair` must still recognize.
    fn rewrite_live(&self, w: &mut Writer, gathered: &mut [Gathered]) -> Result<Vec<u64>> {
        let erased = self.manifest.lock().erased_key_ids.clone().unwrap_or_default();
        let mut still_used = Vec::new();
        for g in gathered.iter_mut() {
            let mut ops = vec![LogOp::EnsureCollection {
                name: g.meta.collection.clone(),
                schema: g.meta.schema.clone(),
            }];
            let mut owners: Vec<Option<usize>> = vec![None];
            let rows: Vec<(OpPointer, usize)> =
                g.pointers.iter().copied().enumerate().map(|(i, p)| (p, i)).collect();
            // The copies' positions, written back once every record is copied (the ids are
            // read from `g` meanwhile).
            let mut moved = g.pointers.clone();
            self.segments.for_each_op(rows, |p, i, op| {
                let corrupt =
                    |reason: String| Error::corrupt(self.segments.path(p.segment), p.offset, reason);
                match op.map_err(corrupt)? {
                    // The collection too: a row pointing at the same id in another
                    // collection would be copied as this record, and this record's own
                    // operation lost with the old segments (from the diff review).
                    LogOp::Upsert(r) if r.id == g.id(i) && r.collection == g.meta.collection => {
                        if let Some(k) = r.key_id.filter(|k| erased.binary_search(k).is_ok()) {
                            still_used.push(k);
                        }
                        ops.push(LogOp::Upsert(r));
                    }
                    _ => {
                        return Err(corrupt("the log operation an index points to is not this record".into()))
                    }
                }
                owners.push(Some(i));
                if ops.len() >= COMPACT_CHUNK {
                    self.append_copies(w, &mut ops, &mut owners, &mut moved)?;
                }
                Ok(())
            })?;
            self.append_copies(w, &mut ops, &mut owners, &mut moved)?;
            g.pointers = moved;
        }
        still_used.sort_unstable();
        still_used.dedup();
        Ok(still_used)
    }

    /// Appends `ops` as one transaction and points each owner row at its copy.
    fn append_copies(
        &self,
        w: &mut Writer,
        ops: &mut Vec<LogOp>,
        owners: &mut Vec<Option<usize>>,
        pointers: &mut [OpPointer],
    ) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let (receipt, bodies) = logged(w, |w| append_ops(&mut w.log, ops, "compaction"))?;
        self.log_tail_bytes.fetch_add(receipt.bytes(), Relaxed);
        // The copies take LSNs: keep the state's next LSN with the log's even if the
        // compaction fails before it is installed (the copies stay in the log and replay).
        let next = w.log.next_lsn();
        let mut state = self.state.write();
        state.next_lsn = state.next_lsn.max(next);
        drop(state);
        let mut owner = owners.iter();
        for (body, pos) in bodies.iter().zip(&receipt.positions) {
            for index in 0..body.count() {
                if let Some(Some(i)) = owner.next() {
                    if let Some(p) = pointers.get_mut(*i) {
                        *p = OpPointer { segment: pos.segment, offset: pos.offset, index };
                    }
                }
            }
        }
        ops.clear();
        owners.clear();
        Ok(())
    }

    /// Runs an automatic checkpoint, remembering its failure (and when to try again).
    pub(crate) fn auto_checkpoint(&self) {
        let one_at_a_time = self.checkpointing.lock();
        // Another committer's automatic checkpoint may have run while this one waited.
        if !self.checkpoint_due() {
            return;
        }
        // A panic is reported like an error (the database stays usable), not lost with the
        // background thread.
        let run = || self.checkpoint_holding(&one_at_a_time, false);
        let failed = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("the automatic checkpoint panicked".to_owned()),
        };
        let failed = failed.map(|reason| AutoCheckpointError {
            reason,
            retry_lsn: self.read_state().next_lsn.saturating_add(self.checkpoint_after_ops.unwrap_or(0)),
            retry_tail_bytes: self
                .log_tail_bytes
                .load(Relaxed)
                .saturating_add(self.checkpoint_after_log_bytes.unwrap_or(u64::MAX)),
        });
        *self.auto_checkpoint_error.lock() = failed;
    }

    /// Whether the operations (or log bytes) since the last checkpoint call for an automatic
    /// one.
    pub(crate) fn checkpoint_due(&self) -> bool {
        let Some(after) = self.checkpoint_after_ops else { return false };
        let tail = self.log_tail_bytes.load(Relaxed);
        let tail_full = self.checkpoint_after_log_bytes.is_some_and(|bytes| tail >= bytes);
        let retry = self.auto_checkpoint_error.lock().as_ref().map(|e| (e.retry_lsn, e.retry_tail_bytes));
        let state = self.read_state();
        // After a failure, wait for another interval's worth of operations or log bytes.
        if retry.is_some_and(|(lsn, bytes)| state.next_lsn < lsn && tail < bytes) {
            return false;
        }
        tail_full || state.next_lsn.saturating_sub(state.checkpoint_lsn.max(1)) >= after
    }
}

/// Every section of the snapshot's checkpoints validated (those opened with
/// [`Verify::OnFirstUse`] may not have been read whole yet): rows gathered from a damaged
/// one would be written into the new files for good.
fn check_bases(inner: &Inner, snapshot: &[CollectionSnapshot]) -> Result<()> {
    for s in snapshot {
        if let Some(base) = &s.base {
            inner.check_checkpoint_whole(&base.checkpoint)?;
        }
    }
    Ok(())
}

/// The marker beside a checkpoint file found damaged after open: `NAME.damaged`, empty.
pub(crate) fn damage_marker(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.as_os_str().to_owned();
    name.push(".damaged");
    PathBuf::from(name)
}

/// [`Checkpoint::damage`], creating the file's [`damage_marker`] when there is damage (best
/// effort).
pub(crate) fn mark_if_damaged(fs: &dyn FileSystem, checkpoint: &Checkpoint) -> Result<()> {
    let damage = checkpoint.damage();
    if damage.is_err() {
        let _ = fs.create_new(&damage_marker(checkpoint.path()));
    }
    damage
}

impl Inner {
    /// [`Checkpoint::damage`], leaving a marker beside a damaged file ([`damage_marker`]) so
    /// the next open checks that file whole — and so sets it aside and rebuilds the state
    /// from the log — instead of opening it again. Best effort: without the marker the next
    /// open finds the damage on first use again. The marker goes with the file (files in
    /// `index/` the MANIFEST does not name are removed by the next checkpoint or open).
    pub(crate) fn checkpoint_damage(&self, checkpoint: &Checkpoint) -> Result<()> {
        mark_if_damaged(&*self.fs, checkpoint)
    }

    /// The id sections of `checkpoint` checked (read whole on their first use), and when they
    /// are damaged, [`Self::checkpoint_damage`]: what a write that finds records through them
    /// needs first.
    pub(crate) fn check_checkpoint_ids(&self, checkpoint: &Checkpoint) -> Result<()> {
        match checkpoint.check_id_sections() {
            Ok(()) => Ok(()),
            Err(_) => self.checkpoint_damage(checkpoint),
        }
    }

    /// Every section of `checkpoint` checked (those not used yet, read whole now), then
    /// [`Self::checkpoint_damage`].
    pub(crate) fn check_checkpoint_whole(&self, checkpoint: &Checkpoint) -> Result<()> {
        let _ = checkpoint.check_all();
        self.checkpoint_damage(checkpoint)
    }
}

/// A memory table of the rows of `table` written at or after `lsn`.
fn rows_since(table: &MemoryTable, lsn: u64, from: &CategoryDict, to: &mut CategoryDict) -> MemoryTable {
    let mut newer = MemoryTable::new();
    newer.begin_bulk();
    for row in table.rows().filter(|r| r.lsn >= lsn) {
        let mut row = row.clone();
        for (field, code) in row.categories.iter_mut().enumerate() {
            if let Some(value) = from.value(field, *code) {
                *code = to.intern(field, value);
            }
        }
        newer.upsert(row);
    }
    newer.finish_bulk();
    newer
}

/// Deletes the checkpoint files in `DIR/index/` the manifest does not name (orphans of an
/// interrupted checkpoint, files of replaced ones), with their temporary files and damage
/// markers; any other file there is not the database's, and stays. Best effort: a leftover
/// is removed next time.
pub(crate) fn remove_unnamed_files(fs: &dyn FileSystem, index_dir: &Path, named: &[CheckpointFile]) {
    let Ok(names) = fs.list_dir(index_dir) else { return };
    let mut removed = false;
    for name in names {
        // A damage marker lives as long as its file (or until an open finds the file sound);
        // a temporary file is a crashed checkpoint's (one runs at a time, holding the lock
        // every caller holds).
        // Only names a checkpoint gives (`my-backup.ckpt` was removed too: from the
        // checkpoint review).
        let base = name.strip_suffix(".damaged").or_else(|| name.strip_suffix(".tmp")).unwrap_or(&name);
        let ours = crate::db::manifest::is_checkpoint_file_name(base);
        if ours && !named.iter().any(|f| f.name == base) {
            removed |= fs.remove_file(&index_dir.join(&name)).is_ok();
        }
    }
    if removed {
        let _ = fs.sync_dir(index_dir);
    }
}

/// What open found in the manifest's checkpoint.
pub(crate) struct Loaded {
    pub state: State,
    pub start: Option<LogStart>,
    /// Why the checkpoint was not used (replay rebuilt everything from the log instead).
    pub rejected: Option<String>,
}

/// Maps and validates the manifest's checkpoint files into a state, or — if any is damaged
/// — falls back to an empty state replayed from the log floor: segment 1, or the floor a
/// compaction set. (It must be there: a log that lost its first segments, or all of them,
/// is `Corrupt`, not a shorter or empty database.)
pub(crate) fn load(fs: &dyn FileSystem, dir: &Path, manifest: &Manifest, verify: Verify) -> Loaded {
    let from_floor = Some(LogStart { segment: manifest.log_floor.max(1), first_lsn: None });
    let Some(record) = &manifest.checkpoint else {
        return Loaded { state: State::default(), start: from_floor, rejected: None };
    };
    match load_files(fs, dir, record, verify) {
        Ok(state) => Loaded {
            state,
            start: Some(LogStart { segment: record.segment, first_lsn: Some(record.lsn) }),
            rejected: None,
        },
        Err(e) => Loaded { state: State::default(), start: from_floor, rejected: Some(e.to_string()) },
    }
}

fn load_files(fs: &dyn FileSystem, dir: &Path, record: &CheckpointRecord, verify: Verify) -> Result<State> {
    let mut state = State { checkpoint_lsn: record.lsn, next_lsn: record.lsn, ..State::default() };
    for CheckpointFile { collection, name, lsn } in &record.files {
        let path: PathBuf = dir.join(INDEX_DIR).join(name);
        // Found damaged after an earlier open: checked whole now, whatever the open's mode (an
        // open without checksums must not take its rows into the next checkpoint), and set
        // aside if it is. (A marker that cannot be looked up counts as there: the check costs
        // only time.)
        let marked = fs.exists(&damage_marker(&path)).unwrap_or(true);
        let checkpoint =
            Checkpoint::open(fs.map(&path)?, &path, if marked { Verify::Checksums } else { verify })?;
        if marked {
            // Sound after all (e.g. the damage was in memory, not in the file).
            let _ = fs.remove_file(&damage_marker(&path));
        }
        if checkpoint.meta().collection != *collection || checkpoint.lsn() != *lsn {
            return Err(Error::corrupt(&path, 0, "checkpoint file does not match the manifest"));
        }
        let meta = checkpoint.meta();
        let c = CollectionState {
            schema: Arc::new(meta.schema.clone()),
            dict: CategoryDict::from_values(&meta.dictionary),
            table: MemoryTable::new(),
            base: Some(BaseRows { checkpoint: Arc::new(checkpoint), hidden: HiddenRows::default() }),
        };
        if state.collections.insert(collection.clone(), c).is_some() {
            return Err(Error::corrupt(&path, 0, "the manifest names a collection twice"));
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use crate::db::manifest::Manifest;
    use crate::index::checkpoint::REFUSED_CELL_ORDERS;
    use crate::io::RealFs;
    use crate::{Database, LatLon, Options, Record, Schema};

    /// A MANIFEST that names a kept file at another LSN than its header's (as version 3
    /// would: every file at the record's) is not trusted: `verify` reports the file, and open
    /// rejects the checkpoint and rebuilds everything from the log.
    #[test]
    fn a_kept_file_named_at_another_lsn_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = || Options::new().audit(false).checkpoint_after_ops(None).background_checkpoints(false);
        let db = Database::open(dir.path(), options()).unwrap();
        let write = |collection: &str, id: &str| {
            let mut b = db.begin_write();
            b.upsert(collection, Record::new(id, LatLon::new(1.0, 2.0).unwrap())).unwrap();
            b.commit().unwrap();
        };
        for c in ["c", "d"] {
            db.create_collection(c, Schema::new()).unwrap();
            write(c, "r1");
        }
        db.checkpoint().unwrap();
        write("c", "r2");
        let report = db.checkpoint().unwrap();
        assert_eq!(report.kept.len(), 1);
        assert!(db.verify().unwrap().is_ok());

        let mut manifest = Manifest::load(&RealFs, dir.path()).unwrap().unwrap();
        let record = manifest.checkpoint.as_mut().unwrap();
        let lsn = record.lsn;
        let kept = record.files.iter_mut().find(|f| f.lsn != lsn).unwrap();
        kept.lsn = lsn;
        manifest.store(&RealFs, dir.path()).unwrap();
        let problems: Vec<String> =
            db.verify().unwrap().files.into_iter().filter_map(|f| f.problem).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(&format!("the MANIFEST names it at LSN {lsn}")), "{problems:?}");
        drop(db);

        let db = Database::open(dir.path(), options()).unwrap();
        let why = db.checkpoint_rejected().unwrap();
        assert!(why.contains("does not match the manifest"), "{why}");
        let snap = db.read();
        assert_eq!(snap.collection("c").unwrap().len(), 2);
        assert_eq!(snap.collection("d").unwrap().len(), 1);
    }

    /// Later checkpoints merge the last one's cell order with the memory rows' instead of
    /// sorting: over updates, deletions and new rows on shared locations (ties in a cell),
    /// the build never refuses the merged order, and `verify` finds the files sound.
    #[test]
    fn merged_cell_orders_are_always_the_cell_order() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::new().audit(false).checkpoint_after_ops(None).background_checkpoints(false);
        let db = Database::open(dir.path(), options).unwrap();
        db.create_collection("c", Schema::new()).unwrap();
        // 40 distinct places: many rows share a cell.
        let at = |i: usize| LatLon::new((i % 40) as f64 * 0.5 - 10.0, (i % 7) as f64 * 30.0 - 90.0).unwrap();
        let before = REFUSED_CELL_ORDERS.with(std::cell::Cell::get);
        for round in 0..4usize {
            let mut b = db.begin_write();
            for i in (round * 300)..(round * 300 + 700) {
                b.upsert("c", Record::new(format!("r{i}"), at(i * (round + 1)))).unwrap();
            }
            for i in (round.saturating_sub(1) * 300..round * 300).step_by(9) {
                b.delete("c", &format!("r{i}")).unwrap();
            }
            b.commit().unwrap();
            db.checkpoint().unwrap();
            db.verify().unwrap();
        }
        assert_eq!(REFUSED_CELL_ORDERS.with(std::cell::Cell::get), before, "a merged cell order was refused");
    }
}
