//! Fault injection at every counted I/O step of an erasure, of a master-key rotation and of
//! recovery itself (`Database::open` with work to do), on `MemFs`.
//!
//! Each run installs a fault plan that fails counted operation `n` once, or every operation
//! from `n` on (a crash at that step), for `n = 0, 1, …` until no fault fires. After each,
//! every crash image (all `CrashMode`s) and the live file system must reopen to the
//! acknowledged state: an erased record is either whole (location and PII) or gone with its
//! data key destroyed — never a location without readable PII, never readable PII without a
//! location; a rotation leaves exactly one of the old and new master keys working; an open
//! that fails does so with `Error::Io`, and the next clean open still finds everything.

use std::path::Path;
use std::sync::Arc;

use geocrm::crypto::{Keystore, RawKey};
use geocrm::io::{CrashMode, FaultPlan, FileSystem, MemFs, OpKind};
use geocrm::model::PiiKind;
use geocrm::{Database, Durability, Error, Filter, LatLon, Options, Record, Schema};

use super::crash::State;

const DIR: &str = "/db";
const KEY: [u8; 32] = [3; 32];
const NEW_KEY: [u8; 32] = [4; 32];

fn opts(fs: &MemFs, key: [u8; 32]) -> Options {
    Options::new()
        .key(RawKey::new(key))
        .file_system(Arc::new(fs.clone()))
        .segment_bytes(8 * 1024)
        .checkpoint_after_ops(None)
        .audit(false)
}

/// How a fault plan fails operation `n` (counted over all kinds).
#[derive(Clone, Copy, Debug)]
enum Plan {
    Once,
    FromThenOn,
}

impl Plan {
    fn at(self, n: u64) -> FaultPlan {
        match self {
            Plan::Once => FaultPlan::new().fail_once(OpKind::Any, n),
            Plan::FromThenOn => FaultPlan::new().fail_from(OpKind::Any, n),
        }
    }
}

fn person(i: u32) -> (String, (f64, f64, Option<String>)) {
    let name = format!("secret-person-{i}");
    (format!("p{i}"), (10.0 + f64::from(i) * 0.25, 20.0 - f64::from(i) * 0.5, Some(name)))
}

/// The state after records `ids` landed (for a commit whose outcome is in doubt).
fn commit_people_into(state: &mut State, ids: std::ops::Range<u32>) {
    for i in ids {
        let (id, v) = person(i);
        state.insert(id, v);
    }
}

/// Upserts records `ids` (with PII) in one commit; on success adds them to `state`.
fn commit_people(db: &Database, ids: std::ops::Range<u32>, state: &mut State) -> Result<(), Error> {
    let mut batch = db.begin_write();
    let mut after = state.clone();
    for i in ids {
        let (id, (lat, lon, name)) = person(i);
        let mut r = Record::new(id.clone(), LatLon::new(lat, lon).unwrap());
        if let Some(n) = &name {
            r = r.pii("name", n.clone());
        }
        batch.upsert("c", r)?;
        after.insert(id, (lat, lon, name));
    }
    batch.commit()?;
    *state = after;
    Ok(())
}

/// Every record: location and revealed name. A live record whose PII cannot be revealed
/// fails the test (a location without its PII).
fn read_state(db: &Database, ctx: &str) -> State {
    let snap = db.read();
    let Ok(c) = snap.collection("c") else { return State::new() };
    let mut out = State::new();
    for hit in c.within_radius(LatLon::new(0.0, 0.0).unwrap(), 3e7, &Filter::All).unwrap() {
        let pii =
            c.reveal(&hit.id).unwrap_or_else(|e| panic!("{ctx}: {} is live but reveal fails: {e}", hit.id));
        let name = pii.get("name").map(|p| p.expose().to_owned());
        out.insert(hit.id, (hit.location.lat(), hit.location.lon(), name));
    }
    assert_eq!(out.len(), c.len(), "{ctx}: a radius query covering the Earth missed records");
    out
}

/// The database id, from the first segment header (bytes 28..44).
fn db_id(fs: &MemFs) -> [u8; 16] {
    let seg = fs.read_all(Path::new("/db/log/000000000001.seg")).unwrap();
    seg[28..44].try_into().unwrap()
}

/// Whether the keystore file still holds a data key for `id`.
fn keystore_holds(fs: &MemFs, id: &str) -> bool {
    Keystore::open(Arc::new(fs.clone()), Path::new(DIR), db_id(fs), None).unwrap().contains("c", id)
}

