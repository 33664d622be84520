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
    /// One group for everything — also when nothing matches (count 0, no min, max or
    /// average), as an SQL aggregate without `GROUP BY` gives one row.
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

/// Statistics of one number attribute over a group's records that have it (40 bytes: an
/// aggregation can hold millions of these).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldStats {
    /// Records with a value.
    pub count: u64,
    /// Sum of values (0 when none): the exact sum rounded to f64 but for rare values within
    /// a few units in the last place of a rounding boundary. It is added with a compensation
    /// term (Neumaier's), so it does not depend on the order of the rows — which a
    /// checkpoint changes — for ordinary data (before the forty-third part, plain additions
    /// in row order changed its last digits). ±∞ or NaN when a partial sum went past the f64
    /// range, even if the whole sum would not have (the CLI prints `overflow`).
    pub sum: f64,
    /// What the additions into `sum` rounded off: `sum + comp` is the running sum to about
    /// twice f64's precision. Folded into `sum` before a group is handed out.
    comp: f64,
    /// Smallest value (−0 read as 0), +∞ when none.
    min: f64,
    /// Largest value (−0 read as 0), −∞ when none.
    max: f64,
}

impl FieldStats {
    const EMPTY: FieldStats =
        FieldStats { count: 0, sum: 0.0, comp: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

    /// Smallest value, `None` when there are none.
    #[must_use]
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value, `None` when there are none.
    #[must_use]
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean of the values, `None` when there are none.
    #[must_use]
    pub fn avg(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    #[inline]
    fn add(&mut self, v: f64) {
        // −0 counts as 0: `f64::min`/`max` may return either zero, so which one a group showed
        // depended on row order, and a checkpoint changed it (from the aggregation review).
        let v = v + 0.0;
        self.count += 1;
        // Neumaier's step: the rounding error of each addition goes into `comp`, off the
        // dependency chain of `sum` (one addition per row, as before).
        let t = self.sum + v;
        let (big, small) = if self.sum.abs() >= v.abs() { (self.sum, v) } else { (v, self.sum) };
        self.comp += (big - t) + small;
        self.sum = t;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Combines two partial statistics (for merging per-segment collectors), compensated as
    /// [`sum`](Self::sum) says.
    #[must_use]
    pub fn merge(self, o: FieldStats) -> FieldStats {
        let (sum, err) = two_sum(self.sum, o.sum);
        FieldStats {
            count: self.count + o.count,
            sum,
            comp: err + self.comp + o.comp,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
        .folded()
    }

    /// For the tests: the low part of the running sum.
    #[cfg(test)]
    pub(crate) fn comp(&self) -> f64 {
        self.comp
    }

    /// The compensation folded into `sum` (rounded once), keeping what that rounds off: the
    /// same running sum, with `sum` its best f64. A sum past the f64 range stays as it is.
    #[must_use]
    fn folded(self) -> FieldStats {
        if !(self.sum.is_finite() && self.comp.is_finite()) {
            return FieldStats { comp: 0.0, ..self };
        }
        let (sum, comp) = two_sum(self.sum, self.comp);
        FieldStats { sum, comp, ..self }
    }
}

/// `a + b` rounded, and what the rounding lost (exact, for finite values: Knuth's TwoSum).
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

impl Serialize for FieldStats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("FieldStats", 4)?;
        out.serialize_field("count", &self.count)?;
        out.serialize_field("sum", &self.sum)?;
        out.serialize_field("min", &self.min())?;
        out.serialize_field("max", &self.max())?;
        out.end()
    }
}

/// One group of an aggregation result, borrowed from its [`Groups`].
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    /// The group key.
    pub key: GroupKey,
    /// Records in the group.
    pub count: u64,
    /// Statistics per requested number field, in request order.
    pub fields: &'a [FieldStats],
}

/// The keys of an aggregation's groups: raw H3 indexes (made [`GroupKey::Cell`]s when read),
/// or the keys themselves.
#[derive(Debug, Clone, PartialEq)]
enum Keys {
    Cells(Vec<u64>),
    Labels(Vec<GroupKey>),
}

/// The result of an aggregation: its groups in key order, stored column by column, so that a
/// million groups (an H3 heatmap of spread-out records) are a few vectors rather than a
/// million allocations.
///
/// H3 groups are in the order of their raw indexes (which is [`CellIndex`] order); a raw
/// index that is not a valid cell — only from a damaged checkpoint opened without checksums —
/// reads as [`GroupKey::Missing`] in its raw place. Sums are added in an order that depends
/// on how the rows are stored and on the number of cores, so they can differ in their last
/// bits between runs on different machines or layouts; counts, minima and maxima are exact.
///
/// ```
/// use geocrm::query::{GroupBy, GroupKey, Scope};
/// use geocrm::{Database, Filter, LatLon, Options, Record};
/// use geocrm::model::Schema;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path(), Options::new())?;
/// db.create_collection("shops", Schema::new().number("sales"))?;
/// let mut batch = db.begin_write();
/// for (id, lat, sales) in [("a", 48.85, 10.0), ("b", 48.8501, 5.0), ("c", 40.0, 1.0)] {
///     batch.upsert("shops", Record::new(id, LatLon::new(lat, 2.35)?).number("sales", sales))?;
/// }
/// batch.commit()?;
/// let read = db.read();
/// let groups = read.collection("shops")?.aggregate(Scope::All, &GroupBy::H3(4), &["sales"], &Filter::All)?;
/// assert_eq!(groups.len(), 2);
/// let biggest = groups.iter().max_by_key(|g| g.count).unwrap();
/// assert!(matches!(biggest.key, GroupKey::Cell(_)));
/// assert_eq!((biggest.count, biggest.fields[0].sum), (2, 15.0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Groups {
    keys: Keys,
    counts: Vec<u64>,
    /// `width` statistics per group.
    stats: Vec<FieldStats>,
    width: usize,
    /// H3 groups that follow these, part by part — the other parts of a parallel walk, kept
    /// where they were built instead of copied — each with the number of groups at its start
    /// that were merged into the group before (0 or 1).
    more: Vec<(Groups, usize)>,
}

