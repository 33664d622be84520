//! Key derivation and associated-data encoding shared by the crypto module.
//!
//! Every subkey is HKDF-SHA256 with the master key as input keying material, the database id
//! as salt and a fixed label as info, so subkeys for different purposes (and for different
//! databases sharing a master key) are independent.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::key::MasterKey;

/// HKDF info of the key-encryption key that wraps data keys in the keystore.
pub(crate) const LABEL_KEK: &[u8] = b"geocrm kek v1";
/// HKDF info of the key-check subkey (and the HMAC message prefix of the check value).
pub(crate) const LABEL_KEY_CHECK: &[u8] = b"geocrm key check v1";
/// HKDF info of the blind-index key.
pub(crate) const LABEL_BLIND: &[u8] = b"geocrm blind index v1";

/// HKDF-SHA256(ikm = master, salt = db_id, info = label) → 32 bytes.
pub(crate) fn subkey(master: &MasterKey, db_id: &[u8; 16], label: &[u8]) -> Zeroizing<[u8; 32]> {
    subkey_of(master.bytes(), db_id, label)
}

/// HKDF-SHA256(ikm = key, salt = db_id, info = label) → 32 bytes, for any 32-byte root key.
pub(crate) fn subkey_of(ikm: &[u8; 32], db_id: &[u8; 16], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(Some(db_id), ikm);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    if hk.expand(label, okm.as_mut()).is_err() {
        debug_assert!(false, "HKDF expand of 32 bytes failed");
    }
    okm
}

/// A fresh HMAC-SHA256 instance keyed with `key`.
pub(crate) fn hmac(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// The key-check value stored in the keystore header: HMAC-SHA256 under the key-check
/// subkey of `LABEL_KEY_CHECK || db_id`.
pub(crate) fn key_check_value(master: &MasterKey, db_id: &[u8; 16]) -> [u8; 32] {
    let key = subkey(master, db_id, LABEL_KEY_CHECK);
    let mut mac = hmac(&key);
    mac.update(LABEL_KEY_CHECK);
    mac.update(db_id);
    mac.finalize().into_bytes().into()
}

/// Whether `master` produces `expected` as key-check value (constant-time comparison).
pub(crate) fn key_check_matches(master: &MasterKey, db_id: &[u8; 16], expected: &[u8; 32]) -> bool {
    let key = subkey(master, db_id, LABEL_KEY_CHECK);
    let mut mac = hmac(&key);
    mac.update(LABEL_KEY_CHECK);
    mac.update(db_id);
    mac.verify_slice(expected).is_ok()
}

/// Builder of associated data: fixed-width integers and `u64 LE length | bytes` strings, so
/// no two different tuples encode to the same bytes.
#[derive(Default)]
pub(crate) struct Aad(Vec<u8>);

impl Aad {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Aad(Vec::with_capacity(n))
    }
    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn fixed(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    pub(crate) fn str(self, s: &str) -> Self {
        self.u64(s.len() as u64).fixed(s.as_bytes())
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_give_independent_subkeys() {
        let m = MasterKey::from_bytes([7; 32]);
        let a = subkey(&m, &[1; 16], LABEL_KEK);
        let b = subkey(&m, &[1; 16], LABEL_BLIND);
        let c = subkey(&m, &[2; 16], LABEL_KEK);
        assert_ne!(*a, *b);
        assert_ne!(*a, *c);
        assert_eq!(*a, *subkey(&m, &[1; 16], LABEL_KEK));
    }

    #[test]
    fn key_check_distinguishes_keys_and_databases() {
        let m = MasterKey::from_bytes([7; 32]);
        let kcv = key_check_value(&m, &[1; 16]);
        assert!(key_check_matches(&m, &[1; 16], &kcv));
        assert!(!key_check_matches(&MasterKey::from_bytes([8; 32]), &[1; 16], &kcv));
        assert!(!key_check_matches(&m, &[2; 16], &kcv));
    }

    #[test]
    fn aad_strings_are_unambiguous() {
        let a = Aad::default().str("ab").str("c").finish();
        let b = Aad::default().str("a").str("bc").finish();
        assert_ne!(a, b);
    }
}
