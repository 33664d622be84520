//! Polygon and MultiPolygon: validation errors and `contains` against the brute force.

use std::time::Instant;

use geocrm::geo::{MultiPolygon, Polygon};
use geocrm::{Error, LatLon};
use proptest::prelude::*;
use rand::Rng;

use super::support::*;

fn reason(e: Error) -> String {
    match e {
        Error::InvalidPolygon { reason } => reason,
        other => panic!("expected InvalidPolygon, got {other:?}"),
    }
}

/// The error of `r`, without printing a (possibly huge) accepted polygon.
fn err_of<T>(r: Result<T, Error>, what: &str) -> Error {
    match r {
        Ok(_) => panic!("{what}"),
        Err(e) => e,
    }
}

fn invalid(exterior: Ring, holes: Vec<Ring>) -> String {
    let r = Polygon::new(exterior, holes);
    assert!(matches!(r, Err(Error::InvalidPolygon { .. })), "{r:?}");
    reason(r.unwrap_err())
}

#[test]
fn validation_errors_name_the_place() {
    let msg = invalid(vec![[0.0, 0.0], [1.0, f64::NAN], [1.0, 1.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("ring 0") && msg.contains("vertex 1") && msg.contains("finite"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [1.0, 0.0], [f64::INFINITY, 1.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("vertex 2"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [190.0, 0.0], [1.0, 1.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("longitude 190") && msg.contains("vertex 1"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [1.0, 0.0], [1.0, -95.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("latitude -95") && msg.contains("vertex 2"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("3 positions") && msg.contains("at least 4"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], vec![]);
    assert!(msg.contains("not closed") && msg.contains("repeat the first"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("only 2 distinct corners once"), "{msg}");
    // One point repeated is one corner (it said "only 0").
    let msg = invalid(vec![[3.0, 4.0]; 4], vec![]);
    assert!(msg.contains("only 1 distinct corner once"), "{msg}");
    let msg = invalid(vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0]], vec![]);
    assert!(msg.contains("zero area"), "{msg}");
    // Bow-tie.
    let msg = invalid(vec![[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]], vec![]);
    assert!(
        msg.contains("ring 0") && msg.contains("crosses or touches itself") && msg.contains("vertex 0"),
        "{msg}"
    );
    // Figure-eight through a repeated vertex.
    let eight = vec![[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [2.0, 2.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]];
    assert!(invalid(eight, vec![]).contains("itself"));
    // Spike (an edge doubling back).
    let spike = vec![[0.0, 0.0], [2.0, 0.0], [3.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 0.0]];
    assert!(invalid(spike, vec![]).contains("spike"));
    // Holes.
    let outside = invalid(rect(0.0, 0.0, 10.0, 10.0), vec![rect(20.0, 20.0, 21.0, 21.0)]);
    assert!(outside.contains("ring 1 (hole 0)") && outside.contains("outside the exterior"), "{outside}");
    let crossing = invalid(rect(0.0, 0.0, 10.0, 10.0), vec![rect(5.0, 5.0, 15.0, 6.0)]);
    assert!(crossing.contains("hole 0") && crossing.contains("ring 0"), "{crossing}");
    let touching = invalid(rect(0.0, 0.0, 10.0, 10.0), vec![rect(0.0, 2.0, 3.0, 3.0)]);
    // (The hole's edge runs along the exterior's from [0, 2] to [0, 3].)
    assert!(
        touching.contains("ring 0 (the exterior) and ring 1 (hole 0) meet at more than one point"),
        "{touching}"
    );
    let nested =
        invalid(rect(0.0, 0.0, 10.0, 10.0), vec![rect(1.0, 1.0, 9.0, 9.0), rect(2.0, 2.0, 3.0, 3.0)]);
    assert!(nested.contains("ring 2 (hole 1) lies inside ring 1 (hole 0)"), "{nested}");
    let holes_cross =
        invalid(rect(0.0, 0.0, 10.0, 10.0), vec![rect(1.0, 1.0, 5.0, 5.0), rect(4.0, 4.0, 6.0, 6.0)]);
    assert!(holes_cross.contains("ring 1 (hole 0) touches or crosses ring 2 (hole 1)"), "{holes_cross}");
    let bad_hole =
        invalid(rect(0.0, 0.0, 10.0, 10.0), vec![vec![[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.5]]]);
    assert!(bad_hole.contains("ring 1") && bad_hole.contains("not closed"), "{bad_hole}");
    let r = MultiPolygon::new(vec![]);
    assert!(matches!(r, Err(Error::InvalidPolygon { .. })));
}

#[test]
fn duplicates_are_dropped_and_rings_kept_closed() {
    let p = Polygon::new(
        vec![[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
        vec![],
    )
    .unwrap();
    assert_eq!(p.exterior(), &[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]);
    assert_eq!(p.edge_count(), 3);
}

#[test]
fn boundary_vertices_and_holes() {
    let p = Polygon::new(rect(0.0, 0.0, 10.0, 10.0), vec![rect(4.0, 4.0, 6.0, 6.0)]).unwrap();
    let cases = [
        ([0.0, 0.0], true),
        ([10.0, 10.0], true),
        ([5.0, 0.0], true),
        ([10.0, 7.5], true),
        ([5.0, 5.0], false),
        ([4.0, 4.0], true),
        ([5.0, 6.0], true),
        ([4.5, 4.0], true),
        ([3.999, 5.0], true),
        ([10.000001, 5.0], false),
        ([-0.0, 5.0], true),
        ([-1.0, 4.0], false),
    ];
    for (pt, want) in cases {
        assert_eq!(p.contains(ll(pt)), want, "{pt:?}");
        assert_eq!(brute_covers(p.rings(), pt), want, "brute disagrees with the table at {pt:?}");
    }
    assert_eq!((p.bbox().west(), p.bbox().north()), (0.0, 10.0));
}

#[test]
fn polygons_at_the_edges_of_the_world() {
    let whole = Polygon::new(rect(-180.0, -90.0, 180.0, 90.0), vec![]).unwrap();
    for pt in [[-180.0, -90.0], [180.0, 90.0], [0.0, 0.0], [180.0, 0.0], [-180.0, 45.0], [12.3, 90.0]] {
        assert!(whole.contains(ll(pt)), "{pt:?}");
    }
    let east =
        Polygon::new(vec![[170.0, 80.0], [180.0, 80.0], [180.0, 90.0], [170.0, 80.0]], vec![]).unwrap();
    assert!(east.contains(ll([180.0, 85.0])) && east.contains(ll([180.0, 90.0])));
    assert!(!east.contains(ll([-180.0, 85.0])), "planar semantics: -180 is not 180");
    let tiny = Polygon::new(rect(2.0, 48.0, 2.0 + 1e-7, 48.0 + 1e-7), vec![]).unwrap();
    assert!(tiny.contains(ll([2.0 + 5e-8, 48.0 + 5e-8])));
    assert!(!tiny.contains(ll([2.0 + 2e-7, 48.0 + 5e-8])));
    let mut r = rng(7);
    for _ in 0..2000 {
        let pt = [r.gen_range(1.9999999..2.0000002), r.gen_range(47.9999999..48.0000002)];
        assert_eq!(tiny.contains(ll(pt)), brute_covers(tiny.rings(), pt), "{pt:?}");
    }
}

fn check_against_brute(mp: &MultiPolygon, seed: u64, random: usize, on_edges: bool) {
    let polys = rings_of_multi(mp);
    let b = mp.bbox();
    let bounds = [b.west() - 1.0, b.south() - 1.0, b.east() + 1.0, b.north() + 1.0];
    let mut r = rng(seed);
    let all: Vec<Ring> = polys.iter().flatten().cloned().collect();
    for pt in probe_points(&mut r, &all, bounds, random, on_edges) {
        assert_eq!(mp.contains(ll(pt)), brute_multi(&polys, pt), "point {pt:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn star_polygons_match_brute_force(cx in -170.0f64..170.0, cy in -70.0f64..70.0, n in 3usize..60,
                                       rad in 0.01f64..10.0, with_hole: bool, seed in any::<u64>()) {
        let mut r = rng(seed);
        // With 8+ corners no angular gap exceeds 86°, so the exterior keeps out of radius
        // 0.5 * cos(43°) * rad > 0.36 * rad around the centre, where the hole lives.
        let n = if with_hole { n.max(8) } else { n };
        let ext = star(&mut r, [cx, cy], n, rad * 0.5, rad);
        let holes = if with_hole { vec![star(&mut r, [cx, cy], n, rad * 0.05, rad * 0.3)] } else { vec![] };
        let p = Polygon::new(ext, holes).unwrap();
        check_against_brute(&MultiPolygon::new(vec![p]).unwrap(), seed, 300, false);
    }

    #[test]
    fn dyadic_stars_match_brute_force_on_snapped_points(cx in -150i32..150, cy in -60i32..60, n in 3usize..24,
                                                        seed in any::<u64>()) {
        let mut r = rng(seed);
        let c = [cx as f64, cy as f64];
        let mut polys = Vec::new();
        let ext = dyadic(&star(&mut r, c, n, 8.0, 15.0));
        let hole = dyadic(&star(&mut r, c, n, 2.0, 5.0));
        if let Ok(p) = Polygon::new(ext, vec![hole]) { polys.push(p); }
        let other = dyadic(&star(&mut r, [c[0] + 20.0, c[1]], n, 3.0, 8.0));
        if let Ok(p) = Polygon::new(other, vec![]) { polys.push(p); }
        prop_assume!(!polys.is_empty());
        check_against_brute(&MultiPolygon::new(polys).unwrap(), seed, 200, true);
    }
}

#[test]
fn big_rings_validate_fast_and_catch_one_crossing() {
    let mut r = rng(3);
    let ring = country(&mut r, [10.0, 45.0], 50_000, 5.0);
    let t = Instant::now();
    let p = Polygon::new(ring.clone(), vec![]).unwrap();
    let took = t.elapsed();
    eprintln!("validating 50k vertices took {took:?}");
    assert!(took.as_secs_f64() < 2.0, "validating 50k vertices took {took:?}");
    assert_eq!(p.edge_count(), 50_000);
    // Swap two neighbouring vertices of a smooth ring: a bow-tie.
    let mut bad: Ring = (0..50_000)
        .map(|i| {
            let t = i as f64 / 50_000.0 * std::f64::consts::TAU;
            let k = 5.0 * (1.0 + 0.3 * (3.0 * t).sin());
            [10.0 + k * t.cos(), 45.0 + k * t.sin()]
        })
        .collect();
    bad.push(bad[0]);
    assert!(Polygon::new(bad.clone(), vec![]).is_ok());
    bad.swap(20_000, 20_001);
    let msg = reason(err_of(Polygon::new(bad, vec![]), "bow-tie accepted"));
    assert!(msg.contains("itself") && msg.contains("vertex 20000"), "{msg}");
    // A vertex pulled across the far side of the polygon.
    let mut bad = ring;
    bad[30_000] = [20.0, 45.0];
    assert!(
        reason(err_of(Polygon::new(bad, vec![]), "crossing accepted")).contains("crosses or touches itself")
    );
}

#[test]
fn geo_types_interop() {
    use geo_types::{coord, LineString};
    let ext = LineString::from(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]); // closed by geo-types
    let hole = LineString::from(vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 1.0)]);
    let gp = geo_types::Polygon::new(ext, vec![hole]);
    let p = Polygon::try_from(gp.clone()).unwrap();
    assert_eq!(p.holes().len(), 1);
    assert!(p.contains(LatLon::new(3.0, 3.0).unwrap()) && !p.contains(LatLon::new(1.2, 1.5).unwrap()));
    let far = geo_types::Polygon::new(
        LineString::from(vec![
            coord! {x: 10.0, y: 10.0},
            coord! {x: 11.0, y: 10.0},
            coord! {x: 11.0, y: 11.0},
        ]),
        vec![],
    );
    let mp = MultiPolygon::try_from(geo_types::MultiPolygon(vec![gp, far])).unwrap();
    assert_eq!(mp.polygons().len(), 2);
    assert_eq!((mp.bbox().south(), mp.bbox().east()), (0.0, 11.0));
    let bad = geo_types::Polygon::new(LineString::from(vec![(0.0, 0.0), (200.0, 0.0), (1.0, 1.0)]), vec![]);
    let e = MultiPolygon::try_from(geo_types::MultiPolygon(vec![bad])).unwrap_err();
    assert!(reason(e).starts_with("polygon 0: ring 0"));
    let empty = geo_types::Polygon::new(LineString::new(vec![]), vec![]);
    assert!(matches!(Polygon::try_from(empty), Err(Error::InvalidPolygon { .. })));
}

#[test]
fn multipolygon_is_any_and_bbox_is_union() {
    let a = Polygon::new(rect(0.0, 0.0, 1.0, 1.0), vec![]).unwrap();
    let b = Polygon::new(rect(0.5, 0.5, 3.0, 2.0), vec![]).unwrap();
    let c = Polygon::new(rect(-50.0, -10.0, -49.0, -9.0), vec![]).unwrap();
    let mp = MultiPolygon::new(vec![a, b, c]).unwrap();
    let bb = mp.bbox();
    assert_eq!((bb.south(), bb.west(), bb.north(), bb.east()), (-10.0, -50.0, 2.0, 3.0));
    assert!(mp.contains(ll([0.75, 0.75])) && mp.contains(ll([2.0, 1.5])) && mp.contains(ll([-49.5, -9.5])));
    assert!(!mp.contains(ll([2.0, 0.25])));
    check_against_brute(&mp, 11, 2000, true);
}

#[test]
fn many_holes_validate_fast() {
    let mut r = rng(21);
    let ext = country(&mut r, [0.0, 0.0], 20_000, 40.0);
    // A 40 x 40 lattice of small square lakes well inside the smallest radius (~24°).
    let holes: Vec<Ring> = (0..1600)
        .map(|k| {
            let (x, y) = (-15.0 + (k % 40) as f64 * 0.75, -15.0 + (k / 40) as f64 * 0.75);
            rect(x, y, x + 0.5, y + 0.5)
        })
        .collect();
    let t = Instant::now();
    let p = Polygon::new(ext, holes).unwrap();
    let took = t.elapsed();
    eprintln!("20k-vertex exterior with 1600 holes took {took:?}");
    assert!(took.as_secs_f64() < 2.0, "20k-vertex exterior with 1600 holes took {took:?}");
    assert!(
        !p.contains(ll([-14.75, -14.75]))
            && p.contains(ll([-14.4, -14.4]))
            && p.contains(ll([-14.5, -14.75]))
    );
    let rings = rings_of(&p);
    let mut pts: Vec<[f64; 2]> = rings[1..].iter().flatten().copied().collect();
    pts.extend((0..2000).map(|_| [r.gen_range(-20.0..20.0), r.gen_range(-20.0..20.0)]));
    for pt in pts {
        assert_eq!(p.contains(ll(pt)), brute_covers(&rings, pt), "{pt:?}");
    }
}

/// Points on the 2⁻³⁰ grid (|coordinate| ≤ 180) as integers: exact arithmetic in `i128`.
fn grid_int(x: f64) -> i128 {
    let v = x * (1u64 << 30) as f64;
    assert!(v.fract() == 0.0 && v.abs() < 2f64.powi(40), "{x} is not on the grid");
    v as i128
}

/// The sign of the orientation of `p` against `a → b`, computed exactly.
fn exact_orient(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> i128 {
    let [ax, ay, bx, by, px, py] = [a[0], a[1], b[0], b[1], p[0], p[1]].map(grid_int);
    ((bx - ax) * (py - ay) - (by - ay) * (px - ax)).signum()
}

/// Even-odd point-in-ring with the boundary included, in exact integer arithmetic.
fn exact_covers(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        let o = exact_orient(a, b, p);
        let in_box = p[0] >= a[0].min(b[0])
            && p[0] <= a[0].max(b[0])
            && p[1] >= a[1].min(b[1])
            && p[1] <= a[1].max(b[1]);
        if o == 0 && in_box {
            return true;
        }
        // The ray to +x crosses the edge (half-open in y) when p is left of the upward edge.
        if (a[1] > p[1]) != (b[1] > p[1]) && (o > 0) == (b[1] > a[1]) {
            inside = !inside;
        }
    }
    inside
}

#[test]
fn points_exactly_on_edges_are_covered_and_near_ones_decided_exactly() {
    // The product formula rounds the orientation of this on-edge point (t = 3/4 along the
    // first edge) to -1.8e-12, which once put it outside.
    let ring = vec![[-86.3, -84.7], [45.89, 74.26], [-86.3, 74.26], [-86.3, -84.7]];
    let poly = Polygon::new(ring.clone(), vec![]).unwrap();
    let on_edge = LatLon::new(34.52, 12.842500000000001).unwrap();
    assert!(poly.contains(on_edge), "a point exactly on an edge is covered");
    let region = geocrm::geo::PreparedRegion::new(&MultiPolygon::new(vec![poly]).unwrap());
    assert!(region.contains(on_edge));

    // Random triangles on the 2⁻²⁰ grid; points on their edges (fractions k/1024 along
    // them, so on the 2⁻³⁰ grid and exactly on the segment), a few grid steps off them, and
    // anywhere: the polygon and its prepared form agree with exact integer arithmetic.
    let mut rng = rng(77);
    let step = 2f64.powi(-30);
    let vertex = |rng: &mut rand_chacha::ChaCha8Rng, lo: f64, hi: f64| {
        (rng.gen_range(lo..hi) * 1_048_576.0).round() / 1_048_576.0
    };
    let (mut on, mut off) = (0, 0);
    for _ in 0..300 {
        let mut ring: Vec<[f64; 2]> =
            (0..3).map(|_| [vertex(&mut rng, -170.0, 170.0), vertex(&mut rng, -80.0, 80.0)]).collect();
        if exact_orient(ring[0], ring[1], ring[2]) == 0 {
            continue;
        }
        ring.push(ring[0]);
        let poly = Polygon::new(ring.clone(), vec![]).unwrap();
        let region = geocrm::geo::PreparedRegion::new(&MultiPolygon::new(vec![poly.clone()]).unwrap());
        for _ in 0..40 {
            let e = rng.gen_range(0..3);
            let (a, b) = (ring[e], ring[e + 1]);
            let t = f64::from(rng.gen_range(0..=1024u32)) / 1024.0;
            let p = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
            let nudged = [
                p[0] + step * f64::from(rng.gen_range(-3..=3)),
                p[1] + step * f64::from(rng.gen_range(-3..=3)),
            ];
            let anywhere = [vertex(&mut rng, -180.0, 180.0), vertex(&mut rng, -90.0, 90.0)];
            for q in [p, nudged, anywhere] {
                let want = exact_covers(&ring, q);
                if q == p {
                    assert!(want, "the brute force covers an on-edge point");
                    on += 1;
                } else {
                    off += usize::from(!want);
                }
                let at = LatLon::new(q[1], q[0]).unwrap();
                assert_eq!(poly.contains(at), want, "{ring:?} {q:?}");
                assert_eq!(region.contains(at), want, "prepared: {ring:?} {q:?}");
            }
        }
    }
    assert!(on > 5_000 && off > 1_000, "{on} on edges, {off} outside");
}

#[test]
fn a_valid_sawtooth_of_long_edges_is_refused_quickly_instead_of_checked_for_minutes() {
    // 20,000 teeth, each edge as long as the polygon is wide: every edge pair shares a grid
    // cell, and checking them all took minutes (found by a reviewing helper).
    let n = 20_000;
    let mut ring: Ring = Vec::with_capacity(2 * n + 4);
    for i in 0..n {
        let a = i as f64 / n as f64;
        ring.push([a, 0.0]);
        ring.push([a + 1.0, 1.0]);
    }
    ring.extend([[1.0, 0.0], [1.0, -1.0], [0.0, -1.0], [0.0, 0.0]]);
    let t = Instant::now();
    let msg = reason(err_of(Polygon::new(ring, vec![]), "a sawtooth of 40,000 long edges was checked"));
    assert!(msg.contains("too long and too many"), "{msg}");
    assert!(t.elapsed().as_secs_f64() < 10.0, "refusing took {:?}", t.elapsed());
    // The same shape with 200 teeth is checked and accepted.
    let mut ring: Ring = Vec::new();
    for i in 0..200 {
        let a = f64::from(i) / 200.0;
        ring.push([a, 0.0]);
        ring.push([a + 1.0, 1.0]);
    }
    ring.extend([[1.0, 0.0], [1.0, -1.0], [0.0, -1.0], [0.0, 0.0]]);
    assert!(Polygon::new(ring, vec![]).is_ok());
}

#[test]
fn forty_thousand_holes_validate_in_seconds_and_a_nested_one_is_named() {
    // Every hole's vertex was tested against every other hole's box: O(holes²), tens of
    // seconds at 200,000 holes (found by a reviewing helper).
    let lattice = |k: usize| {
        let (x, y) = ((k % 200) as f64 * 0.1, (k / 200) as f64 * 0.1);
        rect(x + 0.01, y + 0.01, x + 0.06, y + 0.06)
    };
    let holes: Vec<Ring> = (0..40_000).map(lattice).collect();
    let t = Instant::now();
    let p = Polygon::new(rect(-1.0, -1.0, 21.0, 21.0), holes.clone()).unwrap();
    assert!(t.elapsed().as_secs_f64() < 10.0, "40,000 holes took {:?}", t.elapsed());
    assert_eq!(p.holes().len(), 40_000);
    // One more hole inside hole 12,345 (ring 12,346), and one on no other hole's edge but
    // beside it: the first is named, whatever the order.
    let [x, y] = lattice(12_345)[0];
    let mut nested = holes.clone();
    nested.push(rect(x + 0.02, y + 0.02, x + 0.03, y + 0.03));
    let msg = invalid(rect(-1.0, -1.0, 21.0, 21.0), nested);
    assert!(msg.contains("ring 40001 (hole 40000) lies inside ring 12346 (hole 12345)"), "{msg}");
    let mut first = vec![rect(x + 0.02, y + 0.02, x + 0.03, y + 0.03)];
    first.extend(holes);
    let msg = invalid(rect(-1.0, -1.0, 21.0, 21.0), first);
    assert!(msg.contains("ring 1 (hole 0) lies inside ring 12347 (hole 12346)"), "{msg}");
    // 40,000 holes in one row (all sharing one band of latitudes: strips of edges would
    // each hold all of them).
    let row: Vec<Ring> = (0..40_000)
        .map(|k| {
            let x = k as f64 * 0.004;
            rect(x, 0.0, x + 0.002, 0.002)
        })
        .collect();
    let t = Instant::now();
    assert_eq!(Polygon::new(rect(-1.0, -1.0, 170.0, 1.0), row).unwrap().holes().len(), 40_000);
    assert!(t.elapsed().as_secs_f64() < 10.0, "a row of 40,000 holes took {:?}", t.elapsed());
}
