//! The in-memory table: rows in a slab, an id map, and an `rstar` tree over unit vectors.
//!
//! Holds every live record until checkpoints exist, and afterwards the records written since
//! the last checkpoint. The tree is bulk-loaded from the rows by the first query that needs
//! it, and kept up to date by writes from then on; replay and large commits unset it again
//! ([`MemoryTable::finish_bulk`]). That is much faster than one insert per row, and never
//! done for an import whose rows the automatic checkpoint takes over before anything queries
//! them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rstar::primitives::GeomWithData;
use rstar::{ParentNode, RTree, RTreeNode, AABB};

use crate::geo::{Aabb3, LatLon};

/// Where a record's full operation lives in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpPointer {
    /// Segment number.
    pub segment: u64,
    /// Byte offset of the frame in the segment.
    pub offset: u64,
    /// Index of the operation within the frame body.
    pub index: u32,
}

/// One live record's public, indexed data.
#[derive(Debug, Clone)]
pub struct Row {
    /// Record id.
    pub id: Arc<str>,
    /// Location.
    pub location: LatLon,
    /// H3 cell at resolution 15, as a raw `u64`.
    pub cell: u64,
    /// Number attributes in schema order; NaN where absent.
    pub numbers: Box<[f64]>,
    /// Category codes in schema order; [`crate::query::MISSING_CODE`] where absent.
    pub categories: Box<[u32]>,
    /// Where the full record (with sealed PII) is in the log.
    pub pointer: OpPointer,
    /// Log sequence number of the write that produced this row.
    pub lsn: u64,
    /// Id of the record's data key in the keystore, when it has sealed PII.
    pub key_id: Option<u64>,
}

type TreePoint = GeomWithData<[f64; 3], u32>;

/// Rows plus their spatial index.
#[derive(Debug, Default)]
pub struct MemoryTable {
    rows: Vec<Option<Row>>,
    free: Vec<u32>,
    /// Keyed by record id with a randomly seeded `ahash` (SipHash was 7 % of a bulk import).
    by_id: HashMap<Arc<str>, u32, ahash::RandomState>,
    /// Over the live rows' unit vectors; unset until a query needs it (after a bulk phase,
    /// and in a new table).
    tree: OnceLock<RTree<TreePoint>>,
    bulk: bool,
}

