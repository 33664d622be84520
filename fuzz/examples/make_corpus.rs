//! Regenerates the seed inputs under `fuzz/seeds/<target>/` from the library itself, so the
//! binary seeds (log segments, keystores, database files) stay valid when formats change.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_corpus [TARGET...]
//! ```
//!
//! With targets named, only their seeds are rewritten.
//!
//! Seeds whose names start with `gen-` are rewritten; other files (regression inputs of
//! findings, hand-written seeds) are left alone. Keys, nonces and database ids are random,
//! so regenerated binary seeds differ byte for byte from the committed ones; they are
//! equally valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use geocrm::crypto::{KdfParams, Keystore, MasterKey, RawKey, KEYSTORE_FILE};
use geocrm::io::{FileSystem, MemFs};
use geocrm::log::{segment_path, Log, LogConfig, LOG_DIR, SEGMENT_HEADER_LEN};
use geocrm::{Database, LatLon, Options, Record, Schema};
use geocrm_fuzz::{db_dir, log_replay_input, DbFiles, DB_ID, MASTER};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target)
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) -> Res<()> {
    let dir = seeds_dir(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("gen-{name}")), bytes)?;
    Ok(())
}

fn read(fs: &MemFs, path: &Path) -> Res<Vec<u8>> {
    fs.read_all(path).ok_or_else(|| format!("{} is missing", path.display()).into())
}

fn log_seeds() -> Res<()> {
    let log_dir = db_dir().join(LOG_DIR);

    // One segment: a one-frame and a two-frame transaction.
    let fs = Arc::new(MemFs::new());
    let (mut log, _) = Log::open(fs.clone(), db_dir(), DB_ID, LogConfig::default(), &mut |_| Ok(()))?;
    log.append_txn(&[(b"put a", 1)])?;
    log.sync()?;
    log.append_txn(&[(b"put b", 2), (b"put c", 1)])?;
    log.sync()?;
    drop(log);
    let seg = read(&fs, &segment_path(&log_dir, 1))?;
    write_seed("log_replay", "one-segment", &log_replay_input(&[&seg]))?;
    let mut fixed = log_replay_input(&[&seg]);
    fixed[0] |= 8; // the target fixes checksums, so mutated frames reach the checks behind them
    write_seed("log_replay", "fix-crcs", &fixed)?;

    // The same with the last transaction torn off half way.
    let torn = &seg[..seg.len() - 7];
    write_seed("log_replay", "torn-tail", &log_replay_input(&[torn]))?;

    // An unsynced transaction after a synced one, then one more that records the first as
    // durable: damage to the middle one is then detectable.
    let fs = Arc::new(MemFs::new());
    let (mut log, _) = Log::open(fs.clone(), db_dir(), DB_ID, LogConfig::default(), &mut |_| Ok(()))?;
    log.append_txn(&[(b"one", 1)])?;
    log.sync()?;
    log.append_txn(&[(b"two", 1)])?;
    log.append_txn(&[(b"three", 3)])?;
    log.sync()?;
    log.append_txn(&[(b"four", 1)])?;
    log.sync()?;
    drop(log);
    let seg = read(&fs, &segment_path(&log_dir, 1))?;
    write_seed("log_replay", "durable-offsets", &log_replay_input(&[&seg]))?;

    // Two segments: a tiny segment size makes the log roll over.
    let fs = Arc::new(MemFs::new());
    let config = LogConfig::default().with_segment_bytes(64);
    let (mut log, _) = Log::open(fs.clone(), db_dir(), DB_ID, config, &mut |_| Ok(()))?;
    log.append_txn(&[(b"first segment", 1)])?;
    log.sync()?;
    log.append_txn(&[(b"second segment", 2)])?;
    log.sync()?;
    assert_eq!(log.current_segment(), 2);
    drop(log);
    let (s1, s2) = (read(&fs, &segment_path(&log_dir, 1))?, read(&fs, &segment_path(&log_dir, 2))?);
    write_seed("log_replay", "two-segments", &log_replay_input(&[&s1, &s2]))?;

    // A header alone (mode bit 0 adds it) and frames of a real database body, with the
    // header added by the target (the database's own id differs from DB_ID).
    write_seed("log_replay", "header-only", &[1, 0, 0, 1])?;
    let (_, db_segment) = database_files(false)?;
    let mut input = vec![1, 0, 0, 1];
    input.extend_from_slice(&db_segment[SEGMENT_HEADER_LEN..]);
    input[0] |= 8;
    write_seed("log_replay", "database-frames", &input)?;
    Ok(())
}

