//! PreparedRegion: same answers as MultiPolygon (and the brute force) for points, and
//! conservative, correct box classification.

use std::time::Instant;

use geocrm::geo::{BoundingBox, MultiPolygon, Polygon, PreparedRegion, Relation};
use proptest::prelude::*;
use rand::Rng;

use super::support::*;

/// Mainland, an island, far territories on three oceans, one touching +180, and one
/// with a lake: a bounding box spanning most of the globe, like France's.
fn france_like(seed: u64) -> MultiPolygon {
    let mut r = rng(seed);
    let mut polys = vec![
        Polygon::new(country(&mut r, [2.5, 46.5], 3_500, 4.0), vec![]).unwrap(),
        Polygon::new(star(&mut r, [9.1, 42.1], 200, 0.3, 0.6), vec![]).unwrap(),
        Polygon::new(country(&mut r, [-53.0, 4.0], 800, 1.5), vec![]).unwrap(),
        Polygon::new(star(&mut r, [55.5, -21.1], 100, 0.15, 0.3), vec![]).unwrap(),
        Polygon::new(star(&mut r, [-149.5, -17.6], 60, 0.1, 0.2), vec![]).unwrap(),
        Polygon::new(vec![[179.0, -18.0], [180.0, -18.0], [180.0, -17.0], [179.0, -18.0]], vec![]).unwrap(),
    ];
    let lake = star(&mut r, [45.0, -12.8], 30, 0.05, 0.1);
    polys.push(Polygon::new(star(&mut r, [45.0, -12.8], 40, 0.25, 0.4), vec![lake]).unwrap());
    MultiPolygon::new(polys).unwrap()
}

/// Random points around the region, on its vertices, near its edges and on vertex rows.
fn points_for(mp: &MultiPolygon, r: &mut impl Rng, n: usize) -> Vec<[f64; 2]> {
    let verts: Vec<([f64; 2], [f64; 2])> = mp
        .polygons()
        .iter()
        .flat_map(|p| p.rings().iter())
        .flat_map(|ring| ring.windows(2).map(|w| (w[0], w[1])))
        .collect();
    let boxes: Vec<BoundingBox> = mp.polygons().iter().map(|p| p.bbox()).collect();
    (0..n)
        .map(|i| {
            let (a, b) = verts[r.gen_range(0..verts.len())];
            let bb = boxes[r.gen_range(0..boxes.len())];
            let pt = match i % 6 {
                0 => a,
                1 => {
                    let t: f64 = r.gen_range(0.0..=1.0);
                    [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
                }
                2 => [r.gen_range(bb.west() - 0.1..bb.east() + 0.1), a[1]],
                3 => [a[0] + r.gen_range(-1e-9..1e-9), a[1] + r.gen_range(-1e-9..1e-9)],
                4 => [
                    r.gen_range(bb.west() - 0.1..bb.east() + 0.1),
                    r.gen_range(bb.south() - 0.1..bb.north() + 0.1),
                ],
                _ => [r.gen_range(-180.0..=180.0), r.gen_range(-90.0..=90.0)],
            };
            [pt[0].clamp(-180.0, 180.0), pt[1].clamp(-90.0, 90.0)]
        })
        .collect()
}

#[test]
fn same_answers_as_multipolygon_on_100k_points() {
    let mp = france_like(1);
    let region = PreparedRegion::new(&mp);
    assert_eq!(region.bbox(), mp.bbox());
    let mut r = rng(2);
    let (mut inside, mut total) = (0, 0);
    for pt in points_for(&mp, &mut r, 100_000) {
        let want = mp.contains(ll(pt));
        assert_eq!(region.contains(ll(pt)), want, "point {pt:?}");
        inside += usize::from(want);
        total += 1;
    }
    assert!(inside > total / 4 && inside < total * 3 / 4, "{inside} of {total} inside: probes too one-sided");
    // The brute force agrees on the vertices and on random points.
    let polys = rings_of_multi(&mp);
    for pt in points_for(&mp, &mut r, 20_000)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 6 == 0 || i % 6 >= 4)
        .map(|x| x.1)
    {
        assert_eq!(region.contains(ll(pt)), brute_multi(&polys, pt), "point {pt:?}");
    }
}

