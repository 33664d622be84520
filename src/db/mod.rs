//! The database: a directory holding the log, the keystore and the manifest, opened by one
//! writer process at a time and read by many threads.

mod blind;
mod bulk_apply;
mod checkpoint;
mod duplicates;
mod held;
mod inspect;
mod keys;
mod manifest;
mod ops;
mod options;
mod privacy;
mod read;
mod record_codec;
mod repair;
mod sealed_slots;
mod state;
mod update;
mod write;

#[cfg(test)]
mod format_tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

pub use checkpoint::{CheckpointReport, INDEX_DIR};
pub use duplicates::{DuplicateGroup, DuplicateReason, DUPLICATE_NAME_RADIUS_M};
pub use inspect::{CheckpointStats, CollectionStats, DatabaseStats, FileCheck, VerifyReport};
pub use options::{Durability, Options, DEFAULT_CHECKPOINT_AFTER_OPS};
pub use privacy::{ErasureReceipt, SubjectExport};
pub use read::{CollectionReader, Hit, Snapshot, StoredView, MAX_K};
pub use repair::{RepairAction, RepairReport};
pub use write::{CommitReceipt, Rejected, WriteBatch, MAX_CATEGORY_BYTES, MAX_PII_BYTES};
pub(crate) use write::{PendingOp, Slots};

use self::manifest::Manifest;
use self::state::State;
use crate::crypto::{Keystore, MasterKey};
use crate::error::{Error, Result};
use crate::index::checkpoint::Verify;
use crate::io::{DirLock, FileSystem, LOCK_FILE};
use crate::log::{Log, LogConfig, RecoveryReport};

/// An open geocrm database.
///
/// ```
/// use geocrm::{Database, Filter, LatLon, Options, Record, Schema, crypto::RawKey};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path(), Options::new().key(RawKey::new([42; 32])))?;
/// db.create_collection("customers", Schema::crm().number("ltv").category("tier"))?;
/// let mut batch = db.begin_write();
/// batch.upsert("customers", Record::new("C-1", LatLon::new(48.8566, 2.3522)?)
///     .number("ltv", 1200.0).category("tier", "gold").pii("name", "Ada"))?;
/// batch.upsert("customers", Record::new("C-2", LatLon::new(51.5074, -0.1278)?)
///     .number("ltv", 80.0).category("tier", "bronze"))?;
/// batch.commit()?;
///
/// let snap = db.read();
/// let customers = snap.collection("customers")?;
/// let near = customers.nearest(LatLon::new(48.0, 2.0)?, 1, &Filter::All)?;
/// assert_eq!(near[0].id, "C-1");
/// let gold = customers.nearest(LatLon::new(51.0, 0.0)?, 5, &Filter::eq("tier", "gold"))?;
/// assert_eq!(gold.len(), 1);
/// assert_eq!(customers.reveal("C-1")?["name"].expose(), "Ada");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Its `Debug` output names the directory only — never the records (ids, locations,
/// attributes or blind values), however many are in memory:
///
/// ```
/// # use geocrm::{Database, LatLon, Options, Record, Schema};
/// # let dir = tempfile::tempdir()?;
/// # let db = Database::open(dir.path(), Options::new())?;
/// # db.create_collection("customers", Schema::new())?;
/// # let mut batch = db.begin_write();
/// # batch.upsert("customers", Record::new("C-1", LatLon::new(48.85, 2.35)?))?;
/// # batch.commit()?;
/// let mut pending = db.begin_write();
/// pending.upsert("customers", Record::new("C-2", LatLon::new(48.85, 2.35)?))?;
/// let snap = db.read();
/// let shown = [format!("{db:?}"), format!("{snap:?}"), format!("{:?}", snap.collection("customers")?), format!("{pending:?}")];
/// for shown in shown {
///     assert!(!shown.contains("C-") && !shown.contains("48.85"), "{shown}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Database {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Clone for Database {
    /// Another handle on the same open database (cheap; counted, so that dropping the last
    /// one waits for a running automatic checkpoint).
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Database { inner: Arc::clone(&self.inner) }
    }
}

/// Shared state behind a [`Database`] handle.
///
/// Lock order: a thread holding one of these takes only later ones — `checkpointing`,
/// `writer`, `state`, `master`, `keystore`, `manifest`, `erasures_in_flight`; `queue`, the
/// audit log and the segment readers are taken alone or last. (A reader holds `state` while
/// it reveals PII; a commit round holds `writer` while it applies, then `keystore` and
/// `manifest` to destroy erased keys.)
pub(crate) struct Inner {
    /// Unique within the process (never reused, unlike an address): what [`held`] counts
    /// snapshots by.
    pub(crate) instance: u64,
    pub(crate) dir: PathBuf,
    pub(crate) db_id: [u8; 16],
    pub(crate) durability: Durability,
    /// The master key, when the host supplied one (replaced by key rotation).
    pub(crate) master: Mutex<Option<MasterKey>>,
    pub(crate) state: RwLock<State>,
    pub(crate) writer: Mutex<Writer>,
    /// Wrapped data keys. Write-locked only while the leader adds keys in memory; syncs and
    /// reads (`reveal`) share it, so readers never wait for an fsync or the writer.
    pub(crate) keystore: RwLock<Option<Keystore>>,
    pub(crate) queue: Mutex<CommitQueue>,
    pub(crate) queue_cv: Condvar,
    pub(crate) segments: read::SegmentReaders,
    pub(crate) recovery: RecoveryReport,
    /// Records opening removed because an erasure destroyed their key (their tombstone went
    /// with a damaged final log frame).
    pub(crate) erasures_restored: u64,
    pub(crate) fs: Arc<dyn FileSystem>,
    /// The manifest as last published (rewritten by checkpoints, under the writer lock).
    pub(crate) manifest: Mutex<Manifest>,
    pub(crate) checkpoint_after_ops: Option<u64>,
    pub(crate) checkpoint_after_log_bytes: Option<u64>,
    /// Log bytes in the segments from the last checkpoint's segment on (what opening would
    /// replay); changed under the writer lock only.
    pub(crate) log_tail_bytes: std::sync::atomic::AtomicU64,
    /// Why open could not use the manifest's checkpoint and replayed the log instead.
    pub(crate) checkpoint_rejected: Option<String>,
    /// The last automatic checkpoint's failure, with the LSN before which no automatic
    /// checkpoint is tried again (so a failing disk is not hit on every commit).
    pub(crate) auto_checkpoint_error: Mutex<Option<checkpoint::AutoCheckpointError>>,
    /// Held for the whole of a checkpoint or compaction: one at a time.
    pub(crate) checkpointing: Mutex<()>,
    /// Ids of erasures checked against the cap on erased key ids listed in the MANIFEST whose
    /// commits have not returned yet (they are counted in the list only then).
    pub(crate) erasures_in_flight: Mutex<usize>,
    /// Automatic checkpoints run on their own thread (see `Options::background_checkpoints`).
    pub(crate) background_checkpoints: bool,
    /// The running (or last) automatic checkpoint's thread; joined before the last handle
    /// closes the database.
    pub(crate) auto_checkpoint: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Open `Database` handles (clones included).
    pub(crate) handles: std::sync::atomic::AtomicUsize,
    /// The keystore file exists but opening did not read it: it is read when first needed
    /// ([`Inner::ensure_keystore`]), unlocked with `master` when there is one.
    pub(crate) keystore_deferred: std::sync::atomic::AtomicBool,
    /// This open created the keystore, under the key it was given.
    pub(crate) keystore_created: bool,
    /// Interrupted erasures (collection, id, key id) an open for `repair` left for it to finish.
    pub(crate) pending_erasures: Mutex<Vec<(String, String, u64)>>,
    /// The audit log of PII reads.
    pub(crate) audit: crate::audit::AuditLog,
    /// Set when this open created the database (under the lock).
    created: Option<Created>,
    /// Opened with [`Options::read_only`]: no lock, and every write refused.
    pub(crate) read_only: bool,
    /// The directory lock (none for a read-only open).
    _lock: Option<Box<dyn DirLock>>,
}

