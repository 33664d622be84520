//! Failing any single write, sync, rename, directory sync or create — or filling the disk —
//! returns an error, poisons the log, and loses nothing that was acknowledged.

use geocrm::io::{CrashMode, FaultPlan, MemFs, OpKind};
use geocrm::log::{Log, LogConfig};
use geocrm::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::crash::check_image;
use super::*;

fn config() -> LogConfig {
    LogConfig::default().with_segment_bytes(300)
}

/// What a scripted workload managed before its first failure.
#[derive(Debug)]
struct Run {
    /// Transactions passed to `append_txn`, including one whose append failed.
    attempted: Vec<Txn>,
    /// How many of them were acknowledged by a successful sync.
    acked: usize,
    failed: bool,
}

/// After a failure: the log is poisoned and refuses work without touching the disk.
fn assert_poisoned(fs: &MemFs, log: &mut Log, error: &Error) {
    assert!(matches!(error, Error::Io { .. }), "first failure should be the I/O error, got {error}");
    assert!(log.is_poisoned());
    let ops = fs.op_count(OpKind::Any);
    assert!(matches!(append(log, &vec![(b"x".to_vec(), 1)]), Err(Error::Poisoned { .. })));
    assert!(matches!(log.sync(), Err(Error::Poisoned { .. })));
    assert_eq!(fs.op_count(OpKind::Any), ops, "a poisoned log must not retry");
}

/// Opens a log, appends 25 transactions with a sync after every second one and at the end,
/// rolling over small segments; stops at the first error.
fn workload(fs: &MemFs) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let mut run = Run { attempted: Vec::new(), acked: 0, failed: true };
    let mut log = match open_with(fs, config()) {
        Ok(o) => o.log,
        Err(e) => {
            assert!(matches!(e, Error::Io { .. }), "{e}");
            return run;
        }
    };
    for i in 0..25 {
        let txn = random_txn(&mut rng);
        let appended = append(&mut log, &txn);
        run.attempted.push(txn);
        let result = appended.and_then(|_| if i % 2 == 1 || i == 24 { log.sync() } else { Ok(()) });
        match result {
            Ok(()) if i % 2 == 1 || i == 24 => run.acked = run.attempted.len(),
            Ok(()) => {}
            Err(e) => {
                assert_poisoned(fs, &mut log, &e);
                return run;
            }
        }
    }
    run.failed = false;
    run
}

/// Every crash image of `fs`, and `fs` itself reopened without faults, recovers every
/// acknowledged transaction and nothing that was not attempted.
fn check_recovery(fs: &MemFs, run: &Run, what: &str) {
    for mode in CrashMode::ALL {
        for seed in 0..3 {
            let what = format!("{what}, {mode:?} image {seed}");
            check_image(&fs.crash_image(seed, mode), config(), &run.attempted, run.acked, &what);
        }
    }
    fs.clear_faults();
    check_image(fs, config(), &run.attempted, run.acked, &format!("{what}, reopened without a crash"));
}

const KINDS: [OpKind; 6] =
    [OpKind::Write, OpKind::Sync, OpKind::Rename, OpKind::SyncDir, OpKind::Create, OpKind::Any];

#[test]
fn the_workload_without_faults_acknowledges_everything() {
    let fs = MemFs::new();
    let run = workload(&fs);
    assert!(!run.failed);
    assert_eq!(run.acked, 25);
    assert!(fs.list_files().len() > 5, "the workload should roll over several segments");
    for kind in KINDS {
        assert!(fs.op_count(kind) > 0, "{kind:?}");
    }
    check_recovery(&fs, &run, "no fault");
}

#[test]
fn failing_the_nth_operation_once_loses_nothing_acknowledged() {
    let clean = MemFs::new();
    workload(&clean);
    for kind in KINDS {
        for n in 0..clean.op_count(kind) {
            let fs = MemFs::new();
            fs.set_faults(FaultPlan::new().fail_once(kind, n));
            let run = workload(&fs);
            assert!(run.failed, "{kind:?} #{n} did not surface as an error");
            check_recovery(&fs, &run, &format!("{kind:?} #{n} failed"));
        }
    }
}

#[test]
fn operations_failing_from_the_nth_on_lose_nothing_acknowledged() {
    let clean = MemFs::new();
    workload(&clean);
    for kind in KINDS {
        let total = clean.op_count(kind);
        for n in [0, total / 3, total / 2, total - 1] {
            let fs = MemFs::new();
            fs.set_faults(FaultPlan::new().fail_from(kind, n));
            let run = workload(&fs);
            assert!(run.failed, "{kind:?} from #{n} did not surface as an error");
            check_recovery(&fs, &run, &format!("{kind:?} from #{n}"));
        }
    }
}

#[test]
fn short_writes_lose_nothing_acknowledged() {
    let clean = MemFs::new();
    workload(&clean);
    for n in 0..clean.op_count(OpKind::Write) {
        for keep in [0, 1, 9, 40, 100_000] {
            let fs = MemFs::new();
            fs.set_faults(FaultPlan::new().short_write(n, keep));
            let run = workload(&fs);
            assert!(run.failed, "short write #{n} did not surface as an error");
            check_recovery(&fs, &run, &format!("write #{n} short at {keep}"));
        }
    }
}

#[test]
fn a_full_disk_loses_nothing_acknowledged() {
    let clean = MemFs::new();
    workload(&clean);
    let total: u64 = clean.list_files().iter().map(|p| clean.file_len(p).unwrap()).sum();
    for budget in (0..total).step_by(13) {
        let fs = MemFs::new();
        fs.set_faults(FaultPlan::new().disk_full_after(budget));
        let run = workload(&fs);
        assert!(run.failed, "a disk full after {budget} of {total} bytes went unnoticed");
        check_recovery(&fs, &run, &format!("disk full after {budget} bytes"));
    }
}
