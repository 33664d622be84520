//! The H3 cell column against h3o.

use geocrm::index::packed::CellColumn;
use h3o::{CellIndex, LatLng, Resolution};
use rand::Rng;

use super::{clustered, rng, uniform};

fn column_cells(res: Resolution, seed: u64) -> Vec<u64> {
    let mut r = rng(seed);
    let mut pts = uniform(&mut r, 1500);
    pts.extend(clustered(&mut r, 1500));
    let mut cells: Vec<u64> =
        pts.iter().map(|p| u64::from(LatLng::new(p.lat(), p.lon()).unwrap().to_cell(res))).collect();
    cells.sort_unstable();
    cells
}

fn bytes_of(cells: &[u64]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_le_bytes()).collect()
}

fn parent(cell: u64, res: u8) -> u64 {
    u64::from(CellIndex::try_from(cell).unwrap().parent(Resolution::try_from(res).unwrap()).unwrap())
}

#[test]
fn ranges_and_runs_match_h3o() {
    for (col_res, seed) in [(Resolution::Fifteen, 31), (Resolution::Nine, 32)] {
        let cells = column_cells(col_res, seed);
        let bytes = bytes_of(&cells);
        let column = CellColumn::try_new(&bytes, cells.len()).unwrap();
        assert_eq!(column.resolution(), u8::from(col_res));
        let mut r = rng(seed);
        for res in 0..=u8::from(col_res) {
            // group_runs equals grouping each row by its h3o parent.
            let mut want: Vec<(u64, std::ops::Range<u32>)> = Vec::new();
            for (i, &c) in cells.iter().enumerate() {
                let p = parent(c, res);
                match want.last_mut() {
                    Some((q, range)) if *q == p => range.end = i as u32 + 1,
                    _ => want.push((p, i as u32..i as u32 + 1)),
                }
            }
            let got: Vec<_> = column.group_runs(res).collect();
            assert_eq!(got, want, "column res {col_res:?}, group res {res}");
            // Each parent's range is exactly its run (so descendants are contiguous).
            for (p, range) in &want {
                assert_eq!(column.range_of_parent(*p, res), range.clone());
            }
            // Any row's own cell names its group too.
            for _ in 0..20 {
                let row = r.gen_range(0..cells.len());
                let range = column.range_of_parent(cells[row], res);
                assert!(range.contains(&(row as u32)));
                assert!(range.clone().all(|i| parent(cells[i as usize], res) == parent(cells[row], res)));
            }
        }
        // A cell with no rows gives an empty range; a finer parent than the column gives none.
        let far = u64::from(LatLng::new(0.0, -30.0).unwrap().to_cell(Resolution::Twelve));
        assert!(column.range_of_parent(far, 12).is_empty() || u8::from(col_res) < 12);
        if u8::from(col_res) < 15 {
            assert!(column.range_of_parent(cells[0], 15).is_empty());
            assert_eq!(column.group_runs(15).count(), 0);
        }
    }
}

#[test]
fn descendants_lie_between_zero_and_seven_fills() {
    let mut r = rng(33);
    for _ in 0..20 {
        let ll = LatLng::new(r.gen_range(-80.0..80.0), r.gen_range(-180.0..180.0)).unwrap();
        for res in [12u8, 13, 14] {
            let p = ll.to_cell(Resolution::try_from(res).unwrap());
            let children: Vec<u64> = p.children(Resolution::Fifteen).map(u64::from).collect();
            let digits = (1u64 << (3 * (15 - u32::from(res)))) - 1;
            let base = (u64::from(p) & !(0xF << 52) & !digits) | (15 << 52);
            assert!(children.iter().all(|&c| base <= c && c <= base | digits));
            let bytes = bytes_of(&children); // already sorted
            let column = CellColumn::try_new(&bytes, children.len()).unwrap();
            assert_eq!(column.range_of_parent(u64::from(p), res), 0..children.len() as u32);
            assert_eq!(
                column.group_runs(res).collect::<Vec<_>>(),
                [(u64::from(p), 0..children.len() as u32)]
            );
        }
    }
}

#[test]
fn bad_columns_are_rejected() {
    let cells = column_cells(Resolution::Fifteen, 34);
    let bytes = bytes_of(&cells);
    assert!(CellColumn::try_new(&bytes, cells.len() + 1).is_err());
    assert!(CellColumn::try_new(&bytes[..bytes.len() - 1], cells.len()).is_err());
    assert!(CellColumn::try_new(&bytes, usize::MAX).is_err());
    let mut unsorted = cells.clone();
    unsorted.swap(10, 2000);
    assert!(CellColumn::try_new(&bytes_of(&unsorted), cells.len()).is_err());
    let mut mixed = cells.clone();
    mixed.push(u64::from(LatLng::new(0.0, 0.0).unwrap().to_cell(Resolution::Fourteen)));
    mixed.sort_unstable();
    assert!(CellColumn::try_new(&bytes_of(&mixed), mixed.len()).is_err());
    let empty = CellColumn::try_new(&[], 0).unwrap();
    assert!(empty.is_empty() && empty.range_of_parent(cells[0], 3).is_empty());
    assert_eq!(empty.group_runs(0).count(), 0);
    assert_eq!(empty.get(0), None);
    // Garbage cells, sorted, never panic.
    let junk: Vec<u64> =
        (0..100u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0x00FF_FFFF_FFFF_FFFF).collect();
    let mut junk = junk;
    junk.sort_unstable();
    junk.iter_mut().for_each(|c| *c |= 0x08F0_0000_0000_0000);
    junk.sort_unstable();
    if let Ok(col) = CellColumn::try_new(&bytes_of(&junk), junk.len()) {
        for res in 0..=16 {
            assert!(col.group_runs(res).map(|(_, r)| r.len()).sum::<usize>() <= junk.len());
            let _ = col.range_of_parent(junk[3], res);
        }
    }
}
