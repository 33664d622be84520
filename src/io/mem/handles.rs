//! The file handles and lock guard of [`super::MemFs`].

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{injected, io_err, OpKind, State};
use crate::error::Result;
use crate::io::{DirLock, ReadableFile, WritableFile};

#[derive(Debug)]
pub(super) struct MemWritable {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) ino: u64,
    pub(super) path: PathBuf,
}

impl WritableFile for MemWritable {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let mut st = self.state.lock();
        let (mut keep, mut err) = match st.faults.check(OpKind::Write) {
            None => (buf.len(), None),
            Some(hit) => {
                let keep = hit.short.unwrap_or(0).min(buf.len());
                (keep, Some(injected(OpKind::Write, hit.index, "write", &self.path)))
            }
        };
        let granted = st.faults.take_budget(keep);
        if granted < keep {
            keep = granted;
            let msg = "no space left on device (simulated)".to_owned();
            err = Some(io_err("write", &self.path, std::io::ErrorKind::StorageFull, msg));
        }
        let inode = st.inodes.entry(self.ino).or_default();
        Arc::make_mut(&mut inode.data).extend_from_slice(buf.get(..keep).unwrap_or_default());
        err.map_or(Ok(()), Err)
    }

    fn sync(&mut self) -> Result<()> {
        let mut st = self.state.lock();
        let synced = st.fault(OpKind::Sync, "fsync", &self.path);
        if let Some(inode) = st.inodes.get_mut(&self.ino) {
            if synced.is_ok() {
                inode.durable_len = inode.data.len();
            } else if inode.durable_len < inode.data.len() {
                // What this fsync should have written never will be.
                inode.lost.push(inode.durable_len..inode.data.len());
            }
        }
        synced
    }

    fn len(&self) -> u64 {
        self.state.lock().inodes.get(&self.ino).map_or(0, |i| i.data.len() as u64)
    }
}

#[derive(Debug)]
pub(super) struct MemReadable {
    pub(super) data: Arc<Vec<u8>>,
    pub(super) path: PathBuf,
}

impl ReadableFile for MemReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.data.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| {
                io_err("read", &self.path, std::io::ErrorKind::UnexpectedEof, "read past end of file".into())
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

#[derive(Debug)]
pub(super) struct MemLock {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) dir: PathBuf,
}

impl DirLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.dir);
    }
}
