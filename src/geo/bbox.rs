//! Latitude/longitude bounding boxes, and their enclosing boxes on the unit sphere.

use super::{LatLon, EARTH_RADIUS_M};
use crate::error::{Error, Result};

/// Padding, in degrees, added to every computed bound of [`BoundingBox::around`]
/// (about 0.1 mm) so floating-point rounding never leaves a point outside.
const AROUND_PAD_DEG: f64 = 1e-9;
/// Padding added to every bound of an [`Aabb3`] from [`BoundingBox::unit_aabbs`].
const AABB_PAD: f64 = 1e-12;

/// A latitude/longitude box in degrees, inclusive on its edges.
///
/// `west > east` means the box crosses the antimeridian (the GeoJSON `bbox` convention):
/// it holds the longitudes `>= west` and the longitudes `<= east`. Longitudes are compared
/// as numbers, so a box that must hold points on both sides of ±180° has to cross it;
/// [`BoundingBox::around`] does that for you. Two spellings of one place are one point, as
/// for distances ([`haversine_m`](super::haversine_m)): a record at longitude -180 is in a
/// box whose east edge is 180 (and the other way round), and a record at a pole is in every
/// box reaching that pole, whatever its longitude ([`BoundingBox::contains`]; since the
/// twenty-sixth part — before, the stored numbers were compared as written).
/// [`BoundingBox::intersects`] and [`BoundingBox::contains_box`] compare boxes as numbers.
///
/// ```
/// use geocrm::{geo::BoundingBox, LatLon};
/// let pacific = BoundingBox::new(-10.0, 170.0, 10.0, -170.0)?; // crosses the antimeridian
/// assert!(pacific.contains(LatLon::new(0.0, 179.5)?));
/// assert!(pacific.contains(LatLon::new(0.0, -175.0)?));
/// assert!(!pacific.contains(LatLon::new(0.0, 0.0)?));
///
/// let paris = LatLon::new(48.8566, 2.3522)?;
/// let near = BoundingBox::around(paris, 10_000.0)?; // every point within 10 km
/// assert!(near.contains(LatLon::new(48.9, 2.4)?));
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    south: f64,
    west: f64,
    north: f64,
    east: f64,
}

/// An axis-aligned box in 3D, on unit-sphere coordinates (see [`LatLon::to_unit_vector`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aabb3 {
    /// Lower corner `[x, y, z]`.
    pub min: [f64; 3],
    /// Upper corner `[x, y, z]`.
    pub max: [f64; 3],
}

impl Aabb3 {
    /// Whether `v` lies inside the box (inclusive).
    #[must_use]
    pub fn contains(&self, v: [f64; 3]) -> bool {
        (0..3).all(|i| self.min[i] <= v[i] && v[i] <= self.max[i])
    }

    /// Whether the two boxes share at least one point.
    #[must_use]
    pub fn intersects(&self, other: &Aabb3) -> bool {
        (0..3).all(|i| self.min[i] <= other.max[i] && other.min[i] <= self.max[i])
    }
}

impl BoundingBox {
    /// Validates and builds a box from its south, west, north and east edges in degrees.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`bbox`) when a value is not finite, a latitude is outside
    /// [-90, 90], a longitude outside [-180, 180], or `south > north`.
    pub fn new(south: f64, west: f64, north: f64, east: f64) -> Result<Self> {
        let named = [("south", south), ("west", west), ("north", north), ("east", east)];
        for (name, v) in named {
            let limit = if name == "south" || name == "north" { 90.0 } else { 180.0 };
            if !v.is_finite() {
                return Err(Error::invalid_argument("bbox", format!("{name} is {v}; give a finite number")));
            }
            if !(-limit..=limit).contains(&v) {
                return Err(Error::invalid_argument(
                    "bbox",
                    format!("{name} is {v}; it must be within [-{limit}, {limit}] degrees"),
                ));
            }
        }
        if south > north {
            return Err(Error::invalid_argument(
                "bbox",
                format!("south ({south}) is greater than north ({north}); swap them"),
            ));
        }
        Ok(BoundingBox { south: south + 0.0, west: west + 0.0, north: north + 0.0, east: east + 0.0 })
    }

    /// The whole world: latitudes [-90, 90], longitudes [-180, 180].
    #[must_use]
    pub fn world() -> Self {
        BoundingBox { south: -90.0, west: -180.0, north: 90.0, east: 180.0 }
    }

    /// Southern edge (minimum latitude), degrees.
    #[must_use]
    pub fn south(&self) -> f64 {
        self.south
    }

    /// Western edge, degrees. Greater than [`east`](Self::east) when the box crosses the
    /// antimeridian.
    #[must_use]
    pub fn west(&self) -> f64 {
        self.west
    }

