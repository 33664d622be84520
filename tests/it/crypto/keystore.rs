//! Keystore: round trips, keys, erasure, rotation.

use geocrm::crypto::{open, seal, DataKey, FieldContext, KdfParams, KeyProvider, Keystore, Passphrase};
use geocrm::Error;

use super::{filled, fs, keystore_bytes, master, small_kdf, wrapped_of, DB};

/// Whether `a` and `b` are the same key (seal under one, open under the other).
fn same_key(a: &DataKey, b: &DataKey) -> bool {
    let ctx = FieldContext { db_id: DB, collection: "c", record_id: "r", field: "f", key_id: 1 };
    open(b, &ctx, &seal(a, &ctx, "probe")).is_ok()
}

#[test]
fn create_open_round_trip_with_many_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = master(1);
    let mut ks = Keystore::create(fs(), dir.path(), DB, &key, small_kdf()).unwrap();
    assert!(ks.is_empty() && ks.is_unlocked());
    let mut issued = Vec::new();
    for batch in 0..20 {
        let ids: Vec<String> = (0..250).map(|i| format!("rec-{batch}-{i}")).collect();
        let collection = ["customers", "leads", "vendors"][batch % 3];
        let entries: Vec<(&str, &str)> = ids.iter().map(|id| (collection, id.as_str())).collect();
        let keys = ks.add_keys(&entries).unwrap();
        for ((c, id), (key_id, dk)) in entries.iter().zip(keys) {
            issued.push((c.to_string(), id.to_string(), key_id, dk));
        }
    }
    ks.sync().unwrap();
    assert_eq!(ks.len(), 5000);
    let ids: Vec<u64> = issued.iter().map(|x| x.2).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "key ids increase");
    drop(ks);

    let ks = Keystore::open(fs(), dir.path(), DB, Some(&key)).unwrap();
    assert_eq!(ks.len(), 5000);
    assert_eq!(ks.dropped_tail_bytes(), 0);
    assert_eq!(ks.kdf_params(), &small_kdf());
    for (c, id, key_id, dk) in &issued {
        assert!(ks.contains(c, id));
        assert_eq!(ks.key_id(c, id), Some(*key_id));
        let (got_id, got) = ks.data_key(c, id).unwrap().unwrap();
        assert_eq!(got_id, *key_id);
        assert!(same_key(dk, &got));
    }
    assert!(!ks.contains("customers", "rec-1-0"), "rec-1-* live in leads");
    assert!(ks.data_key("customers", "nope").unwrap().is_none());
    assert_eq!(ks.key_id("nope", "rec-0-0"), None);
}

#[test]
fn existing_records_keep_their_keys_and_one_frame_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let key = master(1);
    let mut ks = filled(dir.path(), &key, 3, 3);
    let before = keystore_bytes(dir.path()).len();
    let again = ks.add_keys(&[("c", "r1"), ("c", "new"), ("c", "new"), ("c", "r1")]).unwrap();
    assert_eq!(again[0].0, ks.key_id("c", "r1").unwrap());
    assert_eq!(again[0].0, again[3].0);
    assert_eq!(again[1].0, again[2].0);
    assert!(same_key(&again[1].1, &again[2].1));
    assert_eq!(again[1].0, 4, "next id after 1, 2, 3");
    ks.sync().unwrap();
    let after = keystore_bytes(dir.path());
    // One frame: 8-byte frame header + count + one entry (8 + 4 + 1 + 4 + 3 + 72).
    assert_eq!(after.len() - before, 8 + 4 + 8 + 4 + 1 + 4 + 3 + 72);
    assert_eq!(ks.add_keys(&[("c", "r0")]).unwrap().len(), 1);
    assert_eq!(keystore_bytes(dir.path()).len(), after.len(), "nothing new, nothing written");
    assert_eq!(ks.len(), 4);
}

#[test]
fn create_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), &master(1), 2, 2);
    let err = Keystore::create(fs(), dir.path(), DB, &master(2), small_kdf()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(Keystore::open(fs(), dir.path(), DB, Some(&master(1))).unwrap().len(), 2);
}

