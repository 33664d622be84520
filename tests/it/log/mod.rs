//! The append-only log: round trips, torn tails, damage, power loss and injected faults.

mod crash;
mod damage;
mod faults;
mod garbage;
mod roundtrip;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use geocrm::io::{CrashMode, MemFs};
use geocrm::log::{FramePos, Log, LogConfig, RecoveryReport, ReplayedTxn, TxnReceipt};
use geocrm::Error;
use rand::Rng;

pub const ID: [u8; 16] = *b"geocrm-test-db-1";

pub fn db() -> &'static Path {
    Path::new("/db")
}

pub fn seg_path(number: u64) -> PathBuf {
    db().join("log").join(format!("{number:012}.seg"))
}

/// A transaction as the test wrote it: bodies with their operation counts.
pub type Txn = Vec<(Vec<u8>, u32)>;

/// One to four frames (mostly one), bodies of 0..120 random bytes, 0..=3 operations each
/// and at least one in all.
pub fn random_txn(rng: &mut impl Rng) -> Txn {
    let frames = if rng.gen_bool(0.7) { 1 } else { rng.gen_range(2..=4) };
    let mut txn: Txn = (0..frames)
        .map(|_| {
            let len = rng.gen_range(0..120);
            ((0..len).map(|_| rng.gen()).collect(), rng.gen_range(0..=3))
        })
        .collect();
    if ops_of(&txn) == 0 {
        txn[0].1 = 1;
    }
    txn
}

pub fn append(log: &mut Log, txn: &Txn) -> geocrm::Result<TxnReceipt> {
    let ops: Vec<(&[u8], u32)> = txn.iter().map(|(b, n)| (b.as_slice(), *n)).collect();
    log.append_txn(&ops)
}

pub fn ops_of(txn: &Txn) -> u64 {
    txn.iter().map(|(_, n)| u64::from(*n)).sum()
}

/// The bodies and operation counts of a replayed transaction.
pub fn as_txn(t: &ReplayedTxn) -> Txn {
    t.frames.iter().map(|f| (f.body.clone(), f.op_count)).collect()
}

pub struct Opened {
    pub log: Log,
    pub report: RecoveryReport,
    pub txns: Vec<ReplayedTxn>,
}

pub fn open_with(fs: &MemFs, config: LogConfig) -> geocrm::Result<Opened> {
    let mut txns = Vec::new();
    let (log, report) = Log::open(Arc::new(fs.clone()), db(), ID, config, &mut |t| {
        txns.push(t);
        Ok(())
    })?;
    Ok(Opened { log, report, txns })
}

pub fn open(fs: &MemFs) -> geocrm::Result<Opened> {
    open_with(fs, LogConfig::default())
}

/// Checks that `txns` replay exactly `expected` with contiguous LSNs from 1.
pub fn assert_replayed(txns: &[ReplayedTxn], expected: &[Txn]) {
    let got: Vec<Txn> = txns.iter().map(as_txn).collect();
    assert_eq!(got.len(), expected.len(), "replayed {} transactions, expected {}", got.len(), expected.len());
    assert!(got == expected, "replayed transactions differ from those written");
    let mut lsn = 1;
    for t in txns {
        assert_eq!(t.first_lsn, lsn);
        for f in &t.frames {
            assert_eq!(f.first_lsn, lsn);
            lsn += u64::from(f.op_count);
        }
        assert_eq!(t.next_lsn, lsn);
    }
}

/// Writes `count` random transactions into a fresh MemFs, syncing after each, and returns
/// them with their receipts.
pub fn synced_log(seed: u64, count: usize, config: LogConfig) -> (MemFs, Vec<Txn>, Vec<TxnReceipt>) {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let fs = MemFs::new();
    let mut log = open_with(&fs, config).unwrap().log;
    let (mut txns, mut receipts) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let txn = random_txn(&mut rng);
        receipts.push(append(&mut log, &txn).unwrap());
        log.sync().unwrap();
        txns.push(txn);
    }
    (fs, txns, receipts)
}

/// The byte range `[start, end)` of a transaction's frames.
pub fn span(receipt: &TxnReceipt) -> (u64, u64) {
    let first: &FramePos = &receipt.positions[0];
    let last = receipt.positions.last().unwrap();
    (first.offset, last.offset + u64::from(last.len))
}

/// A segment header with a correct checksum.
pub fn header(number: u64, first_lsn: u64, id: [u8; 16], version: u16) -> Vec<u8> {
    let mut h = b"GEOCRMLG".to_vec();
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&number.to_le_bytes());
    h.extend_from_slice(&first_lsn.to_le_bytes());
    h.extend_from_slice(&id);
    h.extend_from_slice(&crc32fast::hash(&h).to_le_bytes());
    h
}

/// A copy of `fs` (everything in it is synced) with `path` replaced by `bytes`.
pub fn planted(fs: &MemFs, path: &Path, bytes: &[u8]) -> MemFs {
    let copy = fs.crash_image(0, CrashMode::SyncedOnly);
    copy.write_raw(path, bytes);
    copy
}

pub fn assert_corrupt_at(result: geocrm::Result<Opened>, file: &Path, at: u64, what: &str) {
    match result {
        Err(Error::Corrupt { file: f, offset, .. }) if f == file && offset == at => {}
        Err(e) => panic!("{what}: expected corruption of {} at {at}, got {e}", file.display()),
        Ok(o) => panic!("{what}: expected corruption, opened with {:?}", o.report),
    }
}