    /// Northern edge (maximum latitude), degrees.
    #[must_use]
    pub fn north(&self) -> f64 {
        self.north
    }

    /// Eastern edge, degrees.
    #[must_use]
    pub fn east(&self) -> f64 {
        self.east
    }

    /// Whether the box crosses the antimeridian (`west > east`).
    #[must_use]
    pub fn crosses_antimeridian(&self) -> bool {
        self.west > self.east
    }

    /// The longitude intervals the box covers: one, or two when it crosses the antimeridian
    /// (`[west, 180]` then `[-180, east]`).
    #[must_use]
    pub fn lon_intervals(&self) -> Vec<[f64; 2]> {
        self.lon_spans().collect()
    }

    /// [`BoundingBox::lon_intervals`] without allocating (index nodes are classified by it).
    pub(crate) fn lon_spans(&self) -> impl Iterator<Item = [f64; 2]> + Clone {
        let (first, second) = if self.crosses_antimeridian() {
            ([self.west, 180.0], Some([-180.0, self.east]))
        } else {
            ([self.west, self.east], None)
        };
        std::iter::once(first).chain(second)
    }

    /// How a longitude/latitude rectangle (`west ≤ east`, not wrapping) relates to this box:
    /// [`Inside`](super::Relation::Inside) when every point of it is in the box,
    /// [`Outside`](super::Relation::Outside) when none is, else
    /// [`Partial`](super::Relation::Partial). Longitudes compare as numbers, except that a
    /// rectangle reaching ±180 or a pole this box touches (under the other sign, or any
    /// longitude) is never `Outside`: it may hold points [`BoundingBox::contains`] takes.
    /// Used to classify index nodes.
    ///
    /// ```
    /// use geocrm::geo::{BoundingBox, Relation};
    /// let pacific = BoundingBox::new(-10.0, 170.0, 10.0, -170.0)?; // crosses the antimeridian
    /// assert_eq!(pacific.classify_lonlat(172.0, -1.0, 175.0, 1.0), Relation::Inside);
    /// assert_eq!(pacific.classify_lonlat(0.0, -1.0, 5.0, 1.0), Relation::Outside);
    /// assert_eq!(pacific.classify_lonlat(165.0, -1.0, 175.0, 1.0), Relation::Partial);
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    #[must_use]
    pub fn classify_lonlat(&self, west: f64, south: f64, east: f64, north: f64) -> super::Relation {
        use super::Relation;
        if north < self.south() || south > self.north() {
            return Relation::Outside;
        }
        let lat_inside = south >= self.south() && north <= self.north();
        let mut overlaps = false;
        for [w, e] in self.lon_spans() {
            if east < w || west > e {
                continue;
            }
            if lat_inside && west >= w && east <= e {
                return Relation::Inside;
            }
            overlaps = true;
        }
        // A rectangle reaching ±180 or a pole holds points the box contains written with
        // another longitude (see `contains`): the per-point test decides.
        overlaps = overlaps
            || (west <= -180.0 && self.contains_lon(180.0))
            || (east >= 180.0 && self.contains_lon(-180.0))
            || (north >= 90.0 && self.north >= 90.0)
            || (south <= -90.0 && self.south <= -90.0);
        if overlaps {
            Relation::Partial
        } else {
            Relation::Outside
        }
    }

    /// Whether the point is inside the box, edges included. A pole is one point: it is
    /// inside when the box reaches it, whatever its longitude; longitudes -180 and 180 are
    /// one meridian.
    ///
    /// ```
    /// use geocrm::{geo::BoundingBox, LatLon};
    /// let b = BoundingBox::new(80.0, 170.0, 90.0, 180.0)?;
    /// assert!(b.contains(LatLon::new(85.0, -180.0)?));
    /// assert!(b.contains(LatLon::new(90.0, 0.0)?));
    /// assert!(!b.contains(LatLon::new(85.0, 0.0)?));
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    #[must_use]
    pub fn contains(&self, p: LatLon) -> bool {
        self.contains_lat_lon(p.lat(), p.lon())
    }

    /// [`contains`](Self::contains) for a latitude and longitude in degrees not yet made a
    /// [`LatLon`]; NaN is never inside.
    #[must_use]
    #[inline]
    pub(crate) fn contains_lat_lon(&self, lat: f64, lon: f64) -> bool {
        if !(lat >= self.south && lat <= self.north) {
            return false;
        }
        // A pole is one point, whatever longitude it was written with; -180 and 180 are one
        // meridian (as the radius and nearest queries have them: from a hands-on review).
        lat.abs() == 90.0
            || self.contains_lon(lon)
            || (lon == -180.0 && self.contains_lon(180.0))
            || (lon == 180.0 && self.contains_lon(-180.0))
    }

