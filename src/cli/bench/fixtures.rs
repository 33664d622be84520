//! The polygon fixtures (`data/polygons/`, embedded in the binary) and `--export-csv`, which
//! writes the generated dataset, the query points and the polygons for
//! `scripts/postgis_bench.sh`.

use std::io::Write;
use std::path::Path;

use geocrm::geo::{parse_geojson, BoundingBox, MultiPolygon, PreparedRegion};
use geocrm::{Error, Result};

use super::Data;

/// The fixtures: (operation name, file name, GeoJSON text).
pub const POLYGONS: [(&str, &str, &str); 3] = [
    (
        "polygon count: Paris (city, 29 vertices)",
        "paris_approx.geojson",
        include_str!("../../../data/polygons/paris_approx.geojson"),
    ),
    (
        "polygon count: China (14,110 vertices)",
        "china_ne10m.geojson",
        include_str!("../../../data/polygons/china_ne10m.geojson"),
    ),
    (
        "polygon count: France + overseas, across the globe (62 parts, 5,141 vertices)",
        "france_world.geojson",
        include_str!("../../../data/polygons/france_world.geojson"),
    ),
];

/// A query region: prepared as a whole (geocrm) and part by part (peers query each part's
/// bounding box and test candidates against that part).
pub struct Region {
    /// Operation name.
    pub name: &'static str,
    /// The whole region.
    pub prepared: PreparedRegion,
    /// Each polygon on its own, with its bounding box.
    pub parts: Vec<(PreparedRegion, BoundingBox)>,
}

/// Parses and prepares every fixture.
pub fn regions() -> Result<Vec<Region>> {
    POLYGONS
        .iter()
        .map(|&(name, file, text)| {
            let region = parse_geojson(text)
                .map_err(|e| Error::invalid_argument("fixture", format!("{file}: {e}")))?;
            let parts = region
                .polygons()
                .iter()
                .map(|p| Ok((PreparedRegion::new(&MultiPolygon::new(vec![p.clone()])?), p.bbox())))
                .collect::<Result<Vec<_>>>()?;
            Ok(Region { name, prepared: PreparedRegion::new(&region), parts })
        })
        .collect()
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl Fn(std::io::Error) -> Error + 'p {
    move |e| Error::io(what, path, e)
}

/// Writes `expected_<dataset>.csv` (operation, q, value): geocrm's answer to query `q` of
/// each operation (a count, or the distance in metres of the k-th nearest neighbour).
pub fn export_expected(dir: &Path, dataset: &str, answers: &[(String, usize, String)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io("create export directory", dir))?;
    let path = dir.join(format!("expected_{dataset}.csv"));
    let csv_err = |e: csv::Error| Error::io("write", &path, std::io::Error::other(e));
    let mut w = csv::Writer::from_path(&path).map_err(csv_err)?;
    w.write_record(["operation", "q", "value"]).map_err(csv_err)?;
    for (op, q, value) in answers {
        w.write_record([op.as_str(), &q.to_string(), value.as_str()]).map_err(csv_err)?;
    }
    w.flush().map_err(io("write", &path))
}

/// Writes `customers_<dataset>.csv` (id, lat, lon, tier, lifetime_value),
/// `queries_<dataset>.csv` (query number, lat, lon; each bbox query is the 50 km box centred
/// on its point) and the polygon fixtures into `dir`.
pub fn export(dir: &Path, dataset: &str, data: &Data, points: &[geocrm::LatLon]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io("create export directory", dir))?;
    let path = dir.join(format!("customers_{dataset}.csv"));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io("create", &path))?);
    writeln!(w, "id,lat,lon,tier,lifetime_value").map_err(io("write", &path))?;
    for (i, p) in data.locs.iter().enumerate() {
        writeln!(w, "{i},{:.15},{:.15},{},{}", p.lat(), p.lon(), data.tiers[i], data.values[i])
            .map_err(io("write", &path))?;
    }
    w.flush().map_err(io("write", &path))?;
    let path = dir.join(format!("queries_{dataset}.csv"));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io("create", &path))?);
    writeln!(w, "q,lat,lon,south,west,north,east").map_err(io("write", &path))?;
    for (i, p) in points.iter().enumerate() {
        let b = BoundingBox::around(*p, super::BBOX_HALF_M)?;
        writeln!(
            w,
            "{i},{:.15},{:.15},{:.15},{:.15},{:.15},{:.15}",
            p.lat(),
            p.lon(),
            b.south(),
            b.west(),
            b.north(),
            b.east()
        )
        .map_err(io("write", &path))?;
    }
    w.flush().map_err(io("write", &path))?;
    for (_, file, text) in POLYGONS {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(io("write", &path))?;
    }
    Ok(())
}
