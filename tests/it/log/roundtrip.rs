use std::sync::Arc;

use geocrm::io::{FaultPlan, FileSystem, MemFs, OpKind, RealFs};
use geocrm::log::{verify, Log, LogConfig, MAX_BODY_LEN};
use geocrm::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

#[test]
fn a_new_log_has_one_empty_segment() {
    let fs = MemFs::new();
    let o = open(&fs).unwrap();
    assert_eq!((o.report.segments, o.report.transactions, o.report.next_lsn), (1, 0, 1));
    assert_eq!(o.log.segment_paths().unwrap(), vec![seg_path(1)]);
    assert_eq!(fs.file_len(&seg_path(1)), Some(48));
    assert_eq!(fs.synced_len(&seg_path(1)), Some(48));
    assert_eq!(&fs.read_all(&seg_path(1)).unwrap()[..8], b"GEOCRMLG");
    drop(o);
    let again = open(&fs).unwrap();
    assert_eq!((again.report.segments, again.report.next_lsn, again.report.truncated), (1, 1, None));
}

#[test]
fn many_transactions_replay_in_order_across_segments() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let fs = MemFs::new();
    let config = LogConfig::default().with_segment_bytes(1000);
    let mut log = open_with(&fs, config).unwrap().log;
    let mut written = Vec::new();
    let mut receipts = Vec::new();
    for i in 0..300 {
        let txn = random_txn(&mut rng);
        let receipt = append(&mut log, &txn).unwrap();
        assert_eq!(receipt.first_lsn + ops_of(&txn), receipt.next_lsn);
        assert_eq!(receipt.next_lsn, log.next_lsn());
        assert_eq!(receipt.positions.len(), txn.len());
        assert!(
            receipt.positions.iter().all(|p| p.segment == receipt.positions[0].segment),
            "txn spans segments"
        );
        if i % 3 == 0 {
            log.sync().unwrap();
            assert_eq!(log.durable_lsn(), log.next_lsn());
        }
        written.push(txn);
        receipts.push(receipt);
    }
    log.sync().unwrap();
    let segments = log.segment_paths().unwrap();
    assert!(segments.len() > 10, "only {} segments", segments.len());
    assert_eq!(log.current_segment(), segments.len() as u64);
    for (txn, receipt) in written.iter().zip(&receipts) {
        for ((body, _), pos) in txn.iter().zip(&receipt.positions) {
            assert_eq!(&log.read_frame_at(*pos).unwrap(), body);
        }
    }
    drop(log);

    let o = open_with(&fs, config).unwrap();
    assert_replayed(&o.txns, &written);
    for (t, receipt) in o.txns.iter().zip(&receipts) {
        let positions: Vec<_> = t.frames.iter().map(|f| f.pos).collect();
        assert_eq!(positions, receipt.positions);
    }
    let frames: usize = written.iter().map(Vec::len).sum();
    assert_eq!(o.report.transactions, 300);
    assert_eq!(o.report.frames, frames as u64);
    assert_eq!(o.report.segments, segments.len() as u64);
    assert_eq!(o.report.next_lsn, receipts.last().unwrap().next_lsn);
    assert_eq!(o.report.truncated, None);
    assert_eq!(verify(&fs, db(), ID).unwrap(), o.report);
}

#[test]
fn appending_after_reopen_continues_the_lsns() {
    let (fs, mut written, _) = synced_log(2, 10, LogConfig::default().with_segment_bytes(300));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..3 {
        let mut o = open_with(&fs, LogConfig::default().with_segment_bytes(300)).unwrap();
        assert_replayed(&o.txns, &written);
        let mut next = o.report.next_lsn;
        assert_eq!(o.log.next_lsn(), next);
        for _ in 0..5 {
            let txn = random_txn(&mut rng);
            let receipt = append(&mut o.log, &txn).unwrap();
            assert_eq!(receipt.first_lsn, next);
            next = receipt.next_lsn;
            written.push(txn);
        }
        o.log.sync().unwrap();
    }
    assert_replayed(&open(&fs).unwrap().txns, &written);
}

#[test]
fn real_files_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    let config = LogConfig::default().with_segment_bytes(200);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (mut log, _) = Log::open(fs.clone(), tmp.path(), ID, config, &mut |_| Ok(())).unwrap();
    let written: Vec<Txn> = (0..40).map(|_| random_txn(&mut rng)).collect();
    for txn in &written {
        append(&mut log, txn).unwrap();
    }
    log.sync().unwrap();
    assert!(log.segment_paths().unwrap().len() > 3);
    assert!(log.segment_paths().unwrap().iter().all(|p| p.exists()));
    drop(log);
    let mut txns = Vec::new();
    let (_, report) = Log::open(fs, tmp.path(), ID, config, &mut |t| {
        txns.push(t);
        Ok(())
    })
    .unwrap();
    assert_replayed(&txns, &written);
    assert_eq!(report.truncated, None);
}