/// Checks an opened database against the acknowledged state and, for the erased record,
/// that it is either whole or gone with its key destroyed. `in_doubt` is the state a failed
/// commit would have produced (it may or may not have landed). Returns whether the victim
/// was gone.
fn check_recovered(
    db: &Database,
    fs: &MemFs,
    acked: &State,
    in_doubt: Option<&State>,
    victim: Option<&str>,
    ctx: &str,
) -> bool {
    let got = read_state(db, ctx);
    let without = |s: &State| {
        let mut s = s.clone();
        if let Some(v) = victim {
            s.remove(v);
        }
        s
    };
    let rest = without(&got);
    assert!(
        rest == without(acked) || in_doubt.is_some_and(|d| rest == without(d)),
        "{ctx}: recovered state is neither the acknowledged one nor it plus the failed commit\n got {rest:?}\nwant {:?}",
        without(acked)
    );
    let Some(v) = victim else { return false };
    match got.get(v) {
        Some(found) => {
            assert_eq!(Some(found), acked.get(v), "{ctx}: erased record {v} is present but not whole");
            false
        }
        None => {
            let snap = db.read();
            let c = snap.collection("c").unwrap();
            assert!(c.get(v).unwrap().is_none(), "{ctx}: {v} missing from queries but get finds it");
            assert!(c.reveal(v).is_err(), "{ctx}: erased record {v} still reveals PII");
            assert!(!keystore_holds(fs, v), "{ctx}: erased record {v} is gone but its data key survives");
            true
        }
    }
}

/// Runs `f` over the installed plan and says whether a fault fired (more than `n`
/// operations were attempted while the plan was installed).
fn with_plan<T>(fs: &MemFs, plan: Plan, n: u64, f: impl FnOnce() -> T) -> (T, bool) {
    fs.set_faults(plan.at(n));
    let before = fs.op_count(OpKind::Any);
    let out = f();
    let fired = fs.op_count(OpKind::Any) - before > n;
    fs.clear_faults();
    (out, fired)
}

/// Crash images per random mode (`TornPrefix`, `Garbage`) taken after each run.
const RANDOM_IMAGES: u64 = 3;

/// The images to check after a run: crash images in every mode (`SyncedOnly` is
/// deterministic, the others are taken with several seeds), then the live file system (the
/// process survived, the disk works again).
fn images(fs: &MemFs, seed: u64) -> Vec<(String, MemFs)> {
    let mut out = vec![("SyncedOnly".to_owned(), fs.crash_image(seed, CrashMode::SyncedOnly))];
    for mode in [CrashMode::TornPrefix, CrashMode::Garbage] {
        for k in 0..RANDOM_IMAGES {
            out.push((
                format!("{mode:?} #{k}"),
                fs.crash_image(seed * 100 + k * 2 + u64::from(mode == CrashMode::Garbage), mode),
            ));
        }
    }
    out.push(("live".into(), fs.clone()));
    out
}

// ---------------------------------------------------------------------------------------
// (a) erasure

struct ErasureRun {
    fs: MemFs,
    acked: State,
    in_doubt: Option<State>,
    erase_ok: bool,
    fired: bool,
}

/// Eight PII records, a checkpoint after the first four, then an erasure of `victim` and one
/// more commit, with `plan` installed for the erasure and that commit. Without `keyed`, the
/// erasure runs on a handle opened without a key (the keystore is read only when the
/// erasure needs it).
fn erasure_run(victim: &str, keyed: bool, plan: Plan, n: u64) -> ErasureRun {
    let fs = MemFs::new();
    let mut db = Database::open(DIR, opts(&fs, KEY)).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    let mut acked = State::new();
    commit_people(&db, 0..4, &mut acked).unwrap();
    db.checkpoint().unwrap();
    commit_people(&db, 4..8, &mut acked).unwrap();
    if !keyed {
        drop(db);
        db = Database::open(DIR, keyless(&fs)).unwrap();
    }
    let ((erase, late, after_erase), fired) = with_plan(&fs, plan, n, || {
        let erase = db.erase("c", victim);
        let mut after_erase = acked.clone();
        if erase.is_ok() {
            after_erase.remove(victim);
        }
        let mut late = after_erase.clone();
        let late_result = late_commit(&db, keyed, &mut late);
        (erase, late_result.map(|()| late), after_erase)
    });
    match &erase {
        Ok(receipt) => {
            assert!(receipt.existed, "fault {n}: the receipt says {victim} did not exist");
            assert!(receipt.removed.iter().any(|r| r == "data key"), "fault {n}: {:?}", receipt.removed);
            assert!(db.read().collection("c").unwrap().get(victim).unwrap().is_none());
        }
        Err(e) => assert!(
            matches!(e, Error::Io { .. } | Error::Poisoned { .. }),
            "{plan:?} fault at {n}: erase failed with an unexpected error: {e}"
        ),
    }
    let erase_ok = erase.is_ok();
    let (acked, in_doubt) = match late {
        Ok(late) => (late, None),
        Err(_) => {
            // The failed commit may have landed (its bytes may survive a crash).
            let mut doubt = after_erase.clone();
            let (id, v) = late_record(keyed);
            doubt.insert(id, v);
            (after_erase, Some(doubt))
        }
    };
    drop(db);
    ErasureRun { fs, acked, in_doubt, erase_ok, fired }
}

