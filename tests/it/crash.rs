//! Database-level crash and fault tests on the in-memory file system: power-loss images
//! taken during a workload, and a fault injected at every I/O step of a workload (the
//! collection's creation, log appends and segment roll-overs, keystore appends, the close
//! record; the MANIFEST's replacements are swept by the checkpoint tests). After each, reopening must succeed and hold exactly the acknowledged
//! commits — plus, at most, the one commit whose outcome was an error — never half a commit.
//!
//! `GEOCRM_CRASH_ROUNDS` multiplies the number of power-loss images (default 1).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use geocrm::crypto::RawKey;
use geocrm::io::{CrashMode, FaultPlan, FileSystem, MemFs, OpKind};
use geocrm::{Database, Error, Filter, LatLon, Options, Record, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const DIR: &str = "/db";

/// id → (lat, lon, name)
pub type State = BTreeMap<String, (f64, f64, Option<String>)>;

pub fn options(fs: &MemFs) -> Options {
    Options::new()
        .key(RawKey::new([3; 32]))
        .file_system(Arc::new(fs.clone()))
        .segment_bytes(8 * 1024)
        .audit(false)
}

pub fn read_state(db: &Database) -> State {
    let snap = db.read();
    let Ok(c) = snap.collection("c") else { return State::new() };
    let mut out = State::new();
    for hit in c.within_radius(LatLon::new(0.0, 0.0).unwrap(), 3e7, &Filter::All).unwrap() {
        let pii = c.reveal(&hit.id).unwrap();
        let name = pii.get("name").map(|p| p.expose().to_owned());
        out.insert(hit.id, (hit.location.lat(), hit.location.lon(), name));
    }
    out
}

/// One random commit: a few upserts (some with PII) and deletes. Returns the state it
/// leads to if it is acknowledged.
pub fn random_commit(db: &Database, rng: &mut ChaCha8Rng, before: &State) -> (Result<(), Error>, State) {
    let mut after = before.clone();
    let mut batch = db.begin_write();
    for _ in 0..rng.gen_range(1..5) {
        let id = format!("id{}", rng.gen_range(0..12));
        if rng.gen_bool(0.2) {
            batch.delete("c", &id).unwrap();
            after.remove(&id);
        } else {
            let (lat, lon) = (rng.gen_range(-89.0..89.0), rng.gen_range(-179.0..179.0));
            let mut r = Record::new(id.clone(), LatLon::new(lat, lon).unwrap());
            let name = rng.gen_bool(0.6).then(|| format!("secret-name-{}", rng.gen_range(0..1000)));
            if let Some(n) = &name {
                r = r.pii("name", n.clone());
            }
            batch.upsert("c", r).unwrap();
            after.insert(id, (lat, lon, name));
        }
    }
    (batch.commit().map(|_| ()), after)
}

/// `n` random commits, each acknowledged: `acked` follows them.
pub fn commit_acked(db: &Database, rng: &mut ChaCha8Rng, n: usize, acked: &mut State) {
    for _ in 0..n {
        let (ok, after) = random_commit(db, rng, acked);
        ok.unwrap();
        *acked = after;
    }
}

pub fn setup(fs: &MemFs) -> Database {
    let db = Database::open(Path::new(DIR), options(fs)).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    db
}

#[test]
fn power_loss_images_keep_every_acknowledged_commit() {
    let rounds: u64 = std::env::var("GEOCRM_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut images = 0u64;
    for seed in 0..(12 * rounds) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let fs = MemFs::new();
        let db = setup(&fs);
        let mut acked = State::new();
        for step in 0..40 {
            let (result, after) = random_commit(&db, &mut rng, &acked);
            result.unwrap();
            acked = after;
            // Crash images of the synced state at this point, in every mode.
            if step % 4 == 0 {
                for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
                    let image = fs.crash_image(seed * 1000 + step * 10 + m as u64, mode);
                    let reopened = Database::open(Path::new(DIR), options(&image))
                        .unwrap_or_else(|e| panic!("seed {seed} step {step} {mode:?}: {e}"));
                    assert_eq!(read_state(&reopened), acked, "seed {seed} step {step} {mode:?}");
                    images += 1;
                }
            }
        }
    }
    assert!(images >= 360, "ran {images} images");
}

