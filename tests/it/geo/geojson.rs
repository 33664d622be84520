//! parse_geojson: every accepted type and every rejected one, with useful reasons.

use geocrm::geo::parse_geojson;
use geocrm::{Error, LatLon};

const SQUARE: &str =
    r#"{"type": "Polygon", "coordinates": [[[0,0],[4,0],[4,4],[0,4],[0,0]], [[1,1],[2,1],[2,2],[1,1]]]}"#;
const FAR: &str =
    r#"{"type": "Polygon", "coordinates": [[[10,10,100],[11,10,100],[11,11,100],[10,10,100]]]}"#;

fn geojson_reason(text: &str) -> String {
    let r = parse_geojson(text);
    assert!(matches!(r, Err(Error::InvalidGeoJson { .. })), "{text} gave {r:?}");
    match r {
        Err(Error::InvalidGeoJson { reason }) => reason,
        _ => unreachable!(),
    }
}

fn polygon_reason(text: &str) -> String {
    let r = parse_geojson(text);
    assert!(matches!(r, Err(Error::InvalidPolygon { .. })), "{text} gave {r:?}");
    match r {
        Err(Error::InvalidPolygon { reason }) => reason,
        _ => unreachable!(),
    }
}

fn at(lat: f64, lon: f64) -> LatLon {
    LatLon::new(lat, lon).unwrap()
}

#[test]
fn accepts_each_type() {
    // With a byte-order mark too (some editors write one; the CSV import skips it as well).
    assert_eq!(parse_geojson(&format!("\u{feff}{SQUARE}")).unwrap(), parse_geojson(SQUARE).unwrap());
    let p = parse_geojson(SQUARE).unwrap();
    assert_eq!(p.polygons().len(), 1);
    assert_eq!(p.polygons()[0].holes().len(), 1);
    assert!(p.contains(at(3.0, 3.0)) && !p.contains(at(1.2, 1.5)) && !p.contains(at(3.0, 5.0)));

    let multi = r#"{"type": "MultiPolygon", "coordinates": [[[[0,0],[4,0],[4,4],[0,0]]], [[[10,10],[11,10],[11,11],[10,10]]]]}"#;
    let m = parse_geojson(multi).unwrap();
    assert_eq!(m.polygons().len(), 2);
    assert!(m.contains(at(10.2, 10.5)));

    let feature = format!(r#"{{"type": "Feature", "id": 7, "properties": null, "geometry": {SQUARE}}}"#);
    assert_eq!(parse_geojson(&feature).unwrap().polygons().len(), 1);

    let fc = format!(
        r#"{{"type": "FeatureCollection", "features": [
            {{"type": "Feature", "properties": {{"name": "a"}}, "geometry": {SQUARE}}},
            {{"type": "Feature", "properties": {{}}, "geometry": {FAR}}}]}}"#
    );
    let merged = parse_geojson(&fc).unwrap();
    assert_eq!(merged.polygons().len(), 2, "all polygons merged");
    assert!(merged.contains(at(10.5, 10.9)) && merged.contains(at(0.5, 3.0)));
    assert_eq!((merged.bbox().south(), merged.bbox().east()), (0.0, 11.0));

    let gc = format!(r#"{{"type": "GeometryCollection", "geometries": [{SQUARE}, {FAR}]}}"#);
    assert_eq!(parse_geojson(&gc).unwrap().polygons().len(), 2);
}

