//! Nearest-10 of the standalone packed R-tree (rows in `packing_order`) beside kiddo and rstar
//! on the same points, in one process: `knn_compare [uniform|clustered] [N]`.
//! Environment: `NPTS` query points (1024); `ONLY=db|refs|packed` times one alone (`gold` and
//! `packedgold`: geocrm and the packed tree with `tier = 'gold'`), `ROUNDS` (400) times.
//! Without `ONLY`, three rounds time each engine over at least 20 passes and about 20,000
//! queries (`NPTS=1` or `16` keeps every engine's data in the core's cache: the all-hot case).
use std::time::Instant;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use geocrm::dataset::Customer;
use geocrm::dataset::{customers, Distribution};
use geocrm::geo::LatLon;
use geocrm::index::packed::{packing_order, PackedRTree};
use geocrm::{Database, Durability, Filter, Options};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rstar::primitives::GeomWithData;
use rstar::RTree;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(rounds: usize, pts: &[LatLon], mut f: impl FnMut(LatLon) -> usize) -> f64 {
    let mut per = Vec::new();
    let mut sink = 0;
    for _ in 0..rounds {
        for &p in pts {
            let t = Instant::now();
            sink += f(p);
            per.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    std::hint::black_box(sink);
    median(per)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dist = match args.next().as_deref() {
        Some("uniform") => Distribution::Uniform,
        _ => Distribution::Clustered,
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let np: usize = std::env::var("NPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let people = customers(n, 42, dist);
    let locs: Vec<LatLon> = people.iter().map(|c| c.location).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        dir.path(),
        Options::new().durability(Durability::NoSyncBulkLoad).checkpoint_after_ops(None),
    )
    .unwrap();
    db.create_collection("customers", Customer::schema()).unwrap();
    let mut batch = db.begin_write();
    for c in &people {
        batch.upsert("customers", c.to_record(false)).unwrap();
    }
    batch.commit().unwrap();
    db.checkpoint().unwrap();
    let read = db.read();
    let coll = read.collection("customers").unwrap();
    let q: Vec<LatLon> = customers(np, 1_000_045, dist).iter().map(|c| c.location).collect();
    let order = packing_order(&locs);
    let sorted: Vec<LatLon> = order.iter().map(|&i| locs[i as usize]).collect();
    let tree = PackedRTree::build(&sorted);
    let view = tree.view();
    let units: Vec<[f64; 3]> = locs.iter().map(|p| p.to_unit_vector()).collect();
    let kd: ImmutableKdTree<f64, 3> = ImmutableKdTree::new_from_slice(&units).unwrap();
    let rs =
        RTree::bulk_load(units.iter().enumerate().map(|(i, u)| GeomWithData::new(*u, i as u32)).collect());
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    if std::env::var("ONLY").as_deref() == Ok("db") {
        let d = time(rounds, &q, |p| coll.nearest(p, 10, &Filter::All).unwrap().len());
        println!("db {d:.2} µs");
        return;
    }
    if std::env::var("ONLY").as_deref() == Ok("refs") {
        let d = time(rounds, &q, |p| coll.nearest_refs(p, 10, &Filter::All).unwrap().len());
        println!("db refs {d:.2} µs");
        return;
    }
    if std::env::var("ONLY").as_deref() == Ok("gold") {
        let gold = Filter::parse("tier = 'gold'").unwrap();
        let d = time(rounds, &q, |p| coll.nearest_refs(p, 10, &gold).unwrap().len());
        println!("db gold {d:.2} µs");
        return;
    }
    if std::env::var("ONLY").as_deref() == Ok("packedgold") {
        let gold: Vec<bool> = order.iter().map(|&i| people[i as usize].tier == "gold").collect();
        let d = time(rounds, &q, |p| view.nearest(p, 10, &mut |r| gold[r as usize]).len());
        println!("packed gold {d:.2} µs");
        return;
    }
    if std::env::var("ONLY").as_deref() == Ok("packed") {
        let d = time(rounds, &q, |p| view.nearest(p, 10, &mut |_| true).len());
        println!("packed {d:.2} µs");
        return;
    }
    // At least 20 passes over the points, and about as many queries as 20 passes over 1,024.
    let rounds_all = (20 * 1024 / q.len().max(1)).max(20);
    for round in 0..3 {
        let a = time(rounds_all, &q, |p| view.nearest(p, 10, &mut |_| true).len());
        let b = time(rounds_all, &q, |p| {
            kd.query(&p.to_unit_vector())
                .nearest_n::<SquaredEuclidean<f64>>(std::num::NonZeroUsize::new(10).unwrap())
                .execute()
                .len()
        });
        let c = time(rounds_all, &q, |p| rs.nearest_neighbor_iter(&p.to_unit_vector()).take(10).count());
        let d = time(rounds_all, &q, |p| coll.nearest(p, 10, &Filter::All).unwrap().len());
        let e = time(rounds_all, &q, |p| coll.nearest_refs(p, 10, &Filter::All).unwrap().len());
        println!(
            "round {round}: db {d:.2} µs  db refs {e:.2} µs  packed {a:.2} µs  kiddo {b:.2} µs  rstar {c:.2} µs"
        );
    }
}
