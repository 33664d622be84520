//! Arbitrary bytes as the keystore file (as given, then with its checksums fixed) →
//! `Keystore::open` without and with the master key.
//! No panic, hang or huge allocation; `Err` is fine. An unlocked keystore must accept a
//! new key that survives reopening.
#![no_main]

use std::sync::Arc;

use geocrm::crypto::{Keystore, MasterKey, KEYSTORE_FILE};
use geocrm::io::{FileSystem, MemFs};
use geocrm_fuzz::{db_dir, fix_keystore_crcs, DB_ID, MASTER};
use libfuzzer_sys::fuzz_target;

fn fresh(input: &[u8]) -> Arc<MemFs> {
    let fs = Arc::new(MemFs::new());
    fs.create_dir_all(db_dir()).expect("mkdir");
    fs.write_raw(&db_dir().join(KEYSTORE_FILE), input);
    fs
}

fuzz_target!(|input: &[u8]| {
    // As given, and with every checksum fixed so mutations reach the entry decoder.
    check(input);
    let mut fixed = input.to_vec();
    fix_keystore_crcs(&mut fixed);
    if fixed != input {
        check(&fixed);
    }
});

fn check(input: &[u8]) {
    let master = MasterKey::from_bytes(MASTER);

    let locked = Keystore::open(fresh(input), db_dir(), DB_ID, None);
    if let Ok(ks) = &locked {
        let _ = ks.contains("customers", "C-1");
        let _ = ks.key_id("customers", "C-1");
        assert!(ks.data_key("customers", "C-1").is_err(), "a locked keystore unwraps nothing");
    }

    let fs = fresh(input);
    let unlocked = Keystore::open(fs.clone(), db_dir(), DB_ID, Some(&master));
    if locked.is_err() {
        // The key check comes after the header, so only a header error can be shared; a
        // file that fails to open locked must not open unlocked.
        assert!(unlocked.is_err(), "opened with a key but not without: {locked:?}");
        return;
    }
    let Ok(mut ks) = unlocked else { return };
    let before = ks.len();
    if ks.contains("fuzz", "new-record") {
        return;
    }
    for (c, id) in [("customers", "C-1"), ("customers", "C-2"), ("c", "a")] {
        // Wrapped keys in a fuzzed file may fail authentication: Err, not a panic.
        let _ = ks.data_key(c, id);
    }
    let Ok(issued) = ks.add_keys(&[("fuzz", "new-record")]) else { return };
    ks.sync().expect("sync");
    assert_eq!(ks.len(), before + 1);
    drop(ks);
    let again = Keystore::open(fs, db_dir(), DB_ID, Some(&master)).expect("reopen after add_keys");
    assert_eq!(again.len(), before + 1);
    let (key_id, _) = again.data_key("fuzz", "new-record").expect("unwrap").expect("present");
    assert_eq!(key_id, issued[0].0);
}
