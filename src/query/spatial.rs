//! Spatial queries over a [`MemoryTable`]: nearest-k, and a scan of every row inside a
//! scope (radius, bounding box, polygon) that radius/bbox/polygon queries and aggregations
//! share.
//!
//! The tree prunes with unit-vector (chord) geometry; every final decision uses the exact
//! predicate on the stored latitude/longitude: [`haversine_m`] for distances,
//! [`BoundingBox::contains`] and [`PreparedRegion::contains`] for areas.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::filter::CompiledFilter;
use crate::geo::{chord_to_metres, haversine_m, metres_to_chord, BoundingBox, LatLon, PreparedRegion};
use crate::index::{MemoryTable, Row};

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
    #[serde(skip)]
    pub location: LatLon,
    /// Great-circle distance from the query point in metres.
    pub distance_m: f64,
}

/// Slack added to distance bounds to absorb floating-point rounding of chord lengths.
fn slack(metres: f64) -> f64 {
    1e-6 + metres * 1e-9
}

pub(crate) fn row_matches(filter: &CompiledFilter, row: &Row) -> bool {
    filter.is_all()
        || filter.matches(&|i| row.numbers.get(i).copied().unwrap_or(f64::NAN), &|i| {
            row.categories.get(i).copied().unwrap_or(super::MISSING_CODE)
        })
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
    table: &'t MemoryTable,
    at: LatLon,
    k: usize,
    filter: &CompiledFilter,
) -> Vec<(f64, &'t Row)> {
    let mut best: BinaryHeap<Candidate<'t>> = BinaryHeap::with_capacity(k + 1);
    for (slot, chord2) in table.nearest_iter(at.to_unit_vector()) {
        if best.len() == k {
            let worst = best.peek().map_or(f64::INFINITY, |c| c.distance);
            if chord_to_metres(chord2.sqrt()) > worst + slack(worst) {
                break;
            }
        }
        let Some(row) = table.row(slot) else { continue };
        if !row_matches(filter, row) {
            continue;
        }
        best.push(Candidate { distance: haversine_m(at, row.location), row });
        if best.len() > k {
            best.pop();
        }
    }
    let mut out: Vec<_> = best.into_iter().map(|c| (c.distance, c.row)).collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    out
}

/// Calls `visit` once for every matching row inside `scope`.
pub fn scan<'t>(
    table: &'t MemoryTable,
    scope: Scope<'_>,
    filter: &CompiledFilter,
    mut visit: impl FnMut(&'t Row),
) {
    let mut emit = |row: &'t Row| {
        let inside = match scope {
            Scope::All => true,
            Scope::Radius { center, metres } => haversine_m(center, row.location) <= metres,
            Scope::BBox(b) => b.contains(row.location),
            Scope::Region(r) => r.contains(row.location),
        };
        if inside && row_matches(filter, row) {
            visit(row);
        }
    };
    match scope {
        Scope::All => table.rows().for_each(emit),
        Scope::Radius { center, metres } => {
            let chord = metres_to_chord(metres + slack(metres));
            for slot in table.within_chord2(center.to_unit_vector(), chord * chord + 1e-15) {
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
