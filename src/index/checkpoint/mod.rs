//! Checkpoint files: one collection's live rows as of an LSN, in one immutable file that
//! queries read straight from a memory map — a packed R-tree, the H3 cell column, ids with a
//! sorted lookup order, each row's log position, and the attribute columns, all in the same
//! row order: [`packing_order`], which packs the tree's nodes compactly (with a Hilbert-curve
//! order nearest-10 on clustered data took a third more time, and ordering rows by H3 cell
//! doubled nearest-k latency, because H3's index order jumps between distant cells at coarse
//! resolutions) — plus the H3 cell index, the row numbers sorted by cell, which aggregations
//! by cell walk as runs of one ancestor. See [`format`](mod@format) for every byte.
#![deny(clippy::indexing_slicing)]

pub mod format;

use std::cell::OnceCell;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::OnceLock;

use parking_lot::Mutex;

use bincode::{Decode, Encode};

use super::packed::{packing_order, PackedRTree, PackedRTreeRef};
use super::OpPointer;
use crate::codec;
use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::io::MappedBytes;
use crate::model::Schema;
use format::{
    Header, CATEGORIES, CELLS, CELL_ORDER, ID_BYTES, ID_OFFSETS, ID_ORDER, META, NUMBERS, POINTERS,
    POINTER_LEN, TREE,
};

/// What a checkpoint records besides its rows: the collection, its schema and its category
/// dictionaries (values by code, per category field).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct CheckpointMeta {
    /// Collection name.
    pub collection: String,
    /// The collection's schema.
    pub schema: Schema,
    /// Category values by code, one list per category field.
    pub dictionary: Vec<Vec<String>>,
}

/// One row handed to [`build`].
#[derive(Debug, Clone)]
pub struct CheckpointRow<'a> {
    /// Record id.
    pub id: &'a str,
    /// Location.
    pub location: LatLon,
    /// H3 cell at resolution 15.
    pub cell: u64,
    /// Where the record's operation is in the log.
    pub pointer: OpPointer,
    /// Number attributes in schema order (NaN where unset).
    pub numbers: &'a [f64],
    /// Category codes in schema order.
    pub categories: &'a [u32],
}

fn too_big(what: &str) -> Error {
    Error::invalid_argument("checkpoint", format!("{what} exceeds the checkpoint format's limits"))
}

