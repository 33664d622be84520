//! Validated polygons and multipolygons with planar (GeoJSON / PostGIS geometry) semantics.

use super::grid::{bounds_of, edge_hit, Hit, Pt};
use super::validate::validate_polygon;
use super::{BoundingBox, LatLon};
use crate::error::{Error, Result};

/// A simple polygon with holes, in `[lon, lat]` degrees.
///
/// Edges are straight lines in the (longitude, latitude) plane, as in GeoJSON and PostGIS
/// `geometry`; a polygon never wraps across the antimeridian.
///
/// Being planar, it takes coordinates as points of that plane: longitudes 180 and -180 are
/// two lines, and a pole is the line `lat = ±90`. So a record stored at longitude 180 is not
/// covered by an edge at -180, nor one stored at the pole at longitude 50 by a vertex at the
/// pole at longitude 0 — while distances, [`BoundingBox`]es and H3 cells take each of these
/// as one place. A polygon cut at the antimeridian as RFC 7946 asks (a [`MultiPolygon`] with
/// a part on each side) has an edge at 180 and one at -180, and covers both.
///
/// Validation done by [`Polygon::new`] (ring and vertex numbers in errors are 0-based;
/// ring 0 is the exterior, ring `k + 1` is hole `k`):
/// - every coordinate is finite, longitude in [-180, 180], latitude in [-90, 90];
/// - every ring has at least 4 positions and is closed (first == last); an unclosed ring
///   is an error, it is not closed for you;
/// - repeated consecutive positions are removed (after which a ring still needs 4);
/// - every ring has non-zero area, and no ring touches or crosses itself;
/// - holes lie inside the exterior, and no hole lies inside another;
/// - two rings may touch at one point, as OGC allows — a vertex of one on the other, at a
///   vertex or inside an edge, their edges neither crossing nor running along each other
///   there — but not at two (the point is on the boundary: covered). Unlike OGC, a chain of
///   such touches that cuts the interior in pieces is not refused: each piece is covered.
///
/// Ring orientation (clockwise or not) is not checked and does not matter.
///
/// ```
/// use geocrm::{geo::Polygon, LatLon};
/// let square = vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]];
/// let hole = vec![[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0], [4.0, 4.0]];
/// let poly = Polygon::new(square.clone(), vec![hole])?;
/// assert!(poly.contains(LatLon::new(2.0, 2.0)?)); // (lat 2, lon 2)
/// assert!(poly.contains(LatLon::new(0.0, 5.0)?)); // on the boundary: covered
/// assert!(!poly.contains(LatLon::new(5.0, 5.0)?)); // inside the hole
/// assert!(poly.contains(LatLon::new(4.0, 5.0)?)); // on the hole's edge: covered
///
/// // A hole touching the exterior at one point (its corner) is valid; at two it is not.
/// let corner = vec![[0.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 0.0]];
/// assert!(Polygon::new(square.clone(), vec![corner]).is_ok());
/// let wedge = vec![[0.0, 0.0], [10.0, 0.0], [5.0, 2.0], [0.0, 0.0]]; // along an edge
/// assert!(Polygon::new(square.clone(), vec![wedge]).is_err());
///
/// // East of the antimeridian: its edge at -180 covers longitude -180, not 180.
/// let chukotka = Polygon::new(vec![[-180.0, 60.0], [-170.0, 60.0], [-170.0, 70.0], [-180.0, 70.0], [-180.0, 60.0]], vec![])?;
/// assert!(chukotka.contains(LatLon::new(65.0, -180.0)?));
/// assert!(!chukotka.contains(LatLon::new(65.0, 180.0)?));
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    rings: Vec<Vec<Pt>>,
    bbox: BoundingBox,
}

impl Polygon {
    /// Validates and builds a polygon from its exterior ring and holes, as `[lon, lat]`
    /// positions. See [`Polygon`] for the rules.
    ///
    /// # Errors
    /// [`Error::InvalidPolygon`] naming the ring and vertex at fault and what to do.
    pub fn new(exterior: Vec<[f64; 2]>, holes: Vec<Vec<[f64; 2]>>) -> Result<Polygon> {
        Polygon::with_context(exterior, holes, "")
    }

