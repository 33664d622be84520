//! Database-level behaviour: durability across reopen, torn tails, corruption, locking,
//! keys, bad input, and no plaintext PII on disk.

use std::path::{Path, PathBuf};

use super::cli::all_files;
use geocrm::{crypto::RawKey, Database, Error, Filter, LatLon, Options, Record, Schema};

const KEY: [u8; 32] = [0x5a; 32];

fn opts() -> Options {
    Options::new().key(RawKey::new(KEY))
}

fn rec(i: usize) -> Record {
    Record::new(format!("C-{i:04}"), LatLon::new(45.0 + i as f64 * 0.001, 5.0 - i as f64 * 0.002).unwrap())
        .number("ltv", i as f64)
        .category("tier", if i.is_multiple_of(2) { "gold" } else { "silver" })
        .pii("name", format!("Person Number{i:04}"))
        .pii("phone", format!("+3361234{i:04}"))
}

/// A closed database holding collection `c` with record `C-0001` (with PII).
fn closed_db_with_one_record() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), opts()).unwrap();
    db.create_collection("c", schema()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", rec(1)).unwrap();
    b.commit().unwrap();
    dir
}

fn schema() -> Schema {
    Schema::crm().number("ltv").category("tier")
}

fn segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

fn ids(db: &Database) -> Vec<String> {
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    c.within_radius(LatLon::new(45.0, 5.0).unwrap(), 2e7, &Filter::All)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("log")).unwrap();
    for entry in all_files(from) {
        let rel = entry.strip_prefix(from).unwrap();
        if rel.to_str() == Some("LOCK") {
            continue;
        }
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&entry, to.join(rel)).unwrap();
    }
}

#[test]
fn writes_survive_reopen_and_moves_and_deletes_apply() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path(), opts()).unwrap();
        db.create_collection("c", schema()).unwrap();
        for i in 0..20 {
            let mut b = db.begin_write();
            b.upsert("c", rec(i)).unwrap();
            b.commit().unwrap();
        }
        let mut b = db.begin_write();
        b.upsert("c", Record::new("C-0003", LatLon::new(-33.9, 151.2).unwrap())).unwrap();
        b.delete("c", "C-0004").unwrap();
        b.commit().unwrap();
    }
    let db = Database::open(dir.path(), opts()).unwrap();
    let snap = db.read();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.len(), 19);
    let moved = c.get("C-0003").unwrap().unwrap();
    assert_eq!(moved.location, LatLon::new(-33.9, 151.2).unwrap());
    assert!(moved.pii.is_empty() && moved.numbers.is_empty(), "upsert replaces the whole record");
    assert!(c.get("C-0004").unwrap().is_none());
    let near = c.nearest(LatLon::new(-33.0, 151.0).unwrap(), 1, &Filter::All).unwrap();
    assert_eq!(near[0].id, "C-0003");
    assert_eq!(c.reveal("C-0007").unwrap()["name"].expose(), "Person Number0007");
}

/// Damage inside the last commit of a database that was closed is an error naming the
/// segment and offset, never cut as a torn append (a hands-on review flipped one byte of a
/// closed database's only import: every record of it went, with no word from open, verify
/// or repair). After a crash, bytes past what the last close recorded are still a torn tail.
#[test]
fn damage_to_the_last_commit_of_a_closed_log_is_an_error_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (start_of_import, end_of_first);
    {
        let db = Database::open(dir.path(), opts()).unwrap();
        db.create_collection("c", schema()).unwrap();
        start_of_import = std::fs::metadata(segment(dir.path())).unwrap().len() as usize;
        let mut b = db.begin_write();
        for i in 0..200 {
            b.upsert("c", rec(i)).unwrap();
        }
        b.commit().unwrap();
        end_of_first = std::fs::metadata(segment(dir.path())).unwrap().len() as usize;
    }
    let full = std::fs::read(segment(dir.path())).unwrap();
    assert_eq!(full.len(), end_of_first);
    // The import is the last commit: no later frame records it durable.
    for at in [start_of_import, start_of_import + 30, full.len() / 2, full.len() - 1] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let mut bytes = full.clone();
        bytes[at] ^= 0x04;
        std::fs::write(segment(copy.path()), &bytes).unwrap();
        let err = Database::open(copy.path(), opts()).unwrap_err();
        match &err {
            Error::Corrupt { file, reason, .. } => {
                assert!(file.ends_with("log/000000000001.seg"), "{err}");
                assert!(reason.contains("damage to acknowledged data, not a torn append"), "{err}");
            }
            other => panic!("byte {at}: {other:?}"),
        }
        assert_eq!(std::fs::read(segment(copy.path())).unwrap(), bytes, "byte {at}: the open cut it");
        let read_only = Database::open(copy.path(), Options::new().read_only(true)).unwrap_err();
        assert!(matches!(read_only, Error::Corrupt { .. }), "{read_only}");
        // Repair drops the damaged commit, says so, and the database opens again.
        let report = Database::repair(copy.path(), opts()).unwrap();
        assert!(report.actions.iter().any(|a| a.to_string().contains("000000000001.seg")), "{report:?}");
        assert_eq!(ids(&Database::open(copy.path(), opts()).unwrap()), Vec::<String>::new());
    }

    // Opened again and written to, then a crash (a copy taken while it is open): the
    // record from the first close still protects the first commit, and a garbled new commit
    // past it is a torn tail.
    let db = Database::open(dir.path(), opts()).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", rec(500)).unwrap();
    b.commit().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    drop(db);
    let mut bytes = std::fs::read(segment(crashed.path())).unwrap();
    assert!(bytes.len() > end_of_first);
    let last = bytes.len() - 3;
    bytes[last] ^= 0x04;
    std::fs::write(segment(crashed.path()), &bytes).unwrap();
    let db = Database::open(crashed.path(), opts()).unwrap();
    assert_eq!(db.recovery_report().truncated.as_ref().map(|t| t.offset), Some(end_of_first as u64));
    assert_eq!(ids(&db).len(), 200);
    drop(db);
    bytes[end_of_first - 3] ^= 0x04;
    std::fs::write(segment(crashed.path()), &bytes).unwrap();
    assert!(matches!(Database::open(crashed.path(), opts()), Err(Error::Corrupt { .. })));
}

