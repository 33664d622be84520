//! Opening the keystore with the host's key provider.

use std::path::Path;
use std::sync::Arc;

use super::manifest::Manifest;
use super::state::State;
use crate::crypto::{KdfParams, KeyProvider, Keystore, MasterKey, KEYSTORE_FILE};
use crate::error::{Error, Result};
use crate::io::FileSystem;

/// Opens an existing keystore and derives and checks the master key. Without a key the
/// keystore opens locked: location queries work, PII reads and writes fail with
/// [`crate::Error::MissingKey`]. A missing keystore is created by [`create_keystore`] only
/// after replay, so a deleted keystore is reported, not silently replaced.
pub(crate) fn open_keystore(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    db_id: [u8; 16],
    provider: Option<&dyn KeyProvider>,
) -> Result<(Option<Keystore>, Option<MasterKey>)> {
    let exists = fs.exists(&dir.join(KEYSTORE_FILE))?;
    match (exists, provider) {
        (true, provider) => {
            let mut keystore = Keystore::open(fs.clone(), dir, db_id, None)?;
            let master = match provider {
                Some(p) => {
                    let master = p.master_key(keystore.kdf_params())?;
                    keystore.unlock(&master)?;
                    Some(master)
                }
                None => None,
            };
            Ok((Some(keystore), master))
        }
        // Created only after replay has shown no record needs an existing keystore.
        (false, _) => Ok((None, None)),
    }
}

/// Reads the keystore an open deferred (`None` if the file is gone), unlocked with `master`
/// when the open had a key (checked against the header then).
pub(crate) fn load_keystore(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    db_id: [u8; 16],
    master: Option<&MasterKey>,
) -> Result<Option<Keystore>> {
    if !fs.exists(&dir.join(KEYSTORE_FILE))? {
        return Ok(None);
    }
    Keystore::open(fs.clone(), dir, db_id, master).map(Some)
}

/// Creates the keystore for a database that has none yet, bound to the host's key.
pub(crate) fn create_keystore(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    db_id: [u8; 16],
    provider: &dyn KeyProvider,
) -> Result<(Option<Keystore>, Option<MasterKey>)> {
    let kdf = KdfParams::new_random();
    let master = provider.master_key(&kdf)?;
    master.refuse_placeholder()?;
    let keystore = Keystore::create(fs.clone(), dir, db_id, &master, kdf)?;
    Ok((Some(keystore), Some(master)))
}

