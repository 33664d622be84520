//! `Options::read_only`: reading a database another handle or process holds, without its
//! lock and without changing a byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use geocrm::crypto::RawKey;
use geocrm::query::Scope;
use geocrm::{Database, Error, Filter, LatLon, Options, Record, Schema};

use super::hooked_fs::{Hook, HookedFs};

fn ro() -> Options {
    Options::new().read_only(true)
}

/// Every file under `dir` with its bytes (the lock file included).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    super::cli::all_files(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

fn rec(i: u64) -> Record {
    rec_with(i, i as f64)
}

fn rec_with(i: u64, ltv: f64) -> Record {
    Record::new(
        format!("C-{i:05}"),
        LatLon::new(45.0 + (i % 100) as f64 * 0.01, 5.0 + (i / 100) as f64 * 0.01).unwrap(),
    )
    .number("ltv", ltv)
}

fn count(db: &Database) -> u64 {
    db.read().collection("c").unwrap().count(Scope::All, &Filter::All).unwrap()
}

#[test]
fn a_read_only_open_reads_a_held_database_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = || RawKey::new([3; 32]);
    let writer = Database::open(dir.path(), Options::new().key(key())).unwrap();
    writer.create_collection("c", Schema::new().number("ltv").pii("name")).unwrap();
    let mut b = writer.begin_write();
    for i in 0..300 {
        b.upsert("c", rec(i).pii("name", format!("Person {i}"))).unwrap();
    }
    b.commit().unwrap();
    writer.checkpoint().unwrap();
    let mut b = writer.begin_write();
    for i in 300..400 {
        b.upsert("c", rec(i)).unwrap();
    }
    b.delete("c", "C-00007").unwrap();
    b.commit().unwrap();
    let before = files(dir.path());

    let reader = Database::open(dir.path(), ro()).unwrap();
    assert_eq!(count(&reader), 399, "the checkpoint and the log after it, with the deletion");
    let snap = reader.read();
    let c = snap.collection("c").unwrap();
    let got = c.get("C-00301").unwrap().unwrap();
    assert_eq!(got.numbers.get("ltv"), Some(&301.0));
    assert!(c.get("C-00007").unwrap().is_none());
    assert!(matches!(c.reveal("C-00001"), Err(Error::MissingKey)), "no key, no PII");
    drop(snap);

    // Every write is refused, naming the database.
    let read_only = |r: Result<(), Error>, what: &str| match r {
        Err(Error::ReadOnly { path, .. }) => assert_eq!(path, dir.path(), "{what}"),
        other => panic!("{what}: {other:?}"),
    };
    read_only(reader.create_collection("d", Schema::new()).map(drop), "create_collection");
    let mut b = reader.begin_write();
    b.upsert("c", rec(9999)).unwrap();
    read_only(b.commit().map(drop), "commit");
    read_only(reader.checkpoint().map(drop), "checkpoint");
    read_only(reader.compact().map(drop), "compact");
    read_only(reader.erase("c", "C-00001").map(drop), "erase");
    read_only(reader.rotate_master_key(&key()), "rotate");
    read_only(reader.sync(), "sync");
    assert_eq!(reader.audit_entries().unwrap().len(), writer.audit_entries().unwrap().len());
    drop(reader);
    assert_eq!(files(dir.path()), before, "a read-only open changed the database's files");

    // A key is refused: PII reads would need the holder's audit log.
    let err = Database::open(dir.path(), ro().key(key())).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "read_only", .. }), "{err}");
    let err = Database::repair(dir.path(), ro()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "read_only", .. }), "{err}");
    // Refused before anything: not `Locked` (the writer holds the lock).
    let err = Database::repair_dry_run(dir.path(), ro()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "read_only", .. }), "{err}");
    // The writer is undisturbed.
    let mut b = writer.begin_write();
    b.upsert("c", rec(400)).unwrap();
    b.commit().unwrap();
    drop(writer);
    assert_eq!(count(&Database::open(dir.path(), Options::new()).unwrap()), 400);
}

#[test]
fn a_read_only_open_leaves_a_torn_tail_and_a_missing_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path(), Options::new()).unwrap();
        db.create_collection("c", Schema::new().number("ltv")).unwrap();
        let mut b = db.begin_write();
        for i in 0..50 {
            b.upsert("c", rec(i)).unwrap();
        }
        b.commit().unwrap();
    }
    // A frame being appended: its first bytes only.
    let seg = super::cli::newest_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 7, 7, 7]);
    std::fs::write(&seg, &bytes).unwrap();
    let before = files(dir.path());
    let reader = Database::open(dir.path(), ro()).unwrap();
    assert_eq!(count(&reader), 50);
    assert_eq!(reader.stats().truncated_tail_bytes, 7, "reported, though not cut");
    drop(reader);
    assert_eq!(files(dir.path()), before, "the tail was cut");
    let db = Database::open(dir.path(), Options::new()).unwrap();
    assert_eq!(count(&db), 50);
    assert!(db.recovery_report().truncated.is_some(), "a writable open cuts it");
    drop(db);

    let missing = dir.path().join("nothing-here");
    let err = Database::open(&missing, ro()).unwrap_err();
    assert!(err.to_string().contains("no such directory"), "{err}");
    assert!(!missing.exists());
    let empty = tempfile::tempdir().unwrap();
    let err = Database::open(empty.path(), ro()).unwrap_err();
    assert!(err.to_string().contains("not a geocrm database"), "{err}");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

