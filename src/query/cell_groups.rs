//! Aggregation by H3 cell over every row: the checkpoint's rows are walked in its cell order
//! (the H3 cell index), where the rows of one ancestor cell at any resolution are
//! consecutive, so groups close one after another in key order with no hash map and no sort;
//! the walk is cut into one contiguous part per core. The in-memory table's rows go through a
//! [`Collector`] and the two results are merged.

use std::ops::Range;

use h3o::Resolution;

use super::aggregate::{CellRuns, Collector, Groups};
use super::filter::CompiledFilter;
use super::spatial::{row_matches, BaseFilter};
use crate::index::{BaseRows, RowRef, TableView};

/// Cell-order positions below which the walk stays on one thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Groups by H3 cell at `res` of every live row of `view` matching `filter`, with statistics
/// of number fields `fields`.
pub(crate) fn all_by_cell(
    view: TableView<'_>,
    res: Resolution,
    filter: &CompiledFilter,
    fields: &[usize],
) -> Groups {
    let base = view.base.map(|b| base_by_cell(b, res, filter, fields, PARALLEL_MIN));
    let mut tail = Collector::new(Some(res), None, fields.to_vec());
    for row in view.tail.rows() {
        let row = RowRef::Tail(row);
        if row_matches(filter, row) {
            tail.add(row);
        }
    }
    let tail = tail.finish(|_| None);
    match base {
        Some(base) => Groups::merge_cells(base, tail),
        None => tail,
    }
}

/// The checkpoint's part of [`all_by_cell`]: its cell order cut into one contiguous part per
/// core (when it has at least `parallel_min` positions); see [`base_by_cell_in_parts`].
pub(crate) fn base_by_cell(
    base: &BaseRows,
    res: Resolution,
    filter: &CompiledFilter,
    fields: &[usize],
    parallel_min: usize,
) -> Groups {
    let rows = base.checkpoint.len();
    let parts = if rows >= parallel_min.max(2) { crate::parallel::threads() } else { 1 };
    base_by_cell_in_parts(base, res, filter, fields, parts)
}

/// [`base_by_cell`] in `parts` contiguous parts of the cell order, each cut moved to the
/// nearer boundary of the group it falls in, each part's groups in key order, joined. A group
/// is summed on one thread in cell order, so the sums do not depend on the number of parts
/// (cores); a group larger than a part leaves one thread more of the work.
pub(crate) fn base_by_cell_in_parts(
    base: &BaseRows,
    res: Resolution,
    filter: &CompiledFilter,
    fields: &[usize],
    parts: usize,
) -> Groups {
    let c = &base.checkpoint;
    let (order, _) = c.cell_order().as_chunks::<4>();
    let cells = c.cell_column();
    let columns: Vec<&[u8]> =
        (0..c.meta().schema.number_fields().len()).map(|f| c.number_column(f)).collect();
    let read =
        |column: &[u8], at: usize| crate::codec::read8(column, at).map_or(u64::MAX, u64::from_le_bytes);
    let plain = filter.is_all() && base.hidden.is_empty();
    let ancestor_at = |w: &[u8; 4]| {
        let row = u32::from_le_bytes(*w) as usize;
        crate::query::aggregate::ancestor(read(cells, row * 8), res.into())
    };
    let ranges = group_aligned_parts(order, parts.max(1), ancestor_at);
    let parts = crate::parallel::map(&ranges, 2, |range| {
        let part = order.get(range.clone()).unwrap_or_default();
        let mut runs = CellRuns::new(res, fields, part.len());
        let base_filter = BaseFilter::new(filter, base);
        for &word in part {
            let row = u32::from_le_bytes(word);
            let keep = plain || base_filter.matches(row);
            if !keep {
                continue;
            }
            let at = row as usize * 8;
            runs.add(read(cells, at), |f| {
                f64::from_bits(columns.get(f).map_or(u64::MAX, |column| read(column, at)))
            });
        }
        runs.finish()
    });
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_else(|| CellRuns::new(res, fields, 0).finish());
    for part in parts {
        out.append_cells(part);
    }
    out
}

