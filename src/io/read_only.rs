//! [`ReadOnlyFs`]: a [`FileSystem`] that passes reads through and refuses every change, for
//! databases opened with [`crate::Options::read_only`]. A path of the open or of a later
//! operation that would write is refused here even if the database code failed to skip it.

use std::path::Path;
use std::sync::Arc;

use super::{DirLock, FileSystem, MappedBytes, ReadableFile, WritableFile};
use crate::error::{Error, Result};

/// Reads through `inner`; every change is [`Error::ReadOnly`].
#[derive(Debug)]
pub(crate) struct ReadOnlyFs {
    inner: Arc<dyn FileSystem>,
}

impl ReadOnlyFs {
    pub(crate) fn new(inner: Arc<dyn FileSystem>) -> Self {
        ReadOnlyFs { inner }
    }
}

fn refused<T>(op: &'static str, path: &Path) -> Result<T> {
    Err(Error::ReadOnly { path: path.to_owned(), op })
}

/// A file "opened for appending" by a read-only database: its length, and no writes.
#[derive(Debug)]
struct NoAppend {
    path: std::path::PathBuf,
    len: u64,
}

impl WritableFile for NoAppend {
    fn write_all(&mut self, _buf: &[u8]) -> Result<()> {
        refused("write", &self.path)
    }
    /// Nothing was written through it: nothing to make durable.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl FileSystem for ReadOnlyFs {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        refused("create directory", path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn create_new(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        refused("create", path)
    }
    /// The file's length, for the log's bookkeeping; writes to it are refused.
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let len = self.inner.open_read(path)?.len();
        Ok(Box::new(NoAppend { path: path.to_owned(), len }))
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadableFile>> {
        self.inner.open_read(path)
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn map(&self, path: &Path) -> Result<MappedBytes> {
        self.inner.map(path)
    }
    fn truncate(&self, path: &Path, _len: u64) -> Result<()> {
        refused("truncate", path)
    }
    fn rename(&self, from: &Path, _to: &Path) -> Result<()> {
        refused("rename", from)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        refused("remove", path)
    }
    fn remove_dir(&self, path: &Path) -> Result<()> {
        refused("remove directory", path)
    }
    /// Nothing was changed: nothing to make durable.
    fn sync_dir(&self, _path: &Path) -> Result<()> {
        Ok(())
    }
    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>> {
        refused("lock", dir)
    }
}
