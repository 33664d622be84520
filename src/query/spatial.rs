//! Spatial queries over a [`TableView`] — a checkpoint's rows (packed R-tree, read from the
//! mapping) merged with the in-memory table of recent writes: nearest-k, and a scan of every
//! row inside a scope (radius, bounding box, polygon) that radius/bbox/polygon queries and
//! aggregations share.
//!
//! The tree prunes with unit-vector (chord) geometry; every final decision uses the exact
//! predicate on the stored latitude/longitude: [`haversine_m`] for distances,
//! [`BoundingBox::contains`] and [`PreparedRegion::contains`] for areas.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::filter::{CodeCondition, CompiledFilter};
use crate::geo::{haversine_m, BoundingBox, HaversineFrom, LatLon, PreparedRegion};
use std::ops::Range;

use crate::geo::Relation;
use crate::index::checkpoint::Attributes;
use crate::index::packed::{chord2_beyond, Coverage, LonLatBox, PackedRTreeRef};
use crate::index::{BaseRows, MemoryTable, Row, RowRef, TableView};

/// Where to look.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every record.
    All,
    /// Within `metres` great-circle distance of `center` (inclusive).
    Radius {
        /// Centre.
        center: LatLon,
        /// Radius in metres.
        metres: f64,
    },
    /// Inside a latitude/longitude box (inclusive; may cross the antimeridian).
    BBox(&'a BoundingBox),
    /// Covered by a (multi)polygon, boundary included.
    Region(&'a PreparedRegion),
}

/// A record found by a nearest or radius query.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Neighbor {
    /// Record id.
    pub id: String,
    /// Its location.
    pub location: LatLon,
    /// Great-circle distance from the query point in metres.
    pub distance_m: f64,
}

/// A [`Neighbor`] borrowed from the snapshot it was found in: its id is not copied.
///
/// What [`CollectionReader::nearest_refs`](crate::CollectionReader::nearest_refs) returns,
/// for a caller that answers many queries and reads the ids without keeping them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NeighborRef<'a> {
    /// Record id.
    pub id: &'a str,
    /// Its location.
    pub location: LatLon,
    /// Great-circle distance from the query point in metres.
    pub distance_m: f64,
}

impl From<NeighborRef<'_>> for Neighbor {
    fn from(n: NeighborRef<'_>) -> Neighbor {
        Neighbor { id: n.id.to_owned(), location: n.location, distance_m: n.distance_m }
    }
}

pub(crate) fn row_matches(filter: &CompiledFilter, row: RowRef<'_>) -> bool {
    filter.is_all() || filter.matches(&|i| row.number(i), &|i| row.category(i))
}

/// A filter on the checkpoint's visible rows, its attribute sections looked up once for
/// all the rows a query tests, not once for each value read.
pub(super) struct BaseFilter<'a> {
    filter: &'a CompiledFilter,
    base: &'a BaseRows,
    /// `None` for [`CompiledFilter::all`]. (A section is looked up, and on its first use
    /// checked whole, when a value of it is first read, as a row's own reads do.)
    attributes: Option<Attributes<'a>>,
    /// [`CompiledFilter::as_codes`].
    codes: Option<CodeCondition<'a>>,
}

impl<'a> BaseFilter<'a> {
    pub(super) fn new(filter: &'a CompiledFilter, base: &'a BaseRows) -> BaseFilter<'a> {
        let attributes = (!filter.is_all()).then(|| base.checkpoint.attributes());
        BaseFilter { filter, base, attributes, codes: filter.as_codes() }
    }

    /// Whether `row` is visible and matches: as [`row_matches`] on it.
    pub(super) fn matches(&self, row: u32) -> bool {
        self.base.visible(row)
            && self.attributes.as_ref().is_none_or(|a| match self.codes {
                // The commonest filter, one category condition, without the general walk.
                Some(condition) => condition.matches(a.category(condition.field, row)),
                None => self.filter.matches(&|i| a.number(i, row), &|i| a.category(i, row)),
            })
    }
}

#[derive(Debug)]
struct Candidate<'a> {
    distance: f64,
    row: &'a Row,
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate<'_> {}
impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance.total_cmp(&other.distance).then_with(|| self.row.id.cmp(&other.row.id))
    }
}

/// The `k` matching rows nearest to `at`, ordered by (distance, id).
#[must_use]
pub fn nearest<'t>(
    view: TableView<'t>,
    at: LatLon,
    k: usize,
    filter: &CompiledFilter,
) -> Vec<(f64, RowRef<'t>)> {
    let mut out: Vec<(f64, RowRef<'t>)> =
        nearest_in_tail(view.tail, at, k, filter).into_iter().map(|(d, r)| (d, RowRef::Tail(r))).collect();
    if let Some(base) = view.base {
        let sorted = out.is_empty();
        let found = nearest_in_checkpoint(base, at, k, filter);
        out.extend(found.into_iter().map(|(d, row)| (d, RowRef::Base(&base.checkpoint, row))));
        if !sorted {
            // Both parts are the k first of theirs: the k first of the two are among them.
            out.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id().cmp(b.1.id())));
            out.truncate(k);
        }
    }
    out
}

