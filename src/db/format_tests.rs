//! Golden checks of the on-disk formats described in `FORMAT.md`: exact bytes of the
//! MANIFEST, of `LogOp` encodings, of a frame body and of a first log segment, and an
//! independent re-derivation (HKDF, AAD layouts) that unwraps a data key from the keystore
//! file and opens a PII envelope read from the log. A failure here means a format changed:
//! bump the file's version and update `FORMAT.md`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::Mac;

use super::manifest::{CheckpointFile, Manifest};
use super::ops::{decode_body, encode_bodies, LogOp, StoredRecord};
use crate::codec;
use crate::crypto::RawKey;
use crate::io::MemFs;
use crate::log::{Log, LogConfig};
use crate::model::Schema;
use crate::{Database, LatLon, Options, Record};

/// Parses space-separated hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

const DB_ID: [u8; 16] = *b"0123456789abcdef";
/// H3 cell of (48.8566, 2.3522) at resolution 15.
const PARIS_CELL: u64 = 0x08f1_fb46_6255_50c3;

fn paris() -> StoredRecord {
    StoredRecord {
        collection: "c".into(),
        id: "C-1".into(),
        lat: 48.8566,
        lon: 2.3522,
        cell: PARIS_CELL,
        numbers: vec![Some(1830.0), None],
        categories: vec![Some("gold".into())],
        key_id: None,
        pii: vec![None].into(),
        blind: vec![],
    }
}

fn assert_encodes<T>(value: &T, hex: &str)
where
    T: bincode::Encode + bincode::Decode<()> + PartialEq + std::fmt::Debug,
{
    let bytes = codec::encode(value).unwrap();
    assert_eq!(bytes, unhex(hex), "{value:?}");
    assert_eq!(&codec::decode::<T>(&bytes).unwrap(), value);
}

#[test]
fn paris_cell_is_what_h3o_computes() {
    let cell = h3o::LatLng::new(48.8566, 2.3522).unwrap().to_cell(h3o::Resolution::Fifteen);
    assert_eq!(u64::from(cell), PARIS_CELL);
}

#[test]
fn manifest_v1_file_still_decodes() {
    let m = Manifest { erased_key_ids: None, ..Manifest::new(DB_ID, 1_700_000_000_000) };
    let file = unhex(
        "47 45 4f 43 52 4d 4d 46 01 00 19 00 00 00 0f 18 15 b2 \
         30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 fd 00 68 e5 cf 8b 01 00 00",
    );
    assert_eq!(Manifest::decode(&file, Path::new("MANIFEST")).unwrap(), m);
}

fn example_checkpoint() -> super::manifest::CheckpointRecord {
    super::manifest::CheckpointRecord {
        lsn: 7,
        segment: 2,
        created_unix_ms: 1_700_000_000_001,
        files: vec![CheckpointFile {
            collection: "c".into(),
            name: "0000000000000007-0000.ckpt".into(),
            lsn: 7,
        }],
    }
}

#[test]
fn manifest_v2_file_still_decodes() {
    // Version 2 knew neither the keystore flag nor the erased key ids: read as "no keystore
    // yet" (the first open that finds one sets it) and "not tracked".
    let m = Manifest {
        checkpoint: Some(example_checkpoint()),
        log_floor: 1,
        erased_key_ids: None,
        ..Manifest::new(DB_ID, 1_700_000_000_000)
    };
    assert_eq!(Manifest::decode(&unhex(MANIFEST_V2), Path::new("MANIFEST")).unwrap(), m);
}

/// magic, version 2, frame length 0x44, CRC, then bincode: db id, created (varint u64 0xfd +
/// 8 bytes), Some, lsn 7, segment 2, created, one file ("c", name), log floor 1.
const MANIFEST_V2: &str = "47 45 4f 43 52 4d 4d 46 02 00 44 00 00 00 23 1b 64 dc \
    30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 fd 00 68 e5 cf 8b 01 00 00 \
    01 07 02 fd 01 68 e5 cf 8b 01 00 00 01 01 63 1a \
    30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 37 2d 30 30 30 30 2e 63 6b 70 74 01";

#[test]
fn manifest_v3_file_still_decodes() {
    // Version 3 named each file without an LSN: every file was written at the record's.
    let m = Manifest {
        checkpoint: Some(example_checkpoint()),
        log_floor: 1,
        keystore: true,
        erased_key_ids: Some(vec![3, 300]),
        ..Manifest::new(DB_ID, 1_700_000_000_000)
    };
    assert_eq!(Manifest::decode(&unhex(MANIFEST_V3), Path::new("MANIFEST")).unwrap(), m);
}

