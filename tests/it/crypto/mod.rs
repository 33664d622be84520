//! Crypto module: envelopes, keystore, key providers, redaction, normalization.

mod damage;
mod envelope;
mod faults;
mod keystore;

use std::path::Path;
use std::sync::Arc;

use geocrm::crypto::{
    normalize_email, normalize_phone, BlindIndexKey, DataKey, KdfParams, Keystore, MasterKey, Pii, Sealed,
};
use geocrm::io::{FileSystem, RealFs};

pub(crate) const DB: [u8; 16] = *b"db-id-0123456789";

pub(crate) fn fs() -> Arc<dyn FileSystem> {
    Arc::new(RealFs)
}

pub(crate) fn master(b: u8) -> MasterKey {
    MasterKey::from_bytes([b; 32])
}

pub(crate) fn small_kdf() -> KdfParams {
    KdfParams::argon2id([3; 16], 64, 1, 1).unwrap()
}

pub(crate) fn keystore_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("keystore")).unwrap()
}

/// The 72 wrapped-key bytes of record `id` in keystore file bytes (entry layout
/// `... | id_len u32 | id | wrapped [72]`; test ids are unique byte strings).
pub(crate) fn wrapped_of(bytes: &[u8], id: &str) -> Vec<u8> {
    let mut needle = (id.len() as u32).to_le_bytes().to_vec();
    needle.extend_from_slice(id.as_bytes());
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice()).expect("entry present");
    bytes[at + needle.len()..at + needle.len() + 72].to_vec()
}

/// A keystore with `n` keys in collection "c", ids "r0".."r{n-1}", added in batches of `batch`.
pub(crate) fn filled(dir: &Path, key: &MasterKey, n: usize, batch: usize) -> Keystore {
    let mut ks = Keystore::create(fs(), dir, DB, key, small_kdf()).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    for chunk in ids.chunks(batch.max(1)) {
        let entries: Vec<(&str, &str)> = chunk.iter().map(|id| ("c", id.as_str())).collect();
        ks.add_keys(&entries).unwrap();
    }
    ks.sync().unwrap();
    ks
}

#[test]
fn debug_output_never_contains_secrets() {
    let secret = [0x5a_u8; 32];
    let key = MasterKey::from_bytes(secret);
    let dk = DataKey::generate();
    let pii = Pii::new("Grace Hopper, +1 555 0100");
    let sealed = Sealed::from_bytes(b"Grace Hopper".to_vec());
    let blind = BlindIndexKey::derive(&key, &DB);
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::create(fs(), dir.path(), DB, &key, small_kdf()).unwrap();
    for text in [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{dk:?}"),
        format!("{pii:?}"),
        format!("{pii:#?}"),
        format!("{sealed:?}"),
        format!("{blind:?}"),
        format!("{ks:?}"),
    ] {
        for needle in ["Grace", "Hopper", "555", "90, 90", "5a5a", "[90"] {
            assert!(!text.contains(needle), "{text:?} contains {needle:?}");
        }
    }
    assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    assert_eq!(format!("{dk:?}"), "DataKey(<redacted>)");
    assert_eq!(format!("{pii:?}"), "Pii(<redacted>)");
    assert_eq!(format!("{sealed:?}"), "Sealed(<12 bytes>)");
}

#[test]
fn errors_never_contain_key_material_or_values() {
    let hex = "0123456789abcdef".repeat(4);
    let almost = &hex[..63];
    let msg = geocrm::crypto::RawKey::from_hex(almost).unwrap_err().to_string();
    assert!(!msg.contains("0123456789"), "{msg}");
    let msg = normalize_email("grace.hopper@navy").unwrap_err().to_string();
    assert!(!msg.contains("grace") && msg.contains("email"), "{msg}");
    let msg = normalize_phone("+1 555 010").unwrap_err().to_string();
    assert!(!msg.contains("555010") && !msg.contains("555 010") && msg.contains("phone"), "{msg}");
}

#[test]
fn blind_index_of_normalized_values() {
    let key = BlindIndexKey::derive(&master(1), &DB);
    let a = key.blind_value("email", &normalize_email("  Grace@Navy.MIL").unwrap());
    let b = key.blind_value("email", &normalize_email("grace@navy.mil").unwrap());
    assert_eq!(a, b);
    let p1 = key.blind_value("phone", &normalize_phone("+1 (555) 010-0000").unwrap());
    let p2 = key.blind_value("phone", &normalize_phone("+1.555.010.0000").unwrap());
    assert_eq!(p1, p2);
    assert_ne!(a, p1);
    let other_db = BlindIndexKey::derive(&master(1), &[0; 16]);
    assert_ne!(a, other_db.blind_value("email", "grace@navy.mil"));
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Keystore>();
    send_sync::<MasterKey>();
    send_sync::<DataKey>();
    send_sync::<BlindIndexKey>();
    send_sync::<Pii>();
    send_sync::<Box<dyn geocrm::crypto::KeyProvider>>();
}
