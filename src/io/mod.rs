//! The file-system seam.
//!
//! Every byte geocrm writes — log segments, keystore, manifest, index files — goes through
//! [`FileSystem`]. Production uses [`RealFs`]; tests use `MemFs`, an in-memory file system that
//! can fail the Nth operation, make short writes, report a full disk and "lose power"
//! (keep only what was synced). Reads of published index files go through
//! [`FileSystem::map`], which is an mmap on `RealFs` and a shared buffer in memory.

mod atomic;
mod mem;
mod mmap;
pub(crate) use mmap::{prefetch, str_of};
mod read_only;
mod real;

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

pub use atomic::{write_atomic, write_atomic_parts};
pub use mem::{CrashMode, FaultPlan, MemFs, OpKind};
pub(crate) use read_only::ReadOnlyFs;
pub use real::RealFs;
pub(crate) use real::LOCK_FILE;

use crate::error::Result;

/// Read-only bytes of a whole file, shared between readers: an mmap or a buffer.
pub type MappedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A file opened for appending. Writes land at the end; [`WritableFile::sync`] makes them
/// durable.
pub trait WritableFile: Send + Sync + Debug {
    /// Appends all of `buf`. A failure may leave part of `buf` written (a short write).
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;
    /// Makes everything written so far durable (fdatasync).
    ///
    /// # Errors
    /// [`crate::Error::Io`]; after a failed sync the file's durable state is unknown.
    fn sync(&mut self) -> Result<()>;
    /// Current length in bytes (the offset of the next write).
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file opened for positional reads.
pub trait ReadableFile: Send + Sync + Debug {
    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    /// [`crate::Error::Io`], including reads past the end of the file.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// Length in bytes when opened.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An exclusive lock on a database directory, released on drop.
pub trait DirLock: Send + Sync + Debug {}

/// The operations geocrm needs from a file system.
pub trait FileSystem: Send + Sync + Debug + 'static {
    /// Creates a directory and its parents.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Names (not paths) of the entries of a directory, sorted.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn list_dir(&self, path: &Path) -> Result<Vec<String>>;
    /// Whether a file or directory exists.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when that cannot be told (a `stat` failing other than with "not
    /// found"): never taken for "absent", which could make an open create a file over one
    /// it failed to see.
    fn exists(&self, path: &Path) -> Result<bool>;
    /// Creates a new, empty file for appending; fails if it exists.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn create_new(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Opens an existing file for positional reads.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadableFile>>;
    /// Reads a whole file.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// Maps a whole, immutable file read-only.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn map(&self, path: &Path) -> Result<MappedBytes>;
    /// Cuts a file to `len` bytes and syncs it (used only for a torn log tail, which is
    /// never mapped).
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn truncate(&self, path: &Path, len: u64) -> Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Removes an empty directory.
    ///
    /// # Errors
    /// [`crate::Error::Io`], also when the directory is not empty.
    fn remove_dir(&self, path: &Path) -> Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn sync_dir(&self, path: &Path) -> Result<()>;
    /// Takes the exclusive writer lock of a database directory.
    ///
    /// # Errors
    /// [`crate::Error::Locked`] when another holder has it; [`crate::Error::Io`] otherwise.
    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>>;
}
