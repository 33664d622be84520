//! The `MANIFEST` file: the database id, the live checkpoint and the log floor, replaced
//! atomically.
//!
//! Layout: `magic b"GEOCRMMF" | version u16 LE | frame(bincode((version u16, Manifest)))`:
//! since version 5 the payload repeats the version, so the frame's checksum covers it.
//! Versions 1 (no checkpoint), 2 (no keystore flag, no erased key ids), 3 (no LSN per
//! checkpoint file) and 4 (the version outside the checksum) are still read; this build
//! writes version 5.

use std::path::Path;

use bincode::{Decode, Encode};

use crate::codec::{self, FrameRead};
use crate::error::{Error, Result};
use crate::io::{write_atomic, FileSystem};

/// File name inside the database directory.
pub(crate) const MANIFEST_NAME: &str = "MANIFEST";
const MAGIC: &[u8; 8] = b"GEOCRMMF";
/// Manifest format version written by this build.
pub(crate) const MANIFEST_VERSION: u16 = 5;
/// How far above [`MANIFEST_VERSION`] a version is still read as a newer format
/// (`UnsupportedVersion`); beyond, it is a damaged field (`Corrupt`).
const PLAUSIBLE_NEWER_VERSIONS: u16 = 12;

/// Version 1: before checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
struct ManifestV1 {
    db_id: [u8; 16],
    created_unix_ms: u64,
}

/// Version 2: before the keystore flag and the erased key ids.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
struct ManifestV2 {
    db_id: [u8; 16],
    created_unix_ms: u64,
    checkpoint: Option<CheckpointRecordV3>,
    log_floor: u64,
}

/// Version 3: version 4 with a checkpoint record whose files all have the record's LSN.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
struct ManifestV3 {
    db_id: [u8; 16],
    created_unix_ms: u64,
    checkpoint: Option<CheckpointRecordV3>,
    log_floor: u64,
    keystore: bool,
    erased_key_ids: Option<Vec<u64>>,
}

/// The checkpoint record of versions 2 and 3: (collection, file name) pairs, every file
/// written at the record's LSN.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
struct CheckpointRecordV3 {
    lsn: u64,
    segment: u64,
    created_unix_ms: u64,
    files: Vec<(String, String)>,
}

impl From<CheckpointRecordV3> for CheckpointRecord {
    fn from(v3: CheckpointRecordV3) -> Self {
        let lsn = v3.lsn;
        CheckpointRecord {
            lsn,
            segment: v3.segment,
            created_unix_ms: v3.created_unix_ms,
            files: v3
                .files
                .into_iter()
                .map(|(collection, name)| CheckpointFile { collection, name, lsn })
                .collect(),
        }
    }
}

/// What the manifest records.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct Manifest {
    /// Random id given to the database at creation; bound into every file and ciphertext.
    pub db_id: [u8; 16],
    /// Creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// The live checkpoint, if one was taken.
    pub checkpoint: Option<CheckpointRecord>,
    /// Segments below this number are not part of the database (compaction rewrote them);
    /// open deletes any left behind. 0 or 1 when nothing was compacted.
    pub log_floor: u64,
    /// Whether the database has had a keystore: if the file is missing it was lost, and
    /// open refuses (rather than create an empty one in its place).
    pub keystore: bool,
    /// Data key ids that erasures destroyed since the last compaction, sorted: recorded
    /// before the keys go, so that a live record whose key is missing tells whether it was
    /// erased (its tombstone lost with damaged log) or its key was lost with a damaged
    /// keystore. `None`: not known (a manifest of version 2 or older, until a compaction).
    pub erased_key_ids: Option<Vec<u64>>,
}

/// The live checkpoint named by the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct CheckpointRecord {
    /// Every operation below this LSN is in the checkpoint files.
    pub lsn: u64,
    /// Replay starts at this segment, which starts at `lsn`.
    pub segment: u64,
    /// When it was published, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// One file per collection, in `DIR/index/`.
    pub files: Vec<CheckpointFile>,
}

/// One collection's file of the live checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct CheckpointFile {
    /// The collection.
    pub collection: String,
    /// The file's name in `DIR/index/`.
    pub name: String,
    /// The LSN the file was written at (its header's): the record's, or — for a collection
    /// no operation touched since — an earlier checkpoint's, whose file was kept.
    pub lsn: u64,
}

