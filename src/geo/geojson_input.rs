//! Reading regions from GeoJSON text.

use serde_json::{Map, Value};

use super::{MultiPolygon, Polygon};
use crate::error::{Error, Result};

/// Parses GeoJSON text into one [`MultiPolygon`].
///
/// Accepted: a `Polygon`, a `MultiPolygon`, a `Feature` whose geometry is one of those, a
/// `FeatureCollection` of such features, or a `GeometryCollection` of such geometries
/// (collections may nest); all polygons are merged into one multipolygon. Positions are
/// `[lon, lat]`; a third value (altitude) is ignored. Rings are validated as by
/// [`Polygon::new`].
///
/// ```
/// use geocrm::{geo::parse_geojson, LatLon};
/// let region = parse_geojson(r#"{"type": "Feature", "properties": {"name": "A"},
///   "geometry": {"type": "Polygon", "coordinates": [[[0,0],[4,0],[4,4],[0,4],[0,0]]]}}"#)?;
/// assert!(region.contains(LatLon::new(2.0, 2.0)?));
/// assert!(parse_geojson(r#"{"type": "Point", "coordinates": [1, 2]}"#).is_err());
/// # Ok::<(), geocrm::Error>(())
/// ```
///
/// # Errors
/// - [`Error::InvalidGeoJson`] for malformed JSON (with line and column), unsupported
///   types (Point, LineString, …), a feature without geometry, an empty collection, or
///   malformed coordinates; the reason names the feature, polygon, ring and position.
/// - [`Error::InvalidPolygon`] for rings that fail validation, prefixed the same way.
pub fn parse_geojson(text: &str) -> Result<MultiPolygon> {
    // A byte-order mark some editors write (JSON forbids it; the CSV import skips it too).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidGeoJson {
        reason: format!("not valid JSON at line {}, column {}: {e}", e.line(), e.column()),
    })?;
    let mut polygons = Vec::new();
    collect(&value, "", &mut polygons)?;
    MultiPolygon::new(polygons).map_err(|_| bad("the input holds no polygon"))
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidGeoJson { reason: reason.into() }
}

/// `where_` is a prefix like `"feature 3: "` or `""` at the top level.
fn collect(value: &Value, where_: &str, out: &mut Vec<Polygon>) -> Result<()> {
    let obj = value
        .as_object()
        .ok_or_else(|| bad(format!("{where_}expected a GeoJSON object, found {}", kind(value))))?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{where_}the object has no \"type\" string member")))?;
    match ty {
        "Polygon" => {
            let rings = coordinates(obj, where_)?;
            out.push(polygon(rings, where_)?);
        }
        "MultiPolygon" => {
            let polys = coordinates(obj, where_)?.as_array().ok_or_else(|| {
                bad(format!("{where_}MultiPolygon coordinates must be an array of polygons"))
            })?;
            if polys.is_empty() {
                return Err(bad(format!("{where_}the MultiPolygon has no polygons")));
            }
            for (i, p) in polys.iter().enumerate() {
                out.push(polygon(p, &format!("{where_}polygon {i}: "))?);
            }
        }
        "Feature" => match obj.get("geometry") {
            None | Some(Value::Null) => {
                return Err(bad(format!(
                    "{where_}the Feature has no geometry; give it a Polygon or MultiPolygon geometry"
                )))
            }
            Some(g) => collect(g, where_, out)?,
        },
        "FeatureCollection" => {
            let features = member_array(obj, "features", where_)?;
            if features.is_empty() {
                return Err(bad(format!("{where_}the FeatureCollection has no features")));
            }
            for (i, f) in features.iter().enumerate() {
                if f.get("type").and_then(Value::as_str) != Some("Feature") {
                    return Err(bad(format!(
                        "{where_}feature {i}: a FeatureCollection member must be a Feature"
                    )));
                }
                collect(f, &format!("{where_}feature {i}: "), out)?;
            }
        }
        "GeometryCollection" => {
            let geometries = member_array(obj, "geometries", where_)?;
            if geometries.is_empty() {
                return Err(bad(format!("{where_}the GeometryCollection has no geometries")));
            }
            for (i, g) in geometries.iter().enumerate() {
                collect(g, &format!("{where_}geometry {i}: "), out)?;
            }
        }
        other => return Err(bad(format!("{where_}{}", not_a_region(other)))),
    }
    Ok(())
}

/// Why a `type` other than the five accepted ones is refused: a geometry that is not an
/// area, a type name in the wrong case, or a name GeoJSON does not have.
fn not_a_region(ty: &str) -> String {
    const ACCEPTED: &str = "only Polygon and MultiPolygon geometries (bare, in a Feature, \
                            FeatureCollection or GeometryCollection) are accepted";
    const ALL: [&str; 9] = [
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Feature",
        "FeatureCollection",
    ];
    if ALL.contains(&ty) {
        return format!("a {ty} is not a region; {ACCEPTED}");
    }
    if let Some(name) = ALL.iter().find(|name| name.eq_ignore_ascii_case(ty)) {
        return format!("type {ty:?} is not a GeoJSON type: type names are case-sensitive, write {name:?}");
    }
    let shown: String = ty.chars().take(40).collect();
    let more = if shown.len() < ty.len() { "…" } else { "" };
    format!("type {shown:?}{more} is not a GeoJSON type; {ACCEPTED}")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn coordinates<'a>(obj: &'a Map<String, Value>, where_: &str) -> Result<&'a Value> {
    obj.get("coordinates").ok_or_else(|| bad(format!("{where_}the geometry has no \"coordinates\" member")))
}

