//! Timings of the packed R-tree on 1,000,000 uniform points (in `packing_order`, as checkpoints
//! write them), against rstar on unit vectors.
//! `cargo run --release --example rtree_timing [points] [queries]`
//!
//! Prints build, open (with and without the body CRC), nearest k=10 medians for both trees
//! (interleaved, then in separate passes, then with the same 200 queries repeated so the
//! caches are hot), rstar plus the haversine of its 10 results (what a caller needs to get
//! metres), and a 50 km radius query. `HOT=1` runs only a hot nearest loop, for profilers.
//! `ORDER=hilbert` orders the rows along a Hilbert curve instead (what checkpoints did before
//! `packing_order`), `ORDER=h3` by resolution-15 H3 cell, and `ORDER=h3hilbertR` by H3 cell at
//! resolution R then Hilbert: the measurements behind the checkpoint's row order (H3-major
//! orders about double nearest-k latency).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use geocrm::index::packed::{hilbert_order, packing_order, PackedRTree, PackedRTreeRef};
use geocrm::LatLon;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rstar::RTree;

fn uniform(seed: u64, n: usize) -> Vec<LatLon> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let z: f64 = rng.gen_range(-1.0..=1.0);
            LatLon::new(z.asin().to_degrees(), rng.gen_range(-180.0..=180.0)).unwrap()
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let (mut best, mut out) = (Duration::MAX, None);
    for _ in 0..runs {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed());
    }
    (best, out.unwrap())
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().unwrap());
    let n = args.next().unwrap_or(1_000_000);
    let nq = args.next().unwrap_or(20_000);
    let raw = uniform(99, n);
    if std::env::var("HOT").is_ok() {
        let pts: Vec<LatLon> = packing_order(&raw).iter().map(|&i| raw[i as usize]).collect();
        let tree = PackedRTree::build(&pts);
        let q = uniform(100, 200);
        for _ in 0..20 {
            for q in &q {
                for _ in 0..100 {
                    black_box(tree.view().nearest(*q, 10, &mut |_| true));
                }
            }
        }
        return;
    }
    let (sort, order) = if std::env::var("ORDER").is_ok_and(|o| o == "h3") {
        // The order checkpoints use: by resolution-15 H3 cell.
        best_of(1, || {
            let mut keyed: Vec<(u64, u32)> = raw
                .iter()
                .zip(0u32..)
                .map(|(p, i)| {
                    let cell = h3o::LatLng::new(p.lat(), p.lon()).unwrap().to_cell(h3o::Resolution::Fifteen);
                    (u64::from(cell), i)
                })
                .collect();
            keyed.sort_unstable();
            keyed.into_iter().map(|(_, i)| i).collect::<Vec<u32>>()
        })
    } else if let Some(r0) = std::env::var("ORDER")
        .ok()
        .and_then(|o| o.strip_prefix("h3hilbert").map(|r| r.parse::<u8>().unwrap()))
    {
        // Hilbert order within each H3 cell at resolution r0, cells in H3 order.
        best_of(1, || {
            let res = h3o::Resolution::try_from(r0).unwrap();
            let mut order = hilbert_order(&raw);
            order.sort_by_key(|&i| {
                let p = raw[i as usize];
                u64::from(h3o::LatLng::new(p.lat(), p.lon()).unwrap().to_cell(res))
            });
            order
        })
    } else if std::env::var("ORDER").is_ok_and(|o| o == "hilbert") {
        best_of(3, || hilbert_order(&raw))
    } else {
        best_of(3, || packing_order(&raw))
    };
    let pts: Vec<LatLon> = order.iter().map(|&i| raw[i as usize]).collect();
    let (build, tree) = best_of(5, || PackedRTree::build(&pts));
    let bytes = tree.as_bytes();
    let (open, _) = best_of(20, || PackedRTreeRef::try_new(black_box(bytes)).unwrap().len());
    let (open_unchecked, _) =
        best_of(20, || PackedRTreeRef::try_new_unchecked_crc(black_box(bytes)).unwrap().len());
    let view = PackedRTreeRef::try_new(bytes).unwrap();
    let units: Vec<[f64; 3]> = pts.iter().map(|p| p.to_unit_vector()).collect();
    let (rstar_build, rtree) = best_of(1, || RTree::bulk_load(units.clone()));

    let queries = uniform(100, nq);
    let (mut ours, mut theirs) = (Vec::with_capacity(nq), Vec::with_capacity(nq));
    let (mut with_hav, mut hav_sink) = (Vec::with_capacity(nq), 0.0);
    for q in &queries {
        // What a caller of rstar pays to get the same answer in metres.
        let qu = q.to_unit_vector();
        let t = Instant::now();
        for u in rtree.nearest_neighbor_iter(&qu).take(10) {
            let (lat, lon) = (u[2].asin().to_degrees(), u[1].atan2(u[0]).to_degrees());
            hav_sink += geocrm::geo::haversine_m(*q, LatLon::new(lat, lon).unwrap());
        }
        with_hav.push(t.elapsed());
    }
    black_box(hav_sink);
    for q in &queries {
        let t = Instant::now();
        black_box(view.nearest(*q, 10, &mut |_| true));
        ours.push(t.elapsed());
        let qu = q.to_unit_vector();
        let t = Instant::now();
        black_box(rtree.nearest_neighbor_iter(&qu).take(10).collect::<Vec<_>>());
        theirs.push(t.elapsed());
    }
    hot(view, &rtree, &queries);
    // Also in separate passes (each structure keeps the cache to itself).
    let (mut ours_pass, mut theirs_pass) = (Vec::with_capacity(nq), Vec::with_capacity(nq));
    for q in &queries {
        let t = Instant::now();
        black_box(view.nearest(*q, 10, &mut |_| true));
        ours_pass.push(t.elapsed());
    }
    for q in &queries {
        let qu = q.to_unit_vector();
        let t = Instant::now();
        black_box(rtree.nearest_neighbor_iter(&qu).take(10).collect::<Vec<_>>());
        theirs_pass.push(t.elapsed());
    }
    let mut radius = Vec::new();
    for q in queries.iter().take(2000) {
        let t = Instant::now();
        let mut count = 0;
        view.within_radius(*q, 50_000.0, &mut |_, _| count += 1);
        radius.push(t.elapsed());
        black_box(count);
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    let (om, tm) = (median(ours.clone()), median(theirs.clone()));
    println!("packed R-tree, {n} uniform points, file {} bytes", bytes.len());
    println!("  row order:                  {sort:?}");
    println!("  build:                      {build:?} (rstar bulk_load on unit vectors: {rstar_build:?})");
    println!("  try_new (with body CRC):    {open:?}");
    println!("  try_new_unchecked_crc:      {open_unchecked:?}");
    println!("  nearest k=10 median:        {om:?} (mean {:?})", mean(&ours));
    println!("  rstar nn_iter k=10 median:  {tm:?} (mean {:?})", mean(&theirs));
    println!("  speed-up (rstar / ours):    {:.2}x", tm.as_secs_f64() / om.as_secs_f64());
    println!("  rstar + haversine of the 10: {:?}", median(with_hav));
    let (op, tp) = (median(ours_pass), median(theirs_pass));
    println!(
        "  separate passes: ours {op:?}, rstar {tp:?}, speed-up {:.2}x",
        tp.as_secs_f64() / op.as_secs_f64()
    );
    println!("  within_radius 50 km median: {:?}", median(radius));
}
#[allow(dead_code)]
fn hot(view: PackedRTreeRef<'_>, rtree: &RTree<[f64; 3]>, queries: &[LatLon]) {
    let t = Instant::now();
    for q in queries.iter().take(200) {
        for _ in 0..100 {
            black_box(view.nearest(*q, 10, &mut |_| true));
        }
    }
    let ours = t.elapsed() / 20_000;
    let t = Instant::now();
    for q in queries.iter().take(200) {
        let qu = q.to_unit_vector();
        for _ in 0..100 {
            black_box(rtree.nearest_neighbor_iter(&qu).take(10).collect::<Vec<_>>());
        }
    }
    println!("hot: ours {ours:?} rstar {:?}", t.elapsed() / 20_000);
}
