//! Times checkpoints of an existing database: `checkpoint_probe DIR [REPS]`. Before each, one
//! record is written to a side collection, so every checkpoint rewrites every file (as the
//! bench's "checkpoint build" row does).
use std::time::Instant;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use geocrm::{Database, LatLon, Options, Record, Schema};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("DIR")?;
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let db = Database::open(&dir, Options::new().create_if_missing(false).checkpoint_after_ops(None))?;
    if db.read().collection("probe_touch").is_err() {
        db.create_collection("probe_touch", Schema::new())?;
    }
    for _ in 0..reps {
        let mut batch = db.begin_write();
        batch.upsert("probe_touch", Record::new("touch", LatLon::ORIGIN))?;
        batch.commit()?;
        let t = Instant::now();
        let report = db.checkpoint()?;
        println!("checkpoint {:.2?} ({} rows, {} bytes)", t.elapsed(), report.rows, report.bytes);
    }
    Ok(())
}