/// Runs a fixed workload — the collection's creation, then 40 commits, rolling 2 KiB log
/// segments, then the close — with a fault at counted operation `n` of `kind`; returns
/// the acknowledged state, the state the failing commit would have produced, and how many
/// operations of `kind` were attempted (the fault fired when that is above `n`: a fault in
/// the close is no commit's error).
fn workload_with_fault(n: u64, kind: OpKind) -> (MemFs, State, Option<State>, u64) {
    let fs = MemFs::new();
    let db = Database::open(Path::new(DIR), options(&fs).segment_bytes(2 * 1024)).unwrap();
    fs.set_faults(FaultPlan::new().fail_once(kind, n));
    let before = fs.op_count(kind);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut acked = State::new();
    let mut in_doubt = None;
    let failed_creation = db.create_collection("c", Schema::new().pii("name")).is_err();
    let mut failed = failed_creation;
    // (After a failed creation there is nothing to commit to, and the state is the empty
    // one either way.)
    for _ in 0..if failed_creation { 0 } else { 40 } {
        let (result, after) = random_commit(&db, &mut rng, &acked);
        match result {
            Ok(()) => {
                assert!(!failed, "a commit succeeded after a failure poisoned the database");
                acked = after;
            }
            Err(e) => {
                if !failed {
                    in_doubt = Some(after);
                } else {
                    assert!(matches!(e, Error::Poisoned { .. }), "after a failure, writes are refused: {e}");
                }
                failed = true;
            }
        }
    }
    drop(db);
    let attempted = fs.op_count(kind) - before;
    (fs, acked, in_doubt, attempted)
}

#[test]
fn a_fault_at_every_io_step_loses_nothing_acknowledged() {
    let mut cases = 0;
    for kind in [OpKind::Any, OpKind::Sync, OpKind::Write, OpKind::Create, OpKind::Rename, OpKind::SyncDir] {
        // Every operation of the kind to the last, the count taken from a clean run (the
        // sweep stopped at the first fault no commit reported, and 12 commits never rolled
        // a segment: from a test review).
        let (clean_fs, clean_state, _, clean) = workload_with_fault(u64::MAX, kind);
        assert!(clean > 0, "{kind:?}: the workload attempts none");
        assert!(clean_state.len() > 5, "{kind:?}: the clean workload holds {} records", clean_state.len());
        let segments = clean_fs.list_dir(&Path::new(DIR).join("log")).unwrap();
        assert!(
            segments.iter().filter(|s| s.ends_with(".seg")).count() >= 2,
            "no segment rolled: {segments:?}"
        );
        let mut n = 0;
        loop {
            let (fs, acked, in_doubt, attempted) = workload_with_fault(n, kind);
            if attempted <= n {
                assert_eq!(n, clean, "{kind:?}: the sweep ended before the clean run's last operation");
                break;
            }
            for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
                let image = fs.crash_image(n * 7 + m as u64, mode);
                let db = Database::open(Path::new(DIR), options(&image))
                    .unwrap_or_else(|e| panic!("{kind:?} fault at {n}, {mode:?}: reopen failed: {e}"));
                let got = read_state(&db);
                assert!(
                    got == acked || Some(&got) == in_doubt.as_ref(),
                    "{kind:?} fault at {n}, {mode:?}: recovered state is neither the acknowledged one nor it plus the failed commit"
                );
                cases += 1;
            }
            n += 1;
        }
    }
    assert!(cases > 600, "only {cases} cases ran");
}

