//! Aggregations: count, sum, avg, min, max of number attributes, grouped by H3 cell or by a
//! category, collected in one pass over the rows in scope.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use h3o::{CellIndex, Resolution};
use serde::Serialize;

use crate::index::RowRef;

/// How to group rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// One group for everything.
    Nothing,
    /// By H3 cell at a resolution 0–15: the resolution-`r` ancestor of the record's
    /// resolution-15 cell. Groups therefore nest exactly (a cell's count is the sum of its
    /// children's counts), which a point's direct resolution-`r` cell does not guarantee near
    /// cell edges, since H3 children do not exactly tile their parent.
    H3(u8),
    /// By the value of a category attribute.
    Category(String),
}

/// The key of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    /// The single group of [`GroupBy::Nothing`].
    All,
    /// An H3 cell.
    Cell(CellIndex),
    /// A category value.
    Category(String),
    /// Records without the grouping category.
    Missing,
}

impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GroupKey::All => s.serialize_str("all"),
            GroupKey::Cell(c) => s.serialize_str(&c.to_string()),
            GroupKey::Category(v) => s.serialize_str(v),
            GroupKey::Missing => s.serialize_none(),
        }
    }
}

/// Statistics of one number attribute over a group's records that have it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FieldStats {
    /// Records with a value.
    pub count: u64,
    /// Sum of values (0 when none).
    pub sum: f64,
    /// Smallest value (`None` when none).
    pub min: Option<f64>,
    /// Largest value (`None` when none).
    pub max: Option<f64>,
}

impl FieldStats {
    const EMPTY: FieldStats = FieldStats { count: 0, sum: 0.0, min: None, max: None };

    /// Mean of the values, `None` when there are none.
    #[must_use]
    pub fn avg(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }

    /// Combines two partial statistics (for merging per-segment collectors).
    #[must_use]
    pub fn merge(self, o: FieldStats) -> FieldStats {
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
        FieldStats {
            count: self.count + o.count,
            sum: self.sum + o.sum,
            min: pick(self.min, o.min, f64::min),
            max: pick(self.max, o.max, f64::max),
        }
    }
}

/// One group of an aggregation result.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group key.
    pub key: GroupKey,
    /// Records in the group.
    pub count: u64,
    /// Statistics per requested number field, in request order.
    pub fields: Vec<FieldStats>,
}

/// Accumulates rows into groups; collectors over different row sets merge.
#[derive(Debug)]
pub struct Collector {
    key_of: KeyOf,
    fields: Vec<usize>,
    /// (key, count) per group, and its field statistics at `stats[slot * fields.len()..]`.
    groups: Vec<(u64, u64)>,
    stats: Vec<FieldStats>,
    slots: HashMap<u64, usize, BuildHasherDefault<KeyHasher>>,
    /// The last key and its slot: rows come in spatial order, so neighbours mostly share
    /// a group and skip the hash lookup.
    last: Option<(u64, usize)>,
    /// Once H3 grouping has `spill_at` groups (fine cells over spread-out rows: most rows
    /// start a group of their own), rows of other groups are no longer looked up in the
    /// hash map: each run of rows with one key becomes an entry here, (key, entry number),
    /// radix-sorted by key and added to the groups at the end.
    spilled: Vec<(u64, u32)>,
    /// Per spilled entry: its first spilled row and its number of rows.
    spilled_runs: Vec<(u32, u32)>,
    /// `fields.len()` values per spilled row, NaN where absent.
    spilled_values: Vec<f64>,
    spilled_rows: u32,
    spill_at: usize,
}

/// Groups an H3 collector holds in its hash map before it spills rows (see `spilled`).
const SPILL_AT_GROUPS: usize = 1 << 14;

