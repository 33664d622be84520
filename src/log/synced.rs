//! `log/SYNCED`: how many bytes of the newest segment were synced when the log was last
//! closed. The torn-tail rule cuts an invalid last transaction that no later frame vouches
//! for; with this record, an invalid transaction inside the bytes a close had synced is
//! damage to acknowledged data instead, reported and never cut (a flipped bit in the last
//! import of a database that was closed cleanly was cut silently).
//!
//! Advisory: a missing, unreadable, damaged or stale record (one naming an older segment than
//! the newest, or another first LSN or database) is ignored, which leaves the torn-tail rule
//! as it was. One naming a segment past the newest, with frames in it, means that segment was
//! lost: an error.
//! See FORMAT.md §4.8 for the bytes. The audit log's close record (`audit.synced`,
//! FORMAT.md §9.2) has the same layout under its own magic, read and written by the
//! `*_record` functions here.

use std::path::Path;

use crate::error::Result;
use crate::io::{write_atomic, FileSystem};

/// The record's file name inside the log directory.
pub const SYNCED_FILE: &str = "SYNCED";
/// The eight bytes the record starts with.
pub const SYNCED_MAGIC: [u8; 8] = *b"GEOCRMSY";
/// The eight bytes the audit log's close record (`audit.synced`, the same layout) starts
/// with.
pub const AUDIT_SYNCED_MAGIC: [u8; 8] = *b"GEOCRMAS";
/// The record format version this build writes and reads.
pub const SYNCED_VERSION: u16 = 1;
/// Length of the record in bytes.
pub const SYNCED_LEN: usize = 60;

/// What a close had synced: the first `len` bytes of segment `segment`, whose header names
/// `first_lsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncedMark {
    pub(crate) segment: u64,
    pub(crate) first_lsn: u64,
    pub(crate) len: u64,
}

impl SyncedMark {
    fn encode(&self, magic: &[u8; 8], db_id: &[u8; 16]) -> [u8; SYNCED_LEN] {
        let mut out = [0u8; SYNCED_LEN];
        let fields: [(usize, &[u8]); 6] = [
            (0, magic),
            (8, &SYNCED_VERSION.to_le_bytes()),
            (16, db_id),
            (32, &self.segment.to_le_bytes()),
            (40, &self.first_lsn.to_le_bytes()),
            (48, &self.len.to_le_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(place) = out.get_mut(at..at + bytes.len()) {
                place.copy_from_slice(bytes);
            }
        }
        let crc = crc32fast::hash(out.get(..56).unwrap_or_default());
        if let Some(place) = out.get_mut(56..60) {
            place.copy_from_slice(&crc.to_le_bytes());
        }
        out
    }

    /// The record in `bytes`, if it is whole, intact, of the kind `magic` names and this
    /// database's.
    fn decode(bytes: &[u8], magic: &[u8; 8], db_id: &[u8; 16]) -> Option<SyncedMark> {
        let u64_at = |at: usize| bytes.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes);
        let crc = bytes.get(56..60)?.try_into().ok().map(u32::from_le_bytes)?;
        let intact = bytes.len() == SYNCED_LEN
            && bytes.get(..8) == Some(&magic[..])
            && bytes.get(8..10) == Some(&SYNCED_VERSION.to_le_bytes()[..])
            && bytes.get(10..16).is_some_and(|pad| pad.iter().all(|&b| b == 0))
            && bytes.get(16..32) == Some(&db_id[..])
            && crc32fast::hash(bytes.get(..56)?) == crc;
        intact.then_some(SyncedMark { segment: u64_at(32)?, first_lsn: u64_at(40)?, len: u64_at(48)? })
    }
}

/// The record in `log_dir`, if there is an intact one for this database (errors read as
/// none: the record is advisory).
pub(crate) fn read(fs: &dyn FileSystem, log_dir: &Path, db_id: &[u8; 16]) -> Option<SyncedMark> {
    read_record(fs, &log_dir.join(SYNCED_FILE), &SYNCED_MAGIC, db_id)
}

/// The record of kind `magic` at `path`, if there is an intact one for this database.
pub(crate) fn read_record(
    fs: &dyn FileSystem,
    path: &Path,
    magic: &[u8; 8],
    db_id: &[u8; 16],
) -> Option<SyncedMark> {
    // Never read a large file whole: the record has a fixed length.
    let file = fs.open_read(path).ok()?;
    if file.len() != SYNCED_LEN as u64 {
        return None;
    }
    let mut bytes = [0u8; SYNCED_LEN];
    file.read_exact_at(&mut bytes, 0).ok()?;
    SyncedMark::decode(&bytes, magic, db_id)
}

/// Publishes the record (temp file, fsync, rename, directory fsync).
///
/// # Errors
/// [`crate::Error::Io`]; the previous record (if any) stays, and still holds.
pub(crate) fn write(fs: &dyn FileSystem, log_dir: &Path, db_id: &[u8; 16], mark: SyncedMark) -> Result<()> {
    write_record(fs, log_dir, SYNCED_FILE, &SYNCED_MAGIC, db_id, mark)
}

/// Publishes a record of kind `magic` as `dir/name`.
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn write_record(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    db_id: &[u8; 16],
    mark: SyncedMark,
) -> Result<()> {
    write_atomic(fs, dir, name, &mark.encode(magic, db_id))
}

/// Removes the record: what repair does before it cuts or removes any segment, whose synced
/// bytes it is about to drop on purpose.
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn forget(fs: &dyn FileSystem, log_dir: &Path) -> Result<()> {
    forget_record(fs, log_dir, SYNCED_FILE)
}

/// Removes the record `dir/name`, if there is one.
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn forget_record(fs: &dyn FileSystem, dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    if fs.exists(&path)? {
        fs.remove_file(&path)?;
        fs.sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of FORMAT.md §4.8, pinned (the CRC computed apart, with Python's zlib).
    #[test]
    fn the_layout_is_the_documented_one() {
        let mark = SyncedMark { segment: 3, first_lsn: 77, len: 4096 };
        let hex: String = mark.encode(&SYNCED_MAGIC, &[7; 16]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "47454f43524d5359010000000000000007070707070707070707070707070707\
             03000000000000004d0000000000000000100000000000008a07b577"
        );
    }

    #[test]
    fn a_record_reads_back_and_any_damage_makes_it_none() {
        let mark = SyncedMark { segment: 3, first_lsn: 77, len: 4096 };
        let bytes = mark.encode(&SYNCED_MAGIC, &[7; 16]);
        assert_eq!(SyncedMark::decode(&bytes, &SYNCED_MAGIC, &[7; 16]), Some(mark));
        assert_eq!(SyncedMark::decode(&bytes, &SYNCED_MAGIC, &[8; 16]), None, "another database's");
        assert_eq!(SyncedMark::decode(&bytes, &AUDIT_SYNCED_MAGIC, &[7; 16]), None, "another kind");
        for at in 0..SYNCED_LEN {
            let mut flipped = bytes;
            flipped[at] ^= 0x10;
            assert_eq!(SyncedMark::decode(&flipped, &SYNCED_MAGIC, &[7; 16]), None, "byte {at}");
        }
        for len in 0..SYNCED_LEN {
            assert_eq!(SyncedMark::decode(&bytes[..len], &SYNCED_MAGIC, &[7; 16]), None, "{len} bytes");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(SyncedMark::decode(&longer, &SYNCED_MAGIC, &[7; 16]), None);
    }
}
