//! `repair`: salvaging a database that refuses to open because acknowledged data is damaged.
//!
//! Opening never guesses: a torn, unsynced tail is cut, but damage to bytes that were
//! acknowledged is [`Error::Corrupt`], naming file and offset. [`Database::repair`] is the
//! explicit, reported step after that: it opens the database, and each time opening fails
//! on a damaged file it salvages that file and tries again, recording what it dropped.
//!
//! | damage | what repair does |
//! |---|---|
//! | `MANIFEST` unreadable or missing while the log exists | rebuilds it from the segment headers (database id) with no checkpoint, so the whole log is replayed |
//! | a segment header | rewrites it from its file name, the database id and the first frame's LSN; without a valid first frame, removes the segment (and every later one) |
//! | a frame in a segment (checksum, length, LSN, an operation that does not decode) | cuts the segment where the transaction holding that frame starts (a transaction is applied whole or not at all) and removes every later segment: the log keeps its longest valid prefix, with no holes. The intact operations dropped are listed by record; the damaged frame by byte range, with how many operations it held when the intact frames around it tell (its bytes are never decoded) |
//! | a missing segment, or one that does not continue the LSNs | removes it and every later segment; recreates an empty start segment for a checkpoint whose segment is gone. A segment found missing, emptied or cut inside its header is reported lost, with what `log/SYNCED` recorded of it |
//! | a missing `log/` directory | creates it, and salvages it as a log without segments |
//! | a checkpoint file | opening already rebuilds from the log; repair then writes a fresh checkpoint |
//! | a keystore frame | removes that frame and keeps the frames after it (or, when it cannot tell where the next frame starts, cuts the keystore there). A damaged final frame: with the master key, the keys live records use that can still be read and authenticate are taken back — unless the MANIFEST lists the key id as erased, or does not track erasures. Records whose data key went are re-written without PII (their PII is unrecoverable) |
//! | the audit log | cuts it at the damaged frame (a damaged header: the file is removed and started again) |
//! | a live record without its data key, the keystore intact | it had been erased and the cut took its tombstone (keys are destroyed only after a durable tombstone): deleted again, never resurrected |
//! | a live record whose log record cannot be read back | re-written from its checkpoint row (location and attributes), without PII |
//! | the keystore's blind-index root key lost while records store blind values | with the master key: a new root key, and those records re-written with their PII so their phone and e-mail blind values are derived under it (without the key, an error naming the keystore) |
//! | damage in segments a checkpoint covers (open does not replay them) | found by [`Database::verify`]; the database is compacted, so those segments go |
//!
//! The report's [`RepairReport::acknowledged_data_lost`] says whether acknowledged data was
//! dropped (or may have been): `geocrm repair` then exits with status 4.
//!
//! Not repaired (an error): a damaged keystore header or a keystore of another database (no
//! key could be unwrapped; restore the file from a backup), the wrong key, files of a newer
//! format version. Repair modifies the files in place and keeps no copy of what it drops:
//! copy the directory first if you want the damaged bytes, or see what would happen with
//! [`Database::repair_dry_run`], which works on an in-memory copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::manifest::{Manifest, MANIFEST_NAME};
use super::{Database, Options};
use crate::crypto::KEYSTORE_FILE;
use crate::error::{Error, Result};
use crate::io::{write_atomic, FileSystem, MemFs};
use crate::log::{first_frame_lsn, parse_segment_name, segment_path, SegmentHeader, LOG_DIR};
use crate::model::Record;

/// More salvage steps than any real damage needs: each step shrinks or removes a file, so
/// the loop ends long before this; the bound only guards against a repair bug.
const MAX_STEPS: usize = 10_000;

/// What [`Database::repair`] did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Whether this was [`Database::repair_dry_run`] (nothing on disk changed).
    pub dry_run: bool,
    /// Every salvage step, in order; empty when the database opened as it was.
    pub actions: Vec<RepairAction>,
    /// The LSN the repaired log continues at.
    pub next_lsn: u64,
    /// Live records per collection after the repair.
    pub records: Vec<(String, u64)>,
    /// Whether the repair dropped acknowledged data — or cannot rule out that it did: a
    /// step for which [`RepairAction::loses_acknowledged_data`] holds. `geocrm repair` then
    /// exits with status 4. (Audit-log entries are reported but do not count.)
    pub acknowledged_data_lost: bool,
}

impl RepairReport {
    /// Whether the database needed no repair.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.actions.is_empty()
    }
}

