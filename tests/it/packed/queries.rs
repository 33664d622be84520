//! Every query against plain loops over all points.

use std::collections::HashSet;

use geocrm::geo::{haversine_m, EARTH_RADIUS_M};
use geocrm::index::packed::{hilbert_order, packing_order, Coverage, LonLatBox, PackedRTree, PackedRTreeRef};
use geocrm::LatLon;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{clustered, duplicates, edges, ll, rng, uniform};

fn brute_nearest(pts: &[LatLon], at: LatLon, k: usize, accept: &dyn Fn(u32) -> bool) -> Vec<(f64, u32)> {
    let mut all: Vec<(f64, u32)> =
        (0..pts.len() as u32).filter(|&r| accept(r)).map(|r| (haversine_m(at, pts[r as usize]), r)).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    if k == 0 {
        return Vec::new();
    }
    if let Some(&(kth, _)) = all.get(k - 1) {
        all.retain(|&(d, _)| d <= kth);
    }
    all
}

fn antipode(p: LatLon) -> LatLon {
    ll(-p.lat(), if p.lon() > 0.0 { p.lon() - 180.0 } else { p.lon() + 180.0 })
}

/// Query points: random, on data points, their antipodes, poles, the antimeridian.
fn queries(rng: &mut ChaCha8Rng, pts: &[LatLon]) -> Vec<LatLon> {
    let mut q = uniform(rng, 6);
    q.extend([ll(90.0, 0.0), ll(-90.0, 123.0), ll(0.0, 180.0), ll(0.0, -180.0), ll(45.0, 179.9999)]);
    for _ in 0..4.min(pts.len()) {
        let p = pts[rng.gen_range(0..pts.len())];
        q.push(p);
        q.push(antipode(p));
    }
    q
}

/// Points within a few millimetres to a few metres of one place.
fn jittered(rng: &mut ChaCha8Rng, n: usize) -> Vec<LatLon> {
    (0..n)
        .map(|i| {
            let scale = [1e-9, 1e-7, 1e-6, 1e-5][i % 4];
            ll(48.85 + rng.gen_range(-scale..scale), 2.35 + rng.gen_range(-scale..scale))
        })
        .collect()
}

fn datasets() -> Vec<(&'static str, Vec<LatLon>)> {
    let mut r = rng(7);
    let hilbert = |pts: Vec<LatLon>| hilbert_order(&pts).iter().map(|&i| pts[i as usize]).collect::<Vec<_>>();
    let packed = |pts: Vec<LatLon>| packing_order(&pts).iter().map(|&i| pts[i as usize]).collect::<Vec<_>>();
    let mut v = vec![
        ("uniform unordered", uniform(&mut r, 3000)),
        ("uniform", hilbert(uniform(&mut r, 3000))),
        ("uniform packed", packed(uniform(&mut r, 3000))),
        ("clustered", hilbert(clustered(&mut r, 2000))),
        ("clustered packed", packed(clustered(&mut r, 2000))),
        ("clustered unordered", clustered(&mut r, 1000)),
        ("duplicates", hilbert(duplicates(&mut r, 700))),
        ("duplicates packed", packed(duplicates(&mut r, 700))),
        ("edges", hilbert(edges(&mut r, 600))),
        ("edges packed", packed(edges(&mut r, 600))),
        // Points closer together than f32 unit vectors resolve (0.6 m): their order by
        // the f32 chord is not their order by distance, which the refine must restore.
        ("sub-f32 spacing", hilbert(jittered(&mut r, 600))),
        ("sub-f32 spacing packed", packed(jittered(&mut r, 600))),
    ];
    for n in [0, 1, 2, 15, 16, 17, 255, 256, 257] {
        v.push(("tiny", uniform(&mut r, n)));
    }
    v
}

#[test]
fn nearest_matches_brute_force() {
    let mut r = rng(11);
    for (name, pts) in datasets() {
        let tree = PackedRTree::build(&pts);
        let view = tree.view();
        view.check_invariants().unwrap();
        for at in queries(&mut r, &pts) {
            for k in [1, 2, 10, 100, pts.len(), pts.len() + 5] {
                let modulus = r.gen_range(1..5u32);
                let accept = |row: u32| row.wrapping_mul(2_654_435_761).is_multiple_of(modulus);
                let want = brute_nearest(&pts, at, k, &accept);
                let mut calls = HashSet::new();
                let got = view.nearest(at, k, &mut |row| {
                    assert!(calls.insert(row), "accept called twice for row {row}");
                    accept(row)
                });
                assert_eq!(got, want, "{name}: n={} at={at:?} k={k} modulus={modulus}", pts.len());
                assert_eq!(tree.nearest(at, k, &mut |row| accept(row)), got, "owned and borrowed differ");
            }
            assert!(view.nearest(at, 0, &mut |_| true).is_empty());
        }
    }
}