fn keyless(fs: &MemFs) -> Options {
    Options::new()
        .file_system(Arc::new(fs.clone()))
        .segment_bytes(8 * 1024)
        .checkpoint_after_ops(None)
        .audit(false)
}

/// The record of the commit after the erasure: person 8, with PII only when keyed.
fn late_record(keyed: bool) -> (String, (f64, f64, Option<String>)) {
    let (id, (lat, lon, name)) = person(8);
    (id, (lat, lon, name.filter(|_| keyed)))
}

fn late_commit(db: &Database, keyed: bool, state: &mut State) -> Result<(), Error> {
    if keyed {
        return commit_people(db, 8..9, state);
    }
    let (id, (lat, lon, _)) = late_record(false);
    let mut batch = db.begin_write();
    batch.upsert("c", Record::new(id.clone(), LatLon::new(lat, lon).unwrap()))?;
    batch.commit()?;
    state.insert(id, (lat, lon, None));
    Ok(())
}

#[test]
fn a_fault_at_every_step_of_an_erasure_leaves_the_record_whole_or_gone() {
    let start = std::time::Instant::now();
    let (mut images_checked, mut gone, mut whole) = (0u64, 0u64, 0u64);
    // p1 lives in the checkpoint, p6 in the log tail; with and without a key.
    for (victim, keyed) in [("p1", true), ("p6", true), ("p1", false), ("p6", false)] {
        for plan in [Plan::Once, Plan::FromThenOn] {
            for n in 0.. {
                let run = erasure_run(victim, keyed, plan, n);
                if !run.fired {
                    assert!(n > 5, "{victim} {plan:?}: only {n} counted operations");
                    break;
                }
                // The acknowledged state still holds the victim unless the erasure was
                // acknowledged; the victim's expected value is its original record.
                let mut acked = run.acked.clone();
                let original = person(victim[1..].parse().unwrap()).1;
                let in_doubt = run.in_doubt.clone().map(|mut d| {
                    d.insert(victim.to_owned(), original.clone());
                    d
                });
                acked.insert(victim.to_owned(), original);
                for (label, image) in images(&run.fs, n) {
                    let ctx = format!("erase {victim} (key: {keyed}), {plan:?} fault at op {n}, {label}");
                    let db = Database::open(DIR, opts(&image, KEY))
                        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
                    let is_gone = check_recovered(&db, &image, &acked, in_doubt.as_ref(), Some(victim), &ctx);
                    assert!(is_gone || !run.erase_ok, "{ctx}: erase returned Ok but the record is back");
                    // The reopened database accepts writes.
                    let mut next = State::new();
                    commit_people(&db, 20..21, &mut next).unwrap_or_else(|e| panic!("{ctx}: commit: {e}"));
                    if is_gone {
                        gone += 1;
                    } else {
                        whole += 1;
                    }
                    images_checked += 1;
                }
            }
        }
    }
    eprintln!(
        "erasure faults: {images_checked} images ({gone} erased, {whole} whole) in {:?}",
        start.elapsed()
    );
    assert!(images_checked >= 600, "only {images_checked} images checked");
    assert!(gone > 0 && whole > 0, "both outcomes must occur: {gone} erased, {whole} whole");
}

/// In `NoSyncBulkLoad` mode an acknowledged commit may be lost in a crash, but an erasure
/// must still never be half done: its data key may be destroyed only once its tombstone is
/// durable, or a crash leaves a live record whose PII no key can open and the database
/// refuses to open (`check_keys_present`).
#[test]
fn an_erasure_in_bulk_load_mode_is_whole_or_gone_after_power_loss() {
    let fs = MemFs::new();
    let options = |fs: &MemFs| opts(fs, KEY).durability(Durability::NoSyncBulkLoad);
    let db = Database::open(DIR, options(&fs)).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    let mut acked = State::new();
    commit_people(&db, 0..6, &mut acked).unwrap();
    db.sync().unwrap();
    db.erase("c", "p2").unwrap();
    let mut images_checked = 0;
    for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
        for seed in 0..4 {
            let image = fs.crash_image(seed * 3 + m as u64, mode);
            let ctx = format!("bulk-load erase, {mode:?} seed {seed}");
            let db =
                Database::open(DIR, options(&image)).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            check_recovered(&db, &image, &acked, None, Some("p2"), &ctx);
            images_checked += 1;
        }
    }
    drop(db);
    assert_eq!(images_checked, 12);
}

