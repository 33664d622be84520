//! Right to erasure, key rotation and subject access at the database level.

use std::path::Path;
use std::sync::Arc;

use geocrm::crypto::RawKey;
use geocrm::io::{CrashMode, FaultPlan, MemFs, OpKind};
use geocrm::{Database, Error, LatLon, Options, Record, Schema};

fn seed(db: &Database) {
    db.create_collection("c", Schema::crm().number("ltv")).unwrap();
    let mut b = db.begin_write();
    for i in 0..20 {
        b.upsert(
            "c",
            Record::new(format!("C{i}"), LatLon::new(10.0 + f64::from(i) * 0.01, 20.0).unwrap())
                .number("ltv", f64::from(i))
                .pii("name", format!("Person {i}"))
                .pii("email", format!("p{i}@example.com")),
        )
        .unwrap();
    }
    b.commit().unwrap();
}

#[test]
fn erase_removes_the_record_and_its_key_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let key = [8u8; 32];
    let keystore_before;
    {
        let db = Database::open(dir.path(), Options::new().key(RawKey::new(key))).unwrap();
        seed(&db);
        keystore_before = std::fs::read(dir.path().join("keystore")).unwrap();
        let receipt = db.erase("c", "C3").unwrap();
        assert!(receipt.existed);
        for what in ["location", "H3 cell", "attribute ltv", "PII field name", "PII field email", "data key"]
        {
            assert!(receipt.removed.iter().any(|r| r == what), "receipt lacks {what}: {:?}", receipt.removed);
        }
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        assert!(c.get("C3").unwrap().is_none());
        assert_eq!(c.len(), 19);
        assert!(c.nearest(LatLon::new(10.03, 20.0).unwrap(), 1, &geocrm::Filter::All).unwrap()[0].id != "C3");
        assert_eq!(c.reveal("C4").unwrap()["name"].expose(), "Person 4");
        drop(snap); // a commit waits for open snapshots: never commit while holding one
        let again = db.erase("c", "C3").unwrap();
        assert!(!again.existed && again.removed.is_empty() && again.until_compaction.is_empty());
        // What the log keeps until a compaction, by what the record had: PII (as
        // ciphertext) and an e-mail's blind value here; neither for a record without PII.
        assert_eq!(receipt.until_compaction.len(), 4, "{:?}", receipt.until_compaction);
        let mut b = db.begin_write();
        b.upsert("c", Record::new("PLAIN", LatLon::new(1.0, 1.0).unwrap()).number("ltv", 3.0)).unwrap();
        b.commit().unwrap();
        let plain = db.erase("c", "PLAIN").unwrap();
        assert_eq!(plain.until_compaction.len(), 2, "{:?}", plain.until_compaction);
        assert!(!plain.until_compaction.iter().any(|what| what.contains("PII")));
    }
    // The erased key's wrapped bytes are in no file any more (a temporary file included),
    // while another record's still are; and reopening with the master key cannot recover
    // the record.
    let keystore_after = std::fs::read(dir.path().join("keystore")).unwrap();
    assert!(keystore_after.len() < keystore_before.len());
    let wrapped = super::crypto::wrapped_of(&keystore_before, "C3");
    for (file, bytes) in all_file_bytes(dir.path()) {
        assert!(memchr::memmem::find(&bytes, &wrapped).is_none(), "C3's wrapped key still in {file:?}");
    }
    assert_eq!(
        super::crypto::wrapped_of(&keystore_after, "C4"),
        super::crypto::wrapped_of(&keystore_before, "C4")
    );
    let db = Database::open(dir.path(), Options::new().key(RawKey::new(key))).unwrap();
    assert!(db.read().collection("c").unwrap().get("C3").unwrap().is_none());
    // Re-creating the id gets a fresh key and works.
    let mut b = db.begin_write();
    b.upsert("c", Record::new("C3", LatLon::new(0.0, 0.0).unwrap()).pii("name", "New Person")).unwrap();
    b.commit().unwrap();
    assert_eq!(db.read().collection("c").unwrap().reveal("C3").unwrap()["name"].expose(), "New Person");
    for bytes in super::cli::all_files(dir.path()).into_iter().map(|f| std::fs::read(f).unwrap()) {
        assert!(memchr::memmem::find(&bytes, b"Person 3").is_none());
    }
}

#[test]
fn an_erasure_interrupted_before_the_key_is_destroyed_is_finished_at_open() {
    // Rename 0 publishes the MANIFEST recording the erased key id, rename 1 the keystore
    // without the key: either failing leaves the tombstone durable and the key not yet gone.
    for failing in [0, 1] {
        let fs = MemFs::new();
        let opts = |fs: &MemFs| Options::new().key(RawKey::new([2; 32])).file_system(Arc::new(fs.clone()));
        let db = Database::open(Path::new("/db"), opts(&fs)).unwrap();
        seed(&db);
        fs.set_faults(FaultPlan::new().fail_from(OpKind::Rename, failing));
        let err = db.erase("c", "C5").unwrap_err();
        assert!(matches!(err, Error::Io { .. } | Error::Poisoned { .. }), "{err}");
        drop(db);
        let image = fs.crash_image(1, CrashMode::SyncedOnly);
        let db = Database::open(Path::new("/db"), opts(&image)).unwrap();
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        assert!(c.get("C5").unwrap().is_none(), "the tombstone survived");
        assert_eq!(c.len(), 19);
        drop(snap);
        drop(db);
        // The key is gone from the keystore file itself.
        let ks =
            geocrm::crypto::Keystore::open(Arc::new(image.clone()), Path::new("/db"), db_id(&image), None)
                .unwrap();
        assert!(!ks.contains("c", "C5"), "rename {failing} failing");
        assert!(ks.contains("c", "C6"));
    }
}

