//! The audit log of PII reads: `DIR/audit.log`, append-only and checksummed.
//!
//! Every read that releases PII — [`crate::CollectionReader::reveal`],
//! [`crate::Database::export_subject`], [`crate::CollectionReader::duplicates`] — appends one
//! [`AuditEntry`] (actor, time, action, collection, record ids, field names; never values)
//! and fsyncs it **before** the PII is returned. If the entry cannot be written the read
//! fails and the audit log refuses further entries until the database is reopened (fail
//! closed: no unaudited PII). On by default; [`crate::Options::audit`] turns it off.
//!
//! Recovery follows the keystore's rule: an invalid final frame with no valid frame after
//! it is a torn append and is cut at open; anything else is [`crate::Error::Corrupt`] naming
//! the file and offset. Byte layout: FORMAT.md §9.1.

mod format;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

pub(crate) use format::HEADER_LEN;
pub use format::{AuditAction, AuditEntry};

use crate::codec::{encode_frame, is_torn_tail, read_frame, FrameRead, MAX_FRAME_PAYLOAD};
use crate::error::{Error, Result};
use crate::io::{write_atomic, FileSystem, WritableFile};

/// Name of the audit log inside the database directory.
pub const AUDIT_FILE: &str = "audit.log";

/// Most ids one entry lists; a larger read is recorded as several entries.
const IDS_PER_ENTRY: usize = 10_000;

/// The database's audit log: the file, and the appender when auditing is on.
#[derive(Debug)]
pub(crate) struct AuditLog {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    db_id: [u8; 16],
    actor: String,
    writer: Option<Mutex<Appender>>,
    /// Bytes of a torn final frame cut when it was opened.
    cut_at_open: u64,
}

#[derive(Debug)]
struct Appender {
    file: Option<Box<dyn WritableFile>>,
    poisoned: Option<String>,
}

