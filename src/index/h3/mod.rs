//! A standalone H3 cell index: each row's H3 cell at one resolution, the rows ordered by
//! cell, in one checksummed file, so that the rows under any coarser cell are one contiguous
//! run found by binary search — a group-by at any coarser resolution is a walk over runs,
//! and a polygon covered by H3 cells (from any polyfill) is a count of runs.
//!
//! [`H3Index`] builds and owns the bytes; [`H3IndexRef`] validates any `&[u8]` (a `Vec`, a
//! file read into memory, a memory map) and queries it without copying. See
//! [`format`](mod@format) for every byte. The database's checkpoints keep the same order as a
//! section of their own file (FORMAT.md §13); this type is for using the index without a
//! database, as the benchmark suite does.
#![deny(clippy::indexing_slicing)]

pub mod format;

use std::ops::Range;

use h3o::{CellIndex, LatLng, Resolution};

use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::index::packed::CellColumn;
use format::{Layout, CELL_LEN, HEADER_LEN, LABEL, ROW_LEN};

/// An owned H3 cell index: the bytes of one file, built from points or cells.
///
/// ```
/// use geocrm::index::h3::{H3Index, H3IndexRef};
/// use geocrm::LatLon;
/// use h3o::{LatLng, Resolution};
///
/// let points = [
///     LatLon::new(48.8566, 2.3522)?, // Paris
///     LatLon::new(40.7128, -74.006)?, // New York
///     LatLon::new(48.8600, 2.3400)?, // Paris again
/// ];
/// let index = H3Index::build(&points, Resolution::Fifteen)?;
/// let mut file = Vec::new();
/// index.write_to(&mut file).map_err(|e| geocrm::Error::io("write", "mem", e))?;
///
/// let view = H3IndexRef::try_new(&file)?; // validated, zero-copy
/// let paris = LatLng::new(48.85, 2.35).unwrap().to_cell(Resolution::Five);
/// assert_eq!(view.rows_in(paris).collect::<Vec<_>>(), [0, 2]);
/// // Group by resolution-3 cell: one run of positions per cell, in cell order.
/// let counts: Vec<usize> = view.groups(Resolution::Three).map(|(_cell, run)| run.len()).collect();
/// assert_eq!(counts.iter().sum::<usize>(), 3);
/// assert_eq!(counts.len(), 2);
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H3Index {
    bytes: Vec<u8>,
    layout: Layout,
}

impl H3Index {
    /// Builds the index of `points` at `res`, row `i` being `points[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] with more than `u32::MAX` points.
    pub fn build(points: &[LatLon], res: Resolution) -> Result<H3Index> {
        let mut keyed = Vec::with_capacity(points.len());
        for (row, p) in rows_of(points, "points")? {
            let cell = LatLng::new(p.lat(), p.lon())
                .map_err(|e| Error::invalid_argument("points", format!("row {row}: {e}")))?
                .to_cell(res);
            keyed.push((u64::from(cell), row));
        }
        Ok(Self::from_keyed(keyed, res))
    }

    /// Builds the index of `cells`, row `i` being `cells[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the cells are not all of one resolution, or with more
    /// than `u32::MAX` cells.
    pub fn from_cells(cells: &[CellIndex]) -> Result<H3Index> {
        let res = cells.first().map_or(Resolution::Zero, |c| c.resolution());
        let mut keyed = Vec::with_capacity(cells.len());
        for (row, cell) in rows_of(cells, "cells")? {
            if cell.resolution() != res {
                return Err(Error::invalid_argument(
                    "cells",
                    format!("cell {row} is at resolution {}, cell 0 at {res}", cell.resolution()),
                ));
            }
            keyed.push((u64::from(*cell), row));
        }
        Ok(Self::from_keyed(keyed, res))
    }

    /// The file for `(cell, row)` pairs in row order, all at `res`.
    fn from_keyed(mut keyed: Vec<(u64, u32)>, res: Resolution) -> H3Index {
        // Stable: rows of one cell stay in increasing order.
        crate::radix::sort_by_key(&mut keyed);
        let layout = match Layout::new(keyed.len() as u64, u8::from(res)) {
            Some(layout) => layout,
            // `rows_of` refused more than u32::MAX rows, and resolutions are at most 15.
            None => unreachable!("{} rows fit the format", keyed.len()),
        };
        let mut bytes = Vec::with_capacity(layout.file_len);
        bytes.resize(HEADER_LEN, 0);
        bytes.extend(keyed.iter().flat_map(|(cell, _)| cell.to_le_bytes()));
        bytes.extend(keyed.iter().flat_map(|(_, row)| row.to_le_bytes()));
        if layout.write_header(&mut bytes).is_none() {
            unreachable!("the body was written to the layout's length");
        }
        H3Index { bytes, layout }
    }