fn db_id(fs: &MemFs) -> [u8; 16] {
    // The database id sits in every segment header at bytes 28..44.
    let seg = fs.read_all(Path::new("/db/log/000000000001.seg")).unwrap();
    seg[28..44].try_into().unwrap()
}

#[test]
fn rotation_rewraps_keys_and_retires_the_old_master_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32]))).unwrap();
        seed(&db);
        db.rotate_master_key(&RawKey::new([2; 32])).unwrap();
        // Same handle keeps working with the new key.
        assert_eq!(db.read().collection("c").unwrap().reveal("C1").unwrap()["name"].expose(), "Person 1");
        let mut b = db.begin_write();
        b.upsert("c", Record::new("after", LatLon::new(0.0, 0.0).unwrap()).pii("name", "After Rotation"))
            .unwrap();
        b.commit().unwrap();
    }
    let old = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32])));
    assert!(matches!(old, Err(Error::WrongKey)), "{old:?}");
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([2; 32]))).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.reveal("C7").unwrap()["email"].expose(), "p7@example.com");
    assert_eq!(c.reveal("after").unwrap()["name"].expose(), "After Rotation");
    drop(snap);
    let keyless = Database::open(tempfile::tempdir().unwrap().path(), Options::new()).unwrap();
    assert!(matches!(keyless.rotate_master_key(&RawKey::new([3; 32])), Err(Error::MissingKey)));
}

#[test]
fn subject_export_returns_everything_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([5; 32]))).unwrap();
    seed(&db);
    let v = db.export_subject("c", "C2").unwrap().into_json();
    assert_eq!((&v["id"], &v["live"]), (&"C2".into(), &true.into()));
    assert_eq!(v["pii"]["name"], "Person 2");
    assert_eq!(v["pii"]["email"], "p2@example.com");
    assert_eq!(v["numbers"]["ltv"], 2.0);
    assert_eq!(v["location"]["lat"], 10.02);
    assert_eq!(v["location"]["h3_cell"].as_str().unwrap().len(), 15);
    assert_eq!(v["earlier_versions"], serde_json::json!([]));
    // Who read the subject's PII before: the audit entries naming the id (here the export
    // above), not another record's.
    db.read().collection("c").unwrap().reveal("C3").unwrap();
    let v = db.export_subject("c", "C2").unwrap().into_json();
    let reads = v["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 1, "{v}");
    assert_eq!(
        (&reads[0]["action"], &reads[0]["fields"]),
        (&"export".into(), &serde_json::json!(["email", "name"]))
    );
    let err = db.export_subject("c", "nope").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }) && err.kind() == "not_found", "{err}");
    // A deleted record is still in the log until a compaction: exported as such (it read
    // "no such record", as if nothing were stored).
    let mut b = db.begin_write();
    b.delete("c", "C2").unwrap();
    b.commit().unwrap();
    let v = db.export_subject("c", "C2").unwrap().into_json();
    assert_eq!(v["live"], false);
    assert!(v.get("pii").is_none() && v.get("location").is_none(), "{v}");
    let versions = v["earlier_versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{v}");
    assert_eq!((&versions[0]["op"], &versions[0]["pii"]["name"]), (&"upsert".into(), &"Person 2".into()));
    assert_eq!(
        (&versions[0]["numbers"]["ltv"], &versions[0]["location"]["lat"]),
        (&2.0.into(), &10.02.into())
    );
    assert_eq!(versions[1]["op"], "delete");
    assert!(versions[0]["lsn"].as_u64() < versions[1]["lsn"].as_u64());
    // Compaction removes it from the log. The audit log still names it (who read its PII,
    // here the exports above): that is exported, not "no such record" (from the privacy
    // review).
    db.compact().unwrap();
    let v = db.export_subject("c", "C2").unwrap().into_json();
    assert_eq!((&v["live"], &v["earlier_versions"]), (&false.into(), &serde_json::json!([])), "{v}");
    let actions: Vec<&str> =
        v["reads"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["export", "export", "export"], "{v}");
    assert!(matches!(db.export_subject("c", "nope"), Err(Error::NotFound { .. })));
    drop(db);
    let keyless = Database::open(dir.path(), Options::new()).unwrap();
    assert!(matches!(keyless.export_subject("c", "C3"), Err(Error::MissingKey)));
    // On a thread holding a snapshot it is refused (it waits for running checkpoints).
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([5; 32]))).unwrap();
    seed(&db);
    let snap = db.read();
    assert!(matches!(db.export_subject("c", "C3"), Err(Error::SnapshotHeld { .. })));
    drop(snap);
    assert!(db.export_subject("c", "C3").is_ok());
}

