//! Arbitrary bytes as a database directory's MANIFEST and, optionally, keystore and first
//! log segment (layout: `geocrm_fuzz::DbFiles`) → `Database::open` on `MemFs`. No panic,
//! hang or huge allocation; `Err` is fine. An opened database must answer queries over
//! what it replayed, read every record back, and take a new write that survives reopening.
#![no_main]

use std::sync::Arc;

use geocrm::crypto::{RawKey, KEYSTORE_FILE};
use geocrm::geo::BoundingBox;
use geocrm::io::{FileSystem, MemFs};
use geocrm::log::{segment_path, LOG_DIR};
use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
use geocrm_fuzz::{db_dir, fix_keystore_crcs, fix_manifest_crc, fix_segment_crcs, DbFiles, MASTER};
use libfuzzer_sys::fuzz_target;

fn options(fs: &Arc<MemFs>, key: bool) -> Options {
    let options = Options::new().file_system(fs.clone()).create_if_missing(false);
    if key {
        options.key(RawKey::new(MASTER))
    } else {
        options
    }
}

fuzz_target!(|input: &[u8]| {
    let files = DbFiles::parse(input);
    let key = files.flags & 1 != 0;
    let (mut manifest, mut keystore, mut segment) =
        (files.manifest.to_vec(), files.keystore.to_vec(), files.segment.to_vec());
    if files.flags & 8 != 0 {
        fix_manifest_crc(&mut manifest);
        fix_keystore_crcs(&mut keystore);
        fix_segment_crcs(&mut segment);
    }
    let fs = Arc::new(MemFs::new());
    fs.create_dir_all(db_dir()).expect("mkdir");
    fs.write_raw(&db_dir().join("MANIFEST"), &manifest);
    if files.flags & 2 != 0 {
        fs.write_raw(&db_dir().join(KEYSTORE_FILE), &keystore);
    }
    if files.flags & 4 != 0 {
        let log_dir = db_dir().join(LOG_DIR);
        fs.create_dir_all(&log_dir).expect("mkdir log");
        fs.write_raw(&segment_path(&log_dir, 1), &segment);
    }

    let Ok(db) = Database::open(db_dir(), options(&fs, key)) else { return };
    let mut counts = Vec::new();
    {
        let snap = db.read();
        for name in snap.collection_names() {
            let c = snap.collection(&name).expect("listed collection");
            let all = c.within_bbox(&BoundingBox::world(), &Filter::All).expect("scan");
            assert_eq!(all.len(), c.len());
            if let Some(first) = all.first() {
                let near = c.nearest(first.location, 3, &Filter::All).expect("nearest");
                assert!(!near.is_empty());
            }
            for hit in all.iter().take(16) {
                // Reading back from the log may find damage only if the frame changed since
                // replay, which it cannot have: replay validated it.
                let stored = c.get(&hit.id).expect("read back a replayed record").expect("present");
                if key {
                    // Keys may be missing or wrong for fuzzed files: Err, never a panic.
                    let _ = c.reveal(&stored.id);
                }
            }
            counts.push((name, c.len()));
        }
    }

    // A new write lands after whatever was replayed, and everything survives a reopen.
    let mut batch = db.begin_write();
    let created = snap_has(&db, "fuzz");
    if !created {
        batch.create_collection("fuzz", Schema::new().number("n")).expect("stage create");
    }
    let mut record = Record::new("fuzz-record", LatLon::new(1.0, 2.0).expect("valid"));
    if !created {
        record = record.number("n", 1.0);
    }
    batch.upsert("fuzz", record).expect("stage upsert");
    if let Err(e) = batch.commit() {
        // A write of no PII can only be refused when the replayed log leaves no LSNs for it
        // (a checksummed header may start the log near u64::MAX).
        assert!(db.next_lsn() > u64::MAX - 2, "commit failed on an opened database: {e:?}");
        return;
    }
    drop(db);
    let db = Database::open(db_dir(), options(&fs, key)).expect("reopen after a write");
    let snap = db.read();
    for (name, len) in counts {
        if name != "fuzz" {
            assert_eq!(snap.collection(&name).expect("still there").len(), len);
        }
    }
    let fuzz = snap.collection("fuzz").expect("created");
    assert!(fuzz.get("fuzz-record").expect("read").is_some());
});

fn snap_has(db: &Database, name: &str) -> bool {
    db.read().collection(name).is_ok()
}