#[test]
fn a_failed_fsync_poisons_until_reopen_and_is_never_retried_into_success() {
    let fs = MemFs::new();
    let db = setup(&fs);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (ok, acked) = random_commit(&db, &mut rng, &State::new());
    ok.unwrap();
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Sync, 0));
    let (failed, _) = random_commit(&db, &mut rng, &acked);
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    // The fault was one-shot; the database must still refuse rather than retry.
    let (refused, _) = random_commit(&db, &mut rng, &acked);
    assert!(matches!(refused, Err(Error::Poisoned { .. })), "{refused:?}");
    assert!(matches!(db.sync(), Err(Error::Poisoned { .. })));
    // Reads keep working.
    assert_eq!(read_state(&db), acked);
    drop(db);
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    let (ok, acked) = random_commit(&db, &mut rng, &acked);
    ok.unwrap();
    drop(db);
    // The failed commit's bytes never reached the disk (a later fsync does not write them):
    // the reopen must not have built on them, or a power loss now loses the commit after it.
    for mode in CrashMode::ALL {
        let image = fs.crash_image(9, mode);
        let db = Database::open(Path::new(DIR), options(&image))
            .unwrap_or_else(|e| panic!("{mode:?}: the commit after the reopen is lost: {e}"));
        assert_eq!(read_state(&db), acked, "{mode:?}");
    }
}

/// In bulk-load mode commits are applied without a sync. A later failed write poisons the
/// log, which cuts what it appended since its last sync: it cut those applied commits too,
/// and reads of them failed (from the diff review, twenty-third part). Only the failing
/// commit's bytes go.
#[test]
fn a_failed_write_in_bulk_load_mode_keeps_the_commits_applied_before() {
    let fs = MemFs::new();
    let opts = || options(&fs).durability(geocrm::Durability::NoSyncBulkLoad);
    let db = Database::open(Path::new(DIR), opts()).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    db.sync().unwrap();
    for i in 0..100 {
        let mut b = db.begin_write();
        b.upsert("c", Record::new(format!("x{i}"), LatLon::new(1.0, f64::from(i) / 10.0).unwrap())).unwrap();
        b.commit().unwrap();
    }
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Write, 0));
    let mut b = db.begin_write();
    b.upsert("c", Record::new("failed", LatLon::new(2.0, 2.0).unwrap())).unwrap();
    assert!(b.commit().is_err());
    fs.clear_faults();
    assert!(db.read().collection("c").unwrap().get("x5").unwrap().is_some(), "read back from the log");
    drop(db);
    let db = Database::open(Path::new(DIR), opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 100);
}

/// In bulk-load mode a failed `sync` may have lost the commits applied since the last one:
/// they are cut, so a reopen does not build acknowledged commits on them — which a power
/// loss would then take with them (from the second diff review: the cut had been skipped for
/// them).
#[test]
fn a_failed_sync_in_bulk_load_mode_does_not_leave_bytes_later_commits_build_on() {
    let fs = MemFs::new();
    let bulk = || options(&fs).durability(geocrm::Durability::NoSyncBulkLoad);
    let db = Database::open(Path::new(DIR), bulk()).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    db.sync().unwrap();
    for i in 0..10 {
        let mut b = db.begin_write();
        b.upsert("c", Record::new(format!("x{i}"), LatLon::new(1.0, f64::from(i)).unwrap())).unwrap();
        b.commit().unwrap();
    }
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Sync, 0));
    assert!(db.sync().is_err());
    fs.clear_faults();
    drop(db);
    let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", Record::new("y", LatLon::new(2.0, 2.0).unwrap())).unwrap();
    b.commit().unwrap();
    drop(db);
    for mode in CrashMode::ALL {
        let image = fs.crash_image(0, mode);
        let db = Database::open(Path::new(DIR), options(&image)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(db.read().collection("c").unwrap().get("y").unwrap().is_some(), "{mode:?}");
    }
}