/// A customer's history written in random steps (updates with changing PII, deletions,
/// erasures, checkpoints, compactions, other customers' writes); after each step the export
/// lists exactly what a model of the log holds: every earlier operation on the id since the
/// last compaction, oldest first, with the PII of each version — or `pii_erased` when an
/// erasure since destroyed its key — and the live record.
#[test]
fn subject_export_lists_every_version_the_log_holds() {
    use rand::{Rng, SeedableRng};
    #[derive(Debug, Clone, PartialEq)]
    enum Op {
        Upsert { name: String, ltv: f64, lat: f64, key: u32 },
        Delete,
        Erase,
    }
    for seed in 0..4u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([9; 32])).audit(seed % 2 == 0))
            .unwrap();
        db.create_collection("c", Schema::crm().number("ltv")).unwrap();
        db.create_collection("d", Schema::crm().number("ltv")).unwrap();
        // The model: the id's operations since the last compaction; its data key generation
        // (a new key after each erasure), and the generation erasures destroyed.
        let mut log: Vec<Op> = Vec::new();
        let mut exports = 0;
        let (mut key, mut live) = (0u32, false);
        for step in 0..40 {
            match rng.gen_range(0..10) {
                0..=4 => {
                    let op = Op::Upsert {
                        name: format!("Name {seed}-{step}"),
                        ltv: f64::from(step),
                        lat: rng.gen_range(-80.0..80.0),
                        key,
                    };
                    let Op::Upsert { name, ltv, lat, .. } = &op else { unreachable!() };
                    let mut b = db.begin_write();
                    let record = Record::new("S", LatLon::new(*lat, 10.0).unwrap()).number("ltv", *ltv);
                    // Sometimes without PII; the same id in the other collection is not its.
                    let record = if step % 7 == 3 { record } else { record.pii("name", name.clone()) };
                    b.upsert("c", record).unwrap();
                    b.upsert("d", Record::new("S", LatLon::new(0.0, 0.0).unwrap()).pii("name", "Other"))
                        .unwrap();
                    b.commit().unwrap();
                    let op = if step % 7 == 3 {
                        Op::Upsert { name: String::new(), ltv: *ltv, lat: *lat, key }
                    } else {
                        op
                    };
                    log.push(op);
                    live = true;
                }
                5 if live => {
                    let mut b = db.begin_write();
                    b.delete("c", "S").unwrap();
                    b.commit().unwrap();
                    log.push(Op::Delete);
                    live = false;
                }
                6 if live => {
                    db.erase("c", "S").unwrap();
                    log.push(Op::Erase);
                    key += 1;
                    live = false;
                }
                7 => {
                    db.checkpoint().unwrap();
                }
                8 => {
                    db.compact().unwrap();
                    // The compacted log holds only the live record's copy.
                    log = if live { log.last().cloned().into_iter().collect() } else { Vec::new() };
                }
                _ => {}
            }
            let exported = db.export_subject("c", "S");
            // What the log holds of the id: since the last compaction, plus the live copy.
            if log.is_empty() && !live {
                assert!(
                    matches!(exported, Err(Error::NotFound { .. })),
                    "seed {seed} step {step}: {exported:?}"
                );
                continue;
            }
            let v = exported.unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}")).into_json();
            exports += 1;
            assert_eq!(v["live"], live, "seed {seed} step {step}: {v}");
            let versions = v["earlier_versions"].as_array().unwrap();
            // The model's earlier versions: all but the live upsert (the last op when live).
            let earlier = if live && !log.is_empty() { &log[..log.len() - 1] } else { &log[..] };
            assert_eq!(versions.len(), earlier.len(), "seed {seed} step {step}: {v}\n{earlier:?}");
            for (got, want) in versions.iter().zip(earlier) {
                match want {
                    Op::Upsert { name, ltv, lat, key: k } => {
                        assert_eq!(got["op"], "upsert");
                        assert_eq!(
                            (&got["numbers"]["ltv"], &got["location"]["lat"]),
                            (&(*ltv).into(), &(*lat).into())
                        );
                        if name.is_empty() {
                            assert_eq!(got["pii"], serde_json::json!({}), "{got}");
                            assert!(got.get("pii_erased").is_none());
                        } else if *k < key {
                            assert_eq!(
                                (&got["pii"], &got["pii_erased"]),
                                (&serde_json::json!({}), &true.into()),
                                "{got}"
                            );
                        } else {
                            assert_eq!(got["pii"]["name"], name.as_str(), "{got}");
                        }
                    }
                    Op::Delete => assert_eq!(got["op"], "delete"),
                    Op::Erase => assert_eq!(got["op"], "erase"),
                }
            }
            if live {
                let Some(Op::Upsert { name, ltv, .. }) = log.last() else { panic!("live without an upsert") };
                assert_eq!(v["numbers"]["ltv"], *ltv);
                if !name.is_empty() {
                    assert_eq!(v["pii"]["name"], name.as_str());
                }
            }
        }
        if seed % 2 == 0 {
            // Each export is one entry, also when it returned no PII field (locations are
            // personal data too).
            let entries = db.audit_entries().unwrap();
            assert_eq!(entries.len(), exports);
            assert!(entries.iter().all(|e| e.action == geocrm::audit::AuditAction::Export && e.ids == ["S"]));
        }
    }
}

