//! How to open a database.

use std::fmt;
use std::sync::Arc;

use crate::crypto::KeyProvider;
use crate::io::{FileSystem, RealFs};

/// When a commit becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `commit()` returns after the log (and keystore) are fsynced. Commits from several
    /// threads that arrive while an fsync is running share the next one (group commit).
    #[default]
    FsyncEachCommit,
    /// Like `FsyncEachCommit`, but the thread that performs the fsync first waits up to this
    /// long for more commits to join it: higher throughput for many concurrent writers,
    /// higher latency for each.
    GroupCommit {
        /// Longest wait before the shared fsync.
        max_wait: std::time::Duration,
    },
    /// Bulk loading: commits are written but not fsynced; `Database::sync` (or a checkpoint,
    /// or closing) makes them durable. A crash may lose commits since the last sync, never
    /// earlier ones, and never leaves a half commit. So may a failed sync: the log then cuts
    /// those commits (their bytes may be the ones the disk lost) and the database is
    /// poisoned. Until it is reopened without them, reads that go to the log for them
    /// (`get`, PII, phone and e-mail lookups) fail, while queries answered from the indexes
    /// still show their locations and attributes.
    NoSyncBulkLoad,
}

/// Default of [`Options::checkpoint_after_ops`].
pub const DEFAULT_CHECKPOINT_AFTER_OPS: u64 = 100_000;

/// Default of [`Options::checkpoint_after_log_bytes`] (64 MiB).
pub const DEFAULT_CHECKPOINT_AFTER_LOG_BYTES: u64 = 64 << 20;

/// Options for [`crate::Database::open`].
///
/// ```
/// use geocrm::{Durability, Options, crypto::RawKey};
/// let options = Options::new()
///     .key(RawKey::new([7; 32]))
///     .durability(Durability::NoSyncBulkLoad);
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) key: Option<Arc<dyn KeyProvider>>,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) segment_bytes: u64,
    pub(crate) create: bool,
    pub(crate) lock_wait: std::time::Duration,
    pub(crate) checkpoint_after_ops: Option<u64>,
    pub(crate) checkpoint_after_log_bytes: Option<u64>,
    pub(crate) background_checkpoints: bool,
    pub(crate) checkpoint_checksums: bool,
    pub(crate) checkpoints_checked_at_open: bool,
    pub(crate) audit: bool,
    pub(crate) actor: String,
    pub(crate) read_only: bool,
    /// [`Options::lock_read_only`].
    pub(crate) read_only_locked: bool,
    /// Set by [`crate::Database::repair`]: open even when live records' data keys are
    /// missing (repair re-writes those records without PII).
    pub(crate) repair: bool,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("key", &self.key.as_ref().map(|_| "<key provider>"))
            .field("fs", &self.fs)
            .field("segment_bytes", &self.segment_bytes)
            .field("create", &self.create)
            .field("lock_wait", &self.lock_wait)
            .field("checkpoint_after_ops", &self.checkpoint_after_ops)
            .field("checkpoint_after_log_bytes", &self.checkpoint_after_log_bytes)
            .field("background_checkpoints", &self.background_checkpoints)
            .field("checkpoint_checksums", &self.checkpoint_checksums)
            .field("checkpoints_checked_at_open", &self.checkpoints_checked_at_open)
            .field("audit", &self.audit)
            .field("actor", &self.actor)
            .field("read_only", &self.read_only)
            .field("repair", &self.repair)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::default(),
            key: None,
            fs: Arc::new(RealFs),
            segment_bytes: 64 << 20,
            create: true,
            lock_wait: std::time::Duration::from_millis(500),
            checkpoint_after_ops: Some(DEFAULT_CHECKPOINT_AFTER_OPS),
            checkpoint_after_log_bytes: Some(DEFAULT_CHECKPOINT_AFTER_LOG_BYTES),
            background_checkpoints: true,
            checkpoint_checksums: true,
            checkpoints_checked_at_open: false,
            audit: true,
            actor: default_actor(),
            read_only: false,
            read_only_locked: false,
            repair: false,
        }
    }
}

impl Options {
    /// Defaults: fsync each commit, no key, the real file system, create if missing.
    #[must_use]
    pub fn new() -> Self {
        Options::default()
    }

