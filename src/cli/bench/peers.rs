//! Peers behind the `peers` feature: a `kiddo` k-d tree of unit vectors, a `geo-index`
//! static packed R-tree on lon/lat and SQLite's R*Tree module (through `rusqlite`, bundled).
//!
//! The lon/lat indexes only give candidates; the exact test (box, haversine, point in
//! polygon with geocrm's prepared region) runs in Rust on the exact coordinates, so every
//! peer answers the same question geocrm does.

use std::time::Instant;

use geo_index::rtree::sort::HilbertSort;
use geo_index::rtree::{RTree as GeoRTree, RTreeBuilder, RTreeIndex};
use geocrm::geo::{haversine_m, metres_to_chord, BoundingBox, LatLon};
use geocrm::{Error, Result};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rusqlite::{params, Connection};

use super::engines::{slack, Backend};
use super::measure::{Budget, Stats};
use super::report::Engine;
use super::{durable, Answer, Data, Query};

fn sql(e: rusqlite::Error) -> Error {
    Error::invalid_argument("sqlite", e.to_string())
}

/// The peers built over one dataset.
pub struct PeerSet {
    kiddo: ImmutableKdTree<f64, 3>,
    geo: GeoRTree<f64>,
    conn: Connection,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    builds: Vec<(Engine, Stats)>,
}

impl PeerSet {
    /// Builds every peer index, timing each build.
    pub fn build(data: &Data) -> Result<PeerSet> {
        let mut builds = Vec::new();
        let units: Vec<[f64; 3]> = data.locs.iter().map(|p| p.to_unit_vector()).collect();
        let t = Instant::now();
        let kiddo = ImmutableKdTree::new_from_slice(&units)
            .map_err(|e| Error::invalid_argument("kiddo", format!("{e:?}")))?;
        builds.push((Engine::Kiddo, Stats::once(t.elapsed())));

        let t = Instant::now();
        let mut b = RTreeBuilder::<f64>::new(data.locs.len() as u32);
        for p in &data.locs {
            b.add(p.lon(), p.lat(), p.lon(), p.lat());
        }
        let geo = b.finish::<HilbertSort>();
        builds.push((Engine::GeoIndex, Stats::once(t.elapsed())));

        let dir = tempfile::Builder::new()
            .prefix("geocrm-bench-sqlite-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
        let path = dir.path().join("bench.sqlite");
        let t = Instant::now();
        let mut conn = Connection::open(&path).map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE VIRTUAL TABLE pts USING rtree(id, minlon, maxlon, minlat, maxlat);",
        )
        .map_err(sql)?;
        let tx = conn.transaction().map_err(sql)?;
        {
            let mut ins = tx.prepare("INSERT INTO pts VALUES (?1, ?2, ?2, ?3, ?3)").map_err(sql)?;
            for (i, p) in data.locs.iter().enumerate() {
                ins.execute(params![i as i64, p.lon(), p.lat()]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        builds.push((Engine::Sqlite, Stats::once(t.elapsed())));
        Ok(PeerSet { kiddo, geo, conn, path, _dir: dir, builds })
    }

    /// Build times per engine.
    pub fn build_times(&self) -> Vec<(Engine, Stats)> {
        self.builds.clone()
    }

    /// The peers as engines of the comparison.
    pub fn backends<'a>(&'a self, data: &'a Data) -> Result<Vec<(Engine, Box<dyn Backend + 'a>)>> {
        Ok(vec![
            (Engine::Kiddo, Box::new(Kiddo { tree: &self.kiddo, data })),
            (Engine::GeoIndex, Box::new(GeoIndex { tree: &self.geo, data })),
            (Engine::Sqlite, Box::new(Sqlite { conn: &self.conn, data })),
        ])
    }

    /// SQLite: a new connection to the database file and one bbox query (exact filter in
    /// Rust needs the coordinates, which stay in memory: the count is of R*Tree candidates
    /// that pass the exact test).
    pub fn reopen_first_query(&self, bbox: &BoundingBox, data: &Data) -> Result<Option<(Stats, u64)>> {
        let t = Instant::now();
        let conn = Connection::open(&self.path).map_err(sql)?;
        let n = sqlite_bbox(&conn, data, bbox, &|p| bbox.contains(p))?;
        Ok(Some((Stats::once(t.elapsed()), n)))
    }
}

struct Kiddo<'a> {
    tree: &'a ImmutableKdTree<f64, 3>,
    data: &'a Data,
}

impl Backend for Kiddo<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        match q {
            Query::Nearest { k, gold: false, points } => {
                let k = std::num::NonZeroUsize::new(*k)?;
                let hits = self
                    .tree
                    .query(&points.at(i).to_unit_vector())
                    .nearest_n::<SquaredEuclidean<f64>>(k)
                    .execute();
                Some(Answer::Ids(hits.iter().map(|h| h.item).collect()))
            }
            Query::Radius { metres, points } => {
                let at = points.at(i);
                let c = metres_to_chord(metres + slack(*metres));
                let hits = self
                    .tree
                    .query(&at.to_unit_vector())
                    .within::<SquaredEuclidean<f64>>(c * c)
                    .unsorted()
                    .execute();
                let n = hits
                    .iter()
                    .filter(|h| haversine_m(at, self.data.locs[h.item as usize]) <= *metres)
                    .count();
                Some(Answer::Count(n as u64))
            }
            _ => None,
        }
    }
}