/// Refuses a manifest naming a checkpoint file by anything but the names checkpoints give
/// (`{lsn:016}-{i:04}.ckpt`): opening maps the file it names, and a name with a path in it
/// (`../x`, `/etc/x`) would have it open and map — or mark damaged — a file outside the
/// database's `index/` directory.
fn check_file_names(m: &Manifest, file: &Path) -> Result<()> {
    for f in m.checkpoint.iter().flat_map(|c| &c.files) {
        if !is_checkpoint_file_name(&f.name) {
            let reason = format!("checkpoint file name {:?} is not one a checkpoint gives", f.name);
            return Err(Error::corrupt(file, 18, reason));
        }
    }
    Ok(())
}

/// Refuses a log floor above the checkpoint's replay segment: open deletes the segments
/// below the floor, and replay needs those from the checkpoint's on.
fn check_log_floor(m: &Manifest, file: &Path) -> Result<()> {
    match &m.checkpoint {
        Some(c) if m.log_floor > c.segment => Err(Error::corrupt(
            file,
            18,
            format!("log floor {} is above the checkpoint's replay segment {}", m.log_floor, c.segment),
        )),
        _ => Ok(()),
    }
}

/// Whether `name` has the shape of a checkpoint file's name: at least 16 digits, `-`, at
/// least 4 digits, `.ckpt` (no separator, no dots but the extension's).
pub(crate) fn is_checkpoint_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".ckpt") else { return false };
    let Some((lsn, position)) = stem.split_once('-') else { return false };
    let digits = |s: &str, min: usize| (min..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    digits(lsn, 16) && digits(position, 4)
}

impl Manifest {
    /// A new database's manifest.
    pub(crate) fn new(db_id: [u8; 16], created_unix_ms: u64) -> Manifest {
        Manifest {
            db_id,
            created_unix_ms,
            checkpoint: None,
            log_floor: 0,
            keystore: false,
            erased_key_ids: Some(Vec::new()),
        }
    }

    /// Adds `ids` to the erased key ids (when they are tracked); whether anything changed.
    pub(crate) fn add_erased_key_ids(&mut self, ids: &[u64]) -> bool {
        let Some(known) = self.erased_key_ids.as_mut() else { return false };
        let before = known.len();
        known.extend_from_slice(ids);
        known.sort_unstable();
        known.dedup();
        known.len() != before
    }

