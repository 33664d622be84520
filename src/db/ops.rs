//! The operations the database writes into log transactions, and the body layout that lets
//! one operation be read back without decoding its neighbours.
//!
//! A frame body is a sequence of `len: u32 LE | bincode(LogOp)`. Operations are decoded only
//! from bodies whose frame checksum matched, with the bincode size limit.

use bincode::{Decode, Encode};

use super::sealed_slots::SealedSlots;
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
    pub pii: SealedSlots,
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

/// One frame body of a batch: the operations it holds and its encoded length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedBody {
    /// Indexes of the body's operations in the batch.
    pub ops: std::ops::Range<usize>,
    /// Encoded length of the body (a `u32` length before each operation).
    pub len: usize,
}

impl PlannedBody {
    /// The number of operations (at most [`MAX_OPS_PER_BODY`]).
    pub(crate) fn count(&self) -> u32 {
        u32::try_from(self.ops.len()).unwrap_or(u32::MAX)
    }
}

/// Cuts a batch into frame bodies of about [`TARGET_BODY_BYTES`] (an operation that would
/// overflow a non-empty body starts the next one; at most [`MAX_OPS_PER_BODY`] per body)
/// from the operations' encoded lengths, computed without encoding (on every core for large
/// batches). [`encode_body`] then writes each body straight into the log's buffer, so a
/// large transaction is never held encoded in memory.
pub(crate) fn plan_bodies(ops: &[LogOp]) -> Result<Vec<PlannedBody>, String> {
    let lengths = crate::parallel::chunks(ops, PARALLEL_PLAN_MIN, |run| {
        run.iter().map(codec::encoded_len).collect::<Result<Vec<usize>, String>>()
    });
    let mut bodies = Vec::new();
    let (mut first, mut len, mut i) = (0usize, 0usize, 0usize);
    for run in lengths {
        for op_len in run? {
            if u32::try_from(op_len).is_err() {
                return Err("operation larger than 4 GiB".to_owned());
            }
            let count = i - first;
            if count > 0 && (len + 4 + op_len > TARGET_BODY_BYTES || count == MAX_OPS_PER_BODY as usize) {
                bodies.push(PlannedBody { ops: first..i, len });
                (first, len) = (i, 0);
            }
            len += 4 + op_len;
            i += 1;
        }
    }
    if i > first {
        bodies.push(PlannedBody { ops: first..i, len });
    }
    Ok(bodies)
}

/// Batches of at least this many operations are measured on every core.
const PARALLEL_PLAN_MIN: usize = 16_384;

/// Appends the body of `ops` (`len u32 LE | bincode(op)` each) to `out`.
pub(crate) fn encode_body(ops: &[LogOp], out: &mut Vec<u8>) -> Result<(), String> {
    for op in ops {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        let n = codec::encode_into(op, out)?;
        let len = u32::try_from(n).map_err(|_| "operation larger than 4 GiB".to_owned())?;
        if let Some(slot) = out.get_mut(at..at + 4) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
    }
    Ok(())
}

/// Appends `ops` to the log as one transaction, each body encoded straight into the log's
/// write buffer; returns the receipt and the bodies (their operation ranges give each
/// operation's frame). `what` names the batch in errors.
pub(crate) fn append_ops(
    log: &mut crate::log::Log,
    ops: &[LogOp],
    what: &'static str,
) -> crate::error::Result<(crate::log::TxnReceipt, Vec<PlannedBody>)> {
    let invalid = |e: String| crate::error::Error::invalid_argument(what, e);
    let bodies = plan_bodies(ops).map_err(invalid)?;
    let lengths: Vec<(usize, u32)> = bodies.iter().map(|b| (b.len, b.count())).collect();
    let receipt = log.append_txn_with(&lengths, &mut |i, out| {
        let body = bodies.get(i).and_then(|b| ops.get(b.ops.clone())).unwrap_or_default();
        encode_body(body, out).map_err(invalid)
    })?;
    Ok((receipt, bodies))
}

/// Encodes a batch into bodies held in memory, each with its operation count, as
/// [`plan_bodies`] cuts them (for tests).
#[cfg(test)]
pub(crate) fn encode_bodies(ops: &[LogOp]) -> Result<Vec<(Vec<u8>, u32)>, String> {
    let mut bodies = Vec::new();
    for planned in plan_bodies(ops)? {
        let mut body = Vec::with_capacity(planned.len);
        encode_body(ops.get(planned.ops.clone()).unwrap_or_default(), &mut body)?;
        if body.len() != planned.len {
            return Err(format!("body of {} bytes, planned {}", body.len(), planned.len));
        }
        bodies.push((body, planned.count()));
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
    fn parallel_planning_round_trips_in_order() {
        let ops: Vec<LogOp> = (0..PARALLEL_PLAN_MIN * 2 + 7).map(op).collect();
        let bodies = encode_bodies(&ops).unwrap();
        let mut all = Vec::new();
        for (body, count) in &bodies {
            assert!(body.len() <= TARGET_BODY_BYTES);
            all.extend(decode_body(body, *count).unwrap());
        }
        assert_eq!(all, ops);
    }

    #[test]
    fn planned_bodies_match_their_encoding_and_cut_where_the_target_is_passed() {
        // Small operations around ones larger than a body: each large one gets a body alone.
        let big = |i: usize| LogOp::Delete { collection: "c".into(), id: "y".repeat(TARGET_BODY_BYTES + i) };
        let ops: Vec<LogOp> = (0..2_000).map(|i| if i % 700 == 5 { big(i) } else { op(i) }).collect();
        let plan = plan_bodies(&ops).unwrap();
        let bodies = encode_bodies(&ops).unwrap();
        assert_eq!(plan.len(), bodies.len());
        let mut next = 0;
        for (planned, (body, count)) in plan.iter().zip(&bodies) {
            assert_eq!((planned.ops.start, planned.len, planned.count()), (next, body.len(), *count));
            next = planned.ops.end;
            let following = ops.get(planned.ops.end).map(|o| 4 + codec::encoded_len(o).unwrap());
            if *count > 1 {
                assert!(planned.len <= TARGET_BODY_BYTES, "a body of several operations passes the target");
            }
            if let Some(f) = following {
                assert!(planned.len + f > TARGET_BODY_BYTES, "the next operation would have fitted");
            }
        }
        assert_eq!(next, ops.len());
        assert_eq!(plan.iter().filter(|b| b.len > TARGET_BODY_BYTES).count(), 3);
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
