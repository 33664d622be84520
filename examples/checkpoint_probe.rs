//! Times checkpoints of an existing database: `checkpoint_probe DIR [REPS]`. Before each, one
//! record (`probe-touch`, at 0° 0°) is written to `customers`, so every checkpoint rewrites
//! its file (as the bench's "checkpoint build" row does; a collection nothing changed keeps
//! its file). `SIDE=1` writes it to a side collection instead: the checkpoint then keeps
//! `customers`' file.
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
    let side = std::env::var("SIDE").is_ok_and(|v| v == "1");
    if side && db.read().collection("probe_touch").is_err() {
        db.create_collection("probe_touch", Schema::new())?;
    }
    let into = if side { "probe_touch" } else { "customers" };
    for _ in 0..reps {
        let mut batch = db.begin_write();
        batch.upsert(into, Record::new("probe-touch", LatLon::ORIGIN))?;
        batch.commit()?;
        let t = Instant::now();
        let report = db.checkpoint()?;
        println!("checkpoint {:.2?} ({} rows, {} bytes)", t.elapsed(), report.rows, report.bytes);
    }
    Ok(())
}
