//! Resident memory of an open database beside its mapped files, from `/proc/self/status`
//! (Linux): `memory_probe build DIR [N]` writes N (1,000,000) clustered customers and a
//! checkpoint; `memory_probe measure DIR [TAIL]` opens it in a fresh process, runs every query
//! kind (so every mapped section is read), prints anonymous and file-backed resident memory
//! after each step, then writes TAIL (100,000) more records without a checkpoint and prints
//! the anonymous memory per in-memory row. BENCHMARKS.md quotes it.
use std::time::Instant;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::BoundingBox;
use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Durability, Filter, Options};

/// (RssAnon, RssFile) in KiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

fn report(step: &str, base: (u64, u64), rows: usize) {
    let (anon, file) = rss();
    let per = (anon.saturating_sub(base.0) * 1024) as f64 / rows.max(1) as f64;
    println!(
        "{step:<48} anon {:>8.1} MiB (+{:.1} MiB since before open, {per:.1} B/record)  file-backed {:>8.1} MiB",
        anon as f64 / 1024.0,
        anon.saturating_sub(base.0) as f64 / 1024.0,
        file as f64 / 1024.0
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("build|measure")?;
    let dir = args.next().ok_or("DIR")?;
    let n: usize =
        args.next().and_then(|a| a.parse().ok()).unwrap_or(if mode == "build" { 1_000_000 } else { 100_000 });
    if mode == "build" {
        let db = Database::open(
            &dir,
            Options::new().durability(Durability::NoSyncBulkLoad).checkpoint_after_ops(None),
        )?;
        db.create_collection("customers", Customer::schema())?;
        let mut batch = db.begin_write();
        for c in customers(n, 42, Distribution::Clustered) {
            batch.upsert("customers", c.to_record(false))?;
        }
        batch.commit()?;
        db.checkpoint()?;
        println!("built {n} records in {dir}");
        return Ok(());
    }
    let base = rss();
    let t = Instant::now();
    let db = Database::open(&dir, Options::new().create_if_missing(false).checkpoint_after_ops(None))?;
    let rows = db.read().collection("customers")?.len();
    println!("opened {rows} records in {:.2?}", t.elapsed());
    report("after open", base, rows);
    {
        let read = db.read();
        let c = read.collection("customers")?;
        for p in customers(1000, 7, Distribution::Clustered) {
            c.nearest(p.location, 10, &Filter::All)?;
        }
        report("after 1,000 nearest-10", base, rows);
        let france = BoundingBox::new(41.0, -5.5, 51.5, 10.0)?;
        c.count(Scope::BBox(&france), &Filter::All)?;
        c.count(
            Scope::BBox(&BoundingBox::new(-90.0, -180.0, 90.0, 180.0)?),
            &Filter::parse("tier = 'gold'")?,
        )?;
        report("after bbox counts (one over the whole world)", base, rows);
        c.aggregate(Scope::All, &GroupBy::H3(5), &["lifetime_value"], &Filter::All)?;
        c.aggregate(
            Scope::All,
            &GroupBy::Category("tier".into()),
            &["lifetime_value", "visits"],
            &Filter::All,
        )?;
        report("after H3 res-5 and category aggregations", base, rows);
        for p in customers(1000, 8, Distribution::Clustered) {
            if let Some(hit) = c.nearest(p.location, 1, &Filter::All)?.first() {
                c.get(&hit.id)?;
            }
        }
        report("after 1,000 gets (log reads)", base, rows);
    }
    let before_tail = rss();
    // In commits of 1,000, as a live application writes: one huge batch would count its own
    // buffers, which the allocator keeps after the commit.
    let tail = customers(n, 9, Distribution::Clustered);
    for (k, part) in tail.chunks(1000).enumerate() {
        let mut batch = db.begin_write();
        for (i, c) in part.iter().enumerate() {
            let mut c = c.clone();
            c.id = format!("T-{:07}", k * 1000 + i);
            batch.upsert("customers", c.to_record(false))?;
        }
        batch.commit()?;
    }
    let (anon, _) = rss();
    println!(
        "{n} more records in the memory table: +{:.1} MiB anonymous, {:.0} B per in-memory row",
        anon.saturating_sub(before_tail.0) as f64 / 1024.0,
        (anon.saturating_sub(before_tail.0) * 1024) as f64 / n as f64
    );
    Ok(())
}
