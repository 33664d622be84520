//! Geometry: bounding boxes, polygons, prepared regions and GeoJSON input, each checked
//! against an independent brute force in `support`.

mod bbox;
mod geojson;
mod polygon;
mod prepared;
mod support;
