//! Byte layout of the keystore file: a fixed header, then checksummed frames of entries.
//!
//! Header (99 bytes, little-endian integers):
//!
//! | offset | size | content                                                     |
//! |--------|------|-------------------------------------------------------------|
//! | 0      | 8    | magic `GEOCRMKS`                                            |
//! | 8      | 2    | format version u16 = 1                                      |
//! | 10     | 16   | db_id                                                       |
//! | 26     | 8    | next key id u64 (ids below it may have been issued)         |
//! | 34     | 1    | KDF algorithm tag (1 = Argon2id v0x13)                      |
//! | 35     | 16   | KDF salt                                                    |
//! | 51     | 4    | KDF memory cost, KiB, u32                                   |
//! | 55     | 4    | KDF passes, u32                                             |
//! | 59     | 4    | KDF parallelism, u32                                        |
//! | 63     | 32   | key-check value                                             |
//! | 95     | 4    | CRC-32 (IEEE) of bytes 0..95                                |
//!
//! Then zero or more codec frames (`len u32 | crc32 u32 | payload`), each payload a batch:
//! `count u32`, then `count` entries of
//! `key_id u64 | collection_len u32 | collection (UTF-8) | record_id_len u32 |
//! record_id (UTF-8) | wrapped [72] = nonce [24] | ciphertext [32] | tag [16]`.

use std::path::Path;

use crate::codec::{read4, read8};
use crate::crypto::kdf::{KdfParams, KDF_ENCODED_LEN};
use crate::error::{Error, Result};

/// File magic.
pub(crate) const MAGIC: &[u8; 8] = b"GEOCRMKS";
/// Format version this build reads and writes.
pub(crate) const VERSION: u16 = 1;
/// Offset of the KDF parameters in the header.
const KDF_AT: usize = 34;
/// Offset of the key-check value.
const KCV_AT: usize = KDF_AT + KDF_ENCODED_LEN;
/// Offset of the header CRC.
const CRC_AT: usize = KCV_AT + 32;
/// Header length in bytes.
pub(crate) const HEADER_LEN: usize = CRC_AT + 4;
/// Wrapped data key: nonce, ciphertext, tag.
pub(crate) const WRAPPED_LEN: usize = 24 + 32 + 16;
/// Fixed bytes of an entry besides the two strings.
pub(crate) const ENTRY_FIXED: usize = 8 + 4 + 4 + WRAPPED_LEN;

/// The decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) db_id: [u8; 16],
    pub(crate) next_key_id: u64,
    pub(crate) kdf: KdfParams,
    pub(crate) key_check: [u8; 32],
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.db_id);
        out.extend_from_slice(&self.next_key_id.to_le_bytes());
        self.kdf.encode(&mut out);
        out.extend_from_slice(&self.key_check);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        out
    }

    /// Decodes and validates the header at the start of `bytes` (the whole file).
    pub(crate) fn decode(bytes: &[u8], file: &Path) -> Result<Header> {
        let corrupt = |offset: usize, reason: &str| Error::corrupt(file, offset as u64, reason);
        match bytes.get(..MAGIC.len()) {
            Some(m) if m == MAGIC => {}
            Some(_) => return Err(corrupt(0, "not a geocrm keystore (bad magic)")),
            None => return Err(corrupt(0, "file is shorter than the keystore magic")),
        }
        let version = bytes.get(8..10).map(|v| u16::from_le_bytes([v[0], v[1]]));
        match version {
            Some(VERSION) => {}
            // No version 0 was ever written: a damaged version field.
            Some(0) => return Err(corrupt(8, "keystore format version 0 does not exist")),
            // Newer only if the checksum, which covers the version, holds: a flipped bit
            // there is damage (`repair` handles it), not a newer format.
            Some(found) if header_crc_holds(bytes) => {
                return Err(Error::UnsupportedVersion { file: file.to_owned(), found, supported: VERSION })
            }
            Some(_) => return Err(corrupt(0, "keystore header checksum mismatch")),
            None => return Err(corrupt(8, "file ends inside the keystore header")),
        }
        let (Some(body), Some(crc)) = (bytes.get(..CRC_AT), read4(bytes, CRC_AT)) else {
            return Err(corrupt(0, "file ends inside the keystore header"));
        };
        if crc32fast::hash(body) != u32::from_le_bytes(crc) {
            return Err(corrupt(0, "keystore header checksum mismatch"));
        }
        let mut db_id = [0u8; 16];
        db_id.copy_from_slice(body.get(10..26).unwrap_or(&[0; 16]));
        let next_key_id = read8(body, 26).map_or(0, u64::from_le_bytes);
        let mut kdf_bytes = [0u8; KDF_ENCODED_LEN];
        kdf_bytes.copy_from_slice(body.get(KDF_AT..KCV_AT).unwrap_or(&[0; KDF_ENCODED_LEN]));
        let kdf = KdfParams::decode(&kdf_bytes).map_err(|reason| corrupt(KDF_AT, &reason))?;
        let mut key_check = [0u8; 32];
        key_check.copy_from_slice(body.get(KCV_AT..CRC_AT).unwrap_or(&[0; 32]));
        Ok(Header { db_id, next_key_id, kdf, key_check })
    }
}

