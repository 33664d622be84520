//! A validated WGS84 coordinate.

use crate::error::{Error, Result};

/// A WGS84 latitude/longitude in degrees: finite, latitude in [-90, 90], longitude in
/// [-180, 180]. The only public way to build one is [`LatLon::new`], so every `LatLon` is valid.
///
/// ```
/// use geocrm::LatLon;
/// let paris = LatLon::new(48.8566, 2.3522)?;
/// assert_eq!(paris.lat(), 48.8566);
/// assert!(LatLon::new(91.0, 0.0).is_err());
/// assert!(LatLon::new(f64::NAN, 0.0).is_err());
/// # Ok::<(), geocrm::Error>(())
/// ```
///
/// With serde it is `{"lat": …, "lon": …}`, validated when read as [`LatLon::new`] does:
///
/// ```
/// use geocrm::LatLon;
/// let p: LatLon = serde_json::from_str(r#"{"lat": 48.8566, "lon": 2.3522}"#)?;
/// assert_eq!(serde_json::to_string(&p)?, r#"{"lat":48.8566,"lon":2.3522}"#);
/// assert!(serde_json::from_str::<LatLon>(r#"{"lat": 91.0, "lon": 0.0}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "LatLonFields")]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

/// A `LatLon` as read by serde, before [`LatLon::new`] checks it.
#[derive(serde::Deserialize)]
struct LatLonFields {
    lat: f64,
    lon: f64,
}

impl TryFrom<LatLonFields> for LatLon {
    type Error = crate::Error;
    fn try_from(f: LatLonFields) -> crate::Result<LatLon> {
        LatLon::new(f.lat, f.lon)
    }
}

impl LatLon {
    /// Validates and builds a coordinate.
    ///
    /// # Errors
    /// [`Error::InvalidCoordinate`] when either value is NaN or infinite, or out of range.
    pub fn new(lat: f64, lon: f64) -> Result<Self> {
        LatLon::from_stored(lat, lon).ok_or_else(|| {
            let reason = if !lat.is_finite() || !lon.is_finite() {
                "coordinates must be finite numbers"
            } else if !(-90.0..=90.0).contains(&lat) {
                "latitude must be within [-90, 90]"
            } else {
                "longitude must be within [-180, 180]"
            };
            Error::InvalidCoordinate { lat, lon, reason }
        })
    }

    /// [`LatLon::new`] without the error that names what is wrong: two comparisons, which
    /// NaN and infinities fail, for values read back from a file on the query path. `new`
    /// asks it first, so the two cannot disagree.
    #[inline]
    pub(crate) fn from_stored(lat: f64, lon: f64) -> Option<LatLon> {
        // -0.0 is normalised so that equal points have equal bytes.
        (lat.abs() <= 90.0 && lon.abs() <= 180.0).then_some(LatLon { lat: lat + 0.0, lon: lon + 0.0 })
    }

    /// The point at latitude 0, longitude 0.
    pub const ORIGIN: LatLon = LatLon { lat: 0.0, lon: 0.0 };

    /// Latitude in degrees.
    #[must_use]
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    #[must_use]
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// The point on the unit sphere: `[cos φ cos λ, cos φ sin λ, sin φ]`.
    ///
    /// Straight-line (chord) distance between unit vectors orders points exactly as
    /// great-circle distance does, which is what the spatial indexes rely on.
    #[must_use]
    pub fn to_unit_vector(self) -> [f64; 3] {
        let (slat, clat) = self.lat.to_radians().sin_cos();
        let (slon, clon) = self.lon.to_radians().sin_cos();
        [clat * clon, clat * slon, slat]
    }
}

impl From<LatLon> for geo_types::Point<f64> {
    fn from(p: LatLon) -> Self {
        geo_types::Point::new(p.lon, p.lat)
    }
}

impl TryFrom<geo_types::Point<f64>> for LatLon {
    type Error = Error;
    fn try_from(p: geo_types::Point<f64>) -> Result<Self> {
        LatLon::new(p.y(), p.x())
    }
}

#[cfg(test)]
mod tests {
    use super::LatLon;

    /// `from_stored` and `new` accept exactly the finite values within the ranges, as the
    /// same bits with -0.0 made 0.0 — or a damaged or hand-written file would give a point
    /// that `new` refuses.
    fn accepts_exactly_the_valid_points(lat: f64, lon: f64) {
        let valid = lat.is_finite()
            && lon.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon);
        let positive_zero = |v: f64| if v == 0.0 { 0 } else { v.to_bits() };
        let expected = valid.then(|| (positive_zero(lat), positive_zero(lon)));
        let bits = |p: Option<LatLon>| p.map(|p| (p.lat().to_bits(), p.lon().to_bits()));
        assert_eq!(bits(LatLon::from_stored(lat, lon)), expected, "from_stored: lat {lat:?} lon {lon:?}");
        assert_eq!(bits(LatLon::new(lat, lon).ok()), expected, "new: lat {lat:?} lon {lon:?}");
    }

    #[test]
    fn from_stored_and_new_accept_exactly_the_valid_points_at_the_edges() {
        let edges = [
            0.0,
            -0.0,
            90.0,
            -90.0,
            180.0,
            -180.0,
            f64::from_bits(90f64.to_bits() + 1),
            f64::from_bits(180f64.to_bits() + 1),
            -f64::from_bits(90f64.to_bits() + 1),
            -f64::from_bits(180f64.to_bits() + 1),
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0,
            f64::MAX,
        ];
        for &lat in &edges {
            for &lon in &edges {
                accepts_exactly_the_valid_points(lat, lon);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn from_stored_and_new_accept_exactly_the_valid_points(
            lat in proptest::num::f64::ANY,
            lon in proptest::num::f64::ANY,
        ) {
            accepts_exactly_the_valid_points(lat, lon);
        }

        #[test]
        fn from_stored_and_new_accept_exactly_the_valid_points_near_the_ranges(
            lat in -91.0f64..91.0,
            lon in -181.0f64..181.0,
        ) {
            accepts_exactly_the_valid_points(lat, lon);
        }
    }
}
