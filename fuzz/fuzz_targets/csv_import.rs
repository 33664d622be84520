//! Arbitrary bytes as CSV → `import_csv` into a fresh database on `MemFs`, opened with a
//! key. The first input byte picks the import options. No panic, hang or huge allocation;
//! `Err` is fine. A successful import must be what a reopened database replays.
#![no_main]

use std::sync::Arc;

use geocrm::crypto::RawKey;
use geocrm::import::{import_csv, ImportOptions};
use geocrm::io::MemFs;
use geocrm::{Database, Durability, Options};
use geocrm_fuzz::{db_dir, MASTER};
use libfuzzer_sys::fuzz_target;

fn options(fs: &Arc<MemFs>) -> Options {
    Options::new().file_system(fs.clone()).key(RawKey::new(MASTER)).durability(Durability::NoSyncBulkLoad)
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, csv)) = input.split_first() else { return };
    let list = |bit: u8, name: &str| if mode & bit != 0 { vec![name.to_owned()] } else { Vec::new() };
    let opts = ImportOptions::new()
        .pii(list(1, "name"))
        .numbers(list(2, "ltv"))
        .categories(list(4, "tier"))
        .skip_invalid(mode & 8 != 0)
        .batch_size((mode & 16 != 0).then_some(2))
        .phones(list(32, "phone"))
        .emails(list(64, "email"))
        .thousands(mode & 128 != 0)
        // (No bit of `mode` is left: the input's length decides, apart from the others.)
        .currency(csv.len() % 3 == 0);
    let fs = Arc::new(MemFs::new());
    let db = Database::open(db_dir(), options(&fs)).expect("open a new database");
    let Ok(report) = import_csv(&db, "customers", csv, &opts, &mut |_| {}) else { return };

    let ids: Vec<(String, u64)> = {
        let snap = db.read();
        let c = snap.collection("customers").expect("the import created the collection");
        assert!(c.len() as u64 <= report.imported);
        let all = c.within_bbox(&geocrm::geo::BoundingBox::world(), &geocrm::Filter::All).expect("scan");
        assert_eq!(all.len(), c.len());
        all.iter()
            .map(|hit| {
                let stored = c.get(&hit.id).expect("read back").expect("present");
                if let Some(first) = stored.pii.keys().next() {
                    let revealed = c.reveal(&hit.id).expect("reveal");
                    assert!(revealed.contains_key(first));
                }
                (hit.id.clone(), stored.lsn)
            })
            .collect()
    };
    db.sync().expect("sync");
    drop(db);

    let db = Database::open(db_dir(), options(&fs)).expect("reopen after import");
    let snap = db.read();
    let c = snap.collection("customers").expect("collection replayed");
    assert_eq!(c.len(), ids.len());
    for (id, lsn) in &ids {
        let stored = c.get(id).expect("read back after reopen").expect("replayed");
        assert_eq!(stored.lsn, *lsn);
    }
});
