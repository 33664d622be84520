//! The row order checkpoints build their packed R-trees in: a top-down packing in the manner
//! of OMT / Sort-Tile-Recursive, fitted to the tree's implicit layout.
//!
//! The layout fixes which rows each node holds (node `j` of level `l` covers rows
//! `j·16^(l+1) ..`), so an order is good when every such run of rows is spatially compact.
//! The order is built from the top: the rows are cut into runs of as many rows as each child
//! of the root covers by first cutting them into about √16 slabs along the longer side of
//! their extent (longitude scaled by the cosine of the middle latitude, against latitude) and
//! then each slab along the other side; each run is ordered the same way one level down, to
//! the leaves. On city-clustered data this gives nodes that overlap far less than runs along
//! a Hilbert curve ([`hilbert_order`](super::hilbert_order)): nearest-10 on 1,000,000
//! clustered customers took about a third less time, on uniform ones about a sixth
//! (BENCHMARKS.md, seventh part).
//!
//! Longitude is cut as a line, so the antimeridian is a border, as with the Hilbert curve;
//! but the slab borders fall at fixed row counts, and a slab may take rows from both sides
//! of it (or of any empty stretch), which gives its nodes long boxes: on points that all lie
//! within a degree of the antimeridian nearest-10 was measured 15–20 % slower than with the
//! Hilbert order.
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

/// Runs of at least this many rows have their slabs ordered on separate threads.
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
    order_runs(&mut items, run, true);
    items.into_iter().map(|item| item.row).collect()
}

/// Orders `items` (at most `16·run` of them, starting at a multiple of `16·run` in the whole
/// order) into compact runs of `run` rows, and each run likewise, down to the leaves.
fn order_runs(items: &mut [Item], run: usize, parallel: bool) {
    if items.len() <= NODE_SIZE || run < NODE_SIZE {
        return;
    }
    if items.len() <= run {
        // The last, partial run of its level: its own children are smaller.
        order_runs(items, run / NODE_SIZE, parallel);
        return;
    }
    let runs = items.len().div_ceil(run);
    let slabs = (1..=runs).find(|s| s * s >= runs).unwrap_or(runs);
    let slab_len = runs.div_ceil(slabs) * run;
    let by_lon = lon_is_longer(items);
    cut(items, slab_len, by_lon);
    let finish = |slab: &mut [Item]| {
        cut(slab, run, !by_lon);
        for chunk in slab.chunks_mut(run) {
            order_runs(chunk, run / NODE_SIZE, false);
        }
    };
    if parallel && items.len() >= PARALLEL_MIN {
        std::thread::scope(|scope| {
            for slab in items.chunks_mut(slab_len) {
                scope.spawn(|| finish(slab));
            }
        });
    } else {
        items.chunks_mut(slab_len).for_each(finish);
    }
}

/// Whether the items spread farther east–west (in degrees of longitude scaled by the cosine
/// of the middle latitude) than north–south.
fn lon_is_longer(items: &[Item]) -> bool {
    let (mut west, mut east, mut south, mut north) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for i in items {
        west = west.min(i.lon);
        east = east.max(i.lon);
        south = south.min(i.lat);
        north = north.max(i.lat);
    }
    let middle = f64::midpoint(f64::from(south), f64::from(north)).to_radians().cos();
    f64::from(east - west) * middle >= f64::from(north - south)
}

/// Reorders `items` so that each consecutive chunk of `len` holds the next `len` items by
/// longitude (`by_lon`) or latitude (chunks are not sorted inside).
fn cut(items: &mut [Item], len: usize, by_lon: bool) {
    if by_lon {
        cut_by(items, len, |i| i.lon);
    } else {
        cut_by(items, len, |i| i.lat);
    }
}

/// [`cut`] by `key`: repeated halving with `select_nth_unstable_by`.
fn cut_by(items: &mut [Item], len: usize, key: impl Fn(&Item) -> f32 + Copy) {
    if items.len() <= len {
        return;
    }
    let half = items.len().div_ceil(len) / 2 * len;
    items.select_nth_unstable_by(half, |a, b| key(a).total_cmp(&key(b)));
    let (low, high) = items.split_at_mut(half);
    cut_by(low, len, key);
    cut_by(high, len, key);
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
