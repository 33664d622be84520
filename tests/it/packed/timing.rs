//! Timings on 1,000,000 uniform points. Run in release:
//! `cargo test --release --test it -- --ignored --nocapture packed::timing`

use std::hint::black_box;
use std::time::{Duration, Instant};

use geocrm::index::packed::{hilbert_order, PackedRTree, PackedRTreeRef};
use rstar::RTree;

use super::{rng, uniform};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        out = Some(v);
    }
    (best, out.unwrap())
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn timing_1m() {
    const N: usize = 1_000_000;
    let raw = uniform(&mut rng(99), N);
    let (sort, order) = best_of(3, || hilbert_order(&raw));
    let pts: Vec<_> = order.iter().map(|&i| raw[i as usize]).collect();
    let (build, tree) = best_of(5, || PackedRTree::build(&pts));
    let bytes = tree.as_bytes();
    let (open, _) = best_of(20, || PackedRTreeRef::try_new(black_box(bytes)).unwrap().len());
    let (open_unchecked, _) =
        best_of(20, || PackedRTreeRef::try_new_unchecked_crc(black_box(bytes)).unwrap().len());
    let view = PackedRTreeRef::try_new(bytes).unwrap();

    let units: Vec<[f64; 3]> = pts.iter().map(|p| p.to_unit_vector()).collect();
    let (rstar_build, rtree) = best_of(1, || RTree::bulk_load(units.clone()));

    let queries = uniform(&mut rng(100), 20_000);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut agree = 0;
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let got = view.nearest(*q, 10, &mut |_| true);
        ours.push(t.elapsed());
        let qu = q.to_unit_vector();
        let t = Instant::now();
        let other: Vec<&[f64; 3]> = rtree.nearest_neighbor_iter(&qu).take(10).collect();
        theirs.push(t.elapsed());
        black_box(&other);
        if i < 1000 {
            // Same nearest point (up to distance ties).
            agree += usize::from(other.first().map(|u| **u) == got.first().map(|&(_, r)| units[r as usize]));
        }
    }
    let (ours_med, theirs_med) = (median(ours.clone()), median(theirs.clone()));
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    let mut radius = Vec::new();
    for q in queries.iter().take(2000) {
        let t = Instant::now();
        let mut n = 0;
        view.within_radius(*q, 50_000.0, &mut |_, _| n += 1);
        radius.push(t.elapsed());
        black_box(n);
    }
    println!("packed R-tree, {N} uniform points, file {} bytes", bytes.len());
    println!("  hilbert_order:              {sort:?}");
    println!("  build:                      {build:?} (rstar bulk_load on unit vectors: {rstar_build:?})");
    println!("  try_new (with body CRC):    {open:?}");
    println!("  try_new_unchecked_crc:      {open_unchecked:?}");
    println!("  nearest k=10 median:        {ours_med:?} (mean {:?})", mean(&ours));
    println!("  rstar nn_iter k=10 median:  {theirs_med:?} (mean {:?})", mean(&theirs));
    println!("  speed-up (rstar / ours):    {:.2}x", theirs_med.as_secs_f64() / ours_med.as_secs_f64());
    println!("  within_radius 50 km median: {:?}", median(radius));
    println!("  same first neighbour as rstar in {agree}/1000 queries");
    assert!(agree >= 990);
}
