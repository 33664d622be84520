//! Per-record data keys and the envelope format of one sealed PII field.
//!
//! Envelope bytes (version 1):
//!
//! | offset | size | content                                   |
//! |--------|------|-------------------------------------------|
//! | 0      | 1    | version = 1                               |
//! | 1      | 8    | key id, u64 little-endian                 |
//! | 9      | 24   | XChaCha20 nonce, fresh random per seal    |
//! | 33     | n    | ciphertext of the UTF-8 plaintext         |
//! | 33 + n | 16   | Poly1305 tag                              |
//!
//! The associated data (authenticated, not stored) is
//! `version u8 | db_id [16] | len u64 LE | collection | len u64 LE | record_id |
//! len u64 LE | field | key_id u64 LE`, so an envelope copied to another database,
//! collection, record, field or key id fails to open.

use std::fmt;

use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use super::aead;
use super::derive::Aad;
use super::sealed::{Pii, Sealed};
use crate::codec::read8;
use crate::error::{Error, Result};

/// Version byte of the envelope format.
pub const ENVELOPE_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 24;
const TAG_LEN: usize = aead::TAG_LEN;
/// Bytes an envelope adds to its plaintext: version, key id, nonce and tag (49).
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// A record's 32-byte data key: random, heap-allocated, zeroized on drop, `Debug` redacted.
///
/// ```
/// use geocrm::crypto::DataKey;
/// let dk = DataKey::generate();
/// assert_eq!(format!("{dk:?}"), "DataKey(<redacted>)");
/// ```
pub struct DataKey(Box<[u8; 32]>);

impl DataKey {
    /// A fresh key from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = Box::new([0u8; 32]);
        rand::thread_rng().fill_bytes(key.as_mut_slice());
        DataKey(key)
    }

    /// A second handle on the same key (heap to heap, no stack copy).
    pub(crate) fn duplicate(&self) -> Self {
        let mut key = Box::new([0u8; 32]);
        key.copy_from_slice(self.0.as_slice());
        DataKey(key)
    }

    pub(crate) fn from_boxed(key: Box<[u8; 32]>) -> Self {
        DataKey(key)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Where a sealed field belongs. Every part is authenticated: opening with any other
/// context fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldContext<'a> {
    /// The database's random id.
    pub db_id: [u8; 16],
    /// Collection name.
    pub collection: &'a str,
    /// Record id.
    pub record_id: &'a str,
    /// Field name.
    pub field: &'a str,
    /// Id of the data key (from the keystore).
    pub key_id: u64,
}

impl FieldContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let n = 1 + 16 + 32 + self.collection.len() + self.record_id.len() + self.field.len();
        Aad::with_capacity(n)
            .u8(ENVELOPE_VERSION)
            .fixed(&self.db_id)
            .str(self.collection)
            .str(self.record_id)
            .str(self.field)
            .u64(self.key_id)
            .finish()
    }

    fn decrypt_error(&self) -> Error {
        Error::Decrypt {
            collection: self.collection.to_owned(),
            id: self.record_id.to_owned(),
            field: self.field.to_owned(),
        }
    }
}

/// Encrypts one field's plaintext under `dk` with a fresh random nonce.
///
/// ```
/// use geocrm::crypto::{open, seal, DataKey, FieldContext};
/// let dk = DataKey::generate();
/// let ctx = FieldContext { db_id: [1; 16], collection: "customers", record_id: "c-1", field: "email", key_id: 7 };
/// let sealed = seal(&dk, &ctx, "ada@example.com");
/// assert_eq!(open(&dk, &ctx, &sealed)?.expose(), "ada@example.com");
/// let elsewhere = FieldContext { field: "phone", ..ctx };
/// assert!(open(&dk, &elsewhere, &sealed).is_err());
/// # Ok::<(), geocrm::Error>(())
/// ```
#[must_use]
pub fn seal(dk: &DataKey, ctx: &FieldContext<'_>, plaintext: &str) -> Sealed {
    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
    seal_into(dk, ctx, plaintext, &mut out);
    Sealed::from_bytes(out)
}

/// As [`seal`], appending the envelope to `out` (a record's envelopes share one buffer).
pub(crate) fn seal_into(dk: &DataKey, ctx: &FieldContext<'_>, plaintext: &str, out: &mut Vec<u8>) {
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut nonce);
    out.reserve(ENVELOPE_OVERHEAD + plaintext.len());
    let start = out.len();
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&ctx.key_id.to_le_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext.as_bytes());
    let body = out.get_mut(start + HEADER_LEN..).unwrap_or_default();
    let tag = aead::seal_in_place(dk.bytes(), &nonce, &ctx.aad(), body);
    out.extend_from_slice(&tag);
}

