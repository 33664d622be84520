//! Independent reference implementations and generators for the geometry tests.
//!
//! The brute force here is written separately from the library: the classic PNPOLY
//! even-odd test (computing the crossing's x coordinate) plus an explicit on-edge check.

use geocrm::geo::{MultiPolygon, Polygon};
use geocrm::LatLon;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type Ring = Vec<[f64; 2]>;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `p` on segment `a b`: cross product exactly zero and within the segment's box.
pub fn brute_on_edge(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> bool {
    let within =
        p[0] >= a[0].min(b[0]) && p[0] <= a[0].max(b[0]) && p[1] >= a[1].min(b[1]) && p[1] <= a[1].max(b[1]);
    let cross = (p[0] - a[0]) * (b[1] - a[1]) - (p[1] - a[1]) * (b[0] - a[0]);
    within && cross == 0.0
}

/// Covers: on any ring's edge, or an odd number of PNPOLY crossings over all rings.
pub fn brute_covers(rings: &[Ring], p: [f64; 2]) -> bool {
    let mut inside = false;
    for ring in rings {
        for i in 0..ring.len() - 1 {
            let (a, b) = (ring[i], ring[i + 1]);
            if brute_on_edge(p, a, b) {
                return true;
            }
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
        }
    }
    inside
}

pub fn brute_multi(polys: &[Vec<Ring>], p: [f64; 2]) -> bool {
    polys.iter().any(|rings| brute_covers(rings, p))
}

/// A star-shaped ring around `c`: simple by construction (strictly increasing angles,
/// positive radii). `ry` scales latitude extents.
pub fn star(r: &mut impl Rng, c: [f64; 2], n: usize, rmin: f64, rmax: f64) -> Ring {
    let mut ring: Ring = (0..n)
        .map(|i| {
            let ang = (i as f64 + r.gen_range(0.05..0.95)) / n as f64 * std::f64::consts::TAU;
            let rad = r.gen_range(rmin..=rmax);
            [c[0] + rad * ang.cos(), c[1] + rad * ang.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// A smooth, noisy star ("country outline") with `n` vertices and mean radius `rad`.
pub fn country(r: &mut impl Rng, c: [f64; 2], n: usize, rad: f64) -> Ring {
    let (p1, p2) = (r.gen_range(0.0..6.3), r.gen_range(0.0..6.3));
    let mut ring: Ring = (0..n)
        .map(|i| {
            let t = i as f64 / n as f64 * std::f64::consts::TAU;
            let k = 1.0 + 0.3 * (3.0 * t + p1).sin() + 0.1 * (17.0 * t + p2).sin() + r.gen_range(-0.01..0.01);
            [c[0] + rad * k * t.cos(), c[1] + rad * k * t.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// Rounds every coordinate to a multiple of 1/64 degree, so that points snapped onto edges
/// at t = m/8 are exactly on them and every orientation is computed exactly.
pub fn dyadic(ring: &Ring) -> Ring {
    ring.iter().map(|p| [(p[0] * 64.0).round() / 64.0, (p[1] * 64.0).round() / 64.0]).collect()
}

pub fn ll(p: [f64; 2]) -> LatLon {
    LatLon::new(p[1], p[0]).unwrap()
}

pub fn rings_of(poly: &Polygon) -> Vec<Ring> {
    poly.rings().to_vec()
}

pub fn rings_of_multi(mp: &MultiPolygon) -> Vec<Vec<Ring>> {
    mp.polygons().iter().map(rings_of).collect()
}

/// Points worth testing against a set of rings: every vertex, points at vertex latitudes
/// and longitudes (rays through vertices), random points in `bounds`, and with `on_edges`
/// points on edges at t = m/8 (exactly on them only for [`dyadic`] rings: elsewhere they
/// are within rounding of the edge, where an independent brute force may round otherwise).
pub fn probe_points(
    r: &mut impl Rng,
    rings: &[Ring],
    bounds: [f64; 4],
    random: usize,
    on_edges: bool,
) -> Vec<[f64; 2]> {
    let mut pts = Vec::new();
    for ring in rings {
        for w in ring.windows(2) {
            let (a, b) = (w[0], w[1]);
            pts.push(a);
            let m = r.gen_range(1..8) as f64 / 8.0;
            if on_edges {
                pts.push([a[0] + m * (b[0] - a[0]), a[1] + m * (b[1] - a[1])]);
            }
            pts.push([r.gen_range(bounds[0]..=bounds[2]), a[1]]);
            pts.push([a[0], r.gen_range(bounds[1]..=bounds[3])]);
        }
    }
    for _ in 0..random {
        pts.push([r.gen_range(bounds[0]..=bounds[2]), r.gen_range(bounds[1]..=bounds[3])]);
    }
    pts.retain(|p| (-180.0..=180.0).contains(&p[0]) && (-90.0..=90.0).contains(&p[1]));
    pts
}

/// The square `[x0, y0]`–`[x1, y1]` as a closed ring.
pub fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Ring {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
}