    /// As [`Polygon::new`], with `context` (e.g. `"feature 3, polygon 1: "`) put in front of
    /// every error reason.
    pub(crate) fn with_context(exterior: Vec<Pt>, holes: Vec<Vec<Pt>>, context: &str) -> Result<Polygon> {
        let mut rings = Vec::with_capacity(holes.len() + 1);
        rings.push(exterior);
        rings.extend(holes);
        let rings = validate_polygon(rings)
            .map_err(|reason| Error::InvalidPolygon { reason: format!("{context}{reason}") })?;
        let bbox = ring_bbox(rings.first().map(Vec::as_slice).unwrap_or(&[]))?;
        Ok(Polygon { rings, bbox })
    }

    /// The exterior ring, closed (first == last), without repeated consecutive positions.
    #[must_use]
    pub fn exterior(&self) -> &[[f64; 2]] {
        self.rings.first().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The holes, each closed like [`exterior`](Self::exterior).
    #[must_use]
    pub fn holes(&self) -> &[Vec<[f64; 2]>] {
        self.rings.get(1..).unwrap_or(&[])
    }

    /// All rings: the exterior first, then the holes.
    #[must_use]
    pub fn rings(&self) -> &[Vec<[f64; 2]>] {
        &self.rings
    }

    /// Number of edges over all rings.
    #[must_use]
    pub fn edge_count(&self) -> usize {
        self.rings.iter().map(|r| r.len().saturating_sub(1)).sum()
    }

    /// The bounding box of the exterior ring (never crosses the antimeridian).
    #[must_use]
    pub fn bbox(&self) -> BoundingBox {
        self.bbox
    }

    /// Whether the polygon covers the point: inside, or on the boundary of the exterior or
    /// of a hole. Points strictly inside a hole are outside.
    #[must_use]
    pub fn contains(&self, p: LatLon) -> bool {
        self.contains_xy([p.lon(), p.lat()])
    }

    pub(crate) fn contains_xy(&self, p: Pt) -> bool {
        let b = &self.bbox;
        if p[0] < b.west() || p[0] > b.east() || p[1] < b.south() || p[1] > b.north() {
            return false;
        }
        let mut inside = false;
        for ring in &self.rings {
            for w in ring.windows(2) {
                if let [a, b] = w {
                    match edge_hit(p, *a, *b) {
                        Hit::Boundary => return true,
                        Hit::Cross => inside = !inside,
                        Hit::Miss => {}
                    }
                }
            }
        }
        inside
    }
}

/// The bounding box of a validated ring.
fn ring_bbox(ring: &[Pt]) -> Result<BoundingBox> {
    let b = bounds_of(ring.iter().copied());
    BoundingBox::new(b[1], b[0], b[3], b[2])
}

/// One or more polygons; a point is covered when any polygon covers it.
///
/// ```
/// use geocrm::{geo::{MultiPolygon, Polygon}, LatLon};
/// let a = Polygon::new(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], vec![])?;
/// let b = Polygon::new(vec![[5.0, 5.0], [6.0, 5.0], [6.0, 6.0], [5.0, 5.0]], vec![])?;
/// let both = MultiPolygon::new(vec![a, b])?;
/// assert!(both.contains(LatLon::new(5.1, 5.9)?));
/// assert!(!both.contains(LatLon::new(3.0, 3.0)?));
/// assert_eq!(both.bbox().east(), 6.0);
/// # Ok::<(), geocrm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MultiPolygon {
    polygons: Vec<Polygon>,
    bbox: BoundingBox,
}

impl MultiPolygon {
    /// Builds a multipolygon. Polygons may overlap; they are not checked against each other.
    ///
    /// # Errors
    /// [`Error::InvalidPolygon`] when `polygons` is empty.
    pub fn new(polygons: Vec<Polygon>) -> Result<MultiPolygon> {
        let mut iter = polygons.iter();
        let Some(first) = iter.next() else {
            return Err(Error::InvalidPolygon {
                reason: "a multipolygon needs at least one polygon; none was given".into(),
            });
        };
        let bbox = iter.fold(first.bbox(), |acc, p| acc.union(&p.bbox()));
        Ok(MultiPolygon { polygons, bbox })
    }

    /// The polygons.
    #[must_use]
    pub fn polygons(&self) -> &[Polygon] {
        &self.polygons
    }

    /// The union of the polygons' bounding boxes ([`BoundingBox::union`]): when polygons
    /// lie on both sides of ±180° (Fiji, say), the shorter way round crosses the
    /// antimeridian, so the box may have `west > east`.
    #[must_use]
    pub fn bbox(&self) -> BoundingBox {
        self.bbox
    }

