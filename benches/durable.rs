//! Build, write and file benchmarks: index build (geocrm bulk load, the packed tree, rstar),
//! durable ingest with an fsync per commit and with group commit from several threads,
//! checkpoint build, reopen + first query, and PII seal/open per field.
//! `GEOCRM_BENCH_RECORDS` sets the size of the loaded database (default 100,000).
//!
//! Run: `cargo bench --bench durable`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use geocrm::crypto::{open, seal, DataKey, FieldContext};
use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::BoundingBox;
use geocrm::index::packed::{hilbert_order, PackedRTree};
use geocrm::query::Scope;
use geocrm::{Database, Durability, Filter, LatLon, Options};
use rstar::RTree;

fn records() -> usize {
    std::env::var("GEOCRM_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// Builds a checkpoint of every live record (after one write, so it is never a no-op).
fn checkpoint(db: &Database) -> geocrm::Result<()> {
    // A checkpoint with nothing new is a no-op: one write first, so each call rewrites all.
    if db.read().collection("bench_touch").is_err() {
        db.create_collection("bench_touch", geocrm::Schema::new())?;
    }
    let mut batch = db.begin_write();
    batch.upsert("bench_touch", geocrm::Record::new("touch", LatLon::ORIGIN))?;
    batch.commit()?;
    db.checkpoint().map(|_| ())
}

fn bulk_load(dir: &std::path::Path, people: &[Customer]) -> Database {
    let db = Database::open(dir, Options::new().durability(Durability::NoSyncBulkLoad)).expect("open");
    db.create_collection("customers", Customer::schema()).expect("create");
    for chunk in people.chunks(100_000) {
        let mut batch = db.begin_write();
        for c in chunk {
            batch.upsert("customers", c.to_record(false)).expect("upsert");
        }
        batch.commit().expect("commit");
    }
    db.sync().expect("sync");
    db
}

fn build(c: &mut Criterion) {
    let n = records();
    let people = customers(n, 42, Distribution::Clustered);
    let locs: Vec<LatLon> = people.iter().map(|p| p.location).collect();
    let mut g = c.benchmark_group(format!("index-build/{n}"));
    g.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_secs(3));
    g.bench_function("geocrm-bulk-load", |b| {
        b.iter_with_large_drop(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = bulk_load(dir.path(), &people);
            (db, dir)
        });
    });
    g.bench_function("geocrm-packed-tree", |b| {
        b.iter(|| {
            let order = hilbert_order(&locs);
            black_box(PackedRTree::build(&order.iter().map(|&i| locs[i as usize]).collect::<Vec<_>>()))
        });
    });
    g.bench_function("rstar-unit-vectors", |b| {
        b.iter(|| black_box(RTree::bulk_load(locs.iter().map(|p| p.to_unit_vector()).collect())));
    });
    g.finish();

    let dir = tempfile::tempdir().expect("temp dir");
    let db = bulk_load(dir.path(), &people);
    let mut g = c.benchmark_group(format!("files/{n}"));
    g.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_secs(2));
    g.bench_function("checkpoint-build", |b| b.iter(|| checkpoint(&db).expect("checkpoint")));
    drop(db);
    let paris = BoundingBox::around(LatLon::new(48.8566, 2.3522).expect("paris"), 25_000.0).expect("bbox");
    g.bench_function("reopen-first-query", |b| {
        b.iter(|| {
            let db = Database::open(dir.path(), Options::new().create_if_missing(false)).expect("reopen");
            let snap = db.read();
            black_box(
                snap.collection("customers").expect("c").count(Scope::BBox(&paris), &Filter::All).expect("n"),
            )
        });
    });
    g.finish();
}

/// Commits batches of 10 from `threads` threads for `iters` commits in all; returns the time.
fn ingest(db: &Database, people: &[Customer], threads: usize, commits: u64, next: &AtomicUsize) -> Duration {
    let left = AtomicUsize::new(commits as usize);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1)).is_ok() {
                    let mut batch = db.begin_write();
                    for _ in 0..10 {
                        let j = next.fetch_add(1, Ordering::Relaxed) % people.len();
                        batch.upsert("customers", people[j].to_record(false)).expect("upsert");
                    }
                    batch.commit().expect("commit");
                }
            });
        }
    });
    started.elapsed()
}

fn durable_ingest(c: &mut Criterion) {
    let people = customers(50_000, 9, Distribution::Clustered);
    let mut g = c.benchmark_group("durable-ingest-10-records-per-commit");
    g.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_secs(3));
    g.throughput(criterion::Throughput::Elements(10));
    let next = AtomicUsize::new(0);
    for (name, durability, threads) in [
        ("fsync-each-commit/1-thread", Durability::FsyncEachCommit, 1),
        ("group-commit/4-threads", Durability::GroupCommit { max_wait: Duration::from_micros(500) }, 4),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Database::open(dir.path(), Options::new().durability(durability)).expect("open");
        db.create_collection("customers", Customer::schema()).expect("create");
        g.bench_function(name, |b| b.iter_custom(|iters| ingest(&db, &people, threads, iters, &next)));
    }
    g.finish();
}

fn pii(c: &mut Criterion) {
    let dk = DataKey::generate();
    let ctx = FieldContext {
        db_id: [7; 16],
        collection: "customers",
        record_id: "C-0000042",
        field: "email",
        key_id: 1,
    };
    let email = "ada.lovelace42@example.com";
    let sealed = seal(&dk, &ctx, email);
    let mut g = c.benchmark_group("pii-per-field");
    g.sample_size(20).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_secs(1));
    g.bench_function("seal", |b| b.iter(|| black_box(seal(&dk, &ctx, email))));
    g.bench_function("open", |b| b.iter(|| black_box(open(&dk, &ctx, &sealed).expect("open"))));
    g.finish();
}

criterion_group!(benches, build, durable_ingest, pii);
criterion_main!(benches);
