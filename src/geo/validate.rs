//! Polygon validation: ring shape, simplicity (via a grid of edges) and hole nesting.
//!
//! Errors are plain reasons; [`super::Polygon`] wraps them in `Error::InvalidPolygon`.
//! Vertex numbers in messages are positions in the ring as given (0-based).

use std::collections::{HashMap, HashSet};

use super::grid::{bounds_of, edge_hit, orient, segments_touch, EdgeGrid, Hit, Pt, Seg};

type Reason = String;

fn ring_name(j: usize) -> String {
    if j == 0 {
        "ring 0 (the exterior)".to_string()
    } else {
        format!("ring {j} (hole {})", j - 1)
    }
}

fn fmt_pt(p: Pt) -> String {
    format!("[{}, {}]", p[0], p[1])
}

/// Checks every rule of [`super::Polygon`]; returns the cleaned rings (consecutive
/// duplicates removed).
pub(crate) fn validate_polygon(raw: Vec<Vec<Pt>>) -> Result<Vec<Vec<Pt>>, Reason> {
    let mut rings = Vec::with_capacity(raw.len());
    let mut origins = Vec::with_capacity(raw.len());
    for (j, ring) in raw.iter().enumerate() {
        let (clean, origin) = clean_ring(j, ring)?;
        rings.push(clean);
        origins.push(origin);
    }
    let contacts = check_crossings(&rings, &origins)?;
    check_nesting(&rings, &contacts)?;
    Ok(rings)
}

/// Coordinates, closure, length, duplicates, area and spikes of one ring.
fn clean_ring(j: usize, ring: &[Pt]) -> Result<(Vec<Pt>, Vec<usize>), Reason> {
    let name = ring_name(j);
    if ring.len() < 4 {
        return Err(format!(
            "{name} has {} positions; a ring needs at least 4 (3 corners, then the first repeated to close it)",
            ring.len()
        ));
    }
    for (k, p) in ring.iter().enumerate() {
        let [lon, lat] = *p;
        if !lon.is_finite() || !lat.is_finite() {
            return Err(format!("{name}, vertex {k}: {} is not a pair of finite numbers", fmt_pt(*p)));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(format!(
                "{name}, vertex {k}: longitude {lon} is outside [-180, 180]; positions are [lon, lat]"
            ));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(format!(
                "{name}, vertex {k}: latitude {lat} is outside [-90, 90]; positions are [lon, lat], check the order"
            ));
        }
    }
    let (first, last) = match (ring.first(), ring.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err(format!("{name} is empty")),
    };
    if first != last {
        return Err(format!(
            "{name} is not closed: its first position {} differs from its last {}; repeat the first position at the end",
            fmt_pt(first),
            fmt_pt(last)
        ));
    }
    let mut clean: Vec<Pt> = Vec::with_capacity(ring.len());
    let mut origin = Vec::with_capacity(ring.len());
    for (k, p) in ring.iter().enumerate() {
        if clean.last() != Some(p) {
            clean.push([p[0] + 0.0, p[1] + 0.0]);
            origin.push(k);
        }
    }
    if clean.len() < 4 {
        // The closing position repeats the first, unless it is all there is (a ring of one
        // point repeated said "only 0 distinct corners").
        let corners = clean.len().saturating_sub(1).max(1);
        return Err(format!(
            "{name} has only {corners} distinct corner{} once repeated consecutive positions are removed; a ring needs at least 3",
            if corners == 1 { "" } else { "s" }
        ));
    }
    let (o0, o1) = (clean[0], clean[1]);
    if clean.iter().all(|&p| orient(o0, o1, p) == 0.0) {
        return Err(format!("{name} has zero area (all its vertices lie on one line); remove or fix it"));
    }
    let n = clean.len() - 1; // edges; clean[n] == clean[0]
    for i in 0..n {
        let prev = clean[(i + n - 1) % n];
        let v = clean[i];
        let next = clean[i + 1];
        let dot = (prev[0] - v[0]) * (next[0] - v[0]) + (prev[1] - v[1]) * (next[1] - v[1]);
        if orient(prev, v, next) == 0.0 && dot > 0.0 {
            return Err(format!(
                "{name} touches itself at vertex {} {}: the edges on either side of it run back over each other (a spike); remove the spike",
                origin[i],
                fmt_pt(v)
            ));
        }
    }
    Ok((clean, origin))
}

