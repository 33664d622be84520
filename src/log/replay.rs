//! Reading the log back: segment order, frame validation and the torn-tail rule.

use std::path::Path;

use super::segment::{segment_name, FramePrefix, SegmentHeader, MIN_FRAME_LEN, SEGMENT_HEADER_LEN};
use super::{FramePos, LogStart, RecoveryReport, ReplayedFrame, ReplayedTxn, TruncatedTail, FIRST_LSN};
use crate::codec::{
    read4, read_frame, valid_frame_at, FrameRead, RangeCrc, FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD,
};
use crate::error::{Error, Result};
use crate::io::FileSystem;

/// What a scan of the whole log found.
#[derive(Debug)]
pub(crate) struct LogScan {
    /// Counts, next LSN and the tail to cut (not yet cut).
    pub(crate) report: RecoveryReport,
    /// Segment numbers replayed, oldest first.
    pub(crate) segments: Vec<u64>,
    /// Every segment number in the directory, oldest first.
    pub(crate) all: Vec<u64>,
}

/// Replays every segment of `log_dir` in order, calling `on_txn` for each complete
/// transaction, and decides what to do with the newest segment's tail (see the module
/// documentation of [`crate::log`]). Nothing is modified.
pub(crate) fn scan(
    fs: &dyn FileSystem,
    log_dir: &Path,
    db_id: &[u8; 16],
    start: Option<LogStart>,
    on_txn: &mut dyn FnMut(ReplayedTxn) -> Result<()>,
) -> Result<LogScan> {
    // The last close's record, read before any segment: a writer that closes while this scan
    // reads (a read-only open takes no lock) only makes the record claim more, and no more
    // than the segments now hold. (A segment with no frame held nothing acknowledged.)
    let mark = super::synced::read(fs, log_dir, db_id);
    let all = super::segment_numbers(fs, log_dir)?;
    if let Some(mark) = mark.filter(|m| m.len > SEGMENT_HEADER_LEN as u64) {
        // Segment numbers only grow, and repair forgets the record before it removes any:
        // a record naming a segment past the newest there is means that segment went.
        if all.last().is_none_or(|&newest| newest < mark.segment) {
            let reason = format!(
                "the log's newest segment is {}, yet it was closed with the first {} bytes of segment {} \
                 synced (log/{}): every write in that segment is gone — restore the database from a backup",
                all.last().map_or_else(|| "missing (it holds no segment at all)".to_owned(), u64::to_string),
                mark.len,
                mark.segment,
                super::synced::SYNCED_FILE
            );
            return Err(Error::corrupt(log_dir.join(segment_name(mark.segment)), 0, reason));
        }
    }
    let segments: Vec<u64> = match start {
        None => all.clone(),
        Some(s) => {
            let from: Vec<u64> = all.iter().copied().filter(|&n| n >= s.segment).collect();
            if from.first() != Some(&s.segment) {
                let path = log_dir.join(segment_name(s.segment));
                // Where the log is read from: after a checkpoint (its LSN known), or the log's
                // floor — its first segment, 1 or where a compaction left it — which was called
                // the segment "the manifest starts replay at" (from a hands-on review).
                let reason = match (all.first(), s.first_lsn) {
                    (None, _) => {
                        "the log holds no segment at all: every write since the checkpoint (without \
                                  one, every write) is gone — restore the database from a backup"
                            .to_owned()
                    }
                    (Some(first), Some(lsn)) => format!(
                        "the segment the checkpoint (LSN {lsn}) starts replay at is missing, with the writes \
                         after the checkpoint in it (the oldest segment there is {first})"
                    ),
                    (Some(first), None) => format!(
                        "the log's first segment is missing (the log floor the MANIFEST records; the oldest \
                         segment there is {first}): the log records it held are gone"
                    ),
                };
                return Err(Error::corrupt(path, 0, reason));
            }
            from
        }
    };
    let mut report = RecoveryReport {
        segments: segments.len() as u64,
        transactions: 0,
        frames: 0,
        next_lsn: FIRST_LSN,
        truncated: None,
    };
    let mut previous: Option<u64> = None;
    for (i, &number) in segments.iter().enumerate() {
        let path = log_dir.join(segment_name(number));
        if let Some(prev) = previous.filter(|&p| p.checked_add(1) != Some(number)) {
            return Err(Error::corrupt(
                &path,
                0,
                format!("segments after {prev} and before {number} are missing"),
            ));
        }
        previous = Some(number);
        let buf = super::read_segment(fs, &path)?;
        let header = SegmentHeader::parse(&buf, &path, number, db_id)?;
        if let Some(expected) = start.and_then(|s| s.first_lsn).filter(|_| i == 0) {
            if header.first_lsn != expected {
                let reason = format!(
                    "segment starts at LSN {} but the checkpoint ends at LSN {expected}",
                    header.first_lsn
                );
                return Err(Error::corrupt(&path, 0, reason));
            }
        }
        if i > 0 && header.first_lsn != report.next_lsn {
            let reason = format!(
                "segment starts at LSN {} but the previous segment ends at LSN {}",
                header.first_lsn, report.next_lsn
            );
            return Err(Error::corrupt(&path, 0, reason));
        }
        let seg = scan_segment(&buf, &header, on_txn)?;
        report.transactions += seg.txns;
        report.frames += seg.frames;
        report.next_lsn = seg.next_lsn;
        // What the last close had synced of this segment, if it is the newest and that
        // close's (see `synced`).
        let synced = mark
            .filter(|m| i + 1 == segments.len() && m.segment == number && m.first_lsn == header.first_lsn)
            .map(|m| m.len);
        if let Some(synced) = synced.filter(|&len| (buf.len() as u64) < len) {
            let reason = format!(
                "the segment ends at byte {}, but the log was closed with its first {synced} bytes \
                 synced (log/{}): acknowledged bytes were cut off",
                buf.len(),
                super::synced::SYNCED_FILE
            );
            return Err(Error::corrupt(&path, buf.len() as u64, reason));
        }
        let Some(torn) = seg.torn else { continue };
        if i + 1 < segments.len() {
            return Err(Error::corrupt(
                &path,
                torn.bad as u64,
                format!("{} in a sealed segment", torn.reason),
            ));
        }
        if let Some(found) = acknowledged_after(&buf, torn.bad, torn.lsn) {
            let reason = match found {
                Acknowledged::Frame { at, durable } => format!(
                    "{}, yet the valid frame at offset {at} records that bytes up to {durable} were durable",
                    torn.reason
                ),
                Acknowledged::TooManyCandidates => format!(
                    "{}, followed by more than {MAX_ACK_CANDIDATES} places that look like frames \
                     recording it durable: not a torn append",
                    torn.reason
                ),
            };
            return Err(Error::corrupt(&path, torn.bad as u64, reason));
        }
        if let Some(synced) = synced.filter(|&len| (torn.keep as u64) < len) {
            let reason = format!(
                "{}, yet the log was closed with the first {synced} bytes of this segment synced \
                 (log/{}): damage to acknowledged data, not a torn append",
                torn.reason,
                super::synced::SYNCED_FILE
            );
            return Err(Error::corrupt(&path, torn.bad as u64, reason));
        }
        report.truncated = Some(TruncatedTail {
            file: path,
            offset: torn.keep as u64,
            bytes_dropped: (buf.len() - torn.keep) as u64,
        });
    }
    Ok(LogScan { report, segments, all })
}

