//! Byte layout of a checkpoint file, and its validation.
//!
//! A checkpoint file holds one collection's live rows as of a log sequence number, in the
//! order of [`packing_order`](crate::index::packed::packing_order) of their locations (readers
//! accept any order). Every integer and float is little-endian; every section starts at a
//! multiple of 8. `N` is the row count, `F` the number of number fields and `C` the number of
//! category fields of the collection's schema.
//!
//! # Header (256 bytes)
//!
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 0 | 8 | magic `b"GEOCRMCP"` |
//! | 8 | 2 | format version, u16 = 2 |
//! | 10 | 2 | flags, u16 = 0 |
//! | 12 | 4 | section count, u32 = 10 |
//! | 16 | 8 | LSN, u64: the checkpoint holds every operation below it |
//! | 24 | 8 | row count `N`, u64 (at most `u32::MAX`) |
//! | 32 | 4 | `F`, u32 |
//! | 36 | 4 | `C`, u32 |
//! | 40 | 160 | section table: 10 × (offset u64, length u64) |
//! | 200 | 40 | 10 × CRC-32 (IEEE) of each section's bytes, u32 |
//! | 240 | 8 | file length, u64 |
//! | 248 | 4 | CRC-32 of header bytes `0..248` |
//! | 252 | 4 | zero |
//!
//! # Sections, in file order
//!
//! | # | name | length | contents |
//! | ---: | --- | --- | --- |
//! | 0 | meta | any (≤ 64 MiB) | bincode 2 (standard config) of `{collection: String, schema: Schema, dictionary: Vec<Vec<String>>}`: the category values by code, per category field |
//! | 1 | tree | as its header says | a packed R-tree file (see the `packed` module) over the rows' locations, row `i` = checkpoint row `i` |
//! | 2 | cells | 8·N | H3 cell (resolution 15) per row, u64 (its top 12 bits are `0x08F`) |
//! | 3 | id offsets | 4·(N+1) | start of each row's id in the id bytes, u32, non-decreasing, first 0, last = length of section 4 |
//! | 4 | id bytes | any (< 4 GiB) | the ids, UTF-8, back to back |
//! | 5 | id order | 4·N | row numbers (u32) sorted by id bytes, for lookups by id |
//! | 6 | pointers | 10·N | per row, where its operation is in the log: segment u32, frame offset u32, operation index in the frame u16 (the frame's header gives its length) |
//! | 7 | numbers | 8·F·N | column-major: field 0 of every row, then field 1…; f64, NaN where unset |
//! | 8 | categories | 4·C·N | column-major; u32 codes into the dictionary, `u32::MAX` where unset |
//! | 9 | cell order | 4·N | row numbers (u32) sorted by (cell, row): the H3 cell index — a group-by over every row at any resolution walks it as runs of one ancestor cell |
//!
//! Sections follow each other in this order, each at the first multiple of 8 after the
//! previous one's end (zero padding), the first at 256; the file ends at the last section's
//! end.
#![deny(clippy::indexing_slicing)]

use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};

/// The eight bytes every checkpoint file starts with.
pub const MAGIC: [u8; 8] = *b"GEOCRMCP";
/// The format version this build writes and reads.
pub const VERSION: u16 = 2;
/// Header length in bytes.
pub const HEADER_LEN: usize = 256;
/// Number of sections.
pub const SECTIONS: usize = 10;
/// Bytes per row in the pointer section.
pub const POINTER_LEN: usize = 10;

pub(crate) const META: usize = 0;
pub(crate) const TREE: usize = 1;
pub(crate) const CELLS: usize = 2;
pub(crate) const ID_OFFSETS: usize = 3;
pub(crate) const ID_BYTES: usize = 4;
pub(crate) const ID_ORDER: usize = 5;
pub(crate) const POINTERS: usize = 6;
pub(crate) const NUMBERS: usize = 7;
pub(crate) const CATEGORIES: usize = 8;
pub(crate) const CELL_ORDER: usize = 9;