#[test]
fn a_reopen_makes_durable_what_a_dead_process_renamed_without_a_directory_fsync() {
    // A process renames a new segment (or MANIFEST, or checkpoint file) into place and dies
    // before its directory fsync. The next open builds on that entry — appends to the
    // segment, trusts the MANIFEST, deletes what it no longer names — so it must make the
    // directories durable first, or a power loss undoes the rename under acknowledged writes.
    let mut cases = 0;
    for nth in 0..8 {
        for compact in [false, true] {
            let fs = MemFs::new();
            let db = setup(&fs);
            let mut rng = ChaCha8Rng::seed_from_u64(nth);
            let mut acked = State::new();
            commit_acked(&db, &mut rng, 20, &mut acked);
            fs.set_faults(FaultPlan::new().fail_from(OpKind::SyncDir, nth));
            let failed = if compact { db.compact().is_err() } else { db.checkpoint().is_err() };
            drop(db);
            fs.set_faults(FaultPlan::new());
            if !failed {
                continue;
            }
            let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
            commit_acked(&db, &mut rng, 5, &mut acked);
            drop(db);
            for seed in 0..4 {
                let image = fs.crash_image(seed, CrashMode::SyncedOnly);
                let db = Database::open(Path::new(DIR), options(&image)).unwrap_or_else(|e| {
                    panic!("sync_dir {nth} failing, compact {compact}, seed {seed}: {e}")
                });
                assert_eq!(read_state(&db), acked, "sync_dir {nth} failing, compact {compact}, seed {seed}");
            }
            cases += 1;
        }
    }
    assert!(cases >= 4, "only {cases} cases failed a directory fsync");
}

#[test]
fn a_manifest_publication_that_may_have_happened_poisons() {
    // A MANIFEST whose rename succeeded but whose directory fsync failed may or may not be
    // the database's now. Going on as if it were not (the old manifest in memory), the next
    // checkpoint rewrote files the new one names with pointers into segments it drops.
    let (mut cases, mut manifest_cases) = (0, 0);
    for nth in 0..6 {
        let fs = MemFs::new();
        let db = setup(&fs);
        let mut rng = ChaCha8Rng::seed_from_u64(100 + nth);
        let mut acked = State::new();
        for round in 0..3 {
            commit_acked(&db, &mut rng, 10, &mut acked);
            if round == 0 {
                db.checkpoint().unwrap();
            }
        }
        fs.set_faults(FaultPlan::new().fail_once(OpKind::SyncDir, nth));
        let Err(failed) = db.compact() else { continue };
        fs.set_faults(FaultPlan::new());
        let then = db.checkpoint();
        if matches!(&failed, Error::Io { path, .. } if path == Path::new(DIR)) {
            // The MANIFEST's own directory fsync: published or not, nobody knows. (Or the
            // keystore's, rewritten without deleted records' keys before the MANIFEST since
            // the twenty-fourth part: the same doubt.)
            assert!(matches!(then, Err(Error::Poisoned { .. })), "{then:?}");
            manifest_cases += 1;
        }
        let (ok, after) = random_commit(&db, &mut rng, &acked);
        if ok.is_ok() {
            acked = after;
        }
        let _ = db.checkpoint();
        for seed in 0..12 {
            let image = fs.crash_image(seed, CrashMode::TornPrefix);
            let db = Database::open(Path::new(DIR), options(&image))
                .unwrap_or_else(|e| panic!("sync_dir {nth} failing, seed {seed}: {e}"));
            assert_eq!(read_state(&db), acked, "sync_dir {nth} failing, seed {seed}");
        }
        cases += 1;
    }
    assert!(
        cases >= 2 && manifest_cases == 2,
        "{cases} compactions failed, {manifest_cases} at the manifest"
    );
}