fn member_array<'a>(obj: &'a Map<String, Value>, name: &str, where_: &str) -> Result<&'a Vec<Value>> {
    obj.get(name).and_then(Value::as_array).ok_or_else(|| bad(format!("{where_}\"{name}\" must be an array")))
}

/// One polygon's coordinates: an array of rings, each an array of positions.
fn polygon(value: &Value, where_: &str) -> Result<Polygon> {
    let rings = value.as_array().ok_or_else(|| {
        bad(format!("{where_}polygon coordinates must be an array of rings, found {}", kind(value)))
    })?;
    let Some((exterior, holes)) = rings.split_first() else {
        return Err(bad(format!("{where_}the polygon has no rings")));
    };
    let exterior = ring(exterior, where_, 0)?;
    let holes = holes.iter().enumerate().map(|(j, r)| ring(r, where_, j + 1)).collect::<Result<Vec<_>>>()?;
    Polygon::with_context(exterior, holes, where_)
}

fn ring(value: &Value, where_: &str, j: usize) -> Result<Vec<[f64; 2]>> {
    let positions = value.as_array().ok_or_else(|| {
        bad(format!("{where_}ring {j} must be an array of positions, found {}", kind(value)))
    })?;
    positions
        .iter()
        .enumerate()
        .map(|(k, p)| match p.as_array().map(Vec::as_slice) {
            Some([lon, lat, rest @ ..]) => match (lon.as_f64(), lat.as_f64()) {
                // An altitude (or any further number, RFC 7946 § 3.1.1) is ignored; anything
                // else is a broken position, not data to drop silently.
                (Some(_), Some(_)) if !rest.iter().all(Value::is_number) => Err(bad(format!(
                    "{where_}ring {j}, position {k}: a member after [lon, lat] must be a number (an altitude)"
                ))),
                (Some(lon), Some(lat)) => Ok([lon, lat]),
                _ => Err(bad(format!("{where_}ring {j}, position {k}: [lon, lat] must be numbers"))),
            },
            _ => Err(bad(format!(
                "{where_}ring {j}, position {k}: a position must be an array [lon, lat], found {}",
                if p.is_array() { "a shorter array" } else { kind(p) }
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Coordinates come in exactly as written: serde_json's default number parser was one
    /// ulp off for about one in eight 17-digit values (Python's `repr` form), which moved a
    /// vertex off a point lying on the edge (from the query review).
    #[test]
    fn coordinates_parse_to_the_nearest_f64() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lon = (x >> 11) as f64 / (1u64 << 53) as f64 * 360.0 - 180.0;
            let lat = (x & 0xffff) as f64 / 65536.0 * 90.0;
            let text = format!(
                r#"{{"type": "Polygon", "coordinates": [[[{lon:?},{lat:?}],[{lon:?},89],[179,89],[{lon:?},{lat:?}]]]}}"#
            );
            let mp = parse_geojson(&text).unwrap();
            assert_eq!(mp.polygons()[0].exterior()[0], [lon, lat], "{lon:?} {lat:?}");
        }
        let text =
            r#"{"type":"Polygon","coordinates":[[[-110,0],[-100.56515759322791,0],[-110,10],[-110,0]]]}"#;
        assert_eq!(parse_geojson(text).unwrap().polygons()[0].exterior()[1][0], -100.56515759322791);
    }

    #[test]
    fn altitude_is_ignored_and_nesting_is_reported() {
        let mp = parse_geojson(r#"{"type": "Polygon", "coordinates": [[[0,0,5],[1,0,5],[1,1,5],[0,0,5]]]}"#)
            .unwrap();
        assert_eq!(mp.polygons()[0].exterior()[1], [1.0, 0.0]);
        let nested = r#"{"type": "GeometryCollection", "geometries": [
            {"type": "GeometryCollection", "geometries": [{"type": "MultiPoint", "coordinates": []}]}]}"#;
        let Err(Error::InvalidGeoJson { reason }) = parse_geojson(nested) else { panic!("accepted") };
        assert!(reason.starts_with("geometry 0: geometry 0: a MultiPoint"), "{reason}");
        let Err(Error::InvalidGeoJson { reason }) =
            parse_geojson(r#"{"type": "Polygon", "coordinates": [[[0,0],[1,0,"x"],[1,1],[0,0]]]}"#)
        else {
            panic!("a text altitude accepted")
        };
        assert!(reason.contains("position 1: a member after [lon, lat] must be a number"), "{reason}");
    }

    #[test]
    fn member_types_are_checked() {
        let r = parse_geojson(r#"{"type": "FeatureCollection", "features": {}}"#);
        assert!(
            matches!(r, Err(Error::InvalidGeoJson { ref reason }) if reason.contains("\"features\" must be an array"))
        );
        let r = parse_geojson(
            r#"{"type": "FeatureCollection", "features": [{"type": "Polygon", "coordinates": []}]}"#,
        );
        assert!(
            matches!(r, Err(Error::InvalidGeoJson { ref reason }) if reason.contains("must be a Feature"))
        );
    }
}