fn all_file_bytes(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// No file under `dir` holds any of `values` — as written, lowercased, or as its lowercase
/// letters and digits alone (the forms the engine normalizes names and e-mails to for
/// matching: `Person 3` → `person3`). The scan itself is checked: a record id every stage
/// keeps (`C15`, as the log writes it) must be found.
fn assert_no_plaintext(dir: &Path, values: &[String], stage: &str) {
    let files = all_file_bytes(dir);
    assert!(files.len() >= 4, "{stage}: {files:?}");
    let mut needles: Vec<String> = Vec::new();
    for v in values {
        let lower = v.to_lowercase();
        let squeezed: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        needles.push(v.clone());
        needles.push(lower);
        if squeezed.len() >= 6 {
            needles.push(squeezed);
        }
    }
    for (file, bytes) in &files {
        for v in &needles {
            assert!(
                memchr::memmem::find(bytes, v.as_bytes()).is_none(),
                "{stage}: {v:?} in plaintext in {file:?}"
            );
        }
    }
    assert!(
        files.iter().any(|(_, bytes)| memchr::memmem::find(bytes, b"\x03C15").is_some()),
        "{stage}: the scan finds not even a record id"
    );
}

#[test]
fn no_plaintext_pii_after_writes_updates_erasure_rotation_checkpoints_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        |k: u8| Options::new().key(RawKey::new([k; 32])).checkpoint_after_ops(None).segment_bytes(4096);
    let db = Database::open(dir.path(), options(5)).unwrap();
    seed(&db);
    let mut pii: Vec<String> =
        (0..20).flat_map(|i| [format!("Person {i}"), format!("p{i}@example.com")]).collect();
    assert_no_plaintext(dir.path(), &pii, "after writes");
    let mut b = db.begin_write();
    for i in 0..10 {
        let r = Record::new(format!("C{i}"), LatLon::new(11.0, 21.0).unwrap())
            .pii("name", format!("Renamed Person {i}"))
            .pii("phone", format!("+4420794600{i:02}"));
        b.upsert("c", r).unwrap();
        pii.extend([format!("Renamed Person {i}"), format!("+4420794600{i:02}"), format!("794600{i:02}")]);
    }
    b.commit().unwrap();
    db.checkpoint().unwrap();
    assert_no_plaintext(dir.path(), &pii, "after updates and a checkpoint");
    assert_eq!(db.read().collection("c").unwrap().reveal("C15").unwrap()["name"].expose(), "Person 15");
    db.erase("c", "C12").unwrap();
    db.rotate_master_key(&RawKey::new([6; 32])).unwrap();
    let mut b = db.begin_write();
    b.delete("c", "C13").unwrap();
    b.commit().unwrap();
    assert_no_plaintext(dir.path(), &pii, "after erasure, rotation and a delete");
    let report = db.compact().unwrap();
    assert!(report.segments_removed > 0);
    assert_no_plaintext(dir.path(), &pii, "after compaction");
    // The erased and deleted records left the log entirely (ids included; the checkpoint's
    // rows are checked through `get` below); only the audit log names ids read.
    // (In the log an id is a bincode string: its length byte, then the bytes — a pattern
    // random ciphertext is vanishingly unlikely to contain.)
    for (file, bytes) in all_file_bytes(dir.path()) {
        if file.starts_with(dir.path().join("log")) {
            for gone in [b"\x03C12", b"\x03C13"] {
                assert!(memchr::memmem::find(&bytes, gone).is_none(), "{gone:?} still in {file:?}");
            }
        }
    }
    drop(db);
    let db = Database::open(dir.path(), options(6)).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 18);
    assert_eq!(c.reveal("C4").unwrap()["name"].expose(), "Renamed Person 4");
    assert!(c.reveal("C12").is_err() && c.get("C12").unwrap().is_none());
    drop(snap);
    drop(db);
    assert!(matches!(Database::open(dir.path(), options(5)), Err(Error::WrongKey)));
}

#[test]
fn a_keyless_open_reads_the_keystore_only_when_an_erasure_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path(), Options::new().key(RawKey::new([4; 32]))).unwrap();
        seed(&db);
    }
    let keystore_before = std::fs::read(dir.path().join("keystore")).unwrap().len();
    let db = Database::open(dir.path(), Options::new()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 20, "location reads need no keystore");
    let receipt = db.erase("c", "C5").unwrap();
    assert!(receipt.removed.iter().any(|r| r == "data key"), "{:?}", receipt.removed);
    assert!(db.verify().unwrap().is_ok());
    drop(db);
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([4; 32]))).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert!(c.get("C5").unwrap().is_none() && c.reveal("C5").is_err());
    assert_eq!(c.reveal("C6").unwrap()["name"].expose(), "Person 6");
    // The key entry was removed: the keystore shrank by one entry.
    assert!(std::fs::read(dir.path().join("keystore")).unwrap().len() < keystore_before);
}

/// Bytes of every file under `DIR/index/` that contain `needle`.
fn index_files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    all_file_bytes(&dir.join("index"))
        .into_iter()
        .filter(|(_, bytes)| memchr::memmem::find(bytes, needle).is_some())
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn erasing_a_checkpointed_record_rewrites_the_index_files_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::new().key(RawKey::new([6; 32])).checkpoint_after_ops(None);
    let db = Database::open(dir.path(), options()).unwrap();
    seed(&db);
    // C3's location is a marker no other record has.
    let mut b = db.begin_write();
    b.upsert(
        "c",
        Record::new("C3", LatLon::new(-33.123_456_789, 151.987_654_321).unwrap()).pii("name", "Old"),
    )
    .unwrap();
    b.commit().unwrap();
    db.checkpoint().unwrap();
    // A newer version of C4 lives in memory only; its older one stays (hidden) in the files.
    let mut b = db.begin_write();
    b.upsert("c", Record::new("C4", LatLon::new(1.0, 1.0).unwrap())).unwrap();
    b.commit().unwrap();
    let lat = (-33.123_456_789f64).to_le_bytes();
    assert!(!index_files_holding(dir.path(), b"C3").is_empty(), "the test looks for the right bytes");
    assert!(!index_files_holding(dir.path(), &lat).is_empty(), "locations are stored as f64");

    let receipts = db.erase_many("c", &["C3", "C4", "nobody"]).unwrap();
    assert_eq!(receipts.len(), 3);
    let lsn = receipts[0].checkpoint_lsn.expect("C3 was in the index files");
    assert_eq!(receipts[1].checkpoint_lsn, Some(lsn), "one checkpoint for the whole call");
    assert!(receipts[0].removed.iter().any(|r| r.starts_with("index files")));
    assert!(!receipts[2].existed && receipts[2].checkpoint_lsn.is_none());
    assert_eq!(db.stats().checkpoint.map(|c| c.lsn), Some(lsn));
    for needle in [&b"C3"[..], b"C4", &lat] {
        assert_eq!(index_files_holding(dir.path(), needle), Vec::<std::path::PathBuf>::new());
    }
    // A record that only the memory table holds needs no checkpoint.
    let mut b = db.begin_write();
    b.upsert("c", Record::new("C99", LatLon::new(2.0, 2.0).unwrap())).unwrap();
    b.commit().unwrap();
    let receipt = db.erase("c", "C99").unwrap();
    assert!(receipt.existed && receipt.checkpoint_lsn.is_none());
    assert_eq!(db.stats().checkpoint.map(|c| c.lsn), Some(lsn));
    drop(db);
    let db = Database::open(dir.path(), options()).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 18);
    assert!(c.get("C3").unwrap().is_none() && c.get("C4").unwrap().is_none());
}