#[test]
fn cutting_the_log_anywhere_in_its_last_frames_keeps_exactly_the_complete_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut ends = Vec::new();
    {
        let db = Database::open(dir.path(), opts()).unwrap();
        db.create_collection("c", schema()).unwrap();
        ends.push(std::fs::metadata(segment(dir.path())).unwrap().len());
        for i in 0..4 {
            let mut b = db.begin_write();
            b.upsert("c", rec(i)).unwrap();
            b.commit().unwrap();
            ends.push(std::fs::metadata(segment(dir.path())).unwrap().len());
        }
    }
    let full = std::fs::read(segment(dir.path())).unwrap();
    let start = ends[1] as usize; // every byte of the last three commits
    for cut in start..=full.len() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let seg = segment(copy.path());
        std::fs::write(&seg, &full[..cut]).unwrap();
        // Closed, the log recorded what it had synced: a cut into it is damage, an error.
        let closed = Database::open(copy.path(), opts());
        if cut < full.len() {
            let err = closed.err().unwrap_or_else(|| panic!("cut at {cut}: opened"));
            assert!(err.to_string().contains("acknowledged bytes were cut off"), "cut at {cut}: {err}");
        } else {
            drop(closed.unwrap());
        }
        // A crash writes no such record: the cut is a torn append.
        std::fs::remove_file(copy.path().join("log/SYNCED")).unwrap();
        let db = Database::open(copy.path(), opts()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let complete = ends.iter().filter(|&&e| e as usize <= cut).count() - 1;
        let want: Vec<String> = (0..complete).map(|i| format!("C-{i:04}")).collect();
        assert_eq!(ids(&db), want, "cut at byte {cut}");
        // Writing after recovery works and survives another reopen.
        let mut b = db.begin_write();
        b.upsert("c", rec(99)).unwrap();
        b.commit().unwrap();
        drop(db);
        let db = Database::open(copy.path(), opts()).unwrap();
        assert_eq!(ids(&db).len(), complete + 1, "cut at byte {cut}, after rewrite");
    }
}

#[test]
fn a_flipped_byte_in_an_earlier_frame_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut ends = Vec::new();
    {
        let db = Database::open(dir.path(), opts()).unwrap();
        db.create_collection("c", schema()).unwrap();
        for i in 0..3 {
            ends.push(std::fs::metadata(segment(dir.path())).unwrap().len());
            let mut b = db.begin_write();
            b.upsert("c", rec(i)).unwrap();
            b.commit().unwrap();
        }
    }
    let full = std::fs::read(segment(dir.path())).unwrap();
    // Flip every byte of the first record's frame (followed by acknowledged frames).
    for at in ends[0] as usize..ends[1] as usize {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let mut bad = full.clone();
        bad[at] ^= 0x40;
        std::fs::write(segment(copy.path()), &bad).unwrap();
        match Database::open(copy.path(), opts()) {
            Err(Error::Corrupt { file, offset, .. }) => {
                assert!(file.ends_with(segment(copy.path()).file_name().unwrap()), "{file:?}");
                assert_eq!(offset, ends[0], "flip at {at}");
            }
            Err(other) => panic!("flip at {at}: expected Corrupt, got {other}"),
            Ok(_) => panic!("flip at {at}: opened a damaged log"),
        }
    }
}

#[test]
fn a_second_writer_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Database::open(dir.path(), opts()).unwrap();
    let err = Database::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"));
}

#[test]
fn no_plaintext_pii_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path(), opts()).unwrap();
        db.create_collection("c", schema()).unwrap();
        let mut b = db.begin_write();
        for i in 0..200 {
            b.upsert("c", rec(i)).unwrap();
        }
        b.commit().unwrap();
        let mut b = db.begin_write();
        b.upsert("c", rec(5).pii("address", "17 Secret Garden Lane")).unwrap();
        b.commit().unwrap();
    }
    let needles: Vec<String> = (0..200)
        .flat_map(|i| [format!("Number{i:04}"), format!("+3361234{i:04}")])
        .chain(["Secret Garden".to_owned()])
        .collect();
    for file in all_files(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for n in &needles {
            assert!(memchr::memmem::find(&bytes, n.as_bytes()).is_none(), "{n:?} in plaintext in {file:?}");
        }
    }
}

#[test]
fn keys_missing_or_wrong_fail_pii_but_not_locations() {
    let dir = closed_db_with_one_record();
    let db = Database::open(dir.path(), Options::new()).unwrap();
    {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        assert_eq!(c.nearest(LatLon::new(45.0, 5.0).unwrap(), 1, &Filter::All).unwrap()[0].id, "C-0001");
        assert!(matches!(c.reveal("C-0001"), Err(Error::MissingKey)));
        let view = c.get("C-0001").unwrap().unwrap();
        assert!(!format!("{view:?}").contains("Person"));
    }
    let mut b = db.begin_write();
    assert!(matches!(b.upsert("c", rec(2)), Err(Error::MissingKey)));
    b.upsert("c", Record::new("no-pii", LatLon::new(1.0, 1.0).unwrap())).unwrap();
    b.commit().unwrap();
    drop(db);
    let wrong = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32])));
    assert!(matches!(wrong, Err(Error::WrongKey)), "{wrong:?}");
}