#[test]
fn nearest_returns_every_tie() {
    let mut pts = vec![ll(1.0, 1.0); 300];
    pts.push(ll(1.0, 1.001));
    let tree = PackedRTree::build(&pts);
    let got = tree.nearest(ll(1.0, 1.0), 10, &mut |_| true);
    assert_eq!(got.len(), 300);
    assert!(got.iter().enumerate().all(|(i, &(d, row))| d == 0.0 && row == i as u32));
    let got = tree.nearest(ll(1.0, 1.0), 301, &mut |r| r != 5);
    assert_eq!(got.len(), 300);
    assert_eq!(got.last().unwrap().1, 300);
}

fn brute_radius(pts: &[LatLon], at: LatLon, metres: f64) -> Vec<(u32, f64)> {
    (0..pts.len() as u32)
        .map(|r| (r, haversine_m(at, pts[r as usize])))
        .filter(|&(_, d)| d <= metres)
        .collect()
}

#[test]
fn within_radius_matches_brute_force() {
    let mut r = rng(12);
    let half = std::f64::consts::PI * EARTH_RADIUS_M;
    for (name, pts) in datasets() {
        let tree = PackedRTree::build(&pts);
        for at in queries(&mut r, &pts) {
            let mut radii =
                vec![0.0, 1.0, 1000.0, 100_000.0, 1e6, 1e7, half - 1.0, half, 3e7, -1.0, f64::NAN];
            // Radii exactly at a point's distance: that point must be included.
            for _ in 0..3.min(pts.len()) {
                radii.push(haversine_m(at, pts[r.gen_range(0..pts.len())]));
            }
            for metres in radii {
                let want = brute_radius(&pts, at, metres);
                let mut got = Vec::new();
                tree.view().within_radius(at, metres, &mut |row, d| got.push((row, d)));
                assert_eq!(got, want, "{name}: n={} at={at:?} metres={metres}", pts.len());
                let mut owned = Vec::new();
                tree.within_radius(at, metres, &mut |row, d| owned.push((row, d)));
                assert_eq!(owned, got);
            }
        }
    }
}

fn overlaps(b: LonLatBox, q: LonLatBox) -> bool {
    b.west <= q.east && b.east >= q.west && b.south <= q.north && b.north >= q.south
}

fn contains(q: LonLatBox, b: LonLatBox) -> bool {
    q.west <= b.west && b.east <= q.east && q.south <= b.south && b.north <= q.north
}

/// Rows `visit_lonlat` selects for a box query (the caller's side of the contract), and
/// checks the ranges are in order and disjoint.
fn lonlat_query(view: PackedRTreeRef<'_>, pts: &[LatLon], parts: &[LonLatBox]) -> Vec<u32> {
    let inside = |p: LatLon| {
        parts
            .iter()
            .any(|q| q.west <= p.lon() && p.lon() <= q.east && q.south <= p.lat() && p.lat() <= q.north)
    };
    let mut rows = Vec::new();
    let mut last_end = 0;
    view.visit_lonlat(
        &mut |b| {
            if parts.iter().any(|&q| contains(q, b)) {
                Coverage::Inside
            } else if parts.iter().any(|&q| overlaps(b, q)) {
                Coverage::Partial
            } else {
                Coverage::Outside
            }
        },
        &mut |range, all| {
            assert!(range.start >= last_end && range.start < range.end, "{range:?} after {last_end}");
            last_end = range.end;
            for row in range {
                if all || inside(pts[row as usize]) {
                    rows.push(row);
                }
            }
        },
    );
    rows
}

