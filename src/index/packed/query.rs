//! Queries: exact k-nearest, exact radius, and lon/lat box traversal.
#![deny(clippy::indexing_slicing)]

use std::ops::Range;

use super::format::UNIT_LEN;
use super::{aabb_of, f32x3, Coverage, LonLatBox, PackedRTreeRef};
use crate::geo::{metres_to_chord, HaversineFrom, LatLon, EARTH_RADIUS_M};

/// Bound on how far a stored f32 unit vector is from the f64 one: each component moves by
/// at most 2⁻²⁴ (components are within [-1, 1]), so the vector by √3·2⁻²⁴ ≈ 1.033e-7.
pub(crate) const UNIT_MARGIN: f64 = 1.1e-7;

/// Allowance, in metres, for the difference between a haversine distance and the distance
/// derived from the chord between f64 unit vectors. Rounding errors are ~1e-15 relative.
/// (`2e-8·d` was sized for the haversine near the antipode, where `asin(√h)` with `h ≈ 1`
/// turned an error of a few ulp in `h` into up to 4e-8 rad, 0.25 m; [`HaversineFrom`] now
/// takes Vincenty's form beyond 90° of arc and keeps its digits, and the allowance stays.)
pub(crate) fn slack(metres: f64) -> f64 {
    1e-6 + 2e-8 * metres.abs()
}

/// Allowance on the unit sphere for comparing two rows by chord instead of haversine: a row
/// whose haversine is ≤ another's has a chord at most this much larger (twice the 4e-8 rad
/// haversine error near the antipode, rounded up; chords are 1-Lipschitz in arc length).
pub(crate) const CHORD_SLACK: f64 = 1e-7;

/// Allowance for rounding in a squared chord (at most 4) computed from two unit vectors or
/// from a unit vector and a box: just short of the antipode the haversine allowance above
/// leaves a gap in squared chord below one ulp of 4.
pub(crate) const CHORD2_ROUNDING: f64 = 1e-14;

/// A squared chord such that a row whose squared chord to the query exceeds it is surely
/// farther than `metres` by haversine (rounding of the squared chord included). `+∞` when
/// nothing can be excluded.
pub(crate) fn chord2_beyond(metres: f64) -> f64 {
    let m = metres + slack(metres);
    if m >= std::f64::consts::PI * EARTH_RADIUS_M {
        return f64::INFINITY;
    }
    let c = metres_to_chord(m);
    c * c + CHORD2_ROUNDING
}

/// Squared distance from `q` to an axis-aligned box: a lower bound on the squared chord to
/// any unit vector inside it.
#[inline]
pub(crate) fn min_d2(q: [f64; 3], b: [f64; 6]) -> f64 {
    let [qx, qy, qz] = q;
    let [x0, y0, z0, x1, y1, z1] = b;
    // Plain selects (not f64::max) compile to bare maxsd; a NaN box gives 0, never a panic.
    let gap = |v: f64, lo: f64, hi: f64| {
        let (a, b) = (lo - v, v - hi);
        let m = if a > b { a } else { b };
        if m > 0.0 {
            m
        } else {
            0.0
        }
    };
    let (dx, dy, dz) = (gap(qx, x0, x1), gap(qy, y0, y1), gap(qz, z0, z1));
    dx * dx + dy * dy + dz * dz
}

/// Squared distance from `q` to the farthest corner of the box.
fn max_d2(q: [f64; 3], b: [f64; 6]) -> f64 {
    let [qx, qy, qz] = q;
    let [x0, y0, z0, x1, y1, z1] = b;
    let far = |v: f64, lo: f64, hi: f64| (v - lo).abs().max((hi - v).abs());
    let (dx, dy, dz) = (far(qx, x0, x1), far(qy, y0, y1), far(qz, z0, z1));
    dx * dx + dy * dy + dz * dz
}

/// Squared distance from `q` to the stored f32 unit vector `u` (12 bytes). The row's
/// exact chord is within [`UNIT_MARGIN`] of its square root.
#[inline]
pub(crate) fn f32_d2(q: [f64; 3], u: &[u8]) -> f64 {
    let ([qx, qy, qz], [x, y, z]) = (q, f32x3(u));
    let (dx, dy, dz) = (qx - x, qy - y, qz - z);
    dx * dx + dy * dy + dz * dz
}