/// Rows handed to [`build_parts`]: anything that can produce row `i` of `len()` on demand
/// (so a caller's columns need not be copied into a `Vec` of rows first).
pub trait RowSource: Sync {
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i` (`i < len()`).
    fn row(&self, i: usize) -> CheckpointRow<'_>;
    /// Whether the rows are already in [`packing_order`] (then it is not computed again).
    fn in_packing_order(&self) -> bool {
        false
    }
    /// The rows sorted by (cell, row), when the source knows it without sorting (a
    /// checkpoint built over an earlier one merges that one's cell order with its new rows).
    /// Used only when the rows are [in packing order](Self::in_packing_order), and only once
    /// it is checked to list every row once in that order; otherwise the cells are sorted.
    /// (There is no such hint for the id order: checking one costs a random access per row,
    /// more than sorting the ids does.)
    fn sorted_by_cell(&self) -> Option<&[u32]> {
        None
    }
    /// Whether every row has `numbers` number and `categories` category values.
    /// The build reads each column in a pass of its own: a source keeping columns can answer
    /// the per-column methods below without assembling whole rows.
    fn fits_schema(&self, numbers: usize, categories: usize) -> bool {
        (0..self.len())
            .map(|i| self.row(i))
            .all(|r| r.numbers.len() == numbers && r.categories.len() == categories)
    }
    /// `row(i).id`.
    fn id_at(&self, i: usize) -> &str {
        self.row(i).id
    }
    /// `row(i).location`.
    fn location_at(&self, i: usize) -> LatLon {
        self.row(i).location
    }
    /// `row(i).cell`.
    fn cell_at(&self, i: usize) -> u64 {
        self.row(i).cell
    }
    /// `row(i).pointer`.
    fn pointer_at(&self, i: usize) -> OpPointer {
        self.row(i).pointer
    }
    /// `row(i).numbers[field]` (NaN when missing).
    fn number_at(&self, i: usize, field: usize) -> f64 {
        self.row(i).numbers.get(field).copied().unwrap_or(f64::NAN)
    }
    /// `row(i).categories[field]` (`u32::MAX` when missing).
    fn category_at(&self, i: usize, field: usize) -> u32 {
        self.row(i).categories.get(field).copied().unwrap_or(u32::MAX)
    }
}

impl RowSource for Vec<CheckpointRow<'_>> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn row(&self, i: usize) -> CheckpointRow<'_> {
        self.get(i).cloned().unwrap_or(CheckpointRow {
            id: "",
            location: LatLon::ORIGIN,
            cell: 0,
            pointer: OpPointer { segment: 0, offset: 0, index: 0 },
            numbers: &[],
            categories: &[],
        })
    }
}

/// A serialized checkpoint as the pieces of its file, in order (header, then each section
/// after its zero padding), so it can be written without one contiguous copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointParts {
    header: Vec<u8>,
    sections: Vec<(usize, Vec<u8>)>,
}

const ZEROS: [u8; 8] = [0; 8];

impl CheckpointParts {
    /// The file's bytes as consecutive slices.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.header.as_slice()).chain(
            self.sections.iter().flat_map(|(pad, s)| [ZEROS.get(..*pad).unwrap_or_default(), s.as_slice()]),
        )
    }

    /// Total length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slices().map(<[u8]>::len).sum()
    }

    /// Whether the file is empty (never: the header is 256 bytes).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole file in one buffer.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.slices().for_each(|s| out.extend_from_slice(s));
        out
    }
}

/// Serializes a checkpoint of `rows` (any order: they are put in [`packing_order`] here) into
/// one buffer. See [`build_parts`].
///
/// # Errors
/// As [`build_parts`].
pub fn build(lsn: u64, meta: &CheckpointMeta, rows: Vec<CheckpointRow<'_>>) -> Result<Vec<u8>> {
    Ok(build_parts(lsn, meta, &rows)?.to_vec())
}

/// Serializes a checkpoint of `rows` (any order: they are put in [`packing_order`] here). The id
/// lookup order is sorted on one thread and the cell column and its order built on another,
/// while this one builds the tree and the other columns.
///
/// # Errors
/// [`Error::InvalidArgument`] when the rows do not fit the format (more than `u32::MAX` rows,
/// 4 GiB of ids, a log position beyond the pointer's fields) or do not match the schema.
pub fn build_parts(lsn: u64, meta: &CheckpointMeta, rows: &dyn RowSource) -> Result<CheckpointParts> {
    let n = rows.len();
    let (f, c) = (meta.schema.number_fields().len(), meta.schema.category_fields().len());
    if u32::try_from(n).is_err() {
        return Err(too_big("the row count"));
    }
    if !rows.fits_schema(f, c) {
        return Err(Error::invalid_argument("checkpoint", "a row does not match the schema"));
    }
    let meta_bytes = codec::encode(meta).map_err(|e| Error::invalid_argument("checkpoint", e))?;
    let in_order = rows.in_packing_order();
    let order: Vec<u32> = if in_order {
        (0..n as u32).collect()
    } else {
        packing_order(&(0..n).map(|i| rows.location_at(i)).collect::<Vec<_>>())
    };
    // The source's row at file row `k`.
    let at = |k: usize| order.get(k).copied().unwrap_or(0) as usize;
    // Three parts run side by side: the id order, the cell column and its order, and the
    // tree with the other columns (on this thread).
    std::thread::scope(|scope| {
        let by_id = scope.spawn(|| id_order(rows));
        let cell_parts = scope.spawn(move || {
            cell_sections((0..n).map(|k| rows.cell_at(at(k))), rows.sorted_by_cell().filter(|_| in_order))
        });
        let points: Vec<LatLon> = (0..n).map(|k| rows.location_at(at(k))).collect();
        let tree = PackedRTree::try_build(&points)?.into_bytes();
        drop(points);
        let mut offsets = Vec::with_capacity(4 * (n + 1));
        let mut ids = Vec::new();
        let mut pointers = Vec::with_capacity(POINTER_LEN * n);
        for k in 0..n {
            offsets.extend_from_slice(
                &u32::try_from(ids.len()).map_err(|_| too_big("the id bytes"))?.to_le_bytes(),
            );
            ids.extend_from_slice(rows.id_at(at(k)).as_bytes());
            let p = rows.pointer_at(at(k));
            let segment = u32::try_from(p.segment).map_err(|_| too_big("a segment number"))?;
            let offset = u32::try_from(p.offset).map_err(|_| too_big("a segment offset"))?;
            let index = u16::try_from(p.index).map_err(|_| too_big("an operation index"))?;
            pointers.extend_from_slice(&segment.to_le_bytes());
            pointers.extend_from_slice(&offset.to_le_bytes());
            pointers.extend_from_slice(&index.to_le_bytes());
        }
        offsets
            .extend_from_slice(&u32::try_from(ids.len()).map_err(|_| too_big("the id bytes"))?.to_le_bytes());
        let mut numbers = Vec::with_capacity(8 * f * n);
        for i in 0..f {
            numbers.extend((0..n).flat_map(|k| rows.number_at(at(k), i).to_le_bytes()));
        }
        let mut categories = Vec::with_capacity(4 * c * n);
        for i in 0..c {
            categories.extend((0..n).flat_map(|k| rows.category_at(at(k), i).to_le_bytes()));
        }
        // The id order was computed over the caller's row numbers: map them to file rows.
        let mut file_row = vec![0u32; n];
        for (k, &i) in order.iter().enumerate() {
            if let Some(slot) = file_row.get_mut(i as usize) {
                *slot = k as u32;
            }
        }
        // A part that panicked panics the build (as it would have on this thread).
        let by_id = by_id.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let (cells, cell_order, refused) = cell_parts.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        #[cfg(test)]
        REFUSED_CELL_ORDERS.with(|n| n.set(n.get() + usize::from(refused)));
        #[cfg(not(test))]
        let _ = refused;
        let order: Vec<u8> = by_id
            .iter()
            .flat_map(|&i| file_row.get(i as usize).copied().unwrap_or(0).to_le_bytes())
            .collect();
        let sections =
            [meta_bytes, tree, cells, offsets, ids, order, pointers, numbers, categories, cell_order];
        let (header, pads) = format::header(lsn, n, f, c, &sections);
        Ok(CheckpointParts { header, sections: pads.into_iter().zip(sections).collect() })
    })
}

/// The cell column (8 bytes per file row) and the cell order (file rows sorted by cell,
/// ties by row; 4 bytes each), from the cells of the file's rows in order; `known` is that
/// order if the caller has it (used once checked; the last value says it was refused, as
/// the database's own never is unless its last checkpoint was damaged).
fn cell_sections(cells: impl Iterator<Item = u64>, known: Option<&[u32]>) -> (Vec<u8>, Vec<u8>, bool) {
    let cell_of: Vec<u64> = cells.collect();
    let refused = known.is_some_and(|o| !is_cell_order(&cell_of, o));
    let sorted: Vec<u32> = match known.filter(|_| !refused) {
        Some(known) => known.to_vec(),
        None => {
            let mut by_cell: Vec<(u64, u32)> = cell_of.iter().zip(0u32..).map(|(&c, k)| (c, k)).collect();
            crate::radix::sort_by_key(&mut by_cell);
            by_cell.into_iter().map(|(_, k)| k).collect()
        }
    };
    let cell_order: Vec<u8> = sorted.iter().flat_map(|k| k.to_le_bytes()).collect();
    drop(sorted);
    let cells: Vec<u8> = cell_of.iter().flat_map(|c| c.to_le_bytes()).collect();
    (cells, cell_order, refused)
}

#[cfg(test)]
thread_local! {
    /// Cell orders refused by builds this thread ran (tests check the database's own merged
    /// orders never are).
    pub(crate) static REFUSED_CELL_ORDERS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether `order` lists each of `0..len` exactly once.
fn is_permutation(order: &[u32], len: usize) -> bool {
    let mut seen = vec![false; len];
    order.len() == len
        && order.iter().all(|&r| seen.get_mut(r as usize).is_some_and(|s| !std::mem::replace(s, true)))
}

/// Whether `order` lists every row once by increasing (cell, row).
fn is_cell_order(cells: &[u64], order: &[u32]) -> bool {
    let key = |r: u32| (cells.get(r as usize).copied().unwrap_or(u64::MAX), r);
    is_permutation(order, cells.len()) && order.windows(2).all(|w| matches!(w, &[a, b] if key(a) < key(b)))
}

/// Row numbers (the source's) sorted by id: radix-sorted by the ids' first 16 bytes (two
/// big-endian, zero-padded 8-byte prefixes), then each run of ids sharing those 16 bytes
/// sorted by the whole id. A comparison sort of a million ids was the longest part of a
/// checkpoint's build.
///
/// Only the bits in which the prefixes differ decide their order. When there are at most
/// 64 of them (ids of one pattern: `C-0000042` varies in the low four bits of seven bytes,
/// 28 bits), they are packed, in order, into one 64-bit key and sorted once: 3 passes of
/// 16-byte items instead of 5 of 24-byte ones. Otherwise the second prefix is sorted, then
/// stably the first.
fn id_order(rows: &dyn RowSource) -> Vec<u32> {
    let ids: Vec<&str> = (0..rows.len()).map(|i| rows.id_at(i)).collect();
    let prefix = |id: &str, from: usize| {
        let bytes = id.as_bytes();
        if let Some(&eight) = bytes.get(from..).and_then(|b| b.first_chunk::<8>()) {
            return u64::from_be_bytes(eight);
        }
        let mut p = [0u8; 8];
        let rest = bytes.get(from..).unwrap_or_default();
        if let Some(head) = p.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        u64::from_be_bytes(p)
    };
    let prefixes = |id: &str| (prefix(id, 0), prefix(id, 8));
    let (first, second) = ids.first().map(|id| prefixes(id)).unwrap_or_default();
    let (in_first, in_second) = ids.iter().fold((0, 0), |(a, b), id| {
        let (f, s) = prefixes(id);
        (a | (f ^ first), b | (s ^ second))
    });
    if in_first.count_ones() + in_second.count_ones() <= 64 {
        let packer = BitPacker::new(in_first, in_second);
        let mut keyed: Vec<(u64, u32)> = ids
            .iter()
            .zip(0u32..)
            .map(|(id, i)| {
                let (f, s) = prefixes(id);
                (packer.pack(f, s), i)
            })
            .collect();
        crate::radix::sort_by_key(&mut keyed);
        return by_whole_id_within_runs(keyed, &ids);
    }
    let mut by_second: Vec<(u64, (u64, u32))> =
        ids.iter().zip(0u32..).map(|(id, i)| (prefix(id, 8), (prefix(id, 0), i))).collect();
    crate::radix::sort_by_key(&mut by_second);
    let mut keyed: Vec<(u64, (u64, u32))> =
        by_second.into_iter().map(|(second, (first, i))| (first, (second, i))).collect();
    crate::radix::sort_by_key(&mut keyed);
    let keyed = keyed.into_iter().map(|(first, (second, i))| ((first, second), i)).collect();
    by_whole_id_within_runs(keyed, &ids)
}

/// Gathers the bits two masks select from a pair of 64-bit values into one 64-bit key, in
/// their order (the first value's from its highest bit down, then the second's): keys so
/// packed compare as the pairs do when the pairs agree on every bit left out. One table per
/// byte that has selected bits maps its 256 values to their selected bits, already shifted
/// into place.
struct BitPacker {
    /// Each byte's shift in the pair (the first value's bytes from 120 down to 64, the
    /// second's from 56 to 0) and its table.
    bytes: Vec<(u32, Box<[u64; 256]>)>,
}

impl BitPacker {
    /// A packer for the bits that `first_mask` and `second_mask` select of the pair's first
    /// and second value: at most 64 in all.
    fn new(first_mask: u64, second_mask: u64) -> BitPacker {
        let mask = u128::from(first_mask) << 64 | u128::from(second_mask);
        debug_assert!(mask.count_ones() <= 64, "at most 64 bits fit one key");
        let mut below = mask.count_ones();
        let mut bytes = Vec::new();
        for shift in (0..16).rev().map(|b| b * 8) {
            let selected = (mask >> shift) as u8;
            if selected == 0 {
                continue;
            }
            below -= selected.count_ones();
            let mut table = Box::new([0u64; 256]);
            for (value, slot) in (0u8..=255).zip(table.iter_mut()) {
                let mut bits = 0u64;
                for bit in (0..8).rev().filter(|b| selected >> b & 1 == 1) {
                    bits = bits << 1 | u64::from(value >> bit & 1);
                }
                *slot = bits.checked_shl(below).unwrap_or(0);
            }
            bytes.push((shift, table));
        }
        BitPacker { bytes }
    }

    /// The selected bits of `(first, second)`, packed.
    fn pack(&self, first: u64, second: u64) -> u64 {
        let pair = u128::from(first) << 64 | u128::from(second);
        self.bytes.iter().fold(0, |key, (shift, table)| {
            key | table.get(usize::from((pair >> shift) as u8)).copied().unwrap_or(0)
        })
    }
}

/// The row numbers of `keyed` (sorted by a key that orders the ids' 16-byte prefixes, equal
/// exactly when they are), each run of one key put in the order of the whole ids.
fn by_whole_id_within_runs<K: PartialEq>(mut keyed: Vec<(K, u32)>, ids: &[&str]) -> Vec<u32> {
    let id = |i: u32| ids.get(i as usize).copied().unwrap_or_default();
    for run in keyed.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by(|a, b| id(a.1).cmp(id(b.1)));
        }
    }
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// A validated checkpoint file, read from a mapping (or any bytes).
pub struct Checkpoint {
    bytes: MappedBytes,
    path: PathBuf,
    header: Header,
    meta: CheckpointMeta,
    tree: crate::index::packed::format::Layout,
    /// Bit `i`: section `i` has been validated (checksum and structure) and found sound.
    /// With [`Verify::OnFirstUse`] bits are set as sections are first used; every section
    /// accessor reads its section only once its bit is set.
    sound: AtomicU32,
    /// Bit `i`: section `i` failed its validation on first use (it reads as empty from then on).
    damaged: AtomicU32,
    /// The first such failure: the offset and what was wrong.
    damage: OnceLock<(u64, String)>,
    /// Serializes first-use validations, so a section is checked once.
    checking: Mutex<()>,
}

/// The top 12 bits of every H3 cell index at resolution 15: reserved 0, mode 1 (cell),
/// reserved 0, resolution 15.
const RES15_HIGH_BITS: u64 = 0x08F;

/// Every section's bit in [`Checkpoint::sound`].
const ALL_SECTIONS: u32 = (1 << format::SECTIONS) - 1;

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("lsn", &self.header.lsn)
            .field("rows", &self.header.rows)
            .field("bytes", &self.file_len())
            .finish_non_exhaustive()
    }
}

/// How much of a checkpoint is validated, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verify {
    /// Check every section's CRC-32 and structure in [`Checkpoint::open`] (one pass over the
    /// whole file before it returns).
    Checksums,
    /// Check the header, the section table, the meta section (checksum included) and the
    /// R-tree's header in `open`; every other section's CRC-32 and structure on its first use,
    /// before any of its bytes are read. Opening a large file costs microseconds and a query
    /// pays for the sections it reads, once. A section that fails reads as empty and is
    /// reported by [`Checkpoint::damage`], which the database checks before it returns an
    /// answer or writes anything built from the file.
    OnFirstUse,
    /// Check only the structure: queries stay in bounds, but flipped bits give wrong answers.
    StructureOnly,
}

impl Checkpoint {
    /// Validates `bytes` — header, section table, the meta section, the packed R-tree's
    /// header and, as `verify` says, every section's checksum and structure: the cells'
    /// resolution-15 high bits, the id offsets, and that every id-order and cell-order entry
    /// is a row — and wraps them. `path` names the file in errors. That the two orders are
    /// sorted is what `Database::verify` checks (and compaction, the id order): a file written wrong (or damaged and opened
    /// without checksums) gives wrong answers, never an out-of-bounds read.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and the offset of the first bad structure;
    /// [`Error::UnsupportedVersion`].
    pub fn open(bytes: MappedBytes, path: &Path, verify: Verify) -> Result<Checkpoint> {
        let b: &[u8] = (*bytes).as_ref();
        let header = format::validate(b, path, verify == Verify::Checksums)?;
        let section = |i: usize| b.get(header.sections.get(i).cloned().unwrap_or(0..0)).unwrap_or_default();
        let at = |i: usize| header.sections.get(i).map_or(0, |r| r.start) as u64;
        // (`Checksums` checked every section in `validate`.)
        if verify != Verify::Checksums && !format::section_crc_matches(b, &header, META) {
            // Decoded now: its checksum first, whatever `verify` says (only bytes whose
            // checksum matched are decoded; forged ones could make the decoder allocate).
            return Err(Error::corrupt(path, at(META), format!("section {META} checksum mismatch")));
        }
        let meta: CheckpointMeta =
            codec::decode(section(META)).map_err(|e| Error::corrupt(path, at(META), e))?;
        let s = &meta.schema;
        if s.number_fields().len() != header.numbers
            || s.category_fields().len() != header.categories
            || meta.dictionary.len() != header.categories
        {
            return Err(Error::corrupt(path, at(META), "schema does not match the header's field counts"));
        }
        // What a collection's schema must be when created (names, limits), and category
        // values unique within their field: a repeated value would shift every later code
        // when the dictionary is loaded.
        s.validate().map_err(|e| Error::corrupt(path, at(META), format!("schema: {e}")))?;
        for (field, values) in meta.dictionary.iter().enumerate() {
            let mut seen = std::collections::HashSet::with_capacity(values.len());
            if let Some(v) = values.iter().position(|v| !seen.insert(v.as_str())) {
                return Err(Error::corrupt(
                    path,
                    at(META),
                    format!("category field {field}: code {v} repeats an earlier value"),
                ));
            }
        }
        let tree =
            PackedRTreeRef::try_new_unchecked_crc(section(TREE)).map_err(|e| relocate(e, path, at(TREE)))?;
        if tree.len() != header.rows {
            return Err(Error::corrupt(path, at(TREE), "the R-tree's row count differs from the header's"));
        }
        let tree = tree.layout();
        if verify != Verify::OnFirstUse {
            for i in 0..format::SECTIONS {
                check_structure(b, &header, &meta.dictionary, path, i)?;
            }
        }
        let sound = if verify == Verify::OnFirstUse { 1 << META } else { ALL_SECTIONS };
        Ok(Checkpoint {
            bytes,
            path: path.to_owned(),
            header,
            meta,
            tree,
            sound: AtomicU32::new(sound),
            damaged: AtomicU32::new(0),
            damage: OnceLock::new(),
            checking: Mutex::new(()),
        })
    }

    /// Section `i`'s bytes, validated first if this is its first use; empty if they failed.
    #[inline]
    fn section(&self, i: usize) -> &[u8] {
        // Relaxed suffices: the bit only says that a check of these immutable bytes passed.
        if self.sound.load(Relaxed) & (1 << i) == 0 && !self.check_section(i) {
            return &[];
        }
        self.raw_section(i)
    }

    fn raw_section(&self, i: usize) -> &[u8] {
        let b: &[u8] = (*self.bytes).as_ref();
        b.get(self.header.sections.get(i).cloned().unwrap_or(0..0)).unwrap_or_default()
    }

    /// The first use of section `i` under [`Verify::OnFirstUse`]: its checksum and structure.
    /// Whether it is sound.
    #[cold]
    fn check_section(&self, i: usize) -> bool {
        let bit = 1u32.checked_shl(i as u32).unwrap_or(0) & ALL_SECTIONS;
        if bit == 0 || self.damaged.load(Acquire) & bit != 0 {
            // Failed before (set, with Release, after `damage`): no lock per access.
            return false;
        }
        let _one_at_a_time = self.checking.lock();
        if self.sound.load(Relaxed) & bit != 0 {
            return true;
        }
        if self.damaged.load(Relaxed) & bit != 0 {
            return false;
        }
        let b: &[u8] = (*self.bytes).as_ref();
        let at = self.header.sections.get(i).map_or(0, |r| r.start) as u64;
        let checked = if format::section_crc_matches(b, &self.header, i) {
            check_structure(b, &self.header, &self.meta.dictionary, &self.path, i)
        } else {
            Err(Error::corrupt(&self.path, at, format!("section {i} checksum mismatch")))
        };
        match checked {
            Ok(()) => {
                self.sound.fetch_or(bit, Relaxed);
                true
            }
            Err(e) => {
                let (offset, reason) = match e {
                    Error::Corrupt { offset, reason, .. } => (offset, reason),
                    other => (at, other.to_string()),
                };
                let _ = self.damage.set((offset, format!("{reason} (found on first use)")));
                self.damaged.fetch_or(bit, Release);
                false
            }
        }
    }

    /// `Err(Corrupt)` naming the file and offset if a section failed its first-use
    /// validation ([`Verify::OnFirstUse`]): answers computed since may be wrong (the section
    /// read as empty). The database calls it before returning an answer or writing anything
    /// built from the file.
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    pub fn damage(&self) -> Result<()> {
        match self.damage.get() {
            None => Ok(()),
            Some((offset, reason)) => Err(Error::corrupt(&self.path, *offset, reason.clone())),
        }
    }

    /// Records damage found in this file by a check of its own (`Database::verify` reading the
    /// file again): from then on [`Self::damage`] reports it, so the database refuses answers
    /// and checkpoints built from this mapping. Only the first damage is kept.
    pub(crate) fn note_damage(&self, offset: u64, reason: String) {
        let _ = self.damage.set((offset, reason));
        // Every section counts as failed for `check_id_sections` (writes to the collection
        // are refused); sections already checked still read (answers are refused by `damage`).
        self.damaged.fetch_or(ALL_SECTIONS, Release);
    }

    /// Validates every section not validated yet (see [`Verify::OnFirstUse`]); then
    /// [`Self::damage`].
    ///
    /// # Errors
    /// [`Error::Corrupt`].
    pub fn check_all(&self) -> Result<()> {
        for i in 0..format::SECTIONS {
            let _ = self.section(i);
        }
        self.damage()
    }

    /// Validates the sections `find` reads (id offsets, id bytes, id order) if not done yet.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (from [`Self::damage`]) if one of them is damaged; damage to other
    /// sections does not count.
    pub fn check_id_sections(&self) -> Result<()> {
        let ids = [ID_OFFSETS, ID_BYTES, ID_ORDER];
        for i in ids {
            let _ = self.section(i);
        }
        let mask = ids.iter().fold(0u32, |m, &i| m | 1 << i);
        if self.damaged.load(Acquire) & mask == 0 {
            Ok(())
        } else {
            self.damage()
        }
    }

    /// The file this checkpoint was read from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    #[must_use]
    pub fn file_len(&self) -> usize {
        (*self.bytes).as_ref().len()
    }

    /// The LSN below which every operation is included.
    #[must_use]
    pub fn lsn(&self) -> u64 {
        self.header.lsn
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.header.rows
    }

    /// Whether there are no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.header.rows == 0
    }

    /// Collection, schema and category dictionaries.
    #[must_use]
    pub fn meta(&self) -> &CheckpointMeta {
        &self.meta
    }

    /// The packed R-tree over the rows.
    #[must_use]
    pub fn tree(&self) -> PackedRTreeRef<'_> {
        // The header validated in `open`, the bytes by `section`.
        PackedRTreeRef::from_validated(self.section(TREE), self.tree)
    }

    /// The location of `row`.
    #[must_use]
    pub fn location(&self, row: u32) -> Option<LatLon> {
        self.tree().location(row)
    }

    /// The H3 cell of `row`.
    #[must_use]
    pub fn cell(&self, row: u32) -> u64 {
        u64_at(self.section(CELLS), row as usize * 8)
    }

    /// The whole cell column, 8 bytes per row.
    #[must_use]
    pub fn cell_column(&self) -> &[u8] {
        self.section(CELLS)
    }

    /// The id of `row` (empty if the bytes are not UTF-8, which a checksum-verified file
    /// never has).
    #[must_use]
    pub fn id(&self, row: u32) -> &str {
        id_in(self.section(ID_OFFSETS), self.section(ID_BYTES), row)
    }

    /// The id column with its two sections looked up (and, on first use, checked) once: for
    /// reading the ids of many rows, as a query's answers do.
    pub(crate) fn ids(&self) -> IdColumn<'_> {
        IdColumn { offsets: self.section(ID_OFFSETS), bytes: self.section(ID_BYTES) }
    }

    /// The row holding `id`, by binary search over the id order.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<u32> {
        let order = self.section(ID_ORDER);
        let (mut lo, mut hi) = (0usize, self.header.rows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let row = u32_at(order, mid * 4);
            match self.id(row).cmp(id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                // A row past the end (an id-order section found damaged reads as empty, its
                // entries as u32::MAX, whose id is "") is never an answer.
                std::cmp::Ordering::Equal => return ((row as usize) < self.header.rows).then_some(row),
            }
        }
        None
    }

    /// Checks that the id order lists the rows by strictly increasing id — what `find` (and
    /// so hiding superseded rows) relies on, and what `open` leaves to checksums and
    /// `verify` (it costs a random access per row).
    ///
    /// # Errors
    /// [`Error::Corrupt`] at the first entry out of order.
    pub fn check_id_order(&self) -> Result<()> {
        let order = self.section(ID_ORDER);
        let at = self.header.sections.get(ID_ORDER).map_or(0, |r| r.start) as u64;
        let mut prev: Option<&str> = None;
        for i in 0..self.header.rows {
            let id = self.id(u32_at(order, i * 4));
            if prev.is_some_and(|p| p >= id) {
                return Err(Error::corrupt(
                    &self.path,
                    at + 4 * i as u64,
                    "the id order is not sorted by id (or names an id twice)",
                ));
            }
            prev = Some(id);
        }
        Ok(())
    }

    /// Where `row`'s operation is in the log.
    #[must_use]
    pub fn pointer(&self, row: u32) -> OpPointer {
        pointer_in(self.section(POINTERS), row)
    }

    /// Every column, each section looked up (and, on first use, checked) once: for reading
    /// every row, as a checkpoint built over this one does.
    pub(crate) fn columns(&self) -> Columns<'_> {
        Columns {
            tree: self.tree(),
            id_offsets: self.section(ID_OFFSETS),
            id_bytes: self.section(ID_BYTES),
            cells: self.section(CELLS),
            pointers: self.section(POINTERS),
            attributes: self.attributes(),
        }
    }

    /// The number and category columns, each section looked up (and, on first use, checked)
    /// once, when a value of it is first read: for testing a filter on many rows.
    pub(crate) fn attributes(&self) -> Attributes<'_> {
        Attributes { checkpoint: self, numbers: OnceCell::new(), categories: OnceCell::new() }
    }

    /// The H3 cell index: every row number, sorted by (cell, row number), 4 little-endian
    /// bytes each. Every entry is below [`len`](Self::len) (validated before it is returned); that it is
    /// sorted and a permutation is what `geocrm verify` checks.
    #[must_use]
    pub fn cell_order(&self) -> &[u8] {
        self.section(CELL_ORDER)
    }

    /// Number field `field` of `row` (NaN where unset).
    #[must_use]
    pub fn number(&self, field: usize, row: u32) -> f64 {
        match self.slot(field, self.header.numbers, row) {
            Some(i) => f64::from_bits(u64_at(self.section(NUMBERS), i * 8)),
            None => f64::NAN,
        }
    }

    /// Index of (`field`, `row`) in a field-major column section of `fields` fields, or
    /// `None` when either is out of range (the caller's values: an unchecked product could
    /// wrap, or a row past the end read the next field).
    #[inline]
    fn slot(&self, field: usize, fields: usize, row: u32) -> Option<usize> {
        let row = row as usize;
        // field < fields and row < rows: the product fits (the section holds it in bytes).
        (field < fields && row < self.header.rows).then(|| field * self.header.rows + row)
    }

    /// The whole column of number field `field`, 8 bytes per row.
    #[must_use]
    pub fn number_column(&self, field: usize) -> &[u8] {
        if field >= self.header.numbers {
            return &[];
        }
        let n = self.header.rows * 8;
        self.section(NUMBERS).get(field * n..(field + 1) * n).unwrap_or_default()
    }

    /// Category code of field `field` of `row` (`u32::MAX` where unset).
    #[must_use]
    pub fn category(&self, field: usize, row: u32) -> u32 {
        match self.slot(field, self.header.categories, row) {
            Some(i) => u32_at(self.section(CATEGORIES), i * 4),
            None => u32::MAX,
        }
    }

    /// Byte ranges of the sections, for reports.
    #[must_use]
    pub fn section_lens(&self) -> [usize; format::SECTIONS] {
        std::array::from_fn(|i| self.header.sections.get(i).map_or(0, Range::len))
    }
}

/// The structural checks of section `i` of validated-header bytes `b` (the meta section and
/// the R-tree's header are checked in `open`; `dictionary` is the meta's, one value list per
/// category field). Each first folds over the whole section without branches (vectorized:
/// these passes are a large part of reading a million rows), and looks for the first bad
/// entry only when there is one.
fn check_structure(
    b: &[u8],
    header: &Header,
    dictionary: &[Vec<String>],
    path: &Path,
    i: usize,
) -> Result<()> {
    let range = |i: usize| header.sections.get(i).cloned().unwrap_or(0..0);
    let section = b.get(range(i)).unwrap_or_default();
    let at = range(i).start as u64;
    match i {
        CELLS => {
            let (cells, _) = section.as_chunks::<8>();
            let high = |c: &[u8; 8]| u64::from_le_bytes(*c) >> 52;
            if cells.iter().fold(0, |acc, c| acc | (high(c) ^ RES15_HIGH_BITS)) != 0 {
                let i = cells.iter().position(|c| high(c) != RES15_HIGH_BITS).unwrap_or(0);
                return Err(Error::corrupt(
                    path,
                    at + 8 * i as u64,
                    "a cell is not an H3 cell at resolution 15",
                ));
            }
        }
        ID_OFFSETS => {
            let ids_len = range(ID_BYTES).len() as u64;
            let (offsets, _) = section.as_chunks::<4>();
            let offset = |w: &[u8; 4]| u64::from(u32::from_le_bytes(*w));
            let descending = offsets.windows(2).fold(0u32, |acc, w| match w {
                [a, b] => acc | u32::from(u32::from_le_bytes(*b) < u32::from_le_bytes(*a)),
                _ => acc,
            }) != 0;
            let ends_ok =
                offsets.first().map(offset) == Some(0) && offsets.last().map(offset) == Some(ids_len);
            if descending || !ends_ok {
                // Find the first entry at fault, for the error's offset.
                let mut prev = 0;
                let i = offsets
                    .iter()
                    .enumerate()
                    .position(|(i, w)| {
                        let v = offset(w);
                        let bad = v < prev
                            || (i == 0 && v != 0)
                            || v > ids_len
                            || (i == header.rows && v != ids_len);
                        prev = v;
                        bad
                    })
                    .unwrap_or(0);
                return Err(Error::corrupt(path, at + 4 * i as u64, "id offsets out of order"));
            }
        }
        ID_ORDER | CELL_ORDER => {
            let what = if i == ID_ORDER { "id order" } else { "cell order" };
            let (rows, _) = section.as_chunks::<4>();
            // N ≤ u32::MAX (validated), so the comparison can be made in u32.
            let n = u32::try_from(header.rows).unwrap_or(u32::MAX);
            if rows.iter().fold(0u32, |acc, w| acc | u32::from(u32::from_le_bytes(*w) >= n)) != 0 {
                let i = rows.iter().position(|w| u32::from_le_bytes(*w) >= n).unwrap_or(0);
                return Err(Error::corrupt(
                    path,
                    at + 4 * i as u64,
                    format!("{what} names a row past the end"),
                ));
            }
        }
        CATEGORIES => {
            // Field-major, `rows` codes per field: each below its field's dictionary length,
            // or MISSING (u32::MAX). A code past the dictionary read as no value to a group-by
            // (a second "no value" group) and as a value to a filter.
            let (codes, _) = section.as_chunks::<4>();
            let rows = header.rows.max(1);
            for (field, column) in codes.chunks(rows).enumerate() {
                let len = dictionary.get(field).map_or(0, Vec::len);
                let limit = u32::try_from(len).unwrap_or(u32::MAX);
                let bad = |w: &[u8; 4]| {
                    let code = u32::from_le_bytes(*w);
                    code >= limit && code != u32::MAX
                };
                if column.iter().fold(0u32, |acc, w| acc | u32::from(bad(w))) != 0 {
                    let row = column.iter().position(bad).unwrap_or(0);
                    return Err(Error::corrupt(
                        path,
                        at + 4 * (field * rows + row) as u64,
                        format!("category field {field}: a code past its {len} values"),
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The columns of a [`Checkpoint`] with their sections looked up once; see
/// [`Checkpoint::columns`]. Each method reads as the checkpoint's own method of that name.
pub(crate) struct Columns<'a> {
    tree: PackedRTreeRef<'a>,
    id_offsets: &'a [u8],
    id_bytes: &'a [u8],
    cells: &'a [u8],
    pointers: &'a [u8],
    attributes: Attributes<'a>,
}

impl Columns<'_> {
    pub(crate) fn id(&self, row: u32) -> &str {
        id_in(self.id_offsets, self.id_bytes, row)
    }

    /// The location, [`LatLon::ORIGIN`] for a damaged one (as [`crate::index::RowRef`] reads it).
    pub(crate) fn location(&self, row: u32) -> LatLon {
        self.tree.location(row).unwrap_or(LatLon::ORIGIN)
    }

    pub(crate) fn cell(&self, row: u32) -> u64 {
        u64_at(self.cells, row as usize * 8)
    }

    pub(crate) fn pointer(&self, row: u32) -> OpPointer {
        pointer_in(self.pointers, row)
    }

    pub(crate) fn number(&self, field: usize, row: u32) -> f64 {
        self.attributes.number(field, row)
    }

    pub(crate) fn category(&self, field: usize, row: u32) -> u32 {
        self.attributes.category(field, row)
    }
}

/// The number and category columns of a [`Checkpoint`]; see [`Checkpoint::attributes`].
/// Each method reads as the checkpoint's own method of that name.
pub(crate) struct Attributes<'a> {
    checkpoint: &'a Checkpoint,
    numbers: OnceCell<&'a [u8]>,
    categories: OnceCell<&'a [u8]>,
}

impl Attributes<'_> {
    pub(crate) fn number(&self, field: usize, row: u32) -> f64 {
        let c = self.checkpoint;
        let numbers = || *self.numbers.get_or_init(|| c.section(NUMBERS));
        c.slot(field, c.header.numbers, row).map_or(f64::NAN, |i| f64::from_bits(u64_at(numbers(), i * 8)))
    }

    pub(crate) fn category(&self, field: usize, row: u32) -> u32 {
        let c = self.checkpoint;
        let categories = || *self.categories.get_or_init(|| c.section(CATEGORIES));
        c.slot(field, c.header.categories, row).map_or(u32::MAX, |i| u32_at(categories(), i * 4))
    }
}

/// A [`Checkpoint`]'s id column; see [`Checkpoint::ids`].
pub(crate) struct IdColumn<'a> {
    offsets: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> IdColumn<'a> {
    /// As [`Checkpoint::id`].
    pub(crate) fn id(&self, row: u32) -> &'a str {
        id_in(self.offsets, self.bytes, row)
    }

    /// Starts loading the offset of `row`'s id into the cache (a hint, see
    /// [`crate::io::prefetch`]), so a later [`Self::prefetch_id`] or [`Self::id`] finds it there.
    pub(crate) fn prefetch(&self, row: u32) {
        let at = row as usize * 4;
        crate::io::prefetch(self.offsets.get(at..at.saturating_add(4)).unwrap_or(&[]));
    }

    /// Starts loading `row`'s id bytes into the cache (a hint, see [`crate::io::prefetch`]);
    /// its offset is read, which [`Self::prefetch`] started loading.
    pub(crate) fn prefetch_id(&self, row: u32) {
        let at = row as usize * 4;
        let (a, b) = (u32_at(self.offsets, at) as usize, u32_at(self.offsets, at + 4) as usize);
        crate::io::prefetch(self.bytes.get(a..b).unwrap_or(&[]));
    }
}

/// Row `row`'s id from the id offsets and bytes sections (empty if not UTF-8).
fn id_in<'a>(offsets: &[u8], bytes: &'a [u8], row: u32) -> &'a str {
    let (a, b) = (u32_at(offsets, row as usize * 4) as usize, u32_at(offsets, row as usize * 4 + 4) as usize);
    bytes.get(a..b).and_then(crate::io::str_of).unwrap_or_default()
}

/// Row `row`'s log position from the pointers section.
fn pointer_in(p: &[u8], row: u32) -> OpPointer {
    let at = row as usize * POINTER_LEN;
    OpPointer {
        segment: u64::from(u32_at(p, at)),
        offset: u64::from(u32_at(p, at + 4)),
        index: u32::from(u16_at(p, at + 8)),
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    match b.get(at..at.wrapping_add(8)) {
        Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => u64::MAX,
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at.wrapping_add(2)) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => u16::MAX,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => u32::MAX,
    }
}

/// Re-labels an error from a section's own validation with the checkpoint file and offset.
fn relocate(e: Error, path: &Path, base: u64) -> Error {
    match e {
        Error::Corrupt { offset, reason, file } => {
            Error::corrupt(path, base + offset, format!("{}: {reason}", file.display()))
        }
        Error::UnsupportedVersion { found, supported, .. } => {
            Error::UnsupportedVersion { file: path.to_owned(), found, supported }
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_cell_order_hint_is_used_only_when_it_is_the_cell_order() {
        let cells = [5u64, 3, 5, 1];
        assert!(is_cell_order(&cells, &[3, 1, 0, 2]));
        for bad in
            [&[3, 1, 2, 0][..], &[3, 1, 0], &[3, 1, 0, 2, 2], &[3, 1, 0, 0], &[3, 1, 0, 4], &[1, 3, 0, 2]]
        {
            assert!(!is_cell_order(&cells, bad), "{bad:?}");
        }
        assert!(is_cell_order(&[], &[]));
        // The same bytes with a sound hint, with none, and with an unsound one (refused).
        let (plain_cells, plain_order, refused) = cell_sections(cells.into_iter(), None);
        assert!(!refused);
        let sound = cell_sections(cells.into_iter(), Some(&[3, 1, 0, 2]));
        assert_eq!(sound, (plain_cells.clone(), plain_order.clone(), false));
        for bad in [&[1, 3, 0, 2][..], &[3, 1, 0]] {
            let unsound = cell_sections(cells.into_iter(), Some(bad));
            assert_eq!(unsound, (plain_cells.clone(), plain_order.clone(), true), "{bad:?}");
        }
        let expected: Vec<u8> = [3u32, 1, 0, 2].iter().flat_map(|k| k.to_le_bytes()).collect();
        assert_eq!(plain_order, expected);
    }

    fn small() -> Vec<u8> {
        let ids: Vec<String> = (0..20).map(|i| format!("id-{i:02}")).collect();
        let numbers = [1.5f64];
        let rows = (0..20)
            .map(|i| {
                let location = LatLon::new(f64::from(i) * 4.0 - 40.0, f64::from(i) * 9.0 - 90.0).unwrap();
                let ll = h3o::LatLng::new(location.lat(), location.lon()).unwrap();
                CheckpointRow {
                    id: &ids[i as usize],
                    location,
                    cell: u64::from(ll.to_cell(h3o::Resolution::Fifteen)),
                    pointer: OpPointer { segment: 1, offset: 48, index: i },
                    numbers: &numbers,
                    categories: &[],
                }
            })
            .collect();
        let meta = CheckpointMeta {
            collection: "c".into(),
            schema: crate::model::Schema::new().number("n"),
            dictionary: Vec::new(),
        };
        build(5, &meta, rows).unwrap()
    }

    /// The radix id order equals a comparison sort: ids sharing 8- and 16-byte prefixes,
    /// longer and shorter than the prefixes, multi-byte UTF-8, one id a prefix of another.
    #[test]
    fn id_order_is_the_sorted_order_of_ids() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let stems = ["", "C-", "customer-0000000", "customer-00000001-", "é", "zz"];
        let ids: Vec<String> = (0..5_000)
            .map(|_| {
                let stem = stems[rng.gen_range(0..stems.len())];
                let tail: String = (0..rng.gen_range(0..12))
                    .map(|_| ['0', '1', 'a', 'é', '~'][rng.gen_range(0..5)])
                    .collect();
                format!("{stem}{tail}x")
            })
            .collect();
        // (Stems this different differ in more than 64 bits: the order sorts the two
        // prefixes one after the other.)
        assert!(!id_order_matches_sort(&ids));
    }

    /// `id_order` of `ids` (given in reverse order) against a comparison sort; and whether
    /// the ids' 16-byte prefixes differ in at most 64 bits (the order's single-sort path).
    fn id_order_matches_sort(ids: &[String]) -> bool {
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        let rows: Vec<CheckpointRow<'_>> = unique
            .iter()
            .rev()
            .map(|id| CheckpointRow {
                id,
                location: LatLon::ORIGIN,
                cell: 0,
                pointer: OpPointer { segment: 1, offset: 48, index: 0 },
                numbers: &[],
                categories: &[],
            })
            .collect();
        let got: Vec<&str> = id_order(&rows).into_iter().map(|i| rows[i as usize].id).collect();
        let want: Vec<&str> = unique.iter().map(String::as_str).collect();
        assert_eq!(got, want);
        let pair = |id: &str| {
            let mut b = [0u8; 16];
            b.iter_mut().zip(id.as_bytes()).for_each(|(b, i)| *b = *i);
            u128::from_be_bytes(b)
        };
        let first = unique.first().map_or(0, |id| pair(id));
        unique.iter().fold(0, |m, id| m | (pair(id) ^ first)).count_ones() <= 64
    }

    proptest::proptest! {
        /// Ids of one pattern (a stem, one with a two-byte character; a zero-padded number;
        /// maybe a letter or two; shorter and longer than 16 bytes, so some share their first
        /// 16), whose prefixes differ in at most 64 bits: the order packs those bits into one
        /// key, and equals a comparison sort.
        #[test]
        fn ids_of_one_pattern_are_put_in_order(
            stem in proptest::sample::select(vec!["", "C-", "cust-", "é-", "customer-000000"]),
            width in 1usize..=14,
            numbers in proptest::collection::vec((proptest::prelude::any::<u64>(), "[ab]{0,2}"), 1..300),
        ) {
            let ids: Vec<String> = numbers
                .iter()
                .map(|(n, suffix)| format!("{stem}{:0width$}{suffix}", n % 10u64.pow(width as u32)))
                .collect();
            proptest::prop_assert!(id_order_matches_sort(&ids));
        }

        /// Packing the bits two masks select (at most 64) orders any two pairs that agree
        /// elsewhere as the pairs are ordered, and tells them apart exactly when they differ.
        #[test]
        fn packed_bits_order_pairs_as_the_pairs_are_ordered(
            masks in proptest::prelude::any::<(u64, u64)>(),
            thin in proptest::prelude::any::<Option<(u64, u64)>>(),
            base in proptest::prelude::any::<(u64, u64)>(),
            a in proptest::prelude::any::<(u64, u64)>(),
            b in proptest::prelude::any::<(u64, u64)>(),
        ) {
            // Sparse masks (about 32 bits, as ids of one pattern give) or dense ones, kept to
            // their highest 64 selected bits.
            let masks = thin.map_or(masks, |t| (masks.0 & t.0, masks.1 & t.1));
            let mut mask = u128::from(masks.0) << 64 | u128::from(masks.1);
            while mask.count_ones() > 64 {
                mask &= mask - 1;
            }
            let pair = |v: (u64, u64)| {
                let v = u128::from(v.0) << 64 | u128::from(v.1);
                let base = u128::from(base.0) << 64 | u128::from(base.1);
                (base & !mask) | (v & mask)
            };
            let (a, b) = (pair(a), pair(b));
            let packer = BitPacker::new((mask >> 64) as u64, mask as u64);
            let pack = |v: u128| packer.pack((v >> 64) as u64, v as u64);
            proptest::prop_assert_eq!(pack(a).cmp(&pack(b)), a.cmp(&b));
            proptest::prop_assert_eq!(pack(a).count_ones(), (a & mask).count_ones());
        }
    }

    /// A repeated category value (codes after it would shift when loaded) and a schema no
    /// collection could have are refused at open.
    #[test]
    fn meta_with_a_repeated_category_value_or_a_bad_schema_is_refused() {
        let row = |id: &'static str, categories: &'static [u32]| CheckpointRow {
            id,
            location: LatLon::new(1.0, 2.0).unwrap(),
            cell: u64::from(h3o::LatLng::new(1.0, 2.0).unwrap().to_cell(h3o::Resolution::Fifteen)),
            pointer: OpPointer { segment: 1, offset: 48, index: 0 },
            numbers: &[],
            categories,
        };
        for (schema, dictionary, reason) in [
            (
                crate::model::Schema::new().category("t"),
                vec![vec!["a".to_owned(), "a".to_owned()]],
                "repeats",
            ),
            (crate::model::Schema::new().category("t").category("t"), vec![vec![], vec![]], "schema"),
        ] {
            let meta = CheckpointMeta { collection: "c".into(), schema, dictionary };
            let codes: &'static [u32] = if meta.dictionary.len() == 2 { &[u32::MAX, u32::MAX] } else { &[0] };
            let bytes = build(5, &meta, vec![row("a", codes)]).unwrap();
            match Checkpoint::open(Arc::new(bytes), Path::new("m.ckpt"), Verify::Checksums) {
                Err(Error::Corrupt { reason: why, .. }) => assert!(why.contains(reason), "{why}"),
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    /// Out-of-range fields and rows read as unset, never as another field's value.
    #[test]
    fn accessors_refuse_out_of_range_fields_and_rows() {
        let c = Checkpoint::open(Arc::new(small()), Path::new("s.ckpt"), Verify::Checksums).unwrap();
        let rows = c.len() as u32;
        for (field, row) in
            [(1usize << 54, 0u32), (usize::MAX, 0), (c.header.numbers, 0), (0, rows), (0, u32::MAX)]
        {
            assert!(c.number(field, row).is_nan(), "number({field}, {row})");
            assert_eq!(c.category(field, row), u32::MAX, "category({field}, {row})");
        }
        assert!(c.number_column(usize::MAX).is_empty() && c.number_column(c.header.numbers).is_empty());
    }

    /// Two id-order entries swapped: `open` without checksums takes it (the check costs a
    /// random access per row), `check_id_order` — run before a compaction — refuses it.
    #[test]
    fn a_swapped_id_order_is_found_by_check_id_order() {
        let good = small();
        let path = Path::new("s.ckpt");
        let c = Checkpoint::open(Arc::new(good.clone()), path, Verify::Checksums).unwrap();
        c.check_id_order().unwrap();
        let at = c.header.sections[ID_ORDER].start;
        let mut bad = good.clone();
        let (a, b) = (bad[at..at + 4].to_vec(), bad[at + 4..at + 8].to_vec());
        bad[at..at + 4].copy_from_slice(&b);
        bad[at + 4..at + 8].copy_from_slice(&a);
        let c = Checkpoint::open(Arc::new(bad), path, Verify::StructureOnly).unwrap();
        match c.check_id_order() {
            Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, at as u64 + 4),
            other => panic!("{other:?}"),
        }
    }

    /// The meta section is decoded at open, so its checksum is checked first whatever
    /// `verify` says: `StructureOnly` decoded it unchecked (found by a reviewing helper).
    #[test]
    fn the_meta_section_is_decoded_only_after_its_checksum_matched() {
        let good = small();
        let path = Path::new("s.ckpt");
        let c = Checkpoint::open(Arc::new(good.clone()), path, Verify::Checksums).unwrap();
        let at = c.header.sections[META].start;
        let mut bad = good.clone();
        bad[at + 2] ^= 0x40;
        for verify in [Verify::StructureOnly, Verify::OnFirstUse, Verify::Checksums] {
            match Checkpoint::open(Arc::new(bad.clone()), path, verify) {
                Err(Error::Corrupt { offset, reason, .. }) => {
                    assert!(offset == at as u64 && reason.contains("checksum"), "{verify:?}: {reason}");
                }
                other => panic!("{verify:?}: {other:?}"),
            }
        }
    }

    /// Each structural check of `open` (the ones checksums do not replace: a file written
    /// wrong, or opened without checksums) refuses its damage and names the entry's offset.
    #[test]
    fn structural_damage_is_named_with_its_offset() {
        let good = small();
        let path = Path::new("s.ckpt");
        let c = Checkpoint::open(Arc::new(good.clone()), path, Verify::Checksums).unwrap();
        let start = |s: usize| c.header.sections[s].start;
        let put32 = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let offset_at = |b: &Vec<u8>, i: usize| {
            u32::from_le_bytes(b[start(ID_OFFSETS) + 4 * i..][..4].try_into().unwrap())
        };
        let cases: Vec<(Vec<u8>, usize, &str)> = vec![
            {
                let mut b = good.clone();
                b[start(CELLS) + 8 * 3 + 7] = 0x07;
                (b, start(CELLS) + 8 * 3, "not an H3 cell")
            },
            {
                let mut b = good.clone();
                let big = offset_at(&b, 6) + 1;
                put32(&mut b, start(ID_OFFSETS) + 4 * 5, big);
                (b, start(ID_OFFSETS) + 4 * 6, "id offsets out of order")
            },
            {
                let mut b = good.clone();
                put32(&mut b, start(ID_OFFSETS), 1);
                (b, start(ID_OFFSETS), "id offsets out of order")
            },
            {
                let mut b = good.clone();
                put32(&mut b, start(ID_ORDER) + 8, 20);
                (b, start(ID_ORDER) + 8, "id order names a row past the end")
            },
            {
                let mut b = good.clone();
                put32(&mut b, start(CELL_ORDER) + 28, u32::MAX);
                (b, start(CELL_ORDER) + 28, "cell order names a row past the end")
            },
        ];
        for (bytes, offset, reason) in cases {
            let err = Checkpoint::open(Arc::new(bytes), path, Verify::StructureOnly).unwrap_err();
            match err {
                Error::Corrupt { offset: at, reason: why, .. } => {
                    assert_eq!((at, why.contains(reason)), (offset as u64, true), "{why}");
                }
                other => panic!("{other}"),
            }
        }
    }
}