/// In `NoSyncBulkLoad` mode an erasure still returns with a durable tombstone (its receipt
/// says when the erasure became durable), also for a record without PII, whose erasure
/// destroys no key: after power loss (every crash mode) the record stays erased. Before, only
/// an erasure destroying a key synced the log.
#[test]
fn an_erasure_without_a_key_in_bulk_load_mode_is_durable_when_it_returns() {
    let fs = MemFs::new();
    let options = |fs: &MemFs| opts(fs, KEY).durability(Durability::NoSyncBulkLoad);
    let db = Database::open(DIR, options(&fs)).unwrap();
    db.create_collection("c", Schema::new().number("v")).unwrap();
    let mut b = db.begin_write();
    for i in 0..4 {
        b.upsert("c", Record::new(format!("x{i}"), LatLon::new(1.0, f64::from(i)).unwrap()).number("v", 1.0))
            .unwrap();
    }
    b.commit().unwrap();
    db.sync().unwrap();
    let receipt = db.erase("c", "x2").unwrap();
    assert!(receipt.existed && receipt.removed.iter().all(|r| r != "data key"), "{receipt:?}");
    for (m, mode) in CrashMode::ALL.into_iter().enumerate() {
        for seed in 0..3 {
            let image = fs.crash_image(seed * 3 + m as u64, mode);
            let ctx = format!("keyless bulk-load erase, {mode:?} seed {seed}");
            let db =
                Database::open(DIR, options(&image)).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            let snap = db.read();
            let c = snap.collection("c").unwrap();
            assert!(c.get("x2").unwrap().is_none(), "{ctx}: the erased record came back");
            assert_eq!(c.len(), 3, "{ctx}");
        }
    }
}

/// Erasures of different records committed in one group-commit round still share it: one
/// MANIFEST and one keystore rewrite (two renames) for both. Only a re-insertion of an id erased earlier in the
/// round ends it (privacy_ext's round test). The leader waits 400 ms; the second erasure
/// starts 100 ms after the first; repeated up to five times in case the scheduler parts them.
#[test]
fn erasures_of_different_records_share_a_commit_round() {
    use std::time::Duration;
    let mut renames_seen = Vec::new();
    for _ in 0..5 {
        let fs = MemFs::new();
        let options =
            opts(&fs, KEY).durability(Durability::GroupCommit { max_wait: Duration::from_millis(400) });
        let db = Database::open(DIR, options).unwrap();
        db.create_collection("c", Schema::new().pii("name")).unwrap();
        commit_people(&db, 0..4, &mut State::new()).unwrap();
        let before = fs.op_count(OpKind::Rename);
        std::thread::scope(|s| {
            let first = s.spawn(|| db.erase("c", "p1").unwrap());
            std::thread::sleep(Duration::from_millis(100));
            db.erase("c", "p2").unwrap();
            first.join().unwrap();
        });
        let renames = fs.op_count(OpKind::Rename) - before;
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        assert_eq!(
            (c.len(), c.get("p1").unwrap().is_none(), c.get("p2").unwrap().is_none()),
            (2, true, true)
        );
        assert!(!keystore_holds(&fs, "p1") && !keystore_holds(&fs, "p2"), "both keys destroyed");
        renames_seen.push(renames);
        // One round: one MANIFEST (the erased key ids) and one keystore rewrite.
        if renames == 2 {
            return;
        }
    }
    panic!("the two erasures never shared a round (keystore renames per run: {renames_seen:?})");
}

// ---------------------------------------------------------------------------------------
// (b) master-key rotation