/// The result of replaying one segment.
struct SegmentScan {
    txns: u64,
    frames: u64,
    /// The LSN after the last complete transaction.
    next_lsn: u64,
    torn: Option<Torn>,
}

/// Where a segment stops being a sequence of complete transactions.
struct Torn {
    /// Offset of the first invalid frame, or of the incomplete transaction at the end.
    bad: usize,
    /// Offset to truncate to: the start of the transaction `bad` falls in.
    keep: usize,
    /// The LSN the frame at `bad` should have started with.
    lsn: u64,
    reason: String,
}

fn scan_segment(
    buf: &[u8],
    header: &SegmentHeader,
    on_txn: &mut dyn FnMut(ReplayedTxn) -> Result<()>,
) -> Result<SegmentScan> {
    let mut out = SegmentScan { txns: 0, frames: 0, next_lsn: header.first_lsn, torn: None };
    let mut at = SEGMENT_HEADER_LEN;
    let mut lsn = header.first_lsn;
    let mut txn_start = at;
    let mut pending = Vec::new();
    while at < buf.len() {
        let frame = match check_frame(buf, at, lsn) {
            Ok(frame) => frame,
            Err(reason) => {
                out.torn = Some(Torn { bad: at, keep: txn_start, lsn, reason });
                return Ok(out);
            }
        };
        if !frame.prefix.more && frame.next_lsn == out.next_lsn {
            let reason = "transaction without operations".to_owned();
            out.torn = Some(Torn { bad: at, keep: txn_start, lsn, reason });
            return Ok(out);
        }
        let pos = FramePos { segment: header.number, offset: at as u64, len: frame.len as u32 };
        let (first_lsn, op_count) = (frame.prefix.first_lsn, frame.prefix.op_count);
        pending.push(ReplayedFrame { pos, first_lsn, op_count, body: frame.body.to_vec() });
        at += frame.len;
        lsn = frame.next_lsn;
        if !frame.prefix.more {
            let frames = std::mem::take(&mut pending);
            out.txns += 1;
            out.frames += frames.len() as u64;
            on_txn(ReplayedTxn { first_lsn: out.next_lsn, next_lsn: lsn, frames })?;
            out.next_lsn = lsn;
            txn_start = at;
        }
    }
    if !pending.is_empty() {
        let reason = "the segment ends inside a transaction".to_owned();
        out.torn = Some(Torn { bad: txn_start, keep: txn_start, lsn: out.next_lsn, reason });
    }
    Ok(out)
}

