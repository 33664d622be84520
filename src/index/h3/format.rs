//! Byte layout of a standalone H3 cell index file, and its validation.
//!
//! Every integer is little-endian. `N` below is the row count.
//!
//! # Header (64 bytes, offsets in bytes)
//!
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 0 | 8 | magic `b"GEOCRMH3"` |
//! | 8 | 2 | format version, u16 = 1 |
//! | 10 | 1 | resolution of every cell, 0–15 |
//! | 11 | 5 | zero |
//! | 16 | 8 | row count `N`, u64, at most `u32::MAX` |
//! | 24 | 8 | cells section offset, u64 (= 64) |
//! | 32 | 8 | cells section length, u64 (= 8·N) |
//! | 40 | 8 | rows section offset, u64 (= 64 + 8·N) |
//! | 48 | 8 | rows section length, u64 (= 4·N) |
//! | 56 | 4 | CRC32 (IEEE, `crc32fast`) of bytes `64..file length` (the body) |
//! | 60 | 4 | CRC32 of header bytes `0..60` |
//!
//! # Body
//!
//! 1. **Cells** at 64: one raw H3 cell index (u64) per row, all of the header's resolution,
//!    in ascending order. A position `i` in `0..N` is a place in this order.
//! 2. **Rows** right after: per position `i`, the row (u32, `< N`) whose cell is `cells[i]`:
//!    the rows in the order the caller gave the points, sorted by (cell, row), so each row
//!    appears once.
//!
//! The file ends right after the rows. Among cells of one resolution sorted by raw value,
//! the descendants of any coarser cell are contiguous, so every query is a binary search.
#![deny(clippy::indexing_slicing)]

use crate::error::Result;
use crate::index::sealed_header::{read_uint, SealedHeader};

/// The eight bytes every H3 cell index file starts with.
pub const MAGIC: [u8; 8] = *b"GEOCRMH3";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 64;
/// Bytes per position in the cells section.
pub const CELL_LEN: usize = 8;
/// Bytes per position in the rows section.
pub const ROW_LEN: usize = 4;

pub(crate) const LABEL: &str = "H3 cell index";
const RES_AT: usize = 10;
/// Magic, version, checksums (the body's at 56, the header's at 60).
const HEADER: SealedHeader = SealedHeader {
    label: LABEL,
    what: "an H3 cell index",
    magic: MAGIC,
    version: VERSION,
    len: HEADER_LEN,
    body_crc_at: 56,
};

/// Where everything is, all derived from the row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub rows: usize,
    pub res: u8,
    pub cells_at: usize,
    pub rows_at: usize,
    pub file_len: usize,
}

impl Layout {
    /// The layout for `rows` rows of cells at `res`, or `None` when it does not fit the
    /// format or `usize`.
    pub fn new(rows: u64, res: u8) -> Option<Layout> {
        if rows > u64::from(u32::MAX) || res > 15 {
            return None;
        }
        let rows = usize::try_from(rows).ok()?;
        let cells_at = HEADER_LEN;
        let rows_at = cells_at.checked_add(rows.checked_mul(CELL_LEN)?)?;
        let file_len = rows_at.checked_add(rows.checked_mul(ROW_LEN)?)?;
        Some(Layout { rows, res, cells_at, rows_at, file_len })
    }

    /// The header fields from offset 8 to 56, as u64 values with their byte widths.
    fn fields(&self) -> [(usize, u64, usize); 9] {
        let u = |x: usize| x as u64;
        [
            (8, u64::from(VERSION), 2),
            (RES_AT, u64::from(self.res), 1),
            (11, 0, 1),
            (12, 0, 4),
            (16, u(self.rows), 8),
            (24, u(self.cells_at), 8),
            (32, u(self.rows * CELL_LEN), 8),
            (40, u(self.rows_at), 8),
            (48, u(self.rows * ROW_LEN), 8),
        ]
    }

    /// Writes the header (with both CRCs) into `out[..HEADER_LEN]`; the body must already be
    /// in place. `None` only if `out` is shorter than the layout says.
    pub fn write_header(&self, out: &mut [u8]) -> Option<()> {
        // The fields cover every byte from 8 to the checksums, the zero ones included.
        HEADER.seal(out, &self.fields(), self.file_len)
    }
}

/// Validates the header of `bytes` as a whole H3 cell index file and returns its layout:
/// magic, header CRC, version, every header field against the layout its row count
/// implies, the file length and, when `check_body_crc`, the body CRC. The body's order and
/// ranges are checked by the caller. Never allocates.
pub(crate) fn validate(bytes: &[u8], check_body_crc: bool) -> Result<Layout> {
    HEADER.check_start(bytes)?;
    let rows = read_uint(bytes, 16, 8);
    let res = read_uint(bytes, RES_AT, 1) as u8;
    let layout = Layout::new(rows, res).ok_or_else(|| {
        HEADER.corrupt(16, format!("{rows} rows at resolution {res} is beyond what the format allows"))
    })?;
    HEADER.check_fields(bytes, &layout.fields(), rows)?;
    HEADER.check_end(bytes, layout.file_len, check_body_crc)?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let l = Layout::new(0, 9).unwrap();
        assert_eq!((l.cells_at, l.rows_at, l.file_len), (64, 64, 64));
        let l = Layout::new(1_000_000, 15).unwrap();
        assert_eq!((l.rows_at, l.file_len), (64 + 8_000_000, 64 + 12_000_000));
        assert!(Layout::new(u64::from(u32::MAX), 0).is_some());
        assert!(Layout::new(u64::from(u32::MAX) + 1, 0).is_none());
        assert!(Layout::new(1, 16).is_none());
    }
}