    /// Whether any polygon covers the point (see [`Polygon::contains`]).
    #[must_use]
    pub fn contains(&self, p: LatLon) -> bool {
        let xy = [p.lon(), p.lat()];
        self.polygons.iter().any(|poly| poly.contains_xy(xy))
    }

    /// The first edge spanning more than 180° of longitude, as its two `[lon, lat]` ends.
    /// Edges are straight in longitude and latitude (GeoJSON's planar reading), so such an
    /// edge goes the long way round the globe — rarely what a polygon near the antimeridian
    /// meant: RFC 7946 §3.1.9 asks for those to be cut in two at ±180. An edge with both
    /// ends on ±180 (a band around the whole globe) is not reported.
    ///
    /// ```
    /// use geocrm::geo::{MultiPolygon, Polygon};
    /// let ring = vec![[175.0, -20.0], [-175.0, -20.0], [-175.0, -15.0], [175.0, -15.0], [175.0, -20.0]];
    /// let fiji = Polygon::new(ring, vec![])?;
    /// assert_eq!(MultiPolygon::from(fiji).long_way_round_edge(), Some(([175.0, -20.0], [-175.0, -20.0])));
    /// # Ok::<(), geocrm::Error>(())
    /// ```
    #[must_use]
    pub fn long_way_round_edge(&self) -> Option<([f64; 2], [f64; 2])> {
        let on_antimeridian = |p: &[f64; 2]| p[0].abs() == 180.0;
        self.polygons.iter().flat_map(|p| p.rings()).find_map(|ring| {
            ring.windows(2).find_map(|w| match w {
                [a, b] if (a[0] - b[0]).abs() > 180.0 && !(on_antimeridian(a) && on_antimeridian(b)) => {
                    Some((*a, *b))
                }
                _ => None,
            })
        })
    }
}

impl From<Polygon> for MultiPolygon {
    fn from(p: Polygon) -> Self {
        let bbox = p.bbox();
        MultiPolygon { polygons: vec![p], bbox }
    }
}

fn ring_from_geo(ls: &geo_types::LineString<f64>) -> Vec<Pt> {
    ls.0.iter().map(|c| [c.x, c.y]).collect()
}

impl TryFrom<geo_types::Polygon<f64>> for Polygon {
    type Error = Error;
    /// `x` is longitude, `y` latitude. (geo-types closes rings itself.)
    fn try_from(p: geo_types::Polygon<f64>) -> Result<Polygon> {
        Polygon::new(ring_from_geo(p.exterior()), p.interiors().iter().map(ring_from_geo).collect())
    }
}

impl TryFrom<geo_types::MultiPolygon<f64>> for MultiPolygon {
    type Error = Error;
    fn try_from(mp: geo_types::MultiPolygon<f64>) -> Result<MultiPolygon> {
        let mut out = Vec::with_capacity(mp.0.len());
        for (i, p) in mp.0.iter().enumerate() {
            let holes = p.interiors().iter().map(ring_from_geo).collect();
            out.push(Polygon::with_context(ring_from_geo(p.exterior()), holes, &format!("polygon {i}: "))?);
        }
        MultiPolygon::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_and_conversion() {
        let sq = vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]];
        let hole = vec![[0.5, 0.5], [1.5, 0.5], [1.0, 1.5], [0.5, 0.5]];
        let p = Polygon::new(sq.clone(), vec![hole.clone()]).unwrap();
        assert_eq!(p.exterior(), sq.as_slice());
        assert_eq!(p.holes(), &[hole]);
        assert_eq!(p.rings().len(), 2);
        assert_eq!(p.edge_count(), 7);
        let mp = MultiPolygon::from(p.clone());
        assert_eq!(mp.bbox(), p.bbox());
        assert!(mp.contains(LatLon::new(0.5, 1.0).unwrap()), "on the hole's edge");
        assert!(!mp.contains(LatLon::new(1.0, 1.0).unwrap()), "inside the hole");
    }

    #[test]
    fn context_prefixes_reasons() {
        let r = Polygon::with_context(vec![[0.0, 0.0]], vec![], "polygon 3: ");
        assert!(
            matches!(r, Err(Error::InvalidPolygon { ref reason }) if reason.starts_with("polygon 3: ring 0"))
        );
    }
}
