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
}

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
        }
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

    /// Finishes into groups sorted by key; `category_name` turns codes into values.
    pub(crate) fn finish(self, category_name: impl Fn(u32) -> Option<String>) -> Vec<Group> {
        let n = self.fields.len();
        let stats = self.stats;
        let mut out: Vec<Group> = self
            .groups
            .into_iter()
            .enumerate()
            .map(|(slot, (key, count))| {
                let fields = stats.get(slot * n..(slot + 1) * n).unwrap_or_default().to_vec();
                let key = match self.key_of {
                    KeyOf::Nothing => GroupKey::All,
                    KeyOf::H3(_) => CellIndex::try_from(key).map_or(GroupKey::Missing, GroupKey::Cell),
                    KeyOf::Category(_) => u32::try_from(key)
                        .ok()
                        .and_then(&category_name)
                        .map_or(GroupKey::Missing, GroupKey::Category),
                };
                Group { key, count, fields }
            })
            .collect();
        out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        out
    }
}