    /// Whether the longitude is within the box's longitude span(s), as a number.
    #[inline]
    fn contains_lon(&self, lon: f64) -> bool {
        if self.crosses_antimeridian() {
            lon >= self.west || lon <= self.east
        } else {
            self.west <= lon && lon <= self.east
        }
    }

    /// Whether the two boxes share at least one point (edges included), their longitudes
    /// compared as numbers (boxes meeting only at ±180 or at a pole do not).
    #[must_use]
    pub fn intersects(&self, other: &BoundingBox) -> bool {
        if self.south > other.north || other.south > self.north {
            return false;
        }
        let theirs = other.lon_spans();
        self.lon_spans().any(|a| theirs.clone().any(|b| a[0] <= b[1] && b[0] <= a[1]))
    }

    /// Whether every point of `other` is inside `self`, longitudes compared as numbers.
    #[must_use]
    pub fn contains_box(&self, other: &BoundingBox) -> bool {
        if other.south < self.south || other.north > self.north {
            return false;
        }
        let mine = self.lon_spans();
        other.lon_spans().all(|b| mine.clone().any(|a| a[0] <= b[0] && b[1] <= a[1]))
    }

    /// The smallest box (by longitude span) holding both boxes. Never smaller than either.
    #[must_use]
    pub fn union(&self, other: &BoundingBox) -> BoundingBox {
        let south = self.south.min(other.south);
        let north = self.north.max(other.north);
        let candidates = [
            (self.west, self.east),
            (other.west, other.east),
            (self.west, other.east),
            (other.west, self.east),
            (self.west.min(other.west), self.east.max(other.east)),
        ];
        let mut best = BoundingBox { south, west: -180.0, north, east: 180.0 };
        let mut best_span = 360.0;
        for (west, east) in candidates {
            let cand = BoundingBox { south, west, north, east };
            let span = if west <= east { east - west } else { east - west + 360.0 };
            if span < best_span && cand.contains_box(self) && cand.contains_box(other) {
                best = cand;
                best_span = span;
            }
        }
        best
    }

    /// A box guaranteed to contain every point within `metres` great-circle distance of
    /// `center` (on the sphere of radius [`EARTH_RADIUS_M`]).
    ///
    /// A cap that reaches a pole gets the full longitude range; one that reaches past ±180°
    /// crosses the antimeridian (`west > east`); `metres` of half the circumference or more
    /// gives the whole world.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`metres`) when `metres` is negative or not finite.
    pub fn around(center: LatLon, metres: f64) -> Result<BoundingBox> {
        if !metres.is_finite() || metres < 0.0 {
            return Err(Error::invalid_argument(
                "metres",
                format!("radius is {metres}; give a finite distance >= 0 in metres"),
            ));
        }
        let angle = metres / EARTH_RADIUS_M; // radians
        if angle >= std::f64::consts::PI {
            return Ok(BoundingBox::world());
        }
        let angle = angle * (1.0 + 1e-12) + 1e-15;
        let d_deg = angle.to_degrees() + AROUND_PAD_DEG;
        let (lat, lon) = (center.lat(), center.lon());
        let south = lat - d_deg;
        let north = lat + d_deg;
        if north >= 90.0 || south <= -90.0 {
            return Ok(BoundingBox {
                south: south.max(-90.0),
                west: -180.0,
                north: north.min(90.0),
                east: 180.0,
            });
        }
        // The cap holds no pole, so |lat| + angle < 90° and sin(angle) < cos(lat).
        let ratio = angle.sin() / lat.to_radians().cos();
        // Next to 1, `asin` turns the ratio's last-bit rounding into more than the padding
        // (its slope is 1/√(1−r²)); below 1 − 1e-6 the error stays under 1e-11°. Above, the
        // box spans more than ±89.9° of longitude anyway: take all of it.
        if ratio >= 1.0 - 1e-6 {
            return Ok(BoundingBox { south, west: -180.0, north, east: 180.0 });
        }
        let dlon = ratio.asin().to_degrees() * (1.0 + 1e-12) + AROUND_PAD_DEG;
        if dlon >= 180.0 {
            return Ok(BoundingBox { south, west: -180.0, north, east: 180.0 });
        }
        let mut west = lon - dlon;
        let mut east = lon + dlon;
        // Longitudes -180 and 180 are one meridian: a box reaching it must hold both.
        if west <= -180.0 {
            west += 360.0;
        }
        if east >= 180.0 {
            east -= 360.0;
        }
        Ok(BoundingBox { south, west, north, east })
    }

