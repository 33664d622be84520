//! The static packed R-tree that checkpoints write to immutable files and queries read
//! straight from a memory map.
//!
//! Rows are points given in the caller's order ([`packing_order`], what checkpoints use, packs
//! them into compact nodes; [`hilbert_order`] is a cheaper, looser alternative). Leaves are
//! consecutive groups of 16 rows and every upper level groups 16 nodes, so the tree stores no
//! pointers: see [`format`](mod@format) for every byte. [`PackedRTree`] builds and owns the
//! bytes; [`PackedRTreeRef`] validates any `&[u8]` (a `Vec`, a file read into memory, a memory
//! map) and queries it without copying.
#![deny(clippy::indexing_slicing)]

mod build;
pub mod cells;
pub mod format;
mod invariants;
mod knn;
mod packing;
mod query;

/// The chord bound the tree prunes radius and nearest-k with, shared with the memory table.
pub(crate) use query::chord2_beyond;

use std::ops::Range;

use crate::error::Result;
use crate::geo::LatLon;
use format::{Layout, AABB_LEN, LONLAT_LEN, NODE_SIZE, POINT_LEN, UNIT_LEN};

pub use build::hilbert_order;
pub use cells::CellColumn;
pub use packing::packing_order;

/// A longitude/latitude box in degrees handed to [`PackedRTreeRef::visit_lonlat`]'s
/// classifier: it contains every row under a node, with `west ≤ east` (it never wraps the
/// antimeridian) and `south ≤ north`. It may reach slightly past ±180/±90 because its
/// stored f32 corners are rounded outward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonLatBox {
    /// Smallest longitude.
    pub west: f64,
    /// Smallest latitude.
    pub south: f64,
    /// Largest longitude.
    pub east: f64,
    /// Largest latitude.
    pub north: f64,
}

/// How a query region relates to a [`LonLatBox`], as the caller's classifier decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// No row in the box can match: skip the node.
    Outside,
    /// Every row in the box matches: take the node's rows without testing them.
    Inside,
    /// Some rows may match: descend, and test each row of the leaves reached.
    Partial,
}

/// An owned packed R-tree: the bytes of one file, built from points.
///
/// ```
/// use geocrm::index::packed::{PackedRTree, PackedRTreeRef};
/// use geocrm::LatLon;
/// let points = [LatLon::new(48.8566, 2.3522)?, LatLon::new(51.5072, -0.1276)?, LatLon::new(40.7128, -74.006)?];
/// let tree = PackedRTree::build(&points);
/// let mut file = Vec::new();
/// tree.write_to(&mut file).map_err(|e| geocrm::Error::io("write", "mem", e))?;
///
/// let view = PackedRTreeRef::try_new(&file)?; // validated, zero-copy
/// let near = view.nearest(LatLon::new(50.0, 1.0)?, 2, &mut |_row| true);
/// assert_eq!(near.iter().map(|&(_, row)| row).collect::<Vec<_>>(), [0, 1]); // Paris, then London
/// let mut found = Vec::new();
/// view.within_radius(LatLon::new(48.85, 2.35)?, 10_000.0, &mut |row, _metres| found.push(row));
/// assert_eq!(found, [0]);
/// assert_eq!(view.location(2), Some(points[2]));
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRTree {
    bytes: Vec<u8>,
    layout: Layout,
}

impl PackedRTree {
    /// Validates owned bytes (a file read into memory) and keeps them.
    ///
    /// # Errors
    /// As [`PackedRTreeRef::try_new`].
    pub fn try_from_vec(bytes: Vec<u8>) -> Result<Self> {
        let layout = format::validate(&bytes, true)?;
        Ok(PackedRTree { bytes, layout })
    }

    /// The serialized file.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives the bytes back.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Writes the serialized file.
    ///
    /// # Errors
    /// Whatever the writer returns.
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(&self.bytes)
    }

    /// A borrowed view for queries (no validation needed: the bytes were built or validated).
    #[must_use]
    pub fn view(&self) -> PackedRTreeRef<'_> {
        PackedRTreeRef { bytes: &self.bytes, layout: self.layout }
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.layout.rows
    }

    /// Whether the tree has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layout.rows == 0
    }

    /// See [`PackedRTreeRef::location`].
    #[must_use]
    pub fn location(&self, row: u32) -> Option<LatLon> {
        self.view().location(row)
    }

    /// See [`PackedRTreeRef::nearest`].
    pub fn nearest(&self, at: LatLon, k: usize, accept: &mut dyn FnMut(u32) -> bool) -> Vec<(f64, u32)> {
        self.view().nearest(at, k, accept)
    }

    /// See [`PackedRTreeRef::within_radius`].
    pub fn within_radius(&self, at: LatLon, metres: f64, visit: &mut dyn FnMut(u32, f64)) {
        self.view().within_radius(at, metres, visit);
    }

    /// See [`PackedRTreeRef::visit_lonlat`].
    pub fn visit_lonlat(
        &self,
        classify: &mut dyn FnMut(LonLatBox) -> Coverage,
        visit: &mut dyn FnMut(Range<u32>, bool),
    ) {
        self.view().visit_lonlat(classify, visit);
    }
}

