//! Exact great-circle k-nearest neighbours.
//!
//! Filter, then refine. The filter is a best-first search over nodes keyed by the squared
//! distance from the query's unit vector to a node's box, computed in f32 (sixteen boxes at
//! a time); the threshold it is compared with is widened by that rounding, so a node is
//! pruned only when it surely holds no neighbour. Rows of the
//! leaves reached are kept as candidates by their f32 unit vector, whose chord is within
//! [`UNIT_MARGIN`] of the exact one. The k smallest chord upper bounds of accepted rows give
//! a threshold that prunes nodes and rows; the refine step computes `haversine_m` for the
//! few candidates that survive the final threshold. Those k rows are kept in order as they
//! are found while k ≤ 32 (in a short sorted array; in a heap beyond, sorted at the end), so
//! the refine starts from them without sorting the candidates.
//!
//! The search starts with a greedy descent to the leaf nearest the query so a threshold
//! exists before anything is pushed on the heap; the siblings passed on the way down are
//! pushed afterwards, only if they can still hold a neighbour.
#![deny(clippy::indexing_slicing)]

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::format::{AABB_LEN, MAX_LEVELS, NODE_SIZE, UNIT_LEN};
use super::query::{chord2_beyond, f32_d2, CHORD_SLACK, UNIT_MARGIN};
use super::PackedRTreeRef;
use crate::geo::{HaversineFrom, LatLon};

/// Heap entry: the node's [`child_lbs`] value in bits 64.. (non-negative floats order as
/// their bits), then its level and its index.
fn entry(key: f32, level: usize, node: usize) -> Reverse<u128> {
    Reverse((u128::from(key.to_bits()) << 64) | ((level as u128) << 32) | (node as u32 as u128))
}

/// A row with a non-negative distance (or squared chord) `d`, as a key that orders by `d`
/// and then by row: non-negative floats order as their bits.
fn key(d: f64, row: u32) -> u128 {
    (u128::from(d.to_bits()) << 32) | u128::from(row)
}

/// The distance of a [`key`].
fn key_d(key: u128) -> f64 {
    f64::from_bits((key >> 32) as u64)
}

/// The row of a [`key`].
fn key_row(key: u128) -> u32 {
    key as u32
}

/// The `k` smallest of the [`key`]s offered. Kept sorted in a short array while `k` is
/// small (an insertion moves a few keys), in a binary heap beyond.
struct KSmallest {
    k: usize,
    /// While `k ≤ SORTED_UP_TO`: the keys kept, sorted, in `small[..len]`.
    small: [u128; SORTED_UP_TO],
    len: usize,
    heap: BinaryHeap<u128>,
    /// [`Self::sorted_keys`]'s answer for a heap.
    sorted: Vec<u128>,
}

/// The largest `k` kept in a sorted array.
const SORTED_UP_TO: usize = 32;

impl Default for KSmallest {
    fn default() -> KSmallest {
        KSmallest { k: 0, small: [0; SORTED_UP_TO], len: 0, heap: BinaryHeap::new(), sorted: Vec::new() }
    }
}

impl KSmallest {
    fn reset(&mut self, k: usize) {
        self.k = k;
        self.len = 0;
        self.heap.clear();
        self.sorted.clear();
    }

    fn is_full(&self) -> bool {
        self.count() == self.k
    }

    /// How many keys are kept.
    fn count(&self) -> usize {
        self.len.max(self.heap.len())
    }

    /// The largest key kept, once there are `k`.
    fn kth(&self) -> Option<u128> {
        if !self.is_full() {
            None
        } else if self.k <= SORTED_UP_TO {
            self.len.checked_sub(1).and_then(|i| self.small.get(i)).copied()
        } else {
            self.heap.peek().copied()
        }
    }

    /// Offers `key`; `true` when it is kept.
    #[inline(always)]
    fn offer(&mut self, key: u128) -> bool {
        if self.k <= SORTED_UP_TO {
            return self.offer_small(key);
        }
        if self.heap.len() < self.k {
            self.heap.push(key);
        } else if self.heap.peek().is_some_and(|&b| key < b) {
            self.heap.pop();
            self.heap.push(key);
        } else {
            return false;
        }
        true
    }

