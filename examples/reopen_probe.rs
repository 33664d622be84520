//! Opens an existing database N times and prints each open time: `reopen_probe DIR [N]`
//! (`NOCRC=1`: without checkpoint checksums).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("DIR")?;
    let n: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let db = geocrm::Database::open(
            &dir,
            geocrm::Options::new()
                .create_if_missing(false)
                .checkpoint_checksums(std::env::var_os("NOCRC").is_none()),
        )?;
        let opened = t.elapsed();
        let near = db.read().collection("customers")?.nearest(
            geocrm::LatLon::new(48.85, 2.35)?,
            10,
            &geocrm::Filter::All,
        )?;
        println!("open {opened:.2?}, + first nearest-10 {:.2?} ({} hits)", t.elapsed(), near.len());
    }
    Ok(())
}