/// A validated, zero-copy view of packed R-tree bytes; see [`PackedRTree`] for an example.
///
/// Queries never panic and never read out of bounds, whatever the bytes: validation checks
/// the whole structure, and every read is a checked slice access anyway (a failed read gives
/// an empty answer rather than a panic).
#[derive(Debug, Clone, Copy)]
pub struct PackedRTreeRef<'a> {
    bytes: &'a [u8],
    layout: Layout,
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
        _ => f32::NAN,
    }
}

fn f64_at(b: &[u8], at: usize) -> f64 {
    match b.get(at..at.wrapping_add(8)) {
        Some(&[a, b, c, d, e, f, g, h]) => f64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => f64::NAN,
    }
}

/// Reads the first three f32 of `b` as f64; NaN when too short.
#[inline]
fn f32x3(b: &[u8]) -> [f64; 3] {
    match b.as_chunks::<4>().0 {
        [x, y, z, ..] => [x, y, z].map(|w| f64::from(f32::from_le_bytes(*w))),
        _ => [f64::NAN; 3],
    }
}

/// Reads a 24-byte node box as f64 `[min x, min y, min z, max x, max y, max z]`; NaN when
/// too short.
#[inline]
fn aabb_of(chunk: &[u8]) -> [f64; 6] {
    match chunk.as_chunks::<4>().0 {
        [a, b, c, d, e, f, ..] => [a, b, c, d, e, f].map(|w| f64::from(f32::from_le_bytes(*w))),
        _ => [f64::NAN; 6],
    }
}

impl<'a> PackedRTreeRef<'a> {
    /// Validates `bytes` (magic, version, header CRC, every length and offset against the
    /// row count and the byte length, level structure, body CRC) and wraps them. Costs one
    /// CRC pass over the bytes; allocates nothing.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] (with the offset of the first bad structure) or
    /// [`crate::Error::UnsupportedVersion`].
    pub fn try_new(bytes: &'a [u8]) -> Result<Self> {
        Ok(PackedRTreeRef { bytes, layout: format::validate(bytes, true)? })
    }

    /// As [`try_new`](Self::try_new) but skips the body CRC: the structure is still fully
    /// validated, so queries stay in bounds, but flipped bits in points or boxes give wrong
    /// answers instead of an error. For files whose checksum was verified when written or
    /// that are checked another way.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new), except body damage.
    pub fn try_new_unchecked_crc(bytes: &'a [u8]) -> Result<Self> {
        Ok(PackedRTreeRef { bytes, layout: format::validate(bytes, false)? })
    }

    /// A view of bytes already validated with this `layout`.
    pub(crate) fn from_validated(bytes: &'a [u8], layout: Layout) -> Self {
        PackedRTreeRef { bytes, layout }
    }

