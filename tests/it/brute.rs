//! Independent brute-force answers the engine is checked against: a plain scan with the
//! haversine formula, an even-odd point-in-polygon with an explicit on-edge test, and h3o per
//! point. Written separately from the library's geometry on purpose.

use std::collections::BTreeMap;

use h3o::{LatLng, Resolution};

pub const R: f64 = 6_371_008.8;

/// Great-circle distance written independently: the angle between the two unit vectors as
/// `atan2(|a × b|, a · b)`, accurate to a few nanometres at any distance (a haversine in
/// f64 is decimetres off near the antipode) — compared to the library's within 1e-6 m.
pub fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    let unit = |(lat, lon): (f64, f64)| {
        let (lat, lon) = (lat.to_radians(), lon.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    };
    let (u, v) = (unit(a), unit(b));
    let cross = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    let dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
    R * (cross[0] * cross[0] + cross[1] * cross[1] + cross[2] * cross[2]).sqrt().atan2(dot)
}

/// A model record.
#[derive(Debug, Clone, PartialEq)]
pub struct M {
    pub lat: f64,
    pub lon: f64,
    pub ltv: Option<f64>,
    pub tier: Option<String>,
}

pub type Model = BTreeMap<String, M>;

fn on_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> bool {
    let cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
    cross == 0.0
        && p[0] >= a[0].min(b[0])
        && p[0] <= a[0].max(b[0])
        && p[1] >= a[1].min(b[1])
        && p[1] <= a[1].max(b[1])
}

/// Even-odd rule; boundary counts as inside ("covers").
pub fn ring_covers(ring: &[[f64; 2]], p: [f64; 2]) -> (bool, bool) {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if on_segment(p, a, b) {
            return (true, true);
        }
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    (inside, false)
}

/// A polygon as plain rings: exterior then holes, [lon, lat].
pub type Rings = Vec<Vec<[f64; 2]>>;

pub fn polygon_covers(rings: &Rings, p: [f64; 2]) -> bool {
    let Some((outer, holes)) = rings.split_first() else { return false };
    let (inside, _) = ring_covers(outer, p);
    if !inside {
        return false;
    }
    for h in holes {
        let (in_hole, on_edge) = ring_covers(h, p);
        if in_hole && !on_edge {
            return false;
        }
    }
    true
}

pub fn multi_covers(polys: &[Rings], p: [f64; 2]) -> bool {
    polys.iter().any(|r| polygon_covers(r, p))
}

/// The group key of a point at resolution `res`: the resolution-`res` ancestor of its
/// resolution-15 cell (H3's hierarchy; a point's direct resolution-`res` cell can differ near
/// cell edges because children do not exactly tile their parent).
pub fn h3_parent(lat: f64, lon: f64, res: u8) -> String {
    let cell = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Fifteen);
    cell.parent(Resolution::try_from(res).unwrap()).unwrap().to_string()
}
