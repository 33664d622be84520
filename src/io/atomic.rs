//! Atomic publication of a whole file: temp file, fsync, rename, directory fsync.

use std::path::Path;

use super::FileSystem;
use crate::error::Result;

/// Publishes `bytes` as `dir/name` so that a crash at any point leaves either the old file
/// (or none) or the new one, whole.
///
/// Steps: write `dir/name.tmp`, fsync it, rename over `dir/name`, fsync `dir`.
///
/// # Errors
/// [`crate::Error::Io`] from any step; the temporary file may be left behind and is
/// overwritten by the next publication.
pub fn write_atomic(fs: &dyn FileSystem, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(fs, dir, name, &mut std::iter::once(bytes))
}

/// As [`write_atomic`], with the file's bytes given as consecutive pieces (written in order,
/// without being copied into one buffer first).
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_parts(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    parts: &mut dyn Iterator<Item = &[u8]>,
) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    if fs.exists(&tmp)? {
        fs.remove_file(&tmp)?;
    }
    let mut file = fs.create_new(&tmp)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync()?;
    drop(file);
    fs.rename(&tmp, &dir.join(name))?;
    fs.sync_dir(dir)
}