/// The directory and the database id: never the state (every record written since the last
/// checkpoint, with its id, location, attributes and blind values), the keys or the files.
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("dir", &self.dir)
            .field(
                "db_id",
                &format_args!("{}", self.db_id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            )
            .finish_non_exhaustive()
    }
}

/// What an open that created the database knows of it.
#[derive(Debug, Clone)]
struct Created {
    /// What removing it again must leave: the directories the open also made (the
    /// database's and its missing ancestors), and what was in the database's before.
    undo: UndoCreate,
    /// The next LSN right after the creation: nothing was committed while it still is.
    next_lsn: u64,
}

/// What only the writer touches.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) log: Log,
    /// Set by the first failed write or fsync; every later write is refused.
    pub(crate) poisoned: Option<String>,
}

/// Batches waiting for the leader, and results waiting for their committers.
#[derive(Debug, Default)]
pub(crate) struct CommitQueue {
    pub(crate) next_ticket: u64,
    pub(crate) waiting: Vec<write::Waiting>,
    pub(crate) done: HashMap<u64, Result<CommitReceipt>>,
    pub(crate) leader: bool,
}

impl Database {
    /// Opens (or creates) the database in `dir`, replaying its log.
    ///
    /// # Errors
    /// [`Error::Locked`] when another writer has it open; [`Error::Corrupt`] naming the file
    /// and offset of damaged acknowledged data; [`Error::NotADatabase`] — without
    /// `create_if_missing` — for a directory with no `MANIFEST` and nothing of a database;
    /// [`Error::WrongKey`] for a key
    /// that is not this database's; [`Error::InvalidKey`] for a key the provider cannot
    /// give (a key file of the wrong length, say); [`Error::UnsupportedVersion`] for a file
    /// written by a newer geocrm; [`Error::InvalidArgument`] for an audit actor that is
    /// empty, over 256 bytes or holds a control, line-separator or invisible character
    /// ([`Options::actor`]), or for a key given to a read-only open ([`Options::read_only`]);
    /// [`Error::Io`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Database> {
        if options.read_only {
            return Self::open_read_only(dir.as_ref(), &options);
        }
        Self::open_attempt(dir.as_ref().to_owned(), options, 3)
    }

    /// A read-only open ([`Options::read_only`]), started again (up to 5 times) when the
    /// MANIFEST changed under it: the holder's checkpoint or compaction deletes the files the
    /// MANIFEST read first named, which then fail to open (or make the checkpoint
    /// unusable, and the whole log be replayed instead).
    fn open_read_only(dir: &Path, options: &Options) -> Result<Database> {
        let manifest = || manifest::read_bytes(options.fs.as_ref(), dir).ok();
        let mut retries = 5;
        loop {
            let before = manifest();
            let opened = Self::open_attempt(dir.to_owned(), options.clone(), 0);
            // A segment gone when the open went to hold it: most likely one a compaction
            // removed since the log was replayed (with the MANIFEST replaced); otherwise the
            // log is damaged there, and the open goes on (`verify` reports it).
            let stale = match &opened {
                Ok(db) => db.checkpoint_rejected().is_some() || db.inner.segments.found_gone(),
                Err(_) => true,
            };
            if stale && retries > 0 && manifest() != before {
                retries -= 1;
                continue;
            }
            return opened;
        }
    }

    /// [`Database::open`]; `attempts` bounds how often it starts again after the directory
    /// went while it waited for the lock.
    fn open_attempt(dir: PathBuf, options: Options, attempts: u32) -> Result<Database> {
        options::check_actor(&options.actor)?;
        let read_only = options.read_only;
        if read_only && options.key.is_some() {
            return Err(Error::invalid_argument(
                "read_only",
                "a read-only open takes no key: PII reads are recorded in the audit log, which only the \
                 process holding the database appends to",
            ));
        }
        // Every change a read-only open would make is refused by its file system, even one
        // the code below forgot to skip.
        let fs: Arc<dyn FileSystem> = if read_only {
            Arc::new(crate::io::ReadOnlyFs::new(options.fs.clone()))
        } else {
            options.fs.clone()
        };
        let create = options.create && !read_only;
        // The directories this open makes (`dir` and its missing ancestors), deepest first.
        let mut made = Vec::new();
        let no_such_directory = || {
            Error::io(
                "open database",
                &dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            )
        };
        if !fs.exists(&dir)? {
            if !create {
                return Err(no_such_directory());
            }
            let mut at = Some(dir.as_path());
            while let Some(missing) = at.filter(|p| !p.as_os_str().is_empty()) {
                if fs.exists(missing)? {
                    break;
                }
                made.push(missing.to_owned());
                at = missing.parent();
            }
            fs.create_dir_all(&dir)?;
            // Make each new directory's entry durable in its parent, top down (else a power
            // loss could take a new ancestor's entry, and the database with it).
            for new in made.iter().rev() {
                // A relative path's topmost directory is in the current one (`""`).
                match new.parent() {
                    Some(parent) if parent.as_os_str().is_empty() => fs.sync_dir(Path::new("."))?,
                    Some(parent) => fs.sync_dir(parent)?,
                    None => {}
                }
            }
        }
        // Refused before the lock file is created: a failed open leaves the directory as it
        // was (the CLI creates databases only in empty directories). While a lock file is
        // there, its holder may be creating the database or discarding it (the MANIFEST goes
        // first, the log after it, the lock file last): the answer waits — up to the lock
        // wait, without taking the lock (it may be another program's lock file) — for the
        // MANIFEST to appear or the lock file to go.
        if !create && !fs.exists(&dir.join(manifest::MANIFEST_NAME))? {
            let deadline = std::time::Instant::now() + options.lock_wait;
            loop {
                if !fs.exists(&dir)? {
                    return Err(no_such_directory());
                }
                if fs.exists(&dir.join(manifest::MANIFEST_NAME))? {
                    break;
                }
                if !fs.exists(&dir.join(LOCK_FILE))? || std::time::Instant::now() >= deadline {
                    return Err(not_a_database(fs.as_ref(), &dir));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        // A file of the user's named like the lock file is used as it, and never removed (a
        // lock file is empty: an empty one is a database's, left by a crash or by an open
        // that waited for a database discarded meanwhile).
        let lock_existed = fs.open_read(&dir.join(LOCK_FILE)).is_ok_and(|f| !f.is_empty());
        let lock = if read_only && !options.read_only_locked {
            None
        } else {
            // Through the real file system: a locked read-only open takes the lock too.
            Some(match lock_with_wait(options.fs.as_ref(), &dir, options.lock_wait) {
                // The directory went while this open waited: the database's creator discarded it
                // (`discard_if_new_and_empty`) with the directory it had made. Asked to create
                // one, this open starts again (and makes the directory); else there is none.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && !fs.exists(&dir)? =>
                {
                    return match (create, attempts.checked_sub(1)) {
                        (true, Some(left)) => Self::open_attempt(dir, options, left),
                        (true, None) => Err(Error::io("lock", dir.join(LOCK_FILE), source)),
                        (false, _) => Err(no_such_directory()),
                    };
                }
                other => other?,
            })
        };
        // An earlier process may have renamed a segment, MANIFEST, checkpoint file or
        // keystore into place and died before its directory fsync. This open builds on those
        // entries (appends to the segment, trusts the MANIFEST, deletes what it no longer
        // names), so they are made durable first, or a power loss could undo them under
        // acknowledged writes.
        for d in [dir.clone(), dir.join("log"), dir.join(INDEX_DIR)] {
            if fs.exists(&d)? {
                fs.sync_dir(&d)?;
            }
        }
        // `repair` reads every file whole anyway, and must set a damaged one aside.
        let verify =
            match (options.checkpoint_checksums, options.checkpoints_checked_at_open || options.repair) {
                (false, _) => Verify::StructureOnly,
                (true, true) => Verify::Checksums,
                (true, false) => Verify::OnFirstUse,
            };
        let (mut manifest, mut undo) = match Manifest::load(fs.as_ref(), &dir)? {
            Some(m) => (m, None),
            None if !create => {
                // It was there before the lock: its creator discarded it while this open
                // waited (`discard_if_new_and_empty`). No lock file is left behind (an empty
                // one: the user's own file of that name is not touched).
                let lock_file = dir.join(LOCK_FILE);
                if fs.open_read(&lock_file).is_ok_and(|f| f.is_empty()) {
                    let _ = fs.remove_file(&lock_file);
                }
                return Err(not_a_database(fs.as_ref(), &dir));
            }
            None => {
                // An open that creates the database and then fails (a key file that cannot be
                // read, say; or a write of the MANIFEST itself) leaves none behind.
                let mut keep = fs.list_dir(&dir)?;
                keep.retain(|name| name != LOCK_FILE || lock_existed);
                let undo = UndoCreate { fs: fs.clone(), dir: dir.clone(), made, keep, done: false };
                (create_manifest(fs.as_ref(), &dir, create)?, Some(undo))
            }
        };
        let db_id = manifest.db_id;
        let keystore_path = dir.join(crate::crypto::KEYSTORE_FILE);
        let keystore_exists = fs.exists(&keystore_path)?;
        // Only an open that could create a keystore (one with a key) must refuse; without a
        // key, locations and attributes stay readable (PII reads fail with `MissingKey`) and
        // `verify` reports the missing file. `repair` refuses it.
        if manifest.keystore && !keystore_exists && (options.key.is_some() || options.repair) {
            // Creating an empty one in its place would make every sealed record read as
            // erased (and `repair` delete them as such).
            return Err(Error::corrupt(
                keystore_path,
                0,
                "the keystore is missing, though this database has had one: restore it from a backup \
                 (without it no sealed PII can be decrypted)",
            ));
        }

        // The keystore's entries are needed only to read or write PII, to finish or perform
        // an erasure and to check replayed records' keys: loading a large keystore (half a
        // second for a million keys) takes far longer than mapping the checkpoint, so it
        // waits until then (`ensure_keystore`). A key is checked against the keystore's
        // header now, so a wrong one is refused at once.
        let defer_keystore = keystore_exists && (options.key.is_none() || !options.repair);
        let (keystore, master) = match (defer_keystore, options.key.as_deref()) {
            (true, None) => (None, None),
            (true, Some(provider)) => {
                (None, Some(Keystore::check_master_key(fs.as_ref(), &dir, db_id, provider)?))
            }
            (false, provider) => keys::open_keystore(&fs, &dir, db_id, provider)?,
        };

        // A rotation (or erasure) that crashed before its rename left `keystore.tmp`: every
        // data key, wrapped — under the new master key, for a rotation. Nothing reads it; a
        // writable open removes it rather than leave the copy until the next keystore rewrite
        // (from the privacy review).
        let keystore_tmp = dir.join(format!("{}.tmp", crate::crypto::KEYSTORE_FILE));
        // Best effort: a removal that keeps failing must not keep the database from opening
        // (the next open tries again).
        if !read_only && fs.exists(&keystore_tmp).unwrap_or(false) && fs.remove_file(&keystore_tmp).is_ok() {
            let _ = fs.sync_dir(&dir);
        }
        let log_dir = dir.join("log");
        let no_segment = crate::log::has_no_segment(fs.as_ref(), &log_dir)?;
        let pristine = manifest.checkpoint.is_none() && manifest.log_floor <= 1;
        let unfinished_creation = pristine
            && !manifest.keystore
            && !keystore_exists
            && !fs.exists(&dir.join(crate::audit::AUDIT_FILE))?;
        let repairing_empty = options.repair && manifest.checkpoint.is_none();
        if read_only && pristine {
            // The database's creator publishes the MANIFEST, then the log's first segment:
            // in between, a read-only open (which took no lock) waits for it, up to the lock
            // wait, rather than calling the log lost.
            let first = crate::log::segment_path(&log_dir, 1);
            let deadline = std::time::Instant::now() + options.lock_wait;
            while !fs.exists(&first)? && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let config = LogConfig::default().with_segment_bytes(options.segment_bytes);
        let mut verify = verify;
        let mut cut_tail = None;
        let (mut state, start, rejected, mut log, mut recovery) = loop {
            let checkpoint::Loaded { mut state, start, rejected } =
                checkpoint::load(fs.as_ref(), &dir, &manifest, verify);
            // A database this open creates has no log yet: its first segment is made now. So
            // does one whose creation a crash cut between the MANIFEST and the first segment
            // (nothing else of it exists), and a repair of a log with no segment left and no
            // checkpoint (it reports what it removed).
            let start =
                if undo.is_some() || (!read_only && no_segment && (unfinished_creation || repairing_empty)) {
                    None
                } else {
                    start
                };
            state.replaying = true;
            for c in state.collections.values_mut() {
                c.table.begin_bulk();
            }
            let (log, recovery) =
                Log::open_from_with(fs.clone(), &dir, db_id, config, start, read_only, &mut |txn| {
                    read::replay_txn(&mut state, &log_dir, txn)
                })?;
            state.replaying = false;
            for c in state.collections.values_mut() {
                c.table.finish_bulk();
            }
            // Replay looked up the rows it replaced in the checkpoint, checking the id
            // sections on first use: if one was damaged the lookups were wrong. It is marked
            // (later opens check it whole at once), and this one starts over with every file
            // checked whole, so the damaged one is set aside.
            let mut damaged = false;
            for base in state.collections.values().filter_map(|c| c.base.as_ref()) {
                damaged |= checkpoint::mark_if_damaged(fs.as_ref(), &base.checkpoint).is_err();
            }
            if damaged && verify == Verify::OnFirstUse {
                drop(log);
                cut_tail = cut_tail.or(recovery.truncated);
                verify = Verify::Checksums;
                continue;
            }
            break (state, start, rejected, log, recovery);
        };
        recovery.truncated = recovery.truncated.or(cut_tail);
        state.next_lsn = log.next_lsn();
        // Leftovers of an interrupted checkpoint or compaction (best effort).
        let named = manifest.checkpoint.as_ref().map(|c| c.files.clone()).unwrap_or_default();
        if rejected.is_none() && !read_only {
            checkpoint::remove_unnamed_files(fs.as_ref(), &dir.join(INDEX_DIR), &named);
        }
        // Best effort, like the orphans above: segments below the floor are not read, and
        // a removal that keeps failing must not keep a sound database from opening (from
        // the checkpoint review); the next open tries again.
        if manifest.log_floor > 1 && !read_only {
            let _ = log.remove_segments_below(manifest.log_floor);
        }
        // What opening replayed: the segments from the checkpoint's (or the floor) on.
        let live_segments = log.segment_numbers()?;
        let log_tail_bytes: u64 = live_segments
            .iter()
            .filter(|&&n| start.as_ref().is_none_or(|s| n >= s.segment))
            .map(|&n| fs.open_read(&crate::log::segment_path(&log_dir, n)).map_or(0, |f| f.len()))
            .sum();
        let erased = std::mem::take(&mut state.erased_keys);
        let mut erased_rows = std::mem::take(&mut state.replayed_erasures);
        let mut erasures_restored = 0;
        // An erasure whose tombstone went with a damaged final frame (cut as a torn tail)
        // still holds: the MANIFEST names the keys it destroyed. (`repair` erases them
        // again itself, and reports it.)
        if !options.repair && manifest.erased_key_ids.as_ref().is_some_and(|ids| !ids.is_empty()) {
            let mut restored = state.remove_rows_with_erased_keys(|k| manifest.erased_key(k) == Some(true));
            erasures_restored = restored.len() as u64;
            erased_rows.append(&mut restored);
        }
        let tail_needs_keys = !erased.is_empty()
            || state.collections.values().any(|c| c.table.rows().any(|r| r.key_id.is_some()));
        // A read-only open reads no PII and finishes no erasure: the keystore waits (a key
        // missing for a record it replayed may be one an erasure by the holder destroyed
        // after the replay).
        let (mut keystore, keystore_deferred) = if defer_keystore && tail_needs_keys && !read_only {
            (keys::load_keystore(&fs, &dir, db_id, master.as_ref())?, false)
        } else {
            (keystore, defer_keystore)
        };
        if let Some(ks) = keystore.as_mut() {
            keys::never_reissue_erased(ks, &manifest);
        }
        // Checked before anything rewrites the keystore (finishing an erasure does): a
        // failed open leaves a dropped final frame in the file for `repair` to see. Erased
        // records are not live, so their keys are not looked for.
        // The database's point readers (the check below reads through them too).
        // A read-only open holding the lock (`geocrm verify`) sees no compaction meanwhile.
        let segments = read::SegmentReaders::new(fs.clone(), log_dir, read_only && !options.read_only_locked);
        // Not holding the lock, a read-only handle keeps the segments its records are in open
        // (within the process's budget): the holder's compaction removing them then leaves its
        // point reads working.
        if read_only && !options.read_only_locked {
            let from = manifest.log_floor.max(log.first_segment());
            let at = live_segments.partition_point(|&n| n < from);
            segments.hold(from, live_segments.get(at..).unwrap_or_default());
        }
        if !options.repair && !read_only {
            keys::check_keys_present(&state, keystore.as_ref(), &dir)?;
            if let Some(ks) = keystore.as_ref() {
                keys::check_checkpoint_keys_present(&state, ks, &segments, fs.as_ref(), &dir)?;
            }
        }
        // A dropped final keystore frame stays in the file: it is cut before the next
        // append of keys (or by an erasure's or rotation's rewrite, or at the end of a
        // repair), so the evidence of a damaged frame survives opens — `repair` keeps the
        // records whose keys it held, without their PII, instead of taking them for erased.
        // Repairing, interrupted erasures are finished by `repair` itself, after it has drawn
        // its conclusions from the keystore as found (finishing rewrites the keystore).
        // An erasure interrupted before its checkpoint left the erased records' rows in the
        // checkpoint's index files (hidden, but on disk): this open finishes it with one —
        // for records with PII or without (those were missed: from the checkpoint review),
        // and also when the checkpoint was rejected (its files still hold the rows; the new
        // checkpoint's publication removes them).
        let erased_in_checkpoint = !read_only
            && !options.repair
            && ((rejected.is_some() && !erased_rows.is_empty())
                || erased_rows.iter().any(|(c, id)| {
                    state
                        .collections
                        .get(c)
                        .and_then(|c| c.base.as_ref())
                        .is_some_and(|b| b.checkpoint.find(id).is_some())
                }));
        let (keystore, pending_erasures) = if options.repair {
            (keystore, erased)
        } else if read_only {
            // The records are gone from the state; their keys are the holder's to destroy.
            (keystore, Vec::new())
        } else {
            let record = |ids: &[u64]| keys::record_erased_keys(fs.as_ref(), &dir, &mut manifest, ids);
            (keys::finish_erasures(keystore, &erased, record)?, Vec::new())
        };
        let keystore_created = matches!(
            (&keystore, options.key.as_deref()),
            (None, Some(_)) if !options.repair && !keystore_deferred
        );
        let (keystore, master) = match (keystore, options.key.as_deref()) {
            // Never while repairing: repair refuses a missing keystore (in `finish`) rather
            // than put an empty one in its place.
            (None, Some(provider)) if keystore_created => keys::create_keystore(&fs, &dir, db_id, provider)?,
            (keystore, _) => (keystore, master),
        };
        if !manifest.keystore && (keystore.is_some() || keystore_exists) && !read_only {
            // From now on a missing keystore is a lost one (databases of older versions learn
            // it here, at their first open by this one).
            let next = Manifest { keystore: true, ..manifest.clone() };
            next.store(fs.as_ref(), &dir)?;
            manifest = next;
        }

        let audit = crate::audit::AuditLog::open(
            fs.clone(),
            &dir,
            db_id,
            options.audit && !read_only,
            options.repair,
            &options.actor,
        )?;
        let created = undo.as_mut().map(|undo| {
            undo.done = true;
            // Kept done: only `discard_if_new_and_empty` removes it, never a drop.
            Created { undo: undo.clone(), next_lsn: state.next_lsn }
        });
        let inner = Inner {
            instance: held::new_instance(),
            segments,
            dir,
            db_id,
            durability: options.durability,
            master: Mutex::new(master),
            state: RwLock::new(state),
            writer: Mutex::new(Writer { log, poisoned: None }),
            keystore: RwLock::new(keystore),
            queue: Mutex::new(CommitQueue::default()),
            queue_cv: Condvar::new(),
            recovery,
            erasures_restored,
            fs: fs.clone(),
            manifest: Mutex::new(manifest),
            checkpoint_after_ops: options.checkpoint_after_ops,
            checkpoint_after_log_bytes: options.checkpoint_after_log_bytes,
            log_tail_bytes: std::sync::atomic::AtomicU64::new(log_tail_bytes),
            checkpoint_rejected: rejected,
            auto_checkpoint_error: Mutex::new(None),
            checkpointing: Mutex::new(()),
            erasures_in_flight: Mutex::new(0),
            background_checkpoints: options.background_checkpoints,
            auto_checkpoint: Mutex::new(None),
            handles: std::sync::atomic::AtomicUsize::new(1),
            keystore_deferred: std::sync::atomic::AtomicBool::new(keystore_deferred),
            keystore_created,
            pending_erasures: Mutex::new(pending_erasures),
            audit,
            created,
            read_only,
            _lock: lock,
        };
        let db = Database { inner: Arc::new(inner) };
        if erased_in_checkpoint {
            // Best effort: a failure (a full disk, say) must not keep the database from
            // opening. It is reported as an automatic checkpoint's is (`stats`), and the
            // next checkpoint, automatic or not, finishes the erasure.
            if let Err(e) = db.checkpoint() {
                *db.inner.auto_checkpoint_error.lock() = Some(checkpoint::AutoCheckpointError {
                    reason: format!("the checkpoint finishing an interrupted erasure failed: {e}"),
                    retry_lsn: 0,
                    retry_tail_bytes: 0,
                });
            }
        }
        Ok(db)
    }

    /// Closes the database and deletes it again if this handle's open created it and
    /// nothing was committed since: for a tool that creates a database to import into and
    /// must not leave an empty one behind (with a keystore bound to the key it was given)
    /// when the import is refused. Returns whether it was deleted; otherwise it is only
    /// closed — when it existed before, was written to, or another handle (a clone) is open.
    ///
    /// The files go while the directory lock is still held, so no other process can have
    /// opened the database meanwhile: first the `MANIFEST` (from then on, whatever a failure
    /// or a power loss leaves is not a database, and opening refuses to create one over a
    /// left-over log), then the log and index directories with everything in them, the
    /// keystore and the audit log, the lock file last, and the directory itself (and the
    /// missing ancestors made for it) when the open created it and nothing else is in it
    /// (other files in it stay).
    ///
    /// ```
    /// use geocrm::{Database, Options};
    /// let parent = tempfile::tempdir()?;
    /// let dir = parent.path().join("new");
    /// let db = Database::open(&dir, Options::new())?;
    /// assert!(db.discard_if_new_and_empty()?);
    /// assert!(!dir.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be removed (the rest is left as it is).
    pub fn discard_if_new_and_empty(self) -> Result<bool> {
        let inner = &self.inner;
        let Some(created) = &inner.created else { return Ok(false) };
        if inner.handles.load(std::sync::atomic::Ordering::Acquire) != 1 {
            return Ok(false);
        }
        // Snapshots borrow this handle, and no other exists: nothing commits meanwhile.
        if inner.read_state().next_lsn != created.next_lsn {
            return Ok(false);
        }
        // Its audit log's close record is not written into a directory that may be
        // another database's once the lock is gone.
        inner.audit.detach();
        created.undo.remove()?;
        // Only now is the lock released (the lock file is unlinked: anyone who opened it
        // before finds it gone once they hold it, and tries again).
        drop(self);
        Ok(true)
    }

    /// Starts a batch of writes.
    pub fn begin_write(&self) -> WriteBatch<'_> {
        WriteBatch::new(self)
    }

    /// Creates a collection (a one-operation batch).
    ///
    /// # Errors
    /// As [`WriteBatch::create_collection`] and [`WriteBatch::commit`].
    pub fn create_collection(&self, name: &str, schema: Schema) -> Result<CommitReceipt> {
        let mut batch = self.begin_write();
        batch.create_collection(name, schema)?;
        batch.commit()
    }

    /// A consistent view for queries. Commits wait for open snapshots only while they
    /// apply (never during their fsync); keep snapshots short-lived. On a thread that holds
    /// a snapshot, a commit, checkpoint, compaction, erasure, key rotation,
    /// [`Database::sync`] or [`Database::verify`] could wait for that snapshot forever:
    /// they return [`Error::SnapshotHeld`] there and do nothing. Queries, PII reads, more
    /// snapshots (of any database, taken without queueing behind a waiting writer), building
    /// a batch, [`Database::stats`] and [`Database::next_lsn`] work there. Only the thread's
    /// own snapshots are known: while holding one, never wait for another thread that
    /// commits (or does any of the above) on this database. A snapshot cannot be sent to
    /// another thread.
    ///
    /// ```
    /// use geocrm::{Database, Error, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("shops", Schema::new())?;
    /// let snapshot = db.read();
    /// let mut batch = db.begin_write();
    /// batch.upsert("shops", Record::new("s1", LatLon::new(48.85, 2.35)?))?;
    /// assert!(matches!(db.checkpoint(), Err(Error::SnapshotHeld { .. })));
    /// drop(snapshot);
    /// batch.commit()?;
    /// assert_eq!(db.read().collection("shops")?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```compile_fail,E0277
    /// fn must_be_send<T: Send>(_: T) {}
    /// let dir = tempfile::tempdir().unwrap();
    /// let db = geocrm::Database::open(dir.path(), geocrm::Options::new()).unwrap();
    /// must_be_send(db.read()); // a snapshot stays on the thread that took it
    /// ```
    #[must_use]
    pub fn read(&self) -> Snapshot<'_> {
        Snapshot::new(&self.inner)
    }

    /// Makes every committed write durable (needed only with
    /// [`Durability::NoSyncBulkLoad`]).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Poisoned`]; a failed sync poisons the database;
    /// [`Error::SnapshotHeld`] on a thread holding a snapshot.
    pub fn sync(&self) -> Result<()> {
        self.inner.refuse_write("sync")?;
        let mut w = self.inner.writer.lock();
        if let Some(reason) = &w.poisoned {
            return Err(Error::Poisoned { reason: reason.clone() });
        }
        let result =
            self.inner.keystore.read().as_ref().map_or(Ok(()), Keystore::sync).and_then(|()| w.log.sync());
        if let Err(e) = &result {
            w.poisoned.get_or_insert_with(|| e.to_string());
        }
        result
    }

    /// Writes every live record into memory-mapped checkpoint files, so the next open
    /// replays only what is written after this (and queries read the packed R-tree and
    /// columns instead of the in-memory table). Commits go on while the files are built and
    /// wait only while they are swapped in; readers do not wait. A no-op when nothing was
    /// written since the last checkpoint; a collection whose records nothing changed since
    /// keeps its file ([`CheckpointReport::kept`]) instead of having it written again.
    ///
    /// ```
    /// use geocrm::{Database, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("shops", Schema::new().number("sales"))?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("shops", Record::new("S-1", LatLon::new(45.76, 4.83)?).number("sales", 10.0))?;
    /// batch.commit()?;
    /// let report = db.checkpoint()?;
    /// assert_eq!(report.rows, 1);
    /// drop(db);
    /// let db = Database::open(dir.path(), Options::new())?; // maps the checkpoint, replays nothing
    /// let near = db.read().collection("shops")?.nearest(LatLon::new(45.0, 4.0)?, 1, &Filter::All)?;
    /// assert_eq!(near[0].id, "S-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] (a failure before the manifest is published leaves the previous
    /// checkpoint in force; a failure of the log poisons the database); [`Error::Poisoned`];
    /// [`Error::Corrupt`] when a file of the current checkpoint (of any collection) is found
    /// damaged — its sections are checked whole first; the next open sets it aside;
    /// [`Error::SnapshotHeld`] on a thread holding a snapshot.
    pub fn checkpoint(&self) -> Result<CheckpointReport> {
        self.inner.checkpoint(false)
    }

    /// Rewrites the log keeping only live records — dropping superseded, deleted and erased
    /// ones, so erased customers' ciphertext leaves the disk — then checkpoints and deletes
    /// the old segments.
    ///
    /// # Errors
    /// As [`Database::checkpoint`]; [`Error::Corrupt`] if a live record cannot be read back.
    pub fn compact(&self) -> Result<CheckpointReport> {
        self.inner.checkpoint(true)
    }

    /// Why the checkpoint named by the manifest could not be used at open (the state was
    /// rebuilt from the log instead), if that happened.
    #[must_use]
    pub fn checkpoint_rejected(&self) -> Option<&str> {
        self.inner.checkpoint_rejected.as_deref()
    }

    /// Whether this open created the keystore: a keyed open of a database that had none
    /// (nothing was stored under a key yet), so the key was checked against nothing and is
    /// the database's from now on.
    ///
    /// ```
    /// use geocrm::{crypto::RawKey, Database, Options};
    /// let dir = tempfile::tempdir()?;
    /// drop(Database::open(dir.path(), Options::new())?);
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([6; 32])))?;
    /// assert!(db.created_keystore());
    /// drop(db);
    /// let db = Database::open(dir.path(), Options::new().key(RawKey::new([6; 32])))?;
    /// assert!(!db.created_keystore());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn created_keystore(&self) -> bool {
        self.inner.keystore_created
    }

    /// What recovery did when the database was opened (e.g. a torn log tail it cut off).
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The database directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The LSN the next write will get.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        // Recursive: callable on a thread that holds a snapshot (see `read`).
        self.inner.state.read_recursive().next_lsn
    }

    /// Whether the database was opened with a master key (needed to write or read PII).
    pub(crate) fn has_key(&self) -> bool {
        self.inner.master.lock().is_some()
    }
}

