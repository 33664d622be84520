//! What `geocrm stats` and `geocrm verify` report: sizes, rows, LSNs, checkpoint age, and a
//! check of every file of the database.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::checkpoint::INDEX_DIR;
use super::ops::LogOp;
use super::Database;
use crate::error::{Error, Result};
use crate::index::checkpoint::{Checkpoint, Verify};
use crate::index::OpPointer;
use crate::io::FileSystem;

/// One collection in [`DatabaseStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CollectionStats {
    /// Live records.
    pub records: u64,
    /// Rows in the checkpoint file (live or hidden).
    pub checkpoint_rows: u64,
    /// Checkpoint rows replaced or removed since the checkpoint.
    pub hidden_rows: u64,
    /// Rows in the in-memory table (written since the checkpoint).
    pub memory_rows: u64,
    /// Size of the checkpoint file in bytes.
    pub checkpoint_bytes: u64,
}

/// The live checkpoint in [`DatabaseStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckpointStats {
    /// Every operation below this LSN is in it.
    pub lsn: u64,
    /// Replay starts at this segment.
    pub segment: u64,
    /// When it was published, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Its age at the time of the call, milliseconds.
    pub age_ms: u64,
    /// Its files in `DIR/index/`.
    pub files: Vec<String>,
}

/// Sizes, rows, LSNs and checkpoint age of an open database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DatabaseStats {
    /// Per collection.
    pub collections: BTreeMap<String, CollectionStats>,
    /// The LSN the next write gets.
    pub next_lsn: u64,
    /// Operations logged since the checkpoint (what the next open replays).
    pub ops_since_checkpoint: u64,
    /// Log bytes written since the checkpoint (segment files from its segment on).
    pub log_bytes_since_checkpoint: u64,
    /// The live checkpoint.
    pub checkpoint: Option<CheckpointStats>,
    /// Log segment files.
    pub log_segments: u64,
    /// Their total size in bytes.
    pub log_bytes: u64,
    /// Segments below this were removed by compaction.
    pub log_floor: u64,
    /// Bytes of the torn tail cut off at open (left out, not cut, by a read-only open).
    pub truncated_tail_bytes: u64,
    /// Records open removed again because an erasure had destroyed their data key (the
    /// MANIFEST lists it) though the log held no tombstone for them: it was in a damaged
    /// final frame, cut (or left out) with the torn tail.
    pub erasures_restored: u64,
    /// Why the manifest's checkpoint was not used at open, or (its sections checked on first
    /// use) the damage found in it since.
    pub checkpoint_rejected: Option<String>,
    /// The last automatic checkpoint's error, if it failed.
    pub auto_checkpoint_error: Option<String>,
    /// Damage in the audit log's current file (`audit.log`): while it is there, every
    /// audited read of PII is refused (a damaged header keeps audited writable opens out), until
    /// `repair` cuts the file (or, for a damaged header, starts it anew).
    pub audit_log_damaged: Option<String>,
}

/// One checked file in a [`VerifyReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileCheck {
    /// The file.
    pub path: PathBuf,
    /// What it is: `log segment`, `checkpoint`, `manifest`, `keystore`.
    pub kind: String,
    /// Its size.
    pub bytes: u64,
    /// `None` when it is sound, else what is wrong.
    pub problem: Option<String>,
}

/// The result of [`Database::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Every file checked.
    pub files: Vec<FileCheck>,
    /// Checkpoint rows checked against the log record they point to.
    pub rows_checked: u64,
    /// Checkpoint rows pointing into the damaged part of the log (from the damage the log
    /// check found on), whose log records could not be read: not checked, and not the
    /// checkpoint's damage — its rows are the only copy of those records' locations and
    /// attributes, from which `repair` rebuilds them. (They were reported as checkpoint
    /// damage, and the check stopped at the first; from a hands-on review.)
    pub rows_in_damaged_log: u64,
    /// What opening the database found and set aside without calling it damage: a final
    /// log, keystore or audit-log frame that is not whole. After a crash during a write that
    /// is expected (nothing acknowledged was in it); damage to the last frame looks the same.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether every file is sound.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|f| f.problem.is_none())
    }
}

