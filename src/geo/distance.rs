//! Great-circle distance on a spherical Earth, and conversions to and from chord length.

use super::LatLon;

/// Mean Earth radius in metres (IUGG R1), the radius every distance in geocrm uses.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between two points: the haversine formula, and beyond a
/// quarter of the circumference the Vincenty form (`atan2` of the cross and dot products),
/// which keeps its digits near the antipode where the haversine's `h` nears 1 and loses
/// them (it was up to 0.2 m off there).
///
/// Sines and cosines are the `libm` crate's (musl's, within an ulp as the platform's are):
/// on x86-64 Linux they are faster than glibc's, which save and restore the rounding mode
/// on each call (nearest-k computes ten distances per query). The arcsine stays the
/// platform's, which was the faster there.
///
/// ```
/// use geocrm::{geo::haversine_m, LatLon};
/// let a = LatLon::new(0.0, 179.9)?;
/// let b = LatLon::new(0.0, -179.9)?;
/// assert!((haversine_m(a, b) - 22_239.0).abs() < 1.0); // across the antimeridian
/// # Ok::<(), geocrm::Error>(())
/// ```
#[must_use]
#[inline]
pub fn haversine_m(a: LatLon, b: LatLon) -> f64 {
    HaversineFrom::new(a).to(b)
}

/// [`haversine_m`] from one fixed point to many: the fixed point's share of the formula is
/// computed once. `HaversineFrom::new(a).to(b)` is `haversine_m(a, b)`, bit for bit (it is
/// how `haversine_m` is computed).
///
/// ```
/// use geocrm::{geo::{haversine_m, HaversineFrom}, LatLon};
/// let (a, b) = (LatLon::new(48.85, 2.35)?, LatLon::new(51.5, -0.12)?);
/// assert_eq!(HaversineFrom::new(a).to(b), haversine_m(a, b));
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HaversineFrom {
    lat_rad: f64,
    cos_lat: f64,
    sin_lat: f64,
    lon: f64,
}

impl HaversineFrom {
    /// Distances from `a`.
    #[must_use]
    #[inline]
    pub fn new(a: LatLon) -> HaversineFrom {
        let lat_rad = a.lat().to_radians();
        HaversineFrom {
            lat_rad,
            cos_lat: cos_lat(a.lat(), lat_rad),
            sin_lat: libm::sin(lat_rad),
            lon: a.lon(),
        }
    }

    /// Great-circle distance in metres to `b`. One place written two ways — longitudes
    /// 180 and -180, or any two longitudes at a pole — is 0 m from itself, exactly: the
    /// longitude difference is taken within ±180°, and the cosine of ±90° is 0.
    #[must_use]
    #[inline]
    pub fn to(&self, b: LatLon) -> f64 {
        let p2 = b.lat().to_radians();
        let dlat = p2 - self.lat_rad;
        let dlon = wrapped_lon_difference(b.lon() - self.lon).to_radians();
        let cos_p2 = cos_lat(b.lat(), p2);
        let h = libm::sin(dlat / 2.0).powi(2) + self.cos_lat * cos_p2 * libm::sin(dlon / 2.0).powi(2);
        if h <= 0.5 {
            return 2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin();
        }
        // Beyond 90° of arc: Vincenty's form, well conditioned up to the antipode.
        let (sin_dlon, cos_dlon) = libm::sincos(dlon);
        let sin_p2 = libm::sin(p2);
        let y = cos_p2 * sin_dlon;
        let z = self.cos_lat * sin_p2 - self.sin_lat * cos_p2 * cos_dlon;
        let x = self.sin_lat * sin_p2 + self.cos_lat * cos_p2 * cos_dlon;
        EARTH_RADIUS_M * libm::atan2(libm::hypot(y, z), x)
    }
}

/// The cosine of a latitude (`lat` in degrees, `rad` the same in radians); 0 at the poles,
/// where `cos(π/2)` in f64 is 6e-17, which made the two longitudes of a pole 0.4 nm apart.
#[inline]
fn cos_lat(lat: f64, rad: f64) -> f64 {
    if lat.abs() == 90.0 {
        0.0
    } else {
        libm::cos(rad)
    }
}