#[test]
fn bad_arguments_are_rejected_without_poisoning() {
    let fs = MemFs::new();
    let mut log = open(&fs).unwrap().log;
    assert!(matches!(log.append_txn(&[]), Err(Error::InvalidArgument { name: "ops", .. })));
    let huge = vec![0u8; MAX_BODY_LEN + 1];
    let err = log.append_txn(&[(b"small", 1), (&huge, 1)]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "ops", .. }), "{err:?}");
    log.append_txn(&[(b"one", u32::MAX)]).unwrap();
    for _ in 0..3 {
        log.append_txn(&[(b"", u32::MAX)]).unwrap();
    }
    assert!(!log.is_poisoned());
    assert_eq!(fs.file_len(&seg_path(1)), Some(48 + 4 * 29 + 3));
    let err = log.append_txn(&[(b"no", 0), (b"ops", 0)]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "ops", .. }), "{err:?}");
    log.append_txn(&[(b"ok", 0), (b"", 1)]).unwrap();
    log.sync().unwrap();
    let o = open(&fs).unwrap();
    assert_eq!(o.report.transactions, 5);
    assert_eq!(o.report.next_lsn, 2 + 4 * u64::from(u32::MAX));
}

#[test]
fn a_maximal_body_fits_in_one_frame() {
    let fs = MemFs::new();
    let mut log = open(&fs).unwrap().log;
    let big = vec![0xA5u8; MAX_BODY_LEN];
    let receipt = log.append_txn(&[(&big, 1)]).unwrap();
    log.sync().unwrap();
    assert_eq!(log.read_frame_at(receipt.positions[0]).unwrap().len(), MAX_BODY_LEN);
    drop(log);
    let o = open(&fs).unwrap();
    assert_eq!(o.txns[0].frames[0].body, big);
}

#[test]
fn read_frame_at_checks_what_it_reads() {
    let (fs, txns, receipts) = synced_log(5, 5, LogConfig::default());
    let log = open(&fs).unwrap().log;
    let pos = receipts[2].positions[0];
    assert_eq!(log.read_frame_at(pos).unwrap(), txns[2][0].0);
    let mut wrong_len = pos;
    wrong_len.len += 1;
    assert!(matches!(log.read_frame_at(wrong_len), Err(Error::Corrupt { .. })));
    let mut shifted = pos;
    shifted.offset += 1;
    assert!(
        matches!(log.read_frame_at(shifted), Err(Error::Corrupt { offset, .. }) if offset == pos.offset + 1)
    );
    let mut past_end = pos;
    past_end.offset = fs.file_len(&seg_path(1)).unwrap();
    assert!(matches!(log.read_frame_at(past_end), Err(Error::Corrupt { .. })));
    let mut other_segment = pos;
    other_segment.segment = 9;
    assert!(matches!(log.read_frame_at(other_segment), Err(Error::InvalidArgument { .. })));
    let mut bytes = fs.read_all(&seg_path(1)).unwrap();
    bytes[pos.offset as usize + 30] ^= 1;
    fs.write_raw(&seg_path(1), &bytes);
    let err = log.read_frame_at(pos).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { file, offset, .. } if *file == seg_path(1) && *offset == pos.offset)
    );
}

#[test]
fn verify_reports_a_torn_tail_without_cutting_it() {
    let (fs, txns, receipts) = synced_log(6, 4, LogConfig::default());
    let full = fs.read_all(&seg_path(1)).unwrap();
    let cut = span(&receipts[3]).0 as usize + 5;
    fs.write_raw(&seg_path(1), &full[..cut]);
    let report = verify(&fs, db(), ID).unwrap();
    assert_eq!(report.transactions, 3);
    let tail = report.truncated.clone().unwrap();
    assert_eq!((tail.offset, tail.bytes_dropped), (span(&receipts[3]).0, 5));
    assert_eq!(fs.file_len(&seg_path(1)), Some(cut as u64));
    let o = open(&fs).unwrap();
    assert_eq!(o.report, report);
    assert_replayed(&o.txns, &txns[..3]);
    assert_eq!(fs.file_len(&seg_path(1)), Some(tail.offset));
    assert_eq!(verify(&MemFs::new(), db(), ID).unwrap().segments, 0);
}

