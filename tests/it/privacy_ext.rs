//! Validation of phone and e-mail PII at the door, and the audit log of PII reads.

use std::sync::Arc;

use geocrm::audit::AuditAction;
use geocrm::crypto::RawKey;
use geocrm::io::{FaultPlan, MemFs, OpKind};
use geocrm::{Database, Error, LatLon, Options, Record, Schema};

const PHONE: &str = "+33 1 42 68 53 00";

fn open(dir: &std::path::Path, options: Options) -> Database {
    Database::open(dir, options.key(RawKey::new([9; 32]))).unwrap()
}

fn person(id: &str, lat: f64) -> Record {
    Record::new(id, LatLon::new(lat, 2.35).unwrap())
}

#[test]
fn bad_phones_and_emails_are_refused_naming_record_and_field_not_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::new());
    db.create_collection("c", Schema::crm().pii_email("work_email")).unwrap();
    let cases = [
        ("phone", "0142685300"),        // no country code
        ("phone", "+33 1 42 68 53 0x"), // a letter
        ("phone", "+0331426853"),       // country code 0
        ("email", "ada.lovelace"),
        ("email", "ada lovelace@example.org"),
        ("work_email", "ada@@example.org"),
    ];
    for (field, value) in cases {
        let mut b = db.begin_write();
        let err = b.upsert("c", person("C-7", 48.0).pii(field, value)).unwrap_err();
        let Error::InvalidRecord { id, field: f, reason } = &err else { panic!("{err:?}") };
        assert_eq!((id.as_str(), f.as_str()), ("C-7", field));
        let text = format!("{err} {err:?} {reason}");
        for part in value.split(|c: char| !c.is_alphanumeric()).filter(|p| p.len() >= 4) {
            assert!(!text.contains(part), "{text:?} echoes {part:?} of the value");
        }
        assert!(b.is_empty(), "a refused record is not queued");
    }
    // Text PII is not validated; a phone in a text field stays as given.
    let mut b = db.begin_write();
    b.upsert("c", person("C-8", 48.0).pii("name", "0142685300")).unwrap();
    b.commit().unwrap();
}

#[test]
fn reveals_and_exports_are_audited_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::new().actor("agent-17"));
    db.create_collection("c", Schema::crm()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", person("A", 48.0).pii("name", "Zebulon Quartermaine").pii("phone", PHONE)).unwrap();
    b.upsert("c", person("B", 48.0)).unwrap();
    b.commit().unwrap();
    assert!(db.audit_entries().unwrap().is_empty(), "writes are not audited");
    db.read().collection("c").unwrap().reveal("A").unwrap();
    db.export_subject("c", "A").unwrap();
    db.read().collection("c").unwrap().reveal("B").unwrap(); // no PII: nothing revealed
    let entries = db.audit_entries().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].action, AuditAction::Reveal);
    assert_eq!(entries[1].action, AuditAction::Export);
    for e in &entries {
        assert_eq!((e.actor.as_str(), e.collection.as_str()), ("agent-17", "c"));
        assert_eq!(e.ids, ["A"]);
        assert_eq!(e.fields, ["name", "phone"]);
        assert!(e.unix_ms > 1_700_000_000_000);
    }
    drop(db);
    let audit = std::fs::read(dir.path().join("audit.log")).unwrap();
    for needle in ["Zebulon", "Quartermaine", "68 53 00"] {
        assert!(memchr::memmem::find(&audit, needle.as_bytes()).is_none(), "{needle} in the audit log");
    }
    // Entries persist across reopen, and reopening without a key can still read them.
    let db = Database::open(dir.path(), Options::new()).unwrap();
    assert_eq!(db.audit_entries().unwrap().len(), 2);
}

#[test]
fn audit_off_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Options::new().audit(false));
    db.create_collection("c", Schema::crm()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", person("A", 48.0).pii("name", "Ada")).unwrap();
    b.commit().unwrap();
    db.read().collection("c").unwrap().reveal("A").unwrap();
    db.export_subject("c", "A").unwrap();
    assert!(db.audit_entries().unwrap().is_empty());
    assert!(!dir.path().join("audit.log").exists());
}

/// A database with two audited reveals; returns the audit file's bytes and the offset where
/// the second entry's frame starts.
fn two_entries(dir: &std::path::Path) -> (Vec<u8>, usize) {
    let db = open(dir, Options::new());
    db.create_collection("c", Schema::crm()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", person("A", 48.0).pii("name", "Ada")).unwrap();
    b.commit().unwrap();
    db.read().collection("c").unwrap().reveal("A").unwrap();
    let one = std::fs::read(dir.join("audit.log")).unwrap().len();
    db.read().collection("c").unwrap().reveal("A").unwrap();
    drop(db);
    (std::fs::read(dir.join("audit.log")).unwrap(), one)
}

#[test]
fn a_torn_audit_tail_is_cut_and_damage_is_corrupt_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, second) = two_entries(dir.path());
    let path = dir.path().join("audit.log");
    // Every cut inside the second frame: one entry survives, and new entries follow it.
    for cut in second..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let db = open(dir.path(), Options::new());
        assert_eq!(db.audit_entries().unwrap().len(), 1, "cut at {cut}");
        assert_eq!(std::fs::read(&path).unwrap().len(), second, "the torn tail is truncated");
        db.read().collection("c").unwrap().reveal("A").unwrap();
        assert_eq!(db.audit_entries().unwrap().len(), 2);
    }
    // A flipped byte in the first frame (a valid frame follows): Corrupt naming file and offset.
    for at in [30, 35, 40, second - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let err = Database::open(dir.path(), Options::new().key(RawKey::new([9; 32]))).unwrap_err();
        match err {
            Error::Corrupt { file, offset, .. } => {
                assert_eq!((file, offset), (path.clone(), 30), "flip at {at}")
            }
            other => panic!("flip at {at}: {other:?}"),
        }
    }
    // Header damage, and a file of another database.
    let mut bad = bytes.clone();
    bad[12] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(Database::open(dir.path(), Options::new()), Err(Error::Corrupt { offset: 0, .. })));
}

#[test]
fn a_failed_audit_write_fails_the_reveal_and_every_later_one() {
    let fs = Arc::new(MemFs::new());
    let dir = std::path::Path::new("/db");
    let options = || Options::new().key(RawKey::new([9; 32])).file_system(fs.clone());
    let db = Database::open(dir, options()).unwrap();
    db.create_collection("c", Schema::crm()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", person("A", 48.0).pii("name", "Ada")).unwrap();
    b.commit().unwrap();
    fs.set_faults(FaultPlan::new().fail_once(OpKind::Sync, 0));
    assert!(db.read().collection("c").unwrap().reveal("A").is_err(), "no PII without its audit entry");
    fs.clear_faults();
    let err = db.read().collection("c").unwrap().reveal("A").unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err:?}");
    drop(db);
    let db = Database::open(dir, options()).unwrap();
    db.read().collection("c").unwrap().reveal("A").unwrap();
}
