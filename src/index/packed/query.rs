//! Queries: exact k-nearest, exact radius, and lon/lat box traversal.
#![deny(clippy::indexing_slicing)]

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use super::format::{AABB_LEN, UNIT_LEN};
use super::{aabb_of, f32_at, Coverage, LonLatBox, PackedRTreeRef};
use crate::geo::{haversine_m, metres_to_chord, LatLon, EARTH_RADIUS_M};

/// Bound on how far a stored f32 unit vector is from the f64 one: each component moves by
/// at most 2⁻²⁴ (components are within [-1, 1]), so the vector by √3·2⁻²⁴ ≈ 1.033e-7.
pub(crate) const UNIT_MARGIN: f64 = 1.1e-7;

/// Allowance, in metres, for the difference between a haversine distance and the distance
/// derived from the chord between f64 unit vectors (rounding in both; largest near the
/// antipode, where `asin` is ill-conditioned: about 1e-8 rad there).
fn slack(metres: f64) -> f64 {
    1e-6 + 1e-8 * metres.abs()
}

/// A squared chord such that a row whose squared chord to the query exceeds it is surely
/// farther than `metres` by haversine. `+∞` when nothing can be excluded.
fn chord2_beyond(metres: f64) -> f64 {
    let m = metres + slack(metres);
    if m >= std::f64::consts::PI * EARTH_RADIUS_M {
        return f64::INFINITY;
    }
    let c = metres_to_chord(m);
    c * c
}

