//! Times `geocrm import` of the same N synthetic customers from CSV with and without four
//! PII columns (name, phone, e-mail, address): issue 4's import-overhead figure.
//!
//! `cargo run --release --example csv_import_timing -- [N] [ROUNDS]` (default 1,000,000
//! records, 3 rounds; each round imports both files into fresh databases with the default
//! options — one transaction per file, as `geocrm import` does (`BATCH=N` commits every N
//! records), automatic checkpoints — and prints the
//! medians and their ratio). `ONLY=pii` or `ONLY=plain` runs one side, for profiling.
//! `CSV_DIR=DIR` keeps the generated CSV files in DIR and reuses them.
//! Allocates with mimalloc like the `geocrm` tool; `--no-default-features` uses the system
//! allocator.
use std::time::{Duration, Instant};

/// The allocator of the `geocrm` tool; `--no-default-features` measures the system one.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use geocrm::crypto::RawKey;
use geocrm::dataset::{customers, Distribution};
use geocrm::import::{import_csv, ImportOptions};
use geocrm::{Database, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir()?;
    // `CSV_DIR=DIR` keeps the generated files there and reuses them on the next run (so a
    // profiler sees only the imports).
    let csv_dir = std::env::var_os("CSV_DIR").map_or_else(|| tmp.path().to_owned(), Into::into);
    let (plain, pii) = (csv_dir.join(format!("plain-{n}.csv")), csv_dir.join(format!("pii-{n}.csv")));
    if !(plain.exists() && pii.exists()) {
        let mut a = csv::Writer::from_path(&plain)?;
        let mut b = csv::Writer::from_path(&pii)?;
        a.write_record(["id", "lat", "lon", "lifetime_value", "visits", "tier", "segment"])?;
        b.write_record([
            "id",
            "lat",
            "lon",
            "lifetime_value",
            "visits",
            "tier",
            "segment",
            "name",
            "phone",
            "email",
            "address",
        ])?;
        for c in customers(n, 42, Distribution::Clustered) {
            let (lat, lon) = (c.location.lat().to_string(), c.location.lon().to_string());
            let (ltv, visits) = (c.lifetime_value.to_string(), c.visits.to_string());
            let base = [c.id.as_str(), &lat, &lon, &ltv, &visits, c.tier, c.segment];
            a.write_record(base)?;
            b.write_record(base.iter().copied().chain([c.name.as_str(), &c.phone, &c.email, &c.address]))?;
        }
        a.flush()?;
        b.flush()?;
    }
    let options = |with_pii: bool| {
        ImportOptions::new()
            .pii(if with_pii { vec!["name".into(), "address".into()] } else { Vec::new() })
            .phones(if with_pii { vec!["phone".into()] } else { Vec::new() })
            .emails(if with_pii { vec!["email".into()] } else { Vec::new() })
            .batch_size(std::env::var("BATCH").ok().and_then(|b| b.parse().ok()))
    };
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let only = std::env::var("ONLY").ok(); // "pii" or "plain", for profiling one side
        for (i, (file, with_pii)) in [(&plain, false), (&pii, true)].into_iter().enumerate() {
            if only.as_deref().is_some_and(|o| (o == "pii") != with_pii) {
                continue;
            }
            let dir = tempfile::tempdir()?;
            let t = Instant::now();
            let db = Database::open(dir.path(), Options::new().key(RawKey::new([1; 32])).audit(false))?;
            let report =
                import_csv(&db, "customers", std::fs::File::open(file)?, &options(with_pii), &mut |_| {})?;
            drop(db);
            let took = t.elapsed();
            println!("round {round}: {} records, pii={with_pii}: {took:.2?}", report.imported);
            times[i].push(took);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    if times.iter().any(Vec::is_empty) {
        return Ok(());
    }
    let (a, b) = (median(&mut times[0]), median(&mut times[1]));
    println!(
        "median over {rounds} rounds ({} allocator): without PII {a:.2?}, with 4 PII fields {b:.2?}: {:.2}x",
        if cfg!(feature = "mimalloc") { "mimalloc" } else { "system" },
        b.as_secs_f64() / a.as_secs_f64()
    );
    Ok(())
}