#[test]
fn wrong_key_and_wrong_database() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), &master(1), 5, 5);
    assert!(matches!(Keystore::open(fs(), dir.path(), DB, Some(&master(2))), Err(Error::WrongKey)));
    let other = Keystore::open(fs(), dir.path(), [9; 16], Some(&master(1))).unwrap_err();
    assert!(matches!(other, Error::Corrupt { offset: 10, .. }), "{other:?}");
    let mut ks = Keystore::open(fs(), dir.path(), DB, None).unwrap();
    assert!(matches!(ks.unlock(&master(2)), Err(Error::WrongKey)));
    assert!(!ks.is_unlocked());
}

#[test]
fn without_a_key_locations_work_and_unwrapping_refuses() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), &master(1), 5, 2);
    let mut ks = Keystore::open(fs(), dir.path(), DB, None).unwrap();
    assert!(!ks.is_unlocked());
    assert_eq!(ks.len(), 5);
    assert!(ks.contains("c", "r4"));
    assert_eq!(ks.key_id("c", "r4"), Some(5));
    assert!(matches!(ks.data_key("c", "r4"), Err(Error::MissingKey)));
    assert!(matches!(ks.data_key("c", "absent"), Err(Error::MissingKey)));
    assert!(matches!(ks.add_keys(&[("c", "r9")]), Err(Error::MissingKey)));
    assert_eq!(ks.remove_keys(&[("c", "r0")]).unwrap(), 1, "erasure needs no key");
    ks.unlock(&master(1)).unwrap();
    assert!(ks.data_key("c", "r4").unwrap().is_some());
    assert!(ks.data_key("c", "r0").unwrap().is_none());
}

#[test]
fn remove_keys_destroys_wrapped_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let key = master(1);
    let mut ks = filled(dir.path(), &key, 40, 7);
    let before = keystore_bytes(dir.path());
    let doomed = ["r39", "r7", "r20"];
    let doomed_wrapped: Vec<Vec<u8>> = doomed.iter().map(|id| wrapped_of(&before, id)).collect();
    let kept: Vec<(String, DataKey)> = ["r0", "r8", "r38"]
        .iter()
        .map(|id| (id.to_string(), ks.data_key("c", id).unwrap().unwrap().1))
        .collect();
    let removed =
        ks.remove_keys(&[("c", "r39"), ("c", "r7"), ("c", "r20"), ("c", "r7"), ("x", "r1")]).unwrap();
    assert_eq!(removed, 3);
    assert_eq!(ks.len(), 37);
    assert_eq!(ks.remove_keys(&[("c", "r7")]).unwrap(), 0);
    let after = keystore_bytes(dir.path());
    for (id, wrapped) in doomed.iter().zip(&doomed_wrapped) {
        assert!(!after.windows(72).any(|w| w == wrapped.as_slice()), "wrapped key of {id} survives");
        assert!(ks.data_key("c", id).unwrap().is_none());
    }
    assert!(!dir.path().join("keystore.tmp").exists());
    // Key ids stay monotonic even though the highest was erased.
    let (new_id, _) = ks.add_keys(&[("c", "fresh")]).unwrap().remove(0);
    assert_eq!(new_id, 41);
    ks.sync().unwrap();
    drop(ks);
    let ks = Keystore::open(fs(), dir.path(), DB, Some(&key)).unwrap();
    assert_eq!(ks.len(), 38);
    for (id, dk) in &kept {
        assert!(same_key(dk, &ks.data_key("c", id).unwrap().unwrap().1), "{id}");
    }
    for id in doomed {
        assert!(!ks.contains("c", id));
    }
    assert_eq!(ks.key_id("c", "fresh"), Some(41));
}