/// One salvage step of [`Database::repair`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RepairAction {
    /// The manifest was rebuilt; the log is replayed from its oldest segment.
    ManifestRebuilt {
        /// Why the old one could not be used.
        reason: String,
    },
    /// A segment header was rewritten from the file name, database id and first frame.
    SegmentHeaderRebuilt {
        /// The segment.
        file: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A segment was cut at a damaged frame; the bytes from `offset` on were dropped. With
    /// `bytes_dropped` 0 the segment was found already ending at `offset`, short of what
    /// the log's close record says was synced: it is kept as it is.
    LogCut {
        /// The segment.
        file: PathBuf,
        /// Where it now ends.
        offset: u64,
        /// Bytes dropped.
        bytes_dropped: u64,
        /// What was wrong at `offset`.
        reason: String,
        /// Whether the bytes cut (or found missing) held acknowledged writes: damage that
        /// opening refused. `false` for a torn tail (the end of a write never acknowledged)
        /// and for bytes past the longest a segment can be.
        acknowledged: bool,
    },
    /// A damaged frame — one that failed its checks, so its bytes are not decoded, or whose
    /// operations do not decode — was dropped with the transaction holding it (a transaction
    /// is applied whole or not at all). The operations it held are lost and cannot be named:
    /// the records they wrote are not in [`RepairAction::OperationsDropped`].
    DamagedFrameDropped {
        /// The segment.
        file: PathBuf,
        /// Where the frame starts.
        offset: u64,
        /// The bytes dropped unread from `offset`: the frame (`whole_frame`), or — when its
        /// length field cannot be trusted — up to the next frame that reads, or the
        /// segment's end.
        bytes: u64,
        /// Whether `bytes` is exactly the frame, its length borne out by a valid frame (or
        /// the segment's end) right after it.
        whole_frame: bool,
        /// How many operations the lost bytes held, from the LSNs of the intact frames
        /// around them (or the frame's own count when only its operations failed to
        /// decode); `None` when nothing intact tells.
        operations: Option<u64>,
        /// The LSN of the first of them, with `operations`.
        first_lsn: Option<u64>,
    },
    /// A segment was removed whole (it followed the damage, or its header was unusable).
    SegmentRemoved {
        /// The segment.
        file: PathBuf,
        /// Its size.
        bytes: u64,
        /// Why.
        reason: String,
    },
    /// The log held no segment at all and there is no checkpoint: an empty log was started,
    /// and every record written before is gone (restore from a backup).
    LogLost {
        /// The log directory.
        dir: PathBuf,
    },
    /// A segment of the log was found missing, emptied, or cut inside its header, so the
    /// acknowledged writes it held are gone and cannot be listed: the newest segment the
    /// close record (`log/SYNCED`) records as synced, or a segment nothing records the
    /// contents of (a checkpoint's, found missing, perhaps with the whole log directory).
    SegmentLost {
        /// The segment.
        file: PathBuf,
        /// Its length as found; `None` when the file was missing.
        found_bytes: Option<u64>,
        /// The length the close record says was synced; `None` when no close record names
        /// the segment (whether it held writes then cannot be told).
        synced_bytes: Option<u64>,
        /// The LSN the segment started at (the close record's or the checkpoint's), if known.
        first_lsn: Option<u64>,
        /// The LSN the repaired log continues at: new writes take the lost LSNs again.
        log_continues_at: u64,
        /// What opening reported.
        reason: String,
    },
    /// The database's log directory was missing; an empty one was created (the segments it
    /// held are reported as [`RepairAction::SegmentLost`]).
    LogDirCreated {
        /// The log directory.
        dir: PathBuf,
    },
    /// An empty segment was created where a checkpoint expects replay to start.
    SegmentCreated {
        /// The segment.
        file: PathBuf,
        /// The LSN it starts at (the checkpoint's).
        first_lsn: u64,
    },
    /// A damaged keystore frame at `offset` was removed, the frames after it kept (or the
    /// keystore cut there, losing them, when the next frame's start was not clear): its keys
    /// were lost, except — for a damaged final frame — those live records use that repair
    /// took back with the master key (`reason` says how many).
    KeystoreCut {
        /// The keystore file.
        file: PathBuf,
        /// Where the damaged frame started (the valid length of the file as found; a
        /// dropped final frame is removed by a whole rewrite, whose length may differ).
        offset: u64,
        /// Bytes dropped.
        bytes_dropped: u64,
        /// What was wrong at `offset`.
        reason: String,
    },
    /// A damaged frame of an audit-log file at `offset` was removed and the entries after it
    /// kept (`reason` ends "the entries after it were kept"; since the twenty-eighth part),
    /// or — when where the next entry starts was not clear — the file was cut there and the
    /// entries after it were lost.
    AuditCut {
        /// The file: `audit.log`, or a sealed `audit-N.log`.
        file: PathBuf,
        /// Where it now ends.
        offset: u64,
        /// Bytes dropped.
        bytes_dropped: u64,
        /// What was wrong at `offset`.
        reason: String,
    },
    /// A file of the audit log had a damaged header: it was removed (and `audit.log` started
    /// again).
    AuditRestarted {
        /// The file: `audit.log`, or a sealed `audit-N.log`.
        file: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The checkpoint was unusable; the state was rebuilt from the log and a new
    /// checkpoint written.
    CheckpointRebuilt {
        /// Why the old one was rejected.
        reason: String,
    },
    /// Damage the log replay does not read (segments a checkpoint covers) was found by
    /// verification; the database was compacted, which rewrites every live record and
    /// deletes those segments.
    Compacted {
        /// What verification found.
        reason: String,
    },
    /// Records that had been erased (their data key was destroyed) came back because the
    /// log cut took their erasure tombstone; they were deleted again.
    ErasedAgain {
        /// The collection.
        collection: String,
        /// The records, in id order.
        ids: Vec<String>,
    },
    /// Operations a log cut or a segment removal dropped though their frames were intact,
    /// for one collection: those of the transaction holding a damaged frame (applied whole
    /// or not at all: its intact frames, before and after the damaged one) and those of
    /// every commit after it (the log keeps a prefix of its commits). The records they
    /// upserted, deleted or erased are as the kept log leaves them — an update undone, a
    /// deleted record back. Ids in order, each once per list. The operations of a damaged
    /// frame cannot be read and are not here ([`RepairAction::DamagedFrameDropped`]).
    OperationsDropped {
        /// The collection.
        collection: String,
        /// Records whose upserts were dropped.
        upserted: Vec<String>,
        /// Records whose deletions were dropped.
        deleted: Vec<String>,
        /// Records whose erasures were dropped (one whose key the erasure destroyed is
        /// erased again, [`RepairAction::ErasedAgain`]).
        erased: Vec<String>,
    },
    /// Operations of a transaction at the end of a segment a log cut or a segment removal
    /// dropped whose last frame is not there: most likely a write a crash interrupted,
    /// never acknowledged — unless that last frame was among the damaged or unreadable
    /// bytes. Listed apart from [`RepairAction::OperationsDropped`] (they were listed as
    /// intact operations; from a hands-on crash test).
    UnfinishedDropped {
        /// The segment.
        file: PathBuf,
        /// The collection.
        collection: String,
        /// Records the transaction upserted.
        upserted: Vec<String>,
        /// Records it deleted.
        deleted: Vec<String>,
        /// Records it erased.
        erased: Vec<String>,
    },
    /// Bytes a log cut or a segment removal dropped that could not be read as frames
    /// (besides the damaged frame itself), so what they held is not listed in
    /// [`RepairAction::OperationsDropped`].
    UnreadDropped {
        /// The segment.
        file: PathBuf,
        /// How many bytes, at its end.
        bytes: u64,
    },
    /// These records stored phone or e-mail blind values the keystore's root key does not
    /// give (made under a root the keystore lost; a new one was made): they were re-written
    /// with their PII, so lookups and the duplicates report match them again.
    BlindValuesDerivedAgain {
        /// The collection.
        collection: String,
        /// The records, in id order.
        ids: Vec<String>,
    },
    /// Live records whose PII could not be kept (their data key or their log record was
    /// lost) were re-written with their location and attributes only.
    PiiDropped {
        /// The collection.
        collection: String,
        /// The records, in id order.
        ids: Vec<String>,
    },
    /// Live records of a collection without PII fields whose log record could not be read
    /// back were re-written from their checkpoint rows (location and attributes): nothing
    /// of them was lost.
    RebuiltFromCheckpoint {
        /// The collection.
        collection: String,
        /// The records, in id order.
        ids: Vec<String>,
    },
}

impl RepairAction {
    /// Whether this step dropped acknowledged data, or cannot rule out that it did:
    /// operations of acknowledged commits (intact or in a damaged frame), synced bytes of the
    /// log found missing, a log segment or the whole log lost, the PII of live records. Not:
    /// a torn tail (never acknowledged), an unfinished transaction, rebuilt files, records
    /// rebuilt whole from the checkpoint, the audit log's entries.
    #[must_use]
    pub fn loses_acknowledged_data(&self) -> bool {
        match self {
            RepairAction::LogCut { acknowledged, .. } => *acknowledged,
            RepairAction::SegmentRemoved { bytes, .. } => *bytes > crate::log::SEGMENT_HEADER_LEN as u64,
            RepairAction::OperationsDropped { upserted, deleted, erased, .. } => {
                !(upserted.is_empty() && deleted.is_empty() && erased.is_empty())
            }
            RepairAction::DamagedFrameDropped { .. }
            | RepairAction::SegmentLost { .. }
            | RepairAction::LogLost { .. }
            | RepairAction::UnreadDropped { .. }
            | RepairAction::PiiDropped { .. } => true,
            RepairAction::ManifestRebuilt { .. }
            | RepairAction::SegmentHeaderRebuilt { .. }
            | RepairAction::LogDirCreated { .. }
            | RepairAction::SegmentCreated { .. }
            | RepairAction::KeystoreCut { .. }
            | RepairAction::AuditCut { .. }
            | RepairAction::AuditRestarted { .. }
            | RepairAction::CheckpointRebuilt { .. }
            | RepairAction::Compacted { .. }
            | RepairAction::ErasedAgain { .. }
            | RepairAction::UnfinishedDropped { .. }
            | RepairAction::BlindValuesDerivedAgain { .. }
            | RepairAction::RebuiltFromCheckpoint { .. } => false,
        }
    }
}

/// How many ids an action's text lists before it says how many more there are (the report
/// as data, `--json`, has them all): one line held 9 KB of ids (from a hands-on review).
const IDS_SHOWN: usize = 20;

impl std::fmt::Display for RepairAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepairAction::ManifestRebuilt { reason } => {
                write!(f, "rebuilt MANIFEST ({reason}); the whole log is replayed")
            }
            RepairAction::SegmentHeaderRebuilt { file, reason } => {
                write!(f, "rebuilt the header of {} ({reason})", file.display())
            }
            // A segment found already short (cut at a transaction's end): it is taken as it
            // ends; "dropped 0 bytes" read as if nothing had been lost.
            RepairAction::LogCut { file, offset, bytes_dropped: 0, reason, .. } => write!(
                f,
                "kept {} as it ends, at byte {offset} ({reason}); nothing was left to cut, and what \
                 the missing bytes held cannot be listed",
                file.display()
            ),
            RepairAction::LogCut { file, offset, bytes_dropped, reason, .. } => write!(
                f,
                "cut {} at byte {offset} ({reason}); dropped {bytes_dropped} bytes of transactions",
                file.display()
            ),
            RepairAction::DamagedFrameDropped { file, offset, bytes, whole_frame, operations, first_lsn } => {
                let end = offset + bytes;
                if *whole_frame {
                    write!(f, "the damaged frame at bytes {offset}..{end} of {} ({bytes} bytes)", file.display())?;
                } else {
                    write!(
                        f,
                        "the damaged frame at byte {offset} of {}, whose length cannot be trusted, and the \
                         bytes after it up to byte {end} ({bytes} bytes in all)",
                        file.display()
                    )?;
                }
                write!(f, " cannot be read (bytes that fail their checks are never decoded): ")?;
                match (operations, first_lsn) {
                    (Some(0), _) => write!(f, "it held no operation, but its transaction is dropped whole"),
                    (Some(n), Some(first)) => write!(
                        f,
                        "the {n} operation(s) it held, LSNs {first} to {}, are lost with its transaction, and \
                         the records they wrote are NOT named in this report",
                        first.saturating_add(n.saturating_sub(1))
                    ),
                    _ => write!(
                        f,
                        "the operations it held are lost with its transaction, and the records they wrote \
                         are NOT named in this report (how many there were cannot be told)"
                    ),
                }
            }
            RepairAction::SegmentRemoved { file, bytes, reason } => {
                write!(f, "removed {} ({bytes} bytes): {reason}", file.display())
            }
            RepairAction::SegmentLost { file, found_bytes, synced_bytes, first_lsn, log_continues_at, reason } => {
                write!(f, "LOST {}", file.display())?;
                if let Some(first) = first_lsn {
                    write!(f, " (the writes from LSN {first} on)")?;
                }
                match found_bytes {
                    None => write!(f, ": the file is missing")?,
                    Some(n) => write!(f, ": the file holds only {n} bytes")?,
                }
                match synced_bytes {
                    Some(synced) => write!(
                        f,
                        ", yet the log was closed with its first {synced} bytes synced (log/SYNCED): every \
                         acknowledged write in it is gone, and what they were cannot be listed"
                    )?,
                    None => write!(
                        f,
                        ", and nothing records what it held: the acknowledged writes in it, if there were \
                         any, are gone, and what they were cannot be listed"
                    )?,
                }
                write!(f, "; the log continues at LSN {log_continues_at} ({reason})")
            }
            RepairAction::LogLost { dir } => write!(
                f,
                "{} held no segment and there is no checkpoint: started an empty log; every record \
                 written before is gone (restore it from a backup if there is one)",
                dir.display()
            ),
            RepairAction::LogDirCreated { dir } => write!(f, "created the missing log directory {}", dir.display()),
            RepairAction::SegmentCreated { file, first_lsn } => {
                write!(f, "created empty {} starting at LSN {first_lsn}", file.display())
            }
            RepairAction::KeystoreCut { file, offset, bytes_dropped, reason } => write!(
                f,
                "dropped the damaged frame at byte {offset} of {} ({reason}): {bytes_dropped} bytes of wrapped keys",
                file.display()
            ),
            RepairAction::AuditCut { file, offset, bytes_dropped, reason } => write!(
                f,
                "cut {} at byte {offset} ({reason}); dropped {bytes_dropped} bytes of audit entries",
                file.display()
            ),
            RepairAction::AuditRestarted { file, reason } => {
                write!(f, "removed {} ({reason}); its entries were lost", file.display())
            }
            RepairAction::CheckpointRebuilt { reason } => {
                write!(f, "checkpoint rejected ({reason}); rebuilt from the log and written again")
            }
            RepairAction::Compacted { reason } => {
                write!(f, "compacted the log to drop damaged segments a checkpoint covered ({reason})")
            }
            RepairAction::ErasedAgain { collection, ids } => {
                write!(
                    f,
                    "{} erased record(s) in {collection:?} whose tombstone the cut dropped deleted again: ",
                    ids.len()
                )?;
                write_ids(f, ids)
            }
            RepairAction::OperationsDropped { collection, upserted, deleted, erased } => {
                write!(
                    f,
                    "dropped intact operations on {collection:?} of the transactions dropped with the damage \
                     (a transaction holding a damaged frame goes whole, its intact frames before and after \
                     it too, and every commit after the damage goes with it):"
                )?;
                write_ops(f, [upserted, deleted, erased])?;
                write!(f, " those records are as the log before those transactions leaves them")
            }
            RepairAction::UnfinishedDropped { file, collection, upserted, deleted, erased } => {
                write!(
                    f,
                    "dropped an unfinished transaction at the end of {} (its last frame is not there: most \
                     likely a write a crash interrupted, never acknowledged) on {collection:?}:",
                    file.display()
                )?;
                write_ops(f, [upserted, deleted, erased])?;
                write!(f, " those records are as the log before it leaves them")
            }
            RepairAction::UnreadDropped { file, bytes } => write!(
                f,
                "{bytes} more bytes dropped from {} could not be read as frames: what they held is not listed",
                file.display()
            ),
            RepairAction::BlindValuesDerivedAgain { collection, ids } => {
                write!(
                    f,
                    "{} record(s) in {collection:?} given phone and e-mail blind values under the \
                     keystore's blind-index root key (theirs were made under a lost one): ",
                    ids.len()
                )?;
                write_ids(f, ids)
            }
            RepairAction::PiiDropped { collection, ids } => {
                write!(
                    f,
                    "{} record(s) in {collection:?} kept without PII (data key or log record lost; their \
                     location and attributes are kept): ",
                    ids.len()
                )?;
                write_ids(f, ids)
            }
            RepairAction::RebuiltFromCheckpoint { collection, ids } => {
                write!(
                    f,
                    "{} record(s) in {collection:?} rebuilt from the checkpoint (their log records were \
                     damaged or lost; the collection has no PII fields, so nothing of them was lost): ",
                    ids.len()
                )?;
                write_ids(f, ids)
            }
        }
    }
}

