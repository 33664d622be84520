//! Geometry: validated coordinates, great-circle distance, bounding boxes, polygons and
//! GeoJSON input.

mod bbox;
mod distance;
#[allow(dead_code)] // used by polygons, which come next
mod grid;
mod latlon;

pub use bbox::{Aabb3, BoundingBox};
pub use distance::{chord2, chord_to_metres, haversine_m, metres_to_chord, EARTH_RADIUS_M};
pub use latlon::LatLon;