#[test]
fn bad_records_are_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), opts()).unwrap();
    db.create_collection("c", schema()).unwrap();
    let p = LatLon::new(1.0, 1.0).unwrap();
    let mut b = db.begin_write();
    let cases = [
        Record::new("", p),
        Record::new("x".repeat(300), p),
        Record::new("bad\nid", p),
        Record::new("a", p).number("nope", 1.0),
        Record::new("a", p).number("ltv", f64::NAN),
        Record::new("a", p).number("ltv", f64::INFINITY),
        Record::new("a", p).number("tier", 1.0),
        Record::new("a", p).category("ltv", "x"),
        Record::new("a", p).pii("ltv", "x"),
        Record::new("a", p).number("ltv", 1.0).number("ltv", 2.0),
    ];
    for (i, r) in cases.into_iter().enumerate() {
        let err = b.upsert("c", r).unwrap_err();
        assert!(matches!(err, Error::InvalidRecord { .. }), "case {i}: {err}");
    }
    // A value of the wrong kind says what was given and what the field holds, by the
    // setters' names (it said "this field is a Category field").
    let err = b.upsert("c", Record::new("a", p).number("tier", 1.0)).unwrap_err().to_string();
    assert!(
        err.contains(
            "a number (Record::number) was given, but the field holds a category (Record::category)"
        ),
        "{err}"
    );
    let err = b.upsert("c", Record::new("a", p).pii("ltv", "x")).unwrap_err().to_string();
    assert!(
        err.contains("PII (Record::pii) was given, but the field holds a number (Record::number)"),
        "{err}"
    );
    assert!(matches!(b.upsert("nope", Record::new("a", p)), Err(Error::UnknownCollection { .. })));
    assert!(b.is_empty());
    b.commit().unwrap();
    assert!(matches!(db.create_collection("c", schema()), Err(Error::CollectionExists { .. })));
    assert!(matches!(db.create_collection("bad name", schema()), Err(Error::InvalidSchema { .. })));
    assert!(matches!(
        db.create_collection("d", Schema::new().number("x").category("x")),
        Err(Error::InvalidSchema { .. })
    ));
    for (lat, lon) in [(f64::NAN, 0.0), (0.0, f64::INFINITY), (90.5, 0.0), (0.0, -180.5)] {
        assert!(matches!(LatLon::new(lat, lon), Err(Error::InvalidCoordinate { .. })));
    }
    assert_eq!(db.read().collection("c").unwrap().len(), 0);
}

/// Two batches creating the same collection, with a record each, committed in one
/// group-commit round (the leader waits 400 ms; the second arrives 100 ms in): exactly one
/// lands, the other gets `CollectionExists`, and the database reopens with the winner's
/// record. Before the round checked its earlier batches, both returned Ok, the second
/// replaced the first's collection in memory, and the log no longer opened ("created twice").
#[test]
fn two_batches_creating_one_collection_in_one_round_let_exactly_one_win() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::new().durability(geocrm::Durability::GroupCommit { max_wait: Duration::from_millis(400) })
    };
    let db = Database::open(dir.path(), options()).unwrap();
    // (A batch arriving after the first round committed gets `CollectionExists` already
    // here: the same answer.)
    let create = |id: &str| {
        let mut b = db.begin_write();
        b.create_collection("c", schema())?;
        b.upsert("c", Record::new(id, LatLon::new(1.0, 2.0).unwrap())).unwrap();
        b.commit()
    };
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| create("a"));
        std::thread::sleep(Duration::from_millis(100));
        let second = create("b");
        (first.join().unwrap(), second)
    });
    assert!(first.is_ok() != second.is_ok(), "exactly one must land: {first:?} / {second:?}");
    let loser = if first.is_ok() { &second } else { &first };
    assert!(matches!(loser, Err(Error::CollectionExists { .. })), "{loser:?}");
    let winner = if first.is_ok() { "a" } else { "b" };
    let ids = |db: &Database| -> Vec<String> {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        c.within_radius(LatLon::new(1.0, 2.0).unwrap(), 10.0, &Filter::All)
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect()
    };
    assert_eq!(ids(&db), [winner]);
    drop(db);
    let db = Database::open(dir.path(), options()).unwrap();
    assert_eq!(ids(&db), [winner], "after reopening");
}

#[test]
fn concurrent_committers_all_land_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), opts()).unwrap();
    db.create_collection("c", schema()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..50 {
                    let mut b = db.begin_write();
                    b.upsert("c", rec(t * 1000 + i)).unwrap();
                    b.commit().unwrap();
                }
            });
        }
        let db = db.clone();
        s.spawn(move || {
            for _ in 0..200 {
                let snap = db.read();
                let n = snap.collection("c").unwrap().len();
                assert!(n <= 200);
            }
        });
    });
    drop(db);
    let db = Database::open(dir.path(), opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().len(), 200);
}

#[test]
fn oversized_values_are_refused_so_every_commit_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), opts()).unwrap();
    db.create_collection("c", schema()).unwrap();
    let p = LatLon::new(1.0, 1.0).unwrap();
    let mut b = db.begin_write();
    let big_cat = Record::new("a", p).category("tier", "x".repeat(4097));
    assert!(matches!(b.upsert("c", big_cat), Err(Error::InvalidRecord { .. })));
    let big_pii = Record::new("a", p).pii("name", "x".repeat(65_537));
    assert!(matches!(b.upsert("c", big_pii), Err(Error::InvalidRecord { .. })));
    // The largest accepted record commits and reopens (phone and e-mail are validated, so
    // their largest values are 16 and 254 bytes: a 64-byte local part, 63-byte labels).
    let mut r = Record::new("max", p).category("tier", "t".repeat(4096));
    for f in ["name", "address"] {
        r = r.pii(f, "p".repeat(65_536));
    }
    r = r.pii("phone", "+123456789012345").pii(
        "email",
        format!("{}@{}.{}.{}.org", "e".repeat(64), "d".repeat(63), "m".repeat(63), "n".repeat(57)),
    );
    b.upsert("c", r).unwrap();
    b.commit().unwrap();
    drop(db);
    let db = Database::open(dir.path(), opts()).unwrap();
    assert_eq!(db.read().collection("c").unwrap().reveal("max").unwrap()["address"].expose().len(), 65_536);
}

#[test]
fn a_deleted_keystore_is_reported_not_silently_recreated() {
    let dir = closed_db_with_one_record();
    std::fs::remove_file(dir.path().join("keystore")).unwrap();
    let err = Database::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(&err, Error::Corrupt { file, .. } if file.ends_with("keystore")), "{err}");
    assert!(!dir.path().join("keystore").exists(), "no new keystore was created");
}

