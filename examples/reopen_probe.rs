//! Opens an existing database N times and prints each open time: `reopen_probe DIR [N]`
//! (`NOCRC=1`: without checkpoint checksums; `KEY=<64 hex digits>`: with that master key, and
//! times the first PII read after the query, which reads the keystore).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("DIR")?;
    let n: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let mut options = geocrm::Options::new()
            .create_if_missing(false)
            .checkpoint_checksums(std::env::var_os("NOCRC").is_none());
        if let Ok(hex) = std::env::var("KEY") {
            let byte = |i: usize| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok());
            let key: Option<Vec<u8>> = (0..32).map(|i| byte(2 * i)).collect();
            let key: [u8; 32] = key.and_then(|k| k.try_into().ok()).ok_or("KEY: 64 hex digits")?;
            options = options.key(geocrm::crypto::RawKey::new(key));
        }
        let db = geocrm::Database::open(&dir, options)?;
        let opened = t.elapsed();
        let near = db.read().collection("customers")?.nearest(
            geocrm::LatLon::new(48.85, 2.35)?,
            10,
            &geocrm::Filter::All,
        )?;
        println!("open {opened:.2?}, + first nearest-10 {:.2?} ({} hits)", t.elapsed(), near.len());
        if let (true, Some(first)) = (std::env::var_os("KEY").is_some(), near.first()) {
            // The first PII read loads the keystore.
            let t = std::time::Instant::now();
            let fields = db.read().collection("customers")?.reveal(&first.id)?.len();
            println!("  first reveal ({fields} fields) {:.2?}", t.elapsed());
        }
    }
    Ok(())
}