/// A frame that passed every check.
struct Frame<'a> {
    /// Whole frame length, header included.
    len: usize,
    prefix: FramePrefix,
    body: &'a [u8],
    /// `first_lsn + op_count`.
    next_lsn: u64,
}

/// Validates the frame at offset `at` of a segment's bytes: length, checksum, prefix,
/// LSN continuity (`expected_lsn`) and a durable offset between the header and `at`.
fn check_frame(buf: &[u8], at: usize, expected_lsn: u64) -> Result<Frame<'_>, String> {
    let (payload, len) = match read_frame(buf.get(at..).unwrap_or_default()) {
        FrameRead::Valid { payload, frame_len } => (payload, frame_len),
        FrameRead::Truncated => return Err("truncated frame".into()),
        FrameRead::BadLength(n) => return Err(format!("frame declares {n} payload bytes, over the limit")),
        FrameRead::BadChecksum => return Err("frame checksum mismatch".into()),
    };
    let (prefix, body) = FramePrefix::decode_payload(payload).map_err(|e| e.to_string())?;
    if prefix.first_lsn != expected_lsn {
        return Err(format!("frame starts at LSN {} where {expected_lsn} was expected", prefix.first_lsn));
    }
    let next_lsn = prefix
        .first_lsn
        .checked_add(u64::from(prefix.op_count))
        .ok_or_else(|| "frame LSN range overflows".to_owned())?;
    let durable = prefix.durable_offset;
    if durable < SEGMENT_HEADER_LEN as u64 || durable > at as u64 {
        return Err(format!("frame records durable offset {durable}, impossible at offset {at}"));
    }
    Ok(Frame { len, prefix, body, next_lsn })
}

/// Looks past the first invalid frame at `bad` for a valid frame whose durable offset is
/// beyond `bad`: proof that the bytes at `bad` had been acknowledged as durable. Returns
/// that frame's offset and durable offset.
///
/// Every offset is a candidate, so cheap plausibility checks come before the checksum:
/// a length that fits, a durable offset in `(bad, candidate]`, known flags, and a first LSN
/// no lower than `lsn` and no higher than the frames in between could have consumed.
///
/// At most [`MAX_ACK_CANDIDATES`] candidates are checksummed (a crafted segment with a
/// plausible frame every few bytes took seconds per 256 MiB at every open): past that the
/// bytes are not a torn append either, and the answer is [`Acknowledged::TooManyCandidates`].
fn acknowledged_after(buf: &[u8], bad: usize, lsn: u64) -> Option<Acknowledged> {
    let mut crcs = None;
    let mut checked = 0usize;
    let mut at = bad + 1;
    while at + MIN_FRAME_LEN <= buf.len() {
        let candidate = at;
        at += 1;
        let Some(len) = read4(buf, candidate).map(u32::from_le_bytes) else { break };
        let payload_at = candidate + FRAME_HEADER_LEN;
        let Some(payload) = buf.get(payload_at..payload_at + len.min(MAX_FRAME_PAYLOAD) as usize) else {
            continue;
        };
        let Ok((prefix, _)) = FramePrefix::decode_payload(payload) else { continue };
        if len > MAX_FRAME_PAYLOAD
            || prefix.durable_offset <= bad as u64
            || prefix.durable_offset > candidate as u64
        {
            continue;
        }
        let window = (((candidate - bad) / MIN_FRAME_LEN) as u64 + 1).saturating_mul(u64::from(u32::MAX));
        if prefix.first_lsn < lsn || prefix.first_lsn - lsn > window {
            continue;
        }
        // Checksummed through the prefix CRCs: each of many candidates hashing its payload
        // afresh made a crafted tail take hours.
        if checked == MAX_ACK_CANDIDATES {
            return Some(Acknowledged::TooManyCandidates);
        }
        checked += 1;
        let crcs = crcs.get_or_insert_with(|| RangeCrc::new(buf));
        if valid_frame_at(buf, candidate, crcs) {
            return Some(Acknowledged::Frame { at: candidate, durable: prefix.durable_offset });
        }
    }
    None
}

