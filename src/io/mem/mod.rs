//! [`MemFs`]: an in-memory [`FileSystem`] for tests, with fault injection and simulated
//! power loss.
//!
//! The model is documented on [`MemFs`].

mod crash;
mod fault;
mod handles;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub use crash::CrashMode;
pub use fault::{FaultPlan, OpKind};

use handles::{MemLock, MemReadable, MemWritable};

use super::{DirLock, FileSystem, MappedBytes, ReadableFile, WritableFile};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Arc<Vec<u8>>,
    durable_len: usize,
    /// Byte ranges a failed fsync covered: lost in a crash even if a later fsync succeeds
    /// (Linux reports a writeback error once and may have dropped the pages).
    lost: Vec<std::ops::Range<usize>>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Create { path: PathBuf, ino: u64 },
    Rename { from: PathBuf, to: PathBuf, ino: u64 },
    Remove { path: PathBuf, ino: u64 },
}

impl DirOp {
    fn touches(&self, dir: &Path) -> bool {
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        match self {
            DirOp::Create { path, .. } | DirOp::Remove { path, .. } => in_dir(path),
            DirOp::Rename { from, to, .. } => in_dir(from) || in_dir(to),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            DirOp::Create { path, ino } => {
                names.insert(path.clone(), *ino);
            }
            DirOp::Rename { from, to, ino } => {
                if names.get(from) == Some(ino) {
                    names.remove(from);
                }
                names.insert(to.clone(), *ino);
            }
            DirOp::Remove { path, ino } => {
                if names.get(path) == Some(ino) {
                    names.remove(path);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    dirs: BTreeSet<PathBuf>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    pending: Vec<DirOp>,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    faults: fault::Faults,
    locks: BTreeSet<PathBuf>,
    /// Paths whose existence check fails ([`MemFs::fail_stat`]).
    unstatable: BTreeSet<PathBuf>,
}

fn io_err(op: &'static str, path: &Path, kind: std::io::ErrorKind, msg: String) -> Error {
    Error::io(op, path, std::io::Error::new(kind, msg))
}

/// The error of an operation the fault plan fails.
fn injected(kind: OpKind, index: u64, op: &'static str, path: &Path) -> Error {
    io_err(op, path, std::io::ErrorKind::Other, format!("injected fault: {kind:?} #{index}"))
}

fn not_found(op: &'static str, path: &Path) -> Error {
    io_err(op, path, std::io::ErrorKind::NotFound, "no such file or directory".into())
}

impl State {
    /// Counts an operation; returns the injected error if the plan fails it.
    fn fault(&mut self, kind: OpKind, op: &'static str, path: &Path) -> Result<()> {
        match self.faults.check(kind) {
            None => Ok(()),
            Some(hit) => Err(injected(kind, hit.index, op, path)),
        }
    }

    fn inode(&self, path: &Path) -> Option<&Inode> {
        self.inodes.get(self.names.get(path)?)
    }

    fn parent_exists(&self, path: &Path) -> bool {
        path.parent().is_none_or(|p| p.as_os_str().is_empty() || self.dirs.contains(p))
    }

    fn add_dirs(&mut self, path: &Path) {
        for dir in path.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            self.dirs.insert(dir.to_owned());
        }
    }

    fn new_inode(&mut self, inode: Inode) -> u64 {
        self.next_ino += 1;
        self.inodes.insert(self.next_ino, inode);
        self.next_ino
    }
}

/// An in-memory file system for tests, with fault injection ([`FaultPlan`]) and simulated
/// power loss ([`MemFs::crash_image`]).
///
/// # Model
/// * Files are inodes with contents and a *durable length*: the prefix made durable by the
///   last [`WritableFile::sync`] (or by [`FileSystem::truncate`], which syncs). Writes only
///   append, so the durable contents are always a prefix of the current contents.
/// * Names map paths to inodes. Creations, renames and removals change the live namespace at
///   once but become durable only when [`FileSystem::sync_dir`] is called on a directory they
///   touch; until then they wait in an ordered list of pending directory operations.
/// * Directories themselves ([`FileSystem::create_dir_all`]) are durable at once.
/// * [`MemFs::crash_image`] builds what a disk could hold after power loss; see [`CrashMode`].
/// * An operation failed by the [`FaultPlan`] changes nothing, except that a short or
///   disk-full write appends the bytes that fit; a failed sync makes nothing newly durable.
/// * [`MemFs::write_raw`] replaces a file durably, bypassing counters and faults.
/// * Paths are compared literally (no `.`/`..` or symlink resolution).
///
/// A `MemFs` is a shared handle: clones see and change the same file system.
///
/// ```
/// use std::path::Path;
/// use geocrm::io::{CrashMode, FileSystem, MemFs};
/// # fn main() -> geocrm::Result<()> {
/// let fs = MemFs::new();
/// fs.create_dir_all(Path::new("/db"))?;
/// let mut f = fs.create_new(Path::new("/db/a"))?;
/// f.write_all(b"durable")?;
/// f.sync()?;
/// f.write_all(b" lost")?;
/// fs.sync_dir(Path::new("/db"))?;
/// let after = fs.crash_image(7, CrashMode::SyncedOnly);
/// assert_eq!(after.read_all(Path::new("/db/a")).as_deref(), Some(&b"durable"[..]));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

impl MemFs {
    /// An empty file system with no faults planned.
    #[must_use]
    pub fn new() -> Self {
        MemFs::default()
    }

    /// Makes every existence check of `path` fail (a `stat` error other than "not found",
    /// such as `EIO`) until [`MemFs::clear_stat_faults`].
    pub fn fail_stat(&self, path: impl Into<PathBuf>) {
        self.state.lock().unstatable.insert(path.into());
    }

    /// Undoes every [`MemFs::fail_stat`].
    pub fn clear_stat_faults(&self) {
        self.state.lock().unstatable.clear();
    }

    /// Installs a fault plan, replacing any previous one; its operation numbers count from
    /// now.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.state.lock().faults.install(plan);
    }

    /// Removes the fault plan (and any disk-full budget).
    pub fn clear_faults(&self) {
        self.set_faults(FaultPlan::new());
    }

    /// Operations of `kind` attempted since this file system was created (failed ones
    /// included); [`OpKind::Any`] gives the total. Use it to enumerate "fail at step N".
    #[must_use]
    pub fn op_count(&self, kind: OpKind) -> u64 {
        self.state.lock().faults.count(kind)
    }

    /// A new, independent file system holding what a disk could hold after power loss now,
    /// chosen by `seed` and `mode` (see [`CrashMode`]). Counters, faults and locks start
    /// fresh, and everything in the image is durable.
    #[must_use]
    pub fn crash_image(&self, seed: u64, mode: CrashMode) -> MemFs {
        let state = crash::image(&self.state.lock(), seed, mode);
        MemFs { state: Arc::new(Mutex::new(state)) }
    }

    /// The current contents of a file, or `None` if it does not exist.
    #[must_use]
    pub fn read_all(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().inode(path).map(|i| i.data.to_vec())
    }

    /// Replaces (or creates) a file with `bytes`, durably, creating its parent directories:
    /// no operation is counted, no fault applies. For planting damage in tests.
    pub fn write_raw(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.state.lock();
        if let Some(parent) = path.parent() {
            st.add_dirs(parent);
        }
        let inode = Inode { data: Arc::new(bytes.to_vec()), durable_len: bytes.len(), lost: Vec::new() };
        let ino = st.new_inode(inode);
        st.names.insert(path.to_owned(), ino);
        st.durable_names.insert(path.to_owned(), ino);
    }

    /// The current length of a file, or `None` if it does not exist.
    #[must_use]
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        self.state.lock().inode(path).map(|i| i.data.len() as u64)
    }

    /// The durable (synced) length of a file, or `None` if it does not exist.
    #[must_use]
    pub fn synced_len(&self, path: &Path) -> Option<u64> {
        self.state.lock().inode(path).map(|i| i.durable_len as u64)
    }

    /// Paths of all files (not directories), sorted.
    #[must_use]
    pub fn list_files(&self) -> Vec<PathBuf> {
        self.state.lock().names.keys().cloned().collect()
    }
}

impl FileSystem for MemFs {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        let mut st = self.state.lock();
        if st.names.contains_key(path) {
            return Err(io_err(
                "create directory",
                path,
                std::io::ErrorKind::AlreadyExists,
                "is a file".into(),
            ));
        }
        st.add_dirs(path);
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        let st = self.state.lock();
        if !st.dirs.contains(path) {
            return Err(not_found("list directory", path));
        }
        let children = st.names.keys().chain(st.dirs.iter()).filter(|p| p.parent() == Some(path));
        let names: BTreeSet<String> =
            children.filter_map(|p| p.file_name()?.to_str().map(str::to_owned)).collect();
        Ok(names.into_iter().collect())
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let st = self.state.lock();
        if st.unstatable.contains(path) {
            let msg = "injected fault: stat".to_owned();
            return Err(io_err("check whether it exists", path, std::io::ErrorKind::Other, msg));
        }
        Ok(st.names.contains_key(path) || st.dirs.contains(path))
    }

