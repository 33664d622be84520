//! Operations on files and keys: durable ingest (fsync per commit, and group commit from
//! several threads), checkpoint build, reopen + first query, and PII seal/open per field.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use geocrm::crypto::{open, seal, DataKey, FieldContext};
use geocrm::dataset::Customer;
use geocrm::geo::BoundingBox;
use geocrm::query::Scope;
use geocrm::{Database, Durability, Error, Filter, Options, Result};

use super::measure::{time_each, Budget, Stats};
use super::Data;

/// Records per commit in the ingest measurements.
pub const BATCH: usize = 10;

/// Builds a checkpoint of every live record. A checkpoint keeps the files of collections
/// nothing changed, so each call first commits `touch` (a customer as it is already stored)
/// to `customers`: every call then rewrites its file, as a checkpoint after fresh writes
/// does, and answers stay as they were.
pub fn checkpoint(db: &Database, touch: &geocrm::Record) -> Result<()> {
    let mut batch = db.begin_write();
    batch.upsert("customers", touch.clone())?;
    batch.commit()?;
    db.checkpoint().map(|_| ())
}

fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))
}

/// Commits batches of [`BATCH`] records from `threads` threads until `budget.time` has
/// passed (at least `budget.min_reps` commits in all); returns microseconds per record
/// (elapsed time over records committed), with `reps` the number of commits.
pub fn ingest(data: &Data, durability: Durability, threads: usize, budget: Budget) -> Result<Stats> {
    let dir = temp_dir("geocrm-bench-ingest-")?;
    let db = Database::open(dir.path(), Options::new().durability(durability))?;
    db.create_collection("customers", Customer::schema())?;
    let next = AtomicUsize::new(0);
    let commits = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + budget.time;
    let people = &data.people;
    let worker = || -> Result<()> {
        loop {
            let done = commits.load(Ordering::Relaxed);
            if (done >= budget.min_reps && Instant::now() >= deadline) || done >= budget.max_reps {
                return Ok(());
            }
            let mut batch = db.begin_write();
            for _ in 0..BATCH {
                let j = next.fetch_add(1, Ordering::Relaxed) % people.len().max(1);
                if let Some(c) = people.get(j) {
                    batch.upsert("customers", c.to_record(false))?;
                }
            }
            batch.commit()?;
            commits.fetch_add(1, Ordering::Relaxed);
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(worker)).collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| Err(Error::invalid_argument("bench", "an ingest thread panicked")))
        })
    })?;
    let elapsed = started.elapsed();
    let n = commits.load(Ordering::Relaxed);
    let us_per_record = elapsed.as_secs_f64() * 1e6 / (n * BATCH).max(1) as f64;
    Ok(Stats { reps: n, ..Stats::of(vec![us_per_record]) })
}

/// Times [`checkpoint`] on the loaded database.
pub fn checkpoint_build(db: &Database, touch: &geocrm::Record, reps: usize) -> Result<Stats> {
    let mut samples = Vec::new();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        checkpoint(db, touch)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Stats::of(samples))
}

/// Opens the database at `dir` (replaying its log) and counts `bbox`, `reps` times; returns
/// the timings and the count.
pub fn reopen_first_query(dir: &std::path::Path, bbox: &BoundingBox, reps: usize) -> Result<(Stats, u64)> {
    let mut samples = Vec::new();
    let mut count = 0;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let db = Database::open(dir, Options::new().create_if_missing(false))?;
        count = db.read().collection("customers")?.count(Scope::BBox(bbox), &Filter::All)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        drop(db);
    }
    Ok((Stats::of(samples), count))
}

/// Seals one field (a customer's e-mail) under a data key, and opens it; both per field.
pub fn pii(data: &Data, budget: Budget) -> Result<(Stats, Stats)> {
    let dk = DataKey::generate();
    let n = data.people.len().clamp(1, 4096);
    let ctx = |i: usize| FieldContext {
        db_id: [7; 16],
        collection: "customers",
        record_id: data.people.get(i % n).map_or("C-0", |c| c.id.as_str()),
        field: "email",
        key_id: 1,
    };
    let email = |i: usize| data.people.get(i % n).map_or("", |c| c.email.as_str());
    let sealed: Vec<_> = (0..n).map(|i| seal(&dk, &ctx(i), email(i))).collect();
    for (i, s) in sealed.iter().enumerate() {
        if open(&dk, &ctx(i), s)?.expose() != email(i) {
            return Err(Error::invalid_argument("bench", "PII did not round-trip"));
        }
    }
    let seal_stats = time_each(budget, &mut |i| seal(&dk, &ctx(i), email(i)));
    let open_stats = time_each(budget, &mut |i| open(&dk, &ctx(i), &sealed[i % n]).map(|p| p.expose().len()));
    Ok((seal_stats, open_stats))
}

/// The per-cell time budget of the ingest runs.
pub fn ingest_budget(quick: bool) -> Budget {
    if quick {
        Budget { time: Duration::from_millis(150), min_reps: 5, max_reps: 2_000 }
    } else {
        Budget { time: Duration::from_secs(3), min_reps: 50, max_reps: 100_000 }
    }
}