/// Decrypts and authenticates an envelope.
///
/// # Errors
/// [`Error::Decrypt`] naming the collection, record and field when the envelope is not
/// exactly one sealed under `dk` for `ctx`: wrong key, moved, tampered with, truncated,
/// unknown version, or plaintext that is not UTF-8. Never returns unauthenticated bytes.
pub fn open(dk: &DataKey, ctx: &FieldContext<'_>, sealed: &Sealed) -> Result<Pii> {
    let bytes = sealed.as_bytes();
    let body_end = bytes.len().checked_sub(TAG_LEN).filter(|&end| end >= HEADER_LEN);
    let (Some(body_end), Some(&ENVELOPE_VERSION)) = (body_end, bytes.first()) else {
        return Err(ctx.decrypt_error());
    };
    if read8(bytes, 1).map(u64::from_le_bytes) != Some(ctx.key_id) {
        return Err(ctx.decrypt_error());
    }
    let nonce: Option<&[u8; aead::NONCE_LEN]> = bytes.get(9..HEADER_LEN).and_then(|n| n.try_into().ok());
    let tag: Option<&[u8; TAG_LEN]> = bytes.get(body_end..).and_then(|t| t.try_into().ok());
    let (Some(nonce), Some(body), Some(tag)) = (nonce, bytes.get(HEADER_LEN..body_end), tag) else {
        return Err(ctx.decrypt_error());
    };
    let mut buf = Zeroizing::new(body.to_vec());
    aead::open_in_place(dk.bytes(), nonce, &ctx.aad(), &mut buf, tag).map_err(|_| ctx.decrypt_error())?;
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(text) => Ok(Pii::new(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(ctx.decrypt_error())
        }
    }
}

/// The key id recorded in an envelope, or `None` when it is too short or of an unknown
/// version. Unauthenticated: use it to find the key, then [`open`] verifies it.
#[must_use]
pub fn sealed_key_id(sealed: &Sealed) -> Option<u64> {
    let bytes = sealed.as_bytes();
    if bytes.len() < ENVELOPE_OVERHEAD || bytes.first() != Some(&ENVELOPE_VERSION) {
        return None;
    }
    read8(bytes, 1).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: FieldContext<'static> =
        FieldContext { db_id: [3; 16], collection: "customers", record_id: "r1", field: "name", key_id: 5 };

    #[test]
    fn round_trip_including_empty_and_unicode() {
        let dk = DataKey::generate();
        for text in ["", "Zoë Ångström-Łukasiewicz", "x"] {
            let sealed = seal(&dk, &CTX, text);
            assert_eq!(sealed.len(), text.len() + ENVELOPE_OVERHEAD);
            assert_eq!(sealed_key_id(&sealed), Some(5));
            assert_eq!(open(&dk, &CTX, &sealed).unwrap().expose(), text);
        }
        let a = seal(&dk, &CTX, "same");
        assert_ne!(a, seal(&dk, &CTX, "same"), "fresh nonce each time");
    }

    #[test]
    fn wrong_key_and_version_fail() {
        let dk = DataKey::generate();
        let sealed = seal(&dk, &CTX, "Ada");
        assert!(matches!(open(&DataKey::generate(), &CTX, &sealed), Err(Error::Decrypt { .. })));
        let mut v2 = sealed.as_bytes().to_vec();
        v2[0] = 2;
        assert!(open(&dk, &CTX, &Sealed::from_bytes(v2.clone())).is_err());
        assert_eq!(sealed_key_id(&Sealed::from_bytes(v2)), None);
    }

    #[test]
    fn non_utf8_plaintext_is_a_decrypt_error() {
        let dk = DataKey::generate();
        let sealed = seal(&dk, &CTX, "ab");
        // Re-encrypt invalid UTF-8 under the same key/context by hand.
        let mut bytes = sealed.as_bytes()[..HEADER_LEN].to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        let nonce: [u8; 24] = bytes[9..HEADER_LEN].try_into().unwrap();
        let tag = aead::seal_in_place(dk.bytes(), &nonce, &CTX.aad(), &mut bytes[HEADER_LEN..]);
        bytes.extend_from_slice(&tag);
        assert!(matches!(open(&dk, &CTX, &Sealed::from_bytes(bytes)), Err(Error::Decrypt { .. })));
    }

    #[test]
    fn nonces_do_not_repeat_in_100k_seals() {
        let dk = DataKey::generate();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let sealed = seal(&dk, &CTX, "");
            let nonce: [u8; 24] = sealed.as_bytes()[9..HEADER_LEN].try_into().unwrap();
            assert!(seen.insert(nonce), "repeated nonce");
        }
    }
}