impl AuditLog {
    /// Opens the audit log of database `db_id` in `dir`. With `enabled`, creates it if
    /// missing (atomically), validates it, cuts a torn final frame and opens it for
    /// appending; call only while holding the database's write lock. Without, nothing is
    /// read or written until [`Self::entries`].
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        enabled: bool,
        actor: &str,
    ) -> Result<AuditLog> {
        let path = dir.join(AUDIT_FILE);
        let mut log = AuditLog { fs, path, db_id, actor: actor.to_owned(), writer: None, cut_at_open: 0 };
        if enabled {
            if log.fs.exists(&log.path)? {
                let (_, valid_len, len) = log.scan()?;
                if valid_len < len {
                    log.fs.truncate(&log.path, valid_len as u64)?;
                    log.cut_at_open = (len - valid_len) as u64;
                }
            } else {
                write_atomic(&*log.fs, dir, AUDIT_FILE, &format::encode_header(&db_id))?;
            }
            let file = log.fs.open_append(&log.path)?;
            log.writer = Some(Mutex::new(Appender { file: Some(file), poisoned: None }));
        }
        Ok(log)
    }

    /// Bytes of a torn final frame [`Self::open`] cut (0 when none).
    pub(crate) fn cut_at_open(&self) -> u64 {
        self.cut_at_open
    }

    /// Every entry, oldest first; an empty list when the file does not exist. A torn final
    /// frame (possible only for a log not opened for writing) is ignored.
    pub(crate) fn entries(&self) -> Result<Vec<AuditEntry>> {
        if !self.fs.exists(&self.path)? {
            return Ok(Vec::new());
        }
        self.scan().map(|(entries, _, _)| entries)
    }

    /// For `verify`: validates the whole file (when there is one) and returns the bytes of a
    /// torn final frame, which an open for writing cuts (0 when none).
    pub(crate) fn check(&self) -> Result<u64> {
        if !self.fs.exists(&self.path)? {
            return Ok(0);
        }
        self.scan().map(|(_, valid_len, len)| (len - valid_len) as u64)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and validates the whole file: its entries, the length of its valid prefix and
    /// the file's length.
    fn scan(&self) -> Result<(Vec<AuditEntry>, usize, usize)> {
        let bytes = self.fs.read(&self.path)?;
        format::check_header(&bytes, &self.path, &self.db_id)?;
        let mut entries = Vec::new();
        let mut at = format::HEADER_LEN;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            let corrupt = |reason: String| Error::corrupt(&self.path, at as u64, reason);
            match read_frame(rest) {
                FrameRead::Valid { payload, frame_len } => {
                    entries.push(format::decode_entry(payload).map_err(corrupt)?);
                    at += frame_len;
                }
                _ if is_torn_tail(rest) => break,
                FrameRead::Truncated => {
                    return Err(corrupt("frame runs past the end of the file but valid frames follow".into()))
                }
                FrameRead::BadLength(n) => return Err(corrupt(format!("frame declares {n} bytes"))),
                FrameRead::BadChecksum => return Err(corrupt("frame checksum mismatch".into())),
            }
        }
        Ok((entries, at, bytes.len()))
    }

    /// Records a read (`action`) of `fields` of records `ids`, durably. A no-op when
    /// auditing is off.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier failure; [`Error::Io`] (which poisons the log).
    pub(crate) fn record(
        &self,
        action: AuditAction,
        collection: &str,
        ids: &[&str],
        fields: &[&str],
    ) -> Result<()> {
        let Some(writer) = &self.writer else { return Ok(()) };
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut frames = Vec::new();
        let mut ends = Vec::new();
        for chunk in ids.chunks(IDS_PER_ENTRY).chain(ids.is_empty().then_some(&[][..])) {
            let entry = AuditEntry {
                unix_ms,
                actor: self.actor.clone(),
                action,
                collection: collection.to_owned(),
                ids: chunk.iter().map(|s| (*s).to_owned()).collect(),
                fields: fields.iter().map(|s| (*s).to_owned()).collect(),
            };
            let payload = format::encode_entry(&entry)?;
            if payload.len() > MAX_FRAME_PAYLOAD as usize {
                return Err(Error::invalid_argument("audit entry", "larger than the frame limit"));
            }
            encode_frame(&payload, &mut frames);
            ends.push(frames.len());
        }
        let mut w = writer.lock();
        if let Some(reason) = &w.poisoned {
            return Err(Error::Poisoned { reason: format!("audit log: {reason}") });
        }
        let file = w.file.as_mut().ok_or_else(|| Error::Poisoned { reason: "audit log closed".into() })?;
        // One fsync per frame: a power loss can then damage only the last, unsynced frame —
        // a torn tail — never an earlier one with a valid frame after it, which would make
        // the log (and so the database) refuse to open.
        let mut start = 0;
        let result = ends.iter().try_for_each(|&end| {
            let frame = frames.get(start..end).unwrap_or_default();
            start = end;
            file.write_all(frame).and_then(|()| file.sync())
        });
        if let Err(e) = &result {
            w.poisoned = Some(e.to_string());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{CrashMode, FaultPlan, MemFs, OpKind};

    #[test]
    fn a_power_loss_during_a_many_frame_entry_leaves_a_log_that_opens() {
        // 25,000 ids make three frames. Whichever of their syncs fails (the power going out
        // before it completes), every crash image opens, holding a prefix of the frames.
        let dir = Path::new("/d");
        let ids: Vec<String> = (0..25_000).map(|i| format!("customer-{i:06}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        for failing in 0..3u64 {
            let fs = MemFs::new();
            fs.create_dir_all(dir).unwrap();
            let log = AuditLog::open(Arc::new(fs.clone()), dir, [1; 16], true, "t").unwrap();
            log.record(AuditAction::Reveal, "c", &["before"], &["name"]).unwrap();
            fs.set_faults(FaultPlan::new().fail_from(OpKind::Sync, failing));
            assert!(log.record(AuditAction::Export, "c", &ids, &["name"]).is_err());
            for seed in 0..40 {
                for mode in CrashMode::ALL {
                    let image = Arc::new(fs.crash_image(seed, mode));
                    let reopened = AuditLog::open(image, dir, [1; 16], true, "t")
                        .unwrap_or_else(|e| panic!("sync {failing} failed, {mode:?} seed {seed}: {e}"));
                    let entries = reopened.entries().unwrap();
                    assert!(entries.len() > failing as usize, "synced frames survive");
                    assert_eq!(entries[0].ids, ["before"]);
                    for (n, e) in entries.iter().skip(1).enumerate() {
                        assert_eq!(e.ids.len(), [10_000, 10_000, 5_000][n]);
                    }
                }
            }
        }
    }
}
