//! Arbitrary UTF-8 → `parse_geojson`; when it parses, `PreparedRegion::new` and point and
//! box queries derived from the input. No panic or hang. The prepared region must answer
//! `contains` exactly as the plain multipolygon, and `classify_box` must never say Inside
//! or Outside for a box with a sample point that disagrees.
#![no_main]

use geocrm::geo::{parse_geojson, BoundingBox, MultiPolygon, PreparedRegion, Relation};
use geocrm::LatLon;
use geocrm_fuzz::Draw;
use libfuzzer_sys::fuzz_target;

fn check_point(region: &MultiPolygon, prepared: &PreparedRegion, lat: f64, lon: f64) {
    let Ok(p) = LatLon::new(lat, lon) else { return };
    assert_eq!(prepared.contains(p), region.contains(p), "contains disagrees at {p:?}");
}

fn check_box(region: &MultiPolygon, prepared: &PreparedRegion, b: &BoundingBox) {
    let relation = prepared.classify_box(b);
    if relation == Relation::Partial {
        return;
    }
    let mut samples =
        vec![(b.south(), b.west()), (b.north(), b.east()), (b.south(), b.east()), (b.north(), b.west())];
    if !b.crosses_antimeridian() {
        samples.push(((b.south() + b.north()) / 2.0, (b.west() + b.east()) / 2.0));
    }
    for (lat, lon) in samples {
        let Ok(p) = LatLon::new(lat, lon) else { continue };
        let inside = region.contains(p);
        assert_eq!(inside, relation == Relation::Inside, "{relation:?} for {b:?}, but {p:?} is {inside}");
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let Ok(region) = parse_geojson(text) else { return };
    let prepared = PreparedRegion::new(&region);
    assert_eq!(prepared.bbox(), region.bbox());

    // Vertices, edge midpoints and points near them: where the answers are hardest.
    let mut draw = Draw::new(input);
    for poly in region.polygons().iter().take(4) {
        for ring in poly.rings().iter().take(4) {
            for w in ring.windows(2).take(32) {
                let ([lon0, lat0], [lon1, lat1]) = (w[0], w[1]);
                check_point(&region, &prepared, lat0, lon0);
                check_point(&region, &prepared, (lat0 + lat1) / 2.0, (lon0 + lon1) / 2.0);
                let eps = draw.in_range(-1e-9, 1e-9);
                check_point(&region, &prepared, lat0 + eps, lon0 - eps);
            }
        }
    }
    // Points inside and around the region's box, and anywhere.
    let bb = region.bbox();
    for _ in 0..32 {
        let lat = draw.in_range(bb.south() - 1.0, bb.north() + 1.0);
        let lon = draw.in_range(bb.west() - 1.0, bb.east() + 1.0);
        check_point(&region, &prepared, lat, lon);
        check_point(&region, &prepared, draw.in_range(-90.0, 90.0), draw.in_range(-180.0, 180.0));
    }
    // Boxes: small ones around the region's box, big ones, the region's own box, the world.
    check_box(&region, &prepared, &bb);
    check_box(&region, &prepared, &BoundingBox::world());
    for _ in 0..16 {
        let (a, b) =
            (draw.in_range(bb.south() - 1.0, bb.north() + 1.0), draw.in_range(bb.south(), bb.north()));
        let (c, d) = (draw.in_range(bb.west() - 1.0, bb.east() + 1.0), draw.in_range(-180.0, 180.0));
        if let Ok(b) = BoundingBox::new(a.min(b).max(-90.0), c.clamp(-180.0, 180.0), a.max(b).min(90.0), d) {
            check_box(&region, &prepared, &b);
        }
        let (lat, lon) = (draw.in_range(-90.0, 90.0), draw.in_range(-180.0, 180.0));
        if let Ok(b) = BoundingBox::new(lat, lon, (lat + draw.in_range(0.0, 1e-3)).min(90.0), lon) {
            check_box(&region, &prepared, &b);
        }
    }
});
