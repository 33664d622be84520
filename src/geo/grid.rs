//! Planar predicates on `[lon, lat]` segments, and a uniform grid of segments.
//!
//! Every point-in-polygon answer in geocrm goes through [`edge_hit`], so the plain
//! polygon test and the prepared (gridded) test give bit-for-bit the same answers.
//! [`Axis::index`] is monotone in its argument, which is what lets the grid prove that a
//! segment missing from a cell cannot touch any point that maps to that cell.

/// A planar point `[x, y]` = `[lon, lat]`.
pub(crate) type Pt = [f64; 2];

/// The smallest `[x0, y0, x1, y1]` holding every point (`[∞, ∞, −∞, −∞]` when there is none).
pub(crate) fn bounds_of(points: impl IntoIterator<Item = Pt>) -> [f64; 4] {
    points.into_iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, p| {
        [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
    })
}

/// Twice the signed area of triangle `a, b, p`: positive when `p` is left of `a → b`, zero
/// exactly when the three points are collinear. The sign is exact (Shewchuk's adaptive
/// predicate, `robust::orient2d`): the plain product formula can round a point lying
/// exactly on an edge to a tiny non-zero value, and so report it outside; the magnitude is
/// at least as accurate as that formula's.
pub(crate) fn orient(a: Pt, b: Pt, p: Pt) -> f64 {
    let c = |q: Pt| robust::Coord { x: q[0], y: q[1] };
    robust::orient2d(c(a), c(b), c(p))
}

/// How a point relates to one polygon edge for the even-odd test with a ray to `+x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// The edge neither holds the point nor crosses the ray.
    Miss,
    /// The ray from the point crosses the edge (half-open in `y`).
    Cross,
    /// The point is on the edge (orientation exactly zero, inside the edge's box).
    Boundary,
}

/// The one edge predicate. Points outside the edge's bounding box are decided by
/// comparisons alone; only points inside it compute an orientation.
pub(crate) fn edge_hit(p: Pt, a: Pt, b: Pt) -> Hit {
    let (ymin, ymax) = if a[1] <= b[1] { (a[1], b[1]) } else { (b[1], a[1]) };
    if p[1] < ymin || p[1] > ymax {
        return Hit::Miss;
    }
    let (xmin, xmax) = if a[0] <= b[0] { (a[0], b[0]) } else { (b[0], a[0]) };
    if p[0] > xmax {
        return Hit::Miss;
    }
    let straddles = (a[1] > p[1]) != (b[1] > p[1]);
    if p[0] < xmin {
        return if straddles { Hit::Cross } else { Hit::Miss };
    }
    let o = orient(a, b, p);
    if o == 0.0 {
        Hit::Boundary
    } else if straddles && ((b[1] > a[1]) == (o > 0.0)) {
        Hit::Cross
    } else {
        Hit::Miss
    }
}

/// Whether `p` lies on segment `a b` (orientation exactly zero, inside its box).
pub(crate) fn on_segment(p: Pt, a: Pt, b: Pt) -> bool {
    p[0] >= a[0].min(b[0])
        && p[0] <= a[0].max(b[0])
        && p[1] >= a[1].min(b[1])
        && p[1] <= a[1].max(b[1])
        && orient(a, b, p) == 0.0
}

fn opposite(u: f64, v: f64) -> bool {
    (u > 0.0 && v < 0.0) || (u < 0.0 && v > 0.0)
}

/// Whether segments `a b` and `c d` share at least one point.
pub(crate) fn segments_touch(a: Pt, b: Pt, c: Pt, d: Pt) -> bool {
    if a[0].max(b[0]) < c[0].min(d[0])
        || c[0].max(d[0]) < a[0].min(b[0])
        || a[1].max(b[1]) < c[1].min(d[1])
        || c[1].max(d[1]) < a[1].min(b[1])
    {
        return false;
    }
    if opposite(orient(a, b, c), orient(a, b, d)) && opposite(orient(c, d, a), orient(c, d, b)) {
        return true;
    }
    on_segment(c, a, b) || on_segment(d, a, b) || on_segment(a, c, d) || on_segment(b, c, d)
}