/// A difference of two longitudes in [-360, 360] brought within [-180, 180] (the same
/// meridian: `sin(-π)` in f64 is not 0, which made 180° and -180° 1.6 nm apart).
#[inline]
fn wrapped_lon_difference(d: f64) -> f64 {
    if d > 180.0 {
        d - 360.0
    } else if d < -180.0 {
        d + 360.0
    } else {
        d
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The haversine formula computed from scratch for each pair (as `haversine_m` did
    /// before `HaversineFrom` existed, with the longitude difference within ±180° and the
    /// cosine 0 at the poles): what it computes up to 90° of arc, with `sin` and `cos` as
    /// given.
    fn haversine_with(a: LatLon, b: LatLon, sin: fn(f64) -> f64, cos: fn(f64) -> f64) -> f64 {
        let (p1, p2) = (a.lat().to_radians(), b.lat().to_radians());
        let dlat = p2 - p1;
        let dlon = b.lon() - a.lon();
        let dlon = if dlon > 180.0 {
            dlon - 360.0
        } else if dlon < -180.0 {
            dlon + 360.0
        } else {
            dlon
        }
        .to_radians();
        let cos_lat = |lat: f64, rad: f64| if lat.abs() == 90.0 { 0.0 } else { cos(rad) };
        let h =
            sin(dlat / 2.0).powi(2) + cos_lat(a.lat(), p1) * cos_lat(b.lat(), p2) * sin(dlon / 2.0).powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }

    #[test]
    fn distances_from_a_fixed_point_are_the_haversine_bit_for_bit() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |range: f64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 * range - range
        };
        let mut points: Vec<LatLon> =
            (0..200).filter_map(|_| LatLon::new(next(90.0), next(180.0)).ok()).collect();
        for (lat, lon) in
            [(90.0, 0.0), (-90.0, 45.0), (0.0, 180.0), (0.0, -180.0), (10.0, 179.999), (-10.0, 0.0)]
        {
            points.extend(LatLon::new(lat, lon).ok());
        }
        assert_eq!(points.len(), 206);
        let mut far = 0;
        for &a in &points {
            let from = HaversineFrom::new(a);
            for &b in &points {
                let d = from.to(b);
                assert_eq!(d.to_bits(), haversine_m(a, b).to_bits(), "{a:?} → {b:?}");
                let reference = haversine_with(a, b, libm::sin, libm::cos);
                if reference < EARTH_RADIUS_M * std::f64::consts::FRAC_PI_2 * 0.999 {
                    assert_eq!(d.to_bits(), reference.to_bits(), "{a:?} → {b:?}");
                    // The platform's sine and cosine give the same distance within rounding.
                    let platform = haversine_with(a, b, f64::sin, f64::cos);
                    assert!((d - platform).abs() <= 1e-9 * d + 1e-9, "{a:?} → {b:?}: {d} against {platform}");
                } else {
                    // Farther: the haversine's digits go near the antipode, so only close.
                    assert!((d - reference).abs() < 0.5, "{a:?} → {b:?}: {d} against {reference}");
                    far += 1;
                }
            }
        }
        assert!(far > 1000, "{far} far pairs");
    }

    /// Near the antipode the distance keeps its digits: against values computed with 50
    /// significant digits (mpmath, the vector form), where the haversine was 0.19 m off.
    #[test]
    fn antipodal_distances_are_exact_to_the_micrometre() {
        for (a, b, want) in [
            (
                (-43.15262214102689, -165.8540003243477),
                (43.152622140935016, 14.145999675670792),
                20_015_114.442_025_6,
            ),
            ((10.0, 20.0), (-10.0, -160.0), 20_015_114.442_035_9),
            ((90.0, 0.0), (-90.0, 0.0), 20_015_114.442_035_9),
        ] {
            let d = haversine_m(LatLon::new(a.0, a.1).unwrap(), LatLon::new(b.0, b.1).unwrap());
            assert!((d - want).abs() < 1e-6, "{a:?} {b:?}: {d} against {want}");
        }
    }
}
