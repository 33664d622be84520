//! The row order checkpoints build their packed R-trees in: a top-down k-d packing fitted to
//! the tree's implicit layout.
//!
//! The layout fixes which rows each node holds (node `j` of level `l` covers rows
//! `j·16^(l+1) ..`), so an order is good when every such run of rows is spatially compact.
//! The order is built from the top: the rows are halved at a multiple of the run length of
//! the root's children, along the longer side of their extent (longitude scaled by the cosine
//! of the middle latitude, against latitude), and each half again along its own longer side,
//! until every part is one run; each run is ordered the same way one level down, to the
//! leaves. Every node is thus the cell of a k-d split adapted to the data's density. On
//! 1,000,000 customers, against runs along a Hilbert curve
//! ([`hilbert_order`](super::hilbert_order)), nearest-10 took 27 % less time on clustered data
//! (on uniform data the same within the noise) and a 50 km bbox count 9 % less on clustered
//! data, 21 % less on uniform data (BENCHMARKS.md, seventh part). A first version that cut
//! each node into √16 slabs and then each slab the other way was as good for nearest-10 but
//! made clustered bbox counts half as slow again: slabs give long thin nodes where the density
//! changes.
//!
//! Longitude is cut as a line, so the antimeridian is a border, as with the Hilbert curve.
//! The borders fall at fixed row counts, so a part may still take rows from both sides of it
//! (or of any empty stretch); each later halving picks its own longer side and soon separates
//! them. On 200,000 points all within a degree of the antimeridian nearest-10 took the same
//! time as with the Hilbert order (the slab version was 15–20 % slower there).
#![deny(clippy::indexing_slicing)]

use super::format::NODE_SIZE;
use crate::geo::LatLon;

/// A row while it is being ordered: its position rounded to f32 (enough to order by) and
/// its index, 12 bytes.
#[derive(Clone, Copy)]
struct Item {
    lon: f32,
    lat: f32,
    row: u32,
}

/// Parts of at least this many rows have their two halves ordered on separate threads.
const PARALLEL_MIN: usize = 1 << 16;

/// A permutation of `0..points.len()` that packs the points into compact tree nodes: build
/// the tree over `order.iter().map(|&i| points[i as usize])` and row `r` is point `order[r]`.
/// What the database's checkpoints use. The same points give the same order (with the same
/// build: the standard library's selection algorithm decides how ties are placed).
///
/// ```
/// use geocrm::index::packed::{packing_order, PackedRTree};
/// use geocrm::LatLon;
/// let points: Vec<LatLon> =
///     (0..1000).map(|i| LatLon::new(f64::from(i % 40) * 0.01, f64::from(i / 40) * 0.01)).collect::<Result<_, _>>()?;
/// let order = packing_order(&points);
/// let mut seen = order.clone();
/// seen.sort_unstable();
/// assert!(seen.iter().copied().eq(0..1000)); // a permutation
/// let tree = PackedRTree::build(&order.iter().map(|&i| points[i as usize]).collect::<Vec<_>>());
/// assert_eq!(tree.view().len(), 1000);
/// # Ok::<(), geocrm::Error>(())
/// ```
///
/// # Panics
/// With more than `u32::MAX` points.
#[must_use]
pub fn packing_order(points: &[LatLon]) -> Vec<u32> {
    assert!(points.len() <= u32::MAX as usize, "at most u32::MAX points");
    #[allow(clippy::cast_possible_truncation)]
    let mut items: Vec<Item> = points
        .iter()
        .zip(0u32..)
        .map(|(p, row)| Item { lon: p.lon() as f32, lat: p.lat() as f32, row })
        .collect();
    // Rows under each child of the root.
    let mut run = NODE_SIZE;
    while run.saturating_mul(NODE_SIZE) < items.len() {
        run *= NODE_SIZE;
    }
    order_runs(&mut items, run, crate::parallel::threads());
    items.into_iter().map(|item| item.row).collect()
}

/// Orders `items` (at most `16·run` of them, starting at a multiple of `16·run` in the whole
/// order) into compact runs of `run` rows, and each run likewise, down to the leaves, using up
/// to `threads` threads.
fn order_runs(items: &mut [Item], run: usize, threads: usize) {
    if items.len() <= NODE_SIZE || run < NODE_SIZE {
        return;
    }
    // (A last, partial run of its level is handed straight down by `split`.)
    split(items, run, threads);
}

/// Halves `items` at a multiple of `run` rows along their longer side, and each half again,
/// until every part is at most one run; then orders each run one level down.
fn split(items: &mut [Item], run: usize, threads: usize) {
    if items.len() <= run {
        order_runs(items, run / NODE_SIZE, threads);
        return;
    }
    let half = items.len().div_ceil(run) / 2 * run;
    if lon_is_longer(items) {
        items.select_nth_unstable_by(half, |a, b| a.lon.total_cmp(&b.lon));
    } else {
        items.select_nth_unstable_by(half, |a, b| a.lat.total_cmp(&b.lat));
    }
    let (low, high) = items.split_at_mut(half);
    if threads > 1 && low.len() + high.len() >= PARALLEL_MIN {
        let spare = threads / 2;
        std::thread::scope(|scope| {
            scope.spawn(|| split(low, run, spare));
            split(high, run, threads - spare);
        });
    } else {
        split(low, run, 1);
        split(high, run, 1);
    }
}