/// What [`acknowledged_after`] found past an invalid frame.
#[derive(Debug, PartialEq, Eq)]
enum Acknowledged {
    /// A valid frame at `at` recording bytes up to `durable` as durable.
    Frame { at: usize, durable: u64 },
    /// More plausible frames than are checked.
    TooManyCandidates,
}

/// Most candidate frames [`acknowledged_after`] checksums: a torn append has next to none
/// (its own frames record a durable offset before it).
const MAX_ACK_CANDIDATES: usize = 100_000;

/// The first LSN recorded by the frame right after a segment's header, if that frame is
/// valid: lets `repair` rebuild a damaged segment header from the frames it introduces.
pub(crate) fn first_frame_lsn(segment: &[u8]) -> Option<u64> {
    match read_frame(segment.get(SEGMENT_HEADER_LEN..)?) {
        FrameRead::Valid { payload, .. } => {
            FramePrefix::decode_payload(payload).ok().map(|(p, _)| p.first_lsn)
        }
        _ => None,
    }
}

/// A valid frame's body, as [`frame_pieces_from`] reads it.
pub(crate) struct FrameBody<'a> {
    /// Where the frame starts in the segment.
    pub at: usize,
    /// The whole frame's length, header included.
    pub len: usize,
    /// The operations' bytes.
    pub body: &'a [u8],
    /// The LSN of its first operation.
    pub first_lsn: u64,
    /// How many operations.
    pub op_count: u32,
    /// The MORE flag: the transaction goes on in the next frame.
    pub more: bool,
}

/// What [`frame_pieces_from`] finds in a segment, in order.
pub(crate) enum Piece<'a> {
    /// A frame whose checksum and prefix hold.
    Frame(FrameBody<'a>),
    /// A run of bytes that could not be read as valid frames: `len` bytes from `at`.
    /// `one_frame`: the run is exactly one frame stepped over by its declared length, with a
    /// valid frame or the segment's end right after it, which bears that length out. Its
    /// bytes are never decoded (their checksum failed).
    Unread {
        /// Where the run starts.
        at: usize,
        /// How many bytes.
        len: usize,
        /// Whether it is one frame whose length the next frame bears out.
        one_frame: bool,
    },
}

/// For `repair`, listing what it drops: the valid frames of `segment` from byte `at` on
/// (bodies with their LSNs, operation counts and MORE flags: whether the transaction goes on
/// in the next frame), read one after the other, and the runs of bytes between them that
/// could not be read as frames. A frame that is not valid is stepped over by its declared
/// length (consecutive ones make one run); a declared length that does not fit ends the
/// reading with a run to the segment's end.
pub(crate) fn frame_pieces_from(segment: &[u8], mut at: usize) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    // The run being stepped over: where it starts and how many frames it holds so far.
    let mut run: Option<(usize, usize)> = None;
    let close = |pieces: &mut Vec<Piece<'_>>,
                 run: &mut Option<(usize, usize)>,
                 end: usize,
                 borne_out: bool| {
        if let Some((start, frames)) = run.take() {
            pieces.push(Piece::Unread { at: start, len: end - start, one_frame: borne_out && frames == 1 });
        }
    };
    while let Some(rest) = segment.get(at..).filter(|r| !r.is_empty()) {
        let valid = match read_frame(rest) {
            FrameRead::Valid { payload, frame_len } => {
                FramePrefix::decode_payload(payload).ok().map(|(p, body)| (p, body, frame_len))
            }
            _ => None,
        };
        if let Some((prefix, body, len)) = valid {
            close(&mut pieces, &mut run, at, true);
            pieces.push(Piece::Frame(FrameBody {
                at,
                len,
                body,
                first_lsn: prefix.first_lsn,
                op_count: prefix.op_count,
                more: prefix.more,
            }));
            at += len;
            continue;
        }
        let declared = read4(rest, 0).map(u32::from_le_bytes).filter(|&len| len <= MAX_FRAME_PAYLOAD);
        let step = declared.map(|len| FRAME_HEADER_LEN + len as usize).filter(|&n| n <= rest.len());
        run.get_or_insert((at, 0)).1 += 1;
        match step {
            Some(n) => at += n,
            None => {
                close(&mut pieces, &mut run, segment.len(), false);
                return pieces;
            }
        }
    }
    close(&mut pieces, &mut run, segment.len(), true);
    pieces
}

