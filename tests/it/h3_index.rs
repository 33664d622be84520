//! The standalone H3 cell index file: answers against a brute force that asks h3o about each
//! point, and byte-level robustness (every truncation, every bit flip, lying headers, random
//! bytes, files and maps).

use std::collections::{BTreeMap, BTreeSet};

use geocrm::index::h3::format::HEADER_LEN;
use geocrm::index::h3::{H3Index, H3IndexRef};
use geocrm::io::{FileSystem, RealFs};
use geocrm::{Error, LatLon};
use h3o::{CellIndex, LatLng, Resolution};
use proptest::prelude::*;
use rand::Rng;

use crate::packed::{clustered, duplicates, edges, ll, rng, uniform};

/// Random, clustered, duplicated and antimeridian/pole points.
fn points(seed: u64) -> Vec<LatLon> {
    let mut r = rng(seed);
    let mut pts = uniform(&mut r, 1200);
    pts.extend(clustered(&mut r, 1200));
    pts.extend(duplicates(&mut r, 300));
    pts.extend(edges(&mut r, 300));
    pts
}

/// Each point's cell at `res`, asked of h3o directly.
fn cells_at(points: &[LatLon], res: Resolution) -> Vec<CellIndex> {
    points.iter().map(|p| LatLng::new(p.lat(), p.lon()).unwrap().to_cell(res)).collect()
}

/// Rows grouped by their cell's ancestor at `res`, in ancestor order, rows ascending.
fn brute_groups(cells: &[CellIndex], res: Resolution) -> BTreeMap<u64, Vec<u32>> {
    let mut groups: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for (row, c) in cells.iter().enumerate() {
        groups.entry(u64::from(c.parent(res).unwrap())).or_default().push(row as u32);
    }
    groups
}

#[test]
fn groups_rows_and_covers_match_h3o_per_point() {
    for (index_res, seed) in [(Resolution::Fifteen, 51), (Resolution::Nine, 52)] {
        let pts = points(seed);
        let cells = cells_at(&pts, index_res);
        let index = H3Index::build(&pts, index_res).unwrap();
        assert_eq!(index, H3Index::from_cells(&cells).unwrap(), "from points or from cells: one file");
        let view = H3IndexRef::try_new(index.as_bytes()).unwrap();
        assert_eq!((view.len(), view.resolution()), (pts.len(), index_res));
        let mut r = rng(seed);
        for res in (0..=u8::from(index_res)).map(|r| Resolution::try_from(r).unwrap()) {
            // A group-by: one run per ancestor, in raw cell order, holding exactly its rows.
            let want = brute_groups(&cells, res);
            let got: BTreeMap<u64, Vec<u32>> = view
                .groups(res)
                .map(|(cell, run)| {
                    let mut rows: Vec<u32> = view.rows(run).collect();
                    rows.sort_unstable();
                    (cell, rows)
                })
                .collect();
            assert_eq!(got, want, "index {index_res}, groups at {res}");
            assert_eq!(view.groups(res).count(), want.len(), "one run per ancestor");
            assert!(want.len() > 1 || res == Resolution::Zero);
            // Rows in one cell: a cell holding rows, a row-less cell nearby, a far one.
            for _ in 0..20 {
                let row = r.gen_range(0..pts.len());
                let cell = cells[row].parent(res).unwrap();
                let mut rows: Vec<u32> = view.rows_in(cell).collect();
                rows.sort_unstable();
                assert_eq!(rows, want[&u64::from(cell)]);
                assert_eq!(view.count_in(cell), want[&u64::from(cell)].len());
            }
            let empty = LatLng::new(-47.0, -140.0).unwrap().to_cell(res);
            assert_eq!(view.count_in(empty), want.get(&u64::from(empty)).map_or(0, Vec::len));
        }
        // A cell finer than the index holds nothing it can find.
        if let Some(finer) = index_res.succ() {
            assert_eq!(view.count_in(cells_at(&pts[..1], finer)[0]), 0);
        }
        // Covers: cells of mixed resolutions, nested and repeated, some empty — each row once.
        for _ in 0..30 {
            let mut cover = Vec::new();
            for _ in 0..r.gen_range(0..12) {
                let res = Resolution::try_from(r.gen_range(0..=u8::from(index_res) + 1).min(15)).unwrap();
                let p = if r.gen_bool(0.8) { pts[r.gen_range(0..pts.len())] } else { uniform(&mut r, 1)[0] };
                cover.push(LatLng::new(p.lat(), p.lon()).unwrap().to_cell(res));
            }
            if let Some(&c) = cover.first() {
                cover.push(c);
                if let Some(child) = c.children(c.resolution().succ().unwrap_or(c.resolution())).next() {
                    cover.push(child);
                }
            }
            let want: BTreeSet<u32> = (0..pts.len() as u32)
                .filter(|&row| {
                    cover.iter().any(|c| {
                        c.resolution() <= index_res && cells[row as usize].parent(c.resolution()) == Some(*c)
                    })
                })
                .collect();
            assert_eq!(view.count_in_cells(&cover), want.len() as u64, "cover {cover:?}");
            let runs = view.positions_in_cells(&cover);
            assert!(runs.windows(2).all(|w| w[0].end < w[1].start), "disjoint, sorted, merged: {runs:?}");
            let got: BTreeSet<u32> = runs.into_iter().flat_map(|run| view.rows(run)).collect();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn an_empty_index_and_a_single_point() {
    let empty = H3Index::build(&[], Resolution::Seven).unwrap();
    assert_eq!(empty.as_bytes().len(), HEADER_LEN);
    let view = H3IndexRef::try_new(empty.as_bytes()).unwrap();
    assert!(view.is_empty());
    assert_eq!(view.resolution(), Resolution::Seven);
    assert_eq!(view.groups(Resolution::Zero).count(), 0);
    assert_eq!(view.count_in_cells(&cells_at(&[ll(1.0, 2.0)], Resolution::Three)), 0);
    assert_eq!(view.row(0), None);
    let one = H3Index::build(&[ll(90.0, 180.0)], Resolution::Fifteen).unwrap();
    let view = one.view();
    assert_eq!(view.groups(Resolution::Two).map(|(_, run)| run.len()).collect::<Vec<_>>(), [1]);
    assert_eq!(view.row(0), Some(0));
    assert_eq!(view.row(1), None);
}

#[test]
fn cells_of_mixed_resolutions_are_refused() {
    let mut cells = cells_at(&[ll(1.0, 2.0), ll(3.0, 4.0)], Resolution::Eight);
    cells.push(cells_at(&[ll(5.0, 6.0)], Resolution::Nine)[0]);
    let err = H3Index::from_cells(&cells).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument { .. }) && err.to_string().contains("cell 2"), "{err}");
}

fn small() -> H3Index {
    H3Index::build(&uniform(&mut rng(53), 40), Resolution::Twelve).unwrap()
}

/// Recomputes both CRCs, so a test can change fields and still reach the structure checks.
fn reseal(bytes: &mut [u8]) {
    let body = crc32fast::hash(&bytes[HEADER_LEN..]);
    bytes[56..60].copy_from_slice(&body.to_le_bytes());
    let header = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&header.to_le_bytes());
}