/// Conservative: `false` only when segment `a b` certainly misses the closed rectangle
/// `[x0, y0, x1, y1]` — even after floating-point rounding of every orientation computed
/// for points of the rectangle. May say `true` for a segment that passes very close.
pub(crate) fn segment_may_touch_rect(a: Pt, b: Pt, r: [f64; 4]) -> bool {
    if a[0].max(b[0]) < r[0] || a[0].min(b[0]) > r[2] || a[1].max(b[1]) < r[1] || a[1].min(b[1]) > r[3] {
        return false;
    }
    let corners = [[r[0], r[1]], [r[2], r[1]], [r[0], r[3]], [r[2], r[3]]];
    let (dx, dy) = ((b[0] - a[0]).abs(), (b[1] - a[1]).abs());
    let far_x = (r[0] - a[0]).abs().max((r[2] - a[0]).abs());
    let far_y = (r[1] - a[1]).abs().max((r[3] - a[1]).abs());
    // A generous bound on the rounding error of `orient` anywhere in the rectangle.
    let err = 1e-14 * (dx * far_y + dy * far_x);
    let o = corners.map(|c| orient(a, b, c));
    let all_left = o.iter().all(|&v| v > err);
    let all_right = o.iter().all(|&v| v < -err);
    !(all_left || all_right)
}

/// A segment with two tags: `group` (ring or polygon number) and `index` (vertex number).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    pub a: Pt,
    pub b: Pt,
    pub group: u32,
    pub index: u32,
}

impl Seg {
    pub fn bounds(&self) -> [f64; 4] {
        [
            self.a[0].min(self.b[0]),
            self.a[1].min(self.b[1]),
            self.a[0].max(self.b[0]),
            self.a[1].max(self.b[1]),
        ]
    }
}

/// `n` equal slots over `[lo, hi]`; values outside map to the first or last slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    origin: f64,
    step: f64,
    inv: f64,
    pub n: usize,
}

impl Axis {
    pub fn new(lo: f64, hi: f64, n: usize) -> Axis {
        let n = n.max(1);
        let span = hi - lo;
        let (step, inv) = if span > 0.0 { (span / n as f64, n as f64 / span) } else { (0.0, 0.0) };
        Axis { origin: lo, step, inv, n }
    }

    /// Slot of `v`; monotone non-decreasing in `v`.
    pub fn index(&self, v: f64) -> usize {
        let t = ((v - self.origin) * self.inv).floor();
        let last = self.n - 1;
        if t >= last as f64 {
            last
        } else if t > 0.0 {
            t as usize
        } else {
            0
        }
    }

    pub fn centre(&self, i: usize) -> f64 {
        self.origin + (i as f64 + 0.5) * self.step
    }
}

/// For each cell, the numbers of the segments whose bounding box meets it (by
/// [`Axis::index`] of the box's corners), stored compactly.
#[derive(Debug, Clone)]
pub(crate) struct EdgeGrid {
    pub xs: Axis,
    pub ys: Axis,
    offsets: Vec<usize>,
    items: Vec<u32>,
}

/// Longest side of any grid.
const MAX_SIDE: usize = 2048;

impl EdgeGrid {
    /// A grid over `bounds` (`[x0, y0, x1, y1]`) with about `target` cells shaped like the
    /// bounds (`nx = 1` when `strips`), shrunk until the segment-cell entries fit `budget`.
    pub fn build(segs: &[Seg], bounds: [f64; 4], target: usize, budget: usize, strips: bool) -> EdgeGrid {
        let (w, h) = (bounds[2] - bounds[0], bounds[3] - bounds[1]);
        let target = target.max(1) as f64;
        let (mut nx, mut ny) = if strips {
            (1, target as usize)
        } else if w > 0.0 && h > 0.0 {
            let nx = (target * w / h).sqrt().round().max(1.0);
            (nx as usize, (target / nx).round().max(1.0) as usize)
        } else {
            (1, 1)
        };
        nx = nx.clamp(1, MAX_SIDE);
        ny = ny.clamp(1, if strips { 1 << 20 } else { MAX_SIDE });
        loop {
            let grid = Self::axes(bounds, nx, ny);
            if nx * ny == 1 || grid.entries(segs, budget) <= budget {
                return grid.fill(segs);
            }
            nx = (nx / 2).max(1);
            ny = (ny / 2).max(1);
        }
    }