#[test]
fn builds_fast() {
    let mut r = rng(5);
    let small =
        MultiPolygon::new(vec![Polygon::new(country(&mut r, [2.5, 46.5], 3_500, 4.0), vec![]).unwrap()])
            .unwrap();
    let big =
        MultiPolygon::new(vec![Polygon::new(country(&mut r, [2.5, 46.5], 100_000, 4.0), vec![]).unwrap()])
            .unwrap();
    let _warm = PreparedRegion::new(&small);
    // The fastest of three (one build can lose the core to another test for tens of ms).
    let mut small_took = std::time::Duration::MAX;
    let mut prepared = PreparedRegion::new(&small);
    for _ in 0..3 {
        let t = Instant::now();
        prepared = PreparedRegion::new(&small);
        small_took = small_took.min(t.elapsed());
    }
    let t = Instant::now();
    let prepared_big = PreparedRegion::new(&big);
    let big_took = t.elapsed();
    let t = Instant::now();
    let france = PreparedRegion::new(&france_like(3));
    let france_took = t.elapsed();
    eprintln!("build: 3.5k vertices {small_took:?}, 100k vertices {big_took:?}, france-like {france_took:?}");
    // Generous bounds for a loaded, lightly optimised test build; see the printed times.
    assert!(small_took.as_millis() < 250, "3.5k vertices took {small_took:?}");
    assert!(big_took.as_millis() < 2_000, "100k vertices took {big_took:?}");
    let t = Instant::now();
    let mut hits = 0;
    for i in 0..100_000 {
        let p = ll([-1.5 + 8.0 * (i % 317) as f64 / 317.0, 42.5 + 8.0 * (i / 317) as f64 / 316.0]);
        hits += usize::from(prepared.contains(p))
            + usize::from(prepared_big.contains(p))
            + usize::from(france.contains(p));
    }
    eprintln!("300k prepared point tests: {:?} ({hits} hits)", t.elapsed());
}

/// Checks a relation against dense sampling of the box: corners, edges, a grid, random
/// points, and every vertex of the region inside the box.
fn check_relation(mp: &MultiPolygon, b: &BoundingBox, rel: Relation, r: &mut impl Rng) {
    if rel == Relation::Partial {
        return;
    }
    let mut pts = Vec::new();
    for [w, e] in b.lon_intervals() {
        for i in 0..=12 {
            for j in 0..=12 {
                pts.push([
                    w + (e - w) * i as f64 / 12.0,
                    b.south() + (b.north() - b.south()) * j as f64 / 12.0,
                ]);
            }
        }
        for _ in 0..100 {
            pts.push([r.gen_range(w..=e), r.gen_range(b.south()..=b.north())]);
        }
    }
    for ring in mp.polygons().iter().flat_map(|p| p.rings()) {
        pts.extend(ring.iter().filter(|v| b.contains(ll(**v))));
    }
    for pt in pts {
        assert_eq!(
            mp.contains(ll(pt)),
            rel == Relation::Inside,
            "{rel:?} for {b:?} but {pt:?} says otherwise"
        );
    }
}

fn random_box(r: &mut impl Rng, around: BoundingBox, max_size: f64) -> BoundingBox {
    let s = r.gen_range(around.south() - 1.0..around.north() + 1.0).clamp(-90.0, 90.0);
    let n = (s + r.gen_range(0.0..max_size)).min(90.0);
    let w = r.gen_range(around.west() - 1.0..around.east() + 1.0).clamp(-180.0, 180.0);
    let mut e = w + r.gen_range(0.0..max_size);
    if e > 180.0 {
        e -= 360.0;
    }
    BoundingBox::new(s, w, n, e).unwrap()
}