/// `upsert_many` (on every core above a few thousand records) accepts and rejects exactly
/// what `upsert` one by one does, in order, and the committed state is the same.
#[test]
fn upsert_many_matches_upsert_one_by_one() {
    let schema =
        || Schema::new().number("ltv").category("tier").pii_of_kind("phone", geocrm::model::PiiKind::Phone);
    let records = || {
        (0..9_000usize)
            .map(|i| {
                let r = Record::new(format!("R{i}"), LatLon::new(10.0, (i % 360) as f64 - 179.5).unwrap());
                match i % 997 {
                    0 => r.number("ltv", f64::NAN),                     // not finite
                    1 => r.number("visits", 1.0),                       // no such field
                    2 => r.pii("phone", "not a phone"),                 // fails validation
                    3 => r.category("tier", "a").category("tier", "b"), // set twice
                    _ => r.number("ltv", i as f64).category("tier", if i % 3 == 0 { "gold" } else { "tin" }),
                }
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = Database::open(a.path(), opts()).unwrap();
    let many = Database::open(b.path(), opts()).unwrap();
    one.create_collection("c", schema()).unwrap();
    many.create_collection("c", schema()).unwrap();
    let mut expected = Vec::new();
    let mut batch = one.begin_write();
    for (i, r) in records().into_iter().enumerate() {
        if let Err(e) = batch.upsert("c", r) {
            expected.push((i, e.to_string()));
        }
    }
    batch.commit().unwrap();
    let mut batch = many.begin_write();
    let rejected = batch.upsert_many("c", records()).unwrap();
    batch.commit().unwrap();
    let rejected: Vec<(usize, String)> = rejected.into_iter().map(|(i, e)| (i, e.to_string())).collect();
    assert_eq!(rejected, expected);
    assert_eq!(expected.len(), 4 * 10, "every kind of bad record is there");
    let ids = |db: &Database| {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let mut hits: Vec<(String, i64)> = c
            .within_radius(LatLon::new(10.0, 0.0).unwrap(), 3e7, &Filter::All)
            .unwrap()
            .into_iter()
            .map(|h| (h.id, (h.location.lon() * 1e6) as i64))
            .collect();
        hits.sort();
        hits
    };
    assert_eq!(ids(&one), ids(&many));
    assert!(matches!(many.begin_write().upsert_many("nope", vec![]), Err(Error::UnknownCollection { .. })));
}

/// Replay bulk-loads the in-memory tree; for some sizes rstar's bulk load is uneven and the
/// next insert used to panic inside rstar ("This is a bug in rstar", seen in the bench's
/// group-commit ingest). Reopen with such sizes in the log, then write and query.
#[test]
fn writes_after_replaying_any_number_of_rows_work() {
    for n in [49u32, 400, 3_100] {
        let dir = tempfile::tempdir().unwrap();
        let options = || Options::new().checkpoint_after_ops(None);
        let point =
            |i: u32| LatLon::new(f64::from(i % 160) - 80.0, f64::from((i * 13) % 350) - 175.0).unwrap();
        {
            let db = Database::open(dir.path(), options()).unwrap();
            db.create_collection("c", Schema::new()).unwrap();
            let mut batch = db.begin_write();
            for i in 0..n {
                batch.upsert("c", Record::new(format!("r{i}"), point(i))).unwrap();
            }
            batch.commit().unwrap();
        }
        let db = Database::open(dir.path(), options()).unwrap();
        // One batch below the bulk threshold: each row is inserted into the replayed tree.
        let mut batch = db.begin_write();
        for i in n..n + 2_000 {
            batch.upsert("c", Record::new(format!("r{i}"), point(i))).unwrap();
        }
        batch.commit().unwrap();
        let read = db.read();
        let c = read.collection("c").unwrap();
        assert_eq!(c.len(), n as usize + 2_000);
        let near = c.nearest(point(n + 3), 1, &Filter::All).unwrap();
        assert_eq!(near[0].distance_m, 0.0, "{n} rows");
    }
}

mod panicking_commit {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    use geocrm::io::{DirLock, FileSystem, MappedBytes, MemFs, ReadableFile, WritableFile};
    use geocrm::{Database, Error, LatLon, Options, Record, Result, Schema};

    /// `MemFs` whose file syncs panic (after a pause, so other committers queue up) while
    /// `panic` is set: a stand-in for a bug inside a commit round.
    #[derive(Debug, Clone, Default)]
    struct PanickyFs {
        fs: MemFs,
        panic: Arc<AtomicBool>,
    }

    #[derive(Debug)]
    struct PanickyFile {
        inner: Box<dyn WritableFile>,
        panic: Arc<AtomicBool>,
    }

    impl WritableFile for PanickyFile {
        fn write_all(&mut self, buf: &[u8]) -> Result<()> {
            self.inner.write_all(buf)
        }
        fn sync(&mut self) -> Result<()> {
            if self.panic.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(300));
                panic!("injected panic in a commit round");
            }
            self.inner.sync()
        }
        fn len(&self) -> u64 {
            self.inner.len()
        }
    }

    impl FileSystem for PanickyFs {
        fn create_dir_all(&self, path: &Path) -> Result<()> {
            self.fs.create_dir_all(path)
        }
        fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
            self.fs.list_dir(path)
        }
        fn exists(&self, path: &Path) -> Result<bool> {
            self.fs.exists(path)
        }
        fn create_new(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
            Ok(Box::new(PanickyFile { inner: self.fs.create_new(path)?, panic: self.panic.clone() }))
        }
        fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
            Ok(Box::new(PanickyFile { inner: self.fs.open_append(path)?, panic: self.panic.clone() }))
        }
        fn open_read(&self, path: &Path) -> Result<Box<dyn ReadableFile>> {
            self.fs.open_read(path)
        }
        fn read(&self, path: &Path) -> Result<Vec<u8>> {
            self.fs.read(path)
        }
        fn map(&self, path: &Path) -> Result<MappedBytes> {
            self.fs.map(path)
        }
        fn truncate(&self, path: &Path, len: u64) -> Result<()> {
            self.fs.truncate(path, len)
        }
        fn rename(&self, from: &Path, to: &Path) -> Result<()> {
            self.fs.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> Result<()> {
            self.fs.remove_file(path)
        }
        fn remove_dir(&self, path: &Path) -> Result<()> {
            self.fs.remove_dir(path)
        }
        fn sync_dir(&self, path: &Path) -> Result<()> {
            self.fs.sync_dir(path)
        }
        fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>> {
            self.fs.lock_dir(dir)
        }
    }

    /// A panic inside a commit round (a bug) reaches the committer that led the round;
    /// the committers waiting on that round get `Poisoned` instead of waiting forever, later
    /// commits are refused, and the database reopens with what was acknowledged.
    #[test]
    fn a_panic_in_a_commit_round_poisons_instead_of_hanging_the_waiters() {
        let fs = PanickyFs::default();
        let open = |fs: &PanickyFs| {
            Database::open(Path::new("/db"), Options::new().file_system(Arc::new(fs.clone()))).unwrap()
        };
        let db = open(&fs);
        db.create_collection("c", Schema::new()).unwrap();
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new("before", LatLon::new(1.0, 2.0).unwrap())).unwrap();
        batch.commit().unwrap();
        fs.panic.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..4 {
            let (db, tx) = (db.clone(), tx.clone());
            threads.push(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(60 * i));
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut batch = db.begin_write();
                    batch.upsert("c", Record::new(format!("t{i}"), LatLon::new(3.0, 4.0).unwrap())).unwrap();
                    batch.commit()
                }));
                let _ = tx.send(result.map(|r| r.map(|_| ())));
            }));
        }
        let (mut panicked, mut poisoned) = (0, 0);
        for _ in 0..4 {
            match rx.recv_timeout(Duration::from_secs(30)).expect("a committer is still waiting after 30 s") {
                Err(_) => panicked += 1,
                Ok(Err(Error::Poisoned { .. })) => poisoned += 1,
                Ok(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((panicked, poisoned), (1, 3));
        for t in threads {
            t.join().unwrap();
        }
        fs.panic.store(false, Ordering::SeqCst);
        let mut batch = db.begin_write();
        batch.upsert("c", Record::new("after", LatLon::new(1.0, 2.0).unwrap())).unwrap();
        assert!(matches!(batch.commit(), Err(Error::Poisoned { .. })));
        drop(db);
        let db = open(&fs);
        assert!(db.read().collection("c").unwrap().get("before").unwrap().is_some());
    }
}

/// A commit's receipt counts the upserts that replaced a live record: in the memory table,
/// in a checkpoint, twice in one batch; not a new id, not one deleted before.
#[test]
fn commit_receipts_count_replaced_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), opts().checkpoint_after_ops(None)).unwrap();
    db.create_collection("c", schema()).unwrap();
    fn commit(db: &Database, upserts: &[usize], deletes: &[usize]) -> u64 {
        let mut b = db.begin_write();
        for &i in upserts {
            b.upsert("c", rec(i)).unwrap();
        }
        for &i in deletes {
            b.delete("c", &format!("C-{i:04}")).unwrap();
        }
        b.commit().unwrap().replaced
    }
    assert_eq!(commit(&db, &[1, 2, 3], &[]), 0, "new ids");
    assert_eq!(commit(&db, &[1, 4], &[]), 1, "one in the memory table");
    assert_eq!(commit(&db, &[5, 5, 5], &[]), 2, "the same id three times in one batch");
    db.checkpoint().unwrap();
    assert_eq!(commit(&db, &[1, 2, 6], &[3]), 2, "two in the checkpoint");
    assert_eq!(commit(&db, &[1, 3], &[]), 1, "one replaced since the checkpoint, one deleted");
    assert_eq!(commit(&db, &[], &[4]), 0, "deletes replace nothing");
    assert_eq!(db.begin_write().commit().unwrap().replaced, 0, "an empty batch");
    drop(db);
    let db = Database::open(dir.path(), opts().checkpoint_after_ops(None)).unwrap();
    assert_eq!(ids(&db), ["C-0001", "C-0002", "C-0003", "C-0005", "C-0006"]);
    // Batches large enough to be applied in bulk (the tree rebuilt once), over rows in the
    // checkpoint and in the memory table.
    let many: Vec<usize> = (1..=5000).collect();
    assert_eq!(commit(&db, &many, &[]), 5, "C-0001..3, 5 and 6 were there");
    db.checkpoint().unwrap();
    assert_eq!(commit(&db, &many[..2500], &[]), 2500, "all in the checkpoint");
    assert_eq!(commit(&db, &many, &[]), 5000, "half in the memory table, half in the checkpoint");
}

