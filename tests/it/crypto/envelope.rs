//! Envelope seal/open: binding to context, tamper and truncation detection, nonce freshness.

use std::collections::HashSet;

use geocrm::crypto::{open, seal, sealed_key_id, DataKey, FieldContext, Sealed, ENVELOPE_OVERHEAD};
use geocrm::Error;

const CTX: FieldContext<'static> =
    FieldContext { db_id: [7; 16], collection: "customers", record_id: "cust-42", field: "email", key_id: 9 };

fn is_decrypt_error(r: geocrm::Result<geocrm::crypto::Pii>, ctx: &FieldContext<'_>) -> bool {
    matches!(r, Err(Error::Decrypt { collection, id, field })
        if collection == ctx.collection && id == ctx.record_id && field == ctx.field)
}

#[test]
fn round_trip() {
    let dk = DataKey::generate();
    for text in ["grace@navy.mil", "", "Ünïcødé 🚀 address line\nsecond line", &"x".repeat(100_000)] {
        let sealed = seal(&dk, &CTX, text);
        assert_eq!(sealed.len(), text.len() + ENVELOPE_OVERHEAD);
        assert_eq!(sealed_key_id(&sealed), Some(9));
        let stored = Sealed::from_bytes(sealed.as_bytes().to_vec());
        assert_eq!(open(&dk, &CTX, &stored).unwrap().expose(), text);
        if !text.is_empty() {
            let needle = &text.as_bytes()[..text.len().min(8)];
            assert!(!sealed.as_bytes().windows(needle.len()).any(|w| w == needle), "plaintext visible");
        }
    }
}

#[test]
fn moved_ciphertext_fails() {
    let dk = DataKey::generate();
    let sealed = seal(&dk, &CTX, "grace@navy.mil");
    let moved = [
        FieldContext { record_id: "cust-43", ..CTX },
        FieldContext { field: "phone", ..CTX },
        FieldContext { collection: "leads", ..CTX },
        FieldContext { key_id: 10, ..CTX },
        FieldContext { db_id: [8; 16], ..CTX },
        // Boundary shifts between adjacent strings must not collide.
        FieldContext { collection: "customerscust-42", record_id: "", ..CTX },
        FieldContext { record_id: "cust-42email", field: "", ..CTX },
    ];
    for ctx in &moved {
        assert!(is_decrypt_error(open(&dk, ctx, &sealed), ctx), "{ctx:?}");
    }
    // Rewriting the stored key id to match another context does not help either.
    let mut relabeled = sealed.as_bytes().to_vec();
    relabeled[1..9].copy_from_slice(&10u64.to_le_bytes());
    let ctx10 = FieldContext { key_id: 10, ..CTX };
    assert!(is_decrypt_error(open(&dk, &ctx10, &Sealed::from_bytes(relabeled)), &ctx10));
    assert!(is_decrypt_error(open(&DataKey::generate(), &CTX, &sealed), &CTX));
}

#[test]
fn every_bit_flip_fails() {
    let dk = DataKey::generate();
    let sealed = seal(&dk, &CTX, "Grace Hopper");
    let bytes = sealed.as_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(is_decrypt_error(open(&dk, &CTX, &Sealed::from_bytes(bad)), &CTX), "bit {bit}");
    }
}

#[test]
fn every_truncation_and_extension_fails() {
    let dk = DataKey::generate();
    let sealed = seal(&dk, &CTX, "Grace Hopper");
    let bytes = sealed.as_bytes();
    for cut in 0..bytes.len() {
        assert!(
            is_decrypt_error(open(&dk, &CTX, &Sealed::from_bytes(bytes[..cut].to_vec())), &CTX),
            "cut {cut}"
        );
        assert!(
            is_decrypt_error(open(&dk, &CTX, &Sealed::from_bytes(bytes[cut..].to_vec())), &CTX) || cut == 0
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(is_decrypt_error(open(&dk, &CTX, &Sealed::from_bytes(longer)), &CTX));
    assert_eq!(sealed_key_id(&Sealed::from_bytes(bytes[..ENVELOPE_OVERHEAD - 1].to_vec())), None);
}

fn assert_unique_nonces(n: usize) {
    let dk = DataKey::generate();
    let mut seen = HashSet::with_capacity(n);
    for _ in 0..n {
        let sealed = seal(&dk, &CTX, "");
        let nonce: [u8; 24] = sealed.as_bytes()[9..33].try_into().unwrap();
        assert!(seen.insert(nonce), "nonce repeated after {} seals", seen.len());
    }
}

#[test]
fn nonces_unique_over_100k_seals() {
    assert_unique_nonces(100_000);
}

/// About 4 s in a debug build (under the 10 s budget, so it runs by default).
#[test]
fn nonces_unique_over_1m_seals() {
    assert_unique_nonces(1_000_000);
}
