//! The engines of the default build: geocrm through its public API, geocrm's standalone
//! packed R-tree with its H3 cell column, an `rstar` tree of unit vectors and a brute-force
//! scan. Every engine answers the same [`Query`] for query number `i`.

use std::collections::HashMap;

use geocrm::geo::{haversine_m, metres_to_chord, BoundingBox, LatLon, Relation};
use geocrm::index::h3::{H3Index, H3IndexRef};
use geocrm::index::packed::{packing_order, Coverage, LonLatBox, PackedRTree};
use geocrm::query::{GroupBy, Scope};
use geocrm::Result;
use geocrm::{CollectionReader, Filter};
use h3o::{LatLng, Resolution};
use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};

use super::{Answer, Data, Query};

/// An engine of the comparison.
pub trait Backend {
    /// The answer to query `q` with query number `i`, or `None` when the engine cannot
    /// answer this kind of query.
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer>;
}

/// Slack added to a radius before converting it to a chord for tree pruning.
pub fn slack(metres: f64) -> f64 {
    1e-6 + 2e-8 * metres
}

/// geocrm through `CollectionReader`.
pub struct Geocrm<'s> {
    /// The collection.
    pub coll: CollectionReader<'s>,
    /// `tier = 'gold'`.
    pub gold: Filter,
}

impl Backend for Geocrm<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        let all = &Filter::All;
        let out = match q {
            Query::Nearest { k, gold, points } => {
                let f = if *gold { &self.gold } else { all };
                self.coll
                    .nearest_refs(points.at(i), *k, f)
                    .map(|v| Answer::Dists(v.iter().map(|n| n.distance_m).collect()))
            }
            Query::Radius { metres, points } => self
                .coll
                .count(Scope::Radius { center: points.at(i), metres: *metres }, all)
                .map(Answer::Count),
            Query::BBox { boxes } => self.coll.count(Scope::BBox(boxes.at(i)), all).map(Answer::Count),
            Query::Region(r) => self.coll.count(Scope::Region(&r.prepared), all).map(Answer::Count),
            Query::H3(res) => self
                .coll
                .aggregate(Scope::All, &GroupBy::H3(*res), &["lifetime_value"], all)
                .map(Answer::Aggregation),
        };
        Some(out.unwrap_or_else(|e| Answer::Failed(e.to_string())))
    }
}

/// geocrm's standalone public index types on their own (what a benchmark suite can use
/// without a database), laid out as the database's checkpoints lay them out: the packed
/// R-tree over rows in `packing_order` (nodes that are k-d cells: compact for nearest-k and
/// box queries), and the H3 cell index file with the summed attribute in its cell order
/// beside it.
pub struct PackedData {
    /// The tree.
    pub tree: PackedRTree,
    /// Tree row → index into the dataset.
    pub order: Vec<u32>,
    /// `tier = 'gold'` per tree row.
    pub gold: Vec<bool>,
    /// The resolution-15 H3 cell index of the records.
    pub cells: H3Index,
    /// `lifetime_value` per record in cell order.
    pub cell_values: Vec<f64>,
}

impl PackedData {
    /// Builds everything from the dataset.
    ///
    /// # Errors
    /// With more than `u32::MAX` records.
    pub fn build(data: &Data) -> Result<PackedData> {
        let order = packing_order(&data.locs);
        let points: Vec<LatLon> = order.iter().map(|&i| data.locs[i as usize]).collect();
        let cells = H3Index::build(&data.locs, Resolution::Fifteen)?;
        let cell_values =
            cells.view().rows(0..data.locs.len() as u32).map(|row| data.values[row as usize]).collect();
        Ok(PackedData {
            tree: PackedRTree::try_build(&points)?,
            gold: order.iter().map(|&i| data.gold[i as usize]).collect(),
            order,
            cells,
            cell_values,
        })
    }
}

