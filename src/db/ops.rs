//! The operations the database writes into log transactions, and the body layout that lets
//! one operation be read back without decoding its neighbours.
//!
//! A frame body is a sequence of `len: u32 LE | bincode(LogOp)`. Operations are decoded only
//! from bodies whose frame checksum matched, with the bincode size limit.

use bincode::{Decode, Encode};

use crate::codec;
use crate::model::Schema;

/// One logged operation.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub(crate) enum LogOp {
    /// A new collection with its schema.
    CreateCollection {
        /// Collection name.
        name: String,
        /// Declared fields.
        schema: Schema,
    },
    /// Insert or replace a whole record.
    Upsert(StoredRecord),
    /// Remove a record.
    Delete {
        /// Collection name.
        collection: String,
        /// Record id.
        id: String,
    },
    /// Right to erasure: remove a record and destroy its data key. Recovery uses `key_id` to
    /// finish an erasure interrupted between this tombstone and the keystore rewrite.
    Erase {
        /// Collection name.
        collection: String,
        /// Record id.
        id: String,
        /// The data key destroyed with the record, if it had one.
        key_id: Option<u64>,
    },
    /// Written by compaction: the collection exists with this schema (created if missing,
    /// checked if present), so the compacted log replays on its own or on top of the old one.
    EnsureCollection {
        /// Collection name.
        name: String,
        /// Declared fields.
        schema: Schema,
    },
}

/// A record as it is stored in the log: public data in the clear, PII sealed. Encoded by
/// hand (`record_codec.rs`) so records written before `blind` existed still decode.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRecord {
    /// Collection name.
    pub collection: String,
    /// Record id.
    pub id: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// H3 cell at resolution 15 (raw index).
    pub cell: u64,
    /// Number attributes in schema order.
    pub numbers: Vec<Option<f64>>,
    /// Category attributes in schema order.
    pub categories: Vec<Option<String>>,
    /// Id of the record's data key in the keystore, when it has PII.
    pub key_id: Option<u64>,
    /// Sealed PII envelopes in schema order.
    pub pii: Vec<Option<Vec<u8>>>,
    /// Blind-index values (HMAC of the normalized value) of phone and e-mail PII slots, in
    /// schema order; empty for records written before blind indexes, or without PII.
    pub blind: Vec<Option<[u8; 32]>>,
}

/// Largest body the database puts in one frame before starting another (64 KiB), so a
/// point read of one operation never reads much.
pub(crate) const TARGET_BODY_BYTES: usize = 64 << 10;

/// Most operations in one body, so an operation's index fits the u16 of a checkpoint's
/// log pointer.
pub(crate) const MAX_OPS_PER_BODY: u32 = u16::MAX as u32;

/// Encodes operations into frame bodies of about [`TARGET_BODY_BYTES`], returning each body
/// with its operation count.
/// Large batches are encoded on every core, each thread a contiguous run of operations (so
/// a body may end early at a run boundary; the log does not care where bodies end).
pub(crate) fn encode_bodies(ops: &[LogOp]) -> Result<Vec<(Vec<u8>, u32)>, String> {
    let mut bodies = Vec::new();
    for run in crate::parallel::chunks(ops, PARALLEL_ENCODE_MIN, encode_run) {
        bodies.extend(run?);
    }
    Ok(bodies)
}

/// Batches of at least this many operations are encoded on every core.
const PARALLEL_ENCODE_MIN: usize = 16_384;

