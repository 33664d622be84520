//! Torn tails are cut; damage to acknowledged bytes is reported where it is.

use geocrm::io::{CrashMode, FileSystem, MemFs};
use geocrm::log::{LogConfig, TruncatedTail, TxnReceipt};
use geocrm::Error;
use rand::SeedableRng;

use super::*;

/// The frame of `receipts` that holds byte `at` of segment `segment`.
fn frame_holding(receipts: &[TxnReceipt], segment: u64, at: u64) -> Option<FramePos> {
    receipts
        .iter()
        .flat_map(|r| &r.positions)
        .find(|p| p.segment == segment && (p.offset..p.offset + u64::from(p.len)).contains(&at))
        .copied()
}

#[test]
fn a_cut_anywhere_in_the_tail_keeps_exactly_the_complete_transactions() {
    let config = LogConfig::default().with_segment_bytes(2000);
    let (fs, txns, receipts) = synced_log(10, 40, config);
    let newest = receipts.last().unwrap().positions[0].segment;
    assert!(newest > 1, "the test wants older segments too");
    let path = seg_path(newest);
    let full = fs.read_all(&path).unwrap();
    let in_newest = receipts.iter().filter(|r| r.positions[0].segment == newest).count();
    assert!(in_newest >= 6, "only {in_newest} transactions in the newest segment");
    let from = span(&receipts[txns.len() - 6]).0 as usize;
    let mut extra_rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    for cut in from..=full.len() {
        let img = planted(&fs, &path, &full[..cut]);
        let mut o = open_with(&img, config).unwrap();
        let complete =
            receipts.iter().filter(|r| r.positions[0].segment < newest || span(r).1 <= cut as u64).count();
        assert_replayed(&o.txns, &txns[..complete]);
        let boundary = receipts.get(complete).map_or(full.len() as u64, |r| span(r).0);
        let expected = (boundary != cut as u64).then(|| TruncatedTail {
            file: path.clone(),
            offset: boundary,
            bytes_dropped: cut as u64 - boundary,
        });
        assert_eq!(o.report.truncated, expected, "cut at {cut}");
        assert_eq!(img.file_len(&path), Some(boundary));

        let extra = random_txn(&mut extra_rng);
        append(&mut o.log, &extra).unwrap();
        o.log.sync().unwrap();
        drop(o);
        let again = open_with(&img, config).unwrap();
        let mut expected_txns = txns[..complete].to_vec();
        expected_txns.push(extra);
        assert_replayed(&again.txns, &expected_txns);
        assert_eq!(again.report.truncated, None);
    }
}

#[test]
fn a_torn_multi_frame_transaction_is_dropped_whole() {
    let fs = MemFs::new();
    let mut log = open(&fs).unwrap().log;
    let first: Txn = vec![(b"kept".to_vec(), 1)];
    append(&mut log, &first).unwrap();
    log.sync().unwrap();
    let torn: Txn = vec![(b"a".to_vec(), 1), (b"bb".to_vec(), 2), (b"ccc".to_vec(), 3)];
    let receipt = append(&mut log, &torn).unwrap();
    let full = fs.read_all(&seg_path(1)).unwrap();
    for frames_kept in 1..3 {
        let end =
            receipt.positions[frames_kept - 1].offset + u64::from(receipt.positions[frames_kept - 1].len);
        let img = planted(&fs, &seg_path(1), &full[..end as usize]);
        let o = open(&img).unwrap();
        assert_replayed(&o.txns, std::slice::from_ref(&first));
        let tail = o.report.truncated.unwrap();
        assert_eq!(
            (tail.offset, tail.bytes_dropped),
            (receipt.positions[0].offset, end - receipt.positions[0].offset)
        );
        assert_eq!(o.report.next_lsn, 2);
    }
}

