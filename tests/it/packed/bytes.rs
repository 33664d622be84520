//! Byte-level robustness: truncation, bit flips, lying headers, random bytes, files.

use geocrm::index::packed::format::HEADER_LEN;
use geocrm::index::packed::{Coverage, PackedRTree, PackedRTreeRef};
use geocrm::io::{FileSystem, RealFs};
use geocrm::Error;
use proptest::prelude::*;

use super::{ll, rng, uniform};

fn small() -> PackedRTree {
    PackedRTree::build(&uniform(&mut rng(21), 40))
}

/// Recomputes both CRCs, so a test can change fields and still reach the structure checks.
fn reseal(bytes: &mut [u8]) {
    let body = crc32fast::hash(&bytes[HEADER_LEN..]);
    bytes[232..236].copy_from_slice(&body.to_le_bytes());
    let header = crc32fast::hash(&bytes[..236]);
    bytes[236..240].copy_from_slice(&header.to_le_bytes());
}

/// Runs every query; they must not panic whatever the bytes.
fn exercise(view: PackedRTreeRef<'_>) {
    let at = ll(12.0, 34.0);
    let _ = view.nearest(at, 5, &mut |_| true);
    let _ = view.nearest(at, usize::MAX, &mut |r| r % 2 == 0);
    view.within_radius(at, 5e6, &mut |_, _| {});
    view.within_radius(at, 1e9, &mut |_, _| {});
    view.visit_lonlat(&mut |_| Coverage::Partial, &mut |_, _| {});
    view.visit_lonlat(
        &mut |b| if b.west < 0.0 { Coverage::Inside } else { Coverage::Partial },
        &mut |_, _| {},
    );
    for row in [0, 1, 39, 40, u32::MAX] {
        let _ = (view.location(row), view.unit(row));
    }
    let _ = view.check_invariants();
}