impl PartialEq for Groups {
    fn eq(&self, other: &Groups) -> bool {
        self.width == other.width && self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Groups {
    fn cells(width: usize) -> Self {
        Groups {
            keys: Keys::Cells(Vec::new()),
            counts: Vec::new(),
            stats: Vec::new(),
            width,
            more: Vec::new(),
        }
    }

    fn shrink_to_fit(&mut self) {
        match &mut self.keys {
            Keys::Cells(cells) => cells.shrink_to_fit(),
            Keys::Labels(labels) => labels.shrink_to_fit(),
        }
        self.counts.shrink_to_fit();
        self.stats.shrink_to_fit();
        for (part, _) in &mut self.more {
            part.shrink_to_fit();
        }
    }

    /// Number of groups.
    #[must_use]
    pub fn len(&self) -> usize {
        self.counts.len() + self.more.iter().map(|(part, skip)| part.counts.len() - skip).sum::<usize>()
    }

    /// Whether there are no groups.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The part holding group `i`, and the group's position in it.
    fn locate(&self, i: usize) -> Option<(&Groups, usize)> {
        let mut i = i;
        if i < self.counts.len() {
            return Some((self, i));
        }
        i -= self.counts.len();
        for (part, skip) in &self.more {
            let n = part.counts.len() - skip;
            if i < n {
                return Some((part, i + skip));
            }
            i -= n;
        }
        None
    }

    /// Group `i` (in key order).
    #[must_use]
    pub fn get(&self, i: usize) -> Option<Group<'_>> {
        let (part, i) = self.locate(i)?;
        part.get_here(i)
    }

    /// Group `i` of this part alone.
    fn get_here(&self, i: usize) -> Option<Group<'_>> {
        let count = *self.counts.get(i)?;
        let key = match &self.keys {
            // A raw index that is not a valid cell can only come from a damaged file.
            Keys::Cells(cells) => {
                CellIndex::try_from(*cells.get(i)?).map_or(GroupKey::Missing, GroupKey::Cell)
            }
            Keys::Labels(labels) => labels.get(i)?.clone(),
        };
        let fields = self.stats.get(i * self.width..(i + 1) * self.width).unwrap_or_default();
        Some(Group { key, count, fields })
    }

