//! Geometry: validated coordinates, great-circle distance, bounding boxes, polygons and
//! GeoJSON input.

mod bbox;
mod distance;
mod geojson_input;
mod grid;
mod latlon;
mod polygon;
mod prepared;
mod validate;

pub use bbox::{Aabb3, BoundingBox};
pub use distance::{chord2, chord_to_metres, haversine_m, metres_to_chord, HaversineFrom, EARTH_RADIUS_M};
pub use geojson_input::parse_geojson;
pub use latlon::LatLon;
pub use polygon::{MultiPolygon, Polygon};
pub use prepared::{PreparedRegion, Relation};
