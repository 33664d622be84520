//! The keystore's writes: appending new keys, syncing, and atomic whole-file rewrites for
//! erasure and master-key rotation. After any failed write the keystore is poisoned.

use std::collections::{HashMap, HashSet};

use super::format::{encode_batch, entry_len, Entry, Header, WRAPPED_LEN};
use super::wrap::Kek;
use super::{Keystore, Slot, Slots, KEYSTORE_FILE, REWRITE_FRAME_BYTES};
use crate::codec::{encode_frame, MAX_FRAME_PAYLOAD};
use crate::crypto::derive::{key_check_matches, key_check_value};
use crate::crypto::envelope::DataKey;
use crate::crypto::kdf::KdfParams;
use crate::crypto::key::MasterKey;
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// What `add_keys` does for one entry.
enum Planned {
    /// The record has this key already.
    Existing(Slot),
    /// The record gets new key number n of the batch.
    Fresh(usize),
}

/// Batches with at least this many new keys generate and wrap them on every core.
const PARALLEL_WRAP_MIN: usize = 4096;

/// Generates a data key for each `(entry index, key id)` and wraps it, in order.
fn generate_and_wrap(
    kek: &Kek,
    entries: &[(&str, &str)],
    fresh: &[(usize, u64)],
) -> Vec<(u64, Option<DataKey>, [u8; WRAPPED_LEN])> {
    let one = |&(i, key_id): &(usize, u64)| {
        let (collection, id) = entries.get(i).copied().unwrap_or_default();
        let dk = DataKey::generate();
        let wrapped = kek.wrap(collection, id, key_id, &dk);
        (key_id, Some(dk), wrapped)
    };
    crate::parallel::map(fresh, PARALLEL_WRAP_MIN, one)
}

