//! `geocrm demo`: a synthetic CRM dataset, imported into a temporary database, queried
//! with every query type, with timings.

use std::time::{Duration, Instant};

use geocrm::crypto::RawKey;
use geocrm::dataset::{customers, Customer, Distribution};
use geocrm::geo::{BoundingBox, MultiPolygon, Polygon, PreparedRegion};
use geocrm::query::{GroupBy, GroupKey, Scope};
use geocrm::{Database, Error, Filter, LatLon, Options, Result};

fn time<T>(mut f: impl FnMut() -> Result<T>) -> Result<(T, Duration)> {
    // One warm-up run, then the median of a few timed runs.
    let mut value = f()?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        value = f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((value, times[times.len() / 2]))
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn section(title: &str) {
    println!("\n── {title} {}", "─".repeat(70usize.saturating_sub(title.len())));
}

fn p(lat: f64, lon: f64) -> Result<LatLon> {
    LatLon::new(lat, lon)
}

/// Runs the demo.
pub fn run(records: usize, seed: u64) -> Result<()> {
    if records == 0 || records > super::MAX_SYNTHETIC_RECORDS {
        let why = format!("the demo takes 1 to {} records, not {records}", super::MAX_SYNTHETIC_RECORDS);
        return Err(Error::invalid_argument("records", why));
    }
    println!(
        "geocrm demo: {records} synthetic customers around {} cities (seed {seed})",
        geocrm::dataset::CITIES.len()
    );
    let dir = tempfile::Builder::new()
        .prefix("geocrm-demo-")
        .tempdir()
        .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);

    section("generate and import");
    let t = Instant::now();
    let people = customers(records, seed, Distribution::Clustered);
    println!("generated {records} customers in {}", fmt(t.elapsed()));
    let options = || Options::new().key(RawKey::new(key)).checkpoint_after_ops(None);
    let db = Database::open(dir.path(), options())?;
    db.create_collection("customers", Customer::schema())?;
    let t = Instant::now();
    for chunk in people.chunks(50_000) {
        let mut batch = db.begin_write();
        for c in chunk {
            batch.upsert("customers", c.to_record(true))?;
        }
        batch.commit()?;
    }
    let took = t.elapsed();
    println!(
        "imported with 4 sealed PII fields each, fsynced: {} ({:.0} records/s)",
        fmt(took),
        records as f64 / took.as_secs_f64()
    );
    let t = Instant::now();
    let report = db.checkpoint()?;
    let d = t.elapsed();
    println!(
        "checkpoint (packed R-tree, H3 cells, columns; {:.1} MB, {:.0} bytes/record): {}",
        report.bytes as f64 / 1e6,
        report.bytes as f64 / records.max(1) as f64,
        fmt(d)
    );
    let snap = db.read();
    let c = snap.collection("customers")?;

    section("nearest");
    let paris = p(48.8566, 2.3522)?;
    let (hits, d) = time(|| c.nearest(paris, 10, &Filter::All))?;
    println!("10 nearest to Paris centre ({}; the first 3 shown):", fmt(d));
    for h in hits.iter().take(3) {
        println!("  {:<10} {:>8.0} m", h.id, h.distance_m);
    }
    let premium = Filter::parse("tier in ('gold', 'platinum') and lifetime_value >= 5000")?;
    let (hits, d) = time(|| c.nearest(p(35.6762, 139.6503)?, 5, &premium))?;
    println!("5 nearest premium customers (gold/platinum, value ≥ 5000) to Tokyo ({}):", fmt(d));
    for h in &hits {
        println!("  {:<10} {:>8.0} m", h.id, h.distance_m);
    }
    let (hits, d) = time(|| c.nearest(p(-18.0, -179.9)?, 3, &Filter::All))?;
    println!("3 nearest across the antimeridian from (-18.0, -179.9) ({}):", fmt(d));
    for h in &hits {
        println!("  {:<10} ({:.3}, {:.3}) {:>8.0} m", h.id, h.location.lat(), h.location.lon(), h.distance_m);
    }

    section("radius, bounding box, polygons");
    let (n, d) =
        time(|| c.count(Scope::Radius { center: p(51.5074, -0.1278)?, metres: 2_000.0 }, &Filter::All))?;
    println!("within 2 km of central London: {n} ({})", fmt(d));
    let idf = BoundingBox::new(48.1, 1.4, 49.25, 3.6)?;
    let (n, d) = time(|| c.count(Scope::BBox(&idf), &Filter::All))?;
    println!("in the Île-de-France bounding box: {n} ({})", fmt(d));
    let ring = |pts: &[(f64, f64)]| pts.iter().map(|&(lon, lat)| [lon, lat]).collect::<Vec<_>>();
    let greater_paris = Polygon::new(
        ring(&[(2.0, 48.6), (2.7, 48.6), (2.8, 48.95), (2.35, 49.1), (1.95, 48.95), (2.0, 48.6)]),
        vec![ring(&[(2.3, 48.84), (2.4, 48.84), (2.4, 48.88), (2.3, 48.88), (2.3, 48.84)])],
    )?;
    let lyon =
        Polygon::new(ring(&[(4.7, 45.65), (5.0, 45.65), (5.0, 45.85), (4.7, 45.85), (4.7, 45.65)]), vec![])?;
    let region = PreparedRegion::new(&MultiPolygon::new(vec![greater_paris, lyon])?);
    let (n, d) = time(|| c.count(Scope::Region(&region), &Filter::All))?;
    println!(
        "in a multipolygon (Greater Paris with its centre cut out as a hole, plus Lyon): {n} ({})",
        fmt(d)
    );

    section("aggregations");
    let (groups, d) = time(|| {
        c.aggregate(Scope::All, &GroupBy::Category("tier".into()), &["lifetime_value"], &Filter::All)
    })?;
    println!("lifetime value by tier over everything ({}):", fmt(d));
    for g in &groups {
        let key = match &g.key {
            GroupKey::Category(s) => s.clone(),
            other => format!("{other:?}"),
        };
        let s = g.fields.first().copied();
        println!(
            "  {key:<10} {:>8} customers  sum {:>14.2}  avg {:>9.2}",
            g.count,
            s.map_or(0.0, |s| s.sum),
            s.and_then(|s| s.avg()).unwrap_or(0.0)
        );
    }
    let (groups, d) = time(|| c.aggregate(Scope::All, &GroupBy::H3(5), &["lifetime_value"], &Filter::All))?;
    let mut groups: Vec<_> = groups.iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    println!("H3 resolution-5 heatmap: {} cells ({}); busiest:", groups.len(), fmt(d));
    for g in groups.iter().take(5) {
        if let GroupKey::Cell(cell) = g.key {
            let ll = h3o::LatLng::from(cell);
            println!("  {cell} ({:>7.3}, {:>8.3}) {:>7} customers", ll.lat(), ll.lng(), g.count);
        }
    }

    section("records and privacy");
    let id = hits_first_id(&c.nearest(paris, 1, &Filter::All)?);
    let view = c.get(&id)?.ok_or_else(|| Error::invalid_argument("id", "demo record vanished"))?;
    let stored = match view.pii.get("name") {
        Some(sealed) => format!("{sealed:?}"),
        None => "nothing".to_owned(),
    };
    println!(
        "get {id}: tier {}, lifetime value {}, name stored as {stored}",
        view.categories.get("tier").map_or("(none)", String::as_str),
        view.numbers.get("lifetime_value").map_or_else(|| "(none)".to_owned(), |v| format!("{v:.2}")),
    );
    let (pii, d) = time(|| c.reveal(&id))?;
    println!("reveal with the key ({}): name {}", fmt(d), pii.get("name").map_or("(none)", |v| v.expose()));
    drop(snap);
    let sample = &people[..people.len().min(25)];
    let leaks = scan_for_plaintext(dir.path(), sample)?;
    println!(
        "scanned every byte of the database directory for {} customers' phones, e-mails and addresses: {leaks} plaintext hits",
        sample.len()
    );
    section("reopen");
    drop(db);
    let t = Instant::now();
    let db = Database::open(dir.path(), Options::new().create_if_missing(false))?;
    let first = db.read().collection("customers")?.nearest(p(48.8566, 2.3522)?, 10, &Filter::All)?;
    println!(
        "reopened from the memory-mapped checkpoint, without the key, + first nearest-10 ({} hits): {}",
        first.len(),
        fmt(t.elapsed())
    );
    drop(db);
    let t = Instant::now();
    let db = Database::open(dir.path(), options())?;
    println!(
        "reopened with the key (checks it against the keystore's header; its {records} wrapped data keys are read at the first PII use): {}",
        fmt(t.elapsed())
    );
    drop(db);
    println!("\nThe temporary database is removed on exit. Try `geocrm --help` for the CLI.");
    Ok(())
}

fn hits_first_id(hits: &[geocrm::query::Neighbor]) -> String {
    hits.first().map(|h| h.id.clone()).unwrap_or_default()
}

fn scan_for_plaintext(dir: &std::path::Path, people: &[Customer]) -> Result<usize> {
    let mut bytes = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io("list", &d, e))? {
            let path = entry.map_err(|e| Error::io("list", &d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                bytes.extend(std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?);
            }
        }
    }
    let finder = |needle: &str| memchr::memmem::find(&bytes, needle.as_bytes()).is_some();
    Ok(people.iter().filter(|c| finder(&c.email) || finder(&c.phone) || finder(&c.address)).count())
}
