//! Applying long runs of upserts on every core.
//!
//! A commit's operations are applied in order, one at a time, under the state's write lock
//! ([`State::apply`](super::state::State::apply)). For a long run of upserts into one collection (an import's million)
//! that took 0.4–0.6 s on one thread, most of it putting the rows into the table one at a
//! time. Here each upsert's row is built on every core first ([`PreparedUpserts`]); the
//! checkpoint rows the run replaces are hidden in one loop, and the rows go into the table in
//! two ([`MemoryTable::upsert_all`](crate::index::MemoryTable::upsert_all): their slots settled through the id map, then the rows
//! moved in), so the result is the one the serial apply gives, code for code and slot for
//! slot.
//!
//! A batch that creates a collection and then upserts a long run into it (an import into a
//! new collection) goes further: the collection is built whole, from the operations alone, on
//! a thread of its own while the leader writes and syncs the batch
//! ([`PreparedCollection::spawn`]). Nothing of it is visible until the batch is applied, when
//! it takes the place of the collection the batch's creation made.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use super::ops::{LogOp, StoredRecord};
use super::state::{CategoryDict, CheckpointJournal, CollectionState};
use crate::geo::LatLon;
use crate::index::{Checkpoint, OpPointer, Row};
use crate::query::MISSING_CODE;

/// Upserts in a row on one collection from which applying builds their rows on every core.
pub(super) const PARALLEL_APPLY_MIN: usize = 16_384;

/// What runs of operations are cut by: whether an operation is an upsert, and its
/// collection (`None` for a collection's creation).
pub(super) fn run_key(op: &LogOp) -> Option<(bool, &str)> {
    match op {
        LogOp::Upsert(StoredRecord { collection, .. }) => Some((true, collection.as_str())),
        LogOp::Delete { collection, .. } | LogOp::Erase { collection, .. } => {
            Some((false, collection.as_str()))
        }
        LogOp::CreateCollection { .. } | LogOp::EnsureCollection { .. } => None,
    }
}

/// The maximal runs of operations with one [`run_key`], in order, covering `ops`; found on
/// every core (each comparison reads two collection names written long before).
pub(super) fn runs_of(ops: &[LogOp]) -> Vec<Range<usize>> {
    let starts = crate::parallel::ranges(ops.len(), PARALLEL_APPLY_MIN, |range| {
        range
            .filter(|&i| i == 0 || ops.get(i - 1).map(run_key) != ops.get(i).map(run_key))
            .collect::<Vec<usize>>()
    });
    let starts: Vec<usize> = starts.into_iter().flatten().collect();
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(ops.len()));
    starts.iter().zip(ends).map(|(&start, end)| start..end).collect()
}

/// Part of a run of upserts on one collection, made ready to apply: each upsert's row
/// (`None` where [`State::apply`](super::state::State::apply) refuses it) and the checkpoint
/// row its id replaces. Category codes are indexes into `values`, the part's own dictionary,
/// until [`PreparedUpserts::recode`].
pub(super) struct PreparedUpserts<'a> {
    rows: Vec<Option<Row>>,
    /// Each row's checkpoint row, by the same index; empty without a checkpoint.
    base_rows: Vec<Option<u32>>,
    /// Per category field, the values in the order they first appear in the part.
    values: Vec<Vec<&'a str>>,
}