fn keystore_seeds() -> Res<()> {
    let master = MasterKey::from_bytes(MASTER);
    let kdf = KdfParams::argon2id([1; 16], 64, 1, 1)?;
    let path = db_dir().join(KEYSTORE_FILE);
    let new = || -> Res<(Arc<MemFs>, Keystore)> {
        let fs = Arc::new(MemFs::new());
        fs.create_dir_all(db_dir())?;
        let ks = Keystore::create(fs.clone(), db_dir(), DB_ID, &master, kdf)?;
        Ok((fs, ks))
    };

    let (fs, _) = new()?;
    write_seed("keystore_open", "header-only", &read(&fs, &path)?)?;

    let (fs, mut ks) = new()?;
    ks.add_keys(&[("customers", "C-1"), ("customers", "C-2")])?;
    ks.sync()?;
    ks.add_keys(&[("c", "a")])?;
    ks.sync()?;
    let two_frames = read(&fs, &path)?;
    write_seed("keystore_open", "two-frames", &two_frames)?;
    write_seed("keystore_open", "torn-tail", &two_frames[..two_frames.len() - 10])?;

    ks.remove_keys(&[("customers", "C-2")])?;
    write_seed("keystore_open", "after-erasure", &read(&fs, &path)?)?;
    Ok(())
}

/// A small database made with the library: returns (MemFs, segment 1 bytes).
fn database_files(with_key: bool) -> Res<(Arc<MemFs>, Vec<u8>)> {
    let fs = Arc::new(MemFs::new());
    let mut options = Options::new().file_system(fs.clone());
    if with_key {
        options = options.key(RawKey::new(MASTER));
    }
    let db = Database::open(db_dir(), options)?;
    let schema = if with_key { Schema::crm() } else { Schema::new() };
    db.create_collection("customers", schema.number("ltv").category("tier"))?;
    let mut batch = db.begin_write();
    for (i, (lat, lon)) in [(48.8566, 2.3522), (51.5074, -0.1278), (-33.86, 151.21)].into_iter().enumerate() {
        let mut r = Record::new(format!("C-{i}"), LatLon::new(lat, lon)?)
            .number("ltv", 100.0 * i as f64)
            .category("tier", ["gold", "silver"][i % 2]);
        if with_key {
            r = r.pii("name", format!("Customer {i}"));
        }
        batch.upsert("customers", r)?;
    }
    batch.commit()?;
    let mut batch = db.begin_write();
    batch.delete("customers", "C-1")?;
    batch.create_collection("leads", Schema::new().category("source"))?;
    batch.upsert("leads", Record::new("L-1", LatLon::new(0.0, 179.9)?).category("source", "web"))?;
    batch.commit()?;
    drop(db);
    let segment = read(&fs, &segment_path(&db_dir().join(LOG_DIR), 1))?;
    Ok((fs, segment))
}

fn database_seeds() -> Res<()> {
    for (with_key, name) in [(true, "with-key"), (false, "no-key")] {
        let (fs, segment) = database_files(with_key)?;
        let manifest = read(&fs, &db_dir().join("MANIFEST"))?;
        let keystore = if with_key { read(&fs, &db_dir().join(KEYSTORE_FILE))? } else { Vec::new() };
        // Bit 3: the target fixes checksums, so mutations reach the operation decoder.
        let flags = if with_key { 15 } else { 12 };
        let files = DbFiles { flags, manifest: &manifest, keystore: &keystore, segment: &segment };
        write_seed("database_open", name, &files.encode())?;
        if with_key {
            let manifest_only = DbFiles { flags: 1, manifest: &manifest, keystore: &[], segment: &[] };
            write_seed("database_open", "manifest-only", &manifest_only.encode())?;
        }
    }
    Ok(())
}

/// Checkpoint files of 3 and 60 rows, written by a database.
fn checkpoint_seeds() -> Res<()> {
    for rows in [3u32, 60] {
        let fs = Arc::new(MemFs::new());
        let db = Database::open(db_dir(), Options::new().file_system(fs.clone()))?;
        db.create_collection("customers", Schema::new().number("ltv").category("tier"))?;
        let mut batch = db.begin_write();
        for i in 0..rows {
            let p = LatLon::new(-60.0 + f64::from(i * 37 % 120), -179.0 + f64::from(i * 53 % 358))?;
            let r = Record::new(format!("C-{i}"), p)
                .number("ltv", f64::from(i) * 10.0)
                .category("tier", ["gold", "silver"][(i % 2) as usize]);
            batch.upsert("customers", r)?;
        }
        batch.commit()?;
        db.checkpoint()?;
        drop(db);
        let path = fs
            .list_files()
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "ckpt"))
            .ok_or("no checkpoint file")?;
        write_seed("checkpoint_open", &format!("{rows}-rows.ckpt"), &read(&fs, &path)?)?;
    }
    Ok(())
}