    /// The groups in key order.
    #[must_use]
    pub fn iter(&self) -> GroupsIter<'_> {
        GroupsIter { groups: self, front: 0, back: self.len() }
    }

    /// Appends a group with raw H3 key `key` after the last (keys ascend), or adds to the
    /// last one when it has this key.
    fn push_cell(&mut self, key: u64, count: u64, stats: &[FieldStats]) {
        if let Keys::Cells(cells) = &mut self.keys {
            if cells.last() == Some(&key) {
                if let (Some(c), Some(last)) =
                    (self.counts.last_mut(), self.stats.len().checked_sub(self.width))
                {
                    *c += count;
                    for (s, &o) in self.stats.iter_mut().skip(last).zip(stats) {
                        *s = s.merge(o);
                    }
                }
                return;
            }
            cells.push(key);
            self.counts.push(count);
            self.stats.extend(stats.iter().map(|s| s.folded()));
        }
    }

    /// Group `i` of an H3 result as (raw key, count, statistics).
    fn raw_cell(&self, i: usize) -> Option<(u64, u64, &[FieldStats])> {
        let (part, i) = self.locate(i)?;
        let Keys::Cells(cells) = &part.keys else { return None };
        let stats = part.stats.get(i * part.width..(i + 1) * part.width)?;
        Some((*cells.get(i)?, *part.counts.get(i)?, stats))
    }

    /// Appends `next`'s groups (built on their own, all with keys at or above this one's
    /// last) without copying them; a group of the last key in both is merged into one.
    pub(crate) fn append_cells(&mut self, next: Groups) {
        let mut skip = 0;
        if let Some((key, count, stats)) = next.raw_cell(0) {
            // The part holding the last group shown: a part whose only group was merged
            // into the part before, or an empty one, does not.
            let shown = self.more.iter().rposition(|(part, skip)| part.counts.len() > *skip);
            let last = match shown.and_then(|i| self.more.get_mut(i)) {
                Some((part, _)) => part,
                None => self,
            };
            if let Keys::Cells(cells) = &last.keys {
                if cells.last() == Some(&key) {
                    last.push_cell(key, count, stats);
                    skip = 1;
                }
            }
        }
        self.more.push((next, skip));
    }

    /// Merges two H3 results, each in key order, into one in key order.
    pub(crate) fn merge_cells(a: Groups, b: Groups) -> Groups {
        if b.is_empty() {
            return a;
        }
        if a.is_empty() {
            return b;
        }
        let mut out = Groups::cells(a.width);
        let (mut i, mut j) = (0, 0);
        loop {
            let next = match (a.raw_cell(i), b.raw_cell(j)) {
                (Some(x), Some(y)) if x.0 <= y.0 => {
                    i += 1;
                    x
                }
                (_, Some(y)) => {
                    j += 1;
                    y
                }
                (Some(x), None) => {
                    i += 1;
                    x
                }
                (None, None) => break,
            };
            out.push_cell(next.0, next.1, next.2);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Groups {
    type Item = Group<'a>;
    type IntoIter = GroupsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The groups of a [`Groups`] in key order ([`Groups::iter`]).
#[derive(Debug, Clone)]
pub struct GroupsIter<'a> {
    groups: &'a Groups,
    front: usize,
    back: usize,
}

impl<'a> Iterator for GroupsIter<'a> {
    type Item = Group<'a>;

    fn next(&mut self) -> Option<Group<'a>> {
        if self.front >= self.back {
            return None;
        }
        self.front += 1;
        self.groups.get(self.front - 1)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for GroupsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.groups.get(self.back)
    }
}

impl ExactSizeIterator for GroupsIter<'_> {}

/// The groups of [`Groups::cells`]-keyed aggregation over rows visited in (cell, row) order:
/// consecutive rows with one ancestor form one group.
#[derive(Debug)]
pub(crate) struct CellRuns {
    res: u8,
    fields: Vec<usize>,
    out: Groups,
    /// The open group: key, count, statistics.
    key: Option<u64>,
    count: u64,
    stats: Vec<FieldStats>,
}

impl CellRuns {
    /// Runs over at most `rows` rows. The output gets room up front for as many groups as
    /// there can be — at most one per row and no more than H3 has cells at `res` — within
    /// [`RESERVE_BYTES`], and grows beyond that: growing by copies cost more than the rest of
    /// the walk, and room never written to is never touched.
    pub(crate) fn new(res: Resolution, fields: &[usize], rows: usize) -> Self {
        let mut out = Groups::cells(fields.len());
        let per_group = 16 + std::mem::size_of::<FieldStats>() * fields.len();
        let room = rows.min(cells_at(res)).min(RESERVE_BYTES / per_group);
        if let Keys::Cells(cells) = &mut out.keys {
            cells.reserve_exact(room);
        }
        out.counts.reserve_exact(room);
        out.stats.reserve_exact(room * fields.len());
        CellRuns {
            res: res.into(),
            fields: fields.to_vec(),
            out,
            key: None,
            count: 0,
            stats: vec![FieldStats::EMPTY; fields.len()],
        }
    }

    /// Adds a row whose resolution-15 cell is `cell`; `number(f)` reads number field `f`.
    #[inline]
    pub(crate) fn add(&mut self, cell: u64, number: impl Fn(usize) -> f64) {
        let key = ancestor(cell, self.res);
        if self.key != Some(key) {
            self.close();
            self.key = Some(key);
        }
        self.count += 1;
        for (s, &f) in self.stats.iter_mut().zip(&self.fields) {
            let v = number(f);
            if !v.is_nan() {
                s.add(v);
            }
        }
    }

    fn close(&mut self) {
        if let Some(key) = self.key.take() {
            self.out.push_cell(key, self.count, &self.stats);
            self.count = 0;
            self.stats.fill(FieldStats::EMPTY);
        }
    }

    pub(crate) fn finish(mut self) -> Groups {
        self.close();
        self.out.shrink_to_fit();
        self.out
    }
}

/// The most bytes an aggregation's output reserves before it knows how many groups it has.
const RESERVE_BYTES: usize = 96 << 20;

/// How many H3 cells there are at `res`: 122 base cells, each (12 pentagons aside, which
/// have 5 children and one fewer below) with 7 children per finer resolution; as 2 + 120·7^res.
fn cells_at(res: Resolution) -> usize {
    let r = u32::from(u8::from(res));
    7usize.checked_pow(r).and_then(|p| p.checked_mul(120)).map_or(usize::MAX, |n| n.saturating_add(2))
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
pub(crate) fn ancestor(cell: u64, res: u8) -> u64 {
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
        crate::radix::sort_by_key(&mut spilled);
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
    pub(crate) fn finish(mut self, category_name: impl Fn(u32) -> Option<String>) -> Groups {
        self.fold_spilled();
        let n = self.fields.len();
        if matches!(self.key_of, KeyOf::Nothing) && self.groups.is_empty() {
            // The one group exists even when nothing matched, as SQL's aggregate without
            // GROUP BY gives one row: count 0, no min, max or average.
            self.groups.push((0, 0));
            self.stats.resize(n, FieldStats::EMPTY);
        }
        let mut order: Vec<(u64, u32)> =
            self.groups.iter().enumerate().map(|(slot, &(key, _))| (key, slot as u32)).collect();
        let mut out = Groups {
            keys: Keys::Labels(Vec::new()),
            counts: Vec::new(),
            stats: Vec::new(),
            width: n,
            more: Vec::new(),
        };
        if let KeyOf::H3(_) = self.key_of {
            // H3 keys order as their raw values.
            crate::radix::sort_by_key(&mut order);
            out.keys = Keys::Cells(order.iter().map(|&(key, _)| key).collect());
        } else {
            let key_of = |key: u64| match self.key_of {
                KeyOf::Category(_) => u32::try_from(key)
                    .ok()
                    .and_then(&category_name)
                    .map_or(GroupKey::Missing, GroupKey::Category),
                _ => GroupKey::All,
            };
            let mut labelled: Vec<(GroupKey, u32)> =
                order.iter().map(|&(key, slot)| (key_of(key), slot)).collect();
            labelled.sort_unstable();
            order = labelled.iter().map(|&(_, slot)| (0, slot)).collect();
            out.keys = Keys::Labels(labelled.into_iter().map(|(key, _)| key).collect());
        }
        out.counts =
            order.iter().map(|&(_, slot)| self.groups.get(slot as usize).map_or(0, |g| g.1)).collect();
        out.stats = Vec::with_capacity(order.len() * n);
        for &(_, slot) in &order {
            let slot = slot as usize;
            let stats = self.stats.get(slot * n..(slot + 1) * n).unwrap_or_default();
            out.stats.extend(stats.iter().map(|s| s.folded()));
        }
        out
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
                    pointer: OpPointer { segment: 1, offset: 0, index: 0 },
                    lsn: 1,
                    key_id: None,
                }
            })
            .collect()
    }

    /// A group's min and max of {0, −0} are 0 in either order, merged either way (they were
    /// whichever zero came first, so a checkpoint changed them; from the aggregation review).
    #[test]
    fn signed_zeros_give_the_same_min_and_max_in_any_order() {
        for values in [[0.0, -0.0], [-0.0, 0.0], [-0.0, -0.0]] {
            let mut one = FieldStats::EMPTY;
            values.iter().for_each(|&v| one.add(v));
            let (mut a, mut b) = (FieldStats::EMPTY, FieldStats::EMPTY);
            a.add(values[0]);
            b.add(values[1]);
            for s in [one, a.merge(b), b.merge(a)] {
                let bits = (s.min().unwrap().to_bits(), s.max().unwrap().to_bits());
                assert_eq!(bits, (0, 0), "{values:?}: {s:?}");
            }
        }
    }

    /// The walk's output reserves room for every possible group, but never more groups than
    /// H3 has cells at the resolution, nor more than `RESERVE_BYTES` (many — possibly
    /// repeated — fields over many rows once asked for tens of gigabytes and aborted).
    #[test]
    fn cell_runs_reserve_within_cells_and_budget() {
        let bytes = |r: &CellRuns| {
            let Keys::Cells(cells) = &r.out.keys else { panic!() };
            8 * cells.capacity() + 8 * r.out.counts.capacity() + 32 * r.out.stats.capacity()
        };
        let r0 = CellRuns::new(Resolution::Zero, &[0; 6000], 150_000);
        assert_eq!(r0.out.counts.capacity(), 122);
        let wide = CellRuns::new(Resolution::Fifteen, &[0; 64], 12_000_000);
        assert!(bytes(&wide) <= RESERVE_BYTES, "{}", bytes(&wide));
        let one = CellRuns::new(Resolution::Five, &[0], 1_000_000);
        assert!(one.out.counts.capacity() >= 1_000_000);
        assert_eq!(cells_at(Resolution::Two), 5_882);
        assert_eq!(cells_at(Resolution::Fifteen), 569_707_381_193_162);
    }

    /// Parts of a walk joined without copying (`append_cells`) equal one walk over all rows,
    /// whatever the cuts: inside a group, a part that is one group spanning three parts,
    /// empty parts.
    #[test]
    fn joined_parts_equal_one_walk() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let res = Resolution::try_from(3).unwrap();
        let mut cells: Vec<u64> = rows(3_000, 21).iter().map(|r| r.cell).collect();
        cells.sort_unstable();
        let walk = |range: std::ops::Range<usize>| {
            let mut runs = CellRuns::new(res, &[0], range.len());
            for i in range {
                runs.add(cells[i], |_| (i % 13) as f64);
            }
            runs.finish()
        };
        let whole = walk(0..cells.len());
        assert!(whole.len() > 20);
        for round in 0..200 {
            let mut cuts: Vec<usize> =
                (0..rng.gen_range(1..8)).map(|_| rng.gen_range(0..=cells.len())).collect();
            if round % 4 == 0 {
                // Two cuts inside the biggest run of one key: a part that is all one group.
                let (start, len) = cells
                    .chunk_by(|a, b| ancestor(*a, 3) == ancestor(*b, 3))
                    .scan(0, |at, run| {
                        *at += run.len();
                        Some((*at - run.len(), run.len()))
                    })
                    .max_by_key(|&(_, len)| len)
                    .unwrap();
                cuts.extend([start + len / 3, start + 2 * len / 3, start + 2 * len / 3]);
            }
            cuts.extend([0, cells.len()]);
            cuts.sort_unstable();
            let mut parts = cuts.windows(2).map(|w| walk(w[0]..w[1]));
            let mut joined = parts.next().unwrap();
            for part in parts {
                joined.append_cells(part);
            }
            assert_eq!(joined.len(), whole.len(), "cuts {cuts:?}");
            for (a, b) in joined.iter().zip(whole.iter()) {
                assert_eq!(
                    (&a.key, a.count, a.fields[0].count),
                    (&b.key, b.count, b.fields[0].count),
                    "cuts {cuts:?}"
                );
                assert_eq!((a.fields[0].min(), a.fields[0].max()), (b.fields[0].min(), b.fields[0].max()));
            }
            assert!(joined.iter().rev().eq(whole.iter().rev()));
            assert!(
                (0..whole.len()).all(|i| joined.get(i) == whole.get(i)) && joined.get(whole.len()).is_none()
            );
        }
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
            let forward: Vec<Group<'_>> = hashed.iter().collect();
            let mut backward: Vec<Group<'_>> = hashed.iter().rev().collect();
            backward.reverse();
            assert_eq!((forward.len(), hashed.iter().len()), (hashed.len(), hashed.len()));
            assert_eq!(forward, backward);
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

    /// A sum of `values` added in order, then folded.
    fn sum_in_order(values: &[f64]) -> FieldStats {
        let mut s = FieldStats::EMPTY;
        for &v in values {
            s.add(v);
        }
        s.merge(FieldStats::EMPTY)
    }

    /// Sums do not depend on the order of the rows or on how they are split into merged
    /// parts (a checkpoint changes both): 2-decimal amounts, magnitudes from 1e-6 to 1e9,
    /// and cancellations. Fails with plain additions (checked by mutation).
    #[test]
    fn sums_do_not_depend_on_row_order_or_parts() {
        use rand::seq::SliceRandom;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(43);
        for case in 0..60 {
            let n = rng.gen_range(2..400);
            let mut values: Vec<f64> = (0..n)
                .map(|_| match case % 3 {
                    0 => f64::from(rng.gen_range(0..10_000_000)) / 100.0,
                    1 => rng.gen_range(-1.0..1.0) * 10f64.powi(rng.gen_range(-6..10)),
                    _ => [1e16, -1e16, 1.0, 0.1, -3.7][rng.gen_range(0..5)],
                })
                .collect();
            let first = sum_in_order(&values);
            assert_eq!(first.sum + first.comp(), first.sum, "folded: the rest is below half an ulp");
            for _ in 0..20 {
                values.shuffle(&mut rng);
                let again = sum_in_order(&values);
                assert_eq!(again.sum.to_bits(), first.sum.to_bits(), "case {case}: {values:?}");
                let cut = rng.gen_range(0..=values.len());
                let parts = sum_in_order(&values[..cut]).merge(sum_in_order(&values[cut..]));
                assert_eq!(parts.sum.to_bits(), first.sum.to_bits(), "case {case}, cut {cut}");
            }
        }
        // Ten ones between a big value and its negation: exactly 10 (plain additions give 0).
        let mut values = vec![1e16];
        values.extend([1.0; 10]);
        values.push(-1e16);
        assert_eq!(sum_in_order(&values).sum, 10.0);
        // Past the f64 range the sum is infinite (the CLI says overflow), as before.
        assert_eq!(sum_in_order(&[f64::MAX, f64::MAX]).sum, f64::INFINITY);
        assert!(!sum_in_order(&[f64::MAX, f64::MAX, -f64::MAX, -f64::MAX]).sum.is_finite());
    }
}