#[test]
fn manifest_v4_file_still_decodes() {
    let m = Manifest::decode(&unhex(MANIFEST_V4), Path::new("MANIFEST")).unwrap();
    assert_eq!(m, example_v4());
}

/// The version-4 example: a second collection's file kept from the checkpoint at LSN 3.
fn example_v4() -> Manifest {
    let mut checkpoint = example_checkpoint();
    checkpoint.files.push(CheckpointFile {
        collection: "d".into(),
        name: "0000000000000003-0001.ckpt".into(),
        lsn: 3,
    });
    Manifest {
        checkpoint: Some(checkpoint),
        log_floor: 1,
        keystore: true,
        erased_key_ids: Some(vec![3, 300]),
        ..Manifest::new(DB_ID, 1_700_000_000_000)
    }
}

/// A version field that disagrees with the checksummed payload is damage, whichever way: a
/// version-5 file read as 4 or 6, a version-4 payload read as 3 (whose log floor would have
/// been the checkpoint's LSN, and open would have deleted segments below it; from the
/// file-validation review).
#[test]
fn a_version_field_that_disagrees_with_the_payload_is_damage() {
    let v5 = example_v4().encode().unwrap();
    for version in [1u16, 3, 4, 6, 7, 13, 0x0105] {
        let mut bad = v5.clone();
        bad[8..10].copy_from_slice(&version.to_le_bytes());
        let err = Manifest::decode(&bad, Path::new("MANIFEST")).unwrap_err();
        assert!(matches!(err, crate::Error::Corrupt { offset: 8, .. }), "{version}: {err}");
    }
    // A version-4 file read as a newer version is damage too (read as 1–3 it may decode:
    // only the log-floor check below guards those).
    for version in [5u16, 6, 7] {
        let mut bad = unhex(MANIFEST_V4);
        bad[8..10].copy_from_slice(&version.to_le_bytes());
        let err = Manifest::decode(&bad, Path::new("MANIFEST")).unwrap_err();
        assert!(matches!(err, crate::Error::Corrupt { .. }), "{version}: {err}");
    }
    // A genuine version-3 file without a checkpoint is byte for byte a version-4 payload,
    // and still reads (it was refused as damaged: from the diff review).
    let v3 = Manifest { keystore: true, ..Manifest::new(DB_ID, 1_700_000_000_000) };
    let payload = codec::encode(&v3).unwrap();
    let mut file = b"GEOCRMMF\x03\x00".to_vec();
    codec::encode_frame(&payload, &mut file);
    assert_eq!(Manifest::decode(&file, Path::new("MANIFEST")).unwrap(), v3);
    // A log floor above the checkpoint's replay segment is refused.
    let mut m = example_v4();
    m.log_floor = 3;
    let err = Manifest::decode(&m.encode().unwrap(), Path::new("MANIFEST")).unwrap_err();
    assert!(err.to_string().contains("log floor 3 is above"), "{err}");
}

#[test]
fn manifest_v5_file_bytes() {
    let m = example_v4();
    let file = m.encode().unwrap();
    assert_eq!(file, unhex(MANIFEST_V5), "{}", hex(&file));
    assert_eq!(Manifest::decode(&file, Path::new("MANIFEST")).unwrap(), m);
    // A file newer than its checkpoint is refused.
    let mut newer = m.clone();
    if let Some(c) = newer.checkpoint.as_mut() {
        c.files[1].lsn = 8;
    }
    let err = Manifest::decode(&newer.encode().unwrap(), Path::new("MANIFEST")).unwrap_err();
    assert!(err.to_string().contains("newer than the checkpoint"), "{err}");
}

/// magic, version 5, frame length 6b, CRC, the version again (05), then the version-4
/// payload.
const MANIFEST_V5: &str = "47 45 4f 43 52 4d 4d 46 05 00 6b 00 00 00 81 2b c3 f3 05 \
    30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 fd 00 68 e5 cf 8b 01 00 00 \
    01 07 02 fd 01 68 e5 cf 8b 01 00 00 02 01 63 1a \
    30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 37 2d 30 30 30 30 2e 63 6b 70 74 07 \
    01 64 1a 30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 33 2d 30 30 30 31 2e 63 6b 70 74 03 \
    01 01 01 02 03 fb 2c 01";

