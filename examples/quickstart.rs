//! The README's quick example as a program: `cargo run --example quickstart`.

use geocrm::{crypto::RawKey, Database, Filter, LatLon, Options, Record, Schema};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // In a real application the key comes from the host's secret store.
    let db = Database::open(dir.path(), Options::new().key(RawKey::new([7; 32])))?;
    db.create_collection("customers", Schema::crm().number("ltv").category("tier"))?;

    let mut batch = db.begin_write();
    batch.upsert(
        "customers",
        Record::new("C-000123", LatLon::new(48.8566, 2.3522)?)
            .number("ltv", 1830.0)
            .category("tier", "gold")
            .pii("name", "Ada Lovelace")
            .pii("phone", "+33142000000"),
    )?;
    batch.upsert(
        "customers",
        Record::new("C-000124", LatLon::new(51.5074, -0.1278)?).category("tier", "silver"),
    )?;
    batch.commit()?;

    let snap = db.read();
    let customers = snap.collection("customers")?;
    for hit in customers.nearest(LatLon::new(48.86, 2.34)?, 10, &Filter::All)? {
        println!("{} at {:.0} m", hit.id, hit.distance_m);
    }
    let gold = customers.nearest(LatLon::new(51.5, 0.0)?, 10, &Filter::parse("tier = 'gold'")?)?;
    println!("nearest gold customer to London: {}", gold[0].id);
    println!("name (decrypted on request): {}", customers.reveal("C-000123")?["name"].expose());
    Ok(())
}