    /// The validated layout.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The bytes viewed.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.layout.rows
    }

    /// Whether the tree has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layout.rows == 0
    }

    /// The exact stored coordinate of a row; `None` past the end (or for a damaged value
    /// when the body CRC was not checked).
    #[must_use]
    pub fn location(&self, row: u32) -> Option<LatLon> {
        if row as usize >= self.layout.rows {
            return None;
        }
        let at = self.layout.points_at.checked_add((row as usize).checked_mul(POINT_LEN)?)?;
        let point = self.bytes.get(at..at.checked_add(POINT_LEN)?)?;
        LatLon::from_stored(f64_at(point, 0), f64_at(point, 8))
    }

    /// Starts loading the stored location of `row` into the cache (nothing for a row past
    /// the end).
    pub(crate) fn prefetch_location(&self, row: u32) {
        if row as usize >= self.layout.rows {
            return;
        }
        let at = self.layout.points_at.saturating_add((row as usize).saturating_mul(POINT_LEN));
        crate::io::prefetch(self.bytes.get(at..at.saturating_add(POINT_LEN)).unwrap_or_default());
    }

    /// The stored `(latitude, longitude)` of each row in `rows` (clamped to the rows there
    /// are), in row order, read straight from the points section: the fast way to test a
    /// leaf's rows. Values are as stored, not validated again: only a file opened without its
    /// body CRC can give an out-of-range or NaN value here, as [`location`](Self::location)
    /// would give `None`. Bytes that do not hold the rows (a view of an unreadable section is
    /// empty) give nothing.
    ///
    /// ```
    /// use geocrm::index::packed::PackedRTree;
    /// use geocrm::LatLon;
    /// let tree = PackedRTree::build(&[LatLon::new(1.0, 2.0)?, LatLon::new(3.0, 4.0)?]);
    /// assert_eq!(tree.view().lat_lons(0..9).collect::<Vec<_>>(), [(1.0, 2.0), (3.0, 4.0)]);
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    pub fn lat_lons(&self, rows: Range<u32>) -> impl Iterator<Item = (f64, f64)> + 'a {
        let end = (rows.end as usize).min(self.layout.rows);
        let start = (rows.start as usize).min(end);
        self.records(self.layout.points_at, POINT_LEN, start, end)
            .as_chunks::<POINT_LEN>()
            .0
            .iter()
            .map(|p| (f64_at(p, 0), f64_at(p, 8)))
    }

    /// The stored f32 unit vector of a row (within 1.04e-7 of the exact one); `None` past
    /// the end.
    #[must_use]
    pub fn unit(&self, row: u32) -> Option<[f32; 3]> {
        if row as usize >= self.layout.rows {
            return None;
        }
        let at = self.layout.units_at.checked_add((row as usize).checked_mul(UNIT_LEN)?)?;
        Some([0, 4, 8].map(|o| f32_at(self.bytes, at.wrapping_add(o))))
    }

    /// The bytes of `count` consecutive per-node or per-row records of `len` bytes starting
    /// at record `first` of the section at `section`; empty if out of bounds.
    fn records(&self, section: usize, len: usize, first: usize, end: usize) -> &'a [u8] {
        let range = || {
            let a = section.checked_add(first.checked_mul(len)?)?;
            let b = section.checked_add(end.checked_mul(len)?)?;
            self.bytes.get(a..b)
        };
        range().unwrap_or_default()
    }

    /// Node boxes of nodes `first..end`, 24 bytes each.
    fn aabbs(&self, first: usize, end: usize) -> &'a [u8] {
        self.records(self.layout.aabb_at, AABB_LEN, first, end)
    }

    /// Unit vectors of rows `first..end`, 12 bytes each.
    fn units(&self, first: usize, end: usize) -> &'a [u8] {
        self.records(self.layout.units_at, UNIT_LEN, first, end)
    }

    /// The lon/lat box of node `node`.
    fn lonlat_box(&self, node: usize) -> LonLatBox {
        let b = self.records(self.layout.lonlat_at, LONLAT_LEN, node, node.saturating_add(1));
        let [west, south, east, north] = [0, 4, 8, 12].map(|at| f64::from(f32_at(b, at)));
        LonLatBox { west, south, east, north }
    }

    /// (first node index, node count) of a level, zeros past the top.
    fn level(&self, level: usize) -> (usize, usize) {
        self.layout.level.get(level).copied().unwrap_or((0, 0))
    }

    /// The children (global node indexes at `level - 1`) of global node `node` at `level ≥ 1`,
    /// or for a leaf (`level == 0`) its rows.
    fn children(&self, level: usize, node: usize) -> Range<usize> {
        let (first, _) = self.level(level);
        let j = node.saturating_sub(first);
        let (below_first, below_count) =
            if level == 0 { (0, self.layout.rows) } else { self.level(level - 1) };
        let start = j.saturating_mul(NODE_SIZE).min(below_count);
        let end = start.saturating_add(NODE_SIZE).min(below_count);
        below_first.saturating_add(start)..below_first.saturating_add(end)
    }

    /// The rows under global node `node` at `level`.
    fn row_range(&self, level: usize, node: usize) -> Range<u32> {
        let (first, _) = self.level(level);
        let span = 1u64 << (4 * (level.min(MAX_SPAN_LEVEL) + 1));
        let j = node.saturating_sub(first) as u64;
        let rows = self.layout.rows as u64;
        let start = j.saturating_mul(span).min(rows);
        let end = start.saturating_add(span).min(rows);
        (start as u32)..(end as u32)
    }
}

const MAX_SPAN_LEVEL: usize = format::MAX_LEVELS - 1;