    /// Opens a snapshot of the database as it is on disk, without taking its lock and
    /// without changing a byte: for reading a database that another process holds open
    /// (`geocrm stats` or `near` beside a running application). Default false.
    ///
    /// The open maps the checkpoint and replays the log as far as it is written — a final
    /// frame still being appended by the holder is left out, not cut — and then sees no later
    /// write: open again to see newer data. Location, attribute and aggregation queries work;
    /// every write (commits, checkpoints, erasures, key rotation, `sync`) is
    /// [`crate::Error::ReadOnly`]. Nothing is repaired or marked: a damaged checkpoint is
    /// read around (the log replayed instead) and left for the holder to find.
    ///
    /// It never creates a database (`create_if_missing` is ignored); a database whose
    /// creator has published its MANIFEST but not yet its log is waited for, up to the lock
    /// wait. It takes no key ([`crate::Error::InvalidArgument`] with one): PII reads are
    /// recorded in the audit log, which only the holder may append to; nor does it check the
    /// keystore. Point reads of a record fetch it from the log: the open keeps the log's
    /// segments open, oldest first, within a budget of 128 shared by the process's read-only
    /// handles (and stops at a segment it cannot open, too many open files say), so when the
    /// holder compacts and deletes them the reads go on working: removing a file leaves it
    /// readable to those who have it open (POSIX unlink semantics; the mapped checkpoint
    /// files rely on the same). Their disk space is freed when the handle is dropped. A
    /// segment it did not keep open and finds deleted is an [`crate::Error::Io`] (not
    /// found) that says to open again.
    ///
    /// ```
    /// use geocrm::{Database, Error, Filter, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let writer = Database::open(dir.path(), Options::new())?;
    /// writer.create_collection("c", Schema::new())?;
    /// let mut b = writer.begin_write();
    /// b.upsert("c", Record::new("C-1", LatLon::new(48.85, 2.35)?))?;
    /// b.commit()?;
    /// // The writer still holds the database; a read-only open reads it anyway.
    /// let reader = Database::open(dir.path(), Options::new().read_only(true))?;
    /// let near = reader.read().collection("c")?.nearest(LatLon::new(48.0, 2.0)?, 1, &Filter::All)?;
    /// assert_eq!(near[0].id, "C-1");
    /// assert!(matches!(reader.create_collection("d", Schema::new()), Err(Error::ReadOnly { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// With [`Options::read_only`], take the database's lock all the same (waiting for it
    /// as a writable open does, up to [`Options::lock_wait`]): no other process changes the
    /// files while the handle is open, and the handle changes none. `geocrm verify` opens
    /// so. Without `read_only` it changes nothing.
    ///
    /// ```
    /// use geocrm::{Database, Error, Options};
    /// let dir = tempfile::tempdir()?;
    /// drop(Database::open(dir.path(), Options::new())?);
    /// let checker = Database::open(dir.path(), Options::new().read_only(true).lock_read_only(true))?;
    /// let writer = Database::open(dir.path(), Options::new().lock_wait(std::time::Duration::ZERO));
    /// assert!(matches!(writer, Err(Error::Locked { .. })));
    /// assert!(checker.verify()?.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn lock_read_only(mut self, lock: bool) -> Self {
        self.read_only_locked = lock;
        self
    }

    /// The master key source. Without one, location and aggregation queries work and PII
    /// reads and PII writes fail with [`crate::Error::MissingKey`].
    #[must_use]
    pub fn key(mut self, provider: impl KeyProvider + 'static) -> Self {
        self.key = Some(Arc::new(provider));
        self
    }

    /// The durability of commits.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The file system (tests pass an in-memory, fault-injecting one).
    #[must_use]
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }

    /// Size at which the log starts a new segment file (default 64 MiB).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(4096);
        self
    }

    /// How long `open` waits for another writer to release the directory lock before
    /// failing with [`crate::Error::Locked`] (default 500 ms).
    #[must_use]
    pub fn lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Automatic checkpoints: a commit that brings the operations logged since the last
    /// checkpoint to `ops` or more starts one (default 100,000; `None` turns automatic
    /// checkpoints off, whatever [`Options::checkpoint_after_log_bytes`] says — call
    /// [`crate::Database::checkpoint`] yourself). This bounds the in-memory table.
    #[must_use]
    pub fn checkpoint_after_ops(mut self, ops: Option<u64>) -> Self {
        self.checkpoint_after_ops = ops.map(|n| n.max(1));
        self
    }

    /// The second trigger of automatic checkpoints: a commit that brings the log bytes
    /// written since the last checkpoint to `bytes` or more starts one, even with fewer
    /// operations than [`Options::checkpoint_after_ops`] (default 64 MiB; `None`: operations
    /// only). This bounds the log tail that opening replays when records are large (sealed
    /// PII makes each one several hundred bytes).
    ///
    /// ```
    /// use geocrm::Options;
    /// let options = Options::new().checkpoint_after_ops(Some(1_000_000)).checkpoint_after_log_bytes(Some(16 << 20));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn checkpoint_after_log_bytes(mut self, bytes: Option<u64>) -> Self {
        self.checkpoint_after_log_bytes = bytes.map(|n| n.max(1));
        self
    }

    /// Where automatic checkpoints run (default true: on a thread of their own, so the
    /// commit that starts one returns at once). Either way a checkpoint holds the writer
    /// lock only to take its snapshot and to swap the new files in: commits and readers go
    /// on while it sorts and writes. Dropping the last [`crate::Database`] handle waits for
    /// a running one. `false` runs it on the committing thread before `commit` returns
    /// (deterministic, for tests that count I/O steps).
    ///
    /// ```
    /// use geocrm::{Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let options = Options::new().checkpoint_after_ops(Some(2)).background_checkpoints(false);
    /// let db = Database::open(dir.path(), options)?;
    /// db.create_collection("shops", Schema::new())?;
    /// let mut b = db.begin_write();
    /// b.upsert("shops", Record::new("S-1", LatLon::new(45.76, 4.83)?))?;
    /// b.commit()?; // two operations logged: this commit writes the checkpoint before returning
    /// assert!(db.stats().checkpoint.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn background_checkpoints(mut self, background: bool) -> Self {
        self.background_checkpoints = background;
        self
    }

    /// Whether the CRC-32 of every section of the checkpoint files is checked before the
    /// section is used (default true). When is [`Self::verify_checkpoints_at_open`]'s choice.
    /// Off, the structure is still validated, so queries stay in bounds whatever the bytes,
    /// but a flipped bit in a value would give wrong answers until `Database::verify` finds it
    /// (a file marked damaged by an earlier process is checked whole anyway).
    #[must_use]
    pub fn checkpoint_checksums(mut self, check: bool) -> Self {
        self.checkpoint_checksums = check;
        self
    }

    /// Whether opening reads the checkpoint files whole to check them (default false).
    ///
    /// By default a section of a checkpoint file (the R-tree, the ids, the cells, each column)
    /// has its checksum and structure checked on its first use, before any of its bytes are
    /// read: opening a million records takes a millisecond instead of a pass over 90 MB, and
    /// the first nearest-k query pays for the tree and ids (about half the file), once. A
    /// section that fails makes every later answer from that collection (and every write to
    /// it, if the id sections failed), and every checkpoint, compaction and erasure of the
    /// database, an [`Error::Corrupt`](crate::Error::Corrupt) naming the file,
    /// and leaves a marker beside it: the next open checks that file whole, sets it aside and
    /// rebuilds the state from the log (the next checkpoint replaces it). Damage found
    /// while opening replays the log (rows written since the checkpoint are looked up in it)
    /// is handled as this option would: the file is set aside and the state rebuilt from the
    /// log. On, every file is checked before `open` returns, and a damaged one is rebuilt
    /// from the log at once ([`crate::Database::checkpoint_rejected`] says why).
    ///
    /// ```
    /// use geocrm::{Database, Options};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new().verify_checkpoints_at_open(true))?;
    /// assert!(db.checkpoint_rejected().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn verify_checkpoints_at_open(mut self, at_open: bool) -> Self {
        self.checkpoints_checked_at_open = at_open;
        self
    }

    /// Whether to record PII reads in the audit log `DIR/audit.log` (default true): every
    /// [`crate::CollectionReader::reveal`], [`crate::Database::export_subject`] and
    /// [`crate::CollectionReader::duplicates`] appends and fsyncs an entry naming the actor,
    /// time, collection, ids and fields (never values) before returning PII. Read it with
    /// [`crate::Database::audit_entries`].
    ///
    /// ```
    /// use geocrm::Options;
    /// let quiet = Options::new().audit(false); // e.g. for a batch job audited elsewhere
    /// # let _ = quiet;
    /// ```
    #[must_use]
    pub fn audit(mut self, on: bool) -> Self {
        self.audit = on;
        self
    }

    /// Who is reading PII through this handle, as recorded in the audit log (default: the
    /// `USER`, `USERNAME` or `LOGNAME` environment variable, else the process's user from
    /// its user id — its `/etc/passwd` name, or `uid N` —, `"unknown"` only when none can be
    /// read). Use the end user or
    /// service name your application authenticated: 1–256 bytes, no control or invisible
    /// characters (a newline would forge lines in a listing, a direction override reorder
    /// it), or [`Database::open`](crate::Database::open) refuses it. Spaces around it are
    /// dropped, no-break and ideographic ones too (` bob ` was logged as another actor than
    /// `bob`: from a hands-on review); tabs and line breaks are not spaces here, and refused.
    ///
    /// ```
    /// use geocrm::Options;
    /// let options = Options::new().actor(" support-agent-17\u{a0}");
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn actor(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        let trimmed = name.trim_matches(|c: char| c.is_whitespace() && !c.is_control());
        self.actor = if trimmed.len() == name.len() { name } else { trimmed.to_owned() };
        self
    }

    /// Whether to create the database when the directory has none (default true) — in a
    /// directory that holds other files too (not another database's keystore, checkpoint or
    /// audit files, which are refused), so a mistyped path gives a new, empty database
    /// there. Open an existing database with `false`: a directory without one is then
    /// [`Error::NotADatabase`](crate::Error::NotADatabase), a missing directory
    /// [`Error::Io`](crate::Error::Io) (not found). (The `geocrm` tool creates one only in a
    /// missing or empty directory.)
    ///
    /// ```
    /// use geocrm::{Database, Error, Options};
    /// let dir = tempfile::tempdir()?;
    /// let existing = || Options::new().create_if_missing(false);
    /// assert!(matches!(Database::open(dir.path(), existing()), Err(Error::NotADatabase { .. })));
    /// assert!(matches!(Database::open(dir.path().join("typo"), existing()), Err(Error::Io { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create = create;
        self
    }
}