/// "a, b, c": the first [`IDS_SHOWN`] ids, then how many more there are.
fn write_ids(f: &mut std::fmt::Formatter<'_>, ids: &[String]) -> std::fmt::Result {
    let shown = ids.get(..IDS_SHOWN).unwrap_or(ids);
    write!(f, "{}", shown.join(", "))?;
    match ids.len() - shown.len() {
        0 => Ok(()),
        more => write!(f, ", and {more} more"),
    }
}

impl RepairAction {
    /// Whether this step's text leaves ids out: more than 20 in one of its lists (it gives
    /// the first 20 and how many more there are; the step as data has them all).
    #[must_use]
    pub fn text_leaves_ids_out(&self) -> bool {
        match self {
            RepairAction::OperationsDropped { upserted, deleted, erased, .. }
            | RepairAction::UnfinishedDropped { upserted, deleted, erased, .. } => {
                [upserted, deleted, erased].iter().any(|ids| ids.len() > IDS_SHOWN)
            }
            RepairAction::ErasedAgain { ids, .. }
            | RepairAction::BlindValuesDerivedAgain { ids, .. }
            | RepairAction::PiiDropped { ids, .. }
            | RepairAction::RebuiltFromCheckpoint { ids, .. } => ids.len() > IDS_SHOWN,
            _ => false,
        }
    }
}

/// " upserts of 2 (a, b); deletions of 1 (c);": the lists that are not empty.
fn write_ops(
    f: &mut std::fmt::Formatter<'_>,
    [upserted, deleted, erased]: [&Vec<String>; 3],
) -> std::fmt::Result {
    for (what, ids) in [("upserts of", upserted), ("deletions of", deleted), ("erasures of", erased)] {
        if !ids.is_empty() {
            write!(f, " {what} {} (", ids.len())?;
            write_ids(f, ids)?;
            write!(f, ");")?;
        }
    }
    Ok(())
}

impl Database {
    /// Salvages a database that [`Database::open`] refuses with [`Error::Corrupt`]: drops
    /// the damaged part of each file, reopens, and returns the report of every step (one
    /// [`RepairAction`] each). A lost or damaged MANIFEST or segment header is rebuilt; a
    /// damaged frame cuts its segment there and removes the later ones (the log keeps its
    /// longest valid prefix, no holes); a damaged keystore frame cuts the keystore and the
    /// records whose keys went with it are kept without PII; damage under the checkpoint is
    /// compacted away; an erased record whose tombstone a cut dropped is deleted again. A
    /// database that opens cleanly is left as it is (an empty report). Whether any step
    /// dropped acknowledged data is [`RepairReport::acknowledged_data_lost`]. Hold no other
    /// handle on the directory; FORMAT.md §1.1 lists what is written to which file.
    ///
    /// ```
    /// use geocrm::{Database, LatLon, Options, Record, Schema};
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path(), Options::new())?;
    /// db.create_collection("c", Schema::new())?;
    /// let mut batch = db.begin_write();
    /// batch.upsert("c", Record::new("a", LatLon::new(1.0, 2.0)?))?;
    /// batch.commit()?;
    /// drop(db);
    /// std::fs::remove_file(dir.path().join("MANIFEST"))?; // a lost manifest
    /// assert!(Database::open(dir.path(), Options::new()).is_err());
    /// let report = Database::repair(dir.path(), Options::new())?;
    /// assert_eq!(report.actions.len(), 1);
    /// assert!(!report.acknowledged_data_lost); // the log holds every commit
    /// let db = Database::open(dir.path(), Options::new())?;
    /// assert!(db.read().collection("c")?.get("a")?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] for damage repair does not salvage (a keystore header, no segment
    /// with a readable header when the manifest is lost); [`Error::WrongKey`];
    /// [`Error::UnsupportedVersion`]; [`Error::Locked`]; [`Error::Io`].
    pub fn repair(dir: impl AsRef<Path>, options: Options) -> Result<RepairReport> {
        repair_in(dir.as_ref(), options, false)
    }

    /// What [`Database::repair`] would do, worked out on an in-memory copy of the
    /// directory: nothing on disk changes. The copy holds the whole database in memory.
    ///
    /// # Errors
    /// As [`Database::repair`].
    pub fn repair_dry_run(dir: impl AsRef<Path>, options: Options) -> Result<RepairReport> {
        refuse_read_only(&options)?;
        let dir = dir.as_ref();
        let real = options.fs.clone();
        refuse_non_database(real.as_ref(), dir)?;
        // Keep the directory locked while it is copied, so the copy is consistent.
        let _lock = super::lock_with_wait(real.as_ref(), dir, options.lock_wait)?;
        let mem = MemFs::new();
        copy_tree(real.as_ref(), &mem, dir, 0)?;
        let options = Options { fs: Arc::new(mem), ..options };
        repair_in(dir, options, true)
    }
}

/// [`Error::InvalidArgument`] for options asking for a read-only open: a repair writes.
fn refuse_read_only(options: &Options) -> Result<()> {
    if options.read_only {
        return Err(Error::invalid_argument("read_only", "a repair writes: open without read_only"));
    }
    Ok(())
}

