//! Times bulk ingest with and without PII: `cargo run --release --example ingest_timing -- N`
//! (`ONLY_PII=1` runs only the PII, no-fsync case, for profiling).
use std::time::Instant;

use geocrm::crypto::RawKey;
use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::{Database, Durability, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let people = customers(n, 42, Distribution::Clustered);
    let only: Option<bool> = std::env::var("ONLY_PII").ok().map(|v| v == "1");
    for (pii, durability) in [
        (false, Durability::NoSyncBulkLoad),
        (true, Durability::NoSyncBulkLoad),
        (true, Durability::FsyncEachCommit),
    ]
    .into_iter()
    .filter(|(p, d)| only.is_none_or(|o| o == *p && *d == Durability::NoSyncBulkLoad))
    {
        let dir = tempfile::tempdir()?;
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32])).durability(durability))?;
        db.create_collection("customers", Customer::schema())?;
        let t = Instant::now();
        let mut batch = db.begin_write();
        for c in &people {
            batch.upsert("customers", c.to_record(pii))?;
        }
        let built = t.elapsed();
        batch.commit()?;
        db.sync()?;
        let total = t.elapsed();
        drop(db);
        let t = Instant::now();
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32])))?;
        let reopen = t.elapsed();
        println!("{n} records pii={pii} {durability:?}: batch built {built:.2?}, total {total:.2?} ({:.0}/s), reopen {reopen:.2?}", n as f64 / total.as_secs_f64());
        drop(db);
    }
    Ok(())
}