impl Inner {
    /// [`Self::ensure_keystore`], then — when its final frame was left out — the check a keyed
    /// open makes ([`Self::check_keys_present`]): for what rewrites the keystore without a key
    /// (erasure, compaction) and `verify`, before a rewrite drops the frame for good.
    pub(crate) fn ensure_keystore_checked(&self) -> Result<()> {
        self.ensure_keystore()?;
        let state = self.read_state();
        let keystore = self.keystore.read();
        match keystore.as_ref() {
            Some(ks) => self.check_keys_present(&state, ks),
            None => Ok(()),
        }
    }

    /// Drops a final keystore frame the open left out (damaged) from the file. Call only
    /// after [`Self::ensure_keystore_checked`] found it holds no key a live record uses (no
    /// commit can start using one since: its keys are in no map, and an append drops the
    /// frame first). It may still hold keys of records deleted before it was damaged, which
    /// no erasure or compaction could reach otherwise and a later `repair` could take back
    /// (from the review of the keystore repair).
    pub(crate) fn drop_left_out_keystore_frame(&self) -> Result<()> {
        match self.keystore.write().as_mut() {
            Some(ks) => ks.cut_torn_tail(),
            None => Ok(()),
        }
    }

    /// When the keystore's final frame was left out (damaged): that it held no key a live
    /// record uses ([`keys::check_keys_present`], [`keys::check_checkpoint_keys_present`]).
    fn check_keys_present(&self, state: &State, ks: &Keystore) -> Result<()> {
        if ks.dropped_tail_at().is_none() {
            return Ok(());
        }
        keys::check_keys_present(state, Some(ks), &self.dir)?;
        keys::check_checkpoint_keys_present(state, ks, &self.segments, &*self.fs, &self.dir)
    }