fn encode_run(ops: &[LogOp]) -> Result<Vec<(Vec<u8>, u32)>, String> {
    let mut bodies = Vec::new();
    let mut body = Vec::with_capacity(TARGET_BODY_BYTES);
    let mut count = 0u32;
    for op in ops {
        // Encoded in place after a length placeholder; an operation that overflows the
        // body moves to a fresh one.
        let start = body.len();
        body.extend_from_slice(&[0; 4]);
        let n = codec::encode_into(op, &mut body)?;
        let len = u32::try_from(n).map_err(|_| "operation larger than 4 GiB".to_owned())?;
        if count > 0 && (body.len() > TARGET_BODY_BYTES || count == MAX_OPS_PER_BODY) {
            let mut next = Vec::with_capacity(TARGET_BODY_BYTES.max(body.len() - start));
            next.extend_from_slice(body.get(start..).unwrap_or_default());
            body.truncate(start);
            bodies.push((std::mem::replace(&mut body, next), count));
            count = 0;
        }
        let at = body.len() - n - 4;
        if let Some(slot) = body.get_mut(at..at + 4) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
        count += 1;
    }
    if count > 0 {
        bodies.push((body, count));
    }
    Ok(bodies)
}

/// Decodes every operation of a body, checking the count.
pub(crate) fn decode_body(body: &[u8], count: u32) -> Result<Vec<LogOp>, String> {
    let mut ops = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut at = 0usize;
    while at < body.len() {
        let (op, next) = decode_at(body, at)?;
        ops.push(op);
        at = next;
    }
    if ops.len() != count as usize {
        return Err(format!("frame declares {count} operations but holds {}", ops.len()));
    }
    Ok(ops)
}

/// Decodes operation number `index` of a body.
pub(crate) fn decode_one(body: &[u8], index: u32) -> Result<LogOp, String> {
    let mut at = 0usize;
    for _ in 0..index {
        let len = codec::read4(body, at).ok_or("operation index past the end of the frame")?;
        at = at.checked_add(4 + u32::from_le_bytes(len) as usize).ok_or("length overflow")?;
    }
    decode_at(body, at).map(|(op, _)| op)
}

fn decode_at(body: &[u8], at: usize) -> Result<(LogOp, usize), String> {
    let len = codec::read4(body, at).ok_or_else(|| format!("cut-off operation length at body byte {at}"))?;
    let start = at + 4;
    let end = start.checked_add(u32::from_le_bytes(len) as usize).ok_or("length overflow")?;
    let bytes =
        body.get(start..end).ok_or_else(|| format!("operation at body byte {at} runs past the frame"))?;
    Ok((codec::decode(bytes)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(i: usize) -> LogOp {
        LogOp::Delete { collection: "c".into(), id: format!("id-{i}-{}", "x".repeat(i % 50)) }
    }

    #[test]
    fn bodies_round_trip_and_point_reads_match() {
        let ops: Vec<LogOp> = (0..3_000).map(op).collect();
        let bodies = encode_bodies(&ops).unwrap();
        assert!(bodies.len() > 1, "3k ops should span several bodies");
        let mut all = Vec::new();
        for (body, count) in &bodies {
            assert!(body.len() <= TARGET_BODY_BYTES);
            let decoded = decode_body(body, *count).unwrap();
            for (i, d) in decoded.iter().enumerate() {
                assert_eq!(&decode_one(body, u32::try_from(i).unwrap()).unwrap(), d);
            }
            all.extend(decoded);
        }
        assert_eq!(all, ops);
    }

    #[test]
    fn parallel_encoding_round_trips_in_order() {
        let ops: Vec<LogOp> = (0..PARALLEL_ENCODE_MIN * 2 + 7).map(op).collect();
        let bodies = encode_bodies(&ops).unwrap();
        let mut all = Vec::new();
        for (body, count) in &bodies {
            assert!(body.len() <= TARGET_BODY_BYTES);
            all.extend(decode_body(body, *count).unwrap());
        }
        assert_eq!(all, ops);
    }

    #[test]
    fn damaged_bodies_are_errors() {
        let (body, count) = encode_bodies(&[op(1), op(2)]).unwrap().remove(0);
        assert!(decode_body(&body, count + 1).is_err());
        for cut in 0..body.len() {
            assert!(decode_body(&body[..cut], count).is_err() || cut == 0 && count == 0);
        }
        assert!(decode_one(&body, 5).is_err());
    }
}