    // Indexes stay below `len ≤ k ≤ SORTED_UP_TO`, the array's length.
    #[allow(clippy::indexing_slicing)]
    #[inline(always)]
    fn offer_small(&mut self, key: u128) -> bool {
        let full = self.len == self.k;
        if full && (self.len == 0 || key >= self.small[self.len - 1]) {
            return false;
        }
        // Shift the larger keys up by one (the largest drops out when full) and put `key` in
        // the gap.
        let mut gap = if full { self.len - 1 } else { self.len };
        while gap > 0 && self.small[gap - 1] > key {
            self.small[gap] = self.small[gap - 1];
            gap -= 1;
        }
        self.small[gap] = key;
        if !full {
            self.len += 1;
        }
        true
    }

    /// The keys kept, in increasing order (a heap's are sorted on the way: the last use).
    fn sorted_keys(&mut self) -> &[u128] {
        if self.k <= SORTED_UP_TO {
            return self.small.get(..self.len).unwrap_or_default();
        }
        self.sorted.clear();
        self.sorted.extend(self.heap.drain());
        self.sorted.sort_unstable();
        &self.sorted
    }

    fn capacity(&self) -> usize {
        self.sorted.capacity().max(self.heap.capacity())
    }
}

/// Reusable per-thread buffers, so a query allocates only its answer.
#[derive(Default)]
struct Scratch {
    heap: BinaryHeap<Reverse<u128>>,
    best: KSmallest,
    exact: KSmallest,
    cands: Vec<(f64, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The filter's state.
struct Filter<'s> {
    q: [f64; 3],
    /// The largest [`child_lbs`] value of a node that may hold one of the k nearest.
    node_thr: f32,
    /// The largest f32 squared chord of a row that may be one of the k nearest.
    row_thr: f64,
    /// The k accepted rows seen with the smallest f32 squared chords, as [`key`]s.
    best: &'s mut KSmallest,
    /// Accepted rows with their f32 squared chord.
    cands: &'s mut Vec<(f64, u32)>,
    /// Whether `accept` has refused a row, or is known to be a filter that will.
    refused: bool,
}

/// Squared distances, computed in f32, from `q` to each 24-byte node box of `boxes` (at
/// most [`NODE_SIZE`]) into `out`; the rest of `out` is left alone. A NaN box gives 0.
///
/// Each is the squared distance to the box within f32 rounding: `q` rounded to f32 moves
/// each component by at most 2⁻²⁵, each gap's subtraction rounds by at most 2⁻²⁴ of it,
/// and the sum of squares by at most 2⁻²² more, so the exact distance from the f64 unit
/// vector to the box (a lower bound on its chord to every row under the node) is at least
/// `√lb·(1 − 2e-7) − 5.2e-8`. [`node_bound`] turns a chord bound into the matching bound
/// on these values; underflow only makes a value smaller.
#[inline]
fn child_lbs(q: [f32; 3], boxes: &[u8], out: &mut [f32; NODE_SIZE]) {
    let [qx, qy, qz] = q;
    let gap = |v: f32, lo: f32, hi: f32| {
        let (a, b) = (lo - v, v - hi);
        let m = if a > b { a } else { b };
        if m > 0.0 {
            m
        } else {
            0.0
        }
    };
    for (o, b) in out.iter_mut().zip(boxes.as_chunks::<AABB_LEN>().0) {
        let w = b.as_chunks::<4>().0;
        let f = |i: usize| w.get(i).map_or(f32::NAN, |w| f32::from_le_bytes(*w));
        let (dx, dy, dz) = (gap(qx, f(0), f(3)), gap(qy, f(1), f(4)), gap(qz, f(2), f(5)));
        *o = dx * dx + dy * dy + dz * dz;
    }
}

/// A [`child_lbs`] value above this proves that no row under the node is within chord `t`:
/// `((t + 5.2e-8) / (1 − 2e-7))²` with room to spare, so the rounding to f32 cannot
/// bring it below.
fn node_bound(t: f64) -> f32 {
    let b = (t + 2e-7) * (1.0 + 1e-6);
    (b * b * (1.0 + 1e-6)) as f32
}

/// The order in which to take a leaf's first `n` rows, nearest first by their squared chords
/// `d2s` rounded to f32 (a heuristic that only saves work: rows within 16 f32 ulps of each
/// other count as tied and go in leaf order, and any order gives the same answer). The first
/// `n` entries are 0..n, each once, whatever the values (NaN, infinite) — a row is never
/// skipped or taken twice.
///
/// Each row's place is the number of rows with a smaller key: the row's rounded squared chord
/// with its four lowest bits replaced by its index, so the keys are distinct and every place
/// is taken once. An unused slot's key, `0x7FFF_FFF0 + slot`, is above every row's (whose
/// bits are at most `0x7FFF_FFF0 + row` even for a NaN with every payload bit set, and
/// `row < slot`). The keys compare as `i32`s, four at a time in SSE2 (which has no unsigned
/// compare), with no branches: a sort's mispredicted comparisons cost a filtered query,
/// which gains nothing from the order, 0.25 µs.
fn nearest_first(d2s: &[f64; NODE_SIZE], n: usize) -> [u8; NODE_SIZE] {
    const _: () = assert!(NODE_SIZE <= 16, "a leaf's row index must fit in a key's four lowest bits");
    let mut keys: [i32; NODE_SIZE] = std::array::from_fn(|i| i32::MAX - 15 + i as i32);
    for (i, (key, &d2)) in keys.iter_mut().zip(d2s).take(n).enumerate() {
        *key = (((d2 as f32).to_bits() & !15) | i as u32) as i32;
    }
    let mut order = [0u8; NODE_SIZE];
    for (i, &ki) in keys.iter().enumerate() {
        let place: i32 = keys.iter().map(|&kj| i32::from(kj < ki)).sum();
        if let Some(o) = order.get_mut(place as usize) {
            *o = i as u8;
        }
    }
    order
}

impl Filter<'_> {
    fn scan_leaf(&mut self, tree: &PackedRTreeRef<'_>, leaf: usize, accept: &mut dyn FnMut(u32) -> bool) {
        let rows = tree.children(0, leaf);
        let units = tree.units(rows.start, rows.end);
        // All the leaf's squared chords first (a loop the compiler vectorizes), then the few
        // rows within the threshold.
        let mut d2s = [f64::INFINITY; NODE_SIZE];
        for (d2, u) in d2s.iter_mut().zip(units.as_chunks::<UNIT_LEN>().0) {
            *d2 = f32_d2(self.q, u);
        }
        let mut changed = false;
        // In the leaf that can bring the k-th row, its rows go nearest first (`nearest_first`:
        // an order that only saves work): the k-th comes as early as it can, and the rows past
        // the threshold it sets are not taken (about a third of the first leaf's sixteen). Not
        // once `accept` has refused a row: a filtered query's leaves rarely bring it, and
        // ordering each of them cost more than it saved.
        let n = rows.len().min(NODE_SIZE);
        if !self.refused && !self.best.is_full() && self.best.count() + n >= self.best.k {
            let order = nearest_first(&d2s, n);
            for &i in order.get(..n).unwrap_or_default() {
                let i = usize::from(i);
                let d2 = d2s.get(i).copied().unwrap_or(f64::INFINITY);
                changed |= self.take_row(tree, (rows.start + i) as u32, d2, accept);
            }
        } else {
            for (row, &d2) in rows.zip(d2s.iter()) {
                changed |= self.take_row(tree, row as u32, d2, accept);
            }
        }
        // Once there is a threshold, it follows the k-th best once per leaf, not after each
        // better row: rows of this leaf let through by the older, looser one are only more
        // candidates, dropped by the final threshold before the refine step.
        if changed {
            self.tighten();
        }
    }

