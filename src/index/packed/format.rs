//! Byte layout of a packed R-tree file, and its validation.
//!
//! Every integer and float is little-endian. Every section starts at a multiple of 8.
//! Rows are numbered `0..row_count` in the order the caller gave them; `N` below is the row
//! count and `M` the total node count.
//!
//! # Header (240 bytes, offsets in bytes)
//!
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 0 | 8 | magic `b"GEOCRMRT"` |
//! | 8 | 2 | format version, u16 = 1 |
//! | 10 | 2 | node size, u16 = 16 (rows per leaf, children per internal node) |
//! | 12 | 4 | level count `L`, u32 (0 when `N` = 0, else 1 + levels above the leaves) |
//! | 16 | 8 | row count `N`, u64, at most `u32::MAX` |
//! | 24 | 8 | node count `M`, u64 (sum of the level node counts) |
//! | 32 | 8 | points section offset, u64 (= 240) |
//! | 40 | 8 | points section length, u64 (= 16·N) |
//! | 48 | 8 | units section offset, u64 |
//! | 56 | 8 | units section length, u64 (= 12·N, without its padding) |
//! | 64 | 8 | node-box section offset, u64 |
//! | 72 | 8 | node-box section length, u64 (= 24·M) |
//! | 80 | 8 | lon/lat-box section offset, u64 |
//! | 88 | 8 | lon/lat-box section length, u64 (= 16·M) |
//! | 96 | 8 | file length, u64 (the whole file, header included) |
//! | 104 | 128 | level table: 8 entries of (first node index u64, node count u64); entry 0 is the leaves, entry `L-1` the root; entries `L..8` are all zero |
//! | 232 | 4 | CRC32 (IEEE, `crc32fast`) of bytes `240..file length` (the body) |
//! | 236 | 4 | CRC32 of header bytes `0..236` |
//!
//! # Body
//!
//! 1. **Points** at 240: per row, latitude f64 then longitude f64 (degrees, exactly as given).
//! 2. **Units** right after: per row, the unit vector `[cosφcosλ, cosφsinλ, sinφ]` as three
//!    f32 (rounded to nearest), then zero bytes up to the next multiple of 8.
//! 3. **Node boxes**: per node, in node-index order, six f32 `min x, min y, min z, max x,
//!    max y, max z`: an axis-aligned box containing the f64 unit vectors of every row under
//!    the node, rounded outward (a true bound).
//! 4. **Lon/lat boxes**: per node, four f32 `west, south, east, north` (degrees, `west ≤ east`,
//!    never wrapping the antimeridian) containing every row under the node, rounded outward.
//!
//! The file ends right after the lon/lat boxes.
//!
//! # Implied structure
//!
//! Nodes are numbered level by level, leaves first, the root last. Level `l` holds
//! `count(l)` nodes starting at node index `first(l)`: `count(0) = ⌈N/16⌉`,
//! `count(l+1) = ⌈count(l)/16⌉` until a level of one node (the root), and `first(0) = 0`,
//! `first(l+1) = first(l) + count(l)`. The `j`-th node of level 0 (a leaf) holds rows
//! `16j .. min(16j+16, N)`; the `j`-th node of level `l ≥ 1` has children `16j ..
//! min(16j+16, count(l-1))` of level `l-1`. So the `j`-th node of level `l` covers rows
//! `j·16^(l+1) .. min((j+1)·16^(l+1), N)`. Nothing in the file points anywhere: the header
//! fields that follow from `N` are stored only so a reader can check them.
#![deny(clippy::indexing_slicing)]

use crate::error::Result;
use crate::index::sealed_header::{read_uint, SealedHeader};

/// The eight bytes every packed R-tree file starts with.
pub const MAGIC: [u8; 8] = *b"GEOCRMRT";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Rows per leaf and children per internal node.
pub const NODE_SIZE: usize = 16;
/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 240;
/// Maximum number of levels (enough for `u32::MAX` rows).
pub const MAX_LEVELS: usize = 8;
/// Bytes per row in the points section.
pub const POINT_LEN: usize = 16;
/// Bytes per row in the units section.
pub const UNIT_LEN: usize = 12;
/// Bytes per node in the node-box section.
pub const AABB_LEN: usize = 24;
/// Bytes per node in the lon/lat-box section.
pub const LONLAT_LEN: usize = 16;

pub(crate) const LABEL: &str = "packed R-tree";
const LEVELS_AT: usize = 104;
/// Magic, version, checksums (the body's at 232, the header's at 236).
const HEADER: SealedHeader = SealedHeader {
    label: LABEL,
    what: "a packed R-tree",
    magic: MAGIC,
    version: VERSION,
    len: HEADER_LEN,
    body_crc_at: 232,
};

/// Where everything is, all derived from the row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub rows: usize,
    pub nodes: usize,
    pub levels: usize,
    /// (first node index, node count) per level, leaves first.
    pub level: [(usize, usize); MAX_LEVELS],
    pub points_at: usize,
    pub units_at: usize,
    pub aabb_at: usize,
    pub lonlat_at: usize,
    pub file_len: usize,
}