fn file_len(fs: &dyn FileSystem, path: &std::path::Path) -> u64 {
    fs.open_read(path).map_or(0, |f| f.len())
}

impl Database {
    /// Sizes, rows, LSNs and the checkpoint's age.
    #[must_use]
    pub fn stats(&self) -> DatabaseStats {
        let inner = &self.inner;
        let manifest = inner.manifest.lock().clone();
        let (collections, next_lsn, checkpoint_lsn) = {
            // Recursive: a thread holding a snapshot may ask for stats while a writer waits
            // (parking_lot's fair lock would make a plain second read wait for that writer,
            // which waits for the snapshot).
            let state = inner.state.read_recursive();
            let collections = state
                .collections
                .iter()
                .map(|(name, c)| {
                    let (checkpoint_rows, hidden_rows, checkpoint_bytes) =
                        c.base.as_ref().map_or((0, 0, 0), |b| {
                            (b.checkpoint.len() as u64, b.hidden.len() as u64, b.checkpoint.file_len() as u64)
                        });
                    let stats = CollectionStats {
                        records: c.view().len() as u64,
                        checkpoint_rows,
                        hidden_rows,
                        memory_rows: c.table.len() as u64,
                        checkpoint_bytes,
                    };
                    (name.clone(), stats)
                })
                .collect();
            (collections, state.next_lsn, state.checkpoint_lsn)
        };
        // Listed, not asked of the writer: a thread holding a snapshot may call this while a
        // committer holds the writer lock waiting for that snapshot.
        let log_dir = inner.dir.join(crate::log::LOG_DIR);
        let segments: Vec<std::path::PathBuf> = inner
            .fs
            .list_dir(&log_dir)
            .unwrap_or_default()
            .iter()
            .filter(|n| crate::log::parse_segment_name(n).is_some_and(|s| s >= manifest.log_floor))
            .map(|n| log_dir.join(n))
            .collect();
        let now = super::checkpoint::now_ms();
        DatabaseStats {
            collections,
            next_lsn,
            ops_since_checkpoint: next_lsn.saturating_sub(checkpoint_lsn.max(1)),
            log_bytes_since_checkpoint: inner.log_tail_bytes.load(std::sync::atomic::Ordering::Relaxed),
            checkpoint: manifest.checkpoint.map(|c| CheckpointStats {
                lsn: c.lsn,
                segment: c.segment,
                created_unix_ms: c.created_unix_ms,
                age_ms: now.saturating_sub(c.created_unix_ms),
                files: c.files.into_iter().map(|f| f.name).collect(),
            }),
            log_segments: segments.len() as u64,
            log_bytes: segments.iter().map(|p| file_len(&*inner.fs, p)).sum(),
            log_floor: manifest.log_floor,
            truncated_tail_bytes: inner.recovery.truncated.as_ref().map_or(0, |t| t.bytes_dropped),
            erasures_restored: inner.erasures_restored,
            // Rejected at open, or (sections checked on first use) found damaged since.
            checkpoint_rejected: inner.checkpoint_rejected.clone().or_else(|| {
                let state = inner.state.read_recursive();
                state
                    .collections
                    .values()
                    .filter_map(|c| c.base.as_ref())
                    .find_map(|b| b.checkpoint.damage().err().map(|e| e.to_string()))
            }),
            auto_checkpoint_error: inner.auto_checkpoint_error.lock().as_ref().map(|e| e.reason.clone()),
            audit_log_damaged: inner.audit.damage(),
        }
    }