/// For `repair`: where the transaction holding the frame at `offset` starts in `segment`
/// (at `offset` itself when the frame before it ends a transaction, or the segment's first
/// frame when none before it does): the frames between are an incomplete transaction once
/// `offset` is cut, which the next open would cut too. With it, the LSN of the operation
/// there, from the frames before it (`first_lsn`: the segment header's), when they tell.
pub(crate) fn transaction_start(segment: &[u8], offset: usize, first_lsn: u64) -> (usize, Option<u64>) {
    let (mut at, mut start) = (SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN);
    let mut start_lsn = Some(first_lsn);
    while at < offset {
        let Some(rest) = segment.get(at..) else { break };
        let FrameRead::Valid { payload, frame_len } = read_frame(rest) else { break };
        let Ok((prefix, _)) = FramePrefix::decode_payload(payload) else { break };
        at += frame_len;
        if !prefix.more {
            start = at;
            start_lsn = prefix.first_lsn.checked_add(u64::from(prefix.op_count));
        }
    }
    if start > offset {
        return (offset, None);
    }
    (start, start_lsn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::segment::FramePrefix;

    #[test]
    fn a_tail_of_plausible_frame_headers_is_checked_in_linear_time() {
        // After a bad frame, a fake frame header every 29 bytes, each plausible (its length
        // reaches the end, durable offset its own, the expected LSN) but with a wrong CRC:
        // each was checksummed afresh, O(n²) — hours for a 64 MiB tail (found by a reviewing
        // helper). Now the prefix CRCs are computed once.
        let len = 16 << 20;
        let mut buf = vec![0u8; len];
        let bad = SEGMENT_HEADER_LEN;
        let mut at = bad + 1;
        while at + MIN_FRAME_LEN <= len {
            let payload = (len - at - FRAME_HEADER_LEN) as u32;
            let prefix = FramePrefix { first_lsn: 7, op_count: 1, durable_offset: at as u64, more: false };
            buf[at..at + 4].copy_from_slice(&payload.to_le_bytes());
            buf[at + 4..at + 8].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
            buf[at + 8..at + MIN_FRAME_LEN].copy_from_slice(&prefix.to_bytes());
            at += MIN_FRAME_LEN;
        }
        let started = std::time::Instant::now();
        // Fewer candidates than the cap: all checked, none valid.
        let short = &buf[..1 << 20];
        assert_eq!(acknowledged_after(short, bad, 7), None);
        // (Linear: a fraction of a second optimized; quadratic: minutes.)
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
        // 578,000 of them: past the cap, the tail is not a torn append (from the log review:
        // a 4 GiB segment of them took a minute at every open).
        assert_eq!(acknowledged_after(&buf, bad, 7), Some(Acknowledged::TooManyCandidates));
        // A valid one among them is still found.
        let mut frame = Vec::new();
        let prefix = FramePrefix { first_lsn: 7, op_count: 1, durable_offset: 4096, more: false };
        let mut payload = Vec::new();
        prefix.encode_payload(b"body", &mut payload);
        crate::codec::encode_frame(&payload, &mut frame);
        let at = 4096 + 3 * MIN_FRAME_LEN + 1;
        buf[at..at + frame.len()].copy_from_slice(&frame);
        assert_eq!(acknowledged_after(&buf, bad, 7), Some(Acknowledged::Frame { at, durable: 4096 }));
    }
}