const TABLE_AT: usize = 40;
const CRCS_AT: usize = TABLE_AT + 16 * SECTIONS;
const FILE_LEN_AT: usize = CRCS_AT + 4 * SECTIONS;
const HEADER_CRC_AT: usize = FILE_LEN_AT + 8;
const _: () = assert!(HEADER_CRC_AT + 4 <= HEADER_LEN, "the section table fits the header");

/// Largest meta section accepted.
pub(crate) const MAX_META: usize = 64 << 20;

/// Header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub lsn: u64,
    pub rows: usize,
    pub numbers: usize,
    pub categories: usize,
    pub sections: [Range<usize>; SECTIONS],
}

fn pad8(x: usize) -> usize {
    x.div_ceil(8) * 8
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

/// Expected length of the fixed-size sections for `rows`, `f` and `c` (None for variable
/// sections); `None` overall on overflow.
fn fixed_len(section: usize, rows: usize, f: usize, c: usize) -> Option<Option<usize>> {
    Some(match section {
        CELLS => Some(rows.checked_mul(8)?),
        ID_OFFSETS => Some(rows.checked_add(1)?.checked_mul(4)?),
        ID_ORDER | CELL_ORDER => Some(rows.checked_mul(4)?),
        POINTERS => Some(rows.checked_mul(POINTER_LEN)?),
        NUMBERS => Some(rows.checked_mul(f)?.checked_mul(8)?),
        CATEGORIES => Some(rows.checked_mul(c)?.checked_mul(4)?),
        _ => None,
    })
}

/// The header of a file with these sections, and the zero padding before each section.
pub(crate) fn header(
    lsn: u64,
    rows: usize,
    f: usize,
    c: usize,
    sections: &[Vec<u8>; SECTIONS],
) -> (Vec<u8>, Vec<usize>) {
    let mut at = HEADER_LEN;
    let mut table = Vec::with_capacity(SECTIONS);
    let mut pads = Vec::with_capacity(SECTIONS);
    for s in sections {
        let start = pad8(at);
        pads.push(start - at);
        table.push((start as u64, s.len() as u64, crc32fast::hash(s)));
        at = start + s.len();
    }
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&(SECTIONS as u32).to_le_bytes());
    h.extend_from_slice(&lsn.to_le_bytes());
    h.extend_from_slice(&(rows as u64).to_le_bytes());
    h.extend_from_slice(&(f as u32).to_le_bytes());
    h.extend_from_slice(&(c as u32).to_le_bytes());
    for (offset, len, _) in &table {
        h.extend_from_slice(&offset.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
    }
    for (_, _, crc) in &table {
        h.extend_from_slice(&crc.to_le_bytes());
    }
    h.extend_from_slice(&(at as u64).to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h.resize(HEADER_LEN, 0);
    (h, pads)
}

/// Files at least this large have their section checksums computed on two threads.
const PARALLEL_CRC_MIN: usize = 4 << 20;

/// The CRC-32 of every section. A large file's bytes are split in two halves at a section
/// boundary or inside a section (CRC-32 of the parts combined), one half per thread: on the
/// two-core machine this halves the checksum part of reopening a million-record database.
fn section_crcs(bytes: &[u8], sections: &[Range<usize>; SECTIONS]) -> [u32; SECTIONS] {
    let hasher_of = |r: Range<usize>| {
        let mut h = crc32fast::Hasher::new();
        h.update(bytes.get(r).unwrap_or_default());
        h
    };
    let total: usize = sections.iter().map(ExactSizeIterator::len).sum();
    // Each section's bytes as (section, range) pieces; the piece holding the midpoint is cut
    // in two, and the pieces from the cut on go to the second thread.
    let mut pieces: Vec<(usize, Range<usize>)> = Vec::with_capacity(SECTIONS + 1);
    let mut cut = if total < PARALLEL_CRC_MIN { usize::MAX } else { total / 2 };
    let mut second_from = SECTIONS + 1;
    for (i, r) in sections.iter().enumerate() {
        if cut < r.len() {
            pieces.push((i, r.start..r.start + cut));
            second_from = pieces.len();
            pieces.push((i, r.start + cut..r.end));
            cut = usize::MAX;
        } else {
            pieces.push((i, r.clone()));
            cut = cut.saturating_sub(r.len());
        }
    }
    let (head, tail) = pieces.split_at(second_from.min(pieces.len()));
    let hash_all = |ps: &[(usize, Range<usize>)]| -> Vec<(usize, crc32fast::Hasher)> {
        ps.iter().map(|(i, r)| (*i, hasher_of(r.clone()))).collect()
    };
    let (head, tail) = if tail.is_empty() {
        (hash_all(head), Vec::new())
    } else {
        std::thread::scope(|scope| {
            // No thread (resources exhausted): both halves here rather than a panic, which
            // could strike inside a commit (sections are checked on first use).
            match std::thread::Builder::new().spawn_scoped(scope, || hash_all(tail)) {
                Ok(second) => {
                    let first = hash_all(head);
                    // A panic cannot happen; if it did, the missing checksums would read as damage.
                    (first, second.join().unwrap_or_default())
                }
                Err(_) => (hash_all(head), hash_all(tail)),
            }
        })
    };
    let mut hashers: Vec<Option<crc32fast::Hasher>> = (0..SECTIONS).map(|_| None).collect();
    for (i, h) in head.into_iter().chain(tail) {
        if let Some(slot) = hashers.get_mut(i) {
            match slot {
                Some(before) => before.combine(&h),
                None => *slot = Some(h),
            }
        }
    }
    let mut out = [0u32; SECTIONS];
    for (o, h) in out.iter_mut().zip(hashers) {
        *o = h.map_or(0, crc32fast::Hasher::finalize);
    }
    out
}

/// Whether section `i`'s bytes match the CRC-32 the header stores for it (computed on two
/// threads when the section is large). `header` must come from [`validate`] of the same bytes.
pub(crate) fn section_crc_matches(bytes: &[u8], header: &Header, i: usize) -> bool {
    let Some(range) = header.sections.get(i) else { return false };
    let only: [Range<usize>; SECTIONS] =
        std::array::from_fn(|j| if j == i { range.clone() } else { range.start..range.start });
    section_crcs(bytes, &only).get(i).copied() == Some(read_u32(bytes, CRCS_AT + 4 * i))
}

/// Validates the header and the section table against the file length, and (with
/// `check_crc`) every section's checksum. Does not look inside sections.
pub(crate) fn validate(bytes: &[u8], path: &Path, check_crc: bool) -> Result<Header> {
    let corrupt = |at: usize, reason: String| Error::corrupt(path, at as u64, reason);
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(bytes.len(), format!("{} bytes is shorter than the header", bytes.len())));
    }
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(corrupt(0, "bad magic: not a geocrm checkpoint".into()));
    }
    let version = read_u16(bytes, 8);
    if version == 0 {
        // No version 0 was ever written: a damaged version field.
        return Err(corrupt(8, "checkpoint format version 0 does not exist".into()));
    }
    let crc_holds =
        crc32fast::hash(bytes.get(..HEADER_CRC_AT).unwrap_or_default()) == read_u32(bytes, HEADER_CRC_AT);
    // A version above this build's is a newer format only if the header's checksum (which
    // covers it) holds: else a flipped bit (from the file-validation review). Version 1 is
    // refused as before.
    if version != VERSION && (version < VERSION || crc_holds) {
        return Err(Error::UnsupportedVersion { file: path.to_owned(), found: version, supported: VERSION });
    }
    if !crc_holds {
        return Err(corrupt(HEADER_CRC_AT, "header checksum mismatch".into()));
    }
    if read_u16(bytes, 10) != 0 || read_u32(bytes, 12) != SECTIONS as u32 {
        return Err(corrupt(10, "unknown flags or section count".into()));
    }
    let file_len = read_u64(bytes, FILE_LEN_AT);
    if file_len != bytes.len() as u64 {
        return Err(corrupt(FILE_LEN_AT, format!("file is {} bytes, header says {file_len}", bytes.len())));
    }
    let rows = read_u64(bytes, 24);
    if rows > u64::from(u32::MAX) {
        return Err(corrupt(24, format!("row count {rows} is beyond the format's limit")));
    }
    let rows = rows as usize;
    let (f, c) = (read_u32(bytes, 32) as usize, read_u32(bytes, 36) as usize);
    let mut sections: [Range<usize>; SECTIONS] = std::array::from_fn(|_| 0..0);
    if bytes.get(HEADER_CRC_AT + 4..HEADER_LEN).is_some_and(|pad| pad.iter().any(|&b| b != 0)) {
        return Err(corrupt(HEADER_CRC_AT + 4, "reserved header bytes are not zero".into()));
    }
    let mut expected_at = HEADER_LEN;
    let mut prev_end = HEADER_LEN;
    for (i, range) in sections.iter_mut().enumerate() {
        let at = TABLE_AT + 16 * i;
        let (offset, len) = (read_u64(bytes, at), read_u64(bytes, at + 8));
        let end = offset.checked_add(len).filter(|&e| e <= file_len);
        let Some(end) = end.filter(|_| offset == expected_at as u64) else {
            return Err(corrupt(at, format!("section {i} at {offset} (+{len}) is out of place")));
        };
        let fixed = fixed_len(i, rows, f, c).ok_or_else(|| corrupt(24, "section sizes overflow".into()))?;
        if fixed.is_some_and(|n| n as u64 != len) || (i == META && len as usize > MAX_META) {
            return Err(corrupt(at, format!("section {i} is {len} bytes, which does not fit {rows} rows")));
        }
        if bytes.get(prev_end..offset as usize).is_some_and(|pad| pad.iter().any(|&b| b != 0)) {
            return Err(corrupt(prev_end, format!("padding before section {i} is not zero")));
        }
        *range = offset as usize..end as usize;
        prev_end = end as usize;
        expected_at = pad8(end as usize);
    }
    if sections.last().map_or(0, |r| r.end) as u64 != file_len && prev_end as u64 != file_len {
        return Err(corrupt(FILE_LEN_AT, "bytes after the last section".into()));
    }
    if check_crc {
        let crcs = section_crcs(bytes, &sections);
        for (i, (range, crc)) in sections.iter().zip(crcs).enumerate() {
            if crc != read_u32(bytes, CRCS_AT + 4 * i) {
                return Err(corrupt(range.start, format!("section {i} checksum mismatch")));
            }
        }
    }
    Ok(Header { lsn: read_u64(bytes, 16), rows, numbers: f, categories: c, sections })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The two-thread checksums equal one `crc32fast::hash` per section, wherever the
    /// split falls (inside the largest section, at a boundary, with empty sections).
    #[test]
    fn parallel_section_crcs_equal_plain_ones() {
        let bytes: Vec<u8> = (0..9_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let layouts: [[usize; SECTIONS]; 4] = [
            [100, 8_000_000, 10, 10, 10, 10, 10, 10, 10, 10],
            [900_000; SECTIONS],
            [0, 0, 0, 4_500_000, 4_500_000, 0, 0, 0, 0, 0],
            [10, 20, 30, 40, 50, 60, 70, 80, 90, 8_998_000],
        ];
        for lens in layouts {
            let mut at = 0;
            let sections: [Range<usize>; SECTIONS] = std::array::from_fn(|i| {
                let r = at..at + lens[i];
                at = r.end;
                r
            });
            assert!(at >= PARALLEL_CRC_MIN && at <= bytes.len());
            let want: Vec<u32> = sections.iter().map(|r| crc32fast::hash(&bytes[r.clone()])).collect();
            assert_eq!(section_crcs(&bytes, &sections).to_vec(), want, "{lens:?}");
        }
    }
}