    fn create_new(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let mut st = self.state.lock();
        st.fault(OpKind::Create, "create", path)?;
        if st.names.contains_key(path) || st.dirs.contains(path) {
            return Err(io_err("create", path, std::io::ErrorKind::AlreadyExists, "file exists".into()));
        }
        if !st.parent_exists(path) {
            return Err(not_found("create", path));
        }
        let ino = st.new_inode(Inode::default());
        st.names.insert(path.to_owned(), ino);
        st.pending.push(DirOp::Create { path: path.to_owned(), ino });
        Ok(Box::new(MemWritable { state: Arc::clone(&self.state), ino, path: path.to_owned() }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let st = self.state.lock();
        let ino = *st.names.get(path).ok_or_else(|| not_found("open", path))?;
        Ok(Box::new(MemWritable { state: Arc::clone(&self.state), ino, path: path.to_owned() }))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadableFile>> {
        let st = self.state.lock();
        let data = Arc::clone(&st.inode(path).ok_or_else(|| not_found("open", path))?.data);
        Ok(Box::new(MemReadable { data, path: path.to_owned() }))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.read_all(path).ok_or_else(|| not_found("read", path))
    }

    fn map(&self, path: &Path) -> Result<MappedBytes> {
        let st = self.state.lock();
        let data = Arc::clone(&st.inode(path).ok_or_else(|| not_found("open", path))?.data);
        let mapped: MappedBytes = data;
        Ok(mapped)
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let mut st = self.state.lock();
        st.fault(OpKind::Truncate, "truncate", path)?;
        let ino = *st.names.get(path).ok_or_else(|| not_found("truncate", path))?;
        let len = usize::try_from(len).map_err(|_| {
            io_err("truncate", path, std::io::ErrorKind::InvalidInput, "length too large".into())
        })?;
        let inode = st.inodes.entry(ino).or_default();
        Arc::make_mut(&mut inode.data).resize(len, 0);
        inode.durable_len = len;
        inode.lost.retain_mut(|r| {
            r.end = r.end.min(len);
            r.start < r.end
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut st = self.state.lock();
        st.fault(OpKind::Rename, "rename", from)?;
        let ino = *st.names.get(from).ok_or_else(|| not_found("rename", from))?;
        if st.dirs.contains(to) || !st.parent_exists(to) {
            return Err(io_err("rename", from, std::io::ErrorKind::InvalidInput, "bad target".into()));
        }
        st.names.remove(from);
        st.names.insert(to.to_owned(), ino);
        st.pending.push(DirOp::Rename { from: from.to_owned(), to: to.to_owned(), ino });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        let mut st = self.state.lock();
        st.fault(OpKind::Remove, "remove", path)?;
        let ino = st.names.remove(path).ok_or_else(|| not_found("remove", path))?;
        st.pending.push(DirOp::Remove { path: path.to_owned(), ino });
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> Result<()> {
        let mut st = self.state.lock();
        st.fault(OpKind::Remove, "remove directory", path)?;
        if !st.dirs.contains(path) {
            return Err(not_found("remove directory", path));
        }
        if st.names.keys().chain(st.dirs.iter()).any(|p| p.parent() == Some(path)) {
            return Err(io_err(
                "remove directory",
                path,
                std::io::ErrorKind::DirectoryNotEmpty,
                "not empty".into(),
            ));
        }
        st.dirs.remove(path);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        let mut st = self.state.lock();
        st.fault(OpKind::SyncDir, "fsync directory", path)?;
        if !st.dirs.contains(path) {
            return Err(not_found("fsync directory", path));
        }
        let (now, later): (Vec<DirOp>, Vec<DirOp>) = st.pending.drain(..).partition(|op| op.touches(path));
        st.pending = later;
        for op in &now {
            op.apply(&mut st.durable_names);
        }
        Ok(())
    }

    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>> {
        let mut st = self.state.lock();
        if !st.locks.insert(dir.to_owned()) {
            return Err(Error::Locked { path: dir.to_owned() });
        }
        Ok(Box::new(MemLock { state: Arc::clone(&self.state), dir: dir.to_owned() }))
    }
}

#[cfg(test)]
mod tests;