/// Read-only opens race a writer that commits, checkpoints and compacts (which deletes the
/// files an earlier MANIFEST named): every open succeeds and sees at least every record
/// acknowledged before it started, and no record twice.
#[test]
fn read_only_opens_beside_a_writer_that_checkpoints_and_compacts_see_every_acknowledged_write() {
    const COMMITS: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let writer = Database::open(dir.path(), Options::new().checkpoint_after_ops(None)).unwrap();
    writer.create_collection("c", Schema::new().number("ltv")).unwrap();
    let acknowledged = AtomicU64::new(0);
    let opens = AtomicU64::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    struct SetOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            // Set when the writer ends, even by a panic: the readers stop then.
            let _done = SetOnDrop(&done);
            for n in 0..COMMITS {
                let mut b = writer.begin_write();
                for i in n * 5..n * 5 + 5 {
                    b.upsert("c", rec(i)).unwrap();
                }
                // A row written again: its older version must never show as well.
                b.upsert("c", rec_with(n, -1.0)).unwrap();
                b.commit().unwrap();
                acknowledged.store(n * 5 + 5, Ordering::SeqCst);
                match n % 10 {
                    3 => drop(writer.checkpoint().unwrap()),
                    7 => drop(writer.compact().unwrap()),
                    _ => {}
                }
                // Let the readers get a few opens in between (not forever: a reader that
                // panicked opens no more).
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while opens.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
                    std::thread::yield_now();
                }
            }
        });
        for _ in 0..2 {
            s.spawn(|| loop {
                let last = done.load(Ordering::SeqCst);
                let at_least = acknowledged.load(Ordering::SeqCst);
                let reader = Database::open(dir.path(), ro()).unwrap();
                let n = count(&reader);
                assert!(n >= at_least, "saw {n} records, {at_least} were acknowledged before the open");
                let snap = reader.read();
                let c = snap.collection("c").unwrap();
                let hits = c.within_radius(LatLon::new(45.0, 5.0).unwrap(), 1e7, &Filter::All).unwrap();
                let ids: std::collections::BTreeSet<_> = hits.iter().map(|h| &h.id).collect();
                assert_eq!(ids.len() as u64, n, "a record seen twice");
                // Commits are seen whole and in order: after m + 1 of them (5 new records
                // each), records 0..=m have been written again with ltv -1, the rest not.
                let rewritten = c.count(Scope::All, &Filter::parse("ltv = -1").unwrap()).unwrap();
                assert_eq!(rewritten, n / 5, "an older version of a record written again shows");
                assert!(reader.checkpoint_rejected().is_none(), "{:?}", reader.checkpoint_rejected());
                opens.fetch_add(1, Ordering::SeqCst);
                if last {
                    break;
                }
            });
        }
    });
    assert!(opens.load(Ordering::SeqCst) >= COMMITS, "the readers fell behind");
}

/// Runs its function (once) when a checkpoint file is first mapped.
#[derive(Default)]
struct OnFirstMap(std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl std::fmt::Debug for OnFirstMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnFirstMap")
    }
}

impl Hook for OnFirstMap {
    fn map(&self, path: &Path) {
        if path.to_string_lossy().ends_with(".ckpt") {
            let run = self.0.lock().unwrap().take();
            if let Some(run) = run {
                run();
            }
        }
    }
}