#[test]
fn rejects_other_types_and_shapes() {
    let point = geojson_reason(r#"{"type": "Point", "coordinates": [1, 2]}"#);
    assert!(point.contains("Point") && point.contains("only Polygon and MultiPolygon"), "{point}");
    let line = geojson_reason(r#"{"type": "LineString", "coordinates": [[1, 2], [3, 4]]}"#);
    assert!(line.contains("LineString"), "{line}");
    // A type name in the wrong case gets the right spelling, in a Feature too; an unknown
    // name is called that, not "a … is not a region" (it said "a polygon is not a region").
    let lower = geojson_reason(r#"{"type": "polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}"#);
    assert!(
        lower.contains(
            "type \"polygon\" is not a GeoJSON type: type names are case-sensitive, write \"Polygon\""
        ),
        "{lower}"
    );
    let feature =
        geojson_reason(r#"{"type": "Feature", "geometry": {"type": "MULTIPOLYGON", "coordinates": []}}"#);
    assert!(feature.contains("write \"MultiPolygon\""), "{feature}");
    let unknown =
        geojson_reason(&format!(r#"{{"type": "Circle{}", "coordinates": [1, 2]}}"#, "x".repeat(100)));
    assert!(
        unknown.contains("type \"Circlexxx") && unknown.contains("\"… is not a GeoJSON type; only Polygon"),
        "{unknown}"
    );
    assert!(!unknown.contains(&"x".repeat(50)), "{unknown}");
    let no_geom = geojson_reason(r#"{"type": "Feature", "properties": {}, "geometry": null}"#);
    assert!(no_geom.contains("no geometry"), "{no_geom}");
    let no_geom_member = geojson_reason(r#"{"type": "Feature", "properties": {}}"#);
    assert!(no_geom_member.contains("no geometry"), "{no_geom_member}");
    let empty = geojson_reason(r#"{"type": "FeatureCollection", "features": []}"#);
    assert!(empty.contains("no features"), "{empty}");
    let empty_gc = geojson_reason(r#"{"type": "GeometryCollection", "geometries": []}"#);
    assert!(empty_gc.contains("no geometries"), "{empty_gc}");
    let empty_multi = geojson_reason(r#"{"type": "MultiPolygon", "coordinates": []}"#);
    assert!(empty_multi.contains("no polygons"), "{empty_multi}");
    let no_rings = geojson_reason(r#"{"type": "Polygon", "coordinates": []}"#);
    assert!(no_rings.contains("no rings"), "{no_rings}");
    let fc = format!(
        r#"{{"type": "FeatureCollection", "features": [{{"type": "Feature", "geometry": {SQUARE}}},
        {{"type": "Feature", "geometry": {{"type": "Point", "coordinates": [0, 0]}}}}]}}"#
    );
    let second = geojson_reason(&fc);
    assert!(second.starts_with("feature 1: ") && second.contains("Point"), "{second}");
    let bad_json = geojson_reason("{\"type\": \"Polygon\",\n  \"coordinates\": [[[0,0],[1,0]]\n  oops }");
    assert!(bad_json.contains("line 3") && bad_json.contains("column"), "{bad_json}");
    assert!(geojson_reason("[1, 2]").contains("expected a GeoJSON object"));
    assert!(geojson_reason(r#"{"coordinates": []}"#).contains("\"type\""));
    assert!(geojson_reason(r#"{"type": "Bogus"}"#).contains("Bogus"));
    let short = geojson_reason(r#"{"type": "Polygon", "coordinates": [[[0,0],[1],[1,1],[0,0]]]}"#);
    assert!(short.contains("ring 0, position 1"), "{short}");
    let text = geojson_reason(r#"{"type": "Polygon", "coordinates": [[[0,0],["1",0],[1,1],[0,0]]]}"#);
    assert!(text.contains("position 1") && text.contains("numbers"), "{text}");
    let no_coords = geojson_reason(r#"{"type": "Polygon"}"#);
    assert!(no_coords.contains("coordinates"), "{no_coords}");
}

#[test]
fn ring_errors_name_feature_polygon_ring_vertex() {
    let unclosed = r#"{"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}},
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[0,0],[1,0],[1,1],[0,0]]],
            [[[5,5],[6,5],[6,6],[5,6]]]]}}]}"#;
    let msg = polygon_reason(unclosed);
    assert!(msg.starts_with("feature 1: polygon 1: ring 0 (the exterior) is not closed"), "{msg}");
    let swapped = r#"{"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]], [[0.5,0.2],[0.6,100],[0.6,0.3],[0.5,0.2]]]}"#;
    let msg = polygon_reason(swapped);
    assert!(msg.starts_with("ring 1 (hole 0), vertex 1: latitude 100"), "{msg}");
    let bowtie = r#"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[2,2],[2,0],[0,2],[0,0]]]}}"#;
    assert!(polygon_reason(bowtie).contains("crosses or touches itself"));
}