struct GeoIndex<'a> {
    tree: &'a GeoRTree<f64>,
    data: &'a Data,
}

impl GeoIndex<'_> {
    fn count(&self, bbox: &BoundingBox, keep: &dyn Fn(LatLon) -> bool) -> u64 {
        let mut n = 0;
        for [w, e] in bbox.lon_intervals() {
            n += self
                .tree
                .search(w, bbox.south(), e, bbox.north())
                .iter()
                .filter(|&&i| keep(self.data.locs[i as usize]))
                .count() as u64;
        }
        n
    }
}

impl Backend for GeoIndex<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        match q {
            Query::Radius { metres, points } => {
                let at = points.at(i);
                let b = BoundingBox::around(at, *metres).ok()?;
                Some(Answer::Count(self.count(&b, &|p| haversine_m(at, p) <= *metres)))
            }
            Query::BBox { boxes } => {
                let b = boxes.at(i);
                Some(Answer::Count(self.count(b, &|p| b.contains(p))))
            }
            Query::Region(r) => Some(Answer::Count(
                r.parts.iter().map(|(part, bbox)| self.count(bbox, &|p| part.contains(p))).sum(),
            )),
            _ => None,
        }
    }
}

/// Counts R*Tree candidates in `bbox` that `keep` accepts (exact test on the coordinates).
fn sqlite_bbox(
    conn: &Connection,
    data: &Data,
    bbox: &BoundingBox,
    keep: &dyn Fn(LatLon) -> bool,
) -> Result<u64> {
    let mut st = conn
        .prepare_cached(
            "SELECT id FROM pts WHERE minlon <= ?2 AND maxlon >= ?1 AND minlat <= ?4 AND maxlat >= ?3",
        )
        .map_err(sql)?;
    let mut n = 0;
    for [w, e] in bbox.lon_intervals() {
        let mut rows = st.query(params![w, e, bbox.south(), bbox.north()]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let id: i64 = row.get(0).map_err(sql)?;
            if data.locs.get(id as usize).is_some_and(|&p| keep(p)) {
                n += 1;
            }
        }
    }
    Ok(n)
}

struct Sqlite<'a> {
    conn: &'a Connection,
    data: &'a Data,
}

impl Backend for Sqlite<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        let (conn, data) = (self.conn, self.data);
        let count = match q {
            Query::Radius { metres, points } => {
                let at = points.at(i);
                let b = BoundingBox::around(at, *metres).ok()?;
                sqlite_bbox(conn, data, &b, &|p| haversine_m(at, p) <= *metres)
            }
            Query::BBox { boxes } => {
                let b = boxes.at(i);
                sqlite_bbox(conn, data, b, &|p| b.contains(p))
            }
            Query::Region(r) => r
                .parts
                .iter()
                .map(|(part, bbox)| sqlite_bbox(conn, data, bbox, &|p| part.contains(p)))
                .sum::<Result<u64>>(),
            _ => return None,
        };
        Some(count.map_or_else(|e| Answer::Failed(e.to_string()), Answer::Count))
    }
}

/// Durable ingest into SQLite (WAL, `synchronous=FULL`: each commit fsyncs the WAL): a
/// table of customers plus the R*Tree, one transaction per batch of [`durable::BATCH`];
/// microseconds per record as [`durable::ingest`].
pub fn sqlite_ingest(data: &Data, budget: Budget) -> Result<Stats> {
    let dir = tempfile::Builder::new()
        .prefix("geocrm-bench-sqlite-ingest-")
        .tempdir()
        .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
    let mut conn = Connection::open(dir.path().join("ingest.sqlite")).map_err(sql)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE customers(rid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, lat REAL, lon REAL,
             lifetime_value REAL, visits REAL, tier TEXT, segment TEXT);
         CREATE VIRTUAL TABLE pts USING rtree(rid, minlon, maxlon, minlat, maxlat);",
    )
    .map_err(sql)?;
    let started = Instant::now();
    let deadline = started + budget.time;
    let (mut commits, mut next) = (0usize, 0usize);
    while !(commits >= budget.max_reps || (commits >= budget.min_reps && Instant::now() >= deadline)) {
        let tx = conn.transaction().map_err(sql)?;
        {
            let mut row = tx
                .prepare_cached("INSERT OR REPLACE INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .map_err(sql)?;
            let mut pt =
                tx.prepare_cached("INSERT OR REPLACE INTO pts VALUES (?1, ?2, ?2, ?3, ?3)").map_err(sql)?;
            for _ in 0..durable::BATCH {
                let j = next % data.people.len().max(1);
                next += 1;
                let Some(c) = data.people.get(j) else { continue };
                let (lat, lon) = (c.location.lat(), c.location.lon());
                row.execute(params![j as i64, c.id, lat, lon, c.lifetime_value, c.visits, c.tier, c.segment])
                    .map_err(sql)?;
                pt.execute(params![j as i64, lon, lat]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        commits += 1;
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / (commits * durable::BATCH).max(1) as f64;
    Ok(Stats { reps: commits, ..Stats::of(vec![us]) })
}