    /// One row of a leaf with its squared chord `d2`: a candidate if within the threshold
    /// and accepted. Whether it changed the k-th best of a full set (the caller tightens
    /// once per leaf); the first threshold is set at once.
    #[inline(always)]
    fn take_row(
        &mut self,
        tree: &PackedRTreeRef<'_>,
        row: u32,
        d2: f64,
        accept: &mut dyn FnMut(u32) -> bool,
    ) -> bool {
        if d2 > self.row_thr {
            return false;
        }
        if !accept(row) {
            self.refused = true;
            return false;
        }
        self.cands.push((d2, row));
        // The k smallest f32 squared chords (non-negative floats order as their bits):
        // a row's chord upper bound √d2 + UNIT_MARGIN grows with d2.
        let was_full = self.best.is_full();
        if !self.best.offer(key(d2, row)) {
            return false;
        }
        // One of the k nearest so far: the refine step will likely read its location, which
        // then arrives while the search goes on (with query points scattered over the map,
        // nearest-10 took 7–12 % less: BENCHMARKS.md, thirty-ninth part).
        tree.prefetch_location(row);
        if !was_full && self.best.is_full() {
            // The first threshold at once: with none yet, every row passes.
            self.tighten();
        }
        was_full
    }

    /// Sets the thresholds from the k-th smallest squared chord of the accepted rows,
    /// once there are k.
    fn tighten(&mut self) {
        if let Some(kth) = self.best.kth() {
            // A row whose haversine does not exceed the k-th candidate's has a chord at
            // most CHORD_SLACK above that candidate's upper bound.
            let kth = key_d(kth);
            let t = kth.sqrt() + UNIT_MARGIN + CHORD_SLACK;
            self.node_thr = node_bound(t);
            self.row_thr = (t + UNIT_MARGIN) * (t + UNIT_MARGIN);
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
    /// nearest by what the search knew when it reached their leaf. `k = 0` returns nothing.
    pub fn nearest(&self, at: LatLon, k: usize, accept: &mut dyn FnMut(u32) -> bool) -> Vec<(f64, u32)> {
        self.nearest_hinted(at, k, false, accept, &mut |_| {})
    }

    /// [`Self::nearest`], calling `answering` for each of the (at most 32) rows most
    /// likely to be answers as the exact distances are about to be computed — where a
    /// caller that will read more of each answer can start loading it. `filtered` says that
    /// `accept` is a filter that refuses rows, so that work which only pays when it takes
    /// every row is skipped from the start (the answer is the same either way).
    pub(crate) fn nearest_hinted(
        &self,
        at: LatLon,
        k: usize,
        filtered: bool,
        accept: &mut dyn FnMut(u32) -> bool,
        answering: &mut dyn FnMut(u32),
    ) -> Vec<(f64, u32)> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let done = SCRATCH.try_with(|cell| {
            cell.try_borrow_mut().ok().map(|mut s| self.knn(&mut s, at, k, filtered, accept, answering))
        });
        match done {
            Ok(Some(found)) => found,
            // Re-entered from `accept`, or during thread teardown.
            _ => self.knn(&mut Scratch::default(), at, k, filtered, accept, answering),
        }
    }

    fn prefetch_leaf(&self, leaf: usize) {
        let rows = self.children(0, leaf);
        crate::io::prefetch(self.units(rows.start, rows.end));
    }

    fn knn(
        &self,
        s: &mut Scratch,
        at: LatLon,
        k: usize,
        filtered: bool,
        accept: &mut dyn FnMut(u32) -> bool,
        answering: &mut dyn FnMut(u32),
    ) -> Vec<(f64, u32)> {
        let Scratch { heap, best, exact, cands } = s;
        heap.clear();
        best.reset(k);
        cands.clear();
        let q = at.to_unit_vector();
        let qf = q.map(|c| c as f32);
        let mut f =
            Filter { q, node_thr: f32::INFINITY, row_thr: f64::INFINITY, best, cands, refused: filtered };

        // Greedy descent, remembering every sibling's lower bound.
        let mut path: [_; MAX_LEVELS] = std::array::from_fn(|_| (0..0, 0usize, [f32::INFINITY; NODE_SIZE]));
        let top = self.layout.levels.saturating_sub(1);
        let mut node = self.level(top).0;
        for (level, (kids, chosen, lbs)) in path.iter_mut().enumerate().take(top + 1).skip(1).rev() {
            *kids = self.children(level, node);
            child_lbs(qf, self.aabbs(kids.start, kids.end), lbs);
            let mut min = (f32::INFINITY, kids.start);
            for (child, &lb) in kids.clone().zip(lbs.iter()) {
                if lb < min.0 {
                    min = (lb, child);
                }
            }
            (*chosen, node) = (min.1, min.1);
        }
        f.scan_leaf(self, node, accept);
        for (level, (kids, chosen, lbs)) in path.iter().enumerate().take(top + 1).skip(1) {
            for (child, &lb) in kids.clone().zip(lbs) {
                if child != *chosen && lb <= f.node_thr {
                    if level == 1 {
                        self.prefetch_leaf(child);
                    }
                    heap.push(entry(lb, level - 1, child));
                }
            }
        }

        // Best-first over what is left.
        while let Some(Reverse(e)) = heap.pop() {
            if f32::from_bits((e >> 64) as u32) > f.node_thr {
                break;
            }
            let (level, node) = (((e >> 32) as u32) as usize, (e as u32) as usize);
            if level == 0 {
                f.scan_leaf(self, node, accept);
                continue;
            }
            let kids = self.children(level, node);
            let mut lbs = [f32::INFINITY; NODE_SIZE];
            child_lbs(qf, self.aabbs(kids.start, kids.end), &mut lbs);
            for (child, &lb) in kids.zip(lbs.iter()) {
                if lb <= f.node_thr {
                    if level == 1 {
                        self.prefetch_leaf(child);
                    }
                    heap.push(entry(lb, level - 1, child));
                }
            }
        }

        // Refine: exact distances for the candidates that survive the final threshold. First
        // the k nearest by f32 chord (the filter's k smallest keys, in order), then the other
        // candidates within the row threshold (keys above the k-th: rarely any) in any order.
        // A candidate is passed over when it is surely farther than the k-th exact distance
        // so far (its chord is at least √d2 − UNIT_MARGIN); that bound only shrinks, so one
        // beyond it when its turn comes is beyond it at the end, and most candidates of a
        // dense cluster never have their location read.
        let row_thr = f.row_thr;
        let head = best.sorted_keys();
        let last = head.last().copied().unwrap_or(0);
        exact.reset(k);
        let mut stop = f64::INFINITY;
        let from = HaversineFrom::new(at);
        // Read the locations of the first min(k, SORTED_UP_TO) candidates back to back, so
        // their cache misses overlap instead of each waiting behind the previous haversine;
        // the loop below takes them from here.
        let mut head_locations = [None; SORTED_UP_TO];
        for (location, &key) in head_locations.iter_mut().zip(head) {
            answering(key_row(key));
            *location = self.location(key_row(key));
        }
        let read = head.len().min(head_locations.len());
        let mut found = Vec::with_capacity(head.len().saturating_add(4));
        let rest = cands.iter().filter(|&&(d2, row)| d2 <= row_thr && key(d2, row) > last);
        let candidates = head.iter().map(|&key| (key_d(key), key_row(key))).chain(rest.copied());
        for (i, (d2, row)) in candidates.enumerate() {
            if d2 > stop {
                continue;
            }
            let location =
                if i < read { head_locations.get(i).copied().flatten() } else { self.location(row) };
            let Some(location) = location else { continue };
            let d = from.to(location);
            found.push((d, row));
            // The k smallest exact distances.
            if exact.offer(key(d, row)) {
                if let Some(kth) = exact.kth() {
                    let bound = chord2_beyond(key_d(kth)).sqrt() + UNIT_MARGIN;
                    stop = bound * bound;
                }
            }
        }
        found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some(&(kth, _)) = found.get(k - 1) {
            found.truncate(found.partition_point(|&(d, _)| d <= kth));
        }
        if [heap.capacity(), best.capacity(), exact.capacity(), cands.capacity()].iter().any(|&c| c > 1 << 16)
        {
            *s = Scratch::default();
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::index::packed::query::min_d2;

    fn box_bytes(b: [f32; 6]) -> Vec<u8> {
        b.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    proptest::proptest! {
        /// `node_bound` is conservative: a node whose f32 bound exceeds `node_bound(t)` is
        /// farther than `t` from the query by the exact (f64) distance to its box — for
        /// queries on the unit sphere, boxes around, touching or containing them, tiny and
        /// large, and thresholds from a millimetre's chord to the whole sphere.
        #[test]
        fn a_pruned_node_is_surely_beyond_the_threshold(
            lat in -90.0f64..=90.0,
            lon in -180.0f64..=180.0,
            offsets in proptest::array::uniform6(-1e-3f64..1e-3),
            scale in 0u32..12,
            t_exp in -10.0f64..0.3,
            near in proptest::bool::ANY,
            rel in -1e-6f64..1e-6,
        ) {
            let q = LatLon::new(lat, lon).unwrap().to_unit_vector();
            let s = 10f64.powi(-(scale as i32));
            // A box near q: each face at q ± an offset scaled down to as little as 1e-14.
            let (lo, hi): (Vec<f64>, Vec<f64>) = (0..3)
                .map(|i| {
                    let (a, b) = (q[i] + offsets[i] * s, q[i] + offsets[i + 3] * s);
                    (a.min(b), a.max(b))
                })
                .unzip();
            let b = [lo[0] as f32, lo[1] as f32, lo[2] as f32, hi[0] as f32, hi[1] as f32, hi[2] as f32];
            let mut out = [f32::INFINITY; NODE_SIZE];
            child_lbs(q.map(|c| c as f32), &box_bytes(b), &mut out);
            let exact = min_d2(q, b.map(f64::from)).sqrt();
            // A threshold anywhere, or right at the box's distance (where rounding decides).
            let t = if near { exact * (1.0 + rel) } else { 10f64.powf(t_exp) };
            if out[0] > node_bound(t) {
                proptest::prop_assert!(exact > t, "lb {} bound {} exact {exact} t {t}", out[0], node_bound(t));
            }
            // And the bound is tight enough to prune: a box clearly beyond t is pruned.
            if exact > 1.01 * t + 1e-6 {
                proptest::prop_assert!(out[0] > node_bound(t), "exact {exact} t {t} lb {}", out[0]);
            }
        }
    }

    /// A leaf's squared chord: realistic, tiny or tied, or any bits at all (NaNs of either
    /// sign with any payload, infinities, subnormals, values beyond f32).
    fn any_d2() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            0.0f64..4.0,
            (0u32..4).prop_map(|i| f64::from(i) * 1e-9),
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::NAN),
            Just(f64::from_bits(u64::MAX)),
            Just(f64::from_bits(u64::MAX >> 1)),
            Just(f64::INFINITY),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE / 4.0),
        ]
    }