#[test]
fn every_truncation_is_rejected() {
    let tree = small();
    let bytes = tree.as_bytes();
    for cut in 0..bytes.len() {
        assert!(PackedRTreeRef::try_new(&bytes[..cut]).is_err(), "cut at {cut}");
        assert!(PackedRTreeRef::try_new_unchecked_crc(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0; 8]);
    assert!(PackedRTreeRef::try_new(&longer).is_err(), "trailing bytes");
}

#[test]
fn every_bit_flip_is_rejected_and_unchecked_views_never_panic() {
    let tree = small();
    let bytes = tree.as_bytes();
    for i in 0..bytes.len() * 8 {
        let mut bad = bytes.to_vec();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(PackedRTreeRef::try_new(&bad).is_err(), "flip of bit {i} accepted");
        if let Ok(view) = PackedRTreeRef::try_new_unchecked_crc(&bad) {
            assert!(i / 8 >= HEADER_LEN, "header flip at bit {i} passed the header CRC");
            exercise(view);
        }
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let bytes = small().into_bytes();
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(PackedRTreeRef::try_new(&bad), Err(Error::Corrupt { offset: 0, .. })));
    // A newer version under an intact header checksum; a flipped version bit is damage.
    let mut bad = bytes.clone();
    bad[8] = 2;
    assert!(matches!(PackedRTreeRef::try_new(&bad), Err(Error::Corrupt { offset: 236, .. })));
    reseal(&mut bad);
    assert!(matches!(PackedRTreeRef::try_new(&bad), Err(Error::UnsupportedVersion { found: 2, .. })));
    let mut bad = bytes.clone();
    bad[HEADER_LEN + 3] ^= 1;
    assert!(matches!(PackedRTreeRef::try_new(&bad), Err(Error::Corrupt { offset: 240, .. })));
    assert!(PackedRTreeRef::try_new_unchecked_crc(&bad).is_ok());
    // A field changed consistently with both CRCs is still caught by the structure checks.
    let mut bad = bytes.clone();
    bad[48] += 8; // units offset
    reseal(&mut bad);
    assert!(matches!(PackedRTreeRef::try_new(&bad), Err(Error::Corrupt { offset: 48, .. })));
    let mut bad = bytes;
    bad[112] = 1; // level 0 node count
    reseal(&mut bad);
    assert!(matches!(PackedRTreeRef::try_new(&bad), Err(Error::Corrupt { offset: 104, .. })));
}

#[test]
fn huge_row_counts_are_rejected_without_allocating() {
    let mut bytes = small().into_bytes();
    for rows in [1u64 << 60, u64::MAX, u64::from(u32::MAX) + 1, u64::from(u32::MAX), 1 << 31] {
        bytes[16..24].copy_from_slice(&rows.to_le_bytes());
        reseal(&mut bytes);
        let err = PackedRTreeRef::try_new(&bytes).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{rows}: {err}");
    }
}

#[test]
fn owned_borrowed_and_file_forms_agree() {
    let pts = uniform(&mut rng(22), 5000);
    let tree = PackedRTree::build(&pts);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.rt");
    let mut file = std::fs::File::create(&path).unwrap();
    tree.write_to(&mut file).unwrap();
    file.sync_all().unwrap();
    drop(file);
    let read = std::fs::read(&path).unwrap();
    assert_eq!(read, tree.as_bytes());
    let owned = PackedRTree::try_from_vec(read).unwrap();
    assert_eq!(owned, tree);
    let mapped = RealFs.map(&path).unwrap();
    let view = PackedRTreeRef::try_new((*mapped).as_ref()).unwrap();
    let unchecked = PackedRTreeRef::try_new_unchecked_crc(tree.as_bytes()).unwrap();
    for at in uniform(&mut rng(23), 20) {
        let want = tree.nearest(at, 7, &mut |r| r % 3 != 0);
        assert_eq!(view.nearest(at, 7, &mut |r| r % 3 != 0), want);
        assert_eq!(owned.nearest(at, 7, &mut |r| r % 3 != 0), want);
        assert_eq!(unchecked.nearest(at, 7, &mut |r| r % 3 != 0), want);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        tree.within_radius(at, 2e6, &mut |r, d| a.push((r, d)));
        view.within_radius(at, 2e6, &mut |r, d| b.push((r, d)));
        assert_eq!(a, b);
    }
    // Building is deterministic.
    assert_eq!(PackedRTree::build(&pts), tree);
}

#[test]
fn empty_tree_round_trips() {
    let tree = PackedRTree::build(&[]);
    assert_eq!(tree.as_bytes().len(), HEADER_LEN);
    let view = PackedRTreeRef::try_new(tree.as_bytes()).unwrap();
    assert!(view.is_empty());
    exercise(view);
    assert!(view.nearest(ll(0.0, 0.0), 3, &mut |_| true).is_empty());
}

#[test]
fn nearest_reentrant_from_accept() {
    let pts = uniform(&mut rng(24), 300);
    let tree = PackedRTree::build(&pts);
    let view = tree.view();
    let at = ll(1.0, 2.0);
    let got = view.nearest(at, 5, &mut |r| view.nearest(pts[r as usize], 1, &mut |_| true).len() == 1);
    assert_eq!(got, view.nearest(at, 5, &mut |_| true));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(view) = PackedRTreeRef::try_new_unchecked_crc(&bytes) {
            exercise(view);
        }
        prop_assert!(PackedRTreeRef::try_new(&bytes).is_err());
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        rows in 0usize..300,
        seed in any::<u64>(),
        junk in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut bytes = PackedRTree::build(&uniform(&mut rng(seed), rows)).into_bytes();
        let body = bytes.len() - HEADER_LEN;
        for (i, b) in junk.iter().enumerate() {
            if body > 0 {
                let at = HEADER_LEN + (seed as usize).wrapping_add(i * 7919) % body;
                bytes[at] = *b;
            }
        }
        // Also NaN and infinity planted into boxes and points.
        if body >= 8 {
            let at = HEADER_LEN + (seed as usize % (body - 7)) / 4 * 4;
            bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        }
        reseal(&mut bytes);
        let view = PackedRTreeRef::try_new(&bytes).unwrap();
        exercise(view);
    }
}