impl MemoryTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        MemoryTable::default()
    }

    /// Starts a bulk phase: rows are stored but the tree is only rebuilt by
    /// [`MemoryTable::finish_bulk`].
    pub fn begin_bulk(&mut self) {
        self.bulk = true;
    }

    /// Ends a bulk phase: the tree is bulk-loaded from every live row when it is next used.
    pub fn finish_bulk(&mut self) {
        self.tree = OnceLock::new();
        self.bulk = false;
    }

    /// The tree, bulk-loaded first if it is unset (concurrent readers wait for one build).
    fn tree(&self) -> &RTree<TreePoint> {
        self.tree.get_or_init(|| tree_of(&self.rows))
    }

    /// Whether changes to the rows change the tree too: it is built, and no bulk phase defers
    /// it (otherwise it is built from the rows when it is next used).
    fn tree_kept_up_to_date(&self) -> bool {
        !self.bulk && self.tree.get().is_some()
    }

    /// Changes the tree if it is built; an unbuilt one is built from the rows as they are
    /// when it is first used.
    fn change_tree(&mut self, change: impl FnOnce(&mut RTree<TreePoint>)) {
        if let Some(tree) = self.tree.get_mut() {
            change(tree);
        }
    }

    /// Makes room for `additional` more rows without regrowing (a bulk apply of a large
    /// commit: growing the slab and the id map step by step copied them over and over).
    pub fn reserve(&mut self, additional: usize) {
        self.rows.reserve(additional.saturating_sub(self.free.len()));
        self.by_id.reserve(additional);
    }

    /// Number of live rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Inserts or replaces the row with `row.id`; returns the replaced row.
    pub fn upsert(&mut self, row: Row) -> Option<Row> {
        // A bulk apply (no tree kept up to date) skips the trigonometry.
        let unit = self.tree_kept_up_to_date().then(|| row.location.to_unit_vector());
        // One hash and probe of the id, whether it is new or replaced.
        match self.by_id.entry(Arc::clone(&row.id)) {
            Entry::Occupied(entry) => {
                let slot = *entry.get();
                let old = self.rows.get_mut(slot as usize)?.replace(row);
                if let (Some(old), Some(unit)) = (&old, unit) {
                    let old = TreePoint::new(old.location.to_unit_vector(), slot);
                    self.change_tree(|tree| {
                        tree.remove(&old);
                        tree.insert(TreePoint::new(unit, slot));
                    });
                }
                old
            }
            Entry::Vacant(entry) => {
                let slot = if let Some(slot) = self.free.pop() {
                    if let Some(cell) = self.rows.get_mut(slot as usize) {
                        *cell = Some(row);
                    }
                    slot
                } else {
                    self.rows.push(Some(row));
                    slot_u32(self.rows.len() - 1)
                };
                entry.insert(slot);
                if let Some(unit) = unit {
                    self.change_tree(|tree| tree.insert(TreePoint::new(unit, slot)));
                }
                None
            }
        }
    }

    /// Sets every row's log position to `pointer_of` its LSN (rows built before their batch
    /// was written); `false` if it has none for a row.
    pub(crate) fn repoint(&mut self, pointer_of: impl Fn(u64) -> Option<OpPointer>) -> bool {
        let mut all = true;
        for row in self.rows.iter_mut().flatten() {
            match pointer_of(row.lsn) {
                Some(pointer) => row.pointer = pointer,
                None => all = false,
            }
        }
        all
    }

    /// [`MemoryTable::upsert`] of each row in turn (`None`s are skipped), in two passes when
    /// no tree is kept up to date: each row's slot is settled first, through the id map alone
    /// (its id's slot, else a freed slot, else a new one: the slots `upsert` gives it), then
    /// the rows are moved into their slots in order (one loop of lookups, one of moves: they
    /// took a third of the time one `upsert` per row took, for a million rows). With a tree
    /// kept up to date it is `upsert` of each. Returns, for each of `rows`, whether it
    /// replaced a row (`false` for a `None`).
    pub fn upsert_all(&mut self, rows: Vec<Option<Row>>) -> Vec<bool> {
        if self.tree_kept_up_to_date() {
            return rows.into_iter().map(|row| row.is_some_and(|row| self.upsert(row).is_some())).collect();
        }
        let mut replaced = vec![false; rows.len()];
        let mut next_new = self.rows.len();
        let slots: Vec<Option<usize>> = (rows.iter().zip(&mut replaced))
            .map(|(row, replaced)| {
                let row = row.as_ref()?;
                Some(match self.by_id.entry(Arc::clone(&row.id)) {
                    Entry::Occupied(entry) => {
                        *replaced = true;
                        *entry.get() as usize
                    }
                    Entry::Vacant(entry) => {
                        let slot = self.free.pop().map_or_else(
                            || {
                                next_new += 1;
                                next_new - 1
                            },
                            |slot| slot as usize,
                        );
                        entry.insert(slot_u32(slot));
                        slot
                    }
                })
            })
            .collect();
        self.rows.reserve(next_new - self.rows.len());
        for (row, slot) in rows.into_iter().zip(slots) {
            let (Some(row), Some(slot)) = (row, slot) else { continue };
            // New slots come in order, each right after the ones before.
            match self.rows.get_mut(slot) {
                Some(cell) => *cell = Some(row),
                None => {
                    debug_assert_eq!(slot, self.rows.len(), "a new slot right after the last");
                    self.rows.push(Some(row));
                }
            }
        }
        replaced
    }

    /// Removes the row with this id; returns it.
    pub fn remove(&mut self, id: &str) -> Option<Row> {
        let slot = self.by_id.remove(id)?;
        let old = self.rows.get_mut(slot as usize)?.take()?;
        if self.tree_kept_up_to_date() {
            let old = TreePoint::new(old.location.to_unit_vector(), slot);
            self.change_tree(|tree| {
                tree.remove(&old);
            });
        }
        self.free.push(slot);
        Some(old)
    }

    /// The row with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Row> {
        self.row(*self.by_id.get(id)?)
    }

    /// The row in a slot.
    #[must_use]
    pub fn row(&self, slot: u32) -> Option<&Row> {
        self.rows.get(slot as usize)?.as_ref()
    }

    /// Every live row, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().flatten()
    }

    /// Slots in increasing chord distance from a unit vector, with the squared chord.
    pub fn nearest_iter(&self, unit: [f64; 3]) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.tree().nearest_neighbor_iter_with_distance_2(&unit).map(|(p, d2)| (p.data, d2))
    }

    /// Slots whose unit vector is within a squared chord distance of `unit`.
    pub fn within_chord2(&self, unit: [f64; 3], chord2: f64) -> impl Iterator<Item = u32> + '_ {
        self.tree().locate_within_distance(unit, chord2).map(|p| p.data)
    }

    /// Slots whose unit vector lies in a 3D box.
    pub fn in_box(&self, b: &Aabb3) -> impl Iterator<Item = u32> + '_ {
        self.tree().locate_in_envelope(&AABB::from_corners(b.min, b.max)).map(|p| p.data)
    }
}