/// Queries over [`PackedData`].
pub struct Packed<'a> {
    /// The data.
    pub data: &'a PackedData,
    /// The H3 cell index, validated from its bytes.
    pub cells: H3IndexRef<'a>,
}

fn lonlat_to_bbox(b: LonLatBox) -> Option<BoundingBox> {
    BoundingBox::new(b.south.max(-90.0), b.west.max(-180.0), b.north.min(90.0), b.east.min(180.0)).ok()
}

/// How a lat/lon box relates to a node box.
pub fn classify_bbox(q: &BoundingBox, b: LonLatBox) -> Coverage {
    match q.classify_lonlat(b.west, b.south, b.east, b.north) {
        geocrm::geo::Relation::Inside => Coverage::Inside,
        geocrm::geo::Relation::Outside => Coverage::Outside,
        geocrm::geo::Relation::Partial => Coverage::Partial,
    }
}

impl Backend for Packed<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        let d = self.data;
        let tree = d.tree.view();
        Some(match q {
            Query::Nearest { k, gold, points } => {
                let mut accept = |row: u32| !*gold || d.gold.get(row as usize).copied().unwrap_or(false);
                let hits = tree.nearest(points.at(i), *k, &mut accept);
                Answer::Ids(hits.iter().take(*k).map(|&(_, row)| d.order[row as usize]).collect())
            }
            Query::Radius { metres, points } => {
                let mut n = 0;
                tree.within_radius(points.at(i), *metres, &mut |_, _| n += 1);
                Answer::Count(n)
            }
            Query::BBox { boxes } => {
                let b = boxes.at(i);
                let mut n = 0u64;
                tree.visit_lonlat(&mut |nb| classify_bbox(b, nb), &mut |rows, inside| {
                    if inside {
                        n += u64::from(rows.end - rows.start);
                    } else {
                        n += tree
                            .lat_lons(rows)
                            .filter(|&(lat, lon)| LatLon::new(lat, lon).is_ok_and(|p| b.contains(p)))
                            .count() as u64;
                    }
                });
                Answer::Count(n)
            }
            Query::Region(r) => {
                let mut n = 0u64;
                let mut classify =
                    |nb: LonLatBox| match lonlat_to_bbox(nb).map(|b| r.prepared.classify_box(&b)) {
                        Some(Relation::Outside) => Coverage::Outside,
                        Some(Relation::Inside) => Coverage::Inside,
                        _ => Coverage::Partial,
                    };
                tree.visit_lonlat(&mut classify, &mut |rows, inside| {
                    if inside {
                        n += u64::from(rows.end - rows.start);
                    } else {
                        n += tree
                            .lat_lons(rows)
                            .filter(|&(lat, lon)| LatLon::new(lat, lon).is_ok_and(|p| r.prepared.contains(p)))
                            .count() as u64;
                    }
                });
                Answer::Count(n)
            }
            Query::H3(res) => Answer::Groups(
                self.cells
                    .groups(Resolution::try_from(*res).ok()?)
                    .map(|(cell, rows)| {
                        let sum = d
                            .cell_values
                            .get(rows.start as usize..rows.end as usize)
                            .map_or(0.0, |v| v.iter().sum());
                        (cell, u64::from(rows.end - rows.start), sum)
                    })
                    .collect(),
            ),
        })
    }
}

type Point = GeomWithData<[f64; 3], u32>;

/// An `rstar` R*-tree of unit vectors, the exact predicates applied to its candidates.
pub struct Rstar<'a> {
    /// The tree.
    pub tree: RTree<Point>,
    /// The dataset.
    pub data: &'a Data,
}

