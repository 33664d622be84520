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
//! it is a torn append and is cut at open; anything else is damage — and so is a damaged,
//! cut or missing end of `audit.log` that the close record ([`AUDIT_SYNCED_FILE`]) says the
//! last clean close had synced. Damage does not keep
//! the database from opening (writes, queries, checkpoints and erasures need no audit
//! entry), but every read of PII then fails with [`crate::Error::Corrupt`] naming the file
//! and offset, until `repair` cuts the file there (fail closed). Byte layout: FORMAT.md
//! §9.1.
//!
//! **Sealed files.** Once `audit.log` holds 1 MiB, it is renamed `audit-N.log` (`N` the
//! time of sealing in milliseconds, or one more than the highest `N` in the directory if
//! that is later: increasing, and not reused when old files are archived) and a new one is
//! started: a writable open checks `audit.log` only, so its cost stays bounded however many
//! reads a database has recorded. [`crate::Database::audit_entries`] and `verify` read every
//! file; `repair` checks them all.

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

/// Name of the audit log's close record inside the database directory: how many bytes of
/// `audit.log` were synced when a writable handle last closed, and the newest sealed file
/// then (FORMAT.md §9.2). With it, a damaged last entry of a log that was closed cleanly —
/// every entry is synced before the read it records returns — is damage, reported, not a
/// torn append cut silently; and so is a shorter or missing `audit.log`.
pub const AUDIT_SYNCED_FILE: &str = "audit.synced";

/// The damage the close record shows in `audit.log`, whose valid frames end at `valid_len`
/// of its `file_len` bytes (`None`: the file is missing), when the last close had synced
/// `vouched` bytes of it (`None`: no record that holds).
fn vouched_damage(vouched: Option<u64>, valid_len: usize, file_len: Option<usize>) -> Option<(u64, String)> {
    let v = vouched?;
    let said = format!("the database's last close had synced {v} bytes of it");
    match file_len {
        None => Some((0, format!("the file is missing, though {said}"))),
        Some(_) if valid_len as u64 >= v => None,
        Some(len) if valid_len < len => Some((
            valid_len as u64,
            format!(
                "the last {} bytes are not a whole entry, though {said}: damage, not a torn append",
                len - valid_len
            ),
        )),
        Some(len) => {
            Some((len as u64, format!("the file ends at byte {len}, though {said}: entries are missing")))
        }
    }
}

/// Removes the close record: what `repair` does before it changes an audit file, whose
/// synced bytes it drops on purpose.
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn forget_close_record(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    crate::log::forget_synced_record(fs, dir, AUDIT_SYNCED_FILE)
}

/// Most ids one entry lists; a larger read is recorded as several entries.
const IDS_PER_ENTRY: usize = 10_000;

/// `audit.log` is sealed once it holds this many bytes (about ten thousand reveals).
pub(crate) const ROLL_BYTES: u64 = 1 << 20;

/// Tries of a read of every file before giving up, when files keep being sealed under it.
const READ_TRIES: usize = 8;

/// The name of sealed audit file number `n`.
fn sealed_name(n: u64) -> String {
    format!("audit-{n:013}.log")
}

/// The number of a sealed audit file's name.
fn parse_sealed_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".log")?;
    // 13 digits and more (milliseconds): an archive of the user's such as `audit-2024.log`
    // is not one.
    if (13..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok().filter(|&n| n > 0)
    } else {
        None
    }
}