#[test]
fn a_fault_at_every_step_of_a_key_rotation_leaves_exactly_one_key_working() {
    let start = std::time::Instant::now();
    let (mut images_checked, mut rotated, mut not_rotated) = (0u64, 0u64, 0u64);
    for plan in [Plan::Once, Plan::FromThenOn] {
        for n in 0.. {
            let fs = MemFs::new();
            let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
            db.create_collection("c", Schema::new().pii("name")).unwrap();
            let mut acked = State::new();
            commit_people(&db, 0..3, &mut acked).unwrap();
            db.checkpoint().unwrap();
            commit_people(&db, 3..6, &mut acked).unwrap();
            let ((rotation, late), fired) = with_plan(&fs, plan, n, || {
                let rotation = db.rotate_master_key(&RawKey::new(NEW_KEY));
                let mut late = acked.clone();
                let result = commit_people(&db, 6..8, &mut late).map(|()| late);
                (rotation, result)
            });
            if !fired {
                assert!(n > 5, "{plan:?}: only {n} counted operations");
                break;
            }
            if let Err(e) = &rotation {
                assert!(matches!(e, Error::Io { .. }), "{plan:?} fault at {n}: rotation failed with {e}");
            }
            let in_doubt = match late {
                Ok(late) => {
                    acked = late;
                    None
                }
                Err(_) => {
                    let mut d = acked.clone();
                    commit_people_into(&mut d, 6..8);
                    Some(d)
                }
            };
            drop(db);
            for (label, image) in images(&fs, n) {
                let ctx = format!(
                    "rotation, {plan:?} fault at op {n} (rotation {}), {label}",
                    ok_or_err(&rotation)
                );
                // A wrong key fails before anything is written, so both can be tried on
                // the image itself; the one that works is then opened again for the checks.
                let old = Database::open(DIR, opts(&image, KEY)).map(drop);
                let new = Database::open(DIR, opts(&image, NEW_KEY)).map(drop);
                let key = match (old, new) {
                    (Ok(()), Ok(())) => panic!("{ctx}: both the old and the new key open the database"),
                    (Err(a), Err(b)) => panic!("{ctx}: neither key opens the database: old {a}; new {b}"),
                    (Ok(()), Err(e)) => {
                        assert!(matches!(e, Error::WrongKey), "{ctx}: the new key fails with {e}");
                        assert!(
                            rotation.is_err(),
                            "{ctx}: rotation was acknowledged but only the old key works"
                        );
                        not_rotated += 1;
                        KEY
                    }
                    (Err(e), Ok(())) => {
                        assert!(matches!(e, Error::WrongKey), "{ctx}: the old key fails with {e}");
                        rotated += 1;
                        NEW_KEY
                    }
                };
                let db = Database::open(DIR, opts(&image, key)).unwrap();
                check_recovered(&db, &image, &acked, in_doubt.as_ref(), None, &ctx);
                images_checked += 1;
            }
        }
    }
    eprintln!(
        "rotation faults: {images_checked} images ({rotated} rotated, {not_rotated} not) in {:?}",
        start.elapsed()
    );
    assert!(images_checked >= 120, "only {images_checked} images checked");
    assert!(rotated > 0 && not_rotated > 0, "both outcomes must occur: {rotated} rotated, {not_rotated} not");
}

fn ok_or_err<T>(r: &Result<T, Error>) -> &'static str {
    if r.is_ok() {
        "Ok"
    } else {
        "Err"
    }
}

// ---------------------------------------------------------------------------------------
// (c) recovery itself

/// A database image whose next open has work to do, and what that open must find.
struct Scenario {
    name: String,
    image: MemFs,
    acked: State,
    in_doubt: Option<State>,
    erased: Option<&'static str>,
}

/// Records p0..p3 in a checkpoint, p4..p7 in the log tail after it.
fn checkpoint_and_tail() -> (MemFs, Database, State) {
    let fs = MemFs::new();
    let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    let mut acked = State::new();
    commit_people(&db, 0..4, &mut acked).unwrap();
    db.checkpoint().unwrap();
    commit_people(&db, 4..8, &mut acked).unwrap();
    (fs, db, acked)
}

/// A commit without PII (no keystore I/O), so its log bytes are the only unsynced ones.
fn plain_commit(db: &Database, state: &State) -> (Result<(), Error>, State) {
    let mut after = state.clone();
    let mut batch = db.begin_write();
    for i in 0..6 {
        let id = format!("plain{i}");
        let (lat, lon) = (-30.0 - f64::from(i), 100.0 + f64::from(i));
        batch.upsert("c", Record::new(id.clone(), LatLon::new(lat, lon).unwrap())).unwrap();
        after.insert(id, (lat, lon, None));
    }
    batch.delete("c", "p5").unwrap();
    after.remove("p5");
    (batch.commit().map(|_| ()), after)
}

fn last_segment(fs: &MemFs) -> std::path::PathBuf {
    fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).max().unwrap()
}

/// How many bytes a clean open of (a copy of) `image` cuts off the log tail.
fn torn_bytes(image: &MemFs) -> u64 {
    let probe = Database::open(DIR, opts(&image.crash_image(0, CrashMode::SyncedOnly), KEY)).unwrap();
    probe.stats().truncated_tail_bytes
}

fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();

    // 1. A torn log tail: a commit whose fsync failed, then power loss keeping part of it.
    // (The log cuts a failed commit's bytes at once, best effort: here that cut fails too.)
    let (fs, db, acked) = checkpoint_and_tail();
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Sync, 0).fail_once(OpKind::Truncate, 0));
    let (failed, _) = plain_commit(&db, &acked);
    assert!(failed.is_err());
    drop(db);
    for mode in [CrashMode::TornPrefix, CrashMode::Garbage] {
        let seed = (0..200).find(|&s| torn_bytes(&fs.crash_image(s, mode)) > 0).unwrap();
        // Part of the commit was cut, so it must not come back.
        out.push(Scenario {
            name: format!("torn tail ({mode:?})"),
            image: fs.crash_image(seed, mode),
            acked: acked.clone(),
            in_doubt: None,
            erased: None,
        });
    }

    // 2. An erasure interrupted after its tombstone: the keystore rewrite's rename fails
    // (rename 0 publishes the MANIFEST with the erased key id, rename 1 the keystore).
    let (fs, db, acked) = checkpoint_and_tail();
    fs.set_faults(FaultPlan::new().fail_from(OpKind::Rename, 1));
    assert!(db.erase("c", "p2").is_err());
    drop(db);
    let mut erased = acked.clone();
    erased.remove("p2");
    out.push(Scenario {
        name: "interrupted erasure".into(),
        image: fs.crash_image(1, CrashMode::SyncedOnly),
        acked: erased.clone(),
        in_doubt: None,
        erased: Some("p2"),
    });
    // The same with the keystore's temporary file surviving the crash.
    let tmp = Path::new("/db/keystore.tmp");
    let seed = (0..200).find(|&s| fs.crash_image(s, CrashMode::TornPrefix).exists(tmp).unwrap()).unwrap();
    out.push(Scenario {
        name: "interrupted erasure, keystore.tmp left".into(),
        image: fs.crash_image(seed, CrashMode::TornPrefix),
        acked: erased.clone(),
        in_doubt: None,
        erased: Some("p2"),
    });

    // 3. All at once: the interrupted erasure's image, plus a torn transaction after the
    // tombstone. The torn bytes are real: a copy of that image is opened (which finishes the
    // erasure there, its checkpoint starting a new segment), a commit is written whose fsync
    // fails, and half of its frame bytes are appended to the interrupted image's last
    // segment — what a power loss during such a write would have left.
    let image = fs.crash_image(1, CrashMode::SyncedOnly);
    let seg = last_segment(&image);
    let synced = image.read_all(&seg).unwrap();
    let donor = image.crash_image(0, CrashMode::SyncedOnly);
    let db = Database::open(DIR, opts(&donor, KEY)).unwrap();
    let donor_seg = last_segment(&donor);
    let before = donor.read_all(&donor_seg).unwrap();
    // (The log's own cut of the failed commit fails too, so its bytes stay to be copied.)
    donor.set_faults(FaultPlan::new().fail_once(OpKind::Sync, 0).fail_once(OpKind::Truncate, 0));
    let (failed, _) = plain_commit(&db, &erased);
    assert!(failed.is_err());
    drop(db);
    assert_eq!(last_segment(&donor), donor_seg, "the donor commit went to another segment");
    let written = donor.read_all(&donor_seg).unwrap();
    assert!(written.len() > before.len() + 16 && written.starts_with(&before));
    let frames = &written[before.len()..];
    let mut torn = synced.clone();
    torn.extend_from_slice(&frames[..frames.len() / 2]);
    image.write_raw(&seg, &torn);
    assert!(torn_bytes(&image) > 0, "the grafted tail is not cut");
    out.push(Scenario {
        name: "interrupted erasure + torn tail".into(),
        image,
        acked: erased,
        in_doubt: None,
        erased: Some("p2"),
    });

    // 4. A second checkpoint interrupted before its manifest was published (renames: #0 the
    // new log segment, #1 the checkpoint file, #2 the manifest): its file is left over in
    // `index/`, and the next open removes it (best effort).
    let (fs, db, mut acked) = checkpoint_and_tail();
    commit_people(&db, 8..10, &mut acked).unwrap();
    fs.set_faults(FaultPlan::new().fail_from(OpKind::Rename, 2));
    assert!(db.checkpoint().is_err());
    drop(db);
    let image = fs.crash_image(2, CrashMode::SyncedOnly);
    let in_index = |fs: &MemFs| fs.list_files().iter().filter(|p| p.starts_with("/db/index")).count();
    assert_eq!(in_index(&image), 2, "no leftover checkpoint file: {:?}", image.list_files());
    out.push(Scenario { name: "interrupted checkpoint".into(), image, acked, in_doubt: None, erased: None });
    out
}