#[test]
fn flipping_any_byte_of_an_acknowledged_frame_is_corruption_at_that_frame() {
    let (fs, txns, receipts) = synced_log(11, 12, LogConfig::default());
    let path = seg_path(1);
    let full = fs.read_all(&path).unwrap();
    // Every transaction but the last is followed by frames written after it was synced.
    let end = span(&receipts[txns.len() - 2]).1 as usize;
    for at in 48..end {
        let mut bad = full.clone();
        bad[at] ^= 0x5A;
        let frame = frame_holding(&receipts, 1, at as u64).unwrap();
        assert_corrupt_at(open(&planted(&fs, &path, &bad)), &path, frame.offset, &format!("byte {at}"));
    }
    let sample = receipts[4].positions[0];
    for bit in 0..u64::from(sample.len) * 8 {
        let mut bad = full.clone();
        bad[(sample.offset + bit / 8) as usize] ^= 1 << (bit % 8);
        assert_corrupt_at(open(&planted(&fs, &path, &bad)), &path, sample.offset, &format!("bit {bit}"));
    }
}

#[test]
fn damage_to_the_last_synced_transaction_is_indistinguishable_from_a_torn_tail() {
    // The documented limitation: nothing after it records that it was durable.
    let (fs, txns, receipts) = synced_log(12, 5, LogConfig::default());
    let mut bad = fs.read_all(&seg_path(1)).unwrap();
    let last = span(&receipts[4]);
    bad[last.0 as usize + 10] ^= 1;
    let o = open(&planted(&fs, &seg_path(1), &bad)).unwrap();
    assert_replayed(&o.txns, &txns[..4]);
    assert_eq!(o.report.truncated.unwrap().offset, last.0);
}

#[test]
fn any_damage_in_a_sealed_segment_is_corruption() {
    let config = LogConfig::default().with_segment_bytes(600);
    let (fs, _, receipts) = synced_log(13, 30, config);
    assert!(receipts.last().unwrap().positions[0].segment >= 3);
    let path = seg_path(1);
    let full = fs.read_all(&path).unwrap();
    for at in 0..full.len() {
        let mut bad = full.clone();
        bad[at] ^= 0xFF;
        let result = open_with(&planted(&fs, &path, &bad), config);
        // The version bytes included: the header's CRC covers them.
        let frame = frame_holding(&receipts, 1, at as u64).map_or(0, |p| p.offset);
        assert_corrupt_at(result, &path, frame, &format!("byte {at}"));
    }
    for cut in 0..full.len() {
        let result = open_with(&planted(&fs, &path, &full[..cut]), config);
        assert!(matches!(result, Err(Error::Corrupt { .. })), "cut at {cut}");
    }
}

#[test]
fn header_problems_are_reported() {
    let (fs, _, _) = synced_log(14, 3, LogConfig::default());
    let path = seg_path(1);
    let full = fs.read_all(&path).unwrap();
    assert_eq!(full[..48], header(1, 1, ID, 2)[..]);
    // The version bytes too: the checksum covers them, so a flipped bit there is damage,
    // not a newer version (it was read as one).
    for at in 0..48 {
        let mut bad = full.clone();
        bad[at] ^= 0x10;
        assert_corrupt_at(open(&planted(&fs, &path, &bad)), &path, 0, &format!("header byte {at}"));
    }
    let mut v3 = header(1, 1, ID, 3);
    v3.extend_from_slice(&full[48..]);
    let err = open(&planted(&fs, &path, &v3)).err().unwrap();
    assert!(matches!(err, Error::UnsupportedVersion { found: 3, supported: 2, .. }), "{err}");
    // Version 1 segments (before the optional trailing fields) still open.
    let mut v1 = header(1, 1, ID, 1);
    v1.extend_from_slice(&full[48..]);
    assert!(open(&planted(&fs, &path, &v1)).is_ok());
    let mut foreign = header(1, 1, [0xEE; 16], 2);
    foreign.extend_from_slice(&full[48..]);
    let err = open(&planted(&fs, &path, &foreign)).err().unwrap();
    assert!(err.to_string().contains("another database"), "{err}");
    assert_corrupt_at(open(&planted(&fs, &path, &full[..30])), &path, 0, "short header");
    assert_corrupt_at(open(&planted(&fs, &path, b"")), &path, 0, "empty file");
    let mut misnamed = header(2, 1, ID, 2);
    misnamed.extend_from_slice(&full[48..]);
    assert_corrupt_at(open(&planted(&fs, &path, &misnamed)), &path, 0, "number mismatch");
}