/// magic, version 4, frame length, CRC, db id, created, Some, lsn 7, segment 2, created, two
/// files as (collection, name, LSN): ("c", "0000000000000007-0000.ckpt", 7) and ("d",
/// "0000000000000003-0001.ckpt", 3); log floor 1, keystore, the erased key ids 3 and 300.
const MANIFEST_V4: &str = "47 45 4f 43 52 4d 4d 46 04 00 6a 00 00 00 71 35 e5 84 \
    30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 fd 00 68 e5 cf 8b 01 00 00 \
    01 07 02 fd 01 68 e5 cf 8b 01 00 00 02 01 63 1a \
    30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 37 2d 30 30 30 30 2e 63 6b 70 74 07 \
    01 64 1a 30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 33 2d 30 30 30 31 2e 63 6b 70 74 03 \
    01 01 01 02 03 fb 2c 01";

/// As version 2 (with version 3 and frame length 0x4b), then: keystore true (01), Some (01),
/// two erased key ids (02): 3 and 300 (varint 0xfb + u16 LE).
const MANIFEST_V3: &str = "47 45 4f 43 52 4d 4d 46 03 00 4b 00 00 00 a0 c8 26 e2 \
    30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 fd 00 68 e5 cf 8b 01 00 00 \
    01 07 02 fd 01 68 e5 cf 8b 01 00 00 01 01 63 1a \
    30 30 30 30 30 30 30 30 30 30 30 30 30 30 30 37 2d 30 30 30 30 2e 63 6b 70 74 01 \
    01 01 02 03 fb 2c 01";

#[test]
fn log_op_encodings() {
    let schema = Schema::new().pii("name").number("ltv").number("visits").category("tier");
    assert_encodes(
        &LogOp::CreateCollection { name: "c".into(), schema },
        "00 01 63 01 04 6e 61 6d 65 02 03 6c 74 76 06 76 69 73 69 74 73 01 04 74 69 65 72 01 00",
    );
    // A schema written before PII kinds existed (no kind list) reads with text PII fields.
    let old = unhex("00 01 63 01 04 6e 61 6d 65 02 03 6c 74 76 06 76 69 73 69 74 73 01 04 74 69 65 72");
    let LogOp::CreateCollection { schema, .. } = codec::decode::<LogOp>(&old).unwrap() else { panic!() };
    assert_eq!(schema, Schema::new().pii("name").number("ltv").number("visits").category("tier"));
    // Kinds: 0 text, 1 phone, 2 email.
    let crm = Schema::crm();
    assert_encodes(
        &LogOp::CreateCollection { name: "c".into(), schema: crm },
        "00 01 63 04 04 6e 61 6d 65 05 70 68 6f 6e 65 05 65 6d 61 69 6c 07 61 64 64 72 65 73 73          00 00 04 00 01 02 00",
    );
    for bad in ["02 00", "01 03", "01 00 00"] {
        let mut bytes = old.clone();
        bytes.extend(unhex(bad));
        assert!(codec::decode::<LogOp>(&bytes).is_err(), "{bad}");
    }
    assert_encodes(
        &LogOp::Upsert(paris()),
        "01 01 63 03 43 2d 31 76 e0 9c 11 a5 6d 48 40 a8 35 cd 3b 4e d1 02 40 \
         fd c3 50 55 62 46 fb f1 08 02 01 00 00 00 00 00 98 9c 40 00 01 01 04 67 6f 6c 64 00 01 00",
    );
    let sealed = StoredRecord {
        id: "C-2".into(),
        numbers: vec![],
        categories: vec![],
        key_id: Some(300),
        pii: vec![Some(vec![1, 2, 3]), None].into(),
        ..paris()
    };
    assert_encodes(
        &LogOp::Upsert(sealed),
        "01 01 63 03 43 2d 32 76 e0 9c 11 a5 6d 48 40 a8 35 cd 3b 4e d1 02 40 \
         fd c3 50 55 62 46 fb f1 08 00 00 01 fb 2c 01 02 01 03 01 02 03 00",
    );
    // Field 10: 2 slots, Some + 32 raw bytes, None.
    let mut blind = vec![0x02, 0x01];
    blind.extend([0xab; 32]);
    blind.push(0x00);
    let with_blind = StoredRecord {
        id: "C-2".into(),
        numbers: vec![],
        categories: vec![],
        key_id: Some(300),
        pii: vec![Some(vec![1, 2, 3]), None].into(),
        blind: vec![Some([0xab; 32]), None],
        ..paris()
    };
    let bytes = codec::encode(&LogOp::Upsert(with_blind.clone())).unwrap();
    let without =
        codec::encode(&LogOp::Upsert(StoredRecord { blind: vec![], ..with_blind.clone() })).unwrap();
    assert_eq!(bytes, [without, blind].concat());
    assert_eq!(codec::decode::<LogOp>(&bytes).unwrap(), LogOp::Upsert(with_blind));
    assert_encodes(&LogOp::Delete { collection: "c".into(), id: "C-1".into() }, "02 01 63 03 43 2d 31");
    // Variant indexes above 2 are not LogOps.
    assert!(codec::decode::<LogOp>(&[3]).is_err());
}

