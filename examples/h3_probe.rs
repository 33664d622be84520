//! Times H3 aggregations over a database: `h3_probe DIR [N] [uniform|clustered] [RES] [RUNS]`.
//! Builds DIR (N customers, one checkpoint) when it does not exist yet, then reopens it and
//! prints the median of RUNS count + sum aggregations grouped by H3 cell at RES.
use std::time::{Duration, Instant};

/// The allocator of the `geocrm` tool (and so of `geocrm bench`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Durability, Filter, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("DIR")?;
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dist = match args.next().as_deref() {
        Some("clustered") => Distribution::Clustered,
        _ => Distribution::Uniform,
    };
    let res: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(15);
    if !std::path::Path::new(&dir).exists() {
        let options = Options::new().durability(Durability::NoSyncBulkLoad).checkpoint_after_ops(None);
        let db = Database::open(&dir, options)?;
        db.create_collection("customers", Customer::schema())?;
        let mut batch = db.begin_write();
        let rejected = batch
            .upsert_many("customers", customers(n, 42, dist).iter().map(|c| c.to_record(false)).collect())?;
        assert!(rejected.is_empty(), "{rejected:?}");
        batch.commit()?;
        db.checkpoint()?;
    }
    let db = Database::open(&dir, Options::new().create_if_missing(false))?;
    let read = db.read();
    let c = read.collection("customers")?;
    let mut times: Vec<Duration> = Vec::new();
    let mut groups = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = c.aggregate(Scope::All, &GroupBy::H3(res), &["lifetime_value"], &Filter::All)?;
        times.push(t.elapsed());
        groups = out.len();
    }
    times.sort();
    println!("H3 res {res}: {groups} groups, median {:.2?} (min {:.2?})", times[runs / 2], times[0]);
    Ok(())
}