#[test]
fn classify_box_is_correct_and_useful() {
    let mp = france_like(4);
    let region = PreparedRegion::new(&mp);
    let mut r = rng(6);
    let mut counts = [0usize; 3];
    for i in 0..3_000 {
        let poly = &mp.polygons()[i % mp.polygons().len()];
        let size = [0.01, 0.1, 1.0, 5.0, 40.0][i % 5];
        let b = random_box(&mut r, poly.bbox(), size);
        let rel = region.classify_box(&b);
        counts[rel as usize] += 1;
        check_relation(&mp, &b, rel, &mut r);
    }
    eprintln!("Outside/Inside/Partial: {counts:?}");
    assert!(
        counts[Relation::Outside as usize] > 300 && counts[Relation::Inside as usize] > 100,
        "{counts:?}"
    );
    let deep = BoundingBox::new(46.0, 2.0, 47.0, 3.0).unwrap();
    assert_eq!(region.classify_box(&deep), Relation::Inside);
    let lake = BoundingBox::new(-12.81, 44.99, -12.79, 45.01).unwrap();
    assert_eq!(region.classify_box(&lake), Relation::Outside);
    let pacific = BoundingBox::new(-17.9, 179.5, -17.8, -179.0).unwrap(); // across ±180
    assert_eq!(region.classify_box(&pacific), Relation::Partial);
    let east_only = BoundingBox::new(-17.95, 179.8, -17.9, -179.0).unwrap();
    check_relation(&mp, &east_only, region.classify_box(&east_only), &mut r);
    assert_eq!(region.classify_box(&BoundingBox::new(60.0, -40.0, 70.0, -30.0).unwrap()), Relation::Outside);
    assert_ne!(region.classify_box(&BoundingBox::world()), Relation::Outside);
}

#[test]
fn whole_world_region() {
    let mp =
        MultiPolygon::new(vec![Polygon::new(rect(-180.0, -90.0, 180.0, 90.0), vec![]).unwrap()]).unwrap();
    let region = PreparedRegion::new(&mp);
    for pt in [[-180.0, -90.0], [180.0, 90.0], [0.0, 0.0], [-180.0, 12.0], [77.0, 90.0]] {
        assert!(region.contains(ll(pt)));
    }
    assert_eq!(region.classify_box(&BoundingBox::new(-10.0, -170.0, 10.0, 170.0).unwrap()), Relation::Inside);
    // Boxes touching the region's boundary (here ±180 and the poles) are Partial: conservative.
    assert_eq!(
        region.classify_box(&BoundingBox::new(-10.0, 170.0, 10.0, -170.0).unwrap()),
        Relation::Partial
    );
    assert_eq!(region.classify_box(&BoundingBox::world()), Relation::Partial);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_regions_agree(cx in -150i32..150, cy in -60i32..60, n in 8usize..40, count in 1usize..4, seed in any::<u64>()) {
        let mut r = rng(seed);
        let mut polys = Vec::new();
        for k in 0..count {
            let c = [cx as f64 + 25.0 * k as f64, cy as f64];
            let ext = dyadic(&star(&mut r, c, n, 6.0, 12.0));
            let hole = dyadic(&star(&mut r, c, n, 1.0, 3.0));
            if let Ok(p) = Polygon::new(ext, vec![hole]) { polys.push(p); }
        }
        prop_assume!(!polys.is_empty());
        let mp = MultiPolygon::new(polys).unwrap();
        let region = PreparedRegion::new(&mp);
        let rings = rings_of_multi(&mp);
        let all: Vec<Ring> = rings.iter().flatten().cloned().collect();
        let b = mp.bbox();
        for pt in probe_points(&mut r, &all, [b.west() - 1.0, b.south() - 1.0, b.east() + 1.0, b.north() + 1.0], 400, true) {
            let want = brute_multi(&rings, pt);
            prop_assert_eq!(mp.contains(ll(pt)), want, "multipolygon at {:?}", pt);
            prop_assert_eq!(region.contains(ll(pt)), want, "prepared at {:?}", pt);
        }
        for i in 0..60 {
            let bx = random_box(&mut r, b, [0.5, 3.0, 15.0][i % 3]);
            check_relation(&mp, &bx, region.classify_box(&bx), &mut r);
        }
    }
}

