//! The H3 cell column beside a packed R-tree: one raw H3 index (u64, little-endian) per
//! row, sorted ascending, all of one resolution.
//!
//! An H3 index holds, from the top bit down: a reserved bit, 4 mode bits, 3 reserved bits,
//! 4 resolution bits, 7 base-cell bits, then fifteen 3-bit digits, digit 1 first, digits
//! past the cell's resolution set to 7. So among cells of one resolution sorted by raw
//! value, the descendants of a coarser cell are contiguous: they lie between the cell with
//! its resolution field replaced and its finer digits all 0, and the same with all 7.
#![deny(clippy::indexing_slicing)]

use std::ops::Range;

use crate::error::{Error, Result};

const LABEL: &str = "H3 cell column";
const RES_SHIFT: u32 = 52;
const RES_MASK: u64 = 0xF << RES_SHIFT;
const MAX_RES: u8 = 15;

/// Mask of the digits finer than resolution `res` (≤ 15).
fn finer_digits(res: u8) -> u64 {
    (1u64 << (3 * u32::from(MAX_RES - res.min(MAX_RES)))) - 1
}

/// A validated, zero-copy view of a sorted H3 cell column.
///
/// ```
/// use geocrm::index::packed::CellColumn;
/// use h3o::{LatLng, Resolution};
/// let mut cells: Vec<u64> = [(48.85, 2.35), (48.86, 2.34), (40.71, -74.0)]
///     .iter()
///     .map(|&(lat, lon)| u64::from(LatLng::new(lat, lon).unwrap().to_cell(Resolution::Fifteen)))
///     .collect();
/// cells.sort_unstable();
/// let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
/// let column = CellColumn::try_new(&bytes, 3)?;
/// let paris = LatLng::new(48.85, 2.35).unwrap().to_cell(Resolution::Three);
/// let rows = column.range_of_parent(u64::from(paris), 3);
/// assert_eq!(rows.len(), 2);
/// assert_eq!(column.group_runs(3).count(), 2);
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CellColumn<'a> {
    bytes: &'a [u8],
    rows: u32,
    res: u8,
}

impl<'a> CellColumn<'a> {
    /// Validates `bytes` as `rows` little-endian u64 cells, sorted ascending, all with the
    /// same mode and resolution (one pass, no allocation).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the length is not `8 · rows`, the cells are out of order or of
    /// mixed resolution, or `rows` exceeds `u32::MAX`.
    pub fn try_new(bytes: &'a [u8], rows: usize) -> Result<Self> {
        let expected = rows.checked_mul(8).filter(|_| u32::try_from(rows).is_ok());
        if expected != Some(bytes.len()) {
            return Err(Error::corrupt(LABEL, 0, format!("{} bytes cannot hold {rows} cells", bytes.len())));
        }
        let column = CellColumn { bytes, rows: rows as u32, res: 0 };
        let (first, last) =
            (column.get(0).unwrap_or(0), column.get((rows as u32).saturating_sub(1)).unwrap_or(0));
        if rows > 0 && first >> RES_SHIFT != last >> RES_SHIFT {
            return Err(Error::corrupt(LABEL, 0, "cells of different modes or resolutions"));
        }
        let mut prev = 0;
        for (i, c) in bytes.chunks_exact(8).enumerate() {
            let c = u64::from_le_bytes(c.try_into().unwrap_or_default());
            if c < prev {
                return Err(Error::corrupt(LABEL, 8 * i as u64, "cells out of order"));
            }
            prev = c;
        }
        Ok(CellColumn { res: ((first & RES_MASK) >> RES_SHIFT) as u8, ..column })
    }

    /// A column of `rows` cells at `res` whose length and order were checked (or that was
    /// built sorted); with a wrong length it is empty.
    pub(crate) fn from_validated(bytes: &'a [u8], rows: usize, res: u8) -> Self {
        match u32::try_from(rows) {
            Ok(n) if rows.checked_mul(8) == Some(bytes.len()) => CellColumn { bytes, rows: n, res },
            _ => CellColumn { bytes: &[], rows: 0, res },
        }
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows as usize
    }

    /// Whether there are no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The resolution of the column's cells (0 for an empty column).
    #[must_use]
    pub fn resolution(&self) -> u8 {
        self.res
    }

    /// The cell of `row`, `None` past the end.
    #[must_use]
    pub fn get(&self, row: u32) -> Option<u64> {
        let at = (row as usize).checked_mul(8)?;
        match self.bytes.get(at..at.checked_add(8)?) {
            Some(&[a, b, c, d, e, f, g, h]) => Some(u64::from_le_bytes([a, b, c, d, e, f, g, h])),
            _ => None,
        }
    }

    /// First row in `from..len` whose cell is not `< bound` (or, with `inclusive`, not `≤`).
    fn partition(&self, from: u32, bound: u64, inclusive: bool) -> u32 {
        let (mut lo, mut hi) = (from, self.rows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let c = self.get(mid).unwrap_or(u64::MAX);
            if c < bound || (inclusive && c == bound) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The (lowest, highest) raw values the column's descendants of `cell` at `res` can have.
    fn bounds(&self, cell: u64, res: u8) -> (u64, u64) {
        let base = (cell & !RES_MASK & !finer_digits(res)) | (u64::from(self.res) << RES_SHIFT);
        (base, base | finer_digits(res))
    }

    /// The rows whose cells descend from (or equal) `parent_cell` taken at resolution
    /// `parent_res`: two binary searches. Digits of `parent_cell` finer than `parent_res` are
    /// ignored, so any row's cell with a resolution gives that row's group. Empty when
    /// `parent_res` is finer than the column's cells.
    #[must_use]
    pub fn range_of_parent(&self, parent_cell: u64, parent_res: u8) -> Range<u32> {
        if parent_res > self.res || self.rows == 0 {
            return 0..0;
        }
        let (lo, hi) = self.bounds(parent_cell, parent_res);
        let start = self.partition(0, lo, false);
        start..self.partition(start, hi, true)
    }

    /// The runs of rows sharing one ancestor at resolution `res`, in row order, as
    /// `(ancestor cell, rows)`: one binary search per run, never a pass over every row.
    /// Nothing when `res` is finer than the column's cells.
    pub fn group_runs(&self, res: u8) -> impl Iterator<Item = (u64, Range<u32>)> + 'a {
        let column = *self;
        let mut next = if res > self.res { self.rows } else { 0 };
        std::iter::from_fn(move || {
            let start = next;
            let cell = column.get(start)?;
            let (_, hi) = column.bounds(cell, res);
            let end = column.partition(start, hi, true).max(start + 1);
            next = end;
            Some((parent_of(cell, res), start..end))
        })
    }
}

/// The ancestor of `cell` at `res`: by h3o for valid cells, by the bit layout otherwise.
fn parent_of(cell: u64, res: u8) -> u64 {
    let by_h3o = h3o::CellIndex::try_from(cell)
        .ok()
        .and_then(|c| c.parent(h3o::Resolution::try_from(res).ok()?))
        .map(u64::from);
    by_h3o.unwrap_or((cell & !RES_MASK) | (u64::from(res) << RES_SHIFT) | finer_digits(res))
}
