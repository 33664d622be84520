//! Golden files: a small database written by this format version is committed under
//! `tests/golden/db-ckpt-v2/` (MANIFEST v2, log segments v2, checkpoint files v2, keystore
//! v1, audit log v1) with the answers it gave in `tests/golden/db-ckpt-v2.expected.json`. Opening a
//! copy must give exactly those answers, byte for byte, forever: a format change that breaks
//! old databases fails here and must be deliberate (a new version, a reader for the old one,
//! a new golden directory — FORMAT.md §10).
//!
//! The previous generation, `tests/golden/db-v2/`, has checkpoint files v1 (no cell order,
//! 14-byte log pointers). A checkpoint is a cache of the log: this build refuses the old
//! file, names it and its version, and rebuilds the same state from the log — the answers
//! it gave, byte for byte (`tests/golden/db-v2.expected.json`; it was written in another order,
//! before erasures wrote checkpoints, so its LSNs differ from the new one's).
//!
//! The database has two collections; `customers` holds a checkpoint plus a log tail after it
//! (upserts replacing checkpoint rows, deletes, an erasure), so both the mapped files and
//! replay are exercised. Regenerate (only with a format version bump) with
//! `GEOCRM_WRITE_GOLDEN=1 cargo test --test it golden`.

use std::path::{Path, PathBuf};

use geocrm::crypto::RawKey;
use geocrm::geo::{parse_geojson, BoundingBox, PreparedRegion};
use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
use serde_json::{json, Value};

const KEY: [u8; 32] = [7; 32];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn options() -> Options {
    Options::new().key(RawKey::new(KEY)).checkpoint_after_ops(None).audit(false)
}

fn customer(i: u32) -> Record {
    customer_with_ltv(i, f64::from(i * 17 % 1000) + 0.25)
}

fn customer_with_ltv(i: u32, ltv: f64) -> Record {
    let lat = -60.0 + f64::from((i * 37) % 120) + f64::from(i % 7) * 0.013;
    let lon = -179.5 + f64::from((i * 53) % 359) + f64::from(i % 5) * 0.021;
    let mut r = Record::new(format!("C-{i:03}"), LatLon::new(lat, lon).expect("valid"))
        .number("ltv", ltv)
        .category("tier", ["bronze", "silver", "gold"][(i % 3) as usize]);
    if !i.is_multiple_of(4) {
        r = r.pii("name", format!("Name {i}")).pii("phone", format!("+3361234{i:04}"));
    }
    r
}

fn write_golden(dir: &Path) {
    let db = Database::open(dir, options()).unwrap();
    db.create_collection("customers", Schema::crm().number("ltv").category("tier")).unwrap();
    db.create_collection("stores", Schema::new().number("sales")).unwrap();
    let mut b = db.begin_write();
    for i in 0..40 {
        b.upsert("customers", customer(i)).unwrap();
    }
    for i in 0..6u32 {
        let p = LatLon::new(48.0 + f64::from(i), 2.0 + f64::from(i)).unwrap();
        b.upsert("stores", Record::new(format!("S-{i}"), p).number("sales", f64::from(i) * 100.0)).unwrap();
    }
    b.commit().unwrap();
    db.checkpoint().unwrap();
    let mut b = db.begin_write();
    for i in 40..50 {
        b.upsert("customers", customer(i)).unwrap();
    }
    b.delete("customers", "C-007").unwrap();
    b.commit().unwrap();
    // An erasure of a record in the checkpoint writes a new checkpoint; the log tail after
    // it replaces and deletes rows of that checkpoint.
    db.erase("customers", "C-010").unwrap();
    let mut b = db.begin_write();
    for i in [3u32, 5] {
        b.upsert("customers", customer_with_ltv(i, 9999.0)).unwrap();
    }
    b.delete("customers", "C-041").unwrap();
    b.commit().unwrap();
}

