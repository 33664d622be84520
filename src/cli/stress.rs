//! `geocrm stress-writer`: the child process of the kill -9 suite.
//!
//! Opens (or creates) the database, finds how many numbered commits survived, and continues
//! from there: commit `N` upserts records `wN-0 … wN-k` (k = N mod 3, the first with PII) and
//! moves record `moving` to a location derived from N. After each commit returns it prints
//! `ack N` and flushes, so the parent knows exactly which commits were acknowledged.
//! Automatic checkpoints run every 40 logged operations and every 25th commit compacts the
//! log, so kills also land during checkpoint and compaction steps.

use std::io::Write;
use std::path::Path;

use geocrm::crypto::RawKey;
use geocrm::{Database, Error, LatLon, Options, Record, Result, Schema};

/// The key the suite uses (a test fixture, not a secret).
pub const STRESS_KEY: [u8; 32] = [0x11; 32];

/// Location of record `moving` after commit `n`.
#[must_use]
pub fn moving_location(n: u64) -> (f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    let x = n as f64;
    ((x * 0.37) % 170.0 - 85.0, (x * 1.91) % 350.0 - 175.0)
}

/// Runs the writer.
pub fn run(dir: &Path, commits: Option<u64>) -> Result<()> {
    let db = Database::open(dir, Options::new().key(RawKey::new(STRESS_KEY)).checkpoint_after_ops(Some(40)))?;
    if db.read().collection("stress").is_err() {
        db.create_collection("stress", Schema::new().pii("name").number("n"))?;
    }
    // Commits are numbered from 0; record wN-0 exists exactly when commit N landed.
    let mut n = 0u64;
    {
        let snap = db.read();
        let c = snap.collection("stress")?;
        while c.get(&format!("w{n}-0"))?.is_some() {
            n += 1;
        }
    }
    let mut out = std::io::stdout().lock();
    let limit = commits.map_or(u64::MAX, |c| n.saturating_add(c));
    while n < limit {
        let mut batch = db.begin_write();
        for k in 0..=(n % 3) {
            let mut r = Record::new(format!("w{n}-{k}"), LatLon::new(10.0, 20.0)?).number("n", n as f64);
            if k == 0 {
                r = r.pii("name", format!("stress-person-{n}"));
            }
            batch.upsert("stress", r)?;
        }
        let (lat, lon) = moving_location(n);
        batch.upsert("stress", Record::new("moving", LatLon::new(lat, lon)?).number("n", n as f64))?;
        batch.commit()?;
        writeln!(out, "ack {n}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("write ack", "stdout", e))?;
        if (n + 1).is_multiple_of(25) {
            db.compact()?;
        }
        n += 1;
    }
    Ok(())
}