/// A batch large enough to be sealed, planned and freed on every core (over 4,096 records):
/// every record reads back, by id and by blind index, before and after reopening.
#[test]
fn a_large_pii_batch_reads_back_by_id_and_blind_index() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Database::open(dir.path(), Options::new().key(RawKey::new([8; 32]))).unwrap();
    let n = 5_000;
    {
        let db = open();
        db.create_collection("c", Schema::crm()).unwrap();
        let mut b = db.begin_write();
        let records = (0..n)
            .map(|i| {
                Record::new(format!("C{i}"), LatLon::new(f64::from(i) * 0.001, 20.0).unwrap())
                    .pii("name", format!("Person {i}"))
                    .pii("email", format!("p{i}@example.com"))
            })
            .collect();
        assert!(b.upsert_many("c", records).unwrap().is_empty());
        b.commit().unwrap();
    }
    for round in 0..2 {
        let db = open();
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        assert_eq!(c.len(), n as usize);
        for i in [0, 1, 2_047, 2_048, 4_095, 4_096, n - 1] {
            let pii = c.reveal(&format!("C{i}")).unwrap();
            assert_eq!(pii["name"].expose(), format!("Person {i}"), "round {round}");
            assert_eq!(c.find_by_email(&format!("P{i}@Example.com ")).unwrap(), [format!("C{i}")]);
        }
        drop(snap);
        if round == 0 {
            db.checkpoint().unwrap();
        }
    }
}

/// A keyed database on `fs` at `/db`, seeded.
fn seeded_in_memory(fs: &MemFs) -> Database {
    let db = Database::open(
        Path::new("/db"),
        Options::new().key(RawKey::new([2; 32])).file_system(Arc::new(fs.clone())),
    )
    .unwrap();
    seed(&db);
    db
}

#[test]
fn an_id_given_twice_to_erase_many_gets_one_receipt() {
    let db = seeded_in_memory(&MemFs::new());
    let receipts = db.erase_many("c", &["C5", "C5", "C6"]).unwrap();
    let got: Vec<(&str, bool)> = receipts.iter().map(|r| (r.id.as_str(), r.existed)).collect();
    assert_eq!(got, [("C5", true), ("C6", true)]);
}

#[test]
fn erasing_an_id_that_was_never_there_writes_nothing() {
    // A mistyped id — here an e-mail address typed where the id goes — was written into the
    // log as a tombstone, in plaintext until a compaction.
    let fs = MemFs::new();
    let db = seeded_in_memory(&fs);
    let mut b = db.begin_write();
    b.delete("c", "C3").unwrap();
    b.commit().unwrap();
    let before = db.next_lsn();
    let typo = "ada.lovelace@example.org";
    let receipts = db.erase_many("c", &[typo, "C4"]).unwrap();
    let got: Vec<(&str, bool, u64)> = receipts.iter().map(|r| (r.id.as_str(), r.existed, r.lsn)).collect();
    assert_eq!(got, [(typo, false, 0), ("C4", true, before)]);
    assert!(receipts[0].removed.is_empty());
    assert_eq!(db.next_lsn(), before + 1, "one tombstone");
    // Alone, nothing at all; a record deleted before (its data key kept) still gets one.
    let receipt = db.erase("c", "never-there").unwrap();
    assert_eq!((receipt.existed, receipt.lsn, db.next_lsn()), (false, 0, before + 1));
    let receipt = db.erase("c", "C3").unwrap();
    assert_eq!((receipt.existed, receipt.lsn), (false, before + 1));
    assert_eq!(receipt.removed, ["data key"]);
    drop(db);
    for file in fs.list_files() {
        let bytes = fs.read_all(&file).unwrap();
        for needle in [typo, "never-there"] {
            assert!(memchr::memmem::find(&bytes, needle.as_bytes()).is_none(), "{needle} in {file:?}");
        }
    }
}

#[test]
fn in_bulk_load_mode_an_erasure_that_writes_nothing_still_makes_earlier_writes_durable() {
    // A synced upsert and an unsynced deletion (bulk-load mode), then an erasure that finds
    // nothing to tombstone: its receipt says the record is gone, so a power loss must not
    // bring it back (a tombstone's commit used to sync the log).
    let fs = MemFs::new();
    let opts = || {
        Options::new()
            .key(RawKey::new([2; 32]))
            .file_system(Arc::new(fs.clone()))
            .durability(geocrm::Durability::NoSyncBulkLoad)
    };
    let db = Database::open(Path::new("/db"), opts()).unwrap();
    db.create_collection("c", Schema::crm()).unwrap();
    db.sync().unwrap();
    let mut b = db.begin_write();
    b.upsert("c", Record::new("X", LatLon::new(1.0, 1.0).unwrap())).unwrap();
    b.commit().unwrap();
    db.sync().unwrap();
    let mut b = db.begin_write();
    b.delete("c", "X").unwrap();
    b.commit().unwrap();
    let receipt = db.erase("c", "X").unwrap();
    assert_eq!((receipt.existed, receipt.lsn), (false, 0));
    for seed in 0..5 {
        let image = fs.crash_image(seed, CrashMode::SyncedOnly);
        let reopened = Database::open(
            Path::new("/db"),
            Options::new().key(RawKey::new([2; 32])).file_system(Arc::new(image)),
        )
        .unwrap();
        assert!(reopened.read().collection("c").unwrap().get("X").unwrap().is_none(), "seed {seed}");
    }
}