impl PackedRTreeRef<'_> {
    /// Calls `visit(row, haversine_m(at, location(row)))` for every row within `metres` of
    /// `at` (distance ≤ `metres`, exactly), in increasing row order. Nothing for a negative
    /// or NaN radius.
    pub fn within_radius(&self, at: LatLon, metres: f64, visit: &mut dyn FnMut(u32, f64)) {
        if metres.is_nan() || metres < 0.0 || self.is_empty() {
            return;
        }
        let q = at.to_unit_vector();
        let outer = chord2_beyond(metres);
        let outer_row = (outer.sqrt() + UNIT_MARGIN).powi(2);
        // Nodes whose farthest corner is inside this chord are taken whole (no f32 test).
        let inner = metres_to_chord(metres - slack(metres)).powi(2) - CHORD2_ROUNDING;
        let from = HaversineFrom::new(at);
        let mut emit = |rows: Range<u32>, test: bool| {
            let units = if test { self.units(rows.start as usize, rows.end as usize) } else { &[] };
            let mut units = units.chunks_exact(UNIT_LEN);
            for row in rows {
                if test && !units.next().is_some_and(|u| f32_d2(q, u) <= outer_row) {
                    continue;
                }
                if let Some(p) = self.location(row) {
                    let d = from.to(p);
                    if d <= metres {
                        visit(row, d);
                    }
                }
            }
        };
        let classify = |node: usize| {
            let b = aabb_of(self.aabbs(node, node.saturating_add(1)));
            if min_d2(q, b).partial_cmp(&outer).is_none_or(|o| o.is_gt()) {
                Coverage::Outside
            } else if max_d2(q, b) < inner {
                Coverage::Inside
            } else {
                Coverage::Partial
            }
        };
        self.descend(classify, |rows, inside| emit(rows, !inside));
    }

    /// Walks the tree top-down, asking `classify` about each node's lon/lat box: `Outside`
    /// nodes are skipped, `Inside` nodes give `visit(rows, true)` (every row matches), and
    /// leaves still `Partial` give `visit(rows, false)` (the caller tests each row).
    /// Ranges come in increasing order, disjoint; adjacent ranges with the same flag are
    /// merged.
    pub fn visit_lonlat(
        &self,
        classify: &mut dyn FnMut(LonLatBox) -> Coverage,
        visit: &mut dyn FnMut(Range<u32>, bool),
    ) {
        self.visit_lonlat_inlined(classify, visit);
    }

    /// [`visit_lonlat`](Self::visit_lonlat), generic so that the crate's own queries have
    /// their closures inlined into the walk.
    pub(crate) fn visit_lonlat_inlined(
        &self,
        mut classify: impl FnMut(LonLatBox) -> Coverage,
        visit: impl FnMut(Range<u32>, bool),
    ) {
        self.descend(|node| classify(self.lonlat_box(node)), visit);
    }

    /// The shared top-down traversal: `classify(node)` decides each node.
    fn descend(&self, mut classify: impl FnMut(usize) -> Coverage, mut visit: impl FnMut(Range<u32>, bool)) {
        if self.is_empty() {
            return;
        }
        let top = self.layout.levels.saturating_sub(1);
        // Depth-first with children pushed in reverse, so rows come out in order. At most
        // 15 siblings wait per level: 8 levels never exceed 121 entries.
        let mut stack = Vec::with_capacity(128);
        stack.push((top, self.level(top).0));
        let mut pending: Option<(Range<u32>, bool)> = None;
        let mut out = |rows: Range<u32>, inside: bool| match &mut pending {
            Some((r, f)) if *f == inside && r.end == rows.start => r.end = rows.end,
            _ => {
                if let Some((r, f)) = pending.replace((rows, inside)) {
                    visit(r, f);
                }
            }
        };
        while let Some((level, node)) = stack.pop() {
            match classify(node) {
                Coverage::Outside => {}
                Coverage::Inside => out(self.row_range(level, node), true),
                Coverage::Partial if level == 0 => out(self.row_range(0, node), false),
                Coverage::Partial => stack.extend(self.children(level, node).rev().map(|c| (level - 1, c))),
            }
        }
        if let Some((r, f)) = pending {
            visit(r, f);
        }
    }
}
