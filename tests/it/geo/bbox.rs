//! BoundingBox: construction, antimeridian, `around` superset property, `unit_aabbs`.

use geocrm::geo::{haversine_m, BoundingBox, EARTH_RADIUS_M};
use geocrm::{Error, LatLon};
use proptest::prelude::*;
use rand::Rng;

use super::support::rng;

/// The point at angular distance `delta` (radians) and `bearing` from `c`.
fn destination(c: LatLon, bearing: f64, delta: f64) -> LatLon {
    let (p1, l1) = (c.lat().to_radians(), c.lon().to_radians());
    let p2 = (p1.sin() * delta.cos() + p1.cos() * delta.sin() * bearing.cos()).clamp(-1.0, 1.0).asin();
    let l2 = l1 + (bearing.sin() * delta.sin() * p1.cos()).atan2(delta.cos() - p1.sin() * p2.sin());
    let mut lon = l2.to_degrees();
    while lon > 180.0 {
        lon -= 360.0;
    }
    while lon < -180.0 {
        lon += 360.0;
    }
    LatLon::new(p2.to_degrees().clamp(-90.0, 90.0), lon).unwrap()
}

fn assert_superset(center: LatLon, metres: f64, seed: u64) {
    let b = BoundingBox::around(center, metres).unwrap();
    let mut r = rng(seed);
    let delta = metres / EARTH_RADIUS_M;
    for i in 0..400 {
        // Points on (and just inside) the cap's edge, where a box is tightest.
        let d = if i % 2 == 0 { delta } else { delta * r.gen_range(0.0..1.0) };
        let p = destination(center, r.gen_range(0.0..std::f64::consts::TAU), d.min(std::f64::consts::PI));
        if haversine_m(center, p) <= metres {
            assert!(b.contains(p), "{b:?} around {center:?} r={metres} misses {p:?}");
        }
        // Plus uniform random points anywhere.
        let q =
            LatLon::new(r.gen_range(-1.0f64..1.0).asin().to_degrees(), r.gen_range(-180.0..=180.0)).unwrap();
        if haversine_m(center, q) <= metres {
            assert!(b.contains(q), "{b:?} around {center:?} r={metres} misses {q:?}");
        }
    }
    // Points at exactly ±180 and the poles, which alias other coordinates.
    for lat in [-90.0, -60.0, 0.0, 45.0, 89.999, 90.0] {
        for lon in [-180.0, 180.0] {
            let p = LatLon::new(lat, lon).unwrap();
            if haversine_m(center, p) <= metres {
                assert!(b.contains(p), "{b:?} misses {p:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn around_is_a_superset(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, metres in 0.0f64..2.1e7, seed in any::<u64>()) {
        assert_superset(LatLon::new(lat, lon).unwrap(), metres, seed);
    }

    #[test]
    fn around_small_radius_near_edges(lat in prop_oneof![-90.0f64..-80.0, 80.0f64..=90.0, -10.0f64..10.0],
                                      lon in prop_oneof![-180.0f64..-179.0, 179.0f64..=180.0],
                                      metres in 0.0f64..300_000.0, seed in any::<u64>()) {
        assert_superset(LatLon::new(lat, lon).unwrap(), metres, seed);
    }

    #[test]
    fn unit_aabbs_contain_points_of_the_box(s in -90.0f64..=90.0, dn in 0.0f64..60.0, w in -180.0f64..=180.0,
                                            de in 0.0f64..200.0, seed in any::<u64>()) {
        let n = (s + dn).min(90.0);
        let mut e = w + de;
        if e > 180.0 { e -= 360.0; }
        let b = BoundingBox::new(s, w, n, e).unwrap();
        let boxes = b.unit_aabbs();
        prop_assert_eq!(boxes.len(), if b.crosses_antimeridian() { 2 } else { 1 });
        let mut r = rng(seed);
        let lons: Vec<f64> = b.lon_intervals().iter().flat_map(|iv| [iv[0], iv[1], (iv[0] + iv[1]) / 2.0]).collect();
        for i in 0..300 {
            let lat = if i < 20 { [s, n][i % 2] } else { r.gen_range(s..=n) };
            let lon = if i % 3 == 0 { lons[i % lons.len()] } else {
                let iv = b.lon_intervals()[i % b.lon_intervals().len()];
                r.gen_range(iv[0]..=iv[1])
            };
            let p = LatLon::new(lat, lon).unwrap();
            prop_assert!(b.contains(p));
            let v = p.to_unit_vector();
            prop_assert!(boxes.iter().any(|a| a.contains(v)), "{:?} not in {:?} for {:?}", v, boxes, b);
        }
    }
}

#[test]
fn unit_aabbs_are_tight() {
    for (s, w) in [(0.0, 0.0), (45.0, 100.0), (-89.0, -180.0), (89.0, 179.0), (10.0, -90.5)] {
        let b = BoundingBox::new(s, w, s + 1.0, w + 1.0).unwrap();
        let a = b.unit_aabbs()[0];
        for k in 0..3 {
            assert!(a.max[k] - a.min[k] < 0.03, "{b:?} gives {a:?}");
        }
    }
    // Against sampled extremes: the boxes add no more than the padding plus sampling error.
    let b = BoundingBox::new(20.0, -30.0, 50.0, 40.0).unwrap();
    let a = b.unit_aabbs()[0];
    let (mut lo, mut hi) = ([f64::MAX; 3], [f64::MIN; 3]);
    for i in 0..=300 {
        for j in 0..=300 {
            let v = LatLon::new(20.0 + 30.0 * i as f64 / 300.0, -30.0 + 70.0 * j as f64 / 300.0)
                .unwrap()
                .to_unit_vector();
            for k in 0..3 {
                lo[k] = lo[k].min(v[k]);
                hi[k] = hi[k].max(v[k]);
            }
        }
    }
    for k in 0..3 {
        assert!(a.min[k] <= lo[k] && lo[k] - a.min[k] < 1e-4, "axis {k}: {a:?} vs {lo:?}");
        assert!(a.max[k] >= hi[k] && a.max[k] - hi[k] < 1e-4, "axis {k}: {a:?} vs {hi:?}");
    }
    // The whole world is the cube [-1, 1]^3.
    let world = BoundingBox::world().unit_aabbs()[0];
    assert!(
        world.min.iter().all(|&m| (m + 1.0).abs() < 1e-9)
            && world.max.iter().all(|&m| (m - 1.0).abs() < 1e-9)
    );
}

#[test]
fn antimeridian_boxes() {
    let b = BoundingBox::new(-10.0, 170.0, 10.0, -170.0).unwrap();
    assert!(b.crosses_antimeridian());
    for (lat, lon, inside) in [
        (0.0, 180.0, true),
        (0.0, -180.0, true),
        (10.0, 170.0, true),
        (0.0, 169.9, false),
        (0.0, 0.0, false),
        (10.1, 175.0, false),
    ] {
        assert_eq!(b.contains(LatLon::new(lat, lon).unwrap()), inside, "({lat}, {lon})");
    }
    let east = BoundingBox::new(0.0, -175.0, 5.0, -172.0).unwrap();
    let west = BoundingBox::new(0.0, 100.0, 5.0, 160.0).unwrap();
    assert!(b.intersects(&east) && east.intersects(&b));
    assert!(!b.intersects(&west));
    let u = west.union(&east);
    assert!(u.contains_box(&west) && u.contains_box(&east));
    assert!(u.crosses_antimeridian(), "the short way round is across ±180: {u:?}");
    assert_eq!(b.unit_aabbs().len(), 2);
}

#[test]
fn around_special_cases() {
    let north = BoundingBox::around(LatLon::new(89.0, 30.0).unwrap(), 200_000.0).unwrap();
    assert_eq!((north.north(), north.west(), north.east()), (90.0, -180.0, 180.0));
    let south = BoundingBox::around(LatLon::new(-90.0, 0.0).unwrap(), 1.0).unwrap();
    assert_eq!((south.south(), south.west(), south.east()), (-90.0, -180.0, 180.0));
    let world = BoundingBox::around(LatLon::new(12.0, 34.0).unwrap(), 20_100_000.0).unwrap();
    assert_eq!(world, BoundingBox::world());
    let dateline = BoundingBox::around(LatLon::new(-17.0, -179.5).unwrap(), 100_000.0).unwrap();
    assert!(dateline.crosses_antimeridian() && dateline.west() > 179.0);
    let small = BoundingBox::around(LatLon::new(48.0, 2.0).unwrap(), 1_000.0).unwrap();
    assert!(small.north() - small.south() < 0.02 && small.east() - small.west() < 0.03);
    assert!(matches!(
        BoundingBox::around(LatLon::new(0.0, 0.0).unwrap(), -1.0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        BoundingBox::around(LatLon::new(0.0, 0.0).unwrap(), f64::NAN),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn new_validates() {
    assert!(matches!(BoundingBox::new(0.0, 0.0, 91.0, 1.0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(BoundingBox::new(0.0, f64::INFINITY, 1.0, 1.0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(BoundingBox::new(5.0, 0.0, 1.0, 1.0), Err(Error::InvalidArgument { .. })));
    let b = BoundingBox::new(0.0, 0.0, 1.0, 1.0).unwrap();
    assert!(b.contains(LatLon::new(1.0, 0.0).unwrap()), "edges are inclusive");
    assert!(!b.contains(LatLon::new(1.0000001, 0.0).unwrap()));
}

#[test]
fn around_holds_the_widest_point_of_a_cap_reaching_almost_to_a_pole() {
    // From near the equator with a radius just short of the pole, the cap's easternmost
    // point is at a middle latitude and `asin` of a ratio next to 1 lost more than the
    // padding: a point inside the radius fell outside the box (found by a reviewing helper).
    for (lat, lon) in [(0.00001, 0.0), (0.00001, 10.0), (-0.00002, 170.0), (0.0, -45.0)] {
        let center = LatLon::new(lat, lon).unwrap();
        for shortfall_m in [0.01, 0.5, 3.0, 50.0] {
            let metres = (90.0 - lat.abs()).to_radians() * EARTH_RADIUS_M - shortfall_m;
            let b = BoundingBox::around(center, metres).unwrap();
            // Along the cap's eastern and western edges: for each latitude, the farthest
            // longitude still within the radius (bisection on our own haversine).
            for i in 1..400 {
                let p_lat = -89.0 + 178.0 * f64::from(i) / 400.0;
                for side in [1.0, -1.0] {
                    let at = |dlon: f64| {
                        let mut l = lon + side * dlon;
                        if l > 180.0 {
                            l -= 360.0;
                        } else if l < -180.0 {
                            l += 360.0;
                        }
                        LatLon::new(p_lat, l).unwrap()
                    };
                    if haversine_m(center, at(0.0)) > metres {
                        continue;
                    }
                    let (mut inside, mut outside) = (0.0, 180.0);
                    if haversine_m(center, at(outside)) <= metres {
                        continue;
                    }
                    for _ in 0..80 {
                        let mid = (inside + outside) / 2.0;
                        if haversine_m(center, at(mid)) <= metres {
                            inside = mid;
                        } else {
                            outside = mid;
                        }
                    }
                    let p = at(inside);
                    assert!(
                        b.contains(p),
                        "{b:?} around {center:?} r={metres} misses {p:?} (inside the radius)"
                    );
                }
            }
        }
    }
}
