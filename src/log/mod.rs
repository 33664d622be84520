//! The append-only log: the database's source of truth.
//!
//! The log does not interpret what it stores. The database hands [`Log::append_txn_with`] a
//! transaction as a list of body lengths, each with the number of operations it holds, and
//! encodes each body into the log's write buffer when asked ([`Log::append_txn`] takes the
//! bodies ready-made); the log
//! gives every operation a log sequence number (LSN, starting at [`FIRST_LSN`]), frames the
//! bodies, and on [`Log::open`] replays complete transactions in LSN order.
//!
//! # Files
//! Segments live in `DIR/log/` and are named `{number:012}.seg` (`000000000001.seg`, …);
//! numbers start at 1 and are consecutive. A segment is created by writing its header to
//! `{name}.tmp`, syncing it, renaming it to its name and syncing the directory, so every
//! segment file that exists has a complete header. Other names in the directory are ignored.
//!
//! # Segment header (48 bytes, integers little-endian)
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `GEOCRMLG` |
//! | 8 | 2 | format version, u16 = 2 (1 is read too) |
//! | 10 | 2 | flags, u16 = 0 (reserved; any other value is corruption) |
//! | 12 | 8 | segment number, u64 (must match the file name) |
//! | 20 | 8 | first LSN, u64: the next LSN when the segment was created |
//! | 28 | 16 | database id |
//! | 44 | 4 | CRC-32 (IEEE) of bytes 0..44, u32 |
//!
//! Checked in order: length, magic, checksum, version (above 2:
//! [`crate::Error::UnsupportedVersion`]), version 0, flags, number, database id. Every
//! failure but the version is [`crate::Error::Corrupt`] at offset 0. Every version keeps the
//! magic, the version and this checksum where they are.
//!
//! # Frames
//! From offset 48 to the end of the file, frames follow back to back, each a
//! [`crate::codec`] frame — `len u32 | crc32(len bytes ++ payload) u32 | payload[len]` —
//! whose payload is:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | `first_lsn`, u64 |
//! | 8 | 4 | `op_count`, u32: the frame's operations take LSNs `first_lsn..first_lsn + op_count` |
//! | 12 | 8 | `durable_offset`, u64: the offset in this segment up to which the writer knew the file was synced when it wrote the frame |
//! | 20 | 1 | flags: bit 0 MORE (more frames of this transaction follow); other bits 0 |
//! | 21 | … | body |
//!
//! A transaction is one or more consecutive frames of one segment, all but the last with
//! MORE set, holding at least one operation in all (so every transaction advances the LSN,
//! and a sealed segment cut at a transaction boundary is caught by the next segment's first
//! LSN). LSNs are contiguous: each frame's `first_lsn` is the previous frame's
//! `first_lsn + op_count`, and a segment header's first LSN continues the previous segment.
//! A valid frame also has `48 <= durable_offset <= its own offset`.
//!
//! # Torn tail or damage
//! Power loss can leave unsynced bytes at the end of the newest segment cut short or
//! garbled; those bytes were never acknowledged and are dropped. Damage to acknowledged bytes
//! must not be dropped silently. The rule:
//!
//! * In every segment but the newest, every byte must belong to a valid frame and the last
//!   transaction must be complete; otherwise [`crate::Error::Corrupt`] at the offending frame.
//! * In the newest segment, let P be the offset of the first invalid frame (truncated, bad
//!   length, bad checksum, undecodable prefix, LSN discontinuity, impossible durable offset,
//!   a transaction without operations),
//!   or of the incomplete transaction at the end of the file. If a valid frame exists after
//!   P whose `durable_offset` is beyond P, the writer had synced the bytes at P before
//!   writing it: that is damage to acknowledged data, [`crate::Error::Corrupt`] at P.
//!   Otherwise the bytes from the start of the transaction containing P were never
//!   acknowledged: [`Log::open`] truncates the segment there and reports it in
//!   [`RecoveryReport::truncated`].
//!
//! The search for such a later frame tries every offset after P, with cheap checks first
//! (length fits, durable offset in `(P, candidate]`, known flags, plausible LSN) so that a
//! checksum is computed only for rare candidates.
//!
//! * When the log was closed ([`Log::close`], which a database's last handle calls), the
//!   close synced the segment and recorded its length in `log/SYNCED`. If that record names
//!   the newest segment (its number and first LSN), an invalid transaction starting below the
//!   recorded length, or a segment shorter than it, is damage: [`crate::Error::Corrupt`].
//!
//! Limitation: after a crash (no close), damage to the last synced frames of the newest
//! segment, with no later frame recording their durability and no close record covering
//! them, is indistinguishable from a torn tail and is truncated.
//!
//! # Durability and failures
//! [`Log::append_txn`] does not sync; [`Log::sync`] does. Before a transaction, a segment
//! longer than [`LogConfig::segment_bytes`] is synced and the next segment created. After any
//! failed write, sync or segment creation, and after a body producer's error or wrong length
//! in [`Log::append_txn_with`], the log is poisoned: every later append or sync
//! returns [`crate::Error::Poisoned`] (a failed fsync is never retried). Reopening recovers
//! from what is in the files. [`Log::open`] syncs the newest segment before appending so that
//! `durable_offset` never claims bytes that were only replayed.