/// The holder compacts (a new MANIFEST; the checkpoint file and the segments the old one
/// named deleted) just as a read-only open maps the checkpoint file the MANIFEST it read
/// named: the open starts again from the new MANIFEST, with a usable checkpoint.
#[test]
fn a_read_only_open_starts_again_when_a_compaction_deletes_what_it_was_reading() {
    const DIR: &str = "/db";
    let mem = geocrm::io::MemFs::new();
    let writer = std::sync::Arc::new(
        Database::open(
            DIR,
            Options::new().file_system(std::sync::Arc::new(mem.clone())).checkpoint_after_ops(None),
        )
        .unwrap(),
    );
    writer.create_collection("c", Schema::new().number("ltv")).unwrap();
    for round in 0..3 {
        let mut b = writer.begin_write();
        for i in 0..100 {
            b.upsert("c", rec_with(i, f64::from(round))).unwrap();
        }
        b.commit().unwrap();
        writer.checkpoint().unwrap();
    }
    let mut b = writer.begin_write();
    b.delete("c", "C-00000").unwrap();
    b.commit().unwrap();
    let hook = std::sync::Arc::new(OnFirstMap::default());
    let w = std::sync::Arc::clone(&writer);
    *hook.0.lock().unwrap() = Some(Box::new(move || drop(w.compact().unwrap())));
    let fs = HookedFs { inner: mem.clone(), hook: std::sync::Arc::clone(&hook) };
    let reader = Database::open(DIR, ro().file_system(std::sync::Arc::new(fs))).unwrap();
    assert!(hook.0.lock().unwrap().is_none(), "the compaction ran during the open");
    assert!(reader.checkpoint_rejected().is_none(), "{:?}", reader.checkpoint_rejected());
    assert_eq!(count(&reader), 99);
    let snap = reader.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.get("C-00005").unwrap().unwrap().numbers.get("ltv"), Some(&2.0), "the last version");
}

/// A read-only handle kept open while the holder compacts: its snapshot's records were in
/// the segments the compaction deleted, which it keeps open from its open on, so its point
/// reads go on working (they said "open it again", and before that only "No such file or
/// directory"). Past the segments it holds, a read says what to do.
#[test]
fn a_read_only_handle_reads_the_segments_a_later_compaction_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Database::open(dir.path(), Options::new().checkpoint_after_ops(None)).unwrap();
    writer.create_collection("c", Schema::new().number("ltv")).unwrap();
    let mut b = writer.begin_write();
    for i in 0..200 {
        b.upsert("c", rec(i)).unwrap();
    }
    b.commit().unwrap();
    // Compacted once before the reader opens: its log floor is above 1.
    writer.compact().unwrap();
    let reader = Database::open(dir.path(), ro()).unwrap();
    writer.compact().unwrap();
    // Its verify reads the MANIFEST from disk, the log floor included: with its own stale
    // floor, the segment the compaction deleted read as missing damage (from the third diff
    // review).
    let report = reader.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.files);
    let snap = reader.read();
    let c = snap.collection("c").unwrap();
    for i in 0..200 {
        let id = format!("C-{i:05}");
        let got = c.get(&id).unwrap().expect("every record, from segments the compaction removed");
        assert_eq!(got.numbers.get("ltv"), Some(&f64::from(i)), "{id}");
    }
    drop(snap);
    let reader = Database::open(dir.path(), ro()).unwrap();
    assert!(reader.read().collection("c").unwrap().get("C-00005").unwrap().is_some());
    // A writable handle missing a segment gets no such hint: opening again does not help it
    // (from the diff review).
    drop((reader, writer));
    let mut segments: Vec<_> =
        std::fs::read_dir(dir.path().join("log")).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    let writer = Database::open(dir.path(), Options::new().checkpoint_after_ops(None)).unwrap();
    std::fs::remove_file(&segments[0]).unwrap();
    let err =
        writer.read().collection("c").unwrap().get("C-00005").expect_err("its segment is gone").to_string();
    assert!(err.contains("No such file") && !err.contains("open it again"), "{err}");
    // Nor a read-only handle holding the lock (`geocrm verify`'s): no compaction can run.
    drop(writer);
    let locked = Database::open(dir.path(), ro().lock_read_only(true)).unwrap();
    let got = locked.read().collection("c").unwrap().get("C-00005");
    let err = got.expect_err("its segment is gone").to_string();
    assert!(err.contains("No such file") && !err.contains("open it again"), "{err}");
}

/// Runs its function (once) at the `nth` open for reading of `target`.
struct OnNthOpen {
    target: std::path::PathBuf,
    nth: usize,
    seen: std::sync::atomic::AtomicUsize,
    run: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for OnNthOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnNthOpen")
    }
}

impl Hook for OnNthOpen {
    fn open_read(&self, path: &Path) {
        if path == self.target && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            let run = self.run.lock().unwrap().take();
            if let Some(run) = run {
                run();
            }
        }
    }
}

