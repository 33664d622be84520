//! [`RealFs`]: the operating system's file system.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DirLock, FileSystem, MappedBytes, ReadableFile, WritableFile};
use crate::error::{Error, Result};

/// The real file system. Durability calls are real `fsync`/`fdatasync`; [`FileSystem::map`]
/// is a read-only memory map (with a prefetch hint: the crate's only `unsafe` is in `io/mmap.rs`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealWritable {
    file: File,
    path: PathBuf,
    len: u64,
}

impl WritableFile for RealWritable {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        // Count what did land even on failure so `len` stays truthful.
        let mut rest = buf;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => {
                    return Err(Error::io(
                        "write",
                        &self.path,
                        std::io::Error::new(std::io::ErrorKind::WriteZero, "wrote zero bytes"),
                    ))
                }
                Ok(n) => {
                    self.len += n as u64;
                    rest = rest.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("write", &self.path, e)),
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("fsync", &self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct RealReadable {
    file: File,
    path: PathBuf,
    len: u64,
}

impl ReadableFile for RealReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| Error::io("read", &self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct RealLock {
    _file: File,
}

impl DirLock for RealLock {}

impl FileSystem for RealFs {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        // Owner only: locations and attributes are personal data too.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::io("create directory", path, e))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| Error::io("list directory", path, e))? {
            let entry = entry.map_err(|e| Error::io("list directory", path, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| Error::io("check whether it exists", path, e))
    }

    fn create_new(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        // Owner only (every file the database makes is created here, or is the lock file).
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        Ok(Box::new(RealWritable { file, path: path.to_owned(), len: 0 }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let (file, len) = open_regular_with(OpenOptions::new().append(true), path)?;
        Ok(Box::new(RealWritable { file, path: path.to_owned(), len }))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn ReadableFile>> {
        let (file, len) = open_regular(path)?;
        Ok(Box::new(RealReadable { file, path: path.to_owned(), len }))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let (mut file, len) = open_regular(path)?;
        // A file too large to hold is an error, not an aborted process.
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX)).is_err() {
            let too_large = std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("the file's {len} bytes cannot be held in memory"),
            );
            return Err(Error::io("read", path, too_large));
        }
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| Error::io("read", path, e))?;
        Ok(bytes)
    }

    fn map(&self, path: &Path) -> Result<MappedBytes> {
        let (file, _) = open_regular(path)?;
        Ok(Arc::new(super::mmap::ReadOnlyMap::new(&file, path)?))
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let (file, _) = open_regular_with(OpenOptions::new().write(true), path)?;
        file.set_len(len).map_err(|e| Error::io("truncate", path, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", path, e))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| Error::io("remove", path, e))
    }

    fn remove_dir(&self, path: &Path) -> Result<()> {
        fs::remove_dir(path).map_err(|e| Error::io("remove directory", path, e))
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        File::open(path).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", path, e))
    }

    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>> {
        let path = dir.join(LOCK_FILE);
        let file = open_no_follow(
            std::os::unix::fs::OpenOptionsExt::mode(
                OpenOptions::new().create(true).truncate(false).write(true),
                0o600,
            ),
            0,
            &path,
            "open lock file",
        );
        let file = match file {
            Ok(file) => file,
            // A copy on read-only media, or one the user may not write to: the lock file
            // there is locked through a read-only descriptor (a lock needs no write access),
            // so `verify` and the read-only commands that lock work on a backup (from a
            // hands-on review). A writable open gets the lock too, and fails at its first
            // write instead.
            Err(e) if denied(&e) => match open_lock_read_only(&path) {
                Ok(file) => file,
                Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        lock_opened(dir, &path, file)
    }
}

/// Opens `path` for reading if it is a regular file, with its length: a named pipe where a
/// database file should be is refused at once (opened non-blocking, so the open does not
/// wait for a writer; a regular file reads the same either way), and so are a device or a
/// directory. The type is that of the file opened, not of whatever the path named a moment
/// before.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    open_regular_with(OpenOptions::new().read(true), path)
}

/// [`open_regular`] with `options` (reading, appending or writing): a file opened to be
/// appended to or truncated is refused the same way when it is not a regular file (a named
/// pipe opened for writing without a reader fails at once instead of waiting).
fn open_regular_with(options: &mut OpenOptions, path: &Path) -> Result<(File, u64)> {
    let file = open_no_follow(options, libc::O_NONBLOCK, path, "open")?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        let not_a_file = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(Error::io("open", path, not_a_file));
    }
    Ok((file, meta.len()))
}

/// Opens `path` with `options` and the custom open `flags`, refusing a symbolic link in its place (`O_NOFOLLOW`): every
/// file of a database is a regular file in its directory, and a link there could send a read
/// to another file, or an append or a truncation to a file outside the database. (The
/// database directory itself, and the directories above it, may be links.)
fn open_no_follow(options: &mut OpenOptions, flags: i32, path: &Path, what: &'static str) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW | flags).open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => Error::io(
            what,
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "a symbolic link, not a regular file"),
        ),
        _ => Error::io(what, path, e),
    })
}

/// Whether opening a file failed for want of permission or on a read-only file system.
fn denied(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM | libc::EROFS)))
}