#[test]
fn streamed_bodies_write_the_same_bytes_as_whole_ones() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let txns: Vec<Txn> = (0..40).map(|_| random_txn(&mut rng)).collect();
    let (whole, streamed) = (MemFs::new(), MemFs::new());
    let mut a = open(&whole).unwrap().log;
    let mut b = open(&streamed).unwrap().log;
    for txn in &txns {
        let ra = append(&mut a, txn).unwrap();
        let lengths: Vec<(usize, u32)> = txn.iter().map(|(body, n)| (body.len(), *n)).collect();
        let rb = b
            .append_txn_with(&lengths, &mut |i, out| {
                out.extend_from_slice(&txn[i].0);
                Ok(())
            })
            .unwrap();
        assert_eq!((ra.first_lsn, ra.next_lsn, &ra.positions), (rb.first_lsn, rb.next_lsn, &rb.positions));
    }
    a.sync().unwrap();
    b.sync().unwrap();
    assert_eq!(whole.read_all(&seg_path(1)).unwrap(), streamed.read_all(&seg_path(1)).unwrap());
}

/// A log on `MemFs` holding one synced transaction (LSN 1).
fn log_with_one_synced_txn() -> (MemFs, Log) {
    let fs = MemFs::new();
    let mut log = open(&fs).unwrap().log;
    append(&mut log, &vec![(b"kept".to_vec(), 1)]).unwrap();
    log.sync().unwrap();
    (fs, log)
}

#[test]
fn a_streamed_body_of_the_wrong_length_poisons_and_is_not_replayed() {
    let (fs, mut log) = log_with_one_synced_txn();
    // The first body is written as announced, the second is one byte short.
    let err = log
        .append_txn_with(&[(3, 1), (4, 1)], &mut |_, out| {
            out.extend_from_slice(b"abc");
            Ok(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("body 1 has 3 bytes where 4 were announced"), "{err}");
    assert!(log.is_poisoned());
    assert!(matches!(append(&mut log, &vec![(b"x".to_vec(), 1)]), Err(Error::Poisoned { .. })));
    // An error from the producer poisons too.
    let fs2 = MemFs::new();
    let mut log2 = open(&fs2).unwrap().log;
    let err =
        log2.append_txn_with(&[(1, 1)], &mut |_, _| Err(Error::invalid_argument("x", "no"))).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }) && log2.is_poisoned());
    drop(log);
    let reopened = open(&fs).unwrap();
    assert_eq!(reopened.report.next_lsn, 2, "only the first transaction survives");
}

/// Three 5 MiB bodies: the first two pass the 8 MiB buffer and are written (MORE set) before
/// the third's producer fails, which poisons the log.
fn fail_a_transaction_after_its_first_frames(log: &mut Log) {
    let body = vec![7u8; 5 << 20];
    let err = log
        .append_txn_with(&[(body.len(), 1); 3], &mut |i, out| {
            if i == 2 {
                return Err(Error::invalid_argument("body", "producer failed"));
            }
            out.extend_from_slice(&body);
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }) && log.is_poisoned());
}

#[test]
fn a_transaction_failing_after_its_first_frames_reached_the_file_is_cut_at_reopen() {
    let (fs, mut log) = log_with_one_synced_txn();
    let synced = fs.file_len(&seg_path(1)).unwrap();
    fail_a_transaction_after_its_first_frames(&mut log);
    // The frames that reached the file are cut at once (they were never acknowledged).
    assert_eq!(fs.file_len(&seg_path(1)), Some(synced), "its frames are cut");
    drop(log);
    let reopened = open(&fs).unwrap();
    assert_eq!(reopened.report.next_lsn, 2, "the unfinished transaction is not replayed");
    assert_eq!(fs.file_len(&seg_path(1)), Some(synced));
}

#[test]
fn a_transaction_failing_after_its_first_frames_reached_the_file_is_cut_at_reopen_if_not_before() {
    let (fs, mut log) = log_with_one_synced_txn();
    let synced = fs.file_len(&seg_path(1)).unwrap();
    // As above, with the cut at the failure failing too.
    fs.set_faults(FaultPlan::new().fail_from(OpKind::Truncate, 0));
    fail_a_transaction_after_its_first_frames(&mut log);
    assert!(fs.file_len(&seg_path(1)).unwrap() > synced + (8 << 20), "frames reached the file");
    drop(log);
    fs.clear_faults();
    let reopened = open(&fs).unwrap();
    assert_eq!(reopened.report.next_lsn, 2, "the unfinished transaction is not replayed");
    assert_eq!(fs.file_len(&seg_path(1)), Some(synced), "and its frames are cut");
}
