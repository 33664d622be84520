//! Wrapping data keys under the key-encryption key (KEK).
//!
//! KEK = HKDF-SHA256(ikm = master key, salt = db_id, info = "geocrm kek v1"). A wrapped key
//! is `nonce [24] | ciphertext [32] | tag [16]`: XChaCha20-Poly1305 of the 32 data-key
//! bytes with associated data
//! `1 u8 | db_id [16] | len u64 LE | collection | len u64 LE | record_id | key_id u64 LE`.

use std::fmt;

use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use super::format::WRAPPED_LEN;
use crate::crypto::aead;
use crate::crypto::derive::{subkey, Aad, LABEL_KEK};
use crate::crypto::envelope::DataKey;
use crate::crypto::key::MasterKey;

/// Version byte at the start of the wrapping associated data.
const WRAP_AAD_VERSION: u8 = 1;

/// The key-encryption key of one database. Zeroized on drop (by the cipher).
pub(crate) struct Kek {
    key: Zeroizing<[u8; 32]>,
    db_id: [u8; 16],
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    pub(crate) fn derive(master: &MasterKey, db_id: &[u8; 16]) -> Kek {
        Kek { key: subkey(master, db_id, LABEL_KEK), db_id: *db_id }
    }

    fn aad(&self, collection: &str, record_id: &str, key_id: u64) -> Vec<u8> {
        Aad::with_capacity(1 + 16 + 24 + collection.len() + record_id.len())
            .u8(WRAP_AAD_VERSION)
            .fixed(&self.db_id)
            .str(collection)
            .str(record_id)
            .u64(key_id)
            .finish()
    }

    /// Wraps `dk` for (collection, record_id, key_id) with a fresh random nonce.
    pub(crate) fn wrap(
        &self,
        collection: &str,
        record_id: &str,
        key_id: u64,
        dk: &DataKey,
    ) -> [u8; WRAPPED_LEN] {
        let mut out = [0u8; WRAPPED_LEN];
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let (nonce_out, rest) = out.split_at_mut(aead::NONCE_LEN);
        let (body, tag_out) = rest.split_at_mut(32);
        nonce_out.copy_from_slice(&nonce);
        body.copy_from_slice(dk.bytes());
        let aad = self.aad(collection, record_id, key_id);
        tag_out.copy_from_slice(&aead::seal_in_place(&self.key, &nonce, &aad, body));
        out
    }

    /// Unwraps, or `None` when authentication fails (wrong KEK, wrong context, damage).
    pub(crate) fn unwrap(
        &self,
        collection: &str,
        record_id: &str,
        key_id: u64,
        wrapped: &[u8; WRAPPED_LEN],
    ) -> Option<DataKey> {
        let (nonce, rest) = wrapped.split_at(aead::NONCE_LEN);
        let (body, tag) = rest.split_at(32);
        let (Ok(nonce), Ok(tag)) =
            (<&[u8; aead::NONCE_LEN]>::try_from(nonce), <&[u8; aead::TAG_LEN]>::try_from(tag))
        else {
            return None;
        };
        let mut key = Box::new([0u8; 32]);
        key.copy_from_slice(body);
        let aad = self.aad(collection, record_id, key_id);
        match aead::open_in_place(&self.key, nonce, &aad, key.as_mut_slice(), tag) {
            Ok(()) => Some(DataKey::from_boxed(key)),
            Err(_) => {
                key.zeroize();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_binds_context() {
        let master = MasterKey::from_bytes([1; 32]);
        let kek = Kek::derive(&master, &[2; 16]);
        let dk = DataKey::generate();
        let w = kek.wrap("c", "r", 3, &dk);
        assert_eq!(kek.unwrap("c", "r", 3, &w).unwrap().bytes(), dk.bytes());
        assert!(!w.windows(32).any(|win| win == dk.bytes()), "key is not stored in the clear");
        assert!(kek.unwrap("c", "r", 4, &w).is_none());
        assert!(kek.unwrap("c", "s", 3, &w).is_none());
        assert!(kek.unwrap("d", "r", 3, &w).is_none());
        assert!(Kek::derive(&master, &[3; 16]).unwrap("c", "r", 3, &w).is_none());
        assert!(Kek::derive(&MasterKey::from_bytes([9; 32]), &[2; 16]).unwrap("c", "r", 3, &w).is_none());
        for i in 0..WRAPPED_LEN {
            let mut bad = w;
            bad[i] ^= 1;
            assert!(kek.unwrap("c", "r", 3, &bad).is_none(), "flip {i}");
        }
    }
}