/// A hasher for group keys (H3 indexes, category codes): one multiply and a fold. Keys are
/// not attacker-chosen in a way that matters here, and SipHash dominated aggregations with
/// many groups.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        let m = u128::from(self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// The raw index of the resolution-`res` ancestor of a valid resolution-15 H3 cell: the
/// resolution field set to `res` and the digits finer than `res` set to 7 (what H3 defines
/// a parent to be), by bit arithmetic alone.
#[inline]
fn ancestor(cell: u64, res: u8) -> u64 {
    let res = res.min(15);
    let finer = (1u64 << (3 * u32::from(15 - res))) - 1;
    (cell & !(0xF << 52) & !finer) | (u64::from(res) << 52) | finer
}

#[derive(Debug)]
enum KeyOf {
    Nothing,
    H3(Resolution),
    Category(usize),
}

impl Collector {
    /// A collector grouping by H3 `resolution`, by category field number `category`, or
    /// nothing, summarising number fields at positions `fields`.
    pub(crate) fn new(h3: Option<Resolution>, category: Option<usize>, fields: Vec<usize>) -> Self {
        let key_of = match (h3, category) {
            (Some(r), _) => KeyOf::H3(r),
            (None, Some(c)) => KeyOf::Category(c),
            (None, None) => KeyOf::Nothing,
        };
        Collector {
            key_of,
            fields,
            groups: Vec::new(),
            stats: Vec::new(),
            slots: HashMap::default(),
            last: None,
            spilled: Vec::new(),
            spilled_runs: Vec::new(),
            spilled_values: Vec::new(),
            spilled_rows: 0,
            spill_at: SPILL_AT_GROUPS,
        }
    }

    /// A collector that spills after `groups` groups (tests exercise the spill with it).
    #[cfg(test)]
    fn spilling_after(mut self, groups: usize) -> Self {
        self.spill_at = groups;
        self
    }

    /// Adds one row.
    pub fn add(&mut self, row: RowRef<'_>) {
        let key = match self.key_of {
            KeyOf::Nothing => 0,
            KeyOf::H3(res) => ancestor(row.cell(), res.into()),
            KeyOf::Category(c) => u64::from(row.category(c)),
        };
        self.add_keyed(key, row);
    }

    /// Adds one row whose group key (the raw H3 ancestor, category code, or 0) the caller
    /// already knows.
    pub(crate) fn add_keyed(&mut self, key: u64, row: RowRef<'_>) {
        let n = self.fields.len();
        let slot = match self.last {
            Some((k, slot)) if k == key => slot,
            _ if self.groups.len() >= self.spill_at && matches!(self.key_of, KeyOf::H3(_)) => {
                self.spill(key, row);
                return;
            }
            _ => {
                let (groups, stats) = (&mut self.groups, &mut self.stats);
                let slot = *self.slots.entry(key).or_insert_with(|| {
                    groups.push((key, 0));
                    stats.extend(std::iter::repeat_n(FieldStats::EMPTY, n));
                    groups.len() - 1
                });
                self.last = Some((key, slot));
                slot
            }
        };
        if let Some((_, count)) = self.groups.get_mut(slot) {
            *count += 1;
        }
        let stats = self.stats.get_mut(slot * n..(slot + 1) * n).unwrap_or_default();
        for (s, &f) in stats.iter_mut().zip(&self.fields) {
            let v = row.number(f);
            if !v.is_nan() {
                s.add(v);
            }
        }
    }