    proptest::proptest! {
        /// `nearest_first` takes each of a leaf's `n` rows once, whatever their values, and
        /// orders the non-negative ones by their squared chords rounded to f32 (ties within 16
        /// ulps by row).
        #[test]
        fn nearest_first_takes_every_row_once_nearest_first(
            d2s in proptest::array::uniform16(any_d2()),
            n in 1usize..=NODE_SIZE,
        ) {
            let order = nearest_first(&d2s, n);
            let mut taken: Vec<u8> = order[..n].to_vec();
            taken.sort_unstable();
            proptest::prop_assert_eq!(taken, (0..n as u8).collect::<Vec<_>>(), "{:?}", order);
            let bucket = |i: u8| ((d2s[usize::from(i)] as f32).to_bits() >> 4, i);
            let plain = |i: u8| d2s[usize::from(i)] >= 0.0;
            for (p, &a) in order[..n].iter().enumerate() {
                for &b in &order[p + 1..n] {
                    if plain(a) && plain(b) {
                        proptest::prop_assert!(bucket(a) < bucket(b), "{a} before {b}: {:?}", d2s);
                    }
                }
            }
        }
    }

    #[test]
    fn node_bound_of_infinity_prunes_nothing() {
        assert_eq!(node_bound(f64::INFINITY), f32::INFINITY);
        let mut out = [0.0; NODE_SIZE];
        child_lbs([1.0, 0.0, 0.0], &box_bytes([f32::NAN; 6]), &mut out);
        assert_eq!(out[0], 0.0, "a NaN box is never pruned");
    }
}