/// Seeds a database on `fs`, adds the record `erase-me-7f3a9c`, checkpoints, and flips a bit
/// of the checkpoint file's last byte (its last section, the cell order: a checksum fails).
fn checkpointed_then_damaged(fs: &MemFs, opts: Options) {
    let db = Database::open(Path::new("/db"), opts).unwrap();
    seed(&db);
    let mut b = db.begin_write();
    b.upsert("c", Record::new("erase-me-7f3a9c", LatLon::new(1.0, 1.0).unwrap())).unwrap();
    b.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let ckpt = fs.list_files().into_iter().find(|p| p.extension().is_some_and(|e| e == "ckpt")).unwrap();
    let mut bytes = fs.read_all(&ckpt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs.write_raw(&ckpt, &bytes);
}

#[test]
fn erasing_after_a_rejected_checkpoint_replaces_its_files() {
    // A damaged checkpoint is not used (replay rebuilds the state) but stays on disk, named
    // by the MANIFEST: an erasure left the record's location and attributes in it.
    let fs = MemFs::new();
    let opts = || Options::new().key(RawKey::new([2; 32])).file_system(Arc::new(fs.clone()));
    checkpointed_then_damaged(&fs, opts());
    let db = Database::open(Path::new("/db"), opts().verify_checkpoints_at_open(true)).unwrap();
    assert!(db.checkpoint_rejected().is_some());
    let receipt = db.erase("c", "erase-me-7f3a9c").unwrap();
    assert!(receipt.removed.iter().any(|r| r.contains("index files")), "{:?}", receipt.removed);
    drop(db);
    for path in fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "ckpt")) {
        let bytes = fs.read_all(&path).unwrap();
        assert!(memchr::memmem::find(&bytes, b"erase-me-7f3a9c").is_none(), "{path:?} still holds it");
    }
}

#[test]
fn erasing_with_a_damaged_checkpoint_not_yet_read_whole_is_refused_until_repaired() {
    // Opened without reading the files whole (the default), the damage is found when the
    // erasure checks every section — before anything is written: the record's location
    // must not stay in files the erasure would have believed it was not in.
    let fs = MemFs::new();
    let opts = || Options::new().key(RawKey::new([2; 32])).file_system(Arc::new(fs.clone()));
    checkpointed_then_damaged(&fs, opts());
    let db = Database::open(Path::new("/db"), opts()).unwrap();
    assert!(db.checkpoint_rejected().is_none(), "found on first use, not at open");
    let before = db.stats().next_lsn;
    let err = db.erase("c", "erase-me-7f3a9c").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }) && err.to_string().contains("first use"), "{err}");
    assert_eq!(db.stats().next_lsn, before, "nothing was written");
    drop(db);
    Database::repair(Path::new("/db"), opts()).unwrap();
    let db = Database::open(Path::new("/db"), opts()).unwrap();
    let receipt = db.erase("c", "erase-me-7f3a9c").unwrap();
    assert!(receipt.existed && receipt.checkpoint_lsn.is_some(), "{receipt:?}");
    drop(db);
    for path in fs.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "ckpt")) {
        let bytes = fs.read_all(&path).unwrap();
        assert!(memchr::memmem::find(&bytes, b"erase-me-7f3a9c").is_none(), "{path:?} still holds it");
    }
}

#[test]
fn subject_export_reads_the_log_while_commits_and_checkpoints_go_on() {
    // The export scans the log up to its snapshot while other threads append (rolling
    // segments) and checkpoint: every export sees a consistent history, none fails.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([4; 32])).segment_bytes(64 * 1024))
        .unwrap();
    seed(&db);
    // A bounded run (each export reads the whole log: an unbounded writer made the test
    // quadratic, minutes in the unoptimized build).
    const COMMITS: u32 = 120;
    let done = std::sync::atomic::AtomicBool::new(false);
    let check = |v: &serde_json::Value| {
        let versions = v["earlier_versions"].as_array().unwrap();
        // The seed's version, then V0, V1, … in order, the live one last.
        for (n, version) in versions.iter().enumerate().skip(1) {
            assert_eq!(version["pii"]["name"], format!("V{}", n - 1));
        }
        let live =
            if versions.is_empty() { "Person 5".to_owned() } else { format!("V{}", versions.len() - 1) };
        assert_eq!(v["pii"]["name"], live.as_str(), "{v}");
        versions.len()
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..COMMITS {
                let mut b = db.begin_write();
                for j in 0..10 {
                    let record = Record::new(format!("W{i}-{j}"), LatLon::new(1.0, 1.0).unwrap())
                        .pii("name", "Filler Name");
                    b.upsert("c", record).unwrap();
                }
                b.upsert(
                    "c",
                    Record::new("C5", LatLon::new(5.0, 5.0).unwrap())
                        .number("ltv", f64::from(i))
                        .pii("name", format!("V{i}")),
                )
                .unwrap();
                b.commit().unwrap();
                if i % 10 == 9 {
                    db.checkpoint().unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut last = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let n = check(&db.export_subject("c", "C5").unwrap());
            assert!(n >= last, "{n} < {last}");
            last = n;
        }
    });
    assert_eq!(check(&db.export_subject("c", "C5").unwrap()), COMMITS as usize);
}