    /// Validates owned bytes (a file read into memory) and keeps them.
    ///
    /// # Errors
    /// As [`H3IndexRef::try_new`].
    pub fn try_from_vec(bytes: Vec<u8>) -> Result<Self> {
        let layout = H3IndexRef::try_new(&bytes)?.layout;
        Ok(H3Index { bytes, layout })
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
    pub fn view(&self) -> H3IndexRef<'_> {
        H3IndexRef::from_validated(&self.bytes, self.layout)
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.layout.rows
    }

    /// Whether the index has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layout.rows == 0
    }
}

/// `items` (the argument `name`) with their row numbers, or an error when there are more
/// than `u32::MAX`.
fn rows_of<'t, T>(items: &'t [T], name: &'static str) -> Result<impl Iterator<Item = (u32, &'t T)>> {
    if u32::try_from(items.len()).is_err() {
        return Err(Error::invalid_argument(name, "an H3 cell index holds at most u32::MAX rows"));
    }
    Ok((0..=u32::MAX).zip(items))
}

/// A validated, zero-copy view of an H3 cell index file.
///
/// A *position* is a place in cell order (`0..len`); [`row`](Self::row) maps it to the row
/// the caller built the index with.
#[derive(Debug, Clone, Copy)]
pub struct H3IndexRef<'a> {
    bytes: &'a [u8],
    layout: Layout,
    cells: CellColumn<'a>,
}

impl<'a> H3IndexRef<'a> {
    /// Validates `bytes` — magic, version, header CRC, every header field against the row
    /// count and the byte length, the body CRC, the cells sorted and all of the header's
    /// resolution, every row below the row count — and wraps them. Two passes over the bytes;
    /// allocates nothing.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (with the offset of the first bad structure) or
    /// [`Error::UnsupportedVersion`].
    pub fn try_new(bytes: &'a [u8]) -> Result<Self> {
        Self::validate(bytes, true)
    }

    /// As [`try_new`](Self::try_new) but skips the body CRC: the structure and order are
    /// still validated, so queries stay in bounds, but a flipped bit in a cell or a row gives
    /// wrong answers instead of an error. For bytes checked another way.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new), except body damage the order checks cannot see.
    pub fn try_new_unchecked_crc(bytes: &'a [u8]) -> Result<Self> {
        Self::validate(bytes, false)
    }

    fn validate(bytes: &'a [u8], check_body_crc: bool) -> Result<Self> {
        let layout = format::validate(bytes, check_body_crc)?;
        let view = Self::from_validated(bytes, layout);
        let cells = CellColumn::try_new(view.section(layout.cells_at, CELL_LEN), layout.rows).map_err(
            |e| match e {
                Error::Corrupt { offset, reason, .. } => {
                    Error::corrupt(LABEL, offset.saturating_add(layout.cells_at as u64), reason)
                }
                other => other,
            },
        )?;
        let invalid = |at: usize, why: &str| Error::corrupt(LABEL, at as u64, why.to_string());
        for (i, edge) in
            [cells.get(0), cells.get(layout.rows.saturating_sub(1) as u32)].into_iter().enumerate()
        {
            let Some(raw) = edge else { continue };
            let at = layout.cells_at + i * layout.rows.saturating_sub(1) * CELL_LEN;
            let cell = CellIndex::try_from(raw).map_err(|_| invalid(at, "not an H3 cell"))?;
            if u8::from(cell.resolution()) != layout.res {
                return Err(invalid(at, "a cell of another resolution than the header's"));
            }
        }
        let rows = view.section(layout.rows_at, ROW_LEN);
        if let Some(i) =
            rows.as_chunks::<ROW_LEN>().0.iter().position(|r| u32::from_le_bytes(*r) as usize >= layout.rows)
        {
            return Err(invalid(layout.rows_at + i * ROW_LEN, "a row number beyond the row count"));
        }
        Ok(view)
    }