/// The `k` matching visible rows of the checkpoint nearest to `at`, as `(distance, row)`
/// ordered by (distance, id): the checkpoint's share of [`nearest`], which a query with no
/// recent writes to merge answers from alone.
pub(crate) fn nearest_in_checkpoint(
    base: &BaseRows,
    at: LatLon,
    k: usize,
    filter: &CompiledFilter,
) -> Vec<(f64, u32)> {
    let (tree, ids) = (base.checkpoint.tree(), base.checkpoint.ids());
    // The caller reads the answers' ids: the bytes of the likely answers' ids start loading
    // as their distances are computed and, with no filter to read rows, the offsets of the
    // rows that may be answers while the search goes on.
    let mut found = if filter.is_all() && base.hidden.is_empty() {
        tree.nearest_hinted(
            at,
            k,
            false,
            &mut |row| {
                ids.prefetch(row);
                true
            },
            &mut |row| ids.prefetch_id(row),
        )
    } else {
        let base_filter = BaseFilter::new(filter, base);
        tree.nearest_hinted(at, k, true, &mut |row| base_filter.matches(row), &mut |row| ids.prefetch_id(row))
    };
    // The tree's answer is sorted by (distance, row) and holds every row tied at the k-th
    // distance; with no equal distances that is already (distance, id) order.
    let ties = found.windows(2).any(|w| w.first().map(|a| a.0) == w.get(1).map(|b| b.0));
    if ties {
        let by_distance_then_id =
            |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then_with(|| ids.id(a.1).cmp(ids.id(b.1)));
        // Many rows tied at one place (customers geocoded to a town's centre) come back
        // whole: the k first are selected before they are sorted (sorting them all by id
        // took 0.1 s for 200,000 rows at one point).
        if let Some(last) = k.checked_sub(1).filter(|&last| last < found.len()) {
            found.select_nth_unstable_by(last, by_distance_then_id);
            found.truncate(k);
        }
        found.sort_by(by_distance_then_id);
    }
    found.truncate(k);
    found
}

/// The `k` matching rows of the in-memory table nearest to `at`, by (distance, id).
fn nearest_in_tail<'t>(
    table: &'t MemoryTable,
    at: LatLon,
    k: usize,
    filter: &CompiledFilter,
) -> Vec<(f64, &'t Row)> {
    if table.is_empty() || k == 0 {
        return Vec::new();
    }
    // No more room than the table can fill: `k` is the caller's (up to `usize::MAX`).
    let mut best: BinaryHeap<Candidate<'t>> = BinaryHeap::with_capacity(k.min(table.len()) + 1);
    let from = HaversineFrom::new(at);
    for (slot, chord2) in table.nearest_iter(at.to_unit_vector()) {
        if best.len() == k {
            // Beyond this chord a row is surely farther than the k-th by haversine (the
            // packed tree's bound: it allows for the two formulas' difference near the
            // antipode, and bounds nothing from there on).
            let worst = best.peek().map_or(f64::INFINITY, |c| c.distance);
            if chord2 > chord2_beyond(worst) {
                break;
            }
        }
        let Some(row) = table.row(slot) else { continue };
        if !row_matches(filter, RowRef::Tail(row)) {
            continue;
        }
        best.push(Candidate { distance: from.to(row.location), row });
        if best.len() > k {
            best.pop();
        }
    }
    let mut out: Vec<_> = best.into_iter().map(|c| (c.distance, c.row)).collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    out
}

/// Calls `visit` once for every matching row inside `scope`: checkpoint rows first (in
/// the tree's row order), then the tail.
pub fn scan<'t>(
    view: TableView<'t>,
    scope: Scope<'_>,
    filter: &CompiledFilter,
    mut visit: impl FnMut(RowRef<'t>),
) {
    if let Some(base) = view.base {
        let tree = base.checkpoint.tree();
        let base_filter = BaseFilter::new(filter, base);
        let mut take = |row: u32| {
            if base_filter.matches(row) {
                visit(RowRef::Base(&base.checkpoint, row));
            }
        };
        scan_base_ranges(base, scope, &mut |rows, tested| {
            if tested {
                rows_in_scope(&tree, scope, rows).for_each(&mut take);
            } else {
                rows.for_each(&mut take);
            }
        });
    }
    scan_tail(view.tail, scope, filter, |r| visit(RowRef::Tail(r)));
}

/// Counts matching rows in `scope`; ranges of checkpoint rows known to be inside are
/// counted without touching each row when nothing needs a per-row check, and rows that
/// must be tested are read straight from the tree's points.
#[must_use]
pub fn count(view: TableView<'_>, scope: Scope<'_>, filter: &CompiledFilter) -> u64 {
    let mut n = 0u64;
    if let Some(base) = view.base {
        let tree = base.checkpoint.tree();
        let per_row = !filter.is_all() || !base.hidden.is_empty();
        let base_filter = BaseFilter::new(filter, base);
        let matches = |row: u32| !per_row || base_filter.matches(row);
        scan_base_ranges(base, scope, &mut |rows, tested| {
            n += if tested {
                rows_in_scope(&tree, scope, rows).filter(|&row| matches(row)).count() as u64
            } else if per_row {
                rows.filter(|&row| matches(row)).count() as u64
            } else {
                u64::from(rows.end - rows.start)
            };
        });
    }
    scan_tail(view.tail, scope, filter, |_| n += 1);
    n
}

