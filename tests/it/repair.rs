//! `Database::repair` and `geocrm repair`: damage that `open` refuses is salvaged, every
//! step is reported, and what survives is a prefix of the acknowledged commits — never a
//! hole, never a record with wrong values.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use geocrm::crypto::RawKey;
use geocrm::db::RepairAction;
use geocrm::io::{CrashMode, FaultPlan, FileSystem, MemFs, OpKind};
use geocrm::{Database, Error, Filter, LatLon, Options, Record, Schema};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIR: &str = "/db";
const COMMITS: usize = 30;

fn options(fs: &MemFs) -> Options {
    Options::new()
        .key(RawKey::new([9; 32]))
        .file_system(Arc::new(fs.clone()))
        .segment_bytes(4096)
        .checkpoint_after_ops(None)
        .actor("repair-test")
}

/// A PII value long enough that the log spans several 4 KiB segments.
fn name(i: usize) -> String {
    format!("name-{i}-{}", "x".repeat(400))
}

/// Where commit `i` puts the moving record `m`.
fn moved_to(i: usize) -> LatLon {
    LatLon::new(10.0 + i as f64 * 0.5, -20.0 + i as f64).unwrap()
}

fn location_of(i: usize) -> LatLon {
    LatLon::new(-40.0 + i as f64, 100.0 + i as f64 * 0.25).unwrap()
}

/// 30 commits: commit `i` adds `r{i}` (PII name, number, category) and moves `m`. A
/// checkpoint after commit 8, PII reads (audit entries), all synced.
fn build(fs: &MemFs) {
    let db = Database::open(DIR, options(fs)).unwrap();
    db.create_collection("c", Schema::new().number("n").category("t").pii("name")).unwrap();
    for i in 0..COMMITS {
        let mut batch = db.begin_write();
        let r = Record::new(format!("r{i:02}"), location_of(i))
            .number("n", i as f64)
            .category("t", if i % 2 == 0 { "even" } else { "odd" })
            .pii("name", name(i));
        batch.upsert("c", r).unwrap();
        batch.upsert("c", Record::new("m", moved_to(i)).pii("name", format!("m-{i}"))).unwrap();
        batch.commit().unwrap();
        if i == 8 {
            db.checkpoint().unwrap();
        }
        if i % 10 == 0 {
            db.read().collection("c").unwrap().reveal("r00").unwrap();
        }
    }
}

/// Checks that the database holds exactly commits `0..k` for some `k` (returned), with
/// every value right; PII either right or dropped, and then named in a `PiiDropped` step.
fn check_prefix(db: &Database, pii_dropped: &[String], what: &str) -> usize {
    let snap = db.read();
    let Ok(c) = snap.collection("c") else { return 0 };
    let all = c.within_radius(LatLon::new(0.0, 0.0).unwrap(), 3e7, &Filter::All).unwrap();
    let k = all.iter().filter(|h| h.id.starts_with('r')).count();
    for i in 0..COMMITS {
        let id = format!("r{i:02}");
        let got = c.get(&id).unwrap();
        assert_eq!(got.is_some(), i < k, "{what}: {id} present = {} with {k} commits kept", got.is_some());
        let Some(got) = got else { continue };
        assert_eq!(got.location, location_of(i), "{what}: {id}");
        assert_eq!(got.numbers.get("n"), Some(&(i as f64)), "{what}: {id}");
        assert_eq!(
            got.categories.get("t").map(String::as_str),
            Some(if i % 2 == 0 { "even" } else { "odd" })
        );
        check_pii(&c, &id, &name(i), pii_dropped, what);
    }
    if k > 0 {
        let m = c.get("m").unwrap().unwrap_or_else(|| panic!("{what}: m missing"));
        assert_eq!(m.location, moved_to(k - 1), "{what}: m is where commit {} put it", k - 1);
        check_pii(&c, "m", &format!("m-{}", k - 1), pii_dropped, what);
    } else {
        assert!(c.get("m").unwrap().is_none(), "{what}");
    }
    k
}

fn check_pii(c: &geocrm::CollectionReader<'_>, id: &str, name: &str, dropped: &[String], what: &str) {
    let pii = c.reveal(id).unwrap_or_else(|e| panic!("{what}: reveal {id}: {e}"));
    match pii.get("name") {
        Some(v) => assert_eq!(v.expose(), name, "{what}: {id}"),
        None => assert!(dropped.iter().any(|d| d == id), "{what}: {id} lost its PII without a report"),
    }
}