/// The damage of a sealed file whose valid frames end before the file does (`valid_len` of
/// `file_len` bytes): it was whole when sealed, so a torn final frame is damage.
fn sealed_torn(path: &Path, valid_len: usize, file_len: usize) -> Option<Error> {
    (valid_len < file_len).then(|| {
        let reason = "the last bytes are not a whole entry, though the file was whole when it was sealed";
        Error::corrupt(path, valid_len as u64, reason)
    })
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Most bytes [`remove_damaged_frame`] reads to splice a file (an audit file is sealed at
/// [`ROLL_BYTES`]; a larger one is cut instead).
const MAX_SPLICE_BYTES: u64 = 64 << 20;
/// Most bytes [`remove_damaged_frame`] checksums looking for where the entries after the
/// damage start (a crafted tail of plausible lengths, `01 01 01 …`, declares a frame at every
/// offset: it is cut instead, as the open's torn-tail check caps the same work).
const MAX_SPLICE_WORK: usize = 256 << 20;

/// Removes the damaged frame starting at `at` from audit file `file` and keeps the entries
/// after it, rewriting the file atomically: `Some(bytes dropped)`, or `None` when `at` is not
/// a frame's start or no run of valid entry frames from a later offset reaches the end of
/// the file exactly — the damaged frame's own declared end is tried first, then every offset
/// after it (then the caller cuts the file at `at`, as before: `repair` dropped the intact
/// entries after one damaged entry; from a hands-on review).
///
/// # Errors
/// [`crate::Error::Io`].
pub(crate) fn remove_damaged_frame(fs: &dyn FileSystem, file: &Path, at: u64) -> Result<Option<u64>> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else {
        return Ok(None);
    };
    let len = fs.open_read(file)?.len();
    if len > MAX_SPLICE_BYTES || at < format::HEADER_LEN as u64 || at >= len {
        return Ok(None);
    }
    let bytes = fs.read(file)?;
    let at = usize::try_from(at).unwrap_or(usize::MAX);
    if !crate::codec::frames_reach(&bytes, format::HEADER_LEN, at) {
        return Ok(None);
    }
    let mut work = 0usize;
    // The frame at `p`, if it is a valid entry frame (its checksum counted in `work`).
    let entry_at = |p: usize, work: &mut usize| -> Option<usize> {
        let declared = crate::codec::read4(&bytes, p).map_or(usize::MAX, |b| u32::from_le_bytes(b) as usize);
        if declared > bytes.len().saturating_sub(p).saturating_sub(crate::codec::FRAME_HEADER_LEN) {
            return None;
        }
        *work += declared + crate::codec::FRAME_HEADER_LEN;
        match bytes.get(p..).map(read_frame) {
            Some(FrameRead::Valid { payload, frame_len }) if format::decode_entry(payload).is_ok() => {
                Some(frame_len)
            }
            _ => None,
        }
    };
    // Whether valid entry frames run from `p` to the end exactly.
    let runs_to_end = |mut p: usize, work: &mut usize| {
        while p < bytes.len() && *work <= MAX_SPLICE_WORK {
            match entry_at(p, work) {
                Some(frame_len) => p += frame_len,
                None => return false,
            }
        }
        p == bytes.len()
    };
    let declared_end = crate::codec::read4(&bytes, at).map(|b| {
        at.saturating_add(crate::codec::FRAME_HEADER_LEN).saturating_add(u32::from_le_bytes(b) as usize)
    });
    let mut next = declared_end.filter(|&q| q > at && q < bytes.len() && runs_to_end(q, &mut work));
    if next.is_none() {
        for q in at + 1..bytes.len() {
            if work > MAX_SPLICE_WORK {
                return Ok(None);
            }
            if runs_to_end(q, &mut work) {
                next = Some(q);
                break;
            }
        }
    }
    let Some(next) = next.filter(|_| work <= MAX_SPLICE_WORK) else { return Ok(None) };
    let (Some(before), Some(after)) = (bytes.get(..at), bytes.get(next..)) else { return Ok(None) };
    let mut out = Vec::with_capacity(before.len() + after.len());
    out.extend_from_slice(before);
    out.extend_from_slice(after);
    write_atomic(fs, dir, name, &out)?;
    Ok(Some((next - at) as u64))
}

/// Whether `file` is one of the audit log's files in `dir`.
pub(crate) fn is_audit_file(dir: &Path, file: &Path) -> bool {
    file.parent() == Some(dir)
        && file
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == AUDIT_FILE || parse_sealed_name(n).is_some())
}

/// The database's audit log: the file, and the appender when auditing is on.
#[derive(Debug)]
pub(crate) struct AuditLog {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// `dir/audit.log`, the file appended to.
    path: PathBuf,
    db_id: [u8; 16],
    actor: String,
    writer: Option<Mutex<Appender>>,
    /// Bytes of a torn final frame cut when it was opened, and where the file now ends.
    cut_at_open: (u64, u64),
    /// Damage found in `audit.log` when it was opened (offset, what failed): no entry can be
    /// appended after it, so every audited read is refused until `repair` cuts the file.
    damaged: Option<(u64, String)>,
    /// [`ROLL_BYTES`], lower in tests.
    roll_bytes: u64,
}

#[derive(Debug)]
struct Appender {
    file: Option<Box<dyn WritableFile>>,
    poisoned: Option<String>,
    /// Bytes in `audit.log`.
    len: u64,
    /// `audit.log`'s format version: a version 1 file is sealed before a find entry.
    version: u16,
}