/// Checks that every live record with sealed PII still has its data key. A keystore torn
/// tail is dropped at open; if it held a key an acknowledged record uses, that is damage to
/// acknowledged data, not a torn append, and must not pass silently.
pub(crate) fn check_keys_present(state: &State, keystore: Option<&Keystore>, dir: &Path) -> Result<()> {
    let path = dir.join(KEYSTORE_FILE);
    for (name, c) in &state.collections {
        for row in c.table.rows() {
            let Some(key_id) = row.key_id else { continue };
            let found = keystore.and_then(|k| k.key_id(name, &row.id));
            if found != Some(key_id) {
                // Where the dropped frame starts (left in the file for `repair`).
                let offset = keystore.and_then(Keystore::dropped_tail_at).unwrap_or(0);
                return Err(Error::corrupt(
                    path,
                    offset,
                    format!(
                        "record {:?} in {name:?} uses data key {key_id}, which the keystore does not hold \
                         ({}); its PII cannot be decrypted",
                        &*row.id,
                        match found {
                            None => "no key for the record at all".to_owned(),
                            Some(other) => format!("its key for the record is {other}"),
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// [`check_keys_present`] for the checkpoint's rows, needed only when the keystore's final
/// frame was left out: a dropped frame (a torn append, or damage to the last frame of a file
/// an erasure or rotation rewrote) holds the largest key ids, and a checkpointed record whose
/// key was in it would otherwise lose its PII silently once the frame is cut. Every live
/// checkpoint row of a collection with PII fields that the keystore has no key for is read
/// back from the log (each frame once, in log order); one whose record uses a key is damage.
/// The checkpoint's sections are checked whole first (a damaged one reads as empty ids or
/// zero pointers): damage there is the checkpoint's `Corrupt`, marked for the next open.
pub(crate) fn check_checkpoint_keys_present(
    state: &State,
    keystore: &Keystore,
    segments: &super::read::SegmentReaders,
    fs: &dyn crate::io::FileSystem,
    dir: &Path,
) -> Result<()> {
    if keystore.dropped_tail_at().is_none() {
        return Ok(());
    }
    for (name, c) in &state.collections {
        let Some(base) = c.base.as_ref().filter(|_| !c.schema.pii_fields().is_empty()) else { continue };
        if let Err(e) = base.checkpoint.check_all() {
            let _ = super::checkpoint::mark_if_damaged(fs, &base.checkpoint);
            return Err(e);
        }
        let ids = base.checkpoint.ids();
        let keyless: Vec<_> = (0..base.checkpoint.len() as u32)
            .filter(|&row| base.visible(row) && keystore.key_id(name, ids.id(row)).is_none())
            .map(|row| (base.checkpoint.pointer(row), row))
            .collect();
        let mut uses_a_key = None;
        segments.for_each_op(keyless, |_, row, op| {
            // Another failure is not this check's to judge: reads of the record report it.
            if let (None, Ok(super::ops::LogOp::Upsert(r))) = (uses_a_key, op) {
                uses_a_key = r.key_id.map(|key_id| (row, key_id));
            }
            Ok(())
        })?;
        if let Some((row, key_id)) = uses_a_key {
            let offset = keystore.dropped_tail_at().unwrap_or(0);
            return Err(Error::corrupt(
                dir.join(KEYSTORE_FILE),
                offset,
                format!(
                    "record {:?} in {name:?} (in the checkpoint) uses data key {key_id}, which the keystore does \
                     not hold: its last frame, which fails its checksum, held it; its PII cannot be decrypted",
                    ids.id(row)
                ),
            ));
        }
    }
    Ok(())
}

/// Finishes erasures a crash interrupted (see [`destroy_erased_keys`]).
pub(crate) fn finish_erasures(
    mut keystore: Option<Keystore>,
    erased: &[(String, String, u64)],
    record: impl FnOnce(&[u64]) -> Result<()>,
) -> Result<Option<Keystore>> {
    if let Some(ks) = keystore.as_mut() {
        destroy_erased_keys(ks, erased, record)?;
    }
    Ok(keystore)
}

/// Destroys every key an erasure tombstone names that the keystore still holds for the same
/// record and key id (a later write may have given the record a new key, which stays), in
/// one atomic keystore rewrite — after `record` has made the doomed key ids durable in the
/// MANIFEST ([`record_erased_keys`]), so a live record found later without its key can be
/// told from one that was erased.
pub(crate) fn destroy_erased_keys(
    keystore: &mut Keystore,
    erased: &[(String, String, u64)],
    record: impl FnOnce(&[u64]) -> Result<()>,
) -> Result<()> {
    let doomed: Vec<(&str, &str, u64)> = erased
        .iter()
        .filter(|(c, id, k)| keystore.key_id(c, id) == Some(*k))
        .map(|(c, id, k)| (c.as_str(), id.as_str(), *k))
        .collect();
    if !doomed.is_empty() {
        let ids: Vec<u64> = doomed.iter().map(|d| d.2).collect();
        record(&ids)?;
        let pairs: Vec<(&str, &str)> = doomed.iter().map(|&(c, id, _)| (c, id)).collect();
        keystore.remove_keys(&pairs)?;
    }
    Ok(())
}

/// Makes `keystore` issue only key ids above every id an erasure destroyed: a keystore
/// restored from an older copy would otherwise issue them again, and an erasure under a
/// reused id would make the MANIFEST take another record's lost key for an erased one.
pub(crate) fn never_reissue_erased(keystore: &mut Keystore, manifest: &Manifest) {
    if let Some(&last) = manifest.erased_key_ids.as_ref().and_then(|ids| ids.last()) {
        keystore.issue_key_ids_from(last.saturating_add(1));
    }
}

/// Adds `ids` to the MANIFEST's erased key ids and publishes it, if they are tracked and
/// any is new. `manifest` changes only once the new one is published.
pub(crate) fn record_erased_keys(
    fs: &dyn FileSystem,
    dir: &Path,
    manifest: &mut Manifest,
    ids: &[u64],
) -> Result<()> {
    let mut next = manifest.clone();
    if next.add_erased_key_ids(ids) {
        next.store(fs, dir)?;
        *manifest = next;
    }
    Ok(())
}
