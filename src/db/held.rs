//! Which databases the current thread holds a [`Snapshot`](super::Snapshot) of.
//!
//! A snapshot holds the state's read lock. A commit (or checkpoint, erasure, key rotation,
//! sync, verify) on the same thread would wait for that lock, or for a writer that waits for
//! it, forever; and parking_lot's fair lock makes a second read on the same thread wait
//! behind a writer queued between the two. So each thread counts its snapshots per database:
//! a nested read takes the lock recursively, and those operations return
//! [`Error::SnapshotHeld`] instead of hanging. A snapshot cannot move to another thread (its
//! guard is not `Send`), so it is released on the thread that counted it.

use std::cell::RefCell;

use parking_lot::RwLockReadGuard;

use super::state::State;
use super::Inner;
use crate::error::{Error, Result};

thread_local! {
    /// One entry (the `Inner`'s address) per snapshot this thread holds.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn key(inner: &Inner) -> usize {
    std::ptr::from_ref(inner) as usize
}

/// Whether this thread holds a snapshot of `inner`'s database (`false` during thread
/// teardown, when nothing is counted any more).
fn held(inner: &Inner) -> bool {
    HELD.try_with(|h| h.borrow().contains(&key(inner))).unwrap_or(false)
}

/// Counts a snapshot of `inner` taken by this thread.
pub(super) fn enter(inner: &Inner) {
    let _ = HELD.try_with(|h| h.borrow_mut().push(key(inner)));
}

/// Uncounts one snapshot of `inner` released by this thread.
pub(super) fn leave(inner: &Inner) {
    let _ = HELD.try_with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|&k| k == key(inner)) {
            h.swap_remove(i);
        }
    });
}

impl Inner {
    /// The state's read lock, taken recursively when this thread already holds a snapshot
    /// (a plain read would queue behind a waiting writer, which waits for that snapshot).
    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        if held(self) {
            self.state.read_recursive()
        } else {
            self.state.read()
        }
    }

    /// [`Error::SnapshotHeld`] when this thread holds a snapshot of the database, for an
    /// `operation` that would wait for it.
    pub(crate) fn refuse_while_reading(&self, operation: &'static str) -> Result<()> {
        if held(self) {
            Err(Error::SnapshotHeld { operation })
        } else {
            Ok(())
        }
    }
}
