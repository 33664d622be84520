//! Arbitrary bytes as a checkpoint file, and as a packed R-tree on its own: opening is an
//! `Err` or a view whose every accessor and query stays in bounds. No panic, hang or huge
//! allocation. Also with structure-only validation (no checksums), where damaged values
//! must still never panic.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use geocrm::index::checkpoint::{Checkpoint, Verify};
use geocrm::index::packed::PackedRTreeRef;
use geocrm::io::MappedBytes;
use geocrm::LatLon;
use libfuzzer_sys::fuzz_target;

fn exercise(c: &Checkpoint) {
    let at = LatLon::new(10.0, 20.0).expect("valid point");
    let _ = c.tree().nearest(at, 5, &mut |_| true);
    c.tree().within_radius(at, 1e6, &mut |_, _| {});
    for row in 0..(c.len() as u32).min(64) {
        let id = c.id(row).to_owned();
        let _ = (c.location(row), c.cell(row), c.pointer(row), c.find(&id));
        let _ = (c.number(0, row), c.category(0, row));
    }
    // The cell order's entries are rows (validated < N): read what a group-by reads.
    for w in c.cell_order().chunks_exact(4).take(64) {
        let row = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let _ = (c.cell(row), c.number(0, row));
    }
}

/// `input` with the embedded tree's header checksum and the checkpoint header's checksum
/// made to match, so mutations of the headers and section table reach the structural checks
/// behind them (structure-only validation skips only the section checksums).
fn with_header_crcs_fixed(input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let tree_at = b.get(56..64).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    if let Some(at) = tree_at.and_then(|a| usize::try_from(a).ok()).filter(|&a| a < b.len()) {
        geocrm_fuzz::fix_header_crc(&mut b[at..], 236);
    }
    geocrm_fuzz::fix_header_crc(&mut b, 248);
    b
}

fuzz_target!(|input: &[u8]| {
    let path = Path::new("fuzz.ckpt");
    for verify in [Verify::Checksums, Verify::StructureOnly, Verify::OnFirstUse] {
        let bytes: MappedBytes = Arc::new(input.to_vec());
        if let Ok(c) = Checkpoint::open(bytes, path, verify) {
            exercise(&c);
            let _ = (c.damage(), c.check_all());
        }
    }
    for verify in [Verify::StructureOnly, Verify::OnFirstUse] {
        let fixed: MappedBytes = Arc::new(with_header_crcs_fixed(input));
        if let Ok(c) = Checkpoint::open(fixed, path, verify) {
            exercise(&c);
            let _ = c.check_id_order();
            let _ = c.number_column(0);
            let _ = (c.check_id_sections(), c.check_all());
        }
    }
    for tree_bytes in [input.to_vec(), {
        let mut b = input.to_vec();
        geocrm_fuzz::fix_header_crc(&mut b, 236);
        b
    }] {
        if let Ok(tree) = PackedRTreeRef::try_new_unchecked_crc(&tree_bytes) {
            let _ = tree.nearest(LatLon::new(-45.0, 170.0).expect("valid point"), 3, &mut |_| true);
        }
    }
});