impl AuditLog {
    /// Opens the audit log of database `db_id` in `dir`. With `enabled`, creates `audit.log`
    /// if missing (atomically), checks its frames, cuts a torn final frame and opens it for
    /// appending; call only while holding the database's write lock. With `check_sealed` too
    /// (for `repair`) it reads every sealed file first. Without `enabled`, nothing is read or
    /// written until [`Self::entries`].
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        enabled: bool,
        check_sealed: bool,
        actor: &str,
    ) -> Result<AuditLog> {
        let path = dir.join(AUDIT_FILE);
        let mut log = AuditLog {
            fs,
            dir: dir.to_owned(),
            path,
            db_id,
            actor: actor.to_owned(),
            writer: None,
            cut_at_open: (0, 0),
            damaged: None,
            roll_bytes: ROLL_BYTES,
        };
        if enabled && check_sealed {
            for (_, sealed) in log.sealed_files()? {
                log.scan_sealed(&sealed, false)?;
            }
        }
        if enabled {
            let (mut len, mut version) = (format::HEADER_LEN as u64, format::VERSION);
            let vouched = log.vouched_len();
            if log.fs.exists(&log.path)? {
                // Frames and checksums; the entries are decoded by `entries` and `verify`.
                let (_, valid_len, file_len, file_version) = match log.scan(&log.path, false) {
                    Ok(scanned) => scanned,
                    // Damage to a frame refuses the reads that would append an entry, not
                    // the open: a flipped bit here kept every write and erasure out (from a
                    // hands-on review). A bad header still refuses the open (a file of
                    // another database, or not an audit log), and `repair`'s open stops at
                    // any damage, to cut the file.
                    Err(Error::Corrupt { offset, reason, .. })
                        if !check_sealed && offset >= format::HEADER_LEN as u64 =>
                    {
                        return log.damaged_at_open(offset, reason, check_sealed);
                    }
                    Err(e) => return Err(e),
                };
                // Bytes the last close had synced are no torn append.
                if let Some((offset, reason)) = vouched_damage(vouched, valid_len, Some(file_len)) {
                    return log.damaged_at_open(offset, reason, check_sealed);
                }
                if valid_len < file_len {
                    log.fs.truncate(&log.path, valid_len as u64)?;
                    log.cut_at_open = ((file_len - valid_len) as u64, valid_len as u64);
                }
                len = valid_len as u64;
                version = file_version;
            } else {
                if let Some((offset, reason)) = vouched_damage(vouched, 0, None) {
                    return log.damaged_at_open(offset, reason, check_sealed);
                }
                write_atomic(&*log.fs, dir, AUDIT_FILE, &format::encode_header(&db_id))?;
            }
            let file = log.fs.open_append(&log.path)?;
            log.writer = Some(Mutex::new(Appender { file: Some(file), poisoned: None, len, version }));
        }
        Ok(log)
    }

    /// The open's answer when it finds `audit.log` damaged at `offset`: for `repair`
    /// (`check_sealed`) the error, to cut the file there; otherwise a log that refuses every
    /// audited read until then, the file left as it is.
    fn damaged_at_open(mut self, offset: u64, reason: String, check_sealed: bool) -> Result<AuditLog> {
        if check_sealed {
            return Err(Error::corrupt(&self.path, offset, reason));
        }
        self.damaged = Some((offset, reason));
        let version = format::VERSION;
        self.writer = Some(Mutex::new(Appender { file: None, poisoned: None, len: 0, version }));
        Ok(self)
    }

    /// How many bytes of `audit.log` the close record says the last close had synced, if
    /// there is an intact record for this database and no file has been sealed since (a
    /// seal starts a new, shorter `audit.log`).
    /// Advisory: an error reads as no record.
    fn vouched_len(&self) -> Option<u64> {
        let path = self.dir.join(AUDIT_SYNCED_FILE);
        let mark =
            crate::log::read_synced_record(&*self.fs, &path, &crate::log::AUDIT_SYNCED_MAGIC, &self.db_id)?;
        let newest = self.sealed_files().ok()?.last().map_or(0, |(n, _)| *n);
        (mark.segment == newest).then_some(mark.len)
    }

    /// The damage the close record shows in `audit.log` as it is now — checked twice
    /// around the read, and reported only when no file was sealed and no close record
    /// written meanwhile (a writer in another process appending, closing or sealing while
    /// a read-only handle looks must not pass for damage).
    fn vouched_damage_now(&self) -> Option<(u64, String)> {
        // (No record, no second read of the file.)
        let before = (Some(self.vouched_len()?), self.sealed_files().ok()?);
        let found = if self.fs.exists(&self.path).ok()? {
            let (_, valid_len, len, _) = self.scan(&self.path, false).ok()?;
            vouched_damage(before.0, valid_len, Some(len))
        } else {
            vouched_damage(before.0, 0, None)
        };
        let after = (self.vouched_len(), self.sealed_files().ok()?);
        found.filter(|_| after == before)
    }

    /// Makes [`Self::close`] write nothing: a database discarded as new and empty, whose
    /// directory may be someone else's by the time it is dropped.
    pub(crate) fn detach(&self) {
        if let Some(writer) = &self.writer {
            writer.lock().file = None;
        }
    }

    /// Writes the close record when this handle appends to `audit.log` and every byte it
    /// holds is synced (not after damage or a failure); best effort, as the log's. Called
    /// when the database closes.
    pub(crate) fn close(&self) {
        let Some(writer) = &self.writer else { return };
        if self.damaged.is_some() {
            return;
        }
        let w = writer.lock();
        if w.poisoned.is_some() || w.file.is_none() {
            return;
        }
        // Only for the file this handle appended to: this database's, as long as this handle
        // made it (not a directory restored or replaced under the path meanwhile).
        let ours = self.fs.open_read(&self.path).is_ok_and(|file| {
            let mut header = [0u8; format::HEADER_LEN];
            file.len() == w.len
                && file.read_exact_at(&mut header, 0).is_ok()
                && format::check_header(&header, &self.path, &self.db_id).is_ok()
        });
        if !ours {
            return;
        }
        let Ok(sealed) = self.sealed_files() else { return };
        let mark = crate::log::SyncedMark {
            segment: sealed.last().map_or(0, |(n, _)| *n),
            first_lsn: 0,
            len: w.len,
        };
        let magic = &crate::log::AUDIT_SYNCED_MAGIC;
        let path = self.dir.join(AUDIT_SYNCED_FILE);
        if crate::log::read_synced_record(&*self.fs, &path, magic, &self.db_id) != Some(mark) {
            let _ = crate::log::write_synced_record(
                &*self.fs,
                &self.dir,
                AUDIT_SYNCED_FILE,
                magic,
                &self.db_id,
                mark,
            );
        }
    }

    /// The sealed files, oldest first, with their numbers.
    fn sealed_files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut sealed: Vec<(u64, PathBuf)> = self
            .fs
            .list_dir(&self.dir)?
            .iter()
            .filter_map(|name| parse_sealed_name(name).map(|n| (n, self.dir.join(name))))
            .collect();
        sealed.sort();
        Ok(sealed)
    }

    /// `read` of every file of the log that exists, oldest first — the sealed ones, then
    /// `audit.log` (`current` true) — as one snapshot. If a writer sealed `audit.log`
    /// meanwhile, the new one lacks the entries just sealed (or is not there yet): the files
    /// are listed again, and the new sealed files read. This handle's appends wait only while
    /// `audit.log` is read; another process's seal is caught by the listing after it.
    fn read_files<R>(&self, read: impl Fn(&Path, bool) -> R) -> Result<Vec<(PathBuf, R)>> {
        // Sealed files never change: each is read once, whatever the tries.
        let mut done: std::collections::HashMap<PathBuf, R> = std::collections::HashMap::new();
        for _ in 0..READ_TRIES {
            let sealed = self.sealed_files()?;
            for (_, path) in &sealed {
                if !done.contains_key(path) {
                    let result = read(path, false);
                    done.insert(path.clone(), result);
                }
            }
            let current = {
                let _no_seal = self.writer.as_ref().map(|w| w.lock());
                if self.sealed_files()? != sealed {
                    continue;
                }
                if self.fs.exists(&self.path)? {
                    Some(read(&self.path, true))
                } else {
                    None
                }
            };
            if self.sealed_files()? != sealed {
                continue;
            }
            let mut out: Vec<(PathBuf, R)> =
                sealed.into_iter().filter_map(|(_, p)| done.remove(&p).map(|r| (p, r))).collect();
            out.extend(current.map(|r| (self.path.clone(), r)));
            return Ok(out);
        }
        let busy =
            std::io::Error::new(std::io::ErrorKind::Interrupted, "sealed again at every try while read");
        Err(Error::io("read", &self.path, busy))
    }

    /// Bytes of a torn final frame [`Self::open`] cut (0 when none).
    pub(crate) fn cut_at_open(&self) -> u64 {
        self.cut_at_open.0
    }

    /// Where [`Self::open`] cut a torn final frame, and how many bytes: `None` when it cut
    /// none.
    pub(crate) fn cut_at_open_at(&self) -> Option<(u64, u64)> {
        let (bytes, at) = self.cut_at_open;
        (bytes > 0).then_some((at, bytes))
    }

    /// Every entry of every file, oldest first; an empty list when there is none. A torn
    /// final frame of `audit.log` (possible only for a log not opened for writing) is ignored.
    pub(crate) fn entries(&self) -> Result<Vec<AuditEntry>> {
        if let Some(damage) = self.close_record_damage() {
            return Err(damage);
        }
        let mut entries = Vec::new();
        for (_, read) in self.read_files(|file, current| {
            if current {
                self.scan(file, true).map(|(entries, _, _, _)| entries)
            } else {
                self.scan_sealed(file, true)
            }
        })? {
            entries.append(&mut read?);
        }
        Ok(entries)
    }

    /// [`Self::scan`] of a sealed file, which was whole when sealed: a torn final frame is
    /// damage.
    fn scan_sealed(&self, path: &Path, decode: bool) -> Result<Vec<AuditEntry>> {
        let (entries, valid_len, file_len, _) = self.scan(path, decode)?;
        match sealed_torn(path, valid_len, file_len) {
            Some(damage) => Err(damage),
            None => Ok(entries),
        }
    }

    /// For `verify`: validates each file whole (entries decoded), with the bytes of a torn
    /// final frame, which an open for writing cuts from `audit.log` (0 when none); a sealed
    /// file was whole when sealed.
    pub(crate) fn check(&self) -> Result<Vec<(PathBuf, Result<u64>)>> {
        let mut checked = self.read_files(|file, _| {
            self.scan(file, true).map(|(_, valid_len, len, _)| (len - valid_len) as u64)
        })?;
        if let Some((offset, reason)) = self.vouched_damage_now() {
            let damage = Error::corrupt(&self.path, offset, reason);
            match checked.iter_mut().find(|(path, _)| *path == self.path) {
                Some((_, result)) => *result = Err(damage),
                None => checked.push((self.path.clone(), Err(damage))),
            }
        }
        Ok(checked)
    }

    /// The path of `audit.log`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and validates a whole file of the log: its entries (when `decode`), the length of
    /// its valid prefix, the file's length and its format version.
    fn scan(&self, path: &Path, decode: bool) -> Result<(Vec<AuditEntry>, usize, usize, u16)> {
        let (entries, at, len, version, damage) = self.scan_to_damage(path, decode)?;
        match damage {
            Some(e) => Err(e),
            None => Ok((entries, at, len, version)),
        }
    }

    /// [`Self::scan`], with the entries before the first damaged frame kept: the damage is
    /// the last value (the file's header must be sound).
    #[allow(clippy::type_complexity)]
    fn scan_to_damage(
        &self,
        path: &Path,
        decode: bool,
    ) -> Result<(Vec<AuditEntry>, usize, usize, u16, Option<Error>)> {
        // Read frame by frame: a damaged or sparse file claiming terabytes costs no more than
        // its valid frames (it was read whole, and the process killed for memory: from the
        // file-validation review). One read may write many frames past the roll size, so
        // no length is too long by itself (from the diff review).
        let file = self.fs.open_read(path)?;
        let len = usize::try_from(file.len()).unwrap_or(usize::MAX);
        let bytes = crate::codec::read_framed(file.as_ref(), format::HEADER_LEN)?;
        let version = format::check_header(&bytes, path, &self.db_id)?;
        let mut entries = Vec::new();
        let mut at = format::HEADER_LEN;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            let corrupt = |reason: String| Error::corrupt(path, at as u64, reason);
            let damage = match read_frame(rest) {
                FrameRead::Valid { payload, frame_len } => {
                    if decode {
                        match format::decode_entry(payload) {
                            Ok(entry) => entries.push(entry),
                            Err(reason) => return Ok((entries, at, len, version, Some(corrupt(reason)))),
                        }
                    }
                    at += frame_len;
                    continue;
                }
                _ if is_torn_tail(rest) => break,
                FrameRead::Truncated => {
                    corrupt("frame runs past the end of the file but valid frames follow".into())
                }
                FrameRead::BadLength(n) => corrupt(format!("frame declares {n} bytes")),
                FrameRead::BadChecksum => corrupt("frame checksum mismatch".into()),
            };
            return Ok((entries, at, len, version, Some(damage)));
        }
        Ok((entries, at, len, version, None))
    }

    /// [`Self::entries`] up to the first damage, and the damage: the intact record of who
    /// read what stays readable before `repair` cuts the log (one damaged frame hid every
    /// entry: from a hands-on review). A damaged file header is damage with no entries of
    /// that file; I/O errors and an unknown version are errors.
    pub(crate) fn entries_before_damage(&self) -> Result<(Vec<AuditEntry>, Option<Error>)> {
        let read = self.read_files(|file, current| {
            let (found, valid_len, file_len, _, damage) = match self.scan_to_damage(file, true) {
                Ok(scanned) => scanned,
                Err(e @ Error::Corrupt { .. }) => return Ok((Vec::new(), Some(e))),
                Err(e) => return Err(e),
            };
            let torn = if current { None } else { sealed_torn(file, valid_len, file_len) };
            Ok((found, damage.or(torn)))
        })?;
        let mut entries = Vec::new();
        for (_, result) in read {
            let (mut found, damage) = result?;
            entries.append(&mut found);
            if damage.is_some() {
                return Ok((entries, damage));
            }
        }
        // The last entries lost or damaged: the scan passed over them as a torn append.
        Ok((entries, self.close_record_damage()))
    }

    /// The damage of `audit.log` that the close record shows, which a scan takes for a torn
    /// append or (a missing file) for no file: found by the open, or now.
    fn close_record_damage(&self) -> Option<Error> {
        let (offset, reason) = self.damaged.clone().or_else(|| self.vouched_damage_now())?;
        Some(Error::corrupt(&self.path, offset, reason))
    }

    /// The damage that keeps PII reads refused: the one the open found in `audit.log`, or —
    /// for a handle that did not open it (read-only) — what a check of the file finds now (a
    /// damaged header included; a torn final frame is not damage). `None` when there is
    /// none, or no file.
    pub(crate) fn damage(&self) -> Option<String> {
        let describe =
            |offset: u64, reason: &str| format!("{} at byte offset {offset}: {reason}", self.path.display());
        if let Some((offset, reason)) = &self.damaged {
            return Some(describe(*offset, reason));
        }
        if self.writer.is_some() {
            return None;
        }
        if let Some((offset, reason)) = self.vouched_damage_now() {
            return Some(describe(offset, &reason));
        }
        if !self.fs.exists(&self.path).unwrap_or(false) {
            return None;
        }
        // Only damage: a file sealed meanwhile (gone), or a newer version, is not.
        match self.scan(&self.path, false) {
            Err(Error::Corrupt { offset, reason, .. }) => Some(describe(offset, &reason)),
            _ => None,
        }
    }

    /// Records a read (`action`) of `fields` of records `ids`, durably. A no-op when
    /// auditing is off.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after an earlier failure; [`Error::Io`] (which poisons the log);
    /// [`Error::Corrupt`] when the open found `audit.log` damaged.
    pub(crate) fn record(
        &self,
        action: AuditAction,
        collection: &str,
        ids: &[&str],
        fields: &[&str],
    ) -> Result<()> {
        let Some(writer) = &self.writer else { return Ok(()) };
        if let Some((offset, reason)) = &self.damaged {
            let reason =
                format!("{reason}; reads of PII are refused until `geocrm repair` cuts the audit log there");
            return Err(Error::corrupt(&self.path, *offset, reason));
        }
        let unix_ms = now_unix_ms();
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
        // A version 1 file is sealed as it is, and a new one started, before an entry its
        // version cannot hold: an older build read it as damage.
        if action.since_version() > w.version {
            if let Err(e) = self.seal(&mut w) {
                w.poisoned = Some(e.to_string());
                return Err(e);
            }
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
        w.len += frames.len() as u64;
        // Sealed once full. A failure here fails this read too (its entry is written; the
        // log refuses further entries until the database is reopened).
        let result = result.and_then(|()| if w.len >= self.roll_bytes { self.seal(&mut w) } else { Ok(()) });
        if let Err(e) = &result {
            w.poisoned = Some(e.to_string());
        }
        result
    }

    /// Renames the full `audit.log` to the next sealed name and starts a new one. A crash
    /// after the rename leaves no `audit.log`, which the next open creates.
    fn seal(&self, w: &mut Appender) -> Result<()> {
        w.file = None;
        let highest = self.sealed_files()?.last().map_or(0, |(n, _)| *n);
        let sealed = self.dir.join(sealed_name(now_unix_ms().max(highest.saturating_add(1))));
        // The close record vouches for the file about to become a sealed one: gone first, so
        // that archiving the sealed files later cannot make it seem to vouch for the new,
        // shorter `audit.log` (from the diff review).
        forget_close_record(&*self.fs, &self.dir)?;
        self.fs.rename(&self.path, &sealed)?;
        self.fs.sync_dir(&self.dir)?;
        write_atomic(&*self.fs, &self.dir, AUDIT_FILE, &format::encode_header(&self.db_id))?;
        w.file = Some(self.fs.open_append(&self.path)?);
        w.len = format::HEADER_LEN as u64;
        w.version = format::VERSION;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{CrashMode, FaultPlan, MemFs, OpKind};

    fn open_in(fs: &MemFs, check_sealed: bool) -> Result<AuditLog> {
        AuditLog::open(Arc::new(fs.clone()), Path::new("/d"), [1; 16], true, check_sealed, "t")
    }

    fn record(log: &AuditLog, i: usize) -> Result<()> {
        log.record(AuditAction::Reveal, "c", &[&format!("id-{i}")], &["name"])
    }

    fn ids(log: &AuditLog) -> Vec<String> {
        log.entries().unwrap().iter().map(|e| e.ids.concat()).collect()
    }

    /// A version 1 `audit.log` (an older build's) takes the entries it can hold; before the
    /// first find entry, which it cannot (an older build read it as damage), it is sealed as
    /// it is and a version 2 file started. Every entry stays readable.
    #[test]
    fn a_version_1_file_is_sealed_before_a_find_entry() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d").join(AUDIT_FILE);
        let mut v1 = format::encode_header(&[1; 16]);
        v1[8] = 1;
        let crc = crc32fast::hash(&v1[..format::HEADER_LEN - 4]);
        v1[format::HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        fs.write_raw(&path, &v1);
        let version = |fs: &MemFs, p: &Path| fs.read_all(p).unwrap()[8];
        {
            let log = open_in(&fs, false).unwrap();
            record(&log, 0).unwrap();
            assert_eq!(version(&fs, &path), 1, "a reveal is written into it");
            assert!(log.sealed_files().unwrap().is_empty());
            log.record(AuditAction::Find, "c", &["id-1"], &["phone"]).unwrap();
            let sealed = log.sealed_files().unwrap();
            assert_eq!(sealed.len(), 1);
            assert_eq!(version(&fs, &sealed[0].1), 1);
            assert_eq!(version(&fs, &path), 2);
            log.record(AuditAction::Find, "c", &["id-2"], &["phone"]).unwrap();
            assert_eq!(log.sealed_files().unwrap().len(), 1, "sealed once");
            assert_eq!(ids(&log), ["id-0", "id-1", "id-2"]);
        }
        let log = open_in(&fs, true).unwrap();
        log.record(AuditAction::Find, "c", &["id-3"], &["phone"]).unwrap();
        assert_eq!(log.sealed_files().unwrap().len(), 1, "a version 2 file is kept");
        assert_eq!(ids(&log), ["id-0", "id-1", "id-2", "id-3"]);
        assert!(log.check().unwrap().iter().all(|(_, r)| r.is_ok()));
    }

    /// A damaged entry is spliced out (its declared end, or the first offset from which
    /// valid entries run to the end); a tail of plausible lengths (`01 01 …`, a frame declared
    /// at every offset) gives up within the work cap instead of checksumming for hours (from
    /// the read-through review).
    #[test]
    fn a_damaged_entry_is_spliced_out_and_a_crafted_tail_gives_up_quickly() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        {
            let log = open_in(&fs, false).unwrap();
            for i in 0..5 {
                record(&log, i).unwrap();
            }
        }
        let path = Path::new("/d").join(AUDIT_FILE);
        let clean = fs.read_all(&path).unwrap();
        let frame = (clean.len() - format::HEADER_LEN) / 5;
        let second = format::HEADER_LEN + frame;
        for (at, flipped) in [(second, second + 10), (second, second)] {
            let mut bytes = clean.clone();
            bytes[flipped] ^= 0x40;
            fs.write_raw(&path, &bytes);
            assert_eq!(
                remove_damaged_frame(&fs, &path, at as u64).unwrap(),
                Some(frame as u64),
                "byte {flipped}"
            );
            assert_eq!(
                ids(&open_in(&fs, false).unwrap()),
                ["id-0", "id-2", "id-3", "id-4"],
                "byte {flipped}"
            );
        }
        let mut bytes = clean[..second].to_vec();
        bytes.extend_from_slice(&[1u8; 4 << 20]);
        fs.write_raw(&path, &bytes);
        let started = std::time::Instant::now();
        assert_eq!(remove_damaged_frame(&fs, &path, second as u64).unwrap(), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[test]
    fn a_full_log_is_sealed_and_a_writable_open_checks_only_the_current_file() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let want: Vec<String> = (0..80).map(|i| format!("id-{i}")).collect();
        for run in 0..2 {
            let mut log = open_in(&fs, false).unwrap();
            log.roll_bytes = 300;
            for i in 40 * run..40 * (run + 1) {
                record(&log, i).unwrap();
            }
            // Increasing (sealed within a millisecond of each other, one more than the
            // last), also across a reopen.
            let numbers: Vec<u64> = log.sealed_files().unwrap().iter().map(|(n, _)| *n).collect();
            assert!(numbers.len() >= 5 * (run + 1), "{numbers:?}");
            assert!(numbers.windows(2).all(|w| w[0] < w[1]) && numbers[0] > 1_700_000_000_000, "{numbers:?}");
            assert!(fs.read_all(&log.path).unwrap().len() < 300);
            assert_eq!(ids(&log), want[..40 * (run + 1)]);
        }
        // A damaged sealed file: a writable open does not read it; the entries, the check
        // and a repair's open name it.
        let log = open_in(&fs, false).unwrap();
        let (_, first) = log.sealed_files().unwrap().remove(0);
        for at in [-3, -60] {
            let mut bytes = fs.read_all(&first).unwrap();
            let i = (bytes.len() as isize + at) as usize;
            bytes[i] ^= 1;
            fs.write_raw(&first, &bytes);
            let log = open_in(&fs, false).unwrap();
            let named = |r: Result<()>| matches!(r, Err(Error::Corrupt { file, .. }) if file == first);
            assert!(named(log.entries().map(drop)), "{:?}", log.entries());
            assert!(named(open_in(&fs, true).map(drop)));
            let checked = log.check().unwrap();
            assert_eq!(
                checked.iter().filter(|(p, r)| *p == first && r.as_ref().map_or(true, |&t| t > 0)).count(),
                1
            );
            bytes[i] ^= 1;
            fs.write_raw(&first, &bytes);
        }
        assert_eq!(ids(&open_in(&fs, true).unwrap()), want);
    }

    #[test]
    fn a_read_while_another_thread_seals_sees_a_prefix_and_numbers_outlive_archiving() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let mut log = open_in(&fs, false).unwrap();
        log.roll_bytes = 200;
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..400 {
                    record(&log, i).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            // Both handles list the files again when one was sealed under them (this
            // handle's appends wait only while it reads `audit.log`).
            let other =
                AuditLog::open(Arc::new(fs.clone()), Path::new("/d"), [1; 16], false, false, "r").unwrap();
            let (mut reads, mut others) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 || others == 0 {
                for (reader, n) in [(&log, &mut reads), (&other, &mut others)] {
                    let got: Vec<String> = match reader.entries() {
                        Ok(entries) => entries.iter().map(|e| e.ids.concat()).collect(),
                        // Sealed under it at every try (every third entry here).
                        Err(Error::Io { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    };
                    let want: Vec<String> = (0..got.len()).map(|i| format!("id-{i}")).collect();
                    assert_eq!(got, want, "a read must see the entries written before it, in order");
                    *n += 1;
                }
                let _ = log.check().unwrap();
            }
        });
        // Sealed files moved away (archived): the next one is numbered above all of them.
        let archived: Vec<u64> = log.sealed_files().unwrap().iter().map(|(n, _)| *n).collect();
        for (_, path) in log.sealed_files().unwrap() {
            fs.remove_file(&path).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(archived.len() as u64 + 5));
        while log.sealed_files().unwrap().is_empty() {
            record(&log, 0).unwrap();
        }
        let next = log.sealed_files().unwrap()[0].0;
        assert!(archived.iter().all(|&n| n < next), "{next} after {archived:?}");
    }

    #[test]
    fn a_failure_or_crash_while_sealing_loses_no_entry() {
        // Every step of sealing fails in turn (from then on); the live files and every crash
        // image open, with every entry whose record returned. A clean close before writes the
        // close record, which the seal removes first: no image may read as damaged.
        let dir = Path::new("/d");
        for failing in 0..16 {
            let fs = MemFs::new();
            fs.create_dir_all(dir).unwrap();
            let log = open_in(&fs, false).unwrap();
            record(&log, 0).unwrap();
            log.close();
            drop(log);
            assert!(fs.exists(&dir.join(AUDIT_SYNCED_FILE)).unwrap());
            let mut log = open_in(&fs, false).unwrap();
            log.roll_bytes = format::HEADER_LEN as u64 + 1;
            fs.set_faults(FaultPlan::new().fail_from(OpKind::Any, failing));
            let second = record(&log, 1).is_ok();
            assert!(record(&log, 2).is_err() || second, "a failure poisons the log");
            drop(log);
            let images = (0..20).flat_map(|seed| CrashMode::ALL.map(|mode| fs.crash_image(seed, mode)));
            for image in images.chain([fs.clone()]) {
                image.set_faults(FaultPlan::new());
                let log = open_in(&image, false).unwrap_or_else(|e| panic!("step {failing}: {e}"));
                let got = ids(&log);
                assert_eq!(got.first().map(String::as_str), Some("id-0"), "step {failing}");
                if second {
                    assert_eq!(got.get(1).map(String::as_str), Some("id-1"), "step {failing}");
                }
                record(&log, 3).unwrap();
                assert_eq!(ids(&log).last().map(String::as_str), Some("id-3"));
            }
        }
    }

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
            let log = AuditLog::open(Arc::new(fs.clone()), dir, [1; 16], true, false, "t").unwrap();
            log.record(AuditAction::Reveal, "c", &["before"], &["name"]).unwrap();
            fs.set_faults(FaultPlan::new().fail_from(OpKind::Sync, failing));
            assert!(log.record(AuditAction::Export, "c", &ids, &["name"]).is_err());
            for seed in 0..40 {
                for mode in CrashMode::ALL {
                    let image = Arc::new(fs.crash_image(seed, mode));
                    let reopened = AuditLog::open(image, dir, [1; 16], true, false, "t")
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

    /// A seal removes the close record before it renames `audit.log`: a record left
    /// vouching for the sealed file's length made a healthy new `audit.log` read as damaged
    /// once the sealed files were archived after a crash (from the diff review).
    #[test]
    fn a_seal_forgets_the_close_record() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let record_path = Path::new("/d").join(AUDIT_SYNCED_FILE);
        {
            let log = open_in(&fs, false).unwrap();
            record(&log, 0).unwrap();
            log.close();
        }
        assert!(fs.exists(&record_path).unwrap(), "a clean close writes the record");
        let mut log = open_in(&fs, false).unwrap();
        log.roll_bytes = 1;
        record(&log, 1).unwrap();
        assert_eq!(log.sealed_files().unwrap().len(), 1, "the entry sealed the file");
        assert!(!fs.exists(&record_path).unwrap(), "sealing removed the record");
        // A crash (no close), and the sealed file archived: the new `audit.log` is healthy.
        for (_, sealed) in log.sealed_files().unwrap() {
            fs.remove_file(&sealed).unwrap();
        }
        drop(log);
        let log = open_in(&fs, false).unwrap();
        assert!(log.damaged.is_none() && log.damage().is_none());
        assert!(log.check().unwrap().iter().all(|(_, r)| r.is_ok()));
        assert!(log.entries().unwrap().is_empty());
        // A record written over a file not this handle's (another database's, or restored
        // under the path) is not written.
        let other = AuditLog::open(Arc::new(fs.clone()), Path::new("/d"), [2; 16], true, false, "t");
        assert!(other.is_err(), "another database's audit.log");
        fs.write_raw(&Path::new("/d").join(AUDIT_FILE), &format::encode_header(&[2; 16]));
        log.close();
        assert!(!fs.exists(&record_path).unwrap(), "no record for a file this handle did not write");
    }
}
