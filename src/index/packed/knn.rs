//! Exact great-circle k-nearest neighbours.
//!
//! Filter, then refine. The filter is a best-first search over nodes keyed by a true lower
//! bound (squared distance from the query's unit vector to a node's box); rows of the
//! leaves reached are kept as candidates by their f32 unit vector, whose chord is within
//! [`UNIT_MARGIN`] of the exact one. The k smallest chord upper bounds of accepted rows give
//! a threshold that prunes nodes and rows; the refine step computes `haversine_m` for the
//! few candidates that survive the final threshold.
//!
//! The search starts with a greedy descent to the leaf nearest the query so a threshold
//! exists before anything is pushed on the heap; the siblings passed on the way down are
//! pushed afterwards, only if they can still hold a neighbour.
#![deny(clippy::indexing_slicing)]

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::format::{AABB_LEN, MAX_LEVELS, NODE_SIZE, UNIT_LEN};
use super::query::{chord2_beyond, f32_d2, min_d2, CHORD_SLACK, UNIT_MARGIN};
use super::{aabb_of, PackedRTreeRef};
use crate::geo::{HaversineFrom, LatLon};

/// Heap entry: squared-chord lower bound in the high 64 bits (non-negative floats order as
/// their bits), then the node's level and its index.
fn entry(key: f64, level: usize, node: usize) -> Reverse<u128> {
    Reverse((u128::from(key.to_bits()) << 64) | ((level as u128) << 32) | (node as u32 as u128))
}

/// Reusable per-thread buffers, so a query allocates only its answer.
#[derive(Default)]
struct Scratch {
    heap: BinaryHeap<Reverse<u128>>,
    best: BinaryHeap<u64>,
    cands: Vec<(f64, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The filter's state.
struct Filter<'s> {
    q: [f64; 3],
    k: usize,
    /// Squared chord beyond which nothing can be among the k nearest.
    thr: f64,
    /// The same bound for a row's f32 squared chord.
    row_thr: f64,
    /// The k smallest chord upper bounds (f64 bits) of accepted rows seen.
    best: &'s mut BinaryHeap<u64>,
    /// Accepted rows with their f32 squared chord.
    cands: &'s mut Vec<(f64, u32)>,
}

impl Filter<'_> {
    fn scan_leaf(&mut self, tree: &PackedRTreeRef<'_>, leaf: usize, accept: &mut dyn FnMut(u32) -> bool) {
        let rows = tree.children(0, leaf);
        let units = tree.units(rows.start, rows.end);
        for (row, u) in rows.zip(units.chunks_exact(UNIT_LEN)) {
            let d2 = f32_d2(self.q, u);
            let row = row as u32;
            if d2 > self.row_thr || !accept(row) {
                continue;
            }
            self.cands.push((d2, row));
            let upper = (d2.sqrt() + UNIT_MARGIN).to_bits();
            if self.best.len() < self.k {
                self.best.push(upper);
            } else if self.best.peek().is_some_and(|&b| upper < b) {
                self.best.pop();
                self.best.push(upper);
            } else {
                continue;
            }
            if self.best.len() == self.k {
                // A row whose haversine does not exceed the k-th candidate's has a chord at
                // most CHORD_SLACK above that candidate's upper bound.
                let t = self.best.peek().map_or(f64::INFINITY, |&b| f64::from_bits(b)) + CHORD_SLACK;
                self.thr = t * t;
                self.row_thr = (t + UNIT_MARGIN) * (t + UNIT_MARGIN);
            }
        }
    }
}

