//! The keystore file `DIR/keystore`: every record's data key, wrapped under the master key.
//!
//! It is separate from the append-only log because erasure must destroy a key: the log keeps
//! ciphertext forever, the keystore forgets the key ([`Keystore::remove_keys`] rewrites the
//! file without it), and the ciphertext becomes unreadable.
//!
//! **Durability protocol.** [`Keystore::add_keys`] appends one frame without syncing; the
//! caller must [`Keystore::sync`] it *before* committing the log records that use the keys.
//! A crash can therefore tear only a frame whose keys no acknowledged record uses, and
//! [`Keystore::open`] drops such a torn final frame (one that runs past the end of the file
//! with no whole frame inside the remaining bytes). Every other damage is an error.
//!
//! Erasure caveat: a rewrite replaces the file atomically, but the old file's blocks are
//! freed, not overwritten; on storage that keeps old blocks, erasure is as strong as the
//! file system's reuse of freed blocks.

mod format;

pub(crate) use format::{HEADER_LEN, MAGIC};
mod wrap;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::format::{decode_batch, is_torn_tail, salvage_batch, Header, WRAPPED_LEN};
use self::wrap::Kek;
use super::derive::{key_check_matches, key_check_value};
use super::envelope::DataKey;
use super::kdf::KdfParams;
use super::key::MasterKey;
use crate::codec::{read_frame, FrameRead};
use crate::error::{Error, Result};
use crate::io::{write_atomic, FileSystem, WritableFile};

/// Name of the keystore file inside the database directory.
pub const KEYSTORE_FILE: &str = "keystore";

/// Target payload size of frames written by a whole-file rewrite.
const REWRITE_FRAME_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Slot {
    key_id: u64,
    wrapped: [u8; WRAPPED_LEN],
}

/// One collection's keys by record id. An index map keeps the 80-byte slots in a dense
/// vector and only indexes in its hash table (a hash map's buckets, at most 7/8 full and
/// doubling, held 2–4 slot sizes per key: ≈ 200 MB for a million keys instead of ≈ 120 MB).
type RecordSlots = indexmap::IndexMap<Box<str>, Slot, ahash::RandomState>;
/// Wrapped keys by collection, then record id (collection names stored once).
type Slots = HashMap<Box<str>, RecordSlots, ahash::RandomState>;