/// Opens an existing lock file for reading only (never creating one): a regular file, opened
/// without waiting (a named pipe in its place is refused, not waited on).
fn open_lock_read_only(path: &Path) -> Result<File> {
    let file = open_no_follow(OpenOptions::new().read(true), libc::O_NONBLOCK, path, "open lock file")?;
    if !file.metadata().map_err(|e| Error::io("stat", path, e))?.is_file() {
        let not_a_file = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(Error::io("open lock file", path, not_a_file));
    }
    Ok(file)
}

/// Locks `file`, opened from `path` (the lock file of `dir`).
fn lock_opened(dir: &Path, path: &Path, file: File) -> Result<Box<dyn DirLock>> {
    match file.try_lock() {
        // The path must still name the file locked: a holder deleting the database unlinks
        // the lock file while it holds it, and whoever opened it before that must not take
        // the lock on the unlinked file (and another the new file's).
        Ok(()) if !names_file(path, &file) => Err(Error::Locked { path: dir.to_owned() }),
        Ok(()) => Ok(Box::new(RealLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path: dir.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

/// The lock file's name in a database directory (`MemFs` keeps its locks in memory, with no
/// such file).
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Whether `path` names the open `file` (the same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    /// The lock of a directory whose lock file cannot be opened for writing (read-only media,
    /// or a copy the user may not write to) is taken through a read-only descriptor, and
    /// excludes a second holder as the usual one does. (Tests run as root, whom file modes do
    /// not stop: the read-only path is driven directly, and the errors that lead to it are
    /// checked apart.)
    #[test]
    fn a_lock_file_opened_read_only_locks_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, b"").unwrap();
        let held = lock_opened(dir.path(), &path, open_lock_read_only(&path).unwrap()).unwrap();
        assert!(matches!(RealFs.lock_dir(dir.path()), Err(Error::Locked { .. })));
        let again = lock_opened(dir.path(), &path, open_lock_read_only(&path).unwrap());
        assert!(matches!(again, Err(Error::Locked { .. })));
        drop(held);
        assert!(RealFs.lock_dir(dir.path()).is_ok());
        // No lock file is created this way, and a named pipe in its place is refused at once.
        let empty = tempfile::tempdir().unwrap();
        assert!(open_lock_read_only(&empty.path().join(LOCK_FILE)).is_err());
        let fifo = empty.path().join(LOCK_FILE);
        if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            let err = open_lock_read_only(&fifo).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let io = |code| Error::io("open lock file", &path, std::io::Error::from_raw_os_error(code));
        for (code, falls_back) in [
            (libc::EACCES, true),
            (libc::EPERM, true),
            (libc::EROFS, true),
            (libc::ENOENT, false),
            (libc::EIO, false),
        ] {
            assert_eq!(denied(&io(code)), falls_back, "errno {code}");
        }
    }

    #[test]
    fn only_regular_files_are_mapped() {
        // A named pipe where a checkpoint file should be made opening wait for a writer.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("0000000000000007-0000.ckpt");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let paths = [dir.path().to_owned(), fifo.clone()];
        std::thread::spawn(move || {
            for path in paths.iter().filter(|p| made || !p.ends_with("0000000000000007-0000.ckpt")) {
                let _ = tx.send(RealFs.map(path).map(|_| ()).map_err(|e| e.to_string()));
                // Appended to or truncated: a pipe with a reader would be opened, and must
                // not be written to.
                if path.ends_with("0000000000000007-0000.ckpt") {
                    let reader =
                        std::fs::File::options().read(true).custom_flags(libc::O_NONBLOCK).open(path);
                    let _ = tx.send(RealFs.open_append(path).map(|_| ()).map_err(|e| e.to_string()));
                    let _ = tx.send(RealFs.truncate(path, 0).map_err(|e| e.to_string()));
                    drop(reader);
                }
            }
        });
        for _ in 0..(1 + 3 * usize::from(made)) {
            let answer = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("map waited");
            assert!(answer.unwrap_err().contains("not a regular file"));
        }
    }

    #[test]
    fn a_lock_file_unlinked_or_replaced_is_no_longer_the_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        fs::write(&path, b"").unwrap();
        let file = File::open(&path).unwrap();
        assert!(names_file(&path, &file));
        fs::remove_file(&path).unwrap();
        assert!(!names_file(&path, &file), "unlinked");
        fs::write(&path, b"").unwrap();
        assert!(!names_file(&path, &file), "another file under the name");
    }

    /// A waiter that opened the lock file before its holder deleted the database (and the
    /// lock file last) must not hold a lock on the unlinked file once the holder lets go:
    /// another open would lock the new file, and both would write.
    #[test]
    fn a_lock_on_an_unlinked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let open = || OpenOptions::new().create(true).truncate(false).write(true).open(&path).unwrap();
        let waiter = open();
        fs::remove_file(&path).unwrap();
        assert!(matches!(lock_opened(dir.path(), &path, waiter), Err(Error::Locked { .. })));
        let _held = lock_opened(dir.path(), &path, open()).unwrap();
        assert!(matches!(RealFs.lock_dir(dir.path()), Err(Error::Locked { .. })));
    }
}
