//! Packed R-tree: answers against brute force, byte-level robustness, the H3 cell column,
//! (timings: `cargo run --release --example rtree_timing`).

mod bytes;
mod cells;
mod queries;

use geocrm::LatLon;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn ll(lat: f64, lon: f64) -> LatLon {
    LatLon::new(lat, lon).unwrap()
}

/// Uniform on the sphere.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize) -> Vec<LatLon> {
    (0..n)
        .map(|_| {
            let z: f64 = rng.gen_range(-1.0..=1.0);
            ll(z.asin().to_degrees(), rng.gen_range(-180.0..=180.0))
        })
        .collect()
}

/// Tight clusters around a few centres (some near the antimeridian and the poles).
pub fn clustered(rng: &mut ChaCha8Rng, n: usize) -> Vec<LatLon> {
    let centres = [(48.85, 2.35), (-33.9, 151.2), (0.0, 179.99), (89.99, 0.0), (-89.5, 45.0), (40.7, -74.0)];
    (0..n)
        .map(|i| {
            let (lat, lon): (f64, f64) = centres[i % centres.len()];
            let spread = [1e-5, 1e-3, 0.1][i % 3];
            let lat = (lat + rng.gen_range(-spread..=spread)).clamp(-90.0, 90.0);
            let mut lon = lon + rng.gen_range(-spread..=spread);
            if lon > 180.0 {
                lon -= 360.0;
            }
            ll(lat, lon)
        })
        .collect()
}

/// Hundreds of identical points, plus a few others.
pub fn duplicates(rng: &mut ChaCha8Rng, n: usize) -> Vec<LatLon> {
    let mut v: Vec<LatLon> =
        (0..n).map(|i| if i % 7 == 3 { ll(10.0, 20.0) } else { ll(-5.5, 100.25) }).collect();
    v.extend(uniform(rng, 20));
    v
}

/// Points on the antimeridian (both signs) and at and around both poles.
pub fn edges(rng: &mut ChaCha8Rng, n: usize) -> Vec<LatLon> {
    (0..n)
        .map(|i| match i % 6 {
            0 => ll(rng.gen_range(-90.0..=90.0), 180.0),
            1 => ll(rng.gen_range(-90.0..=90.0), -180.0),
            2 => ll(90.0, rng.gen_range(-180.0..=180.0)),
            3 => ll(-90.0, rng.gen_range(-180.0..=180.0)),
            4 => ll(rng.gen_range(89.999..=90.0), rng.gen_range(-180.0..=180.0)),
            _ => ll(rng.gen_range(-60.0..=60.0), 180.0 - rng.gen_range(0.0..1e-6)),
        })
        .collect()
}