/// [`Error::Io`] for a missing directory, and the error a repair ends with for one that
/// holds nothing it could rebuild a database from (no MANIFEST, log or keystore) — before
/// anything, the lock file included, is created in it.
fn refuse_non_database(fs: &dyn crate::io::FileSystem, dir: &Path) -> Result<()> {
    if !fs.exists(dir)? {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory");
        return Err(Error::io("repair database", dir, missing));
    }
    if fs.exists(&dir.join(MANIFEST_NAME))? || super::has_database_parts(fs, dir) {
        return Ok(());
    }
    Err(Error::NotADatabase { dir: dir.to_owned() })
}

fn repair_in(dir: &Path, options: Options, dry_run: bool) -> Result<RepairReport> {
    refuse_read_only(&options)?;
    let fs = options.fs.clone();
    refuse_non_database(fs.as_ref(), dir)?;
    // No automatic checkpoints: one taken between a repair's first commit and its finishing
    // of interrupted erasures would put their tombstones below the checkpoint, where no
    // later open replays (and so finishes) them. `finish` checkpoints once, at the end.
    let options = Options {
        create: false,
        repair: true,
        checkpoint_after_ops: None,
        checkpoint_after_log_bytes: None,
        ..options
    };
    let mut actions = Vec::new();
    // Segments removed, or said to be lost, by a step so far.
    let mut gone = std::collections::BTreeSet::new();
    // With no checkpoint the open starts an empty log over a lost one: said, not silent (it
    // reported nothing to repair; from the durability review).
    let log_dir = dir.join(LOG_DIR);
    if crate::log::has_no_segment(fs.as_ref(), &log_dir)?
        && Manifest::load(fs.as_ref(), dir).ok().flatten().is_some_and(|m| m.checkpoint.is_none())
    {
        // (Its close record would make the open that starts a new log refuse it as damaged.)
        let _lock = super::lock_with_wait(fs.as_ref(), dir, options.lock_wait)?;
        crate::log::forget_synced(fs.as_ref(), &log_dir)?;
        actions.push(RepairAction::LogLost { dir: log_dir });
    }
    for _ in 0..MAX_STEPS {
        match Database::open(dir, options.clone()) {
            Ok(db) => {
                // The open cut a torn tail: said (the report read "nothing to repair" while the
                // log lost the bytes of a write a crash interrupted; from a hands-on review).
                if let Some(tail) = &db.recovery_report().truncated {
                    actions.push(RepairAction::LogCut {
                        file: tail.file.clone(),
                        offset: tail.offset,
                        bytes_dropped: tail.bytes_dropped,
                        reason: "a torn tail: the end of a write that was never acknowledged (a crash or a \
                                 failure during it), or damage to the last writes before a crash"
                            .to_owned(),
                        acknowledged: false,
                    });
                }
                // Where the log goes on, now that no step cuts it any more (`finish` only
                // appends).
                for action in &mut actions {
                    if let RepairAction::SegmentLost { log_continues_at, .. } = action {
                        *log_continues_at = db.next_lsn();
                    }
                }
                // The same for the audit log (an entry whose read never returned, or damage to
                // the last one that no close record vouched for).
                if let Some((offset, bytes_dropped)) = db.inner.audit.cut_at_open_at() {
                    actions.push(RepairAction::AuditCut {
                        file: db.inner.audit.path().to_owned(),
                        offset,
                        bytes_dropped,
                        reason: "a torn final entry: one whose read was never answered (a crash during \
                                 its write), or damage to the last entry that no close record vouched for"
                            .to_owned(),
                    });
                }
                finish(&db, &mut actions)?;
                let snap = db.read();
                let records = snap
                    .collection_names()
                    .into_iter()
                    .map(|name| {
                        let len = snap.collection(&name).map_or(0, |c| c.len() as u64);
                        (name, len)
                    })
                    .collect();
                let acknowledged_data_lost = actions.iter().any(RepairAction::loses_acknowledged_data);
                return Ok(RepairReport {
                    dry_run,
                    actions,
                    next_lsn: db.next_lsn(),
                    records,
                    acknowledged_data_lost,
                });
            }
            Err(Error::Corrupt { file, offset, reason }) => {
                let _lock = super::lock_with_wait(fs.as_ref(), dir, options.lock_wait)?;
                let step = salvage(fs.as_ref(), dir, (&file, offset), &reason, &mut gone)?;
                // Segments the repair removed itself are not lost again when found missing.
                for action in &step {
                    if let RepairAction::SegmentRemoved { file, .. } = action {
                        gone.extend(file.file_name().and_then(|n| n.to_str()).and_then(parse_segment_name));
                    }
                }
                actions.extend(step);
            }
            Err(other) => return Err(other),
        }
    }
    Err(Error::corrupt(dir, 0, format!("repair gave up after {MAX_STEPS} steps")))
}