#[test]
fn segments_must_be_consecutive_and_continue_the_lsns() {
    let config = LogConfig::default().with_segment_bytes(400);
    let (fs, txns, receipts) = synced_log(15, 20, config);
    assert!(receipts.last().unwrap().positions[0].segment >= 3);
    let gap = fs.crash_image(0, CrashMode::SyncedOnly);
    gap.remove_file(&seg_path(2)).unwrap();
    assert_corrupt_at(open_with(&gap, config), &seg_path(3), 0, "missing segment");

    let second = fs.read_all(&seg_path(2)).unwrap();
    let first_lsn = u64::from_le_bytes(second[20..28].try_into().unwrap());
    let mut shifted = header(2, first_lsn + 1, ID, 2);
    shifted.extend_from_slice(&second[48..]);
    assert_corrupt_at(open_with(&planted(&fs, &seg_path(2), &shifted), config), &seg_path(2), 0, "LSN gap");

    // Stray files are ignored.
    let stray = fs.crash_image(0, CrashMode::SyncedOnly);
    stray.write_raw(&db().join("log/notes.txt"), b"hello");
    stray.write_raw(&db().join("log/000000000009.seg.tmp"), b"partial");
    stray.write_raw(&db().join("log/9.seg"), b"junk");
    assert_replayed(&open_with(&stray, config).unwrap().txns, &txns);
}

/// A segment file longer than any segment can be (4 GiB: the writer starts a new one before)
/// is refused unread, naming the file and the limit: a sparse or zero-filled tail of many
/// GiB was read whole, or aborted the process when it could not be allocated (from the
/// durability review).
#[test]
fn a_segment_longer_than_any_can_be_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = geocrm::Database::open(dir.path(), geocrm::Options::new()).unwrap();
    db.create_collection("c", geocrm::Schema::new()).unwrap();
    drop(db);
    let segment = dir.path().join("log").join("000000000001.seg");
    // Sparse: nothing is written or allocated.
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(5 << 30).unwrap();
    for read_only in [false, true] {
        let options = geocrm::Options::new().read_only(read_only);
        match geocrm::Database::open(dir.path(), options) {
            Err(Error::Corrupt { file, offset, reason }) => {
                assert_eq!((file, offset), (segment.clone(), u64::from(u32::MAX)), "{reason}");
                assert!(reason.contains("more than a segment can hold"), "{reason}");
            }
            other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
        }
    }
}

/// `repair` cuts a segment file longer than any segment can be to the limit, and the open
/// after it cuts the zero-filled rest as a torn tail: nothing acknowledged is lost. Ignored
/// by default: the open after the cut reads 4 GiB (`cargo test --release -- --ignored`).
#[test]
#[ignore = "reads a 4 GiB segment"]
fn repair_cuts_a_segment_longer_than_any_can_be() {
    let dir = tempfile::tempdir().unwrap();
    let db = geocrm::Database::open(dir.path(), geocrm::Options::new()).unwrap();
    db.create_collection("c", geocrm::Schema::new()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", geocrm::Record::new("a", geocrm::LatLon::new(1.0, 2.0).unwrap())).unwrap();
    b.commit().unwrap();
    drop(db);
    let segment = dir.path().join("log").join("000000000001.seg");
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(5 << 30).unwrap();
    let report = geocrm::Database::repair(dir.path(), geocrm::Options::new()).unwrap();
    let cut = report.actions.iter().any(
        |a| matches!(a, geocrm::db::RepairAction::LogCut { offset, .. } if *offset == u64::from(u32::MAX)),
    );
    assert!(cut, "{:?}", report.actions);
    let db = geocrm::Database::open(dir.path(), geocrm::Options::new()).unwrap();
    assert!(db.read().collection("c").unwrap().get("a").unwrap().is_some());
}