#[test]
fn frame_body_bytes() {
    let ops = [LogOp::Upsert(paris()), LogOp::Delete { collection: "c".into(), id: "C-1".into() }];
    let bodies = encode_bodies(&ops).unwrap();
    let body = unhex(
        "35 00 00 00 01 01 63 03 43 2d 31 76 e0 9c 11 a5 6d 48 40 a8 35 cd 3b 4e d1 02 40 \
         fd c3 50 55 62 46 fb f1 08 02 01 00 00 00 00 00 98 9c 40 00 01 01 04 67 6f 6c 64 00 01 00 \
         07 00 00 00 02 01 63 03 43 2d 31",
    );
    assert_eq!(bodies, vec![(body.clone(), 2)]);
    assert_eq!(decode_body(&body, 2).unwrap(), ops);
}

#[test]
fn first_segment_bytes() {
    let fs = MemFs::new();
    let (mut log, _) =
        Log::open(Arc::new(fs.clone()), Path::new("/db"), DB_ID, LogConfig::default(), &mut |_| Ok(()))
            .unwrap();
    let (body, n) =
        encode_bodies(&[LogOp::Delete { collection: "c".into(), id: "C-1".into() }]).unwrap().remove(0);
    log.append_txn(&[(&body, n)]).unwrap();
    log.sync().unwrap();
    let segment = unhex(
        "47 45 4f 43 52 4d 4c 47 02 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 \
         30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 61 28 e0 04 \
         20 00 00 00 bf f7 77 43 01 00 00 00 00 00 00 00 01 00 00 00 30 00 00 00 00 00 00 00 00 \
         07 00 00 00 02 01 63 03 43 2d 31",
    );
    assert_eq!(fs.read_all(Path::new("/db/log/000000000001.seg")).unwrap(), segment);
}

/// HKDF-SHA256(ikm = master, salt = db_id, info = label), 32 bytes.
fn hkdf(master: &[u8; 32], db_id: &[u8; 16], label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(db_id), master).expand(label, &mut out).unwrap();
    out
}