/// Whether the keystore header at the start of `bytes` matches its checksum.
fn header_crc_holds(bytes: &[u8]) -> bool {
    let (Some(body), Some(crc)) = (bytes.get(..CRC_AT), read4(bytes, CRC_AT)) else { return false };
    crc32fast::hash(body) == u32::from_le_bytes(crc)
}

/// One keystore entry, borrowed from a decoded payload or from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub(crate) key_id: u64,
    pub(crate) collection: &'a str,
    pub(crate) record_id: &'a str,
    pub(crate) wrapped: &'a [u8; WRAPPED_LEN],
}

/// Encoded size of one entry in a batch payload.
pub(crate) fn entry_len(collection: &str, record_id: &str) -> usize {
    ENTRY_FIXED + collection.len() + record_id.len()
}

/// Encodes a batch payload. String lengths must fit in u32 (checked by the caller).
pub(crate) fn encode_batch<'a>(entries: impl ExactSizeIterator<Item = Entry<'a>>, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(entries.len()).unwrap_or(u32::MAX).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.key_id.to_le_bytes());
        for s in [e.collection, e.record_id] {
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(e.wrapped);
    }
}

/// Decodes a batch payload whose frame checksum matched. On error returns the offset within
/// the payload and a reason.
pub(crate) fn decode_batch(payload: &[u8]) -> std::result::Result<Vec<Entry<'_>>, (usize, String)> {
    let mut at = 0usize;
    let count = take(payload, &mut at, 4).map(le_u32).ok_or((0, "batch is shorter than its count".into()))?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > payload.len() / ENTRY_FIXED {
        return Err((0, format!("batch count {count} does not fit in {} bytes", payload.len())));
    }
    let mut entries = Vec::with_capacity(count);
    for n in 0..count {
        let start = at;
        let truncated = || (start, format!("entry {n} of {count} is truncated"));
        let key_id = take(payload, &mut at, 8).map(le_u64).ok_or_else(truncated)?;
        let mut strings = [""; 2];
        for (s, what) in strings.iter_mut().zip(["collection name", "record id"]) {
            let len = take(payload, &mut at, 4).map(le_u32).ok_or_else(truncated)?;
            let bytes =
                take(payload, &mut at, usize::try_from(len).unwrap_or(usize::MAX)).ok_or_else(truncated)?;
            *s =
                std::str::from_utf8(bytes).map_err(|_| (start, format!("entry {n}: {what} is not UTF-8")))?;
        }
        let wrapped =
            take(payload, &mut at, WRAPPED_LEN).and_then(|w| w.try_into().ok()).ok_or_else(truncated)?;
        entries.push(Entry { key_id, collection: strings[0], record_id: strings[1], wrapped });
    }
    if at != payload.len() {
        return Err((at, format!("{} trailing bytes after {count} entries", payload.len() - at)));
    }
    Ok(entries)
}

/// Whether `payload` has the shape of a whole batch — its count of entries, each with its
/// two lengths and their bytes, ending exactly at its end — whatever the bytes say (UTF-8,
/// key ids and wrapped keys unchecked): a damaged frame whose length can be trusted.
pub(crate) fn is_whole_batch(payload: &[u8]) -> bool {
    let mut at = 0usize;
    let Some(count) = take(payload, &mut at, 4).map(le_u32) else { return false };
    if usize::try_from(count).unwrap_or(usize::MAX) > payload.len() / ENTRY_FIXED {
        return false;
    }
    for _ in 0..count {
        if take(payload, &mut at, 8).is_none() {
            return false;
        }
        for _ in 0..2 {
            let Some(len) = take(payload, &mut at, 4).map(le_u32) else { return false };
            if take(payload, &mut at, usize::try_from(len).unwrap_or(usize::MAX)).is_none() {
                return false;
            }
        }
        if take(payload, &mut at, WRAPPED_LEN).is_none() {
            return false;
        }
    }
    at == payload.len()
}