#[test]
fn a_fault_at_every_io_step_of_recovery_fails_cleanly_or_recovers() {
    let start = std::time::Instant::now();
    let (mut runs, mut opened, mut failed, mut images_checked) = (0u64, 0u64, 0u64, 0u64);
    for sc in scenarios() {
        for plan in [Plan::Once, Plan::FromThenOn] {
            for n in 0.. {
                let fs = sc.image.crash_image(0, CrashMode::SyncedOnly); // a fresh copy
                let ctx = format!("{}: open with a {plan:?} fault at op {n}", sc.name);
                let (result, fired) = with_plan(&fs, plan, n, || {
                    // Reads of an opened handle run with the faults still installed.
                    Database::open(DIR, opts(&fs, KEY)).map(|db| {
                        check_recovered(&db, &fs, &sc.acked, sc.in_doubt.as_ref(), sc.erased, &ctx);
                    })
                });
                if !fired {
                    assert!(n >= 1, "{ctx}: open of this scenario did no counted operation");
                    assert!(result.is_ok(), "{ctx}: open failed without a fault: {:?}", result.err());
                    eprintln!("{}: open does {n} counted operations", sc.name);
                    break;
                }
                match result {
                    Ok(_) => opened += 1,
                    Err(e) => {
                        assert!(matches!(e, Error::Io { .. }), "{ctx}: not an I/O error: {e}");
                        let msg = e.to_string();
                        assert!(
                            msg.contains(DIR) && msg.contains("injected fault"),
                            "{ctx}: unclear error: {msg}"
                        );
                        failed += 1;
                    }
                }
                runs += 1;
                for (label, image) in images(&fs, n) {
                    let ctx = format!("{ctx}, then a clean open of the {label} image");
                    let db = Database::open(DIR, opts(&image, KEY).verify_checkpoints_at_open(true))
                        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
                    assert!(db.checkpoint_rejected().is_none(), "{ctx}: checkpoint rejected");
                    check_recovered(&db, &image, &sc.acked, sc.in_doubt.as_ref(), sc.erased, &ctx);
                    images_checked += 1;
                }
            }
        }
    }
    eprintln!(
        "recovery faults: {runs} faulted opens ({opened} Ok, {failed} Err), {images_checked} images in {:?}",
        start.elapsed()
    );
    assert!(
        runs >= 50 && failed >= 40 && opened >= 1,
        "only {runs} faulted opens ({failed} failed, {opened} opened)"
    );
    assert_eq!(images_checked, (2 + 2 * RANDOM_IMAGES) * runs);
}

// ---------------------------------------------------------------------------------------
// (d) a batch issuing more data keys than one keystore frame holds (pipelined sealing)

/// More records than one keystore frame of new keys (65,536): the batch is sealed while its
/// later key frames are still being issued.
const PIPELINED: u32 = 66_000;

/// Record `i` of the pipelined batch: spread over a 100 × 66 grid of 0.1°; records from 3
/// on with an odd number also have a phone (so the pipelined batch creates the blind index's
/// root key).
fn grid_person(i: u32) -> Record {
    let at = LatLon::new(f64::from(i % 1000) * 0.1 - 50.0, f64::from(i / 1000) * 0.1).unwrap();
    let r = Record::new(format!("g{i}"), at).pii("name", format!("secret-person-{i}"));
    if i >= 3 && i % 2 == 1 {
        r.pii("phone", format!("+336{i:08}"))
    } else {
        r
    }
}

/// Upserts grid records `ids` in one commit; a large batch repeats two records, one in each
/// keystore frame of new keys.
fn commit_grid(db: &Database, ids: std::ops::Range<u32>) -> Result<(), Error> {
    let mut batch = db.begin_write();
    let mut records: Vec<Record> = ids.clone().map(grid_person).collect();
    if ids.end > 65_901 {
        records.extend([grid_person(11), grid_person(65_901)]);
    }
    let rejected = batch.upsert_many("c", records)?;
    assert!(rejected.is_empty(), "{rejected:?}");
    batch.commit().map(|_| ())
}

/// The database's records as (count, a sample of ids with their revealed name): every 997th
/// id of the pipelined batch, its last, the two it repeats, and the records written before
/// it; the repeated ones' phones must be found by the blind index.
fn pipelined_sample(db: &Database, ctx: &str) -> (usize, Vec<(String, Option<String>)>) {
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    let ids = (0..PIPELINED).step_by(997).chain([1, 2, 11, 65_901, PIPELINED - 1]);
    let sample = ids
        .map(|i| {
            let id = format!("g{i}");
            let name = c.get(&id).unwrap().map(|_| {
                let pii =
                    c.reveal(&id).unwrap_or_else(|e| panic!("{ctx}: {id} is live but reveal fails: {e}"));
                // (A scan of every record: only for the two repeated ones.)
                if let Some(phone) = pii.get("phone").filter(|_| i == 11 || i == 65_901) {
                    let found = c.find_by_phone(phone.expose()).unwrap();
                    assert_eq!(found, std::slice::from_ref(&id), "{ctx}: the blind index does not find {id}");
                }
                pii.get("name").map_or_else(String::new, |p| p.expose().to_owned())
            });
            (id, name)
        })
        .collect();
    (c.len(), sample)
}

