//! Query benchmarks: geocrm beside an `rstar` tree on unit vectors and a brute-force scan, on
//! the same seeded data. `GEOCRM_BENCH_RECORDS` sets the size (default 100,000).
//!
//! Run: `cargo bench --bench queries`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::{haversine_m, BoundingBox};
use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Durability, Filter, LatLon, Options};
use rstar::RTree;

fn records() -> usize {
    std::env::var("GEOCRM_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn load(people: &[Customer]) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(dir.path(), Options::new().durability(Durability::NoSyncBulkLoad)).expect("open");
    db.create_collection("customers", Customer::schema()).expect("create");
    let mut batch = db.begin_write();
    for c in people {
        batch.upsert("customers", c.to_record(false)).expect("upsert");
    }
    batch.commit().expect("commit");
    (dir, db)
}

fn queries(c: &mut Criterion) {
    let n = records();
    for dist in [Distribution::Uniform, Distribution::Clustered] {
        let people = customers(n, 42, dist);
        let (_dir, db) = load(&people);
        let snap = db.read();
        let coll = snap.collection("customers").expect("collection");
        let tree = RTree::bulk_load(people.iter().map(|p| p.location.to_unit_vector()).collect::<Vec<_>>());
        let probes: Vec<LatLon> = customers(256, 7, dist).into_iter().map(|p| p.location).collect();
        let name = format!("{dist:?}/{n}");
        let mut group = c.benchmark_group(format!("nearest10/{name}"));
        let mut i = 0;
        group.bench_function(BenchmarkId::new("geocrm", ""), |b| {
            b.iter(|| {
                i = (i + 1) % probes.len();
                black_box(coll.nearest(probes[i], 10, &Filter::All).expect("nearest"))
            });
        });
        group.bench_function(BenchmarkId::new("rstar-unit-vectors", ""), |b| {
            b.iter(|| {
                i = (i + 1) % probes.len();
                let q = probes[i].to_unit_vector();
                black_box(tree.nearest_neighbor_iter(&q).take(10).count())
            });
        });
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("brute-force", ""), |b| {
            b.iter(|| {
                i = (i + 1) % probes.len();
                let mut d: Vec<f64> = people.iter().map(|p| haversine_m(probes[i], p.location)).collect();
                d.select_nth_unstable_by(9, f64::total_cmp);
                black_box(d[9])
            });
        });
        group.finish();

        let mut group = c.benchmark_group(format!("area/{name}"));
        let bbox = BoundingBox::around(LatLon::new(48.8566, 2.3522).expect("paris"), 25_000.0).expect("bbox");
        group.bench_function("bbox-50km-count", |b| {
            b.iter(|| black_box(coll.count(Scope::BBox(&bbox), &Filter::All).expect("count")));
        });
        group.bench_function("radius-5km-count", |b| {
            let center = LatLon::new(51.5074, -0.1278).expect("london");
            b.iter(|| {
                black_box(coll.count(Scope::Radius { center, metres: 5_000.0 }, &Filter::All).expect("count"))
            });
        });
        group.sample_size(10);
        group.bench_function("h3-res5-count-sum", |b| {
            b.iter(|| {
                black_box(
                    coll.aggregate(Scope::All, &GroupBy::H3(5), &["lifetime_value"], &Filter::All)
                        .expect("agg"),
                )
            });
        });
        group.finish();
    }
}

criterion_group!(benches, queries);
criterion_main!(benches);