fn dropped_ids(actions: &[RepairAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            RepairAction::PiiDropped { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The ids the report lists as upserted by operations dropped with intact frames.
fn upserts_dropped(actions: &[RepairAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            RepairAction::OperationsDropped { upserted, .. } => Some(upserted.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn copy(fs: &MemFs) -> MemFs {
    fs.crash_image(0, CrashMode::SyncedOnly)
}

fn segments(fs: &MemFs) -> Vec<PathBuf> {
    fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).collect()
}

/// `build`, then `more` on the database (closed after); returns the keystore's length before
/// `more`: where the keystore frames `more` writes start.
fn build_then(fs: &MemFs, more: impl FnOnce(&Database)) -> usize {
    build(fs);
    let frame_at = fs.read_all(&Path::new(DIR).join("keystore")).unwrap().len();
    more(&Database::open(DIR, options(fs)).unwrap());
    frame_at
}

fn repair(fs: &MemFs) -> geocrm::Result<geocrm::db::RepairReport> {
    Database::repair(DIR, options(fs))
}

/// `repair`, with the master key or without any.
fn repair_keyed_or_not(fs: &MemFs, keyed: bool) -> geocrm::db::RepairReport {
    if keyed {
        repair(fs).unwrap()
    } else {
        let keyless = Options::new().file_system(Arc::new(fs.clone())).checkpoint_after_ops(None);
        Database::repair(DIR, keyless).unwrap()
    }
}

/// Asserts that a record with PII written now (the database opened, written to and closed)
/// is issued a key id above `lost`; `what` names the case.
fn assert_new_key_id_above(fs: &MemFs, db_id: [u8; 16], lost: u64, what: &str) {
    let db = Database::open(DIR, options(fs)).unwrap();
    let mut batch = db.begin_write();
    batch.upsert("c", Record::new("new", location_of(3)).pii("name", "new")).unwrap();
    batch.commit().unwrap();
    drop(db);
    let issued = key_id_in_keystore(fs, db_id, "new").unwrap();
    assert!(issued > lost, "{what}: the new record was issued key id {issued}, lost ids reach {lost}");
}

/// The key id `dir/keystore` holds for record `id` of collection `c`, read without the key.
fn key_id_in_keystore(fs: &MemFs, db_id: [u8; 16], id: &str) -> Option<u64> {
    let ks = geocrm::crypto::Keystore::open(Arc::new(fs.clone()), Path::new(DIR), db_id, None).unwrap();
    ks.key_id("c", id)
}

#[test]
fn a_sound_database_is_left_alone() {
    let fs = MemFs::new();
    build(&fs);
    let before: Vec<_> = fs.list_files().into_iter().map(|p| (fs.read_all(&p), p)).collect();
    let report = repair(&fs).unwrap();
    assert!(report.is_clean(), "{:?}", report.actions);
    assert_eq!(report.records, vec![("c".to_owned(), COMMITS as u64 + 1)]);
    let after: Vec<_> = fs.list_files().into_iter().map(|p| (fs.read_all(&p), p)).collect();
    assert_eq!(before, after);
}

#[test]
fn a_lost_or_damaged_manifest_is_rebuilt_and_nothing_is_lost() {
    for damage in ["remove", "flip", "truncate"] {
        let fs = MemFs::new();
        build(&fs);
        let path = Path::new(DIR).join("MANIFEST");
        let bytes = fs.read_all(&path).unwrap();
        match damage {
            "remove" => geocrm::io::FileSystem::remove_file(&fs, &path).unwrap(),
            "flip" => {
                let mut b = bytes.clone();
                b[20] ^= 0x40;
                fs.write_raw(&path, &b);
            }
            _ => fs.write_raw(&path, &bytes[..bytes.len() / 2]),
        }
        assert!(Database::open(DIR, options(&fs)).is_err(), "{damage}");
        let report = repair(&fs).unwrap();
        assert!(
            matches!(report.actions.as_slice(), [RepairAction::ManifestRebuilt { .. }]),
            "{damage}: {:?}",
            report.actions
        );
        let db = Database::open(DIR, options(&fs)).unwrap();
        assert_eq!(check_prefix(&db, &[], damage), COMMITS);
    }
}

#[test]
fn a_damaged_frame_cuts_the_log_there_and_keeps_the_prefix() {
    let fs = MemFs::new();
    build(&fs);
    let segs = segments(&fs);
    assert!(segs.len() >= 4, "the workload spans several segments: {segs:?}");
    // The second-to-last segment is sealed: damage there drops it from the frame on and
    // every later segment.
    let victim = &segs[segs.len() - 2];
    let mut bytes = fs.read_all(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    fs.write_raw(victim, &bytes);
    let Err(Error::Corrupt { file, offset, .. }) = Database::open(DIR, options(&fs)) else {
        panic!("damage in a sealed segment must be refused at open")
    };
    assert_eq!(&file, victim);
    let dry = Database::repair_dry_run(DIR, options(&fs)).unwrap();
    assert!(dry.dry_run);
    assert_eq!(fs.read_all(victim).unwrap(), bytes, "a dry run changes nothing");
    let report = repair(&fs).unwrap();
    assert_eq!(dry.actions, report.actions, "the dry run predicts the repair");
    let cut = report
        .actions
        .iter()
        .find_map(|a| match a {
            RepairAction::LogCut { file, offset: o, .. } => Some((file.clone(), *o)),
            _ => None,
        })
        .expect("a LogCut step");
    assert_eq!(cut, (victim.clone(), offset));
    let removed = report.actions.iter().filter(|a| matches!(a, RepairAction::SegmentRemoved { .. })).count();
    assert_eq!(removed, 1, "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    let kept = check_prefix(&db, &[], "cut");
    assert!(kept > 8 && kept < COMMITS, "kept {kept}");
    // The repaired database takes new writes, which survive a reopen.
    let mut batch = db.begin_write();
    batch.upsert("c", Record::new("new", LatLon::new(1.0, 1.0).unwrap())).unwrap();
    batch.commit().unwrap();
    drop(db);
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert!(db.read().collection("c").unwrap().get("new").unwrap().is_some());
    drop(db);
    assert!(repair(&fs).unwrap().is_clean());
}

#[test]
fn a_damaged_segment_header_is_rebuilt_from_its_frames() {
    let fs = MemFs::new();
    build(&fs);
    let segs = segments(&fs);
    let victim = &segs[segs.len() - 1];
    let mut bytes = fs.read_all(victim).unwrap();
    bytes[25] ^= 0xFF; // first LSN
    fs.write_raw(victim, &bytes);
    assert!(Database::open(DIR, options(&fs)).is_err());
    let report = repair(&fs).unwrap();
    assert!(
        matches!(report.actions.as_slice(), [RepairAction::SegmentHeaderRebuilt { .. }]),
        "{:?}",
        report.actions
    );
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(check_prefix(&db, &[], "header"), COMMITS);
}

/// A segment whose header is intact but names another database (a file copied into the
/// wrong directory) is refused, not re-stamped with this database's id: taking it in
/// replaced this database's records with the other's, and `verify` then passed (from the
/// durability review). Nothing is changed.
#[test]
fn a_segment_of_another_database_is_refused_not_taken_in() {
    let fs = MemFs::new();
    build(&fs);
    let segs = segments(&fs);
    let victim = &segs[segs.len() - 1];
    let mut bytes = fs.read_all(victim).unwrap();
    bytes[28..44].copy_from_slice(&[0xEE; 16]);
    let crc = crc32fast::hash(&bytes[..44]);
    bytes[44..48].copy_from_slice(&crc.to_le_bytes());
    fs.write_raw(victim, &bytes);
    let err = repair(&fs).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "{text}");
    assert!(text.contains("another database") && text.contains("repair does not rewrite it"), "{text}");
    assert_eq!(fs.read_all(victim).unwrap(), bytes, "the file is left as it was");
    assert_eq!(segments(&fs), segs);
    // Nor is an intact header naming a newer version re-stamped.
    let mut newer = fs.read_all(victim).unwrap();
    newer[28..44].copy_from_slice(&fs.read_all(&segs[0]).unwrap()[28..44]);
    newer[8] = 9;
    let crc = crc32fast::hash(&newer[..44]);
    newer[44..48].copy_from_slice(&crc.to_le_bytes());
    fs.write_raw(victim, &newer);
    let text = repair(&fs).unwrap_err().to_string();
    assert!(text.contains("format version 9"), "{text}");
    assert_eq!(fs.read_all(victim).unwrap(), newer, "the file is left as it was");
}

/// A version field damaged above this build's, its header's CRC failing, is damage that
/// repair rebuilds with nothing lost: every segment version keeps the CRC where it is. It
/// was refused "whatever its CRC", so 15 of the 16 flips of the field made the log
/// unrepairable (from the file-validation review).
#[test]
fn a_segment_version_flipped_above_this_builds_is_repaired() {
    let fs = MemFs::new();
    build(&fs);
    let segs = segments(&fs);
    for bit in 0..16 {
        let img = copy(&fs);
        let victim = &segs[segs.len() - 1];
        let mut bytes = img.read_all(victim).unwrap();
        bytes[8 + bit / 8] ^= 1 << (bit % 8);
        img.write_raw(victim, &bytes);
        assert!(Database::open(DIR, options(&img)).is_err(), "bit {bit}: opened");
        let report = repair(&img).unwrap_or_else(|e| panic!("bit {bit}: {e}"));
        assert!(!report.actions.is_empty(), "bit {bit}");
        let db = Database::open(DIR, options(&img)).unwrap();
        assert_eq!(check_prefix(&db, &[], "version flip"), COMMITS, "bit {bit}");
    }
}

/// A log that lost every segment, with no checkpoint to start from: the repair says so (it
/// reported nothing to repair, and the database opened empty; from the durability review).
#[test]
fn a_log_with_no_segment_left_is_reported_lost() {
    let fs = MemFs::new();
    let db = Database::open(DIR, options(&fs)).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    for i in 0..3 {
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new(format!("r{i}"), location_of(i))).unwrap();
        batch.commit().unwrap();
    }
    drop(db);
    for seg in segments(&fs) {
        fs.remove_file(&seg).unwrap();
    }
    let report = repair(&fs).unwrap();
    assert!(matches!(report.actions.as_slice(), [RepairAction::LogLost { .. }]), "{:?}", report.actions);
    let text = report.actions[0].to_string();
    assert!(text.contains("every record written before is gone"), "{text}");
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert!(db.read().collection("c").is_err(), "nothing of the lost log comes back");
}

#[test]
fn a_missing_segment_drops_it_and_everything_after() {
    let fs = MemFs::new();
    build(&fs);
    let segs = segments(&fs);
    assert!(segs.len() >= 5, "{segs:?}");
    // Not the checkpoint's segment (that one is recreated empty), one after it.
    geocrm::io::FileSystem::remove_file(&fs, &segs[segs.len() - 2]).unwrap();
    assert!(Database::open(DIR, options(&fs)).is_err());
    let report = repair(&fs).unwrap();
    // The missing segment is said to be lost (what it held cannot be listed), and the
    // commits of the one after it, which the repair removes, are listed: each upserted `m`
    // and an `r`.
    assert!(
        matches!(report.actions.as_slice(), [
            RepairAction::SegmentLost { file, found_bytes: None, synced_bytes: None, .. },
            RepairAction::SegmentRemoved { .. },
            RepairAction::OperationsDropped { collection, upserted, deleted, erased }
        ] if *file == segs[segs.len() - 2] && collection == "c" && upserted.contains(&"m".to_owned())
            && upserted.len() >= 2 && deleted.is_empty() && erased.is_empty()),
        "{:?}",
        report.actions
    );
    assert!(report.acknowledged_data_lost);
    let db = Database::open(DIR, options(&fs)).unwrap();
    let kept = check_prefix(&db, &[], "gap");
    assert!(kept > 8 && kept < COMMITS, "kept {kept}");
}

/// Damages a frame in the middle of the keystore (not its header, not its last frame): the
/// last byte of its last entry's wrapped key.
fn flip_a_byte_mid_keystore(fs: &MemFs) {
    let path = Path::new(DIR).join("keystore");
    let mut bytes = fs.read_all(&path).unwrap();
    // Frames are `len u32 | crc u32 | payload` after the 99-byte header (FORMAT.md § 8).
    let mut ends = Vec::new();
    let mut at = 99;
    while at < bytes.len() {
        at += 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        ends.push(at);
    }
    assert!(ends.len() >= 3, "{} frames", ends.len());
    bytes[ends[ends.len() / 2] - 1] ^= 0x01;
    fs.write_raw(&path, &bytes);
}

#[test]
fn a_damaged_keystore_frame_costs_only_the_pii_of_its_records() {
    let fs = MemFs::new();
    build(&fs);
    flip_a_byte_mid_keystore(&fs);
    assert!(Database::open(DIR, options(&fs)).is_err());
    let report = repair(&fs).unwrap();
    assert!(matches!(report.actions.first(), Some(RepairAction::KeystoreCut { .. })), "{:?}", report.actions);
    // Only the damaged frame's key (one per commit here) is lost: every later frame is kept
    // (a cut at the frame lost every later key: from a hands-on review).
    let dropped = dropped_ids(&report.actions);
    assert_eq!(dropped.len(), 1, "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_none());
    assert_eq!(check_prefix(&db, &dropped, "keystore"), COMMITS);
    for id in &dropped {
        assert!(db.read().collection("c").unwrap().reveal(id).unwrap().is_empty(), "{id}");
    }
}

#[test]
fn a_damaged_final_keystore_frame_seen_by_a_failed_open_still_costs_only_pii() {
    // The final frame holds the last commits' keys. A plain open leaves it out as torn, finds
    // live records without their keys and fails — and must leave the file as it was, so the
    // repair that follows knows the keystore was cut and keeps those records without PII
    // (before: the failed open truncated the file, and repair deleted them as erased).
    let fs = MemFs::new();
    build(&fs);
    let path = Path::new(DIR).join("keystore");
    let bytes = damage_the_final_keystore_frame(&fs);
    for _ in 0..2 {
        match Database::open(DIR, options(&fs)) {
            Err(Error::Corrupt { file, offset, .. }) => {
                assert_eq!(file, path);
                assert!(offset > 0 && offset < bytes.len() as u64, "{offset} names where the frame starts");
            }
            other => panic!("expected Corrupt keystore, got {other:?}"),
        }
        assert!(fs.read_all(&path).unwrap() == bytes, "a failed open leaves the keystore as it was");
    }
    let report = repair(&fs).unwrap();
    assert!(
        !report.actions.iter().any(|a| matches!(a, RepairAction::ErasedAgain { .. })),
        "{:?}",
        report.actions
    );
    let dropped = dropped_ids(&report.actions);
    assert!(dropped.contains(&format!("r{:02}", COMMITS - 1)), "{:?}", report.actions);
    assert!(fs.read_all(&path).unwrap().len() < bytes.len(), "repair cut the damaged frame");
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(check_prefix(&db, &dropped, "keystore"), COMMITS);
}

/// Flips the keystore's last byte: its final frame (the last commits' keys) looks torn.
fn damage_the_final_keystore_frame(fs: &MemFs) -> Vec<u8> {
    let path = Path::new(DIR).join("keystore");
    let mut bytes = fs.read_all(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs.write_raw(&path, &bytes);
    bytes
}

/// The repair kept every commit, dropping the PII of the records whose keys were in the
/// damaged final frame, and deleted nothing as erased.
fn check_kept_without_pii(fs: &MemFs, report: &geocrm::db::RepairReport) {
    let erased = report.actions.iter().any(|a| matches!(a, RepairAction::ErasedAgain { .. }));
    assert!(!erased, "{:?}", report.actions);
    let dropped = dropped_ids(&report.actions);
    assert!(dropped.contains(&format!("r{:02}", COMMITS - 1)), "{:?}", report.actions);
    let db = Database::open(DIR, options(fs)).unwrap();
    assert_eq!(check_prefix(&db, &dropped, "keystore"), COMMITS);
}

#[test]
fn a_damaged_final_keystore_frame_and_a_damaged_audit_log_cost_only_pii() {
    // The audit log fails the first repair-mode open after the keystore was read: the
    // keystore must not have been cut yet, or the reopen would see no cut and delete the
    // records as erased.
    let fs = MemFs::new();
    build(&fs);
    damage_the_final_keystore_frame(&fs);
    let audit = Path::new(DIR).join("audit.log");
    let mut bytes = fs.read_all(&audit).unwrap();
    bytes[40] ^= 0x01;
    fs.write_raw(&audit, &bytes);
    let report = repair(&fs).unwrap();
    assert!(
        report.actions.iter().any(|a| matches!(a, RepairAction::AuditCut { .. })),
        "{:?}",
        report.actions
    );
    check_kept_without_pii(&fs, &report);
}

#[test]
fn a_damaged_final_keystore_frame_of_checkpointed_records_is_refused_until_repair() {
    // Every record is in the checkpoint, so replay sees none of them. A keyed open used to
    // succeed, and the next key written cut the frame: the records' PII was gone, and only
    // a read of one said so. Now the first use of the keys (the keystore is read then, not
    // at open) reads back the checkpoint rows without a key and refuses — every use, until
    // a repair; the frame stays in the file for repair, which keeps the records without PII.
    // Locations stay readable, and a keyless open works and leaves the file alone too.
    let fs = MemFs::new();
    build(&fs);
    Database::open(DIR, options(&fs)).unwrap().checkpoint().unwrap();
    let bytes = damage_the_final_keystore_frame(&fs);
    let keystore = || fs.read_all(&Path::new(DIR).join("keystore")).unwrap();
    let damage = |r: geocrm::Result<()>, what: &str| match r {
        Err(e @ Error::Corrupt { .. }) if e.to_string().contains("in the checkpoint") => {
            assert!(matches!(&e, Error::Corrupt { file, .. } if file.ends_with("keystore")), "{what}: {e}");
        }
        other => panic!("{what}: {other:?}"),
    };
    for _ in 0..2 {
        let keyed = Database::open(DIR, options(&fs)).unwrap();
        keyed.read().collection("c").unwrap().get("r00").unwrap().unwrap();
        for _ in 0..2 {
            damage(keyed.read().collection("c").unwrap().reveal("r00").map(drop), "reveal");
            let mut batch = keyed.begin_write();
            batch.upsert("c", Record::new("new", LatLon::new(1.0, 1.0).unwrap()).pii("name", "n")).unwrap();
            damage(batch.commit().map(drop), "a write with PII");
        }
        drop(keyed);
        assert!(keystore() == bytes, "left as it was");
        let keyless = Database::open(DIR, Options::new().file_system(Arc::new(fs.clone()))).unwrap();
        keyless.read().collection("c").unwrap().get("r00").unwrap().unwrap();
        // What rewrites the keystore without a key refuses too, before it would drop the
        // frame for good; `verify` reports it.
        let refused = |r: geocrm::Result<()>, what: &str| match r {
            Err(Error::Corrupt { file, .. }) if file.ends_with("keystore") => {}
            other => panic!("{what}: {other:?}"),
        };
        refused(keyless.compact().map(drop), "compact");
        refused(keyless.erase("c", "r01").map(drop), "erase");
        let report = keyless.verify().unwrap();
        assert!(!report.is_ok(), "{report:?}");
        drop(keyless);
        assert!(keystore() == bytes, "left as it was");
    }
    let report = repair(&fs).unwrap();
    check_kept_without_pii(&fs, &report);
    // Writable again, with new keys.
    let db = Database::open(DIR, options(&fs)).unwrap();
    let mut batch = db.begin_write();
    batch
        .upsert("c", Record::new("later", LatLon::new(1.0, 1.0).unwrap()).pii("name", "later-name"))
        .unwrap();
    batch.commit().unwrap();
    assert_eq!(db.read().collection("c").unwrap().reveal("later").unwrap()["name"].expose(), "later-name");
}

/// The built database with every record in the checkpoint, then its keystore removed.
fn checkpointed_then_keystore_lost() -> (MemFs, PathBuf) {
    let fs = MemFs::new();
    build(&fs);
    Database::open(DIR, options(&fs)).unwrap().checkpoint().unwrap();
    let path = Path::new(DIR).join("keystore");
    fs.remove_file(&path).unwrap();
    (fs, path)
}

#[test]
fn a_lost_keystore_is_refused_by_open_and_repair() {
    // Every keyed record is in the checkpoint, so replay sees none of them: open used to
    // create an empty keystore in its place, every sealed record then read as erased, and
    // repair (the same without the flag) deleted them all. The MANIFEST knows there was one.
    let (fs, path) = checkpointed_then_keystore_lost();
    for attempt in [Database::open(DIR, options(&fs)).map(|_| ()), repair(&fs).map(|_| ())] {
        let err = attempt.unwrap_err();
        assert!(matches!(&err, Error::Corrupt { file, .. } if file == &path), "{err}");
        assert!(err.to_string().contains("backup"), "{err}");
        assert!(!fs.exists(&path).unwrap(), "no keystore was created in its place");
    }
    // Without a key nothing could replace it: locations stay readable, PII reads fail, and
    // `verify` reports the missing file.
    let without_key = Options::new().file_system(Arc::new(fs.clone())).segment_bytes(4096);
    let db = Database::open(DIR, without_key).unwrap();
    assert_eq!(db.read().collection("c").unwrap().get("r03").unwrap().unwrap().location, location_of(3));
    assert!(db.read().collection("c").unwrap().reveal("r03").is_err());
    let report = db.verify().unwrap();
    let problem = report.files.iter().find(|f| f.path == path).and_then(|f| f.problem.clone());
    assert!(problem.is_some_and(|p| p.contains("missing")), "{report:?}");
    // Nor may it erase: the tombstone would name no key, and the restored keystore's key
    // for the record would never be destroyed.
    let err = db.erase("c", "r03").unwrap_err();
    assert!(matches!(&err, Error::Corrupt { file, .. } if file == &path), "{err}");
    assert!(db.read().collection("c").unwrap().get("r03").unwrap().is_some());
    drop(db);
    assert!(!fs.exists(&path).unwrap());
}

#[test]
fn a_lost_keystore_with_a_rebuilt_manifest_is_refused_by_repair() {
    // A rebuilt MANIFEST does not know the database had a keystore: repair itself must not
    // create an empty one, nor take every sealed record for erased (it deleted them all).
    let (fs, path) = checkpointed_then_keystore_lost();
    fs.write_raw(&Path::new(DIR).join("MANIFEST"), b"garbage");
    let err = repair(&fs).map(|r| r.actions).unwrap_err();
    assert!(matches!(&err, Error::Corrupt { file, .. } if file == &path), "{err}");
    assert!(err.to_string().contains("backup"), "{err}");
    assert!(!fs.exists(&path).unwrap(), "no keystore was created in its place");
}

#[test]
fn a_repair_failing_after_cutting_a_mid_keystore_frame_does_not_erase_on_the_next_run() {
    // The first run cuts the keystore at the damaged frame, then fails before committing its
    // conclusions. The next run finds a clean, shorter keystore and no cut to report — and
    // used to delete the records whose keys the cut took as erased.
    let fs = MemFs::new();
    build(&fs);
    flip_a_byte_mid_keystore(&fs);
    let len = fs.file_len(&Path::new(DIR).join("keystore")).unwrap();
    let mut nth = 0;
    let report = loop {
        let attempt = copy(&fs);
        attempt.set_faults(FaultPlan::new().fail_from(OpKind::Write, nth));
        let failed = repair(&attempt).is_err();
        attempt.set_faults(FaultPlan::new());
        let cut = attempt.file_len(&Path::new(DIR).join("keystore")).unwrap() < len;
        if failed && cut {
            break repair(&attempt).unwrap();
        }
        assert!(nth < 200, "no failing write came after the cut");
        nth += 1;
    };
    let erased = report.actions.iter().any(|a| matches!(a, RepairAction::ErasedAgain { .. }));
    assert!(!erased, "{:?}", report.actions);
    assert!(!dropped_ids(&report.actions).is_empty(), "{:?}", report.actions);
}

#[test]
fn an_unfinished_erasure_does_not_hide_a_damaged_final_keystore_frame() {
    unfinished_erasure_and_damaged_final_frame(false);
}

#[test]
fn an_unfinished_erasure_and_a_damaged_audit_log_do_not_hide_a_damaged_final_keystore_frame() {
    unfinished_erasure_and_damaged_final_frame(true);
}

/// An erasure whose keystore rewrite failed (its tombstone durable) is finished by the next
/// open, which rewrites the keystore — after the key check, and when repairing only once
/// repair has drawn its conclusions (`damage_audit` makes its first open fail after the
/// keystore was read), or the rewrite would drop the damaged final frame and the repair
/// would delete its records.
fn unfinished_erasure_and_damaged_final_frame(damage_audit: bool) {
    let fs = MemFs::new();
    build(&fs);
    {
        // Large segments: the tombstone's commit must not roll the log (a rename).
        let db = Database::open(DIR, options(&fs).segment_bytes(1 << 20)).unwrap();
        // Rename 0 records the erased key id in the MANIFEST; rename 1 is the keystore's.
        fs.set_faults(FaultPlan::new().fail_from(OpKind::Rename, 1));
        assert!(db.erase("c", "r05").is_err());
    }
    fs.set_faults(FaultPlan::new());
    let bytes = damage_the_final_keystore_frame(&fs);
    assert!(matches!(Database::open(DIR, options(&fs)), Err(Error::Corrupt { .. })));
    assert!(fs.read_all(&Path::new(DIR).join("keystore")).unwrap() == bytes, "left as it was");
    if damage_audit {
        let audit = Path::new(DIR).join("audit.log");
        let mut bytes = fs.read_all(&audit).unwrap();
        bytes[40] ^= 0x01;
        fs.write_raw(&audit, &bytes);
    }
    let report = repair(&fs).unwrap();
    let erased = report.actions.iter().any(|a| matches!(a, RepairAction::ErasedAgain { .. }));
    assert!(!erased, "{:?}", report.actions);
    let dropped = dropped_ids(&report.actions);
    assert!(dropped.contains(&format!("r{:02}", COMMITS - 1)), "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    for i in 0..COMMITS {
        let id = format!("r{i:02}");
        let got = c.get(&id).unwrap();
        assert_eq!(got.is_some(), i != 5, "{id}: every record but the erased one is kept");
        if got.is_some() {
            check_pii(&c, &id, &name(i), &dropped, "erasure");
        }
    }
    // The erasure was finished: the keystore no longer holds an entry for c/r05 (entries
    // name collection and record as length-prefixed strings).
    let keystore = fs.read_all(&Path::new(DIR).join("keystore")).unwrap();
    let entry = [1, 0, 0, 0, b'c', 3, 0, 0, 0, b'r', b'0', b'5'];
    assert!(!keystore.windows(entry.len()).any(|w| w == entry), "the erased record's key was destroyed");
    let before = [1, 0, 0, 0, b'c', 3, 0, 0, 0, b'r', b'0', b'4'];
    assert!(keystore.windows(before.len()).any(|w| w == before), "the pattern matches a kept entry");
}

#[test]
fn a_repair_failing_at_any_rename_still_finishes_an_interrupted_erasure() {
    // Repair commits its conclusions, then finishes the interrupted erasure (a keystore
    // rewrite). With automatic checkpoints on, a checkpoint after its first commit put the
    // erasure's tombstone below the checkpoint: when the rewrite then failed, no later open
    // replayed the tombstone, and the erased record's key stayed in the keystore for good.
    let erased_entry = [1, 0, 0, 0, b'c', 3, 0, 0, 0, b'r', b'0', b'5'];
    let setup = || {
        let fs = MemFs::new();
        build(&fs);
        {
            let db = Database::open(DIR, options(&fs).segment_bytes(1 << 20)).unwrap();
            fs.set_faults(FaultPlan::new().fail_from(OpKind::Rename, 1));
            assert!(db.erase("c", "r05").is_err());
        }
        fs.set_faults(FaultPlan::new());
        damage_the_final_keystore_frame(&fs);
        fs
    };
    let eager = |fs: &MemFs| options(fs).checkpoint_after_ops(Some(1)).background_checkpoints(false);
    let renames = {
        let fs = setup();
        let before = fs.op_count(OpKind::Rename);
        Database::repair(DIR, eager(&fs)).unwrap();
        fs.op_count(OpKind::Rename) - before
    };
    let mut failures = 0;
    for nth in 0..renames {
        let fs = setup();
        fs.set_faults(FaultPlan::new().fail_once(OpKind::Rename, nth));
        if Database::repair(DIR, eager(&fs)).is_err() {
            failures += 1;
            fs.set_faults(FaultPlan::new());
            Database::repair(DIR, eager(&fs)).unwrap();
        }
        fs.set_faults(FaultPlan::new());
        let db = Database::open(DIR, options(&fs)).unwrap();
        assert!(db.read().collection("c").unwrap().get("r05").unwrap().is_none(), "rename {nth}");
        drop(db);
        let keystore = fs.read_all(&Path::new(DIR).join("keystore")).unwrap();
        let held = keystore.windows(erased_entry.len()).any(|w| w == erased_entry);
        assert!(!held, "rename {nth} failing: the erased record's key survived");
    }
    assert!(failures > 0, "some failing rename failed the repair");
}

#[test]
fn a_damaged_keystore_header_is_refused_and_left_untouched() {
    let fs = MemFs::new();
    build(&fs);
    let path = Path::new(DIR).join("keystore");
    let mut bytes = fs.read_all(&path).unwrap();
    bytes[12] ^= 0x01;
    fs.write_raw(&path, &bytes);
    let before: Vec<_> = fs.list_files().into_iter().map(|p| (fs.read_all(&p), p)).collect();
    let err = repair(&fs).unwrap_err();
    assert!(matches!(&err, Error::Corrupt { file, .. } if file == &path), "{err}");
    assert!(err.to_string().contains("backup"), "{err}");
    let after: Vec<_> = fs.list_files().into_iter().map(|p| (fs.read_all(&p), p)).collect();
    assert_eq!(before, after);
}

#[test]
fn a_damaged_checkpoint_is_rebuilt_and_written_again() {
    let fs = MemFs::new();
    build(&fs);
    let ckpt = fs.list_files().into_iter().find(|p| p.extension().is_some_and(|e| e == "ckpt")).unwrap();
    let mut bytes = fs.read_all(&ckpt).unwrap();
    bytes[300] ^= 0x04;
    fs.write_raw(&ckpt, &bytes);
    let report = repair(&fs).unwrap();
    assert!(
        matches!(report.actions.as_slice(), [RepairAction::CheckpointRebuilt { .. }]),
        "{:?}",
        report.actions
    );
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert!(db.checkpoint_rejected().is_none(), "the new checkpoint is used");
    assert_eq!(check_prefix(&db, &[], "checkpoint"), COMMITS);
}

#[test]
fn damaged_log_records_under_the_checkpoint_lose_only_their_pii() {
    // The checkpoint covers segment 1, so open never replays it; reading those records back
    // would fail. Repair finds them and keeps them from their checkpoint rows.
    let fs = MemFs::new();
    build(&fs);
    let first = &segments(&fs)[0];
    let mut bytes = fs.read_all(first).unwrap();
    bytes[200] ^= 0x08;
    fs.write_raw(first, &bytes);
    let report = repair(&fs).unwrap();
    let dropped = dropped_ids(&report.actions);
    assert!(!dropped.is_empty(), "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(check_prefix(&db, &dropped, "under checkpoint"), COMMITS);
    assert!(db.verify().unwrap().is_ok(), "{:?}", db.verify().unwrap());
}

#[test]
fn a_damaged_audit_log_is_cut() {
    let fs = MemFs::new();
    build(&fs);
    let path = Path::new(DIR).join("audit.log");
    let mut bytes = fs.read_all(&path).unwrap();
    let at = 40;
    bytes[at] ^= 0x01;
    fs.write_raw(&path, &bytes);
    // The database opens and takes writes and erasures; reads of PII, which need an audit
    // entry, are refused naming the file, and the file is left as it is for repair.
    {
        let db = Database::open(DIR, options(&fs)).unwrap();
        let err = db.read().collection("c").unwrap().reveal("r01").unwrap_err();
        assert!(matches!(&err, Error::Corrupt { file, .. } if file.ends_with("audit.log")), "{err}");
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new("extra", LatLon::new(1.0, 1.0).unwrap())).unwrap();
        batch.commit().unwrap();
        batch = db.begin_write();
        batch.delete("c", "extra").unwrap();
        batch.commit().unwrap();
        assert_eq!(fs.read_all(&path).unwrap(), bytes, "audit.log is not written to");
    }
    let report = repair(&fs).unwrap();
    assert!(matches!(report.actions.as_slice(), [RepairAction::AuditCut { .. }]), "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(check_prefix(&db, &[], "audit"), COMMITS);
}

/// Random byte flips anywhere in any file (`GEOCRM_REPAIR_CASES` images, default 150): repair either refuses (only for a keystore
/// header) or yields a database that opens, holds a prefix of the commits with every
/// value right, verifies, and needs no second repair. The prefix is as long as the damage
/// allows: every commit when no log segment was damaged (the MANIFEST, checkpoint,
/// keystore and audit log are rebuilt, cut or dropped without losing a record), else at
/// least the commits whose frames end before the first damaged byte of the log.
#[test]
fn random_damage_anywhere_repairs_to_a_prefix() {
    let fs = MemFs::new();
    build(&fs);
    let files: Vec<PathBuf> = fs.list_files().into_iter().filter(|p| !p.ends_with("LOCK")).collect();
    // Where commit i's record id is written in the log, as (segment, offset): its length
    // byte and the id (a chance match in ciphertext is about one in four billion). Commit
    // i - 1's frame ends before it.
    let log = segments(&fs);
    let id_at: Vec<(usize, usize)> = (0..COMMITS)
        .map(|i| {
            let needle = [&[3u8][..], format!("r{i:02}").as_bytes()].concat();
            log.iter()
                .enumerate()
                .find_map(|(s, path)| {
                    let bytes = fs.read_all(path).unwrap();
                    bytes.windows(needle.len()).position(|w| w == needle.as_slice()).map(|at| (s, at))
                })
                .unwrap_or_else(|| panic!("commit {i}'s id is in no segment"))
        })
        .collect();
    assert!(id_at.windows(2).all(|w| w[0] < w[1]), "commit ids in log order: {id_at:?}");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut repaired, mut refused) = (0, 0);
    let mut bounds = Vec::new();
    let cases: u64 = std::env::var("GEOCRM_REPAIR_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    for case in 0..cases {
        let img = copy(&fs);
        let mut what = String::new();
        // The first damaged log byte, as (segment, offset).
        let mut first_log_damage: Option<(usize, usize)> = None;
        for _ in 0..rng.gen_range(1..4) {
            let file = &files[rng.gen_range(0..files.len())];
            let mut bytes = img.read_all(file).unwrap();
            if bytes.is_empty() {
                continue;
            }
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= rng.gen_range(1..=255u8);
            img.write_raw(file, &bytes);
            what.push_str(&format!("{} byte {at}; ", file.display()));
            if let Some(s) = log.iter().position(|p| p == file) {
                first_log_damage = Some(first_log_damage.map_or((s, at), |d| d.min((s, at))));
            }
        }
        // Commits 0..k are certainly whole when commit k's id lies at or before the damage.
        let at_least = match first_log_damage {
            None => COMMITS,
            Some(d) => id_at.iter().take_while(|&&at| at <= d).count().saturating_sub(1),
        };
        let what = format!("case {case}: {what}");
        match repair(&img) {
            Ok(report) => {
                let db = Database::open(DIR, options(&img)).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
                let kept = check_prefix(&db, &dropped_ids(&report.actions), &what);
                assert!(kept >= at_least, "{what}: {kept} commits kept, the damage allowed {at_least}");
                bounds.push((kept, at_least));
                let verify = db.verify().unwrap();
                assert!(verify.is_ok(), "{what}: {verify:?}");
                drop(db);
                assert!(repair(&img).unwrap().is_clean(), "{what}: a second repair found more");
                repaired += 1;
            }
            Err(Error::Corrupt { file, .. }) if file.ends_with("keystore") => refused += 1,
            // A flipped version byte reads as a newer format, which repair never rewrites.
            Err(Error::UnsupportedVersion { .. }) => refused += 1,
            Err(e) => panic!("{what}: repair failed: {e}"),
        }
    }
    eprintln!("random damage: {repaired} repaired, {refused} refused (keystore header or version byte)");
    assert!(repaired * 3 > cases * 2, "repaired {repaired}, refused {refused}");
    // The bound is no formality: many repairs must keep every commit (55 of 150 with the
    // default cases), and many had the log damaged part-way (91).
    let whole = bounds.iter().filter(|&&(_, b)| b == COMMITS).count();
    let partial = bounds.iter().filter(|&&(_, b)| b > 0 && b < COMMITS).count();
    assert!(
        bounds.len() < 50 || (whole * 5 > bounds.len() && partial * 5 > bounds.len()),
        "{whole} whole, {partial} part-way of {}",
        bounds.len()
    );
}

#[test]
fn the_cli_repairs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new()).unwrap();
    db.create_collection("customers", Schema::new()).unwrap();
    for i in 0..5 {
        let mut batch = db.begin_write();
        batch.upsert("customers", Record::new(format!("c{i}"), LatLon::new(1.0, i as f64).unwrap())).unwrap();
        batch.commit().unwrap();
    }
    drop(db);
    let seg = std::fs::read_dir(dir.path().join("log")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geocrm"))
            .args(args)
            .arg("--db")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["stats"]);
    assert!(code == Some(1) && err.contains("corrupt"), "{err}");
    // The cut drops acknowledged commits: the repair says so and exits 4, the dry run too
    // (both exited 0, as for a database with nothing to repair; from a hands-on review).
    let (code, out, err) = run(&["repair", "--dry-run"]);
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(out.contains("would: cut") && out.contains(&seg.display().to_string()), "{out}");
    assert!(out.contains("ACKNOWLEDGED DATA LOST: this repair would drop"), "{out}");
    assert!(out.contains("it would exit with status 4"), "{out}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "dry run changed the segment");
    let (code, out, err) = run(&["repair", "--json"]);
    assert_eq!(code, Some(4), "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["actions"][0]["action"], "log_cut", "{json}");
    assert_eq!(json["actions"][0]["acknowledged"], true, "{json}");
    assert_eq!(json["acknowledged_data_lost"], true, "{json}");
    let (code, out, err) = run(&["repair"]);
    assert!(code == Some(0) && out.contains("nothing to repair"), "{out}{err}");
    assert!(!out.contains("LOST"), "{out}");
    let (code, out, err) = run(&["repair", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["acknowledged_data_lost"], false, "{json}");
    let (code, _, err) = run(&["verify"]);
    assert_eq!(code, Some(0), "{err}");
}

/// Where what `write` appends to the log starts: the segment it went to (the last one, or a
/// new one it rolled to) and that segment's length before it (48, a header, if new).
fn where_written(fs: &MemFs, write: impl FnOnce()) -> (u64, PathBuf) {
    let lens = || segments(fs).into_iter().map(|p| (fs.file_len(&p).unwrap(), p)).collect::<Vec<_>>();
    let old = lens();
    write();
    lens()
        .into_iter()
        .find(|(len, p)| old.iter().all(|(l, q)| q != p || l < len))
        .map(|(_, p)| (old.iter().find(|(_, q)| q == &p).map_or(48, |(l, _)| *l), p))
        .unwrap()
}

#[test]
fn an_erasure_whose_tombstone_a_cut_drops_stays_erased() {
    let fs = MemFs::new();
    build(&fs);
    let db = Database::open(DIR, options(&fs)).unwrap();
    // The tombstone starts where the log ended: in the last segment, or a new one it rolled to.
    let (before, seg) = where_written(&fs, || {
        db.erase("c", "r25").unwrap();
    });
    let mut batch = db.begin_write();
    batch.upsert("c", Record::new("after", LatLon::new(2.0, 2.0).unwrap())).unwrap();
    batch.commit().unwrap();
    drop(db);
    // The erasure's checkpoint covers the tombstone; with that checkpoint damaged too, open
    // replays from the log floor and meets the damaged tombstone.
    let mut bytes = fs.read_all(&seg).unwrap();
    bytes[before as usize + 30] ^= 0x02; // inside the tombstone's frame
    fs.write_raw(&seg, &bytes);
    for ckpt in fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "ckpt")) {
        let mut bytes = fs.read_all(&ckpt).unwrap();
        bytes[300] ^= 0x01;
        fs.write_raw(&ckpt, &bytes);
    }
    assert!(Database::open(DIR, options(&fs)).is_err());
    let report = repair(&fs).unwrap();
    assert!(
        report.actions.iter().any(|a| matches!(a, RepairAction::ErasedAgain { ids, .. } if ids == &["r25"])),
        "{:?}",
        report.actions
    );
    assert!(dropped_ids(&report.actions).is_empty(), "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    let c = db.read();
    let c = c.collection("c").unwrap();
    assert!(c.get("r25").unwrap().is_none(), "the erased record came back");
    assert!(c.get("r24").unwrap().is_some() && c.get("after").unwrap().is_none());
}

/// Every truncation and every bit flip of the MANIFEST: open refuses it (never a panic,
/// never a silently different database), and repair rebuilds it with nothing lost.
#[test]
fn every_cut_and_bit_flip_of_the_manifest_is_refused_and_repaired() {
    let fs = MemFs::new();
    build(&fs);
    let path = Path::new(DIR).join("MANIFEST");
    let good = fs.read_all(&path).unwrap();
    let mut images: Vec<(String, Vec<u8>)> =
        (0..good.len()).map(|n| (format!("cut at {n}"), good[..n].to_vec())).collect();
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        images.push((format!("bit {bit}"), bad));
    }
    let (mut repaired, mut newer) = (0, 0);
    for (what, bytes) in &images {
        let img = copy(&fs);
        img.write_raw(&path, bytes);
        match Database::open(DIR, options(&img)) {
            Err(Error::Corrupt { file, .. }) => assert_eq!(file, path, "{what}"),
            Err(Error::UnsupportedVersion { .. }) => {
                assert!(matches!(repair(&img), Err(Error::UnsupportedVersion { .. })), "{what}");
                newer += 1;
                continue;
            }
            other => panic!("{what}: open gave {other:?}"),
        }
        let report = repair(&img).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(matches!(report.actions.as_slice(), [RepairAction::ManifestRebuilt { .. }]), "{what}");
        let db = Database::open(DIR, options(&img)).unwrap();
        assert_eq!(check_prefix(&db, &[], what), COMMITS, "{what}");
        repaired += 1;
    }
    assert_eq!(repaired + newer, images.len());
    // Since version 5 the payload repeats the version under the checksum: every flip of the
    // version field is damage that repair salvages (with version 4, flips to 5 to 16 read
    // as a newer format that repair refused to touch).
    assert_eq!(newer, 0, "no flip reads as a newer format");
}

#[test]
fn repair_needs_no_key() {
    let fs = MemFs::new();
    build(&fs);
    flip_a_byte_mid_keystore(&fs);
    let keyless = Options::new().file_system(Arc::new(fs.clone())).checkpoint_after_ops(None);
    let report = Database::repair(DIR, keyless).unwrap();
    let dropped = dropped_ids(&report.actions);
    assert!(!dropped.is_empty(), "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(check_prefix(&db, &dropped, "keyless repair"), COMMITS);
}

#[test]
fn a_version_field_damaged_to_zero_is_corruption_that_repair_salvages() {
    // Version 0 was never written: it read as "a newer version", which every command
    // refused and repair would not touch. It is damage now.
    let fs = MemFs::new();
    build(&fs);
    let records = Database::open(DIR, options(&fs)).unwrap().read().collection("c").unwrap().len();
    let audit = Path::new(DIR).join("audit.log");
    let mut bytes = fs.read_all(&audit).unwrap();
    bytes[8..10].copy_from_slice(&[0, 0]);
    fs.write_raw(&audit, &bytes);
    let err = Database::open(DIR, options(&fs)).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { offset: 8, .. }) && err.to_string().contains("audit.log"),
        "{err}"
    );
    let report = repair(&fs).unwrap();
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, RepairAction::AuditCut { .. } | RepairAction::AuditRestarted { .. })),
        "{:?}",
        report.actions
    );
    assert_eq!(Database::open(DIR, options(&fs)).unwrap().read().collection("c").unwrap().len(), records);
}

#[test]
fn a_creation_cut_before_the_first_segment_opens_and_a_lost_first_segment_is_repaired() {
    // A crash between a new database's MANIFEST and its first segment: nothing else of it
    // exists, so the next open finishes the creation (a lost log is refused only when the
    // database has been used: an audit log, a keystore or a checkpoint).
    let fs = MemFs::new();
    let plain = || Options::new().file_system(Arc::new(fs.clone()));
    drop(Database::open(DIR, plain()).unwrap());
    let (seg, audit) = (Path::new(DIR).join("log/000000000001.seg"), Path::new(DIR).join("audit.log"));
    fs.remove_file(&seg).unwrap();
    fs.remove_file(&audit).unwrap();
    let db = Database::open(DIR, plain().create_if_missing(false)).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    drop(db);
    fs.remove_file(&seg).unwrap();
    let err = Database::open(DIR, plain()).unwrap_err();
    assert!(err.to_string().contains("no segment at all"), "{err}");

    // No checkpoint, and the first segment unreadable (no header, no frame to rebuild one
    // from): repair removes the log from there on, says so, and the database opens (empty).
    let fs = MemFs::new();
    {
        let db = Database::open(DIR, options(&fs)).unwrap();
        db.create_collection("c", Schema::new().pii("name")).unwrap();
        for i in 0..20 {
            let mut b = db.begin_write();
            b.upsert(
                "c",
                Record::new(format!("r{i:02}"), LatLon::new(1.0, 2.0).unwrap()).pii("name", name(i)),
            )
            .unwrap();
            b.commit().unwrap();
        }
    }
    let first = Path::new(DIR).join("log/000000000001.seg");
    let mut bytes = fs.read_all(&first).unwrap();
    bytes.fill(0);
    fs.write_raw(&first, &bytes);
    let report = repair(&fs).unwrap();
    assert!(
        report.actions.iter().any(|a| matches!(a, RepairAction::SegmentRemoved { .. })),
        "{:?}",
        report.actions
    );
    Database::open(DIR, options(&fs)).unwrap();
}

/// The intact commits a log cut drops are listed by record (the report gave only a byte
/// count, while a dropped deletion brought a record back: from the robustness review).
#[test]
fn the_intact_operations_a_cut_drops_are_listed_by_record() {
    let fs = MemFs::new();
    build(&fs);
    let db = Database::open(DIR, options(&fs)).unwrap();
    let (start, seg) = where_written(&fs, || {
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new("new", LatLon::new(1.0, 1.0).unwrap())).unwrap();
        batch.commit().unwrap();
    });
    let mut batch = db.begin_write();
    batch.delete("c", "r05").unwrap();
    batch.upsert("c", Record::new("r07", LatLon::new(2.0, 2.0).unwrap())).unwrap();
    batch.commit().unwrap();
    db.erase("c", "r09").unwrap();
    drop(db);
    let mut bytes = fs.read_all(&seg).unwrap();
    bytes[start as usize + 30] ^= 0x04; // inside the first commit's frame
    fs.write_raw(&seg, &bytes);
    let report = repair(&fs).unwrap();
    let dropped: Vec<_> = report
        .actions
        .iter()
        .filter_map(|a| match a {
            RepairAction::OperationsDropped { collection, upserted, deleted, erased } => {
                Some((collection.clone(), upserted.clone(), deleted.clone(), erased.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        dropped,
        [("c".to_owned(), vec!["r07".to_owned()], vec!["r05".to_owned()], vec!["r09".to_owned()])],
        "{:?}",
        report.actions
    );
    assert!(
        report.actions.iter().all(|a| !matches!(a, RepairAction::UnreadDropped { .. })),
        "{:?}",
        report.actions
    );
    let db = Database::open(DIR, options(&fs)).unwrap();
    let c = db.read();
    let c = c.collection("c").unwrap();
    // The report says what the database now holds: r05 back, r07 as before, r09 erased
    // again (its key was destroyed), "new" (in the damaged frame) gone.
    assert!(c.get("r05").unwrap().is_some() && c.get("new").unwrap().is_none());
    assert_eq!(c.get("r07").unwrap().unwrap().location, location_of(7));
    assert!(c.get("r09").unwrap().is_none());
}

/// Options without checkpoints or audit log, for the tests of transactions of many frames.
fn plain_options(fs: &MemFs) -> Options {
    Options::new().file_system(Arc::new(fs.clone())).checkpoint_after_ops(None).audit(false)
}

/// A new database on `fs` ([`plain_options`]) with the collection "c" that
/// [`commit_prefixed`] fills.
fn new_plain_db(fs: &MemFs) -> Database {
    let db = Database::open(DIR, plain_options(fs)).unwrap();
    db.create_collection("c", Schema::new().category("t")).unwrap();
    db
}

/// Commits records `{prefix}{i:05}` for `ids` in one transaction; each holds a 100-byte
/// category, so 5,000 of them span many frames.
fn commit_prefixed(db: &Database, ids: std::ops::Range<usize>, prefix: &str) {
    let mut batch = db.begin_write();
    for i in ids {
        let r = Record::new(format!("{prefix}{i:05}"), LatLon::new(1.0, 1.0).unwrap())
            .category("t", "x".repeat(100));
        batch.upsert("c", r).unwrap();
    }
    batch.commit().unwrap();
}

/// A transaction a crash cut short after the damage (its last frames never written) is
/// listed as unfinished, apart from intact operations: it was never acknowledged (it was
/// listed among the intact operations dropped; from a hands-on crash test). Not when the
/// log was closed with those bytes synced: then it was finished, and its missing end lost
/// (from the read-through review).
#[test]
fn an_unfinished_transaction_after_the_damage_is_listed_apart() {
    unfinished_transaction_after_damage(false);
    unfinished_transaction_after_damage(true);
}

fn unfinished_transaction_after_damage(closed: bool) {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    let commit = |ids: std::ops::Range<usize>, prefix: &str| commit_prefixed(&db, ids, prefix);
    commit(0..3, "a");
    let seg = segments(&fs).pop().unwrap();
    let c_at = fs.file_len(&seg).unwrap();
    commit(0..2, "c");
    let b_at = fs.file_len(&seg).unwrap();
    commit(0..5000, "b");
    let end = fs.file_len(&seg).unwrap();
    drop(db);
    assert_eq!(segments(&fs).len(), 1);
    // A flipped byte in c's commit, and b's last quarter never written (a crash: no close
    // record).
    let mut bytes = fs.read_all(&seg).unwrap();
    bytes[c_at as usize + 30] ^= 0x10;
    bytes.truncate((b_at + (end - b_at) * 3 / 4) as usize);
    fs.write_raw(&seg, &bytes);
    if !closed {
        fs.remove_file(&Path::new(DIR).join("log/SYNCED")).unwrap();
    }
    let report = Database::repair(DIR, opts()).unwrap();
    if closed {
        assert!(
            !report.actions.iter().any(|a| matches!(a, RepairAction::UnfinishedDropped { .. })),
            "{:?}",
            report.actions
        );
        let listed = upserts_dropped(&report.actions);
        assert!(listed.contains(&"b00000".to_owned()) && listed.len() > 2500, "{}", listed.len());
        return;
    }
    let mut unfinished = report.actions.iter().filter_map(|a| match a {
        RepairAction::UnfinishedDropped { file, collection, upserted, deleted, erased } => {
            assert!(file == &seg && collection == "c" && deleted.is_empty() && erased.is_empty());
            Some(upserted.clone())
        }
        _ => None,
    });
    let listed = unfinished.next().unwrap_or_else(|| panic!("{:?}", report.actions));
    assert!(unfinished.next().is_none());
    assert!(listed.iter().all(|id| id.starts_with('b')) && listed.contains(&"b00000".to_owned()));
    assert!(listed.len() > 2500 && listed.len() < 5000, "{}", listed.len());
    assert!(
        !report.actions.iter().any(|a| matches!(a, RepairAction::OperationsDropped { .. })),
        "{:?}",
        report.actions
    );
    let text = report.actions.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(text.contains("dropped an unfinished transaction at the end of"), "{text}");
    assert!(text.contains("never acknowledged) on \"c\": upserts of"), "{text}");
    let db = Database::open(DIR, opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 3);
}

/// Damage in a later frame of a transaction of several frames: the cut goes where the
/// transaction starts (its earlier frames are no commit without the rest), and every
/// operation of the transaction's intact frames and of the commits after is listed — the
/// earlier frames' were dropped unlisted by the next open (from the diff review).
#[test]
fn damage_inside_a_transaction_of_many_frames_lists_all_of_it() {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    let commit = |ids: std::ops::Range<usize>, prefix: &str| commit_prefixed(&db, ids, prefix);
    commit(0..3, "a");
    let seg = segments(&fs).pop().unwrap();
    let before = fs.file_len(&seg).unwrap();
    commit(0..5000, "b");
    let after_b = fs.file_len(&seg).unwrap();
    commit(0..2, "c");
    drop(db);
    assert_eq!(segments(&fs).len(), 1);
    // Three quarters into the big commit: not its first frame.
    let mut bytes = fs.read_all(&seg).unwrap();
    let at = (before + (after_b - before) * 3 / 4) as usize;
    bytes[at] ^= 0x10;
    fs.write_raw(&seg, &bytes);
    let report = Database::repair(DIR, opts()).unwrap();
    let cut = report.actions.iter().find_map(|a| match a {
        RepairAction::LogCut { offset, .. } => Some(*offset),
        _ => None,
    });
    assert_eq!(cut, Some(before), "{:?}", report.actions);
    let listed = upserts_dropped(&report.actions);
    let b_listed = listed.iter().filter(|id| id.starts_with('b')).count();
    // The damaged frame's own records are lost with it; the other frames' all listed.
    assert!(listed.contains(&"b00000".to_owned()), "the transaction's first frame is not listed");
    assert!(b_listed > 2500 && b_listed < 5000, "{b_listed} of the big commit listed");
    assert!(listed.contains(&"c00000".to_owned()) && listed.contains(&"c00001".to_owned()));
    // The damaged frame is reported with its byte range and how many operations it held,
    // told from the LSNs of the intact frames around it: with the listed ones, every record
    // of the commit is accounted for (959 of 3,000 records went unnamed, with only a byte
    // count, and the report read "intact operations … that followed the damage" for the
    // transaction's earlier frames; from a hands-on review).
    let frames: Vec<_> = report
        .actions
        .iter()
        .filter_map(|a| match a {
            RepairAction::DamagedFrameDropped { file, offset, bytes, whole_frame, operations, first_lsn } => {
                Some((file.clone(), *offset, *bytes, *whole_frame, *operations, *first_lsn))
            }
            _ => None,
        })
        .collect();
    let [(file, offset, len, whole, Some(ops), Some(first))] = frames.as_slice() else {
        panic!("{:?}", report.actions)
    };
    assert!(file == &seg && *whole && *offset <= at as u64 && at as u64 - offset < *len, "{frames:?}");
    assert_eq!(b_listed as u64 + ops, 5000, "listed and unreadable records make the whole commit");
    // LSN 1 created the collection, 2..5 are a's commit: b's are 5..5005.
    assert!(*first > 5 && first + ops <= 5005, "{frames:?}");
    assert!(report.acknowledged_data_lost);
    let text: Vec<String> = report.actions.iter().map(ToString::to_string).collect();
    let text = text.join("\n");
    assert!(!text.contains("followed the damage"), "{text}");
    assert!(
        text.contains(
            "of the transactions dropped with the damage (a transaction holding a damaged frame goes whole"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("the damaged frame at bytes {offset}..{} of {}", offset + len, seg.display()))
            && text.contains(&format!("the {ops} operation(s) it held, LSNs {first} to {}", first + ops - 1))
            && text.contains("NOT named in this report"),
        "{text}"
    );
    // Lists of ids are cut in the text (one line held 9 KB of ids), whole in the report.
    assert!(text.contains(", and ") && text.contains(" more);"), "{text}");
    assert!(report.actions.iter().any(RepairAction::text_leaves_ids_out));
    let db = Database::open(DIR, opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 3);
}

/// A damaged frame whose length field is damaged too cannot be stepped over: the report says
/// that what it and the bytes after it held cannot be read or counted, and that their records
/// are not named.
#[test]
fn a_damaged_frame_length_is_reported_as_unreadable_to_the_end() {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    commit_prefixed(&db, 0..3, "a");
    let seg = segments(&fs).pop().unwrap();
    let before = fs.file_len(&seg).unwrap() as usize;
    commit_prefixed(&db, 0..5000, "b");
    drop(db);
    let mut bytes = fs.read_all(&seg).unwrap();
    // The big commit's third frame: its length's high byte made far too large.
    let frame_len = |at: usize| 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let third = before + frame_len(before);
    let third = third + frame_len(third);
    bytes[third + 3] ^= 0x40;
    fs.write_raw(&seg, &bytes);
    let report = Database::repair(DIR, opts()).unwrap();
    let lost = report.actions.iter().find_map(|a| match a {
        RepairAction::DamagedFrameDropped { offset, bytes, whole_frame, operations, .. } => {
            Some((*offset, *bytes, *whole_frame, *operations))
        }
        _ => None,
    });
    assert_eq!(lost, Some((third as u64, (bytes.len() - third) as u64, false, None)), "{:?}", report.actions);
    let text = report.actions.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(text.contains("whose length cannot be trusted") && text.contains("cannot be told"), "{text}");
    assert!(report.acknowledged_data_lost);
    // The first two frames' records are listed (dropped with their transaction).
    let listed = upserts_dropped(&report.actions);
    assert!(listed.contains(&"b00000".to_owned()) && listed.len() < 5000, "{}", listed.len());
}

/// The newest segment, of writes after a checkpoint that the close record says were synced,
/// found missing, emptied, or cut inside its header: the repair says the writes are lost —
/// the segment, the synced length, the LSN it started at and where the log now continues —
/// and that acknowledged data was lost (it created an empty segment and reported nothing
/// lost; from a hands-on review).
#[test]
fn a_lost_newest_segment_of_acknowledged_writes_is_reported() {
    for found in [None, Some(0), Some(20)] {
        let fs = MemFs::new();
        let opts = || plain_options(&fs);
        let db = new_plain_db(&fs);
        commit_prefixed(&db, 0..30, "a");
        db.checkpoint().unwrap();
        let checkpoint_lsn = db.next_lsn();
        commit_prefixed(&db, 0..10, "b");
        let mut batch = db.begin_write();
        batch.delete("c", "a00001").unwrap();
        batch.commit().unwrap();
        drop(db);
        let newest = segments(&fs).into_iter().max().unwrap();
        let synced = fs.file_len(&newest).unwrap();
        match found {
            None => fs.remove_file(&newest).unwrap(),
            Some(n) => {
                let bytes = fs.read_all(&newest).unwrap();
                fs.write_raw(&newest, &bytes[..n]);
            }
        }
        let what = format!("found {found:?}");
        let dry = Database::repair_dry_run(DIR, opts()).unwrap();
        let report = Database::repair(DIR, opts()).unwrap();
        assert_eq!(dry.actions, report.actions, "{what}");
        assert!(dry.acknowledged_data_lost && report.acknowledged_data_lost, "{what}");
        let lost: Vec<_> =
            report.actions.iter().filter(|a| matches!(a, RepairAction::SegmentLost { .. })).collect();
        let [RepairAction::SegmentLost {
            file, found_bytes, synced_bytes, first_lsn, log_continues_at, ..
        }] = lost.as_slice()
        else {
            panic!("{what}: {:?}", report.actions)
        };
        assert_eq!(
            (file, *found_bytes, *synced_bytes, *first_lsn, *log_continues_at),
            (&newest, found.map(|n: usize| n as u64), Some(synced), Some(checkpoint_lsn), checkpoint_lsn),
            "{what}"
        );
        let text = lost[0].to_string();
        assert!(
            text.starts_with(&format!("LOST {} (the writes from LSN {checkpoint_lsn} on)", newest.display()))
                && text.contains(&format!("yet the log was closed with its first {synced} bytes synced"))
                && text.contains(&format!("the log continues at LSN {checkpoint_lsn}")),
            "{what}: {text}"
        );
        assert_eq!(report.next_lsn, checkpoint_lsn, "{what}");
        let db = Database::open(DIR, opts()).unwrap();
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        // What the checkpoint holds: the later writes are gone (a00001 is back).
        assert_eq!(c.len(), 30, "{what}");
        assert!(c.get("a00001").unwrap().is_some() && c.get("b00000").unwrap().is_none(), "{what}");
    }
}

/// The close record is a lower bound: a checkpoint's segment it names with its header alone,
/// written to by a later session that crashed, then lost, lost acknowledged writes — repair
/// said nothing and exited 0 (from the review of the repair change; fails without the fix).
#[test]
fn a_lost_segment_written_after_the_close_that_named_it_empty_is_a_loss() {
    let fs = MemFs::new();
    let db = new_plain_db(&fs);
    commit_prefixed(&db, 0..30, "a");
    db.checkpoint().unwrap();
    drop(db); // log/SYNCED: the checkpoint's new segment, its header alone
    let db = Database::open(DIR, plain_options(&fs)).unwrap();
    commit_prefixed(&db, 0..10, "b"); // acknowledged: synced to that segment
    let image = copy(&fs); // a crash: no close record of them
    drop(db);
    let newest = segments(&image).into_iter().max().unwrap();
    assert!(image.file_len(&newest).unwrap() > 48, "the commit is in the newest segment");
    image.remove_file(&newest).unwrap();
    let opts = || plain_options(&image);
    let report = Database::repair(DIR, opts()).unwrap();
    assert!(report.acknowledged_data_lost, "{:?}", report.actions);
    assert!(
        report.actions.iter().any(|a| matches!(a, RepairAction::SegmentLost { file, .. } if file == &newest)),
        "{:?}",
        report.actions
    );
}

/// A missing log directory is salvaged as an empty one is (repair failed listing it, with a
/// raw I/O error, while the same database with an empty `log/` kept every record of its
/// checkpoint; from a hands-on review). Whether writes after the checkpoint are lost cannot
/// be told (the close record went with the directory): said, and counted as a loss.
#[test]
fn a_missing_log_directory_is_salvaged_from_the_checkpoint() {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    commit_prefixed(&db, 0..30, "a");
    db.checkpoint().unwrap();
    let checkpoint_lsn = db.next_lsn();
    drop(db);
    let log = Path::new(DIR).join("log");
    for file in fs.list_files().into_iter().filter(|p| p.starts_with(&log)) {
        fs.remove_file(&file).unwrap();
    }
    fs.remove_dir(&log).unwrap();
    // Opening says what is lost and what the checkpoint still holds (it said "every
    // acknowledged write is gone").
    let err = Database::open(DIR, opts()).unwrap_err().to_string();
    assert!(
        err.contains("the log directory is missing")
            && err.contains(&format!(
                "the writes after the checkpoint (from LSN {checkpoint_lsn} on), if there were any"
            ))
            && err.contains("the checkpoint still holds those records' locations and attributes")
            && !err.contains("every acknowledged write is gone"),
        "{err}"
    );
    let dry = Database::repair_dry_run(DIR, opts()).unwrap();
    let report = Database::repair(DIR, opts()).unwrap();
    assert_eq!(dry.actions, report.actions);
    assert!(
        matches!(report.actions.as_slice(), [
            RepairAction::LogDirCreated { dir },
            RepairAction::SegmentLost { found_bytes: None, synced_bytes: None, first_lsn: Some(lsn), .. },
            RepairAction::SegmentCreated { .. },
            RepairAction::RebuiltFromCheckpoint { collection, ids },
            RepairAction::Compacted { .. },
        ] if *dir == log && *lsn == checkpoint_lsn && collection == "c" && ids.len() == 30),
        "{:?}",
        report.actions
    );
    assert!(report.acknowledged_data_lost);
    let text = report.actions[1].to_string();
    assert!(text.contains("nothing records what it held") && text.contains("if there were any"), "{text}");
    let db = Database::open(DIR, opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 30);
    assert!(db.verify().unwrap().is_ok());
}

/// Log records under the checkpoint lost in a collection without PII fields: the records are
/// rebuilt whole from the checkpoint, which is no loss — not "kept without PII" (from a
/// hands-on review) — and the repair says nothing acknowledged was lost.
#[test]
fn records_without_pii_rebuilt_from_the_checkpoint_are_no_loss() {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    commit_prefixed(&db, 0..30, "a");
    db.checkpoint().unwrap();
    drop(db);
    let first = segments(&fs).into_iter().min().unwrap();
    let mut bytes = fs.read_all(&first).unwrap();
    bytes[200] ^= 0x08;
    fs.write_raw(&first, &bytes);
    let report = Database::repair(DIR, opts()).unwrap();
    assert!(
        matches!(report.actions.as_slice(), [
            RepairAction::RebuiltFromCheckpoint { collection, ids },
            RepairAction::Compacted { .. },
        ] if collection == "c" && ids.len() == 30),
        "{:?}",
        report.actions
    );
    assert!(!report.acknowledged_data_lost);
    let text = report.actions[0].to_string();
    assert!(text.contains("30 record(s) in \"c\" rebuilt from the checkpoint"), "{text}");
    assert!(text.ends_with("a00019, and 10 more"), "{text}");
    assert!(!text.contains("without PII"), "{text}");
    let db = Database::open(DIR, opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 30);
}

/// One flipped bit in a keystore frame cost every key in it — a whole import's — and, in a
/// frame with others after it, every later key too (from a hands-on review). Now a damaged
/// frame with others after it is removed and the later frames kept (its own keys are lost:
/// the database cannot open to say which are still needed). A damaged final frame leaves the
/// database open, and repair with the master key takes back each of its keys that a live
/// record uses and that can still be read and authenticates: a flipped checksum costs
/// nothing, a flipped wrapped key that one record's PII, a flipped length the entries from
/// there on. The key of a record deleted since is not taken back. Every record's PII is then
/// right or named as dropped, and a second repair finds nothing.
#[test]
fn a_damaged_keystore_frame_costs_only_keys_it_cannot_give_back() {
    for later_frame in [false, true] {
        damaged_frame_of_fifty_keys(later_frame);
    }
}

fn damaged_frame_of_fifty_keys(later_frame: bool) {
    const BATCH: usize = 50;
    const DELETED: usize = 5;
    let fs = MemFs::new();
    let keystore = Path::new(DIR).join("keystore");
    let frame_at = build_then(&fs, |db| {
        let mut batch = db.begin_write();
        for i in 0..BATCH {
            let r = Record::new(format!("b{i:02}"), location_of(i)).pii("name", format!("b-{i}"));
            batch.upsert("c", r).unwrap();
        }
        batch.commit().unwrap();
        // Deleted, not erased: its key stays in the keystore until a compaction.
        let mut batch = db.begin_write();
        batch.delete("c", &format!("b{DELETED:02}")).unwrap();
        batch.commit().unwrap();
        if later_frame {
            let mut batch = db.begin_write();
            batch.upsert("c", Record::new("after", location_of(0)).pii("name", "later")).unwrap();
            batch.commit().unwrap();
        }
    });
    let pristine = fs.read_all(&keystore).unwrap();
    let db_id: [u8; 16] = pristine[10..26].try_into().unwrap(); // FORMAT.md § 8.1
    let snapshot = copy(&fs);
    // Entries are 8 + 4 + 1 ("c") + 4 + 3 ("bNN") + 72 bytes, after the frame's 8-byte
    // header and the 4-byte count.
    let entry = |i: usize| frame_at + 8 + 4 + i * 92;
    // A record id made invalid UTF-8 leaves the frame's shape whole: it is removed alone
    // (from the review: it was cut there, the later frames with it).
    let cases: [(&str, usize, u8, std::ops::Range<usize>); 4] = [
        ("the frame's checksum", frame_at + 4, 0x04, 0..0),
        ("entry 20's wrapped key", entry(20) + 8 + 4 + 1 + 4 + 3 + 30, 0x04, 20..21),
        ("entry 10's record id, not UTF-8", entry(10) + 8 + 4 + 1 + 4 + 1, 0x80, 10..11),
        ("entry 30's record id length", entry(30) + 8 + 4 + 1, 0x04, 30..BATCH),
    ];
    for (what, at, mask, lost) in cases {
        for keyed in [true, false] {
            let what = format!("{what} (later frame: {later_frame}, key: {keyed})");
            let fs = copy(&snapshot);
            let mut bytes = pristine.clone();
            bytes[at] ^= mask;
            fs.write_raw(&keystore, &bytes);
            let report = repair_keyed_or_not(&fs, keyed);
            let cut = report.actions.iter().find_map(|a| match a {
                RepairAction::KeystoreCut { reason, .. } => Some(reason.clone()),
                _ => None,
            });
            let lost: Vec<usize> =
                if keyed && !later_frame { lost.clone().collect() } else { (0..BATCH).collect() };
            let lost: Vec<usize> = lost.into_iter().filter(|&i| i != DELETED).collect();
            // A frame whose entries no longer fit its length cannot be told where it ends: the
            // keystore is cut there, the later frame with it.
            let spliced = !what.starts_with("entry 30's record id length");
            if later_frame {
                let kept_after = cut.as_ref().is_some_and(|r| r.contains("frames after it were kept"));
                assert_eq!(kept_after, spliced, "{what}: {:?}", report.actions);
            } else if keyed {
                let kept = BATCH - 1 - lost.len();
                assert!(
                    cut.is_some_and(|r| r.contains(&format!("{kept} of the "))),
                    "{what}: {:?}",
                    report.actions
                );
            } else {
                // Without the key nothing is taken back, and the report says what the key
                // would have saved (`repair --dry-run` shows it before anything is lost).
                assert!(
                    cut.is_some_and(|r| r.contains("without the master key")),
                    "{what}: {:?}",
                    report.actions
                );
            }
            let mut dropped = dropped_ids(&report.actions);
            dropped.sort();
            let mut want: Vec<String> = lost.iter().map(|i| format!("b{i:02}")).collect();
            if later_frame && !spliced {
                want.insert(0, "after".to_owned());
            }
            assert_eq!(dropped, want, "{what}");
            let ks =
                geocrm::crypto::Keystore::open(Arc::new(fs.clone()), Path::new(DIR), db_id, None).unwrap();
            assert!(!ks.contains("c", &format!("b{DELETED:02}")), "{what}: a deleted record's key came back");
            let db = Database::open(DIR, options(&fs)).unwrap();
            let snap = db.read();
            let c = snap.collection("c").unwrap();
            for i in (0..BATCH).filter(|&i| i != DELETED) {
                let revealed = c.reveal(&format!("b{i:02}")).unwrap();
                let name = revealed.get("name").map(|v| v.expose().to_owned());
                let want = (!lost.contains(&i)).then(|| format!("b-{i}"));
                assert_eq!(name, want, "{what}: b{i:02}");
            }
            if later_frame && spliced {
                assert_eq!(c.reveal("after").unwrap()["name"].expose(), "later", "{what}");
            }
            drop(snap);
            assert_eq!(check_prefix(&db, &dropped, &what), COMMITS);
            assert!(db.verify().unwrap().is_ok(), "{what}");
            drop(db);
            let again = repair(&fs).unwrap();
            assert!(again.actions.is_empty(), "{what}: a second repair found {:?}", again.actions);
        }
    }
}

/// A keystore cut by `repair` (a damaged length leaves no frame boundary to splice at) loses
/// key ids that records' log records still name — a live record's, or a deleted one's — and
/// the header's next key id, which appends never rewrite, can be far below them: no record
/// may be issued one of them again (FORMAT.md § 8.3), with or without the master key.
#[test]
fn key_ids_a_keystore_cut_lost_are_never_issued_again() {
    for (keyed, delete_last) in [(true, false), (false, false), (true, true), (false, true)] {
        let what = format!("key: {keyed}, last record deleted: {delete_last}");
        let fs = MemFs::new();
        let keystore = Path::new(DIR).join("keystore");
        let frame_at = build_then(&fs, |db| {
            for batch_of in [20, 1] {
                let mut batch = db.begin_write();
                for i in 0..batch_of {
                    let r = Record::new(format!("b{batch_of}-{i:02}"), location_of(i)).pii("name", "lost");
                    batch.upsert("c", r).unwrap();
                }
                batch.commit().unwrap();
            }
            if delete_last {
                // Its key stays in the keystore (until a compaction), its id in the log.
                let mut batch = db.begin_write();
                batch.delete("c", "b1-00").unwrap();
                batch.commit().unwrap();
            }
        });
        let pristine = fs.read_all(&keystore).unwrap();
        let db_id: [u8; 16] = pristine[10..26].try_into().unwrap(); // FORMAT.md § 8.1
        let key_id = |fs: &MemFs, id: &str| key_id_in_keystore(fs, db_id, id);
        let lost = key_id(&fs, "b1-00").unwrap();
        assert!(lost > key_id(&fs, "b20-19").unwrap());
        // The first entry's record id length (after its key id, the collection and its
        // length): the frame's entries no longer end at its length, so it is cut there.
        let mut bytes = pristine.clone();
        bytes[frame_at + 8 + 4 + 8 + 4 + 1] ^= 0x04;
        fs.write_raw(&keystore, &bytes);
        let report = repair_keyed_or_not(&fs, keyed);
        let dropped = dropped_ids(&report.actions);
        assert!(dropped.contains(&"b20-00".to_owned()), "{what}: {:?}", report.actions);
        assert_eq!(dropped.contains(&"b1-00".to_owned()), !delete_last, "{what}");
        assert_eq!(key_id(&fs, "b1-00"), None, "{what}");
        assert_new_key_id_above(&fs, db_id, lost, &what);
    }
}

/// The keys issued above the ids erasures destroyed (an open raises the next key id past the
/// MANIFEST's erased ids without writing it into an older keystore copy's header) and then
/// lost to a keystore cut are never issued again, even when no live record names them (the
/// records were deleted): the cut stays past the erased ids too (from the review).
#[test]
fn a_keystore_cut_stays_past_the_key_ids_erasures_destroyed() {
    for keyed in [true, false] {
        let fs = MemFs::new();
        let keystore = Path::new(DIR).join("keystore");
        build(&fs);
        let older = fs.read_all(&keystore).unwrap();
        let db_id: [u8; 16] = older[10..26].try_into().unwrap(); // FORMAT.md § 8.1
        let erased: Vec<String> = (0..100).map(|i| format!("e{i:03}")).collect();
        {
            let db = Database::open(DIR, options(&fs)).unwrap();
            let mut batch = db.begin_write();
            for id in &erased {
                batch.upsert("c", Record::new(id.clone(), location_of(3)).pii("name", "gone")).unwrap();
            }
            batch.commit().unwrap();
            db.erase_many("c", &erased.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        }
        // The older copy: no live record misses its key, so it opens; keys are issued above
        // the erased ids, in two frames, for records deleted afterwards.
        fs.write_raw(&keystore, &older);
        let later = ["y1", "y2", "y3", "z"];
        {
            let db = Database::open(DIR, options(&fs)).unwrap();
            for ids in [&later[..3], &later[3..]] {
                let mut batch = db.begin_write();
                for id in ids {
                    batch.upsert("c", Record::new(*id, location_of(4)).pii("name", "later")).unwrap();
                }
                batch.commit().unwrap();
            }
            let mut batch = db.begin_write();
            for id in later {
                batch.delete("c", id).unwrap();
            }
            batch.commit().unwrap();
        }
        let lost = later.iter().filter_map(|id| key_id_in_keystore(&fs, db_id, id)).max().unwrap();
        let oldest_lost = later.iter().filter_map(|id| key_id_in_keystore(&fs, db_id, id)).min().unwrap();
        assert!(oldest_lost > 100, "the keys were issued above the erased ids");
        // The first later entry's record id length: the frame is cut there, the next with it.
        let mut bytes = fs.read_all(&keystore).unwrap();
        bytes[older.len() + 8 + 4 + 8 + 4 + 1] ^= 0x04;
        fs.write_raw(&keystore, &bytes);
        let report = repair_keyed_or_not(&fs, keyed);
        assert!(
            report.actions.iter().any(|a| matches!(a, RepairAction::KeystoreCut { .. })),
            "key: {keyed}: {:?}",
            report.actions
        );
        assert_new_key_id_above(&fs, db_id, lost, &format!("key: {keyed}"));
    }
}

/// A keystore restored from an older copy lacks the keys of records written since: repair
/// keeps them without their PII, and no later record is issued one of their key ids, which
/// their log records name (the copy's next key id is below them).
#[test]
fn key_ids_an_older_keystore_copy_lacks_are_never_issued_again() {
    for keyed in [true, false] {
        let fs = MemFs::new();
        let keystore = Path::new(DIR).join("keystore");
        build(&fs);
        let older = fs.read_all(&keystore).unwrap();
        let db = Database::open(DIR, options(&fs)).unwrap();
        let mut batch = db.begin_write();
        for i in 0..5 {
            batch.upsert("c", Record::new(format!("late{i}"), location_of(i)).pii("name", "late")).unwrap();
        }
        batch.commit().unwrap();
        drop(db);
        let db_id: [u8; 16] = older[10..26].try_into().unwrap(); // FORMAT.md § 8.1
        let key_id = |id: &str| key_id_in_keystore(&fs, db_id, id);
        let lost = (0..5).filter_map(|i| key_id(&format!("late{i}"))).max().unwrap();
        fs.write_raw(&keystore, &older);
        let report = repair_keyed_or_not(&fs, keyed);
        assert_eq!(dropped_ids(&report.actions).len(), 5, "key: {keyed}: {:?}", report.actions);
        assert_new_key_id_above(&fs, db_id, lost, &format!("key: {keyed}"));
    }
}

/// A record deleted (not erased) whose key is in the keystore's final frame, then damaged:
/// the open leaves the frame out (no live record needs it), so the key is in no map. An
/// erasure of the record, or a compaction, must still take it off the disk — the frame is
/// dropped from the file — or a later repair could give it back to the record (from the
/// review of the keystore repair).
#[test]
fn an_erasure_or_compaction_drops_a_left_out_final_keystore_frame() {
    for compact in [false, true] {
        let fs = MemFs::new();
        let keystore = Path::new(DIR).join("keystore");
        let frame_at = build_then(&fs, |db| {
            let mut b = db.begin_write();
            b.upsert("c", Record::new("z", location_of(0)).pii("name", "Zed")).unwrap();
            b.commit().unwrap();
            let mut b = db.begin_write();
            b.delete("c", "z").unwrap();
            b.commit().unwrap();
        });
        let mut bytes = fs.read_all(&keystore).unwrap();
        assert!(bytes.len() > frame_at, "z's key has a frame of its own");
        bytes[frame_at + 4] ^= 0x01; // its checksum
        fs.write_raw(&keystore, &bytes);
        let db_id: [u8; 16] = bytes[10..26].try_into().unwrap(); // FORMAT.md § 8.1
        let left_out = || {
            let ks =
                geocrm::crypto::Keystore::open(Arc::new(fs.clone()), Path::new(DIR), db_id, None).unwrap();
            ks.dropped_tail_bytes()
        };
        assert!(left_out() > 0);
        {
            let db = Database::open(DIR, options(&fs)).unwrap();
            if compact {
                db.compact().unwrap();
            } else {
                assert!(!db.erase("c", "z").unwrap().existed);
            }
        }
        assert_eq!(left_out(), 0, "compact: {compact}: the frame holding z's key is still in the file");
        assert!(fs.read_all(&keystore).unwrap().len() < bytes.len(), "compact: {compact}");
    }
}

/// Keys taken back from a damaged final keystore frame take only their records off the list
/// of records to re-write: records whose log record cannot be read back (under the
/// checkpoint) are still re-written without PII, and the repair completes (they were left
/// out, and the compaction `verify` then asks for failed on them; from the review of the
/// keystore repair).
#[test]
fn keys_taken_back_do_not_hide_records_whose_log_record_is_lost() {
    let fs = MemFs::new();
    let keystore = Path::new(DIR).join("keystore");
    let frame_at = build_then(&fs, |db| {
        let mut batch = db.begin_write();
        for i in 0..5 {
            batch
                .upsert("c", Record::new(format!("k{i}"), location_of(i)).pii("name", format!("k-{i}")))
                .unwrap();
        }
        batch.commit().unwrap();
    });
    let mut bytes = fs.read_all(&keystore).unwrap();
    bytes[frame_at + 4] ^= 0x01; // the final frame's checksum
    fs.write_raw(&keystore, &bytes);
    let first = &segments(&fs)[0];
    let mut seg = fs.read_all(first).unwrap();
    seg[200] ^= 0x08; // a record under the checkpoint
    fs.write_raw(first, &seg);
    let report = repair(&fs).unwrap();
    let dropped = dropped_ids(&report.actions);
    assert!(!dropped.is_empty() && dropped.iter().all(|id| id.starts_with('r')), "{:?}", report.actions);
    let db = Database::open(DIR, options(&fs)).unwrap();
    for i in 0..5 {
        let got = db.read().collection("c").unwrap().reveal(&format!("k{i}")).unwrap();
        assert_eq!(got["name"].expose(), format!("k-{i}"));
    }
    assert_eq!(check_prefix(&db, &dropped, "taken back"), COMMITS);
    assert!(db.verify().unwrap().is_ok());
    drop(db);
    assert!(repair(&fs).unwrap().actions.is_empty());
}

/// The close record (`log/SYNCED`) names the newest segment: losing that segment whole is
/// damage, not a log that ends earlier (it opened with the segment's commits gone); a log
/// with no segment and no MANIFEST is repaired in one run; and a repair that refuses keeps the
/// record (from the review of the close record).
#[test]
fn the_close_record_catches_a_lost_newest_segment_and_repair_takes_it_in_one_run() {
    let fs = MemFs::new();
    build(&fs);
    let mut segs = segments(&fs);
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let newest = segs.last().unwrap().clone();
    fs.remove_file(&newest).unwrap();
    let err = Database::open(DIR, options(&fs)).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { file, .. } if *file == newest) && err.to_string().contains("is gone"),
        "{err}"
    );
    let err =
        Database::open(DIR, Options::new().file_system(Arc::new(fs.clone())).read_only(true)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    // Repair cuts the log back to the segments left (a checkpoint names none: no
    // checkpoint), listing what went.
    let report = repair(&fs).unwrap();
    assert!(!report.actions.is_empty(), "{report:?}");
    assert!(Database::open(DIR, options(&fs)).is_ok());

    // The two newest gone: the report names both (it named only the newest).
    let fs = MemFs::new();
    build(&fs);
    let mut segs = segments(&fs);
    segs.sort();
    let number = |p: &PathBuf| p.file_stem().unwrap().to_str().unwrap().parse::<u64>().unwrap();
    let (last, before) = (number(&segs[segs.len() - 1]), number(&segs[segs.len() - 2]));
    for seg in &segs[segs.len() - 2..] {
        fs.remove_file(seg).unwrap();
    }
    let report = repair(&fs).unwrap();
    let [RepairAction::SegmentLost { file, reason, .. }, ..] = report.actions.as_slice() else {
        panic!("{:?}", report.actions)
    };
    assert_eq!(number(file), last);
    assert!(
        reason.ends_with(&format!("; segment {before} before it is gone as well, with its writes")),
        "{reason}"
    );
    assert!(Database::open(DIR, options(&fs)).is_ok());

    // Every segment and the MANIFEST gone: one repair run starts the log again.
    let fs = MemFs::new();
    build(&fs);
    for seg in segments(&fs) {
        fs.remove_file(&seg).unwrap();
    }
    fs.remove_file(&Path::new(DIR).join("MANIFEST")).unwrap();
    let report = repair(&fs).unwrap();
    assert!(report.actions.iter().any(|a| matches!(a, RepairAction::LogLost { .. })), "{:?}", report.actions);
    Database::open(DIR, options(&fs)).unwrap();
}

/// A closed log's newest segment found cut at a transaction's end: repair keeps it as it
/// ends and says the missing bytes cannot be listed (it said "dropped 0 bytes of
/// transactions", as if nothing was lost; from a hands-on crash test).
#[test]
fn a_segment_found_cut_at_a_transaction_end_is_reported_as_a_loss() {
    let fs = MemFs::new();
    build(&fs);
    let commit = |id: &str| {
        let db = Database::open(DIR, options(&fs)).unwrap();
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new(id, location_of(1))).unwrap();
        batch.commit().unwrap();
    };
    // The first starts a new segment (build's last one is full), the second follows it.
    commit("early");
    let newest = segments(&fs).into_iter().max().unwrap();
    let before = fs.read_all(&newest).unwrap();
    commit("late");
    assert_eq!(segments(&fs).into_iter().max().unwrap(), newest, "the commit stayed in the segment");
    fs.write_raw(&newest, &before);
    let report = repair(&fs).unwrap();
    let [cut @ RepairAction::LogCut { bytes_dropped: 0, .. }] = report.actions.as_slice() else {
        panic!("{:?}", report.actions)
    };
    let text = cut.to_string();
    assert!(
        text.starts_with(&format!("kept {} as it ends, at byte {}", newest.display(), before.len())),
        "{text}"
    );
    assert!(text.contains("acknowledged bytes were cut off") && text.contains("cannot be listed"), "{text}");
    assert!(!text.contains("dropped 0"), "{text}");
    let db = Database::open(DIR, options(&fs)).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert!(c.get("early").unwrap().is_some() && c.get("late").unwrap().is_none());
}

/// One damaged entry in the audit log loses that entry alone: repair removes its frame and
/// keeps the intact entries after it (it cut the file there, dropping them; from a hands-on
/// review).
#[test]
fn a_damaged_audit_entry_goes_and_the_entries_after_it_stay() {
    let fs = MemFs::new();
    build(&fs);
    {
        let db = Database::open(DIR, options(&fs)).unwrap();
        for id in ["r01", "r02", "r03"] {
            db.read().collection("c").unwrap().reveal(id).unwrap();
        }
    }
    let db = Database::open(DIR, options(&fs)).unwrap();
    let before = db.audit_entries().unwrap();
    drop(db);
    assert!(before.len() >= 3, "{}", before.len());
    let path = Path::new(DIR).join("audit.log");
    let mut bytes = fs.read_all(&path).unwrap();
    // A byte inside the third-to-last entry's frame: the file as entries, back to front.
    let len = bytes.len();
    let third_last_at = len - 3 * (len - 30) / before.len() + 10;
    bytes[third_last_at] ^= 0x20;
    fs.write_raw(&path, &bytes);
    let report = repair(&fs).unwrap();
    let [RepairAction::AuditCut { reason, bytes_dropped, .. }] = report.actions.as_slice() else {
        panic!("{:?}", report.actions)
    };
    assert!(reason.ends_with("the entries after it were kept"), "{reason}");
    assert!((*bytes_dropped as usize) < len / 2, "{bytes_dropped}");
    let after = Database::open(DIR, options(&fs)).unwrap().audit_entries().unwrap();
    assert_eq!(after.len(), before.len() - 1);
    // The last two entries (r02's and r03's reveals) are intact.
    assert_eq!(after[after.len() - 2..], before[before.len() - 2..]);
}

/// A torn tail the repair's open cuts is in the report (it said "nothing to repair" while the
/// log lost the bytes; from a hands-on review).
#[test]
fn a_torn_tail_cut_by_the_repair_is_reported() {
    let fs = MemFs::new();
    build(&fs);
    let mut segs = segments(&fs);
    segs.sort();
    let newest = segs.last().unwrap().clone();
    let mut bytes = fs.read_all(&newest).unwrap();
    let len = bytes.len() as u64;
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 7, 7, 7]);
    fs.write_raw(&newest, &bytes);
    let report = repair(&fs).unwrap();
    assert!(
        matches!(report.actions.as_slice(), [RepairAction::LogCut { file, offset, bytes_dropped: 7, reason, acknowledged: false }]
            if *file == newest && *offset == len && reason.starts_with("a torn tail")),
        "{:?}",
        report.actions
    );
    assert!(!report.is_clean());
    // Never acknowledged: no loss (`geocrm repair` exits 0).
    assert!(!report.acknowledged_data_lost);
}

/// Every segment lost after the log rolled past the checkpoint's segment: the close record
/// names a later one; repair takes it as gone and starts the checkpoint's segment again (it
/// refused; from the read-through review).
#[test]
fn every_segment_lost_past_a_checkpoint_is_repaired() {
    let fs = MemFs::new();
    build(&fs);
    let at_checkpoint;
    {
        let db = Database::open(DIR, options(&fs)).unwrap();
        db.checkpoint().unwrap();
        at_checkpoint = db.read().collection("c").unwrap().len();
        for i in 0..12 {
            let mut batch = db.begin_write();
            batch.upsert("c", Record::new(format!("late{i}"), location_of(i)).pii("name", name(i))).unwrap();
            batch.commit().unwrap();
        }
    }
    let mut segs = segments(&fs);
    segs.sort();
    for seg in &segs {
        fs.remove_file(seg).unwrap();
    }
    assert!(matches!(Database::open(DIR, options(&fs)), Err(Error::Corrupt { .. })));
    let report = repair(&fs).unwrap();
    // The newest segment, which the close record names, is said to be lost, once.
    let lost: Vec<_> =
        report.actions.iter().filter(|a| matches!(a, RepairAction::SegmentLost { .. })).collect();
    assert!(
        matches!(lost.as_slice(), [RepairAction::SegmentLost { file, synced_bytes: Some(_), .. }]
            if *file == *segs.last().unwrap()),
        "{:?}",
        report.actions
    );
    assert!(report.acknowledged_data_lost);
    assert!(
        report.actions.iter().any(|a| matches!(a, RepairAction::SegmentCreated { .. })),
        "{:?}",
        report.actions
    );
    let db = Database::open(DIR, options(&fs)).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), at_checkpoint);
}