    /// One or two axis-aligned 3D boxes that together contain the unit vector
    /// ([`LatLon::to_unit_vector`]) of every point inside this box; two when the box crosses
    /// the antimeridian. The boxes are tight (exact ranges of the coordinate functions,
    /// padded by 1e-12 for rounding).
    ///
    /// ```
    /// use geocrm::{geo::BoundingBox, LatLon};
    /// let b = BoundingBox::new(10.0, 20.0, 11.0, 21.0)?;
    /// let boxes = b.unit_aabbs();
    /// assert_eq!(boxes.len(), 1);
    /// assert!(boxes[0].contains(LatLon::new(10.5, 20.5)?.to_unit_vector()));
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    #[must_use]
    pub fn unit_aabbs(&self) -> Vec<Aabb3> {
        self.lon_spans().map(|[w, e]| self.aabb_for(w, e)).collect()
    }

    fn aabb_for(&self, w: f64, e: f64) -> Aabb3 {
        let (s, n) = (self.south, self.north);
        let cos_d = |d: f64| d.to_radians().cos();
        let sin_d = |d: f64| d.to_radians().sin();
        let inside = |v: f64, lo: f64, hi: f64| lo <= v && v <= hi;
        // cos φ over [s, n]: maximum at 0 when inside, minimum at an end.
        let cphi = [cos_d(s).min(cos_d(n)), if inside(0.0, s, n) { 1.0 } else { cos_d(s).max(cos_d(n)) }];
        let cos_lam = [
            if w <= -180.0 || e >= 180.0 { -1.0 } else { cos_d(w).min(cos_d(e)) },
            if inside(0.0, w, e) { 1.0 } else { cos_d(w).max(cos_d(e)) },
        ];
        let sin_lam = [
            if inside(-90.0, w, e) { -1.0 } else { sin_d(w).min(sin_d(e)) },
            if inside(90.0, w, e) { 1.0 } else { sin_d(w).max(sin_d(e)) },
        ];
        let x = product_range(cphi, cos_lam);
        let y = product_range(cphi, sin_lam);
        let z = [sin_d(s), sin_d(n)];
        Aabb3 {
            min: [x[0] - AABB_PAD, y[0] - AABB_PAD, z[0] - AABB_PAD],
            max: [x[1] + AABB_PAD, y[1] + AABB_PAD, z[1] + AABB_PAD],
        }
    }
}

/// Range of `a * b` for `a` in `ra` and `b` in `rb` (independent intervals).
fn product_range(ra: [f64; 2], rb: [f64; 2]) -> [f64; 2] {
    let p = [ra[0] * rb[0], ra[0] * rb[1], ra[1] * rb[0], ra[1] * rb[1]];
    [p.iter().copied().fold(f64::INFINITY, f64::min), p.iter().copied().fold(f64::NEG_INFINITY, f64::max)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_bad_values() {
        assert!(matches!(BoundingBox::new(f64::NAN, 0.0, 1.0, 1.0), Err(Error::InvalidArgument { .. })));
        assert!(matches!(BoundingBox::new(0.0, -181.0, 1.0, 1.0), Err(Error::InvalidArgument { .. })));
        assert!(matches!(BoundingBox::new(2.0, 0.0, 1.0, 1.0), Err(Error::InvalidArgument { .. })));
        assert!(BoundingBox::new(0.0, 170.0, 1.0, -170.0).is_ok());
    }

    #[test]
    fn union_across_antimeridian_is_small() {
        let a = BoundingBox::new(0.0, 170.0, 1.0, 175.0).unwrap();
        let b = BoundingBox::new(0.0, -175.0, 1.0, -170.0).unwrap();
        let u = a.union(&b);
        assert_eq!((u.west(), u.east()), (170.0, -170.0));
        let c = BoundingBox::new(0.0, 0.0, 1.0, 10.0).unwrap();
        let d = BoundingBox::new(-5.0, 5.0, 0.5, 20.0).unwrap();
        let u = c.union(&d);
        assert_eq!((u.south(), u.west(), u.north(), u.east()), (-5.0, 0.0, 1.0, 20.0));
    }

    #[test]
    fn around_pole_is_full_longitude() {
        let b = BoundingBox::around(LatLon::new(89.9, 10.0).unwrap(), 50_000.0).unwrap();
        assert_eq!((b.west(), b.east(), b.north()), (-180.0, 180.0, 90.0));
    }

    #[test]
    fn around_touching_antimeridian_crosses() {
        let b = BoundingBox::around(LatLon::new(0.0, 179.99).unwrap(), 5_000.0).unwrap();
        assert!(b.crosses_antimeridian());
        assert!(b.contains(LatLon::new(0.0, -179.99).unwrap()));
    }
}