#[test]
fn a_compaction_failing_part_way_keeps_the_next_lsn_with_the_log() {
    // Its copies are in the log (and replay at open) although the compaction failed: the next
    // LSN must count them, and a checkpoint must not call the database unchanged.
    let mut cases = 0;
    for kind in [OpKind::Create, OpKind::Write, OpKind::Rename] {
        for nth in 0..6 {
            let fs = MemFs::new();
            let db = setup(&fs);
            let mut rng = ChaCha8Rng::seed_from_u64(200 + nth);
            let mut acked = State::new();
            commit_acked(&db, &mut rng, 10, &mut acked);
            db.checkpoint().unwrap();
            fs.set_faults(FaultPlan::new().fail_once(kind, nth));
            let failed = db.compact().is_err();
            fs.set_faults(FaultPlan::new());
            let mut batch = db.begin_write();
            batch.upsert("c", Record::new("probe", LatLon::new(1.0, 2.0).unwrap())).unwrap();
            let expected = db.next_lsn();
            let Ok(receipt) = batch.commit() else { continue };
            assert_eq!(receipt.first_lsn, expected, "{kind:?} {nth} failing (compaction failed: {failed})");
            if failed {
                cases += 1;
            }
        }
    }
    assert!(cases >= 3, "only {cases} compactions failed without poisoning");
}

/// A batch that creates a collection and fills it has the collection built on a thread of its
/// own while the batch is written: when the write or the fsync fails, nothing of it is seen,
/// before or after a reopen; when they succeed, all of it is, and the reopen (a replay, one
/// operation at a time) finds the same.
#[test]
fn a_created_and_filled_collection_is_seen_whole_or_not_at_all() {
    let records = |n: usize| -> Vec<Record> {
        (0..n)
            .map(|i| {
                let location = LatLon::new((i % 170) as f64 - 85.0, (i % 359) as f64 - 179.0).unwrap();
                Record::new(format!("b{}", i % (n - 100)), location).number("n", i as f64)
            })
            .collect()
    };
    let fill = |db: &Database| {
        let mut batch = db.begin_write();
        batch.create_collection("big", Schema::new().number("n")).unwrap();
        assert!(batch.upsert_many("big", records(20_000)).unwrap().is_empty());
        batch.commit()
    };
    let big = |db: &Database| -> Option<Vec<(String, i64)>> {
        let snap = db.read();
        let c = snap.collection("big").ok()?;
        let mut hits: Vec<(String, i64)> = c
            .within_radius(LatLon::new(0.0, 0.0).unwrap(), 3e7, &Filter::All)
            .unwrap()
            .into_iter()
            .map(|h| (h.id.clone(), c.get(&h.id).unwrap().unwrap().numbers["n"] as i64))
            .collect();
        hits.sort();
        Some(hits)
    };
    for kind in [OpKind::Write, OpKind::Sync] {
        let fs = MemFs::new();
        let db = setup(&fs);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (ok, acked) = random_commit(&db, &mut rng, &State::new());
        ok.unwrap();
        fs.set_faults(FaultPlan::new().fail_once(kind, 0));
        assert!(matches!(fill(&db), Err(Error::Io { .. })), "{kind:?}");
        assert!(big(&db).is_none(), "{kind:?}: nothing of the failed batch is seen");
        assert_eq!(read_state(&db), acked, "{kind:?}");
        drop(db);
        fs.clear_faults();
        let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
        assert!(big(&db).is_none(), "{kind:?}: nor after a reopen");
        assert_eq!(read_state(&db), acked, "{kind:?}");
        // Now it succeeds: every id's last record, read back from the log.
        let receipt = fill(&db).unwrap();
        assert_eq!(receipt.replaced, 100, "{kind:?}: 100 ids are written twice");
        let seen = big(&db).unwrap();
        assert_eq!(seen.len(), 19_900, "{kind:?}");
        assert!(seen
            .iter()
            .all(|(id, n)| id[1..].parse::<i64>().unwrap() + if *n >= 19_900 { 19_900 } else { 0 } == *n));
        drop(db);
        let db = Database::open(Path::new(DIR), options(&fs)).unwrap();
        assert_eq!(big(&db), Some(seen), "{kind:?}: after a reopen");
    }
}