#[test]
fn a_new_database_nothing_was_committed_to_can_be_discarded_and_no_other() {
    let parent = tempfile::tempdir().unwrap();
    let with_key = || Options::new().key(RawKey::new([9; 32]));
    // Created with its directory: all of it goes, and the path can be created anew.
    let dir = parent.path().join("new");
    let db = Database::open(&dir, with_key()).unwrap();
    assert!(dir.join("keystore").exists() && dir.join("LOCK").exists());
    assert!(db.discard_if_new_and_empty().unwrap());
    assert!(!dir.exists(), "the directory the open created is removed");
    // And the missing ancestors it made for it, not the one that was there.
    let nested = parent.path().join("a").join("b").join("db");
    let db = Database::open(&nested, with_key()).unwrap();
    assert!(db.discard_if_new_and_empty().unwrap());
    assert!(!parent.path().join("a").exists(), "the ancestors the open made are removed");
    assert!(parent.path().exists());
    let db = Database::open(&dir, with_key()).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    // Written to: only closed, and it opens again with what was committed.
    assert!(!db.discard_if_new_and_empty().unwrap());
    let db = Database::open(&dir, Options::new().create_if_missing(false)).unwrap();
    assert!(db.read().collection("c").is_ok());
    // Not created by this open: only closed.
    assert!(!db.discard_if_new_and_empty().unwrap());
    assert!(dir.join("MANIFEST").exists());

    // In a directory that existed: the database's files go, the directory stays, and so does
    // anything in it that is not the database's.
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let db = Database::open(&empty, with_key()).unwrap();
    assert!(db.discard_if_new_and_empty().unwrap());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    let db = Database::open(&empty, with_key()).unwrap();
    std::fs::write(empty.join("notes.txt"), "mine").unwrap();
    assert!(db.discard_if_new_and_empty().unwrap());
    let left: Vec<_> = std::fs::read_dir(&empty).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["notes.txt"]);

    // Another handle open: only this one is closed, the database stays usable.
    let other = parent.path().join("other");
    let db = Database::open(&other, Options::new()).unwrap();
    let clone = db.clone();
    assert!(!db.discard_if_new_and_empty().unwrap());
    clone.create_collection("c", Schema::new()).unwrap();
    drop(clone);
    assert!(Database::open(&other, Options::new()).unwrap().read().collection("c").is_ok());
}

#[test]
fn discarding_on_a_memory_file_system_removes_every_file() {
    let fs = geocrm::io::MemFs::new();
    let options = || Options::new().key(RawKey::new([9; 32])).file_system(std::sync::Arc::new(fs.clone()));
    let db = Database::open("/db", options()).unwrap();
    assert!(!fs.list_files().is_empty());
    assert!(db.discard_if_new_and_empty().unwrap());
    assert_eq!(fs.list_files(), Vec::<PathBuf>::new());
    assert!(!geocrm::io::FileSystem::exists(&fs, Path::new("/db")).unwrap());
}