    fn from_validated(bytes: &'a [u8], layout: Layout) -> Self {
        let cells = bytes.get(layout.cells_at..layout.rows_at).unwrap_or_default();
        // The length matches the layout and the order was checked (or the bytes were built
        // here); an empty column is the answer for anything else, never a panic.
        let column = CellColumn::from_validated(cells, layout.rows, layout.res);
        H3IndexRef { bytes, layout, cells: column }
    }

    /// `len` records of `width` bytes from `at`.
    fn section(&self, at: usize, width: usize) -> &'a [u8] {
        let end = self.layout.rows.checked_mul(width).and_then(|n| n.checked_add(at));
        end.and_then(|end| self.bytes.get(at..end)).unwrap_or_default()
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

    /// Whether the index has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layout.rows == 0
    }

    /// The resolution of the index's cells.
    #[must_use]
    pub fn resolution(&self) -> Resolution {
        Resolution::try_from(self.layout.res).unwrap_or(Resolution::Zero)
    }

    /// The cells in position order, as a [`CellColumn`].
    #[must_use]
    pub fn cells(&self) -> CellColumn<'a> {
        self.cells
    }

    /// The row at `position`; `None` past the end.
    #[must_use]
    pub fn row(&self, position: u32) -> Option<u32> {
        let at = (position as usize).checked_mul(ROW_LEN)?.checked_add(self.layout.rows_at)?;
        match self.bytes.get(at..at.checked_add(ROW_LEN)?) {
            Some(&[a, b, c, d]) if (position as usize) < self.layout.rows => {
                Some(u32::from_le_bytes([a, b, c, d]))
            }
            _ => None,
        }
    }

    /// The rows at `positions`, in position order (cell, then row).
    pub fn rows(&self, positions: Range<u32>) -> impl Iterator<Item = u32> + 'a {
        let view = *self;
        positions.map_while(move |p| view.row(p))
    }

    /// The positions of the rows whose cells descend from (or are) `cell`: empty when `cell`
    /// is finer than the index. Two binary searches.
    #[must_use]
    pub fn positions_in(&self, cell: CellIndex) -> Range<u32> {
        self.cells.range_of_parent(u64::from(cell), u8::from(cell.resolution()))
    }

    /// How many rows lie in `cell`.
    #[must_use]
    pub fn count_in(&self, cell: CellIndex) -> usize {
        self.positions_in(cell).len()
    }

    /// The rows in `cell`, by cell then row.
    pub fn rows_in(&self, cell: CellIndex) -> impl Iterator<Item = u32> + 'a {
        self.rows(self.positions_in(cell))
    }

    /// The runs of positions sharing one ancestor at `res`, in cell order, as `(ancestor cell
    /// (raw H3 index), positions)`: one binary search per run, never a pass over every row.
    /// Nothing when `res` is finer than the index.
    pub fn groups(&self, res: Resolution) -> impl Iterator<Item = (u64, Range<u32>)> + 'a {
        self.cells.group_runs(u8::from(res))
    }

    /// The positions of the rows in any cell of `cover` (cells of any resolutions, nested or
    /// repeated: a polygon's cover from a polyfill, compacted or not), as sorted, disjoint,
    /// non-adjacent ranges. Cells finer than the index are ignored.
    #[must_use]
    pub fn positions_in_cells(&self, cover: &[CellIndex]) -> Vec<Range<u32>> {
        let mut runs: Vec<Range<u32>> =
            cover.iter().map(|&c| self.positions_in(c)).filter(|r| !r.is_empty()).collect();
        runs.sort_unstable_by_key(|r| (r.start, r.end));
        let mut merged: Vec<Range<u32>> = Vec::with_capacity(runs.len());
        for run in runs {
            match merged.last_mut() {
                Some(last) if run.start <= last.end => last.end = last.end.max(run.end),
                _ => merged.push(run),
            }
        }
        merged
    }

    /// How many rows lie in any cell of `cover` (each row counted once).
    #[must_use]
    pub fn count_in_cells(&self, cover: &[CellIndex]) -> u64 {
        self.positions_in_cells(cover).iter().map(|r| u64::from(r.end - r.start)).sum()
    }
}
