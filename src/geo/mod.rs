//! Geometry: validated coordinates, great-circle distance, bounding boxes, polygons and
//! GeoJSON input.

mod distance;
mod latlon;

pub use distance::{chord2, chord_to_metres, haversine_m, metres_to_chord, EARTH_RADIUS_M};
pub use latlon::LatLon;