#[test]
fn compaction_drops_the_data_keys_of_deleted_records() {
    // A deleted (not erased) record's key stayed in the keystore after the compaction that
    // removed its ciphertext, with its id in the clear: with the master key, any old copy of
    // the log still decrypted it. Now the compaction drops it; live records keep theirs.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32]))).unwrap();
    seed(&db);
    let gone = "Deleted-Customer-4242";
    let mut b = db.begin_write();
    b.upsert("c", Record::new(gone, LatLon::new(1.0, 1.0).unwrap()).pii("name", "Gone Person")).unwrap();
    b.commit().unwrap();
    let keystore = || std::fs::read(dir.path().join("keystore")).unwrap();
    let old_log: Vec<(std::path::PathBuf, Vec<u8>)> = all_file_bytes(&dir.path().join("log"));
    let mut b = db.begin_write();
    b.delete("c", gone).unwrap();
    b.commit().unwrap();
    db.checkpoint().unwrap();
    assert!(memchr::memmem::find(&keystore(), gone.as_bytes()).is_some(), "kept until a compaction");
    db.compact().unwrap();
    assert!(memchr::memmem::find(&keystore(), gone.as_bytes()).is_none(), "the deleted record's key stayed");
    // Live records keep their keys; the id can come back, with a new key.
    assert_eq!(db.read().collection("c").unwrap().reveal("C7").unwrap()["name"].expose(), "Person 7");
    let mut b = db.begin_write();
    b.upsert("c", Record::new(gone, LatLon::new(1.0, 1.0).unwrap()).pii("name", "Back Again")).unwrap();
    b.commit().unwrap();
    drop(db);
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32]))).unwrap();
    assert_eq!(db.read().collection("c").unwrap().reveal(gone).unwrap()["name"].expose(), "Back Again");
    // The old log copy's envelope no longer opens: its key is nowhere.
    assert!(old_log.iter().any(|(_, bytes)| memchr::memmem::find(bytes, gone.as_bytes()).is_some()));
    assert!(matches!(
        db.export_subject("c", gone).unwrap()["earlier_versions"].as_array().map(Vec::len),
        Some(0)
    ));
}

#[test]
fn compaction_keeps_the_blind_index_key() {
    // The compaction that drops deleted records' keys took the blind index's root key (an
    // entry of collection "", which has no records) for one of them: afterwards `find` missed
    // every record written before, and a new root made their duplicates unmatched.
    let dir = tempfile::tempdir().unwrap();
    let key = || Options::new().key(RawKey::new([7; 32]));
    let db = Database::open(dir.path(), key()).unwrap();
    seed(&db);
    let mut b = db.begin_write();
    b.delete("c", "C19").unwrap();
    b.commit().unwrap();
    db.compact().unwrap();
    let found = |db: &Database| db.read().collection("c").unwrap().find_by_email("P3@Example.com").unwrap();
    assert_eq!(found(&db), ["C3"]);
    let mut b = db.begin_write();
    b.upsert("c", Record::new("New", LatLon::new(-40.0, 20.0).unwrap()).pii("email", "p3@example.com"))
        .unwrap();
    b.commit().unwrap();
    drop(db);
    let db = Database::open(dir.path(), key()).unwrap();
    assert_eq!(found(&db), ["C3", "New"]);
    let groups = db.read().collection("c").unwrap().duplicates().unwrap();
    assert_eq!(groups.iter().map(|g| g.ids.clone()).collect::<Vec<_>>(), [["C3", "New"]]);
}

#[test]
fn a_subject_export_debug_prints_no_pii() {
    // The export was a bare `serde_json::Value`: `{:?}` in a host's log printed the PII.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32]))).unwrap();
    seed(&db);
    let export = db.export_subject("c", "C4").unwrap();
    assert_eq!(export["pii"]["name"], "Person 4", "reads as its JSON");
    let shown = format!("{export:?} {export:#?}");
    assert!(
        shown.contains("C4") && !shown.contains("Person 4") && !shown.contains("p4@example.com"),
        "{shown}"
    );
    let json = serde_json::to_string(&export).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        export.into_json(),
        "serializes as its JSON"
    );
}