/// Standalone index files: packed R-trees and H3 cell indexes of 0, 3 and 60 points.
fn index_seeds() -> Res<()> {
    for rows in [0u32, 3, 60] {
        let points = (0..rows)
            .map(|i| LatLon::new(-60.0 + f64::from(i * 37 % 120), -179.0 + f64::from(i * 53 % 358)))
            .collect::<Result<Vec<_>, _>>()?;
        let tree = geocrm::index::packed::PackedRTree::try_build(&points)?;
        write_seed("index_open", &format!("{rows}-rows.rtree"), tree.as_bytes())?;
        let cells = geocrm::index::h3::H3Index::build(&points, h3o::Resolution::Nine)?;
        write_seed("index_open", &format!("{rows}-rows.h3"), cells.as_bytes())?;
    }
    Ok(())
}

fn text_seeds() -> Res<()> {
    let csv: &[(&str, u8, &str)] = &[
        (
            "basic",
            1,
            "id,lat,lon,name,tier,ltv\nC-1,48.85,2.35,Ada,gold,120.5\nC-2,45.76,4.83,Bob,silver,80\n",
        ),
        (
            "skip-invalid",
            9,
            "id,lat,lon,name,ltv\nC-1,95,2.35,Ada,1\nC-2,45.76,4.83,,x\n,1,1,Cy,2\nC-3,1,1,Di,3\n",
        ),
        ("quoted", 5, "id,lat,lon,tier\n\"C,1\",0,0,\"a \"\"b\"\"\"\nC-2,-90,180,\n"),
        ("batched-dup", 16 | 2, "id,lat,lon,ltv\nA,1,1,1\nB,2,2,2\nA,3,3,3\nC,4,4,1e308\n"),
        ("no-fields", 0, "lat,lon,id\n0,0,x\n"),
    ];
    for (name, mode, text) in csv {
        let mut input = vec![*mode];
        input.extend_from_slice(text.as_bytes());
        write_seed("csv_import", name, &input)?;
    }

    let geojson: &[(&str, &str)] = &[
        ("polygon", r#"{"type":"Polygon","coordinates":[[[0,0],[4,0],[4,4],[0,4],[0,0]]]}"#),
        (
            "hole",
            r#"{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}"#,
        ),
        (
            "feature-collection",
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":1},"geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,1]]]}},{"type":"Feature","properties":null,"geometry":{"type":"MultiPolygon","coordinates":[[[[170,-20],[180,-20],[180,-10],[170,-20]]],[[[-180,-20],[-170,-20],[-180,-10],[-180,-20]]]]}}]}"#,
        ),
        (
            "geometry-collection",
            r#"{"type":"GeometryCollection","geometries":[{"type":"Polygon","coordinates":[[[0,0,5],[1,0,5],[1,1,5],[0,0,5]]]},{"type":"GeometryCollection","geometries":[{"type":"Polygon","coordinates":[[[-1,-1],[-0.5,-1],[-0.5,-0.5],[-1,-1]]]}]}]}"#,
        ),
        ("point", r#"{"type":"Point","coordinates":[1,2]}"#),
        ("self-intersecting", r#"{"type":"Polygon","coordinates":[[[0,0],[2,2],[2,0],[0,2],[0,0]]]}"#),
    ];
    for (name, text) in geojson {
        write_seed("geojson", name, text.as_bytes())?;
    }

    let filters: &[(&str, &str)] = &[
        ("eq", "tier = 'gold'"),
        ("precedence", "tier = 'gold' or ltv >= 2 and not region in (north, \"x y\")"),
        ("between", "ltv between -1.5 and 2e3 and visits != 3"),
        ("nested", "((not (tier = gold)) or (region = 'O''Brien'))"),
        ("number-eq", "ltv in (1, 2.5, -0) and visits < 10 and visits > 1"),
        ("pii", "name = 'Ada'"),
        ("empty", "   "),
        ("missing", "tier is missing or not (ltv > 200 or region is not null)"),
        ("unknown-and", "not (tier = 'gold' and visits < 1) and not (ltv in (1, 2) or region = north)"),
    ];
    for (name, text) in filters {
        write_seed("filter", name, text.as_bytes())?;
    }
    Ok(())
}

fn main() -> Res<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let all: [(&[&str], fn() -> Res<()>); 6] = [
        (&["log_replay"], log_seeds),
        (&["index_open"], index_seeds),
        (&["keystore_open"], keystore_seeds),
        (&["database_open"], database_seeds),
        (&["checkpoint_open"], checkpoint_seeds),
        (&["csv_import", "geojson", "filter"], text_seeds),
    ];
    for (targets, make) in all {
        if wanted.is_empty() || targets.iter().any(|t| wanted.iter().any(|w| w == t)) {
            make()?;
        }
    }
    println!("seeds written under {}", seeds_dir("").display());
    Ok(())
}
