//! Query benchmarks: geocrm beside its standalone packed R-tree, an `rstar` tree on unit
//! vectors and (for nearest) a brute-force scan, on the same seeded data and query points:
//! nearest-k (k = 1, 10, 100), filtered nearest-10, radius 2 km, bbox 50 km, polygon counts
//! (a city, China, France with its overseas territories across the globe) and H3 aggregations (res 5 and 8).
//! `GEOCRM_BENCH_RECORDS` sets the size (default 100,000).
//!
//! Run: `cargo bench --bench queries`. The same operations beside kiddo, geo-index and
//! SQLite, with answers checked, are in `geocrm bench` (see BENCHMARKS.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::{haversine_m, metres_to_chord, parse_geojson, BoundingBox, PreparedRegion};
use geocrm::index::packed::{packing_order, PackedRTree};
use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Durability, Filter, LatLon, Options};
use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};

/// Query points per dataset.
const PROBES: usize = 65_536;

const POLYGONS: [(&str, &str); 3] = [
    ("paris", include_str!("../data/polygons/paris_approx.geojson")),
    ("china", include_str!("../data/polygons/china_ne10m.geojson")),
    ("france", include_str!("../data/polygons/france_world.geojson")),
];

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
    // Checkpointed, as a database is once it has been written (an automatic checkpoint
    // follows 100,000 operations) and when it is reopened: queries read the mapped files.
    // Until the forty-third part this bench queried a million rows in the memory table.
    db.checkpoint().expect("checkpoint");
    (dir, db)
}

fn quick<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
}

type Point = GeomWithData<[f64; 3], u32>;