/// Whether the items spread farther east–west (in degrees of longitude scaled by the cosine
/// of the middle latitude) than north–south.
///
/// Every halving scans its part, so this scan was most of the packing's own time. The
/// coordinates are finite (they come from [`LatLon`]s), so plain comparisons do (`f32::min`
/// also handles NaN, a compare and blend more per value), and four items at a time keep four
/// sets of bounds, so the comparisons do not wait on each other.
fn lon_is_longer(items: &[Item]) -> bool {
    let (mut west, mut east, mut south, mut north) =
        ([f32::MAX; 4], [f32::MIN; 4], [f32::MAX; 4], [f32::MIN; 4]);
    let (fours, rest) = items.as_chunks::<4>();
    let mut widen = |lane: usize, i: &Item| {
        if let (Some(w), Some(e), Some(s), Some(n)) =
            (west.get_mut(lane), east.get_mut(lane), south.get_mut(lane), north.get_mut(lane))
        {
            *w = if i.lon < *w { i.lon } else { *w };
            *e = if i.lon > *e { i.lon } else { *e };
            *s = if i.lat < *s { i.lat } else { *s };
            *n = if i.lat > *n { i.lat } else { *n };
        }
    };
    for four in fours {
        for (lane, i) in four.iter().enumerate() {
            widen(lane, i);
        }
    }
    for i in rest {
        widen(0, i);
    }
    let min = |v: [f32; 4]| v.into_iter().fold(f32::MAX, f32::min);
    let max = |v: [f32; 4]| v.into_iter().fold(f32::MIN, f32::max);
    let (west, east, south, north) = (min(west), max(east), min(south), max(north));
    let middle = f64::midpoint(f64::from(south), f64::from(north)).to_radians().cos();
    f64::from(east - west) * middle >= f64::from(north - south)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn is_permutation(order: &[u32]) -> bool {
        let mut seen = order.to_vec();
        seen.sort_unstable();
        seen.iter().copied().eq(0..order.len() as u32)
    }

    proptest::proptest! {
        /// The four-lane scan of the items' extent decides as one set of bounds would, for
        /// every count (the lanes, and the items after the last four).
        #[test]
        fn the_longer_side_is_found_as_from_one_set_of_bounds(
            points in proptest::collection::vec((-90.0f32..=90.0, -180.0f32..=180.0), 0..40),
        ) {
            let items: Vec<Item> =
                points.iter().zip(0u32..).map(|(&(lat, lon), row)| Item { lon, lat, row }).collect();
            let (mut west, mut east, mut south, mut north) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
            for i in &items {
                west = west.min(i.lon);
                east = east.max(i.lon);
                south = south.min(i.lat);
                north = north.max(i.lat);
            }
            let middle = f64::midpoint(f64::from(south), f64::from(north)).to_radians().cos();
            let want = f64::from(east - west) * middle >= f64::from(north - south);
            proptest::prop_assert_eq!(lon_is_longer(&items), want);
        }
    }

    #[test]
    fn a_grid_is_packed_into_square_leaves_and_nodes() {
        // A 64 × 64 grid of points 0.01° apart near the equator: every leaf must be a 4 × 4
        // block and every level-1 node a 16 × 16 block (a Hilbert-curve order would give the
        // same here; a row-major order would give 16 × 1 leaves).
        let points: Vec<LatLon> = (0..64 * 64)
            .map(|i| LatLon::new(f64::from(i / 64) * 0.01, f64::from(i % 64) * 0.01).unwrap())
            .collect();
        let order = packing_order(&points);
        assert!(is_permutation(&order));
        for (size, side) in [(16, 4), (256, 16)] {
            for run in order.chunks(size) {
                let (lats, lons): (Vec<u32>, Vec<u32>) = run.iter().map(|&i| (i / 64, i % 64)).unzip();
                let span = |v: &[u32]| v.iter().max().unwrap() - v.iter().min().unwrap() + 1;
                assert_eq!((span(&lats), span(&lons)), (side, side), "run of {size}: {run:?}");
            }
        }
    }

    #[test]
    fn any_count_gives_a_deterministic_permutation() {
        let mut state = 7u64;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [0, 1, 15, 16, 17, 255, 256, 257, 4095, 4097, 70_000] {
            let points: Vec<LatLon> = (0..n)
                .map(|k| {
                    // Every third point at (0, 0): many duplicates.
                    let (lat, lon) = (next() * 180.0 - 90.0, next() * 360.0 - 180.0);
                    if k % 3 == 2 {
                        (0.0, 0.0)
                    } else {
                        (lat, lon)
                    }
                })
                .map(|(lat, lon)| LatLon::new(lat, lon).unwrap())
                .collect();
            let order = packing_order(&points);
            assert_eq!(order.len(), n);
            assert!(is_permutation(&order), "{n} points");
            assert_eq!(order, packing_order(&points), "{n} points: not deterministic");
        }
    }
}