#[test]
fn overlapping_polygons_count_separately() {
    let a = Polygon::new(rect(0.0, 0.0, 2.0, 2.0), vec![]).unwrap();
    let b = Polygon::new(rect(1.0, 1.0, 3.0, 3.0), vec![rect(2.2, 2.2, 2.8, 2.8)]).unwrap();
    let mp = MultiPolygon::new(vec![a, b]).unwrap();
    let region = PreparedRegion::new(&mp);
    let mut r = rng(9);
    let polys = rings_of_multi(&mp);
    let all: Vec<Ring> = polys.iter().flatten().cloned().collect();
    for pt in probe_points(&mut r, &all, [-0.5, -0.5, 3.5, 3.5], 5_000, true) {
        let want = brute_multi(&polys, pt);
        assert_eq!(mp.contains(ll(pt)), want, "{pt:?}");
        assert_eq!(region.contains(ll(pt)), want, "{pt:?}");
    }
    assert!(region.contains(ll([1.5, 1.5])), "inside both");
    assert_eq!(region.classify_box(&BoundingBox::new(1.2, 1.2, 1.8, 1.8).unwrap()), Relation::Inside);
    assert_eq!(region.classify_box(&BoundingBox::new(2.3, 2.3, 2.7, 2.7).unwrap()), Relation::Outside);
}

/// A sawtooth coast of 1,360 teeth in a 1° band, and 1,360 triangles in a row: every
/// strip's edges span it, which made each point test scan them all (35 s for 200,000
/// points with 20,000 teeth: from the aggregation review). Same answers as the brute force
/// on random points, the vertices and points on the edges (dyadic coordinates, so that
/// points on edges are exactly on them).
#[test]
fn sawtooth_and_rows_of_triangles_agree_with_the_brute_force() {
    let n = 1_360;
    let w = 0.25;
    let mut saw = vec![[-170.0, -0.5]];
    for i in 0..n {
        let x = -170.0 + f64::from(i) * w;
        saw.extend([[x, 0.0], [x + w * 0.25, 1.0], [x + w * 0.5, 0.0]]);
    }
    saw.extend([[170.0, 0.0], [170.0, -0.5], [-170.0, -0.5]]);
    let sawtooth = MultiPolygon::new(vec![Polygon::new(saw, vec![]).unwrap()]).unwrap();
    let triangles = MultiPolygon::new(
        (0..n)
            .map(|i| {
                let x = -170.0 + f64::from(i) * w;
                Polygon::new(vec![[x, 0.0], [x + w * 0.5, 1.0], [x + w * 0.875, 0.0], [x, 0.0]], vec![])
                    .unwrap()
            })
            .collect(),
    )
    .unwrap();
    let mut r = rng(31);
    for mp in [sawtooth, triangles] {
        let region = PreparedRegion::new(&mp);
        let rings = rings_of_multi(&mp);
        let all: Vec<Ring> = rings.iter().flatten().cloned().collect();
        let mut inside = 0;
        for pt in probe_points(&mut r, &all, [-171.0, -1.0, 171.0, 2.0], 20_000, true) {
            let want = brute_multi(&rings, pt);
            assert_eq!(region.contains(ll(pt)), want, "point {pt:?}");
            inside += usize::from(want);
        }
        assert!(inside > 2_000, "{inside} inside: probes too one-sided");
    }
}