fn queries(c: &mut Criterion) {
    let n = records();
    let regions: Vec<(&str, PreparedRegion)> = POLYGONS
        .iter()
        .map(|&(name, text)| (name, PreparedRegion::new(&parse_geojson(text).expect("fixture"))))
        .collect();
    for dist in [Distribution::Uniform, Distribution::Clustered] {
        let people = customers(n, 42, dist);
        let locs: Vec<LatLon> = people.iter().map(|p| p.location).collect();
        let gold: Vec<bool> = people.iter().map(|p| p.tier == "gold").collect();
        let (_dir, db) = load(&people);
        let snap = db.read();
        let coll = snap.collection("customers").expect("collection");
        let tree = RTree::bulk_load(
            locs.iter().enumerate().map(|(i, p)| Point::new(p.to_unit_vector(), i as u32)).collect(),
        );
        // The row order checkpoints use.
        let order = packing_order(&locs);
        let packed = PackedRTree::build(&order.iter().map(|&i| locs[i as usize]).collect::<Vec<_>>());
        let gold_rows: Vec<bool> = order.iter().map(|&i| gold[i as usize]).collect();
        // Enough query points that what their queries read does not stay in the core's cache,
        // as in `geocrm bench` (a few hundred points cycled over keep it there, which flatters
        // rstar most; BENCHMARKS.md, "Query points").
        let probes: Vec<LatLon> = customers(PROBES, 7, dist).into_iter().map(|p| p.location).collect();
        let boxes: Vec<BoundingBox> =
            probes.iter().map(|&p| BoundingBox::around(p, 25_000.0).expect("bbox")).collect();
        let name = format!("{dist:?}/{n}");
        let gold_filter = Filter::eq("tier", "gold");

        for (k, filtered) in [(1, false), (10, false), (100, false), (10, true)] {
            let label =
                if filtered { format!("nearest{k}-gold/{name}") } else { format!("nearest{k}/{name}") };
            let mut g = c.benchmark_group(label);
            quick(&mut g);
            let f = if filtered { &gold_filter } else { &Filter::All };
            let mut i = 0;
            g.bench_function("geocrm", |b| {
                b.iter(|| {
                    i = (i + 1) % probes.len();
                    black_box(coll.nearest(probes[i], k, f).expect("nearest"))
                });
            });
            g.bench_function("geocrm-borrowed-ids", |b| {
                b.iter(|| {
                    i = (i + 1) % probes.len();
                    black_box(coll.nearest_refs(probes[i], k, f).expect("nearest").len())
                });
            });
            g.bench_function("geocrm-packed-tree", |b| {
                b.iter(|| {
                    i = (i + 1) % probes.len();
                    black_box(packed.nearest(probes[i], k, &mut |row| !filtered || gold_rows[row as usize]))
                });
            });
            g.bench_function("rstar-unit-vectors", |b| {
                b.iter(|| {
                    i = (i + 1) % probes.len();
                    let q = probes[i].to_unit_vector();
                    let it = tree.nearest_neighbor_iter(&q).filter(|p| !filtered || gold[p.data as usize]);
                    black_box(it.take(k).count())
                });
            });
            if k == 10 && !filtered {
                g.sample_size(10);
                g.bench_function("brute-force", |b| {
                    b.iter(|| {
                        i = (i + 1) % probes.len();
                        let mut d: Vec<f64> = locs.iter().map(|&p| haversine_m(probes[i], p)).collect();
                        d.select_nth_unstable_by(9, f64::total_cmp);
                        black_box(d[9])
                    });
                });
            }
            g.finish();
        }

        let mut g = c.benchmark_group(format!("radius-2km-count/{name}"));
        quick(&mut g);
        let mut i = 0;
        g.bench_function("geocrm", |b| {
            b.iter(|| {
                i = (i + 1) % probes.len();
                black_box(
                    coll.count(Scope::Radius { center: probes[i], metres: 2_000.0 }, &Filter::All)
                        .expect("count"),
                )
            });
        });
        g.bench_function("geocrm-packed-tree", |b| {
            b.iter(|| {
                i = (i + 1) % probes.len();
                let mut n = 0;
                packed.within_radius(probes[i], 2_000.0, &mut |_, _| n += 1);
                black_box(n)
            });
        });
        g.bench_function("rstar-unit-vectors", |b| {
            let c2 = metres_to_chord(2_000.001).powi(2);
            b.iter(|| {
                i = (i + 1) % probes.len();
                let at = probes[i];
                let it = tree.locate_within_distance(at.to_unit_vector(), c2);
                black_box(it.filter(|p| haversine_m(at, locs[p.data as usize]) <= 2_000.0).count())
            });
        });
        g.finish();

        let mut g = c.benchmark_group(format!("bbox-50km-count/{name}"));
        quick(&mut g);
        g.bench_function("geocrm", |b| {
            b.iter(|| {
                i = (i + 1) % boxes.len();
                black_box(coll.count(Scope::BBox(&boxes[i]), &Filter::All).expect("count"))
            });
        });
        g.bench_function("rstar-unit-vectors", |b| {
            b.iter(|| {
                i = (i + 1) % boxes.len();
                let bb = &boxes[i];
                let mut ids: Vec<u32> = Vec::new();
                for a in bb.unit_aabbs() {
                    let env = AABB::from_corners(a.min, a.max);
                    let found = tree.locate_in_envelope_intersecting(&env);
                    ids.extend(found.map(|p| p.data).filter(|&id| bb.contains(locs[id as usize])));
                }
                ids.sort_unstable();
                ids.dedup();
                black_box(ids.len())
            });
        });
        g.finish();

        let mut g = c.benchmark_group(format!("polygon-count/{name}"));
        quick(&mut g);
        for (region_name, region) in &regions {
            g.bench_function(format!("geocrm/{region_name}"), |b| {
                b.iter(|| black_box(coll.count(Scope::Region(region), &Filter::All).expect("count")));
            });
            g.bench_function(format!("rstar-unit-vectors/{region_name}"), |b| {
                let aabbs = region.bbox().unit_aabbs();
                b.iter(|| {
                    let mut ids: Vec<u32> = Vec::new();
                    for a in &aabbs {
                        let found = tree.locate_in_envelope_intersecting(&AABB::from_corners(a.min, a.max));
                        ids.extend(found.map(|p| p.data).filter(|&id| region.contains(locs[id as usize])));
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    black_box(ids.len())
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("h3-count-sum/{name}"));
        g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
        for res in [5u8, 8] {
            g.bench_function(format!("geocrm/res{res}"), |b| {
                b.iter(|| {
                    black_box(
                        coll.aggregate(Scope::All, &GroupBy::H3(res), &["lifetime_value"], &Filter::All)
                            .expect("agg"),
                    )
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, queries);
criterion_main!(benches);