impl<'a> Rstar<'a> {
    /// Bulk-loads the tree.
    pub fn build(data: &'a Data) -> Rstar<'a> {
        let points =
            data.locs.iter().enumerate().map(|(i, p)| Point::new(p.to_unit_vector(), i as u32)).collect();
        Rstar { tree: RTree::bulk_load(points), data }
    }

    /// Ids of points in the unit-vector boxes of `bbox` (deduplicated) that `keep` accepts.
    fn in_bbox(&self, bbox: &BoundingBox, keep: &dyn Fn(LatLon) -> bool) -> u64 {
        let boxes = bbox.unit_aabbs();
        let mut ids = Vec::new();
        for b in &boxes {
            let env = AABB::from_corners(b.min, b.max);
            ids.extend(
                self.tree
                    .locate_in_envelope_intersecting(&env)
                    .map(|p| p.data)
                    .filter(|&i| keep(self.data.locs[i as usize])),
            );
        }
        if boxes.len() > 1 {
            ids.sort_unstable();
            ids.dedup();
        }
        ids.len() as u64
    }
}

impl Backend for Rstar<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        let data = self.data;
        Some(match q {
            Query::Nearest { k, gold, points } => Answer::Ids(
                self.tree
                    .nearest_neighbor_iter(&points.at(i).to_unit_vector())
                    .map(|p| p.data)
                    .filter(|&id| !*gold || data.gold[id as usize])
                    .take(*k)
                    .collect(),
            ),
            Query::Radius { metres, points } => {
                let at = points.at(i);
                let c = metres_to_chord(metres + slack(*metres));
                let n = self
                    .tree
                    .locate_within_distance(at.to_unit_vector(), c * c)
                    .filter(|p| haversine_m(at, data.locs[p.data as usize]) <= *metres)
                    .count();
                Answer::Count(n as u64)
            }
            Query::BBox { boxes } => {
                let b = boxes.at(i);
                Answer::Count(self.in_bbox(b, &|p| b.contains(p)))
            }
            Query::Region(r) => Answer::Count(
                r.parts.iter().map(|(part, bbox)| self.in_bbox(bbox, &|p| part.contains(p))).sum(),
            ),
            Query::H3(_) => return None,
        })
    }
}

/// A brute-force haversine scan over every record.
pub struct Brute<'a> {
    /// The dataset.
    pub data: &'a Data,
}

impl Backend for Brute<'_> {
    fn answer(&mut self, q: &Query<'_>, i: usize) -> Option<Answer> {
        let data = self.data;
        let locs = &data.locs;
        Some(match q {
            Query::Nearest { k, gold, points } => {
                let at = points.at(i);
                let mut d: Vec<(f64, u32)> = locs
                    .iter()
                    .enumerate()
                    .filter(|&(id, _)| !*gold || data.gold[id])
                    .map(|(id, &p)| (haversine_m(at, p), id as u32))
                    .collect();
                let k = (*k).min(d.len());
                if k > 0 && k < d.len() {
                    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                }
                d.truncate(k);
                Answer::Ids(d.iter().map(|&(_, id)| id).collect())
            }
            Query::Radius { metres, points } => {
                let at = points.at(i);
                Answer::Count(locs.iter().filter(|&&p| haversine_m(at, p) <= *metres).count() as u64)
            }
            Query::BBox { boxes } => {
                let b = boxes.at(i);
                Answer::Count(locs.iter().filter(|&&p| b.contains(p)).count() as u64)
            }
            Query::Region(r) => {
                Answer::Count(locs.iter().filter(|&&p| r.prepared.contains(p)).count() as u64)
            }
            Query::H3(res) => {
                let res = Resolution::try_from(*res).ok()?;
                let mut groups: HashMap<u64, (u64, f64)> = HashMap::new();
                for (p, v) in locs.iter().zip(&data.values) {
                    let cell =
                        LatLng::new(p.lat(), p.lon()).ok()?.to_cell(Resolution::Fifteen).parent(res)?;
                    let g = groups.entry(u64::from(cell)).or_default();
                    g.0 += 1;
                    g.1 += v;
                }
                let mut out: Vec<(u64, u64, f64)> = groups.into_iter().map(|(c, (n, s))| (c, n, s)).collect();
                out.sort_by_key(|g| g.0);
                Answer::Groups(out)
            }
        })
    }
}
