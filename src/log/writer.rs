//! [`Log`]: opening (with replay and tail repair), appending, syncing, re-reading frames.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::replay::{self, LogScan};
use super::segment::{
    segment_name, FramePrefix, SegmentHeader, MAX_BODY_LEN, MIN_FRAME_LEN, SEGMENT_HEADER_LEN,
};
use super::{FramePos, LogConfig, LogStart, RecoveryReport, ReplayedTxn, TxnReceipt, FIRST_LSN, LOG_DIR};
use crate::codec::{encode_frame_with, FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD};
use crate::error::{Error, Result};
use crate::io::{write_atomic, FileSystem, WritableFile};

/// Every frame of a segment lies below this offset (a checkpoint stores frame offsets as
/// u32): the writer starts a new segment rather than cross it.
pub(super) const MAX_SEGMENT_OFFSET: u64 = u32::MAX as u64;
/// The last segment number: a checkpoint's row pointers hold a segment number in 32 bits.
pub(super) const MAX_SEGMENT_NUMBER: u64 = u32::MAX as u64;
/// Bytes of frames buffered before a write during `append_txn`.
const WRITE_CHUNK_BYTES: usize = 8 << 20;

/// The append-only log of one database: the source of truth.
///
/// One writer appends transactions to the newest segment; see the [module
/// documentation](super) for the format and the recovery rules.
///
/// ```
/// use std::{path::Path, sync::Arc};
/// use geocrm::io::MemFs;
/// use geocrm::log::{Log, LogConfig};
/// # fn main() -> geocrm::Result<()> {
/// let fs = Arc::new(MemFs::new());
/// let db = Path::new("/db");
/// let (mut log, _) = Log::open(fs.clone(), db, [1; 16], LogConfig::default(), &mut |_| Ok(()))?;
/// let receipt = log.append_txn(&[(b"put a", 1), (b"put b", 1)])?;
/// log.sync()?; // now the transaction is durable
/// assert_eq!((receipt.first_lsn, receipt.next_lsn), (1, 3));
/// assert_eq!(log.read_frame_at(receipt.positions[1])?, b"put b");
/// drop(log);
///
/// let mut seen = Vec::new();
/// let (_log, report) = Log::open(fs, db, [1; 16], LogConfig::default(), &mut |txn| {
///     seen.push(txn.first_lsn);
///     Ok(())
/// })?;
/// assert_eq!((seen, report.next_lsn), (vec![1], 3));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Log {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    db_id: [u8; 16],
    config: LogConfig,
    first_segment: u64,
    current: u64,
    file: Box<dyn WritableFile>,
    next_lsn: u64,
    /// Offset in the current segment up to which it is known to be synced.
    durable_offset: u64,
    /// End of the transactions acknowledged without a sync ([`Log::acknowledge_unsynced`]):
    /// a failure never cuts the current segment below it.
    acknowledged_offset: u64,
    /// The LSN after the last transaction known to be synced.
    durable_lsn: u64,
    poisoned: Option<String>,
}

