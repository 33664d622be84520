//! A [`MemFs`] that calls a hook before the operations tests intercept, to hold the database
//! at a chosen step or to act (as another process would) in the middle of one.

use std::path::Path;
use std::sync::Arc;

use geocrm::io::{DirLock, FileSystem, MappedBytes, MemFs, ReadableFile, WritableFile};

/// What a [`HookedFs`] calls, each before the operation of its name.
pub trait Hook: Send + Sync + std::fmt::Debug + 'static {
    fn create_new(&self, _path: &Path) {}
    fn open_read(&self, _path: &Path) {}
    fn read(&self, _path: &Path) {}
    fn map(&self, _path: &Path) {}
    fn rename(&self, _from: &Path) {}
    fn sync_dir(&self, _path: &Path) {}
}

/// `inner`, with `hook` called first where [`Hook`] says.
#[derive(Debug)]
pub struct HookedFs<H> {
    pub inner: MemFs,
    pub hook: Arc<H>,
}

impl<H: Hook> FileSystem for HookedFs<H> {
    fn create_dir_all(&self, path: &Path) -> geocrm::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> geocrm::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &Path) -> geocrm::Result<bool> {
        self.inner.exists(path)
    }
    fn create_new(&self, path: &Path) -> geocrm::Result<Box<dyn WritableFile>> {
        self.hook.create_new(path);
        self.inner.create_new(path)
    }
    fn open_append(&self, path: &Path) -> geocrm::Result<Box<dyn WritableFile>> {
        self.inner.open_append(path)
    }
    fn open_read(&self, path: &Path) -> geocrm::Result<Box<dyn ReadableFile>> {
        self.hook.open_read(path);
        self.inner.open_read(path)
    }
    fn read(&self, path: &Path) -> geocrm::Result<Vec<u8>> {
        self.hook.read(path);
        self.inner.read(path)
    }
    fn map(&self, path: &Path) -> geocrm::Result<MappedBytes> {
        self.hook.map(path);
        self.inner.map(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> geocrm::Result<()> {
        self.inner.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> geocrm::Result<()> {
        self.hook.rename(from);
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> geocrm::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> geocrm::Result<()> {
        self.inner.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> geocrm::Result<()> {
        self.hook.sync_dir(path);
        self.inner.sync_dir(path)
    }
    fn lock_dir(&self, dir: &Path) -> geocrm::Result<Box<dyn DirLock>> {
        self.inner.lock_dir(dir)
    }
}