#[test]
fn rotate_rewraps_and_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (master(1), master(2));
    let mut ks = filled(dir.path(), &old, 30, 8);
    let old_copy = keystore_bytes(dir.path());
    let keys: Vec<DataKey> =
        (0..30).map(|i| ks.data_key("c", &format!("r{i}")).unwrap().unwrap().1).collect();
    assert!(matches!(ks.rotate(&new, &new, small_kdf()), Err(Error::WrongKey)), "old key must be proven");
    let new_kdf = KdfParams::argon2id([4; 16], 64, 1, 1).unwrap();
    ks.rotate(&old, &new, new_kdf).unwrap();
    assert_eq!(ks.kdf_params(), &new_kdf);
    for (i, dk) in keys.iter().enumerate() {
        assert!(same_key(dk, &ks.data_key("c", &format!("r{i}")).unwrap().unwrap().1));
    }
    drop(ks);
    let new_file = keystore_bytes(dir.path());
    assert!(matches!(Keystore::open(fs(), dir.path(), DB, Some(&old)), Err(Error::WrongKey)));
    let ks = Keystore::open(fs(), dir.path(), DB, Some(&new)).unwrap();
    assert_eq!(ks.len(), 30);
    assert_eq!(ks.kdf_params(), &new_kdf);
    for (i, dk) in keys.iter().enumerate() {
        assert!(same_key(dk, &ks.data_key("c", &format!("r{i}")).unwrap().unwrap().1));
    }
    // No wrapped key survives: each was re-wrapped with a fresh nonce under the new KEK.
    for i in 0..30 {
        let id = format!("r{i}");
        assert_ne!(wrapped_of(&old_copy, &id), wrapped_of(&new_file, &id));
        assert!(!new_file.windows(72).any(|w| w == wrapped_of(&old_copy, &id).as_slice()));
    }
    // An old copy of the file (e.g. a backup) does not open with the new key.
    std::fs::write(dir.path().join("keystore"), &old_copy).unwrap();
    assert!(matches!(Keystore::open(fs(), dir.path(), DB, Some(&new)), Err(Error::WrongKey)));
}

#[test]
fn passphrase_databases_open_then_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let kdf = small_kdf();
    let key = Passphrase::new("correct horse battery staple").master_key(&kdf).unwrap();
    filled(dir.path(), &key, 3, 3);
    drop(key);
    // Reopen: the KDF parameters come from the header, so open locked first.
    let mut ks = Keystore::open(fs(), dir.path(), DB, None).unwrap();
    let wrong = Passphrase::new("Correct horse battery staple").master_key(ks.kdf_params()).unwrap();
    assert!(matches!(ks.unlock(&wrong), Err(Error::WrongKey)));
    let key = Passphrase::new("correct horse battery staple").master_key(ks.kdf_params()).unwrap();
    ks.unlock(&key).unwrap();
    assert!(ks.data_key("c", "r2").unwrap().is_some());
    // Change the passphrase: new salt, new key.
    let new_kdf = KdfParams::argon2id([8; 16], 64, 1, 1).unwrap();
    let new_key = Passphrase::new("new passphrase").master_key(&new_kdf).unwrap();
    ks.rotate(&key, &new_key, new_kdf).unwrap();
    drop(ks);
    let mut ks = Keystore::open(fs(), dir.path(), DB, None).unwrap();
    let key = Passphrase::new("new passphrase").master_key(ks.kdf_params()).unwrap();
    ks.unlock(&key).unwrap();
    assert!(ks.data_key("c", "r0").unwrap().is_some());
}

#[test]
fn a_large_batch_wraps_in_parallel_and_repeated_ids_share_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = master(1);
    let mut ks = Keystore::create(fs(), dir.path(), DB, &key, small_kdf()).unwrap();
    ks.add_keys(&[("c", "old")]).unwrap();
    // 10,000 entries (above the parallel threshold), every id twice, and one existing id.
    let ids: Vec<String> = (0..5_000).map(|i| format!("r-{i}")).collect();
    let mut entries: Vec<(&str, &str)> = ids.iter().map(|id| ("c", id.as_str())).collect();
    entries.extend(ids.iter().rev().map(|id| ("c", id.as_str())));
    entries.push(("c", "old"));
    let keys = ks.add_keys(&entries).unwrap();
    ks.sync().unwrap();
    assert_eq!(ks.len(), 5_001);
    for (i, (key_id, dk)) in keys.iter().take(5_000).enumerate() {
        let (twin_id, twin) = &keys[10_000 - 1 - i];
        assert_eq!(key_id, twin_id);
        assert!(same_key(dk, twin));
        assert_eq!(*key_id, 2 + i as u64, "ids follow the batch order");
    }
    assert_eq!(keys[10_000].0, 1);
    drop(ks);
    let ks = Keystore::open(fs(), dir.path(), DB, Some(&key)).unwrap();
    for (i, (key_id, dk)) in keys.iter().take(5_000).enumerate() {
        let (stored_id, stored) = ks.data_key("c", &ids[i]).unwrap().unwrap();
        assert_eq!(stored_id, *key_id);
        assert!(same_key(dk, &stored));
    }
}