/// Polygons whose rings touch at one point, as OGC allows: a hole at a vertex of the
/// exterior, a hole's vertex inside an exterior edge, two holes sharing a vertex, and a hole
/// whose every vertex is a point where it touches another ring. They are accepted, and
/// points — the touching points, points on every edge and points around them — and boxes
/// get the brute force's answers from the polygon, the multipolygon and the prepared region.
#[test]
fn rings_touching_at_one_point_agree_with_the_brute_force() {
    let tri = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| vec![a, b, c, a];
    let polygons = vec![
        // A hole at the exterior's corner [0, 0], and one with a vertex on its bottom edge.
        Polygon::new(
            rect(0.0, 0.0, 10.0, 10.0),
            vec![tri([0.0, 0.0], [2.0, 1.0], [1.0, 2.0]), tri([5.0, 0.0], [6.0, 1.0], [4.0, 1.0])],
        )
        .unwrap(),
        // Two holes sharing the vertex [23, 3], one of them touching the exterior's edge.
        Polygon::new(
            rect(20.0, 0.0, 30.0, 10.0),
            vec![tri([21.0, 3.0], [23.0, 3.0], [22.0, 5.0]), tri([23.0, 3.0], [25.0, 3.0], [24.0, 0.0])],
        )
        .unwrap(),
        // A hole whose three vertices are where it touches the exterior and two other holes.
        Polygon::new(
            rect(40.0, 0.0, 50.0, 10.0),
            vec![
                tri([45.0, 0.0], [46.0, 2.0], [44.0, 2.0]),
                tri([46.0, 2.0], [48.0, 2.0], [47.0, 4.0]),
                tri([44.0, 2.0], [42.0, 2.0], [43.0, 4.0]),
            ],
        )
        .unwrap(),
        // Far from the others, in the southern hemisphere: a hole at the north-east corner.
        Polygon::new(
            rect(100.0, -40.0, 110.0, -30.0),
            vec![tri([110.0, -30.0], [107.0, -31.0], [108.5, -34.0])],
        )
        .unwrap(),
    ];
    let contacts = [
        [0.0, 0.0],
        [5.0, 0.0],
        [23.0, 3.0],
        [24.0, 0.0],
        [45.0, 0.0],
        [46.0, 2.0],
        [44.0, 2.0],
        [110.0, -30.0],
    ];
    let mp = MultiPolygon::new(polygons).unwrap();
    let region = PreparedRegion::new(&mp);
    let rings = rings_of_multi(&mp);
    let all: Vec<Ring> = rings.iter().flatten().cloned().collect();
    let mut r = rng(42);
    let mut points = probe_points(&mut r, &all, [-1.0, -41.0, 111.0, 11.0], 2_000, true);
    for poly in mp.polygons() {
        let b = poly.bbox();
        let bounds = [b.west() - 0.5, b.south() - 0.5, b.east() + 0.5, b.north() + 0.5];
        points.extend(probe_points(&mut r, &rings_of(poly), bounds, 5_000, true));
    }
    for c in contacts {
        // (Off the axes, in directions no edge takes: a point a rounding away from an edge is
        // decided exactly by the region and by rounding in the brute force.)
        for d in [
            [0.0, 0.0],
            [1e-9, 0.0],
            [-1e-9, 0.0],
            [0.0, 1e-9],
            [0.0, -1e-9],
            [5e-9, 7e-9],
            [-7e-9, 5e-9],
            [7e-9, -5e-9],
            [-5e-9, -7e-9],
            [0.01, 0.007],
            [-0.007, 0.01],
        ] {
            points.push([c[0] + d[0], c[1] + d[1]]);
        }
    }
    let (mut inside, mut outside) = (0, 0);
    for pt in points {
        let want = brute_multi(&rings, pt);
        assert_eq!(region.contains(ll(pt)), want, "region at {pt:?}");
        assert_eq!(mp.contains(ll(pt)), want, "multipolygon at {pt:?}");
        (inside, outside) = if want { (inside + 1, outside) } else { (inside, outside + 1) };
    }
    assert!(inside > 3_000 && outside > 3_000, "{inside} inside, {outside} outside: probes too one-sided");
    // A box holding a touching point holds points of the region and of a hole (or of the
    // outside): partial, however small. A box inside a hole next to one is outside.
    for c in contacts {
        for metres in [0.01, 10.0, 1_000.0] {
            let around = BoundingBox::around(ll(c), metres).unwrap();
            assert_eq!(region.classify_box(&around), Relation::Partial, "{metres} m around {c:?}");
        }
        for size in [1e-6, 0.01, 0.5, 3.0] {
            let b = random_box(&mut r, BoundingBox::new(c[1], c[0], c[1], c[0]).unwrap(), size);
            check_relation(&mp, &b, region.classify_box(&b), &mut r);
        }
    }
    // Inside the hole at [0, 0], a hair from the corner; inside the polygon beside it.
    for (b, want) in [
        (BoundingBox::new(0.4, 0.4, 0.5, 0.5).unwrap(), Relation::Outside),
        (BoundingBox::new(0.01, 0.2, 0.02, 0.3).unwrap(), Relation::Inside),
    ] {
        assert_eq!(region.classify_box(&b), want, "{b:?}");
        check_relation(&mp, &b, want, &mut r);
    }
}