/// The holder compacts at each open of the newest segment during a read-only open — in the
/// replay, or between it and the hold of the segments (the earlier attempt's hole, a23d685):
/// the open starts again or holds what it replayed, and every record reads, through a
/// further compaction too (from the review of the hold; fails with a gone segment passed over
/// silently, and without the hold).
#[test]
fn a_compaction_at_any_point_of_a_read_only_open_leaves_every_record_readable() {
    const DIR: &str = "/db";
    let mut ran_at = Vec::new();
    for nth in 1..=6 {
        let mem = geocrm::io::MemFs::new();
        let options = Options::new().file_system(std::sync::Arc::new(mem.clone())).checkpoint_after_ops(None);
        let writer = std::sync::Arc::new(Database::open(DIR, options).unwrap());
        writer.create_collection("c", Schema::new().number("ltv")).unwrap();
        for half in [0..100, 100..200] {
            let mut b = writer.begin_write();
            for i in half {
                b.upsert("c", rec(i)).unwrap();
            }
            b.commit().unwrap();
            writer.checkpoint().unwrap();
        }
        let newest =
            mem.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).max().unwrap();
        let w = std::sync::Arc::clone(&writer);
        let hook = std::sync::Arc::new(OnNthOpen {
            target: newest,
            nth,
            seen: Default::default(),
            run: std::sync::Mutex::new(Some(Box::new(move || drop(w.compact().unwrap())))),
        });
        let fs = HookedFs { inner: mem.clone(), hook: std::sync::Arc::clone(&hook) };
        let reader = Database::open(DIR, ro().file_system(std::sync::Arc::new(fs)))
            .unwrap_or_else(|e| panic!("compaction at open {nth} of the newest segment: {e}"));
        if hook.run.lock().unwrap().is_none() {
            ran_at.push(nth);
        }
        assert!(reader.checkpoint_rejected().is_none());
        writer.compact().unwrap();
        let snap = reader.read();
        let c = snap.collection("c").unwrap();
        for i in 0..200 {
            let id = format!("C-{i:05}");
            let got = c.get(&id).unwrap_or_else(|e| panic!("compaction at open {nth}: {id}: {e}"));
            assert_eq!(got.unwrap().numbers.get("ltv"), Some(&(i as f64)), "{id}");
        }
    }
    assert!(ran_at.len() >= 3, "the compaction ran during the open only at opens {ran_at:?}");
}

/// A log missing a segment in the middle (damage below the checkpoint's replay start): a
/// read-only open works, as a writable one does, and leaves the damage to `verify` (the hold
/// of the segments took it for a compaction's and refused every read-only open, saying to
/// open again; from the review of the hold).
#[test]
fn a_read_only_open_reads_around_a_segment_missing_below_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let writer = Database::open(dir.path(), Options::new().checkpoint_after_ops(None)).unwrap();
        writer.create_collection("c", Schema::new().number("ltv")).unwrap();
        for round in 0..3 {
            let mut b = writer.begin_write();
            for i in 0..10 {
                b.upsert("c", rec(round * 10 + i)).unwrap();
            }
            b.commit().unwrap();
            writer.checkpoint().unwrap();
        }
    }
    let mut segments: Vec<_> =
        std::fs::read_dir(dir.path().join("log")).unwrap().map(|e| e.unwrap().path()).collect();
    segments.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    std::fs::remove_file(&segments[1]).unwrap();
    let reader = Database::open(dir.path(), ro()).unwrap();
    let snap = reader.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 30);
    assert!(c.get("C-00000").unwrap().is_some(), "in the first segment");
    let err = c.get("C-00010").expect_err("in the missing segment").to_string();
    assert!(err.contains("No such file"), "{err}");
    drop(snap);
    assert!(!reader.verify().unwrap().is_ok(), "verify reports the missing segment");
}

/// The creator of a database publishes its MANIFEST, then the log's first segment: a
/// read-only open in between waits for the segment instead of calling the log lost; a log
/// that does not come is corruption. And a read-only open, reading no PII, does not need
/// the keystore that a writable one checks replayed records' keys against.
#[test]
fn a_read_only_open_waits_for_a_database_being_created_and_needs_no_keystore() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([5; 32]))).unwrap();
        db.create_collection("c", Schema::new().number("ltv").pii("name")).unwrap();
        let mut b = db.begin_write();
        b.upsert("c", rec(1).pii("name", "Ada")).unwrap();
        b.commit().unwrap();
    }
    let log = dir.path().join("log");
    let away = tempfile::tempdir().unwrap();
    let moved = away.path().join("log");
    std::fs::rename(&log, &moved).unwrap();
    let (back, log2) = (moved.clone(), log.clone());
    let creator = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::rename(&back, &log2).unwrap();
    });
    let reader = Database::open(dir.path(), ro()).unwrap();
    creator.join().unwrap();
    assert_eq!(count(&reader), 1);
    drop(reader);
    std::fs::rename(&log, &moved).unwrap();
    let err = Database::open(dir.path(), ro().lock_wait(std::time::Duration::from_millis(20))).unwrap_err();
    assert!(err.to_string().contains("log directory is missing"), "{err}");
    std::fs::rename(&moved, &log).unwrap();

    std::fs::remove_file(dir.path().join("keystore")).unwrap();
    let err = Database::open(dir.path(), Options::new()).unwrap_err();
    assert!(err.to_string().contains("keystore"), "{err}");
    assert_eq!(count(&Database::open(dir.path(), ro()).unwrap()), 1);
}
