//! One collection's rows as queries see them: the checkpoint's rows (from the mapping),
//! minus those superseded or deleted since, plus the in-memory table of recent writes.

use std::sync::Arc;

use super::checkpoint::Checkpoint;
use super::memory::{MemoryTable, OpPointer, Row};
use crate::geo::LatLon;

/// Checkpoint rows hidden because a later write replaced or removed them: a bitset,
/// allocated on the first hide.
#[derive(Debug, Default, Clone)]
pub struct HiddenRows {
    bits: Vec<u64>,
    count: usize,
}

impl HiddenRows {
    /// Hides `row` of a checkpoint with `rows` rows; returns whether it was visible.
    pub fn hide(&mut self, row: u32, rows: usize) -> bool {
        if self.bits.is_empty() {
            self.bits = vec![0; rows.div_ceil(64)];
        }
        let (word, bit) = (row as usize / 64, 1u64 << (row % 64));
        match self.bits.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                self.count += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether `row` is hidden.
    #[inline]
    #[must_use]
    pub fn contains(&self, row: u32) -> bool {
        self.bits.get(row as usize / 64).is_some_and(|w| w & (1u64 << (row % 64)) != 0)
    }

    /// Number of hidden rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no row is hidden.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// A checkpoint with its hidden rows.
#[derive(Debug, Clone)]
pub struct BaseRows {
    /// The mapped checkpoint.
    pub checkpoint: Arc<Checkpoint>,
    /// Rows replaced or removed since.
    pub hidden: HiddenRows,
}

impl BaseRows {
    /// Whether `row` is live.
    #[inline]
    #[must_use]
    pub fn visible(&self, row: u32) -> bool {
        !self.hidden.contains(row)
    }

    /// The live row holding `id`.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<u32> {
        self.checkpoint.find(id).filter(|&r| self.visible(r))
    }
}

/// A read view over one collection: optional checkpoint rows plus the in-memory table.
#[derive(Debug, Clone, Copy)]
pub struct TableView<'a> {
    /// Writes since the checkpoint.
    pub tail: &'a MemoryTable,
    /// The checkpoint, if any.
    pub base: Option<&'a BaseRows>,
}

impl<'a> TableView<'a> {
    /// Number of live rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tail.len() + self.base.map_or(0, |b| b.checkpoint.len() - b.hidden.len())
    }

    /// Whether there are no live rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live row with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<RowRef<'a>> {
        if let Some(row) = self.tail.get(id) {
            return Some(RowRef::Tail(row));
        }
        let base = self.base?;
        Some(RowRef::Base(&base.checkpoint, base.find(id)?))
    }

    /// Every live row: checkpoint rows in the tree's row order, then the tail in no order.
    pub fn rows(&self) -> impl Iterator<Item = RowRef<'a>> + 'a {
        let base = self.base;
        let n = base.map_or(0, |b| b.checkpoint.len() as u32);
        (0..n)
            .filter_map(move |r| base.filter(|b| b.visible(r)).map(|b| RowRef::Base(&b.checkpoint, r)))
            .chain(self.tail.rows().map(RowRef::Tail))
    }
}

/// One live row, from the tail or from a checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum RowRef<'a> {
    /// A row of the in-memory table.
    Tail(&'a Row),
    /// Row number `.1` of a checkpoint.
    Base(&'a Checkpoint, u32),
}

impl<'a> RowRef<'a> {
    /// Record id.
    #[must_use]
    pub fn id(&self) -> &'a str {
        match *self {
            RowRef::Tail(r) => &r.id,
            RowRef::Base(c, row) => c.id(row),
        }
    }

    /// Location (the origin for a damaged checkpoint value, which a verified file never has).
    #[must_use]
    pub fn location(&self) -> LatLon {
        match *self {
            RowRef::Tail(r) => r.location,
            RowRef::Base(c, row) => c.location(row).unwrap_or(LatLon::ORIGIN),
        }
    }

    /// H3 cell at resolution 15.
    #[must_use]
    pub fn cell(&self) -> u64 {
        match *self {
            RowRef::Tail(r) => r.cell,
            RowRef::Base(c, row) => c.cell(row),
        }
    }

    /// Number attribute `i` (NaN where unset).
    #[inline]
    #[must_use]
    pub fn number(&self, i: usize) -> f64 {
        match *self {
            RowRef::Tail(r) => r.numbers.get(i).copied().unwrap_or(f64::NAN),
            RowRef::Base(c, row) => c.number(i, row),
        }
    }

    /// Category code `i` (`u32::MAX` where unset).
    #[inline]
    #[must_use]
    pub fn category(&self, i: usize) -> u32 {
        match *self {
            RowRef::Tail(r) => r.categories.get(i).copied().unwrap_or(u32::MAX),
            RowRef::Base(c, row) => c.category(i, row),
        }
    }

    /// Where the record's operation is in the log.
    #[must_use]
    pub fn pointer(&self) -> OpPointer {
        match *self {
            RowRef::Tail(r) => r.pointer,
            RowRef::Base(c, row) => c.pointer(row),
        }
    }
}