/// Opens `dir` (creating it if `create`) on another thread, waiting for the lock that `a`,
/// the database's creator, holds; `a` discards the database meanwhile.
fn open_while_discarded(dir: &Path, a: Database, create: bool) -> geocrm::Result<Database> {
    let waiting = {
        let dir = dir.to_owned();
        std::thread::spawn(move || {
            let options =
                Options::new().create_if_missing(create).lock_wait(std::time::Duration::from_secs(20));
            Database::open(&dir, options)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(a.discard_if_new_and_empty().unwrap());
    waiting.join().unwrap()
}

#[test]
fn an_open_that_waited_for_a_discarded_database_refuses_and_leaves_nothing() {
    // B waits for the lock of a database that exists when it looks; A, its creator, discards
    // it meanwhile: B then finds no database (it must not create one, it was asked not to)
    // and leaves no lock file of its own in the directory.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let a = Database::open(&dir, Options::new()).unwrap();
    let err = open_while_discarded(&dir, a, false).map(drop).unwrap_err();
    assert!(err.to_string().contains("not a geocrm database"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_open_arriving_in_the_middle_of_a_discard_waits_for_it() {
    // A discards its new database: the MANIFEST goes first, the log after it. B, asked to
    // open (not create) the database then, found a log with no MANIFEST and failed at once
    // with "not a geocrm database"; `geocrm import` therefore reported a database being
    // discarded as corrupt, instead of creating it. B now waits for A's lock, and answers
    // once A is done.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("db");
    let a = Database::open(&dir, Options::new()).unwrap();
    std::fs::remove_file(dir.join("MANIFEST")).unwrap(); // A's first step
    let waiting = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let options =
                Options::new().create_if_missing(false).lock_wait(std::time::Duration::from_secs(20));
            Database::open(&dir, options).map(drop)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!waiting.is_finished(), "B answered while A was discarding: {:?}", waiting.join().unwrap());
    assert!(a.discard_if_new_and_empty().unwrap());
    let err = waiting.join().unwrap().unwrap_err().to_string();
    assert!(err.contains("no such directory") || err.contains("not a geocrm database"), "{err}");
    assert!(std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()), "files were left behind");
    // A directory without a MANIFEST whose lock file stays is refused after the lock wait,
    // left as it was: the empty lock file a crash left, or another program's lock file that
    // program holds (an open took it and removed it; found by a reviewing helper).
    std::fs::create_dir_all(dir.join("log")).unwrap();
    std::fs::write(dir.join("LOCK"), b"").unwrap();
    let foreign = std::fs::File::open(dir.join("LOCK")).unwrap();
    for held in [false, true] {
        if held {
            foreign.try_lock().unwrap();
        }
        let options = Options::new().create_if_missing(false).lock_wait(std::time::Duration::from_millis(50));
        let err = Database::open(&dir, options).map(drop).unwrap_err();
        // (An empty `log/` is no evidence of a database: a user's own directory.)
        assert!(err.to_string().contains("not a geocrm database"), "{err}");
        assert!(dir.join("log").exists() && dir.join("LOCK").exists(), "held: {held}");
    }
}

#[test]
fn an_open_that_waited_while_the_directory_went_creates_it_again_or_finds_none() {
    // A creates the database and its directory; B waits for the lock; A discards both. B,
    // asked to create a database, makes the directory again and opens a new one; asked not
    // to, it finds no directory (it used to fail with "open lock file: No such file").
    for create in [true, false] {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("db");
        let a = Database::open(&dir, Options::new()).unwrap();
        let opened = open_while_discarded(&dir, a, create);
        if create {
            let db = opened.unwrap();
            assert!(dir.join("MANIFEST").exists());
            db.create_collection("after", Schema::new()).unwrap();
            drop(db);
            let db = Database::open(&dir, Options::new().create_if_missing(false)).unwrap();
            assert!(db.read().collection("after").is_ok());
        } else {
            // (Or, if it made its lock file between A's removal of the lock file and of
            // the directory, it finds no database in a directory it then leaves empty.)
            let err = opened.map(drop).unwrap_err().to_string();
            assert!(err.contains("no such directory") || err.contains("not a geocrm database"), "{err}");
            let empty = std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none());
            assert!(empty, "files were left behind");
        }
    }
}

#[test]
fn an_open_that_creates_a_database_and_then_fails_leaves_none_behind() {
    // The key file is read only after the MANIFEST and the log exist.
    let parent = tempfile::tempdir().unwrap();
    let missing_key = || Options::new().key(geocrm::crypto::KeyFile::new(parent.path().join("no.key")));
    let dir = parent.path().join("new");
    let err = Database::open(&dir, missing_key()).map(drop).unwrap_err();
    assert!(err.to_string().contains("no.key"), "{err}");
    assert!(!dir.exists(), "the directory the open created is gone");
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Database::open(&empty, missing_key()).map(drop).unwrap_err();
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    // An existing database is left as it was.
    Database::open(&empty, Options::new()).unwrap().create_collection("c", Schema::new()).unwrap();
    let before = std::fs::read_dir(&empty).unwrap().count();
    Database::open(&empty, missing_key()).map(drop).unwrap_err();
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), before);
    assert!(Database::open(&empty, Options::new()).unwrap().read().collection("c").is_ok());
}

#[test]
fn discarding_leaves_the_users_files_and_closing_discards_nothing() {
    let parent = tempfile::tempdir().unwrap();
    // A new database, closed without being discarded, stays (even with nothing in it).
    let dir = parent.path().join("kept");
    drop(Database::open(&dir, Options::new().key(RawKey::new([9; 32]))).unwrap());
    assert!(dir.join("MANIFEST").exists() && dir.join("keystore").exists());
    Database::open(&dir, Options::new().create_if_missing(false)).unwrap();
    // The user's files named like the database's (the lock file, the index directory) stay.
    let mine = parent.path().join("mine");
    std::fs::create_dir_all(mine.join("index")).unwrap();
    std::fs::write(mine.join("index/notes.txt"), "mine").unwrap();
    std::fs::write(mine.join("LOCK"), "do not delete").unwrap();
    let db = Database::open(&mine, Options::new()).unwrap();
    assert!(db.discard_if_new_and_empty().unwrap());
    assert_eq!(std::fs::read_to_string(mine.join("index/notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_to_string(mine.join("LOCK")).unwrap(), "do not delete");
    assert!(!mine.join("MANIFEST").exists() && !mine.join("log").exists());
}

#[test]
fn a_database_is_not_created_over_another_ones_keystore_or_checkpoints() {
    let parent = tempfile::tempdir().unwrap();
    for (what, file) in [("a keystore", "keystore"), ("checkpoint files", "index/0000000000000007-0000.ckpt")]
    {
        let dir = parent.path().join(file.replace('/', "-"));
        std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
        std::fs::write(dir.join(file), "another database's").unwrap();
        let err = Database::open(&dir, Options::new()).map(drop).unwrap_err();
        assert!(err.to_string().contains(&format!("{what} exist")), "{err}");
        assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), "another database's");
        assert!(!dir.join("MANIFEST").exists());
    }
    // An empty lock file left behind (a crash) is the database's: a failing open that
    // creates the database removes it with the rest.
    let dir = parent.path().join("leftover");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("LOCK"), "").unwrap();
    let missing_key = Options::new().key(geocrm::crypto::KeyFile::new(parent.path().join("no.key")));
    Database::open(&dir, missing_key).map(drop).unwrap_err();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_creating_open_that_fails_at_any_create_rename_or_sync_leaves_no_file() {
    use geocrm::io::{FaultPlan, MemFs, OpKind};
    let mut failed = 0;
    for kind in [OpKind::Rename, OpKind::Sync, OpKind::SyncDir, OpKind::Create] {
        for n in 0..8 {
            let fs = MemFs::new();
            fs.set_faults(FaultPlan::new().fail_once(kind, n));
            let options =
                Options::new().key(RawKey::new([9; 32])).file_system(std::sync::Arc::new(fs.clone()));
            match Database::open("/db", options) {
                Ok(db) => assert!(db.discard_if_new_and_empty().unwrap(), "{kind:?} {n}"),
                Err(_) => failed += 1,
            }
            // Temporary files of the failed write included.
            assert_eq!(fs.list_files(), Vec::<PathBuf>::new(), "{kind:?} {n}");
        }
    }
    assert!(failed >= 6, "only {failed} opens failed");
}

/// A symbolic link in place of a database file is refused, not followed: the segment here
/// links to a file outside the database, which an open would otherwise append to.
#[test]
fn a_symbolic_link_in_place_of_a_database_file_is_refused() {
    let dir = closed_db_with_one_record();
    let elsewhere = tempfile::tempdir().unwrap();
    let seg = segment(dir.path());
    let outside = elsewhere.path().join("outside.seg");
    std::fs::rename(&seg, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &seg).unwrap();
    let before = std::fs::read(&outside).unwrap();
    let err = Database::open(dir.path(), opts()).unwrap_err().to_string();
    assert!(err.contains("symbolic link") && err.contains(&seg.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&outside).unwrap(), before, "the file linked to is untouched");

    // The same for a checkpoint file: set aside, and the state rebuilt from the log.
    std::fs::remove_file(&seg).unwrap();
    std::fs::rename(&outside, &seg).unwrap();
    let db = Database::open(dir.path(), opts()).unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let ckpt = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .unwrap();
    let linked = elsewhere.path().join("outside.ckpt");
    std::fs::rename(&ckpt, &linked).unwrap();
    std::os::unix::fs::symlink(&linked, &ckpt).unwrap();
    let db = Database::open(dir.path(), opts()).unwrap();
    let why = db.checkpoint_rejected().unwrap_or_default().to_owned();
    assert!(why.contains("symbolic link"), "{why}");
    assert_eq!(ids(&db), ["C-0001"]);
}

/// A log that lost its segments — all of them, its directory, or the first ones with no
/// checkpoint to start after them — is corruption, not a database with fewer records: it
/// used to open empty (a new segment 1 was made), or from the first segment left.
#[test]
fn a_log_that_lost_its_segments_is_corrupt_not_empty() {
    let dir = closed_db_with_one_record();
    let copy = tempfile::tempdir().unwrap();
    let db = copy.path().join("db");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&db);
        copy_dir(dir.path(), &db);
    };
    let segments = |db: &Path| -> Vec<PathBuf> {
        let mut s: Vec<PathBuf> = super::cli::all_files(&db.join("log"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        s.sort();
        s
    };
    let refuses = |what: &str, expect: &str| {
        for options in [opts(), Options::new().read_only(true)] {
            let err = Database::open(&db, options).unwrap_err().to_string();
            assert!(err.contains(expect) && err.contains("000000000001.seg"), "{what}: {err}");
        }
    };

    fresh();
    for s in segments(&db) {
        std::fs::remove_file(s).unwrap();
    }
    refuses("no segment", "no segment at all");
    assert!(segments(&db).is_empty(), "a segment was created");

    fresh();
    std::fs::remove_dir_all(db.join("log")).unwrap();
    refuses("no log directory", "log directory is missing");
    assert!(!db.join("log").exists(), "the log directory was created again");

    // Segment 1 lost while later ones remain (no checkpoint: replay starts at segment 1).
    fresh();
    {
        let d = Database::open(&db, opts().segment_bytes(4096)).unwrap();
        for n in 0..5 {
            let mut b = d.begin_write();
            for i in 0..20 {
                b.upsert("c", rec(2 + n * 20 + i)).unwrap();
            }
            b.commit().unwrap();
        }
    }
    assert!(segments(&db).len() > 2);
    std::fs::remove_file(&segments(&db)[0]).unwrap();
    // Named as the log's first segment (its floor), not the replay start of a checkpoint.
    refuses("segment 1 lost", "the log's first segment is missing (the log floor the MANIFEST records; the oldest segment there is 2)");
}

/// A damaged MANIFEST frame is said in words (it read `(BadChecksum)`; from a hands-on review).
#[test]
fn a_damaged_manifest_frame_is_described_in_words() {
    let dir = closed_db_with_one_record();
    let path = dir.path().join("MANIFEST");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = Database::open(dir.path(), opts()).unwrap_err().to_string();
    assert!(err.contains("manifest frame is damaged: its checksum does not match its bytes"), "{err}");
    assert!(!err.contains("BadChecksum"), "{err}");
}

/// A commit of a long run of upserts (their rows built on every core, and for a collection
/// the batch creates, built aside while the batch is written) leaves what the same records
/// committed in short batches leave: each id's latest record read back from the log with
/// its PII, the category groups, the nearest records; into a new collection, then into one
/// with a checkpoint, and again after a reopen.
#[test]
fn long_runs_of_upserts_leave_what_short_batches_leave() {
    use geocrm::query::{GroupBy, Scope};
    // `n` records over `n / 2` ids (each id about twice), from near the poles and around
    // the antimeridian, some without PII or a tier.
    let records = |seed: usize, n: usize| -> Vec<Record> {
        (0..n)
            .map(|i| {
                let id = (i * 7_919 + seed) % (n / 2);
                let lat = ((i * 37 + seed) % 17_900) as f64 / 100.0 - 89.5;
                let off = ((i * 11 + seed) % 800) as f64 / 1_000.0;
                let lon = if i % 2 == 0 { 179.99 - off } else { off - 179.99 };
                let r = Record::new(format!("C-{id:05}"), LatLon::new(lat, lon).unwrap())
                    .number("ltv", (i + seed) as f64);
                let r = if i % 5 == 0 {
                    r
                } else {
                    r.category("tier", ["gold", "silver", "tin"][(i + seed) % 3])
                };
                if i % 3 == 0 {
                    r
                } else {
                    r.pii("name", format!("Person {seed}-{i}"))
                }
            })
            .collect()
    };
    let answers = |db: &Database| -> Vec<String> {
        let snap = db.read();
        let c = snap.collection("c").unwrap();
        let mut out = vec![format!("{} rows", c.len())];
        for id in 0..25_000 {
            let id = format!("C-{id:05}");
            let Some(view) = c.get(&id).unwrap() else { continue };
            // Revealing writes an audit entry: a sample.
            let sealed: Vec<&String> = view.pii.keys().collect();
            let name = (view.lsn % 41 == 0)
                .then(|| c.reveal(&id).unwrap().get("name").map(|n| n.expose().to_owned()));
            out.push(format!(
                "{id} {:?} {:?} {:?} {sealed:?} {name:?}",
                view.location, view.numbers, view.categories
            ));
        }
        let tiers =
            c.aggregate(Scope::All, &GroupBy::Category("tier".into()), &["ltv"], &Filter::All).unwrap();
        out.push(format!("{tiers:?}"));
        for (lat, lon) in [(89.0, 179.9), (-89.0, -179.9), (0.0, 180.0)] {
            out.push(format!("{:?}", c.nearest(LatLon::new(lat, lon).unwrap(), 10, &Filter::All).unwrap()));
        }
        out
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let long = Database::open(a.path(), opts()).unwrap();
    let short = Database::open(b.path(), opts()).unwrap();
    let mut batch = long.begin_write();
    batch.create_collection("c", schema()).unwrap();
    assert!(batch.upsert_many("c", records(0, 40_000)).unwrap().is_empty());
    let receipt = batch.commit().unwrap();
    assert_eq!(receipt.replaced, 20_000, "each id is written twice");
    short.create_collection("c", schema()).unwrap();
    let mut replaced = 0;
    for chunk in records(0, 40_000).chunks(1_000) {
        let mut batch = short.begin_write();
        assert!(batch.upsert_many("c", chunk.to_vec()).unwrap().is_empty());
        replaced += batch.commit().unwrap().replaced;
    }
    assert_eq!(replaced, 20_000);
    let first = answers(&long);
    assert_eq!(first, answers(&short));
    assert_eq!(first.len(), 20_000 + 5);

    // Into a collection with a checkpoint, some of whose records are deleted first (their
    // checkpoint rows hidden: writing them again replaces nothing): a third of these ids
    // are new.
    for db in [&long, &short] {
        db.checkpoint().unwrap();
        let mut batch = db.begin_write();
        for id in (0..20_000).step_by(97) {
            batch.delete("c", &format!("C-{id:05}")).unwrap();
        }
        batch.commit().unwrap();
    }
    let mut batch = long.begin_write();
    assert!(batch.upsert_many("c", records(3, 30_000)).unwrap().is_empty());
    let replaced_long = batch.commit().unwrap().replaced;
    let mut replaced_short = 0;
    for chunk in records(3, 30_000).chunks(1_000) {
        let mut batch = short.begin_write();
        assert!(batch.upsert_many("c", chunk.to_vec()).unwrap().is_empty());
        replaced_short += batch.commit().unwrap().replaced;
    }
    assert_eq!(replaced_long, replaced_short);
    let second = answers(&long);
    assert_eq!(second, answers(&short));
    assert_ne!(second, first);
    drop(long);
    let long = Database::open(a.path(), opts()).unwrap();
    assert_eq!(answers(&long), second, "after a reopen");
}

/// `ids` lists every live record once, sorted, whether in memory, in the checkpoint, or
/// hidden there by a later write or delete — against a model, over random writes with
/// checkpoints and a compaction between them, and after a reopen.
#[test]
fn ids_lists_the_live_records_sorted() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::new().checkpoint_after_ops(None)).unwrap();
    db.create_collection("c", Schema::new()).unwrap();
    assert!(db.read().collection("c").unwrap().ids().unwrap().is_empty(), "an empty collection");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(41);
    let mut model = std::collections::BTreeSet::new();
    for round in 0..12 {
        let mut b = db.begin_write();
        for _ in 0..50 {
            let id = format!("id-{:03}", rng.gen_range(0..300));
            if rng.gen_bool(0.3) {
                b.delete("c", &id).unwrap();
                model.remove(&id);
            } else {
                b.upsert("c", Record::new(id.clone(), LatLon::new(rng.gen_range(-80.0..80.0), 1.0).unwrap()))
                    .unwrap();
                model.insert(id);
            }
        }
        b.commit().unwrap();
        match round % 4 {
            1 => drop(db.checkpoint().unwrap()),
            3 => drop(db.compact().unwrap()),
            _ => {}
        }
        let got = db
            .read()
            .collection("c")
            .unwrap()
            .ids()
            .unwrap()
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(got, model.iter().cloned().collect::<Vec<_>>(), "round {round}");
    }
    drop(db);
    let db = Database::open(dir.path(), Options::new()).unwrap();
    let got =
        db.read().collection("c").unwrap().ids().unwrap().into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(got, model.into_iter().collect::<Vec<_>>(), "after a reopen");
}