impl Keystore {
    fn check_writable(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(reason) => Err(Error::Poisoned { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// After a failed write: refuses every later one, and cuts frames appended since the
    /// last sync (best effort). They were never acknowledged, and after a failed fsync they
    /// may never reach the disk while the page cache still shows them: left in the file, a
    /// reopen would load them and append after them, and a power loss would then take the
    /// keys of acknowledged records with the lost frame.
    fn poison<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            *self.poisoned.lock() = Some(format!("keystore write failed: {e}"));
            let appender = self.appender.lock().take();
            let synced = self.synced_len.lock().take();
            if let (Some(appender), Some(synced)) = (appender, synced) {
                if appender.len() > synced {
                    let _ = self.fs.truncate(&self.path, synced);
                }
            }
        }
        result
    }

    /// Makes room for `additional` more keys of `collection`, so a large batch issued in
    /// several [`Keystore::add_keys`] calls grows the collection's map once (each growth
    /// moves every entry into a new table).
    pub(crate) fn reserve(&mut self, collection: &str, additional: usize) {
        match self.slots.get_mut(collection) {
            Some(records) => records.reserve(additional),
            None => {
                let mut records = super::RecordSlots::default();
                records.reserve(additional);
                self.slots.insert(collection.into(), records);
            }
        }
    }

    /// Issues data keys for records, in order: a record that already has a key gets its
    /// existing key back; the others get fresh random keys with new, increasing key ids,
    /// appended to the file as **one** frame. Not synced: call [`Keystore::sync`] before
    /// committing anything that uses the keys.
    ///
    /// # Errors
    /// [`Error::MissingKey`] when locked; [`Error::Poisoned`] after an earlier failed write;
    /// [`Error::InvalidArgument`] for names over 4 GiB or a batch over the 64 MiB frame
    /// limit; [`Error::Io`] (which poisons the keystore).
    pub fn add_keys(&mut self, entries: &[(&str, &str)]) -> Result<Vec<(u64, DataKey)>> {
        self.check_writable()?;
        let kek = self.kek()?;
        // Pass 1 (serial, no cryptography): which entries have a key, which need a new one
        // (an id repeated within the batch shares the first one's), and the new key ids.
        let mut plan: Vec<Planned> = Vec::with_capacity(entries.len());
        let mut fresh_index: HashMap<(&str, &str), usize, ahash::RandomState> =
            HashMap::with_capacity_and_hasher(entries.len(), ahash::RandomState::new());
        let mut fresh_list: Vec<(usize, u64)> = Vec::with_capacity(entries.len());
        let mut payload_len = 4usize;
        let mut next = self.header.next_key_id;
        // Batches are usually of one collection: look its map up once, not per entry.
        let mut last: Option<(&str, Option<&super::RecordSlots>)> = None;
        for (i, &(collection, id)) in entries.iter().enumerate() {
            if u32::try_from(collection.len().max(id.len())).is_err() {
                return Err(Error::invalid_argument("entries", "collection name or record id over 4 GiB"));
            }
            let records = match last {
                Some((name, records)) if name == collection => records,
                _ => {
                    let records = self.slots.get(collection);
                    last = Some((collection, records));
                    records
                }
            };
            if let Some(slot) = records.and_then(|r| r.get(id)) {
                plan.push(Planned::Existing(*slot));
                continue;
            }
            if let Some(&n) = fresh_index.get(&(collection, id)) {
                plan.push(Planned::Fresh(n));
                continue;
            }
            let key_id = next;
            next =
                next.checked_add(1).ok_or_else(|| Error::invalid_argument("entries", "key ids exhausted"))?;
            fresh_index.insert((collection, id), fresh_list.len());
            plan.push(Planned::Fresh(fresh_list.len()));
            fresh_list.push((i, key_id));
            payload_len += entry_len(collection, id);
        }
        drop(fresh_index);
        if payload_len > MAX_FRAME_PAYLOAD as usize {
            return Err(Error::invalid_argument("entries", "batch exceeds the 64 MiB frame limit; split it"));
        }
        // Pass 2: generate and wrap the new keys, on every core for large batches.
        let mut fresh = generate_and_wrap(kek, entries, &fresh_list);
        // A new key is moved to its last user; an id repeated in the batch gets copies.
        let mut uses = vec![0u32; fresh.len()];
        for p in &plan {
            if let Planned::Fresh(n) = p {
                if let Some(u) = uses.get_mut(*n) {
                    *u += 1;
                }
            }
        }
        let mut issued: Vec<(u64, DataKey)> = Vec::with_capacity(entries.len());
        for (p, &(collection, id)) in plan.iter().zip(entries) {
            issued.push(match p {
                Planned::Existing(slot) => (slot.key_id, self.unwrap_slot(kek, collection, id, slot)?),
                Planned::Fresh(n) => {
                    let (Some((key_id, dk, _)), Some(left)) = (fresh.get_mut(*n), uses.get_mut(*n)) else {
                        return Err(Error::MissingKey);
                    };
                    *left -= 1;
                    let dk = if *left == 0 { dk.take() } else { dk.as_ref().map(DataKey::duplicate) };
                    (*key_id, dk.ok_or(Error::MissingKey)?)
                }
            });
        }
        if fresh_list.is_empty() {
            return Ok(issued);
        }
        let mut payload = Vec::with_capacity(payload_len);
        let batch = fresh_list.iter().zip(&fresh).filter_map(|((i, _), (key_id, _, wrapped))| {
            let &(collection, record_id) = entries.get(*i)?;
            Some(Entry { key_id: *key_id, collection, record_id, wrapped })
        });
        encode_batch(batch.collect::<Vec<_>>().into_iter(), &mut payload);
        let mut frame = Vec::with_capacity(payload.len() + 8);
        encode_frame(&payload, &mut frame);
        let written = self.append(&frame);
        self.poison(written)?;
        if let Some(&(collection, _)) = entries.first() {
            // One growth instead of many rehashes of a large collection's map.
            self.slots.entry(collection.into()).or_default().reserve(fresh_list.len());
        }
        let mut current: Option<(&str, &mut super::RecordSlots)> = None;
        for ((i, _), (key_id, _, wrapped)) in fresh_list.iter().zip(fresh) {
            let Some(&(collection, id)) = entries.get(*i) else { continue };
            let records = match current {
                Some((name, records)) if name == collection => records,
                _ => self.slots.entry(collection.into()).or_default(),
            };
            // Pass 1 found no key for (collection, id) and gave repeats the same fresh key,
            // so this is a new entry.
            records.insert(id.into(), Slot { key_id, wrapped });
            current = Some((collection, records));
            self.len += 1;
        }
        self.header.next_key_id = next;
        Ok(issued)
    }

    fn append(&mut self, frame: &[u8]) -> Result<()> {
        self.cut_torn_tail()?;
        let appender = self.appender.get_mut();
        let appender = match appender {
            Some(a) => a,
            None => {
                let opened = appender.insert(self.fs.open_append(&self.path)?);
                *self.synced_len.get_mut() = Some(opened.len());
                opened
            }
        };
        appender.write_all(frame)
    }

    /// Makes appended keys durable. Must precede the log commit that uses them. Takes
    /// `&self` so readers sharing the keystore are not blocked while the fsync runs.
    ///
    /// # Errors
    /// [`Error::Poisoned`]; [`Error::Io`] (which poisons the keystore).
    pub fn sync(&self) -> Result<()> {
        self.check_writable()?;
        let synced = match &mut *self.appender.lock() {
            Some(appender) => appender.sync().map(|()| *self.synced_len.lock() = Some(appender.len())),
            None => Ok(()),
        };
        self.poison(synced)
    }

    /// The `(collection, record id)` of every key held.
    pub(crate) fn records(&self) -> impl Iterator<Item = (&str, &str)> {
        all_entries(&self.slots).map(|e| (e.collection, e.record_id))
    }

    /// Erases the keys of these records (absent ones are ignored) by atomically rewriting
    /// the whole file without them: afterwards their wrapped bytes appear nowhere in it.
    /// Works without the master key. Returns how many keys were removed.
    ///
    /// # Errors
    /// [`Error::Poisoned`]; [`Error::Io`] (which poisons the keystore; the old file, with
    /// the keys, may still be in place).
    pub fn remove_keys(&mut self, entries: &[(&str, &str)]) -> Result<usize> {
        self.check_writable()?;
        let doomed: HashSet<(&str, &str)> =
            entries.iter().copied().filter(|(c, id)| self.contains(c, id)).collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let kept = all_entries(&self.slots).filter(|e| !doomed.contains(&(e.collection, e.record_id)));
        let file = encode_file(&self.header, kept);
        let published = self.publish(&file);
        self.poison(published)?;
        for (collection, id) in &doomed {
            if let Some(records) = self.slots.get_mut(*collection) {
                records.swap_remove(*id);
                if records.is_empty() {
                    self.slots.remove(*collection);
                }
            }
        }
        self.len -= doomed.len();
        Ok(doomed.len())
    }

    /// Re-wraps every data key under `new` (with `new_kdf` stored for passphrases) and
    /// atomically rewrites the file. Afterwards `old` gets [`Error::WrongKey`] and unwraps
    /// nothing in the new file; the keystore stays unlocked with `new`.
    ///
    /// # Errors
    /// [`Error::WrongKey`] when `old` is not the current key; [`Error::Poisoned`];
    /// [`Error::Corrupt`] when a wrapped key fails authentication; [`Error::Io`] (which
    /// poisons the keystore; the file is then either wholly old or wholly new).
    pub fn rotate(&mut self, old: &MasterKey, new: &MasterKey, new_kdf: KdfParams) -> Result<()> {
        self.check_writable()?;
        let db_id = self.header.db_id;
        if !key_check_matches(old, &db_id, &self.header.key_check) {
            return Err(Error::WrongKey);
        }
        let (old_kek, new_kek) = (Kek::derive(old, &db_id), Kek::derive(new, &db_id));
        let mut slots = self.slots.clone();
        for (collection, records) in &mut slots {
            for (id, slot) in records.iter_mut() {
                let dk = self.unwrap_slot(&old_kek, collection, id, slot)?;
                slot.wrapped = new_kek.wrap(collection, id, slot.key_id, &dk);
            }
        }
        let header = Header { kdf: new_kdf, key_check: key_check_value(new, &db_id), ..self.header.clone() };
        let file = encode_file(&header, all_entries(&slots));
        let published = self.publish(&file);
        self.poison(published)?;
        self.header = header;
        self.slots = slots;
        self.kek = Some(new_kek);
        Ok(())
    }

    /// Atomically replaces the file and drops the append handle, which refers to the
    /// replaced file.
    /// Publishes the file anew from memory (header with the current next key id, every
    /// entry), dropping a left-out frame.
    pub(super) fn rewrite_whole(&mut self) -> Result<()> {
        self.check_writable()?;
        let file = encode_file(&self.header, all_entries(&self.slots));
        let published = self.publish(&file);
        self.poison(published)
    }

    fn publish(&mut self, file: &[u8]) -> Result<()> {
        *self.appender.get_mut() = None;
        *self.synced_len.get_mut() = None;
        write_atomic(&*self.fs, &self.dir, KEYSTORE_FILE, file)?;
        // The new file holds no dropped frame: nothing is left to cut (cutting at the old
        // file's offset would damage the new one).
        self.torn_at = None;
        Ok(())
    }
}

fn all_entries(slots: &Slots) -> impl Iterator<Item = Entry<'_>> {
    slots.iter().flat_map(|(collection, records)| {
        records.iter().map(move |(id, s)| Entry {
            key_id: s.key_id,
            collection,
            record_id: id,
            wrapped: &s.wrapped,
        })
    })
}