/// Damage in a log segment a checkpoint covers is the segment's, not the checkpoint's:
/// `verify` reported the intact checkpoint as damaged (its check of the first row against
/// the log failed) and stopped there, while that file is the only copy of the records whose
/// log records were lost — a user who believed it and removed the file lost them (from a
/// hands-on review). Now the checkpoint is sound, every row is checked, and those pointing
/// into the damage are counted: exactly the records whose `get` fails.
#[test]
fn log_damage_under_a_checkpoint_is_the_logs_not_the_checkpoints() {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    commit_prefixed(&db, 0..3000, "a");
    db.checkpoint().unwrap();
    drop(db);
    let first = segments(&fs).into_iter().min().unwrap();
    let mut bytes = fs.read_all(&first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x08;
    fs.write_raw(&first, &bytes);
    let db = Database::open(DIR, opts()).unwrap();
    let report = db.verify().unwrap();
    let problem = |kind: &str| {
        report.files.iter().filter(|f| f.kind == kind).map(|f| f.problem.clone()).collect::<Vec<_>>()
    };
    assert!(problem("checkpoint") == [None], "{report:?}");
    assert!(
        report.files.iter().any(|f| f.path == first && f.problem.is_some()),
        "the segment is the damaged file: {report:?}"
    );
    let unreadable = report.rows_in_damaged_log;
    assert!(unreadable > 0 && unreadable < 3000, "{report:?}");
    assert_eq!(report.rows_checked + unreadable, 3000, "every other row is checked");
    let failing = {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        (0..3000).filter(|i| c.get(&format!("a{i:05}")).is_err()).count() as u64
    };
    assert_eq!(failing, unreadable, "the rows counted are those whose get fails");
    let note = report.notes.iter().find(|n| n.contains("the checkpoint is sound")).unwrap();
    assert!(note.contains(&format!("{unreadable} of its 3000 rows")) && note.contains("keep it"), "{note}");
    assert!(!report.is_ok());
    drop(db);
    // Repair rebuilds those records from the checkpoint: nothing acknowledged is lost.
    let repaired = Database::repair(DIR, opts()).unwrap();
    assert!(
        matches!(repaired.actions.as_slice(), [
            RepairAction::RebuiltFromCheckpoint { ids, .. },
            RepairAction::Compacted { .. },
        ] if ids.len() as u64 == unreadable),
        "{:?}",
        repaired.actions
    );
    assert!(!repaired.acknowledged_data_lost);
    let db = Database::open(DIR, opts()).unwrap();
    assert!(db.verify().unwrap().is_ok());
    assert_eq!(db.read().collection("c").unwrap().len(), 3000);
}

/// The log's first segment (its floor) missing under a checkpoint that replays from the
/// next one: named as the log's first segment, not as "the segment the manifest starts
/// replay at", which is the checkpoint's (from a hands-on review).
#[test]
fn a_missing_first_segment_under_a_checkpoint_is_named_as_the_logs_first() {
    let fs = MemFs::new();
    let opts = || plain_options(&fs);
    let db = new_plain_db(&fs);
    commit_prefixed(&db, 0..30, "a");
    db.checkpoint().unwrap();
    drop(db);
    let first = segments(&fs).into_iter().min().unwrap();
    fs.remove_file(&first).unwrap();
    let db = Database::open(DIR, opts()).unwrap();
    let report = db.verify().unwrap();
    let problem = report.files.iter().find(|f| f.path == first).and_then(|f| f.problem.clone()).unwrap();
    assert!(
        problem.contains(
            "the log's first segment is missing (the log floor the MANIFEST records; the oldest \
                          segment there is 2)"
        ) && !problem.contains("starts replay at"),
        "{problem}"
    );
    // Its rows are counted as pointing into the damaged log, the checkpoint sound.
    assert_eq!((report.rows_in_damaged_log, report.rows_checked), (30, 0), "{report:?}");
    assert!(report.files.iter().all(|f| f.kind != "checkpoint" || f.problem.is_none()), "{report:?}");
}
