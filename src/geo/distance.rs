//! Great-circle distance on a spherical Earth, and conversions to and from chord length.

use super::LatLon;

/// Mean Earth radius in metres (IUGG R1), the radius every distance in geocrm uses.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between two points (haversine formula).
///
/// ```
/// use geocrm::{geo::haversine_m, LatLon};
/// let a = LatLon::new(0.0, 179.9)?;
/// let b = LatLon::new(0.0, -179.9)?;
/// assert!((haversine_m(a, b) - 22_239.0).abs() < 1.0); // across the antimeridian
/// # Ok::<(), geocrm::Error>(())
/// ```
#[must_use]
pub fn haversine_m(a: LatLon, b: LatLon) -> f64 {
    let (p1, p2) = (a.lat().to_radians(), b.lat().to_radians());
    let dlat = p2 - p1;
    let dlon = (b.lon() - a.lon()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Chord length on the unit sphere that corresponds to a great-circle distance in metres.
/// Distances of half the circumference or more map to the diameter, 2.
#[must_use]
pub fn metres_to_chord(metres: f64) -> f64 {
    let angle = (metres / EARTH_RADIUS_M).clamp(0.0, std::f64::consts::PI);
    2.0 * (angle / 2.0).sin()
}

/// Great-circle distance in metres for a chord length on the unit sphere.
#[must_use]
pub fn chord_to_metres(chord: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord / 2.0).clamp(0.0, 1.0).asin()
}

/// Squared Euclidean distance between two unit vectors.
#[must_use]
pub fn chord2(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
}