/// Edge pairs sharing a grid cell beyond which a polygon is refused as too intricate to
/// validate: 200 million, or 500 per edge when that is more (a second or two of work per
/// 100 million here; a smooth ring of 1,000,000 vertices needs about 150 million, ordinary
/// shapes of 100,000 a few million).
fn max_edge_pairs(edges: usize) -> usize {
    edges.saturating_mul(500).max(200_000_000)
}

/// Where rings of a polygon touch: the points, as [`point_key`]s.
type Contacts = HashSet<[u64; 2]>;

/// A point as a set key: its coordinates' bits, with -0 as 0 (the same place).
fn point_key(p: Pt) -> [u64; 2] {
    [(p[0] + 0.0).to_bits(), (p[1] + 0.0).to_bits()]
}

/// No two edges of the polygon may meet, except adjacent edges of one ring at their shared
/// vertex (spikes were rejected by [`clean_ring`]), and edges of two rings at one point,
/// as OGC allows: a vertex of one ring on the other (at one of its vertices or inside an
/// edge), without the edges running along each other there, and one such point per pair of
/// rings (a second would cut the polygon's interior in two). Returns the points where rings
/// touch.
fn check_crossings(rings: &[Vec<Pt>], origins: &[Vec<usize>]) -> Result<Contacts, Reason> {
    let mut segs = Vec::new();
    let mut bounds = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for (j, ring) in rings.iter().enumerate() {
        for (k, w) in ring.windows(2).enumerate() {
            if let [a, b] = w {
                segs.push(Seg { a: *a, b: *b, group: j as u32, index: k as u32 });
                bounds = [bounds[0].min(a[0]), bounds[1].min(a[1]), bounds[2].max(a[0]), bounds[3].max(a[1])];
            }
        }
    }
    let e = segs.len();
    let grid = EdgeGrid::build(&segs, bounds, e, 16 * e + 1024, false);
    // Many long edges (a fine sawtooth, a comb) leave the grid a few cells holding most of
    // them, and the pairs to test grow as e²: refuse rather than run for minutes.
    let pairs: usize = (0..grid.ys.n)
        .flat_map(|r| (0..grid.xs.n).map(move |c| (c, r)))
        .map(|(c, r)| {
            let n = grid.cell(c, r).len();
            n * n.saturating_sub(1) / 2
        })
        .fold(0usize, usize::saturating_add);
    let limit = max_edge_pairs(e);
    if pairs > limit {
        return Err(format!(
            "its {e} edges are too long and too many to check for crossings in bounded time ({pairs} pairs of \
             edges would be compared, at most {limit}): simplify the shape or split it into smaller polygons"
        ));
    }
    let ranges: Vec<[usize; 4]> = segs.iter().map(|s| grid.range(s.bounds())).collect();
    // The point where each pair of rings (lower ring first) touches.
    let mut touching: HashMap<(u32, u32), Pt> = HashMap::new();
    for r in 0..grid.ys.n {
        for c in 0..grid.xs.n {
            let cell = grid.cell(c, r);
            for (x, &si) in cell.iter().enumerate() {
                for &ti in cell.get(x + 1..).unwrap_or(&[]) {
                    let (si, ti) = (si as usize, ti as usize);
                    let (Some(s), Some(t), Some(rs), Some(rt)) =
                        (segs.get(si), segs.get(ti), ranges.get(si), ranges.get(ti))
                    else {
                        continue;
                    };
                    // Test each pair once: in the first cell both boxes share.
                    if c != rs[0].max(rt[0]) || r != rs[1].max(rt[1]) {
                        continue;
                    }
                    if adjacent(s, t, rings) || !segments_touch(s.a, s.b, t.a, t.b) {
                        continue;
                    }
                    if s.group != t.group {
                        if let Some(p) = touch_point(s, t) {
                            let pair = (s.group.min(t.group), s.group.max(t.group));
                            match touching.get(&pair) {
                                None => {
                                    touching.insert(pair, p);
                                    continue;
                                }
                                Some(&q) if point_key(q) == point_key(p) => continue,
                                Some(&q) => {
                                    return Err(format!(
                                        "{} and {} meet at more than one point ({} and {}): along a stretch, or at \
                                         points that cut the polygon's interior apart; rings may touch at one point only",
                                        ring_name(pair.0 as usize),
                                        ring_name(pair.1 as usize),
                                        fmt_pt(q),
                                        fmt_pt(p)
                                    ))
                                }
                            }
                        }
                    }
                    return Err(crossing_reason(s, t, origins));
                }
            }
        }
    }
    Ok(touching.into_values().map(point_key).collect())
}