/// `items` (sorted by `key`) cut into about `parts` equal ranges, each cut moved to the nearer
/// end of the run of equal keys it falls in; ranges that would be empty are dropped (at least
/// one range is returned). On unsorted input the cuts only land elsewhere.
fn group_aligned_parts<T>(items: &[T], parts: usize, key: impl Fn(&T) -> u64) -> Vec<Range<usize>> {
    let len = items.len();
    let mut bounds = vec![0usize];
    for p in 1..parts {
        let prev = bounds.last().copied().unwrap_or(0);
        // p · len / parts without overflow.
        let at = (len / parts * p + len % parts * p / parts).max(prev);
        let Some(k) = items.get(at).map(&key) else { continue };
        let start = prev + items.get(prev..at).unwrap_or_default().partition_point(|x| key(x) < k);
        let end = at + items.get(at..).unwrap_or_default().partition_point(|x| key(x) == k);
        let cut = if at - start <= end - at { start } else { end };
        if cut > prev && cut < len {
            bounds.push(cut);
        }
    }
    bounds.push(len);
    bounds.windows(2).filter_map(|w| Some(*w.first()?..*w.get(1)?)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use h3o::LatLng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::geo::LatLon;
    use crate::index::checkpoint::{self, Checkpoint, CheckpointMeta, CheckpointRow, Verify};
    use crate::index::{HiddenRows, OpPointer};
    use crate::model::Schema;
    use crate::query::Filter;

    struct NoCategories;
    impl crate::query::CategoryCodes for NoCategories {
        fn code(&self, _: usize, _: &str) -> Option<u32> {
            None
        }
    }

    /// The walk over the cell order — cut into parts anywhere (a group split between
    /// parts), with hidden rows and a filter — equals the hash collector over the same rows
    /// in row order, group for group (sums to rounding: the collector adds in row order), and
    /// every split gives the same sums as one part, bit for bit (no group is cut).
    #[test]
    fn cell_order_walk_equals_the_collector_at_every_split() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 4_000;
        let points: Vec<(f64, f64, u64)> = (0..n)
            .map(|i| {
                // A third spread out, the rest in a small and a very small area around one
                // point (long runs, shared groups; at coarse resolutions one group holds two
                // thirds of the rows, so a split into halves would cut it).
                let (lat, lon) = match i % 3 {
                    0 => (rng.gen_range(-89.9..89.9), rng.gen_range(-180.0..180.0)),
                    1 => (-33.9 + rng.gen_range(-0.2..0.2), 151.2 + rng.gen_range(-0.2..0.2)),
                    _ => (-33.9 + rng.gen_range(-0.01..0.01), 151.2 + rng.gen_range(-0.01..0.01)),
                };
                (lat, lon, u64::from(LatLng::new(lat, lon).unwrap().to_cell(Resolution::Fifteen)))
            })
            .collect();
        let numbers: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                // Magnitudes from 1e-6 to 1e6: sums depend on the order of the additions.
                let a = rng.gen_range(-10.0..100.0) * 10f64.powi(rng.gen_range(-6..6));
                [if i % 7 == 0 { f64::NAN } else { a }, f64::from(i as u32)]
            })
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
        let schema = Schema::new().number("a").number("b");
        let meta = CheckpointMeta { collection: "c".into(), schema: schema.clone(), dictionary: Vec::new() };
        let rows: Vec<CheckpointRow<'_>> = (0..n)
            .map(|i| CheckpointRow {
                id: &ids[i],
                location: LatLon::new(points[i].0, points[i].1).unwrap(),
                cell: points[i].2,
                pointer: OpPointer { segment: 1, offset: 48, index: 0 },
                numbers: &numbers[i],
                categories: &[],
            })
            .collect();
        let bytes = checkpoint::build(10, &meta, rows).unwrap();
        let c = Checkpoint::open(Arc::new(bytes), std::path::Path::new("t.ckpt"), Verify::Checksums).unwrap();
        let mut hidden = HiddenRows::default();
        for row in (0..n as u32).filter(|r| r % 5 == 1) {
            hidden.hide(row, n);
        }
        let base = BaseRows { checkpoint: Arc::new(c), hidden };
        for filter in [Filter::All, Filter::at_least("a", 40.0)] {
            let filter = filter.compile(&schema, &NoCategories).unwrap();
            for res in [0u8, 4, 9, 15] {
                let res = Resolution::try_from(res).unwrap();
                let mut want = Collector::new(Some(res), None, vec![1, 0]);
                for row in 0..n as u32 {
                    let r = RowRef::Base(&base.checkpoint, row);
                    if base.visible(row) && row_matches(&filter, r) {
                        want.add(r);
                    }
                }
                let want = want.finish(|_| None);
                assert!(!want.is_empty());
                let alone = base_by_cell_in_parts(&base, res, &filter, &[1, 0], 1);
                // No group is cut between parts: the same sums, bit for bit, as one part (they
                // differed with the core count before), whatever the number of parts.
                for parts in [2, 3, 8, 5000] {
                    let got = base_by_cell_in_parts(&base, res, &filter, &[1, 0], parts);
                    assert_eq!(got.len(), alone.len(), "res {res}, {parts} parts");
                    for (g, a) in got.iter().zip(alone.iter()) {
                        let bits = |s: &[crate::query::FieldStats]| {
                            s.iter().map(|f| f.sum.to_bits()).collect::<Vec<_>>()
                        };
                        assert_eq!((&g.key, g.count), (&a.key, a.count), "res {res}, {parts} parts");
                        assert_eq!(bits(g.fields), bits(a.fields), "res {res}, {parts} parts");
                    }
                }
                for parallel_min in [1, 2, 999, usize::MAX] {
                    let got = base_by_cell(&base, res, &filter, &[1, 0], parallel_min);
                    assert_eq!(got.len(), want.len(), "res {res}, parts of {parallel_min}");
                    for (g, w) in got.iter().zip(want.iter()) {
                        assert_eq!((&g.key, g.count), (&w.key, w.count));
                        for (a, b) in g.fields.iter().zip(w.fields) {
                            assert_eq!((a.count, a.min(), a.max()), (b.count, b.min(), b.max()));
                            assert!((a.sum - b.sum).abs() <= 1e-9 * b.sum.abs().max(1.0));
                        }
                    }
                }
            }
        }
    }

    /// Cuts go to the nearer end of the run they fall in, never inside one; a run holding
    /// the middle no longer leaves one part (49 % / 51 % used to give one part on two cores).
    #[test]
    fn parts_are_cut_at_the_nearer_run_boundary() {
        let runs = |a: usize, b: usize| -> Vec<u64> {
            std::iter::repeat_n(1u64, a).chain(std::iter::repeat_n(2u64, b)).collect()
        };
        assert_eq!(group_aligned_parts(&runs(49, 51), 2, |&k| k), [0..49, 49..100]);
        assert_eq!(group_aligned_parts(&runs(51, 49), 2, |&k| k), [0..51, 51..100]);
        assert_eq!(group_aligned_parts(&[7u64; 10], 4, |&k| k), vec![0..10]);
        assert_eq!(group_aligned_parts::<u64>(&[], 3, |&k| k), vec![0..0]);
        // Unsorted input: no panic, the ranges cover everything in order.
        let mixed: Vec<u64> = (0..200u64).map(|i| (i * 7919) % 13).collect();
        for parts in 1..20 {
            let r = group_aligned_parts(&mixed, parts, |&k| k);
            assert_eq!((r.first().map(|r| r.start), r.last().map(|r| r.end)), (Some(0), Some(200)));
            assert!(r.windows(2).all(|w| w[0].end == w[1].start && w[0].start < w[0].end));
        }
        // Sorted keys with many runs: every cut at a run boundary.
        let sorted: Vec<u64> = (0..1000u64).map(|i| i / 37).collect();
        for parts in 1..30 {
            for r in group_aligned_parts(&sorted, parts, |&k| k) {
                assert!(r.start == 0 || sorted[r.start - 1] != sorted[r.start], "{parts}: {r:?}");
            }
        }
    }
}
