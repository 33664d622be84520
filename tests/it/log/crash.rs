//! Power loss at random points never loses an acknowledged transaction and never makes
//! the log unopenable.

use geocrm::io::{CrashMode, MemFs};
use geocrm::log::LogConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Opens a crash image and checks it replays a prefix of `written` that holds the first
/// `acked` transactions; then checks the recovered log takes new transactions.
pub fn check_image(img: &MemFs, config: LogConfig, written: &[Txn], acked: usize, what: &str) {
    let o = open_with(img, config).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    let n = o.txns.len();
    assert!(n >= acked, "{what}: {n} transactions replayed, {acked} were acknowledged");
    assert!(n <= written.len(), "{what}: {n} transactions replayed, {} written", written.len());
    assert_replayed(&o.txns, &written[..n]);
    let mut log = o.log;
    let extra: Txn = vec![(b"after recovery".to_vec(), 1)];
    append(&mut log, &extra).unwrap();
    log.sync().unwrap();
    drop(log);
    let again = open_with(img, config).unwrap_or_else(|e| panic!("{what}: second reopen failed: {e}"));
    let mut expected = written[..n].to_vec();
    expected.push(extra);
    assert_replayed(&again.txns, &expected);
    assert_eq!(again.report.truncated, None, "{what}");
}

/// Writes random transactions, syncing after most, and checks crash images taken at random
/// points in every mode. Returns the number of images checked.
fn power_loss_run(seed: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = LogConfig::default().with_segment_bytes(rng.gen_range(100..1500));
    let fs = MemFs::new();
    let mut log = open_with(&fs, config).unwrap().log;
    let (mut written, mut acked, mut images) = (Vec::new(), 0, 0);
    for step in 0..60 {
        let txn = random_txn(&mut rng);
        append(&mut log, &txn).unwrap();
        written.push(txn);
        if rng.gen_bool(0.6) {
            log.sync().unwrap();
            acked = written.len();
        }
        if rng.gen_bool(0.5) {
            for mode in CrashMode::ALL {
                let image_seed = rng.gen();
                let what = format!("run {seed}, step {step}, {mode:?} image {image_seed}");
                check_image(&fs.crash_image(image_seed, mode), config, &written, acked, &what);
                images += 1;
            }
        }
    }
    images
}

#[test]
fn power_loss_at_random_points_keeps_every_acknowledged_transaction() {
    let images: usize = (0..200).map(power_loss_run).sum();
    assert!(images > 12_000, "only {images} images");
}

#[test]
#[ignore = "long: run with --ignored"]
fn power_loss_at_random_points_long() {
    let images: usize = (1000..3000).map(power_loss_run).sum();
    assert!(images > 100_000, "only {images} images");
}