    /// Checks every file: each log segment (frames, checksums, LSN continuity, the torn-tail
    /// rule), each checkpoint file (checksums, structure, id order, and every row against
    /// the log record it points to), the manifest and the keystore. Commits wait while it
    /// runs. Reports problems instead of stopping at the first.
    ///
    /// # Errors
    /// [`Error::Io`] when a directory cannot be listed; [`Error::SnapshotHeld`] on a thread
    /// holding a snapshot (verify holds the writer lock, which a commit waiting for that
    /// snapshot holds).
    pub fn verify(&self) -> Result<VerifyReport> {
        self.inner.refuse_while_reading("verify")?;
        let inner = &self.inner;
        let fs = &*inner.fs;
        let _writer = inner.writer.lock();
        let mut files = Vec::new();
        let manifest_path = inner.dir.join(super::manifest::MANIFEST_NAME);
        let manifest = super::manifest::Manifest::load(fs, &inner.dir);
        files.push(FileCheck {
            bytes: file_len(fs, &manifest_path),
            path: manifest_path,
            kind: "manifest".into(),
            problem: manifest.as_ref().err().map(ToString::to_string),
        });
        let keystore_path = inner.dir.join(crate::crypto::KEYSTORE_FILE);
        // A keystore whose existence cannot be told is reported as its problem.
        let exists = fs.exists(&keystore_path);
        let had_one = inner.manifest.lock().keystore;
        if matches!(exists, Ok(false)) && had_one {
            files.push(FileCheck {
                bytes: 0,
                path: keystore_path.clone(),
                kind: "keystore".into(),
                problem: Some("missing, though the database has had one: restore it from a backup".into()),
            });
        }
        if exists.as_ref().map_or(true, |&e| e) {
            let problem = exists
                .and_then(|_| inner.ensure_keystore_checked())
                .and_then(|()| inner.keystore.read().as_ref().map_or(Ok(()), |k| k.verify()))
                .and_then(|()| inner.check_blind_root_not_lost(None))
                .and_then(|()| self.check_blind_values_current())
                .err();
            files.push(FileCheck {
                bytes: file_len(fs, &keystore_path),
                path: keystore_path,
                kind: "keystore".into(),
                problem: problem.map(|e| e.to_string()),
            });
        }
        let log_dir = inner.dir.join(crate::log::LOG_DIR);
        // The MANIFEST just read from disk, like the checkpoint files below: a read-only
        // handle's own copy is stale once the holder compacts (its floor's segment is gone).
        let floor = match &manifest {
            Ok(Some(m)) => m.log_floor,
            _ => inner.manifest.lock().log_floor,
        };
        let mut segments: Vec<String> = fs.list_dir(&log_dir)?;
        segments.retain(|n| n.ends_with(".seg"));
        // From the floor: damage in a leftover below it stopped the scan there, and every
        // live segment after it was listed as sound unchecked (from the log review). Segment
        // 1 when nothing was compacted, if the log has any segment: started at the first one
        // there, the scan passed a log whose first segment was missing (from the diff review).
        let from = if floor > 1 {
            Some(floor)
        } else {
            segments.iter().any(|n| crate::log::parse_segment_name(n).is_some()).then_some(1)
        };
        let from = from.map(|segment| crate::log::LogStart { segment, first_lsn: None });
        let log = crate::log::verify_from(fs, &inner.dir, inner.db_id, from);
        let mut leftovers = Vec::new();
        for name in segments {
            let path = log_dir.join(&name);
            // Below the floor: a compaction replaced it but could not remove it, and opens
            // remove it best effort. It still holds superseded and deleted records, so it is
            // noted — not as damage: `repair` has nothing to repair (from the diff review).
            if crate::log::parse_segment_name(&name).is_some_and(|n| n < floor) {
                leftovers.push(format!(
                    "{}: below the log floor: a compaction replaced it but it could not be removed; it \
                     still holds superseded and deleted records (the next writable open removes it, or \
                     remove it by hand)",
                    path.display()
                ));
                continue;
            }
            let problem = match &log {
                Err(Error::Corrupt { file, offset, reason }) if *file == path => {
                    Some(format!("at offset {offset}: {reason}"))
                }
                Err(e) if !matches!(e, Error::Corrupt { .. }) => Some(e.to_string()),
                _ => None,
            };
            files.push(FileCheck { bytes: file_len(fs, &path), path, kind: "log segment".into(), problem });
        }
        // Damage the log check found in a file no line above shows: a segment that is missing
        // (the log floor's) was reported nowhere, and verify passed (from the diff review).
        if let Err(Error::Corrupt { file, offset, reason }) = &log {
            if !files.iter().any(|f| f.path == *file) {
                files.push(FileCheck {
                    bytes: file_len(fs, file),
                    path: file.clone(),
                    kind: "log segment".into(),
                    problem: Some(format!("at offset {offset}: {reason}")),
                });
            }
        }
        let mut rows_checked = 0;
        let mut rows_in_damaged_log = 0;
        // Where the log check found damage (segment, offset): a checkpoint row pointing there
        // or after it, or into a segment that is missing, cannot be checked against it.
        let damaged_log = match &log {
            Err(Error::Corrupt { file, offset, .. }) => Some((
                file.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(crate::log::parse_segment_name)
                    .unwrap_or(0),
                *offset,
                file.clone(),
            )),
            _ => None,
        };
        let mut notes = leftovers;
        // Every record with sealed PII must have its data key, unless an erasure destroyed
        // it: a keystore cut at a frame boundary (or an older copy) passes its own checks.
        let keystore = inner.keystore.read();
        let erased = inner.manifest.lock().clone();
        let mut keys = KeyCheck {
            keystore: keystore.as_ref(),
            manifest: &erased,
            missing: 0,
            first: None,
            live_erased: 0,
            first_live_erased: None,
        };
        {
            let state = inner.state.read_recursive();
            for (name, c) in &state.collections {
                for row in c.table.rows() {
                    if let Some(key_id) = row.key_id {
                        keys.check(name, &row.id, key_id);
                    }
                }
            }
        }
        if let Ok(Some(m)) = &manifest {
            for file in m.checkpoint.iter().flat_map(|c| &c.files) {
                let collection = &file.collection;
                let path = inner.dir.join(INDEX_DIR).join(&file.name);
                let opened =
                    fs.map(&path).and_then(|bytes| Checkpoint::open(bytes, &path, Verify::Checksums));
                if let Err(Error::Corrupt { offset, reason, .. }) = &opened {
                    // A checksum or structure failure: the next open checks the file whole
                    // (sections are otherwise checked on first use) and rebuilds from the log;
                    // this process's mapping of it (checked before the bytes went bad, or not
                    // at all) refuses answers and checkpoints from now on.
                    let _ = fs.create_new(&super::checkpoint::damage_marker(&path));
                    let state = inner.state.read_recursive();
                    if let Some(base) = state.collections.get(collection).and_then(|c| c.base.as_ref()) {
                        if base.checkpoint.path() == path {
                            base.checkpoint.note_damage(*offset, format!("{reason} (found by verify)"));
                        }
                    }
                }
                let damaged_from = damaged_log.as_ref().map(|(segment, offset, _)| (*segment, *offset));
                let checked = opened.and_then(|c| {
                    if c.lsn() != file.lsn {
                        let reason =
                            format!("written at LSN {}, the MANIFEST names it at LSN {}", c.lsn(), file.lsn);
                        return Err(Error::corrupt(c.path(), 0, reason));
                    }
                    let (checked, unreadable) = self.check_rows(collection, &c, &mut keys, damaged_from)?;
                    rows_checked += checked;
                    rows_in_damaged_log += unreadable;
                    if let Some((_, offset, log_file)) = damaged_log.as_ref().filter(|_| unreadable > 0) {
                        notes.push(format!(
                            "{}: the checkpoint is sound, but {unreadable} of its {} rows point to log records \
                             in damaged bytes (the log is damaged from byte {offset} of {} on): those records \
                             cannot be read back, so their `get` and PII reads fail; queries still answer \
                             from this file, the only copy of their locations and attributes — keep it: \
                             `geocrm repair` rebuilds those records from it",
                            c.path().display(),
                            c.len(),
                            log_file.display()
                        ));
                    }
                    Ok(())
                });
                files.push(FileCheck {
                    bytes: file_len(fs, &path),
                    path,
                    kind: "checkpoint".into(),
                    problem: checked.err().map(|e| e.to_string()),
                });
            }
        }
        if let Some((collection, id, key_id)) = keys.first.take() {
            let problem = format!(
                "{} record(s) use a data key it does not hold and no erasure destroyed (the first: {id:?} in \
                 {collection:?}, key {key_id}): their PII cannot be decrypted (`geocrm repair` keeps them \
                 without it)",
                keys.missing
            );
            let keystore_path = inner.dir.join(crate::crypto::KEYSTORE_FILE);
            match files.iter_mut().find(|f| f.kind == "keystore") {
                Some(f) => {
                    f.problem.get_or_insert(problem);
                }
                None => files.push(FileCheck {
                    bytes: file_len(fs, &keystore_path),
                    path: keystore_path,
                    kind: "keystore".into(),
                    problem: Some(problem),
                }),
            }
        }
        if let Some((collection, id)) = keys.first_live_erased.take() {
            let log_dir = inner.dir.join(crate::log::LOG_DIR);
            files.push(FileCheck {
                bytes: 0,
                path: log_dir,
                kind: "log".into(),
                problem: Some(format!(
                    "{} record(s) an erasure removed show again (the first: {id:?} in {collection:?}): the \
                     log lost the erasure's tombstone, though its data key was destroyed; `geocrm repair` \
                     erases them again",
                    keys.live_erased
                )),
            });
        }
        drop(keystore);
        // The audit log's files: whole frames, each decodable (a writable open checks the
        // frames of `audit.log` too, and then refuses every read of PII while it is damaged).
        let current = inner.audit.path().to_owned();
        let checked = inner.audit.check().unwrap_or_else(|e| vec![(current.clone(), Err(e))]);
        for (path, torn) in checked {
            let problem = match torn {
                Ok(torn) if torn > 0 && path != current => Some(format!(
                    "its last {torn} bytes are not a whole entry, though the file was whole when it was \
                     sealed (damage)"
                )),
                Ok(torn) => {
                    if torn > 0 && inner.read_only {
                        notes.push(format!(
                            "audit log: its last {torn} bytes are not a whole entry (a torn append, or damage \
                             to the last entry), left out by this read-only open; the next writable open cuts \
                             them"
                        ));
                    }
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            files.push(FileCheck { bytes: file_len(fs, &path), path, kind: "audit log".into(), problem });
        }
        let set_aside =
            if inner.read_only { "left out by this read-only open" } else { "cut when it was opened" };
        if let Some(t) = &inner.recovery.truncated {
            notes.push(format!(
                "log: the last {} bytes of {} were not a whole commit and were {set_aside} (a crash during a \
                 write, or damage to the last commit)",
                t.bytes_dropped,
                t.file.display()
            ));
        }
        // (`dropped_tail_bytes` keeps what open found; `dropped_tail_at` goes once it is cut.)
        let dropped = inner
            .keystore
            .read()
            .as_ref()
            .filter(|k| k.dropped_tail_at().is_some())
            .map_or(0, crate::crypto::Keystore::dropped_tail_bytes);
        if dropped > 0 {
            notes.push(format!(
                "keystore: its last {dropped} bytes are not a whole frame (a torn append of keys no acknowledged \
                 record uses, or damage: `repair` keeps a record whose key it held, without its PII); they are \
                 cut before the next key is added"
            ));
        }
        if inner.audit.cut_at_open() > 0 {
            notes.push(format!(
                "audit log: its last {} bytes were not a whole entry and were cut when it was opened",
                inner.audit.cut_at_open()
            ));
        }
        Ok(VerifyReport { files, rows_checked, rows_in_damaged_log, notes })
    }

    /// With the master key: [`Error::Corrupt`] naming the keystore when a record's stored
    /// blind values are not those the keystore's root key gives (made under a lost root, and
    /// a repair deriving them again was interrupted before reaching it).
    fn check_blind_values_current(&self) -> Result<()> {
        if !self.has_key() {
            return Ok(());
        }
        let snap = self.read();
        for name in snap.collection_names() {
            let stale = snap.collection(&name)?.stale_blind_values()?;
            if let Some(first) = stale.first() {
                return Err(Error::corrupt(
                    self.inner.dir.join(crate::crypto::KEYSTORE_FILE),
                    0,
                    format!(
                        "{} record(s) in {name:?} (the first {first:?}) store phone or e-mail blind values \
                         the keystore's blind-index root key does not give (made under one it lost): \
                         `geocrm repair` with the key derives them again",
                        stale.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks a checkpoint's id order, its cell order (sorted by cell, each row once) and
    /// every row against its log record. With the log damaged from `damaged_log` (segment,
    /// offset) on, a row whose log record cannot be read there (or in a missing segment) is
    /// the log's damage, not the checkpoint's: counted, and the others checked. Returns the
    /// rows checked against the log and those counted.
    fn check_rows(
        &self,
        collection: &str,
        c: &Checkpoint,
        keys: &mut KeyCheck<'_>,
        damaged_log: Option<(u64, u64)>,
    ) -> Result<(u64, u64)> {
        let bad = |row: u32, what: &str| {
            Error::corrupt(c.path(), 0, format!("row {row} ({:?}): {what}", c.id(row)))
        };
        if c.meta().collection != collection {
            return Err(Error::corrupt(c.path(), 0, "the file holds another collection"));
        }
        // The tree's boxes and unit vectors are trusted by every spatial query (a node inside
        // a query's box is taken whole): checksums alone passed a file whose boxes were wrong
        // (from the file-validation review).
        c.tree()
            .check_invariants()
            .map_err(|e| Error::corrupt(c.path(), 0, format!("the packed R-tree is inconsistent: {e}")))?;
        let n = c.len() as u32;
        let mut seen = vec![false; c.len()];
        for row in 0..n {
            let found = c.find(c.id(row)).ok_or_else(|| bad(row, "not found by its id"))?;
            if found != row || std::mem::replace(&mut seen[row as usize], true) {
                return Err(bad(row, "the id order is wrong or an id appears twice"));
            }
        }
        seen.fill(false);
        let mut prev: Option<(u64, u32)> = None;
        for &w in c.cell_order().as_chunks::<4>().0 {
            let row = u32::from_le_bytes(w);
            let key = (c.cell(row), row);
            if prev.is_some_and(|p| p >= key) || seen.get(row as usize).is_none_or(|&s| s) {
                return Err(bad(row, "the cell order is not sorted by cell or names a row twice"));
            }
            seen[row as usize] = true;
            prev = Some(key);
        }
        // Which rows the live state shows (a record replaced, deleted or erased since is
        // hidden): a shown one whose key an erasure destroyed lost its tombstone.
        let visible: Vec<bool> = {
            let state = self.inner.state.read_recursive();
            let base = state.collections.get(collection).and_then(|s| s.base.as_ref());
            let base = base.filter(|b| b.checkpoint.path() == c.path());
            // Unknown (the live state maps another file) counts as not shown.
            (0..n).map(|row| base.is_some_and(|b| b.visible(row))).collect()
        };
        let (f, k) = (c.meta().schema.number_fields().len(), c.meta().schema.category_fields().len());
        let rows: Vec<(OpPointer, u32)> = (0..n).map(|row| (c.pointer(row), row)).collect();
        let mut check = |row: u32, op: std::result::Result<LogOp, String>| -> Result<()> {
            let Ok(LogOp::Upsert(r)) = op else {
                return Err(bad(row, "its log pointer does not lead to an upsert"));
            };
            let same_numbers = (0..f).all(|i| {
                let (a, b) = (c.number(i, row), r.numbers.get(i).copied().flatten().unwrap_or(f64::NAN));
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            });
            let same_categories = (0..k).all(|i| {
                // No value is MISSING exactly: a code past the dictionary is no value to
                // `get` but a value to a filter.
                let code = c.category(i, row);
                let value = match code {
                    u32::MAX => Some(None),
                    code => c
                        .meta()
                        .dictionary
                        .get(i)
                        .and_then(|d| d.get(code as usize))
                        .map(|v| Some(v.as_str())),
                };
                value == Some(r.categories.get(i).and_then(|v| v.as_deref()))
            });
            let location = c.location(row).map(|l| (l.lat(), l.lon()));
            if r.id != c.id(row)
                || r.collection != collection
                || location != Some((r.lat, r.lon))
                || r.cell != c.cell(row)
                || !same_numbers
                || !same_categories
            {
                return Err(bad(row, "differs from the log record it points to"));
            }
            if let Some(key_id) = r.key_id {
                keys.check(collection, &r.id, key_id);
                if visible.get(row as usize).copied().unwrap_or(false) {
                    keys.check_not_erased(collection, &r.id, key_id);
                }
            }
            Ok(())
        };
        let Some(from) = damaged_log else {
            self.inner.segments.for_each_op(rows, |_, row, op| check(row, op))?;
            return Ok((u64::from(n), 0));
        };
        let mut unreadable = 0;
        self.inner.segments.for_each_op_or_read_error(rows, |p, row, read| match read {
            Ok(op) => check(row, op),
            Err(e) if (p.segment, p.offset) >= from || is_not_found(e) => {
                unreadable += 1;
                Ok(())
            }
            // The log check passed these bytes: the row's pointer is what is wrong.
            Err(e) => Err(bad(row, &format!("its log record cannot be read: {e}"))),
        })?;
        Ok((u64::from(n) - unreadable, unreadable))
    }
}

/// Whether `e` is a file found missing (a log segment a checkpoint row points into).
fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Records with sealed PII whose data key the keystore does not hold, for `verify`.
struct KeyCheck<'a> {
    keystore: Option<&'a crate::crypto::Keystore>,
    manifest: &'a super::manifest::Manifest,
    missing: u64,
    /// The first one found: (collection, id, key id).
    first: Option<(String, String, u64)>,
    /// Live records whose key an erasure destroyed, and the first of them.
    live_erased: u64,
    first_live_erased: Option<(String, String)>,
}

impl KeyCheck<'_> {
    /// Notes a live record whose key `key_id` an erasure destroyed: the erasure's tombstone
    /// was lost (a damaged log), so the record shows again.
    fn check_not_erased(&mut self, collection: &str, id: &str, key_id: u64) {
        if self.manifest.erased_key(key_id) == Some(true) {
            self.live_erased += 1;
            self.first_live_erased.get_or_insert_with(|| (collection.to_owned(), id.to_owned()));
        }
    }

    /// Notes a record that uses `key_id` if the keystore holds another (or none) for it and
    /// no erasure destroyed it (a record's key outlives updates; erasing destroys it).
    fn check(&mut self, collection: &str, id: &str, key_id: u64) {
        let held = self.keystore.and_then(|k| k.key_id(collection, id));
        if held != Some(key_id) && self.manifest.erased_key(key_id) != Some(true) {
            self.missing += 1;
            self.first.get_or_insert_with(|| (collection.to_owned(), id.to_owned(), key_id));
        }
    }
}