/// The one point where edges `s` and `t` (which meet) touch, when it is an end of one of
/// them and they do not run along each other: a vertex of one ring on the other. `None`
/// for edges that cross, or overlap along a stretch.
fn touch_point(s: &Seg, t: &Seg) -> Option<Pt> {
    if orient(s.a, s.b, t.a) == 0.0 && orient(s.a, s.b, t.b) == 0.0 {
        // On one line: one point only when they share an end and go on from it to opposite
        // sides (end to end); otherwise they overlap along a stretch.
        let key = |p: Pt| point_key(p);
        for (p, s_other) in [(s.a, s.b), (s.b, s.a)] {
            for (q, t_other) in [(t.a, t.b), (t.b, t.a)] {
                let away = |o: Pt| [o[0] - p[0], o[1] - p[1]];
                let (u, v) = (away(s_other), away(t_other));
                // Opposite directions on one line: a coordinate of opposite signs (signs, not a
                // product, which underflows for tiny edges).
                let opposite = |a: f64, b: f64| (a > 0.0 && b < 0.0) || (a < 0.0 && b > 0.0);
                if key(p) == key(q) && (opposite(u[0], v[0]) || opposite(u[1], v[1])) {
                    return Some(p);
                }
            }
        }
        return None;
    }
    // Not on one line: the edges share exactly one point, and it is this end if it is on
    // the other edge.
    let on = |p: Pt, e: &Seg| {
        orient(e.a, e.b, p) == 0.0
            && p[0] >= e.a[0].min(e.b[0])
            && p[0] <= e.a[0].max(e.b[0])
            && p[1] >= e.a[1].min(e.b[1])
            && p[1] <= e.a[1].max(e.b[1])
    };
    [t.a, t.b].into_iter().find(|&p| on(p, s)).or_else(|| [s.a, s.b].into_iter().find(|&p| on(p, t)))
}

fn adjacent(s: &Seg, t: &Seg, rings: &[Vec<Pt>]) -> bool {
    if s.group != t.group {
        return false;
    }
    let n = rings.get(s.group as usize).map_or(0, |r| r.len().saturating_sub(1)) as u32;
    let (lo, hi) = (s.index.min(t.index), s.index.max(t.index));
    hi - lo == 1 || (lo == 0 && hi + 1 == n)
}

fn crossing_reason(s: &Seg, t: &Seg, origins: &[Vec<usize>]) -> Reason {
    let vertex = |seg: &Seg| {
        let o = origins.get(seg.group as usize);
        let from = o.and_then(|o| o.get(seg.index as usize)).copied().unwrap_or(0);
        let to = o.and_then(|o| o.get(seg.index as usize + 1)).copied().unwrap_or(0);
        format!("the edge from vertex {from} {} to vertex {to} {}", fmt_pt(seg.a), fmt_pt(seg.b))
    };
    let (first, second) = if (s.group, s.index) <= (t.group, t.index) { (s, t) } else { (t, s) };
    if first.group == second.group {
        format!(
            "{} crosses or touches itself: {} meets {}; a ring must be simple (no bow-tie or figure-eight): split it into separate polygons",
            ring_name(first.group as usize),
            vertex(first),
            vertex(second)
        )
    } else {
        format!(
            "{} touches or crosses {}: {} of the first meets {} of the second; holes must lie inside the exterior, and rings may touch only at one point, a vertex of one of them, without crossing or running along each other",
            ring_name(first.group as usize),
            ring_name(second.group as usize),
            vertex(first),
            vertex(second)
        )
    }
}

