//! XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): HChaCha20 of the key and the nonce's first
//! 16 bytes gives a one-time subkey for the IETF ChaCha20-Poly1305 of `ring`, with nonce
//! `0000 | nonce[16..24]`.
//!
//! The bytes are those of the `chacha20poly1305` crate's `XChaCha20Poly1305` (the format
//! tests check envelopes with it). `ring` seals a short PII field in about 0.3 µs where the
//! RustCrypto AVX2 backends took 2–4 µs on this project's machine — the fixed cost that
//! dominated the import of records with PII. `ring` does not zeroize its key schedule when
//! dropped; what it holds is the one-time subkey, which opens only the one field sealed
//! with that nonce. The subkey bytes geocrm handles are zeroized.

use chacha20::cipher::consts::U10;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroize;

/// Nonce length.
pub(crate) const NONCE_LEN: usize = 24;
/// Tag length.
pub(crate) const TAG_LEN: usize = 16;

/// The authentication tag did not match (wrong key, nonce, associated data or bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthentic;

fn one_time_key(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let (prefix, suffix) = nonce.split_at(16);
    let mut subkey = chacha20::hchacha::<U10>(key.into(), prefix.into());
    // A 32-byte key is the one length CHACHA20_POLY1305 takes: `new` cannot fail.
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice());
    subkey.as_mut_slice().zeroize();
    let mut ietf = [0u8; 12];
    ietf[4..].copy_from_slice(suffix);
    match unbound {
        Ok(k) => (LessSafeKey::new(k), Nonce::assume_unique_for_key(ietf)),
        Err(_) => unreachable!("CHACHA20_POLY1305 takes 32-byte keys"),
    }
}

/// Encrypts `buf` in place and returns the tag.
pub(crate) fn seal_in_place(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    let (k, n) = one_time_key(key, nonce);
    match k.seal_in_place_separate_tag(n, Aad::from(aad), buf) {
        Ok(tag) => tag_bytes(&tag),
        // ring refuses only inputs over 256 GiB, which no caller can pass (fields are
        // bounded far below): make the output unusable rather than leave plaintext.
        Err(_) => {
            buf.zeroize();
            [0; TAG_LEN]
        }
    }
}

fn tag_bytes(tag: &Tag) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Checks `tag` and decrypts `buf` in place; on failure `buf` is zeroized.
pub(crate) fn open_in_place(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), Unauthentic> {
    let (k, n) = one_time_key(key, nonce);
    match k.open_in_place_separate_tag(n, Aad::from(aad), Tag::from(*tag), buf, 0..) {
        Ok(_) => Ok(()),
        Err(_) => {
            buf.zeroize();
            Err(Unauthentic)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    /// The byte-for-byte agreement with an independent implementation, every length to 300.
    #[test]
    fn agrees_with_the_chacha20poly1305_crate() {
        let key = [0x42; 32];
        for len in 0..300usize {
            let nonce: [u8; 24] = std::array::from_fn(|i| (i * 7 + len) as u8);
            let aad = format!("aad-{len}");
            let plain: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let mut ours = plain.clone();
            let tag = seal_in_place(&key, &nonce, aad.as_bytes(), &mut ours);
            let mut theirs = plain.clone();
            let their_tag = XChaCha20Poly1305::new((&key).into())
                .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad.as_bytes(), &mut theirs)
                .unwrap();
            assert_eq!((ours.clone(), tag.to_vec()), (theirs, their_tag.to_vec()), "length {len}");
            open_in_place(&key, &nonce, aad.as_bytes(), &mut ours, &tag).unwrap();
            assert_eq!(ours, plain);
        }
    }

    #[test]
    fn any_change_fails_and_leaves_no_plaintext() {
        let key = [1; 32];
        let nonce = [2; 24];
        let mut buf = b"secret phone".to_vec();
        let tag = seal_in_place(&key, &nonce, b"ctx", &mut buf);
        let sealed = buf.clone();
        let mut other_key = [1; 32];
        other_key[31] ^= 1;
        let mut other_nonce = nonce;
        other_nonce[23] ^= 1;
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        for (k, n, aad, t) in [
            (&other_key, &nonce, &b"ctx"[..], &tag),
            (&key, &other_nonce, &b"ctx"[..], &tag),
            (&key, &nonce, &b"ctX"[..], &tag),
            (&key, &nonce, &b"ctx"[..], &bad_tag),
        ] {
            let mut b = sealed.clone();
            assert_eq!(open_in_place(k, n, aad, &mut b, t), Err(Unauthentic));
            assert!(b.iter().all(|&x| x == 0), "failed open zeroizes the buffer");
        }
        for i in 0..sealed.len() {
            let mut b = sealed.clone();
            b[i] ^= 0x80;
            assert_eq!(open_in_place(&key, &nonce, b"ctx", &mut b, &tag), Err(Unauthentic));
        }
    }
}