/// After a successful open: a new checkpoint for a rejected one, and records whose PII is
/// lost re-written without it.
fn finish(db: &Database, actions: &mut Vec<RepairAction>) -> Result<()> {
    if let Some(reason) = db.checkpoint_rejected() {
        actions.push(RepairAction::CheckpointRebuilt { reason: reason.to_owned() });
    }
    db.inner.ensure_keystore()?;
    // Keys are synced before any log record uses them; an erasure records its key ids in the
    // MANIFEST, then destroys the keys, and only after its tombstone is durable. So a live
    // record without its key whose key id the MANIFEST lists as erased lost its tombstone to
    // a log cut: it is erased again, never resurrected. Any other is kept without its PII
    // (the keystore lost the key). Where the MANIFEST does not know (written by an older
    // version, or rebuilt), the keystore having been cut decides, as before.
    let dropped_tail =
        db.inner.keystore.read().as_ref().map_or(0, crate::crypto::Keystore::dropped_tail_bytes);
    let keystore_cut =
        dropped_tail > 0 || actions.iter().any(|a| matches!(a, RepairAction::KeystoreCut { .. }));
    let manifest = db.inner.manifest.lock().clone();
    let was_erased = |key_id: u64| manifest.erased_key(key_id).unwrap_or(!keystore_cut);
    // (collection, whether its schema has PII fields, records to re-write, records to erase)
    let mut rewrites: Vec<(String, bool, Vec<Record>, Vec<String>)> = Vec::new();
    // Live records whose key the keystore does not hold: (collection, id, key id).
    let mut missing: std::collections::HashSet<(String, String, u64)> = std::collections::HashSet::new();
    {
        let snap = db.read();
        let keystore = db.inner.keystore.read();
        for name in snap.collection_names() {
            let reader = snap.collection(&name)?;
            let (mut lost, mut erased) = (Vec::new(), Vec::new());
            for row in reader.c.view().rows() {
                match reader.stored(row) {
                    Ok((stored, _)) => {
                        if keystore.is_none() && stored.key_id.is_some() {
                            // Without the file nothing tells erased records from live ones.
                            return Err(Error::corrupt(
                                db.inner.dir.join(KEYSTORE_FILE),
                                0,
                                "the keystore is missing and records use data keys; repair cannot \
                                 salvage a missing keystore: restore it from a backup",
                            ));
                        }
                        let held = keystore.as_ref().and_then(|ks| ks.key_id(&name, &stored.id));
                        if let Some(k) = stored.key_id.filter(|&k| held != Some(k)) {
                            missing.insert((name.clone(), stored.id.clone(), k));
                        }
                        match stored.key_id {
                            Some(k) if held != Some(k) && was_erased(k) => erased.push(stored.id),
                            Some(k) if held != Some(k) => lost.push(record_from_row(reader.c, row)?),
                            _ => {}
                        }
                    }
                    Err(Error::Corrupt { .. }) => lost.push(record_from_row(reader.c, row)?),
                    Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                        lost.push(record_from_row(reader.c, row)?);
                    }
                    Err(other) => return Err(other),
                }
            }
            if !lost.is_empty() || !erased.is_empty() {
                lost.sort_by(|a, b| a.id().cmp(b.id()));
                erased.sort();
                rewrites.push((name, !reader.c.schema.pii_fields().is_empty(), lost, erased));
            }
        }
    }
    // With the master key, the dropped final frame's keys that still authenticate are taken
    // back (written out by the rewrite at the end) — only a key a live record uses under
    // that key id, and only when the MANIFEST tracks erasures and does not list it: a key
    // of a record deleted or erased since, or of a commit that never happened, stays out.
    let salvaged = match db.inner.keystore.write().as_mut() {
        Some(ks) if dropped_tail > 0 && !missing.is_empty() && ks.is_unlocked() => {
            ks.salvage_dropped_tail(|collection, id, key_id| {
                manifest.erased_key(key_id) == Some(false)
                    && missing.contains(&(collection.to_owned(), id.to_owned(), key_id))
            })?
        }
        _ => (0, 0),
    };
    if salvaged.0 > 0 {
        // Those records have their keys again (only those that missing one: a record whose
        // log record cannot be read back is still re-written).
        let keystore = db.inner.keystore.read();
        let back = |c: &str, id: &str| {
            let k = keystore.as_ref().and_then(|ks| ks.key_id(c, id));
            k.is_some_and(|k| missing.contains(&(c.to_owned(), id.to_owned(), k)))
        };
        for (name, _, lost, _) in &mut rewrites {
            lost.retain(|r| !back(name, r.id()));
        }
        rewrites.retain(|(_, _, lost, erased)| !lost.is_empty() || !erased.is_empty());
    }
    // Live records (not erased ones) still without their key: what the dropped frame cost.
    let keys_lost = {
        let keystore = db.inner.keystore.read();
        missing.iter().any(|(c, id, k)| {
            !was_erased(*k) && keystore.as_ref().and_then(|ks| ks.key_id(c, id)) != Some(*k)
        })
    };
    if dropped_tail > 0 && (keys_lost || salvaged.0 > 0) {
        // Opening dropped the keystore's final frame as torn, yet live records used its keys.
        let file = db.inner.dir.join(KEYSTORE_FILE);
        // Where the dropped frame starts: the file is cut there at the end of the repair.
        let at = db.inner.keystore.read().as_ref().and_then(crate::crypto::Keystore::dropped_tail_at);
        let offset = match at {
            Some(at) => at,
            None => db.inner.fs.open_read(&file).map_or(0, |f| f.len()),
        };
        let (taken, read) = salvaged;
        let reason = if taken > 0 {
            let lost = if keys_lost { "; it held other keys of live records, lost" } else { "" };
            format!(
                "the final frame was damaged; {taken} of the {read} entries still readable \
                 authenticated and were kept{lost}"
            )
        } else if db.has_key() {
            "the final frame was damaged, and it held keys of live records".to_owned()
        } else {
            // Said so that `repair --dry-run` tells the user before anything is lost.
            "the final frame was damaged, and it held keys of live records; without the master key \
             none could be taken back (a repair with it keeps those that still authenticate)"
                .to_owned()
        };
        actions.push(RepairAction::KeystoreCut { file, offset, bytes_dropped: dropped_tail, reason });
    }
    // The key ids live records name but the keystore does not hold are never issued again:
    // before anything below can take one (a new blind-index root key), the next key id is
    // raised past them and written out. A cut at damage raised it already; an older copy of
    // the file did not (its next key id is below the ids issued since).
    if let Some(last) = missing.iter().map(|m| m.2).max() {
        let _writer = db.inner.writer.lock();
        if let Some(ks) = db.inner.keystore.write().as_mut() {
            ks.retire_key_id(last)?;
        }
    }
    for (collection, has_pii, records, erased) in rewrites {
        for chunk in erased.chunks(10_000) {
            let mut batch = db.begin_write();
            for id in chunk {
                batch.delete(&collection, id)?;
            }
            batch.commit()?;
        }
        if !erased.is_empty() {
            actions.push(RepairAction::ErasedAgain { collection: collection.clone(), ids: erased });
        }
        let ids: Vec<String> = records.iter().map(|r| r.id().to_owned()).collect();
        for chunk in records.chunks(10_000) {
            let mut batch = db.begin_write();
            for r in chunk {
                batch.upsert_with_earlier_id_rules(&collection, r.clone())?;
            }
            batch.commit()?;
        }
        // A collection without PII fields lost nothing: its records are whole again.
        if !ids.is_empty() {
            actions.push(if has_pii {
                RepairAction::PiiDropped { collection, ids }
            } else {
                RepairAction::RebuiltFromCheckpoint { collection, ids }
            });
        }
    }
    // Interrupted erasures, finished only now that the conclusions above are committed
    // (their keystore rewrite drops a damaged final frame).
    let pending = std::mem::take(&mut *db.inner.pending_erasures.lock());
    {
        let _writer = db.inner.writer.lock();
        if let Some(ks) = db.inner.keystore.write().as_mut() {
            super::keys::destroy_erased_keys(ks, &pending, |ids| {
                let mut manifest = db.inner.manifest.lock();
                super::keys::record_erased_keys(&*db.inner.fs, &db.inner.dir, &mut manifest, ids)
            })?;
        }
    }
    if db.checkpoint_rejected().is_some()
        || actions.iter().any(|a| {
            matches!(
                a,
                RepairAction::PiiDropped { .. }
                    | RepairAction::RebuiltFromCheckpoint { .. }
                    | RepairAction::ErasedAgain { .. }
            )
        })
    {
        db.checkpoint()?;
    }
    if db.has_key() {
        derive_blind_values_again(db, actions)?;
    }
    // Segments the checkpoint covers are not replayed at open; damage there shows only in
    // `verify`. Compaction rewrites every live record and deletes those segments.
    let problems = verify_problems(db)?;
    if !problems.is_empty() {
        db.compact()?;
        actions.push(RepairAction::Compacted { reason: problems.join("; ") });
        let left = verify_problems(db)?;
        if !left.is_empty() {
            let reason = format!("still damaged after repair: {}", left.join("; "));
            return Err(Error::corrupt(&db.inner.dir, 0, reason));
        }
    }
    // Last, once everything above succeeded: drop a left-out final keystore frame from the
    // file (a whole rewrite; a repair failing before this point leaves it, and a new run
    // draws the same conclusions).
    db.inner.keystore.write().as_mut().map_or(Ok(()), crate::crypto::Keystore::cut_torn_tail)?;
    Ok(())
}

/// When the keystore lost its blind-index root key while records store blind values made
/// with it: a new root key. Then every record whose stored blind values are not those the
/// root gives (all of them after a new root; those a repair interrupted part-way did not
/// reach) is re-written with its PII (decrypted with its own data key, which the root's loss
/// did not touch), in chunks, so its values are derived under the root. Without the master
/// key nothing can be derived: `verify` then reports the keystore, and the repair fails
/// naming it.
fn derive_blind_values_again(db: &Database, actions: &mut Vec<RepairAction>) -> Result<()> {
    match db.inner.check_blind_root_not_lost(None) {
        Ok(()) => {}
        Err(Error::Corrupt { file, .. }) if file == db.inner.dir.join(KEYSTORE_FILE) => {
            db.inner.replace_lost_blind_root()?;
        }
        Err(other) => return Err(other),
    }
    let names = db.read().collection_names();
    for name in names {
        let stale = db.read().collection(&name)?.stale_blind_values()?;
        let mut rewritten = Vec::with_capacity(stale.len());
        for chunk in stale.chunks(10_000) {
            let records = {
                let snap = db.read();
                let reader = snap.collection(&name)?;
                let mut records = Vec::with_capacity(chunk.len());
                for id in chunk {
                    let Some(row) = reader.c.view().get(id) else { continue };
                    let mut record = record_from_row(reader.c, row)?;
                    for (field, value) in reader.reveal_unaudited(id)? {
                        record = record.pii(field, value.expose());
                    }
                    records.push(record);
                }
                records
            };
            let mut batch = db.begin_write();
            let ids: Vec<String> = records.iter().map(|r| r.id().to_owned()).collect();
            for r in records {
                batch.upsert_with_earlier_id_rules(&name, r)?;
            }
            batch.commit()?;
            rewritten.extend(ids);
        }
        if !rewritten.is_empty() {
            actions.push(RepairAction::BlindValuesDerivedAgain { collection: name, ids: rewritten });
        }
    }
    Ok(())
}

/// Every problem [`Database::verify`] reports, as "file: problem".
fn verify_problems(db: &Database) -> Result<Vec<String>> {
    let report = db.verify()?;
    Ok(report
        .files
        .into_iter()
        .filter_map(|f| f.problem.map(|p| format!("{}: {p}", f.path.display())))
        .collect())
}

/// A record with the location and attributes an index row holds, and no PII.
fn record_from_row(c: &super::state::CollectionState, row: crate::index::view::RowRef<'_>) -> Result<Record> {
    let mut record = Record::new(row.id(), row.location());
    for (i, field) in c.schema.number_fields().iter().enumerate() {
        let v = row.number(i);
        if !v.is_nan() {
            record = record.number(field.clone(), v);
        }
    }
    for (i, field) in c.schema.category_fields().iter().enumerate() {
        if let Some(value) = c.dict.value(i, row.category(i)) {
            record = record.category(field.clone(), value);
        }
    }
    Ok(record)
}

