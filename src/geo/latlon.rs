//! A validated WGS84 coordinate.

use crate::error::{Error, Result};

/// A WGS84 latitude/longitude in degrees: finite, latitude in [-90, 90], longitude in
/// [-180, 180]. The only way to build one is [`LatLon::new`], so every `LatLon` is valid.
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
        let reason = if !lat.is_finite() || !lon.is_finite() {
            Some("coordinates must be finite numbers")
        } else if !(-90.0..=90.0).contains(&lat) {
            Some("latitude must be within [-90, 90]")
        } else if !(-180.0..=180.0).contains(&lon) {
            Some("longitude must be within [-180, 180]")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidCoordinate { lat, lon, reason }),
            // Normalise -0.0 so equal points have equal bytes.
            None => Ok(LatLon { lat: lat + 0.0, lon: lon + 0.0 }),
        }
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