    /// Whether an erasure destroyed data key `key_id`: `None` when that is not tracked.
    pub(crate) fn erased_key(&self, key_id: u64) -> Option<bool> {
        self.erased_key_ids.as_ref().map(|ids| ids.binary_search(&key_id).is_ok())
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let payload =
            codec::encode(&(MANIFEST_VERSION, self)).map_err(|e| Error::invalid_argument("manifest", e))?;
        if payload.len() > codec::MAX_FRAME_PAYLOAD as usize {
            // Millions of erasures since the last compaction (8 bytes or fewer each).
            return Err(Error::invalid_argument(
                "manifest",
                "the erased key ids outgrew the 64 MiB frame: compact the database",
            ));
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
        codec::encode_frame(&payload, &mut out);
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8], file: &Path) -> Result<Manifest> {
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(Error::corrupt(file, 0, "not a geocrm manifest (bad magic)"));
        }
        let Some(version) = bytes.get(8..10).map(|v| u16::from_le_bytes([v[0], v[1]])) else {
            return Err(Error::corrupt(file, 8, "manifest is cut short before its version"));
        };
        let rest = bytes.get(10..).unwrap_or_default();
        let payload = match codec::read_frame(rest) {
            FrameRead::Valid { payload, frame_len } if frame_len == rest.len() => Some(payload),
            _ => None,
        };
        // The version field lies outside the frame's checksum (the payload repeats it since
        // version 5): a payload that decodes as another version than the field names is a
        // damaged field. Read as an older version, a version-4 payload once gave a log floor
        // that had open delete segments (from the file-validation review).
        let current = payload
            .and_then(|p| codec::decode::<(u16, Manifest)>(p).ok())
            .filter(|(v, _)| *v == MANIFEST_VERSION);
        let v4 = || payload.is_some_and(|p| codec::decode::<Manifest>(p).is_ok());
        let damaged = |as_version: u16| {
            Error::corrupt(
                file,
                8,
                format!(
                    "the manifest's version field says {version} but its checksummed payload is a \
                     version-{as_version} manifest: the version field is damaged"
                ),
            )
        };
        if version != MANIFEST_VERSION && current.is_some() {
            return Err(damaged(MANIFEST_VERSION));
        }
        // (Not for versions 1–3: a version-3 payload without a checkpoint is byte for byte a
        // version-4 one, and others can decode as both: from the diff review.)
        if version > MANIFEST_VERSION && current.is_none() && v4() {
            return Err(damaged(4));
        }
        if version == 0 {
            return Err(Error::corrupt(file, 8, "manifest format version 0 does not exist"));
        }
        // Formats gain a version at a time: a version far above this build's is damage.
        if version > MANIFEST_VERSION.saturating_add(PLAUSIBLE_NEWER_VERSIONS) {
            let reason = format!(
                "manifest format version {version} is implausible (this build reads up to \
                 {MANIFEST_VERSION}): the version field is damaged"
            );
            return Err(Error::corrupt(file, 8, reason));
        }
        if version > MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion {
                file: file.to_owned(),
                found: version,
                supported: MANIFEST_VERSION,
            });
        }
        let Some(payload) = payload else {
            return Err(match codec::read_frame(rest) {
                FrameRead::Valid { .. } => Error::corrupt(file, 10, "trailing bytes after the manifest"),
                other => Error::corrupt(file, 10, format!("manifest frame is damaged: {}", other.problem())),
            });
        };
        let decode_err = |e: String| Error::corrupt(file, 18, e);
        let m = match version {
            1 => {
                let v1: ManifestV1 = codec::decode(payload).map_err(decode_err)?;
                return Ok(Manifest { erased_key_ids: None, ..Manifest::new(v1.db_id, v1.created_unix_ms) });
            }
            2 => {
                let v2: ManifestV2 = codec::decode(payload).map_err(decode_err)?;
                let m = Manifest {
                    checkpoint: v2.checkpoint.map(CheckpointRecord::from),
                    log_floor: v2.log_floor,
                    erased_key_ids: None,
                    ..Manifest::new(v2.db_id, v2.created_unix_ms)
                };
                check_file_names(&m, file)?;
                check_log_floor(&m, file)?;
                return Ok(m);
            }
            3 => {
                let v3: ManifestV3 = codec::decode(payload).map_err(decode_err)?;
                Manifest {
                    db_id: v3.db_id,
                    created_unix_ms: v3.created_unix_ms,
                    checkpoint: v3.checkpoint.map(CheckpointRecord::from),
                    log_floor: v3.log_floor,
                    keystore: v3.keystore,
                    erased_key_ids: v3.erased_key_ids,
                }
            }
            4 => codec::decode(payload).map_err(decode_err)?,
            _ => match current {
                Some((_, m)) => m,
                None => {
                    let e = codec::decode::<(u16, Manifest)>(payload).err();
                    let why = e.unwrap_or_else(|| "the payload names another version".into());
                    return Err(Error::corrupt(file, 18, why));
                }
            },
        };
        check_file_names(&m, file)?;
        check_log_floor(&m, file)?;
        if let Some(c) = &m.checkpoint {
            if let Some(f) = c.files.iter().find(|f| f.lsn > c.lsn) {
                let reason = format!("checkpoint file {:?} is newer than the checkpoint", f.name);
                return Err(Error::corrupt(file, 18, reason));
            }
        }
        let ids = m.erased_key_ids.as_deref().unwrap_or_default();
        if ids.windows(2).any(|w| w.first() >= w.get(1)) {
            return Err(Error::corrupt(file, 18, "erased key ids not in ascending order"));
        }
        Ok(m)
    }

    pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_NAME);
        if !fs.exists(&path)? {
            return Ok(None);
        }
        Manifest::decode(&read_bytes(fs, dir)?, &path).map(Some)
    }

    pub(crate) fn store(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        write_atomic(fs, dir, MANIFEST_NAME, &self.encode()?)
    }
}

/// The longest MANIFEST there can be: one frame of at most [`codec::MAX_FRAME_PAYLOAD`] bytes and
/// its framing, with room to spare.
const MAX_MANIFEST_LEN: u64 = codec::MAX_FRAME_PAYLOAD as u64 + 4096;

/// The MANIFEST's bytes, refusing (`Corrupt`) a file longer than any MANIFEST can be before
/// reading it: a damaged or replaced file of gigabytes would be read whole.
pub(crate) fn read_bytes(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(MANIFEST_NAME);
    let len = fs.open_read(&path)?.len();
    if len > MAX_MANIFEST_LEN {
        let reason = format!("the file is {len} bytes, more than a MANIFEST can be ({MAX_MANIFEST_LEN})");
        return Err(Error::corrupt(path, MAX_MANIFEST_LEN, reason));
    }
    fs.read(&path)
}