mod replay;
mod segment;
mod synced;
mod writer;

use std::path::{Path, PathBuf};

pub use segment::{MAX_BODY_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION};
pub(crate) use synced::{
    forget as forget_synced, forget_record as forget_synced_record, read as read_synced,
    read_record as read_synced_record, write_record as write_synced_record, SyncedMark,
};
pub use synced::{AUDIT_SYNCED_MAGIC, SYNCED_FILE, SYNCED_LEN, SYNCED_MAGIC, SYNCED_VERSION};
pub use writer::Log;

pub(crate) use replay::{first_frame_lsn, frame_pieces_from, scan, transaction_start, Piece};
pub(crate) use segment::{parse_segment_name, SegmentHeader};

use crate::error::Result;
use crate::io::FileSystem;

/// Path of segment number `number` inside the log directory `log_dir`.
#[must_use]
pub fn segment_path(log_dir: &Path, number: u64) -> PathBuf {
    log_dir.join(segment::segment_name(number))
}

/// The bytes of segment file `path`, refused unread as [`crate::Error::Corrupt`] when the file
/// is longer than any segment can be (the writer starts a new segment rather than pass
/// 4 GiB): a sparse or zero-filled tail of many GiB was read whole, or aborted the process
/// when it could not be allocated.
///
/// # Errors
/// [`crate::Error::Io`]; [`crate::Error::Corrupt`] for a file over the limit.
pub(crate) fn read_segment(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    let len = fs.open_read(path)?.len();
    if len > MAX_SEGMENT_LEN {
        let reason =
            format!("the file has {len} bytes, more than a segment can hold ({MAX_SEGMENT_LEN}): damaged");
        return Err(crate::Error::corrupt(path, MAX_SEGMENT_LEN, reason));
    }
    fs.read(path)
}

/// Whether the log directory `log_dir` is missing or holds no segment file.
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn has_no_segment(fs: &dyn FileSystem, log_dir: &Path) -> Result<bool> {
    Ok(!fs.exists(log_dir)? || segment_numbers(fs, log_dir)?.is_empty())
}

/// The numbers of the segment files in `log_dir`, ascending (other names are not segments).
///
/// # Errors
/// [`crate::Error::Io`] listing the directory.
pub(crate) fn segment_numbers(fs: &dyn FileSystem, log_dir: &Path) -> Result<Vec<u64>> {
    let mut numbers: Vec<u64> = fs.list_dir(log_dir)?.iter().filter_map(|n| parse_segment_name(n)).collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// The most bytes a segment file holds.
pub(crate) const MAX_SEGMENT_LEN: u64 = writer::MAX_SEGMENT_OFFSET;

/// Validates one whole frame read back from a segment (length, checksum, prefix) and
/// returns its body.
///
/// # Errors
/// A message saying what does not match; callers wrap it into [`crate::Error::Corrupt`].
pub fn frame_body(frame: &[u8]) -> std::result::Result<Vec<u8>, String> {
    frame_body_with_lsn(frame).map(|(body, _)| body)
}

/// As [`frame_body`], also returning the LSN of the frame's first operation.
///
/// # Errors
/// As [`frame_body`].
pub fn frame_body_with_lsn(frame: &[u8]) -> std::result::Result<(Vec<u8>, u64), String> {
    match crate::codec::read_frame(frame) {
        crate::codec::FrameRead::Valid { payload, frame_len } if frame_len == frame.len() => {
            segment::FramePrefix::decode_payload(payload)
                .map(|(prefix, body)| (body.to_vec(), prefix.first_lsn))
                .map_err(|e| e.to_string())
        }
        crate::codec::FrameRead::Valid { frame_len, .. } => {
            Err(format!("frame is {frame_len} bytes long, not {} as recorded", frame.len()))
        }
        _ => Err("frame checksum or length mismatch".into()),
    }
}

/// The name of the log's directory inside the database directory.
pub const LOG_DIR: &str = "log";

/// The LSN of the first operation of a new log.
pub const FIRST_LSN: u64 = 1;

/// Settings of the log writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogConfig {
    /// A segment longer than this is closed before the next transaction (default 64 MiB).
    /// A segment can exceed it by one transaction.
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { segment_bytes: 64 << 20 }
    }
}

