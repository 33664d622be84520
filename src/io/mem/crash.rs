//! Power-loss images of a [`super::MemFs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Inode, State};

/// What survives a simulated power loss in [`super::MemFs::crash_image`].
///
/// In every mode each file keeps at least its synced prefix, and every directory operation
/// made durable by `sync_dir` survives — except bytes that a failed fsync covered, which
/// read as zeros even when a later fsync succeeded (as on Linux, which reports a writeback
/// error once and may drop the pages). Modes differ in what else a disk may have written
/// on its own before the power went out:
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// Nothing else: synced prefixes only, and every directory operation (create, rename,
    /// remove) not yet made durable is undone.
    SyncedOnly,
    /// Each file also keeps a random-length prefix of its unsynced bytes, and a random
    /// prefix, in order, of the pending directory operations takes effect (so an unsynced
    /// new file may vanish and an unsynced rename may revert).
    TornPrefix,
    /// Like [`CrashMode::TornPrefix`], but one to three random ranges of the surviving
    /// unsynced bytes are overwritten with zeros (blocks allocated but never written) or
    /// random bytes (torn sectors).
    Garbage,
}

impl CrashMode {
    /// Every mode.
    pub const ALL: [CrashMode; 3] = [CrashMode::SyncedOnly, CrashMode::TornPrefix, CrashMode::Garbage];
}

pub(super) fn image(st: &State, seed: u64, mode: CrashMode) -> State {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut names = st.durable_names.clone();
    if mode != CrashMode::SyncedOnly {
        let applied = rng.gen_range(0..=st.pending.len());
        for op in st.pending.iter().take(applied) {
            op.apply(&mut names);
        }
    }
    let mut inodes = BTreeMap::new();
    for ino in names.values() {
        if inodes.contains_key(ino) {
            continue;
        }
        if let Some(inode) = st.inodes.get(ino) {
            let data = survivors(inode, mode, &mut rng);
            inodes.insert(*ino, Inode { durable_len: data.len(), data: Arc::new(data), lost: Vec::new() });
        }
    }
    names.retain(|_, ino| inodes.contains_key(ino));
    State {
        dirs: st.dirs.clone(),
        durable_names: names.clone(),
        names,
        pending: Vec::new(),
        inodes,
        next_ino: st.next_ino,
        faults: super::fault::Faults::default(),
        locks: Default::default(),
        unstatable: Default::default(),
    }
}

/// The bytes of one file after power loss.
fn survivors(inode: &Inode, mode: CrashMode, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let durable = inode.durable_len.min(inode.data.len());
    let unsynced = inode.data.len() - durable;
    let keep = if mode == CrashMode::SyncedOnly || unsynced == 0 { 0 } else { rng.gen_range(0..=unsynced) };
    let mut data = inode.data.get(..durable + keep).unwrap_or_default().to_vec();
    for lost in &inode.lost {
        for byte in data.get_mut(lost.start.min(lost.end)..lost.end.min(durable + keep)).unwrap_or_default() {
            *byte = 0;
        }
    }
    if mode == CrashMode::Garbage && keep > 0 {
        for _ in 0..rng.gen_range(1..=3) {
            let start = rng.gen_range(durable..data.len());
            let end = rng.gen_range(start + 1..=data.len());
            let zeros = rng.gen_bool(0.5);
            for byte in data.get_mut(start..end).unwrap_or_default() {
                *byte = if zeros { 0 } else { rng.gen() };
            }
        }
    }
    data
}
