//! Failed writes poison the keystore; reopening recovers.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use geocrm::crypto::Keystore;
use geocrm::io::{DirLock, FileSystem, MappedBytes, ReadableFile, RealFs, WritableFile};
use geocrm::{Error, Result};

use super::{filled, master, DB};

/// RealFs whose appends (after half the bytes) and renames fail while `fail` is set.
#[derive(Debug, Default)]
struct FlakyFs {
    fail: Arc<AtomicBool>,
}

#[derive(Debug)]
struct FlakyFile {
    inner: Box<dyn WritableFile>,
    fail: Arc<AtomicBool>,
}

fn injected(op: &'static str, path: &Path) -> Error {
    Error::io(op, path, std::io::Error::other("injected failure"))
}

impl WritableFile for FlakyFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            self.inner.write_all(&buf[..buf.len() / 2])?;
            return Err(injected("write", Path::new("flaky")));
        }
        self.inner.write_all(buf)
    }
    fn sync(&mut self) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(injected("fsync", Path::new("flaky")));
        }
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl FileSystem for FlakyFs {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        RealFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        RealFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> geocrm::Result<bool> {
        RealFs.exists(path)
    }
    fn create_new(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(Box::new(FlakyFile { inner: RealFs.create_new(path)?, fail: self.fail.clone() }))
    }
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(Box::new(FlakyFile { inner: RealFs.open_append(path)?, fail: self.fail.clone() }))
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadableFile>> {
        RealFs.open_read(path)
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        RealFs.read(path)
    }
    fn map(&self, path: &Path) -> Result<MappedBytes> {
        RealFs.map(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        RealFs.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(injected("rename", from));
        }
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        RealFs.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> Result<()> {
        RealFs.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        RealFs.sync_dir(path)
    }
    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>> {
        RealFs.lock_dir(dir)
    }
}

fn flaky_open(dir: &Path) -> (Keystore, Arc<AtomicBool>) {
    let flaky = FlakyFs::default();
    let fail = flaky.fail.clone();
    (Keystore::open(Arc::new(flaky), dir, DB, Some(&master(1))).unwrap(), fail)
}

#[test]
fn failed_append_poisons_and_reopen_drops_the_torn_frame() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), &master(1), 4, 4));
    let (mut ks, fail) = flaky_open(dir.path());
    let file_len = || std::fs::metadata(dir.path().join("keystore")).unwrap().len();
    let before = file_len();
    fail.store(true, Ordering::SeqCst);
    assert!(matches!(ks.add_keys(&[("c", "x1"), ("c", "x2")]), Err(Error::Io { .. })));
    assert_eq!(file_len(), before, "the part of the frame written is cut at once");
    assert!(!ks.contains("c", "x1"), "failed keys are not issued");
    fail.store(false, Ordering::SeqCst);
    assert!(matches!(ks.add_keys(&[("c", "x3")]), Err(Error::Poisoned { .. })));
    assert!(matches!(ks.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(ks.remove_keys(&[("c", "r0")]), Err(Error::Poisoned { .. })));
    assert!(matches!(ks.rotate(&master(1), &master(2), super::small_kdf()), Err(Error::Poisoned { .. })));
    assert!(ks.data_key("c", "r0").unwrap().is_some(), "reads still work");
    drop(ks);
    let ks = Keystore::open(Arc::new(RealFs), dir.path(), DB, Some(&master(1))).unwrap();
    // The failed frame was cut when the append failed (or, had that cut failed, dropped
    // here as a torn tail).
    assert_eq!(ks.len(), 4);
    assert!(!ks.contains("c", "x1"));
}

#[test]
fn failed_sync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), &master(1), 2, 2));
    let (mut ks, fail) = flaky_open(dir.path());
    ks.add_keys(&[("c", "y")]).unwrap();
    fail.store(true, Ordering::SeqCst);
    assert!(matches!(ks.sync(), Err(Error::Io { .. })));
    fail.store(false, Ordering::SeqCst);
    assert!(matches!(ks.sync(), Err(Error::Poisoned { .. })));
}

#[test]
fn failed_rewrite_keeps_the_old_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), &master(1), 6, 3));
    let before = std::fs::read(dir.path().join("keystore")).unwrap();
    let (mut ks, fail) = flaky_open(dir.path());
    fail.store(true, Ordering::SeqCst);
    assert!(matches!(ks.remove_keys(&[("c", "r1")]), Err(Error::Io { .. })));
    assert!(ks.contains("c", "r1"), "not erased in memory when the file was not replaced");
    fail.store(false, Ordering::SeqCst);
    assert!(matches!(ks.remove_keys(&[("c", "r1")]), Err(Error::Poisoned { .. })));
    assert_eq!(std::fs::read(dir.path().join("keystore")).unwrap(), before);
    let (mut ks, fail) = flaky_open(dir.path());
    fail.store(true, Ordering::SeqCst);
    assert!(ks.rotate(&master(1), &master(2), super::small_kdf()).is_err());
    drop(ks);
    assert_eq!(std::fs::read(dir.path().join("keystore")).unwrap(), before);
    assert!(Keystore::open(Arc::new(RealFs), dir.path(), DB, Some(&master(1))).is_ok());
}