impl<'a> PreparedUpserts<'a> {
    /// The rows of `ops` (upserts; anything else is refused) on every core, as contiguous
    /// parts in order. `ops[i]` is at `pointers[i]` in the log (every row gets
    /// [`UNKNOWN_POINTER`] without them) with LSN `first_lsn + i`; `checkpoint` is the
    /// collection's, and `fields` its number of category fields.
    pub(super) fn parts(
        ops: &'a [LogOp],
        pointers: Option<&[OpPointer]>,
        first_lsn: u64,
        fields: usize,
        checkpoint: Option<&Checkpoint>,
    ) -> Vec<PreparedUpserts<'a>> {
        crate::parallel::ranges(ops.len(), PARALLEL_APPLY_MIN, |range| {
            let pointers = pointers.map(|p| p.get(range.clone()).unwrap_or_default());
            let lsn = first_lsn + range.start as u64;
            PreparedUpserts::new(ops.get(range).unwrap_or_default(), pointers, lsn, fields, checkpoint)
        })
    }

    fn new(
        ops: &'a [LogOp],
        pointers: Option<&[OpPointer]>,
        first_lsn: u64,
        fields: usize,
        checkpoint: Option<&Checkpoint>,
    ) -> Self {
        let mut values: Vec<Vec<&'a str>> = vec![Vec::new(); fields];
        let mut codes: Vec<HashMap<&'a str, u32, ahash::RandomState>> = vec![HashMap::default(); fields];
        let mut code_of = |field: usize, value: &'a str| -> u32 {
            let (Some(values), Some(codes)) = (values.get_mut(field), codes.get_mut(field)) else {
                return MISSING_CODE;
            };
            *codes.entry(value).or_insert_with(|| {
                values.push(value);
                u32::try_from(values.len() - 1).unwrap_or(MISSING_CODE)
            })
        };
        let rows = (ops.iter().enumerate().zip(first_lsn..))
            .map(|((i, op), lsn)| {
                let LogOp::Upsert(r) = op else { return None };
                let pointer =
                    pointers.map_or(UNKNOWN_POINTER, |p| p.get(i).copied().unwrap_or(UNKNOWN_POINTER));
                row_of(r, pointer, lsn, &mut code_of)
            })
            .collect();
        let base_rows = match checkpoint {
            Some(checkpoint) => ops
                .iter()
                .map(|op| match op {
                    LogOp::Upsert(r) => checkpoint.find(&r.id),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        PreparedUpserts { rows, base_rows, values }
    }

    /// Turns the rows' category codes into the dictionary's, interning the part's values
    /// (in the order they first appear, so every code is the one a serial apply gives).
    fn codes_in(&self, dict: &mut CategoryDict) -> Vec<Vec<u32>> {
        (self.values.iter().enumerate())
            .map(|(field, values)| values.iter().map(|v| dict.intern(field, v)).collect())
            .collect()
    }

    /// Puts `codes[field][local]` in place of each row's local codes.
    fn recode(&mut self, codes: &[Vec<u32>]) {
        for row in self.rows.iter_mut().flatten() {
            for (code, field_codes) in row.categories.iter_mut().zip(codes) {
                *code = field_codes.get(*code as usize).copied().unwrap_or(MISSING_CODE);
            }
        }
    }
}

/// The row an upsert of `r` puts in its table, its category values coded by
/// `code_of(field, value)`; `None` for a location no row may have (applying refuses it).
pub(super) fn row_of<'a>(
    r: &'a StoredRecord,
    pointer: OpPointer,
    lsn: u64,
    mut code_of: impl FnMut(usize, &'a str) -> u32,
) -> Option<Row> {
    let location = LatLon::new(r.lat, r.lon).ok()?;
    let categories = (r.categories.iter().enumerate())
        .map(|(field, v)| v.as_deref().map_or(MISSING_CODE, |v| code_of(field, v)))
        .collect();
    Some(Row {
        id: r.id.as_str().into(),
        location,
        cell: r.cell,
        numbers: r.numbers.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
        categories,
        pointer,
        lsn,
        key_id: r.key_id,
    })
}

/// The log position of a row prepared before its batch was written; replaced before the
/// row is visible ([`MemoryTable::repoint`](crate::index::MemoryTable::repoint)).
const UNKNOWN_POINTER: OpPointer = OpPointer { segment: u64::MAX, offset: u64::MAX, index: u32::MAX };

/// Puts the prepared `parts` of the upserts `ops` into collection `name`, in order, as
/// [`State::apply`](super::state::State::apply) of each would: each part's category values
/// are interned first (in the order they first appear, so every code is the one a serial
/// apply gives). Returns how many replaced a live row.
pub(super) fn insert_prepared(
    c: &mut CollectionState,
    journal: Option<&mut CheckpointJournal>,
    name: &str,
    ops: &[LogOp],
    mut parts: Vec<PreparedUpserts<'_>>,
) -> u64 {
    // The values are interned part by part, in order; each part's rows are recoded on a
    // core of their own.
    let codes: Vec<Vec<Vec<u32>>> = parts.iter().map(|part| part.codes_in(&mut c.dict)).collect();
    let mut with_codes: Vec<_> = parts.iter_mut().zip(&codes).collect();
    crate::parallel::for_each_mut(&mut with_codes, |(part, codes)| part.recode(codes));
    // A checkpoint being built journals each upsert's id, in order, refused or not, as
    // `apply` does; nothing it records depends on the table, so it comes first.
    if let Some(journal) = journal {
        for op in ops {
            if let LogOp::Upsert(r) = op {
                journal.touch(name, &r.id);
            }
        }
    }
    // The checkpoint rows the run replaces are hidden in one loop, then the rows go into the
    // table all at once (neither depends on the other).
    let mut replaced = 0;
    for part in parts {
        let mut in_base = vec![false; part.rows.len()];
        if let Some(base) = &mut c.base {
            let len = base.checkpoint.len();
            for ((hid, row), base_row) in in_base.iter_mut().zip(&part.rows).zip(&part.base_rows) {
                if let (Some(_), Some(base_row)) = (row, base_row) {
                    *hid = base.hidden.hide(*base_row, len);
                }
            }
        }
        let in_table = c.table.upsert_all(part.rows);
        replaced += in_base.iter().zip(&in_table).filter(|&(&base, &table)| base || table).count() as u64;
    }
    replaced
}

/// A collection a batch creates, built with the run of upserts into it that follows its
/// creation, on a thread of its own while the batch is written.
#[derive(Debug)]
pub(crate) struct PreparedCollection {
    /// Index of the batch's `CreateCollection` operation.
    pub create_at: usize,
    /// The upserts the collection holds: the operations right after its creation.
    pub run: Range<usize>,
    /// The collection as applying the creation and the run makes it.
    pub collection: CollectionState,
    /// How many of the run's upserts replaced an earlier one of the run.
    pub replaced: u64,
}

impl PreparedCollection {
    /// Starts building the first collection `ops` creates that the next
    /// [`PARALLEL_APPLY_MIN`] or more operations upsert into, when there is one and a thread
    /// can be started. `ops[i]` gets LSN `first_lsn + i`; the rows' log positions are
    /// received from `pointers` once the batch is written (one per operation). The thread
    /// gives `None` when they never come (the batch failed: it stops early if it learns so
    /// before putting the rows in), or when they leave a row without one.
    pub(crate) fn spawn(
        ops: &Arc<Vec<LogOp>>,
        first_lsn: u64,
        pointers: Receiver<Arc<Vec<OpPointer>>>,
    ) -> Option<std::thread::JoinHandle<Option<PreparedCollection>>> {
        // A batch past the end of the LSN space is refused by the log.
        if ops.len() <= PARALLEL_APPLY_MIN || first_lsn.checked_add(ops.len() as u64).is_none() {
            return None;
        }
        let (create_at, name, run) = ops.iter().enumerate().find_map(|(i, op)| {
            let LogOp::CreateCollection { name, .. } = op else { return None };
            let run_len = ops.get(i + 1..)?.iter().take_while(|op| run_key(op) == Some((true, name))).count();
            (run_len >= PARALLEL_APPLY_MIN).then(|| (i, name.clone(), i + 1..i + 1 + run_len))
        })?;
        let ops = Arc::clone(ops);
        let build = move || {
            let prepared = PreparedCollection::build(&ops, create_at, &name, run, first_lsn, &pointers);
            // The batch's operations go back to the leader whole, to be applied and freed.
            drop(ops);
            prepared
        };
        std::thread::Builder::new().name("geocrm-prepare".into()).spawn(build).ok()
    }

    fn build(
        ops: &[LogOp],
        create_at: usize,
        name: &str,
        run: Range<usize>,
        first_lsn: u64,
        pointers: &Receiver<Arc<Vec<OpPointer>>>,
    ) -> Option<PreparedCollection> {
        let Some(LogOp::CreateCollection { schema, .. }) = ops.get(create_at) else { return None };
        let run_ops = ops.get(run.clone())?;
        let mut collection = CollectionState::empty(schema);
        collection.table.begin_bulk();
        collection.table.reserve(run_ops.len());
        let fields = schema.category_fields().len();
        let parts = PreparedUpserts::parts(run_ops, None, first_lsn + run.start as u64, fields, None);
        // Not put in (the longest part) for a batch that failed meanwhile.
        let written = match pointers.try_recv() {
            Ok(pointers) => Some(pointers),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => None,
        };
        let replaced = insert_prepared(&mut collection, None, name, run_ops, parts);
        let pointers = match written {
            Some(pointers) => pointers,
            None => pointers.recv().ok()?,
        };
        let pointer_of = |lsn: u64| pointers.get(usize::try_from(lsn.checked_sub(first_lsn)?).ok()?).copied();
        collection.table.repoint(pointer_of).then_some(PreparedCollection {
            create_at,
            run,
            collection,
            replaced,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;
    use crate::db::sealed_slots::SealedSlots;
    use crate::db::state::State;
    use crate::model::Schema;

    const RUN: usize = PARALLEL_APPLY_MIN + 3_000;

    fn schema() -> Schema {
        Schema::new().number("n").category("tier").category("region")
    }

    /// Upserts into `collection` with ids drawn from `ids` ids (so some repeat), from
    /// `seed`; every 997th has a latitude no row may have, which applying refuses.
    fn upserts(collection: &str, count: usize, ids: u64, seed: u64) -> Vec<LogOp> {
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
        (0..count)
            .map(|i| {
                let tier =
                    ["gold", "silver", "bronze", "tin"].get(next() as usize % 5).map(|v| (*v).to_owned());
                let region = (next() % 3 != 0).then(|| format!("r{}", next() % 50));
                LogOp::Upsert(StoredRecord {
                    collection: collection.to_owned(),
                    id: format!("c-{}", next() % ids),
                    lat: if i % 997 == 5 { f64::NAN } else { (next() % 170) as f64 - 85.0 },
                    lon: (next() % 360) as f64 - 180.0,
                    cell: next(),
                    numbers: vec![(next() % 4 != 0).then(|| next() as f64 / 7.0)],
                    categories: vec![tier, region],
                    key_id: (next() % 5 == 0).then(&mut next),
                    pii: SealedSlots::unset(0),
                    blind: Vec::new(),
                })
            })
            .collect()
    }

    fn create(name: &str) -> LogOp {
        LogOp::CreateCollection { name: name.to_owned(), schema: schema() }
    }

    fn pointers(n: usize, salt: u64) -> Vec<OpPointer> {
        (0..n).map(|i| OpPointer { segment: salt, offset: i as u64 * 31, index: (i % 7) as u32 }).collect()
    }

    /// Everything a query or a checkpoint reads of a collection: its rows by id (category
    /// values decoded), its dictionary in code order, and the ids the journal holds.
    fn dump(state: &State) -> Vec<String> {
        let mut out = Vec::new();
        for (name, c) in &state.collections {
            let mut rows: Vec<String> = c
                .table
                .rows()
                .map(|r| {
                    let categories: Vec<Option<&str>> =
                        r.categories.iter().enumerate().map(|(f, &code)| c.dict.value(f, code)).collect();
                    let numbers: Vec<u64> = r.numbers.iter().map(|v| v.to_bits()).collect();
                    format!(
                        "{name} {} {:?} {} {numbers:?} {:?} {categories:?} {:?} {} {:?}",
                        r.id, r.location, r.cell, r.categories, r.pointer, r.lsn, r.key_id
                    )
                })
                .collect();
            rows.sort();
            out.extend(rows);
            out.push(format!("{name} dict {:?} len {}", c.dict.to_values(), c.table.len()));
        }
        if let Some(journal) = &state.building {
            let mut touched: Vec<_> = journal.touched.iter().collect();
            touched.sort();
            out.push(format!("touched {touched:?}"));
        }
        out
    }

    /// `ops` applied one at a time, as replay applies them; the state and the replaced count.
    fn one_at_a_time(state: &mut State, ops: &[LogOp], pointers: &[OpPointer], first_lsn: u64) -> u64 {
        (ops.iter().zip(pointers).zip(first_lsn..))
            .map(|((op, p), lsn)| u64::from(state.apply(op, *p, lsn)))
            .sum()
    }

    /// The collection built for `ops`, its log positions sent once the rows are in (or, for
    /// `early`, before the thread starts: both ways the thread may learn of them).
    fn prepared_with(
        ops: &Arc<Vec<LogOp>>,
        pointers: &[OpPointer],
        first_lsn: u64,
        early: bool,
    ) -> Option<PreparedCollection> {
        let (send, receive) = channel();
        if early {
            send.send(Arc::new(pointers.to_vec())).unwrap();
        }
        let handle = PreparedCollection::spawn(ops, first_lsn, receive)?;
        if !early {
            std::thread::sleep(std::time::Duration::from_millis(50));
            send.send(Arc::new(pointers.to_vec())).unwrap();
        }
        handle.join().unwrap()
    }

    fn prepared(ops: &Arc<Vec<LogOp>>, pointers: &[OpPointer], first_lsn: u64) -> Option<PreparedCollection> {
        prepared_with(ops, pointers, first_lsn, false)
    }

    #[test]
    fn a_created_collection_built_aside_is_the_one_applying_its_run_makes() {
        // A creation after other operations, its run (with repeated and refused ids), then
        // more operations on it; with and without a checkpoint being built.
        let mut ops = vec![create("other")];
        ops.extend(upserts("other", 3, 3, 4));
        ops.push(create("c"));
        ops.extend(upserts("c", RUN, RUN as u64 / 2, 1));
        ops.push(LogOp::Delete { collection: "c".into(), id: "c-7".into() });
        ops.extend(upserts("c", 50, RUN as u64, 2));
        ops.extend(upserts("other", 10, 5, 3));
        let pointers = pointers(ops.len(), 9);
        let first_lsn = 1_000;
        for (building, early) in [(false, false), (true, false), (false, true)] {
            let journal = || building.then(CheckpointJournal::default);
            let mut serial = State { building: journal(), ..State::default() };
            let serial_replaced = one_at_a_time(&mut serial, &ops, &pointers, first_lsn);
            assert!(serial_replaced > 1_000, "the run repeats ids");

            let shared = Arc::new(ops.clone());
            let built =
                prepared_with(&shared, &pointers, first_lsn, early).expect("a collection is prepared");
            assert_eq!((built.create_at, built.run.clone()), (4, 5..5 + RUN));
            let mut bulk = State { building: journal(), ..State::default() };
            let bulk_replaced =
                bulk.apply_all(Arc::try_unwrap(shared).unwrap(), &pointers, first_lsn, Some(built));
            assert_eq!(bulk_replaced, serial_replaced, "building: {building}");
            assert_eq!(dump(&bulk), dump(&serial), "building: {building}");
        }
    }

    #[test]
    fn applying_puts_the_prepared_collection_in_place() {
        // One the run would not make shows in the state: the run is not applied again. (Its
        // creation second in a run of creations, after other operations.)
        let ops: Vec<LogOp> = [create("other")]
            .into_iter()
            .chain(upserts("other", 3, 3, 12))
            .chain([create("d"), create("c")])
            .chain(upserts("c", RUN, RUN as u64, 13))
            .collect();
        let pointers = pointers(ops.len(), 3);
        let shared = Arc::new(ops);
        let mut built = prepared(&shared, &pointers, 1).expect("a collection is prepared");
        let gone = built.collection.table.rows().next().map(|r| r.id.to_string()).unwrap();
        built.collection.table.remove(&gone);
        let mut state = State::default();
        state.apply_all(Arc::try_unwrap(shared).unwrap(), &pointers, 1, Some(built));
        let c = state.collections.get("c").unwrap();
        assert!(c.table.get(&gone).is_none());
        assert!(c.table.len() > RUN / 2);
    }

    #[test]
    fn nothing_is_prepared_for_a_short_run_or_an_existing_collection() {
        // A run one short, in a batch long enough.
        let short: Vec<LogOp> = std::iter::once(create("c"))
            .chain(upserts("c", PARALLEL_APPLY_MIN - 1, 100, 4))
            .chain(upserts("d", 5_000, 100, 4))
            .collect();
        assert!(prepared(&Arc::new(short), &pointers(PARALLEL_APPLY_MIN + 5_000, 1), 1).is_none());
        let existing = upserts("c", RUN, 100, 5);
        assert!(prepared(&Arc::new(existing), &pointers(RUN, 1), 1).is_none());
        // The run must follow the creation at once.
        let apart: Vec<LogOp> =
            [create("c"), create("d")].into_iter().chain(upserts("c", RUN, 100, 6)).collect();
        assert!(prepared(&Arc::new(apart), &pointers(RUN + 2, 1), 1).is_none());
        // Nor for a batch past the end of the LSN space.
        let ops: Vec<LogOp> = std::iter::once(create("c")).chain(upserts("c", RUN, 100, 7)).collect();
        assert!(prepared(&Arc::new(ops), &pointers(RUN + 1, 1), u64::MAX - 100).is_none());
    }

    #[test]
    fn a_failed_batch_gives_no_prepared_collection() {
        let ops: Vec<LogOp> = std::iter::once(create("c")).chain(upserts("c", RUN, 100, 7)).collect();
        let (send, receive) = channel::<Arc<Vec<OpPointer>>>();
        let handle = PreparedCollection::spawn(&Arc::new(ops), 1, receive).unwrap();
        drop(send);
        assert!(handle.join().unwrap().is_none());
        // Log positions for fewer operations than the run leave rows without one.
        let ops: Vec<LogOp> = std::iter::once(create("c")).chain(upserts("c", RUN, RUN as u64, 8)).collect();
        assert!(prepared(&Arc::new(ops), &pointers(RUN - 10, 1), 1).is_none());
    }

    #[test]
    fn a_long_run_into_an_existing_collection_applies_as_one_at_a_time() {
        // With rows already (some ids repeat), with and without a checkpoint being built.
        for building in [false, true] {
            let mut states = [State::default(), State::default()];
            let earlier: Vec<LogOp> =
                std::iter::once(create("c")).chain(upserts("c", 5_000, 4_000, 10)).collect();
            for state in &mut states {
                one_at_a_time(state, &earlier, &pointers(earlier.len(), 1), 1);
                if building {
                    state.building = Some(CheckpointJournal::default());
                }
            }
            let ops: Vec<LogOp> =
                upserts("c", RUN, 30_000, 11).into_iter().chain(upserts("d", 3, 3, 12)).collect();
            let [serial, bulk] = &mut states;
            let pointers = pointers(ops.len(), 2);
            let serial_replaced = one_at_a_time(serial, &ops, &pointers, 50_000);
            let bulk_replaced = bulk.apply_all(ops, &pointers, 50_000, None);
            assert_eq!(bulk_replaced, serial_replaced, "building: {building}");
            assert_eq!(dump(bulk), dump(serial), "building: {building}");
        }
    }
}