fn pad8(x: usize) -> Option<usize> {
    x.checked_add(7).map(|v| v & !7)
}

impl Layout {
    /// The layout for `rows` rows, or `None` when it does not fit the format or `usize`.
    pub fn for_rows(rows: u64) -> Option<Layout> {
        if rows > u64::from(u32::MAX) {
            return None;
        }
        let rows = usize::try_from(rows).ok()?;
        let mut level = [(0, 0); MAX_LEVELS];
        let (mut levels, mut nodes, mut count) = (0, 0usize, rows);
        while count > 1 || (levels == 0 && count == 1) {
            count = count.div_ceil(NODE_SIZE);
            *level.get_mut(levels)? = (nodes, count);
            nodes = nodes.checked_add(count)?;
            levels += 1;
        }
        let points_at = HEADER_LEN;
        let units_at = points_at.checked_add(rows.checked_mul(POINT_LEN)?)?;
        let aabb_at = pad8(units_at.checked_add(rows.checked_mul(UNIT_LEN)?)?)?;
        let lonlat_at = aabb_at.checked_add(nodes.checked_mul(AABB_LEN)?)?;
        let file_len = lonlat_at.checked_add(nodes.checked_mul(LONLAT_LEN)?)?;
        Some(Layout { rows, nodes, levels, level, points_at, units_at, aabb_at, lonlat_at, file_len })
    }

    /// The header fields, in order from offset 8 to the level table end, as u64 values with
    /// their byte widths.
    fn fields(&self) -> [(usize, u64, usize); 14] {
        let u = |x: usize| x as u64;
        [
            (8, u64::from(VERSION), 2),
            (10, NODE_SIZE as u64, 2),
            (12, u(self.levels), 4),
            (16, u(self.rows), 8),
            (24, u(self.nodes), 8),
            (32, u(self.points_at), 8),
            (40, u(self.rows * POINT_LEN), 8),
            (48, u(self.units_at), 8),
            (56, u(self.rows * UNIT_LEN), 8),
            (64, u(self.aabb_at), 8),
            (72, u(self.nodes * AABB_LEN), 8),
            (80, u(self.lonlat_at), 8),
            (88, u(self.nodes * LONLAT_LEN), 8),
            (96, u(self.file_len), 8),
        ]
    }

    /// Writes the header (with both CRCs) into `out[..HEADER_LEN]`; the body must already be
    /// in place. Returns `None` only if `out` is shorter than the layout says.
    pub fn write_header(&self, out: &mut [u8]) -> Option<()> {
        let levels = self.level.iter().enumerate().flat_map(|(i, &(first, count))| {
            let at = LEVELS_AT + 16 * i;
            [(at, first as u64, 8), (at + 8, count as u64, 8)]
        });
        let fields: Vec<_> = self.fields().into_iter().chain(levels).collect();
        HEADER.seal(out, &fields, self.file_len)
    }
}

/// Validates `bytes` as a whole packed R-tree file and returns its layout. Checks the magic,
/// version, header CRC, every header field against the layout its row count implies, the
/// file length and, when `check_body_crc`, the body CRC. Never allocates.
pub(crate) fn validate(bytes: &[u8], check_body_crc: bool) -> Result<Layout> {
    HEADER.check_start(bytes)?;
    let rows = read_uint(bytes, 16, 8);
    let layout = Layout::for_rows(rows)
        .ok_or_else(|| HEADER.corrupt(16, format!("row count {rows} is beyond what the format allows")))?;
    HEADER.check_fields(bytes, &layout.fields(), rows)?;
    for (i, (first, count)) in layout.level.iter().enumerate() {
        let at = LEVELS_AT + 16 * i;
        let (f, c) = (read_uint(bytes, at, 8), read_uint(bytes, at + 8, 8));
        if f != *first as u64 || c != *count as u64 {
            return Err(HEADER.corrupt(at, format!("level {i} is ({f}, {c}), expected ({first}, {count})")));
        }
    }
    HEADER.check_end(bytes, layout.file_len, check_body_crc)?;
    Ok(layout)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn level_structure() {
        let l = Layout::for_rows(0).unwrap();
        assert_eq!((l.levels, l.nodes, l.file_len), (0, 0, HEADER_LEN));
        let l = Layout::for_rows(16).unwrap();
        assert_eq!((l.levels, l.nodes), (1, 1));
        let l = Layout::for_rows(17).unwrap();
        assert_eq!((l.levels, l.nodes), (2, 3));
        assert_eq!(l.level[..2], [(0, 2), (2, 1)]);
        let l = Layout::for_rows(1_000_000).unwrap();
        assert_eq!(l.levels, 5);
        assert_eq!(l.level[..5], [(0, 62500), (62500, 3907), (66407, 245), (66652, 16), (66668, 1)]);
        assert_eq!(l.aabb_at % 8, 0);
        assert_eq!(Layout::for_rows(u64::from(u32::MAX)).unwrap().levels, 8);
        assert!(Layout::for_rows(u64::from(u32::MAX) + 1).is_none());
        assert!(Layout::for_rows(1 << 60).is_none());
    }
}
