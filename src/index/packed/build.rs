//! Building a packed R-tree from points, and the Hilbert order for standalone users.

use super::format::{Layout, AABB_LEN, HEADER_LEN, LONLAT_LEN, NODE_SIZE};
use super::PackedRTree;
use crate::error::{Error, Result};
use crate::geo::LatLon;

/// The largest f32 not above `x`.
fn down(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x {
        f.next_down()
    } else {
        f
    }
}

/// The smallest f32 not below `x`.
fn up(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        f.next_up()
    } else {
        f
    }
}

/// A node's two boxes: unit-vector AABB (min xyz, max xyz) and lon/lat (west, south, east,
/// north), already rounded outward to f32.
#[derive(Clone, Copy)]
struct Boxes {
    aabb: [f32; 6],
    lonlat: [f32; 4],
}

impl Boxes {
    const EMPTY: Boxes = Boxes {
        aabb: [
            f32::INFINITY,
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ],
        lonlat: [f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY],
    };

    fn union(self, o: &Boxes) -> Boxes {
        let [a, b, c, d, e, f] = self.aabb;
        let [oa, ob, oc, od, oe, of] = o.aabb;
        let [w, s, e2, n] = self.lonlat;
        let [ow, os, oe2, on] = o.lonlat;
        Boxes {
            aabb: [a.min(oa), b.min(ob), c.min(oc), d.max(od), e.max(oe), f.max(of)],
            lonlat: [w.min(ow), s.min(os), e2.max(oe2), n.max(on)],
        }
    }
}

/// The boxes of one leaf, from exact f64 values; also appends the rows' f32 unit vectors.
fn leaf(points: &[LatLon], units: &mut Vec<u8>) -> Boxes {
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    let (mut west, mut south, mut east, mut north) =
        (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for p in points {
        let u = p.to_unit_vector();
        for ((l, h), c) in lo.iter_mut().zip(hi.iter_mut()).zip(u) {
            *l = l.min(c);
            *h = h.max(c);
            units.extend_from_slice(&(c as f32).to_le_bytes());
        }
        west = west.min(p.lon());
        east = east.max(p.lon());
        south = south.min(p.lat());
        north = north.max(p.lat());
    }
    let ([x0, y0, z0], [x1, y1, z1]) = (lo, hi);
    Boxes {
        aabb: [down(x0), down(y0), down(z0), up(x1), up(y1), up(z1)],
        lonlat: [down(west), down(south), up(east), up(north)],
    }
}

impl PackedRTree {
    /// Builds the tree over `points`, row `i` being `points[i]`.
    ///
    /// # Panics
    /// With more than `u32::MAX` points (use [`try_build`](Self::try_build) to get an error).
    #[must_use]
    pub fn build(points: &[LatLon]) -> PackedRTree {
        match Self::try_build(points) {
            Ok(tree) => tree,
            Err(e) => panic!("{e}"),
        }
    }

    /// Builds the tree over `points`, row `i` being `points[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] with more than `u32::MAX` points.
    pub fn try_build(points: &[LatLon]) -> Result<PackedRTree> {
        let too_many = || Error::invalid_argument("points", "a packed R-tree holds at most u32::MAX rows");
        let layout = Layout::for_rows(points.len() as u64).ok_or_else(too_many)?;
        let mut bytes = Vec::with_capacity(layout.file_len);
        bytes.resize(HEADER_LEN, 0);
        for p in points {
            bytes.extend_from_slice(&p.lat().to_le_bytes());
            bytes.extend_from_slice(&p.lon().to_le_bytes());
        }
        let mut boxes = Vec::with_capacity(layout.nodes);
        for group in points.chunks(NODE_SIZE) {
            boxes.push(leaf(group, &mut bytes));
        }
        bytes.resize(layout.aabb_at, 0);
        for &(below_first, below_count) in layout.level.iter().take(layout.levels.saturating_sub(1)) {
            let below = boxes.get(below_first..below_first + below_count).unwrap_or_default().to_vec();
            boxes.extend(below.chunks(NODE_SIZE).map(|c| c.iter().fold(Boxes::EMPTY, |acc, b| acc.union(b))));
        }
        debug_assert_eq!(boxes.len(), layout.nodes);
        bytes.reserve(boxes.len() * (AABB_LEN + LONLAT_LEN));
        for b in &boxes {
            b.aabb.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        }
        for b in &boxes {
            b.lonlat.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        }
        debug_assert_eq!(bytes.len(), layout.file_len);
        layout
            .write_header(&mut bytes)
            .ok_or_else(|| Error::invalid_argument("points", "internal layout mismatch"))?;
        Ok(PackedRTree { bytes, layout })
    }
}

/// Position of `(x, y)` along a Hilbert curve filling a 2^16 × 2^16 grid.
fn hilbert_d(mut x: u32, mut y: u32) -> u32 {
    let mut d: u32 = 0;
    let mut s: u32 = 1 << 15;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = 0xFFFF - x;
                y = 0xFFFF - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s >>= 1;
    }
    d
}

/// A permutation that orders `points` along a Hilbert curve on (longitude, latitude): build
/// the tree over `order.iter().map(|&i| points[i as usize])` and row `r` is then point
/// `order[r]`. Ties keep input order. Cheaper to compute than
/// [`packing_order`](super::packing_order) (what the database's checkpoints use), with looser
/// nodes on clustered data; it never puts the two sides of the antimeridian in one node below
/// the top levels.
///
/// # Panics
/// With more than `u32::MAX` points.
#[must_use]
pub fn hilbert_order(points: &[LatLon]) -> Vec<u32> {
    assert!(points.len() <= u32::MAX as usize, "at most u32::MAX points");
    let scale =
        |v: f64, min: f64, span: f64| (((v - min) / span) * 65535.0).round().clamp(0.0, 65535.0) as u32;
    let mut keys: Vec<u64> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = hilbert_d(scale(p.lon(), -180.0, 360.0), scale(p.lat(), -90.0, 180.0));
            (u64::from(d) << 32) | i as u64
        })
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| k as u32).collect()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn outward_rounding_bounds() {
        for x in [0.1f64, -0.1, 1.0 / 3.0, -2.0 / 3.0, 0.0, 1.0, -1.0, 179.999_999_9] {
            assert!(f64::from(down(x)) <= x && f64::from(up(x)) >= x, "{x}");
            assert!(
                f64::from(up(x)) - f64::from(down(x)) <= 2.0 * f64::from(f32::EPSILON) * x.abs().max(1e-30)
            );
        }
    }

    #[test]
    fn hilbert_is_a_permutation_along_the_curve() {
        let mut seen = std::collections::HashSet::new();
        for x in 0..64u32 {
            for y in 0..64u32 {
                assert!(seen.insert(hilbert_d(x << 10, y << 10)));
            }
        }
        // The 8 × 8 corner is the curve's first 64 cells, each a grid neighbour of the next.
        let mut cells: Vec<(u32, i64, i64)> =
            (0..64).map(|i| (hilbert_d(i % 8, i / 8), i64::from(i % 8), i64::from(i / 8))).collect();
        cells.sort_unstable();
        for (i, w) in cells.windows(2).enumerate() {
            assert_eq!(w[0].0, i as u32);
            assert_eq!((w[0].1 - w[1].1).abs() + (w[0].2 - w[1].2).abs(), 1);
        }
        let pts: Vec<LatLon> =
            (0..100).map(|i| LatLon::new(f64::from(i % 10), f64::from(i / 10)).unwrap()).collect();
        let mut order = hilbert_order(&pts);
        order.sort_unstable();
        assert_eq!(order, (0..100).collect::<Vec<u32>>());
    }
}