/// Whether `p` lies in `scope` (the exact predicate).
fn inside_scope(scope: Scope<'_>, p: LatLon) -> bool {
    match scope {
        Scope::All => true,
        Scope::Radius { center, metres } => haversine_m(center, p) <= metres,
        Scope::BBox(b) => b.contains(p),
        Scope::Region(r) => r.contains(p),
    }
}

/// The checkpoint rows of `rows` whose stored location lies in `scope`, read straight from
/// the tree's points.
fn rows_in_scope<'a>(
    tree: &PackedRTreeRef<'a>,
    scope: Scope<'a>,
    rows: Range<u32>,
) -> impl Iterator<Item = u32> + 'a {
    rows.clone()
        .zip(tree.lat_lons(rows))
        .filter(move |&(_, (lat, lon))| inside_scope_at(scope, lat, lon))
        .map(|(row, _)| row)
}

/// [`inside_scope`] for a checkpoint row's stored latitude and longitude; a value that is
/// not a valid location (only a damaged file opened without its checksum has one) is
/// outside every scope but `All`.
#[inline]
fn inside_scope_at(scope: Scope<'_>, lat: f64, lon: f64) -> bool {
    match scope {
        Scope::All => true,
        Scope::BBox(b) => (-180.0..=180.0).contains(&lon) && b.contains_lat_lon(lat, lon),
        _ => LatLon::from_stored(lat, lon).is_some_and(|p| inside_scope(scope, p)),
    }
}

/// Hands `visit` ranges of checkpoint rows that may be in `scope`, with `true` when each row
/// must still be tested against the scope (hidden rows and filters are the caller's job).
fn scan_base_ranges(base: &BaseRows, scope: Scope<'_>, visit: &mut dyn FnMut(Range<u32>, bool)) {
    let tree = base.checkpoint.tree();
    match scope {
        Scope::All => visit(0..tree.len() as u32, false),
        Scope::Radius { center, metres } => {
            // The tree's radius search is exact: its rows need no second test.
            let mut rows = Vec::new();
            tree.within_radius(center, metres, &mut |row, _| rows.push(row));
            for row in rows {
                visit(row..row + 1, false);
            }
        }
        Scope::BBox(b) => tree.visit_lonlat_inlined(
            |n: LonLatBox| coverage(b.classify_lonlat(n.west, n.south, n.east, n.north)),
            |rows, inside| visit(rows, !inside),
        ),
        Scope::Region(r) => tree.visit_lonlat_inlined(
            |n: LonLatBox| coverage(r.classify_lonlat(n.west, n.south, n.east, n.north)),
            |rows, inside| visit(rows, !inside),
        ),
    }
}

fn coverage(relation: Relation) -> Coverage {
    match relation {
        Relation::Inside => Coverage::Inside,
        Relation::Outside => Coverage::Outside,
        Relation::Partial => Coverage::Partial,
    }
}

/// Calls `visit` once for every matching row of the in-memory table inside `scope`.
fn scan_tail<'t>(
    table: &'t MemoryTable,
    scope: Scope<'_>,
    filter: &CompiledFilter,
    mut visit: impl FnMut(&'t Row),
) {
    if table.is_empty() {
        return;
    }
    let mut emit = |row: &'t Row| {
        if inside_scope(scope, row.location) && row_matches(filter, RowRef::Tail(row)) {
            visit(row);
        }
    };
    match scope {
        Scope::All => table.rows().for_each(emit),
        Scope::Radius { center, metres } => {
            let bound = chord2_beyond(metres);
            if bound.is_infinite() {
                // Reaching the antipode: every row is a candidate, the exact test decides.
                table.rows().for_each(emit);
                return;
            }
            for slot in table.within_chord2(center.to_unit_vector(), bound) {
                if let Some(row) = table.row(slot) {
                    emit(row);
                }
            }
        }
        Scope::BBox(b) => scan_boxes(table, b, emit),
        Scope::Region(r) => scan_boxes(table, &r.bbox(), emit),
    }
}

fn scan_boxes<'t>(table: &'t MemoryTable, b: &BoundingBox, mut emit: impl FnMut(&'t Row)) {
    let boxes = b.unit_aabbs();
    if let [only] = boxes.as_slice() {
        table.in_box(only).filter_map(|s| table.row(s)).for_each(emit);
        return;
    }
    // Two boxes (antimeridian) may overlap in 3D: visit each slot once.
    let mut slots: Vec<u32> = boxes.iter().flat_map(|bx| table.in_box(bx)).collect();
    slots.sort_unstable();
    slots.dedup();
    slots.into_iter().filter_map(|s| table.row(s)).for_each(&mut emit);
}