/// Squared distance from `q` to an axis-aligned box: a lower bound on the squared chord to
/// any unit vector inside it.
fn min_d2(q: [f64; 3], b: [f64; 6]) -> f64 {
    let [qx, qy, qz] = q;
    let [x0, y0, z0, x1, y1, z1] = b;
    let gap = |v: f64, lo: f64, hi: f64| (lo - v).max(v - hi).max(0.0);
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

/// A lower bound on the squared chord from `q` to the exact unit vector of a row whose
/// stored f32 unit vector is the 12 bytes `u`.
fn row_lower_d2(q: [f64; 3], u: &[u8]) -> f64 {
    let [qx, qy, qz] = q;
    let (dx, dy, dz) =
        (qx - f64::from(f32_at(u, 0)), qy - f64::from(f32_at(u, 4)), qz - f64::from(f32_at(u, 8)));
    let c = (dx * dx + dy * dy + dz * dz).sqrt() - UNIT_MARGIN;
    if c > 0.0 {
        c * c
    } else {
        0.0
    }
}

/// Heap entry: squared-chord lower bound in the high 64 bits (non-negative floats order as
/// their bits), then a tag (0 = row, `l + 1` = node at level `l`) and an index.
fn entry(key: f64, tag: usize, index: usize) -> Reverse<u128> {
    Reverse((u128::from(key.to_bits()) << 64) | ((tag as u128) << 32) | (index as u32 as u128))
}

/// Reusable per-thread buffers so a query allocates only its answer.
#[derive(Default)]
struct Scratch {
    heap: BinaryHeap<Reverse<u128>>,
    best: BinaryHeap<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl PackedRTreeRef<'_> {
    /// The exact great-circle `k` nearest rows to `at` among those `accept` returns `true`
    /// for, as `(haversine_m(at, location(row)), row)` sorted by distance then row.
    ///
    /// Every accepted row at a distance ≤ the `k`-th smallest is returned, so more than `k`
    /// rows come back when several tie at the boundary; fewer when fewer rows are accepted.
    /// `accept` is called at most once per row, only for rows that may be among the nearest,
    /// in roughly increasing distance. `k = 0` returns nothing.
    pub fn nearest(&self, at: LatLon, k: usize, accept: &mut dyn FnMut(u32) -> bool) -> Vec<(f64, u32)> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let done =
            SCRATCH.try_with(|cell| cell.try_borrow_mut().ok().map(|mut s| self.knn(&mut s, at, k, accept)));
        match done {
            Ok(Some(found)) => found,
            // Re-entered from `accept`, or during thread teardown.
            _ => self.knn(&mut Scratch::default(), at, k, accept),
        }
    }

    fn knn(
        &self,
        s: &mut Scratch,
        at: LatLon,
        k: usize,
        accept: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<(f64, u32)> {
        let Scratch { heap, best } = s;
        heap.clear();
        best.clear();
        let q = at.to_unit_vector();
        let mut found = Vec::new();
        let (mut kth, mut thr) = (f64::INFINITY, f64::INFINITY);
        let top = self.layout.levels.saturating_sub(1);
        heap.push(entry(0.0, top + 1, self.level(top).0));
        while let Some(Reverse(e)) = heap.pop() {
            if f64::from_bits((e >> 64) as u64) > thr {
                break;
            }
            let (tag, index) = (((e >> 32) as u32) as usize, (e as u32) as usize);
            if tag == 0 {
                let row = index as u32;
                if !accept(row) {
                    continue;
                }
                let Some(p) = self.location(row) else { continue };
                let d = haversine_m(at, p);
                if d > kth {
                    continue;
                }
                found.push((d, row));
                if best.len() == k {
                    best.pop();
                }
                best.push(d.to_bits());
                if best.len() == k {
                    kth = best.peek().map_or(f64::INFINITY, |&b| f64::from_bits(b));
                    thr = chord2_beyond(kth);
                    if found.len() >= 2 * k + 64 {
                        found.retain(|&(d, _)| d <= kth);
                    }
                }
            } else if tag == 1 {
                let rows = self.children(0, index);
                let units = self.units(rows.start, rows.end);
                for (row, u) in rows.zip(units.chunks_exact(UNIT_LEN)) {
                    let lb = row_lower_d2(q, u);
                    if lb <= thr {
                        heap.push(entry(lb, 0, row));
                    }
                }
            } else {
                let kids = self.children(tag - 1, index);
                let boxes = self.aabbs(kids.start, kids.end);
                for (child, b) in kids.zip(boxes.chunks_exact(AABB_LEN)) {
                    let lb = min_d2(q, aabb_of(b));
                    if lb <= thr {
                        heap.push(entry(lb, tag - 1, child));
                    }
                }
            }
        }
        if heap.capacity() > 1 << 16 {
            *heap = BinaryHeap::new();
        }
        if best.capacity() > 1 << 16 {
            *best = BinaryHeap::new();
        }
        found.retain(|&(d, _)| d <= kth);
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        found
    }

    /// Calls `visit(row, haversine_m(at, location(row)))` for every row within `metres` of
    /// `at` (distance ≤ `metres`, exactly), in increasing row order. Nothing for a negative
    /// or NaN radius.
    pub fn within_radius(&self, at: LatLon, metres: f64, visit: &mut dyn FnMut(u32, f64)) {
        if metres.is_nan() || metres < 0.0 || self.is_empty() {
            return;
        }
        let q = at.to_unit_vector();
        let outer = chord2_beyond(metres);
        // Nodes whose farthest corner is inside this chord are taken whole (no f32 test).
        let inner = metres_to_chord(metres - slack(metres)).powi(2);
        let mut emit = |rows: Range<u32>, test: bool| {
            let units = if test { self.units(rows.start as usize, rows.end as usize) } else { &[] };
            let mut units = units.chunks_exact(UNIT_LEN);
            for row in rows {
                if test && !units.next().is_some_and(|u| row_lower_d2(q, u) <= outer) {
                    continue;
                }
                if let Some(p) = self.location(row) {
                    let d = haversine_m(at, p);
                    if d <= metres {
                        visit(row, d);
                    }
                }
            }
        };
        let mut classify = |node: usize| {
            let b = aabb_of(self.aabbs(node, node.saturating_add(1)));
            if min_d2(q, b).partial_cmp(&outer).is_none_or(|o| o.is_gt()) {
                Coverage::Outside
            } else if max_d2(q, b) < inner {
                Coverage::Inside
            } else {
                Coverage::Partial
            }
        };
        self.descend(&mut classify, &mut |rows, inside| emit(rows, !inside));
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
        self.descend(&mut |node| classify(self.lonlat_box(node)), visit);
    }

    /// The shared top-down traversal: `classify(node)` decides each node.
    fn descend(&self, classify: &mut dyn FnMut(usize) -> Coverage, visit: &mut dyn FnMut(Range<u32>, bool)) {
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