/// The open keystore: wrapped data keys in memory, unwrapped on demand.
///
/// Opened with a master key it is *unlocked* and can issue and unwrap keys; opened without
/// one it can still answer [`Keystore::contains`] / [`Keystore::key_id`] and erase keys.
///
/// ```
/// use std::sync::Arc;
/// use geocrm::crypto::{KdfParams, Keystore, MasterKey};
/// use geocrm::io::RealFs;
/// let dir = tempfile::tempdir()?;
/// let master = MasterKey::from_bytes([7; 32]);
/// let mut ks = Keystore::create(Arc::new(RealFs), dir.path(), [1; 16], &master, KdfParams::new_random())?;
/// let issued = ks.add_keys(&[("customers", "c-1")])?;
/// ks.sync()?;
/// let (key_id, _data_key) = ks.data_key("customers", "c-1")?.expect("present");
/// assert_eq!(key_id, issued[0].0);
/// let reopened = Keystore::open(Arc::new(RealFs), dir.path(), [1; 16], None)?;
/// assert!(reopened.contains("customers", "c-1"));
/// assert!(reopened.data_key("customers", "c-1").is_err()); // MissingKey
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Keystore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    path: PathBuf,
    header: Header,
    kek: Option<Kek>,
    slots: Slots,
    len: usize,
    /// Append handle; behind a lock so `sync` can run while readers hold `&Keystore`.
    appender: parking_lot::Mutex<Option<Box<dyn WritableFile>>>,
    /// The file's length when the append handle was opened or last synced: what a failed
    /// append or sync cuts the file back to.
    synced_len: parking_lot::Mutex<Option<u64>>,
    poisoned: parking_lot::Mutex<Option<String>>,
    /// Bytes of an invalid final frame left out at open (0 normally).
    dropped_tail: u64,
    /// Where that frame starts; the file is cut there by [`Keystore::cut_torn_tail`], not by
    /// `open`, so an open that then fails leaves the file as it found it.
    torn_at: Option<u64>,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("path", &self.path)
            .field("keys", &self.len)
            .field("unlocked", &self.kek.is_some())
            .field("poisoned", &self.poisoned.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// Creates `dir/keystore` for a new database, published atomically. The keystore is
    /// unlocked with `master`; `kdf` is stored for [`super::Passphrase`] providers.
    ///
    /// # Errors
    /// [`Error::Io`] when the file already exists (it is never overwritten) or cannot be
    /// written.
    pub fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        master: &MasterKey,
        kdf: KdfParams,
    ) -> Result<Keystore> {
        let path = dir.join(KEYSTORE_FILE);
        if fs.exists(&path)? {
            let exists = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "keystore already exists");
            return Err(Error::io("create keystore", path, exists));
        }
        let header = Header { db_id, next_key_id: 1, kdf, key_check: key_check_value(master, &db_id) };
        write_atomic(&*fs, dir, KEYSTORE_FILE, &header.encode())?;
        Ok(Keystore {
            fs,
            dir: dir.to_owned(),
            path,
            header,
            kek: Some(Kek::derive(master, &db_id)),
            slots: Slots::default(),
            len: 0,
            appender: parking_lot::Mutex::new(None),
            synced_len: parking_lot::Mutex::new(None),
            poisoned: parking_lot::Mutex::new(None),
            dropped_tail: 0,
            torn_at: None,
        })
    }

    /// Re-reads the file and checks its header and every frame (checksums, entries) without
    /// changing anything; a torn final frame is not a problem (open drops it).
    ///
    /// # Errors
    /// [`Error::Corrupt`] with the offset of the first bad structure; [`Error::Io`].
    pub fn verify(&self) -> Result<()> {
        let bytes = crate::codec::read_framed(self.fs.open_read(&self.path)?.as_ref(), HEADER_LEN)?;
        let header = Header::decode(&bytes, &self.path)?;
        if header.db_id != self.header.db_id {
            return Err(Error::corrupt(
                &self.path,
                10,
                "keystore belongs to another database (db_id mismatch)",
            ));
        }
        let mut at = HEADER_LEN;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            match read_frame(rest) {
                FrameRead::Valid { payload, frame_len } => {
                    format::decode_batch(payload).map_err(|(offset, reason)| {
                        Error::corrupt(&self.path, (at + offset) as u64, reason)
                    })?;
                    at += frame_len;
                }
                _ if is_torn_tail(rest) => break,
                other => {
                    return Err(Error::corrupt(
                        &self.path,
                        at as u64,
                        format!("bad frame: {}", other.problem()),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Opens and validates `dir/keystore`. With `master` it checks the key and unlocks.
    /// A torn final frame (cut short by a crash during an unsynced append) is dropped; the
    /// file is rewritten without it by [`Keystore::cut_torn_tail`] (or the next append), not by
    /// `open`. Call this only while holding the database's write lock.
    ///
    /// # Errors
    /// [`Error::WrongKey`] when `master` is not this database's key;
    /// [`Error::UnsupportedVersion`]; [`Error::Corrupt`] with the offset of a bad header,
    /// frame or entry, or when the file belongs to another `db_id`; [`Error::Io`].
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        db_id: [u8; 16],
        master: Option<&MasterKey>,
    ) -> Result<Keystore> {
        let path = dir.join(KEYSTORE_FILE);
        let bytes = crate::codec::read_framed(fs.open_read(&path)?.as_ref(), HEADER_LEN)?;
        let header = Header::decode(&bytes, &path)?;
        check_db_id(&header, db_id, &path)?;
        let mut ks = Keystore {
            fs,
            dir: dir.to_owned(),
            path,
            header,
            kek: None,
            slots: Slots::default(),
            len: 0,
            appender: parking_lot::Mutex::new(None),
            synced_len: parking_lot::Mutex::new(None),
            poisoned: parking_lot::Mutex::new(None),
            dropped_tail: 0,
            torn_at: None,
        };
        if let Some(master) = master {
            ks.unlock(master)?;
        }
        let mut at = HEADER_LEN;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            match read_frame(rest) {
                FrameRead::Valid { payload, frame_len } => {
                    ks.load_batch(payload, at)?;
                    at += frame_len;
                }
                FrameRead::Truncated | FrameRead::BadLength(_) | FrameRead::BadChecksum
                    if is_torn_tail(rest) =>
                {
                    // An invalid frame with no valid frame after it: an append that never
                    // completed (keys are synced one frame at a time, before any log
                    // record uses them). The database cross-checks that every key its log
                    // references survived, so a dropped frame that held acknowledged keys
                    // is still reported — and the file is cut only before the next append or
                    // by `repair` (`cut_torn_tail`), so `repair` still sees the damage.
                    ks.torn_at = Some(at as u64);
                    ks.dropped_tail = rest.len() as u64;
                    // Its keys' ids are not counted above, yet records may use them (damage
                    // rather than a torn append): never issue them again — an erasure of a
                    // new record under a reused id would mark the old one as erased.
                    ks.header.next_key_id = ks.header.next_key_id.saturating_add(ks.dropped_key_ids());
                    break;
                }
                FrameRead::Truncated => {
                    let reason =
                        "frame runs past the end of the file but valid frames follow (damaged length)";
                    return Err(Error::corrupt(&ks.path, at as u64, reason));
                }
                FrameRead::BadLength(n) => {
                    return Err(Error::corrupt(&ks.path, at as u64, format!("frame declares {n} bytes")))
                }
                FrameRead::BadChecksum => {
                    return Err(Error::corrupt(&ks.path, at as u64, "frame checksum mismatch"))
                }
            }
        }
        Ok(ks)
    }

    /// Checks the master key `provider` gives against the header of `dir/keystore`, reading
    /// the header only: for an open that reads the keys when first needed, so that a wrong
    /// key is still refused at once.
    ///
    /// # Errors
    /// As [`Keystore::open`] for the header, and [`Error::WrongKey`].
    pub(crate) fn check_master_key(
        fs: &dyn FileSystem,
        dir: &Path,
        db_id: [u8; 16],
        provider: &dyn super::KeyProvider,
    ) -> Result<MasterKey> {
        let path = dir.join(KEYSTORE_FILE);
        let file = fs.open_read(&path)?;
        // A shorter file is read whole, so that decoding names the cut.
        let mut bytes = vec![0u8; HEADER_LEN.min(usize::try_from(file.len()).unwrap_or(HEADER_LEN))];
        file.read_exact_at(&mut bytes, 0)?;
        let header = Header::decode(&bytes, &path)?;
        check_db_id(&header, db_id, &path)?;
        let master = provider.master_key(&header.kdf)?;
        if !key_check_matches(&master, &header.db_id, &header.key_check) {
            return Err(Error::WrongKey);
        }
        Ok(master)
    }

    fn load_batch(&mut self, payload: &[u8], frame_at: usize) -> Result<()> {
        let payload_at = (frame_at + crate::codec::FRAME_HEADER_LEN) as u64;
        let entries = decode_batch(payload)
            .map_err(|(off, reason)| Error::corrupt(&self.path, payload_at + off as u64, reason))?;
        for e in entries {
            let Some(next) = e.key_id.checked_add(1) else {
                return Err(Error::corrupt(&self.path, payload_at, "key id overflow"));
            };
            if !insert(
                &mut self.slots,
                e.collection,
                e.record_id,
                Slot { key_id: e.key_id, wrapped: *e.wrapped },
            ) {
                let reason = format!("two keys for record {:?} in {:?}", e.record_id, e.collection);
                return Err(Error::corrupt(&self.path, payload_at, reason));
            }
            self.len += 1;
            self.header.next_key_id = self.header.next_key_id.max(next);
        }
        Ok(())
    }

    /// Issues no key id below `id` from now on (ids the database knows were used, such as
    /// the ones erasures destroyed, even if this file — an older copy — never held them).
    pub(crate) fn issue_key_ids_from(&mut self, id: u64) {
        // A dropped frame's ids may start at `id` (they were issued above it): keep its
        // allowance above `id` too.
        self.header.next_key_id = self.header.next_key_id.max(id.saturating_add(self.dropped_key_ids()));
    }

    /// Makes key id `id` one that is never issued again, durably: when the next key id is not
    /// above it yet, it is raised past it and the file is rewritten whole, so that the header
    /// carries the raised value (FORMAT.md §8.3) — or, while a final frame is left out, the
    /// rewrite that drops it does. `repair` calls it for the key ids that live records name
    /// but the keystore does not hold, as in an older copy of the file: issued again, a new
    /// record's key would stand under an id those records' log records name.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Poisoned`] after an earlier failed write (a failed rewrite
    /// poisons the keystore too).
    pub(crate) fn retire_key_id(&mut self, id: u64) -> Result<()> {
        if id < self.header.next_key_id {
            return Ok(());
        }
        self.issue_key_ids_from(id.saturating_add(1));
        if self.torn_at.is_some() {
            // The rewrite that drops the left-out final frame carries it — before any append,
            // or at the end of `repair` — and the frame must stay until then (a repair stopped
            // before its end draws the same conclusions again: from the review).
            return Ok(());
        }
        self.rewrite_whole()
    }

    /// The most key ids a left-out final frame can have held (one entry per `ENTRY_FIXED`
    /// bytes at most); 0 when none was left out.
    fn dropped_key_ids(&self) -> u64 {
        if self.dropped_tail > 0 {
            self.dropped_tail / format::ENTRY_FIXED as u64 + 1
        } else {
            0
        }
    }

    /// Checks `master` against the header's key-check value and unlocks the keystore.
    ///
    /// # Errors
    /// [`Error::WrongKey`].
    pub fn unlock(&mut self, master: &MasterKey) -> Result<()> {
        if !key_check_matches(master, &self.header.db_id, &self.header.key_check) {
            return Err(Error::WrongKey);
        }
        self.kek = Some(Kek::derive(master, &self.header.db_id));
        Ok(())
    }

    /// Whether a verified master key is loaded.
    #[must_use]
    pub fn is_unlocked(&self) -> bool {
        self.kek.is_some()
    }

    /// The passphrase KDF parameters stored in the header.
    #[must_use]
    pub fn kdf_params(&self) -> &KdfParams {
        &self.header.kdf
    }

    /// Bytes of a torn final frame that [`Keystore::open`] dropped (0 normally).
    #[must_use]
    pub fn dropped_tail_bytes(&self) -> u64 {
        self.dropped_tail
    }

    /// Where the dropped final frame starts in the file (the valid length), if one was dropped.
    #[must_use]
    pub fn dropped_tail_at(&self) -> Option<u64> {
        self.torn_at
    }

    /// Takes back the keys of the left-out final frame that are still whole: each entry
    /// that can be read (up to the first one its damage cut short; one whose strings are not
    /// UTF-8 is skipped) and whose wrapped key
    /// authenticates under this database's key-encryption key for its collection, record and
    /// key id — so a key is never taken back wrong — and for which `keep` (given collection,
    /// record id and key id) says yes (`repair`: a live record uses it, and no erasure listed
    /// it). They join the keys in memory; the next whole rewrite ([`Keystore::cut_torn_tail`])
    /// writes them out. Returns how many
    /// were taken back and how many entries could be read. One flipped bit in a frame lost
    /// every key in it before (a whole import's: from a hands-on review).
    ///
    /// # Errors
    /// [`Error::MissingKey`] when the keystore is locked; [`Error::Io`].
    pub(crate) fn salvage_dropped_tail(
        &mut self,
        keep: impl Fn(&str, &str, u64) -> bool,
    ) -> Result<(usize, usize)> {
        let Some(at) = self.torn_at else { return Ok((0, 0)) };
        let kek = self.kek.as_ref().ok_or(Error::MissingKey)?;
        // At most one frame's bytes: a longer tail is no frame (or was never read).
        let max = crate::codec::FRAME_HEADER_LEN as u64 + u64::from(crate::codec::MAX_FRAME_PAYLOAD);
        let file = self.fs.open_read(&self.path)?;
        let len = file.len().saturating_sub(at).min(self.dropped_tail).min(max);
        let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut bytes, at)?;
        // The frame's payload as far as its declared length and the file allow.
        let declared = crate::codec::read4(&bytes, 0).map_or(0, u32::from_le_bytes) as usize;
        let payload = bytes.get(crate::codec::FRAME_HEADER_LEN..).unwrap_or_default();
        let payload = payload.get(..declared.min(payload.len())).unwrap_or(payload);
        let entries = salvage_batch(payload);
        let mut taken = 0;
        for e in &entries {
            if !keep(e.collection, e.record_id, e.key_id) || self.slot(e.collection, e.record_id).is_some() {
                continue;
            }
            if let Some(dk) = kek.unwrap(e.collection, e.record_id, e.key_id, e.wrapped) {
                drop(dk);
                let slot = Slot { key_id: e.key_id, wrapped: *e.wrapped };
                if insert(&mut self.slots, e.collection, e.record_id, slot) {
                    self.len += 1;
                    self.header.next_key_id = self.header.next_key_id.max(e.key_id.saturating_add(1));
                    taken += 1;
                }
            }
        }
        Ok((taken, entries.len()))
    }

    /// Drops the left-out final frame from the file (nothing when none was, or it was
    /// dropped already) by an atomic whole rewrite whose header carries the next key id
    /// raised past the frame's ids. Appends do it first; `repair` calls it last. Opening
    /// never does, so the evidence of a damaged final frame survives until keys are
    /// appended again.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Poisoned`] after an earlier failed write (a failed rewrite
    /// poisons the keystore too).
    pub fn cut_torn_tail(&mut self) -> Result<()> {
        if self.torn_at.is_some() {
            // Rewritten whole (atomically), not truncated: the header must carry the next
            // key id raised past the dropped frame's ids, or a later open — the frame gone —
            // would issue them again while records may still use them.
            self.rewrite_whole()?;
        }
        Ok(())
    }

    /// Whether the record has a key.
    #[must_use]
    pub fn contains(&self, collection: &str, id: &str) -> bool {
        self.slot(collection, id).is_some()
    }

    /// The record's key id, if it has a key.
    #[must_use]
    pub fn key_id(&self, collection: &str, id: &str) -> Option<u64> {
        self.slot(collection, id).map(|s| s.key_id)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room in the collection's key map (tests check that updates do not grow it).
    #[cfg(test)]
    pub(crate) fn capacity(&self, collection: &str) -> usize {
        self.slots.get(collection).map_or(0, RecordSlots::capacity)
    }

    fn slot(&self, collection: &str, id: &str) -> Option<&Slot> {
        self.slots.get(collection)?.get(id)
    }

    fn kek(&self) -> Result<&Kek> {
        self.kek.as_ref().ok_or(Error::MissingKey)
    }

    fn unwrap_slot(&self, kek: &Kek, collection: &str, id: &str, slot: &Slot) -> Result<DataKey> {
        kek.unwrap(collection, id, slot.key_id, &slot.wrapped).ok_or_else(|| {
            let reason = format!(
                "wrapped key {} of record {id:?} in {collection:?} fails authentication",
                slot.key_id
            );
            Error::corrupt(&self.path, 0, reason)
        })
    }

    /// Unwraps the record's data key: `Ok(None)` when it has none (never had, or erased).
    ///
    /// # Errors
    /// [`Error::MissingKey`] when opened without a key; [`Error::Corrupt`] when the wrapped
    /// key fails authentication.
    pub fn data_key(&self, collection: &str, id: &str) -> Result<Option<(u64, DataKey)>> {
        let kek = self.kek()?;
        let Some(slot) = self.slot(collection, id) else { return Ok(None) };
        Ok(Some((slot.key_id, self.unwrap_slot(kek, collection, id, slot)?)))
    }
}

/// Inserts unless present; returns whether it was inserted.
fn insert(slots: &mut Slots, collection: &str, id: &str, slot: Slot) -> bool {
    let records = match slots.get_mut(collection) {
        Some(records) => records,
        None => slots.entry(collection.into()).or_default(),
    };
    if records.contains_key(id) {
        return false;
    }
    records.insert(id.into(), slot);
    true
}

/// [`Error::Corrupt`] unless the keystore is database `db_id`'s.
fn check_db_id(header: &Header, db_id: [u8; 16], path: &Path) -> Result<()> {
    if header.db_id == db_id {
        Ok(())
    } else {
        Err(Error::corrupt(path, 10, "keystore belongs to another database (db_id mismatch)"))
    }
}

/// The database id in a keystore header that is intact (magic, version, checksum):
/// `repair` uses it to rebuild a lost manifest.
pub(crate) fn peek_db_id(bytes: &[u8]) -> Option<[u8; 16]> {
    Header::decode(bytes, Path::new(KEYSTORE_FILE)).ok().map(|h| h.db_id)
}

/// Cuts `dir/keystore` at the damage at `at` (repair): the bytes before it are published
/// atomically under a header whose next key id is raised past every id the cut can have
/// dropped — the largest id of the valid frames before `at`, plus one per [`format::ENTRY_FIXED`]
/// bytes from their end to the end of the file, plus one — so that none of those ids is issued
/// again (FORMAT.md §8.3), whether a live record, a deleted one or only an old log record
/// names it. A truncation kept the header's next key id, which appends never update, and the
/// ids came back (from the review of the twenty-sixth part). `floor` is a next key id the
/// database knows of beyond the file (past the ids the MANIFEST lists as erased: keys were
/// issued above it). A file whose header does not decode, or over 1 GiB, is truncated as
/// before. Returns the bytes dropped.
///
/// # Errors
/// [`Error::Io`].
pub(crate) fn cut_at_damage(fs: &dyn FileSystem, dir: &Path, at: u64, floor: u64) -> Result<u64> {
    let path = dir.join(KEYSTORE_FILE);
    let file = fs.open_read(&path)?;
    let len = file.len();
    let at = at.min(len);
    let mut bytes = Vec::new();
    if len <= MAX_SPLICE_BYTES {
        bytes = vec![0u8; usize::try_from(at).unwrap_or(0)];
        file.read_exact_at(&mut bytes, 0)?;
    }
    drop(file);
    let Some(mut header) = Header::decode(&bytes, &path).ok().filter(|_| len <= MAX_SPLICE_BYTES) else {
        fs.truncate(&path, at)?;
        fs.open_append(&path)?.sync()?;
        return Ok(len - at);
    };
    // The valid frames before the damage: their largest key id, and where they end.
    let (mut p, mut next) = (HEADER_LEN, header.next_key_id.max(floor));
    while let Some(FrameRead::Valid { frame_len, payload }) = bytes.get(p..).map(read_frame) {
        for e in decode_batch(payload).unwrap_or_default() {
            next = next.max(e.key_id.saturating_add(1));
        }
        p += frame_len;
    }
    let after_valid = len.saturating_sub(p as u64);
    header.next_key_id = next.saturating_add(after_valid / format::ENTRY_FIXED as u64 + 1);
    if let Some(h) = bytes.get_mut(..HEADER_LEN) {
        h.copy_from_slice(&header.encode());
    }
    write_atomic(fs, dir, KEYSTORE_FILE, &bytes)?;
    Ok(len - at)
}

/// Largest keystore [`remove_damaged_frame`] reads whole (a larger one is cut instead).
const MAX_SPLICE_BYTES: u64 = 1 << 30;

/// Removes the damaged frame at `at` of `dir/keystore` and keeps every frame after it,
/// rewriting the file atomically; returns the bytes removed. Only when `at` is where a frame
/// starts (walking the valid frames from the header), the payload its length field gives
/// has the shape of a whole batch (the damage is in an entry's bytes — key id, record id,
/// wrapped key — or the checksum, not in a length) and is followed by a valid frame, and
/// the file is at most 1 GiB; otherwise `None`, and nothing changed (the caller cuts the
/// file at `at`, as before). The frame's keys are lost — its
/// entries cannot be told from a record deleted or erased since without the database, which
/// cannot open yet — but the later frames' are not: a cut at the frame lost them all (from a
/// hands-on review).
///
/// # Errors
/// [`Error::Io`].
pub(crate) fn remove_damaged_frame(fs: &dyn FileSystem, dir: &Path, at: u64) -> Result<Option<u64>> {
    let path = dir.join(KEYSTORE_FILE);
    let file = fs.open_read(&path)?;
    let len = file.len();
    if len > MAX_SPLICE_BYTES || at < HEADER_LEN as u64 || at >= len {
        return Ok(None);
    }
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact_at(&mut bytes, 0)?;
    if Header::decode(&bytes, &path).is_err() {
        return Ok(None);
    }
    let at = usize::try_from(at).unwrap_or(usize::MAX);
    // `at` must be a frame's start: damage inside a frame whose checksum holds (a bad entry)
    // is reported at its offset in the payload.
    if !crate::codec::frames_reach(&bytes, HEADER_LEN, at) {
        return Ok(None);
    }
    let declared = crate::codec::read4(&bytes, at).map_or(0, u32::from_le_bytes) as usize;
    let payload_at = at.saturating_add(crate::codec::FRAME_HEADER_LEN);
    let next = payload_at.saturating_add(declared);
    // The length is trusted only when the payload it gives is a whole batch — its count of
    // entries ending exactly there — and a valid frame follows: a flipped length bit that
    // lands on a later frame would otherwise drop the intact frames in between.
    let whole = bytes.get(payload_at..next).is_some_and(format::is_whole_batch);
    let next_is_frame =
        bytes.get(next..).is_some_and(|rest| matches!(read_frame(rest), FrameRead::Valid { .. }));
    let (true, true, Some(before), Some(after)) = (whole, next_is_frame, bytes.get(..at), bytes.get(next..))
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(before.len() + after.len());
    out.extend_from_slice(before);
    out.extend_from_slice(after);
    write_atomic(fs, dir, KEYSTORE_FILE, &out)?;
    Ok(Some((next - at) as u64))
}