impl LogConfig {
    /// Sets [`LogConfig::segment_bytes`].
    #[must_use]
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }
}

/// Where a frame lives, to re-read it with [`Log::read_frame_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FramePos {
    /// Segment number.
    pub segment: u64,
    /// Byte offset of the frame (its length field) in the segment.
    pub offset: u64,
    /// Whole frame length: 8-byte frame header, 21-byte prefix and body.
    pub len: u32,
}

/// What [`Log::append_txn`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnReceipt {
    /// LSN of the transaction's first operation.
    pub first_lsn: u64,
    /// The LSN after its last operation (the log's next LSN).
    pub next_lsn: u64,
    /// One position per body, in order.
    pub positions: Vec<FramePos>,
}

impl TxnReceipt {
    /// Bytes the transaction's frames take in the log.
    pub(crate) fn bytes(&self) -> u64 {
        self.positions.iter().map(|p| u64::from(p.len)).sum()
    }
}

/// One frame of a replayed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedFrame {
    /// Where it is.
    pub pos: FramePos,
    /// LSN of its first operation.
    pub first_lsn: u64,
    /// Number of operations (LSNs) it holds.
    pub op_count: u32,
    /// The body as appended.
    pub body: Vec<u8>,
}

/// A complete transaction found by [`Log::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedTxn {
    /// LSN of its first operation.
    pub first_lsn: u64,
    /// The LSN after its last operation.
    pub next_lsn: u64,
    /// Its frames, in order.
    pub frames: Vec<ReplayedFrame>,
}

/// An unacknowledged tail cut off the newest segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The segment file.
    pub file: PathBuf,
    /// The new length: the offset of the first dropped byte.
    pub offset: u64,
    /// How many bytes were dropped.
    pub bytes_dropped: u64,
}

/// What [`Log::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files.
    pub segments: u64,
    /// Complete transactions replayed.
    pub transactions: u64,
    /// Frames of those transactions.
    pub frames: u64,
    /// The LSN after the last replayed transaction.
    pub next_lsn: u64,
    /// The torn tail that was cut off, if any.
    pub truncated: Option<TruncatedTail>,
}

/// What [`verify`] found: the same as [`RecoveryReport`], where `truncated` is the tail
/// [`Log::open`] would cut off.
pub type VerifyReport = RecoveryReport;

/// Checks every segment of the log in `dir/log/` without changing anything and reports what
/// [`Log::open`] would do. A missing log directory is an empty log (no segments).
///
/// # Errors
/// The errors [`Log::open`] would return (except those of `on_txn` and of writing).
pub fn verify(fs: &dyn FileSystem, dir: &Path, db_id: [u8; 16]) -> Result<VerifyReport> {
    verify_from(fs, dir, db_id, None)
}

/// [`verify`] of the segments from `start` on (all of them for `None`), the others left
/// alone: a database checks its log from its log floor, as segments below it are no
/// longer its log (a compaction replaced them; an open removes what is left of them).
///
/// # Errors
/// As [`verify`]; [`crate::Error::Corrupt`] when the segment `start` names is missing.
pub fn verify_from(
    fs: &dyn FileSystem,
    dir: &Path,
    db_id: [u8; 16],
    start: Option<LogStart>,
) -> Result<VerifyReport> {
    let log_dir = dir.join(LOG_DIR);
    if !fs.exists(&log_dir)? {
        let report =
            RecoveryReport { segments: 0, transactions: 0, frames: 0, next_lsn: FIRST_LSN, truncated: None };
        return Ok(report);
    }
    Ok(replay::scan(fs, &log_dir, &db_id, start, &mut |_| Ok(()))?.report)
}

/// Where [`Log::open_from`] starts replaying: a checkpoint holds everything before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStart {
    /// First segment to replay; older segments are kept for point reads but not scanned.
    pub segment: u64,
    /// The LSN that segment must start at, when known (the checkpoint's LSN).
    pub first_lsn: Option<u64>,
}