impl PackedRTreeRef<'_> {
    /// The exact great-circle `k` nearest rows to `at` among those `accept` returns `true`
    /// for, as `(haversine_m(at, location(row)), row)` sorted by distance then row.
    ///
    /// Every accepted row at a distance ≤ the `k`-th smallest is returned, so more than `k`
    /// rows come back when several tie at the boundary; fewer when fewer rows are accepted.
    /// `accept` is called at most once per row, only for rows that may still be among the
    /// nearest when reached. `k = 0` returns nothing.
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
        let Scratch { heap, best, cands } = s;
        heap.clear();
        best.clear();
        cands.clear();
        let q = at.to_unit_vector();
        let mut f = Filter { q, k, thr: f64::INFINITY, row_thr: f64::INFINITY, best, cands };

        // Greedy descent, remembering every sibling's lower bound.
        let mut path: [_; MAX_LEVELS] = std::array::from_fn(|_| (0..0, 0usize, [f64::INFINITY; NODE_SIZE]));
        let top = self.layout.levels.saturating_sub(1);
        let mut node = self.level(top).0;
        for (level, (kids, chosen, lbs)) in path.iter_mut().enumerate().take(top + 1).skip(1).rev() {
            *kids = self.children(level, node);
            let boxes = self.aabbs(kids.start, kids.end);
            let mut min = (f64::INFINITY, kids.start);
            for ((child, b), lb) in kids.clone().zip(boxes.chunks_exact(AABB_LEN)).zip(lbs.iter_mut()) {
                *lb = min_d2(q, aabb_of(b));
                if *lb < min.0 {
                    min = (*lb, child);
                }
            }
            (*chosen, node) = (min.1, min.1);
        }
        f.scan_leaf(self, node, accept);
        for (level, (kids, chosen, lbs)) in path.iter().enumerate().take(top + 1).skip(1) {
            for (child, &lb) in kids.clone().zip(lbs) {
                if child != *chosen && lb <= f.thr {
                    heap.push(entry(lb, level - 1, child));
                }
            }
        }

        // Best-first over what is left.
        while let Some(Reverse(e)) = heap.pop() {
            if f64::from_bits((e >> 64) as u64) > f.thr {
                break;
            }
            let (level, node) = (((e >> 32) as u32) as usize, (e as u32) as usize);
            if level == 0 {
                f.scan_leaf(self, node, accept);
                continue;
            }
            let kids = self.children(level, node);
            let boxes = self.aabbs(kids.start, kids.end);
            for (child, b) in kids.zip(boxes.chunks_exact(AABB_LEN)) {
                let lb = min_d2(q, aabb_of(b));
                if lb <= f.thr {
                    heap.push(entry(lb, level - 1, child));
                }
            }
        }

        // Refine: exact distances for the candidates that survive the final threshold, in
        // order of their f32 chord, until the next one is surely farther than the k-th
        // exact distance so far (its chord is at least √d2 − UNIT_MARGIN): most candidates
        // of a dense cluster never have their location read.
        let row_thr = f.row_thr;
        cands.retain(|&(d2, _)| d2 <= row_thr);
        cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        best.clear();
        let mut stop = f64::INFINITY;
        let from = HaversineFrom::new(at);
        // Load the locations of the first k (≤ 32) candidates back to back, so their cache misses
        // overlap instead of each waiting behind the previous haversine.
        let mut touched = 0.0;
        for &(_, row) in cands.iter().take(k.min(32)) {
            touched += self.location(row).map_or(0.0, LatLon::lat);
        }
        std::hint::black_box(touched);
        let mut found = Vec::with_capacity(cands.len().min(k.saturating_mul(2).saturating_add(8)));
        for &(d2, row) in cands.iter() {
            if d2 > stop {
                break;
            }
            let Some(location) = self.location(row) else { continue };
            let d = from.to(location);
            found.push((d, row));
            // The k smallest exact distances (non-negative floats order as their bits).
            if best.len() < k {
                best.push(d.to_bits());
            } else if best.peek().is_some_and(|&b| d.to_bits() < b) {
                best.pop();
                best.push(d.to_bits());
            }
            if best.len() == k {
                let kth = best.peek().map_or(f64::INFINITY, |&b| f64::from_bits(b));
                let bound = chord2_beyond(kth).sqrt() + UNIT_MARGIN;
                stop = bound * bound;
            }
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some(&(kth, _)) = found.get(k - 1) {
            found.truncate(found.partition_point(|&(d, _)| d <= kth));
        }
        if heap.capacity() > 1 << 16 || best.capacity() > 1 << 16 || cands.capacity() > 1 << 16 {
            *s = Scratch::default();
        }
        found
    }
}