    /// Appends a row to the spilled entries (see `spilled`); out of line, so the hash path
    /// stays small.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, key: u64, row: RowRef<'_>) {
        match self.spilled_runs.last_mut() {
            Some((_, rows)) if self.spilled.last().is_some_and(|&(k, _)| k == key) => *rows += 1,
            _ => {
                // Fits u32: a collector sees at most one entry per row of one collection.
                let entry = u32::try_from(self.spilled_runs.len()).unwrap_or(u32::MAX);
                self.spilled.push((key, entry));
                self.spilled_runs.push((self.spilled_rows, 1));
            }
        }
        self.spilled_rows = self.spilled_rows.saturating_add(1);
        self.spilled_values.extend(self.fields.iter().map(|&f| row.number(f)));
    }

    /// Sums the spilled rows into the groups, key by key (sorted), so `finish` sees one
    /// group per key.
    fn fold_spilled(&mut self) {
        if self.spilled.is_empty() {
            return;
        }
        let n = self.fields.len();
        let mut spilled = std::mem::take(&mut self.spilled);
        radix_sort_by_key(&mut spilled);
        let runs_of = std::mem::take(&mut self.spilled_runs);
        let values = std::mem::take(&mut self.spilled_values);
        let mut runs = spilled.chunk_by(|a, b| a.0 == b.0);
        for run in &mut runs {
            let Some(&(key, _)) = run.first() else { continue };
            let slot = match self.slots.get(&key) {
                Some(&slot) => slot,
                None => {
                    self.groups.push((key, 0));
                    self.stats.extend(std::iter::repeat_n(FieldStats::EMPTY, n));
                    self.groups.len() - 1
                }
            };
            let stats = self.stats.get_mut(slot * n..(slot + 1) * n).unwrap_or_default();
            let mut rows = 0u64;
            for &(_, e) in run {
                let Some(&(first, len)) = runs_of.get(e as usize) else { continue };
                rows += u64::from(len);
                let (first, len) = (first as usize, len as usize);
                let entry = values.get(first * n..(first + len) * n).unwrap_or_default();
                for row in entry.chunks_exact(n.max(1)) {
                    for (s, &v) in stats.iter_mut().zip(row) {
                        if !v.is_nan() {
                            s.add(v);
                        }
                    }
                }
            }
            if let Some((_, count)) = self.groups.get_mut(slot) {
                *count += rows;
            }
        }
    }

    /// Finishes into groups sorted by key; `category_name` turns codes into values.
    pub(crate) fn finish(mut self, category_name: impl Fn(u32) -> Option<String>) -> Vec<Group> {
        self.fold_spilled();
        let n = self.fields.len();
        let stats = self.stats;
        let key_of = self.key_of;
        // H3 keys order as their raw values: sort (key, slot) pairs, not whole groups.
        let mut order: Vec<(u64, u32)> =
            self.groups.iter().enumerate().map(|(slot, &(key, _))| (key, slot as u32)).collect();
        let presorted = matches!(key_of, KeyOf::H3(_));
        if presorted {
            radix_sort_by_key(&mut order);
        }
        let mut out: Vec<Group> = order
            .into_iter()
            .filter_map(|(key, slot)| {
                let slot = slot as usize;
                let &(_, count) = self.groups.get(slot)?;
                let fields = stats.get(slot * n..(slot + 1) * n).unwrap_or_default().to_vec();
                let key = match key_of {
                    KeyOf::Nothing => GroupKey::All,
                    KeyOf::H3(_) => CellIndex::try_from(key).map_or(GroupKey::Missing, GroupKey::Cell),
                    KeyOf::Category(_) => u32::try_from(key)
                        .ok()
                        .and_then(&category_name)
                        .map_or(GroupKey::Missing, GroupKey::Category),
                };
                Some(Group { key, count, fields })
            })
            .collect();
        // Category names (and the rare invalid cell, `Missing`) need the full key order.
        if !presorted || out.iter().any(|g| g.key == GroupKey::Missing) {
            out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        out
    }
}

