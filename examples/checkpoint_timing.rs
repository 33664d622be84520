//! Times checkpoints and queries served from them:
//! `cargo run --release --example checkpoint_timing -- [N] [uniform|clustered]`.
//!
//! Bulk-loads N customers (no PII), checkpoints, reopens (timing the open and the first
//! query), then reports medians of nearest-10, a 50 km bbox count, a radius, an H3 res-5
//! count + sum over everything, and the same nearest-10 on `rstar` over unit vectors.
use std::time::{Duration, Instant};

use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::BoundingBox;
use geocrm::query::{GroupBy, Scope};
use geocrm::{Database, Durability, Filter, LatLon, Options};
use rand::{Rng, SeedableRng};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut(usize) -> T) -> Duration {
    median(
        (0..runs)
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(f(i));
                t.elapsed()
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dist = match std::env::args().nth(2).as_deref() {
        Some("uniform") => Distribution::Uniform,
        _ => Distribution::Clustered,
    };
    let people = customers(n, 42, dist);
    let dir = tempfile::tempdir()?;
    // KEEP_DIR=path keeps the database there (for `reopen_probe`).
    let keep = std::env::var("KEEP_DIR").ok();
    let dir = match &keep {
        Some(path) => tempfile::TempDir::new_in({
            std::fs::create_dir_all(path)?;
            path
        })?,
        None => dir,
    };
    let options = || Options::new().durability(Durability::NoSyncBulkLoad).checkpoint_after_ops(None);
    let db = Database::open(dir.path(), options())?;
    db.create_collection("customers", Customer::schema())?;
    let t = Instant::now();
    let mut batch = db.begin_write();
    for c in &people {
        batch.upsert("customers", c.to_record(false))?;
    }
    batch.commit()?;
    db.sync()?;
    println!("{n} {dist:?} records loaded in {:.2?}", t.elapsed());
    let t = Instant::now();
    let report = db.checkpoint()?;
    println!(
        "checkpoint: {:.2?}, {} bytes ({:.1} bytes/record)",
        t.elapsed(),
        report.bytes,
        report.bytes as f64 / n as f64
    );
    // Commits while a checkpoint is built: rewrite a tenth of the records, start a checkpoint
    // on another thread and commit one record at a time on this one until it is done (no
    // fsync per commit, so the figures are the waits for the checkpoint's locks).
    let mut batch = db.begin_write();
    for c in people.iter().take(n / 10) {
        batch.upsert("customers", c.to_record(false))?;
    }
    batch.commit()?;
    let building = {
        let db = db.clone();
        std::thread::spawn(move || db.checkpoint())
    };
    let mut waits = Vec::new();
    while !building.is_finished() {
        let t = Instant::now();
        let mut b = db.begin_write();
        b.upsert("customers", people[waits.len() % n].to_record(false))?;
        b.commit()?;
        waits.push(t.elapsed());
    }
    let second = building.join().map_err(|_| "checkpoint thread panicked")??;
    waits.sort();
    println!(
        "{} one-record commits during a {:.0} ms checkpoint: median {:.2?}, max {:.2?}",
        waits.len(),
        second.elapsed_ms,
        waits.get(waits.len() / 2).copied().unwrap_or_default(),
        waits.last().copied().unwrap_or_default()
    );
    // Fold those commits into a checkpoint too, so the reopen below replays nothing.
    db.checkpoint()?;
    drop(db);
    let t = Instant::now();
    let db = Database::open(dir.path(), options())?;
    let opened = t.elapsed();
    let first = db.read().collection("customers")?.nearest(LatLon::new(48.85, 2.35)?, 10, &Filter::All)?;
    println!("reopen {opened:.2?}; reopen + first nearest-10 {:.2?} ({} hits)", t.elapsed(), first.len());

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let points: Vec<LatLon> = (0..2000)
        .map(|i| {
            let c = &people[rng.gen_range(0..n)].location;
            if i % 2 == 0 {
                *c
            } else {
                LatLon::new(rng.gen_range(-60.0..70.0), rng.gen_range(-180.0..180.0)).unwrap()
            }
        })
        .collect();
    let snap = db.read();
    let c = snap.collection("customers")?;
    if std::env::var_os("HOT").is_some() {
        // For profilers: nearest-10 only, for a while.
        let t = Instant::now();
        for _ in 0..200 {
            for p in &points {
                std::hint::black_box(c.nearest(*p, 10, &Filter::All).unwrap());
            }
        }
        println!("mean nearest-10 through the database {:.2?}", t.elapsed() / (200 * points.len() as u32));
        let file = std::fs::read_dir(dir.path().join("index"))?.next().ok_or("no checkpoint file")??.path();
        let bytes: geocrm::io::MappedBytes = std::sync::Arc::new(std::fs::read(&file)?);
        let ckpt = geocrm::index::checkpoint::Checkpoint::open(
            bytes,
            &file,
            geocrm::index::checkpoint::Verify::Checksums,
        )?;
        let tree = ckpt.tree();
        let t = Instant::now();
        for _ in 0..200 {
            for p in &points {
                std::hint::black_box(tree.nearest(*p, 10, &mut |_| true));
            }
        }
        println!(
            "mean nearest-10 on the checkpoint's tree alone {:.2?}",
            t.elapsed() / (200 * points.len() as u32)
        );
        return Ok(());
    }
    let near = time(points.len(), |i| c.nearest(points[i], 10, &Filter::All).unwrap());
    let gold = Filter::parse("tier = 'gold'")?;
    let near_f = time(points.len(), |i| c.nearest(points[i], 10, &gold).unwrap());
    let bbox = time(points.len(), |i| {
        let b = BoundingBox::around(points[i], 25_000.0).unwrap();
        c.count(Scope::BBox(&b), &Filter::All).unwrap()
    });
    let radius = time(points.len(), |i| {
        c.count(Scope::Radius { center: points[i], metres: 2_000.0 }, &Filter::All).unwrap()
    });
    let h3 =
        time(7, |_| c.aggregate(Scope::All, &GroupBy::H3(5), &["lifetime_value"], &Filter::All).unwrap());
    let count_all = time(7, |_| c.count(Scope::All, &Filter::All).unwrap());
    println!("nearest-10 {near:.2?}, filtered nearest-10 {near_f:.2?}, bbox 50 km count {bbox:.2?}, radius 2 km count {radius:.2?}");
    println!("H3 res-5 count+sum {h3:.2?}; count all {count_all:.2?}");

    let tree =
        rstar::RTree::bulk_load(people.iter().map(|p| p.location.to_unit_vector()).collect::<Vec<_>>());
    let rnear =
        time(points.len(), |i| tree.nearest_neighbor_iter(&points[i].to_unit_vector()).take(10).count());
    println!(
        "rstar unit-vector nearest-10 {rnear:.2?} (geocrm is {:.2}x)",
        rnear.as_secs_f64() / near.as_secs_f64()
    );
    drop(snap);
    drop(db);
    if keep.is_some() {
        println!("kept {}", dir.keep().display());
    }
    Ok(())
}