/// The first [`SEGMENT_HEADER_LEN`] bytes of segment file `path`.
fn read_header(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    let file = fs.open_read(path)?;
    let mut bytes = vec![0u8; SEGMENT_HEADER_LEN.min(usize::try_from(file.len()).unwrap_or(usize::MAX))];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

fn create_segment(fs: &dyn FileSystem, log_dir: &Path, header: &SegmentHeader) -> Result<()> {
    write_atomic(fs, log_dir, &segment_name(header.number), &header.encode())
}

impl Log {
    /// Opens the log in `dir/log/`, creating it with its first segment if there is none;
    /// otherwise replays every segment in order, calling `on_txn` for each complete
    /// transaction in LSN order, cuts a torn tail off the newest segment, syncs it, and opens
    /// it for appending.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for damage to acknowledged data (see the module documentation),
    /// [`Error::UnsupportedVersion`] for a newer segment format, [`Error::Io`], or any error
    /// `on_txn` returns. On error `on_txn` may already have seen some transactions; discard
    /// what it built.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        config: LogConfig,
        on_txn: &mut dyn FnMut(ReplayedTxn) -> Result<()>,
    ) -> Result<(Log, RecoveryReport)> {
        Log::open_from(fs, dir, db_id, config, None, on_txn)
    }

    /// As [`Log::open`], but replays only from `start` on (segments before it are left
    /// alone: a checkpoint holds what they contain).
    ///
    /// # Errors
    /// As [`Log::open`]; also [`Error::Corrupt`] when the start segment is missing or does
    /// not begin at the expected LSN.
    pub fn open_from(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        config: LogConfig,
        start: Option<LogStart>,
        on_txn: &mut dyn FnMut(ReplayedTxn) -> Result<()>,
    ) -> Result<(Log, RecoveryReport)> {
        Log::open_from_with(fs, dir, db_id, config, start, false, on_txn)
    }

    /// [`Log::open_from`]; with `read_only`, a torn tail is reported but not cut (it may be a
    /// frame another process is appending), and `fs` is expected to refuse writes
    /// (`ReadOnlyFs`).
    pub(crate) fn open_from_with(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        config: LogConfig,
        start: Option<LogStart>,
        read_only: bool,
        on_txn: &mut dyn FnMut(ReplayedTxn) -> Result<()>,
    ) -> Result<(Log, RecoveryReport)> {
        let log_dir = dir.join(LOG_DIR);
        if !fs.exists(&log_dir)? {
            if let Some(s) = start {
                // Not a new database: its log went (created again, the database would read
                // as empty). A checkpoint still holds its records' locations and attributes
                // (the message said every write was gone; from a hands-on review).
                let reason = match s.first_lsn {
                    Some(lsn) => format!(
                        "the log directory is missing: the writes after the checkpoint (from LSN {lsn} on), \
                         if there were any, are gone, and so are the log records of the records the \
                         checkpoint holds (their PII, and `get`); the checkpoint still holds those records' \
                         locations and attributes — `geocrm repair` keeps them from it, or restore the \
                         database from a backup"
                    ),
                    None => {
                        "the log directory is missing, and no usable checkpoint holds the records: every \
                             acknowledged write is gone — restore the database from a backup"
                            .to_owned()
                    }
                };
                return Err(Error::corrupt(log_dir.join(segment_name(s.segment)), 0, reason));
            }
            fs.create_dir_all(&log_dir)?;
            fs.sync_dir(dir)?;
        }
        let LogScan { mut report, segments, all } = replay::scan(&*fs, &log_dir, &db_id, start, on_txn)?;
        let (first_segment, current) = match (all.first(), segments.last()) {
            (Some(&first), Some(&last)) => (first, last),
            _ => {
                create_segment(&*fs, &log_dir, &SegmentHeader { number: 1, first_lsn: FIRST_LSN, db_id })?;
                report.segments = 1;
                (1, 1)
            }
        };
        if let Some(tail) = report.truncated.as_ref().filter(|_| !read_only) {
            fs.truncate(&tail.file, tail.offset)?;
        }
        // The newest segment may be a rename a dead process never made durable (a failed
        // directory fsync at a roll-over): frames appended to it are acknowledged only once
        // its name is durable too (`Database::open` does this first; a `Log` on its own must).
        fs.sync_dir(&log_dir)?;
        let mut file = fs.open_append(&log_dir.join(segment_name(current)))?;
        // The replayed bytes need not be durable yet (reopened after a failed write, without
        // a crash): make them so before any new frame records them as durable.
        file.sync()?;
        let durable_offset = file.len();
        let log = Log {
            fs,
            dir: log_dir,
            db_id,
            config,
            first_segment,
            current,
            file,
            next_lsn: report.next_lsn,
            durable_offset,
            acknowledged_offset: durable_offset,
            durable_lsn: report.next_lsn,
            poisoned: None,
        };
        Ok((log, report))
    }

    /// Appends one transaction: each `(body, op_count)` becomes one frame whose operations
    /// take the next `op_count` LSNs; every frame but the last carries the MORE flag. The
    /// frames go to the file through an 8 MiB buffer, in the current segment (a transaction never spans
    /// segments; if the segment has outgrown [`LogConfig::segment_bytes`], it is synced and a
    /// new one started first). Does **not** sync: call [`Log::sync`] before acknowledging.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no frames, no operations in all, a body over
    /// [`super::MAX_BODY_LEN`] bytes or an exhausted LSN space (the log stays usable);
    /// [`Error::Io`] from a write, sync or segment creation, after which the log is poisoned;
    /// [`Error::Poisoned`] once poisoned.
    pub fn append_txn(&mut self, ops: &[(&[u8], u32)]) -> Result<TxnReceipt> {
        let bodies: Vec<(usize, u32)> = ops.iter().map(|(body, n)| (body.len(), *n)).collect();
        self.append_txn_with(&bodies, &mut |i, out| {
            out.extend_from_slice(ops.get(i).map_or(&[][..], |(body, _)| body));
            Ok(())
        })
    }

    /// As [`Log::append_txn`] for bodies produced while they are written: `bodies` gives
    /// each body's length and operation count, and `fill(i, out)` appends body `i` to `out`
    /// (the log's write buffer, so a large transaction is never held whole in memory). A
    /// body of another length than announced is an error that poisons the log (frames of
    /// the transaction may already be in the file; replay drops an unfinished transaction).
    ///
    /// # Errors
    /// As [`Log::append_txn`]; an error from `fill` poisons the log.
    pub fn append_txn_with(
        &mut self,
        bodies: &[(usize, u32)],
        fill: &mut dyn FnMut(usize, &mut Vec<u8>) -> Result<()>,
    ) -> Result<TxnReceipt> {
        self.check_poisoned()?;
        if bodies.is_empty() {
            return Err(Error::invalid_argument("ops", "a transaction needs at least one frame"));
        }
        if let Some((i, (len, _))) = bodies.iter().enumerate().find(|(_, (len, _))| *len > MAX_BODY_LEN) {
            let reason = format!("body {i} has {len} bytes; a frame holds at most {MAX_BODY_LEN}");
            return Err(Error::invalid_argument("ops", reason));
        }
        let total: u64 = bodies.iter().map(|(_, n)| u64::from(*n)).sum();
        if total == 0 {
            // Every transaction advances the LSN, so a sealed segment cut at a transaction
            // boundary never goes unnoticed: the next segment's first LSN would not match.
            return Err(Error::invalid_argument("ops", "a transaction needs at least one operation"));
        }
        if self.next_lsn.checked_add(total).is_none() {
            return Err(Error::invalid_argument("ops", "the log's LSN space is exhausted"));
        }
        let txn_bytes: u64 = bodies.iter().map(|(len, _)| (len + MIN_FRAME_LEN) as u64).sum();
        if txn_bytes > MAX_SEGMENT_OFFSET - SEGMENT_HEADER_LEN as u64 {
            return Err(Error::invalid_argument("ops", "a transaction holds at most 4 GiB"));
        }
        let full =
            self.file.len() > self.config.segment_bytes || self.file.len() + txn_bytes > MAX_SEGMENT_OFFSET;
        if full && self.file.len() > SEGMENT_HEADER_LEN as u64 {
            self.roll_over()?;
        }
        let start = self.file.len();
        // Frames go out through a bounded buffer: a large transaction is never copied
        // whole into memory a second time. Nothing is synced here; `sync` makes it durable.
        let mut frames = Vec::with_capacity(txn_bytes.min(WRITE_CHUNK_BYTES as u64) as usize);
        let mut written = 0u64;
        let mut positions = Vec::with_capacity(bodies.len());
        let mut lsn = self.next_lsn;
        for (i, &(body_len, op_count)) in bodies.iter().enumerate() {
            let prefix = FramePrefix {
                first_lsn: lsn,
                op_count,
                durable_offset: self.durable_offset,
                more: i + 1 < bodies.len(),
            };
            let offset = written + frames.len() as u64;
            let filled = encode_frame_with(&mut frames, |out| {
                out.extend_from_slice(&prefix.to_bytes());
                let at = out.len();
                fill(i, out).map(|()| out.len() - at)
            });
            match filled {
                Ok(n) if n == body_len => {}
                Ok(n) => {
                    let reason = format!("body {i} has {n} bytes where {body_len} were announced");
                    return Err(self.poison(Error::invalid_argument("ops", reason)));
                }
                Err(e) => return Err(self.poison(e)),
            }
            let len = (written + frames.len() as u64 - offset) as u32;
            positions.push(FramePos { segment: self.current, offset: start + offset, len });
            lsn += u64::from(op_count);
            if frames.len() >= WRITE_CHUNK_BYTES || i + 1 == bodies.len() {
                if let Err(e) = self.file.write_all(&frames) {
                    return Err(self.poison(e));
                }
                written += frames.len() as u64;
                frames.clear();
            }
        }
        let receipt = TxnReceipt { first_lsn: self.next_lsn, next_lsn: lsn, positions };
        self.next_lsn = lsn;
        Ok(receipt)
    }

    /// Makes every appended transaction durable (fdatasync of the current segment).
    ///
    /// # Errors
    /// [`Error::Io`] if the sync fails, after which the log is poisoned (a failed fsync is
    /// never retried: the kernel may have dropped the dirty pages); [`Error::Poisoned`] once
    /// poisoned.
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        let len = self.file.len();
        if len != self.durable_offset {
            if let Err(e) = self.file.sync() {
                // The bytes this fsync covered may be gone, acknowledged without a sync or not.
                return Err(self.poison_to(e, self.durable_offset));
            }
            self.durable_offset = len;
        }
        self.durable_lsn = self.next_lsn;
        Ok(())
    }

    /// Closes the log: syncs the current segment and records in `log/SYNCED` how many of its
    /// bytes are durable, so that a later open reports damage to them — even to the last
    /// transactions, which no later frame vouches for — instead of cutting them as a torn
    /// append (see the module documentation). A database calls it when its last handle
    /// closes; the log stays usable (appending more leaves the record true).
    ///
    /// # Errors
    /// As [`Log::sync`]; [`Error::Io`] writing the record (the previous one, if any, stays
    /// true).
    pub fn close(&mut self) -> Result<()> {
        self.sync()?;
        let path = self.dir.join(segment_name(self.current));
        let header = read_header(&*self.fs, &path)?;
        let header = SegmentHeader::parse(&header, &path, self.current, &self.db_id)?;
        let mark = super::synced::SyncedMark {
            segment: self.current,
            first_lsn: header.first_lsn,
            len: self.durable_offset,
        };
        super::synced::write(&*self.fs, &self.dir, &self.db_id, mark)
    }

    /// Syncs the current segment and starts the next one at the next LSN, unless the
    /// current one holds no frame yet; returns the number of the segment now appended to,
    /// whose first LSN is [`Log::next_lsn`]. A checkpoint calls this so that replay can
    /// start at a segment boundary.
    ///
    /// # Errors
    /// As [`Log::sync`]; a failure poisons the log.
    pub fn roll(&mut self) -> Result<u64> {
        self.check_poisoned()?;
        if self.file.len() > SEGMENT_HEADER_LEN as u64 {
            self.roll_over()?;
        } else {
            self.sync()?;
        }
        Ok(self.current)
    }

    /// Deletes every segment numbered below `segment` (oldest first, then a directory
    /// sync). Used after compaction has published a checkpoint that needs none of them.
    ///
    /// # Errors
    /// [`Error::Io`]; segments already deleted stay deleted (a later call finishes the job).
    pub fn remove_segments_below(&mut self, segment: u64) -> Result<()> {
        let below = segment.min(self.current);
        // The segments there are, not every number below (a gap in the numbers, from a
        // crafted MANIFEST, took one `exists` call per missing number: 2⁶⁴ of them).
        let mut doomed = super::segment_numbers(&*self.fs, &self.dir)?;
        doomed.retain(|&n| n < below);
        for n in doomed {
            self.fs.remove_file(&self.dir.join(segment_name(n)))?;
            self.first_segment = self.first_segment.max(n + 1);
        }
        self.first_segment = self.first_segment.max(below);
        self.fs.sync_dir(&self.dir)
    }

    /// Syncs the current segment and starts the next one at the next LSN.
    fn roll_over(&mut self) -> Result<()> {
        self.sync()?;
        let Some(number) = self.current.checked_add(1).filter(|&n| n <= MAX_SEGMENT_NUMBER) else {
            let reason = format!("segment {} is the last a log can have", self.current);
            return Err(self.poison(Error::corrupt(self.dir.join(segment_name(self.current)), 0, reason)));
        };
        let header = SegmentHeader { number, first_lsn: self.next_lsn, db_id: self.db_id };
        let opened = create_segment(&*self.fs, &self.dir, &header)
            .and_then(|()| self.fs.open_append(&self.dir.join(segment_name(header.number))));
        match opened {
            Ok(file) => {
                self.file = file;
                self.current = header.number;
                self.durable_offset = SEGMENT_HEADER_LEN as u64;
                self.acknowledged_offset = SEGMENT_HEADER_LEN as u64;
                Ok(())
            }
            Err(e) => Err(self.poison(e)),
        }
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(Error::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Refuses every later write, and cuts the current segment back to what was
    /// acknowledged (best effort): its durable length, or the end of the transactions
    /// acknowledged without a sync if that is further. Bytes past it were never
    /// acknowledged, and after a failed fsync they may never reach the disk while the page
    /// cache still shows them. Left in the file, a reopen would replay them and its own
    /// fsync (which succeeds: the error was reported once) would let the next commit record
    /// them as durable — and a power loss would then lose that commit too. (Transactions
    /// acknowledged without a sync are kept: they are applied, and read from the file.)
    ///
    /// After a failed fsync ([`Log::sync`]) the cut goes back to the durable length even past
    /// transactions acknowledged without a sync: their bytes may be the ones lost, and the
    /// state that applied them then fails to read them (an error) rather than a reopen
    /// building acknowledged commits on them.
    fn poison(&mut self, error: Error) -> Error {
        let keep = self.durable_offset.max(self.acknowledged_offset);
        self.poison_to(error, keep)
    }

    /// [`Log::poison`], cutting the current segment back to `keep`.
    fn poison_to(&mut self, error: Error, keep: u64) -> Error {
        self.poisoned = Some(error.to_string());
        if self.file.len() > keep {
            let _ = self.fs.truncate(&self.dir.join(segment_name(self.current)), keep);
        }
        error
    }

    /// Marks every transaction appended so far as acknowledged though not synced (a
    /// database in bulk-load mode applies them at once): a later failure does not cut them.
    pub fn acknowledge_unsynced(&mut self) {
        self.acknowledged_offset = self.file.len();
    }

    /// Re-reads the frame at `pos` (from a [`TxnReceipt`] or a replay) and returns its body
    /// after checking its checksum, its length and that it starts where `pos` says.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a position no frame can have; [`Error::Corrupt`] if the
    /// bytes there are not a valid frame; [`Error::Io`].
    pub fn read_frame_at(&self, pos: FramePos) -> Result<Vec<u8>> {
        let len = pos.len as usize;
        if !(self.first_segment..=self.current).contains(&pos.segment)
            || !(MIN_FRAME_LEN..=FRAME_HEADER_LEN + MAX_FRAME_PAYLOAD as usize).contains(&len)
            || pos.offset < SEGMENT_HEADER_LEN as u64
        {
            return Err(Error::invalid_argument("pos", format!("no frame can be at {pos:?}")));
        }
        let path = self.dir.join(segment_name(pos.segment));
        let file = self.fs.open_read(&path)?;
        if pos.offset.checked_add(u64::from(pos.len)).is_none_or(|end| end > file.len()) {
            return Err(Error::corrupt(&path, pos.offset, "frame extends past the end of the segment"));
        }
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, pos.offset)?;
        super::frame_body(&buf).map_err(|reason| Error::corrupt(&path, pos.offset, reason))
    }

    /// The LSN the next appended operation will get.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// The LSN after the last transaction known to be durable (synced).
    #[must_use]
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    /// Whether an earlier write or sync failed; a poisoned log refuses appends and syncs.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Paths of the live segments there are, oldest first: the segment files of the log
    /// directory from the first this log reads to the one it appends to. (Listed, not every
    /// number in between: a gap in the numbers, from a crafted or damaged MANIFEST, made one
    /// path per missing number, 2³² of them, and an open abort.)
    ///
    /// # Errors
    /// [`Error::Io`] listing the log directory.
    pub fn segment_paths(&self) -> Result<Vec<PathBuf>> {
        Ok(self.segment_numbers()?.into_iter().map(|n| self.dir.join(segment_name(n))).collect())
    }

    /// The numbers of [`Log::segment_paths`]'s segments.
    ///
    /// # Errors
    /// [`Error::Io`] listing the log directory.
    pub fn segment_numbers(&self) -> Result<Vec<u64>> {
        let mut numbers = super::segment_numbers(&*self.fs, &self.dir)?;
        numbers.retain(|n| (self.first_segment..=self.current).contains(n));
        Ok(numbers)
    }

    /// The number of the oldest segment this log reads (those below were removed, or lie
    /// below where it was opened from).
    #[must_use]
    pub fn first_segment(&self) -> u64 {
        self.first_segment
    }

    /// The number of the segment being appended to.
    #[must_use]
    pub fn current_segment(&self) -> u64 {
        self.current
    }

    /// The length in bytes of the segment being appended to.
    #[must_use]
    pub fn current_segment_len(&self) -> u64 {
        self.file.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemFs;

    /// From the log review: with a crafted MANIFEST, a log can start at the last segment
    /// number. Rolling over from it wrapped to segment 0, and removing the segments below it
    /// probed every number in between.
    #[test]
    fn the_last_segment_number_neither_wraps_nor_makes_removal_probe_every_number() {
        let mem = MemFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(mem.clone());
        let dir = Path::new("/db");
        let db_id = [4; 16];
        let (log, _) = Log::open(fs.clone(), dir, db_id, LogConfig::default(), &mut |_| Ok(())).unwrap();
        drop(log);
        let last = SegmentHeader { number: MAX_SEGMENT_NUMBER, first_lsn: FIRST_LSN, db_id };
        mem.write_raw(&dir.join(LOG_DIR).join(segment_name(last.number)), &last.encode());
        let start = Some(LogStart { segment: last.number, first_lsn: None });
        let (mut log, _) =
            Log::open_from(fs, dir, db_id, LogConfig::default(), start, &mut |_| Ok(())).unwrap();
        log.remove_segments_below(last.number).unwrap();
        assert_eq!(mem.list_files(), vec![dir.join(LOG_DIR).join(segment_name(last.number))]);
        log.append_txn(&[(b"op", 1)]).unwrap();
        log.sync().unwrap();
        let err = log.roll().unwrap_err();
        assert!(err.to_string().contains("the last a log can have"), "{err}");
        assert!(!mem.list_files().iter().any(|p| p.ends_with(segment_name(0))), "no segment 0");
    }

    /// From the log review: a roll-over whose directory fsync failed leaves the new
    /// segment's name not durable; a `Log` opened on its own then appended to it and
    /// acknowledged writes a power loss could take with the name.
    #[test]
    fn an_open_makes_the_newest_segment_name_durable_before_appending() {
        use crate::io::{CrashMode, FaultPlan, OpKind};
        let mem = MemFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(mem.clone());
        let dir = Path::new("/db");
        let open = || Log::open(fs.clone(), dir, [5; 16], LogConfig::default(), &mut |_| Ok(())).unwrap().0;
        let mut log = open();
        log.append_txn(&[(b"first", 1)]).unwrap();
        log.sync().unwrap();
        mem.set_faults(FaultPlan::new().fail_once(OpKind::SyncDir, 0));
        assert!(log.roll().is_err());
        mem.clear_faults();
        drop(log);
        let mut log = open();
        log.append_txn(&[(b"second", 1)]).unwrap();
        log.sync().unwrap();
        drop(log);
        let image: Arc<dyn FileSystem> = Arc::new(mem.crash_image(1, CrashMode::SyncedOnly));
        let mut replayed = 0;
        Log::open(image, dir, [5; 16], LogConfig::default(), &mut |_| {
            replayed += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(replayed, 2, "both acknowledged transactions survive");
    }
}
