//! Times nearest-10 on an existing database: `nearest_probe DIR [uniform|clustered] [QUERIES]`
//! (query points drawn like the bench's: the dataset generator with another seed; `NPTS=n` cycles
//! through n of them instead of 1,024 — `NPTS=1` keeps everything in cache). `QUERY=bbox` times
//! the bench's 50 km bbox count around the same points instead, `QUERY=radius` its 2 km radius
//! count.
use std::time::Instant;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use geocrm::dataset::{customers, Distribution};
use geocrm::geo::BoundingBox;
use geocrm::query::Scope;
use geocrm::{Database, Filter, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("DIR")?;
    let dist = match args.next().as_deref() {
        Some("uniform") => Distribution::Uniform,
        _ => Distribution::Clustered,
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let np: usize = std::env::var("NPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let points: Vec<_> = customers(np, 1_000_045, dist).iter().map(|c| c.location).collect();
    let db = Database::open(&dir, Options::new().create_if_missing(false))?;
    let read = db.read();
    let c = read.collection("customers")?;
    let query = std::env::var("QUERY").unwrap_or_else(|_| "nearest".into());
    let boxes = points.iter().map(|&p| BoundingBox::around(p, 25_000.0)).collect::<Result<Vec<_>, _>>()?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let at = points[i % points.len()];
        let t = Instant::now();
        match query.as_str() {
            "bbox" => _ = std::hint::black_box(c.count(Scope::BBox(&boxes[i % boxes.len()]), &Filter::All)?),
            "radius" => {
                _ = std::hint::black_box(
                    c.count(Scope::Radius { center: at, metres: 2_000.0 }, &Filter::All)?,
                )
            }
            _ => _ = std::hint::black_box(c.nearest(at, 10, &Filter::All)?),
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let name = match query.as_str() {
        "bbox" => "bbox 50 km count",
        "radius" => "radius 2 km count",
        _ => "nearest-10",
    };
    println!("{name} median {:.2?} over {n}", samples[n / 2]);
    Ok(())
}