#[test]
fn visit_lonlat_matches_brute_force() {
    let mut r = rng(13);
    for (name, pts) in datasets() {
        let tree = PackedRTree::build(&pts);
        let mut boxes: Vec<Vec<LonLatBox>> = vec![
            vec![LonLatBox { west: -180.0, south: -90.0, east: 180.0, north: 90.0 }],
            vec![LonLatBox { west: 179.0, south: -90.0, east: 180.0, north: 90.0 }],
            // Across the antimeridian: the caller splits it in two.
            vec![
                LonLatBox { west: 170.0, south: -10.0, east: 180.0, north: 10.0 },
                LonLatBox { west: -180.0, south: -10.0, east: -170.0, north: 10.0 },
            ],
            vec![LonLatBox { west: -180.0, south: 89.0, east: 180.0, north: 90.0 }],
            vec![LonLatBox { west: 10.0, south: 20.0, east: 10.0, north: 20.0 }],
        ];
        for _ in 0..30 {
            let (a, b): (f64, f64) = (r.gen_range(-180.0..=180.0), r.gen_range(-180.0..=180.0));
            let (c, d): (f64, f64) = (r.gen_range(-90.0..=90.0), r.gen_range(-90.0..=90.0));
            boxes.push(vec![LonLatBox { west: a.min(b), south: c.min(d), east: a.max(b), north: c.max(d) }]);
        }
        for parts in boxes {
            let want: Vec<u32> = (0..pts.len() as u32)
                .filter(|&i| {
                    let p = pts[i as usize];
                    parts.iter().any(|q| {
                        q.west <= p.lon() && p.lon() <= q.east && q.south <= p.lat() && p.lat() <= q.north
                    })
                })
                .collect();
            assert_eq!(lonlat_query(tree.view(), &pts, &parts), want, "{name}: n={} {parts:?}", pts.len());
        }
    }
}

#[test]
fn visit_lonlat_trivial_classifiers() {
    let pts = uniform(&mut rng(14), 1000);
    let tree = PackedRTree::build(&pts);
    let mut seen = Vec::new();
    tree.visit_lonlat(&mut |_| Coverage::Inside, &mut |r, all| seen.push((r, all)));
    assert_eq!(seen, [(0..1000, true)]);
    seen.clear();
    tree.visit_lonlat(&mut |_| Coverage::Partial, &mut |r, all| seen.push((r, all)));
    assert_eq!(seen, [(0..1000, false)], "adjacent leaf ranges are merged");
    seen.clear();
    tree.visit_lonlat(&mut |_| Coverage::Outside, &mut |r, all| seen.push((r, all)));
    assert!(seen.is_empty());
    let mut calls = 0;
    tree.visit_lonlat(
        &mut |_| {
            calls += 1;
            if calls % 2 == 0 {
                Coverage::Inside
            } else {
                Coverage::Partial
            }
        },
        &mut |r, all| seen.push((r, all)),
    );
    let covered: u32 = seen.iter().map(|(r, _)| r.len() as u32).sum();
    assert!(covered <= 1000 && seen.windows(2).all(|w| w[0].0.end <= w[1].0.start));
}

#[test]
fn locations_are_exact_and_units_close() {
    let pts = edges(&mut rng(15), 500);
    let tree = PackedRTree::build(&pts);
    let view = tree.view();
    assert_eq!(view.len(), 500);
    for (i, p) in pts.iter().enumerate() {
        assert_eq!(view.location(i as u32), Some(*p));
        let u = p.to_unit_vector();
        let f = view.unit(i as u32).unwrap();
        assert!((0..3).all(|j| (u[j] - f64::from(f[j])).abs() < 1e-7));
    }
    assert_eq!(view.location(500), None);
    assert_eq!(view.unit(500), None);
    assert_eq!(view.location(u32::MAX), None);
    // The bulk reader agrees with `location` for every range, clamped at the end.
    let exact = |r: std::ops::Range<u32>| -> Vec<(f64, f64)> {
        r.filter_map(|i| view.location(i)).map(|p| (p.lat(), p.lon())).collect()
    };
    for (a, b) in [(0, 500), (0, 16), (7, 33), (499, 500), (490, 600), (500, 501), (0, u32::MAX)] {
        assert_eq!(view.lat_lons(a..b).collect::<Vec<_>>(), exact(a..b), "{a}..{b}");
    }
    #[allow(clippy::reversed_empty_ranges)] // on purpose: a reversed range reads nothing
    let reversed = 40..3;
    assert_eq!(view.lat_lons(reversed).count(), 0);
    assert_eq!(view.lat_lons(u32::MAX..u32::MAX).count(), 0);
}