/// `update` keeps a record's sealed PII without the key (copied as stored, never opened),
/// clears a PII field with its blind value, sees the batch's own earlier writes, and refuses
/// (nothing of the batch written) an update of a record that is not there: never written,
/// erased, or deleted earlier in the batch. Through a checkpoint, a key rotation and a
/// compaction the kept PII still reads back, and no plaintext reaches a file.
#[test]
fn an_update_keeps_sealed_pii_without_the_key_and_clears_what_it_names() {
    use geocrm::Update;
    let dir = tempfile::tempdir().unwrap();
    let keyed = |k: u8| Options::new().key(RawKey::new([k; 32])).checkpoint_after_ops(None);
    let db = Database::open(dir.path(), keyed(5)).unwrap();
    seed(&db);
    db.checkpoint().unwrap();
    let audited = db.audit_entries().unwrap().len();
    drop(db);

    let db = Database::open(dir.path(), Options::new().checkpoint_after_ops(None)).unwrap();
    let paris = LatLon::new(48.85, 2.35).unwrap();
    let mut b = db.begin_write();
    b.update("c", "C1", Update::new().location(paris).number("ltv", 99.5)).unwrap();
    let keyless = b.update("c", "C1", Update::new().pii("name", "Eve")).err();
    assert!(matches!(keyless, Some(Error::MissingKey)), "{keyless:?}");
    b.update("c", "C2", Update::new().clear("email")).unwrap();
    b.update("c", "C8", Update::new().clear("name").clear("email")).unwrap();
    b.upsert("c", Record::new("C3", paris)).unwrap();
    b.update("c", "C3", Update::new().number("ltv", 7.0)).unwrap();
    b.commit().unwrap();
    let absent = |db: &Database, missing: &str, ops: &dyn Fn(&mut geocrm::WriteBatch<'_>)| {
        let mut b = db.begin_write();
        b.upsert("c", Record::new("C18", paris)).unwrap();
        ops(&mut b);
        let e = b.commit().err();
        assert!(matches!(e, Some(Error::NotFound { ref id, .. }) if id == missing), "{e:?}");
        assert_ne!(db.read().collection("c").unwrap().get("C18").unwrap().unwrap().location, paris);
    };
    absent(&db, "C99", &|b| {
        b.update("c", "C99", Update::new().location(paris)).unwrap();
    });
    absent(&db, "C5", &|b| {
        b.delete("c", "C5").unwrap();
        b.update("c", "C5", Update::new().number("ltv", 1.0)).unwrap();
    });
    assert!(db.read().collection("c").unwrap().get("C5").unwrap().is_some(), "the failed batch's delete");
    drop(db);

    let db = Database::open(dir.path(), keyed(5)).unwrap();
    assert_eq!(db.audit_entries().unwrap().len(), audited);
    db.erase("c", "C4").unwrap();
    absent(&db, "C4", &|b| {
        b.update("c", "C4", Update::new().location(paris)).unwrap();
    });
    // With the key: an upsert's new PII, then an update of it in the same batch clearing
    // one field (sealed once, the cleared field never).
    let mut b = db.begin_write();
    let c9 = Record::new("C9", paris).pii("name", "Renamed 9").pii("email", "new9@example.com");
    b.upsert("c", c9).unwrap();
    b.update("c", "C9", Update::new().clear("email").number("ltv", 9.5)).unwrap();
    b.commit().unwrap();
    // With the key, a PII field set: sealed under the record's key, its other envelope kept
    // byte for byte; then, after a rotation, another record's.
    let sealed_name = |db: &Database, id: &str| {
        db.read().collection("c").unwrap().get(id).unwrap().unwrap().pii["name"].clone()
    };
    let name10 = sealed_name(&db, "C10");
    let mut b = db.begin_write();
    b.update("c", "C10", Update::new().pii("email", " New.Ten@Example.com ").location(paris)).unwrap();
    b.commit().unwrap();
    assert_eq!(sealed_name(&db, "C10"), name10);
    db.rotate_master_key(&RawKey::new([6; 32])).unwrap();
    let mut b = db.begin_write();
    b.update("c", "C11", Update::new().pii("name", "Eleven Renamed").clear("ltv")).unwrap();
    b.commit().unwrap();
    let before = db.audit_entries().unwrap().len();
    let mut b = db.begin_write();
    b.update("c", "C6", Update::new().location(paris).clear("ltv")).unwrap();
    b.commit().unwrap();
    assert_eq!(db.audit_entries().unwrap().len(), before, "an update reads no PII");
    let check = |db: &Database| {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let c1 = c.get("C1").unwrap().unwrap();
        assert_eq!((c1.location, c1.numbers["ltv"]), (paris, 99.5));
        let pii = c.reveal("C1").unwrap();
        assert_eq!((pii["name"].expose(), pii["email"].expose()), ("Person 1", "p1@example.com"));
        assert_eq!(c.find_by_email("p1@example.com").unwrap(), ["C1"]);
        let c2 = c.reveal("C2").unwrap();
        assert_eq!((c2["name"].expose(), c2.contains_key("email")), ("Person 2", false));
        assert!(c.find_by_email("p2@example.com").unwrap().is_empty());
        let c3 = c.get("C3").unwrap().unwrap();
        assert!(c3.pii.is_empty() && c3.numbers["ltv"] == 7.0, "the batch's own upsert, updated");
        let c6 = c.get("C6").unwrap().unwrap();
        assert!(c6.numbers.is_empty() && c6.location == paris);
        assert_eq!(c.reveal("C6").unwrap()["name"].expose(), "Person 6");
        assert!(c.get("C4").unwrap().is_none() && c.len() == 19);
        assert!(c.get("C8").unwrap().unwrap().pii.is_empty() && c.reveal("C8").unwrap().is_empty());
        assert!(c.find_by_email("p8@example.com").unwrap().is_empty());
        let c10 = c.reveal("C10").unwrap();
        assert_eq!((c10["name"].expose(), c10["email"].expose()), ("Person 10", "new.ten@example.com"));
        assert_eq!(c.find_by_email("new.ten@example.com").unwrap(), ["C10"]);
        assert!(c.find_by_email("p10@example.com").unwrap().is_empty());
        let c11 = c.reveal("C11").unwrap();
        assert_eq!((c11["name"].expose(), c11["email"].expose()), ("Eleven Renamed", "p11@example.com"));
        assert_eq!(c.find_by_email("p11@example.com").unwrap(), ["C11"]);
        let c9 = c.reveal("C9").unwrap();
        assert_eq!((c9["name"].expose(), c9.len()), ("Renamed 9", 1));
        assert_eq!(c.get("C9").unwrap().unwrap().numbers["ltv"], 9.5);
        assert!(
            c.find_by_email("new9@example.com").unwrap().is_empty()
                && c.find_by_email("p9@example.com").unwrap().is_empty()
        );
    };
    check(&db);
    db.checkpoint().unwrap();
    db.compact().unwrap();
    check(&db);
    drop(db);
    let db = Database::open(dir.path(), keyed(6)).unwrap();
    check(&db);
    drop(db);
    let mut pii: Vec<String> =
        (0..20).flat_map(|i| [format!("Person {i}"), format!("p{i}@example.com")]).collect();
    pii.extend(
        ["Renamed 9", "new9@example.com", "New.Ten@Example.com", "new.ten@example.com", "Eleven Renamed"]
            .map(String::from),
    );
    assert_no_plaintext(dir.path(), &pii, "after updates");
}