/// The entries that can still be read, in order, from a damaged batch payload (its count
/// is not trusted): every entry up to the first one cut short (a damaged length), leaving
/// out those whose strings are not UTF-8 or whose key id is `u64::MAX`. Nothing here is
/// authenticated: each wrapped key must be checked by unwrapping it before it is trusted.
pub(crate) fn salvage_batch(payload: &[u8]) -> Vec<Entry<'_>> {
    let mut at = 4usize; // the count
    let mut entries = Vec::new();
    while at < payload.len() {
        let mut next = at;
        let Some(key_id) = take(payload, &mut next, 8).map(le_u64) else { break };
        let mut raw: [&[u8]; 2] = [&[], &[]];
        for r in &mut raw {
            let len = take(payload, &mut next, 4).map(le_u32);
            match len.and_then(|len| take(payload, &mut next, usize::try_from(len).unwrap_or(usize::MAX))) {
                Some(bytes) => *r = bytes,
                None => return entries,
            }
        }
        let Some(wrapped) =
            take(payload, &mut next, WRAPPED_LEN).and_then(|w| <&[u8; WRAPPED_LEN]>::try_from(w).ok())
        else {
            break;
        };
        at = next;
        let (Ok(collection), Ok(record_id)) = (std::str::from_utf8(raw[0]), std::str::from_utf8(raw[1]))
        else {
            continue;
        };
        if key_id != u64::MAX {
            entries.push(Entry { key_id, collection, record_id, wrapped });
        }
    }
    entries
}

/// Whether `rest`, which starts with an invalid frame, is a torn append: no whole valid
/// frame starts anywhere after its first byte. Damage to an earlier frame (a flipped length
/// or payload byte) leaves whole valid frames after it; finding one means damage, not a
/// tear.
pub(crate) fn is_torn_tail(rest: &[u8]) -> bool {
    crate::codec::is_torn_tail(rest)
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let slice = bytes.get(*at..at.checked_add(n)?)?;
    *at += n;
    Some(slice)
}

fn le_u32(b: &[u8]) -> u32 {
    read4(b, 0).map_or(0, u32::from_le_bytes)
}

fn le_u64(b: &[u8]) -> u64 {
    read8(b, 0).map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header { db_id: [4; 16], next_key_id: 9, kdf: KdfParams::new_random(), key_check: [7; 32] }
    }

    #[test]
    fn header_round_trip_and_damage() {
        let h = header();
        let bytes = h.encode();
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(Header::decode(&bytes, Path::new("ks")).unwrap(), h);
        for cut in 0..bytes.len() {
            assert!(Header::decode(&bytes[..cut], Path::new("ks")).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Header::decode(&bad, Path::new("ks")).is_err(), "flip {i}");
        }
        // A newer version is one whose checksum holds; a flipped version bit is damage.
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(Header::decode(&v2, Path::new("ks")), Err(Error::Corrupt { offset: 0, .. })));
        let crc = crc32fast::hash(&v2[..CRC_AT]);
        v2[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Header::decode(&v2, Path::new("ks")),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn batch_round_trip_and_every_cut_fails() {
        let w = [9u8; WRAPPED_LEN];
        let entries = vec![
            Entry { key_id: 1, collection: "customers", record_id: "a", wrapped: &w },
            Entry { key_id: 2, collection: "leads", record_id: "ü-2", wrapped: &w },
        ];
        let mut payload = Vec::new();
        encode_batch(entries.iter().copied(), &mut payload);
        assert_eq!(
            payload.len(),
            4 + entries.iter().map(|e| entry_len(e.collection, e.record_id)).sum::<usize>()
        );
        assert_eq!(decode_batch(&payload).unwrap(), entries);
        for cut in 0..payload.len() {
            assert!(decode_batch(&payload[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = payload.clone();
        extra.push(0);
        assert!(decode_batch(&extra).is_err());
        let mut huge = payload.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_batch(&huge).is_err());
        let mut bad_utf8 = payload;
        bad_utf8[4 + 8 + 4] = 0xff;
        assert!(decode_batch(&bad_utf8).unwrap_err().1.contains("UTF-8"));
    }
}