/// Sorts `(key, payload)` pairs by key, stably: least-significant-digit radix sort, 11 bits
/// per pass, over only the bits in which the keys differ (22 bits for H3 resolution 5).
fn radix_sort_by_key(items: &mut Vec<(u64, u32)>) {
    const BITS: u32 = 11;
    const MASK: u64 = (1 << BITS) - 1;
    let Some(&(first, _)) = items.first() else { return };
    let differ = items.iter().fold(0u64, |acc, &(k, _)| acc | (k ^ first));
    if differ == 0 {
        return;
    }
    let (low, high) = (differ.trailing_zeros(), 64 - differ.leading_zeros());
    let mut scratch = vec![(0u64, 0u32); items.len()];
    let mut shift = low;
    while shift < high {
        let digit = |k: u64| ((k >> shift) & MASK) as usize;
        let mut starts = vec![0usize; 1 << BITS];
        for &(k, _) in items.iter() {
            if let Some(c) = starts.get_mut(digit(k)) {
                *c += 1;
            }
        }
        let mut at = 0;
        for c in &mut starts {
            (*c, at) = (at, at + *c);
        }
        for &item in items.iter() {
            if let Some(c) = starts.get_mut(digit(item.0)) {
                if let Some(slot) = scratch.get_mut(*c) {
                    *slot = item;
                }
                *c += 1;
            }
        }
        std::mem::swap(items, &mut scratch);
        shift += BITS;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use h3o::LatLng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::geo::LatLon;
    use crate::index::{OpPointer, Row};

    fn rows(n: usize, seed: u64) -> Vec<Row> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                // Half spread over the globe, half in one small area (runs of one group).
                let (lat, lon) = if i % 2 == 0 {
                    (rng.gen_range(-89.0..89.0), rng.gen_range(-180.0..180.0))
                } else {
                    (48.85 + rng.gen_range(-0.01..0.01), 2.35 + rng.gen_range(-0.01..0.01))
                };
                let cell = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Fifteen);
                // Any float: spilled rows are added in row order, as the hash path adds them.
                let value = if rng.gen_bool(0.1) { f64::NAN } else { rng.gen_range(-5.0..100.0) };
                Row {
                    id: format!("r{i}").into(),
                    location: LatLon::new(lat, lon).unwrap(),
                    cell: u64::from(cell),
                    numbers: vec![value, f64::from(u32::try_from(i).unwrap())].into(),
                    categories: Vec::new().into(),
                    pointer: OpPointer { segment: 1, offset: 0, len: 0, index: 0 },
                    lsn: 1,
                    key_id: None,
                }
            })
            .collect()
    }

    #[test]
    fn spilled_h3_groups_equal_hashed_ones_and_a_brute_force_count() {
        for (seed, res) in [(1u64, 5u8), (2, 9), (3, 0), (4, 15)] {
            let rows = rows(5_000, seed);
            let collect = |spill_at: usize| {
                let mut c = Collector::new(Some(Resolution::try_from(res).unwrap()), None, vec![0, 1])
                    .spilling_after(spill_at);
                for r in &rows {
                    c.add(RowRef::Tail(r));
                }
                c.finish(|_| None)
            };
            let hashed = collect(usize::MAX);
            for spill_at in [0, 1, 7, 500] {
                assert_eq!(collect(spill_at), hashed, "seed {seed}, res {res}, spill after {spill_at}");
            }
            let mut brute: BTreeMap<u64, (u64, f64)> = BTreeMap::new();
            for r in &rows {
                let parent =
                    CellIndex::try_from(r.cell).unwrap().parent(Resolution::try_from(res).unwrap()).unwrap();
                let e = brute.entry(u64::from(parent)).or_default();
                e.0 += 1;
                e.1 += r.numbers[1];
            }
            let got: Vec<(u64, u64, f64)> = hashed
                .iter()
                .map(|g| match g.key {
                    GroupKey::Cell(c) => (u64::from(c), g.count, g.fields[1].sum),
                    _ => panic!("not a cell"),
                })
                .collect();
            let want: Vec<(u64, u64, f64)> = brute.into_iter().map(|(k, (n, s))| (k, n, s)).collect();
            assert_eq!(got, want, "seed {seed}, res {res}");
        }
    }

    #[test]
    fn radix_sort_is_a_stable_sort_by_key() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for n in [0usize, 1, 2, 100, 10_000] {
            let mut items: Vec<(u64, u32)> = (0..n)
                .map(|i| (rng.gen::<u64>() >> rng.gen_range(0..64), u32::try_from(i).unwrap()))
                .collect();
            items.extend(items.clone().iter().map(|&(k, i)| (k, i + 1_000_000)));
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k); // stable
            radix_sort_by_key(&mut items);
            assert_eq!(items, expected, "n = {n}");
        }
    }
}