    fn axes(bounds: [f64; 4], nx: usize, ny: usize) -> EdgeGrid {
        EdgeGrid {
            xs: Axis::new(bounds[0], bounds[2], nx),
            ys: Axis::new(bounds[1], bounds[3], ny),
            offsets: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Cell range `[c0, r0, c1, r1]` of a box `[x0, y0, x1, y1]`.
    pub fn range(&self, b: [f64; 4]) -> [usize; 4] {
        [self.xs.index(b[0]), self.ys.index(b[1]), self.xs.index(b[2]), self.ys.index(b[3])]
    }

    fn entries(&self, segs: &[Seg], stop_above: usize) -> usize {
        let mut total = 0usize;
        for s in segs {
            let [c0, r0, c1, r1] = self.range(s.bounds());
            total = total.saturating_add((c1 - c0 + 1) * (r1 - r0 + 1));
            if total > stop_above {
                break;
            }
        }
        total
    }

    fn fill(mut self, segs: &[Seg]) -> EdgeGrid {
        let nx = self.xs.n;
        let mut counts = vec![0usize; nx * self.ys.n + 1];
        let ranges: Vec<[usize; 4]> = segs.iter().map(|s| self.range(s.bounds())).collect();
        for &[c0, r0, c1, r1] in &ranges {
            for r in r0..=r1 {
                for c in c0..=c1 {
                    counts[r * nx + c + 1] += 1;
                }
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut next = counts.clone();
        let mut items = vec![0u32; counts.last().copied().unwrap_or(0)];
        for (k, &[c0, r0, c1, r1]) in ranges.iter().enumerate() {
            for r in r0..=r1 {
                for c in c0..=c1 {
                    let slot = &mut next[r * nx + c];
                    items[*slot] = k as u32;
                    *slot += 1;
                }
            }
        }
        self.offsets = counts;
        self.items = items;
        self
    }

    /// The segment numbers stored in cell `(c, r)`.
    pub fn cell(&self, c: usize, r: usize) -> &[u32] {
        let k = r * self.xs.n + c;
        match (self.offsets.get(k), self.offsets.get(k + 1)) {
            (Some(&lo), Some(&hi)) => self.items.get(lo..hi).unwrap_or(&[]),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_hit_cases() {
        let (a, b) = ([0.0, 0.0], [2.0, 2.0]);
        assert_eq!(edge_hit([1.0, 1.0], a, b), Hit::Boundary);
        assert_eq!(edge_hit([0.0, 0.0], a, b), Hit::Boundary);
        assert_eq!(edge_hit([0.5, 1.0], a, b), Hit::Cross);
        assert_eq!(edge_hit([-5.0, 1.0], a, b), Hit::Cross);
        assert_eq!(edge_hit([1.5, 1.0], a, b), Hit::Miss);
        assert_eq!(edge_hit([-5.0, 2.0], a, b), Hit::Miss); // half-open at the top
        assert_eq!(edge_hit([-5.0, 0.0], a, b), Hit::Cross);
        assert_eq!(edge_hit([1.0, 0.0], [0.0, 0.0], [2.0, 0.0]), Hit::Boundary);
    }

    #[test]
    fn touch_and_rect() {
        assert!(segments_touch([0.0, 0.0], [2.0, 2.0], [0.0, 2.0], [2.0, 0.0]));
        assert!(segments_touch([0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 5.0]));
        assert!(!segments_touch([0.0, 0.0], [2.0, 0.0], [1.0, 0.1], [1.0, 5.0]));
        assert!(segment_may_touch_rect([0.0, 0.0], [2.0, 2.0], [0.9, 0.9, 1.1, 1.1]));
        assert!(!segment_may_touch_rect([0.0, 0.0], [2.0, 2.0], [1.0, 0.0, 2.0, 0.5]));
    }

    #[test]
    fn axis_is_monotone_and_clamped() {
        let ax = Axis::new(-10.0, 10.0, 7);
        assert_eq!(ax.index(-100.0), 0);
        assert_eq!(ax.index(100.0), 6);
        let mut last = 0;
        for i in 0..=20_000 {
            let v = -10.0 + i as f64 * 0.001;
            let k = ax.index(v);
            assert!(k >= last);
            last = k;
        }
    }
}