/// `u64 LE length | bytes`.
fn lp(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Builds a database with one sealed field, then re-derives every key and associated data
/// from the documented layouts alone.
#[test]
fn keystore_and_envelope_follow_the_documented_derivations() {
    let master = [0x5a; 32];
    let fs = MemFs::new();
    let opts = Options::new().key(RawKey::new(master)).file_system(Arc::new(fs.clone()));
    let db = Database::open("/db", opts).unwrap();
    db.create_collection("c", Schema::new().pii("name")).unwrap();
    let mut b = db.begin_write();
    b.upsert("c", Record::new("C-1", LatLon::new(1.0, 2.0).unwrap()).pii("name", "Ada")).unwrap();
    b.commit().unwrap();
    drop(db);

    // MANIFEST: the database id is the 16 bytes after the payload's version (offset 18).
    let manifest = fs.read_all(Path::new("/db/MANIFEST")).unwrap();
    assert_eq!(manifest[18], 5, "the version, repeated in the payload");
    let db_id: [u8; 16] = manifest[19..35].try_into().unwrap();

    // Keystore header: 99 bytes, CRC over 0..95, key-check value at 63.
    let ks = fs.read_all(Path::new("/db/keystore")).unwrap();
    assert_eq!(&ks[..10], b"GEOCRMKS\x01\x00");
    assert_eq!(ks[10..26], db_id);
    assert_eq!(ks[26..34], 1u64.to_le_bytes(), "next key id is written at creation only");
    assert_eq!(ks[34], 1, "Argon2id v0x13");
    assert_eq!(ks[51..63], unhex("00 00 01 00 03 00 00 00 01 00 00 00")[..], "64 MiB, t=3, p=1");
    let kc_key = hkdf(&master, &db_id, b"geocrm key check v1");
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&kc_key).unwrap();
    mac.update(b"geocrm key check v1");
    mac.update(&db_id);
    assert_eq!(ks[63..95], mac.finalize().into_bytes()[..]);
    assert_eq!(ks[95..99], crc32fast::hash(&ks[..95]).to_le_bytes());

    // One frame holding one entry: count 1, key id 1, "c", "C-1", wrapped [72].
    let frame = &ks[99..];
    let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(frame.len(), 8 + len);
    let payload = &frame[8..];
    assert_eq!(payload.len(), 4 + 8 + 4 + 1 + 4 + 3 + 72);
    let entry = unhex("01 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 63 03 00 00 00 43 2d 31");
    assert_eq!(payload[..24], entry[..], "count 1 | key id 1 | len 1 \"c\" | len 3 \"C-1\"");
    let wrapped = &payload[payload.len() - 72..];
    let kek = XChaCha20Poly1305::new_from_slice(&hkdf(&master, &db_id, b"geocrm kek v1")).unwrap();
    let mut wrap_aad = vec![1u8];
    wrap_aad.extend_from_slice(&db_id);
    lp(&mut wrap_aad, "c");
    lp(&mut wrap_aad, "C-1");
    wrap_aad.extend_from_slice(&1u64.to_le_bytes());
    let data_key = kek
        .decrypt(XNonce::from_slice(&wrapped[..24]), Payload { msg: &wrapped[24..], aad: &wrap_aad })
        .unwrap();

    // The log: segment 1, first transaction creates the collection, second is the upsert.
    let seg = fs.read_all(Path::new("/db/log/000000000001.seg")).unwrap();
    let first_len = u32::from_le_bytes(seg[48..52].try_into().unwrap()) as usize;
    let second = 48 + 8 + first_len;
    let second_len = u32::from_le_bytes(seg[second..second + 4].try_into().unwrap()) as usize;
    let payload = &seg[second + 8..second + 8 + second_len];
    assert_eq!(payload[..8], 2u64.to_le_bytes(), "LSN 2");
    let LogOp::Upsert(rec) = decode_body(&payload[21..], 1).unwrap().remove(0) else {
        panic!("not an upsert")
    };
    assert_eq!(rec.key_id, Some(1));
    let envelope = rec.pii.get(0).unwrap().to_vec();
    assert_eq!(envelope.len(), 1 + 8 + 24 + 3 + 16);
    assert_eq!(envelope[0], 1);
    assert_eq!(envelope[1..9], 1u64.to_le_bytes());
    let mut aad = vec![1u8];
    aad.extend_from_slice(&db_id);
    lp(&mut aad, "c");
    lp(&mut aad, "C-1");
    lp(&mut aad, "name");
    aad.extend_from_slice(&1u64.to_le_bytes());
    let cipher = XChaCha20Poly1305::new_from_slice(&data_key).unwrap();
    let plain = cipher
        .decrypt(XNonce::from_slice(&envelope[9..33]), Payload { msg: &envelope[33..], aad: &aad })
        .unwrap();
    assert_eq!(plain, b"Ada");
}

#[test]
fn manifest_erased_key_ids_out_of_order_are_refused() {
    // `binary_search` relies on the order: a file holding them otherwise is damage.
    for ids in [vec![5, 3], vec![4, 4]] {
        let m = Manifest { erased_key_ids: Some(ids.clone()), ..Manifest::new(DB_ID, 1) };
        let err = Manifest::decode(&m.encode().unwrap(), Path::new("MANIFEST")).unwrap_err();
        assert!(err.to_string().contains("ascending"), "{ids:?}: {err}");
    }
}

#[test]
fn manifest_naming_a_file_outside_the_index_directory_is_refused() {
    // Opening maps the file the manifest names: a path in the name (found by a reviewing
    // helper) had it open, map and mark damaged any file, or wait forever on a named pipe.
    for (name, ok) in [
        ("0000000000000007-0000.ckpt", true),
        ("00000000000000070-10000.ckpt", true),
        ("../0000000000000007-0000.ckpt", false),
        ("/etc/passwd", false),
        ("../../../../tmp/0000000000000007-0000.ckpt", false),
        ("0000000000000007-0000.ckpt/../../x.ckpt", false),
        ("0000000000000007-00a0.ckpt", false),
        ("000000000000007-0000.ckpt", false),
        ("0000000000000007-0000.ckpt.damaged", false),
        ("", false),
    ] {
        let mut checkpoint = example_checkpoint();
        checkpoint.files[0].name = name.into();
        let m = Manifest { checkpoint: Some(checkpoint), ..Manifest::new(DB_ID, 1) };
        let decoded = Manifest::decode(&m.encode().unwrap(), Path::new("MANIFEST"));
        match decoded {
            Ok(back) => assert!(ok && back == m, "{name:?} accepted"),
            Err(e) => assert!(!ok && e.to_string().contains("not one a checkpoint gives"), "{name:?}: {e}"),
        }
    }
}