fn answers(db: &Database) -> Value {
    let snap = db.read();
    let c = snap.collection("customers").unwrap();
    let s = snap.collection("stores").unwrap();
    let near = |at: (f64, f64), k: usize, f: &str| -> Value {
        let hits = c.nearest(LatLon::new(at.0, at.1).unwrap(), k, &Filter::parse(f).unwrap()).unwrap();
        hits.iter().map(|h| json!([h.id, format!("{:.6}", h.distance_m)])).collect()
    };
    let ids = |v: Vec<geocrm::db::Hit>| -> Value { v.into_iter().map(|h| h.id).collect() };
    let region = PreparedRegion::new(
        &parse_geojson(
            r#"{"type":"MultiPolygon","coordinates":[[[[-40,-20],[40,-20],[40,40],[-40,40],[-40,-20]],
                [[-10,0],[10,0],[10,10],[-10,10],[-10,0]]],[[[170,-50],[180,-50],[180,-30],[170,-30],[170,-50]]]]}"#,
        )
        .unwrap(),
    );
    let groups = |g: geocrm::query::Groups| -> Value {
        g.iter()
            .map(|g| {
                json!([g.key, g.count, g.fields.iter().map(|f| format!("{:.4}", f.sum)).collect::<Vec<_>>()])
            })
            .collect()
    };
    let get = |id: &str| -> Value {
        match c.get(id).unwrap() {
            None => Value::Null,
            Some(v) => json!({
                "lat": v.location.lat(), "lon": v.location.lon(), "lsn": v.lsn,
                "numbers": v.numbers, "categories": v.categories,
                "pii": v.pii.keys().collect::<Vec<_>>(),
            }),
        }
    };
    let reveal = |id: &str| -> Value {
        match c.reveal(id) {
            Ok(p) => p.iter().map(|(k, v)| (k.clone(), Value::from(v.expose()))).collect(),
            Err(e) => Value::from(format!("error: {e}")),
        }
    };
    let bbox = BoundingBox::new(-30.0, 170.0, 30.0, -150.0).unwrap();
    json!({
        "customers": c.len(),
        "stores": s.len(),
        "nearest": [near((0.0, 0.0), 5, ""), near((45.0, 179.9), 7, "tier = 'gold'"), near((-60.0, -179.0), 3, "ltv > 500")],
        "radius": c.within_radius(LatLon::new(10.0, 20.0).unwrap(), 3_000_000.0, &Filter::All).unwrap()
            .iter().map(|h| json!([h.id, format!("{:.6}", h.distance_m)])).collect::<Vec<_>>(),
        "bbox_antimeridian": ids(c.within_bbox(&bbox, &Filter::All).unwrap()),
        "region": ids(c.within_region(&region, &Filter::All).unwrap()),
        "count_region": c.count(Scope::Region(&region), &Filter::parse("tier in ('gold', 'silver')").unwrap()).unwrap(),
        "agg_tier": groups(c.aggregate(Scope::All, &GroupBy::Category("tier".into()), &["ltv"], &Filter::All).unwrap()),
        "agg_h3_2": groups(c.aggregate(Scope::All, &GroupBy::H3(2), &["ltv"], &Filter::All).unwrap()),
        "stores_near": s.nearest(LatLon::new(50.0, 4.0).unwrap(), 2, &Filter::All).unwrap().iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        "get": [get("C-001"), get("C-003"), get("C-007"), get("C-010"), get("C-045")],
        "reveal": [reveal("C-001"), reveal("C-003"), reveal("C-045"), reveal("C-010")],
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn golden_answers(name: &str) -> (Database, String, tempfile::TempDir) {
    let expected = std::fs::read_to_string(golden_dir().join(format!("{name}.expected.json"))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&golden_dir().join(name), dir.path());
    let db = Database::open(dir.path(), options()).unwrap();
    assert!(db.recovery_report().transactions > 0, "the golden database has a log tail after its checkpoint");
    let got = serde_json::to_string_pretty(&answers(&db)).unwrap() + "\n";
    assert_eq!(got, expected, "the golden database {name}'s answers changed");
    (db, got, dir)
}

#[test]
fn the_golden_database_gives_the_same_answers() {
    if std::env::var_os("GEOCRM_WRITE_GOLDEN").is_some() {
        let golden = golden_dir().join("db-ckpt-v2");
        let _ = std::fs::remove_dir_all(&golden);
        write_golden(&golden);
        let _ = std::fs::remove_file(golden.join("LOCK"));
        let db = Database::open(&golden, options()).unwrap();
        let text = serde_json::to_string_pretty(&answers(&db)).unwrap();
        drop(db);
        let _ = std::fs::remove_file(golden.join("LOCK"));
        std::fs::write(golden_dir().join("db-ckpt-v2.expected.json"), text + "\n").unwrap();
    }
    let (db, _, _dir) = golden_answers("db-ckpt-v2");
    assert_eq!(db.checkpoint_rejected(), None);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn the_v1_checkpoint_golden_database_is_rebuilt_from_its_log_with_the_same_answers() {
    let (db, _, _dir) = golden_answers("db-v2");
    let rejected = db.checkpoint_rejected().expect("a version-1 checkpoint is not used");
    assert!(rejected.contains(".ckpt has format version 1; this build reads version 2"), "{rejected}");
    // The next checkpoint replaces it with a current one.
    db.checkpoint().unwrap();
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn a_version_2_manifest_learns_of_its_keystore_at_the_first_open() {
    // Version 2 did not record that the database has a keystore; the first open by this
    // build does (MANIFEST version 5), and from then on a missing keystore is refused.
    let (db, _, dir) = golden_answers("db-ckpt-v2");
    drop(db);
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    assert_eq!(manifest[8..10], [5, 0], "rewritten as version 5");
    std::fs::remove_file(dir.path().join("keystore")).unwrap();
    let err = Database::open(dir.path(), options()).map(|_| ()).unwrap_err();
    assert!(matches!(&err, geocrm::Error::Corrupt { file, .. } if file.ends_with("keystore")), "{err}");
    assert!(!dir.path().join("keystore").exists());
}
