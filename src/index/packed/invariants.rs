//! A full structural check, for `Database::verify` and tests: O(rows), reports the first
//! broken invariant.
#![deny(clippy::indexing_slicing)]

use super::query::UNIT_MARGIN;
use super::{aabb_of, LonLatBox, PackedRTreeRef};

fn aabb_contains(outer: [f64; 6], inner: [f64; 6]) -> bool {
    let [a0, a1, a2, a3, a4, a5] = outer;
    let [b0, b1, b2, b3, b4, b5] = inner;
    a0 <= b0 && a1 <= b1 && a2 <= b2 && a3 >= b3 && a4 >= b4 && a5 >= b5 && b0 <= b3 && b1 <= b4 && b2 <= b5
}

fn lonlat_contains(outer: LonLatBox, inner: LonLatBox) -> bool {
    outer.west <= inner.west
        && outer.south <= inner.south
        && outer.east >= inner.east
        && outer.north >= inner.north
        && inner.west <= inner.east
        && inner.south <= inner.north
}

impl PackedRTreeRef<'_> {
    /// Checks (for `Database::verify`, tests and debugging) that every row's exact unit
    /// vector and lon/lat lie inside its leaf's boxes, that stored f32 unit vectors are within their error bound,
    /// and that every node's boxes lie inside its parent's. Reads every byte; `Err` names
    /// the first violation.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let aabb = |node: usize| aabb_of(self.aabbs(node, node + 1));
        let (leaf_first, leaf_count) = self.level(0);
        for leaf in leaf_first..leaf_first + leaf_count {
            let (b, ll) = (aabb(leaf), self.lonlat_box(leaf));
            for row in self.row_range(0, leaf) {
                let p = self.location(row).ok_or(format!("row {row}: no valid location"))?;
                let u = p.to_unit_vector();
                let [x, y, z] = u;
                let point = [x, y, z, x, y, z];
                if !aabb_contains(b, point) {
                    return Err(format!("row {row}: unit vector {u:?} outside leaf {leaf} box {b:?}"));
                }
                let at = LonLatBox { west: p.lon(), south: p.lat(), east: p.lon(), north: p.lat() };
                if !lonlat_contains(ll, at) {
                    return Err(format!("row {row}: {p:?} outside leaf {leaf} lon/lat box {ll:?}"));
                }
                let f = self.unit(row).ok_or(format!("row {row}: no unit vector"))?;
                let err = u.iter().zip(f).map(|(a, b)| (a - f64::from(b)).powi(2)).sum::<f64>().sqrt();
                if err > UNIT_MARGIN {
                    return Err(format!("row {row}: f32 unit vector off by {err}"));
                }
            }
        }
        for level in 1..self.layout.levels {
            let (first, count) = self.level(level);
            for node in first..first + count {
                let rows = self.row_range(level, node);
                let kids = self.children(level, node);
                let (kid_first, kid_last) = (kids.start, kids.end.saturating_sub(1));
                let covered =
                    self.row_range(level - 1, kid_first).start..self.row_range(level - 1, kid_last).end;
                if kids.is_empty() || covered != rows {
                    return Err(format!("node {node}: rows {rows:?} but children cover {covered:?}"));
                }
                for kid in kids {
                    if !aabb_contains(aabb(node), aabb(kid)) {
                        return Err(format!("node {kid} box outside parent {node}"));
                    }
                    if !lonlat_contains(self.lonlat_box(node), self.lonlat_box(kid)) {
                        return Err(format!("node {kid} lon/lat box outside parent {node}"));
                    }
                }
            }
        }
        Ok(())
    }
}
