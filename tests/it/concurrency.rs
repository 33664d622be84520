//! One writer, several readers and a thread taking checkpoints and compactions, for a bounded
//! time: a reader never sees half of a commit (every record of a commit carries its number,
//! and the sum over all records is consistent inside one snapshot), answers never go
//! backwards, readers keep answering during checkpoints and compactions, nothing deadlocks.
//!
//! `GEOCRM_SOAK_SECS` sets the duration (default 3 s).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Durability, Filter, LatLon, Options, Record, Schema};

const GROUP: usize = 12;

fn soak_secs() -> u64 {
    std::env::var("GEOCRM_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

#[test]
fn readers_never_see_half_a_commit_during_checkpoints_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new()
        .durability(Durability::GroupCommit { max_wait: Duration::from_micros(200) })
        .checkpoint_after_ops(Some(500));
    let db = Database::open(dir.path(), options).unwrap();
    db.create_collection("c", Schema::new().number("v")).unwrap();
    let points: Vec<LatLon> =
        (0..GROUP).map(|i| LatLon::new(-60.0 + 10.0 * i as f64, -170.0 + 29.0 * i as f64).unwrap()).collect();
    let commit = |v: u64| {
        let mut b = db.begin_write();
        for (i, p) in points.iter().enumerate() {
            b.upsert("c", Record::new(format!("g{i}"), *p).number("v", v as f64)).unwrap();
        }
        b.commit().unwrap();
    };
    commit(0);
    let stop = AtomicBool::new(false);
    let committed = AtomicU64::new(0);
    let (reads, maintenance) = (AtomicU64::new(0), AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(soak_secs());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut v = 0;
            while Instant::now() < deadline {
                v += 1;
                commit(v);
                committed.store(v, Ordering::SeqCst);
            }
            stop.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                if n.is_multiple_of(4) {
                    db.compact().unwrap()
                } else {
                    db.checkpoint().unwrap()
                };
                maintenance.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        for r in 0..3 {
            let (db, points, stop, reads, committed) = (&db, &points, &stop, &reads, &committed);
            s.spawn(move || {
                let mut last = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let floor = committed.load(Ordering::SeqCst);
                    let snap = db.read();
                    let c = snap.collection("c").unwrap();
                    assert_eq!(c.len(), GROUP);
                    let seen: Vec<u64> = (0..GROUP)
                        .map(|i| c.get(&format!("g{i}")).unwrap().unwrap().numbers["v"] as u64)
                        .collect();
                    let v = seen[0];
                    assert!(seen.iter().all(|&x| x == v), "reader {r} saw half a commit: {seen:?}");
                    assert!(
                        v >= last && v >= floor,
                        "reader {r} went backwards: {v} after {last} (floor {floor})"
                    );
                    last = v;
                    let sum = c.aggregate(Scope::All, &GroupBy::Nothing, &["v"], &Filter::All).unwrap();
                    assert_eq!(
                        sum.get(0).expect("one group").fields[0].sum,
                        (v * GROUP as u64) as f64,
                        "reader {r}: sum inside one snapshot"
                    );
                    let near = c.nearest(points[r], 1, &Filter::parse(&format!("v = {v}")).unwrap()).unwrap();
                    assert_eq!(near[0].id, format!("g{r}"));
                    drop(snap);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let (v, reads, maintenance) =
        (committed.load(Ordering::SeqCst), reads.into_inner(), maintenance.into_inner());
    assert!(v > 10 && reads > 10 && maintenance > 2, "commits {v}, reads {reads}, checkpoints {maintenance}");
    drop(db);
    let db = Database::open(dir.path(), Options::new()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().get("g3").unwrap().unwrap().numbers["v"] as u64, v);
}

/// Waits (on a thread that holds a snapshot of `db`; `stats` is safe there) until a writer
/// has logged its batch — counted just before it takes the state's write lock — and then a
/// little more, so that it waits for the lock by the time this returns.
fn wait_until_logged(db: &Database, logged_before: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().log_bytes_since_checkpoint == logged_before {
        assert!(Instant::now() < deadline, "the writer never logged its batch");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn stats_and_next_lsn_on_a_thread_holding_a_snapshot_do_not_wait_for_a_waiting_writer() {
    // The writer waits for the snapshot; with a plain (fair) read lock, stats and next_lsn
    // then waited for the writer: a deadlock. (Unscoped threads: a deadlock fails the test
    // instead of hanging it.)
    let dir = tempfile::tempdir().unwrap();
    // No fsync: the writer goes from its log append straight to the state's write lock.
    let db = Database::open(dir.path(), Options::new().durability(Durability::NoSyncBulkLoad)).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let reader = db.clone();
    std::thread::spawn(move || {
        let snap = reader.read();
        let logged = reader.stats().log_bytes_since_checkpoint;
        held_tx.send(()).unwrap();
        wait_until_logged(&reader, logged);
        let stats = reader.stats();
        let next = reader.next_lsn();
        done_tx.send((stats.next_lsn, next)).unwrap();
        drop(snap);
    });
    held_rx.recv().unwrap();
    let writer = db.clone();
    let committed = std::thread::spawn(move || {
        let mut batch = writer.begin_write();
        batch.upsert("c", Record::new("a", LatLon::new(1.0, 1.0).unwrap())).unwrap();
        batch.commit().unwrap();
    });
    let got = done_rx.recv_timeout(Duration::from_secs(30));
    assert!(got.is_ok(), "stats / next_lsn waited for the writer behind the thread's own snapshot");
    committed.join().unwrap();
}

#[test]
fn a_second_snapshot_and_a_batch_on_a_thread_holding_one_do_not_wait_for_a_waiting_writer() {
    // A writer waiting for the first snapshot made a plain (fair) second read lock wait
    // behind it: taking a second snapshot, of this database or another, or building a batch
    // (which reads schemas), hung.
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    // No fsync: the writer goes from its log append straight to the state's write lock.
    let options = || Options::new().durability(Durability::NoSyncBulkLoad);
    let db = Database::open(dir.path(), options()).unwrap();
    let other = Database::open(other_dir.path(), options()).unwrap();
    db.create_collection("c", Schema::new().number("v")).unwrap();
    other.create_collection("c", Schema::new()).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let reader = db.clone();
    let other_reader = other.clone();
    std::thread::spawn(move || {
        let first = reader.read();
        let other_first = other_reader.read();
        let logged = [reader.stats(), other_reader.stats()].map(|s| s.log_bytes_since_checkpoint);
        held_tx.send(()).unwrap();
        wait_until_logged(&reader, logged[0]);
        wait_until_logged(&other_reader, logged[1]);
        let second = reader.read();
        let other_second = other_reader.read();
        assert_eq!(other_second.collection("c").unwrap().len(), 0);
        drop((other_first, other_second));
        let len = second.collection("c").unwrap().len();
        let mut batch = reader.begin_write();
        batch.upsert("c", Record::new("b", LatLon::new(2.0, 2.0).unwrap()).number("v", 1.0)).unwrap();
        // A large batch is checked on every core, reading no state there (a worker's read
        // would wait behind the writer: an earlier version looked ids up from the workers).
        let id = |i: u32| if i.is_multiple_of(1000) { format!(" m{i}") } else { format!("m{i}") };
        let many = (0..5_000).map(|i| Record::new(id(i), LatLon::new(2.0, 2.0).unwrap())).collect();
        assert_eq!(batch.upsert_many("c", many).unwrap().len(), 5);
        let refused = batch.commit();
        drop((first, second));
        done_tx.send((len, refused.map_err(|e| e.to_string()))).unwrap();
    });
    held_rx.recv().unwrap();
    let committed = [db.clone(), other.clone()].map(|writer| {
        std::thread::spawn(move || {
            let mut batch = writer.begin_write();
            batch.upsert("c", Record::new("a", LatLon::new(1.0, 1.0).unwrap())).unwrap();
            batch.commit().unwrap();
        })
    });
    let got = done_rx.recv_timeout(Duration::from_secs(40));
    let (len, refused) =
        got.expect("a second read on the thread waited for the writer behind its first snapshot");
    assert_eq!(len, 0, "the second snapshot saw the write waiting for the first");
    let refused = refused.expect_err("a commit behind the thread's own snapshot was not refused");
    assert!(refused.contains("commit would wait for the snapshot this thread holds"), "{refused}");
    for c in committed {
        c.join().unwrap();
    }
    assert_eq!(other.read().collection("c").unwrap().len(), 1);
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert!(c.get("a").unwrap().is_some());
    assert!(c.get("b").unwrap().is_none(), "the refused batch was applied");
}

#[test]
fn threads_holding_snapshots_of_two_databases_read_each_others_while_writers_wait() {
    // Each thread's plain read of the other database queued behind that database's writer,
    // which waited for the other thread's snapshot: a deadlock without any commit of theirs.
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let dbs = dirs.each_ref().map(|d| {
        let db = Database::open(d.path(), Options::new().durability(Durability::NoSyncBulkLoad)).unwrap();
        db.create_collection("c", Schema::new()).unwrap();
        db
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    for mine in 0..2 {
        let (db, theirs, done_tx, barrier) =
            (dbs[mine].clone(), dbs[1 - mine].clone(), done_tx.clone(), barrier.clone());
        std::thread::spawn(move || {
            let snap = db.read();
            let logged = db.stats().log_bytes_since_checkpoint;
            barrier.wait(); // both snapshots are held: the writers may start
            wait_until_logged(&db, logged);
            let len = theirs.read().collection("c").unwrap().len();
            drop(snap);
            done_tx.send(len).unwrap();
        });
    }
    barrier.wait();
    let writers = dbs.clone().map(|db| {
        std::thread::spawn(move || {
            let mut batch = db.begin_write();
            batch.upsert("c", Record::new("a", LatLon::new(1.0, 1.0).unwrap())).unwrap();
            batch.commit().unwrap();
        })
    });
    for _ in 0..2 {
        // (0 or 1: the other thread may have dropped its snapshot already)
        let len =
            done_rx.recv_timeout(Duration::from_secs(40)).expect("the two readers waited for each other");
        assert!(len <= 1);
    }
    for w in writers {
        w.join().unwrap();
    }
    assert!(dbs.iter().all(|db| db.read().collection("c").unwrap().len() == 1));
}

#[test]
fn operations_that_wait_for_snapshots_are_refused_on_a_thread_holding_one() {
    use geocrm::crypto::RawKey;
    use geocrm::Error;
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let key = || RawKey::new([7; 32]);
    let db = Database::open(dir.path(), Options::new().key(key())).unwrap();
    let other = Database::open(other_dir.path(), Options::new()).unwrap();
    db.create_collection("c", Schema::crm()).unwrap();
    other.create_collection("c", Schema::new()).unwrap();
    let mut batch = db.begin_write();
    batch.upsert("c", Record::new("a", LatLon::new(1.0, 1.0).unwrap()).pii("name", "Ada")).unwrap();
    batch.commit().unwrap();
    let lsn = db.next_lsn();
    let (tx, rx) = std::sync::mpsc::channel();
    let (db2, other2) = (db.clone(), other.clone());
    // On its own thread: before the fix the first call waited for itself forever.
    std::thread::spawn(move || {
        let (db, other) = (db2, other2);
        let snap = db.read();
        let nested = db.read(); // two snapshots: both must go before anything is allowed
        let mut refused = Vec::new();
        let mut note = |name: &str, r: geocrm::Result<()>| match r {
            Err(Error::SnapshotHeld { operation }) => refused.push(operation.to_owned()),
            other => refused.push(format!("{name}: not refused: {other:?}")),
        };
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new("b", LatLon::new(2.0, 2.0).unwrap())).unwrap();
        note("commit", batch.commit().map(drop));
        note("create_collection", db.create_collection("d", Schema::new()).map(drop));
        note("checkpoint", db.checkpoint().map(drop));
        note("compact", db.compact().map(drop));
        note("erase", db.erase("c", "a").map(drop));
        note("rotate", db.rotate_master_key(&RawKey::new([8; 32])));
        note("sync", db.sync());
        note("verify", db.verify().map(drop));
        drop(snap);
        note("commit with the nested snapshot", db.begin_write().commit().map(drop));
        // A snapshot of one database does not stop writes to another.
        let mut b = other.begin_write();
        b.upsert("c", Record::new("x", LatLon::new(3.0, 3.0).unwrap())).unwrap();
        let other_commit = b.commit().map(drop).map_err(|e| e.to_string());
        let still_reads = nested.collection("c").unwrap().len();
        drop(nested);
        let mut b = db.begin_write();
        b.upsert("c", Record::new("z", LatLon::new(4.0, 4.0).unwrap())).unwrap();
        let after = b.commit().map(drop).map_err(|e| e.to_string());
        tx.send((refused, other_commit, still_reads, after)).unwrap();
    });
    let (refused, other_commit, still_reads, after) =
        rx.recv_timeout(Duration::from_secs(30)).expect("an operation waited for its own thread's snapshot");
    assert_eq!(
        refused,
        [
            "commit",
            "commit",
            "checkpoint",
            "compaction",
            "erasure",
            "key rotation",
            "sync",
            "verify",
            "commit"
        ]
    );
    assert_eq!(other_commit, Ok(()));
    assert_eq!(still_reads, 1);
    assert_eq!(after, Ok(()), "a commit after the snapshots were dropped");
    // Nothing refused was done: no record b, no collection d, a still there with its PII
    // under the old key.
    assert_eq!(db.next_lsn(), lsn + 1, "only the commit after the drop was logged");
    let snap = db.read();
    assert!(snap.collection("d").is_err());
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 2);
    assert!(c.get("b").unwrap().is_none() && c.get("z").unwrap().is_some());
    drop(snap);
    drop(db);
    let db = Database::open(dir.path(), Options::new().key(key())).unwrap();
    assert_eq!(db.read().collection("c").unwrap().reveal("a").unwrap()["name"].expose(), "Ada");
    db.verify().unwrap();
    assert!(other.read().collection("c").unwrap().get("x").unwrap().is_some());
}

/// Threads updating one record at once, each its own field, in group commits: every update
/// keeps what the others wrote. A batch is resolved against the record as applied, so a
/// commit round ends before a batch updating a record an earlier batch of the round wrote;
/// sharing the round, the later update would carry the record as it was before the round
/// and undo the earlier one (a lost update, seen by the thread that wrote it).
#[test]
fn concurrent_updates_of_one_record_lose_nothing() {
    use geocrm::Update;
    const THREADS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        dir.path(),
        Options::new().durability(Durability::GroupCommit { max_wait: Duration::from_micros(500) }),
    )
    .unwrap();
    let fields: Vec<String> = (0..THREADS).map(|t| format!("f{t}")).collect();
    let schema = fields.iter().fold(Schema::new(), |s, f| s.number(f.clone()));
    db.create_collection("c", schema).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", Record::new("shared", LatLon::new(1.0, 2.0).unwrap())).unwrap();
    b.commit().unwrap();
    std::thread::scope(|s| {
        for field in &fields {
            let db = &db;
            s.spawn(move || {
                for i in 1..=150u32 {
                    let mut b = db.begin_write();
                    b.update("c", "shared", Update::new().number(field.clone(), f64::from(i))).unwrap();
                    b.commit().unwrap();
                    let got = db.read().collection("c").unwrap().get("shared").unwrap().unwrap();
                    assert_eq!(got.numbers.get(field), Some(&f64::from(i)), "{field} after update {i}");
                }
            });
        }
    });
    let got = db.read().collection("c").unwrap().get("shared").unwrap().unwrap();
    assert!(fields.iter().all(|f| got.numbers[f] == 150.0), "{:?}", got.numbers);
}