/// One salvage step for the damage `Database::open` reported at `file`/`offset`.
fn salvage(
    fs: &dyn FileSystem,
    dir: &Path,
    (file, offset): (&Path, u64),
    reason: &str,
    gone: &mut std::collections::BTreeSet<u64>,
) -> Result<Vec<RepairAction>> {
    let log_dir = dir.join(LOG_DIR);
    let refuse =
        |what: &str| Err(Error::corrupt(file, offset, format!("{reason}; repair cannot salvage {what}")));
    if file == dir.join(MANIFEST_NAME) {
        return rebuild_manifest(fs, dir, reason);
    }
    if file == dir.join(KEYSTORE_FILE) {
        if !fs.exists(file)? {
            return refuse("a missing keystore: restore it from a backup");
        }
        if offset < crate::crypto::KEYSTORE_HEADER_LEN as u64 {
            return refuse("a damaged keystore header: restore the keystore from a backup");
        }
        // A frame with valid ones after it (a damaged final frame opens, and `finish` takes
        // back the keys live records need): the frame goes, the frames after it stay.
        let (bytes_dropped, reason) = match crate::crypto::remove_damaged_keystore_frame(fs, dir, offset)? {
            Some(removed) => (removed, format!("{reason}; the frames after it were kept")),
            None => {
                // Keys may have been issued above the ids erasures destroyed (an open raises
                // the next key id past them without writing it into the keystore's header).
                let erased = super::manifest::read_bytes(fs, dir)
                    .ok()
                    .and_then(|b| Manifest::decode(&b, &dir.join(MANIFEST_NAME)).ok())
                    .and_then(|m| m.erased_key_ids.and_then(|ids| ids.last().copied()));
                let floor = erased.map_or(0, |last| last.saturating_add(1));
                (crate::crypto::cut_keystore_at_damage(fs, dir, offset, floor)?, reason.to_owned())
            }
        };
        return Ok(vec![RepairAction::KeystoreCut { file: file.to_owned(), offset, bytes_dropped, reason }]);
    }
    if crate::audit::is_audit_file(dir, file) {
        // The close record vouches for `audit.log`'s bytes, which this drops on purpose (or
        // for a file gone). A sealed file's repair leaves it: it still holds for `audit.log`
        // (from the diff review: removed then, the next open cut a damaged last entry of
        // `audit.log` as a torn append, unreported).
        if file.file_name().is_some_and(|n| n == crate::audit::AUDIT_FILE) {
            crate::audit::forget_close_record(fs, dir)?;
        }
        if offset < crate::audit::HEADER_LEN as u64 {
            if fs.exists(file)? {
                fs.remove_file(file)?;
            }
            fs.sync_dir(dir)?;
            return Ok(vec![RepairAction::AuditRestarted {
                file: file.to_owned(),
                reason: reason.to_owned(),
            }]);
        }
        // The damaged entry goes, the intact ones after it stay (a cut dropped them too).
        if let Some(bytes_dropped) = crate::audit::remove_damaged_frame(fs, file, offset)? {
            return Ok(vec![RepairAction::AuditCut {
                file: file.to_owned(),
                offset,
                bytes_dropped,
                reason: format!("{reason}; the entries after it were kept"),
            }]);
        }
        let bytes_dropped = cut(fs, file, offset)?;
        return Ok(vec![RepairAction::AuditCut {
            file: file.to_owned(),
            offset,
            bytes_dropped,
            reason: reason.to_owned(),
        }]);
    }
    let segment = file
        .parent()
        .filter(|p| *p == log_dir)
        .and_then(|_| file.file_name()?.to_str())
        .and_then(parse_segment_name);
    match segment {
        Some(number) => salvage_segment(fs, dir, (number, offset), reason, gone),
        None => refuse("this file"),
    }
}