    /// Reads the keystore now if opening deferred it; every use of its entries calls this
    /// first, holding no lock after `state` in the lock order.
    ///
    /// With a key, on a writable handle, it then checks (as opening did when it read the
    /// keystore at once) that a final frame left out of the file held no key a live record
    /// uses: the next key written would cut that frame for good, before `repair` could keep
    /// those records. Until a repair every use fails with that [`Error::Corrupt`], and the
    /// keystore stays unread.
    pub(crate) fn ensure_keystore(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if !self.keystore_deferred.load(Ordering::Acquire) {
            return Ok(());
        }
        // Read holding no lock (two threads may both read it; one installs it), then
        // unlocked with the master key.
        let read = keys::load_keystore(&self.fs, &self.dir, self.db_id, None).and_then(|mut loaded| {
            let master = self.master.lock();
            if let (Some(ks), Some(master)) = (loaded.as_mut(), master.as_ref()) {
                ks.unlock(master)?;
            }
            Ok((loaded, master.is_some()))
        });
        let (loaded, keyed) = match read {
            Ok(read) => read,
            // Another thread installed its copy meanwhile, and perhaps rewrote the file since
            // (a rotation: this copy would fail the new key).
            Err(_) if !self.keystore_deferred.load(Ordering::Acquire) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(ks) = loaded.as_ref().filter(|_| keyed && !self.read_only) {
            if let Err(e) = self.check_keys_present(&self.read_state(), ks) {
                // Unless another thread installed its copy meanwhile (checked, and perhaps
                // written to since: this copy is older than the state it was checked with).
                if self.keystore_deferred.load(Ordering::Acquire) {
                    return Err(e);
                }
            }
        }
        let mut guard = self.keystore.write();
        if guard.is_none() && self.keystore_deferred.load(Ordering::Acquire) {
            *guard = loaded;
            if let Some(ks) = guard.as_mut() {
                keys::never_reissue_erased(ks, &self.manifest.lock());
            }
            self.keystore_deferred.store(false, Ordering::Release);
        }
        Ok(())
    }
}

impl Drop for Database {
    /// Waits for a running automatic checkpoint: once the last handle is gone the
    /// directory is unlocked and can be opened again at once.
    fn drop(&mut self) {
        // Only the last handle waits: a snapshot taken through another handle could hold
        // what the checkpoint needs. Snapshots borrow their handle, so the last one has none,
        // and no new handle (hence no new checkpoint thread) can appear after it.
        if self.inner.handles.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) != 1 {
            return;
        }
        let running = self.inner.auto_checkpoint.lock().take();
        if let Some(handle) = running {
            // A panic in the checkpoint thread was already contained there.
            let _ = handle.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing makes NoSyncBulkLoad writes durable; failures are ignored here because
        // nothing was promised for them (call `sync` to see errors).
        let mut synced = true;
        if self.durability == Durability::NoSyncBulkLoad {
            let keystore = self.keystore.get_mut();
            let w = self.writer.get_mut();
            if w.poisoned.is_none() {
                synced = keystore.as_ref().map_or(Ok(()), Keystore::sync).and_then(|()| w.log.sync()).is_ok();
            }
        }
        // The log's close record (`log/SYNCED`): damage to the newest transactions is then an
        // error at the next open, not a torn tail cut silently. Best effort, like the above —
        // and not after a failed keystore sync, which cut the keys the unsynced records use:
        // syncing the log then would make records durable without their keys.
        let w = self.writer.get_mut();
        if synced && !self.read_only && w.poisoned.is_none() {
            let _ = w.log.close();
        }
        // The audit log's (`audit.synced`): a damaged last entry is then reported too.
        if !self.read_only {
            self.audit.close();
        }
    }
}

use crate::model::Schema;

/// Takes the directory lock, retrying for up to `wait` while another holder has it: a
/// lock released a moment ago can still be held by a child process forked by another thread
/// until that child execs (it shares the open file description).
fn lock_with_wait(fs: &dyn FileSystem, dir: &Path, wait: std::time::Duration) -> Result<Box<dyn DirLock>> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match fs.lock_dir(dir) {
            Err(Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// How to remove a database an open created, nothing having been committed to it; removed
/// by [`UndoCreate::remove`], or on drop (an open that fails after creating the database:
/// declared after the lock, it is dropped before it, so the files go while it is held).
#[derive(Debug, Clone)]
struct UndoCreate {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// The directories the open made: the database's and its missing ancestors, deepest
    /// first.
    made: Vec<PathBuf>,
    /// What was in the directory before (the user's files, even ones named like the
    /// database's): left as they are.
    keep: Vec<String>,
    done: bool,
}

impl UndoCreate {
    /// Removes what the open created; the caller holds the lock. The `MANIFEST` goes first
    /// (and that is synced): whatever a failure or a power loss leaves after it is not a
    /// database, and opening refuses to create one over a left-over log. The lock file goes
    /// last, and the directories the open made (best effort, deepest first, each only if
    /// empty).
    fn remove(&self) -> Result<()> {
        let (fs, dir) = (&*self.fs, &self.dir);
        let ours = |name: &str| !self.keep.iter().any(|k| k == name);
        let manifest = dir.join(manifest::MANIFEST_NAME);
        if fs.exists(&manifest)? {
            fs.remove_file(&manifest)?;
            fs.sync_dir(dir)?;
        }
        for sub in [crate::log::LOG_DIR, INDEX_DIR].into_iter().filter(|s| ours(s)) {
            let path = dir.join(sub);
            if fs.exists(&path)? {
                for name in fs.list_dir(&path)? {
                    fs.remove_file(&path.join(name))?;
                }
                fs.remove_dir(&path)?;
            }
        }
        let (keystore, audit) = (crate::crypto::KEYSTORE_FILE, crate::audit::AUDIT_FILE);
        let audit_synced = crate::audit::AUDIT_SYNCED_FILE;
        let mut names: Vec<String> = [manifest::MANIFEST_NAME, keystore, audit, audit_synced]
            .iter()
            .map(|name| format!("{name}.tmp")) // of writes that failed (`write_atomic`)
            .collect();
        names.extend([keystore, audit, audit_synced, LOCK_FILE].map(String::from));
        for name in names {
            let path = dir.join(&name);
            if ours(&name) && fs.exists(&path)? {
                fs.remove_file(&path)?;
            }
        }
        // Best effort, deepest first: another open may have put its own lock file in the
        // database's directory meanwhile, or someone something in an ancestor.
        for made in &self.made {
            if fs.remove_dir(made).is_err() {
                break;
            }
        }
        Ok(())
    }
}

impl Drop for UndoCreate {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.remove();
        }
    }
}

/// No MANIFEST: a directory holding what `repair` rebuilds one from (log segments, or a
/// keystore) lost it — damage `verify` reports —, else it holds no database (a user's own
/// `log/` directory is no evidence: from the diff review).
fn not_a_database(fs: &dyn FileSystem, dir: &Path) -> Error {
    if has_database_parts(fs, dir) {
        return Error::corrupt(
            dir.join(manifest::MANIFEST_NAME),
            0,
            "the MANIFEST is missing, though the database's files are here (`geocrm repair` rebuilds it)",
        );
    }
    Error::NotADatabase { dir: dir.to_owned() }
}

/// Whether `dir` holds a log segment (`log/{n:012}.seg`) or a file starting as a keystore.
pub(crate) fn has_database_parts(fs: &dyn FileSystem, dir: &Path) -> bool {
    let segment = crate::log::has_no_segment(fs, &dir.join(crate::log::LOG_DIR)).is_ok_and(|none| !none);
    let keystore = fs.open_read(&dir.join(crate::crypto::KEYSTORE_FILE)).is_ok_and(|f| {
        let mut magic = [0u8; 8];
        f.read_exact_at(&mut magic, 0).is_ok() && &magic == crate::crypto::KEYSTORE_MAGIC
    });
    segment || keystore
}

fn create_manifest(fs: &dyn FileSystem, dir: &Path, create: bool) -> Result<Manifest> {
    if !create {
        return Err(not_a_database(fs, dir));
    }
    if fs.exists(&dir.join("log"))? {
        return Err(Error::corrupt(
            dir.join(manifest::MANIFEST_NAME),
            0,
            "the log exists but MANIFEST is missing; refusing to create a new database over it",
        ));
    }
    // Another database's keys or checkpoint files (a backup restored in part, say): a new
    // database would adopt the keystore, and its first open delete the checkpoints.
    let index = dir.join(INDEX_DIR);
    let checkpoints = fs.exists(&index)? && fs.list_dir(&index)?.iter().any(|n| n.ends_with(".ckpt"));
    if checkpoints || fs.exists(&dir.join(crate::crypto::KEYSTORE_FILE))? {
        let what = if checkpoints { "checkpoint files exist" } else { "a keystore exists" };
        let reason = format!("{what} but MANIFEST is missing; refusing to create a new database over them");
        return Err(Error::corrupt(dir.join(manifest::MANIFEST_NAME), 0, reason));
    }
    let mut db_id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut db_id);
    let created_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let m = Manifest::new(db_id, created_unix_ms);
    m.store(fs, dir)?;
    Ok(m)
}
