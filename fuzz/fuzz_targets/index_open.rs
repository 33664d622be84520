//! Arbitrary bytes as each standalone index file — the packed R-tree and the H3 cell index —
//! opened with and without the body checksum (and with the header checksum made to match,
//! so mutated headers reach the structure checks): an `Err`, or a view whose every query
//! stays in bounds. No panic, hang or huge allocation.
#![no_main]

use geocrm::index::h3::H3IndexRef;
use geocrm::index::packed::{Coverage, PackedRTreeRef};
use geocrm::LatLon;
use h3o::{LatLng, Resolution};
use libfuzzer_sys::fuzz_target;

fn tree_queries(tree: PackedRTreeRef<'_>) {
    let at = LatLon::new(-45.0, 170.0).expect("valid point");
    let _ = tree.nearest(at, 3, &mut |_| true);
    let _ = tree.nearest(at, 1000, &mut |row| row % 3 == 0);
    tree.within_radius(at, 2e6, &mut |_, _| {});
    tree.visit_lonlat(&mut |_| Coverage::Partial, &mut |rows, _| {
        let _ = tree.lat_lons(rows).count();
    });
    tree.visit_lonlat(
        &mut |b| if b.west < 0.0 { Coverage::Inside } else { Coverage::Outside },
        &mut |_, _| {},
    );
    for row in [0, 1, 15, 16, 17, u32::MAX] {
        let _ = (tree.location(row), tree.unit(row));
    }
}

fn h3_queries(index: H3IndexRef<'_>) {
    for res in [0u8, 3, 9, 15] {
        let res = Resolution::try_from(res).expect("a resolution");
        for (_, run) in index.groups(res).take(256) {
            let _ = index.rows(run).count();
        }
    }
    let cover: Vec<_> = [(10.0, 20.0), (-60.0, 170.0), (89.0, -179.0)]
        .iter()
        .map(|&(lat, lon)| LatLng::new(lat, lon).expect("valid point").to_cell(Resolution::Two))
        .collect();
    let _ = (index.count_in_cells(&cover), index.positions_in_cells(&cover));
    for p in [0, 1, 2, u32::MAX] {
        let _ = (index.row(p), index.cells().get(p));
    }
}

fuzz_target!(|input: &[u8]| {
    let mut tree_fixed = input.to_vec();
    geocrm_fuzz::fix_header_crc(&mut tree_fixed, 236);
    for bytes in [input, &tree_fixed[..]] {
        if let Ok(tree) = PackedRTreeRef::try_new(bytes) {
            tree_queries(tree);
        }
        if let Ok(tree) = PackedRTreeRef::try_new_unchecked_crc(bytes) {
            tree_queries(tree);
        }
    }
    let mut h3_fixed = input.to_vec();
    geocrm_fuzz::fix_header_crc(&mut h3_fixed, 60);
    for bytes in [input, &h3_fixed[..]] {
        if let Ok(index) = H3IndexRef::try_new(bytes) {
            h3_queries(index);
        }
        if let Ok(index) = H3IndexRef::try_new_unchecked_crc(bytes) {
            h3_queries(index);
        }
    }
});