fn salvage_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    (number, offset): (u64, u64),
    reason: &str,
    gone: &mut std::collections::BTreeSet<u64>,
) -> Result<Vec<RepairAction>> {
    let log_dir = dir.join(LOG_DIR);
    let path = segment_path(&log_dir, number);
    let manifest =
        Manifest::load(fs, dir)?.ok_or_else(|| Error::corrupt(dir.join(MANIFEST_NAME), 0, "missing"))?;
    let mut actions = Vec::new();
    // A log directory gone whole is a log without segments (it failed listing it, while an
    // empty one was salvaged from the checkpoint; from a hands-on review).
    if !fs.exists(&log_dir)? {
        fs.create_dir_all(&log_dir)?;
        fs.sync_dir(dir)?;
        actions.push(RepairAction::LogDirCreated { dir: log_dir.clone() });
    }
    // What this step cuts, removes or rewrites, the last close may have synced: its record
    // (`log/SYNCED`) would make the next open report the cut as damage again. Forgotten only
    // when the step changes the log (a refusal keeps it, and with it the protection).
    let forget_synced = || crate::log::forget_synced(fs, &log_dir);
    // Where a transaction at the log's very end may have been left unfinished by a crash:
    // the newest segment, past what its close record says was synced (read before this
    // step forgets the record).
    let newest = crate::log::segment_numbers(fs, &log_dir)?.last().copied();
    let unfinished_from = newest.map(|newest| {
        let synced = crate::log::read_synced(fs, &log_dir, &manifest.db_id)
            .filter(|m| m.segment == newest)
            .map_or(0, |m| usize::try_from(m.len).unwrap_or(usize::MAX));
        (segment_path(&log_dir, newest), synced)
    });
    let new_dropped = || DroppedOps { unfinished_from: unfinished_from.clone(), ..DroppedOps::default() };
    // What the last close recorded of this segment, if it names it: a segment found missing or
    // shorter than that lost acknowledged writes (it was taken as gone, or created empty,
    // with nothing said; from a hands-on review).
    let mark = crate::log::read_synced(fs, &log_dir, &manifest.db_id).filter(|m| m.segment == number);
    if !fs.exists(&path)? {
        // Only the segment a checkpoint starts replay at is looked for by number.
        let Some(record) = manifest.checkpoint.as_ref().filter(|c| c.segment == number) else {
            if manifest.checkpoint.is_none() && newest.is_none() {
                // Every segment gone and no checkpoint (the close record named one): the log
                // starts again, empty, as when no record was there to name it.
                forget_synced()?;
                actions.push(RepairAction::LogLost { dir: log_dir });
                return Ok(actions);
            }
            // The newest segment, which the close record names, is gone whole: the log ends
            // with the segments before it (with none left, the next step finds the
            // checkpoint's segment missing and starts it again).
            if newest.is_none_or(|newest| newest < number) {
                // Segment numbers run on by one: those between the newest left and the one
                // the record names went too (the report named only the last).
                let reason = match newest.map(|n| n.saturating_add(1)).filter(|&first| first < number) {
                    Some(first) if first + 1 == number => {
                        format!("{reason}; segment {first} before it is gone as well, with its writes")
                    }
                    Some(first) => format!(
                        "{reason}; segments {first} to {} before it are gone as well, with their writes",
                        number - 1
                    ),
                    None => reason.to_owned(),
                };
                forget_synced()?;
                // Said once: the checkpoint's segment among them is then only created again.
                // (At most 65,536 numbers: `number` comes from the close record, whose CRC
                // anyone can recompute; a segment said twice is harmless, a loop of 2^64 not.)
                gone.extend((newest.map_or(1, |n| n.saturating_add(1))..=number).take(1 << 16));
                actions.push(RepairAction::SegmentLost {
                    file: path,
                    found_bytes: None,
                    synced_bytes: mark.map(|m| m.len),
                    first_lsn: mark.map(|m| m.first_lsn),
                    log_continues_at: 0,
                    reason,
                });
                return Ok(actions);
            }
            return Err(Error::corrupt(&path, offset, format!("{reason}; repair cannot salvage this")));
        };
        // Unless the repair removed it itself (what it held is listed), or said already: its
        // writes are lost — those the close record counts, or (no record names it, as when
        // the whole log directory went) any there were.
        // The close record is a lower bound (a later session may have appended and crashed),
        // so a record of the header alone proves nothing: only the next segment starting at
        // the checkpoint's LSN shows that this one held no write the checkpoint lacks (from
        // the review of the repair change).
        let header_only = crate::log::SEGMENT_HEADER_LEN as u64;
        let held_nothing =
            segment_first_lsn(fs, &log_dir, number.saturating_add(1), &manifest.db_id) == Some(record.lsn);
        if gone.insert(number) && !held_nothing {
            actions.push(RepairAction::SegmentLost {
                file: path.clone(),
                found_bytes: None,
                synced_bytes: mark.map(|m| m.len).filter(|&len| len > header_only),
                first_lsn: Some(mark.map_or(record.lsn, |m| m.first_lsn)),
                log_continues_at: 0,
                reason: reason.to_owned(),
            });
        }
        forget_synced()?;
        let header = SegmentHeader { number, first_lsn: record.lsn, db_id: manifest.db_id };
        let mut dropped = new_dropped();
        actions.extend(remove_segments_from(
            fs,
            &log_dir,
            number + 1,
            "follows a missing segment",
            &mut dropped,
            &manifest.db_id,
        )?);
        actions.extend(dropped.actions());
        write_atomic(fs, &log_dir, &segment_file_name(&path), &header.encode())?;
        actions.push(RepairAction::SegmentCreated { file: path, first_lsn: record.lsn });
        return Ok(actions);
    }
    // Longer than any segment can be (a sparse or zero-filled tail): cut to the limit first,
    // so it can be read; the next open cuts what is left after the last whole frame.
    let len = fs.open_read(&path)?.len();
    if len > crate::log::MAX_SEGMENT_LEN {
        forget_synced()?;
        let bytes_dropped = cut(fs, &path, crate::log::MAX_SEGMENT_LEN)?;
        let reason = "longer than a segment can be".to_owned();
        // (No writer goes past the limit: nothing there was acknowledged.)
        actions.push(RepairAction::LogCut {
            file: path,
            offset: crate::log::MAX_SEGMENT_LEN,
            bytes_dropped,
            reason,
            acknowledged: false,
        });
        return Ok(actions);
    }
    let bytes = crate::log::read_segment(fs, &path)?;
    let parsed = SegmentHeader::parse(&bytes, &path, number, &manifest.db_id);
    if let Err(e) = &parsed {
        // A header whose checksum holds but names another database is not damage to
        // re-stamp: taking the file in replaced this database's records with another's
        // (from the durability review).
        // Nor is an intact header naming a version above this build's. Every version keeps
        // the header's CRC at 44 over bytes 0..44 (FORMAT.md §4.1), so a version field above
        // this build's under a failed CRC is damage: one flipped bit there made the log
        // unrepairable (from the file-validation review).
        if let Error::UnsupportedVersion { found: version, .. } = e {
            let reason = format!(
                "the header names format version {version} (this build writes {}), its checksum \
                 intact: written by a newer version; repair does not rewrite it",
                crate::log::SEGMENT_VERSION
            );
            return Err(Error::corrupt(&path, 8, reason));
        }
        if SegmentHeader::peek_db_id(&bytes).is_some_and(|id| id != manifest.db_id) {
            let why = match e {
                Error::Corrupt { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            let reason = format!(
                "{why}; its header is intact, so repair does not rewrite it: move the file out of \
                 this database's log directory, and repair again"
            );
            return Err(Error::corrupt(&path, 0, reason));
        }
    }
    if parsed.is_err() {
        // Emptied, or cut inside its header, or shorter than the close record says it was
        // synced: the bytes missing held acknowledged writes (any, for one shorter than a
        // header, when no record names it).
        let short = bytes.len() < crate::log::SEGMENT_HEADER_LEN;
        if short || mark.is_some_and(|m| m.len > bytes.len() as u64) {
            gone.insert(number);
            actions.push(RepairAction::SegmentLost {
                file: path.clone(),
                found_bytes: Some(bytes.len() as u64),
                synced_bytes: mark.map(|m| m.len),
                first_lsn: mark.map(|m| m.first_lsn),
                log_continues_at: 0,
                reason: reason.to_owned(),
            });
        }
        forget_synced()?;
        if let Some(first_lsn) = first_frame_lsn(&bytes) {
            let mut fixed = SegmentHeader { number, first_lsn, db_id: manifest.db_id }.encode();
            fixed.extend_from_slice(bytes.get(fixed.len()..).unwrap_or_default());
            write_atomic(fs, &log_dir, &segment_file_name(&path), &fixed)?;
            actions.push(RepairAction::SegmentHeaderRebuilt { file: path, reason: reason.to_owned() });
            return Ok(actions);
        }
        // Its frames (from where the header would end) are listed, as far as they read.
        let mut dropped = new_dropped();
        actions.extend(remove_segments_from(fs, &log_dir, number, reason, &mut dropped, &manifest.db_id)?);
        actions.extend(dropped.actions());
        return Ok(actions);
    }
    let first_lsn = parsed.map(|h| h.first_lsn).ok();
    // What the intact frames after the damage held, listed before they go.
    forget_synced()?;
    let mut dropped = new_dropped();
    let header_len = crate::log::SEGMENT_HEADER_LEN;
    if offset < header_len as u64 {
        // The header is sound, so the segment does not continue the log (a gap or an LSN
        // that does not follow): it and everything after it go. The first segment of a gap
        // held acknowledged writes nothing can list (the reason names the gap).
        let before = crate::log::segment_numbers(fs, &log_dir)?.into_iter().filter(|&n| n < number).max();
        if let Some(missing) = before.map(|n| n.saturating_add(1)).filter(|&n| n < number && gone.insert(n)) {
            actions.push(RepairAction::SegmentLost {
                file: segment_path(&log_dir, missing),
                found_bytes: None,
                synced_bytes: None,
                first_lsn: None,
                log_continues_at: 0,
                reason: reason.to_owned(),
            });
        }
        actions.extend(remove_segments_from(fs, &log_dir, number, reason, &mut dropped, &manifest.db_id)?);
        actions.extend(dropped.actions());
        return Ok(actions);
    }
    // Cut where the transaction holding the damaged frame starts: its frames before the
    // damage are an incomplete transaction without the rest (the next open would cut them).
    let damaged_at = usize::try_from(offset).unwrap_or(usize::MAX);
    let (start, start_lsn) = crate::log::transaction_start(&bytes, damaged_at, first_lsn.unwrap_or_default());
    dropped.damaged = Some((path.clone(), damaged_at));
    let lsn_after = segment_first_lsn(fs, &log_dir, number + 1, &manifest.db_id);
    dropped.read(&path, &bytes, start, start_lsn.filter(|_| first_lsn.is_some()), lsn_after);
    let after = "follows damage in an earlier segment";
    actions.extend(remove_segments_from(fs, &log_dir, number + 1, after, &mut dropped, &manifest.db_id)?);
    let bytes_dropped = cut(fs, &path, start as u64)?;
    let reason = if start < damaged_at {
        format!("{reason}; the transaction that frame belongs to starts at byte {start}")
    } else {
        reason.to_owned()
    };
    actions.push(RepairAction::LogCut {
        file: path,
        offset: start as u64,
        bytes_dropped,
        reason,
        acknowledged: true,
    });
    actions.extend(dropped.actions());
    Ok(actions)
}

/// Ids a repair drops operations on, by collection: upserted, deleted, erased.
type IdsByCollection = std::collections::BTreeMap<String, [std::collections::BTreeSet<String>; 3]>;

/// The operations of intact frames a repair drops, by collection (for
/// [`RepairAction::OperationsDropped`]), those of an unfinished transaction at a segment's
/// end apart ([`RepairAction::UnfinishedDropped`]), the damaged frame whose operations
/// cannot be read ([`RepairAction::DamagedFrameDropped`]), and the other bytes it could not
/// read as frames.
#[derive(Default)]
struct DroppedOps {
    by_collection: IdsByCollection,
    unfinished: Vec<(PathBuf, IdsByCollection)>,
    unread: Vec<(PathBuf, u64)>,
    /// The frames whose operations could not be read: the damaged one, and any whose
    /// checksum held but whose operations do not decode.
    lost_frames: Vec<RepairAction>,
    /// The log's newest segment and the offset from which a transaction there may be one a
    /// crash left unfinished (past the close record's synced length): a transaction without
    /// its last frame anywhere else was finished — a sealed segment ends between
    /// transactions, and a closed log's synced bytes hold whole ones — and is listed as
    /// intact operations (from the read-through review).
    unfinished_from: Option<(PathBuf, usize)>,
    /// The damaged frame: a transaction holding it may have lost its last frame to it.
    damaged: Option<(PathBuf, usize)>,
}

impl DroppedOps {
    /// The frames of `bytes` (segment `path`) from `at` (a transaction's start, whose first
    /// operation's LSN is `lsn_at` when known) on; `lsn_after`: the LSN the next segment
    /// starts at, when known. A transaction never spans segments: the operations of frames
    /// after the segment's last one that ends a transaction belong to one never finished.
    /// Bytes that fail their checks are never decoded: how many operations they held is told
    /// from the LSNs of the intact frames around them.
    fn read(&mut self, path: &Path, bytes: &[u8], at: usize, lsn_at: Option<u64>, lsn_after: Option<u64>) {
        let pieces = crate::log::frame_pieces_from(bytes, at);
        let mut pending = IdsByCollection::new();
        let mut pending_at = None;
        // The LSN of the next operation, as far as the intact frames tell.
        let mut lsn = lsn_at;
        let mut unread = 0u64;
        for (i, piece) in pieces.iter().enumerate() {
            let frame = match piece {
                crate::log::Piece::Frame(frame) => frame,
                &crate::log::Piece::Unread { at, len, one_frame } => {
                    let next_lsn = match pieces.get(i + 1) {
                        Some(crate::log::Piece::Frame(next)) => Some(next.first_lsn),
                        Some(crate::log::Piece::Unread { .. }) => None,
                        None => lsn_after,
                    };
                    let operations = lsn.zip(next_lsn).and_then(|(from, to)| to.checked_sub(from));
                    if self.damaged.as_ref().is_some_and(|(p, d)| p == path && *d == at) {
                        self.lost_frames.push(RepairAction::DamagedFrameDropped {
                            file: path.to_owned(),
                            offset: at as u64,
                            bytes: len as u64,
                            whole_frame: one_frame,
                            operations,
                            first_lsn: operations.and(lsn),
                        });
                    } else {
                        unread += len as u64;
                    }
                    lsn = next_lsn;
                    continue;
                }
            };
            pending_at.get_or_insert(frame.at);
            lsn = frame.first_lsn.checked_add(u64::from(frame.op_count));
            match super::ops::decode_body(frame.body, frame.op_count) {
                Ok(ops) => {
                    for op in ops {
                        let (collection, id, kind) = match op {
                            super::ops::LogOp::Upsert(r) => (r.collection, r.id, 0),
                            super::ops::LogOp::Delete { collection, id } => (collection, id, 1),
                            super::ops::LogOp::Erase { collection, id, .. } => (collection, id, 2),
                            _ => continue,
                        };
                        if let Some(ids) = pending.entry(collection).or_default().get_mut(kind) {
                            ids.insert(id);
                        }
                    }
                }
                // Its checksum held, yet its operations do not decode (opening refused it
                // for that): they are lost with their transaction, unnamed.
                Err(_) => self.lost_frames.push(RepairAction::DamagedFrameDropped {
                    file: path.to_owned(),
                    offset: frame.at as u64,
                    bytes: frame.len as u64,
                    whole_frame: true,
                    operations: Some(u64::from(frame.op_count)),
                    first_lsn: Some(frame.first_lsn),
                }),
            }
            if !frame.more {
                // (A damaged frame stepped over may have ended a transaction: its operations
                // are then taken with the next one's, as finished, which they may have been.)
                self.take_finished(std::mem::take(&mut pending));
                pending_at = None;
            }
        }
        let start = pending_at.unwrap_or(usize::MAX);
        let at_the_end = self.unfinished_from.as_ref().is_some_and(|(p, from)| p == path && start >= *from);
        let lost_to_damage = self.damaged.as_ref().is_some_and(|(p, d)| p == path && *d >= start);
        if at_the_end && !lost_to_damage {
            if !pending.is_empty() {
                self.unfinished.push((path.to_owned(), pending));
            }
        } else {
            self.take_finished(pending);
        }
        if unread > 0 {
            self.unread.push((path.to_owned(), unread));
        }
    }

    /// Adds a finished transaction's operations to those listed as intact.
    fn take_finished(&mut self, ops: IdsByCollection) {
        for (collection, kinds) in ops {
            let all = self.by_collection.entry(collection).or_default();
            for (all, ids) in all.iter_mut().zip(kinds) {
                all.extend(ids);
            }
        }
    }

    fn actions(self) -> Vec<RepairAction> {
        let mut out = self.lost_frames;
        out.extend(self.by_collection.into_iter().map(|(collection, [upserted, deleted, erased])| {
            RepairAction::OperationsDropped {
                collection,
                upserted: upserted.into_iter().collect(),
                deleted: deleted.into_iter().collect(),
                erased: erased.into_iter().collect(),
            }
        }));
        for (file, by_collection) in self.unfinished {
            out.extend(by_collection.into_iter().map(|(collection, [upserted, deleted, erased])| {
                RepairAction::UnfinishedDropped {
                    file: file.clone(),
                    collection,
                    upserted: upserted.into_iter().collect(),
                    deleted: deleted.into_iter().collect(),
                    erased: erased.into_iter().collect(),
                }
            }));
        }
        out.extend(self.unread.into_iter().map(|(file, bytes)| RepairAction::UnreadDropped { file, bytes }));
        out
    }
}

/// The first LSN the intact header of segment `number` records, if it is there and intact.
fn segment_first_lsn(fs: &dyn FileSystem, log_dir: &Path, number: u64, db_id: &[u8; 16]) -> Option<u64> {
    let path = segment_path(log_dir, number);
    let file = fs.open_read(&path).ok()?;
    let mut header = vec![0u8; crate::log::SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut header, 0).ok()?;
    SegmentHeader::parse(&header, &path, number, db_id).ok().map(|h| h.first_lsn)
}

fn segment_file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned()
}

/// Removes segment `from` and every later one, newest first (so a crash midway leaves a
/// prefix of the log), after reading their frames into `dropped` (oldest first).
fn remove_segments_from(
    fs: &dyn FileSystem,
    log_dir: &Path,
    from: u64,
    reason: &str,
    dropped: &mut DroppedOps,
    db_id: &[u8; 16],
) -> Result<Vec<RepairAction>> {
    let mut numbers = crate::log::segment_numbers(fs, log_dir)?;
    numbers.retain(|&n| n >= from);
    let mut lens = Vec::with_capacity(numbers.len());
    for &n in &numbers {
        let file = segment_path(log_dir, n);
        // One longer than any segment can be is removed without listing what it held.
        match crate::log::read_segment(fs, &file) {
            Ok(bytes) => {
                let lsn_at = segment_first_lsn(fs, log_dir, n, db_id);
                let lsn_after = segment_first_lsn(fs, log_dir, n.saturating_add(1), db_id);
                dropped.read(&file, &bytes, crate::log::SEGMENT_HEADER_LEN, lsn_at, lsn_after);
                lens.push(bytes.len() as u64);
            }
            Err(Error::Corrupt { .. }) => lens.push(fs.open_read(&file)?.len()),
            Err(e) => return Err(e),
        }
    }
    let mut actions = Vec::new();
    for (&n, &bytes) in numbers.iter().zip(&lens).rev() {
        let file = segment_path(log_dir, n);
        fs.remove_file(&file)?;
        actions.push(RepairAction::SegmentRemoved { file, bytes, reason: reason.to_owned() });
    }
    fs.sync_dir(log_dir)?;
    actions.reverse();
    Ok(actions)
}

/// Truncates `file` to `offset` and syncs it; returns the bytes dropped.
fn cut(fs: &dyn FileSystem, file: &Path, offset: u64) -> Result<u64> {
    let len = fs.open_read(file)?.len();
    fs.truncate(file, offset.min(len))?;
    fs.open_append(file)?.sync()?;
    Ok(len.saturating_sub(offset))
}

/// A new manifest without a checkpoint, its database id read from the first segment
/// header (or the keystore's) that is intact.
fn rebuild_manifest(fs: &dyn FileSystem, dir: &Path, reason: &str) -> Result<Vec<RepairAction>> {
    let log_dir = dir.join(LOG_DIR);
    let path = dir.join(MANIFEST_NAME);
    if let Ok(bytes) = super::manifest::read_bytes(fs, dir) {
        // A newer manifest version is not damage: never overwrite it.
        if let Err(e @ Error::UnsupportedVersion { .. }) = Manifest::decode(&bytes, &path) {
            return Err(e);
        }
    }
    let numbers = if fs.exists(&log_dir)? { crate::log::segment_numbers(fs, &log_dir)? } else { Vec::new() };
    let db_id = numbers
        .iter()
        .find_map(|&n| {
            crate::log::read_segment(fs, &segment_path(&log_dir, n))
                .ok()
                .and_then(|b| SegmentHeader::peek_db_id(&b))
        })
        .or_else(|| {
            let file = fs.open_read(&dir.join(KEYSTORE_FILE)).ok()?;
            let bytes = crate::codec::read_framed(file.as_ref(), crate::crypto::KEYSTORE_HEADER_LEN).ok()?;
            crate::crypto::keystore_db_id(&bytes)
        })
        .ok_or_else(|| {
            Error::corrupt(
                &path,
                0,
                format!("{reason}; repair cannot rebuild it: no log segment or keystore header is intact"),
            )
        })?;
    let created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let log_floor = numbers.first().copied().filter(|&n| n > 1).unwrap_or(0);
    // What the lost manifest knew of erasures is gone: repair falls back to judging a live
    // record without its key by whether the keystore was cut (`finish`).
    let keystore = fs.exists(&dir.join(KEYSTORE_FILE))?;
    Manifest { log_floor, keystore, erased_key_ids: None, ..Manifest::new(db_id, created_unix_ms) }
        .store(fs, dir)?;
    Ok(vec![RepairAction::ManifestRebuilt { reason: reason.to_owned() }])
}

/// Copies the database files under `from` (top level, `log/`, `index/`) into `to`.
fn copy_tree(from: &dyn FileSystem, to: &MemFs, dir: &Path, depth: usize) -> Result<()> {
    to.create_dir_all(dir)?;
    for name in from.list_dir(dir)? {
        let path = dir.join(&name);
        if depth == 0 && (name == LOG_DIR || name == super::INDEX_DIR) {
            copy_tree(from, to, &path, depth + 1)?;
            continue;
        }
        // The keystore and audit files are read frame by frame, as the repair reads them: a
        // sparse file of a terabyte was read whole (from the diff review). Anything else
        // that is not a readable file (a lock file, a directory) is skipped.
        let header = if depth == 0 && name == KEYSTORE_FILE {
            Some(crate::crypto::KEYSTORE_HEADER_LEN)
        } else if crate::audit::is_audit_file(dir, &path) {
            Some(crate::audit::HEADER_LEN)
        } else {
            None
        };
        let read = match header {
            Some(header) => from.open_read(&path).and_then(|f| crate::codec::read_framed(f.as_ref(), header)),
            None => from.read(&path),
        };
        let Ok(bytes) = read else { continue };
        let mut file = to.create_new(&path)?;
        file.write_all(&bytes)?;
        file.sync()?;
    }
    Ok(())
}
