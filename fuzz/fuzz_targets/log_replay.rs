//! Arbitrary bytes as the log's segment files (see `geocrm_fuzz::log_replay_segments` for
//! the layout) → `log::verify` and `Log::open`. Neither may panic, hang or allocate hugely;
//! `Err` is fine. When both succeed they must agree, and the opened log must accept and
//! replay a new transaction.
#![no_main]

use std::sync::Arc;

use geocrm::io::{FileSystem, MemFs};
use geocrm::log::{self, segment_path, Log, LogConfig, LOG_DIR};
use geocrm_fuzz::{db_dir, log_replay_segments, DB_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let fs = Arc::new(MemFs::new());
    let log_dir = db_dir().join(LOG_DIR);
    fs.create_dir_all(&log_dir).expect("mkdir");
    let segments = log_replay_segments(input);
    for (i, bytes) in segments.iter().enumerate() {
        fs.write_raw(&segment_path(&log_dir, i as u64 + 1), bytes);
    }

    let verified = log::verify(&*fs, db_dir(), DB_ID);
    let mut replayed = 0u64;
    let opened = Log::open(fs.clone(), db_dir(), DB_ID, LogConfig::default(), &mut |txn| {
        assert!(txn.next_lsn > txn.first_lsn, "a replayed transaction advances the LSN");
        assert!(!txn.frames.is_empty());
        replayed += 1;
        Ok(())
    });
    let (mut log, report) = match (verified, opened) {
        (Ok(v), Ok((log, report))) => {
            assert_eq!(v, report, "verify must report what open does");
            (log, report)
        }
        (Err(_), Err(_)) => return,
        (v, o) => panic!("verify and open disagree: {v:?} vs {:?}", o.map(|(_, r)| r)),
    };
    assert_eq!(report.transactions, replayed);

    // After open the log is clean: verify sees no tail, and a new transaction replays.
    let clean = log::verify(&*fs, db_dir(), DB_ID).expect("verify after open");
    assert!(clean.truncated.is_none());
    assert_eq!(clean.next_lsn, report.next_lsn);
    let Ok(receipt) = log.append_txn(&[(b"fuzz", 1)]) else {
        // Only an exhausted LSN space may refuse it.
        assert!(report.next_lsn.checked_add(1).is_none());
        return;
    };
    log.sync().expect("sync");
    assert_eq!(log.read_frame_at(receipt.positions[0]).expect("read back"), b"fuzz");
    drop(log);
    let mut last = None;
    let (_, again) = Log::open(fs, db_dir(), DB_ID, LogConfig::default(), &mut |txn| {
        last = Some(txn);
        Ok(())
    })
    .expect("reopen after append");
    assert_eq!(again.next_lsn, receipt.next_lsn);
    assert!(again.truncated.is_none());
    let last = last.expect("the appended transaction replays");
    assert_eq!(last.first_lsn, receipt.first_lsn);
    assert_eq!(last.frames[0].body, b"fuzz");
});