/// The default audit actor: the operating-system user name — from the environment, else
/// (cron, systemd, containers often set no `USER`) the process's user id, by its name in
/// `/etc/passwd` or as `uid N` — and `unknown` only when none of that can be read.
fn default_actor() -> String {
    let from_env = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty() && check_actor(s).is_ok()));
    from_env.or_else(user_of_process).unwrap_or_else(|| "unknown".to_owned())
}

/// The name (or `uid N`) of the user this process runs as, on Linux.
fn user_of_process() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let named = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    });
    Some(named.filter(|n| !n.is_empty() && check_actor(n).is_ok()).unwrap_or_else(|| format!("uid {uid}")))
}

/// Checks an audit actor name: 1–256 bytes, no control characters, nothing invisible
/// (a right-to-left override would make a listing lie).
pub(crate) fn check_actor(actor: &str) -> crate::Result<()> {
    let why = if actor.is_empty() || actor.len() > 256 {
        format!("must be 1 to 256 bytes, got {}", actor.len())
    } else if let Some(at) =
        actor.chars().position(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        format!("contains a control character or a line break at character {}", at + 1)
    } else if let Some(at) = actor.chars().position(crate::crypto::normalize::is_invisible) {
        format!("contains an invisible or direction-changing character at character {}", at + 1)
    } else if actor.chars().all(|c| {
        c.is_whitespace() || matches!(c, '\u{2800}' | '\u{3164}' | '\u{115F}' | '\u{1160}' | '\u{FFA0}')
    }) {
        // Blank (spaces, or blank-looking letters): the read would be recorded as nobody's.
        "is blank: name who reads".to_owned()
    } else {
        return Ok(());
    };
    Err(crate::Error::invalid_argument("actor", why))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spaces around an actor are dropped, no-break and ideographic ones too; tabs and line
    /// breaks are kept, for `check_actor` to refuse.
    #[test]
    fn an_actor_is_taken_without_the_spaces_around_it() {
        assert_eq!(Options::new().actor(" bob\u{a0}\u{3000}").actor, "bob");
        assert_eq!(Options::new().actor("ada lovelace").actor, "ada lovelace");
        assert_eq!(Options::new().actor("\tbob\n").actor, "\tbob\n");
        assert!(check_actor(&Options::new().actor("\tbob").actor).is_err());
        assert!(check_actor(&Options::new().actor("   ").actor).is_err());
    }
}