/// The whole file: `header`, then the entries in key-id order in frames of about 1 MiB.
fn encode_file<'a>(header: &Header, entries: impl Iterator<Item = Entry<'a>>) -> Vec<u8> {
    let mut all: Vec<Entry<'a>> = entries.collect();
    all.sort_unstable_by_key(|e| e.key_id);
    let mut file = header.encode();
    let mut batch: Vec<Entry<'a>> = Vec::new();
    let mut size = 4;
    for e in all {
        let len = entry_len(e.collection, e.record_id);
        if !batch.is_empty() && size + len > REWRITE_FRAME_BYTES {
            flush(&mut batch, &mut file);
            size = 4;
        }
        size += len;
        batch.push(e);
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut file);
    }
    file
}

fn flush(batch: &mut Vec<Entry<'_>>, file: &mut Vec<u8>) {
    let mut payload = Vec::new();
    encode_batch(batch.drain(..), &mut payload);
    encode_frame(&payload, file);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::io::RealFs;

    /// A new keystore in a temporary directory (cheap KDF costs; database id `[6; 16]`), with
    /// its file system and master key.
    fn new_keystore() -> (tempfile::TempDir, Arc<dyn crate::io::FileSystem>, MasterKey, Keystore) {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::from_bytes([3; 32]);
        let kdf = KdfParams::argon2id([0; 16], 64, 1, 1).unwrap();
        let fs: Arc<dyn crate::io::FileSystem> = Arc::new(RealFs);
        let ks = Keystore::create(fs.clone(), dir.path(), [6; 16], &master, kdf).unwrap();
        (dir, fs, master, ks)
    }

    #[test]
    fn reserved_room_is_invisible_and_keys_issued_after_it_survive_reopen() {
        let (dir, _, master, mut ks) = new_keystore();
        ks.reserve("empty", 10);
        ks.reserve("c", 3_000);
        assert!(ks.is_empty() && !ks.contains("empty", "a"));
        let ids: Vec<String> = (0..2_500).map(|i| format!("r{i}")).collect();
        let entries: Vec<(&str, &str)> = ids.iter().map(|id| ("c", id.as_str())).collect();
        let (first, second) = entries.split_at(1_000);
        let mut issued = ks.add_keys(first).unwrap();
        issued.extend(ks.add_keys(second).unwrap());
        ks.sync().unwrap();
        assert_eq!(ks.len(), 2_500);
        // A rewrite (erasure) with the reserved, empty collection present.
        assert_eq!(ks.remove_keys(&[("c", "r7")]).unwrap(), 1);
        let reopened = Keystore::open(Arc::new(RealFs), dir.path(), [6; 16], Some(&master)).unwrap();
        assert_eq!(reopened.len(), 2_499);
        for ((_, id), (key_id, dk)) in entries.iter().zip(&issued) {
            match reopened.data_key("c", id).unwrap() {
                Some((k, d)) => assert_eq!((k, d.bytes()), (*key_id, dk.bytes())),
                None => assert_eq!(*id, "r7"),
            }
        }
    }

    #[test]
    fn a_dropped_frames_keys_are_taken_back_only_when_they_authenticate_and_are_wanted() {
        let (dir, fs, master, mut ks) = new_keystore();
        ks.add_keys(&[("c", "first")]).unwrap();
        ks.sync().unwrap();
        let path = dir.path().join(KEYSTORE_FILE);
        let frame_at = std::fs::read(&path).unwrap().len();
        let issued = ks.add_keys(&[("c", "a"), ("c", "b"), ("c", "d")]).unwrap();
        ks.sync().unwrap();
        drop(ks);
        // The final frame's checksum flipped: dropped at open as a torn append.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[frame_at + 4] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut ks = Keystore::open(fs.clone(), dir.path(), [6; 16], None).unwrap();
        assert_eq!((ks.len(), ks.dropped_tail_bytes() > 0), (1, true));
        assert!(
            matches!(ks.salvage_dropped_tail(|_, _, _| true), Err(Error::MissingKey)),
            "locked: nothing to check"
        );
        ks.unlock(&master).unwrap();
        // b's key id is refused (an erasure listed it): a and d come back, b does not.
        let b_id = issued[1].0;
        assert_eq!(ks.salvage_dropped_tail(|_, _, id| id != b_id).unwrap(), (2, 3));
        assert!(ks.contains("c", "a") && !ks.contains("c", "b") && ks.contains("c", "d"));
        ks.cut_torn_tail().unwrap();
        drop(ks);
        let ks = Keystore::open(fs, dir.path(), [6; 16], Some(&master)).unwrap();
        assert_eq!(ks.dropped_tail_bytes(), 0);
        for (id, (key_id, dk)) in ["a", "d"].iter().zip([&issued[0], &issued[2]]) {
            let (k, d) = ks.data_key("c", id).unwrap().unwrap();
            assert_eq!((k, d.bytes()), (*key_id, dk.bytes()), "{id}");
        }
        assert!(ks.data_key("c", "b").unwrap().is_none());
        // The dropped frame's ids stay retired: the next key is past all of them.
        assert!(ks.header.next_key_id > issued[2].0);
    }

    #[test]
    fn a_dropped_frames_key_ids_are_never_issued_again_even_after_the_cut() {
        // The frame is left out at open (its ids uncounted) and cut before the next append;
        // a later open, without the frame, must still not issue its ids.
        let (dir, fs, master, mut ks) = new_keystore();
        ks.add_keys(&[("c", "a")]).unwrap();
        ks.sync().unwrap();
        let path = dir.path().join(KEYSTORE_FILE);
        let good = std::fs::read(&path).unwrap();
        let lost = ks.add_keys(&[("c", "b"), ("c", "c")]).unwrap();
        ks.sync().unwrap();
        drop(ks);
        let mut damaged = std::fs::read(&path).unwrap();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let mut ks = Keystore::open(fs.clone(), dir.path(), [6; 16], Some(&master)).unwrap();
        assert!(!ks.contains("c", "b"));
        ks.add_keys(&[("c", "d")]).unwrap(); // cuts the frame first
        ks.sync().unwrap();
        assert!(std::fs::read(&path).unwrap().len() > good.len());
        drop(ks);
        let mut ks = Keystore::open(fs, dir.path(), [6; 16], Some(&master)).unwrap();
        let fresh = ks.add_keys(&[("c", "e")]).unwrap();
        let reused: Vec<u64> = lost.iter().map(|(k, _)| *k).filter(|k| *k >= fresh[0].0).collect();
        for (k, _) in &lost {
            assert_ne!(*k, fresh[0].0, "key id {k} of the dropped frame issued again");
        }
        assert!(reused.is_empty() || fresh[0].0 > *reused.iter().max().unwrap());
    }

    #[test]
    fn a_cut_at_damage_never_lets_the_ids_it_drops_be_issued_again() {
        // Keys issued above a floor the file does not record (an open raised the next key id
        // past the MANIFEST's erased ids): with the floor, the cut's header is past them too.
        for floor in [0, 1_000] {
            let (dir, fs, master, mut ks) = new_keystore();
            ks.add_keys(&[("c", "a")]).unwrap();
            ks.sync().unwrap();
            let path = dir.path().join(KEYSTORE_FILE);
            let cut_at = std::fs::metadata(&path).unwrap().len();
            ks.issue_key_ids_from(floor);
            let mut lost = ks.add_keys(&[("c", "b"), ("c", "c")]).unwrap();
            lost.extend(ks.add_keys(&[("c", "d")]).unwrap());
            ks.sync().unwrap();
            drop(ks);
            let dropped = super::super::cut_at_damage(&*fs, dir.path(), cut_at, floor).unwrap();
            assert!(dropped > 0);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), cut_at, "floor {floor}");
            let mut ks = Keystore::open(fs, dir.path(), [6; 16], Some(&master)).unwrap();
            assert!(ks.contains("c", "a") && !ks.contains("c", "b"));
            let fresh = ks.add_keys(&[("c", "e")]).unwrap();
            let highest = lost.iter().map(|(k, _)| *k).max().unwrap();
            assert!(
                fresh[0].0 > highest,
                "floor {floor}: issued {} again (lost up to {highest})",
                fresh[0].0
            );
        }
    }

    #[test]
    fn after_rotation_the_old_kek_unwraps_nothing_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (MasterKey::from_bytes([1; 32]), MasterKey::from_bytes([2; 32]));
        let kdf = KdfParams::argon2id([0; 16], 64, 1, 1).unwrap();
        let mut ks = Keystore::create(Arc::new(RealFs), dir.path(), [5; 16], &old, kdf).unwrap();
        ks.add_keys(&[("c", "a"), ("c", "b"), ("d", "a")]).unwrap();
        ks.rotate(&old, &new, kdf).unwrap();
        let reread = Keystore::open(Arc::new(RealFs), dir.path(), [5; 16], None).unwrap();
        let (old_kek, new_kek) = (Kek::derive(&old, &[5; 16]), Kek::derive(&new, &[5; 16]));
        let entries: Vec<Entry<'_>> = all_entries(&reread.slots).collect();
        assert_eq!(entries.len(), 3);
        for e in entries {
            assert!(old_kek.unwrap(e.collection, e.record_id, e.key_id, e.wrapped).is_none());
            assert!(new_kek.unwrap(e.collection, e.record_id, e.key_id, e.wrapped).is_some());
        }
    }
}