/// The tree of every live row in a slab.
fn tree_of(rows: &[Option<Row>]) -> RTree<TreePoint> {
    let points = rows
        .iter()
        .enumerate()
        .filter_map(|(slot, row)| {
            Some(TreePoint::new(row.as_ref()?.location.to_unit_vector(), slot_u32(slot)))
        })
        .collect();
    bulk_load_balanced(points)
}

/// `RTree::bulk_load`, but always a tree that takes inserts. rstar 0.12's bulk load leaves
/// leaves at different depths for some sizes (49–55, 385–447, 3,097–3,582, 24,631–28,608,
/// about 197,000–229,000 points, …; georust/rstar#239), and a later `insert` into such a tree
/// panics ("This is a bug in rstar"). So the tree is checked, and when it is uneven a prefix
/// of 7/8, 1/2, 1/4 … of the points is bulk-loaded until one comes out even, and the rest is
/// inserted one by one (inserts keep a tree even).
fn bulk_load_balanced(points: Vec<TreePoint>) -> RTree<TreePoint> {
    let tree = RTree::bulk_load(points);
    if leaves_at_one_depth(tree.root()) {
        return tree;
    }
    let points: Vec<TreePoint> = tree.iter().copied().collect();
    let mut prefix = points.len() - points.len() / 8;
    loop {
        let mut tree = RTree::bulk_load(points.get(..prefix).unwrap_or_default().to_vec());
        if leaves_at_one_depth(tree.root()) {
            for &p in points.get(prefix..).unwrap_or_default() {
                tree.insert(p);
            }
            return tree;
        }
        prefix /= 2;
    }
}

/// Whether every leaf under `root` is at the same depth.
fn leaves_at_one_depth(root: &ParentNode<TreePoint>) -> bool {
    fn walk(node: &ParentNode<TreePoint>, depth: usize, leaf_depth: &mut Option<usize>) -> bool {
        node.children().iter().all(|child| match child {
            RTreeNode::Leaf(_) => *leaf_depth.get_or_insert(depth) == depth,
            RTreeNode::Parent(p) => walk(p, depth + 1, leaf_depth),
        })
    }
    walk(root, 0, &mut None)
}

fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u32) -> Row {
        let lat = f64::from(i % 170) - 85.0 + f64::from(i) * 1e-6;
        let lon = f64::from((i * 7) % 359) - 179.5;
        Row {
            id: format!("r{i}").into(),
            location: LatLon::new(lat, lon).unwrap(),
            cell: 0,
            numbers: Vec::new().into(),
            categories: Vec::new().into(),
            pointer: OpPointer { segment: 1, offset: 0, index: 0 },
            lsn: 1,
            key_id: None,
        }
    }

    /// Every slot is a live row the id map names, or free, once.
    fn slots_accounted(t: &MemoryTable) -> bool {
        let mut free = t.free.clone();
        free.sort_unstable();
        let live: Vec<u32> = (0..t.rows.len() as u32).filter(|s| !free.contains(s)).collect();
        free.windows(2).all(|w| w[0] < w[1])
            && free.iter().all(|&s| t.rows[s as usize].is_none())
            && live.len() == t.by_id.len()
            && live
                .iter()
                .all(|&s| t.rows[s as usize].as_ref().is_some_and(|r| t.by_id.get(&r.id) == Some(&s)))
    }

    /// `upsert_all` gives what `upsert` of each row gives, in a bulk phase and out of one
    /// (with a tree kept up to date), with refused rows and ids repeated within the rows
    /// and from before; every slot stays accounted for, and freed ones are used again.
    #[test]
    fn upsert_all_is_upsert_of_each_row() {
        // In a bulk phase, with a tree kept up to date, and with neither (no query yet).
        // Few freed slots (fewer than new ids) and many (more).
        for (bulk, tree, freed) in
            [(true, false, 7), (false, true, 7), (false, false, 7), (true, false, 1), (false, false, 1)]
        {
            let mode = format!("bulk: {bulk}, tree: {tree}, every {freed} freed");
            let (mut one, mut all) = (MemoryTable::new(), MemoryTable::new());
            for t in [&mut one, &mut all] {
                for i in 0..300 {
                    t.upsert(row(i));
                }
                // Freed slots, used first.
                for i in (0..300).step_by(freed) {
                    t.remove(&format!("r{i}"));
                }
                if bulk {
                    t.begin_bulk();
                }
                if tree {
                    t.tree();
                }
            }
            let rows: Vec<Option<Row>> = (0..400u32)
                .map(|i| (i % 13 != 0).then(|| Row { lsn: u64::from(i), ..row(i % 170) }))
                .collect();
            let replaced_one: Vec<bool> =
                rows.iter().map(|r| r.as_ref().is_some_and(|r| one.upsert(r.clone()).is_some())).collect();
            assert_eq!(all.upsert_all(rows), replaced_one, "{mode}");
            let live = |t: &MemoryTable| {
                let mut rows: Vec<(String, u64)> = t.rows().map(|r| (r.id.to_string(), r.lsn)).collect();
                rows.sort();
                rows
            };
            assert_eq!(live(&all), live(&one), "{mode}");
            // The same slots as `upsert` gives, so replay (one operation at a time) lays the
            // rows out as the commit did.
            let layout = |t: &MemoryTable| {
                (
                    t.rows.iter().map(|r| r.as_ref().map(|r| (r.id.clone(), r.lsn))).collect::<Vec<_>>(),
                    t.free.clone(),
                )
            };
            assert_eq!(layout(&all), layout(&one), "{mode}");
            assert!(slots_accounted(&all), "{mode}");
            if tree {
                // The tree kept up to date holds every live row, each once.
                let mut in_tree: Vec<u32> = all.tree().iter().map(|p| p.data).collect();
                in_tree.sort_unstable();
                let mut slots: Vec<u32> = all.by_id.values().copied().collect();
                slots.sort_unstable();
                assert_eq!(in_tree, slots);
            }
            let slots = all.rows.len();
            for i in 1_000..1_000 + all.free.len() as u32 {
                all.upsert(row(i));
            }
            assert_eq!(all.rows.len(), slots, "freed slots are used again; {mode}");
            assert!(slots_accounted(&all), "{mode}");
            all.finish_bulk();
            assert_eq!(all.tree().size(), all.len(), "{mode}");
        }
    }

    /// `query::nearest` is public and takes any `k`: a huge one used to size its heap by it
    /// (capacity overflow panic, or an abort on a failed allocation).
    #[test]
    fn nearest_takes_any_k() {
        let mut t = MemoryTable::new();
        for i in 0..3 {
            t.upsert(row(i));
        }
        let view = crate::index::view::TableView { tail: &t, base: None };
        let all = crate::query::CompiledFilter::all();
        let at = LatLon::new(0.0, 0.0).unwrap();
        for k in [usize::MAX, usize::MAX / 2, 1 << 40] {
            assert_eq!(crate::query::nearest(view, at, k, &all).len(), 3, "k = {k}");
        }
        assert!(crate::query::nearest(view, at, 0, &all).is_empty());
    }

    /// Bulk loads of the sizes where rstar's own comes out uneven, then inserts, updates and
    /// removes: no panic, every leaf at one depth, every row found by the tree.
    #[test]
    fn a_bulk_loaded_table_takes_inserts_at_every_size() {
        for n in [0u32, 1, 48, 49, 52, 55, 56, 385, 400, 447, 3_097, 3_300, 3_582, 24_631, 26_000] {
            let mut t = MemoryTable::new();
            t.begin_bulk();
            for i in 0..n {
                t.upsert(row(i));
            }
            t.finish_bulk();
            assert!(leaves_at_one_depth(t.tree().root()), "{n} rows bulk-loaded");
            for i in n..n + 300 {
                t.upsert(row(i));
            }
            for i in (0..n).step_by(3) {
                t.remove(&format!("r{i}"));
            }
            for i in (1..n).step_by(5) {
                t.upsert(Row { location: LatLon::new(1.0, 2.0).unwrap(), ..row(i) });
            }
            assert!(leaves_at_one_depth(t.tree().root()), "{n} rows after writes");
            assert_eq!(t.tree().size(), t.len(), "{n} rows");
        }
    }

    /// After a bulk phase the tree is built by the first query, from the rows as writes left
    /// them (writes leave an unbuilt tree unbuilt, and change a built one); a second bulk
    /// phase over a built tree replaces it.
    #[test]
    fn the_tree_after_a_bulk_phase_is_built_by_its_first_use() {
        let found = |t: &MemoryTable, i: u32| {
            let unit = t.get(&format!("r{i}")).unwrap().location.to_unit_vector();
            t.within_chord2(unit, 1e-18).any(|slot| t.row(slot).is_some_and(|r| *r.id == *format!("r{i}")))
        };
        let mut t = MemoryTable::new();
        t.begin_bulk();
        for i in 0..5_000 {
            t.upsert(row(i));
        }
        t.finish_bulk();
        assert!(t.tree.get().is_none(), "no query yet: no tree");
        // Writes first: they leave it unbuilt, and the first query builds it from the rows
        // as the writes left them.
        t.upsert(row(5_000));
        t.remove("r7");
        t.upsert(Row { location: LatLon::new(3.0, 4.0).unwrap(), ..row(8) });
        assert!(t.tree.get().is_none(), "writes do not build it");
        assert_eq!(t.tree().size(), t.len());
        assert!((0..=5_000).filter(|&i| i != 7).all(|i| found(&t, i)));
        // Writes to a built tree change it.
        t.upsert(row(5_001));
        t.remove("r9");
        t.upsert(Row { location: LatLon::new(-3.0, -4.0).unwrap(), ..row(10) });
        assert_eq!(t.tree().size(), t.len());
        assert!((0..=5_001).filter(|&i| i != 7 && i != 9).all(|i| found(&t, i)));
        // A bulk phase that moves every row: the built tree must not survive it.
        t.begin_bulk();
        for i in 0..5_000 {
            t.upsert(Row { location: LatLon::new(-10.0, f64::from(i) * 1e-3).unwrap(), ..row(i) });
        }
        t.finish_bulk();
        assert!((0..5_000).all(|i| found(&t, i)), "queries see the moved rows");
        assert_eq!(t.tree().size(), t.len());
    }
}