/// Runs every query; they must not panic whatever the bytes.
fn exercise(view: H3IndexRef<'_>) {
    for res in 0..=15 {
        let res = Resolution::try_from(res).unwrap();
        for (_, run) in view.groups(res) {
            let _ = view.rows(run).count();
        }
    }
    let cover = cells_at(&[ll(10.0, 20.0), ll(-60.0, 170.0), ll(89.0, -179.0)], Resolution::Two);
    let _ = (view.count_in_cells(&cover), view.positions_in_cells(&cover));
    for p in [0, 1, 39, 40, u32::MAX] {
        let _ = (view.row(p), view.cells().get(p));
    }
    let _ = view.rows(0..u32::MAX).count();
}

#[test]
fn every_truncation_and_every_bit_flip_is_rejected() {
    let index = small();
    let bytes = index.as_bytes();
    for cut in 0..bytes.len() {
        assert!(H3IndexRef::try_new(&bytes[..cut]).is_err(), "cut at {cut}");
        assert!(H3IndexRef::try_new_unchecked_crc(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0; 12]);
    assert!(H3IndexRef::try_new(&longer).is_err(), "trailing bytes");
    let mut unchecked_opened = 0;
    for i in 0..bytes.len() * 8 {
        let mut bad = bytes.to_vec();
        bad[i / 8] ^= 1 << (i % 8);
        let err = H3IndexRef::try_new(&bad).expect_err("every bit is covered by a checksum");
        assert!(matches!(err, Error::Corrupt { .. }), "bit {i}: {err}");
        if let Ok(view) = H3IndexRef::try_new_unchecked_crc(&bad) {
            assert!(i / 8 >= HEADER_LEN, "header flip at bit {i} passed the header CRC");
            unchecked_opened += 1;
            exercise(view);
        }
    }
    // Flips in the body that keep the order pass the structure checks: they were exercised.
    assert!(unchecked_opened > 100, "{unchecked_opened}");
}

#[test]
fn errors_say_what_is_wrong() {
    let bytes = small().into_bytes();
    let corrupt_at = |bytes: &[u8]| match H3IndexRef::try_new(bytes) {
        Err(Error::Corrupt { offset, reason, .. }) => (offset, reason),
        other => panic!("{other:?}"),
    };
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(corrupt_at(&bad).0, 0);
    // A newer version under an intact header checksum; a flipped version bit is damage.
    let mut bad = bytes.clone();
    bad[8] = 2;
    assert_eq!(corrupt_at(&bad).0, 60);
    reseal(&mut bad);
    assert!(matches!(H3IndexRef::try_new(&bad), Err(Error::UnsupportedVersion { found: 2, .. })));
    // A header that lies about the row count, the resolution or a section.
    for (at, value) in [(16, 41u8), (10, 11), (10, 16), (24, 65), (48, 0)] {
        let mut bad = bytes.clone();
        bad[at] = value;
        reseal(&mut bad);
        let (offset, reason) = corrupt_at(&bad);
        assert!(offset < HEADER_LEN as u64 || reason.contains("resolution"), "{at}: {offset} {reason}");
    }
    // Cells out of order, a row number past the end, a cell that is not one: found and placed.
    let mut bad = bytes.clone();
    bad.swap(64 + 3 * 8 + 7, 64 + 4 * 8 + 7);
    bad[64 + 3 * 8 + 6] ^= 0x10;
    reseal(&mut bad);
    let (offset, reason) = corrupt_at(&bad);
    assert!((64..64 + 40 * 8).contains(&offset), "{offset} {reason}");
    let mut bad = bytes.clone();
    let rows_at = 64 + 40 * 8;
    bad[rows_at + 4 * 7..rows_at + 4 * 8].copy_from_slice(&40u32.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(corrupt_at(&bad), (rows_at as u64 + 28, "a row number beyond the row count".to_string()));
    // The last cell with base cell 127 (there are 122): still sorted, one resolution.
    let mut bad = bytes.clone();
    let last = 64 + 39 * 8;
    let cell = u64::from_le_bytes(bad[last..last + 8].try_into().unwrap()) | (0x7F << 45);
    bad[last..last + 8].copy_from_slice(&cell.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(corrupt_at(&bad), (last as u64, "not an H3 cell".to_string()));
    // A zero cell first: not of the others' mode and resolution.
    let mut bad = bytes.clone();
    bad[64..72].copy_from_slice(&0u64.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(corrupt_at(&bad).0, 64);
}

#[test]
fn owned_borrowed_file_and_map_forms_agree() {
    let pts = points(54);
    let index = H3Index::build(&pts, Resolution::Fifteen).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cells.h3");
    let mut file = std::fs::File::create(&path).unwrap();
    index.write_to(&mut file).unwrap();
    drop(file);
    let mapped = RealFs.map(&path).unwrap();
    let from_map = H3IndexRef::try_new((*mapped).as_ref()).unwrap();
    let owned = H3Index::try_from_vec(std::fs::read(&path).unwrap()).unwrap();
    let groups = |v: H3IndexRef<'_>| v.groups(Resolution::Four).collect::<Vec<_>>();
    assert_eq!(groups(from_map), groups(index.view()));
    assert_eq!(groups(owned.view()), groups(index.view()));
    assert_eq!(
        from_map.rows(0..pts.len() as u32).collect::<Vec<_>>(),
        index.view().rows(0..pts.len() as u32).collect::<Vec<_>>()
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(view) = H3IndexRef::try_new_unchecked_crc(&bytes) {
            exercise(view);
        }
        let _ = H3IndexRef::try_new(&bytes);
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        rows in 0u32..40,
        res in 0u8..=15,
        body in proptest::collection::vec(any::<u8>(), 0..480),
        sorted in any::<bool>(),
    ) {
        let mut bytes = small().into_bytes()[..HEADER_LEN].to_vec();
        bytes[10] = res;
        bytes[16..24].copy_from_slice(&u64::from(rows).to_le_bytes());
        bytes[32..40].copy_from_slice(&(u64::from(rows) * 8).to_le_bytes());
        bytes[40..48].copy_from_slice(&(64 + u64::from(rows) * 8).to_le_bytes());
        bytes[48..56].copy_from_slice(&(u64::from(rows) * 4).to_le_bytes());
        let mut body = body;
        body.resize(rows as usize * 12, 0);
        if sorted {
            // Sorted real cells at the header's resolution, so the views open.
            let mut r = rng(u64::from(rows));
            let res = Resolution::try_from(res).unwrap();
            let mut cells: Vec<u64> = uniform(&mut r, rows as usize)
                .iter()
                .map(|p| u64::from(LatLng::new(p.lat(), p.lon()).unwrap().to_cell(res)))
                .collect();
            cells.sort_unstable();
            for (i, c) in cells.iter().enumerate() {
                body[i * 8..i * 8 + 8].copy_from_slice(&c.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&body);
        reseal(&mut bytes);
        if let Ok(view) = H3IndexRef::try_new(&bytes) {
            exercise(view);
        }
    }
}