/// A failure at any write or sync of a pipelined batch — one of its keystore frames, its log
/// frames, their syncs — makes the commit err, and the reopened database (live files, and
/// the synced-only crash image) holds either the state before it or the whole batch (a
/// failed log sync leaves the outcome in doubt), never a part, with every sampled record's
/// PII readable (and two phones found by the blind index); a later retry lands whole. (Records
/// g0, g1 and g2 exist before, so the batch mixes existing and new keys; two records come
/// twice, one in each frame of new keys.)
#[test]
fn a_pipelined_batch_that_fails_at_any_write_or_sync_lands_whole_or_not_at_all() {
    let fresh = || {
        let fs = MemFs::new();
        let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
        db.create_collection("c", Schema::new().pii("name").pii_of_kind("phone", PiiKind::Phone)).unwrap();
        commit_grid(&db, 0..3).unwrap();
        (fs, db)
    };
    assert!(
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get) >= 2,
        "the pipelined path needs two cores (with one, the batch takes the serial path)"
    );
    // A clean run: how many writes and syncs the batch makes, and what it leaves.
    let (fs, db) = fresh();
    let (writes, syncs) = (fs.op_count(OpKind::Write), fs.op_count(OpKind::Sync));
    commit_grid(&db, 0..PIPELINED).unwrap();
    let (writes, syncs) = (fs.op_count(OpKind::Write) - writes, fs.op_count(OpKind::Sync) - syncs);
    assert!(writes >= 3 && syncs >= 3, "two keystore frames and the log: {writes} writes, {syncs} syncs");
    let whole = pipelined_sample(&db, "clean run");
    assert_eq!(whole.0, PIPELINED as usize);
    for (id, name) in &whole.1 {
        assert_eq!(name.as_deref(), Some(format!("secret-person-{}", &id[1..]).as_str()), "clean run: {id}");
    }
    drop(db);
    let before = {
        let (_, db) = fresh();
        pipelined_sample(&db, "before")
    };
    let start = std::time::Instant::now();
    let mut outcomes = [0u32; 2]; // reopened without the batch, with all of it
    for (kind, count) in [(OpKind::Write, writes), (OpKind::Sync, syncs)] {
        for n in 0..count {
            let ctx = format!("{kind:?} #{n} failed");
            let (fs, db) = fresh();
            fs.set_faults(FaultPlan::new().fail_once(kind, n));
            let result = commit_grid(&db, 0..PIPELINED);
            fs.clear_faults();
            assert!(result.is_err(), "{ctx}: the commit must report the failure");
            drop(db);
            for (image, fs) in
                [("live", fs.clone()), ("synced only", fs.crash_image(n, CrashMode::SyncedOnly))]
            {
                let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
                let got = pipelined_sample(&db, &ctx);
                assert!(got == before || got == whole, "{ctx}, {image}: the batch landed in part: {got:?}");
                outcomes[usize::from(got == whole)] += 1;
            }
            let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
            commit_grid(&db, 0..PIPELINED).unwrap_or_else(|e| panic!("{ctx}: retry: {e}"));
            assert_eq!(pipelined_sample(&db, &ctx), whole, "{ctx}: the retry did not land whole");
        }
    }
    eprintln!(
        "pipelined batch: {writes} writes and {syncs} syncs failed in turn; images without the batch {}, with all of it {}, in {:?}",
        outcomes[0],
        outcomes[1],
        start.elapsed()
    );
    assert!(outcomes[0] >= 4, "most faults must refuse the batch: {outcomes:?}");
}

#[test]
fn an_existence_check_that_fails_is_an_error_never_a_missing_file() {
    // Every keyed record is in the checkpoint, so opening needs no key from the keystore:
    // when `stat` on the keystore (or the manifest, or the log directory) fails, open must
    // say so — taking it for "absent" would create a fresh keystore over the real one and
    // lose every data key.
    let fs = MemFs::new();
    {
        let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
        db.create_collection("c", Schema::new().pii("name")).unwrap();
        let mut batch = db.begin_write();
        for i in 0..20 {
            let at = LatLon::new(10.0 + f64::from(i), 20.0).unwrap();
            batch.upsert("c", Record::new(format!("r{i}"), at).pii("name", format!("name {i}"))).unwrap();
        }
        batch.commit().unwrap();
        db.checkpoint().unwrap();
    }
    let keystore = Path::new(DIR).join("keystore");
    let before = fs.read_all(&keystore).unwrap();
    for failing in [keystore.clone(), Path::new(DIR).join("MANIFEST"), Path::new(DIR).join("log")] {
        fs.fail_stat(&failing);
        for key in [Some(KEY), None] {
            let options = match key {
                Some(k) => opts(&fs, k),
                None => Options::new().file_system(Arc::new(fs.clone())).audit(false),
            };
            match Database::open(DIR, options) {
                Err(Error::Io { path, .. }) => assert_eq!(path, failing),
                other => panic!("stat of {failing:?} failing, key {}: {other:?}", key.is_some()),
            }
            assert_eq!(fs.read_all(&keystore).unwrap(), before, "the keystore is untouched");
        }
        fs.clear_stat_faults();
    }
    let db = Database::open(DIR, opts(&fs, KEY)).unwrap();
    let snap = db.read();
    for i in 0..20 {
        assert_eq!(snap.collection("c").unwrap().reveal(&format!("r{i}")).unwrap().len(), 1, "r{i}");
    }
}