/// Even-odd test of `p` against one ring; `None` when `p` is on it.
fn inside_ring(ring: &[Pt], p: Pt) -> Option<bool> {
    let mut inside = false;
    for w in ring.windows(2) {
        if let [a, b] = w {
            match edge_hit(p, *a, *b) {
                Hit::Boundary => return None,
                Hit::Cross => inside = !inside,
                Hit::Miss => {}
            }
        }
    }
    Some(inside)
}

/// With no rings crossing, one point of each hole that is on no other ring (a vertex that is
/// not one of the `contacts`, or else the middle of an edge) decides where the whole hole is.
fn check_nesting(rings: &[Vec<Pt>], contacts: &Contacts) -> Result<(), Reason> {
    let Some((exterior, holes)) = rings.split_first() else { return Ok(()) };
    let boxes: Vec<[f64; 4]> = holes.iter().map(|h| bounds_of(h.iter().copied())).collect();
    if holes.is_empty() {
        return Ok(());
    }
    // Strips of exterior edges, so each hole costs a few edges rather than the whole ring.
    let segs: Vec<Seg> = exterior
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some(Seg { a: *a, b: *b, group: 0, index: 0 }),
            _ => None,
        })
        .collect();
    let bounds = bounds_of(exterior.iter().copied());
    let strips = EdgeGrid::build(&segs, bounds, segs.len(), 8 * segs.len() + 4096, true);
    let inside_exterior = |p: Pt| {
        let mut inside = false;
        for &i in strips.cell(0, strips.ys.index(p[1])) {
            let Some(s) = segs.get(i as usize) else { continue };
            match edge_hit(p, s.a, s.b) {
                Hit::Boundary => return false,
                Hit::Cross => inside = !inside,
                Hit::Miss => {}
            }
        }
        inside
    };
    // A grid of the holes' boxes (each box as a segment along its diagonal: the grid files a
    // segment under every cell its box meets), so each hole's vertex 0 is tested only against
    // the holes whose box may hold it, not against every hole (that was O(holes²)).
    let box_segs: Vec<Seg> = boxes
        .iter()
        .enumerate()
        .map(|(g, b)| Seg { a: [b[0], b[1]], b: [b[2], b[3]], group: g as u32, index: 0 })
        .collect();
    let hole_bounds = bounds_of(boxes.iter().flat_map(|b| [[b[0], b[1]], [b[2], b[3]]]));
    let box_grid = EdgeGrid::build(&box_segs, hole_bounds, box_segs.len(), 8 * box_segs.len() + 4096, false);
    for (h, hole) in holes.iter().enumerate() {
        let middles = hole.windows(2).filter_map(|w| match w {
            [a, b] => Some([(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]),
            _ => None,
        });
        // (A point where another ring touches this one is on both: it decides nothing.)
        let Some(p) = hole.iter().copied().chain(middles).find(|&p| !contacts.contains(&point_key(p))) else {
            return Err(format!(
                "{} touches other rings at every vertex and at the middle of every edge: where it lies cannot be told; \
                 rings may touch at one point only",
                ring_name(h + 1)
            ));
        };
        if !inside_exterior(p) {
            return Err(format!(
                "{} lies outside the exterior ring (its point {} is not inside it); a hole must lie inside its polygon's exterior",
                ring_name(h + 1),
                fmt_pt(p)
            ));
        }
        let cell = box_grid.cell(box_grid.xs.index(p[0]), box_grid.ys.index(p[1]));
        let mut inside: Option<u32> = None;
        for &g in cell {
            let (Some(other), Some(b)) = (holes.get(g as usize), boxes.get(g as usize)) else { continue };
            if g as usize == h || p[0] < b[0] || p[0] > b[2] || p[1] < b[1] || p[1] > b[3] {
                continue;
            }
            // The lowest such hole is named, whatever the grid's order.
            if inside.is_none_or(|i| g < i) && inside_ring(other, p) != Some(false) {
                inside = Some(g);
            }
        }
        if let Some(g) = inside {
            return Err(format!(
                "{} lies inside {}; holes must not nest (make the inner ring a separate polygon)",
                ring_name(h + 1),
                ring_name(g as usize + 1)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<Pt> {
        vec![[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]]
    }

    #[test]
    fn vertex_numbers_refer_to_the_input() {
        // Duplicates at 1 and 2 shift the cleaned indices; messages must not.
        let ring = vec![[0.0, 0.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]];
        let msg = validate_polygon(vec![ring]).unwrap_err();
        assert!(msg.contains("vertex 4 [2, 0] to vertex 5 [0, 2]"), "{msg}");
    }

    #[test]
    fn clean_rings_are_returned() {
        let rings = validate_polygon(vec![square()]).unwrap();
        assert_eq!(rings, vec![square()]);
        let mut dup = square();
        dup.insert(2, [4.0, 0.0]);
        assert_eq!(validate_polygon(vec![dup]).unwrap(), vec![square()]);
    }

    #[test]
    fn triangle_and_adjacent_edges_are_fine() {
        assert!(validate_polygon(vec![vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]).is_ok());
        // Collinear consecutive edges going on (not back) are fine.
        let ring = vec![[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 0.0]];
        assert!(validate_polygon(vec![ring]).is_ok());
    }

    #[test]
    fn hole_checks() {
        let hole = vec![[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.0]];
        assert!(validate_polygon(vec![square(), hole.clone()]).is_ok());
        let msg = validate_polygon(vec![square(), hole.clone(), hole]).unwrap_err();
        assert!(msg.contains("touches or crosses"), "{msg}");
    }

    fn tri(a: Pt, b: Pt, c: Pt) -> Vec<Pt> {
        vec![a, b, c, a]
    }

    /// Rings may touch at one point, a vertex of one of them (OGC); not at two, not along a
    /// stretch, not by crossing, and a hole touching the exterior or another hole must
    /// still lie inside the one and outside the other.
    #[test]
    fn rings_may_touch_at_one_point() {
        let valid = |holes: Vec<Vec<Pt>>| {
            let mut rings = vec![square()];
            rings.extend(holes);
            validate_polygon(rings)
        };
        for holes in [
            vec![tri([0.0, 0.0], [1.0, 2.0], [2.0, 1.0])], // at the exterior's vertex
            vec![tri([2.0, 0.0], [3.0, 1.0], [1.0, 1.0])], // a vertex on its edge
            vec![tri([1.0, 1.0], [2.0, 1.0], [1.5, 2.0]), tri([2.0, 1.0], [3.0, 1.0], [2.5, 2.0])], // holes
            // A hole touching the exterior and two holes at its three vertices.
            vec![
                tri([2.0, 0.0], [2.5, 1.0], [1.5, 1.0]),
                tri([2.5, 1.0], [3.5, 1.0], [3.0, 2.0]),
                tri([1.5, 1.0], [0.5, 1.0], [1.0, 2.0]),
            ],
        ] {
            assert!(valid(holes.clone()).is_ok(), "{holes:?}: {:?}", valid(holes.clone()));
        }
        for (holes, why) in [
            (vec![tri([0.0, 0.0], [4.0, 0.0], [2.0, 1.0])], "touches or crosses"), // along an edge
            (vec![tri([0.0, 1.0], [0.0, 3.0], [1.0, 2.0])], "touches or crosses"), // along an edge
            (vec![tri([2.0, 0.0], [3.0, 1.0], [2.0, 4.0])], "meet at more than one point"),
            (
                vec![tri([1.0, 1.0], [2.0, 1.0], [1.5, 2.0]), tri([1.0, 1.0], [2.0, 1.0], [1.5, 0.5])],
                "touches or crosses",
            ),
            (
                vec![tri([1.0, 1.0], [2.0, 1.0], [1.5, 2.0]), tri([2.0, 1.0], [3.0, 2.0], [1.5, 1.5])],
                "touches or crosses",
            ),
            (vec![tri([4.0, 4.0], [5.0, 4.0], [5.0, 5.0])], "outside the exterior"),
            (vec![tri([4.0, 2.0], [5.0, 1.0], [5.0, 3.0])], "outside the exterior"),
            (
                vec![tri([1.0, 1.0], [3.0, 1.0], [2.0, 3.0]), tri([1.0, 1.0], [2.0, 1.3], [1.6, 1.8])],
                "lies inside",
            ),
            (vec![tri([3.0, 3.0], [5.0, 2.0], [5.0, 5.0])], "touches or crosses"), // crosses
        ] {
            let msg = valid(holes.clone()).expect_err(&format!("{holes:?} accepted"));
            assert!(msg.contains(why), "{holes:?}: {msg}");
        }
    }
}
