//! Blind indexes: keyed hashes of normalized PII values, for equality lookups without
//! storing or decrypting the values.

use std::fmt;

use hmac::Mac;
use zeroize::Zeroize;

use super::derive::{hmac, subkey, subkey_of, Aad, LABEL_BLIND};
use super::envelope::DataKey;
use super::key::MasterKey;

/// The key of blind indexes: HKDF-SHA256(master, salt = db_id, info = "geocrm blind index v1").
/// Zeroized on drop; `Debug` redacted.
///
/// ```
/// use geocrm::crypto::{normalize_email, BlindIndexKey, MasterKey};
/// let key = BlindIndexKey::derive(&MasterKey::from_bytes([1; 32]), &[2; 16]);
/// let a = key.blind_value("email", &normalize_email(" Ada@Example.COM ")?);
/// let b = key.blind_value("email", &normalize_email("ada@example.com")?);
/// assert_eq!(a, b);
/// # Ok::<(), geocrm::Error>(())
/// ```
pub struct BlindIndexKey(Box<[u8; 32]>);

impl BlindIndexKey {
    /// Derives the blind-index key of database `db_id` from its master key.
    #[must_use]
    pub fn derive(master: &MasterKey, db_id: &[u8; 16]) -> Self {
        let key = subkey(master, db_id, LABEL_BLIND);
        let mut boxed = Box::new([0u8; 32]);
        boxed.copy_from_slice(key.as_slice());
        BlindIndexKey(boxed)
    }

    /// Derives the blind-index key of database `db_id` from a random root key. The
    /// database keeps that root in its keystore, wrapped like a data key (FORMAT.md §7.5),
    /// so blind values survive master-key rotation.
    #[must_use]
    pub(crate) fn from_root(root: &DataKey, db_id: &[u8; 16]) -> Self {
        let key = subkey_of(root.bytes(), db_id, LABEL_BLIND);
        let mut boxed = Box::new([0u8; 32]);
        boxed.copy_from_slice(key.as_slice());
        BlindIndexKey(boxed)
    }

    /// HMAC-SHA256 over `len u64 LE | field | normalized`: the same normalized value in
    /// the same field always gives the same 32 bytes; different fields never collide by
    /// construction. Normalize first ([`super::normalize_email`], [`super::normalize_phone`]).
    #[must_use]
    pub fn blind_value(&self, field: &str, normalized: &str) -> [u8; 32] {
        let mut mac = hmac(&self.0);
        mac.update(&Aad::default().str(field).finish());
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl Drop for BlindIndexKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blind_values_depend_on_key_database_field_and_value() {
        let m = MasterKey::from_bytes([1; 32]);
        let k = BlindIndexKey::derive(&m, &[2; 16]);
        let v = k.blind_value("email", "a@b.co");
        assert_eq!(v, BlindIndexKey::derive(&m, &[2; 16]).blind_value("email", "a@b.co"));
        assert_ne!(v, k.blind_value("email", "a@b.cp"));
        assert_ne!(v, k.blind_value("phone", "a@b.co"));
        assert_ne!(v, BlindIndexKey::derive(&m, &[3; 16]).blind_value("email", "a@b.co"));
        assert_ne!(
            v,
            BlindIndexKey::derive(&MasterKey::from_bytes([9; 32]), &[2; 16]).blind_value("email", "a@b.co")
        );
        assert_eq!(format!("{k:?}"), "BlindIndexKey(<redacted>)");
    }
}
